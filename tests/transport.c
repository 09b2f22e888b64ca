/* Connections over every kind of bufferevent; see transport.h. */
#include "transport.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <check.h>
#include <event2/bufferevent.h>

#ifdef EVCHAT_TEST_TLS
#include <event2/bufferevent_ssl.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#endif

static const char *const kind_names[TRANSPORT_NKINDS] = {
	[TRANSPORT_TCP] = "tcp",
	[TRANSPORT_PAIR] = "pair",
	[TRANSPORT_FILTER] = "filter",
#ifdef EVCHAT_TEST_TLS
	[TRANSPORT_TLS] = "tls",
	[TRANSPORT_TLS_FILTER] = "tls-filter",
	[TRANSPORT_TLS_PAIR] = "tls-pair",
#endif
};

int transport_on_pair(int kind)
{
#ifdef EVCHAT_TEST_TLS
	if (kind == TRANSPORT_TLS_PAIR)
		return 1;
#endif
	return kind == TRANSPORT_PAIR;
}

int transport_is_tls(int kind)
{
#ifdef EVCHAT_TEST_TLS
	return kind == TRANSPORT_TLS || kind == TRANSPORT_TLS_FILTER ||
	       kind == TRANSPORT_TLS_PAIR;
#else
	(void)kind;
	return 0;
#endif
}

const char *transport_name(int kind)
{
	ck_assert_int_ge(kind, 0);
	ck_assert_int_lt(kind, TRANSPORT_NKINDS);
	return kind_names[kind];
}

/* ------------------------------------------------------------------ */
/* The byte stream */

void prng_stream_init(struct prng_stream *s, ev_uint32_t seed)
{
	memset(s, 0, sizeof(*s));
	s->state = seed ? seed : 1; /* xorshift never leaves 0 */
}

void prng_stream_fill(struct prng_stream *s, void *buf, size_t len)
{
	unsigned char *p = buf;
	for (size_t i = 0; i < len; i++) {
		if (s->word_left == 0) {
			s->word = xorshift32(&s->state);
			s->word_left = 4;
		}
		p[i] = (unsigned char)s->word;
		s->word >>= 8;
		s->word_left--;
	}
}

void prng_stream_add(struct prng_stream *s, struct evbuffer *buf, size_t len)
{
	while (len > 0) {
		size_t n = len < (1u << 20) ? len : (1u << 20);
		struct evbuffer_iovec v;
		ck_assert_int_eq(evbuffer_reserve_space(buf, (ev_ssize_t)n, &v,
		                                        1),
		                 1);
		prng_stream_fill(s, v.iov_base, n);
		v.iov_len = n;
		ck_assert_int_eq(evbuffer_commit_space(buf, &v, 1), 0);
		len -= n;
	}
}

/* ------------------------------------------------------------------ */
/* The block filter: a stand-in for a compressor */

/* Each byte is XORed with a key that depends on its offset in the stream,
 * so a lost, repeated or reordered byte garbles what follows. The output
 * side passes on only whole blocks and keeps a partial last block to
 * itself until it is flushed with BEV_FINISHED, as zlib keeps its last
 * bytes and trailer: a close that skips that flush loses them. */
struct block_codec {
	ev_uint64_t in_pos;    /* bytes decoded so far */
	ev_uint64_t out_pos;   /* bytes encoded so far */
	struct evbuffer *held; /* accepted, not yet a whole block */
	/* The peer's codec also lets a partial block go on BEV_FLUSH (as
	 * zlib's Z_SYNC_FLUSH), so the test can send a request in full. The
	 * channel's does not: only BEV_FINISHED frees its last block. */
	int flush_on_sync;
};

static unsigned char codec_key(ev_uint64_t pos)
{
	return (unsigned char)((((ev_uint32_t)pos * 2654435761u) >> 13) ^
	                       (ev_uint32_t)(pos >> 10));
}

