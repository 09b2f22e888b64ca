/*
 * Framing: how the bytes a peer sends become frames, whatever the reads
 * look like. The frames a channel delivers must depend only on the byte
 * stream and the terminators, never on where the kernel split it, so most
 * tests here send the same input cut in many ways and expect the same
 * frames each time, in frame mode (no collect hook) and in collect mode
 * (a frame is the bytes collected between two found calls).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "helpers.h"
#include "suites.h"

/* ------------------------------------------------------------------ */
/* Fixtures: the harness, feed() and the assertions are shared, in
 * helpers.h */

/* ------------------------------------------------------------------ */
/* Reference framer: the whole input at once, one search per frame. */

/* asynchat's find_prefix_at_end(): the longest end of data that is a
 * proper prefix of term. */
static size_t prefix_at_end(const char *data, size_t len, const char *term,
                            size_t term_len)
{
	for (size_t l = term_len - 1; l > 0; l--)
		if (l <= len && memcmp(data + len - l, term, l) == 0)
			return l;
	return 0;
}

/* memmem(), written out: it is not in ISO C or POSIX. */
static const char *find_bytes(const char *hay, size_t hay_len,
                              const char *needle, size_t needle_len)
{
	for (size_t i = 0; i + needle_len <= hay_len; i++)
		if (memcmp(hay + i, needle, needle_len) == 0)
			return hay + i;
	return NULL;
}

struct ref_result {
	struct span *frames;
	size_t nframes;
	size_t rest_off; /* input[rest_off..] is in no frame */
	size_t held;     /* how much of that end is a held terminator prefix */
};

/* Frames input with script[0], then script[k % nscript] after the k-th
 * frame, as a found hook following the same script would. */
static void ref_frame(const char *input, size_t len,
                      const struct term_spec *script, size_t nscript,
                      struct ref_result *r)
{
	size_t pos = 0, k = 0, cap = 64;
	r->frames = malloc(cap * sizeof(*r->frames));
	ck_assert_ptr_nonnull(r->frames);
	r->nframes = 0;
	r->held = 0;
	for (;;) {
		const struct term_spec *t = &script[k % nscript];
		size_t start = pos, end;
		if (t->kind == EVCHAT_TERM_STRING) {
			const char *hit = find_bytes(input + pos, len - pos,
			                             t->str, t->len);
			if (hit == NULL) {
				r->held = prefix_at_end(input + pos, len - pos,
				                        t->str, t->len);
				break;
			}
			end = (size_t)(hit - input);
			pos = end + t->len;
		} else if (t->kind == EVCHAT_TERM_COUNT) {
			if (t->count > len - pos)
				break;
			end = pos + (size_t)t->count;
			pos = end;
		} else {
			break;
		}
		if (r->nframes == cap) {
			cap *= 2;
			r->frames = realloc(r->frames,
			                    cap * sizeof(*r->frames));
			ck_assert_ptr_nonnull(r->frames);
		}
		r->frames[r->nframes].p = input + start;
		r->frames[r->nframes].len = end - start;
		r->nframes++;
		k++;
	}
	r->rest_off = pos;
}

/* ------------------------------------------------------------------ */
/* String terminators, cut everywhere */

struct split_case {
	const char *term;
	size_t term_len;
	const char *input;
	size_t input_len;
	const char *frames[4];
	const char *rest; /* the unfinished frame */
	const char *held; /* a terminator prefix after it, held back */
};

#define T16 "ab-ab-ab-ab-ab-!"

/* Checked against Python's asynchat. Each input has an empty frame, ends
 * with an unfinished frame and (but for "\n") a partial terminator, and
 * has near misses of the longer terminators inside frames. */
static const struct split_case split_cases[] = {
	{ LIT("\n"),
	  LIT("first\n\nx\na longer frame!\ntail"),
	  { "first", "", "x", "a longer frame!" },
	  "tail",
	  "" },
	{ LIT("\r\n"),
	  LIT("first\r\n\r\nx\rx\r\n\n\r\r\r\ntail\r"),
	  { "first", "", "x\rx", "\n\r\r" },
	  "tail",
	  "\r" },
	{ LIT("qqq"),
	  LIT("qqqfirqqstqqqqqqqxqqqtailqq"),
	  { "", "firqqst", "", "qx" },
	  "tail",
	  "qq" },
	/* Self-overlapping, so a match can start inside a failed one. */
	{ LIT(T16),
	  LIT("hello" T16 T16 "ab-ab-ab-ab-ab-ab-!"
	      "ab-ab-ab-ab-ab-x" T16 "tail"
	      "ab-ab-ab"),
	  { "hello", "", "ab-", "ab-ab-ab-ab-ab-x" },
	  "tail",
	  "ab-ab-ab" },
};
#define NSPLIT (sizeof(split_cases) / sizeof(split_cases[0]))

/* After the input went in, however cut: the four frames, the unfinished
 * frame without its held-back terminator prefix; then at end of stream
 * EOF once, with the held prefix kept too. */
static void split_case_finish(struct harness *h, const struct split_case *sc,
                              int check_before_eof)
{
	char all[64];
	EXPECT_FRAMES(&h->rec, sc->frames[0], sc->frames[1], sc->frames[2],
	              sc->frames[3]);
	if (check_before_eof) {
		expect_bytes("unfinished before EOF", unfinished(h), sc->rest,
		             strlen(sc->rest));
		ck_assert_uint_eq(h->rec.nevents, 0);
	}
	conn_close_peer(&h->c);
	run_until_event(h, 2000);
	expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
	snprintf(all, sizeof(all), "%s%s", sc->rest, sc->held);
	expect_bytes("unfinished at EOF", h->unfinished_at_event, all,
	             strlen(all));
	EXPECT_FRAMES(&h->rec, sc->frames[0], sc->frames[1], sc->frames[2],
	              sc->frames[3]);
	run_pending(h->base);
	ck_assert_uint_eq(h->rec.nevents, 1);
}

