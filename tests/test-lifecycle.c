/*
 * Lifecycle: events reported once each, answering after EOF, AUTOFREE,
 * evchat_free() from inside every hook (run under ASan or valgrind, these
 * also prove the memory is handled right), and the version.
 */
#include "config.h" /* PACKAGE_VERSION, from configure.ac */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"
#include "suites.h"

/* The channel is gone already (freed in a hook, or by the test itself,
 * which the harness cannot see): frees the rest of the harness. */
static void free_rest(struct harness *h)
{
	h->chat = NULL;
	harness_free(h);
}

static size_t count_events(const struct recorder *rec, short flag)
{
	size_t n = 0;
	for (size_t i = 0; i < rec->nevents; i++)
		if (rec->events[i] & flag)
			n++;
	return n;
}

/* --- free from inside each hook ------------------------------------------ */

static int hook_calls;

static void free_in_found(struct evchat *chat, struct evbuffer *frame,
                          void *arg)
{
	hook_calls++;
	evchat_free(chat);
	/* Still inside the hook: the channel refuses work instead of
	 * touching freed memory. */
	ck_assert_int_eq(evchat_push(chat, "x", 1), -1);
	ck_assert_int_eq(errno, EPIPE);
}

START_TEST(free_inside_found_stops_delivery)
{
	struct harness *h = harness_new(0, 0);
	evchat_setcb(h->chat, NULL, free_in_found, NULL, NULL);
	evchat_set_terminator(h->chat, "\n", 1);
	hook_calls = 0;
	/* Three frames in one read: the free after the first must stop the
	 * other two. */
	write_all(h->c.peer, "a\nb\nc\n", 6);
	run_pending(h->base);
	ck_assert_int_eq(hook_calls, 1);
	/* The bufferevent was freed too: the peer sees the socket close. */
	struct evbuffer *got = evbuffer_new();
	read_peer_to_eof(&h->c, got, 2000);
	evbuffer_free(got);
	free_rest(h);
}
END_TEST

static void free_in_collect(struct evchat *chat, struct evbuffer *data,
                            void *arg)
{
	hook_calls++;
	evchat_free(chat);
}

static void count_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	hook_calls += 100;
}

START_TEST(free_inside_collect)
{
	struct harness *h = harness_new(0, 0);
	evchat_setcb(h->chat, free_in_collect, count_found, NULL, NULL);
	evchat_set_terminator(h->chat, "\n", 1);
	hook_calls = 0;
	write_all(h->c.peer, "abc\ndef\n", 8);
	run_pending(h->base);
	ck_assert_int_eq(hook_calls, 1); /* no found, no second collect */
	free_rest(h);
}
END_TEST

static void free_in_event(struct evchat *chat, short events, void *arg)
{
	short *seen = arg;
	*seen |= events;
	hook_calls++;
	evchat_free(chat);
}

START_TEST(free_inside_event_on_eof)
{
	struct harness *h = harness_new(0, 0);
	short seen = 0;
	evchat_setcb(h->chat, NULL, NULL, free_in_event, &seen);
	hook_calls = 0;
	write_all(h->c.peer, "partial", 7);
	conn_close_peer(&h->c);
	run_pending(h->base);
	ck_assert_int_eq(hook_calls, 1);
	ck_assert(seen & EVCHAT_EVENT_EOF);
	free_rest(h);
}
END_TEST

START_TEST(free_inside_event_on_closed)
{
	struct harness *h = harness_new(0, 0);
	short seen = 0;
	evchat_setcb(h->chat, NULL, NULL, free_in_event, &seen);
	hook_calls = 0;
	ck_assert_int_eq(evchat_push(h->chat, "bye\n", 4), 0);
	ck_assert_int_eq(evchat_close_when_done(h->chat), 0);
	ck_assert_int_eq(hook_calls, 0); /* never from inside the call */
	struct evbuffer *got = evbuffer_new();
	read_peer_to_eof(&h->c, got, 2000);
	ck_assert_uint_eq(evbuffer_get_length(got), 4);
	ck_assert_int_eq(hook_calls, 1);
	ck_assert(seen & EVCHAT_EVENT_CLOSED);
	evbuffer_free(got);
	free_rest(h);
}
END_TEST

