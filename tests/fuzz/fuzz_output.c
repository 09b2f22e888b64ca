/*
 * fuzz_output: the output queue against a reference model.
 *
 * The fuzzer's bytes are a program. The first byte picks direct or
 * deferred pair callbacks and how much the peer's input may hold before
 * the pair stops handing bytes over (so output backs up in the channel).
 * Then each op is an opcode byte and its arguments:
 *
 *   evchat_push, evchat_push_buffer, evchat_push_line, evchat_push_frame
 *   of fuzzer bytes; a producer with a script of steps (bytes, bytes and
 *   end, EVCHAT_AGAIN, failure, a claim of bytes without any, and, from
 *   inside more(): a push, a discard, a close, a free); evchat_resume;
 *   evchat_discard_buffers; evchat_close_when_done; evchat_shutdown_write;
 *   watermarks; the out-buffer size; a terminator (for the encoders); the
 *   peer reading some bytes; a run of the loop; evchat_free.
 *
 * The model is the byte string the peer must read: each push appends its
 * bytes and each producer its whole script's output, in the order they
 * were pushed; a discard cuts it where the peer's reading was. At the end
 * the peer reads everything: it must have read exactly that (a prefix,
 * after a failure or a free), every producer must have been released
 * exactly once, never while its more() ran, and more() never asked again
 * after EVCHAT_AGAIN without evchat_resume(). Writability reports must
 * alternate starting with "unwritable"; a close must be reported once,
 * after the peer got everything, with the peer seeing EOF.
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

enum op_kind {
	OP_PUSH,
	OP_PUSH_BUFFER,
	OP_PUSH_LINE,
	OP_PUSH_FRAME,
	OP_PRODUCER,
	OP_RESUME,
	OP_DISCARD,
	OP_CLOSE,
	OP_SHUTDOWN,
	OP_WATERMARKS,
	OP_OUT_BUFFER,
	OP_TERMINATOR,
	OP_PEER_READ,
	OP_RUN,
	OP_FREE,
	NOPS
};

enum step_kind {
	STEP_DATA,    /* append n bytes, return n */
	STEP_END,     /* append n bytes, return 0 */
	STEP_AGAIN,   /* return EVCHAT_AGAIN */
	STEP_FAIL,    /* return -1 with errno EIO */
	STEP_BOGUS,   /* return 1 without appending */
	STEP_PUSH,    /* evchat_push n bytes from inside more (they go
	                 behind everything queued), return EVCHAT_AGAIN */
	STEP_DISCARD, /* append n bytes, discard, return n */
	STEP_CLOSE,   /* append n bytes, close_when_done, return n */
	STEP_FREE,    /* evchat_free from inside more, return 0 */
	NSTEPS
};

#define MAX_STEPS 8
#define MAX_PRODUCERS 64

struct step {
	enum step_kind kind;
	size_t n;
};

struct producer {
	struct steps_list {
		struct step s[MAX_STEPS];
		size_t n;
	} script;
	size_t next; /* the step the next more() runs */
	unsigned id;
	unsigned byte_no; /* bytes made so far, for their values */
	int pushed;       /* evchat_push_producer() took it */
	int released;
	int running;              /* more() is on the stack */
	int waiting;              /* said EVCHAT_AGAIN ... */
	unsigned resumes_at_wait; /* ... when this many resumes were made */
	size_t seg_end; /* where its bytes end in the expected output */
	struct harness *h;
};

