/*
 * framing: how fast are lines and length-prefixed frames cut, next to the
 * same work written by hand against libevent?
 *
 * Each round pushes a batch of frames (64 KiB, as one socket read would
 * bring) through a bufferevent pair into a channel whose found hook only
 * counts, and the same batch through a hand-written read callback that
 * does the least a correct framer must do: evbuffer_search (or decode a
 * header) then move the frame out with evbuffer_remove_buffer into a
 * reused buffer. Runs alternate A B A B so that drift on a shared machine
 * hits both alike; the ratio is what to read. Figures only: nothing here
 * passes or fails.
 *
 *   usage: framing [MiB per run]   (default 64)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <evchat.h>

enum mode { MODE_LF, MODE_CRLF, MODE_LENGTH, MODE_HEADER };
static const char *const mode_names[] = { "lines, LF", "lines, lenient CRLF",
	                                  "length field, 4 bytes BE",
	                                  "header decoder, MQTT" };

struct counter {
	size_t frames;
	size_t bytes;
	struct evbuffer *scratch; /* hand-written: where frames go */
};

static double seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A batch of 32-byte payload frames in the mode's wire format. */
static struct evbuffer *make_batch(enum mode mode, size_t size)
{
	static const char payload[] = "SET key:000123 value-0123456789";
	size_t plen = sizeof(payload) - 1;
	struct evbuffer *batch = evbuffer_new();
	while (evbuffer_get_length(batch) + plen + 4 <= size) {
		if (mode == MODE_LENGTH) {
			unsigned char h[4] = { 0, 0, 0, (unsigned char)plen };
			evbuffer_add(batch, h, 4);
		} else if (mode == MODE_HEADER) {
			/* PUBLISH, then the remaining length (one byte). */
			unsigned char h[2] = { 0x30, (unsigned char)plen };
			evbuffer_add(batch, h, 2);
		}
		evbuffer_add(batch, payload, plen);
		if (mode == MODE_LF)
			evbuffer_add(batch, "\n", 1);
		else if (mode == MODE_CRLF)
			evbuffer_add(batch, "\r\n", 2);
	}
	return batch;
}

static void on_frame(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct counter *c = arg;
	(void)chat;
	c->frames++;
	c->bytes += evbuffer_get_length(frame);
}

/* MQTT's fixed header: a type byte, then the remaining length in up to
 * four bytes of 7 bits, low group first. Both framers decode it with
 * this; the channel is told to strip the whole header. 1 with the
 * header's size and the body's, 0 for too few bytes, -1 if invalid. */
static int mqtt_parse(const unsigned char *b, size_t len, size_t *size,
                      size_t *body)
{
	size_t value = 0;
	for (size_t i = 1; i < len && i <= 4; i++) {
		value |= (size_t)(b[i] & 0x7f) << (7 * (i - 1));
		if ((b[i] & 0x80) == 0) {
			*size = i + 1;
			*body = value;
			return 1;
		}
	}
	return len > 4 ? -1 : 0;
}

static int mqtt_decoder(const unsigned char *bytes, size_t len,
                        struct evchat_header *header, void *arg)
{
	size_t size, body;
	(void)arg;
	int found = mqtt_parse(bytes, len, &size, &body);
	if (found == 1) {
		header->size = size;
		header->body = body;
		header->strip = size;
	}
	return found;
}

/* The hand-written framers: what a careful libevent user writes today,
 * with no per-frame allocation (the scratch buffer is reused). */
static void by_hand_lf_cb(struct bufferevent *bev, void *arg)
{
	struct counter *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (;;) {
		struct evbuffer_ptr at = evbuffer_search(in, "\n", 1, NULL);
		if (at.pos < 0)
			return;
		evbuffer_remove_buffer(in, c->scratch, (size_t)at.pos);
		evbuffer_drain(in, 1);
		c->frames++;
		c->bytes += evbuffer_get_length(c->scratch);
		evbuffer_drain(c->scratch, (size_t)-1);
	}
}

static void by_hand_crlf_cb(struct bufferevent *bev, void *arg)
{
	struct counter *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (;;) {
		struct evbuffer_ptr at = evbuffer_search(in, "\n", 1, NULL);
		if (at.pos < 0)
			return;
		size_t len = (size_t)at.pos;
		/* Lenient: a CR before the LF belongs to the ending. */
		int cr = 0;
		if (len > 0) {
			struct evbuffer_ptr before;
			char ch;
			evbuffer_ptr_set(in, &before, len - 1,
			                 EVBUFFER_PTR_SET);
			evbuffer_copyout_from(in, &before, &ch, 1);
			cr = ch == '\r';
		}
		evbuffer_remove_buffer(in, c->scratch, len - (size_t)cr);
		evbuffer_drain(in, 1 + (size_t)cr);
		c->frames++;
		c->bytes += evbuffer_get_length(c->scratch);
		evbuffer_drain(c->scratch, (size_t)-1);
	}
}

