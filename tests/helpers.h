/* Shared fixtures for the evchat tests: real sockets, real bufferevents. */
#ifndef EVCHAT_TEST_HELPERS_H_INCLUDED_
#define EVCHAT_TEST_HELPERS_H_INCLUDED_

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <check.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "evchat.h"

/* A string literal and its length, NULs included. */
#define LIT(s) (s), (sizeof(s) - 1)

/* Where a loop of cases is, printed with every failure of the assertions
 * below: one test runs many cases, and a failure must say which. */
extern char test_ctx[256];
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------------ */
/* Recording what the hooks see */

/* What a channel's hooks saw, in order. Frames are stored back to back in
 * `frames` with their lengths in `frame_len`; in collect mode the collected
 * bytes between two found calls make up one frame. */
#define REC_MAX_FRAMES 65536
struct recorder {
	struct evbuffer *frames; /* all frames' bytes, concatenated */
	size_t frame_len[REC_MAX_FRAMES];
	size_t nframes;
	struct evbuffer *collecting; /* collect mode: the frame so far */
	size_t ncollect_calls;
	short events[16]; /* each event hook call's flags */
	int errnos[16];   /* and errno as the hook found it */
	size_t nevents;
	size_t pending_at_event; /* evchat_get_pending() length at the
	                              first event */
	/* Optional scripted behaviour: called from found after recording. */
	void (*on_found)(struct evchat *chat, struct recorder *rec);
	void *user;
};

void recorder_init(struct recorder *rec);
void recorder_clear(struct recorder *rec);
/* Frame i as a NUL-terminated malloc'd string (caller frees). */
char *recorder_frame(const struct recorder *rec, size_t i);
/* Hooks that record into the `struct recorder *` passed as arg. */
void recorder_collect_cb(struct evchat *chat, struct evbuffer *data, void *arg);
void recorder_found_cb(struct evchat *chat, struct evbuffer *frame, void *arg);
void recorder_event_cb(struct evchat *chat, short events, void *arg);

/* ------------------------------------------------------------------ */
/* Terminators as data */

/* One terminator, as a test script says it. */
struct term_spec {
	enum evchat_term kind;
	char str[16]; /* EVCHAT_TERM_STRING: its len bytes */
	size_t len;
	ev_uint64_t count; /* EVCHAT_TERM_COUNT */
};

/* Sets t on chat; the test fails if the channel refuses it. */
void apply_term(struct evchat *chat, const struct term_spec *t);

/* A script of terminators, switched from the found hook as a protocol
 * would: the caller sets terms[0], and after the k-th frame the hook sets
 * terms[k % nterms]. To use one, point the recorder's `user` at it and set
 * its on_found to follow_script(). */
struct term_script {
	const struct term_spec *terms;
	size_t nterms;
	size_t nfound;
};
void follow_script(struct evchat *chat, struct recorder *rec);

/* ------------------------------------------------------------------ */
/* Connections and the loop */

/* One connection: `bev` is the channel side, `peer` the raw other end
 * (a non-blocking socket the test reads and writes directly). */
struct conn {
	struct event_base *base;
	struct bufferevent *bev;
	evutil_socket_t peer;
};

/* A connected AF_UNIX socketpair. Returns 0 or -1. */
int conn_socketpair(struct conn *c, struct event_base *base);
/* A connected loopback TCP pair (127.0.0.1, ephemeral port). */
int conn_tcp(struct conn *c, struct event_base *base);
/* The same with the peer's SO_RCVBUF and SO_SNDBUF set before it connects
 * (0 leaves one as the kernel picks it). */
int conn_tcp_sized(struct conn *c, struct event_base *base, int peer_rcvbuf,
                   int peer_sndbuf);
void conn_close_peer(struct conn *c);

/* Writes all of data to fd (blocking until done, running no loop). */
void write_all(evutil_socket_t fd, const void *data, size_t len);
/* A clock for the timeouts below, in milliseconds. */
long long now_ms(void);
/* Runs one pass of the loop, waiting up to usec for something to do. */
void run_tick(struct event_base *base, int usec);
/* Runs the loop until nothing is left to do right now (bounded). */
void run_pending(struct event_base *base);
/* Runs the loop for up to ms milliseconds or until *done becomes nonzero. */
void run_until(struct event_base *base, const int *done, int ms);
/* Runs the loop for ms milliseconds whatever happens: at least one turn,
 * then whatever that left ready, however late the process got here. */
void run_for(struct event_base *base, int ms);
/* Reads from the non-blocking peer into out while running the loop, until
 * the peer sees EOF or ms milliseconds pass. Returns 1 on EOF, else 0. */
int drain_peer_until_eof(struct event_base *base, evutil_socket_t peer,
                         struct evbuffer *out, int ms);
/* The same as an assertion: the test fails unless c's peer sees EOF. */
void read_peer_to_eof(struct conn *c, struct evbuffer *out, int ms);
/* Runs the loop until *chat is NULL (a hook freed it) or ms pass. Over
 * TCP a close completes after the peer's EOF: once the peer has also
 * acknowledged every byte. */
void run_until_freed(struct event_base *base, struct evchat *const *chat,
                     int ms);

