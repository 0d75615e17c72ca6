/* SPDX-License-Identifier: MIT */
/* filter_regex: PCRE2 rules on the envelope, header and body (filter.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <petrel/resolver.h>

#include "regex.h"

/*
 * Envelope rules (client IP, HELO, sender, recipient) match on the loop:
 * their subjects are short (at most a few hundred bytes), and the match
 * limits bound each match. client_hostname needs the PTR name: looked up
 * through the resolver service when one is loaded, else those rules are
 * skipped. Rules on the message are first tried on the loop when the
 * message is small and in the page cache, under a tight time and match
 * budget (regex_scan_inline); otherwise, or when that budget runs out,
 * they run on the thread pool, reading a dup() of the spool file in
 * bounded chunks.
 */

enum regex_job_kind {
	REGEX_JOB_SCAN = 0,
	REGEX_JOB_PTR,
};

/* A check waiting for the thread pool or the resolver. */
struct regex_job {
	struct regex_job *next;
	struct regex_state *st;
	enum regex_job_kind kind;
	void *arg; /* the session */
	ptl_filter_done_fn done;
	bool cancelled; /* SCAN: the task still owns the job */
	char session_id[64];
	char message_id[64];
	struct regex_scan scan;
	struct regex_eval ev; /* PTR */
	struct ptl_dns_query *query;
};

struct regex_state {
	const struct regex_conf *conf;
	struct ptl_filter_methods methods;
	pcre2_match_data *md; /* loop thread */
	struct regex_verdict sync_verdict;
	struct regex_job *jobs;
	const struct ptl_resolver_methods *resolver;
	void *resolver_inst;
	bool resolver_looked;
};

static void
job_unlink(struct regex_state *st, struct regex_job *job)
{
	struct regex_job **pp;

	for (pp = &st->jobs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == job) {
			*pp = job->next;
			return;
		}
	}
}

static void
job_free(struct regex_job *job)
{
	if (job->kind == REGEX_JOB_SCAN)
		regex_scan_free(&job->scan);
	regex_eval_free(&job->ev);
	free(job);
}

static struct regex_job *
job_new(struct regex_state *st, enum regex_job_kind kind,
        const struct ptl_filter_request *req, ptl_filter_done_fn done,
        void *arg)
{
	struct regex_job *job = calloc(1, sizeof(*job));

	if (job == NULL)
		return NULL;
	job->st = st;
	job->kind = kind;
	job->done = done;
	job->arg = arg;
	job->scan.fd = -1;
	(void)snprintf(job->session_id, sizeof(job->session_id), "%s",
	               req->session_id != NULL ? req->session_id : "-");
	if (req->message_id != NULL)
		(void)snprintf(job->message_id, sizeof(job->message_id), "%s",
		               req->message_id);
	return job;
}

/* Build the verdict of @ev and hand it over. */
static void
job_answer(struct regex_job *job, const struct regex_eval *ev)
{
	struct regex_verdict v;

	regex_log_limits(ev, job->session_id,
	                 job->message_id[0] != '\0' ? job->message_id : NULL);
	if (regex_verdict_build(ev, &v) != PTL_OK) {
		job->done(NULL, job->arg);
		return;
	}
	job->done(&v.v, job->arg);
	regex_verdict_free(&v);
}

/* ---- DATA: the message scan ---------------------------------------------- */

static void
scan_work(void *arg)
{
	struct regex_job *job = arg;

	regex_scan_run(&job->scan);
}

static void
scan_done(void *arg)
{
	struct regex_job *job = arg;
	struct regex_scan *sc = &job->scan;

	if (job->cancelled) {
		job_free(job);
		return;
	}
	job_unlink(job->st, job);
	if (sc->timed_out)
		ptl_log(PTL_LOG_WARN,
		        "filter_regex: session %s message %s: scan stopped "
		        "after scan_time_limit (%lld ms); rules not decided "
		        "yet were skipped",
		        job->session_id, job->message_id,
		        (long long)job->st->conf->scan_time_limit);
	if (sc->read_error) {
		ptl_log(PTL_LOG_ERROR,
		        "filter_regex: session %s message %s: cannot read the "
		        "message",
		        job->session_id, job->message_id);
		job->done(NULL, job->arg);
	} else {
		job_answer(job, &sc->ev);
	}
	job_free(job);
}

/* The verdict of a scan done on the loop, kept until the next
 * synchronous check. */
