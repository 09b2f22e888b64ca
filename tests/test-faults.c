/*
 * Faults over real loopback TCP, as a user would meet them: a peer that
 * resets in the middle of a frame, one that closes while a producer
 * streams to it, one that half-closes while a reply streams, one that
 * stops reading, and a producer that fails midway. Each ends in one
 * event with the flags and errno a program can act on; the frames and
 * bytes before the fault arrive once each and in order; a producer is
 * released exactly once, queued files are closed, and no hook runs after
 * the channel is freed.
 *
 * The cases the other suites cover are not repeated here: a reset while
 * plain pushes are written (lifecycle), close-when-done and abort
 * (closing), a peer that half-closes before an answer (lifecycle).
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <check.h>

#include "helpers.h"
#include "suites.h"

/* ---- fixtures ------------------------------------------------------------ */

static struct event_base *base;
static struct conn c;
static struct evchat *chat;
static struct recorder rec;
static int recorded_errno; /* errno as the first event saw it */
static int fds_before;

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	ck_assert_ptr_nonnull(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static void on_event(struct evchat *ch, short events, void *arg)
{
	if (rec.nevents == 0)
		recorded_errno = errno;
	recorder_event_cb(ch, events, arg);
}

static void setup(void)
{
	fds_before = count_fds();
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	recorder_init(&rec);
	recorded_errno = 0;
	chat = NULL;
	c.peer = -1;
}

/* The channel, on a TCP connection whose peer has the given buffers
 * (sized before it connects; 0 leaves the kernel's). */
static void open_chat(int collect, int peer_rcvbuf)
{
	ck_assert_int_eq(conn_tcp_sized(&c, base, peer_rcvbuf, 0), 0);
	chat = evchat_new(c.bev, 0);
	ck_assert_ptr_nonnull(chat);
	evchat_setcb(chat, collect ? recorder_collect_cb : NULL,
	             recorder_found_cb, on_event, &rec);
}

static void teardown(void)
{
	evchat_free(chat);
	event_base_free(base);
	conn_close_peer(&c);
	recorder_clear(&rec);
	/* Every socket, queued file and libevent descriptor went. */
	ck_assert_int_eq(count_fds(), fds_before);
}

/* Frees the channel, as the event hook's caller would, then runs the
 * loop a while: no hook may run again. */
static void free_and_expect_silence(void)
{
	size_t nframes = rec.nframes, nevents = rec.nevents;
	size_t ncollect = rec.ncollect_calls;
	evchat_free(chat);
	chat = NULL;
	run_for(base, 50);
	ck_assert_uint_eq(rec.nframes, nframes);
	ck_assert_uint_eq(rec.nevents, nevents);
	ck_assert_uint_eq(rec.ncollect_calls, ncollect);
}

static void reset_peer(void)
{
	/* A zero linger makes close() send a reset. */
	struct linger lg = { 1, 0 };
	ck_assert_int_eq(setsockopt(c.peer, SOL_SOCKET, SO_LINGER, &lg,
	                            sizeof(lg)),
	                 0);
	conn_close_peer(&c);
}

static void run_until_events(size_t n, int ms)
{
	long long end = now_ms() + ms;
	while (rec.nevents < n && now_ms() < end)
		run_tick(base, 2000);
}

/* The stream a producer sends: byte i is i * 7 mod 251. */
static unsigned char stream_byte(ev_uint64_t i)
{
	return (unsigned char)((i * 7) % 251);
}

/* The first n bytes a reader got are the stream's first n. */
static void expect_stream_prefix(struct evbuffer *got, const char *what)
{
	size_t n = evbuffer_get_length(got);
	const unsigned char *p = evbuffer_pullup(got, -1);
	for (size_t i = 0; i < n; i++)
		if (p[i] != stream_byte(i))
			ck_abort_msg("%s: %s: byte %zu of %zu is %u, want %u",
			             test_ctx, what, i, n, p[i],
			             stream_byte(i));
}

/* A producer of `total` bytes of the stream (0: endless) that fails with
 * fail_errno once it has produced fail_after bytes (0: never). */
struct producer {
	ev_uint64_t total;
	ev_uint64_t produced;
	ev_uint64_t fail_after;
	int fail_errno;
	int ncalls;
	int nreleased;
	int called_after_release;
};

static int produce(struct evchat *ch, struct evbuffer *out, size_t want,
                   void *arg)
{
	struct producer *p = arg;
	p->ncalls++;
	if (p->nreleased > 0)
		p->called_after_release = 1;
	if (p->fail_after > 0 && p->produced >= p->fail_after) {
		errno = p->fail_errno;
		return -1;
	}
	size_t n = want < 16384 ? want : 16384;
	if (p->total > 0 && p->produced + n > p->total)
		n = (size_t)(p->total - p->produced);
	if (p->fail_after > 0 && p->produced + n > p->fail_after)
		n = (size_t)(p->fail_after - p->produced);
	unsigned char chunk[16384];
	for (size_t i = 0; i < n; i++)
		chunk[i] = stream_byte(p->produced + i);
	ck_assert_int_eq(evbuffer_add(out, chunk, n), 0);
	p->produced += n;
	if (p->total > 0 && p->produced == p->total)
		return 0;
	return (int)n;
}

static void release(void *arg)
{
	struct producer *p = arg;
	p->nreleased++;
}

/* Reads what the peer can, without blocking; 1 at the end of stream
 * (EOF or a reset), 0 if it would block. */
static int peer_read_some(struct evbuffer *got, size_t max)
{
	while (max > 0) {
		int n = evbuffer_read(got, c.peer,
		                      max < 65536 ? (int)max : 65536);
		if (n == 0)
			return 1;
		if (n < 0)
			return errno != EAGAIN && errno != EINTR;
		max -= (size_t)n;
	}
	return 0;
}

/* ---- a reset in the middle of a frame ------------------------------------ */

/* The peer sends two whole frames and part of a third, then resets. The
 * two arrive once each, in order, before a single error event (ERROR and
 * READING, errno ECONNRESET); the partial frame stays readable as
 * pending (frame mode) or was collected (collect mode); later pushes fail
 * with EPIPE; after the free no hook runs. */
START_TEST(reset_in_the_middle_of_a_frame)
{
	int collect = _i;
	note("%s mode", mode_name(collect));
	open_chat(collect, 0);
	ck_assert_int_eq(evchat_set_terminator_line(chat, EVCHAT_EOL_LF), 0);
	write_all(c.peer, LIT("one\ntwo\nthr"));
	long long end = now_ms() + 3000;
	while (
	    (rec.nframes < 2 ||
	     (collect ? evbuffer_get_length(rec.collecting)
	              : evbuffer_get_length(evchat_get_pending(chat))) < 3) &&
	    now_ms() < end)
		run_tick(base, 2000);
	reset_peer();
	run_until_events(1, 3000);
	run_for(base, 50);

	EXPECT_FRAMES(&rec, "one", "two");
	expect_one_event(&rec, EVCHAT_EVENT_ERROR);
	ck_assert_msg(rec.events[0] & EVCHAT_EVENT_READING,
	              "%s: event 0x%x without READING", test_ctx,
	              (unsigned)rec.events[0]);
	ck_assert_msg(recorded_errno == ECONNRESET,
	              "%s: errno %d (%s) at the event, want ECONNRESET",
	              test_ctx, recorded_errno, strerror(recorded_errno));
	if (collect)
		expect_bytes("collected", rec.collecting, LIT("thr"));
	else
		expect_bytes("pending", evchat_get_pending(chat), LIT("thr"));
	ASSERT_FAILS(evchat_push(chat, LIT("late\n")), EPIPE);
	free_and_expect_silence();
}
END_TEST

/* ---- a peer that goes away while a producer streams ---------------------- */

/* The peer reads some of an endless stream, then closes with unread bytes
 * (so its kernel resets the connection). One error event, while writing
 * or reading, errno EPIPE or ECONNRESET; pushing fails with EPIPE. The
 * producer, and the file and the producer queued behind it, are released
 * or closed once each by the free, and never asked again; what the peer
 * read is the stream's start. */
START_TEST(peer_closes_while_a_producer_streams)
{
	open_chat(0, 32768);
	struct producer stream = { 0 }, behind = { .total = 10 };
	ck_assert_int_eq(evchat_push_producer(chat, produce, release, &stream),
	                 0);
	FILE *f = tmpfile();
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs("file behind the stream\n", f) >= 0, 1);
	fflush(f);
	ck_assert_int_eq(evchat_push_file(chat, dup(fileno(f)), 0, -1), 0);
	fclose(f);
	ck_assert_int_eq(evchat_push_producer(chat, produce, release, &behind),
	                 0);

	struct evbuffer *got = evbuffer_new();
	ck_assert_ptr_nonnull(got);
	long long end = now_ms() + 3000;
	while (evbuffer_get_length(got) < 256 * 1024 && now_ms() < end) {
		peer_read_some(got, 256 * 1024 - evbuffer_get_length(got));
		run_tick(base, 1000);
	}
	ck_assert_uint_ge(evbuffer_get_length(got), 256 * 1024);
	expect_stream_prefix(got, "read before the close");
	conn_close_peer(&c);
	run_until_events(1, 3000);
	run_for(base, 50);

	expect_one_event(&rec, EVCHAT_EVENT_ERROR);
	ck_assert_msg(recorded_errno == EPIPE || recorded_errno == ECONNRESET,
	              "errno %d (%s) at the event, want EPIPE or ECONNRESET",
	              recorded_errno, strerror(recorded_errno));
	/* Released when done, discarded or freed: here at the free. */
	ck_assert_int_le(stream.nreleased, 1);
	ck_assert_int_eq(behind.ncalls, 0);
	ASSERT_FAILS(evchat_push(chat, LIT("late\n")), EPIPE);
	free_and_expect_silence();
	ck_assert_int_eq(stream.nreleased, 1);
	ck_assert_int_eq(stream.called_after_release, 0);
	ck_assert_int_eq(behind.ncalls, 0);
	ck_assert_int_eq(behind.nreleased, 1);
	evbuffer_free(got);
}
END_TEST

