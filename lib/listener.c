/*
 * Accepting connections as channels, and surviving descriptor exhaustion.
 *
 * When accept() fails for want of descriptors (EMFILE, ENFILE) or memory,
 * the connection stays in the kernel's backlog and the listening socket
 * stays readable, so a level-triggered loop calls back at once, forever:
 * libevent 2.1's evconnlistener then spins a core and logs every attempt.
 * Here the listener stops, retries after a pause that doubles up to a
 * second, and reports the episode once.
 */
#include <errno.h>
#include <stdlib.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/listener.h>

#include "evchat-internal.h"
#include "listener-internal.h"

#define RETRY_FIRST_MS 10
#define RETRY_MAX_MS 1000

static void report(struct evchat_listener *l, int err)
{
	if (l->error != NULL)
		l->error(l, err, l->arg);
}

static void destroy(struct evchat_listener *l)
{
	evconnlistener_free(l->lev);
	if (l->retry != NULL)
		event_free(l->retry);
	evchat__free(l);
}

/* Brackets calls into the user's hooks, which may free the listener. */
static void enter(struct evchat_listener *l)
{
	l->depth++;
}

static int leave(struct evchat_listener *l)
{
	if (--l->depth == 0 && l->freeing) {
		destroy(l);
		return 1;
	}
	return 0;
}

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
                      struct sockaddr *addr, int addrlen, void *arg)
{
	struct evchat_listener *l = arg;
	struct event_base *base = evconnlistener_get_base(lev);
	enter(l);
	/* An accept worked: a later failure is a new episode. */
	l->retry_ms = 0;
	l->reported = 0;
	struct bufferevent *bev;
	if (l->make != NULL) {
		bev = l->make(base, fd, l->arg);
		if (bev == NULL) {
			/* Refused by the program: not a failure. */
			leave(l);
			return;
		}
	} else {
		/* Request/response protocols answer in several small writes
		 * when a request arrives in several reads; with Nagle's
		 * algorithm each waits for the peer's delayed ACK, up to
		 * 40 ms on Linux. (Fails harmlessly on a Unix socket.) */
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
		if (bev == NULL) {
			evutil_closesocket(fd);
			errno = ENOMEM;
		}
	}
	if (l->freeing) {
		if (bev != NULL)
			bufferevent_free(bev);
		leave(l);
		return;
	}
	errno = 0;
	/* Our own sockets are plain: replies may go straight to them. */
	unsigned flags = l->chat_flags;
	if (l->make == NULL)
		flags |= EVCHAT_OPT_DIRECT_WRITE | EVCHAT_OPT_DIRECT_READ;
	struct evchat *chat = bev ? evchat_new(bev, flags) : NULL;
	if (chat == NULL)
		report(l, errno ? errno : ENOMEM);
	else
		l->accept(l, chat, addr, addrlen, l->arg);
	leave(l);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct evchat_listener *l = arg;
	(void)fd, (void)what;
	if (!l->paused)
		evconnlistener_enable(l->lev);
}

static void error_cb(struct evconnlistener *lev, void *arg)
{
	struct evchat_listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();
	enter(l);
	l->failures++;
	/* Whatever the cause, never retry at once: the socket is still
	 * readable, and retrying at once is the spin. */
	evconnlistener_disable(lev);
	l->retry_ms = l->retry_ms == 0 ? RETRY_FIRST_MS : l->retry_ms * 2;
	if (l->retry_ms > RETRY_MAX_MS)
		l->retry_ms = RETRY_MAX_MS;
	struct timeval delay = { l->retry_ms / 1000,
		                 (l->retry_ms % 1000) * 1000 };
	/* Adding the timer can need memory (libevent's timer heap grows).
	 * Without it nothing would ever enable the listener again: better
	 * to retry at once, as libevent would, until a timer can be set. */
	if (evtimer_add(l->retry, &delay) < 0 && !l->paused)
		evconnlistener_enable(lev);
	if (!l->reported) {
		l->reported = 1;
		report(l, err);
	}
	leave(l);
}

struct evchat_listener *evchat_listener_new(struct evconnlistener *lev,
                                            unsigned chat_flags,
                                            evchat_accept_cb accept, void *arg)
{
	if (lev == NULL || accept == NULL ||
	    (chat_flags & ~(EVCHAT_OPT_AUTOFREE | EVCHAT_OPT_DIRECT_WRITE |
	                    EVCHAT_OPT_DIRECT_READ)) != 0) {
		if (lev != NULL)
			evconnlistener_free(lev);
		errno = EINVAL;
		return NULL;
	}
	struct evchat_listener *l = evchat__calloc(1, sizeof(*l));
	if (l != NULL)
		l->retry = evtimer_new(evconnlistener_get_base(lev), retry_cb,
		                       l);
	if (l == NULL || l->retry == NULL) {
		evchat__free(l);
		evconnlistener_free(lev);
		errno = ENOMEM;
		return NULL;
	}
	l->lev = lev;
	l->chat_flags = chat_flags;
	l->accept = accept;
	l->arg = arg;
	evconnlistener_set_error_cb(lev, error_cb);
	/* With a callback set, libevent enables the listener. */
	evconnlistener_set_cb(lev, accept_cb, l);
	evconnlistener_enable(lev);
	return l;
}

void evchat_listener_set_bufferevent_cb(struct evchat_listener *l,
                                        evchat_bufferevent_cb make)
{
	if (l != NULL)
		l->make = make;
}

void evchat_listener_set_error_cb(struct evchat_listener *l,
                                  evchat_listener_error_cb error)
{
	if (l != NULL)
		l->error = error;
}

int evchat_listener_pause(struct evchat_listener *l)
{
	if (l == NULL || l->freeing) {
		errno = EINVAL;
		return -1;
	}
	l->paused = 1;
	/* A pending retry stays: its episode is still on, and it will find
	 * the listener paused. (Disabling only deletes an event, which
	 * cannot fail on a live base.) */
	evconnlistener_disable(l->lev);
	return 0;
}

int evchat_listener_resume(struct evchat_listener *l)
{
	if (l == NULL || l->freeing) {
		errno = EINVAL;
		return -1;
	}
	l->paused = 0;
	/* After a failed accept the retry timer enables, after its pause:
	 * enabling now would be the spin it is there to prevent. */
	if (evtimer_pending(l->retry, NULL))
		return 0;
	if (evconnlistener_enable(l->lev) < 0) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

struct evconnlistener *
evchat_listener_get_evconnlistener(struct evchat_listener *l)
{
	return l ? l->lev : NULL;
}

void evchat_listener_free(struct evchat_listener *l)
{
	if (l == NULL || l->freeing)
		return;
	l->freeing = 1;
	evconnlistener_disable(l->lev);
	event_del(l->retry);
	if (l->depth == 0)
		destroy(l);
}
