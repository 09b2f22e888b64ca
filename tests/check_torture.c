/*
 * Allocation torture, as curl's torture tests do it: a short scenario that
 * touches most of the library is run once to count its allocations (the
 * library's own and libevent's), then once more for each of them, failing
 * exactly that one. There are two scenarios, a server and a client. Every run must end the way a program can handle: a
 * call fails with ENOMEM, or the event hook (or the listener's error hook)
 * reports the failure, or the run succeeds anyway. And in every run:
 * no crash, no hang, no block or descriptor left behind, no hook after
 * the channel is gone, a producer released exactly once, and the frames
 * delivered and the bytes the peer received are each a prefix of what a
 * clean run gives, in order, nothing twice.
 *
 * The server scenario: a client connects to an evchat_listener (AUTOFREE,
 * so direct writes too) over loopback and sends, in one write followed by
 * its FIN, a frame for each kind of terminator: a string, an LF line, a
 * count, a length field, a long string, a lenient CRLF line, then bytes
 * under "none" that only the EOF ends. The found hook answers each with
 * a different push (push_line, push_buffer, push_frame, a producer with
 * a push queued behind it, push_file) and switches the terminator; the
 * event hook answers the EOF and closes when done. The client scenario
 * is described where it is defined.
 *
 * The bugs the scenarios found have regression tests of their own at the
 * end, each failing the one allocation that mattered.
 *
 * EVCHAT_TORTURE_ONLY=i replays run i of each scenario alone; with
 * CK_FORK=no under gdb, break on fail_now() to see the allocation.
 *
 * libevent's allocator can only be replaced before libevent allocates
 * anything, so this is a program of its own that does so first thing.
 */
#define _GNU_SOURCE /* dladdr */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <check.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "evchat-internal.h"
#include "evchat.h"

/* ------------------------------------------------------------------ */
/* Counting and failing allocations */

static unsigned long nallocs; /* attempts since the scenario started */
static unsigned long fail_at; /* the attempt that fails; 0 for none */
static unsigned long nfailed; /* attempts failed so far in this run */
static unsigned long nspared; /* ... not failed: see unchecked[] */
static long live_blocks;      /* blocks held, by anyone using these */

/* Allocations whose failure libevent 2.1.12 itself ignores, so that no
 * program can notice it: failing them tests libevent, not evchat. They
 * are named by the function that allocates and the one that ignores the
 * result, and are spared (the allocation succeeds). */
static const struct {
	const char *callee, *caller, *why;
} unchecked[] = {
	{ "evbuffer_add_cb", "bufferevent_socket_new",
	  "the socket bufferevent is made without the output callback that "
	  "schedules its writes, so what is added later is never written" },
};

static const char *dynamic_name(void *pc)
{
	Dl_info info;
	if (dladdr(pc, &info) == 0 || info.dli_sname == NULL)
		return "";
	return info.dli_sname;
}

/* Whether the allocation being made is one of unchecked[]. */
static int is_unchecked(void)
{
	void *pcs[12];
	int n = backtrace(pcs, 12);
	for (int i = 0; i + 1 < n; i++)
		for (size_t k = 0; k < sizeof(unchecked) / sizeof(unchecked[0]);
		     k++)
			if (strcmp(dynamic_name(pcs[i]), unchecked[k].callee) ==
			        0 &&
			    strcmp(dynamic_name(pcs[i + 1]),
			           unchecked[k].caller) == 0)
				return 1;
	return 0;
}

static int fail_now(void)
{
	if (++nallocs != fail_at)
		return 0;
	if (is_unchecked()) {
		nspared++;
		return 0;
	}
	nfailed++;
	errno = ENOMEM;
	return 1;
}

static void *torture_malloc(size_t size)
{
	if (fail_now())
		return NULL;
	void *p = malloc(size);
	if (p != NULL)
		live_blocks++;
	return p;
}

static void *torture_realloc(void *ptr, size_t size)
{
	if (ptr == NULL)
		return torture_malloc(size);
	if (fail_now())
		return NULL;
	return realloc(ptr, size);
}

static void torture_free(void *ptr)
{
	if (ptr != NULL) {
		live_blocks--;
		free(ptr);
	}
}

/* The library's own allocations go through here, to be counted apart. */
static unsigned long nlib_allocs;

static void *torture_lib_malloc(size_t size)
{
	nlib_allocs++;
	return torture_malloc(size);
}

/* libevent says why it failed (calloc: Cannot allocate memory); the
 * scenario checks what the program is told instead. */
static void quiet_log(int severity, const char *msg)
{
	(void)severity, (void)msg;
}

/* ------------------------------------------------------------------ */
/* What a clean run gives */

/* Frame 2 is a count of BIG bytes: more than one read, more than one
 * chain, moved whole into the reply. */
#define BIG 6000
#define NFRAMES 6
#define FILE_TEXT "FILE-CONTENT\n"

static char input[BIG + 64];
static size_t input_len;
static char want_output[BIG + 128];
static size_t want_output_len;
static char want_frames[BIG + 64]; /* back to back */
static size_t want_frame_len[NFRAMES];

static void append(char *dst, size_t *len, const void *bytes, size_t n)
{
	memcpy(dst + *len, bytes, n);
	*len += n;
}

#define ADD(dst, lit) append(dst, &dst##_len, (lit), sizeof(lit) - 1)

static void add_frame(size_t i, const void *bytes, size_t n)
{
	static size_t off;
	memcpy(want_frames + off, bytes, n);
	off += n;
	want_frame_len[i] = n;
}

/* What the peer sends, and what a clean run delivers and answers. */
static void build_script(void)
{
	static char big[BIG];
	for (size_t i = 0; i < BIG; i++)
		big[i] = (char)('a' + i % 23);
	ADD(input, "HELLO\r\n");             /* string "\r\n" */
	ADD(input, "count 6000\n");          /* LF line */
	append(input, &input_len, big, BIG); /* count */
	ADD(input, "\x00\x07"
	           "bin\0ary");    /* 2-byte length */
	ADD(input, "part--END--"); /* a long string */
	ADD(input, "file\r\n");    /* lenient CRLF */
	ADD(input, "tail");        /* none, until EOF */

	add_frame(0, "HELLO", 5);
	add_frame(1, "count 6000", 10);
	add_frame(2, big, BIG);
	add_frame(3, "bin\0ary", 7);
	add_frame(4, "part", 4);
	add_frame(5, "file", 4);

	ADD(want_output, "HELLO\r\n");
	ADD(want_output, "count 6000\n");
	ADD(want_output, "\x00\x05"
	                 "abcde");
	append(want_output, &want_output_len, big, BIG);
	ADD(want_output, "\x00\x07"
	                 "bin\0ary");
	ADD(want_output, "P1-P2-P3\n");
	ADD(want_output, "after\n");
	ADD(want_output, FILE_TEXT);
	ADD(want_output, "end\n");
	ADD(want_output, "tail=tail\n");
}

static char file_path[64];

/* ------------------------------------------------------------------ */
/* One run */

struct run {
	struct event_base *base;
	struct evchat_listener *listener;
	struct evchat *chat;
	int chat_gone; /* freed, by us or by AUTOFREE */
	int peer;
	int peer_done; /* the peer saw its stream end */

	char frames[BIG + 64]; /* every frame delivered, back to back */
	size_t frames_len;
	size_t nframes;
	int accepted;
	int listener_errors;
	int listener_errno;
	short events[8];
	int event_errno[8];
	size_t nevents;
	char pending_at_eof[16];
	size_t pending_at_eof_len;

	const char *failed_call; /* the first API call that failed */
	int failed_errno;
	int producer_queued;
	int producer_calls;
	int released;

	char got[BIG + 128]; /* what the peer received */
	size_t got_len;

	/* The client scenario */
	char collecting[64]; /* collect mode: the frame so far */
	size_t collecting_len;
	int connected;
	int pause_left; /* loop rounds until the resume; 0: none */
	size_t piece;   /* the next piece the peer sends */

	int judgeable;     /* the scenario got far enough to judge */
	char problem[512]; /* the first thing that went wrong */
};

static void problem(struct run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void problem(struct run *r, const char *fmt, ...)
{
	if (r->problem[0] != '\0')
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->problem, sizeof(r->problem), fmt, ap);
	va_end(ap);
}

/* Runs one API call of the scenario; on failure records it, and frees
 * the channel as a program would. Returns 0 to go on. */
#define STEP(r, call) (((call) < 0) ? api_failed((r), #call) : 0)

static int api_failed(struct run *r, const char *call)
{
	int err = errno;
	if (r->failed_call == NULL) {
		r->failed_call = call;
		r->failed_errno = err;
	}
	if (err != ENOMEM)
		problem(r, "%s failed with errno %d (%s), want ENOMEM", call,
		        err, strerror(err));
	if (!r->chat_gone) {
		evchat_free(r->chat);
		r->chat_gone = 1;
	}
	return -1;
}

