/*
 * The read's reply batch: what hooks push while the input loop runs goes
 * to chat->batch, a buffer without callbacks, through room reserved at
 * its end, and reaches the bufferevent in one move when the loop ends
 * (or first written to the socket, with EVCHAT_OPT_DIRECT_WRITE).
 */
#include <errno.h>
#include <string.h>

#include "evchat-internal.h"

/* Below this, a reservation takes what its chain has: a read's replies
 * usually fit one chain, reserved once. */
#define EVCHAT__ROOM_MIN 1024
/* Above this, a push is added to the batch as it is: a copy either way,
 * and the room's sizes stay 32-bit (a channel's every byte counts). */
#define EVCHAT__ROOM_MAX (1024 * 1024)

/* Where len more bytes go in the batch's room, reserving more if it is
 * full; NULL (ENOMEM) out of memory. The caller adds len to room_used. */
static unsigned char *room_for(struct evchat *chat, size_t len)
{
	if (len > chat->room_len - chat->room_used) {
		evchat__batch_settle(chat);
		struct evbuffer_iovec vec;
		size_t want = len < EVCHAT__ROOM_MIN ? EVCHAT__ROOM_MIN : len;
		if (want > (size_t)EV_SSIZE_MAX ||
		    evbuffer_reserve_space(chat->batch, (ev_ssize_t)want, &vec,
		                           1) < 1) {
			errno = ENOMEM;
			return NULL;
		}
		chat->room = vec.iov_base;
		chat->room_len = vec.iov_len < EVCHAT__ROOM_MAX
		                     ? (ev_uint32_t)vec.iov_len
		                     : EVCHAT__ROOM_MAX;
	}
	return chat->room + chat->room_used;
}

int evchat__batch_copy(struct evchat *chat, const void *head, size_t head_len,
                       const void *body, size_t body_len)
{
	size_t len = head_len + body_len;
	if (len > EVCHAT__ROOM_MAX) {
		evchat__batch_settle(chat);
		return evchat__buffer_add_two(chat->batch, head, head_len, body,
		                              body_len);
	}
	unsigned char *at = room_for(chat, len);
	if (at == NULL)
		return -1;
	memcpy(at, head, head_len);
	if (body_len > 0)
		memcpy(at + head_len, body, body_len);
	chat->room_used += (ev_uint32_t)len;
	return 0;
}

int evchat__batch_take(struct evchat *chat, struct evbuffer *buf, size_t len)
{
	unsigned char *at = room_for(chat, len);
	if (at == NULL)
		return -1;
	evbuffer_copyout(buf, at, len);
	evbuffer_drain(buf, len);
	chat->room_used += (ev_uint32_t)len;
	return 0;
}

void evchat__batch_settle(struct evchat *chat)
{
	if (chat->room == NULL)
		return;
	struct evbuffer_iovec vec = { chat->room, chat->room_used };
	/* Cannot fail: the space is the one reserved, and nothing touched
	 * the batch since. */
	evbuffer_commit_space(chat->batch, &vec, 1);
	chat->room = NULL;
	chat->room_len = chat->room_used = 0;
}

/* EVCHAT_OPT_DIRECT_WRITE: the batch straight to the socket, when nothing
 * is ahead of it. */
static void batch_write(struct evchat *chat)
{
	if (evbuffer_get_length(chat->batch) == 0)
		return;
	struct evbuffer *out = bufferevent_get_output(chat->bev);
	if ((chat->options & EVCHAT_OPT_DIRECT_WRITE) && !chat->failed &&
	    evbuffer_get_length(out) == 0 &&
	    (bufferevent_get_enabled(chat->bev) & EV_WRITE)) {
		/* Nothing is ahead in the output: write now. An error is
		 * left for the bufferevent to meet and report on its own
		 * write, with the bytes still queued. */
		evutil_socket_t fd = bufferevent_getfd(chat->bev);
		while (fd >= 0 && evbuffer_write(chat->batch, fd) > 0 &&
		       evbuffer_get_length(chat->batch) > 0)
			;
	}
}

void evchat__batch_send(struct evchat *chat)
{
	evchat__batch_settle(chat);
	if (chat->batch == NULL)
		return;
	batch_write(chat);
	evchat__batch_flush(chat);
	/* Moved on whole, as a rule: an idle channel keeps no batch. A
	 * batch the output refused is not a spare: its bytes are freed,
	 * never passed on to another channel. */
	if (evbuffer_get_length(chat->batch) == 0)
		evchat__spare_give(chat->batch);
	else
		evbuffer_free(chat->batch);
	chat->batch = NULL;
}

void evchat__batch_flush(struct evchat *chat)
{
	evchat__batch_settle(chat);
	if (chat->batch == NULL || evbuffer_get_length(chat->batch) == 0)
		return;
	/* A filter or pair may call our write callback from inside the
	 * move; as inside any API call, it only schedules its work. */
	chat->api_depth++;
	evbuffer_add_buffer(bufferevent_get_output(chat->bev), chat->batch);
	chat->api_depth--;
}
