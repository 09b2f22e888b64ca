/*
 * The core of the channel over every kind of bufferevent: TCP, a pair, a
 * filter that holds bytes back, and TLS (on a socket, as a filter over
 * one, and over a pair).
 * Each test is a loop test whose index is the kind (tests/transport.h), so
 * a failure names the kind both in Check's output and in test_ctx.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#ifdef EVCHAT_TEST_TLS
#include <event2/bufferevent_ssl.h>
#endif

#include "helpers.h"
#include "suites.h"
#include "transport.h"

/* ---- fixtures ------------------------------------------------------------ */

static struct event_base *base;
static struct transport tr;
static int opened;

static void setup(void)
{
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	opened = 0;
}

static void teardown(void)
{
	if (opened)
		transport_free(&tr);
	event_base_free(base);
	base = NULL;
}

/* A channel over the kind, with the recorder as its hooks. */
static struct evchat *open_chat(int kind, int collect_mode)
{
	note("%s, %s mode", transport_name(kind), mode_name(collect_mode));
	transport_open(&tr, base, kind);
	opened = 1;
	struct evchat *chat = transport_chat(&tr, 0, collect_mode);
	tr.free_on_closed = 1;
	return chat;
}

/* Closes the channel and checks what the peer then sees: `len` bytes of
 * the stream it expected, and a clean end; and that the channel said
 * CLOSED once, with nothing left behind. */
static void close_and_expect_stream(size_t len, int ms)
{
	ck_assert_int_eq(evchat_close_when_done(tr.chat), 0);
	run_until_peer_end(&tr, ms);
	run_until_chat_event(&tr, ms);
	expect_peer_stream_then_eof(&tr, len);
	expect_only_event(&tr, EVCHAT_EVENT_CLOSED);
	ck_assert_ptr_null(tr.chat);
	ck_assert_uint_eq(tr.queued_at_closed, 0);
}

/* ---- framing round trips ------------------------------------------------- */

/* Closes the channel and checks the peer got `want` back, then a clean
 * end. (The filter sends a partial last block only when closing.) */
static void expect_echo(struct evbuffer *want)
{
	ck_assert_int_eq(evchat_close_when_done(tr.chat), 0);
	run_until_peer_end(&tr, 3000);
	expect_bytes("echo", tr.peer.received, evbuffer_pullup(want, -1),
	             evbuffer_get_length(want));
	expect_peer_clean_end(&tr);
}

/* Echoes each frame back as it came: a line with its "\n". */
static void echo_line(struct evchat *chat, struct recorder *rec)
{
	char *frame = recorder_frame(rec, rec->nframes - 1);
	ck_assert_int_eq(evchat_push_line(chat, frame, strlen(frame)), 0);
	free(frame);
}

/* Random lines, cut into random pieces of at most 13 bytes, framed and
 * echoed: the frames and the echo are the lines, in order. */
static void check_lines(int kind, int collect_mode)
{
	enum { NLINES = 60 };
	struct evchat *chat = open_chat(kind, collect_mode);
	ck_assert_int_eq(evchat_set_terminator_line(chat, EVCHAT_EOL_LF), 0);
	tr.rec.on_found = echo_line;

	ev_uint32_t seed = 0x1234567u + (ev_uint32_t)kind;
	struct evbuffer *wire = evbuffer_new();
	struct span *want = calloc(NLINES, sizeof(*want));
	char *texts = malloc(NLINES * 200);
	ck_assert_ptr_nonnull(wire);
	ck_assert_ptr_nonnull(want);
	ck_assert_ptr_nonnull(texts);
	for (size_t i = 0; i < NLINES; i++) {
		char *line = texts + i * 200;
		size_t len = rnd(&seed, 199); /* empty lines too */
		for (size_t k = 0; k < len; k++)
			line[k] = (char)(' ' + rnd(&seed, 95));
		want[i].p = line;
		want[i].len = len;
		evbuffer_add(wire, line, len);
		evbuffer_add(wire, "\n", 1);
	}
	size_t wire_len = evbuffer_get_length(wire);
	peer_write_cut(&tr, evbuffer_pullup(wire, -1), wire_len, 13, &seed);

	run_until_chat_frames(&tr, NLINES, 3000);
	expect_frames(&tr.rec, want, NLINES);
	ck_assert_uint_eq(tr.rec.nevents, 0);
	expect_echo(wire);
	evbuffer_free(wire);
	free(want);
	free(texts);
}

