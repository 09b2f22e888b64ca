/*
 * Moving bytes between evbuffers without wasting memory.
 *
 * evbuffer_remove_buffer() hands over whole chains where it can. That is
 * free for big reads but ruinous for small ones: a 1-byte read sits in a
 * chain of a kilobyte or more, and linking such chains one after another
 * (a frame dripping in a byte per read, or thousands of short replies
 * queued behind a slow reader) multiplies memory by that ratio and makes
 * writev() walk thousands of tiny iovecs. Small amounts are therefore
 * copied into the destination's last chain, which libevent grows
 * geometrically; large amounts keep the zero-copy move.
 */
#include "evchat-internal.h"

/* Up to this many bytes a copy is cheaper than a chain of their own.
 * libevent sizes a read's chain to what the socket holds, with a floor of
 * about a kilobyte, so above half of that a moved chain is at least half
 * full; copying more only costs time (a long frame read 4 KiB at a time
 * would be copied byte for byte). */
#define EVCHAT__COPY_MAX 512

int evchat__buffer_move(struct evbuffer *dst, struct evbuffer *src, size_t n)
{
	size_t avail = evbuffer_get_length(src);
	if (n > avail)
		n = avail;
	if (n == 0)
		return 0;
	/* Less than the first chain holds: libevent copies it in one call
	 * (it never splits a chain). */
	size_t first = evbuffer_get_contiguous_space(src);
	if (n > EVCHAT__COPY_MAX || n < first)
		return evbuffer_remove_buffer(src, dst, n) < 0 ? -1 : 0;
	if (n == first) {
		/* The whole first chain: copy its bytes, free the chain. */
		if (evbuffer_add(dst, evbuffer_pullup(src, (ev_ssize_t)n), n) < 0)
			return -1;
		evbuffer_drain(src, n);
		return 0;
	}

	struct evbuffer_iovec vec[4];
	size_t copied = 0;
	while (copied < n) {
		int nvec = evbuffer_peek(src, (ev_ssize_t)(n - copied), NULL, vec, 4);
		if (nvec <= 0)
			return -1;
		if (nvec > 4)
			nvec = 4;
		size_t round = 0;
		for (int i = 0; i < nvec && copied + round < n; i++) {
			size_t len = vec[i].iov_len;
			if (len > n - copied - round)
				len = n - copied - round;
			if (evbuffer_add(dst, vec[i].iov_base, len) < 0)
				return -1;
			round += len;
		}
		/* Drain as we go so the next peek starts at the right place. */
		evbuffer_drain(src, round);
		copied += round;
	}
	return 0;
}
