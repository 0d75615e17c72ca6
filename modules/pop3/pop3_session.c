/* SPDX-License-Identifier: MIT */
/* POP3 session: connection events, command reading, states, lifetime. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3.h"

/*
 * Lifetime
 *
 * A session is malloc'd, not taken from the connection's pool: the
 * storage service has no way to cancel an open, read or expunge, so a
 * session whose connection closed meanwhile lives on until that
 * completion arrives (pop3_session_orphan_done). The auth service can
 * cancel, and is told to at CLOSED.
 *
 * Commands are read only in POP3_WAIT_NONE. Every wait pauses the
 * connection, so nothing is read from the socket while a password is
 * checked or a message streams; pipelined commands run in order after.
 */

/* ---- Output --------------------------------------------------------- */

void
pop3_write(struct pop3_session *s, const void *data, size_t len)
{
	int rc;

	if (s->conn == NULL || s->phase == POP3_PHASE_CLOSING)
		return;
	rc = ptl_conn_write(s->conn, data, len);
	if (rc == PTL_AGAIN) {
		/* Queued, but the client is not reading: take no more
		 * commands until DRAINED. */
		s->blocked = true;
	} else if (rc != PTL_OK) {
		s->phase = POP3_PHASE_CLOSING;
		ptl_conn_abort(s->conn);
	}
}

void
pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)(sizeof(line) - 3);
	line[n++] = '\r';
	line[n++] = '\n';
	pop3_write(s, line, (size_t)n);
}

/* ---- Lifetime ------------------------------------------------------- */

/* A completion that cannot be cancelled is outstanding. */
static bool
pop3_session_busy(const struct pop3_session *s)
{
	switch (s->wait) {
	case POP3_WAIT_OPEN:
	case POP3_WAIT_READ:
	case POP3_WAIT_EXPUNGE:
	case POP3_WAIT_VERIFY:
		return true;
	default:
		return s->stream.task_pending;
	}
}

static void
pop3_session_destroy(struct pop3_session *s)
{
	if (s->mb != NULL)
		s->worker->storage->close(s->mb);
	s->mb = NULL;
	pop3_retr_release(s);
	ptl_timer_free(s->timer);
	free(s->deleted);
	free(s->expunge_idx);
	if (s->linebuf != NULL) {
		explicit_bzero(s->linebuf, s->parser.args_cap);
		free(s->linebuf);
	}
	s->magic = 0;
	free(s);
}

bool
pop3_session_orphan_done(struct pop3_session *s)
{
	if (s->conn != NULL || pop3_session_busy(s))
		return false;
	pop3_session_destroy(s);
	return true;
}

void
pop3_session_wait(struct pop3_session *s, enum pop3_wait wait)
{
	s->wait = wait;
	if (s->conn != NULL)
		ptl_conn_pause(s->conn);
}

static void pop3_session_process(struct pop3_session *s);

void
pop3_session_continue(struct pop3_session *s)
{
	s->wait = POP3_WAIT_NONE;
	if (s->conn == NULL || s->phase == POP3_PHASE_CLOSING)
		return;
	/* Buffered input comes back as a READ event. */
	ptl_conn_resume(s->conn);
	/* EOF was already seen: no event will come, finish here. */
	if (s->eof)
		pop3_session_process(s);
}

void
pop3_session_close(struct pop3_session *s)
{
	if (s->conn == NULL || s->phase == POP3_PHASE_CLOSING)
		return;
	s->phase = POP3_PHASE_CLOSING;
	ptl_conn_close(s->conn);
}

bool
pop3_login_allowed(const struct pop3_session *s)
{
	return s->plaintext_ok || ptl_conn_is_tls(s->conn);
}

/* ---- Commands ------------------------------------------------------- */

static void
pop3_parse_error_reply(struct pop3_session *s, enum pop3_parse_error error)
{
	switch (error) {
	case POP3_PARSE_TOO_LONG:
		pop3_reply(s, "-ERR line too long");
		break;
	case POP3_PARSE_NUL:
		pop3_reply(s, "-ERR NUL byte in command");
		break;
	case POP3_PARSE_BAD_VERB:
		pop3_reply(s, "-ERR unknown command");
		break;
	default:
		pop3_reply(s, "-ERR syntax error");
		break;
	}
}