static enum bufferevent_filter_result
codec_encode(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
             enum bufferevent_flush_mode mode, void *ctx)
{
	struct block_codec *c = ctx;
	unsigned char block[TRANSPORT_BLOCK];
	/* Everything is taken in at once, as a compressor does, so src is
	 * left empty: libevent calls again while src holds bytes and the
	 * filter says BEV_OK. The limit is a hint we may exceed. */
	evbuffer_add_buffer(c->held, src);
	size_t held;
	int whole_only = mode == BEV_NORMAL ||
	                 (mode == BEV_FLUSH && !c->flush_on_sync);
	while ((held = evbuffer_get_length(c->held)) >= TRANSPORT_BLOCK ||
	       (held > 0 && !whole_only)) {
		size_t n = held < TRANSPORT_BLOCK ? held : TRANSPORT_BLOCK;
		evbuffer_remove(c->held, block, n);
		for (size_t i = 0; i < n; i++)
			block[i] ^= codec_key(c->out_pos++);
		if (evbuffer_add(dst, block, n) < 0)
			return BEV_ERROR;
	}
	return BEV_OK;
}

static enum bufferevent_filter_result
codec_decode(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
             enum bufferevent_flush_mode mode, void *ctx)
{
	struct block_codec *c = ctx;
	unsigned char chunk[4096];
	size_t n;
	if (evbuffer_get_length(src) == 0)
		return BEV_NEED_MORE;
	while ((n = (size_t)evbuffer_remove(src, chunk, sizeof(chunk))) > 0) {
		for (size_t i = 0; i < n; i++)
			chunk[i] ^= codec_key(c->in_pos++);
		if (evbuffer_add(dst, chunk, n) < 0)
			return BEV_ERROR;
	}
	return BEV_OK;
}

static void codec_free(void *ctx)
{
	struct block_codec *c = ctx;
	evbuffer_free(c->held);
	free(c);
}

/* A block filter over `below`, which it takes. */
static struct bufferevent *block_filter_new(struct bufferevent *below,
                                            int flush_on_sync)
{
	struct block_codec *c = calloc(1, sizeof(*c));
	ck_assert_ptr_nonnull(c);
	c->flush_on_sync = flush_on_sync;
	c->held = evbuffer_new();
	ck_assert_ptr_nonnull(c->held);
	struct bufferevent *bev = bufferevent_filter_new(below, codec_decode,
	                                                 codec_encode,
	                                                 BEV_OPT_CLOSE_ON_FREE,
	                                                 codec_free, c);
	ck_assert_ptr_nonnull(bev);
	return bev;
}

/* ------------------------------------------------------------------ */
/* TLS with a certificate made on the spot */

#ifdef EVCHAT_TEST_TLS
/* A self-signed certificate for key, valid for an hour: made at run time,
 * so the tree holds no key and needs no openssl tool. */
static X509 *self_signed(EVP_PKEY *key)
{
	X509 *cert = X509_new();
	ck_assert_ptr_nonnull(cert);
	ck_assert_int_eq(X509_set_version(cert, 2), 1);
	ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(cert), 1), 1);
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(cert), -60));
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(cert), 3600));
	ck_assert_int_eq(X509_set_pubkey(cert, key), 1);
	X509_NAME *name = X509_get_subject_name(cert);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(
	                     name, "CN", MBSTRING_ASC,
	                     (const unsigned char *)"localhost", -1, -1, 0),
	                 1);
	ck_assert_int_eq(X509_set_issuer_name(cert, name), 1);
	ck_assert_int_gt(X509_sign(cert, key, EVP_sha256()), 0);
	return cert;
}

