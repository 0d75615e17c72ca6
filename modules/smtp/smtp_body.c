/* SPDX-License-Identifier: MIT */
/* DATA: the command, streaming the body to the spool, end-of-data checks. */
#include <string.h>

#include "smtp.h"
#include "smtp_received.h"

int
smtp_data_check(struct smtp_session *s, const struct smtp_cmdline *cl)
{
	const struct smtp_txn *t = s->txn;

	if (t->nrcpts == 0) {
		smtp_reply(s, 554, "5.5.1", "No valid recipients");
		return PTL_DECLINED;
	}
	/* RFC 3030 section 3: binary bodies travel by BDAT only. */
	if (t->params.body == SMTP_BODY_BINARYMIME) {
		smtp_reply(s, 503, "5.5.1", "BODY=BINARYMIME needs BDAT");
		return PTL_DECLINED;
	}
	if (t->bdat) {
		smtp_reply(s, 503, "5.5.1", "DATA not allowed after BDAT");
		return PTL_DECLINED;
	}
	return PTL_OK;
}

/*
 * Open the spool and write our Received: field first; the client's bytes
 * follow it. Shared by DATA and the first BDAT of a transaction.
 */
int
smtp_body_begin(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	const struct smtp_conf *conf = s->w->conf;
	struct smtp_received_info ri;
	char received[SMTP_RECEIVED_MAX];
	size_t n;

	if (t->data_started)
		return PTL_OK;
	if (smtp_spool_open(&t->spool, s->w) != PTL_OK)
		return PTL_ERROR;
	t->received_at = ptl_wall_time();
	memset(&ri, 0, sizeof(ri));
	ri.helo = s->helo;
	ri.peer_ip = ptl_conn_peer_ip(s->conn);
	ri.hostname = s->w->hostname;
	ri.protocol = smtp_received_protocol(
	    s->esmtp, s->tls, s->auth_user != NULL, t->params.smtputf8);
	ri.id = t->id;
	if (s->tls) {
		ri.tls_version = ptl_conn_tls_version(s->conn);
		ri.tls_cipher = ptl_conn_tls_cipher(s->conn);
	}
	/* Naming the recipient is only safe when there is one: with
	 * several, each would learn the others (RFC 5321 7.2). */
	if (t->nrcpts == 1) {
		ri.rcpt = t->rcpts[0].address;
		ri.rcpt_utf8 = t->params.smtputf8;
	}
	ri.when = t->received_at;
	n = smtp_received_format(&ri, received, sizeof(received));
	smtp_spool_write(&t->spool, received, n);
	t->body_offset = t->spool.size;

	memset(&t->scan, 0, sizeof(t->scan));
	t->scan.check_lines = t->params.body != SMTP_BODY_BINARYMIME;
	t->scan.max_line = (uint64_t)conf->max_text_line;
	t->scan.max_size = conf->max_message_size;
	t->data_started = true;
	return PTL_OK;
}

int
smtp_data_proceed(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;

	if (smtp_body_begin(s) != PTL_OK) {
		smtp_reply(s, 451, "4.3.0", "Cannot take the message now");
		smtp_txn_abort(s);
		return PTL_OK;
	}
	t->scan.dot_mode = true;
	smtp_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
	smtp_session_set_phase(s, SMTP_PHASE_DATA);
	return PTL_OK;
}

/*
 * A client that ignores SIZE and keeps sending far past the limit is
 * not read to the end: at twice the limit it gets 552 and the
 * connection closes.
 */
bool
smtp_body_overrun(struct smtp_session *s)
{
	const struct smtp_txn *t = s->txn;

	if (t->scan.size / 2 <= s->w->conf->max_message_size)
		return false;
	ptl_conn_log(s->conn, PTL_LOG_INFO,
	             "message %s: over twice max_message_size, closing", t->id);
	smtp_reply(s, 552, "5.3.4",
	           "Message size exceeds fixed maximum message size");
	smtp_session_close(s, false);
	return true;
}

/*
 * Scan what is buffered into the spool. The scanner decides where the
 * message ends (CRLF.CRLF only) and remembers what was wrong with it;
 * refusals come after the end, so the session never loses step with
 * the client.
 */
int
smtp_body_data_input(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	const char *data;
	size_t n, room, take, out_len, used;
	char *out;
	int rc;

	for (;;) {
		n = ptl_conn_peek(s->conn, &data);
		if (n == 0)
			return PTL_AGAIN;
		out = smtp_spool_space(&t->spool, n + 2, &room);
		take = n < room - 2 ? n : room - 2;
		rc = smtp_data_scan(&t->scan, data, take, out, &out_len, &used);
		smtp_spool_commit(&t->spool, out_len);
		ptl_conn_consume(s->conn, used);
		if (rc == PTL_DONE) {
			smtp_session_set_phase(s, SMTP_PHASE_COMMAND);
			rc = smtp_cmd_start(s, &smtp_cmd_end_of_data, NULL);
			return rc == PTL_AGAIN ? PTL_OK : rc;
		}
		if (smtp_body_overrun(s))
			return PTL_OK;
	}
}

static int
eod_refuse(struct smtp_session *s, const char *why)
{
	ptl_conn_log(s->conn, PTL_LOG_INFO, "message %s refused: %s",
	             s->txn->id, why);
	smtp_txn_abort(s);
	return PTL_DECLINED;
}

static int
eod_check(struct smtp_session *s, const struct smtp_cmdline *cl)
{
	struct smtp_txn *t = s->txn;
	unsigned f = t->scan.flags;

	if (smtp_spool_finish(&t->spool) != PTL_OK) {
		ptl_conn_log(s->conn, PTL_LOG_ERROR,
		             "message %s: spool write failed: %s", t->id,
		             strerror(t->spool.error));
		smtp_reply(s, 451, "4.3.0",
		           "Error storing the message, "
		           "try again later");
		return eod_refuse(s, "spool write error");
	}
	if (f & SMTP_DATA_TOO_BIG) {
		smtp_reply(s, 552, "5.3.4",
		           "Message size exceeds fixed maximum message size");
		return eod_refuse(s, "too big");
	}
	/* RFC 5321 2.3.8: CR and LF only as CRLF. What a bare one means
	 * differs between servers, which is what smuggling exploits. */
	if (f & (SMTP_DATA_BARE_CR | SMTP_DATA_BARE_LF)) {
		smtp_reply(s, 550, "5.6.11",
		           "Bare CR or LF in message not allowed");
		return eod_refuse(s, "bare CR or LF");
	}
	if (f & SMTP_DATA_LONG_LINE) {
		smtp_reply(s, 500, "5.5.6", "Message line too long");
		return eod_refuse(s, "line too long");
	}
	return PTL_OK;
}

const struct smtp_command smtp_cmd_end_of_data = {
    "<end of data>", 0, eod_check, PTL_FILTER_DATA, smtp_eod_proceed,
};
