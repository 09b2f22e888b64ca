/*
 * Flow control: queued output is counted over every layer, the channel
 * turns unwritable above the high watermark and writable again at the low
 * one, the hook hears of it from the loop, and memory stays bounded behind
 * a peer that does not read, for producers and for a proxy alike.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

#include "helpers.h"
#include "suites.h"

/* ---- fixtures ------------------------------------------------------------ */

static struct event_base *base;
static struct conn conn;
static struct evchat *chat; /* NULL once freed */
static struct recorder rec;

static void flow_event_cb(struct evchat *c, short events, void *arg)
{
	recorder_event_cb(c, events, arg);
	/* Free on a finished close, as a user would: the peer sees EOF. */
	if (events & EVCHAT_EVENT_CLOSED) {
		ck_assert_ptr_eq(c, chat);
		evchat_free(c);
		chat = NULL;
	}
}

/* Socket buffer size for the peers of these tests. */
#define SMALL_BUFFER (16 * 1024)

static void setup_tcp(void)
{
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	ck_assert_int_eq(conn_tcp_sized(&conn, base, SMALL_BUFFER, 0), 0);
	chat = evchat_new(conn.bev, 0);
	ck_assert_ptr_nonnull(chat);
	recorder_init(&rec);
	evchat_setcb(chat, NULL, recorder_found_cb, flow_event_cb, &rec);
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

/* For hot paths: each ck_assert records its location through a pipe to
 * the runner, which costs a system call; a million of them take seconds. */
#define REQUIRE(cond, ...)                                                     \
	do {                                                                   \
		if (!(cond))                                                   \
			ck_abort_msg(__VA_ARGS__);                             \
	} while (0)

static void set_buffers(evutil_socket_t sender, evutil_socket_t receiver,
                        int size)
{
	ck_assert_int_eq(setsockopt(sender, SOL_SOCKET, SO_SNDBUF, &size,
	                            sizeof(size)),
	                 0);
	ck_assert_int_eq(setsockopt(receiver, SOL_SOCKET, SO_RCVBUF, &size,
	                            sizeof(size)),
	                 0);
}

/* The kernel holds little of a connection's data, so a peer that does not
 * read really holds the sender's output back: the peer's receive buffer is
 * made small before it connects (see conn_tcp_sized), the sender's here. */
static void shrink_send_buffer(evutil_socket_t sender)
{
	int size = SMALL_BUFFER;
	ck_assert_int_eq(setsockopt(sender, SOL_SOCKET, SO_SNDBUF, &size,
	                            sizeof(size)),
	                 0);
}

static evutil_socket_t chat_fd(void)
{
	return bufferevent_getfd(evchat_get_bufferevent(chat));
}

static size_t top_output(struct evchat *c)
{
	return evbuffer_get_length(
	    bufferevent_get_output(evchat_get_bufferevent(c)));
}

static ev_uint64_t stream_mib(void)
{
	const char *mib = getenv("EVCHAT_TEST_STREAM_MIB");
	unsigned long n = mib && *mib ? strtoul(mib, NULL, 10) : 1024;
	return n ? n : 1;
}

/* A stream whose every 8-byte word says where it is, so a lost, repeated
 * or misordered piece of any size shows at its offset. */
static ev_uint64_t stream_word(ev_uint64_t k)
{
	ev_uint64_t x = (k + 1) * UINT64_C(0x9E3779B97F4A7C15);
	return x ^ (x >> 29);
}

static void stream_fill(unsigned char *dst, ev_uint64_t off, size_t n)
{
	while (n > 0) {
		ev_uint64_t w = stream_word(off / 8);
		size_t skip = (size_t)(off % 8);
		size_t take = 8 - skip < n ? 8 - skip : n;
		memcpy(dst, (const unsigned char *)&w + skip, take);
		dst += take;
		off += take;
		n -= take;
	}
}

/* Checks n received bytes at stream offset off. */
static void stream_check(const unsigned char *got, ev_uint64_t off, size_t n,
                         unsigned char *scratch)
{
	stream_fill(scratch, off, n);
	if (memcmp(got, scratch, n) != 0) {
		size_t i = 0;
		while (got[i] == scratch[i])
			i++;
		ck_abort_msg("wrong byte at stream offset %llu",
		             (unsigned long long)(off + i));
	}
}

/* ---- a producer behind a peer that stops reading -------------------------- */

#define BIG_HIGH ((size_t)256 * 1024)
#define BIG_LOW ((size_t)128 * 1024)
/* Larger than the high mark, so the mark is what bounds the producer. */
#define BIG_OUT_BUFFER ((size_t)1 << 20)
/* Given whatever want says ("more or fewer is fine"): the bound is the
 * high mark plus one chunk. A multiple of 8, as stream_fill likes. */
#define BIG_CHUNK ((size_t)48 * 1024)
#define READ_SIZE ((size_t)1 << 20)

struct big_producer {
	ev_uint64_t total;
	ev_uint64_t produced;
	size_t most_ahead;
	unsigned long ncalls;
	int nreleased;
};

static int big_more(struct evchat *c, struct evbuffer *out, size_t want,
                    void *arg)
{
	struct big_producer *p = arg;
	size_t ahead = evchat_get_queued(c);
	p->ncalls++;
	REQUIRE(ahead < BIG_HIGH,
	        "more() asked with %zu bytes queued (high mark %zu)", ahead,
	        BIG_HIGH);
	if (ahead > p->most_ahead)
		p->most_ahead = ahead;
	ev_uint64_t left = p->total - p->produced;
	size_t n = left < BIG_CHUNK ? (size_t)left : BIG_CHUNK;
	if (n == 0)
		return 0;
	struct evbuffer_iovec vec;
	REQUIRE(evbuffer_reserve_space(out, (ev_ssize_t)n, &vec, 1) == 1,
	        "reserve_space failed");
	stream_fill(vec.iov_base, p->produced, n);
	vec.iov_len = n;
	REQUIRE(evbuffer_commit_space(out, &vec, 1) == 0,
	        "commit_space failed");
	p->produced += n;
	return (int)n;
}

static void big_release(void *arg)
{
	((struct big_producer *)arg)->nreleased++;
}

/* What one sample of the channel's memory may hold. */
static void check_bounded(const char *when)
{
	size_t queued = evchat_get_queued(chat);
	size_t out = top_output(chat);
	REQUIRE(queued <= BIG_HIGH + BIG_CHUNK,
	        "%s: %zu bytes queued, bound %zu", when, queued,
	        BIG_HIGH + BIG_CHUNK);
	REQUIRE(out <= BIG_HIGH + BIG_CHUNK,
	        "%s: output buffer holds %zu bytes, bound %zu", when, out,
	        BIG_HIGH + BIG_CHUNK);
	REQUIRE(out <= queued, "%s: output %zu above the count %zu", when, out,
	        queued);
}

START_TEST(test_stalled_peer_bounds_producer_memory)
{
	struct big_producer p = { .total = stream_mib() << 20 };
	unsigned char *buf = malloc(READ_SIZE);
	unsigned char *scratch = malloc(READ_SIZE);
	ck_assert_ptr_nonnull(buf);
	ck_assert_ptr_nonnull(scratch);
	shrink_send_buffer(chat_fd());
	ck_assert_int_eq(evchat_set_write_watermarks(chat, BIG_LOW, BIG_HIGH),
	                 0);
	ck_assert_int_eq(evchat_set_out_buffer_size(chat, BIG_OUT_BUFFER), 0);
	run_pending(base);

	size_t heap_before = heap_in_use();
	size_t heap_most = heap_before;
	ck_assert_int_eq(evchat_push_producer(chat, big_more, big_release, &p),
	                 0);
	ck_assert_int_eq(evchat_close_when_done(chat), 0);

	/* The peer reads nothing for a while: the producer must stall. */
	long long end = now_ms() + 400;
	while (now_ms() < end) {
		run_tick(base, 5000);
		check_bounded("peer not reading");
		size_t heap = heap_in_use();
		if (heap > heap_most)
			heap_most = heap;
	}
	ck_assert_msg(p.produced < p.total,
	              "all %llu bytes were produced while the peer read "
	              "nothing",
	              (unsigned long long)p.total);
	ck_assert_ptr_nonnull(chat);
	ev_uint64_t produced_stalled = p.produced;
	unsigned long calls_stalled = p.ncalls;
	run_for(base, 100);
	ck_assert_msg(p.ncalls == calls_stalled,
	              "the producer was asked %lu more times behind a full "
	              "socket",
	              p.ncalls - calls_stalled);

	/* The peer reads again: everything arrives, byte for byte. */
	set_buffers(chat_fd(), conn.peer, 1024 * 1024);
	ev_uint64_t received = 0;
	int eof = 0;
	unsigned long rounds = 0;
	end = now_ms() + 60000;
	while (!eof && now_ms() < end) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (chat != NULL)
			check_bounded("peer reading");
		if ((++rounds & 63) == 0) {
			size_t heap = heap_in_use();
			if (heap > heap_most)
				heap_most = heap;
		}
		for (;;) {
			ssize_t n = read(conn.peer, buf, READ_SIZE);
			if (n == 0) {
				eof = 1;
				break;
			}
			if (n < 0) {
				REQUIRE(errno == EAGAIN || errno == EINTR,
				        "peer read: %s", strerror(errno));
				break;
			}
			REQUIRE(received + (size_t)n <= p.total,
			        "peer got more than was produced");
			stream_check(buf, received, (size_t)n, scratch);
			received += (size_t)n;
		}
	}
	ck_assert_msg(eof, "no EOF: %llu of %llu bytes",
	              (unsigned long long)received,
	              (unsigned long long)p.total);
	ck_assert_uint_eq(received, p.total);
	ck_assert_int_eq(p.nreleased, 1);
	run_until_freed(base, &chat, 3000);
	ck_assert_ptr_null(chat);
	expect_one_event(&rec, EVCHAT_EVENT_CLOSED);
	/* The high mark, one chunk, and libevent's rounding of chains up
	 * to powers of two; a leak of the stream would be far more. */
	ck_assert_msg(heap_most - heap_before < ((size_t)2 << 20),
	              "heap grew by %zu bytes while streaming %llu",
	              heap_most - heap_before, (unsigned long long)p.total);
	printf("flow: %llu bytes, %llu produced while stalled, most queued "
	       "ahead of more() %zu, heap growth %zu\n",
	       (unsigned long long)received,
	       (unsigned long long)produced_stalled, p.most_ahead,
	       heap_most - heap_before);
	free(buf);
	free(scratch);
}
END_TEST

