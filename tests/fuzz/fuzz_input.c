/*
 * fuzz_input: the input path against a reference model.
 *
 * The fuzzer's bytes are a program. The first byte picks frame mode or
 * collect mode, direct or deferred pair callbacks, whether the channel
 * frees itself (EVCHAT_OPT_AUTOFREE), and whether frames come to a found
 * hook for buffers, one for bytes (evchat_setcb_bytes()) or both
 * (evchat_setcb_both()); then each op is an opcode byte and its
 * arguments:
 *
 *   feed N bytes (raw, or mapped onto "ab\r\n\0" so endings are common),
 *   set a string terminator (1-4 bytes), a count (with a trailer of 1-8
 *   bytes, read as a string op: see read_op()), none, a line ending, a
 *   length field (a preset or a layout of the fuzzer's, valid or not), a
 *   header decoder of the fuzzer's (MQTT's or WebSocket's, read as a
 *   length op so that older inputs keep their meaning: see read_op()),
 *   set the frame limit and policy, pause, resume, the peer's EOF,
 *   evchat_discard_buffers(), evchat_close_when_done(), evchat_free(),
 *   and "hook": the op after it is queued, and each found call (for a
 *   frame or a piece of a split one), and each event, runs the next
 *   queued op from inside the hook, as a protocol changes its terminator
 *   per frame or frees the channel on an event.
 *
 * The channel is on a bufferevent pair: each feed is written by the other
 * end and the loop runs until it is idle, so the library's own read path
 * frames every chunk as it arrives. The hooks write a transcript
 * ("F<len>:<bytes>|" a frame, "P..." a split piece, "D<n>|" a skipped
 * frame, "T|" too long, "I|" invalid, "E<len>:<bytes>|" EOF with what is
 * left, "X|" closed). The model below computes the transcript from the
 * same program, byte by byte, with plain arrays; after every op the two
 * must be equal, and so must the pending bytes and the terminator.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "evchat.h"
#include "fuzz-common.h"

/* ------------------------------------------------------------------ */
/* The program */

enum op_kind {
	OP_FEED,
	OP_FEED_SMALL,
	OP_STRING,
	OP_COUNT,
	OP_NONE,
	OP_LINE,
	OP_LENGTH,
	OP_LIMIT,
	OP_PAUSE,
	OP_RESUME,
	OP_PAUSE_RESUME, /* both, in one go (from a hook: a no-op pause) */
	OP_EOF,
	OP_HOOK,
	OP_DISCARD,
	OP_CLOSE,
	OP_FREE,
	NOPS,
	OP_NOTHING = NOPS, /* a hook's op that would make no sense there */
	OP_HEADER,         /* read from an OP_LENGTH byte: see read_op() */
	OP_COUNT_TRAILER   /* read from an OP_STRING byte: see read_op() */
};

/* How much of its header a decoder strips (struct hdr_conf). */
enum hdr_strip { STRIP_NONE, STRIP_ONE, STRIP_ALL };

/* A header decoder's arg. The table has each twice: the same behaviour
 * behind another arg is another terminator, which frames anew. */
struct hdr_conf {
	enum hdr_strip strip;
};

static struct hdr_conf hdr_confs[] = {
	{ STRIP_NONE }, { STRIP_ONE }, { STRIP_ALL },
	{ STRIP_NONE }, { STRIP_ONE }, { STRIP_ALL },
};
#define NHDR_CONFS (sizeof(hdr_confs) / sizeof(hdr_confs[0]))

struct op {
	enum op_kind kind;
	uint8_t bytes[255]; /* FEED, STRING, COUNT_TRAILER's trailer */
	size_t len;
	ev_uint64_t count;
	enum evchat_eol eol;
	struct evchat_length_field field;
	int field_valid;
	size_t max;
	enum evchat_limit_policy policy;
	int decoder; /* HEADER: an index in decoders[], or -1 for NULL */
	size_t max_header;
	struct hdr_conf *conf;
	int header_valid;
};

/* Layouts protocols use, and the arithmetic's edges. */
static const struct evchat_length_field presets[] = {
	{ 0, 1, 0, 0, 1 },                           /* 1 byte, stripped */
	{ 0, 2, 0, 0, 2 },                           /* 2 bytes BE */
	{ 0, 2, EVCHAT_LENGTH_LITTLE_ENDIAN, 0, 0 }, /* kept in the frame */
	{ 0, 4, 0, -4, 4 },                          /* counts itself */
	{ 2, 2, 0, -4, 4 },                          /* counts the header */
	{ 1, 1, 0, 2, 1 },                           /* a 2-byte trailer */
	{ 0, 8, EVCHAT_LENGTH_LITTLE_ENDIAN, 0, 8 },
	{ 0, 8, 0, INT64_MIN, 0 },
	{ 0, 8, 0, INT64_MAX, 8 },
	{ 3, 1, 0, -4, 0 },
};
#define NPRESETS (sizeof(presets) / sizeof(presets[0]))

static const char small_alphabet[] = { 'a', 'b', '\r', '\n', '\0' };

static void map_small(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)small_alphabet[p[i] % sizeof(small_alphabet)];
}

static int field_valid(const struct evchat_length_field *f)
{
	return (f->size == 1 || f->size == 2 || f->size == 4 || f->size == 8) &&
	       (f->flags & ~EVCHAT_LENGTH_LITTLE_ENDIAN) == 0 &&
	       f->strip <= f->offset + f->size;
}

/* ------------------------------------------------------------------ */
/* Header decoders (evchat_set_terminator_header()) */

/* The decoded header, with the strip its arg asks for. A first byte of
 * 0xb0 to 0xb4 asks for a result that breaks the rules: a size of 0, a
 * size over len, a strip over the size, a return value of 2 or -2. */
static int hdr_found(const unsigned char *bytes, size_t len, size_t size,
                     ev_uint64_t body, struct evchat_header *header,
                     const struct hdr_conf *conf)
{
	header->size = size;
	header->body = body;
	header->strip = conf->strip == STRIP_ALL   ? size
	                : conf->strip == STRIP_ONE ? 1
	                                           : 0;
	if (bytes[0] == 0xb0)
		header->size = 0;
	else if (bytes[0] == 0xb1)
		header->size = len + 1;
	else if (bytes[0] == 0xb2)
		header->strip = size + 1;
	else if (bytes[0] == 0xb3)
		return 2;
	else if (bytes[0] == 0xb4)
		return -2;
	return 1;
}

/* MQTT's fixed header: a type byte, then the body's length in 1 to 4
 * bytes of 7 bits, the low group first, 0x80 marking that one more
 * follows; a fifth length byte is invalid. */
