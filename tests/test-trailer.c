/*
 * Counts with a trailer (evchat_set_terminator_count_trailer()): a Redis
 * bulk string's bytes and the "\r\n" after them, framed as one frame with
 * the trailer checked and dropped. The frames must not depend on where
 * the reads fall, a wrong trailer must be refused the moment it arrives,
 * and the limit counts the frame, never its trailer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "suites.h"

/* The protocol the tests speak: lines ending "\r\n"; a line "$N"
 * announces N bytes followed by the trailer. rec->user points here. */
struct bulk_protocol {
	const char *trailer;
	size_t trailer_len;
	int in_bulk;
};

static void bulk_found(struct evchat *chat, struct recorder *rec)
{
	struct bulk_protocol *p = rec->user;
	/* A piece of a split frame leaves the count running. */
	if (evchat_frame_is_partial(chat))
		return;
	if (p->in_bulk) {
		/* A count's frame leaves no terminator, trailer or not. */
		ck_assert_int_eq(evchat_get_terminator(chat, NULL, NULL, NULL),
		                 EVCHAT_TERM_NONE);
		p->in_bulk = 0;
		ck_assert_int_eq(
		    evchat_set_terminator_line(chat, EVCHAT_EOL_CRLF_STRICT),
		    0);
		return;
	}
	char *line = recorder_frame(rec, rec->nframes - 1);
	if (line[0] == '$') {
		p->in_bulk = 1;
		ck_assert_int_eq(evchat_set_terminator_count_trailer(
		                     chat, strtoull(line + 1, NULL, 10),
		                     p->trailer, p->trailer_len),
		                 0);
	}
	free(line);
}

static struct harness *bulk_harness(int collect, struct bulk_protocol *p,
                                    const char *trailer, size_t trailer_len)
{
	struct harness *h = harness_new(collect, 0);
	p->trailer = trailer;
	p->trailer_len = trailer_len;
	p->in_bulk = 0;
	h->rec.user = p;
	h->rec.on_found = bulk_found;
	ck_assert_int_eq(evchat_set_terminator_line(h->chat,
	                                            EVCHAT_EOL_CRLF_STRICT),
	                 0);
	return h;
}

/* Empty bulks, bulks holding the trailer, a line after them, and a
 * trailer longer than the channel keeps in place (its own block). */
struct cut_case {
	const char *trailer;
	size_t trailer_len;
	const char *input;
	size_t input_len;
	const char *frames[9];
	size_t nframes;
	const char *rest;
};
static const struct cut_case cut_cases[] = {
	{ LIT("\r\n"),
	  LIT("$5\r\nhello\r\n$0\r\n\r\n$3\r\na\r\n\r\n+OK\r\n"
	      "$4\r\n\r\n\r\n\r\ntail"),
	  { "$5", "hello", "$0", "", "$3", "a\r\n", "+OK", "$4", "\r\n\r\n" },
	  9,
	  "tail" },
	{ LIT("ab-ab-!"),
	  LIT("$3\r\nxyzab-ab-!$0\r\nab-ab-!$9\r\nab-ab-ab-ab-ab-!+OK\r\n"
	      "$2\r\n"),
	  { "$3", "xyz", "$0", "", "$9", "ab-ab-ab-", "+OK", "$2" },
	  8,
	  "" },
};
#define NCUT (sizeof(cut_cases) / sizeof(cut_cases[0]))

/* _i: case x mode. The input in two writes, cut at every byte: the same
 * frames every time, and what follows the last one unfinished. */
START_TEST(test_trailer_cut_everywhere)
{
	const struct cut_case *cc = &cut_cases[_i / 2];
	int collect = _i % 2;
	for (size_t cut = 0; cut <= cc->input_len; cut++) {
		char *shown = printable(cc->trailer, cc->trailer_len);
		note("trailer %s, %s mode, cut at %zu", shown,
		     mode_name(collect), cut);
		free(shown);
		struct bulk_protocol p;
		struct harness *h = bulk_harness(collect, &p, cc->trailer,
		                                 cc->trailer_len);
		if (cut > 0)
			feed(h, cc->input, cut);
		if (cut < cc->input_len)
			feed(h, cc->input + cut, cc->input_len - cut);
		struct span want[9];
		for (size_t i = 0; i < cc->nframes; i++) {
			want[i].p = cc->frames[i];
			want[i].len = strlen(cc->frames[i]);
		}
		expect_frames(&h->rec, want, cc->nframes);
		expect_bytes("unfinished", unfinished(h), cc->rest,
		             strlen(cc->rest));
		ck_assert_uint_eq(h->rec.nevents, 0);
		harness_free(h);
	}
}
END_TEST