/* ------------------------------------------------------------------ */
/* One channel on one connection, and what its hooks saw */

struct harness {
	struct event_base *base;
	struct conn c;
	struct evchat *chat; /* NULL once the event hook freed it */
	struct recorder rec; /* rec.user is the test's, for its found hooks */
	int collect_mode;
	/* Free the channel on EVCHAT_EVENT_CLOSED, as a user would; that
	 * closes the socket, so the peer sees EOF. */
	int free_on_closed;
	/* What the first event hook call saw, to check what came first. */
	size_t frames_at_event;
	struct evbuffer *unfinished_at_event;
};

/* A channel on a new base, over a socketpair or loopback TCP, in collect
 * mode (a frame is what collect gathered) or frame mode. */
struct harness *harness_new(int collect_mode, int tcp);
/* The same on a base of the caller's making, which the harness then owns. */
struct harness *harness_new_on(struct event_base *base, int collect_mode,
                               int tcp);
/* The same with options for evchat_new() (EVCHAT_OPT_DIRECT_READ...). */
struct harness *harness_new_opts(struct event_base *base, int collect_mode,
                                 int tcp, unsigned flags);
void harness_free(struct harness *h);
/* The harness's event hook, for tests that set hooks of their own: keeps
 * what was unfinished at the first event, then records the event (and
 * frees the channel at CLOSED if free_on_closed). arg is the harness. */
void harness_event_cb(struct evchat *chat, short events, void *arg);
/* Sets the harness's hooks again, in collect mode or frame mode. */
void harness_set_mode(struct harness *h, int collect_mode);

/* The bytes of the frame not finished yet: gathered by the channel in
 * frame mode, by the recorder in collect mode. */
struct evbuffer *unfinished(struct harness *h);
/* How many bytes the channel holds itself (evchat_get_pending()). */
size_t pending_len(struct harness *h);

/* Over TCP bytes may still be on their way after send(); these run the
 * loop until there are n frames, or n unfinished bytes, or an event; all
 * stop at an event, and after ms milliseconds. */
void run_until_frames(struct harness *h, size_t n, int ms);
void run_until_unfinished(struct harness *h, size_t n, int ms);
void run_until_event(struct harness *h, int ms);

/* Sends bytes from the peer and lets the channel read them. write_all()
 * would block without running the loop once the socket buffer is full, so
 * big inputs would deadlock; here the loop runs whenever send() cannot.
 * Stops sending once the channel reported an event, since it may have
 * stopped reading. */
void feed(struct harness *h, const void *data, size_t len);
/* A second channel on the peer's end of the harness's socketpair, for
 * round trips. The harness still closes the socket; free this first. */
struct evchat *channel_on_peer(struct harness *h);
/* Reads what the channel wrote: closes it once everything went out. */
void read_written(struct harness *h, struct evbuffer *out);
/* "collect" or "frame", for note(). */
const char *mode_name(int collect);

/* ------------------------------------------------------------------ */
/* Randomness and memory */

/* A small PRNG of our own, so a seed gives the same cases on every C
 * library and a failure can be replayed. */
ev_uint32_t xorshift32(ev_uint32_t *state);
/* A number below n. */
size_t rnd(ev_uint32_t *state, size_t n);

/* Bytes the heap holds, where the C library can tell (0 elsewhere, and
 * under valgrind, which replaces malloc). */
size_t heap_in_use(void);

/* Whether the environment sets EVCHAT_TEST_QUICK: exhaustive loops (every
 * cut of a stream, say) then take a sample, and the longest streams are
 * left out. CI sets it under valgrind, where each case costs some thirty
 * times as much; the plain and sanitizer runs take every case. */
int test_quick(void);

/* ------------------------------------------------------------------ */
/* Assertions that print the bytes involved, after test_ctx */

/* A printable rendering of bytes for failure messages (malloc'd; the
 * assertions leak it, since they only make it when failing anyway). */
char *printable(const void *data, size_t len);

/* buf holds exactly want; `what` names it in the failure message. */
void expect_bytes(const char *what, struct evbuffer *buf, const void *want,
                  size_t len);

struct span {
	const char *p;
	size_t len;
};

/* The recorder holds exactly these frames. */
void expect_frames(const struct recorder *rec, const struct span *want,
                   size_t n);
void expect_text_frames(const struct recorder *rec, const char *const *want,
                        size_t n);

#define EXPECT_FRAMES(rec, ...)                                                \
	do {                                                                   \
		const char *const want_[] = { __VA_ARGS__ };                   \
		expect_text_frames((rec), want_,                               \
		                   sizeof(want_) / sizeof(want_[0]));          \
	} while (0)

/* Exactly one event came, and it was this one. */
void expect_one_event(const struct recorder *rec, short flag);

/* call fails: returns -1 and sets errno to err (set by the call itself:
 * errno is cleared first). */
#define ASSERT_FAILS(call, err)                                                \
	do {                                                                   \
		errno = 0;                                                     \
		ck_assert_int_eq((call), -1);                                  \
		ck_assert_msg(errno == (err), "%s: errno %d (%s), want %s",    \
		              #call, errno, strerror(errno), #err);            \
	} while (0)

#endif
