/* SPDX-License-Identifier: MIT */
/* End of data: hand the message to storage, answer when all copies are safe. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp.h"
#include "smtp_received.h"

/*
 * Durability: the 250 reply leaves only after storage reported every
 * copy on stable storage (it fsyncs file and directory, possibly for a
 * batch of messages at once: nothing here waits for one delivery before
 * starting the next, so a backend may commit them as a group).
 *
 * Failure: SMTP has one reply per message, not per recipient. If any
 * copy fails, the client gets 451 and will retry the whole message;
 * copies already stored then arrive twice. That is logged, and it is the
 * lesser evil: answering 250 would lose mail for the failed recipients.
 */

static int
deliver_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool
deliver_stored_here(const struct smtp_rcpt *r)
{
	return !r->remote && !r->via_queue;
}

/* Every local user once, however many recipients or aliases lead there. */
static const char **
deliver_users(struct smtp_txn *t, size_t *n_out)
{
	const char **users;
	size_t total = 0, i, j, n = 0;

	for (i = 0; i < t->nrcpts; i++)
		total +=
		    deliver_stored_here(&t->rcpts[i]) ? t->rcpts[i].nusers : 0;
	users = ptl_palloc(t->pool, (total + 1) * sizeof(*users));
	if (users == NULL)
		return NULL;
	for (i = 0; i < t->nrcpts; i++) {
		if (!deliver_stored_here(&t->rcpts[i]))
			continue;
		for (j = 0; j < t->rcpts[i].nusers; j++)
			users[n++] = t->rcpts[i].users[j];
	}
	qsort(users, n, sizeof(*users), deliver_cmp);
	for (i = 0, j = 0; i < n; i++) {
		if (j == 0 || strcmp(users[j - 1], users[i]) != 0)
			users[j++] = users[i];
	}
	*n_out = j;
	return users;
}

/*
 * Fields written before the message for one user: Return-Path and
 * Delivered-To (RFC 9228), then what filters added.
 */
static char *
deliver_prefix(struct smtp_txn *t, struct smtp_session *s, const char *user,
               size_t *len_out)
{
	char esc[SMTP_PATH_MAX * 3 + 1];
	size_t len, i;
	char *p, *w;

	smtp_header_escape(esc, sizeof(esc), user, strlen(user), true);
	len = strlen(t->sender) + strlen(esc) + 48;
	for (i = 0; i < s->nheaders; i++)
		len += strlen(s->headers[i]);
	for (i = 0; i < t->nheaders; i++)
		len += strlen(t->headers[i]);
	p = ptl_palloc(t->pool, len + 1);
	if (p == NULL)
		return NULL;
	w = p + snprintf(p, len + 1,
	                 "Return-Path: <%s>\r\nDelivered-To: %s\r\n", t->sender,
	                 esc);
	for (i = 0; i < s->nheaders; i++)
		w = stpcpy(w, s->headers[i]);
	for (i = 0; i < t->nheaders; i++)
		w = stpcpy(w, t->headers[i]);
	*len_out = (size_t)(w - p);
	return p;
}

static void
deliver_log_accepted(struct smtp_txn *t, struct smtp_session *s,
                     const char *what)
{
	char from[SMTP_PATH_MAX * 4 + 1], user[SMTP_PATH_MAX * 4 + 1];

	smtp_session_log_escape(from, sizeof(from), t->sender);
	smtp_session_log_escape(user, sizeof(user),
	                        s->auth_user != NULL ? s->auth_user : "-");
	ptl_conn_log(s->conn, PTL_LOG_INFO,
	             "message %s %s from=<%s> nrcpt=%zu size=%llu tls=%s "
	             "auth=%s%s%s",
	             t->id, what, from, t->nrcpts,
	             (unsigned long long)(t->spool.size - t->body_offset),
	             s->tls ? ptl_conn_tls_version(s->conn) : "none", user,
	             t->queue_id[0] != '\0' ? " queued=" : "", t->queue_id);
}

/* Every completion is in: answer, then let the session go on. */
static void
deliver_finish(struct smtp_txn *t)
{
	struct smtp_session *s = t->session;
	char reason[sizeof(t->fail_reason)];

	if (t->tempfailed > 0 || t->permfailed > 0) {
		ptl_log(PTL_LOG_WARN,
		        "message %s: storage failed for %u of %u users (%s)%s",
		        t->id, t->tempfailed + t->permfailed,
		        t->delivered + t->tempfailed + t->permfailed,
		        t->fail_reason,
		        t->delivered > 0 ? "; the copies already stored will "
		                           "be duplicated when the client "
		                           "retries"
		                         : "");
	}
	if (s == NULL || s->magic != SMTP_SESSION_MAGIC) {
		smtp_txn_free(t);
		return;
	}
	s->txn = NULL;
	if (t->tempfailed == 0 && t->permfailed == 0) {
		s->messages++;
		deliver_log_accepted(t, s, "accepted");
		smtp_reply(s, 250, "2.0.0", "Ok: queued as %s", t->id);
	} else if (t->tempfailed == 0 && t->delivered == 0) {
		/* Every copy failed for good (no mailbox, over quota). */
		ptl_log_escape(reason, sizeof(reason), t->fail_reason,
		               strlen(t->fail_reason));
		smtp_reply(s, 554, "5.3.0", "Delivery failed: %s", reason);
	} else {
		smtp_reply(s, 451, "4.3.0",
		           "Temporary storage failure, try again later");
	}
	smtp_txn_free(t);
	smtp_cmd_resume(s, PTL_OK);
}

