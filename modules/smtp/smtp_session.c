/* SPDX-License-Identifier: MIT */
/* SMTP session: connection events, the input loop and the command pipeline. */
#include <stdio.h>
#include <string.h>

#include "smtp.h"
#include "smtp_sasl.h"

/*
 * How a session runs
 *
 * Input is taken only while no command is running: a command is a
 * pipeline of three stages, check (validation: syntax, sequence,
 * policy, recipient lookup), the filter hook, and proceed (the action).
 * Each stage either finishes at once or returns PTL_AGAIN; the session
 * then pauses reading and the completion (lookup, verdict, timer,
 * storage) calls smtp_cmd_resume(), which runs the remaining stages and
 * then takes the next pipelined command. Replies therefore leave in
 * command order, as PIPELINING (RFC 2920) requires.
 *
 * The session lives in the connection pool; the core delivers CLOSED
 * last and never from inside our own calls, and at CLOSED every pending
 * completion is cancelled (auth, filters, timer) or detached (storage
 * writes into a transaction that outlives the session).
 */

static void session_handler(struct ptl_conn *c, enum ptl_conn_event ev,
                            void *arg);

bool
smtp_session_may_relay(const struct smtp_session *s)
{
	return s->auth_user != NULL || s->trusted;
}

bool
smtp_session_auth_offered(const struct smtp_session *s)
{
	return s->listener->role != SMTP_ROLE_MX &&
	       (s->tls || s->w->conf->auth_plaintext);
}

bool
smtp_session_starttls_offered(const struct smtp_session *s)
{
	return !s->tls && s->w->conf->starttls && !s->w->tls_unavailable &&
	       ptl_conn_starttls_available(s->conn);
}

void
smtp_session_log_escape(char *out, size_t cap, const char *in)
{
	(void)ptl_log_escape(out, cap, in, in != NULL ? strlen(in) : 0);
}

/* Timeouts and line limits follow the phase. */
static void
session_set_phase(struct smtp_session *s, enum smtp_phase phase)
{
	const struct smtp_conf *conf = s->w->conf;
	enum smtp_phase old = s->phase;

	s->phase = phase;
	if (phase == SMTP_PHASE_AUTH && old != SMTP_PHASE_AUTH)
		ptl_conn_set_max_line(s->conn, SMTP_SASL_LINE_MAX);
	else if (old == SMTP_PHASE_AUTH && phase != SMTP_PHASE_AUTH)
		ptl_conn_set_max_line(s->conn, (size_t)conf->max_command_line);
	if ((phase == SMTP_PHASE_DATA || phase == SMTP_PHASE_BDAT) &&
	    old != SMTP_PHASE_DATA && old != SMTP_PHASE_BDAT)
		ptl_conn_set_timeouts(s->conn, conf->data_timeout, 0);
	else if ((old == SMTP_PHASE_DATA || old == SMTP_PHASE_BDAT) &&
	         phase != SMTP_PHASE_DATA && phase != SMTP_PHASE_BDAT)
		ptl_conn_set_timeouts(s->conn, conf->command_timeout, 0);
}

void
smtp_session_set_phase(struct smtp_session *s, enum smtp_phase phase)
{
	if (s->phase == SMTP_PHASE_CLOSING)
		return;
	session_set_phase(s, phase);
}

static void
session_on_timer(struct ptl_timer *t, void *arg)
{
	struct smtp_session *s = arg;
	enum smtp_timer_use use = s->timer_use;

	if (s->magic != SMTP_SESSION_MAGIC)
		return;
	s->timer_use = SMTP_TIMER_NONE;
	if (use == SMTP_TIMER_AUTH_DELAY)
		smtp_auth_timer(s);
	else if (use == SMTP_TIMER_FILTER)
		smtp_filter_timeout(s);
}

