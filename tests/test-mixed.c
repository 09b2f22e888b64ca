/*
 * Mixed streams: real protocols switch terminators at every frame
 * boundary, from the found hook, between strings, counts, line endings,
 * length fields and none. Each test here runs a small protocol parser as
 * the found hook over a recorded stream, cut at every byte and sent a
 * byte at a time, in frame and collect mode, and expects the same parse
 * every time: the frames must depend on the bytes and the terminators
 * only, never on where the reads happened to end.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "helpers.h"
#include "suites.h"

/* The last frame the recorder got: a pointer into its buffer, valid
 * until the next frame. */
static const char *last_frame(const struct recorder *rec, size_t *len)
{
	size_t total = evbuffer_get_length(rec->frames);
	ck_assert_uint_gt(rec->nframes, 0);
	*len = rec->frame_len[rec->nframes - 1];
	if (total == 0)
		return "";
	return (const char *)evbuffer_pullup(rec->frames, -1) + total - *len;
}

/* Where each item of a stream (a request, a command, a frame) ends, and
 * how long the expected parse is once it is complete. */
#define MAX_ITEMS 32
struct milestones {
	size_t n;
	size_t end[MAX_ITEMS];    /* the stream offset after item i */
	size_t parsed[MAX_ITEMS]; /* the expected parse's length then */
};

static void milestone(struct milestones *m, size_t end, size_t parsed)
{
	ck_assert_uint_lt(m->n, MAX_ITEMS);
	m->end[m->n] = end;
	m->parsed[m->n] = parsed;
	m->n++;
}

/* How many items are complete once `sent` bytes of the stream are in. */
static size_t items_in(const struct milestones *m, size_t sent)
{
	size_t k = 0;
	while (k < m->n && m->end[k] <= sent)
		k++;
	return k;
}

/* The parse so far: exactly the items whose bytes are all in, so no
 * frame waits for bytes it does not need, and none comes early. */
static void expect_parsed_at(struct evbuffer *parsed,
                             const struct milestones *m, struct evbuffer *want,
                             size_t sent)
{
	size_t k = items_in(m, sent);
	char what[48];
	snprintf(what, sizeof(what), "parsed after %zu bytes", sent);
	expect_bytes(what, parsed, evbuffer_pullup(want, -1),
	             k ? m->parsed[k - 1] : 0);
}

/* Sends the stream in two writes cut at `cut`, or one byte per write
 * when cut > len, calling check() after every write but the last. */
static void send_cut(struct harness *h, const char *data, size_t len,
                     size_t cut, void (*check)(void *ctx, size_t sent),
                     void *ctx)
{
	if (cut > len) {
		for (size_t i = 0; i < len; i++) {
			write_all(h->c.peer, data + i, 1);
			run_pending(h->base);
			if (i + 1 < len)
				check(ctx, i + 1);
		}
		return;
	}
	if (cut > 0) {
		write_all(h->c.peer, data, cut);
		run_pending(h->base);
		if (cut < len)
			check(ctx, cut);
	}
	if (cut < len) {
		write_all(h->c.peer, data + cut, len - cut);
		run_pending(h->base);
	}
}

/* Over TCP a stream may arrive in any pieces: waits until the parser has
 * seen everything (no new frame for a while) or an event came. */
static void settle(struct harness *h)
{
	size_t seen = (size_t)-1;
	long long end = now_ms() + 2000;
	while (h->rec.nframes != seen && h->rec.nevents == 0 &&
	       now_ms() < end) {
		seen = h->rec.nframes;
		run_for(h->base, 20);
	}
}

static void set_line(struct evchat *chat, enum evchat_eol eol)
{
	ck_assert_int_eq(evchat_set_terminator_line(chat, eol), 0);
}

static void set_count(struct evchat *chat, ev_uint64_t n)
{
	ck_assert_int_eq(evchat_set_terminator_count(chat, n), 0);
}

/* ------------------------------------------------------------------ */
/* HTTP/1.1: lines, Content-Length and chunked bodies, pipelined */

