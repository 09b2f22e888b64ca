/*
 * CPython's Lib/test/test_asynchat.py (3.11), ported case by case. Each
 * test names the Python test it ports. Python's echo_server thread becomes
 * the raw peer socket, driven inline: it reads until "QUIT\n" while the
 * loop runs (so the channel can write), then sends back everything before
 * QUIT in chunks of chunk_size bytes, one read's worth at a time, and
 * closes. Python's echo_client is the channel in collect mode (it overrides
 * collect_incoming_data and found_terminator); most tests also run it in
 * frame mode, which must give the same frames.
 *
 * Not ported: TestAsynchatMocked.test_blockingioerror patches recv() to
 * raise BlockingIOError; libevent retries EAGAIN itself, so the nearest
 * check is that a channel with nothing to read reports nothing
 * (test_nothing_to_read). test_disallow_negative_terminator cannot be
 * written in C (counts are unsigned); evchat's own invalid terminator, the
 * empty string, is tested instead.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "helpers.h"
#include "suites.h"

#define LIT(s) (s), (sizeof(s) - 1)
#define SERVER_QUIT "QUIT\n"

/* ------------------------------------------------------------------ */
/* Fixtures */

/* One channel on one connection, and what its hooks saw. */
struct harness {
	struct event_base *base;
	struct conn c;
	struct evchat *chat; /* NULL once the event hook freed it */
	struct recorder rec;
	int collect_mode;
	/* Free the channel on EVCHAT_EVENT_CLOSED, as a user would; that
	 * closes the socket, so the peer sees EOF. */
	int free_on_closed;
	struct evbuffer *unfinished_at_event;
};

static char test_ctx[256];

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(test_ctx, sizeof(test_ctx), fmt, ap);
	va_end(ap);
}