struct harness {
	struct event_base *base;
	struct bufferevent *peer;
	struct evchat *chat;
	struct bytes expect;   /* what the peer must read, in order */
	struct bytes received; /* what the peer has read */
	size_t checked;        /* ... and found to be as expected */
	struct producer producers[MAX_PRODUCERS];
	size_t nproducers;
	unsigned resumes;
	int closing;  /* close_when_done was called */
	int shutting; /* close or half-close */
	int failed;   /* a producer failed: the connection is over */
	int fail_errno;
	size_t fail_end; /* the failing producer's end in expect */
	int freed;
	int closed_events, error_events, other_events;
	int writable_calls, last_writable;
	int peer_eof;
	int in_call;       /* a call of ours into the channel is running */
	unsigned progress; /* more() calls, to see that the end settles */
	/* The channel's terminator, for the encoders: */
	enum evchat_term kind;
	uint8_t term[4];
	size_t term_len;
	int optional_cr;
	struct evchat_length_field field;
};

/* ------------------------------------------------------------------ */
/* The model's bytes */

/* Bytes a producer makes: its own, and never the same run twice. */
static uint8_t producer_byte(const struct producer *p, unsigned k)
{
	return (uint8_t)(p->id * 37u + k * 11u + (k >> 8));
}

/* A producer's whole output, as its script says. */
static void producer_output(const struct producer *p, struct bytes *out)
{
	unsigned k = 0;
	for (size_t i = 0; i < p->script.n; i++) {
		const struct step *s = &p->script.s[i];
		switch (s->kind) {
		case STEP_DATA:
		case STEP_END:
		case STEP_DISCARD:
		case STEP_CLOSE:
			for (size_t j = 0; j < s->n; j++) {
				uint8_t b = producer_byte(p, k++);
				bytes_add(out, &b, 1);
			}
			break;
		default:
			break;
		}
		if (s->kind == STEP_END || s->kind == STEP_FAIL ||
		    s->kind == STEP_BOGUS || s->kind == STEP_FREE)
			return;
	}
}

/* How many bytes the peer has: read, or handed to its input. */
static size_t peer_total(struct harness *h)
{
	return h->received.len +
	       evbuffer_get_length(bufferevent_get_input(h->peer));
}

/* What the peer has so far is where the model says. */
static void check_prefix(struct harness *h, const char *when)
{
	struct evbuffer *in = bufferevent_get_input(h->peer);
	size_t nin = evbuffer_get_length(in);
	size_t limit = h->expect.len;
	if (h->failed && h->fail_end < limit)
		limit = h->fail_end;
	/* What was read is checked once; what waits in the peer's input
	 * each time. */
	int ok = h->received.len + nin <= limit;
	if (ok && h->received.len > h->checked)
		ok = memcmp(h->received.p + h->checked,
		            h->expect.p + h->checked,
		            h->received.len - h->checked) == 0;
	if (ok && nin > 0) {
		struct bytes waiting = { 0 };
		bytes_add_evbuffer(&waiting, in);
		ok = memcmp(waiting.p, h->expect.p + h->received.len, nin) == 0;
		bytes_free(&waiting);
	}
	if (!ok) {
		struct bytes got = { 0 }, want = { 0 };
		bytes_add(&got, h->received.p, h->received.len);
		bytes_add_evbuffer(&got, in);
		bytes_add(&want, h->expect.p, limit);
		fprintf(stderr, "(%s)\n", when);
		fuzz_fail("the peer read what was not pushed", &got, &want);
	}
	h->checked = h->received.len;
}

/* A discard drops what the peer does not have yet. */
static void model_discard(struct harness *h)
{
	check_prefix(h, "at a discard");
	h->expect.len = peer_total(h);
}

/* ------------------------------------------------------------------ */
/* Producers */

static void on_release(void *arg)
{
	struct producer *p = arg;
	fuzz_check(p->pushed, "release of a producer never queued");
	fuzz_check(!p->released, "released twice");
	fuzz_check(!p->running, "released while its more() runs");
	p->released = 1;
}