/* ---- the writability hook ------------------------------------------------ */

#define HOOK_LOW ((size_t)32 * 1024)
#define HOOK_HIGH ((size_t)128 * 1024)

struct hook_log {
	int calls[16];
	int now_writable[16]; /* evchat_is_writable() during the call */
	size_t queued_at[16];
	int ncalls;
	int in_call; /* set around library calls the hook must not run in */
};
static struct hook_log hooks;

static void writable_cb(struct evchat *c, int writable, void *arg)
{
	ck_assert_msg(!hooks.in_call,
	              "writable hook ran inside a call into the channel");
	ck_assert_int_lt(hooks.ncalls, 16);
	/* Calls alternate. The state of the moment is the one reported,
	 * except in the first of a pair for a change that went and came
	 * back before the loop ran (checked by the test). */
	if (hooks.ncalls > 0)
		ck_assert_int_ne(hooks.calls[hooks.ncalls - 1], writable);
	hooks.now_writable[hooks.ncalls] = evchat_is_writable(c);
	hooks.queued_at[hooks.ncalls] = evchat_get_queued(c);
	hooks.calls[hooks.ncalls++] = writable;
}

/* Pushes len bytes of the stream from offset *sent. */
static void push_stream(ev_uint64_t *sent, size_t len)
{
	unsigned char *data = malloc(len);
	ck_assert_ptr_nonnull(data);
	stream_fill(data, *sent, len);
	hooks.in_call = 1;
	ck_assert_int_eq(evchat_push(chat, data, len), 0);
	hooks.in_call = 0;
	*sent += len;
	free(data);
}

