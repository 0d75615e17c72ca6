/* SPDX-License-Identifier: MIT */
/* check_host() of RFC 7208 as a state machine resumed by DNS answers. */
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <petrel/core.h>

#include "spf_eval_int.h"

/*
 * One evaluation asks at most one DNS question at a time: the state
 * (which frame, which term, what the pending question is for) says
 * where to resume when the answer comes. An "include" pushes a frame
 * (a recursive check_host()), a "redirect" replaces the current one.
 *
 * Every question is bounded: at most max_lookups mechanisms and
 * redirects that query DNS (section 4.6.4, which also bounds the
 * nesting), max_void of them without an answer, 10 MX names per "mx"
 * (more is a permerror) and 10 PTR names per validation (the others are
 * ignored). The exp= lookup counts for neither limit. Validated PTR
 * names are looked up once per evaluation and shared by every "ptr"
 * mechanism and %{p} macro.
 */

static void spf_on_dns(const struct ptl_dns_result *res, void *arg);

/* ---- results and errors ---------------------------------------------- */

void
spf_error(struct spf_eval *ev, enum spf_result r, const char *fmt, ...)
{
	va_list ap;

	ev->out.result = r;
	ev->out.mechanism[0] = '\0';
	va_start(ap, fmt);
	(void)vsnprintf(ev->out.problem, sizeof(ev->out.problem), fmt, ap);
	va_end(ap);
	ev->state = SPF_ST_DONE;
}

static void
spf_set_mechanism(struct spf_eval *ev, const char *text, size_t len)
{
	(void)snprintf(ev->out.mechanism, sizeof(ev->out.mechanism), "%.*s",
	               (int)len, text);
}

/*
 * The current frame ended with @r (none, neutral, pass, fail or
 * softfail; errors end everything through spf_error()). In an include,
 * this decides whether the include term matched (section 5.2).
 */
void
spf_frame_result(struct spf_eval *ev, enum spf_result r, const char *mech,
                 size_t mech_len)
{
	struct spf_frame *f, *parent;
	const struct spf_term *t;

	spf_set_mechanism(ev, mech, mech_len);
	for (;;) {
		f = &ev->frames[ev->depth - 1];
		if (ev->depth == 1) {
			if (r == SPF_NONE && f->via_redirect) {
				spf_error(ev, SPF_PERMERROR,
				          "redirect to %s: no SPF record",
				          f->domain);
				return;
			}
			ev->out.result = r;
			ev->state = r == SPF_FAIL && ev->lim.explain &&
			                    f->rec != NULL &&
			                    f->rec->exp != NULL
			                ? SPF_ST_EXP
			                : SPF_ST_DONE;
			return;
		}
		if (r == SPF_NONE) {
			spf_error(ev, SPF_PERMERROR,
			          "include of %s: no SPF record", f->domain);
			return;
		}
		spf_record_free(f->rec);
		f->rec = NULL;
		ev->depth--;
		parent = &ev->frames[ev->depth - 1];
		t = &parent->rec->terms[parent->next];
		if (r != SPF_PASS) {
			parent->next++;
			ev->counted = false;
			ev->state = SPF_ST_TERM;
			return;
		}
		r = t->qualifier;
		spf_set_mechanism(ev, t->text, t->text_len);
	}
}

enum spf_step
spf_matched(struct spf_eval *ev, const struct spf_term *t)
{
	spf_frame_result(ev, t->qualifier, t->text, t->text_len);
	return SPF_NEXT;
}

enum spf_step
spf_no_match(struct spf_eval *ev)
{
	ev->frames[ev->depth - 1].next++;
	ev->counted = false;
	return SPF_NEXT;
}

/* A void lookup (section 4.6.4). @return true when over the limit. */
bool
spf_void(struct spf_eval *ev)
{
	if (++ev->out.voids <= ev->lim.max_void)
		return false;
	spf_error(ev, SPF_PERMERROR, "more than %u void DNS lookups",
	          ev->lim.max_void);
	return true;
}

/* ---- DNS ---------------------------------------------------------------*/

static enum spf_step
spf_ask(struct spf_eval *ev, const char *name, enum ptl_dns_type type,
        enum spf_wait wait)
{
	ev->wait = wait;
	ev->out.queries++;
	if (ev->m->lookup(ev->inst, name, type, spf_on_dns, ev, &ev->q) !=
	    PTL_AGAIN) {
		ev->q = NULL;
		ev->wait = SPF_W_NONE;
		spf_error(ev, SPF_TEMPERROR, "resolver unavailable");
		return SPF_NEXT;
	}
	return SPF_WAIT;
}

