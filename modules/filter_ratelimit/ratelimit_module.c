/* SPDX-License-Identifier: MIT */
/* filter_ratelimit: connection, message and recipient rates, all workers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <petrel/petrel.h>
#include <petrel/filter.h>

#include "policy_net.h"
#include "policy_table.h"
#include "ratelimit_algo.h"

/*
 * Every limit is counted in one table shared by all the workers
 * (policy_table.c): the master maps it before it forks, so N workers
 * count against one limit, and a respawned worker finds the counts it
 * left. On a reload with the same `slots` the new generation takes the
 * old table over (reload callback), so counts survive reloads too.
 */

enum rl_key_kind {
	RL_KEY_IP = 0,
	RL_KEY_USER = 1,
	RL_KEY_SENDER = 2,
};

enum rl_count_kind {
	RL_COUNT_CONNECTIONS = 0,
	RL_COUNT_MESSAGES = 1,
	RL_COUNT_RECIPIENTS = 2,
};

static const char *const rl_key_names[] = {"ip", "user", "sender", NULL};
static const char *const rl_count_names[] = {"connections", "messages",
                                             "recipients", NULL};
static const char *const rl_algo_names[] = {"bucket", "fixed", "sliding", NULL};
static const char *const rl_key_words[] = {"client address", "user", "sender"};

/* At most this many limits: each is one table update per event. */
#define RL_RULES_MAX 32

struct rl_rule_conf {
	const char *name;
	int key;   /* enum rl_key_kind */
	int count; /* enum rl_count_kind */
	int64_t limit;
	int64_t burst;
	int64_t window; /* ms */
	int algo;       /* enum rl_algo */
};

struct rl_conf {
	struct ptl_conf_list limits; /* struct rl_rule_conf */
	int64_t slots;
	struct ptl_conf_list whitelist;
	struct ptl_conf_list roles;
	bool skip_trusted;
	bool fail_open;
	int64_t ipv4_prefix;
	int64_t ipv6_prefix;
};

static const struct ptl_conf_key rl_rule_keys[] = {
    {.name = "name",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct rl_rule_conf, name),
     .doc = "Name of the limit in log lines (default: rule N)."},
    {.name = "key",
     .type = PTL_CONF_ENUM,
     .flags = PTL_CONF_REQUIRED,
     .offset = offsetof(struct rl_rule_conf, key),
     .enum_names = rl_key_names,
     .doc = "What is counted separately: \"ip\" (client address or "
            "network), \"user\" (authenticated user), \"sender\" "
            "(envelope sender)."},
    {.name = "count",
     .type = PTL_CONF_ENUM,
     .flags = PTL_CONF_REQUIRED,
     .offset = offsetof(struct rl_rule_conf, count),
     .enum_names = rl_count_names,
     .doc = "What is limited: \"connections\" (key ip only), "
            "\"messages\" (MAIL commands), \"recipients\" (RCPT)."},
    {.name = "limit",
     .type = PTL_CONF_INT,
     .flags = PTL_CONF_REQUIRED,
     .offset = offsetof(struct rl_rule_conf, limit),
     .min = 1,
     .max = RL_LIMIT_MAX,
     .doc = "Events allowed per window."},
    {.name = "window",
     .type = PTL_CONF_DURATION,
     .flags = PTL_CONF_REQUIRED,
     .offset = offsetof(struct rl_rule_conf, window),
     .min = 100,
     .max = RL_WINDOW_MAX,
     .doc = "Length of the window (100ms..7d)."},
    {.name = "algorithm",
     .type = PTL_CONF_ENUM,
     .offset = offsetof(struct rl_rule_conf, algo),
     .def = "bucket",
     .enum_names = rl_algo_names,
     .doc = "\"bucket\" (token bucket), \"fixed\" or \"sliding\" "
            "window."},
    {.name = "burst",
     .type = PTL_CONF_INT,
     .offset = offsetof(struct rl_rule_conf, burst),
     .def = "0",
     .min = 0,
     .max = RL_LIMIT_MAX,
     .doc = "Bucket size: events allowed at once (0: limit). Bucket "
            "only."},
    {NULL},
};

