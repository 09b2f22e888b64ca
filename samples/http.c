/*
 * http: a small HTTP/1.1 static file server, asynchat's HTTP example in C.
 *
 *   usage: http [-p PORT] [-d DIR] [-b MAX_BODY] [-t HEAD_TIMEOUT]
 *
 * GET and HEAD serve the files under DIR (the kernel sends them, with
 * sendfile); POST reads a body and answers how many bytes arrived. Try it:
 *
 *   ./samples/http -p 8000 -d /usr/share/common-licenses &
 *   curl -i http://127.0.0.1:8000/MIT
 *   curl -v http://127.0.0.1:8000/MIT http://127.0.0.1:8000/BSD
 *   curl --data-binary @/etc/services http://127.0.0.1:8000/
 *   curl -H 'Transfer-Encoding: chunked' --data-binary @/etc/services \
 *        http://127.0.0.1:8000/
 *   r='GET /MIT HTTP/1.1\r\nHost: x\r\n\r\n'; printf "$r$r" | nc -N 127.0.0.1 8000
 *
 * The second curl reuses its connection (keep-alive); the printf sends two
 * requests in one write (pipelining), answered in order.
 *
 * How one connection is read, the terminator changing frame by frame:
 *
 *   request head   "\r\n\r\n", at most 8 KiB (else 431), 10 s (else 408)
 *   body, either   Content-Length: a count terminator of that many bytes
 *      or chunked  a chunk-size line (CRLF line terminator), the chunk's
 *                  data (a count), the empty line after it, ...; size 0
 *                  ends the chunks, then trailer lines up to an empty one
 *                  (8 KiB in all, else 431)
 *   then the reply is pushed and the terminator is "\r\n\r\n" again, for
 *   the next request on the same connection (keep-alive, pipelining).
 *
 * Reading top to bottom: the server and its clients; replies; the head's
 * parser; on_frame(), the whole protocol as a state machine; on_event()
 * for the end of a connection; on_accept(), on_signal() and main().
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <event2/event.h>
#include <event2/listener.h>

#include <evchat.h>

#define MAX_HEAD 8192      /* request head or trailer, in bytes */
#define MAX_CHUNK_LINE 256 /* "1f40;name=value" */
#define BODY_PIECE 65536   /* bodies reach us in pieces this big */
#define IDLE_TIMEOUT 60    /* seconds without a byte from the peer */
#define WRITE_TIMEOUT 60   /* seconds the peer may refuse our bytes */

/* The server's state: its loop, its listener, the directory served and
 * its open channels (kept so that shutdown can flush and close each). */
struct server {
	struct event_base *base;
	struct evchat_listener *listener;
	int dir_fd;
	ev_uint64_t max_body;
	struct timeval head_timeout;
	struct client *clients;
	int stopping;
};

/* What the input expects next: the terminator in force depends on it. */
enum phase {
	READ_HEAD,       /* "\r\n\r\n" */
	READ_BODY,       /* a count: Content-Length */
	READ_CHUNK_SIZE, /* a line: hex size */
	READ_CHUNK_DATA, /* a count: the size */
	READ_CHUNK_END,  /* a line: empty */
	READ_TRAILER     /* lines, up to an empty one */
};

enum method { METHOD_OTHER, METHOD_GET, METHOD_HEAD, METHOD_POST };

/* One request, as far as it has been read. */
struct request {
	enum method method;
	int minor;           /* HTTP/1.<minor> */
	char path[MAX_HEAD]; /* percent-decoded, without the query */
	int has_host;
	int has_length;
	ev_uint64_t length; /* Content-Length */
	int chunked;
	int expect_continue;
	int keep_alive;
	ev_uint64_t body_bytes; /* received so far */
	size_t trailer_bytes;   /* the trailer's lines so far, with CRLFs */
};