static void set_marks(size_t low, size_t high)
{
	hooks.in_call = 1;
	ck_assert_int_eq(evchat_set_write_watermarks(chat, low, high), 0);
	hooks.in_call = 0;
}

/* Reads up to max bytes at the peer, checking them against the stream. */
static size_t peer_read(ev_uint64_t *received, size_t max)
{
	unsigned char buf[4096], scratch[4096];
	size_t total = 0;
	while (total < max) {
		size_t want = max - total < sizeof(buf) ? max - total
		                                        : sizeof(buf);
		ssize_t n = read(conn.peer, buf, want);
		if (n <= 0)
			break;
		stream_check(buf, *received, (size_t)n, scratch);
		*received += (size_t)n;
		total += (size_t)n;
	}
	return total;
}

START_TEST(test_writable_hook_hysteresis)
{
	memset(&hooks, 0, sizeof(hooks));
	shrink_send_buffer(chat_fd());
	evchat_set_writable_cb(chat, writable_cb);
	ck_assert_int_eq(evchat_is_writable(chat), 1);
	set_marks(HOOK_LOW, HOOK_HIGH);
	run_pending(base);
	ck_assert_int_eq(hooks.ncalls, 0);

	/* Exactly the high mark is still writable; one byte more is not,
	 * at once, and the hook waits for the loop. */
	ev_uint64_t sent = 0, received = 0;
	push_stream(&sent, HOOK_HIGH);
	ck_assert_uint_eq(evchat_get_queued(chat), HOOK_HIGH);
	ck_assert_int_eq(evchat_is_writable(chat), 1);
	push_stream(&sent, 1);
	ck_assert_uint_eq(evchat_get_queued(chat), HOOK_HIGH + 1);
	ck_assert_int_eq(evchat_is_writable(chat), 0);
	/* Far more than the kernel holds, so output stays queued. */
	push_stream(&sent, (size_t)1 << 20);
	ck_assert_int_eq(evchat_is_writable(chat), 0);
	ck_assert_int_eq(hooks.ncalls, 0);
	run_for(base, 100);
	ck_assert_int_eq(hooks.ncalls, 1);
	ck_assert_int_eq(hooks.calls[0], 0);
	ck_assert_int_eq(hooks.now_writable[0], 0);
	size_t stuck = evchat_get_queued(chat);
	ck_assert_uint_gt(stuck, HOOK_HIGH);

	/* A flip and a flop between two runs of the loop: the state
	 * follows at once, and the hook hears both from the loop (a program
	 * may have acted on evchat_is_writable() meanwhile). */
	set_marks(stuck, 2 * stuck);
	ck_assert_int_eq(evchat_is_writable(chat), 1);
	set_marks(HOOK_LOW, HOOK_HIGH);
	ck_assert_int_eq(evchat_is_writable(chat), 0);
	ck_assert_int_eq(hooks.ncalls, 1);
	run_for(base, 50);
	ck_assert_int_eq(hooks.ncalls, 3);
	ck_assert_int_eq(hooks.calls[1], 1);
	ck_assert_int_eq(hooks.calls[2], 0);
	ck_assert_int_eq(hooks.now_writable[2], 0);

	/* The peer drains slowly: no word while between the marks, then
	 * one call with 1 at the low mark. */
	int saw_between = 0;
	long long end = now_ms() + 10000;
	while (hooks.ncalls == 3 && now_ms() < end) {
		size_t q = evchat_get_queued(chat);
		peer_read(&received, q > 2 * HOOK_HIGH ? 65536 : 2048);
		run_tick(base, 2000);
		q = evchat_get_queued(chat);
		if (hooks.ncalls == 3) {
			ck_assert_msg(evchat_is_writable(chat) == 0,
			              "writable again at %zu bytes queued "
			              "(low mark %zu)",
			              q, HOOK_LOW);
			if (q > HOOK_LOW && q <= HOOK_HIGH)
				saw_between = 1;
		}
	}
	ck_assert_int_eq(hooks.ncalls, 4);
	ck_assert_int_eq(hooks.calls[3], 1);
	ck_assert_int_eq(hooks.now_writable[3], 1);
	ck_assert_uint_le(hooks.queued_at[3], HOOK_LOW);
	ck_assert_msg(saw_between, "the queue never sat between the marks");
	ck_assert_int_eq(evchat_is_writable(chat), 1);

	/* Writable and between the marks: still writable, no word. */
	while (received < sent) {
		ck_assert_msg(now_ms() < end, "peer got %llu of %llu bytes",
		              (unsigned long long)received,
		              (unsigned long long)sent);
		peer_read(&received, 1 << 20);
		run_tick(base, 1000);
	}
	ck_assert_uint_eq(evchat_get_queued(chat), 0);
	push_stream(&sent, HOOK_LOW + 100);
	ck_assert_int_eq(evchat_is_writable(chat), 1);
	run_for(base, 30);
	ck_assert_int_eq(hooks.ncalls, 4);

	/* The other flip-flop: above high, then marks that make it
	 * writable, before the loop runs: 0 then 1. Above high whatever
	 * the kernel took of the last push. */
	push_stream(&sent, HOOK_HIGH + 1);
	ck_assert_int_eq(evchat_is_writable(chat), 0);
	set_marks((size_t)1 << 20, (size_t)2 << 20);
	ck_assert_int_eq(evchat_is_writable(chat), 1);
	while (received < sent && now_ms() < end) {
		peer_read(&received, 1 << 20);
		run_tick(base, 1000);
	}
	ck_assert_uint_eq(received, sent);
	set_marks(HOOK_LOW, HOOK_HIGH);
	run_for(base, 30);
	ck_assert_int_eq(hooks.ncalls, 6);
	ck_assert_int_eq(hooks.calls[4], 0);
	ck_assert_int_eq(hooks.calls[5], 1);
	ck_assert_int_eq(hooks.now_writable[5], 1);
	ck_assert_int_eq(evchat_is_writable(chat), 1);
	ck_assert_uint_eq(rec.nevents, 0);
}
END_TEST

