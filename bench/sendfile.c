/*
 * sendfile: a large file sent with evchat_push_file() beside the same file
 * sent with a plain bufferevent and evbuffer_add_file(), A B A B.
 *
 *   usage: sendfile [MiB] [ROUNDS]      (default 256 MiB, 3 rounds each)
 *
 * Each transfer goes over loopback TCP to a reader in a child process that
 * counts the bytes until EOF; the figure is the wall time from accept to
 * that EOF. Both ways end in libevent's sendfile() path; the point is that
 * the channel adds nothing measurable on top. Figures only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <evchat.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "sendfile: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* The reader: connects, counts bytes to EOF, reports the count. */
static pid_t start_reader(int port, int report)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		_exit(1);
	static char buf[1 << 20];
	long long total = 0;
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	if (write(report, &total, sizeof(total)) != (ssize_t)sizeof(total))
		_exit(1);
	_exit(n < 0);
}

struct run {
	struct event_base *base;
	struct bufferevent *plain;
	int done;
};

static void plain_written(struct bufferevent *bev, void *arg)
{
	struct run *r = arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	bufferevent_free(bev); /* closes the socket: the reader sees EOF */
	r->done = 1;
}

static void plain_event(struct bufferevent *bev, short what, void *arg)
{
	struct run *r = arg;
	(void)what;
	bufferevent_free(bev);
	r->done = -1;
}

static void chat_event(struct evchat *chat, short events, void *arg)
{
	struct run *r = arg;
	r->done = (events & EVCHAT_EVENT_CLOSED) ? 1 : -1;
	evchat_free(chat);
}

/* One transfer; returns seconds, or exits on any failure. */
static double transfer(int use_evchat, const char *path, long long size)
{
	struct run r = { event_base_new(), NULL, 0 };
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (r.base == NULL || lfd < 0 ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &len) < 0)
		die("listen");
	int report[2];
	if (pipe(report) < 0)
		die("pipe");
	pid_t reader = start_reader(ntohs(sin.sin_port), report[1]);
	int fd = accept(lfd, NULL, NULL);
	int file = open(path, O_RDONLY);
	if (fd < 0 || file < 0)
		die("accept or open");
	double start = now();
	evutil_make_socket_nonblocking(fd);
	struct bufferevent *bev = bufferevent_socket_new(r.base, fd,
	                                                 BEV_OPT_CLOSE_ON_FREE);
	if (use_evchat) {
		struct evchat *chat = evchat_new(bev, 0);
		if (chat == NULL)
			die("evchat_new");
		evchat_setcb(chat, NULL, NULL, chat_event, &r);
		if (evchat_push_file(chat, file, 0, -1) < 0 ||
		    evchat_close_when_done(chat) < 0)
			die("evchat_push_file");
	} else {
		bufferevent_setcb(bev, NULL, plain_written, plain_event, &r);
		bufferevent_enable(bev, EV_WRITE);
		if (evbuffer_add_file(bufferevent_get_output(bev), file, 0,
		                      size) < 0)
			die("evbuffer_add_file");
	}
	while (r.done == 0)
		event_base_loop(r.base, EVLOOP_ONCE);
	long long got = -1;
	if (read(report[0], &got, sizeof(got)) != (ssize_t)sizeof(got))
		die("reader");
	double secs = now() - start;
	int status;
	waitpid(reader, &status, 0);
	if (r.done != 1 || got != size || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr, "sendfile: %s sent %lld of %lld bytes\n",
		        use_evchat ? "evchat" : "plain", got, size);
		exit(1);
	}
	close(report[0]);
	close(report[1]);
	close(lfd);
	event_base_free(r.base);
	return secs;
}

int main(int argc, char **argv)
{
	long long mib = argc > 1 ? atoll(argv[1]) : 256;
	int rounds = argc > 2 ? atoi(argv[2]) : 3;
	if (mib < 1 || rounds < 1) {
		fprintf(stderr, "usage: sendfile [MiB] [ROUNDS]\n");
		return 2;
	}
	char path[] = "/tmp/evchat-sendfile-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		die("mkstemp");
	static char block[1 << 20];
	for (size_t i = 0; i < sizeof(block); i++)
		block[i] = (char)('a' + i % 26);
	for (long long i = 0; i < mib; i++)
		if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block))
			die("write");
	close(fd);
	long long size = mib << 20;
	double best[2] = { 1e9, 1e9 };
	for (int i = 0; i < rounds; i++) {
		for (int e = 0; e < 2; e++) {
			double s = transfer(e, path, size);
			if (s < best[e])
				best[e] = s;
		}
	}
	unlink(path);
	printf("file %lld MiB: evbuffer_add_file %.0f MB/s, evchat_push_file "
	       "%.0f MB/s (best of %d), ratio %.2f\n",
	       mib, size / best[0] / 1e6, size / best[1] / 1e6, rounds,
	       best[0] / best[1]);
	return 0;
}
