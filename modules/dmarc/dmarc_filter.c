/* SPDX-License-Identifier: MIT */
/* The dmarc filter: policy discovery and evaluation at end of data. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dmarc_module.h"

/*
 * At end of data (RFC 7489 section 6.6): the From domain is read from
 * the message on the thread pool (a dup() of the spool descriptor: the
 * session may end meanwhile), then the policy is looked up through the
 * resolver at _dmarc.<From domain>, and when there is none, at
 * _dmarc.<Organizational Domain> (section 6.6.3). SPF and DKIM come
 * from the results earlier filters put in the trace, so "spf" and
 * "dkim" must be listed before "dmarc" in the smtp module's filters.
 *
 * A job is owned by the state's list. While the read task runs it
 * cannot be freed (the task writes into it): a session that goes away
 * then only marks it, and the task's completion frees it.
 */

#define DMARC_TEXT_MAX 512

enum dmarc_phase {
	DMARC_READING,
	DMARC_ASKING,
	DMARC_FINISHED,
};

struct dmarc_job {
	struct dmarc_job *next;
	struct dmarc_state *st;
	const void *key; /* the smtp session (the check's arg) */
	enum dmarc_phase phase;
	bool cancelled;
	ptl_filter_done_fn done;
	void *done_arg;

	/* Inputs, copied from the request. */
	char id[48];
	char message_id[48];
	char ip[64];
	char envelope_from[320];
	struct dmarc_auth auth;

	/* The read task's work and results. */
	int fd;
	uint64_t offset, size, max_header;
	int from_rc;
	const char *from_why;
	int read_errno;
	char from[DMARC_NAME_MAX + 1];

	/* Policy discovery. */
	char org[DMARC_NAME_MAX + 1];
	struct ptl_dns_query *q;
	bool at_org;
	struct dmarc_record rec;
	struct dmarc_outcome out;
	const char *problem;

	/* The verdict handed out (valid during done()). */
	char result[257 + DMARC_NAME_MAX + 80];
	char text[DMARC_TEXT_MAX];
};

/* Report lines on their way to the file. */
struct dmarc_append {
	const char *dir; /* the state's: lives as long as the generation */
	char name[32];
	char *line;
	int err;
};

static uint64_t
dmarc_random(struct dmarc_state *st)
{
	/* xorshift64*: pct sampling needs spread, not secrecy. */
	st->rng ^= st->rng >> 12;
	st->rng ^= st->rng << 25;
	st->rng ^= st->rng >> 27;
	return st->rng * 2685821657736338717ull;
}

/* ---- jobs ------------------------------------------------------------- */

static void
dmarc_job_unlink(struct dmarc_job *j)
{
	struct dmarc_job **pp;

	for (pp = &j->st->jobs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			return;
		}
	}
}

static void
dmarc_job_free(struct dmarc_job *j)
{
	dmarc_job_unlink(j);
	if (j->fd >= 0)
		(void)close(j->fd);
	free(j);
}

static struct dmarc_job *
dmarc_job_find(struct dmarc_state *st, const void *key)
{
	struct dmarc_job *j;

	for (j = st->jobs; j != NULL; j = j->next) {
		if (j->key == key && !j->cancelled)
			return j;
	}
	return NULL;
}

/* The session no longer wants the verdict. */
static void
dmarc_job_drop(struct dmarc_job *j)
{
	const struct ptl_resolver_methods *m;

	if (j->phase == DMARC_READING) {
		j->cancelled = true; /* freed when the task completes */
		return;
	}
	if (j->q != NULL) {
		m = j->st->resolver->methods;
		m->cancel(j->st->resolver->instance, j->q);
		j->q = NULL;
	}
	dmarc_job_free(j);
}

/* ---- reports ---------------------------------------------------------- */

static void
dmarc_append_work(void *arg)
{
	struct dmarc_append *a = arg;

	a->err = dmarc_report_append(a->dir, a->name, a->line);
}

