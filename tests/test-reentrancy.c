/*
 * Regression tests for the re-entrancy, EOF and producer bugs found in
 * review. Each test is a port of one review reproduction, named by its
 * number (01-discard-release-free and so on), and asserts the fixed
 * behaviour. Some of the bugs were memory errors (a use after free, an
 * overlapping memcpy): the tests assert what can be seen from outside
 * where there is something, but the errors themselves are reported only
 * under ASan (both) or valgrind (the use after free; valgrind 3.19 on
 * glibc 2.36 does not flag the overlapping memcpy).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <check.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "helpers.h"
#include "suites.h"

/* ---- fixtures ------------------------------------------------------------ */

#define MAX_EVENTS 16

/* One channel, its raw peer, and what its hooks saw. */
struct side {
	struct conn conn;
	struct evchat *chat; /* NULL once freed */
	struct recorder rec;
	int errs[MAX_EVENTS];         /* errno at each event hook call */
	size_t frames_at[MAX_EVENTS]; /* frames found before each event */
	int free_on_closed;           /* free the channel on CLOSED */
	int autofree;                 /* made with EVCHAT_OPT_AUTOFREE */
};

static struct event_base *base;
static struct side s1, s2; /* s2 only where a test needs two channels */
static int tmp_fds[2];     /* closed by rt_teardown() */

static void side_init(struct side *s)
{
	memset(s, 0, sizeof(*s));
	s->conn.peer = -1;
	recorder_init(&s->rec);
}

static void side_clear(struct side *s)
{
	/* The bufferevent goes before its base. */
	evchat_free(s->chat);
	s->chat = NULL;
	conn_close_peer(&s->conn);
	recorder_clear(&s->rec);
}

static void rt_setup(void)
{
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	side_init(&s1);
	side_init(&s2);
	tmp_fds[0] = tmp_fds[1] = -1;
}

static void rt_teardown(void)
{
	side_clear(&s1);
	side_clear(&s2);
	for (int i = 0; i < 2; i++)
		if (tmp_fds[i] >= 0)
			close(tmp_fds[i]);
	event_base_free(base);
	base = NULL;
}

static void side_collect(struct evchat *chat, struct evbuffer *data, void *arg)
{
	struct side *s = arg;
	recorder_collect_cb(chat, data, &s->rec);
}

static void side_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct side *s = arg;
	recorder_found_cb(chat, frame, &s->rec);
}

static void side_event(struct evchat *chat, short events, void *arg)
{
	struct side *s = arg;
	int err = errno; /* before anything can change it */
	ck_assert_ptr_eq(chat, s->chat);
	if (s->rec.nevents < MAX_EVENTS) {
		s->errs[s->rec.nevents] = err;
		s->frames_at[s->rec.nevents] = s->rec.nframes;
	}
	recorder_event_cb(chat, events, &s->rec);
	if (s->free_on_closed && (events & EVCHAT_EVENT_CLOSED)) {
		evchat_free(chat);
		s->chat = NULL;
	}
	/* The channel frees itself when this hook returns. */
	if (s->autofree &&
	    (events &
	     (EVCHAT_EVENT_ERROR | EVCHAT_EVENT_TIMEOUT | EVCHAT_EVENT_CLOSED)))
		s->chat = NULL;
}

/* A channel over a socketpair, in frame mode with the side's hooks.
 * bev_options adds to BEV_OPT_CLOSE_ON_FREE (BEV_OPT_DEFER_CALLBACKS). */
static void open_side(struct side *s, unsigned flags, int bev_options)
{
	if (bev_options == 0) {
		ck_assert_int_eq(conn_socketpair(&s->conn, base), 0);
	} else {
		evutil_socket_t fds[2];
		ck_assert_int_eq(evutil_socketpair(AF_UNIX, SOCK_STREAM, 0,
		                                   fds),
		                 0);
		evutil_make_socket_nonblocking(fds[0]);
		evutil_make_socket_nonblocking(fds[1]);
		s->conn.base = base;
		s->conn.peer = fds[1];
		s->conn.bev = bufferevent_socket_new(base, fds[0],
		                                     BEV_OPT_CLOSE_ON_FREE |
		                                         bev_options);
		ck_assert_ptr_nonnull(s->conn.bev);
	}
	s->chat = evchat_new(s->conn.bev, flags);
	ck_assert_ptr_nonnull(s->chat);
	s->autofree = (flags & EVCHAT_OPT_AUTOFREE) != 0;
	evchat_setcb(s->chat, NULL, side_found, side_event, s);
}

/* ---- small helpers ------------------------------------------------------- */