/* ---- a peer that half-closes while a reply streams ----------------------- */

static struct producer reply;

/* On the request, answer with a 4 MiB stream and close when done. */
static void stream_reply(struct evchat *ch, struct recorder *r)
{
	ck_assert_int_eq(evchat_push_producer(ch, produce, release, &reply), 0);
	ck_assert_int_eq(evchat_close_when_done(ch), 0);
}

/* The peer sends its request and half-closes at once, then reads the
 * reply. The EOF does not cut the reply, nor is it reported: the close
 * asked for on the request hears it, and a hook that freed on it would
 * cut the reply. All 4 MiB arrive in order, then CLOSED, by which time
 * the producer was released, once. */
START_TEST(peer_half_closes_while_a_reply_streams)
{
	open_chat(0, 65536);
	memset(&reply, 0, sizeof(reply));
	reply.total = (ev_uint64_t)4 << 20;
	rec.on_found = stream_reply;
	ck_assert_int_eq(evchat_set_terminator_line(chat, EVCHAT_EOL_LF), 0);
	write_all(c.peer, LIT("GET\n"));
	ck_assert_int_eq(shutdown(c.peer, SHUT_WR), 0);

	struct evbuffer *got = evbuffer_new();
	ck_assert_ptr_nonnull(got);
	int ended = 0;
	long long end = now_ms() + 10000;
	while (!ended && now_ms() < end) {
		ended = peer_read_some(got, 32768);
		run_tick(base, 1000);
	}
	ck_assert_msg(ended, "no end of stream after %zu bytes",
	              evbuffer_get_length(got));
	ck_assert_uint_eq(evbuffer_get_length(got), reply.total);
	expect_stream_prefix(got, "the reply");
	run_until_events(1, 1000);
	EXPECT_FRAMES(&rec, "GET");
	/* The close, once, and nothing else. */
	ck_assert_uint_eq(rec.nevents, 1);
	ck_assert_int_eq(rec.events[0], EVCHAT_EVENT_CLOSED);
	ck_assert_int_eq(reply.nreleased, 1);
	ck_assert_int_eq(reply.called_after_release, 0);
	free_and_expect_silence();
	evbuffer_free(got);
}
END_TEST

