/*
 * consumer: the smallest program built outside the tree against an
 * installed evchat, as a user builds one (pkg-config, shared or static, or
 * CMake). It must really talk: two channels on a socketpair, one pushes a
 * line and closes when done, the other receives it framed. The exit status
 * is 0 only if the line arrived byte for byte and both ends ended cleanly.
 */
#include <stdio.h>
#include <string.h>

#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include <evchat.h>

static const char line[] = "hello from an installed evchat";

struct outcome {
	struct event_base *base;
	int lines;  /* lines received intact */
	int eof;    /* the receiver saw the sender's EOF */
	int closed; /* the sender's close finished */
	int ended;  /* channels freed */
};

static void end_channel(struct evchat *chat, struct outcome *outcome)
{
	evchat_free(chat);
	if (++outcome->ended == 2)
		event_base_loopbreak(outcome->base);
}

static void on_line(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct outcome *outcome = arg;
	size_t len = evbuffer_get_length(frame);
	(void)chat;
	if (len == sizeof(line) - 1 &&
	    memcmp(evbuffer_pullup(frame, -1), line, len) == 0)
		outcome->lines++;
	else
		fprintf(stderr, "consumer: a frame of %zu bytes that differs\n",
		        len);
}

static void on_receiver_event(struct evchat *chat, short events, void *arg)
{
	struct outcome *outcome = arg;
	if (events & EVCHAT_EVENT_EOF)
		outcome->eof = 1;
	else
		fprintf(stderr, "consumer: receiver event 0x%x\n", events);
	end_channel(chat, outcome);
}

static void on_sender_event(struct evchat *chat, short events, void *arg)
{
	struct outcome *outcome = arg;
	if (events & EVCHAT_EVENT_CLOSED)
		outcome->closed = 1;
	else
		fprintf(stderr, "consumer: sender event 0x%x\n", events);
	end_channel(chat, outcome);
}

static struct evchat *channel(struct event_base *base, evutil_socket_t fd)
{
	struct bufferevent *bev;
	struct evchat *chat;
	if (evutil_make_socket_nonblocking(fd) < 0)
		return NULL;
	bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		return NULL;
	chat = evchat_new(bev, 0); /* frees bev on failure */
	if (chat != NULL && evchat_set_terminator_line(chat, EVCHAT_EOL_CRLF)) {
		evchat_free(chat);
		return NULL;
	}
	return chat;
}

int main(void)
{
	struct outcome outcome = { NULL, 0, 0, 0, 0 };
	struct timeval limit = { 10, 0 };
	struct evchat *sender, *receiver;
	evutil_socket_t fds[2];

	outcome.base = event_base_new();
	if (outcome.base == NULL ||
	    evutil_socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0) {
		perror("consumer: setup");
		return 1;
	}
	sender = channel(outcome.base, fds[0]);
	receiver = channel(outcome.base, fds[1]);
	if (sender == NULL || receiver == NULL) {
		perror("consumer: evchat_new");
		return 1;
	}
	evchat_setcb(sender, NULL, NULL, on_sender_event, &outcome);
	evchat_setcb(receiver, NULL, on_line, on_receiver_event, &outcome);
	/* The line goes out with the sender's line ending, CRLF, which the
	 * receiver's terminator strips. */
	if (evchat_push_line(sender, line, sizeof(line) - 1) < 0 ||
	    evchat_close_when_done(sender) < 0) {
		perror("consumer: push");
		return 1;
	}
	event_base_loopexit(outcome.base, &limit); /* never hang CI */
	event_base_dispatch(outcome.base);
	event_base_free(outcome.base);

	if (outcome.lines != 1 || !outcome.eof || !outcome.closed) {
		fprintf(stderr, "consumer: lines %d, eof %d, closed %d\n",
		        outcome.lines, outcome.eof, outcome.closed);
		return 1;
	}
	/* The installed library and header are one release. */
	if (strcmp(evchat_version(), EVCHAT_VERSION_STRING) != 0 ||
	    evchat_version_number() != EVCHAT_VERSION_NUMBER) {
		fprintf(stderr, "consumer: library %s, header %s\n",
		        evchat_version(), EVCHAT_VERSION_STRING);
		return 1;
	}
	printf("consumer: received \"%s\", closed cleanly, evchat %s\n", line,
	       evchat_version());
	return 0;
}
