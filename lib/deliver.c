/*
 * Handing a frame's bytes to the hooks: gathering them into the frame
 * buffer or through the collect hook, the frame limit and its policies,
 * and the end of a frame, delivered to found or found_bytes.
 *
 * Every hook may pause input, close, discard the buffers or free the
 * channel: each function here looks after every hook it runs and says
 * whether the loop must stop.
 */
#include <errno.h>

#include "input-internal.h"

/* Reading ends for good on a frame the channel refuses (too long under
 * LIMIT_CLOSE, or an impossible length field). Every earlier frame has
 * been delivered; the rest of the input cannot be framed reliably. */
void evchat__input_refused(struct evchat *chat, short cause)
{
	chat->read_done = 1;
	chat->refused = 1;
	bufferevent_disable(chat->bev, EV_READ);
	evbuffer_drain(bufferevent_get_input(chat->bev), (size_t)-1);
	if (chat->in != NULL)
		evbuffer_drain(chat->in, (size_t)-1);
	if (evchat__header(chat) != NULL)
		evbuffer_drain(evchat__header(chat), (size_t)-1);
	evbuffer_drain(chat->frame, (size_t)-1);
	chat->frame_bytes = 0;
	evchat__report(chat, cause | EVCHAT_EVENT_READING);
}

/* Out of memory while gathering: nothing sane can follow. */
void evchat__input_failed(struct evchat *chat)
{
	chat->failed = 1;
	bufferevent_disable(chat->bev, EV_READ | EV_WRITE);
	errno = ENOMEM;
	evchat__report(chat, EVCHAT_EVENT_ERROR | EVCHAT_EVENT_READING);
}

/* Collect mode: hands what was gathered to the hook. Nonzero to stop. */
int evchat__hand_to_collect(struct evchat *chat)
{
	size_t len = evbuffer_get_length(chat->frame);
	if (chat->collect == NULL || len == 0)
		return 0;
	chat->frame_bytes += len;
	chat->collect(chat, chat->frame, chat->arg);
	if (chat->freeing)
		return 1;
	/* Whatever the hook left is discarded, as documented. */
	evbuffer_drain(chat->frame, (size_t)-1);
	return evchat__input_blocked(chat);
}

/* Collect mode, with bytes the hook has not seen (frame mode gathered
 * them before the collect hook was set), and the frame about to end with
 * no new byte, which would have taken them along: they go now, while the
 * end is still in the input, so a hook that pauses, closes or discards
 * stops before it. (With new bytes, evchat__gather() hands them over together.)
 * Nonzero to stop. */
int evchat__hand_gathered(struct evchat *chat)
{
	if (chat->collect == NULL || evbuffer_get_length(chat->frame) == 0)
		return 0;
	unsigned gen = chat->input_gen;
	return evchat__hand_to_collect(chat) || chat->input_gen != gen;
}

/* Runs the found hook for a frame held in a buffer (NULL in collect
 * mode). found takes it whenever it is set: alone, or beside found_bytes
 * (evchat_setcb_both()), which then gets only the frames lent in place.
 * found_bytes alone needs it contiguous: a frame that arrived in pieces is
 * copied together once, in the buffer itself. */
static void run_found(struct evchat *chat, struct evbuffer *frame)
{
	if (chat->found != NULL) {
		chat->found(chat, frame, chat->arg);
		return;
	}
	if (chat->found_bytes == NULL)
		return;
	struct evbuffer *spill = NULL;
	if (frame == chat->frame && evbuffer_get_length(frame) > 0) {
		/* Out of the pending buffer first (a move, no copy), into a
		 * spare: the hook may discard or drain that one, and the
		 * bytes it is lent must stay until it returns. */
		if ((spill = evchat__spare_take()) == NULL) {
			evchat__input_failed(chat);
			return;
		}
		evbuffer_add_buffer(spill, frame);
		frame = spill;
	}
	size_t len = frame != NULL ? evbuffer_get_length(frame) : 0;
	/* Never NULL, even for no bytes: memcpy(dst, NULL, 0) is undefined,
	 * and hooks pass the frame on without checking its length. */
	const unsigned char *bytes = (const unsigned char *)"";
	if (len > 0 && (bytes = evbuffer_pullup(frame, -1)) == NULL)
		evchat__input_failed(chat);
	else
		chat->found_bytes(chat, bytes, len, chat->arg);
	if (frame != NULL)
		evbuffer_drain(frame, (size_t)-1);
	if (spill != NULL) /* not the channel's: back even if it was freed */
		evchat__spare_give(spill);
}

