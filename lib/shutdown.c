/*
 * Ending a connection without losing a byte: close-when-done, half-close
 * and abort.
 *
 * Bytes are delivered only once every layer has passed them on. So a
 * close walks the layers top down: each layer's output must drain, then
 * the layer is told the stream is finished (a filter flushes with
 * BEV_FINISHED, which a compressor needs for its trailer; a pair tells its
 * partner EOF; TLS sends close_notify), then the next layer down. At the
 * bottom the socket is shut down for writing. On TCP the close then waits
 * until the peer acknowledged everything, or sent its own EOF: closing a
 * socket while the peer may still send makes the kernel answer with a
 * reset, and a reset throws away whatever it had not delivered yet, the
 * end of our reply included. Meanwhile the channel reads and discards
 * what the peer sends, so no unread input is left to cause that reset.
 * A peer still sending when everything of ours was delivered would meet
 * the reset as soon as the socket is closed: its system may then throw
 * away our reply before the program read it (a WebSocket client still
 * uploading when the server's close frame came reported 1006, not the
 * server's 1009). So the close lingers: it goes on discarding until the
 * peer's EOF, or until the peer has been quiet for a while (bounded).
 *
 * libevent reports a drained top layer through the write callback and the
 * lower layers through lower_output_cb() (lib/flow.c). TLS wanting to
 * write and the peer's acknowledgements have no event, so shut_timer
 * polls for those: every few milliseconds at first, since a delayed
 * acknowledgement takes up to 40 ms on Linux, then backing off to a
 * quarter of a second for a peer that stays silent.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "evchat-internal.h"

/* Lingering after delivery, for a peer that was still sending: until it
 * has been quiet this long, and at most the write timeout if set, else
 * this long. */
#define LINGER_QUIET_MS 500
#define LINGER_MAX_MS 10000

/* Poll n (from 0) waits 1, 2, 4, then 8 ms until about 100 ms have
 * passed, then twice as long each time, up to 256 ms. */
static int poll_delay_ms(unsigned n)
{
	if (n < 3)
		return 1 << n;
	if (n < 15)
		return 8;
	return n < 20 ? 8 << (n - 14) : 256;
}

static struct bufferevent *layer_at(struct evchat *chat, size_t i)
{
	return i == 0 ? chat->bev : chat->extra->lower[i - 1];
}

evutil_socket_t evchat__bottom_fd(struct evchat *chat)
{
	return bufferevent_getfd(layer_at(chat, evchat__nlower(chat)));
}

/* The layer being flushed: past the top only with layers below, which
 * have the extra state. */
static size_t shut_layer(const struct evchat *chat)
{
	return chat->extra != NULL ? chat->extra->shut_layer : 0;
}

static int is_tcp(evutil_socket_t fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	return ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
}

/* Bytes the kernel still holds for the peer: not sent, or not yet
 * acknowledged. 0 where the system cannot tell. */
static size_t unacknowledged(evutil_socket_t fd)
{
#ifdef TIOCOUTQ
	int n = 0;
	if (is_tcp(fd) && ioctl(fd, TIOCOUTQ, &n) == 0 && n > 0)
		return (size_t)n;
#else
	(void)fd;
#endif
	return 0;
}

/* The error that ended the TCP connection under us (a reset, say), or 0
 * while it stands. A wait must ask: a reset socket keeps its
 * unacknowledged count for good, and with reading stopped (the peer's
 * TLS close_notify came first) no event would tell. */
