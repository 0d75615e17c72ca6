/* SPDX-License-Identifier: MIT */
/* Rate limit arithmetic on one table slot: token bucket and windows. */
#include "ratelimit_algo.h"

/*
 * Token bucket in exact integers. Tokens are counted in units of
 * 1/window_ms: a full bucket holds burst * window_ms units, one event
 * costs window_ms units and every millisecond adds `limit` units (limit
 * tokens per window). With the bounds in the header no product exceeds
 * 1e6 * 6.05e8 = 6e14.
 *   val[0]: units in the bucket   val[1]: time of the last refill
 */
#define RL_B_UNITS 0
#define RL_B_LAST  1

/* Fixed window: val[0] start of the window, val[1] events in it. */
#define RL_F_START 0
#define RL_F_COUNT 1

/*
 * Sliding window, estimated from two fixed windows aligned on multiples
 * of the window: events in the previous window count in proportion to
 * how much of it is still inside the sliding window.
 *   val[0] start of the current window, val[1] events in it,
 *   val[2] events in the previous window.
 */
#define RL_S_START 0
#define RL_S_CUR   1
#define RL_S_PREV  2

static int64_t
rl_div_up(int64_t a, int64_t b)
{
	return (a + b - 1) / b;
}

static void
rl_bucket_refill(const struct rl_limit *l, struct policy_slot *s, bool fresh,
                 int64_t now)
{
	int64_t cap = l->burst * l->window_ms;
	int64_t elapsed;

	if (fresh) {
		s->val[RL_B_UNITS] = cap;
		s->val[RL_B_LAST] = now;
		return;
	}
	elapsed = now - s->val[RL_B_LAST];
	if (elapsed < 0)
		elapsed = 0;
	/* Past the time it takes to fill up, it is full: checked first so
	 * that elapsed * limit cannot overflow. */
	if (elapsed >= rl_div_up(cap - s->val[RL_B_UNITS], l->limit))
		s->val[RL_B_UNITS] = cap;
	else
		s->val[RL_B_UNITS] += elapsed * l->limit;
	s->val[RL_B_LAST] = now;
}

static void
rl_bucket_expiry(const struct rl_limit *l, struct policy_slot *s, int64_t now)
{
	int64_t cap = l->burst * l->window_ms;

	s->expires = now + rl_div_up(cap - s->val[RL_B_UNITS], l->limit);
	if (s->expires <= now)
		s->expires = now + 1;
}

static bool
rl_bucket_take(const struct rl_limit *l, struct policy_slot *s, bool fresh,
               int64_t now, int64_t *retry_ms_out)
{
	bool ok;

	rl_bucket_refill(l, s, fresh, now);
	ok = s->val[RL_B_UNITS] >= l->window_ms;
	if (ok)
		s->val[RL_B_UNITS] -= l->window_ms;
	else
		*retry_ms_out =
		    rl_div_up(l->window_ms - s->val[RL_B_UNITS], l->limit);
	rl_bucket_expiry(l, s, now);
	return ok;
}

static bool
rl_fixed_take(const struct rl_limit *l, struct policy_slot *s, bool fresh,
              int64_t now, int64_t *retry_ms_out)
{
	if (fresh || now >= s->val[RL_F_START] + l->window_ms ||
	    now < s->val[RL_F_START]) {
		s->val[RL_F_START] = now;
		s->val[RL_F_COUNT] = 0;
	}
	s->expires = s->val[RL_F_START] + l->window_ms;
	if (s->val[RL_F_COUNT] < l->limit) {
		s->val[RL_F_COUNT]++;
		return true;
	}
	*retry_ms_out = s->val[RL_F_START] + l->window_ms - now;
	return false;
}

