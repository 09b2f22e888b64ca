/*
 * Frame limits: what becomes of a frame over evchat_set_frame_limit()'s
 * limit under each policy, for every kind of terminator, however the input
 * is cut into reads. A frame of exactly the limit is accepted whole; one
 * byte more triggers the policy; the frames before the oversized one are
 * all delivered first; under DISCARD nothing after it is lost.
 *
 * The hooks write a transcript, one entry per call, in order:
 *   "F<len>:<bytes>|"  a whole frame, or the last piece of a split one
 *   "P<len>:<bytes>|"  a piece of a split frame with more to come
 *   "D<size>|"         EVCHAT_EVENT_FRAME_DISCARDED, with
 *                      evchat_get_discarded()
 *   "T|"               EVCHAT_EVENT_FRAME_TOO_LONG
 *   "E<hex>|"          any other event
 * Each test builds the transcript it expects from the frames it sends, and
 * gives every entry the stream offset from which it may appear and the one
 * by which it must have appeared, so progress is checked after each write
 * and not only at the end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#ifdef __GLIBC__
#endif

#include <event2/buffer.h>
#include <event2/event.h>

#include "helpers.h"
#include "suites.h"

/* The limit of the policy matrix: small, so every cut is cheap. */
#define LIMIT 8

/* ------------------------------------------------------------------ */
/* Streams and the transcripts they should give */

enum kind {
	K_STRING, /* evchat_set_terminator("\r\n") */
	K_LF,     /* evchat_set_terminator_line(EVCHAT_EOL_LF) */
	K_CRLF,   /* evchat_set_terminator_line(EVCHAT_EOL_CRLF), lenient */
	K_COUNT,  /* one count per frame, set by the hooks */
	K_LENGTH, /* a 2-byte big-endian length field, stripped */
	NKINDS
};

static const char *const kind_names[NKINDS] = {
	"string \\r\\n", "line LF",      "line lenient CRLF",
	"count",         "length field",
};
static const char *const policy_names[] = { "close", "discard", "split" };

/* The length field of K_LENGTH: the value is the payload's length. */
static const struct evchat_length_field len16 = { 0, 2, 0, 0, 2 };

#define MAX_FRAMES 24
#define MAX_ENTRIES 64
#define MAX_WIRE 512

struct entry {
	char text[128];
	size_t len;
	size_t earliest; /* may appear once this many bytes were sent */
	size_t due;      /* must have appeared once this many were sent */
};

struct pframe {
	enum kind kind;
	size_t limit;
	enum evchat_limit_policy policy;
	size_t start; /* the payload's offset in the wire */
	size_t size;
	size_t end; /* the offset after its terminator */
};

struct plan {
	unsigned char wire[MAX_WIRE];
	size_t wire_len;
	struct pframe frames[MAX_FRAMES];
	size_t nframes;
	struct entry want[MAX_ENTRIES];
	size_t nwant;
	int closed; /* a too-long frame ended the connection */
};

static void plan_init(struct plan *p)
{
	memset(p, 0, sizeof(*p));
}

/* One entry: head, then for a frame its bytes and "|" (bytes NULL: an
 * event, all said by head). */
static void want_entry(struct plan *p, size_t earliest, size_t due,
                       const char *head, const unsigned char *bytes, size_t len)
{
	ck_assert_uint_lt(p->nwant, MAX_ENTRIES);
	struct entry *e = &p->want[p->nwant++];
	int n = snprintf(e->text, sizeof(e->text), "%s", head);
	ck_assert_uint_lt((size_t)n + len + 1, sizeof(e->text));
	if (len > 0)
		memcpy(e->text + n, bytes, len);
	e->len = (size_t)n + len;
	if (bytes != NULL)
		e->text[e->len++] = '|';
	e->earliest = earliest;
	e->due = due;
}

static void want_frame(struct plan *p, int partial, const unsigned char *b,
                       size_t len, size_t earliest, size_t due)
{
	char head[32];
	snprintf(head, sizeof(head), "%c%zu:", partial ? 'P' : 'F', len);
	want_entry(p, earliest, due, head, b, len);
}

/* A payload byte that frames as data under the kind's terminator, with
 * near misses of it: lone "\r" and "\n" for "\r\n", "\r" for lines,
 * anything at all for counts and length fields. */
static unsigned char payload_byte(enum kind kind, size_t frame, size_t j,
                                  size_t len)
{
	static const char for_string[] = "ab\rc\nd"; /* never "\r\n" */
	static const char for_lf[] = "ab\rcd\r";
	static const char for_crlf[] = "ab\rcde";
	size_t k = frame * 5 + j;
	switch (kind) {
	case K_STRING:
		return (unsigned char)for_string[k % 6];
	case K_LF:
		return (unsigned char)for_lf[k % 6];
	case K_CRLF:
		/* A "\r" before the "\n" would be part of the ending. */
		if (j + 1 == len && for_crlf[k % 6] == '\r')
			return 'z';
		return (unsigned char)for_crlf[k % 6];
	default:
		return (unsigned char)(frame * 37 + j * 11);
	}
}

/* Appends one frame to the stream, and to the transcript what the policy
 * makes of it. payload NULL: made up by payload_byte(). */
static void plan_add(struct plan *p, enum kind kind, size_t limit,
                     enum evchat_limit_policy policy, const void *payload,
                     size_t size)
{
	ck_assert_uint_lt(p->nframes, MAX_FRAMES);
	ck_assert_uint_lt(p->wire_len + size + 4, MAX_WIRE);
	struct pframe *f = &p->frames[p->nframes];
	unsigned char *w = p->wire + p->wire_len;
	if (kind == K_LENGTH) {
		*w++ = (unsigned char)(size >> 8);
		*w++ = (unsigned char)size;
	}
	f->kind = kind;
	f->limit = limit;
	f->policy = policy;
	f->start = (size_t)(w - p->wire);
	f->size = size;
	for (size_t j = 0; j < size; j++)
		w[j] = payload ? ((const unsigned char *)payload)[j]
		               : payload_byte(kind, p->nframes, j, size);
	const unsigned char *bytes = w;
	w += size;
	if (kind == K_STRING || kind == K_CRLF)
		*w++ = '\r';
	if (kind == K_STRING || kind == K_CRLF || kind == K_LF)
		*w++ = '\n';
	f->end = (size_t)(w - p->wire);
	p->wire_len = f->end;
	p->nframes++;
	if (p->closed)
		return;

	if (limit == 0 || size <= limit) {
		want_frame(p, 0, bytes, size, f->end, f->end);
		return;
	}
	if (policy == EVCHAT_LIMIT_CLOSE) {
		/* A count or a length field tells the size before the
		 * body comes: refused then, before any of it. A string's
		 * "\r" may be held back one byte as a possible start of the
		 * ending before it counts. */
		size_t at = f->start + limit + 1;
		size_t due = at + (kind == K_STRING || kind == K_CRLF);
		if (kind == K_LENGTH || kind == K_COUNT)
			at = due = f->start;
		want_entry(p, at, due < f->end ? due : f->end, "T|", NULL, 0);
		p->closed = 1;
	} else if (policy == EVCHAT_LIMIT_DISCARD) {
		char head[32];
		snprintf(head, sizeof(head), "D%zu|", size);
		want_entry(p, f->end, f->end, head, NULL, 0);
	} else {
		size_t off = 0;
		for (; size - off > limit; off += limit)
			want_frame(p, 1, bytes + off, limit,
			           f->start + off + limit, f->end);
		want_frame(p, 0, bytes + off, size - off, f->end, f->end);
	}
}

/* ------------------------------------------------------------------ */
/* A channel that writes the transcript */

