/*
 * resp: a small Redis-protocol (RESP2) key-value server.
 *
 *   usage: resp [-p PORT] [-m MAX_BULK]
 *
 * It speaks enough of Redis for redis-cli, redis-cli --pipe and
 * redis-benchmark: PING, ECHO, SET, GET, DEL, EXISTS, INCR, MGET, QUIT,
 * COMMAND and CONFIG GET, over both request forms Redis accepts:
 *
 *   inline     PING\r\n  or  SET k v\n    (words split on spaces)
 *   multibulk  *3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n  (binary safe)
 *
 * Try it:
 *
 *   ./samples/resp -p 6380 &
 *   redis-cli -p 6380 SET greeting hello
 *   redis-cli -p 6380 GET greeting
 *   redis-cli -p 6380            # interactive
 *   printf 'PING\r\n' | nc -N 127.0.0.1 6380
 *   redis-benchmark -p 6380 -t set,get -n 100000 -q
 *
 * Reading top to bottom: the store (a hash table of byte strings); reply
 * helpers; the commands; the parser, which is where evchat does the work:
 * a line terminator for "*N" and "$LEN" lines and inline commands, and a
 * count terminator for each bulk string's bytes (a big one collected as
 * it arrives into a buffer SET keeps); then connections (with
 * flow control for clients that pipeline without reading), shutdown and
 * main(). Malformed input gets "-ERR Protocol error: ..." and a close, as
 * in Redis.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/listener.h>

#include <evchat.h>

#define MAX_LINE (64 * 1024)          /* an inline command or a *N / $N line */
#define MAX_ARGS (1024 * 1024)        /* elements in one multibulk request */
#define MAX_COMMAND ((size_t)1 << 30) /* bytes of all arguments of one */
#define DEFAULT_MAX_BULK ((size_t)512 << 20)
#define BIG_BULK (32 * 1024)       /* read into a buffer of its own */
#define KEEP_ARG_BYTES (64 * 1024) /* argument bytes kept between requests */
#define KEEP_ARGS 1024             /* and arguments */
#define CLOSE_GRACE_SECONDS 5      /* a non-reading client's hold on shutdown */

/* ------------------------------------------------------------------ */
/* The store: a hash table with chaining. Keys and values are byte strings
 * with a length, so NULs and CRLFs inside them are fine. */

struct entry {
	struct entry *next; /* in the same bucket */
	uint64_t hash;
	char *value;
	size_t value_len, value_cap;
	size_t key_len;
	char key[]; /* not NUL-terminated */
};

struct store {
	struct entry **buckets;
	size_t mask; /* buckets - 1; the bucket count is a power of two */
	size_t count;
};

/* FNV-1a: short and good enough for a sample. A server facing hostile
 * clients would use a keyed hash (SipHash) against collision flooding. */
static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* The link that points to the key's entry, or to the NULL ending its
 * bucket: so one lookup serves GET, SET (insert there) and DEL (unlink). */
static struct entry **store_find(struct store *store, const char *key,
                                 size_t len, uint64_t hash)
{
	struct entry **link = &store->buckets[hash & store->mask];
	for (; *link != NULL; link = &(*link)->next) {
		struct entry *e = *link;
		if (e->hash == hash && e->key_len == len &&
		    memcmp(e->key, key, len) == 0)
			break;
	}
	return link;
}

static struct entry *store_get(struct store *store, const char *key, size_t len)
{
	return *store_find(store, key, len, hash_bytes(key, len));
}

/* Doubles the table once it holds more entries than buckets. If memory
 * runs out the table just stays as it is, slower but correct. */
static void store_grow(struct store *store)
{
	size_t n = (store->mask + 1) * 2;
	struct entry **buckets = calloc(n, sizeof(*buckets));
	if (buckets == NULL)
		return;
	for (size_t i = 0; i <= store->mask; i++) {
		struct entry *e = store->buckets[i], *next;
		for (; e != NULL; e = next) {
			next = e->next;
			e->next = buckets[e->hash & (n - 1)];
			buckets[e->hash & (n - 1)] = e;
		}
	}
	free(store->buckets);
	store->buckets = buckets;
	store->mask = n - 1;
}