static long long rt_clock_ms(void)
{
	struct timeval tv;
	evutil_gettimeofday(&tv, NULL);
	return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* One pass of the loop, waiting at most 5 ms. */
static void rt_tick(void)
{
	struct timeval tv = { 0, 5000 };
	event_base_loopexit(base, &tv);
	event_base_loop(base, EVLOOP_ONCE);
}

static void rt_run_ms(int ms)
{
	static const int never = 0;
	run_until(base, &never, ms);
}

/* Runs the loop until the side saw an event, or ms pass. */
static void rt_run_until_event(struct side *s, int ms)
{
	long long end = rt_clock_ms() + ms;
	while (s->rec.nevents == 0 && rt_clock_ms() < end)
		rt_tick();
	run_pending(base);
}

/* buf holds exactly the string want. */
static void rt_expect_buf(struct evbuffer *buf, const char *want)
{
	size_t len = evbuffer_get_length(buf);
	const char *got = len ? (const char *)evbuffer_pullup(buf, -1) : "";
	ck_assert_msg(len == strlen(want) && memcmp(got, want, len) == 0,
	              "got \"%.*s\" (%zu bytes), want \"%s\"", (int)len, got,
	              len, want);
}

/* The side's recorder holds exactly these n frames. */
static void rt_expect_frames(const struct side *s, const char *const *want,
                             size_t n)
{
	ck_assert_msg(s->rec.nframes == n, "%zu frames, want %zu",
	              s->rec.nframes, n);
	for (size_t i = 0; i < n; i++) {
		char *got = recorder_frame(&s->rec, i);
		ck_assert_msg(strcmp(got, want[i]) == 0,
		              "frame %zu: got \"%s\", want \"%s\"", i, got,
		              want[i]);
		free(got);
	}
}

/* Closes the channel once its output is written (the side frees it on
 * CLOSED, which closes the socket) and reads everything at the peer. */
static void rt_close_and_read_all(struct side *s, struct evbuffer *got)
{
	s->free_on_closed = 1;
	ck_assert_int_eq(evchat_close_when_done(s->chat), 0);
	ck_assert_msg(drain_peer_until_eof(base, s->conn.peer, got, 3000),
	              "no EOF at the peer (%zu bytes read)",
	              evbuffer_get_length(got));
	ck_assert_ptr_null(s->chat);
}

/* An unlinked temporary file holding len bytes of fill. */
static int rt_temp_file(size_t len, char fill)
{
	char path[] = "/tmp/evchat-reentrancy-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	char chunk[65536];
	memset(chunk, fill, sizeof(chunk));
	while (len > 0) {
		size_t n = len < sizeof(chunk) ? len : sizeof(chunk);
		ck_assert_int_eq(write(fd, chunk, n), (ssize_t)n);
		len -= n;
	}
	return fd;
}

/* ---- 01-discard-release-free --------------------------------------------- */

static int rel01_count;
static int rel01_destroyed;        /* the channel's buffers were freed */
static int rel01_destroyed_inside; /* ... while its release hook ran */

static int more_waits(struct evchat *chat, struct evbuffer *out, size_t want,
                      void *arg)
{
	return EVCHAT_AGAIN;
}

static void probe_cleanup(const void *data, size_t len, void *extra)
{
	rel01_destroyed = 1;
}

static void release_frees(void *arg)
{
	rel01_count++;
	/* A probe: a chunk in the channel's pending buffer, whose cleanup
	 * runs when the channel's buffers are freed, i.e. when the channel
	 * itself is destroyed. */
	ck_assert_int_eq(evbuffer_add_reference(evchat_get_pending(s1.chat),
	                                        "probe", 5, probe_cleanup,
	                                        NULL),
	                 0);
	evchat_free(s1.chat);
	s1.chat = NULL;
	/* evchat_discard_buffers() is still on the stack and goes on using
	 * the channel after this hook: it must not be destroyed yet. */
	rel01_destroyed_inside = rel01_destroyed;
}

/* evchat_discard_buffers() called outside any hook, where the release of a
 * queued producer frees the channel: the release runs once, from the
 * loop (the call may come from another thread), and the channel is
 * destroyed only when that loop entry returns (before the first fix it
 * went at once, inside discard, which then read freed memory, as
 * valgrind and ASan reported). */
START_TEST(test_01_discard_release_frees)
{
	rel01_count = rel01_destroyed = rel01_destroyed_inside = 0;
	open_side(&s1, 0, 0);
	ck_assert_int_eq(evchat_push_producer(s1.chat, more_waits,
	                                      release_frees, NULL),
	                 0);
	/* A pending close makes discard look at the channel afterwards. */
	ck_assert_int_eq(evchat_close_when_done(s1.chat), 0);
	rt_run_ms(30);
	ck_assert_int_eq(rel01_count, 0);
	ck_assert_ptr_nonnull(s1.chat);

	evchat_discard_buffers(s1.chat);
	ck_assert_int_eq(rel01_count, 0);
	ck_assert_ptr_nonnull(s1.chat);
	rt_run_ms(30);
	ck_assert_int_eq(rel01_count, 1);
	ck_assert_ptr_null(s1.chat);
	ck_assert_msg(!rel01_destroyed_inside,
	              "the channel was destroyed inside its release hook, "
	              "with the loop's entry still running");
	ck_assert_msg(rel01_destroyed,
	              "the channel was not destroyed after the release");

	/* The peer sees the socket closed; no hook ran. */
	struct evbuffer *got = evbuffer_new();
	ck_assert(drain_peer_until_eof(base, s1.conn.peer, got, 2000));
	ck_assert_uint_eq(evbuffer_get_length(got), 0);
	ck_assert_uint_eq(s1.rec.nevents, 0);
	ck_assert_int_eq(rel01_count, 1);
	evbuffer_free(got);
}
END_TEST

/* ---- 02-more-discard ----------------------------------------------------- */

/* The repro's three runs: "0", "-1", "0 x". */
static const struct {
	int ret;     /* what more() returns after discarding */
	int push_p2; /* the release pushes a second producer */
} v02[] = { { 0, 0 }, { -1, 0 }, { 0, 1 } };
static int v02_ret, rel02_count, more02_calls, p2_calls;

static int more_discards(struct evchat *chat, struct evbuffer *out, size_t want,
                         void *arg)
{
	more02_calls++;
	evbuffer_add(out, "stale", 5);
	evchat_discard_buffers(chat);
	/* "never while its own more is running" */
	ck_assert_int_eq(rel02_count, 0);
	return v02_ret;
}

static void release_counts(void *arg)
{
	rel02_count++;
}

static int more_p2(struct evchat *chat, struct evbuffer *out, size_t want,
                   void *arg)
{
	p2_calls++;
	evbuffer_add(out, "P2", 2);
	return 0;
}

static void release_pushes_p2(void *arg)
{
	rel02_count++;
	ck_assert_int_eq(evchat_push_producer(arg, more_p2, NULL, NULL), 0);
}

/* A producer's more() discards the buffers (its own item included) and
 * returns 0 or -1: no crash, released once after more() returns, its bytes
 * are not sent, and the queue stays usable: a producer pushed by the
 * release runs, and so does what is pushed later. */
START_TEST(test_02_more_discards)
{
	v02_ret = v02[_i].ret;
	rel02_count = more02_calls = p2_calls = 0;
	open_side(&s1, 0, 0);
	ck_assert_int_eq(evchat_push_producer(s1.chat, more_discards,
	                                      v02[_i].push_p2
	                                          ? release_pushes_p2
	                                          : release_counts,
	                                      s1.chat),
	                 0);
	rt_run_ms(30);
	ck_assert_int_eq(more02_calls, 1);
	ck_assert_int_eq(rel02_count, 1);
	ck_assert_int_eq(p2_calls, v02[_i].push_p2 ? 1 : 0);
	/* The discarded producer's result, -1 included, does not fail the
	 * connection: the discard dropped it. */
	ck_assert_uint_eq(s1.rec.nevents, 0);

	struct evbuffer *got = evbuffer_new();
	ck_assert_int_eq(evchat_push(s1.chat, "END", 3), 0);
	rt_close_and_read_all(&s1, got);
	rt_expect_buf(got, v02[_i].push_p2 ? "P2END" : "END");
	ck_assert_int_eq(rel02_count, 1);
	ck_assert_int_eq(more02_calls, 1);
	ck_assert_uint_eq(s1.rec.nevents, 1);
	ck_assert(s1.rec.events[0] & EVCHAT_EVENT_CLOSED);
	evbuffer_free(got);
}
END_TEST

/* ---- 03-resume-lost ------------------------------------------------------ */

static int more03_calls, more03_done;

static int more_resumes_itself(struct evchat *chat, struct evbuffer *out,
                               size_t want, void *arg)
{
	more03_calls++;
	if (more03_calls == 1) {
		/* A source polled here has data at once. */
		evchat_resume(chat);
		return EVCHAT_AGAIN;
	}
	more03_done = 1;
	evbuffer_add(out, "data", 4);
	return 0;
}

/* evchat_resume() from inside more(), which then returns EVCHAT_AGAIN:
 * the producer is asked again, and its bytes arrive. */
START_TEST(test_03_resume_inside_more)
{
	more03_calls = more03_done = 0;
	open_side(&s1, 0, 0);
	ck_assert_int_eq(evchat_push_producer(s1.chat, more_resumes_itself,
	                                      NULL, NULL),
	                 0);
	run_until(base, &more03_done, 1000);
	ck_assert_msg(more03_calls == 2,
	              "more() called %d times, want 2: the resume was lost",
	              more03_calls);

	struct evbuffer *got = evbuffer_new();
	rt_close_and_read_all(&s1, got);
	rt_expect_buf(got, "data");
	ck_assert_int_eq(more03_calls, 2);
	evbuffer_free(got);
}
END_TEST

/* ---- 04-errno-release ---------------------------------------------------- */

static int rel04_count;

static int more_fails_eio(struct evchat *chat, struct evbuffer *out,
                          size_t want, void *arg)
{
	errno = EIO;
	return -1;
}

static void release_sets_ebadf(void *arg)
{
	rel04_count++;
	/* As a failing cleanup or stdio would. */
	ck_assert_int_eq(close(-1), -1);
	ck_assert_int_eq(errno, EBADF);
}

/* A producer fails with EIO; its release hook, which runs before the
 * report, sets errno to EBADF: the event hook still sees EIO. */
START_TEST(test_04_release_keeps_errno)
{
	rel04_count = 0;
	open_side(&s1, 0, 0);
	ck_assert_int_eq(evchat_push_producer(s1.chat, more_fails_eio,
	                                      release_sets_ebadf, NULL),
	                 0);
	rt_run_until_event(&s1, 1000);
	ck_assert_uint_eq(s1.rec.nevents, 1);
	ck_assert(s1.rec.events[0] & EVCHAT_EVENT_ERROR);
	ck_assert_msg(s1.errs[0] == EIO,
	              "event hook saw errno %d (%s), want EIO", s1.errs[0],
	              strerror(s1.errs[0]));
	ck_assert_int_eq(rel04_count, 1);
}
END_TEST

/* ---- 05-eof-drops-deferred ----------------------------------------------- */

static void a_found_sets_b_count0(struct evchat *chat, struct evbuffer *frame,
                                  void *arg)
{
	side_found(chat, frame, arg);
	ck_assert_int_eq(evchat_set_terminator_count(s2.chat, 0), 0);
}

/* Channel A's found hook sets a count of 0 on channel B while B's EOF is
 * already pending in the same loop iteration, ahead of B's deferred run:
 * B still gets its empty frame, and then EOF. */
START_TEST(test_05_eof_keeps_count0_frame)
{
	/* Priorities make the order deterministic whatever the backend
	 * reports first: A's read runs in one pass; B's read (its EOF) was
	 * activated before A's hook activated B's deferred run, so it runs
	 * first in B's queue. */
	ck_assert_int_eq(event_base_priority_init(base, 2), 0);
	open_side(&s1, 0, 0); /* A */
	open_side(&s2, 0, 0); /* B */
	ck_assert_int_eq(
	    bufferevent_priority_set(evchat_get_bufferevent(s1.chat), 0), 0);
	evchat_setcb(s1.chat, NULL, a_found_sets_b_count0, side_event, &s1);
	ck_assert_int_eq(evchat_set_terminator(s1.chat, "\n", 1), 0);
	run_pending(base); /* A's deferred rescan, with nothing to scan */

	/* Both ready before the loop looks. */
	write_all(s1.conn.peer, "x\n", 2);
	ck_assert_int_eq(shutdown(s2.conn.peer, SHUT_WR), 0);
	rt_run_until_event(&s2, 1000);
	rt_run_ms(20);

	static const char *const a_want[] = { "x" };
	rt_expect_frames(&s1, a_want, 1);
	ck_assert_uint_eq(s1.rec.nevents, 0);

	static const char *const b_want[] = { "" };
	rt_expect_frames(&s2, b_want, 1);
	ck_assert_uint_eq(s2.rec.nevents, 1);
	ck_assert(s2.rec.events[0] & EVCHAT_EVENT_EOF);
	ck_assert_msg(s2.frames_at[0] == 1,
	              "B's empty frame came after its EOF (%zu frames before)",
	              s2.frames_at[0]);
}
END_TEST

/* ---- 06-found-after-close ------------------------------------------------ */

static void collect_closes(struct evchat *chat, struct evbuffer *data,
                           void *arg)
{
	side_collect(chat, data, arg);
	ck_assert_int_eq(evchat_close_when_done(chat), 0);
}

/* Collect mode; the collect hook calls evchat_close_when_done() for the
 * bytes that the terminator then ends: found is not called, with a string
 * terminator (_i == 0) as with a count (_i == 1). */
START_TEST(test_06_no_found_after_close)
{
	open_side(&s1, 0, 0);
	s1.free_on_closed = 1;
	evchat_setcb(s1.chat, collect_closes, side_found, side_event, &s1);
	if (_i == 0)
		ck_assert_int_eq(evchat_set_terminator(s1.chat, "\n", 1), 0);
	else
		ck_assert_int_eq(evchat_set_terminator_count(s1.chat, 3), 0);
	write_all(s1.conn.peer, "abc\n", 4);
	rt_run_until_event(&s1, 1000);

	ck_assert_uint_eq(s1.rec.ncollect_calls, 1);
	ck_assert_msg(s1.rec.nframes == 0,
	              "found called %zu times after close_when_done",
	              s1.rec.nframes);
	ck_assert_uint_eq(s1.rec.nevents, 1);
	ck_assert(s1.rec.events[0] & EVCHAT_EVENT_CLOSED);
	ck_assert_ptr_null(s1.chat);
}
END_TEST

/* ---- 07-write-eof -------------------------------------------------------- */

/* A file range past the end of the file is refused at push time with
 * EINVAL, and the caller keeps the descriptor; the channel is unharmed. */
START_TEST(test_07_push_file_past_end)
{
	open_side(&s1, 0, 0);
	tmp_fds[0] = rt_temp_file(0, 0);
	ck_assert_int_eq(write(tmp_fds[0], "0123456789", 10), 10);
	int fd = tmp_fds[0];

	static const struct {
		ev_off_t offset, length;
	} bad[] = { { 0, 1000 }, { 0, 11 }, { 5, 6 }, { 10, 1 }, { 11, -1 } };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		ck_assert_msg(evchat_push_file(s1.chat, fd, bad[i].offset,
		                               bad[i].length) == -1 &&
		                  errno == EINVAL,
		              "push_file(offset %lld, length %lld): want -1 "
		              "EINVAL, errno %d",
		              (long long)bad[i].offset,
		              (long long)bad[i].length, errno);
		/* Still ours, still open. */
		ck_assert_int_ne(fcntl(fd, F_GETFD), -1);
	}

	/* The same file, within its size, is taken and sent. */
	ck_assert_int_eq(evchat_push_file(s1.chat, fd, 4, 6), 0);
	tmp_fds[0] = -1; /* the channel's now */
	ck_assert_int_eq(evchat_push(s1.chat, "|", 1), 0);
	struct evbuffer *got = evbuffer_new();
	rt_close_and_read_all(&s1, got);
	rt_expect_buf(got, "456789|");
	ck_assert_uint_eq(s1.rec.nevents, 1);
	ck_assert(s1.rec.events[0] & EVCHAT_EVENT_CLOSED);
	evbuffer_free(got);
}
END_TEST