static void
pop3_dispatch(struct pop3_session *s)
{
	const struct pop3_command *cmd;
	struct pop3_args a;
	unsigned need;

	for (cmd = pop3_commands; cmd->verb != NULL; cmd++) {
		if (strcmp(cmd->verb, s->parser.verb) == 0)
			break;
	}
	if (cmd->verb == NULL) {
		pop3_reply(s, "-ERR unknown command");
		return;
	}
	need = s->phase == POP3_PHASE_TRANSACTION ? POP3_CMD_TRANSACTION
	                                          : POP3_CMD_AUTHORIZATION;
	if (!(cmd->flags & need)) {
		pop3_reply(s, "-ERR command not valid in this state");
		return;
	}
	/* RFC 2595 section 4: no password in clear unless allowed. */
	if (s->phase == POP3_PHASE_AUTHORIZATION &&
	    !(cmd->flags & POP3_CMD_PRE_TLS_OK) && !pop3_login_allowed(s)) {
		pop3_reply(s, "-ERR [AUTH] TLS required: use STLS");
		return;
	}
	pop3_args_split(s->parser.args, s->parser.args_len, &a);
	if (cmd->check != NULL && cmd->check(s, &a) != PTL_OK)
		return;
	cmd->proceed(s, &a);
}

/* A line answering "+ " (AUTH PLAIN without an initial response). */
static void
pop3_sasl_line(struct pop3_session *s, int rc)
{
	s->sasl_pending = false;
	if (rc == PTL_DECLINED) {
		pop3_reply(s, s->parser.error == POP3_PARSE_TOO_LONG
		                  ? "-ERR line too long"
		                  : "-ERR malformed SASL response");
	} else {
		pop3_auth_sasl_line(s, s->parser.args, s->parser.args_len);
	}
	/* The response holds a password: wipe it before the mode switch
	 * forgets its length. */
	explicit_bzero(s->parser.args, s->parser.args_len);
	pop3_parse_set_mode(&s->parser, POP3_PARSE_COMMAND,
	                    (size_t)s->conf->max_line);
}

/*
 * Run every complete command that is buffered. Stops when a command must
 * wait (a service, a timer, a message to stream), when the reply queue is
 * full, or when the session ends.
 */
static void
pop3_session_process(struct pop3_session *s)
{
	const char *data;
	size_t n, used;
	int rc;

	while (s->conn != NULL && s->wait == POP3_WAIT_NONE && !s->blocked &&
	       (s->phase == POP3_PHASE_AUTHORIZATION ||
	        s->phase == POP3_PHASE_TRANSACTION)) {
		n = ptl_conn_peek(s->conn, &data);
		if (n == 0) {
			if (s->eof)
				pop3_session_close(s);
			return;
		}
		rc = pop3_parse_feed(&s->parser, data, n, &used);
		ptl_conn_consume(s->conn, used);
		if (rc == PTL_AGAIN)
			continue;
		if (s->sasl_pending)
			pop3_sasl_line(s, rc);
		else if (rc == PTL_DECLINED)
			pop3_parse_error_reply(s, s->parser.error);
		else
			pop3_dispatch(s);
		/* A password may sit in the argument buffer. */
		explicit_bzero(s->parser.args, s->parser.args_len);
		s->parser.args_len = 0;
	}
}

/* ---- Connection events ---------------------------------------------- */

static void
pop3_greet(struct pop3_session *s)
{
	pop3_reply(s, "+OK %s", s->conf->greeting);
}

static void
pop3_on_tls_ready(struct pop3_session *s)
{
	if (s->phase == POP3_PHASE_HANDSHAKE) {
		s->phase = POP3_PHASE_AUTHORIZATION;
		pop3_greet(s);
		return;
	}
	if (s->wait != POP3_WAIT_STARTTLS)
		return;
	/* RFC 2595 section 4: forget everything learned in clear. */
	s->have_user = false;
	s->user[0] = '\0';
	s->sasl_pending = false;
	pop3_parse_set_mode(&s->parser, POP3_PARSE_COMMAND,
	                    (size_t)s->conf->max_line);
	pop3_session_continue(s);
}

static void
pop3_on_timeout(struct pop3_session *s)
{
	if (s->phase == POP3_PHASE_CLOSING)
		return;
	/* No TLS yet: nothing can be said. In the middle of a multi-line
	 * answer a status line would be taken for data. End the
	 * connection. */
	if (s->phase == POP3_PHASE_HANDSHAKE || s->wait == POP3_WAIT_STREAM ||
	    s->wait == POP3_WAIT_LISTING || s->wait == POP3_WAIT_STARTTLS) {
		ptl_conn_log(s->conn, PTL_LOG_INFO,
		             "pop3: timeout during the TLS handshake or while "
		             "sending; closing");
		s->phase = POP3_PHASE_CLOSING;
		ptl_conn_abort(s->conn);
		return;
	}
	ptl_conn_log(s->conn, PTL_LOG_INFO, "pop3: autologout in %s state",
	             s->phase == POP3_PHASE_TRANSACTION ? "TRANSACTION"
	                                                : "AUTHORIZATION");
	if (s->wait == POP3_WAIT_NONE || s->wait == POP3_WAIT_DELAY)
		pop3_reply(s, "-ERR autologout: idle for too long");
	pop3_session_close(s);
}