struct tls_contexts *tls_contexts_new(void)
{
	struct tls_contexts *tls = calloc(1, sizeof(*tls));
	ck_assert_ptr_nonnull(tls);
	EVP_PKEY *key = EVP_EC_gen("P-256");
	ck_assert_ptr_nonnull(key);
	X509 *cert = self_signed(key);
	tls->server = SSL_CTX_new(TLS_server_method());
	ck_assert_ptr_nonnull(tls->server);
	ck_assert_int_eq(SSL_CTX_use_certificate(tls->server, cert), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(tls->server, key), 1);
	X509_free(cert);
	EVP_PKEY_free(key);
	tls->client = SSL_CTX_new(TLS_client_method());
	ck_assert_ptr_nonnull(tls->client);
	/* The tests are about the byte stream, not about trust. */
	SSL_CTX_set_verify(tls->client, SSL_VERIFY_NONE, NULL);
	return tls;
}

void tls_contexts_free(struct tls_contexts *tls)
{
	if (tls == NULL)
		return;
	SSL_CTX_free(tls->server);
	SSL_CTX_free(tls->client);
	free(tls);
}

SSL *tls_new(SSL_CTX *ctx)
{
	SSL *ssl = SSL_new(ctx);
	ck_assert_ptr_nonnull(ssl);
	return ssl;
}
#endif

/* ------------------------------------------------------------------ */
/* The peer's hooks */

static void peer_check(struct peer *p, struct evbuffer *in)
{
	unsigned char got[16384], want[16384];
	size_t n;
	while ((n = (size_t)evbuffer_remove(in, got, sizeof(got))) > 0) {
		prng_stream_fill(p->expect, want, n);
		if (p->first_wrong == SIZE_MAX && memcmp(got, want, n) != 0) {
			size_t i = 0;
			while (got[i] == want[i])
				i++;
			p->first_wrong = p->nreceived + i;
		}
		p->nreceived += n;
	}
}

static void peer_read_cb(struct bufferevent *bev, void *arg)
{
	struct peer *p = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	if (p->expect != NULL) {
		peer_check(p, in);
	} else {
		p->nreceived += evbuffer_get_length(in);
		evbuffer_add_buffer(p->received, in);
	}
}

static void peer_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct peer *p = arg;
	if (what & BEV_EVENT_CONNECTED) {
		p->connected = 1;
		return;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	/* Only how the stream ended first counts: whether it was complete.
	 * (libevent stops reading at the end anyway.) */
	if (p->eof || p->error)
		return;
	p->received_at_end = p->nreceived;
	if (what & BEV_EVENT_ERROR) {
		p->error = 1;
		p->error_errno = EVUTIL_SOCKET_ERROR();
	} else {
		p->eof = 1;
	}
}

/* ------------------------------------------------------------------ */
/* Making connections */

#ifdef EVCHAT_TEST_TLS
/* Takes the socket out of a socket bufferevent and frees the rest, for
 * bufferevent_openssl_socket_new(), which wants a bare socket. */
static evutil_socket_t take_fd(struct bufferevent *bev)
{
	evutil_socket_t fd = bufferevent_getfd(bev);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bufferevent_setfd(bev, -1), 0);
	bufferevent_free(bev);
	return fd;
}

static void handshake_event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (what & BEV_EVENT_CONNECTED)
		*(int *)arg = 1;
	else if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))
		*(int *)arg = -1;
}

/* TLS over the connection: over a pair, t->bev and t->peer.bev hold its
 * two ends, and become the layers below. */