/* ---- a peer that stops reading ------------------------------------------- */

/* The peer reads the start of an endless stream, then nothing more. The
 * write timeout ends it: one event, TIMEOUT and WRITING; the producer is
 * released once, by the free; memory stays bounded meanwhile (the channel never holds
 * more than its refill level and a chunk); and the bytes the peer can
 * still read afterwards continue the stream exactly. */
START_TEST(peer_stops_reading)
{
	open_chat(0, 32768);
	struct timeval write_timeout = { 0, 300 * 1000 };
	ck_assert_int_eq(evchat_set_timeouts(chat, NULL, &write_timeout), 0);
	struct producer stream = { 0 };
	ck_assert_int_eq(evchat_push_producer(chat, produce, release, &stream),
	                 0);
	struct evbuffer *got = evbuffer_new();
	ck_assert_ptr_nonnull(got);
	long long end = now_ms() + 3000;
	while (evbuffer_get_length(got) < 128 * 1024 && now_ms() < end) {
		peer_read_some(got, 128 * 1024 - evbuffer_get_length(got));
		run_tick(base, 1000);
	}
	size_t most_queued = 0;
	end = now_ms() + 5000;
	while (rec.nevents == 0 && now_ms() < end) {
		run_tick(base, 5000);
		if (chat != NULL && evchat_get_queued(chat) > most_queued)
			most_queued = evchat_get_queued(chat);
	}
	expect_one_event(&rec, EVCHAT_EVENT_TIMEOUT);
	ck_assert_msg(rec.events[0] & EVCHAT_EVENT_WRITING,
	              "event 0x%x without WRITING", (unsigned)rec.events[0]);
	ck_assert_int_le(stream.nreleased, 1);
	ck_assert_uint_le(most_queued, 64 * 1024 + 16384);
	ASSERT_FAILS(evchat_push(chat, LIT("late\n")), EPIPE);
	free_and_expect_silence();
	ck_assert_int_eq(stream.nreleased, 1);
	ck_assert_int_eq(stream.called_after_release, 0);
	/* What the kernels still held arrives, in order, then the end. */
	end = now_ms() + 3000;
	while (!peer_read_some(got, (size_t)-1) && now_ms() < end)
		run_tick(base, 1000);
	expect_stream_prefix(got, "everything the peer got");
	ck_assert_uint_le(evbuffer_get_length(got), stream.produced);
	ck_assert_int_eq(stream.nreleased, 1);
	evbuffer_free(got);
}
END_TEST

