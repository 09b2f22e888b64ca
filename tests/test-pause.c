/*
 * Pausing input: evchat_pause_input() stops collect and found at once,
 * also for frames already read and buffered, and stops reading from the
 * socket, so a paused channel holds a bounded amount of input however much
 * the peer sends. evchat_resume_input() goes on from the event loop, in
 * order, never from inside the call. An EOF that comes meanwhile waits for
 * the frames before it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#ifdef __GLIBC__
#endif

#include <event2/buffer.h>
#include <event2/event.h>

#include "helpers.h"
#include "suites.h"

/* ------------------------------------------------------------------ */
/* What the tests' found hooks do */

struct pauser {
	struct harness *h;
	size_t pause_at;     /* pause in the found of this frame (1-based) */
	int pause_every;     /* ... or in every found */
	int resume_in_found; /* resume right after pausing */
	int free_in_found;   /* free the channel after pausing */
	int close_in_found;  /* push "bye\n" and close after pausing */
	int depth;           /* found calls on the stack */
	size_t npauses;
	/* A timer that resumes, armed by found after each pause. */
	struct event *resume_timer;
	size_t frames_in_resume; /* frames delivered inside resume calls */
	/* Count frames: the found hook sets the next count from here. */
	const ev_uint64_t *counts;
	size_t ncounts;
};

static void pauser_found(struct evchat *chat, struct recorder *rec)
{
	struct pauser *p = rec->user;
	/* Never re-entered: a resume inside a hook must not recurse. */
	ck_assert_msg(p->depth == 0, "%s: found re-entered", test_ctx);
	p->depth++;
	if (p->counts != NULL && rec->nframes < p->ncounts)
		ck_assert_int_eq(
		    evchat_set_terminator_count(chat, p->counts[rec->nframes]),
		    0);
	if (p->pause_every || rec->nframes == p->pause_at) {
		ck_assert_int_eq(evchat_pause_input(chat), 0);
		ck_assert_int_eq(evchat_input_paused(chat), 1);
		p->npauses++;
		if (p->resume_in_found) {
			size_t before = rec->nframes;
			ck_assert_int_eq(evchat_resume_input(chat), 0);
			ck_assert_int_eq(evchat_input_paused(chat), 0);
			ck_assert_uint_eq(rec->nframes, before);
		}
		if (p->resume_timer != NULL) {
			struct timeval now = { 0, 0 };
			evtimer_add(p->resume_timer, &now);
		}
		if (p->close_in_found) {
			ck_assert_int_eq(evchat_push(chat, LIT("bye\n")), 0);
			ck_assert_int_eq(evchat_close_when_done(chat), 0);
		}
		if (p->free_in_found) {
			evchat_free(chat);
			p->h->chat = NULL;
		}
	}
	p->depth--;
}

static void resume_from_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pauser *p = arg;
	if (p->h->chat == NULL)
		return;
	size_t before = p->h->rec.nframes;
	ck_assert_int_eq(evchat_resume_input(p->h->chat), 0);
	p->frames_in_resume += p->h->rec.nframes - before;
}

static void pauser_init(struct pauser *p, struct harness *h)
{
	memset(p, 0, sizeof(*p));
	p->h = h;
	h->rec.user = p;
	h->rec.on_found = pauser_found;
}

/* Resumes from outside any hook: nothing is delivered inside the call. */
static void resume_outside(struct harness *h)
{
	size_t frames = h->rec.nframes, events = h->rec.nevents;
	size_t calls = h->rec.ncollect_calls;
	ck_assert_int_eq(evchat_input_paused(h->chat), 1);
	ck_assert_int_eq(evchat_resume_input(h->chat), 0);
	ck_assert_int_eq(evchat_input_paused(h->chat), 0);
	ck_assert_uint_eq(h->rec.nframes, frames);
	ck_assert_uint_eq(h->rec.nevents, events);
	ck_assert_uint_eq(h->rec.ncollect_calls, calls);
}

/* n frames "frame-0000" ... in one buffer (caller frees), each ending in
 * "\n". */
static char *numbered_frames(size_t n, size_t *len)
{
	char *data = malloc(n * 12 + 1);
	ck_assert_ptr_nonnull(data);
	size_t off = 0;
	for (size_t i = 0; i < n; i++)
		off += (size_t)sprintf(data + off, "frame-%04zu\n", i);
	*len = off;
	return data;
}