static void open_tls(struct transport *t, struct conn *c, int shake)
{
	struct tls_contexts *tls = tls_contexts_new();
	t->tls = tls;
	SSL *server = tls_new(tls->server);
	int on_pair = t->kind == TRANSPORT_TLS_PAIR;
	struct bufferevent *peer_below = on_pair ? t->peer.bev : NULL;
	if (t->kind == TRANSPORT_TLS)
		t->bev = bufferevent_openssl_socket_new(
		    t->base, take_fd(c->bev), server, BUFFEREVENT_SSL_ACCEPTING,
		    BEV_OPT_CLOSE_ON_FREE);
	else
		t->bev = bufferevent_openssl_filter_new(
		    t->base, on_pair ? t->bev : c->bev, server,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (peer_below == NULL && (!shake || t->kind == TRANSPORT_TLS_FILTER)) {
		peer_below = bufferevent_socket_new(t->base, c->peer,
		                                    BEV_OPT_CLOSE_ON_FREE);
		ck_assert_ptr_nonnull(peer_below);
	}
	if (!shake) {
		t->peer.bev = peer_below;
		return;
	}
	SSL *client = tls_new(tls->client);
	if (t->kind == TRANSPORT_TLS)
		t->peer.bev = bufferevent_openssl_socket_new(
		    t->base, c->peer, client, BUFFEREVENT_SSL_CONNECTING,
		    BEV_OPT_CLOSE_ON_FREE);
	else
		t->peer.bev = bufferevent_openssl_filter_new(
		    t->base, peer_below, client, BUFFEREVENT_SSL_CONNECTING,
		    BEV_OPT_CLOSE_ON_FREE);
	ck_assert_ptr_nonnull(t->bev);
	ck_assert_ptr_nonnull(t->peer.bev);

	/* Tests start on an open session: the channel gets the bufferevent
	 * only after both sides finished the handshake. A wait for a
	 * condition, not a speed check: the first handshake of a valgrind
	 * run translates all of OpenSSL's handshake code and took 1.4-2.2 s
	 * on a loaded machine (about 0.1 s afterwards), so 3 s failed. */
	int server_done = 0;
	bufferevent_setcb(t->bev, NULL, NULL, handshake_event_cb, &server_done);
	bufferevent_setcb(t->peer.bev, NULL, NULL, peer_event_cb, &t->peer);
	/* Over sockets the handshake reads whether or not reading is
	 * enabled; over a pair only a layer that reads takes its partner's
	 * bytes. */
	if (t->kind == TRANSPORT_TLS_PAIR) {
		ck_assert_int_eq(bufferevent_enable(t->bev, EV_READ), 0);
		ck_assert_int_eq(bufferevent_enable(t->peer.bev, EV_READ), 0);
	}
	long long end = now_ms() + 30000;
	while ((server_done == 0 || !t->peer.connected) && !t->peer.error &&
	       server_done >= 0 && now_ms() < end)
		run_tick(t->base, 10000);
	ck_assert_msg(server_done == 1 && t->peer.connected,
	              "TLS handshake (%s): server %d, client %d, error %d",
	              transport_name(t->kind), server_done, t->peer.connected,
	              t->peer.error);
	bufferevent_setcb(t->bev, NULL, NULL, NULL, NULL);
}

static SSL *peer_ssl(struct transport *t)
{
	return bufferevent_openssl_get_ssl(t->peer.bev);
}
#endif

static void open_transport(struct transport *t, struct event_base *base,
                           int kind, int shake)
{
	(void)shake; /* for TLS kinds only */
	memset(t, 0, sizeof(*t));
	t->kind = kind;
	t->base = base;
	t->chat_fd = t->peer_fd = -1;
	t->peer.first_wrong = SIZE_MAX;
	t->peer.received = evbuffer_new();
	ck_assert_ptr_nonnull(t->peer.received);
	recorder_init(&t->rec);

	struct conn c;
	memset(&c, 0, sizeof(c));
	if (transport_on_pair(kind)) {
		struct bufferevent *pair[2];
		/* No deferred callbacks: a write runs the other side's read
		 * hook at once, inside the writer's call, the harder case
		 * for a channel's re-entrancy. */
		ck_assert_int_eq(
		    bufferevent_pair_new(base, BEV_OPT_CLOSE_ON_FREE, pair), 0);
		t->bev = pair[0];
		t->peer.bev = pair[1];
	} else {
		ck_assert_int_eq(conn_tcp(&c, base), 0);
		t->chat_fd = bufferevent_getfd(c.bev);
		t->peer_fd = c.peer;
	}
	switch (kind) {
	case TRANSPORT_TCP:
		t->bev = c.bev;
		t->peer.bev = bufferevent_socket_new(base, c.peer,
		                                     BEV_OPT_CLOSE_ON_FREE);
		break;
	case TRANSPORT_FILTER:
		t->bev = block_filter_new(c.bev, 0);
		t->peer.bev = block_filter_new(
		    bufferevent_socket_new(base, c.peer, BEV_OPT_CLOSE_ON_FREE),
		    1);
		break;
#ifdef EVCHAT_TEST_TLS
	case TRANSPORT_TLS:
	case TRANSPORT_TLS_FILTER:
	case TRANSPORT_TLS_PAIR:
		open_tls(t, &c, shake);
		break;
#endif
	default:
		break;
	}
	ck_assert_ptr_nonnull(t->bev);
	ck_assert_ptr_nonnull(t->peer.bev);
	bufferevent_setcb(t->peer.bev, peer_read_cb, NULL, peer_event_cb,
	                  &t->peer);
	ck_assert_int_eq(bufferevent_enable(t->peer.bev, EV_READ | EV_WRITE),
	                 0);
}

void transport_open(struct transport *t, struct event_base *base, int kind)
{
	open_transport(t, base, kind, 1);
}

void transport_open_unshaken(struct transport *t, struct event_base *base,
                             int kind)
{
	open_transport(t, base, kind, 0);
}

void transport_free(struct transport *t)
{
	/* Bufferevents before their contexts; the caller frees the base. */
	evchat_free(t->chat);
	t->chat = NULL;
	if (t->bev != NULL)
		bufferevent_free(t->bev);
	t->bev = NULL;
	if (t->peer.bev != NULL)
		bufferevent_free(t->peer.bev);
	t->peer.bev = NULL;
#ifdef EVCHAT_TEST_TLS
	tls_contexts_free(t->tls);
#endif
	t->tls = NULL;
	evbuffer_free(t->peer.received);
	t->peer.received = NULL;
	recorder_clear(&t->rec);
}

/* ------------------------------------------------------------------ */
/* The channel's hooks */

static void t_collect(struct evchat *chat, struct evbuffer *data, void *arg)
{
	struct transport *t = arg;
	recorder_collect_cb(chat, data, &t->rec);
}

static void t_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct transport *t = arg;
	recorder_found_cb(chat, frame, &t->rec);
}