START_TEST(test_lines_frame_mode)
{
	check_lines(_i, 0);
}
END_TEST

START_TEST(test_lines_collect_mode)
{
	check_lines(_i, 1);
}
END_TEST

/* A protocol of "<length>\n" headers, each followed by a body of that
 * many bytes (any bytes, "\n" included), read with a line terminator and
 * a count as HTTP reads a body. The hook echoes each frame in its wire
 * form, so the echo is the input. */
static void header_or_body(struct evchat *chat, struct recorder *rec)
{
	int *in_body = rec->user;
	char *frame = recorder_frame(rec, rec->nframes - 1);
	size_t len = rec->frame_len[rec->nframes - 1];
	if (*in_body) {
		ck_assert_int_eq(evchat_push(chat, frame, len), 0);
		ck_assert_int_eq(evchat_set_terminator_line(chat,
		                                            EVCHAT_EOL_LF),
		                 0);
		*in_body = 0;
	} else {
		ck_assert_int_eq(evchat_push_line(chat, frame, len), 0);
		ck_assert_int_eq(evchat_set_terminator_count(
		                     chat, strtoull(frame, NULL, 10)),
		                 0);
		*in_body = 1;
	}
	free(frame);
}

static void check_counts(int kind, int collect_mode)
{
	enum { NBODIES = 30 };
	struct evchat *chat = open_chat(kind, collect_mode);
	ck_assert_int_eq(evchat_set_terminator_line(chat, EVCHAT_EOL_LF), 0);
	int in_body = 0;
	tr.rec.user = &in_body;
	tr.rec.on_found = header_or_body;

	ev_uint32_t seed = 0xc0ffeeu + (ev_uint32_t)kind;
	struct evbuffer *wire = evbuffer_new();
	struct evbuffer *texts = evbuffer_new();
	struct span *want = calloc(2 * NBODIES, sizeof(*want));
	size_t *lens = calloc(2 * NBODIES, sizeof(*lens));
	ck_assert_ptr_nonnull(want);
	ck_assert_ptr_nonnull(lens);
	for (size_t i = 0; i < NBODIES; i++) {
		/* Every third body is empty: a count of 0 ends at once. */
		size_t len = i % 3 == 0 ? 0 : rnd(&seed, 3000);
		char header[32];
		int n = snprintf(header, sizeof(header), "%zu", len);
		evbuffer_add(texts, header, (size_t)n);
		lens[2 * i] = (size_t)n;
		evbuffer_add(wire, header, (size_t)n);
		evbuffer_add(wire, "\n", 1);
		for (size_t k = 0; k < len; k++) {
			unsigned char b = (unsigned char)(i % 5 == 1
			                                      ? '\n'
			                                      : rnd(&seed,
			                                            256));
			evbuffer_add(texts, &b, 1);
			evbuffer_add(wire, &b, 1);
		}
		lens[2 * i + 1] = len;
	}
	const char *all = (const char *)evbuffer_pullup(texts, -1);
	for (size_t i = 0, off = 0; i < 2 * NBODIES; off += lens[i++]) {
		want[i].p = all + off;
		want[i].len = lens[i];
	}
	size_t wire_len = evbuffer_get_length(wire);
	peer_write_cut(&tr, evbuffer_pullup(wire, -1), wire_len, 97, &seed);

	run_until_chat_frames(&tr, 2 * NBODIES, 3000);
	expect_frames(&tr.rec, want, 2 * NBODIES);
	ck_assert_uint_eq(tr.rec.nevents, 0);
	expect_echo(wire);
	evbuffer_free(wire);
	evbuffer_free(texts);
	free(want);
	free(lens);
}

START_TEST(test_counts_frame_mode)
{
	check_counts(_i, 0);
}
END_TEST

START_TEST(test_counts_collect_mode)
{
	check_counts(_i, 1);
}
END_TEST

/* ---- large output -------------------------------------------------------- */

