/* SPDX-License-Identifier: MIT */
/* Connection TLS: handshakes, STARTTLS both sides, SSL reads and writes. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/conn_internal.h"
#include "core/tls.h"

/* The reason of a failed TLS call, for the log. Empties the error queue. */
static const char *
conn_tls_error(const struct ptl_conn *c, int sslerr, int saved_errno, char *buf,
               size_t size)
{
	unsigned long first = ERR_peek_error();
	long verify;

	if (!c->tls_server && c->tls_verify && c->ssl != NULL &&
	    (verify = SSL_get_verify_result(c->ssl)) != X509_V_OK) {
		ERR_clear_error();
		snprintf(buf, size, "certificate verification failed: %s",
		         X509_verify_cert_error_string(verify));
		return buf;
	}
	if (first != 0) {
		const char *reason = ERR_reason_error_string(first);

		if (reason != NULL)
			snprintf(buf, size, "%s", reason);
		else
			ERR_error_string_n(first, buf, size);
	} else if (sslerr == SSL_ERROR_SYSCALL && saved_errno != 0) {
		snprintf(buf, size, "%s", strerror(saved_errno));
	} else if (sslerr == SSL_ERROR_SYSCALL ||
	           sslerr == SSL_ERROR_ZERO_RETURN) {
		snprintf(buf, size, "connection closed by peer");
	} else {
		snprintf(buf, size, "TLS error %d", sslerr);
	}
	ERR_clear_error();
	return buf;
}

int
conn_tls_setup(struct ptl_conn *c, SSL_CTX *ctx, bool server,
               struct ptl_error *err)
{
	char reason[256];

	ERR_clear_error();
	c->ssl = SSL_new(ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		SSL_free(c->ssl);
		c->ssl = NULL;
		return ptl_error_set(err, "cannot start TLS: %s",
		                     conn_tls_error(c, SSL_ERROR_SSL, 0, reason,
		                                    sizeof(reason)));
	}
	SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                         SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (server)
		SSL_set_accept_state(c->ssl);
	else
		SSL_set_connect_state(c->ssl);
	c->tls_server = server;
	c->hs_want = server ? PTL_IO_READ : PTL_IO_WRITE;
	return PTL_OK;
}

/*
 * CVE-2011-0411: bytes that arrived with the STARTTLS command were sent in
 * clear and must never be read as if they came through TLS. Bytes still
 * in the kernel's buffer are read by OpenSSL as handshake records and
 * make the handshake fail, which is the right outcome for an injection.
 */
static void
conn_tls_begin(struct ptl_conn *c)
{
	c->in.pos = c->in.last = c->in.start;
	c->discarding = false;
	c->in_full = false;
	c->clear_left = c->pending;
	c->tls = c->clear_left > 0 ? CONN_TLS_FLUSH_CLEAR : CONN_TLS_HANDSHAKE;
	c->active_ms = ptl_now_ms();
	conn_kick(c,
	          c->tls == CONN_TLS_FLUSH_CLEAR ? KICK_FLUSH : KICK_HANDSHAKE);
	conn_update(c);
}

