/*
 * EVCHAT_OPT_DIRECT_READ: the channel reads the socket itself, from the
 * bufferevent's own read event (or, where it cannot take that over, past
 * libevent's 4 KiB per read). The framing suites run with it too (see
 * tests/variants.sh); these tests check what only it can get wrong: long
 * frames read in one piece arrive whole and in order, a socket error met
 * by its own read is reported as an error, not lost (the socket reports
 * an error once; after it, reads see only an end of file), the read
 * timeout still fires, and bufferevent_setfd() hands reading back to
 * libevent without losing a byte.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

/* After event2/bufferevent.h, which it needs: the read event's
 * priority is looked at directly. */
#include <event2/bufferevent_struct.h>

#include "helpers.h"
#include "suites.h"

#define DIRECT (EVCHAT_OPT_DIRECT_READ | EVCHAT_OPT_DIRECT_WRITE)

static struct harness *direct_harness(int tcp)
{
	return harness_new_opts(event_base_new(), 0, tcp, DIRECT);
}

/* _i: socketpair, TCP. Lines of 20,000 bytes sent in one write: every
 * one arrives whole and in order, whether it came in one read or was cut
 * by one. */
START_TEST(test_long_lines_whole)
{
	struct harness *h = direct_harness(_i);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	enum { NLINES = 40, LEN = 20000 };
	char *input = malloc(NLINES * (LEN + 1));
	ck_assert_ptr_nonnull(input);
	struct span want[NLINES];
	ev_uint32_t seed = 7;
	for (size_t i = 0; i < NLINES; i++) {
		char *line = input + i * (LEN + 1);
		for (size_t j = 0; j < LEN; j++)
			line[j] = (char)('a' + rnd(&seed, 26));
		line[LEN] = '\n';
		want[i].p = line;
		want[i].len = LEN;
	}
	feed(h, input, NLINES * (LEN + 1));
	run_until_frames(h, NLINES, 5000);
	expect_frames(&h->rec, want, NLINES);
	ck_assert_uint_eq(h->rec.nevents, 0);
	free(input);
	harness_free(h);
}
END_TEST

/* _i: (without, with the direct options) x (exactly one libevent read
 * before the reset, more). The peer sends, then resets the connection:
 * the channel reports an error (ECONNRESET) once, not an end of file,
 * and delivers no frame twice. With exactly 4 KiB sent, libevent's read
 * takes it all and the channel's own read meets the reset. */
START_TEST(test_reset_is_an_error)
{
	int direct = _i % 2, more = _i / 2;
	note("%s, %s", direct ? "direct" : "plain", more ? "12 KiB" : "4 KiB");
	struct harness *h = direct ? direct_harness(1) : harness_new(0, 1);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	static char block[3 * 4096];
	memset(block, 'r', sizeof(block));
	write_all(h->c.peer, LIT("first\n"));
	write_all(h->c.peer, block, more ? sizeof(block) : 4096 - 6);
	/* SO_LINGER 0: close() sends RST with the data still unread. */
	struct linger lin = { 1, 0 };
	ck_assert_int_eq(setsockopt(h->c.peer, SOL_SOCKET, SO_LINGER, &lin,
	                            sizeof(lin)),
	                 0);
	conn_close_peer(&h->c);
	run_until_event(h, 5000);
	run_for(h->base, 50);
	ck_assert_uint_le(h->rec.nframes, 1);
	if (h->rec.nframes == 1)
		EXPECT_FRAMES(&h->rec, "first");
	ck_assert_uint_eq(h->rec.nevents, 1);
	ck_assert_msg((h->rec.events[0] &
	               (EVCHAT_EVENT_ERROR | EVCHAT_EVENT_EOF)) ==
	                  EVCHAT_EVENT_ERROR,
	              "%s: event 0x%x, want an error without EOF", test_ctx,
	              (unsigned)h->rec.events[0]);
	harness_free(h);
}
END_TEST

/* A long line arriving a little over libevent's 4 KiB per turn: the
 * channel's own reads take only what the socket holds, so the memory held
 * stays near the bytes held (an expansion to the full in buffer size per
 * read once held thirty times more). */