static void
dmarc_append_done(void *arg)
{
	struct dmarc_append *a = arg;

	if (a->err != 0)
		ptl_log(PTL_LOG_WARN, "dmarc: cannot write %s/%s: %s", a->dir,
		        a->name, strerror(a->err));
	free(a->line);
	free(a);
}

static void
dmarc_report(struct dmarc_job *j)
{
	struct dmarc_report_in in = {
	    .time = ptl_wall_time(),
	    .source_ip = j->ip,
	    .header_from = j->from,
	    .envelope_from = j->envelope_from,
	    .policy_domain = j->at_org ? j->org : j->from,
	    .message_id = j->message_id,
	    .rec = &j->rec,
	    .auth = &j->auth,
	    .out = &j->out,
	};
	struct dmarc_append *a;

	if (!j->st->conf->report || j->st->report_dir == NULL)
		return;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		goto oom;
	a->dir = j->st->report_dir;
	dmarc_report_file_name(in.time, a->name, sizeof(a->name));
	a->line = dmarc_report_line(&in);
	if (a->line == NULL)
		goto oom;
	if (ptl_task_submit(dmarc_append_work, dmarc_append_done, a) == PTL_OK)
		return;
oom:
	ptl_log(PTL_LOG_WARN,
	        "[c %s] dmarc: message %s: report line lost: "
	        "out of memory",
	        j->id, j->message_id);
	if (a != NULL)
		free(a->line);
	free(a);
}

/* ---- verdicts --------------------------------------------------------- */

static enum dmarc_case
dmarc_case_of(const struct dmarc_job *j)
{
	switch (j->out.result) {
	case DMARC_RES_FAIL:
		return (enum dmarc_case)j->out.disposition;
	case DMARC_RES_TEMPERROR:
		return DMARC_CASE_TEMPERROR;
	case DMARC_RES_PERMERROR:
		return DMARC_CASE_PERMERROR;
	default:
		return DMARC_CASE_NONE;
	}
}

/*
 * "dmarc=fail (p=reject dis=reject) header.from=example.org": the trace
 * keeps 256 bytes, so the comment, then the domain, is left out rather
 * than cut when a very long domain would not fit.
 */
static void
dmarc_result_text(struct dmarc_job *j)
{
	const struct dmarc_outcome *o = &j->out;
	char comment[80] = "";
	size_t limit = 256; /* filter.h: the result is cut there */
	int n;

	if (o->result == DMARC_RES_PASS || o->result == DMARC_RES_FAIL)
		(void)snprintf(
		    comment, sizeof(comment), " (p=%s%s%s dis=%s)",
		    dmarc_policy_name(j->rec.p),
		    o->subdomain_policy ? " sp=" : "",
		    o->subdomain_policy ? dmarc_policy_name(j->rec.sp) : "",
		    dmarc_policy_name(o->disposition));
	n = snprintf(j->result, sizeof(j->result), "dmarc=%s%s%s%s",
	             dmarc_result_name(o->result), comment,
	             j->from[0] != '\0' ? " header.from=" : "", j->from);
	if (n >= 0 && (size_t)n <= limit)
		return;
	n = snprintf(j->result, sizeof(j->result), "dmarc=%s header.from=%s",
	             dmarc_result_name(o->result), j->from);
	if (n >= 0 && (size_t)n <= limit)
		return;
	(void)snprintf(j->result, sizeof(j->result), "dmarc=%s",
	               dmarc_result_name(o->result));
}