/* _i: terminator (NSPLIT of them) x mode. Two writes, cut at every byte. */
START_TEST(test_string_split_everywhere)
{
	const struct split_case *sc = &split_cases[_i / 2];
	int collect = _i % 2;
	for (size_t cut = 0; cut <= sc->input_len; cut++) {
		note("term len %zu, %s mode, cut at %zu", sc->term_len,
		     collect ? "collect" : "frame", cut);
		struct harness *h = harness_new(collect, 0);
		ck_assert_int_eq(evchat_set_terminator(h->chat, sc->term,
		                                       sc->term_len),
		                 0);
		if (cut > 0)
			feed(h, sc->input, cut);
		if (cut < sc->input_len)
			feed(h, sc->input + cut, sc->input_len - cut);
		split_case_finish(h, sc, 1);
		harness_free(h);
	}
}
END_TEST

/* _i: terminator x mode. One byte per read. */
START_TEST(test_string_one_byte_writes)
{
	const struct split_case *sc = &split_cases[_i / 2];
	int collect = _i % 2;
	note("term len %zu, %s mode, 1-byte writes", sc->term_len,
	     collect ? "collect" : "frame");
	struct harness *h = harness_new(collect, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, sc->term, sc->term_len),
	                 0);
	for (size_t i = 0; i < sc->input_len; i++)
		feed(h, sc->input + i, 1);
	split_case_finish(h, sc, 1);
	harness_free(h);
}
END_TEST

/* _i: mode. The "\r\n" case over loopback TCP, cut at every byte. TCP may
 * merge or split the writes its own way, so only the end state is checked,
 * once EOF proves every byte was read. */
START_TEST(test_string_split_everywhere_tcp)
{
	const struct split_case *sc = &split_cases[1];
	int collect = _i;
	for (size_t cut = 0; cut <= sc->input_len; cut++) {
		note("TCP, %s mode, cut at %zu", collect ? "collect" : "frame",
		     cut);
		struct harness *h = harness_new(collect, 1);
		ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\r\n")),
		                 0);
		if (cut > 0)
			feed(h, sc->input, cut);
		if (cut < sc->input_len)
			feed(h, sc->input + cut, sc->input_len - cut);
		split_case_finish(h, sc, 0);
		harness_free(h);
	}
}
END_TEST

/* _i: mode. */
START_TEST(test_several_frames_one_read)
{
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	/* The recorder fails the test if collect ever gets empty data, as
	 * the empty frames here would tempt an implementation to do. */
	feed(h, LIT("a\n\nb\n"));
	EXPECT_FRAMES(&h->rec, "a", "", "b");
	feed(h, LIT("\n\n\nlast\nnext"));
	EXPECT_FRAMES(&h->rec, "a", "", "b", "", "", "", "last");
	expect_bytes("unfinished", unfinished(h), LIT("next"));
	ck_assert_uint_eq(h->rec.nevents, 0);
	harness_free(h);
}
END_TEST

/* _i: mode. Terminators are bytes, not C strings. */
START_TEST(test_nul_terminator)
{
	static const struct span want[] = {
		{ LIT("ab") },
		{ LIT("c\0d") },
		{ LIT("") },
		{ LIT("\0x") },
	};
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\0\0")), 0);
	/* The first read ends in five NULs: the end of "c\0d", an empty
	 * frame, and one NUL held back as a possible terminator start. It
	 * is not one (an "x" follows), so it starts the frame "\0x". */
	feed(h, LIT("ab\0\0c\0d\0\0\0\0\0"));
	feed(h, LIT("x\0\0\0y"));
	expect_frames(&h->rec, want, 4);
	expect_bytes("unfinished", unfinished(h), LIT("\0y"));
	harness_free(h);
}
END_TEST

START_TEST(test_get_terminator)
{
	struct harness *h = harness_new(0, 0);
	const void *term = "junk";
	size_t len = 99;
	ev_uint64_t remaining = 99;

	/* A channel starts with no terminator. */
	ck_assert_int_eq(evchat_get_terminator(h->chat, &term, &len,
	                                       &remaining),
	                 EVCHAT_TERM_NONE);
	ck_assert_ptr_null(term);
	ck_assert_uint_eq(len, 0);
	ck_assert_uint_eq(remaining, 0);
	ck_assert_int_eq(evchat_get_terminator(h->chat, NULL, NULL, NULL),
	                 EVCHAT_TERM_NONE);

	/* The terminator is copied: the caller's buffer may change. */
	char mine[3] = { 'x', '\0', 'y' };
	ck_assert_int_eq(evchat_set_terminator(h->chat, mine, 3), 0);
	memset(mine, 'z', sizeof(mine));
	ck_assert_int_eq(evchat_get_terminator(h->chat, &term, &len,
	                                       &remaining),
	                 EVCHAT_TERM_STRING);
	ck_assert_ptr_nonnull(term);
	ck_assert_uint_eq(len, 3);
	ck_assert_int_eq(memcmp(term, "x\0y", 3), 0);
	ck_assert_uint_eq(remaining, 0);

	ck_assert_int_eq(evchat_set_terminator_count(h->chat, 42), 0);
	ck_assert_int_eq(evchat_get_terminator(h->chat, &term, &len,
	                                       &remaining),
	                 EVCHAT_TERM_COUNT);
	ck_assert_ptr_null(term);
	ck_assert_uint_eq(len, 0);
	ck_assert_uint_eq(remaining, 42);

	ck_assert_int_eq(evchat_set_terminator_none(h->chat), 0);
	ck_assert_int_eq(evchat_get_terminator(h->chat, &term, &len,
	                                       &remaining),
	                 EVCHAT_TERM_NONE);
	ck_assert_ptr_null(term);
	ck_assert_uint_eq(len, 0);
	ck_assert_uint_eq(remaining, 0);

	/* Without a channel: "none". */
	ck_assert_int_eq(evchat_get_terminator(NULL, &term, &len, &remaining),
	                 EVCHAT_TERM_NONE);
	ck_assert_ptr_null(evchat_get_pending(NULL));
	harness_free(h);
}
END_TEST