START_TEST(test_paced_long_line_memory)
{
	if (heap_in_use() == 0)
		return; /* no malloc statistics here (valgrind) */
	struct harness *h = direct_harness(0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	static char chunk[4100];
	memset(chunk, 'p', sizeof(chunk));
	size_t before = heap_in_use(), sent = 0;
	while (sent + sizeof(chunk) < 800000) {
		write_all(h->c.peer, chunk, sizeof(chunk));
		sent += sizeof(chunk);
		event_base_loop(h->base, EVLOOP_NONBLOCK);
		event_base_loop(h->base, EVLOOP_NONBLOCK);
	}
	size_t held = evbuffer_get_length(evchat_get_pending(h->chat));
	size_t grew = heap_in_use() - before;
	ck_assert_uint_eq(held, sent);
	ck_assert_msg(grew < 3 * held, "%zu bytes held cost %zu of heap", held,
	              grew);
	harness_free(h);
}
END_TEST

/* Paused by the first frame while the rest of the read and a reset wait:
 * after the resume every frame comes, then the error. */
static void pause_first(struct evchat *chat, struct recorder *rec)
{
	if (rec->nframes == 1)
		ck_assert_int_eq(evchat_pause_input(chat), 0);
}

START_TEST(test_pause_then_reset)
{
	struct harness *h = direct_harness(1);
	h->rec.on_found = pause_first;
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	char lines[4096];
	for (size_t i = 0; i < sizeof(lines); i++)
		lines[i] = i % 64 == 63 ? '\n' : 'a';
	write_all(h->c.peer, lines, sizeof(lines));
	struct linger lin = { 1, 0 };
	ck_assert_int_eq(setsockopt(h->c.peer, SOL_SOCKET, SO_LINGER, &lin,
	                            sizeof(lin)),
	                 0);
	conn_close_peer(&h->c);
	run_for(h->base, 50);
	ck_assert_uint_eq(h->rec.nframes, 1);
	ck_assert_uint_eq(h->rec.nevents, 0);
	ck_assert_int_eq(evchat_resume_input(h->chat), 0);
	run_until_event(h, 2000);
	ck_assert_uint_eq(h->rec.nframes, 64);
	ck_assert_uint_eq(h->rec.nevents, 1);
	ck_assert(h->rec.events[0] & EVCHAT_EVENT_ERROR);
	harness_free(h);
}
END_TEST

/* A socket bufferevent may sit on a pipe: the channel's own reads work
 * there too (recv() would fail with ENOTSOCK). */
static void count_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	size_t *n = arg;
	ck_assert_uint_eq(evbuffer_get_length(frame), 63);
	(*n)++;
}

START_TEST(test_direct_read_on_pipe)
{
	struct event_base *base = event_base_new();
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(evutil_make_socket_nonblocking(fds[0]), 0);
	struct bufferevent *bev = bufferevent_socket_new(base, fds[0],
	                                                 BEV_OPT_CLOSE_ON_FREE);
	struct evchat *chat = evchat_new(bev, DIRECT);
	ck_assert_ptr_nonnull(chat);
	size_t n = 0;
	evchat_setcb(chat, NULL, count_found, NULL, &n);
	ck_assert_int_eq(evchat_set_terminator(chat, LIT("\n")), 0);
	char lines[8192];
	for (size_t i = 0; i < sizeof(lines); i++)
		lines[i] = i % 64 == 63 ? '\n' : 'q';
	ck_assert_int_eq(write(fds[1], lines, sizeof(lines)), sizeof(lines));
	for (int i = 0; i < 200 && n < 128; i++)
		run_tick(base, 10000);
	ck_assert_uint_eq(n, 128);
	evchat_free(chat);
	close(fds[1]);
	event_base_free(base);
}
END_TEST

/* On a filter the direct options are ignored: reading the socket itself
 * would skip the filter's work (here, turning every 'a' into 'b'). */
static enum bufferevent_filter_result
a_to_b(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
       enum bufferevent_flush_mode mode, void *ctx)
{
	size_t len = evbuffer_get_length(src);
	unsigned char *p = evbuffer_pullup(src, -1);
	for (size_t i = 0; i < len; i++)
		if (p[i] == 'a')
			p[i] = 'b';
	evbuffer_add_buffer(dst, src);
	return BEV_OK;
}

