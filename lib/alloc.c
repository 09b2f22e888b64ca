/*
 * The library's own allocations, in one place.
 *
 * Everything evchat allocates itself (channels, queue items, terminator
 * tables, listeners) goes through these, so a test can count them and
 * make any one of them fail, as it does libevent's with
 * event_set_mem_functions(). None of them is on the per-request path: a
 * channel allocates when it is made, when a terminator outgrows its
 * table, and for output queued behind a producer. The indirect call
 * therefore costs nothing measurable.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "evchat-internal.h"

static void *(*mem_malloc)(size_t size) = malloc;
static void (*mem_free)(void *ptr) = free;

void evchat__set_mem_functions(void *(*malloc_fn)(size_t size),
                               void (*free_fn)(void *ptr))
{
	mem_malloc = malloc_fn ? malloc_fn : malloc;
	mem_free = free_fn ? free_fn : free;
}

void *evchat__malloc(size_t size)
{
	void *p = mem_malloc(size);
	if (p == NULL)
		errno = ENOMEM;
	return p;
}

void *evchat__calloc(size_t n, size_t size)
{
	if (size != 0 && n > (size_t)-1 / size) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = evchat__malloc(n * size);
	if (p != NULL)
		memset(p, 0, n * size);
	return p;
}

void evchat__free(void *ptr)
{
	if (ptr != NULL)
		mem_free(ptr);
}