#define BIG_FILE ((size_t)4 << 20)
#define SHORT_FILE 16

/* A file that passed the push-time check is truncated while it is being
 * sent. libevent then sees sendfile() return 0 and reports
 * BEV_EVENT_EOF|BEV_EVENT_WRITING: that is a broken output, not the peer
 * closing. The hook gets EVCHAT_EVENT_ERROR with errno EPIPE, never
 * EVCHAT_EVENT_EOF; reading stops, so a peer that keeps sending does not
 * make the input buffer grow; with AUTOFREE (_i == 1) the channel frees
 * itself. Deterministic on Linux: the truncation comes while the peer reads
 * nothing and the channel's socket buffer is full, well past the new end of
 * file, so the next sendfile() starts past it. */
START_TEST(test_07_file_truncated_after_push)
{
	int autofree = _i;
	open_side(&s1, autofree ? EVCHAT_OPT_AUTOFREE : 0, 0);
	ck_assert_int_eq(evchat_set_terminator(s1.chat, "\n", 1), 0);
	tmp_fds[0] = rt_temp_file(BIG_FILE, 'f');
	tmp_fds[1] = dup(tmp_fds[0]); /* to truncate it later */
	ck_assert_int_ge(tmp_fds[1], 0);
	ck_assert_int_eq(evchat_push_file(s1.chat, tmp_fds[0], 0, -1), 0);
	tmp_fds[0] = -1; /* the channel's now */

	/* The socket buffer fills; the peer does not read yet. */
	struct bufferevent *bev = evchat_get_bufferevent(s1.chat);
	rt_run_ms(50);
	size_t left = evbuffer_get_length(bufferevent_get_output(bev));
	ck_assert_msg(left > 0 && left < BIG_FILE - SHORT_FILE,
	              "%zu of %zu bytes left to send: the kernel should hold "
	              "some but not all",
	              left, BIG_FILE);
	ck_assert_uint_eq(s1.rec.nevents, 0);

	ck_assert_int_eq(ftruncate(tmp_fds[1], SHORT_FILE), 0);

	/* The peer reads: the channel may write again, and finds the end
	 * of the file. */
	struct evbuffer *sink = evbuffer_new();
	long long end = rt_clock_ms() + 3000;
	while (s1.rec.nevents == 0 && rt_clock_ms() < end) {
		while (evbuffer_read(sink, s1.conn.peer, 1 << 16) > 0)
			evbuffer_drain(sink, (size_t)-1);
		rt_tick();
	}
	run_pending(base);
	ck_assert_msg(s1.rec.nevents == 1, "%zu events, want 1",
	              s1.rec.nevents);
	ck_assert_msg(!(s1.rec.events[0] & EVCHAT_EVENT_EOF),
	              "a short file was reported as the peer's EOF (0x%x)",
	              (unsigned)s1.rec.events[0]);
	ck_assert_msg(s1.rec.events[0] & EVCHAT_EVENT_ERROR,
	              "event 0x%x, want EVCHAT_EVENT_ERROR",
	              (unsigned)s1.rec.events[0]);
	ck_assert_msg(s1.errs[0] == EPIPE, "errno %d (%s), want EPIPE",
	              s1.errs[0], strerror(s1.errs[0]));

	if (autofree) {
		/* Freed after the hook: the socket is closed. */
		ck_assert_ptr_null(s1.chat);
		ck_assert_msg(drain_peer_until_eof(base, s1.conn.peer, sink,
		                                   2000),
		              "the AUTOFREE channel was not freed");
	} else {
		ck_assert_ptr_nonnull(s1.chat);
		errno = 0;
		ck_assert_int_eq(evchat_push(s1.chat, "x", 1), -1);
		ck_assert_int_eq(errno, EPIPE);

		/* The peer, still connected, keeps talking. */
		char junk[65536];
		memset(junk, 'x', sizeof(junk));
		junk[100] = '\n';
		size_t sent = 0;
		for (int i = 0; i < 64; i++) {
			ssize_t n = send(s1.conn.peer, junk, sizeof(junk),
			                 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n > 0)
				sent += (size_t)n;
			rt_tick();
		}
		run_pending(base);
		size_t held = evbuffer_get_length(bufferevent_get_input(bev)) +
		              evbuffer_get_length(evchat_get_pending(s1.chat));
		ck_assert_msg(held <= 65536,
		              "the failed channel still reads: it holds %zu of "
		              "the %zu bytes the peer sent",
		              held, sent);
		ck_assert_uint_eq(s1.rec.nframes, 0);
		ck_assert_uint_eq(s1.rec.nevents, 1);
	}
	evbuffer_free(sink);
}
END_TEST