/* Sets key to value, reusing the key's entry and, when it fits, its value
 * buffer: overwriting a key (as redis-benchmark's SET does) allocates
 * nothing. With own set, value is a buffer from malloc() that the entry
 * takes instead of a copy (a big value is then held once, not twice).
 * Returns -1 when memory runs out; own is then still the caller's. */
static int store_set(struct store *store, const char *key, size_t key_len,
                     const char *value, size_t value_len, char *own)
{
	uint64_t hash = hash_bytes(key, key_len);
	struct entry **link = store_find(store, key, key_len, hash);
	struct entry *e = *link;
	if (e == NULL) {
		e = calloc(1, sizeof(*e) + key_len);
		if (e == NULL)
			return -1;
		e->hash = hash;
		e->key_len = key_len;
		if (key_len > 0)
			memcpy(e->key, key, key_len);
	}
	if (own != NULL) {
		free(e->value);
		e->value = own;
		e->value_cap = value_len;
	} else if (value_len > e->value_cap ||
	           e->value_cap > 2 * value_len + 64) {
		/* A new buffer if the value does not fit, or if the old one
		 * is far too big for it (a huge value overwritten by a small
		 * one). */
		char *copy = malloc(value_len > 0 ? value_len : 1);
		if (copy == NULL) {
			if (*link == NULL)
				free(e);
			return -1;
		}
		free(e->value);
		e->value = copy;
		e->value_cap = value_len;
	}
	if (own == NULL && value_len > 0) /* an empty one may have none */
		memcpy(e->value, value, value_len);
	e->value_len = value_len;
	if (*link == NULL) {
		*link = e;
		if (++store->count > store->mask + 1)
			store_grow(store);
	}
	return 0;
}

/* Removes the key; returns 1 if it was there, 0 if not. */
static int store_del(struct store *store, const char *key, size_t len)
{
	struct entry **link = store_find(store, key, len, hash_bytes(key, len));
	struct entry *e = *link;
	if (e == NULL)
		return 0;
	*link = e->next;
	free(e->value);
	free(e);
	store->count--;
	return 1;
}

static void store_free(struct store *store)
{
	for (size_t i = 0; i <= store->mask; i++) {
		struct entry *e = store->buckets[i], *next;
		for (; e != NULL; e = next) {
			next = e->next;
			free(e->value);
			free(e);
		}
	}
	free(store->buckets);
}

/* ------------------------------------------------------------------ */
/* The server and its clients. */

struct server {
	struct event_base *base;
	struct evchat_listener *listener;
	struct store store;
	size_t max_bulk;
	struct client *clients;
	int stopping;
};

/* One argument of the request being read: where it is in client->args,
 * or, for a bulk of BIG_BULK bytes or more, in a buffer of its own. */
struct arg {
	const char *ptr; /* set once the whole request is in (args may move) */
	size_t off, len;
	char *own; /* a big bulk's buffer; a command may take it (then NULL) */
};

/* Where the parser is in the request. */
enum read_state {
	READ_REQUEST,  /* a "*N" line or an inline command */
	READ_BULK_LEN, /* a "$LEN" line */
	READ_BULK,     /* LEN bytes and "\r\n", by a count terminator */
	READ_BIG_BULK  /* the same, LEN >= BIG_BULK, through on_big_bulk() */
};

struct client {
	struct server *server;
	struct evchat *chat;
	struct client *prev, *next;
	enum read_state state;
	size_t bulks_left; /* of the multibulk request being read */
	size_t bulk_len;   /* of the bulk being read */
	/* The request's arguments, back to back in one buffer. Both arrays
	 * are kept from one request to the next, so a steady stream of
	 * requests runs without malloc. */
	struct arg *argv;
	size_t argc, argv_cap;
	char *args;
	size_t args_len, args_cap;
	size_t own_len; /* bytes of the request's big bulks, not in args */
	/* A big bulk as it arrives, through the collect hook (on_big_bulk):
	 * straight into the argument's own buffer, with no frame gathered
	 * in the channel and no copy out of it. */
	char *big;
	size_t big_got, big_cap; /* of bulk_len */
};