/* _i: mode. One byte per read: the trailer's bytes come apart, and the
 * frame ends with its last one, not before. */
START_TEST(test_trailer_dribbled)
{
	note("%s mode", mode_name(_i));
	struct bulk_protocol p;
	struct harness *h = bulk_harness(_i, &p, LIT("\r\n"));
	feed(h, LIT("$3\r\nabc"));
	EXPECT_FRAMES(&h->rec, "$3");
	ev_uint64_t left = 1;
	const void *term;
	size_t term_len;
	ck_assert_int_eq(evchat_get_terminator(h->chat, &term, &term_len,
	                                       &left),
	                 EVCHAT_TERM_COUNT);
	ck_assert_uint_eq(left, 0);
	ck_assert_uint_eq(term_len, 2);
	ck_assert_int_eq(memcmp(term, "\r\n", 2), 0);
	feed(h, LIT("\r"));
	run_for(h->base, 20);
	EXPECT_FRAMES(&h->rec, "$3");
	ck_assert_uint_eq(h->rec.nevents, 0);
	feed(h, LIT("\n"));
	EXPECT_FRAMES(&h->rec, "$3", "abc");
	feed(h, LIT("+OK\r\n"));
	EXPECT_FRAMES(&h->rec, "$3", "abc", "+OK");
	ck_assert_uint_eq(h->rec.nevents, 0);
	harness_free(h);
}
END_TEST

/* A bulk with one byte more or less than announced, or a wrong byte in
 * the trailer's first or last place, as one read or with the wrong byte
 * alone in the last read. */
struct wrong_case {
	const char *input;
	size_t input_len;
	const char *collected; /* of the refused frame, in collect mode */
};
static const struct wrong_case wrong_cases[] = {
	{ LIT("$3\r\nabcd\r\n+OK\r\n"), "abc" },
	{ LIT("$3\r\nab\r\n+OK\r\n"), "ab\r" },
	{ LIT("$3\r\nabc\n\r+OK\r\n"), "abc" },
	{ LIT("$3\r\nabc\r\r\n+OK\r\n"), "abc" },
	{ LIT("$0\r\nx\r\n"), "" },
};
#define NWRONG (sizeof(wrong_cases) / sizeof(wrong_cases[0]))

/* _i: case x mode x (one read, the wrong byte apart). Refused with
 * FRAME_INVALID (errno EBADMSG, which the recorder checks) as soon as
 * the wrong byte comes: the frame before was delivered, the refused one
 * never is, and nothing after it. */
START_TEST(test_trailer_wrong)
{
	const struct wrong_case *wc = &wrong_cases[_i / 4];
	int collect = _i % 2, apart = (_i / 2) % 2;
	char *shown = printable(wc->input, wc->input_len);
	note("%s, %s mode, %s", shown, mode_name(collect),
	     apart ? "wrong byte apart" : "one read");
	free(shown);
	struct bulk_protocol p;
	struct harness *h = bulk_harness(collect, &p, LIT("\r\n"));
	feed(h, LIT("$1\r\nx\r\n"));
	/* The wrong byte is the first that differs from "<count>\r\n". */
	const char *body = strchr(wc->input, '\n') + 1;
	size_t count = strtoull(wc->input + 1, NULL, 10);
	size_t wrong = (size_t)(body - wc->input) + count;
	if (memcmp(wc->input + wrong, "\r\n", 2) == 0)
		wrong += 2;
	else if (wc->input[wrong] == '\r')
		wrong++;
	if (apart) {
		feed(h, wc->input, wrong);
		run_for(h->base, 20);
		ck_assert_uint_eq(h->rec.nevents, 0);
		feed(h, wc->input + wrong, 1);
	} else {
		feed(h, wc->input, wc->input_len);
	}
	run_until_event(h, 2000);
	expect_one_event(&h->rec, EVCHAT_EVENT_FRAME_INVALID);
	ck_assert(h->rec.events[0] & EVCHAT_EVENT_READING);
	/* The refusing terminator stays, to tell what was refused. */
	ck_assert_int_eq(evchat_get_terminator(h->chat, NULL, NULL, NULL),
	                 EVCHAT_TERM_COUNT);
	const struct span want[] = { { LIT("$1") },
		                     { LIT("x") },
		                     { wc->input,
		                       (size_t)(body - wc->input) - 2 } };
	expect_frames(&h->rec, want, 3);
	if (collect)
		expect_bytes("collected", h->unfinished_at_event, wc->collected,
		             strlen(wc->collected));
	else
		ck_assert_uint_eq(h->rec.pending_at_event, 0);
	/* Reading has stopped: more input frames nothing. */
	if (!apart)
		feed(h, LIT("+MORE\r\n"));
	run_for(h->base, 20);
	ck_assert_uint_eq(h->rec.nframes, 3);
	ck_assert_uint_eq(h->rec.nevents, 1);
	harness_free(h);
}
END_TEST

