/*
 * Line terminators: evchat_set_terminator_line() and evchat_push_line().
 *
 * The frames must depend only on the byte stream, never on how it was cut
 * into reads, so each line ending is run over streams that mix all the
 * ending kinds ("\n", "\r\n", lone "\r", "\r\r\n", NULs), cut at every byte,
 * one byte per read and at random, in frame mode and in collect mode (a
 * frame is the bytes collected between two found calls). The expected
 * frames come from a reference framer written here, which is itself checked
 * against frames written out by hand.
 */
#include <errno.h>
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
/* Fixtures */

static const char *const eol_names[] = {
	[EVCHAT_EOL_LF] = "LF",
	[EVCHAT_EOL_CRLF] = "CRLF",
	[EVCHAT_EOL_CRLF_STRICT] = "CRLF_STRICT",
	[EVCHAT_EOL_NUL] = "NUL",
};

/* The four endings, for loop indexes. */
static const enum evchat_eol all_eols[] = {
	EVCHAT_EOL_LF,
	EVCHAT_EOL_CRLF,
	EVCHAT_EOL_CRLF_STRICT,
	EVCHAT_EOL_NUL,
};
#define NEOLS (sizeof(all_eols) / sizeof(all_eols[0]))

/* ------------------------------------------------------------------ */
/* Reference framer: the whole input at once, as the header describes each
 * ending. */

#define REF_MAX_FRAMES 256

struct ref_lines {
	struct span frames[REF_MAX_FRAMES];
	size_t nframes;
	size_t rest_off; /* input[rest_off..] ended no line */
	size_t held;     /* the end of it that may start an ending ("\r") */
};

static void ref_lines(enum evchat_eol eol, const char *input, size_t len,
                      struct ref_lines *r)
{
	size_t pos = 0;
	r->nframes = 0;
	for (;;) {
		size_t end = 0, next = 0;
		int found = 0;
		for (size_t i = pos; i < len && !found; i++) {
			switch (eol) {
			case EVCHAT_EOL_LF:
				found = input[i] == '\n';
				end = i;
				next = i + 1;
				break;
			case EVCHAT_EOL_NUL:
				found = input[i] == '\0';
				end = i;
				next = i + 1;
				break;
			case EVCHAT_EOL_CRLF:
				/* Split at "\n"; one "\r" right before it,
				 * inside this line, goes with it. */
				found = input[i] == '\n';
				end = i > pos && input[i - 1] == '\r' ? i - 1
				                                      : i;
				next = i + 1;
				break;
			case EVCHAT_EOL_CRLF_STRICT:
				found = input[i] == '\r' && i + 1 < len &&
				        input[i + 1] == '\n';
				end = i;
				next = i + 2;
				break;
			}
		}
		if (!found)
			break;
		ck_assert_uint_lt(r->nframes, REF_MAX_FRAMES);
		r->frames[r->nframes].p = input + pos;
		r->frames[r->nframes].len = end - pos;
		r->nframes++;
		pos = next;
	}
	r->rest_off = pos;
	/* Both CRLF kinds must wait for the byte after a final "\r". */
	r->held = (eol == EVCHAT_EOL_CRLF || eol == EVCHAT_EOL_CRLF_STRICT) &&
	          len > pos && input[len - 1] == '\r';
}

/* ------------------------------------------------------------------ */
/* Streams mixing every ending kind, with their frames written out */

struct line_case {
	const char *input;
	size_t input_len;
	/* Per ending: the frames and the unfinished rest (held "\r" too). */
	struct {
		struct span frames[10];
		size_t nframes;
		struct span rest;
	} want[EVCHAT_EOL_NUL + 1];
};

#define MIXED1 "PING\nPING\r\na\rb\r\n\r\nx\r\r\n\r\0y\0\0\n\r\rq\r\n\nrest\r"
#define MIXED2 "\r\r\n\n\r\n\r\r\r\n\0\r\n\0abc"

