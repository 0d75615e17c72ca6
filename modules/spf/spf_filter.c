/* SPDX-License-Identifier: MIT */
/* The spf filter: check_host() at HELO and MAIL, verdicts, fields. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spf_module.h"

/*
 * At MAIL the MAIL FROM identity is checked (the HELO identity for the
 * null path, section 2.4); with check_helo, the HELO identity is also
 * checked at HELO, and that outcome is reused for a later null path.
 * The evaluation runs on the resolver's completions; the session waits
 * for the verdict, bounded by `timeout` (then: temperror, as section
 * 4.6.4 asks). Each session's state is keyed on the check's `arg` and
 * freed in session_end(); a pending evaluation is cancelled with it.
 */

/* Room for a reply text; the smtp module keeps its first 200 bytes. */
#define SPF_TEXT_MAX 640
/* Longest field body the smtp module accepts from a filter. */
#define SPF_FIELD_MAX 900

struct spf_session {
	struct spf_session *next;
	const void *key; /* the smtp session (the check's arg) */
	struct spf_state *st;
	char id[48];
	/* The check in progress. */
	struct spf_eval *ev;
	struct ptl_timer *timer;
	ptl_filter_done_fn done;
	void *done_arg;
	bool null_path;
	char ip[64];
	char helo[256];
	/* The HELO identity's outcome, for a null path. */
	bool have_helo;
	struct spf_outcome helo_out;
	/* The verdict handed out (valid during check() or done()). */
	char text[SPF_TEXT_MAX + 1];
	char field[SPF_FIELD_MAX];
	char result[257];
	struct ptl_filter_header header;
};

static size_t
spf_bucket(const void *key)
{
	return ((uintptr_t)key >> 4) % SPF_BUCKETS;
}

static struct spf_session *
spf_session_find(struct spf_state *st, const void *key)
{
	struct spf_session *s;

	for (s = st->sessions[spf_bucket(key)]; s != NULL; s = s->next) {
		if (s->key == key)
			return s;
	}
	return NULL;
}

/* Forget the check in progress: its done() will never be called. */
static void
spf_session_stop(struct spf_session *s)
{
	spf_eval_free(s->ev);
	s->ev = NULL;
	if (s->timer != NULL)
		ptl_timer_stop(s->timer);
	s->done = NULL;
	s->done_arg = NULL;
}

