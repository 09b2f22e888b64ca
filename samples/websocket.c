/*
 * websocket: a WebSocket echo server (RFC 6455), its frames cut by a
 * header decoder.
 *
 *   usage: websocket [-p PORT] [-m MAX_MESSAGE]
 *
 * Each message a client sends comes back to it, text or binary, however
 * it was fragmented; pings are answered, a close is returned. Try it
 * with the client of Debian's python3-websockets:
 *
 *   ./samples/websocket -p 7002 &
 *   python3 -m websockets ws://127.0.0.1:7002/
 *
 * Reading top to bottom: the handshake is HTTP, a line at a time
 * (on_head_line(), then respond()); then ws_header() tells the channel
 * how long each frame is, from its 2 to 14 header bytes, and on_frame()
 * sees every frame whole: the protocol is what it does with it. Header
 * errors (reserved bits, an unknown opcode, an unmasked frame, a long
 * control frame) are refused before any of the body is read, with a
 * close frame carrying 1002; a message over the limit gets 1009, text
 * that is not UTF-8 gets 1007.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <evchat.h>

/* The longest header line of the handshake, and how many lines it may
 * have: a client's head is a few hundred bytes. */
#define MAX_HEAD_LINE 8192
#define MAX_HEAD_LINES 100
/* A frame header: 2 bytes, a 16- or 64-bit length, the mask key. */
#define MAX_FRAME_HEADER 14
/* How long a client may take over one frame, or a close at shutdown. */
#define FRAME_SECONDS 30
#define CLOSE_GRACE_SECONDS 5

/* Opcodes, and the close codes we send. */
enum {
	OP_CONTINUATION = 0x0,
	OP_TEXT = 0x1,
	OP_BINARY = 0x2,
	OP_CLOSE = 0x8,
	OP_PING = 0x9,
	OP_PONG = 0xa
};
enum {
	CLOSE_NORMAL = 1000,
	CLOSE_GOING_AWAY = 1001,
	CLOSE_PROTOCOL_ERROR = 1002,
	CLOSE_INVALID_DATA = 1007,
	CLOSE_TOO_BIG = 1009
};

struct server {
	struct event_base *base;
	struct evchat_listener *listener;
	size_t max_message;
	struct client *clients;
	int stopping;
};

struct client {
	struct server *server;
	struct evchat *chat;
	struct client *prev, *next;
	/* The handshake: lines seen, and what the head said. */
	unsigned lines;
	unsigned bad : 1, upgrade : 1, connection : 1, version : 1;
	unsigned open : 1;    /* the handshake is done: frames follow */
	unsigned closing : 1; /* our close frame is queued */
	char key[25];         /* Sec-WebSocket-Key: 24 base64 characters */
	/* A fragmented message being gathered, and its opcode (0: none). */
	struct evbuffer *message;
	unsigned message_op;
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
	if (client->message != NULL)
		evbuffer_free(client->message);
	free(client);
	if (server->stopping && server->clients == NULL)
		event_base_loopbreak(server->base);
}

/* ------------------------------------------------------------------ */
/* The accept key: base64(SHA-1(key + the protocol's GUID)). SHA-1 is
 * here in a few lines so that the sample needs nothing but evchat. */

static uint32_t rotl(uint32_t x, unsigned n)
{
	return x << n | x >> (32 - n);
}

