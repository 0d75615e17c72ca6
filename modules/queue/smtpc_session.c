/* SPDX-License-Identifier: MIT */
/* The SMTP client session: its life, connection events, input, the API. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpc_int.h"

#define SMTPC_SESSION_MAGIC 0x534d5443u /* "SMTC" */
/* Long enough for any message on a slow link; each wait has its own
 * timeout anyway. */
#define SMTPC_SESSION_MAX_MS ((int64_t)86400 * 1000)
/* A MAIL or RCPT line: path (512), ORCPT xtext (3 x 500), the rest. */
#define SMTPC_CMD_MAX 2560

static const char *const smtpc_phase_names[] = {
    "connect",       "greeting", "EHLO",      "HELO",         "STARTTLS",
    "TLS handshake", "AUTH",     "MAIL/RCPT", "message data", "end of data",
    "idle",          "QUIT",     "close",
};

const char *
smtpc_phase_name(enum smtpc_phase phase)
{
	return smtpc_phase_names[phase];
}

/* ---- Shared by the handshake and the transactions ----------------------- */

void
smtpc_set_timeout(struct smtpc_session *s, int64_t ms)
{
	if (s->conn != NULL)
		ptl_conn_set_timeouts(s->conn, ms, 0);
}

/* Hand the result over; the transaction is then over for this session. */
void
smtpc_report(struct smtpc_session *s, enum smtpc_outcome outcome)
{
	struct smtpc_txn txn = s->txn;

	s->result_pending = false;
	if (s->timer != NULL)
		ptl_timer_stop(s->timer);
	if (!s->has_txn)
		return;
	s->has_txn = false;
	smtpc_txn_free(s);
	memset(&s->txn, 0, sizeof(s->txn));
	txn.done(s, outcome, txn.arg);
}

void
smtpc_report_later(struct smtpc_session *s, enum smtpc_outcome outcome)
{
	s->result_pending = true;
	s->result = outcome;
	ptl_timer_start(s->timer, 0);
}

static void
session_on_timer(struct ptl_timer *t, void *arg)
{
	struct smtpc_session *s = arg;

	if (s->result_pending)
		smtpc_report(s, s->result);
}

void
smtpc_close(struct smtpc_session *s, enum smtpc_close_mode mode)
{
	if (s->phase == SMTPC_CLOSING || s->conn == NULL)
		return;
	s->phase = SMTPC_CLOSING;
	s->outstanding = 0;
	s->clean = false;
	if (mode == SMTPC_CLOSE_ABORT) {
		ptl_conn_abort(s->conn);
		return;
	}
	/* A QUIT that cannot be queued changes nothing: close anyway. */
	if (mode == SMTPC_CLOSE_QUIT &&
	    ptl_conn_write(s->conn, "QUIT\r\n", 6) == PTL_ERROR)
		ptl_log(PTL_LOG_DEBUG, "smtp client: QUIT not sent");
	ptl_conn_close(s->conn);
}

/* The result of every recipient still pending, from one reply or
 * reason. */
void
smtpc_settle(struct smtpc_session *s, size_t i, enum relay_rcpt_status status,
             const char *reply, bool remote)
{
	struct relay_rcpt *r = &s->txn.job->rcpts[i];

	r->status = status;
	r->dsn_passed = false;
	relay_text(r->reply, sizeof(r->reply), "%s", reply);
	relay_text(r->remote_host, sizeof(r->remote_host), "%s",
	           remote ? s->peer : "");
	s->txn.settled[i] = true;
}

void
smtpc_settle_all(struct smtpc_session *s, enum relay_rcpt_status status,
                 const char *reply, bool remote)
{
	size_t i;

	for (i = 0; i < s->txn.job->nrcpts; i++) {
		if (!s->txn.settled[i])
			smtpc_settle(s, i, status, reply, remote);
	}
}

/*
 * The connection failed (I/O, timeout, garbage, closed by the server).
 * Before any message data left, another host may still get the mail;
 * after, what the server did with it is unknown: the accepted
 * recipients stay pending and are retried later.
 */