/* ---- 08-held-after-collect-change ---------------------------------------- */

static void collect_switches_to_count1(struct evchat *chat,
                                       struct evbuffer *data, void *arg)
{
	struct side *s = arg;
	side_collect(chat, data, arg);
	if (evbuffer_get_length(s->rec.collecting) == 3)
		ck_assert_int_eq(evchat_set_terminator_count(chat, 1), 0);
}

/* Collect mode with "\r\n"; the peer sends "abc\r" and waits for a reply.
 * collect("abc") switches to a count of 1: the held "\r" is collected and
 * ends the frame without more input. */
START_TEST(test_08_held_after_collect_change)
{
	open_side(&s1, 0, 0);
	evchat_setcb(s1.chat, collect_switches_to_count1, side_found,
	             side_event, &s1);
	ck_assert_int_eq(evchat_set_terminator(s1.chat, "\r\n", 2), 0);
	write_all(s1.conn.peer, "abc\r", 4);
	long long end = rt_clock_ms() + 1000;
	while (s1.rec.nframes == 0 && rt_clock_ms() < end)
		rt_tick();
	run_pending(base);

	static const char *const want[] = { "abc\r" };
	rt_expect_frames(&s1, want, 1);
	ck_assert_uint_eq(s1.rec.ncollect_calls, 2);
	ck_assert_int_eq(evchat_get_terminator(s1.chat, NULL, NULL, NULL),
	                 EVCHAT_TERM_NONE);
	ck_assert_uint_eq(s1.rec.nevents, 0);
}
END_TEST

