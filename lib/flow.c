/*
 * Flow control: counting the output queued in every layer, and telling
 * the program when that crosses the watermarks.
 *
 * A filter or TLS bufferevent moves what it is given into the output of
 * the bufferevent below it as fast as it can, so behind a slow peer the
 * bytes pile up there, not in chat->bev's own output. The count therefore
 * covers every layer, and a callback on each lower output buffer wakes the
 * channel when those drain (libevent tells only the top layer's owner).
 */
#include <errno.h>
#include <stdlib.h>

#include "evchat-internal.h"

/* Runs the output side from the loop when a lower layer drained: an
 * unwritable state may lift, a producer refill, a close go on. */
static void lower_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct evchat *chat = arg;
	(void)fd, (void)what;
	struct evchat *outer = evchat__enter(chat);
	/* A held end is released by the input loop, once nothing waits
	 * below (lib/input.c). */
	if (!chat->freeing && chat->end_held && !chat->closing)
		evchat__input_run(chat);
	if (!chat->freeing)
		evchat__output_run(chat);
	evchat__leave(chat, outer);
}

/* On each lower layer's output, and while an end is held on the input of
 * the layer below chat->bev (a TLS layer's read there may bring nothing
 * to frame, and so run no hook of ours). */
static void lower_drained_cb(struct evbuffer *buf,
                             const struct evbuffer_cb_info *info, void *arg)
{
	struct evchat *chat = arg;
	(void)buf;
	/* Called inside libevent's buffer operations, holding the lower
	 * layer's lock, maybe on another thread: touch nothing of the
	 * channel's (its lock comes first), only wake the loop. */
	if (info->n_deleted > 0)
		event_active(chat->extra->lower_wake, EV_TIMEOUT, 1);
}

int evchat__flow_unread_below(struct evchat *chat)
{
	struct bufferevent *below = bufferevent_get_underlying(chat->bev);
	return below != NULL &&
	       evbuffer_get_length(bufferevent_get_input(below)) > 0;
}