START_TEST(test_filter_ignores_direct)
{
	struct event_base *base = event_base_new();
	struct conn c;
	ck_assert_int_eq(conn_socketpair(&c, base), 0);
	struct bufferevent *f = bufferevent_filter_new(c.bev, a_to_b, NULL,
	                                               BEV_OPT_CLOSE_ON_FREE,
	                                               NULL, NULL);
	ck_assert_ptr_nonnull(f);
	struct evchat *chat = evchat_new(f, DIRECT);
	ck_assert_ptr_nonnull(chat);
	struct recorder rec;
	recorder_init(&rec);
	evchat_setcb(chat, NULL, recorder_found_cb, recorder_event_cb, &rec);
	ck_assert_int_eq(evchat_set_terminator(chat, LIT("\n")), 0);
	static char lines[16384];
	for (size_t i = 0; i < sizeof(lines); i++)
		lines[i] = i % 1024 == 1023 ? '\n' : 'a';
	write_all(c.peer, lines, sizeof(lines));
	for (int i = 0; i < 200 && rec.nframes < 16; i++)
		run_tick(base, 10000);
	ck_assert_uint_eq(rec.nframes, 16);
	size_t len = evbuffer_get_length(rec.frames);
	const unsigned char *p = evbuffer_pullup(rec.frames, -1);
	for (size_t i = 0; i < len; i++)
		ck_assert_msg(p[i] == 'b',
		              "byte %zu is '%c': the filter was "
		              "bypassed",
		              i, p[i]);
	evchat_free(chat);
	event_base_free(base);
	conn_close_peer(&c);
	recorder_clear(&rec);
}
END_TEST

/* _i: socketpair, TCP. The read timeout lives on the bufferevent's read
 * event, which the channel's own read took over: bytes keep it off, and
 * silence then ends reading with a timeout, as libevent reports it. */
START_TEST(test_direct_read_timeout)
{
	struct harness *h = direct_harness(_i);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	struct timeval tv = { 0, 300 * 1000 };
	ck_assert_int_eq(evchat_set_timeouts(h->chat, &tv, NULL), 0);
	/* A line every 50 ms for 500 ms, longer than the timeout: each line
	 * restarts it, so none meanwhile. The gap leaves a loaded machine
	 * (sanitizers, valgrind beside us in CI) 250 ms of slack. */
	long long last = 0;
	for (int i = 0; i < 10; i++) {
		feed(h, LIT("tick\n"));
		last = now_ms();
		run_for(h->base, 50);
	}
	ck_assert_uint_eq(h->rec.nframes, 10);
	ck_assert_uint_eq(h->rec.nevents, 0);
	run_until_event(h, 3000);
	ck_assert_uint_eq(h->rec.nevents, 1);
	ck_assert_int_eq(h->rec.events[0],
	                 EVCHAT_EVENT_TIMEOUT | EVCHAT_EVENT_READING);
	/* Not before the timeout has passed since the last line (less a
	 * little for the timer's slack). */
	ck_assert_int_ge(now_ms() - last, 300 - 20);
	/* Reading stopped: a line now is not read. */
	feed(h, LIT("late\n"));
	run_for(h->base, 100);
	ck_assert_uint_eq(h->rec.nframes, 10);
	harness_free(h);
}
END_TEST

/* bufferevent_setfd() gives the bufferevent's read event back to
 * libevent: lines sent before and after it all arrive, in order, and the
 * peer's close is still an end of file. */
START_TEST(test_direct_read_after_setfd)
{
	struct harness *h = direct_harness(1);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	feed(h, LIT("one\ntwo\n"));
	run_until_frames(h, 2, 2000);
	struct bufferevent *bev = evchat_get_bufferevent(h->chat);
	ck_assert_int_eq(bufferevent_setfd(bev, bufferevent_getfd(bev)), 0);
	feed(h, LIT("three\nfour\n"));
	run_until_frames(h, 4, 2000);
	EXPECT_FRAMES(&h->rec, "one", "two", "three", "four");
	conn_close_peer(&h->c);
	run_until_event(h, 2000);
	ck_assert_uint_eq(h->rec.nevents, 1);
	ck_assert_int_ne(h->rec.events[0] & EVCHAT_EVENT_EOF, 0);
	harness_free(h);
}
END_TEST