START_TEST(test_invalid_arguments)
{
	struct harness *h = harness_new(0, 0);

	ASSERT_FAILS(evchat_set_terminator(h->chat, "\n", 0), EINVAL);
	ASSERT_FAILS(evchat_set_terminator(h->chat, NULL, 1), EINVAL);
	ASSERT_FAILS(evchat_set_terminator(h->chat, NULL, 0), EINVAL);

	ASSERT_FAILS(evchat_set_terminator(NULL, "\n", 1), EINVAL);
	ASSERT_FAILS(evchat_set_terminator_count(NULL, 5), EINVAL);
	ASSERT_FAILS(evchat_set_terminator_none(NULL), EINVAL);
	ASSERT_FAILS(evchat_set_max_frame(NULL, 10), EINVAL);

	/* Still a working channel after the refusals. */
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	feed(h, LIT("ok\n"));
	EXPECT_FRAMES(&h->rec, "ok");
	harness_free(h);
}
END_TEST

/* _i: mode. With no terminator nothing ends a frame. */
START_TEST(test_no_terminator_gathers)
{
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 0);
	feed(h, LIT("hello\nworld\r\n"));
	feed(h, LIT("more"));
	ck_assert_uint_eq(h->rec.nframes, 0);
	expect_bytes("unfinished", unfinished(h), LIT("hello\nworld\r\nmore"));
	if (_i)
		ck_assert_uint_eq(pending_len(h), 0);
	harness_free(h);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Count terminators */

/* _i: mode. */
START_TEST(test_count_spanning_reads)
{
	ev_uint64_t remaining = 0;
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 0);
	ck_assert_int_eq(evchat_set_terminator_count(h->chat, 10), 0);

	feed(h, LIT("abc"));
	ck_assert_uint_eq(h->rec.nframes, 0);
	ck_assert_int_eq(evchat_get_terminator(h->chat, NULL, NULL, &remaining),
	                 EVCHAT_TERM_COUNT);
	ck_assert_uint_eq(remaining, 7);
	expect_bytes("unfinished", unfinished(h), LIT("abc"));

	feed(h, LIT("defg"));
	ck_assert_int_eq(evchat_get_terminator(h->chat, NULL, NULL, &remaining),
	                 EVCHAT_TERM_COUNT);
	ck_assert_uint_eq(remaining, 3);
	ck_assert_uint_eq(h->rec.nframes, 0);

	/* The count ends inside this read; what follows is gathered, not
	 * framed, since the terminator is now "none". */
	feed(h, LIT("hij\nklm\n"));
	EXPECT_FRAMES(&h->rec, "abcdefghij");
	ck_assert_int_eq(evchat_get_terminator(h->chat, NULL, NULL, &remaining),
	                 EVCHAT_TERM_NONE);
	ck_assert_uint_eq(remaining, 0);
	expect_bytes("unfinished", unfinished(h), LIT("\nklm\n"));
	if (!_i)
		ck_assert_uint_eq(pending_len(h), 5);
	ck_assert_uint_eq(h->rec.nevents, 0);
	harness_free(h);
}
END_TEST

/* _i: mode. evchat differs from asynchat here on purpose (see evchat.h). */
START_TEST(test_count_zero_from_loop)
{
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 0);
	ck_assert_int_eq(evchat_set_terminator_count(h->chat, 0), 0);
	/* Never from inside the call: the caller may not be ready. */
	ck_assert_uint_eq(h->rec.nframes, 0);
	run_pending(h->base);
	EXPECT_FRAMES(&h->rec, "");
	ck_assert_int_eq(evchat_get_terminator(h->chat, NULL, NULL, NULL),
	                 EVCHAT_TERM_NONE);
	/* Only one: bytes that come later are gathered. */
	feed(h, LIT("xy"));
	EXPECT_FRAMES(&h->rec, "");
	expect_bytes("unfinished", unfinished(h), LIT("xy"));
	harness_free(h);
}
END_TEST

/* A length-prefixed protocol: a decimal line gives the length of the body
 * that follows; a non-number line is just a line. Checks on the way that a
 * count that ran out leaves no terminator (so the hook must set one).
 * rec->user is an int: nonzero while a body is being read. */
static void length_prefixed(struct evchat *chat, struct recorder *rec)
{
	int *in_body = rec->user;
	if (*in_body) {
		ck_assert_int_eq(evchat_get_terminator(chat, NULL, NULL, NULL),
		                 EVCHAT_TERM_NONE);
		*in_body = 0;
		ck_assert_int_eq(evchat_set_terminator(chat, LIT("\n")), 0);
		return;
	}
	char *line = recorder_frame(rec, rec->nframes - 1);
	if (line[0] >= '0' && line[0] <= '9') {
		*in_body = 1;
		ck_assert_int_eq(
		    evchat_set_terminator_count(chat, strtoull(line, NULL, 10)),
		    0);
	}
	free(line);
}

/* _i: mode x (one write, one byte per write). The terminator a found hook
 * sets applies to the bytes already read after the frame. */