static void by_hand_length_cb(struct bufferevent *bev, void *arg)
{
	struct counter *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (;;) {
		unsigned char h[4];
		if (evbuffer_copyout(in, h, 4) < 4)
			return;
		size_t len = (size_t)h[0] << 24 | (size_t)h[1] << 16 |
		             (size_t)h[2] << 8 | h[3];
		if (evbuffer_get_length(in) < 4 + len)
			return;
		evbuffer_drain(in, 4);
		evbuffer_remove_buffer(in, c->scratch, len);
		c->frames++;
		c->bytes += evbuffer_get_length(c->scratch);
		evbuffer_drain(c->scratch, (size_t)-1);
	}
}

static void by_hand_header_cb(struct bufferevent *bev, void *arg)
{
	struct counter *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (;;) {
		unsigned char h[5];
		ev_ssize_t got = evbuffer_copyout(in, h, sizeof(h));
		size_t size, len;
		if (got < 2 || mqtt_parse(h, (size_t)got, &size, &len) != 1 ||
		    evbuffer_get_length(in) < size + len)
			return;
		evbuffer_drain(in, size);
		evbuffer_remove_buffer(in, c->scratch, len);
		c->frames++;
		c->bytes += evbuffer_get_length(c->scratch);
		evbuffer_drain(c->scratch, (size_t)-1);
	}
}

/* Pushes `total` bytes of batches through one framer; returns seconds. */
static double run(enum mode mode, int with_evchat, size_t total,
                  struct counter *c)
{
	struct event_base *base = event_base_new();
	struct bufferevent *pair[2];
	bufferevent_pair_new(base, 0, pair);
	struct evbuffer *batch = make_batch(mode, 65536);
	size_t batch_len = evbuffer_get_length(batch);
	memset(c, 0, sizeof(*c));
	struct evchat *chat = NULL;
	if (with_evchat) {
		chat = evchat_new(pair[1], 0);
		evchat_setcb(chat, NULL, on_frame, NULL, c);
		if (mode == MODE_LENGTH) {
			struct evchat_length_field field = { 0, 4, 0, 0, 4 };
			evchat_set_terminator_length(chat, &field);
		} else if (mode == MODE_HEADER) {
			evchat_set_terminator_header(chat, mqtt_decoder, 5,
			                             NULL);
		} else {
			evchat_set_terminator_line(chat, mode == MODE_LF
			                                     ? EVCHAT_EOL_LF
			                                     : EVCHAT_EOL_CRLF);
		}
	} else {
		c->scratch = evbuffer_new();
		bufferevent_data_cb cb = mode == MODE_LF     ? by_hand_lf_cb
		                         : mode == MODE_CRLF ? by_hand_crlf_cb
		                         : mode == MODE_LENGTH
		                             ? by_hand_length_cb
		                             : by_hand_header_cb;
		bufferevent_setcb(pair[1], cb, NULL, NULL, c);
		bufferevent_enable(pair[1], EV_READ);
	}

	double start = seconds();
	for (size_t sent = 0; sent < total; sent += batch_len) {
		bufferevent_write(pair[0], evbuffer_pullup(batch, -1),
		                  batch_len);
		event_base_loop(base, EVLOOP_NONBLOCK);
	}
	double elapsed = seconds() - start;

	if (chat != NULL)
		evchat_free(chat);
	else
		bufferevent_free(pair[1]);
	if (c->scratch != NULL)
		evbuffer_free(c->scratch);
	c->scratch = NULL;
	bufferevent_free(pair[0]);
	evbuffer_free(batch);
	event_base_free(base);
	return elapsed;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
	if (mib == 0)
		mib = 64;
	size_t total = mib << 20;
	printf("%u MiB of 32-byte frames per run, best of 3 A/B pairs\n",
	       (unsigned)mib);
	printf("%-26s %14s %14s %14s %8s\n", "framing", "evchat Mfr/s",
	       "by hand Mfr/s", "evchat MB/s", "ratio");
	for (int m = MODE_LF; m <= MODE_HEADER; m++) {
		double best_chat = 1e30, best_hand = 1e30;
		struct counter c1, c2;
		for (int round = 0; round < 3; round++) {
			double a = run((enum mode)m, 1, total, &c1);
			double b = run((enum mode)m, 0, total, &c2);
			if (a < best_chat)
				best_chat = a;
			if (b < best_hand)
				best_hand = b;
		}
		if (c1.frames != c2.frames || c1.bytes != c2.bytes) {
			fprintf(stderr,
			        "framing: %s disagrees: %zu/%zu frames\n",
			        mode_names[m], c1.frames, c2.frames);
			return 1;
		}
		double chat_rate = (double)c1.frames / best_chat / 1e6;
		double hand_rate = (double)c2.frames / best_hand / 1e6;
		printf("%-26s %14.2f %14.2f %14.1f %8.2f\n", mode_names[m],
		       chat_rate, hand_rate, (double)total / best_chat / 1e6,
		       chat_rate / hand_rate);
	}
	return 0;
}