START_TEST(test_watermarks_invalid)
{
	ASSERT_FAILS(evchat_set_write_watermarks(NULL, 1, 2), EINVAL);
	ASSERT_FAILS(evchat_set_write_watermarks(chat, 0, 0), EINVAL);
	ASSERT_FAILS(evchat_set_write_watermarks(chat, 4097, 4096), EINVAL);
	ck_assert_int_eq(evchat_set_write_watermarks(chat, 0, 1), 0);
	ck_assert_int_eq(evchat_set_write_watermarks(chat, 100, 100), 0);
	ck_assert_int_eq(evchat_is_writable(NULL), 0);
	ck_assert_uint_eq(evchat_get_queued(NULL), 0);
	evchat_set_writable_cb(NULL, writable_cb); /* ignored */

	/* A refused setting changed nothing: 100/100 still holds. */
	ASSERT_FAILS(evchat_set_write_watermarks(chat, 10, 5), EINVAL);
	char data[101];
	memset(data, 'x', sizeof(data));
	ck_assert_int_eq(evchat_push(chat, data, 100), 0);
	ck_assert_int_eq(evchat_is_writable(chat), 1);
	ck_assert_int_eq(evchat_push(chat, data, 1), 0);
	ck_assert_int_eq(evchat_is_writable(chat), 0);
}
END_TEST

/* A producer with nothing yet: what is pushed behind it waits in the
 * queue, and counts. */
static int stalled_more(struct evchat *c, struct evbuffer *out, size_t want,
                        void *arg)
{
	int *state = arg;
	if (*state == 0)
		return EVCHAT_AGAIN;
	evbuffer_add(out, "P", 1);
	return 0;
}

START_TEST(test_queued_counts_bytes_behind_producer)
{
	int state = 0;
	memset(&hooks, 0, sizeof(hooks));
	evchat_set_writable_cb(chat, writable_cb);
	set_marks(4096, 16384);
	ck_assert_int_eq(evchat_push_producer(chat, stalled_more, NULL, &state),
	                 0);
	run_for(base, 30);
	ck_assert_uint_eq(evchat_get_queued(chat), 0);

	char block[1000];
	memset(block, 'b', sizeof(block));
	ck_assert_int_eq(evchat_push(chat, block, sizeof(block)), 0);
	ck_assert_uint_eq(evchat_get_queued(chat), sizeof(block));
	struct evbuffer *moved = evbuffer_new();
	ck_assert_ptr_nonnull(moved);
	for (int i = 0; i < 16; i++)
		evbuffer_add(moved, block, sizeof(block));
	ck_assert_int_eq(evchat_push_buffer(chat, moved), 0);
	evbuffer_free(moved);
	ck_assert_uint_eq(evchat_get_queued(chat), 17 * sizeof(block));
	ck_assert_int_eq(evchat_is_writable(chat), 0);
	run_for(base, 30);
	ck_assert_uint_eq(evchat_get_queued(chat), 17 * sizeof(block));
	ck_assert_int_eq(hooks.ncalls, 1);
	ck_assert_int_eq(hooks.calls[0], 0);

	/* The producer finishes: everything goes, in order. */
	state = 1;
	evchat_resume(chat);
	struct evbuffer *got = evbuffer_new();
	ck_assert_ptr_nonnull(got);
	long long end = now_ms() + 3000;
	while (evbuffer_get_length(got) < 1 + 17 * sizeof(block) &&
	       now_ms() < end) {
		run_tick(base, 1000);
		while (evbuffer_read(got, conn.peer, 1 << 16) > 0)
			;
	}
	ck_assert_uint_eq(evbuffer_get_length(got), 1 + 17 * sizeof(block));
	const char *g = (const char *)evbuffer_pullup(got, -1);
	ck_assert_int_eq(g[0], 'P');
	for (size_t i = 1; i < evbuffer_get_length(got); i++)
		ck_assert_int_eq(g[i], 'b');
	ck_assert_uint_eq(evchat_get_queued(chat), 0);
	ck_assert_int_eq(hooks.ncalls, 2);
	ck_assert_int_eq(hooks.calls[1], 1);
	evbuffer_free(got);
}
END_TEST

/* ---- a proxy ------------------------------------------------------------- */

#define PROXY_LOW ((size_t)8 * 1024)
#define PROXY_HIGH ((size_t)32 * 1024)
#define PROXY_SLOW_READ 8192

/* Lines "<k> <filler>\n" of varied length, generated on both ends. */
struct lines {
	ev_uint64_t k;
	char line[160];
	size_t len, pos;
};

static void lines_next(struct lines *g)
{
	int n = snprintf(g->line, sizeof(g->line), "%llu ",
	                 (unsigned long long)g->k);
	size_t fill = (size_t)(g->k * 13 % 120);
	memset(g->line + n, 'a' + (int)(g->k % 26), fill);
	g->line[n + fill] = '\n';
	g->len = (size_t)n + fill + 1;
	g->pos = 0;
	g->k++;
}

/* The next n bytes of the stream. */
static void lines_take(struct lines *g, char *dst, size_t n)
{
	while (n > 0) {
		if (g->pos == g->len)
			lines_next(g);
		size_t take = g->len - g->pos < n ? g->len - g->pos : n;
		memcpy(dst, g->line + g->pos, take);
		g->pos += take;
		dst += take;
		n -= take;
	}
}

struct proxy {
	struct event_base *base;
	struct conn up, down;
	struct evchat *a, *b;    /* upstream, downstream channels */
	struct bufferevent *low; /* B's lower layer, if filtered */
	size_t longest_frame;
	size_t most_queued;
	unsigned long frames, pauses, resumes;
	int a_eof;
};