static void expect_numbered(struct harness *h, size_t n)
{
	ck_assert_msg(h->rec.nframes == n, "%s: %zu frames, want %zu", test_ctx,
	              h->rec.nframes, n);
	for (size_t i = 0; i < n; i++) {
		char want[32];
		snprintf(want, sizeof(want), "frame-%04zu", i);
		char *got = recorder_frame(&h->rec, i);
		ck_assert_msg(strcmp(got, want) == 0,
		              "%s: frame %zu is \"%s\", want \"%s\"", test_ctx,
		              i, got, want);
		free(got);
	}
}

/* The resume tests all send n numbered frames and expect each, in order. */
static void send_numbered_expect_all(struct harness *h, size_t n)
{
	size_t len;
	char *data = numbered_frames(n, &len);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	write_all(h->c.peer, data, len);
	run_until_frames(h, n, 3000);
	expect_numbered(h, n);
	free(data);
}

/* ------------------------------------------------------------------ */
/* Pause stops delivery at once */

/* _i: mode x (socketpair, TCP). A read holding 1,000 frames delivers
 * none after the pause the first found makes; resume delivers the rest
 * in order. */
START_TEST(test_pause_in_first_found)
{
	enum { N = 1000 };
	int collect = _i % 2, tcp = _i / 2;
	size_t len;
	char *data = numbered_frames(N, &len);
	note("%s mode, %s", collect ? "collect" : "frame",
	     tcp ? "TCP" : "socketpair");
	struct harness *h = harness_new(collect, tcp);
	struct pauser p;
	pauser_init(&p, h);
	p.pause_at = 1;
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	write_all(h->c.peer, data, len);
	run_until_frames(h, 1, 2000);
	run_for(h->base, 50);
	ck_assert_uint_eq(h->rec.nframes, 1);
	ck_assert_int_eq(evchat_input_paused(h->chat), 1);
	ck_assert_uint_eq(h->rec.nevents, 0);
	if (collect)
		ck_assert_uint_eq(h->rec.ncollect_calls, 1);
	else
		ck_assert_uint_eq(pending_len(h), 0);

	resume_outside(h);
	run_until_frames(h, N, 3000);
	expect_numbered(h, N);
	ck_assert_uint_eq(h->rec.nevents, 0);
	ck_assert_uint_eq(p.npauses, 1);
	free(data);
	harness_free(h);
}
END_TEST

/* _i: mode. Pause and resume in every found: no found ever runs inside
 * another, and the frames come in order. */
START_TEST(test_resume_in_same_found)
{
	enum { N = 1000 };
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 0);
	struct pauser p;
	pauser_init(&p, h);
	p.pause_every = 1;
	p.resume_in_found = 1;
	send_numbered_expect_all(h, N);
	ck_assert_uint_eq(p.npauses, N);
	ck_assert_int_eq(evchat_input_paused(h->chat), 0);
	harness_free(h);
}
END_TEST

/* _i: mode. Pause in every found and resume from a timer: one frame per
 * resume, none of them inside the resume call. */
START_TEST(test_resume_from_timer)
{
	enum { N = 200 };
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 0);
	struct pauser p;
	pauser_init(&p, h);
	p.pause_every = 1;
	p.resume_timer = evtimer_new(h->base, resume_from_timer, &p);
	ck_assert_ptr_nonnull(p.resume_timer);
	send_numbered_expect_all(h, N);
	ck_assert_uint_eq(p.npauses, N);
	ck_assert_uint_eq(p.frames_in_resume, 0);
	event_free(p.resume_timer);
	harness_free(h);
}
END_TEST

/* Collect mode, with the pause made by collect itself. */
struct collect_pauser {
	struct harness *h;
	size_t pause_on_call; /* 1-based */
};

static void pausing_collect(struct evchat *chat, struct evbuffer *data,
                            void *arg)
{
	struct collect_pauser *c = arg;
	recorder_collect_cb(chat, data, &c->h->rec);
	if (c->h->rec.ncollect_calls == c->pause_on_call)
		ck_assert_int_eq(evchat_pause_input(chat), 0);
}

static void plain_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct collect_pauser *c = arg;
	recorder_found_cb(chat, frame, &c->h->rec);
}

static void plain_event(struct evchat *chat, short events, void *arg)
{
	struct collect_pauser *c = arg;
	recorder_event_cb(chat, events, &c->h->rec);
}