static int more(struct evchat *chat, struct evbuffer *out, size_t want,
                void *arg)
{
	struct run *r = arg;
	static const char *const chunks[] = { "P1-", "P2-", "P3\n" };
	if (r->released > 0 || r->chat_gone)
		problem(r, "more() after release or free");
	int k = r->producer_calls++;
	if (k >= 3) {
		problem(r, "more() called after it returned 0");
		return 0;
	}
	if (evbuffer_add(out, chunks[k], strlen(chunks[k])) < 0)
		return -1; /* errno is ENOMEM: the channel reports it */
	return k == 2 ? 0 : 3;
}

static void release(void *arg)
{
	struct run *r = arg;
	r->released++;
}

static void on_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct run *r = arg;
	if (r->chat_gone) {
		problem(r, "found after the channel was freed");
		return;
	}
	size_t len = evbuffer_get_length(frame);
	if (r->nframes >= NFRAMES || r->frames_len + len > sizeof(r->frames)) {
		problem(r, "frame %zu: more frames than sent", r->nframes);
		return;
	}
	evbuffer_copyout(frame, r->frames + r->frames_len, len);
	r->frames_len += len;
	size_t i = r->nframes++;
	static const struct evchat_length_field field = { .size = 2,
		                                          .strip = 2 };
	int fd;

	switch (i) {
	case 0: /* "HELLO": answered as a line in the current terminator */
		if (STEP(r, evchat_push_line(chat, "HELLO", 5)) ||
		    STEP(r, evchat_set_terminator_line(chat, EVCHAT_EOL_LF)))
			return;
		break;
	case 1: /* "count 6000": moved back, then the count */
		if (STEP(r, evchat_push_buffer(chat, frame)) ||
		    STEP(r, evchat_push(chat, "\n", 1)) ||
		    STEP(r, evchat_set_terminator_count(chat, BIG)))
			return;
		break;
	case 2: /* the big one: the length framing, a frame in it, then the
	         * big frame moved back */
		if (STEP(r, evchat_set_terminator_length(chat, &field)) ||
		    STEP(r, evchat_push_frame(chat, "abcde", 5)) ||
		    STEP(r, evchat_push_buffer(chat, frame)))
			return;
		break;
	case 3: /* "bin\0ary" */
		if (STEP(r, evchat_push_frame(chat, "bin\0ary", 7)) ||
		    STEP(r, evchat_set_terminator(chat, "--END--", 7)))
			return;
		break;
	case 4: /* "part": a producer, and a push that waits behind it */
		if (STEP(r, evchat_push_producer(chat, more, release, r)))
			return;
		r->producer_queued = 1;
		if (STEP(r, evchat_push(chat, "after\n", 6)) ||
		    STEP(r, evchat_set_terminator_line(chat, EVCHAT_EOL_CRLF)))
			return;
		break;
	case 5: /* "file": a file, then bytes, then no framing at all */
		fd = open(file_path, O_RDONLY);
		if (fd < 0) {
			problem(r, "open %s: %s", file_path, strerror(errno));
			return;
		}
		if (evchat_push_file(chat, fd, 0, -1) < 0) {
			close(fd); /* still ours on failure */
			api_failed(r, "evchat_push_file(chat, fd, 0, -1)");
			return;
		}
		if (STEP(r, evchat_push(chat, "end\n", 4)) ||
		    STEP(r, evchat_set_terminator_none(chat)))
			return;
		break;
	}
}

static void on_event(struct evchat *chat, short events, void *arg)
{
	struct run *r = arg;
	int err = errno;
	if (r->chat_gone) {
		problem(r, "event 0x%x after the channel was freed",
		        (unsigned)events);
		return;
	}
	if (r->nevents < sizeof(r->events) / sizeof(r->events[0])) {
		r->event_errno[r->nevents] = err;
		r->events[r->nevents++] = events;
	}
	const short known = EVCHAT_EVENT_EOF | EVCHAT_EVENT_ERROR |
	                    EVCHAT_EVENT_CLOSED | EVCHAT_EVENT_READING |
	                    EVCHAT_EVENT_WRITING;
	if (events & ~known)
		problem(r, "unexpected event 0x%x", (unsigned)events);
	if ((events & EVCHAT_EVENT_ERROR) && err != ENOMEM)
		problem(r, "error event 0x%x with errno %d (%s), want ENOMEM",
		        (unsigned)events, err, strerror(err));
	if (events & (EVCHAT_EVENT_ERROR | EVCHAT_EVENT_CLOSED)) {
		r->chat_gone = 1; /* AUTOFREE frees it when we return */
		return;
	}
	if (events & EVCHAT_EVENT_EOF) {
		struct evbuffer *pending = evchat_get_pending(chat);
		size_t n = evbuffer_get_length(pending);
		if (n > sizeof(r->pending_at_eof))
			n = sizeof(r->pending_at_eof);
		evbuffer_copyout(pending, r->pending_at_eof, n);
		r->pending_at_eof_len = n;
		if (STEP(r, evchat_push(chat, "tail=", 5)) ||
		    STEP(r, evchat_push_buffer(chat, pending)) ||
		    STEP(r, evchat_push(chat, "\n", 1)))
			return;
		/* AUTOFREE closes when done after an EOF by itself. */
	}
}

static void on_accept(struct evchat_listener *l, struct evchat *chat,
                      const struct sockaddr *sa, int salen, void *arg)
{
	struct run *r = arg;
	r->accepted++;
	r->chat = chat;
	evchat_setcb(chat, NULL, on_found, on_event, r);
	STEP(r, evchat_set_terminator(chat, "\r\n", 2));
}

static void on_listener_error(struct evchat_listener *l, int err, void *arg)
{
	struct run *r = arg;
	r->listener_errors++;
	r->listener_errno = err;
	if (err != ENOMEM)
		problem(r, "listener error %d (%s), want ENOMEM", err,
		        strerror(err));
}