static void check_proxy_bound(struct proxy *px, const char *when)
{
	size_t queued = evchat_get_queued(px->b);
	size_t bound = PROXY_HIGH + px->longest_frame + 1;
	if (queued > px->most_queued)
		px->most_queued = queued;
	REQUIRE(queued <= bound,
	        "%s: %zu bytes queued downstream, "
	        "bound %zu",
	        when, queued, bound);
	/* The memory a user sees pile up, layer by layer. */
	size_t layers = top_output(px->b);
	if (px->low != NULL)
		layers += evbuffer_get_length(bufferevent_get_output(px->low));
	REQUIRE(layers <= queued,
	        "%s: layers hold %zu bytes, the "
	        "count says %zu",
	        when, layers, queued);
}

static void proxy_up_frame(struct evchat *up, struct evbuffer *frame, void *arg)
{
	struct proxy *px = arg;
	size_t len = evbuffer_get_length(frame);
	/* A paused upstream delivers nothing: the downstream was writable
	 * when this frame came. */
	REQUIRE(evchat_is_writable(px->b),
	        "a frame came while the downstream was unwritable");
	if (len > px->longest_frame)
		px->longest_frame = len;
	px->frames++;
	REQUIRE(evchat_push_buffer(px->b, frame) == 0, "push_buffer: %s",
	        strerror(errno));
	REQUIRE(evchat_push(px->b, "\n", 1) == 0, "push: %s", strerror(errno));
	check_proxy_bound(px, "after a push");
	if (!evchat_is_writable(px->b)) {
		REQUIRE(evchat_pause_input(up) == 0, "pause failed");
		px->pauses++;
	}
}

static void proxy_up_event(struct evchat *up, short events, void *arg)
{
	struct proxy *px = arg;
	ck_assert_msg(events & EVCHAT_EVENT_EOF, "upstream event 0x%x",
	              (unsigned)events);
	px->a_eof = 1;
	ck_assert_int_eq(evchat_close_when_done(px->b), 0);
}

static void proxy_down_writable(struct evchat *down, int writable, void *arg)
{
	struct proxy *px = arg;
	if (writable) {
		px->resumes++;
		REQUIRE(evchat_resume_input(px->a) == 0, "resume failed");
	}
}

static void proxy_down_event(struct evchat *down, short events, void *arg)
{
	struct proxy *px = arg;
	ck_assert_msg(events & EVCHAT_EVENT_CLOSED, "downstream event 0x%x",
	              (unsigned)events);
	evchat_free(down);
	px->b = NULL;
}

static enum bufferevent_filter_result
pass_through(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
             enum bufferevent_flush_mode mode, void *ctx)
{
	evbuffer_add_buffer(dst, src);
	return BEV_OK;
}

static void run_proxy(int filtered)
{
	struct proxy px;
	memset(&px, 0, sizeof(px));
	px.base = event_base_new();
	ck_assert_ptr_nonnull(px.base);
	/* The upstream peer keeps little in flight: the channel pauses its
	 * reading over and over, and a sender with megabytes in flight
	 * makes the kernel drop and retransmit at the paused receiver. */
	ck_assert_int_eq(conn_tcp_sized(&px.up, px.base, 0, 2 * SMALL_BUFFER),
	                 0);
	ck_assert_int_eq(conn_tcp_sized(&px.down, px.base, SMALL_BUFFER, 0), 0);
	shrink_send_buffer(bufferevent_getfd(px.down.bev));

	struct bufferevent *down_bev = px.down.bev;
	if (filtered) {
		px.low = px.down.bev;
		down_bev = bufferevent_filter_new(px.low, pass_through,
		                                  pass_through,
		                                  BEV_OPT_CLOSE_ON_FREE, NULL,
		                                  NULL);
		ck_assert_ptr_nonnull(down_bev);
	}
	px.a = evchat_new(px.up.bev, 0);
	px.b = evchat_new(down_bev, 0);
	ck_assert_ptr_nonnull(px.a);
	ck_assert_ptr_nonnull(px.b);
	evchat_setcb(px.a, NULL, proxy_up_frame, proxy_up_event, &px);
	ck_assert_int_eq(evchat_set_terminator(px.a, LIT("\n")), 0);
	evchat_setcb(px.b, NULL, NULL, proxy_down_event, &px);
	evchat_set_writable_cb(px.b, proxy_down_writable);
	ck_assert_int_eq(evchat_set_write_watermarks(px.b, PROXY_LOW,
	                                             PROXY_HIGH),
	                 0);

	/* 64 MiB by default; far less when the stream size is scaled down
	 * for slow runs. */
	ev_uint64_t total = stream_mib() << 16;
	struct lines wgen, rgen;
	memset(&wgen, 0, sizeof(wgen));
	memset(&rgen, 0, sizeof(rgen));
	static char wbuf[1 << 18], rbuf[PROXY_SLOW_READ], want[PROXY_SLOW_READ];
	size_t wlen = 0, woff = 0;
	ev_uint64_t written = 0, received = 0;
	int up_shut = 0, eof = 0;
	long long start = now_ms(), end = start + 60000;
	while (!eof && now_ms() < end) {
		/* The upstream peer writes as fast as the socket takes,
		 * whole lines, up to the total. */
		while (!up_shut) {
			if (woff == wlen) {
				if (written >= total) {
					shutdown(px.up.peer, SHUT_WR);
					up_shut = 1;
					break;
				}
				wlen = 0;
				woff = 0;
				while (wlen + 160 < sizeof(wbuf)) {
					lines_next(&wgen);
					memcpy(wbuf + wlen, wgen.line,
					       wgen.len);
					wlen += wgen.len;
				}
			}
			ssize_t n = send(px.up.peer, wbuf + woff, wlen - woff,
			                 MSG_NOSIGNAL);
			if (n <= 0) {
				REQUIRE(errno == EAGAIN || errno == EINTR,
				        "upstream send: %s", strerror(errno));
				break;
			}
			woff += (size_t)n;
			written += (size_t)n;
		}
		event_base_loop(px.base, EVLOOP_NONBLOCK);
		if (px.b != NULL)
			check_proxy_bound(&px, "in the loop");
		/* The downstream peer reads a little each time. */
		ssize_t n = read(px.down.peer, rbuf, sizeof(rbuf));
		if (n == 0) {
			eof = 1;
		} else if (n > 0) {
			lines_take(&rgen, want, (size_t)n);
			if (memcmp(rbuf, want, (size_t)n) != 0)
				ck_abort_msg("downstream byte %llu differs "
				             "(line %llu)",
				             (unsigned long long)received,
				             (unsigned long long)rgen.k);
			received += (size_t)n;
		} else {
			REQUIRE(errno == EAGAIN || errno == EINTR,
			        "downstream read: %s", strerror(errno));
			run_tick(px.base, 500);
		}
	}
	ck_assert_msg(eof, "no EOF downstream: %llu of %llu bytes",
	              (unsigned long long)received,
	              (unsigned long long)written);
	ck_assert_int_eq(px.a_eof, 1);
	ck_assert_uint_eq(received, written);
	ck_assert_uint_ge(written, total);
	ck_assert_uint_eq(px.frames, wgen.k);
	ck_assert_msg(px.pauses > 0 && px.resumes > 0,
	              "flow control never engaged (%lu pauses, %lu resumes)",
	              px.pauses, px.resumes);
	printf("proxy%s: %llu bytes in %lu lines, %lld ms, %lu pauses, most "
	       "queued %zu (high %zu, longest line %zu)\n",
	       filtered ? " (filter)" : "", (unsigned long long)received,
	       px.frames, now_ms() - start, px.pauses, px.most_queued,
	       PROXY_HIGH, px.longest_frame);

	run_until_freed(px.base, &px.b, 3000);
	ck_assert_ptr_null(px.b);
	evchat_free(px.a);
	conn_close_peer(&px.up);
	conn_close_peer(&px.down);
	event_base_free(px.base);
}