static const struct line_case line_cases[] = {
	{ LIT(MIXED1),
	  {
	      [EVCHAT_EOL_LF] = { { { LIT("PING") },
	                            { LIT("PING\r") },
	                            { LIT("a\rb\r") },
	                            { LIT("\r") },
	                            { LIT("x\r\r") },
	                            { LIT("\r\0y\0\0") },
	                            { LIT("\r\rq\r") },
	                            { LIT("") } },
	                          8,
	                          { LIT("rest\r") } },
	      /* "PING\n" and "PING\r\n" both frame as "PING". */
	      [EVCHAT_EOL_CRLF] = { { { LIT("PING") },
	                              { LIT("PING") },
	                              { LIT("a\rb") },
	                              { LIT("") },
	                              { LIT("x\r") },
	                              { LIT("\r\0y\0\0") },
	                              { LIT("\r\rq") },
	                              { LIT("") } },
	                            8,
	                            { LIT("rest\r") } },
	      [EVCHAT_EOL_CRLF_STRICT] = { { { LIT("PING\nPING") },
	                                     { LIT("a\rb") },
	                                     { LIT("") },
	                                     { LIT("x\r") },
	                                     { LIT("\r\0y\0\0\n\r\rq") } },
	                                   5,
	                                   { LIT("\nrest\r") } },
	      [EVCHAT_EOL_NUL] = { { { LIT("PING\nPING\r\na\rb\r\n\r\nx\r\r\n"
	                                   "\r") },
	                             { LIT("y") },
	                             { LIT("") } },
	                           3,
	                           { LIT("\n\r\rq\r\n\nrest\r") } },
	  } },
	{ LIT(MIXED2),
	  {
	      [EVCHAT_EOL_LF] = { { { LIT("\r\r") },
	                            { LIT("") },
	                            { LIT("\r") },
	                            { LIT("\r\r\r") },
	                            { LIT("\0\r") } },
	                          5,
	                          { LIT("\0abc") } },
	      [EVCHAT_EOL_CRLF] = { { { LIT("\r") },
	                              { LIT("") },
	                              { LIT("") },
	                              { LIT("\r\r") },
	                              { LIT("\0") } },
	                            5,
	                            { LIT("\0abc") } },
	      [EVCHAT_EOL_CRLF_STRICT] = { { { LIT("\r") },
	                                     { LIT("\n") },
	                                     { LIT("\r\r") },
	                                     { LIT("\0") } },
	                                   4,
	                                   { LIT("\0abc") } },
	      [EVCHAT_EOL_NUL] = { { { LIT("\r\r\n\n\r\n\r\r\r\n") },
	                             { LIT("\r\n") } },
	                           2,
	                           { LIT("abc") } },
	  } },
};
#define NLINE_CASES (sizeof(line_cases) / sizeof(line_cases[0]))

/* The reference framer agrees with the frames written out by hand, so the
 * random tests below compare against something that was checked. */
START_TEST(test_reference_framer)
{
	for (size_t c = 0; c < NLINE_CASES; c++) {
		const struct line_case *lc = &line_cases[c];
		for (size_t e = 0; e < NEOLS; e++) {
			enum evchat_eol eol = all_eols[e];
			struct ref_lines ref;
			note("case %zu, %s", c, eol_names[eol]);
			ref_lines(eol, lc->input, lc->input_len, &ref);
			ck_assert_uint_eq(ref.nframes, lc->want[eol].nframes);
			for (size_t i = 0; i < ref.nframes; i++) {
				ck_assert_uint_eq(ref.frames[i].len,
				                  lc->want[eol].frames[i].len);
				ck_assert_int_eq(
				    memcmp(ref.frames[i].p,
				           lc->want[eol].frames[i].p,
				           ref.frames[i].len),
				    0);
			}
			ck_assert_uint_eq(lc->input_len - ref.rest_off,
			                  lc->want[eol].rest.len);
			ck_assert_int_eq(memcmp(lc->input + ref.rest_off,
			                        lc->want[eol].rest.p,
			                        lc->want[eol].rest.len),
			                 0);
		}
	}
}
END_TEST

/* After a whole input went in however cut: its frames, the unfinished line
 * without a held "\r" (and nothing the channel keeps in collect mode);
 * then at EOF one event, with every unframed byte kept. */
static void finish_case(struct harness *h, enum evchat_eol eol,
                        const char *input, size_t len, int check_before_eof)
{
	struct ref_lines ref;
	size_t rest_len;
	ref_lines(eol, input, len, &ref);
	rest_len = len - ref.rest_off;
	expect_frames(&h->rec, ref.frames, ref.nframes);
	if (check_before_eof) {
		ck_assert_uint_eq(h->rec.nevents, 0);
		expect_bytes("unfinished before EOF", unfinished(h),
		             input + ref.rest_off, rest_len - ref.held);
		if (h->collect_mode)
			ck_assert_uint_eq(pending_len(h), 0);
	}
	conn_close_peer(&h->c);
	run_until_event(h, 2000);
	expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
	expect_bytes("unfinished at EOF", h->unfinished_at_event,
	             input + ref.rest_off, rest_len);
	if (h->collect_mode)
		ck_assert_uint_eq(pending_len(h), 0);
	else
		ck_assert_uint_eq(h->rec.pending_at_event, rest_len);
	expect_frames(&h->rec, ref.frames, ref.nframes);
	run_pending(h->base);
	ck_assert_uint_eq(h->rec.nevents, 1);
}