static long long now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* Reads what the channel sent; notes the end of the stream. */
static void peer_read(struct run *r)
{
	while (!r->peer_done) {
		char buf[256];
		ssize_t n = recv(r->peer, buf, sizeof(buf), 0);
		if (n > 0) {
			if (r->got_len + (size_t)n > sizeof(r->got)) {
				problem(r, "the peer got more than was sent");
				r->peer_done = 1;
				return;
			}
			memcpy(r->got + r->got_len, buf, (size_t)n);
			r->got_len += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		r->peer_done = 1; /* EOF, or a reset after an error */
	}
}

/* Connects the peer to the listener and sends the whole input, then its
 * FIN: the kernel queues it all before the listener accepts. */
static int peer_connect(struct run *r, evutil_socket_t lfd)
{
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	if (getsockname(lfd, (struct sockaddr *)&sin, &slen) < 0)
		return -1;
	r->peer = socket(AF_INET, SOCK_STREAM, 0);
	if (r->peer < 0 ||
	    connect(r->peer, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    send(r->peer, input, input_len, MSG_NOSIGNAL) !=
	        (ssize_t)input_len ||
	    shutdown(r->peer, SHUT_WR) < 0)
		return -1;
	return evutil_make_socket_nonblocking(r->peer);
}

static int is_prefix(const char *got, size_t got_len, const char *want,
                     size_t want_len)
{
	return got_len <= want_len && memcmp(got, want, got_len) == 0;
}

/* Checks what a run left. The problem text says what went wrong. */
static void judge(struct run *r, int complete_expected)
{
	size_t want_len = 0;
	for (size_t i = 0; i < r->nframes && i < NFRAMES; i++)
		want_len += want_frame_len[i];
	if (r->frames_len != want_len ||
	    memcmp(r->frames, want_frames, want_len) != 0)
		problem(r,
		        "the %zu frames delivered are not the first %zu sent",
		        r->nframes, r->nframes);
	if (!is_prefix(r->got, r->got_len, want_output, want_output_len))
		problem(r,
		        "the peer got %zu bytes that are not a prefix of "
		        "what a clean run sends",
		        r->got_len);
	if (r->released != r->producer_queued)
		problem(r, "producer queued %d time(s), released %d time(s)",
		        r->producer_queued, r->released);
	int eof = 0, closed = 0, error = 0;
	for (size_t i = 0; i < r->nevents; i++) {
		eof += !!(r->events[i] & EVCHAT_EVENT_EOF);
		closed += !!(r->events[i] & EVCHAT_EVENT_CLOSED);
		error += !!(r->events[i] & EVCHAT_EVENT_ERROR);
	}
	if (eof > 1 || closed > 1 || error > 1 || (closed && error))
		problem(r,
		        "events reported more than once: %d EOF, %d "
		        "closed, %d errors",
		        eof, closed, error);
	if (eof && (r->pending_at_eof_len != 4 ||
	            memcmp(r->pending_at_eof, "tail", 4) != 0))
		problem(r, "%zu bytes pending at EOF, want \"tail\"",
		        r->pending_at_eof_len);
	int reported = r->failed_call != NULL || error || r->listener_errors;
	if (complete_expected || !reported) {
		/* Nothing failed that the program heard of: then nothing
		 * may be missing either. */
		if (r->nframes != NFRAMES || !closed ||
		    r->got_len != want_output_len)
			problem(r,
			        "no failure was reported, yet the run did "
			        "not complete: %zu frames, closed %d, %zu of "
			        "%zu bytes",
			        r->nframes, closed, r->got_len,
			        want_output_len);
	}
}

/* The server scenario: a listener channel, every terminator kind, every
 * kind of push, close when done. */
static void run_server(struct run *r)
{
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct evconnlistener *lev = NULL;
	r->base = event_base_new();
	if (r->base != NULL)
		lev = evconnlistener_new_bind(r->base, NULL, NULL,
		                              LEV_OPT_CLOSE_ON_FREE |
		                                  LEV_OPT_CLOSE_ON_EXEC,
		                              16, (struct sockaddr *)&sin,
		                              sizeof(sin));
	if (lev != NULL) {
		evutil_socket_t lfd = evconnlistener_get_fd(lev);
		if (peer_connect(r, lfd) < 0)
			problem(r, "peer connect: %s", strerror(errno));
		errno = 0;
		r->listener = evchat_listener_new(lev, EVCHAT_OPT_AUTOFREE,
		                                  on_accept, r);
		if (r->listener == NULL && errno != ENOMEM)
			problem(r, "evchat_listener_new: errno %d, want ENOMEM",
			        errno);
		if (r->listener == NULL)
			r->failed_call = "evchat_listener_new";
	}
	if (r->listener != NULL) {
		evchat_listener_set_error_cb(r->listener, on_listener_error);
		long long end = now_ms() + 3000;
		/* Until the channel is gone (or never came) and the peer saw
		 * the end of its stream. */
		while (now_ms() < end) {
			event_base_loop(r->base, EVLOOP_NONBLOCK);
			peer_read(r);
			int over = r->chat_gone ||
			           (r->listener_errors && !r->accepted);
			if (over && r->peer_done)
				break;
			struct pollfd pfd = { .fd = r->peer, .events = POLLIN };
			poll(&pfd, 1, 1);
		}
		if (!r->peer_done || !(r->chat_gone || r->listener_errors))
			problem(r, "hung: after 3 s, channel %s, peer %s",
			        r->accepted ? (r->chat_gone ? "freed" : "alive")
			                    : "never made",
			        r->peer_done ? "done" : "still reading");
		if (!r->chat_gone && r->chat != NULL)
			evchat_free(r->chat);
		evchat_listener_free(r->listener);
	}
	r->judgeable = r->base != NULL && lev != NULL && r->listener != NULL;
}

/* The client scenario: a channel that connects (a socket bufferevent
 * given to evchat_new() while its connect is in progress), in collect
 * mode, with a frame timeout, small write watermarks and out-buffer
 * size; it sends a producer's output and a push queued behind it, then
 * half-closes. The peer reads all of it and its EOF, then answers in
 * pieces split across reads; the channel pauses input after the first
 * frame and is resumed from outside a hook, switches between a string
 * and a count, collects the rest under "none" until the peer's EOF, and
 * closes when done. */
static const char *const client_pieces[] = {
	"head1\r\n",
	"\r\n01234",
	"56789end\r\n\r",
	"\ntail",
};
#define NPIECES (sizeof(client_pieces) / sizeof(client_pieces[0]))
static const char *const client_frames[] = { "head1", "0123456789", "end" };
#define NCLIENT_FRAMES 3
static const char client_output[] = "P1-P2-P3\nREQ-END\n";

static void client_collect(struct evchat *chat, struct evbuffer *data,
                           void *arg)
{
	struct run *r = arg;
	size_t n = evbuffer_get_length(data);
	if (r->chat_gone) {
		problem(r, "collect after the channel was freed");
		return;
	}
	if (r->collecting_len + n > sizeof(r->collecting)) {
		problem(r, "collected more than was sent");
		return;
	}
	evbuffer_remove(data, r->collecting + r->collecting_len, n);
	r->collecting_len += n;
}

static void client_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct run *r = arg;
	if (r->chat_gone) {
		problem(r, "found after the channel was freed");
		return;
	}
	if (frame != NULL)
		problem(r, "found got a frame in collect mode");
	if (r->nframes >= NCLIENT_FRAMES) {
		problem(r, "more frames than sent");
		return;
	}
	memcpy(r->frames + r->frames_len, r->collecting, r->collecting_len);
	r->frames_len += r->collecting_len;
	r->collecting_len = 0;
	switch (r->nframes++) {
	case 0: /* paused here, resumed by the loop a few rounds later */
		if (STEP(r, evchat_pause_input(chat)) ||
		    STEP(r, evchat_set_terminator_count(chat, 10)))
			return;
		r->pause_left = 3;
		break;
	case 1:
		STEP(r, evchat_set_terminator(chat, "\r\n\r\n", 4));
		break;
	case 2:
		STEP(r, evchat_set_terminator_none(chat));
		break;
	}
}

static void client_writable(struct evchat *chat, int writable, void *arg)
{
	struct run *r = arg;
	if (r->chat_gone)
		problem(r, "writable hook after the channel was freed");
}

static void client_event(struct evchat *chat, short events, void *arg)
{
	struct run *r = arg;
	int err = errno;
	if (r->chat_gone) {
		problem(r, "event 0x%x after the channel was freed",
		        (unsigned)events);
		return;
	}
	if (r->nevents < sizeof(r->events) / sizeof(r->events[0])) {
		r->event_errno[r->nevents] = err;
		r->events[r->nevents++] = events;
	}
	if (events & EVCHAT_EVENT_CONNECTED) {
		r->connected++;
		if (STEP(r, evchat_push_producer(chat, more, release, r)))
			return;
		r->producer_queued = 1;
		if (STEP(r, evchat_push(chat, "REQ-END\n", 8)))
			return;
		STEP(r, evchat_shutdown_write(chat));
		return;
	}
	if ((events & EVCHAT_EVENT_ERROR) && err != ENOMEM)
		problem(r, "error event 0x%x with errno %d (%s), want ENOMEM",
		        (unsigned)events, err, strerror(err));
	if (events & (EVCHAT_EVENT_ERROR | EVCHAT_EVENT_CLOSED)) {
		evchat_free(chat);
		r->chat_gone = 1;
		return;
	}
	if (events & EVCHAT_EVENT_EOF) {
		memcpy(r->pending_at_eof, r->collecting, r->collecting_len);
		r->pending_at_eof_len = r->collecting_len;
		STEP(r, evchat_close_when_done(chat));
		return;
	}
	problem(r, "unexpected event 0x%x", (unsigned)events);
}

static void run_client(struct run *r)
{
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &slen) < 0 ||
	    evutil_make_socket_nonblocking(lfd) < 0) {
		problem(r, "listen: %s", strerror(errno));
		if (lfd >= 0)
			close(lfd);
		return;
	}
	r->base = event_base_new();
	struct bufferevent *bev = NULL;
	if (r->base != NULL)
		bev = bufferevent_socket_new(r->base, -1,
		                             BEV_OPT_CLOSE_ON_FREE);
	if (bev != NULL &&
	    bufferevent_socket_connect(bev, (struct sockaddr *)&sin,
	                               sizeof(sin)) < 0) {
		bufferevent_free(bev);
		bev = NULL;
	}
	if (bev != NULL) {
		errno = 0;
		r->chat = evchat_new(bev, 0);
		if (r->chat == NULL) {
			r->failed_call = "evchat_new";
			if (errno != ENOMEM)
				problem(r, "evchat_new: errno %d, want ENOMEM",
				        errno);
		}
	}
	if (r->chat == NULL) {
		close(lfd);
		return;
	}
	r->judgeable = 1;
	evchat_setcb(r->chat, client_collect, client_found, client_event, r);
	evchat_set_writable_cb(r->chat, client_writable);
	struct timeval frame_timeout = { 5, 0 };
	if (STEP(r, evchat_set_frame_timeout(r->chat, &frame_timeout)) ||
	    STEP(r, evchat_set_write_watermarks(r->chat, 8, 32)) ||
	    STEP(r, evchat_set_out_buffer_size(r->chat, 4)) ||
	    STEP(r, evchat_set_terminator(r->chat, "\r\n\r\n", 4))) {
		close(lfd);
		return;
	}

	long long end = now_ms() + 3000;
	while (now_ms() < end) {
		event_base_loop(r->base, EVLOOP_NONBLOCK);
		if (r->peer < 0) {
			r->peer = accept(lfd, NULL, NULL);
			if (r->peer >= 0)
				evutil_make_socket_nonblocking(r->peer);
		} else {
			peer_read(r);
		}
		/* The answer, once the request and its EOF were read; a
		 * piece per round, so that they arrive in several reads. */
		if (r->peer_done && r->piece < NPIECES) {
			const char *p = client_pieces[r->piece++];
			send(r->peer, p, strlen(p), MSG_NOSIGNAL);
			if (r->piece == NPIECES)
				shutdown(r->peer, SHUT_WR);
		}
		if (r->pause_left > 0 && --r->pause_left == 0 &&
		    !r->chat_gone && STEP(r, evchat_resume_input(r->chat)))
			break;
		if (r->chat_gone && r->peer_done)
			break;
		poll(NULL, 0, 1);
	}
	close(lfd);
	if (!r->chat_gone) {
		problem(r, "hung: after 3 s, the channel is alive, peer %s",
		        r->peer_done ? "done" : "still reading");
		evchat_free(r->chat);
		r->chat_gone = 1;
	}
}

