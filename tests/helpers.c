/* Shared fixtures for the evchat tests: real sockets, real bufferevents. */
#include "helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

char test_ctx[256];

void note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(test_ctx, sizeof(test_ctx), fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Recording what the hooks see */

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
	                                  EVBUFFER_PTR_SET),
	                 0);
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
	int err = errno;
	if (rec->nevents == 0) {
		/* Asked first: the length must not depend on the buffer
		 * evchat_get_pending() makes for an idle channel. */
		size_t n = evchat_get_pending_length(chat);
		rec->pending_at_event = evbuffer_get_length(
		    evchat_get_pending(chat));
		ck_assert_uint_eq(n, rec->pending_at_event);
	}
	ck_assert_uint_lt(rec->nevents,
	                  sizeof(rec->events) / sizeof(rec->events[0]));
	/* errno names the cause of every event but an error (whose own
	 * the tests check): never what a connect or a read left. */
	int want = events & EVCHAT_EVENT_FRAME_TOO_LONG  ? EMSGSIZE
	           : events & EVCHAT_EVENT_FRAME_INVALID ? EBADMSG
	           : events & EVCHAT_EVENT_TIMEOUT       ? ETIMEDOUT
	                                                 : 0;
	if (!(events & EVCHAT_EVENT_ERROR))
		ck_assert_msg(err == want, "event 0x%x: errno %d (%s), want %d",
		              (unsigned)events, err, strerror(err), want);
	rec->errnos[rec->nevents] = err;
	rec->events[rec->nevents++] = events;
}

/* ------------------------------------------------------------------ */
/* Terminators as data */

void apply_term(struct evchat *chat, const struct term_spec *t)
{
	switch (t->kind) {
	case EVCHAT_TERM_STRING:
		ck_assert_int_eq(evchat_set_terminator(chat, t->str, t->len),
		                 0);
		break;
	case EVCHAT_TERM_COUNT:
		ck_assert_int_eq(evchat_set_terminator_count(chat, t->count),
		                 0);
		break;
	default:
		ck_assert_int_eq(evchat_set_terminator_none(chat), 0);
		break;
	}
}

void follow_script(struct evchat *chat, struct recorder *rec)
{
	struct term_script *s = rec->user;
	s->nfound++;
	apply_term(chat, &s->terms[s->nfound % s->nterms]);
}

/* ------------------------------------------------------------------ */
/* Connections and the loop */

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
	return conn_tcp_sized(c, base, 0, 0);
}

/* The peer's buffer sizes are set before it connects: a receive buffer
 * shrunk on a live connection leaves the window already advertised too
 * large, and the kernel then drops what the sender rightly sent and waits
 * a retransmission timeout (200 ms and more) for each drop. */
static int size_socket(evutil_socket_t fd, int rcvbuf, int sndbuf)
{
	if (rcvbuf > 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0)
		return -1;
	if (sndbuf > 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) < 0)
		return -1;
	return 0;
}

