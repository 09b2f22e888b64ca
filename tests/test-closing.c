/*
 * Ending a connection: close_when_done delivers every byte through every
 * layer before CLOSED, even with 64 MiB queued or the peer's requests
 * unread; half-close keeps reading; abort resets; a write timeout bounds a
 * close behind a peer that never reads; an AUTOFREE channel frees itself
 * after its close. Loop tests run over every kind of tests/transport.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <check.h>
#ifdef EVCHAT_TEST_TLS
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>
#include <sys/ioctl.h>
#endif

#include "helpers.h"
#include "suites.h"
#include "transport.h"

/* ---- fixtures ------------------------------------------------------------ */

static struct event_base *base;
static struct transport tr;
static int opened;

static void setup(void)
{
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	opened = 0;
}

static void teardown(void)
{
	if (opened)
		transport_free(&tr);
	event_base_free(base);
	base = NULL;
}

static struct evchat *open_chat(int kind, unsigned flags)
{
	note("%s", transport_name(kind));
	transport_open(&tr, base, kind);
	opened = 1;
	struct evchat *chat = transport_chat(&tr, flags, 0);
	tr.free_on_closed = 1;
	return chat;
}

/* Pushes the next len bytes of the stream. */
static void push_stream(struct evchat *chat, struct prng_stream *s, size_t len)
{
	struct evbuffer *buf = evbuffer_new();
	ck_assert_ptr_nonnull(buf);
	prng_stream_add(s, buf, len);
	ck_assert_int_eq(evchat_push_buffer(chat, buf), 0);
	evbuffer_free(buf);
}

/* What CLOSED promises: nothing was left in any layer, and on TCP the
 * peer had acknowledged every byte. */
static void expect_closed_with_nothing_left(void)
{
	expect_only_event(&tr, EVCHAT_EVENT_CLOSED);
	ck_assert_ptr_null(tr.chat); /* freed at CLOSED, as users do */
	ck_assert_uint_eq(tr.queued_at_closed, 0);
	if (tr.chat_fd >= 0)
		ck_assert_msg(tr.unacked_at_closed == 0,
		              "%s: CLOSED with %zu bytes not acknowledged",
		              test_ctx, tr.unacked_at_closed);
}

/* Opens a channel of the kind, pushes len bytes of the seed's stream,
 * which the peer checks against *expect (borrowed), and closes; with
 * `stalled` the peer reads nothing until told. */
static struct evchat *push_then_close(int kind, ev_uint32_t seed, size_t len,
                                      struct prng_stream *expect, int stalled)
{
	struct evchat *chat = open_chat(kind, 0);
	struct prng_stream out;
	prng_stream_init(&out, seed);
	prng_stream_init(expect, seed);
	peer_expect_stream(&tr, expect);
	if (stalled)
		peer_stop_reading(&tr);
	push_stream(chat, &out, len);
	ck_assert_int_eq(evchat_close_when_done(chat), 0);
	return chat;
}

/* ---- close_when_done with a big queue ------------------------------------ */

/* 64 MiB queued, then close_when_done, while the peer reads nothing: no
 * CLOSED. Once it reads: every byte in order, a clean end (TLS
 * close_notify, the filter's held-back last block), then CLOSED, after
 * which freeing the channel loses nothing. */
START_TEST(test_close_big_queue)
{
	size_t len = test_stream_mib(64) << 20;
	struct prng_stream expect;
	struct evchat *chat = push_then_close(_i, 64, len, &expect, 1);
	ASSERT_FAILS(evchat_push(chat, "late", 4), EPIPE);
	run_for(base, 200);
	ck_assert_msg(!tr.closed_seen && tr.rec.nevents == 0,
	              "%s: an event (0x%x) while the peer had read nothing",
	              test_ctx, (unsigned)tr.rec.events[0]);

	peer_start_reading(&tr);
	run_until_peer_end(&tr, 90000);
	run_until_chat_event(&tr, 5000);
	expect_peer_stream_then_eof(&tr, len);
	expect_closed_with_nothing_left();
}
END_TEST

/* ---- close with the peer's requests unread ------------------------------- */

#define REPLY_LEN ((size_t)4 << 20)

static struct prng_stream reply_stream;

/* The first request gets a 4 MiB reply and a close; the requests the peer
 * pipelined after it are never read as frames. */
static void reply_and_close(struct evchat *chat, struct recorder *rec)
{
	if (rec->nframes != 1)
		return;
	push_stream(chat, &reply_stream, REPLY_LEN);
	ck_assert_int_eq(evchat_close_when_done(chat), 0);
}

/* The classic truncation: close() on a socket with unread input sends a
 * reset at once, and the reset makes the kernel drop the reply it had not
 * sent yet. The peer must get the whole reply and a clean EOF first. */
