/*
 * evchat_start_tls(): a connection that begins in the clear and goes on
 * through TLS, as SMTP's STARTTLS does, with channels on both sides over
 * loopback TCP; and a peer that does not wait for the go-ahead.
 */
#include <stdlib.h>

#include "suites.h"
#include "transport.h"

#ifdef EVCHAT_TEST_TLS
#include <event2/bufferevent_ssl.h>

/* A big line after the switch: many TLS records, and more than the
 * socket takes at once. */
#define BIG_LINE (200 * 1024)

/* One end of the session and what its hooks saw. */
struct side {
	struct evchat *chat;
	struct evbuffer *log;    /* each line received, then '|' */
	unsigned events;         /* every event flag reported */
	int nconnected;          /* EVCHAT_EVENT_CONNECTED reports */
	int start_rc, start_err; /* evchat_start_tls()'s result */
	int started;             /* it was called */
	int tls_after;           /* its bufferevent was TLS right after */
};

struct session {
	struct event_base *base;
	struct tls_contexts *tls;
	struct conn c;
	struct side server, client;
	char *big; /* BIG_LINE bytes, no line ending in them */
	/* The client sends plaintext right behind STARTTLS (no client
	 * channel then: the test writes the peer socket itself). */
	int raw_peer;
	int quiet_client; /* sends nothing after the switch */
};

static struct session *session_of(struct evchat *chat, void *arg)
{
	(void)chat;
	return arg;
}

static void push_str(struct evchat *chat, const char *s)
{
	ck_assert_int_eq(evchat_push(chat, s, strlen(s)), 0);
}

static void start_tls(struct session *s, struct side *side, int role)
{
	SSL *ssl = tls_new(role == EVCHAT_TLS_ACCEPT ? s->tls->server
	                                             : s->tls->client);
	errno = 0;
	side->started = 1;
	side->start_rc = evchat_start_tls(side->chat, ssl, role);
	side->start_err = errno;
	side->tls_after = bufferevent_openssl_get_ssl(
	                      evchat_get_bufferevent(side->chat)) == ssl;
	if (side->start_rc < 0) {
		/* Still ours; the peer broke the protocol: end it. */
		SSL_free(ssl);
		evchat_abort(side->chat);
		side->chat = NULL;
	}
}

static void server_line(struct session *s, const unsigned char *line,
                        size_t len)
{
	struct side *srv = &s->server;
	if (len == 8 && memcmp(line, "STARTTLS", 8) == 0) {
		push_str(srv->chat, "220 go ahead\r\n");
		start_tls(s, srv, EVCHAT_TLS_ACCEPT);
		return;
	}
	evbuffer_add(srv->log, line, len);
	evbuffer_add(srv->log, "|", 1);
	push_str(srv->chat, "250 ");
	ck_assert_int_eq(evchat_push(srv->chat, line, len), 0);
	push_str(srv->chat, "\r\n");
}

static void server_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	size_t len = evbuffer_get_length(frame);
	server_line(session_of(chat, arg), evbuffer_pullup(frame, -1), len);
}

static void server_found_bytes(struct evchat *chat, const unsigned char *line,
                               size_t len, void *arg)
{
	server_line(session_of(chat, arg), line, len);
}

static void client_found(struct evchat *chat, struct evbuffer *frame, void *arg)
{
	struct session *s = arg;
	struct side *cli = &s->client;
	size_t len = evbuffer_get_length(frame);
	const char *line = (const char *)evbuffer_pullup(frame, -1);
	if (len == 12 && memcmp(line, "220 go ahead", 12) == 0) {
		start_tls(s, cli, EVCHAT_TLS_CONNECT);
		if (s->quiet_client)
			return;
		/* Pushed before the handshake is done: sent through it. */
		push_str(chat, "EHLO secure\r\n");
		ck_assert_int_eq(evchat_push(chat, s->big, BIG_LINE), 0);
		push_str(chat, "\r\nQUIT\r\n");
		return;
	}
	evbuffer_add_buffer(cli->log, frame);
	evbuffer_add(cli->log, "|", 1);
	if (len == 8 && memcmp(line, "250 QUIT", 8) == 0)
		ck_assert_int_eq(evchat_close_when_done(chat), 0);
}

