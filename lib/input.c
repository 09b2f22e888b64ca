/*
 * The input path: frames bytes from the bufferevent's input buffer with the
 * current terminator and feeds the collect and found hooks.
 *
 * This follows asynchat's handle_read() loop: each round looks at the
 * terminator afresh, so a hook that changes it affects bytes that are
 * already buffered. Bytes are moved (not copied where libevent can avoid
 * it) out of the input buffer as soon as they are known to belong to the
 * current frame; see lib/scanner.c for why that keeps scanning linear.
 */
#include <errno.h>

#include "evchat-internal.h"

/* The current frame outgrew its limit. Every earlier frame has been
 * delivered; the rest of the input cannot be framed reliably, so reading
 * stops here. */
static void frame_too_long(struct evchat *chat)
{
	chat->read_done = 1;
	bufferevent_disable(chat->bev, EV_READ);
	evbuffer_drain(bufferevent_get_input(chat->bev), (size_t)-1);
	evbuffer_drain(chat->frame, (size_t)-1);
	evchat__report(chat, EVCHAT_EVENT_FRAME_TOO_LONG | EVCHAT_EVENT_READING);
}

/* Out of memory while gathering: nothing sane can follow. */
static void input_failed(struct evchat *chat)
{
	chat->failed = 1;
	bufferevent_disable(chat->bev, EV_READ | EV_WRITE);
	errno = ENOMEM;
	evchat__report(chat, EVCHAT_EVENT_ERROR | EVCHAT_EVENT_READING);
}

/* Moves n bytes from the input into the current frame (or through the
 * collect hook). Returns nonzero when the loop must stop. */
static int gather(struct evchat *chat, struct evbuffer *input, size_t n)
{
	if (chat->max_frame != 0 &&
	    (n > chat->max_frame || chat->frame_bytes > chat->max_frame - n)) {
		frame_too_long(chat);
		return 1;
	}
	chat->frame_bytes += n;
	if (evchat__buffer_move(chat->frame, input, n) < 0) {
		input_failed(chat);
		return 1;
	}
	if (chat->collect == NULL)
		return 0;
	chat->collect(chat, chat->frame, chat->arg);
	if (chat->freeing)
		return 1;
	/* Whatever the hook left is discarded, as documented. */
	evbuffer_drain(chat->frame, (size_t)-1);
	return 0;
}

/* The current frame is complete: hand it to found. */
static int end_frame(struct evchat *chat)
{
	chat->frame_bytes = 0;
	if (chat->found != NULL) {
		chat->found(chat, chat->collect ? NULL : chat->frame, chat->arg);
		if (chat->freeing)
			return 1;
	}
	evbuffer_drain(chat->frame, (size_t)-1);
	return 0;
}

static int input_blocked(const struct evchat *chat)
{
	return chat->freeing || chat->failed || chat->read_done ||
	       chat->closing;
}

void evchat__input_run(struct evchat *chat)
{
	/* A hook that changes the terminator while this loop runs is seen
	 * by the loop itself; running a second loop would reorder frames. */
	if (chat->in_input)
		return;
	chat->in_input = 1;

	struct evbuffer *input = bufferevent_get_input(chat->bev);
	while (!input_blocked(chat)) {
		struct evchat__terminator *term = &chat->term;
		if (term->kind == EVCHAT_TERM_COUNT && term->remaining == 0) {
			/* A count of 0 ends an empty frame now. */
			term->kind = EVCHAT_TERM_NONE;
			if (end_frame(chat))
				break;
			continue;
		}
		size_t avail = evbuffer_get_length(input);
		if (avail == 0)
			break;

		if (term->kind == EVCHAT_TERM_NONE) {
			if (gather(chat, input, avail))
				break;
		} else if (term->kind == EVCHAT_TERM_COUNT) {
			size_t n = avail;
			if ((ev_uint64_t)n > term->remaining)
				n = (size_t)term->remaining;
			/* Count down first: a collect hook may look. */
			term->remaining -= n;
			if (gather(chat, input, n))
				break;
			/* The loop's next round ends the frame, unless the
			 * collect hook set a new terminator meanwhile. */
		} else {
			size_t held;
			size_t term_len = term->len;
			ev_ssize_t at = evchat__terminator_find(term, input, &held);
			if (at < 0) {
				/* No terminator yet: keep only a possible
				 * start of one for the next read. */
				if (avail > held)
					gather(chat, input, avail - held);
				break;
			}
			if (at > 0 && gather(chat, input, (size_t)at))
				break;
			/* As in asynchat, the terminator that was found is
			 * dropped even if the collect hook changed it. */
			evbuffer_drain(input, term_len);
			if (end_frame(chat))
				break;
		}
	}
	chat->in_input = 0;
}