START_TEST(test_close_with_unread_input)
{
	struct evchat *chat = open_chat(_i, 0);
	ck_assert_int_eq(evchat_set_terminator_line(chat, EVCHAT_EOL_LF), 0);
	struct prng_stream expect;
	prng_stream_init(&reply_stream, 4);
	prng_stream_init(&expect, 4);
	peer_expect_stream(&tr, &expect);
	tr.rec.on_found = reply_and_close;

	/* The peer pipelines 256 KiB of requests and reads nothing yet,
	 * so most of the reply still waits on our side. */
	peer_stop_reading(&tr);
	struct evbuffer *requests = evbuffer_new();
	for (int i = 0; i < 4096; i++)
		evbuffer_add_printf(requests, "GET /%05d %50s\n", i, "");
	peer_write(&tr, evbuffer_pullup(requests, -1),
	           evbuffer_get_length(requests));
	evbuffer_free(requests);
	run_until_chat_frames(&tr, 1, 3000);
	run_for(base, 200);
	ck_assert_msg(!tr.closed_seen,
	              "%s: CLOSED before the peer read the "
	              "reply",
	              test_ctx);

	peer_start_reading(&tr);
	run_until_peer_end(&tr, 10000);
	run_until_chat_event(&tr, 5000);
	expect_peer_stream_then_eof(&tr, REPLY_LEN);
	ck_assert_uint_eq(tr.rec.nframes, 1);
	expect_closed_with_nothing_left();
}
END_TEST

/* A peer that goes on sending after the close began (a client still
 * uploading when the answer refused its request): once everything of
 * ours was delivered, the close lingers, discarding, until the peer's
 * EOF. Closing under it would answer its next bytes with a reset, and a
 * reset can make the peer lose the reply before reading it. */
static const char upload_chunk[4096];

/* A channel answers and closes; the peer sends on, for ms. */
static void close_under_upload(int kind, int ms)
{
	struct evchat *chat = open_chat(kind, 0);
	ck_assert_int_eq(evchat_push(chat, LIT("refused\n")), 0);
	ck_assert_int_eq(evchat_close_when_done(chat), 0);
	long long end = now_ms() + ms;
	while (now_ms() < end) {
		peer_write(&tr, upload_chunk, sizeof(upload_chunk));
		run_tick(base, 5000);
	}
}

/* The close is over, the peer got the answer and a clean end. */
static void expect_answer_then_clean_close(void)
{
	run_until_chat_event(&tr, 5000);
	run_until_peer_end(&tr, 3000);
	expect_peer_clean_end(&tr);
	expect_bytes("reply", tr.peer.received, LIT("refused\n"));
	expect_closed_with_nothing_left();
}

START_TEST(test_close_lingers_while_peer_sends)
{
#ifdef EVCHAT_TEST_TLS
	/* libevent's TLS filter over a pair stops sending once it has read
	 * our close_notify (its socket layers go on): that peer falls
	 * silent, and there is nothing to linger for. */
	if (_i == TRANSPORT_TLS_PAIR)
		return;
#endif
	close_under_upload(_i, 1500); /* three times the quiet time */
	ck_assert_msg(!tr.closed_seen,
	              "%s: CLOSED while the peer was still sending", test_ctx);
	peer_close(&tr);
	expect_answer_then_clean_close();
}
END_TEST

/* The same peer falling silent without ending: the close ends once it
 * has been quiet a while, and, as it sends nothing more, cleanly. */
/* The peer's bytes wait unread in the socket (input paused, or a frame
 * refused) when the close finds everything of ours acknowledged at its
 * first look: they are heard as well, or closing over them would reset
 * the connection at once. On TCP and TLS over it (on a pair nothing
 * resets). */
START_TEST(test_close_lingers_over_unread_input)
{
	int kind = _i == 0 ? TRANSPORT_TCP : TRANSPORT_TLS;
	struct evchat *chat = open_chat(kind, 0);
	ck_assert_int_eq(evchat_pause_input(chat), 0);
	ck_assert_int_eq(evchat_push(chat, LIT("refused\n")), 0);
	for (int i = 0; i < 20; i++) {
		peer_write(&tr, upload_chunk, sizeof(upload_chunk));
		run_tick(base, 5000);
	}
	ck_assert_int_eq(evchat_close_when_done(chat), 0);
	long long end = now_ms() + 1500;
	while (now_ms() < end) {
		peer_write(&tr, upload_chunk, sizeof(upload_chunk));
		run_tick(base, 5000);
	}
	ck_assert_msg(!tr.closed_seen,
	              "%s: CLOSED while the peer was still sending", test_ctx);
	peer_close(&tr);
	expect_answer_then_clean_close();
}
END_TEST

START_TEST(test_close_lingers_until_peer_quiet)
{
	close_under_upload(_i, 100);
	expect_answer_then_clean_close();
}
END_TEST

/* ---- half-close ---------------------------------------------------------- */

/* shutdown_write after a reply: the peer reads the reply and a clean EOF,
 * and can still send frames, which the channel delivers, until its own
 * close ends the channel with EOF. */