static void side_event(struct side *side, short events)
{
	side->events |= (unsigned)events;
	if (events & EVCHAT_EVENT_CONNECTED)
		side->nconnected++;
}

static void server_event(struct evchat *chat, short events, void *arg)
{
	struct session *s = session_of(chat, arg);
	side_event(&s->server, events);
	if (events & (EVCHAT_EVENT_EOF | EVCHAT_EVENT_TIMEOUT))
		evchat_close_when_done(chat);
	if (events & (EVCHAT_EVENT_CLOSED | EVCHAT_EVENT_ERROR)) {
		evchat_free(chat);
		s->server.chat = NULL;
	}
}

static void client_event(struct evchat *chat, short events, void *arg)
{
	struct session *s = session_of(chat, arg);
	side_event(&s->client, events);
	if (events &
	    (EVCHAT_EVENT_CLOSED | EVCHAT_EVENT_ERROR | EVCHAT_EVENT_EOF)) {
		evchat_free(chat);
		s->client.chat = NULL;
	}
}

/* What the server's channel sits on. */
enum layer {
	LAYER_TCP,    /* a socket bufferevent */
	LAYER_PAIR,   /* a bufferevent pair, the client on its other end */
	LAYER_FILTER, /* a filter over TCP, its callbacks deferred */
	/* One that runs them at once: libevent's TLS filter cannot go over
	 * it. */
	LAYER_FILTER_AT_ONCE,
};

static enum bufferevent_filter_result
pass_through(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
             enum bufferevent_flush_mode mode, void *arg)
{
	(void)limit, (void)mode, (void)arg;
	evbuffer_add_buffer(dst, src);
	return BEV_OK;
}

/* A session: the server's channel with `flags` on `layer`, found or
 * found_bytes as its hook; the client's a channel too unless raw_peer
 * (over TCP only). */
static struct session *session_new(unsigned flags, int lend, int raw_peer,
                                   enum layer layer)
{
	struct session *s = calloc(1, sizeof(*s));
	ck_assert_ptr_nonnull(s);
	s->base = event_base_new();
	ck_assert_ptr_nonnull(s->base);
	s->tls = tls_contexts_new();
	s->raw_peer = raw_peer;
	s->big = malloc(BIG_LINE);
	ck_assert_ptr_nonnull(s->big);
	for (size_t i = 0; i < BIG_LINE; i++)
		s->big[i] = (char)('a' + i % 26);
	struct bufferevent *srv_bev, *cli_bev = NULL;
	if (layer == LAYER_PAIR) {
		struct bufferevent *pair[2];
		ck_assert(!raw_peer);
		ck_assert_int_eq(bufferevent_pair_new(s->base,
		                                      BEV_OPT_CLOSE_ON_FREE,
		                                      pair),
		                 0);
		srv_bev = pair[0];
		cli_bev = pair[1];
		s->c.peer = -1;
	} else {
		ck_assert_int_eq(conn_tcp(&s->c, s->base), 0);
		srv_bev = s->c.bev;
	}
	if (layer == LAYER_FILTER || layer == LAYER_FILTER_AT_ONCE) {
		unsigned defer = layer == LAYER_FILTER ? BEV_OPT_DEFER_CALLBACKS
		                                       : 0;
		srv_bev = bufferevent_filter_new(srv_bev, pass_through,
		                                 pass_through,
		                                 BEV_OPT_CLOSE_ON_FREE | defer,
		                                 NULL, NULL);
		ck_assert_ptr_nonnull(srv_bev);
	}
	s->server.log = evbuffer_new();
	s->client.log = evbuffer_new();

