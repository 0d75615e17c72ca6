/* SPDX-License-Identifier: MIT */
/* filter_dnsbl: client address and sender domain blocklists over DNS. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <petrel/petrel.h>
#include <petrel/filter.h>
#include <petrel/resolver.h>

#include "dnsbl_cache.h"
#include "dnsbl_query.h"
#include "policy_net.h"

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

enum dnsbl_zone_type {
	DNSBL_ZONE_IP = 0,
	DNSBL_ZONE_DOMAIN = 1,
};

enum dnsbl_mode {
	DNSBL_MODE_SCORE = 0,
	DNSBL_MODE_FIRST_HIT = 1,
};

enum dnsbl_action {
	DNSBL_ACT_REJECT = 0,
	DNSBL_ACT_TEMPFAIL = 1,
	DNSBL_ACT_TAG = 2,
};

enum dnsbl_at {
	DNSBL_AT_CONNECT = 0,
	DNSBL_AT_RCPT = 1,
};

enum dnsbl_on_failure {
	DNSBL_FAIL_CONTINUE = 0,
	DNSBL_FAIL_TEMPFAIL = 1,
};

static const char *const dnsbl_type_names[] = {"ip", "domain", NULL};
static const char *const dnsbl_mode_names[] = {"score", "first_hit", NULL};
static const char *const dnsbl_action_names[] = {"reject", "tempfail", "tag",
                                                 NULL};
static const char *const dnsbl_at_names[] = {"connect", "rcpt", NULL};
static const char *const dnsbl_failure_names[] = {"continue", "tempfail", NULL};

struct dnsbl_zone_conf {
	const char *zone;
	int type; /* enum dnsbl_zone_type */
	int64_t weight;
	struct ptl_conf_list returns;
	const char *reason;
	bool txt;
	bool ipv4;
	bool ipv6;
};

struct dnsbl_conf {
	struct ptl_conf_list zones; /* struct dnsbl_zone_conf */
	int mode;
	int64_t threshold;
	int action;
	int reject_at;
	int on_failure;
	struct ptl_conf_list whitelist;
	struct ptl_conf_list roles;
	struct ptl_conf_list exempt_recipients;
	int64_t timeout;
	int64_t cache_size;
	int64_t cache_ttl;
	const char *header;
};

/* Zone names prefix a query of up to 64 bytes (IPv6) within 253. */
static int
dnsbl_validate_zone(const json_t *value, void *field, struct ptl_error *err)
{
	const char *zone = *(const char **)field;
	char name[DNSBL_NAME_MAX + 1];
	const char *p;

	if (zone == NULL)
		return PTL_OK;
	for (p = zone; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
		      *p == '.'))
			return ptl_error_set(
			    err, "\"%s\" is not a DNS zone name", zone);
	}
	if (strlen(zone) > DNSBL_NAME_MAX - 64 ||
	    dnsbl_query_name("x", zone, name, sizeof(name)) != PTL_OK)
		return ptl_error_set(err,
		                     "\"%s\" is not a DNS zone name of at "
		                     "most 189 characters",
		                     zone);
	return PTL_OK;
}

static int
dnsbl_validate_returns(const json_t *value, void *field, struct ptl_error *err)
{
	const struct ptl_conf_list *list = field;
	const char *const *items = list->items;
	struct dnsbl_range r;
	size_t i;

	for (i = 0; i < list->count; i++) {
		if (dnsbl_range_parse(items[i], &r, err) != PTL_OK)
			return PTL_ERROR;
	}
	return PTL_OK;
}

static int
dnsbl_validate_reason(const json_t *value, void *field, struct ptl_error *err)
{
	const char *tmpl = *(const char **)field;

	return tmpl == NULL ? PTL_OK : dnsbl_template_check(tmpl, err);
}

static int
dnsbl_validate_header(const json_t *value, void *field, struct ptl_error *err)
{
	const char *name = *(const char **)field;
	size_t i, n = name != NULL ? strlen(name) : 0;

	if (n == 0 || n > 76)
		return ptl_error_set(err, "a header field name of 1 to 76 "
		                          "characters");
	for (i = 0; i < n; i++) {
		if (name[i] <= ' ' || name[i] > '~' || name[i] == ':')
			return ptl_error_set(err,
			                     "\"%s\" is not a header "
			                     "field name",
			                     name);
	}
	return PTL_OK;
}