static enum ptl_dns_type
spf_addr_type(const struct spf_eval *ev)
{
	return ev->ip.family == AF_INET6 ? PTL_DNS_AAAA : PTL_DNS_A;
}

/* ---- PTR validation (section 5.5) ------------------------------------ */

static enum spf_step
spf_ptr_next(struct spf_eval *ev)
{
	if (ev->ptr_i == ev->nptr) {
		ev->ptr_state = SPF_PTR_DONE;
		return SPF_NEXT; /* the waiting step runs again */
	}
	return spf_ask(ev, ev->ptr[ev->ptr_i++], spf_addr_type(ev),
	               SPF_W_PTRADDR);
}

static enum spf_step
spf_ptr_start(struct spf_eval *ev)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (ev->ip.family == AF_INET) {
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, ev->ip.addr, 4);
	} else {
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, ev->ip.addr, 16);
	}
	ev->ptr_state = SPF_PTR_RUNNING;
	ev->wait = SPF_W_PTR;
	ev->out.queries++;
	if (ev->m->lookup_ptr(ev->inst, (const struct sockaddr *)&ss,
	                      spf_on_dns, ev, &ev->q) != PTL_AGAIN) {
		ev->q = NULL;
		ev->wait = SPF_W_NONE;
		spf_error(ev, SPF_TEMPERROR, "resolver unavailable");
		return SPF_NEXT;
	}
	return SPF_WAIT;
}

/* @name equals @domain or is below it; trailing dots and case ignored. */
static bool
spf_name_within(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (d > 0 && domain[d - 1] == '.')
		d--;
	if (d == 0 || n < d || strncasecmp(name + n - d, domain, d) != 0)
		return false;
	return n == d || name[n - d - 1] == '.';
}

/*
 * %{p}: a validated name equal to the current domain, else one below
 * it, else any (section 7.3); NULL expands to "unknown".
 */
static const char *
spf_ptr_macro(const struct spf_eval *ev, const char *domain)
{
	const char *any = NULL, *below = NULL;
	size_t i;

	for (i = 0; i < ev->nptr; i++) {
		if (!ev->ptr_valid[i])
			continue;
		if (strcasecmp(ev->ptr[i], domain) == 0)
			return ev->ptr[i];
		if (below == NULL && spf_name_within(ev->ptr[i], domain))
			below = ev->ptr[i];
		if (any == NULL)
			any = ev->ptr[i];
	}
	return below != NULL ? below : any;
}

/* ---- targets ---------------------------------------------------------- */

static void
spf_macro_ctx(const struct spf_eval *ev, const char *domain,
              struct spf_macro_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->sender = ev->sender;
	ctx->local = ev->local;
	ctx->sender_domain = ev->sender_domain;
	ctx->domain = domain;
	ctx->ip = &ev->ip;
	ctx->ptr_name =
	    ev->ptr_state == SPF_PTR_DONE ? spf_ptr_macro(ev, domain) : NULL;
	ctx->helo = ev->helo;
	ctx->receiver = ev->receiver;
	ctx->now = ev->now;
}

/* Whether a domain-spec needs the PTR validation before expansion. */
static bool
spf_needs_ptr(const struct spf_eval *ev, const char *spec, size_t len)
{
	return ev->ptr_state != SPF_PTR_DONE && spec != NULL &&
	       spf_macro_uses(spec, len, 'p');
}

/*
 * The target name of a domain-spec (NULL: the current domain) into
 * ev->target. @return 0, or -1 when it is no name DNS can be asked.
 */
static int
spf_target(struct spf_eval *ev, const char *spec, size_t len)
{
	const char *domain = ev->frames[ev->depth - 1].domain;
	struct spf_macro_ctx ctx;
	char buf[SPF_EXPAND_MAX];

	if (spec == NULL) {
		(void)snprintf(ev->target, sizeof(ev->target), "%s", domain);
		return 0;
	}
	spf_macro_ctx(ev, domain, &ctx);
	if (spf_macro_expand(spec, len, false, &ctx, buf, sizeof(buf)) != 0)
		return -1;
	spf_domain_truncate(buf);
	if (strlen(buf) > SPF_NAME_MAX || !spf_domain_valid(buf, false))
		return -1;
	memcpy(ev->target, buf, strlen(buf) + 1);
	return 0;
}

