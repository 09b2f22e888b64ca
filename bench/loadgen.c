/*
 * loadgen: drives a line echo server and checks every byte of every reply.
 *
 *   usage: loadgen -p PORT [-c CONNS] [-n LINES] [-w WINDOW] [-s SIZE]
 *          loadgen -p PORT -F SIZE [-k CHUNK]
 *          loadgen -p PORT -I CONNS [-P]
 *
 * Echo mode (the default): each of CONNS connections sends LINES lines of
 * SIZE bytes (the newline included), keeping at most WINDOW of them
 * unanswered, and compares each reply with the line it sent. Prints one
 * line of figures: requests per second and megabytes per second each way.
 *
 * Frame mode (-F): one connection sends a single line of SIZE bytes in
 * writes of CHUNK bytes (1 by default, the worst case for a framer), then
 * reads the echo; prints nanoseconds per byte. A framer that rescans its
 * buffer on every read shows as time per byte growing with SIZE.
 *
 * Idle mode (-I): opens CONNS connections, sends one line on each and waits
 * for its echo (with -P: sends a Redis PING and waits for +PONG), prints
 * "ready", then holds them all until its standard input closes. The
 * caller reads the server's memory meanwhile.
 *
 * Any wrong byte, early close or error ends the run with exit status 1:
 * a benchmark that miscounts is worse than none. Figures only; it passes
 * or fails nothing on speed.
 *
 * The client is plain epoll with edge-triggered sockets and no allocation
 * per line, so that it costs the server under test as little CPU as it
 * can: on a two-CPU machine the two share the processors.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

struct options {
	const char *host;
	int port;
	long conns;
	long long lines;
	long window;
	long size;
	long long frame;
	long chunk;
	long idle;
	int ping; /* idle mode: Redis PING instead of a line to echo */
};

struct conn {
	int fd;
	unsigned id;
	long long sent_lines; /* lines written into the output buffer */
	long long done_lines; /* lines whose echo came back whole */
	long rx_off;          /* bytes of the current reply seen so far */
	char *out;            /* bytes generated but not yet sent */
	size_t out_len, out_off;
	char *expect; /* the line whose echo is coming */
};

static struct options opt = {
	.host = "127.0.0.1",
	.port = 0,
	.conns = 1,
	.lines = 100000,
	.window = 64,
	.size = 32,
	.chunk = 1,
};

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Line k of connection id: its number in hex, then a filler letter that
 * changes from line to line, then the newline. A lost, repeated, swapped
 * or cross-connection line shows as a mismatch. */
static void make_line(char *dst, long size, unsigned id, long long k)
{
	char digits[32];
	int n = snprintf(digits, sizeof(digits), "%u:%llx ", id,
	                 (unsigned long long)k);
	long body = size - 1;
	memset(dst, 'a' + (int)((k + id) % 26), (size_t)body);
	memcpy(dst, digits, (size_t)(n < body ? n : body));
	dst[body] = '\n';
}

static int connect_to(int nonblocking)
{
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)opt.port);
	if (inet_pton(AF_INET, opt.host, &sin.sin_addr) != 1)
		die("bad address %s", opt.host);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		die("connect to %s:%d: %s", opt.host, opt.port,
		    strerror(errno));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (nonblocking)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* Tops the connection's window up with new lines and sends what the
 * socket takes. */
static void conn_send(struct conn *c)
{
	if (c->out_off == c->out_len) {
		c->out_len = c->out_off = 0;
		while (c->sent_lines < opt.lines &&
		       c->sent_lines - c->done_lines < opt.window) {
			make_line(c->out + c->out_len, opt.size, c->id,
			          c->sent_lines++);
			c->out_len += (size_t)opt.size;
		}
	}
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off,
		                 c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			die("connection %u: send: %s", c->id, strerror(errno));
		}
		c->out_off += (size_t)n;
	}
}

/* Reads what arrived and checks it against the lines sent. Returns the
 * number of lines completed. */