/* ------------------------------------------------------------------ */
/* Replies. evchat_push() copies into the bufferevent's output buffer, where
 * small pushes share one chunk, so many replies to a pipeline go out in
 * one write. Pushing after evchat_close_when_done() fails with EPIPE,
 * which is harmless here: the reply had nowhere to go. */

#define REPLY(c, literal) evchat_push((c)->chat, literal, sizeof(literal) - 1)

/* ":42\r\n", "*3\r\n" or "$5\r\n" into out (room for 24 bytes), without
 * printf: this runs for nearly every reply. Returns the length. */
static size_t format_header(char *out, char type, long long n)
{
	char digits[20];
	size_t count = 0, len = 0;
	unsigned long long u = n < 0 ? 0ULL - (unsigned long long)n
	                             : (unsigned long long)n;
	do {
		digits[count++] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	out[len++] = type;
	if (n < 0)
		out[len++] = '-';
	while (count > 0)
		out[len++] = digits[--count];
	out[len++] = '\r';
	out[len++] = '\n';
	return len;
}

static void reply_header(struct client *c, char type, long long n)
{
	char buf[24];
	evchat_push(c->chat, buf, format_header(buf, type, n));
}

/* A bulk string: "$LEN\r\n" + bytes + "\r\n". A small one is assembled
 * on the stack and pushed at once; a big one is pushed in three parts
 * rather than copied twice. */
static void reply_bulk(struct client *c, const char *data, size_t len)
{
	char buf[512];
	size_t head = format_header(buf, '$', (long long)len);
	if (len <= sizeof(buf) - head - 2) {
		if (len > 0) /* an empty value may have no buffer */
			memcpy(buf + head, data, len);
		memcpy(buf + head + len, "\r\n", 2);
		evchat_push(c->chat, buf, head + len + 2);
		return;
	}
	evchat_push(c->chat, buf, head);
	evchat_push(c->chat, data, len);
	REPLY(c, "\r\n");
}

/* An error line: before, up to 128 bytes of what the client sent, after.
 * Line breaks in what it sent would end the line early: they become
 * spaces. Only for the rare paths, hence printf. */
static void reply_error(struct client *c, const char *before, const char *what,
                        size_t what_len, const char *after)
{
	char line[256];
	int n = snprintf(line, sizeof(line) - 2, "%s%.*s%s", before,
	                 (int)(what_len < 128 ? what_len : 128), what, after);
	if (n < 0 || n > (int)sizeof(line) - 3) /* cut short, or failed */
		n = n < 0 ? 0 : (int)sizeof(line) - 3;
	for (int i = 0; i < n; i++)
		if (line[i] == '\r' || line[i] == '\n')
			line[i] = ' ';
	memcpy(line + n, "\r\n", 2);
	evchat_push(c->chat, line, (size_t)n + 2);
}

/* ------------------------------------------------------------------ */
/* The commands. Each gets the arguments, the command name included as
 * argv[0], already checked against the command's arity. */

static int arg_is(const struct arg *a, const char *word)
{
	return a->len == strlen(word) && strncasecmp(a->ptr, word, a->len) == 0;
}

static void cmd_ping(struct client *c, size_t argc, const struct arg *argv)
{
	if (argc == 2)
		reply_bulk(c, argv[1].ptr, argv[1].len);
	else
		REPLY(c, "+PONG\r\n");
}

static void cmd_echo(struct client *c, size_t argc, const struct arg *argv)
{
	(void)argc;
	reply_bulk(c, argv[1].ptr, argv[1].len);
}

static void cmd_set(struct client *c, size_t argc, const struct arg *argv)
{
	/* EX, PX, NX, XX, KEEPTTL, GET: refused rather than ignored, since a
	 * client relying on them would otherwise be silently misled. */
	if (argc > 3) {
		REPLY(c,
		      "-ERR SET options are not supported by this server\r\n");
		return;
	}
	if (store_set(&c->server->store, argv[1].ptr, argv[1].len, argv[2].ptr,
	              argv[2].len, argv[2].own) < 0) {
		REPLY(c, "-OOM command not allowed when out of memory\r\n");
		return;
	}
	c->argv[2].own = NULL; /* the store has it now */
	REPLY(c, "+OK\r\n");
}

/* The key's value, or the null bulk string "$-1" if it has none. */
static void reply_value(struct client *c, const struct arg *key)
{
	struct entry *e = store_get(&c->server->store, key->ptr, key->len);
	if (e == NULL)
		REPLY(c, "$-1\r\n");
	else
		reply_bulk(c, e->value, e->value_len);
}

static void cmd_get(struct client *c, size_t argc, const struct arg *argv)
{
	(void)argc;
	reply_value(c, &argv[1]);
}

static void cmd_mget(struct client *c, size_t argc, const struct arg *argv)
{
	reply_header(c, '*', (long long)argc - 1);
	for (size_t i = 1; i < argc; i++)
		reply_value(c, &argv[i]);
}

static void cmd_del(struct client *c, size_t argc, const struct arg *argv)
{
	long long removed = 0;
	for (size_t i = 1; i < argc; i++)
		removed += store_del(&c->server->store, argv[i].ptr,
		                     argv[i].len);
	reply_header(c, ':', removed);
}

/* EXISTS counts a key given twice twice, as Redis does. */
static void cmd_exists(struct client *c, size_t argc, const struct arg *argv)
{
	long long found = 0;
	for (size_t i = 1; i < argc; i++)
		found += store_get(&c->server->store, argv[i].ptr,
		                   argv[i].len) != NULL;
	reply_header(c, ':', found);
}

/* Parses all of s as a decimal long long the way Redis does: an optional
 * '-', then digits without leading zeros ("0" alone is fine), no spaces,
 * no '+', no overflow. Returns 0 on success, -1 if s is not one. */
static int parse_ll(const char *s, size_t len, long long *out)
{
	int negative = len > 0 && s[0] == '-';
	size_t i = (size_t)negative;
	if (len == i || len - i > 19 || s[i] < '0' || s[i] > '9' ||
	    (s[i] == '0' && len != 1))
		return -1;
	unsigned long long v = 0;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 +
		    (unsigned long long)(s[i] - '0'); /* 19 digits fit */
	}
	if (v > (unsigned long long)LLONG_MAX + (unsigned long long)negative)
		return -1;
	*out = negative ? (long long)(0ULL - v) : (long long)v;
	return 0;
}