int
smtp_session_timer(struct smtp_session *s, enum smtp_timer_use use, int64_t ms)
{
	if (s->timer == NULL) {
		s->timer = ptl_timer_new(session_on_timer, s);
		if (s->timer == NULL)
			return PTL_ERROR;
	}
	s->timer_use = use;
	ptl_timer_start(s->timer, ms);
	return PTL_OK;
}

void
smtp_session_timer_stop(struct smtp_session *s)
{
	if (s->timer != NULL)
		ptl_timer_stop(s->timer);
	s->timer_use = SMTP_TIMER_NONE;
}

/* Nothing may call back into the session after this. */
static void
session_cancel_waits(struct smtp_session *s)
{
	struct smtp_worker *w = s->w;

	smtp_session_timer_stop(s);
	if (w->auth->cancel != NULL)
		w->auth->cancel(w->auth_inst, s);
	smtp_filter_end_session(s);
}

void
smtp_session_close(struct smtp_session *s, bool now)
{
	if (s->closing || s->conn == NULL)
		return;
	s->closing = true;
	s->phase = SMTP_PHASE_CLOSING;
	session_cancel_waits(s);
	if (now)
		ptl_conn_abort(s->conn);
	else
		ptl_conn_close(s->conn);
}

/*
 * RFC 3207 section 4.2: after the handshake the server forgets what the
 * client told it before (EHLO, AUTH, the transaction); the client starts
 * again with EHLO.
 */
void
smtp_session_reset(struct smtp_session *s)
{
	smtp_txn_abort(s);
	s->helo[0] = '\0';
	s->helo_done = false;
	s->esmtp = false;
	s->auth_user = NULL;
}

/* The running command ended (replied); take the next one. */
static int
cmd_finish(struct smtp_session *s)
{
	bool last = s->cmd != NULL && (s->cmd->flags & SMTP_CMD_PIPELINE_LAST);

	s->cmd = NULL;
	s->stage = SMTP_STAGE_NONE;
	return last ? PTL_DONE : PTL_OK;
}

static int
cmd_call(struct smtp_session *s, int (*fn)(struct smtp_session *))
{
	int rc;

	s->in_stage = true;
	s->early_done = false;
	rc = fn(s);
	s->in_stage = false;
	if (rc == PTL_AGAIN && s->early_done)
		rc = s->early_rc;
	return rc;
}

static int
cmd_filter(struct smtp_session *s)
{
	return smtp_filter_run(s, s->cmd->hook);
}

/*
 * Run the stages after the current one. @rc is the result of the stage
 * that just finished.
 * @return PTL_AGAIN (waiting), PTL_OK (done), PTL_DONE (done, and it
 * was a PIPELINE_LAST command).
 */
static int
cmd_advance(struct smtp_session *s, int rc)
{
	for (;;) {
		if (s->closing)
			return cmd_finish(s);
		if (rc == PTL_AGAIN) {
			ptl_conn_pause(s->conn);
			return PTL_AGAIN;
		}
		if (rc != PTL_OK || s->stage == SMTP_STAGE_PROCEED)
			return cmd_finish(s);
		if (s->stage == SMTP_STAGE_CHECK) {
			s->stage = SMTP_STAGE_FILTER;
			rc = s->cmd->hook >= 0 ? cmd_call(s, cmd_filter)
			                       : PTL_OK;
		} else {
			s->stage = SMTP_STAGE_PROCEED;
			rc = s->cmd->proceed != NULL
			         ? cmd_call(s, s->cmd->proceed)
			         : PTL_OK;
		}
	}
}

int
smtp_cmd_start(struct smtp_session *s, const struct smtp_command *cmd,
               const struct smtp_cmdline *cl)
{
	int rc = PTL_OK;

	s->cmd = cmd;
	s->stage = SMTP_STAGE_CHECK;
	if (cmd->check != NULL) {
		s->in_stage = true;
		s->early_done = false;
		rc = cmd->check(s, cl);
		s->in_stage = false;
		if (rc == PTL_AGAIN && s->early_done)
			rc = s->early_rc;
	}
	return cmd_advance(s, rc);
}