static void
rl_sliding_roll(const struct rl_limit *l, struct policy_slot *s, bool fresh,
                int64_t now)
{
	int64_t start = now - now % l->window_ms;

	if (fresh || start < s->val[RL_S_START]) {
		s->val[RL_S_START] = start;
		s->val[RL_S_CUR] = 0;
		s->val[RL_S_PREV] = 0;
	} else if (start != s->val[RL_S_START]) {
		s->val[RL_S_PREV] = start - s->val[RL_S_START] == l->window_ms
		                        ? s->val[RL_S_CUR]
		                        : 0;
		s->val[RL_S_CUR] = 0;
		s->val[RL_S_START] = start;
	}
	s->expires = s->val[RL_S_START] + 2 * l->window_ms;
}

static bool
rl_sliding_take(const struct rl_limit *l, struct policy_slot *s, bool fresh,
                int64_t now, int64_t *retry_ms_out)
{
	int64_t w = l->window_ms, elapsed, prev, cur, room;

	rl_sliding_roll(l, s, fresh, now);
	elapsed = now - s->val[RL_S_START];
	prev = s->val[RL_S_PREV];
	cur = s->val[RL_S_CUR];
	/* prev * (w - elapsed) / w + cur + 1 <= limit, multiplied by w. */
	if (prev * (w - elapsed) + (cur + 1) * w <= l->limit * w) {
		s->val[RL_S_CUR]++;
		return true;
	}
	room = l->limit - cur - 1;
	if (room < 0 || prev == 0)
		*retry_ms_out = w - elapsed;
	else
		*retry_ms_out = w - room * w / prev - elapsed;
	if (*retry_ms_out <= 0)
		*retry_ms_out = 1;
	return false;
}

/*
 * Workers share a slot but each reads the clock once per loop turn, so
 * a worker may come with a time a little before the one another worker
 * just wrote. Taken at face value that looks like a clock gone back and
 * would restart the window (one event too many let through, seen with
 * two workers): within this margin the slot's time is used instead. A
 * bigger gap is a real jump (a slot kept from before a reboot, when the
 * monotonic clock started again) and restarts the window as before.
 */
#define RL_SKEW_MS 10000

static int64_t
rl_slot_time(const struct rl_limit *l, const struct policy_slot *s)
{
	switch (l->algo) {
	case RL_FIXED:
		return s->val[RL_F_START];
	case RL_SLIDING:
		return s->val[RL_S_START];
	default:
		return s->val[RL_B_LAST];
	}
}

static int64_t
rl_now(const struct rl_limit *l, const struct policy_slot *s, bool fresh,
       int64_t now)
{
	int64_t t = fresh ? now : rl_slot_time(l, s);

	return now < t && t - now <= RL_SKEW_MS ? t : now;
}

bool
rl_take(const struct rl_limit *l, struct policy_slot *slot, bool fresh,
        int64_t now, int64_t *retry_ms_out)
{
	*retry_ms_out = 0;
	now = rl_now(l, slot, fresh, now);
	switch (l->algo) {
	case RL_FIXED:
		return rl_fixed_take(l, slot, fresh, now, retry_ms_out);
	case RL_SLIDING:
		return rl_sliding_take(l, slot, fresh, now, retry_ms_out);
	default:
		return rl_bucket_take(l, slot, fresh, now, retry_ms_out);
	}
}

void
rl_give_back(const struct rl_limit *l, struct policy_slot *slot, int64_t now)
{
	int64_t cap = l->burst * l->window_ms;

	now = rl_now(l, slot, false, now);
	switch (l->algo) {
	case RL_FIXED:
		if (slot->val[RL_F_COUNT] > 0)
			slot->val[RL_F_COUNT]--;
		break;
	case RL_SLIDING:
		if (slot->val[RL_S_CUR] > 0)
			slot->val[RL_S_CUR]--;
		break;
	default:
		rl_bucket_refill(l, slot, false, now);
		slot->val[RL_B_UNITS] += l->window_ms;
		if (slot->val[RL_B_UNITS] > cap)
			slot->val[RL_B_UNITS] = cap;
		rl_bucket_expiry(l, slot, now);
		break;
	}
}