/* _i: which collect call pauses (1 or 2). Collect stops at once: not
 * even the found that would end the frame it was given runs. */
START_TEST(test_pause_from_collect)
{
	note("pause in collect call %d", _i + 1);
	struct harness *h = harness_new(1, 0);
	struct collect_pauser c = { h, (size_t)_i + 1 };
	evchat_setcb(h->chat, pausing_collect, plain_found, plain_event, &c);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\r\n")), 0);
	write_all(h->c.peer, LIT("abc\r\ndef\r\nghi"));
	run_for(h->base, 50);
	ck_assert_uint_eq(h->rec.ncollect_calls, (size_t)_i + 1);
	ck_assert_uint_eq(h->rec.nframes, (size_t)_i);
	if (_i == 0)
		expect_bytes("collected", h->rec.collecting, LIT("abc"));
	else
		EXPECT_FRAMES(&h->rec, "abc");

	resume_outside(h);
	run_pending(h->base);
	EXPECT_FRAMES(&h->rec, "abc", "def");
	expect_bytes("collected", h->rec.collecting, LIT("ghi"));
	ck_assert_uint_eq(h->rec.nevents, 0);
	harness_free(h);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Bounded input */

enum { LINE = 1024, NLINES = 8192 }; /* 8 MiB in all */

static void fill_lines(char *p, size_t at, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t k = at + i;
		p[i] = k % LINE == LINE - 1 ? '\n'
		                            : (char)('A' + (k / LINE + k) % 26);
	}
}

/* Sends from *sent on, without blocking, until the socket takes no more
 * for `idle_ms` while the loop runs, or all was sent. */
static void send_while_taken(struct harness *h, size_t *sent, size_t total,
                             int idle_ms)
{
	char chunk[65536];
	long long idle_since = now_ms();
	while (*sent < total && now_ms() - idle_since < idle_ms) {
		size_t n = total - *sent < sizeof(chunk) ? total - *sent
		                                         : sizeof(chunk);
		fill_lines(chunk, *sent, n);
		ssize_t w = send(h->c.peer, chunk, n, MSG_NOSIGNAL);
		if (w > 0) {
			*sent += (size_t)w;
			idle_since = now_ms();
			continue;
		}
		ck_assert_msg(w < 0 && (errno == EAGAIN ||
		                        errno == EWOULDBLOCK || errno == EINTR),
		              "send: %s", strerror(errno));
		run_tick(h->base, 2000);
	}
}

/* How many of the `sent` bytes the channel has taken from the socket:
 * what the peer sent, less what the kernel still holds at either end
 * (the channel keeps what it read in buffers of its own, so this is the
 * measure of input held in memory, wherever the channel keeps it). */
static size_t read_from_socket(struct harness *h, size_t sent)
{
	int unsent = 0, unread = 0;
	evutil_socket_t fd = bufferevent_getfd(evchat_get_bufferevent(h->chat));
	ck_assert_int_eq(ioctl(h->c.peer, TIOCOUTQ, &unsent), 0);
	ck_assert_int_eq(ioctl(fd, FIONREAD, &unread), 0);
	ck_assert_uint_le((size_t)unsent + (size_t)unread, sent);
	return sent - (size_t)unsent - (size_t)unread;
}

/* _i: mode. While paused, the peer sends 8 MiB over TCP: the channel
 * reads no more than a couple of reads' worth, so the peer's writes
 * block; after the resume every byte arrives, in order. */
