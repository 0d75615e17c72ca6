/* SPDX-License-Identifier: MIT */
/* Reports to the sender: failure, delay and success DSNs, spooled. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue_int.h"

/*
 * A report is a new message in the spool, from the null sender (so it
 * can never cause a report itself, RFC 5321 6.1), to the original
 * sender. Order: the recipients' final states are durable first (the job
 * recorded them); the report is written and committed; then a state
 * record marks them reported. A crash between the last two sends the
 * report again after the restart, never not at all.
 */

struct bounce_item {
	uint32_t idx;
	enum queue_dsn_action action;
	struct queue_rcpt_state st; /* the runner's state, texts NULL */
};

struct bounce_task {
	struct queue_runner *r;
	struct queue_msg *m;
	size_t n;
	struct bounce_item *items;
	int64_t now_ms;
	char dsn_id[QUEUE_ID_SIZE];
	int rc;
	char why[QUEUE_WHY_MAX];
};

bool
queue_bounce_due(const struct queue_msg *m)
{
	size_t i;

	for (i = 0; i < m->env.nrcpts; i++) {
		const struct queue_run_rcpt *rc = &m->rcpts[i];

		if (rc->warn_due)
			return true;
		if ((rc->st.status == QUEUE_RCPT_DELIVERED ||
		     rc->st.status == QUEUE_RCPT_FAILED) &&
		    !(rc->st.flags & QUEUE_RCPT_REPORTED))
			return true;
	}
	return false;
}

static int
bounce_write(void *ctx, const void *p, size_t len)
{
	return queue_writer_write(ctx, p, len, NULL, 0);
}

static void
bounce_work(void *arg)
{
	struct bounce_task *t = arg;
	struct queue_msg *m = t->m;
	struct queue_rcpt_state *disk = NULL;
	struct queue_dsn_rcpt *dr = NULL;
	struct queue_env_rcpt to;
	struct queue_env env;
	struct queue_writer w;
	struct queue_dsn d;
	struct qrec_buf rec;
	uint64_t valid, size;
	uint32_t *idx = NULL;
	char path[4096], msgid[QUEUE_ID_SIZE + 300], boundary[80];
	bool utf8;
	size_t i;
	int fd = -1;

	t->rc = -1;
	qrec_buf_init(&rec, QUEUE_STATE_MAX / 4);
	disk = calloc(m->env.nrcpts, sizeof(*disk));
	dr = calloc(t->n, sizeof(*dr));
	idx = calloc(t->n, sizeof(*idx));
	if (disk == NULL || dr == NULL || idx == NULL) {
		(void)snprintf(t->why, sizeof(t->why), "out of memory");
		goto out;
	}
	/* The texts (remote replies) are only on disk. */
	if (queue_state_load(t->r->spool.qdir, m->env.id, disk, m->env.nrcpts,
	                     true, &valid, &size, t->why,
	                     sizeof(t->why)) != QUEUE_READ_OK)
		goto out;
	if (!queue_path(path, sizeof(path), t->r->spool.qdir, "msg",
	                m->env.id) ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		(void)snprintf(t->why, sizeof(t->why),
		               "cannot open the message");
		goto out;
	}
	for (i = 0; i < t->n; i++) {
		const struct queue_rcpt_state *ds = &disk[t->items[i].idx];
		const struct queue_env_rcpt *er =
		    &m->env.rcpts[t->items[i].idx];

		dr[i].address = er->address;
		dr[i].orcpt = er->orcpt;
		dr[i].action = t->items[i].action;
		dr[i].diagnostic = ds->error;
		dr[i].remote_mta = ds->host;
		dr[i].last_attempt = t->items[i].st.last_ms / 1000;
		if (dr[i].action == QUEUE_DSN_DELIVERED && ds->host != NULL)
			dr[i].action = QUEUE_DSN_RELAYED;
	}
	if (queue_writer_open(&w, &t->r->spool, t->why, sizeof(t->why)) != 0)
		goto out;
	utf8 = m->env.smtputf8;
	(void)snprintf(msgid, sizeof(msgid), "%s.dsn@%s", w.id, t->r->hostname);
	(void)snprintf(boundary, sizeof(boundary), "=_petrel_%s", w.id);
	memset(&d, 0, sizeof(d));
	d.reporting_mta = t->r->hostname;
	d.queue_id = m->env.id;
	d.message_id = msgid;
	d.boundary = boundary;
	d.sender = m->env.from;
	d.envid = m->env.envid;
	d.arrival = m->env.received;
	d.now = t->now_ms / 1000;
	d.retry_until = (m->received_ms + t->r->policy.lifetime) / 1000;
	d.utf8 = utf8;
	d.full = m->env.ret != PTL_DSN_RET_HDRS &&
	         m->env.body_size <= t->r->conf->bounce_size_limit;
	d.nrcpts = t->n;
	d.rcpts = dr;
	if (queue_dsn_compose(&d, fd, m->env.body_size, bounce_write, &w,
	                      t->why, sizeof(t->why)) != 0) {
		queue_writer_abort(&w);
		goto out;
	}
	memset(&env, 0, sizeof(env));
	to.address = m->env.from;
	to.notify = 0;
	to.orcpt = NULL;
	env.from = "";
	env.is_dsn = true;
	env.smtputf8 = utf8;
	env.body =
	    m->env.body == PTL_BODY_7BIT ? PTL_BODY_7BIT : PTL_BODY_8BITMIME;
	env.received = t->now_ms / 1000;
	env.nrcpts = 1;
	env.rcpts = &to;
	if (queue_writer_commit(&w, &env, t->why, sizeof(t->why)) != 0)
		goto out;
	(void)snprintf(t->dsn_id, sizeof(t->dsn_id), "%s", w.id);
	/* Mark them reported, keeping each one's texts in the log. */
	for (i = 0; i < t->n; i++) {
		struct queue_rcpt_state *ds = &disk[t->items[i].idx];
		char *error = ds->error, *host = ds->host;

		*ds = t->items[i].st;
		ds->error = error;
		ds->host = host;
		if (t->items[i].action == QUEUE_DSN_DELAYED)
			ds->flags |= QUEUE_RCPT_WARNED;
		else
			ds->flags |= QUEUE_RCPT_REPORTED;
		idx[i] = t->items[i].idx;
	}
	{
		struct queue_rcpt_state *pick = calloc(t->n, sizeof(*pick));

		if (pick == NULL) {
			(void)snprintf(t->why, sizeof(t->why), "out of memory");
			goto out;
		}
		for (i = 0; i < t->n; i++)
			pick[i] = disk[idx[i]];
		queue_state_encode(&rec, t->now_ms, idx, pick, t->n);
		free(pick);
	}
	if (rec.failed) {
		(void)snprintf(t->why, sizeof(t->why),
		               "state record too "
		               "large");
		goto out;
	}
	t->rc = queue_state_append(&t->r->spool, m->env.id, rec.data, rec.len,
	                           UINT64_MAX, t->why, sizeof(t->why));
out:
	if (fd >= 0)
		(void)close(fd);
	if (disk != NULL) {
		queue_state_free_texts(disk, m->env.nrcpts);
		free(disk);
	}
	free(dr);
	free(idx);
	qrec_buf_free(&rec);
}

