/*
 * Pushing from several threads while the loop thread writes, delivers
 * frames and runs hooks; then closing while they still push. Every
 * message a push accepted reaches the peer exactly once and in its
 * thread's order; a push refused after the close fails with EPIPE.
 *
 * A program of its own: libevent's threading must be on before any event
 * base exists. CI also runs it under ThreadSanitizer, with
 * EVCHAT_TEST_THREAD_PUSHES lowered.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>
#include <event2/thread.h>

#include "helpers.h"
#include "transport.h"

#define NPUSHERS 8
#define HOOK_STREAM NPUSHERS /* replies pushed by the found hook */
#define NSTREAMS (NPUSHERS + 1)
#define DEFAULT_PUSHES 100000

static unsigned long pushes_per_thread(void)
{
	const char *s = getenv("EVCHAT_TEST_THREAD_PUSHES");
	unsigned long n = s && *s ? strtoul(s, NULL, 10) : DEFAULT_PUSHES;
	return n ? n : 1;
}

/* ---- one channel with its loop on a thread of its own -------------------- */

struct world {
	struct event_base *base;
	struct evchat *chat;
	evutil_socket_t peer; /* the raw other end: main reads, feeder writes */
	pthread_t loop;
	unsigned long pushes; /* per pusher */
	unsigned long feeds;  /* lines the feeder sends */
	int stop_on_epipe;    /* pushers stop at a refused push */

	/* Written by the threads, read by main after joining them. */
	atomic_ulong accepted[NSTREAMS]; /* pushes that returned 0 */
	atomic_ulong total_pushed;
	atomic_int bad_errno; /* a push failed with other than EPIPE */
	atomic_int pushed_after_refusal; /* a push worked after EPIPE */
	atomic_ulong found;
	atomic_int found_out_of_order;
	atomic_ulong writable_calls;
	atomic_int events; /* OR of the event hook's flags */
	atomic_int hook_thread_wrong;
	pthread_t loop_id;
	/* On the loop thread, outside any hook: sets the terminator and the
	 * limit again and again while other threads push lines, which read
	 * them (under the channel's lock, which the setters take too). */
	struct event *reframe;
	atomic_ulong reframes;
};

static void *loop_main(void *arg)
{
	struct world *w = arg;
	w->loop_id = pthread_self();
	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static void check_hook_thread(struct world *w)
{
	if (!pthread_equal(pthread_self(), w->loop_id))
		atomic_store(&w->hook_thread_wrong, 1);
}

/* Each incoming line "f <k>" is answered with "t8 <k>" from the loop
 * thread, interleaved with the other threads' pushes. */
static void on_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct world *w = arg;
	check_hook_thread(w);
	char line[64];
	size_t len = evbuffer_get_length(frame);
	if (len >= sizeof(line))
		len = sizeof(line) - 1;
	evbuffer_remove(frame, line, len);
	line[len] = '\0';
	unsigned long k = strtoul(line + 2, NULL, 10);
	unsigned long n = atomic_fetch_add(&w->found, 1);
	if (line[0] != 'f' || k != n)
		atomic_store(&w->found_out_of_order, 1);
	char reply[64];
	int rlen = snprintf(reply, sizeof(reply), "t%d %lu\n", HOOK_STREAM,
	                    atomic_load(&w->accepted[HOOK_STREAM]));
	if (evchat_push(chat, reply, (size_t)rlen) == 0)
		atomic_fetch_add(&w->accepted[HOOK_STREAM], 1);
	else if (errno != EPIPE)
		atomic_store(&w->bad_errno, errno);
	/* Flow-control calls from the loop thread too. */
	(void)evchat_get_queued(chat);
	(void)evchat_is_writable(chat);
}

static void on_event(struct evchat *chat, short events, void *arg)
{
	struct world *w = arg;
	check_hook_thread(w);
	atomic_fetch_or(&w->events, events);
}