/* The recording hooks, for tests with hooks of their own beside them. */
static void own_collect(struct evchat *chat, struct evbuffer *data, void *arg)
{
	struct harness *h = arg;
	recorder_collect_cb(chat, data, &h->rec);
}

static void own_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct harness *h = arg;
	recorder_found_cb(chat, frame, &h->rec);
}

/* _i: mode. The input ends inside the trailer: the EOF is reported, and
 * the frame's bytes and the trailer's that came are kept, as a partial
 * string terminator is. */
START_TEST(test_trailer_eof_inside)
{
	note("%s mode", mode_name(_i));
	struct bulk_protocol p;
	struct harness *h = bulk_harness(_i, &p, LIT("\r\n"));
	feed(h, LIT("$3\r\nabc\r"));
	conn_close_peer(&h->c);
	run_until_event(h, 2000);
	expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
	EXPECT_FRAMES(&h->rec, "$3");
	expect_bytes("unfinished at EOF", h->unfinished_at_event, LIT("abc\r"));
	harness_free(h);
}
END_TEST

/* Collect mode: what the count has left, as each collect call sees it. */
static void collect_remaining(struct evchat *chat, struct evbuffer *data,
                              void *arg)
{
	struct harness *h = arg;
	ev_uint64_t *seen = h->rec.user;
	ck_assert_int_eq(evchat_get_terminator(chat, NULL, NULL,
	                                       &seen[h->rec.ncollect_calls]),
	                 EVCHAT_TERM_COUNT);
	own_collect(chat, data, arg);
}

/* The trailer's bytes handed to collect at EOF are told from the
 * frame's: the count is at 0 remaining then, as it is not while the
 * frame's own bytes come. */
START_TEST(test_trailer_eof_collect_tells)
{
	struct harness *h = harness_new(1, 0);
	ev_uint64_t seen[2] = { 99, 99 };
	h->rec.user = seen;
	evchat_setcb(h->chat, collect_remaining, own_found, harness_event_cb,
	             h);
	ck_assert_int_eq(evchat_set_terminator_count_trailer(h->chat, 3,
	                                                     LIT("\r\n")),
	                 0);
	feed(h, LIT("abc"));
	feed(h, LIT("\r"));
	conn_close_peer(&h->c);
	run_until_event(h, 2000);
	expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
	ck_assert_uint_eq(h->rec.ncollect_calls, 2);
	ck_assert_uint_eq(seen[0], 3);
	ck_assert_uint_eq(seen[1], 0);
	expect_bytes("collected", h->unfinished_at_event, LIT("abc\r"));
	harness_free(h);
}
END_TEST

/* A skipped frame leaves no terminator: the next line needs one. */
static void discard_event(struct evchat *chat, short events, void *arg)
{
	struct harness *h = arg;
	harness_event_cb(chat, events, arg);
	if (events & EVCHAT_EVENT_FRAME_DISCARDED) {
		struct bulk_protocol *p = h->rec.user;
		p->in_bulk = 0;
		ck_assert_int_eq(
		    evchat_set_terminator_line(chat, EVCHAT_EOL_CRLF_STRICT),
		    0);
	}
}

/* _i: (exact, one byte over with CLOSE) x mode. The limit counts the
 * frame, not its trailer; a count over it is refused before its bytes
 * come. */