static void judge_client(struct run *r, int complete_expected)
{
	size_t want_len = 0;
	char want[64];
	for (size_t i = 0; i < r->nframes && i < NCLIENT_FRAMES; i++) {
		memcpy(want + want_len, client_frames[i],
		       strlen(client_frames[i]));
		want_len += strlen(client_frames[i]);
	}
	if (r->frames_len != want_len || memcmp(r->frames, want, want_len))
		problem(r,
		        "the %zu frames delivered are not the first %zu "
		        "sent",
		        r->nframes, r->nframes);
	if (!is_prefix(r->got, r->got_len, client_output,
	               sizeof(client_output) - 1))
		problem(r,
		        "the peer got %zu bytes that are not a prefix of "
		        "what a clean run sends",
		        r->got_len);
	if (r->released != r->producer_queued)
		problem(r, "producer queued %d time(s), released %d time(s)",
		        r->producer_queued, r->released);
	int connected = 0, eof = 0, closed = 0, error = 0;
	for (size_t i = 0; i < r->nevents; i++) {
		connected += !!(r->events[i] & EVCHAT_EVENT_CONNECTED);
		eof += !!(r->events[i] & EVCHAT_EVENT_EOF);
		closed += !!(r->events[i] & EVCHAT_EVENT_CLOSED);
		error += !!(r->events[i] & EVCHAT_EVENT_ERROR);
	}
	if (connected > 1 || eof > 1 || closed > 1 || error > 1 ||
	    (closed && error))
		problem(r,
		        "events reported more than once: %d connected, %d "
		        "EOF, %d closed, %d errors",
		        connected, eof, closed, error);
	if (eof && (r->pending_at_eof_len != 4 ||
	            memcmp(r->pending_at_eof, "tail", 4) != 0))
		problem(r, "%zu bytes collected at EOF, want \"tail\"",
		        r->pending_at_eof_len);
	int reported = r->failed_call != NULL || error;
	if ((complete_expected || !reported) &&
	    (r->nframes != NCLIENT_FRAMES || !closed ||
	     r->got_len != sizeof(client_output) - 1))
		problem(r,
		        "no failure was reported, yet the run did not "
		        "complete: %zu frames, closed %d, %zu of %zu bytes",
		        r->nframes, closed, r->got_len,
		        sizeof(client_output) - 1);
}

static const struct script {
	const char *name;
	void (*run)(struct run *r);
	void (*judge)(struct run *r, int complete_expected);
} scripts[] = {
	{ "server", run_server, judge },
	{ "client", run_client, judge_client },
};
#define NSCRIPTS (sizeof(scripts) / sizeof(scripts[0]))

/* Runs a scenario failing allocation number `fail` (0: none). Returns the
 * allocations it attempted; r->problem says what went wrong. */
static unsigned long scenario(struct run *r, size_t which, unsigned long fail)
{
	memset(r, 0, sizeof(*r));
	r->peer = -1;
	evchat_thread_cleanup(); /* left by an earlier test */
	int fds_before = count_fds();
	long blocks_before = live_blocks;
	nallocs = 0;
	nlib_allocs = 0;
	nfailed = 0;
	nspared = 0;
	fail_at = fail;

	scripts[which].run(r);
	if (r->base != NULL)
		event_base_free(r->base);
	/* The buffers kept for the thread's next channel are not a leak,
	 * and the next run must start without them, as this one did. */
	evchat_thread_cleanup();
	if (r->peer >= 0)
		close(r->peer);
	unsigned long attempted = nallocs;
	fail_at = 0;

	if (r->judgeable)
		scripts[which].judge(r, fail == 0 || nfailed == 0);
	if (live_blocks != blocks_before)
		problem(r, "%ld blocks leaked", live_blocks - blocks_before);
	if (count_fds() != fds_before)
		problem(r, "%d descriptors leaked", count_fds() - fds_before);
	return attempted;
}

/* ------------------------------------------------------------------ */
/* Regressions found by the scenario */

/* libevent 2.1's evbuffer_remove_buffer() copies a partial chain with an
 * evbuffer_add() whose failure it ignores, then drains the bytes anyway:
 * out of memory, a frame gathered from a short read lost its bytes and
 * the next frame was delivered in its place. The move must fail and
 * leave the source as it was. */
START_TEST(buffer_move_out_of_memory_keeps_bytes)
{
	struct evbuffer *src = evbuffer_new();
	struct evbuffer *dst = evbuffer_new();
	ck_assert_ptr_nonnull(src);
	ck_assert_ptr_nonnull(dst);
	/* One chain of 100 bytes; move 10, 100, and a part of two chains. */
	static const size_t moves[] = { 10, 100, 150 };
	for (size_t k = 0; k < sizeof(moves) / sizeof(moves[0]); k++) {
		char bytes[200];
		memset(bytes, 'a' + (int)k, sizeof(bytes));
		evbuffer_drain(src, (size_t)-1);
		evbuffer_drain(dst, (size_t)-1);
		ck_assert_int_eq(evbuffer_add(src, bytes, 100), 0);
		struct evbuffer *second = evbuffer_new();
		ck_assert_ptr_nonnull(second);
		ck_assert_int_eq(evbuffer_add(second, bytes, 100), 0);
		evbuffer_add_buffer(src, second); /* a chain of its own */
		evbuffer_free(second);
		nallocs = 0;
		fail_at = 1;
		int r = evchat__buffer_move(dst, src, moves[k]);
		fail_at = 0;
		ck_assert_msg(r == -1 || nallocs == 0,
		              "move of %zu: allocation failed, move said %d",
		              moves[k], r);
		if (r == -1) {
			ck_assert_uint_eq(evbuffer_get_length(src), 200);
			ck_assert_uint_eq(evbuffer_get_length(dst), 0);
		} else {
			ck_assert_uint_eq(evbuffer_get_length(src),
			                  200 - moves[k]);
			ck_assert_uint_eq(evbuffer_get_length(dst), moves[k]);
		}
		/* And with memory, the move works. */
		evbuffer_drain(dst, (size_t)-1);
		size_t before = evbuffer_get_length(src);
		ck_assert_int_eq(evchat__buffer_move(dst, src, moves[k]), 0);
		ck_assert_uint_eq(evbuffer_get_length(dst), moves[k]);
		ck_assert_uint_eq(evbuffer_get_length(src), before - moves[k]);
	}
	evbuffer_free(src);
	evbuffer_free(dst);
}
END_TEST

static char switched_frame[16];
static size_t switched_len;
static int switched_frames;

static void switched_found(struct evchat *chat, struct evbuffer *frame,
                           void *arg)
{
	switched_len = evbuffer_get_length(frame);
	if (switched_len > sizeof(switched_frame))
		switched_len = sizeof(switched_frame);
	evbuffer_copyout(frame, switched_frame, switched_len);
	switched_frames++;
}

