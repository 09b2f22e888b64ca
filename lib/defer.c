/*
 * Deferred work: one event per event base, shared by its channels.
 *
 * A channel defers work to its loop so that no hook runs inside a call
 * the user made (evchat_set_terminator() with bytes buffered, a push from
 * another thread that must wake a producer, a resume). Most channels never
 * do, yet an event of their own cost each of them about 190 bytes of heap
 * for their whole life. Instead, the channels of one base share an event
 * and a queue of those with work due: a channel pays two links.
 *
 * The queue has a lock of its own, since other threads defer too (their
 * pushes). Lock order: a channel's lock, then its deferrer's; the loop
 * takes a channel off the queue before it takes the channel's lock. Only
 * the loop's thread frees channels, so one taken off the queue is still
 * there when its work runs. The deferrer lives while a channel uses it, or
 * its callback runs: freeing the last channel frees the event, so a
 * program may free its base right after its channels, as with libevent's
 * own objects.
 */
#include <errno.h>
#include <pthread.h>

#include "evchat-internal.h"

struct evchat__deferrer {
	struct event_base *base;
	struct event *ev;
	pthread_mutex_t lock; /* the queue below */
	struct evchat *head;  /* channels with work due, in order */
	struct evchat *tail;
	size_t queued;
	size_t users;                  /* channels, and a callback running */
	struct evchat__deferrer *next; /* in `deferrers` */
};

/* Every base's deferrer. A program has few bases, so a list will do. */
static pthread_mutex_t deferrers_lock = PTHREAD_MUTEX_INITIALIZER;
static struct evchat__deferrer *deferrers;

static void unqueue(struct evchat__deferrer *d, struct evchat *chat)
{
	if (chat->defer_prev != NULL)
		chat->defer_prev->defer_next = chat->defer_next;
	else
		d->head = chat->defer_next;
	if (chat->defer_next != NULL)
		chat->defer_next->defer_prev = chat->defer_prev;
	else
		d->tail = chat->defer_prev;
	chat->defer_prev = chat->defer_next = NULL;
	d->queued--;
}

static int is_queued(const struct evchat__deferrer *d,
                     const struct evchat *chat)
{
	return chat->defer_prev != NULL || d->head == chat;
}

/* Drops a use; the last one frees the deferrer. */
static void release(struct evchat__deferrer *d)
{
	pthread_mutex_lock(&deferrers_lock);
	if (--d->users > 0) {
		pthread_mutex_unlock(&deferrers_lock);
		return;
	}
	struct evchat__deferrer **p = &deferrers;
	while (*p != d)
		p = &(*p)->next;
	*p = d->next;
	pthread_mutex_unlock(&deferrers_lock);
	event_free(d->ev);
	pthread_mutex_destroy(&d->lock);
	evchat__free(d);
}

static void deferrer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct evchat__deferrer *d = arg;
	(void)fd, (void)what;
	/* The last channel may be freed by the work run below. */
	pthread_mutex_lock(&deferrers_lock);
	d->users++;
	pthread_mutex_unlock(&deferrers_lock);

	/* Only the channels queued now: one that defers again from its own
	 * work (a producer that yields) waits for the next round, so other
	 * events get their turn. */
	pthread_mutex_lock(&d->lock);
	size_t n = d->queued;
	pthread_mutex_unlock(&d->lock);
	while (n-- > 0) {
		pthread_mutex_lock(&d->lock);
		struct evchat *chat = d->head;
		if (chat != NULL)
			unqueue(d, chat);
		pthread_mutex_unlock(&d->lock);
		if (chat == NULL)
			break;
		evchat__deferred_run(chat);
		/* A hook asked the loop to stop: the channels still due
		 * wait for its next run, as they would with events of their
		 * own. */
		if (n > 0 && event_base_got_break(d->base)) {
			pthread_mutex_lock(&d->lock);
			int more = d->head != NULL;
			pthread_mutex_unlock(&d->lock);
			if (more)
				event_active(d->ev, EV_TIMEOUT, 1);
			break;
		}
	}
	release(d);
}

int evchat__defer_attach(struct evchat *chat)
{
	struct event_base *base = bufferevent_get_base(chat->bev);
	pthread_mutex_lock(&deferrers_lock);
	struct evchat__deferrer *d = deferrers;
	while (d != NULL && d->base != base)
		d = d->next;
	if (d == NULL) {
		d = evchat__calloc(1, sizeof(*d));
		if (d != NULL &&
		    (d->ev = event_new(base, -1, 0, deferrer_cb, d)) == NULL) {
			evchat__free(d);
			d = NULL;
		}
		if (d != NULL && pthread_mutex_init(&d->lock, NULL) != 0) {
			event_free(d->ev);
			evchat__free(d);
			d = NULL;
		}
		if (d == NULL) {
			pthread_mutex_unlock(&deferrers_lock);
			errno = ENOMEM;
			return -1;
		}
		d->base = base;
		d->next = deferrers;
		deferrers = d;
	}
	d->users++;
	pthread_mutex_unlock(&deferrers_lock);
	chat->deferrer = d;
	return 0;
}

void evchat__defer_detach(struct evchat *chat)
{
	struct evchat__deferrer *d = chat->deferrer;
	if (d == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	if (is_queued(d, chat))
		unqueue(d, chat);
	pthread_mutex_unlock(&d->lock);
	chat->deferrer = NULL;
	release(d);
}

void evchat__defer(struct evchat *chat, unsigned work)
{
	struct evchat__deferrer *d = chat->deferrer;
	if (chat->freeing)
		return;
	chat->deferred_work |= work;
	pthread_mutex_lock(&d->lock);
	int wake = !is_queued(d, chat);
	if (wake) {
		chat->defer_prev = d->tail;
		if (d->tail != NULL)
			d->tail->defer_next = chat;
		else
			d->head = chat;
		d->tail = chat;
		d->queued++;
	}
	pthread_mutex_unlock(&d->lock);
	/* Activating an active event does nothing: one run does all the
	 * work queued meanwhile. */
	if (wake)
		event_active(d->ev, EV_TIMEOUT, 1);
}