static void sha1_block(uint32_t h[5], const unsigned char *p)
{
	uint32_t w[80];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 80; i++)
		w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
	for (int i = 0; i < 80; i++) {
		uint32_t f, k;
		if (i < 20) {
			f = (b & c) | (~b & d);
			k = 0x5a827999;
		} else if (i < 40) {
			f = b ^ c ^ d;
			k = 0x6ed9eba1;
		} else if (i < 60) {
			f = (b & c) | (b & d) | (c & d);
			k = 0x8f1bbcdc;
		} else {
			f = b ^ c ^ d;
			k = 0xca62c1d6;
		}
		uint32_t t = rotl(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = rotl(b, 30);
		b = a;
		a = t;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
}

static void sha1(const unsigned char *data, size_t len, unsigned char out[20])
{
	uint32_t h[5] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476,
		          0xc3d2e1f0 };
	size_t done = 0;
	for (; len - done >= 64; done += 64)
		sha1_block(h, data + done);
	/* The tail, a 1 bit, zeros, and the length in bits: one block or
	 * two. */
	unsigned char tail[128] = { 0 };
	size_t rest = len - done;
	memcpy(tail, data + done, rest);
	tail[rest] = 0x80;
	size_t blocks = rest < 56 ? 1 : 2;
	uint64_t bits = (uint64_t)len * 8;
	for (int i = 0; i < 8; i++)
		tail[blocks * 64 - 1 - i] = (unsigned char)(bits >> (8 * i));
	for (size_t i = 0; i < blocks; i++)
		sha1_block(h, tail + 64 * i);
	for (int i = 0; i < 20; i++)
		out[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

/* out receives 4 * ceil(len / 3) characters and a NUL. */
static void base64(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                             "abcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		*out++ = digits[v >> 18];
		*out++ = digits[(v >> 12) & 63];
		*out++ = i + 1 < len ? digits[(v >> 6) & 63] : '=';
		*out++ = i + 2 < len ? digits[v & 63] : '=';
	}
	*out = '\0';
}

static void accept_key(const char *key, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char joined[24 + sizeof(guid) - 1], digest[20];
	memcpy(joined, key, 24);
	memcpy(joined + 24, guid, sizeof(guid) - 1);
	sha1(joined, sizeof(joined), digest);
	base64(digest, sizeof(digest), out);
}

/* ------------------------------------------------------------------ */
/* Frames */

/*
 * The header decoder: how long a client's frame header is and how many
 * payload bytes follow it. The channel calls it with the frame's first
 * bytes (at most MAX_FRAME_HEADER), again with more if these are too
 * few; it only reads them. Frames it refuses end reading before their
 * body is read, and on_event() answers with 1002.
 */
static int ws_header(const unsigned char *bytes, size_t len,
                     struct evchat_header *header, void *arg)
{
	(void)arg;
	if (len < 2)
		return 0;
	unsigned op = bytes[0] & 0x0f;
	int fin = (bytes[0] & 0x80) != 0;
	ev_uint64_t body = bytes[1] & 0x7f;
	if ((bytes[0] & 0x70) != 0 || /* reserved bits: no extension */
	    (op > OP_BINARY && op < OP_CLOSE) || op > OP_PONG ||
	    (bytes[1] & 0x80) == 0 || /* a client masks every frame */
	    (op >= OP_CLOSE && (body > 125 || !fin)))
		return -1;
	size_t size = 2 + (body == 126 ? 2 : body == 127 ? 8 : 0) + 4;
	if (len < size)
		return 0;
	if (body == 126) {
		body = (ev_uint64_t)bytes[2] << 8 | bytes[3];
	} else if (body == 127) {
		body = 0;
		for (int i = 2; i < 10; i++)
			body = body << 8 | bytes[i];
		if (body >> 63 != 0) /* the top bit must be 0 */
			return -1;
	}
	header->size = size;
	header->body = body;
	return 1;
}

/* Queues one unmasked frame: its header, then the payload, moved. */
static void send_frame(struct evchat *chat, unsigned op,
                       struct evbuffer *payload)
{
	size_t len = evbuffer_get_length(payload);
	unsigned char header[10];
	size_t n = 2;
	header[0] = (unsigned char)(0x80 | op);
	if (len < 126) {
		header[1] = (unsigned char)len;
	} else if (len <= 0xffff) {
		header[1] = 126;
		header[2] = (unsigned char)(len >> 8);
		header[3] = (unsigned char)len;
		n = 4;
	} else {
		header[1] = 127;
		for (int i = 0; i < 8; i++)
			header[2 + i] = (unsigned char)((ev_uint64_t)len >>
			                                (56 - 8 * i));
		n = 10;
	}
	evchat_push(chat, header, n);
	evchat_push_buffer(chat, payload);
}

/* Ends the connection with a close frame: sent, then the channel closes
 * once it is through (on_event() hears CLOSED). */
static void send_close(struct client *client, unsigned code)
{
	if (client->closing)
		return;
	client->closing = 1;
	unsigned char payload[2] = { (unsigned char)(code >> 8),
		                     (unsigned char)code };
	struct evbuffer *buf = evbuffer_new();
	if (buf != NULL) {
		evbuffer_add(buf, payload, sizeof(payload));
		send_frame(client->chat, OP_CLOSE, buf);
		evbuffer_free(buf);
	}
	evchat_close_when_done(client->chat);
}

/* Whether len bytes are UTF-8 as RFC 3629 has it: no overlong forms,
 * no surrogates, nothing past U+10FFFF. */
static int valid_utf8(const unsigned char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		unsigned char c = s[i];
		size_t more;
		uint32_t cp, min;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			more = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			more = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			more = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (len - i <= more)
			return 0;
		for (size_t k = 1; k <= more; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += more + 1;
	}
	return 1;
}

/* A whole message: back to the client as one frame. */
static void echo_message(struct client *client, unsigned op,
                         struct evbuffer *message)
{
	size_t len = evbuffer_get_length(message);
	if (op == OP_TEXT && !valid_utf8(len > 0 ? evbuffer_pullup(message, -1)
	                                         : (const unsigned char *)"",
	                                 len)) {
		send_close(client, CLOSE_INVALID_DATA);
		return;
	}
	send_frame(client->chat, op, message);
}

/* A close from the client: answered with its code, then we close. */
static void on_close_frame(struct client *client, const unsigned char *p,
                           size_t len)
{
	if (len == 0) {
		send_close(client, CLOSE_NORMAL);
		return;
	}
	unsigned code = len >= 2 ? (unsigned)p[0] << 8 | p[1] : 0;
	/* The codes a peer may send (RFC 6455 7.4), and a reason that is
	 * text. */
	int valid = len >= 2 &&
	            ((code >= 1000 && code <= 1003) ||
	             (code >= 1007 && code <= 1011) ||
	             (code >= 3000 && code <= 4999)) &&
	            valid_utf8(p + 2, len - 2);
	send_close(client, valid ? code : CLOSE_PROTOCOL_ERROR);
}

/* One whole frame, header included (the decoder strips nothing, so the
 * header is read again here: it is in the same bytes). */
static void on_websocket_frame(struct client *client, struct evbuffer *frame)
{
	if (client->closing)
		return;
	size_t len = evbuffer_get_length(frame);
	unsigned char *p = evbuffer_pullup(frame, -1);
	struct evchat_header header = { 0, 0, 0 };
	if (p == NULL || ws_header(p, len, &header, NULL) != 1) {
		send_close(client, CLOSE_PROTOCOL_ERROR);
		return;
	}
	unsigned op = p[0] & 0x0f;
	int fin = (p[0] & 0x80) != 0;
	const unsigned char *mask = p + header.size - 4;
	unsigned char *payload = p + header.size;
	size_t n = len - header.size;
	for (size_t i = 0; i < n; i++)
		payload[i] ^= mask[i & 3];

	if (op == OP_CLOSE) {
		on_close_frame(client, payload, n);
		return;
	}
	evbuffer_drain(frame, header.size);
	if (op == OP_PING) {
		send_frame(client->chat, OP_PONG, frame);
		return;
	}
	if (op == OP_PONG)
		return;
	/* Data: a new message while one is unfinished, or a continuation
	 * of none, breaks the protocol. */
	if ((op == OP_CONTINUATION) != (client->message_op != 0)) {
		send_close(client, CLOSE_PROTOCOL_ERROR);
		return;
	}
	if (evbuffer_get_length(client->message) + n >
	    client->server->max_message) {
		send_close(client, CLOSE_TOO_BIG);
		return;
	}
	if (op != OP_CONTINUATION && fin) {
		echo_message(client, op, frame); /* the usual case */
		return;
	}
	if (op != OP_CONTINUATION)
		client->message_op = op;
	evbuffer_add_buffer(client->message, frame);
	if (fin) {
		echo_message(client, client->message_op, client->message);
		evbuffer_drain(client->message, (size_t)-1);
		client->message_op = 0;
	}
}

/* ------------------------------------------------------------------ */
/* The handshake */

/* Whether a comma-separated header value holds the token, in any case. */
static int has_token(const char *value, const char *token)
{
	size_t n = strlen(token);
	for (const char *p = value; *p != '\0';) {
		p += strspn(p, " \t,");
		size_t len = strcspn(p, ",");
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == n && strncasecmp(p, token, n) == 0)
			return 1;
		p += strcspn(p, ",");
	}
	return 0;
}

