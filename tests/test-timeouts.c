/*
 * Timeouts: the idle read and write timeouts, and the frame timeout that
 * cuts off a peer dribbling one frame forever. Each is reported once, with
 * the flags the header gives, never early, and never while its clock is
 * documented to stand still.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <check.h>

#include "helpers.h"
#include "suites.h"

#define READ_FLAGS (EVCHAT_EVENT_TIMEOUT | EVCHAT_EVENT_READING)
#define WRITE_FLAGS (EVCHAT_EVENT_TIMEOUT | EVCHAT_EVENT_WRITING)
#define FRAME_FLAGS (READ_FLAGS | EVCHAT_EVENT_FRAME_TIMEOUT)

/* ---- small helpers ------------------------------------------------------- */

static struct timeval ms_tv(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	return tv;
}

static void set_read_timeout(struct harness *h, int ms)
{
	struct timeval tv = ms_tv(ms);
	ck_assert_int_eq(evchat_set_timeouts(h->chat, &tv, NULL), 0);
}

static void set_frame_timeout(struct harness *h, int ms)
{
	struct timeval tv = ms_tv(ms);
	ck_assert_int_eq(evchat_set_frame_timeout(h->chat, &tv), 0);
}

/* The only event so far is exactly `flags`. */
static void expect_event_flags(struct harness *h, short flags)
{
	ck_assert_msg(h->rec.nevents == 1, "%zu events, want 1",
	              h->rec.nevents);
	ck_assert_msg(h->rec.events[0] == flags, "event 0x%x, want 0x%x",
	              (unsigned)h->rec.events[0], (unsigned)flags);
}

static void expect_no_event(struct harness *h, const char *when)
{
	ck_assert_msg(h->rec.nevents == 0, "%s: event 0x%x", when,
	              (unsigned)h->rec.events[0]);
}

static void send_str(struct harness *h, const char *s)
{
	write_all(h->c.peer, s, strlen(s));
}

/* The peer sends one byte every interval_ms for up to ms, stopping at the
 * first event. Returns how many it sent. */
static size_t dribble(struct harness *h, char byte, int interval_ms, int ms)
{
	size_t n = 0;
	long long end = now_ms() + ms;
	while (h->rec.nevents == 0 && now_ms() < end) {
		write_all(h->c.peer, &byte, 1);
		n++;
		run_for(h->base, interval_ms);
	}
	return n;
}

/* Reads at the peer until it holds want (or ms pass), running the loop. */
static void peer_expect(struct harness *h, const char *want, int ms)
{
	struct evbuffer *got = evbuffer_new();
	ck_assert_ptr_nonnull(got);
	size_t len = strlen(want);
	long long end = now_ms() + ms;
	while (evbuffer_get_length(got) < len && now_ms() < end) {
		run_tick(h->base, 2000);
		while (evbuffer_read(got, h->c.peer, 4096) > 0)
			;
	}
	expect_bytes("peer", got, want, len);
	evbuffer_free(got);
}

static int fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

/* Only the sender's buffer: shrinking the peer's receive buffer on a live
 * connection makes the kernel drop data and wait out retransmission
 * timeouts, long enough to look like a peer that stopped reading. */
static void shrink_send_buffer(struct harness *h)
{
	int size = 16 * 1024;
	evutil_socket_t fd = bufferevent_getfd(evchat_get_bufferevent(h->chat));
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size,
	                            sizeof(size)),
	                 0);
}

#define BIG ((size_t)4 << 20)

static void push_big(struct harness *h)
{
	char *data = malloc(BIG);
	ck_assert_ptr_nonnull(data);
	for (size_t i = 0; i < BIG; i++)
		data[i] = (char)('a' + i % 23);
	ck_assert_int_eq(evchat_push(h->chat, data, BIG), 0);
	free(data);
}

/* ---- the read timeout ---------------------------------------------------- */