/* _i: case x ending x mode. Two writes, cut at every byte. */
START_TEST(test_line_split_everywhere)
{
	const struct line_case *lc = &line_cases[_i / (2 * NEOLS)];
	enum evchat_eol eol = all_eols[(_i / 2) % NEOLS];
	int collect = _i % 2;
	for (size_t cut = 0; cut <= lc->input_len; cut++) {
		note("case %d, %s, %s mode, cut at %zu",
		     (int)(_i / (2 * NEOLS)), eol_names[eol],
		     mode_name(collect), cut);
		struct harness *h = harness_new(collect, 0);
		ck_assert_int_eq(evchat_set_terminator_line(h->chat, eol), 0);
		if (cut > 0)
			feed(h, lc->input, cut);
		if (cut < lc->input_len)
			feed(h, lc->input + cut, lc->input_len - cut);
		finish_case(h, eol, lc->input, lc->input_len, 1);
		harness_free(h);
	}
}
END_TEST

/* _i: case x ending x mode. One byte per write; after every byte the
 * frames so far are those of the input so far. */
START_TEST(test_line_one_byte_writes)
{
	const struct line_case *lc = &line_cases[_i / (2 * NEOLS)];
	enum evchat_eol eol = all_eols[(_i / 2) % NEOLS];
	int collect = _i % 2;
	struct harness *h = harness_new(collect, 0);
	ck_assert_int_eq(evchat_set_terminator_line(h->chat, eol), 0);
	for (size_t i = 0; i < lc->input_len; i++) {
		struct ref_lines ref;
		note("case %d, %s, %s mode, 1-byte writes, %zu bytes in",
		     (int)(_i / (2 * NEOLS)), eol_names[eol],
		     mode_name(collect), i + 1);
		feed(h, lc->input + i, 1);
		ref_lines(eol, lc->input, i + 1, &ref);
		expect_frames(&h->rec, ref.frames, ref.nframes);
		expect_bytes("unfinished", unfinished(h),
		             lc->input + ref.rest_off,
		             i + 1 - ref.rest_off - ref.held);
	}
	note("case %d, %s, %s mode, 1-byte writes", (int)(_i / (2 * NEOLS)),
	     eol_names[eol], mode_name(collect));
	finish_case(h, eol, lc->input, lc->input_len, 1);
	harness_free(h);
}
END_TEST

/* _i: (lenient, strict CRLF) x mode. Over loopback TCP, which may merge
 * or split writes its own way: only the end state is checked, once EOF
 * proves every byte was read. */
START_TEST(test_line_split_everywhere_tcp)
{
	const struct line_case *lc = &line_cases[0];
	enum evchat_eol eol = _i / 2 ? EVCHAT_EOL_CRLF_STRICT : EVCHAT_EOL_CRLF;
	int collect = _i % 2;
	for (size_t cut = 0; cut <= lc->input_len; cut++) {
		note("TCP, %s, %s mode, cut at %zu", eol_names[eol],
		     mode_name(collect), cut);
		struct harness *h = harness_new(collect, 1);
		ck_assert_int_eq(evchat_set_terminator_line(h->chat, eol), 0);
		if (cut > 0)
			feed(h, lc->input, cut);
		if (cut < lc->input_len)
			feed(h, lc->input + cut, lc->input_len - cut);
		finish_case(h, eol, lc->input, lc->input_len, 0);
		harness_free(h);
	}
}
END_TEST

/* _i: mode. The classic case, spelled out. */
START_TEST(test_crlf_ping)
{
	note("%s mode", mode_name(_i));
	struct harness *h = harness_new(_i, 0);
	ck_assert_int_eq(evchat_set_terminator_line(h->chat, EVCHAT_EOL_CRLF),
	                 0);
	feed(h, LIT("PING\n"));
	feed(h, LIT("PING\r\n"));
	feed(h, LIT("PING\r"));
	feed(h, LIT("\nPING\n\r\n"));
	EXPECT_FRAMES(&h->rec, "PING", "PING", "PING", "PING", "");
	ck_assert_uint_eq(h->rec.nevents, 0);

	/* Strict CRLF is not fooled by a bare "\n". */
	ck_assert_int_eq(evchat_set_terminator_line(h->chat,
	                                            EVCHAT_EOL_CRLF_STRICT),
	                 0);
	feed(h, LIT("PING\nPING\r\n"));
	EXPECT_FRAMES(&h->rec, "PING", "PING", "PING", "PING", "",
	              "PING\nPING");
	harness_free(h);
}
END_TEST

/* _i: (lenient, strict CRLF) x mode. A "\r" at the end of a read may
 * start the ending: it is held back (collect does not get it yet) until
 * the next byte shows what it is, and at EOF it is kept, not lost. */