static int connection_error(struct evchat *chat)
{
	evutil_socket_t fd = evchat__bottom_fd(chat);
	int err = 0;
	socklen_t len = sizeof(err);
	if (!is_tcp(fd) || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return 0;
	return err;
}

/* While bytes of ours wait for acknowledgement: whether the connection
 * ended under us, which lost them; reported as the failure if so. */
static int connection_lost(struct evchat *chat)
{
	int err = connection_error(chat);
	if (err == 0)
		return 0;
	evchat__output_failed(chat, err, EVCHAT_EVENT_ERROR);
	return 1;
}

/* Bytes of ours the peer has not got: in the layers' output buffers,
 * or sent and not acknowledged. */
static size_t undelivered(struct evchat *chat)
{
	return evchat__layers_queued(chat) +
	       unacknowledged(evchat__bottom_fd(chat));
}

static void shut_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct evchat *chat = arg;
	(void)fd, (void)what;
	struct evchat *outer = evchat__enter(chat);
	if (!chat->freeing && !chat->failed)
		evchat__output_run(chat);
	evchat__leave(chat, outer);
}

/* Waits for what gives no event of its own: looks again a little later,
 * and fails with a write timeout when nothing moved for that long. */
static void poll_later(struct evchat *chat, size_t left)
{
	/* Without memory for the timer nothing would ever look again,
	 * write timeout or not. */
	struct evchat__extra *x = evchat__extra(chat);
	if (x == NULL) {
		evchat__output_failed(chat, ENOMEM, EVCHAT_EVENT_ERROR);
		return;
	}
	struct timeval now;
	event_base_gettimeofday_cached(bufferevent_get_base(chat->bev), &now);
	if (left < x->shut_left || x->shut_polls == 0) {
		x->shut_left = left;
		x->shut_progress = now;
	} else if (chat->has_write_timeout && left > 0) {
		/* (Not while lingering, which has its own bound.) */
		struct timeval idle;
		evutil_timersub(&now, &x->shut_progress, &idle);
		if (!evutil_timercmp(&idle, &x->write_timeout, <)) {
			evchat__output_failed(chat, ETIMEDOUT,
			                      EVCHAT_EVENT_TIMEOUT);
			return;
		}
	}
	if (x->shut_timer == NULL) {
		x->shut_timer = evtimer_new(bufferevent_get_base(chat->bev),
		                            shut_timer_cb, chat);
		if (x->shut_timer == NULL) {
			evchat__output_failed(chat, ENOMEM, EVCHAT_EVENT_ERROR);
			return;
		}
	}
	struct timeval delay = { 0, poll_delay_ms(x->shut_polls) * 1000 };
	if (x->shut_polls < 20)
		x->shut_polls++;
	/* Adding a timer can need memory too (libevent's timer heap
	 * grows). */
	if (evtimer_add(x->shut_timer, &delay) < 0)
		evchat__output_failed(chat, ENOMEM, EVCHAT_EVENT_ERROR);
}

/* A pair whose partner was freed: what is written to it reaches nobody,
 * and libevent tells nobody, so a wait for it to drain never ends. As
 * when a socket's peer has closed: a failure if bytes of ours were still
 * on their way, else the close is done (only TLS's close_notify, sent
 * after everything was delivered, is lost). Returns 1 if that ended the
 * walk. */
static int partner_gone(struct evchat *chat)
{
	if (!chat->on_pair || bufferevent_pair_get_partner(
	                          layer_at(chat, evchat__nlower(chat))) != NULL)
		return 0;
	if (chat->delivered)
		chat->shut_down = 1;
	else
		evchat__output_failed(chat, EPIPE, EVCHAT_EVENT_ERROR);
	return 1;
}

/* Walks the layers down from shut_layer. Returns 1 once the bottom is
 * shut down, 0 while waiting (a callback or the timer comes back). */