enum http_state {
	H_REQUEST_LINE,
	H_HEADERS,
	H_BODY,
	H_CHUNK_SIZE,
	H_CHUNK_DATA,
	H_CHUNK_END,
	H_TRAILERS
};

struct http_parser {
	/* How a chunk's data is framed: 0, a count of size + 2 that holds
	 * the CRLF after it; 1, a count of size, then a strict CRLF line
	 * that must be empty. */
	int chunk_style;
	enum http_state state;
	long content_length;
	int chunked;
	char method[16];
	char path[64];
	ev_uint64_t chunk;
	struct evbuffer *body;
	struct evbuffer *trailers;
	struct evbuffer *parsed; /* the requests so far, see http_render() */
};

/* One request as the tests compare it. */
static void http_render(struct evbuffer *out, const char *method,
                        const char *path, const void *body, size_t body_len,
                        const char *trailers)
{
	evbuffer_add_printf(out, "%s %s body[%zu]=", method, path, body_len);
	evbuffer_add(out, body, body_len);
	evbuffer_add_printf(out, " trailers=%s\n", trailers);
}

static void http_request_done(struct http_parser *hp, struct evchat *chat)
{
	evbuffer_add(hp->trailers, "", 1); /* a C string */
	size_t body_len = evbuffer_get_length(hp->body);
	http_render(hp->parsed, hp->method, hp->path,
	            body_len ? evbuffer_pullup(hp->body, -1) : (void *)"",
	            body_len, (const char *)evbuffer_pullup(hp->trailers, -1));
	evbuffer_drain(hp->body, (size_t)-1);
	evbuffer_drain(hp->trailers, (size_t)-1);
	hp->state = H_REQUEST_LINE;
	set_line(chat, EVCHAT_EOL_CRLF);
}

static int header_is(const char *line, size_t len, const char *name,
                     const char **value)
{
	size_t n = strlen(name);
	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return 0;
	*value = line + n + 1;
	while (*value < line + len && **value == ' ')
		(*value)++;
	return 1;
}

static void http_found(struct evchat *chat, struct recorder *rec)
{
	struct http_parser *hp = rec->user;
	size_t len;
	const char *f = last_frame(rec, &len);
	char line[128];
	const char *value;

	ck_assert_int_eq(evchat_frame_is_partial(chat), 0);
	switch (hp->state) {
	case H_REQUEST_LINE:
		/* An empty line before a request is ignored (RFC 9112). */
		if (len == 0)
			return;
		ck_assert_uint_lt(len, sizeof(line));
		memcpy(line, f, len);
		line[len] = '\0';
		ck_assert_int_eq(sscanf(line, "%15s %63s", hp->method,
		                        hp->path),
		                 2);
		hp->content_length = -1;
		hp->chunked = 0;
		hp->state = H_HEADERS;
		break;
	case H_HEADERS:
		if (len > 0) {
			ck_assert_uint_lt(len, sizeof(line));
			memcpy(line, f, len);
			line[len] = '\0';
			if (header_is(line, len, "Content-Length", &value))
				hp->content_length = strtol(value, NULL, 10);
			else if (header_is(line, len, "Transfer-Encoding",
			                   &value))
				hp->chunked = strcasecmp(value, "chunked") == 0;
		} else if (hp->chunked) {
			hp->state = H_CHUNK_SIZE;
		} else if (hp->content_length >= 0) {
			/* Content-Length: 0 gives an empty frame at once. */
			hp->state = H_BODY;
			set_count(chat, (ev_uint64_t)hp->content_length);
		} else {
			http_request_done(hp, chat);
		}
		break;
	case H_BODY:
		evbuffer_add(hp->body, f, len);
		http_request_done(hp, chat);
		break;
	case H_CHUNK_SIZE:
		ck_assert_uint_lt(len, sizeof(line));
		memcpy(line, f, len);
		line[len] = '\0';
		ck_assert_msg(isxdigit((unsigned char)line[0]),
		              "%s: chunk size line \"%s\"", test_ctx, line);
		hp->chunk = strtoull(line, NULL, 16); /* stops at ";ext" */
		if (hp->chunk == 0) {
			hp->state = H_TRAILERS;
		} else {
			hp->state = H_CHUNK_DATA;
			set_count(chat, hp->chunk + (hp->chunk_style ? 0 : 2));
		}
		break;
	case H_CHUNK_DATA:
		if (hp->chunk_style == 0) {
			ck_assert_uint_eq(len, hp->chunk + 2);
			ck_assert_msg(memcmp(f + len - 2, "\r\n", 2) == 0,
			              "%s: chunk data without CRLF", test_ctx);
			evbuffer_add(hp->body, f, len - 2);
			hp->state = H_CHUNK_SIZE;
			set_line(chat, EVCHAT_EOL_CRLF);
		} else {
			ck_assert_uint_eq(len, hp->chunk);
			evbuffer_add(hp->body, f, len);
			hp->state = H_CHUNK_END;
			set_line(chat, EVCHAT_EOL_CRLF_STRICT);
		}
		break;
	case H_CHUNK_END:
		ck_assert_msg(len == 0, "%s: %zu bytes after chunk data",
		              test_ctx, len);
		hp->state = H_CHUNK_SIZE;
		set_line(chat, EVCHAT_EOL_CRLF);
		break;
	case H_TRAILERS:
		if (len == 0) {
			http_request_done(hp, chat);
		} else {
			if (evbuffer_get_length(hp->trailers) > 0)
				evbuffer_add(hp->trailers, ";", 1);
			evbuffer_add(hp->trailers, f, len);
		}
		break;
	}
}