static int decode_mqtt(const unsigned char *bytes, size_t len,
                       struct evchat_header *header, void *arg)
{
	ev_uint64_t body = 0;
	for (size_t i = 1; i <= 4; i++) {
		if (i >= len)
			return 0;
		body |= (ev_uint64_t)(bytes[i] & 0x7f) << (7 * (i - 1));
		if ((bytes[i] & 0x80) == 0)
			return hdr_found(bytes, len, i + 1, body, header, arg);
	}
	return -1;
}

/* WebSocket's: two bytes, the second's 7 low bits the body's length, or
 * 126 for a 16-bit length after them (invalid under 126), or 127 for a
 * 64-bit one (any value: bodies near 2^64 test the channel's sums);
 * then a 4-byte mask key when the second's top bit is set. */
static int decode_websocket(const unsigned char *bytes, size_t len,
                            struct evchat_header *header, void *arg)
{
	if (len < 2)
		return 0;
	ev_uint64_t body = bytes[1] & 0x7f;
	size_t ext = body == 126 ? 2 : body == 127 ? 8 : 0;
	size_t size = 2 + ext + ((bytes[1] & 0x80) ? 4 : 0);
	if (ext > 0 && len < 2 + ext)
		return 0;
	if (ext > 0) {
		body = 0;
		for (size_t i = 0; i < ext; i++)
			body = (body << 8) | bytes[2 + i];
		if (ext == 2 && body < 126)
			return -1;
	}
	if (len < size)
		return 0;
	return hdr_found(bytes, len, size, body, header, arg);
}

static const evchat_header_cb decoders[] = { decode_mqtt, decode_websocket };
#define NDECODERS (sizeof(decoders) / sizeof(decoders[0]))

/* A header op: the byte that made it one (see read_op()), then 3 more:
 * the header limit, the decoder's arg, and one left for later. */
static void read_header_op(struct reader *r, struct op *op, unsigned b)
{
	op->kind = OP_HEADER;
	op->decoder = (b & 0x3f) == 0x3f ? -1 : (int)((b & 1) % NDECODERS);
	/* Mostly the protocols' own limits and less (MQTT's 5, WebSocket's
	 * 14), now and then 0 (invalid) and far more. */
	unsigned v = next_byte(r) % 20;
	op->max_header = v < 16    ? v
	                 : v == 16 ? 5
	                 : v == 17 ? 14
	                 : v == 18 ? 255
	                           : SIZE_MAX;
	op->conf = &hdr_confs[next_byte(r) % NHDR_CONFS];
	(void)next_byte(r);
	op->header_valid = op->decoder >= 0 && op->max_header > 0;
}

/* A count: small ones, and a few past anything the input holds. */
static ev_uint64_t read_count(struct reader *r)
{
	unsigned b = next_byte(r);
	if (b < 250)
		return b;
	if (b < 255)
		return (ev_uint64_t)1 << (8 * (b - 250) + 24);
	return EV_UINT64_MAX;
}

/* Reads one op; `nested` for the op a hook runs (no hook in a hook). */
static void read_op(struct reader *r, struct op *op, int nested)
{
	memset(op, 0, sizeof(*op));
	op->kind = (enum op_kind)(next_byte(r) % NOPS);
	if (nested && (op->kind == OP_HOOK || op->kind == OP_FEED ||
	               op->kind == OP_FEED_SMALL || op->kind == OP_EOF))
		op->kind = OP_NOTHING;
	const uint8_t *p;
	unsigned b;
	switch (op->kind) {
	case OP_FEED:
	case OP_FEED_SMALL:
		b = next_byte(r);
		op->len = next_bytes(r, b ? b : 1, &p);
		memcpy(op->bytes, p, op->len);
		if (op->kind == OP_FEED_SMALL)
			map_small(op->bytes, op->len);
		break;
	case OP_STRING:
		b = next_byte(r);
		op->len = next_bytes(r, 1 + (b & 3), &p);
		memcpy(op->bytes, p, op->len);
		if (b & 4)
			map_small(op->bytes, op->len);
		/* One string op in eight sets a count with the string as
		 * its trailer (older inputs read on, most ops unchanged);
		 * half of those have up to 4 bytes more, which the channel
		 * keeps elsewhere. */
		if ((b & 0xe0) == 0xe0) {
			op->kind = OP_COUNT_TRAILER;
			if (b & 0x10) {
				size_t more = next_bytes(r, 4, &p);
				memcpy(op->bytes + op->len, p, more);
				op->len += more;
			}
			op->count = read_count(r);
		}
		break;
	case OP_COUNT:
		op->count = read_count(r);
		break;
	case OP_LINE:
		op->eol = (enum evchat_eol)(EVCHAT_EOL_LF + next_byte(r) % 4);
		break;
	case OP_LENGTH:
		b = next_byte(r);
		if (b >= 0xc0) {
			/* As many bytes as a layout of the fuzzer's, so that
			 * an older input that had one here reads on as
			 * before. */
			read_header_op(r, op, b);
			break;
		}
		if (b < 0x80) {
			op->field = presets[b % NPRESETS];
		} else {
			static const unsigned sizes[] = { 1, 2, 4, 8 };
			unsigned s = next_byte(r);
			op->field.offset = s & 3;
			op->field.size = sizes[(s >> 2) & 3];
			if (s & 0x40) /* now and then, an unsupported size */
				op->field.size = 3;
			op->field.flags = (s >> 4) & 3; /* 2 is unknown */
			op->field.adjust = (signed char)next_byte(r);
			op->field.strip = next_byte(r) % (op->field.offset +
			                                  op->field.size + 2);
		}
		op->field_valid = field_valid(&op->field);
		break;
	case OP_LIMIT:
		op->max = next_byte(r) % 40;
		op->policy = (enum evchat_limit_policy)(next_byte(r) % 3);
		break;
	default:
		break;
	}
}

#define MAX_HOOK_OPS 64

/* FUZZ_TRACE=1 in the environment prints the program as it runs, to
 * read a failing input. */
