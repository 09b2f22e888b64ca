/*
 * One round of the input loop for each kind of terminator: where the
 * current frame ends, a count's or a length field's bytes counted down,
 * and runs of whole frames cut where they lie in the input's first chain
 * (lent to found_bytes, or copied for found, the chain drained once).
 */
#include <errno.h>
#include <string.h>

#include "input-internal.h"

/* Whether the frame ending now may be lent in place: found_bytes is set,
 * and nothing of the frame was gathered elsewhere before. */
static int may_lend(const struct evchat *chat)
{
	return chat->found_bytes != NULL && chat->collect == NULL &&
	       !chat->skipping && evchat__frame_size(chat) == 0;
}

/* Whether the current terminator finds a whole next frame where it lies:
 * a string or line, a count not reached (taken only when `lending`, as
 * evchat__frame_count() takes counts), or a length header not begun. */
static inline int term_cuts_in_place(const struct evchat *chat, int lending)
{
	const struct evchat__terminator *term = &chat->term;
	return term->kind == EVCHAT_TERM_STRING ||
	       term->kind == EVCHAT_TERM_LINE ||
	       (term->kind == EVCHAT_TERM_COUNT && term->remaining > 0 &&
	        lending) ||
	       (term->kind == EVCHAT_TERM_LENGTH && !term->in_body &&
	        (evchat__header(chat) == NULL ||
	         evbuffer_get_length(evchat__header(chat)) == 0)) ||
	       (term->kind == EVCHAT_TERM_HEADER && !term->in_body);
}

/* A count's frame is whole (with its trailer): none applies until a
 * hook sets one. */
static void count_reached(struct evchat__terminator *term)
{
	term->remaining = 0;
	term->kind = EVCHAT_TERM_NONE;
	term->trailer = 0;
}

/* A count's frame whole at p (avail bytes), its trailer after it and
 * right: 1 with its size on the wire (*used). A wrong trailer is left to
 * the general path, which refuses it. */
static int count_frame_in(const struct evchat *chat, const unsigned char *p,
                          size_t avail, size_t *used)
{
	ev_uint64_t want = chat->term.remaining;
	if (want > (ev_uint64_t)avail)
		return 0;
	size_t tail = 0;
	if (chat->term.trailer) {
		/* A byte loop: trailers are short, a memcmp() call is not. */
		const unsigned char *t = evchat__trailer(chat, &tail);
		if (tail > avail - (size_t)want)
			return 0;
		for (size_t i = 0; i < tail; i++)
			if (p[want + i] != t[i])
				return 0;
	}
	*used = (size_t)want + tail;
	return 1;
}

/* Whether the next frame of a run may be taken where it lies as well:
 * the input was not discarded, the terminator (the one a hook set, if it
 * changed: a protocol that switches between lines and counts for every
 * frame stays in one run) finds frames in place, and the frame mode is
 * the one the run began with: lent to the same found_bytes hook, or
 * copied (`lend` NULL) with no found_bytes hook to lend to. Counts are
 * taken by lending runs only, as evchat__frame_count() takes them. */
static int run_goes_on(const struct evchat *chat, unsigned input_gen,
                       evchat_found_bytes_cb lend)
{
	/* (A hook's change cannot join a half-read length header to the
	 * frame here: a run never leaves one.) */
	return chat->input_gen == input_gen && !chat->pending_after_lend &&
	       !evchat__input_blocked(chat) &&
	       term_cuts_in_place(chat, lend != NULL) &&
	       chat->collect == NULL && !chat->skipping &&
	       evchat__frame_size(chat) == 0 && chat->found_bytes == lend;
}

/* How a run takes its frames: none (the general path gathers the
 * frame), copied into the frame buffer for found, or lent to found_bytes. */
enum run_kind { RUN_NONE = 0, RUN_COPY, RUN_LEND };

/* Whether a frame of `at` bytes found in the input's first chain starts
 * a run, and which: lent to found_bytes (nothing of it gathered before),
 * or copied for found in frame mode. With both hooks (evchat_setcb_both())
 * the frame that cannot be lent is the rest of one gathered in pieces,
 * and its tail is copied for found as it would be for found alone: the
 * run then stops after it, since the frames that follow are lent. With
 * found_bytes alone no frame is copied here: the general path gathers
 * it, to be made contiguous once. */