static void
spf_session_free(struct spf_session *s)
{
	struct spf_session **pp;

	spf_session_stop(s);
	ptl_timer_free(s->timer);
	for (pp = &s->st->sessions[spf_bucket(s->key)]; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	free(s);
}

static struct spf_session *
spf_session_get(struct spf_state *st, const void *key,
                const struct ptl_filter_request *req)
{
	struct spf_session *s = spf_session_find(st, key);
	size_t b = spf_bucket(key);

	if (s != NULL)
		return s;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->key = key;
	s->st = st;
	(void)snprintf(s->id, sizeof(s->id), "%s",
	               req->session_id != NULL ? req->session_id : "-");
	s->next = st->sessions[b];
	st->sessions[b] = s;
	return s;
}

/* ---- verdicts --------------------------------------------------------- */

static const char *
spf_enhanced(enum spf_result r, bool temporary)
{
	/* RFC 7372: X.7.23 "SPF validation failed", X.7.24 "SPF
	 * validation error". */
	if (r == SPF_PERMERROR || r == SPF_TEMPERROR)
		return temporary ? "4.7.24" : "5.7.24";
	return temporary ? "4.7.23" : "5.7.23";
}

static void
spf_reply_text(struct spf_session *s, const struct spf_outcome *out)
{
	const char *d = out->domain[0] != '\0' ? out->domain : "the sender";

	switch (out->result) {
	case SPF_FAIL:
		if (out->explanation[0] != '\0')
			(void)snprintf(s->text, sizeof(s->text), "SPF: %s",
			               out->explanation);
		else
			(void)snprintf(s->text, sizeof(s->text),
			               "SPF: %s does not allow %s to send its "
			               "mail",
			               d, s->ip);
		break;
	case SPF_SOFTFAIL:
		(void)snprintf(s->text, sizeof(s->text),
		               "SPF: %s does not allow %s to send its mail "
		               "(softfail)",
		               d, s->ip);
		break;
	case SPF_TEMPERROR:
		(void)snprintf(s->text, sizeof(s->text),
		               "SPF: temporary error checking %s: %s", d,
		               out->problem);
		break;
	case SPF_PERMERROR:
		(void)snprintf(s->text, sizeof(s->text),
		               "SPF: error in the policy of %s: %s", d,
		               out->problem);
		break;
	default:
		(void)snprintf(s->text, sizeof(s->text), "SPF: %s is %s for %s",
		               s->ip, spf_result_name(out->result), d);
		break;
	}
}

static void
spf_log_outcome(const struct spf_session *s, const struct spf_outcome *out,
                enum spf_action action)
{
	static const char *const action_names[] = {
	    "", " -> reject", " -> tempfail", " -> quarantine"};
	char who[160];

	(void)ptl_log_escape(who, sizeof(who), out->sender,
	                     strlen(out->sender));
	ptl_log(PTL_LOG_INFO,
	        "[c %s] spf: %s=<%s> ip=%s: %s%s%s%s%s (lookups %u, void "
	        "%u)%s",
	        s->id, out->identity, who, s->ip, spf_result_name(out->result),
	        out->mechanism[0] != '\0' ? " by " : "", out->mechanism,
	        out->problem[0] != '\0' ? ": " : "", out->problem, out->lookups,
	        out->voids, (unsigned)action < 4 ? action_names[action] : "");
}

/* Fill @v from @out: the configured action, the fields, the result. */
static void
spf_verdict(struct spf_session *s, const struct spf_outcome *out,
            struct ptl_filter_verdict *v)
{
	const struct spf_conf *conf = s->st->conf;
	enum spf_action action = (enum spf_action)conf->actions[out->result];

	memset(v, 0, sizeof(*v));
	spf_log_outcome(s, out, action);
	spf_trace_result(out, s->null_path, s->helo, s->result,
	                 sizeof(s->result));
	v->result = s->result;
	switch (action) {
	case SPF_ACT_REJECT:
		v->action = PTL_FILTER_REJECT;
		v->code = 550;
		v->enhanced = spf_enhanced(out->result, false);
		spf_reply_text(s, out);
		v->text = s->text;
		return;
	case SPF_ACT_TEMPFAIL:
		v->action = PTL_FILTER_TEMPFAIL;
		v->code = 451;
		v->enhanced = spf_enhanced(out->result, true);
		spf_reply_text(s, out);
		v->text = s->text;
		return;
	case SPF_ACT_QUARANTINE:
		v->action = PTL_FILTER_QUARANTINE;
		v->folder = conf->folder;
		break;
	default:
		v->action = PTL_FILTER_CONTINUE;
		break;
	}
	if (conf->received_spf) {
		spf_received_field(out, s->ip, s->helo, s->st->receiver,
		                   s->field, sizeof(s->field));
		s->header.name = "Received-SPF";
		s->header.value = s->field;
		v->headers = &s->header;
		v->nheaders = 1;
	}
}

/* The outcome of a HELO check, kept for a later null path. */
static void
spf_keep_helo(struct spf_session *s, const struct spf_outcome *out)
{
	if (strcmp(out->identity, "helo") != 0)
		return;
	s->helo_out = *out;
	s->have_helo = true;
}

static void
spf_eval_done(struct spf_eval *ev, void *arg)
{
	struct spf_session *s = arg;
	struct ptl_filter_verdict v;
	struct spf_outcome out = *spf_eval_outcome(ev);
	ptl_filter_done_fn done = s->done;
	void *done_arg = s->done_arg;

	spf_session_stop(s); /* frees ev: nothing of it is used below */
	spf_keep_helo(s, &out);
	spf_verdict(s, &out, &v);
	/* The session may end inside done(): s is not touched after. */
	if (done != NULL)
		done(&v, done_arg);
}

/* Section 4.6.4: an evaluation that takes too long is a temperror. */
static void
spf_on_timeout(struct ptl_timer *t, void *arg)
{
	struct spf_session *s = arg;
	struct ptl_filter_verdict v;
	struct spf_outcome out = *spf_eval_outcome(s->ev);
	ptl_filter_done_fn done = s->done;
	void *done_arg = s->done_arg;

	spf_session_stop(s);
	out.result = SPF_TEMPERROR;
	out.mechanism[0] = '\0';
	(void)snprintf(out.problem, sizeof(out.problem),
	               "no answer within %lld ms",
	               (long long)s->st->conf->timeout);
	spf_verdict(s, &out, &v);
	if (done != NULL)
		done(&v, done_arg);
}

/* ---- the filter ------------------------------------------------------- */

static int
spf_start(struct spf_session *s, const struct ptl_filter_request *req,
          bool helo_identity, struct ptl_filter_verdict *v,
          ptl_filter_done_fn done, void *arg)
{
	struct spf_state *st = s->st;
	const struct ptl_resolver_methods *m = st->resolver->methods;
	struct spf_request sr = {
	    .ip = req->peer_ip,
	    .sender = helo_identity ? "" : req->mail_from,
	    .helo = req->helo,
	    .receiver = st->receiver,
	    .now = ptl_wall_time(),
	    .helo_identity = helo_identity,
	};
	int rc;

	spf_session_stop(s);
	s->ev = spf_eval_new(m, st->resolver->instance, &st->limits, &sr);
	if (s->ev == NULL)
		return PTL_ERROR;
	rc = spf_eval_start(s->ev, spf_eval_done, s);
	if (rc == PTL_DONE) {
		struct spf_outcome out = *spf_eval_outcome(s->ev);

		spf_session_stop(s);
		spf_keep_helo(s, &out);
		spf_verdict(s, &out, v);
		return PTL_OK;
	}
	if (s->timer == NULL)
		s->timer = ptl_timer_new(spf_on_timeout, s);
	if (s->timer == NULL) {
		spf_session_stop(s);
		return PTL_ERROR;
	}
	ptl_timer_start(s->timer, st->conf->timeout);
	s->done = done;
	s->done_arg = arg;
	return PTL_AGAIN;
}

int
spf_filter_check(void *instance, const struct ptl_filter_request *req,
                 struct ptl_filter_verdict *verdict_out,
                 ptl_filter_done_fn done, void *arg)
{
	struct spf_state *st = instance;
	const struct spf_conf *conf = st->conf;
	struct spf_session *s;

	memset(verdict_out, 0, sizeof(*verdict_out));
	verdict_out->action = PTL_FILTER_CONTINUE;
	if (req->hook != PTL_FILTER_HELO && req->hook != PTL_FILTER_MAIL)
		return PTL_OK;
	if (!ptl_filter_role_listed(&conf->roles, req->role) ||
	    (req->auth_user != NULL && !conf->check_authenticated) ||
	    (req->trusted && !conf->check_trusted))
		return PTL_OK;
	if (st->resolver == NULL || req->peer_ip == NULL)
		return PTL_ERROR;
	s = spf_session_get(st, arg, req);
	if (s == NULL)
		return PTL_ERROR;
	(void)snprintf(s->ip, sizeof(s->ip), "%s", req->peer_ip);
	(void)snprintf(s->helo, sizeof(s->helo), "%s",
	               req->helo != NULL ? req->helo : "");
	if (req->hook == PTL_FILTER_HELO) {
		/* A new HELO name: the old outcome no longer applies. */
		s->have_helo = false;
		s->null_path = false;
		return spf_start(s, req, true, verdict_out, done, arg);
	}
	s->null_path = req->mail_from == NULL || req->mail_from[0] == '\0';
	if (s->null_path && s->have_helo &&
	    strcmp(s->helo_out.domain, s->helo) == 0) {
		/* Section 2.4: the same check; only the identity differs. */
		struct spf_outcome out = s->helo_out;

		out.identity = "mailfrom";
		spf_verdict(s, &out, verdict_out);
		return PTL_OK;
	}
	return spf_start(s, req, false, verdict_out, done, arg);
}

void
spf_filter_cancel(void *instance, void *arg)
{
	struct spf_session *s = spf_session_find(instance, arg);

	if (s != NULL)
		spf_session_stop(s);
}

void
spf_filter_session_end(void *instance, void *arg)
{
	struct spf_session *s = spf_session_find(instance, arg);

	if (s != NULL)
		spf_session_free(s);
}

void
spf_filter_free_all(struct spf_state *st)
{
	size_t b;

	for (b = 0; b < SPF_BUCKETS; b++) {
		while (st->sessions[b] != NULL)
			spf_session_free(st->sessions[b]);
	}
}
