/* SPDX-License-Identifier: MIT */
/* filter_dnsbl sessions: parallel lookups, scoring, verdicts. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dnsbl.h"

/*
 * A session's IP lists are all asked at CONNECT, in parallel, through the
 * resolver service; domain lists (RHSBL) at MAIL. Where the verdict is
 * given depends on `reject_at` and `action`:
 *   reject_at connect: the IP verdict at CONNECT (before the greeting),
 *                      the IP + domain verdict at MAIL;
 *   reject_at rcpt:    every RCPT gets the IP + domain verdict, except
 *                      the exempt recipients (postmaster@ by default),
 *                      so that a listed sender can still reach them;
 *                      the lookups run meanwhile, hidden behind EHLO
 *                      and MAIL;
 *   action tag:        no refusal: at MAIL the message gets a header.
 * A check whose lookups are still running suspends the session (the
 * verdict comes through `done`); the lookups of a session are cancelled
 * when it ends.
 */

static size_t
dnsbl_bucket(const void *key)
{
	return ((uintptr_t)key >> 4) % DNSBL_BUCKETS;
}

static struct dnsbl_session *
dnsbl_session_find(struct dnsbl_state *st, const void *key)
{
	struct dnsbl_session *s;

	for (s = st->sessions[dnsbl_bucket(key)]; s != NULL; s = s->next) {
		if (s->key == key)
			return s;
	}
	return NULL;
}

static void
dnsbl_cancel_lookup(struct dnsbl_state *st, struct dnsbl_lookup *l)
{
	const struct ptl_resolver_methods *m;

	if (l->q == NULL)
		return;
	m = st->resolver->methods;
	m->cancel(st->resolver->instance, l->q);
	l->q = NULL;
}

static void
dnsbl_zone_reset(struct dnsbl_session *s, size_t i)
{
	struct dnsbl_zres *zr = &s->z[i];

	dnsbl_cancel_lookup(s->st, &zr->a);
	dnsbl_cancel_lookup(s->st, &zr->t);
	free(zr->txt);
	zr->txt = NULL;
	zr->state = DNSBL_Z_IDLE;
	zr->txt_pending = false;
	zr->code = 0;
	zr->ttl = 0;
}