/* 8 MiB pushed at once arrives whole and in order, then a clean close. */
START_TEST(test_large_push)
{
	size_t len = test_stream_mib(8) << 20;
	struct evchat *chat = open_chat(_i, 0);
	struct prng_stream out, expect;
	prng_stream_init(&out, 77);
	prng_stream_init(&expect, 77);
	peer_expect_stream(&tr, &expect);
	struct evbuffer *buf = evbuffer_new();
	prng_stream_add(&out, buf, len);
	ck_assert_int_eq(evchat_push_buffer(chat, buf), 0);
	ck_assert_uint_eq(evbuffer_get_length(buf), 0);
	evbuffer_free(buf);
	close_and_expect_stream(len, 30000);
}
END_TEST

/* A producer streams the bytes as the peer takes them. */
struct stream_producer {
	struct prng_stream s;
	size_t left;
	int released;
};

static int stream_more(struct evchat *chat, struct evbuffer *out, size_t want,
                       void *arg)
{
	struct stream_producer *p = arg;
	size_t n = want < p->left ? want : p->left;
	prng_stream_add(&p->s, out, n);
	p->left -= n;
	return (int)n; /* 0 once all is given: done */
}

static void stream_release(void *arg)
{
	((struct stream_producer *)arg)->released++;
}

START_TEST(test_producer_stream)
{
	size_t len = test_stream_mib(16) << 20;
	struct evchat *chat = open_chat(_i, 0);
	struct stream_producer p = { .left = len };
	struct prng_stream expect;
	prng_stream_init(&p.s, 91);
	prng_stream_init(&expect, 91);
	peer_expect_stream(&tr, &expect);
	ck_assert_int_eq(evchat_push_producer(chat, stream_more, stream_release,
	                                      &p),
	                 0);
	close_and_expect_stream(len, 30000);
	ck_assert_int_eq(p.released, 1);
}
END_TEST

/* A file between pushed bytes, from an offset, arrives in place. */
START_TEST(test_push_file)
{
	enum {
		HEAD = 1000,
		FILE_LEN = 300 * 1024 + 77,
		TAIL = 555,
		SKIP = 100
	};
	struct evchat *chat = open_chat(_i, 0);
	struct prng_stream out, expect;
	prng_stream_init(&out, 5);
	prng_stream_init(&expect, 5);
	peer_expect_stream(&tr, &expect);

	static unsigned char bytes[SKIP + FILE_LEN];
	memset(bytes, '#', SKIP); /* before the offset: must not be sent */
	prng_stream_fill(&out, bytes, HEAD);
	ck_assert_int_eq(evchat_push(chat, bytes, HEAD), 0);
	prng_stream_fill(&out, bytes + SKIP, FILE_LEN);
	char path[] = "/tmp/evchat-test-transports-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	ck_assert_int_eq(write(fd, bytes, sizeof(bytes)), (int)sizeof(bytes));
	ck_assert_int_eq(evchat_push_file(chat, fd, SKIP, FILE_LEN), 0);
	prng_stream_fill(&out, bytes, TAIL);
	ck_assert_int_eq(evchat_push(chat, bytes, TAIL), 0);

	close_and_expect_stream(HEAD + FILE_LEN + TAIL, 5000);
}
END_TEST

/* ---- ends, frees and pauses ---------------------------------------------- */

/* The peer's EOF comes after every whole frame, and the bytes that never
 * saw their terminator wait in evchat_get_pending(). */
START_TEST(test_eof_after_last_frame)
{
	struct evchat *chat = open_chat(_i, 0);
	ck_assert_int_eq(evchat_set_terminator_line(chat, EVCHAT_EOL_LF), 0);
	peer_write(&tr, LIT("one\ntwo\nunfinished"));
	peer_close(&tr);
	run_until_chat_event(&tr, 3000);
	EXPECT_FRAMES(&tr.rec, "one", "two");
	expect_only_event(&tr, EVCHAT_EVENT_EOF);
	ck_assert_uint_eq(tr.frames_at_event, 2);
	expect_bytes("pending", evchat_get_pending(chat), LIT("unfinished"));
}
END_TEST

/* The peer's last bytes and its close come in one flight, so they may be
 * read together (libevent's TLS layer then reports the close_notify
 * before the bytes decrypted with it): still every frame comes first. */
