/*
 * The output queue: pushed bytes, buffers, files and producers reach the
 * peer in order; producers are asked, stalled, resumed and released as
 * documented; memory stays bounded; close_when_done flushes everything.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <check.h>

#include "helpers.h"
#include "suites.h"

/* ---- fixtures ------------------------------------------------------------ */

static struct event_base *base;
static struct conn conn;
static struct evchat *chat; /* NULL once freed */
static struct recorder rec;
/* When set, the event hook frees the channel on EVCHAT_EVENT_CLOSED, as a
 * user typically does; freeing closes the socket, so the peer sees EOF. */
static int free_on_closed;

static void output_event_cb(struct evchat *c, short events, void *arg)
{
	recorder_event_cb(c, events, arg);
	if (free_on_closed && (events & EVCHAT_EVENT_CLOSED)) {
		ck_assert_ptr_eq(c, chat);
		evchat_free(c);
		chat = NULL;
	}
}

static void setup_chat(int tcp)
{
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	ck_assert_int_eq(tcp ? conn_tcp(&conn, base)
	                     : conn_socketpair(&conn, base),
	                 0);
	chat = evchat_new(conn.bev, 0);
	ck_assert_ptr_nonnull(chat);
	recorder_init(&rec);
	free_on_closed = 1;
	evchat_setcb(chat, NULL, recorder_found_cb, output_event_cb, &rec);
}

static void setup_socketpair(void)
{
	setup_chat(0);
}

static void setup_tcp(void)
{
	setup_chat(1);
}

static void teardown(void)
{
	evchat_free(chat);
	chat = NULL;
	conn_close_peer(&conn);
	recorder_clear(&rec);
	event_base_free(base);
	base = NULL;
}

/* ---- small helpers ------------------------------------------------------- */

/* Reads what the peer has now, running the loop so the channel writes. */
static void read_peer_now(struct evbuffer *got)
{
	for (int round = 0; round < 4; round++) {
		run_pending(base);
		while (evbuffer_read(got, conn.peer, 1 << 16) > 0)
			;
	}
}

static void assert_same_bytes(struct evbuffer *got, struct evbuffer *want)
{
	size_t got_len = evbuffer_get_length(got);
	size_t want_len = evbuffer_get_length(want);
	const unsigned char *g = evbuffer_pullup(got, -1);
	const unsigned char *w = evbuffer_pullup(want, -1);
	size_t same = 0;
	while (same < got_len && same < want_len && g[same] == w[same])
		same++;
	ck_assert_msg(got_len == want_len && same == want_len,
	              "peer got %zu bytes, expected %zu; first difference at "
	              "byte %zu",
	              got_len, want_len, same);
}

static void assert_buffer_is(struct evbuffer *buf, const char *want)
{
	size_t len = evbuffer_get_length(buf);
	/* pullup gives NULL for an empty buffer; print and compare "". */
	const char *have = len ? (const char *)evbuffer_pullup(buf, -1) : "";
	ck_assert_msg(len == strlen(want) && memcmp(have, want, len) == 0,
	              "got \"%.*s\" (%zu bytes), expected \"%s\"", (int)len,
	              have, len, want);
}

/* Reads the peer to EOF and checks it got exactly want, for tests whose
 * channel is closing (or freed) with a few bytes sent. */
static void expect_peer_got(const char *want)
{
	struct evbuffer *got = evbuffer_new();
	ck_assert_ptr_nonnull(got);
	read_peer_to_eof(&conn, got, 5000);
	assert_buffer_is(got, want);
	evbuffer_free(got);
}

/* A deleted temporary file holding data; returns its fd. */
static int make_file(const void *data, size_t len)
{
	char path[] = "/tmp/evchat-test-output-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		ck_assert_int_gt(n, 0);
		p += n;
		len -= (size_t)n;
	}
	return fd;
}

static int fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

/* Bytes that tell every piece apart: a misordered or repeated piece
 * changes what the peer sees. */
static void fill_piece(unsigned char *p, size_t len, unsigned piece)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(piece * 31u + i * 7u + (i >> 8));
}

static void set_socket_buffers(int size)
{
	evutil_socket_t fd = bufferevent_getfd(evchat_get_bufferevent(chat));
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size,
	                            sizeof(size)),
	                 0);
	ck_assert_int_eq(setsockopt(conn.peer, SOL_SOCKET, SO_RCVBUF, &size,
	                            sizeof(size)),
	                 0);
}

/* Makes the kernel hold little of the connection's data (TCP only), so a
 * peer that does not read really holds the channel's output back. */
static void shrink_socket_buffers(void)
{
	set_socket_buffers(16 * 1024);
}

/* Undoes that once the peer reads: small windows make loopback crawl. */
static void grow_socket_buffers(void)
{
	set_socket_buffers(1024 * 1024);
}

/* ---- a scripted producer ------------------------------------------------- */

struct producer {
	const unsigned char *data; /* what it produces in total */
	size_t len;
	size_t sent;
	size_t max_chunk;  /* gives min(want, max_chunk) per call; 0: want */
	int stall_at_call; /* returns EVCHAT_AGAIN on this call (1-based) */
	int stalled;       /* AGAIN given, resume not yet called */
	int fail_at_call;  /* returns fail_result on this call */
	int fail_result;
	int last_with_bytes; /* the final bytes come with the return of 0 */
	int ncalls;
	int calls_while_stalled;
	int nreleased;
};

static int producer_more(struct evchat *c, struct evbuffer *out, size_t want,
                         void *arg)
{
	struct producer *p = arg;
	p->ncalls++;
	ck_assert_msg(p->nreleased == 0, "more() called after release()");
	ck_assert_uint_gt(want, 0);
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	if (p->stalled) {
		p->calls_while_stalled++;
		return EVCHAT_AGAIN;
	}
	if (p->ncalls == p->stall_at_call) {
		p->stalled = 1;
		return EVCHAT_AGAIN;
	}
	if (p->ncalls == p->fail_at_call)
		return p->fail_result;
	size_t n = p->len - p->sent;
	if (n > want)
		n = want;
	if (p->max_chunk && n > p->max_chunk)
		n = p->max_chunk;
	if (n == 0)
		return 0;
	ck_assert_int_eq(evbuffer_add(out, p->data + p->sent, n), 0);
	p->sent += n;
	if (p->last_with_bytes && p->sent == p->len)
		return 0;
	return (int)n;
}

static void producer_release(void *arg)
{
	struct producer *p = arg;
	p->nreleased++;
}

static void push_producer(struct producer *p)
{
	ck_assert_int_eq(evchat_push_producer(chat, producer_more,
	                                      producer_release, p),
	                 0);
}

/* ---- order --------------------------------------------------------------- */