static void on_writable(struct evchat *chat, int writable, void *arg)
{
	struct world *w = arg;
	check_hook_thread(w);
	atomic_fetch_add(&w->writable_calls, 1);
}

static void on_reframe(evutil_socket_t fd, short what, void *arg)
{
	struct world *w = arg;
	(void)fd, (void)what;
	check_hook_thread(w);
	/* The same values: the lines are framed as before. */
	if (evchat_set_terminator(w->chat, LIT("\n")) == 0 &&
	    evchat_set_frame_limit(w->chat, 0, EVCHAT_LIMIT_CLOSE) == 0)
		atomic_fetch_add(&w->reframes, 1);
}

/* flags: for evchat_new(); the direct options make the loop thread's
 * reads and replies go through the socket read event the channel took
 * over and the thread's reply scratch. */
static struct world *world_new(unsigned flags)
{
	struct world *w = calloc(1, sizeof(*w));
	ck_assert_ptr_nonnull(w);
	w->pushes = pushes_per_thread();
	w->feeds = w->pushes / 10 + 1;
	w->base = event_base_new();
	ck_assert_ptr_nonnull(w->base);
	evutil_socket_t fds[2];
	ck_assert_int_eq(evutil_socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	evutil_make_socket_nonblocking(fds[0]);
	w->peer = fds[1];
	struct bufferevent *bev = bufferevent_socket_new(
	    w->base, fds[0], BEV_OPT_CLOSE_ON_FREE | BEV_OPT_THREADSAFE);
	ck_assert_ptr_nonnull(bev);
	w->chat = evchat_new(bev, flags);
	ck_assert_ptr_nonnull(w->chat);
	/* Framing calls belong to the loop thread: made before it runs. */
	evchat_setcb(w->chat, NULL, on_found, on_event, w);
	evchat_set_writable_cb(w->chat, on_writable);
	ck_assert_int_eq(evchat_set_terminator(w->chat, LIT("\n")), 0);
	/* Small marks, so the writable state flips while threads push. */
	ck_assert_int_eq(evchat_set_write_watermarks(w->chat, 4096, 16384), 0);
	w->reframe = event_new(w->base, -1, EV_PERSIST, on_reframe, w);
	ck_assert_ptr_nonnull(w->reframe);
	struct timeval every = { 0, 1000 };
	ck_assert_int_eq(event_add(w->reframe, &every), 0);
	ck_assert_int_eq(pthread_create(&w->loop, NULL, loop_main, w), 0);
	return w;
}

static void world_free(struct world *w)
{
	event_base_loopbreak(w->base);
	ck_assert_int_eq(pthread_join(w->loop, NULL), 0);
	/* The loop thread is gone: this thread owns the channel now. */
	event_free(w->reframe);
	evchat_free(w->chat);
	event_base_free(w->base);
	close(w->peer);
	free(w);
}

/* ---- the pushing threads ------------------------------------------------- */

struct pusher {
	struct world *w;
	int id;
};

static void *pusher_main(void *arg)
{
	struct pusher *p = arg;
	struct world *w = p->w;
	char line[64];
	int refused = 0;
	for (unsigned long seq = 0; seq < w->pushes; seq++) {
		int len = snprintf(line, sizeof(line), "t%d %lu\n", p->id,
		                   atomic_load(&w->accepted[p->id]));
		int r;
		/* Half the threads push lines, which add the terminator. */
		if (p->id % 2)
			r = evchat_push_line(w->chat, line, (size_t)len - 1);
		else
			r = evchat_push(w->chat, line, (size_t)len);
		if (r == 0) {
			if (refused)
				atomic_store(&w->pushed_after_refusal, 1);
			atomic_fetch_add(&w->accepted[p->id], 1);
		} else {
			if (errno != EPIPE)
				atomic_store(&w->bad_errno, errno);
			refused = 1;
			if (w->stop_on_epipe && seq % 64 == 63)
				break; /* a few more tries proved the point */
		}
		atomic_fetch_add(&w->total_pushed, 1);
		/* The close test closes once half the pushes are in: past its
		 * own half a pusher slows down until it is refused, so that
		 * the close lands while it still pushes even where threads
		 * are run one at a time for long stretches (valgrind, which
		 * let the close come after all 16,000 of them). */
		if (w->stop_on_epipe && !refused && seq >= w->pushes / 2)
			usleep(1000);
		if (seq % 1024 == 0) {
			(void)evchat_get_queued(w->chat);
			(void)evchat_is_writable(w->chat);
			evchat_resume(w->chat); /* harmless with no producer */
		}
		/* Thread 0 also pauses and resumes input now and then. */
		if (p->id == 0 && seq % 5000 == 0) {
			evchat_pause_input(w->chat);
			evchat_resume_input(w->chat);
		}
	}
	return NULL;
}

struct feeder {
	struct world *w;
};

static void *feeder_main(void *arg)
{
	struct world *w = ((struct feeder *)arg)->w;
	char line[64];
	for (unsigned long k = 0; k < w->feeds; k++) {
		int len = snprintf(line, sizeof(line), "f %lu\n", k);
		const char *p = line;
		while (len > 0) {
			ssize_t n = send(w->peer, p, (size_t)len, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return NULL; /* the channel closed */
			p += n;
			len -= (int)n;
		}
	}
	return NULL;
}

/* ---- the reader (main thread) -------------------------------------------- */

struct reader {
	unsigned long got[NSTREAMS];
	unsigned long lines;
	char partial[64];
	size_t plen;
	int eof;
};

static void reader_line(struct reader *r, const char *line)
{
	unsigned tid;
	unsigned long seq;
	if (sscanf(line, "t%u %lu", &tid, &seq) != 2 || tid >= NSTREAMS)
		ck_abort_msg("garbled line \"%s\" after %lu lines", line,
		             r->lines);
	if (seq != r->got[tid])
		ck_abort_msg("stream %u: got message %lu, want %lu "
		             "(lost, repeated or reordered)",
		             tid, seq, r->got[tid]);
	r->got[tid]++;
	r->lines++;
}

/* Reads what is there (waiting up to ms for something). */
static void reader_poll(struct reader *r, evutil_socket_t fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	if (poll(&pfd, 1, ms) <= 0)
		return;
	char buf[65536];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n == 0) {
		r->eof = 1;
		return;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			r->eof = 1;
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			r->partial[r->plen] = '\0';
			reader_line(r, r->partial);
			r->plen = 0;
		} else {
			if (r->plen + 1 >= sizeof(r->partial))
				ck_abort_msg("overlong line after %lu lines",
				             r->lines);
			r->partial[r->plen++] = buf[i];
		}
	}
}