int evchat__flow_watch_below(struct evchat *chat, int on)
{
	struct evchat__extra *x = chat->extra;
	if (x == NULL || x->nlower == 0 || (x->below_cb != NULL) == on)
		return 0;
	struct evbuffer *input = bufferevent_get_input(x->lower[0]);
	if (!on) {
		evbuffer_remove_cb_entry(input, x->below_cb);
		x->below_cb = NULL;
		return 0;
	}
	x->below_cb = evbuffer_add_cb(input, lower_drained_cb, chat);
	if (x->below_cb == NULL) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

int evchat__flow_init(struct evchat *chat)
{
	size_t n = 0;
	struct bufferevent *bottom = chat->bev;
	for (struct bufferevent *b = bufferevent_get_underlying(chat->bev);
	     b != NULL; b = bufferevent_get_underlying(b)) {
		bottom = b;
		n++;
	}
	/* Known now, while the partner is there: once it is freed, libevent
	 * tells a pair from a socket without one by nothing public. */
	chat->on_pair = bufferevent_pair_get_partner(bottom) != NULL;
	if (n == 0)
		return 0;
	struct evchat__extra *x = evchat__extra(chat);
	if (x == NULL)
		return -1;
	x->lower = evchat__calloc(n, sizeof(*x->lower));
	x->lower_cbs = evchat__calloc(n, sizeof(*x->lower_cbs));
	x->lower_wake = event_new(bufferevent_get_base(chat->bev), -1, 0,
	                          lower_wake_cb, chat);
	if (x->lower == NULL || x->lower_cbs == NULL || x->lower_wake == NULL)
		return -1;
	struct bufferevent *b = chat->bev;
	for (size_t i = 0; i < n; i++) {
		b = bufferevent_get_underlying(b);
		x->lower_cbs[i] = evbuffer_add_cb(bufferevent_get_output(b),
		                                  lower_drained_cb, chat);
		if (x->lower_cbs[i] == NULL)
			return -1;
		x->lower[i] = b;
		x->nlower = i + 1;
	}
	return 0;
}

void evchat__flow_clear(struct evchat *chat)
{
	struct evchat__extra *x = chat->extra;
	if (x == NULL)
		return;
	for (size_t i = 0; i < x->nlower; i++)
		evbuffer_remove_cb_entry(bufferevent_get_output(x->lower[i]),
		                         x->lower_cbs[i]);
	evchat__flow_watch_below(chat, 0);
	if (x->lower_wake != NULL)
		event_free(x->lower_wake);
	x->lower_wake = NULL;
	evchat__free(x->lower);
	evchat__free(x->lower_cbs);
	x->lower = NULL;
	x->lower_cbs = NULL;
	x->nlower = 0;
}

size_t evchat__layers_queued(struct evchat *chat)
{
	size_t n = evbuffer_get_length(bufferevent_get_output(chat->bev));
	if (chat->batch != NULL)
		n += evbuffer_get_length(chat->batch) + chat->room_used;
	for (size_t i = 0; i < evchat__nlower(chat); i++)
		n += evbuffer_get_length(
		    bufferevent_get_output(chat->extra->lower[i]));
	return n;
}

static void flow_update(struct evchat *chat)
{
	chat->flow_stale = 0;
	size_t queued = evchat__layers_queued(chat);
	if (chat->queue_tail != NULL)
		queued += evchat__items_queued(chat);
	/* Hysteresis: above high turns unwritable, only at or below low
	 * turns writable again. */
	if (!chat->unwritable && queued > evchat__write_high(chat)) {
		chat->unwritable = 1;
		chat->flow_flipped = 1;
	} else if (chat->unwritable && queued <= evchat__write_low(chat)) {
		chat->unwritable = 0;
		chat->flow_flipped = 1;
	}
}

void evchat__flow_check(struct evchat *chat)
{
	flow_update(chat);
	/* The hook hears of a change from the loop, never inside a push;
	 * that run also sets the write watermark the new state needs. */
	if (chat->flow_flipped)
		evchat__defer(chat, EVCHAT__DEFER_OUTPUT);
}

/* Tells the hook the state it has not heard yet. 1 if it freed. */
static int tell(struct evchat *chat)
{
	if (chat->writable != NULL)
		chat->writable(chat, !chat->unwritable_told, chat->arg);
	return chat->freeing;
}

int evchat__flow_tell(struct evchat *chat)
{
	flow_update(chat);
	if (!chat->flow_flipped)
		return 0;
	chat->flow_flipped = 0;
	/* Gone the other way and back since the hook last heard: it hears
	 * both, because the program may have acted on evchat_is_writable()
	 * meanwhile (a proxy that paused its upstream must get its 1). */
	if (chat->unwritable == chat->unwritable_told) {
		chat->unwritable_told = !chat->unwritable_told;
		if (tell(chat))
			return 1;
	}
	if (chat->unwritable != chat->unwritable_told) {
		chat->unwritable_told = chat->unwritable;
		if (tell(chat))
			return 1;
	}
	return 0;
}

int evchat_set_write_watermarks(struct evchat *chat, size_t low, size_t high)
{
	if (chat == NULL || high == 0 || low > high) {
		errno = EINVAL;
		return -1;
	}
	evchat__lock(chat);
	/* Kept in the extra block: most channels keep the defaults. */
	struct evchat__extra *x = evchat__extra(chat);
	if (x == NULL)
		return evchat__unlock(chat, -1);
	x->write_low = low;
	x->write_high = high;
	/* The new marks may let a producer run, or change the state. */
	evchat__flow_check(chat);
	evchat__defer(chat, EVCHAT__DEFER_OUTPUT);
	return evchat__unlock(chat, 0);
}

void evchat_set_writable_cb(struct evchat *chat, evchat_writable_cb writable)
{
	if (chat == NULL)
		return;
	evchat__lock(chat);
	if (!chat->freeing)
		chat->writable = writable;
	evchat__unlock(chat, 0);
}

int evchat_is_writable(struct evchat *chat)
{
	if (chat == NULL)
		return 0;
	evchat__lock(chat);
	/* Pushes from the input loop's hooks are counted only at its end;
	 * a hook asking after its pushes gets the state they made. There
	 * only pushes, and writes to the bufferevent itself after
	 * evchat_get_bufferevent(), make the count grow (the output is
	 * written from the loop, which is busy; a layer below may drain,
	 * which the count at the loop's end sees), so a hook that asks
	 * after every frame pays for a count only after it added bytes. */
	if (chat->in_input && chat->flow_stale)
		evchat__flow_check(chat);
	int writable = !chat->unwritable;
	return evchat__unlock(chat, writable);
}

size_t evchat_get_queued(struct evchat *chat)
{
	if (chat == NULL)
		return 0;
	evchat__lock(chat);
	size_t queued = evchat__layers_queued(chat) +
	                evchat__items_queued(chat);
	evchat__unlock(chat, 0);
	return queued;
}
