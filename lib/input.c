/*
 * The input path: frames bytes from the bufferevent's input buffer with the
 * current terminator and feeds the collect and found hooks.
 *
 * This follows asynchat's handle_read() loop: each round looks at the
 * terminator afresh, so a hook that changes it affects bytes that are
 * already buffered. Bytes are moved out of the input buffer as soon as
 * they are known to belong to the current frame; see lib/scanner.c for why
 * that keeps scanning linear. Every hook may pause input, close, or free
 * the channel, so the loop looks at input_blocked() after each one.
 */
#include <errno.h>

#include "evchat-internal.h"

static int input_blocked(const struct evchat *chat)
{
	return chat->freeing || chat->failed || chat->read_done ||
	       chat->closing || chat->paused;
}

/* Reading ends for good on a frame the channel refuses (too long under
 * LIMIT_CLOSE, or an impossible length field). Every earlier frame has
 * been delivered; the rest of the input cannot be framed reliably. */
static void input_refused(struct evchat *chat, short cause)
{
	chat->read_done = 1;
	chat->refused = 1;
	bufferevent_disable(chat->bev, EV_READ);
	evbuffer_drain(bufferevent_get_input(chat->bev), (size_t)-1);
	if (chat->in != NULL)
		evbuffer_drain(chat->in, (size_t)-1);
	if (chat->header != NULL)
		evbuffer_drain(chat->header, (size_t)-1);
	evbuffer_drain(chat->frame, (size_t)-1);
	chat->frame_bytes = 0;
	evchat__report(chat, cause | EVCHAT_EVENT_READING);
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
	return chat->frame_bytes +
	       (chat->frame != NULL ? evbuffer_get_length(chat->frame) : 0);
}

/* Whether n more bytes keep a frame of `size` bytes within the limit. */
static int fits_limit(const struct evchat *chat, size_t size, size_t n)
{
	size_t max = chat->max_frame;
	return max == 0 || (n <= max && size <= max - n);
}

/* Collect mode: hands what was gathered to the hook. Nonzero to stop. */
static int hand_to_collect(struct evchat *chat)
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
	return input_blocked(chat);
}

/* Collect mode, with bytes the hook has not seen (frame mode gathered
 * them before the collect hook was set), and the frame about to end with
 * no new byte, which would have taken them along: they go now, while the
 * end is still in the input, so a hook that pauses, closes or discards
 * stops before it. (With new bytes, gather() hands them over together.)
 * Nonzero to stop. */
static int hand_gathered(struct evchat *chat)
{
	if (chat->collect == NULL || evbuffer_get_length(chat->frame) == 0)
		return 0;
	unsigned gen = chat->input_gen;
	return hand_to_collect(chat) || chat->input_gen != gen;
}

/* Runs whichever found hook is set on a frame held in a buffer (NULL in
 * collect mode). found_bytes needs it contiguous: a frame that arrived in
 * pieces is copied together once, in the buffer itself. */
static void run_found(struct evchat *chat, struct evbuffer *frame)
{
	if (chat->found_bytes == NULL) {
		if (chat->found != NULL)
			chat->found(chat, frame, chat->arg);
		return;
	}
	if (frame == chat->frame && evbuffer_get_length(frame) > 0) {
		/* Out of the pending buffer first (a move, no copy): the hook
		 * may discard or drain that one, and the bytes it is lent
		 * must stay until it returns. */
		if (chat->spill == NULL &&
		    (chat->spill = evbuffer_new()) == NULL) {
			input_failed(chat);
			return;
		}
		evbuffer_add_buffer(chat->spill, frame);
		frame = chat->spill;
	}
	size_t len = frame != NULL ? evbuffer_get_length(frame) : 0;
	const unsigned char *bytes = NULL;
	if (len > 0 && (bytes = evbuffer_pullup(frame, -1)) == NULL) {
		input_failed(chat);
		return;
	}
	chat->found_bytes(chat, bytes, len, chat->arg);
	if (frame != NULL)
		evbuffer_drain(frame, (size_t)-1);
}