/* Bytes the kernel holds for the peer, sent or not, and not acknowledged
 * yet. */
static size_t unacked(evutil_socket_t fd)
{
	int n = 0;
	if (fd < 0 || ioctl(fd, TIOCOUTQ, &n) < 0)
		return 0;
	return (size_t)n;
}

static void t_event(struct evchat *chat, short events, void *arg)
{
	struct transport *t = arg;
	if (t->rec.nevents == 0)
		t->frames_at_event = t->rec.nframes;
	recorder_event_cb(chat, events, &t->rec);
	if (t->on_event != NULL)
		t->on_event(chat, events, t);
	if (events & EVCHAT_EVENT_CLOSED) {
		t->closed_seen = 1;
		t->peer_received_at_closed = t->peer.nreceived;
		t->queued_at_closed = evchat_get_queued(chat);
		t->unacked_at_closed = unacked(t->chat_fd);
		if (t->free_on_closed) {
			evchat_free(chat);
			t->chat = NULL;
		}
	}
	if (t->autofree && !(events & EVCHAT_EVENT_FRAME_DISCARDED))
		t->chat = NULL; /* it frees itself when it is done */
}

struct evchat *transport_chat(struct transport *t, unsigned flags,
                              int collect_mode)
{
	ck_assert_ptr_nonnull(t->bev);
	t->chat = evchat_new(t->bev, flags);
	t->bev = NULL; /* taken, even on failure */
	ck_assert_ptr_nonnull(t->chat);
	t->collect_mode = collect_mode;
	t->autofree = (flags & EVCHAT_OPT_AUTOFREE) != 0;
	evchat_setcb(t->chat, collect_mode ? t_collect : NULL, t_found, t_event,
	             t);
	return t->chat;
}