START_TEST(test_trailing_cr_held)
{
	enum evchat_eol eol = _i / 2 ? EVCHAT_EOL_CRLF_STRICT : EVCHAT_EOL_CRLF;
	int collect = _i % 2;
	note("%s, %s mode", eol_names[eol], mode_name(collect));
	struct harness *h = harness_new(collect, 0);
	ck_assert_int_eq(evchat_set_terminator_line(h->chat, eol), 0);

	feed(h, LIT("abc\r"));
	ck_assert_uint_eq(h->rec.nframes, 0);
	expect_bytes("after \"abc\\r\"", unfinished(h), LIT("abc"));
	/* The next byte is not "\n": the "\r" was data after all. */
	feed(h, LIT("x"));
	expect_bytes("after \"x\"", unfinished(h), LIT("abc\rx"));
	/* Two: the first is data, the second may start the ending. */
	feed(h, LIT("\r\r"));
	expect_bytes("after \"\\r\\r\"", unfinished(h), LIT("abc\rx\r"));
	feed(h, LIT("\n"));
	EXPECT_FRAMES(&h->rec, "abc\rx\r");
	expect_bytes("after the line", unfinished(h), LIT(""));

	/* Held, then the ending comes: the frame never saw the "\r". */
	feed(h, LIT("de\r"));
	expect_bytes("after \"de\\r\"", unfinished(h), LIT("de"));
	feed(h, LIT("\n"));
	EXPECT_FRAMES(&h->rec, "abc\rx\r", "de");

	/* Held at EOF: kept, in the pending buffer (frame mode) or given to
	 * collect before the event hook runs. */
	feed(h, LIT("fg\r"));
	expect_bytes("after \"fg\\r\"", unfinished(h), LIT("fg"));
	ck_assert_uint_eq(h->rec.nevents, 0);
	conn_close_peer(&h->c);
	run_until_event(h, 2000);
	expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
	EXPECT_FRAMES(&h->rec, "abc\rx\r", "de");
	expect_bytes("unfinished at EOF", h->unfinished_at_event, LIT("fg\r"));
	if (collect) {
		ck_assert_uint_eq(pending_len(h), 0);
	} else {
		ck_assert_uint_eq(h->rec.pending_at_event, 3);
		expect_bytes("pending after EOF", evchat_get_pending(h->chat),
		             LIT("fg\r"));
	}
	harness_free(h);
}
END_TEST