static void cmd_incr(struct client *c, size_t argc, const struct arg *argv)
{
	(void)argc;
	struct entry *e = store_get(&c->server->store, argv[1].ptr,
	                            argv[1].len);
	long long v = 0;
	if (e != NULL && parse_ll(e->value, e->value_len, &v) < 0) {
		REPLY(c, "-ERR value is not an integer or out of range\r\n");
		return;
	}
	if (v == LLONG_MAX) {
		REPLY(c, "-ERR increment or decrement would overflow\r\n");
		return;
	}
	/* The reply ":N\r\n" holds the new value's text too. */
	char reply[24];
	size_t len = format_header(reply, ':', v + 1);
	if (store_set(&c->server->store, argv[1].ptr, argv[1].len, reply + 1,
	              len - 3, NULL) < 0) {
		REPLY(c, "-OOM command not allowed when out of memory\r\n");
		return;
	}
	evchat_push(c->chat, reply, len);
}

/* QUIT: answer, then close once the answer (and every earlier one) is
 * out. No frame is delivered after evchat_close_when_done(), so anything
 * the client pipelined after QUIT is ignored, as in Redis. */
static void cmd_quit(struct client *c, size_t argc, const struct arg *argv)
{
	(void)argc, (void)argv;
	REPLY(c, "+OK\r\n");
	evchat_close_when_done(c->chat);
}

/* COMMAND, COMMAND DOCS and the like: an empty array. redis-cli asks for
 * COMMAND DOCS when it starts interactively, and without an answer would
 * wait; given nothing, it falls back on its built-in help. */
static void cmd_command(struct client *c, size_t argc, const struct arg *argv)
{
	(void)argc, (void)argv;
	REPLY(c, "*0\r\n");
}

/* CONFIG GET name...: redis-benchmark asks for "save" and "appendonly"
 * before it starts. There is no persistence, and we say so; other names
 * (no patterns here) match nothing. */
