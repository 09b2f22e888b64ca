/*
 * Frames as bytes: evchat_setcb_bytes(). The frames themselves are
 * checked by the framing suites, run a second time with
 * EVCHAT_TEST_FOUND_BYTES set (see tests/variants.sh); these tests
 * check what only this hook promises: a frame read in one piece is lent
 * where it lies, and the lent bytes stay valid until the hook returns
 * whatever it does meanwhile.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "helpers.h"
#include "suites.h"

/* What a bytes hook saw; `act` runs after each frame is recorded. */
struct lent {
	struct harness *h;
	const unsigned char *at[16]; /* where each frame was lent */
	size_t len[16];
	char text[16][32];
	size_t n;
	size_t nbuffer; /* frames seen by an evbuffer hook */
	int user_mode;  /* for the test's own act */
	void (*act)(struct evchat *chat, struct lent *l,
	            const unsigned char *frame, size_t len);
};

static void lent_found(struct evchat *chat, const unsigned char *frame,
                       size_t len, void *arg)
{
	struct lent *l = arg;
	ck_assert_uint_lt(l->n, 16);
	l->at[l->n] = frame;
	l->len[l->n] = len;
	/* Long frames are checked by the test's act, not kept. */
	size_t keep = len < sizeof(l->text[0]) ? len : 0;
	if (keep > 0)
		memcpy(l->text[l->n], frame, keep);
	l->text[l->n][keep] = '\0';
	l->n++;
	if (l->act != NULL)
		l->act(chat, l, frame, len);
}

static void buffer_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct lent *l = arg;
	size_t len = evbuffer_get_length(frame);
	ck_assert_uint_lt(l->n, 16);
	ck_assert_uint_lt(len, sizeof(l->text[0]));
	evbuffer_remove(frame, l->text[l->n], len);
	l->text[l->n][len] = '\0';
	l->len[l->n] = len;
	l->at[l->n] = NULL;
	l->n++;
	l->nbuffer++;
	/* Back to bytes for the frame after this one. */
	evchat_setcb_bytes(chat, NULL, lent_found, NULL, l);
}

static struct harness *lent_harness(struct lent *l)
{
	memset(l, 0, sizeof(*l));
	l->h = harness_new(0, 0);
	evchat_setcb_bytes(l->h->chat, NULL, lent_found, NULL, l);
	return l->h;
}

