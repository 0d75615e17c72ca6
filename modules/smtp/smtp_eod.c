/* SPDX-License-Identifier: MIT */
/* End of data after the DATA filters: header edits, RELAY hook, delivery. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtp.h"

/*
 * Steps, each of which may wait: the header edits of the filters so far
 * are applied to the spool file (on the thread pool: the message is
 * streamed to a new spool file, never loaded); the RELAY hook runs for a
 * message with remote recipients, and sees the edited message; its own
 * edits are applied; the trace header is added; then delivery.
 *
 * While the rewrite runs, the transaction holds a pending reference
 * (pending_deliveries), so a session that ends meanwhile leaves the
 * transaction to the completion, which frees it.
 */

enum eod_step {
	EOD_EDITS = 0,
	EOD_RELAY,
	EOD_RELAY_EDITS,
	EOD_DELIVER,
};

struct eod_rewrite {
	struct smtp_txn *t;
	int in_fd, out_fd;
	uint64_t size, header_offset, out_size;
	struct smtp_edit *edits;
	size_t nedits;
	size_t txn_edits; /* transaction edits applied by this run */
	bool changed;
	int rc, err;
};

static int eod_run(struct smtp_session *s, bool sync);

static void
eod_rewrite_work(void *arg)
{
	struct eod_rewrite *job = arg;
	uint64_t size;

	job->rc =
	    smtp_edit_rewrite(job->in_fd, job->size, job->header_offset, -1,
	                      job->edits, job->nedits, &size, &job->changed);
	if (job->rc == PTL_OK && job->changed)
		job->rc = smtp_edit_rewrite(
		    job->in_fd, job->size, job->header_offset, job->out_fd,
		    job->edits, job->nedits, &job->out_size, &job->changed);
	job->err = errno;
}

static void
eod_rewrite_done(void *arg)
{
	struct eod_rewrite *job = arg;
	struct smtp_txn *t = job->t;
	struct smtp_session *s = t->session;

	t->pending_deliveries--;
	if (s == NULL) {
		/* The session ended meanwhile: nothing was answered. */
		close(job->out_fd);
		free(job);
		smtp_txn_free(t);
		return;
	}
	if (s->closing) {
		close(job->out_fd);
		free(job);
		return;
	}
	if (job->rc != PTL_OK) {
		ptl_conn_log(s->conn, PTL_LOG_ERROR,
		             "message %s: rewriting the header failed: %s",
		             t->id, strerror(job->err));
		close(job->out_fd);
		free(job);
		smtp_reply(s, 451, "4.3.0",
		           "Error storing the message, try again later");
		smtp_txn_abort(s);
		smtp_cmd_resume(s, PTL_OK);
		return;
	}
	if (job->changed) {
		close(t->spool.fd);
		t->spool.fd = job->out_fd;
		t->spool.size = job->out_size;
	} else {
		close(job->out_fd);
	}
	t->edits_applied += job->txn_edits;
	free(job);
	(void)eod_run(s, false);
}

/* Deep copy: the session's edits live in its pool, which may go away
 * while the job runs. */
static struct eod_rewrite *
eod_rewrite_new(struct smtp_session *s, bool first)
{
	struct smtp_txn *t = s->txn;
	const struct smtp_edit *src[SMTP_FILTERS_MAX * 4 + 1];
	struct smtp_edit authserv;
	struct eod_rewrite *job;
	size_t n = 0, bytes = 0, i;
	char *p;

	if (first) {
		for (i = 0; i < s->nedits; i++)
			src[n++] = &s->edits[i];
		/* RFC 8601 section 5: fields claiming our authserv-id come
		 * from somebody else. */
		if (s->w->conf->trace_header) {
			authserv.op = SMTP_EDIT_REMOVE_AUTHSERV;
			authserv.name = "Authentication-Results";
			authserv.value = s->w->hostname;
			authserv.index = 0;
			src[n++] = &authserv;
		}
	}
	for (i = t->edits_applied; i < t->nedits; i++)
		src[n++] = &t->edits[i];
	if (n == 0)
		return NULL;
	for (i = 0; i < n; i++)
		bytes +=
		    strlen(src[i]->name) + 1 +
		    (src[i]->value != NULL ? strlen(src[i]->value) + 1 : 0);
	job = calloc(1, sizeof(*job) + n * sizeof(*job->edits) + bytes);
	if (job == NULL)
		return NULL;
	job->edits = (struct smtp_edit *)(job + 1);
	p = (char *)(job->edits + n);
	for (i = 0; i < n; i++) {
		job->edits[i] = *src[i];
		job->edits[i].name = p;
		p = stpcpy(p, src[i]->name) + 1;
		if (src[i]->value != NULL) {
			job->edits[i].value = p;
			p = stpcpy(p, src[i]->value) + 1;
		}
	}
	job->nedits = n;
	job->txn_edits = t->nedits - t->edits_applied;
	return job;
}