/* Gives found the current frame, or a piece of it. Nonzero to stop. */
static int deliver(struct evchat *chat, int partial)
{
	chat->frame_bytes = 0;
	chat->partial = partial;
	run_found(chat, chat->collect ? NULL : chat->frame);
	chat->partial = 0;
	if (chat->freeing)
		return 1;
	evbuffer_drain(chat->frame, (size_t)-1);
	return 0;
}

/* Whether the frame ending now may be lent in place: found_bytes is set,
 * and nothing of the frame was gathered elsewhere before. */
static int may_lend(const struct evchat *chat)
{
	return chat->found_bytes != NULL && chat->collect == NULL &&
	       !chat->skipping && frame_size(chat) == 0;
}

/* LIMIT_SPLIT, frame mode, after the limit was lowered below what the
 * frame already holds: hand the surplus over in pieces of the new limit,
 * each in a buffer of its own, so no piece exceeds it. Nonzero to stop. */
static int split_gathered(struct evchat *chat, unsigned gen)
{
	while (evbuffer_get_length(chat->frame) > chat->max_frame) {
		if (chat->spill == NULL &&
		    (chat->spill = evbuffer_new()) == NULL) {
			input_failed(chat);
			return 1;
		}
		evbuffer_remove_buffer(chat->frame, chat->spill,
		                       chat->max_frame);
		chat->partial = 1;
		run_found(chat, chat->spill);
		chat->partial = 0;
		if (chat->freeing)
			return 1;
		evbuffer_drain(chat->spill, (size_t)-1);
		if (input_blocked(chat) || chat->input_gen != gen)
			return 1;
	}
	return 0;
}

/* The current frame ends here. Nonzero to stop. */
static int end_frame(struct evchat *chat)
{
	chat->frames_ended++;
	if (!chat->skipping)
		return deliver(chat, 0);
	chat->skipping = 0;
	chat->extra->discarded = chat->extra->discarding;
	chat->extra->discarding = 0;
	return evchat__report(chat, EVCHAT_EVENT_FRAME_DISCARDED |
	                                EVCHAT_EVENT_READING);
}

/* Starts skipping the current frame (LIMIT_DISCARD): what was gathered
 * goes, and so will the rest of the frame up to its end. */
static void start_skipping(struct evchat *chat)
{
	chat->skipping = 1;
	chat->extra->discarding = frame_size(chat);
	evbuffer_drain(chat->frame, (size_t)-1);
	chat->frame_bytes = 0;
}

/* Moves n bytes of the current frame from the input into the frame (or
 * through the collect hook), applying the frame limit. *used says how
 * many bytes were taken from the input. Nonzero when the loop must stop,
 * possibly before all n bytes were taken. */
static int gather(struct evchat *chat, struct evbuffer *input, size_t n,
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
		size_t size = frame_size(chat);
		size_t take = n;
		size_t max = chat->max_frame;
		if (!fits_limit(chat, size, n)) {
			if (chat->limit_policy == EVCHAT_LIMIT_CLOSE) {
				input_refused(chat,
				              EVCHAT_EVENT_FRAME_TOO_LONG);
				return 1;
			}
			if (chat->limit_policy == EVCHAT_LIMIT_DISCARD) {
				start_skipping(chat);
				continue;
			}
			/* LIMIT_SPLIT: fill this piece up to the limit. */
			if (size > max && chat->collect == NULL) {
				if (split_gathered(chat, gen))
					return 1;
				continue;
			}
			take = size < max ? max - size : 0;
		}
		if (evchat__buffer_move(chat->frame, input, take) < 0) {
			input_failed(chat);
			return 1;
		}
		n -= take;
		*used += take;
		/* A hook that discards the buffers takes the rest of this
		 * frame with it: nothing more of it may be delivered. */
		if (hand_to_collect(chat) || chat->input_gen != gen)
			return 1;
		/* More of this frame follows a full piece: deliver it. */
		if (n > 0 && (deliver(chat, 1) || input_blocked(chat) ||
		              chat->input_gen != gen))
			return 1;
	}
	return 0;
}