#define ORDER_PIECES 60
#define ORDER_MAX_PIECE 9000

/* Every kind of push, interleaved, sizes from 0 to several socket
 * buffers' worth: the peer gets exactly their concatenation. */
START_TEST(test_push_order_all_kinds)
{
	static unsigned char data[ORDER_PIECES][ORDER_MAX_PIECE];
	static struct producer producers[ORDER_PIECES];
	int files[ORDER_PIECES];
	size_t nfiles = 0, nproducers = 0;
	struct evbuffer *want = evbuffer_new();
	struct evbuffer *got = evbuffer_new();
	ck_assert_ptr_nonnull(want);
	ck_assert_ptr_nonnull(got);

	for (unsigned i = 0; i < ORDER_PIECES; i++) {
		size_t len = (i * 7919u) % ORDER_MAX_PIECE;
		if (i % 11 == 0)
			len = i % 2; /* empty and one-byte pieces too */
		fill_piece(data[i], ORDER_MAX_PIECE, i);
		switch (i % 5) {
		case 0:
			ck_assert_int_eq(evchat_push(chat, data[i], len), 0);
			evbuffer_add(want, data[i], len);
			break;
		case 1: {
			struct evbuffer *src = evbuffer_new();
			ck_assert_ptr_nonnull(src);
			/* Two chains, so the move is not a single block. */
			evbuffer_add(src, data[i], len / 2);
			evbuffer_add(src, data[i] + len / 2, len - len / 2);
			ck_assert_int_eq(evchat_push_buffer(chat, src), 0);
			ck_assert_uint_eq(evbuffer_get_length(src), 0);
			evbuffer_free(src);
			evbuffer_add(want, data[i], len);
			break;
		}
		case 2: {
			/* The whole file, or a range inside it, sometimes
			 * empty (the rest of the file from an offset has a
			 * test of its own). */
			int fd = make_file(data[i], ORDER_MAX_PIECE);
			ev_off_t offset = 0, length = -1;
			size_t sent = ORDER_MAX_PIECE;
			if (i % 3 != 0) {
				offset = (ev_off_t)(i * 13);
				sent = len;
				if ((size_t)offset + sent > ORDER_MAX_PIECE)
					sent = ORDER_MAX_PIECE - (size_t)offset;
				length = (ev_off_t)sent;
			}
			ck_assert_int_eq(evchat_push_file(chat, fd, offset,
			                                  length),
			                 0);
			files[nfiles++] = fd;
			evbuffer_add(want, data[i] + offset, sent);
			break;
		}
		case 3: {
			struct producer *p = &producers[nproducers++];
			p->data = data[i];
			p->len = len;
			p->max_chunk = 1 + i * 37 % 1500;
			p->last_with_bytes = i % 2;
			push_producer(p);
			evbuffer_add(want, data[i], len);
			break;
		}
		case 4:
			/* Zero bytes are fine and send nothing. */
			ck_assert_int_eq(evchat_push(chat, data[i], 0), 0);
			ck_assert_int_eq(evchat_push(chat, NULL, 0), 0);
			ck_assert_int_eq(evchat_push(chat, data[i], len), 0);
			evbuffer_add(want, data[i], len);
			break;
		}
	}
	ck_assert_int_eq(evchat_close_when_done(chat), 0);
	read_peer_to_eof(&conn, got, 10000);
	assert_same_bytes(got, want);
	run_until_freed(base, &chat, 3000);

	ck_assert_ptr_null(chat); /* freed by the hook on CLOSED */
	expect_one_event(&rec, EVCHAT_EVENT_CLOSED);
	for (size_t i = 0; i < nproducers; i++) {
		ck_assert_int_eq(producers[i].nreleased, 1);
		ck_assert_uint_eq(producers[i].sent, producers[i].len);
	}
	/* Taken files are closed once sent or on free. */
	for (size_t i = 0; i < nfiles; i++)
		ck_assert_msg(!fd_is_open(files[i]),
		              "pushed file fd %d still open", files[i]);
	evbuffer_free(want);
	evbuffer_free(got);
}
END_TEST

/* Length -1 sends the rest of the file from the offset, both when the file
 * goes straight out and when it waits behind a producer. */
START_TEST(test_push_file_rest_from_offset)
{
	static unsigned char data[2][10000];
	static const unsigned char text[] = "[producer]";
	struct producer p = { .data = text, .len = sizeof(text) - 1 };
	fill_piece(data[0], sizeof(data[0]), 1);
	fill_piece(data[1], sizeof(data[1]), 2);
	int direct = make_file(data[0], sizeof(data[0]));
	int queued = make_file(data[1], sizeof(data[1]));
	struct evbuffer *want = evbuffer_new();
	struct evbuffer *got = evbuffer_new();
	ck_assert_ptr_nonnull(want);
	ck_assert_ptr_nonnull(got);

	ck_assert_int_eq(evchat_push(chat, "<", 1), 0);
	ck_assert_int_eq(evchat_push_file(chat, direct, 1000, -1), 0);
	push_producer(&p);
	ck_assert_int_eq(evchat_push_file(chat, queued, 2000, -1), 0);
	ck_assert_int_eq(evchat_push(chat, ">", 1), 0);
	evbuffer_add(want, "<", 1);
	evbuffer_add(want, data[0] + 1000, sizeof(data[0]) - 1000);
	evbuffer_add(want, text, p.len);
	evbuffer_add(want, data[1] + 2000, sizeof(data[1]) - 2000);
	evbuffer_add(want, ">", 1);

	ck_assert_int_eq(evchat_close_when_done(chat), 0);
	int eof = drain_peer_until_eof(base, conn.peer, got, 3000);
	ck_assert_msg(rec.nevents == 1 && rec.events[0] == EVCHAT_EVENT_CLOSED,
	              "%zu events, the first 0x%x, after %zu of %zu bytes; "
	              "want only CLOSED",
	              rec.nevents, rec.nevents ? (unsigned)rec.events[0] : 0u,
	              evbuffer_get_length(got), evbuffer_get_length(want));
	ck_assert(eof);
	assert_same_bytes(got, want);
	evbuffer_free(want);
	evbuffer_free(got);
}
END_TEST

/* ---- producers ----------------------------------------------------------- */

struct resume_timer {
	struct producer *producer;
	int fired;
	int calls_before;
	int calls_after; /* more() calls made inside evchat_resume() */
};

static void resume_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct resume_timer *t = arg;
	t->fired = 1;
	t->producer->stalled = 0;
	t->calls_before = t->producer->ncalls;
	evchat_resume(chat);
	t->calls_after = t->producer->ncalls;
}

/* EVCHAT_AGAIN holds the queue (later pushes wait behind the producer)
 * until evchat_resume(), which asks again from the loop. */
