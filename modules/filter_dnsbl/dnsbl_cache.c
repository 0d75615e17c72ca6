/* SPDX-License-Identifier: MIT */
/* Per-process cache of a client address's answers from every IP list. */
#include <stdlib.h>
#include <string.h>

#include "dnsbl_cache.h"

int
dnsbl_cache_init(struct dnsbl_cache *c, size_t entries, const uint64_t key[2])
{
	memset(c, 0, sizeof(*c));
	c->key[0] = key[0];
	c->key[1] = key[1];
	if (entries == 0)
		return PTL_OK;
	c->nsets = (entries + DNSBL_CACHE_WAYS - 1) / DNSBL_CACHE_WAYS;
	c->entries = calloc(c->nsets * DNSBL_CACHE_WAYS, sizeof(*c->entries));
	if (c->entries == NULL) {
		c->nsets = 0;
		return PTL_ERROR;
	}
	return PTL_OK;
}

void
dnsbl_cache_free(struct dnsbl_cache *c)
{
	free(c->entries);
	c->entries = NULL;
	c->nsets = 0;
}

static struct dnsbl_cache_entry *
dnsbl_cache_set(struct dnsbl_cache *c, const struct policy_ip *ip)
{
	uint64_t h = policy_siphash(c->key, ip, sizeof(*ip));

	return &c->entries[(h % c->nsets) * DNSBL_CACHE_WAYS];
}

static bool
dnsbl_same_ip(const struct policy_ip *a, const struct policy_ip *b)
{
	return a->family == b->family && memcmp(a->addr, b->addr, 16) == 0;
}

const struct dnsbl_cache_entry *
dnsbl_cache_get(struct dnsbl_cache *c, const struct policy_ip *ip, int64_t now)
{
	struct dnsbl_cache_entry *set;
	size_t i;

	if (c->nsets == 0)
		return NULL;
	set = dnsbl_cache_set(c, ip);
	for (i = 0; i < DNSBL_CACHE_WAYS; i++) {
		if (set[i].expires > now && dnsbl_same_ip(&set[i].ip, ip)) {
			c->hits++;
			return &set[i];
		}
	}
	c->misses++;
	return NULL;
}

void
dnsbl_cache_put(struct dnsbl_cache *c, const struct dnsbl_cache_entry *e,
                int64_t now)
{
	struct dnsbl_cache_entry *set, *victim = NULL;
	size_t i;

	if (c->nsets == 0 || e->expires <= now)
		return;
	set = dnsbl_cache_set(c, &e->ip);
	/* The address's own entry, else a free one, else the one closest
	 * to expiry. */
	for (i = 0; i < DNSBL_CACHE_WAYS && victim == NULL; i++) {
		if (set[i].expires > 0 && dnsbl_same_ip(&set[i].ip, &e->ip))
			victim = &set[i];
	}
	for (i = 0; i < DNSBL_CACHE_WAYS && victim == NULL; i++) {
		if (set[i].expires <= now)
			victim = &set[i];
	}
	if (victim == NULL) {
		victim = &set[0];
		for (i = 1; i < DNSBL_CACHE_WAYS; i++) {
			if (set[i].expires < victim->expires)
				victim = &set[i];
		}
	}
	*victim = *e;
}