START_TEST(free_inside_event_on_frame_too_long)
{
	struct harness *h = harness_new(0, 0);
	short seen = 0;
	evchat_setcb(h->chat, NULL, NULL, free_in_event, &seen);
	evchat_set_terminator(h->chat, "\n", 1);
	evchat_set_max_frame(h->chat, 4);
	hook_calls = 0;
	write_all(h->c.peer, "12345\n", 6);
	run_pending(h->base);
	ck_assert_int_eq(hook_calls, 1);
	ck_assert(seen & EVCHAT_EVENT_FRAME_TOO_LONG);
	free_rest(h);
}
END_TEST

static int releases;

static void count_release(void *arg)
{
	releases++;
}

static int free_in_more(struct evchat *chat, struct evbuffer *out, size_t want,
                        void *arg)
{
	hook_calls++;
	evbuffer_add(out, "data", 4);
	evchat_free(chat);
	return 4;
}

START_TEST(free_inside_producer)
{
	struct harness *h = harness_new(0, 0);
	hook_calls = releases = 0;
	ck_assert_int_eq(evchat_push_producer(h->chat, free_in_more,
	                                      count_release, NULL),
	                 0);
	/* A second producer behind it is released too, once. */
	ck_assert_int_eq(evchat_push_producer(h->chat, free_in_more,
	                                      count_release, NULL),
	                 0);
	run_pending(h->base);
	ck_assert_int_eq(hook_calls, 1);
	ck_assert_int_eq(releases, 2);
	free_rest(h);
}
END_TEST

START_TEST(free_with_queued_producer_releases_once)
{
	struct harness *h = harness_new(0, 0);
	hook_calls = releases = 0;
	ck_assert_int_eq(evchat_push_producer(h->chat, free_in_more,
	                                      count_release, NULL),
	                 0);
	/* Freed before the loop ever asked the producer. */
	evchat_free(h->chat);
	ck_assert_int_eq(releases, 1);
	ck_assert_int_eq(hook_calls, 0);
	run_pending(h->base);
	ck_assert_int_eq(hook_calls, 0);
	free_rest(h);
}
END_TEST

/* --- events and EOF --------------------------------------------------- */

static void answer_on_eof(struct evchat *chat, short events, void *arg)
{
	struct recorder *rec = arg;
	recorder_event_cb(chat, events, arg);
	if (events & EVCHAT_EVENT_EOF) {
		char reply[64];
		int n = snprintf(reply, sizeof(reply), "got %zu frames\n",
		                 rec->nframes);
		ck_assert_int_eq(evchat_push(chat, reply, (size_t)n), 0);
		ck_assert_int_eq(evchat_close_when_done(chat), 0);
	}
	if (events & EVCHAT_EVENT_CLOSED)
		evchat_free(chat);
}

START_TEST(answer_after_peer_eof)
{
	/* asynchat drops what a server pushes after the client's EOF; a
	 * half-closing client (nc -N, HTTP/1.0 tools) must get its answer. */
	struct harness *h = harness_new(0, 1);
	evchat_setcb(h->chat, NULL, recorder_found_cb, answer_on_eof, &h->rec);
	evchat_set_terminator(h->chat, "\r\n", 2);
	write_all(h->c.peer, "one\r\ntwo\r\n", 10);
	ck_assert_int_eq(shutdown(h->c.peer, SHUT_WR), 0);
	struct evbuffer *got = evbuffer_new();
	read_peer_to_eof(&h->c, got, 3000);
	ck_assert_uint_eq(h->rec.nframes, 2);
	const char want[] = "got 2 frames\n";
	ck_assert_uint_eq(evbuffer_get_length(got), strlen(want));
	ck_assert_mem_eq(evbuffer_pullup(got, -1), want, strlen(want));
	/* EOF once, then CLOSED once. */
	ck_assert_uint_eq(count_events(&h->rec, EVCHAT_EVENT_EOF), 1);
	ck_assert_uint_eq(count_events(&h->rec, EVCHAT_EVENT_CLOSED), 1);
	ck_assert_uint_eq(h->rec.nevents, 2);
	evbuffer_free(got);
	free_rest(h); /* the channel: freed by the hook on CLOSED */
}
END_TEST