/* ------------------------------------------------------------------ */
/* The peer */

void peer_write(struct transport *t, const void *data, size_t len)
{
	ck_assert_int_eq(bufferevent_write(t->peer.bev, data, len), 0);
	if (t->kind == TRANSPORT_FILTER)
		bufferevent_flush(t->peer.bev, EV_WRITE, BEV_FLUSH);
}

void peer_write_cut(struct transport *t, const void *data, size_t len,
                    size_t max_piece, ev_uint32_t *seed)
{
	const char *p = data;
	while (len > 0) {
		size_t n = 1 + rnd(seed, max_piece);
		if (n > len)
			n = len;
		peer_write(t, p, n);
		p += n;
		len -= n;
		run_pending(t->base);
	}
}

void peer_expect_stream(struct transport *t, struct prng_stream *expect)
{
	t->peer.expect = expect;
}

void peer_stop_reading(struct transport *t)
{
	ck_assert_int_eq(bufferevent_disable(t->peer.bev, EV_READ), 0);
}

void peer_start_reading(struct transport *t)
{
	ck_assert_int_eq(bufferevent_enable(t->peer.bev, EV_READ), 0);
}

/* What the peer has not passed to its socket yet, over all layers; over
 * a pair, what its layers have not passed to the pair (whose output, like
 * a socket's buffer, waits for the other side to read). */
static size_t peer_unsent(struct transport *t)
{
	size_t n = 0;
	for (struct bufferevent *b = t->peer.bev; b != NULL;
	     b = bufferevent_get_underlying(b))
		if (!transport_on_pair(t->kind) ||
		    bufferevent_get_underlying(b) != NULL)
			n += evbuffer_get_length(bufferevent_get_output(b));
	return n;
}

static void run_until_peer_sent(struct transport *t)
{
	long long end = now_ms() + 3000;
	while (peer_unsent(t) > 0 && now_ms() < end)
		run_tick(t->base, 2000);
	ck_assert_msg(peer_unsent(t) == 0,
	              "%s: the peer could not send its last %zu bytes",
	              test_ctx, peer_unsent(t));
}

void peer_close(struct transport *t)
{
	if (t->kind == TRANSPORT_PAIR) {
		/* Moves what is left to the partner, then tells it EOF. */
		bufferevent_flush(t->peer.bev, EV_WRITE, BEV_FINISHED);
		return;
	}
	if (t->kind == TRANSPORT_FILTER)
		bufferevent_flush(t->peer.bev, EV_WRITE, BEV_FINISHED);
	run_until_peer_sent(t);
#ifdef EVCHAT_TEST_TLS
	if (transport_is_tls(t->kind)) {
		long long end = now_ms() + 3000;
		int r;
		/* 0: sent, and the channel's close_notify not seen yet; 1:
		 * both seen. Below 0 the socket was full: try again. */
		while ((r = SSL_shutdown(peer_ssl(t))) < 0 && now_ms() < end)
			run_tick(t->base, 2000);
		ck_assert_msg(r >= 0, "%s: the peer's SSL_shutdown failed",
		              test_ctx);
		run_until_peer_sent(t);
	}
#endif
	peer_end_below(t);
}

struct bufferevent *peer_bottom(struct transport *t)
{
	struct bufferevent *below = t->peer.bev;
	while (bufferevent_get_underlying(below) != NULL)
		below = bufferevent_get_underlying(below);
	return below;
}

void peer_end_below(struct transport *t)
{
	if (transport_on_pair(t->kind)) {
		/* The pair below tells its partner EOF. */
		bufferevent_flush(peer_bottom(t), EV_WRITE, BEV_FINISHED);
		return;
	}
	ck_assert_int_eq(shutdown(t->peer_fd, SHUT_WR), 0);
}

