/* SPDX-License-Identifier: MIT */
/* SMTP client transactions: MAIL, RCPT, DATA or BDAT, per-recipient results. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "smtpc_int.h"

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
	smtpc_set_reason(s, false, "%s", why);
	smtpc_settle_all(s, RELAY_RCPT_FAILED, s->reason, false);
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
	return smtpc_write(s, "MAIL FROM:<%s>%s\r\n", job->mail_from, params);
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
	return smtpc_write(s, "RCPT TO:<%s>%s%s\r\n", r->address, notify,
	                   orcpt);
}

static int
session_send_data_cmd(struct smtpc_session *s)
{
	return smtpc_write(s, "DATA\r\n");
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

void
smtpc_txn_begin(struct smtpc_session *s)
{
	const struct relay_job *job = s->txn.job;
	bool utf8;
	size_t i;

	if (!s->has_txn || s->result_pending)
		return;
	s->phase = SMTPC_TXN;
	if (!session_txn_precheck(s, &utf8)) {
		/* The connection is fine: the next message may use it. */
		smtpc_report_later(s, SMTPC_DONE);
		return;
	}
	s->order = calloc(job->nrcpts, sizeof(*s->order));
	s->accepted = calloc(job->nrcpts, sizeof(*s->accepted));
	if (s->order == NULL || s->accepted == NULL) {
		smtpc_set_reason(s, false, "451 4.3.0 out of memory");
		smtpc_fail(s, true);
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
	smtpc_set_timeout(s, s->conf->command_timeout);
	(void)session_send_next(s, utf8);
}

/* The transaction ended before any data: results from the replies. */
static void
session_txn_end(struct smtpc_session *s, const struct smtpc_reply *data_reply)
{
	bool open = s->phase != SMTPC_CLOSING;
	size_t k;

	if (!s->mail_ok) {
		smtpc_set_reason(s, true, "%s", s->mail_reply);
		if (s->mail_code / 100 != 5) {
			/* RFC 5321 5.1: a 4xx to MAIL, try elsewhere. */
			smtpc_fail(s, true);
			return;
		}
		smtpc_settle_all(s, RELAY_RCPT_FAILED, s->mail_reply, true);
		/* No transaction was opened: the connection is clean. */
		s->clean = open;
		smtpc_report(s, SMTPC_DONE);
		return;
	}
	for (k = 0; k < s->norder && data_reply != NULL; k++) {
		if (s->accepted[k])
			smtpc_settle(s, s->order[k],
			             smtpc_reply_class(data_reply) == 5
			                 ? RELAY_RCPT_FAILED
			                 : RELAY_RCPT_DEFERRED,
			             data_reply->text, true);
	}
	if (data_reply != NULL)
		smtpc_set_reason(s, true, "%s", data_reply->text);
	else
		smtpc_set_reason(s, true, "%s: every recipient refused",
		                 s->peer);
	/* MAIL was accepted: a transaction stays open until RSET. */
	s->clean = false;
	smtpc_report(s, SMTPC_DONE);
}

void
smtpc_continue_data(struct smtpc_session *s)
{
	struct ptl_error err;
	int rc;

	rc = smtpc_data_send(&s->data, s->conn, &err);
	if (rc == PTL_AGAIN)
		return;
	if (rc == PTL_ERROR) {
		/* Never end the data of a message we could not read whole:
		 * dropping the connection makes the server discard it. */
		smtpc_set_reason(s, false, "451 4.3.0 %s: %s", s->peer,
		                 err.text);
		ptl_log(PTL_LOG_WARN, "relay: %s", s->reason);
		smtpc_fail(s, false);
		return;
	}
	smtpc_data_end(&s->data);
	s->phase = SMTPC_DOT;
	smtpc_set_timeout(s, s->conf->data_done_timeout);
}

static void
session_start_data(struct smtpc_session *s)
{
	struct ptl_error err;
	const struct relay_job *job = s->txn.job;

	if (smtpc_data_begin(&s->data, job->fd, job->size, s->bdat, &err) !=
	    PTL_OK) {
		smtpc_set_reason(s, false, "451 4.3.0 %s", err.text);
		smtpc_fail(s, true);
		return;
	}
	if (s->bdat) {
		/* One chunk, the whole message (RFC 3030 2). */
		if (smtpc_write(s, "BDAT %llu LAST\r\n",
		                (unsigned long long)job->size) != PTL_OK)
			return;
	} else {
		s->outstanding++; /* the reply to the final "." */
	}
	s->data_started = true;
	s->phase = SMTPC_SENDING;
	smtpc_set_timeout(s, s->conf->data_block_timeout);
	smtpc_continue_data(s);
}

void
smtpc_on_txn_reply(struct smtpc_session *s)
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
			smtpc_settle(s, s->order[k - 1],
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
			smtpc_set_timeout(s, s->conf->data_timeout);
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
			smtpc_close(s, SMTPC_CLOSE_ABORT);
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
void
smtpc_on_data_reply(struct smtpc_session *s, bool premature)
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
		smtpc_close(s, SMTPC_CLOSE_ABORT);
	} else {
		s->clean = true;
		s->phase = SMTPC_TXN;
	}
	for (k = 0; k < s->norder; k++) {
		struct relay_rcpt *r = &s->txn.job->rcpts[s->order[k]];

		if (!s->accepted[k])
			continue;
		smtpc_settle(s, s->order[k], st, s->reply.text, true);
		/* session_send_rcpt gave it NOTIFY (and ORCPT). */
		r->dsn_passed = st == RELAY_RCPT_DELIVERED &&
		                (s->caps.ext & SMTPC_EXT_DSN) && r->notify != 0;
	}
	smtpc_set_reason(s, true, "%s", s->reply.text);
	smtpc_report(s, SMTPC_DONE);
}

void
smtpc_txn_free(struct smtpc_session *s)
{
	smtpc_data_end(&s->data);
	free(s->order);
	free(s->accepted);
	s->order = NULL;
	s->accepted = NULL;
	s->norder = 0;
}
