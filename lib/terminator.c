/*
 * Choosing how frames end, and how big they may be. The setters only
 * record the choice; lib/input.c applies it, to bytes already buffered
 * too (from the event loop, or at once by the running input loop when a
 * hook made the change).
 */
#include <errno.h>
#include <string.h>

#include "input-internal.h"

static int invalid(void)
{
	errno = EINVAL;
	return -1;
}

/* The setters hold the channel's lock (a no-op inside its hooks): a push
 * of a line or frame from another thread reads the terminator under it. */

int evchat_set_terminator(struct evchat *chat, const void *term, size_t len)
{
	if (chat == NULL || term == NULL || len == 0)
		return invalid();
	evchat__lock(chat);
	/* The same again, as a hook that sets it for every frame (and every
	 * piece of a split one) does: the frame being read goes on. */
	if (evchat__terminator_is_string(&chat->term, term, len))
		return evchat__unlock(chat, 0);
	if (evchat__terminator_set_string(&chat->term, term, len) < 0)
		return evchat__unlock(chat, -1);
	evchat__terminator_changed(chat);
	return evchat__unlock(chat, 0);
}

int evchat_set_terminator_line(struct evchat *chat, enum evchat_eol eol)
{
	if (chat == NULL)
		return invalid();
	evchat__lock(chat);
	if (evchat__terminator_is_line(&chat->term, eol))
		return evchat__unlock(chat, 0); /* as above */
	if (evchat__terminator_set_line(&chat->term, eol) < 0)
		return evchat__unlock(chat, -1);
	evchat__terminator_changed(chat);
	return evchat__unlock(chat, 0);
}

/* A count, with or without a trailer (stored by the caller), under the
 * lock: the whole frame's size is known now, so the loop checks it. */
static void count_set(struct evchat *chat, ev_uint64_t count, int trailer)
{
	chat->term.kind = EVCHAT_TERM_COUNT;
	chat->term.trailer = (unsigned)trailer;
	chat->term.remaining = count;
	chat->count_check = 1;
	evchat__terminator_changed(chat);
}

int evchat_set_terminator_count(struct evchat *chat, ev_uint64_t count)
{
	if (chat == NULL)
		return invalid();
	evchat__lock(chat);
	count_set(chat, count, 0);
	return evchat__unlock(chat, 0);
}

int evchat_set_terminator_count_trailer(struct evchat *chat, ev_uint64_t count,
                                        const void *trailer, size_t len)
{
	if (chat == NULL || trailer == NULL || len == 0)
		return invalid();
	evchat__lock(chat);
	if (len <= sizeof(chat->term.trailer_short)) {
		/* A byte loop, cheaper than a call for so few, and right when
		 * the caller passes back the borrowed current one. */
		const unsigned char *from = trailer;
		for (size_t i = 0; i < len; i++)
			chat->term.trailer_short[i] = from[i];
		chat->trailer_len = (unsigned char)len;
	} else if (evchat__terminator_set_string(&chat->term, trailer, len) <
	           0) {
		return evchat__unlock(chat, -1);
	} else {
		chat->trailer_len = 0;
	}
	count_set(chat, count, 1);
	return evchat__unlock(chat, 0);
}

int evchat_set_terminator_none(struct evchat *chat)
{
	if (chat == NULL)
		return invalid();
	evchat__lock(chat);
	chat->term.kind = EVCHAT_TERM_NONE;
	chat->term.remaining = 0;
	evchat__terminator_changed(chat);
	return evchat__unlock(chat, 0);
}

int evchat_set_terminator_length(struct evchat *chat,
                                 const struct evchat_length_field *field)
{
	if (chat == NULL || field == NULL ||
	    evchat__length_field_check(field) < 0)
		return invalid();
	/* Setting the same layout again, as a found hook that follows
	 * asynchat's habits does for every frame (and every piece of a split
	 * one), must not restart a frame whose header was read already. */
	evchat__lock(chat);
	const struct evchat_length_field *cur = chat->extra != NULL
	                                            ? &chat->extra->field
	                                            : NULL;
	if (chat->term.kind == EVCHAT_TERM_LENGTH &&
	    cur->offset == field->offset && cur->size == field->size &&
	    cur->flags == field->flags && cur->adjust == field->adjust &&
	    cur->strip == field->strip)
		return evchat__unlock(chat, 0);
	/* The layout is kept with the channel's extra state: few channels
	 * frame by length. */
	struct evchat__extra *x = evchat__extra(chat);
	if (x == NULL)
		return evchat__unlock(chat, -1);
	chat->term.kind = EVCHAT_TERM_LENGTH;
	x->field = *field;
	chat->term.remaining = 0;
	evchat__terminator_changed(chat);
	return evchat__unlock(chat, 0);
}