static const struct ptl_conf_key rl_conf_keys[] = {
    {.name = "limits",
     .type = PTL_CONF_OBJECT_LIST,
     .flags = PTL_CONF_REQUIRED,
     .offset = offsetof(struct rl_conf, limits),
     .min = 1,
     .max = RL_RULES_MAX,
     .sub = rl_rule_keys,
     .sub_size = sizeof(struct rl_rule_conf),
     .doc = "The limits: {key, count, limit, window, algorithm, burst, "
            "name}, 1 to 32."},
    {.name = "slots",
     .type = PTL_CONF_INT,
     .offset = offsetof(struct rl_conf, slots),
     .def = "65536",
     .min = 1024,
     .max = POLICY_TABLE_MAX_SLOTS,
     .doc = "Entries in the shared table (64 bytes each)."},
    {.name = "whitelist",
     .type = PTL_CONF_STRING_LIST,
     .offset = offsetof(struct rl_conf, whitelist),
     .def = "[]",
     .validate = policy_validate_cidrs,
     .doc = "Client networks never limited (\"192.0.2.0/24\", "
            "\"2001:db8::/32\")."},
    {.name = "roles",
     .type = PTL_CONF_STRING_LIST,
     .offset = offsetof(struct rl_conf, roles),
     .def = "[]",
     .validate = ptl_filter_validate_roles,
     .doc = "Listener roles limited (empty: all)."},
    {.name = "skip_trusted",
     .type = PTL_CONF_BOOL,
     .offset = offsetof(struct rl_conf, skip_trusted),
     .def = "true",
     .doc = "Never limit clients in the smtp trusted_networks."},
    {.name = "fail_open",
     .type = PTL_CONF_BOOL,
     .offset = offsetof(struct rl_conf, fail_open),
     .def = "true",
     .doc = "When the table cannot be locked, let the command pass."},
    {.name = "ipv4_prefix",
     .type = PTL_CONF_INT,
     .offset = offsetof(struct rl_conf, ipv4_prefix),
     .def = "32",
     .min = 8,
     .max = 32,
     .doc = "IPv4 clients are counted per network of this length."},
    {.name = "ipv6_prefix",
     .type = PTL_CONF_INT,
     .offset = offsetof(struct rl_conf, ipv6_prefix),
     .def = "64",
     .min = 16,
     .max = 128,
     .doc = "IPv6 clients are counted per network of this length."},
    {NULL},
};

/* ---- state ---------------------------------------------------------- */

/* The master's handle on a table, shared between generations. */
struct rl_shared {
	struct policy_table *table;
	unsigned refs;
};

struct rl_rule {
	struct rl_limit lim;
	int key;
	int count;
	char name[48];
	char ident[96];   /* hashed with the key: which counter */
	char summary[96]; /* "5 connections per 1m per client address" */
};

struct rl_state {
	const struct rl_conf *conf;
	struct rl_rule rules[RL_RULES_MAX];
	size_t nrules;
	struct policy_cidr *whitelist;
	size_t nwhitelist;
	struct rl_shared *shared;
	struct ptl_filter_methods methods;
	char text[200]; /* reply text of the verdict being returned */
};

static void
rl_format_window(int64_t ms, char *out, size_t size)
{
	if (ms % 86400000 == 0)
		(void)snprintf(out, size, "%lldd", (long long)(ms / 86400000));
	else if (ms % 3600000 == 0)
		(void)snprintf(out, size, "%lldh", (long long)(ms / 3600000));
	else if (ms % 60000 == 0)
		(void)snprintf(out, size, "%lldm", (long long)(ms / 60000));
	else if (ms % 1000 == 0)
		(void)snprintf(out, size, "%llds", (long long)(ms / 1000));
	else
		(void)snprintf(out, size, "%lldms", (long long)ms);
}