static const char *config_value(const struct arg *name)
{
	return arg_is(name, "save")         ? ""
	       : arg_is(name, "appendonly") ? "no"
	                                    : NULL;
}

static void cmd_config(struct client *c, size_t argc, const struct arg *argv)
{
	if (!arg_is(&argv[1], "get") || argc < 3) {
		REPLY(c, "-ERR only CONFIG GET parameter... is supported\r\n");
		return;
	}
	long long found = 0;
	for (size_t i = 2; i < argc; i++)
		found += config_value(&argv[i]) != NULL;
	reply_header(c, '*', 2 * found);
	for (size_t i = 2; i < argc; i++) {
		const char *value = config_value(&argv[i]);
		if (value != NULL) {
			reply_bulk(c, argv[i].ptr, argv[i].len);
			reply_bulk(c, value, strlen(value));
		}
	}
}

/* The command table. Arity counts the name: min_args..max_args, 0 for no
 * maximum. The busiest commands come first, as the lookup is linear. */
static const struct command {
	const char *name;
	size_t min_args, max_args;
	void (*run)(struct client *c, size_t argc, const struct arg *argv);
} commands[] = {
	{ "get", 2, 2, cmd_get },       { "set", 3, 0, cmd_set },
	{ "ping", 1, 2, cmd_ping },     { "incr", 2, 2, cmd_incr },
	{ "mget", 2, 0, cmd_mget },     { "del", 2, 0, cmd_del },
	{ "exists", 2, 0, cmd_exists }, { "echo", 2, 2, cmd_echo },
	{ "quit", 1, 0, cmd_quit },     { "command", 1, 0, cmd_command },
	{ "config", 2, 0, cmd_config },
};

/* Forgets the request's arguments, freeing the big bulks no command took. */
static void drop_args(struct client *c)
{
	for (size_t i = 0; c->own_len > 0 && i < c->argc; i++)
		free(c->argv[i].own); /* own_len: skipped for small requests */
	c->argc = 0;
	c->args_len = 0;
	c->own_len = 0;
}

/* Runs the request in client->argv, then makes room for the next one. */
static void execute(struct client *c)
{
	for (size_t i = 0; i < c->argc; i++)
		c->argv[i].ptr = c->args + c->argv[i].off;
	for (size_t i = 0; c->own_len > 0 && i < c->argc; i++)
		if (c->argv[i].own != NULL)
			c->argv[i].ptr = c->argv[i].own;
	const struct arg *argv = c->argv;
	const struct command *cmd = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (arg_is(&argv[0], commands[i].name)) {
			cmd = &commands[i];
			break;
		}
	if (cmd == NULL)
		reply_error(c, "-ERR unknown command '", argv[0].ptr,
		            argv[0].len, "'");
	else if (c->argc < cmd->min_args ||
	         (cmd->max_args != 0 && c->argc > cmd->max_args))
		reply_error(c, "-ERR wrong number of arguments for '",
		            cmd->name, strlen(cmd->name), "' command");
	else
		cmd->run(c, c->argc, argv);
	drop_args(c);
	/* Keep the argument space for the next request, unless a big one
	 * made it big: then give the memory back. */
	if (c->args_cap > KEEP_ARG_BYTES) {
		free(c->args);
		c->args = NULL;
		c->args_cap = 0;
	}
	if (c->argv_cap > KEEP_ARGS) {
		free(c->argv);
		c->argv = NULL;
		c->argv_cap = 0;
	}
}

/* ------------------------------------------------------------------ */
/* The parser. Every frame comes to on_frame(); c->state says what it is.
 * Lines come from evchat_set_terminator_line(EVCHAT_EOL_CRLF), which also
 * takes a bare "\n" (handy for inline commands typed into nc); a bulk
 * string's LEN bytes come from a count terminator whose trailer is the
 * "\r\n" after them, so they may hold any bytes at all, and a bulk not
 * followed by "\r\n" is refused by the channel (on_event). */

static void on_frame(struct evchat *chat, const unsigned char *frame,
                     size_t len, void *arg);