static const struct ptl_conf_key dnsbl_zone_keys[] = {
    {.name = "zone",
     .type = PTL_CONF_STRING,
     .flags = PTL_CONF_REQUIRED,
     .offset = offsetof(struct dnsbl_zone_conf, zone),
     .validate = dnsbl_validate_zone,
     .doc = "The list's DNS zone, e.g. \"zen.spamhaus.org\"."},
    {.name = "type",
     .type = PTL_CONF_ENUM,
     .offset = offsetof(struct dnsbl_zone_conf, type),
     .def = "ip",
     .enum_names = dnsbl_type_names,
     .doc = "\"ip\": client addresses (DNSBL); \"domain\": sender "
            "domains, asked at MAIL (RHSBL)."},
    {.name = "weight",
     .type = PTL_CONF_INT,
     .offset = offsetof(struct dnsbl_zone_conf, weight),
     .def = "1",
     .min = -1000,
     .max = 1000,
     .doc = "Added to the score when the list lists the client "
            "(negative: an allow list)."},
    {.name = "returns",
     .type = PTL_CONF_STRING_LIST,
     .offset = offsetof(struct dnsbl_zone_conf, returns),
     .def = "[]",
     .max = 64,
     .validate = dnsbl_validate_returns,
     .doc = "Answers that count: \"127.0.0.2\", \"127.0.0.4-127.0.0.11\", "
            "\"127.0.0.0/24\", \"&0.0.0.4\" (bit). Empty: 127.0.0.2 and "
            "up. 127.255.255.x never counts."},
    {.name = "reason",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct dnsbl_zone_conf, reason),
     .validate = dnsbl_validate_reason,
     .doc = "Reply text: %i address, %z zone, %d sender domain, %r "
            "answer, %t TXT record, %% a percent sign."},
    {.name = "txt",
     .type = PTL_CONF_BOOL,
     .offset = offsetof(struct dnsbl_zone_conf, txt),
     .def = "false",
     .doc = "Ask the TXT record of a listing, for %t."},
    {.name = "ipv4",
     .type = PTL_CONF_BOOL,
     .offset = offsetof(struct dnsbl_zone_conf, ipv4),
     .def = "true",
     .doc = "Ask this list about IPv4 clients."},
    {.name = "ipv6",
     .type = PTL_CONF_BOOL,
     .offset = offsetof(struct dnsbl_zone_conf, ipv6),
     .def = "true",
     .doc = "Ask this list about IPv6 clients."},
    {NULL},
};