static long long now_ms(void)
{
	struct timeval tv;
	evutil_gettimeofday(&tv, NULL);
	return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

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

static void h_event(struct evchat *chat, short events, void *arg)
{
	struct harness *h = arg;
	if (h->rec.nevents == 0) {
		struct evbuffer *src = h->collect_mode ? h->rec.collecting
		                                       : evchat_get_pending(chat);
		size_t n = evbuffer_get_length(src);
		if (n > 0)
			evbuffer_add(h->unfinished_at_event,
			             evbuffer_pullup(src, -1), n);
	}
	recorder_event_cb(chat, events, &h->rec);
	if (h->free_on_closed && (events & EVCHAT_EVENT_CLOSED)) {
		ck_assert_ptr_eq(chat, h->chat);
		evchat_free(chat);
		h->chat = NULL;
	}
}

/* use_poll: Python's TestAsynchat_WithPoll ran every test again with
 * asyncore's poll() loop; here, a base that may not use epoll. */
static struct harness *harness_new(int collect_mode, int tcp, int use_poll)
{
	struct harness *h = calloc(1, sizeof(*h));
	ck_assert_ptr_nonnull(h);
	if (use_poll) {
		struct event_config *cfg = event_config_new();
		ck_assert_ptr_nonnull(cfg);
		event_config_avoid_method(cfg, "epoll");
		h->base = event_base_new_with_config(cfg);
		event_config_free(cfg);
		ck_assert_ptr_nonnull(h->base);
		ck_assert_str_ne(event_base_get_method(h->base), "epoll");
	} else {
		h->base = event_base_new();
		ck_assert_ptr_nonnull(h->base);
	}
	if (tcp)
		ck_assert_int_eq(conn_tcp(&h->c, h->base), 0);
	else
		ck_assert_int_eq(conn_socketpair(&h->c, h->base), 0);
	h->chat = evchat_new(h->c.bev, 0);
	ck_assert_ptr_nonnull(h->chat);
	recorder_init(&h->rec);
	h->rec.user = h;
	h->collect_mode = collect_mode;
	h->unfinished_at_event = evbuffer_new();
	ck_assert_ptr_nonnull(h->unfinished_at_event);
	evchat_setcb(h->chat, collect_mode ? h_collect : NULL, h_found,
	             h_event, h);
	return h;
}

static void harness_free(struct harness *h)
{
	evchat_free(h->chat); /* NULL is fine */
	event_base_free(h->base);
	conn_close_peer(&h->c);
	recorder_clear(&h->rec);
	evbuffer_free(h->unfinished_at_event);
	free(h);
}

static void tick(struct event_base *base, int usec)
{
	struct timeval tv = { 0, usec };
	event_base_loopexit(base, &tv);
	event_base_loop(base, EVLOOP_ONCE);
}

static void run_until_event(struct harness *h, int ms)
{
	long long end = now_ms() + ms;
	while (h->rec.nevents == 0 && now_ms() < end)
		tick(h->base, 5000);
	run_pending(h->base);
}

static void run_until_unfinished(struct harness *h, size_t n, int ms)
{
	struct evbuffer *buf =
	    h->collect_mode ? h->rec.collecting : evchat_get_pending(h->chat);
	long long end = now_ms() + ms;
	while (evbuffer_get_length(buf) < n && h->rec.nevents == 0 &&
	       now_ms() < end)
		tick(h->base, 5000);
	run_pending(h->base);
}

/* ------------------------------------------------------------------ */
/* Assertions */

static char *printable(const void *data, size_t len)
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

/* The assertions leak printable()'s result: they only make it when the
 * test is failing anyway. */
static void expect_bytes(const char *what, struct evbuffer *buf,
                         const void *want, size_t len)
{
	size_t got_len = evbuffer_get_length(buf);
	const void *got = got_len ? evbuffer_pullup(buf, -1) : (const void *)"";
	if (got_len != len || memcmp(got, want, len) != 0)
		ck_abort_msg("%s: %s: got \"%s\", want \"%s\"", test_ctx, what,
		             printable(got, got_len), printable(want, len));
}

/* Python's self.assertEqual(c.contents, [...]). */
static void expect_text_frames(const struct recorder *rec,
                               const char *const *want, size_t n)
{
	const char *all = (const char *)evbuffer_pullup(rec->frames, -1);
	size_t off = 0;
	if (all == NULL)
		all = "";
	for (size_t i = 0; i < n && i < rec->nframes; i++) {
		size_t len = strlen(want[i]);
		if (rec->frame_len[i] != len ||
		    memcmp(all + off, want[i], len) != 0)
			ck_abort_msg("%s: frame %zu: got \"%s\", want \"%s\"",
			             test_ctx, i,
			             printable(all + off, rec->frame_len[i]),
			             printable(want[i], len));
		off += rec->frame_len[i];
	}
	ck_assert_msg(rec->nframes == n, "%s: got %zu frames, want %zu",
	              test_ctx, rec->nframes, n);
}

#define EXPECT_FRAMES(rec, ...)                                             \
	do {                                                                \
		const char *const want_[] = { __VA_ARGS__ };                \
		expect_text_frames((rec), want_,                            \
		                   sizeof(want_) / sizeof(want_[0]));       \
	} while (0)

/* ------------------------------------------------------------------ */
/* The echo server, inline */

/* Reads from the peer into got until needle has arrived, running the loop
 * so the channel can write. */
static void peer_read_until(struct harness *h, struct evbuffer *got,
                            const char *needle)
{
	long long end = now_ms() + 5000;
	while (evbuffer_search(got, needle, strlen(needle), NULL).pos < 0) {
		ck_assert_msg(now_ms() < end, "%s: the peer never got \"%s\"",
		              test_ctx, needle);
		int n = evbuffer_read(got, h->c.peer, 4096);
		if (n > 0)
			continue;
		ck_assert_msg(n < 0 && (errno == EAGAIN || errno == EINTR),
		              "%s: peer read: %s", test_ctx,
		              n == 0 ? "EOF" : strerror(errno));
		tick(h->base, 2000);
	}
}

/* Python's echo_server.run(): collects until QUIT, removes it, sends the
 * rest back chunk_size bytes per send(), then closes. Leaves what the
 * server received, QUIT included, in received. */
static void echo_server(struct harness *h, size_t chunk_size,
                        struct evbuffer *received)
{
	peer_read_until(h, received, SERVER_QUIT);
	size_t len = evbuffer_get_length(received);
	const char *data = (const char *)evbuffer_pullup(received, -1);
	char *echo = malloc(len);
	size_t echo_len = 0;
	ck_assert_ptr_nonnull(echo);
	/* self.buffer.replace(SERVER_QUIT, b'') */
	for (size_t i = 0; i < len;) {
		if (len - i >= strlen(SERVER_QUIT) &&
		    memcmp(data + i, LIT(SERVER_QUIT)) == 0) {
			i += strlen(SERVER_QUIT);
			continue;
		}
		echo[echo_len++] = data[i++];
	}
	/* time.sleep(0.001) between sends becomes letting the channel read
	 * each chunk before the next, so each is a read of its own. */
	for (size_t off = 0; off < echo_len; off += chunk_size) {
		size_t n = echo_len - off < chunk_size ? echo_len - off
		                                        : chunk_size;
		write_all(h->c.peer, echo + off, n);
		run_pending(h->base);
	}
	free(echo);
	conn_close_peer(&h->c);
}

/* ------------------------------------------------------------------ */
/* TestAsynchat */

static void line_terminator_check(const char *term, size_t chunk_size,
                                  int collect, int use_poll)
{
	char buf[64];
	char *shown = printable(term, strlen(term));
	note("terminator \"%s\", chunk_size %zu, %s mode%s", shown,
	     chunk_size, collect ? "collect" : "frame",
	     use_poll ? ", poll" : "");
	free(shown);
	struct harness *h = harness_new(collect, 1, use_poll);
	struct evbuffer *received = evbuffer_new();
	ck_assert_int_eq(evchat_set_terminator(h->chat, term, strlen(term)), 0);
	ck_assert_int_eq(evchat_push(h->chat, LIT("hello ")), 0);
	snprintf(buf, sizeof(buf), "world%s", term);
	ck_assert_int_eq(evchat_push(h->chat, buf, strlen(buf)), 0);
	snprintf(buf, sizeof(buf), "I'm not dead yet!%s", term);
	ck_assert_int_eq(evchat_push(h->chat, buf, strlen(buf)), 0);
	ck_assert_int_eq(evchat_push(h->chat, LIT(SERVER_QUIT)), 0);
	echo_server(h, chunk_size, received);
	run_until_event(h, 2000);

	EXPECT_FRAMES(&h->rec, "hello world", "I'm not dead yet!");
	/* More than Python checks: the server got exactly what was pushed,
	 * and the close was seen once, as EOF, with nothing left over. */
	snprintf(buf, sizeof(buf), "hello world%sI'm not dead yet!%s%s", term,
	         term, SERVER_QUIT);
	expect_bytes("server received", received, buf, strlen(buf));
	ck_assert_uint_eq(h->rec.nevents, 1);
	ck_assert(h->rec.events[0] & EVCHAT_EVENT_EOF);
	ck_assert_uint_eq(evbuffer_get_length(h->unfinished_at_event), 0);
	evbuffer_free(received);
	harness_free(h);
}

/* The line terminator tests below check receiving variously-sized chunks
 * back from the server "in order to exercise all branches of
 * async_chat.handle_read". _i: mode x (default backend, poll). */

/* test_line_terminator1: one-character terminator. */
START_TEST(test_line_terminator1)
{
	for (size_t l = 1; l <= 3; l++)
		line_terminator_check("\n", l, _i % 2, _i / 2);
}
END_TEST

/* test_line_terminator2: two-character terminator. */
START_TEST(test_line_terminator2)
{
	for (size_t l = 1; l <= 3; l++)
		line_terminator_check("\r\n", l, _i % 2, _i / 2);
}
END_TEST

/* test_line_terminator3: three-character terminator. */
START_TEST(test_line_terminator3)
{
	for (size_t l = 1; l <= 3; l++)
		line_terminator_check("qqq", l, _i % 2, _i / 2);
}
END_TEST

static const char data_line[] = "hello world, I'm not dead yet!\n";

/* numeric_terminator_check(): reads a fixed number of bytes. After the
 * count, asynchat's terminator is 0, i.e. none: the rest is collected
 * (Python does not check it; the bytes must still be there). */
static void numeric_terminator_check(ev_uint64_t termlen, int collect)
{
	char first[64];
	size_t n = (size_t)termlen;
	note("count %zu, %s mode", n, collect ? "collect" : "frame");
	struct harness *h = harness_new(collect, 1, 0);
	struct evbuffer *received = evbuffer_new();
	ck_assert_int_eq(evchat_set_terminator_count(h->chat, termlen), 0);
	ck_assert_int_eq(evchat_push(h->chat, LIT(data_line)), 0);
	ck_assert_int_eq(evchat_push(h->chat, LIT(SERVER_QUIT)), 0);
	echo_server(h, 1, received);
	run_until_event(h, 2000);

	memcpy(first, data_line, n);
	first[n] = '\0';
	EXPECT_FRAMES(&h->rec, first); /* [data[:termlen]] */
	ck_assert_uint_eq(h->rec.nevents, 1);
	ck_assert(h->rec.events[0] & EVCHAT_EVENT_EOF);
	expect_bytes("after the count", h->unfinished_at_event, data_line + n,
	             sizeof(data_line) - 1 - n);
	evbuffer_free(received);
	harness_free(h);
}

/* test_numeric_terminator1: "check that ints & longs both work". _i: mode. */
START_TEST(test_numeric_terminator1)
{
	numeric_terminator_check(1, _i);
}
END_TEST

/* test_numeric_terminator2. _i: mode. */
START_TEST(test_numeric_terminator2)
{
	numeric_terminator_check(6, _i);
}
END_TEST

/* test_none_terminator: no frames; every byte is in c.buffer. Here the
 * collected bytes in collect mode, evchat_get_pending() in frame mode.
 * _i: mode. */
START_TEST(test_none_terminator)
{
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 1, 0);
	struct evbuffer *received = evbuffer_new();
	ck_assert_int_eq(evchat_set_terminator_none(h->chat), 0);
	ck_assert_int_eq(evchat_push(h->chat, LIT(data_line)), 0);
	ck_assert_int_eq(evchat_push(h->chat, LIT(SERVER_QUIT)), 0);
	echo_server(h, 1, received);
	run_until_event(h, 2000);

	ck_assert_uint_eq(h->rec.nframes, 0);
	ck_assert_uint_eq(h->rec.nevents, 1);
	ck_assert(h->rec.events[0] & EVCHAT_EVENT_EOF);
	expect_bytes("c.buffer", h->unfinished_at_event, LIT(data_line));
	if (!_i)
		expect_bytes("pending", evchat_get_pending(h->chat),
		             LIT(data_line));
	evbuffer_free(received);
	harness_free(h);
}
END_TEST

