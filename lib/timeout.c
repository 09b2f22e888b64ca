/*
 * Timeouts: the idle ones are libevent's own; the frame timeout is ours.
 *
 * An idle timeout restarts with every byte, so a peer that sends one byte
 * a minute holds a connection (and a growing frame) forever: the slowloris
 * attack. The frame clock starts at a frame's first byte and stops only
 * when the frame ends, whatever trickles in meanwhile.
 */
#include <errno.h>

#include "evchat-internal.h"

static int valid(const struct timeval *tv)
{
	return tv == NULL ||
	       (tv->tv_sec >= 0 && tv->tv_usec >= 0 && tv->tv_usec < 1000000);
}

int evchat_set_timeouts(struct evchat *chat, const struct timeval *read,
                        const struct timeval *write)
{
	if (chat == NULL || !valid(read) || !valid(write)) {
		errno = EINVAL;
		return -1;
	}
	evchat__lock(chat);
	/* libevent takes a zero time as none. */
	int has_write = write != NULL && evutil_timerisset(write);
	/* The close times its own waits with the write timeout. */
	if (has_write && evchat__extra(chat) == NULL)
		return evchat__unlock(chat, -1);
	int r = bufferevent_set_timeouts(chat->bev, read, write);
	if (r < 0) {
		errno = EINVAL;
		return evchat__unlock(chat, -1);
	}
	chat->has_read_timeout = read != NULL && evutil_timerisset(read);
	chat->has_write_timeout = has_write;
	chat->read_timeout_first = chat->has_read_timeout && has_write &&
	                           evutil_timercmp(read, write, <);
	if (has_write)
		chat->extra->write_timeout = *write;
	return evchat__unlock(chat, 0);
}

static void frame_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct evchat *chat = arg;
	(void)fd, (void)what;
	struct evchat *outer = evchat__enter(chat);
	/* Stopped meanwhile by another thread, which could not wait for
	 * this callback (it holds the lock this one waited for). */
	int armed = chat->frame_clock;
	chat->frame_clock = 0;
	if (armed && !chat->freeing && evchat__frame_in_progress(chat))
		evchat__input_timeout(chat, EVCHAT_EVENT_TIMEOUT |
		                                EVCHAT_EVENT_READING |
		                                EVCHAT_EVENT_FRAME_TIMEOUT);
	evchat__leave(chat, outer);
}

/* Arms the timer for what is left of the deadline from frame_started.
 * Adding a timer can need memory (libevent's timer heap grows): 0, or -1
 * with errno ENOMEM and the clock as it was. */
static int frame_clock_arm(struct evchat *chat)
{
	struct evchat__extra *x = chat->extra;
	struct timeval now, end, left = { 0, 0 };
	event_base_gettimeofday_cached(bufferevent_get_base(chat->bev), &now);
	evutil_timeradd(&x->frame_started, &x->frame_timeout, &end);
	if (evutil_timercmp(&end, &now, >))
		evutil_timersub(&end, &now, &left);
	if (evtimer_add(x->frame_timer, &left) < 0) {
		errno = ENOMEM;
		return -1;
	}
	chat->frame_clock = 1;
	return 0;
}

void evchat__frame_clock_stop(struct evchat *chat)
{
	if (chat->frame_clock) {
		/* Never waits for a running callback, which may be blocked
		 * on the lock a calling thread holds. */
		event_del_noblock(chat->extra->frame_timer);
		chat->frame_clock = 0;
	}
}

int evchat__frame_clock_update(struct evchat *chat)
{
	if (!chat->has_frame_timeout || chat->freeing)
		return 0;
	if (!evchat__frame_in_progress(chat)) {
		evchat__frame_clock_stop(chat);
		return 0;
	}
	/* The same frame as when the clock started: it keeps running. */
	struct evchat__extra *x = chat->extra; /* has_frame_timeout */
	if (chat->frame_clock && x->frame_timed == x->frames_ended)
		return 0;
	x->frame_timed = x->frames_ended;
	event_base_gettimeofday_cached(bufferevent_get_base(chat->bev),
	                               &chat->extra->frame_started);
	return frame_clock_arm(chat);
}

int evchat_set_frame_timeout(struct evchat *chat, const struct timeval *timeout)
{
	if (chat == NULL || !valid(timeout)) {
		errno = EINVAL;
		return -1;
	}
	evchat__lock(chat);
	if (timeout == NULL) {
		evchat__frame_clock_stop(chat);
		chat->has_frame_timeout = 0;
		return evchat__unlock(chat, 0);
	}
	struct evchat__extra *x = evchat__extra(chat);
	if (x == NULL)
		return evchat__unlock(chat, -1);
	if (x->frame_timer == NULL) {
		x->frame_timer = evtimer_new(bufferevent_get_base(chat->bev),
		                             frame_timer_cb, chat);
		if (x->frame_timer == NULL) {
			errno = ENOMEM;
			return evchat__unlock(chat, -1);
		}
	}
	struct timeval old_timeout = x->frame_timeout;
	unsigned had_timeout = chat->has_frame_timeout;
	x->frame_timeout = *timeout;
	chat->has_frame_timeout = 1;
	/* A frame in progress keeps its start; only its deadline moves. */
	int r = chat->frame_clock ? frame_clock_arm(chat)
	                          : evchat__frame_clock_update(chat);
	if (r < 0) {
		/* Out of memory: the deadline stays as it was, or none. */
		x->frame_timeout = old_timeout;
		chat->has_frame_timeout = had_timeout;
	}
	return evchat__unlock(chat, r);
}
