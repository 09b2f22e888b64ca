/*
 * TLS without a code path in the user's program: a close sends
 * close_notify on any bufferevent_openssl layer, so the peer can tell a
 * complete stream from a truncated one. libevent 2.1 never sends it itself
 * (freeing the bufferevent just closes the socket).
 */
#include <errno.h>

#include <sys/socket.h>

#include "evchat-internal.h"

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#ifdef EVCHAT_HAVE_OPENSSL
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

int evchat__tls_close_notify(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	/* Before the handshake is done there is no session to close. */
	if (ssl == NULL || SSL_in_init(ssl))
		return 0;
	ERR_clear_error();
	errno = 0;
	int r = SSL_shutdown(ssl);
	if (r >= 0)
		return 0; /* sent; the peer's own close_notify is its business */
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_WRITE:
		return 1; /* the socket is full: call again, as OpenSSL asks */
	case SSL_ERROR_WANT_READ:
		/* Ours went out before (the program sent it itself); only
		 * the peer's is missing, which is not ours to wait for. */
		return 0;
	case SSL_ERROR_SYSCALL:
		if (errno == EAGAIN || errno == EINTR)
			return 1;
		if (errno == 0)
			errno = EPIPE;
		return -1;
	default:
		errno = EPROTO;
		return -1;
	}
}

int evchat__tls_closed_cleanly(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	return ssl != NULL && (SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN);
}

int evchat__tls_layer(struct bufferevent *bev)
{
	return bufferevent_openssl_get_ssl(bev) != NULL;
}

int evchat__tls_handshaking(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	return ssl != NULL && SSL_in_init(ssl);
}

int evchat__tls_wants_write(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	return ssl != NULL && SSL_want_write(ssl);
}

int evchat__tls_connecting(struct bufferevent *bev)
{
	if (bufferevent_openssl_get_ssl(bev) == NULL)
		return 0;
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	evutil_socket_t fd = bufferevent_getfd(bev);
	return fd >= 0 && getpeername(fd, (struct sockaddr *)&peer, &len) < 0;
}
#else
int evchat__tls_close_notify(struct bufferevent *bev)
{
	(void)bev;
	return 0;
}

int evchat__tls_closed_cleanly(struct bufferevent *bev)
{
	(void)bev;
	return 0;
}

int evchat__tls_layer(struct bufferevent *bev)
{
	(void)bev;
	return 0;
}

int evchat__tls_handshaking(struct bufferevent *bev)
{
	(void)bev;
	return 0;
}

int evchat__tls_wants_write(struct bufferevent *bev)
{
	(void)bev;
	return 0;
}

int evchat__tls_connecting(struct bufferevent *bev)
{
	(void)bev;
	return 0;
}
#endif