static void expect_texts(const struct lent *l, const char *const *want,
                         size_t n)
{
	ck_assert_msg(l->n == n, "%zu frames, want %zu", l->n, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(strcmp(l->text[i], want[i]) == 0,
		              "frame %zu: '%s', want '%s'", i, l->text[i],
		              want[i]);
}

#define EXPECT_TEXTS(l, ...)                                                   \
	do {                                                                   \
		const char *const want_[] = { __VA_ARGS__ };                   \
		expect_texts((l), want_, sizeof(want_) / sizeof(want_[0]));    \
	} while (0)

/* A RESP request: a line, then a bulk string of a count plus "\r\n". */
static void resp_switch(struct evchat *chat, struct lent *l,
                        const unsigned char *frame, size_t len)
{
	(void)l;
	if (len > 0 && frame[0] == '$')
		ck_assert_int_eq(
		    evchat_set_terminator_count(
		        chat, strtoull((const char *)frame + 1, NULL, 10) + 2),
		    0);
	else
		ck_assert_int_eq(evchat_set_terminator_line(chat,
		                                            EVCHAT_EOL_CRLF),
		                 0);
}

/* Frames read together are lent in place: each one starts where the
 * previous one and its terminator ended, in the same memory, so nothing
 * was copied. Lines and counts alike, switched from the hook. */
START_TEST(test_lent_in_place)
{
	struct lent l;
	struct harness *h = lent_harness(&l);
	l.act = resp_switch;
	ck_assert_int_eq(evchat_set_terminator_line(h->chat, EVCHAT_EOL_CRLF),
	                 0);
	feed(h, LIT("*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n"));
	EXPECT_TEXTS(&l, "*2", "$4", "ECHO\r\n", "$2", "hi\r\n");
	size_t wire[] = { 4, 4, 6, 4, 4 };
	for (size_t i = 1; i < l.n; i++)
		ck_assert_msg(l.at[i] == l.at[i - 1] + wire[i - 1],
		              "frame %zu at %p, not right after frame %zu (%p)",
		              i, (const void *)l.at[i], i - 1,
		              (const void *)l.at[i - 1]);
	harness_free(h);
}
END_TEST

/* A count set by the hook and reached inside the same run, after which
 * the hook sets no terminator: none applies (asynchat's 0), so the rest
 * of the read is gathered for the frame to come, not ended as an empty
 * frame of a count of 0. */
static void count_after_dollar(struct evchat *chat, struct lent *l,
                               const unsigned char *frame, size_t len)
{
	(void)l;
	if (len > 0 && frame[0] == '$')
		ck_assert_int_eq(evchat_set_terminator_count(chat, 3), 0);
}

START_TEST(test_count_then_none_in_run)
{
	struct lent l;
	struct harness *h = lent_harness(&l);
	l.act = count_after_dollar;
	ck_assert_int_eq(evchat_set_terminator_line(h->chat, EVCHAT_EOL_CRLF),
	                 0);
	feed(h, LIT("$3\r\nabcdef"));
	EXPECT_TEXTS(&l, "$3", "abc");
	ck_assert_ptr_eq(l.at[1], l.at[0] + 4); /* the same run */
	ck_assert_int_eq(evchat_get_terminator(h->chat, NULL, NULL, NULL),
	                 EVCHAT_TERM_NONE);
	ck_assert_uint_eq(pending_len(h), 3);
	harness_free(h);
}
END_TEST

/* Length-field frames read together are lent in place too: each body
 * starts right after the last one and the next header, an empty one
 * too. */
START_TEST(test_length_lent_in_place)
{
	struct lent l;
	struct harness *h = lent_harness(&l);
	struct evchat_length_field f = { 0, 2, 0, 0, 2 };
	ck_assert_int_eq(evchat_set_terminator_length(h->chat, &f), 0);
	feed(h, LIT("\0\3abc\0\0\0\2de"));
	EXPECT_TEXTS(&l, "abc", "", "de");
	ck_assert_ptr_nonnull(l.at[0]);
	ck_assert_ptr_eq(l.at[1], l.at[0] + 3 + 2);
	ck_assert_ptr_eq(l.at[2], l.at[0] + 3 + 2 + 2);
	harness_free(h);
}
END_TEST

/* An empty frame is lent as a pointer (never NULL: memcpy(dst, NULL, 0)
 * is undefined) and 0, whether lent in place (a line) or not (a count of
 * 0, delivered from the event loop); a frame that arrived in pieces comes
 * contiguous all the same. */
START_TEST(test_lent_empty_and_pieces)
{
	struct lent l;
	struct harness *h = lent_harness(&l);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	feed(h, LIT("\n"));
	static const char line[] = "split across many reads\n";
	for (size_t i = 0; i < sizeof(line) - 1; i++)
		feed(h, line + i, 1);
	ck_assert_int_eq(evchat_set_terminator_count(h->chat, 0), 0);
	run_pending(h->base);
	EXPECT_TEXTS(&l, "", "split across many reads", "");
	ck_assert_ptr_nonnull(l.at[0]);
	ck_assert_uint_eq(l.len[0], 0);
	ck_assert_ptr_nonnull(l.at[2]);
	ck_assert_uint_eq(l.len[2], 0);
	harness_free(h);
}
END_TEST

/* The hook discards the buffered input, then reads its frame again: the
 * lent bytes stay valid (ASan and valgrind see a use after free
 * otherwise), and the frames read with it are gone. */
static void discard_then_read(struct evchat *chat, struct lent *l,
                              const unsigned char *frame, size_t len)
{
	if (l->n != 1)
		return;
	evchat_discard_buffers(chat);
	ck_assert_int_eq(memcmp(frame, "first", len), 0);
	ck_assert_uint_eq(evbuffer_get_length(evchat_get_pending(chat)), 0);
}

START_TEST(test_discard_keeps_lent_bytes)
{
	struct lent l;
	struct harness *h = lent_harness(&l);
	l.act = discard_then_read;
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	feed(h, LIT("first\nsecond\nthird\npartial"));
	run_pending(h->base);
	EXPECT_TEXTS(&l, "first");
	feed(h, LIT("after\n"));
	EXPECT_TEXTS(&l, "first", "after");
	harness_free(h);
}
END_TEST

/* The same for a frame that arrived in pieces, which is gathered in the
 * pending buffer before it is lent: the hook discards the input (_i 0)
 * or drains the pending buffer (_i 1), then reads its frame. */
static void drop_then_read_gathered(struct evchat *chat, struct lent *l,
                                    const unsigned char *frame, size_t len)
{
	if (l->user_mode == 0)
		evchat_discard_buffers(chat);
	else
		evbuffer_drain(evchat_get_pending(chat), (size_t)-1);
	ck_assert_uint_eq(len, 3100);
	for (size_t i = 0; i < len; i++)
		ck_assert_int_eq(frame[i], i < 3000 ? 'g' : 'h');
}

START_TEST(test_drop_keeps_gathered_bytes)
{
	struct lent l;
	struct harness *h = lent_harness(&l);
	l.act = drop_then_read_gathered;
	l.user_mode = _i;
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	static char part[3000];
	memset(part, 'g', sizeof(part));
	feed(h, part, sizeof(part));
	run_pending(h->base);
	memset(part, 'h', 100);
	part[100] = '\n';
	feed(h, part, 101);
	for (int i = 0; i < 200 && l.n == 0; i++)
		run_tick(h->base, 10000);
	ck_assert_uint_eq(l.n, 1);
	harness_free(h);
}
END_TEST

/* The hook frees the channel, then reads its frame: still valid until
 * it returns; no frame after it is delivered. */
static void free_then_read(struct evchat *chat, struct lent *l,
                           const unsigned char *frame, size_t len)
{
	evchat_free(chat);
	l->h->chat = NULL;
	ck_assert_int_eq(memcmp(frame, "first", len), 0);
}

START_TEST(test_free_keeps_lent_bytes)
{
	struct lent l;
	struct harness *h = lent_harness(&l);
	l.act = free_then_read;
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	write_all(h->c.peer, LIT("first\nsecond\n"));
	run_for(h->base, 50);
	ck_assert_ptr_null(h->chat);
	EXPECT_TEXTS(&l, "first");
	harness_free(h);
}
END_TEST

/* One evchat_setcb() call sets the hooks: from inside the bytes hook,
 * evchat_setcb() gives the next frame to an evbuffer hook, which goes
 * back to bytes; frames of the same read follow the switches in order. */
static void to_buffer(struct evchat *chat, struct lent *l,
                      const unsigned char *frame, size_t len)
{
	(void)frame;
	(void)len;
	if (l->n == 1)
		evchat_setcb(chat, NULL, buffer_found, NULL, l);
}

START_TEST(test_switch_between_hooks)
{
	struct lent l;
	struct harness *h = lent_harness(&l);
	l.act = to_buffer;
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT(";")), 0);
	feed(h, LIT("a;b;c;d;"));
	EXPECT_TEXTS(&l, "a", "b", "c", "d");
	ck_assert_uint_eq(l.nbuffer, 1);
	ck_assert_ptr_null(l.at[1]);
	ck_assert_ptr_nonnull(l.at[2]);
	harness_free(h);
}
END_TEST