static enum run_kind may_run(const struct evchat *chat, size_t at)
{
	if (may_lend(chat))
		return evchat__fits_limit(chat, 0, at) ? RUN_LEND : RUN_NONE;
	return (chat->found_bytes == NULL || chat->found != NULL) &&
	               chat->collect == NULL && !chat->skipping &&
	               evchat__fits_limit(chat, evchat__frame_size(chat), at)
	           ? RUN_COPY
	           : RUN_NONE;
}

/* A whole length-field frame at p (avail bytes): 1 with the bytes its
 * header strips (*skip), what is delivered after them (*len) and its size
 * on the wire (*used); 0 if it is not all there, or its header is invalid
 * (the general path refuses it). */
static int length_frame_in(const struct evchat_length_field *field,
                           const unsigned char *p, size_t avail, size_t *skip,
                           size_t *len, size_t *used)
{
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

/* The same for a decoded header whose frame is whole in avail bytes. */
static int decoded_frame_in(const struct evchat_header *header, size_t avail,
                            size_t *skip, size_t *len, size_t *used)
{
	if (header->body > (ev_uint64_t)(avail - header->size))
		return 0;
	*skip = header->strip;
	*used = header->size + (size_t)header->body;
	*len = *used - header->strip;
	return 1;
}

/* The next whole frame at p (avail bytes), as length_frame_in() says. */
static inline int frame_in(const struct evchat *chat, const unsigned char *p,
                           size_t avail, size_t *skip, size_t *len,
                           size_t *used)
{
	const struct evchat__terminator *term = &chat->term;
	if (term->kind == EVCHAT_TERM_LENGTH)
		return length_frame_in(&chat->extra->field, p, avail, skip, len,
		                       used);
	if (term->kind == EVCHAT_TERM_HEADER) {
		struct evchat_header header;
		return evchat__header_decode(chat->extra, p, avail, &header) ==
		           1 &&
		       decoded_frame_in(&header, avail, skip, len, used);
	}
	if (term->kind == EVCHAT_TERM_COUNT) {
		if (!count_frame_in(chat, p, avail, used))
			return 0;
		*skip = 0;
		*len = (size_t)term->remaining;
		return 1;
	}
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
 * buffer for found (see may_run()); the next one is found from where the
 * last ended while run_goes_on() holds. The bytes leave the input in one
 * drain when the run ends, and are counted lent meanwhile, so a hook that
 * discards the input cannot free them under the run. If the run ends
 * because the rest of the chain holds no terminator, *clean says how
 * long that rest is: the search that follows need not scan it again (a
 * long line spans chains, and its first one would be scanned twice). */
static int frame_run(struct evchat *chat, struct evbuffer *input, int lending,
                     int from_read, const unsigned char *chain,
                     size_t chain_len, size_t skip, size_t len, size_t used,
                     size_t *clean)
{
	unsigned input_gen = chat->input_gen;
	evchat_found_bytes_cb lend = lending ? chat->found_bytes : NULL;
	size_t done = 0; /* bytes at the chain's start done with */
	for (;;) {
		chat->lent = done + used;
		if (lend != NULL) {
			evchat__count_frame(chat);
			chat->frame_bytes = 0;
			chat->found_bytes(chat, chain + done + skip, len,
			                  chat->arg);
		} else if (len > 0 &&
		           evbuffer_add(chat->frame, chain + done + skip, len) <
		               0) {
			chat->lent = 0;
			evchat__input_failed(chat);
			break;
		} else if (evchat__end_frame(chat)) {
			/* Only a free stops it: the channel's memory stays
			 * until the outermost entry leaves. */
			chat->lent = 0;
			return 1;
		}
		chat->lent = 0;
		if (chat->freeing)
			return 1;
		done += used;
		if (!run_goes_on(chat, input_gen, lend))
			break;
		if (!frame_in(chat, chain + done, chain_len - done, &skip, &len,
		              &used)) {
			if (chat->term.kind == EVCHAT_TERM_STRING ||
			    chat->term.kind == EVCHAT_TERM_LINE)
				*clean = chain_len - done;
			break;
		}
		if (!evchat__fits_limit(chat, 0, len))
			break;
		if (chat->term.kind == EVCHAT_TERM_COUNT)
			count_reached(&chat->term);
	}
	/* A hook that discarded the input left the run's bytes for us. A
	 * read's bytes that the run left go first in the input: anything
	 * there came after them (as a rule nothing, and an add leaves room
	 * for the next read after them, which a prepend would not). */
	if (chat->input_gen != input_gen)
		evbuffer_drain(input, (size_t)-1);
	else if (!from_read)
		evbuffer_drain(input, done);
	else if (done < chain_len &&
	         (evbuffer_get_length(input) == 0
	              ? evbuffer_add(input, chain + done, chain_len - done)
	              : evbuffer_prepend(input, chain + done,
	                                 chain_len - done)) < 0)
		evchat__input_failed(chat);
	if (chat->pending_after_lend) {
		/* The connection failed meanwhile: what is left becomes
		 * readable in the pending buffer, as it does without a run. */
		chat->pending_after_lend = 0;
		if (evchat__header(chat) != NULL)
			evbuffer_add_buffer(chat->frame, evchat__header(chat));
		evbuffer_add_buffer(chat->frame, input);
	}
	return 0;
}

int evchat__frame_over_limit(struct evchat *chat)
{
	/* The peer that announced too much is answered now, not once the
	 * limit's worth of its bytes has come. */
	if (chat->limit_policy == EVCHAT_LIMIT_CLOSE) {
		evchat__input_refused(chat, EVCHAT_EVENT_FRAME_TOO_LONG);
		return 1;
	}
	evchat__start_skipping(chat);
	return 0;
}

/* One round with a count terminator. Nonzero to stop the loop. */
int evchat__frame_count(struct evchat *chat, struct evbuffer *input,
                        size_t avail)
{
	struct evchat__terminator *term = &chat->term;
	ev_uint64_t want = term->remaining;
	if ((ev_uint64_t)avail >= want && may_lend(chat) &&
	    evchat__fits_limit(chat, 0, (size_t)want)) {
		struct evbuffer_iovec first;
		size_t used;
		if (evbuffer_peek(input, -1, NULL, &first, 1) > 0 &&
		    count_frame_in(chat, first.iov_base, first.iov_len,
		                   &used)) {
			count_reached(term);
			size_t clean; /* a count's run is one frame */
			return frame_run(chat, input, 1, 0, first.iov_base,
			                 used, 0, (size_t)want, used, &clean);
		}
	}
	size_t n = (ev_uint64_t)avail < want ? avail : (size_t)want;
	unsigned gen = chat->term_gen;
	size_t used;
	int stop = evchat__gather(chat, input, n, &used);
	int changed = chat->term_gen != gen;
	/* Counted down after collect, as asynchat does. */
	if (!changed)
		term->remaining -= used;
	if (stop || (ev_uint64_t)used < want) {
		/* The count's last bytes went to a hook that set a terminator
		 * and stopped the loop: the frame still ends, before anything
		 * else when the loop runs again. (Unchanged, the count at 0
		 * says so itself.) */
		if (stop && changed && (ev_uint64_t)used == want &&
		    !chat->freeing)
			chat->end_due = 1;
		return stop;
	}
	/* The count is reached: the frame ends even if the collect hook set
	 * a new terminator meanwhile (asynchat does the same), and that new
	 * terminator then stays, taking the trailer's place. Otherwise the
	 * trailer is checked next round, or none applies until one is
	 * set. */
	if (!changed && term->trailer)
		return 0;
	if (!changed)
		count_reached(term);
	return evchat__end_frame(chat);
}

/* Whether the input's first n bytes are want's first n. */
static int trailer_matches(const unsigned char *want, struct evbuffer *input,
                           size_t n)
{
	unsigned char chunk[64];
	struct evbuffer_ptr pos;
	if (evbuffer_ptr_set(input, &pos, 0, EVBUFFER_PTR_SET) < 0)
		return n == 0;
	for (size_t done = 0; done < n;) {
		size_t k = n - done < sizeof(chunk) ? n - done : sizeof(chunk);
		if (evbuffer_copyout_from(input, &pos, chunk, k) !=
		        (ev_ssize_t)k ||
		    memcmp(chunk, want + done, k) != 0)
			return 0;
		done += k;
		evbuffer_ptr_set(input, &pos, k, EVBUFFER_PTR_ADD);
	}
	return 1;
}

int evchat__frame_trailer(struct evchat *chat, struct evbuffer *input)
{
	struct evchat__terminator *term = &chat->term;
	/* Its length now: a terminator the hook below sets may take its
	 * place in the channel. */
	size_t len;
	const unsigned char *trailer = evchat__trailer(chat, &len);
	size_t avail = evbuffer_get_length(input);
	size_t n = avail < len ? avail : len;
	/* A wrong byte is answered as soon as it comes. */
	if (!trailer_matches(trailer, input, n)) {
		evchat__input_refused(chat, EVCHAT_EVENT_FRAME_INVALID);
		return 1;
	}
	if (n < len)
		return 1; /* the rest comes with a later read */
	unsigned gen = chat->term_gen;
	if (evchat__hand_gathered(chat))
		return 1;
	evbuffer_drain(input, len);
	/* As when a count is reached, a terminator the collect hook set
	 * stays. */
	if (chat->term_gen == gen)
		count_reached(term);
	return evchat__end_frame(chat);
}

/* One round with a string or line terminator. `clean` bytes at the
 * start of the input's first chain are known to hold no terminator (the
 * last round's run searched them); *clean_after says the same for the
 * next round. Nonzero to stop. */
int evchat__frame_string(struct evchat *chat, struct evbuffer *input,
                         size_t avail, size_t clean, size_t *clean_after)
{
	size_t held, match_len, used;
	unsigned gen = chat->term_gen;
	const unsigned char *head;
	size_t head_len;
	ev_ssize_t at = evchat__terminator_find(&chat->term, input, &match_len,
	                                        &held, &head, &head_len, clean);
	/* The common case, what evchat__gather() would do in fewer steps: the
	 * frame, and those after it in the same chain, are lent or copied
	 * from where the scan found them. */
	enum run_kind run;
	if (at >= 0 && head != NULL &&
	    (run = may_run(chat, (size_t)at)) != RUN_NONE)
		return frame_run(chat, input, run == RUN_LEND, 0, head,
		                 head_len, 0, (size_t)at,
		                 (size_t)at + match_len, clean_after);
	if (at < 0) {
		/* No terminator yet: keep only a possible start of one for
		 * the next read. If the collect hook changed the terminator,
		 * the held bytes are framed again with the new one at once
		 * (asynchat would wait for more input, which may never come
		 * in a request/response protocol). */
		size_t want = avail > held ? avail - held : 0;
		if (want > 0 && evchat__gather(chat, input, want, &used))
			return 1;
		/* A found hook set a new terminator on a piece (LIMIT_SPLIT):
		 * it frames the rest. */
		if (want > 0 && used < want)
			return 0;
		return held == 0 || chat->term_gen == gen;
	}
	/* If gather stops early, the rest of the frame and its terminator
	 * stay in the input and are found again next time. */
	if (at > 0 ? evchat__gather(chat, input, (size_t)at, &used)
	           : evchat__hand_gathered(chat))
		return 1;
	/* As above: the new terminator frames the rest, the one found here
	 * included. */
	if (at > 0 && used < (size_t)at)
		return 0;
	/* As in asynchat, the terminator that was found is dropped even if
	 * the collect hook changed it. */
	evbuffer_drain(input, match_len);
	return evchat__end_frame(chat);
}

/* The header was decoded: `body` bytes follow it, and what the header
 * left after stripping is in chat->frame, after whatever the frame
 * gathered before the terminator was set: the limit counts it all. */
static int header_decoded(struct evchat *chat, ev_uint64_t body)
{
	struct evchat__terminator *term = &chat->term;
	term->in_body = 1;
	term->remaining = body;
	if (chat->skipping) {
		/* A terminator set while the frame was being skipped: the
		 * header's kept bytes go with the rest of it. */
		chat->extra->discarding += evbuffer_get_length(chat->frame);
		evbuffer_drain(chat->frame, (size_t)-1);
		return 0;
	}
	if (evchat__count_over_limit(chat))
		return evchat__frame_over_limit(chat);
	return evchat__hand_to_collect(chat);
}

/* A length field's header was decoded: the frame is `wire` bytes on the
 * wire. */
static int length_decoded(struct evchat *chat, ev_uint64_t wire)
{
	const struct evchat_length_field *field = &chat->extra->field;
	return header_decoded(chat, wire - (field->offset + field->size));
}

/* The header of a length-framed frame is complete in evchat__header(chat):
 * decode it and apply the limit before any of the body arrives. What
 * the header keeps after stripping starts the frame. */
static int length_header_done(struct evchat *chat)
{
	const struct evchat_length_field *field = &chat->extra->field;
	ev_uint64_t wire;
	if (evchat__length_decode(field, evchat__header(chat), &wire) < 0) {
		evchat__input_refused(chat, EVCHAT_EVENT_FRAME_INVALID);
		return 1;
	}
	evbuffer_drain(evchat__header(chat), field->strip);
	if (evchat__buffer_move(chat->frame, evchat__header(chat), (size_t)-1) <
	    0) {
		evchat__input_failed(chat);
		return 1;
	}
	return length_decoded(chat, wire);
}

/* The common case: the whole header is in the input. It is decoded in
 * place, and only the bytes not stripped are moved, often none. */
static int length_header_in_input(struct evchat *chat, struct evbuffer *input)
{
	const struct evchat_length_field *field = &chat->extra->field;
	size_t header = field->offset + field->size;
	ev_uint64_t wire;
	if (evchat__length_decode(field, input, &wire) < 0) {
		evchat__input_refused(chat, EVCHAT_EVENT_FRAME_INVALID);
		return 1;
	}
	evbuffer_drain(input, field->strip);
	if (evchat__buffer_move(chat->frame, input, header - field->strip) <
	    0) {
		evchat__input_failed(chat);
		return 1;
	}
	return length_decoded(chat, wire);
}

/* The header of a frame under a decoder, at the start of the input: the
 * frame runs from where it lies if it is whole in the first chain, else
 * the header is taken and the body counted. Bytes too few to decode stay
 * in the input, unframed, for the next read (or the next terminator). */
static int frame_decoded_header(struct evchat *chat, struct evbuffer *input,
                                size_t avail)
{
	const struct evchat__extra *x = chat->extra; /* made for HEADER */
	struct evbuffer_iovec first;
	struct evchat_header header;
	if (evbuffer_peek(input, -1, NULL, &first, 1) < 1)
		return 1;
	size_t n = first.iov_len;
	int found = evchat__header_decode(x, first.iov_base, n, &header);
	size_t skip, len, used;
	size_t clean; /* set for string terminators only */
	enum run_kind run;
	if (found == 1 && decoded_frame_in(&header, n, &skip, &len, &used) &&
	    (run = may_run(chat, len)) != RUN_NONE)
		return frame_run(chat, input, run == RUN_LEND, 0,
		                 first.iov_base, n, skip, len, used, &clean);
	if (found == 0 && n < avail && n < x->max_header) {
		/* A header across chains, rare: its bytes are copied
		 * together, never more than the decoder may see. */
		n = avail < x->max_header ? avail : x->max_header;
		const unsigned char *p = evbuffer_pullup(input, (ev_ssize_t)n);
		if (p == NULL) {
			evchat__input_failed(chat);
			return 1;
		}
		found = evchat__header_decode(x, p, n, &header);
	}
	if (found < 0) {
		evchat__input_refused(chat, EVCHAT_EVENT_FRAME_INVALID);
		return 1;
	}
	if (found == 0)
		return 1;
	evbuffer_drain(input, header.strip);
	size_t kept = header.size - header.strip;
	if (evchat__buffer_move(chat->frame, input, kept) < 0) {
		evchat__input_failed(chat);
		return 1;
	}
	return header_decoded(chat, header.body);
}

/* One round with a length-field or decoded-header terminator. Nonzero to
 * stop. */
int evchat__frame_length(struct evchat *chat, struct evbuffer *input,
                         size_t avail)
{
	struct evchat__terminator *term = &chat->term;
	if (!term->in_body && term->kind == EVCHAT_TERM_HEADER)
		return frame_decoded_header(chat, input, avail);
	if (!term->in_body) {
		/* The header is gathered by the channel in both modes, in
		 * a buffer of its own: it must be decoded before anything is
		 * delivered, and bytes gathered earlier (under "none", say)
		 * are not part of it. */
		const struct evchat_length_field *field = &chat->extra->field;
		size_t header = field->offset + field->size;
		size_t have = evchat__header(chat) != NULL
		                  ? evbuffer_get_length(evchat__header(chat))
		                  : 0;
		/* Whole frames in the first chain: one run, no copies for
		 * the bytes hook. */
		struct evbuffer_iovec first;
		size_t skip, len, used;
		size_t clean; /* set for string terminators only */
		enum run_kind run;
		if (have == 0 && avail >= header &&
		    evbuffer_peek(input, -1, NULL, &first, 1) > 0 &&
		    length_frame_in(field, first.iov_base, first.iov_len, &skip,
		                    &len, &used) &&
		    (run = may_run(chat, len)) != RUN_NONE)
			return frame_run(chat, input, run == RUN_LEND, 0,
			                 first.iov_base, first.iov_len, skip,
			                 len, used, &clean);
		if (have == 0 && avail >= header)
			return length_header_in_input(chat, input);
		size_t need = header > have ? header - have : 0;
		size_t n = avail < need ? avail : need;
		/* A header split between reads is rare: its buffer is taken
		 * for it and given back once it is empty. */
		struct evchat__extra *x = chat->extra; /* made for LENGTH */
		if (x->header == NULL)
			x->header = evchat__spare_take();
		if (x->header == NULL ||
		    evchat__buffer_move(x->header, input, n) < 0) {
			evchat__input_failed(chat);
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
	int stop = evchat__gather(chat, input, n, &used);
	if (chat->term_gen == gen)
		term->remaining -= used;
	return stop;
}

int evchat__frame_read(struct evchat *chat, struct evbuffer *input,
                       const unsigned char *data, size_t n, size_t *clean_after)
{
	struct evchat__terminator *term = &chat->term;
	size_t skip, len, used;
	enum run_kind run = RUN_NONE;
	/* The first frame must be whole in the read, and start a run as in
	 * the rounds above: not after a half-read length header, and a
	 * count only lent (see evchat__frame_count()). */
	if (!evchat__input_blocked(chat) && !chat->recheck_frame &&
	    evbuffer_get_length(input) == 0 && term_cuts_in_place(chat, 1)) {
		if (frame_in(chat, data, n, &skip, &len, &used)) {
			run = may_run(chat, len);
			if (term->kind == EVCHAT_TERM_COUNT && run != RUN_LEND)
				run = RUN_NONE;
		} else if (term->kind == EVCHAT_TERM_STRING ||
		           term->kind == EVCHAT_TERM_LINE)
			*clean_after = n; /* the input holds just these */
	}
	if (run == RUN_NONE) {
		if (evbuffer_add(input, data, n) < 0) {
			evchat__input_failed(chat);
			return 1;
		}
		return 0;
	}
	if (term->kind == EVCHAT_TERM_COUNT)
		count_reached(term);
	/* The read scratch is the thread's: no other read may land there
	 * while its frames are lent (an event loop run inside a hook). */
	evchat__read_scratch_lend(chat, n);
	int stop = frame_run(chat, input, run == RUN_LEND, 1, data, n, skip,
	                     len, used, clean_after);
	evchat__read_scratch_lend(NULL, 0);
	return stop;
}