/* Five pipelined requests: a GET (one header line ending in a bare LF),
 * a POST whose body holds a CRLF, a POST with Content-Length: 0, a
 * chunked POST (3 chunks, one with an extension, data with CRLF, NUL and
 * 0xff in it, a trailer), and a GET in bare LF lines. */
static const struct http_request {
	const char *wire;
	size_t wire_len;
	const char *method, *path;
	const char *body;
	size_t body_len;
	const char *trailers;
} http_requests[] = {
	{ LIT("GET /index.html HTTP/1.1\r\n"
	      "Host: example.com\r\n"
	      "Accept: */*\n"
	      "\r\n"),
	  "GET", "/index.html", LIT(""), "" },
	{ LIT("POST /submit HTTP/1.1\r\n"
	      "Host: example.com\r\n"
	      "Content-Length: 13\r\n"
	      "\r\n"
	      "hello\r\nworld!"),
	  "POST", "/submit", LIT("hello\r\nworld!"), "" },
	{ LIT("POST /empty HTTP/1.1\r\n"
	      "content-length: 0\r\n"
	      "\r\n"),
	  "POST", "/empty", LIT(""), "" },
	{ LIT("POST /upload HTTP/1.1\r\n"
	      "Transfer-Encoding: chunked\r\n"
	      "\r\n"
	      "7\r\n"
	      "ab\r\ncde\r\n"
	      "1a;name=value\r\n"
	      "abcdefghijklmnopqrstuvwxyz\r\n"
	      "3\r\n"
	      "\0\xff\n\r\n"
	      "0\r\n"
	      "Expires: never\r\n"
	      "\r\n"),
	  "POST", "/upload", LIT("ab\r\ncdeabcdefghijklmnopqrstuvwxyz\0\xff\n"),
	  "Expires: never" },
	{ LIT("GET /last HTTP/1.1\n"
	      "Host: b\n"
	      "\n"),
	  "GET", "/last", LIT(""), "" },
};
#define NHTTP (sizeof(http_requests) / sizeof(http_requests[0]))

/* The pipeline on the wire, and what the parser should make of it. */
static void http_build(struct evbuffer *wire, struct evbuffer *want,
                       struct milestones *m)
{
	ck_assert_ptr_nonnull(wire);
	ck_assert_ptr_nonnull(want);
	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < NHTTP; i++) {
		const struct http_request *r = &http_requests[i];
		evbuffer_add(wire, r->wire, r->wire_len);
		http_render(want, r->method, r->path, r->body, r->body_len,
		            r->trailers);
		milestone(m, evbuffer_get_length(wire),
		          evbuffer_get_length(want));
	}
}