/* ---- a producer that fails ----------------------------------------------- */

/* After 100000 bytes the producer fails with EIO. One event, ERROR and
 * WRITING, with the producer's errno; released once, before the event;
 * the items behind it are never run, and released when the channel goes.
 * As after any error, bytes still queued are not sent: the program aborts
 * from the hook so that the peer sees a reset, never an EOF that could
 * pass for the end of a complete reply; what it got before is the
 * stream's start. */
static int released_at_event;
static struct producer failing;

static void note_release(struct evchat *ch, short events, void *arg)
{
	released_at_event = failing.nreleased;
	on_event(ch, events, arg);
}

START_TEST(producer_fails_midway)
{
	open_chat(0, 0);
	evchat_setcb(chat, NULL, recorder_found_cb, note_release, &rec);
	memset(&failing, 0, sizeof(failing));
	failing.fail_after = 100000;
	failing.fail_errno = EIO;
	released_at_event = -1;
	struct producer behind = { .total = 10 };
	ck_assert_int_eq(evchat_push_producer(chat, produce, release, &failing),
	                 0);
	ck_assert_int_eq(evchat_push(chat, LIT("never sent\n")), 0);
	ck_assert_int_eq(evchat_push_producer(chat, produce, release, &behind),
	                 0);
	run_until_events(1, 3000);
	expect_one_event(&rec, EVCHAT_EVENT_ERROR);
	ck_assert_msg(rec.events[0] & EVCHAT_EVENT_WRITING,
	              "event 0x%x without WRITING", (unsigned)rec.events[0]);
	ck_assert_msg(recorded_errno == EIO, "errno %d (%s), want EIO",
	              recorded_errno, strerror(recorded_errno));
	ck_assert_int_eq(released_at_event, 1);
	ck_assert_int_eq(behind.ncalls, 0);
	size_t nevents = rec.nevents;
	evchat_abort(chat);
	chat = NULL;
	run_for(base, 50);
	ck_assert_uint_eq(rec.nevents, nevents);
	ck_assert_int_eq(behind.ncalls, 0);
	ck_assert_int_eq(behind.nreleased, 1);
	ck_assert_int_eq(failing.nreleased, 1);

	struct evbuffer *got = evbuffer_new();
	ck_assert_ptr_nonnull(got);
	int err = -1;
	long long end = now_ms() + 3000;
	while (err < 0 && now_ms() < end) {
		int n = evbuffer_read(got, c.peer, 65536);
		if (n == 0)
			err = 0;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			err = errno;
		else if (n < 0)
			run_tick(base, 1000);
	}
	ck_assert_msg(err == ECONNRESET,
	              "the peer's stream ended with %d "
	              "(%s), want ECONNRESET",
	              err, err > 0 ? strerror(err) : "EOF or nothing");
	ck_assert_uint_le(evbuffer_get_length(got), 100000);
	expect_stream_prefix(got, "before the failure");
	evbuffer_free(got);
}
END_TEST

Suite *faults_suite(void)
{
	Suite *s = suite_create("faults");
	TCase *tc = tcase_create("loopback");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, reset_in_the_middle_of_a_frame, 0, 2);
	tcase_add_test(tc, peer_closes_while_a_producer_streams);
	tcase_add_test(tc, peer_half_closes_while_a_reply_streams);
	tcase_add_test(tc, peer_stops_reading);
	tcase_add_test(tc, producer_fails_midway);
	suite_add_tcase(s, tc);
	return s;
}