START_TEST(test_paused_input_bounded)
{
	size_t total = (size_t)LINE * NLINES, sent = 0;
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 1);
	struct pauser p;
	pauser_init(&p, h);
	p.pause_at = 1;
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	struct bufferevent *bev = evchat_get_bufferevent(h->chat);
	size_t heap_before = heap_in_use();

	send_while_taken(h, &sent, total, 200);
	ck_assert_uint_eq(h->rec.nframes, 1);
	ck_assert_int_eq(evchat_input_paused(h->chat), 1);
	ck_assert_msg(sent < total,
	              "the peer could send all %zu bytes to a "
	              "paused channel",
	              sent);
	size_t taken = read_from_socket(h, sent);
	ck_assert_msg(taken <= 2 * EVCHAT_DEFAULT_IN_BUFFER_SIZE,
	              "%zu of %zu bytes read while paused", taken, sent);
	ck_assert_uint_le(evbuffer_get_length(bufferevent_get_input(bev)),
	                  2 * EVCHAT_DEFAULT_IN_BUFFER_SIZE);
	ck_assert_uint_le(pending_len(h), LINE);
	size_t heap_paused = heap_in_use();
	ck_assert_msg(heap_paused <
	                  heap_before + 4 * EVCHAT_DEFAULT_IN_BUFFER_SIZE,
	              "the heap grew by %zu bytes while paused",
	              heap_paused - heap_before);
	/* Still so a while later: nothing more is read. */
	run_for(h->base, 50);
	ck_assert_uint_eq(h->rec.nframes, 1);
	ck_assert_uint_eq(read_from_socket(h, sent), taken);

	resume_outside(h);
	send_while_taken(h, &sent, total, 3000);
	ck_assert_uint_eq(sent, total);
	run_until_frames(h, NLINES, 5000);
	ck_assert_uint_eq(h->rec.nframes, NLINES);
	ck_assert_uint_eq(evbuffer_get_length(h->rec.frames), total - NLINES);
	/* Every byte, in order: the frames are the lines without "\n". */
	const char *got = (const char *)evbuffer_pullup(h->rec.frames, -1);
	char line[LINE];
	for (size_t i = 0; i < NLINES; i++) {
		ck_assert_uint_eq(h->rec.frame_len[i], LINE - 1);
		fill_lines(line, i * LINE, LINE);
		ck_assert_msg(memcmp(got + i * (LINE - 1), line, LINE - 1) == 0,
		              "%s: line %zu differs", test_ctx, i);
	}
	ck_assert_uint_eq(h->rec.nevents, 0);
	harness_free(h);
}
END_TEST

/* ------------------------------------------------------------------ */
/* End of stream while paused */

/* _i: mode x (socketpair, TCP) x (pause in the first found, or in every
 * found). The peer sends three frames and a partial one and closes. */
START_TEST(test_eof_waits_for_resume)
{
	int collect = _i % 2, tcp = _i / 2 % 2, every = _i / 4;
	note("%s mode, %s, pause in %s found", collect ? "collect" : "frame",
	     tcp ? "TCP" : "socketpair", every ? "every" : "the first");
	struct harness *h = harness_new(collect, tcp);
	struct pauser p;
	pauser_init(&p, h);
	p.pause_at = 1;
	p.pause_every = every;
	ck_assert_int_eq(evchat_set_terminator_line(h->chat, EVCHAT_EOL_CRLF),
	                 0);
	write_all(h->c.peer, LIT("a\r\nb\nc\r\npartial\r"));
	conn_close_peer(&h->c);
	run_until_frames(h, 1, 2000);
	run_for(h->base, 50);
	EXPECT_FRAMES(&h->rec, "a");
	ck_assert_uint_eq(h->rec.nevents, 0);

	if (every) {
		/* One frame per resume, and the EOF only after a resume
		 * that finds nothing left to frame. */
		for (size_t k = 2; k <= 3; k++) {
			resume_outside(h);
			run_for(h->base, 20);
			ck_assert_uint_eq(h->rec.nframes, k);
			ck_assert_uint_eq(h->rec.nevents, 0);
		}
	}
	resume_outside(h);
	run_until_event(h, 2000);
	EXPECT_FRAMES(&h->rec, "a", "b", "c");
	expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
	ck_assert_uint_eq(h->frames_at_event, 3);
	/* Nothing lost, not even the "\r" that might have started "\r\n". */
	expect_bytes("unfinished at EOF", h->unfinished_at_event,
	             LIT("partial\r"));
	if (!collect)
		expect_bytes("pending", evchat_get_pending(h->chat),
		             LIT("partial\r"));
	run_for(h->base, 20);
	expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
	/* A pause and resume after the end report nothing again. */
	ck_assert_int_eq(evchat_pause_input(h->chat), 0);
	ck_assert_int_eq(evchat_resume_input(h->chat), 0);
	run_for(h->base, 20);
	expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
	EXPECT_FRAMES(&h->rec, "a", "b", "c");
	harness_free(h);
}
END_TEST

/* _i: mode. Paused before anything arrives: neither the frames nor the
 * EOF come until the resume. */