START_TEST(eof_reported_once_even_if_channel_lives_on)
{
	struct harness *h = harness_new(0, 0);
	conn_close_peer(&h->c);
	run_for(h->base, 200);
	expect_one_event(&h->rec, EVCHAT_EVENT_EOF);
	/* Pushing after EOF is allowed; the write then fails on a closed
	 * socket: that is a new cause, an error, reported once. */
	ck_assert_int_eq(evchat_push(h->chat, "late\n", 5), 0);
	run_for(h->base, 200);
	ck_assert_uint_eq(count_events(&h->rec, EVCHAT_EVENT_EOF), 1);
	ck_assert_uint_le(count_events(&h->rec, EVCHAT_EVENT_ERROR), 1);
	harness_free(h);
}
END_TEST

START_TEST(error_reported_once_and_push_then_fails)
{
	struct harness *h = harness_new(0, 1);
	/* A reset from the peer: SO_LINGER 0 makes close() send RST. */
	struct linger lin = { 1, 0 };
	ck_assert_int_eq(setsockopt(h->c.peer, SOL_SOCKET, SO_LINGER, &lin,
	                            sizeof(lin)),
	                 0);
	write_all(h->c.peer, "x", 1);
	conn_close_peer(&h->c);
	/* Keep writing until the reset is noticed. */
	static char block[65536];
	for (int i = 0;
	     i < 20 && count_events(&h->rec, EVCHAT_EVENT_ERROR) == 0; i++) {
		if (evchat_push(h->chat, block, sizeof(block)) < 0)
			break;
		run_for(h->base, 20);
	}
	ck_assert_uint_eq(count_events(&h->rec, EVCHAT_EVENT_ERROR), 1);
	ck_assert_int_eq(evchat_push(h->chat, "x", 1), -1);
	ck_assert_int_eq(errno, EPIPE);
	run_for(h->base, 50);
	ck_assert_uint_eq(count_events(&h->rec, EVCHAT_EVENT_ERROR), 1);
	harness_free(h);
}
END_TEST

/* --- AUTOFREE ------------------------------------------------------- */

static void echo_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	evchat_push_buffer(chat, frame);
	evchat_push(chat, "\n", 1);
}

START_TEST(autofree_flushes_then_frees_after_eof)
{
	struct event_base *base = event_base_new();
	struct conn c;
	ck_assert_int_eq(conn_tcp(&c, base), 0);
	struct evchat *chat = evchat_new(c.bev, EVCHAT_OPT_AUTOFREE);
	ck_assert_ptr_nonnull(chat);
	releases = 0;
	evchat_setcb(chat, NULL, echo_found, NULL, NULL);
	evchat_set_terminator(chat, "\n", 1);
	write_all(c.peer, "ping\npong\n", 10);
	ck_assert_int_eq(shutdown(c.peer, SHUT_WR), 0);
	struct evbuffer *got = evbuffer_new();
	/* EOF on the peer side means the channel freed its bufferevent,
	 * which closed the socket; leak checkers see the rest. */
	read_peer_to_eof(&c, got, 3000);
	ck_assert_uint_eq(evbuffer_get_length(got), 10);
	ck_assert_mem_eq(evbuffer_pullup(got, -1), "ping\npong\n", 10);
	evbuffer_free(got);
	conn_close_peer(&c);
	event_base_free(base);
}
END_TEST

/* --- the release hook ------------------------------------------------- */