static void start_threads(struct world *w, pthread_t *threads,
                          struct pusher *pushers, pthread_t *feed_thread,
                          struct feeder *feeder)
{
	feeder->w = w;
	ck_assert_int_eq(pthread_create(feed_thread, NULL, feeder_main, feeder),
	                 0);
	for (int i = 0; i < NPUSHERS; i++) {
		pushers[i].w = w;
		pushers[i].id = i;
		ck_assert_int_eq(pthread_create(&threads[i], NULL, pusher_main,
		                                &pushers[i]),
		                 0);
	}
}

static void check_thread_outcomes(struct world *w)
{
	ck_assert_msg(atomic_load(&w->bad_errno) == 0, "a push failed with %s",
	              strerror(atomic_load(&w->bad_errno)));
	ck_assert_msg(!atomic_load(&w->pushed_after_refusal),
	              "a push worked after one was refused");
	ck_assert_msg(!atomic_load(&w->found_out_of_order),
	              "frames reached the found hook out of order");
	ck_assert_msg(!atomic_load(&w->hook_thread_wrong),
	              "a hook ran on a thread other than the loop's");
}

/* ---- tests --------------------------------------------------------------- */

/* _i: plain, with the direct options. */
static unsigned chat_flags(int i)
{
	return i ? EVCHAT_OPT_DIRECT_READ | EVCHAT_OPT_DIRECT_WRITE : 0;
}