void
smtpc_fail(struct smtpc_session *s, bool polite)
{
	enum smtpc_phase phase = s->phase;

	smtpc_close(s, polite ? SMTPC_CLOSE_QUIT : SMTPC_CLOSE_ABORT);
	if (!s->has_txn || s->result_pending)
		return;
	/* Later: the engine may be inside a call into this session. */
	if (phase == SMTPC_SENDING || phase == SMTPC_DOT || s->data_started)
		smtpc_report_later(s, SMTPC_DONE);
	else
		smtpc_report_later(s, SMTPC_NEXT_HOST);
}

void
smtpc_fail_io(struct smtpc_session *s, const char *what)
{
	smtpc_set_reason(s, false, "451 4.4.2 %s: %s during %s", s->peer, what,
	                 smtpc_phase_name(s->phase));
	ptl_log(PTL_LOG_INFO, "relay: %s", s->reason);
	smtpc_fail(s, false);
}

int
smtpc_write(struct smtpc_session *s, const char *fmt, ...)
{
	char line[SMTPC_CMD_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		smtpc_fail_io(s, "command too long");
		return PTL_ERROR;
	}
	if (ptl_conn_write(s->conn, line, (size_t)n) == PTL_ERROR) {
		smtpc_fail_io(s, "write refused");
		return PTL_ERROR;
	}
	s->outstanding++;
	return PTL_OK;
}

/* ---- Input -------------------------------------------------------------- */

static void
session_on_reply(struct smtpc_session *s)
{
	s->outstanding--;
	switch (s->phase) {
	case SMTPC_GREETING:
		smtpc_on_greeting(s);
		break;
	case SMTPC_EHLO:
	case SMTPC_HELO:
		smtpc_on_ehlo(s);
		break;
	case SMTPC_STARTTLS:
		smtpc_on_starttls(s);
		break;
	case SMTPC_AUTH:
		smtpc_on_auth(s);
		break;
	case SMTPC_TXN:
		smtpc_on_txn_reply(s);
		break;
	case SMTPC_SENDING:
		smtpc_on_data_reply(s, true);
		break;
	case SMTPC_DOT:
		smtpc_on_data_reply(s, false);
		break;
	case SMTPC_QUIT:
		smtpc_close(s, SMTPC_CLOSE_FLUSH);
		break;
	default:
		break;
	}
}

static void
session_read(struct smtpc_session *s)
{
	const char *line, *text;
	size_t len, text_len;
	int rc;

	while (s->phase != SMTPC_CLOSING && s->phase != SMTPC_HANDSHAKE) {
		if (s->outstanding == 0) {
			if (ptl_conn_peek(s->conn, &line) == 0)
				return;
			if (s->phase == SMTPC_IDLE) {
				/* Typically "421 idle timeout". */
				smtpc_close(s, SMTPC_CLOSE_ABORT);
				return;
			}
			/* Nothing is owed: talking now breaks the order. */
			smtpc_set_reason(
			    s, false,
			    "451 4.5.0 %s: unexpected input during "
			    "%s",
			    s->peer, smtpc_phase_name(s->phase));
			ptl_log(PTL_LOG_INFO, "relay: %s", s->reason);
			smtpc_fail(s, false);
			return;
		}
		rc = ptl_conn_read_line(s->conn, &line, &len);
		if (rc == PTL_AGAIN)
			return;
		if (rc == PTL_DECLINED) {
			smtpc_fail_io(s, "reply line too long");
			return;
		}
		rc = smtpc_reply_feed(&s->reply, line, len, &text, &text_len);
		if (rc == PTL_ERROR) {
			smtpc_set_reason(s, false, "451 4.5.0 %s: %s during %s",
			                 s->peer, s->reply.error,
			                 smtpc_phase_name(s->phase));
			ptl_log(PTL_LOG_INFO, "relay: %s", s->reason);
			smtpc_fail(s, false);
			return;
		}
		/* EHLO keywords follow the server's name on line one. */
		if (s->phase == SMTPC_EHLO && s->reply.nlines > 1)
			smtpc_caps_line(&s->caps, text, text_len);
		if (rc == PTL_AGAIN)
			continue;
		session_on_reply(s);
		smtpc_reply_reset(&s->reply);
	}
}