/* ---- the steps -------------------------------------------------------- */

static enum spf_step
spf_fetch(struct spf_eval *ev)
{
	struct spf_frame *f = &ev->frames[ev->depth - 1];

	/* Section 4.3: a malformed or single-label domain has no policy. */
	if (!spf_domain_valid(f->domain, true)) {
		spf_frame_result(ev, SPF_NONE, "", 0);
		return SPF_NEXT;
	}
	return spf_ask(ev, f->domain, PTL_DNS_TXT, SPF_W_TXT);
}

static bool
spf_count_lookup(struct spf_eval *ev)
{
	if (ev->counted)
		return true;
	ev->counted = true;
	if (++ev->out.lookups <= ev->lim.max_lookups)
		return true;
	spf_error(ev, SPF_PERMERROR, "more than %u DNS lookups",
	          ev->lim.max_lookups);
	return false;
}

static enum spf_step
spf_redirect(struct spf_eval *ev)
{
	struct spf_frame *f = &ev->frames[ev->depth - 1];
	const struct spf_record *rec = f->rec;

	/* Section 4.7: no mechanism matched and no redirect. */
	if (rec->redirect == NULL) {
		spf_frame_result(ev, SPF_NEUTRAL, "default", 7);
		return SPF_NEXT;
	}
	if (!spf_count_lookup(ev))
		return SPF_NEXT;
	if (spf_needs_ptr(ev, rec->redirect, rec->redirect_len))
		return spf_ptr_start(ev);
	if (spf_target(ev, rec->redirect, rec->redirect_len) != 0) {
		spf_error(ev, SPF_PERMERROR, "invalid redirect target");
		return SPF_NEXT;
	}
	spf_record_free(f->rec);
	f->rec = NULL;
	f->next = 0;
	f->via_redirect = true;
	memcpy(f->domain, ev->target, sizeof(f->domain));
	ev->counted = false;
	ev->state = SPF_ST_FETCH;
	return SPF_NEXT;
}

static enum spf_step
spf_include(struct spf_eval *ev)
{
	struct spf_frame *f;

	if (ev->depth == SPF_FRAMES) {
		spf_error(ev, SPF_PERMERROR, "includes nested too deep");
		return SPF_NEXT;
	}
	f = &ev->frames[ev->depth++];
	memset(f, 0, sizeof(*f));
	memcpy(f->domain, ev->target, sizeof(f->domain));
	ev->counted = false;
	ev->state = SPF_ST_FETCH;
	return SPF_NEXT;
}

static enum spf_step
spf_ptr_mech(struct spf_eval *ev, const struct spf_term *t)
{
	size_t i;

	for (i = 0; i < ev->nptr; i++) {
		if (ev->ptr_valid[i] && spf_name_within(ev->ptr[i], ev->target))
			return spf_matched(ev, t);
	}
	return spf_no_match(ev);
}

static enum spf_step
spf_step(struct spf_eval *ev)
{
	struct spf_frame *f = &ev->frames[ev->depth - 1];
	const struct spf_term *t;
	unsigned prefix;

	if (f->next == f->rec->nterms)
		return spf_redirect(ev);
	t = &f->rec->terms[f->next];
	if (spf_term_is_dns(t) && !spf_count_lookup(ev))
		return SPF_NEXT;
	switch (t->mech) {
	case SPF_MECH_ALL:
		return spf_matched(ev, t);
	case SPF_MECH_IP4:
	case SPF_MECH_IP6:
		prefix = t->mech == SPF_MECH_IP4 ? t->cidr4 : t->cidr6;
		if (spf_ip_match(&ev->ip, &t->net, prefix))
			return spf_matched(ev, t);
		return spf_no_match(ev);
	default:
		break;
	}
	if (ev->ptr_state != SPF_PTR_DONE &&
	    (t->mech == SPF_MECH_PTR ||
	     spf_needs_ptr(ev, t->domain_spec, t->domain_len)))
		return spf_ptr_start(ev);
	if (spf_target(ev, t->domain_spec, t->domain_len) != 0) {
		/* Like a name that does not exist (the test suite's
		 * invalid-domain-* cases); for an include, check_host() of
		 * a malformed domain is "none", hence a permerror. */
		if (t->mech == SPF_MECH_INCLUDE) {
			spf_error(ev, SPF_PERMERROR, "invalid include target");
			return SPF_NEXT;
		}
		return spf_no_match(ev);
	}
	switch (t->mech) {
	case SPF_MECH_INCLUDE:
		return spf_include(ev);
	case SPF_MECH_A:
		return spf_ask(ev, ev->target, spf_addr_type(ev), SPF_W_ADDR);
	case SPF_MECH_MX:
		return spf_ask(ev, ev->target, PTL_DNS_MX, SPF_W_MX);
	case SPF_MECH_EXISTS:
		/* Section 5.7: always A, whatever the client's family. */
		return spf_ask(ev, ev->target, PTL_DNS_A, SPF_W_EXISTS);
	case SPF_MECH_PTR:
		return spf_ptr_mech(ev, t);
	default:
		return spf_no_match(ev);
	}
}