/* A rate limit set on the channel's bufferevent (through
 * evchat_get_bufferevent()) holds for the channel's own reads: 100 bytes
 * per 100 ms tick lets through a few hundred bytes in 350 ms, not the
 * 10,000 sent. */
START_TEST(test_direct_read_rate_limit)
{
	struct harness *h = harness_new_opts(event_base_new(), 1, 0, DIRECT);
	struct timeval tick = { 0, 100 * 1000 };
	struct ev_token_bucket_cfg *cfg = ev_token_bucket_cfg_new(
	    100, 100, EV_RATE_LIMIT_MAX, EV_RATE_LIMIT_MAX, &tick);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_int_eq(
	    bufferevent_set_rate_limit(evchat_get_bufferevent(h->chat), cfg),
	    0);
	static char block[10000];
	memset(block, 'r', sizeof(block));
	long long start = now_ms();
	write_all(h->c.peer, block, sizeof(block));
	run_for(h->base, 350);
	/* As for writing below: a full bucket, one per tick since, one for
	 * slack; a loaded machine's longer run lets more through, never
	 * the 10,000 bytes. */
	long long took = now_ms() - start;
	size_t got = evbuffer_get_length(h->rec.collecting);
	size_t allowed = 100 * (size_t)(3 + took / 100);
	ck_assert_msg(got > 0 && got <= allowed && got < sizeof(block),
	              "%zu of %zu bytes read in %lld ms at 1000 bytes/s "
	              "(at most %zu allowed)",
	              got, sizeof(block), took, allowed);
	harness_free(h);
	ev_token_bucket_cfg_free(cfg);
}
END_TEST

/* The same for writing: replies pushed from a hook, which
 * EVCHAT_OPT_DIRECT_WRITE writes to the socket itself, keep to a write
 * limit set on the bufferevent. 4 KiB per 100 ms tick lets through a few
 * buckets of a 256 KiB reply in 300 ms (the limit was once bypassed, and
 * as much of it as the socket took came at once); with the limit lifted
 * the rest follows, every byte in order. */
enum { LIMITED_REPLY = 256 * 1024, WRITE_BUCKET = 4096 };

static char limited_reply[LIMITED_REPLY];

static void push_limited_reply(struct evchat *chat, struct recorder *rec)
{
	(void)rec;
	ck_assert_int_eq(evchat_push(chat, limited_reply,
	                             sizeof(limited_reply)),
	                 0);
}

/* Runs the loop for ms milliseconds, reading what reaches the peer. */
static void read_peer_for(struct harness *h, struct evbuffer *out, int ms)
{
	long long end = now_ms() + ms;
	while (now_ms() < end) {
		run_tick(h->base, 5000);
		while (evbuffer_read(out, h->c.peer, 1 << 16) > 0)
			;
	}
}

START_TEST(test_direct_write_rate_limit)
{
	struct harness *h = harness_new_opts(event_base_new(), 0, 0, DIRECT);
	for (size_t i = 0; i < sizeof(limited_reply); i++)
		limited_reply[i] = (char)(i % 251);
	h->rec.on_found = push_limited_reply;
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	struct bufferevent *bev = evchat_get_bufferevent(h->chat);
	struct timeval tick = { 0, 100 * 1000 };
	struct ev_token_bucket_cfg *cfg =
	    ev_token_bucket_cfg_new(EV_RATE_LIMIT_MAX, EV_RATE_LIMIT_MAX,
	                            WRITE_BUCKET, WRITE_BUCKET, &tick);
	ck_assert_ptr_nonnull(cfg);
	struct evbuffer *got = evbuffer_new();
	ck_assert_ptr_nonnull(got);
	long long start = now_ms();
	ck_assert_int_eq(bufferevent_set_rate_limit(bev, cfg), 0);
	write_all(h->c.peer, LIT("GET\n"));
	read_peer_for(h, got, 300);
	ck_assert_uint_eq(h->rec.nframes, 1);
	/* A full bucket at the start and one per tick boundary passed since
	 * (ticks count from the clock's zero, not from the start), and one
	 * more for slack: a slow machine's longer run lets more through,
	 * not the whole socket buffer. */
	long long took = now_ms() - start;
	size_t len = evbuffer_get_length(got);
	size_t allowed = WRITE_BUCKET * (size_t)(3 + took / 100);
	ck_assert_msg(len > 0 && len <= allowed,
	              "%zu of %zu bytes written in %lld ms at %d bytes per "
	              "100 ms (at most %zu allowed)",
	              len, sizeof(limited_reply), took, WRITE_BUCKET, allowed);
	/* Unlimited again: the rest comes, in order. */
	ck_assert_int_eq(bufferevent_set_rate_limit(bev, NULL), 0);
	for (int i = 0;
	     i < 100 && evbuffer_get_length(got) < sizeof(limited_reply); i++)
		read_peer_for(h, got, 50);
	expect_bytes("reply", got, limited_reply, sizeof(limited_reply));
	ck_assert_uint_eq(h->rec.nevents, 0);
	evbuffer_free(got);
	harness_free(h);
	ev_token_bucket_cfg_free(cfg);
}
END_TEST

