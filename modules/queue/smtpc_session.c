/* SPDX-License-Identifier: MIT */
/* The SMTP client session: one connection, its handshake and transactions. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "smtpc.h"

/*
 * How a session runs
 *
 * A session is one connection to one address. It greets (EHLO, HELO
 * when EHLO is refused), upgrades with STARTTLS as the target's policy
 * says and greets again, authenticates when the route has credentials,
 * then runs transactions: one per message, on the same connection when
 * the engine parks it between messages.
 *
 * Commands go out in the order their replies are read back; with
 * PIPELINING (RFC 2920) MAIL, every RCPT and DATA leave in one write.
 * `outstanding` counts the replies still owed: input is read only while
 * some are, so a server that talks out of turn is caught, and nothing
 * read before the STARTTLS handshake survives it (the core discards the
 * buffer: SECURITY.md #2, client side).
 *
 * The result of a transaction goes to its callback as soon as it is
 * known, never from inside a call the engine made (a timer defers it
 * when needed). After SMTPC_NEXT_HOST and SMTPC_TLS_RETRY the session
 * closes on its own; it frees itself at the connection's CLOSED event.
 */

#define SMTPC_SESSION_MAGIC 0x534d5443u /* "SMTC" */
/* Long enough for any message on a slow link; each wait has its own
 * timeout anyway. */
#define SMTPC_SESSION_MAX_MS ((int64_t)86400 * 1000)
/* "host[address]:port" */
#define SMTPC_PEER_MAX (RELAY_HOST_MAX + INET6_ADDRSTRLEN + 10)
/* A MAIL or RCPT line: path (512), ORCPT xtext (3 x 500), the rest. */
#define SMTPC_CMD_MAX 2560

enum smtpc_phase {
	SMTPC_CONNECTING = 0,
	SMTPC_GREETING,
	SMTPC_EHLO,
	SMTPC_HELO,
	SMTPC_STARTTLS,
	SMTPC_HANDSHAKE,
	SMTPC_AUTH,
	SMTPC_TXN,     /* replies to MAIL, RCPT, DATA */
	SMTPC_SENDING, /* message data going out */
	SMTPC_DOT,     /* reply to the end of data */
	SMTPC_IDLE,    /* parked between messages */
	SMTPC_QUIT,    /* reply to QUIT */
	SMTPC_CLOSING, /* waiting for CLOSED */
};

static const char *const smtpc_phase_names[] = {
    "connect",       "greeting", "EHLO",      "HELO",         "STARTTLS",
    "TLS handshake", "AUTH",     "MAIL/RCPT", "message data", "end of data",
    "idle",          "QUIT",     "close",
};

struct smtpc_session {
	uint32_t magic;
	struct ptl_conn *conn;
	const struct smtpc_conf *conf;
	enum smtpc_phase phase;
	struct ptl_timer *timer; /* deferred results */

	char helo[RELAY_HOST_MAX];
	char host[RELAY_HOST_MAX];
	char peer[SMTPC_PEER_MAX];
	enum relay_tls_policy tls_policy;
	bool no_starttls;
	char *ca_file;
	char *auth_user;
	char *auth_password;

	struct smtpc_reply reply;
	unsigned outstanding; /* replies owed by the server */
	struct smtpc_caps caps;
	bool ehlo_done;
	bool tls;
	bool starttls_refused;
	bool authed;
	unsigned messages;
	bool clean; /* no transaction open: another may start */

	/* The running transaction. */
	bool has_txn;
	struct smtpc_txn txn;
	size_t *order;  /* recipients in RCPT order */
	bool *accepted; /* by position in order */
	size_t norder;
	size_t sent;     /* commands sent: 0 MAIL, 1..norder RCPT, DATA */
	size_t answered; /* replies read, same numbering */
	bool pipelining;
	bool bdat;
	bool mail_ok;
	bool utf8; /* MAIL carries SMTPUTF8 */
	size_t naccepted;
	char mail_reply[SMTPC_REPLY_TEXT_MAX];
	int mail_code;
	struct smtpc_data data;
	bool data_started;

	/* The result waiting for the timer. */
	bool result_pending;
	enum smtpc_outcome result;

	char reason[SMTPC_REPLY_TEXT_MAX];
	bool reason_remote;
	bool permanent;

	smtpc_closed_fn closed;
	void *closed_arg;
};

static void session_handler(struct ptl_conn *c, enum ptl_conn_event ev,
                            void *arg);
static void session_after_ehlo(struct smtpc_session *s);
static void session_txn_begin(struct smtpc_session *s);