void
smtp_cmd_resume(struct smtp_session *s, int rc)
{
	if (s->magic != SMTP_SESSION_MAGIC)
		return;
	if (s->in_stage) {
		/* The completion came before the call returned. */
		s->early_done = true;
		s->early_rc = rc;
		return;
	}
	if (s->cmd == NULL || s->closing)
		return;
	if (cmd_advance(s, rc) == PTL_AGAIN)
		return;
	if (s->closing)
		return;
	ptl_conn_resume(s->conn);
	smtp_session_input(s);
}

/* Verbs of other protocols: a browser or proxy tricked into talking to
 * us (cross-protocol attacks) gets no conversation. */
static bool
session_foreign_verb(const struct smtp_cmdline *cl)
{
	static const char *const verbs[] = {"GET",     "POST",    "HEAD", "PUT",
	                                    "CONNECT", "OPTIONS", NULL};
	size_t i;

	for (i = 0; verbs[i] != NULL; i++) {
		if (smtp_verb_is(cl, verbs[i]))
			return true;
	}
	return false;
}

/* One command line (terminator included). */
static int
session_line(struct smtp_session *s, const char *line, size_t len)
{
	const struct smtp_command *cmd;
	struct smtp_cmdline cl;
	unsigned f;

	if (s->phase == SMTP_PHASE_AUTH) {
		while (len > 0 &&
		       (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		memset(&cl, 0, sizeof(cl));
		cl.args = line;
		cl.args_len = len;
		return smtp_cmd_start(s, &smtp_cmd_auth_response, &cl);
	}
	if (smtp_parse_command(line, len, &cl) != PTL_OK) {
		smtp_reply(s, 500, "5.5.2", "Syntax error");
		return PTL_OK;
	}
	s->commands++;
	cmd = smtp_cmd_find(&cl);
	if (cmd == NULL) {
		if (session_foreign_verb(&cl)) {
			smtp_reply(s, 421, "4.7.0", "This is an SMTP server");
			smtp_session_close(s, false);
			return PTL_OK;
		}
		smtp_reply(s, 500, "5.5.2", "Command unrecognized");
		return PTL_OK;
	}
	f = cmd->flags;
	if ((f & SMTP_CMD_NO_ARGS) && cl.args_len > 0) {
		smtp_reply(s, 501, "5.5.4",
		           "Syntax error: no arguments allowed");
		return PTL_OK;
	}
	if ((f & SMTP_CMD_PRE_TLS) && s->tls) {
		smtp_reply(s, 503, "5.5.1", "TLS already active");
		return PTL_OK;
	}
	if ((f & SMTP_CMD_NEEDS_HELO) && !s->helo_done) {
		smtp_reply(s, 503, "5.5.1", "Send HELO/EHLO first");
		return PTL_OK;
	}
	if ((f & SMTP_CMD_NEEDS_MAIL) && s->txn == NULL) {
		smtp_reply(s, 503, "5.5.1", "Need MAIL command first");
		return PTL_OK;
	}
	if ((f & SMTP_CMD_NO_TXN) && s->txn != NULL) {
		smtp_reply(s, 503, "5.5.1", "Not allowed inside a transaction");
		return PTL_OK;
	}
	if ((f & SMTP_CMD_NEEDS_AUTH) && s->listener->role != SMTP_ROLE_MX &&
	    !smtp_session_may_relay(s)) {
		smtp_reply(s, 530, "5.7.0", "Authentication required");
		return PTL_OK;
	}
	return smtp_cmd_start(s, cmd, &cl);
}

/*
 * Take every complete command that is buffered: a client may pipeline
 * several in one packet. Stops when input runs out, when a command
 * waits, when the reply queue is full, or when the phase leaves the
 * reading phases (STARTTLS, QUIT).
 */
void
smtp_session_input(struct smtp_session *s)
{
	const char *line;
	size_t len;
	int rc;

	while (s->cmd == NULL && !s->closing && !s->blocked) {
		if (s->errors >= (unsigned)s->w->conf->max_errors) {
			ptl_conn_log(s->conn, PTL_LOG_INFO,
			             "too many errors (%u), closing",
			             s->errors);
			smtp_reply(s, 421, "4.7.0", "Too many errors, closing");
			smtp_session_close(s, false);
			return;
		}
		switch (s->phase) {
		case SMTP_PHASE_COMMAND:
		case SMTP_PHASE_AUTH:
			rc = ptl_conn_read_line(s->conn, &line, &len);
			if (rc == PTL_AGAIN)
				goto drained;
			if (rc == PTL_DECLINED) {
				if (s->phase == SMTP_PHASE_AUTH) {
					smtp_session_set_phase(
					    s, SMTP_PHASE_COMMAND);
					smtp_reply(s, 500, "5.5.6",
					           "Authentication exchange "
					           "line is too long");
				} else {
					smtp_reply(s, 500, "5.5.2",
					           "Line too long");
				}
				continue;
			}
			if (rc != PTL_OK) {
				smtp_session_close(s, true);
				return;
			}
			rc = session_line(s, line, len);
			break;
		case SMTP_PHASE_DATA:
			rc = smtp_body_data_input(s);
			if (rc == PTL_AGAIN)
				goto drained;
			break;
		case SMTP_PHASE_BDAT:
			rc = smtp_bdat_input(s);
			if (rc == PTL_AGAIN)
				goto drained;
			break;
		default:
			return;
		}
		if (rc == PTL_DONE)
			return; /* STARTTLS or QUIT: read nothing more now */
	}
	return;
drained:
	if (s->eof && s->cmd == NULL && !s->closing) {
		if (s->phase == SMTP_PHASE_DATA || s->phase == SMTP_PHASE_BDAT)
			ptl_conn_log(s->conn, PTL_LOG_INFO,
			             "client closed the connection during "
			             "message data");
		smtp_session_close(s, false);
	}
}

static void
session_begin(struct smtp_session *s)
{
	struct smtp_worker *w = s->w;

	s->tls = ptl_conn_is_tls(s->conn);
	if (!w->filters_resolved && smtp_filter_resolve(w, true) != PTL_OK)
		w->filters_broken = true;
	if (!w->queue_resolved) {
		smtp_queue_resolve(w);
		w->queue_resolved = true;
	}
	if (w->filters_broken) {
		smtp_reply(s, 421, "4.3.0", "Service temporarily unavailable");
		smtp_session_close(s, false);
		return;
	}
	smtp_session_set_phase(s, SMTP_PHASE_CONNECT);
	if (smtp_cmd_start(s, &smtp_cmd_connect, NULL) != PTL_AGAIN &&
	    !s->closing)
		smtp_session_input(s);
}

static bool
session_is_trusted(const struct smtp_worker *w, const char *ip)
{
	size_t i;

	for (i = 0; i < w->ntrusted; i++) {
		if (smtp_cidr_match(&w->trusted[i], ip))
			return true;
	}
	return false;
}

void
smtp_session_accept(struct ptl_conn *c, void *arg)
{
	const struct smtp_listener *l = arg;
	struct smtp_worker *w = ptl_instance_data(l->inst);
	struct smtp_session *s;

	if (w == NULL) {
		ptl_conn_abort(c);
		return;
	}
	s = ptl_pcalloc(ptl_conn_pool(c), sizeof(*s));
	if (s == NULL) {
		ptl_conn_abort(c);
		return;
	}
	s->magic = SMTP_SESSION_MAGIC;
	s->conn = c;
	s->w = w;
	s->listener = l;
	s->frun.hook = -1;
	s->trusted = session_is_trusted(w, ptl_conn_peer_ip(c));
	w->sessions++;
	ptl_conn_set_handler(c, session_handler, s);
	ptl_conn_log(c, PTL_LOG_INFO, "connect from %s:%u to %s:%u role=%s%s",
	             ptl_conn_peer_ip(c), (unsigned)ptl_conn_peer_port(c),
	             ptl_conn_local_ip(c), (unsigned)ptl_conn_local_port(c),
	             smtp_role_names[l->role], s->trusted ? " trusted" : "");
	if (l->implicit_tls) {
		s->phase = SMTP_PHASE_HANDSHAKE;
		return;
	}
	session_begin(s);
}

static void
session_closed(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;

	session_cancel_waits(s);
	if (t != NULL) {
		s->txn = NULL;
		if (t->pending_deliveries > 0)
			t->session = NULL; /* storage finishes it */
		else
			smtp_txn_free(t);
	}
	ptl_timer_free(s->timer);
	s->timer = NULL;
	ptl_pool_destroy(s->scratch);
	s->scratch = NULL;
	s->w->sessions--;
	ptl_conn_log(s->conn, PTL_LOG_INFO,
	             "disconnect from %s commands=%u messages=%u errors=%u",
	             ptl_conn_peer_ip(s->conn), s->commands, s->messages,
	             s->errors);
	s->magic = 0;
	s->conn = NULL;
}

static void
session_timeout(struct smtp_session *s)
{
	const char *where = "command phase";

	if (s->closing)
		return;
	if (s->phase == SMTP_PHASE_HANDSHAKE ||
	    s->phase == SMTP_PHASE_STARTTLS) {
		/* A reply now would go out in clear in the middle of the
		 * handshake. */
		ptl_conn_log(s->conn, PTL_LOG_INFO, "timeout in TLS handshake");
		smtp_session_close(s, true);
		return;
	}
	if (s->phase == SMTP_PHASE_DATA || s->phase == SMTP_PHASE_BDAT)
		where = "message data";
	else if (s->cmd != NULL)
		where = "a pending lookup or delivery";
	ptl_conn_log(s->conn, PTL_LOG_INFO, "timeout in %s", where);
	smtp_reply(s, 421, "4.4.2", "Timeout, closing connection");
	smtp_session_close(s, false);
}

static void
session_handler(struct ptl_conn *c, enum ptl_conn_event ev, void *arg)
{
	struct smtp_session *s = arg;

	if (s == NULL || s->magic != SMTP_SESSION_MAGIC) {
		ptl_conn_log(c, PTL_LOG_ERROR, "smtp: bad session magic");
		if (ev != PTL_CONN_CLOSED)
			ptl_conn_abort(c);
		return;
	}
	switch (ev) {
	case PTL_CONN_READ:
		smtp_session_input(s);
		break;
	case PTL_CONN_DRAINED:
		s->blocked = false;
		smtp_session_input(s);
		break;
	case PTL_CONN_TLS_READY:
		s->tls = true;
		if (s->phase == SMTP_PHASE_HANDSHAKE) {
			session_begin(s);
		} else if (s->phase == SMTP_PHASE_STARTTLS) {
			ptl_conn_log(c, PTL_LOG_INFO, "STARTTLS %s %s",
			             ptl_conn_tls_version(c),
			             ptl_conn_tls_cipher(c));
			smtp_session_set_phase(s, SMTP_PHASE_COMMAND);
			smtp_session_input(s);
		}
		break;
	case PTL_CONN_TIMEOUT:
		session_timeout(s);
		break;
	case PTL_CONN_EOF:
		s->eof = true;
		if (s->cmd == NULL)
			smtp_session_input(s);
		break;
	case PTL_CONN_ERROR:
		/* The core is closing it; CLOSED follows. */
		if (!s->closing) {
			s->closing = true;
			s->phase = SMTP_PHASE_CLOSING;
			session_cancel_waits(s);
		}
		break;
	case PTL_CONN_CLOSED:
		session_closed(s);
		break;
	case PTL_CONN_CONNECTED:
		break;
	}
}
