/*
 * echo: a line echo server, the smallest complete evchat program.
 *
 *   usage: echo [-b | -B] [-p PORT] [-t TERMINATOR] [-m MAX_LINE]
 *
 * Each line a client sends comes back to it. Try it:
 *
 *   ./samples/echo -p 7000 &
 *   printf 'hello\nworld\n' | nc -N 127.0.0.1 7000
 *
 * Reading top to bottom: main() sets up a listener; on_accept() receives
 * one channel per connection; on_line() is the whole protocol (with -b,
 * on_line_bytes(); with -B, both: each line goes to the one that echoes
 * it cheapest); on_writable() stops reading from a client that does not
 * read its replies; on_event() handles the end of a connection;
 * on_signal() shuts down gracefully.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <evchat.h>

/* The server's state: its loop, its listener and its open channels (kept
 * so that shutdown can flush and close each one). */
struct server {
	struct event_base *base;
	struct evchat_listener *listener;
	const char *terminator;
	size_t terminator_len;
	size_t max_line;
	int bytes; /* -b: lines through evchat_setcb_bytes() */
	int both;  /* -B: through evchat_setcb_both() */
	struct client *clients;
	int stopping;
};

/* How long a client that does not read may hold up its close at shutdown
 * (the write timeout). */
#define CLOSE_GRACE_SECONDS 5

struct client {
	struct server *server;
	struct evchat *chat;
	struct client *prev, *next;
};

static void client_forget(struct client *client)
{
	struct server *server = client->server;
	if (client->prev != NULL)
		client->prev->next = client->next;
	else
		server->clients = client->next;
	if (client->next != NULL)
		client->next->prev = client->prev;
	free(client);
	/* The last connection flushed during shutdown ends the loop. */
	if (server->stopping && server->clients == NULL)
		event_base_loopbreak(server->base);
}

/* A whole line, without its terminator: send it back with one. The line's
 * buffer is ours until we return, so the terminator is added to it and
 * the whole reply goes out in one push, which moves its bytes: the best
 * hook for relaying frames, long ones above all. */
static void on_line(struct evchat *chat, struct evbuffer *line, void *arg)
{
	struct client *client = arg;
	evbuffer_add(line, client->server->terminator,
	             client->server->terminator_len);
	evchat_push_buffer(chat, line);
}

/* The same with -b: the line as bytes, lent where it lies in the
 * channel's input, the best hook for parsing short frames (no buffer is
 * made for it). The pushes copy the reply. With -B it gets only the
 * lines lent in place, and on_line() the others (a line longer than a
 * read, say), whose bytes its push moves instead. */
static void on_line_bytes(struct evchat *chat, const unsigned char *line,
                          size_t len, void *arg)
{
	struct client *client = arg;
	evchat_push(chat, line, len);
	evchat_push(chat, client->server->terminator,
	            client->server->terminator_len);
}

/* A client that sends without reading its replies would make us buffer
 * them without bound: stop reading from it while more than the high
 * watermark of replies waits for it (64 KiB by default), as its own TCP
 * window would stop a client that cannot send. */
static void on_writable(struct evchat *chat, int writable, void *arg)
{
	(void)arg;
	if (writable)
		evchat_resume_input(chat);
	else
		evchat_pause_input(chat);
}

/* The connection is ending. After the client's EOF we still answer what it
 * sent; anything else (an error, a finished close, a line over the limit)
 * ends the channel here. */
static void on_event(struct evchat *chat, short events, void *arg)
{
	struct client *client = arg;
	if (events & EVCHAT_EVENT_EOF) {
		/* A last line without terminator is still echoed. */
		if (evchat_get_pending_length(chat) > 0)
			evchat_push_buffer(chat, evchat_get_pending(chat));
		evchat_close_when_done(chat);
		return;
	}
	if (events & EVCHAT_EVENT_FRAME_TOO_LONG) {
		static const char msg[] = "error: line too long\n";
		evchat_push(chat, msg, sizeof(msg) - 1);
		evchat_close_when_done(chat);
		return;
	}
	if (events & EVCHAT_EVENT_ERROR)
		fprintf(stderr, "echo: connection error: %s\n",
		        strerror(errno));
	/* Closed, error or timeout: free from inside the hook is safe. */
	evchat_free(chat);
	client_forget(client);
}

/* A new connection, already a channel: give it its hooks and framing. */
static void on_accept(struct evchat_listener *listener, struct evchat *chat,
                      const struct sockaddr *addr, int addrlen, void *arg)
{
	struct server *server = arg;
	(void)listener, (void)addr, (void)addrlen;
	struct client *client = calloc(1, sizeof(*client));
	if (client == NULL) {
		evchat_free(chat);
		return;
	}
	client->chat = chat;
	client->server = server;
	client->next = server->clients;
	if (server->clients != NULL)
		server->clients->prev = client;
	server->clients = client;

	if (server->both)
		evchat_setcb_both(client->chat, NULL, on_line_bytes, on_line,
		                  on_event, client);
	else if (server->bytes)
		evchat_setcb_bytes(client->chat, NULL, on_line_bytes, on_event,
		                   client);
	else
		evchat_setcb(client->chat, NULL, on_line, on_event, client);
	evchat_set_terminator(client->chat, server->terminator,
	                      server->terminator_len);
	evchat_set_max_frame(client->chat, server->max_line);
	evchat_set_writable_cb(client->chat, on_writable);
}

