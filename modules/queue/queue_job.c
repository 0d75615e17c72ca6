/* SPDX-License-Identifier: MIT */
/* One delivery attempt: open the message, deliver, record the results. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue_int.h"

/*
 * Order of a job, so that a crash never loses a recipient nor repeats one
 * that was recorded as delivered:
 *   1. open msg/ID (task);
 *   2. the engine (or the storage service) delivers and fills one result
 *      per recipient;
 *   3. the results are appended to state/ID and fdatasync'd (task) - or,
 *      when they finish the message, msg/ID is removed and msg/ fsync'd.
 * A kill between 2 and 3 repeats the attempt after the restart: that is
 * the only way to a duplicate, and only for the messages in flight.
 */

void
queue_work_free(struct queue_work *w)
{
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; i < w->n; i++)
		w->m->rcpts[w->idx[i]].inflight = false;
	w->m->busy--;
	free(w->idx);
	free(w);
}

static void
queue_job_free(struct queue_job *job)
{
	if (job->fd >= 0)
		(void)close(job->fd);
	qrec_buf_free(&job->rec);
	ptl_pool_destroy(job->pool);
	free(job->rr);
	free(job);
}

static void
queue_job_open_work(void *arg)
{
	struct queue_job *job = arg;
	char path[4096];

	if (!queue_path(path, sizeof(path), job->r->spool.qdir, "msg",
	                job->w->m->env.id)) {
		job->open_errno = ENAMETOOLONG;
		return;
	}
	job->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (job->fd < 0)
		job->open_errno = errno;
}

static void
queue_job_fail_all(struct queue_job *job, enum relay_rcpt_status status,
                   const char *what, const char *detail)
{
	size_t i;

	for (i = 0; i < job->w->n; i++) {
		job->rr[i].status = status;
		(void)snprintf(job->rr[i].reply, sizeof(job->rr[i].reply),
		               "%s%s%s", what, detail[0] ? ": " : "", detail);
	}
}

static void
queue_job_relay_done(struct relay_job *rj, void *arg)
{
	queue_job_results(arg);
}

static void
queue_job_open_done(void *arg)
{
	struct queue_job *job = arg;
	struct queue_msg *m = job->w->m;

	if (job->fd < 0) {
		/* Removed behind our back (petrelctl delete raced a load):
		 * nothing to deliver, nothing to record. */
		if (job->open_errno == ENOENT)
			m->deleted = true;
		queue_job_fail_all(job, RELAY_RCPT_DEFERRED,
		                   "cannot open the queue file",
		                   strerror(job->open_errno));
		queue_job_results(job);
		return;
	}
	if (job->w->local) {
		queue_local_start(job);
		return;
	}
	job->rj.queue_id = m->env.id;
	job->rj.domain = job->w->domain;
	job->rj.route = job->w->route != NULL ? &job->w->route->relay : NULL;
	job->rj.mail_from = m->env.from;
	job->rj.envid = m->env.envid;
	job->rj.ret = (enum ptl_dsn_ret)m->env.ret;
	job->rj.body = (enum ptl_body_type)m->env.body;
	job->rj.smtputf8 = m->env.smtputf8;
	job->rj.fd = job->fd;
	job->rj.size = m->env.body_size;
	job->rj.rcpts = job->rr;
	job->rj.nrcpts = job->w->n;
	if (job->r->engine == NULL) {
		queue_job_fail_all(job, RELAY_RCPT_DEFERRED,
		                   "no delivery engine", "");
		queue_job_results(job);
		return;
	}
	ptl_log(PTL_LOG_DEBUG,
	        "queue: %s: delivery to %s started (%zu "
	        "recipient%s)",
	        m->env.id, job->w->dest->key, job->w->n,
	        job->w->n == 1 ? "" : "s");
	if (relay_start(job->r->engine, &job->rj, queue_job_relay_done, job) !=
	    PTL_OK) {
		queue_job_fail_all(job, RELAY_RCPT_DEFERRED,
		                   "the delivery engine refused the job", "");
		queue_job_results(job);
	}
}

void
queue_job_start(struct queue_runner *r, struct queue_work *w)
{
	struct queue_msg *m = w->m;
	struct queue_job *job;
	size_t i;

	job = calloc(1, sizeof(*job));
	if (job != NULL)
		job->rr = calloc(w->n, sizeof(*job->rr));
	if (job == NULL || job->rr == NULL) {
		ptl_log(PTL_LOG_ERROR,
		        "queue: %s: out of memory starting a "
		        "delivery",
		        m->env.id);
		free(job);
		queue_dest_release(r, w->dest);
		queue_work_free(w);
		queue_msg_settle(r, m);
		return;
	}
	job->r = r;
	job->w = w;
	job->fd = -1;
	qrec_buf_init(&job->rec, QUEUE_STATE_MAX / 4);
	for (i = 0; i < w->n; i++) {
		job->rr[i].address = m->env.rcpts[w->idx[i]].address;
		job->rr[i].notify = m->env.rcpts[w->idx[i]].notify;
		job->rr[i].orcpt = m->env.rcpts[w->idx[i]].orcpt;
		/* What is left unset counts as a temporary failure. */
		job->rr[i].status = RELAY_RCPT_DEFERRED;
		(void)snprintf(job->rr[i].reply, sizeof(job->rr[i].reply),
		               "no result");
	}
	queue_task(r, queue_job_open_work, queue_job_open_done, job);
}

static void
queue_job_record_work(void *arg)
{
	struct queue_job *job = arg;
	struct queue_spool *sp = &job->r->spool;
	const char *id = job->w->m->env.id;

	if (job->fd >= 0) {
		(void)close(job->fd);
		job->fd = -1;
	}
	if (job->remove)
		job->rc = queue_msg_remove(sp, id, job->why, sizeof(job->why));
	else if (job->record)
		job->rc =
		    queue_state_append(sp, id, job->rec.data, job->rec.len,
		                       UINT64_MAX, job->why, sizeof(job->why));
}