static int on_more(struct evchat *chat, struct evbuffer *out, size_t want,
                   void *arg)
{
	struct producer *p = arg;
	struct harness *h = p->h;
	fuzz_check(chat == h->chat, "more: another channel");
	fuzz_check(!h->in_call, "more: inside a call");
	fuzz_check(!p->released, "more after release");
	fuzz_check(want > 0, "more: want 0");
	fuzz_check(evbuffer_get_length(out) == 0, "more: out not empty");
	fuzz_check(p->next < p->script.n, "more after the producer ended");
	fuzz_check(!p->waiting || h->resumes != p->resumes_at_wait,
	           "more asked again after EVCHAT_AGAIN without a resume");
	p->waiting = 0;
	h->progress++;
	const struct step *s = &p->script.s[p->next++];
	int r;
	p->running = 1;
	for (size_t j = 0; j < s->n; j++) {
		if (s->kind == STEP_DATA || s->kind == STEP_END ||
		    s->kind == STEP_DISCARD || s->kind == STEP_CLOSE) {
			uint8_t b = producer_byte(p, p->byte_no++);
			evbuffer_add(out, &b, 1);
		}
	}
	switch (s->kind) {
	case STEP_DATA:
		r = (int)s->n;
		break;
	case STEP_END:
		r = 0;
		break;
	case STEP_AGAIN:
		p->waiting = 1;
		p->resumes_at_wait = h->resumes;
		r = EVCHAT_AGAIN;
		break;
	case STEP_FAIL:
		h->failed = 1;
		h->fail_errno = EIO;
		h->fail_end = p->seg_end;
		errno = EIO;
		r = -1;
		break;
	case STEP_BOGUS:
		h->failed = 1;
		h->fail_errno = EINVAL;
		h->fail_end = p->seg_end;
		r = 1;
		break;
	case STEP_PUSH: {
		/* Pushed behind everything queued so far. */
		uint8_t bytes[16];
		for (size_t j = 0; j < s->n && j < sizeof(bytes); j++)
			bytes[j] = (uint8_t)('a' + j);
		size_t n = s->n < sizeof(bytes) ? s->n : sizeof(bytes);
		errno = 0;
		int pr = evchat_push(chat, bytes, n);
		if (h->shutting) {
			fuzz_check(pr == -1 && errno == EPIPE,
			           "push from more after a close");
		} else {
			fuzz_check(pr == 0, "push from more failed");
			bytes_add(&h->expect, bytes, n);
		}
		p->waiting = 1;
		p->resumes_at_wait = h->resumes;
		r = EVCHAT_AGAIN;
		break;
	}
	case STEP_DISCARD:
		evchat_discard_buffers(chat);
		model_discard(h);
		r = (int)s->n;
		if (r == 0)
			r = EVCHAT_AGAIN;
		break;
	case STEP_CLOSE:
		evchat_close_when_done(chat);
		h->closing = h->shutting = 1;
		r = s->n ? (int)s->n : 0;
		break;
	case STEP_FREE:
	default:
		evchat_free(chat);
		h->freed = 1;
		r = 0;
		break;
	}
	p->running = 0;
	return r;
}

/* ------------------------------------------------------------------ */
/* The channel's hooks */

static void on_event(struct evchat *chat, short events, void *arg)
{
	struct harness *h = arg;
	fuzz_check(chat == h->chat, "event: another channel");
	fuzz_check(!h->in_call, "event: inside a call");
	if (events & EVCHAT_EVENT_CLOSED) {
		h->closed_events++;
		/* Everything went out first. */
		fuzz_check(h->closing, "closed without a close");
		fuzz_check(evchat_get_queued(chat) == 0, "closed with output");
	} else if (events & EVCHAT_EVENT_ERROR) {
		h->error_events++;
		fuzz_check(h->failed, "an error without a failure");
		fuzz_check(errno == h->fail_errno, "the error's errno");
	} else {
		h->other_events++;
	}
}

static void on_writable(struct evchat *chat, int writable, void *arg)
{
	struct harness *h = arg;
	fuzz_check(chat == h->chat, "writable: another channel");
	fuzz_check(!h->in_call, "writable: inside a call");
	fuzz_check(writable == (h->writable_calls == 0 ? 0 : !h->last_writable),
	           "writable calls do not alternate from 0");
	h->writable_calls++;
	h->last_writable = writable;
}