START_TEST(test_proxy_pauses_upstream)
{
	run_proxy(0);
}
END_TEST

START_TEST(test_proxy_over_filter_counts_lower_layer)
{
	run_proxy(1);
}
END_TEST

/* A channel over a pass-through filter over loopback TCP whose peer does
 * not read yet, with small socket buffers. */
static struct evchat *filtered_chat(struct event_base *b, struct conn *c)
{
	ck_assert_int_eq(conn_tcp_sized(c, b, SMALL_BUFFER, 0), 0);
	shrink_send_buffer(bufferevent_getfd(c->bev));
	struct bufferevent *f = bufferevent_filter_new(c->bev, pass_through,
	                                               pass_through,
	                                               BEV_OPT_CLOSE_ON_FREE,
	                                               NULL, NULL);
	ck_assert_ptr_nonnull(f);
	struct evchat *ch = evchat_new(f, 0);
	ck_assert_ptr_nonnull(ch);
	return ch;
}

/* The count covers what a filter moved into the layer below: with a
 * stalled peer the bytes sit there, not in the top output. */
START_TEST(test_queued_includes_lower_layer)
{
	struct event_base *b = event_base_new();
	ck_assert_ptr_nonnull(b);
	struct conn c;
	struct evchat *ch = filtered_chat(b, &c);
	struct bufferevent *f = evchat_get_bufferevent(ch);
	ck_assert_int_eq(evchat_set_write_watermarks(ch, 1000, 2000), 0);
	static char block[1 << 20];
	memset(block, 'z', sizeof(block));
	ck_assert_int_eq(evchat_push(ch, block, sizeof(block)), 0);
	run_for(b, 100);
	size_t lower = evbuffer_get_length(bufferevent_get_output(c.bev));
	size_t top = evbuffer_get_length(bufferevent_get_output(f));
	size_t queued = evchat_get_queued(ch);
	ck_assert_msg(lower > 2000, "only %zu bytes in the lower layer", lower);
	ck_assert_uint_eq(queued, top + lower);
	ck_assert_int_eq(evchat_is_writable(ch), 0);
	evchat_free(ch);
	conn_close_peer(&c);
	event_base_free(b);
}
END_TEST

/* A push on a filter moves the bytes down at once, and libevent calls the
 * channel's write callback from inside that move. The writable hook must
 * still not run inside the push: one that frees the channel there used to
 * leave the push running on freed memory (a use-after-free under ASan). */
struct free_on_unwritable {
	struct evchat *chat;
	int in_push, calls, calls_in_push;
};

static void free_when_unwritable(struct evchat *c, int writable, void *arg)
{
	struct free_on_unwritable *h = arg;
	h->calls++;
	if (h->in_push)
		h->calls_in_push++;
	if (!writable) {
		evchat_free(c);
		h->chat = NULL;
	}
}

START_TEST(test_writable_hook_not_inside_push_on_filter)
{
	struct event_base *b = event_base_new();
	ck_assert_ptr_nonnull(b);
	struct conn c;
	struct free_on_unwritable h = { filtered_chat(b, &c), 0, 0, 0 };
	evchat_setcb(h.chat, NULL, NULL, NULL, &h);
	evchat_set_writable_cb(h.chat, free_when_unwritable);
	ck_assert_int_eq(evchat_set_write_watermarks(h.chat, 1000, 2000), 0);
	run_pending(b);

	static char block[1 << 20];
	memset(block, 'w', sizeof(block));
	h.in_push = 1;
	ck_assert_int_eq(evchat_push(h.chat, block, sizeof(block)), 0);
	ck_assert_int_eq(evchat_is_writable(h.chat), 0);
	h.in_push = 0;
	ck_assert_int_eq(h.calls_in_push, 0);
	run_until_freed(b, &h.chat, 2000);
	ck_assert_ptr_null(h.chat);
	ck_assert_int_eq(h.calls, 1);
	conn_close_peer(&c);
	event_base_free(b);
}
END_TEST

/* ---- replies written from the read callback ------------------------------- */

static void echo_line(struct evchat *c, struct evbuffer *frame, void *arg)
{
	unsigned long *lines = arg;
	(*lines)++;
	REQUIRE(evbuffer_add(frame, "\n", 1) == 0, "evbuffer_add");
	REQUIRE(evchat_push_buffer(c, frame) == 0, "push_buffer: %s",
	        strerror(errno));
}