/* A channel over a socketpair on base; *peer is the other end. */
static struct evchat *pair_channel_with(struct event_base *base, int *peer,
                                        unsigned flags)
{
	evutil_socket_t fds[2];
	ck_assert_int_eq(evutil_socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	evutil_make_socket_nonblocking(fds[0]);
	struct bufferevent *bev = bufferevent_socket_new(base, fds[0],
	                                                 BEV_OPT_CLOSE_ON_FREE);
	ck_assert_ptr_nonnull(bev);
	struct evchat *chat = evchat_new(bev, flags);
	ck_assert_ptr_nonnull(chat);
	*peer = fds[1];
	return chat;
}

static struct evchat *pair_channel(struct event_base *base, int *peer)
{
	return pair_channel_with(base, peer, 0);
}

/* A terminator changed while a length header has partly arrived makes
 * the header's bytes part of the current frame. That move ignored a
 * failure: out of memory, the byte stayed behind in the header buffer,
 * and the frame was delivered without it. */
START_TEST(terminator_change_out_of_memory_keeps_header_bytes)
{
	struct event_base *base = event_base_new();
	ck_assert_ptr_nonnull(base);
	int peer;
	struct evchat *chat = pair_channel(base, &peer);
	evchat_setcb(chat, NULL, switched_found, NULL, NULL);
	/* Lines once first, so that switching back allocates no table. */
	ck_assert_int_eq(evchat_set_terminator_line(chat, EVCHAT_EOL_LF), 0);
	static const struct evchat_length_field field = { .size = 2 };
	ck_assert_int_eq(evchat_set_terminator_length(chat, &field), 0);
	switched_frames = 0;

	/* One byte of a two-byte header. */
	ck_assert_int_eq(send(peer, "H", 1, 0), 1);
	for (int i = 0; i < 50; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		poll(NULL, 0, 1);
	}
	/* The switch to lines, with the next allocation failing. */
	nallocs = 0;
	fail_at = 1;
	int r = evchat_set_terminator_line(chat, EVCHAT_EOL_LF);
	fail_at = 0;
	ck_assert_int_eq(r, 0);
	/* The move was the one allocation, if any: it failed. */
	ck_assert_uint_le(nallocs, 1);
	ck_assert_int_eq(send(peer, "ab\n", 3, 0), 3);
	for (int i = 0; i < 50 && switched_frames == 0; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		poll(NULL, 0, 1);
	}
	ck_assert_int_eq(switched_frames, 1);
	ck_assert_msg(switched_len == 3 &&
	                  memcmp(switched_frame, "Hab", 3) == 0,
	              "frame \"%.*s\", want \"Hab\"", (int)switched_len,
	              switched_frame);
	evchat_free(chat);
	event_base_free(base);
	close(peer);
}
END_TEST

/* An idle channel holds no buffer of its own: the input, header, frame
 * and reply buffers are taken from the thread's spares while bytes pass
 * and given back once empty. A frame split between reads, a length
 * header split between reads and a switch of terminator all leave the
 * channel as small as it was made; evchat_get_pending() then makes the
 * pending buffer once, and the channel keeps that one for good. */
static int idle_frames;

static void idle_echo(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	(void)arg;
	idle_frames++;
	evchat_push_buffer(chat, frame);
	evchat_push(chat, "\n", 1);
	/* After the tenth line, length fields of two bytes. */
	if (idle_frames == 10) {
		static const struct evchat_length_field field = { .size = 2 };
		evchat_set_terminator_length(chat, &field);
	}
}

static void idle_send(struct event_base *base, evutil_socket_t fd,
                      const char *bytes, size_t len, int frames)
{
	ck_assert_int_eq(send(fd, bytes, len, 0), (ssize_t)len);
	for (int i = 0; i < 200 && idle_frames < frames; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		poll(NULL, 0, 1);
	}
	/* A few more rounds: deferred work, the replies' write. */
	for (int i = 0; i < 5; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	ck_assert_int_eq(idle_frames, frames);
	char sink[256];
	while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
}

START_TEST(idle_channel_keeps_no_buffers)
{
	struct event_base *base = event_base_new();
	ck_assert_ptr_nonnull(base);
	int peer;
	struct evchat *chat = pair_channel(base, &peer);
	evchat_setcb(chat, NULL, idle_echo, NULL, NULL);
	ck_assert_int_eq(evchat_set_terminator_line(chat, EVCHAT_EOL_LF), 0);
	/* The switch to length fields makes the channel's extra state, a
	 * block it keeps: made before counting, by a setter that changes
	 * nothing else. */
	ck_assert_int_eq(
	    evchat_set_out_buffer_size(chat, EVCHAT_DEFAULT_OUT_BUFFER_SIZE),
	    0);
	event_base_loop(base, EVLOOP_NONBLOCK);
	ck_assert_int_eq(evchat_thread_cleanup(), 0);
	long made = live_blocks;
	idle_frames = 0;

	/* Lines, then one split between reads, ending the tenth. */
	idle_send(base, peer, "a\nbb\nccc\nd\ne\nf\ng\nh\ni\n", 21, 9);
	idle_send(base, peer, "split", 5, 9);
	idle_send(base, peer, " line\n", 6, 10);
	ck_assert_int_eq(evchat_thread_cleanup(), 0);
	ck_assert_int_eq(live_blocks, made);
	/* Length fields: one whole frame, then a header split in two. */
	idle_send(base, peer, "\0\3abc\0", 6, 11);
	idle_send(base, peer, "\2xy", 3, 12);
	ck_assert_int_eq(evchat_thread_cleanup(), 0);
	ck_assert_int_eq(live_blocks, made);

	/* Asking only how much is pending makes no buffer. */
	ck_assert_uint_eq(evchat_get_pending_length(chat), 0);
	ck_assert_int_eq(evchat_thread_cleanup(), 0);
	ck_assert_int_eq(live_blocks, made);

	/* The pending buffer: made on the first call, then the same one,
	 * and kept while the channel lives. */
	struct evbuffer *pending = evchat_get_pending(chat);
	ck_assert_ptr_nonnull(pending);
	ck_assert_ptr_eq(evchat_get_pending(chat), pending);
	ck_assert_int_eq(evchat_thread_cleanup(), 0);
	ck_assert_int_eq(live_blocks, made + 1);
	idle_send(base, peer, "\0\1z", 3, 13);
	ck_assert_ptr_eq(evchat_get_pending(chat), pending);
	ck_assert_uint_eq(evbuffer_get_length(pending), 0);
	/* Half a frame waits in it, header and all (none is stripped). */
	idle_send(base, peer, "\0\4ab", 4, 13);
	ck_assert_uint_eq(evbuffer_get_length(pending), 4);
	ck_assert_uint_eq(evchat_get_pending_length(chat), 4);
	/* Drained by the caller, it keeps its bytes' chain no more. */
	evbuffer_drain(pending, 4);
	ck_assert_int_eq(evchat_thread_cleanup(), 0);
	ck_assert_int_eq(live_blocks, made + 1);
	evchat_free(chat);
	event_base_free(base);
	close(peer);
}
END_TEST

/* A channel keeps its first write timeout in a block made then: out of
 * memory for it, evchat_set_timeouts() fails and changes nothing, the
 * read timeout given with it included. */
static short timeouts_events;

static void timeouts_event(struct evchat *chat, short events, void *arg)
{
	(void)chat, (void)arg;
	timeouts_events |= events;
}

START_TEST(set_timeouts_out_of_memory_changes_nothing)
{
	struct event_base *base = event_base_new();
	ck_assert_ptr_nonnull(base);
	int peer;
	struct evchat *chat = pair_channel(base, &peer);
	evchat_setcb(chat, NULL, NULL, timeouts_event, NULL);
	timeouts_events = 0;

	struct timeval read = { 0, 10 * 1000 }, write = { 5, 0 };
	nallocs = 0;
	fail_at = 1;
	errno = 0;
	int r = evchat_set_timeouts(chat, &read, &write);
	fail_at = 0;
	ck_assert_int_eq(r, -1);
	ck_assert_int_eq(errno, ENOMEM);
	long long end = now_ms() + 60;
	while (now_ms() < end) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		poll(NULL, 0, 1);
	}
	ck_assert_int_eq(timeouts_events, 0);

	/* With memory, both apply. */
	ck_assert_int_eq(evchat_set_timeouts(chat, &read, &write), 0);
	end = now_ms() + 2000;
	while (timeouts_events == 0 && now_ms() < end) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		poll(NULL, 0, 1);
	}
	ck_assert_int_eq(timeouts_events,
	                 EVCHAT_EVENT_TIMEOUT | EVCHAT_EVENT_READING);
	evchat_free(chat);
	event_base_free(base);
	close(peer);
}
END_TEST

/* The other setters whose state waits in that block until a channel
 * needs it: out of memory the first time, each fails with ENOMEM and
 * the channel frames as before. */
static int limit_frames;
static size_t limit_len;

static void limit_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	(void)chat, (void)arg;
	limit_frames++;
	limit_len = evbuffer_get_length(frame);
}

START_TEST(first_need_setters_out_of_memory_change_nothing)
{
	struct event_base *base = event_base_new();
	ck_assert_ptr_nonnull(base);
	int peer;
	struct evchat *chat = pair_channel(base, &peer);
	evchat_setcb(chat, NULL, limit_found, NULL, NULL);
	ck_assert_int_eq(evchat_set_terminator(chat, "\n", 1), 0);
	limit_frames = 0;

	static const struct evchat_length_field field = { .size = 2 };
	int r[4];
	nallocs = 0;
	fail_at = 1;
	errno = 0;
	r[0] = evchat_set_terminator_length(chat, &field);
	ck_assert_int_eq(errno, ENOMEM);
	nallocs = 0;
	r[1] = evchat_set_frame_limit(chat, 4, EVCHAT_LIMIT_DISCARD);
	ck_assert_int_eq(errno, ENOMEM);
	nallocs = 0;
	r[2] = evchat_set_out_buffer_size(chat, 1024);
	ck_assert_int_eq(errno, ENOMEM);
	nallocs = 0;
	r[3] = evchat_set_write_watermarks(chat, 1, 2);
	ck_assert_int_eq(errno, ENOMEM);
	fail_at = 0;
	for (int k = 0; k < 4; k++)
		ck_assert_msg(r[k] == -1, "setter %d: %d", k, r[k]);

	/* Still lines, and no limit of 4: the whole line arrives. */
	const void *term;
	size_t term_len;
	ck_assert_int_eq(evchat_get_terminator(chat, &term, &term_len, NULL),
	                 EVCHAT_TERM_STRING);
	ck_assert_uint_eq(term_len, 1);
	ck_assert_int_eq(send(peer, "abcdefgh\n", 9, 0), 9);
	long long end = now_ms() + 2000;
	while (limit_frames == 0 && now_ms() < end) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		poll(NULL, 0, 1);
	}
	ck_assert_int_eq(limit_frames, 1);
	ck_assert_uint_eq(limit_len, 8);
	/* The default marks: 40,000 bytes queued is writable (under marks
	 * of 1 and 2 it would not be). */
	static unsigned char queued[40000];
	ck_assert_int_eq(evchat_push(chat, queued, sizeof(queued)), 0);
	ck_assert_int_eq(evchat_is_writable(chat), 1);

	/* With memory, each works. */
	ck_assert_int_eq(evchat_set_write_watermarks(chat, 1, 2), 0);
	ck_assert_int_eq(evchat_is_writable(chat), 0);
	ck_assert_int_eq(evchat_set_frame_limit(chat, 4, EVCHAT_LIMIT_DISCARD),
	                 0);
	ck_assert_int_eq(evchat_set_out_buffer_size(chat, 1024), 0);
	ck_assert_int_eq(evchat_set_terminator_length(chat, &field), 0);
	ck_assert_int_eq(evchat_get_terminator(chat, NULL, NULL, NULL),
	                 EVCHAT_TERM_LENGTH);
	evchat_free(chat);
	event_base_free(base);
	close(peer);
}
END_TEST

