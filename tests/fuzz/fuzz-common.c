/* Shared by the fuzz targets: see fuzz-common.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"

unsigned next_byte(struct reader *r)
{
	if (r->left == 0)
		return 0;
	r->left--;
	return *r->p++;
}

size_t next_bytes(struct reader *r, size_t n, const uint8_t **out)
{
	if (n > r->left)
		n = r->left;
	*out = r->p;
	r->p += n;
	r->left -= n;
	return n;
}

static void bytes_reserve(struct bytes *b, size_t more)
{
	if (b->len + more <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + more)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (p == NULL)
		abort();
	b->p = p;
	b->cap = cap;
}

void bytes_add(struct bytes *b, const void *data, size_t len)
{
	if (len == 0)
		return;
	bytes_reserve(b, len);
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

void bytes_printf(struct bytes *b, const char *fmt, ...)
{
	char text[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(text))
		abort();
	bytes_add(b, text, (size_t)n);
}

void bytes_cut(struct bytes *b, size_t n)
{
	if (n > b->len)
		n = b->len;
	if (n == 0)
		return;
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

int bytes_equal(const struct bytes *a, const struct bytes *b)
{
	return a->len == b->len &&
	       (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

void bytes_free(struct bytes *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void bytes_add_evbuffer(struct bytes *b, struct evbuffer *buf)
{
	size_t n = evbuffer_get_length(buf);
	bytes_reserve(b, n);
	if (n > 0 && evbuffer_copyout(buf, b->p + b->len, n) != (ev_ssize_t)n)
		abort();
	b->len += n;
}

void run_until_idle(struct event_base *base)
{
	/* Each pass runs what is active; what it activates runs in the
	 * next. A bound, so that a busy loop in the library shows up as a
	 * failure rather than a hang. */
	for (int pass = 0; pass < 1000; pass++) {
		if (event_base_get_num_events(base, EVENT_BASE_COUNT_ACTIVE) ==
		    0)
			return;
		event_base_loop(base, EVLOOP_NONBLOCK);
	}
	fuzz_fail("the loop never went idle", NULL, NULL);
}

static void print_bytes(const char *name, const struct bytes *b)
{
	fprintf(stderr, "%s (%zu bytes): \"", name, b->len);
	for (size_t i = 0; i < b->len; i++) {
		unsigned c = b->p[i];
		if (c == '\\')
			fputs("\\\\", stderr);
		else if (c >= 0x20 && c < 0x7f)
			fputc((int)c, stderr);
		else if (c == '\n')
			fputs("\\n", stderr);
		else if (c == '\r')
			fputs("\\r", stderr);
		else
			fprintf(stderr, "\\x%02x", c);
	}
	fputs("\"\n", stderr);
}

void fuzz_fail(const char *what, const struct bytes *got,
               const struct bytes *want)
{
	fprintf(stderr, "\nFUZZ FAILURE: %s\n", what);
	if (got != NULL)
		print_bytes("library", got);
	if (want != NULL)
		print_bytes("model  ", want);
	abort();
}

void fuzz_check(int ok, const char *what)
{
	if (!ok)
		fuzz_fail(what, NULL, NULL);
}
