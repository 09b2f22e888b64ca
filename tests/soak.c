/*
 * The soak test: a line echo server made of evchat channels (an
 * evchat_listener, AUTOFREE) under thousands of concurrent loopback
 * connections from a client process that is made of evchat channels too.
 *
 * Each client connection sends its lines in pipelined bursts with pauses
 * between them, checks every reply byte for byte, and ends one of three
 * ways: a clean close after its last reply, a half-close right after its
 * last burst (the replies still come, then the server's EOF), or an
 * abrupt reset after a random number of replies, requests maybe still in
 * flight. Connections open and end at random for SOAK_SECONDS (default
 * 60), keeping SOAK_CONNS (default 10000) open. SOAK_SERVER_HOOK picks
 * the server's found hook: 0 the evbuffer one (the default), 1 the bytes
 * one (frames lent where they lie, in the input or in a direct read's
 * scratch), 2 both.
 *
 * Before the soak a warm-up holds all SOAK_CONNS connections open at once
 * and closes them; the server then takes its memory baseline (libevent
 * keeps tables sized by the highest descriptor, which the warm-up has
 * reached). After the soak, with every connection closed, the server
 * compares: the memory evchat itself holds must be back exactly, the
 * whole heap within 1 MiB. It passes only with zero errors and zero lost
 * or corrupted replies. The summary line gives the figures.
 *
 * The two processes need a descriptor per connection each, so the program
 * raises RLIMIT_NOFILE to the hard limit and skips (77) if that is too
 * low. The server listens on several ports so that churn does not run
 * the client out of ephemeral ports.
 */
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "evchat-internal.h"
#include "evchat.h"

#define NPORTS 4
#define MAX_LINE 120      /* bytes of a request line, without its LF */
#define MAX_REQUESTS 60   /* per connection */
#define MAX_BURST 10      /* lines sent before waiting for their replies */
#define MAX_THINK_MS 1500 /* pause between bursts */
#define MAX_CONNECTING 1000

/* AddressSanitizer's count of the heap, where present. */
size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

/* ------------------------------------------------------------------ */
/* Memory, counted for libevent and for evchat apart */

struct mem_count {
	long blocks;
	long long bytes;
};
static struct mem_count libevent_mem, evchat_mem;

static void *count_alloc(struct mem_count *m, void *p)
{
	if (p != NULL) {
		m->blocks++;
		m->bytes += (long long)malloc_usable_size(p);
	}
	return p;
}

static void count_free(struct mem_count *m, void *p)
{
	if (p != NULL) {
		m->blocks--;
		m->bytes -= (long long)malloc_usable_size(p);
		free(p);
	}
}

static void *ev_malloc(size_t n)
{
	return count_alloc(&libevent_mem, malloc(n));
}

static void *ev_realloc(void *p, size_t n)
{
	if (p == NULL)
		return ev_malloc(n);
	long long before = (long long)malloc_usable_size(p);
	void *q = realloc(p, n);
	if (q != NULL)
		libevent_mem.bytes += (long long)malloc_usable_size(q) - before;
	return q;
}

static void ev_free(void *p)
{
	count_free(&libevent_mem, p);
}

static void *lib_malloc(size_t n)
{
	return count_alloc(&evchat_mem, malloc(n));
}

static void lib_free(void *p)
{
	count_free(&evchat_mem, p);
}

/* The process's heap in use, as the allocator sees it. */
static long long heap_bytes(void)
{
	if (__sanitizer_get_current_allocated_bytes != NULL)
		return (long long)__sanitizer_get_current_allocated_bytes();
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
	return (long long)mallinfo2().uordblks;
#else
	return 0;
#endif
}

/* ------------------------------------------------------------------ */
/* Shared */