struct run {
	struct harness *h;
	const struct plan *plan; /* NULL: no per-frame checks */
	int collect;
	struct evbuffer *log;
	size_t nentries;
	size_t log_len_at[MAX_ENTRIES + 1]; /* the log's length after n */
	struct evbuffer *collecting;
	struct evbuffer *last; /* the last whole frame, for scripts */
	size_t next;           /* which frame of the plan is arriving */
	size_t limit;          /* the limit in force, for bound checks */
	int last_discarded;    /* the last frame ended by a discard */
	/* Called after each whole frame (or last piece) and each discard:
	 * sets the next terminator and limit, as a protocol would. */
	void (*after_frame)(struct run *r, struct evchat *chat);
	int state; /* the script's */
	long content_length;
};

static void log_add(struct run *r, const char *head, struct evbuffer *bytes)
{
	ck_assert_uint_lt(r->nentries, MAX_ENTRIES);
	evbuffer_add(r->log, head, strlen(head));
	if (bytes != NULL) {
		size_t n = evbuffer_get_length(bytes);
		evbuffer_add(r->log, evbuffer_pullup(bytes, -1), n);
		evbuffer_add(r->log, "|", 1);
	}
	r->log_len_at[++r->nentries] = evbuffer_get_length(r->log);
}

static void set_kind(struct evchat *chat, enum kind kind, size_t count)
{
	switch (kind) {
	case K_STRING:
		ck_assert_int_eq(evchat_set_terminator(chat, LIT("\r\n")), 0);
		break;
	case K_LF:
		ck_assert_int_eq(evchat_set_terminator_line(chat,
		                                            EVCHAT_EOL_LF),
		                 0);
		break;
	case K_CRLF:
		ck_assert_int_eq(evchat_set_terminator_line(chat,
		                                            EVCHAT_EOL_CRLF),
		                 0);
		break;
	case K_COUNT:
		ck_assert_int_eq(evchat_set_terminator_count(chat, count), 0);
		break;
	default:
		ck_assert_int_eq(evchat_set_terminator_length(chat, &len16), 0);
		break;
	}
}

/* Sets up frame i of the plan: its limit, and its terminator where the
 * one in force would not do (a count is per frame; the others stay). */
static void plan_setup_frame(struct run *r, struct evchat *chat, size_t i,
                             int first)
{
	const struct pframe *f = &r->plan->frames[i];
	ck_assert_int_eq(evchat_set_frame_limit(chat, f->limit, f->policy), 0);
	r->limit = f->limit;
	if (first || f->kind == K_COUNT ||
	    f->kind != r->plan->frames[i - 1].kind)
		set_kind(chat, f->kind, f->size);
}

static void follow_plan(struct run *r, struct evchat *chat)
{
	if (r->next < r->plan->nframes)
		plan_setup_frame(r, chat, r->next, 0);
}

static void frame_done(struct run *r, struct evchat *chat)
{
	r->next++;
	if (r->after_frame != NULL)
		r->after_frame(r, chat);
}

static void lim_collect(struct evchat *chat, struct evbuffer *data, void *arg)
{
	struct run *r = arg;
	ck_assert_uint_gt(evbuffer_get_length(data), 0);
	evbuffer_add_buffer(r->collecting, data);
	/* The limit holds for what collect is given, too. */
	if (r->limit != 0)
		ck_assert_msg(evbuffer_get_length(r->collecting) <= r->limit,
		              "%s: %zu bytes collected, limit %zu", test_ctx,
		              evbuffer_get_length(r->collecting), r->limit);
}

static void lim_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct run *r = arg;
	int partial = evchat_frame_is_partial(chat);
	ck_assert_int_eq(partial == 0 || partial == 1, 1);
	if (r->collect)
		ck_assert_ptr_null(frame);
	else
		ck_assert_ptr_nonnull(frame);
	struct evbuffer *bytes = r->collect ? r->collecting : frame;
	char head[32];
	snprintf(head, sizeof(head), "%c%zu:", partial ? 'P' : 'F',
	         evbuffer_get_length(bytes));
	evbuffer_drain(r->last, (size_t)-1);
	evbuffer_add(r->last, evbuffer_pullup(bytes, -1),
	             evbuffer_get_length(bytes));
	log_add(r, head, bytes);
	evbuffer_drain(bytes, (size_t)-1);
	if (!partial) {
		r->last_discarded = 0;
		frame_done(r, chat);
	}
}

static void lim_event(struct evchat *chat, short events, void *arg)
{
	struct run *r = arg;
	char head[32];
	short what = events & (short)~EVCHAT_EVENT_READING;
	if (what == EVCHAT_EVENT_FRAME_DISCARDED) {
		ev_uint64_t size = evchat_get_discarded(chat);
		snprintf(head, sizeof(head), "D%llu|",
		         (unsigned long long)size);
		/* Collect mode: the bytes collected before the frame went
		 * over belong to it: a prefix, within the limit. */
		size_t got = evbuffer_get_length(r->collecting);
		ck_assert_uint_le(got, size);
		if (r->plan != NULL && got > 0) {
			const struct pframe *f = &r->plan->frames[r->next];
			const unsigned char *c = evbuffer_pullup(r->collecting,
			                                         -1);
			ck_assert_msg(got <= f->limit &&
			                  memcmp(c, r->plan->wire + f->start,
			                         got) == 0,
			              "%s: collected \"%s\" before a discard "
			              "is no prefix of the frame",
			              test_ctx, printable(c, got));
		}
		evbuffer_drain(r->collecting, (size_t)-1);
		log_add(r, head, NULL);
		evbuffer_drain(r->last, (size_t)-1);
		r->last_discarded = 1;
		frame_done(r, chat);
		return;
	}
	if (what == EVCHAT_EVENT_FRAME_TOO_LONG) {
		log_add(r, "T|", NULL);
		return;
	}
	snprintf(head, sizeof(head), "E%x|", (unsigned)events);
	log_add(r, head, NULL);
}

static struct run *run_new(int collect, int tcp)
{
	struct run *r = calloc(1, sizeof(*r));
	ck_assert_ptr_nonnull(r);
	r->h = harness_new(collect, tcp);
	r->collect = collect;
	r->log = evbuffer_new();
	r->collecting = evbuffer_new();
	r->last = evbuffer_new();
	ck_assert_ptr_nonnull(r->log);
	ck_assert_ptr_nonnull(r->collecting);
	ck_assert_ptr_nonnull(r->last);
	r->limit = EVCHAT_DEFAULT_MAX_FRAME;
	evchat_setcb(r->h->chat, collect ? lim_collect : NULL, lim_found,
	             lim_event, r);
	return r;
}

/* A run that follows a plan: its first frame's terminator and limit are
 * set, the hooks set the next ones. */
static struct run *run_plan(const struct plan *p, int collect, int tcp)
{
	struct run *r = run_new(collect, tcp);
	r->plan = p;
	r->after_frame = follow_plan;
	plan_setup_frame(r, r->h->chat, 0, 1);
	return r;
}

static void run_free(struct run *r)
{
	harness_free(r->h);
	evbuffer_free(r->log);
	evbuffer_free(r->collecting);
	evbuffer_free(r->last);
	free(r);
}

/* The transcript so far is the start of the plan's, holds every entry
 * due once `sent` bytes went out, and none that may not appear yet. */
