/*
 * The output queue: pushed bytes, files and producers, in push order.
 *
 * While nothing waits in the queue, pushes go straight into the
 * bufferevent's output buffer, which is itself a FIFO: no queue item, no
 * extra copy. Only once a producer is queued does later output wait behind
 * it in items of its own. Producers are pulled from the write callback,
 * and only while the output buffer holds less than out_buffer_size bytes,
 * so a producer of any size costs about that much memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evchat-internal.h"

static int push_check(struct evchat *chat)
{
	if (chat == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (chat->shutting || chat->failed || chat->freeing) {
		errno = EPIPE;
		return -1;
	}
	return 0;
}

static struct evchat__item *item_append(struct evchat *chat,
                                        enum evchat__item_kind kind)
{
	struct evchat__item *item = evchat__calloc(1, sizeof(*item));
	if (item == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	item->kind = kind;
	item->fd = -1;
	if (kind == EVCHAT__ITEM_DATA &&
	    (item->data = evbuffer_new()) == NULL) {
		evchat__free(item);
		errno = ENOMEM;
		return NULL;
	}
	/* A ring: the tail's next is the head. */
	struct evchat__item *tail = chat->queue_tail;
	item->next = tail != NULL ? tail->next : item;
	if (tail != NULL)
		tail->next = item;
	chat->queue_tail = item;
	return item;
}

struct evbuffer *evchat__push_target(struct evchat *chat)
{
	if (push_check(chat) < 0)
		return NULL;
	if (chat->queue_tail == NULL) {
		/* Made on first use: an idle channel costs less. Without
		 * memory for it, pushes go to the output, just slower. */
		if (chat->in_input && chat->batch == NULL)
			chat->batch = evchat__spare_take();
		return chat->in_input && chat->batch != NULL
		           ? chat->batch
		           : bufferevent_get_output(chat->bev);
	}
	struct evchat__item *tail = chat->queue_tail;
	if (tail->kind == EVCHAT__ITEM_DATA)
		return tail->data;
	tail = item_append(chat, EVCHAT__ITEM_DATA);
	return tail ? tail->data : NULL;
}

int evchat__pushed(struct evchat *chat, int r)
{
	/* Pushes batched by the input loop are counted once, at its end,
	 * or when a hook asks (evchat_is_writable()). A failed push may
	 * have queued part of its bytes: counted all the same. */
	if (chat->in_input)
		chat->flow_stale = 1;
	else if (r == 0)
		evchat__flow_check(chat);
	return evchat__unlock(chat, r);
}

size_t evchat__items_queued(const struct evchat *chat)
{
	size_t n = 0;
	const struct evchat__item *tail = chat->queue_tail;
	const struct evchat__item *item = tail;
	while (item != NULL) {
		item = item->next; /* the head first */
		if (item->kind == EVCHAT__ITEM_DATA)
			n += evbuffer_get_length(item->data);
		else if (item->kind == EVCHAT__ITEM_FILE)
			n += (size_t)item->length;
		if (item == tail)
			break;
	}
	return n;
}