START_TEST(test_producer_again_stalls_until_resume)
{
	static const unsigned char text[] = "producer-data";
	struct producer p = {
		.data = text,
		.len = sizeof(text) - 1,
		.max_chunk = 4,
		.stall_at_call = 2,
	};
	struct evbuffer *got = evbuffer_new();
	ck_assert_ptr_nonnull(got);

	ck_assert_int_eq(evchat_push(chat, "head|", 5), 0);
	push_producer(&p);
	ck_assert_int_eq(evchat_push(chat, "|tail", 5), 0);
	read_peer_now(got);
	ck_assert_int_eq(p.ncalls, 2);
	ck_assert_int_eq(p.stalled, 1);
	assert_buffer_is(got, "head|prod");

	/* Stalled: neither it nor anything pushed now moves. */
	ck_assert_int_eq(evchat_push(chat, "|more", 5), 0);
	run_for(base, 50);
	read_peer_now(got);
	assert_buffer_is(got, "head|prod");
	ck_assert_int_eq(p.calls_while_stalled, 0);

	struct resume_timer t = { .producer = &p };
	struct event *timer = evtimer_new(base, resume_timer_cb, &t);
	ck_assert_ptr_nonnull(timer);
	struct timeval delay = { 0, 20000 };
	ck_assert_int_eq(evtimer_add(timer, &delay), 0);
	run_until(base, &t.fired, 2000);
	ck_assert_int_eq(t.fired, 1);
	ck_assert_msg(t.calls_after == t.calls_before,
	              "more() called from inside evchat_resume()");

	read_peer_now(got);
	assert_buffer_is(got, "head|producer-data|tail|more");
	/* Released once, after it returned 0, with the channel alive. */
	ck_assert_ptr_nonnull(chat);
	ck_assert_int_eq(p.nreleased, 1);
	ck_assert_uint_eq(rec.nevents, 0);

	/* A resume with no producer waiting is harmless. */
	evchat_resume(chat);
	evchat_resume(NULL);
	ck_assert_int_eq(evchat_push(chat, "!", 1), 0);
	ck_assert_int_eq(evchat_close_when_done(chat), 0);
	read_peer_to_eof(&conn, got, 5000);
	assert_buffer_is(got, "head|producer-data|tail|more!");
	ck_assert_int_eq(p.nreleased, 1);
	event_free(timer);
	evbuffer_free(got);
}
END_TEST

/* A producer's bytes returned together with 0 are still sent. */
START_TEST(test_producer_final_bytes_with_zero)
{
	static const unsigned char text[] = "all-at-once";
	struct producer p = {
		.data = text,
		.len = sizeof(text) - 1,
		.last_with_bytes = 1,
	};
	struct evbuffer *got = evbuffer_new();
	ck_assert_ptr_nonnull(got);
	push_producer(&p);
	ck_assert_int_eq(evchat_push(chat, ".", 1), 0);
	read_peer_now(got);
	assert_buffer_is(got, "all-at-once.");
	ck_assert_int_eq(p.ncalls, 1);
	ck_assert_int_eq(p.nreleased, 1);
	evbuffer_free(got);
}
END_TEST

/* Both release tests start with one producer stalled and one queued behind. */
static void push_stalled_and_queued(struct producer *stalled,
                                    struct producer *queued)
{
	static const unsigned char text[] = "abcdef";
	*stalled = (struct producer){
		.data = text,
		.len = 6,
		.stall_at_call = 1,
	};
	*queued = (struct producer){ .data = text, .len = 6 };
	push_producer(stalled);
	push_producer(queued);
	run_pending(base);
}

/* evchat_discard_buffers() called outside the channel's hooks releases
 * queued producers from the loop, not inside the call (which may come
 * from another thread), and none is asked again. */
START_TEST(test_producer_released_on_discard)
{
	struct producer stalled, queued;
	push_stalled_and_queued(&stalled, &queued);
	ck_assert_int_eq(stalled.ncalls, 1);
	ck_assert_int_eq(queued.ncalls, 0);

	evchat_discard_buffers(chat);
	ck_assert_int_eq(stalled.nreleased, 0);
	ck_assert_int_eq(queued.nreleased, 0);
	run_pending(base);
	ck_assert_int_eq(stalled.nreleased, 1);
	ck_assert_int_eq(queued.nreleased, 1);
	stalled.stalled = 0;
	evchat_resume(chat);
	run_for(base, 30);
	ck_assert_int_eq(stalled.ncalls, 1);
	ck_assert_int_eq(queued.ncalls, 0);

	evchat_free(chat);
	chat = NULL;
	ck_assert_int_eq(stalled.nreleased, 1);
	ck_assert_int_eq(queued.nreleased, 1);
}
END_TEST

/* evchat_free() releases every queued producer once: one stalled, one
 * never reached, one pushed after the loop last ran. */
START_TEST(test_producer_released_on_free)
{
	static const unsigned char text[] = "abcdef";
	struct producer stalled, queued;
	struct producer fresh = { .data = text, .len = 6 };
	push_stalled_and_queued(&stalled, &queued);
	push_producer(&fresh);
	ck_assert_int_eq(stalled.ncalls, 1);

	evchat_free(chat);
	chat = NULL;
	ck_assert_int_eq(stalled.nreleased, 1);
	ck_assert_int_eq(queued.nreleased, 1);
	ck_assert_int_eq(fresh.nreleased, 1);
	ck_assert_int_eq(queued.ncalls, 0);
	ck_assert_int_eq(fresh.ncalls, 0);
	run_for(base, 20);
	ck_assert_int_eq(stalled.nreleased, 1);
	ck_assert_uint_eq(rec.nevents, 0);
}
END_TEST

/* A producer that fails (-1, or "> 0" with nothing appended) ends the
 * connection with EVCHAT_EVENT_ERROR, once; pushing then fails with
 * EPIPE. */
static void check_producer_failure(int fail_result)
{
	static const unsigned char text[] = "0123456789";
	struct producer p = {
		.data = text,
		.len = 10,
		.max_chunk = 3,
		.fail_at_call = 2,
		.fail_result = fail_result,
	};
	ck_assert_int_eq(evchat_push(chat, "x", 1), 0);
	push_producer(&p);
	run_for(base, 50);
	ck_assert_int_eq(p.ncalls, 2);
	ck_assert_uint_eq(rec.nevents, 1);
	ck_assert_msg(rec.events[0] & EVCHAT_EVENT_ERROR,
	              "producer returned %d; event hook got 0x%x, not ERROR",
	              fail_result, (unsigned)rec.events[0]);
	ASSERT_FAILS(evchat_push(chat, "y", 1), EPIPE);

	evchat_free(chat);
	chat = NULL;
	ck_assert_int_eq(p.ncalls, 2);
	ck_assert_int_eq(p.nreleased, 1);
}

