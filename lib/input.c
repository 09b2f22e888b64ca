/*
 * The input path: frames bytes from the bufferevent's input buffer with the
 * current terminator and feeds the collect and found hooks.
 *
 * This follows asynchat's handle_read() loop: each round looks at the
 * terminator afresh, so a hook that changes it affects bytes that are
 * already buffered. Bytes are moved out of the input buffer as soon as
 * they are known to belong to the current frame; see lib/scanner.c for why
 * that keeps scanning linear. Every hook may pause input, close, or free
 * the channel, so the loop looks at evchat__input_blocked() after each
 * one. The rounds are in lib/frames.c, the delivery in lib/deliver.c.
 */
#include <errno.h>

#include "input-internal.h"

/* Input is over, every buffered frame delivered: whatever is left never
 * saw its end, a partial terminator or half a length header included.
 * asynchat drops a held partial terminator; we keep every byte, in the
 * pending buffer or handed to collect. 0, or -1 when the channel failed
 * (out of memory) or was freed by the hook. */
static int keep_leftovers(struct evchat *chat)
{
	struct evbuffer *read_buf = bufferevent_get_input(chat->bev);
	struct evbuffer *header = evchat__header(chat);
	/* An idle channel holds no buffers, and makes none for nothing. */
	if (chat->in == NULL && header == NULL &&
	    evbuffer_get_length(read_buf) == 0)
		return 0;
	if (evchat__input_buffer(chat) == NULL ||
	    evchat__frame_buffer(chat) == NULL) {
		evchat__input_failed(chat);
		return -1;
	}
	evbuffer_add_buffer(chat->in, read_buf);
	if ((header != NULL &&
	     evchat__buffer_move(chat->frame, header, (size_t)-1) < 0) ||
	    evchat__buffer_move(chat->frame, chat->in, (size_t)-1) < 0) {
		evchat__input_failed(chat);
		return -1;
	}
	if (chat->skipping)
		evbuffer_drain(chat->frame, (size_t)-1);
	else if (!chat->closing)
		evchat__hand_to_collect(chat);
	return chat->freeing ? -1 : 0;
}

/* Framed to the last byte: an idle channel keeps no input, header or
 * frame buffer. The frame buffer goes last, and only with the other two
 * gone, so that any bytes held outside the loop (a partial terminator or
 * header) have it to join when the framing changes or the connection
 * fails. */
static void give_back_empty(struct evchat *chat)
{
	if (chat->in != NULL && chat->lent == 0 &&
	    evbuffer_get_length(chat->in) == 0) {
		evchat__spare_give(chat->in);
		chat->in = NULL;
	}
	struct evbuffer *header = evchat__header(chat);
	if (header != NULL && evbuffer_get_length(header) == 0) {
		evchat__spare_give(header);
		chat->extra->header = NULL;
		header = NULL;
	}
	if (chat->frame != NULL && chat->in == NULL && header == NULL &&
	    !chat->frame_kept && evbuffer_get_length(chat->frame) == 0) {
		evchat__spare_give(chat->frame);
		chat->frame = NULL;
	}
}

/* The end held while input was paused or bytes waited below the TLS
 * layer (evchat__event_cb()), once every frame before it was delivered.
 * A close_notify the TLS layer read since is the clean end it reported
 * (or queued, with deferred callbacks). While bytes wait below it (a rate
 * limit holds its reads back), it reads on later. Otherwise the end comes
 * now, as libevent reported it. */
static void release_end(struct evchat *chat)
{
	int clean = chat->eof_seen || evchat__tls_closed_cleanly(chat->bev);
	if (!clean && evchat__flow_unread_below(chat))
		return;
	chat->end_held = 0;
	evchat__flow_watch_below(chat, 0);
	if (clean)
		return;
	errno = 0; /* the TLS layer's own: no socket error */
	bufferevent_trigger_event(chat->bev,
	                          chat->held_eof ? BEV_EVENT_EOF
	                                         : BEV_EVENT_ERROR,
	                          0);
}

/* The end of input, once every buffered frame was delivered. */
static void finish_eof(struct evchat *chat)
{
	chat->eof_pending = 0;
	chat->read_done = 1;
	if (keep_leftovers(chat) < 0)
		return;
	/* Once a close was asked for, input is only discarded and its end
	 * is the close's business: the hook hears CLOSED (or the failure),
	 * not an EOF it might take for the end and free on, cutting the
	 * flush short. A read timeout is not reported then either. */
	if (chat->closing)
		return;
	if (chat->paused) {
		/* The last collect paused: the EOF waits for the resume. */
		chat->eof_pending = 1;
		return;
	}
	evchat__report(chat, (short)chat->eof_events);
}