START_TEST(test_half_close)
{
	struct evchat *chat = open_chat(_i, 0);
	ck_assert_int_eq(evchat_set_terminator_line(chat, EVCHAT_EOL_LF), 0);
	peer_write(&tr, LIT("hello\n"));
	run_until_chat_frames(&tr, 1, 3000);
	EXPECT_FRAMES(&tr.rec, "hello");

	/* No whole number of the filter's blocks. */
	static char reply[3000];
	memset(reply, 'r', sizeof(reply) - 1);
	reply[sizeof(reply) - 1] = '\n';
	ck_assert_int_eq(evchat_push(chat, reply, sizeof(reply)), 0);
	ck_assert_int_eq(evchat_shutdown_write(chat), 0);
	ASSERT_FAILS(evchat_push(chat, "x", 1), EPIPE);
	ck_assert_int_eq(evchat_shutdown_write(chat), 0); /* harmless */

	run_until_peer_end(&tr, 3000);
	expect_bytes("reply", tr.peer.received, reply, sizeof(reply));
	expect_peer_clean_end(&tr);
	ck_assert_uint_eq(tr.rec.nevents, 0);

	peer_write(&tr, LIT("more\nagain\n"));
	run_until_chat_frames(&tr, 3, 3000);
	EXPECT_FRAMES(&tr.rec, "hello", "more", "again");
	ck_assert_uint_eq(tr.rec.nevents, 0);

	peer_close(&tr);
	run_until_chat_event(&tr, 3000);
	expect_only_event(&tr, EVCHAT_EVENT_EOF);
}
END_TEST

/* ---- abort --------------------------------------------------------------- */

/* How a raw socket's stream ends: 0 for EOF, else the errno of the failed
 * read (-1 if nothing ended within ms). Reads and drops data meanwhile. */
static int socket_end(evutil_socket_t fd, int ms)
{
	char buf[65536];
	long long end = now_ms() + ms;
	while (now_ms() < end) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0)
			return 0;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return errno;
		if (n < 0)
			run_tick(base, 2000);
	}
	return -1;
}

static struct conn raw;
static struct evchat *raw_chat;

static struct evchat *open_raw_tcp(struct recorder *rec)
{
	note("tcp, raw peer");
	ck_assert_int_eq(conn_tcp(&raw, base), 0);
	raw_chat = evchat_new(raw.bev, 0);
	ck_assert_ptr_nonnull(raw_chat);
	recorder_init(rec);
	evchat_setcb(raw_chat, NULL, recorder_found_cb, recorder_event_cb, rec);
	ck_assert_int_eq(evchat_set_terminator_line(raw_chat, EVCHAT_EOL_LF),
	                 0);
	return raw_chat;
}

static void close_raw(struct recorder *rec)
{
	evchat_free(raw_chat);
	raw_chat = NULL;
	conn_close_peer(&raw);
	recorder_clear(rec);
}

static void abort_on_first(struct evchat *chat, struct recorder *rec)
{
	if (rec->nframes != 1)
		return;
	ck_assert_int_eq(evchat_push(chat, LIT("never sent\n")), 0);
	evchat_abort(chat);
	raw_chat = NULL;
}

/* Aborted from inside found: no hook runs again, not for the frames
 * already read nor for the end, and the peer sees a reset, not an EOF
 * that could pass for a complete reply. */
START_TEST(test_abort_inside_found)
{
	struct recorder rec;
	open_raw_tcp(&rec);
	rec.on_found = abort_on_first;
	write_all(raw.peer, LIT("first\nsecond\nthird\n"));
	long long end = now_ms() + 3000;
	while (raw_chat != NULL && now_ms() < end)
		run_tick(base, 2000);
	ck_assert_ptr_null(raw_chat);
	/* Read before writing: a write would consume the reset's error. */
	int err = socket_end(raw.peer, 3000);
	ck_assert_msg(err == ECONNRESET,
	              "the peer's stream ended with %d "
	              "(%s), want ECONNRESET",
	              err, err > 0 ? strerror(err) : "EOF or nothing");
	run_for(base, 50);
	EXPECT_FRAMES(&rec, "first");
	ck_assert_uint_eq(rec.nevents, 0);
	close_raw(&rec);
}
END_TEST

/* Aborted with 4 MiB queued: a reset, never an EOF. */
START_TEST(test_abort_with_output_queued)
{
	struct recorder rec;
	struct evchat *chat = open_raw_tcp(&rec);
	struct prng_stream out;
	prng_stream_init(&out, 9);
	push_stream(chat, &out, (size_t)4 << 20);
	run_for(base, 20); /* some of it goes out */
	evchat_abort(chat);
	raw_chat = NULL;
	int err = socket_end(raw.peer, 3000);
	ck_assert_msg(err == ECONNRESET,
	              "the peer's stream ended with %d "
	              "(%s), want ECONNRESET",
	              err, err > 0 ? strerror(err) : "EOF or nothing");
	ck_assert_uint_eq(rec.nevents, 0);
	close_raw(&rec);
}
END_TEST