START_TEST(test_paused_before_data_and_eof)
{
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	ck_assert_int_eq(evchat_pause_input(h->chat), 0);
	/* Twice is the same as once. */
	ck_assert_int_eq(evchat_pause_input(h->chat), 0);
	write_all(h->c.peer, LIT("one\ntwo\nrest"));
	conn_close_peer(&h->c);
	run_for(h->base, 50);
	ck_assert_uint_eq(h->rec.nframes, 0);
	ck_assert_uint_eq(h->rec.ncollect_calls, 0);
	ck_assert_uint_eq(h->rec.nevents, 0);
	resume_outside(h);
	run_until_event(h, 2000);
	EXPECT_FRAMES(&h->rec, "one", "two");
	expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
	expect_bytes("unfinished at EOF", h->unfinished_at_event, LIT("rest"));
	harness_free(h);
}
END_TEST

/* Hooks that record into the recorder passed as arg. */
static void rec_collect(struct evchat *chat, struct evbuffer *data, void *arg)
{
	recorder_collect_cb(chat, data, arg);
}

static void rec_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	recorder_found_cb(chat, frame, arg);
}

static void rec_event(struct evchat *chat, short events, void *arg)
{
	recorder_event_cb(chat, events, arg);
}

/* _i: mode. A bufferevent pair tells its end of stream at once, without
 * a read, so the EOF reaches the channel while it is paused with frames
 * still buffered: it must wait for them, and they for the resume. */
START_TEST(test_eof_event_while_paused)
{
	int collect = _i;
	note("bufferevent pair, %s mode", collect ? "collect" : "frame");
	struct event_base *base = event_base_new();
	struct bufferevent *pair[2];
	ck_assert_ptr_nonnull(base);
	ck_assert_int_eq(bufferevent_pair_new(base, BEV_OPT_CLOSE_ON_FREE,
	                                      pair),
	                 0);
	struct evchat *chat = evchat_new(pair[0], 0);
	ck_assert_ptr_nonnull(chat);
	struct recorder rec;
	recorder_init(&rec);
	struct pauser p;
	memset(&p, 0, sizeof(p));
	p.pause_at = 1;
	rec.user = &p;
	rec.on_found = pauser_found;
	evchat_setcb(chat, collect ? rec_collect : NULL, rec_found, rec_event,
	             &rec);
	ck_assert_int_eq(evchat_set_terminator(chat, LIT("\n")), 0);

	ck_assert_int_eq(bufferevent_write(pair[1], LIT("a\nb\nc\nrest")), 0);
	run_pending(base);
	EXPECT_FRAMES(&rec, "a");
	ck_assert_int_eq(bufferevent_flush(pair[1], EV_WRITE, BEV_FINISHED), 0);
	run_pending(base);
	EXPECT_FRAMES(&rec, "a");
	ck_assert_uint_eq(rec.nevents, 0);

	ck_assert_int_eq(evchat_resume_input(chat), 0);
	ck_assert_uint_eq(rec.nframes, 1);
	ck_assert_uint_eq(rec.nevents, 0);
	run_pending(base);
	EXPECT_FRAMES(&rec, "a", "b", "c");
	expect_one_event(&rec, EVCHAT_EVENT_EOF);
	if (collect) {
		expect_bytes("collected", rec.collecting, LIT("rest"));
	} else {
		ck_assert_uint_eq(rec.pending_at_event, 4);
		expect_bytes("pending", evchat_get_pending(chat), LIT("rest"));
	}
	evchat_free(chat);
	bufferevent_free(pair[1]);
	event_base_free(base);
	recorder_clear(&rec);
}
END_TEST

/* _i: mode. An empty frame that a count of 0 set outside any hook would
 * deliver from the loop waits, too, when input is paused right after. */
START_TEST(test_pause_holds_count_zero)
{
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 0);
	ck_assert_int_eq(evchat_set_terminator_count(h->chat, 0), 0);
	ck_assert_int_eq(evchat_pause_input(h->chat), 0);
	run_for(h->base, 20);
	ck_assert_uint_eq(h->rec.nframes, 0);
	resume_outside(h);
	run_pending(h->base);
	EXPECT_FRAMES(&h->rec, "");
	harness_free(h);
}
END_TEST

struct discard_pauser {
	struct recorder rec;
	int paused_on_discard;
};