static struct harness *http_harness(struct http_parser *hp, int collect,
                                    int tcp, int chunk_style)
{
	struct harness *h = harness_new(collect, tcp);
	memset(hp, 0, sizeof(*hp));
	hp->chunk_style = chunk_style;
	hp->body = evbuffer_new();
	hp->trailers = evbuffer_new();
	hp->parsed = evbuffer_new();
	ck_assert_ptr_nonnull(hp->body);
	ck_assert_ptr_nonnull(hp->trailers);
	ck_assert_ptr_nonnull(hp->parsed);
	h->rec.user = hp;
	h->rec.on_found = http_found;
	set_line(h->chat, EVCHAT_EOL_CRLF);
	return h;
}

struct http_run {
	struct http_parser *hp;
	struct milestones *m;
	struct evbuffer *want;
};

static void http_progress(void *ctx, size_t sent)
{
	struct http_run *run = ctx;
	expect_parsed_at(run->hp->parsed, run->m, run->want, sent);
}

static void http_check(struct harness *h, struct http_parser *hp,
                       struct evbuffer *want)
{
	expect_bytes("parsed", hp->parsed, evbuffer_pullup(want, -1),
	             evbuffer_get_length(want));
	ck_assert_int_eq(hp->state, H_REQUEST_LINE);
	ck_assert_uint_eq(evbuffer_get_length(unfinished(h)), 0);
	ck_assert_uint_eq(h->rec.nevents, 0);
}

static void http_parser_free(struct http_parser *hp)
{
	evbuffer_free(hp->body);
	evbuffer_free(hp->trailers);
	evbuffer_free(hp->parsed);
}

/* Both HTTP tests end a run alike: the whole parse checked, then freed. */
static void http_check_and_free(struct harness *h, struct http_parser *hp,
                                struct evbuffer *want)
{
	http_check(h, hp, want);
	http_parser_free(hp);
	harness_free(h);
}

/* _i: mode x chunk style. Two writes cut at every byte, then one byte
 * per write; after each write, the requests complete so far. */
START_TEST(test_http_pipeline)
{
	int collect = _i % 2, style = _i / 2;
	struct evbuffer *wire = evbuffer_new(), *want = evbuffer_new();
	struct milestones m;
	http_build(wire, want, &m);
	size_t len = evbuffer_get_length(wire);
	const char *data = (const char *)evbuffer_pullup(wire, -1);
	for (size_t cut = 0; cut <= len + 1; cut++) {
		note("HTTP, %s mode, chunk style %d, %s %zu",
		     collect ? "collect" : "frame", style,
		     cut > len ? "1-byte writes" : "cut at", cut);
		struct http_parser hp;
		struct harness *h = http_harness(&hp, collect, 0, style);
		struct http_run run = { &hp, &m, want };
		send_cut(h, data, len, cut, http_progress, &run);
		http_check_and_free(h, &hp, want);
	}
	evbuffer_free(wire);
	evbuffer_free(want);
}
END_TEST

/* _i: mode x chunk style. The same over loopback TCP, in one write. */
START_TEST(test_http_pipeline_tcp)
{
	int collect = _i % 2, style = _i / 2;
	struct evbuffer *wire = evbuffer_new(), *want = evbuffer_new();
	struct milestones m;
	http_build(wire, want, &m);
	note("HTTP over TCP, %s mode, chunk style %d",
	     collect ? "collect" : "frame", style);
	struct http_parser hp;
	struct harness *h = http_harness(&hp, collect, 1, style);
	write_all(h->c.peer, evbuffer_pullup(wire, -1),
	          evbuffer_get_length(wire));
	settle(h);
	http_check_and_free(h, &hp, want);
	evbuffer_free(wire);
	evbuffer_free(want);
}
END_TEST

/* ------------------------------------------------------------------ */
/* RESP (Redis): arrays of bulk strings and inline commands */

enum resp_state { R_TOP, R_BULK_LEN, R_BULK, R_BULK_END };

struct resp_parser {
	int bulk_style; /* as chunk_style above, for a bulk string's CRLF */
	enum resp_state state;
	long nargs, argi;
	ev_uint64_t bulk_len;
	struct evbuffer *args;   /* the command being read */
	struct evbuffer *parsed; /* the commands so far */
};