START_TEST(test_eof_right_after_data)
{
	enum { NLINES = 5000 };
	struct evchat *chat = open_chat(_i, 0);
	ck_assert_int_eq(evchat_set_terminator_line(chat, EVCHAT_EOL_LF), 0);
	struct evbuffer *wire = evbuffer_new();
	for (int i = 0; i < NLINES; i++)
		evbuffer_add_printf(wire, "line %d\n", i);
	evbuffer_add_printf(wire, "tail");
	peer_write(&tr, evbuffer_pullup(wire, -1), evbuffer_get_length(wire));
	evbuffer_free(wire);
	peer_close(&tr);
	run_until_chat_event(&tr, 5000);
	expect_only_event(&tr, EVCHAT_EVENT_EOF);
	ck_assert_uint_eq(tr.frames_at_event, NLINES);
	ck_assert_uint_eq(tr.rec.nframes, NLINES);
	char *last = recorder_frame(&tr.rec, NLINES - 1);
	ck_assert_str_eq(last, "line 4999");
	free(last);
	expect_bytes("pending", evchat_get_pending(chat), LIT("tail"));
}
END_TEST

static void reply_on_eof(struct evchat *chat, short events, struct transport *t)
{
	if (!(events & EVCHAT_EVENT_EOF))
		return;
	struct evbuffer *pending = evchat_get_pending(chat);
	ck_assert_int_eq(evchat_push(chat, LIT("got: ")), 0);
	ck_assert_int_eq(evchat_push_buffer(chat, pending), 0);
	ck_assert_int_eq(evchat_close_when_done(chat), 0);
}

/* A reply pushed from the hook that reports the peer's EOF, then a close,
 * reaches the peer (which only shut down its sending side). */
START_TEST(test_reply_after_eof)
{
	struct evchat *chat = open_chat(_i, 0);
	ck_assert_int_eq(evchat_set_terminator_line(chat, EVCHAT_EOL_LF), 0);
	tr.on_event = reply_on_eof;
	peer_write(&tr, LIT("request without a line end"));
	peer_close(&tr);
	run_until_peer_end(&tr, 3000);
	run_until_chat_event(&tr, 3000);
	run_pending(base);
	expect_bytes("reply", tr.peer.received,
	             LIT("got: request without a line end"));
	expect_peer_clean_end(&tr);
	ck_assert_uint_eq(tr.rec.nevents, 2);
	ck_assert_int_eq(tr.rec.events[0] & ~EVCHAT_EVENT_READING,
	                 EVCHAT_EVENT_EOF);
	ck_assert_int_eq(tr.rec.events[1], EVCHAT_EVENT_CLOSED);
}
END_TEST

static void free_on_second(struct evchat *chat, struct recorder *rec)
{
	if (rec->nframes == 2) {
		evchat_free(chat);
		tr.chat = NULL;
	}
}

/* Freeing from inside found: the frames after it and the end of the
 * stream are never reported. (ASan or valgrind catch a use after free.) */
START_TEST(test_free_inside_found)
{
	struct evchat *chat = open_chat(_i, 0);
	ck_assert_int_eq(evchat_set_terminator_line(chat, EVCHAT_EOL_LF), 0);
	tr.rec.on_found = free_on_second;
	peer_write(&tr, LIT("a\nb\nc\nd\n"));
	run_until_chat_frames(&tr, 2, 3000);
	ck_assert_ptr_null(tr.chat);
	peer_write(&tr, LIT("e\n"));
	run_for(base, 50);
	EXPECT_FRAMES(&tr.rec, "a", "b");
	ck_assert_uint_eq(tr.rec.nevents, 0);
}
END_TEST

static void pause_after_first(struct evchat *chat, struct recorder *rec)
{
	if (rec->nframes == 1)
		ck_assert_int_eq(evchat_pause_input(chat), 0);
}

/* Paused after the first frame: nothing more, not even the EOF, until
 * resumed; then the rest in order, then the EOF. */