static int
regex_data_inline(struct regex_state *st, const struct ptl_filter_request *req,
                  struct ptl_filter_verdict *verdict_out)
{
	struct regex_scan sc;
	bool decided;
	int rc = PTL_ERROR;

	if (regex_scan_init(&sc, st->conf, req->message_fd,
	                    req->message_body_offset,
	                    req->message_size) != PTL_OK)
		return PTL_DECLINED;
	decided = regex_scan_inline(&sc);
	if (decided) {
		regex_log_limits(&sc.ev, req->session_id, req->message_id);
		regex_verdict_free(&st->sync_verdict);
		rc = regex_verdict_build(&sc.ev, &st->sync_verdict);
		if (rc == PTL_OK)
			*verdict_out = st->sync_verdict.v;
	}
	regex_scan_free(&sc);
	return decided ? rc : PTL_DECLINED;
}

static int
regex_check_data(struct regex_state *st, const struct ptl_filter_request *req,
                 struct ptl_filter_verdict *verdict_out,
                 ptl_filter_done_fn done, void *arg)
{
	struct regex_job *job;
	int fd, rc;

	if (req->message_fd < 0)
		return PTL_ERROR;
	rc = regex_data_inline(st, req, verdict_out);
	if (rc != PTL_DECLINED)
		return rc;
	job = job_new(st, REGEX_JOB_SCAN, req, done, arg);
	if (job == NULL)
		return PTL_ERROR;
	/* The session may end before the scan does: our own descriptor. */
	fd = fcntl(req->message_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0 ||
	    regex_scan_init(&job->scan, st->conf, fd, req->message_body_offset,
	                    req->message_size) != PTL_OK) {
		if (fd >= 0)
			close(fd);
		free(job);
		return PTL_ERROR;
	}
	if (ptl_task_submit(scan_work, scan_done, job) != PTL_OK) {
		job_free(job);
		return PTL_ERROR;
	}
	job->next = st->jobs;
	st->jobs = job;
	return PTL_AGAIN;
}

/* ---- CONNECT: the PTR name for client_hostname --------------------------- */

static void
ptr_done(const struct ptl_dns_result *res, void *arg)
{
	struct regex_job *job = arg;
	const struct regex_conf *conf = job->st->conf;
	const struct regex_rule *rules = conf->rules.items;
	size_t i, j;

	job_unlink(job->st, job);
	job->query = NULL;
	for (i = 0; res->status == PTL_DNS_OK && i < conf->rules.count; i++) {
		if (rules[i].kind != REGEX_CLIENT_HOSTNAME)
			continue;
		for (j = 0; j < res->count; j++)
			regex_eval_subject(&job->ev, i, job->st->md,
			                   res->ptr[j], strlen(res->ptr[j]));
	}
	job_answer(job, &job->ev);
	job_free(job);
}

static const struct ptl_resolver_methods *
regex_resolver(struct regex_state *st)
{
	const struct ptl_service *svc;

	if (!st->resolver_looked) {
		st->resolver_looked = true;
		svc = ptl_service_find(PTL_RESOLVER_SERVICE,
		                       PTL_RESOLVER_VERSION);
		if (svc != NULL) {
			st->resolver = svc->methods;
			st->resolver_inst = svc->instance;
		}
	}
	return st->resolver;
}

/* @return PTL_AGAIN with the lookup started (the job owns @ev), or
 * PTL_DECLINED: no resolver, the rules are skipped. */
static int
regex_check_ptr(struct regex_state *st, const struct ptl_filter_request *req,
                struct regex_eval *ev, ptl_filter_done_fn done, void *arg)
{
	const struct ptl_resolver_methods *rm = regex_resolver(st);
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct regex_job *job;

	if (rm == NULL || req->peer_ip == NULL)
		return PTL_DECLINED;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, req->peer_ip, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, req->peer_ip, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		return PTL_DECLINED;
	job = job_new(st, REGEX_JOB_PTR, req, done, arg);
	if (job == NULL)
		return PTL_DECLINED;
	job->ev = *ev;
	if (rm->lookup_ptr(st->resolver_inst, (struct sockaddr *)&ss, ptr_done,
	                   job, &job->query) != PTL_AGAIN) {
		job->ev.matched = NULL;
		free(job);
		return PTL_DECLINED;
	}
	job->next = st->jobs;
	st->jobs = job;
	return PTL_AGAIN;
}

/* ---- The filter methods -------------------------------------------------- */

