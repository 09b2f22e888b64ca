/*
 * A channel as a client: made on a socket bufferevent with no socket yet,
 * then connected with bufferevent_socket_connect() or _connect_hostname().
 * What it sends before the connection is up, CONNECTED, and how the ways
 * a connect fails reach the event hook.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
/* After event2/bufferevent.h, which it needs: whose callback the read
 * event runs is looked at directly. */
#include <event2/bufferevent_struct.h>
#ifdef EVCHAT_TEST_TLS
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>
#endif

#include <evchat.h>

#include "helpers.h"
#include "suites.h"

static struct event_base *base;
static struct recorder rec;
static struct evchat *chat;
static evutil_socket_t listening = -1;
static struct sockaddr_in addr; /* where `listening` listens */

static void setup(void)
{
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	recorder_init(&rec);
	chat = NULL;
	listening = -1;
}

static void teardown(void)
{
	evchat_free(chat);
	chat = NULL;
	if (listening >= 0)
		close(listening);
	recorder_clear(&rec);
	event_base_free(base);
}

/* A listening socket on loopback, at `addr`. */
static void listen_on_loopback(int backlog)
{
	listening = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(listening, 0);
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(listening, (struct sockaddr *)&addr,
	                      sizeof(addr)),
	                 0);
	socklen_t len = sizeof(addr);
	ck_assert_int_eq(getsockname(listening, (struct sockaddr *)&addr, &len),
	                 0);
	ck_assert_int_eq(listen(listening, backlog), 0);
}

/* The next connection waiting on `listening`, within ms, or -1. */
static evutil_socket_t accept_within(int ms)
{
	struct pollfd p = { listening, POLLIN, 0 };
	if (poll(&p, 1, ms) != 1)
		return -1;
	return accept(listening, NULL, NULL);
}

/* A channel on a socket bufferevent without a socket, its frames lines;
 * with connect_first, the connect to `addr` is started before the channel
 * is made (a socket still connecting). */
static struct bufferevent *client_chat_connecting(unsigned flags,
                                                  int connect_first)
{
	struct bufferevent *bev = bufferevent_socket_new(base, -1,
	                                                 BEV_OPT_CLOSE_ON_FREE);
	ck_assert_ptr_nonnull(bev);
	/* libevent may report a refusal from inside the call. */
	if (connect_first)
		bufferevent_socket_connect(bev, (struct sockaddr *)&addr,
		                           sizeof(addr));
	chat = evchat_new(bev, flags);
	ck_assert_ptr_nonnull(chat);
	evchat_setcb(chat, NULL, recorder_found_cb, recorder_event_cb, &rec);
	ck_assert_int_eq(evchat_set_terminator(chat, LIT("\n")), 0);
	return bev;
}

static struct bufferevent *client_chat(unsigned flags)
{
	return client_chat_connecting(flags, 0);
}

/* The loop tests' variants: _i's bit 0 asks for the direct options, bit
 * 1 starts the connect to `addr` before the channel is made (a socket
 * still connecting), where otherwise the caller connects afterwards. */
#define DIRECT (EVCHAT_OPT_DIRECT_READ | EVCHAT_OPT_DIRECT_WRITE)
static unsigned variant_flags(int variant)
{
	return (variant & 1) ? DIRECT : 0;
}

static struct bufferevent *client_chat_variant(int variant)
{
	note("%s, connect %s the channel", variant & 1 ? "direct" : "libevent",
	     variant & 2 ? "before" : "after");
	return client_chat_connecting(variant_flags(variant), variant & 2);
}

static void connect_variant(struct bufferevent *bev, int variant)
{
	if (!(variant & 2))
		bufferevent_socket_connect(bev, (struct sockaddr *)&addr,
		                           sizeof(addr));
}

/* Whether the channel reads bev's socket itself: its read event no longer
 * runs libevent's socket read callback. */
static int reads_directly(struct bufferevent *bev)
{
	struct bufferevent *plain = bufferevent_socket_new(base, -1, 0);
	ck_assert_ptr_nonnull(plain);
	int direct = event_get_callback(&bev->ev_read) !=
	             event_get_callback(&plain->ev_read);
	bufferevent_free(plain);
	return direct;
}

/* A listening socket whose accept queue is full: a connect to it hangs
 * until a connection is accepted and the kernel resends the SYN (after a
 * second). The two connections filling it are the caller's to close. */
static void listen_full(evutil_socket_t fillers[2])
{
	listen_on_loopback(0); /* a queue of one; a second makes sure */
	for (int i = 0; i < 2; i++) {
		fillers[i] = socket(AF_INET, SOCK_STREAM, 0);
		ck_assert_int_ge(fillers[i], 0);
		evutil_make_socket_nonblocking(fillers[i]);
		connect(fillers[i], (struct sockaddr *)&addr, sizeof(addr));
	}
	run_for(base, 50);
}

