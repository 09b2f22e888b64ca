/*
 * The channel's lifecycle: creation, hooks, events, and a free that is
 * safe from inside any hook.
 *
 * Every entry from the event loop (read, write, event and deferred
 * callbacks) brackets its work with evchat__enter()/evchat__leave(). A free
 * requested inside a hook only marks the channel and unhooks it from the
 * bufferevent; the outermost leave does the actual free, once no code of
 * ours is left on the stack. Loops that may run several hooks check the
 * mark after each one.
 */
#include <errno.h>
#include <stdlib.h>

#include "evchat-internal.h"

/* Causes that are flags of their own; a timeout is told apart by its
 * direction (EVCHAT__READ_TIMEOUT, EVCHAT__WRITE_TIMEOUT). */
#define EVCHAT__PLAIN_CAUSES                                                   \
	(EVCHAT_EVENT_EOF | EVCHAT_EVENT_ERROR | EVCHAT_EVENT_CLOSED |         \
	 EVCHAT_EVENT_FRAME_TOO_LONG | EVCHAT_EVENT_FRAME_INVALID)
/* Causes after which no I/O is possible: the channel can only be freed. */
#define EVCHAT__FATAL_CAUSES (EVCHAT_EVENT_ERROR | EVCHAT__WRITE_TIMEOUT)

/* The bit-fields that keep them are wide enough. */
_Static_assert((EVCHAT__PLAIN_CAUSES | EVCHAT__READ_TIMEOUT |
                EVCHAT__WRITE_TIMEOUT) < 1u << 18,
               "chat->reported holds every cause");
_Static_assert((EVCHAT_OPT_AUTOFREE | EVCHAT_OPT_DIRECT_WRITE |
                EVCHAT_OPT_DIRECT_READ) < 1u << 3,
               "chat->options holds every option");
_Static_assert((BEV_EVENT_READING | BEV_EVENT_WRITING | BEV_EVENT_EOF |
                BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT | BEV_EVENT_CONNECTED) <
                   1u << 8,
               "chat->eof_events holds libevent's flags");

/* An idle channel is this struct and nothing else. At 216 bytes glibc
 * gives it a 224-byte block; a few bytes more take a 240-byte one, which
 * ten thousand idle connections feel (docs/BENCHMARKS.md). Growing it
 * must be a choice: move rarely used state to struct evchat__extra. */
_Static_assert(sizeof(void *) != 8 || sizeof(struct evchat) <= 216,
               "struct evchat fits a 224-byte malloc block");

static unsigned causes_of(short events)
{
	unsigned causes = (unsigned)(events & EVCHAT__PLAIN_CAUSES);
	if (events & EVCHAT_EVENT_TIMEOUT)
		causes |= (events & EVCHAT_EVENT_WRITING)
		              ? EVCHAT__WRITE_TIMEOUT
		              : EVCHAT__READ_TIMEOUT;
	return causes;
}

static void destroy(struct evchat *chat)
{
	/* Our callbacks leave the lower layers first: they may outlive the
	 * top one (a filter made without BEV_OPT_CLOSE_ON_FREE). */
	evchat__flow_clear(chat);
	bufferevent_free(chat->bev);
	evchat__defer_detach(chat);
	if (chat->extra != NULL) {
		if (chat->extra->produced != NULL)
			evbuffer_free(chat->extra->produced);
		if (chat->extra->shut_timer != NULL)
			event_free(chat->extra->shut_timer);
		if (chat->extra->frame_timer != NULL)
			event_free(chat->extra->frame_timer);
		if (chat->extra->header != NULL)
			evbuffer_free(chat->extra->header);
		evchat__free(chat->extra);
	}
	if (chat->in != NULL)
		evbuffer_free(chat->in);
	if (chat->frame != NULL)
		evbuffer_free(chat->frame);
	if (chat->room_scratch)
		evchat__scratch_give(); /* freed inside a hook */
	if (chat->batch != NULL)
		evbuffer_free(chat->batch);
	evchat__terminator_clear(&chat->term);
	evchat__free(chat);
}

#if defined(__GNUC__) || defined(__clang__)
__thread struct evchat *evchat__entered; /* see evchat-internal.h */
#define EVCHAT__ENTERED_NOW evchat__entered
#else
#define EVCHAT__ENTERED_NOW NULL
#endif