static void resp_arg(struct evbuffer *out, const void *p, size_t len)
{
	evbuffer_add_printf(out, " %zu:", len);
	evbuffer_add(out, p, len);
}

static void resp_command_done(struct resp_parser *rp, struct evchat *chat)
{
	evbuffer_add_printf(rp->parsed, "cmd");
	evbuffer_add_buffer(rp->parsed, rp->args);
	evbuffer_add(rp->parsed, "\n", 1);
	rp->state = R_TOP;
	set_line(chat, EVCHAT_EOL_CRLF);
}

static void resp_arg_done(struct resp_parser *rp, struct evchat *chat)
{
	if (++rp->argi == rp->nargs) {
		resp_command_done(rp, chat);
	} else {
		rp->state = R_BULK_LEN;
		set_line(chat, EVCHAT_EOL_CRLF_STRICT);
	}
}

static void resp_found(struct evchat *chat, struct recorder *rec)
{
	struct resp_parser *rp = rec->user;
	size_t len;
	const char *f = last_frame(rec, &len);
	char line[64];

	switch (rp->state) {
	case R_TOP:
		if (len == 0)
			return;
		if (f[0] == '*') {
			ck_assert_uint_lt(len, sizeof(line));
			memcpy(line, f, len);
			line[len] = '\0';
			rp->nargs = strtol(line + 1, NULL, 10);
			rp->argi = 0;
			if (rp->nargs <= 0) {
				resp_command_done(rp, chat);
			} else {
				rp->state = R_BULK_LEN;
				set_line(chat, EVCHAT_EOL_CRLF_STRICT);
			}
			return;
		}
		/* An inline command: words separated by spaces. */
		for (size_t i = 0; i < len;) {
			size_t j = i;
			while (j < len && f[j] != ' ')
				j++;
			if (j > i)
				resp_arg(rp->args, f + i, j - i);
			i = j + 1;
		}
		evbuffer_add_printf(rp->parsed, "inline");
		evbuffer_add_buffer(rp->parsed, rp->args);
		evbuffer_add(rp->parsed, "\n", 1);
		break;
	case R_BULK_LEN:
		ck_assert_msg(len > 1 && len < sizeof(line) && f[0] == '$',
		              "%s: bulk length line of %zu bytes", test_ctx,
		              len);
		memcpy(line, f, len);
		line[len] = '\0';
		rp->bulk_len = strtoull(line + 1, NULL, 10);
		rp->state = R_BULK;
		set_count(chat, rp->bulk_len + (rp->bulk_style ? 0 : 2));
		break;
	case R_BULK:
		if (rp->bulk_style == 0) {
			ck_assert_uint_eq(len, rp->bulk_len + 2);
			ck_assert_msg(memcmp(f + len - 2, "\r\n", 2) == 0,
			              "%s: bulk string without CRLF", test_ctx);
			resp_arg(rp->args, f, len - 2);
			resp_arg_done(rp, chat);
		} else {
			ck_assert_uint_eq(len, rp->bulk_len);
			resp_arg(rp->args, f, len);
			rp->state = R_BULK_END;
			set_line(chat, EVCHAT_EOL_CRLF_STRICT);
		}
		break;
	case R_BULK_END:
		ck_assert_msg(len == 0, "%s: %zu bytes after a bulk string",
		              test_ctx, len);
		resp_arg_done(rp, chat);
		break;
	}
}

struct resp_command {
	int is_inline;   /* sent as a line; else as an array */
	const char *eol; /* inline: "\r\n" or "\n" */
	size_t nargs;
	struct span args[4];
};

/* A pipeline: inline commands with either ending, bulk strings holding
 * CRLF, NUL and 0xff, an empty bulk string, one that is just "\n", and
 * an empty array. */