static short close_events;

static void close_event(struct evchat *chat, short events, void *arg)
{
	close_events = events;
	evchat_free(chat);
	*(struct evchat **)arg = NULL;
}

/* A close waits for the peer to acknowledge everything, polling with a
 * timer that also enforces the write timeout. Adding that timer can need
 * memory (libevent's timer heap grows when full), and its failure was
 * ignored: behind a peer that stopped reading, with everything in the
 * kernel's send queue and nothing left for libevent to time, the close
 * then waited forever despite its write timeout. Eight other timers fill
 * the heap (libevent's first size), so adding the close's timer grows it;
 * each of the close's first allocations is failed in turn, and each run
 * must end in an event. */
START_TEST(close_timer_out_of_memory_still_ends)
{
	for (unsigned long i = 1; i <= 3; i++) {
		struct event_base *base = event_base_new();
		ck_assert_ptr_nonnull(base);
		struct event *filler[8];
		struct timeval minute = { 60, 0 };
		for (int k = 0; k < 8; k++) {
			filler[k] = evtimer_new(base, (event_callback_fn)abort,
			                        NULL);
			ck_assert_ptr_nonnull(filler[k]);
			ck_assert_int_eq(evtimer_add(filler[k], &minute), 0);
		}
		/* A peer with a small receive buffer that never reads. */
		struct sockaddr_in sin;
		socklen_t slen = sizeof(sin);
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int lfd = socket(AF_INET, SOCK_STREAM, 0);
		int peer = socket(AF_INET, SOCK_STREAM, 0);
		int rcvbuf = 2048;
		ck_assert_int_eq(setsockopt(peer, SOL_SOCKET, SO_RCVBUF,
		                            &rcvbuf, sizeof(rcvbuf)),
		                 0);
		ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sin,
		                      sizeof(sin)),
		                 0);
		ck_assert_int_eq(listen(lfd, 1), 0);
		ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sin,
		                             &slen),
		                 0);
		ck_assert_int_eq(connect(peer, (struct sockaddr *)&sin,
		                         sizeof(sin)),
		                 0);
		int fd = accept(lfd, NULL, NULL);
		ck_assert_int_ge(fd, 0);
		close(lfd);
		evutil_make_socket_nonblocking(fd);
		struct bufferevent *bev =
		    bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
		ck_assert_ptr_nonnull(bev);
		struct evchat *chat = evchat_new(bev, 0);
		ck_assert_ptr_nonnull(chat);
		evchat_setcb(chat, NULL, NULL, close_event, &chat);
		/* More than the peer's window, less than our send buffer:
		 * all of it leaves libevent's output, part stays unacked. */
		static char data[8192];
		ck_assert_int_eq(evchat_push(chat, data, sizeof(data)), 0);
		for (int k = 0; k < 100 && evbuffer_get_length(
		                               bufferevent_get_output(bev)) > 0;
		     k++) {
			event_base_loop(base, EVLOOP_NONBLOCK);
			poll(NULL, 0, 1);
		}
		ck_assert_uint_eq(evbuffer_get_length(
		                      bufferevent_get_output(bev)),
		                  0);
		/* Only now: a write event timed earlier would have grown the
		 * heap already. */
		struct timeval write_timeout = { 0, 200 * 1000 };
		ck_assert_int_eq(evchat_set_timeouts(chat, NULL,
		                                     &write_timeout),
		                 0);

		close_events = 0;
		nallocs = 0;
		fail_at = i;
		ck_assert_int_eq(evchat_close_when_done(chat), 0);
		long long end = now_ms() + 3000;
		while (chat != NULL && now_ms() < end) {
			event_base_loop(base, EVLOOP_NONBLOCK);
			poll(NULL, 0, 1);
		}
		fail_at = 0;
		ck_assert_msg(chat == NULL,
		              "allocation %lu of the close "
		              "failed: no event after 3 s",
		              i);
		ck_assert_msg(close_events &
		                  (EVCHAT_EVENT_ERROR | EVCHAT_EVENT_TIMEOUT),
		              "allocation %lu: event 0x%x", i,
		              (unsigned)close_events);
		for (int k = 0; k < 8; k++)
			event_free(filler[k]);
		event_base_free(base);
		close(peer);
	}
}
END_TEST

static short frame_clock_events;

static void frame_clock_event(struct evchat *chat, short events, void *arg)
{
	frame_clock_events |= events;
}

/* A base whose timer heap is full (libevent's first size, 8), so that
 * the next timer added grows it; and a channel on a socketpair. */
static struct event_base *full_heap_base(struct event *filler[8],
                                         struct evchat **chat, int *peer)
{
	struct event_base *base = event_base_new();
	ck_assert_ptr_nonnull(base);
	struct timeval minute = { 60, 0 };
	for (int k = 0; k < 8; k++) {
		filler[k] = evtimer_new(base, (event_callback_fn)abort, NULL);
		ck_assert_ptr_nonnull(filler[k]);
		ck_assert_int_eq(evtimer_add(filler[k], &minute), 0);
	}
	*chat = pair_channel(base, peer);
	evchat_setcb(*chat, NULL, NULL, frame_clock_event, NULL);
	ck_assert_int_eq(evchat_set_terminator_line(*chat, EVCHAT_EOL_LF), 0);
	return base;
}

static void free_full_heap_base(struct event_base *base,
                                struct event *filler[8], struct evchat *chat,
                                int peer)
{
	evchat_free(chat);
	for (int k = 0; k < 8; k++)
		event_free(filler[k]);
	event_base_free(base);
	close(peer);
}

/* Runs the loop until an event or ms pass. */
static void run_until_frame_clock_event(struct event_base *base, int ms)
{
	long long end = now_ms() + ms;
	while (frame_clock_events == 0 && now_ms() < end) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		poll(NULL, 0, 1);
	}
}

/* The frame clock is a timer too, and arming it ignored a failure to add
 * it: out of memory, a peer dribbling a frame was never cut off, the
 * frame timeout silently off. Arming it from the input loop must end the
 * connection with an error instead, and evchat_set_frame_timeout() must
 * fail with ENOMEM; either way nothing goes unbounded in silence. */
START_TEST(frame_clock_out_of_memory_is_reported)
{
	struct timeval timeout = { 0, 100 * 1000 };
	struct event *filler[8];
	struct evchat *chat;
	int peer;

	/* Armed by the input loop as the frame's first bytes arrive, each
	 * of the loop's first allocations failed in turn. */
	for (unsigned long i = 1; i <= 8; i++) {
		struct event_base *base = full_heap_base(filler, &chat, &peer);
		ck_assert_int_eq(evchat_set_frame_timeout(chat, &timeout), 0);
		frame_clock_events = 0;
		nallocs = 0;
		fail_at = i;
		ck_assert_int_eq(send(peer, "dribble", 7, 0), 7);
		run_until_frame_clock_event(base, 2000);
		fail_at = 0;
		ck_assert_msg(frame_clock_events & (EVCHAT_EVENT_FRAME_TIMEOUT |
		                                    EVCHAT_EVENT_ERROR),
		              "allocation %lu failed: event 0x%x after 2 s, "
		              "want a frame timeout or an error",
		              i, (unsigned)frame_clock_events);
		free_full_heap_base(base, filler, chat, peer);
	}

	/* Armed by the call, a frame being in progress: the timer is made
	 * (allocation 1), then added (allocation 2, failed). */
	struct event_base *base = full_heap_base(filler, &chat, &peer);
	ck_assert_int_eq(send(peer, "dribble", 7, 0), 7);
	for (int k = 0; k < 20; k++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		poll(NULL, 0, 1);
	}
	frame_clock_events = 0;
	nallocs = 0;
	fail_at = 2;
	errno = 0;
	int r = evchat_set_frame_timeout(chat, &timeout);
	int err = errno;
	fail_at = 0;
	if (r == 0) {
		run_until_frame_clock_event(base, 2000);
		ck_assert_msg(frame_clock_events & EVCHAT_EVENT_FRAME_TIMEOUT,
		              "the frame timeout was accepted and never fired");
	} else {
		ck_assert_int_eq(err, ENOMEM);
	}
	free_full_heap_base(base, filler, chat, peer);
}
END_TEST