START_TEST(test_producer_failure_is_error)
{
	check_producer_failure(-1);
}
END_TEST

START_TEST(test_producer_empty_positive_is_error)
{
	check_producer_failure(5);
}
END_TEST

/* ---- bounded memory ------------------------------------------------------ */

/* Byte i of the stream is i * 7 mod 251: the table holds one period plus
 * the largest piece, so any piece is one memcmp or one reference. */
#define PATTERN_PERIOD 251
#define STREAM_OUT_SIZE ((size_t)64 * 1024)
#define STREAM_READ_SIZE ((size_t)1 << 20)
/* 1 GiB over loopback takes one to two seconds here. Slow runs (valgrind)
 * may set EVCHAT_TEST_STREAM_MIB lower. */
#define STREAM_DEFAULT_MIB 1024
static unsigned char pattern[PATTERN_PERIOD + STREAM_READ_SIZE];

struct stream_producer {
	ev_uint64_t total;
	ev_uint64_t produced;
	size_t largest_chunk;
	size_t most_queued; /* the output buffer's peak at a more() call */
	unsigned long ncalls;
	int nreleased;
};

static int stream_more(struct evchat *c, struct evbuffer *out, size_t want,
                       void *arg)
{
	struct stream_producer *s = arg;
	size_t queued = evbuffer_get_length(
	    bufferevent_get_output(evchat_get_bufferevent(c)));
	s->ncalls++;
	ck_assert_uint_gt(want, 0);
	/* want is what fills the buffer up to the refill level; asking for
	 * more would let a producer that honours it grow memory. */
	ck_assert_uint_le(want, STREAM_OUT_SIZE);
	ck_assert_msg(queued <= STREAM_OUT_SIZE + s->largest_chunk,
	              "output buffer holds %zu bytes at more() call %lu "
	              "(limit %zu + one chunk of %zu)",
	              queued, s->ncalls, STREAM_OUT_SIZE, s->largest_chunk);
	if (queued > s->most_queued)
		s->most_queued = queued;
	ev_uint64_t left = s->total - s->produced;
	size_t n = left < want ? (size_t)left : want;
	if (n == 0)
		return 0;
	if (n > s->largest_chunk)
		s->largest_chunk = n;
	/* A reference, not a copy: the pattern table outlives the channel. */
	ck_assert_int_eq(evbuffer_add_reference(out,
	                                        pattern + s->produced %
	                                                      PATTERN_PERIOD,
	                                        n, NULL, NULL),
	                 0);
	s->produced += n;
	return (int)n;
}

static void stream_release(void *arg)
{
	((struct stream_producer *)arg)->nreleased++;
}

/* Reads what the peer has, checking it against the pattern. Returns 1 at
 * EOF. Large reads keep a gigabyte down to a few thousand calls. */
static int read_stream(unsigned char *buf, ev_uint64_t *received,
                       ev_uint64_t total)
{
	for (;;) {
		ssize_t n = read(conn.peer, buf, STREAM_READ_SIZE);
		if (n == 0)
			return 1;
		if (n < 0) {
			ck_assert_msg(errno == EAGAIN || errno == EINTR,
			              "peer read: %s", strerror(errno));
			return 0;
		}
		ck_assert_msg(*received + (size_t)n <= total,
		              "peer got more than was produced");
		const unsigned char *expected = pattern +
		                                *received % PATTERN_PERIOD;
		ck_assert_msg(memcmp(buf, expected, (size_t)n) == 0,
		              "wrong bytes in %zd bytes from offset %llu", n,
		              (unsigned long long)*received);
		*received += (size_t)n;
	}
}

START_TEST(test_producer_memory_bounded)
{
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (unsigned char)(i * 7 % PATTERN_PERIOD);
	const char *mib = getenv("EVCHAT_TEST_STREAM_MIB");
	ev_uint64_t total = (ev_uint64_t)(mib && *mib ? strtoul(mib, NULL, 10)
	                                              : STREAM_DEFAULT_MIB);
	struct stream_producer s = { .total = (total ? total : 1) << 20 };
	unsigned char *buf = malloc(STREAM_READ_SIZE);
	ck_assert_ptr_nonnull(buf);

	ck_assert_int_eq(evchat_set_out_buffer_size(chat, STREAM_OUT_SIZE), 0);
	ck_assert_int_eq(evchat_push_producer(chat, stream_more, stream_release,
	                                      &s),
	                 0);
	ck_assert_int_eq(evchat_close_when_done(chat), 0);

	ev_uint64_t received = 0;
	int eof = 0;
	long long start = now_ms();
	while (!eof && now_ms() - start < 60000) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		eof = read_stream(buf, &received, s.total);
	}
	long long elapsed = now_ms() - start;
	ck_assert_msg(eof, "no EOF after %lld ms, %llu of %llu bytes", elapsed,
	              (unsigned long long)received,
	              (unsigned long long)s.total);
	ck_assert_uint_eq(received, s.total);
	ck_assert_uint_eq(s.produced, s.total);
	ck_assert_int_eq(s.nreleased, 1);
	run_until_freed(base, &chat, 3000);
	ck_assert_ptr_null(chat);
	expect_one_event(&rec, EVCHAT_EVENT_CLOSED);
	printf("memory bounded: %llu bytes in %lld ms, %lu more() calls, "
	       "output buffer peak %zu bytes\n",
	       (unsigned long long)received, elapsed, s.ncalls, s.most_queued);
	free(buf);
}
END_TEST

/* ---- close_when_done ----------------------------------------------------- */

#define BIG_BLOCK ((size_t)1 << 20)

/* 8 MiB of pushes plus a producer, while the peer does not read: nothing is
 * reported until the peer has read it all, then CLOSED once and EOF. */
