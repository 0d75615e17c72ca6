/* SPDX-License-Identifier: MIT */
/* SMTP client handshake: greeting, EHLO (HELO fallback), STARTTLS, AUTH. */
#include <string.h>

#include "smtpc_int.h"

static void session_after_ehlo(struct smtpc_session *s);

static void
session_send_ehlo(struct smtpc_session *s, bool helo)
{
	memset(&s->caps, 0, sizeof(s->caps));
	s->phase = helo ? SMTPC_HELO : SMTPC_EHLO;
	smtpc_set_timeout(s, s->conf->command_timeout);
	(void)smtpc_write(s, "%s %s\r\n", helo ? "HELO" : "EHLO", s->helo);
}

/* A reply that sends us to another host. */
static void
session_refused(struct smtpc_session *s, bool permanent)
{
	smtpc_set_reason(s, true, "%s", s->reply.text);
	s->permanent = permanent;
	ptl_log(PTL_LOG_INFO, "relay: %s refused at %s: %s", s->peer,
	        smtpc_phase_name(s->phase), s->reply.text);
	smtpc_fail(s, true);
}

void
smtpc_on_greeting(struct smtpc_session *s)
{
	int cls = smtpc_reply_class(&s->reply);

	if (cls == 2) {
		session_send_ehlo(s, false);
		return;
	}
	/* A 5xx greeting is skipped like a 4xx (as Postfix does by
	 * default); when no other host takes the mail it bounces. */
	session_refused(s, cls == 5);
}

void
smtpc_on_ehlo(struct smtpc_session *s)
{
	int cls = smtpc_reply_class(&s->reply);

	if (cls == 2) {
		s->ehlo_done = true;
		session_after_ehlo(s);
		return;
	}
	if (s->phase == SMTPC_EHLO && cls == 5) {
		/* RFC 5321 3.2: a server without extensions. */
		session_send_ehlo(s, true);
		return;
	}
	if (cls == 5 && s->has_txn) {
		/* Even HELO refused: this host will never take our mail. */
		smtpc_set_reason(s, true, "%s", s->reply.text);
		smtpc_settle_all(s, RELAY_RCPT_FAILED, s->reply.text, true);
		smtpc_close(s, SMTPC_CLOSE_QUIT);
		smtpc_report(s, SMTPC_DONE);
		return;
	}
	session_refused(s, false);
}

void
smtpc_on_starttls(struct smtpc_session *s)
{
	struct ptl_error err;
	bool verify = s->tls_policy == RELAY_TLS_VERIFY;

	if (smtpc_reply_class(&s->reply) != 2) {
		if (s->tls_policy == RELAY_TLS_MAY) {
			s->starttls_refused = true;
			session_after_ehlo(s);
			return;
		}
		session_refused(s, false);
		return;
	}
	s->phase = SMTPC_HANDSHAKE;
	smtpc_set_timeout(s, s->conf->command_timeout);
	/* The core drops every byte that came with the 220: a server (or
	 * a man in the middle) cannot make us read cleartext as if it
	 * came through TLS. */
	if (ptl_conn_starttls_client(s->conn, s->host,
	                             verify ? PTL_TLS_VERIFY_PEER
	                                    : PTL_TLS_VERIFY_NONE,
	                             s->ca_file, &err) != PTL_OK) {
		smtpc_set_reason(s, false, "451 4.7.5 %s: %s", s->peer,
		                 err.text);
		ptl_log(PTL_LOG_WARN, "relay: %s", s->reason);
		smtpc_fail(s, false);
	}
}