/* With EVCHAT_OPT_DIRECT_WRITE the replies of a read go straight to the
 * socket while nothing is queued, and through the bufferevent once the
 * peer falls behind; either way the peer gets every byte, in order. The
 * peer reads slowly, so both paths are taken, switching back and forth. */
START_TEST(test_direct_write_keeps_order)
{
	struct event_base *b = event_base_new();
	ck_assert_ptr_nonnull(b);
	struct conn c;
	ck_assert_int_eq(conn_tcp_sized(&c, b, SMALL_BUFFER, 0), 0);
	shrink_send_buffer(bufferevent_getfd(c.bev));
	struct evchat *ch = evchat_new(c.bev, EVCHAT_OPT_DIRECT_WRITE);
	ck_assert_ptr_nonnull(ch);
	unsigned long lines = 0;
	evchat_setcb(ch, NULL, echo_line, NULL, &lines);
	ck_assert_int_eq(evchat_set_terminator(ch, LIT("\n")), 0);

	ev_uint64_t total = stream_mib() << 13; /* 8 MiB by default */
	struct lines wgen, rgen;
	memset(&wgen, 0, sizeof(wgen));
	memset(&rgen, 0, sizeof(rgen));
	static char wbuf[1 << 16], rbuf[4096], want[4096];
	size_t wlen = 0, woff = 0;
	ev_uint64_t written = 0, received = 0;
	long long end = now_ms() + 60000;
	int slow = 1;
	while ((received < written || written < total) && now_ms() < end) {
		if (woff == wlen && written < total) {
			wlen = woff = 0;
			while (wlen + 160 < sizeof(wbuf)) {
				lines_next(&wgen);
				memcpy(wbuf + wlen, wgen.line, wgen.len);
				wlen += wgen.len;
			}
		}
		if (woff < wlen) {
			ssize_t n = send(c.peer, wbuf + woff, wlen - woff,
			                 MSG_NOSIGNAL);
			if (n > 0) {
				woff += (size_t)n;
				written += (size_t)n;
			}
		}
		event_base_loop(b, EVLOOP_NONBLOCK);
		/* Slow for a while, then fast, and so on. */
		if (received / (512 * 1024) % 2 == 0)
			slow = 1;
		else
			slow = 0;
		ssize_t n = read(c.peer, rbuf, slow ? 512 : sizeof(rbuf));
		if (n > 0) {
			lines_take(&rgen, want, (size_t)n);
			if (memcmp(rbuf, want, (size_t)n) != 0)
				ck_abort_msg(
				    "reply byte %llu differs (line %llu)",
				    (unsigned long long)received,
				    (unsigned long long)rgen.k);
			received += (size_t)n;
		} else {
			run_tick(b, 200);
		}
	}
	ck_assert_uint_eq(received, written);
	ck_assert_uint_ge(written, total);
	ck_assert_uint_eq(lines, wgen.k);
	printf("direct: %llu bytes in %lu lines echoed in order\n",
	       (unsigned long long)received, lines);
	evchat_free(ch);
	conn_close_peer(&c);
	event_base_free(b);
}
END_TEST

/* A read's replies that rise above the high watermark and that a direct
 * write then sends at once: the writable hook hears both changes, 0 then
 * 1, as it does when the loop writes them. The hooks never ask
 * evchat_is_writable(), which would count the pushes itself. */
struct blip {
	int calls[4];
	int ncalls;
	int frames;
};

static void blip_writable(struct evchat *c, int writable, void *arg)
{
	struct blip *b = arg;
	(void)c;
	ck_assert_int_lt(b->ncalls, 4);
	b->calls[b->ncalls++] = writable;
}

static void blip_push(struct evchat *c, struct blip *b)
{
	static char reply[1000];
	memset(reply, 'b', sizeof(reply));
	b->frames++;
	ck_assert_int_eq(evchat_push(c, reply, sizeof(reply)), 0);
}

static void blip_found(struct evchat *c, struct evbuffer *frame, void *arg)
{
	evbuffer_drain(frame, (size_t)-1);
	blip_push(c, arg);
}

static void blip_found_bytes(struct evchat *c, const unsigned char *frame,
                             size_t len, void *arg)
{
	(void)frame, (void)len;
	blip_push(c, arg);
}

static void run_blip(int flags, int bytes_hook)
{
	struct event_base *b = event_base_new();
	ck_assert_ptr_nonnull(b);
	struct conn c;
	ck_assert_int_eq(conn_tcp_sized(&c, b, SMALL_BUFFER, 0), 0);
	struct evchat *ch = evchat_new(c.bev, flags);
	ck_assert_ptr_nonnull(ch);
	struct blip bl;
	memset(&bl, 0, sizeof(bl));
	if (bytes_hook)
		evchat_setcb_bytes(ch, NULL, blip_found_bytes, NULL, &bl);
	else
		evchat_setcb(ch, NULL, blip_found, NULL, &bl);
	evchat_set_writable_cb(ch, blip_writable);
	ck_assert_int_eq(evchat_set_terminator(ch, LIT("\n")), 0);
	ck_assert_int_eq(evchat_set_write_watermarks(ch, 10, 100), 0);
	run_for(b, 20);
	ck_assert_int_eq(bl.ncalls, 0); /* setting them told nothing */

	write_all(c.peer, "x\n", 2);
	unsigned char buf[4096];
	size_t received = 0;
	long long end = now_ms() + 5000;
	while ((received < 1000 || bl.ncalls < 2) && now_ms() < end) {
		run_tick(b, 200);
		ssize_t n = recv(c.peer, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0)
			received += (size_t)n;
	}
	ck_assert_int_eq(bl.frames, 1);
	ck_assert_uint_eq(received, 1000);
	ck_assert_msg(bl.ncalls == 2, "flags %d, %s hook: %d writable calls",
	              flags, bytes_hook ? "bytes" : "evbuffer", bl.ncalls);
	ck_assert_int_eq(bl.calls[0], 0);
	ck_assert_int_eq(bl.calls[1], 1);
	ck_assert_int_eq(evchat_is_writable(ch), 1);
	evchat_free(ch);
	conn_close_peer(&c);
	event_base_free(b);
}

