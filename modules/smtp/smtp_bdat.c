/* SPDX-License-Identifier: MIT */
/* BDAT (CHUNKING, RFC 3030): counted chunks of message data. */
#include "smtp.h"

/* Why a chunk is read and then refused. */
enum bdat_refusal {
	BDAT_ACCEPT = 0,
	BDAT_NO_MAIL,  /* 503: no transaction (or HELO, not EHLO) */
	BDAT_NO_RCPT,  /* 554: no accepted recipient */
	BDAT_TEMPFAIL, /* 451: no spool */
};

/*
 * The chunk follows the command whatever we answer, so every refusal is
 * sent after the chunk has been read (and dropped): answering early
 * would make us read message bytes as commands.
 */
int
smtp_bdat_check(struct smtp_session *s, const struct smtp_cmdline *cl)
{
	const struct smtp_conf *conf = s->w->conf;
	struct smtp_txn *t = s->txn;
	uint64_t size;
	bool last;

	if (smtp_parse_bdat(cl->args, cl->args_len, &size, &last) != PTL_OK) {
		smtp_reply(s, 501, "5.5.4", "Syntax: BDAT size [LAST]");
		return PTL_DECLINED;
	}
	/* A chunk this large is not worth reading to stay in step. */
	if (size / 2 > conf->max_message_size) {
		smtp_reply(s, 552, "5.3.4",
		           "Message size exceeds fixed maximum message size");
		smtp_session_close(s, false);
		return PTL_DECLINED;
	}
	s->bdat_left = size;
	s->bdat_last = last;
	s->bdat_refused = BDAT_ACCEPT;
	if (!s->helo_done || !s->esmtp || t == NULL) {
		s->bdat_refused = BDAT_NO_MAIL;
	} else if (t->nrcpts == 0) {
		s->bdat_refused = BDAT_NO_RCPT;
	} else if (!t->data_started) {
		t->bdat = true;
		if (smtp_body_begin(s) != PTL_OK)
			s->bdat_refused = BDAT_TEMPFAIL;
	}
	return PTL_OK;
}

int
smtp_bdat_proceed(struct smtp_session *s)
{
	smtp_session_set_phase(s, SMTP_PHASE_BDAT);
	return PTL_OK;
}

static int
bdat_chunk_end(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	int rc;

	smtp_session_set_phase(s, SMTP_PHASE_COMMAND);
	switch (s->bdat_refused) {
	case BDAT_NO_MAIL:
		smtp_reply(s, 503, "5.5.1", "Need MAIL command first");
		return PTL_OK;
	case BDAT_NO_RCPT:
		smtp_reply(s, 554, "5.5.1", "No valid recipients");
		return PTL_OK;
	case BDAT_TEMPFAIL:
		smtp_reply(s, 451, "4.3.0", "Cannot take the message now");
		smtp_txn_abort(s);
		return PTL_OK;
	default:
		break;
	}
	/* Never expected (the transaction lives until the chunk ends), but
	 * the input loop tolerates it, so must this. */
	if (t == NULL) {
		smtp_reply(s, 503, "5.5.1", "Need MAIL command first");
		return PTL_OK;
	}
	/* RFC 3030 section 2: after a failed chunk the transaction is
	 * over; further chunks get 503 until a new MAIL. */
	if (t->scan.flags & SMTP_DATA_TOO_BIG) {
		smtp_reply(s, 552, "5.3.4",
		           "Message size exceeds fixed maximum message size");
		ptl_conn_log(s->conn, PTL_LOG_INFO,
		             "message %s refused: too big", t->id);
		smtp_txn_abort(s);
		return PTL_OK;
	}
	if (!s->bdat_last) {
		smtp_reply(
		    s, 250, "2.0.0", "%llu octets received",
		    (unsigned long long)(t->spool.size - t->body_offset));
		return PTL_OK;
	}
	smtp_data_finish(&t->scan);
	rc = smtp_cmd_start(s, &smtp_cmd_end_of_data, NULL);
	return rc == PTL_AGAIN ? PTL_OK : rc;
}

int
smtp_bdat_input(struct smtp_session *s)
{
	struct smtp_txn *t;
	const char *data;
	size_t n, room, take, out_len, used;
	char *out;

	while (s->bdat_left > 0) {
		n = ptl_conn_peek(s->conn, &data);
		if (n == 0)
			return PTL_AGAIN;
		if (n > s->bdat_left)
			n = (size_t)s->bdat_left;
		t = s->txn;
		if (s->bdat_refused != BDAT_ACCEPT || t == NULL) {
			ptl_conn_consume(s->conn, n);
			s->bdat_left -= n;
			continue;
		}
		out = smtp_spool_space(&t->spool, n + 2, &room);
		take = n < room - 2 ? n : room - 2;
		(void)smtp_data_scan(&t->scan, data, take, out, &out_len,
		                     &used);
		smtp_spool_commit(&t->spool, out_len);
		ptl_conn_consume(s->conn, used);
		s->bdat_left -= used;
		if (smtp_body_overrun(s))
			return PTL_OK;
	}
	return bdat_chunk_end(s);
}
