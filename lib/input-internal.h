/*
 * Internals shared by the input path's files, never installed:
 * lib/input.c runs the loop, lib/frames.c does one round of it for each
 * kind of terminator, lib/deliver.c hands a frame's bytes to the hooks.
 */
#ifndef EVCHAT_INPUT_INTERNAL_H_INCLUDED_
#define EVCHAT_INPUT_INTERNAL_H_INCLUDED_

#include "evchat-internal.h"

/* Whether the loop must stop: every hook may pause input, close, or free
 * the channel, so the loop asks after each one. */
static inline int evchat__input_blocked(const struct evchat *chat)
{
	return chat->freeing || chat->failed || chat->read_done ||
	       chat->closing || chat->paused;
}

/* How much of the current frame the channel has seen: in collect mode
 * the bytes already handed to the hook, in frame mode what the frame
 * buffer holds (the user may have drained some of it). */
static inline size_t evchat__frame_size(const struct evchat *chat)
{
	return chat->frame_bytes +
	       (chat->frame != NULL ? evbuffer_get_length(chat->frame) : 0);
}

/* Whether n more bytes keep a frame of `size` bytes within the limit. */
static inline int evchat__fits_limit(const struct evchat *chat, size_t size,
                                     size_t n)
{
	size_t max = chat->max_frame;
	return max == 0 || (n <= max && size <= max - n);
}

/* Whether a count's frame is sure to go over the limit: what it
 * gathered so far and the count still to come. LIMIT_SPLIT delivers any
 * frame in pieces, and a frame being skipped is dealt with already. */
static inline int evchat__count_over_limit(const struct evchat *chat)
{
	ev_uint64_t remaining = chat->term.remaining;
	return chat->max_frame != 0 &&
	       chat->limit_policy != EVCHAT_LIMIT_SPLIT && !chat->skipping &&
	       (remaining > (ev_uint64_t)chat->max_frame ||
	        !evchat__fits_limit(chat, evchat__frame_size(chat),
	                            (size_t)remaining));
}

/* lib/input.c: after a change that may put a count's frame over the
 * limit (the limit lowered, the frame's skip dropped by a discard), the
 * input loop checks it again, and runs from the event loop if it must
 * apply the policy: the frame's bytes may never come to run it. */
void evchat__count_limit_recheck(struct evchat *chat);
static inline void evchat__count_limit_check(struct evchat *chat)
{
	if (chat->term.kind == EVCHAT_TERM_COUNT)
		evchat__count_limit_recheck(chat);
}

/* lib/input.c: the limit or its policy was set: a count's frame, and
 * a frame already over a lowered limit, get the policy from the input
 * loop. */
void evchat__limit_changed(struct evchat *chat);

/* lib/deliver.c */
/* Reading ends for good on a refused frame (too long under LIMIT_CLOSE,
 * or an impossible length field), reported with `cause`. */
void evchat__input_refused(struct evchat *chat, short cause);
/* Out of memory while gathering: the channel fails with ENOMEM. */
void evchat__input_failed(struct evchat *chat);
/* Collect mode: hands what was gathered to the hook. Nonzero to stop. */
int evchat__hand_to_collect(struct evchat *chat);
/* The frame may be over the limit with no byte gathered since (see
 * recheck_frame): the policy applies as it would to the next byte;
 * then collect mode hands over what joined the frame. Nonzero to
 * stop; *term_set says whether a piece's hook set a terminator, which
 * frames what follows. */
int evchat__frame_recheck(struct evchat *chat, struct evbuffer *input,
                          int *term_set);
/* Collect mode, a frame about to end with no new byte: hands over what
 * frame mode gathered before the collect hook was set. Nonzero to stop. */
int evchat__hand_gathered(struct evchat *chat);
/* The current frame ends here: delivered, or its skip reported. Nonzero
 * to stop. */
int evchat__end_frame(struct evchat *chat);
/* LIMIT_DISCARD: drops what the current frame gathered and skips the
 * rest of it. */
void evchat__start_skipping(struct evchat *chat);
/* Moves n bytes of the current frame from the input into the frame (or
 * through the collect hook), applying the limit; *used says how many
 * were taken. Nonzero to stop, possibly before all n were taken. */
int evchat__gather(struct evchat *chat, struct evbuffer *input, size_t n,
                   size_t *used);

/* lib/frames.c: one round of the loop with a count, a string or line,
 * and a length-field or decoded-header terminator. Nonzero to stop. For
 * strings, `clean` bytes at the start of the input's first chain are
 * known to hold no terminator, and *clean_after says the same for the
 * next round. */
int evchat__frame_count(struct evchat *chat, struct evbuffer *input,
                        size_t avail);
/* A count reached, its trailer due: checked as its bytes come, a wrong
 * one refused; the frame ends once it is whole. Nonzero to stop. */
int evchat__frame_trailer(struct evchat *chat, struct evbuffer *input);
/* A frame sure to pass the limit under CLOSE or DISCARD (a count's or
 * a header's before its bytes come, one a change put over): refused
 * (nonzero: stop) or skipped from its start, by the policy. */
int evchat__frame_over_limit(struct evchat *chat);
int evchat__frame_string(struct evchat *chat, struct evbuffer *input,
                         size_t avail, size_t clean, size_t *clean_after);
int evchat__frame_length(struct evchat *chat, struct evbuffer *input,
                         size_t avail);
/* The loop's first round after a read into the thread's read scratch
 * (`data`, n bytes): with nothing buffered before them, the frames lying
 * whole there run from where they are, so a read that is all whole
 * frames never touches the input buffer; what is left is copied into
 * `input`. *clean_after as for strings. Nonzero to stop. */
int evchat__frame_read(struct evchat *chat, struct evbuffer *input,
                       const unsigned char *data, size_t n,
                       size_t *clean_after);

#endif /* EVCHAT_INPUT_INTERNAL_H_INCLUDED_ */