static enum spf_step
spf_mx_next(struct spf_eval *ev)
{
	if (ev->mx_i == ev->nmx)
		return spf_no_match(ev);
	return spf_ask(ev, ev->mx[ev->mx_i++], spf_addr_type(ev), SPF_W_MXADDR);
}

/* Section 6.2: any problem leaves the explanation out, silently. */
static enum spf_step
spf_explain(struct spf_eval *ev)
{
	const struct spf_record *rec = ev->frames[0].rec;
	struct spf_macro_ctx ctx;
	char buf[SPF_EXPAND_MAX];
	const char *why;
	size_t i, n;

	if (ev->exp_step == 0) {
		if (spf_needs_ptr(ev, rec->exp, rec->exp_len))
			return spf_ptr_start(ev);
		if (spf_target(ev, rec->exp, rec->exp_len) != 0) {
			ev->state = SPF_ST_DONE;
			return SPF_NEXT;
		}
		return spf_ask(ev, ev->target, PTL_DNS_TXT, SPF_W_EXP);
	}
	if (spf_macro_check(ev->exp_text, ev->exp_len, true, &why) != 0) {
		ev->state = SPF_ST_DONE;
		return SPF_NEXT;
	}
	if (ev->ptr_state != SPF_PTR_DONE &&
	    spf_macro_uses(ev->exp_text, ev->exp_len, 'p'))
		return spf_ptr_start(ev);
	spf_macro_ctx(ev, ev->frames[0].domain, &ctx);
	if (spf_macro_expand(ev->exp_text, ev->exp_len, true, &ctx, buf,
	                     sizeof(buf)) == 0) {
		/* It becomes a reply text: printable ASCII only. */
		for (i = 0, n = 0; buf[i] != '\0' && n < SPF_EXPLAIN_MAX; i++)
			ev->out.explanation[n++] =
			    buf[i] >= 0x20 && buf[i] < 0x7f ? buf[i] : '?';
		ev->out.explanation[n] = '\0';
	}
	ev->state = SPF_ST_DONE;
	return SPF_NEXT;
}

/* ---- the machine ------------------------------------------------------ */

static void
spf_run(struct spf_eval *ev)
{
	enum spf_step rc = SPF_NEXT;

	while (ev->state != SPF_ST_DONE) {
		/* A multi-question step resumes where it stopped. */
		if (ev->wait == SPF_W_MXADDR) {
			ev->wait = SPF_W_NONE;
			rc = spf_mx_next(ev);
		} else if (ev->wait == SPF_W_PTRADDR) {
			ev->wait = SPF_W_NONE;
			rc = spf_ptr_next(ev);
		} else {
			switch (ev->state) {
			case SPF_ST_FETCH:
				rc = spf_fetch(ev);
				break;
			case SPF_ST_TERM:
				rc = spf_step(ev);
				break;
			case SPF_ST_EXP:
				rc = spf_explain(ev);
				break;
			case SPF_ST_DONE:
				break;
			}
		}
		if (rc == SPF_WAIT)
			return;
	}
	if (ev->finished)
		return;
	ev->finished = true;
	if (!ev->in_start)
		ev->done(ev, ev->arg); /* may free ev */
}