static void run_until_events(size_t n, int ms)
{
	long long end = now_ms() + ms;
	while (rec.nevents < n && now_ms() < end)
		run_tick(base, 10000);
}

/* With these timeouts (read may be NULL), something pushed, then a
 * connect to a listener whose queue is full: the first event must be the
 * timeout `side` (EVCHAT_EVENT_READING or _WRITING), and only it. */
static void connect_until_timeout(struct bufferevent *bev,
                                  const struct timeval *read,
                                  const struct timeval *write, short side)
{
	ck_assert_int_eq(evchat_set_timeouts(chat, read, write), 0);
	ck_assert_int_eq(evchat_push(chat, LIT("late\n")), 0);
	ck_assert_int_eq(bufferevent_socket_connect(bev,
	                                            (struct sockaddr *)&addr,
	                                            sizeof(addr)),
	                 0);
	run_until_events(1, 3000);
	ck_assert_uint_eq(rec.nevents, 1);
	ck_assert_msg(rec.events[0] == (EVCHAT_EVENT_TIMEOUT | side),
	              "read timeout %s: event 0x%x, want 0x%x",
	              read ? "set" : "unset", (unsigned)rec.events[0],
	              (unsigned)(EVCHAT_EVENT_TIMEOUT | side));
}

static const struct timeval short_time = { 0, 200 * 1000 };
static const struct timeval long_time = { 10, 0 };

/* Pushed before the connect started, and after it did: all of it goes
 * out once the connection is up, CONNECTED comes first, and frames flow
 * both ways. */
START_TEST(test_pushes_wait_for_the_connection)
{
	listen_on_loopback(8);
	struct bufferevent *bev = client_chat_variant(_i);
	ck_assert_int_eq(evchat_push(chat, LIT("before\n")), 0);
	connect_variant(bev, _i);
	ck_assert_int_eq(evchat_push(chat, LIT("after\n")), 0);
	run_until_events(1, 3000);
	ck_assert_uint_eq(rec.nevents, 1);
	ck_assert_int_eq(rec.events[0], EVCHAT_EVENT_CONNECTED);
	/* The direct read begins with the connection, whenever the connect
	 * was started. */
	ck_assert_int_eq(reads_directly(bev), (_i & 1) != 0);

	evutil_socket_t server = accept_within(3000);
	ck_assert_int_ge(server, 0);
	write_all(server, LIT("reply\n"));
	char got[32] = "";
	size_t have = 0;
	long long end = now_ms() + 3000;
	while (have < strlen("before\nafter\n") && now_ms() < end) {
		run_tick(base, 10000);
		ssize_t n = recv(server, got + have, sizeof(got) - 1 - have,
		                 MSG_DONTWAIT);
		if (n > 0)
			have += (size_t)n;
	}
	got[have] = '\0';
	ck_assert_str_eq(got, "before\nafter\n");
	long long until = now_ms() + 3000;
	while (rec.nframes < 1 && now_ms() < until)
		run_tick(base, 10000);
	ck_assert_uint_eq(rec.nframes, 1);
	char *frame = recorder_frame(&rec, 0);
	ck_assert_str_eq(frame, "reply");
	free(frame);
	close(server);
	run_until_events(2, 3000);
	ck_assert_uint_eq(rec.nevents, 2);
	ck_assert(rec.events[1] & EVCHAT_EVENT_EOF);
}
END_TEST

/* Nobody listens: an error with ECONNREFUSED, and no CONNECTED. The
 * event is the same bare error with the direct options, even on a socket
 * already connecting when the channel was made (the refused socket is
 * readable too: a read of the channel's own would meet the refusal
 * first, as an error while reading). */
START_TEST(test_refused_connect)
{
	listen_on_loopback(1);
	close(listening); /* the port is free again, and nobody listens */
	listening = -1;
	struct bufferevent *bev = client_chat_variant(_i);
	ck_assert_int_eq(evchat_push(chat, LIT("lost\n")), 0);
	/* libevent may report a refusal from inside the call. */
	connect_variant(bev, _i);
	run_until_events(1, 3000);
	run_for(base, 50);
	ck_assert_uint_eq(rec.nevents, 1);
	ck_assert_msg(rec.events[0] == EVCHAT_EVENT_ERROR, "event 0x%x",
	              (unsigned)rec.events[0]);
	ck_assert_int_eq(rec.errnos[0], ECONNREFUSED);
}
END_TEST

/* A name that does not resolve (one the resolver refuses without asking
 * a server): an error with EHOSTUNREACH, where libevent leaves errno as
 * it happens to be; bufferevent_socket_get_dns_error() has the reason. */