/* With EVCHAT_OPT_DIRECT_WRITE a read's replies are copied into the
 * thread's scratch and written from there; what the socket does not take
 * then, or what must go ahead of a producer, is copied into the batch.
 * Out of memory for that copy, bytes a push already accepted are lost:
 * the channel must fail and say so, not send the replies that follow
 * them (or none) as if nothing happened. */
struct scratch_case {
	int producer; /* 1: a producer pushed after the reply; 0: none */
	int push_result, push_errno;
	short events;
	int event_errno;
};

static int never_more(struct evchat *chat, struct evbuffer *out, size_t want,
                      void *arg)
{
	return 0;
}

static void scratch_found(struct evchat *chat, const unsigned char *frame,
                          size_t len, void *arg)
{
	struct scratch_case *c = arg;
	ck_assert_int_eq(evchat_push(chat, "lost\n", 5), 0);
	nallocs = 0;
	fail_at = 1; /* the copy out of the scratch */
	if (c->producer) {
		errno = 0;
		c->push_result = evchat_push_producer(chat, never_more, NULL,
		                                      NULL);
		c->push_errno = errno;
		fail_at = 0;
	}
}

static void scratch_event(struct evchat *chat, short events, void *arg)
{
	struct scratch_case *c = arg;
	c->events |= events;
	c->event_errno = errno;
}

START_TEST(reply_scratch_out_of_memory_fails_the_channel)
{
	for (int producer = 1; producer >= 0; producer--) {
		struct event_base *base = event_base_new();
		ck_assert_ptr_nonnull(base);
		int peer;
		struct evchat *chat =
		    pair_channel_with(base, &peer, EVCHAT_OPT_DIRECT_WRITE);
		struct scratch_case c = { producer, 0, 0, 0, 0 };
		evchat_setcb_bytes(chat, NULL, scratch_found, scratch_event,
		                   &c);
		ck_assert_int_eq(evchat_set_terminator_line(chat,
		                                            EVCHAT_EOL_LF),
		                 0);
		size_t backlog = 0;
		if (!producer) {
			/* Bytes already waiting in the output (the peer does
			 * not read), so the replies cannot be written now. */
			static char block[1 << 20];
			memset(block, 'b', sizeof(block));
			ck_assert_int_eq(evchat_push(chat, block,
			                             sizeof(block)),
			                 0);
			for (int k = 0; k < 20; k++)
				event_base_loop(base, EVLOOP_NONBLOCK);
			backlog = evchat_get_queued(chat);
			ck_assert_uint_gt(backlog, 0);
		}
		ck_assert_int_eq(send(peer, "go\n", 3, 0), 3);
		long long end = now_ms() + 2000;
		while (c.events == 0 && now_ms() < end) {
			event_base_loop(base, EVLOOP_NONBLOCK);
			poll(NULL, 0, 1);
		}
		fail_at = 0;
		if (producer) {
			ck_assert_int_eq(c.push_result, -1);
			ck_assert_int_eq(c.push_errno, ENOMEM);
		}
		ck_assert_msg((c.events & EVCHAT_EVENT_ERROR) &&
		                  (c.events & EVCHAT_EVENT_WRITING),
		              "%s: events 0x%x, want an error writing",
		              producer ? "producer" : "backlog",
		              (unsigned)c.events);
		ck_assert_int_eq(c.event_errno, ENOMEM);
		/* The lost reply never reaches the peer. */
		char buf[4096];
		ssize_t n;
		while ((n = recv(peer, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
			ck_assert_ptr_null(memchr(buf, 'l', (size_t)n));
		evchat_free(chat);
		event_base_free(base);
		close(peer);
	}
}
END_TEST

/* Runs the loop and reads what the channel sends the peer into buf, until
 * `want` bytes came or `ms` passed; returns how many came. */
static size_t receive_for(struct event_base *base, int peer, char *buf,
                          size_t size, size_t want, int ms)
{
	size_t got = 0;
	long long end = now_ms() + ms;
	while (got < want && now_ms() < end) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		ssize_t n = recv(peer, buf + got, size - got, MSG_DONTWAIT);
		if (n > 0)
			got += (size_t)n;
		else
			poll(NULL, 0, 1);
	}
	return got;
}

/* The scratch is the thread's, one channel at a time: every way a read
 * ends must give it back, or every later channel silently reserves room
 * again. Checked after a read answered at once, after a read whose
 * replies waited, and after a hook that freed its channel. */
static void scratch_reply_then(struct evchat *chat, const unsigned char *frame,
                               size_t len, void *arg)
{
	int *free_it = arg;
	ck_assert_int_eq(evchat_push(chat, "reply\n", 6), 0);
	ck_assert_int_eq(chat->room_scratch, 1);
	if (*free_it)
		evchat_free(chat);
}

START_TEST(reply_scratch_is_given_back)
{
	for (int free_it = 0; free_it <= 1; free_it++) {
		struct event_base *base = event_base_new();
		ck_assert_ptr_nonnull(base);
		int peer;
		struct evchat *chat =
		    pair_channel_with(base, &peer, EVCHAT_OPT_DIRECT_WRITE);
		evchat_setcb_bytes(chat, NULL, scratch_reply_then, NULL,
		                   &free_it);
		ck_assert_int_eq(evchat_set_terminator_line(chat,
		                                            EVCHAT_EOL_LF),
		                 0);
		ck_assert_int_eq(send(peer, "a\nb\n", 4, 0), 4);
		char buf[64];
		/* Freed, it answers nothing: wait a while for nothing. */
		size_t got = receive_for(base, peer, buf, sizeof(buf),
		                         free_it ? 6 : 12,
		                         free_it ? 300 : 2000);
		ck_assert_uint_eq(got, free_it ? 0u : 12u);
		unsigned char *scratch = evchat__scratch_take();
		ck_assert_msg(scratch != NULL, "the scratch was kept (%s)",
		              free_it ? "freed in the hook" : "replied");
		evchat__scratch_give();
		if (!free_it)
			evchat_free(chat);
		event_base_free(base);
		close(peer);
	}
}
END_TEST

/* evchat_thread_cleanup() frees what the thread keeps between reads,
 * refuses while a hook's frame or replies are in that room, and leaves
 * channels working. Variants: no options (nothing in use inside the
 * hook), a direct read (the frame is lent from the read scratch), a
 * direct write (the reply waits in the reply scratch). */
struct cleanup_run {
	int frames;
	int in_hook; /* what the call returned inside the hook */
	int in_hook_errno;
	char last[16];
};

static void cleanup_in_hook(struct evchat *chat, const unsigned char *frame,
                            size_t len, void *arg)
{
	struct cleanup_run *run = arg;
	ck_assert_int_eq(evchat_push_line(chat, frame, len), 0);
	errno = 0;
	run->in_hook = evchat_thread_cleanup();
	run->in_hook_errno = errno;
	snprintf(run->last, sizeof(run->last), "%.*s", (int)len,
	         (const char *)frame);
	run->frames++;
}

START_TEST(thread_cleanup_frees_the_spares)
{
	static const unsigned options[] = { 0, EVCHAT_OPT_DIRECT_READ,
		                            EVCHAT_OPT_DIRECT_WRITE };
	const int busy = options[_i] != 0;
	ck_assert_int_eq(evchat_thread_cleanup(), 0);
	long before = live_blocks;

	struct event_base *base = event_base_new();
	ck_assert_ptr_nonnull(base);
	int peer;
	struct evchat *chat = pair_channel_with(base, &peer, options[_i]);
	struct cleanup_run run = { 0 };
	evchat_setcb_bytes(chat, NULL, cleanup_in_hook, NULL, &run);
	ck_assert_int_eq(evchat_set_terminator_line(chat, EVCHAT_EOL_LF), 0);
	/* A line per read, each answered: after a cleanup inside the first
	 * hook the second is framed and answered as ever. */
	const char *lines[] = { "first\n", "second\n" };
	char got[32];
	for (int k = 0; k < 2; k++) {
		ck_assert_int_eq(send(peer, lines[k], strlen(lines[k]), 0),
		                 (ssize_t)strlen(lines[k]));
		long long end = now_ms() + 2000;
		while (run.frames < k + 1 && now_ms() < end) {
			event_base_loop(base, EVLOOP_NONBLOCK);
			poll(NULL, 0, 1);
		}
		ck_assert_int_eq(run.frames, k + 1);
		ck_assert_int_eq(run.in_hook, busy ? -1 : 0);
		ck_assert_int_eq(run.in_hook_errno, busy ? EBUSY : 0);
	}
	ck_assert_str_eq(run.last, "second");
	ck_assert_uint_eq(receive_for(base, peer, got, sizeof(got), 13, 2000),
	                  13);
	ck_assert_int_eq(memcmp(got, "first\nsecond\n", 13), 0);

	evchat_free(chat);
	event_base_free(base);
	close(peer);
	/* What the thread keeps outlives the channel and its loop... */
	ck_assert_int_gt(live_blocks, before);
	/* ...until the call, which is harmless twice. */
	ck_assert_int_eq(evchat_thread_cleanup(), 0);
	ck_assert_int_eq(live_blocks, before);
	ck_assert_int_eq(evchat_thread_cleanup(), 0);
	ck_assert_int_eq(live_blocks, before);
}
END_TEST

static int listener_accepts;

static int listener_accepts;

static void count_accept(struct evchat_listener *l, struct evchat *chat,
                         const struct sockaddr *sa, int salen, void *arg)
{
	listener_accepts++;
	evchat_free(chat);
}

/* Valgrind only pretends to lower RLIMIT_NOFILE (accept() succeeds, then
 * the descriptor is closed and EMFILE returned), which loses the
 * connection this test waits for. Its preload library gives it away. */
static int under_valgrind(void)
{
	const char *preload = getenv("LD_PRELOAD");
	return preload != NULL && strstr(preload, "vgpreload") != NULL;
}

/* When accept() fails for want of descriptors, the listener stops and
 * retries after a pause, on a timer. Adding that timer can need memory
 * (a full timer heap grows), and its failure was ignored: the listener
 * stayed stopped for good, deaf to every later connection. */
START_TEST(listener_retry_out_of_memory_accepts_again)
{
	if (under_valgrind()) {
		printf("%s: skipped under valgrind\n", __func__);
		return;
	}
	struct event_base *base = event_base_new();
	ck_assert_ptr_nonnull(base);
	struct event *filler[8];
	struct timeval minute = { 60, 0 };
	for (int k = 0; k < 8; k++) {
		filler[k] = evtimer_new(base, (event_callback_fn)abort, NULL);
		ck_assert_ptr_nonnull(filler[k]);
		ck_assert_int_eq(evtimer_add(filler[k], &minute), 0);
	}
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct evconnlistener *lev =
	    evconnlistener_new_bind(base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE, 16,
	                            (struct sockaddr *)&sin, sizeof(sin));
	ck_assert_ptr_nonnull(lev);
	ck_assert_int_eq(getsockname(evconnlistener_get_fd(lev),
	                             (struct sockaddr *)&sin, &slen),
	                 0);
	struct evchat_listener *l = evchat_listener_new(lev, 0, count_accept,
	                                                NULL);
	ck_assert_ptr_nonnull(l);
	listener_accepts = 0;
	int client = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(client, 0);
	ck_assert_int_eq(connect(client, (struct sockaddr *)&sin, sizeof(sin)),
	                 0);

	/* No descriptor left: every number up to the limit is taken. */
	struct rlimit saved, lower;
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
	int highest = client, plugs[256], nplugs = 0;
	for (int fd = 0; fd < highest; fd++) {
		if (fcntl(fd, F_GETFD) < 0) {
			ck_assert_int_lt(nplugs, 256);
			ck_assert_int_eq(dup2(highest, fd), fd);
			plugs[nplugs++] = fd;
		}
	}
	lower = saved;
	lower.rlim_cur = (rlim_t)highest + 1;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &lower), 0);

	/* The accept fails; the retry timer's growth of the heap too. */
	nallocs = 0;
	fail_at = 1;
	for (int k = 0; k < 20; k++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		poll(NULL, 0, 1);
	}
	fail_at = 0;
	ck_assert_uint_ge(nallocs, 1);

	/* Descriptors come back: the waiting client must be accepted. */
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
	for (int k = 0; k < nplugs; k++)
		close(plugs[k]);
	long long end = now_ms() + 3000;
	while (listener_accepts == 0 && now_ms() < end) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		poll(NULL, 0, 1);
	}
	ck_assert_msg(listener_accepts == 1, "the listener accepted nothing "
	                                     "after descriptors came back");
	evchat_listener_free(l);
	for (int k = 0; k < 8; k++)
		event_free(filler[k]);
	event_base_free(base);
	close(client);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The Check program */