static void check_progress(struct run *r, size_t sent)
{
	const struct plan *p = r->plan;
	size_t n = r->nentries;
	size_t want_len = 0;
	char *want = malloc(p->nwant * sizeof(p->want[0].text) + 1);
	ck_assert_ptr_nonnull(want);
	for (size_t i = 0; i < p->nwant; i++) {
		memcpy(want + want_len, p->want[i].text, p->want[i].len);
		want_len += p->want[i].len;
	}
	size_t log_len = evbuffer_get_length(r->log);
	const char *log = log_len ? (const char *)evbuffer_pullup(r->log, -1)
	                          : "";
	size_t prefix = 0;
	for (size_t i = 0; i < n && i < p->nwant; i++)
		prefix += p->want[i].len;
	if (n > p->nwant || log_len != prefix ||
	    memcmp(log, want, log_len) != 0)
		ck_abort_msg("%s: after %zu bytes: transcript \"%s\", want "
		             "the start of \"%s\"",
		             test_ctx, sent, printable(log, log_len),
		             printable(want, want_len));
	for (size_t i = 0; i < p->nwant; i++) {
		if (i < n && p->want[i].earliest > sent)
			ck_abort_msg("%s: entry %zu \"%s\" after %zu bytes, "
			             "before byte %zu arrived",
			             test_ctx, i,
			             printable(p->want[i].text, p->want[i].len),
			             sent, p->want[i].earliest);
		if (i >= n && p->want[i].due <= sent)
			ck_abort_msg("%s: entry %zu \"%s\" missing after %zu "
			             "bytes (transcript \"%s\")",
			             test_ctx, i,
			             printable(p->want[i].text, p->want[i].len),
			             sent, printable(log, log_len));
	}
	/* Memory stays within the limit under every policy. */
	if (r->limit != 0)
		ck_assert_msg(pending_len(r->h) <= r->limit,
		              "%s: %zu bytes pending, limit %zu", test_ctx,
		              pending_len(r->h), r->limit);
	free(want);
}

static void send_bytes(struct run *r, const void *data, size_t len)
{
	write_all(r->h->c.peer, data, len);
	run_pending(r->h->base);
}

/* The cut-everywhere tests send the plan in two writes cut at `cut`. */
static void send_plan_cut(struct run *r, size_t cut)
{
	const struct plan *p = r->plan;
	if (cut > 0) {
		send_bytes(r, p->wire, cut);
		check_progress(r, cut);
	}
	if (cut < p->wire_len)
		send_bytes(r, p->wire + cut, p->wire_len - cut);
}

/* The byte-at-a-time tests send the plan so, checking after every byte. */
static void send_plan_bytewise(struct run *r)
{
	const struct plan *p = r->plan;
	for (size_t i = 0; i < p->wire_len; i++) {
		send_bytes(r, p->wire + i, 1);
		check_progress(r, i + 1);
	}
}

/* All sent: exactly the plan's transcript, nothing left over. */
static void check_done(struct run *r)
{
	const struct plan *p = r->plan;
	check_progress(r, p->wire_len);
	ck_assert_msg(r->nentries == p->nwant, "%s: %zu entries, want %zu",
	              test_ctx, r->nentries, p->nwant);
	if (!p->closed) {
		ck_assert_uint_eq(pending_len(r->h), 0);
		ck_assert_uint_eq(evbuffer_get_length(r->collecting), 0);
	}
}

/* ------------------------------------------------------------------ */
/* Every policy, every terminator, every cut */

/* Frames around the limit: under it, exactly it, one over, more than two
 * limits (three pieces when split), empty, and after all that. */
static void plan_matrix(struct plan *p, enum kind kind,
                        enum evchat_limit_policy policy)
{
	static const size_t sizes[] = {
		2, LIMIT, LIMIT + 1, 2, 2 * LIMIT + 3, 0, LIMIT, 1,
	};
	plan_init(p);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		plan_add(p, kind, LIMIT, policy, NULL, sizes[i]);
}

/* Both matrix tests read _i alike: terminator kind x policy x mode. */
struct matrix_case {
	enum kind kind;
	enum evchat_limit_policy policy;
	int collect;
};

static struct matrix_case matrix_case(int i)
{
	struct matrix_case c = {
		.kind = (enum kind)(i / 6),
		.policy = (enum evchat_limit_policy)(i / 2 % 3),
		.collect = i % 2,
	};
	return c;
}

/* _i: terminator kind x policy x mode. Two writes, cut at every byte. */
START_TEST(test_policy_cut_everywhere)
{
	struct matrix_case c = matrix_case(_i);
	struct plan p;
	plan_matrix(&p, c.kind, c.policy);
	for (size_t cut = 0; cut <= p.wire_len; cut++) {
		note("%s, %s, %s mode, cut at %zu", kind_names[c.kind],
		     policy_names[c.policy], c.collect ? "collect" : "frame",
		     cut);
		struct run *r = run_plan(&p, c.collect, 0);
		send_plan_cut(r, cut);
		check_done(r);
		run_free(r);
	}
}
END_TEST

/* _i: terminator kind x policy x mode. One byte per read; the transcript
 * is checked after every byte, so each entry comes exactly when its
 * bytes are in, never before. */
START_TEST(test_policy_one_byte_writes)
{
	struct matrix_case c = matrix_case(_i);
	struct plan p;
	plan_matrix(&p, c.kind, c.policy);
	note("%s, %s, %s mode, 1-byte writes", kind_names[c.kind],
	     policy_names[c.policy], c.collect ? "collect" : "frame");
	struct run *r = run_plan(&p, c.collect, 0);
	send_plan_bytewise(r);
	check_done(r);
	run_free(r);
}
END_TEST

/* _i: policy x mode. The same stream in one write over loopback TCP. */
START_TEST(test_policy_tcp)
{
	enum evchat_limit_policy policy = (enum evchat_limit_policy)(_i / 2);
	int collect = _i % 2;
	for (int kind = 0; kind < NKINDS; kind++) {
		struct plan p;
		plan_matrix(&p, (enum kind)kind, policy);
		note("%s, %s, %s mode, TCP", kind_names[kind],
		     policy_names[policy], collect ? "collect" : "frame");
		struct run *r = run_plan(&p, collect, 1);
		write_all(r->h->c.peer, p.wire, p.wire_len);
		long long end = now_ms() + 2000;
		while (r->nentries < p.nwant && now_ms() < end)
			run_tick(r->h->base, 5000);
		run_pending(r->h->base);
		check_done(r);
		run_free(r);
	}
}
END_TEST

/* _i: policy x mode x (2-byte, 7-byte terminator). A terminator that
 * arrives a byte at a time is held back, not gathered: a frame of exactly
 * the limit stays accepted, one byte more still triggers the policy. */
START_TEST(test_held_terminator_not_counted)
{
	enum evchat_limit_policy policy = (enum evchat_limit_policy)(_i / 4);
	int collect = _i % 2;
	const char *term = _i / 2 % 2 ? "<<END>>" : "\r\n";
	size_t term_len = strlen(term);
	char exact[32], over[32], after[32];
	snprintf(exact, sizeof(exact), "0123456789%s", term);
	snprintf(over, sizeof(over), "0123456789a%s", term);
	snprintf(after, sizeof(after), "ok%s", term);
	note("%s, %s mode, terminator \"%s\"", policy_names[policy],
	     collect ? "collect" : "frame", term);
	struct run *r = run_new(collect, 0);
	ck_assert_int_eq(evchat_set_frame_limit(r->h->chat, 10, policy), 0);
	ck_assert_int_eq(evchat_set_terminator(r->h->chat, term, term_len), 0);
	r->limit = 10;
	/* The terminator's start right after the limit, held back. */
	for (size_t i = 0; i < strlen(exact); i++)
		send_bytes(r, exact + i, 1);
	expect_bytes("transcript", r->log, LIT("F10:0123456789|"));
	for (size_t i = 0; i < strlen(over); i++)
		send_bytes(r, over + i, 1);
	send_bytes(r, after, strlen(after));
	static const char *const want[] = {
		"F10:0123456789|T|",
		"F10:0123456789|D11|F2:ok|",
		"F10:0123456789|P10:0123456789|F1:a|F2:ok|",
	};
	expect_bytes("transcript", r->log, want[policy], strlen(want[policy]));
	run_free(r);
}
END_TEST

/* ------------------------------------------------------------------ */
/* No terminator: one frame that only grows */

/* _i: policy x mode. 3 limits and 2 bytes under "none", cut at every
 * byte, then "\n" set from outside a hook ends the frame. */
