/* SPDX-License-Identifier: MIT */
/* The local route: recipients of local domains go to the storage service. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

/*
 * Each recipient is resolved by the auth service (aliases may give
 * several users; without an auth service the address is the user) and
 * stored once per user. The recipient is delivered when every copy is
 * stored; a temporary failure of any copy defers it (the copies already
 * stored are stored again at the retry, as when an SMTP client retries:
 * losing mail would be worse).
 */

struct local_rcpt {
	struct queue_job *job;
	size_t i;
	unsigned pending;
	unsigned temp, perm;
	char reason[200];
};

static void
local_finish(void *arg)
{
	queue_job_results(arg);
}

static void
local_put(struct queue_job *job)
{
	if (--job->local_pending > 0)
		return;
	/* Never complete from inside queue_local_start(). */
	if (ptl_defer(local_finish, job) != PTL_OK)
		queue_job_results(job);
}

static void
local_rcpt_end(struct local_rcpt *lr)
{
	struct relay_rcpt *rr = &lr->job->rr[lr->i];

	if (--lr->pending > 0)
		return;
	if (lr->temp > 0) {
		rr->status = RELAY_RCPT_DEFERRED;
		(void)snprintf(rr->reply, sizeof(rr->reply),
		               "451 4.3.0 local delivery failed: %s",
		               lr->reason);
	} else if (lr->perm > 0) {
		rr->status = RELAY_RCPT_FAILED;
		(void)snprintf(rr->reply, sizeof(rr->reply), "550 %s",
		               lr->reason);
	} else {
		rr->status = RELAY_RCPT_DELIVERED;
		(void)snprintf(rr->reply, sizeof(rr->reply),
		               "250 2.0.0 delivered to the mailbox");
	}
	local_put(lr->job);
}

static void
local_reason(struct local_rcpt *lr, const char *text)
{
	if (lr->reason[0] == '\0')
		ptl_log_escape(lr->reason, sizeof(lr->reason), text,
		               strlen(text));
}

static void
local_store_done(const struct ptl_storage_result *res, void *arg)
{
	struct local_rcpt *lr = arg;
	const char *why = res != NULL && res->reason ? res->reason : "failed";

	if (res == NULL || res->status != PTL_STORAGE_OK) {
		if (res != NULL && res->status == PTL_STORAGE_PERMFAIL) {
			lr->perm++;
			local_reason(lr, why);
			/* "5.2.2 mailbox full" and the like. */
		} else {
			lr->temp++;
			local_reason(lr, why);
		}
	}
	local_rcpt_end(lr);
}

/* Header fields before the message (RFC 5321 4.4, RFC 9228). */
static char *
local_prefix(struct queue_job *job, const char *user, size_t *len_out)
{
	char from[QUEUE_ADDRESS_MAX + 1], to[QUEUE_ADDRESS_MAX + 1];
	char *p;

	queue_dsn_clean(from, sizeof(from), job->w->m->env.from, true);
	queue_dsn_clean(to, sizeof(to), user, true);
	p = ptl_psprintf(job->pool, "Return-Path: <%s>\r\nDelivered-To: %s\r\n",
	                 from, to);
	if (p != NULL)
		*len_out = strlen(p);
	return p;
}

static void
local_store(struct local_rcpt *lr, const char *user)
{
	struct queue_job *job = lr->job;
	const struct ptl_storage_methods *sm;
	struct ptl_storage_delivery d;
	size_t plen = 0;
	char *prefix;

	sm = job->r->storage->methods;
	prefix = local_prefix(job, user, &plen);
	if (prefix == NULL) {
		lr->temp++;
		local_reason(lr, "out of memory");
		return;
	}
	memset(&d, 0, sizeof(d));
	d.user = user;
	d.fd = job->fd;
	d.size = job->w->m->env.body_size;
	d.prefix = prefix;
	d.prefix_len = plen;
	d.envelope_from = job->w->m->env.from;
	d.received_at = job->w->m->env.received;
	lr->pending++;
	if (sm->deliver(job->r->storage->instance, &d, local_store_done, lr) !=
	    PTL_AGAIN) {
		lr->pending--;
		lr->temp++;
		local_reason(lr, "the storage service refused the delivery");
	}
}

static void
local_users(struct local_rcpt *lr, const struct ptl_auth_lookup *res)
{
	size_t i;

	if (res->status == PTL_AUTH_NOTFOUND) {
		lr->perm++;
		local_reason(lr, "5.1.1 no such user here");
	} else if (res->status != PTL_AUTH_OK || res->nusers == 0) {
		lr->temp++;
		local_reason(lr, "user lookup failed");
	} else {
		for (i = 0; i < res->nusers; i++)
			local_store(lr, res->users[i]);
	}
}

static void
local_lookup_done(const struct ptl_auth_lookup *res, void *arg)
{
	struct local_rcpt *lr = arg;

	local_users(lr, res);
	local_rcpt_end(lr);
}

void
queue_local_start(struct queue_job *job)
{
	struct queue_runner *r = job->r;
	const struct ptl_auth_methods *am;
	struct ptl_auth_lookup res;
	struct local_rcpt *lrs;
	size_t i;
	int rc;

	job->pool = ptl_pool_create(0);
	lrs =
	    job->pool ? ptl_pcalloc(job->pool, job->w->n * sizeof(*lrs)) : NULL;
	if (lrs == NULL || r->storage == NULL) {
		for (i = 0; i < job->w->n; i++) {
			job->rr[i].status = RELAY_RCPT_DEFERRED;
			(void)snprintf(job->rr[i].reply,
			               sizeof(job->rr[i].reply), "%s",
			               lrs == NULL ? "out of memory"
			                           : "no storage service");
		}
		job->local_pending = 1;
		local_put(job);
		return;
	}
	/* One reference for this loop: nothing completes before it ends. */
	job->local_pending = 1;
	for (i = 0; i < job->w->n; i++) {
		struct local_rcpt *lr = &lrs[i];
		const char *addr = job->rr[i].address;

		lr->job = job;
		lr->i = i;
		lr->pending = 1;
		job->local_pending++;
		if (r->auth == NULL) {
			struct ptl_auth_lookup one;

			one.status = PTL_AUTH_OK;
			one.users = &addr;
			one.nusers = 1;
			local_users(lr, &one);
			local_rcpt_end(lr);
			continue;
		}
		am = r->auth->methods;
		memset(&res, 0, sizeof(res));
		rc = am->lookup(r->auth->instance, addr, job->pool, &res,
		                local_lookup_done, lr);
		if (rc == PTL_AGAIN)
			continue;
		if (rc == PTL_OK) {
			local_users(lr, &res);
		} else {
			lr->temp++;
			local_reason(lr, "user lookup refused");
		}
		local_rcpt_end(lr);
	}
	local_put(job);
}