/* The head is complete: switch protocols, or refuse. */
static void respond(struct client *client)
{
	struct evchat *chat = client->chat;
	if (client->bad || !client->upgrade || !client->connection ||
	    client->key[0] == '\0') {
		static const char bad[] = "HTTP/1.1 400 Bad Request\r\n"
		                          "Connection: close\r\n"
		                          "Content-Length: 0\r\n\r\n";
		evchat_push(chat, bad, sizeof(bad) - 1);
		evchat_close_when_done(chat);
		return;
	}
	if (!client->version) {
		static const char old[] = "HTTP/1.1 426 Upgrade Required\r\n"
		                          "Sec-WebSocket-Version: 13\r\n"
		                          "Connection: close\r\n"
		                          "Content-Length: 0\r\n\r\n";
		evchat_push(chat, old, sizeof(old) - 1);
		evchat_close_when_done(chat);
		return;
	}
	char accept[29];
	accept_key(client->key, accept);
	evchat_push_printf(chat,
	                   "HTTP/1.1 101 Switching Protocols\r\n"
	                   "Upgrade: websocket\r\n"
	                   "Connection: Upgrade\r\n"
	                   "Sec-WebSocket-Accept: %s\r\n\r\n",
	                   accept);
	/* From here on, frames: what the client sent after its head is
	 * framed by the decoder too. The limit is on one frame, header
	 * included; on_websocket_frame() limits a fragmented message. */
	client->open = 1;
	evchat_set_terminator_header(chat, ws_header, MAX_FRAME_HEADER, NULL);
	evchat_set_frame_limit(chat, client->server->max_message + 14,
	                       EVCHAT_LIMIT_CLOSE);
}