static void
dmarc_log(const struct dmarc_job *j, enum dmarc_action action)
{
	static const char *const action_names[] = {
	    "", " -> reject", " -> tempfail", " -> quarantine"};
	const struct dmarc_outcome *o = &j->out;

	if (o->result == DMARC_RES_PASS || o->result == DMARC_RES_FAIL) {
		ptl_log(PTL_LOG_INFO,
		        "[c %s] dmarc: message %s: %s header.from=%s policy=%s "
		        "(%s) dis=%s%s spf=%s%s dkim=%s%s",
		        j->id, j->message_id, dmarc_result_name(o->result),
		        j->from, dmarc_policy_name(o->policy),
		        j->at_org ? j->org : j->from,
		        dmarc_policy_name(o->disposition),
		        o->sampled_out ? " (pct)" : "",
		        j->auth.spf[0] ? j->auth.spf : "none",
		        o->spf_aligned ? "/aligned" : "",
		        o->dkim_aligned ? "pass"
		        : j->auth.ndkim ? "no-aligned-pass"
		                        : "none",
		        (unsigned)action < 4 ? action_names[action] : "");
		return;
	}
	ptl_log(o->result == DMARC_RES_NONE ? PTL_LOG_DEBUG : PTL_LOG_INFO,
	        "[c %s] dmarc: message %s: %s%s%s%s%s%s", j->id, j->message_id,
	        dmarc_result_name(o->result), j->from[0] ? " header.from=" : "",
	        j->from, j->problem != NULL ? ": " : "",
	        j->problem != NULL ? j->problem : "",
	        (unsigned)action < 4 ? action_names[action] : "");
}

static void
dmarc_verdict(struct dmarc_job *j, struct ptl_filter_verdict *v)
{
	const struct dmarc_conf *conf = j->st->conf;
	enum dmarc_action action =
	    (enum dmarc_action)conf->actions[dmarc_case_of(j)];
	const char *d = j->from[0] != '\0' ? j->from : "the sender";

	memset(v, 0, sizeof(*v));
	dmarc_result_text(j);
	dmarc_log(j, action);
	v->result = j->result;
	if (j->out.result == DMARC_RES_TEMPERROR)
		(void)snprintf(j->text, sizeof(j->text),
		               "DMARC: temporary error looking up the policy "
		               "of %s",
		               d);
	else if (j->out.result == DMARC_RES_PERMERROR)
		(void)snprintf(j->text, sizeof(j->text), "DMARC: %s",
		               j->problem != NULL ? j->problem : "error");
	else
		(void)snprintf(j->text, sizeof(j->text),
		               "Unauthenticated mail from %s is refused by "
		               "its DMARC policy",
		               d);
	switch (action) {
	case DMARC_ACT_REJECT:
		v->action = PTL_FILTER_REJECT;
		v->code = 550;
		v->enhanced = "5.7.1";
		v->text = j->text;
		break;
	case DMARC_ACT_TEMPFAIL:
		v->action = PTL_FILTER_TEMPFAIL;
		v->code = 451;
		v->enhanced = "4.7.1";
		v->text = j->text;
		break;
	case DMARC_ACT_QUARANTINE:
		v->action = PTL_FILTER_QUARANTINE;
		v->folder = conf->folder;
		break;
	default:
		v->action = PTL_FILTER_CONTINUE;
		break;
	}
}

/* Decide, report, answer; the job is freed. */
static void
dmarc_finish(struct dmarc_job *j)
{
	struct ptl_filter_verdict v;
	ptl_filter_done_fn done = j->done;
	void *done_arg = j->done_arg;

	j->phase = DMARC_FINISHED;
	if (j->out.result == DMARC_RES_PASS || j->out.result == DMARC_RES_FAIL)
		dmarc_report(j);
	dmarc_verdict(j, &v);
	/* The verdict's strings live in j: free it after done(). The
	 * session may end inside done(), which finds no job any more. */
	dmarc_job_unlink(j);
	done(&v, done_arg);
	j->next = NULL;
	if (j->fd >= 0)
		(void)close(j->fd);
	free(j);
}

static void
dmarc_fail(struct dmarc_job *j, enum dmarc_result r, const char *problem)
{
	j->out.result = r;
	j->problem = problem;
	dmarc_finish(j);
}

/* ---- policy discovery (section 6.6.3) --------------------------------- */

