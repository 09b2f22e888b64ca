/*
 * The read's reply batch: what hooks push while the input loop runs goes
 * to chat->batch, a buffer without callbacks, through room at its end,
 * and reaches the bufferevent in one move when the loop ends (or first
 * written to the socket, with EVCHAT_OPT_DIRECT_WRITE).
 *
 * With EVCHAT_OPT_DIRECT_WRITE the room is, while it can be, the thread's
 * reply scratch (lib/spare.c) rather than a chain reserved in the batch:
 * the replies go to the socket straight from there, and a read that is
 * answered at once allocates nothing for its replies. What the socket
 * does not take is copied into the batch.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "evchat-internal.h"

/* Below this, a reservation takes what its chain has: a read's replies
 * usually fit one chain, reserved once. */
#define EVCHAT__ROOM_MIN 1024
/* Above this, a push is added to the batch as it is: a copy either way,
 * and the room's sizes stay 32-bit (a channel's every byte counts). */
#define EVCHAT__ROOM_MAX (1024 * 1024)

static void scratch_give_back(struct evchat *chat)
{
	evchat__scratch_give();
	chat->room_scratch = 0;
	chat->room = NULL;
	chat->room_len = chat->room_used = 0;
}

/* Out of memory for the scratch room's bytes: they are lost, so the
 * channel fails, reported when the input loop ends (the room is open
 * only while it runs, maybe inside a call that must not run hooks). */
static int scratch_lost(struct evchat *chat)
{
	scratch_give_back(chat);
	chat->failed = 1;
	chat->room_lost = 1;
	bufferevent_disable(chat->bev, EV_READ | EV_WRITE);
	errno = ENOMEM;
	return -1;
}

/* The socket the batch may go to now, or -1: EVCHAT_OPT_DIRECT_WRITE,
 * nothing is ahead of it in the output, and the bufferevent has no rate
 * limit of its own (libevent writes then, so that its bucket is charged,
 * as for reads in lib/direct-read.c). *max is how much may be written:
 * a rate-limit group's share, respected though not charged. An error is
 * left for the bufferevent to meet and report on its own write, with the
 * bytes still queued. */
static evutil_socket_t direct_write_fd(struct evchat *chat, size_t *max)
{
	struct bufferevent *bev = chat->bev;
	if (!(chat->options & EVCHAT_OPT_DIRECT_WRITE) || chat->failed ||
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0 ||
	    !(bufferevent_get_enabled(bev) & EV_WRITE) ||
	    bufferevent_get_write_limit(bev) != EV_SSIZE_MAX)
		return -1;
	ev_ssize_t allowed = bufferevent_get_max_to_write(bev);
	if (allowed <= 0)
		return -1;
	*max = (size_t)allowed;
	return bufferevent_getfd(bev);
}

/* Where len more bytes go in the batch's room, taking more if it is
 * full; NULL (ENOMEM) out of memory. The caller adds len to room_used. */
static unsigned char *room_for(struct evchat *chat, size_t len)
{
	if (len <= chat->room_len - chat->room_used)
		return chat->room + chat->room_used;
	if (evchat__batch_settle(chat) < 0)
		return NULL;
	if ((chat->options & EVCHAT_OPT_DIRECT_WRITE) &&
	    len <= EVCHAT__SCRATCH_SIZE &&
	    evbuffer_get_length(chat->batch) == 0 &&
	    (chat->room = evchat__scratch_take()) != NULL) {
		chat->room_scratch = 1;
		chat->room_len = EVCHAT__SCRATCH_SIZE;
		return chat->room;
	}
	struct evbuffer_iovec vec;
	size_t want = len < EVCHAT__ROOM_MIN ? EVCHAT__ROOM_MIN : len;
	if (want > (size_t)EV_SSIZE_MAX ||
	    evbuffer_reserve_space(chat->batch, (ev_ssize_t)want, &vec, 1) <
	        1) {
		errno = ENOMEM;
		return NULL;
	}
	chat->room = vec.iov_base;
	chat->room_len = vec.iov_len < EVCHAT__ROOM_MAX
	                     ? (ev_uint32_t)vec.iov_len
	                     : EVCHAT__ROOM_MAX;
	return chat->room;
}