START_TEST(test_trailer_limit)
{
	int over = _i / 2, collect = _i % 2;
	note("%s, %s mode", over ? "over the limit" : "at the limit",
	     mode_name(collect));
	struct bulk_protocol p;
	struct harness *h = bulk_harness(collect, &p, LIT("\r\n"));
	ck_assert_int_eq(evchat_set_max_frame(h->chat, 5), 0);
	feed(h, LIT("$5\r\nhello\r\n"));
	EXPECT_FRAMES(&h->rec, "$5", "hello");
	if (!over) {
		ck_assert_uint_eq(h->rec.nevents, 0);
		harness_free(h);
		return;
	}
	feed(h, LIT("$6\r\n"));
	run_until_event(h, 2000);
	expect_one_event(&h->rec, EVCHAT_EVENT_FRAME_TOO_LONG);
	EXPECT_FRAMES(&h->rec, "$5", "hello", "$6");
	ev_uint64_t left;
	ck_assert_int_eq(evchat_get_terminator(h->chat, NULL, NULL, &left),
	                 EVCHAT_TERM_COUNT);
	ck_assert_uint_eq(left, 6);
	harness_free(h);
}
END_TEST

/* _i: mode x (right trailer, wrong one). A bulk over the limit under
 * DISCARD is skipped, and its trailer still checked: a right one gives
 * FRAME_DISCARDED and the next line, a wrong one FRAME_INVALID. */
START_TEST(test_trailer_discard)
{
	int collect = _i % 2, wrong = _i / 2;
	note("%s mode, %s trailer", mode_name(collect),
	     wrong ? "wrong" : "right");
	struct bulk_protocol p;
	struct harness *h = bulk_harness(collect, &p, LIT("\r\n"));
	evchat_setcb(h->chat, collect ? own_collect : NULL, own_found,
	             discard_event, h);
	ck_assert_int_eq(evchat_set_frame_limit(h->chat, 4,
	                                        EVCHAT_LIMIT_DISCARD),
	                 0);
	if (wrong)
		feed(h, LIT("$6\r\nhello!!\r\n+OK\r\n"));
	else
		feed(h, LIT("$6\r\nhello!\r\n+OK\r\n"));
	run_until_event(h, 2000);
	if (wrong) {
		expect_one_event(&h->rec, EVCHAT_EVENT_FRAME_INVALID);
		EXPECT_FRAMES(&h->rec, "$6");
	} else {
		run_until_frames(h, 2, 2000);
		expect_one_event(&h->rec, EVCHAT_EVENT_FRAME_DISCARDED);
		ck_assert_uint_eq(evchat_get_discarded(h->chat), 6);
		EXPECT_FRAMES(&h->rec, "$6", "+OK");
	}
	harness_free(h);
}
END_TEST

/* _i: mode. Under SPLIT a big bulk comes in pieces of the limit, the last
 * one once the trailer is whole. */
START_TEST(test_trailer_split)
{
	note("%s mode", mode_name(_i));
	struct bulk_protocol p;
	struct harness *h = bulk_harness(_i, &p, LIT("\r\n"));
	ck_assert_int_eq(evchat_set_frame_limit(h->chat, 4, EVCHAT_LIMIT_SPLIT),
	                 0);
	feed(h, LIT("$10\r\n0123456789\r"));
	EXPECT_FRAMES(&h->rec, "$10", "0123", "4567");
	feed(h, LIT("\n+OK\r\n"));
	EXPECT_FRAMES(&h->rec, "$10", "0123", "4567", "89", "+OK");
	ck_assert_uint_eq(h->rec.nevents, 0);
	harness_free(h);
}
END_TEST

/* A collect hook that sets a line ending when it is handed the count's
 * last bytes: the count still ends the frame, and the line ending, not
 * the trailer, frames what follows. */
static void collect_sets_line(struct evchat *chat, struct evbuffer *data,
                              void *arg)
{
	own_collect(chat, data, arg);
	ck_assert_int_eq(evchat_set_terminator_line(chat, EVCHAT_EOL_LF), 0);
}

START_TEST(test_trailer_replaced_by_collect)
{
	struct harness *h = harness_new(1, 0);
	evchat_setcb(h->chat, collect_sets_line, own_found, harness_event_cb,
	             h);
	ck_assert_int_eq(evchat_set_terminator_count_trailer(h->chat, 5,
	                                                     LIT("\r\n")),
	                 0);
	feed(h, LIT("hello!!\nnext\n"));
	EXPECT_FRAMES(&h->rec, "hello", "!!", "next");
	ck_assert_uint_eq(h->rec.nevents, 0);
	harness_free(h);
}
END_TEST