/* asynchat.simple_producer: gives buffer_size bytes per more() call, then
 * b'' once the data is used up. */
struct simple_producer {
	const char *data;
	size_t len;
	size_t buffer_size;
	size_t calls;
	int released;
};

static int simple_producer_more(struct evchat *chat, struct evbuffer *out,
                                size_t want, void *arg)
{
	struct simple_producer *p = arg;
	ck_assert_int_eq(p->released, 0);
	ck_assert_uint_gt(want, 0);
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	p->calls++;
	size_t n = p->len < p->buffer_size ? p->len : p->buffer_size;
	if (n == 0)
		return 0;
	ck_assert_int_eq(evbuffer_add(out, p->data, n), 0);
	p->data += n;
	p->len -= n;
	return (int)n;
}

static void simple_producer_release(void *arg)
{
	struct simple_producer *p = arg;
	p->released++;
}

static const char producer_data[] =
    "hello world\nI'm not dead yet!\n" SERVER_QUIT;

/* test_simple_producer: a producer giving 8 bytes at a time. _i: mode. */
START_TEST(test_simple_producer)
{
	struct simple_producer p = { LIT(producer_data), 8, 0, 0 };
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 1, 0);
	struct evbuffer *received = evbuffer_new();
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	ck_assert_int_eq(evchat_push_producer(h->chat, simple_producer_more,
	                                      simple_producer_release, &p),
	                 0);
	echo_server(h, 1, received);
	run_until_event(h, 2000);

	EXPECT_FRAMES(&h->rec, "hello world", "I'm not dead yet!");
	expect_bytes("server received", received, LIT(producer_data));
	/* 35 bytes, 8 at a time: five calls with bytes (the last with 3),
	 * one that says the producer is exhausted, then a single release. */
	ck_assert_uint_eq(p.calls, 6);
	ck_assert_int_eq(p.released, 1);
	evbuffer_free(received);
	harness_free(h);
	ck_assert_int_eq(p.released, 1);
}
END_TEST

