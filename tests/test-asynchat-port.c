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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "helpers.h"
#include "suites.h"

#define SERVER_QUIT "QUIT\n"

/* ------------------------------------------------------------------ */
/* Fixtures */

/* The harness and the assertions are shared, in helpers.h; there
 * EXPECT_FRAMES() is Python's self.assertEqual(c.contents, [...]). */

/* Python's TestAsynchat_WithPoll ran every test again with asyncore's
 * poll() loop; here that is a base that may not use epoll. */
static struct event_base *poll_base(void)
{
	struct event_config *cfg = event_config_new();
	ck_assert_ptr_nonnull(cfg);
	event_config_avoid_method(cfg, "epoll");
	struct event_base *base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	ck_assert_ptr_nonnull(base);
	ck_assert_str_ne(event_base_get_method(base), "epoll");
	return base;
}

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
		run_tick(h->base, 2000);
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
	note("terminator \"%s\", chunk_size %zu, %s mode%s", shown, chunk_size,
	     collect ? "collect" : "frame", use_poll ? ", poll" : "");
	free(shown);
	struct harness *h = use_poll ? harness_new_on(poll_base(), collect, 1)
	                             : harness_new(collect, 1);
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
	expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
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
	struct harness *h = harness_new(collect, 1);
	struct evbuffer *received = evbuffer_new();
	ck_assert_int_eq(evchat_set_terminator_count(h->chat, termlen), 0);
	ck_assert_int_eq(evchat_push(h->chat, LIT(data_line)), 0);
	ck_assert_int_eq(evchat_push(h->chat, LIT(SERVER_QUIT)), 0);
	echo_server(h, 1, received);
	run_until_event(h, 2000);

	memcpy(first, data_line, n);
	first[n] = '\0';
	EXPECT_FRAMES(&h->rec, first); /* [data[:termlen]] */
	expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
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
	struct harness *h = harness_new(_i, 1);
	struct evbuffer *received = evbuffer_new();
	ck_assert_int_eq(evchat_set_terminator_none(h->chat), 0);
	ck_assert_int_eq(evchat_push(h->chat, LIT(data_line)), 0);
	ck_assert_int_eq(evchat_push(h->chat, LIT(SERVER_QUIT)), 0);
	echo_server(h, 1, received);
	run_until_event(h, 2000);

	ck_assert_uint_eq(h->rec.nframes, 0);
	expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
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
	struct harness *h = harness_new(_i, 1);
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
	struct harness *h = harness_new(_i, 0);
	struct bufferevent *bev = bufferevent_socket_new(h->base, h->c.peer,
	                                                 BEV_OPT_CLOSE_ON_FREE);
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
	expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
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
	struct harness *h = harness_new(_i, 1);
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
	struct harness *h = harness_new(_i, 1);
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
	struct harness *h = harness_new(1, tcp);
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
	ASSERT_FAILS(evchat_push(h->chat, LIT("late\n")), EPIPE);
	ck_assert_int_eq(evchat_close_when_done(h->chat), 0); /* harmless */

	read_peer_to_eof(&h->c, received, 3000);
	run_until_freed(h->base, &h->chat, 3000);
	expect_bytes("server received", received, LIT(pushed));
	expect_one_event(&h->rec, EVCHAT_EVENT_CLOSED);
	ck_assert_ptr_null(h->chat);
	/* self.assertEqual(c.contents, []) */
	ck_assert_uint_eq(h->rec.nframes, 0);
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
	struct harness *h = harness_new(_i, 1);
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

	ASSERT_FAILS(evchat_push(h->chat, NULL, 10), EINVAL);
	ASSERT_FAILS(evchat_push(NULL, LIT("x")), EINVAL);
	ASSERT_FAILS(evchat_push_buffer(h->chat, NULL), EINVAL);
	ASSERT_FAILS(evchat_push_buffer(NULL, buf), EINVAL);

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
	struct harness *h = harness_new(0, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	run_pending(h->base);
	run_tick(h->base, 20000);
	ck_assert_uint_eq(h->rec.nframes, 0);
	ck_assert_uint_eq(h->rec.nevents, 0);
	ck_assert_uint_eq(pending_len(h), 0);
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
	struct harness *h = harness_new(1, 0);
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
	struct harness *h = harness_new(0, 0);
	ASSERT_FAILS(evchat_set_terminator(h->chat, "", 0), EINVAL);
	ASSERT_FAILS(evchat_set_terminator(h->chat, NULL, 0), EINVAL);
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