struct client {
	struct server *server;
	struct evchat *chat;
	enum phase phase;
	struct request req;
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

/* ------------------------------------------------------------------ */
/* Replies */

static const char *reason(int status)
{
	static const struct {
		int status;
		const char *text;
	} reasons[] = {
		{ 200, "OK" },
		{ 400, "Bad Request" },
		{ 403, "Forbidden" },
		{ 404, "Not Found" },
		{ 405, "Method Not Allowed" },
		{ 408, "Request Timeout" },
		{ 413, "Content Too Large" },
		{ 431, "Request Header Fields Too Large" },
		{ 501, "Not Implemented" },
		{ 503, "Service Unavailable" },
		{ 505, "HTTP Version Not Supported" },
	};
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			return reasons[i].text;
	return "Internal Server Error";
}

/* Queues a status line and headers for a body of @length bytes. */
static void push_head(struct client *c, int status, const char *type,
                      ev_uint64_t length)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT",
	         gmtime_r(&now, &tm));

	struct evbuffer *head = evbuffer_new();
	if (head == NULL)
		return;
	evbuffer_add_printf(head,
	                    "HTTP/1.1 %d %s\r\n"
	                    "Server: evchat-http\r\n"
	                    "Date: %s\r\n"
	                    "Content-Type: %s\r\n"
	                    "Content-Length: %llu\r\n",
	                    status, reason(status), date, type,
	                    (unsigned long long)length);
	if (status == 405)
		evbuffer_add_printf(head, "Allow: GET, HEAD, POST\r\n");
	/* HTTP/1.1 keeps connections open unless told; 1.0 closes unless
	 * asked to keep it, so we say so when we do. */
	if (!c->req.keep_alive)
		evbuffer_add_printf(head, "Connection: close\r\n");
	else if (c->req.minor == 0)
		evbuffer_add_printf(head, "Connection: keep-alive\r\n");
	evbuffer_add(head, "\r\n", 2);
	evchat_push_buffer(c->chat, head); /* moves the bytes, no copy */
	evbuffer_free(head);
}

/* A reply whose body is its own status line, "404 Not Found"; a HEAD
 * request gets its headers only. */
static void push_status(struct client *c, int status, const char *text)
{
	char line[64];
	if (text == NULL) {
		snprintf(line, sizeof(line), "%d %s\n", status, reason(status));
		text = line;
	}
	push_head(c, status, "text/plain; charset=utf-8", strlen(text));
	if (c->req.method != METHOD_HEAD)
		evchat_push(c->chat, text, strlen(text));
}

/* An error after which we cannot tell where the next request starts (a
 * head we could not parse, a body we will not read): answer, then close
 * once the answer, and every reply queued before it, has gone out. */
static void fail(struct client *c, int status)
{
	c->req.keep_alive = 0;
	push_status(c, status, NULL);
	evchat_close_when_done(c->chat);
}

static const char *content_type(const char *path)
{
	static const char *const types[][2] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".css", "text/css" },
		{ ".txt", "text/plain; charset=utf-8" },
		{ ".png", "image/png" },
		{ ".js", "text/javascript" },
		{ ".json", "application/json" },
		{ ".jpg", "image/jpeg" },
		{ ".svg", "image/svg+xml" },
	};
	const char *dot = strrchr(path, '.');
	if (dot != NULL && strchr(dot, '/') == NULL)
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcasecmp(dot, types[i][0]) == 0)
				return types[i][1];
	return "application/octet-stream";
}

/* Opens the regular file a request path names under the served directory:
 * returns its descriptor and sets its Content-Type, or returns -1 and sets
 * the status to answer. The path cannot escape: a ".." segment is refused,
 * leading slashes are dropped and the rest is opened relative to the
 * directory (openat). A directory serves its index.html. */