START_TEST(test_switch_in_found)
{
	static const char input[] = "5\nhello3\nabcend\n2\n\r\nlast\n12\n"
	                            "\n\n\n\n\n\n\n\n\n\n\n\ntail";
	int collect = _i % 2;
	note("%s mode, %s", collect ? "collect" : "frame",
	     _i / 2 ? "1-byte writes" : "one write");
	struct harness *h = harness_new(collect, 0);
	int in_body = 0;
	h->rec.user = &in_body;
	h->rec.on_found = length_prefixed;
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	if (_i / 2)
		for (size_t i = 0; i < sizeof(input) - 1; i++)
			feed(h, input + i, 1);
	else
		feed(h, input, sizeof(input) - 1);
	EXPECT_FRAMES(&h->rec, "5", "hello", "3", "abc", "end", "2", "\r\n",
	              "last", "12", "\n\n\n\n\n\n\n\n\n\n\n\n");
	expect_bytes("unfinished", unfinished(h), LIT("tail"));
	ck_assert_uint_eq(h->rec.nevents, 0);
	harness_free(h);
}
END_TEST

/* _i: mode. A count of 0 set from found, in the middle of a read. */
START_TEST(test_switch_in_found_count_zero)
{
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 0);
	int in_body = 0;
	h->rec.user = &in_body;
	h->rec.on_found = length_prefixed;
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	feed(h, LIT("2\nhi0\nend\n0\n"));
	/* The last "0" has no bytes after it: the empty frame still comes. */
	EXPECT_FRAMES(&h->rec, "2", "hi", "0", "", "end", "0", "");
	ck_assert_int_eq(evchat_get_terminator(h->chat, NULL, NULL, NULL),
	                 EVCHAT_TERM_STRING);
	feed(h, LIT("after\n"));
	EXPECT_FRAMES(&h->rec, "2", "hi", "0", "", "end", "0", "", "after");
	harness_free(h);
}
END_TEST

/* A protocol of lines where "BODY n" announces n bytes streamed through
 * a collect hook, switched on and off alone (evchat_set_collect_cb()):
 * the bytes hook and the argument stay. */
struct body_switcher {
	struct evbuffer *lines, *bodies; /* each ended with '|' */
	int in_body;
};

static void body_collect(struct evchat *chat, struct evbuffer *data, void *arg)
{
	struct body_switcher *sw = arg;
	(void)chat;
	evbuffer_add_buffer(sw->bodies, data);
}

static void body_found_bytes(struct evchat *chat, const unsigned char *frame,
                             size_t len, void *arg)
{
	struct body_switcher *sw = arg;
	if (sw->in_body) {
		/* Collect mode: the end of the body, no bytes of it here. */
		ck_assert_uint_eq(len, 0);
		sw->in_body = 0;
		evbuffer_add(sw->bodies, "|", 1);
		evchat_set_collect_cb(chat, NULL);
		ck_assert_int_eq(evchat_set_terminator_line(chat,
		                                            EVCHAT_EOL_LF),
		                 0);
		return;
	}
	evbuffer_add(sw->lines, frame, len);
	evbuffer_add(sw->lines, "|", 1);
	if (len > 5 && memcmp(frame, "BODY ", 5) == 0) {
		char n[16] = { 0 };
		memcpy(n, frame + 5, len - 5 < 15 ? len - 5 : 15);
		sw->in_body = 1;
		evchat_set_collect_cb(chat, body_collect);
		ck_assert_int_eq(
		    evchat_set_terminator_count(chat, strtoull(n, NULL, 10)),
		    0);
	}
}

START_TEST(test_set_collect_cb_alone)
{
	struct harness *h = harness_new(0, 0);
	struct body_switcher sw = { evbuffer_new(), evbuffer_new(), 0 };
	evchat_setcb_bytes(h->chat, NULL, body_found_bytes, NULL, &sw);
	ck_assert_int_eq(evchat_set_terminator_line(h->chat, EVCHAT_EOL_LF), 0);
	feed(h, LIT("a\nBODY 5\nhel"));
	feed(h, LIT("lob\nBODY 0\nc\nBODY 3\nx\ny"));
	feed(h, LIT("d\n"));
	expect_bytes("lines", sw.lines, LIT("a|BODY 5|b|BODY 0|c|BODY 3|d|"));
	expect_bytes("bodies", sw.bodies, LIT("hello||x\ny|"));
	/* NULL is ignored. */
	evchat_set_collect_cb(NULL, body_collect);
	evbuffer_free(sw.lines);
	evbuffer_free(sw.bodies);
	harness_free(h);
}
END_TEST

/* Collect mode: on the first bytes, sets a count of 0 and discards the
 * rest of the read. */
static void collect_count_zero_then_discard(struct evchat *chat,
                                            struct evbuffer *data, void *arg)
{
	struct harness *h = arg;
	int first = h->rec.ncollect_calls == 0;
	recorder_collect_cb(chat, data, &h->rec);
	if (!first)
		return;
	ck_assert_int_eq(evchat_set_terminator_count(chat, 0), 0);
	evchat_discard_buffers(chat);
}

static void found_frame(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct harness *h = arg;
	recorder_found_cb(chat, frame, &h->rec);
}

/* A collect hook sets a count of 0 and discards the input: the loop
 * stops there, and the frame the count ends still ends at once, not with
 * the peer's next bytes. */
START_TEST(test_count_zero_after_discard)
{
	struct harness *h = harness_new(1, 0);
	evchat_setcb(h->chat, collect_count_zero_then_discard, found_frame,
	             harness_event_cb, h);
	feed(h, LIT("abc"));
	run_for(h->base, 20);
	EXPECT_FRAMES(&h->rec, "abc");
	ck_assert_int_eq(evchat_get_terminator(h->chat, NULL, NULL, NULL),
	                 EVCHAT_TERM_NONE);
	ck_assert_uint_eq(h->rec.nevents, 0);
	harness_free(h);
}
END_TEST

/*
 * _i: mode. A terminator set from outside any hook while a frame is half
 * gathered. As in asynchat, where bytes collected under "none" are already
 * in self.incoming, the gathered bytes stay the start of the current frame
 * and the new terminator ends it: "abc" gathered, "\n" set, "de\nf" read
 * gives the frame "abcde" with "f" left. Same for a count: it counts the
 * bytes that arrive after it was set, as asynchat's does, so "abc"
 * gathered, count 2 set, "xyz" read gives "abcxy".
 * (The gathered bytes here contain no terminator, so this does not depend
 * on whether setting one rescans them.)
 */