/* The program's state for a connection, freed by the release hook. */
struct conn_state {
	int releases;
	int in_hook; /* a hook of the channel is running */
	int freed_in_hook;
};

static void release_state(void *arg)
{
	struct conn_state *st = arg;
	/* Never from inside a hook of the channel: it is gone by now. */
	ck_assert_int_eq(st->in_hook, 0);
	st->releases++;
}

static void free_in_found_then_note(struct evchat *chat, struct evbuffer *frame,
                                    void *arg)
{
	struct conn_state *st = arg;
	(void)frame;
	st->in_hook = 1;
	evchat_free(chat);
	/* Still the program's: the release waits for the hook to end. */
	ck_assert_int_eq(st->releases, 0);
	st->freed_in_hook = 1;
	st->in_hook = 0;
}

/* _i: freed from outside, from inside found, or by AUTOFREE after the
 * peer's EOF and the close. The release hook runs once, with the hooks'
 * arg as last set, after the hook that freed the channel returned. */
START_TEST(release_runs_once_when_gone)
{
	static const char *const how[] = { "evchat_free() from outside",
		                           "evchat_free() in found",
		                           "EVCHAT_OPT_AUTOFREE" };
	note("%s", how[_i]);
	struct event_base *base = event_base_new();
	struct conn c;
	ck_assert_int_eq(conn_socketpair(&c, base), 0);
	struct evchat *chat = evchat_new(c.bev,
	                                 _i == 2 ? EVCHAT_OPT_AUTOFREE : 0);
	ck_assert_ptr_nonnull(chat);
	struct conn_state first = { 0 }, st = { 0 };
	evchat_setcb(chat, NULL, NULL, NULL, &first);
	ck_assert_int_eq(evchat_set_release_cb(chat, release_state), 0);
	/* The arg set last is the one released. */
	evchat_setcb(chat, NULL, _i == 1 ? free_in_found_then_note : NULL, NULL,
	             &st);
	ASSERT_FAILS(evchat_set_release_cb(NULL, release_state), EINVAL);
	ck_assert_int_eq(evchat_set_terminator(chat, "\n", 1), 0);
	if (_i == 0) {
		evchat_free(chat);
	} else if (_i == 1) {
		write_all(c.peer, "a\n", 2);
		run_pending(base);
		ck_assert_int_eq(st.freed_in_hook, 1);
	} else {
		ck_assert_int_eq(shutdown(c.peer, SHUT_WR), 0);
		struct evbuffer *got = evbuffer_new();
		read_peer_to_eof(&c, got, 3000);
		evbuffer_free(got);
	}
	ck_assert_int_eq(st.releases, 1);
	ck_assert_int_eq(first.releases, 0);
	conn_close_peer(&c);
	event_base_free(base);
}
END_TEST

/* NULL removes the hook. */
START_TEST(release_removed)
{
	struct event_base *base = event_base_new();
	struct conn c;
	ck_assert_int_eq(conn_socketpair(&c, base), 0);
	struct evchat *chat = evchat_new(c.bev, 0);
	ck_assert_ptr_nonnull(chat);
	struct conn_state st = { 0 };
	evchat_setcb(chat, NULL, NULL, NULL, &st);
	ck_assert_int_eq(evchat_set_release_cb(chat, release_state), 0);
	ck_assert_int_eq(evchat_set_release_cb(chat, NULL), 0);
	evchat_free(chat);
	ck_assert_int_eq(st.releases, 0);
	conn_close_peer(&c);
	event_base_free(base);
}
END_TEST

/* --- creation -------------------------------------------------------- */