START_TEST(test_close_when_done_flushes_large_queue)
{
	static unsigned char data[10][BIG_BLOCK];
	struct evbuffer *want = evbuffer_new();
	struct evbuffer *got = evbuffer_new();
	ck_assert_ptr_nonnull(want);
	ck_assert_ptr_nonnull(got);
	shrink_socket_buffers();

	for (unsigned i = 0; i < 10; i++)
		fill_piece(data[i], BIG_BLOCK, i);
	for (unsigned i = 0; i < 6; i++)
		ck_assert_int_eq(evchat_push(chat, data[i], BIG_BLOCK), 0);
	struct evbuffer *moved = evbuffer_new();
	ck_assert_ptr_nonnull(moved);
	evbuffer_add(moved, data[6], BIG_BLOCK);
	ck_assert_int_eq(evchat_push_buffer(chat, moved), 0);
	evbuffer_free(moved);
	int fd = make_file(data[7], BIG_BLOCK);
	ck_assert_int_eq(evchat_push_file(chat, fd, 0, -1), 0);
	struct producer p = {
		.data = data[8],
		.len = BIG_BLOCK,
		.max_chunk = 10000,
	};
	push_producer(&p);
	ck_assert_int_eq(evchat_push(chat, data[9], BIG_BLOCK), 0);
	for (unsigned i = 0; i < 10; i++)
		evbuffer_add(want, data[i], BIG_BLOCK);

	ck_assert_int_eq(evchat_close_when_done(chat), 0);
	ck_assert_msg(rec.nevents == 0,
	              "event hook ran inside evchat_close_when_done()");
	ck_assert_int_eq(evchat_close_when_done(chat), 0); /* harmless */

	/* The peer is not reading: the kernel holds far less than 10 MiB. */
	run_for(base, 100);
	ck_assert_uint_eq(rec.nevents, 0);
	ck_assert_ptr_nonnull(chat);

	grow_socket_buffers();
	read_peer_to_eof(&conn, got, 20000);
	assert_same_bytes(got, want);
	run_until_freed(base, &chat, 3000);
	ck_assert_ptr_null(chat); /* the hook freed it on CLOSED */
	expect_one_event(&rec, EVCHAT_EVENT_CLOSED);
	ck_assert_int_eq(p.nreleased, 1);
	ck_assert(!fd_is_open(fd));
	evbuffer_free(want);
	evbuffer_free(got);
}
END_TEST

/* With nothing queued the close still waits for the loop, and is reported
 * once however often it is asked for or the loop runs. */
START_TEST(test_close_when_done_empty_queue)
{
	free_on_closed = 0;
	ck_assert_int_eq(evchat_close_when_done(chat), 0);
	ck_assert_msg(rec.nevents == 0,
	              "event hook ran inside evchat_close_when_done()");
	run_for(base, 50);
	expect_one_event(&rec, EVCHAT_EVENT_CLOSED);
	ck_assert_int_eq(evchat_close_when_done(chat), 0);
	run_for(base, 50);
	ck_assert_uint_eq(rec.nevents, 1);
}
END_TEST

/* ---- errors -------------------------------------------------------------- */

/* Both refused-push tests end by checking that nothing refused was touched. */
static void expect_refused_untouched(const struct producer *p, int fd)
{
	ck_assert_int_eq(p->ncalls, 0);
	ck_assert_int_eq(p->nreleased, 0);
	ck_assert(fd_is_open(fd));
}

START_TEST(test_push_after_close_is_epipe)
{
	struct producer p = { .data = (const unsigned char *)"x", .len = 1 };
	struct evbuffer *buf = evbuffer_new();
	ck_assert_ptr_nonnull(buf);
	evbuffer_add(buf, "late", 4);
	int fd = make_file("late", 4);

	free_on_closed = 0;
	ck_assert_int_eq(evchat_push(chat, "early", 5), 0);
	ck_assert_int_eq(evchat_close_when_done(chat), 0);

	ASSERT_FAILS(evchat_push(chat, "late", 4), EPIPE);
	ASSERT_FAILS(evchat_push_buffer(chat, buf), EPIPE);
	ASSERT_FAILS(evchat_push_file(chat, fd, 0, -1), EPIPE);
	ck_assert_msg(fd_is_open(fd), "failed push_file closed the fd");
	ASSERT_FAILS(evchat_push_producer(chat, producer_more, producer_release,
	                                  &p),
	             EPIPE);

	run_for(base, 50);
	expect_one_event(&rec, EVCHAT_EVENT_CLOSED);
	ASSERT_FAILS(evchat_push(chat, "later", 5), EPIPE);

	evchat_free(chat);
	chat = NULL;
	expect_peer_got("early");
	/* A failed push never calls the producer's hooks. */
	expect_refused_untouched(&p, fd);
	close(fd);
	evbuffer_free(buf);
}
END_TEST

START_TEST(test_push_invalid_arguments)
{
	struct producer p = { .data = (const unsigned char *)"x", .len = 1 };
	struct evbuffer *buf = evbuffer_new();
	ck_assert_ptr_nonnull(buf);
	evbuffer_add(buf, "kept", 4);
	int fd = make_file("file", 4);

	ASSERT_FAILS(evchat_push(NULL, "x", 1), EINVAL);
	ASSERT_FAILS(evchat_push(chat, NULL, 1), EINVAL);
	ASSERT_FAILS(evchat_push_buffer(NULL, buf), EINVAL);
	ASSERT_FAILS(evchat_push_buffer(chat, NULL), EINVAL);
	ASSERT_FAILS(evchat_push_file(NULL, fd, 0, -1), EINVAL);
	ASSERT_FAILS(evchat_push_file(chat, -1, 0, -1), EINVAL);
	ASSERT_FAILS(evchat_push_file(chat, fd, -1, -1), EINVAL);
	ck_assert_msg(fd_is_open(fd), "failed push_file closed the fd");
	ASSERT_FAILS(evchat_push_producer(NULL, producer_more, producer_release,
	                                  &p),
	             EINVAL);
	ASSERT_FAILS(evchat_push_producer(chat, NULL, producer_release, &p),
	             EINVAL);
	ASSERT_FAILS(evchat_close_when_done(NULL), EINVAL);
	ASSERT_FAILS(evchat_set_out_buffer_size(NULL, 100), EINVAL);
	ASSERT_FAILS(evchat_set_out_buffer_size(chat, 0), EINVAL);
	ASSERT_FAILS(evchat_set_in_buffer_size(NULL, 100), EINVAL);
	ASSERT_FAILS(evchat_set_in_buffer_size(chat, 0), EINVAL);
	ck_assert_int_eq(evchat_set_out_buffer_size(chat, 1), 0);
	ck_assert_int_eq(evchat_set_in_buffer_size(chat, 1), 0);
	evchat_discard_buffers(NULL); /* ignored */
	ck_assert_ptr_null(evchat_get_bufferevent(NULL));

	/* None of that queued anything; empty pushes are fine. */
	ck_assert_int_eq(evchat_push(chat, "", 0), 0);
	ck_assert_int_eq(evchat_push(chat, NULL, 0), 0);
	ck_assert_int_eq(evchat_push(chat, "abc", 3), 0);
	ck_assert_uint_eq(evbuffer_get_length(buf), 4);
	ck_assert_int_eq(evchat_close_when_done(chat), 0);
	expect_peer_got("abc");
	expect_refused_untouched(&p, fd);
	close(fd);
	evbuffer_free(buf);
}
END_TEST