	struct evchat *srv = evchat_new(srv_bev, flags);
	ck_assert_ptr_nonnull(srv);
	s->server.chat = srv;
	if (lend)
		evchat_setcb_bytes(srv, NULL, server_found_bytes, server_event,
		                   s);
	else
		evchat_setcb(srv, NULL, server_found, server_event, s);
	ck_assert_int_eq(evchat_set_terminator_line(srv,
	                                            EVCHAT_EOL_CRLF_STRICT),
	                 0);
	ck_assert_int_eq(evchat_set_max_frame(srv, 2 * BIG_LINE), 0);
	if (raw_peer)
		return s;

	if (cli_bev == NULL) {
		cli_bev = bufferevent_socket_new(s->base, s->c.peer,
		                                 BEV_OPT_CLOSE_ON_FREE);
		ck_assert_ptr_nonnull(cli_bev);
		s->c.peer = -1; /* the client's channel closes it */
	}
	struct evchat *cli = evchat_new(cli_bev, 0);
	ck_assert_ptr_nonnull(cli);
	s->client.chat = cli;
	evchat_setcb(cli, NULL, client_found, client_event, s);
	ck_assert_int_eq(evchat_set_terminator_line(cli,
	                                            EVCHAT_EOL_CRLF_STRICT),
	                 0);
	ck_assert_int_eq(evchat_set_max_frame(cli, 2 * BIG_LINE), 0);
	return s;
}

static void session_free(struct session *s)
{
	evchat_free(s->server.chat);
	evchat_free(s->client.chat);
	if (s->c.peer >= 0)
		evutil_closesocket(s->c.peer);
	evbuffer_free(s->server.log);
	evbuffer_free(s->client.log);
	event_base_free(s->base);
	tls_contexts_free(s->tls);
	free(s->big);
	free(s);
}

static int both_gone(const struct session *s)
{
	return s->server.chat == NULL && s->client.chat == NULL;
}

static void run_until_both_gone(struct session *s, int ms)
{
	long long end = now_ms() + ms;
	while (!both_gone(s) && now_ms() < end)
		run_tick(s->base, 10000);
}

static int is_tls(struct evchat *chat)
{
	return bufferevent_openssl_get_ssl(evchat_get_bufferevent(chat)) !=
	       NULL;
}

/* The log holds before, the big line, then after. */
static void expect_log(struct evbuffer *log, const char *before,
                       const char *big, const char *after)
{
	struct evbuffer *want = evbuffer_new();
	ck_assert_ptr_nonnull(want);
	evbuffer_add_printf(want, "%s", before);
	evbuffer_add(want, big, BIG_LINE);
	evbuffer_add_printf(want, "%s", after);
	size_t len = evbuffer_get_length(want);
	expect_bytes("log", log, evbuffer_pullup(want, -1), len);
	evbuffer_free(want);
}

/* The variants the loop tests run, by _i: the server's channel on TCP
 * without and with the direct options (the listener's default), each
 * with found and with found_bytes; then, for a client that is a channel
 * too, on a pair and on a filter. */
#define NVARIANTS 4
#define NVARIANTS_LAYERED 6
static struct session *open_variant(int i, int raw_peer)
{
	unsigned flags = i / 2 == 1
	                     ? EVCHAT_OPT_DIRECT_READ | EVCHAT_OPT_DIRECT_WRITE
	                     : 0;
	int lend = i < NVARIANTS && i % 2;
	enum layer layer = i < NVARIANTS    ? LAYER_TCP
	                   : i == NVARIANTS ? LAYER_PAIR
	                                    : LAYER_FILTER;
	note("server flags %u, found%s, layer %d", flags, lend ? "_bytes" : "",
	     (int)layer);
	return session_new(flags, lend, raw_peer, layer);
}

/* The client asks, the server says go ahead and switches, the client
 * switches on reading it and sends at once: both handshakes finish, every
 * line after the switch arrives whole and in order through TLS, and the
 * client's close ends both sides cleanly. */