static void
session_on_closed(struct smtpc_session *s)
{
	smtpc_closed_fn closed = s->closed;
	void *arg = s->closed_arg;

	s->conn = NULL;
	if (s->has_txn) {
		if (!s->result_pending) {
			if (s->reason[0] == '\0')
				smtpc_set_reason(
				    s, false, "451 4.4.2 %s: connection lost",
				    s->peer);
			s->result =
			    s->data_started ? SMTPC_DONE : SMTPC_NEXT_HOST;
		}
		smtpc_report(s, s->result);
	}
	s->closed = NULL;
	if (closed != NULL)
		closed(s, arg);
	smtpc_txn_free(s);
	ptl_timer_free(s->timer);
	free(s->ca_file);
	free(s->auth_user);
	if (s->auth_password != NULL) {
		explicit_bzero(s->auth_password, strlen(s->auth_password));
		free(s->auth_password);
	}
	s->magic = 0;
	free(s);
}

static void
session_handler(struct ptl_conn *c, enum ptl_conn_event ev, void *arg)
{
	struct smtpc_session *s = arg;

	if (s->magic != SMTPC_SESSION_MAGIC)
		return;
	switch (ev) {
	case PTL_CONN_CONNECTED:
		s->phase = SMTPC_GREETING;
		s->outstanding = 1;
		smtpc_set_timeout(s, s->conf->greeting_timeout);
		break;
	case PTL_CONN_READ:
		session_read(s);
		break;
	case PTL_CONN_DRAINED:
		if (s->phase == SMTPC_SENDING)
			smtpc_continue_data(s);
		break;
	case PTL_CONN_TLS_READY:
		if (s->phase == SMTPC_HANDSHAKE)
			smtpc_on_tls_ready(s);
		break;
	case PTL_CONN_TIMEOUT:
		if (s->phase == SMTPC_IDLE || s->phase == SMTPC_QUIT) {
			smtpc_close(s, s->phase == SMTPC_IDLE
			                   ? SMTPC_CLOSE_QUIT
			                   : SMTPC_CLOSE_ABORT);
			break;
		}
		smtpc_fail_io(s, "timeout");
		break;
	case PTL_CONN_EOF:
		if (s->phase == SMTPC_IDLE || s->phase == SMTPC_QUIT) {
			smtpc_close(s, SMTPC_CLOSE_ABORT);
			break;
		}
		smtpc_fail_io(s, "connection closed by the server");
		break;
	case PTL_CONN_ERROR:
		if (s->phase == SMTPC_HANDSHAKE) {
			smtpc_set_reason(s, false,
			                 "451 4.7.5 %s: TLS handshake failed",
			                 s->peer);
			ptl_log(PTL_LOG_INFO, "relay: %s", s->reason);
			s->phase = SMTPC_CLOSING;
			if (s->has_txn && !s->result_pending)
				smtpc_report(s, s->tls_policy == RELAY_TLS_MAY
				                    ? SMTPC_TLS_RETRY
				                    : SMTPC_NEXT_HOST);
			break;
		}
		if (s->phase == SMTPC_CONNECTING) {
			smtpc_set_reason(s, false,
			                 "451 4.4.1 cannot connect to %s",
			                 s->peer);
			ptl_log(PTL_LOG_INFO, "relay: %s", s->reason);
			s->phase = SMTPC_CLOSING;
			if (s->has_txn && !s->result_pending)
				smtpc_report(s, SMTPC_NEXT_HOST);
			break;
		}
		if (s->phase != SMTPC_CLOSING)
			smtpc_fail_io(s, "connection error");
		s->phase = SMTPC_CLOSING;
		break;
	case PTL_CONN_CLOSED:
		session_on_closed(s);
		break;
	}
	(void)c;
}

/* ---- API ---------------------------------------------------------------- */

static char *
session_strdup(const char *s, bool *ok)
{
	char *copy;

	if (s == NULL)
		return NULL;
	copy = strdup(s);
	if (copy == NULL)
		*ok = false;
	return copy;
}