/* An echo server that is an evchat too: each line comes back; "QUIT" ends
 * the exchange with close_when_done(). */
struct echo_chat {
	struct evchat *chat;
	int closed;
};

static void echo_chat_found(struct evchat *chat, struct evbuffer *line,
                            void *arg)
{
	if (evbuffer_get_length(line) == 4 &&
	    memcmp(evbuffer_pullup(line, -1), "QUIT", 4) == 0) {
		ck_assert_int_eq(evchat_close_when_done(chat), 0);
		return;
	}
	ck_assert_int_eq(evchat_push_buffer(chat, line), 0);
	ck_assert_int_eq(evchat_push(chat, LIT("\n")), 0);
}

static void echo_chat_event(struct evchat *chat, short events, void *arg)
{
	struct echo_chat *server = arg;
	ck_assert_msg(events & EVCHAT_EVENT_CLOSED, "server event 0x%x",
	              (unsigned)events);
	server->closed++;
	evchat_free(chat);
	server->chat = NULL;
}

/* test_simple_producer again, with both ends evchat channels on one base:
 * the client's producer feeds the server, whose echo the client frames.
 * _i: mode. */
START_TEST(test_simple_producer_two_channels)
{
	struct simple_producer p = { LIT(producer_data), 8, 0, 0 };
	struct echo_chat server = { NULL, 0 };
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 0, 0);
	struct bufferevent *bev = bufferevent_socket_new(
	    h->base, h->c.peer, BEV_OPT_CLOSE_ON_FREE);
	ck_assert_ptr_nonnull(bev);
	h->c.peer = -1; /* the server's channel owns it now */
	server.chat = evchat_new(bev, 0);
	ck_assert_ptr_nonnull(server.chat);
	evchat_setcb(server.chat, NULL, echo_chat_found, echo_chat_event,
	             &server);
	ck_assert_int_eq(evchat_set_terminator(server.chat, LIT("\n")), 0);

	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	ck_assert_int_eq(evchat_push_producer(h->chat, simple_producer_more,
	                                      simple_producer_release, &p),
	                 0);
	run_until_event(h, 3000);

	EXPECT_FRAMES(&h->rec, "hello world", "I'm not dead yet!");
	ck_assert_int_eq(server.closed, 1);
	ck_assert_ptr_null(server.chat);
	ck_assert_uint_eq(h->rec.nevents, 1);
	ck_assert(h->rec.events[0] & EVCHAT_EVENT_EOF);
	ck_assert_int_eq(p.released, 1);
	harness_free(h);
}
END_TEST