/* SIGINT or SIGTERM: stop accepting, let every connection flush what it
 * owes, then leave the loop. A client that does not read holds its close
 * up for CLOSE_GRACE_SECONDS at most (the write timeout); a second signal
 * stops at once. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	static const struct timeval grace = { CLOSE_GRACE_SECONDS, 0 };
	struct server *server = arg;
	(void)sig, (void)what;
	if (server->stopping || server->clients == NULL) {
		event_base_loopbreak(server->base);
		return;
	}
	server->stopping = 1;
	evchat_listener_pause(server->listener);
	for (struct client *c = server->clients; c != NULL; c = c->next) {
		evchat_set_timeouts(c->chat, NULL, &grace);
		evchat_close_when_done(c->chat);
	}
}

/* "\n", "\r\n" and the like, given on the command line with escapes. */
static size_t unescape(char *s)
{
	char *out = s;
	for (const char *in = s; *in != '\0'; in++) {
		if (*in != '\\' || in[1] == '\0') {
			*out++ = *in;
			continue;
		}
		in++;
		*out++ = *in == 'n'   ? '\n'
		         : *in == 'r' ? '\r'
		         : *in == 't' ? '\t'
		         : *in == '0' ? '\0'
		                      : *in;
	}
	return (size_t)(out - s);
}

static void usage(FILE *to)
{
	fprintf(
	    to,
	    "usage: echo [-b | -B] [-p PORT] [-t TERMINATOR] [-m MAX_LINE]\n"
	    "  -b             lines as bytes (evchat_setcb_bytes)\n"
	    "  -B             both hooks: lines lent in place as bytes, "
	    "the others\n"
	    "                 as buffers (evchat_setcb_both)\n"
	    "  -p PORT        TCP port on 127.0.0.1 (0 picks a free one;"
	    " default 7000)\n"
	    "  -t TERMINATOR  line terminator, escapes allowed "
	    "(default \\n)\n"
	    "  -m MAX_LINE    longest line accepted in bytes, 0 for no "
	    "limit\n"
	    "                 (default 1048576)\n");
}

int main(int argc, char **argv)
{
	static char default_term[] = "\\n";
	char *term = default_term;
	long port = 7000;
	long long max_line = (long long)EVCHAT_DEFAULT_MAX_FRAME;
	int bytes = 0, both = 0;
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];
		if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(opt, "-b") == 0 || strcmp(opt, "-B") == 0) {
			bytes = opt[1] == 'b';
			both = opt[1] == 'B';
			continue;
		}
		if (i + 1 >= argc || strlen(opt) != 2 ||
		    strchr("ptm", opt[1]) == NULL) {
			usage(stderr);
			return 2;
		}
		char *value = argv[++i], *end;
		if (opt[1] == 't') {
			term = value;
			continue;
		}
		long long n = strtoll(value, &end, 10);
		if (*end != '\0' || n < 0 || (opt[1] == 'p' && n > 65535)) {
			fprintf(stderr, "echo: bad value for %s: %s\n", opt,
			        value);
			return 2;
		}
		if (opt[1] == 'p')
			port = (long)n;
		else
			max_line = n;
	}

	struct server server;
	memset(&server, 0, sizeof(server));
	server.terminator_len = unescape(term);
	server.terminator = term;
	server.max_line = (size_t)max_line;
	server.bytes = bytes;
	server.both = both;
	if (server.terminator_len == 0) {
		fprintf(stderr, "echo: the terminator must not be empty\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);

	server.base = event_base_new();
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* No callback yet: evchat_listener_new() sets its own, and keeps
	 * accepting sanely when descriptors run out. */
	struct evconnlistener *lev = evconnlistener_new_bind(
	    server.base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
	    128, (struct sockaddr *)&sin, sizeof(sin));
	if (server.base == NULL || lev == NULL) {
		fprintf(stderr, "echo: cannot listen on port %ld: %s\n", port,
		        strerror(errno));
		return 1;
	}
	server.listener = evchat_listener_new(lev, 0, on_accept, &server);
	if (server.listener == NULL) {
		fprintf(stderr, "echo: %s\n", strerror(errno));
		return 1;
	}
	socklen_t len = sizeof(sin);
	getsockname(evconnlistener_get_fd(lev), (struct sockaddr *)&sin, &len);
	printf("listening on 127.0.0.1:%d\n", ntohs(sin.sin_port));
	fflush(stdout);

	struct event *sigint = evsignal_new(server.base, SIGINT, on_signal,
	                                    &server);
	struct event *sigterm = evsignal_new(server.base, SIGTERM, on_signal,
	                                     &server);
	event_add(sigint, NULL);
	event_add(sigterm, NULL);

	event_base_dispatch(server.base);

	/* Whatever did not finish flushing in time is freed here. */
	while (server.clients != NULL) {
		struct client *c = server.clients;
		evchat_free(c->chat);
		server.clients = c->next;
		free(c);
	}
	event_free(sigint);
	event_free(sigterm);
	evchat_listener_free(server.listener);
	event_base_free(server.base);
	/* What the library keeps for this thread's reads: a leak checker
	 * then finds nothing left. */
	evchat_thread_cleanup();
	return 0;
}