/* Whether the current frame ends with no byte to come: a count of 0 or
 * one reached (its trailer aside), a body with nothing left. */
static int frame_end_due(const struct evchat *chat)
{
	const struct evchat__terminator *term = &chat->term;
	return chat->end_due ||
	       (term->remaining == 0 &&
	        ((term->kind == EVCHAT_TERM_COUNT && !term->trailer) ||
	         (evchat__term_has_header(term->kind) && term->in_body)));
}

void evchat__input_run(struct evchat *chat)
{
	evchat__input_run_read(chat, NULL, 0);
}

void evchat__input_run_read(struct evchat *chat, const unsigned char *data,
                            size_t n)
{
	/* A hook that changes the terminator while this loop runs is seen
	 * by the loop itself; running a second loop would reorder frames.
	 * (A read comes from the event loop, never inside this one's
	 * hooks; were it, its bytes would wait in the input.) */
	if (chat->in_input) {
		if (data != NULL && evbuffer_add(chat->in, data, n) < 0)
			evchat__input_failed(chat);
		return;
	}
	if (evchat__input_buffer(chat) == NULL ||
	    evchat__frame_buffer(chat) == NULL) {
		evchat__input_failed(chat);
		return;
	}
	chat->in_input = 1;

	/* The frames are cut from a buffer of the channel's own: the
	 * bufferevent's input buffer runs libevent's callbacks on every
	 * change, which would cost more than the framing itself. Moving
	 * its chains over costs no copy. */
	struct evbuffer *input = chat->in;
	evbuffer_add_buffer(input, bufferevent_get_input(chat->bev));
	/* Bytes the last round's run searched for a string terminator in
	 * vain: good for the very next round only. */
	size_t clean_after = 0;
	int stopped = data != NULL &&
	              evchat__frame_read(chat, input, data, n, &clean_after);
	while (!stopped && !evchat__input_blocked(chat)) {
		struct evchat__terminator *term = &chat->term;
		size_t clean = clean_after;
		clean_after = 0;
		int stop;
		/* Bytes that joined the frame without passing through
		 * evchat__gather() (a half-read length header, when the
		 * terminator changed), or a limit lowered under the frame:
		 * the policy applies before anything else of the frame, and
		 * before its end, which would deliver it whole; collect mode
		 * hands the joined bytes over. */
		if (chat->end_due) {
			chat->end_due = 0;
			if (evchat__end_frame(chat))
				break;
			continue;
		}
		if (chat->recheck_frame) {
			int term_set; /* the next round frames anew anyway */
			chat->recheck_frame = 0;
			if (evchat__frame_recheck(chat, input, &term_set))
				break;
			continue;
		}
		if (term->kind == EVCHAT_TERM_COUNT && term->remaining == 0 &&
		    term->trailer) {
			stop = evchat__frame_trailer(chat, input);
		} else if (term->kind == EVCHAT_TERM_COUNT &&
		           term->remaining == 0) {
			/* A count of 0 ends an empty frame now. */
			unsigned gen = chat->term_gen;
			if (evchat__hand_gathered(chat))
				break;
			if (chat->term_gen == gen) /* else the hook's stays */
				term->kind = EVCHAT_TERM_NONE;
			stop = evchat__end_frame(chat);
		} else if (term->kind == EVCHAT_TERM_COUNT &&
		           chat->count_check) {
			chat->count_check = 0;
			if (!evchat__count_over_limit(chat))
				continue;
			stop = evchat__frame_over_limit(chat);
		} else if (evchat__term_has_header(term->kind) &&
		           term->in_body && term->remaining == 0) {
			/* The body is complete (or empty): the next frame
			 * starts with a header again. */
			if (evchat__hand_gathered(chat))
				break;
			term->in_body = 0;
			stop = evchat__end_frame(chat);
		} else {
			size_t avail = evbuffer_get_length(input);
			if (avail == 0)
				break;
			size_t used;
			switch (term->kind) {
			case EVCHAT_TERM_NONE:
				stop = evchat__gather(chat, input, avail,
				                      &used);
				break;
			case EVCHAT_TERM_COUNT:
				stop = evchat__frame_count(chat, input, avail);
				break;
			case EVCHAT_TERM_LENGTH:
			case EVCHAT_TERM_HEADER:
				stop = evchat__frame_length(chat, input, avail);
				break;
			default:
				stop = evchat__frame_string(chat, input, avail,
				                            clean,
				                            &clean_after);
				break;
			}
		}
		if (stop)
			break;
	}
	/* A hook that discarded the input stops the loop where a frame may
	 * be left to end with no byte to come: the loop runs again for it,
	 * from the event loop. */
	if (!chat->freeing && !evchat__input_blocked(chat) &&
	    frame_end_due(chat))
		evchat__defer(chat, EVCHAT__DEFER_INPUT);
	chat->in_input = 0;
	if (!chat->freeing) {
		/* The hooks' pushes are counted now, before a direct write
		 * sends them: the writable hook hears of a rise above the
		 * high watermark even when the socket takes it all at once,
		 * as it does on a bufferevent written from the loop. Without
		 * the hook nobody could see it (evchat_is_writable() counts
		 * when asked), so the count is left to the one below. */
		if (chat->flow_stale && chat->writable != NULL)
			evchat__flow_check(chat);
		evchat__batch_send(chat);
		evchat__flow_check(chat);
	}
	if (chat->eof_pending && !chat->paused && !chat->freeing &&
	    !chat->failed)
		finish_eof(chat);
	if (chat->read_error != 0 && !chat->paused && !chat->freeing &&
	    !chat->failed)
		evchat__direct_read_error(chat);
	if (chat->end_held && !chat->paused && !chat->freeing &&
	    !chat->failed && !chat->closing)
		release_end(chat);
	/* A frame timeout that cannot be enforced must not be dropped in
	 * silence: a dribbling peer would hold the connection for good. */
	if (evchat__frame_clock_update(chat) < 0)
		evchat__input_failed(chat);
	if (!chat->freeing)
		give_back_empty(chat);
}