START_TEST(test_starttls_session)
{
	struct session *s = open_variant(_i, 0);
	push_str(s->client.chat, "STARTTLS\r\n");
	run_until_both_gone(s, 10000);
	ck_assert(both_gone(s));
	ck_assert_int_eq(s->server.start_rc, 0);
	ck_assert_int_eq(s->client.start_rc, 0);
	ck_assert(s->server.tls_after);
	ck_assert(s->client.tls_after);

	ck_assert_int_eq(s->server.nconnected, 1);
	ck_assert_int_eq(s->client.nconnected, 1);
	ck_assert_uint_eq(s->server.events & EVCHAT_EVENT_ERROR, 0);
	ck_assert_uint_eq(s->client.events & EVCHAT_EVENT_ERROR, 0);
	ck_assert(s->server.events & EVCHAT_EVENT_EOF);
	ck_assert(s->client.events & EVCHAT_EVENT_CLOSED);

	expect_log(s->server.log, "EHLO secure|", s->big, "|QUIT|");
	expect_log(s->client.log, "250 EHLO secure|250 ", s->big, "|250 QUIT|");
	session_free(s);
}
END_TEST

/* A peer that sends a command right behind STARTTLS, before the go-ahead
 * could reach it (how a man in the middle injects commands into what
 * will pass for a protected session): nothing starts, the call fails
 * with EPROTO, and the injected command never reaches the hooks, whether
 * it waited in the input or in the read scratch the frame was lent from.
 */
START_TEST(test_starttls_refuses_read_ahead)
{
	struct session *s = open_variant(_i, 1);
	write_all(s->c.peer, LIT("STARTTLS\r\nNOOP\r\n"));
	long long end = now_ms() + 3000;
	while (!s->server.started && now_ms() < end)
		run_tick(s->base, 10000);
	run_for(s->base, 50);
	ck_assert_int_eq(s->server.start_rc, -1);
	ck_assert_int_eq(s->server.start_err, EPROTO);
	ck_assert_ptr_null(s->server.chat); /* aborted */
	ck_assert_uint_eq(evbuffer_get_length(s->server.log), 0);
	struct evbuffer *got = evbuffer_new();
	drain_peer_until_eof(s->base, s->c.peer, got, 2000);
	/* The abort resets the connection: the go-ahead may be lost with
	 * it, but nothing was answered. */
	if (evbuffer_get_length(got) > 0)
		expect_bytes("the peer's", got, LIT("220 go ahead\r\n"));
	evbuffer_free(got);
	session_free(s);
}
END_TEST

static int more_later(struct evchat *chat, struct evbuffer *out, size_t want,
                      void *arg)
{
	(void)chat, (void)out, (void)want, (void)arg;
	return EVCHAT_AGAIN;
}

/* What the call refuses, with nothing changed: bad arguments, a channel
 * that is TLS already, output still queued behind a producer (it would go
 * out in the clear after the switch), a channel that is closing. */