START_TEST(test_writable_hook_hears_rise_sent_at_once)
{
	static const int flags[] = { 0, EVCHAT_OPT_DIRECT_WRITE,
		                     EVCHAT_OPT_DIRECT_WRITE |
		                         EVCHAT_OPT_DIRECT_READ };
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		run_blip(flags[i], 0);
		run_blip(flags[i], 1);
	}
}
END_TEST

/* Inside the input loop a hook's pushes are batched, yet
 * evchat_is_writable() from a hook tells the state they made, whichever
 * push made them, frame after frame of one read; and asking twice, with
 * no push between, tells the same. */
struct asked {
	int before[8], after[8], again[8];
	int n;
};

static void push_then_ask(struct evchat *c, struct evbuffer *frame, void *arg)
{
	struct asked *a = arg;
	static char reply[300];
	memset(reply, 'r', sizeof(reply));
	evbuffer_drain(frame, (size_t)-1);
	ck_assert_int_lt(a->n, 8);
	a->before[a->n] = evchat_is_writable(c);
	int r;
	switch (a->n % 3) {
	case 0:
		r = evchat_push(c, reply, sizeof(reply));
		break;
	case 1: /* and the terminator, "\n" */
		r = evchat_push_line(c, reply, sizeof(reply) - 1);
		break;
	default: {
		struct evbuffer *b = evbuffer_new();
		ck_assert_ptr_nonnull(b);
		evbuffer_add(b, reply, sizeof(reply));
		r = evchat_push_buffer(c, b);
		evbuffer_free(b);
		break;
	}
	}
	ck_assert_int_eq(r, 0);
	a->after[a->n] = evchat_is_writable(c);
	a->again[a->n] = evchat_is_writable(c);
	a->n++;
}

START_TEST(test_writable_in_hook_tells_its_pushes)
{
	struct asked a;
	memset(&a, 0, sizeof(a));
	evchat_setcb(chat, NULL, push_then_ask, flow_event_cb, &a);
	ck_assert_int_eq(evchat_set_terminator(chat, LIT("\n")), 0);
	set_marks(100, 1000);
	/* One write, so one read: every frame's pushes are batched. */
	write_all(conn.peer, "1\n2\n3\n4\n5\n6\n", 12);
	long long end = now_ms() + 5000;
	while (a.n < 6 && now_ms() < end)
		run_tick(base, 1000);
	ck_assert_int_eq(a.n, 6);
	/* 300 bytes a frame: above 1000 after the fourth, and it stays so
	 * until the loop has written them out. */
	static const int want_after[6] = { 1, 1, 1, 0, 0, 0 };
	for (int i = 0; i < 6; i++) {
		ck_assert_msg(a.after[i] == want_after[i],
		              "frame %d: writable %d after its push", i + 1,
		              a.after[i]);
		ck_assert_int_eq(a.again[i], a.after[i]);
		ck_assert_int_eq(a.before[i], i == 0 ? 1 : a.after[i - 1]);
	}
	/* Out of the loop, the peer reads them all and it is writable. */
	ev_uint64_t received = 0;
	unsigned char buf[4096];
	end = now_ms() + 5000;
	while (received < 6 * 300 && now_ms() < end) {
		run_tick(base, 1000);
		ssize_t n = recv(conn.peer, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0)
			received += (size_t)n;
	}
	ck_assert_uint_eq(received, 6 * 300);
	run_for(base, 20);
	ck_assert_int_eq(evchat_is_writable(chat), 1);
}
END_TEST

/* A hook that writes to the bufferevent itself (after
 * evchat_get_bufferevent(), as documented) sees those bytes counted by
 * evchat_is_writable(), as it sees its pushes. */
static void write_direct_then_ask(struct evchat *c, struct evbuffer *frame,
                                  void *arg)
{
	int *writable = arg;
	static char block[1000];
	memset(block, 'd', sizeof(block));
	evbuffer_drain(frame, (size_t)-1);
	ck_assert_int_eq(evchat_is_writable(c), 1);
	ck_assert_int_eq(bufferevent_write(evchat_get_bufferevent(c), block,
	                                   sizeof(block)),
	                 0);
	*writable = evchat_is_writable(c);
}

START_TEST(test_writable_in_hook_counts_direct_writes)
{
	int writable = -1;
	evchat_setcb(chat, NULL, write_direct_then_ask, flow_event_cb,
	             &writable);
	ck_assert_int_eq(evchat_set_terminator(chat, LIT("\n")), 0);
	set_marks(50, 100);
	write_all(conn.peer, "x\n", 2);
	long long end = now_ms() + 5000;
	while (writable < 0 && now_ms() < end)
		run_tick(base, 1000);
	ck_assert_int_eq(writable, 0);
}
END_TEST

Suite *flow_suite(void)
{
	Suite *s = suite_create("flow");

	TCase *tc = tcase_create("watermarks");
	tcase_add_checked_fixture(tc, setup_tcp, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_watermarks_invalid);
	tcase_add_test(tc, test_writable_hook_hysteresis);
	tcase_add_test(tc, test_queued_counts_bytes_behind_producer);
	tcase_add_test(tc, test_queued_includes_lower_layer);
	tcase_add_test(tc, test_writable_hook_not_inside_push_on_filter);
	tcase_add_test(tc, test_writable_in_hook_tells_its_pushes);
	tcase_add_test(tc, test_writable_in_hook_counts_direct_writes);
	tcase_add_test(tc, test_writable_hook_hears_rise_sent_at_once);
	suite_add_tcase(s, tc);

	tc = tcase_create("memory");
	tcase_add_checked_fixture(tc, setup_tcp, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_stalled_peer_bounds_producer_memory);
	suite_add_tcase(s, tc);

	tc = tcase_create("proxy");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_proxy_pauses_upstream);
	tcase_add_test(tc, test_proxy_over_filter_counts_lower_layer);
	suite_add_tcase(s, tc);

	tc = tcase_create("direct");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_direct_write_keeps_order);
	suite_add_tcase(s, tc);

	return s;
}