static int open_file(struct client *c, struct stat *st, const char **type,
                     int *status)
{
	const char *rel = c->req.path;
	for (const char *seg = rel; seg != NULL; seg = strchr(seg, '/')) {
		seg += *seg == '/';
		if (strncmp(seg, "..", 2) == 0 &&
		    (seg[2] == '/' || seg[2] == '\0')) {
			*status = 403;
			return -1;
		}
	}
	rel += strspn(rel, "/");
	/* O_NONBLOCK: a FIFO left in the directory must not block us. */
	int fd = openat(c->server->dir_fd, *rel != '\0' ? rel : ".",
	                O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	*type = content_type(rel);
	if (fd >= 0 && fstat(fd, st) == 0 && S_ISDIR(st->st_mode)) {
		int index = openat(fd, "index.html",
		                   O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		close(fd);
		fd = index;
		*type = content_type("index.html");
	}
	if (fd < 0 || fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
		/* Only a file that is not there is a 404: out of
		 * descriptors or memory, the failure is ours, and a client
		 * may try again later. */
		int err = fd < 0 ? errno : 0;
		if (err == EACCES)
			*status = 403;
		else if (err == EMFILE || err == ENFILE || err == ENOMEM ||
		         err == EIO)
			*status = 503;
		else
			*status = 404;
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* A whole request was read: answer it. Returns -1 if the connection had
 * to be dropped (the client is gone then). */
static int handle_request(struct client *c)
{
	struct request *req = &c->req;
	if (req->method == METHOD_POST) {
		char text[64];
		snprintf(text, sizeof(text), "received %llu bytes\n",
		         (unsigned long long)req->body_bytes);
		push_status(c, 200, text);
		return 0;
	}
	if (req->method == METHOD_OTHER) {
		push_status(c, 405, NULL);
		return 0;
	}
	struct stat st;
	const char *type;
	int status;
	int fd = open_file(c, &st, &type, &status);
	if (fd < 0) {
		push_status(c, status, NULL);
		return 0;
	}
	push_head(c, 200, type, (ev_uint64_t)st.st_size);
	if (req->method == METHOD_HEAD) {
		close(fd);
		return 0;
	}
	/* The file goes out with sendfile, after the head; the channel
	 * closes it once sent. The length is fixed now, as the head says. */
	if (evchat_push_file(c->chat, fd, 0, st.st_size) != 0) {
		/* The head promised bytes we cannot send: reset, so the client
		 * sees an error rather than a short reply. */
		fprintf(stderr, "http: %s: %s\n", req->path, strerror(errno));
		close(fd);
		evchat_abort(c->chat);
		client_forget(c);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Parsing the request head */

static int is_tchar(char ch)
{
	return ch != '\0' && (isalnum((unsigned char)ch) ||
	                      strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int is_token(const char *s, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!is_tchar(s[i]))
			return 0;
	return 1;
}

/* "/a%20b?q=1" to "/a b"; returns 0, or an HTTP status. */
static int decode_target(struct request *req, const char *target, size_t len)
{
	size_t out = 0;
	if (len == 0 || target[0] != '/')
		return 400; /* only origin-form: no "http://host/", no "*" */
	for (size_t i = 0; i < len && target[i] != '?' && target[i] != '#';
	     i++) {
		char ch = target[i];
		if (ch == '%') {
			if (i + 2 >= len ||
			    !isxdigit((unsigned char)target[i + 1]) ||
			    !isxdigit((unsigned char)target[i + 2]))
				return 400;
			char hex[3] = { target[i + 1], target[i + 2], '\0' };
			ch = (char)strtoul(hex, NULL, 16);
			if (ch == '\0')
				return 400; /* "%00" would cut the path short */
			i += 2;
		}
		req->path[out++] = ch; /* fits: the head was shorter */
	}
	req->path[out] = '\0';
	return 0;
}

/* "GET /index.html HTTP/1.1"; returns 0, or an HTTP status. */
static int parse_request_line(struct request *req, const char *line)
{
	const char *sp1 = strchr(line, ' ');
	const char *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
	if (sp2 == NULL || strchr(sp2 + 1, ' ') != NULL ||
	    !is_token(line, (size_t)(sp1 - line)))
		return 400;
	size_t method_len = (size_t)(sp1 - line);
	req->method = method_len == 3 && memcmp(line, "GET", 3) == 0
	                  ? METHOD_GET
	              : method_len == 4 && memcmp(line, "HEAD", 4) == 0
	                  ? METHOD_HEAD
	              : method_len == 4 && memcmp(line, "POST", 4) == 0
	                  ? METHOD_POST
	                  : METHOD_OTHER;
	const char *version = sp2 + 1;
	if (strncmp(version, "HTTP/", 5) != 0 || strlen(version) != 8 ||
	    !isdigit((unsigned char)version[5]) || version[6] != '.' ||
	    !isdigit((unsigned char)version[7]))
		return 400;
	if (version[5] != '1')
		return 505;
	req->minor = version[7] - '0';
	return decode_target(req, sp1 + 1, (size_t)(sp2 - sp1 - 1));
}

/* Does a comma-separated header value hold this token? */
static int has_token(const char *value, const char *token)
{
	size_t len = strlen(token);
	for (const char *p = value; *p != '\0'; p += strcspn(p, ",")) {
		p += strspn(p, ", \t");
		if (strncasecmp(p, token, len) == 0 &&
		    strchr(", \t", p[len]) != NULL) /* "\0" matches too */
			return 1;
	}
	return 0;
}

/* "Name: value", in a head or a trailer: cuts the line at the colon and
 * points *value past it, trimmed. Returns 0, or 400. */
static int split_field(char *line, char **value)
{
	char *colon = strchr(line, ':');
	/* No space before the colon, and no obsolete folded lines. */
	if (colon == NULL || !is_token(line, (size_t)(colon - line)))
		return 400;
	*colon = '\0';
	char *v = colon + 1 + strspn(colon + 1, " \t");
	size_t len = strlen(v);
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		v[--len] = '\0';
	for (const char *p = v; *p != '\0'; p++)
		if (iscntrl((unsigned char)*p) && *p != '\t')
			return 400;
	*value = v;
	return 0;
}

/* A header line; returns 0, or an HTTP status. */
static int parse_header(struct request *req, char *line, int *conn_close,
                        int *conn_keep)
{
	char *value;
	if (split_field(line, &value) != 0)
		return 400;

	if (strcasecmp(line, "Host") == 0) {
		req->has_host++;
	} else if (strcasecmp(line, "Content-Length") == 0) {
		char *end;
		errno = 0;
		unsigned long long n = strtoull(value, &end, 10);
		if (!isdigit((unsigned char)value[0]) || *end != '\0' ||
		    errno != 0 || (req->has_length && req->length != n))
			return 400;
		req->has_length = 1;
		req->length = n;
	} else if (strcasecmp(line, "Transfer-Encoding") == 0) {
		if (strcasecmp(value, "chunked") != 0 || req->chunked)
			return 501; /* gzip and friends: not here */
		req->chunked = 1;
	} else if (strcasecmp(line, "Connection") == 0) {
		*conn_close |= has_token(value, "close");
		*conn_keep |= has_token(value, "keep-alive");
	} else if (strcasecmp(line, "Expect") == 0) {
		req->expect_continue = strcasecmp(value, "100-continue") == 0;
	}
	return 0;
}

/* The whole head, without its "\r\n\r\n" terminator. Returns 0, -1 for a
 * head of empty lines only (ignored, as RFC 9112 allows), or a status. */
static int parse_head(struct client *c, struct evbuffer *head)
{
	struct request *req = &c->req;
	int status = 0, conn_close = 0, conn_keep = 0;
	size_t len;
	char *line;
	/* Give the last line its line ending back, so that evbuffer_readln()
	 * returns every line. Bare "\r" or "\n" inside a line stay there,
	 * and are refused as control characters. */
	evbuffer_add(head, "\r\n", 2);
	while ((line = evbuffer_readln(head, &len, EVBUFFER_EOL_CRLF_STRICT)) !=
	           NULL &&
	       len == 0)
		free(line); /* empty lines before a request */
	if (line == NULL)
		return -1;
	if (strlen(line) != len || strpbrk(line, "\r\n") != NULL)
		status = 400; /* a NUL, CR or LF in it */
	else
		status = parse_request_line(req, line);
	free(line);
	while (status == 0 &&
	       (line = evbuffer_readln(head, &len, EVBUFFER_EOL_CRLF_STRICT)) !=
	           NULL) {
		status = strlen(line) != len
		             ? 400
		             : parse_header(req, line, &conn_close, &conn_keep);
		free(line);
	}
	if (status == 0 && req->minor >= 1 && req->has_host != 1)
		status = 400; /* HTTP/1.1 requires exactly one Host */
	if (status == 0 && req->chunked && req->has_length)
		status = 400; /* two framings at once: a smuggling attempt */
	if (status == 0 && req->has_length && req->length > c->server->max_body)
		status = 413;
	/* An HTTP/1.0 message with Transfer-Encoding may be framed other
	 * than its sender meant: answer it, then close (RFC 9112, 6.1). */
	req->keep_alive = req->minor >= 1
	                      ? !conn_close
	                      : conn_keep && !conn_close && !req->chunked;
	return status;
}

/* ------------------------------------------------------------------ */
/* The protocol: which frame comes next, and what to do with each */

/* Back to reading a request head: terminator, limit, and deadline. */
static void expect_head(struct client *c)
{
	memset(&c->req, 0, sizeof(c->req));
	c->phase = READ_HEAD;
	evchat_set_terminator(c->chat, "\r\n\r\n", 4);
	/* Too long: on_event() gets EVCHAT_EVENT_FRAME_TOO_LONG (431). */
	evchat_set_frame_limit(c->chat, MAX_HEAD, EVCHAT_LIMIT_CLOSE);
	/* Too slow, however steadily it trickles: a frame timeout (408). */
	evchat_set_frame_timeout(c->chat, &c->server->head_timeout);
}

/* Bodies are counted, not kept: a frame limit with LIMIT_SPLIT hands a
 * long body over in pieces, so memory stays bounded whatever its size. */
static void expect_count(struct client *c, enum phase phase, ev_uint64_t n)
{
	c->phase = phase;
	evchat_set_frame_limit(c->chat, BODY_PIECE, EVCHAT_LIMIT_SPLIT);
	evchat_set_terminator_count(c->chat, n); /* 0: an empty frame at once */
}

/* Chunk-size lines, the line after a chunk, and trailer lines. */
static void expect_line(struct client *c, enum phase phase, size_t max)
{
	c->phase = phase;
	evchat_set_frame_limit(c->chat, max, EVCHAT_LIMIT_CLOSE);
	evchat_set_terminator_line(c->chat, EVCHAT_EOL_CRLF);
}

/* The request is complete: answer, then wait for the next one or close. */
static void finish_request(struct client *c)
{
	if (handle_request(c) != 0)
		return;
	if (!c->req.keep_alive) {
		evchat_close_when_done(c->chat);
		return;
	}
	expect_head(c); /* applies at once to pipelined bytes */
	/* A client that pipelines requests but does not read the replies
	 * would make us queue without end (an open file per GET): read its
	 * next request only once the output has drained (on_writable()).
	 * Paused input does not count towards the idle timeout either, so a
	 * slow download is not cut off. */
	if (!evchat_is_writable(c->chat))
		evchat_pause_input(c->chat);
}

static void on_writable(struct evchat *chat, int writable, void *arg)
{
	(void)arg;
	if (writable)
		evchat_resume_input(chat);
}

static void on_head(struct client *c, struct evbuffer *head)
{
	int status = parse_head(c, head);
	if (status == -1)
		return; /* only empty lines: still waiting for a head */
	if (status != 0) {
		fail(c, status);
		return;
	}
	/* Only the head had a deadline; a body may take its time (the idle
	 * timeout still catches a client that stops sending). */
	evchat_set_frame_timeout(c->chat, NULL);
	if (!c->req.chunked && !c->req.has_length) {
		finish_request(c);
		return;
	}
	/* "Expect: 100-continue": the client waits for a go before it sends
	 * the body (curl does, for big ones). A body over the limit was
	 * refused with 413 already, and is never sent. */
	if (c->req.expect_continue && c->req.minor == 1)
		evchat_push(c->chat, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	if (c->req.chunked)
		expect_line(c, READ_CHUNK_SIZE, MAX_CHUNK_LINE);
	else
		expect_count(c, READ_BODY, c->req.length);
}

/* What may follow a chunk's size (RFC 9112 7.1.1): nothing, or any
 * number of ";name" and ";name=value", the value a token or a quoted
 * string, with spaces or tabs before ';' and around '=' (not at the
 * end of the line). We ignore extensions,
 * but a proxy in front of us may not: one that reads a bare CR or other
 * control character in them differently could be made to see other
 * chunks than we do, so anything off the grammar is refused. */
static int is_chunk_ext(const char *p)
{
	for (;;) {
		if (*p == '\0')
			return 1;
		p += strspn(p, " \t");
		if (*p++ != ';')
			return 0;
		p += strspn(p, " \t");
		const char *name = p;
		while (is_tchar(*p))
			p++;
		if (p == name)
			return 0;
		const char *after = p + strspn(p, " \t");
		if (*after != '=')
			continue; /* from the name's end */
		p = after + 1 + strspn(after + 1, " \t");
		if (*p != '"') {
			const char *value = p;
			while (is_tchar(*p))
				p++;
			if (p == value)
				return 0;
			continue;
		}
		for (p++; *p != '"'; p++) {
			if (*p == '\\')
				p++; /* a quoted pair: the next byte is literal */
			if (*p == '\0' ||
			    (iscntrl((unsigned char)*p) && *p != '\t'))
				return 0;
		}
		p++;
	}
}

/* "1a2b" or "1a2b;extension": the next chunk's size. */
static void on_chunk_size(struct client *c, struct evbuffer *frame)
{
	char line[MAX_CHUNK_LINE + 1];
	size_t len = evbuffer_remove(frame, line, MAX_CHUNK_LINE);
	line[len] = '\0';
	size_t digits = strspn(line, "0123456789abcdefABCDEF");
	if (digits == 0 || digits > 15 || strlen(line) != len ||
	    !is_chunk_ext(line + digits)) {
		fail(c, 400);
		return;
	}
	ev_uint64_t size = strtoull(line, NULL, 16);
	if (size > c->server->max_body - c->req.body_bytes) {
		fail(c, 413);
		return;
	}
	if (size == 0)
		expect_line(c, READ_TRAILER, MAX_HEAD);
	else
		expect_count(c, READ_CHUNK_DATA, size);
}

/* A line of the trailer after the last chunk: checked as a header line
 * is, then ignored; an empty one ends the request. The trailer as a whole
 * gets the head's limit, or a client could send lines for ever. */
static void on_trailer(struct client *c, struct evbuffer *frame)
{
	char line[MAX_HEAD + 1], *value;
	size_t len = evbuffer_get_length(frame);
	if (len == 0) {
		finish_request(c);
		return;
	}
	c->req.trailer_bytes += len + 2;
	if (c->req.trailer_bytes > MAX_HEAD) {
		fail(c, 431);
		return;
	}
	evbuffer_remove(frame, line, len); /* the frame limit: MAX_HEAD */
	line[len] = '\0';
	if (strlen(line) != len || split_field(line, &value) != 0)
		fail(c, 400);
}

/* Every frame of the connection, whatever the phase. */
static void on_frame(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct client *c = arg;
	switch (c->phase) {
	case READ_HEAD:
		on_head(c, frame);
		break;
	case READ_BODY:
	case READ_CHUNK_DATA:
		/* A piece of a body: count it (a real server would store
		 * it); the last piece ends the count. */
		c->req.body_bytes += evbuffer_get_length(frame);
		if (evchat_frame_is_partial(chat))
			break;
		if (c->phase == READ_BODY)
			finish_request(c);
		else
			expect_line(c, READ_CHUNK_END, MAX_CHUNK_LINE);
		break;
	case READ_CHUNK_SIZE:
		on_chunk_size(c, frame);
		break;
	case READ_CHUNK_END:
		if (evbuffer_get_length(frame) != 0)
			fail(c, 400); /* the data was longer than its size */
		else
			expect_line(c, READ_CHUNK_SIZE, MAX_CHUNK_LINE);
		break;
	case READ_TRAILER:
		on_trailer(c, frame);
		break;
	}
}

/* The connection is ending, or its input is. */
static void on_event(struct evchat *chat, short events, void *arg)
{
	struct client *c = arg;
	if (events & EVCHAT_EVENT_EOF) {
		/* The client is done sending. Replies already queued still
		 * go out; a request cut short gets none. */
		evchat_close_when_done(chat);
		return;
	}
	if (events & EVCHAT_EVENT_FRAME_TOO_LONG) {
		/* Reading has stopped, but pushing still works. */
		fail(c, c->phase == READ_HEAD || c->phase == READ_TRAILER
		            ? 431
		            : 400);
		return;
	}
	if ((events & EVCHAT_EVENT_TIMEOUT) &&
	    (events & EVCHAT_EVENT_READING)) {
		/* A request begun and not finished in time gets 408; an
		 * idle keep-alive connection is just closed. */
		if ((events & EVCHAT_EVENT_FRAME_TIMEOUT) ||
		    c->phase != READ_HEAD ||
		    evchat_get_pending_length(chat) > 0)
			fail(c, 408);
		else
			evchat_close_when_done(chat);
		return;
	}
	if (events & EVCHAT_EVENT_ERROR)
		fprintf(stderr, "http: connection error: %s\n",
		        strerror(errno));
	/* Closed, error or write timeout: free from inside the hook is safe. */
	evchat_free(chat);
	client_forget(c);
}

/* A new connection, already a channel: give it its hooks and framing. */
static void on_accept(struct evchat_listener *listener, struct evchat *chat,
                      const struct sockaddr *addr, int addrlen, void *arg)
{
	struct server *server = arg;
	(void)listener, (void)addr, (void)addrlen;
	struct client *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		evchat_free(chat);
		return;
	}
	c->chat = chat;
	c->server = server;
	c->next = server->clients;
	if (server->clients != NULL)
		server->clients->prev = c;
	server->clients = c;

	evchat_setcb(chat, NULL, on_frame, on_event, c);
	evchat_set_writable_cb(chat, on_writable);
	/* Idle connections go after a while; so do clients that stop
	 * reading what we send (which would hold up a graceful close). */
	struct timeval idle = { IDLE_TIMEOUT, 0 }, stuck = { WRITE_TIMEOUT, 0 };
	evchat_set_timeouts(chat, &idle, &stuck);
	expect_head(c);
}

/* SIGINT or SIGTERM: stop accepting, let every connection finish the
 * replies it owes, then leave the loop. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *server = arg;
	(void)sig, (void)what;
	if (server->stopping)
		return;
	server->stopping = 1;
	evchat_listener_pause(server->listener);
	if (server->clients == NULL) {
		event_base_loopbreak(server->base);
		return;
	}
	for (struct client *c = server->clients; c != NULL; c = c->next)
		evchat_close_when_done(c->chat);
}

static void usage(FILE *to)
{
	fprintf(to, "usage: http [-p PORT] [-d DIR] [-b MAX_BODY] "
	            "[-t HEAD_TIMEOUT]\n"
	            "  -p PORT          TCP port on 127.0.0.1 (0 picks a free "
	            "one; default 8000)\n"
	            "  -d DIR           directory served (default: the current "
	            "one)\n"
	            "  -b MAX_BODY      largest request body in bytes "
	            "(default 16777216)\n"
	            "  -t HEAD_TIMEOUT  seconds a client has to send a request "
	            "head (default 10)\n");
}

int main(int argc, char **argv)
{
	const char *dir = ".";
	long port = 8000, max_body = 16L << 20, head_timeout = 10;
	int opt;
	while ((opt = getopt(argc, argv, "p:d:b:t:h")) != -1) {
		char *end = optarg;
		long n = opt == 'h' || opt == '?' ? 0
		                                  : strtol(optarg, &end, 10);
		if (opt == 'h') {
			usage(stdout);
			return 0;
		}
		if (opt == '?' || (opt != 'd' && (*end != '\0' || n < 0)) ||
		    (opt == 'p' && n > 65535) || (opt == 't' && n == 0)) {
			usage(stderr);
			return 2;
		}
		if (opt == 'p')
			port = n;
		else if (opt == 'd')
			dir = optarg;
		else if (opt == 'b')
			max_body = n;
		else
			head_timeout = n;
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	struct server server;
	memset(&server, 0, sizeof(server));
	server.max_body = (ev_uint64_t)max_body;
	server.head_timeout.tv_sec = (time_t)head_timeout;
	server.dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (server.dir_fd < 0) {
		fprintf(stderr, "http: %s: %s\n", dir, strerror(errno));
		return 1;
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
	struct evconnlistener *lev =
	    server.base == NULL
	        ? NULL
	        : evconnlistener_new_bind(server.base, NULL, NULL,
	                                  LEV_OPT_CLOSE_ON_FREE |
	                                      LEV_OPT_REUSEABLE,
	                                  128, (struct sockaddr *)&sin,
	                                  sizeof(sin));
	if (lev == NULL) {
		fprintf(stderr, "http: cannot listen on port %ld: %s\n", port,
		        strerror(errno));
		return 1;
	}
	server.listener = evchat_listener_new(lev, 0, on_accept, &server);
	if (server.listener == NULL) {
		fprintf(stderr, "http: %s\n", strerror(errno));
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
	close(server.dir_fd);
	return 0;
}
