/*
 * The listener helper: accepted connections arrive as working channels,
 * through the user's bufferevent hook when set; freeing is safe from the
 * accept hook; and running out of descriptors neither spins the loop nor
 * floods the error hook, and every waiting client is served once
 * descriptors are back.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <check.h>
#include <event2/listener.h>

#include "helpers.h"
#include "suites.h"

#define MAX_CLIENTS 64

/* ---- a small echo server ------------------------------------------------- */

struct server {
	struct event_base *base;
	struct evchat_listener *listener; /* NULL once freed */
	struct sockaddr_in addr;
	struct evchat *chats[MAX_CLIENTS];
	size_t nchats;
	int naccepted;
	int nmade;       /* bufferevent hook calls */
	int refuse_from; /* the hook refuses from this call on (1-based) */
	int nerrors;
	int last_error;
	int free_listener_in_accept;
	int free_chat_in_accept;
	int bad_addr; /* an accept hook saw a wrong address */
};

static struct server srv;
static evutil_socket_t clients[MAX_CLIENTS];
static size_t nclients;
static struct rlimit saved_limit;
static int limit_lowered;

static void echo_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	evchat_push_buffer(chat, frame);
	evchat_push(chat, "\n", 1);
}

static void on_accept(struct evchat_listener *l, struct evchat *chat,
                      const struct sockaddr *addr, int addrlen, void *arg)
{
	struct server *s = arg;
	ck_assert_ptr_eq(l, s->listener);
	s->naccepted++;
	/* Copied out: a struct sockaddr promises less alignment. */
	struct sockaddr_in sin;
	if (addrlen == (int)sizeof(sin))
		memcpy(&sin, addr, sizeof(sin));
	if (addrlen != (int)sizeof(sin) || sin.sin_family != AF_INET ||
	    sin.sin_addr.s_addr != htonl(INADDR_LOOPBACK))
		s->bad_addr = 1;
	if (s->free_listener_in_accept) {
		evchat_listener_free(l);
		s->listener = NULL;
	}
	if (s->free_chat_in_accept) {
		evchat_free(chat);
		return;
	}
	ck_assert_uint_lt(s->nchats, MAX_CLIENTS);
	s->chats[s->nchats++] = chat;
	evchat_setcb(chat, NULL, echo_found, NULL, s);
	ck_assert_int_eq(evchat_set_terminator(chat, LIT("\n")), 0);
}

static void on_error(struct evchat_listener *l, int err, void *arg)
{
	struct server *s = arg;
	s->nerrors++;
	s->last_error = err;
}

/* Output filter of the bufferevent hook: shouts, so the echo proves the
 * hook's bufferevent carried it. */
static enum bufferevent_filter_result
shout(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
      enum bufferevent_flush_mode mode, void *ctx)
{
	size_t n = evbuffer_get_length(src);
	if (n == 0)
		return BEV_NEED_MORE;
	unsigned char *p = evbuffer_pullup(src, -1);
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)toupper(p[i]);
	evbuffer_add_buffer(dst, src);
	return BEV_OK;
}

static enum bufferevent_filter_result
pass(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
     enum bufferevent_flush_mode mode, void *ctx)
{
	if (evbuffer_get_length(src) == 0)
		return BEV_NEED_MORE;
	evbuffer_add_buffer(dst, src);
	return BEV_OK;
}

static struct bufferevent *make_shouting(struct event_base *base,
                                         evutil_socket_t fd, void *arg)
{
	struct server *s = arg;
	s->nmade++;
	if (s->refuse_from && s->nmade >= s->refuse_from) {
		evutil_closesocket(fd);
		return NULL;
	}
	struct bufferevent *bev = bufferevent_socket_new(base, fd,
	                                                 BEV_OPT_CLOSE_ON_FREE);
	ck_assert_ptr_nonnull(bev);
	struct bufferevent *f = bufferevent_filter_new(bev, pass, shout,
	                                               BEV_OPT_CLOSE_ON_FREE,
	                                               NULL, NULL);
	ck_assert_ptr_nonnull(f);
	return f;
}