/* _i: mode. A lone "\r" at EOF, with no byte of the line before it. */
START_TEST(test_lone_cr_at_eof)
{
	note("%s mode", mode_name(_i));
	struct harness *h = harness_new(_i, 0);
	ck_assert_int_eq(evchat_set_terminator_line(h->chat, EVCHAT_EOL_CRLF),
	                 0);
	feed(h, LIT("a\r\n\r"));
	EXPECT_FRAMES(&h->rec, "a");
	expect_bytes("before EOF", unfinished(h), LIT(""));
	conn_close_peer(&h->c);
	run_until_event(h, 2000);
	expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
	expect_bytes("unfinished at EOF", h->unfinished_at_event, LIT("\r"));
	EXPECT_FRAMES(&h->rec, "a");
	harness_free(h);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Random cuts against the reference framer */

/* Mostly endings and near misses. */
static char rnd_byte(ev_uint32_t *state)
{
	static const char alphabet[] = "aab\r\r\r\n\n\0";
	return alphabet[rnd(state, sizeof(alphabet) - 1)];
}

/* _i: mode. Random input, random ending, random cuts. */
START_TEST(test_random_chunking)
{
	enum { CASES = 1000, MAX_INPUT = 120 };
	ev_uint32_t seed = 0x2545f491u + (ev_uint32_t)_i;
	char input[MAX_INPUT];
	for (int c = 0; c < CASES; c++) {
		size_t len = rnd(&seed, MAX_INPUT);
		enum evchat_eol eol = all_eols[rnd(&seed, NEOLS)];
		for (size_t i = 0; i < len; i++)
			input[i] = rnd_byte(&seed);
		char *shown = printable(input, len);
		note("%s mode, case %d, %s, input \"%s\"", mode_name(_i), c,
		     eol_names[eol], shown);
		free(shown);
		struct harness *h = harness_new(_i, 0);
		ck_assert_int_eq(evchat_set_terminator_line(h->chat, eol), 0);
		for (size_t pos = 0; pos < len;) {
			size_t most = 1 + rnd(&seed, 16);
			size_t n = 1 + rnd(&seed, most);
			if (n > len - pos)
				n = len - pos;
			feed(h, input + pos, n);
			pos += n;
		}
		finish_case(h, eol, input, len, 1);
		harness_free(h);
	}
}
END_TEST

/* ------------------------------------------------------------------ */
/* evchat_get_terminator() and the setter's errors */

START_TEST(test_get_terminator_line)
{
	static const struct {
		enum evchat_eol eol;
		struct span ending;
	} endings[] = {
		{ EVCHAT_EOL_LF, { LIT("\n") } },
		{ EVCHAT_EOL_CRLF, { LIT("\r\n") } },
		{ EVCHAT_EOL_CRLF_STRICT, { LIT("\r\n") } },
		{ EVCHAT_EOL_NUL, { LIT("\0") } },
	};
	struct harness *h = harness_new(0, 0);
	for (size_t i = 0; i < sizeof(endings) / sizeof(endings[0]); i++) {
		const void *term = NULL;
		size_t len = 99;
		ev_uint64_t remaining = 99;
		note("%s", eol_names[endings[i].eol]);
		ck_assert_int_eq(evchat_set_terminator_line(h->chat,
		                                            endings[i].eol),
		                 0);
		ck_assert_int_eq(evchat_get_terminator(h->chat, &term, &len,
		                                       &remaining),
		                 EVCHAT_TERM_LINE);
		ck_assert_ptr_nonnull(term);
		ck_assert_uint_eq(len, endings[i].ending.len);
		ck_assert_int_eq(memcmp(term, endings[i].ending.p, len), 0);
		ck_assert_uint_eq(remaining, 0);
		ck_assert_int_eq(evchat_get_terminator(h->chat, NULL, NULL,
		                                       NULL),
		                 EVCHAT_TERM_LINE);
	}

	/* Refused: the terminator stays what it was. */
	ASSERT_FAILS(evchat_set_terminator_line(h->chat, (enum evchat_eol)0),
	             EINVAL);
	ASSERT_FAILS(evchat_set_terminator_line(h->chat, (enum evchat_eol)5),
	             EINVAL);
	ASSERT_FAILS(evchat_set_terminator_line(h->chat, (enum evchat_eol) - 1),
	             EINVAL);
	ASSERT_FAILS(evchat_set_terminator_line(h->chat, (enum evchat_eol)1000),
	             EINVAL);
	ASSERT_FAILS(evchat_set_terminator_line(NULL, EVCHAT_EOL_LF), EINVAL);
	const void *term = NULL;
	size_t len = 0;
	ck_assert_int_eq(evchat_get_terminator(h->chat, &term, &len, NULL),
	                 EVCHAT_TERM_LINE);
	ck_assert_uint_eq(len, 1);
	ck_assert_int_eq(memcmp(term, "\0", 1), 0);
	/* ... and still works. */
	feed(h, LIT("a\0b\n\0"));
	static const struct span want[] = { { LIT("a") }, { LIT("b\n") } };
	expect_frames(&h->rec, want, 2);

	/* Another kind replaces the line. */
	ck_assert_int_eq(evchat_set_terminator_count(h->chat, 3), 0);
	ck_assert_int_eq(evchat_get_terminator(h->chat, &term, &len, NULL),
	                 EVCHAT_TERM_COUNT);
	ck_assert_ptr_null(term);
	ck_assert_uint_eq(len, 0);
	harness_free(h);
}
END_TEST

/* _i: mode. Switching endings from found, at frame boundaries: each frame
 * is ended by the ending set when its predecessor was found. */
static void next_eol(struct evchat *chat, struct recorder *rec)
{
	ck_assert_int_eq(
	    evchat_set_terminator_line(chat, all_eols[rec->nframes % NEOLS]),
	    0);
}

START_TEST(test_switch_eol_in_found)
{
	/* LF, CRLF, strict, NUL, LF, ... */
	static const char input[] = "a\r\nb\r\nc\nd\r\ne\0f\rg\n\0h\n";
	static const struct span want[] = {
		{ LIT("a\r") }, { LIT("b") },    { LIT("c\nd") },
		{ LIT("e") },   { LIT("f\rg") }, { LIT("\0h") },
	};
	for (int bytewise = 0; bytewise < 2; bytewise++) {
		note("%s mode, %s", mode_name(_i),
		     bytewise ? "1-byte writes" : "one write");
		struct harness *h = harness_new(_i, 0);
		h->rec.on_found = next_eol;
		ck_assert_int_eq(evchat_set_terminator_line(h->chat,
		                                            EVCHAT_EOL_LF),
		                 0);
		if (bytewise)
			for (size_t i = 0; i < sizeof(input) - 1; i++)
				feed(h, input + i, 1);
		else
			feed(h, input, sizeof(input) - 1);
		expect_frames(&h->rec, want, 6);
		expect_bytes("unfinished", unfinished(h), LIT(""));
		harness_free(h);
	}
}
END_TEST

/* ------------------------------------------------------------------ */
/* The frame limit counts the line without its ending */

struct limit_case {
	enum evchat_eol eol;
	struct span ending;
	struct span second; /* how "012345678\r" + ending frames */
	int ok_with_cr;     /* "0123456789\r\n" frames as 10 bytes */
};

static const struct limit_case limit_cases[] = {
	{ EVCHAT_EOL_LF, { LIT("\n") }, { LIT("012345678\r") }, 0 },
	{ EVCHAT_EOL_CRLF, { LIT("\r\n") }, { LIT("012345678\r") }, 1 },
	/* The "\r" goes with a bare "\n" too. */
	{ EVCHAT_EOL_CRLF, { LIT("\n") }, { LIT("012345678") }, 1 },
	{ EVCHAT_EOL_CRLF_STRICT, { LIT("\r\n") }, { LIT("012345678\r") }, 1 },
	{ EVCHAT_EOL_NUL, { LIT("\0") }, { LIT("012345678\r") }, 0 },
};
#define NLIMIT (sizeof(limit_cases) / sizeof(limit_cases[0]))

/* _i: case x mode x (one write, 1-byte writes). */
START_TEST(test_max_frame_lines)
{
	const struct limit_case *lc = &limit_cases[_i / 4];
	int collect = _i % 2, bytewise = (_i / 2) % 2;
	char input[64];
	size_t len = 0;
	/* A line of exactly the limit, one whose last byte may be "\r",
	 * then "0123456789\r\n": under the CRLF kinds the "\r" belongs to
	 * the ending there (the line is the limit), under the others it is
	 * an 11th byte. */
	memcpy(input + len, "0123456789", 10);
	len += 10;
	memcpy(input + len, lc->ending.p, lc->ending.len);
	len += lc->ending.len;
	memcpy(input + len, "012345678\r", 10);
	len += 10;
	memcpy(input + len, lc->ending.p, lc->ending.len);
	len += lc->ending.len;
	memcpy(input + len, "0123456789\r\n", 12);
	len += 12;
	if (lc->eol == EVCHAT_EOL_NUL)
		input[len++] = '\0';

	note("%s ending \"%s\", %s mode, %s", eol_names[lc->eol],
	     lc->ending.len == 2 ? "\\r\\n"
	     : lc->ending.p[0]   ? "\\n"
	                         : "\\0",
	     mode_name(collect), bytewise ? "1-byte writes" : "one write");
	struct harness *h = harness_new(collect, 0);
	ck_assert_int_eq(evchat_set_max_frame(h->chat, 10), 0);
	ck_assert_int_eq(evchat_set_terminator_line(h->chat, lc->eol), 0);
	if (bytewise)
		for (size_t i = 0; i < len; i++)
			feed(h, input + i, 1);
	else
		feed(h, input, len);
	run_pending(h->base);
	struct span want[3] = { { LIT("0123456789") },
		                lc->second,
		                { LIT("0123456789") } };
	if (lc->ok_with_cr) {
		expect_frames(&h->rec, want, 3);
		ck_assert_uint_eq(h->rec.nevents, 0);
		/* One byte more is too long. */
		feed(h, LIT("0123456789a\r\n"));
		expect_frames(&h->rec, want, 3);
	} else {
		expect_frames(&h->rec, want, 2);
	}
	run_until_event(h, 2000);
	expect_one_event(&h->rec, EVCHAT_EVENT_FRAME_TOO_LONG);
	ck_assert_uint_eq(h->frames_at_event, h->rec.nframes);
	harness_free(h);
}
END_TEST

/* ------------------------------------------------------------------ */
/* evchat_push_line() */

/* A terminator for the encoder tests: a line ending, or a string. */
struct line_term {
	enum evchat_eol eol; /* 0: the string */
	struct span str;
	struct span wire_ending; /* what push_line writes after the data */
	struct span ok[8];       /* lines that read back as themselves */
	struct span bad[6];      /* lines refused: they would frame early */
};

static const struct line_term line_terms[] = {
	{ EVCHAT_EOL_LF,
	  { NULL, 0 },
	  { LIT("\n") },
	  { { LIT("hello") },
	    { LIT("") },
	    { LIT("a\rb") },
	    { LIT("x\r") },
	    { LIT("\r") },
	    { LIT("\0bin\0") },
	    { LIT("\x01\xff") } },
	  { { LIT("a\nb") }, { LIT("\n") }, { LIT("abc\n") } } },
	{ EVCHAT_EOL_CRLF,
	  { NULL, 0 },
	  { LIT("\r\n") },
	  { { LIT("hello") },
	    { LIT("") },
	    { LIT("a\rb") },
	    { LIT("x\r") },
	    { LIT("\r") },
	    { LIT("\r\r") },
	    { LIT("\0bin\0") } },
	  { { LIT("a\nb") },
	    { LIT("a\r\nb") },
	    { LIT("\n") },
	    { LIT("x\n") } } },
	{ EVCHAT_EOL_CRLF_STRICT,
	  { NULL, 0 },
	  { LIT("\r\n") },
	  { { LIT("hello") },
	    { LIT("") },
	    { LIT("a\rb") },
	    { LIT("x\r") },
	    { LIT("\r") },
	    { LIT("a\nb") },
	    { LIT("\n") },
	    { LIT("\0b\0") } },
	  { { LIT("a\r\nb") },
	    { LIT("\r\n") },
	    { LIT("x\r\n") },
	    { LIT("\r\n\r") } } },
	{ EVCHAT_EOL_NUL,
	  { NULL, 0 },
	  { LIT("\0") },
	  { { LIT("hello") },
	    { LIT("") },
	    { LIT("a\rb") },
	    { LIT("a\nb") },
	    { LIT("\r\n") },
	    { LIT("x\r") } },
	  { { LIT("a\0b") }, { LIT("\0") }, { LIT("abc\0") } } },
	{ 0,
	  { LIT("END") },
	  { LIT("END") },
	  { { LIT("hello") },
	    { LIT("") },
	    { LIT("EN") },
	    { LIT("E") },
	    { LIT("EEN") },
	    { LIT("NDE") },
	    { LIT("a\nb\r\n") } },
	  { { LIT("xEND") },
	    { LIT("ENDx") },
	    { LIT("END") },
	    { LIT("ENEND") } } },
	/* A self-overlapping one: "xa" + "aa" would frame as "x". */
	{ 0,
	  { LIT("aa") },
	  { LIT("aa") },
	  { { LIT("xyz") },
	    { LIT("") },
	    { LIT("ab") },
	    { LIT("bab") },
	    { LIT("b") } },
	  { { LIT("xa") },
	    { LIT("a") },
	    { LIT("aab") },
	    { LIT("baa") },
	    { LIT("aba") } } },
};
#define NLINE_TERMS (sizeof(line_terms) / sizeof(line_terms[0]))

static size_t span_count(const struct span *s, size_t max)
{
	size_t n = 0;
	while (n < max && s[n].p != NULL)
		n++;
	return n;
}

static const char *line_term_name(const struct line_term *t)
{
	return t->eol ? eol_names[t->eol] : t->str.p;
}

static void set_line_term(struct evchat *chat, const struct line_term *t)
{
	if (t->eol)
		ck_assert_int_eq(evchat_set_terminator_line(chat, t->eol), 0);
	else
		ck_assert_int_eq(evchat_set_terminator(chat, t->str.p,
		                                       t->str.len),
		                 0);
}

/* _i: terminator x mode. What one channel pushes as lines, the other
 * reads back as the same frames. */
START_TEST(test_push_line_round_trip)
{
	const struct line_term *t = &line_terms[_i / 2];
	int collect = _i % 2;
	size_t nok = span_count(t->ok, 8);
	note("%s, %s mode", line_term_name(t), mode_name(collect));
	struct harness *h = harness_new(collect, 0);
	struct evchat *sender = channel_on_peer(h);
	set_line_term(h->chat, t);
	set_line_term(sender, t);
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < nok; i++)
			ck_assert_int_eq(evchat_push_line(sender, t->ok[i].p,
			                                  t->ok[i].len),
			                 0);
	run_until_frames(h, 2 * nok, 2000);
	struct span want[16];
	memcpy(want, t->ok, nok * sizeof(want[0]));
	memcpy(want + nok, t->ok, nok * sizeof(want[0]));
	expect_frames(&h->rec, want, 2 * nok);
	/* Nothing more came: no stray ending byte. */
	run_pending(h->base);
	expect_bytes("unfinished", unfinished(h), LIT(""));
	ck_assert_uint_eq(pending_len(h), 0);
	ck_assert_uint_eq(h->rec.nevents, 0);
	evchat_free(sender);
	harness_free(h);
}
END_TEST