/* A producer that gives 100,000 bytes, then fails. */
static int failing_more(struct evchat *chat, struct evbuffer *out, size_t want,
                        void *arg)
{
	size_t *left = arg;
	(void)chat;
	if (*left == 0) {
		errno = EIO;
		return -1;
	}
	static char block[4096];
	memset(block, 'p', sizeof(block));
	size_t n = want < sizeof(block) ? want : sizeof(block);
	n = n < *left ? n : *left;
	ck_assert_int_eq(evbuffer_add(out, block, n), 0);
	*left -= n;
	return 1;
}

/* An AUTOFREE channel whose output failed resets the connection, as
 * evchat_abort() does: the peer must not take what it got for a whole
 * reply. _i: a producer that fails (an error), or a peer that stopped
 * reading (a write timeout). */
START_TEST(test_autofree_resets_after_failure)
{
	struct recorder rec;
	note("tcp, %s", _i ? "write timeout" : "producer fails");
	ck_assert_int_eq(conn_tcp(&raw, base), 0);
	raw_chat = evchat_new(raw.bev, EVCHAT_OPT_AUTOFREE);
	ck_assert_ptr_nonnull(raw_chat);
	recorder_init(&rec);
	evchat_setcb(raw_chat, NULL, recorder_found_cb, recorder_event_cb,
	             &rec);
	size_t left = 100000;
	if (_i == 0) {
		ck_assert_int_eq(evchat_push_producer(raw_chat, failing_more,
		                                      NULL, &left),
		                 0);
	} else {
		struct timeval write_timeout = { 0, 200 * 1000 };
		ck_assert_int_eq(evchat_set_timeouts(raw_chat, NULL,
		                                     &write_timeout),
		                 0);
		static char block[1 << 20];
		memset(block, 'x', sizeof(block));
		for (int i = 0; i < 8; i++)
			ck_assert_int_eq(evchat_push(raw_chat, block,
			                             sizeof(block)),
			                 0);
		/* Not a byte read until the channel gave up. */
		long long end = now_ms() + 5000;
		while (rec.nevents == 0 && now_ms() < end)
			run_tick(base, 2000);
	}
	raw_chat = NULL; /* it frees itself */
	int err = socket_end(raw.peer, 5000);
	ck_assert_msg(err == ECONNRESET,
	              "%s: the peer's stream ended with %d (%s), want "
	              "ECONNRESET",
	              test_ctx, err,
	              err > 0 ? strerror(err) : "EOF or nothing");
	ck_assert_uint_eq(rec.nevents, 1);
	ck_assert(rec.events[0] &
	          (_i ? EVCHAT_EVENT_TIMEOUT : EVCHAT_EVENT_ERROR));
	if (_i == 0)
		ck_assert_uint_eq(left, 0);
	conn_close_peer(&raw);
	recorder_clear(&rec);
}
END_TEST

/* ---- a write timeout bounds the close ------------------------------------ */

/* The peer never reads: the close cannot finish, and the write timeout
 * ends it with TIMEOUT|WRITING instead of CLOSED. */
START_TEST(test_write_timeout_bounds_close)
{
	struct evchat *chat = open_chat(_i, 0);
	peer_stop_reading(&tr);
	struct timeval write_timeout = { 0, 200 * 1000 };
	ck_assert_int_eq(evchat_set_timeouts(chat, NULL, &write_timeout), 0);
	/* Small socket buffers, so the kernel cannot take it all. */
	int size = 64 * 1024;
	if (tr.chat_fd >= 0) {
		ck_assert_int_eq(setsockopt(tr.chat_fd, SOL_SOCKET, SO_SNDBUF,
		                            &size, sizeof(size)),
		                 0);
		ck_assert_int_eq(setsockopt(tr.peer_fd, SOL_SOCKET, SO_RCVBUF,
		                            &size, sizeof(size)),
		                 0);
	}
	static char block[1 << 20];
	memset(block, 'x', sizeof(block));
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(evchat_push(chat, block, sizeof(block)), 0);
	ck_assert_int_eq(evchat_close_when_done(chat), 0);
	run_until_chat_event(&tr, 5000);
	expect_only_event(&tr, EVCHAT_EVENT_TIMEOUT);
	ck_assert_msg(tr.rec.events[0] & EVCHAT_EVENT_WRITING,
	              "%s: event 0x%x without WRITING", test_ctx,
	              (unsigned)tr.rec.events[0]);
	ck_assert(!tr.closed_seen);
}
END_TEST

/* ---- what the peer can tell ---------------------------------------------- */

#ifdef EVCHAT_TEST_TLS
/* Freeing without a close sends no close_notify, and the TLS peer must
 * see an error rather than a clean end: else the clean ends the tests
 * above demand would prove nothing. */