/* Only the outermost entry marks the channel; an inner entry of another
 * channel puts this one back when it leaves. */
struct evchat *evchat__enter(struct evchat *chat)
{
	struct evchat *outer = EVCHAT__ENTERED_NOW;
	bufferevent_lock(chat->bev);
#if defined(__GNUC__) || defined(__clang__)
	if (chat->depth == 0)
		evchat__entered = chat;
#endif
	chat->depth++;
	return outer;
}

int evchat__leave(struct evchat *chat, struct evchat *outer)
{
	struct bufferevent *bev = chat->bev;
#if defined(__GNUC__) || defined(__clang__)
	if (chat->depth == 1 && evchat__entered == chat)
		evchat__entered = outer;
#else
	(void)outer;
#endif
	if (--chat->depth == 0 && chat->freeing) {
		void (*release)(void *arg) = chat->extra != NULL
		                                 ? chat->extra->release
		                                 : NULL;
		void *arg = chat->arg;
		/* The lock holds a reference on the bufferevent, so it is
		 * still there to unlock after destroy() let go of it. */
		destroy(chat);
		bufferevent_unlock(bev);
		/* Last, with nothing of the channel left to run or lock: the
		 * program's own state may go now. */
		if (release != NULL)
			release(arg);
		return 1;
	}
	bufferevent_unlock(bev);
	return 0;
}

