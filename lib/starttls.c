/*
 * evchat_start_tls(): TLS started on a connection that began in the clear
 * (STARTTLS). The channel's bufferevent becomes a TLS filter over the old
 * one, between two frames, in the middle of the input loop as a rule:
 * what was pushed before is handed to the old layer first, and what the
 * peer sent ahead of the switch is refused, as no honest peer sends it.
 */
#include <errno.h>

#include "input-internal.h"

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#ifdef EVCHAT_HAVE_OPENSSL
#include <event2/bufferevent_ssl.h>
/* After event2/bufferevent.h: the idle timeouts move to the new layer. */
#include <event2/bufferevent_struct.h>

/* Bytes received that no hook has been given yet: after the frame being
 * delivered (lent from the input or from the read scratch), in the
 * bufferevent, a half-read length header, and, outside the input loop,
 * a frame gathered so far. */
static size_t read_ahead(const struct evchat *chat)
{
	size_t n = evbuffer_get_length(bufferevent_get_input(chat->bev));
	/* The lent frame is at the front of the read scratch's bytes when
	 * those are lent, else at the front of the input. */
	size_t in = chat->in != NULL ? evbuffer_get_length(chat->in) : 0;
	n += in + evchat__read_scratch_lent_to(chat) - chat->lent;
	if (evchat__header(chat) != NULL)
		n += evbuffer_get_length(evchat__header(chat));
	if (!chat->in_input && chat->frame != NULL)
		n += evbuffer_get_length(chat->frame);
	return n;
}

/* libevent 2.1's own (exported, undeclared): the options a bufferevent
 * was made with. BEV_OPT_THREADSAFE among them means it has a lock. */
int bufferevent_get_options_(struct bufferevent *bev);

/* What this thread holds through the old layer (each loop entry on the
 * stack took one, and this call if it is not inside one) goes through
 * the new one: in libevent 2.1 bufferevent_lock() takes a reference as
 * well as the lock, and each unlock on the way out gives both back
 * through chat->bev. The layers share their lock, or have none, so only
 * the references move. */
static void move_holds(struct bufferevent *from, struct bufferevent *to,
                       int holds)
{
	for (int i = 0; i < holds; i++)
		bufferevent_lock(to);
	for (int i = 0; i < holds; i++)
		bufferevent_unlock(from);
}

static int start(struct evchat *chat, struct ssl_st *ssl,
                 enum evchat_tls_role role)
{
	struct bufferevent *old = chat->bev;
	if (chat->freeing || chat->failed || chat->closing || chat->shutting ||
	    chat->eof_seen || chat->read_done) {
		errno = EPIPE;
		return -1;
	}
	if (evchat__tls_layer(old)) {
		errno = EALREADY;
		return -1;
	}
	/* Over a filter that runs its callbacks at once, libevent 2.1's TLS
	 * filter does not work: with plain libevent it crashes inside
	 * OpenSSL on the first bytes read (a NULL BIO in
	 * BIO_copy_next_retry), under a channel the handshake never ends.
	 * Over a filter with deferred callbacks, a pair or a socket it
	 * does. */
	if (bufferevent_get_underlying(old) != NULL &&
	    !(bufferevent_get_options_(old) & BEV_OPT_DEFER_CALLBACKS)) {
		errno = ENOTSUP;
		return -1;
	}
	if (chat->queue_tail != NULL) {
		errno = EBUSY;
		return -1;
	}
	if (read_ahead(chat) > 0) {
		evchat__input_discard(chat);
		errno = EPROTO;
		return -1;
	}
	/* The go-ahead, pushed by this read's hooks, goes out in the clear,
	 * ahead of the handshake in the old layer's output. */
	if (evchat__batch_flush(chat) < 0)
		return -1;
	struct timeval read_to = old->timeout_read;
	struct timeval write_to = old->timeout_write;
	/* A direct read's event goes back to libevent, whose read callback
	 * the TLS filter takes over with the old layer's. */
	if (chat->options & EVCHAT_OPT_DIRECT_READ) {
		int priority = bufferevent_get_priority(old);
		bufferevent_setfd(old, bufferevent_getfd(old));
		bufferevent_priority_set(old, priority);
	}
	/* Deferred callbacks: the handshake's events reach the hooks from
	 * the loop, never inside this call. Thread-safe where the old layer
	 * is, sharing its lock, so the locks held through it on the way here
	 * are the new layer's too; never otherwise: libevent would put a new
	 * lock on the old layer as well, which those holds never took. */
	int threadsafe = bufferevent_get_options_(old) & BEV_OPT_THREADSAFE;
	struct bufferevent *tls = bufferevent_openssl_filter_new(
	    bufferevent_get_base(old), old, ssl,
	    role == EVCHAT_TLS_ACCEPT ? BUFFEREVENT_SSL_ACCEPTING
	                              : BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS | threadsafe);
	if (tls == NULL) {
		/* Out of memory before the old layer was taken over: the
		 * channel goes on in the clear, read by libevent. */
		chat->options &= ~EVCHAT_OPT_DIRECT_READ;
		errno = ENOMEM;
		return -1;
	}
	/* The filter has the old layer's callbacks; the rest of what the
	 * channel set there moves up. */
	bufferevent_setwatermark(old, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(old, NULL, NULL);
	evchat__flow_clear(chat);
	move_holds(old, tls, chat->depth + !EVCHAT__ENTERED(chat));
	chat->bev = tls;
	chat->options &= ~(EVCHAT_OPT_DIRECT_READ | EVCHAT_OPT_DIRECT_WRITE);
	bufferevent_set_max_single_read(tls,
	                                (size_t)bufferevent_get_max_single_read(
	                                    old));
	bufferevent_set_timeouts(tls,
	                         evutil_timerisset(&read_to) ? &read_to : NULL,
	                         evutil_timerisset(&write_to) ? &write_to
	                                                      : NULL);
	bufferevent_setcb(tls, evchat__read_cb, evchat__write_cb,
	                  evchat__event_cb, chat);
	if (evchat__flow_init(chat) < 0) {
		evchat__input_failed(chat);
		errno = ENOMEM;
		return -1;
	}
	bufferevent_enable(tls, chat->paused ? EV_WRITE : EV_READ | EV_WRITE);
	/* A client speaks first: libevent starts a filter's handshake only
	 * when the layer below reports a write. */
	if (role == EVCHAT_TLS_CONNECT)
		bufferevent_trigger(old, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS);
	evchat__defer(chat, EVCHAT__DEFER_OUTPUT);
	return 0;
}

int evchat_start_tls(struct evchat *chat, struct ssl_st *ssl,
                     enum evchat_tls_role role)
{
	if (chat == NULL || ssl == NULL ||
	    (role != EVCHAT_TLS_ACCEPT && role != EVCHAT_TLS_CONNECT)) {
		errno = EINVAL;
		return -1;
	}
	evchat__lock(chat);
	return evchat__unlock(chat, start(chat, ssl, role));
}
#else
int evchat_start_tls(struct evchat *chat, struct ssl_st *ssl,
                     enum evchat_tls_role role)
{
	(void)chat, (void)ssl, (void)role;
	errno = ENOTSUP;
	return -1;
}
#endif