/* Reasons go into bounces and logs: relay_text() keeps them one
 * printable ASCII line. */
#define session_reason(s, remote, ...)                                         \
	do {                                                                   \
		relay_text((s)->reason, sizeof((s)->reason), __VA_ARGS__);     \
		(s)->reason_remote = (remote);                                 \
	} while (0)

static void
session_set_timeout(struct smtpc_session *s, int64_t ms)
{
	if (s->conn != NULL)
		ptl_conn_set_timeouts(s->conn, ms, 0);
}

static void
session_txn_free(struct smtpc_session *s)
{
	smtpc_data_end(&s->data);
	free(s->order);
	free(s->accepted);
	s->order = NULL;
	s->accepted = NULL;
	s->norder = 0;
}

/* Hand the result over; the transaction is then over for this session. */
static void
session_report(struct smtpc_session *s, enum smtpc_outcome outcome)
{
	struct smtpc_txn txn = s->txn;

	s->result_pending = false;
	if (s->timer != NULL)
		ptl_timer_stop(s->timer);
	if (!s->has_txn)
		return;
	s->has_txn = false;
	session_txn_free(s);
	memset(&s->txn, 0, sizeof(s->txn));
	txn.done(s, outcome, txn.arg);
}

static void
session_report_later(struct smtpc_session *s, enum smtpc_outcome outcome)
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
		session_report(s, s->result);
}

enum session_close_mode {
	SESSION_ABORT = 0, /* drop queued output: data may be incomplete */
	SESSION_FLUSH,     /* send what is queued, then close */
	SESSION_QUIT,      /* say QUIT first (its reply does not matter) */
};

static void
session_close(struct smtpc_session *s, enum session_close_mode mode)
{
	if (s->phase == SMTPC_CLOSING || s->conn == NULL)
		return;
	s->phase = SMTPC_CLOSING;
	s->outstanding = 0;
	s->clean = false;
	if (mode == SESSION_ABORT) {
		ptl_conn_abort(s->conn);
		return;
	}
	if (mode == SESSION_QUIT)
		if (ptl_conn_write(s->conn, "QUIT\r\n", 6) == PTL_ERROR)
			mode = SESSION_FLUSH;
	ptl_conn_close(s->conn);
}

/* The result of every recipient still pending, from one reply or
 * reason. */
static void
session_settle(struct smtpc_session *s, size_t i, enum relay_rcpt_status status,
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

static void
session_settle_all(struct smtpc_session *s, enum relay_rcpt_status status,
                   const char *reply, bool remote)
{
	size_t i;

	for (i = 0; i < s->txn.job->nrcpts; i++) {
		if (!s->txn.settled[i])
			session_settle(s, i, status, reply, remote);
	}
}

/*
 * The connection failed (I/O, timeout, garbage, closed by the server).
 * Before any message data left, another host may still get the mail;
 * after, what the server did with it is unknown: the accepted
 * recipients stay pending and are retried later.
 */
static void
session_fail(struct smtpc_session *s, bool polite)
{
	enum smtpc_phase phase = s->phase;

	session_close(s, polite ? SESSION_QUIT : SESSION_ABORT);
	if (!s->has_txn || s->result_pending)
		return;
	/* Later: the engine may be inside a call into this session. */
	if (phase == SMTPC_SENDING || phase == SMTPC_DOT || s->data_started)
		session_report_later(s, SMTPC_DONE);
	else
		session_report_later(s, SMTPC_NEXT_HOST);
}

static void
session_fail_io(struct smtpc_session *s, const char *what)
{
	session_reason(s, false, "451 4.4.2 %s: %s during %s", s->peer, what,
	               smtpc_phase_names[s->phase]);
	ptl_log(PTL_LOG_INFO, "relay: %s", s->reason);
	session_fail(s, false);
}

static int session_write(struct smtpc_session *s, const char *fmt, ...)
    PTL_PRINTF(2, 3);

static int
session_write(struct smtpc_session *s, const char *fmt, ...)
{
	char line[SMTPC_CMD_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		session_fail_io(s, "command too long");
		return PTL_ERROR;
	}
	if (ptl_conn_write(s->conn, line, (size_t)n) == PTL_ERROR) {
		session_fail_io(s, "write refused");
		return PTL_ERROR;
	}
	s->outstanding++;
	return PTL_OK;
}

/* ---- Greeting, EHLO, STARTTLS, AUTH ------------------------------------ */

static void
session_send_ehlo(struct smtpc_session *s, bool helo)
{
	memset(&s->caps, 0, sizeof(s->caps));
	s->phase = helo ? SMTPC_HELO : SMTPC_EHLO;
	session_set_timeout(s, s->conf->command_timeout);
	(void)session_write(s, "%s %s\r\n", helo ? "HELO" : "EHLO", s->helo);
}

/* A reply that sends us to another host. */
static void
session_refused(struct smtpc_session *s, bool permanent)
{
	session_reason(s, true, "%s", s->reply.text);
	s->permanent = permanent;
	ptl_log(PTL_LOG_INFO, "relay: %s refused at %s: %s", s->peer,
	        smtpc_phase_names[s->phase], s->reply.text);
	session_fail(s, true);
}

static void
session_on_greeting(struct smtpc_session *s)
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

static void
session_on_ehlo(struct smtpc_session *s)
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
		session_reason(s, true, "%s", s->reply.text);
		session_settle_all(s, RELAY_RCPT_FAILED, s->reply.text, true);
		session_close(s, SESSION_QUIT);
		session_report(s, SMTPC_DONE);
		return;
	}
	session_refused(s, false);
}