static void
queue_job_record_done(void *arg)
{
	struct queue_job *job = arg;
	struct queue_runner *r = job->r;
	struct queue_work *w = job->w;
	struct queue_msg *m = w->m;

	if (job->rc != 0)
		ptl_log(PTL_LOG_ERROR,
		        "queue: %s: cannot record delivery results: %s",
		        m->env.id, job->why);
	else if (job->remove)
		ptl_log(PTL_LOG_INFO, "queue: %s: removed (done)", m->env.id);
	queue_dest_release(r, w->dest);
	queue_work_free(w);
	if (job->remove && job->rc == 0) {
		queue_job_free(job);
		if (m->busy == 0)
			queue_msg_forget(r, m);
		queue_dispatch(r);
		return;
	}
	queue_job_free(job);
	queue_msg_settle(r, m);
	queue_dispatch(r);
}

static enum queue_outcome
queue_job_outcome(enum relay_rcpt_status s)
{
	switch (s) {
	case RELAY_RCPT_DELIVERED:
		return QUEUE_OUTCOME_DELIVERED;
	case RELAY_RCPT_FAILED:
		return QUEUE_OUTCOME_FAILED;
	case RELAY_RCPT_DEFERRED:
		break;
	}
	return QUEUE_OUTCOME_DEFERRED;
}

static void
queue_job_log(struct queue_job *job, size_t i, const struct relay_rcpt *rr,
              const struct queue_rcpt_state *st, bool expired)
{
	char addr[QUEUE_ADDRESS_MAX + 1], reply[600], host[300];
	const char *relay;

	ptl_log_escape(addr, sizeof(addr), rr->address, strlen(rr->address));
	ptl_log_escape(reply, sizeof(reply), rr->reply,
	               strnlen(rr->reply, sizeof(rr->reply)));
	ptl_log_escape(host, sizeof(host), rr->remote_host,
	               strnlen(rr->remote_host, sizeof(rr->remote_host)));
	relay = job->w->local ? "local" : host[0] ? host : "none";
	ptl_log(st->status == QUEUE_RCPT_DEFERRED ? PTL_LOG_NOTICE
	                                          : PTL_LOG_INFO,
	        "queue: %s: to=<%s> relay=%s attempts=%u status=%s%s (%s)",
	        job->w->m->env.id, addr, relay, st->attempts,
	        queue_status_name(st->status),
	        expired ? " (lifetime exceeded)" : "", reply);
}

void
queue_job_results(struct queue_job *job)
{
	struct queue_runner *r = job->r;
	struct queue_work *w = job->w;
	struct queue_msg *m = w->m;
	struct queue_rcpt_state *news;
	int64_t now = queue_now_ms();
	char reason[QUEUE_ERROR_TEXT_MAX + 64];
	bool expired, done = true;
	size_t i;

	news = calloc(w->n, sizeof(*news));
	if (news == NULL) {
		/* Not recorded: the attempt is repeated after a restart. */
		ptl_log(PTL_LOG_ERROR,
		        "queue: %s: out of memory recording "
		        "results",
		        m->env.id);
		job->record = false;
	}
	for (i = 0; i < w->n; i++) {
		struct queue_run_rcpt *rc = &m->rcpts[w->idx[i]];
		struct queue_report_rule rule = queue_rule(m, w->idx[i]);
		struct relay_rcpt *rr = &job->rr[i];

		rr->reply[sizeof(rr->reply) - 1] = '\0';
		rr->remote_host[sizeof(rr->remote_host) - 1] = '\0';
		queue_sched_apply(&r->policy, &rule, m->received_ms, now,
		                  queue_job_outcome(rr->status), &rc->st,
		                  &expired);
		/* The next hop has the NOTIFY now: it reports success. */
		if (rc->st.status == QUEUE_RCPT_DELIVERED && rr->dsn_passed)
			rc->st.flags |= QUEUE_RCPT_REPORTED;
		if (queue_sched_warn_due(&r->policy, &rule, m->received_ms, now,
		                         &rc->st))
			rc->warn_due = true;
		queue_job_log(job, i, rr, &rc->st, expired);
		if (news == NULL)
			continue;
		news[i] = rc->st;
		if (expired) {
			(void)snprintf(reason, sizeof(reason),
			               "delivery time expired; last error: %s",
			               rr->reply);
			news[i].error = strndup(reason, QUEUE_ERROR_TEXT_MAX);
		} else {
			news[i].error =
			    strndup(rr->reply, QUEUE_ERROR_TEXT_MAX);
		}
		news[i].host =
		    rr->remote_host[0] ? strndup(rr->remote_host, 255) : NULL;
	}
	for (i = 0; i < m->env.nrcpts; i++) {
		bool mine = false;
		size_t j;

		for (j = 0; j < w->n && !mine; j++)
			mine = w->idx[j] == i;
		if (!queue_sched_done(&m->rcpts[i].st) ||
		    (!mine && m->rcpts[i].inflight) || m->rcpts[i].warn_due)
			done = false;
	}
	if (m->deleted) {
		job->record = false;
	} else if (done && m->busy == 1) {
		/* The removal itself is the durable record. */
		job->remove = true;
	} else if (news != NULL) {
		queue_state_encode(&job->rec, now, w->idx, news, w->n);
		job->record = !job->rec.failed;
	}
	if (news != NULL) {
		queue_state_free_texts(news, w->n);
		free(news);
	}
	queue_task(r, queue_job_record_work, queue_job_record_done, job);
}