/* Runs found for a piece of a frame split by LIMIT_SPLIT (in `piece`, or
 * the frame buffer if NULL). Inside it a count (or a length-framed body)
 * tells what is left of it after the piece, `left`, whichever reads
 * brought it: the caller counts the bytes down only when its round is
 * over. Nonzero to stop; *term_set says whether the hook set a
 * terminator, which frames what follows the piece. */
static int deliver_piece(struct evchat *chat, struct evbuffer *piece,
                         ev_uint64_t left, int *term_set)
{
	struct evchat__terminator *term = &chat->term;
	int counts = term->kind == EVCHAT_TERM_COUNT ||
	             (evchat__term_has_header(term->kind) && term->in_body);
	ev_uint64_t remaining = term->remaining;
	unsigned term_gen = chat->term_gen;
	if (counts)
		term->remaining = left;
	chat->frame_bytes = 0;
	chat->partial = 1;
	if (piece != NULL) {
		run_found(chat, piece);
		evbuffer_drain(piece, (size_t)-1); /* a spare: ours */
	} else if (chat->collect != NULL) {
		/* The piece went to collect already. What the frame buffer
		 * holds after the hook joined it meanwhile (half a length
		 * header, at a terminator change) and starts what follows. */
		run_found(chat, NULL);
	} else {
		run_found(chat, chat->frame);
		if (!chat->freeing)
			evbuffer_drain(chat->frame, (size_t)-1);
	}
	chat->partial = 0;
	if (chat->freeing)
		return 1;
	*term_set = chat->term_gen != term_gen;
	if (counts && !*term_set)
		term->remaining = remaining;
	return 0;
}

/* LIMIT_SPLIT, frame mode, after the limit was lowered below what the
 * frame already holds: hand the surplus over in pieces of the new limit,
 * each in a buffer of its own, so no piece exceeds it. A terminator set
 * on a piece frames the bytes after it: they go back to the input.
 * Nonzero to stop. */
static int split_gathered(struct evchat *chat, struct evbuffer *input,
                          unsigned gen, int *term_set)
{
	/* A piece's hook may lift the limit or change the policy: the
	 * caller then goes on under the new one. */
	while (chat->limit_policy == EVCHAT_LIMIT_SPLIT &&
	       chat->max_frame != 0 &&
	       evbuffer_get_length(chat->frame) > chat->max_frame) {
		struct evbuffer *piece = evchat__spare_take();
		if (piece == NULL) {
			evchat__input_failed(chat);
			return 1;
		}
		evbuffer_remove_buffer(chat->frame, piece, chat->max_frame);
		/* What the frame holds beyond the piece was counted down
		 * already: it is left too. A decoder's body may be near
		 * 2^64, so the sum saturates. */
		ev_uint64_t left = chat->term.remaining;
		size_t held = evbuffer_get_length(chat->frame);
		left = left > EV_UINT64_MAX - held ? EV_UINT64_MAX
		                                   : left + held;
		int stop = deliver_piece(chat, piece, left, term_set);
		evchat__spare_give(piece);
		if (stop || evchat__input_blocked(chat) ||
		    chat->input_gen != gen)
			return 1;
		if (*term_set) {
			if (evbuffer_prepend_buffer(input, chat->frame) < 0) {
				evchat__input_failed(chat);
				return 1;
			}
			return 0;
		}
	}
	return 0;
}

/* The current frame ends here. Nonzero to stop. */
int evchat__end_frame(struct evchat *chat)
{
	evchat__count_frame(chat);
	if (!chat->skipping) {
		chat->frame_bytes = 0;
		run_found(chat, chat->collect ? NULL : chat->frame);
		if (chat->freeing)
			return 1;
		evbuffer_drain(chat->frame, (size_t)-1);
		return 0;
	}
	chat->skipping = 0;
	chat->extra->discarded = chat->extra->discarding;
	chat->extra->discarding = 0;
	return evchat__report(chat, EVCHAT_EVENT_FRAME_DISCARDED |
	                                EVCHAT_EVENT_READING);
}

