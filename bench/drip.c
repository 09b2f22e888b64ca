/*
 * drip: does framing cost stay linear in the frame's size?
 *
 * One big frame arrives in small pieces (1 byte each, the worst case, and
 * larger ones), then its 16-byte terminator. If scanning restarted at the
 * frame's start on every read, time per byte would grow with the frame;
 * with a resumed scan it stays flat. A second run frames many tiny frames
 * that arrive in one read. Prints figures only: it passes or fails
 * nothing, since wall time on a shared machine is noise.
 *
 *   usage: drip [MiB]     (default 16: runs MiB/2 and MiB, so the ratio
 *                          of ns/byte between the two should be about 1)
 *
 * The bytes travel through a bufferevent pair, so each write reaches the
 * channel as one read callback; the loop is run after each write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <evchat.h>

static const char terminator[] = "<<end-of-frame>>"; /* 16 bytes */

struct result {
	size_t frames;
	size_t last_len;
};

static void on_frame(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct result *r = arg;
	(void)chat;
	r->frames++;
	r->last_len = evbuffer_get_length(frame);
}

static double seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sends one frame of `size` bytes in pieces of `piece` bytes; returns the
 * nanoseconds per byte it took to frame. */
static double drip(size_t size, size_t piece)
{
	struct event_base *base = event_base_new();
	struct bufferevent *pair[2];
	if (base == NULL || bufferevent_pair_new(base, 0, pair) < 0) {
		fprintf(stderr, "drip: cannot set up a bufferevent pair\n");
		exit(1);
	}
	struct evchat *chat = evchat_new(pair[1], 0);
	struct result r = { 0, 0 };
	evchat_setcb(chat, NULL, on_frame, NULL, &r);
	evchat_set_max_frame(chat, 0);
	evchat_set_terminator(chat, terminator, strlen(terminator));

	char *chunk = malloc(piece);
	memset(chunk, 'x', piece);
	double start = seconds();
	for (size_t sent = 0; sent < size; sent += piece) {
		size_t n = size - sent < piece ? size - sent : piece;
		bufferevent_write(pair[0], chunk, n);
		event_base_loop(base, EVLOOP_NONBLOCK);
	}
	bufferevent_write(pair[0], terminator, strlen(terminator));
	event_base_loop(base, EVLOOP_NONBLOCK);
	double elapsed = seconds() - start;

	if (r.frames != 1 || r.last_len != size) {
		fprintf(stderr,
		        "drip: wrong framing: %zu frames, last %zu bytes\n",
		        r.frames, r.last_len);
		exit(1);
	}
	free(chunk);
	evchat_free(chat);
	bufferevent_free(pair[0]);
	event_base_free(base);
	return elapsed * 1e9 / (double)size;
}

/* Many tiny frames in one read. Returns nanoseconds per frame. */
static double tiny_frames(size_t count)
{
	struct event_base *base = event_base_new();
	struct bufferevent *pair[2];
	bufferevent_pair_new(base, 0, pair);
	struct evchat *chat = evchat_new(pair[1], 0);
	struct result r = { 0, 0 };
	evchat_setcb(chat, NULL, on_frame, NULL, &r);
	evchat_set_terminator(chat, "\n", 1);
	evchat_set_in_buffer_size(chat, count * 6);

	struct evbuffer *batch = evbuffer_new();
	for (size_t i = 0; i < count; i++)
		evbuffer_add(batch, "ping\n", 5);
	double start = seconds();
	bufferevent_write_buffer(pair[0], batch);
	event_base_loop(base, EVLOOP_NONBLOCK);
	double elapsed = seconds() - start;
	if (r.frames != count) {
		fprintf(stderr, "drip: %zu of %zu tiny frames\n", r.frames,
		        count);
		exit(1);
	}
	evbuffer_free(batch);
	evchat_free(chat);
	bufferevent_free(pair[0]);
	event_base_free(base);
	return elapsed * 1e9 / (double)count;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 16;
	if (mib < 2) {
		fprintf(stderr, "usage: drip [MiB >= 2]\n");
		return 2;
	}
	size_t big = mib << 20, half = big / 2;
	static const size_t pieces[] = { 1, 1024, 1 << 20 };

	printf("%-28s %12s %12s %8s\n", "one frame, 16-byte terminator",
	       "half ns/B", "full ns/B", "ratio");
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		double a = drip(half, pieces[i]);
		double b = drip(big, pieces[i]);
		char label[64];
		snprintf(label, sizeof(label), "%zu MiB in %zu-byte writes",
		         mib, pieces[i]);
		printf("%-28s %12.1f %12.1f %8.2f\n", label, a, b, b / a);
	}
	double t1 = tiny_frames(10000), t2 = tiny_frames(20000);
	printf("%-28s %12.1f %12.1f %8.2f   (ns per frame)\n",
	       "10k vs 20k 5-byte frames", t1, t2, t2 / t1);
	return 0;
}
