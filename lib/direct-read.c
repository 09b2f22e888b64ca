/*
 * EVCHAT_OPT_DIRECT_READ: the channel reads the socket itself, and
 * reports what it meets there as libevent reports its own reads. The
 * input loop (lib/input.c) frames the bytes.
 *
 * On a plain socket bufferevent the channel takes over the bufferevent's
 * own read event (struct bufferevent's ev_read, from
 * event2/bufferevent_struct.h): libevent 2.1 asks the socket how much it
 * holds (ioctl FIONREAD) before every read, and on the virtual machines
 * we measure on a system call costs about a microsecond, several percent
 * of an unpipelined request's round trip; an event of the channel's own
 * would cost every idle connection its size instead. The takeover keeps
 * the event's socket, flags and timeout, so enabling, disabling,
 * timeouts, priority and freeing work as before; it is made only where
 * the event is plainly libevent's socket read event, and
 * bufferevent_setfd() hands it back to libevent, whose read then calls
 * evchat__read_cb() as on any other bufferevent. A read while the
 * bufferevent has a rate limit of its own is libevent's too, so that its
 * bucket is charged; a rate-limit group's is not charged by our reads,
 * only respected through bufferevent_get_max_to_read().
 *
 * Where libevent reads (the takeover not made), a read that filled its
 * 4 KiB cap is followed by a read of the socket's rest (below).
 */
#include <errno.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "input-internal.h"

/* After event2/bufferevent.h, which it needs. */
#include <event2/bufferevent_struct.h>

/* What one read of the socket takes at most (and the in buffer size, if
 * smaller): a read's bytes are copied into one chain, and a chain under
 * 16 KiB of heap (see EVCHAT__DIRECT_READ_MAX) is the largest that
 * glibc recycles without trimming its heap. */
#define EVCHAT__SOCKET_READ_MAX (12 * 1024)

/* Reads up to want bytes into room reserved at the input's end, as
 * libevent's read does but without asking the socket first: what the
 * read does not fill stays reserved for the next one. */
static ssize_t read_in_place(evutil_socket_t fd, struct evbuffer *input,
                             size_t want)
{
	struct evbuffer_iovec vec[2];
	int nvec = evbuffer_reserve_space(input, (ev_ssize_t)want, vec, 2);
	if (nvec < 1) {
		errno = ENOMEM;
		return -2;
	}
	/* The chains may hold more room than asked: no more than want. */
	struct iovec iov[2];
	size_t room = want;
	for (int i = 0; i < nvec; i++) {
		iov[i].iov_base = vec[i].iov_base;
		iov[i].iov_len = vec[i].iov_len < room ? vec[i].iov_len : room;
		room -= iov[i].iov_len;
	}
	ssize_t n = readv(fd, iov, nvec);
	if (n <= 0)
		return n;
	/* Commit what came, the first vector first. */
	size_t left = (size_t)n;
	int used = 0;
	for (; used < nvec && left > 0; used++) {
		if (vec[used].iov_len > left)
			vec[used].iov_len = left;
		left -= vec[used].iov_len;
	}
	evbuffer_commit_space(input, vec, used);
	return n;
}

/* libevent's own read callback for socket bufferevents, learnt from a
 * throwaway one: what a taken-over event is compared with, and what a
 * rate-limited read is handed back to. The same for every bufferevent. */
static event_callback_fn libevent_socket_read;

static event_callback_fn socket_read_callback(struct event_base *base)
{
	event_callback_fn cb = __atomic_load_n(&libevent_socket_read,
	                                       __ATOMIC_ACQUIRE);
	if (cb != NULL)
		return cb;
	struct bufferevent *probe = bufferevent_socket_new(base, -1, 0);
	if (probe == NULL)
		return NULL;
	cb = event_get_callback(&probe->ev_read);
	bufferevent_free(probe);
	__atomic_store_n(&libevent_socket_read, cb, __ATOMIC_RELEASE);
	return cb;
}