static double now_s(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static unsigned long env_ulong(const char *name, unsigned long dflt)
{
	const char *v = getenv(name);
	return v != NULL && *v != '\0' ? strtoul(v, NULL, 10) : dflt;
}

static ev_uint32_t mix(ev_uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352dU;
	x ^= x >> 15;
	x *= 0x846ca68bU;
	x ^= x >> 16;
	return x;
}

/* Request line i of connection id, which the reply must repeat: 1 to
 * MAX_LINE bytes, never a LF. */
static size_t line_for(ev_uint32_t id, ev_uint32_t i, char *buf)
{
	ev_uint32_t h = mix(id * 7919U + i * 104729U + 1);
	size_t len = 1 + h % MAX_LINE;
	for (size_t k = 0; k < len; k++) {
		h = mix(h + (ev_uint32_t)k);
		buf[k] = (char)('!' + h % 94);
	}
	return len;
}

/* What the client reports to the server process at the end. */
struct client_stats {
	unsigned long opened, connected, peak;
	unsigned long closed_clean, closed_half, aborted;
	unsigned long requests, replies;
	unsigned long long bytes; /* request and reply bytes, LFs included */
	unsigned long errors, lost, corrupted;
	unsigned long warmup_peak;
};

/* Messages on the pipes between the processes. */
#define MSG_WARMED 'w' /* client: warm-up connections all closed */
#define MSG_GO 'g'     /* server: baseline taken, start the soak */
#define MSG_DONE 'd'   /* client: stats follow */

/* ------------------------------------------------------------------ */
/* The client: connections that check every reply */

enum end_mode { END_CLOSE, END_HALF, END_RESET };

struct client;

struct client_conn {
	struct client *cl;
	struct evchat *chat;
	struct event *think;
	ev_uint32_t id;
	enum end_mode mode;
	unsigned nrequests, sent, replied, reset_after;
	unsigned connected : 1;
	size_t slot;
};

struct client {
	struct event_base *base;
	struct sockaddr_in addr[NPORTS];
	struct client_conn **conns; /* the live ones, unordered */
	size_t nconns, target, connecting;
	ev_uint32_t next_id, rng;
	int warmup; /* every connection: one request, then hold it */
	size_t warm_answered;
	int draining; /* time is up: end each connection, open no more */
	double end;
	struct client_stats st;
	unsigned long printed;
};

static void client_error(struct client_conn *cc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void client_error(struct client_conn *cc, const char *fmt, ...)
{
	struct client *cl = cc->cl;
	cl->st.errors++;
	if (cl->printed++ >= 10)
		return;
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr,
	        "soak: client connection %u (mode %d, %u sent, %u "
	        "of %u replies): %s\n",
	        (unsigned)cc->id, (int)cc->mode, cc->sent, cc->replied,
	        cc->nrequests, msg);
}

static ev_uint32_t client_rnd(struct client *cl, ev_uint32_t n)
{
	cl->rng = mix(cl->rng + 0x9e3779b9U);
	return n ? cl->rng % n : 0;
}

/* The connection is over: its channel is freed or about to be. */
static void conn_done(struct client_conn *cc)
{
	struct client *cl = cc->cl;
	if (!cc->connected)
		cl->connecting--;
	event_free(cc->think);
	struct client_conn *last = cl->conns[--cl->nconns];
	cl->conns[cc->slot] = last;
	last->slot = cc->slot;
	free(cc);
}

static void send_burst(struct client_conn *cc)
{
	struct client *cl = cc->cl;
	unsigned n = 1 + client_rnd(cl, MAX_BURST);
	if (n > cc->nrequests - cc->sent)
		n = cc->nrequests - cc->sent;
	for (unsigned k = 0; k < n; k++) {
		char line[MAX_LINE + 1];
		size_t len = line_for(cc->id, cc->sent, line);
		line[len++] = '\n';
		if (evchat_push(cc->chat, line, len) < 0) {
			client_error(cc, "push: %s", strerror(errno));
			return;
		}
		cc->sent++;
		cl->st.requests++;
		cl->st.bytes += len;
	}
	/* Half-closing right after the last request: the server reads
	 * EOF while its replies are still on the way. */
	if (cc->sent == cc->nrequests && cc->mode == END_HALF)
		evchat_shutdown_write(cc->chat);
}

static void conn_abort(struct client_conn *cc)
{
	cc->cl->st.aborted++;
	evchat_abort(cc->chat);
	conn_done(cc);
}

/* Every request sent so far is answered: go on after a pause, or end. */
static void burst_answered(struct client_conn *cc)
{
	struct client *cl = cc->cl;
	if (cl->warmup && !cl->draining)
		return; /* held until the warm-up ends */
	if (cc->sent < cc->nrequests && !cl->draining) {
		ev_uint32_t ms = client_rnd(cl, MAX_THINK_MS);
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
		evtimer_add(cc->think, &tv);
		return;
	}
	if (cc->mode == END_HALF && cc->sent == cc->nrequests)
		return; /* the server's EOF ends it */
	evchat_close_when_done(cc->chat);
}

static void think_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client_conn *cc = arg;
	(void)fd, (void)what;
	send_burst(cc);
}