static void pause_on_discard(struct evchat *chat, short events, void *arg)
{
	struct discard_pauser *d = arg;
	recorder_event_cb(chat, events, &d->rec);
	if (events & EVCHAT_EVENT_FRAME_DISCARDED) {
		ck_assert_uint_eq(evchat_get_discarded(chat), 7);
		ck_assert_int_eq(evchat_pause_input(chat), 0);
		d->paused_on_discard = 1;
	}
}

static void dp_collect(struct evchat *chat, struct evbuffer *data, void *arg)
{
	struct discard_pauser *d = arg;
	recorder_collect_cb(chat, data, &d->rec);
}

static void dp_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct discard_pauser *d = arg;
	recorder_found_cb(chat, frame, &d->rec);
}

/* _i: mode. The event hook that reports a skipped frame may pause too:
 * the frames after it wait for the resume. */
START_TEST(test_pause_from_discard_event)
{
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 0);
	struct discard_pauser *d = calloc(1, sizeof(*d));
	ck_assert_ptr_nonnull(d);
	recorder_init(&d->rec);
	evchat_setcb(h->chat, _i ? dp_collect : NULL, dp_found,
	             pause_on_discard, d);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	ck_assert_int_eq(evchat_set_frame_limit(h->chat, 3,
	                                        EVCHAT_LIMIT_DISCARD),
	                 0);
	write_all(h->c.peer, LIT("ok\ntoolong\na\nb\n"));
	run_for(h->base, 30);
	EXPECT_FRAMES(&d->rec, "ok");
	ck_assert_int_eq(d->paused_on_discard, 1);
	ck_assert_uint_eq(d->rec.nevents, 1);
	ck_assert_int_eq(evchat_resume_input(h->chat), 0);
	ck_assert_uint_eq(d->rec.nframes, 1);
	run_pending(h->base);
	EXPECT_FRAMES(&d->rec, "ok", "a", "b");
	ck_assert_uint_eq(d->rec.nevents, 1);
	harness_free(h);
	recorder_clear(&d->rec);
	free(d);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Every kind of terminator */

enum pkind { P_STRING, P_CRLF, P_COUNT, P_LENGTH, P_SPLIT, NPKINDS };

static const char *const pkind_names[NPKINDS] = {
	"string", "line CRLF", "count", "length field", "split pieces",
};

/* The frames each kind gives for its input, pause or no pause. */
static const struct {
	const char *input;
	size_t len;
	const char *frames[6];
} pkinds[NPKINDS] = {
	[P_STRING] = { LIT("ab<>c<><>d<>"), { "ab", "c", "", "d" } },
	[P_CRLF] = { LIT("one\r\ntwo\n\r\nthr\ree\n"),
	             { "one", "two", "", "thr\ree" } },
	[P_COUNT] = { LIT("abcdefghijkl"), { "abc", "", "d", "efghijkl" } },
	[P_LENGTH] = { LIT("\0\3abc\0\0\0\1d\0\10efghijkl"),
	               { "abc", "", "d", "efghijkl" } },
	[P_SPLIT] = { LIT("0123456789abcd\nxy\n"),
	              { "0123", "4567", "89ab", "cd", "xy" } },
};
static const ev_uint64_t pcounts[] = { 3, 0, 1, 8 };

static size_t nframes_of(enum pkind k)
{
	size_t n = 0;
	while (n < 6 && pkinds[k].frames[n] != NULL)
		n++;
	return n;
}

static void set_pkind(struct harness *h, struct pauser *p, enum pkind k)
{
	static const struct evchat_length_field len16 = { 0, 2, 0, 0, 2 };
	switch (k) {
	case P_STRING:
		ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("<>")), 0);
		break;
	case P_CRLF:
		ck_assert_int_eq(evchat_set_terminator_line(h->chat,
		                                            EVCHAT_EOL_CRLF),
		                 0);
		break;
	case P_COUNT:
		p->counts = pcounts;
		p->ncounts = 4;
		ck_assert_int_eq(evchat_set_terminator_count(h->chat,
		                                             pcounts[0]),
		                 0);
		break;
	case P_LENGTH:
		ck_assert_int_eq(evchat_set_terminator_length(h->chat, &len16),
		                 0);
		break;
	default:
		ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
		ck_assert_int_eq(evchat_set_frame_limit(h->chat, 4,
		                                        EVCHAT_LIMIT_SPLIT),
		                 0);
		break;
	}
}