static void trace_op(const char *where, const struct op *op)
{
	static const char *const names[] = {
		"feed",    "feed-small", "string",        "count",
		"none",    "line",       "length",        "limit",
		"pause",   "resume",     "pause+resume",  "eof",
		"hook",    "discard",    "close",         "free",
		"nothing", "header",     "count+trailer",
	};
	fprintf(stderr, "%s%s", where, names[op->kind]);
	switch (op->kind) {
	case OP_FEED:
	case OP_FEED_SMALL:
	case OP_STRING:
		fprintf(stderr, " \"");
		for (size_t i = 0; i < op->len; i++)
			fprintf(stderr,
			        op->bytes[i] >= 0x20 && op->bytes[i] < 0x7f
			            ? "%c"
			            : "\\x%02x",
			        op->bytes[i]);
		fprintf(stderr, "\"");
		break;
	case OP_COUNT:
		fprintf(stderr, " %llu", (unsigned long long)op->count);
		break;
	case OP_COUNT_TRAILER:
		fprintf(stderr, " %llu \"", (unsigned long long)op->count);
		for (size_t i = 0; i < op->len; i++)
			fprintf(stderr, "\\x%02x", op->bytes[i]);
		fprintf(stderr, "\"");
		break;
	case OP_LINE:
		fprintf(stderr, " eol %d", (int)op->eol);
		break;
	case OP_LENGTH:
		fprintf(stderr,
		        " offset %zu size %u flags %u adjust %lld "
		        "strip %zu%s",
		        op->field.offset, op->field.size, op->field.flags,
		        (long long)op->field.adjust, op->field.strip,
		        op->field_valid ? "" : " (invalid)");
		break;
	case OP_LIMIT:
		fprintf(stderr, " %zu policy %d", op->max, (int)op->policy);
		break;
	case OP_HEADER:
		fprintf(stderr, " %s max_header %zu strip %s (arg %d)%s",
		        op->decoder < 0    ? "NULL"
		        : op->decoder == 0 ? "mqtt"
		                           : "websocket",
		        op->max_header,
		        op->conf->strip == STRIP_ALL   ? "all"
		        : op->conf->strip == STRIP_ONE ? "1"
		                                       : "0",
		        (int)(op->conf - hdr_confs),
		        op->header_valid ? "" : " (invalid)");
		break;
	default:
		break;
	}
	fputc('\n', stderr);
}

/* ------------------------------------------------------------------ */
/* The reference model */

struct model {
	int collect;
	struct bytes transit;   /* sent by the peer, not yet read */
	struct bytes in;        /* read, not yet framed */
	struct bytes hdr;       /* a length header being read (a decoder's
	                           stays in `in` until it is decoded) */
	struct bytes frame;     /* the current frame, as the limit counts it */
	struct bytes collected; /* collect mode: given to collect since the
	                           last found or skipped frame */
	struct bytes unhanded;  /* collect mode: joined the frame, not yet
	                           given to collect (a half-read header);
	                           evchat_get_pending() holds them */
	struct bytes log;

	enum evchat_term kind;
	uint8_t term[8]; /* a string, a line ending or a count's trailer */
	size_t term_len;
	int trailer;     /* COUNT: term must follow the count */
	int optional_cr; /* lenient CRLF */
	ev_uint64_t remaining;
	struct evchat_length_field field;
	int decoder; /* HEADER: the decoder, its limit and its arg */
	size_t max_header;
	struct hdr_conf *conf;
	int in_body;

	size_t max;
	enum evchat_limit_policy policy;
	int skipping;
	ev_uint64_t discarding;
	int recheck; /* the frame may be over the limit with no new byte */

	int reading; /* the bufferevent reads from the peer */
	int paused;
	int peer_done; /* the peer sent its EOF */
	int eof_pending;
	int read_done;
	int refused;
	int closing;
	int freed;
	int autofree; /* EVCHAT_OPT_AUTOFREE */

	const struct op *hooks;
	size_t nhooks, next_hook;
	unsigned term_gen;  /* bumped by every terminator change */
	unsigned input_gen; /* bumped by every discard */
};

static int m_blocked(const struct model *m)
{
	return m->freed || m->read_done || m->closing || m->paused;
}

/* Bytes added to the frame; in collect mode the hook sees them too. */
static void m_frame_add(struct model *m, const uint8_t *p, size_t n)
{
	bytes_add(&m->frame, p, n);
	if (m->collect)
		bytes_add(&m->collected, p, n);
}

static const struct bytes *m_user_bytes(const struct model *m)
{
	return m->collect ? &m->collected : &m->frame;
}

static void m_log_bytes(struct model *m, char tag, const struct bytes *b)
{
	bytes_printf(&m->log, "%c%zu:", tag, b->len);
	bytes_add(&m->log, b->p, b->len);
	bytes_add(&m->log, "|", 1);
}

static void m_apply(struct model *m, const struct op *op);

/* A hook that ends a frame runs the next queued op. */
static void m_hook(struct model *m)
{
	if (m->next_hook < m->nhooks)
		m_apply(m, &m->hooks[m->next_hook++]);
}

/* A frame, or a piece of one: either way the hook runs. */
static void m_deliver(struct model *m, int partial)
{
	m_log_bytes(m, partial ? 'P' : 'F', m_user_bytes(m));
	m->frame.len = 0;
	m->collected.len = 0;
	m_hook(m);
}

static void m_end_frame(struct model *m)
{
	if (!m->skipping) {
		m_deliver(m, 0);
		return;
	}
	m->skipping = 0;
	bytes_printf(&m->log, "D%llu|", (unsigned long long)m->discarding);
	m->discarding = 0;
	m->collected.len = 0;
	m_hook(m);
}

/* After an event that ends input, an AUTOFREE channel closes itself. */
static void m_input_ended(struct model *m)
{
	if (m->autofree && !m->freed)
		m->closing = 1;
}

static void m_refuse(struct model *m, char tag)
{
	m->read_done = m->refused = 1;
	m->reading = 0;
	m->in.len = m->hdr.len = m->frame.len = m->unhanded.len = 0;
	bytes_printf(&m->log, "%c|", tag);
	m_hook(m);
	m_input_ended(m);
}

static void m_start_skipping(struct model *m)
{
	m->skipping = 1;
	m->discarding = m->frame.len;
	m->frame.len = 0;
	m->unhanded.len = 0;
}

/* After a piece's hook: 1 to stop framing, 0 if the hook set a new
 * terminator (which frames what follows the piece: *used falls short),
 * -1 to go on. */
static int m_after_piece(const struct model *m, unsigned term_gen,
                         unsigned input_gen)
{
	if (m_blocked(m) || m->input_gen != input_gen)
		return 1;
	return m->term_gen != term_gen ? 0 : -1;
}

/* LIMIT_SPLIT, frame mode, the frame over the limit: full pieces go. 1
 * to stop framing, 0 if a piece's hook set a terminator (the rest goes
 * back to be framed anew), -1 to go on. */
static int m_split_gathered(struct model *m, unsigned input_gen)
{
	while (m->policy == EVCHAT_LIMIT_SPLIT && m->max != 0 &&
	       m->frame.len > m->max) {
		struct bytes piece = { m->frame.p, m->max, 0 };
		m_log_bytes(m, 'P', &piece);
		bytes_cut(&m->frame, m->max);
		unsigned term_gen = m->term_gen;
		m_hook(m);
		int after = m_after_piece(m, term_gen, input_gen);
		if (after == 0) {
			struct bytes rest = { 0 };
			bytes_add(&rest, m->frame.p, m->frame.len);
			bytes_add(&rest, m->in.p, m->in.len);
			m->frame.len = m->in.len = 0;
			bytes_add(&m->in, rest.p, rest.len);
			bytes_free(&rest);
		}
		if (after >= 0)
			return after;
	}
	return -1;
}