static int flush_layers(struct evchat *chat)
{
	for (;;) {
		struct bufferevent *layer = layer_at(chat, shut_layer(chat));
		size_t left = evbuffer_get_length(
		    bufferevent_get_output(layer));
		if (left > 0) {
			if (partner_gone(chat))
				return chat->shut_down;
			/* The top layer's write callback comes back when it
			 * drains; a lower one wakes lower_wake. Only the
			 * timer notices that nothing moves, for the write
			 * timeout: libevent does not time a lower layer, nor
			 * a pair whose partner stopped reading; nor does it
			 * tell a pair that its partner was freed. */
			if (shut_layer(chat) > 0 || chat->has_write_timeout ||
			    chat->on_pair)
				poll_later(chat, evchat__layers_queued(chat));
			return 0;
		}
		if (!chat->shut_layer_done && evchat__tls_layer(layer) &&
		    !evchat__close_delivered(chat)) {
			if (partner_gone(chat))
				return chat->shut_down;
			/* TLS's close_notify waits for the peer to have
			 * everything before it: a peer that closes once it
			 * read its last reply (many do) resets the connection
			 * when the close_notify reaches it, and the reset must
			 * not pass for lost bytes of ours. A reset before
			 * then lost them. */
			if (!connection_lost(chat))
				poll_later(chat, undelivered(chat));
			return 0;
		}
		if (!chat->shut_layer_done) {
			/* Filters write what they held back; a pair tells its
			 * partner EOF; sockets ignore it. A filter's flush
			 * runs its write callback at once, which comes back
			 * here: the layer is marked done first. */
			chat->shut_layer_done = 1;
			bufferevent_flush(layer, EV_WRITE, BEV_FINISHED);
			if (chat->freeing || chat->failed || chat->shut_down)
				return chat->shut_down;
			int r = evchat__tls_close_notify(layer);
			if (r < 0 && !chat->delivered) {
				evchat__output_failed(chat, errno,
				                      EVCHAT_EVENT_ERROR);
				return 0;
			}
			/* (Failed after everything was delivered: the peer
			 * reset; its end comes as an event.) */
			if (r > 0) {
				/* Asked again after the poll, flush included
				 * (a no-op by then). */
				chat->shut_layer_done = 0;
				poll_later(chat,
				           evchat__layers_queued(chat) + 1);
				return 0;
			}
			continue; /* the flush may have left bytes below */
		}
		if (shut_layer(chat) == evchat__nlower(chat))
			break;
		chat->extra->shut_layer++;
		chat->shut_layer_done = 0;
	}
	evutil_socket_t fd = evchat__bottom_fd(chat);
	if (fd >= 0 && shutdown(fd, SHUT_WR) < 0 && errno != ENOTCONN) {
		evchat__output_failed(chat, errno, EVCHAT_EVENT_ERROR);
		return 0;
	}
	chat->shut_down = 1;
	if (chat->extra != NULL)
		chat->extra->shut_polls = 0;
	return 1;
}

/* Milliseconds on a clock that never steps back (the wall clock can). */
static ev_int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ev_int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Bytes the peer sent that wait in the socket, unread: closing with them
 * there resets the connection at once. */
