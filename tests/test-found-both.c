/*
 * Both found hooks at once: evchat_setcb_both(). The frames themselves
 * are checked by the framing suites, run again with EVCHAT_TEST_FOUND_BOTH
 * set (see tests/variants.sh); these tests check what only this call
 * promises: which hook gets which frame (lent in place to found_bytes,
 * everything else to found as a buffer), that the two together deliver
 * every byte in order, and that either hook may change the framing or
 * free the channel.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "helpers.h"
#include "suites.h"

#define BOTH_MAX 4096

/* What the two hooks saw, in order; `act` runs after each frame is
 * recorded. */
struct both {
	struct harness *h;
	struct evbuffer *all; /* every frame's bytes, concatenated */
	char hook[BOTH_MAX];  /* 'b': lent to found_bytes, 'f': found */
	size_t len[BOTH_MAX];
	int partial[BOTH_MAX];   /* evchat_frame_is_partial() in the hook */
	size_t pieces[BOTH_MAX]; /* found: the chains its buffer had */
	const unsigned char *at[BOTH_MAX]; /* found_bytes: where it lay */
	size_t n, nbytes, nfound;
	size_t collected; /* collect mode: bytes collected */
	/* Read inside the hook after act ran (act may free the channel):
	 * the frame must still be there. */
	char seen_after_act[64];
	void (*act)(struct evchat *chat, struct both *b);
};

static void record(struct evchat *chat, struct both *b, char hook, size_t len)
{
	ck_assert_uint_lt(b->n, BOTH_MAX);
	b->hook[b->n] = hook;
	b->len[b->n] = len;
	b->partial[b->n] = evchat_frame_is_partial(chat);
	b->n++;
	if (hook == 'b')
		b->nbytes++;
	else
		b->nfound++;
}

static void both_bytes(struct evchat *chat, const unsigned char *frame,
                       size_t len, void *arg)
{
	struct both *b = arg;
	ck_assert_msg(frame != NULL, "found_bytes: NULL with length %zu", len);
	ck_assert_uint_lt(b->n, BOTH_MAX);
	b->at[b->n] = frame;
	b->pieces[b->n] = 0;
	if (len > 0)
		evbuffer_add(b->all, frame, len);
	record(chat, b, 'b', len);
	if (b->act != NULL)
		b->act(chat, b);
	size_t keep = len < sizeof(b->seen_after_act) ? len : 0;
	memcpy(b->seen_after_act, frame, keep);
	b->seen_after_act[keep] = '\0';
}

static void both_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct both *b = arg;
	ck_assert_uint_lt(b->n, BOTH_MAX);
	b->at[b->n] = NULL;
	if (frame == NULL) { /* collect mode */
		b->pieces[b->n] = 0;
		record(chat, b, 'f', 0);
		if (b->act != NULL)
			b->act(chat, b);
		return;
	}
	size_t len = evbuffer_get_length(frame);
	b->pieces[b->n] = (size_t)evbuffer_peek(frame, -1, NULL, NULL, 0);
	record(chat, b, 'f', len);
	if (b->act != NULL)
		b->act(chat, b);
	size_t keep = len < sizeof(b->seen_after_act) ? len : 0;
	evbuffer_copyout(frame, b->seen_after_act, keep);
	b->seen_after_act[keep] = '\0';
	evbuffer_add_buffer(b->all, frame);
}

static void both_collect(struct evchat *chat, struct evbuffer *data, void *arg)
{
	struct both *b = arg;
	b->collected += evbuffer_get_length(data);
	evbuffer_add_buffer(b->all, data);
}

/* The harness's event hook records into h->rec, as for other suites. */
static void both_event(struct evchat *chat, short events, void *arg)
{
	struct both *b = arg;
	recorder_event_cb(chat, events, &b->h->rec);
}

static struct harness *both_harness(struct both *b, int tcp, unsigned flags)
{
	memset(b, 0, sizeof(*b));
	b->all = evbuffer_new();
	ck_assert_ptr_nonnull(b->all);
	b->h = harness_new_opts(event_base_new(), 0, tcp, flags);
	evchat_setcb_both(b->h->chat, NULL, both_bytes, both_found, both_event,
	                  b);
	return b->h;
}

static void both_free(struct both *b)
{
	harness_free(b->h);
	evbuffer_free(b->all);
}

/* Frame i as "b:text" or "f:text", with "+" after the hook's letter for a
 * piece with more to come: what the tests compare. */
