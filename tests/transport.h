/*
 * Connections over every kind of bufferevent a channel may sit on, each
 * with a peer on the same event base that records what it receives.
 *
 * The kinds differ where closing can lose data: a socket must be shut down
 * and its bytes acknowledged, a pair must tell its partner EOF, a filter
 * must be flushed with BEV_FINISHED (ours holds back a partial block until
 * then, as a compressor holds its trailer), and TLS must send close_notify
 * or the peer sees a truncated stream.
 */
#ifndef EVCHAT_TEST_TRANSPORT_H_INCLUDED_
#define EVCHAT_TEST_TRANSPORT_H_INCLUDED_

#include <stddef.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "evchat.h"
#include "helpers.h"

enum transport_kind {
	TRANSPORT_TCP,    /* a socket bufferevent on loopback TCP */
	TRANSPORT_PAIR,   /* bufferevent_pair */
	TRANSPORT_FILTER, /* the block filter over loopback TCP */
#ifdef EVCHAT_TEST_TLS
	TRANSPORT_TLS,        /* bufferevent_openssl on the TCP socket */
	TRANSPORT_TLS_FILTER, /* bufferevent_openssl over a socket bufferevent */
	TRANSPORT_TLS_PAIR,   /* bufferevent_openssl over bufferevent_pair */
#endif
	TRANSPORT_NKINDS
};

/* The filter's block: bytes are coded and passed on in blocks of this
 * size, and a partial last block leaves only with BEV_FINISHED. */
#define TRANSPORT_BLOCK 1024

/* A reproducible byte stream: the little-endian words of xorshift32. */
struct prng_stream {
	ev_uint32_t state;
	ev_uint32_t word;   /* the word being handed out */
	unsigned word_left; /* its bytes not handed out yet */
};
void prng_stream_init(struct prng_stream *s, ev_uint32_t seed);
void prng_stream_fill(struct prng_stream *s, void *buf, size_t len);
/* Appends the next len bytes of the stream to buf. */
void prng_stream_add(struct prng_stream *s, struct evbuffer *buf, size_t len);

/* The other end of the connection: a bufferevent of the same kind. */
struct peer {
	struct bufferevent *bev; /* top layer */
	/* Everything received, in order; unless `expect` is set, in which
	 * case bytes are checked against it and dropped, so gigabytes take
	 * no memory. */
	struct evbuffer *received;
	struct prng_stream *expect;
	size_t nreceived;   /* all bytes received, kept or checked */
	size_t first_wrong; /* with `expect`: offset of the first byte that
	                       differed, or SIZE_MAX */
	int connected;      /* TLS: the handshake finished */
	/* How the stream ended, first: a clean end (BEV_EVENT_EOF without
	 * BEV_EVENT_ERROR: for TLS a close_notify) or an error (for TLS also
	 * a close without close_notify), with the socket's errno if any. */
	int eof;
	int error;
	int error_errno;
	size_t received_at_end; /* nreceived when eof or error came */
};

/* One connection and, once made, the channel on it. */
struct transport {
	int kind;
	struct event_base *base;
	/* The channel's side, for evchat_new() (which takes it); NULL after
	 * transport_chat(). */
	struct bufferevent *bev;
	/* The channel's bottom socket, -1 over a pair. Borrowed: the
	 * channel's bufferevent closes it. */
	evutil_socket_t chat_fd;
	evutil_socket_t peer_fd; /* the peer's bottom socket, or -1 */
	struct peer peer;

	/* Set by transport_chat(); NULL once the channel was freed through
	 * the hooks below. */
	struct evchat *chat;
	struct recorder rec;
	int collect_mode;
	/* Made with EVCHAT_OPT_AUTOFREE: `chat` is cleared at its first
	 * event, after which the test must not use it. */
	int autofree;
	size_t frames_at_event; /* frames delivered before the first event */
	/* Optional: called from the event hook after recording. */
	void (*on_event)(struct evchat *chat, short events,
	                 struct transport *t);
	/* Free the channel when it reports EVCHAT_EVENT_CLOSED, as a user
	 * would (freeing closes the socket). */
	int free_on_closed;
	/* What the peer had when CLOSED was reported, and what the channel
	 * still held then (evchat_get_queued(), and for TCP the bytes the
	 * kernel had not had acknowledged). */
	int closed_seen;
	size_t peer_received_at_closed;
	size_t queued_at_closed;
	size_t unacked_at_closed;
	void *tls; /* TLS contexts, freed with the transport */
};