START_TEST(test_set_outside_hook_keeps_gathered)
{
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 0);
	feed(h, LIT("abc"));
	expect_bytes("gathered", unfinished(h), LIT("abc"));
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	run_pending(h->base);
	ck_assert_uint_eq(h->rec.nframes, 0);
	feed(h, LIT("de\nf"));
	EXPECT_FRAMES(&h->rec, "abcde");
	expect_bytes("unfinished", unfinished(h), LIT("f"));

	ck_assert_int_eq(evchat_set_terminator_none(h->chat), 0);
	feed(h, LIT("gh"));
	expect_bytes("gathered", unfinished(h), LIT("fgh"));
	ck_assert_int_eq(evchat_set_terminator_count(h->chat, 2), 0);
	run_pending(h->base);
	ck_assert_uint_eq(h->rec.nframes, 1);
	feed(h, LIT("xyz"));
	EXPECT_FRAMES(&h->rec, "abcde", "fghxy");
	expect_bytes("unfinished", unfinished(h), LIT("z"));
	harness_free(h);
}
END_TEST

/* A collect hook set mid-frame, after frame mode gathered part of the
 * frame, gets those bytes before the frame's end though no byte of the
 * frame follows the switch (they were dropped at its end). With bytes
 * after the switch, the hook gets them all in one call (reentrancy
 * suite). */
START_TEST(test_collect_set_mid_frame_gets_gathered)
{
	struct harness *h = harness_new(0, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT(";")), 0);
	feed(h, LIT("abc"));
	expect_bytes("gathered", unfinished(h), LIT("abc"));
	harness_set_mode(h, 1);
	feed(h, LIT(";de"));
	EXPECT_FRAMES(&h->rec, "abc");
	expect_bytes("collected", unfinished(h), LIT("de"));
	feed(h, LIT(";"));
	EXPECT_FRAMES(&h->rec, "abc", "de");
	harness_free(h);
}
END_TEST

/* What the collect hook of the test below does when it is handed what
 * frame mode gathered: _i = 0 nothing, 1 pause, 2 close, 3 discard. */
struct handover {
	int action;
	size_t collects, founds;
	struct evbuffer *got;
};

static void handover_collect(struct evchat *chat, struct evbuffer *data,
                             void *arg)
{
	struct handover *ho = arg;
	ho->collects++;
	evbuffer_add_buffer(ho->got, data);
	if (ho->action == 1)
		ck_assert_int_eq(evchat_pause_input(chat), 0);
	else if (ho->action == 2)
		ck_assert_int_eq(evchat_close_when_done(chat), 0);
	else if (ho->action == 3)
		evchat_discard_buffers(chat);
}

static void handover_found(struct evchat *chat, struct evbuffer *frame,
                           void *arg)
{
	struct handover *ho = arg;
	(void)chat;
	ck_assert_ptr_null(frame);
	ho->founds++;
}

/* The frame's end comes alone after the switch: the gathered bytes reach
 * the collect hook before it, and what that hook does applies to the end
 * as to any byte after it: paused, the end waits for the resume; closed
 * or discarded, it is never delivered. */
START_TEST(test_collect_set_mid_frame_hook_stops)
{
	struct handover ho = { .action = _i, .got = evbuffer_new() };
	ck_assert_ptr_nonnull(ho.got);
	struct harness *h = harness_new(0, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT(";")), 0);
	feed(h, LIT("abc"));
	evchat_setcb(h->chat, handover_collect, handover_found, NULL, &ho);
	feed(h, LIT(";"));
	run_pending(h->base);
	ck_assert_uint_eq(ho.collects, 1);
	expect_bytes("collected", ho.got, LIT("abc"));
	ck_assert_uint_eq(ho.founds, _i == 0 ? 1 : 0);
	if (_i == 1) {
		ck_assert_int_eq(evchat_resume_input(h->chat), 0);
		run_pending(h->base);
		ck_assert_uint_eq(ho.founds, 1);
		ck_assert_uint_eq(ho.collects, 1);
	}
	harness_free(h);
	evbuffer_free(ho.got);
}
END_TEST

/* _i: mode. The bytes held back as a possible "\r\n" are buffered too: a
 * new terminator set from outside a hook applies to them. Whether the
 * frame comes at once (from the loop) or with the next read, as in
 * asynchat, the frames are the same; only those are checked. */
START_TEST(test_set_outside_hook_applies_to_held)
{
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\r\n")), 0);
	feed(h, LIT("abc\r"));
	ck_assert_uint_eq(h->rec.nframes, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\r")), 0);
	run_pending(h->base);
	feed(h, LIT("x"));
	EXPECT_FRAMES(&h->rec, "abc");
	expect_bytes("unfinished", unfinished(h), LIT("x"));
	harness_free(h);
}
END_TEST

static void close_on_first_frame(struct evchat *chat, struct recorder *rec)
{
	if (rec->nframes == 1)
		ck_assert_int_eq(evchat_close_when_done(chat), 0);
}

/* _i: mode. No frame is delivered after evchat_close_when_done(), even
 * frames that came in the same read as the one whose hook called it. */
START_TEST(test_close_in_found_stops_frames)
{
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 0);
	h->rec.on_found = close_on_first_frame;
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	feed(h, LIT("a\nb\nc\n"));
	run_pending(h->base);
	EXPECT_FRAMES(&h->rec, "a");
	expect_one_event(&h->rec, EVCHAT_EVENT_CLOSED);
	harness_free(h);
}
END_TEST

/* ------------------------------------------------------------------ */
/* End of stream */

/* _i: mode x (bytes read before FIN, or together) x (socketpair, TCP).
 * Nothing the peer sent is lost at EOF, not even the "\r" held back as a
 * possible start of "\r\n" (asynchat drops it). */