/* Whether the next frame of a run may be taken where it lies as well:
 * nothing a hook did since the run began changes how the rest is framed,
 * and the frame mode is the one the run began with. */
static int run_goes_on(const struct evchat *chat, unsigned input_gen,
                       unsigned term_gen, int lending)
{
	return chat->input_gen == input_gen && chat->term_gen == term_gen &&
	       !chat->pending_after_lend && !input_blocked(chat) &&
	       (chat->term.kind == EVCHAT_TERM_STRING ||
	        chat->term.kind == EVCHAT_TERM_LINE ||
	        (chat->term.kind == EVCHAT_TERM_LENGTH && !chat->term.in_body &&
	         (chat->header == NULL ||
	          evbuffer_get_length(chat->header) == 0))) &&
	       chat->collect == NULL && !chat->skipping &&
	       frame_size(chat) == 0 && (chat->found_bytes != NULL) == lending;
}

/* Whether a frame of `at` bytes found in the input's first chain starts
 * a run: lent to found_bytes (nothing of it gathered before), or copied
 * for found in frame mode. */
static int may_run(const struct evchat *chat, size_t at)
{
	if (may_lend(chat))
		return fits_limit(chat, 0, at);
	return chat->found_bytes == NULL && chat->collect == NULL &&
	       !chat->skipping && fits_limit(chat, frame_size(chat), at);
}

/* A whole length-field frame at p (avail bytes): 1 with the bytes its
 * header strips (*skip), what is delivered after them (*len) and its size
 * on the wire (*used); 0 if it is not all there, or its header is invalid
 * (the general path refuses it). */
static int length_frame_in(const struct evchat__terminator *term,
                           const unsigned char *p, size_t avail, size_t *skip,
                           size_t *len, size_t *used)
{
	const struct evchat_length_field *field = term->field;
	ev_uint64_t wire;
	if (avail < field->offset + field->size ||
	    evchat__length_parse(field, p + field->offset, &wire) < 0 ||
	    wire > (ev_uint64_t)avail)
		return 0;
	*skip = field->strip;
	*len = (size_t)wire - field->strip;
	*used = (size_t)wire;
	return 1;
}

/* The next whole frame at p (avail bytes), as length_frame_in() says. */
static int frame_in(const struct evchat__terminator *term,
                    const unsigned char *p, size_t avail, size_t *skip,
                    size_t *len, size_t *used)
{
	if (term->kind == EVCHAT_TERM_LENGTH)
		return length_frame_in(term, p, avail, skip, len, used);
	size_t match_len;
	ev_ssize_t at = evchat__terminator_find_in(term, p, avail, &match_len);
	if (at < 0)
		return 0;
	*skip = 0;
	*len = (size_t)at;
	*used = (size_t)at + match_len;
	return 1;
}

/* The frames lying whole in the input's first chain (`chain`,
 * `chain_len` bytes), from its start: the first is `len` bytes after
 * `skip` bytes (a stripped length header), followed by the rest of the
 * `used` bytes it spans there (its terminator). Each is lent where it
 * lies to found_bytes (`lending`, no copy), or copied into the frame
 * buffer for found; the next one is found from where the last ended while
 * run_goes_on() holds. The bytes leave the input in one drain when the
 * run ends, and are counted lent meanwhile, so a hook that discards the
 * input cannot free them under the run. If the run ends because the rest
 * of the chain holds no terminator, *clean says how long that rest is:
 * the search that follows need not scan it again (a long line spans
 * chains, and its first one would be scanned twice). */