/* Moves n bytes from the front of `in` into the frame under the limit.
 * Nonzero: stop framing. */
static int m_gather(struct model *m, size_t n, size_t *used)
{
	unsigned input_gen = m->input_gen;
	*used = 0;
	while (n > 0) {
		if (m->skipping) {
			bytes_cut(&m->in, n);
			m->discarding += n;
			*used += n;
			return 0;
		}
		size_t size = m->frame.len;
		size_t take = n;
		if (m->max != 0 && size + n > m->max) {
			if (m->policy == EVCHAT_LIMIT_CLOSE) {
				m_refuse(m, 'T');
				return 1;
			}
			if (m->policy == EVCHAT_LIMIT_DISCARD) {
				m_start_skipping(m);
				continue;
			}
			if (size > m->max && !m->collect) {
				/* The limit was lowered under the frame. */
				int after = m_split_gathered(m, input_gen);
				if (after >= 0)
					return after;
				continue;
			}
			take = size < m->max ? m->max - size : 0;
		}
		m_frame_add(m, m->in.p, take);
		bytes_cut(&m->in, take);
		n -= take;
		*used += take;
		if (n > 0) {
			unsigned term_gen = m->term_gen;
			m_deliver(m, 1);
			int after = m_after_piece(m, term_gen, input_gen);
			if (after >= 0)
				return after;
		}
	}
	return 0;
}

/* Where the terminator first ends a frame in `in`: its offset and
 * length, or -1. */
static long m_find(const struct model *m, size_t *match_len)
{
	for (size_t i = 0; i + m->term_len <= m->in.len; i++) {
		if (memcmp(m->in.p + i, m->term, m->term_len) != 0)
			continue;
		*match_len = m->term_len;
		if (m->optional_cr && i > 0 && m->in.p[i - 1] == '\r') {
			*match_len = 2;
			return (long)i - 1;
		}
		return (long)i;
	}
	return -1;
}

/* How many bytes at the end of `in` could start a terminator. */
static size_t m_held(const struct model *m)
{
	if (m->optional_cr)
		return m->in.len > 0 && m->in.p[m->in.len - 1] == '\r';
	for (size_t k = m->term_len - 1; k > 0; k--)
		if (k <= m->in.len &&
		    memcmp(m->in.p + m->in.len - k, m->term, k) == 0)
			return k;
	return 0;
}

static int m_round_string(struct model *m)
{
	size_t match_len, used;
	long at = m_find(m, &match_len);
	if (at < 0) {
		size_t held = m_held(m);
		size_t want = m->in.len > held ? m->in.len - held : 0;
		if (want > 0 && !m_gather(m, want, &used) && used < want)
			return 0; /* a new terminator frames the rest */
		return 1;
	}
	if (m_gather(m, (size_t)at, &used))
		return 1;
	if (used < (size_t)at)
		return 0;
	bytes_cut(&m->in, match_len);
	m_end_frame(m);
	return 0;
}

static int m_round_count(struct model *m)
{
	size_t n = m->in.len < m->remaining ? m->in.len : (size_t)m->remaining;
	size_t used;
	unsigned term_gen = m->term_gen;
	int stop = m_gather(m, n, &used);
	if (m->term_gen != term_gen)
		return stop; /* a piece's hook set a terminator */
	m->remaining -= used;
	if (stop)
		return 1;
	if (m->remaining > 0 || m->trailer)
		return 0; /* the trailer is checked next round */
	m->kind = EVCHAT_TERM_NONE;
	m_end_frame(m);
	return 0;
}

/* The count was reached: its trailer must come next, byte for byte;
 * the first wrong one is refused at once. Nonzero: stop framing. */
static int m_round_trailer(struct model *m)
{
	size_t n = m->in.len < m->term_len ? m->in.len : m->term_len;
	if (n > 0 && memcmp(m->in.p, m->term, n) != 0) {
		m_refuse(m, 'I');
		return 1;
	}
	if (n < m->term_len)
		return 1;
	bytes_cut(&m->in, n);
	m->kind = EVCHAT_TERM_NONE;
	m->trailer = 0;
	m_end_frame(m);
	return 0;
}

/* The header in hdr was decoded: what is not stripped joins the frame
 * (after bytes gathered before the terminator was set), and the limit
 * applies to the whole frame as soon as its length is known. */
static int m_header_read(struct model *m, size_t strip, ev_uint64_t body)
{
	m->in_body = 1;
	m->remaining = body;
	const uint8_t *kept = m->hdr.p + strip;
	size_t nkept = m->hdr.len - strip;
	m->hdr.len = 0;
	if (m->skipping) {
		/* A frame being skipped goes on being skipped, the kept
		 * header bytes with it. */
		m->discarding += nkept;
		return 0;
	}
	bytes_add(&m->frame, kept, nkept);
	/* In 128 bits: a decoder's body may be near 2^64. */
	unsigned __int128 delivered = (unsigned __int128)m->frame.len + body;
	if (m->max != 0 && delivered > m->max) {
		if (m->policy == EVCHAT_LIMIT_CLOSE) {
			m_refuse(m, 'T');
			return 1;
		}
		if (m->policy == EVCHAT_LIMIT_DISCARD) {
			m_start_skipping(m);
			return 0;
		}
	}
	if (m->collect)
		bytes_add(&m->collected, kept, nkept);
	return 0;
}

/* The header is in hdr: decode it, plainly, in 128 bits. */
static int m_header_done(struct model *m)
{
	const struct evchat_length_field *f = &m->field;
	unsigned __int128 value = 0;
	for (unsigned i = 0; i < f->size; i++) {
		size_t at = f->offset +
		            ((f->flags & EVCHAT_LENGTH_LITTLE_ENDIAN)
		                 ? f->size - 1 - i
		                 : i);
		value = value * 256 + m->hdr.p[at];
	}
	__int128 header = (__int128)(f->offset + f->size);
	__int128 wire = header + (__int128)value + f->adjust;
	if (wire < header) {
		m_refuse(m, 'I');
		return 1;
	}
	if (wire > (__int128)EV_UINT64_MAX)
		wire = (__int128)EV_UINT64_MAX;
	return m_header_read(m, f->strip, (ev_uint64_t)(wire - header));
}

/* A header-framed frame's body: counted as a count is. */
static int m_round_body(struct model *m)
{
	size_t n = m->in.len < m->remaining ? m->in.len : (size_t)m->remaining;
	size_t used;
	unsigned term_gen = m->term_gen;
	int stop = m_gather(m, n, &used);
	if (m->term_gen == term_gen)
		m->remaining -= used;
	return stop;
}