START_TEST(test_pause_resume)
{
	struct evchat *chat = open_chat(_i, 0);
	ck_assert_int_eq(evchat_set_terminator_line(chat, EVCHAT_EOL_LF), 0);
	tr.rec.on_found = pause_after_first;
	peer_write(&tr, LIT("one\ntwo\nthree\n"));
	run_until_chat_frames(&tr, 1, 3000);
	run_for(base, 50);
	EXPECT_FRAMES(&tr.rec, "one");
	ck_assert_int_eq(evchat_input_paused(chat), 1);

	peer_write(&tr, LIT("four\n"));
	peer_close(&tr);
	run_for(base, 50);
	EXPECT_FRAMES(&tr.rec, "one");
	ck_assert_uint_eq(tr.rec.nevents, 0);

	ck_assert_int_eq(evchat_resume_input(chat), 0);
	run_until_chat_event(&tr, 3000);
	EXPECT_FRAMES(&tr.rec, "one", "two", "three", "four");
	expect_only_event(&tr, EVCHAT_EVENT_EOF);
	ck_assert_uint_eq(tr.frames_at_event, 4);
}
END_TEST

static void pause_on_every(struct evchat *chat, struct recorder *rec)
{
	(void)rec;
	ck_assert_int_eq(evchat_pause_input(chat), 0);
}

/* Variants of an end while paused, over every transport (_i's kind is
 * _i / 4):
 * 0: after the pause the peer sends one more frame and ends below TLS
 *    (without a close_notify);
 * 1: it ends so with every frame already read (the channel holds them);
 * 2: as 0, but the hook pauses on every frame, and each resume brings
 *    one;
 * 3: as 0, with dirty shutdowns allowed on the channel's TLS layer.
 * After the resumes every frame, then the end: over TLS an unclean one
 * (EPROTO; variant 3 an EOF). A pair below TLS reports its partner's end
 * even while not read, and TLS over it reported that at once, paused,
 * losing the frames not yet delivered. */
START_TEST(test_end_while_paused)
{
	int kind = _i / 4, variant = _i % 4;
	note("%s, variant %d", transport_name(kind), variant);
	struct evchat *chat = open_chat(kind, 0);
	ck_assert_int_eq(evchat_set_terminator_line(chat, EVCHAT_EOL_LF), 0);
	int dirty_eof = 0;
#ifdef EVCHAT_TEST_TLS
	if (variant == 3 && transport_is_tls(kind)) {
		struct bufferevent *bev = evchat_get_bufferevent(chat);
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
		/* Over a socket, libevent 2.1 takes OpenSSL 3's report of
		 * an unexpected EOF for an error all the same. */
		dirty_eof = bufferevent_get_underlying(bev) != NULL;
	}
#endif
	tr.rec.on_found = variant == 2 ? pause_on_every : pause_after_first;
	if (variant == 1)
		peer_write(&tr, LIT("one\ntwo\nthree\n"));
	else
		peer_write(&tr, LIT("one\ntwo\n"));
	run_until_chat_frames(&tr, 1, 3000);
	run_for(base, 50);
	EXPECT_FRAMES(&tr.rec, "one");

	if (variant != 1) {
		peer_write(&tr, LIT("three\n"));
		run_for(base, 50);
	}
	peer_end_below(&tr);
	run_for(base, 50);
	EXPECT_FRAMES(&tr.rec, "one");
	ck_assert_uint_eq(tr.rec.nevents, 0);

	for (int resumes = 0; resumes < 3 && tr.rec.nevents == 0; resumes++) {
		ck_assert_int_eq(evchat_resume_input(chat), 0);
		run_for(base, 50);
		if (variant == 2 && tr.rec.nframes < 3)
			ck_assert_uint_eq(tr.rec.nevents, 0);
	}
	run_until_chat_event(&tr, 3000);
	EXPECT_FRAMES(&tr.rec, "one", "two", "three");
	ck_assert_uint_eq(tr.frames_at_event, 3);
	if (transport_is_tls(kind) && !dirty_eof) {
		expect_only_event(&tr, EVCHAT_EVENT_ERROR);
		ck_assert_int_eq(tr.rec.errnos[0], EPROTO);
	} else {
		expect_only_event(&tr, EVCHAT_EVENT_EOF);
	}
}
END_TEST