static void
rl_rule_build(struct rl_rule *r, const struct rl_rule_conf *rc, size_t index)
{
	char window[32];

	memset(r, 0, sizeof(*r));
	r->lim.algo = rc->algo;
	r->lim.limit = rc->limit;
	r->lim.burst = rc->burst > 0 ? rc->burst : rc->limit;
	r->lim.window_ms = rc->window;
	r->key = rc->key;
	r->count = rc->count;
	if (rc->name != NULL)
		(void)snprintf(r->name, sizeof(r->name), "%s", rc->name);
	else
		(void)snprintf(r->name, sizeof(r->name), "rule %zu", index + 1);
	/*
	 * The counter is named by what it means, not by its position:
	 * after a reload that reorders the limits each keeps its counts,
	 * and a changed limit starts a new counter.
	 */
	(void)snprintf(r->ident, sizeof(r->ident), "%s/%s/%s/%lld/%lld/%lld",
	               rl_key_names[r->key], rl_count_names[r->count],
	               rl_algo_names[r->lim.algo], (long long)r->lim.limit,
	               (long long)r->lim.burst, (long long)r->lim.window_ms);
	rl_format_window(r->lim.window_ms, window, sizeof(window));
	(void)snprintf(r->summary, sizeof(r->summary), "%lld %s per %s per %s",
	               (long long)r->lim.limit, rl_count_names[r->count],
	               window, rl_key_words[r->key]);
}

static int
rl_check_config(struct ptl_instance *inst, const json_t *section,
                void *conf_ptr, struct ptl_error *err)
{
	const struct rl_conf *conf = conf_ptr;
	const struct rl_rule_conf *rc = conf->limits.items;
	struct rl_rule a, b;
	char path[64];
	size_t i, j;

	for (i = 0; i < conf->limits.count; i++) {
		(void)snprintf(path, sizeof(path), "limits[%zu]", i);
		if (rc[i].count == RL_COUNT_CONNECTIONS &&
		    rc[i].key != RL_KEY_IP)
			return ptl_error_set_path(
			    err, path,
			    "connections can only be "
			    "counted per \"ip\": user and "
			    "sender are not known yet");
		if (rc[i].burst > 0 && rc[i].algo != RL_BUCKET)
			return ptl_error_set_path(err, path,
			                          "\"burst\" applies to the "
			                          "\"bucket\" algorithm only");
		rl_rule_build(&a, &rc[i], i);
		for (j = 0; j < i; j++) {
			rl_rule_build(&b, &rc[j], j);
			if (strcmp(a.ident, b.ident) == 0)
				return ptl_error_set_path(
				    err, path, "same limit as limits[%zu]", j);
		}
	}
	return PTL_OK;
}

/* ---- the filter ----------------------------------------------------- */

struct rl_take_ctx {
	const struct rl_limit *lim;
	int64_t now;
	int64_t retry_ms;
	bool allowed;
};

static void
rl_take_fn(struct policy_slot *slot, bool fresh, void *arg)
{
	struct rl_take_ctx *ctx = arg;

	ctx->allowed = rl_take(ctx->lim, slot, fresh, ctx->now, &ctx->retry_ms);
}

static void
rl_give_back_fn(struct policy_slot *slot, bool fresh, void *arg)
{
	struct rl_take_ctx *ctx = arg;

	rl_give_back(ctx->lim, slot, ctx->now);
}

/* The value a rule counts under; false when it does not apply. */
static bool
rl_rule_value(const struct rl_state *st, const struct rl_rule *r,
              const struct ptl_filter_request *req, const struct policy_ip *ip,
              char *out, size_t size)
{
	struct policy_ip net;

	switch (r->key) {
	case RL_KEY_IP:
		net = *ip;
		policy_ip_mask(&net, (unsigned)st->conf->ipv4_prefix,
		               (unsigned)st->conf->ipv6_prefix);
		(void)policy_ip_format(&net,
		                       net.family == AF_INET
		                           ? (unsigned)st->conf->ipv4_prefix
		                           : (unsigned)st->conf->ipv6_prefix,
		                       out, size);
		return true;
	case RL_KEY_USER:
		if (req->auth_user == NULL || req->auth_user[0] == '\0')
			return false;
		(void)policy_lower(out, size, req->auth_user);
		return true;
	default:
		/* Bounces (<>) come from many senders at once: the ip
		 * limits cover them. */
		if (req->mail_from == NULL || req->mail_from[0] == '\0')
			return false;
		(void)policy_lower(out, size, req->mail_from);
		return true;
	}
}

static void
rl_refuse(struct rl_state *st, const struct ptl_filter_request *req,
          const struct rl_rule *r, const char *value, int64_t retry_ms,
          struct ptl_filter_verdict *v)
{
	long long retry_s = (long long)((retry_ms + 999) / 1000);
	char esc[160];