static long long conn_receive(struct conn *c, char *buf, size_t cap)
{
	long long before = c->done_lines;
	for (;;) {
		ssize_t n = recv(c->fd, buf, cap, 0);
		if (n == 0)
			die("connection %u: server closed after %lld of %lld "
			    "lines",
			    c->id, c->done_lines, opt.lines);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			die("connection %u: recv: %s", c->id, strerror(errno));
		}
		const char *p = buf;
		while (n > 0) {
			if (c->done_lines >= c->sent_lines)
				die("connection %u: %zd bytes nobody asked for",
				    c->id, n);
			if (c->rx_off == 0)
				make_line(c->expect, opt.size, c->id,
				          c->done_lines);
			long take = opt.size - c->rx_off;
			if (take > n)
				take = (long)n;
			if (memcmp(p, c->expect + c->rx_off, (size_t)take) != 0)
				die("connection %u: line %lld came back wrong",
				    c->id, c->done_lines);
			c->rx_off += take;
			p += take;
			n -= take;
			if (c->rx_off == opt.size) {
				c->rx_off = 0;
				c->done_lines++;
			}
		}
	}
	return c->done_lines - before;
}

static void run_echo(void)
{
	if (opt.size < 2)
		die("-s must be at least 2 (a byte and the newline)");
	struct conn *conns = calloc((size_t)opt.conns, sizeof(*conns));
	size_t cap = (size_t)opt.window * (size_t)opt.size;
	size_t rbuf_len = 256 * 1024;
	char *rbuf = malloc(rbuf_len);
	int ep = epoll_create1(0);
	if (conns == NULL || rbuf == NULL || ep < 0)
		die("out of resources");
	for (long i = 0; i < opt.conns; i++) {
		struct conn *c = &conns[i];
		c->id = (unsigned)i;
		c->fd = connect_to(1);
		c->out = malloc(cap);
		c->expect = malloc((size_t)opt.size);
		if (c->out == NULL || c->expect == NULL)
			die("out of memory");
		struct epoll_event ev = {
			.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c
		};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
			die("epoll_ctl: %s", strerror(errno));
	}

	long long total = opt.lines * opt.conns, done = 0;
	double start = now();
	for (long i = 0; i < opt.conns; i++)
		conn_send(&conns[i]);
	struct epoll_event events[256];
	while (done < total) {
		int n = epoll_wait(ep, events, 256, 10000);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		if (n == 0)
			die("no reply for 10 s: %lld of %lld lines back", done,
			    total);
		for (int i = 0; i < n; i++) {
			struct conn *c = events[i].data.ptr;
			if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				done += conn_receive(c, rbuf, rbuf_len);
			conn_send(c);
		}
	}
	double secs = now() - start;
	double bytes = (double)total * (double)opt.size;
	printf("echo conns=%ld window=%ld size=%ld lines=%lld seconds=%.3f "
	       "req/s=%.0f MB/s=%.1f\n",
	       opt.conns, opt.window, opt.size, total, secs, total / secs,
	       bytes / secs / 1e6);
	for (long i = 0; i < opt.conns; i++) {
		close(conns[i].fd);
		free(conns[i].out);
		free(conns[i].expect);
	}
	free(conns);
	free(rbuf);
	close(ep);
}

static void send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("send: %s", strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
}

static void run_frame(void)
{
	if (opt.frame < 1 || opt.chunk < 1)
		die("-F and -k must be positive");
	int fd = connect_to(0);
	char *chunk = malloc((size_t)opt.chunk);
	char *rbuf = malloc(1 << 20);
	if (chunk == NULL || rbuf == NULL)
		die("out of memory");
	memset(chunk, 'x', (size_t)opt.chunk);
	long long body = opt.frame - 1;
	double start = now();
	for (long long sent = 0; sent < body; sent += opt.chunk) {
		long long n = body - sent < opt.chunk ? body - sent : opt.chunk;
		send_all(fd, chunk, (size_t)n);
	}
	send_all(fd, "\n", 1);
	double sent_at = now();
	long long got = 0;
	while (got < opt.frame) {
		ssize_t n = recv(fd, rbuf, 1 << 20, 0);
		if (n <= 0)
			die("frame: server closed after %lld of %lld bytes",
			    got, opt.frame);
		for (ssize_t i = 0; i < n; i++) {
			char want = got + i == opt.frame - 1 ? '\n' : 'x';
			if (rbuf[i] != want)
				die("frame: byte %lld came back wrong",
				    got + i);
		}
		got += n;
	}
	double secs = now() - start;
	printf("frame size=%lld chunk=%ld seconds=%.3f ns/B=%.1f "
	       "(sending %.3f s)\n",
	       opt.frame, opt.chunk, secs, secs * 1e9 / (double)opt.frame,
	       sent_at - start);
	close(fd);
	free(chunk);
	free(rbuf);
}