int evchat__batch_copy(struct evchat *chat, const void *head, size_t head_len,
                       const void *body, size_t body_len)
{
	size_t len = head_len + body_len;
	if (len > EVCHAT__ROOM_MAX) {
		if (evchat__batch_settle(chat) < 0)
			return -1;
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

int evchat__batch_settle(struct evchat *chat)
{
	if (chat->room == NULL)
		return 0;
	if (chat->room_scratch) {
		if (chat->room_used > 0 &&
		    evbuffer_add(chat->batch, chat->room, chat->room_used) < 0)
			return scratch_lost(chat);
		scratch_give_back(chat);
		return 0;
	}
	struct evbuffer_iovec vec = { chat->room, chat->room_used };
	/* Cannot fail: the space is the one reserved, and nothing touched
	 * the batch since. */
	evbuffer_commit_space(chat->batch, &vec, 1);
	chat->room = NULL;
	chat->room_len = chat->room_used = 0;
	return 0;
}

void evchat__batch_discard(struct evchat *chat)
{
	if (chat->room_scratch)
		scratch_give_back(chat);
	evchat__batch_settle(chat); /* a reserved room: cannot fail */
	if (chat->batch != NULL)
		evbuffer_drain(chat->batch, (size_t)-1);
}

/* The scratch room at the input loop's end: what the socket takes now
 * is written from it, the rest goes to the batch (empty until then: the
 * scratch is taken only for an empty batch, and settled before anything
 * else goes in). */
static void scratch_send(struct evchat *chat)
{
	size_t done = 0, used = chat->room_used, max = 0;
	evutil_socket_t fd = direct_write_fd(chat, &max);
	if (fd >= 0) {
		size_t end = used < max ? used : max;
		/* write(), as libevent's own writes: the socket bufferevent
		 * may sit on a pipe. */
		while (done < end) {
			ssize_t n = write(fd, chat->room + done, end - done);
			if (n <= 0)
				break;
			done += (size_t)n;
		}
	}
	if (done < used &&
	    evbuffer_add(chat->batch, chat->room + done, used - done) < 0) {
		scratch_lost(chat);
		return;
	}
	scratch_give_back(chat);
}

/* EVCHAT_OPT_DIRECT_WRITE: the batch straight to the socket, when nothing
 * is ahead of it. */
static void batch_write(struct evchat *chat)
{
	if (evbuffer_get_length(chat->batch) == 0)
		return;
	size_t max = 0;
	evutil_socket_t fd = direct_write_fd(chat, &max);
	int n;
	while (fd >= 0 && max > 0 &&
	       (n = evbuffer_write_atmost(chat->batch, fd, (ev_ssize_t)max)) >
	           0 &&
	       evbuffer_get_length(chat->batch) > 0)
		max -= (size_t)n;
}

void evchat__batch_send(struct evchat *chat)
{
	if (chat->room_scratch)
		scratch_send(chat);
	if (chat->room_lost) {
		/* Bytes a hook was told were pushed are gone. */
		chat->room_lost = 0;
		if (chat->batch != NULL)
			evbuffer_drain(chat->batch, (size_t)-1);
		errno = ENOMEM;
		evchat__report(chat, EVCHAT_EVENT_ERROR | EVCHAT_EVENT_WRITING);
		if (chat->freeing)
			return;
	}
	evchat__batch_settle(chat); /* a reserved room: cannot fail */
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

int evchat__batch_flush(struct evchat *chat)
{
	if (evchat__batch_settle(chat) < 0)
		return -1;
	if (chat->batch == NULL || evbuffer_get_length(chat->batch) == 0)
		return 0;
	/* A filter or pair may call our write callback from inside the
	 * move; as inside any API call, it only schedules its work. */
	chat->api_depth++;
	evbuffer_add_buffer(bufferevent_get_output(chat->bev), chat->batch);
	chat->api_depth--;
	return 0;
}