#ifdef EVCHAT_TEST_TLS
/* A rate limit on the channel's TLS layer holds its reads back while the
 * peer sends lines in one go, then ends: cleanly (_i even), or with a
 * record cut short and no close_notify (_i odd). Every line, then the end,
 * EOF or an unclean one (EPROTO). Over a pair the partner's end came while
 * records waited below the TLS layer, which reported an unclean end at
 * once, the last lines lost; and an end held for them was never released
 * when the layer's last read brought nothing to frame (the cut record).
 * The kind is TRANSPORT_TLS + _i / 2. */
START_TEST(test_tls_end_behind_rate_limit)
{
	int kind = TRANSPORT_TLS + _i / 2, clean = _i % 2 == 0;
	struct evchat *chat = open_chat(kind, 0);
	ck_assert_int_eq(evchat_set_terminator_line(chat, EVCHAT_EOL_LF), 0);
	const struct timeval tick = { 0, 50 * 1000 };
	struct ev_token_bucket_cfg *cfg =
	    ev_token_bucket_cfg_new(30, 30, 100000, 100000, &tick);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_int_eq(
	    bufferevent_set_rate_limit(evchat_get_bufferevent(chat), cfg), 0);
	for (int i = 0; i < 6; i++) {
		char line[16];
		int n = snprintf(line, sizeof(line), "line %d\n", i);
		peer_write(&tr, line, (size_t)n);
	}
	/* Out of the peer's TLS layer before anything goes below it. */
	run_for(base, 50);
	if (clean) {
		peer_close(&tr);
	} else {
		/* An application data record's head, announcing more than
		 * follows. */
		static const unsigned char cut[8] = { 0x17, 0x03, 0x03, 0x01,
			                              0x00, 'a',  'b',  'c' };
		struct bufferevent *below = bufferevent_get_underlying(
		    tr.peer.bev);
		if (below != NULL)
			ck_assert_int_eq(bufferevent_write(below, cut,
			                                   sizeof(cut)),
			                 0);
		else
			write_all(tr.peer_fd, cut, sizeof(cut));
		run_for(base, 20);
		peer_end_below(&tr);
	}
	run_until_chat_event(&tr, 5000);
	run_for(base, 100);
	EXPECT_FRAMES(&tr.rec, "line 0", "line 1", "line 2", "line 3", "line 4",
	              "line 5");
	if (clean) {
		expect_only_event(&tr, EVCHAT_EVENT_EOF);
	} else {
		expect_only_event(&tr, EVCHAT_EVENT_ERROR);
		ck_assert_int_eq(tr.rec.errnos[0], EPROTO);
	}
	/* The limit is the bufferevent's to drop before the config goes. */
	ck_assert_int_eq(
	    bufferevent_set_rate_limit(evchat_get_bufferevent(chat), NULL), 0);
	ev_token_bucket_cfg_free(cfg);
}
END_TEST

/* A frame refused as too long ends reading; the peer then ends below TLS
 * without a close_notify. A pair tells the channel's TLS layer even so
 * (a socket is not read any more), and that end is reported after the
 * refusal, not held for reads that will never come. */
START_TEST(test_tls_end_after_refused_frame)
{
	struct evchat *chat = open_chat(TRANSPORT_TLS_PAIR, 0);
	ck_assert_int_eq(evchat_set_terminator_line(chat, EVCHAT_EOL_LF), 0);
	ck_assert_int_eq(evchat_set_max_frame(chat, 4), 0);
	peer_write(&tr, LIT("toolong\n"));
	run_until_chat_event(&tr, 3000);
	peer_write(&tr, LIT("more\n"));
	run_for(base, 20);
	peer_end_below(&tr);
	long long end = now_ms() + 3000;
	while (tr.rec.nevents < 2 && now_ms() < end)
		run_tick(base, 10000);
	run_for(base, 50);
	ck_assert_uint_eq(tr.rec.nevents, 2);
	ck_assert_int_eq(tr.rec.events[0],
	                 EVCHAT_EVENT_FRAME_TOO_LONG | EVCHAT_EVENT_READING);
	ck_assert(tr.rec.events[1] & EVCHAT_EVENT_ERROR);
	ck_assert_int_eq(tr.rec.errnos[1], EPROTO);
}
END_TEST
#endif

