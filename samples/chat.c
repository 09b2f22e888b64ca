/*
 * chat: a multi-user chat room over a line protocol, where one slow reader
 * can neither stall the others nor make the server's memory grow.
 *
 *   usage: chat [-p PORT]
 *
 * Try it from two terminals (nc is OpenBSD netcat):
 *
 *   ./samples/chat -p 7000 &
 *   nc 127.0.0.1 7000            # terminal 1: type "NICK alice"
 *   nc 127.0.0.1 7000            # terminal 2: type "NICK bob", then "hi"
 *
 * The protocol. Lines end with LF; CRLF is accepted too, and the server's
 * own lines end with CRLF. A line may be at most MAX_LINE bytes: a longer
 * one is answered with an error line, then the connection is closed.
 *
 *   NICK name   must come first (1 to 16 letters, digits, '-' or '_'; not
 *               taken, ignoring case); nothing else but /quit is accepted
 *               before it
 *   /who        lists who is online
 *   /nick name  changes your name
 *   /quit       says goodbye and closes the connection
 *   anything    else is sent to everyone else as "<name> text"; empty lines
 *               are ignored, and other "/..." lines are refused as unknown
 *               commands, so that a mistyped command is not broadcast.
 *
 * The server's own lines start with "* " (news: joins, leaves, renames) or
 * "error: ". Control characters in a message (a lone CR, say, which could
 * pose as a line of its own on a terminal, or an ESC) are shown as '?',
 * C1 ones too, raw or in UTF-8.
 *
 * Slow readers. Every client's output is watched with write watermarks
 * (WRITE_LOW and WRITE_HIGH below). A client with more than WRITE_HIGH
 * bytes waiting is "unwritable": lines for it are not queued but counted
 * and dropped, and once it has caught up (down to WRITE_LOW) it gets one
 * line "* N messages dropped while you were not reading". So a client that
 * never reads costs the server WRITE_HIGH bytes and a line, whatever the
 * others say, and they go on at full speed. The price: a client that falls
 * that far behind for any reason, even for a moment, misses lines (and is
 * told so). Answers to a client's own commands are always queued, but
 * after one that leaves it unwritable it is not read from until it catches
 * up, so piling up commands unread grows nothing either. Closing waits for
 * the goodbye to be delivered, CLOSE_GRACE_SECONDS at most.
 *
 * Reading top to bottom: the server and client structures; sending lines
 * (answer, broadcast, and the flow-control hook on_writable); the protocol
 * (on_line and its commands); the end of a connection (on_event); accepting
 * (on_accept); shutting down (on_signal); main().
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/listener.h>

#include <evchat.h>

#define MAX_LINE 1024          /* longest line a client may send */
#define MAX_NICK 16            /* longest nick */
#define WRITE_LOW (16 * 1024)  /* writable again at or below this */
#define WRITE_HIGH (64 * 1024) /* unwritable above this */
#define READ_SIZE (4 * 1024)   /* read from one client per turn */
#define CLOSE_GRACE_SECONDS 2  /* how long a goodbye may take to flush */

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

/* One connection. Its nick is empty until NICK succeeded; "leaving" is set
 * once it is on its way out, so that nobody sends it anything more. */
struct client {
	struct server *server;
	struct evchat *chat;
	char nick[MAX_NICK + 1];
	unsigned long dropped; /* messages not queued while unwritable */
	int leaving;
	TAILQ_ENTRY(client) link;
};

/* The whole room: the loop, the listener and every connection. */
struct server {
	struct event_base *base;
	struct evchat_listener *listener;
	TAILQ_HEAD(client_list, client) clients;
	int stopping;
};

/* ------------------------------------------------------------------ */
/* Sending lines */

/* evchat_push_line() adds the line ending itself, and refuses a line that
 * contains one: whatever a client sent, it becomes exactly one line. */
static void push_text(struct client *to, const char *text)
{
	evchat_push_line(to->chat, text, strlen(text));
}

/* An answer to a client's own command. Answers are never dropped (the
 * client asked for them); instead, a client whose answers pile up unread
 * is not read from until it catches up: checked here, at once, so that no
 * further command slips through. on_writable() resumes it. */
static void answer(struct client *to, const char *text)
{
	push_text(to, text);
	if (!evchat_is_writable(to->chat))
		evchat_pause_input(to->chat);
}