START_TEST(test_threads_push_while_loop_runs)
{
	struct world *w = world_new(chat_flags(_i));
	pthread_t threads[NPUSHERS], feed_thread;
	struct pusher pushers[NPUSHERS];
	struct feeder feeder;
	start_threads(w, threads, pushers, &feed_thread, &feeder);

	/* Read while they push; everything arrives, each stream in order. */
	struct reader r;
	memset(&r, 0, sizeof(r));
	unsigned long want = NPUSHERS * w->pushes + w->feeds;
	long long end = now_ms() + 240000;
	while (r.lines < want && !r.eof && now_ms() < end)
		reader_poll(&r, w->peer, 100);
	for (int i = 0; i < NPUSHERS; i++)
		ck_assert_int_eq(pthread_join(threads[i], NULL), 0);
	ck_assert_int_eq(pthread_join(feed_thread, NULL), 0);
	check_thread_outcomes(w);
	for (int i = 0; i < NPUSHERS; i++) {
		ck_assert_uint_eq(atomic_load(&w->accepted[i]), w->pushes);
		ck_assert_uint_eq(r.got[i], w->pushes);
	}
	ck_assert_uint_eq(atomic_load(&w->found), w->feeds);
	ck_assert_uint_eq(r.got[HOOK_STREAM], w->feeds);
	ck_assert_uint_eq(r.lines, want);
	ck_assert_int_eq(atomic_load(&w->events), 0);

	/* Closing from this thread: the rest goes out, then EOF. */
	ck_assert_int_eq(evchat_close_when_done(w->chat), 0);
	ASSERT_FAILS(evchat_push(w->chat, LIT("late\n")), EPIPE);
	end = now_ms() + 10000;
	while (!r.eof && now_ms() < end)
		reader_poll(&r, w->peer, 100);
	ck_assert_msg(r.eof, "no EOF after the close");
	ck_assert_uint_eq(r.lines, want);
	end = now_ms() + 5000;
	while (!(atomic_load(&w->events) & EVCHAT_EVENT_CLOSED) &&
	       now_ms() < end)
		usleep(1000);
	ck_assert_int_eq(atomic_load(&w->events), EVCHAT_EVENT_CLOSED);
	ck_assert_uint_gt(atomic_load(&w->reframes), 0);
	printf("threads: %lu messages, %lu writable hook calls, %lu "
	       "terminators set\n",
	       r.lines, atomic_load(&w->writable_calls),
	       atomic_load(&w->reframes));
	world_free(w);
}
END_TEST