static void
session_on_starttls(struct smtpc_session *s)
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
	session_set_timeout(s, s->conf->command_timeout);
	/* The core drops every byte that came with the 220: a server (or
	 * a man in the middle) cannot make us read cleartext as if it
	 * came through TLS. */
	if (ptl_conn_starttls_client(s->conn, s->host,
	                             verify ? PTL_TLS_VERIFY_PEER
	                                    : PTL_TLS_VERIFY_NONE,
	                             s->ca_file, &err) != PTL_OK) {
		session_reason(s, false, "451 4.7.5 %s: %s", s->peer, err.text);
		ptl_log(PTL_LOG_WARN, "relay: %s", s->reason);
		session_fail(s, false);
	}
}

static void
session_on_tls_ready(struct smtpc_session *s)
{
	if (s->tls_policy == RELAY_TLS_VERIFY &&
	    !ptl_conn_tls_verified(s->conn)) {
		session_reason(s, false,
		               "451 4.7.5 %s: certificate not verified",
		               s->peer);
		session_fail(s, false);
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

static size_t
session_base64(char *out, size_t cap, const unsigned char *in, size_t len)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
	                          "qrstuvwxyz0123456789+/";
	size_t o = 0, i;

	if ((len + 2) / 3 * 4 + 1 > cap)
		return (size_t)-1;
	for (i = 0; i + 2 < len; i += 3) {
		out[o++] = tab[in[i] >> 2];
		out[o++] = tab[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		out[o++] = tab[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
		out[o++] = tab[in[i + 2] & 63];
	}
	if (i < len) {
		out[o++] = tab[in[i] >> 2];
		if (i + 1 < len) {
			out[o++] = tab[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
			out[o++] = tab[(in[i + 1] & 15) << 2];
		} else {
			out[o++] = tab[(in[i] & 3) << 4];
			out[o++] = '=';
		}
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

/* RFC 4616: "\0user\0password", one line with the initial response. */
static void
session_send_auth(struct smtpc_session *s)
{
	unsigned char plain[2 + 255 + 255];
	char b64[(sizeof(plain) + 2) / 3 * 4 + 1];
	size_t ulen = strlen(s->auth_user), plen = strlen(s->auth_password);
	size_t n;
	int rc;

	if (ulen > 255 || plen > 255) {
		session_reason(s, false, "451 4.7.8 AUTH credentials too long");
		session_fail(s, true);
		return;
	}
	plain[0] = '\0';
	memcpy(plain + 1, s->auth_user, ulen);
	plain[1 + ulen] = '\0';
	memcpy(plain + 2 + ulen, s->auth_password, plen);
	n = session_base64(b64, sizeof(b64), plain, 2 + ulen + plen);
	explicit_bzero(plain, sizeof(plain));
	s->phase = SMTPC_AUTH;
	session_set_timeout(s, s->conf->command_timeout);
	rc = n == (size_t)-1 ? PTL_ERROR
	                     : session_write(s, "AUTH PLAIN %s\r\n", b64);
	explicit_bzero(b64, sizeof(b64));
	(void)rc;
}

static void
session_on_auth(struct smtpc_session *s)
{
	if (smtpc_reply_class(&s->reply) != 2) {
		/* A 334 asks for more than PLAIN with an initial response
		 * can give: stop, as for any refusal. */
		session_refused(s, false);
		return;
	}
	s->authed = true;
	s->clean = true;
	session_txn_begin(s);
}

static void
session_after_ehlo(struct smtpc_session *s)
{
	bool want_tls = s->tls_policy != RELAY_TLS_NONE && !s->no_starttls &&
	                !s->starttls_refused;

	if (!s->tls && want_tls && (s->caps.ext & SMTPC_EXT_STARTTLS)) {
		s->phase = SMTPC_STARTTLS;
		session_set_timeout(s, s->conf->command_timeout);
		(void)session_write(s, "STARTTLS\r\n");
		return;
	}
	if (!s->tls && (s->tls_policy == RELAY_TLS_ENCRYPT ||
	                s->tls_policy == RELAY_TLS_VERIFY)) {
		session_reason(s, false,
		               "451 4.7.4 %s does not offer STARTTLS, which "
		               "the TLS policy requires",
		               s->peer);
		ptl_log(PTL_LOG_INFO, "relay: %s", s->reason);
		session_fail(s, true);
		return;
	}
	if (s->auth_user != NULL && !s->authed) {
		/* Credentials never travel in clear. */
		if (!s->tls) {
			session_reason(s, false,
			               "451 4.7.11 %s: no TLS, so no AUTH "
			               "credentials sent",
			               s->peer);
			session_fail(s, true);
			return;
		}
		if (!(s->caps.ext & SMTPC_EXT_AUTH_PLAIN)) {
			session_reason(s, false,
			               "451 4.7.8 %s does not offer AUTH "
			               "PLAIN",
			               s->peer);
			session_fail(s, true);
			return;
		}
		session_send_auth(s);
		return;
	}
	s->clean = true;
	session_txn_begin(s);
}

/* ---- Transactions ------------------------------------------------------- */

/* The header section has to be ASCII to send a SMTPUTF8 message to a
 * server without SMTPUTF8 (RFC 6531 3.4: otherwise it must bounce). */
static bool
session_headers_ascii(const struct relay_job *job)
{
	char buf[4096];
	uint64_t off = 0, limit = job->size;
	bool line_start = true;
	int blank_state = 0;
	ssize_t n, i;

	if (limit > (uint64_t)1 << 20)
		limit = (uint64_t)1 << 20;
	while (off < limit) {
		size_t want = limit - off < sizeof(buf) ? (size_t)(limit - off)
		                                        : sizeof(buf);

		n = pread(job->fd, buf, want, (off_t)off);
		if (n <= 0)
			return false;
		for (i = 0; i < n; i++) {
			unsigned char c = (unsigned char)buf[i];

			if (c >= 0x80)
				return false;
			if (c == '\r')
				continue;
			if (c == '\n') {
				if (line_start && blank_state > 0)
					return true;
				line_start = true;
				blank_state = 1;
				continue;
			}
			line_start = false;
		}
		off += (uint64_t)n;
	}
	return off >= job->size;
}

static bool
session_envelope_ascii(const struct smtpc_session *s)
{
	const struct relay_job *job = s->txn.job;
	size_t i;

	if (!smtpc_is_ascii(job->mail_from))
		return false;
	for (i = 0; i < job->nrcpts; i++) {
		if (!s->txn.settled[i] &&
		    !smtpc_is_ascii(job->rcpts[i].address))
			return false;
	}
	return true;
}

/* Refuse what this server cannot take before sending anything. */
static bool
session_txn_precheck(struct smtpc_session *s, bool *utf8_out)
{
	const struct relay_job *job = s->txn.job;
	char why[SMTPC_REPLY_TEXT_MAX];

	*utf8_out = job->smtputf8 && (s->caps.ext & SMTPC_EXT_SMTPUTF8);
	why[0] = '\0';
	if ((s->caps.ext & SMTPC_EXT_SIZE) && s->caps.size_max > 0 &&
	    job->size > s->caps.size_max)
		relay_text(why, sizeof(why),
		           "552 5.3.4 message of %llu bytes exceeds the "
		           "limit of %llu bytes of %s",
		           (unsigned long long)job->size,
		           (unsigned long long)s->caps.size_max, s->peer);
	else if (job->body == PTL_BODY_BINARYMIME &&
	         (s->caps.ext & (SMTPC_EXT_CHUNKING | SMTPC_EXT_BINARYMIME)) !=
	             (SMTPC_EXT_CHUNKING | SMTPC_EXT_BINARYMIME))
		relay_text(why, sizeof(why),
		           "554 5.6.3 %s does not accept binary content "
		           "(BINARYMIME)",
		           s->peer);
	else if (job->smtputf8 && !*utf8_out &&
	         (!session_envelope_ascii(s) || !session_headers_ascii(job)))
		relay_text(why, sizeof(why),
		           "553 5.6.7 %s does not support SMTPUTF8, "
		           "which this message needs",
		           s->peer);
	if (why[0] == '\0')
		return true;
	session_reason(s, false, "%s", why);
	session_settle_all(s, RELAY_RCPT_FAILED, s->reason, false);
	return false;
}

static int
session_send_mail(struct smtpc_session *s, bool utf8)
{
	const struct relay_job *job = s->txn.job;
	char params[600], envid[400];
	size_t n = 0;
	bool dsn = (s->caps.ext & SMTPC_EXT_DSN) != 0;

	params[0] = '\0';
	if (s->caps.ext & SMTPC_EXT_SIZE)
		n += (size_t)snprintf(params + n, sizeof(params) - n,
		                      " SIZE=%llu",
		                      (unsigned long long)job->size);
	if (job->body == PTL_BODY_8BITMIME &&
	    (s->caps.ext & SMTPC_EXT_8BITMIME))
		n += (size_t)snprintf(params + n, sizeof(params) - n,
		                      " BODY=8BITMIME");
	else if (job->body == PTL_BODY_BINARYMIME)
		n += (size_t)snprintf(params + n, sizeof(params) - n,
		                      " BODY=BINARYMIME");
	if (utf8)
		n += (size_t)snprintf(params + n, sizeof(params) - n,
		                      " SMTPUTF8");
	if (dsn && job->ret != PTL_DSN_RET_UNSET)
		n += (size_t)snprintf(params + n, sizeof(params) - n, " RET=%s",
		                      job->ret == PTL_DSN_RET_FULL ? "FULL"
		                                                   : "HDRS");
	if (dsn && job->envid != NULL && job->envid[0] != '\0' &&
	    smtpc_xtext(envid, sizeof(envid), job->envid, strlen(job->envid)) !=
	        (size_t)-1)
		n += (size_t)snprintf(params + n, sizeof(params) - n,
		                      " ENVID=%s", envid);
	(void)n;
	return session_write(s, "MAIL FROM:<%s>%s\r\n", job->mail_from, params);
}

/* ORCPT is passed on only as "rfc822;address" (RFC 3461 4.2). */
static void
session_orcpt(const struct relay_rcpt *r, char *out, size_t cap)
{
	const char *semi;
	size_t n;

	out[0] = '\0';
	if (r->orcpt == NULL || (semi = strchr(r->orcpt, ';')) == NULL ||
	    (size_t)(semi - r->orcpt) != 6 ||
	    strncasecmp(r->orcpt, "rfc822", 6) != 0 ||
	    !smtpc_is_ascii(semi + 1) || semi[1] == '\0')
		return;
	memcpy(out, " ORCPT=rfc822;", 14);
	n = smtpc_xtext(out + 14, cap - 14, semi + 1, strlen(semi + 1));
	if (n == (size_t)-1)
		out[0] = '\0';
}

static int
session_send_rcpt(struct smtpc_session *s, size_t i)
{
	const struct relay_rcpt *r = &s->txn.job->rcpts[i];
	char notify[64], orcpt[1600];
	size_t n = 0;

	notify[0] = '\0';
	orcpt[0] = '\0';
	if ((s->caps.ext & SMTPC_EXT_DSN) && r->notify != 0) {
		if (r->notify & PTL_DSN_NOTIFY_NEVER) {
			relay_text(notify, sizeof(notify), " NOTIFY=NEVER");
		} else {
			n = (size_t)snprintf(notify, sizeof(notify),
			                     " NOTIFY=");
			if (r->notify & PTL_DSN_NOTIFY_SUCCESS)
				n += (size_t)snprintf(
				    notify + n, sizeof(notify) - n, "SUCCESS,");
			if (r->notify & PTL_DSN_NOTIFY_FAILURE)
				n += (size_t)snprintf(
				    notify + n, sizeof(notify) - n, "FAILURE,");
			if (r->notify & PTL_DSN_NOTIFY_DELAY)
				n += (size_t)snprintf(
				    notify + n, sizeof(notify) - n, "DELAY,");
			notify[n - 1] = '\0';
		}
	}
	if (s->caps.ext & SMTPC_EXT_DSN)
		session_orcpt(r, orcpt, sizeof(orcpt));
	return session_write(s, "RCPT TO:<%s>%s%s\r\n", r->address, notify,
	                     orcpt);
}

static int
session_send_data_cmd(struct smtpc_session *s)
{
	return session_write(s, "DATA\r\n");
}

/* Send what may be sent now: everything with PIPELINING, else the next
 * command. Command k: 0 MAIL, 1..norder RCPT, norder + 1 DATA. */
static int
session_send_next(struct smtpc_session *s, bool utf8)
{
	size_t last = s->bdat ? s->norder : s->norder + 1;
	int rc = PTL_OK;

	while (rc == PTL_OK && s->sent <= last &&
	       (s->pipelining || s->sent == s->answered)) {
		if (s->sent == 0)
			rc = session_send_mail(s, utf8);
		else if (s->sent <= s->norder)
			rc = session_send_rcpt(s, s->order[s->sent - 1]);
		else
			rc = session_send_data_cmd(s);
		if (rc == PTL_OK)
			s->sent++;
	}
	return rc;
}

static void
session_txn_begin(struct smtpc_session *s)
{
	const struct relay_job *job = s->txn.job;
	bool utf8;
	size_t i;

	if (!s->has_txn || s->result_pending)
		return;
	s->phase = SMTPC_TXN;
	if (!session_txn_precheck(s, &utf8)) {
		/* The connection is fine: the next message may use it. */
		session_report_later(s, SMTPC_DONE);
		return;
	}
	s->order = calloc(job->nrcpts, sizeof(*s->order));
	s->accepted = calloc(job->nrcpts, sizeof(*s->accepted));
	if (s->order == NULL || s->accepted == NULL) {
		session_reason(s, false, "451 4.3.0 out of memory");
		session_fail(s, true);
		return;
	}
	s->norder = 0;
	for (i = 0; i < job->nrcpts; i++) {
		if (!s->txn.settled[i])
			s->order[s->norder++] = i;
	}
	s->sent = s->answered = 0;
	s->naccepted = 0;
	s->mail_ok = false;
	s->mail_code = 0;
	s->data_started = false;
	s->clean = false;
	s->pipelining = (s->caps.ext & SMTPC_EXT_PIPELINING) != 0;
	s->bdat = job->body == PTL_BODY_BINARYMIME;
	s->messages++;
	s->utf8 = utf8;
	session_set_timeout(s, s->conf->command_timeout);
	(void)session_send_next(s, utf8);
}

/* The transaction ended before any data: results from the replies. */
static void
session_txn_end(struct smtpc_session *s, const struct smtpc_reply *data_reply)
{
	bool open = s->phase != SMTPC_CLOSING;
	size_t k;

	if (!s->mail_ok) {
		session_reason(s, true, "%s", s->mail_reply);
		if (s->mail_code / 100 != 5) {
			/* RFC 5321 5.1: a 4xx to MAIL, try elsewhere. */
			session_fail(s, true);
			return;
		}
		session_settle_all(s, RELAY_RCPT_FAILED, s->mail_reply, true);
		/* No transaction was opened: the connection is clean. */
		s->clean = open;
		session_report(s, SMTPC_DONE);
		return;
	}
	for (k = 0; k < s->norder && data_reply != NULL; k++) {
		if (s->accepted[k])
			session_settle(s, s->order[k],
			               smtpc_reply_class(data_reply) == 5
			                   ? RELAY_RCPT_FAILED
			                   : RELAY_RCPT_DEFERRED,
			               data_reply->text, true);
	}
	if (data_reply != NULL)
		session_reason(s, true, "%s", data_reply->text);
	else
		session_reason(s, true, "%s: every recipient refused", s->peer);
	/* MAIL was accepted: a transaction stays open until RSET. */
	s->clean = false;
	session_report(s, SMTPC_DONE);
}

static void
session_continue_data(struct smtpc_session *s)
{
	struct ptl_error err;
	int rc;

	rc = smtpc_data_send(&s->data, s->conn, &err);
	if (rc == PTL_AGAIN)
		return;
	if (rc == PTL_ERROR) {
		/* Never end the data of a message we could not read whole:
		 * dropping the connection makes the server discard it. */
		session_reason(s, false, "451 4.3.0 %s: %s", s->peer, err.text);
		ptl_log(PTL_LOG_WARN, "relay: %s", s->reason);
		session_fail(s, false);
		return;
	}
	smtpc_data_end(&s->data);
	s->phase = SMTPC_DOT;
	session_set_timeout(s, s->conf->data_done_timeout);
}

static void
session_start_data(struct smtpc_session *s)
{
	struct ptl_error err;
	const struct relay_job *job = s->txn.job;

	if (smtpc_data_begin(&s->data, job->fd, job->size, s->bdat, &err) !=
	    PTL_OK) {
		session_reason(s, false, "451 4.3.0 %s", err.text);
		session_fail(s, true);
		return;
	}
	if (s->bdat) {
		/* One chunk, the whole message (RFC 3030 2). */
		if (session_write(s, "BDAT %llu LAST\r\n",
		                  (unsigned long long)job->size) != PTL_OK)
			return;
	} else {
		s->outstanding++; /* the reply to the final "." */
	}
	s->data_started = true;
	s->phase = SMTPC_SENDING;
	session_set_timeout(s, s->conf->data_block_timeout);
	session_continue_data(s);
}

static void
session_on_txn_reply(struct smtpc_session *s)
{
	size_t k = s->answered++;
	int cls = smtpc_reply_class(&s->reply);

	if (k == 0) {
		s->mail_ok = cls == 2;
		s->mail_code = s->reply.code;
		relay_text(s->mail_reply, sizeof(s->mail_reply), "%s",
		           s->reply.text);
		if (!s->mail_ok && !s->pipelining) {
			session_txn_end(s, NULL);
			return;
		}
	} else if (k <= s->norder) {
		/* Replies to RCPT after a refused MAIL say nothing about
		 * the recipients. */
		if (s->mail_ok && cls == 2) {
			s->accepted[k - 1] = true;
			s->naccepted++;
		} else if (s->mail_ok) {
			session_settle(s, s->order[k - 1],
			               cls == 5 ? RELAY_RCPT_FAILED
			                        : RELAY_RCPT_DEFERRED,
			               s->reply.text, true);
		}
		if (k == s->norder) {
			if (s->bdat) {
				if (s->mail_ok && s->naccepted > 0)
					session_start_data(s);
				else
					session_txn_end(s, NULL);
				return;
			}
			if (!s->pipelining && s->naccepted == 0) {
				session_txn_end(s, NULL);
				return;
			}
			session_set_timeout(s, s->conf->data_timeout);
		}
	} else {
		/* The reply to DATA. */
		if (s->reply.code == 354 && s->mail_ok && s->naccepted > 0) {
			session_start_data(s);
			return;
		}
		if (s->reply.code == 354) {
			/* Nothing to send, yet the server waits for data:
			 * only dropping the line ends that safely. */
			session_close(s, SESSION_ABORT);
			session_txn_end(s, NULL);
			return;
		}
		session_txn_end(s, s->mail_ok && s->naccepted > 0 ? &s->reply
		                                                  : NULL);
		return;
	}
	(void)session_send_next(s, s->utf8);
}

/* RFC 5321 3.3: the reply to the data applies to every recipient the
 * server accepted. */
static void
session_on_data_reply(struct smtpc_session *s, bool premature)
{
	int cls = smtpc_reply_class(&s->reply);
	enum relay_rcpt_status st = cls == 5 ? RELAY_RCPT_FAILED
	                            : cls == 2 && !premature
	                                ? RELAY_RCPT_DELIVERED
	                                : RELAY_RCPT_DEFERRED;
	size_t k;

	if (premature) {
		/* The server spoke before the end of data (too big, policy):
		 * nothing was delivered, and the data must not be ended. */
		smtpc_data_end(&s->data);
		session_close(s, SESSION_ABORT);
	} else {
		s->clean = true;
		s->phase = SMTPC_TXN;
	}
	for (k = 0; k < s->norder; k++) {
		struct relay_rcpt *r = &s->txn.job->rcpts[s->order[k]];

		if (!s->accepted[k])
			continue;
		session_settle(s, s->order[k], st, s->reply.text, true);
		/* session_send_rcpt gave it NOTIFY (and ORCPT). */
		r->dsn_passed = st == RELAY_RCPT_DELIVERED &&
		                (s->caps.ext & SMTPC_EXT_DSN) && r->notify != 0;
	}
	session_reason(s, true, "%s", s->reply.text);
	session_report(s, SMTPC_DONE);
}

/* ---- Input ----------------------------------------------------------------
 */

static void
session_on_reply(struct smtpc_session *s)
{
	s->outstanding--;
	switch (s->phase) {
	case SMTPC_GREETING:
		session_on_greeting(s);
		break;
	case SMTPC_EHLO:
	case SMTPC_HELO:
		session_on_ehlo(s);
		break;
	case SMTPC_STARTTLS:
		session_on_starttls(s);
		break;
	case SMTPC_AUTH:
		session_on_auth(s);
		break;
	case SMTPC_TXN:
		session_on_txn_reply(s);
		break;
	case SMTPC_SENDING:
		session_on_data_reply(s, true);
		break;
	case SMTPC_DOT:
		session_on_data_reply(s, false);
		break;
	case SMTPC_QUIT:
		session_close(s, SESSION_FLUSH);
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
				session_close(s, SESSION_ABORT);
				return;
			}
			/* Nothing is owed: talking now breaks the order. */
			session_reason(s, false,
			               "451 4.5.0 %s: unexpected input during "
			               "%s",
			               s->peer, smtpc_phase_names[s->phase]);
			ptl_log(PTL_LOG_INFO, "relay: %s", s->reason);
			session_fail(s, false);
			return;
		}
		rc = ptl_conn_read_line(s->conn, &line, &len);
		if (rc == PTL_AGAIN)
			return;
		if (rc == PTL_DECLINED) {
			session_fail_io(s, "reply line too long");
			return;
		}
		rc = smtpc_reply_feed(&s->reply, line, len, &text, &text_len);
		if (rc == PTL_ERROR) {
			session_reason(s, false, "451 4.5.0 %s: %s during %s",
			               s->peer, s->reply.error,
			               smtpc_phase_names[s->phase]);
			ptl_log(PTL_LOG_INFO, "relay: %s", s->reason);
			session_fail(s, false);
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
				session_reason(s, false,
				               "451 4.4.2 %s: connection lost",
				               s->peer);
			s->result =
			    s->data_started ? SMTPC_DONE : SMTPC_NEXT_HOST;
		}
		session_report(s, s->result);
	}
	s->closed = NULL;
	if (closed != NULL)
		closed(s, arg);
	session_txn_free(s);
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
		session_set_timeout(s, s->conf->greeting_timeout);
		break;
	case PTL_CONN_READ:
		session_read(s);
		break;
	case PTL_CONN_DRAINED:
		if (s->phase == SMTPC_SENDING)
			session_continue_data(s);
		break;
	case PTL_CONN_TLS_READY:
		if (s->phase == SMTPC_HANDSHAKE)
			session_on_tls_ready(s);
		break;
	case PTL_CONN_TIMEOUT:
		if (s->phase == SMTPC_IDLE || s->phase == SMTPC_QUIT) {
			session_close(s, s->phase == SMTPC_IDLE
			                     ? SESSION_QUIT
			                     : SESSION_ABORT);
			break;
		}
		session_fail_io(s, "timeout");
		break;
	case PTL_CONN_EOF:
		if (s->phase == SMTPC_IDLE || s->phase == SMTPC_QUIT) {
			session_close(s, SESSION_ABORT);
			break;
		}
		session_fail_io(s, "connection closed by the server");
		break;
	case PTL_CONN_ERROR:
		if (s->phase == SMTPC_HANDSHAKE) {
			session_reason(s, false,
			               "451 4.7.5 %s: TLS handshake failed",
			               s->peer);
			ptl_log(PTL_LOG_INFO, "relay: %s", s->reason);
			s->phase = SMTPC_CLOSING;
			if (s->has_txn && !s->result_pending)
				session_report(s, s->tls_policy == RELAY_TLS_MAY
				                      ? SMTPC_TLS_RETRY
				                      : SMTPC_NEXT_HOST);
			break;
		}
		if (s->phase == SMTPC_CONNECTING) {
			session_reason(s, false,
			               "451 4.4.1 cannot connect to %s",
			               s->peer);
			ptl_log(PTL_LOG_INFO, "relay: %s", s->reason);
			s->phase = SMTPC_CLOSING;
			if (s->has_txn && !s->result_pending)
				session_report(s, SMTPC_NEXT_HOST);
			break;
		}
		if (s->phase != SMTPC_CLOSING)
			session_fail_io(s, "connection error");
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
	session_txn_begin(s);
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
	session_set_timeout(s, idle_ms);
}

void
smtpc_session_quit(struct smtpc_session *s)
{
	s->closed = NULL;
	s->has_txn = false;
	if (s->phase == SMTPC_CLOSING || s->conn == NULL)
		return;
	if (!s->clean) {
		session_close(s, SESSION_QUIT);
		return;
	}
	s->phase = SMTPC_QUIT;
	s->outstanding = 0;
	session_set_timeout(s, s->conf->quit_timeout);
	if (session_write(s, "QUIT\r\n") != PTL_OK)
		return;
}

void
smtpc_session_abort(struct smtpc_session *s)
{
	s->closed = NULL;
	s->has_txn = false;
	s->result_pending = false;
	session_txn_free(s);
	session_close(s, SESSION_ABORT);
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