static const struct ptl_conf_key dnsbl_conf_keys[] = {
    {.name = "zones",
     .type = PTL_CONF_OBJECT_LIST,
     .flags = PTL_CONF_REQUIRED,
     .offset = offsetof(struct dnsbl_conf, zones),
     .min = 1,
     .max = DNSBL_ZONES_MAX,
     .sub = dnsbl_zone_keys,
     .sub_size = sizeof(struct dnsbl_zone_conf),
     .doc = "The lists: {zone, type, weight, returns, reason, txt, ipv4, "
            "ipv6}, 1 to 32."},
    {.name = "mode",
     .type = PTL_CONF_ENUM,
     .offset = offsetof(struct dnsbl_conf, mode),
     .def = "score",
     .enum_names = dnsbl_mode_names,
     .doc = "\"score\": act when the weights of the listing lists reach "
            "threshold; \"first_hit\": act on any listing."},
    {.name = "threshold",
     .type = PTL_CONF_INT,
     .offset = offsetof(struct dnsbl_conf, threshold),
     .def = "1",
     .min = 1,
     .max = 100000,
     .doc = "Score at which the action is taken."},
    {.name = "action",
     .type = PTL_CONF_ENUM,
     .offset = offsetof(struct dnsbl_conf, action),
     .def = "reject",
     .enum_names = dnsbl_action_names,
     .doc = "\"reject\" (5xx), \"tempfail\" (4xx) or \"tag\" (add the "
            "header, accept)."},
    {.name = "reject_at",
     .type = PTL_CONF_ENUM,
     .offset = offsetof(struct dnsbl_conf, reject_at),
     .def = "connect",
     .enum_names = dnsbl_at_names,
     .doc = "\"connect\": refuse the connection; \"rcpt\": refuse each "
            "RCPT except exempt_recipients."},
    {.name = "on_failure",
     .type = PTL_CONF_ENUM,
     .offset = offsetof(struct dnsbl_conf, on_failure),
     .def = "continue",
     .enum_names = dnsbl_failure_names,
     .doc = "When a list cannot be asked (timeout, SERVFAIL): "
            "\"continue\" as if not listed, or \"tempfail\"."},
    {.name = "whitelist",
     .type = PTL_CONF_STRING_LIST,
     .offset = offsetof(struct dnsbl_conf, whitelist),
     .def = "[]",
     .validate = policy_validate_cidrs,
     .doc = "Client networks never looked up."},
    {.name = "roles",
     .type = PTL_CONF_STRING_LIST,
     .offset = offsetof(struct dnsbl_conf, roles),
     .def = "[\"mx\"]",
     .validate = policy_validate_roles,
     .doc = "Listener roles checked (empty: all)."},
    {.name = "exempt_recipients",
     .type = PTL_CONF_STRING_LIST,
     .offset = offsetof(struct dnsbl_conf, exempt_recipients),
     .def = "[\"postmaster\", \"abuse\"]",
     .doc = "With reject_at rcpt: recipients never refused: a local "
            "part (any domain) or a whole address."},
    {.name = "timeout",
     .type = PTL_CONF_DURATION,
     .offset = offsetof(struct dnsbl_conf, timeout),
     .def = "0",
     .min = 0,
     .max = 600000,
     .doc = "Longest wait for the lists (0: the smtp filter_timeout); "
            "then as on_failure."},
    {.name = "cache_size",
     .type = PTL_CONF_INT,
     .offset = offsetof(struct dnsbl_conf, cache_size),
     .def = "1024",
     .min = 0,
     .max = 1000000,
     .doc = "Client addresses whose results each process keeps (0: "
            "none; the resolver's cache still answers)."},
    {.name = "cache_ttl",
     .type = PTL_CONF_DURATION,
     .offset = offsetof(struct dnsbl_conf, cache_ttl),
     .def = "5m",
     .min = 0,
     .max = 86400000,
     .doc = "Longest time a result is kept (never beyond the DNS TTL)."},
    {.name = "header",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct dnsbl_conf, header),
     .def = "X-DNSBL",
     .validate = dnsbl_validate_header,
     .doc = "Header field added by action \"tag\"."},
    {NULL},
};

/* ---- state ---------------------------------------------------------- */

struct dnsbl_zone {
	const char *zone;
	int type;
	int64_t weight;
	struct dnsbl_range *ranges;
	size_t nranges;
	const char *reason;
	bool txt, ipv4, ipv6;
};

#define DNSBL_BUCKETS 1024

struct dnsbl_session;

struct dnsbl_state {
	const struct dnsbl_conf *conf;
	struct dnsbl_zone zones[DNSBL_ZONES_MAX];
	size_t nzones;
	bool has_domain_zones;
	struct policy_cidr *whitelist;
	size_t nwhitelist;
	struct ptl_filter_methods methods;
	/* Per process (set in init_worker). */
	const struct ptl_service *resolver;
	struct dnsbl_cache cache;
	struct dnsbl_session *sessions[DNSBL_BUCKETS];
	uint32_t error_warned; /* zones that answered 127.255.255.x */
};

enum dnsbl_zstate {
	DNSBL_Z_IDLE = 0, /* not asked (domain zone before MAIL) */
	DNSBL_Z_PENDING,
	DNSBL_Z_DONE,
	DNSBL_Z_FAILED,
	DNSBL_Z_SKIPPED, /* does not apply (IPv6, no sender domain) */
};