START_TEST(test_eof_keeps_partial_terminator)
{
	int collect = _i % 2, together = (_i / 2) % 2, tcp = _i / 4;
	note("%s mode, %s, %s", collect ? "collect" : "frame",
	     together ? "data and FIN together" : "data first",
	     tcp ? "TCP" : "socketpair");
	struct harness *h = harness_new(collect, tcp);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\r\n")), 0);
	write_all(h->c.peer, LIT("abc\r"));
	if (!together) {
		run_until_unfinished(h, 3, 2000);
		ck_assert_uint_eq(h->rec.nevents, 0);
		expect_bytes("before EOF", unfinished(h), LIT("abc"));
	}
	conn_close_peer(&h->c);
	run_until_event(h, 2000);
	expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
	ck_assert_uint_eq(h->rec.nframes, 0);
	/* Frame mode: in the pending buffer when the hook runs. Collect
	 * mode: given to collect before the hook runs. */
	expect_bytes("unfinished at EOF", h->unfinished_at_event, LIT("abc\r"));
	if (!collect) {
		ck_assert_uint_eq(h->rec.pending_at_event, 4);
		expect_bytes("pending after EOF", evchat_get_pending(h->chat),
		             LIT("abc\r"));
	} else {
		ck_assert_uint_eq(pending_len(h), 0);
	}
	run_pending(h->base);
	run_pending(h->base);
	expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
	harness_free(h);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The frame limit */

/* _i: mode. */
START_TEST(test_max_frame_exact)
{
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 0);
	ck_assert_int_eq(evchat_set_max_frame(h->chat, 10), 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	feed(h, LIT("0123456789\nabcdefghij\n"));
	EXPECT_FRAMES(&h->rec, "0123456789", "abcdefghij");
	/* A frame gathered a piece at a time counts the same. */
	feed(h, LIT("01234"));
	feed(h, LIT("56789"));
	feed(h, LIT("\n"));
	EXPECT_FRAMES(&h->rec, "0123456789", "abcdefghij", "0123456789");
	ck_assert_uint_eq(h->rec.nevents, 0);
	harness_free(h);
}
END_TEST

/* _i: mode x (2- or 16-byte terminator). A held-back terminator prefix is
 * not part of the frame, so it must not count against the limit. */
START_TEST(test_max_frame_ignores_held_terminator)
{
	int collect = _i % 2;
	const char *term = _i / 2 ? T16 : "\r\n";
	size_t term_len = strlen(term);
	char input[64];
	note("%s mode, terminator of %zu", collect ? "collect" : "frame",
	     term_len);
	struct harness *h = harness_new(collect, 0);
	ck_assert_int_eq(evchat_set_max_frame(h->chat, 10), 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, term, term_len), 0);
	snprintf(input, sizeof(input), "0123456789%s", term);
	for (size_t i = 0; i < strlen(input); i++)
		feed(h, input + i, 1);
	EXPECT_FRAMES(&h->rec, "0123456789");
	ck_assert_uint_eq(h->rec.nevents, 0);

	/* One byte more is too long, however the terminator then goes. */
	snprintf(input, sizeof(input), "0123456789a%s", term);
	for (size_t i = 0; i < strlen(input); i++)
		feed(h, input + i, 1);
	expect_one_event(&h->rec, EVCHAT_EVENT_FRAME_TOO_LONG);
	EXPECT_FRAMES(&h->rec, "0123456789");
	harness_free(h);
}
END_TEST

/* _i: mode x (socketpair, TCP). */
START_TEST(test_max_frame_too_long)
{
	int collect = _i % 2, tcp = _i / 2;
	note("%s mode, %s", collect ? "collect" : "frame",
	     tcp ? "TCP" : "socketpair");
	struct harness *h = harness_new(collect, tcp);
	ck_assert_int_eq(evchat_set_max_frame(h->chat, 10), 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	feed(h, LIT("a\n0123456789\n\nbb\n01234567890\nnever\n"));
	run_until_event(h, 2000);
	expect_one_event(&h->rec, EVCHAT_EVENT_FRAME_TOO_LONG);
	/* Every frame before the long one, and before the event. */
	EXPECT_FRAMES(&h->rec, "a", "0123456789", "", "bb");
	ck_assert_uint_eq(h->frames_at_event, 4);

	/* Reading has stopped: later bytes make no frames or events. */
	write_all(h->c.peer, LIT("x\ny\n"));
	run_pending(h->base);
	run_pending(h->base);
	EXPECT_FRAMES(&h->rec, "a", "0123456789", "", "bb");
	expect_one_event(&h->rec, EVCHAT_EVENT_FRAME_TOO_LONG);
	harness_free(h);
}
END_TEST

/* _i: mode. With no terminator the gathered (or collected) bytes are one
 * growing frame, and the limit still holds. */
START_TEST(test_max_frame_no_terminator)
{
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 0);
	ck_assert_int_eq(evchat_set_max_frame(h->chat, 10), 0);
	feed(h, LIT("01234"));
	feed(h, LIT("56789"));
	ck_assert_uint_eq(h->rec.nevents, 0);
	expect_bytes("unfinished", unfinished(h), LIT("0123456789"));
	feed(h, LIT("!"));
	expect_one_event(&h->rec, EVCHAT_EVENT_FRAME_TOO_LONG);
	ck_assert_uint_eq(h->rec.nframes, 0);
	harness_free(h);
}
END_TEST