/* ---- 11-in-buffer-size --------------------------------------------------- */

static size_t largest_collect;

static void collect_notes_size(struct evchat *chat, struct evbuffer *data,
                               void *arg)
{
	size_t n = evbuffer_get_length(data);
	if (n > largest_collect)
		largest_collect = n;
	side_collect(chat, data, arg);
}

/* Sizes libevent would silently replace by its default are refused with
 * EINVAL and change nothing; a sane size is taken and limits each read. */
START_TEST(test_11_in_buffer_size)
{
	open_side(&s1, 0, 0);
	struct bufferevent *bev = evchat_get_bufferevent(s1.chat);
	ck_assert_int_eq(bufferevent_get_max_single_read(bev),
	                 (ev_ssize_t)EVCHAT_DEFAULT_IN_BUFFER_SIZE);

	static const size_t bad[] = { SIZE_MAX, (size_t)EV_SSIZE_MAX + 1, 0 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		ck_assert_msg(evchat_set_in_buffer_size(s1.chat, bad[i]) ==
		                      -1 &&
		                  errno == EINVAL,
		              "set_in_buffer_size(%zu): want -1 EINVAL, "
		              "errno %d",
		              bad[i], errno);
		ck_assert_int_eq(bufferevent_get_max_single_read(bev),
		                 (ev_ssize_t)EVCHAT_DEFAULT_IN_BUFFER_SIZE);
	}

	ck_assert_int_eq(evchat_set_in_buffer_size(s1.chat, 4096), 0);
	ck_assert_int_eq(bufferevent_get_max_single_read(bev), 4096);

	/* Reads take at most that much. */
	largest_collect = 0;
	evchat_setcb(s1.chat, collect_notes_size, side_found, side_event, &s1);
	static char data[20000];
	memset(data, 'z', sizeof(data));
	write_all(s1.conn.peer, data, sizeof(data));
	long long end = rt_clock_ms() + 2000;
	while (evbuffer_get_length(s1.rec.collecting) < sizeof(data) &&
	       rt_clock_ms() < end)
		rt_tick();
	ck_assert_uint_eq(evbuffer_get_length(s1.rec.collecting), sizeof(data));
	ck_assert_uint_le(largest_collect, 4096);
	ck_assert_uint_eq(s1.rec.nevents, 0);
}
END_TEST