struct evchat__extra *evchat__extra(struct evchat *chat)
{
	if (chat->extra != NULL)
		return chat->extra;
	chat->extra = evchat__calloc(1, sizeof(*chat->extra));
	if (chat->extra == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	chat->extra->out_buffer_size = EVCHAT_DEFAULT_OUT_BUFFER_SIZE;
	chat->extra->write_low = EVCHAT_DEFAULT_WRITE_LOW;
	chat->extra->write_high = EVCHAT_DEFAULT_WRITE_HIGH;
	return chat->extra;
}

void evchat__deferred_run(struct evchat *chat)
{
	struct evchat *outer = evchat__enter(chat);
	unsigned work = chat->freeing ? 0 : chat->deferred_work;
	chat->deferred_work = 0;
	if (work & EVCHAT__DEFER_RESUME)
		evchat__input_resume(chat);
	if ((work & (EVCHAT__DEFER_INPUT | EVCHAT__DEFER_RESUME)) &&
	    !chat->freeing)
		evchat__input_run(chat);
	if ((work & EVCHAT__DEFER_OUTPUT) && !chat->freeing) {
		evchat__output_release(chat);
		if (!chat->freeing)
			evchat__output_run(chat);
	}
	evchat__leave(chat, outer);
}

/* errno as the event hook finds it: an error's own, else the cause's, so
 * that a hook logging strerror(errno) on every end never shows what a
 * connect or a read left behind. */
static int event_errno(short events)
{
	if (events & EVCHAT_EVENT_ERROR)
		return errno;
	if (events & EVCHAT_EVENT_FRAME_TOO_LONG)
		return EMSGSIZE;
	if (events & EVCHAT_EVENT_FRAME_INVALID)
		return EBADMSG;
	if (events & EVCHAT_EVENT_TIMEOUT)
		return ETIMEDOUT;
	return 0;
}

int evchat__report(struct evchat *chat, short events)
{
	unsigned causes = causes_of(events);
	if (causes != 0) {
		/* Never the same cause twice, and nothing after a failure. */
		if ((causes & ~chat->reported) == 0 ||
		    (chat->failed && !(causes & EVCHAT__FATAL_CAUSES)))
			return chat->freeing;
		events &= (short)~(chat->reported & EVCHAT__PLAIN_CAUSES);
		chat->reported |= causes;
	}
	if (chat->event != NULL && !chat->freeing) {
		errno = event_errno(events);
		chat->event(chat, events, chat->arg);
	}
	if (chat->freeing)
		return 1;
	if (chat->options & EVCHAT_OPT_AUTOFREE) {
		/* Output has failed: a reset tells the peer so, where an
		 * EOF after part of a reply could pass for all of it (and
		 * the kernel would go on sending to a peer that stalled). */
		if (causes & EVCHAT__FATAL_CAUSES) {
			evchat_abort(chat);
			return 1;
		}
		if (causes & EVCHAT_EVENT_CLOSED) {
			evchat_free(chat);
			return 1;
		}
		/* After input ended (EOF, a timeout, a refused frame), send
		 * what the hook pushed, then close and free. */
		if (causes &
		    (EVCHAT_EVENT_EOF | EVCHAT_EVENT_FRAME_TOO_LONG |
		     EVCHAT_EVENT_FRAME_INVALID | EVCHAT__READ_TIMEOUT))
			evchat_close_when_done(chat);
	}
	return 0;
}

/* Whether bufferevent_socket_connect_hostname() failed to resolve, on bev
 * or a layer under it (a lookup the program cancelled failed nothing). */
static int lookup_failed(struct bufferevent *bev)
{
	for (; bev != NULL; bev = bufferevent_get_underlying(bev)) {
		int err = bufferevent_socket_get_dns_error(bev);
		if (err != 0 && err != EVUTIL_EAI_CANCEL)
			return 1;
	}
	return 0;
}

/* libevent's TLS layer reports a timeout during its handshake (or the
 * connect before it) as a bare BEV_EVENT_TIMEOUT, from its read or its
 * write event alike. Which it was decides whether the channel failed: the
 * only timeout set (or left: a read timeout ends reading); with both,
 * during the connect, where both events wait from the start, the shorter
 * one first; during the handshake, the side OpenSSL waits on. */
static short handshake_timeout_side(const struct evchat *chat,
                                    struct bufferevent *bev)
{
	if (!chat->has_write_timeout)
		return BEV_EVENT_READING;
	if (!chat->has_read_timeout || chat->read_done)
		return BEV_EVENT_WRITING;
	if (evchat__tls_connecting(bev))
		return chat->read_timeout_first ? BEV_EVENT_READING
		                                : BEV_EVENT_WRITING;
	return evchat__tls_wants_write(bev) ? BEV_EVENT_WRITING
	                                    : BEV_EVENT_READING;
}

void evchat__event_cb(struct bufferevent *bev, short what, void *ctx)
{
	struct evchat *chat = ctx;
	int err = errno; /* the socket error, for the hook to read */
	/* libevent's TLS filter turns the socket's EOF that follows a clean
	 * close_notify into a bare error, unless dirty shutdowns are
	 * allowed: the stream ended cleanly. Once that was reported the
	 * error is dropped. Deferred callbacks merge the two into one report
	 * when both come in one turn (a pair's EOF follows its bytes at
	 * once): then the report is the EOF alone. */
	if ((what & BEV_EVENT_ERROR) && !(what & BEV_EVENT_WRITING) &&
	    evchat__tls_closed_cleanly(bev)) {
		if (what == BEV_EVENT_ERROR && chat->eof_seen)
			return;
		if (what & BEV_EVENT_EOF) {
			what &= (short)~BEV_EVENT_ERROR;
			err = 0;
		}
	}
	/* libevent's TLS layer stops writing when the peer's close_notify
	 * arrives, whatever its output still holds; a peer that only
	 * half-closed still reads that, and our close_notify after it. */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    !chat->failed && evchat__tls_layer(bev))
		bufferevent_enable(bev, EV_WRITE);
	if ((what & BEV_EVENT_TIMEOUT) &&
	    !(what & (BEV_EVENT_READING | BEV_EVENT_WRITING)))
		what |= handshake_timeout_side(chat, bev);
	struct evchat *outer = evchat__enter(chat);
	/* The layer below a TLS filter ended while input was paused, or
	 * while the filter's reads were held back (a rate limit): a pair
	 * whose partner ended moves its last bytes in and reports EOF even
	 * to a reader held back. The filter reports that at once, a bare
	 * error, or a bare EOF if dirty shutdowns are allowed, though frames
	 * wait in the channel or bytes below it unread, a close_notify
	 * perhaps among them. The end waits until input is resumed and those
	 * are read (release_end() in lib/input.c), the layer below watched
	 * for reads that bring nothing to frame. Once reading is over (a
	 * refused frame, a read timeout) it comes as reported. */
	if ((what == BEV_EVENT_ERROR || what == BEV_EVENT_EOF) &&
	    !chat->closing && !chat->failed && !chat->read_done &&
	    evchat__tls_layer(bev) && bufferevent_get_underlying(bev) != NULL &&
	    (chat->paused || evchat__flow_unread_below(chat)) &&
	    evchat__flow_watch_below(chat, 1) == 0) {
		chat->end_held = 1;
		chat->held_eof = what == BEV_EVENT_EOF;
		evchat__leave(chat, outer);
		return;
	}
	/* A connect that outlasted the write timeout goes on in libevent
	 * and may finish after the channel failed: nothing follows a
	 * failure. */
	if ((what & BEV_EVENT_CONNECTED) && !chat->failed) {
		/* A socket still connecting when the channel was made, or
		 * set by the connect itself, is read directly from now. */
		if (chat->options & EVCHAT_OPT_DIRECT_READ) {
			bufferevent_lock(bev);
			evchat__socket_read_take(chat);
			bufferevent_unlock(bev);
		}
		evchat__report(chat, EVCHAT_EVENT_CONNECTED);
	}

