/*
 * The listener's state, shared with the tests (which count failed accepts
 * to prove the listener does not spin). Never installed.
 */
#ifndef EVCHAT_LISTENER_INTERNAL_H_INCLUDED_
#define EVCHAT_LISTENER_INTERNAL_H_INCLUDED_

#include "evchat.h"

struct evchat_listener {
	struct evconnlistener *lev;
	unsigned chat_flags;
	evchat_accept_cb accept;
	evchat_bufferevent_cb make;
	evchat_listener_error_cb error;
	void *arg;
	struct event *retry;    /* re-enables accepting after a failure */
	int retry_ms;           /* the current pause; 0 when accepting works */
	unsigned long failures; /* failed accepts seen, ever */
	int depth;              /* our calls on the stack (see enter()) */
	unsigned reported : 1;  /* this episode was reported */
	unsigned paused : 1;    /* evchat_listener_pause(): no retry enables */
	unsigned freeing : 1;
};

#endif