/* One lookup in flight: the completion's argument. */
struct dnsbl_lookup {
	struct dnsbl_session *s;
	struct ptl_dns_query *q;
	uint8_t zone;
	bool txt;
};

struct dnsbl_zres {
	struct dnsbl_lookup a, t;
	uint8_t state; /* enum dnsbl_zstate */
	bool txt_pending;
	uint32_t code; /* the listing answer (host order); 0: none */
	uint32_t ttl;
	char *txt; /* malloc'd */
};

enum dnsbl_outcome {
	DNSBL_PENDING = 0,
	DNSBL_CLEAN,
	DNSBL_LISTED,
	DNSBL_FAILED,
};

struct dnsbl_session {
	struct dnsbl_session *next;
	const void *key; /* the smtp session (the check's arg) */
	struct dnsbl_state *st;
	char id[48];
	char ip_text[POLICY_IP_TEXT_MAX];
	struct policy_ip ip;
	char rev[72];
	char domain[DNSBL_NAME_MAX + 1];
	bool from_cache, cached;
	bool logged_ip, logged_domain;
	struct dnsbl_zres z[DNSBL_ZONES_MAX];
	/* The suspended check, if any. */
	bool waiting;
	bool wait_domain;
	ptl_filter_done_fn done;
	void *done_arg;
	/* The verdict handed out (valid during check() or done()). */
	char text[DNSBL_TEXT_MAX + 1];
	char details[400];
	char result[256];
	struct ptl_filter_header header;
};

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