	if (retry_s < 1)
		retry_s = 1;
	ptl_log(PTL_LOG_NOTICE,
	        "[c %s] ratelimit: %s: over %s for %s; retry in %lld s",
	        req->session_id != NULL ? req->session_id : "-", r->name,
	        r->summary,
	        ptl_log_escape(esc, sizeof(esc), value, strlen(value)),
	        retry_s);
	(void)snprintf(st->text, sizeof(st->text),
	               "Rate limit exceeded (%s), try again in %lld seconds",
	               r->summary, retry_s);
	memset(v, 0, sizeof(*v));
	v->action = PTL_FILTER_TEMPFAIL;
	v->code = 451; /* 421 on connect: the session closes */
	v->enhanced = "4.7.1";
	v->text = st->text;
	v->result = "ratelimit=exceeded";
}

static int
rl_check(void *instance, const struct ptl_filter_request *req,
         struct ptl_filter_verdict *verdict_out, ptl_filter_done_fn done,
         void *arg)
{
	struct rl_state *st = instance;
	struct policy_table *table = st->shared->table;
	uint64_t keys[RL_RULES_MAX][2];
	size_t taken[RL_RULES_MAX], ntaken = 0, i, len;
	struct rl_take_ctx ctx;
	struct ptl_error err;
	struct policy_ip ip;
	char buf[600];
	int count, rc;

	memset(verdict_out, 0, sizeof(*verdict_out));
	verdict_out->action = PTL_FILTER_CONTINUE;
	switch (req->hook) {
	case PTL_FILTER_CONNECT:
		count = RL_COUNT_CONNECTIONS;
		break;
	case PTL_FILTER_MAIL:
		count = RL_COUNT_MESSAGES;
		break;
	case PTL_FILTER_RCPT:
		count = RL_COUNT_RECIPIENTS;
		break;
	default:
		return PTL_OK;
	}
	if (!ptl_filter_role_listed(&st->conf->roles, req->role) ||
	    (st->conf->skip_trusted && req->trusted) ||
	    policy_ip_parse(req->peer_ip, &ip) != PTL_OK ||
	    policy_cidr_match(st->whitelist, st->nwhitelist, &ip))
		return PTL_OK;
	ctx.now = ptl_now_ms();
	for (i = 0; i < st->nrules; i++) {
		const struct rl_rule *r = &st->rules[i];

		if (r->count != count)
			continue;
		len = strlen(r->ident);
		memcpy(buf, r->ident, len + 1);
		if (!rl_rule_value(st, r, req, &ip, buf + len + 1,
		                   sizeof(buf) - len - 1))
			continue;
		policy_table_key(table, buf, len + 1 + strlen(buf + len + 1),
		                 keys[i]);
		ctx.lim = &r->lim;
		rc = policy_table_update(table, keys[i], ctx.now, true,
		                         rl_take_fn, &ctx, &err);
		if (rc != PTL_OK || !ctx.allowed) {
			/* All or nothing: what the earlier limits counted for
			 * this event is given back. */
			while (ntaken > 0) {
				size_t k = taken[--ntaken];

				ctx.lim = &st->rules[k].lim;
				(void)policy_table_update(
				    table, keys[k], ctx.now, false,
				    rl_give_back_fn, &ctx, &err);
			}
		}
		if (rc != PTL_OK) {
			ptl_log(PTL_LOG_ERROR, "[c %s] ratelimit: %s",
			        req->session_id != NULL ? req->session_id : "-",
			        err.text);
			return PTL_ERROR;
		}
		if (!ctx.allowed) {
			rl_refuse(st, req, r, buf + len + 1, ctx.retry_ms,
			          verdict_out);
			return PTL_OK;
		}
		taken[ntaken++] = i;
	}
	return PTL_OK;
}

/* Never asynchronous: nothing to cancel. */
static void
rl_cancel(void *instance, void *arg)
{
}

/* ---- lifecycle ------------------------------------------------------ */

static void
rl_shared_release(struct rl_shared *sh)
{
	if (sh == NULL || --sh->refs > 0)
		return;
	policy_table_free(sh->table);
	free(sh);
}