START_TEST(test_threads_close_while_pushing)
{
	struct world *w = world_new(chat_flags(_i));
	w->stop_on_epipe = 1;
	pthread_t threads[NPUSHERS], feed_thread;
	struct pusher pushers[NPUSHERS];
	struct feeder feeder;
	start_threads(w, threads, pushers, &feed_thread, &feeder);

	/* Close halfway through, while every thread still pushes and the
	 * loop thread answers the feeder. */
	struct reader r;
	memset(&r, 0, sizeof(r));
	unsigned long half = NPUSHERS * w->pushes / 2;
	long long end = now_ms() + 240000;
	while (atomic_load(&w->total_pushed) < half && now_ms() < end)
		reader_poll(&r, w->peer, 1);
	ck_assert_int_eq(evchat_close_when_done(w->chat), 0);

	/* Everything accepted before the close arrives; nothing after. */
	while (!r.eof && now_ms() < end)
		reader_poll(&r, w->peer, 100);
	ck_assert_msg(r.eof, "no EOF after the close");
	/* The channel reads no more: a feeder stuck in send() gets EPIPE. */
	shutdown(w->peer, SHUT_WR);
	for (int i = 0; i < NPUSHERS; i++)
		ck_assert_int_eq(pthread_join(threads[i], NULL), 0);
	ck_assert_int_eq(pthread_join(feed_thread, NULL), 0);
	check_thread_outcomes(w);
	unsigned long refused_threads = 0;
	for (int i = 0; i < NSTREAMS; i++) {
		unsigned long accepted = atomic_load(&w->accepted[i]);
		ck_assert_msg(r.got[i] == accepted,
		              "stream %d: %lu pushes accepted, %lu arrived", i,
		              accepted, r.got[i]);
		if (i < NPUSHERS && accepted < w->pushes)
			refused_threads++;
	}
	ck_assert_msg(refused_threads > 0,
	              "the close came after every push (%lu pushes)",
	              atomic_load(&w->total_pushed));
	end = now_ms() + 5000;
	while (!(atomic_load(&w->events) & EVCHAT_EVENT_CLOSED) &&
	       now_ms() < end)
		usleep(1000);
	ck_assert_int_eq(atomic_load(&w->events), EVCHAT_EVENT_CLOSED);
	ASSERT_FAILS(evchat_push(w->chat, LIT("late\n")), EPIPE);
	printf("threads: closed after %lu of %lu pushes, %lu arrived\n",
	       atomic_load(&w->total_pushed), NPUSHERS * w->pushes, r.lines);
	world_free(w);
}
END_TEST

/* ---- calls from another thread that must leave the hooks to the loop ---- */

/* One channel whose loop runs on a thread of its own, as in a world, but
 * with hooks of the test's choosing, set before the loop starts. */
struct lone {
	struct event_base *base;
	struct bufferevent *bev;
	struct evchat *chat;
	evutil_socket_t peer;
	pthread_t loop;
};