static void client_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct client_conn *cc = arg;
	struct client *cl = cc->cl;
	char want[MAX_LINE];
	size_t len = evbuffer_get_length(frame);
	if (cc->replied >= cc->sent) {
		client_error(cc, "a reply to nothing");
		cl->st.corrupted++;
		return;
	}
	size_t want_len = line_for(cc->id, cc->replied, want);
	if (len != want_len ||
	    memcmp(evbuffer_pullup(frame, -1), want, len) != 0) {
		client_error(cc,
		             "reply %u: %zu bytes, want %zu, or other "
		             "bytes",
		             cc->replied, len, want_len);
		cl->st.corrupted++;
	}
	cc->replied++;
	cl->st.replies++;
	if (cl->warmup)
		cl->warm_answered++;
	cl->st.bytes += len + 1;
	if (cc->mode == END_RESET && cc->replied == cc->reset_after &&
	    !cl->warmup) {
		conn_abort(cc);
		return;
	}
	if (cc->replied == cc->sent)
		burst_answered(cc);
}

static void client_event(struct evchat *chat, short events, void *arg)
{
	struct client_conn *cc = arg;
	struct client *cl = cc->cl;
	int err = errno;
	if (events & EVCHAT_EVENT_CONNECTED) {
		cc->connected = 1;
		cl->connecting--;
		cl->st.connected++;
		send_burst(cc);
		if (cc->mode == END_RESET && cc->reset_after == 0 &&
		    !cl->warmup)
			conn_abort(cc); /* with its first requests in flight */
		return;
	}
	if (events & EVCHAT_EVENT_CLOSED) {
		if (cc->replied != cc->sent ||
		    (cc->sent != cc->nrequests && !cl->draining))
			client_error(cc, "closed with replies missing");
		cl->st.closed_clean++;
	} else if ((events & EVCHAT_EVENT_EOF) && cc->mode == END_HALF &&
	           cc->sent == cc->nrequests) {
		if (cc->replied != cc->nrequests) {
			client_error(cc, "EOF with replies missing");
			cl->st.lost += cc->nrequests - cc->replied;
		}
		cl->st.closed_half++;
	} else {
		client_error(cc, "event 0x%x: %s", (unsigned)events,
		             (events & EVCHAT_EVENT_ERROR) ? strerror(err)
		                                           : "unexpected");
		if (cc->sent > cc->replied)
			cl->st.lost += cc->sent - cc->replied;
	}
	evchat_free(chat);
	conn_done(cc);
}

static void conn_open(struct client *cl)
{
	struct client_conn *cc = calloc(1, sizeof(*cc));
	if (cc == NULL)
		return;
	cc->cl = cl;
	cc->id = cl->next_id++;
	cc->nrequests = cl->warmup ? 1 : 1 + client_rnd(cl, MAX_REQUESTS);
	ev_uint32_t m = client_rnd(cl, 10);
	cc->mode = cl->warmup ? END_CLOSE
	           : m < 6    ? END_CLOSE
	           : m < 8    ? END_HALF
	                      : END_RESET;
	cc->reset_after = client_rnd(cl, cc->nrequests);
	cc->think = evtimer_new(cl->base, think_cb, cc);
	struct bufferevent *bev = bufferevent_socket_new(cl->base, -1,
	                                                 BEV_OPT_CLOSE_ON_FREE);
	if (cc->think == NULL || bev == NULL ||
	    bufferevent_socket_connect(
	        bev, (struct sockaddr *)&cl->addr[cc->id % NPORTS],
	        sizeof(cl->addr[0])) < 0) {
		fprintf(stderr, "soak: connect: %s\n", strerror(errno));
		cl->st.errors++;
		if (bev != NULL)
			bufferevent_free(bev);
		if (cc->think != NULL)
			event_free(cc->think);
		free(cc);
		return;
	}
	cc->chat = evchat_new(bev, 0);
	if (cc->chat == NULL) {
		fprintf(stderr, "soak: evchat_new: %s\n", strerror(errno));
		cl->st.errors++;
		event_free(cc->think);
		free(cc);
		return;
	}
	evchat_setcb(cc->chat, NULL, client_found, client_event, cc);
	evchat_set_terminator_line(cc->chat, EVCHAT_EOL_LF);
	cc->slot = cl->nconns;
	cl->conns[cl->nconns++] = cc;
	cl->connecting++;
	cl->st.opened++;
}