static int frame_run(struct evchat *chat, struct evbuffer *input,
                     const unsigned char *chain, size_t chain_len, size_t skip,
                     size_t len, size_t used, size_t *clean)
{
	unsigned input_gen = chat->input_gen;
	unsigned term_gen = chat->term_gen;
	int lending = chat->found_bytes != NULL;
	size_t done = 0; /* bytes at the chain's start done with */
	for (;;) {
		chat->lent = done + used;
		if (lending) {
			chat->frames_ended++;
			chat->frame_bytes = 0;
			chat->found_bytes(chat,
			                  len > 0 ? chain + done + skip : NULL,
			                  len, chat->arg);
		} else if (len > 0 &&
		           evbuffer_add(chat->frame, chain + done + skip, len) <
		               0) {
			chat->lent = 0;
			input_failed(chat);
			break;
		} else if (end_frame(chat)) {
			/* Only a free stops it: the channel's memory stays
			 * until the outermost entry leaves. */
			chat->lent = 0;
			return 1;
		}
		chat->lent = 0;
		if (chat->freeing)
			return 1;
		done += used;
		if (!run_goes_on(chat, input_gen, term_gen, lending))
			break;
		if (!frame_in(&chat->term, chain + done, chain_len - done,
		              &skip, &len, &used)) {
			if (chat->term.kind != EVCHAT_TERM_LENGTH)
				*clean = chain_len - done;
			break;
		}
		if (!fits_limit(chat, 0, len))
			break;
	}
	/* A hook that discarded the input left the run's bytes for us. */
	evbuffer_drain(input, chat->input_gen == input_gen ? done : (size_t)-1);
	if (chat->pending_after_lend) {
		/* The connection failed meanwhile: what is left becomes
		 * readable in the pending buffer, as it does without a run. */
		chat->pending_after_lend = 0;
		if (chat->header != NULL)
			evbuffer_add_buffer(chat->frame, chat->header);
		evbuffer_add_buffer(chat->frame, input);
	}
	return 0;
}

/* One round with a count terminator. Nonzero to stop the loop. */
static int frame_count(struct evchat *chat, struct evbuffer *input,
                       size_t avail)
{
	struct evchat__terminator *term = &chat->term;
	ev_uint64_t want = term->remaining;
	if ((ev_uint64_t)avail >= want && may_lend(chat) &&
	    fits_limit(chat, 0, (size_t)want)) {
		struct evbuffer_iovec first;
		if (evbuffer_peek(input, -1, NULL, &first, 1) > 0 &&
		    first.iov_len >= want) {
			term->remaining = 0;
			term->kind = EVCHAT_TERM_NONE;
			size_t clean; /* a count's run is one frame */
			return frame_run(chat, input, first.iov_base,
			                 (size_t)want, 0, (size_t)want,
			                 (size_t)want, &clean);
		}
	}
	size_t n = (ev_uint64_t)avail < want ? avail : (size_t)want;
	unsigned gen = chat->term_gen;
	size_t used;
	int stop = gather(chat, input, n, &used);
	int changed = chat->term_gen != gen;
	/* Counted down after collect, as asynchat does. */
	if (!changed)
		term->remaining -= used;
	if (stop || (ev_uint64_t)used < want)
		return stop;
	/* The count is reached: the frame ends even if the collect hook set
	 * a new terminator meanwhile (asynchat does the same), and that new
	 * terminator then stays. Otherwise none applies until one is set. */
	if (!changed)
		term->kind = EVCHAT_TERM_NONE;
	return end_frame(chat);
}

/* One round with a string or line terminator. `clean` bytes at the
 * start of the input's first chain are known to hold no terminator (the
 * last round's run searched them); *clean_after says the same for the
 * next round. Nonzero to stop. */
static int frame_string(struct evchat *chat, struct evbuffer *input,
                        size_t avail, size_t clean, size_t *clean_after)
{
	size_t held, match_len, used;
	unsigned gen = chat->term_gen;
	const unsigned char *head;
	size_t head_len;
	ev_ssize_t at = evchat__terminator_find(&chat->term, input, &match_len,
	                                        &held, &head, &head_len, clean);
	/* The common case, what gather() would do in fewer steps: the
	 * frame, and those after it in the same chain, are lent or copied
	 * from where the scan found them. */
	if (at >= 0 && head != NULL && may_run(chat, (size_t)at))
		return frame_run(chat, input, head, head_len, 0, (size_t)at,
		                 (size_t)at + match_len, clean_after);
	if (at < 0) {
		/* No terminator yet: keep only a possible start of one for
		 * the next read. If the collect hook changed the terminator,
		 * the held bytes are framed again with the new one at once
		 * (asynchat would wait for more input, which may never come
		 * in a request/response protocol). */
		if (avail > held && gather(chat, input, avail - held, &used))
			return 1;
		return held == 0 || chat->term_gen == gen;
	}
	/* If gather stops early, the rest of the frame and its terminator
	 * stay in the input and are found again next time. */
	if (at > 0 ? gather(chat, input, (size_t)at, &used)
	           : hand_gathered(chat))
		return 1;
	/* As in asynchat, the terminator that was found is dropped even if
	 * the collect hook changed it. */
	evbuffer_drain(input, match_len);
	return end_frame(chat);
}