/* One line of the client's head, without its CRLF. */
static void on_head_line(struct client *client, struct evbuffer *buf)
{
	size_t len = evbuffer_get_length(buf);
	/* A C string: NUL-terminated, and holding no NUL of its own. */
	if (evbuffer_add(buf, "", 1) < 0) {
		evchat_abort(client->chat);
		return;
	}
	char *line = (char *)evbuffer_pullup(buf, -1);
	if (line == NULL || strlen(line) != len)
		client->bad = 1;
	else if (client->lines == 0)
		client->bad = strncmp(line, "GET ", 4) != 0 || len < 13 ||
		              strcmp(line + len - 9, " HTTP/1.1") != 0;
	if (++client->lines > MAX_HEAD_LINES)
		client->bad = 1;
	if (line == NULL || len == 0 || client->bad) {
		respond(client);
		return;
	}
	char *colon = strchr(line, ':');
	if (client->lines == 1 || colon == NULL)
		return; /* the request line, or a line we need not read */
	*colon = '\0';
	char *value = colon + 1 + strspn(colon + 1, " \t");
	if (strcasecmp(line, "Upgrade") == 0)
		client->upgrade = has_token(value, "websocket");
	else if (strcasecmp(line, "Connection") == 0)
		client->connection = has_token(value, "upgrade");
	else if (strcasecmp(line, "Sec-WebSocket-Version") == 0)
		client->version = strcmp(value, "13") == 0;
	else if (strcasecmp(line, "Sec-WebSocket-Key") == 0) {
		/* 16 bytes in base64, "==" at its end; trailing blanks
		 * are not part of it. */
		size_t n = strcspn(value, " \t");
		if (n == 24 && value[22] == '=' && value[23] == '=' &&
		    value[n + strspn(value + n, " \t")] == '\0') {
			memcpy(client->key, value, 24);
			client->key[24] = '\0';
		} else {
			client->bad = 1;
		}
	}
}

/* ------------------------------------------------------------------ */
/* The channel's hooks */

static void on_frame(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct client *client = arg;
	(void)chat;
	if (client->open)
		on_websocket_frame(client, frame);
	else
		on_head_line(client, frame);
}

/* A client that does not read its echoes is not read from either. */
static void on_writable(struct evchat *chat, int writable, void *arg)
{
	(void)arg;
	if (writable)
		evchat_resume_input(chat);
	else
		evchat_pause_input(chat);
}

static void on_event(struct evchat *chat, short events, void *arg)
{
	struct client *client = arg;
	if (events & EVCHAT_EVENT_EOF) {
		/* Gone without a close frame: nothing to answer. */
		evchat_close_when_done(chat);
		return;
	}
	if (events &
	    (EVCHAT_EVENT_FRAME_TOO_LONG | EVCHAT_EVENT_FRAME_INVALID)) {
		if (!client->open) {
			client->bad = 1;
			respond(client);
		} else {
			send_close(client, events & EVCHAT_EVENT_FRAME_INVALID
			                       ? CLOSE_PROTOCOL_ERROR
			                       : CLOSE_TOO_BIG);
		}
		return;
	}
	if (events & EVCHAT_EVENT_ERROR)
		fprintf(stderr, "websocket: connection error: %s\n",
		        strerror(errno));
	/* Closed, an error, or a frame that took too long. */
	evchat_free(chat);
	client_forget(client);
}

