/*
 * limit-echo: the fastest honest line echo server over plain libevent,
 * the yardstick evchat is measured against ("the limit").
 *
 *   usage: limit-echo [-p PORT] [-d]
 *
 * No abstraction: bufferevents, one evbuffer_search per line resumed where
 * the last read's search stopped, each line moved to the output with
 * evbuffer_remove_buffer (the chains' bytes are copied into the output's
 * free space or moved whole; nothing is allocated per line).
 *
 * Two ways to send the replies:
 *  - by default through the bufferevent's output, as any libevent program
 *    does: the bufferevent schedules a write event and writes on the next
 *    loop round (on libevent 2.1 that costs an epoll_ctl to add the write
 *    event, an epoll_wait that returns it, and an epoll_ctl to remove it);
 *  - with -d, straight from the read callback: the replies are gathered in
 *    a buffer of the connection's own and written to the socket at once;
 *    only what the socket does not take goes through the bufferevent.
 *
 * Prints "listening on 127.0.0.1:PORT", serves until SIGINT or SIGTERM,
 * then exits 0 (so that valgrind and profilers see a clean exit).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

struct conn {
	struct bufferevent *bev;
	struct evbuffer *direct; /* -d: replies gathered in one read */
	size_t scanned;          /* bytes at the input's head without '\n' */
};

static int direct_writes;

static void conn_free(struct conn *c)
{
	bufferevent_free(c->bev);
	if (c->direct != NULL)
		evbuffer_free(c->direct);
	free(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(bev);
	/* Replies go straight to the socket only while the bufferevent has
	 * nothing queued: otherwise they would overtake its bytes. */
	int direct = direct_writes && evbuffer_get_length(out) == 0;
	struct evbuffer *dst = direct ? c->direct : out;
	for (;;) {
		struct evbuffer_ptr from;
		evbuffer_ptr_set(in, &from, c->scanned, EVBUFFER_PTR_SET);
		struct evbuffer_ptr nl = evbuffer_search(in, "\n", 1, &from);
		if (nl.pos < 0) {
			c->scanned = evbuffer_get_length(in);
			break;
		}
		evbuffer_remove_buffer(in, dst, (size_t)nl.pos + 1);
		c->scanned = 0;
	}
	if (!direct)
		return;
	while (evbuffer_get_length(c->direct) > 0) {
		int n = evbuffer_write(c->direct, bufferevent_getfd(bev));
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				conn_free(c);
				return;
			}
			/* The socket is full: the bufferevent waits for it. */
			evbuffer_add_buffer(out, c->direct);
			return;
		}
	}
}

static void on_event(struct bufferevent *bev, short events, void *arg)
{
	(void)bev, (void)events;
	conn_free(arg);
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd,
                      struct sockaddr *addr, int addrlen, void *arg)
{
	struct event_base *base = arg;
	(void)listener, (void)addr, (void)addrlen;
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		evutil_closesocket(fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL ||
	    (direct_writes && (c->direct = evbuffer_new()) == NULL)) {
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		else
			evutil_closesocket(fd);
		free(c);
		return;
	}
	/* libevent reads at most 16 KiB per callback by default; evchat and
	 * asynchat read 64 KiB. */
	bufferevent_set_max_single_read(c->bev, 65536);
	bufferevent_set_max_single_write(c->bev, 65536);
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig, (void)what;
	event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
	long port = 7001;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-d") == 0) {
			direct_writes = 1;
		} else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc) {
			port = strtol(argv[++i], NULL, 10);
		} else {
			fprintf(strcmp(argv[i], "-h") == 0 ? stdout : stderr,
			        "usage: limit-echo [-p PORT] [-d]\n");
			return strcmp(argv[i], "-h") == 0 ? 0 : 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	struct event_base *base = event_base_new();
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((unsigned short)port);
	struct evconnlistener *listener = evconnlistener_new_bind(
	    base, on_accept, base, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
	    -1, (struct sockaddr *)&sin, sizeof(sin));
	if (listener == NULL) {
		perror("limit-echo: listen");
		return 1;
	}
	socklen_t len = sizeof(sin);
	getsockname(evconnlistener_get_fd(listener), (struct sockaddr *)&sin,
	            &len);
	printf("listening on 127.0.0.1:%d\n", ntohs(sin.sin_port));
	fflush(stdout);
	struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
	struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
	event_add(sigint, NULL);
	event_add(sigterm, NULL);
	event_base_dispatch(base);
	/* Connections still open are left to the exit. */
	event_free(sigint);
	event_free(sigterm);
	evconnlistener_free(listener);
	event_base_free(base);
	return 0;
}