/* Bytes libevent read into the bufferevent before the channel was made
 * come before those the channel reads itself. */
static void collect_text(struct evchat *chat, struct evbuffer *data, void *arg)
{
	evbuffer_add_buffer(arg, data);
}

START_TEST(test_direct_read_keeps_earlier_bytes_first)
{
	struct event_base *base = event_base_new();
	struct conn c;
	ck_assert_int_eq(conn_socketpair(&c, base), 0);
	/* libevent reads "A\n" before there is a channel. */
	ck_assert_int_eq(bufferevent_enable(c.bev, EV_READ), 0);
	write_all(c.peer, LIT("A\n"));
	for (int i = 0;
	     i < 100 && evbuffer_get_length(bufferevent_get_input(c.bev)) < 2;
	     i++)
		run_tick(base, 10000);
	ck_assert_uint_eq(evbuffer_get_length(bufferevent_get_input(c.bev)), 2);
	struct evchat *chat = evchat_new(c.bev, DIRECT);
	ck_assert_ptr_nonnull(chat);
	struct evbuffer *seen = evbuffer_new();
	evchat_setcb(chat, collect_text, NULL, NULL, seen);
	write_all(c.peer, LIT("B\n"));
	for (int i = 0; i < 100 && evbuffer_get_length(seen) < 4; i++)
		run_tick(base, 10000);
	expect_bytes("collected", seen, LIT("A\nB\n"));
	evbuffer_free(seen);
	evchat_free(chat);
	conn_close_peer(&c);
	event_base_free(base);
}
END_TEST

/* The read event the channel takes over keeps the priority the
 * bufferevent gave it. */
START_TEST(test_direct_read_keeps_priority)
{
	struct event_base *base = event_base_new();
	ck_assert_int_eq(event_base_priority_init(base, 3), 0);
	struct conn c;
	ck_assert_int_eq(conn_socketpair(&c, base), 0);
	ck_assert_int_eq(bufferevent_priority_set(c.bev, 0), 0);
	struct evchat *chat = evchat_new(c.bev, DIRECT);
	ck_assert_ptr_nonnull(chat);
	struct bufferevent *bev = evchat_get_bufferevent(chat);
	ck_assert_int_eq(event_get_priority(&bev->ev_read), 0);
	ck_assert_int_eq(event_get_priority(&bev->ev_write), 0);
	evchat_free(chat);
	conn_close_peer(&c);
	event_base_free(base);
}
END_TEST

/* A hook that runs another event loop, in which another channel reads
 * its socket, while the first one's frames are lent from where its own
 * read put them (the thread's read scratch): the frame being lent and
 * those after it in the same read stay as they came. The other channel
 * reads elsewhere, and so does its close, which only discards. */
struct nested {
	struct event_base *inner_base;
	struct conn inner;
	struct evchat *inner_chat;
	int inner_found;
	int inner_closed;
	int outer_found;
};

static void nested_inner_found(struct evchat *chat, const unsigned char *frame,
                               size_t len, void *arg)
{
	struct nested *n = arg;
	ck_assert_uint_eq(len, 40);
	for (size_t i = 0; i < len; i++)
		ck_assert_int_eq(frame[i], 'X');
	n->inner_found++;
	/* Closed from here: the peer's next bytes are read to be
	 * discarded. */
	ck_assert_int_eq(evchat_close_when_done(chat), 0);
}

