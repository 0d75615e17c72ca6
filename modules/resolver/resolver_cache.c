/* SPDX-License-Identifier: MIT */
/* The answer cache: TTL policy, hash table, LRU eviction within bounds. */
#include <stdlib.h>
#include <string.h>

#include "resolver_internal.h"

/*
 * Entries are in a hash table (chained, power-of-two buckets sized for
 * the entry bound) and on one LRU list, most recent first. Both bounds,
 * entries and bytes, are enforced on every insertion, so an attacker who
 * makes us resolve many names (SPF includes, DNSBL lookups of every
 * client) can push out older answers but never grow the process.
 */

struct cache_entry {
	struct cache_entry *chain; /* next in the bucket */
	struct cache_entry *newer, *older;
	struct resolver_answer *answer;
	int64_t expires_ms;
	uint32_t hash;
};

struct resolver_cache {
	struct cache_entry **buckets;
	size_t mask;
	size_t max_entries;
	size_t max_bytes;
	size_t count;
	size_t bytes;
	uint64_t evictions;
	struct cache_entry *newest, *oldest;
};

uint32_t
resolver_ttl_effective(const struct resolver_ttl_policy *policy,
                       const struct resolver_answer *a)
{
	uint32_t ttl = a->result.ttl;

	switch (a->result.status) {
	case PTL_DNS_OK:
		if (ttl < policy->min_ttl)
			ttl = policy->min_ttl;
		if (ttl > policy->max_ttl)
			ttl = policy->max_ttl;
		return ttl;
	case PTL_DNS_NXDOMAIN:
	case PTL_DNS_NODATA:
		if (!a->has_negative_ttl)
			return 0;
		return ttl < policy->negative_ttl ? ttl : policy->negative_ttl;
	case PTL_DNS_TEMPFAIL:
	case PTL_DNS_PERMFAIL:
		break;
	}
	return 0;
}

/* FNV-1a over the type and the name (names are already lower case). */
static uint32_t
cache_hash(enum ptl_dns_type type, const char *name)
{
	uint32_t h = 2166136261u;

	h = (h ^ (uint32_t)type) * 16777619u;
	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return h;
}

struct resolver_cache *
resolver_cache_new(size_t max_entries, size_t max_bytes)
{
	struct resolver_cache *cache;
	size_t nbuckets = 16;

	cache = calloc(1, sizeof(*cache));
	if (cache == NULL)
		return NULL;
	while (nbuckets < max_entries && nbuckets < ((size_t)1 << 24))
		nbuckets <<= 1;
	cache->buckets = calloc(nbuckets, sizeof(*cache->buckets));
	if (cache->buckets == NULL) {
		free(cache);
		return NULL;
	}
	cache->mask = nbuckets - 1;
	cache->max_entries = max_entries;
	cache->max_bytes = max_bytes;
	return cache;
}

static void
lru_unlink(struct resolver_cache *cache, struct cache_entry *e)
{
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		cache->newest = e->older;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		cache->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void
lru_push_newest(struct resolver_cache *cache, struct cache_entry *e)
{
	e->older = cache->newest;
	e->newer = NULL;
	if (cache->newest != NULL)
		cache->newest->newer = e;
	else
		cache->oldest = e;
	cache->newest = e;
}

static void
entry_remove(struct resolver_cache *cache, struct cache_entry *e)
{
	struct cache_entry **link = &cache->buckets[e->hash & cache->mask];

	while (*link != e)
		link = &(*link)->chain;
	*link = e->chain;
	lru_unlink(cache, e);
	cache->count--;
	cache->bytes -= e->answer->size;
	resolver_answer_unref(e->answer);
	free(e);
}

void
resolver_cache_free(struct resolver_cache *cache)
{
	if (cache == NULL)
		return;
	while (cache->oldest != NULL)
		entry_remove(cache, cache->oldest);
	free(cache->buckets);
	free(cache);
}

static struct cache_entry *
entry_find(const struct resolver_cache *cache, enum ptl_dns_type type,
           const char *name, uint32_t hash)
{
	struct cache_entry *e = cache->buckets[hash & cache->mask];

	for (; e != NULL; e = e->chain) {
		if (e->hash == hash && e->answer->result.type == type &&
		    strcmp(e->answer->result.name, name) == 0)
			return e;
	}
	return NULL;
}

struct resolver_answer *
resolver_cache_get(struct resolver_cache *cache, enum ptl_dns_type type,
                   const char *name, int64_t now_ms, uint32_t *remaining_out)
{
	uint32_t hash = cache_hash(type, name);
	struct cache_entry *e = entry_find(cache, type, name, hash);
	int64_t left;

	if (e == NULL)
		return NULL;
	left = e->expires_ms - now_ms;
	if (left <= 0) {
		entry_remove(cache, e);
		return NULL;
	}
	lru_unlink(cache, e);
	lru_push_newest(cache, e);
	*remaining_out = (uint32_t)((left + 999) / 1000);
	return e->answer;
}

int
resolver_cache_put(struct resolver_cache *cache, struct resolver_answer *a,
                   int64_t expires_ms)
{
	uint32_t hash = cache_hash(a->result.type, a->result.name);
	struct cache_entry *e;

	if (cache->max_entries == 0 ||
	    (cache->max_bytes > 0 && a->size > cache->max_bytes))
		return PTL_ERROR;
	e = entry_find(cache, a->result.type, a->result.name, hash);
	if (e != NULL)
		entry_remove(cache, e);
	/*
	 * Expired entries are only found on lookup; the oldest by use go
	 * first, which is where expired ones gather anyway.
	 */
	while (cache->count >= cache->max_entries ||
	       (cache->max_bytes > 0 &&
	        cache->bytes + a->size > cache->max_bytes)) {
		entry_remove(cache, cache->oldest);
		cache->evictions++;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return PTL_ERROR;
	resolver_answer_ref(a);
	e->answer = a;
	e->expires_ms = expires_ms;
	e->hash = hash;
	e->chain = cache->buckets[hash & cache->mask];
	cache->buckets[hash & cache->mask] = e;
	lru_push_newest(cache, e);
	cache->count++;
	cache->bytes += a->size;
	return PTL_OK;
}

size_t
resolver_cache_count(const struct resolver_cache *cache)
{
	return cache->count;
}

size_t
resolver_cache_bytes(const struct resolver_cache *cache)
{
	return cache->bytes;
}

uint64_t
resolver_cache_evictions(const struct resolver_cache *cache)
{
	return cache->evictions;
}