static void
rl_pool_release(void *arg)
{
	struct rl_state *st = arg;

	rl_shared_release(st->shared);
	st->shared = NULL;
}

static int
rl_init_master(struct ptl_instance *inst, struct ptl_error *err)
{
	struct ptl_pool *pool = ptl_instance_pool(inst);
	const struct rl_conf *conf = ptl_instance_conf(inst);
	const struct rl_rule_conf *rc = conf->limits.items;
	struct rl_state *st;
	size_t i;

	st = ptl_pcalloc(pool, sizeof(*st));
	if (st == NULL)
		return ptl_error_set(err, "out of memory");
	st->conf = conf;
	for (i = 0; i < conf->limits.count && i < RL_RULES_MAX; i++) {
		rl_rule_build(&st->rules[i], &rc[i], i);
		st->methods.hooks |= PTL_FILTER_HOOK_BIT(
		    st->rules[i].count == RL_COUNT_CONNECTIONS
		        ? PTL_FILTER_CONNECT
		    : st->rules[i].count == RL_COUNT_MESSAGES
		        ? PTL_FILTER_MAIL
		        : PTL_FILTER_RCPT);
	}
	st->nrules = i;
	if (policy_cidr_list(pool, &conf->whitelist, &st->whitelist,
	                     &st->nwhitelist, err) != PTL_OK)
		return PTL_ERROR;
	st->shared = calloc(1, sizeof(*st->shared));
	if (st->shared == NULL)
		return ptl_error_set(err, "out of memory");
	st->shared->refs = 1;
	if (policy_table_anon((uint64_t)conf->slots, "ratelimit",
	                      &st->shared->table, err) != PTL_OK) {
		free(st->shared);
		st->shared = NULL;
		return PTL_ERROR;
	}
	if (ptl_pool_cleanup_add(pool, rl_pool_release, st) != PTL_OK) {
		rl_shared_release(st->shared);
		st->shared = NULL;
		return ptl_error_set(err, "out of memory");
	}
	st->methods.version = PTL_FILTER_VERSION;
	st->methods.flags = conf->fail_open ? PTL_FILTER_FAIL_OPEN : 0;
	st->methods.check = rl_check;
	st->methods.cancel = rl_cancel;
	ptl_instance_set_data(inst, st);
	return ptl_service_register(
	    inst, PTL_FILTER_SERVICE_PREFIX "filter_ratelimit",
	    PTL_FILTER_VERSION, &st->methods, st, err);
}

/*
 * The new generation's init_master made a fresh table; when the old one
 * has the same size, the new generation uses the old one instead, so
 * counts go on. Old workers still draining and new workers then share
 * it (one set of locks). The handle is reference-counted so that
 * whichever generation is dropped first leaves it to the other.
 */
static int
rl_reload(struct ptl_instance *old_inst, struct ptl_instance *new_inst,
          struct ptl_error *err)
{
	struct rl_state *old = ptl_instance_data(old_inst);
	struct rl_state *st = ptl_instance_data(new_inst);

	if (old == NULL || st == NULL || old->shared == NULL ||
	    st->shared == NULL)
		return PTL_OK;
	if (old->shared->table->nslots != st->shared->table->nslots) {
		ptl_log(PTL_LOG_NOTICE,
		        "ratelimit: table size changed (%llu -> %llu slots): "
		        "counts start afresh",
		        (unsigned long long)old->shared->table->nslots,
		        (unsigned long long)st->shared->table->nslots);
		return PTL_OK;
	}
	rl_shared_release(st->shared);
	st->shared = old->shared;
	st->shared->refs++;
	ptl_log(PTL_LOG_INFO, "ratelimit: counts carried over to the new "
	                      "generation");
	return PTL_OK;
}

static const struct ptl_service_ref rl_provides[] = {
    {PTL_FILTER_SERVICE_PREFIX "filter_ratelimit", PTL_FILTER_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "filter_ratelimit",
    .version = "1.0",
    .description = "rate limits per client, user and sender, shared by "
                   "all workers",
    .license = "MIT",
    .provides = rl_provides,
    .conf_keys = rl_conf_keys,
    .conf_size = sizeof(struct rl_conf),
    .check_config = rl_check_config,
    .init_master = rl_init_master,
    .reload = rl_reload,
};