struct evbuffer *evchat__input_buffer(struct evchat *chat)
{
	if (chat->in == NULL)
		chat->in = evchat__spare_take();
	return chat->in;
}

struct evbuffer *evchat__frame_buffer(struct evchat *chat)
{
	if (chat->frame == NULL)
		chat->frame = evchat__spare_take();
	return chat->frame;
}

int evchat__frame_in_progress(const struct evchat *chat)
{
	if (chat->term.kind == EVCHAT_TERM_NONE || chat->paused ||
	    chat->read_done || chat->closing || chat->failed)
		return 0;
	return chat->skipping || chat->term.in_body ||
	       evchat__frame_size(chat) > 0 ||
	       (chat->in != NULL && evbuffer_get_length(chat->in) > 0) ||
	       (evchat__header(chat) != NULL &&
	        evbuffer_get_length(evchat__header(chat)) > 0);
}

void evchat__input_timeout(struct evchat *chat, short events)
{
	/* Every buffered frame was delivered (a timeout comes only when no
	 * bytes do, and never while input is paused); what is left is kept
	 * as at EOF. */
	chat->read_done = 1;
	bufferevent_disable(chat->bev, EV_READ);
	evchat__frame_clock_stop(chat);
	if (keep_leftovers(chat) < 0)
		return;
	/* What the peer sent is in the frame buffer now; the rest is
	 * empty and stays empty. */
	give_back_empty(chat);
	evchat__report(chat, events);
}

void evchat__input_eof(struct evchat *chat, short events, int fail)
{
	chat->eof_seen = 1;
	chat->eof_events = (unsigned char)events;
	/* After a refused frame, input is over already, and said so. */
	if (chat->refused)
		return;
	if (fail) {
		/* The connection failed as well: no more hooks for input,
		 * but the bytes stay readable in the pending buffer. */
		chat->read_done = 1;
		struct evbuffer *read_buf = bufferevent_get_input(chat->bev);
		/* A frame lent to a hook that is still running stays where
		 * it is (in `in`, which exists while it runs); the rest
		 * follows when the hook returns. */
		if (chat->lent > 0) {
			evbuffer_add_buffer(chat->in, read_buf);
			chat->pending_after_lend = 1;
			return;
		}
		/* Linked, not copied, as that cannot fail. Without a frame
		 * buffer the channel held no input; out of memory for one,
		 * what came with the error stays in the bufferevent's input
		 * buffer. */
		if (evchat__frame_buffer(chat) == NULL)
			return;
		if (evchat__header(chat) != NULL)
			evbuffer_add_buffer(chat->frame, evchat__header(chat));
		if (chat->in != NULL)
			evbuffer_add_buffer(chat->frame, chat->in);
		evbuffer_add_buffer(chat->frame, read_buf);
		return;
	}
	/* Frames still buffered come first, even if input is paused: then
	 * the EOF waits for evchat_resume_input(). */
	chat->eof_pending = 1;
	evchat__input_run(chat);
}