int conn_tcp_sized(struct conn *c, struct event_base *base, int peer_rcvbuf,
                   int peer_sndbuf)
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
	if (cfd < 0 || size_socket(cfd, peer_rcvbuf, peer_sndbuf) < 0 ||
	    connect(cfd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
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

long long now_ms(void)
{
	struct timeval tv;
	evutil_gettimeofday(&tv, NULL);
	return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void run_tick(struct event_base *base, int usec)
{
	/* EVLOOP_ONCE alone waits as long as nothing happens; the exit
	 * timer bounds the wait. */
	struct timeval tv = { 0, usec };
	event_base_loopexit(base, &tv);
	event_base_loop(base, EVLOOP_ONCE);
}

void run_pending(struct event_base *base)
{
	/* A few non-blocking rounds let deferred work and follow-up reads
	 * run; each round only handles what is ready now. */
	for (int i = 0; i < 8; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

void run_until(struct event_base *base, const int *done, int ms)
{
	long long end = now_ms() + ms;
	while (!*done && now_ms() < end)
		run_tick(base, 10000);
}

void run_for(struct event_base *base, int ms)
{
	long long end = now_ms() + ms;
	/* At least one turn, and the work it left ready: a process stopped
	 * past `end` right here (a loaded machine) would otherwise run
	 * none, and a test reading what run_for(base, 20) did would find
	 * nothing. */
	do
		run_tick(base, 10000);
	while (now_ms() < end);
	run_pending(base);
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
		if (n < 0)
			run_tick(base, 2000);
	}
	return 0;
}

void run_until_freed(struct event_base *base, struct evchat *const *chat,
                     int ms)
{
	long long end = now_ms() + ms;
	while (*chat != NULL && now_ms() < end)
		run_tick(base, 1000);
}

void read_peer_to_eof(struct conn *c, struct evbuffer *out, int ms)
{
	ck_assert_msg(drain_peer_until_eof(c->base, c->peer, out, ms),
	              "no EOF at the peer after %d ms (%zu bytes read)", ms,
	              evbuffer_get_length(out));
}

/* ------------------------------------------------------------------ */
/* One channel on one connection, and what its hooks saw */

/* The harness is the hooks' arg; the recorder does the recording. */
static void h_collect(struct evchat *chat, struct evbuffer *data, void *arg)
{
	struct harness *h = arg;
	recorder_collect_cb(chat, data, &h->rec);
}

static void h_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct harness *h = arg;
	recorder_found_cb(chat, frame, &h->rec);
}

/* The same through evchat_setcb_bytes(), for the runs of the
 * suites with EVCHAT_TEST_FOUND_BYTES set, and beside h_found with
 * EVCHAT_TEST_FOUND_BOTH (evchat_setcb_both()): every frame must come out
 * the same whichever hook receives it. */
static void h_found_bytes(struct evchat *chat, const unsigned char *frame,
                          size_t len, void *arg)
{
	struct harness *h = arg;
	struct recorder *rec = &h->rec;
	/* Never NULL, so that memcpy(dst, frame, len) is always defined. */
	ck_assert_ptr_nonnull(frame);
	if (h->collect_mode) {
		ck_assert_uint_eq(len, 0);
		recorder_found_cb(chat, NULL, rec);
		return;
	}
	ck_assert_uint_lt(rec->nframes, REC_MAX_FRAMES);
	ck_assert_uint_eq(evbuffer_get_length(rec->collecting), 0);
	rec->frame_len[rec->nframes++] = len;
	if (len > 0)
		evbuffer_add(rec->frames, frame, len);
	if (rec->on_found)
		rec->on_found(chat, rec);
}

void harness_event_cb(struct evchat *chat, short events, void *arg)
{
	struct harness *h = arg;
	int err = errno; /* the recorder checks it */
	if (h->rec.nevents == 0) {
		struct evbuffer *src = unfinished(h);
		size_t n = evbuffer_get_length(src);
		h->frames_at_event = h->rec.nframes;
		if (n > 0)
			evbuffer_add(h->unfinished_at_event,
			             evbuffer_pullup(src, -1), n);
	}
	errno = err;
	recorder_event_cb(chat, events, &h->rec);
	if (h->free_on_closed && (events & EVCHAT_EVENT_CLOSED)) {
		ck_assert_ptr_eq(chat, h->chat);
		evchat_free(chat);
		h->chat = NULL;
	}
}

struct harness *harness_new(int collect_mode, int tcp)
{
	return harness_new_on(event_base_new(), collect_mode, tcp);
}

struct harness *harness_new_on(struct event_base *base, int collect_mode,
                               int tcp)
{
	/* The variants run of the suites (tests/variants.sh) sets options
	 * such as EVCHAT_OPT_DIRECT_READ on every harness channel. */
	const char *flags = getenv("EVCHAT_TEST_CHAT_FLAGS");
	return harness_new_opts(base, collect_mode, tcp,
	                        flags ? (unsigned)strtoul(flags, NULL, 0) : 0);
}

struct harness *harness_new_opts(struct event_base *base, int collect_mode,
                                 int tcp, unsigned flags)
{
	ck_assert_ptr_nonnull(base);
	/* On the heap: a recorder is half a megabyte. */
	struct harness *h = calloc(1, sizeof(*h));
	ck_assert_ptr_nonnull(h);
	h->base = base;
	if (tcp)
		ck_assert_int_eq(conn_tcp(&h->c, h->base), 0);
	else
		ck_assert_int_eq(conn_socketpair(&h->c, h->base), 0);
	h->chat = evchat_new(h->c.bev, flags);
	ck_assert_ptr_nonnull(h->chat);
	recorder_init(&h->rec);
	h->collect_mode = collect_mode;
	h->unfinished_at_event = evbuffer_new();
	ck_assert_ptr_nonnull(h->unfinished_at_event);
	harness_set_mode(h, collect_mode);
	return h;
}

void harness_set_mode(struct harness *h, int collect_mode)
{
	h->collect_mode = collect_mode;
	if (getenv("EVCHAT_TEST_FOUND_BOTH") != NULL)
		evchat_setcb_both(h->chat, collect_mode ? h_collect : NULL,
		                  h_found_bytes, h_found, harness_event_cb, h);
	else if (getenv("EVCHAT_TEST_FOUND_BYTES") != NULL)
		evchat_setcb_bytes(h->chat, collect_mode ? h_collect : NULL,
		                   h_found_bytes, harness_event_cb, h);
	else
		evchat_setcb(h->chat, collect_mode ? h_collect : NULL, h_found,
		             harness_event_cb, h);
}

void harness_free(struct harness *h)
{
	/* The bufferevent goes before its base. A channel freed already
	 * (h->chat NULL) is fine. */
	evchat_free(h->chat);
	event_base_free(h->base);
	conn_close_peer(&h->c);
	recorder_clear(&h->rec);
	evbuffer_free(h->unfinished_at_event);
	free(h);
}

struct evbuffer *unfinished(struct harness *h)
{
	return h->collect_mode ? h->rec.collecting
	                       : evchat_get_pending(h->chat);
}

size_t pending_len(struct harness *h)
{
	size_t n = evchat_get_pending_length(h->chat);
	ck_assert_uint_eq(evbuffer_get_length(evchat_get_pending(h->chat)), n);
	return n;
}

void run_until_frames(struct harness *h, size_t n, int ms)
{
	long long end = now_ms() + ms;
	while (h->rec.nframes < n && h->rec.nevents == 0 && now_ms() < end)
		run_tick(h->base, 5000);
	run_pending(h->base);
}

void run_until_unfinished(struct harness *h, size_t n, int ms)
{
	/* The event first: the hook may have freed the channel. */
	long long end = now_ms() + ms;
	while (h->rec.nevents == 0 && evbuffer_get_length(unfinished(h)) < n &&
	       now_ms() < end)
		run_tick(h->base, 5000);
	run_pending(h->base);
}

void run_until_event(struct harness *h, int ms)
{
	long long end = now_ms() + ms;
	while (h->rec.nevents == 0 && now_ms() < end)
		run_tick(h->base, 5000);
	run_pending(h->base);
}

void feed(struct harness *h, const void *data, size_t len)
{
	const char *p = data;
	long long deadline = now_ms() + 3000;
	while (len > 0 && h->rec.nevents == 0) {
		ssize_t n = send(h->c.peer, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			deadline = now_ms() + 3000;
			continue;
		}
		ck_assert_msg(n < 0 && (errno == EAGAIN ||
		                        errno == EWOULDBLOCK || errno == EINTR),
		              "send: %s", strerror(errno));
		ck_assert_msg(now_ms() < deadline,
		              "%s: the channel stopped reading", test_ctx);
		run_tick(h->base, 1000);
	}
	run_pending(h->base);
}

struct evchat *channel_on_peer(struct harness *h)
{
	struct bufferevent *bev = bufferevent_socket_new(h->base, h->c.peer, 0);
	ck_assert_ptr_nonnull(bev);
	struct evchat *chat = evchat_new(bev, 0);
	ck_assert_ptr_nonnull(chat);
	return chat;
}

void read_written(struct harness *h, struct evbuffer *out)
{
	h->free_on_closed = 1;
	ck_assert_int_eq(evchat_close_when_done(h->chat), 0);
	read_peer_to_eof(&h->c, out, 2000);
}

const char *mode_name(int collect)
{
	return collect ? "collect" : "frame";
}

/* ------------------------------------------------------------------ */
/* Randomness and memory */

ev_uint32_t xorshift32(ev_uint32_t *state)
{
	ev_uint32_t x = *state;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *state = x;
}

size_t rnd(ev_uint32_t *state, size_t n)
{
	return xorshift32(state) % n;
}

size_t heap_in_use(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
	/* Blocks from mmap() (large ones) count too. */
	struct mallinfo2 m = mallinfo2();
	return m.uordblks + m.hblkhd;
#else
	return 0;
#endif
}

/* ------------------------------------------------------------------ */
/* Assertions that print the bytes involved, after test_ctx */

char *printable(const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t shown = len < 160 ? len : 160;
	char *s = malloc(shown * 4 + 48);
	char *o = s;
	for (size_t i = 0; i < shown; i++) {
		if (p[i] == '\n') {
			*o++ = '\\';
			*o++ = 'n';
		} else if (p[i] == '\r') {
			*o++ = '\\';
			*o++ = 'r';
		} else if (p[i] < 0x20 || p[i] >= 0x7f || p[i] == '\\') {
			o += sprintf(o, "\\x%02x", p[i]);
		} else {
			*o++ = (char)p[i];
		}
	}
	if (shown < len)
		o += sprintf(o, "...(%zu bytes)", len);
	*o = '\0';
	return s;
}

void expect_bytes(const char *what, struct evbuffer *buf, const void *want,
                  size_t len)
{
	size_t got_len = evbuffer_get_length(buf);
	const void *got = got_len ? evbuffer_pullup(buf, -1) : (const void *)"";
	if (got_len != len || memcmp(got, want, len) != 0)
		ck_abort_msg("%s: %s: got \"%s\", want \"%s\"", test_ctx, what,
		             printable(got, got_len), printable(want, len));
}

void expect_frames(const struct recorder *rec, const struct span *want,
                   size_t n)
{
	const char *all = (const char *)evbuffer_pullup(rec->frames, -1);
	size_t off = 0;
	if (all == NULL)
		all = "";
	for (size_t i = 0; i < n && i < rec->nframes; i++) {
		const char *got = all + off;
		size_t got_len = rec->frame_len[i];
		if (got_len != want[i].len ||
		    memcmp(got, want[i].p, got_len) != 0)
			ck_abort_msg("%s: frame %zu: got \"%s\", want \"%s\"",
			             test_ctx, i, printable(got, got_len),
			             printable(want[i].p, want[i].len));
		off += got_len;
	}
	ck_assert_msg(rec->nframes == n, "%s: got %zu frames, want %zu",
	              test_ctx, rec->nframes, n);
}

void expect_text_frames(const struct recorder *rec, const char *const *want,
                        size_t n)
{
	struct span *spans = calloc(n, sizeof(*spans));
	ck_assert_ptr_nonnull(spans);
	for (size_t i = 0; i < n; i++) {
		spans[i].p = want[i];
		spans[i].len = strlen(want[i]);
	}
	expect_frames(rec, spans, n);
	free(spans);
}

void expect_one_event(const struct recorder *rec, short flag)
{
	ck_assert_msg(rec->nevents == 1, "%s: %zu events, want 1", test_ctx,
	              rec->nevents);
	ck_assert_msg(rec->events[0] & flag, "%s: event 0x%x, want 0x%x",
	              test_ctx, (unsigned)rec->events[0], (unsigned)flag);
}

int test_quick(void)
{
	const char *env = getenv("EVCHAT_TEST_QUICK");
	return env != NULL && *env != '\0';
}
