/*
 * Header-decoder framing: evchat_set_terminator_header().
 *
 * Two decoders written here from the protocols' own descriptions frame
 * streams of several frames: MQTT's fixed header (a type byte, then the
 * remaining length as a variable-length integer, 7 bits a byte, low group
 * first, at most 4 bytes) and WebSocket's frame header (2 bytes, a 16- or
 * 64-bit big-endian extended length, a 4-byte masking key). The bodies sit
 * where the headers grow (0, 127, 128, 16383, 16384 and 2097152 bytes for
 * MQTT; 125, 126, 65535 and 65536 for WebSocket), and the streams are sent
 * whole, a byte per write and cut at every byte, in frame mode, through
 * the bytes hook (evchat_setcb_bytes()) and in collect mode (a frame is
 * the bytes collected between two found calls), with no header bytes
 * stripped, all of them, and some. The expected frames come from the
 * reference encoders that wrote the streams, which know each header's size
 * without decoding it; the encoders and decoders are checked against the
 * protocols' own tables first. Under test_quick() (valgrind in CI) the
 * cuts are every fifth byte and the 2 MiB body is left out.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "helpers.h"
#include "suites.h"

/* ------------------------------------------------------------------ */
/* The decoders */

enum proto { P_MQTT, P_WS, NPROTOS };
/* Which header bytes the decoders strip: none, all (the body alone is
 * delivered), or some (MQTT's type byte, WebSocket's first 2 bytes). */
enum strip { S_NONE, S_ALL, S_PART, NSTRIPS };

static const char *const proto_names[] = { "MQTT", "WebSocket" };
static const char *const strip_names[] = { "strip none", "strip all",
	                                   "strip part" };

/* A decoder's argument: what it strips, and what it was shown. */
struct decoder {
	enum proto proto;
	enum strip strip;
	size_t max_header; /* as set with the decoder: 5 and 14 */
	/* MQTT: a length of any number of bytes, so that a header longer
	 * than max_header is the channel's to refuse, not the decoder's. */
	int lenient;
	size_t calls;   /* how often the channel asked */
	size_t longest; /* the most bytes it was shown at once */
};

static void decoder_init(struct decoder *d, enum proto proto, enum strip strip)
{
	memset(d, 0, sizeof(*d));
	d->proto = proto;
	d->strip = strip;
	d->max_header = proto == P_MQTT ? 5 : 14;
}

static size_t strip_of(const struct decoder *d, size_t header_size)
{
	switch (d->strip) {
	case S_NONE:
		return 0;
	case S_ALL:
		return header_size;
	default:
		return d->proto == P_MQTT ? 1 : 2;
	}
}

/* What every call must respect: bytes to look at, never more than the
 * limit set with the decoder, and a result zeroed beforehand. */
static void saw_call(struct decoder *d, size_t len,
                     const struct evchat_header *header)
{
	ck_assert_uint_ge(len, 1);
	ck_assert_msg(len <= d->max_header,
	              "%s: the decoder was shown %zu bytes, "
	              "max_header %zu",
	              test_ctx, len, d->max_header);
	ck_assert(header->size == 0 && header->body == 0 && header->strip == 0);
	d->calls++;
	if (len > d->longest)
		d->longest = len;
}

static int decoded(const struct decoder *d, struct evchat_header *header,
                   size_t size, ev_uint64_t body)
{
	header->size = size;
	header->body = body;
	header->strip = strip_of(d, size);
	return 1;
}

static int mqtt_decode(const unsigned char *bytes, size_t len,
                       struct evchat_header *header, void *arg)
{
	struct decoder *d = arg;
	ev_uint64_t body = 0;
	saw_call(d, len, header);
	/* The remaining length: bytes[1] onwards, at most 4 of them. */
	size_t most = d->lenient ? len : (len < 5 ? len : 5);
	for (size_t i = 1; i < most; i++) {
		ck_assert_uint_lt(i, 10); /* the shift stays within 64 bits */
		body |= (ev_uint64_t)(bytes[i] & 0x7f) << (7 * (i - 1));
		if (!(bytes[i] & 0x80))
			return decoded(d, header, i + 1, body);
	}
	if (!d->lenient && len >= 5)
		return -1; /* a fifth length byte: no such header */
	return 0;
}

static int ws_decode(const unsigned char *bytes, size_t len,
                     struct evchat_header *header, void *arg)
{
	struct decoder *d = arg;
	saw_call(d, len, header);
	if (len < 2)
		return 0;
	unsigned len7 = bytes[1] & 0x7f;
	size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
	size_t size = 2 + ext + (bytes[1] & 0x80 ? 4 : 0);
	if (len < size)
		return 0;
	/* RFC 6455 5.2: the 64-bit length's most significant bit is 0. */
	if (len7 == 127 && (bytes[2] & 0x80))
		return -1;
	ev_uint64_t body = ext == 0 ? len7 : 0;
	for (size_t i = 0; i < ext; i++)
		body = body << 8 | bytes[2 + i];
	return decoded(d, header, size, body);
}

static evchat_header_cb decode_fn(const struct decoder *d)
{
	return d->proto == P_MQTT ? mqtt_decode : ws_decode;
}

static void set_header(struct evchat *chat, struct decoder *d)
{
	ck_assert_int_eq(evchat_set_terminator_header(chat, decode_fn(d),
	                                              d->max_header, d),
	                 0);
}

/* ------------------------------------------------------------------ */
/* The reference encoders */

/* MQTT's fixed header: the type byte, then the length 7 bits at a time,
 * low group first, the high bit set on every byte but the last. */
static size_t mqtt_header(unsigned char type, ev_uint64_t body,
                          unsigned char *out)
{
	size_t n = 0;
	out[n++] = type;
	do {
		unsigned char b = (unsigned char)(body & 0x7f);
		body >>= 7;
		if (body != 0)
			b |= 0x80;
		out[n++] = b;
	} while (body != 0);
	return n;
}

/* WebSocket's: the first byte, the mask bit with a 7-bit length (126: a
 * 16-bit length follows, 127: a 64-bit one), then the masking key. */
static size_t ws_header(unsigned char first, ev_uint64_t body,
                        const unsigned char *mask, unsigned char *out)
{
	size_t n = 0;
	unsigned char masked = mask != NULL ? 0x80 : 0;
	out[n++] = first;
	if (body < 126) {
		out[n++] = masked | (unsigned char)body;
	} else if (body <= 0xffff) {
		out[n++] = masked | 126;
		out[n++] = (unsigned char)(body >> 8);
		out[n++] = (unsigned char)body;
	} else {
		out[n++] = masked | 127;
		for (int i = 7; i >= 0; i--)
			out[n++] = (unsigned char)(body >> (8 * i));
	}
	if (mask != NULL) {
		memcpy(out + n, mask, 4);
		n += 4;
	}
	return n;
}

/* A stream of frames as the encoders wrote it, with where each frame's
 * header and body are. */
#define MAX_SFRAMES 16

struct sframe {
	size_t start;  /* the header's offset in the wire */
	size_t header; /* its size */
	size_t body;
};

struct stream {
	enum proto proto;
	struct evbuffer *buf; /* owns the wire, NULL for a slice */
	const unsigned char *wire;
	size_t len;
	struct sframe frames[MAX_SFRAMES];
	size_t nframes;
};

static void stream_init(struct stream *s, enum proto proto)
{
	memset(s, 0, sizeof(*s));
	s->proto = proto;
	s->buf = evbuffer_new();
	ck_assert_ptr_nonnull(s->buf);
}

/* Appends a frame of body_len bytes; WebSocket's is masked if asked. The
 * body's bytes take every value, continuation bits and line endings
 * included, and differ from frame to frame. */
static void stream_add(struct stream *s, size_t body_len, int masked)
{
	unsigned char header[16];
	size_t tag = s->nframes;
	size_t n;
	ck_assert_uint_lt(s->nframes, MAX_SFRAMES);
	if (s->proto == P_MQTT) {
		n = mqtt_header((unsigned char)(0x30 + 0x10 * (tag % 12) +
		                                tag % 3),
		                body_len, header);
	} else {
		unsigned char mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
		mask[tag % 4] ^= (unsigned char)tag;
		n = ws_header(tag % 2 ? 0x82 : 0x81, body_len,
		              masked ? mask : NULL, header);
	}
	struct sframe *f = &s->frames[s->nframes++];
	f->start = evbuffer_get_length(s->buf);
	f->header = n;
	f->body = body_len;
	ck_assert_int_eq(evbuffer_add(s->buf, header, n), 0);
	if (body_len > 0) {
		unsigned char *body = malloc(body_len);
		ck_assert_ptr_nonnull(body);
		for (size_t i = 0; i < body_len; i++)
			body[i] = (unsigned char)(i * 31 + tag * 7 + (i >> 8));
		ck_assert_int_eq(evbuffer_add(s->buf, body, body_len), 0);
		free(body);
	}
	s->len = evbuffer_get_length(s->buf);
	s->wire = evbuffer_pullup(s->buf, -1);
}

static void stream_free(struct stream *s)
{
	if (s->buf != NULL)
		evbuffer_free(s->buf);
	s->buf = NULL;
}

/* Frames first..first+count-1 of s, as a stream of their own (borrowing
 * s's bytes). */
static void stream_slice(const struct stream *s, size_t first, size_t count,
                         struct stream *v)
{
	ck_assert_uint_le(first + count, s->nframes);
	memset(v, 0, sizeof(*v));
	v->proto = s->proto;
	size_t base = s->frames[first].start;
	const struct sframe *last = &s->frames[first + count - 1];
	v->wire = s->wire + base;
	v->len = last->start + last->header + last->body - base;
	for (size_t i = 0; i < count; i++) {
		v->frames[i] = s->frames[first + i];
		v->frames[i].start -= base;
	}
	v->nframes = count;
}

/* Frames short enough to cut everywhere, the ends cut-off tests need: the
 * last body is long enough to leave 3 bytes of it unsent. */
