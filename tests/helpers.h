/* Shared fixtures for the evchat tests: real sockets, real bufferevents. */
#ifndef EVCHAT_TEST_HELPERS_H_INCLUDED_
#define EVCHAT_TEST_HELPERS_H_INCLUDED_

#include <stddef.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "evchat.h"

/* What a channel's hooks saw, in order. Frames are stored back to back in
 * `frames` with their lengths in `frame_len`; in collect mode the collected
 * bytes between two found calls make up one frame. */
#define REC_MAX_FRAMES 65536
struct recorder {
	struct evbuffer *frames;   /* all frames' bytes, concatenated */
	size_t frame_len[REC_MAX_FRAMES];
	size_t nframes;
	struct evbuffer *collecting; /* collect mode: the frame so far */
	size_t ncollect_calls;
	short events[16];          /* each event hook call's flags */
	size_t nevents;
	size_t pending_at_event;   /* evchat_get_pending() length at the
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
/* Sets the recorder's hooks on chat, in collect mode or frame mode. */
void recorder_attach(struct evchat *chat, struct recorder *rec, int collect_mode);

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
void conn_close_peer(struct conn *c);

/* Writes all of data to fd (blocking until done, running no loop). */
void write_all(evutil_socket_t fd, const void *data, size_t len);
/* Runs the loop until nothing is left to do right now (bounded). */
void run_pending(struct event_base *base);
/* Runs the loop for up to ms milliseconds or until *done becomes nonzero. */
void run_until(struct event_base *base, const int *done, int ms);
/* Reads from the non-blocking peer into out while running the loop, until
 * the peer sees EOF or ms milliseconds pass. Returns 1 on EOF, else 0. */
int drain_peer_until_eof(struct event_base *base, evutil_socket_t peer,
                         struct evbuffer *out, int ms);

#endif
