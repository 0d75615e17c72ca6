/* SPDX-License-Identifier: MIT */
/* Per-process cache of a client address's answers from every IP list. */
#ifndef PETREL_DNSBL_CACHE_H
#define PETREL_DNSBL_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsbl_query.h"
#include "policy_net.h"

/*
 * The resolver already caches every answer per its TTL; this cache keeps
 * the outcome of all the IP lists for one address in one entry, so that
 * a client that connects again is decided at once (a synchronous
 * verdict, no lookup and no deferred completion per list). It is small,
 * set-associative and bounded: sets of DNSBL_CACHE_WAYS entries, the
 * entry closest to expiry replaced.
 */

#define DNSBL_CACHE_WAYS 4

/** What is known of one address. */
struct dnsbl_cache_entry {
	struct policy_ip ip;
	int64_t expires; /* monotonic ms; 0: empty */
	/** Answer code of each zone that lists it (host order); 0: not
	 *  listed (or not an IP zone). */
	uint32_t codes[DNSBL_ZONES_MAX];
	uint8_t txt_zone; /* zone whose TXT is kept, when txt[0] */
	char txt[DNSBL_TEXT_MAX + 1];
};

struct dnsbl_cache {
	struct dnsbl_cache_entry *entries;
	size_t nsets;
	uint64_t key[2]; /* hash key: addresses are chosen by clients */
	uint64_t hits, misses;
};

/**
 * Make a cache of about @p entries entries (0: no cache). @return PTL_OK
 * or PTL_ERROR (out of memory).
 */
int dnsbl_cache_init(struct dnsbl_cache *c, size_t entries,
                     const uint64_t key[2]);

/** Free the entries. */
void dnsbl_cache_free(struct dnsbl_cache *c);

/** The live entry of @p ip at @p now, or NULL. */
const struct dnsbl_cache_entry *
dnsbl_cache_get(struct dnsbl_cache *c, const struct policy_ip *ip, int64_t now);

/** Store a copy of @p e (its ip and expiry set by the caller). */
void dnsbl_cache_put(struct dnsbl_cache *c, const struct dnsbl_cache_entry *e,
                     int64_t now);

#endif