/* @return PTL_OK (nothing to do), PTL_AGAIN, or PTL_DECLINED (refused,
 * the reply is sent). */
static int
eod_rewrite_start(struct smtp_session *s, bool first)
{
	struct smtp_txn *t = s->txn;
	struct eod_rewrite *job;

	if (t->nedits == t->edits_applied &&
	    (!first || (s->nedits == 0 && !s->w->conf->trace_header)))
		return PTL_OK;
	job = eod_rewrite_new(s, first);
	if (job == NULL)
		goto fail;
	job->t = t;
	job->in_fd = t->spool.fd;
	job->size = t->spool.size;
	job->header_offset = t->body_offset;
	job->out_fd = smtp_spool_create(s->w);
	if (job->out_fd < 0) {
		free(job);
		goto fail;
	}
	t->pending_deliveries++;
	if (ptl_task_submit(eod_rewrite_work, eod_rewrite_done, job) == PTL_OK)
		return PTL_AGAIN;
	t->pending_deliveries--;
	close(job->out_fd);
	free(job);
fail:
	ptl_conn_log(s->conn, PTL_LOG_ERROR,
	             "message %s: cannot apply header edits: %s", t->id,
	             strerror(errno));
	smtp_reply(s, 451, "4.3.0",
	           "Error storing the message, try again later");
	smtp_txn_abort(s);
	return PTL_DECLINED;
}

static void
eod_relay_done(struct smtp_session *s, int rc)
{
	if (rc != PTL_OK || s->txn == NULL) {
		smtp_cmd_resume(s, PTL_OK);
		return;
	}
	(void)eod_run(s, false);
}

static int
eod_relay(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	size_t i, n = 0;

	for (i = 0; i < t->nrcpts; i++)
		n += t->rcpts[i].remote ? 1 : 0;
	if (n == 0 || s->w->queue == NULL ||
	    !smtp_filter_wants(s, PTL_FILTER_RELAY))
		return PTL_OK;
	t->remote_addrs = ptl_palloc(t->pool, (n + 1) * sizeof(char *));
	if (t->remote_addrs == NULL) {
		smtp_reply(s, 451, "4.3.0", "Out of memory");
		smtp_txn_abort(s);
		return PTL_DECLINED;
	}
	for (i = 0; i < t->nrcpts; i++) {
		if (t->rcpts[i].remote)
			t->remote_addrs[t->nremote_addrs++] =
			    t->rcpts[i].address;
	}
	t->remote_addrs[t->nremote_addrs] = NULL;
	return smtp_filter_run_then(s, PTL_FILTER_RELAY, eod_relay_done);
}

/* Authentication-Results: first among the transaction's fields. */
static int
eod_trace_header(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	char **list;
	char *field;

	if (!s->w->conf->trace_header)
		return PTL_OK;
	field = smtp_filter_trace_header(s, t->pool);
	list = ptl_palloc(t->pool, (t->nheaders + 1) * sizeof(*list));
	if (field == NULL || list == NULL)
		return PTL_ERROR;
	list[0] = field;
	if (t->nheaders > 0)
		memcpy(list + 1, t->headers, t->nheaders * sizeof(*list));
	t->headers = list;
	t->nheaders++;
	return PTL_OK;
}

/*
 * Run the steps from txn->eod_step. @sync: called as the proceed stage
 * (the result goes back to the pipeline), else from a completion (the
 * pipeline is resumed here).
 */
static int
eod_run(struct smtp_session *s, bool sync)
{
	int rc = PTL_OK;

	for (;;) {
		if (s->txn == NULL)
			break;
		switch (s->txn->eod_step++) {
		case EOD_EDITS:
			rc = eod_rewrite_start(s, true);
			break;
		case EOD_RELAY:
			rc = eod_relay(s);
			break;
		case EOD_RELAY_EDITS:
			rc = eod_rewrite_start(s, false);
			break;
		default:
			if (eod_trace_header(s) != PTL_OK) {
				smtp_reply(s, 451, "4.3.0", "Out of memory");
				smtp_txn_abort(s);
				rc = PTL_OK;
				break;
			}
			rc = smtp_deliver_start(s);
			if (!sync && rc != PTL_AGAIN)
				smtp_cmd_resume(s, rc);
			return sync ? rc : PTL_AGAIN;
		}
		if (rc == PTL_AGAIN)
			return PTL_AGAIN;
		if (rc != PTL_OK)
			break;
	}
	/* Refused (the reply is sent). */
	if (!sync)
		smtp_cmd_resume(s, PTL_OK);
	return PTL_OK;
}

int
smtp_eod_proceed(struct smtp_session *s)
{
	s->txn->eod_step = EOD_EDITS;
	return eod_run(s, true);
}