static void socket_read(struct evchat *chat, evutil_socket_t fd)
{
	struct bufferevent *bev = chat->bev;
	/* The in buffer size, or a rate-limit group's share. */
	ev_ssize_t max = bufferevent_get_max_to_read(bev);
	if (max <= 0)
		return; /* the group is spent: libevent suspends reading */
	size_t want = (size_t)max < EVCHAT__SOCKET_READ_MAX
	                  ? (size_t)max
	                  : EVCHAT__SOCKET_READ_MAX;
	ssize_t n;
	if (chat->closing) {
		/* A close reads only to discard: into the read scratch, or
		 * a little room of its own while the scratch is out (lent
		 * by an input loop this one runs inside, or no memory). */
		unsigned char room[512];
		unsigned char *buf = evchat__read_scratch();
		if (buf == NULL) {
			buf = room;
			want = want < sizeof(room) ? want : sizeof(room);
		}
		n = read(fd, buf, want);
		if (n > 0) {
			chat->close_heard = 1;
			return;
		}
	} else {
		struct evbuffer *input = evchat__input_buffer(chat);
		unsigned char *buf = chat->reads_big ? NULL
		                                     : evchat__read_scratch();
		if (input == NULL) {
			evchat__input_failed(chat);
			return;
		}
		/* Bytes libevent read before the channel took its event
		 * over (or after it gave it back) go first. */
		struct evbuffer *before = bufferevent_get_input(bev);
		if (evbuffer_get_length(before) > 0 &&
		    evbuffer_add_buffer(input, before) < 0) {
			evchat__input_failed(chat);
			return;
		}
		/* read(), as libevent's own reads: the socket may be a
		 * pipe. Short reads go to the scratch, framed from there
		 * while their frames are whole, the rest copied: a chain
		 * reserved for the most a read may bring would be mostly
		 * empty, and allocated and freed at that size on every
		 * read. */
		n = buf != NULL ? read(fd, buf, want)
		                : read_in_place(fd, input, want);
		if (n == -2) {
			evchat__input_failed(chat);
			return;
		}
		if (n > 0) {
			/* A read that (nearly) filled its size reads the
			 * next time straight into the input's chains: a
			 * stream of long frames is not copied. Anything
			 * less goes to the scratch, and gets a chain of
			 * its own size: room reserved and left mostly
			 * empty would follow the bytes into the frame
			 * buffer (a line paced at 4 KiB a read held four
			 * times its size). */
			chat->reads_big = (size_t)n >= want - want / 4;
			evchat__input_run_read(chat, buf, (size_t)n);
			return;
		}
	}
	short what = BEV_EVENT_READING | BEV_EVENT_EOF;
	if (n < 0) {
		int err = errno;
		if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
			return;
		what = BEV_EVENT_READING | BEV_EVENT_ERROR;
		errno = err;
	}
	/* As libevent's read: reading stops, then the event callback. */
	int err = errno;
	bufferevent_disable(bev, EV_READ);
	errno = err;
	bufferevent_trigger_event(bev, what, 0);
}

static void socket_read_cb(evutil_socket_t fd, short what, void *arg)
{
	/* The event's argument stays the bufferevent: libevent hands it to
	 * the bufferevent's finalizer when freeing it. The channel is the
	 * bufferevent's callback argument, NULL once evchat_free() let go. */
	struct bufferevent *bev = arg;
	struct evchat *chat = bev->cbarg;
	if (chat == NULL)
		return;
	/* A rate limit on the bufferevent: libevent's read charges its
	 * bucket (and calls evchat__read_cb() as on any bufferevent). */
	if (bufferevent_get_read_limit(bev) != EV_SSIZE_MAX) {
		libevent_socket_read(fd, what, bev);
		return;
	}
	struct evchat *outer = evchat__enter(chat);
	if (chat->freeing) {
		/* Nothing more for this channel. */
	} else if (what == EV_TIMEOUT) {
		/* The read timeout, as libevent reports it. */
		bufferevent_disable(chat->bev, EV_READ);
		bufferevent_trigger_event(chat->bev,
		                          BEV_EVENT_READING | BEV_EVENT_TIMEOUT,
		                          0);
	} else if (chat->api_depth > 0) {
		/* Never from the loop; were it, the socket stays readable
		 * and the event comes again. */
	} else {
		socket_read(chat, fd);
	}
	evchat__leave(chat, outer);
}

/* Whether a connect on fd has yet to finish (or failed). Until it
 * finishes the read event stays libevent's: a refused connect makes the
 * socket readable as well as writable, and libevent reports the refusal
 * from its write event, as a bare error. libevent adds that event when it
 * starts a connect, so the kernel is asked only then. */
static int connect_unfinished(struct bufferevent *bev, evutil_socket_t fd)
{
	if (!event_pending(&bev->ev_write, EV_WRITE, NULL))
		return 0;
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	int err = errno;
	int unfinished = getpeername(fd, (struct sockaddr *)&peer, &len) < 0 &&
	                 errno == ENOTCONN;
	errno = err;
	return unfinished;
}