	/* A read timeout leaves output working, so that a reply can still
	 * be sent; an error or a write timeout ends everything. */
	short fail = what & BEV_EVENT_ERROR;
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_WRITING))
		fail |= BEV_EVENT_TIMEOUT;
	else if ((what & BEV_EVENT_TIMEOUT) && !fail &&
	         !(what & BEV_EVENT_EOF) && chat->closing)
		/* A close reads only to discard, and its bound is the write
		 * timeout: go on discarding. */
		bufferevent_enable(bev, EV_READ);
	else if ((what & BEV_EVENT_TIMEOUT) && !fail &&
	         !(what & BEV_EVENT_EOF) && chat->paused)
		/* Another thread paused input while this read timeout waited
		 * for the lock: a paused channel has no read timeout, and
		 * the resume reads again. */
		;
	else if ((what & BEV_EVENT_TIMEOUT) && !fail && !(what & BEV_EVENT_EOF))
		evchat__input_timeout(chat, what);
	if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_WRITING) &&
	    !(what & BEV_EVENT_READING)) {
		/* End of file while writing: a pushed file was shorter than
		 * promised. The output is broken; the peer did not close. */
		what = (short)((what & ~BEV_EVENT_EOF) | BEV_EVENT_ERROR);
		fail |= BEV_EVENT_ERROR;
		err = EPIPE;
	}
	/* Closing with everything of ours acknowledged, any end of the
	 * peer's finishes the close, a reset included. */
	int delivered = chat->closing && (what & BEV_EVENT_EOF || fail) &&
	                evchat__close_delivered(chat);
	if (chat->closing && (chat->shut_down || delivered) &&
	    (what & BEV_EVENT_EOF ||
	     (fail && (!(what & BEV_EVENT_WRITING) || delivered)))) {
		/* The peer's end while a close waits for it, clean or not
		 * (most TLS clients close without a close_notify of their
		 * own): everything of ours went out before, and nothing more
		 * will come that could reset the connection. */
		chat->eof_seen = 1;
		bufferevent_disable(bev, EV_READ);
		evchat__defer(chat, EVCHAT__DEFER_OUTPUT);
		/* A TLS peer's end without its close_notify comes as an
		 * error without errno: the end, not a failure. So does any
		 * error before the handshake finished (OpenSSL answers the
		 * peer's end with an alert, to a socket already shut down):
		 * no byte of ours could have gone out yet. A reset after it
		 * is a failure: it may have thrown away bytes not yet
		 * delivered; not once the peer acknowledged them all (a TLS
		 * peer that closes on its last reply resets the connection
		 * when our close_notify reaches it). */
		if (!(what & BEV_EVENT_EOF) &&
		    (err == 0 || evchat__tls_handshaking(bev) || delivered))
			fail = 0;
		/* A reset ends writing too: nothing is left to send (a
		 * close_notify would only meet it). */
		if (delivered && !(what & BEV_EVENT_EOF))
			chat->shut_down = 1;
	} else if (what & BEV_EVENT_EOF) {
		/* Reading is over. libevent stops a socket's reading, not a
		 * TLS filter's read timeout, which would fire later. */
		bufferevent_disable(bev, EV_READ);
		/* libevent has stopped reading; frame what is left first.
		 * An error may come with the EOF (deferred callbacks merge
		 * them): then it is reported below, once. */
		evchat__input_eof(chat, what, fail != 0);
	}
	if (fail && !chat->freeing) {
		chat->failed = 1;
		bufferevent_disable(bev, EV_READ | EV_WRITE);
		/* A failed name lookup comes with whatever errno the resolver
		 * left, the TLS layer's own errors (a bad record, a peer that
		 * ends without close_notify) with none. */
		if (lookup_failed(bev))
			err = EHOSTUNREACH;
		else if (err == 0 && evchat__tls_layer(bev))
			err = EPROTO;
		errno = err;
		evchat__report(chat, what);
	}
	evchat__leave(chat, outer);
}