static void
dnsbl_session_free(struct dnsbl_session *s)
{
	struct dnsbl_session **pp;
	size_t i;

	for (i = 0; i < s->st->nzones; i++)
		dnsbl_zone_reset(s, i);
	for (pp = &s->st->sessions[dnsbl_bucket(s->key)]; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	free(s);
}

/* ---- lookups -------------------------------------------------------- */

static void dnsbl_on_answer(const struct ptl_dns_result *res, void *arg);

static bool
dnsbl_zone_name(const struct dnsbl_session *s, size_t i, char *out, size_t size)
{
	const struct dnsbl_zone *z = &s->st->zones[i];

	return dnsbl_query_name(z->type == DNSBL_ZONE_IP ? s->rev : s->domain,
	                        z->zone, out, size) == PTL_OK;
}

static bool
dnsbl_ask(struct dnsbl_session *s, size_t i, bool txt)
{
	const struct ptl_resolver_methods *m = s->st->resolver->methods;
	struct dnsbl_lookup *l = txt ? &s->z[i].t : &s->z[i].a;
	char name[DNSBL_NAME_MAX + 1];

	if (!dnsbl_zone_name(s, i, name, sizeof(name)))
		return false;
	l->s = s;
	l->zone = (uint8_t)i;
	l->txt = txt;
	l->q = NULL;
	return m->lookup(s->st->resolver->instance, name,
	                 txt ? PTL_DNS_TXT : PTL_DNS_A, dnsbl_on_answer, l,
	                 &l->q) == PTL_AGAIN;
}

static void
dnsbl_start(struct dnsbl_session *s, int type)
{
	const struct dnsbl_zone *z;
	size_t i;

	for (i = 0; i < s->st->nzones; i++) {
		z = &s->st->zones[i];
		if (z->type != type)
			continue;
		dnsbl_zone_reset(s, i);
		if ((type == DNSBL_ZONE_IP &&
		     !(s->ip.family == AF_INET ? z->ipv4 : z->ipv6)) ||
		    (type == DNSBL_ZONE_DOMAIN && s->domain[0] == '\0')) {
			s->z[i].state = DNSBL_Z_SKIPPED;
			continue;
		}
		s->z[i].state =
		    dnsbl_ask(s, i, false) ? DNSBL_Z_PENDING : DNSBL_Z_FAILED;
	}
}

static void
dnsbl_start_ip(struct dnsbl_session *s, int64_t now)
{
	const struct dnsbl_cache_entry *e;
	size_t i;

	e = dnsbl_cache_get(&s->st->cache, &s->ip, now);
	if (e == NULL) {
		dnsbl_start(s, DNSBL_ZONE_IP);
		return;
	}
	s->from_cache = true;
	for (i = 0; i < s->st->nzones; i++) {
		if (s->st->zones[i].type != DNSBL_ZONE_IP)
			continue;
		s->z[i].state = DNSBL_Z_DONE;
		s->z[i].code = e->codes[i];
		if (e->txt[0] != '\0' && e->txt_zone == i)
			s->z[i].txt = strdup(e->txt);
	}
}

/* Once every IP list answered, remember the answers for the next
 * session of this address (never failures). */
static void
dnsbl_cache_result(struct dnsbl_session *s)
{
	struct dnsbl_state *st = s->st;
	struct dnsbl_cache_entry e;
	uint32_t ttl = UINT32_MAX;
	bool have_txt = false;
	size_t i;

	if (s->from_cache || s->cached || st->cache.nsets == 0)
		return;
	memset(&e, 0, sizeof(e));
	for (i = 0; i < st->nzones; i++) {
		const struct dnsbl_zres *zr = &s->z[i];

		if (st->zones[i].type != DNSBL_ZONE_IP ||
		    zr->state == DNSBL_Z_SKIPPED)
			continue;
		if (zr->state != DNSBL_Z_DONE || zr->txt_pending)
			return;
		if (zr->ttl < ttl)
			ttl = zr->ttl;
		e.codes[i] = zr->code;
		if (zr->code != 0 && zr->txt != NULL && !have_txt) {
			(void)snprintf(e.txt, sizeof(e.txt), "%s", zr->txt);
			e.txt_zone = (uint8_t)i;
			have_txt = true;
		}
	}
	s->cached = true;
	if ((int64_t)ttl * 1000 > st->conf->cache_ttl)
		ttl = (uint32_t)(st->conf->cache_ttl / 1000);
	if (ttl == 0 || ttl == UINT32_MAX)
		return;
	e.ip = s->ip;
	e.expires = ptl_now_ms() + (int64_t)ttl * 1000;
	dnsbl_cache_put(&st->cache, &e, ptl_now_ms());
}

static void
dnsbl_take_txt(struct dnsbl_zres *zr, const struct ptl_dns_result *res)
{
	const struct ptl_dns_txt *t;
	size_t n;

	if (res->status != PTL_DNS_OK || res->count == 0)
		return;
	t = &res->txt[0];
	n = t->len < DNSBL_TEXT_MAX ? t->len : DNSBL_TEXT_MAX;
	free(zr->txt);
	zr->txt = malloc(n + 1);
	if (zr->txt == NULL)
		return;
	/* Made printable when it is used (dnsbl_reason_format). */
	memcpy(zr->txt, t->data, n);
	zr->txt[n] = '\0';
	if (res->ttl < zr->ttl)
		zr->ttl = res->ttl;
}

static void
dnsbl_take_a(struct dnsbl_session *s, size_t i,
             const struct ptl_dns_result *res)
{
	struct dnsbl_state *st = s->st;
	const struct dnsbl_zone *z = &st->zones[i];
	struct dnsbl_zres *zr = &s->z[i];
	char code[INET_ADDRSTRLEN];
	uint32_t v;
	size_t k;

	switch (res->status) {
	case PTL_DNS_OK:
		for (k = 0; k < res->count; k++) {
			if (res->addrs[k].family != AF_INET)
				continue;
			v = ntohl(res->addrs[k].in4.s_addr);
			if (dnsbl_code_is_error(v)) {
				if (!(st->error_warned & (1u << i)))
					ptl_log(
					    PTL_LOG_WARN,
					    "dnsbl: %s answered %s: the list "
					    "refuses our queries (public "
					    "resolver, or over its quota?); "
					    "not counted as a listing",
					    z->zone,
					    inet_ntop(AF_INET,
					              &res->addrs[k].in4, code,
					              sizeof(code)));
				st->error_warned |= 1u << i;
				continue;
			}
			if (zr->code == 0 &&
			    dnsbl_code_listed(z->ranges, z->nranges, v))
				zr->code = v;
		}
		/* fall through */
	case PTL_DNS_NXDOMAIN:
	case PTL_DNS_NODATA:
		zr->state = DNSBL_Z_DONE;
		zr->ttl = res->ttl;
		break;
	default:
		zr->state = DNSBL_Z_FAILED;
		ptl_log(PTL_LOG_NOTICE, "[c %s] dnsbl: %s: lookup failed: %s",
		        s->id, z->zone,
		        res->reason != NULL ? res->reason : "?");
		break;
	}
	if (zr->code != 0 && z->txt)
		zr->txt_pending = dnsbl_ask(s, i, true);
}

/* ---- decisions ------------------------------------------------------ */

/*
 * The outcome so far. A listing is final before every list answered only
 * when no list still running could lower the score (negative weight);
 * the reason is taken from the first listing list in config order.
 */
static enum dnsbl_outcome
dnsbl_evaluate(const struct dnsbl_session *s, bool with_domain,
               int64_t *score_out, int *reason_out)
{
	const struct dnsbl_state *st = s->st;
	bool pending = false, pending_negative = false, failed = false;
	bool listed;
	int64_t score = 0;
	int first = -1;
	size_t i;

	for (i = 0; i < st->nzones; i++) {
		const struct dnsbl_zone *z = &st->zones[i];
		const struct dnsbl_zres *zr = &s->z[i];

		if (z->type == DNSBL_ZONE_DOMAIN && !with_domain)
			continue;
		if (zr->state == DNSBL_Z_PENDING) {
			pending = true;
			if (z->weight < 0)
				pending_negative = true;
		} else if (zr->state == DNSBL_Z_FAILED) {
			failed = true;
		} else if (zr->state == DNSBL_Z_DONE && zr->code != 0) {
			score += z->weight;
			if (first < 0)
				first = (int)i;
		}
	}
	*score_out = score;
	*reason_out = first;
	if (st->conf->mode == DNSBL_MODE_FIRST_HIT)
		listed = first >= 0;
	else
		listed = score >= st->conf->threshold && !pending_negative;
	/* A tag refuses nothing, so it waits to report every listing. */
	if (listed && pending && st->conf->action == DNSBL_ACT_TAG)
		return DNSBL_PENDING;
	if (listed)
		return s->z[first].txt_pending ? DNSBL_PENDING : DNSBL_LISTED;
	if (pending)
		return DNSBL_PENDING;
	if (failed && st->conf->on_failure == DNSBL_FAIL_TEMPFAIL)
		return DNSBL_FAILED;
	return DNSBL_CLEAN;
}

static void
dnsbl_describe(struct dnsbl_session *s, bool with_domain, int64_t score)
{
	const struct dnsbl_state *st = s->st;
	char code[INET_ADDRSTRLEN];
	struct in_addr a;
	size_t i, n = 0;
	int len;

	s->details[0] = '\0';
	for (i = 0; i < st->nzones && n < sizeof(s->details); i++) {
		if (s->z[i].state != DNSBL_Z_DONE || s->z[i].code == 0 ||
		    (st->zones[i].type == DNSBL_ZONE_DOMAIN && !with_domain))
			continue;
		a.s_addr = htonl(s->z[i].code);
		len = snprintf(s->details + n, sizeof(s->details) - n, "%s=%s ",
		               st->zones[i].zone,
		               inet_ntop(AF_INET, &a, code, sizeof(code)));
		if (len < 0)
			break;
		n += (size_t)len;
	}
	if (n < sizeof(s->details))
		(void)snprintf(s->details + n, sizeof(s->details) - n,
		               "score=%lld/%lld", (long long)score,
		               (long long)st->conf->threshold);
}

/*
 * Fill @v for @outcome. A failure returns PTL_ERROR: the smtp module then
 * applies the filter's failure policy (PTL_FILTER_FAIL_OPEN unless
 * on_failure is "tempfail").
 */
static int
dnsbl_verdict(struct dnsbl_session *s, enum dnsbl_outcome outcome,
              bool with_domain, int64_t score, int reason,
              struct ptl_filter_verdict *v)
{
	const struct dnsbl_state *st = s->st;
	const struct dnsbl_zone *z;
	struct dnsbl_reason_args args;
	char code[INET_ADDRSTRLEN];
	struct in_addr a;
	bool *logged;

	memset(v, 0, sizeof(*v));
	v->action = PTL_FILTER_CONTINUE;
	if (outcome == DNSBL_FAILED) {
		ptl_log(PTL_LOG_NOTICE,
		        "[c %s] dnsbl: %s: a list could not be asked", s->id,
		        s->ip_text);
		return PTL_ERROR;
	}
	if (outcome != DNSBL_LISTED) {
		v->result = "dnsbl=none";
		return PTL_OK;
	}
	z = &st->zones[reason];
	dnsbl_describe(s, with_domain, score);
	logged = with_domain ? &s->logged_domain : &s->logged_ip;
	if (!*logged)
		ptl_log(PTL_LOG_INFO, "[c %s] dnsbl: %s%s%s listed: %s", s->id,
		        s->ip_text, with_domain && s->domain[0] ? " / " : "",
		        with_domain ? s->domain : "", s->details);
	*logged = true;

	a.s_addr = htonl(s->z[reason].code);
	args.ip = s->ip_text;
	args.zone = z->zone;
	args.domain = z->type == DNSBL_ZONE_DOMAIN ? s->domain : "";
	args.code = inet_ntop(AF_INET, &a, code, sizeof(code));
	args.txt = s->z[reason].txt != NULL ? s->z[reason].txt : "";
	dnsbl_reason_format(z->reason, &args, s->text, sizeof(s->text));
	(void)snprintf(s->result, sizeof(s->result),
	               "dnsbl=listed policy.zone=%s policy.score=%lld", z->zone,
	               (long long)score);
	v->result = s->result;
	switch (st->conf->action) {
	case DNSBL_ACT_TAG:
		s->header.name = st->conf->header;
		s->header.value = s->details;
		v->headers = &s->header;
		v->nheaders = 1;
		break;
	case DNSBL_ACT_TEMPFAIL:
		v->action = PTL_FILTER_TEMPFAIL;
		v->enhanced = "4.7.1";
		v->text = s->text;
		break;
	default:
		v->action = PTL_FILTER_REJECT;
		v->enhanced = "5.7.1";
		v->text = s->text;
		break;
	}
	return PTL_OK;
}

static int
dnsbl_decide(struct dnsbl_session *s, bool with_domain,
             struct ptl_filter_verdict *v, ptl_filter_done_fn done, void *arg)
{
	enum dnsbl_outcome outcome;
	int64_t score;
	int reason;

	outcome = dnsbl_evaluate(s, with_domain, &score, &reason);
	if (outcome != DNSBL_PENDING)
		return dnsbl_verdict(s, outcome, with_domain, score, reason, v);
	s->waiting = true;
	s->wait_domain = with_domain;
	s->done = done;
	s->done_arg = arg;
	return PTL_AGAIN;
}

/* An answer arrived: finish the suspended check if it can be decided. */
static void
dnsbl_progress(struct dnsbl_session *s)
{
	struct ptl_filter_verdict v;
	enum dnsbl_outcome outcome;
	ptl_filter_done_fn done;
	void *done_arg;
	int64_t score;
	int reason, rc;

	dnsbl_cache_result(s);
	if (!s->waiting)
		return;
	outcome = dnsbl_evaluate(s, s->wait_domain, &score, &reason);
	if (outcome == DNSBL_PENDING)
		return;
	s->waiting = false;
	done = s->done;
	done_arg = s->done_arg;
	rc = dnsbl_verdict(s, outcome, s->wait_domain, score, reason, &v);
	/* The session may end inside done(): s is not touched after. */
	done(rc == PTL_OK ? &v : NULL, done_arg);
}

static void
dnsbl_on_answer(const struct ptl_dns_result *res, void *arg)
{
	struct dnsbl_lookup *l = arg;
	struct dnsbl_session *s = l->s;
	struct dnsbl_zres *zr = &s->z[l->zone];

	l->q = NULL;
	if (l->txt) {
		zr->txt_pending = false;
		dnsbl_take_txt(zr, res);
	} else {
		dnsbl_take_a(s, l->zone, res);
	}
	dnsbl_progress(s);
}

/* ---- the filter ----------------------------------------------------- */

static bool
dnsbl_exempt(const struct dnsbl_conf *conf, const char *rcpt)
{
	const char *const *items = conf->exempt_recipients.items;
	const char *at = strrchr(rcpt, '@');
	size_t local = at != NULL ? (size_t)(at - rcpt) : strlen(rcpt);
	size_t i;

	for (i = 0; i < conf->exempt_recipients.count; i++) {
		if (strchr(items[i], '@') != NULL) {
			if (strcasecmp(items[i], rcpt) == 0)
				return true;
		} else if (strlen(items[i]) == local &&
		           strncasecmp(items[i], rcpt, local) == 0) {
			return true;
		}
	}
	return false;
}

static struct dnsbl_session *
dnsbl_session_new(struct dnsbl_state *st, void *key,
                  const struct ptl_filter_request *req,
                  const struct policy_ip *ip)
{
	struct dnsbl_session *s = calloc(1, sizeof(*s));
	size_t b = dnsbl_bucket(key);

	if (s == NULL)
		return NULL;
	s->key = key;
	s->st = st;
	s->ip = *ip;
	(void)snprintf(s->id, sizeof(s->id), "%s",
	               req->session_id != NULL ? req->session_id : "-");
	(void)policy_ip_format(ip, 128, s->ip_text, sizeof(s->ip_text));
	if (dnsbl_reverse_ip(ip, s->rev, sizeof(s->rev)) != PTL_OK) {
		free(s);
		return NULL;
	}
	s->next = st->sessions[b];
	st->sessions[b] = s;
	return s;
}

int
dnsbl_check(void *instance, const struct ptl_filter_request *req,
            struct ptl_filter_verdict *verdict_out, ptl_filter_done_fn done,
            void *arg)
{
	struct dnsbl_state *st = instance;
	const struct dnsbl_conf *conf = st->conf;
	struct dnsbl_session *s;
	struct policy_ip ip;
	bool decide_mail;

	memset(verdict_out, 0, sizeof(*verdict_out));
	verdict_out->action = PTL_FILTER_CONTINUE;
	if (st->resolver == NULL)
		return PTL_ERROR;
	s = dnsbl_session_find(st, arg);
	switch (req->hook) {
	case PTL_FILTER_CONNECT:
		if (s != NULL ||
		    !ptl_filter_role_listed(&conf->roles, req->role) ||
		    req->trusted ||
		    policy_ip_parse(req->peer_ip, &ip) != PTL_OK ||
		    policy_cidr_match(st->whitelist, st->nwhitelist, &ip))
			return PTL_OK;
		s = dnsbl_session_new(st, arg, req, &ip);
		if (s == NULL)
			return PTL_ERROR;
		dnsbl_start_ip(s, ptl_now_ms());
		if (conf->action == DNSBL_ACT_TAG ||
		    conf->reject_at == DNSBL_AT_RCPT)
			return PTL_OK;
		return dnsbl_decide(s, false, verdict_out, done, arg);
	case PTL_FILTER_MAIL:
		if (s == NULL || req->auth_user != NULL)
			return PTL_OK;
		if (st->has_domain_zones) {
			s->logged_domain = false;
			if (!dnsbl_sender_domain(req->mail_from, s->domain,
			                         sizeof(s->domain)))
				s->domain[0] = '\0';
			dnsbl_start(s, DNSBL_ZONE_DOMAIN);
		}
		decide_mail = conf->action == DNSBL_ACT_TAG ||
		              (conf->reject_at == DNSBL_AT_CONNECT &&
		               st->has_domain_zones);
		if (!decide_mail)
			return PTL_OK;
		return dnsbl_decide(s, true, verdict_out, done, arg);
	case PTL_FILTER_RCPT:
		if (s == NULL || req->auth_user != NULL || req->rcpt == NULL ||
		    conf->action == DNSBL_ACT_TAG ||
		    conf->reject_at != DNSBL_AT_RCPT ||
		    dnsbl_exempt(conf, req->rcpt))
			return PTL_OK;
		return dnsbl_decide(s, true, verdict_out, done, arg);
	default:
		return PTL_OK;
	}
}

/* The check timed out (the lookups go on and may serve a later hook). */
void
dnsbl_cancel(void *instance, void *arg)
{
	struct dnsbl_session *s = dnsbl_session_find(instance, arg);

	if (s != NULL)
		s->waiting = false;
}

void
dnsbl_session_end(void *instance, void *arg)
{
	struct dnsbl_session *s = dnsbl_session_find(instance, arg);

	if (s != NULL)
		dnsbl_session_free(s);
}

void
dnsbl_sessions_free(struct dnsbl_state *st)
{
	size_t b;

	for (b = 0; st->resolver != NULL && b < DNSBL_BUCKETS; b++) {
		while (st->sessions[b] != NULL)
			dnsbl_session_free(st->sessions[b]);
	}
}