/* _i: terminator. The bytes on the wire: the data then the ending; the
 * refused lines sent nothing at all. */
START_TEST(test_push_line_wire)
{
	const struct line_term *t = &line_terms[_i];
	size_t nbad = span_count(t->bad, 6);
	note("%s", line_term_name(t));
	struct harness *h = harness_new(0, 0);
	set_line_term(h->chat, t);
	ck_assert_int_eq(evchat_push_line(h->chat, LIT("abc")), 0);
	for (size_t i = 0; i < nbad; i++) {
		char *shown = printable(t->bad[i].p, t->bad[i].len);
		note("%s, refused line \"%s\"", line_term_name(t), shown);
		free(shown);
		ASSERT_FAILS(evchat_push_line(h->chat, t->bad[i].p,
		                              t->bad[i].len),
		             EINVAL);
	}
	note("%s", line_term_name(t));
	ck_assert_int_eq(evchat_push_line(h->chat, LIT("")), 0);
	/* No data at all is an empty line too. */
	ck_assert_int_eq(evchat_push_line(h->chat, NULL, 0), 0);
	ck_assert_int_eq(evchat_push_line(h->chat, LIT("z")), 0);

	struct evbuffer *want = evbuffer_new();
	struct evbuffer *got = evbuffer_new();
	evbuffer_add(want, "abc", 3);
	evbuffer_add(want, t->wire_ending.p, t->wire_ending.len);
	evbuffer_add(want, t->wire_ending.p, t->wire_ending.len);
	evbuffer_add(want, t->wire_ending.p, t->wire_ending.len);
	evbuffer_add(want, "z", 1);
	evbuffer_add(want, t->wire_ending.p, t->wire_ending.len);
	read_written(h, got);
	expect_bytes("written", got, evbuffer_pullup(want, -1),
	             evbuffer_get_length(want));
	evbuffer_free(want);
	evbuffer_free(got);
	harness_free(h);
}
END_TEST