static void setup(void)
{
	memset(&srv, 0, sizeof(srv));
	nclients = 0;
	limit_lowered = 0;
	srv.base = event_base_new();
	ck_assert_ptr_nonnull(srv.base);
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct evconnlistener *lev = evconnlistener_new_bind(
	    srv.base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
	    (struct sockaddr *)&sin, sizeof(sin));
	ck_assert_ptr_nonnull(lev);
	socklen_t len = sizeof(srv.addr);
	ck_assert_int_eq(getsockname(evconnlistener_get_fd(lev),
	                             (struct sockaddr *)&srv.addr, &len),
	                 0);
	srv.listener = evchat_listener_new(lev, 0, on_accept, &srv);
	ck_assert_ptr_nonnull(srv.listener);
	ck_assert_ptr_eq(evchat_listener_get_evconnlistener(srv.listener), lev);
	evchat_listener_set_error_cb(srv.listener, on_error);
}

static void unplug(void);

static void restore_limit(void)
{
	if (limit_lowered) {
		setrlimit(RLIMIT_NOFILE, &saved_limit);
		limit_lowered = 0;
	}
	unplug();
}

static void teardown(void)
{
	/* Without fork (CK_FORK=no, valgrind) the limit is the runner's
	 * own: give it back even after a failure. */
	restore_limit();
	for (size_t i = 0; i < srv.nchats; i++)
		evchat_free(srv.chats[i]);
	evchat_listener_free(srv.listener);
	for (size_t i = 0; i < nclients; i++)
		if (clients[i] >= 0)
			close(clients[i]);
	nclients = 0;
	event_base_free(srv.base);
}

/* ---- clients ------------------------------------------------------------- */

/* A connected client (the kernel completes the handshake from the
 * listener's backlog, before any accept), non-blocking afterwards.
 * Returns -1 with errno if the connection was refused. */