/* What the collect hook does when handed the count's last byte: set a
 * string terminator and pause, or discard the buffers. */
enum last_bytes_action { SET_AND_PAUSE, DISCARD };
struct last_bytes {
	struct harness *h;
	enum last_bytes_action action;
	int done;
};

static void collect_on_last_byte(struct evchat *chat, struct evbuffer *data,
                                 void *arg)
{
	struct last_bytes *lb = arg;
	size_t n = evbuffer_get_length(data);
	int last = n > 0 && evbuffer_pullup(data, -1)[n - 1] == 'o';
	own_collect(chat, data, lb->h);
	if (!last || lb->done)
		return;
	lb->done = 1;
	if (lb->action == DISCARD) {
		evchat_discard_buffers(chat);
		return;
	}
	ck_assert_int_eq(evchat_set_terminator(chat, LIT("X")), 0);
	ck_assert_int_eq(evchat_pause_input(chat), 0);
}

static void last_bytes_found(struct evchat *chat, struct evbuffer *frame,
                             void *arg)
{
	struct last_bytes *lb = arg;
	own_found(chat, frame, lb->h);
}

static void last_bytes_event(struct evchat *chat, short events, void *arg)
{
	struct last_bytes *lb = arg;
	harness_event_cb(chat, events, lb->h);
}

/* _i: (plain count, count with a trailer) x (set a terminator and pause,
 * discard). The collect hook handed a count's last bytes stops the loop
 * there: the count's frame still ends, once the loop runs again (at the
 * resume; from the event loop after the discard), not with the peer's
 * next bytes, and a terminator the hook set frames what follows. */
START_TEST(test_count_end_after_hook_stops)
{
	int trailer = _i % 2;
	enum last_bytes_action action = (enum last_bytes_action)(_i / 2);
	note("%s, %s", trailer ? "count with a trailer" : "plain count",
	     action == DISCARD ? "discard" : "terminator set, then pause");
	struct harness *h = harness_new(1, 0);
	struct last_bytes lb = { h, action, 0 };
	evchat_setcb(h->chat, collect_on_last_byte, last_bytes_found,
	             last_bytes_event, &lb);
	if (trailer)
		ck_assert_int_eq(evchat_set_terminator_count_trailer(
		                     h->chat, 5, LIT("\r\n")),
		                 0);
	else
		ck_assert_int_eq(evchat_set_terminator_count(h->chat, 5), 0);
	feed(h, LIT("hello\r\nabcX"));
	run_for(h->base, 20);
	if (action == DISCARD && trailer) {
		/* The trailer's bytes went with the rest: it is due whole
		 * again, as a string terminator would be. */
		ck_assert_uint_eq(h->rec.nframes, 0);
		ev_uint64_t left = 1;
		ck_assert_int_eq(evchat_get_terminator(h->chat, NULL, NULL,
		                                       &left),
		                 EVCHAT_TERM_COUNT);
		ck_assert_uint_eq(left, 0);
		feed(h, LIT("\r\n"));
		EXPECT_FRAMES(&h->rec, "hello");
	} else if (action == DISCARD) {
		EXPECT_FRAMES(&h->rec, "hello");
		ck_assert_int_eq(evchat_get_terminator(h->chat, NULL, NULL,
		                                       NULL),
		                 EVCHAT_TERM_NONE);
	} else {
		ck_assert_uint_eq(h->rec.nframes, 0);
		ck_assert_int_eq(evchat_resume_input(h->chat), 0);
		run_for(h->base, 20);
		/* The hook's terminator frames the trailer's bytes too: it
		 * took the trailer's place. */
		EXPECT_FRAMES(&h->rec, "hello", "\r\nabc");
	}
	ck_assert_uint_eq(h->rec.nevents, 0);
	harness_free(h);
}
END_TEST

/* Frame mode gathered bytes, then a collect hook and a count of 0 (with
 * a trailer or without): the hook hears the gathered bytes as the empty
 * count ends the frame, and a terminator it sets then stays. */
static void collect_sets_semicolon(struct evchat *chat, struct evbuffer *data,
                                   void *arg)
{
	own_collect(chat, data, arg);
	ck_assert_int_eq(evchat_set_terminator(chat, LIT(";")), 0);
}