static void stream_small(struct stream *s, enum proto proto)
{
	stream_init(s, proto);
	if (proto == P_MQTT) {
		static const size_t bodies[] = { 0, 1, 0, 5, 127, 128, 1, 4 };
		for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
			stream_add(s, bodies[i], 0);
	} else {
		stream_add(s, 0, 0);
		stream_add(s, 1, 0);
		stream_add(s, 125, 0);
		stream_add(s, 126, 0);
		stream_add(s, 0, 1);
		stream_add(s, 2, 1);
		stream_add(s, 5, 0);
	}
}

/* The long ones: every length size there is, the longest headers (5 and
 * 14 bytes, max_header exactly) included. */
static void stream_big(struct stream *s, enum proto proto)
{
	stream_init(s, proto);
	if (proto == P_MQTT) {
		static const size_t bodies[] = { 0,       16383, 16384, 1,
			                         2097152, 0,     16383, 2 };
		for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
			if (bodies[i] < 2097152 || !test_quick())
				stream_add(s, bodies[i], 0);
	} else {
		stream_add(s, 65535, 0);
		stream_add(s, 0, 0);
		stream_add(s, 65536, 0);
		stream_add(s, 70000, 1);
		stream_add(s, 65535, 1);
		stream_add(s, 1, 0);
	}
}

/* ------------------------------------------------------------------ */
/* What the channel should have made of a stream's first n bytes */

struct ref {
	struct span frames[MAX_SFRAMES];
	size_t nframes;
	size_t rest_off;       /* where the unfinished frame starts */
	size_t rest_header;    /* and its header's size */
	int header_read;       /* that header is all in */
	ev_uint64_t remaining; /* then: its body bytes still to come */
};

static void ref_prefix(const struct stream *s, const struct decoder *d,
                       size_t n, struct ref *r)
{
	memset(r, 0, sizeof(*r));
	for (size_t k = 0; k < s->nframes; k++) {
		const struct sframe *f = &s->frames[k];
		size_t end = f->start + f->header + f->body;
		size_t strip = strip_of(d, f->header);
		if (end <= n) {
			r->frames[r->nframes].p = (const char *)s->wire +
			                          f->start + strip;
			r->frames[r->nframes].len = end - f->start - strip;
			r->nframes++;
			r->rest_off = end;
			continue;
		}
		r->rest_off = f->start;
		r->rest_header = f->header;
		if (n - f->start >= f->header) {
			r->header_read = 1;
			r->remaining = end - n;
		}
		break;
	}
}

/* The unfinished frame's bytes the channel keeps at EOF: once the header
 * was decoded, less its strip; before, the partial header, all of it. */
static struct span ref_unfinished(const struct stream *s,
                                  const struct decoder *d, size_t n,
                                  const struct ref *r)
{
	struct span rest = { (const char *)s->wire + r->rest_off,
		             n - r->rest_off };
	if (r->header_read) {
		size_t strip = strip_of(d, r->rest_header);
		rest.p += strip;
		rest.len -= strip;
	}
	return rest;
}

/* What the channel holds of the unfinished frame before EOF. A header not
 * yet decoded is in neither the pending buffer nor collect's hands, as
 * for a partial string terminator. In collect mode, the header bytes not
 * stripped may reach collect at once or with the first byte of the body,
 * so right after the header either is right. */
static void expect_unfinished(struct harness *h, const struct stream *s,
                              const struct decoder *d, size_t n,
                              const struct ref *r)
{
	struct span want = ref_unfinished(s, d, n, r);
	struct evbuffer *got = unfinished(h);
	if (!r->header_read)
		want.len = 0;
	else if (h->collect_mode && n - r->rest_off == r->rest_header &&
	         evbuffer_get_length(got) == 0)
		want.len = 0;
	expect_bytes("unfinished", got, want.p, want.len);
	if (!r->header_read && !h->collect_mode)
		ck_assert_uint_eq(pending_len(h), 0);
}

/* The terminator is the decoder, with `remaining` body bytes to come. */
static void expect_header_term(struct evchat *chat, ev_uint64_t remaining)
{
	const void *term = "junk";
	size_t len = 99;
	ev_uint64_t got = 99;
	ck_assert_int_eq(evchat_get_terminator(chat, &term, &len, &got),
	                 EVCHAT_TERM_HEADER);
	ck_assert_ptr_null(term);
	ck_assert_uint_eq(len, 0);
	ck_assert_msg(got == remaining, "%s: remaining %llu, want %llu",
	              test_ctx, (unsigned long long)got,
	              (unsigned long long)remaining);
}

/* ------------------------------------------------------------------ */
/* Channels in three modes */

enum mode { M_FRAME, M_COLLECT, M_BYTES, NMODES };
static const char *const mode_names[] = { "frame", "collect", "bytes" };

/* The frame a bytes hook was lent last, to read again after the hook
 * freed the channel (the lent bytes stay valid until it returns). */
static const unsigned char *lent_frame;
static size_t lent_len;

/* The bytes hook records as the harness's evbuffer hook does. */
static void bytes_found(struct evchat *chat, const unsigned char *frame,
                        size_t len, void *arg)
{
	struct harness *h = arg;
	ck_assert_ptr_nonnull(frame);
	struct evbuffer *copy = evbuffer_new();
	ck_assert_ptr_nonnull(copy);
	if (len > 0)
		ck_assert_int_eq(evbuffer_add(copy, frame, len), 0);
	lent_frame = frame;
	lent_len = len;
	recorder_found_cb(chat, copy, &h->rec);
	evbuffer_free(copy);
}

static struct harness *harness_mode(enum mode mode)
{
	struct harness *h = harness_new(mode == M_COLLECT, 0);
	if (mode == M_BYTES)
		evchat_setcb_bytes(h->chat, NULL, bytes_found, harness_event_cb,
		                   h);
	return h;
}

/* Forgets the frames recorded so far (the channel is between frames). */
static void forget_frames(struct harness *h)
{
	ck_assert_uint_eq(evbuffer_get_length(h->rec.collecting), 0);
	evbuffer_drain(h->rec.frames, evbuffer_get_length(h->rec.frames));
	h->rec.nframes = 0;
}

/* After a stream's first n bytes went in however cut: its frames and the
 * unfinished one; then at EOF one event, with every byte not stripped
 * kept (a partial header whole). */
static void finish_case(struct harness *h, const struct stream *s,
                        const struct decoder *d, size_t n, int check_before_eof)
{
	struct ref ref;
	ref_prefix(s, d, n, &ref);
	expect_frames(&h->rec, ref.frames, ref.nframes);
	if (check_before_eof) {
		ck_assert_uint_eq(h->rec.nevents, 0);
		expect_unfinished(h, s, d, n, &ref);
	}
	struct span rest = ref_unfinished(s, d, n, &ref);
	conn_close_peer(&h->c);
	run_until_event(h, 2000);
	expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
	expect_bytes("unfinished at EOF", h->unfinished_at_event, rest.p,
	             rest.len);
	if (h->collect_mode)
		ck_assert_uint_eq(pending_len(h), 0);
	else
		ck_assert_uint_eq(h->rec.pending_at_event, rest.len);
	expect_frames(&h->rec, ref.frames, ref.nframes);
	run_pending(h->base);
	ck_assert_uint_eq(h->rec.nevents, 1);
}

/* _i of the matrix tests: protocol x strip x mode. */
static void matrix_case(int i, struct decoder *d, enum mode *mode)
{
	decoder_init(d, (enum proto)(i / (NSTRIPS * NMODES)),
	             (enum strip)(i / NMODES % NSTRIPS));
	*mode = (enum mode)(i % NMODES);
}
#define NMATRIX (NPROTOS * NSTRIPS * NMODES)

/* ------------------------------------------------------------------ */
/* The test's own encoders and decoders, against the protocols' tables */

/* MQTT 3.1.1, 2.2.3, and RFC 6455, 5.2: the boundaries where a header
 * grows, written out. Each header decodes back to its body length, needs
 * all of its bytes, and is re-encoded byte for byte. */