static void on_peer_event(struct bufferevent *bev, short what, void *arg)
{
	struct harness *h = arg;
	(void)bev;
	if (what & BEV_EVENT_EOF)
		h->peer_eof++;
}

/* ------------------------------------------------------------------ */
/* The encoders' model */

/* data + ending reads back as one line: the first ending found in it is
 * at its very end. */
static int line_ok(const struct harness *h, const uint8_t *data, size_t len,
                   struct bytes *wire)
{
	static const uint8_t crlf[] = { '\r', '\n' };
	const uint8_t *ending = h->optional_cr ? crlf : h->term;
	size_t ending_len = h->optional_cr ? 2 : h->term_len;
	bytes_add(wire, data, len);
	bytes_add(wire, ending, ending_len);
	for (size_t i = 0; i + h->term_len <= wire->len; i++)
		if (memcmp(wire->p + i, h->term, h->term_len) == 0)
			return i + h->term_len == wire->len;
	return 0;
}

/* The header for a payload of len bytes, or -1 with the errno. */
static int frame_header(const struct harness *h, size_t len, struct bytes *wire)
{
	const struct evchat_length_field *f = &h->field;
	if (f->offset != 0)
		return EINVAL;
	__int128 value = (__int128)len - f->adjust;
	__int128 top = f->size == 8 ? (__int128)1 << 64
	                            : (__int128)1 << (8 * f->size);
	if (value < 0 || value >= top)
		return EMSGSIZE;
	for (unsigned i = 0; i < f->size; i++) {
		unsigned shift = (f->flags & EVCHAT_LENGTH_LITTLE_ENDIAN)
		                     ? 8 * i
		                     : 8 * (f->size - 1 - i);
		uint8_t b = (uint8_t)(value >> shift);
		bytes_add(wire, &b, 1);
	}
	return 0;
}

static const struct evchat_length_field presets[] = {
	{ 0, 1, 0, 0, 1 },
	{ 0, 2, 0, 0, 2 },
	{ 0, 2, EVCHAT_LENGTH_LITTLE_ENDIAN, -2, 2 },
	{ 0, 4, 0, 4, 0 },
	{ 0, 8, EVCHAT_LENGTH_LITTLE_ENDIAN, 0, 8 },
	{ 0, 8, 0, INT64_MIN, 8 },
	{ 2, 2, 0, 0, 4 }, /* the encoder wants the field first */
};
#define NPRESETS (sizeof(presets) / sizeof(presets[0]))

/* ------------------------------------------------------------------ */
/* Running the program */

static const char small_alphabet[] = { 'a', 'b', '\r', '\n', '\0' };

/* The result of a push: 0 with its bytes in the model, or EPIPE once a
 * close was asked or the connection failed. */
static void pushed(struct harness *h, int r, int err, const void *data,
                   size_t len)
{
	if (h->shutting || h->failed) {
		fuzz_check(r == -1 && err == EPIPE, "push after the end");
		return;
	}
	fuzz_check(r == 0, "push failed");
	bytes_add(&h->expect, data, len);
}

static void read_producer(struct reader *r, struct producer *p)
{
	unsigned b = next_byte(r);
	size_t nsteps = 1 + b % MAX_STEPS / 2 + (b >> 7) * 3;
	if (nsteps > MAX_STEPS - 1)
		nsteps = MAX_STEPS - 1;
	p->script.n = 0;
	for (size_t i = 0; i < nsteps; i++) {
		unsigned k = next_byte(r);
		struct step s = { (enum step_kind)((k & 0x7f) % NSTEPS), 0 };
		/* Mostly small chunks, now and then a big one. */
		unsigned n = next_byte(r);
		s.n = (k & 0x80) ? (size_t)n * 16 : n % 32;
		/* Returning 0 would mean the end. */
		if (s.n == 0 && (s.kind == STEP_DATA || s.kind == STEP_CLOSE))
			s.n = 1;
		p->script.s[p->script.n++] = s;
		if (s.kind == STEP_END || s.kind == STEP_FAIL ||
		    s.kind == STEP_BOGUS || s.kind == STEP_FREE)
			break;
	}
	struct step *last = &p->script.s[p->script.n - 1];
	if (last->kind != STEP_END && last->kind != STEP_FAIL &&
	    last->kind != STEP_BOGUS && last->kind != STEP_FREE)
		p->script.s[p->script.n++] = (struct step){ STEP_END, 0 };
}