void
smtpc_on_tls_ready(struct smtpc_session *s)
{
	if (s->tls_policy == RELAY_TLS_VERIFY &&
	    !ptl_conn_tls_verified(s->conn)) {
		smtpc_set_reason(s, false,
		                 "451 4.7.5 %s: certificate not verified",
		                 s->peer);
		smtpc_fail(s, false);
		return;
	}
	s->tls = true;
	ptl_log(PTL_LOG_DEBUG, "relay: %s: TLS %s %s%s", s->peer,
	        ptl_conn_tls_version(s->conn), ptl_conn_tls_cipher(s->conn),
	        ptl_conn_tls_verified(s->conn) ? ", verified" : "");
	/* RFC 3207 4.2: forget everything learnt before TLS. */
	s->ehlo_done = false;
	session_send_ehlo(s, false);
}

/* RFC 4616: "\0user\0password", one line with the initial response. */
static void
session_send_auth(struct smtpc_session *s)
{
	unsigned char plain[2 + 255 + 255];
	char b64[(sizeof(plain) + 2) / 3 * 4 + 1];
	size_t ulen = strlen(s->auth_user), plen = strlen(s->auth_password);
	size_t n;

	if (ulen > 255 || plen > 255) {
		smtpc_set_reason(s, false,
		                 "451 4.7.8 AUTH credentials too long");
		smtpc_fail(s, true);
		return;
	}
	plain[0] = '\0';
	memcpy(plain + 1, s->auth_user, ulen);
	plain[1 + ulen] = '\0';
	memcpy(plain + 2 + ulen, s->auth_password, plen);
	n = ptl_base64_encode(plain, 2 + ulen + plen, b64, sizeof(b64));
	explicit_bzero(plain, sizeof(plain));
	if (n == 0) {
		/* Cannot happen with these sizes; never wait for a reply
		 * to a command that was not sent. */
		smtpc_set_reason(
		    s, false, "451 4.7.8 AUTH credentials cannot be encoded");
		smtpc_fail(s, true);
		return;
	}
	s->phase = SMTPC_AUTH;
	smtpc_set_timeout(s, s->conf->command_timeout);
	(void)smtpc_write(s, "AUTH PLAIN %s\r\n", b64);
	explicit_bzero(b64, sizeof(b64));
}

void
smtpc_on_auth(struct smtpc_session *s)
{
	if (smtpc_reply_class(&s->reply) != 2) {
		/* A 334 asks for more than PLAIN with an initial response
		 * can give: stop, as for any refusal. */
		session_refused(s, false);
		return;
	}
	s->authed = true;
	s->clean = true;
	smtpc_txn_begin(s);
}

static void
session_after_ehlo(struct smtpc_session *s)
{
	bool want_tls = s->tls_policy != RELAY_TLS_NONE && !s->no_starttls &&
	                !s->starttls_refused;

	if (!s->tls && want_tls && (s->caps.ext & SMTPC_EXT_STARTTLS)) {
		s->phase = SMTPC_STARTTLS;
		smtpc_set_timeout(s, s->conf->command_timeout);
		(void)smtpc_write(s, "STARTTLS\r\n");
		return;
	}
	if (!s->tls && (s->tls_policy == RELAY_TLS_ENCRYPT ||
	                s->tls_policy == RELAY_TLS_VERIFY)) {
		smtpc_set_reason(s, false,
		                 "451 4.7.4 %s does not offer STARTTLS, which "
		                 "the TLS policy requires",
		                 s->peer);
		ptl_log(PTL_LOG_INFO, "relay: %s", s->reason);
		smtpc_fail(s, true);
		return;
	}
	if (s->auth_user != NULL && !s->authed) {
		/* Credentials never travel in clear. */
		if (!s->tls) {
			smtpc_set_reason(s, false,
			                 "451 4.7.11 %s: no TLS, so no AUTH "
			                 "credentials sent",
			                 s->peer);
			smtpc_fail(s, true);
			return;
		}
		if (!(s->caps.ext & SMTPC_EXT_AUTH_PLAIN)) {
			smtpc_set_reason(s, false,
			                 "451 4.7.8 %s does not offer AUTH "
			                 "PLAIN",
			                 s->peer);
			smtpc_fail(s, true);
			return;
		}
		session_send_auth(s);
		return;
	}
	s->clean = true;
	smtpc_txn_begin(s);
}
