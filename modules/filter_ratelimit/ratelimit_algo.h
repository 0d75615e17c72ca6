/* SPDX-License-Identifier: MIT */
/* Rate limit arithmetic on one table slot: token bucket and windows. */
#ifndef PETREL_RATELIMIT_ALGO_H
#define PETREL_RATELIMIT_ALGO_H

#include <stdbool.h>
#include <stdint.h>

#include "policy_table.h"

/** How a limit counts (index in the config's enum names). */
enum rl_algo {
	RL_BUCKET = 0,  /* token bucket: `burst` at once, `limit` per window */
	RL_FIXED = 1,   /* `limit` per window that starts at the first event */
	RL_SLIDING = 2, /* `limit` per window that ends now (estimated) */
};

/** Bounds the arithmetic is exact within. */
#define RL_LIMIT_MAX  1000000
#define RL_WINDOW_MAX (7LL * 24 * 3600 * 1000) /* ms */

/** One limit: at most `limit` events per `window_ms`. */
struct rl_limit {
	int algo;          /* enum rl_algo */
	int64_t limit;     /* 1..RL_LIMIT_MAX */
	int64_t burst;     /* bucket size; 1..RL_LIMIT_MAX */
	int64_t window_ms; /* 1..RL_WINDOW_MAX */
};

/**
 * Take one event from @p slot at monotonic time @p now (ms). @p fresh: a
 * new slot (all zero). Sets slot->expires to when the slot would be the
 * same as a fresh one.
 * @return true when allowed (and counted); false when over the limit
 * (nothing counted), with *@p retry_ms_out the wait until one would be.
 */
bool rl_take(const struct rl_limit *l, struct policy_slot *slot, bool fresh,
             int64_t now, int64_t *retry_ms_out);

/** Undo one rl_take() that returned true (another limit refused). */
void rl_give_back(const struct rl_limit *l, struct policy_slot *slot,
                  int64_t now);

#endif