static void expect_pkind_frames(struct harness *h, enum pkind k, size_t n)
{
	struct span want[6];
	for (size_t i = 0; i < n; i++) {
		want[i].p = pkinds[k].frames[i];
		want[i].len = strlen(pkinds[k].frames[i]);
	}
	expect_frames(&h->rec, want, n);
}

/* _i: kind x mode x (one write, 1-byte writes). Pause in every found,
 * resume from outside: each resume gives exactly one frame (or piece),
 * whatever the terminator, and they add up to the frames without pauses. */
START_TEST(test_pause_every_kind)
{
	enum pkind k = (enum pkind)(_i / 4);
	int collect = _i % 2, bytewise = _i / 2 % 2;
	size_t n = nframes_of(k);
	note("%s, %s mode, %s", pkind_names[k], collect ? "collect" : "frame",
	     bytewise ? "1-byte writes" : "one write");
	struct harness *h = harness_new(collect, 0);
	struct pauser p;
	pauser_init(&p, h);
	p.pause_every = 1;
	set_pkind(h, &p, k);
	if (bytewise) {
		/* Each byte read as it comes; whenever a found paused, one
		 * resume gives at most one more frame. */
		for (size_t i = 0; i < pkinds[k].len; i++) {
			write_all(h->c.peer, pkinds[k].input + i, 1);
			run_pending(h->base);
			while (evchat_input_paused(h->chat)) {
				size_t before = h->rec.nframes;
				run_pending(h->base);
				ck_assert_uint_eq(h->rec.nframes, before);
				resume_outside(h);
				run_pending(h->base);
				ck_assert_uint_le(h->rec.nframes, before + 1);
			}
		}
		expect_pkind_frames(h, k, n);
	} else {
		write_all(h->c.peer, pkinds[k].input, pkinds[k].len);
		run_pending(h->base);
		ck_assert_uint_eq(h->rec.nframes, 1);
		for (size_t i = 1; i < n; i++) {
			run_for(h->base, 5);
			expect_pkind_frames(h, k, i);
			resume_outside(h);
			run_pending(h->base);
			expect_pkind_frames(h, k, i + 1);
		}
	}
	ck_assert_uint_eq(p.npauses, n);
	ck_assert_uint_eq(h->rec.nevents, 0);
	ck_assert_uint_eq(evbuffer_get_length(unfinished(h)), 0);
	harness_free(h);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Pause with close and free */

/* The lifetime tests all start with three frames sent, pausing at the first. */
static struct harness *paused_at_first_of_three(int collect, struct pauser *p)
{
	struct harness *h = harness_new(collect, 0);
	pauser_init(p, h);
	p->pause_at = 1;
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	write_all(h->c.peer, LIT("a\nb\nc\n"));
	return h;
}

/* _i: mode. A found that pauses, replies and closes: the reply is sent
 * and the close finishes, paused or not; no frame after it. */
START_TEST(test_pause_then_close_in_found)
{
	note("%s mode", _i ? "collect" : "frame");
	struct pauser p;
	struct harness *h = paused_at_first_of_three(_i, &p);
	p.close_in_found = 1;
	h->free_on_closed = 1;
	struct evbuffer *out = evbuffer_new();
	read_peer_to_eof(&h->c, out, 2000);
	expect_bytes("reply", out, LIT("bye\n"));
	EXPECT_FRAMES(&h->rec, "a");
	expect_one_event(&h->rec, EVCHAT_EVENT_CLOSED);
	ck_assert_ptr_null(h->chat);
	evbuffer_free(out);
	harness_free(h);
}
END_TEST

/* _i: mode. Paused with frames buffered, then closed from outside: the
 * resume delivers nothing, since no frame comes after a close. */
START_TEST(test_close_while_paused)
{
	note("%s mode", _i ? "collect" : "frame");
	struct pauser p;
	struct harness *h = paused_at_first_of_three(_i, &p);
	run_pending(h->base);
	EXPECT_FRAMES(&h->rec, "a");
	/* Output is not paused. */
	ck_assert_int_eq(evchat_push(h->chat, LIT("while paused\n")), 0);
	ck_assert_int_eq(evchat_close_when_done(h->chat), 0);
	ck_assert_int_eq(evchat_resume_input(h->chat), 0);
	run_until_event(h, 2000);
	run_for(h->base, 20);
	EXPECT_FRAMES(&h->rec, "a");
	expect_one_event(&h->rec, EVCHAT_EVENT_CLOSED);
	struct evbuffer *out = evbuffer_new();
	evbuffer_read(out, h->c.peer, 4096);
	expect_bytes("written", out, LIT("while paused\n"));
	evbuffer_free(out);
	harness_free(h);
}
END_TEST

/* _i: mode x (free right after the pause, or after pause and resume).
 * No hook runs after the free, however much input is buffered and
 * whatever resume scheduled. */
START_TEST(test_free_in_found_after_pause)
{
	int collect = _i % 2, resumed = _i / 2;
	note("%s mode, %s", collect ? "collect" : "frame",
	     resumed ? "paused and resumed" : "paused");
	struct pauser p;
	struct harness *h = paused_at_first_of_three(collect, &p);
	p.resume_in_found = resumed;
	p.free_in_found = 1;
	run_pending(h->base);
	ck_assert_ptr_null(h->chat);
	run_for(h->base, 30);
	EXPECT_FRAMES(&h->rec, "a");
	ck_assert_uint_eq(h->rec.nevents, 0);
	/* The socket was closed with the channel. */
	struct evbuffer *out = evbuffer_new();
	read_peer_to_eof(&h->c, out, 1000);
	evbuffer_free(out);
	harness_free(h);
}
END_TEST

/* _i: mode. Freed from outside while paused with frames buffered. */
START_TEST(test_free_while_paused)
{
	note("%s mode", _i ? "collect" : "frame");
	struct pauser p;
	struct harness *h = paused_at_first_of_three(_i, &p);
	run_pending(h->base);
	ck_assert_int_eq(evchat_resume_input(h->chat), 0);
	ck_assert_int_eq(evchat_pause_input(h->chat), 0);
	evchat_free(h->chat);
	h->chat = NULL;
	run_for(h->base, 20);
	EXPECT_FRAMES(&h->rec, "a");
	ck_assert_uint_eq(h->rec.nevents, 0);
	harness_free(h);
}
END_TEST

START_TEST(test_pause_arguments)
{
	struct harness *h = harness_new(0, 0);
	ASSERT_FAILS(evchat_pause_input(NULL), EINVAL);
	ASSERT_FAILS(evchat_resume_input(NULL), EINVAL);
	ck_assert_int_eq(evchat_input_paused(NULL), 0);
	ck_assert_int_eq(evchat_input_paused(h->chat), 0);
	/* Resuming what is not paused is harmless. */
	ck_assert_int_eq(evchat_resume_input(h->chat), 0);
	ck_assert_int_eq(evchat_input_paused(h->chat), 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	write_all(h->c.peer, LIT("x\n"));
	run_pending(h->base);
	EXPECT_FRAMES(&h->rec, "x");
	harness_free(h);
}
END_TEST

Suite *pause_suite(void)
{
	Suite *s = suite_create("pause");
	TCase *tc;

	tc = tcase_create("delivery");
	tcase_add_loop_test(tc, test_pause_in_first_found, 0, 4);
	tcase_add_loop_test(tc, test_resume_in_same_found, 0, 2);
	tcase_add_loop_test(tc, test_resume_from_timer, 0, 2);
	tcase_add_loop_test(tc, test_pause_from_collect, 0, 2);
	tcase_add_loop_test(tc, test_pause_every_kind, 0, 4 * NPKINDS);
	tcase_add_loop_test(tc, test_pause_holds_count_zero, 0, 2);
	tcase_add_loop_test(tc, test_pause_from_discard_event, 0, 2);
	tcase_add_test(tc, test_pause_arguments);
	suite_add_tcase(s, tc);

	tc = tcase_create("bounded");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_paused_input_bounded, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("eof");
	tcase_add_loop_test(tc, test_eof_waits_for_resume, 0, 8);
	tcase_add_loop_test(tc, test_paused_before_data_and_eof, 0, 2);
	tcase_add_loop_test(tc, test_eof_event_while_paused, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifetime");
	tcase_add_loop_test(tc, test_pause_then_close_in_found, 0, 2);
	tcase_add_loop_test(tc, test_close_while_paused, 0, 2);
	tcase_add_loop_test(tc, test_free_in_found_after_pause, 0, 4);
	tcase_add_loop_test(tc, test_free_while_paused, 0, 2);
	suite_add_tcase(s, tc);

	return s;
}