static void run_op(struct harness *h, struct reader *r)
{
	enum op_kind kind = (enum op_kind)(next_byte(r) % NOPS);
	struct evchat *chat = h->chat;
	uint8_t data[255];
	const uint8_t *p;
	size_t len;
	int ret = 0, err;
	if (kind <= OP_PUSH_FRAME) {
		unsigned b = next_byte(r);
		len = next_bytes(r, b & 0x7f, &p);
		memcpy(data, p, len);
		if (b & 0x80)
			for (size_t i = 0; i < len; i++)
				data[i] = (uint8_t)
				    small_alphabet[data[i] %
				                   sizeof(small_alphabet)];
	}
	if (h->freed) {
		if (kind == OP_PRODUCER) {
			struct producer tmp;
			read_producer(r, &tmp);
		}
		return;
	}
	h->in_call = 1;
	switch (kind) {
	case OP_PUSH:
		errno = 0;
		ret = evchat_push(chat, data, len);
		pushed(h, ret, errno, data, len);
		break;
	case OP_PUSH_BUFFER: {
		struct evbuffer *buf = evbuffer_new();
		evbuffer_add(buf, data, len);
		errno = 0;
		ret = evchat_push_buffer(chat, buf);
		err = errno;
		if (ret == 0)
			fuzz_check(evbuffer_get_length(buf) == 0,
			           "push_buffer left bytes");
		evbuffer_free(buf);
		pushed(h, ret, err, data, len);
		break;
	}
	case OP_PUSH_LINE: {
		struct bytes wire = { 0 };
		int ok = (h->kind == EVCHAT_TERM_STRING ||
		          h->kind == EVCHAT_TERM_LINE) &&
		         line_ok(h, data, len, &wire);
		errno = 0;
		ret = evchat_push_line(chat, data, len);
		err = errno;
		if (!ok)
			fuzz_check(ret == -1 && err == EINVAL,
			           "a line that would not read back was sent");
		else
			pushed(h, ret, err, wire.p, wire.len);
		bytes_free(&wire);
		break;
	}
	case OP_PUSH_FRAME: {
		struct bytes wire = { 0 };
		int want_err = h->kind == EVCHAT_TERM_LENGTH
		                   ? frame_header(h, len, &wire)
		                   : EINVAL;
		bytes_add(&wire, data, len);
		errno = 0;
		ret = evchat_push_frame(chat, data, len);
		err = errno;
		if (want_err != 0)
			fuzz_check(ret == -1 && err == want_err,
			           "push_frame: wrong error");
		else
			pushed(h, ret, err, wire.p, wire.len);
		bytes_free(&wire);
		break;
	}
	case OP_PRODUCER: {
		struct producer tmp;
		read_producer(r, &tmp);
		if (h->nproducers == MAX_PRODUCERS)
			break;
		struct producer *pr = &h->producers[h->nproducers];
		memset(pr, 0, sizeof(*pr));
		pr->script = tmp.script;
		pr->id = (unsigned)h->nproducers;
		pr->h = h;
		errno = 0;
		ret = evchat_push_producer(chat, on_more, on_release, pr);
		err = errno;
		if (h->shutting || h->failed) {
			fuzz_check(ret == -1 && err == EPIPE,
			           "producer after the end");
			break;
		}
		fuzz_check(ret == 0, "push_producer failed");
		pr->pushed = 1;
		h->nproducers++;
		producer_output(pr, &h->expect);
		pr->seg_end = h->expect.len;
		break;
	}
	case OP_RESUME:
		h->resumes++;
		evchat_resume(chat);
		break;
	case OP_DISCARD:
		evchat_discard_buffers(chat);
		model_discard(h);
		break;
	case OP_CLOSE:
		fuzz_check(evchat_close_when_done(chat) == 0, "close failed");
		h->closing = h->shutting = 1;
		break;
	case OP_SHUTDOWN:
		fuzz_check(evchat_shutdown_write(chat) == 0, "shutdown failed");
		h->shutting = 1;
		break;
	case OP_WATERMARKS: {
		size_t low = (size_t)next_byte(r) * 8;
		size_t high = (size_t)next_byte(r) * 8;
		errno = 0;
		ret = evchat_set_write_watermarks(chat, low, high);
		if (high == 0 || low > high)
			fuzz_check(ret == -1 && errno == EINVAL,
			           "bad watermarks taken");
		else
			fuzz_check(ret == 0, "watermarks refused");
		break;
	}
	case OP_OUT_BUFFER:
		ret = evchat_set_out_buffer_size(chat, 1 + next_byte(r) * 16);
		fuzz_check(ret == 0, "out buffer size refused");
		break;
	case OP_TERMINATOR: {
		unsigned b = next_byte(r);
		switch (b % 4) {
		case 0: {
			size_t n = next_bytes(r, 1 + (b >> 2) % 4, &p);
			if (n == 0)
				break;
			h->term_len = n;
			memcpy(h->term, p, n);
			if (b & 0x80)
				for (size_t i = 0; i < h->term_len; i++)
					h->term[i] = (uint8_t)
					    small_alphabet[h->term[i] %
					                   sizeof(
					                       small_alphabet)];
			fuzz_check(evchat_set_terminator(chat, h->term,
			                                 h->term_len) == 0,
			           "set_terminator");
			h->kind = EVCHAT_TERM_STRING;
			h->optional_cr = 0;
			break;
		}
		case 1: {
			enum evchat_eol eol = (enum evchat_eol)(EVCHAT_EOL_LF +
			                                        (b >> 2) % 4);
			fuzz_check(evchat_set_terminator_line(chat, eol) == 0,
			           "set_terminator_line");
			static const char *const search[] = { "", "\n", "\n",
				                              "\r\n", "" };
			h->term_len = eol == EVCHAT_EOL_NUL
			                  ? 1
			                  : strlen(search[eol]);
			memcpy(h->term, search[eol], h->term_len);
			h->kind = EVCHAT_TERM_LINE;
			h->optional_cr = eol == EVCHAT_EOL_CRLF;
			break;
		}
		case 2:
			h->field = presets[(b >> 2) % NPRESETS];
			fuzz_check(evchat_set_terminator_length(chat,
			                                        &h->field) == 0,
			           "set_terminator_length");
			h->kind = EVCHAT_TERM_LENGTH;
			break;
		default:
			fuzz_check(evchat_set_terminator_none(chat) == 0,
			           "set_terminator_none");
			h->kind = EVCHAT_TERM_NONE;
			break;
		}
		break;
	}
	case OP_PEER_READ: {
		unsigned n = next_byte(r);
		struct evbuffer *in = bufferevent_get_input(h->peer);
		size_t take = n == 0 ? evbuffer_get_length(in) : n;
		h->in_call = 0;
		check_prefix(h, "before a read");
		size_t have = evbuffer_get_length(in);
		if (take > have)
			take = have;
		if (take > 0) {
			bytes_add(&h->received,
			          evbuffer_pullup(in, (ev_ssize_t)take), take);
			evbuffer_drain(in, take);
		}
		run_until_idle(h->base);
		break;
	}
	case OP_RUN:
		h->in_call = 0;
		run_until_idle(h->base);
		break;
	case OP_FREE:
		evchat_free(chat);
		h->freed = 1;
		break;
	default:
		break;
	}
	h->in_call = 0;
	if (h->freed)
		h->chat = NULL;
}