static int unread_input(evutil_socket_t fd)
{
	int n = 0;
	return is_tcp(fd) && ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

/* Everything of ours was delivered: whether to go on reading, because
 * the peer sent during the close (or before it, unread) and has not
 * ended. It stops at the peer's EOF (the close is then done, and nothing
 * more can come), once the peer was quiet for LINGER_QUIET_MS, or when
 * lingering has lasted the write timeout (LINGER_MAX_MS without one). */
static int lingers(struct evchat *chat)
{
	if (chat->eof_seen)
		return 0;
	if (unread_input(evchat__bottom_fd(chat)))
		chat->close_heard = 1;
	if (!chat->close_heard &&
	    (chat->extra == NULL || !chat->extra->lingering))
		return 0;
	struct evchat__extra *x = evchat__extra(chat);
	if (x == NULL)
		return 0; /* no memory to time it: close as without */
	ev_int64_t now = monotonic_ms();
	if (!x->lingering) {
		x->lingering = 1;
		x->linger_since = now;
	}
	if (chat->close_heard) {
		chat->close_heard = 0;
		x->linger_heard = now;
	}
	ev_int64_t max = chat->has_write_timeout
	                     ? (ev_int64_t)x->write_timeout.tv_sec * 1000 +
	                           x->write_timeout.tv_usec / 1000
	                     : LINGER_MAX_MS;
	return now - x->linger_heard < LINGER_QUIET_MS &&
	       now - x->linger_since < max;
}

int evchat__close_delivered(struct evchat *chat)
{
	if (chat->delivered)
		return 1;
	/* (Bytes a filter keeps in a state of its own are not counted: see
	 * evchat_close_when_done(3). Assuming every filter not yet flushed
	 * holds some made a close over a filter that holds none fail when
	 * the peer reset right after reading everything.) */
	if (chat->queue_tail != NULL || undelivered(chat) > 0)
		return 0;
	/* TLS's close_notify goes out only once this holds (see
	 * flush_layers()): what the kernel saw acknowledged is ours. */
	chat->delivered = 1;
	return 1;
}

void evchat__shutdown_run(struct evchat *chat)
{
	/* A filter's flush calls back into the output side, and so here:
	 * the walk in progress goes on when that returns. */
	if (chat->in_shutdown)
		return;
	chat->in_shutdown = 1;
	int flushed = chat->shut_down || flush_layers(chat);
	chat->in_shutdown = 0;
	if (!flushed || chat->freeing || chat->failed)
		return;
	/* A half-close is done now; reading goes on as before. */
	if (!chat->closing || (chat->reported & EVCHAT_EVENT_CLOSED))
		return;
	size_t left = chat->eof_seen ? 0
	                             : unacknowledged(evchat__bottom_fd(chat));
	/* TLS's close_notify went out after the peer had everything else:
	 * a peer that had closed its socket already answers it with a
	 * reset (EPIPE here), which loses nothing of ours. */
	if (left > 0 && chat->delivered && connection_error(chat) != 0)
		left = 0;
	if (left == 0 && !chat->eof_seen)
		chat->delivered = 1; /* a reset from now on loses nothing */
	if (left > 0 && connection_lost(chat))
		return;
	if (left > 0 || lingers(chat)) {
		if (!chat->shut_reading) {
			/* The read callback discards what comes now. */
			chat->shut_reading = 1;
			bufferevent_enable(chat->bev, EV_READ);
			if (chat->freeing || chat->failed)
				return;
		}
		poll_later(chat, left);
		return;
	}
	if (chat->extra != NULL && chat->extra->shut_timer != NULL)
		event_del(chat->extra->shut_timer);
	bufferevent_disable(chat->bev, EV_READ | EV_WRITE);
	evchat__report(chat, EVCHAT_EVENT_CLOSED);
}

int evchat_close_when_done(struct evchat *chat)
{
	if (chat == NULL) {
		errno = EINVAL;
		return -1;
	}
	evchat__lock(chat);
	if (!chat->closing) {
		chat->closing = 1;
		chat->shutting = 1;
		/* No frame is delivered after this; reading goes on only to
		 * discard, so that a peer that sends before it reads is not
		 * stuck, and no unread input makes the close a reset. */
		evchat__frame_clock_stop(chat);
		evchat__defer(chat, EVCHAT__DEFER_OUTPUT);
	}
	return evchat__unlock(chat, 0);
}

int evchat_shutdown_write(struct evchat *chat)
{
	if (chat == NULL) {
		errno = EINVAL;
		return -1;
	}
	evchat__lock(chat);
	if (!chat->shutting) {
		chat->shutting = 1;
		evchat__defer(chat, EVCHAT__DEFER_OUTPUT);
	}
	return evchat__unlock(chat, 0);
}

void evchat_abort(struct evchat *chat)
{
	if (chat == NULL)
		return;
	struct evchat *outer = evchat__enter(chat);
	evutil_socket_t fd = evchat__bottom_fd(chat);
	if (!chat->freeing && is_tcp(fd)) {
		/* A zero linger makes close() send a reset and drop what the
		 * kernel still holds. */
		struct linger lg = { 1, 0 };
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	evchat_free(chat);
	evchat__leave(chat, outer);
}