/* _i: mode. A count is a frame size too. */
START_TEST(test_max_frame_count)
{
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 0);
	ck_assert_int_eq(evchat_set_max_frame(h->chat, 10), 0);
	ck_assert_int_eq(evchat_set_terminator_count(h->chat, 10), 0);
	feed(h, LIT("0123456789"));
	EXPECT_FRAMES(&h->rec, "0123456789");
	ck_assert_uint_eq(h->rec.nevents, 0);

	ck_assert_int_eq(evchat_set_terminator_count(h->chat, 11), 0);
	feed(h, LIT("abcdefghijk"));
	run_pending(h->base);
	expect_one_event(&h->rec, EVCHAT_EVENT_FRAME_TOO_LONG);
	EXPECT_FRAMES(&h->rec, "0123456789");
	harness_free(h);
}
END_TEST

/* A frame of n bytes of a pattern that has no "\n", then "\n". */
static char *big_frame(size_t n)
{
	char *p = malloc(n + 1);
	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (char)('a' + i % 26);
	p[n] = '\n';
	return p;
}

/* _i: mode. 0 lifts the limit, past the default. */
START_TEST(test_max_frame_zero_unlimited)
{
	size_t n = EVCHAT_DEFAULT_MAX_FRAME + EVCHAT_DEFAULT_MAX_FRAME / 2;
	char *data = big_frame(n);
	struct span want = { data, n };
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 0);
	ck_assert_int_eq(evchat_set_max_frame(h->chat, 10), 0);
	ck_assert_int_eq(evchat_set_max_frame(h->chat, 0), 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	feed(h, data, n + 1);
	run_until_frames(h, 1, 3000);
	ck_assert_uint_eq(h->rec.nevents, 0);
	expect_frames(&h->rec, &want, 1);
	free(data);
	harness_free(h);
}
END_TEST