START_TEST(test_tls_free_is_not_clean)
{
	struct evchat *chat = open_chat(_i, 0);
	ck_assert_int_eq(evchat_push(chat, LIT("reply\n")), 0);
	run_until_peer_has(&tr, 6, 3000);
	evchat_free(chat);
	tr.chat = NULL;
	run_until_peer_end(&tr, 3000);
	expect_bytes("reply", tr.peer.received, LIT("reply\n"));
	ck_assert_msg(tr.peer.error && !tr.peer.eof,
	              "%s: a TLS stream without close_notify ended cleanly",
	              test_ctx);
}
END_TEST

/* A TLS peer that reads everything and the close_notify, then closes its
 * socket without a close_notify of its own, as most clients do: the
 * close has finished, CLOSED and no error, whether or not the channel
 * had seen the peer acknowledge its last bytes when the peer's end came
 * (libevent reports such an end as an error without errno). The two
 * orders race, so the test is repeated. */
START_TEST(test_tls_peer_ends_without_notify)
{
	for (unsigned round = 0; round < 12; round++) {
		enum { LEN = 256 * 1024 };
		struct prng_stream expect;
		push_then_close(_i, 21 + round, LEN, &expect, 0);
		run_until_peer_end(&tr, 5000);
		expect_peer_stream_then_eof(&tr, LEN);
		ck_assert_int_eq(shutdown(tr.peer_fd, SHUT_WR), 0);
		run_until_chat_event(&tr, 5000);
		expect_only_event(&tr, EVCHAT_EVENT_CLOSED);
		transport_free(&tr);
		opened = 0;
	}
}
END_TEST

/* The peer's socket goes with a reset (SO_LINGER 0); its bufferevent
 * stays, on a socket of its own, so nothing else gets that descriptor. */
static void reset_peer_socket(void)
{
	struct linger lg = { 1, 0 };
	ck_assert_int_eq(setsockopt(tr.peer_fd, SOL_SOCKET, SO_LINGER, &lg,
	                            sizeof(lg)),
	                 0);
	int spare = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(spare, 0);
	ck_assert_int_ge(dup2(spare, tr.peer_fd), 0);
	close(spare);
}

/* A TLS peer that closes its socket as soon as it has read everything,
 * without reading our close_notify (Python's smtplib after QUIT does):
 * its kernel answers with a reset, but every byte of the reply had
 * reached the peer, so the close is CLOSED, not an error. */
START_TEST(test_tls_peer_closes_on_last_reply)
{
	for (unsigned round = 0; round < 6; round++) {
		enum { LEN = 64 * 1024 };
		struct prng_stream expect;
		push_then_close(_i, 41 + round, LEN, &expect, 0);
		run_until_peer_has(&tr, LEN, 5000);
		ck_assert_uint_eq(tr.peer.nreceived, LEN);
		ck_assert_uint_eq(tr.peer.first_wrong, SIZE_MAX);
		/* As a close does with our close_notify unread. */
		reset_peer_socket();
		run_until_chat_event(&tr, 5000);
		expect_only_event(&tr, EVCHAT_EVENT_CLOSED);
		transport_free(&tr);
		opened = 0;
	}
}
END_TEST

/* A TLS peer that read everything and closed its socket, without a
 * close_notify, before the channel's close began (a WebSocket server
 * that sends its close frame and closes, say): our close_notify then
 * meets a closed socket, whose reset reports EPIPE. Only that
 * close_notify is lost; the close is CLOSED, as over plain TCP. It was
 * an error whenever the reset came before the channel read the peer's
 * end (most times). The two orders race, so the test is repeated. */
START_TEST(test_tls_close_after_peer_closed)
{
	for (unsigned round = 0; round < 12; round++) {
		struct evchat *chat = open_chat(_i, 0);
		ck_assert_int_eq(evchat_push(chat, LIT("reply\n")), 0);
		run_until_peer_has(&tr, 6, 3000);
		expect_bytes("reply", tr.peer.received, LIT("reply\n"));
		/* A close, not a reset: the socket goes, the bufferevent
		 * stays on a socket of its own. */
		int spare = socket(AF_INET, SOCK_STREAM, 0);
		ck_assert_int_ge(spare, 0);
		ck_assert_int_ge(dup2(spare, tr.peer_fd), 0);
		close(spare);
		if (round % 2 == 1)
			usleep(2000); /* the peer's FIN here first */
		ck_assert_int_eq(evchat_close_when_done(chat), 0);
		run_until_chat_event(&tr, 5000);
		expect_only_event(&tr, EVCHAT_EVENT_CLOSED);
		transport_free(&tr);
		opened = 0;
	}
}
END_TEST

/* A TLS peer that sends its close_notify with our reply unread, then
 * closes its socket, which resets the connection (Python's ssl: unwrap(),
 * then close()): our bytes are lost, and the close ends with an error at
 * once. It used to wait for acknowledgements a reset socket never gives,
 * reading stopped at the close_notify's EOF: without a write timeout, no
 * event ever came and the channel and its socket stayed. */
