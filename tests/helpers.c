/* Shared fixtures for the evchat tests: real sockets, real bufferevents. */
#include "helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

void recorder_init(struct recorder *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->frames = evbuffer_new();
	rec->collecting = evbuffer_new();
	ck_assert_ptr_nonnull(rec->frames);
	ck_assert_ptr_nonnull(rec->collecting);
}

void recorder_clear(struct recorder *rec)
{
	evbuffer_free(rec->frames);
	evbuffer_free(rec->collecting);
	rec->frames = rec->collecting = NULL;
}

char *recorder_frame(const struct recorder *rec, size_t i)
{
	ck_assert_uint_lt(i, rec->nframes);
	size_t offset = 0;
	for (size_t k = 0; k < i; k++)
		offset += rec->frame_len[k];
	struct evbuffer_ptr pos;
	ck_assert_int_eq(evbuffer_ptr_set(rec->frames, &pos, offset,
	                                  EVBUFFER_PTR_SET), 0);
	char *s = malloc(rec->frame_len[i] + 1);
	ck_assert_ptr_nonnull(s);
	ev_ssize_t n = evbuffer_copyout_from(rec->frames, &pos, s,
	                                     rec->frame_len[i]);
	ck_assert_int_eq((size_t)n, rec->frame_len[i]);
	s[rec->frame_len[i]] = '\0';
	return s;
}

static void record_frame(struct recorder *rec, struct evbuffer *frame)
{
	ck_assert_uint_lt(rec->nframes, REC_MAX_FRAMES);
	rec->frame_len[rec->nframes++] = evbuffer_get_length(frame);
	evbuffer_add_buffer(rec->frames, frame);
}

void recorder_collect_cb(struct evchat *chat, struct evbuffer *data, void *arg)
{
	struct recorder *rec = arg;
	/* asynchat never reports an empty collect; neither may we. */
	ck_assert_uint_gt(evbuffer_get_length(data), 0);
	rec->ncollect_calls++;
	evbuffer_add_buffer(rec->collecting, data);
}

void recorder_found_cb(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct recorder *rec = arg;
	if (frame == NULL) {
		record_frame(rec, rec->collecting);
	} else {
		ck_assert_uint_eq(evbuffer_get_length(rec->collecting), 0);
		record_frame(rec, frame);
	}
	if (rec->on_found)
		rec->on_found(chat, rec);
}

void recorder_event_cb(struct evchat *chat, short events, void *arg)
{
	struct recorder *rec = arg;
	if (rec->nevents == 0)
		rec->pending_at_event =
		    evbuffer_get_length(evchat_get_pending(chat));
	ck_assert_uint_lt(rec->nevents, sizeof(rec->events) / sizeof(rec->events[0]));
	rec->events[rec->nevents++] = events;
}

void recorder_attach(struct evchat *chat, struct recorder *rec, int collect_mode)
{
	evchat_setcb(chat, collect_mode ? recorder_collect_cb : NULL,
	             recorder_found_cb, recorder_event_cb, rec);
}

static struct bufferevent *bev_for(struct event_base *base, evutil_socket_t fd)
{
	evutil_make_socket_nonblocking(fd);
	return bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
}

int conn_socketpair(struct conn *c, struct event_base *base)
{
	evutil_socket_t fds[2];
	if (evutil_socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
		return -1;
	c->base = base;
	c->peer = fds[1];
	evutil_make_socket_nonblocking(c->peer);
	c->bev = bev_for(base, fds[0]);
	return c->bev ? 0 : -1;
}

int conn_tcp(struct conn *c, struct event_base *base)
{
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0)
		return -1;
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &slen) < 0) {
		close(lfd);
		return -1;
	}
	int cfd = socket(AF_INET, SOCK_STREAM, 0);
	if (cfd < 0 || connect(cfd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(lfd);
		if (cfd >= 0)
			close(cfd);
		return -1;
	}
	int afd = accept(lfd, NULL, NULL);
	close(lfd);
	if (afd < 0) {
		close(cfd);
		return -1;
	}
	c->base = base;
	c->peer = cfd;
	evutil_make_socket_nonblocking(c->peer);
	c->bev = bev_for(base, afd);
	return c->bev ? 0 : -1;
}

void conn_close_peer(struct conn *c)
{
	if (c->peer >= 0)
		close(c->peer);
	c->peer = -1;
}

void write_all(evutil_socket_t fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			poll(&pfd, 1, 1000);
			continue;
		}
		ck_assert_msg(n > 0, "send failed: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

void run_pending(struct event_base *base)
{
	/* A few non-blocking rounds let deferred work and follow-up reads
	 * run; each round only handles what is ready now. */
	for (int i = 0; i < 8; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

static long long now_ms(void)
{
	struct timeval tv;
	evutil_gettimeofday(&tv, NULL);
	return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void run_until(struct event_base *base, const int *done, int ms)
{
	long long end = now_ms() + ms;
	while (!*done && now_ms() < end) {
		struct timeval tick = { 0, 10000 };
		event_base_loopexit(base, &tick);
		event_base_loop(base, EVLOOP_ONCE);
	}
}

int drain_peer_until_eof(struct event_base *base, evutil_socket_t peer,
                         struct evbuffer *out, int ms)
{
	long long end = now_ms() + ms;
	while (now_ms() < end) {
		int n = evbuffer_read(out, peer, 1 << 16);
		if (n == 0)
			return 1;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return 1; /* reset by the channel also ends the stream */
		if (n < 0) {
			struct timeval tick = { 0, 2000 };
			event_base_loopexit(base, &tick);
			event_base_loop(base, EVLOOP_ONCE);
		}
	}
	return 0;
}
