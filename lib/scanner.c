/*
 * The terminator scanner: where does the current frame end?
 *
 * Linear time matters here: a peer that sends a long frame a byte at a time
 * must not make each read rescan everything gathered so far. The input loop
 * moves every byte it has ruled out into the frame, so the input buffer
 * only ever holds the bytes of this read plus the longest terminator prefix
 * held back from the last one (less than the terminator's length).
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "evchat-internal.h"

void evchat__terminator_init(struct evchat__terminator *term)
{
	memset(term, 0, sizeof(*term));
	term->kind = EVCHAT_TERM_NONE;
	term->in_short = 1; /* the empty string */
}

void evchat__terminator_clear(struct evchat__terminator *term)
{
	evchat__free(term->long_);
	evchat__terminator_init(term);
}

/* The table and the bytes share one block: a long terminator costs one
 * allocation per channel, not two. */
static int reserve(struct evchat__terminator *term, size_t len)
{
	if (term->long_ != NULL && len <= term->long_->capacity)
		return 0;
	struct evchat__long_term *block = NULL;
	if (len <= ((size_t)-1 - sizeof(*block)) / (sizeof(size_t) + 1))
		block = evchat__malloc(sizeof(*block) +
		                       len * (sizeof(size_t) + 1));
	if (block == NULL) {
		errno = ENOMEM;
		return -1;
	}
	block->capacity = len;
	evchat__free(term->long_);
	term->long_ = block;
	return 0;
}

/* failure[i] of the current string. */
static size_t failure_at(const struct evchat__terminator *term, size_t i)
{
	if (!term->in_short)
		return term->long_->failure[i];
	return i == 0 ? 0 : term->short_[EVCHAT__SHORT_TERM + i - 1];
}