void evchat__socket_read_take(struct evchat *chat)
{
	struct bufferevent *bev = chat->bev;
	struct event *ev = &bev->ev_read;
	evutil_socket_t fd = bufferevent_getfd(bev);
	/* Only libevent's socket read event: its callback (a TLS
	 * bufferevent on a socket has the same socket, base and argument),
	 * its socket, base and argument, persistent. Anything else is left
	 * as it is, and libevent reads; so it is without a read scratch (no
	 * thread-local storage, or no memory for it now). */
	if (fd < 0 || !evchat__read_scratch_ready() || !event_initialized(ev) ||
	    event_get_callback(ev) !=
	        socket_read_callback(bufferevent_get_base(bev)) ||
	    event_get_fd(ev) != fd ||
	    event_get_base(ev) != bufferevent_get_base(bev) ||
	    event_get_callback_arg(ev) != bev ||
	    (event_get_events(ev) & (EV_READ | EV_PERSIST)) !=
	        (EV_READ | EV_PERSIST) ||
	    connect_unfinished(bev, fd))
		return;
	int pending = event_pending(ev, EV_READ | EV_TIMEOUT, NULL);
	int priority = event_get_priority(ev);
	if (pending)
		event_del(ev);
	if (event_assign(ev, bufferevent_get_base(bev), fd,
	                 event_get_events(ev), socket_read_cb, bev) < 0)
		return; /* cannot fail: the same event, not pending */
	/* event_assign() resets it to the base's middle priority. */
	event_priority_set(ev, priority);
	/* Re-added by the bufferevent, with its read timeout. */
	if (pending)
		bufferevent_enable(bev, EV_READ);
}

/* libevent 2.1 reads at most this much per read callback, whatever the
 * bufferevent's max single read says. */
#define EVCHAT__LIBEVENT_READ_CAP 4096
/* What a direct read adds to it at most. With libevent's 4 KiB the chain
 * stays under 16 KiB of heap: bigger ones (a 64 KiB read is a 128 KiB
 * chain, libevent rounds up) freed every callback at the top of glibc's
 * heap crossed its trim threshold each time, and every read then faulted
 * its pages in afresh: 16 KiB lines ran at a quarter of the limit's speed
 * after the heap had once served 50 connections. */
#define EVCHAT__DIRECT_READ_MAX 8192

/* EVCHAT_OPT_DIRECT_READ: libevent's read filled its cap, so the socket
 * may hold more: read what it holds now (FIONREAD, as libevent does, so
 * no chain is made bigger than the bytes need), up to the in buffer size
 * and any rate limit, into the same chain where evbuffer_expand() allows,
 * so a long frame lies in one piece. */
void evchat__direct_read(struct evchat *chat)
{
	struct evbuffer *read_buf = bufferevent_get_input(chat->bev);
	if (evbuffer_get_length(read_buf) < EVCHAT__LIBEVENT_READ_CAP)
		return;
	/* Without an input buffer the input loop reports the failure. */
	struct evbuffer *input = evchat__input_buffer(chat);
	if (input == NULL)
		return;
	evbuffer_add_buffer(input, read_buf);
	evutil_socket_t fd = bufferevent_getfd(chat->bev);
	ev_ssize_t max = bufferevent_get_max_single_read(chat->bev);
	ev_ssize_t allowed = bufferevent_get_max_to_read(chat->bev);
	size_t have = evbuffer_get_length(input);
	int waiting = 0;
	if (fd < 0 || max <= 0 || allowed <= 0 || have >= (size_t)max ||
	    !(bufferevent_get_enabled(chat->bev) & EV_READ) ||
	    ioctl(fd, FIONREAD, &waiting) < 0 || waiting <= 0)
		return;
	size_t want = (size_t)max - have;
	if (want > EVCHAT__DIRECT_READ_MAX)
		want = EVCHAT__DIRECT_READ_MAX;
	if (want > (size_t)waiting)
		want = (size_t)waiting;
	if (want > (size_t)allowed)
		want = (size_t)allowed;
	struct evbuffer_iovec space;
	if (evbuffer_expand(input, want) < 0 ||
	    evbuffer_reserve_space(input, (ev_ssize_t)want, &space, 1) < 1)
		return;
	if (space.iov_len > want)
		space.iov_len = want;
	/* read(), not recv(): a socket bufferevent may sit on a pipe. */
	ssize_t n = read(fd, space.iov_base, space.iov_len);
	if (n > 0) {
		space.iov_len = (size_t)n;
		evbuffer_commit_space(input, &space, 1);
		return;
	}
	/* An EOF is left for the bufferevent's next read to find; an
	 * error cannot be, since the socket reports it only once. */
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		chat->read_error = errno > 0 && errno <= 0xffff ? errno : EIO;
}

/* An error met by evchat__direct_read(), after the frames read before it, as
 * libevent reports one of its own reads: reading stops, then the event
 * callback runs. */
void evchat__direct_read_error(struct evchat *chat)
{
	int err = chat->read_error;
	chat->read_error = 0;
	bufferevent_disable(chat->bev, EV_READ);
	errno = err;
	bufferevent_trigger_event(chat->bev,
	                          BEV_EVENT_READING | BEV_EVENT_ERROR, 0);
}
