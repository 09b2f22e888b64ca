/*
 * EVCHAT_OPT_DIRECT_READ: past libevent's 4 KiB per read, the channel
 * reads the socket itself. The framing suites run with it too (see
 * tests/variants.sh); these tests check what only it can get wrong: long
 * frames read in one piece arrive whole and in order, and a socket error
 * met by its own read is reported as an error, not lost (the socket
 * reports an error once; after it, reads see only an end of file).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "helpers.h"
#include "suites.h"

#define DIRECT (EVCHAT_OPT_DIRECT_READ | EVCHAT_OPT_DIRECT_WRITE)

static struct harness *direct_harness(int tcp)
{
	return harness_new_opts(event_base_new(), 0, tcp, DIRECT);
}

/* _i: socketpair, TCP. Lines of 20,000 bytes sent in one write: every
 * one arrives whole and in order, whether it came in one read or was cut
 * by one. */
START_TEST(test_long_lines_whole)
{
	struct harness *h = direct_harness(_i);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	enum { NLINES = 40, LEN = 20000 };
	char *input = malloc(NLINES * (LEN + 1));
	ck_assert_ptr_nonnull(input);
	struct span want[NLINES];
	ev_uint32_t seed = 7;
	for (size_t i = 0; i < NLINES; i++) {
		char *line = input + i * (LEN + 1);
		for (size_t j = 0; j < LEN; j++)
			line[j] = (char)('a' + rnd(&seed, 26));
		line[LEN] = '\n';
		want[i].p = line;
		want[i].len = LEN;
	}
	feed(h, input, NLINES * (LEN + 1));
	run_until_frames(h, NLINES, 5000);
	expect_frames(&h->rec, want, NLINES);
	ck_assert_uint_eq(h->rec.nevents, 0);
	free(input);
	harness_free(h);
}
END_TEST

/* _i: (without, with the direct options) x (exactly one libevent read
 * before the reset, more). The peer sends, then resets the connection:
 * the channel reports an error (ECONNRESET) once, not an end of file,
 * and delivers no frame twice. With exactly 4 KiB sent, libevent's read
 * takes it all and the channel's own read meets the reset. */
START_TEST(test_reset_is_an_error)
{
	int direct = _i % 2, more = _i / 2;
	note("%s, %s", direct ? "direct" : "plain",
	     more ? "12 KiB" : "4 KiB");
	struct harness *h = direct ? direct_harness(1) : harness_new(0, 1);
	ck_assert_int_eq(evchat_set_terminator(h->chat, LIT("\n")), 0);
	static char block[3 * 4096];
	memset(block, 'r', sizeof(block));
	write_all(h->c.peer, LIT("first\n"));
	write_all(h->c.peer, block, more ? sizeof(block) : 4096 - 6);
	/* SO_LINGER 0: close() sends RST with the data still unread. */
	struct linger lin = { 1, 0 };
	ck_assert_int_eq(setsockopt(h->c.peer, SOL_SOCKET, SO_LINGER, &lin,
	                            sizeof(lin)), 0);
	conn_close_peer(&h->c);
	run_until_event(h, 5000);
	run_for(h->base, 50);
	ck_assert_uint_le(h->rec.nframes, 1);
	if (h->rec.nframes == 1)
		EXPECT_FRAMES(&h->rec, "first");
	ck_assert_uint_eq(h->rec.nevents, 1);
	ck_assert_msg((h->rec.events[0] & (EVCHAT_EVENT_ERROR | EVCHAT_EVENT_EOF)) ==
	                  EVCHAT_EVENT_ERROR,
	              "%s: event 0x%x, want an error without EOF", test_ctx,
	              (unsigned)h->rec.events[0]);
	harness_free(h);
}
END_TEST

Suite *direct_suite(void)
{
	Suite *s = suite_create("direct");
	TCase *tc = tcase_create("read");
	tcase_add_loop_test(tc, test_long_lines_whole, 0, 2);
	tcase_add_loop_test(tc, test_reset_is_an_error, 0, 4);
	suite_add_tcase(s, tc);
	return s;
}