/* Frames read together are lent one after the other from the same
 * chain; a hook's change is seen by the very next frame of the run: a
 * lower limit, a pause (nothing more until the resume), a new terminator.
 * user_mode picks the change. */
static void change_mid_run(struct evchat *chat, struct lent *l,
                           const unsigned char *frame, size_t len)
{
	(void)frame;
	(void)len;
	if (l->n != 1)
		return;
	switch (l->user_mode) {
	case 0:
		ck_assert_int_eq(evchat_set_frame_limit(chat, 2,
		                                        EVCHAT_LIMIT_DISCARD),
		                 0);
		break;
	case 1:
		ck_assert_int_eq(evchat_pause_input(chat), 0);
		break;
	case 2:
		ck_assert_int_eq(evchat_set_terminator(chat, LIT("b")), 0);
		break;
	}
}

START_TEST(test_run_sees_hook_changes)
{
	struct lent l;
	struct harness *h = lent_harness(&l);
	l.act = change_mid_run;
	l.user_mode = _i;
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT(";")), 0);
	feed(h, LIT("a;bbbb;c;"));
	switch (_i) {
	case 0: /* "bbbb" is over the new limit: skipped */
		EXPECT_TEXTS(&l, "a", "c");
		ck_assert_uint_eq(evchat_get_discarded(h->chat), 4);
		break;
	case 1:
		EXPECT_TEXTS(&l, "a");
		ck_assert_int_eq(evchat_resume_input(h->chat), 0);
		run_pending(h->base);
		EXPECT_TEXTS(&l, "a", "bbbb", "c");
		break;
	case 2: /* framed with "b" from the byte after "a;" */
		EXPECT_TEXTS(&l, "a", "", "", "", "");
		ck_assert_uint_eq(evbuffer_get_length(
		                      evchat_get_pending(h->chat)),
		                  3);
		break;
	}
	harness_free(h);
}
END_TEST

Suite *found_bytes_suite(void)
{
	Suite *s = suite_create("bytes");
	TCase *tc = tcase_create("lent");
	tcase_add_test(tc, test_lent_in_place);
	tcase_add_test(tc, test_length_lent_in_place);
	tcase_add_test(tc, test_count_then_none_in_run);
	tcase_add_test(tc, test_lent_empty_and_pieces);
	tcase_add_test(tc, test_discard_keeps_lent_bytes);
	tcase_add_loop_test(tc, test_drop_keeps_gathered_bytes, 0, 2);
	tcase_add_test(tc, test_free_keeps_lent_bytes);
	tcase_add_test(tc, test_switch_between_hooks);
	tcase_add_loop_test(tc, test_run_sees_hook_changes, 0, 3);
	suite_add_tcase(s, tc);
	return s;
}