void
conn_handshake(struct ptl_conn *c)
{
	char reason[256];
	int rc, e, saved;

	ERR_clear_error();
	rc = SSL_do_handshake(c->ssl);
	if (rc == 1) {
		c->tls = CONN_TLS_ACTIVE;
		c->hs_want = 0;
		c->active_ms = ptl_now_ms();
		c->tls_verified = !c->tls_server && c->tls_verify &&
		                  SSL_get0_peer_certificate(c->ssl) != NULL &&
		                  SSL_get_verify_result(c->ssl) == X509_V_OK;
		conn_log(c, PTL_LOG_DEBUG, "TLS established: %s, %s",
		         SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
		conn_emit(c, PTL_CONN_TLS_READY);
		return;
	}
	saved = errno;
	e = SSL_get_error(c->ssl, rc);
	if (e == SSL_ERROR_WANT_READ) {
		c->hs_want = PTL_IO_READ;
		return;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		c->hs_want = PTL_IO_WRITE;
		return;
	}
	conn_log(c, PTL_LOG_INFO, "TLS handshake failed: %s",
	         conn_tls_error(c, e, saved, reason, sizeof(reason)));
	conn_fail(c);
}

int
conn_read_tls(struct ptl_conn *c, size_t *got)
{
	char reason[256];
	int n, e, saved;

	c->read_wants_write = false;
	while (ptl_buf_room(&c->in) > 0) {
		size_t room = ptl_buf_room(&c->in);

		ERR_clear_error();
		n = SSL_read(c->ssl, c->in.last,
		             room > INT_MAX ? INT_MAX : (int)room);
		if (n > 0) {
			c->in.last += n;
			*got += (size_t)n;
			continue;
		}
		saved = errno;
		e = SSL_get_error(c->ssl, n);
		switch (e) {
		case SSL_ERROR_WANT_READ:
			return PTL_OK;
		case SSL_ERROR_WANT_WRITE:
			c->read_wants_write = true;
			return PTL_OK;
		case SSL_ERROR_ZERO_RETURN:
			return PTL_DONE; /* close_notify */
		case SSL_ERROR_SSL:
			/* Many clients just close TCP: treat it as EOF. */
			if (ERR_GET_REASON(ERR_peek_error()) ==
			    SSL_R_UNEXPECTED_EOF_WHILE_READING) {
				ERR_clear_error();
				return PTL_DONE;
			}
			break;
		case SSL_ERROR_SYSCALL:
			if (saved == 0 && ERR_peek_error() == 0)
				return PTL_DONE;
			break;
		default:
			break;
		}
		conn_log(c, PTL_LOG_INFO, "TLS read failed: %s",
		         conn_tls_error(c, e, saved, reason, sizeof(reason)));
		return PTL_ERROR;
	}
	return PTL_OK;
}

/*
 * A retried SSL_write must get the same bytes again: the head chunk does
 * not move until written and only ever grows at its end, which
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER and PARTIAL_WRITE allow.
 */
int
conn_flush_tls(struct ptl_conn *c)
{
	char reason[256];

	c->write_wants_read = false;
	while (c->pending > 0) {
		struct conn_chunk *ch = c->wq_head;
		size_t len = (size_t)(ch->last - ch->pos);
		int n, e, saved;

		if (len > INT_MAX)
			len = INT_MAX;
		ERR_clear_error();
		n = SSL_write(c->ssl, ch->pos, (int)len);
		if (n > 0) {
			conn_queue_consume(c, (size_t)n);
			c->active_ms = ptl_now_ms();
			continue;
		}
		saved = errno;
		e = SSL_get_error(c->ssl, n);
		if (e == SSL_ERROR_WANT_WRITE)
			return PTL_OK;
		if (e == SSL_ERROR_WANT_READ) {
			c->write_wants_read = true;
			return PTL_OK;
		}
		conn_log(c, PTL_LOG_INFO, "TLS write failed: %s",
		         conn_tls_error(c, e, saved, reason, sizeof(reason)));
		conn_fail(c);
		return PTL_ERROR;
	}
	return PTL_OK;
}

PTL_API int
ptl_conn_starttls(struct ptl_conn *c, struct ptl_error *err)
{
	if (c->state != CONN_OPEN)
		return ptl_error_set(err,
		                     "STARTTLS: the connection is closing");
	if (c->tls != CONN_TLS_NONE)
		return ptl_error_set(err, "STARTTLS: TLS is already active");
	if (c->server_ctx == NULL)
		return ptl_error_set(err, "STARTTLS: no TLS certificate "
		                          "configured");
	if (conn_tls_setup(c, c->server_ctx, true, err) != PTL_OK)
		return PTL_ERROR;
	conn_tls_begin(c);
	return PTL_OK;
}

PTL_API bool
ptl_conn_starttls_available(const struct ptl_conn *c)
{
	return c->state == CONN_OPEN && c->tls == CONN_TLS_NONE &&
	       c->server_ctx != NULL;
}

static bool
conn_is_ip_literal(const char *s)
{
	unsigned char addr[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, addr) == 1 ||
	       inet_pton(AF_INET6, s, addr) == 1;
}

PTL_API int
ptl_conn_starttls_client(struct ptl_conn *c, const char *sni,
                         enum ptl_tls_verify verify, const char *ca_file,
                         struct ptl_error *err)
{
	SSL_CTX *ctx;
	bool ip;

	if (c->state != CONN_OPEN)
		return ptl_error_set(err,
		                     "STARTTLS: the connection is closing");
	if (c->tls != CONN_TLS_NONE)
		return ptl_error_set(err, "STARTTLS: TLS is already active");
	if (sni != NULL && sni[0] == '\0')
		sni = NULL;
	if (verify == PTL_TLS_VERIFY_PEER && sni == NULL)
		return ptl_error_set(err, "STARTTLS: verifying the server "
		                          "needs its host name");
	ctx = ptl_tls_client_ctx(verify, ca_file, err);
	if (ctx == NULL)
		return PTL_ERROR;
	if (conn_tls_setup(c, ctx, false, err) != PTL_OK)
		return PTL_ERROR;
	ip = sni != NULL && conn_is_ip_literal(sni);
	/* RFC 6066 3: SNI carries host names, never address literals. */
	if (sni != NULL && !ip && SSL_set_tlsext_host_name(c->ssl, sni) != 1)
		goto fail;
	if (verify == PTL_TLS_VERIFY_PEER) {
		SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl),
		                                       sni) != 1
		       : SSL_set1_host(c->ssl, sni) != 1)
			goto fail;
	}
	c->tls_verify = verify == PTL_TLS_VERIFY_PEER;
	conn_tls_begin(c);
	return PTL_OK;
fail:
	ERR_clear_error();
	SSL_free(c->ssl);
	c->ssl = NULL;
	return ptl_error_set(err, "STARTTLS: bad server name \"%s\"", sni);
}

PTL_API bool
ptl_conn_is_tls(const struct ptl_conn *c)
{
	return c->tls == CONN_TLS_ACTIVE;
}

PTL_API const char *
ptl_conn_tls_version(const struct ptl_conn *c)
{
	return c->tls == CONN_TLS_ACTIVE ? SSL_get_version(c->ssl) : NULL;
}

PTL_API const char *
ptl_conn_tls_cipher(const struct ptl_conn *c)
{
	return c->tls == CONN_TLS_ACTIVE ? SSL_get_cipher_name(c->ssl) : NULL;
}

PTL_API bool
ptl_conn_tls_verified(const struct ptl_conn *c)
{
	return c->tls == CONN_TLS_ACTIVE && c->tls_verified;
}