static void
spf_on_dns(const struct ptl_dns_result *res, void *arg)
{
	struct spf_eval *ev = arg;
	enum spf_wait wait = ev->wait;

	ev->q = NULL;
	ev->wait = SPF_W_NONE;
	spf_answer(ev, wait, res);
	/* Errors end the evaluation even inside a multi-question step. */
	if (ev->state == SPF_ST_DONE)
		ev->wait = SPF_W_NONE;
	spf_run(ev);
}

/* ---- the interface ---------------------------------------------------- */

static char *
spf_strndup(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d != NULL) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

struct spf_eval *
spf_eval_new(const struct ptl_resolver_methods *m, void *instance,
             const struct spf_limits *lim, const struct spf_request *req)
{
	struct spf_eval *ev = calloc(1, sizeof(*ev));
	const char *helo = req->helo != NULL ? req->helo : "";
	const char *sender = req->sender != NULL ? req->sender : "";
	const char *at;
	size_t local_len;

	if (ev == NULL)
		return NULL;
	ev->m = m;
	ev->inst = instance;
	ev->lim = *lim;
	if (ev->lim.max_lookups > SPF_LOOKUPS_HARD_MAX)
		ev->lim.max_lookups = SPF_LOOKUPS_HARD_MAX;
	ev->ip_ok = spf_ip_parse(req->ip, &ev->ip) == 0;
	ev->now = req->now;
	ev->helo = spf_strndup(helo, strlen(helo));
	ev->receiver = spf_strndup(
	    req->receiver != NULL ? req->receiver : "unknown",
	    strlen(req->receiver != NULL ? req->receiver : "unknown"));
	/* Section 2.4: the null path is checked as postmaster@HELO. */
	if (req->helo_identity || sender[0] == '\0') {
		ev->local = spf_strndup("postmaster", 10);
		ev->sender_domain = spf_strndup(helo, strlen(helo));
	} else {
		at = strrchr(sender, '@');
		local_len = at != NULL ? (size_t)(at - sender) : 0;
		/* Section 4.3: no local-part means "postmaster". */
		ev->local = local_len > 0 ? spf_strndup(sender, local_len)
		                          : spf_strndup("postmaster", 10);
		ev->sender_domain = spf_strndup(
		    at != NULL ? at + 1 : "", at != NULL ? strlen(at + 1) : 0);
	}
	if (ev->helo == NULL || ev->receiver == NULL || ev->local == NULL ||
	    ev->sender_domain == NULL)
		goto fail;
	ev->sender = malloc(strlen(ev->local) + strlen(ev->sender_domain) + 2);
	if (ev->sender == NULL)
		goto fail;
	(void)sprintf(ev->sender, "%s@%s", ev->local, ev->sender_domain);
	ev->out.identity = req->helo_identity ? "helo" : "mailfrom";
	(void)snprintf(ev->out.sender, sizeof(ev->out.sender), "%s",
	               ev->sender);
	(void)snprintf(ev->out.domain, sizeof(ev->out.domain), "%s",
	               ev->sender_domain);
	return ev;
fail:
	spf_eval_free(ev);
	return NULL;
}

int
spf_eval_start(struct spf_eval *ev, spf_done_fn done, void *arg)
{
	struct spf_frame *f = &ev->frames[0];

	ev->done = done;
	ev->arg = arg;
	ev->depth = 1;
	memset(f, 0, sizeof(*f));
	if (!ev->ip_ok) {
		spf_error(ev, SPF_NONE, "no client address");
	} else if (strlen(ev->sender_domain) > SPF_NAME_MAX) {
		spf_error(ev, SPF_NONE, "invalid domain");
	} else {
		memcpy(f->domain, ev->sender_domain,
		       strlen(ev->sender_domain) + 1);
		ev->state = SPF_ST_FETCH;
	}
	ev->in_start = true;
	spf_run(ev);
	ev->in_start = false;
	return ev->finished ? PTL_DONE : PTL_AGAIN;
}

const struct spf_outcome *
spf_eval_outcome(const struct spf_eval *ev)
{
	return &ev->out;
}

void
spf_eval_free(struct spf_eval *ev)
{
	size_t i;

	if (ev == NULL)
		return;
	if (ev->q != NULL)
		ev->m->cancel(ev->inst, ev->q);
	for (i = 0; i < ev->depth; i++)
		spf_record_free(ev->frames[i].rec);
	free(ev->exp_text);
	free(ev->sender);
	free(ev->local);
	free(ev->sender_domain);
	free(ev->helo);
	free(ev->receiver);
	free(ev);
}