/* The header was decoded: the frame is `wire` bytes on the wire, and what
 * the header left after stripping is in chat->frame. */
static int length_header_decoded(struct evchat *chat, ev_uint64_t wire)
{
	struct evchat__terminator *term = &chat->term;
	const struct evchat_length_field *field = term->field;
	size_t header = field->offset + field->size;
	term->in_body = 1;
	term->remaining = wire - header;
	ev_uint64_t delivered = wire - field->strip;
	if (chat->max_frame != 0 && delivered > chat->max_frame) {
		if (chat->limit_policy == EVCHAT_LIMIT_CLOSE) {
			input_refused(chat, EVCHAT_EVENT_FRAME_TOO_LONG);
			return 1;
		}
		if (chat->limit_policy == EVCHAT_LIMIT_DISCARD) {
			start_skipping(chat);
			return 0;
		}
	}
	return hand_to_collect(chat);
}

/* The header of a length-framed frame is complete in chat->header:
 * decode it and apply the limit before any of the body arrives. What
 * the header keeps after stripping starts the frame. */
static int length_header_done(struct evchat *chat)
{
	const struct evchat_length_field *field = chat->term.field;
	ev_uint64_t wire;
	if (evchat__length_decode(field, chat->header, &wire) < 0) {
		input_refused(chat, EVCHAT_EVENT_FRAME_INVALID);
		return 1;
	}
	evbuffer_drain(chat->header, field->strip);
	if (evchat__buffer_move(chat->frame, chat->header, (size_t)-1) < 0) {
		input_failed(chat);
		return 1;
	}
	return length_header_decoded(chat, wire);
}

/* The common case: the whole header is in the input. It is decoded in
 * place, and only the bytes not stripped are moved, often none. */
static int length_header_in_input(struct evchat *chat, struct evbuffer *input)
{
	struct evchat__terminator *term = &chat->term;
	const struct evchat_length_field *field = term->field;
	size_t header = field->offset + field->size;
	ev_uint64_t wire;
	if (evchat__length_decode(field, input, &wire) < 0) {
		input_refused(chat, EVCHAT_EVENT_FRAME_INVALID);
		return 1;
	}
	evbuffer_drain(input, field->strip);
	if (evchat__buffer_move(chat->frame, input, header - field->strip) <
	    0) {
		input_failed(chat);
		return 1;
	}
	return length_header_decoded(chat, wire);
}

/* One round with a length-field terminator. Nonzero to stop. */
static int frame_length(struct evchat *chat, struct evbuffer *input,
                        size_t avail)
{
	struct evchat__terminator *term = &chat->term;
	if (!term->in_body) {
		/* The header is gathered by the channel in both modes, in
		 * a buffer of its own: it must be decoded before anything is
		 * delivered, and bytes gathered earlier (under "none", say)
		 * are not part of it. */
		size_t header = term->field->offset + term->field->size;
		size_t have = chat->header != NULL
		                  ? evbuffer_get_length(chat->header)
		                  : 0;
		/* Whole frames in the first chain: one run, no copies for
		 * the bytes hook. */
		struct evbuffer_iovec first;
		size_t skip, len, used;
		size_t clean; /* set for string terminators only */
		if (have == 0 && avail >= header &&
		    evbuffer_peek(input, -1, NULL, &first, 1) > 0 &&
		    length_frame_in(term, first.iov_base, first.iov_len, &skip,
		                    &len, &used) &&
		    may_run(chat, len))
			return frame_run(chat, input, first.iov_base,
			                 first.iov_len, skip, len, used,
			                 &clean);
		if (have == 0 && avail >= header)
			return length_header_in_input(chat, input);
		size_t need = header > have ? header - have : 0;
		size_t n = avail < need ? avail : need;
		/* A header split between reads is rare: its buffer is taken
		 * for it and given back once it is empty. */
		if (chat->header == NULL)
			chat->header = evchat__spare_take();
		if (chat->header == NULL ||
		    evchat__buffer_move(chat->header, input, n) < 0) {
			input_failed(chat);
			return 1;
		}
		if (n < need)
			return 0;
		return length_header_done(chat);
	}
	ev_uint64_t want = term->remaining;
	size_t n = (ev_uint64_t)avail < want ? avail : (size_t)want;
	unsigned gen = chat->term_gen;
	size_t used;
	int stop = gather(chat, input, n, &used);
	if (chat->term_gen == gen)
		term->remaining -= used;
	return stop;
}