static void
bounce_done(void *arg)
{
	struct bounce_task *t = arg;
	struct queue_runner *r = t->r;
	struct queue_msg *m = t->m;
	char from[QUEUE_ADDRESS_MAX + 1];
	size_t i;

	m->busy--;
	if (t->rc != 0) {
		ptl_log(PTL_LOG_ERROR,
		        "queue: %s: cannot send the delivery status "
		        "notification: %s; trying again later",
		        m->env.id, t->why);
		free(t->items);
		free(t);
		queue_msg_later(r, m);
		return;
	}
	for (i = 0; i < t->n; i++) {
		struct queue_run_rcpt *rc = &m->rcpts[t->items[i].idx];

		if (t->items[i].action == QUEUE_DSN_DELAYED) {
			rc->st.flags |= QUEUE_RCPT_WARNED;
			rc->warn_due = false;
		} else {
			rc->st.flags |= QUEUE_RCPT_REPORTED;
		}
	}
	ptl_log_escape(from, sizeof(from), m->env.from, strlen(m->env.from));
	ptl_log(PTL_LOG_INFO,
	        "queue: %s: delivery status notification %s queued for "
	        "<%s> (%zu recipient%s)",
	        m->env.id, t->dsn_id, from, t->n, t->n == 1 ? "" : "s");
	free(t->items);
	free(t);
	queue_msg_settle(r, m);
	queue_dispatch(r);
}

void
queue_bounce_start(struct queue_runner *r, struct queue_msg *m)
{
	struct bounce_task *t;
	size_t i, n = 0;

	t = calloc(1, sizeof(*t));
	if (t != NULL)
		t->items = calloc(m->env.nrcpts, sizeof(*t->items));
	if (t == NULL || t->items == NULL) {
		free(t);
		queue_msg_later(r, m);
		return;
	}
	for (i = 0; i < m->env.nrcpts; i++) {
		struct queue_run_rcpt *rc = &m->rcpts[i];
		enum queue_dsn_action action;

		/* Never a report for a report (RFC 3461 6.2). */
		if (m->env.from[0] == '\0' || m->env.is_dsn) {
			rc->warn_due = false;
			if (rc->st.status == QUEUE_RCPT_DELIVERED ||
			    rc->st.status == QUEUE_RCPT_FAILED)
				rc->st.flags |= QUEUE_RCPT_REPORTED;
			continue;
		}
		if (rc->warn_due && rc->st.status == QUEUE_RCPT_DEFERRED)
			action = QUEUE_DSN_DELAYED;
		else if (rc->st.status == QUEUE_RCPT_FAILED &&
		         !(rc->st.flags & QUEUE_RCPT_REPORTED))
			action = QUEUE_DSN_FAILED;
		else if (rc->st.status == QUEUE_RCPT_DELIVERED &&
		         !(rc->st.flags & QUEUE_RCPT_REPORTED))
			action = QUEUE_DSN_DELIVERED;
		else {
			rc->warn_due = false;
			continue;
		}
		t->items[n].idx = (uint32_t)i;
		t->items[n].action = action;
		t->items[n].st = rc->st;
		t->items[n].st.error = t->items[n].st.host = NULL;
		n++;
	}
	if (n == 0) {
		free(t->items);
		free(t);
		queue_msg_settle(r, m);
		return;
	}
	t->r = r;
	t->m = m;
	t->n = n;
	t->now_ms = queue_now_ms();
	m->busy++;
	queue_task(r, bounce_work, bounce_done, t);
}