static void on_big_bulk(struct evchat *chat, struct evbuffer *data, void *arg);
static void on_event(struct evchat *chat, short events, void *arg);

/* Malformed input: Redis answers with an error and closes, since after a
 * framing mistake nothing that follows can be trusted. */
static void protocol_error(struct client *c, const char *what)
{
	reply_error(c, "-ERR Protocol error: ", what, strlen(what), "");
	evchat_close_when_done(c->chat);
}

/* Lines, the frames between bulks: "*N", "$LEN", inline commands. */
static void expect_lines(struct client *c)
{
	evchat_set_frame_limit(c->chat, MAX_LINE, EVCHAT_LIMIT_CLOSE);
	evchat_set_terminator_line(c->chat, EVCHAT_EOL_CRLF);
}

/* Makes room for one more argument of len bytes. */
static int add_arg(struct client *c, size_t len)
{
	if (c->argc == c->argv_cap) {
		size_t cap = c->argv_cap ? 2 * c->argv_cap : 8;
		struct arg *argv = realloc(c->argv, cap * sizeof(*argv));
		if (argv == NULL)
			return -1;
		c->argv = argv;
		c->argv_cap = cap;
	}
	/* Made even for an empty first argument: the arguments point into
	 * it, and a command may pass them to memcpy() and the like. */
	if (c->args == NULL || len > c->args_cap - c->args_len) {
		size_t cap = c->args_cap ? c->args_cap : 256;
		while (cap - c->args_len < len)
			cap *= 2;
		char *args = realloc(c->args, cap);
		if (args == NULL)
			return -1;
		c->args = args;
		c->args_cap = cap;
	}
	c->argv[c->argc].off = c->args_len;
	c->argv[c->argc].len = len;
	c->argv[c->argc].own = NULL;
	c->argc++;
	return 0;
}

/* A "*N" or "$LEN" line: the number after the type byte. Returns -1 if
 * the rest of the line is not a number. */
static int line_number(const char *line, size_t len, long long *n)
{
	if (len < 2 || len > 24)
		return -1;
	return parse_ll(line + 1, len - 1, n);
}

/* An inline command: words separated by spaces, copied as arguments. */
static void read_inline(struct client *c, const char *line, size_t len)
{
	for (size_t i = 0; i < len;) {
		if (line[i] == ' ' || line[i] == '\t') {
			i++;
			continue;
		}
		size_t start = i;
		while (i < len && line[i] != ' ' && line[i] != '\t')
			i++;
		if (add_arg(c, i - start) < 0) {
			protocol_error(c, "out of memory");
			return;
		}
		memcpy(c->args + c->args_len, line + start, i - start);
		c->args_len += i - start;
	}
	if (c->argc > 0) /* a blank line is no command, as in Redis */
		execute(c);
}

static void read_request(struct client *c, const char *line, size_t len)
{
	if (len == 0)
		return; /* an empty line: ignored, as Redis does */
	if (line[0] != '*') {
		read_inline(c, line, len);
		return;
	}
	long long n;
	if (line_number(line, len, &n) < 0 || n > MAX_ARGS) {
		protocol_error(c, "invalid multibulk length");
		return;
	}
	if (n <= 0) /* "*0", "*-1" and the like are no command, in Redis */
		return;
	c->bulks_left = (size_t)n;
	c->state = READ_BULK_LEN;
}

static void read_bulk_len(struct client *c, const char *line, size_t len)
{
	char type = len > 0 ? line[0] : 0;
	if (type != '$') {
		char what[40];
		snprintf(what, sizeof(what), "expected '$', got '%c'",
		         type >= ' ' && type <= '~' ? type : '?');
		protocol_error(c, what);
		return;
	}
	long long bulk;
	if (line_number(line, len, &bulk) < 0 || bulk < 0 ||
	    (unsigned long long)bulk > c->server->max_bulk) {
		protocol_error(c, "invalid bulk length");
		return;
	}
	if ((size_t)bulk > MAX_COMMAND - c->args_len - c->own_len) {
		protocol_error(c, "request too big");
		return;
	}
	/* The next frame is the bulk's bytes, checked to be followed by
	 * CRLF. The frame limit must let it through; it is back to MAX_LINE
	 * afterwards. */
	c->bulk_len = (size_t)bulk;
	c->state = READ_BULK;
	evchat_set_frame_limit(c->chat, c->bulk_len, EVCHAT_LIMIT_CLOSE);
	evchat_set_terminator_count_trailer(c->chat, c->bulk_len, "\r\n", 2);
	if (c->bulk_len >= BIG_BULK) {
		c->state = READ_BIG_BULK;
		evchat_set_collect_cb(c->chat, on_big_bulk);
	}
}

