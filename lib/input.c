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
	chat->frame_bytes = 0;
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

/* How much of the current frame the channel has seen: in collect mode
 * the bytes already handed to the hook, in frame mode what the frame
 * buffer holds (the user may have drained some of it). */
static size_t frame_size(const struct evchat *chat)
{
	return chat->frame_bytes + evbuffer_get_length(chat->frame);
}

static int input_blocked(const struct evchat *chat)
{
	return chat->freeing || chat->failed || chat->read_done ||
	       chat->closing;
}

/* Moves n bytes from the input into the current frame (or through the
 * collect hook). Returns nonzero when the loop must stop. */
static int gather(struct evchat *chat, struct evbuffer *input, size_t n)
{
	size_t size = frame_size(chat);
	if (chat->max_frame != 0 &&
	    (n > chat->max_frame || size > chat->max_frame - n)) {
		frame_too_long(chat);
		return 1;
	}
	if (evchat__buffer_move(chat->frame, input, n) < 0) {
		input_failed(chat);
		return 1;
	}
	if (chat->collect == NULL)
		return 0;
	chat->frame_bytes += evbuffer_get_length(chat->frame);
	chat->collect(chat, chat->frame, chat->arg);
	if (chat->freeing)
		return 1;
	/* Whatever the hook left is discarded, as documented. */
	evbuffer_drain(chat->frame, (size_t)-1);
	/* The hook may have closed the channel: no frame ends after that. */
	return input_blocked(chat);
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

/* One round with a count terminator. Returns nonzero to stop the loop. */
static int frame_count(struct evchat *chat, struct evbuffer *input,
                       size_t avail)
{
	struct evchat__terminator *term = &chat->term;
	size_t n = avail;
	if ((ev_uint64_t)n > term->remaining)
		n = (size_t)term->remaining;
	/* Count down first: a collect hook may look. */
	term->remaining -= n;
	int completes = term->remaining == 0;
	unsigned gen = chat->term_gen;
	if (gather(chat, input, n))
		return 1;
	if (!completes)
		return 0;
	/* The count is reached: the frame ends even if the collect hook set
	 * a new terminator meanwhile (asynchat does the same), and that new
	 * terminator then stays. Otherwise none applies until one is set. */
	if (chat->term_gen == gen)
		term->kind = EVCHAT_TERM_NONE;
	return end_frame(chat);
}

/* One round with a string terminator. Returns nonzero to stop. */
static int frame_string(struct evchat *chat, struct evbuffer *input,
                        size_t avail)
{
	struct evchat__terminator *term = &chat->term;
	size_t held;
	size_t term_len = term->len;
	unsigned gen = chat->term_gen;
	ev_ssize_t at = evchat__terminator_find(term, input, &held);
	if (at < 0) {
		/* No terminator yet: keep only a possible start of one for
		 * the next read. If the collect hook changed the terminator,
		 * the held bytes are framed again with the new one at once
		 * (asynchat would wait for more input, which may never come
		 * in a request/response protocol). */
		if (avail > held && gather(chat, input, avail - held))
			return 1;
		return held == 0 || chat->term_gen == gen;
	}
	if (at > 0 && gather(chat, input, (size_t)at))
		return 1;
	/* As in asynchat, the terminator that was found is dropped even if
	 * the collect hook changed it. */
	evbuffer_drain(input, term_len);
	return end_frame(chat);
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
		int stop;
		if (term->kind == EVCHAT_TERM_NONE)
			stop = gather(chat, input, avail);
		else if (term->kind == EVCHAT_TERM_COUNT)
			stop = frame_count(chat, input, avail);
		else
			stop = frame_string(chat, input, avail);
		if (stop)
			break;
	}
	chat->in_input = 0;
}

void evchat__input_finish(struct evchat *chat)
{
	/* Frame what is buffered (and what a deferred terminator change
	 * left to do) before input is declared over. */
	evchat__input_run(chat);
	chat->read_done = 1;
	if (chat->freeing)
		return;
	/* Whatever is left never saw its terminator. asynchat drops a held
	 * partial terminator here; we keep every byte. */
	struct evbuffer *input = bufferevent_get_input(chat->bev);
	size_t left = evbuffer_get_length(input);
	if (left == 0 || chat->failed)
		return;
	if (chat->collect != NULL && !chat->closing)
		gather(chat, input, left);
	else if (evchat__buffer_move(chat->frame, input, left) < 0)
		input_failed(chat);
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
	chat->term_gen++;
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
