/*
 * Spare evbuffers and the reply scratch, kept per thread.
 *
 * A channel needs its input, frame and reply buffers only while bytes
 * pass through it. It takes them here when a read begins and gives them back
 * once they are empty again, so an idle channel holds none of them (an
 * evbuffer is about 150 bytes of heap), while a busy one pays a pointer
 * swap per read instead of an allocation and a free. The spares are per
 * thread, as a channel's reads all run on its loop's thread.
 *
 * The scratch is the room one channel at a time copies its read's
 * replies into (lib/batch.c), to write them to the socket from there: an
 * evbuffer's room would be a chain allocated and freed on every read.
 * The read scratch is where a direct read lands (lib/direct-read.c),
 * framed from there while its frames are whole (lib/frames.c), for the
 * same reason.
 *
 * A thread's spares are freed when it exits, or by
 * evchat_thread_cleanup(): the main thread's exit runs no thread
 * destructors.
 */
#include <errno.h>
#include <pthread.h>

#include "evchat-internal.h"

/* Enough for the channels one read callback can reach (a hook pushing to
 * a pair's other end, say); a thread running a thousand idle channels
 * keeps no more than this. */
#define EVCHAT__SPARES 8

struct spares {
	struct evbuffer *buf[EVCHAT__SPARES];
	int n;
	int scratch_taken;
	/* The channel whose read's bytes in the read scratch are lent to
	 * its hooks, and how many there are (NULL, 0 while free). */
	const struct evchat *read_scratch_owner;
	size_t read_scratch_len;
	unsigned char scratch[EVCHAT__SCRATCH_SIZE];
	unsigned char read_scratch[EVCHAT__READ_SCRATCH_SIZE];
};

#if defined(__GNUC__) || defined(__clang__)

/* One pointer of initial-exec TLS (see evchat__entered for why), to a
 * block made on the thread's first give. */
static __thread struct spares *thread_spares
    __attribute__((tls_model("initial-exec")));

static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static int exit_key_made;

static void spares_free(void *arg)
{
	struct spares *s = arg;
	while (s->n > 0)
		evbuffer_free(s->buf[--s->n]);
	evchat__free(s);
	thread_spares = NULL;
}

static void make_exit_key(void)
{
	exit_key_made = pthread_key_create(&exit_key, spares_free) == 0;
}

/* A program that unloads the library (dlclose) must not have its threads
 * call into the unloaded code when they exit: their spares are left to
 * them, unfreed. */
__attribute__((destructor)) static void spares_unload(void)
{
	if (exit_key_made)
		pthread_key_delete(exit_key);
}

/* The thread's block, made on first need and freed at its exit; NULL
 * without memory or a way to free it then. */
static struct spares *thread_block(void)
{
	struct spares *s = thread_spares;
	if (s == NULL) {
		pthread_once(&exit_key_once, make_exit_key);
		if (exit_key_made &&
		    (s = evchat__calloc(1, sizeof(*s))) != NULL &&
		    pthread_setspecific(exit_key, s) != 0) {
			evchat__free(s);
			s = NULL;
		}
		thread_spares = s;
	}
	return s;
}

struct evbuffer *evchat__spare_take(void)
{
	struct spares *s = thread_spares;
	if (s != NULL && s->n > 0)
		return s->buf[--s->n];
	return evbuffer_new();
}

void evchat__spare_give(struct evbuffer *buf)
{
	struct spares *s = thread_block();
	if (s != NULL && s->n < EVCHAT__SPARES)
		s->buf[s->n++] = buf;
	else
		evbuffer_free(buf);
}

unsigned char *evchat__scratch_take(void)
{
	struct spares *s = thread_block();
	if (s == NULL || s->scratch_taken)
		return NULL;
	s->scratch_taken = 1;
	return s->scratch;
}

void evchat__scratch_give(void)
{
	thread_spares->scratch_taken = 0;
}

unsigned char *evchat__read_scratch(void)
{
	struct spares *s = thread_block();
	return s != NULL && s->read_scratch_owner == NULL ? s->read_scratch
	                                                  : NULL;
}

void evchat__read_scratch_lend(const struct evchat *chat, size_t n)
{
	thread_spares->read_scratch_owner = chat;
	thread_spares->read_scratch_len = n;
}

size_t evchat__read_scratch_lent_to(const struct evchat *chat)
{
	struct spares *s = thread_spares;
	return s != NULL && s->read_scratch_owner == chat ? s->read_scratch_len
	                                                  : 0;
}

int evchat__read_scratch_ready(void)
{
	return thread_block() != NULL;
}

int evchat_thread_cleanup(void)
{
	struct spares *s = thread_spares;
	if (s == NULL)
		return 0;
	/* Not while a channel writes its replies in the scratch, or
	 * frames a read in the other. */
	if (s->scratch_taken || s->read_scratch_owner != NULL) {
		errno = EBUSY;
		return -1;
	}
	pthread_setspecific(exit_key, NULL);
	spares_free(s);
	return 0;
}

#else /* no thread-local storage: no spares */

struct evbuffer *evchat__spare_take(void)
{
	return evbuffer_new();
}

void evchat__spare_give(struct evbuffer *buf)
{
	evbuffer_free(buf);
}

unsigned char *evchat__scratch_take(void)
{
	return NULL;
}

void evchat__scratch_give(void)
{
}

unsigned char *evchat__read_scratch(void)
{
	return NULL;
}

void evchat__read_scratch_lend(const struct evchat *chat, size_t n)
{
	(void)chat, (void)n;
}

size_t evchat__read_scratch_lent_to(const struct evchat *chat)
{
	(void)chat;
	return 0;
}

int evchat__read_scratch_ready(void)
{
	return 0;
}

int evchat_thread_cleanup(void)
{
	return 0;
}

#endif