static PRINTF_LIKE(2, 3) void say(struct client *to, const char *fmt, ...)
{
	char line[MAX_LINE + 64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	answer(to, line);
}

/* Owning up to what was dropped comes before the next line that gets
 * through. Normally the writable hook does it; doing it here as well
 * covers a client that caught up without the hook hearing of it. */
static void tell_dropped(struct client *to)
{
	if (to->dropped == 0)
		return;
	char line[80];
	snprintf(line, sizeof(line),
	         "* %lu message%s dropped while you were "
	         "not reading",
	         to->dropped, to->dropped == 1 ? "" : "s");
	to->dropped = 0;
	push_text(to, line);
}

/* A line for everyone in the room but @from (NULL: everyone). This is the
 * heart of the slow-reader policy: a client that is not writable does not
 * get the line queued, only counted. */
static PRINTF_LIKE(3, 4) void broadcast(struct server *server,
                                        struct client *from, const char *fmt,
                                        ...)
{
	char line[MAX_LINE + 64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	struct client *c;
	TAILQ_FOREACH(c, &server->clients, link)
	{
		if (c == from || c->nick[0] == '\0' || c->leaving)
			continue;
		if (!evchat_is_writable(c->chat)) {
			c->dropped++;
			continue;
		}
		tell_dropped(c);
		push_text(c, line);
	}
}

/* The channel's queued output crossed a watermark: above WRITE_HIGH
 * (writable 0) nothing needs doing, broadcast() asks evchat_is_writable()
 * itself; back down to WRITE_LOW (writable 1) the client hears what it
 * missed, and is read from again if say() had paused it. */
static void on_writable(struct evchat *chat, int writable, void *arg)
{
	struct client *client = arg;
	if (!writable || client->leaving)
		return;
	tell_dropped(client);
	evchat_resume_input(chat);
}

/* ------------------------------------------------------------------ */
/* The protocol */

/* 1 if @name is a well-formed nick. */
static int nick_is_valid(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > MAX_NICK)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '-' &&
		    name[i] != '_')
			return 0;
	return 1;
}

/* 1 if someone other than @self goes by @name already. */
static int nick_is_taken(struct server *server, struct client *self,
                         const char *name)
{
	struct client *c;
	TAILQ_FOREACH(c, &server->clients, link)
	if (c != self && !c->leaving && strcasecmp(c->nick, name) == 0)
		return 1;
	return 0;
}

/* Checks a nick for NICK or /nick; says why it cannot be had. */
static int nick_is_available(struct client *client, const char *name)
{
	if (!nick_is_valid(name)) {
		say(client,
		    "error: a nick is 1 to %d letters, digits, '-' or '_'",
		    MAX_NICK);
		return 0;
	}
	if (nick_is_taken(client->server, client, name)) {
		say(client, "error: the nick %s is taken", name);
		return 0;
	}
	return 1;
}

/* The client leaves the room: the others hear of it, once. The caller
 * then closes or frees the channel. */
static void client_leave(struct client *client)
{
	if (client->leaving)
		return;
	client->leaving = 1;
	if (client->nick[0] != '\0' && !client->server->stopping)
		broadcast(client->server, client, "* %s left", client->nick);
}

/* Leaves, and closes the connection once what was queued for it (a
 * goodbye, an error) is delivered. A client that does not read holds the
 * close up: the write timeout bounds how long. */
static void client_close(struct client *client)
{
	static const struct timeval grace = { CLOSE_GRACE_SECONDS, 0 };
	client_leave(client);
	evchat_set_timeouts(client->chat, NULL, &grace);
	evchat_close_when_done(client->chat);
}

static void cmd_nick_first(struct client *client, const char *name)
{
	if (!nick_is_available(client, name))
		return;
	strcpy(client->nick, name);
	int online = 0;
	struct client *c;
	TAILQ_FOREACH(c, &client->server->clients, link)
	online += c->nick[0] != '\0' && !c->leaving;
	say(client,
	    "* hello %s, %d online; /who lists them, /nick NAME "
	    "renames you, /quit leaves",
	    name, online);
	broadcast(client->server, client, "* %s joined", name);
}

static void cmd_nick(struct client *client, const char *name)
{
	if (!nick_is_available(client, name))
		return;
	if (strcmp(client->nick, name) == 0) {
		say(client, "* you are already %s", name); /* no news */
		return;
	}
	char old[MAX_NICK + 1];
	strcpy(old, client->nick);
	strcpy(client->nick, name);
	say(client, "* you are now %s", name);
	broadcast(client->server, client, "* %s is now %s", old, name);
}

/* One line, however long the list: built in an evbuffer. */
static void cmd_who(struct client *client)
{
	struct evbuffer *list = evbuffer_new();
	if (list == NULL)
		return;
	evbuffer_add_printf(list, "* online:");
	struct client *c;
	TAILQ_FOREACH(c, &client->server->clients, link)
	if (c->nick[0] != '\0' && !c->leaving)
		evbuffer_add_printf(list, " %s", c->nick);
	evbuffer_add(list, "", 1); /* a C string */
	answer(client, (const char *)evbuffer_pullup(list, -1));
	evbuffer_free(list);
}