static void
pop3_on_closed(struct pop3_session *s)
{
	struct pop3_worker *w = s->worker;

	if (s->mb != NULL && !s->quit)
		ptl_conn_log(s->conn, PTL_LOG_INFO,
		             "pop3: connection lost in TRANSACTION state; "
		             "nothing deleted");
	s->conn = NULL;
	s->phase = POP3_PHASE_CLOSING;
	if (s->wait == POP3_WAIT_VERIFY) {
		w->auth->cancel(w->auth_instance, s);
		s->wait = POP3_WAIT_NONE;
	}
	if (s->timer != NULL)
		ptl_timer_stop(s->timer);
	(void)pop3_session_orphan_done(s);
}

static void
pop3_conn_handler(struct ptl_conn *c, enum ptl_conn_event ev, void *arg)
{
	struct pop3_session *s = arg;

	if (s == NULL || s->magic != POP3_SESSION_MAGIC) {
		ptl_conn_log(c, PTL_LOG_ERROR, "pop3: bad session magic");
		if (ev != PTL_CONN_CLOSED)
			ptl_conn_abort(c);
		return;
	}
	switch (ev) {
	case PTL_CONN_READ:
		pop3_session_process(s);
		break;
	case PTL_CONN_DRAINED:
		s->blocked = false;
		if (s->wait == POP3_WAIT_STREAM)
			pop3_retr_resume(s);
		else if (s->wait == POP3_WAIT_LISTING)
			pop3_listing_pump(s);
		else if (s->wait == POP3_WAIT_NONE)
			pop3_session_process(s);
		break;
	case PTL_CONN_TLS_READY:
		pop3_on_tls_ready(s);
		break;
	case PTL_CONN_TIMEOUT:
		pop3_on_timeout(s);
		break;
	case PTL_CONN_EOF:
		s->eof = true;
		if (s->wait == POP3_WAIT_NONE && !s->blocked)
			pop3_session_process(s);
		break;
	case PTL_CONN_ERROR:
		s->phase = POP3_PHASE_CLOSING;
		break;
	case PTL_CONN_CLOSED:
		pop3_on_closed(s);
		break;
	case PTL_CONN_CONNECTED:
		break;
	}
}

void
pop3_session_accept(struct ptl_conn *c, void *arg)
{
	const struct pop3_listener *l = arg;
	struct pop3_worker *w = ptl_instance_data(l->inst);
	const struct pop3_conf *conf = l->conf;
	struct pop3_session *s;
	size_t cap, i;

	if (w == NULL || w->auth == NULL || w->storage == NULL) {
		ptl_conn_log(c, PTL_LOG_ERROR, "pop3: module not initialized");
		ptl_conn_abort(c);
		return;
	}
	s = calloc(1, sizeof(*s));
	cap = (size_t)conf->max_line > POP3_SASL_LINE_MAX
	          ? (size_t)conf->max_line
	          : POP3_SASL_LINE_MAX;
	if (s == NULL || (s->linebuf = malloc(cap)) == NULL) {
		free(s);
		ptl_conn_log(c, PTL_LOG_ERROR, "pop3: out of memory");
		ptl_conn_abort(c);
		return;
	}
	s->magic = POP3_SESSION_MAGIC;
	s->conn = c;
	s->listener = l;
	s->worker = w;
	s->conf = conf;
	s->stream.fd = -1;
	(void)snprintf(s->peer_ip, sizeof(s->peer_ip), "%s",
	               ptl_conn_peer_ip(c));
	pop3_parse_init(&s->parser, s->linebuf, cap, (size_t)conf->max_line);
	for (i = 0; i < w->nnetworks; i++) {
		if (pop3_cidr_match(&w->networks[i], s->peer_ip)) {
			s->plaintext_ok = true;
			break;
		}
	}
	ptl_conn_set_handler(c, pop3_conn_handler, s);
	if (l->implicit_tls) {
		s->phase = POP3_PHASE_HANDSHAKE;
		return;
	}
	s->phase = POP3_PHASE_AUTHORIZATION;
	pop3_greet(s);
}