static int push_bytes(struct evchat *chat, const void *data, size_t len)
{
	if (push_check(chat) < 0)
		return -1;
	if (data == NULL && len > 0) {
		errno = EINVAL;
		return -1;
	}
	if (len == 0)
		return 0;
	struct evbuffer *target = evchat__push_target(chat);
	if (target == NULL)
		return -1;
	if (target == chat->batch)
		return evchat__batch_copy(chat, data, len, NULL, 0);
	if (evchat__buffer_add(target, data, len) < 0) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

static int push_buffer(struct evchat *chat, struct evbuffer *buf)
{
	if (push_check(chat) < 0)
		return -1;
	if (buf == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (evbuffer_get_length(buf) == 0)
		return 0;
	struct evbuffer *target = evchat__push_target(chat);
	if (target == NULL)
		return -1;
	size_t len = evbuffer_get_length(buf);
	if (target == chat->batch && len <= EVCHAT__ROOM_COPY_MAX)
		return evchat__batch_take(chat, buf, len);
	if (target == chat->batch && evchat__batch_settle(chat) < 0)
		return -1;
	if (evchat__buffer_move(target, buf, len) < 0) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

static int push_file(struct evchat *chat, int fd, ev_off_t offset,
                     ev_off_t length)
{
	if (push_check(chat) < 0)
		return -1;
	if (fd < 0 || offset < 0 || length < -1) {
		errno = EINVAL;
		return -1;
	}
	/* A range past the end would fail mid-send with the connection
	 * half written; refuse it now. libevent 2.1 also takes -1 as the
	 * whole file's size even from an offset, so work the rest out. */
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -1;
	if (offset > st.st_size ||
	    (length != -1 && length > st.st_size - offset)) {
		errno = EINVAL;
		return -1;
	}
	if (length == -1)
		length = st.st_size - offset;
	if (length == 0) {
		close(fd);
		return 0;
	}
	if (evchat__batch_flush(chat) < 0)
		return -1;
	if (chat->queue_tail == NULL) {
		/* libevent closes the descriptor once the file is sent; on
		 * failure the caller keeps it. */
		errno = 0;
		if (evbuffer_add_file(bufferevent_get_output(chat->bev), fd,
		                      offset, length) < 0) {
			if (errno == 0)
				errno = ENOMEM;
			return -1;
		}
		return 0;
	}
	/* Something waits ahead: add the file when its turn comes, so that a
	 * bufferevent that cannot sendfile does not map it early. */
	struct evchat__item *item = item_append(chat, EVCHAT__ITEM_FILE);
	if (item == NULL)
		return -1;
	item->fd = fd;
	item->offset = offset;
	item->length = length;
	return 0;
}

static int push_producer(struct evchat *chat, evchat_more_cb more,
                         void (*release)(void *arg), void *arg)
{
	if (push_check(chat) < 0)
		return -1;
	if (more == NULL) {
		errno = EINVAL;
		return -1;
	}
	/* Bytes batched before it go ahead of it. */
	if (evchat__batch_flush(chat) < 0)
		return -1;
	struct evchat__item *item = item_append(chat, EVCHAT__ITEM_PRODUCER);
	if (item == NULL)
		return -1;
	item->more = more;
	item->release = release;
	item->arg = arg;
	/* The producer is first asked from the event loop, never from
	 * inside this call. */
	evchat__defer(chat, EVCHAT__DEFER_OUTPUT);
	return 0;
}

int evchat_push(struct evchat *chat, const void *data, size_t len)
{
	/* A hook's push that fits the batch's room: a copy and nothing
	 * more. */
	if (chat != NULL && data != NULL && evchat__room_fits(chat, len)) {
		memcpy(chat->room + chat->room_used, data, len);
		chat->room_used += (ev_uint32_t)len;
		chat->flow_stale = 1;
		return 0;
	}
	if (chat == NULL) {
		errno = EINVAL;
		return -1;
	}
	evchat__lock(chat);
	return evchat__pushed(chat, push_bytes(chat, data, len));
}

int evchat_push_buffer(struct evchat *chat, struct evbuffer *buf)
{
	/* As in evchat_push(): a hook's short buffer that fits the room. */
	if (chat != NULL && buf != NULL) {
		size_t len = evbuffer_get_length(buf);
		if (len <= EVCHAT__ROOM_COPY_MAX &&
		    evchat__room_fits(chat, len)) {
			chat->flow_stale = 1;
			return evchat__batch_take(chat, buf, len);
		}
	}
	if (chat == NULL) {
		errno = EINVAL;
		return -1;
	}
	evchat__lock(chat);
	return evchat__pushed(chat, push_buffer(chat, buf));
}

int evchat_push_file(struct evchat *chat, int fd, ev_off_t offset,
                     ev_off_t length)
{
	if (chat == NULL) {
		errno = EINVAL;
		return -1;
	}
	evchat__lock(chat);
	return evchat__pushed(chat, push_file(chat, fd, offset, length));
}

int evchat_push_producer(struct evchat *chat, evchat_more_cb more,
                         void (*release)(void *arg), void *arg)
{
	if (chat == NULL) {
		errno = EINVAL;
		return -1;
	}
	evchat__lock(chat);
	return evchat__pushed(chat, push_producer(chat, more, release, arg));
}

static void item_free(struct evchat__item *item)
{
	if (item->data != NULL)
		evbuffer_free(item->data);
	if (item->fd >= 0)
		close(item->fd);
	if (item->release != NULL)
		item->release(item->arg);
	evchat__free(item);
}

static void pop_head(struct evchat *chat)
{
	struct evchat__item *tail = chat->queue_tail;
	struct evchat__item *item = tail->next;
	if (item == tail)
		chat->queue_tail = NULL;
	else
		tail->next = item->next;
	chat->producer_waits = 0;
	item_free(item);
}

void evchat__output_release(struct evchat *chat)
{
	/* One at a time from the list's head: a release hook may discard
	 * again, adding to it. */
	while (chat->extra != NULL && chat->extra->released != NULL) {
		struct evchat__item *item = chat->extra->released;
		chat->extra->released = item->next;
		item_free(item);
	}
}

void evchat__output_discard(struct evchat *chat, int now)
{
	/* Detach first: a release hook may push again. */
	struct evchat__item *item = evchat__queue_head(chat);
	if (item != NULL)
		chat->queue_tail->next = NULL; /* the ring, as a list */
	chat->queue_tail = NULL;
	chat->producer_waits = 0;
	struct evchat__item *running = chat->extra ? chat->extra->running
	                                           : NULL;
	/* Released from the loop (see the header), at the end of those
	 * already waiting; here, out of memory for the list's place. */
	struct evchat__extra *x = now || item == NULL ? NULL
	                                              : evchat__extra(chat);
	struct evchat__item **later = NULL;
	if (x != NULL)
		for (later = &x->released; *later != NULL;
		     later = &(*later)->next)
			;
	while (item != NULL) {
		struct evchat__item *next = item->next;
		if (item == running) {
			/* Its more hook is still on the stack: pull_producer()
			 * releases it once that returns. */
			item->next = NULL;
			chat->running_dropped = 1;
		} else if (later != NULL) {
			item->next = NULL;
			*later = item;
			later = &item->next;
		} else {
			item_free(item);
		}
		item = next;
	}
	if (now)
		evchat__output_release(chat);
	else if (x != NULL && x->released != NULL)
		evchat__defer(chat, EVCHAT__DEFER_OUTPUT);
}

void evchat__output_failed(struct evchat *chat, int err, short events)
{
	chat->failed = 1;
	bufferevent_disable(chat->bev, EV_READ | EV_WRITE);
	errno = err;
	evchat__report(chat, events | EVCHAT_EVENT_WRITING);
}

static void output_failed(struct evchat *chat, int err)
{
	evchat__output_failed(chat, err, EVCHAT_EVENT_ERROR);
}

/* Asks the head producer for more. Returns 1 to go on with the queue, 0
 * to stop until the write callback or evchat_resume(). */
static int pull_producer(struct evchat *chat, struct evbuffer *out)
{
	struct evchat__item *item = evchat__queue_head(chat);
	/* What is ahead of the producer is what the layers hold; bytes
	 * pushed behind it wait for it, so they must not stop it. */
	size_t have = evchat__layers_queued(chat);
	size_t fill = evchat__out_buffer_size(chat) < evchat__write_high(chat)
	                  ? evchat__out_buffer_size(chat)
	                  : evchat__write_high(chat);
	if (chat->producer_waits || have >= fill)
		return 0;

	/* The scratch buffer is made when the first producer runs. */
	struct evchat__extra *x = evchat__extra(chat);
	if (x == NULL ||
	    (x->produced == NULL && (x->produced = evbuffer_new()) == NULL)) {
		pop_head(chat);
		output_failed(chat, ENOMEM);
		return 0;
	}
	x->running = item;
	chat->resume_requested = 0;
	int r = item->more(chat, x->produced, fill - have, item->arg);
	int err = errno;
	x->running = NULL;
	if (chat->running_dropped) {
		/* The hook discarded the queue or freed the channel: its
		 * bytes go with it, and it is released now, once. */
		chat->running_dropped = 0;
		evbuffer_drain(x->produced, (size_t)-1);
		item_free(item);
		return !chat->freeing;
	}
	size_t got = evbuffer_get_length(x->produced);
	if (evchat__buffer_move(out, x->produced, got) < 0) {
		pop_head(chat);
		output_failed(chat, ENOMEM);
		return 0;
	}
	if (r == 0) {
		pop_head(chat);
		return 1;
	}
	if (r == EVCHAT_AGAIN) {
		/* A resume from inside more() means "ask again": the
		 * deferred run it scheduled will. */
		if (!chat->resume_requested)
			chat->producer_waits = 1;
		return 0;
	}
	if (r > 0 && got > 0)
		return 1;
	/* A failure, or a claim of progress with nothing to show for it,
	 * which would otherwise loop forever. The release hook runs before
	 * the report and must not change the errno the event hook sees. */
	if (r > 0 || err == 0)
		err = EINVAL;
	pop_head(chat);
	output_failed(chat, err);
	return 0;
}

void evchat__output_run(struct evchat *chat)
{
	if (chat->in_output)
		return;
	/* Reached from inside the input loop (a filter's callback): the
	 * batch is not in the output yet, so a close would end too soon. */
	if (chat->in_input) {
		evchat__defer(chat, EVCHAT__DEFER_OUTPUT);
		return;
	}
	chat->in_output = 1;

	struct evbuffer *out = bufferevent_get_output(chat->bev);
	int go_on = 1;
	while (go_on && chat->queue_tail != NULL && !chat->failed &&
	       !chat->freeing) {
		struct evchat__item *item = evchat__queue_head(chat);
		switch (item->kind) {
		case EVCHAT__ITEM_DATA:
			evbuffer_add_buffer(out, item->data);
			pop_head(chat);
			break;
		case EVCHAT__ITEM_FILE:
			errno = 0;
			if (evbuffer_add_file(out, item->fd, item->offset,
			                      item->length) < 0) {
				int err = errno ? errno : ENOMEM;
				pop_head(chat);
				output_failed(chat, err);
				go_on = 0;
				break;
			}
			item->fd = -1; /* libevent owns it now */
			pop_head(chat);
			break;
		case EVCHAT__ITEM_PRODUCER:
			go_on = pull_producer(chat, out);
			break;
		}
	}
	chat->in_output = 0;
	if (chat->freeing || chat->failed)
		return;

	/* Refill a producer when the buffer is half empty, so the socket
	 * never idles; wake at the low watermark when unwritable; otherwise
	 * only when everything is written, which a pending close waits for. */
	if (evchat__flow_tell(chat))
		return;
	size_t low = 0;
	if (chat->queue_tail != NULL && !chat->producer_waits)
		low = evchat__out_buffer_size(chat) / 2;
	if (chat->unwritable && evchat__write_low(chat) > low)
		low = evchat__write_low(chat);
	bufferevent_setwatermark(chat->bev, EV_WRITE, low, 0);

	/* Shutting down waits for the output to drain itself (to time it,
	 * where libevent does not). */
	if (chat->shutting && chat->queue_tail == NULL)
		evchat__shutdown_run(chat);
}

void evchat__write_cb(struct bufferevent *bev, void *ctx)
{
	struct evchat *chat = ctx;
	(void)bev;
	struct evchat *outer = evchat__enter(chat);
	if (chat->api_depth > 0)
		evchat__defer(chat, EVCHAT__DEFER_OUTPUT);
	else
		evchat__output_run(chat);
	evchat__leave(chat, outer);
}

void evchat_resume(struct evchat *chat)
{
	if (chat == NULL)
		return;
	evchat__lock(chat);
	if (!chat->freeing) {
		chat->producer_waits = 0;
		chat->resume_requested = 1;
		evchat__defer(chat, EVCHAT__DEFER_OUTPUT);
	}
	evchat__unlock(chat, 0);
}

int evchat_set_out_buffer_size(struct evchat *chat, size_t size)
{
	if (chat == NULL || size == 0) {
		errno = EINVAL;
		return -1;
	}
	evchat__lock(chat);
	/* Kept with the extra state: most channels keep the default. */
	struct evchat__extra *x = evchat__extra(chat);
	if (x == NULL)
		return evchat__unlock(chat, -1);
	x->out_buffer_size = size;
	evchat__defer(chat, EVCHAT__DEFER_OUTPUT);
	return evchat__unlock(chat, 0);
}