static char *seen(const struct both *b, size_t i)
{
	size_t off = 0;
	for (size_t k = 0; k < i; k++)
		off += b->len[k];
	char *s = malloc(b->len[i] + 4);
	ck_assert_ptr_nonnull(s);
	char *o = s;
	*o++ = b->hook[i];
	if (b->partial[i])
		*o++ = '+';
	*o++ = ':';
	struct evbuffer_ptr pos;
	ck_assert_int_eq(evbuffer_ptr_set(b->all, &pos, off, EVBUFFER_PTR_SET),
	                 0);
	evbuffer_copyout_from(b->all, &pos, o, b->len[i]);
	o[b->len[i]] = '\0';
	return s;
}

static void expect_seen(const struct both *b, const char *const *want, size_t n)
{
	for (size_t i = 0; i < n && i < b->n; i++) {
		char *got = seen(b, i);
		ck_assert_msg(strcmp(got, want[i]) == 0,
		              "%s: frame %zu: got \"%s\", want \"%s\"",
		              test_ctx, i, got, want[i]);
		free(got);
	}
	ck_assert_msg(b->n == n, "%s: %zu frames, want %zu", test_ctx, b->n, n);
}

#define EXPECT_SEEN(b, ...)                                                    \
	do {                                                                   \
		const char *const want_[] = { __VA_ARGS__ };                   \
		expect_seen((b), want_, sizeof(want_) / sizeof(want_[0]));     \
	} while (0)

/* Sends bytes that the channel reads before the next ones: a frame sent
 * in two such writes lies in two reads. */
static void feed_apart(struct harness *h, const char *data, size_t len)
{
	feed(h, data, len);
	run_pending(h->base);
}

/* Lines read together are lent where they lie, one right after the
 * other, an empty one too; nothing goes to found. */