START_TEST(test_failed_lookup_is_ehostunreach)
{
	const char *const names[] = { "bad host", "::1" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		note("%s", names[i]);
		recorder_clear(&rec);
		recorder_init(&rec);
		evchat_free(chat);
		struct bufferevent *bev = client_chat(0);
		errno = EAGAIN; /* what the helper's run found there */
		bufferevent_socket_connect_hostname(bev, NULL, AF_INET,
		                                    names[i], 9);
		run_until_events(1, 3000);
		ck_assert_uint_eq(rec.nevents, 1);
		ck_assert_msg(rec.events[0] & EVCHAT_EVENT_ERROR, "event 0x%x",
		              (unsigned)rec.events[0]);
		ck_assert_msg(rec.errnos[0] == EHOSTUNREACH,
		              "%s: errno %d (%s)", names[i], rec.errnos[0],
		              strerror(rec.errnos[0]));
		ck_assert_int_ne(bufferevent_socket_get_dns_error(bev), 0);
	}
}
END_TEST

/* A connect stuck behind a full accept queue outlasts the write timeout,
 * which fails the channel; libevent's connect goes on, and completes once
 * the queue has room (the kernel resends the SYN after a second). No
 * CONNECTED may follow the failure. */
START_TEST(test_no_connected_after_failure)
{
	evutil_socket_t fillers[2];
	listen_full(fillers);
	connect_until_timeout(client_chat(0), NULL, &short_time,
	                      EVCHAT_EVENT_WRITING);
	/* Room in the queue: the channel's connection gets through. */
	evutil_socket_t accepted[3];
	int naccepted = 0;
	for (; naccepted < 3; naccepted++)
		if ((accepted[naccepted] = accept_within(50)) < 0)
			break;
	long long end = now_ms() + 4000;
	while (naccepted < 3 && now_ms() < end) {
		run_tick(base, 10000);
		if ((accepted[naccepted] = accept_within(0)) >= 0)
			naccepted++;
	}
	run_for(base, 100);
	ck_assert_msg(naccepted == 3,
	              "the channel's connect never completed (%d accepted)",
	              naccepted);
	ck_assert_msg(rec.nevents == 1, "after the failure: event 0x%x",
	              (unsigned)rec.events[1]);
	for (int i = 0; i < naccepted; i++)
		close(accepted[i]);
	for (int i = 0; i < 2; i++)
		close(fillers[i]);
}
END_TEST

#ifdef EVCHAT_TEST_TLS
/* The same hang for a TLS client: libevent's TLS layer reports its
 * timeouts bare, from its read or write event alike. As on a plain
 * socket, the write timeout, alone or beside a longer read timeout, must
 * fail the channel, not pass for a read timeout that leaves it waiting;
 * and a shorter read timeout is a read timeout, not a failure. */
START_TEST(test_tls_connect_hang_timeouts)
{
	evutil_socket_t fillers[2];
	listen_full(fillers);
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	ck_assert_ptr_nonnull(ctx);
	SSL *ssl = SSL_new(ctx);
	ck_assert_ptr_nonnull(ssl);
	struct bufferevent *bev = bufferevent_openssl_socket_new(
	    base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	ck_assert_ptr_nonnull(bev);
	chat = evchat_new(bev, 0);
	ck_assert_ptr_nonnull(chat);
	evchat_setcb(chat, NULL, recorder_found_cb, recorder_event_cb, &rec);
	if (_i == 0)
		connect_until_timeout(bev, NULL, &short_time,
		                      EVCHAT_EVENT_WRITING);
	else if (_i == 1)
		connect_until_timeout(bev, &long_time, &short_time,
		                      EVCHAT_EVENT_WRITING);
	else
		connect_until_timeout(bev, &short_time, &long_time,
		                      EVCHAT_EVENT_READING);
	evchat_free(chat);
	chat = NULL;
	SSL_CTX_free(ctx);
	for (int i = 0; i < 2; i++)
		close(fillers[i]);
}
END_TEST
#endif

Suite *client_suite(void)
{
	Suite *s = suite_create("client");
	TCase *tc = tcase_create("connect");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_pushes_wait_for_the_connection, 0, 4);
	tcase_add_loop_test(tc, test_refused_connect, 0, 4);
	tcase_add_test(tc, test_failed_lookup_is_ehostunreach);
	tcase_add_test(tc, test_no_connected_after_failure);
#ifdef EVCHAT_TEST_TLS
	tcase_add_loop_test(tc, test_tls_connect_hang_timeouts, 0, 3);
#endif
	suite_add_tcase(s, tc);
	return s;
}