static void dmarc_on_dns(const struct ptl_dns_result *res, void *arg);

static void
dmarc_ask(struct dmarc_job *j, const char *domain)
{
	const struct ptl_resolver_methods *m = j->st->resolver->methods;
	char name[DMARC_NAME_MAX + 16];

	if ((size_t)snprintf(name, sizeof(name), "_dmarc.%s", domain) >
	    DMARC_NAME_MAX) {
		dmarc_fail(j, DMARC_RES_NONE, "domain name too long");
		return;
	}
	j->phase = DMARC_ASKING;
	if (m->lookup(j->st->resolver->instance, name, PTL_DNS_TXT,
	              dmarc_on_dns, j, &j->q) != PTL_AGAIN) {
		j->q = NULL;
		dmarc_fail(j, DMARC_RES_TEMPERROR, "resolver unavailable");
	}
}

static void
dmarc_on_dns(const struct ptl_dns_result *res, void *arg)
{
	struct dmarc_job *j = arg;
	const struct ptl_dns_txt *found = NULL;
	size_t i, n = 0;
	const char *why;

	j->q = NULL;
	switch (res->status) {
	case PTL_DNS_OK:
		for (i = 0; i < res->count; i++) {
			if (dmarc_record_is_dmarc(res->txt[i].data,
			                          res->txt[i].len)) {
				found = &res->txt[i];
				n++;
			}
		}
		break;
	case PTL_DNS_NXDOMAIN:
	case PTL_DNS_NODATA:
		break;
	case PTL_DNS_PERMFAIL:
		if (res->reason != NULL &&
		    strncmp(res->reason, "invalid name", 12) == 0)
			break;
		/* fall through */
	default:
		dmarc_fail(j, DMARC_RES_TEMPERROR, "DNS error");
		return;
	}
	if (n > 1) {
		dmarc_fail(j, DMARC_RES_NONE, "several DMARC records");
		return;
	}
	if (n == 0) {
		/* Then the Organizational Domain, once. */
		if (!j->at_org && strcmp(j->org, j->from) != 0) {
			j->at_org = true;
			dmarc_ask(j, j->org);
			return;
		}
		dmarc_fail(j, DMARC_RES_NONE, NULL);
		return;
	}
	if (dmarc_record_parse(found->data, found->len, &j->rec, &why) != 0) {
		dmarc_fail(j, DMARC_RES_NONE, why);
		return;
	}
	dmarc_evaluate(j->st->psl, j->from, j->at_org, &j->rec, &j->auth,
	               (unsigned)(dmarc_random(j->st) % 100), &j->out);
	dmarc_finish(j);
}

/* ---- reading the From field ------------------------------------------- */