/* push_line needs a line or string terminator, and sane arguments. */
START_TEST(test_push_line_errors)
{
	static const struct evchat_length_field field = { 0, 2, 0, 0, 2 };
	struct harness *h = harness_new(0, 0);

	/* A new channel has no terminator. */
	ASSERT_FAILS(evchat_push_line(h->chat, LIT("a")), EINVAL);
	ck_assert_int_eq(evchat_set_terminator_count(h->chat, 5), 0);
	ASSERT_FAILS(evchat_push_line(h->chat, LIT("a")), EINVAL);
	ASSERT_FAILS(evchat_push_line(h->chat, LIT("")), EINVAL);
	ck_assert_int_eq(evchat_set_terminator_none(h->chat), 0);
	ASSERT_FAILS(evchat_push_line(h->chat, LIT("a")), EINVAL);
	ck_assert_int_eq(evchat_set_terminator_length(h->chat, &field), 0);
	ASSERT_FAILS(evchat_push_line(h->chat, LIT("a")), EINVAL);

	ck_assert_int_eq(evchat_set_terminator_line(h->chat, EVCHAT_EOL_LF), 0);
	ASSERT_FAILS(evchat_push_line(NULL, LIT("a")), EINVAL);
	ASSERT_FAILS(evchat_push_line(h->chat, NULL, 1), EINVAL);
	ck_assert_int_eq(evchat_push_line(h->chat, LIT("ok")), 0);

	struct evbuffer *got = evbuffer_new();
	read_written(h, got);
	expect_bytes("written", got, LIT("ok\n"));
	evbuffer_free(got);
	harness_free(h);
}
END_TEST