/* The goodbye is queued before the close, so it is flushed first. */
static void cmd_quit(struct client *client)
{
	if (client->nick[0] != '\0')
		say(client, "* bye, %s", client->nick);
	else
		say(client, "* bye");
	client_close(client);
}

/* If @line is @command, alone or followed by a space, returns what comes
 * after it ("" if nothing); else NULL. */
static const char *command_args(const char *line, const char *command)
{
	size_t len = strlen(command);
	if (strncmp(line, command, len) != 0)
		return NULL;
	if (line[len] == '\0')
		return line + len;
	return line[len] == ' ' ? line + len + 1 : NULL;
}

/* The length of the UTF-8 sequence at s (n bytes left) with its code
 * point in *cp, or 0 if s does not start a valid one (overlong forms and
 * surrogates are not). */
static int utf8_sequence(const unsigned char *s, int n, unsigned *cp)
{
	int len = s[0] >= 0xc2 && s[0] <= 0xdf   ? 2
	          : s[0] >= 0xe0 && s[0] <= 0xef ? 3
	          : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
	                                         : 0;
	if (len == 0 || len > n)
		return 0;
	*cp = s[0] & (0x7f >> len);
	for (int i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*cp = *cp << 6 | (s[i] & 0x3f);
	}
	static const unsigned least[] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (*cp < least[len] || *cp > 0x10ffff ||
	    (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return len;
}

/* Replaces each control character in line with '?', in place: the C0 ones
 * and DEL (a lone CR could pose as a line of its own on a terminal, ESC
 * starts a terminal command) but for TAB, and the C1 ones (0x9b is an
 * 8-bit ESC [ to some terminals), raw or encoded in UTF-8. Other bytes
 * go through, UTF-8 or not. Returns the new length. */
static int show_controls(char *line, int len)
{
	unsigned char *s = (unsigned char *)line;
	int out = 0;
	for (int i = 0; i < len;) {
		unsigned cp;
		int n = s[i] < 0x80 ? 1 : utf8_sequence(s + i, len - i, &cp);
		if (n == 1 && iscntrl(s[i]) && s[i] != '\t') {
			s[out++] = '?';
		} else if (n == 0) { /* a byte outside UTF-8 */
			s[out++] = s[i] < 0xa0 ? '?' : s[i];
			n = 1;
		} else if (n > 1 && cp < 0xa0) {
			s[out++] = '?';
		} else {
			memmove(s + out, s + i, (size_t)n);
			out += n;
		}
		i += n;
	}
	return out;
}

/* A whole line from a client, without its LF or CRLF: the protocol. The
 * channel's frame limit guarantees it is at most MAX_LINE bytes. */
static void on_line(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct client *client = arg;
	(void)chat;
	char line[MAX_LINE + 1];
	int len = evbuffer_remove(frame, line, MAX_LINE);
	if (len < 0 || client->leaving)
		return;
	/* Control characters are shown, not obeyed; this also makes the line
	 * a C string from here on. */
	len = show_controls(line, len);
	line[len] = '\0';

	const char *args;
	if (command_args(line, "/quit") != NULL) {
		cmd_quit(client);
	} else if (client->nick[0] == '\0') {
		if ((args = command_args(line, "NICK")) != NULL)
			cmd_nick_first(client, args);
		else
			say(client, "error: say NICK name first");
	} else if (command_args(line, "/who") != NULL) {
		cmd_who(client);
	} else if ((args = command_args(line, "/nick")) != NULL) {
		cmd_nick(client, args);
	} else if (line[0] == '/') {
		say(client, "error: unknown command; try /who, /nick NAME, "
		            "/quit");
	} else if (line[0] != '\0') {
		broadcast(client->server, client, "<%s> %s", client->nick,
		          line);
	}
}

/* ------------------------------------------------------------------ */
/* Connections coming and going */

static void client_forget(struct client *client)
{
	struct server *server = client->server;
	TAILQ_REMOVE(&server->clients, client, link);
	free(client);
	/* The last connection flushed during shutdown ends the loop. */
	if (server->stopping && TAILQ_EMPTY(&server->clients))
		event_base_loopbreak(server->base);
}

/* The connection is ending. After the client's EOF or an over-long line
 * we still flush what is queued (the error line among it); a finished
 * close, an error or the shutdown's write timeout ends the channel here. */
static void on_event(struct evchat *chat, short events, void *arg)
{
	struct client *client = arg;
	if (events & EVCHAT_EVENT_FRAME_TOO_LONG) {
		say(client, "error: line too long (more than %d bytes)",
		    MAX_LINE);
		client_close(client);
		return;
	}
	if (events & EVCHAT_EVENT_EOF) {
		client_close(client);
		return;
	}
	if ((events & EVCHAT_EVENT_ERROR) && errno != ECONNRESET &&
	    errno != EPIPE)
		fprintf(stderr, "chat: connection error: %s\n",
		        strerror(errno));
	/* Free from inside the hook is safe; the others hear of a client
	 * that vanished just as of one that quit. */
	client_leave(client);
	evchat_free(chat);
	client_forget(client);
}

/* A new connection, already a channel: hooks, framing, watermarks. */
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
	client->server = server;
	client->chat = chat;
	TAILQ_INSERT_TAIL(&server->clients, client, link);

	evchat_setcb(chat, NULL, on_line, on_event, client);
	evchat_set_terminator_line(chat, EVCHAT_EOL_CRLF);
	evchat_set_max_frame(chat, MAX_LINE);
	/* Out of memory the defaults stay: a slow reader is cut off a
	 * little later, nothing worse. */
	(void)evchat_set_write_watermarks(chat, WRITE_LOW, WRITE_HIGH);
	evchat_set_writable_cb(chat, on_writable);
	/* One turn of a client's reading relays at most this much to each
	 * of the others: far below WRITE_HIGH, so a reader that keeps up
	 * never loses a line to another's burst. */
	evchat_set_in_buffer_size(chat, READ_SIZE);
	say(client, "* welcome to evchat; say NICK name");
}

/* SIGINT or SIGTERM: stop accepting, tell everyone, and close each channel
 * once its goodbye is flushed (a client that does not read gets
 * CLOSE_GRACE_SECONDS). A second signal stops at once. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *server = arg;
	(void)sig, (void)what;
	if (server->stopping || TAILQ_EMPTY(&server->clients)) {
		event_base_loopbreak(server->base);
		return;
	}
	server->stopping = 1;
	evchat_listener_pause(server->listener);
	struct client *c;
	TAILQ_FOREACH(c, &server->clients, link)
	{
		if (!c->leaving)
			push_text(c, "* the server is shutting down, bye");
		client_close(c);
	}
}

static void usage(FILE *to)
{
	fprintf(to, "usage: chat [-p PORT]\n"
	            "  -p PORT  TCP port on 127.0.0.1 (0 picks a free one;"
	            " default 7000)\n");
}

int main(int argc, char **argv)
{
	long port = 7000;
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];
		if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(opt, "-p") != 0 || i + 1 >= argc) {
			usage(stderr);
			return 2;
		}
		char *value = argv[++i], *end;
		errno = 0;
		port = strtol(value, &end, 10);
		if (*value == '\0' || *end != '\0' || errno != 0 || port < 0 ||
		    port > 65535) {
			fprintf(stderr, "chat: bad port: %s\n", value);
			usage(stderr);
			return 2;
		}
	}

	struct server server;
	memset(&server, 0, sizeof(server));
	TAILQ_INIT(&server.clients);
	/* A peer that vanished must give an error, not kill the server. */
	signal(SIGPIPE, SIG_IGN);

	server.base = event_base_new();
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* No callback yet: evchat_listener_new() sets its own, and keeps
	 * accepting sanely when descriptors run out. */
	struct evconnlistener *lev =
	    server.base == NULL
	        ? NULL
	        : evconnlistener_new_bind(server.base, NULL, NULL,
	                                  LEV_OPT_CLOSE_ON_FREE |
	                                      LEV_OPT_REUSEABLE,
	                                  128, (struct sockaddr *)&sin,
	                                  sizeof(sin));
	if (lev == NULL) {
		fprintf(stderr, "chat: cannot listen on port %ld: %s\n", port,
		        strerror(errno));
		return 1;
	}
	server.listener = evchat_listener_new(lev, 0, on_accept, &server);
	if (server.listener == NULL) {
		fprintf(stderr, "chat: %s\n", strerror(errno));
		return 1;
	}
	/* The signals are caught before the port is announced: whoever reads
	 * that line may signal at once. */
	struct event *sigint = evsignal_new(server.base, SIGINT, on_signal,
	                                    &server);
	struct event *sigterm = evsignal_new(server.base, SIGTERM, on_signal,
	                                     &server);
	event_add(sigint, NULL);
	event_add(sigterm, NULL);

	socklen_t len = sizeof(sin);
	getsockname(evconnlistener_get_fd(lev), (struct sockaddr *)&sin, &len);
	printf("listening on 127.0.0.1:%d\n", ntohs(sin.sin_port));
	fflush(stdout);

	event_base_dispatch(server.base);

	/* Whatever did not finish closing (a second signal) is freed here. */
	struct client *c;
	while ((c = TAILQ_FIRST(&server.clients)) != NULL) {
		TAILQ_REMOVE(&server.clients, c, link);
		evchat_free(c->chat);
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