START_TEST(test_count_end_keeps_collect_terminator)
{
	int trailer = _i;
	note("%s", trailer ? "with a trailer" : "plain count");
	struct harness *h = harness_new(0, 0);
	feed(h, LIT("abc"));
	evchat_setcb(h->chat, collect_sets_semicolon, own_found,
	             harness_event_cb, h);
	h->collect_mode = 1;
	if (trailer) {
		ck_assert_int_eq(evchat_set_terminator_count_trailer(
		                     h->chat, 0, LIT("\r\n")),
		                 0);
		feed(h, LIT("\r\n"));
	} else {
		ck_assert_int_eq(evchat_set_terminator_count(h->chat, 0), 0);
		run_pending(h->base);
	}
	EXPECT_FRAMES(&h->rec, "abc");
	ck_assert_int_eq(evchat_get_terminator(h->chat, NULL, NULL, NULL),
	                 EVCHAT_TERM_STRING);
	feed(h, LIT("x;"));
	EXPECT_FRAMES(&h->rec, "abc", "x");
	harness_free(h);
}
END_TEST

/* What evchat_get_terminator() tells, and the arguments refused. */
START_TEST(test_trailer_get_and_invalid)
{
	struct harness *h = harness_new(0, 0);
	ck_assert_int_eq(evchat_set_terminator_count_trailer(h->chat, 7,
	                                                     LIT("\0\n")),
	                 0);
	const void *term;
	size_t len;
	ev_uint64_t left;
	ck_assert_int_eq(evchat_get_terminator(h->chat, &term, &len, &left),
	                 EVCHAT_TERM_COUNT);
	ck_assert_uint_eq(len, 2);
	ck_assert_int_eq(memcmp(term, "\0\n", 2), 0);
	ck_assert_uint_eq(left, 7);
	/* A plain count has no string. */
	ck_assert_int_eq(evchat_set_terminator_count(h->chat, 3), 0);
	ck_assert_int_eq(evchat_get_terminator(h->chat, &term, &len, &left),
	                 EVCHAT_TERM_COUNT);
	ck_assert_ptr_null(term);
	ck_assert_uint_eq(len, 0);
	ck_assert_uint_eq(left, 3);
	/* The largest count is taken as it is. */
	ck_assert_int_eq(evchat_set_terminator_count_trailer(h->chat,
	                                                     EV_UINT64_MAX,
	                                                     LIT("\r\n")),
	                 0);
	ck_assert_int_eq(evchat_get_terminator(h->chat, NULL, NULL, &left),
	                 EVCHAT_TERM_COUNT);
	ck_assert(left == EV_UINT64_MAX);
	ASSERT_FAILS(evchat_set_terminator_count_trailer(NULL, 1, LIT("\n")),
	             EINVAL);
	ASSERT_FAILS(evchat_set_terminator_count_trailer(h->chat, 1, NULL, 1),
	             EINVAL);
	ASSERT_FAILS(evchat_set_terminator_count_trailer(h->chat, 1, "\n", 0),
	             EINVAL);
	/* The refused calls changed nothing. */
	ck_assert_int_eq(evchat_get_terminator(h->chat, &term, &len, &left),
	                 EVCHAT_TERM_COUNT);
	ck_assert_uint_eq(len, 2);
	ck_assert(left == EV_UINT64_MAX);
	harness_free(h);
}
END_TEST

Suite *trailer_suite(void)
{
	Suite *s = suite_create("trailer");
	TCase *tc = tcase_create("trailer");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_trailer_cut_everywhere, 0, 2 * NCUT);
	tcase_add_loop_test(tc, test_trailer_dribbled, 0, 2);
	tcase_add_loop_test(tc, test_trailer_wrong, 0, 4 * NWRONG);
	tcase_add_loop_test(tc, test_trailer_eof_inside, 0, 2);
	tcase_add_test(tc, test_trailer_eof_collect_tells);
	tcase_add_loop_test(tc, test_trailer_limit, 0, 4);
	tcase_add_loop_test(tc, test_trailer_discard, 0, 4);
	tcase_add_loop_test(tc, test_trailer_split, 0, 2);
	tcase_add_test(tc, test_trailer_replaced_by_collect);
	tcase_add_loop_test(tc, test_count_end_keeps_collect_terminator, 0, 2);
	tcase_add_loop_test(tc, test_count_end_after_hook_stops, 0, 4);
	tcase_add_test(tc, test_trailer_get_and_invalid);
	suite_add_tcase(s, tc);
	return s;
}