/* Opens connections up to the target, a few at a time. */
static void top_up(struct client *cl)
{
	while (!cl->draining && cl->nconns < cl->target &&
	       cl->connecting < MAX_CONNECTING)
		conn_open(cl);
	if (cl->nconns > cl->st.peak)
		cl->st.peak = cl->nconns;
}

/* Ends every connection once its requests in flight are answered. */
static void drain(struct client *cl)
{
	cl->draining = 1;
	for (size_t i = cl->nconns; i-- > 0;) {
		struct client_conn *cc = cl->conns[i];
		if (!cc->connected)
			continue;
		if (evtimer_pending(cc->think, NULL)) {
			event_del(cc->think);
			burst_answered(cc);
		} else if (cl->warmup && cc->replied == cc->sent) {
			burst_answered(cc);
		}
	}
}

static void client_run(struct client *cl, int ms)
{
	struct timeval tv = { 0, ms * 1000 };
	event_base_loopexit(cl->base, &tv);
	event_base_loop(cl->base, 0);
}

static int run_client(int to_server, int from_server,
                      const unsigned short *ports, size_t target,
                      double seconds)
{
	struct client cl;
	memset(&cl, 0, sizeof(cl));
	cl.base = event_base_new();
	cl.target = target;
	cl.rng = (ev_uint32_t)env_ulong("SOAK_SEED", 1);
	cl.conns = calloc(target, sizeof(*cl.conns));
	if (cl.base == NULL || cl.conns == NULL)
		return 1;
	for (int i = 0; i < NPORTS; i++) {
		cl.addr[i].sin_family = AF_INET;
		cl.addr[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		cl.addr[i].sin_port = htons(ports[i]);
	}

	/* Warm-up: every connection open at once, each answered once. */
	cl.warmup = 1;
	double give_up = now_s() + 120;
	while (now_s() < give_up && cl.warm_answered < target) {
		top_up(&cl);
		client_run(&cl, 20);
	}
	cl.st.warmup_peak = cl.st.peak;
	drain(&cl);
	while (cl.nconns > 0 && now_s() < give_up)
		client_run(&cl, 20);
	char msg = MSG_WARMED;
	if (write(to_server, &msg, 1) != 1 || read(from_server, &msg, 1) != 1)
		return 1;

	/* The soak. */
	cl.warmup = 0;
	cl.draining = 0;
	cl.st.peak = 0;
	struct client_stats warm = cl.st;
	double end = now_s() + seconds;
	while (now_s() < end) {
		top_up(&cl);
		client_run(&cl, 20);
	}
	drain(&cl);
	give_up = now_s() + 60;
	while (cl.nconns > 0 && now_s() < give_up)
		client_run(&cl, 20);
	if (cl.nconns > 0) {
		fprintf(stderr, "soak: %zu client connections never ended\n",
		        cl.nconns);
		cl.st.errors += cl.nconns;
	}
	/* Report the soak alone, the warm-up's peak aside. */
	struct client_stats st = cl.st;
	st.opened -= warm.opened;
	st.connected -= warm.connected;
	st.closed_clean -= warm.closed_clean;
	st.requests -= warm.requests;
	st.replies -= warm.replies;
	st.bytes -= warm.bytes;
	msg = MSG_DONE;
	if (write(to_server, &msg, 1) != 1 ||
	    write(to_server, &st, sizeof(st)) != (ssize_t)sizeof(st))
		return 1;
	free(cl.conns);
	event_base_free(cl.base);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The server: line echo, AUTOFREE */

struct server {
	struct event_base *base;
	unsigned long hook; /* SOAK_SERVER_HOOK */
	unsigned long live, peak, accepted;
	unsigned long closed, resets, errors, frames;
	unsigned long long bytes;
};

static void server_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct server *sv = arg;
	sv->frames++;
	sv->bytes += evbuffer_get_length(frame) + 1;
	/* The reply is built in the frame and moved out in one push. */
	if (evbuffer_add(frame, "\n", 1) < 0 ||
	    evchat_push_buffer(chat, frame) < 0)
		sv->errors++;
}

/* The bytes hook's reply: the lent line and its terminator, copied. */
static void server_found_bytes(struct evchat *chat, const unsigned char *frame,
                               size_t len, void *arg)
{
	struct server *sv = arg;
	sv->frames++;
	sv->bytes += len + 1;
	if ((len > 0 && evchat_push(chat, frame, len) < 0) ||
	    evchat_push(chat, "\n", 1) < 0)
		sv->errors++;
}

static void server_event(struct evchat *chat, short events, void *arg)
{
	struct server *sv = arg;
	int err = errno;
	(void)chat;
	/* AUTOFREE frees the channel after these; after an EOF it first
	 * sends what is queued and reports CLOSED. */
	if (events & EVCHAT_EVENT_CLOSED) {
		sv->closed++;
	} else if (events & EVCHAT_EVENT_ERROR) {
		if (err == ECONNRESET || err == EPIPE) {
			sv->resets++;
		} else {
			sv->errors++;
			fprintf(stderr, "soak: server error 0x%x: %s\n",
			        (unsigned)events, strerror(err));
		}
	} else if (events & EVCHAT_EVENT_EOF) {
		return;
	} else {
		sv->errors++;
		fprintf(stderr, "soak: server event 0x%x\n", (unsigned)events);
		return;
	}
	sv->live--;
}

static void server_accept(struct evchat_listener *l, struct evchat *chat,
                          const struct sockaddr *sa, int salen, void *arg)
{
	struct server *sv = arg;
	(void)l, (void)sa, (void)salen;
	sv->accepted++;
	if (++sv->live > sv->peak)
		sv->peak = sv->live;
	if (sv->hook == 1)
		evchat_setcb_bytes(chat, NULL, server_found_bytes, server_event,
		                   sv);
	else if (sv->hook == 2)
		evchat_setcb_both(chat, NULL, server_found_bytes, server_found,
		                  server_event, sv);
	else
		evchat_setcb(chat, NULL, server_found, server_event, sv);
	evchat_set_terminator_line(chat, EVCHAT_EOL_LF);
	evchat_set_max_frame(chat, MAX_LINE);
}

static void server_accept_error(struct evchat_listener *l, int err, void *arg)
{
	struct server *sv = arg;
	(void)l;
	/* A client that reset before its channel was made. */
	if (err == ECONNABORTED || err == ECONNRESET) {
		sv->resets++;
		return;
	}
	sv->errors++;
	fprintf(stderr, "soak: accept: %s\n", strerror(err));
}

/* Runs the loop until the pipe has a message, or for up to ms. */
static int server_wait(struct server *sv, int from_client, double until)
{
	for (;;) {
		struct timeval tv = { 0, 20000 };
		event_base_loopexit(sv->base, &tv);
		event_base_loop(sv->base, 0);
		fd_set fds;
		FD_ZERO(&fds);
		FD_SET(from_client, &fds);
		struct timeval zero = { 0, 0 };
		if (select(from_client + 1, &fds, NULL, NULL, &zero) > 0)
			return 1;
		if (now_s() > until)
			return 0;
	}
}

/* Runs the loop until every server channel ended (and libevent freed
 * what it defers), or for up to 10 s. */
static void server_settle(struct server *sv)
{
	double until = now_s() + 10;
	while (sv->live > 0 && now_s() < until) {
		struct timeval tv = { 0, 10000 };
		event_base_loopexit(sv->base, &tv);
		event_base_loop(sv->base, 0);
	}
	for (int i = 0; i < 5; i++)
		event_base_loop(sv->base, EVLOOP_NONBLOCK);
}

struct memory {
	long evchat_blocks;
	long long evchat_bytes, libevent_bytes, heap;
};

static struct memory memory_now(void)
{
	struct memory m = { evchat_mem.blocks, evchat_mem.bytes,
		            libevent_mem.bytes, heap_bytes() };
	return m;
}

/* ------------------------------------------------------------------ */

static int raise_fd_limit(rlim_t need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
		printf("soak: SKIP: %zu connections need %lu descriptors per "
		       "process; the hard limit is %lu (raise it, or set "
		       "SOAK_CONNS lower)\n",
		       (size_t)(need - 64), (unsigned long)need,
		       (unsigned long)rl.rlim_max);
		return 77;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur < need) {
		rl.rlim_cur = need;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			return -1;
	}
	return 0;
}