/* The peer reads everything and waiting producers are resumed until
 * nothing moves any more. */
static void settle(struct harness *h)
{
	bufferevent_setwatermark(h->peer, EV_READ, 0, 0);
	/* Each round may take no more than one step of one producer (one
	 * that says EVCHAT_AGAIN waits for the next resume). */
	for (int round = 0; round < MAX_PRODUCERS * MAX_STEPS + 16; round++) {
		unsigned progress = h->progress;
		size_t had = peer_total(h);
		if (h->chat != NULL && !h->freed) {
			h->resumes++;
			evchat_resume(h->chat);
		}
		struct evbuffer *in = bufferevent_get_input(h->peer);
		bytes_add_evbuffer(&h->received, in);
		evbuffer_drain(in, (size_t)-1);
		run_until_idle(h->base);
		if (h->freed)
			h->chat = NULL;
		if (progress == h->progress && had == peer_total(h) &&
		    evbuffer_get_length(in) == 0)
			return;
	}
	fuzz_fail("the output never settled", NULL, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t peer_limits[] = { 0,   1,    7,    64,
		                              256, 1024, 4096, 65536 };
	struct reader r = { data, size };
	unsigned flags = next_byte(&r);

	struct event_config *cfg = event_config_new();
	event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
	struct event_base *base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	struct bufferevent *pair[2];
	int pair_flags = flags & 1 ? BEV_OPT_DEFER_CALLBACKS : 0;
	if (base == NULL || bufferevent_pair_new(base, pair_flags, pair) < 0)
		abort();

	static struct harness h;
	memset(&h, 0, sizeof(h));
	h.base = base;
	h.peer = pair[1];
	h.kind = EVCHAT_TERM_NONE;
	/* The peer's input holds at most this much before the pair stops
	 * handing bytes over; it reads when the program says. */
	bufferevent_setwatermark(h.peer, EV_READ, 0,
	                         peer_limits[(flags >> 1) % 8]);
	bufferevent_setcb(h.peer, NULL, NULL, on_peer_event, &h);
	bufferevent_enable(h.peer, EV_READ | EV_WRITE);
	h.chat = evchat_new(pair[0], 0);
	if (h.chat == NULL)
		abort();
	evchat_setcb(h.chat, NULL, NULL, on_event, &h);
	evchat_set_writable_cb(h.chat, on_writable);

	while (r.left > 0)
		run_op(&h, &r);
	settle(&h);

	/* Everything pushed arrived, in order; after a failure or a free,
	 * what arrived was the start of it. */
	check_prefix(&h, "at the end");
	if (!h.failed && !h.freed && h.received.len != h.expect.len)
		fuzz_fail("the peer did not get everything", &h.received,
		          &h.expect);
	fuzz_check(h.error_events == h.failed,
	           "a failure was not reported once");
	fuzz_check(h.other_events == 0, "an unexpected event");
	if (!h.failed && !h.freed) {
		fuzz_check(h.closed_events == h.closing,
		           "a close not reported once");
		fuzz_check(h.peer_eof == h.shutting, "the peer's EOF");
		fuzz_check(evchat_get_queued(h.chat) == 0, "output left");
		fuzz_check(evchat_is_writable(h.chat), "unwritable at the end");
		fuzz_check(h.writable_calls == 0 || h.last_writable,
		           "last told unwritable");
	}

	if (h.chat != NULL)
		evchat_free(h.chat);
	for (size_t i = 0; i < h.nproducers; i++)
		fuzz_check(h.producers[i].released,
		           "a producer never released");
	bufferevent_free(h.peer);
	run_until_idle(base);
	event_base_free(base);
	bytes_free(&h.expect);
	bytes_free(&h.received);
	return 0;
}