static void run_idle(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	int *fds = malloc((size_t)opt.idle * sizeof(*fds));
	if (fds == NULL)
		die("out of memory");
	char line[16], want[16], back[16];
	size_t len = sizeof(line), want_len = sizeof(line);
	for (long i = 0; i < opt.idle; i++) {
		fds[i] = connect_to(0);
		if (opt.ping) {
			memcpy(line, "PING\r\n", len = 6);
			memcpy(want, "+PONG\r\n", want_len = 7);
		} else {
			make_line(line, (long)len, (unsigned)i, 0);
			memcpy(want, line, len);
		}
		send_all(fds[i], line, len);
		size_t got = 0;
		while (got < want_len) {
			ssize_t n = recv(fds[i], back + got, want_len - got, 0);
			if (n <= 0)
				die("idle: connection %ld got no reply", i);
			got += (size_t)n;
		}
		if (memcmp(want, back, want_len) != 0)
			die("idle: connection %ld: wrong reply", i);
	}
	printf("ready %ld\n", opt.idle);
	fflush(stdout);
	char c;
	while (read(0, &c, 1) > 0)
		;
	for (long i = 0; i < opt.idle; i++)
		close(fds[i]);
	free(fds);
}

static void usage(FILE *to)
{
	fprintf(
	    to,
	    "usage: loadgen -p PORT [-H HOST] [-c CONNS] [-n LINES] "
	    "[-w WINDOW] [-s SIZE]\n"
	    "       loadgen -p PORT -F SIZE [-k CHUNK]\n"
	    "       loadgen -p PORT -I CONNS [-P]\n"
	    "  -c CONNS   connections (default 1)\n"
	    "  -n LINES   lines per connection (default 100000)\n"
	    "  -w WINDOW  unanswered lines per connection (default 64)\n"
	    "  -s SIZE    bytes per line, newline included (default 32)\n"
	    "  -F SIZE    frame mode: one line of SIZE bytes\n"
	    "  -k CHUNK   frame mode: bytes per write (default 1)\n"
	    "  -I CONNS   idle mode: hold CONNS connections until stdin "
	    "closes\n"
	    "  -P         idle mode: greet with a Redis PING, not a line\n");
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (strcmp(o, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(o, "-P") == 0) {
			opt.ping = 1;
			continue;
		}
		if (i + 1 >= argc || strlen(o) != 2 ||
		    strchr("pHcnwsFkI", o[1]) == NULL) {
			usage(stderr);
			return 2;
		}
		const char *v = argv[++i];
		if (o[1] == 'H') {
			opt.host = v;
			continue;
		}
		char *end;
		long long n = strtoll(v, &end, 10);
		if (*end != '\0' || n < 0)
			die("bad value for %s: %s", o, v);
		switch (o[1]) {
		case 'p':
			opt.port = (int)n;
			break;
		case 'c':
			opt.conns = (long)n;
			break;
		case 'n':
			opt.lines = n;
			break;
		case 'w':
			opt.window = (long)n;
			break;
		case 's':
			opt.size = (long)n;
			break;
		case 'F':
			opt.frame = n;
			break;
		case 'k':
			opt.chunk = (long)n;
			break;
		case 'I':
			opt.idle = (long)n;
			break;
		}
	}
	if (opt.port <= 0 || opt.port > 65535 || opt.conns < 1 ||
	    opt.window < 1) {
		usage(stderr);
		return 2;
	}
	if (opt.frame > 0)
		run_frame();
	else if (opt.idle > 0)
		run_idle();
	else
		run_echo();
	return 0;
}