static const struct resp_command resp_commands[] = {
	{ 1, "\r\n", 1, { { LIT("PING") } } },
	{ 0, NULL, 1, { { LIT("PING") } } },
	{ 0,
	  NULL,
	  3,
	  { { LIT("SET") },
	    { LIT("key") },
	    { LIT("v\r\n\0\xff\r\n$3\r\n*1") } } },
	{ 1, "\n", 1, { { LIT("PING") } } },
	{ 0, NULL, 2, { { LIT("GET") }, { LIT("key") } } },
	{ 0, NULL, 3, { { LIT("SET") }, { LIT("") }, { LIT("\n") } } },
	{ 1,
	  "\r\n",
	  3,
	  { { LIT("ECHO") }, { LIT("hello") }, { LIT("world") } } },
	{ 0, NULL, 0, { { NULL, 0 } } },
	{ 0, NULL, 2, { { LIT("ECHO") }, { LIT("0123456789abcdef") } } },
};
#define NRESP (sizeof(resp_commands) / sizeof(resp_commands[0]))

static void resp_build(struct evbuffer *wire, struct evbuffer *want,
                       struct milestones *m)
{
	memset(m, 0, sizeof(*m));
	for (size_t c = 0; c < NRESP; c++) {
		const struct resp_command *rc = &resp_commands[c];
		evbuffer_add_printf(want, rc->is_inline ? "inline" : "cmd");
		if (rc->is_inline) {
			for (size_t a = 0; a < rc->nargs; a++) {
				evbuffer_add_printf(wire, a ? " %s" : "%s",
				                    rc->args[a].p);
				resp_arg(want, rc->args[a].p, rc->args[a].len);
			}
			evbuffer_add_printf(wire, "%s", rc->eol);
		} else {
			evbuffer_add_printf(wire, "*%zu\r\n", rc->nargs);
			for (size_t a = 0; a < rc->nargs; a++) {
				evbuffer_add_printf(wire, "$%zu\r\n",
				                    rc->args[a].len);
				evbuffer_add(wire, rc->args[a].p,
				             rc->args[a].len);
				evbuffer_add(wire, "\r\n", 2);
				resp_arg(want, rc->args[a].p, rc->args[a].len);
			}
		}
		evbuffer_add(want, "\n", 1);
		milestone(m, evbuffer_get_length(wire),
		          evbuffer_get_length(want));
	}
}

struct resp_run {
	struct resp_parser *rp;
	struct milestones *m;
	struct evbuffer *want;
};

static void resp_progress(void *ctx, size_t sent)
{
	struct resp_run *run = ctx;
	expect_parsed_at(run->rp->parsed, run->m, run->want, sent);
}

/* _i: mode x bulk style. Two writes cut at every byte, then one byte
 * per write; after each write, the commands complete so far. */