/* ---- 12-set-term-self ---------------------------------------------------- */

/* evchat_set_terminator() given the borrowed bytes of the current
 * terminator (from evchat_get_terminator()), overlapping or the same:
 * the result is right and frames still split. The overlapping copy itself
 * was undefined behaviour that in practice only ASan reports. */
START_TEST(test_12_set_terminator_from_own_bytes)
{
	const void *t;
	size_t len;
	open_side(&s1, 0, 0);
	ck_assert_int_eq(evchat_set_terminator(s1.chat, "0123456789abcdefghij",
	                                       20),
	                 0);

	/* Its own tail: overlapping. */
	ck_assert_int_eq(evchat_get_terminator(s1.chat, &t, &len, NULL),
	                 EVCHAT_TERM_STRING);
	ck_assert_int_eq(evchat_set_terminator(s1.chat, (const char *)t + 4,
	                                       16),
	                 0);
	ck_assert_int_eq(evchat_get_terminator(s1.chat, &t, &len, NULL),
	                 EVCHAT_TERM_STRING);
	ck_assert_uint_eq(len, 16);
	ck_assert(memcmp(t, "456789abcdefghij", 16) == 0);

	/* Itself: unchanged. */
	ck_assert_int_eq(evchat_set_terminator(s1.chat, t, len), 0);
	ck_assert_int_eq(evchat_get_terminator(s1.chat, &t, &len, NULL),
	                 EVCHAT_TERM_STRING);
	ck_assert_uint_eq(len, 16);
	ck_assert(memcmp(t, "456789abcdefghij", 16) == 0);

	static const char in[] = "x456789abcdefghijy4567456789abcdefghij";
	write_all(s1.conn.peer, in, sizeof(in) - 1);
	long long end = rt_clock_ms() + 1000;
	while (s1.rec.nframes < 2 && rt_clock_ms() < end)
		rt_tick();
	static const char *const want[] = { "x", "y4567" };
	rt_expect_frames(&s1, want, 2);
}
END_TEST

/* ---- 13-eof-and-error-merged --------------------------------------------- */

static int push13_ret, push13_errno;

static void event_pushes_reply(struct evchat *chat, short events, void *arg)
{
	side_event(chat, events, arg);
	if (events & EVCHAT_EVENT_EOF) {
		/* The documented reply-at-EOF pattern. */
		errno = 0;
		push13_ret = evchat_push(chat, "bye\n", 4);
		push13_errno = errno;
		evchat_close_when_done(chat);
	}
}

/* With BEV_OPT_DEFER_CALLBACKS libevent merges a read EOF and a write
 * error of one loop pass into one event: the channel takes it as the
 * error it is. The hook is called once with both flags, and pushing then
 * fails with EPIPE. */
START_TEST(test_13_eof_and_error_merged)
{
	static char big[1 << 20];
	push13_ret = 0;
	push13_errno = 0;
	open_side(&s1, 0, BEV_OPT_DEFER_CALLBACKS);
	evchat_setcb(s1.chat, NULL, side_found, event_pushes_reply, &s1);
	ck_assert_int_eq(evchat_push(s1.chat, big, sizeof(big)), 0);
	rt_run_ms(
	    50); /* the kernel buffers fill; the output still holds some */
	struct bufferevent *bev = evchat_get_bufferevent(s1.chat);
	ck_assert_uint_gt(evbuffer_get_length(bufferevent_get_output(bev)), 0);

	/* The peer reads what is in flight, so that its close is a clean
	 * EOF for our read, then goes: our write fails with EPIPE in the
	 * same loop pass. */
	struct evbuffer *sink = evbuffer_new();
	while (evbuffer_read(sink, s1.conn.peer, 1 << 16) > 0)
		;
	evbuffer_free(sink);
	conn_close_peer(&s1.conn);
	rt_run_until_event(&s1, 1000);
	rt_run_ms(50);

	ck_assert_msg(s1.rec.nevents == 1, "%zu event hook calls, want 1",
	              s1.rec.nevents);
	ck_assert_msg((s1.rec.events[0] & EVCHAT_EVENT_EOF) &&
	                  (s1.rec.events[0] & EVCHAT_EVENT_ERROR),
	              "event 0x%x, want EOF and ERROR together",
	              (unsigned)s1.rec.events[0]);
	ck_assert_msg(push13_ret == -1 && push13_errno == EPIPE,
	              "push from the hook returned %d, errno %d; want -1 EPIPE",
	              push13_ret, push13_errno);
	errno = 0;
	ck_assert_int_eq(evchat_push(s1.chat, "x", 1), -1);
	ck_assert_int_eq(errno, EPIPE);
}
END_TEST