static void on_accept(struct evchat_listener *listener, struct evchat *chat,
                      const struct sockaddr *addr, int addrlen, void *arg)
{
	static const struct timeval frame_time = { FRAME_SECONDS, 0 };
	struct server *server = arg;
	(void)listener, (void)addr, (void)addrlen;
	struct client *client = calloc(1, sizeof(*client));
	if (client == NULL || (client->message = evbuffer_new()) == NULL) {
		free(client);
		evchat_free(chat);
		return;
	}
	client->chat = chat;
	client->server = server;
	client->next = server->clients;
	if (server->clients != NULL)
		server->clients->prev = client;
	server->clients = client;

	evchat_setcb(chat, NULL, on_frame, on_event, client);
	evchat_set_terminator_line(chat, EVCHAT_EOL_CRLF);
	evchat_set_frame_limit(chat, MAX_HEAD_LINE, EVCHAT_LIMIT_CLOSE);
	/* A client dribbling a head line or a frame, header or body, is
	 * cut off; one that idles between frames is not. */
	evchat_set_frame_timeout(chat, &frame_time);
	evchat_set_writable_cb(chat, on_writable);
}

/* SIGINT or SIGTERM: every open connection gets a close frame (1001,
 * going away) and is flushed; a second signal stops at once. */
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
		if (c->open)
			send_close(c, CLOSE_GOING_AWAY);
		else
			evchat_close_when_done(c->chat);
	}
}

static void usage(FILE *to)
{
	fprintf(to, "usage: websocket [-p PORT] [-m MAX_MESSAGE]\n"
	            "  -p PORT         TCP port on 127.0.0.1 (0 picks a free "
	            "one; default 7002)\n"
	            "  -m MAX_MESSAGE  longest message accepted in bytes "
	            "(default 16777216)\n");
}

int main(int argc, char **argv)
{
	long port = 7002;
	long long max_message = 16 << 20;
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];
		if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (i + 1 >= argc ||
		    (strcmp(opt, "-p") != 0 && strcmp(opt, "-m") != 0)) {
			usage(stderr);
			return 2;
		}
		char *value = argv[++i], *end;
		long long n = strtoll(value, &end, 10);
		if (*end != '\0' || n < 0 || (opt[1] == 'p' && n > 65535) ||
		    (opt[1] == 'm' && (n < 125 || n > (1LL << 40)))) {
			fprintf(stderr, "websocket: bad value for %s: %s\n",
			        opt, value);
			return 2;
		}
		if (opt[1] == 'p')
			port = (long)n;
		else
			max_message = n;
	}

	struct server server;
	memset(&server, 0, sizeof(server));
	server.max_message = (size_t)max_message;
	signal(SIGPIPE, SIG_IGN);

	server.base = event_base_new();
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct evconnlistener *lev =
	    server.base == NULL
	        ? NULL
	        : evconnlistener_new_bind(server.base, NULL, NULL,
	                                  LEV_OPT_CLOSE_ON_FREE |
	                                      LEV_OPT_REUSEABLE,
	                                  128, (struct sockaddr *)&sin,
	                                  sizeof(sin));
	if (lev == NULL) {
		fprintf(stderr, "websocket: cannot listen on port %ld: %s\n",
		        port, strerror(errno));
		if (server.base != NULL)
			event_base_free(server.base);
		return 1;
	}
	server.listener = evchat_listener_new(lev, 0, on_accept, &server);
	if (server.listener == NULL) {
		fprintf(stderr, "websocket: %s\n", strerror(errno));
		event_base_free(server.base); /* the listener freed lev */
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

	while (server.clients != NULL) {
		struct client *c = server.clients;
		evchat_free(c->chat);
		server.clients = c->next;
		if (c->message != NULL)
			evbuffer_free(c->message);
		free(c);
	}
	event_free(sigint);
	event_free(sigterm);
	evchat_listener_free(server.listener);
	event_base_free(server.base);
	evchat_thread_cleanup();
	return 0;
}