START_TEST(test_starttls_refusals)
{
	struct session *s = session_new(0, 0, 1, LAYER_TCP);
	struct evchat *chat = s->server.chat;
	SSL *ssl = tls_new(s->tls->server);

	errno = 0;
	ck_assert_int_eq(evchat_start_tls(NULL, ssl, EVCHAT_TLS_ACCEPT), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(evchat_start_tls(chat, NULL, EVCHAT_TLS_ACCEPT), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(evchat_start_tls(chat, ssl, 0), -1);
	ck_assert_int_eq(errno, EINVAL);

	ck_assert_int_eq(evchat_push_producer(chat, more_later, NULL, NULL), 0);
	ck_assert_int_eq(evchat_push(chat, LIT("behind it")), 0);
	ck_assert_int_eq(evchat_start_tls(chat, ssl, EVCHAT_TLS_ACCEPT), -1);
	ck_assert_int_eq(errno, EBUSY);
	ck_assert(!is_tls(chat));
	evchat_discard_buffers(chat);
	run_pending(s->base);

	ck_assert_int_eq(evchat_start_tls(chat, ssl, EVCHAT_TLS_ACCEPT), 0);
	ck_assert(is_tls(chat));
	SSL *again = tls_new(s->tls->server);
	ck_assert_int_eq(evchat_start_tls(chat, again, EVCHAT_TLS_ACCEPT), -1);
	ck_assert_int_eq(errno, EALREADY);

	ck_assert_int_eq(evchat_close_when_done(chat), 0);
	ck_assert_int_eq(evchat_start_tls(chat, again, EVCHAT_TLS_ACCEPT), -1);
	ck_assert_int_eq(errno, EPIPE);
	SSL_free(again);
	session_free(s);
}
END_TEST

/* Over a filter that runs its callbacks at once, libevent 2.1's TLS
 * filter does not work (plain libevent crashes inside OpenSSL; a channel
 * never finished its handshake): refused, the channel untouched and
 * still talking in the clear. */
START_TEST(test_starttls_refuses_filter_without_deferred_callbacks)
{
	struct session *s = session_new(0, 0, 0, LAYER_FILTER_AT_ONCE);
	SSL *ssl = tls_new(s->tls->server);
	errno = 0;
	ck_assert_int_eq(evchat_start_tls(s->server.chat, ssl,
	                                  EVCHAT_TLS_ACCEPT),
	                 -1);
	ck_assert_int_eq(errno, ENOTSUP);
	SSL_free(ssl);
	ck_assert(!is_tls(s->server.chat));
	push_str(s->server.chat, "250 still clear\r\n");
	long long end = now_ms() + 3000;
	while (evbuffer_get_length(s->client.log) == 0 && now_ms() < end)
		run_tick(s->base, 10000);
	expect_bytes("the client's", s->client.log, LIT("250 still clear|"));
	session_free(s);
}
END_TEST

/* The idle timeouts set before the switch hold after it: a client that
 * goes quiet once through the handshake is timed out. */
START_TEST(test_starttls_keeps_timeouts)
{
	struct session *s = session_new(EVCHAT_OPT_DIRECT_READ |
	                                    EVCHAT_OPT_DIRECT_WRITE,
	                                1, 0, LAYER_TCP);
	struct timeval idle = { 0, 300 * 1000 };
	ck_assert_int_eq(evchat_set_timeouts(s->server.chat, &idle, NULL), 0);
	/* The client only asks, and then says nothing more. */
	s->quiet_client = 1;
	ck_assert_int_eq(evchat_push(s->client.chat, LIT("STARTTLS\r\n")), 0);
	long long start = now_ms();
	long long end = start + 5000;
	while (!(s->server.events & EVCHAT_EVENT_TIMEOUT) && now_ms() < end)
		run_tick(s->base, 10000);
	ck_assert_int_eq(s->server.start_rc, 0);
	ck_assert_int_eq(s->server.nconnected, 1);
	ck_assert(s->server.events & EVCHAT_EVENT_TIMEOUT);
	ck_assert(s->server.events & EVCHAT_EVENT_READING);
	session_free(s);
}
END_TEST
#endif

Suite *starttls_suite(void)
{
	Suite *s = suite_create("starttls");
	TCase *tc = tcase_create("starttls");
	tcase_set_timeout(tc, 60);
#ifdef EVCHAT_TEST_TLS
	tcase_add_loop_test(tc, test_starttls_session, 0, NVARIANTS_LAYERED);
	tcase_add_loop_test(tc, test_starttls_refuses_read_ahead, 0, NVARIANTS);
	tcase_add_test(tc, test_starttls_refusals);
	tcase_add_test(tc,
	               test_starttls_refuses_filter_without_deferred_callbacks);
	tcase_add_test(tc, test_starttls_keeps_timeouts);
#endif
	suite_add_tcase(s, tc);
	return s;
}
