/*
 * Encoders that mirror the decoders: a line written with the channel's own
 * line ending, a frame written with its length header, so what a channel
 * writes is framed by its peer exactly as it was meant.
 */
#include <errno.h>

#include "evchat-internal.h"

/* Queues head then body in one piece: the space is reserved first, so
 * either all of it is queued or, out of memory, none. */
static int push_two(struct evchat *chat, const void *head, size_t head_len,
                    const void *body, size_t body_len)
{
	struct evbuffer *target = evchat__push_target(chat);
	if (target == NULL)
		return -1;
	if (target == chat->batch)
		return evchat__batch_copy(chat, head, head_len, body, body_len);
	return evchat__buffer_add_two(target, head, head_len, body, body_len);
}

static int push_line(struct evchat *chat, const void *data, size_t len)
{
	if (data == NULL && len > 0) {
		errno = EINVAL;
		return -1;
	}
	if (len == 0)
		data = "";
	const void *ending;
	size_t ending_len;
	enum evchat_term kind = evchat_get_terminator(chat, &ending,
	                                              &ending_len, NULL);
	if (kind != EVCHAT_TERM_LINE && kind != EVCHAT_TERM_STRING) {
		errno = EINVAL;
		return -1;
	}
	/* A line ending inside the line would split it on the other side:
	 * a classic injection (headers, SMTP commands). */
	if (!evchat__terminator_frames_once(&chat->term, data, len, ending,
	                                    ending_len)) {
		errno = EINVAL;
		return -1;
	}
	return push_two(chat, data, len, ending, ending_len);
}

static int push_frame(struct evchat *chat, const void *data, size_t len)
{
	if ((data == NULL && len > 0) ||
	    chat->term.kind != EVCHAT_TERM_LENGTH) {
		errno = EINVAL;
		return -1;
	}
	if (len == 0)
		data = "";
	unsigned char header[8];
	if (evchat__length_encode(&chat->extra->field, len, header) < 0)
		return -1;
	return push_two(chat, header, chat->extra->field.size, data, len);
}

int evchat_push_line(struct evchat *chat, const void *data, size_t len)
{
	if (chat == NULL) {
		errno = EINVAL;
		return -1;
	}
	evchat__lock(chat);
	return evchat__pushed(chat, push_line(chat, data, len));
}

int evchat_push_frame(struct evchat *chat, const void *data, size_t len)
{
	if (chat == NULL) {
		errno = EINVAL;
		return -1;
	}
	evchat__lock(chat);
	return evchat__pushed(chat, push_frame(chat, data, len));
}
