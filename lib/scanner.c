/*
 * The terminator scanner: where does the current frame end?
 *
 * Linear time matters here: a peer that sends a long frame a byte at a time
 * must not make each read rescan everything gathered so far. The input loop
 * moves every byte it has ruled out into the frame, so the input buffer
 * only ever holds the bytes of this read plus the longest terminator prefix
 * held back from the last one (less than the terminator's length).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "evchat-internal.h"

void evchat__terminator_init(struct evchat__terminator *term)
{
	memset(term, 0, sizeof(*term));
	term->kind = EVCHAT_TERM_NONE;
}

void evchat__terminator_clear(struct evchat__terminator *term)
{
	free(term->bytes);
	free(term->failure);
	evchat__terminator_init(term);
}

static int reserve(struct evchat__terminator *term, size_t len)
{
	if (len <= term->capacity)
		return 0;
	if (len > (size_t)-1 / sizeof(size_t)) {
		errno = ENOMEM;
		return -1;
	}
	unsigned char *bytes = malloc(len);
	size_t *failure = malloc(len * sizeof(size_t));
	if (bytes == NULL || failure == NULL) {
		free(bytes);
		free(failure);
		errno = ENOMEM;
		return -1;
	}
	free(term->bytes);
	free(term->failure);
	term->bytes = bytes;
	term->failure = failure;
	term->capacity = len;
	return 0;
}

int evchat__terminator_set_string(struct evchat__terminator *term,
                                  const void *bytes, size_t len)
{
	if (reserve(term, len) < 0)
		return -1;
	/* memmove: the caller may pass back the borrowed current one. */
	memmove(term->bytes, bytes, len);
	term->len = len;
	term->kind = EVCHAT_TERM_STRING;
	term->remaining = 0;

	/* Knuth-Morris-Pratt failure function. */
	const unsigned char *t = term->bytes;
	term->failure[0] = 0;
	size_t k = 0;
	for (size_t i = 1; i < len; i++) {
		while (k > 0 && t[i] != t[k])
			k = term->failure[k - 1];
		if (t[i] == t[k])
			k++;
		term->failure[i] = k;
	}
	return 0;
}

/* The longest prefix of the terminator that the last bytes of buf end
 * with, given that buf does not contain the whole terminator. Only the
 * last len - 1 bytes can matter; they are fed through the KMP automaton
 * piece by piece, without copying. */
static size_t prefix_at_end(const struct evchat__terminator *term,
                            struct evbuffer *buf)
{
	size_t buf_len = evbuffer_get_length(buf);
	size_t tail = term->len - 1 < buf_len ? term->len - 1 : buf_len;
	if (tail == 0)
		return 0;

	struct evbuffer_ptr start;
	if (evbuffer_ptr_set(buf, &start, buf_len - tail, EVBUFFER_PTR_SET) < 0)
		return 0;
	struct evbuffer_iovec vec[8];
	size_t state = 0;
	size_t fed = 0;
	while (fed < tail) {
		int n = evbuffer_peek(buf, (ev_ssize_t)(tail - fed), &start, vec, 8);
		if (n <= 0)
			break;
		int used = n < 8 ? n : 8;
		for (int v = 0; v < used && fed < tail; v++) {
			const unsigned char *p = vec[v].iov_base;
			size_t avail = vec[v].iov_len;
			if (avail > tail - fed)
				avail = tail - fed;
			for (size_t i = 0; i < avail; i++) {
				while (state > 0 && p[i] != term->bytes[state])
					state = term->failure[state - 1];
				if (p[i] == term->bytes[state])
					state++;
				/* A full match here would mean evbuffer_search
				 * missed one; fall back rather than overrun. */
				if (state == term->len)
					state = term->failure[state - 1];
			}
			fed += avail;
		}
		if (fed < tail &&
		    evbuffer_ptr_set(buf, &start, buf_len - tail + fed,
		                     EVBUFFER_PTR_SET) < 0)
			break;
	}
	return state;
}

ev_ssize_t evchat__terminator_find(const struct evchat__terminator *term,
                                   struct evbuffer *buf, size_t *held)
{
	struct evbuffer_ptr at =
	    evbuffer_search(buf, (const char *)term->bytes, term->len, NULL);
	if (at.pos >= 0) {
		*held = 0;
		return at.pos;
	}
	*held = prefix_at_end(term, buf);
	return -1;
}