int evchat__terminator_set_string(struct evchat__terminator *term,
                                  const void *bytes, size_t len)
{
	/* The last string set, again, as a hook that sets the terminator
	 * for every frame does (a count or none in between leaves it
	 * stored): its table stands. */
	if (term->len == len && len > 0 &&
	    memcmp(evchat__term_bytes(term), bytes, len) == 0) {
		term->kind = EVCHAT_TERM_STRING;
		term->optional_cr = 0;
		term->remaining = 0;
		return 0;
	}
	int in_short = len <= EVCHAT__SHORT_TERM;
	/* The length is kept in 32 bits; a longer string's table would
	 * need some 36 GiB anyway. */
	if (len > EV_UINT32_MAX) {
		errno = ENOMEM;
		return -1;
	}
	if (!in_short && reserve(term, len) < 0)
		return -1;
	unsigned char *t = in_short ? term->short_
	                            : (unsigned char *)(term->long_->failure +
	                                                term->long_->capacity);
	/* memmove: the caller may pass back the borrowed current one. */
	memmove(t, bytes, len);
	term->in_short = in_short;
	term->len = (ev_uint32_t)len;
	term->kind = EVCHAT_TERM_STRING;
	term->optional_cr = 0;
	term->remaining = 0;

	/* Knuth-Morris-Pratt failure function. */
	size_t k = 0;
	if (!in_short)
		term->long_->failure[0] = 0;
	for (size_t i = 1; i < len; i++) {
		while (k > 0 && t[i] != t[k])
			k = failure_at(term, k - 1);
		if (t[i] == t[k])
			k++;
		if (in_short)
			term->short_[EVCHAT__SHORT_TERM + i - 1] =
			    (unsigned char)k;
		else
			term->long_->failure[i] = k;
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
	const unsigned char *t = evchat__term_bytes(term);
	struct evbuffer_iovec vec[8];
	size_t state = 0;
	size_t fed = 0;
	while (fed < tail) {
		int n = evbuffer_peek(buf, (ev_ssize_t)(tail - fed), &start,
		                      vec, 8);
		if (n <= 0)
			break;
		int used = n < 8 ? n : 8;
		for (int v = 0; v < used && fed < tail; v++) {
			const unsigned char *p = vec[v].iov_base;
			size_t avail = vec[v].iov_len;
			if (avail > tail - fed)
				avail = tail - fed;
			for (size_t i = 0; i < avail; i++) {
				while (state > 0 && p[i] != t[state])
					state = failure_at(term, state - 1);
				if (p[i] == t[state])
					state++;
				/* A full match here would mean evbuffer_search
				 * missed one; fall back rather than overrun. */
				if (state == term->len)
					state = failure_at(term, state - 1);
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

/* What each line ending searches for; EVCHAT_EOL_CRLF also takes a "\r"
 * before it (optional_cr). */
static const struct {
	const char *search;
	size_t len;
} endings[] = {
	[EVCHAT_EOL_LF] = { "\n", 1 },
	[EVCHAT_EOL_CRLF] = { "\n", 1 },
	[EVCHAT_EOL_CRLF_STRICT] = { "\r\n", 2 },
	[EVCHAT_EOL_NUL] = { "", 1 }, /* the string's own NUL */
};

int evchat__terminator_is_string(const struct evchat__terminator *term,
                                 const void *bytes, size_t len)
{
	return term->kind == EVCHAT_TERM_STRING && term->len == len &&
	       memcmp(evchat__term_bytes(term), bytes, len) == 0;
}

int evchat__terminator_is_line(const struct evchat__terminator *term,
                               enum evchat_eol eol)
{
	return eol >= EVCHAT_EOL_LF && eol <= EVCHAT_EOL_NUL &&
	       term->kind == EVCHAT_TERM_LINE &&
	       term->optional_cr == (eol == EVCHAT_EOL_CRLF) &&
	       term->len == endings[eol].len &&
	       memcmp(evchat__term_bytes(term), endings[eol].search,
	              term->len) == 0;
}

int evchat__terminator_set_line(struct evchat__terminator *term,
                                enum evchat_eol eol)
{
	if (eol < EVCHAT_EOL_LF || eol > EVCHAT_EOL_NUL) {
		errno = EINVAL;
		return -1;
	}
	if (evchat__terminator_set_string(term, endings[eol].search,
	                                  endings[eol].len) < 0)
		return -1;
	term->kind = EVCHAT_TERM_LINE;
	term->optional_cr = eol == EVCHAT_EOL_CRLF;
	return 0;
}

/* The byte at offset `at` of buf, which must exist. */
static unsigned char byte_at(struct evbuffer *buf, size_t at)
{
	struct evbuffer_ptr pos;
	unsigned char c = 0;
	if (evbuffer_ptr_set(buf, &pos, at, EVBUFFER_PTR_SET) == 0)
		evbuffer_copyout_from(buf, &pos, &c, 1);
	return c;
}

ev_ssize_t evchat__terminator_find_in(const struct evchat__terminator *term,
                                      const unsigned char *p, size_t len,
                                      size_t *match_len)
{
	if (len < term->len)
		return -1;
	const unsigned char *t = evchat__term_bytes(term);
	const unsigned char *hit = term->len == 1
	                               ? memchr(p, t[0], len)
	                               : memmem(p, len, t, term->len);
	if (hit == NULL)
		return -1;
	size_t at = (size_t)(hit - p);
	*match_len = term->len;
	if (term->optional_cr && at > 0 && p[at - 1] == '\r') {
		*match_len = 2;
		at--;
	}
	return (ev_ssize_t)at;
}

/* The common case: the terminator lies in the buffer's first chain, which
 * is searched in place (memchr for one byte). evbuffer_search() walks its
 * pointer structure for each candidate, which costs more than a short
 * line's whole scan. Returns the match's offset, or -1 if the first chain
 * has none. */
static ev_ssize_t find_in_first_chain(const struct evchat__terminator *term,
                                      struct evbuffer *buf, size_t *match_len,
                                      const unsigned char **head,
                                      size_t *head_len, size_t *searched)
{
	struct evbuffer_iovec v;
	*searched = 0;
	if (evbuffer_peek(buf, -1, NULL, &v, 1) < 1 || v.iov_len < term->len)
		return -1;
	/* A match starting this far in would lie wholly in the chain. */
	*searched = v.iov_len - term->len + 1;
	ev_ssize_t at = evchat__terminator_find_in(term, v.iov_base, v.iov_len,
	                                           match_len);
	if (at >= 0) {
		*head = v.iov_base;
		*head_len = v.iov_len;
	}
	return at;
}

ev_ssize_t evchat__terminator_find(const struct evchat__terminator *term,
                                   struct evbuffer *buf, size_t *match_len,
                                   size_t *held, const unsigned char **head,
                                   size_t *head_len, size_t clean)
{
	*head = NULL;
	*head_len = 0;
	size_t searched = clean >= term->len ? clean - term->len + 1 : 0;
	ev_ssize_t first = clean > 0
	                       ? -1
	                       : find_in_first_chain(term, buf, match_len, head,
	                                             head_len, &searched);
	if (first >= 0) {
		*held = 0;
		return first;
	}
	/* The rest of the search starts where the first chain's ended: a
	 * long frame spans many chains, and scanning the first one twice
	 * would cost as much as the whole scan again. */
	struct evbuffer_ptr start;
	int from_start = evbuffer_ptr_set(buf, &start, searched,
	                                  EVBUFFER_PTR_SET) < 0;
	struct evbuffer_ptr at =
	    evbuffer_search(buf, (const char *)evchat__term_bytes(term),
	                    term->len, from_start ? NULL : &start);
	if (at.pos >= 0) {
		*held = 0;
		*match_len = term->len;
		/* A "\r" before the "\n" belongs to the line ending. It is
		 * in buf even across reads: a trailing "\r" is held back. */
		if (term->optional_cr && at.pos > 0 &&
		    byte_at(buf, (size_t)at.pos - 1) == '\r') {
			*match_len = 2;
			return at.pos - 1;
		}
		return at.pos;
	}
	if (term->optional_cr) {
		size_t len = evbuffer_get_length(buf);
		*held = len > 0 && byte_at(buf, len - 1) == '\r';
		return -1;
	}
	*held = prefix_at_end(term, buf);
	return -1;
}

/* Feeds bytes through the KMP automaton; returns how many were fed when a
 * whole terminator had been matched, or 0 if none was. */
static size_t match_end(const struct evchat__terminator *term, size_t *state,
                        const unsigned char *p, size_t n)
{
	const unsigned char *t = evchat__term_bytes(term);
	for (size_t i = 0; i < n; i++) {
		while (*state > 0 && p[i] != t[*state])
			*state = failure_at(term, *state - 1);
		if (p[i] == t[*state])
			(*state)++;
		if (*state == term->len)
			return i + 1;
	}
	return 0;
}

int evchat__terminator_frames_once(const struct evchat__terminator *term,
                                   const void *data, size_t len,
                                   const void *ending, size_t ending_len)
{
	size_t state = 0;
	if (match_end(term, &state, data, len) != 0)
		return 0;
	return match_end(term, &state, ending, ending_len) == ending_len;
}