static int
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
		if (s != NULL || !policy_role_listed(&conf->roles, req->role) ||
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
static void
dnsbl_cancel(void *instance, void *arg)
{
	struct dnsbl_session *s = dnsbl_session_find(instance, arg);

	if (s != NULL)
		s->waiting = false;
}

static void
dnsbl_session_end(void *instance, void *arg)
{
	struct dnsbl_session *s = dnsbl_session_find(instance, arg);

	if (s != NULL)
		dnsbl_session_free(s);
}

/* ---- lifecycle ------------------------------------------------------ */

static int
dnsbl_check_config(struct ptl_instance *inst, const json_t *section,
                   void *conf_ptr, struct ptl_error *err)
{
	const struct dnsbl_conf *conf = conf_ptr;
	const struct dnsbl_zone_conf *zc = conf->zones.items;
	char path[64];
	size_t i;

	for (i = 0; i < conf->zones.count; i++) {
		(void)snprintf(path, sizeof(path), "zones[%zu].weight", i);
		if (conf->mode == DNSBL_MODE_FIRST_HIT && zc[i].weight < 0)
			return ptl_error_set_path(err, path,
			                          "negative weights need mode "
			                          "\"score\"");
	}
	return PTL_OK;
}

static int
dnsbl_init_master(struct ptl_instance *inst, struct ptl_error *err)
{
	struct ptl_pool *pool = ptl_instance_pool(inst);
	const struct dnsbl_conf *conf = ptl_instance_conf(inst);
	const struct dnsbl_zone_conf *zc = conf->zones.items;
	const char *const *texts;
	struct dnsbl_state *st;
	struct dnsbl_zone *z;
	size_t i, k;

	st = ptl_pcalloc(pool, sizeof(*st));
	if (st == NULL)
		return ptl_error_set(err, "out of memory");
	st->conf = conf;
	for (i = 0; i < conf->zones.count && i < DNSBL_ZONES_MAX; i++) {
		z = &st->zones[i];
		z->zone = zc[i].zone;
		z->type = zc[i].type;
		z->weight = zc[i].weight;
		z->txt = zc[i].txt;
		z->ipv4 = zc[i].ipv4;
		z->ipv6 = zc[i].ipv6;
		z->reason = zc[i].reason;
		if (z->reason == NULL)
			z->reason = z->type == DNSBL_ZONE_IP
			                ? "Client host %i is listed by %z"
			                : "Sender domain %d is listed by %z";
		if (z->type == DNSBL_ZONE_DOMAIN)
			st->has_domain_zones = true;
		z->nranges = zc[i].returns.count;
		if (z->nranges == 0)
			continue;
		z->ranges = ptl_pcalloc(pool, z->nranges * sizeof(*z->ranges));
		if (z->ranges == NULL)
			return ptl_error_set(err, "out of memory");
		texts = zc[i].returns.items;
		for (k = 0; k < z->nranges; k++) {
			if (dnsbl_range_parse(texts[k], &z->ranges[k], err) !=
			    PTL_OK)
				return PTL_ERROR;
		}
	}
	st->nzones = i;
	if (policy_cidr_list(pool, &conf->whitelist, &st->whitelist,
	                     &st->nwhitelist, err) != PTL_OK)
		return PTL_ERROR;
	st->methods.version = PTL_FILTER_VERSION;
	st->methods.hooks = PTL_FILTER_HOOK_BIT(PTL_FILTER_CONNECT);
	if (st->has_domain_zones || conf->action == DNSBL_ACT_TAG)
		st->methods.hooks |= PTL_FILTER_HOOK_BIT(PTL_FILTER_MAIL);
	if (conf->reject_at == DNSBL_AT_RCPT && conf->action != DNSBL_ACT_TAG)
		st->methods.hooks |= PTL_FILTER_HOOK_BIT(PTL_FILTER_RCPT);
	st->methods.flags =
	    conf->on_failure == DNSBL_FAIL_CONTINUE ? PTL_FILTER_FAIL_OPEN : 0;
	st->methods.timeout_ms = conf->timeout;
	st->methods.check = dnsbl_check;
	st->methods.cancel = dnsbl_cancel;
	st->methods.session_end = dnsbl_session_end;
	ptl_instance_set_data(inst, st);
	return ptl_service_register(inst,
	                            PTL_FILTER_SERVICE_PREFIX "filter_dnsbl",
	                            PTL_FILTER_VERSION, &st->methods, st, err);
}

static int
dnsbl_init_worker(struct ptl_instance *inst, struct ptl_error *err)
{
	struct dnsbl_state *st = ptl_instance_data(inst);
	uint64_t key[2];

	if (st == NULL)
		return PTL_OK;
	st->resolver =
	    ptl_service_find(PTL_RESOLVER_SERVICE, PTL_RESOLVER_VERSION);
	if (st->resolver == NULL)
		return ptl_error_set(err, "no \"%s\" service",
		                     PTL_RESOLVER_SERVICE);
	if (policy_random(key, sizeof(key), err) != PTL_OK)
		return PTL_ERROR;
	if (dnsbl_cache_init(&st->cache, (size_t)st->conf->cache_size, key) !=
	    PTL_OK)
		return ptl_error_set(err, "out of memory");
	return PTL_OK;
}

static void
dnsbl_exit_worker(struct ptl_instance *inst)
{
	struct dnsbl_state *st = ptl_instance_data(inst);
	size_t b;

	if (st == NULL)
		return;
	for (b = 0; st->resolver != NULL && b < DNSBL_BUCKETS; b++) {
		while (st->sessions[b] != NULL)
			dnsbl_session_free(st->sessions[b]);
	}
	dnsbl_cache_free(&st->cache);
}

static const struct ptl_service_ref dnsbl_provides[] = {
    {PTL_FILTER_SERVICE_PREFIX "filter_dnsbl", PTL_FILTER_VERSION},
    {NULL, 0},
};

static const struct ptl_service_ref dnsbl_needs[] = {
    {PTL_RESOLVER_SERVICE, PTL_RESOLVER_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "filter_dnsbl",
    .version = "1.0",
    .description = "DNS blocklists of client addresses and sender domains",
    .license = "MIT",
    .provides = dnsbl_provides,
    .needs = dnsbl_needs,
    .conf_keys = dnsbl_conf_keys,
    .conf_size = sizeof(struct dnsbl_conf),
    .check_config = dnsbl_check_config,
    .init_master = dnsbl_init_master,
    .init_worker = dnsbl_init_worker,
    .exit_worker = dnsbl_exit_worker,
};