static int m_round_length(struct model *m)
{
	if (!m->in_body) {
		size_t header = m->field.offset + m->field.size;
		size_t n = header - m->hdr.len;
		if (n > m->in.len)
			n = m->in.len;
		bytes_add(&m->hdr, m->in.p, n);
		bytes_cut(&m->in, n);
		if (m->hdr.len < header)
			return 0;
		return m_header_done(m);
	}
	return m_round_body(m);
}

/* A decoder sees the frame's first bytes, up to its limit; until it
 * says how long the header is, they stay unframed in `in`. */
static int m_round_header(struct model *m)
{
	if (m->in_body)
		return m_round_body(m);
	size_t n = m->in.len < m->max_header ? m->in.len : m->max_header;
	struct evchat_header h = { 0 };
	int found = decoders[m->decoder](m->in.p, n, &h, m->conf);
	if (found != 0 &&
	    (found != 1 || h.size == 0 || h.size > n || h.strip > h.size))
		found = -1; /* a result that breaks the rules */
	if (found == 0 && n == m->max_header)
		found = -1; /* not decodable within the limit */
	if (found == 0)
		return 1; /* wait for more */
	if (found < 0) {
		m_refuse(m, 'I');
		return 1;
	}
	bytes_add(&m->hdr, m->in.p, h.size);
	bytes_cut(&m->in, h.size);
	return m_header_read(m, h.strip, h.body);
}

static void m_finish_eof(struct model *m)
{
	m->eof_pending = 0;
	m->read_done = 1;
	/* Nothing the peer sent is lost: the rest joins the frame. */
	bytes_add(&m->frame, m->hdr.p, m->hdr.len);
	bytes_add(&m->frame, m->in.p, m->in.len);
	if (m->collect) {
		bytes_add(&m->unhanded, m->hdr.p, m->hdr.len);
		bytes_add(&m->unhanded, m->in.p, m->in.len);
	}
	m->hdr.len = m->in.len = 0;
	if (m->skipping) {
		m->frame.len = m->unhanded.len = 0;
	} else if (m->collect && !m->closing) {
		/* After a close nothing more is collected: it stays in
		 * evchat_get_pending(). */
		bytes_add(&m->collected, m->unhanded.p, m->unhanded.len);
		m->unhanded.len = 0;
	}
	/* Once a close was asked for, the close hears the EOF: the hook
	 * does not. */
	if (m->closing)
		return;
	m_log_bytes(m, 'E', m_user_bytes(m));
	m_hook(m);
	m_input_ended(m);
}

/* Frames what can be framed, as the library's input loop does. */
static void m_run(struct model *m)
{
	while (!m_blocked(m)) {
		int stop = 0;
		if (m->recheck) {
			m->recheck = 0;
			if (m->skipping || m->max == 0 ||
			    m->frame.len <= m->max)
				continue; /* then unhanded bytes go below */
			if (m->policy == EVCHAT_LIMIT_CLOSE) {
				m_refuse(m, 'T');
				break;
			}
			if (m->policy == EVCHAT_LIMIT_DISCARD) {
				m_start_skipping(m);
				continue;
			}
			if (!m->collect) {
				if (m_split_gathered(m, m->input_gen) == 1)
					break;
				continue;
			}
			/* Collect mode: the joined bytes come with the piece
			 * they join. */
			bytes_add(&m->collected, m->unhanded.p,
			          m->unhanded.len);
			m->unhanded.len = 0;
			m_deliver(m, 1);
			continue;
		}
		if (m->unhanded.len > 0) {
			bytes_add(&m->collected, m->unhanded.p,
			          m->unhanded.len);
			m->unhanded.len = 0;
			continue;
		}
		if (m->kind == EVCHAT_TERM_COUNT && m->remaining == 0 &&
		    m->trailer) {
			stop = m_round_trailer(m);
		} else if (m->kind == EVCHAT_TERM_COUNT && m->remaining == 0) {
			m->kind = EVCHAT_TERM_NONE;
			m_end_frame(m);
		} else if (m->kind == EVCHAT_TERM_COUNT && !m->skipping &&
		           m->max != 0 && m->policy != EVCHAT_LIMIT_SPLIT &&
		           (m->remaining > m->max ||
		            m->frame.len > m->max - m->remaining)) {
			/* A count's whole size is known: the policy applies
			 * before its bytes come, as for a length field. */
			if (m->policy == EVCHAT_LIMIT_CLOSE) {
				m_refuse(m, 'T');
				stop = 1;
			} else {
				m_start_skipping(m);
			}
		} else if ((m->kind == EVCHAT_TERM_LENGTH ||
		            m->kind == EVCHAT_TERM_HEADER) &&
		           m->in_body && m->remaining == 0) {
			m->in_body = 0;
			m_end_frame(m);
		} else if (m->in.len == 0) {
			break;
		} else {
			size_t used;
			switch (m->kind) {
			case EVCHAT_TERM_NONE:
				stop = m_gather(m, m->in.len, &used);
				break;
			case EVCHAT_TERM_COUNT:
				stop = m_round_count(m);
				break;
			case EVCHAT_TERM_LENGTH:
				stop = m_round_length(m);
				break;
			case EVCHAT_TERM_HEADER:
				stop = m_round_header(m);
				break;
			default:
				stop = m_round_string(m);
				break;
			}
		}
		if (stop)
			break;
	}
	if (m->eof_pending && !m->paused && !m->freed)
		m_finish_eof(m);
	/* A hook's discard stopped the loop with a frame left to end with
	 * no byte to come: the loop runs again for it. */
	if (!m_blocked(m) && m->remaining == 0 &&
	    ((m->kind == EVCHAT_TERM_COUNT && !m->trailer) ||
	     ((m->kind == EVCHAT_TERM_LENGTH ||
	       m->kind == EVCHAT_TERM_HEADER) &&
	      m->in_body)))
		m_run(m);
}

/* A terminator changed: a half-read header joins the frame, or what a
 * skipped frame discards. */
static void m_terminator_changed(struct model *m)
{
	m->term_gen++;
	m->in_body = 0;
	if (m->skipping) {
		m->discarding += m->hdr.len;
	} else if (m->hdr.len > 0) {
		bytes_add(&m->frame, m->hdr.p, m->hdr.len);
		if (m->collect)
			bytes_add(&m->unhanded, m->hdr.p, m->hdr.len);
		m->recheck = 1;
	}
	m->hdr.len = 0;
}

/* The ending the channel already has, set again, changes nothing: the
 * frame being read goes on. */
static int m_same_ending(const struct model *m, enum evchat_term kind,
                         const void *term, size_t len, int optional_cr)
{
	return m->kind == kind && m->term_len == len &&
	       m->optional_cr == optional_cr && memcmp(m->term, term, len) == 0;
}