START_TEST(test_none_policies)
{
	enum evchat_limit_policy policy = (enum evchat_limit_policy)(_i / 2);
	int collect = _i % 2;
	static const char data[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	size_t len = 3 * LIMIT + 2;
	for (size_t cut = 0; cut <= len + 1; cut++) {
		/* cut == len + 1: one byte per write. */
		note("none, %s, %s mode, %s %zu", policy_names[policy],
		     collect ? "collect" : "frame",
		     cut > len ? "1-byte writes" : "cut at", cut);
		struct run *r = run_new(collect, 0);
		ck_assert_int_eq(evchat_set_frame_limit(r->h->chat, LIMIT,
		                                        policy),
		                 0);
		r->limit = LIMIT;
		size_t sent = 0;
		while (sent < len) {
			size_t n = cut > len ? 1 : sent < cut ? cut : len - cut;
			send_bytes(r, data + sent, n);
			sent += n;
			/* Until then, the frame of exactly the limit is
			 * just pending; one byte more, the policy. */
			size_t held = r->collect
			                  ? evbuffer_get_length(r->collecting)
			                  : pending_len(r->h);
			if (sent <= LIMIT) {
				ck_assert_uint_eq(r->nentries, 0);
				ck_assert_uint_eq(held, sent);
			} else if (policy == EVCHAT_LIMIT_CLOSE) {
				expect_bytes("transcript", r->log, LIT("T|"));
			} else if (policy == EVCHAT_LIMIT_DISCARD) {
				ck_assert_uint_eq(r->nentries, 0);
				ck_assert_uint_le(held, LIMIT);
			} else {
				/* A piece goes once more is known to follow,
				 * or as soon as it is full. */
				ck_assert_uint_ge(r->nentries,
				                  (sent - 1) / LIMIT);
				ck_assert_uint_le(r->nentries, sent / LIMIT);
				ck_assert_uint_eq(held + r->nentries * LIMIT,
				                  sent);
			}
		}
		ck_assert_int_eq(evchat_set_terminator_line(r->h->chat,
		                                            EVCHAT_EOL_LF),
		                 0);
		send_bytes(r, LIT("wxyz\nnext\n"));
		static const char *const want[] = {
			"T|",
			"D30|F4:next|",
			("P8:01234567|P8:89abcdef|P8:ghijklmn|F6:opwxyz|"
			 "F4:next|"),
		};
		expect_bytes("transcript", r->log, want[policy],
		             strlen(want[policy]));
		run_free(r);
	}
}
END_TEST

/* ------------------------------------------------------------------ */
/* Limits per terminator */

enum { HEAD_LIMIT = 24, BODY_LIMIT = 64 };

/* An HTTP-like found hook: header lines under a short limit whose long
 * lines are skipped; an empty line starts a Content-Length body, counted
 * under a larger limit that ends the connection when exceeded. */
static void http_like(struct run *r, struct evchat *chat)
{
	if (r->state == 1) {
		/* The body is done: headers again. */
		r->state = 0;
		r->content_length = -1;
		ck_assert_int_eq(evchat_set_terminator_line(chat,
		                                            EVCHAT_EOL_CRLF),
		                 0);
		ck_assert_int_eq(evchat_set_frame_limit(chat, HEAD_LIMIT,
		                                        EVCHAT_LIMIT_DISCARD),
		                 0);
		r->limit = HEAD_LIMIT;
		return;
	}
	if (r->last_discarded)
		return;
	size_t len = evbuffer_get_length(r->last);
	const char *line = len ? (const char *)evbuffer_pullup(r->last, -1)
	                       : "";
	static const char cl[] = "Content-Length: ";
	if (len > sizeof(cl) - 1 && memcmp(line, cl, sizeof(cl) - 1) == 0) {
		char num[16] = "";
		memcpy(num, line + sizeof(cl) - 1,
		       len - (sizeof(cl) - 1) < 15 ? len - (sizeof(cl) - 1)
		                                   : 15);
		r->content_length = strtol(num, NULL, 10);
	} else if (len == 0 && r->content_length >= 0) {
		r->state = 1;
		ck_assert_int_eq(evchat_set_terminator_count(
		                     chat, (ev_uint64_t)r->content_length),
		                 0);
		ck_assert_int_eq(evchat_set_frame_limit(chat, BODY_LIMIT,
		                                        EVCHAT_LIMIT_CLOSE),
		                 0);
		r->limit = BODY_LIMIT;
	}
}

static void plan_http_like(struct plan *p)
{
	char body[BODY_LIMIT + 1];
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = "body\r\n"[i % 6];
	plan_init(p);
#define HEAD(s) plan_add(p, K_CRLF, HEAD_LIMIT, EVCHAT_LIMIT_DISCARD, LIT(s))
#define BODY(n) plan_add(p, K_COUNT, BODY_LIMIT, EVCHAT_LIMIT_CLOSE, body, n)
	HEAD("POST /first HTTP/1.1");
	HEAD("X-Too-Long: 0123456789abc"); /* 25: skipped */
	HEAD("X-Exactly: 0123456789abc");  /* 24: kept */
	HEAD("Content-Length: 64");
	HEAD("");
	BODY(BODY_LIMIT); /* over the header limit, within the body's */
	HEAD("POST /second HTTP/1.1");
	HEAD("Content-Length: 65");
	HEAD("");
	BODY(BODY_LIMIT + 1);
	HEAD("GET /never HTTP/1.1");
#undef HEAD
#undef BODY
}

static struct run *run_http_like(const struct plan *p, int collect)
{
	struct run *r = run_new(collect, 0);
	r->plan = p;
	r->after_frame = http_like;
	r->content_length = -1;
	ck_assert_int_eq(evchat_set_terminator_line(r->h->chat,
	                                            EVCHAT_EOL_CRLF),
	                 0);
	ck_assert_int_eq(evchat_set_frame_limit(r->h->chat, HEAD_LIMIT,
	                                        EVCHAT_LIMIT_DISCARD),
	                 0);
	r->limit = HEAD_LIMIT;
	return r;
}

/* _i: mode. Cut at every byte, and one byte per write. */
START_TEST(test_limit_per_terminator)
{
	int collect = _i;
	struct plan p;
	plan_http_like(&p);
	for (size_t cut = 0; cut <= p.wire_len + 1; cut++) {
		note("HTTP-like, %s mode, %s %zu",
		     collect ? "collect" : "frame",
		     cut > p.wire_len ? "1-byte writes" : "cut at", cut);
		struct run *r = run_http_like(&p, collect);
		if (cut > p.wire_len)
			send_plan_bytewise(r);
		else
			send_plan_cut(r, cut);
		check_done(r);
		run_free(r);
	}
}
END_TEST

/* _i: policy. The limit lowered while a frame is half gathered (frame
 * mode, where the channel holds those bytes): the frame then grows past
 * the new limit, and the policy applies to it as a whole: too long, one
 * discard of all of it, or pieces of at most the new limit. Raised again,
 * a frame over the old limit is whole. */
START_TEST(test_limit_changed_mid_frame)
{
	enum evchat_limit_policy policy = (enum evchat_limit_policy)_i;
	note("%s", policy_names[policy]);
	struct run *r = run_new(0, 0);
	ck_assert_int_eq(evchat_set_terminator(r->h->chat, LIT("\n")), 0);
	ck_assert_int_eq(evchat_set_frame_limit(r->h->chat, 100, policy), 0);
	send_bytes(r, LIT("0123456789"));
	ck_assert_int_eq(evchat_set_frame_limit(r->h->chat, 5, policy), 0);
	send_bytes(r, LIT("abc\nok\n0123"));
	static const char *const want[] = {
		"T|",
		"D13|F2:ok|",
		"P5:01234|P5:56789|F3:abc|F2:ok|",
	};
	expect_bytes("transcript", r->log, want[policy], strlen(want[policy]));
	if (policy != EVCHAT_LIMIT_CLOSE) {
		ck_assert_int_eq(evchat_set_frame_limit(r->h->chat, 100,
		                                        policy),
		                 0);
		send_bytes(r, LIT("456789\n"));
		ck_assert_uint_eq(r->nentries,
		                  policy == EVCHAT_LIMIT_SPLIT ? 5 : 3);
		const char *log = (const char *)evbuffer_pullup(r->log, -1);
		size_t from = r->log_len_at[r->nentries - 1];
		ck_assert_int_eq(memcmp(log + from, "F10:0123456789|", 15), 0);
	}
	run_free(r);
}
END_TEST

/* _i: policy x mode. The limit lowered under a frame that then ends with
 * no byte more: the policy applies to it all the same. It used to apply
 * only with the frame's next byte, so the frame was delivered whole. */
START_TEST(test_limit_lowered_then_frame_ends)
{
	enum evchat_limit_policy policy = (enum evchat_limit_policy)(_i % 3);
	int collect = _i / 3;
	note("%s, %s mode", policy_names[policy],
	     collect ? "collect" : "frame");
	struct run *r = run_new(collect, 0);
	ck_assert_int_eq(evchat_set_terminator(r->h->chat, LIT("\n")), 0);
	ck_assert_int_eq(evchat_set_frame_limit(r->h->chat, 100, policy), 0);
	send_bytes(r, LIT("0123456789"));
	ck_assert_int_eq(evchat_set_frame_limit(r->h->chat, 4, policy), 0);
	send_bytes(r, LIT("\nok\n"));
	static const char *const want[2][3] = {
		{ "T|", "D10|F2:ok|", "P4:0123|P4:4567|F2:89|F2:ok|" },
		{ "T|", "D10|F2:ok|", "P10:0123456789|F0:|F2:ok|" },
	};
	expect_bytes("transcript", r->log, want[collect][policy],
	             strlen(want[collect][policy]));
	run_free(r);
}
END_TEST

/* _i: policy x mode. Half a length header joins the frame when the
 * terminator changes, and puts it over the limit: the policy applies
 * before the frame can end. The joined bytes went unchecked, and the
 * frame was delivered over the limit. (Found by a review.) */
START_TEST(test_joined_header_over_limit)
{
	static const struct evchat_length_field two_bytes = { 0, 2, 0, 0, 0 };
	enum evchat_limit_policy policy = (enum evchat_limit_policy)(_i % 3);
	int collect = _i / 3;
	note("%s, %s mode", policy_names[policy],
	     collect ? "collect" : "frame");
	struct run *r = run_new(collect, 0);
	struct evchat *chat = r->h->chat;
	ck_assert_int_eq(evchat_set_terminator_none(chat), 0);
	ck_assert_int_eq(evchat_set_frame_limit(chat, 4, policy), 0);
	r->limit = 4;
	send_bytes(r, LIT("abcd"));
	ck_assert_int_eq(evchat_set_terminator_length(chat, &two_bytes), 0);
	send_bytes(r, LIT("Z"));
	/* In collect mode under SPLIT the joined byte comes with the piece
	 * it joins, one over (documented). */
	if (collect && policy == EVCHAT_LIMIT_SPLIT)
		r->limit = 5;
	ck_assert_int_eq(evchat_set_terminator(chat, LIT("\n")), 0);
	send_bytes(r, LIT("\nok\n"));
	static const char *const want[2][3] = {
		{ "T|", "D5|F2:ok|", "P4:abcd|F1:Z|F2:ok|" },
		{ "T|", "D5|F2:ok|", "P5:abcdZ|F0:|F2:ok|" },
	};
	expect_bytes("transcript", r->log, want[collect][policy],
	             strlen(want[collect][policy]));
	run_free(r);
}
END_TEST

/* The collect hook of test_limit_lowered_in_collect: the run's, and the
 * limit lowered to 4 once 8 bytes of the frame were collected. */
static void collect_then_lower(struct evchat *chat, struct evbuffer *data,
                               void *arg)
{
	struct run *r = arg;
	lim_collect(chat, data, arg);
	if (evbuffer_get_length(r->collecting) >= 8 && r->limit > 4) {
		r->limit = 0; /* collected under the old limit */
		ck_assert_int_eq(evchat_set_max_frame(chat, 4), 0);
	}
}

/* _i: policy x whether the frame's end comes in the read that brought
 * its bytes. A collect hook that lowers the limit under the frame: the
 * policy applies all the same. A line ending in the same read was
 * delivered whole, and in the next one got the policy. (Found by a
 * review.) */
START_TEST(test_limit_lowered_in_collect)
{
	enum evchat_limit_policy policy = (enum evchat_limit_policy)(_i % 3);
	int same_read = _i / 3;
	note("%s, end %s", policy_names[policy],
	     same_read ? "in the same read" : "in the next read");
	struct run *r = run_new(1, 0);
	struct evchat *chat = r->h->chat;
	evchat_setcb(chat, collect_then_lower, lim_found, lim_event, r);
	ck_assert_int_eq(evchat_set_terminator(chat, LIT("\n")), 0);
	ck_assert_int_eq(evchat_set_frame_limit(chat, 100, policy), 0);
	r->limit = 100;
	if (same_read) {
		send_bytes(r, LIT("abcdefgh\nXY\n"));
	} else {
		send_bytes(r, LIT("abcdefgh"));
		send_bytes(r, LIT("\nXY\n"));
	}
	static const char *const want[] = {
		"T|",
		"D8|F2:XY|",
		"P8:abcdefgh|F0:|F2:XY|",
	};
	expect_bytes("transcript", r->log, want[policy], strlen(want[policy]));
	run_free(r);
}
END_TEST

/* The found hook of test_piece_hook_joins_half_header: the run's, and a
 * line terminator set on every piece. */
static void found_then_lines(struct evchat *chat, struct evbuffer *frame,
                             void *arg)
{
	int partial = evchat_frame_is_partial(chat);
	lim_found(chat, frame, arg);
	if (partial)
		ck_assert_int_eq(evchat_set_terminator(chat, LIT("\n")), 0);
}

/* Collect mode, SPLIT: a limit lowered under a frame while half a length
 * header waits ends a piece at once; the piece's hook sets a line
 * terminator, and the half header joins what follows. The end of the
 * piece dropped it. (Found by fuzz_input.) */
START_TEST(test_piece_hook_joins_half_header)
{
	static const struct evchat_length_field two_bytes = { 0, 2, 0, 0, 0 };
	struct run *r = run_new(1, 0);
	struct evchat *chat = r->h->chat;
	evchat_setcb(chat, lim_collect, found_then_lines, lim_event, r);
	ck_assert_int_eq(evchat_set_terminator_none(chat), 0);
	ck_assert_int_eq(evchat_set_frame_limit(chat, 100, EVCHAT_LIMIT_SPLIT),
	                 0);
	send_bytes(r, LIT("abcdef"));
	ck_assert_int_eq(evchat_set_terminator_length(chat, &two_bytes), 0);
	send_bytes(r, LIT("Z"));
	ck_assert_int_eq(evchat_set_frame_limit(chat, 4, EVCHAT_LIMIT_SPLIT),
	                 0);
	r->limit = 4;
	run_pending(r->h->base);
	send_bytes(r, LIT("yz\n"));
	expect_bytes("transcript", r->log, LIT("P6:abcdef|F3:Zyz|"));
	run_free(r);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Memory stays bounded while a huge frame is skipped */

enum { HUGE = 4 << 20, SMALL_LIMIT = 1024, READ_SIZE = 65536 };

/* Sends len bytes made by fill(), then the tail, while running the loop
 * (the channel must read for the peer to go on), checking whenever the
 * peer has to wait that the channel holds no more than the limit and the
 * heap has not grown by more than a few reads. */
static void send_bounded(struct run *r, size_t len,
                         void (*fill)(char *, size_t, size_t), const void *tail,
                         size_t tail_len)
{
	char chunk[16384];
	size_t total = len + tail_len, sent = 0, off = 0, have = 0;
	long long deadline = now_ms() + 5000;
	struct bufferevent *bev = evchat_get_bufferevent(r->h->chat);
	size_t heap_before = heap_in_use();
	while (sent < total) {
		if (off == have) {
			off = 0;
			if (sent < len) {
				have = len - sent < sizeof(chunk)
				           ? len - sent
				           : sizeof(chunk);
				fill(chunk, sent, have);
			} else {
				have = tail_len;
				memcpy(chunk, tail, tail_len);
			}
		}
		ssize_t n = send(r->h->c.peer, chunk + off, have - off,
		                 MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			sent += (size_t)n;
			deadline = now_ms() + 5000;
			continue;
		}
		ck_assert_msg(n < 0 && (errno == EAGAIN ||
		                        errno == EWOULDBLOCK || errno == EINTR),
		              "send: %s", strerror(errno));
		ck_assert_msg(now_ms() < deadline,
		              "%s: the channel stopped reading after %zu bytes",
		              test_ctx, sent);
		run_tick(r->h->base, 1000);
		ck_assert_msg(pending_len(r->h) <= SMALL_LIMIT,
		              "%s: %zu bytes pending after %zu sent", test_ctx,
		              pending_len(r->h), sent);
		ck_assert_uint_le(evbuffer_get_length(
		                      bufferevent_get_input(bev)),
		                  2 * READ_SIZE);
		ck_assert_uint_le(evbuffer_get_length(r->collecting),
		                  SMALL_LIMIT);
		size_t heap = heap_in_use();
		ck_assert_msg(heap < heap_before + 4 * READ_SIZE,
		              "%s: the heap grew by %zu bytes after %zu sent",
		              test_ctx, heap - heap_before, sent);
		if (sent < len)
			ck_assert_uint_eq(r->nentries, 0);
	}
}

static void fill_line(char *p, size_t at, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)('a' + (at + i) % 26);
}

static void fill_binary(char *p, size_t at, size_t n)
{
	/* Anything but a length header: the body is never parsed. */
	for (size_t i = 0; i < n; i++)
		p[i] = (char)((at + i) * 7);
}

/* Runs the loop until the transcript has n entries, checking the bound. */
static void run_until_entries(struct run *r, size_t n)
{
	long long end = now_ms() + 3000;
	while (r->nentries < n && now_ms() < end) {
		run_tick(r->h->base, 5000);
		ck_assert_uint_le(pending_len(r->h), SMALL_LIMIT);
	}
	run_pending(r->h->base);
}

/* _i: mode x (socketpair, TCP). A 4 MiB line under a 1 KiB limit. */
START_TEST(test_discard_memory_bound)
{
	int collect = _i % 2, tcp = _i / 2;
	note("4 MiB line, %s mode, %s", collect ? "collect" : "frame",
	     tcp ? "TCP" : "socketpair");
	struct run *r = run_new(collect, tcp);
	ck_assert_int_eq(evchat_set_terminator_line(r->h->chat, EVCHAT_EOL_LF),
	                 0);
	ck_assert_int_eq(evchat_set_frame_limit(r->h->chat, SMALL_LIMIT,
	                                        EVCHAT_LIMIT_DISCARD),
	                 0);
	r->limit = SMALL_LIMIT;
	send_bounded(r, HUGE, fill_line, LIT("\nnext line\n"));
	run_until_entries(r, 2);
	expect_bytes("transcript", r->log, LIT("D4194304|F9:next line|"));
	ck_assert_uint_eq(pending_len(r->h), 0);
	run_free(r);
}
END_TEST

/* _i: mode. A length field that announces 4 MiB under a 1 KiB limit:
 * the body is skipped as it arrives, never gathered. */
START_TEST(test_length_discard_skips_body)
{
	static const struct evchat_length_field len32 = { 0, 4, 0, 0, 4 };
	static const unsigned char huge_header[] = { 0x00, 0x40, 0x00, 0x00 };
	static const unsigned char next[] = { 0, 0, 0, 4, 'n', 'e', 'x', 't' };
	note("length field, %s mode", _i ? "collect" : "frame");
	struct run *r = run_new(_i, 0);
	ck_assert_int_eq(evchat_set_terminator_length(r->h->chat, &len32), 0);
	ck_assert_int_eq(evchat_set_frame_limit(r->h->chat, SMALL_LIMIT,
	                                        EVCHAT_LIMIT_DISCARD),
	                 0);
	r->limit = SMALL_LIMIT;
	send_bytes(r, huge_header, sizeof(huge_header));
	ck_assert_uint_eq(r->nentries, 0);
	ck_assert_uint_eq(evbuffer_get_length(r->collecting), 0);
	send_bounded(r, HUGE, fill_binary, next, sizeof(next));
	run_until_entries(r, 2);
	expect_bytes("transcript", r->log, LIT("D4194304|F4:next|"));
	ck_assert_uint_eq(pending_len(r->h), 0);
	run_free(r);
}
END_TEST

/* _i: mode x case. A length field set while a frame is being skipped
 * (DISCARD, under "none"): the frame goes on being skipped through its
 * header and body, the header's kept byte counted as discarded (case 0);
 * half a header, when a string terminator follows, is discarded with the
 * frame too (case 1). Either way the next frame starts clean: those
 * bytes used to stay behind and start it, or reach collect. */
START_TEST(test_length_set_while_skipping)
{
	static const struct evchat_length_field one_byte = { 0, 1, 0, 0, 0 };
	static const struct evchat_length_field two_bytes = { 0, 2, 0, 0, 0 };
	int collect = _i % 2;
	note("%s mode, case %d", collect ? "collect" : "frame", _i / 2);
	struct run *r = run_new(collect, 0);
	struct evchat *chat = r->h->chat;
	ck_assert_int_eq(evchat_set_terminator_none(chat), 0);
	ck_assert_int_eq(evchat_set_frame_limit(chat, 4, EVCHAT_LIMIT_DISCARD),
	                 0);
	r->limit = 4;
	send_bytes(r, LIT("abcdefg"));
	ck_assert_uint_eq(r->nentries, 0);
	if (_i / 2 == 0) {
		ck_assert_int_eq(evchat_set_terminator_length(chat, &one_byte),
		                 0);
		send_bytes(r, LIT("\1z\2xy"));
		run_until_entries(r, 2);
		expect_bytes("transcript", r->log, LIT("D9|F3:\2xy|"));
	} else {
		ck_assert_int_eq(evchat_set_terminator_length(chat, &two_bytes),
		                 0);
		send_bytes(r, LIT("\0"));
		ck_assert_int_eq(evchat_set_terminator(chat, LIT("\n")), 0);
		send_bytes(r, LIT("xy\nok\n"));
		run_until_entries(r, 2);
		expect_bytes("transcript", r->log, LIT("D10|F2:ok|"));
	}
	ck_assert_uint_eq(pending_len(r->h), 0);
	run_free(r);
}
END_TEST

/* _i: mode. Under CLOSE the header alone is enough to refuse the frame:
 * the event comes before any byte of the body. */
START_TEST(test_length_close_after_header)
{
	static const unsigned char input[] = {
		0,   2,   'o', 'k', 0,   9,   'e', 'x', 'a',
		'c', 't', 'l', 'y', '-', '9', 0,   10,  'x',
	};
	note("length field, %s mode", _i ? "collect" : "frame");
	struct run *r = run_new(_i, 0);
	ck_assert_int_eq(evchat_set_terminator_length(r->h->chat, &len16), 0);
	ck_assert_int_eq(evchat_set_frame_limit(r->h->chat, 9,
	                                        EVCHAT_LIMIT_CLOSE),
	                 0);
	r->limit = 9;
	send_bytes(r, input, sizeof(input) - 2);
	expect_bytes("transcript", r->log, LIT("F2:ok|F9:exactly-9|"));
	send_bytes(r, input + sizeof(input) - 2, 1);
	expect_bytes("transcript", r->log, LIT("F2:ok|F9:exactly-9|T|"));
	/* Reading has stopped. */
	send_bytes(r, LIT("\0\2ab"));
	expect_bytes("transcript", r->log, LIT("F2:ok|F9:exactly-9|T|"));
	run_free(r);
}
END_TEST

/* A found hook for "LEN <n>" lines: the next frame is a count of n. */
static void announce(struct run *r, struct evchat *chat)
{
	if (r->state == 1) {
		r->state = 0;
		ck_assert_int_eq(evchat_set_terminator(chat, LIT("\n")), 0);
		return;
	}
	size_t len = evbuffer_get_length(r->last);
	char line[32] = "";
	ck_assert_uint_lt(len, sizeof(line));
	evbuffer_copyout(r->last, line, len);
	if (strncmp(line, "LEN ", 4) == 0) {
		r->state = 1;
		ck_assert_int_eq(evchat_set_terminator_count(
		                     chat, strtoull(line + 4, NULL, 10)),
		                 0);
	}
}

/* A run whose lines "LEN <n>" announce a count, under a limit of 9. */
static struct run *announcing_run(int collect, enum evchat_limit_policy policy)
{
	struct run *r = run_new(collect, 0);
	r->after_frame = announce;
	ck_assert_int_eq(evchat_set_terminator(r->h->chat, LIT("\n")), 0);
	ck_assert_int_eq(evchat_set_frame_limit(r->h->chat, 9, policy), 0);
	r->limit = 9;
	return r;
}

/* _i: mode. Under CLOSE a count over the limit is refused when it is
 * set, as a length field is once its header is read: the peer that
 * announces too much hears of it before sending any of it. */
START_TEST(test_count_close_when_set)
{
	note("count, %s mode", _i ? "collect" : "frame");
	struct run *r = announcing_run(_i, EVCHAT_LIMIT_CLOSE);
	send_bytes(r, LIT("LEN 9\nexactly-9ok\n"));
	expect_bytes("transcript", r->log, LIT("F5:LEN 9|F9:exactly-9|F2:ok|"));
	send_bytes(r, LIT("LEN 10\n"));
	expect_bytes("transcript", r->log,
	             LIT("F5:LEN 9|F9:exactly-9|F2:ok|F6:LEN 10|T|"));
	run_free(r);

	/* Far over any size_t, and set outside a hook, before any byte. */
	r = run_new(_i, 0);
	ck_assert_int_eq(evchat_set_terminator_count(r->h->chat,
	                                             (ev_uint64_t)-1),
	                 0);
	run_pending(r->h->base);
	expect_bytes("transcript", r->log, LIT("T|"));
	run_free(r);

	/* A limit lowered under a count already set, no byte of it come. */
	r = run_new(_i, 0);
	ck_assert_int_eq(evchat_set_terminator_count(r->h->chat, 13), 0);
	run_pending(r->h->base);
	expect_bytes("transcript", r->log, LIT(""));
	ck_assert_int_eq(evchat_set_frame_limit(r->h->chat, 4,
	                                        EVCHAT_LIMIT_CLOSE),
	                 0);
	run_pending(r->h->base);
	expect_bytes("transcript", r->log, LIT("T|"));
	run_free(r);
}
END_TEST

/* _i: mode. Under DISCARD a count over the limit is skipped from its
 * start: none of it is gathered or collected, and the frame after it
 * comes whole. */
START_TEST(test_count_discard_skips_all)
{
	note("count, %s mode", _i ? "collect" : "frame");
	struct run *r = announcing_run(_i, EVCHAT_LIMIT_DISCARD);
	/* Five bytes would fit the limit: not one is kept all the same. */
	send_bytes(r, LIT("LEN 12\n01234"));
	expect_bytes("transcript", r->log, LIT("F6:LEN 12|"));
	ck_assert_uint_eq(evbuffer_get_length(r->collecting), 0);
	ck_assert_uint_eq(pending_len(r->h), 0);
	send_bytes(r, LIT("56789abnext\n"));
	expect_bytes("transcript", r->log, LIT("F6:LEN 12|D12|F4:next|"));
	run_free(r);
}
END_TEST

/* ------------------------------------------------------------------ */
/* A terminator set on a piece */

/* The hook of test_terminator_set_on_piece: `script` 0 answers "COUNT n"
 * with a count of n and everything else, pieces too, with CRLF lines; 1
 * answers a piece with a count of 5 and the rest with CRLF lines; 2
 * lifts the limit on a piece. Each
 * call is logged with the terminator it ran under and what was left of a
 * count. */
struct piece_run {
	int script;
	struct evbuffer *log;
};

static void piece_hook(struct evchat *chat, const unsigned char *frame,
                       size_t len, void *arg)
{
	struct piece_run *pr = arg;
	ev_uint64_t left = 0;
	enum evchat_term kind = evchat_get_terminator(chat, NULL, NULL, &left);
	int partial = evchat_frame_is_partial(chat);
	size_t tail = len < 4 ? len : 4;
	evbuffer_add_printf(pr->log, "%c%zu:%d:%llu:%.*s|", partial ? 'P' : 'F',
	                    len, (int)kind, (unsigned long long)left, (int)tail,
	                    (const char *)frame + len - tail);
	if (len > 6 && memcmp(frame, "COUNT ", 6) == 0)
		ck_assert_int_eq(evchat_set_terminator_count(chat, 250), 0);
	else if (partial && pr->script == 1)
		ck_assert_int_eq(evchat_set_terminator_count(chat, 5), 0);
	else if (partial && pr->script == 2)
		ck_assert_int_eq(evchat_set_max_frame(chat, 0), 0);
	else
		ck_assert_int_eq(evchat_set_terminator_line(chat,
		                                            EVCHAT_EOL_CRLF),
		                 0);
}

/* The log of one run: the wire sent in two writes cut at `cut` (0: one
 * write), or a byte at a time (cut == SIZE_MAX). */
static char *piece_log(int script, const char *wire, size_t len, size_t cut)
{
	struct harness *h = harness_new(0, 0);
	struct piece_run pr = { script, evbuffer_new() };
	ck_assert_ptr_nonnull(pr.log);
	evchat_setcb_bytes(h->chat, NULL, piece_hook, NULL, &pr);
	ck_assert_int_eq(evchat_set_frame_limit(h->chat, 100,
	                                        EVCHAT_LIMIT_SPLIT),
	                 0);
	ck_assert_int_eq(evchat_set_terminator_line(h->chat, EVCHAT_EOL_CRLF),
	                 0);
	size_t step = cut == SIZE_MAX ? 1 : cut > 0 ? cut : len;
	for (size_t at = 0; at < len; at += step) {
		if (cut != SIZE_MAX && at > 0)
			step = len - at;
		write_all(h->c.peer, wire + at,
		          at + step > len ? len - at : step);
		run_pending(h->base);
	}
	run_pending(h->base);
	size_t n = evbuffer_get_length(pr.log);
	char *text = malloc(n + 1);
	ck_assert_ptr_nonnull(text);
	evbuffer_remove(pr.log, text, n);
	text[n] = '\0';
	evbuffer_free(pr.log);
	harness_free(h);
	return text;
}

/* The same when the pieces come from a frame gathered under a higher
 * limit, which was lowered before its end came: the piece's new
 * terminator frames the bytes gathered after the piece too, as if the
 * lower limit had held from the start. _i 1: the piece's hook lifts the
 * limit instead, and the rest of the frame comes whole (the pieces went
 * on, empty, for ever). */
START_TEST(test_terminator_set_on_piece_of_gathered)
{
	static const char *const want[] = {
		/* 30, then counts of 5 and lines split at 30 by turns. */
		"P30:3:0:cccc|F5:0:0:cccc|P30:3:0:cccc|F5:0:0:cccc|"
		"P30:3:0:cccc|F5:0:0:cccc|F15:3:0:cccc|F5:3:0:fter|",
		"P30:3:0:cccc|F90:3:0:cccc|F5:3:0:fter|",
	};
	char wire[160];
	memset(wire, 'c', 120);
	memcpy(wire + 120, "\r\nafter\r\n", 9);
	size_t len = 129;
	struct harness *h = harness_new(0, 0);
	struct piece_run pr = { _i == 0 ? 1 : 2, evbuffer_new() };
	ck_assert_ptr_nonnull(pr.log);
	evchat_setcb_bytes(h->chat, NULL, piece_hook, NULL, &pr);
	ck_assert_int_eq(evchat_set_terminator_line(h->chat, EVCHAT_EOL_CRLF),
	                 0);
	ck_assert_int_eq(evchat_set_frame_limit(h->chat, 100,
	                                        EVCHAT_LIMIT_SPLIT),
	                 0);
	write_all(h->c.peer, wire, 80);
	run_pending(h->base);
	ck_assert_uint_eq(evbuffer_get_length(pr.log), 0);
	ck_assert_int_eq(evchat_set_frame_limit(h->chat, 30,
	                                        EVCHAT_LIMIT_SPLIT),
	                 0);
	write_all(h->c.peer, wire + 80, len - 80);
	run_pending(h->base);
	run_pending(h->base);
	char *lowered = malloc(evbuffer_get_length(pr.log) + 1);
	ck_assert_ptr_nonnull(lowered);
	size_t n = evbuffer_remove(pr.log, lowered, 4096);
	lowered[n] = '\0';
	evbuffer_free(pr.log);
	harness_free(h);
	ck_assert_str_eq(lowered, want[_i]);
	free(lowered);
}
END_TEST

/* A found hook that sets a terminator on a piece of a frame split by
 * LIMIT_SPLIT: what follows the piece is framed by the new terminator,
 * however the peer's bytes were cut into reads, and inside the hook a
 * count tells what is left of it after the piece. (One read went on with
 * the old terminator to the frame's end, a read that ended with the piece
 * did not; and a count said the same inside every piece of one read.)
 * _i 0: a count's pieces go back to lines; 1: a line's pieces set
 * counts. */
START_TEST(test_terminator_set_on_piece)
{
	static const char *const want[] = {
		/* The count's first piece goes back to lines: the rest of
		 * the count and "line" are one line, split at 100. */
		"F9:3:0: 250|P100:2:150:aaaa|P100:3:0:aaaa|F54:3:0:line|"
		"F5:3:0:fter|",
		/* The line's pieces set counts of 5: 100, 5, 100, 5, and
		 * what is left of the line. */
		"P100:3:0:bbbb|F5:0:0:bbbb|P100:3:0:bbbb|F5:0:0:bbbb|"
		"F40:3:0:bbbb|F5:3:0:fter|",
	};
	char wire[320];
	char body[251];
	memset(body, _i == 0 ? 'a' : 'b', 250);
	body[250] = '\0';
	int len = snprintf(wire, sizeof(wire), "%s%s%s\r\nafter\r\n",
	                   _i == 0 ? "COUNT 250\r\n" : "", body,
	                   _i == 0 ? "line" : "");
	ck_assert_int_gt(len, 0);
	ck_assert_int_lt(len, (int)sizeof(wire));
	char *whole = piece_log(_i, wire, (size_t)len, 0);
	ck_assert_str_eq(whole, want[_i]);
	free(whole);
	for (size_t cut = 1; cut <= (size_t)len; cut++) {
		char *log = piece_log(_i, wire, (size_t)len,
		                      cut == (size_t)len ? SIZE_MAX : cut);
		ck_assert_msg(strcmp(log, want[_i]) == 0,
		              "cut at %zu: %s, want %s", cut, log, want[_i]);
		free(log);
	}
}
END_TEST

/* ------------------------------------------------------------------ */
/* The calls themselves */

START_TEST(test_limit_arguments)
{
	struct run *r = run_new(0, 0);
	struct evchat *chat = r->h->chat;
	ASSERT_FAILS(evchat_set_frame_limit(NULL, 10, EVCHAT_LIMIT_CLOSE),
	             EINVAL);
	ASSERT_FAILS(evchat_set_frame_limit(chat, 10,
	                                    (enum evchat_limit_policy)3),
	             EINVAL);
	ASSERT_FAILS(evchat_set_frame_limit(chat, 10,
	                                    (enum evchat_limit_policy) - 1),
	             EINVAL);
	ck_assert_uint_eq(evchat_get_discarded(NULL), 0);
	ck_assert_uint_eq(evchat_get_discarded(chat), 0);
	ck_assert_int_eq(evchat_frame_is_partial(NULL), 0);
	ck_assert_int_eq(evchat_frame_is_partial(chat), 0);

	/* A refused call changed nothing: the default limit and policy. */
	ck_assert_int_eq(evchat_set_terminator(chat, LIT("\n")), 0);
	send_bytes(r, LIT("abc\n"));
	expect_bytes("transcript", r->log, LIT("F3:abc|"));

	/* Limit 0 is no limit, whatever the policy. */
	ck_assert_int_eq(evchat_set_frame_limit(chat, 0, EVCHAT_LIMIT_SPLIT),
	                 0);
	r->limit = 0;
	char big[3000];
	memset(big, 'x', sizeof(big));
	big[sizeof(big) - 1] = '\n';
	send_bytes(r, big, sizeof(big));
	ck_assert_uint_eq(r->nentries, 2);
	ck_assert_uint_eq(r->log_len_at[2] - r->log_len_at[1],
	                  strlen("F2999:|") + 2999);
	/* Outside a hook nothing is partial, and the last discard stays. */
	ck_assert_int_eq(evchat_frame_is_partial(chat), 0);
	ck_assert_int_eq(evchat_set_frame_limit(chat, 2, EVCHAT_LIMIT_DISCARD),
	                 0);
	send_bytes(r, LIT("long\nok\n"));
	ck_assert_uint_eq(evchat_get_discarded(chat), 4);
	send_bytes(r, LIT("no\n"));
	ck_assert_uint_eq(evchat_get_discarded(chat), 4);
	run_free(r);
}
END_TEST

Suite *limits_suite(void)
{
	Suite *s = suite_create("limits");
	TCase *tc;

	tc = tcase_create("policies");
	tcase_add_loop_test(tc, test_policy_cut_everywhere, 0, NKINDS * 6);
	tcase_add_loop_test(tc, test_policy_one_byte_writes, 0, NKINDS * 6);
	tcase_add_loop_test(tc, test_policy_tcp, 0, 6);
	tcase_add_loop_test(tc, test_held_terminator_not_counted, 0, 12);
	tcase_add_loop_test(tc, test_none_policies, 0, 6);
	tcase_add_loop_test(tc, test_limit_per_terminator, 0, 2);
	tcase_add_loop_test(tc, test_limit_changed_mid_frame, 0, 3);
	tcase_add_loop_test(tc, test_limit_lowered_then_frame_ends, 0, 6);
	tcase_add_loop_test(tc, test_joined_header_over_limit, 0, 6);
	tcase_add_test(tc, test_piece_hook_joins_half_header);
	tcase_add_loop_test(tc, test_limit_lowered_in_collect, 0, 6);
	tcase_add_loop_test(tc, test_terminator_set_on_piece, 0, 2);
	tcase_add_loop_test(tc, test_terminator_set_on_piece_of_gathered, 0, 2);
	tcase_add_test(tc, test_limit_arguments);
	suite_add_tcase(s, tc);

	tc = tcase_create("bounded");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_discard_memory_bound, 0, 4);
	tcase_add_loop_test(tc, test_length_discard_skips_body, 0, 2);
	tcase_add_loop_test(tc, test_length_set_while_skipping, 0, 4);
	tcase_add_loop_test(tc, test_length_close_after_header, 0, 2);
	tcase_add_loop_test(tc, test_count_close_when_set, 0, 2);
	tcase_add_loop_test(tc, test_count_discard_skips_all, 0, 2);
	suite_add_tcase(s, tc);

	return s;
}