START_TEST(test_one_read_lent)
{
	struct both b;
	struct harness *h = both_harness(&b, 0, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	feed(h, LIT("one\ntwo\n\nthree\n"));
	EXPECT_SEEN(&b, "b:one", "b:two", "b:", "b:three");
	ck_assert_ptr_eq(b.at[1], b.at[0] + 4);
	ck_assert_ptr_eq(b.at[2], b.at[1] + 4);
	ck_assert_ptr_eq(b.at[3], b.at[1] + 5);
	both_free(&b);
}
END_TEST

/* A line sent in two writes lies in two reads: found gets it, then the
 * next line, whole in the second read, is lent again. */
START_TEST(test_pieces_to_found)
{
	struct both b;
	struct harness *h = both_harness(&b, 0, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	feed_apart(h, LIT("hel"));
	ck_assert_uint_eq(b.n, 0);
	feed_apart(h, LIT("lo\nnext\n"));
	EXPECT_SEEN(&b, "f:hello", "b:next");
	both_free(&b);
}
END_TEST

/* A line longer than a read (libevent reads 4 KiB at a time) goes to
 * found in the chains it was read in, linked, not copied together into
 * one piece as the bytes hook alone would need; the short line read
 * with its end is lent. */
START_TEST(test_long_line_moved)
{
	struct both b;
	struct harness *h = both_harness(&b, 0, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	static char line[20003];
	memset(line, 'L', 20000);
	memcpy(line + 20000, "\nx\n", 3);
	feed(h, line, sizeof(line));
	ck_assert_uint_eq(b.n, 2);
	ck_assert_int_eq(b.hook[0], 'f');
	ck_assert_uint_eq(b.len[0], 20000);
	ck_assert_msg(b.pieces[0] > 1,
	              "the long line came in %zu piece(s): copied together",
	              b.pieces[0]);
	ck_assert_int_eq(b.hook[1], 'b');
	ck_assert_uint_eq(b.len[1], 1);
	both_free(&b);
}
END_TEST

/* Length-field frames: those whole in one read are lent (an empty one
 * as NULL); one whose header came alone, or with only part of its body,
 * goes to found. */
START_TEST(test_length_frames)
{
	struct both b;
	struct harness *h = both_harness(&b, 0, 0);
	struct evchat_length_field f = { 0, 2, 0, 0, 2 };
	ck_assert_int_eq(evchat_set_terminator_length(h->chat, &f), 0);
	feed(h, LIT("\0\3abc\0\0\0\2de"));
	feed_apart(h, LIT("\0\4"));
	feed_apart(h, LIT("wxyz"));
	feed(h, LIT("\0\5ab"));
	run_pending(h->base);
	feed(h, LIT("cde\0\1z"));
	EXPECT_SEEN(&b, "b:abc", "b:", "b:de", "f:wxyz", "f:abcde", "b:z");
	both_free(&b);
}
END_TEST

/* Counts, set again from either hook for each frame: a count that is
 * whole in one read is lent, one that arrived in pieces goes to found. */
static void count_three(struct evchat *chat, struct both *b)
{
	(void)b;
	ck_assert_int_eq(evchat_set_terminator_count(chat, 3), 0);
}

START_TEST(test_count_frames)
{
	struct both b;
	struct harness *h = both_harness(&b, 0, 0);
	b.act = count_three;
	ck_assert_int_eq(evchat_set_terminator_count(h->chat, 3), 0);
	feed(h, LIT("abcdef"));
	feed_apart(h, LIT("gh"));
	feed_apart(h, LIT("ijkl"));
	EXPECT_SEEN(&b, "b:abc", "b:def", "f:ghi", "b:jkl");
	both_free(&b);
}
END_TEST

/* LIMIT_SPLIT: the pieces of a frame over the limit go to found, all but
 * the last one partial; a frame within the limit, read with them, is
 * lent, and is whole. */
START_TEST(test_split_pieces)
{
	struct both b;
	struct harness *h = both_harness(&b, 0, 0);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	ck_assert_int_eq(evchat_set_frame_limit(h->chat, 4, EVCHAT_LIMIT_SPLIT),
	                 0);
	feed(h, LIT("abcdefghij\nabcd\n"));
	EXPECT_SEEN(&b, "f+:abcd", "f+:efgh", "f:ij", "b:abcd");
	both_free(&b);
}
END_TEST

/* Random frames in random writes, some read apart: every frame comes out
 * once, in order, byte for byte, from one hook or the other, and both
 * hooks had some. _i: bit 0 length fields instead of lines, bit 1 over
 * loopback TCP with the direct read and write options. */
START_TEST(test_random_mix)
{
	int length = _i & 1, tcp = (_i & 2) != 0;
	struct both b;
	struct harness *h = both_harness(&b, tcp,
	                                 tcp ? EVCHAT_OPT_DIRECT_READ |
	                                           EVCHAT_OPT_DIRECT_WRITE
	                                     : 0);
	struct evchat_length_field f = { 0, 4, 0, 0, 4 };
	if (length)
		ck_assert_int_eq(evchat_set_terminator_length(h->chat, &f), 0);
	else
		ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	ck_assert_int_eq(evchat_set_max_frame(h->chat, 0), 0);

	ev_uint32_t seed = 0x9e3779b9u + (ev_uint32_t)_i;
	struct evbuffer *wire = evbuffer_new();
	struct evbuffer *want = evbuffer_new();
	size_t want_len[400];
	size_t nframes = 400;
	for (size_t i = 0; i < nframes; i++) {
		size_t r = rnd(&seed, 100), len;
		if (r < 70)
			len = rnd(&seed, 64);
		else if (r < 90)
			len = 100 + rnd(&seed, 3000);
		else
			len = 4000 + rnd(&seed, 26000);
		want_len[i] = len;
		unsigned char *p = malloc(len + 1);
		ck_assert_ptr_nonnull(p);
		for (size_t k = 0; k < len; k++)
			p[k] = (unsigned char)('a' + rnd(&seed, 26));
		evbuffer_add(want, p, len);
		if (length) {
			unsigned char hdr[4] = { (unsigned char)(len >> 24),
				                 (unsigned char)(len >> 16),
				                 (unsigned char)(len >> 8),
				                 (unsigned char)len };
			evbuffer_add(wire, hdr, 4);
			evbuffer_add(wire, p, len);
		} else {
			p[len] = '\n';
			evbuffer_add(wire, p, len + 1);
		}
		free(p);
	}
	/* Writes of 1 byte to 64 KiB; a third of them read before the
	 * next is sent, so frames are cut between reads. */
	while (evbuffer_get_length(wire) > 0) {
		size_t n = 1 + rnd(&seed, rnd(&seed, 4) == 0 ? 65536 : 300);
		if (n > evbuffer_get_length(wire))
			n = evbuffer_get_length(wire);
		feed(h, evbuffer_pullup(wire, (ev_ssize_t)n), n);
		evbuffer_drain(wire, n);
		if (rnd(&seed, 3) == 0)
			run_tick(h->base, 1000);
	}
	long long end = now_ms() + 5000;
	while (b.n < nframes && now_ms() < end)
		run_tick(h->base, 5000);
	note("%s, %s", length ? "length fields" : "lines",
	     tcp ? "tcp, direct" : "socketpair");
	ck_assert_msg(b.n == nframes, "%s: %zu frames, want %zu", test_ctx, b.n,
	              nframes);
	for (size_t i = 0; i < nframes; i++)
		ck_assert_msg(b.len[i] == want_len[i],
		              "%s: frame %zu: %zu bytes, want %zu", test_ctx, i,
		              b.len[i], want_len[i]);
	ck_assert_uint_eq(evbuffer_get_length(b.all),
	                  evbuffer_get_length(want));
	ck_assert_msg(memcmp(evbuffer_pullup(b.all, -1),
	                     evbuffer_pullup(want, -1),
	                     evbuffer_get_length(want)) == 0,
	              "%s: the frames' bytes differ from those sent", test_ctx);
	ck_assert_msg(
	    b.nbytes > 0 && b.nfound > 0,
	    "%s: %zu frames to found_bytes, %zu to found: both should have "
	    "had some",
	    test_ctx, b.nbytes, b.nfound);
	ck_assert_uint_eq(h->rec.nevents, 0);
	evbuffer_free(wire);
	evbuffer_free(want);
	both_free(&b);
}
END_TEST

/* Either hook changes the terminator: the frames after it, read with
 * it, are framed with the new one, and still go to the hook that suits
 * how they lie. _i 0: from found_bytes, _i 1: from found. */
static void to_semicolon(struct evchat *chat, struct both *b)
{
	if (b->n == 1)
		ck_assert_int_eq(evchat_set_terminator(chat, LIT(";")), 0);
}

START_TEST(test_terminator_from_either_hook)
{
	struct both b;
	struct harness *h = both_harness(&b, 0, 0);
	b.act = to_semicolon;
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	if (_i == 0) {
		feed_apart(h, LIT("a\nb;c"));
		feed_apart(h, LIT("d;e;"));
		EXPECT_SEEN(&b, "b:a", "b:b", "f:cd", "b:e");
	} else {
		feed_apart(h, LIT("xx"));
		feed_apart(h, LIT("x\np;q"));
		feed_apart(h, LIT("r;"));
		EXPECT_SEEN(&b, "f:xxx", "b:p", "f:qr");
	}
	both_free(&b);
}
END_TEST

/* Either hook pauses input: nothing more until the resume, then the
 * rest in order. _i 0: from found_bytes, _i 1: from found. */
static void pause_first(struct evchat *chat, struct both *b)
{
	if (b->n == 1)
		ck_assert_int_eq(evchat_pause_input(chat), 0);
}

START_TEST(test_pause_from_either_hook)
{
	struct both b;
	struct harness *h = both_harness(&b, 0, 0);
	b.act = pause_first;
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	if (_i == 1)
		feed_apart(h, LIT("fi"));
	if (_i == 0)
		feed_apart(h, LIT("first\nsecond\nthird\n"));
	else
		feed_apart(h, LIT("rst\nsecond\n"));
	EXPECT_SEEN(&b, _i == 0 ? "b:first" : "f:first");
	ck_assert_int_eq(evchat_resume_input(h->chat), 0);
	run_pending(h->base);
	if (_i == 0)
		EXPECT_SEEN(&b, "b:first", "b:second", "b:third");
	else
		EXPECT_SEEN(&b, "f:first", "b:second");
	both_free(&b);
}
END_TEST

/* Either hook frees the channel, then reads its frame: still there
 * until it returns (ASan and valgrind see a use after free otherwise);
 * no frame after it is delivered. _i 0: from found_bytes, _i 1: from
 * found. */
static void free_first(struct evchat *chat, struct both *b)
{
	evchat_free(chat);
	b->h->chat = NULL;
}

START_TEST(test_free_from_either_hook)
{
	struct both b;
	struct harness *h = both_harness(&b, 0, 0);
	b.act = free_first;
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	if (_i == 0) {
		write_all(h->c.peer, LIT("first\nsecond\nthird\n"));
	} else {
		feed_apart(h, LIT("fir"));
		write_all(h->c.peer, LIT("st\nsecond\nthird\n"));
	}
	run_for(h->base, 50);
	ck_assert_ptr_null(h->chat);
	ck_assert_uint_eq(b.n, 1);
	ck_assert_int_eq(b.hook[0], _i == 0 ? 'b' : 'f');
	ck_assert_str_eq(b.seen_after_act, "first");
	both_free(&b);
}
END_TEST

/* A NULL found hook makes the call evchat_setcb_bytes() (every frame to
 * found_bytes, pieces copied together); a NULL found_bytes makes it
 * evchat_setcb(); with both NULL, frames are dropped and events still
 * come. _i picks which is NULL. */
START_TEST(test_null_hooks)
{
	struct both b;
	struct harness *h = both_harness(&b, 0, 0);
	evchat_setcb_both(h->chat, NULL, _i == 1 ? both_bytes : NULL,
	                  _i == 0 ? both_found : NULL, both_event, &b);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	feed(h, LIT("one\n"));
	feed_apart(h, LIT("tw"));
	feed_apart(h, LIT("o\n"));
	switch (_i) {
	case 0:
		EXPECT_SEEN(&b, "f:one", "f:two");
		break;
	case 1:
		EXPECT_SEEN(&b, "b:one", "b:two");
		break;
	case 2:
		ck_assert_uint_eq(b.n, 0);
		ck_assert_uint_eq(pending_len(h), 0);
		break;
	}
	conn_close_peer(&h->c);
	run_until_event(h, 2000);
	expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
	both_free(&b);
}
END_TEST

/* evchat_setcb() and evchat_setcb_bytes() after evchat_setcb_both() set
 * one found hook: _i 0, found alone (a line in one read is no longer
 * lent); _i 1, found_bytes alone (a line in pieces no longer goes to
 * found); _i 2, evchat_setcb() from inside found_bytes: the next line of
 * the same read goes to found. */
static void setcb_from_hook(struct evchat *chat, struct both *b)
{
	if (b->n == 1)
		evchat_setcb(chat, NULL, both_found, both_event, b);
}

START_TEST(test_single_setters_replace_both)
{
	struct both b;
	struct harness *h = both_harness(&b, 0, 0);
	if (_i == 0)
		evchat_setcb(h->chat, NULL, both_found, both_event, &b);
	else if (_i == 1)
		evchat_setcb_bytes(h->chat, NULL, both_bytes, both_event, &b);
	else
		b.act = setcb_from_hook;
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	feed(h, LIT("a\nb\n"));
	feed_apart(h, LIT("c"));
	feed_apart(h, LIT("d\n"));
	switch (_i) {
	case 0:
		EXPECT_SEEN(&b, "f:a", "f:b", "f:cd");
		break;
	case 1:
		EXPECT_SEEN(&b, "b:a", "b:b", "b:cd");
		break;
	case 2:
		EXPECT_SEEN(&b, "b:a", "f:b", "f:cd");
		break;
	}
	both_free(&b);
}
END_TEST

/* Collect mode: the bytes go to collect, found marks each end (with
 * NULL), found_bytes is never called. */
START_TEST(test_collect_mode)
{
	struct both b;
	struct harness *h = both_harness(&b, 0, 0);
	evchat_setcb_both(h->chat, both_collect, both_bytes, both_found,
	                  both_event, &b);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	feed(h, LIT("ab\ncd\n"));
	feed_apart(h, LIT("e"));
	feed_apart(h, LIT("f\n"));
	ck_assert_uint_eq(b.nbytes, 0);
	ck_assert_uint_eq(b.nfound, 3);
	ck_assert_uint_eq(b.collected, 6);
	expect_bytes("collected", b.all, LIT("abcdef"));
	both_free(&b);
}
END_TEST

Suite *found_both_suite(void)
{
	Suite *s = suite_create("both");
	TCase *tc = tcase_create("which hook");
	tcase_add_test(tc, test_one_read_lent);
	tcase_add_test(tc, test_pieces_to_found);
	tcase_add_test(tc, test_long_line_moved);
	tcase_add_test(tc, test_length_frames);
	tcase_add_test(tc, test_count_frames);
	tcase_add_test(tc, test_split_pieces);
	tcase_add_test(tc, test_collect_mode);
	suite_add_tcase(s, tc);
	tc = tcase_create("bytes");
	tcase_add_loop_test(tc, test_random_mix, 0, 4);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	tc = tcase_create("hooks");
	tcase_add_loop_test(tc, test_terminator_from_either_hook, 0, 2);
	tcase_add_loop_test(tc, test_pause_from_either_hook, 0, 2);
	tcase_add_loop_test(tc, test_free_from_either_hook, 0, 2);
	tcase_add_loop_test(tc, test_null_hooks, 0, 3);
	tcase_add_loop_test(tc, test_single_setters_replace_both, 0, 3);
	suite_add_tcase(s, tc);
	return s;
}
