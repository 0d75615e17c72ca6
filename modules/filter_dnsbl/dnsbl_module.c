/* SPDX-License-Identifier: MIT */
/* filter_dnsbl: client address and sender domain blocklists over DNS. */
#include <stdlib.h>
#include <string.h>

#include "dnsbl.h"

/*
 * Configuration in dnsbl_conf.c, sessions and lookups in dnsbl_session.c;
 * the per-process state (resolver, result cache, sessions) is set up
 * here.
 */

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

	if (st == NULL)
		return;
	dnsbl_sessions_free(st);
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