static void m_apply(struct model *m, const struct op *op)
{
	if (m->freed)
		return;
	switch (op->kind) {
	case OP_FEED:
	case OP_FEED_SMALL:
		if (m->peer_done)
			break;
		bytes_add(m->reading ? &m->in : &m->transit, op->bytes,
		          op->len);
		break;
	case OP_STRING:
		if (op->len == 0 ||
		    m_same_ending(m, EVCHAT_TERM_STRING, op->bytes, op->len, 0))
			break;
		m->kind = EVCHAT_TERM_STRING;
		memcpy(m->term, op->bytes, op->len);
		m->term_len = op->len;
		m->optional_cr = 0;
		m->remaining = 0;
		m_terminator_changed(m);
		break;
	case OP_LINE: {
		static const char *const ends[] = {
			[EVCHAT_EOL_LF] = "\n",
			[EVCHAT_EOL_CRLF] = "\n",
			[EVCHAT_EOL_CRLF_STRICT] = "\r\n",
			[EVCHAT_EOL_NUL] = "", /* its NUL */
		};
		const char *end = ends[op->eol];
		size_t len = *end != '\0' ? strlen(end) : 1;
		int optional_cr = op->eol == EVCHAT_EOL_CRLF;
		if (m_same_ending(m, EVCHAT_TERM_LINE, end, len, optional_cr))
			break;
		m->kind = EVCHAT_TERM_LINE;
		m->optional_cr = optional_cr;
		m->remaining = 0;
		memcpy(m->term, end, len);
		m->term_len = len;
		m_terminator_changed(m);
		break;
	}
	case OP_COUNT:
		m->kind = EVCHAT_TERM_COUNT;
		m->trailer = 0;
		m->remaining = op->count;
		m_terminator_changed(m);
		break;
	case OP_COUNT_TRAILER:
		if (op->len == 0)
			break; /* refused */
		m->kind = EVCHAT_TERM_COUNT;
		m->trailer = 1;
		memcpy(m->term, op->bytes, op->len);
		m->term_len = op->len;
		m->optional_cr = 0;
		m->remaining = op->count;
		m_terminator_changed(m);
		break;
	case OP_NONE:
		m->kind = EVCHAT_TERM_NONE;
		m->remaining = 0;
		m_terminator_changed(m);
		break;
	case OP_LENGTH:
		if (!op->field_valid)
			break;
		if (m->kind == EVCHAT_TERM_LENGTH &&
		    memcmp(&m->field, &op->field, sizeof(op->field)) == 0)
			break; /* the same layout again changes nothing */
		m->kind = EVCHAT_TERM_LENGTH;
		m->field = op->field;
		m->remaining = 0;
		m_terminator_changed(m);
		break;
	case OP_HEADER:
		if (!op->header_valid)
			break;
		if (m->kind == EVCHAT_TERM_HEADER &&
		    m->decoder == op->decoder &&
		    m->max_header == op->max_header && m->conf == op->conf)
			break; /* the same decoder again changes nothing */
		m->kind = EVCHAT_TERM_HEADER;
		m->decoder = op->decoder;
		m->max_header = op->max_header;
		m->conf = op->conf;
		m->remaining = 0;
		m_terminator_changed(m);
		break;
	case OP_LIMIT:
		m->max = op->max;
		m->policy = op->policy;
		/* A frame already over a lowered limit gets the policy from
		 * the next round, not with its next byte. */
		if (m->max != 0 && !m->skipping && m->frame.len > m->max)
			m->recheck = 1;
		break;
	case OP_PAUSE:
		m->paused = 1;
		m->reading = 0;
		break;
	case OP_RESUME:
	case OP_PAUSE_RESUME:
		if (!m->paused)
			break;
		m->paused = 0;
		/* Reading again, unless input is over. */
		if (!m->peer_done && !m->read_done && !m->closing) {
			m->reading = 1;
			bytes_add(&m->in, m->transit.p, m->transit.len);
			m->transit.len = 0;
		}
		break;
	case OP_EOF:
		if (m->peer_done)
			break;
		m->peer_done = 1;
		/* The pair hands everything over with its EOF. */
		bytes_add(&m->in, m->transit.p, m->transit.len);
		m->transit.len = 0;
		if (m->refused || m->closing)
			break;
		m->eof_pending = 1;
		break;
	case OP_DISCARD:
		m->input_gen++;
		m->in.len = m->hdr.len = m->frame.len = m->unhanded.len = 0;
		m->skipping = 0;
		m->discarding = 0;
		break;
	case OP_CLOSE:
		if (!m->closing) {
			m->closing = 1;
			m->reading = 0;
		}
		break;
	case OP_FREE:
		m->freed = 1;
		break;
	default:
		break;
	}
}

/* The close is reported from the loop, once the framing that requested
 * it is over. */
static void m_step(struct model *m, const struct op *op, int *closed_told)
{
	m_apply(m, op);
	m_run(m);
	if (m->closing && !m->freed && !*closed_told) {
		*closed_told = 1;
		bytes_add(&m->log, "X|", 2);
		/* What the hook does (a resume, say) frames from the loop. */
		m_hook(m);
		if (m->autofree)
			m->freed = 1;
		m_run(m);
	}
}

static void m_free(struct model *m)
{
	bytes_free(&m->transit);
	bytes_free(&m->in);
	bytes_free(&m->hdr);
	bytes_free(&m->frame);
	bytes_free(&m->collected);
	bytes_free(&m->unhanded);
	bytes_free(&m->log);
}

/* ------------------------------------------------------------------ */
/* The library, on a bufferevent pair */

struct lib {
	struct event_base *base;
	struct bufferevent *peer;
	struct evchat *chat; /* NULL once freed */
	int collect;
	int autofree;
	int peer_done;
	struct evbuffer *collected;
	struct bytes log;
	const struct op *hooks;
	size_t nhooks, next_hook;
	int in_hook;
};

static void lib_apply(struct lib *l, const struct op *op);

/* The header limit the channel has, for the decoders' checks. */
static size_t lib_max_header;

/* The decoders the channel calls: the model's, with checks on what they
 * are given. */
static int lib_decode(int which, const unsigned char *bytes, size_t len,
                      struct evchat_header *header, void *arg)
{
	fuzz_check(len > 0, "decode: called with len 0");
	fuzz_check(bytes != NULL, "decode: NULL bytes");
	fuzz_check(len <= lib_max_header, "decode: more than max_header");
	fuzz_check(header->size == 0 && header->body == 0 && header->strip == 0,
	           "decode: header not zeroed");
	fuzz_check((struct hdr_conf *)arg >= hdr_confs &&
	               (struct hdr_conf *)arg < hdr_confs + NHDR_CONFS,
	           "decode: another arg");
	return decoders[which](bytes, len, header, arg);
}

static int lib_decode_mqtt(const unsigned char *bytes, size_t len,
                           struct evchat_header *header, void *arg)
{
	return lib_decode(0, bytes, len, header, arg);
}