/* _i: mode. Without evchat_set_max_frame() the limit is the default. */
START_TEST(test_max_frame_default)
{
	size_t n = EVCHAT_DEFAULT_MAX_FRAME;
	char *data = big_frame(n + 1);
	struct span want = { data, n };
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	/* Exactly the default is fine... */
	data[n] = '\n';
	feed(h, data, n + 1);
	run_until_frames(h, 1, 3000);
	expect_frames(&h->rec, &want, 1);
	ck_assert_uint_eq(h->rec.nevents, 0);
	/* ...one byte more is not. */
	data[n] = 'x';
	feed(h, data, n + 2);
	run_until_frames(h, 2, 3000); /* a second frame would be a failure */
	expect_one_event(&h->rec, EVCHAT_EVENT_FRAME_TOO_LONG);
	expect_frames(&h->rec, &want, 1);
	free(data);
	harness_free(h);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Many frames, big frames: correctness only, never wall time (a scanner
 * that rescans from the start would still pass, just slowly). */

/* _i: mode x (socketpair, TCP). 10,000 two-byte frames in one write. */
START_TEST(test_many_tiny_frames)
{
	enum { NFRAMES = 10000 };
	int collect = _i % 2, tcp = _i / 2;
	char *data = malloc(2 * NFRAMES);
	struct span *want = malloc(NFRAMES * sizeof(*want));
	ck_assert_ptr_nonnull(data);
	ck_assert_ptr_nonnull(want);
	for (size_t i = 0; i < NFRAMES; i++) {
		data[2 * i] = (char)('a' + i % 26);
		data[2 * i + 1] = '\n';
		want[i].p = &data[2 * i];
		want[i].len = 1;
	}
	note("%s mode, %s", collect ? "collect" : "frame",
	     tcp ? "TCP" : "socketpair");
	struct harness *h = harness_new(collect, tcp);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	feed(h, data, 2 * NFRAMES);
	run_until_frames(h, NFRAMES, 5000);
	expect_frames(&h->rec, want, NFRAMES);
	ck_assert_uint_eq(h->rec.nevents, 0);
	free(want);
	free(data);
	harness_free(h);
}
END_TEST

/* _i: mode. A 64 KiB frame one byte per read, ending at a 16-byte
 * self-overlapping terminator whose prefixes fill the frame, so the
 * channel is always holding back a partial match. */
START_TEST(test_big_frame_one_byte_writes)
{
	enum { FRAME = 65536 };
	size_t len = FRAME + sizeof(T16) - 1;
	char *data = malloc(len);
	struct span want = { data, FRAME };
	ck_assert_ptr_nonnull(data);
	for (size_t i = 0; i < FRAME; i++)
		data[i] = "ab-"[i % 3];
	memcpy(data + FRAME, T16, sizeof(T16) - 1);
	note("%s mode", _i ? "collect" : "frame");
	struct harness *h = harness_new(_i, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT(T16)), 0);
	for (size_t i = 0; i < len; i++) {
		/* One loop pass per byte, not run_pending()'s eight: enough
		 * to read it, and 65,000 of them stay fast. */
		write_all(h->c.peer, data + i, 1);
		event_base_loop(h->base, EVLOOP_NONBLOCK);
	}
	run_until_frames(h, 1, 5000);
	expect_frames(&h->rec, &want, 1);
	ck_assert_uint_eq(h->rec.nevents, 0);
	free(data);
	harness_free(h);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Random cuts against the reference framer */

/* Bytes over a small alphabet, so terminators and near misses are common. */
static char rnd_byte(ev_uint32_t *state)
{
	static const char alphabet[] = "aaaabb\r\r\n\n";
	return alphabet[rnd(state, sizeof(alphabet) - 1)];
}

static void rnd_script(ev_uint32_t *state, struct term_spec *script, size_t n)
{
	int all_zero = 1;
	for (size_t i = 0; i < n; i++) {
		struct term_spec *t = &script[i];
		size_t r = rnd(state, 20);
		memset(t, 0, sizeof(*t));
		if (r < 13) {
			t->kind = EVCHAT_TERM_STRING;
			/* Up to 6: short terminators are kept in the
			 * channel, longer ones in a block of their own. */
			t->len = 1 + rnd(state, 6);
			for (size_t k = 0; k < t->len; k++)
				t->str[k] = rnd_byte(state);
			all_zero = 0;
		} else if (r < 19) {
			t->kind = EVCHAT_TERM_COUNT;
			t->count = rnd(state, 8);
			if (t->count > 0)
				all_zero = 0;
		} else {
			t->kind = EVCHAT_TERM_NONE;
			all_zero = 0;
		}
	}
	/* A script of nothing but zero counts would frame forever. */
	if (all_zero) {
		script[0].kind = EVCHAT_TERM_STRING;
		script[0].str[0] = '\n';
		script[0].len = 1;
	}
}

/* _i: mode. Random input, random terminator scripts (the found hook sets
 * the next one), random cuts; the frames and the leftover bytes must be
 * what the reference framer finds in the whole input at once. */
START_TEST(test_random_chunking)
{
	enum { CASES = 1500, MAX_INPUT = 160, MAX_SCRIPT = 6 };
	ev_uint32_t seed = 0x9e3779b9u + (ev_uint32_t)_i;
	char input[MAX_INPUT];
	struct term_spec script[MAX_SCRIPT];

	for (int c = 0; c < CASES; c++) {
		size_t len = rnd(&seed, MAX_INPUT);
		size_t nscript = 1 + rnd(&seed, MAX_SCRIPT);
		struct ref_result ref;
		for (size_t i = 0; i < len; i++)
			input[i] = rnd_byte(&seed);
		rnd_script(&seed, script, nscript);
		ref_frame(input, len, script, nscript, &ref);

		char *shown_input = printable(input, len);
		char *shown_term = printable(script[0].str, script[0].len);
		note("%s mode, case %d (input \"%s\", first terminator "
		     "kind %d \"%s\" count %u)",
		     _i ? "collect" : "frame", c, shown_input,
		     (int)script[0].kind, shown_term,
		     (unsigned)script[0].count);
		free(shown_input);
		free(shown_term);
		struct harness *h = harness_new(_i, 0);
		struct term_script follow = { script, nscript, 0 };
		h->rec.user = &follow;
		h->rec.on_found = follow_script;
		apply_term(h->chat, &script[0]);
		run_pending(h->base); /* a first count of 0 */
		for (size_t pos = 0; pos < len;) {
			size_t most = 1 + rnd(&seed, 24);
			size_t n = 1 + rnd(&seed, most);
			if (n > len - pos)
				n = len - pos;
			feed(h, input + pos, n);
			pos += n;
		}
		expect_frames(&h->rec, ref.frames, ref.nframes);
		expect_bytes("unfinished before EOF", unfinished(h),
		             input + ref.rest_off,
		             len - ref.rest_off - ref.held);
		conn_close_peer(&h->c);
		run_until_event(h, 2000);
		expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
		expect_bytes("unfinished at EOF", h->unfinished_at_event,
		             input + ref.rest_off, len - ref.rest_off);
		expect_frames(&h->rec, ref.frames, ref.nframes);
		harness_free(h);
		free(ref.frames);
	}
}
END_TEST

Suite *framing_suite(void)
{
	Suite *s = suite_create("framing");
	TCase *tc;

	tc = tcase_create("string");
	tcase_add_loop_test(tc, test_string_split_everywhere, 0, 2 * NSPLIT);
	tcase_add_loop_test(tc, test_string_one_byte_writes, 0, 2 * NSPLIT);
	tcase_add_loop_test(tc, test_string_split_everywhere_tcp, 0, 2);
	tcase_add_loop_test(tc, test_several_frames_one_read, 0, 2);
	tcase_add_loop_test(tc, test_nul_terminator, 0, 2);
	tcase_add_test(tc, test_get_terminator);
	tcase_add_test(tc, test_invalid_arguments);
	tcase_add_loop_test(tc, test_no_terminator_gathers, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("count");
	tcase_add_loop_test(tc, test_count_spanning_reads, 0, 2);
	tcase_add_loop_test(tc, test_count_zero_from_loop, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("switch");
	tcase_add_loop_test(tc, test_switch_in_found, 0, 4);
	tcase_add_loop_test(tc, test_switch_in_found_count_zero, 0, 2);
	tcase_add_test(tc, test_count_zero_after_discard);
	tcase_add_test(tc, test_set_collect_cb_alone);
	tcase_add_loop_test(tc, test_set_outside_hook_keeps_gathered, 0, 2);
	tcase_add_loop_test(tc, test_set_outside_hook_applies_to_held, 0, 2);
	tcase_add_test(tc, test_collect_set_mid_frame_gets_gathered);
	tcase_add_loop_test(tc, test_collect_set_mid_frame_hook_stops, 0, 4);
	tcase_add_loop_test(tc, test_close_in_found_stops_frames, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("eof");
	tcase_add_loop_test(tc, test_eof_keeps_partial_terminator, 0, 8);
	suite_add_tcase(s, tc);

	tc = tcase_create("max_frame");
	tcase_add_loop_test(tc, test_max_frame_exact, 0, 2);
	tcase_add_loop_test(tc, test_max_frame_ignores_held_terminator, 0, 4);
	tcase_add_loop_test(tc, test_max_frame_too_long, 0, 4);
	tcase_add_loop_test(tc, test_max_frame_no_terminator, 0, 2);
	tcase_add_loop_test(tc, test_max_frame_count, 0, 2);
	tcase_add_loop_test(tc, test_max_frame_zero_unlimited, 0, 2);
	tcase_add_loop_test(tc, test_max_frame_default, 0, 2);
	suite_add_tcase(s, tc);

	/* Big inputs: a generous timeout, so a slow machine (or a slow
	 * sanitizer build) fails on wrong frames only. */
	tc = tcase_create("volume");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_many_tiny_frames, 0, 4);
	tcase_add_loop_test(tc, test_big_frame_one_byte_writes, 0, 2);
	tcase_add_loop_test(tc, test_random_chunking, 0, 2);
	suite_add_tcase(s, tc);

	return s;
}