static evutil_socket_t client_connect(void)
{
	evutil_socket_t fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	if (connect(fd, (struct sockaddr *)&srv.addr, sizeof(srv.addr)) < 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	evutil_make_socket_nonblocking(fd);
	return fd;
}

static evutil_socket_t add_client(void)
{
	ck_assert_uint_lt(nclients, MAX_CLIENTS);
	evutil_socket_t fd = client_connect();
	ck_assert_msg(fd >= 0, "connect: %s", strerror(errno));
	clients[nclients++] = fd;
	return fd;
}

/* Reads from fd, running the loop, until it has len bytes, EOF, an error
 * or ms pass. Returns the bytes (malloc'd, NUL-terminated); *eof tells
 * whether the stream ended. */
static char *client_read(evutil_socket_t fd, size_t len, int ms, int *eof)
{
	char *buf = calloc(1, len + 1);
	ck_assert_ptr_nonnull(buf);
	size_t have = 0;
	*eof = 0;
	long long end = now_ms() + ms;
	while (have < len && !*eof && now_ms() < end) {
		ssize_t n = recv(fd, buf + have, len - have, 0);
		if (n > 0)
			have += (size_t)n;
		else if (n == 0 || (errno != EAGAIN && errno != EINTR))
			*eof = 1;
		else
			run_tick(srv.base, 2000);
	}
	return buf;
}

static void expect_echo(evutil_socket_t fd, const char *want, int ms)
{
	int eof;
	char *got = client_read(fd, strlen(want), ms, &eof);
	ck_assert_msg(strcmp(got, want) == 0, "client got \"%s\", want \"%s\"",
	              got, want);
	free(got);
}

static void expect_closed(evutil_socket_t fd, int ms)
{
	int eof;
	char *got = client_read(fd, 1, ms, &eof);
	ck_assert_msg(eof && got[0] == '\0',
	              "the connection should have ended (got \"%s\")", got);
	free(got);
}

/* ---- accepting ----------------------------------------------------------- */

START_TEST(test_echo_several_clients)
{
	char line[32];
	for (int i = 0; i < 5; i++) {
		evutil_socket_t fd = add_client();
		snprintf(line, sizeof(line), "hello %d\n", i);
		write_all(fd, line, strlen(line));
	}
	for (int i = 4; i >= 0; i--) {
		snprintf(line, sizeof(line), "hello %d\n", i);
		expect_echo(clients[i], line, 3000);
	}
	/* A second round on the same connections. */
	for (int i = 0; i < 5; i++)
		write_all(clients[i], LIT("again\n"));
	for (int i = 0; i < 5; i++)
		expect_echo(clients[i], "again\n", 3000);
	ck_assert_int_eq(srv.naccepted, 5);
	ck_assert_int_eq(srv.nerrors, 0);
	ck_assert_int_eq(srv.bad_addr, 0);
}
END_TEST

START_TEST(test_bufferevent_hook_is_used)
{
	evchat_listener_set_bufferevent_cb(srv.listener, make_shouting);
	evutil_socket_t a = add_client();
	write_all(a, LIT("quiet words\n"));
	expect_echo(a, "QUIET WORDS\n", 3000);
	ck_assert_int_eq(srv.nmade, 1);
	ck_assert_int_eq(srv.naccepted, 1);

	/* A refused connection: closed, no channel, no accept hook. */
	srv.refuse_from = 2;
	evutil_socket_t b = add_client();
	write_all(b, LIT("anyone?\n"));
	expect_closed(b, 3000);
	ck_assert_int_eq(srv.nmade, 2);
	ck_assert_int_eq(srv.naccepted, 1);
	/* The program's own choice, not an accept error. */
	ck_assert_int_eq(srv.nerrors, 0);

	/* Back to plain socket bufferevents. */
	evchat_listener_set_bufferevent_cb(srv.listener, NULL);
	evutil_socket_t c = add_client();
	write_all(c, LIT("plain\n"));
	expect_echo(c, "plain\n", 3000);
	ck_assert_int_eq(srv.nmade, 2);
	ck_assert_int_eq(srv.naccepted, 2);
}
END_TEST

START_TEST(test_free_listener_inside_accept)
{
	srv.free_listener_in_accept = 1;
	evutil_socket_t a = add_client();
	evutil_socket_t b = add_client(); /* waits in the backlog */
	write_all(a, LIT("first\n"));
	run_for(srv.base, 100);
	ck_assert_ptr_null(srv.listener);
	ck_assert_int_eq(srv.naccepted, 1);
	/* Whichever was accepted works; the listening socket is closed, so
	 * new connections are refused. */
	evutil_socket_t accepted = a;
	expect_echo(accepted, "first\n", 3000);
	errno = 0;
	ck_assert_int_lt(client_connect(), 0);
	ck_assert_int_eq(errno, ECONNREFUSED);
	run_for(srv.base, 50);
	ck_assert_int_eq(srv.naccepted, 1);
	(void)b;
}
END_TEST

START_TEST(test_free_channel_inside_accept)
{
	srv.free_chat_in_accept = 1;
	evutil_socket_t a = add_client();
	write_all(a, LIT("bye\n"));
	expect_closed(a, 3000);
	ck_assert_int_eq(srv.naccepted, 1);
	/* The listener goes on. */
	srv.free_chat_in_accept = 0;
	evutil_socket_t b = add_client();
	write_all(b, LIT("hi\n"));
	expect_echo(b, "hi\n", 3000);
	ck_assert_int_eq(srv.naccepted, 2);
}
END_TEST

static int fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

START_TEST(test_listener_invalid_arguments)
{
	errno = 0;
	ck_assert_ptr_null(evchat_listener_new(NULL, 0, on_accept, NULL));
	ck_assert_int_eq(errno, EINVAL);

	/* A refused evconnlistener is freed, closing its socket. */
	struct sockaddr_in sin = srv.addr;
	sin.sin_port = 0;
	struct evconnlistener *lev = evconnlistener_new_bind(
	    srv.base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
	    (struct sockaddr *)&sin, sizeof(sin));
	ck_assert_ptr_nonnull(lev);
	evutil_socket_t fd = evconnlistener_get_fd(lev);
	errno = 0;
	ck_assert_ptr_null(evchat_listener_new(lev, 0, NULL, NULL));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert(!fd_is_open(fd));

	lev = evconnlistener_new_bind(srv.base, NULL, NULL,
	                              LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
	                              -1, (struct sockaddr *)&sin, sizeof(sin));
	ck_assert_ptr_nonnull(lev);
	fd = evconnlistener_get_fd(lev);
	errno = 0;
	ck_assert_ptr_null(evchat_listener_new(lev, 0x80u, on_accept, NULL));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert(!fd_is_open(fd));

	evchat_listener_set_bufferevent_cb(NULL, make_shouting);
	evchat_listener_set_error_cb(NULL, on_error);
	ck_assert_ptr_null(evchat_listener_get_evconnlistener(NULL));
	errno = 0;
	ck_assert_int_eq(evchat_listener_pause(NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(evchat_listener_resume(NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	evchat_listener_free(NULL);
}
END_TEST

/* Paused, the listener leaves clients in the backlog; resumed (from the
 * accept hook's own channel's hook, say), it serves them. */
START_TEST(test_pause_and_resume)
{
	ck_assert_int_eq(evchat_listener_pause(srv.listener), 0);
	evutil_socket_t fd = add_client();
	write_all(fd, LIT("waited\n"));
	run_for(srv.base, 200);
	ck_assert_int_eq(srv.naccepted, 0);
	ck_assert_int_eq(evchat_listener_resume(srv.listener), 0);
	ck_assert_int_eq(evchat_listener_resume(srv.listener), 0);
	expect_echo(fd, "waited\n", 3000);
	ck_assert_int_eq(srv.naccepted, 1);
}
END_TEST

/* AUTOFREE from the listener's flags: a channel whose client left frees
 * itself, with no user code. */
START_TEST(test_listener_autofree_flag)
{
	struct sockaddr_in sin = srv.addr;
	sin.sin_port = 0;
	struct evconnlistener *lev = evconnlistener_new_bind(
	    srv.base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
	    (struct sockaddr *)&sin, sizeof(sin));
	ck_assert_ptr_nonnull(lev);
	socklen_t len = sizeof(sin);
	ck_assert_int_eq(getsockname(evconnlistener_get_fd(lev),
	                             (struct sockaddr *)&sin, &len),
	                 0);
	struct server auto_srv;
	memset(&auto_srv, 0, sizeof(auto_srv));
	auto_srv.free_chat_in_accept = 0;
	struct evchat_listener *l = evchat_listener_new(lev,
	                                                EVCHAT_OPT_AUTOFREE,
	                                                on_accept, &auto_srv);
	ck_assert_ptr_nonnull(l);
	auto_srv.listener = l;
	evutil_socket_t fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	write_all(fd, LIT("once\n"));
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	evutil_make_socket_nonblocking(fd);
	expect_echo(fd, "once\n", 3000);
	/* The channel flushed and freed itself: its socket closed. */
	expect_closed(fd, 3000);
	ck_assert_int_eq(auto_srv.naccepted, 1);
	auto_srv.nchats = 0; /* freed by themselves */
	close(fd);
	evchat_listener_free(l);
}
END_TEST

/* ---- descriptor exhaustion ----------------------------------------------- */

#define FLOOD 50
#define SPARE_FDS 4

/* Valgrind only pretends to lower RLIMIT_NOFILE: it lets accept() make
 * the descriptor, then closes it and returns EMFILE, so the connection is
 * lost instead of waiting in the backlog, and these tests cannot hold.
 * Its preload libraries give it away (no valgrind.h needed). */
static int under_valgrind(void)
{
	const char *preload = getenv("LD_PRELOAD");
	return preload != NULL && strstr(preload, "vgpreload") != NULL;
}

/* For the tests that need a real descriptor limit. */
#define SKIP_UNDER_VALGRIND()                                                  \
	do {                                                                   \
		if (under_valgrind()) {                                        \
			printf("%s: skipped under valgrind\n", __func__);      \
			return;                                                \
		}                                                              \
	} while (0)

static double cpu_seconds(void)
{
	struct rusage ru;
	ck_assert_int_eq(getrusage(RUSAGE_SELF, &ru), 0);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Descriptors that plug holes below the highest open one while the limit
 * is lowered, so that exactly the spare ones can be opened. */
static int plugs[256];
static int nplugs;

static void unplug(void)
{
	for (int i = 0; i < nplugs; i++)
		close(plugs[i]);
	nplugs = 0;
}

/* Lowers the soft descriptor limit so that exactly `spare` more
 * descriptors can be opened. */
static void lower_limit(int spare)
{
	struct rlimit now;
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &now), 0);
	if (!limit_lowered)
		saved_limit = now;
	int scan = now.rlim_cur > 65536 ? 65536 : (int)now.rlim_cur;
	int highest = -1;
	for (int fd = 0; fd < scan; fd++)
		if (fd_is_open(fd))
			highest = fd;
	for (int fd = 0; fd < highest; fd++) {
		if (!fd_is_open(fd)) {
			ck_assert_int_lt(nplugs, 256);
			ck_assert_int_eq(dup2(highest, fd), fd);
			plugs[nplugs++] = fd;
		}
	}
	struct rlimit lower = now;
	lower.rlim_cur = (rlim_t)highest + 1 + (rlim_t)spare;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &lower), 0);
	limit_lowered = 1;
}

/* How many clients have their echo waiting, unread. */
static int clients_answered(void)
{
	int n = 0;
	char c;
	for (size_t i = 0; i < nclients; i++)
		if (recv(clients[i], &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1)
			n++;
	return n;
}

static void flood_line(char *buf, size_t size, size_t i)
{
	snprintf(buf, size, "client %zu\n", i);
}

/* Clients from..to-1 connect, each sending its line, unanswered yet. */
static void add_flood_clients(size_t from, size_t to)
{
	char line[32];
	for (size_t i = from; i < to; i++) {
		evutil_socket_t fd = add_client();
		flood_line(line, sizeof(line), i);
		write_all(fd, line, strlen(line));
	}
}

/* Clients 0..n-1 each got their line back. */
static void expect_flood_echoed(size_t n)
{
	char line[32];
	for (size_t i = 0; i < n; i++) {
		flood_line(line, sizeof(line), i);
		expect_echo(clients[i], line, 3000);
	}
}

START_TEST(test_fd_exhaustion_backs_off)
{
	SKIP_UNDER_VALGRIND();
	/* Every client socket exists before the limit goes down. */
	add_flood_clients(0, FLOOD);
	lower_limit(SPARE_FDS);
	int can_open = SPARE_FDS;

	double cpu0 = cpu_seconds();
	long long t0 = now_ms();
	run_for(srv.base, 1000);
	double cpu = cpu_seconds() - cpu0;
	double wall = (double)(now_ms() - t0) / 1000.0;

	/* The free descriptors went to channels, the rest wait; the
	 * failure was reported once, however often accept was retried. */
	ck_assert_int_eq(srv.naccepted, can_open);
	ck_assert_int_eq(srv.nerrors, 1);
	ck_assert_int_eq(srv.last_error, EMFILE);
	ck_assert_msg(cpu < 0.3 * wall,
	              "the loop used %.3f s of CPU in %.3f s: it spins", cpu,
	              wall);
	/* The accepted ones work meanwhile. */
	ck_assert_uint_eq(srv.nchats, (size_t)can_open);
	ck_assert_int_eq(clients_answered(), can_open);

	/* Descriptors come back: the waiting clients are all served. */
	restore_limit();
	long long end = now_ms() + 5000;
	while (srv.naccepted < FLOOD && now_ms() < end)
		run_tick(srv.base, 10000);
	ck_assert_int_eq(srv.naccepted, FLOOD);
	expect_flood_echoed(FLOOD);
	ck_assert_int_eq(srv.nerrors, 1);
	printf("listener: %d accepted while exhausted, %.3f s CPU in %.3f s\n",
	       can_open, cpu, wall);
}
END_TEST

/* A new episode after an accept succeeded is reported again. */
START_TEST(test_fd_exhaustion_reported_per_episode)
{
	SKIP_UNDER_VALGRIND();
	add_flood_clients(0, 4);
	lower_limit(0);
	run_for(srv.base, 300);
	ck_assert_int_eq(srv.naccepted, 0);
	ck_assert_int_eq(srv.nerrors, 1);
	restore_limit();
	long long end = now_ms() + 3000;
	while (srv.naccepted < 4 && now_ms() < end)
		run_tick(srv.base, 10000);
	ck_assert_int_eq(srv.naccepted, 4);

	/* Second episode. */
	add_flood_clients(4, 8);
	lower_limit(0);
	run_for(srv.base, 300);
	ck_assert_int_eq(srv.naccepted, 4);
	ck_assert_int_eq(srv.nerrors, 2);
	restore_limit();
	end = now_ms() + 3000;
	while (srv.naccepted < 8 && now_ms() < end)
		run_tick(srv.base, 10000);
	ck_assert_int_eq(srv.naccepted, 8);
	expect_flood_echoed(8);
}
END_TEST

/* A paused listener accepts nothing, even when a retry after a shortage
 * of descriptors comes (it used to enable the evconnlistener the program
 * had disabled, so a server shutting down went on accepting); resumed,
 * it serves every client that waited. */
START_TEST(test_pause_holds_through_exhaustion)
{
	SKIP_UNDER_VALGRIND();
	add_flood_clients(0, 4);
	lower_limit(0);
	run_for(srv.base, 100);
	ck_assert_int_eq(srv.nerrors, 1); /* the retry timer is set */
	ck_assert_int_eq(evchat_listener_pause(srv.listener), 0);
	ck_assert_int_eq(evchat_listener_pause(srv.listener), 0);
	restore_limit();
	run_for(srv.base, 1500); /* past the longest retry pause */
	ck_assert_int_eq(srv.naccepted, 0);
	ck_assert_int_eq(evchat_listener_resume(srv.listener), 0);
	long long end = now_ms() + 3000;
	while (srv.naccepted < 4 && now_ms() < end)
		run_tick(srv.base, 10000);
	ck_assert_int_eq(srv.naccepted, 4);
	expect_flood_echoed(4);
}
END_TEST

Suite *listener_suite(void)
{
	Suite *s = suite_create("listener");

	TCase *tc = tcase_create("accept");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_echo_several_clients);
	tcase_add_test(tc, test_bufferevent_hook_is_used);
	tcase_add_test(tc, test_free_listener_inside_accept);
	tcase_add_test(tc, test_free_channel_inside_accept);
	tcase_add_test(tc, test_listener_invalid_arguments);
	tcase_add_test(tc, test_listener_autofree_flag);
	tcase_add_test(tc, test_pause_and_resume);
	suite_add_tcase(s, tc);

	tc = tcase_create("exhaustion");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_fd_exhaustion_backs_off);
	tcase_add_test(tc, test_fd_exhaustion_reported_per_episode);
	tcase_add_test(tc, test_pause_holds_through_exhaustion);
	suite_add_tcase(s, tc);

	return s;
}