/* ------------------------------------------------------------------ */
/* Running the loop */

static void run_while(struct transport *t,
                      int (*waiting)(struct transport *, size_t), size_t n,
                      int ms)
{
	long long end = now_ms() + ms;
	while (waiting(t, n) && now_ms() < end)
		run_tick(t->base, 2000);
	run_pending(t->base);
}

static int peer_running(struct transport *t, size_t n)
{
	return !t->peer.eof && !t->peer.error;
}

static int peer_short_of(struct transport *t, size_t n)
{
	return peer_running(t, n) && t->peer.nreceived < n;
}

static int chat_quiet(struct transport *t, size_t n)
{
	return t->rec.nevents == 0;
}

static int chat_short_of_frames(struct transport *t, size_t n)
{
	return chat_quiet(t, n) && t->rec.nframes < n;
}

void run_until_peer_end(struct transport *t, int ms)
{
	run_while(t, peer_running, 0, ms);
	ck_assert_msg(t->peer.eof || t->peer.error,
	              "%s: the peer's stream did not end in %d ms (%zu bytes "
	              "received)",
	              test_ctx, ms, t->peer.nreceived);
}

void run_until_peer_has(struct transport *t, size_t n, int ms)
{
	run_while(t, peer_short_of, n, ms);
}

void run_until_chat_event(struct transport *t, int ms)
{
	run_while(t, chat_quiet, 0, ms);
}

void run_until_chat_frames(struct transport *t, size_t n, int ms)
{
	run_while(t, chat_short_of_frames, n, ms);
}

size_t test_stream_mib(size_t full_mib)
{
	const char *env = getenv("EVCHAT_TEST_STREAM_MIB");
	if (env == NULL || *env == '\0')
		return full_mib;
	size_t budget = (size_t)strtoul(env, NULL, 10) / 4;
	if (budget > 64)
		budget = 64;
	size_t mib = full_mib * budget / 64;
	return mib > 0 ? mib : 1;
}

void expect_peer_clean_end(struct transport *t)
{
	struct peer *p = &t->peer;
	ck_assert_msg(p->eof || p->error,
	              "%s: the peer's stream never ended "
	              "(%zu bytes)",
	              test_ctx, p->nreceived);
	ck_assert_msg(p->eof && !p->error,
	              "%s: the stream ended with an error (errno %d: %s), not "
	              "a clean EOF",
	              test_ctx, p->error_errno, strerror(p->error_errno));
}

void expect_peer_stream_then_eof(struct transport *t, size_t len)
{
	struct peer *p = &t->peer;
	ck_assert_msg(p->first_wrong == SIZE_MAX,
	              "%s: the peer got a wrong byte at offset %zu", test_ctx,
	              p->first_wrong);
	ck_assert_msg(p->eof || p->error,
	              "%s: the peer's stream never ended "
	              "(%zu of %zu bytes)",
	              test_ctx, p->nreceived, len);
	/* All bytes, not those before the end: libevent 2.1's TLS layer
	 * reports a close_notify before it commits the bytes it decrypted
	 * in the same read (do_read() runs conn_closed() first), so the
	 * last bytes may come just after the EOF event. */
	ck_assert_msg(p->nreceived == len,
	              "%s: the peer got %zu bytes (%zu before the %s), want "
	              "%zu",
	              test_ctx, p->nreceived, p->received_at_end,
	              p->eof ? "EOF" : "error", len);
	expect_peer_clean_end(t);
}

void expect_only_event(struct transport *t, short flag)
{
	char seen[128] = "";
	for (size_t i = 0; i < t->rec.nevents && strlen(seen) < 100; i++)
		snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen),
		         " 0x%x", (unsigned)t->rec.events[i]);
	ck_assert_msg(t->rec.nevents == 1 && (t->rec.events[0] & flag),
	              "%s: events:%s; want one with 0x%x", test_ctx, seen,
	              (unsigned)flag);
}