void evchat__input_discard(struct evchat *chat)
{
	evbuffer_drain(bufferevent_get_input(chat->bev), (size_t)-1);
	/* Bytes lent to the running found_bytes hook stay valid until it
	 * returns: the lender drains them, and the rest, then. */
	if (chat->lent == 0 && chat->in != NULL)
		evbuffer_drain(chat->in, (size_t)-1);
	if (evchat__header(chat) != NULL)
		evbuffer_drain(evchat__header(chat), (size_t)-1);
	if (chat->frame != NULL)
		evbuffer_drain(chat->frame, (size_t)-1);
	chat->frame_bytes = 0;
	chat->skipping = 0;
	if (chat->extra != NULL)
		chat->extra->discarding = 0;
	/* Like a count's remaining bytes, a length-framed body still due
	 * from the peer stays due: the terminator is kept, as documented. */
	chat->input_gen++;
	evchat__count_limit_check(chat);
}

void evchat__limit_changed(struct evchat *chat)
{
	evchat__count_limit_check(chat);
	/* A frame already over a lowered limit gets the policy now, not
	 * with its next byte: it may have none before its end. (Inside a
	 * collect hook the size counts the bytes being handed twice; the
	 * input loop looks again once they are gone.) */
	if (chat->max_frame != 0 && !chat->skipping &&
	    evchat__frame_size(chat) > chat->max_frame) {
		chat->recheck_frame = 1;
		if (!chat->in_input)
			evchat__defer(chat, EVCHAT__DEFER_INPUT);
	}
}

void evchat__count_limit_recheck(struct evchat *chat)
{
	chat->count_check = 1;
	if (evchat__count_over_limit(chat))
		evchat__defer(chat, EVCHAT__DEFER_INPUT);
}

void evchat__read_cb(struct bufferevent *bev, void *ctx)
{
	struct evchat *chat = ctx;
	struct evchat *outer = evchat__enter(chat);
	if (chat->closing) {
		/* A close reads only to discard what the peer still sends. */
		struct evbuffer *input = bufferevent_get_input(bev);
		chat->close_heard |= evbuffer_get_length(input) > 0;
		evbuffer_drain(input, (size_t)-1);
	} else if (chat->api_depth > 0)
		evchat__defer(chat, EVCHAT__DEFER_INPUT);
	else {
		if (chat->options & EVCHAT_OPT_DIRECT_READ)
			evchat__direct_read(chat);
		evchat__input_run(chat);
	}
	evchat__leave(chat, outer);
}

void evchat__terminator_changed(struct evchat *chat)
{
	chat->term_gen++;
	chat->term.in_body = 0;
	/* A half-read length header belongs to the old framing: its bytes
	 * become part of the current frame (in collect mode the input loop
	 * hands them over first), or of what a skipped frame discards.
	 * Linked, not copied: a copy can run out of memory, and nobody would
	 * hear of it here. */
	struct evbuffer *header = evchat__header(chat);
	if (header != NULL && evbuffer_get_length(header) > 0) {
		if (chat->skipping) {
			chat->extra->discarding += evbuffer_get_length(header);
			evbuffer_drain(header, (size_t)-1);
		} else {
			chat->recheck_frame = 1;
			evbuffer_add_buffer(chat->frame, header);
		}
	}
	/* Bytes already buffered are framed with the new terminator from
	 * the event loop, unless the input loop is running and will do it
	 * itself. */
	if (!chat->in_input)
		evchat__defer(chat, EVCHAT__DEFER_INPUT);
}

int evchat_pause_input(struct evchat *chat)
{
	if (chat == NULL) {
		errno = EINVAL;
		return -1;
	}
	evchat__lock(chat);
	chat->paused = 1;
	/* Bounded input: nothing more is read until the resume. The frame
	 * clock stops too: the wait is ours, not the peer's. */
	bufferevent_disable(chat->bev, EV_READ);
	evchat__frame_clock_stop(chat);
	return evchat__unlock(chat, 0);
}

int evchat_resume_input(struct evchat *chat)
{
	if (chat == NULL) {
		errno = EINVAL;
		return -1;
	}
	evchat__lock(chat);
	if (chat->paused) {
		chat->paused = 0;
		/* The frame clock starts afresh when the input loop runs. */
		evchat__defer(chat, EVCHAT__DEFER_RESUME);
	}
	return evchat__unlock(chat, 0);
}

void evchat__input_resume(struct evchat *chat)
{
	/* Paused again meanwhile, or reading is over: after EOF, reading
	 * again would only see EOF again. */
	if (chat->paused || chat->eof_seen || chat->read_done ||
	    chat->closing || chat->failed)
		return;
	/* A TLS filter enabled reads what waits below it at once. */
	bufferevent_enable(chat->bev, EV_READ);
}

int evchat_input_paused(const struct evchat *chat)
{
	return chat != NULL && chat->paused;
}