/* The end of input, once every buffered frame was delivered. */
static void finish_eof(struct evchat *chat)
{
	chat->eof_pending = 0;
	chat->read_done = 1;
	/* Whatever is left never saw its terminator. asynchat drops a held
	 * partial terminator here; we keep every byte. */
	evbuffer_add_buffer(chat->in, bufferevent_get_input(chat->bev));
	if ((chat->header != NULL &&
	     evchat__buffer_move(chat->frame, chat->header, (size_t)-1) < 0) ||
	    evchat__buffer_move(chat->frame, chat->in, (size_t)-1) < 0) {
		input_failed(chat);
		return;
	}
	if (chat->skipping)
		evbuffer_drain(chat->frame, (size_t)-1);
	else if (!chat->closing)
		hand_to_collect(chat);
	if (chat->freeing)
		return;
	if (chat->paused) {
		/* The last collect paused: the EOF waits for the resume. */
		chat->eof_pending = 1;
		return;
	}
	evchat__report(chat, (short)chat->eof_events);
}

void evchat__input_run(struct evchat *chat)
{
	/* A hook that changes the terminator while this loop runs is seen
	 * by the loop itself; running a second loop would reorder frames. */
	if (chat->in_input)
		return;
	if (evchat__input_buffer(chat) == NULL ||
	    evchat__frame_buffer(chat) == NULL) {
		input_failed(chat);
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
	while (!input_blocked(chat)) {
		struct evchat__terminator *term = &chat->term;
		size_t clean = clean_after;
		clean_after = 0;
		int stop;
		/* Collect mode: bytes that joined the frame without passing
		 * through gather() (a half-read length header, when the
		 * terminator changed) reach the hook before anything else
		 * of the frame, and before its end, which would drop them. */
		if (chat->header_joined) {
			chat->header_joined = 0;
			if (hand_to_collect(chat))
				break;
			continue;
		}
		if (term->kind == EVCHAT_TERM_COUNT && term->remaining == 0) {
			/* A count of 0 ends an empty frame now. */
			if (hand_gathered(chat))
				break;
			term->kind = EVCHAT_TERM_NONE;
			stop = end_frame(chat);
		} else if (term->kind == EVCHAT_TERM_LENGTH && term->in_body &&
		           term->remaining == 0) {
			/* The body is complete (or empty): the next frame
			 * starts with a header again. */
			if (hand_gathered(chat))
				break;
			term->in_body = 0;
			stop = end_frame(chat);
		} else {
			size_t avail = evbuffer_get_length(input);
			if (avail == 0)
				break;
			size_t used;
			switch (term->kind) {
			case EVCHAT_TERM_NONE:
				stop = gather(chat, input, avail, &used);
				break;
			case EVCHAT_TERM_COUNT:
				stop = frame_count(chat, input, avail);
				break;
			case EVCHAT_TERM_LENGTH:
				stop = frame_length(chat, input, avail);
				break;
			default:
				stop = frame_string(chat, input, avail, clean,
				                    &clean_after);
				break;
			}
		}
		if (stop)
			break;
	}
	chat->in_input = 0;
	if (!chat->freeing) {
		evchat__batch_send(chat);
		evchat__flow_check(chat);
	}
	if (chat->eof_pending && !chat->paused && !chat->freeing &&
	    !chat->failed)
		finish_eof(chat);
	if (chat->read_error != 0 && !chat->paused && !chat->freeing &&
	    !chat->failed)
		evchat__direct_read_error(chat);
	/* A frame timeout that cannot be enforced must not be dropped in
	 * silence: a dribbling peer would hold the connection for good. */
	if (evchat__frame_clock_update(chat) < 0)
		input_failed(chat);
	/* Framed to the last byte: an idle channel keeps no input, header
	 * or frame buffer. The frame buffer goes last, and only with the
	 * other two gone, so that any bytes held outside the loop (a
	 * partial terminator or header) have it to join when the framing
	 * changes or the connection fails. */
	if (!chat->freeing) {
		if (chat->in != NULL && chat->lent == 0 &&
		    evbuffer_get_length(chat->in) == 0) {
			evchat__spare_give(chat->in);
			chat->in = NULL;
		}
		if (chat->header != NULL &&
		    evbuffer_get_length(chat->header) == 0) {
			evchat__spare_give(chat->header);
			chat->header = NULL;
		}
		if (chat->frame != NULL && chat->in == NULL &&
		    chat->header == NULL && !chat->frame_kept &&
		    evbuffer_get_length(chat->frame) == 0) {
			evchat__spare_give(chat->frame);
			chat->frame = NULL;
		}
	}
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
	return chat->skipping || chat->term.in_body || frame_size(chat) > 0 ||
	       (chat->in != NULL && evbuffer_get_length(chat->in) > 0) ||
	       (chat->header != NULL && evbuffer_get_length(chat->header) > 0);
}

void evchat__input_timeout(struct evchat *chat, short events)
{
	/* Every buffered frame was delivered (a timeout comes only when no
	 * bytes do); what is left stays readable in the pending buffer. */
	chat->read_done = 1;
	bufferevent_disable(chat->bev, EV_READ);
	evchat__frame_clock_stop(chat);
	evchat__report(chat, events);
}

void evchat__input_eof(struct evchat *chat, short events, int fail)
{
	chat->eof_seen = 1;
	chat->eof_events = (unsigned short)events;
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
		if (chat->header != NULL)
			evbuffer_add_buffer(chat->frame, chat->header);
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
	if (chat->header != NULL)
		evbuffer_drain(chat->header, (size_t)-1);
	if (chat->frame != NULL)
		evbuffer_drain(chat->frame, (size_t)-1);
	chat->frame_bytes = 0;
	chat->skipping = 0;
	if (chat->extra != NULL)
		chat->extra->discarding = 0;
	/* Like a count's remaining bytes, a length-framed body still due
	 * from the peer stays due: the terminator is kept, as documented. */
	chat->input_gen++;
}

void evchat__read_cb(struct bufferevent *bev, void *ctx)
{
	struct evchat *chat = ctx;
	evchat__enter(chat);
	if (chat->closing)
		/* A close reads only to discard what the peer still sends. */
		evbuffer_drain(bufferevent_get_input(bev), (size_t)-1);
	else if (chat->api_depth > 0)
		evchat__defer(chat, EVCHAT__DEFER_INPUT);
	else {
		if (chat->options & EVCHAT_OPT_DIRECT_READ)
			evchat__direct_read(chat);
		evchat__input_run(chat);
	}
	evchat__leave(chat);
}

void evchat__terminator_changed(struct evchat *chat)
{
	chat->term_gen++;
	chat->term.in_body = 0;
	/* A half-read length header belongs to the old framing: its bytes
	 * become part of the current frame (in collect mode the input loop
	 * hands them over first). Linked, not copied: a copy can run out of
	 * memory, and nobody would hear of it here. */
	if (chat->header != NULL && evbuffer_get_length(chat->header) > 0) {
		chat->header_joined = 1;
		evbuffer_add_buffer(chat->frame, chat->header);
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
	bufferevent_enable(chat->bev, EV_READ);
}

int evchat_input_paused(const struct evchat *chat)
{
	return chat != NULL && chat->paused;
}
