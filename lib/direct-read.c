/*
 * EVCHAT_OPT_DIRECT_READ: reading past libevent 2.1's 4 KiB per read
 * callback, from the socket itself, and reporting an error met there as
 * libevent reports its own. The input loop (lib/input.c) frames the bytes.
 */
#include <errno.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "evchat-internal.h"

/* libevent 2.1 reads at most this much per read callback, whatever the
 * bufferevent's max single read says. */
#define EVCHAT__LIBEVENT_READ_CAP 4096
/* What a direct read adds to it at most. With libevent's 4 KiB the chain
 * stays under 16 KiB of heap: bigger ones (a 64 KiB read is a 128 KiB
 * chain, libevent rounds up) freed every callback at the top of glibc's
 * heap crossed its trim threshold each time, and every read then faulted
 * its pages in afresh: 16 KiB lines ran at a quarter of the limit's speed
 * after the heap had once served 50 connections. */
#define EVCHAT__DIRECT_READ_MAX 8192

/* EVCHAT_OPT_DIRECT_READ: libevent's read filled its cap, so the socket
 * may hold more: read what it holds now (FIONREAD, as libevent does, so
 * no chain is made bigger than the bytes need), up to the in buffer size
 * and any rate limit, into the same chain where evbuffer_expand() allows,
 * so a long frame lies in one piece. */
void evchat__direct_read(struct evchat *chat)
{
	struct evbuffer *read_buf = bufferevent_get_input(chat->bev);
	if (evbuffer_get_length(read_buf) < EVCHAT__LIBEVENT_READ_CAP)
		return;
	/* Without an input buffer the input loop reports the failure. */
	struct evbuffer *input = evchat__input_buffer(chat);
	if (input == NULL)
		return;
	evbuffer_add_buffer(input, read_buf);
	evutil_socket_t fd = bufferevent_getfd(chat->bev);
	ev_ssize_t max = bufferevent_get_max_single_read(chat->bev);
	ev_ssize_t allowed = bufferevent_get_max_to_read(chat->bev);
	size_t have = evbuffer_get_length(input);
	int waiting = 0;
	if (fd < 0 || max <= 0 || allowed <= 0 || have >= (size_t)max ||
	    !(bufferevent_get_enabled(chat->bev) & EV_READ) ||
	    ioctl(fd, FIONREAD, &waiting) < 0 || waiting <= 0)
		return;
	size_t want = (size_t)max - have;
	if (want > EVCHAT__DIRECT_READ_MAX)
		want = EVCHAT__DIRECT_READ_MAX;
	if (want > (size_t)waiting)
		want = (size_t)waiting;
	if (want > (size_t)allowed)
		want = (size_t)allowed;
	struct evbuffer_iovec space;
	if (evbuffer_expand(input, want) < 0 ||
	    evbuffer_reserve_space(input, (ev_ssize_t)want, &space, 1) < 1)
		return;
	if (space.iov_len > want)
		space.iov_len = want;
	/* read(), not recv(): a socket bufferevent may sit on a pipe. */
	ssize_t n = read(fd, space.iov_base, space.iov_len);
	if (n > 0) {
		space.iov_len = (size_t)n;
		evbuffer_commit_space(input, &space, 1);
		return;
	}
	/* An EOF is left for the bufferevent's next read to find; an
	 * error cannot be, since the socket reports it only once. */
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		chat->read_error = errno;
}

/* An error met by evchat__direct_read(), after the frames read before it, as
 * libevent reports one of its own reads: reading stops, then the event
 * callback runs. */
void evchat__direct_read_error(struct evchat *chat)
{
	int err = chat->read_error;
	chat->read_error = 0;
	bufferevent_disable(chat->bev, EV_READ);
	errno = err;
	bufferevent_trigger_event(chat->bev,
	                          BEV_EVENT_READING | BEV_EVENT_ERROR, 0);
}