static void
dmarc_read_work(void *arg)
{
	struct dmarc_job *j = arg;
	size_t want, got = 0;
	char *buf;
	ssize_t n;

	j->from_rc = -1;
	want = j->size - j->offset < j->max_header
	           ? (size_t)(j->size - j->offset)
	           : (size_t)j->max_header;
	buf = malloc(want + 1);
	if (buf == NULL) {
		j->read_errno = ENOMEM;
		goto out;
	}
	while (got < want) {
		n = pread(j->fd, buf + got, want - got,
		          (off_t)(j->offset + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			j->read_errno = errno;
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	j->from_rc = dmarc_from_domain(buf, got, got < want, j->from,
	                               sizeof(j->from), &j->from_why);
out:
	free(buf);
	(void)close(j->fd);
	j->fd = -1;
}

static void
dmarc_read_done(void *arg)
{
	struct dmarc_job *j = arg;

	if (j->cancelled) {
		dmarc_job_free(j);
		return;
	}
	if (j->read_errno != 0) {
		ptl_log(PTL_LOG_WARN,
		        "[c %s] dmarc: message %s: cannot read "
		        "the message: %s",
		        j->id, j->message_id, strerror(j->read_errno));
		dmarc_fail(j, DMARC_RES_TEMPERROR, "cannot read the message");
		return;
	}
	if (j->from_rc != 0) {
		j->from[0] = '\0';
		dmarc_fail(j, DMARC_RES_PERMERROR, j->from_why);
		return;
	}
	if (dmarc_org_domain(j->st->psl, j->from, j->org, sizeof(j->org)) != 0)
		memcpy(j->org, j->from, sizeof(j->org));
	dmarc_ask(j, j->from);
}

/* ---- the filter ------------------------------------------------------- */

int
dmarc_filter_check(void *instance, const struct ptl_filter_request *req,
                   struct ptl_filter_verdict *verdict_out,
                   ptl_filter_done_fn done, void *arg)
{
	struct dmarc_state *st = instance;
	const struct dmarc_conf *conf = st->conf;
	struct dmarc_job *j;
	size_t i;

	memset(verdict_out, 0, sizeof(*verdict_out));
	verdict_out->action = PTL_FILTER_CONTINUE;
	if (req->hook != PTL_FILTER_DATA || req->message_fd < 0)
		return PTL_OK;
	if (!ptl_filter_role_listed(&conf->roles, req->role) ||
	    (req->auth_user != NULL && !conf->check_authenticated) ||
	    (req->trusted && !conf->check_trusted))
		return PTL_OK;
	if (st->resolver == NULL)
		return PTL_ERROR;
	j = dmarc_job_find(st, arg);
	if (j != NULL)
		dmarc_job_drop(j);
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return PTL_ERROR;
	j->st = st;
	j->key = arg;
	j->done = done;
	j->done_arg = arg;
	(void)snprintf(j->id, sizeof(j->id), "%s",
	               req->session_id != NULL ? req->session_id : "-");
	(void)snprintf(j->message_id, sizeof(j->message_id), "%s",
	               req->message_id != NULL ? req->message_id : "-");
	(void)snprintf(j->ip, sizeof(j->ip), "%s",
	               req->peer_ip != NULL ? req->peer_ip : "");
	(void)snprintf(j->envelope_from, sizeof(j->envelope_from), "%s",
	               req->mail_from != NULL ? req->mail_from : "");
	/* The trace is only valid now: take SPF and DKIM from it. */
	if (req->struct_size >=
	    offsetof(struct ptl_filter_request, ntrace) + sizeof(req->ntrace)) {
		for (i = 0; i < req->ntrace; i++) {
			const struct ptl_filter_trace *e = req->trace[i];

			if (e->result != NULL && e->result[0] != '\0')
				dmarc_auth_add(&j->auth, e->result,
				               e->hook == PTL_FILTER_MAIL);
		}
	}
	j->offset = req->message_body_offset;
	j->size = req->message_size;
	j->max_header = conf->max_header;
	if (j->offset > j->size)
		j->offset = j->size;
	j->fd = fcntl(req->message_fd, F_DUPFD_CLOEXEC, 0);
	if (j->fd < 0) {
		free(j);
		return PTL_ERROR;
	}
	j->phase = DMARC_READING;
	if (ptl_task_submit(dmarc_read_work, dmarc_read_done, j) != PTL_OK) {
		(void)close(j->fd);
		free(j);
		return PTL_ERROR;
	}
	j->next = st->jobs;
	st->jobs = j;
	return PTL_AGAIN;
}

void
dmarc_filter_cancel(void *instance, void *arg)
{
	struct dmarc_job *j = dmarc_job_find(instance, arg);

	if (j != NULL)
		dmarc_job_drop(j);
}

void
dmarc_filter_session_end(void *instance, void *arg)
{
	dmarc_filter_cancel(instance, arg);
}

void
dmarc_filter_free_all(struct dmarc_state *st)
{
	struct dmarc_job *j, *next;

	for (j = st->jobs; j != NULL; j = next) {
		next = j->next;
		if (!j->cancelled)
			dmarc_job_drop(j);
	}
}