/* Pushing after the close was requested: EPIPE, as every push. */
START_TEST(test_push_line_after_close)
{
	struct harness *h = harness_new(0, 0);
	ck_assert_int_eq(evchat_set_terminator_line(h->chat, EVCHAT_EOL_CRLF),
	                 0);
	ck_assert_int_eq(evchat_push_line(h->chat, LIT("bye")), 0);
	struct evbuffer *got = evbuffer_new();
	h->free_on_closed = 1;
	ck_assert_int_eq(evchat_close_when_done(h->chat), 0);
	ASSERT_FAILS(evchat_push_line(h->chat, LIT("late")), EPIPE);
	read_peer_to_eof(&h->c, got, 2000);
	expect_bytes("written", got, LIT("bye\r\n"));
	evbuffer_free(got);
	harness_free(h);
}
END_TEST

Suite *lines_suite(void)
{
	Suite *s = suite_create("lines");
	TCase *tc;

	tc = tcase_create("framing");
	tcase_add_test(tc, test_reference_framer);
	tcase_add_loop_test(tc, test_line_split_everywhere, 0,
	                    (int)(NLINE_CASES * NEOLS * 2));
	tcase_add_loop_test(tc, test_line_one_byte_writes, 0,
	                    (int)(NLINE_CASES * NEOLS * 2));
	tcase_add_loop_test(tc, test_line_split_everywhere_tcp, 0, 4);
	tcase_add_loop_test(tc, test_crlf_ping, 0, 2);
	tcase_add_loop_test(tc, test_trailing_cr_held, 0, 4);
	tcase_add_loop_test(tc, test_lone_cr_at_eof, 0, 2);
	tcase_add_test(tc, test_get_terminator_line);
	tcase_add_loop_test(tc, test_switch_eol_in_found, 0, 2);
	tcase_add_loop_test(tc, test_max_frame_lines, 0, (int)(NLIMIT * 4));
	suite_add_tcase(s, tc);

	tc = tcase_create("encode");
	tcase_add_loop_test(tc, test_push_line_round_trip, 0,
	                    (int)(NLINE_TERMS * 2));
	tcase_add_loop_test(tc, test_push_line_wire, 0, (int)NLINE_TERMS);
	tcase_add_test(tc, test_push_line_errors);
	tcase_add_test(tc, test_push_line_after_close);
	suite_add_tcase(s, tc);

	tc = tcase_create("random");
	/* A thousand channels each: under ASan on a loaded machine, past
	 * Check's default 4 s. A volume test, timed as test-framing's is. */
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_random_chunking, 0, 2);
	suite_add_tcase(s, tc);

	return s;
}