static void
deliver_done(const struct ptl_storage_result *res, void *arg)
{
	struct smtp_txn *t = arg;

	if (t == NULL || t->magic != SMTP_TXN_MAGIC)
		return;
	if (res != NULL && res->status == PTL_STORAGE_OK) {
		t->delivered++;
	} else {
		if (res != NULL && res->status == PTL_STORAGE_PERMFAIL)
			t->permfailed++;
		else
			t->tempfailed++;
		if (t->fail_reason[0] == '\0')
			(void)snprintf(t->fail_reason, sizeof(t->fail_reason),
			               "%s",
			               res != NULL && res->reason != NULL
			                   ? res->reason
			                   : "unknown error");
	}
	if (--t->pending_deliveries == 0)
		deliver_finish(t);
}

static void
deliver_queued(enum ptl_queue_status status, const char *queue_id,
               const char *reason, void *arg)
{
	struct smtp_txn *t = arg;

	if (t == NULL || t->magic != SMTP_TXN_MAGIC)
		return;
	if (status == PTL_QUEUE_OK) {
		t->delivered++;
		(void)snprintf(t->queue_id, sizeof(t->queue_id), "%s",
		               queue_id != NULL ? queue_id : "?");
	} else {
		t->tempfailed++;
		if (t->fail_reason[0] == '\0')
			(void)snprintf(t->fail_reason, sizeof(t->fail_reason),
			               "queue: %s",
			               reason != NULL ? reason : "failed");
	}
	if (--t->pending_deliveries == 0)
		deliver_finish(t);
}

/* Filter-added fields, for the queue (which keeps no Delivered-To). */
static char *
deliver_filter_headers(struct smtp_txn *t, struct smtp_session *s,
                       size_t *len_out)
{
	size_t len = 0, i;
	char *p, *w;

	for (i = 0; i < s->nheaders; i++)
		len += strlen(s->headers[i]);
	for (i = 0; i < t->nheaders; i++)
		len += strlen(t->headers[i]);
	p = ptl_palloc(t->pool, len + 1);
	if (p == NULL)
		return NULL;
	w = p;
	*w = '\0';
	for (i = 0; i < s->nheaders; i++)
		w = stpcpy(w, s->headers[i]);
	for (i = 0; i < t->nheaders; i++)
		w = stpcpy(w, t->headers[i]);
	*len_out = (size_t)(w - p);
	return p;
}

/*
 * Mail for other domains (and local recipients that asked for a success
 * report) goes to the queue in one piece, with its DSN parameters: from
 * the queue's 250 on, the queue owns retries, bounces and reports.
 */
static void
deliver_enqueue(struct smtp_session *s, struct smtp_txn *t)
{
	static const enum ptl_body_type bodies[] = {
	    [SMTP_BODY_NONE] = PTL_BODY_7BIT,
	    [SMTP_BODY_7BIT] = PTL_BODY_7BIT,
	    [SMTP_BODY_8BITMIME] = PTL_BODY_8BITMIME,
	    [SMTP_BODY_BINARYMIME] = PTL_BODY_BINARYMIME,
	};
	const struct smtp_worker *w = s->w;
	struct ptl_queue_message m;
	struct ptl_queue_rcpt *r;
	const struct smtp_rcpt *src;
	size_t i, n = 0;

	r = ptl_pcalloc(t->pool, t->nremote * sizeof(*r));
	memset(&m, 0, sizeof(m));
	m.prefix = deliver_filter_headers(t, s, &m.prefix_len);
	if (r == NULL || m.prefix == NULL) {
		t->tempfailed++;
		return;
	}
	for (i = 0; i < t->nrcpts; i++) {
		src = &t->rcpts[i];
		if (deliver_stored_here(src))
			continue;
		r[n].address = src->address;
		r[n].notify = (src->params.notify & SMTP_NOTIFY_NEVER
		                   ? PTL_DSN_NOTIFY_NEVER
		                   : 0) |
		              (src->params.notify & SMTP_NOTIFY_SUCCESS
		                   ? PTL_DSN_NOTIFY_SUCCESS
		                   : 0) |
		              (src->params.notify & SMTP_NOTIFY_FAILURE
		                   ? PTL_DSN_NOTIFY_FAILURE
		                   : 0) |
		              (src->params.notify & SMTP_NOTIFY_DELAY
		                   ? PTL_DSN_NOTIFY_DELAY
		                   : 0);
		/* xtext-decoded: printable ASCII, "rfc822;user@example". */
		if (src->params.orcpt != NULL)
			r[n].orcpt = ptl_psprintf(t->pool, "%s;%s",
			                          src->params.orcpt_type,
			                          src->params.orcpt);
		n++;
	}
	m.mail_from = t->sender;
	m.envid = t->params.envid;
	m.ret = t->params.ret == SMTP_RET_FULL   ? PTL_DSN_RET_FULL
	        : t->params.ret == SMTP_RET_HDRS ? PTL_DSN_RET_HDRS
	                                         : PTL_DSN_RET_UNSET;
	m.body = bodies[t->params.body];
	m.smtputf8 = t->params.smtputf8;
	m.rcpts = r;
	m.nrcpts = n;
	m.fd = t->spool.fd;
	m.size = t->spool.size;
	m.auth_user = s->auth_user;
	m.client_ip = ptl_conn_peer_ip(s->conn);
	m.received_at = t->received_at;
	t->pending_deliveries++;
	if (w->queue->enqueue(w->queue_inst, &m, deliver_queued, t) ==
	    PTL_AGAIN)
		return;
	t->pending_deliveries--;
	t->tempfailed++;
	if (t->fail_reason[0] == '\0')
		(void)snprintf(t->fail_reason, sizeof(t->fail_reason),
		               "the queue refused the message");
}