#ifdef EVCHAT_TEST_TLS
#include <openssl/ssl.h>

/* A server context with a self-signed certificate made on the spot, and
 * a client context that does not check it. */
struct tls_contexts {
	SSL_CTX *server;
	SSL_CTX *client;
};
struct tls_contexts *tls_contexts_new(void);
void tls_contexts_free(struct tls_contexts *tls);
/* SSL_new(), failing the test if it fails. */
SSL *tls_new(SSL_CTX *ctx);
#endif

/* The kind's name, for note(). */
const char *transport_name(int kind);
/* Whether the kind's bottom layer is a bufferevent pair (no socket). */
int transport_on_pair(int kind);
/* Whether the kind has TLS layers. */
int transport_is_tls(int kind);

/* Connects a channel side and a peer of the given kind on base (which the
 * caller keeps and frees after transport_free()), finishing the TLS
 * handshake first. Fails the test if anything fails. */
void transport_open(struct transport *t, struct event_base *base, int kind);
/* The same for a TLS kind, except that the peer never starts the
 * handshake: it is a plain socket (or a plain socket bufferevent under
 * nothing), so the channel's side waits in its handshake until the test
 * makes the peer write or close. */
void transport_open_unshaken(struct transport *t, struct event_base *base,
                             int kind);
/* Frees the channel if still there, the peer and the contexts. */
void transport_free(struct transport *t);

/* Makes the channel on t->bev (flags for evchat_new()), with the recorder
 * as its hooks, in collect or frame mode. */
struct evchat *transport_chat(struct transport *t, unsigned flags,
                              int collect_mode);

/* ---- the peer ---- */

/* Sends bytes to the channel. */
void peer_write(struct transport *t, const void *data, size_t len);
/* Sends them in pieces of 1..max_piece bytes, letting the loop run
 * between pieces so the channel reads them in small, odd cuts. */
void peer_write_cut(struct transport *t, const void *data, size_t len,
                    size_t max_piece, ev_uint32_t *seed);
/* From now on, checks received bytes against this stream (borrowed). */
void peer_expect_stream(struct transport *t, struct prng_stream *expect);
void peer_stop_reading(struct transport *t);
void peer_start_reading(struct transport *t);
/* Ends the peer's sending cleanly, as the kind does: writes what it holds
 * (a filter's last block, through BEV_FINISHED), sends TLS close_notify,
 * then shuts the socket down for writing (a pair tells its partner EOF).
 * The peer goes on reading. Runs the loop until that is done. */
void peer_close(struct transport *t);
/* The peer's bottom layer: a socket bufferevent, or the pair's end. */
struct bufferevent *peer_bottom(struct transport *t);
/* Ends the peer's bottom layer for writing, and nothing above it: shuts
 * its socket down (a pair tells its partner EOF). Over TLS, an end
 * without close_notify. */
void peer_end_below(struct transport *t);

/* ---- running the loop ---- */

/* Runs the loop until the peer saw EOF or an error, failing the test if
 * neither came within ms. */
void run_until_peer_end(struct transport *t, int ms);
/* Runs the loop until the peer received n bytes (or its stream ended), or
 * ms passed. */
void run_until_peer_has(struct transport *t, size_t n, int ms);
/* Runs the loop until the channel reported an event, or ms passed. */
void run_until_chat_event(struct transport *t, int ms);
/* Runs the loop until the channel has delivered n frames (or reported an
 * event), or ms passed. */
void run_until_chat_frames(struct transport *t, size_t n, int ms);

/* Megabytes for the big streams: full_mib, scaled down when the
 * environment sets EVCHAT_TEST_STREAM_MIB (CI does so under valgrind:
 * its value / 4 stands for 64 MiB). At least 1. */
size_t test_stream_mib(size_t full_mib);

/* Fails the test unless the peer's stream ended first with a clean EOF. */
void expect_peer_clean_end(struct transport *t);
/* Fails the test unless the channel reported exactly one event, with
 * `flag` in it; prints every event seen otherwise. */
void expect_only_event(struct transport *t, short flag);
/* Fails the test unless the peer received exactly `len` bytes of the
 * stream it expected, then a clean EOF. */
void expect_peer_stream_then_eof(struct transport *t, size_t len);

#endif