/* test_string_producer: Python queues a bytes object as the producer; the
 * C way to hand over bytes without copying is evchat_push_buffer().
 * _i: mode. */
START_TEST(test_string_producer)
{
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 1, 0);
	struct evbuffer *received = evbuffer_new();
	struct evbuffer *buf = evbuffer_new();
	ck_assert_int_eq(evbuffer_add(buf, LIT(producer_data)), 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	ck_assert_int_eq(evchat_push_buffer(h->chat, buf), 0);
	ck_assert_uint_eq(evbuffer_get_length(buf), 0); /* moved */
	evbuffer_free(buf);
	echo_server(h, 1, received);
	run_until_event(h, 2000);

	EXPECT_FRAMES(&h->rec, "hello world", "I'm not dead yet!");
	expect_bytes("server received", received, LIT(producer_data));
	evbuffer_free(received);
	harness_free(h);
}
END_TEST

/* test_empty_line: "checks that empty lines are handled correctly".
 * _i: mode. */
START_TEST(test_empty_line)
{
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 1, 0);
	struct evbuffer *received = evbuffer_new();
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	ck_assert_int_eq(evchat_push(h->chat,
	                             LIT("hello world\n\nI'm not dead yet!\n")),
	                 0);
	ck_assert_int_eq(evchat_push(h->chat, LIT(SERVER_QUIT)), 0);
	echo_server(h, 1, received);
	run_until_event(h, 2000);

	EXPECT_FRAMES(&h->rec, "hello world", "", "I'm not dead yet!");
	evbuffer_free(received);
	harness_free(h);
}
END_TEST

/*
 * test_close_when_done: the client pushes, then closes when done; Python
 * checks that the server got something and the client no frames. Here the
 * server must get every byte, then EOF, and the hook EVCHAT_EVENT_CLOSED
 * once (from the loop, not from inside the call). evchat promises more
 * than asynchat: no frame is delivered after the call even when lines are
 * already waiting to be read, and pushing fails with EPIPE.
 * _i: 0 socketpair with lines waiting; 1 TCP (Python's), nothing waiting
 * (a TCP socket closed with unread input sends RST, and the peer might
 * then lose what it had not read yet).
 */