START_TEST(test_read_timeout_silent_peer)
{
	struct harness *h = harness_new(0, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	long long start = now_ms();
	set_read_timeout(h, 100);
	run_until_event(h, 3000);
	long long waited = now_ms() - start;
	expect_event_flags(h, READ_FLAGS);
	ck_assert_msg(waited >= 90,
	              "fired after %lld ms of a 100 ms "
	              "timeout",
	              waited);

	/* Reading stopped: a late line is not delivered. Pushing works. */
	send_str(h, "late\n");
	ck_assert_int_eq(evchat_push(h->chat, LIT("408 timeout\n")), 0);
	peer_expect(h, "408 timeout\n", 2000);
	run_for(h->base, 300);
	ck_assert_uint_eq(h->rec.nframes, 0);
	expect_event_flags(h, READ_FLAGS); /* once */
	harness_free(h);
}
END_TEST

START_TEST(test_read_timeout_not_while_peer_sends)
{
	struct harness *h = harness_new(0, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	/* 600 ms of lines, twice the timeout; each gap leaves a loaded
	 * machine 270 ms of slack. */
	set_read_timeout(h, 300);
	for (int i = 0; i < 20; i++) {
		send_str(h, "ping\n");
		run_for(h->base, 30);
	}
	expect_no_event(h, "a line every 30 ms");
	ck_assert_uint_eq(h->rec.nframes, 20);
	/* Silence now: it fires. */
	run_until_event(h, 3000);
	expect_event_flags(h, READ_FLAGS);
	harness_free(h);
}
END_TEST

START_TEST(test_read_timeout_not_while_paused)
{
	struct harness *h = harness_new(0, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	set_read_timeout(h, 100);
	ck_assert_int_eq(evchat_pause_input(h->chat), 0);
	run_for(h->base, 400);
	expect_no_event(h, "paused for 400 ms");
	ck_assert_int_eq(evchat_resume_input(h->chat), 0);
	long long resumed = now_ms();
	run_until_event(h, 3000);
	expect_event_flags(h, READ_FLAGS);
	ck_assert_int_ge(now_ms() - resumed, 90);
	harness_free(h);
}
END_TEST

/* With AUTOFREE the reply pushed from the hook goes out, then the channel
 * frees itself (closing its socket). */
static void reply_408(struct evchat *chat, short events, void *arg)
{
	int *calls = arg;
	(*calls)++;
	/* The timeout first; the close AUTOFREE then makes may be reported
	 * as CLOSED, as for any finished close. */
	if (*calls == 1) {
		ck_assert_int_eq(events, READ_FLAGS);
		ck_assert_int_eq(evchat_push(chat, LIT("HTTP/1.1 408 Request "
		                                       "Timeout\r\n\r\n")),
		                 0);
	} else {
		ck_assert_int_eq(*calls, 2);
		ck_assert_int_eq(events, EVCHAT_EVENT_CLOSED);
	}
}

START_TEST(test_read_timeout_autofree_flushes_reply)
{
	struct event_base *base = event_base_new();
	ck_assert_ptr_nonnull(base);
	struct conn c;
	ck_assert_int_eq(conn_tcp(&c, base), 0);
	evutil_socket_t fd = bufferevent_getfd(c.bev);
	struct evchat *chat = evchat_new(c.bev, EVCHAT_OPT_AUTOFREE);
	ck_assert_ptr_nonnull(chat);
	int calls = 0;
	evchat_setcb(chat, NULL, NULL, reply_408, &calls);
	ck_assert_int_eq(evchat_set_terminator(chat, LIT("\r\n")), 0);
	struct timeval tv = ms_tv(100);
	ck_assert_int_eq(evchat_set_timeouts(chat, &tv, NULL), 0);
	/* Half a request, then silence. */
	write_all(c.peer, LIT("GET / HT"));

	struct evbuffer *got = evbuffer_new();
	ck_assert_ptr_nonnull(got);
	read_peer_to_eof(&c, got, 5000);
	expect_bytes("reply", got, LIT("HTTP/1.1 408 Request Timeout\r\n\r\n"));
	ck_assert_int_ge(calls, 1);
	/* Freed: its socket was closed. */
	long long end = now_ms() + 2000;
	while (fd_is_open(fd) && now_ms() < end)
		run_tick(base, 5000);
	ck_assert_msg(!fd_is_open(fd), "the channel's socket is still open");
	evbuffer_free(got);
	conn_close_peer(&c);
	event_base_free(base);
}
END_TEST

/* ---- the write timeout --------------------------------------------------- */

START_TEST(test_write_timeout_peer_not_reading)
{
	struct harness *h = harness_new(0, 1);
	shrink_send_buffer(h);
	struct timeval tv = ms_tv(100);
	ck_assert_int_eq(evchat_set_timeouts(h->chat, NULL, &tv), 0);
	push_big(h);
	run_until_event(h, 3000);
	expect_event_flags(h, WRITE_FLAGS);
	/* Output has failed. */
	ASSERT_FAILS(evchat_push(h->chat, LIT("more")), EPIPE);
	run_for(h->base, 300);
	expect_event_flags(h, WRITE_FLAGS);
	harness_free(h);
}
END_TEST

START_TEST(test_write_timeout_not_while_peer_reads)
{
	struct harness *h = harness_new(0, 1);
	shrink_send_buffer(h);
	/* Far above the reading interval: on a loaded machine one turn of
	 * this loop can take a hundred milliseconds. */
	struct timeval tv = ms_tv(1000);
	ck_assert_int_eq(evchat_set_timeouts(h->chat, NULL, &tv), 0);
	push_big(h);
	/* The peer reads a bit every 20 ms: slow, but never a second idle. */
	size_t received = 0;
	char *buf = malloc(256 * 1024);
	ck_assert_ptr_nonnull(buf);
	long long end = now_ms() + 20000;
	while (received < BIG && h->rec.nevents == 0 && now_ms() < end) {
		run_for(h->base, 20);
		ssize_t n;
		size_t step = 0;
		while (step < 256 * 1024 &&
		       (n = read(h->c.peer, buf, 256 * 1024 - step)) > 0) {
			for (ssize_t i = 0; i < n; i++)
				if (buf[i] !=
				    (char)('a' + (received + (size_t)i) % 23))
					ck_abort_msg("byte %zu wrong",
					             received + (size_t)i);
			received += (size_t)n;
			step += (size_t)n;
		}
	}
	expect_no_event(h, "the peer reads steadily");
	ck_assert_uint_eq(received, BIG);
	/* Nothing to write: idle output never times out. */
	run_for(h->base, 1500);
	expect_no_event(h, "nothing left to write");
	ck_assert_int_eq(evchat_push(h->chat, LIT("still fine\n")), 0);
	peer_expect(h, "still fine\n", 2000);
	free(buf);
	harness_free(h);
}
END_TEST

/* A zero write timeout means none, as it does for libevent: a close that
 * waits for a peer that does not read yet must not time out at the first
 * look without progress. */
START_TEST(test_zero_write_timeout_is_none)
{
	struct harness *h = harness_new(0, 1);
	shrink_send_buffer(h);
	struct timeval zero = { 0, 0 };
	ck_assert_int_eq(evchat_set_timeouts(h->chat, NULL, &zero), 0);
	push_big(h);
	ck_assert_int_eq(evchat_close_when_done(h->chat), 0);
	run_for(h->base, 400);
	expect_no_event(h, "closing, peer not reading, zero write timeout");
	/* The peer reads now: every byte, then the close completes. */
	struct evbuffer *got = evbuffer_new();
	ck_assert_ptr_nonnull(got);
	ck_assert_int_eq(drain_peer_until_eof(h->base, h->c.peer, got, 10000),
	                 1);
	ck_assert_uint_eq(evbuffer_get_length(got), BIG);
	run_until_event(h, 3000);
	expect_event_flags(h, EVCHAT_EVENT_CLOSED);
	evbuffer_free(got);
	harness_free(h);
}
END_TEST

/* ---- the frame timeout --------------------------------------------------- */

START_TEST(test_frame_timeout_cuts_off_dribbler)
{
	struct harness *h = harness_new(0, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	/* A byte every 20 ms, far inside the read timeout, for longer than
	 * the frame timeout: 500 ms leaves room for 5 bytes even when a
	 * loaded machine stops us for 300 ms of it. */
	set_read_timeout(h, 2000);
	set_frame_timeout(h, 500);
	send_str(h, "whole\n");
	run_until_frames(h, 1, 2000);
	long long start = now_ms();
	size_t sent = dribble(h, 'x', 20, 5000);
	long long waited = now_ms() - start;
	expect_event_flags(h, FRAME_FLAGS);
	ck_assert_msg(waited >= 490,
	              "cut off after %lld ms of a 500 ms "
	              "frame timeout",
	              waited);
	ck_assert_msg(sent >= 5, "only %zu bytes dribbled", sent);
	EXPECT_FRAMES(&h->rec, "whole");

	/* Reading stopped; a reply still goes out; reported once. */
	send_str(h, "\n");
	ck_assert_int_eq(evchat_push(h->chat, LIT("too slow\n")), 0);
	peer_expect(h, "too slow\n", 2000);
	run_for(h->base, 300);
	expect_event_flags(h, FRAME_FLAGS);
	EXPECT_FRAMES(&h->rec, "whole");
	harness_free(h);
}
END_TEST

START_TEST(test_frame_timeout_collect_mode)
{
	struct harness *h = harness_new(1, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	set_frame_timeout(h, 150);
	dribble(h, 'y', 20, 3000);
	expect_event_flags(h, FRAME_FLAGS);
	ck_assert_uint_eq(h->rec.nframes, 0);
	harness_free(h);
}
END_TEST

START_TEST(test_frame_timeout_steady_frames)
{
	struct harness *h = harness_new(0, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	set_frame_timeout(h, 250);
	/* Each frame takes 40 ms, back to back for 600 ms: far longer than
	 * the deadline in total, never for one frame (210 ms of slack for a
	 * loaded machine). */
	for (int i = 0; i < 15; i++) {
		send_str(h, "fra");
		run_for(h->base, 20);
		send_str(h, "me\n");
		run_for(h->base, 20);
	}
	run_until_frames(h, 15, 2000);
	expect_no_event(h, "steady frames");
	ck_assert_uint_eq(h->rec.nframes, 15);
	harness_free(h);
}
END_TEST

START_TEST(test_frame_timeout_idle_between_frames)
{
	struct harness *h = harness_new(0, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	/* Idle spells longer than the deadline; the one frame that takes a
	 * while ("b", 40 ms) leaves a loaded machine 210 ms of slack. */
	set_frame_timeout(h, 250);
	run_for(h->base, 400); /* idle before any frame */
	send_str(h, "a\n");
	run_for(h->base, 400); /* idle between frames */
	send_str(h, "b");
	run_for(h->base, 40);
	send_str(h, "\n");
	run_for(h->base, 400); /* idle again */
	expect_no_event(h, "idle between frames");
	EXPECT_FRAMES(&h->rec, "a", "b");
	harness_free(h);
}
END_TEST

START_TEST(test_frame_timeout_paused_input_stops_clock)
{
	struct harness *h = harness_new(0, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	/* Paused twice as long as the deadline; around the pause a loaded
	 * machine has 250 ms of slack. */
	set_frame_timeout(h, 300);
	send_str(h, "par");
	run_until_unfinished(h, 3, 2000);
	ck_assert_int_eq(evchat_pause_input(h->chat), 0);
	run_for(h->base, 600);
	expect_no_event(h, "paused mid-frame");
	ck_assert_int_eq(evchat_resume_input(h->chat), 0);
	run_for(h->base, 30);
	send_str(h, "tial\n");
	run_until_frames(h, 1, 2000);
	expect_no_event(h, "frame finished after the pause");
	EXPECT_FRAMES(&h->rec, "partial");

	/* The clock works again: an unfinished frame is cut off. */
	send_str(h, "never ends");
	run_until_event(h, 3000);
	expect_event_flags(h, FRAME_FLAGS);
	harness_free(h);
}
END_TEST

START_TEST(test_frame_timeout_not_for_terminator_none)
{
	struct harness *h = harness_new(0, 0);
	ck_assert_int_eq(evchat_set_terminator_none(h->chat), 0);
	set_frame_timeout(h, 100);
	size_t sent = dribble(h, 'z', 20, 400);
	run_for(h->base, 50);
	expect_no_event(h, "terminator none");
	ck_assert_uint_eq(pending_len(h), sent);
	harness_free(h);
}
END_TEST

/* A found hook may change the deadline for what follows. */
static void lengthen_deadline(struct evchat *chat, struct recorder *rec)
{
	struct timeval tv = ms_tv(2000);
	ck_assert_int_eq(evchat_set_frame_timeout(chat, &tv), 0);
}

START_TEST(test_frame_timeout_changed_from_found)
{
	struct harness *h = harness_new(0, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	set_frame_timeout(h, 100);
	h->rec.on_found = lengthen_deadline;
	send_str(h, "hdr\n");
	run_until_frames(h, 1, 2000);
	/* 300 ms of dribbling: past the old deadline, within the new. */
	dribble(h, 'b', 20, 300);
	expect_no_event(h, "deadline lengthened by the found hook");
	send_str(h, "\n");
	run_until_frames(h, 2, 2000);
	ck_assert_uint_eq(h->rec.nframes, 2);
	/* Off again: nothing is timed. */
	ck_assert_int_eq(evchat_set_frame_timeout(h->chat, NULL), 0);
	h->rec.on_found = NULL;
	dribble(h, 'c', 20, 300);
	expect_no_event(h, "frame timeout removed");
	harness_free(h);
}
END_TEST

/* _i: collect mode. A timeout ends input as EOF does, so what the peer
 * sent of the frame it cut off stays readable the same way, a partial
 * terminator included: in the pending buffer, or handed to collect. */
START_TEST(test_read_timeout_keeps_partial_terminator)
{
	struct harness *h = harness_new(_i, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\r\n")), 0);
	set_read_timeout(h, 100);
	send_str(h, "done\r\nabc\r");
	run_until_event(h, 2000);
	expect_event_flags(h, READ_FLAGS);
	EXPECT_FRAMES(&h->rec, "done");
	expect_bytes("unfinished", unfinished(h), LIT("abc\r"));
	harness_free(h);
}
END_TEST

/* _i: collect mode. Half a length header is part of the frame the frame
 * timeout cut off: it is not dropped. */
START_TEST(test_frame_timeout_keeps_half_header)
{
	struct harness *h = harness_new(_i, 0);
	struct evchat_length_field f = { 0, 4, 0, 0, 4 };
	ck_assert_int_eq(evchat_set_terminator_length(h->chat, &f), 0);
	set_frame_timeout(h, 100);
	write_all(h->c.peer, "\0\0\0\2ok\0\0", 8);
	run_until_event(h, 2000);
	expect_event_flags(h, FRAME_FLAGS);
	EXPECT_FRAMES(&h->rec, "ok");
	expect_bytes("unfinished", unfinished(h), "\0\0", 2);
	harness_free(h);
}
END_TEST

START_TEST(test_timeouts_invalid_arguments)
{
	struct harness *h = harness_new(0, 0);
	struct timeval ok = ms_tv(100);
	struct timeval neg_sec = { -1, 0 };
	struct timeval neg_usec = { 0, -1 };
	struct timeval big_usec = { 0, 1000000 };
	ASSERT_FAILS(evchat_set_frame_timeout(NULL, &ok), EINVAL);
	ASSERT_FAILS(evchat_set_frame_timeout(h->chat, &neg_sec), EINVAL);
	ASSERT_FAILS(evchat_set_frame_timeout(h->chat, &neg_usec), EINVAL);
	ASSERT_FAILS(evchat_set_frame_timeout(h->chat, &big_usec), EINVAL);
	ck_assert_int_eq(evchat_set_frame_timeout(h->chat, NULL), 0);
	ASSERT_FAILS(evchat_set_timeouts(NULL, &ok, &ok), EINVAL);
	ASSERT_FAILS(evchat_set_timeouts(h->chat, &neg_sec, NULL), EINVAL);
	ASSERT_FAILS(evchat_set_timeouts(h->chat, NULL, &neg_sec), EINVAL);
	ASSERT_FAILS(evchat_set_timeouts(h->chat, &neg_usec, NULL), EINVAL);
	ck_assert_int_eq(evchat_set_timeouts(h->chat, NULL, NULL), 0);

	/* A refused frame timeout set nothing: a dribbler is not cut. */
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	dribble(h, 'q', 20, 250);
	expect_no_event(h, "after refused timeouts");
	harness_free(h);
}
END_TEST

Suite *timeouts_suite(void)
{
	Suite *s = suite_create("timeouts");

	TCase *tc = tcase_create("idle");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_read_timeout_silent_peer);
	tcase_add_test(tc, test_read_timeout_not_while_peer_sends);
	tcase_add_test(tc, test_read_timeout_not_while_paused);
	tcase_add_test(tc, test_read_timeout_autofree_flushes_reply);
	tcase_add_test(tc, test_write_timeout_peer_not_reading);
	tcase_add_test(tc, test_write_timeout_not_while_peer_reads);
	tcase_add_test(tc, test_zero_write_timeout_is_none);
	tcase_add_loop_test(tc, test_read_timeout_keeps_partial_terminator, 0,
	                    2);
	suite_add_tcase(s, tc);

	tc = tcase_create("frame");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_frame_timeout_cuts_off_dribbler);
	tcase_add_test(tc, test_frame_timeout_collect_mode);
	tcase_add_test(tc, test_frame_timeout_steady_frames);
	tcase_add_test(tc, test_frame_timeout_idle_between_frames);
	tcase_add_test(tc, test_frame_timeout_paused_input_stops_clock);
	tcase_add_test(tc, test_frame_timeout_not_for_terminator_none);
	tcase_add_test(tc, test_frame_timeout_changed_from_found);
	tcase_add_loop_test(tc, test_frame_timeout_keeps_half_header, 0, 2);
	tcase_add_test(tc, test_timeouts_invalid_arguments);
	suite_add_tcase(s, tc);

	return s;
}