static int lib_decode_websocket(const unsigned char *bytes, size_t len,
                                struct evchat_header *header, void *arg)
{
	return lib_decode(1, bytes, len, header, arg);
}

static const evchat_header_cb lib_decoders[] = { lib_decode_mqtt,
	                                         lib_decode_websocket };

static void lib_hook(struct lib *l)
{
	if (l->next_hook < l->nhooks)
		lib_apply(l, &l->hooks[l->next_hook++]);
}

static void log_evbuffer(struct lib *l, char tag, struct evbuffer *buf)
{
	bytes_printf(&l->log, "%c%zu:", tag, evbuffer_get_length(buf));
	bytes_add_evbuffer(&l->log, buf);
	bytes_add(&l->log, "|", 1);
}

static void on_collect(struct evchat *chat, struct evbuffer *data, void *arg)
{
	struct lib *l = arg;
	fuzz_check(chat == l->chat, "collect: another channel");
	fuzz_check(evbuffer_get_length(data) > 0, "collect: empty");
	fuzz_check(!l->in_hook, "collect: inside a hook");
	evbuffer_add_buffer(l->collected, data);
}

static void on_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct lib *l = arg;
	fuzz_check(chat == l->chat, "found: another channel");
	fuzz_check(!l->in_hook, "found: inside a hook");
	fuzz_check((frame == NULL) == l->collect, "found: frame vs mode");
	int partial = evchat_frame_is_partial(chat);
	struct evbuffer *bytes = l->collect ? l->collected : frame;
	log_evbuffer(l, partial ? 'P' : 'F', bytes);
	evbuffer_drain(l->collected, (size_t)-1);
	lib_hook(l); /* a piece's too: a terminator set there frames the
	                rest */
}

/* The same for frames lent as bytes: the transcript cannot tell them
 * from the others. */
static void on_found_bytes(struct evchat *chat, const unsigned char *frame,
                           size_t len, void *arg)
{
	struct lib *l = arg;
	fuzz_check(chat == l->chat, "found_bytes: another channel");
	fuzz_check(!l->in_hook, "found_bytes: inside a hook");
	fuzz_check(frame != NULL, "found_bytes: NULL frame");
	fuzz_check(!l->collect || len == 0, "found_bytes: bytes in collect");
	int partial = evchat_frame_is_partial(chat);
	if (l->collect) {
		log_evbuffer(l, partial ? 'P' : 'F', l->collected);
	} else {
		bytes_printf(&l->log, "%c%zu:", partial ? 'P' : 'F', len);
		bytes_add(&l->log, frame, len);
		bytes_add(&l->log, "|", 1);
	}
	evbuffer_drain(l->collected, (size_t)-1);
	lib_hook(l);
}

static void on_event(struct evchat *chat, short events, void *arg)
{
	struct lib *l = arg;
	fuzz_check(chat == l->chat, "event: another channel");
	fuzz_check(!l->in_hook, "event: inside a hook");
	short what = events &
	             (short)~(EVCHAT_EVENT_READING | EVCHAT_EVENT_WRITING);
	if (what & EVCHAT_EVENT_FRAME_DISCARDED) {
		bytes_printf(&l->log, "D%llu|",
		             (unsigned long long)evchat_get_discarded(chat));
		evbuffer_drain(l->collected, (size_t)-1);
		what &= (short)~EVCHAT_EVENT_FRAME_DISCARDED;
		lib_hook(l);
	}
	if (what & EVCHAT_EVENT_FRAME_TOO_LONG) {
		bytes_add(&l->log, "T|", 2);
		what &= (short)~EVCHAT_EVENT_FRAME_TOO_LONG;
	}
	if (what & EVCHAT_EVENT_FRAME_INVALID) {
		bytes_add(&l->log, "I|", 2);
		what &= (short)~EVCHAT_EVENT_FRAME_INVALID;
	}
	if (what & EVCHAT_EVENT_EOF) {
		log_evbuffer(l, 'E',
		             l->collect ? l->collected
		                        : evchat_get_pending(chat));
		what &= (short)~EVCHAT_EVENT_EOF;
	}
	if (what & EVCHAT_EVENT_CLOSED) {
		bytes_add(&l->log, "X|", 2);
		what &= (short)~EVCHAT_EVENT_CLOSED;
	}
	if (what != 0)
		bytes_printf(&l->log, "?%x|", (unsigned)what);
	/* Every event runs the next queued op, as a found hook does. */
	if ((events & EVCHAT_EVENT_FRAME_DISCARDED) == 0)
		lib_hook(l);
	/* An AUTOFREE channel is freed once this hook returns. */
	if (l->autofree && (events & EVCHAT_EVENT_CLOSED))
		l->chat = NULL;
}

static void lib_apply(struct lib *l, const struct op *op)
{
	struct evchat *chat = l->chat;
	if (chat == NULL)
		return;
	int r = 0;
	/* No hook may run inside a call of ours; but the peer's writes
	 * run the channel's callbacks at once, unless deferred. */
	int peer_op = op->kind == OP_FEED || op->kind == OP_FEED_SMALL ||
	              op->kind == OP_EOF;
	if (!peer_op)
		l->in_hook++;
	switch (op->kind) {
	case OP_FEED:
	case OP_FEED_SMALL:
		if (!l->peer_done)
			r = evbuffer_add(bufferevent_get_output(l->peer),
			                 op->bytes, op->len);
		break;
	case OP_STRING:
		errno = 0;
		r = evchat_set_terminator(chat, op->bytes, op->len);
		if (op->len == 0) {
			fuzz_check(r == -1 && errno == EINVAL,
			           "empty terminator accepted");
			r = 0;
		}
		break;
	case OP_LINE:
		r = evchat_set_terminator_line(chat, op->eol);
		break;
	case OP_COUNT:
		r = evchat_set_terminator_count(chat, op->count);
		break;
	case OP_COUNT_TRAILER:
		errno = 0;
		r = evchat_set_terminator_count_trailer(chat, op->count,
		                                        op->bytes, op->len);
		if (op->len == 0) {
			fuzz_check(r == -1 && errno == EINVAL,
			           "empty trailer accepted");
			r = 0;
		}
		break;
	case OP_NONE:
		r = evchat_set_terminator_none(chat);
		break;
	case OP_LENGTH:
		errno = 0;
		r = evchat_set_terminator_length(chat, &op->field);
		if (!op->field_valid) {
			fuzz_check(r == -1 && errno == EINVAL,
			           "invalid length field accepted");
			r = 0;
		}
		break;
	case OP_HEADER:
		errno = 0;
		r = evchat_set_terminator_header(
		    chat, op->decoder < 0 ? NULL : lib_decoders[op->decoder],
		    op->max_header, op->conf);
		if (!op->header_valid) {
			fuzz_check(r == -1 && errno == EINVAL,
			           "invalid header decoder accepted");
			r = 0;
		} else if (r == 0) {
			lib_max_header = op->max_header;
		}
		break;
	case OP_LIMIT:
		r = evchat_set_frame_limit(chat, op->max, op->policy);
		break;
	case OP_PAUSE:
		r = evchat_pause_input(chat);
		fuzz_check(evchat_input_paused(chat) == 1, "not paused");
		break;
	case OP_RESUME:
		r = evchat_resume_input(chat);
		break;
	case OP_PAUSE_RESUME:
		r = evchat_pause_input(chat) | evchat_resume_input(chat);
		fuzz_check(evchat_input_paused(chat) == 0, "still paused");
		break;
	case OP_EOF:
		if (!l->peer_done) {
			l->peer_done = 1;
			r = bufferevent_flush(l->peer, EV_WRITE, BEV_FINISHED);
		}
		break;
	case OP_DISCARD:
		evchat_discard_buffers(chat);
		break;
	case OP_CLOSE:
		r = evchat_close_when_done(chat);
		break;
	case OP_FREE:
		evchat_free(chat);
		l->chat = NULL;
		break;
	default:
		break;
	}
	if (!peer_op)
		l->in_hook--;
	fuzz_check(r == 0, "a call failed");
}