/* A printf() of the program's own, through evchat_push_vprintf(). */
static int push_reply(struct evchat *c, const char *fmt, ...)
    EVCHAT_PRINTF(2, 3);
static int push_reply(struct evchat *c, const char *fmt, ...)
{
	va_list args;
	va_start(args, fmt);
	int r = evchat_push_vprintf(c, fmt, args);
	va_end(args);
	return r;
}

/* Formatted pushes: short ones and one past the stack room (formatted
 * twice), through both calls, in order with plain pushes; an empty one
 * sends nothing. Refusals push nothing: a NULL channel or format, a wide
 * character the C locale cannot write (EILSEQ), and a closing channel. */
START_TEST(test_push_printf)
{
	char long_key[1000];
	memset(long_key, 'k', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	ck_assert_int_eq(evchat_push_printf(chat, "VALUE %s %u %zu\r\n", "key",
	                                    7u, (size_t)5),
	                 0);
	ck_assert_int_eq(evchat_push(chat, LIT("hello\r\n")), 0);
	ck_assert_int_eq(push_reply(chat, "$%d\r\n%s\r\n", 999, long_key), 0);
	ck_assert_int_eq(evchat_push_printf(chat, "%s", ""), 0);

	const char *no_format = NULL;
	ASSERT_FAILS(evchat_push_printf(NULL, "%d", 1), EINVAL);
	/* A NULL format on purpose: no warning for it. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat"
#pragma GCC diagnostic ignored "-Wformat-security"
	ASSERT_FAILS(push_reply(chat, no_format), EINVAL);
#pragma GCC diagnostic pop
	ASSERT_FAILS(evchat_push_printf(chat, "%ls", L"\x100"), EILSEQ);
	ck_assert_int_eq(evchat_push_printf(chat, "END\r\n"), 0);
	ck_assert_int_eq(evchat_close_when_done(chat), 0);
	ASSERT_FAILS(evchat_push_printf(chat, "late\r\n"), EPIPE);

	struct evbuffer *want = evbuffer_new();
	ck_assert_ptr_nonnull(want);
	evbuffer_add_printf(want,
	                    "VALUE key 7 5\r\nhello\r\n$999\r\n%s\r\nEND\r\n",
	                    long_key);
	struct evbuffer *got = evbuffer_new();
	ck_assert_ptr_nonnull(got);
	read_peer_to_eof(&conn, got, 5000);
	assert_same_bytes(got, want);
	evbuffer_free(got);
	evbuffer_free(want);
}
END_TEST

/* fstat() refusing the fd is reported, and nothing is queued. */
START_TEST(test_push_file_bad_fd)
{
	int fd = make_file("x", 1);
	close(fd); /* now a number that names no file */
	ASSERT_FAILS(evchat_push_file(chat, fd, 0, -1), EBADF);
	ck_assert_int_eq(evchat_push(chat, "ok", 2), 0);
	ck_assert_int_eq(evchat_close_when_done(chat), 0);
	expect_peer_got("ok");
}
END_TEST

/* The same when the file has to wait behind a producer: the fd is checked
 * when pushed, not found bad later with the connection ended for it. */
START_TEST(test_push_file_bad_fd_behind_producer)
{
	static const unsigned char text[] = "p";
	struct producer p = { .data = text, .len = 1 };
	int fd = make_file("x", 1);
	close(fd);
	push_producer(&p);
	errno = 0;
	ck_assert_msg(evchat_push_file(chat, fd, 0, -1) == -1 && errno == EBADF,
	              "push_file of a closed fd behind a producer: errno %d "
	              "(%s), want -1 with EBADF",
	              errno, strerror(errno));
	ck_assert_int_eq(evchat_push(chat, "ok", 2), 0);
	ck_assert_int_eq(evchat_close_when_done(chat), 0);
	expect_peer_got("pok");
}
END_TEST

/* ---- pushes from a hook -------------------------------------------------- */

/* What a found hook does for each one-letter command line: every kind of
 * output call a hook can make between pushes, so the bytes it copies into
 * the read's reply batch keep their place among the others. */
static unsigned char hook_big[5000]; /* more than one reservation */
/* More than the room ever holds (lib/batch.c): added to the batch as is. */
static unsigned char hook_huge[1024 * 1024 + 3];
static struct producer hook_producer;
static int hook_push_after_close;

static void hook_commands(struct evchat *c, struct evbuffer *frame, void *arg)
{
	(void)arg;
	char cmd = 0;
	evbuffer_remove(frame, &cmd, 1);
	struct evbuffer *buf;
	switch (cmd) {
	case 'p':
		ck_assert_int_eq(evchat_push(c, "p1", 2), 0);
		ck_assert_int_eq(evchat_push_line(c, "x", 1), 0);
		break;
	case 'b':
		buf = evbuffer_new();
		ck_assert_ptr_nonnull(buf);
		evbuffer_add(buf, "buf", 3);
		ck_assert_int_eq(evchat_push_buffer(c, buf), 0);
		evbuffer_free(buf);
		break;
	case 'L':
		ck_assert_int_eq(evchat_push(c, hook_big, sizeof(hook_big)), 0);
		break;
	case 'H':
		ck_assert_int_eq(evchat_push_line(c, hook_huge,
		                                  sizeof(hook_huge)),
		                 0);
		break;
	case 'r': /* straight into the bufferevent, behind what was pushed */
		ck_assert_int_eq(bufferevent_write(evchat_get_bufferevent(c),
		                                   "raw", 3),
		                 0);
		break;
	case 'P':
		ck_assert_int_eq(evchat_push_producer(c, producer_more,
		                                      producer_release,
		                                      &hook_producer),
		                 0);
		break;
	case 'd':
		ck_assert_int_eq(evchat_push(c, "gone", 4), 0);
		evchat_discard_buffers(c);
		break;
	case 'c':
		ck_assert_int_eq(evchat_push(c, "bye", 3), 0);
		ck_assert_int_eq(evchat_close_when_done(c), 0);
		/* Refused after the close, though the room has space. */
		errno = 0;
		hook_push_after_close = evchat_push(c, "zz", 2) == -1 &&
		                        errno == EPIPE;
		break;
	}
}

/* Every kind of output call from inside one read's hooks, in order. */
START_TEST(test_hook_pushes_keep_order)
{
	static const unsigned char text[] = "prod";
	fill_piece(hook_big, sizeof(hook_big), 7);
	fill_piece(hook_huge, sizeof(hook_huge), 9);
	for (size_t i = 0; i < sizeof(hook_huge); i++) /* one line */
		if (hook_huge[i] == '\n')
			hook_huge[i] = 'n';
	memset(&hook_producer, 0, sizeof(hook_producer));
	hook_producer.data = text;
	hook_producer.len = 4;
	hook_push_after_close = 0;
	evchat_setcb(chat, NULL, hook_commands, output_event_cb, &rec);
	ck_assert_int_eq(evchat_set_terminator(chat, "\n", 1), 0);
	/* One write: the channel reads it all at once, one batch. */
	write_all(conn.peer, LIT("p\nb\nL\nH\np\nH\np\nr\np\nP\np\nL\nc\np\n"));

	struct evbuffer *want = evbuffer_new();
	ck_assert_ptr_nonnull(want);
	evbuffer_add(want, LIT("p1x\nbuf"));
	evbuffer_add(want, hook_big, sizeof(hook_big));
	evbuffer_add(want, hook_huge, sizeof(hook_huge));
	evbuffer_add(want, LIT("\np1x\n"));
	evbuffer_add(want, hook_huge, sizeof(hook_huge));
	evbuffer_add(want, LIT("\np1x\nrawp1x\nprodp1x\n"));
	evbuffer_add(want, hook_big, sizeof(hook_big));
	evbuffer_add(want, LIT("bye"));
	struct evbuffer *got = evbuffer_new();
	ck_assert_ptr_nonnull(got);
	read_peer_to_eof(&conn, got, 5000);
	ck_assert_uint_eq(evbuffer_get_length(got), evbuffer_get_length(want));
	ck_assert_msg(memcmp(evbuffer_pullup(got, -1),
	                     evbuffer_pullup(want, -1),
	                     evbuffer_get_length(want)) == 0,
	              "the peer got the replies out of order");
	ck_assert_int_eq(hook_push_after_close, 1);
	ck_assert_int_eq(hook_producer.nreleased, 1);
	evbuffer_free(got);
	evbuffer_free(want);
}
END_TEST

/* A discard inside a hook drops what the read's earlier hooks pushed, as
 * it drops any output not yet written (and the input after the command);
 * later pushes go out. */
START_TEST(test_hook_discard_drops_batched_pushes)
{
	evchat_setcb(chat, NULL, hook_commands, output_event_cb, &rec);
	ck_assert_int_eq(evchat_set_terminator(chat, "\n", 1), 0);
	write_all(conn.peer, LIT("p\nL\nd\np\n"));
	run_pending(base);
	write_all(conn.peer, LIT("p\nc\n"));
	expect_peer_got("p1x\nbye");
}
END_TEST

/* ---- discard_buffers ----------------------------------------------------- */

/* Output not yet written is dropped: the peer gets a prefix of what was
 * queued, then what was pushed after the discard. */
/* A pushed buffer over a few hundred bytes moves by its chains: a
 * reference stays one, so a payload sent to several channels is one copy
 * in memory, its cleanup run once per channel when that channel is done
 * with it. A small one is copied, and its cleanup runs at once. */
static unsigned char shared_payload[256 * 1024];
static int payload_cleanups;

static void count_cleanup(const void *data, size_t len, void *arg)
{
	(void)data, (void)len, (void)arg;
	payload_cleanups++;
}

static void free_when_closed(struct evchat *c, short events, void *arg)
{
	struct evchat **slot = arg;
	ck_assert_msg(!(events & EVCHAT_EVENT_ERROR), "event 0x%x",
	              (unsigned)events);
	if (events & EVCHAT_EVENT_CLOSED) {
		evchat_free(c);
		*slot = NULL;
	}
}

static void push_reference(struct evchat *c, size_t len)
{
	struct evbuffer *b = evbuffer_new();
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(evbuffer_add_reference(b, shared_payload, len,
	                                        count_cleanup, NULL),
	                 0);
	ck_assert_int_eq(evchat_push_buffer(c, b), 0);
	ck_assert_uint_eq(evbuffer_get_length(b), 0);
	evbuffer_free(b);
}

START_TEST(test_push_buffer_keeps_references)
{
	for (size_t i = 0; i < sizeof(shared_payload); i++)
		shared_payload[i] = (unsigned char)(i * 31 + i / 251);
	struct conn extra[2];
	struct evchat *chats[3] = { chat, NULL, NULL };
	evutil_socket_t peers[3] = { conn.peer, -1, -1 };
	for (int k = 1; k < 3; k++) {
		ck_assert_int_eq(conn_socketpair(&extra[k - 1], base), 0);
		chats[k] = evchat_new(extra[k - 1].bev, 0);
		ck_assert_ptr_nonnull(chats[k]);
		evchat_setcb(chats[k], NULL, NULL, free_when_closed, &chats[k]);
		peers[k] = extra[k - 1].peer;
	}

	payload_cleanups = 0;
	push_reference(chats[0], 100);
	ck_assert_int_eq(payload_cleanups, 1); /* copied */
	payload_cleanups = 0;
	for (int k = 0; k < 3; k++) {
		push_reference(chats[k], sizeof(shared_payload));
		ck_assert_int_eq(evchat_close_when_done(chats[k]), 0);
	}
	/* Nothing sent yet, and nothing copied: each channel still holds
	 * the reference. */
	ck_assert_int_eq(payload_cleanups, 0);

	for (int k = 0; k < 3; k++) {
		size_t head = k == 0 ? 100 : 0;
		struct evbuffer *got = evbuffer_new();
		ck_assert_int_eq(drain_peer_until_eof(base, peers[k], got,
		                                      10000),
		                 1);
		ck_assert_uint_eq(evbuffer_get_length(got),
		                  head + sizeof(shared_payload));
		const unsigned char *p = evbuffer_pullup(got, -1);
		ck_assert_int_eq(memcmp(p, shared_payload, head), 0);
		ck_assert_int_eq(memcmp(p + head, shared_payload,
		                        sizeof(shared_payload)),
		                 0);
		evbuffer_free(got);
	}
	/* Each close ends once its peer has closed too (TCP), and the
	 * hooks free the channels. */
	conn_close_peer(&conn);
	run_until_freed(base, &chat, 5000);
	for (int k = 1; k < 3; k++) {
		conn_close_peer(&extra[k - 1]);
		run_until_freed(base, &chats[k], 5000);
	}
	ck_assert_ptr_null(chat);
	ck_assert_ptr_null(chats[1]);
	ck_assert_ptr_null(chats[2]);
	ck_assert_int_eq(payload_cleanups, 3);
}
END_TEST

/* _i: how the short bytes come (evchat_push(), a short buffer). Bytes
 * pushed after a reference go to a chain sized for them: libevent's
 * evbuffer_add() sizes a new chain like the last one with data, so two
 * bytes after a 256 KiB reference took a 256 KiB chain (after a 10 MiB
 * value, 10 MiB, per channel). Then everything arrives, in order. */
START_TEST(test_short_push_after_reference)
{
	for (size_t i = 0; i < sizeof(shared_payload); i++)
		shared_payload[i] = (unsigned char)(i * 31 + i / 251);
	push_reference(chat, sizeof(shared_payload));
	if (_i == 0) {
		ck_assert_int_eq(evchat_push(chat, LIT("\r\n")), 0);
	} else {
		struct evbuffer *b = evbuffer_new();
		ck_assert_ptr_nonnull(b);
		ck_assert_int_eq(evbuffer_add(b, LIT("\r\n")), 0);
		ck_assert_int_eq(evchat_push_buffer(chat, b), 0);
		evbuffer_free(b);
	}
	/* The chain the two bytes went to: its room is what is left. */
	struct evbuffer *out = bufferevent_get_output(
	    evchat_get_bufferevent(chat));
	ck_assert_uint_eq(evbuffer_get_length(out), sizeof(shared_payload) + 2);
	struct evbuffer_iovec room;
	ck_assert_int_eq(evbuffer_reserve_space(out, 1, &room, 1), 1);
	ck_assert_msg(room.iov_len < 16 * 1024,
	              "a chain with %zu bytes of room for 2 bytes",
	              room.iov_len + 2);

	ck_assert_int_eq(evchat_close_when_done(chat), 0);
	struct evbuffer *got = evbuffer_new();
	ck_assert_int_eq(drain_peer_until_eof(base, conn.peer, got, 10000), 1);
	ck_assert_uint_eq(evbuffer_get_length(got), sizeof(shared_payload) + 2);
	const unsigned char *p = evbuffer_pullup(got, -1);
	ck_assert_int_eq(memcmp(p, shared_payload, sizeof(shared_payload)), 0);
	ck_assert_int_eq(memcmp(p + sizeof(shared_payload), "\r\n", 2), 0);
	evbuffer_free(got);
}
END_TEST

START_TEST(test_discard_drops_queued_output)
{
	static unsigned char data[4 * BIG_BLOCK];
	static const unsigned char text[] = "producer";
	struct producer p = { .data = text, .len = 8 };
	fill_piece(data, sizeof(data), 1);
	shrink_socket_buffers();

	ck_assert_int_eq(evchat_push(chat, data, sizeof(data)), 0);
	push_producer(&p);
	run_for(base, 50); /* the kernel takes what fits */
	evchat_discard_buffers(chat);
	ck_assert_int_eq(evchat_push(chat, "END", 3), 0);
	run_pending(base);
	ck_assert_int_eq(p.nreleased, 1);
	ck_assert_int_eq(p.ncalls, 0);
	ck_assert_int_eq(evchat_close_when_done(chat), 0);

	grow_socket_buffers();
	struct evbuffer *got = evbuffer_new();
	ck_assert_ptr_nonnull(got);
	read_peer_to_eof(&conn, got, 10000);
	size_t len = evbuffer_get_length(got);
	const unsigned char *g = evbuffer_pullup(got, -1);
	ck_assert_uint_ge(len, 3);
	ck_assert_msg(len - 3 < sizeof(data),
	              "all %zu queued bytes were sent despite the discard",
	              sizeof(data));
	ck_assert_msg(memcmp(g, data, len - 3) == 0,
	              "the bytes before the discard are not a prefix of what "
	              "was pushed");
	ck_assert_msg(memcmp(g + len - 3, "END", 3) == 0,
	              "the push after the discard did not come last");
	ck_assert_int_eq(p.ncalls, 0);
	ck_assert_int_eq(p.nreleased, 1);
	evbuffer_free(got);
}
END_TEST

/* Input gathered so far, the held-back partial terminator included, is
 * dropped (as asynchat's discard_buffers clears ac_in_buffer); the
 * terminator stays. */
START_TEST(test_discard_drops_pending_input)
{
	ck_assert_int_eq(evchat_set_terminator(chat, "\r\n", 2), 0);
	write_all(conn.peer, "abc\r", 4);
	run_pending(base);
	ck_assert_uint_eq(rec.nframes, 0);
	ck_assert_uint_ge(evbuffer_get_length(evchat_get_pending(chat)), 3);

	evchat_discard_buffers(chat);
	ck_assert_uint_eq(evbuffer_get_length(evchat_get_pending(chat)), 0);
	const void *term;
	size_t len;
	ck_assert_int_eq(evchat_get_terminator(chat, &term, &len, NULL),
	                 EVCHAT_TERM_STRING);
	ck_assert_uint_eq(len, 2);
	ck_assert_int_eq(memcmp(term, "\r\n", 2), 0);

	write_all(conn.peer, "\nxyz\r\n", 6);
	run_pending(base);
	ck_assert_uint_eq(rec.nframes, 1);
	char *frame = recorder_frame(&rec, 0);
	ck_assert_str_eq(frame, "\nxyz");
	free(frame);
	ck_assert_uint_eq(evbuffer_get_length(evchat_get_pending(chat)), 0);
}
END_TEST

Suite *output_suite(void)
{
	Suite *s = suite_create("output");

	TCase *tc = tcase_create("queue");
	tcase_add_checked_fixture(tc, setup_socketpair, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_push_order_all_kinds);
	tcase_add_test(tc, test_push_after_close_is_epipe);
	tcase_add_test(tc, test_push_invalid_arguments);
	tcase_add_test(tc, test_push_printf);
	tcase_add_test(tc, test_push_file_bad_fd);
	tcase_add_test(tc, test_push_file_bad_fd_behind_producer);
	tcase_add_test(tc, test_push_file_rest_from_offset);
	tcase_add_test(tc, test_close_when_done_empty_queue);
	tcase_add_test(tc, test_discard_drops_pending_input);
	tcase_add_test(tc, test_hook_pushes_keep_order);
	tcase_add_test(tc, test_hook_discard_drops_batched_pushes);
	tcase_add_loop_test(tc, test_short_push_after_reference, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("producers");
	tcase_add_checked_fixture(tc, setup_socketpair, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_producer_again_stalls_until_resume);
	tcase_add_test(tc, test_producer_final_bytes_with_zero);
	tcase_add_test(tc, test_producer_released_on_discard);
	tcase_add_test(tc, test_producer_released_on_free);
	tcase_add_test(tc, test_producer_failure_is_error);
	tcase_add_test(tc, test_producer_empty_positive_is_error);
	suite_add_tcase(s, tc);

	tc = tcase_create("tcp");
	tcase_add_checked_fixture(tc, setup_tcp, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_producer_memory_bounded);
	tcase_add_test(tc, test_close_when_done_flushes_large_queue);
	tcase_add_test(tc, test_discard_drops_queued_output);
	tcase_add_test(tc, test_push_buffer_keeps_references);
	suite_add_tcase(s, tc);

	return s;
}