START_TEST(test_close_when_done)
{
	static const char pushed[] =
	    "hello world\nI'm not dead yet!\n" SERVER_QUIT;
	int tcp = _i;
	note("%s", tcp ? "TCP" : "socketpair");
	struct harness *h = harness_new(1, tcp, 0);
	struct evbuffer *received = evbuffer_new();
	h->free_on_closed = 1;
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	if (!tcp)
		write_all(h->c.peer, LIT("hello world\nI'm not dead yet!\n"));
	ck_assert_int_eq(evchat_push(h->chat, LIT("hello world\n")), 0);
	ck_assert_int_eq(evchat_push(h->chat, LIT("I'm not dead yet!\n")), 0);
	ck_assert_int_eq(evchat_push(h->chat, LIT(SERVER_QUIT)), 0);
	ck_assert_int_eq(evchat_close_when_done(h->chat), 0);
	ck_assert_uint_eq(h->rec.nevents, 0);
	errno = 0;
	ck_assert_int_eq(evchat_push(h->chat, LIT("late\n")), -1);
	ck_assert_int_eq(errno, EPIPE);
	ck_assert_int_eq(evchat_close_when_done(h->chat), 0); /* harmless */

	ck_assert_int_eq(drain_peer_until_eof(h->base, h->c.peer, received,
	                                      3000), 1);
	run_pending(h->base);
	expect_bytes("server received", received, LIT(pushed));
	ck_assert_uint_eq(h->rec.nevents, 1);
	ck_assert_msg(h->rec.events[0] & EVCHAT_EVENT_CLOSED, "event 0x%x",
	              (unsigned)h->rec.events[0]);
	ck_assert_ptr_null(h->chat);
	ck_assert_uint_eq(h->rec.nframes, 0); /* self.assertEqual(c.contents, []) */
	evbuffer_free(received);
	harness_free(h);
}
END_TEST

/* test_push: push() takes bytes, bytearray and memoryview, and raises
 * TypeError for anything else. The C analogues: bytes copied by
 * evchat_push() (even from a buffer freed right after), moved by
 * evchat_push_buffer(), and EINVAL for a NULL with a length. _i: mode. */