int
smtp_deliver_start(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	const struct smtp_worker *w = s->w;
	struct ptl_storage_delivery d;
	const char **users;
	size_t nusers = 0, i;
	bool quarantined;
	int rc;

	if (t->discard || s->discard) {
		s->txn = NULL;
		s->messages++;
		deliver_log_accepted(t, s, "discarded by a filter");
		smtp_reply(s, 250, "2.0.0", "Ok: queued as %s", t->id);
		smtp_txn_free(t);
		return PTL_OK;
	}
	quarantined = t->folder != NULL || s->folder != NULL;
	for (i = 0; i < t->nrcpts; i++) {
		struct smtp_rcpt *r = &t->rcpts[i];

		/*
		 * Who reports a successful local delivery? The queue does,
		 * so such a recipient takes its local route (still stored
		 * before 250: the queue fsyncs before it answers).
		 */
		r->via_queue = !r->remote && !quarantined && w->queue != NULL &&
		               (r->params.notify & SMTP_NOTIFY_SUCCESS) != 0;
		t->nremote += r->remote || r->via_queue ? 1 : 0;
	}
	users = deliver_users(t, &nusers);
	if (users != NULL && nusers == 0 && t->nremote == 0) {
		smtp_reply(s, 554, "5.5.1", "No valid recipients");
		smtp_txn_abort(s);
		return PTL_OK;
	}
	if (users == NULL) {
		smtp_reply(s, 451, "4.3.0", "Out of memory");
		smtp_txn_abort(s);
		return PTL_OK;
	}
	/*
	 * One reference for this loop, so that a completion arriving early
	 * cannot finish the transaction before every copy was started.
	 */
	t->pending_deliveries = 1;
	for (i = 0; i < nusers; i++) {
		memset(&d, 0, sizeof(d));
		d.user = users[i];
		d.folder = t->folder != NULL ? t->folder : s->folder;
		d.fd = t->spool.fd;
		d.size = t->spool.size;
		d.prefix = deliver_prefix(t, s, users[i], &d.prefix_len);
		d.envelope_from = t->sender;
		d.received_at = t->received_at;
		if (d.prefix == NULL) {
			t->tempfailed++;
			continue;
		}
		t->pending_deliveries++;
		rc = w->storage->deliver(w->storage_inst, &d, deliver_done, t);
		if (rc == PTL_AGAIN)
			continue;
		t->pending_deliveries--;
		t->tempfailed++;
		if (t->fail_reason[0] == '\0')
			(void)snprintf(t->fail_reason, sizeof(t->fail_reason),
			               "storage refused the delivery");
	}
	/* Quarantine means not delivered: the copies stay here. */
	if (t->nremote > 0 && w->queue != NULL && quarantined)
		ptl_conn_log(s->conn, PTL_LOG_INFO,
		             "message %s: quarantined, %zu remote recipients "
		             "not relayed",
		             t->id, t->nremote);
	else if (t->nremote > 0 && w->queue != NULL)
		deliver_enqueue(s, t);
	/*
	 * When this was the last reference, deliver_finish() replies and
	 * calls smtp_cmd_resume(), which the pipeline records as an early
	 * completion of this stage; PTL_AGAIN is right either way.
	 */
	if (--t->pending_deliveries == 0)
		deliver_finish(t);
	return PTL_AGAIN;
}