/* ---- 14-count-collect-change --------------------------------------------- */

static void collect_sets_newline(struct evchat *chat, struct evbuffer *data,
                                 void *arg)
{
	side_collect(chat, data, arg);
	ck_assert_int_eq(evchat_set_terminator(chat, "\n", 1), 0);
}

/* Collect mode, count 3; collect sets "\n" while the count frame is being
 * collected. The count frame still ends ("abc"), and, evchat's documented
 * choice (asynchat drops the change), the "\n" stays for the next frame,
 * so "de\n" makes a second one. */
START_TEST(test_14_count_collect_change)
{
	open_side(&s1, 0, 0);
	evchat_setcb(s1.chat, collect_sets_newline, side_found, side_event,
	             &s1);
	ck_assert_int_eq(evchat_set_terminator_count(s1.chat, 3), 0);
	write_all(s1.conn.peer, "abcde\n", 6);
	long long end = rt_clock_ms() + 1000;
	while (s1.rec.nframes < 2 && rt_clock_ms() < end)
		rt_tick();
	run_pending(base);

	static const char *const want[] = { "abc", "de" };
	rt_expect_frames(&s1, want, 2);
	const void *t;
	size_t len;
	ck_assert_int_eq(evchat_get_terminator(s1.chat, &t, &len, NULL),
	                 EVCHAT_TERM_STRING);
	ck_assert_uint_eq(len, 1);
	ck_assert(memcmp(t, "\n", 1) == 0);
}
END_TEST

/* ---- 15-mode-switch ------------------------------------------------------ */

static struct evbuffer *first_collect; /* what the first collect call got */

static void collect_keeps_first(struct evchat *chat, struct evbuffer *data,
                                void *arg)
{
	if (first_collect == NULL) {
		first_collect = evbuffer_new();
		ck_assert_ptr_nonnull(first_collect);
		evbuffer_add(first_collect, evbuffer_pullup(data, -1),
		             evbuffer_get_length(data));
	}
	side_collect(chat, data, arg);
}

/* Frame mode gathers "abc" under no terminator; evchat_setcb() then
 * switches to collect mode and "de" arrives: the next collect call gets
 * "abcde", as the header documents, and nothing stays pending. */
START_TEST(test_15_mode_switch_to_collect)
{
	first_collect = NULL;
	open_side(&s1, 0, 0);
	ck_assert_int_eq(evchat_set_terminator_none(s1.chat), 0);
	write_all(s1.conn.peer, "abc", 3);
	long long end = rt_clock_ms() + 1000;
	while (evbuffer_get_length(evchat_get_pending(s1.chat)) < 3 &&
	       rt_clock_ms() < end)
		rt_tick();
	ck_assert_uint_eq(evbuffer_get_length(evchat_get_pending(s1.chat)), 3);

	evchat_setcb(s1.chat, collect_keeps_first, side_found, side_event, &s1);
	write_all(s1.conn.peer, "de", 2);
	end = rt_clock_ms() + 1000;
	while (first_collect == NULL && rt_clock_ms() < end)
		rt_tick();
	run_pending(base);

	ck_assert_ptr_nonnull(first_collect);
	rt_expect_buf(first_collect, "abcde");
	ck_assert_uint_eq(s1.rec.ncollect_calls, 1);
	ck_assert_uint_eq(evbuffer_get_length(evchat_get_pending(s1.chat)), 0);
	ck_assert_uint_eq(s1.rec.nframes, 0);
	evbuffer_free(first_collect);
	first_collect = NULL;
}
END_TEST

/* ---- 16-deferred-free-other --------------------------------------------- */

static void found_frees_s2(struct evchat *chat, struct evbuffer *frame,
                           void *arg)
{
	side_found(chat, frame, arg);
	evchat_free(s2.chat);
	s2.chat = NULL;
}

/* Opens n sides with "\r\n" terminators and has each peer send a
 * letter ('a', 'b', ...) and a "\r", which may start the terminator. */
static void open_held_cr(struct side *const *sides, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		open_side(sides[k], 0, 0);
		ck_assert_int_eq(evchat_set_terminator(sides[k]->chat, "\r\n",
		                                       2),
		                 0);
		char line[2] = { (char)('a' + k), '\r' };
		write_all(sides[k]->conn.peer, line, 2);
	}
}

/* Both channels of one base have deferred work due, A's first: each
 * holds a "\r" that may start its "\r\n" terminator, and a switch to
 * "\r" frames it from the loop. A's found hook frees B, whose work is
 * still queued behind A's: B's hooks never run, and its memory is not
 * touched again (ASan and valgrind watch this one). With _i == 1 a third
 * channel queued behind B still gets its frame. */