int evchat_set_terminator_header(struct evchat *chat, evchat_header_cb decode,
                                 size_t max_header, void *arg)
{
	if (chat == NULL || decode == NULL || max_header == 0)
		return invalid();
	evchat__lock(chat);
	/* The same again goes on with the frame, as for a layout. */
	const struct evchat__extra *cur = chat->extra;
	if (chat->term.kind == EVCHAT_TERM_HEADER && cur->decode == decode &&
	    cur->decode_arg == arg && cur->max_header == max_header)
		return evchat__unlock(chat, 0);
	struct evchat__extra *x = evchat__extra(chat);
	if (x == NULL)
		return evchat__unlock(chat, -1);
	chat->term.kind = EVCHAT_TERM_HEADER;
	x->decode = decode;
	x->decode_arg = arg;
	x->max_header = max_header;
	chat->term.remaining = 0;
	evchat__terminator_changed(chat);
	return evchat__unlock(chat, 0);
}

enum evchat_term evchat_get_terminator(const struct evchat *chat,
                                       const void **term, size_t *len,
                                       ev_uint64_t *remaining)
{
	enum evchat_term kind = chat ? chat->term.kind : EVCHAT_TERM_NONE;
	const void *bytes = NULL;
	size_t bytes_len = 0;
	ev_uint64_t left = 0;
	if (kind == EVCHAT_TERM_STRING) {
		bytes = evchat__term_bytes(&chat->term);
		bytes_len = chat->term.len;
	} else if (kind == EVCHAT_TERM_LINE) {
		/* The ending a sender should use; lenient CRLF searches for
		 * "\n" alone but writes "\r\n". */
		static const char crlf[] = "\r\n";
		if (chat->term.optional_cr) {
			bytes = crlf;
			bytes_len = 2;
		} else {
			bytes = evchat__term_bytes(&chat->term);
			bytes_len = chat->term.len;
		}
	} else if (kind == EVCHAT_TERM_COUNT ||
	           (evchat__term_has_header(kind) && chat->term.in_body)) {
		left = chat->term.remaining;
		if (kind == EVCHAT_TERM_COUNT && chat->term.trailer)
			bytes = evchat__trailer(chat, &bytes_len);
	}
	if (term != NULL)
		*term = bytes;
	if (len != NULL)
		*len = bytes_len;
	if (remaining != NULL)
		*remaining = left;
	return kind;
}

int evchat_set_max_frame(struct evchat *chat, size_t max)
{
	if (chat == NULL)
		return invalid();
	evchat__lock(chat);
	chat->max_frame = max;
	evchat__limit_changed(chat);
	return evchat__unlock(chat, 0);
}

int evchat_set_frame_limit(struct evchat *chat, size_t max,
                           enum evchat_limit_policy policy)
{
	if (chat == NULL ||
	    (policy != EVCHAT_LIMIT_CLOSE && policy != EVCHAT_LIMIT_DISCARD &&
	     policy != EVCHAT_LIMIT_SPLIT))
		return invalid();
	evchat__lock(chat);
	/* Skipping counts the frame's bytes in the extra state. */
	if (policy == EVCHAT_LIMIT_DISCARD && evchat__extra(chat) == NULL)
		return evchat__unlock(chat, -1);
	chat->max_frame = max;
	chat->limit_policy = (unsigned)policy;
	evchat__limit_changed(chat);
	return evchat__unlock(chat, 0);
}

ev_uint64_t evchat_get_discarded(const struct evchat *chat)
{
	return chat != NULL && chat->extra != NULL ? chat->extra->discarded : 0;
}

int evchat_frame_is_partial(const struct evchat *chat)
{
	return chat != NULL && chat->partial;
}

struct evbuffer *evchat_get_pending(struct evchat *chat)
{
	if (chat == NULL)
		return NULL;
	/* Lent for the channel's life: the input loop no longer gives it
	 * back to the spares when it empties. */
	evchat__lock(chat);
	struct evbuffer *pending = evchat__frame_buffer(chat);
	if (pending != NULL)
		chat->frame_kept = 1;
	else
		errno = ENOMEM;
	evchat__unlock(chat, 0);
	return pending;
}

size_t evchat_get_pending_length(struct evchat *chat)
{
	if (chat == NULL)
		return 0;
	evchat__lock(chat);
	size_t n = chat->frame != NULL ? evbuffer_get_length(chat->frame) : 0;
	evchat__unlock(chat, 0);
	return n;
}