static int
regex_check(void *instance, const struct ptl_filter_request *req,
            struct ptl_filter_verdict *verdict_out, ptl_filter_done_fn done,
            void *arg)
{
	struct regex_state *st = instance;
	struct regex_eval ev;
	int rc;

	if (req->hook == PTL_FILTER_DATA)
		return regex_check_data(st, req, verdict_out, done, arg);
	if (regex_eval_init(&ev, st->conf, req->hook) != PTL_OK)
		return PTL_ERROR;
	(void)regex_envelope(st->conf, req, st->md, &ev);
	if (req->hook == PTL_FILTER_CONNECT && st->conf->want_hostname) {
		rc = regex_check_ptr(st, req, &ev, done, arg);
		if (rc == PTL_AGAIN)
			return PTL_AGAIN;
	}
	regex_log_limits(&ev, req->session_id, req->message_id);
	/* The session copies the verdict as soon as check() returns; it
	 * stays here until the next synchronous check. */
	regex_verdict_free(&st->sync_verdict);
	rc = regex_verdict_build(&ev, &st->sync_verdict);
	regex_eval_free(&ev);
	if (rc != PTL_OK)
		return PTL_ERROR;
	*verdict_out = st->sync_verdict.v;
	return PTL_OK;
}

static void
regex_cancel(void *instance, void *arg)
{
	struct regex_state *st = instance;
	struct regex_job *job, *next;

	for (job = st->jobs; job != NULL; job = next) {
		next = job->next;
		if (job->arg != arg)
			continue;
		job_unlink(st, job);
		if (job->kind == REGEX_JOB_SCAN) {
			/* The task is running: its completion frees it. */
			job->cancelled = true;
			continue;
		}
		if (job->query != NULL)
			st->resolver->cancel(st->resolver_inst, job->query);
		job_free(job);
	}
}

/* ---- Lifecycle ----------------------------------------------------------- */

static int
regex_init_master(struct ptl_instance *inst, struct ptl_error *err)
{
	const struct regex_conf *conf = ptl_instance_conf(inst);
	struct regex_state *st;

	st = ptl_pcalloc(ptl_instance_pool(inst), sizeof(*st));
	if (st == NULL)
		return ptl_error_set(err, "out of memory");
	st->conf = conf;
	st->methods.version = PTL_FILTER_VERSION;
	st->methods.hooks = conf->hooks;
	st->methods.flags = conf->fail_open ? PTL_FILTER_FAIL_OPEN : 0;
	st->methods.timeout_ms = conf->timeout;
	st->methods.check = regex_check;
	st->methods.cancel = regex_cancel;
	ptl_instance_set_data(inst, st);
	ptl_log(PTL_LOG_INFO,
	        "filter_regex: %zu rules, %u compiled to machine code (JIT)",
	        conf->rules.count, conf->njit);
	return ptl_service_register(inst,
	                            PTL_FILTER_SERVICE_PREFIX "filter_regex",
	                            PTL_FILTER_VERSION, &st->methods, st, err);
}

static int
regex_init_worker(struct ptl_instance *inst, struct ptl_error *err)
{
	struct regex_state *st = ptl_instance_data(inst);

	if (st == NULL)
		return ptl_error_set(err, "filter_regex: no state");
	st->md = pcre2_match_data_create(1, NULL);
	if (st->md == NULL)
		return ptl_error_set(err, "out of memory");
	return PTL_OK;
}

static void
regex_exit_worker(struct ptl_instance *inst)
{
	struct regex_state *st = ptl_instance_data(inst);
	struct regex_job *job;

	if (st == NULL)
		return;
	while ((job = st->jobs) != NULL) {
		st->jobs = job->next;
		if (job->kind == REGEX_JOB_SCAN) {
			job->cancelled = true;
			continue;
		}
		if (job->query != NULL)
			st->resolver->cancel(st->resolver_inst, job->query);
		job_free(job);
	}
	regex_verdict_free(&st->sync_verdict);
	pcre2_match_data_free(st->md);
	st->md = NULL;
}

static const struct ptl_service_ref regex_provides[] = {
    {PTL_FILTER_SERVICE_PREFIX "filter_regex", PTL_FILTER_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "filter_regex",
    .version = "1.0",
    .description = "PCRE2 rules on the envelope, header fields and body",
    .license = "MIT",
    .provides = regex_provides,
    .conf_keys = regex_conf_keys,
    .conf_size = sizeof(struct regex_conf),
    .check_config = regex_check_config,
    .init_master = regex_init_master,
    .init_worker = regex_init_worker,
    .exit_worker = regex_exit_worker,
};