START_TEST(test_resp_pipeline)
{
	int collect = _i % 2, style = _i / 2;
	struct evbuffer *wire = evbuffer_new(), *want = evbuffer_new();
	ck_assert_ptr_nonnull(wire);
	ck_assert_ptr_nonnull(want);
	struct milestones m;
	resp_build(wire, want, &m);
	size_t len = evbuffer_get_length(wire);
	const char *data = (const char *)evbuffer_pullup(wire, -1);
	for (size_t cut = 0; cut <= len + 1; cut++) {
		note("RESP, %s mode, bulk style %d, %s %zu",
		     collect ? "collect" : "frame", style,
		     cut > len ? "1-byte writes" : "cut at", cut);
		struct harness *h = harness_new(collect, 0);
		struct resp_parser rp;
		memset(&rp, 0, sizeof(rp));
		rp.bulk_style = style;
		rp.args = evbuffer_new();
		rp.parsed = evbuffer_new();
		ck_assert_ptr_nonnull(rp.args);
		ck_assert_ptr_nonnull(rp.parsed);
		h->rec.user = &rp;
		h->rec.on_found = resp_found;
		set_line(h->chat, EVCHAT_EOL_CRLF);
		struct resp_run run = { &rp, &m, want };
		send_cut(h, data, len, cut, resp_progress, &run);
		expect_bytes("parsed", rp.parsed, evbuffer_pullup(want, -1),
		             evbuffer_get_length(want));
		ck_assert_int_eq(rp.state, R_TOP);
		ck_assert_uint_eq(evbuffer_get_length(unfinished(h)), 0);
		ck_assert_uint_eq(h->rec.nevents, 0);
		evbuffer_free(rp.args);
		evbuffer_free(rp.parsed);
		harness_free(h);
	}
	evbuffer_free(wire);
	evbuffer_free(want);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Binary: length fields, lines, a string, a count, then none */

/* A 2-byte big-endian length of the payload, stripped. */
static const struct evchat_length_field len_a = { 0, 2, 0, 0, 2 };
/* A type byte, then a 4-byte little-endian length that counts itself;
 * only the type byte is stripped. */
static const struct evchat_length_field len_b = { 1, 4,
	                                          EVCHAT_LENGTH_LITTLE_ENDIAN,
	                                          -4, 1 };

enum bin_step {
	B_LEN_A,
	B_LEN_B,
	B_LF,
	B_CRLF_STRICT,
	B_STRING, /* "<<>>" */
	B_COUNT3,
	B_NONE
};

/* The terminator for each frame; the last, none, takes the rest. */
static const enum bin_step bin_script[] = {
	B_LEN_A,  B_LF,     B_STRING, B_LEN_B, B_LEN_A, B_CRLF_STRICT,
	B_COUNT3, B_STRING, B_LEN_B,  B_LF,    B_NONE,
};
#define NBIN (sizeof(bin_script) / sizeof(bin_script[0]))

static void bin_apply(struct evchat *chat, enum bin_step step)
{
	switch (step) {
	case B_LEN_A:
		ck_assert_int_eq(evchat_set_terminator_length(chat, &len_a), 0);
		break;
	case B_LEN_B:
		ck_assert_int_eq(evchat_set_terminator_length(chat, &len_b), 0);
		break;
	case B_LF:
		set_line(chat, EVCHAT_EOL_LF);
		break;
	case B_CRLF_STRICT:
		set_line(chat, EVCHAT_EOL_CRLF_STRICT);
		break;
	case B_STRING:
		ck_assert_int_eq(evchat_set_terminator(chat, LIT("<<>>")), 0);
		break;
	case B_COUNT3:
		set_count(chat, 3);
		break;
	default:
		ck_assert_int_eq(evchat_set_terminator_none(chat), 0);
		break;
	}
}

/* The found hook: the next frame's terminator, by the frame's number. */
static void bin_found(struct evchat *chat, struct recorder *rec)
{
	ck_assert_uint_lt(rec->nframes, NBIN);
	bin_apply(chat, bin_script[rec->nframes]);
}

struct bin_stream {
	struct evbuffer *wire;
	struct span frames[NBIN];
	char store[NBIN][64]; /* the frames' bytes */
	size_t end[NBIN];     /* where each frame ends in the stream */
	size_t rest_off;      /* where the unframed rest starts */
};

/* Adds one frame to the stream: its payload as the step frames it, and
 * the frame the channel should deliver. */
static void bin_add(struct bin_stream *b, size_t i, const char *payload,
                    size_t len)
{
	unsigned char head[5];
	char *want = b->store[i];
	size_t want_len = 0;
	ck_assert_uint_lt(len + 5, sizeof(b->store[i]));
	switch (bin_script[i]) {
	case B_LEN_A:
		head[0] = (unsigned char)(len >> 8);
		head[1] = (unsigned char)len;
		evbuffer_add(b->wire, head, 2);
		break;
	case B_LEN_B: {
		ev_uint32_t v = (ev_uint32_t)len + 4;
		head[0] = 'T';
		for (int k = 0; k < 4; k++)
			head[1 + k] = (unsigned char)(v >> (8 * k));
		evbuffer_add(b->wire, head, 5);
		memcpy(want, head + 1, 4); /* not stripped */
		want_len = 4;
		break;
	}
	default:
		break;
	}
	evbuffer_add(b->wire, payload, len);
	if (bin_script[i] == B_LF)
		evbuffer_add(b->wire, "\n", 1);
	else if (bin_script[i] == B_CRLF_STRICT)
		evbuffer_add(b->wire, "\r\n", 2);
	else if (bin_script[i] == B_STRING)
		evbuffer_add(b->wire, "<<>>", 4);
	memcpy(want + want_len, payload, len);
	b->frames[i].p = want;
	b->frames[i].len = want_len + len;
	b->end[i] = evbuffer_get_length(b->wire);
}

static void bin_build(struct bin_stream *b)
{
	memset(b, 0, sizeof(*b));
	b->wire = evbuffer_new();
	ck_assert_ptr_nonnull(b->wire);
	/* Payloads full of the other steps' terminators. */
	bin_add(b, 0,
	        LIT("\0\n\r\n\xff"
	            "bin"));
	bin_add(b, 1, LIT("a text line\r"));
	bin_add(b, 2, LIT("<<<>\n<<>"));
	bin_add(b, 3, LIT("\n\n\0\0\0\0T"));
	bin_add(b, 4, LIT(""));
	bin_add(b, 5, LIT("a\rb\nc\n\r"));
	bin_add(b, 6, LIT("<<>"));
	bin_add(b, 7, LIT(""));
	bin_add(b, 8, LIT("x"));
	bin_add(b, 9, LIT(""));
	b->rest_off = evbuffer_get_length(b->wire);
	evbuffer_add(b->wire, LIT("the rest\r\n\0\2 of the stream\n"));
}

struct bin_run {
	struct harness *h;
	struct bin_stream *b;
};

/* After each write: exactly the frames whose bytes are all in. */
static void bin_progress(void *ctx, size_t sent)
{
	struct bin_run *run = ctx;
	size_t k = 0;
	while (k < NBIN - 1 && run->b->end[k] <= sent)
		k++;
	ck_assert_msg(run->h->rec.nframes == k,
	              "%s: %zu frames after %zu bytes, want %zu", test_ctx,
	              run->h->rec.nframes, sent, k);
	expect_frames(&run->h->rec, run->b->frames, k);
}

/* _i: mode. Cut at every byte, then one byte per write; after the last
 * frame, the rest is gathered (or collected) under none, and kept at
 * EOF. */
START_TEST(test_binary_mixed)
{
	int collect = _i;
	struct bin_stream b;
	bin_build(&b);
	size_t len = evbuffer_get_length(b.wire);
	const char *data = (const char *)evbuffer_pullup(b.wire, -1);
	for (size_t cut = 0; cut <= len + 1; cut++) {
		note("binary, %s mode, %s %zu", collect ? "collect" : "frame",
		     cut > len ? "1-byte writes" : "cut at", cut);
		struct harness *h = harness_new(collect, 0);
		h->rec.on_found = bin_found;
		bin_apply(h->chat, bin_script[0]);
		struct bin_run run = { h, &b };
		send_cut(h, data, len, cut, bin_progress, &run);
		expect_frames(&h->rec, b.frames, NBIN - 1);
		ck_assert_int_eq(evchat_get_terminator(h->chat, NULL, NULL,
		                                       NULL),
		                 EVCHAT_TERM_NONE);
		expect_bytes("rest", unfinished(h), data + b.rest_off,
		             len - b.rest_off);
		conn_close_peer(&h->c);
		run_until_event(h, 2000);
		expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
		expect_bytes("rest at EOF", h->unfinished_at_event,
		             data + b.rest_off, len - b.rest_off);
		expect_frames(&h->rec, b.frames, NBIN - 1);
		harness_free(h);
	}
	evbuffer_free(b.wire);
}
END_TEST

Suite *mixed_suite(void)
{
	Suite *s = suite_create("mixed");
	TCase *tc;

	tc = tcase_create("http");
	tcase_add_loop_test(tc, test_http_pipeline, 0, 4);
	tcase_add_loop_test(tc, test_http_pipeline_tcp, 0, 4);
	suite_add_tcase(s, tc);

	tc = tcase_create("resp");
	tcase_add_loop_test(tc, test_resp_pipeline, 0, 4);
	suite_add_tcase(s, tc);

	tc = tcase_create("binary");
	tcase_add_loop_test(tc, test_binary_mixed, 0, 2);
	suite_add_tcase(s, tc);

	return s;
}