START_TEST(test_16_deferred_free_other)
{
	static struct side s3;
	struct side *sides[] = { &s1, &s2, &s3 };
	size_t n = _i == 1 ? 3 : 2;
	side_init(&s3);
	open_held_cr(sides, n);
	evchat_setcb(s1.chat, NULL, found_frees_s2, side_event, &s1);
	long long end = rt_clock_ms() + 1000;
	while (evbuffer_get_length(evchat_get_pending(sides[n - 1]->chat)) <
	           1 &&
	       rt_clock_ms() < end)
		rt_tick();
	rt_run_ms(10);
	for (size_t k = 0; k < n; k++) {
		ck_assert_uint_eq(evbuffer_get_length(
		                      evchat_get_pending(sides[k]->chat)),
		                  1);
		ck_assert_uint_eq(sides[k]->rec.nframes, 0);
	}

	for (size_t k = 0; k < n; k++)
		ck_assert_int_eq(evchat_set_terminator(sides[k]->chat, "\r", 1),
		                 0);
	ck_assert_uint_eq(s1.rec.nframes, 0); /* not inside the call */
	run_pending(base);

	static const char *const a_want[] = { "a" };
	rt_expect_frames(&s1, a_want, 1);
	ck_assert_ptr_null(s2.chat);
	ck_assert_uint_eq(s2.rec.nframes, 0);
	ck_assert_uint_eq(s2.rec.nevents, 0);
	if (_i == 1) {
		static const char *const c_want[] = { "c" };
		rt_expect_frames(&s3, c_want, 1);
	}
	side_clear(&s3);
}
END_TEST

static void found_breaks_loop(struct evchat *chat, struct evbuffer *frame,
                              void *arg)
{
	side_found(chat, frame, arg);
	event_base_loopbreak(base);
}

/* The channels of a base share one deferred-work event; a hook that
 * breaks the loop still stops it at once, as it did when each channel
 * had an event of its own: B's deferred frame waits for the next run. */
START_TEST(test_16_deferred_loopbreak)
{
	struct side *sides[] = { &s1, &s2 };
	open_held_cr(sides, 2);
	evchat_setcb(s1.chat, NULL, found_breaks_loop, side_event, &s1);
	long long end = rt_clock_ms() + 1000;
	while ((evbuffer_get_length(evchat_get_pending(s1.chat)) < 1 ||
	        evbuffer_get_length(evchat_get_pending(s2.chat)) < 1) &&
	       rt_clock_ms() < end)
		rt_tick();
	for (size_t k = 0; k < 2; k++)
		ck_assert_int_eq(evchat_set_terminator(sides[k]->chat, "\r", 1),
		                 0);
	event_base_loop(base, 0); /* returns at A's break */
	ck_assert_uint_eq(s1.rec.nframes, 1);
	ck_assert_uint_eq(s2.rec.nframes, 0);
	run_pending(base);
	static const char *const b_want[] = { "b" };
	rt_expect_frames(&s2, b_want, 1);
}
END_TEST

/* Work still due when the channels and then their base are freed, with
 * no loop run between: nothing runs, and nothing is left behind (the
 * sanitizer build's leak check and valgrind watch this one). */
START_TEST(test_16_deferred_then_freed)
{
	open_side(&s1, 0, 0);
	open_side(&s2, 0, 0);
	ck_assert_int_eq(evchat_pause_input(s1.chat), 0);
	ck_assert_int_eq(evchat_resume_input(s1.chat), 0);
	ck_assert_int_eq(evchat_set_terminator(s2.chat, "\n", 1), 0);
	/* The fixture's teardown frees s1, s2, then the base. With _i == 1
	 * s2 goes first, leaving s1 queued alone. */
	if (_i == 1) {
		evchat_free(s2.chat);
		s2.chat = NULL;
	}
	ck_assert_uint_eq(s1.rec.nevents, 0);
}
END_TEST

/* ------------------------------------------------------------------------- */

Suite *reentrancy_suite(void)
{
	Suite *s = suite_create("reentrancy");

	TCase *tc = tcase_create("producers");
	tcase_add_checked_fixture(tc, rt_setup, rt_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_01_discard_release_frees);
	tcase_add_loop_test(tc, test_02_more_discards, 0,
	                    (int)(sizeof(v02) / sizeof(v02[0])));
	tcase_add_test(tc, test_03_resume_inside_more);
	tcase_add_test(tc, test_04_release_keeps_errno);
	suite_add_tcase(s, tc);

	tc = tcase_create("input");
	tcase_add_checked_fixture(tc, rt_setup, rt_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_05_eof_keeps_count0_frame);
	tcase_add_loop_test(tc, test_06_no_found_after_close, 0, 2);
	tcase_add_test(tc, test_08_held_after_collect_change);
	tcase_add_test(tc, test_12_set_terminator_from_own_bytes);
	tcase_add_test(tc, test_14_count_collect_change);
	tcase_add_test(tc, test_15_mode_switch_to_collect);
	tcase_add_loop_test(tc, test_16_deferred_free_other, 0, 2);
	tcase_add_loop_test(tc, test_16_deferred_then_freed, 0, 2);
	tcase_add_test(tc, test_16_deferred_loopbreak);
	suite_add_tcase(s, tc);

	tc = tcase_create("eof");
	tcase_add_checked_fixture(tc, rt_setup, rt_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_07_push_file_past_end);
	tcase_add_loop_test(tc, test_07_file_truncated_after_push, 0, 2);
	tcase_add_test(tc, test_13_eof_and_error_merged);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, rt_setup, rt_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_11_in_buffer_size);
	suite_add_tcase(s, tc);

	return s;
}