static void nested_inner_event(struct evchat *chat, short events, void *arg)
{
	struct nested *n = arg;
	(void)chat;
	if (events & EVCHAT_EVENT_CLOSED)
		n->inner_closed = 1;
}

static void nested_outer_found(struct evchat *chat, const unsigned char *frame,
                               size_t len, void *arg)
{
	struct nested *n = arg;
	(void)chat;
	static const char *const want[] = { "first", "second" };
	ck_assert_int_lt(n->outer_found, 2);
	const char *w = want[n->outer_found++];
	ck_assert_uint_eq(len, strlen(w));
	ck_assert_int_eq(memcmp(frame, w, len), 0);
	if (n->outer_found > 1)
		return;
	/* The inner channel's frame, longer than this whole read. */
	char line[41];
	memset(line, 'X', 40);
	line[40] = '\n';
	write_all(n->inner.peer, line, sizeof(line));
	run_until(n->inner_base, &n->inner_found, 5000);
	ck_assert_int_eq(n->inner_found, 1);
	/* More than a discarding read takes without the scratch. */
	char junk[2000];
	memset(junk, 'Y', sizeof(junk));
	write_all(n->inner.peer, junk, sizeof(junk));
	conn_close_peer(&n->inner);
	run_until(n->inner_base, &n->inner_closed, 5000);
	ck_assert_int_eq(n->inner_closed, 1);
	/* The bytes lent to this hook are still the frame's. */
	ck_assert_int_eq(memcmp(frame, w, len), 0);
}

START_TEST(test_direct_read_lent_during_nested_loop)
{
	struct nested n = { 0 };
	struct event_base *base = event_base_new();
	n.inner_base = event_base_new();
	ck_assert_ptr_nonnull(base);
	ck_assert_ptr_nonnull(n.inner_base);
	struct conn outer;
	ck_assert_int_eq(conn_tcp(&outer, base), 0);
	ck_assert_int_eq(conn_tcp(&n.inner, n.inner_base), 0);
	struct evchat *chat = evchat_new(outer.bev, DIRECT);
	n.inner_chat = evchat_new(n.inner.bev, DIRECT);
	ck_assert_ptr_nonnull(chat);
	ck_assert_ptr_nonnull(n.inner_chat);
	evchat_setcb_bytes(chat, NULL, nested_outer_found, NULL, &n);
	evchat_setcb_bytes(n.inner_chat, NULL, nested_inner_found,
	                   nested_inner_event, &n);
	ck_assert_int_eq(evchat_set_terminator(chat, LIT("\n")), 0);
	ck_assert_int_eq(evchat_set_terminator(n.inner_chat, LIT("\n")), 0);
	/* Both frames in one write, so that one read brings them. */
	write_all(outer.peer, LIT("first\nsecond\n"));
	for (int i = 0; i < 500 && n.outer_found < 2; i++)
		run_tick(base, 10000);
	ck_assert_int_eq(n.outer_found, 2);
	evchat_free(n.inner_chat);
	evchat_free(chat);
	conn_close_peer(&outer);
	event_base_free(n.inner_base);
	event_base_free(base);
}
END_TEST

Suite *direct_suite(void)
{
	Suite *s = suite_create("direct");
	TCase *tc = tcase_create("read");
	tcase_add_loop_test(tc, test_long_lines_whole, 0, 2);
	tcase_add_loop_test(tc, test_reset_is_an_error, 0, 4);
	tcase_add_test(tc, test_paced_long_line_memory);
	tcase_add_test(tc, test_pause_then_reset);
	tcase_add_test(tc, test_direct_read_on_pipe);
	tcase_add_test(tc, test_filter_ignores_direct);
	tcase_add_loop_test(tc, test_direct_read_timeout, 0, 2);
	tcase_add_test(tc, test_direct_read_after_setfd);
	tcase_add_test(tc, test_direct_read_rate_limit);
	tcase_add_test(tc, test_direct_read_keeps_earlier_bytes_first);
	tcase_add_test(tc, test_direct_read_keeps_priority);
	tcase_add_test(tc, test_direct_read_lent_during_nested_loop);
	suite_add_tcase(s, tc);
	tc = tcase_create("write");
	tcase_add_test(tc, test_direct_write_rate_limit);
	suite_add_tcase(s, tc);
	return s;
}