START_TEST(test_header_reference_coders)
{
	static const struct {
		enum proto proto;
		ev_uint64_t body;
		struct span header;
	} table[] = {
		{ P_MQTT, 0, { LIT("\x30\x00") } },
		{ P_MQTT, 127, { LIT("\x30\x7f") } },
		{ P_MQTT, 128, { LIT("\x30\x80\x01") } },
		{ P_MQTT, 16383, { LIT("\x30\xff\x7f") } },
		{ P_MQTT, 16384, { LIT("\x30\x80\x80\x01") } },
		{ P_MQTT, 2097151, { LIT("\x30\xff\xff\x7f") } },
		{ P_MQTT, 2097152, { LIT("\x30\x80\x80\x80\x01") } },
		{ P_MQTT, 268435455, { LIT("\x30\xff\xff\xff\x7f") } },
		{ P_WS, 0, { LIT("\x82\x00") } },
		{ P_WS, 125, { LIT("\x82\x7d") } },
		{ P_WS, 126, { LIT("\x82\x7e\x00\x7e") } },
		{ P_WS, 65535, { LIT("\x82\x7e\xff\xff") } },
		{ P_WS, 65536, { LIT("\x82\x7f\0\0\0\0\0\x01\0\0") } },
		{ P_WS,
		  ((ev_uint64_t)1 << 63) - 1,
		  { LIT("\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff") } },
	};
	for (size_t c = 0; c < sizeof(table) / sizeof(table[0]); c++) {
		struct decoder d;
		struct evchat_header got;
		unsigned char out[16];
		const unsigned char *want =
		    (const unsigned char *)table[c].header.p;
		size_t want_len = table[c].header.len;
		note("%s, body %llu", proto_names[table[c].proto],
		     (unsigned long long)table[c].body);
		decoder_init(&d, table[c].proto, S_NONE);
		size_t n = table[c].proto == P_MQTT
		               ? mqtt_header(0x30, table[c].body, out)
		               : ws_header(0x82, table[c].body, NULL, out);
		ck_assert_uint_eq(n, want_len);
		ck_assert_mem_eq(out, want, n);
		for (size_t len = 1; len < want_len; len++) {
			memset(&got, 0, sizeof(got));
			ck_assert_int_eq(decode_fn(&d)(want, len, &got, &d), 0);
		}
		memset(&got, 0, sizeof(got));
		ck_assert_int_eq(decode_fn(&d)(want, want_len, &got, &d), 1);
		ck_assert_uint_eq(got.size, want_len);
		ck_assert_uint_eq(got.body, table[c].body);
		ck_assert_uint_eq(got.strip, 0);
	}
	/* The masking key counts in WebSocket's header; a set top bit of
	 * the 64-bit length and a fifth MQTT length byte are refused. */
	static const unsigned char key[4] = { 1, 2, 3, 4 };
	unsigned char out[16];
	struct decoder d;
	struct evchat_header got;
	note("masked, refused");
	decoder_init(&d, P_WS, S_PART);
	ck_assert_uint_eq(ws_header(0x81, 3, key, out), 6);
	ck_assert_mem_eq(out, "\x81\x83\x01\x02\x03\x04", 6);
	memset(&got, 0, sizeof(got));
	ck_assert_int_eq(ws_decode(out, 5, &got, &d), 0);
	ck_assert_int_eq(ws_decode(out, 6, &got, &d), 1);
	ck_assert(got.size == 6 && got.body == 3 && got.strip == 2);
	memset(&got, 0, sizeof(got));
	ck_assert_int_eq(ws_decode((const unsigned char *)"\x82\x7f\x80\0\0\0"
	                                                  "\0\0\0\0",
	                           10, &got, &d),
	                 -1);
	decoder_init(&d, P_MQTT, S_PART);
	memset(&got, 0, sizeof(got));
	ck_assert_int_eq(mqtt_decode((const unsigned char *)"\x30\x80\x80\x80"
	                                                    "\x80",
	                             5, &got, &d),
	                 -1);
	d.lenient = 1;
	ck_assert_int_eq(mqtt_decode((const unsigned char *)"\x30\x80\x80\x80"
	                                                    "\x80",
	                             5, &got, &d),
	                 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Streams, cut every way */

/* The cut after `cut` in a stream of len bytes: the next byte, or under
 * test_quick() a few bytes on, never past len. */
static size_t next_cut(size_t cut, size_t len)
{
	size_t step = test_quick() ? 5 : 1;
	return cut < len && len - cut < step ? len : cut + step;
}

/* _i: protocol x strip x mode. Two writes, cut at every byte. One channel
 * takes every cut in turn: each time the unfinished last frame is
 * completed afterwards, so the next cut starts between frames again (and
 * the decoder stays in force all along); the last cut ends with EOF. */
START_TEST(test_header_cut_everywhere)
{
	struct decoder d;
	enum mode mode;
	struct stream s;
	struct ref ref, ref_full;
	matrix_case(_i, &d, &mode);
	stream_small(&s, d.proto);
	size_t len = s.len - 3;
	ref_prefix(&s, &d, len, &ref);
	ref_prefix(&s, &d, s.len, &ref_full);
	ck_assert_uint_eq(ref_full.nframes, s.nframes);

	struct harness *h = harness_mode(mode);
	set_header(h->chat, &d);
	for (size_t cut = 0; cut <= len; cut = next_cut(cut, len)) {
		note("%s, %s, %s mode, cut at %zu", proto_names[d.proto],
		     strip_names[d.strip], mode_names[mode], cut);
		forget_frames(h);
		if (cut > 0)
			feed(h, s.wire, cut);
		if (cut < len)
			feed(h, s.wire + cut, len - cut);
		if (cut == len)
			break;
		expect_frames(&h->rec, ref.frames, ref.nframes);
		expect_unfinished(h, &s, &d, len, &ref);
		ck_assert_uint_eq(h->rec.nevents, 0);
		feed(h, s.wire + len, s.len - len);
		expect_frames(&h->rec, ref_full.frames, ref_full.nframes);
		expect_bytes("unfinished once completed", unfinished(h),
		             LIT(""));
	}
	finish_case(h, &s, &d, len, 1);
	ck_assert_uint_le(d.longest, d.max_header);
	harness_free(h);
	stream_free(&s);
}
END_TEST

/* _i: protocol x strip x mode. One byte per write; after every byte the
 * frames, the unfinished frame and the body bytes left are those of the
 * input so far, and the terminator stays the decoder. */
START_TEST(test_header_one_byte_writes)
{
	struct decoder d;
	enum mode mode;
	struct stream s;
	matrix_case(_i, &d, &mode);
	stream_small(&s, d.proto);
	size_t len = s.len - 3;
	struct harness *h = harness_mode(mode);
	set_header(h->chat, &d);
	for (size_t i = 0; i < len; i++) {
		struct ref ref;
		note("%s, %s, %s mode, 1-byte writes, %zu bytes in",
		     proto_names[d.proto], strip_names[d.strip],
		     mode_names[mode], i + 1);
		feed(h, s.wire + i, 1);
		ref_prefix(&s, &d, i + 1, &ref);
		expect_frames(&h->rec, ref.frames, ref.nframes);
		expect_unfinished(h, &s, &d, i + 1, &ref);
		expect_header_term(h->chat, ref.remaining);
	}
	note("%s, %s, %s mode, 1-byte writes", proto_names[d.proto],
	     strip_names[d.strip], mode_names[mode]);
	finish_case(h, &s, &d, len, 1);
	harness_free(h);
	stream_free(&s);
}
END_TEST

/* _i: protocol x strip x mode. Bodies up to 2 MiB, so every length size
 * and the longest headers: in one write, then each header a byte per
 * write with its body in one, checking what is left after each byte. */
START_TEST(test_header_big_bodies)
{
	struct decoder d;
	enum mode mode;
	struct stream s;
	struct ref ref;
	matrix_case(_i, &d, &mode);
	stream_big(&s, d.proto);
	ref_prefix(&s, &d, s.len, &ref);
	ck_assert_uint_eq(ref.nframes, s.nframes);

	note("%s, %s, %s mode, one write", proto_names[d.proto],
	     strip_names[d.strip], mode_names[mode]);
	struct harness *h = harness_mode(mode);
	ck_assert_int_eq(evchat_set_max_frame(h->chat, 0), 0);
	set_header(h->chat, &d);
	feed(h, s.wire, s.len);
	run_until_frames(h, s.nframes, 3000);
	expect_frames(&h->rec, ref.frames, ref.nframes);
	expect_bytes("unfinished", unfinished(h), LIT(""));
	ck_assert_uint_eq(h->rec.nevents, 0);
	expect_header_term(h->chat, 0);
	harness_free(h);

	h = harness_mode(mode);
	ck_assert_int_eq(evchat_set_max_frame(h->chat, 0), 0);
	set_header(h->chat, &d);
	for (size_t k = 0; k < s.nframes; k++) {
		const struct sframe *f = &s.frames[k];
		for (size_t j = 0; j < f->header; j++) {
			size_t n = f->start + j + 1;
			note("%s, %s, %s mode, header %zu a byte at a time, "
			     "%zu bytes in",
			     proto_names[d.proto], strip_names[d.strip],
			     mode_names[mode], k, n);
			feed(h, s.wire + n - 1, 1);
			ref_prefix(&s, &d, n, &ref);
			expect_frames(&h->rec, ref.frames, ref.nframes);
			expect_unfinished(h, &s, &d, n, &ref);
			expect_header_term(h->chat, ref.remaining);
		}
		if (f->body > 0)
			feed(h, s.wire + f->start + f->header, f->body);
		run_until_frames(h, k + 1, 3000);
	}
	note("%s, %s, %s mode, headers a byte at a time", proto_names[d.proto],
	     strip_names[d.strip], mode_names[mode]);
	finish_case(h, &s, &d, s.len, 1);
	harness_free(h);
	stream_free(&s);
}
END_TEST

/* _i: protocol x mode. The long frames again, a frame at a time with the
 * one before it, cut at every byte from just before each header to just
 * after it: a header split between two reads, and the body or the next
 * header in the same read as its end. */
START_TEST(test_header_big_cuts)
{
	struct decoder d;
	struct stream s;
	enum mode mode = (enum mode)(_i % NMODES);
	decoder_init(&d, (enum proto)(_i / NMODES), S_PART);
	stream_big(&s, d.proto);
	for (size_t k = 0; k < s.nframes; k++) {
		struct stream v;
		size_t first = k > 0 ? k - 1 : 0;
		stream_slice(&s, first, k - first + 1, &v);
		const struct sframe *f = &v.frames[k - first];
		size_t from = f->start > 0 ? f->start - 1 : 0;
		size_t to = f->start + f->header + 1;
		if (to > v.len)
			to = v.len;
		for (size_t cut = from; cut <= to; cut++) {
			struct ref ref;
			note("%s, %s mode, frames %zu and %zu, cut at %zu",
			     proto_names[d.proto], mode_names[mode], first, k,
			     cut);
			struct harness *h = harness_mode(mode);
			ck_assert_int_eq(evchat_set_max_frame(h->chat, 0), 0);
			set_header(h->chat, &d);
			feed(h, v.wire, cut);
			ref_prefix(&v, &d, cut, &ref);
			run_until_frames(h, ref.nframes, 3000);
			expect_frames(&h->rec, ref.frames, ref.nframes);
			expect_unfinished(h, &v, &d, cut, &ref);
			expect_header_term(h->chat, ref.remaining);
			feed(h, v.wire + cut, v.len - cut);
			ref_prefix(&v, &d, v.len, &ref);
			run_until_frames(h, ref.nframes, 3000);
			expect_frames(&h->rec, ref.frames, ref.nframes);
			expect_bytes("unfinished", unfinished(h), LIT(""));
			ck_assert_uint_eq(h->rec.nevents, 0);
			harness_free(h);
		}
	}
	stream_free(&s);
}
END_TEST

/* Frames written out by hand, to check the channel against something
 * derived from neither the encoders nor the decoders. */
static const struct {
	enum proto proto;
	enum strip strip;
	struct span input;
	struct span frames[4];
	size_t nframes;
} by_hand[] = {
	{ P_MQTT,
	  S_ALL,
	  { LIT("\x30\x03"
	        "abc\xc0\x00\x82\x02\x01x") },
	  { { LIT("abc") }, { LIT("") }, { LIT("\x01x") } },
	  3 },
	/* The type byte stripped, the length kept. */
	{ P_MQTT,
	  S_PART,
	  { LIT("\x30\x03"
	        "abc\xd0\x00") },
	  { { LIT("\x03"
	          "abc") },
	    { LIT("\x00") } },
	  2 },
	{ P_MQTT,
	  S_NONE,
	  { LIT("\x30\x01z\xe0\x00") },
	  { { LIT("\x30\x01z") }, { LIT("\xe0\x00") } },
	  2 },
	/* Unmasked, empty, then masked: the key is header, the masked
	 * bytes are delivered as sent. */
	{ P_WS,
	  S_ALL,
	  { LIT("\x81\x05hello\x82\x00\x81\x83\x01\x02\x03\x04"
	        "abc") },
	  { { LIT("hello") }, { LIT("") }, { LIT("abc") } },
	  3 },
	{ P_WS,
	  S_PART,
	  { LIT("\x81\x83\x01\x02\x03\x04"
	        "abc\x82\x7e\x00\x01z") },
	  { { LIT("\x01\x02\x03\x04"
	          "abc") },
	    { LIT("\x00\x01z") } },
	  2 },
};
#define NBY_HAND (sizeof(by_hand) / sizeof(by_hand[0]))

/* _i: case x mode. */
START_TEST(test_header_by_hand)
{
	size_t c = (size_t)_i / NMODES;
	enum mode mode = (enum mode)(_i % NMODES);
	struct decoder d;
	decoder_init(&d, by_hand[c].proto, by_hand[c].strip);
	note("case %zu (%s, %s), %s mode", c, proto_names[d.proto],
	     strip_names[d.strip], mode_names[mode]);
	struct harness *h = harness_mode(mode);
	set_header(h->chat, &d);
	feed(h, by_hand[c].input.p, by_hand[c].input.len);
	expect_frames(&h->rec, by_hand[c].frames, by_hand[c].nframes);
	expect_bytes("unfinished", unfinished(h), LIT(""));
	ck_assert_uint_eq(h->rec.nevents, 0);
	ck_assert_uint_gt(d.calls, 0);
	harness_free(h);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Headers that are no headers */

/* Sends input whole or a byte per write. */
static void feed_input(struct harness *h, const void *input, size_t len,
                       int bytewise)
{
	const char *p = input;
	if (!bytewise) {
		feed(h, p, len);
		return;
	}
	for (size_t i = 0; i < len && h->rec.nevents == 0; i++)
		feed(h, p + i, 1);
}

/* After a refused frame: reading has stopped, so later bytes make no
 * frames or events, and neither does the peer's EOF. */
static void expect_reading_stopped(struct harness *h, size_t nframes,
                                   short flag)
{
	write_all(h->c.peer, LIT("\x30\x01z\x81\x01z"));
	run_pending(h->base);
	conn_close_peer(&h->c);
	run_for(h->base, 10);
	ck_assert_uint_eq(h->rec.nframes, nframes);
	expect_one_event(&h->rec, flag);
}

/* _i: protocol x mode x (one write, 1-byte writes). A decoder that
 * returns -1: every frame before it is delivered, then
 * EVCHAT_EVENT_FRAME_INVALID once, and nothing more. */
START_TEST(test_header_decoder_refuses)
{
	static const struct span bad[] = {
		/* A fifth length byte. */
		{ LIT("\x30\x80\x80\x80\x80\x01xyz") },
		/* A 64-bit length with its top bit set. */
		{ LIT("\x82\x7f\x80\0\0\0\0\0\0\x01xyz") },
	};
	enum proto proto = (enum proto)(_i / (NMODES * 2));
	enum mode mode = (enum mode)(_i / 2 % NMODES);
	int bytewise = _i % 2;
	struct decoder d;
	struct stream s;
	decoder_init(&d, proto, S_ALL);
	note("%s, %s mode, %s", proto_names[proto], mode_names[mode],
	     bytewise ? "1-byte writes" : "one write");
	stream_init(&s, proto);
	stream_add(&s, 3, 0);
	stream_add(&s, 0, 0);
	/* The bad header after the frames: s.len still ends them. */
	evbuffer_add(s.buf, bad[proto].p, bad[proto].len);
	s.wire = evbuffer_pullup(s.buf, -1);
	struct ref ref;
	ref_prefix(&s, &d, s.len, &ref);

	struct harness *h = harness_mode(mode);
	set_header(h->chat, &d);
	feed_input(h, s.wire, evbuffer_get_length(s.buf), bytewise);
	run_until_event(h, 2000);
	expect_one_event(&h->rec, EVCHAT_EVENT_FRAME_INVALID);
	ck_assert_msg(!(h->rec.events[0] & EVCHAT_EVENT_FRAME_TOO_LONG),
	              "%s: reported as too long", test_ctx);
	expect_frames(&h->rec, ref.frames, ref.nframes);
	ck_assert_uint_eq(h->frames_at_event, 2);
	expect_bytes("collected", h->rec.collecting, LIT(""));
	expect_reading_stopped(h, 2, EVCHAT_EVENT_FRAME_INVALID);
	harness_free(h);
	stream_free(&s);
}
END_TEST

/* _i: case x mode x (one write, 1-byte writes). A header the decoder
 * cannot finish within max_header bytes is invalid, and the decoder is
 * never shown more: an MQTT-like length that would go on past 4 bytes
 * (the decoder says 0, "more"), and a WebSocket header of 14 bytes with
 * max_header 8. */
START_TEST(test_header_beyond_max_header)
{
	static const struct span input[] = {
		{ LIT("\x30\x01z\x30\x80\x80\x80\x80\x80\x01xyz") },
		{ LIT("\x82\x01z\x82\xff\0\0\0\0\0\0\0\x01\1\2\3\4x") },
	};
	size_t c = (size_t)_i / (NMODES * 2);
	enum mode mode = (enum mode)(_i / 2 % NMODES);
	int bytewise = _i % 2;
	struct decoder d;
	decoder_init(&d, (enum proto)c, S_ALL);
	d.lenient = 1;
	if (d.proto == P_WS)
		d.max_header = 8;
	note("%s, max_header %zu, %s mode, %s", proto_names[d.proto],
	     d.max_header, mode_names[mode],
	     bytewise ? "1-byte writes" : "one write");
	struct harness *h = harness_mode(mode);
	set_header(h->chat, &d);
	feed_input(h, input[c].p, input[c].len, bytewise);
	run_until_event(h, 2000);
	expect_one_event(&h->rec, EVCHAT_EVENT_FRAME_INVALID);
	EXPECT_FRAMES(&h->rec, "z");
	ck_assert_uint_eq(h->frames_at_event, 1);
	ck_assert_uint_eq(d.longest, d.max_header);
	expect_reading_stopped(h, 1, EVCHAT_EVENT_FRAME_INVALID);
	harness_free(h);
}
END_TEST

/* Results that break the decoder's contract. */
enum violation {
	V_SIZE_0,          /* 1 with a size of 0 */
	V_SIZE_OVER_LEN,   /* 1 with a size over the bytes shown */
	V_STRIP_OVER_SIZE, /* 1 with a strip over the size */
	V_RETURNS_2,       /* 2 with a good header */
	V_RETURNS_MINUS_2, /* -2 */
	NVIOLATIONS
};
static const char *const violation_names[] = {
	"size 0", "size over len", "strip over size", "returns 2", "returns -2",
};

/* A 2-byte header, a tag and the body's length, stripped; a header
 * tagged 'B' gets the answer under test. */
static int rogue_decode(const unsigned char *bytes, size_t len,
                        struct evchat_header *header, void *arg)
{
	const enum violation *v = arg;
	if (len < 2)
		return 0;
	header->size = 2;
	header->body = bytes[1];
	header->strip = 2;
	if (bytes[0] != 'B')
		return 1;
	switch (*v) {
	case V_SIZE_0:
		header->size = 0;
		header->strip = 0;
		return 1;
	case V_SIZE_OVER_LEN:
		header->size = len + 1;
		header->strip = 0;
		return 1;
	case V_STRIP_OVER_SIZE:
		header->strip = 3;
		return 1;
	case V_RETURNS_2:
		return 2;
	default:
		return -2;
	}
}

/* _i: violation x mode x (one write, 1-byte writes). Each counts as -1:
 * the frame before it is delivered, then FRAME_INVALID. A size over the
 * bytes shown is no "wait for more": the decoder says 0 for that. */
START_TEST(test_header_contract_violations)
{
	enum violation v = (enum violation)(_i / (NMODES * 2));
	enum mode mode = (enum mode)(_i / 2 % NMODES);
	int bytewise = _i % 2;
	note("%s, %s mode, %s", violation_names[v], mode_names[mode],
	     bytewise ? "1-byte writes" : "one write");
	struct harness *h = harness_mode(mode);
	ck_assert_int_eq(evchat_set_terminator_header(h->chat, rogue_decode, 8,
	                                              &v),
	                 0);
	feed_input(h, LIT("G\2okB\1zG\1q"), bytewise);
	run_until_event(h, 2000);
	expect_one_event(&h->rec, EVCHAT_EVENT_FRAME_INVALID);
	EXPECT_FRAMES(&h->rec, "ok");
	ck_assert_uint_eq(h->frames_at_event, 1);
	expect_bytes("collected", h->rec.collecting, LIT(""));
	expect_reading_stopped(h, 1, EVCHAT_EVENT_FRAME_INVALID);
	harness_free(h);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The frame limit */

enum { LIMIT = 20 };

/* _i: protocol x strip x mode. The limit is on the delivered frame, the
 * header less its strip plus the body: a frame of exactly the limit is
 * accepted; one byte more is refused as soon as its header is in, before
 * any of its body is sent. */
START_TEST(test_header_limit_close)
{
	struct decoder d;
	enum mode mode;
	struct stream s;
	struct ref ref;
	matrix_case(_i, &d, &mode);
	note("%s, %s, %s mode", proto_names[d.proto], strip_names[d.strip],
	     mode_names[mode]);
	/* Headers of 2 bytes for bodies this short, in both protocols. */
	size_t kept = 2 - strip_of(&d, 2);
	stream_init(&s, d.proto);
	stream_add(&s, LIMIT - kept, 0);
	stream_add(&s, LIMIT - kept + 1, 0);
	ck_assert_uint_eq(s.frames[1].header, 2);
	ref_prefix(&s, &d, s.frames[1].start, &ref);
	ck_assert_uint_eq(ref.frames[0].len, LIMIT);

	struct harness *h = harness_mode(mode);
	ck_assert_int_eq(evchat_set_max_frame(h->chat, LIMIT), 0);
	set_header(h->chat, &d);
	feed(h, s.wire, s.frames[1].start);
	expect_frames(&h->rec, ref.frames, 1);
	ck_assert_uint_eq(h->rec.nevents, 0);
	feed(h, s.wire + s.frames[1].start, 2);
	run_until_event(h, 500);
	expect_one_event(&h->rec, EVCHAT_EVENT_FRAME_TOO_LONG);
	ck_assert_msg(!(h->rec.events[0] & EVCHAT_EVENT_FRAME_INVALID),
	              "%s: reported as invalid too", test_ctx);
	ck_assert_uint_eq(h->frames_at_event, 1);
	expect_bytes("collected", h->rec.collecting, LIT(""));
	/* Reading has stopped: the body makes nothing. */
	write_all(h->c.peer, s.wire + s.frames[1].start + 2, LIMIT - kept + 1);
	run_pending(h->base);
	expect_frames(&h->rec, ref.frames, 1);
	expect_one_event(&h->rec, EVCHAT_EVENT_FRAME_TOO_LONG);
	harness_free(h);
	stream_free(&s);
}
END_TEST

/* _i: protocol x mode. The longest bodies each header can announce are
 * refused as too long (not as invalid) under the default limit, at the
 * header. */
START_TEST(test_header_huge_claim)
{
	static const struct span claims[] = {
		{ LIT("\x30\xff\xff\xff\x7f") }, /* 268435455 */
		{ LIT("\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff") },
	};
	enum proto proto = (enum proto)(_i / NMODES);
	enum mode mode = (enum mode)(_i % NMODES);
	struct decoder d;
	decoder_init(&d, proto, S_NONE);
	note("%s, %s mode", proto_names[proto], mode_names[mode]);
	struct harness *h = harness_mode(mode);
	set_header(h->chat, &d);
	feed(h, claims[proto].p, claims[proto].len);
	run_until_event(h, 500);
	expect_one_event(&h->rec, EVCHAT_EVENT_FRAME_TOO_LONG);
	ck_assert_msg(!(h->rec.events[0] & EVCHAT_EVENT_FRAME_INVALID),
	              "%s: reported as invalid too", test_ctx);
	ck_assert_uint_eq(h->rec.nframes, 0);
	harness_free(h);
}
END_TEST

/* _i: protocol x mode. With no limit, the body a header announces is
 * what is left to come, all 64 bits of it: a header and 3 bytes of
 * body leave body - 3. */
START_TEST(test_header_announced_lengths)
{
	static const ev_uint64_t mqtt_bodies[] = { 3,       127,      128,
		                                   16383,   16384,    2097151,
		                                   2097152, 268435455 };
	static const ev_uint64_t ws_bodies[] = {
		3,
		125,
		126,
		65535,
		65536,
		((ev_uint64_t)1 << 32) + 5,
		((ev_uint64_t)1 << 63) - 1,
	};
	enum proto proto = (enum proto)(_i / NMODES);
	enum mode mode = (enum mode)(_i % NMODES);
	const ev_uint64_t *bodies = proto == P_MQTT ? mqtt_bodies : ws_bodies;
	size_t n = proto == P_MQTT ? sizeof(mqtt_bodies) / sizeof(bodies[0])
	                           : sizeof(ws_bodies) / sizeof(bodies[0]);
	for (size_t c = 0; c < n; c++) {
		unsigned char header[16];
		struct decoder d;
		decoder_init(&d, proto, S_ALL);
		note("%s, %s mode, body %llu", proto_names[proto],
		     mode_names[mode], (unsigned long long)bodies[c]);
		size_t len = proto == P_MQTT
		                 ? mqtt_header(0x30, bodies[c], header)
		                 : ws_header(0x82, bodies[c], NULL, header);
		struct harness *h = harness_mode(mode);
		ck_assert_int_eq(evchat_set_max_frame(h->chat, 0), 0);
		set_header(h->chat, &d);
		feed(h, header, len);
		expect_header_term(h->chat, bodies[c]);
		feed(h, LIT("xyz"));
		expect_header_term(h->chat, bodies[c] - 3);
		ck_assert_uint_eq(h->rec.nframes, bodies[c] == 3 ? 1 : 0);
		ck_assert_uint_eq(h->rec.nevents, 0);
		harness_free(h);
	}
}
END_TEST

/* _i: protocol x strip x mode x (in one write, the long body in pieces
 * after its header alone). Under DISCARD a frame over the limit is
 * skipped, all of it (nothing of it is collected), reported once its end
 * is seen with the count of its delivered bytes, and the next frame comes
 * whole. */
START_TEST(test_header_limit_discard)
{
	struct decoder d;
	enum mode mode;
	struct stream s;
	struct ref ref;
	int pieces = _i % 2;
	matrix_case(_i / 2, &d, &mode);
	note("%s, %s, %s mode, %s", proto_names[d.proto], strip_names[d.strip],
	     mode_names[mode], pieces ? "body in pieces" : "one write");
	stream_init(&s, d.proto);
	stream_add(&s, 5, 0);
	stream_add(&s, 300, 1); /* a 16-bit length and a key */
	stream_add(&s, 3, 0);
	ref_prefix(&s, &d, s.len, &ref);
	const struct sframe *big = &s.frames[1];
	ev_uint64_t delivered = big->header - strip_of(&d, big->header) +
	                        big->body;

	struct harness *h = harness_mode(mode);
	ck_assert_int_eq(evchat_set_frame_limit(h->chat, LIMIT,
	                                        EVCHAT_LIMIT_DISCARD),
	                 0);
	set_header(h->chat, &d);
	if (pieces) {
		size_t body_at = big->start + big->header;
		feed(h, s.wire, body_at);
		expect_frames(&h->rec, ref.frames, 1);
		ck_assert_uint_eq(h->rec.nevents, 0);
		expect_bytes("collected", h->rec.collecting, LIT(""));
		size_t end = body_at + big->body;
		for (size_t at = body_at; at < end; at += 7) {
			size_t n = end - at < 7 ? end - at : 7;
			feed(h, s.wire + at, n);
			/* Reported when the end is in, not before. */
			ck_assert_uint_eq(h->rec.nevents, at + n == end);
			ck_assert_uint_eq(h->rec.nframes, 1);
			expect_bytes("collected", h->rec.collecting, LIT(""));
			ck_assert_uint_eq(pending_len(h), 0);
		}
		/* feed() stops at an event: this one ends nothing. */
		write_all(h->c.peer, s.wire + s.frames[2].start,
		          s.len - s.frames[2].start);
	} else {
		feed(h, s.wire, s.len);
	}
	run_until_frames(h, 2, 2000);
	const struct span want[] = { ref.frames[0], ref.frames[2] };
	expect_frames(&h->rec, want, 2);
	expect_one_event(&h->rec, EVCHAT_EVENT_FRAME_DISCARDED);
	ck_assert(h->rec.events[0] & EVCHAT_EVENT_READING);
	ck_assert_uint_eq(h->frames_at_event, 1);
	ck_assert_msg(evchat_get_discarded(h->chat) == delivered,
	              "%s: discarded %llu, want %llu", test_ctx,
	              (unsigned long long)evchat_get_discarded(h->chat),
	              (unsigned long long)delivered);
	expect_bytes("unfinished", unfinished(h), LIT(""));
	expect_header_term(h->chat, 0);
	harness_free(h);
	stream_free(&s);
}
END_TEST

/* What found saw of each piece of a split frame. */
struct piece_log {
	int partial[16];
	ev_uint64_t remaining[16];
	size_t n;
	struct decoder *set_again; /* set this decoder again on each */
};

static void log_piece(struct evchat *chat, struct recorder *rec)
{
	struct piece_log *log = rec->user;
	ck_assert_uint_lt(log->n, 16);
	log->partial[log->n] = evchat_frame_is_partial(chat);
	ck_assert_int_eq(evchat_get_terminator(chat, NULL, NULL,
	                                       &log->remaining[log->n]),
	                 EVCHAT_TERM_HEADER);
	log->n++;
	if (log->set_again != NULL)
		set_header(chat, log->set_again);
}

/* _i: protocol x mode x (one write, 1-byte writes, one write with the
 * same decoder set again on every piece). Under SPLIT a frame of 2.5
 * limits comes in pieces of the limit, each marked partial but the last,
 * with what is left after it; the next frame comes whole. A piece goes
 * no later than a byte past its end, never before its end is in. */
START_TEST(test_header_limit_split)
{
	enum { SPLIT = 8 };
	enum proto proto = (enum proto)(_i / (NMODES * 3));
	enum mode mode = (enum mode)(_i / 3 % NMODES);
	int how = _i % 3;
	static const char *const hows[] = { "one write", "1-byte writes",
		                            "set again on pieces" };
	struct decoder d;
	struct stream s;
	struct piece_log log;
	memset(&log, 0, sizeof(log));
	decoder_init(&d, proto, S_PART);
	note("%s, %s mode, %s", proto_names[proto], mode_names[mode],
	     hows[how]);
	/* Delivered: 2 header bytes less the strip, and the body. */
	size_t kept = 2 - strip_of(&d, 2);
	size_t whole = 2 * SPLIT + 3;
	stream_init(&s, proto);
	stream_add(&s, whole - kept, 0);
	stream_add(&s, 2, 0);
	const struct sframe *f = &s.frames[0];
	ck_assert_uint_eq(f->header, 2);
	const char *p = (const char *)s.wire + strip_of(&d, 2);
	const struct span want[] = {
		{ p, SPLIT },
		{ p + SPLIT, SPLIT },
		{ p + 2 * SPLIT, 3 },
		{ (const char *)s.wire + s.frames[1].start + strip_of(&d, 2),
		  2 + kept },
	};

	struct harness *h = harness_mode(mode);
	h->rec.on_found = log_piece;
	h->rec.user = &log;
	if (how == 2)
		log.set_again = &d;
	ck_assert_int_eq(evchat_set_frame_limit(h->chat, SPLIT,
	                                        EVCHAT_LIMIT_SPLIT),
	                 0);
	set_header(h->chat, &d);
	if (how == 1) {
		size_t end = f->header + f->body;
		for (size_t w = 1; w < end; w++) {
			feed(h, s.wire + w - 1, 1);
			/* Delivered bytes in so far. */
			size_t k = w < f->header ? 0 : w - strip_of(&d, 2);
			size_t lo = k > 0 ? (k - 1) / SPLIT : 0;
			ck_assert_msg(h->rec.nframes >= lo &&
			                  h->rec.nframes <= k / SPLIT,
			              "%s: %zu pieces with %zu bytes in",
			              test_ctx, h->rec.nframes, k);
		}
		for (size_t w = end; w <= s.len; w++)
			feed(h, s.wire + w - 1, 1);
	} else {
		feed(h, s.wire, s.len);
	}
	run_until_frames(h, 4, 2000);
	expect_frames(&h->rec, want, 4);
	ck_assert_uint_eq(h->rec.nevents, 0);
	ck_assert_uint_eq(log.n, 4);
	static const int want_partial[] = { 1, 1, 0, 0 };
	const ev_uint64_t want_left[] = { whole - SPLIT, whole - 2 * SPLIT, 0,
		                          0 };
	for (size_t i = 0; i < 4; i++) {
		ck_assert_msg(log.partial[i] == want_partial[i],
		              "%s: piece %zu: partial %d", test_ctx, i,
		              log.partial[i]);
		ck_assert_msg(log.remaining[i] == want_left[i],
		              "%s: piece %zu: remaining %llu, want %llu",
		              test_ctx, i, (unsigned long long)log.remaining[i],
		              (unsigned long long)want_left[i]);
	}
	harness_free(h);
	stream_free(&s);
}
END_TEST

/* A decoder whose 8-byte header announces 2^64 - 3 body bytes: more
 * than 2^64 - 1 are then left while the header is still being handed
 * over in pieces. */
static int huge_decode(const unsigned char *bytes, size_t len,
                       struct evchat_header *header, void *arg)
{
	(void)bytes, (void)arg;
	if (len < 8)
		return 0;
	header->size = 8;
	header->body = EV_UINT64_MAX - 2;
	return 1;
}

/* _i: mode. What a piece says is left saturates at 2^64 - 1 instead of
 * wrapping: the header's own bytes beyond the piece and a body near 2^64
 * add up to more. */
START_TEST(test_header_split_remaining_saturates)
{
	struct piece_log log;
	memset(&log, 0, sizeof(log));
	note("%s mode", mode_names[_i]);
	struct harness *h = harness_mode((enum mode)_i);
	h->rec.on_found = log_piece;
	h->rec.user = &log;
	ck_assert_int_eq(evchat_set_frame_limit(h->chat, 4, EVCHAT_LIMIT_SPLIT),
	                 0);
	ck_assert_int_eq(evchat_set_terminator_header(h->chat, huge_decode, 8,
	                                              NULL),
	                 0);
	feed(h, LIT("HHHHHHHHbbbbbbbbb"));
	ck_assert_uint_ge(log.n, 2);
	/* The first piece leaves the header's other 4 bytes and the whole
	 * body: past 2^64 - 1. (Collect mode has all 8 header bytes in its
	 * first piece: the body alone is left.) */
	ev_uint64_t first = _i == M_COLLECT ? EV_UINT64_MAX - 2 : EV_UINT64_MAX;
	ck_assert_msg(log.remaining[0] == first,
	              "%s: first piece: remaining %llu", test_ctx,
	              (unsigned long long)log.remaining[0]);
	for (size_t i = 0; i < log.n; i++) {
		ck_assert_int_eq(log.partial[i], 1);
		if (i > 0)
			ck_assert_msg(log.remaining[i] <= log.remaining[i - 1],
			              "%s: piece %zu: remaining went up",
			              test_ctx, i);
	}
	ck_assert_uint_eq(h->rec.nevents, 0);
	harness_free(h);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The terminator's state, and changing it */

/* _i: mode. The body bytes left, once the header was decoded; 0 before,
 * and between frames. */
START_TEST(test_header_get_terminator)
{
	struct decoder d;
	decoder_init(&d, P_WS, S_ALL);
	note("%s mode", mode_names[_i]);
	struct harness *h = harness_mode((enum mode)_i);
	set_header(h->chat, &d);
	expect_header_term(h->chat, 0);
	feed(h, LIT("\x82"));
	expect_header_term(h->chat, 0);
	feed(h, LIT("\x7e\x00"));
	expect_header_term(h->chat, 0);
	feed(h, LIT("\x80"));
	expect_header_term(h->chat, 128);
	feed(h, LIT("abc"));
	expect_header_term(h->chat, 125);
	ck_assert_uint_eq(h->rec.nframes, 0);
	char body[125];
	memset(body, 'x', sizeof(body));
	feed(h, body, sizeof(body) - 1);
	expect_header_term(h->chat, 1);
	/* The frame ends and the next header starts in the same read. */
	feed(h, LIT("x\x81"));
	ck_assert_uint_eq(h->rec.nframes, 1);
	ck_assert_uint_eq(h->rec.frame_len[0], 128);
	expect_header_term(h->chat, 0);
	feed(h, LIT("\x02z"));
	expect_header_term(h->chat, 1);
	ck_assert_uint_eq(h->rec.nevents, 0);
	harness_free(h);
}
END_TEST

/* Sets the decoder in rec->user again, as an asynchat-style found hook
 * does after every frame; in found, the terminator is still the decoder,
 * between frames. */
static void set_same_decoder(struct evchat *chat, struct recorder *rec)
{
	expect_header_term(chat, 0);
	set_header(chat, rec->user);
}

/* _i: protocol x strip x mode. Setting the same decoder (function, limit,
 * argument) again from found changes nothing: cut at every byte, so that
 * found often runs with the next header partly read (one channel takes
 * every cut in turn, as in test_header_cut_everywhere), then a byte per
 * write. */
START_TEST(test_header_same_decoder_from_found)
{
	struct decoder d;
	enum mode mode;
	struct stream s;
	struct ref ref, ref_full;
	matrix_case(_i, &d, &mode);
	stream_small(&s, d.proto);
	size_t len = s.len - 3;
	ref_prefix(&s, &d, len, &ref);
	ref_prefix(&s, &d, s.len, &ref_full);

	struct harness *h = harness_mode(mode);
	h->rec.on_found = set_same_decoder;
	h->rec.user = &d;
	set_header(h->chat, &d);
	for (size_t cut = 0; cut < len; cut = next_cut(cut, len)) {
		note("%s, %s, %s mode, cut at %zu", proto_names[d.proto],
		     strip_names[d.strip], mode_names[mode], cut);
		forget_frames(h);
		if (cut > 0)
			feed(h, s.wire, cut);
		feed(h, s.wire + cut, len - cut);
		expect_frames(&h->rec, ref.frames, ref.nframes);
		expect_unfinished(h, &s, &d, len, &ref);
		ck_assert_uint_eq(h->rec.nevents, 0);
		feed(h, s.wire + len, s.len - len);
		expect_frames(&h->rec, ref_full.frames, ref_full.nframes);
	}
	harness_free(h);

	note("%s, %s, %s mode, 1-byte writes", proto_names[d.proto],
	     strip_names[d.strip], mode_names[mode]);
	h = harness_mode(mode);
	h->rec.on_found = set_same_decoder;
	h->rec.user = &d;
	set_header(h->chat, &d);
	feed_input(h, s.wire, len, 1);
	finish_case(h, &s, &d, len, 1);
	harness_free(h);
	stream_free(&s);
}
END_TEST

/* _i: mode. The same decoder set again from outside any hook, in the
 * middle of a header and in the middle of a body, changes nothing: the
 * frame goes on. */
START_TEST(test_header_same_decoder_mid_frame)
{
	struct decoder d;
	decoder_init(&d, P_WS, S_ALL);
	note("%s mode", mode_names[_i]);
	struct harness *h = harness_mode((enum mode)_i);
	set_header(h->chat, &d);
	feed(h, LIT("\x82\x7e"));
	set_header(h->chat, &d);
	run_pending(h->base);
	feed(h, LIT("\x00\x05"
	            "ab"));
	expect_header_term(h->chat, 3);
	set_header(h->chat, &d);
	run_pending(h->base);
	expect_header_term(h->chat, 3);
	expect_bytes("unfinished", unfinished(h), LIT("ab"));
	feed(h, LIT("cde\x81\x01z"));
	EXPECT_FRAMES(&h->rec, "abcde", "z");
	ck_assert_uint_eq(h->rec.nevents, 0);
	harness_free(h);
}
END_TEST

/* _i: mode. Another decoder (here the same function with another
 * argument, which strips nothing) set while a header is half read frames
 * it anew, from its first byte: the whole header is in the frame. */
START_TEST(test_header_other_decoder_mid_header)
{
	struct decoder d, other;
	decoder_init(&d, P_WS, S_ALL);
	decoder_init(&other, P_WS, S_NONE);
	note("%s mode", mode_names[_i]);
	struct harness *h = harness_mode((enum mode)_i);
	set_header(h->chat, &d);
	feed(h, LIT("\x81\x01z\x82\x7e"));
	EXPECT_FRAMES(&h->rec, "z");
	set_header(h->chat, &other);
	run_pending(h->base);
	feed(h, LIT("\x00\x02"
	            "ab"));
	static const struct span want[] = {
		{ LIT("z") },
		{ LIT("\x82\x7e\x00\x02"
		      "ab") },
	};
	expect_frames(&h->rec, want, 2);
	ck_assert_uint_gt(other.calls, 0);
	ck_assert_uint_eq(h->rec.nevents, 0);
	harness_free(h);
}
END_TEST

/* _i: mode. A line ending set while a header is half read frames those
 * bytes anew, as it would a partial string terminator held back: a line
 * end among them ends a line there. */
START_TEST(test_header_line_set_mid_header)
{
	struct decoder d;
	decoder_init(&d, P_WS, S_ALL);
	note("%s mode", mode_names[_i]);
	struct harness *h = harness_mode((enum mode)_i);
	set_header(h->chat, &d);
	/* A 16-bit length whose first byte is "\n": 2 bytes short. */
	feed(h, LIT("\x81\x01z\x81\x7e\n"));
	EXPECT_FRAMES(&h->rec, "z");
	expect_bytes("unfinished", unfinished(h), LIT(""));
	ck_assert_int_eq(evchat_set_terminator_line(h->chat, EVCHAT_EOL_LF), 0);
	run_pending(h->base);
	feed(h, LIT("abc\n"));
	static const struct span want[] = {
		{ LIT("z") },
		{ LIT("\x81\x7e") },
		{ LIT("abc") },
	};
	expect_frames(&h->rec, want, 3);
	ck_assert_int_eq(evchat_get_terminator(h->chat, NULL, NULL, NULL),
	                 EVCHAT_TERM_LINE);
	ck_assert_uint_eq(h->rec.nevents, 0);
	harness_free(h);
}
END_TEST

/* A protocol that mixes lines and WebSocket frames: the line "BIN" says a
 * frame follows; after it, lines again. rec->user is a struct switcher. */
struct switcher {
	struct decoder d;
	int in_binary;
};

static void lines_and_frames(struct evchat *chat, struct recorder *rec)
{
	struct switcher *sw = rec->user;
	if (sw->in_binary) {
		sw->in_binary = 0;
		ck_assert_int_eq(evchat_set_terminator_line(chat,
		                                            EVCHAT_EOL_LF),
		                 0);
		return;
	}
	char *line = recorder_frame(rec, rec->nframes - 1);
	if (strcmp(line, "BIN") == 0) {
		sw->in_binary = 1;
		set_header(chat, &sw->d);
	}
	free(line);
}

/* _i: mode. Cut at every byte. Frames switch between lines and the
 * decoder from found; the binary frames hold line endings, in their
 * headers too (a length of 10, a masking key). */
START_TEST(test_switch_header_and_lines)
{
	static const char input[] = "hello\nBIN\n\x82\x05"
	                            "a\nbc\rBIN\n\x81\x00next\n"
	                            "BIN\n\x82\x83\n\n\n\n\n\n\nBIN\n\x82\x0a"
	                            "0123456789last\n";
	static const struct span want[] = {
		{ LIT("hello") },      { LIT("BIN") },    { LIT("a\nbc\r") },
		{ LIT("BIN") },        { LIT("") },       { LIT("next") },
		{ LIT("BIN") },        { LIT("\n\n\n") }, { LIT("BIN") },
		{ LIT("0123456789") }, { LIT("last") },
	};
	for (size_t cut = 0; cut < sizeof(input); cut++) {
		struct switcher sw;
		memset(&sw, 0, sizeof(sw));
		decoder_init(&sw.d, P_WS, S_ALL);
		note("%s mode, cut at %zu", mode_names[_i], cut);
		struct harness *h = harness_mode((enum mode)_i);
		h->rec.user = &sw;
		h->rec.on_found = lines_and_frames;
		ck_assert_int_eq(evchat_set_terminator_line(h->chat,
		                                            EVCHAT_EOL_LF),
		                 0);
		if (cut > 0)
			feed(h, input, cut);
		if (cut < sizeof(input) - 1)
			feed(h, input + cut, sizeof(input) - 1 - cut);
		expect_frames(&h->rec, want, sizeof(want) / sizeof(want[0]));
		expect_bytes("unfinished", unfinished(h), LIT(""));
		ck_assert_int_eq(evchat_get_terminator(h->chat, NULL, NULL,
		                                       NULL),
		                 EVCHAT_TERM_LINE);
		ck_assert_uint_eq(h->rec.nevents, 0);
		harness_free(h);
	}
}
END_TEST

/* _i: protocol x mode. Half a header is held back like a partial string
 * terminator: not in the unfinished frame (nor pending in frame mode)
 * until EOF, when it is kept. */
START_TEST(test_header_partial_at_eof)
{
	static const struct span halves[] = {
		{ LIT("\x30\x80") },     /* a length byte to come */
		{ LIT("\x82\xfe\x00") }, /* a byte of length and a key */
	};
	enum proto proto = (enum proto)(_i / NMODES);
	enum mode mode = (enum mode)(_i % NMODES);
	struct decoder d;
	struct stream s;
	struct ref ref;
	decoder_init(&d, proto, S_ALL);
	note("%s, %s mode", proto_names[proto], mode_names[mode]);
	stream_init(&s, proto);
	stream_add(&s, 2, 0);
	ref_prefix(&s, &d, s.len, &ref);
	struct harness *h = harness_mode(mode);
	set_header(h->chat, &d);
	feed(h, s.wire, s.len);
	feed(h, halves[proto].p, 1);
	feed(h, halves[proto].p + 1, halves[proto].len - 1);
	expect_frames(&h->rec, ref.frames, 1);
	expect_bytes("unfinished", unfinished(h), LIT(""));
	ck_assert_uint_eq(pending_len(h), 0);
	conn_close_peer(&h->c);
	run_until_event(h, 2000);
	expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
	expect_bytes("unfinished at EOF", h->unfinished_at_event,
	             halves[proto].p, halves[proto].len);
	if (mode == M_COLLECT)
		ck_assert_uint_eq(pending_len(h), 0);
	else
		expect_bytes("pending after EOF", evchat_get_pending(h->chat),
		             halves[proto].p, halves[proto].len);
	expect_frames(&h->rec, ref.frames, 1);
	harness_free(h);
	stream_free(&s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The calls themselves */

START_TEST(test_header_invalid_arguments)
{
	struct decoder d;
	decoder_init(&d, P_MQTT, S_ALL);
	struct harness *h = harness_new(0, 0);
	ck_assert_int_eq(evchat_set_terminator_line(h->chat, EVCHAT_EOL_LF), 0);
	ASSERT_FAILS(evchat_set_terminator_header(NULL, mqtt_decode, 5, &d),
	             EINVAL);
	ASSERT_FAILS(evchat_set_terminator_header(h->chat, NULL, 5, &d),
	             EINVAL);
	ASSERT_FAILS(evchat_set_terminator_header(h->chat, mqtt_decode, 0, &d),
	             EINVAL);
	/* The refusals changed nothing: lines still frame. */
	ck_assert_int_eq(evchat_get_terminator(h->chat, NULL, NULL, NULL),
	                 EVCHAT_TERM_LINE);
	feed(h, LIT("line\n"));
	EXPECT_FRAMES(&h->rec, "line");

	/* Nor do they under a decoder, which still frames; and no frame
	 * can be pushed for it. */
	set_header(h->chat, &d);
	ASSERT_FAILS(evchat_set_terminator_header(h->chat, NULL, 5, &d),
	             EINVAL);
	ASSERT_FAILS(evchat_set_terminator_header(h->chat, mqtt_decode, 0, &d),
	             EINVAL);
	ASSERT_FAILS(evchat_push_frame(h->chat, LIT("abc")), EINVAL);
	ASSERT_FAILS(evchat_push_frame(h->chat, NULL, 0), EINVAL);
	expect_header_term(h->chat, 0);
	feed(h, LIT("\x30\x02xy"));
	EXPECT_FRAMES(&h->rec, "line", "xy");
	ck_assert_uint_eq(h->rec.nevents, 0);
	ck_assert_uint_eq(evchat_get_queued(h->chat), 0);

	/* The refused pushes wrote nothing: only what is pushed next. */
	ck_assert_int_eq(evchat_push(h->chat, LIT("\x30\x00")), 0);
	struct evbuffer *got = evbuffer_new();
	read_written(h, got);
	expect_bytes("written", got, LIT("\x30\x00"));
	evbuffer_free(got);
	harness_free(h);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Freeing from the hooks */

struct freer {
	struct harness *h;
	struct decoder *d;
	size_t free_at;       /* the frame whose found frees */
	size_t calls_at_free; /* the decoder's calls then */
	int lent;             /* a bytes hook: read the lent frame again */
};

static void free_on_frame(struct evchat *chat, struct recorder *rec)
{
	struct freer *f = rec->user;
	if (rec->nframes - 1 != f->free_at)
		return;
	char *frame = recorder_frame(rec, rec->nframes - 1);
	evchat_free(chat);
	f->h->chat = NULL;
	f->calls_at_free = f->d->calls;
	/* Still valid until the hook returns, whatever it called. */
	if (f->lent) {
		ck_assert_uint_eq(lent_len, rec->frame_len[rec->nframes - 1]);
		ck_assert_mem_eq(lent_frame, frame, lent_len);
	}
	free(frame);
}

/* _i: protocol x mode x the frame whose found frees the channel. Five
 * frames in one read: the free stops the others, and nothing of the
 * channel runs again, its decoder included. */
START_TEST(test_header_free_in_found)
{
	enum { NFRAMES = 5 };
	enum proto proto = (enum proto)(_i / (NMODES * NFRAMES));
	enum mode mode = (enum mode)(_i / NFRAMES % NMODES);
	struct decoder d;
	struct stream s;
	struct freer f = { NULL, &d, (size_t)_i % NFRAMES, 0, mode == M_BYTES };
	decoder_init(&d, proto, S_PART);
	note("%s, %s mode, freed at frame %zu", proto_names[proto],
	     mode_names[mode], f.free_at);
	stream_init(&s, proto);
	stream_add(&s, 3, 0);
	stream_add(&s, 0, 1);
	stream_add(&s, 200, 0);
	stream_add(&s, 1, 1);
	stream_add(&s, 2, 0);
	struct harness *h = harness_mode(mode);
	f.h = h;
	h->rec.on_found = free_on_frame;
	h->rec.user = &f;
	set_header(h->chat, &d);
	write_all(h->c.peer, s.wire, s.len);
	run_until_freed(h->base, &h->chat, 2000);
	run_pending(h->base);
	ck_assert_ptr_null(h->chat);
	ck_assert_uint_eq(h->rec.nframes, f.free_at + 1);
	ck_assert_uint_eq(d.calls, f.calls_at_free);
	ck_assert_uint_eq(h->rec.nevents, 0);
	/* The bufferevent went too: the peer sees the socket close. */
	struct evbuffer *got = evbuffer_new();
	read_peer_to_eof(&h->c, got, 2000);
	evbuffer_free(got);
	harness_free(h);
	stream_free(&s);
}
END_TEST

/* The recorder's event hook, then a free; rec->user is the harness. */
static void free_on_discard(struct evchat *chat, short events, void *arg)
{
	struct recorder *rec = arg;
	struct harness *h = rec->user;
	recorder_event_cb(chat, events, rec);
	evchat_free(chat);
	h->chat = NULL;
}

/* _i: protocol x collect. The event that reports a discarded frame comes
 * in the middle of a read, with frames after it: freeing there stops
 * them. */
START_TEST(test_header_free_in_discard_event)
{
	enum proto proto = (enum proto)(_i / 2);
	int collect = _i % 2;
	struct decoder d;
	struct stream s;
	struct ref ref;
	decoder_init(&d, proto, S_ALL);
	note("%s, %s mode", proto_names[proto], mode_name(collect));
	stream_init(&s, proto);
	stream_add(&s, 3, 0);
	stream_add(&s, 100, 0);
	stream_add(&s, 3, 0);
	ref_prefix(&s, &d, s.len, &ref);
	struct harness *h = harness_new(collect, 0);
	h->rec.user = h;
	evchat_setcb(h->chat, collect ? recorder_collect_cb : NULL,
	             recorder_found_cb, free_on_discard, &h->rec);
	ck_assert_int_eq(evchat_set_frame_limit(h->chat, LIMIT,
	                                        EVCHAT_LIMIT_DISCARD),
	                 0);
	set_header(h->chat, &d);
	write_all(h->c.peer, s.wire, s.len);
	run_until_freed(h->base, &h->chat, 2000);
	run_pending(h->base);
	ck_assert_ptr_null(h->chat);
	expect_one_event(&h->rec, EVCHAT_EVENT_FRAME_DISCARDED);
	expect_frames(&h->rec, ref.frames, 1);
	harness_free(h);
	stream_free(&s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The frame timeout */

#define FRAME_FLAGS                                                            \
	(EVCHAT_EVENT_TIMEOUT | EVCHAT_EVENT_READING |                         \
	 EVCHAT_EVENT_FRAME_TIMEOUT)

static void set_frame_timeout(struct harness *h, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	ck_assert_int_eq(evchat_set_frame_timeout(h->chat, &tv), 0);
}

/* _i: protocol. The clock does not run between frames, however long the
 * peer idles; it starts with a header's first byte, so a peer that sends
 * half a header and stalls is cut off, and what it sent is kept. */
START_TEST(test_header_frame_timeout_half_header)
{
	static const struct span halves[] = {
		{ LIT("\x30\xac") },     /* 300, one length byte short */
		{ LIT("\x82\x7e\x01") }, /* a 16-bit length, a byte short */
	};
	enum proto proto = (enum proto)_i;
	struct decoder d;
	decoder_init(&d, proto, S_ALL);
	note("%s", proto_names[proto]);
	struct harness *h = harness_new(0, 0);
	set_header(h->chat, &d);
	set_frame_timeout(h, 150);
	feed(h, proto == P_MQTT ? "\x30\x02ok" : "\x82\x02ok", 4);
	EXPECT_FRAMES(&h->rec, "ok");
	run_for(h->base, 300);
	ck_assert_uint_eq(h->rec.nevents, 0);

	write_all(h->c.peer, halves[proto].p, halves[proto].len);
	long long start = now_ms();
	run_until_event(h, 2000);
	long long waited = now_ms() - start;
	ck_assert_uint_eq(h->rec.nevents, 1);
	ck_assert_msg(h->rec.events[0] == FRAME_FLAGS, "event 0x%x, want 0x%x",
	              (unsigned)h->rec.events[0], (unsigned)FRAME_FLAGS);
	ck_assert_msg(waited >= 140, "cut off after %lld ms of 150", waited);
	EXPECT_FRAMES(&h->rec, "ok");
	expect_bytes("unfinished at the timeout", h->unfinished_at_event,
	             halves[proto].p, halves[proto].len);
	expect_bytes("pending", evchat_get_pending(h->chat), halves[proto].p,
	             halves[proto].len);
	harness_free(h);
}
END_TEST

/* A peer that dribbles WebSocket's longest header, a byte every 25 ms, is
 * timed from the header's first byte: cut off before the header is in. */
START_TEST(test_header_frame_timeout_dribbled_header)
{
	static const char header[] = "\x82\xff\0\0\0\0\0\0\0\x01\1\2\3\4";
	struct decoder d;
	decoder_init(&d, P_WS, S_ALL);
	struct harness *h = harness_new(0, 0);
	set_header(h->chat, &d);
	set_frame_timeout(h, 150);
	size_t sent = 0;
	long long start = now_ms();
	while (sent < sizeof(header) - 1 && h->rec.nevents == 0) {
		write_all(h->c.peer, header + sent, 1);
		sent++;
		run_for(h->base, 25);
	}
	run_until_event(h, 1000);
	long long waited = now_ms() - start;
	ck_assert_uint_eq(h->rec.nevents, 1);
	ck_assert_msg(h->rec.events[0] == FRAME_FLAGS, "event 0x%x, want 0x%x",
	              (unsigned)h->rec.events[0], (unsigned)FRAME_FLAGS);
	ck_assert_msg(sent < sizeof(header) - 1,
	              "the whole header went in before the timeout");
	ck_assert_msg(waited >= 140, "cut off after %lld ms of 150", waited);
	ck_assert_uint_eq(h->rec.nframes, 0);
	/* The last byte may have come with the timeout, and stay unread. */
	size_t kept = evbuffer_get_length(h->unfinished_at_event);
	ck_assert_msg(kept + 1 >= sent && kept <= sent,
	              "%zu bytes kept of %zu sent", kept, sent);
	expect_bytes("unfinished at the timeout", h->unfinished_at_event,
	             header, kept);
	harness_free(h);
}
END_TEST

Suite *header_suite(void)
{
	Suite *s = suite_create("header");
	TCase *tc;

	tc = tcase_create("framing");
	tcase_add_test(tc, test_header_reference_coders);
	tcase_add_loop_test(tc, test_header_cut_everywhere, 0, NMATRIX);
	tcase_add_loop_test(tc, test_header_one_byte_writes, 0, NMATRIX);
	tcase_add_loop_test(tc, test_header_by_hand, 0, NBY_HAND * NMODES);
	tcase_add_loop_test(tc, test_header_get_terminator, 0, NMODES);
	tcase_add_loop_test(tc, test_header_same_decoder_from_found, 0,
	                    NMATRIX);
	tcase_add_loop_test(tc, test_header_same_decoder_mid_frame, 0, NMODES);
	tcase_add_loop_test(tc, test_header_other_decoder_mid_header, 0,
	                    NMODES);
	tcase_add_loop_test(tc, test_header_line_set_mid_header, 0, NMODES);
	tcase_add_loop_test(tc, test_switch_header_and_lines, 0, NMODES);
	tcase_add_loop_test(tc, test_header_partial_at_eof, 0,
	                    NPROTOS * NMODES);
	tcase_add_test(tc, test_header_invalid_arguments);
	suite_add_tcase(s, tc);

	tc = tcase_create("invalid");
	tcase_add_loop_test(tc, test_header_decoder_refuses, 0,
	                    NPROTOS * NMODES * 2);
	tcase_add_loop_test(tc, test_header_beyond_max_header, 0,
	                    NPROTOS * NMODES * 2);
	tcase_add_loop_test(tc, test_header_contract_violations, 0,
	                    NVIOLATIONS * NMODES * 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("limit");
	tcase_add_loop_test(tc, test_header_limit_close, 0, NMATRIX);
	tcase_add_loop_test(tc, test_header_huge_claim, 0, NPROTOS * NMODES);
	tcase_add_loop_test(tc, test_header_announced_lengths, 0,
	                    NPROTOS * NMODES);
	tcase_add_loop_test(tc, test_header_limit_discard, 0, NMATRIX * 2);
	tcase_add_loop_test(tc, test_header_limit_split, 0,
	                    NPROTOS * NMODES * 3);
	tcase_add_loop_test(tc, test_header_split_remaining_saturates, 0,
	                    NMODES);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifecycle");
	tcase_add_loop_test(tc, test_header_free_in_found, 0,
	                    NPROTOS * NMODES * 5);
	tcase_add_loop_test(tc, test_header_free_in_discard_event, 0,
	                    NPROTOS * 2);
	tcase_add_loop_test(tc, test_header_frame_timeout_half_header, 0,
	                    NPROTOS);
	tcase_add_test(tc, test_header_frame_timeout_dribbled_header);
	suite_add_tcase(s, tc);

	tc = tcase_create("big");
	/* Megabytes through a socketpair a few dozen times: a volume test,
	 * timed as test-length's random one is, for ASan on a loaded
	 * machine. */
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_header_big_bodies, 0, NMATRIX);
	tcase_add_loop_test(tc, test_header_big_cuts, 0, NPROTOS * NMODES);
	suite_add_tcase(s, tc);

	return s;
}