struct evchat *evchat_new(struct bufferevent *bev, unsigned flags)
{
	if (bev == NULL) {
		errno = EINVAL;
		return NULL;
	}
	if ((flags & ~(EVCHAT_OPT_AUTOFREE | EVCHAT_OPT_DIRECT_WRITE |
	               EVCHAT_OPT_DIRECT_READ)) != 0) {
		bufferevent_free(bev);
		errno = EINVAL;
		return NULL;
	}
	struct evchat *chat = evchat__calloc(1, sizeof(*chat));
	if (chat == NULL)
		goto fail;
	chat->bev = bev;
	chat->options = flags;
	chat->max_frame = EVCHAT_DEFAULT_MAX_FRAME;
	evchat__terminator_init(&chat->term);
	/* The input, header and frame buffers are taken when bytes come
	 * (lib/spare.c). */
	if (evchat__defer_attach(chat) < 0 || evchat__flow_init(chat) < 0)
		goto fail;
	/* Reading or writing the socket directly would bypass a filter's or
	 * TLS layer's work: there the options mean nothing. */
	if (evchat__nlower(chat) > 0 || evchat__tls_layer(bev))
		chat->options &= ~(EVCHAT_OPT_DIRECT_READ |
		                   EVCHAT_OPT_DIRECT_WRITE);
	bufferevent_set_max_single_read(bev, EVCHAT_DEFAULT_IN_BUFFER_SIZE);
	bufferevent_setcb(bev, evchat__read_cb, evchat__write_cb,
	                  evchat__event_cb, chat);
	if (chat->options & EVCHAT_OPT_DIRECT_READ) {
		bufferevent_lock(bev);
		evchat__socket_read_take(chat);
		bufferevent_unlock(bev);
	}
	/* Enabling may run callbacks at once (a TLS filter with input
	 * buffered), even ones that free an AUTOFREE channel. */
	struct evchat *outer = evchat__enter(chat);
	if (bufferevent_enable(bev, EV_READ | EV_WRITE) < 0) {
		evchat_free(chat);
		evchat__leave(chat, outer);
		errno = ENOMEM;
		return NULL;
	}
	if (evchat__leave(chat, outer)) {
		errno = ECONNABORTED; /* the connection failed already */
		return NULL;
	}
	return chat;

fail:
	if (chat != NULL) {
		evchat__defer_detach(chat);
		evchat__flow_clear(chat);
		evchat__free(chat->extra);
		evchat__free(chat);
	}
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	bufferevent_free(bev);
	errno = ENOMEM;
	return NULL;
}

static void set_hooks(struct evchat *chat, evchat_collect_cb collect,
                      evchat_found_cb found, evchat_found_bytes_cb found_bytes,
                      evchat_event_cb event, void *arg)
{
	chat->collect = collect;
	chat->found = found;
	chat->found_bytes = found_bytes;
	chat->event = event;
	chat->arg = arg;
}

void evchat_setcb(struct evchat *chat, evchat_collect_cb collect,
                  evchat_found_cb found, evchat_event_cb event, void *arg)
{
	if (chat == NULL)
		return;
	evchat__lock(chat);
	if (!chat->freeing)
		set_hooks(chat, collect, found, NULL, event, arg);
	evchat__unlock(chat, 0);
}

int evchat_set_release_cb(struct evchat *chat, void (*release)(void *arg))
{
	if (chat == NULL) {
		errno = EINVAL;
		return -1;
	}
	evchat__lock(chat);
	/* Kept in the extra block: every byte of the channel's own struct
	 * counts for idle connections. Removing it makes none. */
	if (release == NULL && chat->extra == NULL)
		return evchat__unlock(chat, 0);
	struct evchat__extra *x = evchat__extra(chat);
	if (x == NULL)
		return evchat__unlock(chat, -1);
	if (!chat->freeing)
		x->release = release;
	return evchat__unlock(chat, 0);
}