START_TEST(test_tls_peer_resets_with_reply_unread)
{
	enum { LEN = 64 * 1024 };
	struct evchat *chat = open_chat(_i, 0);
	struct prng_stream out;
	prng_stream_init(&out, 71);
	peer_stop_reading(&tr);
	/* A small receive buffer, so the peer cannot take the reply in: its
	 * default (about 64 KiB of window on loopback) held nearly all of it,
	 * and the close could then end before the reset. */
	int small = 4096;
	ck_assert_int_eq(setsockopt(tr.peer_fd, SOL_SOCKET, SO_RCVBUF, &small,
	                            sizeof(small)),
	                 0);
	push_stream(chat, &out, LEN);
	/* Until the layers have passed everything to the kernel, which
	 * holds what the peer had no room for. */
	int unacked = 0;
	long long end = now_ms() + 3000;
	while ((evchat_get_queued(chat) > 0 || unacked == 0) &&
	       now_ms() < end) {
		run_tick(base, 2000);
		ck_assert_int_eq(ioctl(tr.chat_fd, TIOCOUTQ, &unacked), 0);
	}
	ck_assert_msg(evchat_get_queued(chat) == 0 && unacked > 0,
	              "%s: %zu bytes queued, %d unacknowledged", test_ctx,
	              evchat_get_queued(chat), unacked);

	SSL *ssl = bufferevent_openssl_get_ssl(tr.peer.bev);
	ck_assert_int_ge(SSL_shutdown(ssl), 0);
	run_until_chat_event(&tr, 3000);
	ck_assert_uint_eq(tr.rec.nevents, 1);
	ck_assert_int_eq(tr.rec.events[0],
	                 EVCHAT_EVENT_EOF | EVCHAT_EVENT_READING);
	ck_assert_int_eq(evchat_close_when_done(chat), 0);
	run_for(base, 20);
	ck_assert_msg(tr.rec.nevents == 1,
	              "%s: event 0x%x (errno %d) before the reset", test_ctx,
	              tr.rec.nevents > 1 ? (unsigned)tr.rec.events[1] : 0u,
	              tr.rec.nevents > 1 ? tr.rec.errnos[1] : 0);

	reset_peer_socket();
	end = now_ms() + 3000;
	while (tr.rec.nevents < 2 && now_ms() < end)
		run_tick(base, 2000);
	ck_assert_msg(tr.rec.nevents == 2, "%s: no event after the reset",
	              test_ctx);
	ck_assert_int_eq(tr.rec.events[1],
	                 EVCHAT_EVENT_ERROR | EVCHAT_EVENT_WRITING);
	ck_assert_msg(tr.rec.errnos[1] == ECONNRESET ||
	                  tr.rec.errnos[1] == EPIPE,
	              "%s: errno %d (%s)", test_ctx, tr.rec.errnos[1],
	              strerror(tr.rec.errnos[1]));
}
END_TEST

/* A peer that connects and never starts the TLS handshake: the read
 * timeout ends the wait, reported as one (libevent's TLS layer says
 * neither reading nor writing). A close then, the peer ending in turn once
 * it reads our end, is CLOSED: OpenSSL answers the peer's end with an
 * alert the socket, shut down already, refuses (EPIPE), but no byte of
 * ours was ever to be delivered. The peer's end may come before or after
 * the channel saw its own end acknowledged, so the test is repeated. */
START_TEST(test_tls_handshake_timeout)
{
	for (unsigned round = 0; round < 8; round++) {
		note("%s, round %u", transport_name(_i), round);
		transport_open_unshaken(&tr, base, _i);
		opened = 1;
		struct evchat *chat = transport_chat(&tr, 0, 0);
		tr.free_on_closed = 1;
		const struct timeval read = { 0, 50 * 1000 };
		ck_assert_int_eq(evchat_set_timeouts(chat, &read, NULL), 0);
		run_until_chat_event(&tr, 3000);
		ck_assert_uint_eq(tr.rec.nevents, 1);
		ck_assert_msg(tr.rec.events[0] ==
		                  (EVCHAT_EVENT_TIMEOUT | EVCHAT_EVENT_READING),
		              "%s: handshake timeout reported as 0x%x",
		              test_ctx, (unsigned)tr.rec.events[0]);
		ck_assert_int_eq(evchat_close_when_done(chat), 0);
		run_until_peer_end(&tr, 3000);
		ck_assert_msg(tr.peer.eof && !tr.peer.error,
		              "%s: the peer saw no clean end", test_ctx);
		ck_assert_int_eq(shutdown(tr.peer_fd, SHUT_WR), 0);
		long long end = now_ms() + 3000;
		while (tr.rec.nevents < 2 && now_ms() < end)
			run_tick(base, 10000);
		ck_assert_uint_eq(tr.rec.nevents, 2);
		ck_assert_msg(tr.rec.events[1] == EVCHAT_EVENT_CLOSED,
		              "%s: the close ended with 0x%x, errno %d (%s)",
		              test_ctx, (unsigned)tr.rec.events[1],
		              tr.rec.errnos[1], strerror(tr.rec.errnos[1]));
		transport_free(&tr);
		opened = 0;
	}
}
END_TEST