void evchat__input_finish(struct evchat *chat)
{
	evchat__input_run(chat);
	if (chat->freeing)
		return;
	/* Whatever is left never saw its terminator. asynchat drops a held
	 * partial terminator here; we keep every byte. */
	struct evbuffer *input = bufferevent_get_input(chat->bev);
	size_t left = evbuffer_get_length(input);
	if (left == 0)
		return;
	if (chat->collect != NULL && !chat->closing && !chat->failed) {
		chat->frame_bytes += left;
		evchat__buffer_move(chat->frame, input, left);
		chat->collect(chat, chat->frame, chat->arg);
		if (!chat->freeing)
			evbuffer_drain(chat->frame, (size_t)-1);
	} else {
		evchat__buffer_move(chat->frame, input, left);
	}
}

void evchat__input_discard(struct evchat *chat)
{
	evbuffer_drain(bufferevent_get_input(chat->bev), (size_t)-1);
	evbuffer_drain(chat->frame, (size_t)-1);
	chat->frame_bytes = 0;
}

void evchat__read_cb(struct bufferevent *bev, void *ctx)
{
	struct evchat *chat = ctx;
	(void)bev;
	evchat__enter(chat);
	evchat__input_run(chat);
	evchat__leave(chat);
}

/* Called after any terminator change: bytes already buffered are framed
 * with the new terminator from the event loop, unless the input loop is
 * running and will do it itself. */
static void terminator_changed(struct evchat *chat)
{
	if (!chat->in_input)
		evchat__defer(chat, EVCHAT__DEFER_INPUT);
}

int evchat_set_terminator(struct evchat *chat, const void *term, size_t len)
{
	if (chat == NULL || term == NULL || len == 0) {
		errno = EINVAL;
		return -1;
	}
	if (evchat__terminator_set_string(&chat->term, term, len) < 0)
		return -1;
	terminator_changed(chat);
	return 0;
}

int evchat_set_terminator_count(struct evchat *chat, ev_uint64_t count)
{
	if (chat == NULL) {
		errno = EINVAL;
		return -1;
	}
	chat->term.kind = EVCHAT_TERM_COUNT;
	chat->term.remaining = count;
	terminator_changed(chat);
	return 0;
}

int evchat_set_terminator_none(struct evchat *chat)
{
	if (chat == NULL) {
		errno = EINVAL;
		return -1;
	}
	chat->term.kind = EVCHAT_TERM_NONE;
	chat->term.remaining = 0;
	terminator_changed(chat);
	return 0;
}

enum evchat_term evchat_get_terminator(const struct evchat *chat,
                                       const void **term, size_t *len,
                                       ev_uint64_t *remaining)
{
	enum evchat_term kind = chat ? chat->term.kind : EVCHAT_TERM_NONE;
	if (term != NULL)
		*term = kind == EVCHAT_TERM_STRING ? chat->term.bytes : NULL;
	if (len != NULL)
		*len = kind == EVCHAT_TERM_STRING ? chat->term.len : 0;
	if (remaining != NULL)
		*remaining = kind == EVCHAT_TERM_COUNT ? chat->term.remaining : 0;
	return kind;
}

int evchat_set_max_frame(struct evchat *chat, size_t max)
{
	if (chat == NULL) {
		errno = EINVAL;
		return -1;
	}
	chat->max_frame = max;
	return 0;
}

struct evbuffer *evchat_get_pending(struct evchat *chat)
{
	return chat ? chat->frame : NULL;
}