void evchat_set_collect_cb(struct evchat *chat, evchat_collect_cb collect)
{
	if (chat == NULL)
		return;
	evchat__lock(chat);
	if (!chat->freeing)
		chat->collect = collect;
	evchat__unlock(chat, 0);
}

void evchat_setcb_bytes(struct evchat *chat, evchat_collect_cb collect,
                        evchat_found_bytes_cb found_bytes,
                        evchat_event_cb event, void *arg)
{
	if (chat == NULL)
		return;
	evchat__lock(chat);
	if (!chat->freeing)
		set_hooks(chat, collect, NULL, found_bytes, event, arg);
	evchat__unlock(chat, 0);
}

void evchat_setcb_both(struct evchat *chat, evchat_collect_cb collect,
                       evchat_found_bytes_cb found_bytes, evchat_found_cb found,
                       evchat_event_cb event, void *arg)
{
	if (chat == NULL)
		return;
	/* Both found hooks set is what the input path reads as "lend what
	 * lies in one piece, move the rest": only this call sets both. With
	 * either NULL it is evchat_setcb() or evchat_setcb_bytes(). */
	evchat__lock(chat);
	if (!chat->freeing)
		set_hooks(chat, collect, found, found_bytes, event, arg);
	evchat__unlock(chat, 0);
}

void evchat_free(struct evchat *chat)
{
	if (chat == NULL || chat->freeing)
		return;
	/* As a loop entry: a release hook run below may call in again. */
	struct evchat *outer = evchat__enter(chat);
	chat->freeing = 1;
	chat->collect = NULL;
	chat->found = NULL;
	chat->found_bytes = NULL;
	chat->event = NULL;
	chat->writable = NULL;
	/* From here on libevent calls nothing of ours. */
	bufferevent_setcb(chat->bev, NULL, NULL, NULL, NULL);
	bufferevent_disable(chat->bev, EV_READ | EV_WRITE);
	struct evchat__extra *x = chat->extra;
	if (x != NULL && x->shut_timer != NULL)
		event_del(x->shut_timer);
	if (x != NULL && x->frame_timer != NULL)
		event_del(x->frame_timer);
	if (x != NULL && x->lower_wake != NULL)
		event_del(x->lower_wake);
	evchat__output_discard(chat, 1);
	evchat__leave(chat, outer);
}

/* Socket bufferevents freeze the front of their output buffer so that
 * only they drain it; then the drain fails and we thaw it for this one
 * drain. Other kinds never froze it and must stay so. */
static void drain_output(struct evbuffer *out)
{
	if (evbuffer_drain(out, (size_t)-1) < 0) {
		evbuffer_unfreeze(out, 1);
		evbuffer_drain(out, (size_t)-1);
		evbuffer_freeze(out, 1);
	}
}

void evchat_discard_buffers(struct evchat *chat)
{
	if (chat == NULL)
		return;
	/* Release hooks run below and may free the channel. */
	struct evchat *outer = evchat__enter(chat);
	if (!chat->freeing) {
		evchat__input_discard(chat);
		evchat__batch_discard(chat);
		drain_output(bufferevent_get_output(chat->bev));
		/* Release hooks run on the loop: here only inside a hook of
		 * the channel (the loop entry below this call's). */
		evchat__output_discard(chat, chat->depth > 1);
		if (chat->shutting && !chat->freeing)
			evchat__defer(chat, EVCHAT__DEFER_OUTPUT);
		if (!chat->freeing)
			evchat__flow_check(chat);
	}
	evchat__leave(chat, outer);
}

int evchat_set_in_buffer_size(struct evchat *chat, size_t size)
{
	/* libevent 2.1 quietly uses its default for sizes it cannot
	 * take; say so instead. */
	if (chat == NULL || size == 0 || size > (size_t)EV_SSIZE_MAX ||
	    bufferevent_set_max_single_read(chat->bev, size) < 0) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

struct bufferevent *evchat_get_bufferevent(struct evchat *chat)
{
	if (chat == NULL)
		return NULL;
	/* A hook about to write to the bufferevent itself: what it pushed
	 * before goes first (or, out of memory, the channel fails), and
	 * evchat_is_writable() counts what it writes. */
	evchat__lock(chat);
	(void)evchat__batch_flush(chat);
	if (chat->in_input)
		chat->flow_stale = 1;
	evchat__unlock(chat, 0);
	return chat->bev;
}