/* A TLS peer that ends without a close_notify while the channel is not
 * closing: an error, and errno says it is the protocol's (EPROTO), not
 * 0. */
START_TEST(test_tls_unclean_end_is_eproto)
{
	open_chat(_i, 0);
	peer_write(&tr, LIT("a frame without its end"));
	run_for(base, 20);
	ck_assert_int_eq(shutdown(tr.peer_fd, SHUT_WR), 0);
	run_until_chat_event(&tr, 5000);
	ck_assert_uint_ge(tr.rec.nevents, 1);
	ck_assert_msg(tr.rec.events[0] & EVCHAT_EVENT_ERROR,
	              "%s: event 0x%x without ERROR", test_ctx,
	              (unsigned)tr.rec.events[0]);
	ck_assert_msg(tr.rec.errnos[0] == EPROTO, "%s: errno %d (%s)", test_ctx,
	              tr.rec.errnos[0], strerror(tr.rec.errnos[0]));
	/* The frame's start stays readable, as after any error. */
	ck_assert_uint_eq(tr.rec.pending_at_event, 23);
}
END_TEST
#endif

/* ---- AUTOFREE ------------------------------------------------------------ */

/* An AUTOFREE channel flushes, reports CLOSED, then frees itself, closing
 * its end of the connection; ASan and valgrind check that nothing leaks. */
START_TEST(test_autofree_after_close)
{
	enum { LEN = 200 * 1000 + 7 };
	struct evchat *chat = open_chat(_i, EVCHAT_OPT_AUTOFREE);
	tr.free_on_closed = 0; /* it frees itself */
	struct prng_stream out, expect;
	prng_stream_init(&out, 11);
	prng_stream_init(&expect, 11);
	peer_expect_stream(&tr, &expect);
	push_stream(chat, &out, LEN);
	ck_assert_int_eq(evchat_close_when_done(chat), 0);
	run_until_peer_end(&tr, 5000);
	run_until_chat_event(&tr, 5000);
	run_for(base, 50);
	expect_peer_stream_then_eof(&tr, LEN);
	expect_only_event(&tr, EVCHAT_EVENT_CLOSED);
	ck_assert_ptr_null(tr.chat);
	if (tr.chat_fd >= 0) {
		errno = 0;
		ck_assert_msg(fcntl(tr.chat_fd, F_GETFD) == -1 &&
		                  errno == EBADF,
		              "%s: the channel's socket is still open",
		              test_ctx);
	} else {
		ck_assert_ptr_null(
		    bufferevent_pair_get_partner(peer_bottom(&tr)));
	}
}
END_TEST

/* A pair's partner that ended and was freed: libevent tells the channel
 * nothing more, and its bytes can go nowhere. A close with nothing left
 * is done; one with a reply still to send fails with EPIPE, as on a
 * socket whose peer has closed. Neither waits forever, nor does a close
 * that was already waiting for a partner that stopped reading when that
 * partner is freed (variant 2). Each over a plain pair, then (_i 3 to 5)
 * under TLS, where the close also waits to send its close_notify. */
START_TEST(test_close_after_pair_partner_freed)
{
	int variant = _i % 3;
	int kind = TRANSPORT_PAIR;
#ifdef EVCHAT_TEST_TLS
	if (_i >= 3)
		kind = TRANSPORT_TLS_PAIR;
#endif
	if (variant == 2) {
		struct evchat *chat = open_chat(kind, 0);
		tr.free_on_closed = 0;
		peer_stop_reading(&tr);
		ck_assert_int_eq(evchat_push(chat, LIT("unread\n")), 0);
		ck_assert_int_eq(evchat_close_when_done(chat), 0);
		run_for(base, 100);
		ck_assert_uint_eq(tr.rec.nevents, 0); /* waits, rightly */
		bufferevent_free(tr.peer.bev);
		tr.peer.bev = NULL;
		run_until_chat_event(&tr, 3000);
		ck_assert_uint_eq(tr.rec.nevents, 1);
		ck_assert_int_eq(tr.rec.events[0],
		                 EVCHAT_EVENT_ERROR | EVCHAT_EVENT_WRITING);
		ck_assert_int_eq(tr.rec.errnos[0], EPIPE);
		return;
	}
	int late_reply = variant;
	struct evchat *chat = open_chat(kind, 0);
	tr.free_on_closed = 0;
	peer_close(&tr);
	run_until_chat_event(&tr, 2000);
	ck_assert_uint_eq(tr.rec.nevents, 1);
	ck_assert(tr.rec.events[0] & EVCHAT_EVENT_EOF);
	bufferevent_free(tr.peer.bev);
	tr.peer.bev = NULL;
	/* A pair below a TLS layer leaves its partner only once the loop
	 * has finished freeing that layer; until then the partner takes
	 * what comes (into a buffer about to be freed). */
	run_for(base, 20);
	if (late_reply)
		ck_assert_int_eq(evchat_push(chat, LIT("too late\n")), 0);
	ck_assert_int_eq(evchat_close_when_done(chat), 0);
	long long end = now_ms() + 3000;
	while (tr.rec.nevents < 2 && now_ms() < end)
		run_tick(base, 10000);
	ck_assert_uint_eq(tr.rec.nevents, 2);
	if (late_reply) {
		ck_assert_int_eq(tr.rec.events[1],
		                 EVCHAT_EVENT_ERROR | EVCHAT_EVENT_WRITING);
		ck_assert_int_eq(tr.rec.errnos[1], EPIPE);
	} else {
		ck_assert_int_eq(tr.rec.events[1], EVCHAT_EVENT_CLOSED);
	}
}
END_TEST