/* Collect mode, for a big bulk: its bytes as they arrive. The buffer
 * grows with them (realloc() of a big block moves no bytes on glibc),
 * so a client announcing a huge bulk and sending little costs little. */
static void on_big_bulk(struct evchat *chat, struct evbuffer *data, void *arg)
{
	struct client *c = arg;
	(void)chat;
	size_t n = evbuffer_get_length(data); /* the count: never too many */
	if (n > c->big_cap - c->big_got) {
		size_t want = c->big_got + n,
		       cap = c->big_cap ? c->big_cap : 65536;
		while (cap < want)
			cap *= 2;
		if (cap > c->bulk_len)
			cap = c->bulk_len;
		char *big = realloc(c->big, cap);
		if (big == NULL) {
			protocol_error(c, "out of memory"); /* reads no more */
			return;
		}
		c->big = big;
		c->big_cap = cap;
	}
	evbuffer_remove(data, c->big + c->big_got, n);
	c->big_got += n;
}

/* An argument is in: the next one, or the request is complete. */
static void bulk_done(struct client *c)
{
	if (--c->bulks_left > 0) {
		c->state = READ_BULK_LEN;
		return;
	}
	c->state = READ_REQUEST;
	execute(c);
}

static void read_bulk(struct client *c, const char *bulk, size_t len)
{
	expect_lines(c); /* a count terminator, once reached, is "none" */
	if (add_arg(c, len) < 0) {
		protocol_error(c, "out of memory");
		return;
	}
	memcpy(c->args + c->args_len, bulk, len);
	c->args_len += len;
	bulk_done(c);
}

/* A big bulk's end: on_big_bulk() has its bytes, which the argument
 * takes over. */
static void read_big_bulk(struct client *c)
{
	expect_lines(c);
	evchat_set_collect_cb(c->chat, NULL);
	if (add_arg(c, 0) < 0) {
		protocol_error(c, "out of memory");
		return;
	}
	struct arg *a = &c->argv[c->argc - 1];
	a->len = c->bulk_len;
	a->own = c->big;
	c->own_len += c->bulk_len;
	c->big = NULL;
	c->big_got = c->big_cap = 0;
	bulk_done(c);
}

/* Frames come as bytes, lent where they lie in the channel's input: a
 * parser needs no buffer of its own for them. */
static void on_frame(struct evchat *chat, const unsigned char *frame,
                     size_t len, void *arg)
{
	struct client *c = arg;
	const char *text = (const char *)frame;
	if (c->state == READ_REQUEST)
		read_request(c, text, len);
	else if (c->state == READ_BULK_LEN)
		read_bulk_len(c, text, len);
	else if (c->state == READ_BULK)
		read_bulk(c, text, len);
	else
		read_big_bulk(c); /* collect mode: no frame */
	/* A client that pipelines requests without reading the replies
	 * would make us buffer without bound: stop reading from it until
	 * its replies drain (on_writable). Checked after every request (a
	 * frame that leaves the parser waiting for a request's start ended
	 * one), as one read may hold many; the frames within a request
	 * reply nothing. */
	if (c->state == READ_REQUEST && !evchat_is_writable(chat))
		evchat_pause_input(chat);
}

static void on_writable(struct evchat *chat, int writable, void *arg)
{
	(void)arg;
	if (writable)
		evchat_resume_input(chat);
}

/* ------------------------------------------------------------------ */
/* Connections. */

static void client_free(struct client *c)
{
	evchat_free(c->chat);
	drop_args(c); /* a request cut short may hold big bulks */
	free(c->big);
	free(c->argv);
	free(c->args);
	free(c);
}

