/*
 * Length fields: the header that says how long a binary frame is, in a
 * layout of evchat_set_terminator_length() or read by the program's own
 * decoder (evchat_set_terminator_header()).
 *
 * The layout follows the usual description of such protocols: some bytes,
 * an unsigned integer of 1, 2, 4 or 8 bytes in either byte order, and the
 * rest; the frame's whole length is offset + size + value + adjust. All
 * arithmetic is checked, because the value comes from the peer: an 8-byte
 * field can claim 2^64 - 1 bytes, and a negative adjust can make a frame
 * shorter than its own header.
 */
#include <errno.h>
#include <string.h>

#include "evchat-internal.h"

int evchat__length_field_check(const struct evchat_length_field *field)
{
	unsigned size = field->size;
	if ((size != 1 && size != 2 && size != 4 && size != 8) ||
	    (field->flags & ~EVCHAT_LENGTH_LITTLE_ENDIAN) != 0 ||
	    field->offset > (size_t)-1 - size ||
	    field->strip > field->offset + size) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int evchat__length_decode(const struct evchat_length_field *field,
                          struct evbuffer *buf, ev_uint64_t *frame_len)
{
	unsigned char raw[8];
	struct evbuffer_ptr pos;
	if (evbuffer_ptr_set(buf, &pos, field->offset, EVBUFFER_PTR_SET) < 0 ||
	    evbuffer_copyout_from(buf, &pos, raw, field->size) !=
	        (ev_ssize_t)field->size)
		return -1;
	return evchat__length_parse(field, raw, frame_len);
}

int evchat__length_parse(const struct evchat_length_field *field,
                         const unsigned char *raw, ev_uint64_t *frame_len)
{
	ev_uint64_t value = 0;
	for (unsigned i = 0; i < field->size; i++) {
		unsigned k = (field->flags & EVCHAT_LENGTH_LITTLE_ENDIAN)
		                 ? field->size - 1 - i
		                 : i;
		value = (value << 8) | raw[k];
	}

	/* header + value + adjust, in an order that cannot wrap: a frame
	 * shorter than its header is invalid; one past 2^64 - 1 bytes is
	 * merely too long, and saturates so the limit policy applies. */
	ev_uint64_t header = (ev_uint64_t)field->offset + field->size;
	if (field->adjust < 0) {
		ev_uint64_t minus = (ev_uint64_t)(-(field->adjust + 1)) + 1;
		if (value < minus)
			return -1; /* the frame would end inside its header */
		value -= minus;
	} else if (value > EV_UINT64_MAX - (ev_uint64_t)field->adjust) {
		*frame_len = EV_UINT64_MAX;
		return 0;
	} else {
		value += (ev_uint64_t)field->adjust;
	}
	*frame_len = value > EV_UINT64_MAX - header ? EV_UINT64_MAX
	                                            : header + value;
	return 0;
}

int evchat__length_encode(const struct evchat_length_field *field, size_t len,
                          unsigned char raw[8])
{
	if (field->offset != 0) {
		errno = EINVAL;
		return -1;
	}
	/* The frame is size + len bytes, so value = len - adjust. */
	ev_uint64_t value;
	if (field->adjust >= 0) {
		if ((ev_uint64_t)len < (ev_uint64_t)field->adjust) {
			errno = EMSGSIZE;
			return -1;
		}
		value = (ev_uint64_t)len - (ev_uint64_t)field->adjust;
	} else {
		ev_uint64_t plus = (ev_uint64_t)(-(field->adjust + 1)) + 1;
		if ((ev_uint64_t)len > EV_UINT64_MAX - plus) {
			errno = EMSGSIZE;
			return -1;
		}
		value = (ev_uint64_t)len + plus;
	}
	if (field->size < 8 && value >> (8 * field->size) != 0) {
		errno = EMSGSIZE;
		return -1;
	}
	for (unsigned i = 0; i < field->size; i++) {
		unsigned k = (field->flags & EVCHAT_LENGTH_LITTLE_ENDIAN)
		                 ? i
		                 : field->size - 1 - i;
		raw[k] = (unsigned char)(value >> (8 * i));
	}
	return 0;
}

int evchat__header_decode(const struct evchat__extra *x,
                          const unsigned char *bytes, size_t avail,
                          struct evchat_header *header)
{
	/* A run that took every frame in a read asks about the empty rest:
	 * the decoder is promised at least one byte. */
	if (avail == 0)
		return 0;
	size_t len = avail < x->max_header ? avail : x->max_header;
	memset(header, 0, sizeof(*header));
	int found = x->decode(bytes, len, header, x->decode_arg);
	if (found == 0)
		return len < x->max_header ? 0 : -1; /* no longer header */
	/* A size of 0 would end an empty frame for ever without taking a
	 * byte; one past len, or a strip past the size, would take bytes
	 * the decoder never saw as header. */
	if (found != 1 || header->size == 0 || header->size > len ||
	    header->strip > header->size)
		return -1;
	return 1;
}