struct smtpc_session *
smtpc_session_start(const struct smtpc_conf *conf, const char *helo,
                    const struct smtpc_target *t, const struct smtpc_txn *txn,
                    struct ptl_error *err)
{
	struct ptl_conn_limits limits = {0};
	char ip[INET6_ADDRSTRLEN];
	struct smtpc_session *s;
	uint16_t port;
	bool ok = true;

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		ptl_error_set(err, "out of memory");
		return NULL;
	}
	s->magic = SMTPC_SESSION_MAGIC;
	s->conf = conf;
	s->phase = SMTPC_CONNECTING;
	s->tls_policy = t->tls;
	s->no_starttls = t->no_starttls;
	s->ca_file = session_strdup(t->ca_file, &ok);
	s->auth_user = session_strdup(t->auth_user, &ok);
	s->auth_password =
	    session_strdup(t->auth_user != NULL ? t->auth_password : NULL, &ok);
	if (s->auth_user != NULL && s->auth_password == NULL)
		s->auth_password = session_strdup("", &ok);
	s->timer = ptl_timer_new(session_on_timer, s);
	smtpc_reply_reset(&s->reply);
	relay_text(s->helo, sizeof(s->helo), "%s", helo);
	relay_text(s->host, sizeof(s->host), "%s", t->host);
	if (t->addr.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)&t->addr;

		(void)inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		port = ntohs(a->sin6_port);
	} else {
		const struct sockaddr_in *a = (const void *)&t->addr;

		(void)inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		port = ntohs(a->sin_port);
	}
	relay_text(s->peer, sizeof(s->peer), "%s[%s]:%u", t->host, ip,
	           (unsigned)port);
	if (!ok || s->timer == NULL) {
		ptl_error_set(err, "out of memory");
		goto fail;
	}
	s->txn = *txn;
	s->has_txn = true;
	limits.idle_timeout_ms = conf->connect_timeout;
	limits.total_timeout_ms = SMTPC_SESSION_MAX_MS;
	limits.max_line = SMTPC_REPLY_LINE_MAX;
	s->conn =
	    ptl_conn_connect((const struct sockaddr *)&t->addr, t->addrlen,
	                     &limits, session_handler, s, err);
	if (s->conn == NULL)
		goto fail;
	return s;
fail:
	ptl_timer_free(s->timer);
	free(s->ca_file);
	free(s->auth_user);
	free(s->auth_password);
	free(s);
	return NULL;
}

int
smtpc_session_send(struct smtpc_session *s, const struct smtpc_txn *txn)
{
	if (!smtpc_session_reusable(s))
		return PTL_ERROR;
	s->closed = NULL;
	s->closed_arg = NULL;
	s->txn = *txn;
	s->has_txn = true;
	s->reason[0] = '\0';
	s->permanent = false;
	smtpc_txn_begin(s);
	return PTL_OK;
}

bool
smtpc_session_reusable(const struct smtpc_session *s)
{
	return s->conn != NULL && s->clean && !s->has_txn &&
	       s->outstanding == 0 &&
	       (s->phase == SMTPC_TXN || s->phase == SMTPC_IDLE) &&
	       s->conf->reuse_messages > 0 &&
	       s->messages < (unsigned)s->conf->reuse_messages;
}

void
smtpc_session_park(struct smtpc_session *s, int64_t idle_ms,
                   smtpc_closed_fn closed, void *arg)
{
	s->closed = closed;
	s->closed_arg = arg;
	s->phase = SMTPC_IDLE;
	smtpc_set_timeout(s, idle_ms);
}

void
smtpc_session_quit(struct smtpc_session *s)
{
	s->closed = NULL;
	s->has_txn = false;
	if (s->phase == SMTPC_CLOSING || s->conn == NULL)
		return;
	if (!s->clean) {
		smtpc_close(s, SMTPC_CLOSE_QUIT);
		return;
	}
	s->phase = SMTPC_QUIT;
	s->outstanding = 0;
	smtpc_set_timeout(s, s->conf->quit_timeout);
	if (smtpc_write(s, "QUIT\r\n") != PTL_OK)
		return;
}

void
smtpc_session_abort(struct smtpc_session *s)
{
	s->closed = NULL;
	s->has_txn = false;
	s->result_pending = false;
	smtpc_txn_free(s);
	smtpc_close(s, SMTPC_CLOSE_ABORT);
}

const char *
smtpc_session_reason(const struct smtpc_session *s)
{
	return s->reason;
}

bool
smtpc_session_reason_remote(const struct smtpc_session *s)
{
	return s->reason_remote;
}

bool
smtpc_session_permanent(const struct smtpc_session *s)
{
	return s->permanent;
}

const char *
smtpc_session_peer(const struct smtpc_session *s)
{
	return s->peer;
}

unsigned
smtpc_session_messages(const struct smtpc_session *s)
{
	return s->messages;
}