static unsigned long clean_allocs[NSCRIPTS], clean_lib_allocs[NSCRIPTS];

START_TEST(torture_clean)
{
	for (size_t k = 0; k < NSCRIPTS; k++) {
		struct run r;
		scenario(&r, k, 0);
		ck_assert_msg(r.problem[0] == '\0', "clean %s run: %s",
		              scripts[k].name, r.problem);
	}
}
END_TEST

static void fail_one(size_t which, unsigned long i)
{
	struct run r;
	scenario(&r, which, i);
	if (nspared > 0)
		printf("torture: %s run %lu: allocation spared, not failed "
		       "(libevent ignores its failure there)\n",
		       scripts[which].name, i);
	ck_assert_msg(r.problem[0] == '\0',
	              "%s: allocation %lu of %lu failed (first failing call: "
	              "%s, errno %d; events %zu: 0x%x): %s",
	              scripts[which].name, i, clean_allocs[which],
	              r.failed_call ? r.failed_call : "none", r.failed_errno,
	              r.nevents, r.nevents ? (unsigned)r.events[0] : 0u,
	              r.problem);
}

START_TEST(torture_server)
{
	fail_one(0, (unsigned long)_i);
}
END_TEST

START_TEST(torture_client)
{
	fail_one(1, (unsigned long)_i);
}
END_TEST

int main(void)
{
	/* Before libevent allocates anything, as it requires. */
	event_set_mem_functions(torture_malloc, torture_realloc, torture_free);
	evchat__set_mem_functions(torture_lib_malloc, torture_free);
	event_set_log_callback(quiet_log);
	signal(SIGPIPE, SIG_IGN);
	build_script();

	snprintf(file_path, sizeof(file_path), "/tmp/evchat-torture-XXXXXX");
	int fd = mkstemp(file_path);
	if (fd < 0 || write(fd, FILE_TEXT, strlen(FILE_TEXT)) !=
	                  (ssize_t)strlen(FILE_TEXT)) {
		perror("torture: temporary file");
		return EXIT_FAILURE;
	}
	close(fd);

	/* backtrace() loads its unwinder on first use. */
	void *pcs[2];
	backtrace(pcs, 2);
	/* A first run lets libevent make what it makes once per process;
	 * the second counts the allocations of a run. */
	unsigned long total = 0;
	for (size_t k = 0; k < NSCRIPTS; k++) {
		struct run r;
		scenario(&r, k, 0);
		clean_allocs[k] = scenario(&r, k, 0);
		clean_lib_allocs[k] = nlib_allocs;
		total += clean_allocs[k];
		if (r.problem[0] != '\0') {
			fprintf(stderr,
			        "torture: the clean %s run failed: %s\n",
			        scripts[k].name, r.problem);
			unlink(file_path);
			return EXIT_FAILURE;
		}
		printf("torture: %s scenario: %lu allocations (%lu by evchat "
		       "itself, the rest by libevent)\n",
		       scripts[k].name, clean_allocs[k], clean_lib_allocs[k]);
	}
	printf("torture: failing each of the %lu in turn, one run each\n",
	       total);
	/* EVCHAT_TORTURE_ONLY=i replays run i of each scenario. */
	unsigned long only = strtoul(getenv("EVCHAT_TORTURE_ONLY")
	                                 ? getenv("EVCHAT_TORTURE_ONLY")
	                                 : "0",
	                             NULL, 10);

	Suite *s = suite_create("torture");
	TCase *tc = tcase_create("each allocation");
	tcase_add_test(tc, buffer_move_out_of_memory_keeps_bytes);
	tcase_add_test(tc, terminator_change_out_of_memory_keeps_header_bytes);
	tcase_add_test(tc, idle_channel_keeps_no_buffers);
	tcase_add_test(tc, set_timeouts_out_of_memory_changes_nothing);
	tcase_add_test(tc, first_need_setters_out_of_memory_change_nothing);
	tcase_add_test(tc, close_timer_out_of_memory_still_ends);
	tcase_add_test(tc, frame_clock_out_of_memory_is_reported);
	tcase_add_test(tc, reply_scratch_out_of_memory_fails_the_channel);
	tcase_add_test(tc, reply_scratch_is_given_back);
	tcase_add_loop_test(tc, thread_cleanup_frees_the_spares, 0, 3);
	tcase_add_test(tc, listener_retry_out_of_memory_accepts_again);
	tcase_add_test(tc, torture_clean);
	tcase_add_loop_test(tc, torture_server, only ? (int)only : 1,
	                    only ? (int)only + 1 : (int)clean_allocs[0] + 1);
	tcase_add_loop_test(tc, torture_client, only ? (int)only : 1,
	                    only ? (int)only + 1 : (int)clean_allocs[1] + 1);
	suite_add_tcase(s, tc);
	SRunner *runner = srunner_create(s);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	unlink(file_path);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