int evchat__frame_recheck(struct evchat *chat, struct evbuffer *input,
                          int *term_set)
{
	unsigned gen = chat->input_gen;
	*term_set = 0;
	if (!chat->skipping &&
	    !evchat__fits_limit(chat, evchat__frame_size(chat), 0)) {
		if (chat->limit_policy != EVCHAT_LIMIT_SPLIT)
			return evchat__frame_over_limit(chat);
		/* Full pieces go now. A piece's hook that sets
		 * a terminator has the rest framed anew from the input. */
		if (chat->collect == NULL)
			return split_gathered(chat, input, gen, term_set);
		if (evchat__hand_to_collect(chat) || chat->input_gen != gen)
			return 1;
		return deliver_piece(chat, NULL, chat->term.remaining,
		                     term_set) ||
		       evchat__input_blocked(chat) || chat->input_gen != gen;
	}
	return evchat__hand_to_collect(chat) || chat->input_gen != gen;
}

/* Starts skipping the current frame (LIMIT_DISCARD): what was gathered
 * goes, and so will the rest of the frame up to its end. */
void evchat__start_skipping(struct evchat *chat)
{
	chat->skipping = 1;
	chat->extra->discarding = evchat__frame_size(chat);
	evbuffer_drain(chat->frame, (size_t)-1);
	chat->frame_bytes = 0;
}

/* Moves n bytes of the current frame from the input into the frame (or
 * through the collect hook), applying the frame limit. *used says how
 * many bytes were taken from the input. Nonzero when the loop must stop,
 * possibly before all n bytes were taken. */
int evchat__gather(struct evchat *chat, struct evbuffer *input, size_t n,
                   size_t *used)
{
	unsigned gen = chat->input_gen;
	*used = 0;
	while (n > 0) {
		if (chat->skipping) {
			evbuffer_drain(input, n);
			chat->extra->discarding += n;
			*used += n;
			return 0;
		}
		size_t size = evchat__frame_size(chat);
		size_t take = n;
		size_t max = chat->max_frame;
		if (!evchat__fits_limit(chat, size, n)) {
			if (chat->limit_policy == EVCHAT_LIMIT_CLOSE) {
				evchat__input_refused(
				    chat, EVCHAT_EVENT_FRAME_TOO_LONG);
				return 1;
			}
			if (chat->limit_policy == EVCHAT_LIMIT_DISCARD) {
				evchat__start_skipping(chat);
				continue;
			}
			/* LIMIT_SPLIT: fill this piece up to the limit. */
			if (size > max && chat->collect == NULL) {
				int term_set = 0;
				if (split_gathered(chat, input, gen, &term_set))
					return 1;
				if (term_set)
					return 0;
				continue;
			}
			take = size < max ? max - size : 0;
		}
		if (evchat__buffer_move(chat->frame, input, take) < 0) {
			evchat__input_failed(chat);
			return 1;
		}
		n -= take;
		*used += take;
		/* A hook that discards the buffers takes the rest of this
		 * frame with it: nothing more of it may be delivered. */
		if (evchat__hand_to_collect(chat) || chat->input_gen != gen)
			return 1;
		/* The collect hook lowered the limit under the frame: the
		 * policy applies now, before the frame can end in this same
		 * read. */
		if (chat->recheck_frame) {
			int term_set;
			chat->recheck_frame = 0;
			if (evchat__frame_recheck(chat, input, &term_set))
				return 1;
			if (term_set)
				return 0;
			continue; /* a skip takes the rest of the frame */
		}
		/* More of this frame follows a full piece: deliver it. */
		if (n > 0) {
			int term_set = 0;
			if (deliver_piece(chat, NULL,
			                  chat->term.remaining - *used,
			                  &term_set) ||
			    evchat__input_blocked(chat) ||
			    chat->input_gen != gen)
				return 1;
			/* A terminator set on the piece frames what follows
			 * it, here as when the piece ended a read: the
			 * caller sees the change and frames the rest. */
			if (term_set)
				return 0;
		}
	}
	return 0;
}