/* The bufferevent is made with BEV_OPT_THREADSAFE if threadsafe. */
static struct lone *lone_new(int threadsafe)
{
	struct lone *l = calloc(1, sizeof(*l));
	ck_assert_ptr_nonnull(l);
	l->base = event_base_new();
	ck_assert_ptr_nonnull(l->base);
	evutil_socket_t fds[2];
	ck_assert_int_eq(evutil_socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	evutil_make_socket_nonblocking(fds[0]);
	l->peer = fds[1];
	l->bev = bufferevent_socket_new(l->base, fds[0],
	                                BEV_OPT_CLOSE_ON_FREE |
	                                    (threadsafe ? BEV_OPT_THREADSAFE
	                                                : 0));
	ck_assert_ptr_nonnull(l->bev);
	l->chat = evchat_new(l->bev, 0);
	ck_assert_ptr_nonnull(l->chat);
	return l;
}

static void *lone_loop(void *arg)
{
	struct lone *l = arg;
	event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static void lone_start(struct lone *l)
{
	ck_assert_int_eq(pthread_create(&l->loop, NULL, lone_loop, l), 0);
}

static void lone_free(struct lone *l)
{
	event_base_loopbreak(l->base);
	ck_assert_int_eq(pthread_join(l->loop, NULL), 0);
	evchat_free(l->chat);
	event_base_free(l->base);
	close(l->peer);
	free(l);
}

/* Waits up to ms for *flag to become nonzero. */
static int wait_for(atomic_int *flag, int ms)
{
	long long end = now_ms() + ms;
	while (!atomic_load(flag) && now_ms() < end)
		usleep(1000);
	return atomic_load(flag);
}

/* Producers that have nothing yet, so stay queued until discarded. */
struct waiting_producer {
	atomic_int asked;    /* more() ran */
	atomic_int released; /* times release() ran */
	pthread_t release_thread;
};

static int producer_not_yet(struct evchat *chat, struct evbuffer *out,
                            size_t want, void *arg)
{
	struct waiting_producer *p = arg;
	(void)chat, (void)out, (void)want;
	atomic_store(&p->asked, 1);
	return EVCHAT_AGAIN;
}

static void producer_release(void *arg)
{
	struct waiting_producer *p = arg;
	p->release_thread = pthread_self();
	atomic_fetch_add(&p->released, 1);
}

/* evchat_discard_buffers() from a thread other than the loop's drops
 * queued producers, and their release hooks run on the loop thread, as
 * everything such a call triggers (they once ran inside the call, on the
 * caller's thread). Two producers: the one asked already and the one
 * queued behind it. */
START_TEST(test_threads_discard_releases_on_loop)
{
	struct lone *l = lone_new(1);
	struct waiting_producer prod[2];
	memset(prod, 0, sizeof(prod));
	lone_start(l);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(evchat_push_producer(l->chat, producer_not_yet,
		                                      producer_release,
		                                      &prod[i]),
		                 0);
	ck_assert_msg(wait_for(&prod[0].asked, 5000),
	              "the first producer was never asked");
	evchat_discard_buffers(l->chat);
	for (int i = 0; i < 2; i++) {
		ck_assert_msg(wait_for(&prod[i].released, 5000),
		              "producer %d was never released", i);
		ck_assert_msg(pthread_equal(prod[i].release_thread, l->loop),
		              "producer %d was released on %s thread, not the "
		              "loop's",
		              i,
		              pthread_equal(prod[i].release_thread,
		                            pthread_self())
		                  ? "the discarding"
		                  : "another");
	}
	ck_assert_int_eq(atomic_load(&prod[1].asked), 0);
	/* Once each, and nothing left for the free to release. */
	usleep(50000);
	lone_free(l);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(atomic_load(&prod[i].released), 1);
}
END_TEST

/* What the hooks of a paused channel saw. The hooks run under the
 * bufferevent's lock, which the test takes to read `text`. */
struct pause_watch {
	atomic_int phase; /* 0 reading, 1 paused (pause returned), 2 resumed */
	atomic_int collected;
	atomic_int found;
	atomic_int hooks_while_paused; /* collect 1, found 2, event 4 */
	atomic_int events;
	char text[64]; /* what collect got, '|' at each found */
	size_t len;
};

static void watch_add(struct pause_watch *pw, const char *p, size_t n)
{
	for (size_t i = 0; i < n && pw->len + 1 < sizeof(pw->text); i++)
		pw->text[pw->len++] = p[i];
}

static void watch_collect(struct evchat *chat, struct evbuffer *data, void *arg)
{
	struct pause_watch *pw = arg;
	(void)chat;
	if (atomic_load(&pw->phase) == 1)
		atomic_fetch_or(&pw->hooks_while_paused, 1);
	char buf[64];
	size_t n = evbuffer_get_length(data);
	if (n > sizeof(buf))
		n = sizeof(buf);
	evbuffer_remove(data, buf, n);
	evbuffer_drain(data, evbuffer_get_length(data));
	watch_add(pw, buf, n);
	atomic_fetch_add(&pw->collected, 1);
}

static void watch_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct pause_watch *pw = arg;
	(void)chat, (void)frame;
	if (atomic_load(&pw->phase) == 1)
		atomic_fetch_or(&pw->hooks_while_paused, 2);
	watch_add(pw, LIT("|"));
	atomic_fetch_add(&pw->found, 1);
}

static void watch_event(struct evchat *chat, short events, void *arg)
{
	struct pause_watch *pw = arg;
	(void)chat;
	if (atomic_load(&pw->phase) == 1)
		atomic_fetch_or(&pw->hooks_while_paused, 4);
	atomic_fetch_or(&pw->events, events);
}

/* A read timeout that fires while another thread is inside
 * evchat_pause_input() waits for the bufferevent's lock; once it has it,
 * input is paused, and a paused channel has no read timeout: no hook runs
 * (it once reported the timeout after the pause returned, handing collect
 * the byte held back for matching). The lock is held from here across the
 * timeout, as the pause holds it, to make the race certain. After the
 * resume the held bytes and a new line come as frames. */
START_TEST(test_threads_timeout_during_pause)
{
	struct lone *l = lone_new(1);
	struct pause_watch pw;
	memset(&pw, 0, sizeof(pw));
	evchat_setcb(l->chat, watch_collect, watch_found, watch_event, &pw);
	/* "\r" of "ab\r" is held back, waiting to see if "\n" follows. */
	ck_assert_int_eq(evchat_set_terminator(l->chat, LIT("\r\n")), 0);
	struct timeval rt = { 0, 100 * 1000 };
	ck_assert_int_eq(evchat_set_timeouts(l->chat, &rt, NULL), 0);
	lone_start(l);
	write_all(l->peer, LIT("ab\r"));
	ck_assert_msg(wait_for(&pw.collected, 5000),
	              "\"ab\" was not collected");

	/* Held three times the read timeout: the timeout fires meanwhile
	 * and waits for the lock. */
	bufferevent_lock(l->bev);
	usleep(300 * 1000);
	ck_assert_int_eq(evchat_pause_input(l->chat), 0);
	atomic_store(&pw.phase, 1);
	bufferevent_unlock(l->bev);

	usleep(300 * 1000);
	ck_assert_msg(atomic_load(&pw.hooks_while_paused) == 0,
	              "hooks ran after the pause returned (collect 1, found "
	              "2, event 4): 0x%x, events 0x%x",
	              (unsigned)atomic_load(&pw.hooks_while_paused),
	              (unsigned)atomic_load(&pw.events));
	ck_assert_int_eq(evchat_input_paused(l->chat), 1);

	/* Resumed, input works: the held "\r" meets its "\n", and a new line
	 * follows. */
	atomic_store(&pw.phase, 2);
	ck_assert_int_eq(evchat_resume_input(l->chat), 0);
	write_all(l->peer, LIT("\nnext\r\n"));
	long long end = now_ms() + 5000;
	while (atomic_load(&pw.found) < 2 && now_ms() < end)
		usleep(1000);
	bufferevent_lock(l->bev);
	char text[sizeof(pw.text) + 1];
	memcpy(text, pw.text, pw.len);
	text[pw.len] = '\0';
	bufferevent_unlock(l->bev);
	ck_assert_str_eq(text, "ab|next|");
	ck_assert_int_eq(atomic_load(&pw.events), 0);
	lone_free(l);
}
END_TEST

#ifdef EVCHAT_TEST_TLS
/* ---- evchat_start_tls() on a thread-safe bufferevent ---- */

/* The loop thread switches to TLS inside its found hook, holding the
 * bufferevent's lock (the TLS layer shares it); another thread then
 * pushes into the channel while the peer talks TLS from a third side.
 * Were a hold of the lock left behind by the switch, that push would
 * wait for good. _i 1: a bufferevent without a lock, in a program with
 * threads (no push from elsewhere then): the TLS layer must not get a
 * lock the holds on the way never took (lock debugging aborts). */
struct tls_lone {
	struct tls_contexts *tls;
	atomic_int started; /* 1: evchat_start_tls() returned 0; -1 failed */
};

static void tls_lone_found(struct evchat *chat, struct evbuffer *frame,
                           void *arg)
{
	struct tls_lone *t = arg;
	size_t len = evbuffer_get_length(frame);
	const char *line = (const char *)evbuffer_pullup(frame, -1);
	if (len == 8 && memcmp(line, "STARTTLS", 8) == 0) {
		ck_assert_int_eq(evchat_push(chat, LIT("220 go ahead\r\n")), 0);
		SSL *ssl = tls_new(t->tls->server);
		int r = evchat_start_tls(chat, ssl, EVCHAT_TLS_ACCEPT);
		if (r < 0)
			SSL_free(ssl);
		atomic_store(&t->started, r == 0 ? 1 : -1);
		return;
	}
	ck_assert_int_eq(evchat_push(chat, LIT("250 ")), 0);
	ck_assert_int_eq(evchat_push_buffer(chat, frame), 0);
	ck_assert_int_eq(evchat_push(chat, LIT("\r\n")), 0);
}

/* Reads from ssl until want was seen in what came, or the stream ends. */
static int ssl_read_until(SSL *ssl, struct evbuffer *got, const char *want)
{
	char buf[4096];
	while (evbuffer_search(got, want, strlen(want), NULL).pos < 0) {
		int n = SSL_read(ssl, buf, sizeof(buf));
		if (n <= 0)
			return 0;
		evbuffer_add(got, buf, (size_t)n);
	}
	return 1;
}

START_TEST(test_threads_starttls)
{
	struct tls_lone t = { .tls = tls_contexts_new() };
	struct lone *l = lone_new(_i == 0);
	evchat_setcb(l->chat, NULL, tls_lone_found, NULL, &t);
	ck_assert_int_eq(evchat_set_terminator_line(l->chat,
	                                            EVCHAT_EOL_CRLF_STRICT),
	                 0);
	lone_start(l);

	/* The peer: blocking, in the clear, then TLS with OpenSSL itself. */
	int fl = fcntl(l->peer, F_GETFL);
	ck_assert_int_eq(fcntl(l->peer, F_SETFL, fl & ~O_NONBLOCK), 0);
	struct timeval limit = { 10, 0 };
	ck_assert_int_eq(setsockopt(l->peer, SOL_SOCKET, SO_RCVTIMEO, &limit,
	                            sizeof(limit)),
	                 0);
	write_all(l->peer, LIT("STARTTLS\r\n"));
	char clear[64];
	size_t have = 0;
	while (have < 14) {
		ssize_t n = read(l->peer, clear + have, 14 - have);
		ck_assert_int_gt(n, 0);
		have += (size_t)n;
	}
	ck_assert(memcmp(clear, "220 go ahead\r\n", 14) == 0);
	ck_assert_int_eq(atomic_load(&t.started), 1);
	SSL *ssl = tls_new(t.tls->client);
	ck_assert_int_eq(SSL_set_fd(ssl, l->peer), 1);
	ck_assert_int_eq(SSL_connect(ssl), 1);

	struct evbuffer *got = evbuffer_new();
	if (_i == 0) {
		/* This thread is not the loop's. */
		ck_assert_int_eq(evchat_push(l->chat, LIT("from a thread\r\n")),
		                 0);
		ck_assert(ssl_read_until(ssl, got, "from a thread\r\n"));
	}
	ck_assert_int_eq(SSL_write(ssl, "PING\r\n", 6), 6);
	ck_assert(ssl_read_until(ssl, got, "250 PING\r\n"));

	SSL_free(ssl);
	evbuffer_free(got);
	lone_free(l);
	tls_contexts_free(t.tls);
}
END_TEST
#endif

static Suite *threads_suite(void)
{
	Suite *s = suite_create("threads");
	TCase *tc = tcase_create("push");
	/* Generous: ThreadSanitizer slows everything down many times. */
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_threads_push_while_loop_runs, 0, 2);
	tcase_add_loop_test(tc, test_threads_close_while_pushing, 0, 2);
	suite_add_tcase(s, tc);
	tc = tcase_create("loop-thread");
	tcase_add_test(tc, test_threads_discard_releases_on_loop);
	tcase_add_test(tc, test_threads_timeout_during_pause);
#ifdef EVCHAT_TEST_TLS
	tcase_add_loop_test(tc, test_threads_starttls, 0, 2);
#endif
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	/* Before any event base or bufferevent exists. */
	if (evthread_use_pthreads() < 0) {
		fprintf(stderr, "evthread_use_pthreads failed\n");
		return EXIT_FAILURE;
	}
	/* Every lock taken and given back by the thread that holds it,
	 * checked by libevent itself (it aborts otherwise). */
	evthread_enable_lock_debugging();
	SRunner *runner = srunner_create(threads_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
