/*
 * Moving bytes between evbuffers without wasting memory.
 *
 * evbuffer_remove_buffer() hands over whole chains where it can. That is
 * free for big reads but ruinous for small ones: a 1-byte read sits in a
 * chain of a kilobyte or more, and linking such chains one after another
 * (a frame dripping in a byte per read, or thousands of short replies
 * queued behind a slow reader) multiplies memory by that ratio and makes
 * writev() walk thousands of tiny iovecs. Small amounts are therefore
 * copied into the destination's last chain; large amounts keep the
 * zero-copy move.
 *
 * A copy must not go through evbuffer_add(): when the last chain with
 * data has no room, libevent 2.1 sizes the new one like it (doubled, up
 * to 4 KiB), so two bytes after a pushed 10 MiB reference, file or full
 * chain took a 10 MiB chain of their own (a memcached value and its
 * "\r\n"); room made by evbuffer_expand() first is not even used.
 * Reserved space comes from a chain sized for the bytes.
 */
#include <errno.h>
#include <string.h>

#include "evchat-internal.h"

/* Up to this many bytes a copy is cheaper than a chain of their own.
 * libevent sizes a read's chain to what the socket holds, with a floor of
 * about a kilobyte, so above half of that a moved chain is at least half
 * full; copying more only costs time (a long frame read 4 KiB at a time
 * would be copied byte for byte). */
#define EVCHAT__COPY_MAX 512

int evchat__buffer_add_two(struct evbuffer *dst, const void *head,
                           size_t head_len, const void *body, size_t body_len)
{
	size_t len = head_len + body_len;
	struct evbuffer_iovec vec;
	if (len == 0)
		return 0;
	if (len > (size_t)EV_SSIZE_MAX ||
	    evbuffer_reserve_space(dst, (ev_ssize_t)len, &vec, 1) < 1) {
		errno = ENOMEM;
		return -1;
	}
	if (head_len > 0)
		memcpy(vec.iov_base, head, head_len);
	if (body_len > 0)
		memcpy((unsigned char *)vec.iov_base + head_len, body,
		       body_len);
	vec.iov_len = len;
	/* Cannot fail: the space is the one just reserved. */
	evbuffer_commit_space(dst, &vec, 1);
	return 0;
}

int evchat__buffer_add(struct evbuffer *dst, const void *data, size_t len)
{
	return evchat__buffer_add_two(dst, data, len, NULL, 0);
}

/* Copies the first n bytes of src, which lie in its first chain, to dst:
 * all of them or, out of memory, none. */
static int copy_front(struct evbuffer *dst, struct evbuffer *src, size_t n)
{
	if (evchat__buffer_add(dst, evbuffer_pullup(src, (ev_ssize_t)n), n) < 0)
		return -1;
	evbuffer_drain(src, n);
	return 0;
}

int evchat__buffer_move(struct evbuffer *dst, struct evbuffer *src, size_t n)
{
	size_t avail = evbuffer_get_length(src);
	if (n > avail)
		n = avail;
	if (n == 0)
		return 0;
	/* All of src: libevent links its chains, allocating nothing. */
	if (n == avail && n > EVCHAT__COPY_MAX)
		return evbuffer_add_buffer(dst, src);
	/* Part of the first chain, or all of it: one copy. Not
	 * evbuffer_remove_buffer(), which copies a partial chain too but,
	 * in libevent 2.1, drains it even when that copy ran out of memory:
	 * the bytes were lost and the move reported a success. */
	size_t first = evbuffer_get_contiguous_space(src);
	if (n < first || (n == first && n <= EVCHAT__COPY_MAX))
		return copy_front(dst, src, n);
	if (n > EVCHAT__COPY_MAX) {
		/* Link the whole chains, then copy the part of the next one.
		 * Out of memory, the chains have moved and the part has not:
		 * the caller fails the stream. */
		struct evbuffer_iovec vec[8];
		size_t whole = 0;
		int nvec = evbuffer_peek(src, (ev_ssize_t)n, NULL, vec, 8);
		for (int i = 0;
		     i < nvec && i < 8 && whole + vec[i].iov_len <= n; i++)
			whole += vec[i].iov_len;
		if (evbuffer_remove_buffer(src, dst, whole) < 0)
			return -1;
		n -= whole;
		return n == 0 ? 0 : evchat__buffer_move(dst, src, n);
	}

	/* A few small chains: made one first (a copy of at most 4 KiB, in
	 * a chain of src's), then added in one copy. Either step fails
	 * whole, so out of memory nothing has moved. */
	if (evbuffer_pullup(src, (ev_ssize_t)n) == NULL)
		return -1;
	return copy_front(dst, src, n);
}