static void client_forget(struct client *c)
{
	struct server *server = c->server;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		server->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	client_free(c);
	/* The last connection flushed during shutdown ends the loop. */
	if (server->stopping && server->clients == NULL)
		event_base_loopbreak(server->base);
}

static void on_event(struct evchat *chat, short events, void *arg)
{
	struct client *c = arg;
	if (events & EVCHAT_EVENT_EOF) {
		/* The client is done sending: replies to the complete requests
		 * it sent are queued already; deliver them, then close. A
		 * half-sent request is dropped. */
		evchat_close_when_done(chat);
		return;
	}
	if (events & EVCHAT_EVENT_FRAME_INVALID) {
		/* The only frames that can be invalid here: bulks. */
		protocol_error(c, "bulk string not followed by CRLF");
		return;
	}
	if (events & EVCHAT_EVENT_FRAME_TOO_LONG) {
		/* A line over MAX_LINE (bulks never exceed their limit: it is
		 * set to their exact size). */
		protocol_error(c, c->state == READ_REQUEST
		                      ? "too big inline request"
		                      : "too big bulk count string");
		return;
	}
	/* A client that goes away without reading all its replies resets
	 * the connection (redis-benchmark does at exit): that is routine. */
	if ((events & EVCHAT_EVENT_ERROR) && errno != ECONNRESET &&
	    errno != EPIPE)
		fprintf(stderr, "resp: connection error: %s\n",
		        strerror(errno));
	/* Closed or failed: freeing from inside the hook is safe. */
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
	c->server = server;
	c->chat = chat;
	c->state = READ_REQUEST;
	c->next = server->clients;
	if (server->clients != NULL)
		server->clients->prev = c;
	server->clients = c;

	/* (The listener turned Nagle's algorithm off for this socket, as
	 * Redis does: replies to one pipelined batch may leave in several
	 * writes, and each would otherwise wait up to 40 ms for an ACK.) */

	evchat_setcb_bytes(chat, NULL, on_frame, on_event, c);
	evchat_set_writable_cb(chat, on_writable);
	expect_lines(c);
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

static void usage(FILE *to)
{
	fprintf(to, "usage: resp [-p PORT] [-m MAX_BULK]\n"
	            "  -p PORT      TCP port on 127.0.0.1 (0 picks a free one;"
	            " default 6379)\n"
	            "  -m MAX_BULK  longest bulk string accepted in bytes "
	            "(default 536870912)\n");
}

int main(int argc, char **argv)
{
	long port = 6379;
	long long max_bulk = (long long)DEFAULT_MAX_BULK;
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
		errno = 0;
		long long n = strtoll(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0' || n < 0 ||
		    (opt[1] == 'p' && n > 65535) ||
		    (opt[1] == 'm' && (unsigned long long)n > MAX_COMMAND)) {
			fprintf(stderr, "resp: bad value for %s: %s\n", opt,
			        value);
			usage(stderr);
			return 2;
		}
		if (opt[1] == 'p')
			port = (long)n;
		else
			max_bulk = n;
	}

	struct server server;
	memset(&server, 0, sizeof(server));
	server.max_bulk = (size_t)max_bulk;
	server.store.mask = 63; /* 64 buckets to start with */
	server.store.buckets = calloc(64, sizeof(*server.store.buckets));
	if (server.store.buckets == NULL) {
		fprintf(stderr, "resp: out of memory\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);

	server.base = event_base_new();
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* No callback: evchat_listener_new() sets its own, and keeps
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
		fprintf(stderr, "resp: cannot listen on port %ld: %s\n", port,
		        strerror(errno));
		return 1;
	}
	server.listener = evchat_listener_new(lev, 0, on_accept, &server);
	if (server.listener == NULL) {
		fprintf(stderr, "resp: %s\n", strerror(errno));
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
		server.clients = c->next;
		client_free(c);
	}
	event_free(sigint);
	event_free(sigterm);
	evchat_listener_free(server.listener);
	event_base_free(server.base);
	/* What the library keeps for this thread's reads: a leak checker
	 * then finds nothing left. */
	evchat_thread_cleanup();
	store_free(&server.store);
	return 0;
}