START_TEST(new_rejects_bad_arguments)
{
	errno = 0;
	ck_assert_ptr_null(evchat_new(NULL, 0));
	ck_assert_int_eq(errno, EINVAL);

	struct event_base *base = event_base_new();
	struct conn c;
	ck_assert_int_eq(conn_socketpair(&c, base), 0);
	errno = 0;
	/* The bufferevent is taken even on failure (a leak checker would
	 * flag it otherwise). */
	ck_assert_ptr_null(evchat_new(c.bev, 0x8000u));
	ck_assert_int_eq(errno, EINVAL);
	conn_close_peer(&c);
	event_base_free(base);

	evchat_free(NULL); /* harmless */
	evchat_resume(NULL);
	evchat_discard_buffers(NULL);
	ck_assert_ptr_null(evchat_get_bufferevent(NULL));
	ck_assert_ptr_null(evchat_get_pending(NULL));
	ck_assert_uint_eq(evchat_get_pending_length(NULL), 0);
	ck_assert_int_eq(evchat_get_terminator(NULL, NULL, NULL, NULL),
	                 EVCHAT_TERM_NONE);
}
END_TEST

START_TEST(new_channel_starts_with_no_terminator)
{
	struct harness *h = harness_new(0, 0);
	const void *t = (const void *)1;
	size_t len = 99;
	ev_uint64_t rem = 99;
	ck_assert_int_eq(evchat_get_terminator(h->chat, &t, &len, &rem),
	                 EVCHAT_TERM_NONE);
	ck_assert_ptr_null(t);
	ck_assert_uint_eq(len, 0);
	ck_assert_uint_eq(rem, 0);
	ck_assert_ptr_eq(evchat_get_bufferevent(h->chat), h->c.bev);
	harness_free(h);
}
END_TEST

/* The library runs as the version its header and configure.ac name, and
 * the header's parts, string and number say the same thing. */
START_TEST(version_is_the_headers)
{
	ck_assert_str_eq(evchat_version(), EVCHAT_VERSION_STRING);
	ck_assert_str_eq(evchat_version(), PACKAGE_VERSION);
	char parts[40];
	snprintf(parts, sizeof parts, "%d.%d.%d", EVCHAT_VERSION_MAJOR,
	         EVCHAT_VERSION_MINOR, EVCHAT_VERSION_MICRO);
	ck_assert_str_eq(parts, evchat_version());
	unsigned major, minor, micro;
	ck_assert_int_eq(sscanf(evchat_version(), "%u.%u.%u", &major, &minor,
	                        &micro),
	                 3);
	ck_assert(major < 256 && minor < 256 && micro < 256);
	ck_assert_uint_eq(evchat_version_number(),
	                  major << 16 | minor << 8 | micro);
	ck_assert_uint_eq(evchat_version_number(), EVCHAT_VERSION_NUMBER);
}
END_TEST

Suite *lifecycle_suite(void)
{
	Suite *s = suite_create("lifecycle");
	TCase *tc = tcase_create("free-in-hooks");
	tcase_add_test(tc, free_inside_found_stops_delivery);
	tcase_add_test(tc, free_inside_collect);
	tcase_add_test(tc, free_inside_event_on_eof);
	tcase_add_test(tc, free_inside_event_on_closed);
	tcase_add_test(tc, free_inside_event_on_frame_too_long);
	tcase_add_test(tc, free_inside_producer);
	tcase_add_test(tc, free_with_queued_producer_releases_once);
	suite_add_tcase(s, tc);

	tc = tcase_create("events");
	tcase_add_test(tc, answer_after_peer_eof);
	tcase_add_test(tc, eof_reported_once_even_if_channel_lives_on);
	tcase_add_test(tc, error_reported_once_and_push_then_fails);
	tcase_add_test(tc, autofree_flushes_then_frees_after_eof);
	tcase_add_loop_test(tc, release_runs_once_when_gone, 0, 3);
	tcase_add_test(tc, release_removed);
	tcase_add_test(tc, new_rejects_bad_arguments);
	tcase_add_test(tc, new_channel_starts_with_no_terminator);
	suite_add_tcase(s, tc);

	tc = tcase_create("version");
	tcase_add_test(tc, version_is_the_headers);
	suite_add_tcase(s, tc);
	return s;
}