/* The peer half-closes (over TLS with its close_notify) while a close
 * still flushes 8 MiB, then reads it all: every byte arrives, then a
 * clean end, and the hook hears CLOSED alone (not the EOF: the close
 * hears it). libevent's socket TLS layer stopped writing at the peer's
 * close_notify, and the close waited for good without a word. */
START_TEST(test_peer_half_closes_during_close)
{
	/* More than the kernel's buffers hold, so the close_notify comes
	 * while the channel's own output still has some. */
	size_t len = test_stream_mib(8) << 20;
	struct prng_stream expect;
	push_then_close(_i, 7, len, &expect, 1);
	run_for(base, 100);
	peer_close(&tr);
	run_for(base, 100);
	peer_start_reading(&tr);
	run_until_peer_end(&tr, 10000);
	run_until_chat_event(&tr, 5000);
	expect_peer_stream_then_eof(&tr, len);
	expect_only_event(&tr, EVCHAT_EVENT_CLOSED);
	ck_assert_uint_eq(tr.queued_at_closed, 0);
}
END_TEST

Suite *closing_suite(void)
{
	Suite *s = suite_create("closing");

	TCase *tc = tcase_create("big");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_close_big_queue, 0, TRANSPORT_NKINDS);
	tcase_add_loop_test(tc, test_close_lingers_while_peer_sends, 0,
	                    TRANSPORT_NKINDS);
	tcase_add_loop_test(tc, test_close_lingers_until_peer_quiet, 0,
	                    TRANSPORT_NKINDS);
#ifdef EVCHAT_TEST_TLS
	tcase_add_loop_test(tc, test_close_lingers_over_unread_input, 0, 2);
#else
	tcase_add_loop_test(tc, test_close_lingers_over_unread_input, 0, 1);
#endif
	tcase_add_loop_test(tc, test_close_with_unread_input, 0,
	                    TRANSPORT_NKINDS);
	tcase_add_loop_test(tc, test_peer_half_closes_during_close, 0,
	                    TRANSPORT_NKINDS);
	suite_add_tcase(s, tc);

	tc = tcase_create("ends");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_loop_test(tc, test_half_close, 0, TRANSPORT_NKINDS);
	tcase_add_test(tc, test_abort_inside_found);
	tcase_add_test(tc, test_abort_with_output_queued);
	tcase_add_loop_test(tc, test_autofree_resets_after_failure, 0, 2);
	tcase_add_loop_test(tc, test_write_timeout_bounds_close, 0,
	                    TRANSPORT_NKINDS);
	tcase_add_loop_test(tc, test_autofree_after_close, 0, TRANSPORT_NKINDS);
#ifdef EVCHAT_TEST_TLS
	tcase_add_loop_test(tc, test_close_after_pair_partner_freed, 0, 6);
#else
	tcase_add_loop_test(tc, test_close_after_pair_partner_freed, 0, 3);
#endif
#ifdef EVCHAT_TEST_TLS
	tcase_add_loop_test(tc, test_tls_free_is_not_clean, TRANSPORT_TLS,
	                    TRANSPORT_TLS_FILTER + 1);
	tcase_add_loop_test(tc, test_tls_peer_ends_without_notify,
	                    TRANSPORT_TLS, TRANSPORT_TLS_FILTER + 1);
	tcase_add_loop_test(tc, test_tls_peer_closes_on_last_reply,
	                    TRANSPORT_TLS, TRANSPORT_TLS_FILTER + 1);
	tcase_add_loop_test(tc, test_tls_close_after_peer_closed, TRANSPORT_TLS,
	                    TRANSPORT_TLS_FILTER + 1);
	tcase_add_loop_test(tc, test_tls_peer_resets_with_reply_unread,
	                    TRANSPORT_TLS, TRANSPORT_TLS_FILTER + 1);
	tcase_add_loop_test(tc, test_tls_unclean_end_is_eproto, TRANSPORT_TLS,
	                    TRANSPORT_TLS_FILTER + 1);
	tcase_add_loop_test(tc, test_tls_handshake_timeout, TRANSPORT_TLS,
	                    TRANSPORT_TLS_FILTER + 1);
#endif
	suite_add_tcase(s, tc);
	return s;
}