/* The state both must agree on whenever the loop is idle. */
static void compare(struct lib *l, struct model *m)
{
	if (!bytes_equal(&l->log, &m->log))
		fuzz_fail("transcripts differ", &l->log, &m->log);
	if (l->chat == NULL) {
		fuzz_check(m->freed, "channel gone, model not freed");
		return;
	}
	/* Frame mode: the frame so far. Collect mode: what the hook was
	 * not given yet. */
	struct bytes pending = { 0 };
	bytes_add_evbuffer(&pending, evchat_get_pending(l->chat));
	const struct bytes *want = l->collect ? &m->unhanded : &m->frame;
	if (!bytes_equal(&pending, want))
		fuzz_fail("pending bytes differ", &pending, want);
	bytes_free(&pending);
	ev_uint64_t remaining;
	const void *term;
	size_t term_len;
	enum evchat_term kind = evchat_get_terminator(l->chat, &term, &term_len,
	                                              &remaining);
	fuzz_check(kind == m->kind, "terminator kinds differ");
	if (kind == EVCHAT_TERM_COUNT) {
		fuzz_check(remaining == m->remaining, "counts differ");
		fuzz_check(term_len == (m->trailer ? m->term_len : 0) &&
		               (term_len == 0 ||
		                memcmp(term, m->term, term_len) == 0),
		           "trailers differ");
	}
	if (kind == EVCHAT_TERM_LENGTH || kind == EVCHAT_TERM_HEADER)
		fuzz_check(remaining == (m->in_body ? m->remaining : 0),
		           "length remainders differ");
	fuzz_check(evchat_input_paused(l->chat) == m->paused,
	           "paused states differ");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct op ops[4096];
	static struct op hooks[MAX_HOOK_OPS];
	struct reader r = { data, size };
	unsigned flags = next_byte(&r);
	lib_max_header = 0;
	size_t nops = 0, nhooks = 0;
	while (r.left > 0 && nops < sizeof(ops) / sizeof(ops[0])) {
		read_op(&r, &ops[nops], 0);
		if (ops[nops].kind == OP_HOOK) {
			if (nhooks < MAX_HOOK_OPS)
				read_op(&r, &hooks[nhooks++], 1);
			continue;
		}
		nops++;
	}

	struct event_config *cfg = event_config_new();
	event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
	struct event_base *base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	struct bufferevent *pair[2];
	/* Deferred callbacks: the channel reads from the loop, as from a
	 * socket; else inside the peer's write. */
	int pair_flags = flags & 2 ? BEV_OPT_DEFER_CALLBACKS : 0;
	if (base == NULL || bufferevent_pair_new(base, pair_flags, pair) < 0)
		abort();
	bufferevent_enable(pair[1], EV_READ | EV_WRITE);

	struct lib l;
	memset(&l, 0, sizeof(l));
	l.base = base;
	l.peer = pair[1];
	l.collect = flags & 1;
	l.collected = evbuffer_new();
	l.hooks = hooks;
	l.nhooks = nhooks;
	l.autofree = (flags & 4) != 0;
	l.chat = evchat_new(pair[0], l.autofree ? EVCHAT_OPT_AUTOFREE : 0);
	if (l.chat == NULL || l.collected == NULL)
		abort();
	/* Bits 8 and 16 came later: older inputs mostly have neither. */
	evchat_collect_cb collect = l.collect ? on_collect : NULL;
	if ((flags & 0x18) == 0x08)
		evchat_setcb_bytes(l.chat, collect, on_found_bytes, on_event,
		                   &l);
	else if ((flags & 0x18) == 0x10)
		evchat_setcb_both(l.chat, collect, on_found_bytes, on_found,
		                  on_event, &l);
	else
		evchat_setcb(l.chat, collect, on_found, on_event, &l);

	struct model m;
	memset(&m, 0, sizeof(m));
	m.collect = l.collect;
	m.autofree = l.autofree;
	m.kind = EVCHAT_TERM_NONE;
	m.max = EVCHAT_DEFAULT_MAX_FRAME;
	m.policy = EVCHAT_LIMIT_CLOSE;
	m.reading = 1;
	m.hooks = hooks;
	m.nhooks = nhooks;
	int closed_told = 0;

	static int trace = -1;
	if (trace < 0)
		trace = getenv("FUZZ_TRACE") != NULL;
	if (trace) {
		static const char *const found_hooks[] = {
			"", ", found_bytes", ", found_bytes+found", ""
		};
		fprintf(stderr, "-- %s mode, %s callbacks%s%s\n",
		        l.collect ? "collect" : "frame",
		        pair_flags ? "deferred" : "direct",
		        l.autofree ? ", AUTOFREE" : "",
		        found_hooks[(flags >> 3) & 3]);
		for (size_t i = 0; i < nhooks; i++)
			trace_op("hook op: ", &hooks[i]);
	}
	run_until_idle(base);
	for (size_t i = 0; i < nops; i++) {
		if (trace)
			trace_op("", &ops[i]);
		lib_apply(&l, &ops[i]);
		run_until_idle(base);
		m_step(&m, &ops[i], &closed_told);
		if (trace)
			fprintf(stderr, "   log: %.*s\n", (int)l.log.len,
			        (const char *)l.log.p);
		compare(&l, &m);
	}

	if (l.chat != NULL)
		evchat_free(l.chat);
	bufferevent_free(l.peer);
	run_until_idle(base);
	event_base_free(base);
	evbuffer_free(l.collected);
	bytes_free(&l.log);
	m_free(&m);
	return 0;
}