int main(void)
{
	/* Before libevent allocates anything, as it requires. */
	event_set_mem_functions(ev_malloc, ev_realloc, ev_free);
	evchat__set_mem_functions(lib_malloc, lib_free);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	size_t target = env_ulong("SOAK_CONNS", 10000);
	double seconds = (double)env_ulong("SOAK_SECONDS", 60);
	unsigned long hook = env_ulong("SOAK_SERVER_HOOK", 0);
	static const char *const hook_names[] = { "evbuffer", "bytes", "both" };
	if (hook > 2) {
		fprintf(stderr, "soak: SOAK_SERVER_HOOK must be 0, 1 or 2\n");
		return 2;
	}
	int r = raise_fd_limit((rlim_t)target + 64);
	if (r != 0) {
		if (r < 0)
			perror("soak: RLIMIT_NOFILE");
		return r < 0 ? 1 : r;
	}

	/* The listening sockets first, so the client knows the ports; the
	 * event base after the fork, so the two processes share no epoll
	 * instance. */
	unsigned short ports[NPORTS];
	evutil_socket_t lfds[NPORTS];
	for (int i = 0; i < NPORTS; i++) {
		struct sockaddr_in sin;
		socklen_t slen = sizeof(sin);
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		lfds[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (lfds[i] < 0 ||
		    bind(lfds[i], (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
		    listen(lfds[i], 4096) < 0 ||
		    getsockname(lfds[i], (struct sockaddr *)&sin, &slen) < 0 ||
		    evutil_make_socket_nonblocking(lfds[i]) < 0) {
			perror("soak: listen");
			return 1;
		}
		ports[i] = ntohs(sin.sin_port);
	}

	int up[2], down[2];
	if (pipe(up) < 0 || pipe(down) < 0)
		return 1;
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		close(up[0]);
		close(down[1]);
		for (int i = 0; i < NPORTS; i++)
			close(lfds[i]);
		/* exit, not _exit: a leak checker looks at the client too. */
		exit(run_client(up[1], down[0], ports, target, seconds));
	}

	struct server sv;
	memset(&sv, 0, sizeof(sv));
	sv.hook = hook;
	printf("soak: the server's found hook: %s\n", hook_names[hook]);
	sv.base = event_base_new();
	if (sv.base == NULL)
		return 1;
	struct evchat_listener *listeners[NPORTS];
	for (int i = 0; i < NPORTS; i++) {
		struct evconnlistener *lev = evconnlistener_new(
		    sv.base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE, -1, lfds[i]);
		listeners[i] = lev ? evchat_listener_new(lev,
		                                         EVCHAT_OPT_AUTOFREE,
		                                         server_accept, &sv)
		                   : NULL;
		if (listeners[i] == NULL) {
			perror("soak: listener");
			kill(pid, SIGKILL);
			return 1;
		}
		evchat_listener_set_error_cb(listeners[i], server_accept_error);
	}
	close(up[1]);
	close(down[0]);
	printf("soak: %zu connections for %.0f s on ports %u %u %u %u, "
	       "client pid %d\n",
	       target, seconds, ports[0], ports[1], ports[2], ports[3],
	       (int)pid);

	double t0 = now_s();
	char msg = 0;
	if (!server_wait(&sv, up[0], now_s() + 180) ||
	    read(up[0], &msg, 1) != 1 || msg != MSG_WARMED) {
		fprintf(stderr, "soak: the warm-up did not finish\n");
		kill(pid, SIGKILL);
		return 1;
	}
	server_settle(&sv);
	unsigned long warm_peak = sv.peak, warm_accepted = sv.accepted;
	struct memory before = memory_now();
	sv.peak = sv.accepted = sv.closed = sv.resets = sv.frames = 0;
	sv.bytes = 0;
	printf("soak: warm-up: %lu connections open at once, %.1f s\n",
	       warm_peak, now_s() - t0);
	msg = MSG_GO;
	if (write(down[1], &msg, 1) != 1)
		return 1;

	double t1 = now_s();
	struct client_stats st;
	memset(&st, 0, sizeof(st));
	if (!server_wait(&sv, up[0], now_s() + seconds + 120) ||
	    read(up[0], &msg, 1) != 1 || msg != MSG_DONE ||
	    read(up[0], &st, sizeof(st)) != (ssize_t)sizeof(st)) {
		fprintf(stderr, "soak: the client did not report\n");
		kill(pid, SIGKILL);
		return 1;
	}
	double elapsed = now_s() - t1;
	int status = 0;
	waitpid(pid, &status, 0);
	server_settle(&sv);
	struct memory after = memory_now();

	printf("soak: %.1f s: %lu connections (peak %lu concurrent at the "
	       "client, %lu at the server; warm-up %lu), %lu requests, "
	       "%lu replies checked, %llu bytes; ends: %lu clean, %lu "
	       "half-closed, %lu reset; server: %lu closed, %lu resets "
	       "seen, %lu errors; client: %lu errors, %lu lost, %lu "
	       "corrupted\n",
	       elapsed, st.connected, st.peak, sv.peak, warm_peak, st.requests,
	       st.replies, st.bytes, st.closed_clean, st.closed_half,
	       st.aborted, sv.closed, sv.resets, sv.errors, st.errors, st.lost,
	       st.corrupted);
	printf("soak: memory before/after: evchat %ld/%ld blocks, %lld/%lld "
	       "bytes; libevent %lld/%lld bytes; heap %lld/%lld bytes; "
	       "%lu server channels left\n",
	       before.evchat_blocks, after.evchat_blocks, before.evchat_bytes,
	       after.evchat_bytes, before.libevent_bytes, after.libevent_bytes,
	       before.heap, after.heap, sv.live);

	int ok = 1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "soak: FAIL: the client exited with %d\n",
		        status);
		ok = 0;
	}
	if (st.errors || st.lost || st.corrupted || sv.errors) {
		fprintf(stderr, "soak: FAIL: errors, lost or corrupted "
		                "replies\n");
		ok = 0;
	}
	if (sv.resets > st.aborted) {
		fprintf(stderr,
		        "soak: FAIL: %lu resets seen by the server, "
		        "%lu made by the client\n",
		        sv.resets, st.aborted);
		ok = 0;
	}
	if (warm_peak < target || warm_accepted < target) {
		fprintf(stderr,
		        "soak: FAIL: only %lu of %zu connections "
		        "open at once\n",
		        warm_peak, target);
		ok = 0;
	}
	if (sv.live != 0 || after.evchat_blocks != before.evchat_blocks ||
	    after.evchat_bytes != before.evchat_bytes) {
		fprintf(stderr, "soak: FAIL: evchat's memory is not back to "
		                "its baseline\n");
		ok = 0;
	}
	if (after.heap > before.heap + (1 << 20) ||
	    after.libevent_bytes > before.libevent_bytes + (1 << 20)) {
		fprintf(stderr, "soak: FAIL: the heap grew by more than 1 "
		                "MiB\n");
		ok = 0;
	}
	for (int i = 0; i < NPORTS; i++)
		evchat_listener_free(listeners[i]);
	event_base_free(sv.base);
	printf("soak: %s\n", ok ? "PASS" : "FAIL");
	return ok ? 0 : 1;
}