START_TEST(test_push)
{
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 1, 0);
	struct evbuffer *received = evbuffer_new();
	struct evbuffer *buf = evbuffer_new();
	char *copy = strdup("bytes\n");
	ck_assert_ptr_nonnull(copy);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);

	ck_assert_int_eq(evchat_push(h->chat, LIT("bytes\n")), 0);
	ck_assert_int_eq(evbuffer_add(buf, LIT("bytes\n")), 0);
	ck_assert_int_eq(evchat_push_buffer(h->chat, buf), 0);
	ck_assert_int_eq(evchat_push(h->chat, copy, strlen(copy)), 0);
	memset(copy, 'X', strlen(copy));
	free(copy);
	ck_assert_int_eq(evchat_push(h->chat, "", 0), 0);

	errno = 0;
	ck_assert_int_eq(evchat_push(h->chat, NULL, 10), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(evchat_push(NULL, LIT("x")), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(evchat_push_buffer(h->chat, NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(evchat_push_buffer(NULL, buf), -1);
	ck_assert_int_eq(errno, EINVAL);

	ck_assert_int_eq(evchat_push(h->chat, LIT(SERVER_QUIT)), 0);
	echo_server(h, 1, received);
	run_until_event(h, 2000);

	EXPECT_FRAMES(&h->rec, "bytes", "bytes", "bytes");
	/* The refused pushes sent nothing. */
	expect_bytes("server received", received,
	             LIT("bytes\nbytes\nbytes\n" SERVER_QUIT));
	evbuffer_free(buf);
	evbuffer_free(received);
	harness_free(h);
}
END_TEST

/* TestAsynchatMocked.test_blockingioerror: handle_read() must shrug off
 * EAGAIN. libevent owns the reads, so the observable part is that waking
 * up with nothing to read reports nothing, and the channel still works. */
START_TEST(test_nothing_to_read)
{
	struct harness *h = harness_new(0, 0, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	run_pending(h->base);
	tick(h->base, 20000);
	ck_assert_uint_eq(h->rec.nframes, 0);
	ck_assert_uint_eq(h->rec.nevents, 0);
	ck_assert_uint_eq(evbuffer_get_length(evchat_get_pending(h->chat)), 0);
	write_all(h->c.peer, LIT("ok\n"));
	run_pending(h->base);
	EXPECT_FRAMES(&h->rec, "ok");
	harness_free(h);
}
END_TEST

/* ------------------------------------------------------------------ */
/* TestHelperFunctions, TestNotConnected */

/*
 * test_find_prefix_at_end: find_prefix_at_end("qwerty\r", "\r\n") == 1 and
 * find_prefix_at_end("qwertydkjf", "\r\n") == 0. The helper is internal
 * here; what it decides is visible in collect mode: "qwerty\r" gives
 * collect "qwerty" and holds back the "\r" until the next byte shows
 * whether it starts the terminator, while "qwertydkjf" is collected whole.
 */
START_TEST(test_find_prefix_at_end)
{
	struct harness *h = harness_new(1, 0, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\r\n")), 0);
	write_all(h->c.peer, LIT("qwerty\r"));
	run_until_unfinished(h, 6, 2000);
	expect_bytes("collected", h->rec.collecting, LIT("qwerty"));
	ck_assert_uint_eq(h->rec.nframes, 0);
	write_all(h->c.peer, LIT("\n"));
	run_pending(h->base);
	EXPECT_FRAMES(&h->rec, "qwerty");

	write_all(h->c.peer, LIT("qwertydkjf"));
	run_until_unfinished(h, 10, 2000);
	expect_bytes("collected", h->rec.collecting, LIT("qwertydkjf"));

	/* A held "\r" that turns out not to start "\r\n" is data. */
	write_all(h->c.peer, LIT("\r"));
	run_pending(h->base);
	expect_bytes("collected", h->rec.collecting, LIT("qwertydkjf"));
	write_all(h->c.peer, LIT("x\r\n"));
	run_pending(h->base);
	EXPECT_FRAMES(&h->rec, "qwerty", "qwertydkjf\rx");
	harness_free(h);
}
END_TEST

/* test_disallow_negative_terminator (issue #11259): set_terminator(-1)
 * raises ValueError. A negative count cannot be passed in C; evchat's
 * invalid terminator is the empty string (asynchat takes b'' as "none"),
 * refused with EINVAL. */
START_TEST(test_disallow_empty_terminator)
{
	struct harness *h = harness_new(0, 0, 0);
	errno = 0;
	ck_assert_int_eq(evchat_set_terminator(h->chat, "", 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(evchat_set_terminator(h->chat, NULL, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	harness_free(h);
}
END_TEST

Suite *asynchat_port_suite(void)
{
	Suite *s = suite_create("asynchat_port");
	TCase *tc;

	tc = tcase_create("TestAsynchat");
	tcase_add_loop_test(tc, test_line_terminator1, 0, 4);
	tcase_add_loop_test(tc, test_line_terminator2, 0, 4);
	tcase_add_loop_test(tc, test_line_terminator3, 0, 4);
	tcase_add_loop_test(tc, test_numeric_terminator1, 0, 2);
	tcase_add_loop_test(tc, test_numeric_terminator2, 0, 2);
	tcase_add_loop_test(tc, test_none_terminator, 0, 2);
	tcase_add_loop_test(tc, test_simple_producer, 0, 2);
	tcase_add_loop_test(tc, test_simple_producer_two_channels, 0, 2);
	tcase_add_loop_test(tc, test_string_producer, 0, 2);
	tcase_add_loop_test(tc, test_empty_line, 0, 2);
	tcase_add_loop_test(tc, test_close_when_done, 0, 2);
	tcase_add_loop_test(tc, test_push, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("TestAsynchatMocked");
	tcase_add_test(tc, test_nothing_to_read);
	suite_add_tcase(s, tc);

	tc = tcase_create("TestHelperFunctions");
	tcase_add_test(tc, test_find_prefix_at_end);
	suite_add_tcase(s, tc);

	tc = tcase_create("TestNotConnected");
	tcase_add_test(tc, test_disallow_empty_terminator);
	suite_add_tcase(s, tc);

	return s;
}