/* A read timeout set, the peer's clean end: the EOF, and nothing after it
 * (libevent's TLS filter kept its read timer, which fired later). */
START_TEST(test_read_timeout_after_eof)
{
	struct evchat *chat = open_chat(_i, 0);
	ck_assert_int_eq(evchat_set_terminator_line(chat, EVCHAT_EOL_LF), 0);
	const struct timeval read = { 0, 100 * 1000 };
	ck_assert_int_eq(evchat_set_timeouts(chat, &read, NULL), 0);
	peer_write(&tr, LIT("one\n"));
	peer_close(&tr);
	run_until_chat_event(&tr, 3000);
	run_for(base, 400);
	EXPECT_FRAMES(&tr.rec, "one");
	expect_only_event(&tr, EVCHAT_EVENT_EOF);
}
END_TEST

/* ---- closing ------------------------------------------------------------- */

/* close_when_done: every byte, then a clean end (TLS: close_notify; the
 * filter: its held-back last block), then CLOSED; pushing fails. The
 * reply is no whole number of the filter's blocks. */
START_TEST(test_close_when_done)
{
	enum { REPLY = 100 * 1000 + 123 };
	struct evchat *chat = open_chat(_i, 0);
	struct prng_stream out, expect;
	prng_stream_init(&out, 3);
	prng_stream_init(&expect, 3);
	peer_expect_stream(&tr, &expect);
	static unsigned char reply[REPLY];
	prng_stream_fill(&out, reply, REPLY);
	ck_assert_int_eq(evchat_push(chat, reply, REPLY), 0);
	ck_assert_int_eq(evchat_close_when_done(chat), 0);
	ASSERT_FAILS(evchat_push(chat, "x", 1), EPIPE);
	ck_assert_int_eq(evchat_close_when_done(chat), 0); /* harmless */
	close_and_expect_stream(REPLY, 5000);
	if (tr.chat_fd >= 0)
		ck_assert_uint_eq(tr.unacked_at_closed, 0);
}
END_TEST

Suite *transports_suite(void)
{
	Suite *s = suite_create("transports");

	TCase *tc = tcase_create("framing");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_loop_test(tc, test_lines_frame_mode, 0, TRANSPORT_NKINDS);
	tcase_add_loop_test(tc, test_lines_collect_mode, 0, TRANSPORT_NKINDS);
	tcase_add_loop_test(tc, test_counts_frame_mode, 0, TRANSPORT_NKINDS);
	tcase_add_loop_test(tc, test_counts_collect_mode, 0, TRANSPORT_NKINDS);
	suite_add_tcase(s, tc);

	tc = tcase_create("streams");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_large_push, 0, TRANSPORT_NKINDS);
	tcase_add_loop_test(tc, test_producer_stream, 0, TRANSPORT_NKINDS);
	tcase_add_loop_test(tc, test_push_file, 0, TRANSPORT_NKINDS);
	suite_add_tcase(s, tc);

	tc = tcase_create("ends");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_loop_test(tc, test_eof_after_last_frame, 0, TRANSPORT_NKINDS);
	tcase_add_loop_test(tc, test_eof_right_after_data, 0, TRANSPORT_NKINDS);
	tcase_add_loop_test(tc, test_reply_after_eof, 0, TRANSPORT_NKINDS);
	tcase_add_loop_test(tc, test_free_inside_found, 0, TRANSPORT_NKINDS);
	tcase_add_loop_test(tc, test_pause_resume, 0, TRANSPORT_NKINDS);
	tcase_add_loop_test(tc, test_end_while_paused, 0, 4 * TRANSPORT_NKINDS);
	tcase_add_loop_test(tc, test_read_timeout_after_eof, 0,
	                    TRANSPORT_NKINDS);
#ifdef EVCHAT_TEST_TLS
	tcase_add_loop_test(tc, test_tls_end_behind_rate_limit, 0,
	                    2 * (TRANSPORT_TLS_PAIR + 1 - TRANSPORT_TLS));
	tcase_add_test(tc, test_tls_end_after_refused_frame);
#endif
	tcase_add_loop_test(tc, test_close_when_done, 0, TRANSPORT_NKINDS);
	suite_add_tcase(s, tc);
	return s;
}
