/* SPDX-License-Identifier: MIT */
/* Unit tests for the rate limit arithmetic: bucket, fixed and sliding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ratelimit_algo.h"

/* Take at @now from @s (fresh when its expiry has passed, as the table
 * would see it). */
static bool
take(const struct rl_limit *l, struct policy_slot *s, int64_t now,
     int64_t *retry)
{
	bool fresh = s->expires <= now;

	if (fresh)
		memset(s, 0, sizeof(*s));
	return rl_take(l, s, fresh, now, retry);
}

static void
test_bucket(void **state)
{
	/* 10 per minute, 3 at once. */
	const struct rl_limit l = {RL_BUCKET, 10, 3, 60000};
	struct policy_slot s;
	int64_t retry;

	memset(&s, 0, sizeof(s));
	assert_true(take(&l, &s, 1000, &retry));
	assert_true(take(&l, &s, 1000, &retry));
	assert_true(take(&l, &s, 1000, &retry));
	assert_false(take(&l, &s, 1000, &retry));
	/* One token every 6 s. */
	assert_int_equal(retry, 6000);
	assert_false(take(&l, &s, 6999, &retry));
	assert_int_equal(retry, 1);
	assert_true(take(&l, &s, 7000, &retry));
	assert_false(take(&l, &s, 7000, &retry));
	assert_int_equal(retry, 6000);
	/* Full again 18 s after it was empty; the slot expires then. */
	assert_int_equal(s.expires, 7000 + 18000);
	assert_true(take(&l, &s, 100000, &retry));
	assert_true(take(&l, &s, 100000, &retry));
	assert_true(take(&l, &s, 100000, &retry));
	assert_false(take(&l, &s, 100000, &retry));
	/* A refused event costs nothing: after 3 s half a token. */
	assert_false(take(&l, &s, 103000, &retry));
	assert_int_equal(retry, 3000);
}

static void
test_bucket_give_back(void **state)
{
	const struct rl_limit l = {RL_BUCKET, 1, 1, 3600000};
	struct policy_slot s;
	int64_t retry;

	memset(&s, 0, sizeof(s));
	assert_true(take(&l, &s, 5, &retry));
	assert_false(take(&l, &s, 5, &retry));
	rl_give_back(&l, &s, 5);
	assert_true(take(&l, &s, 5, &retry));
	/* Giving back never fills beyond the burst. */
	rl_give_back(&l, &s, 6);
	rl_give_back(&l, &s, 6);
	assert_true(take(&l, &s, 7, &retry));
	assert_false(take(&l, &s, 7, &retry));
}

/* The largest limits stay exact (no overflow in the arithmetic). */
static void
test_bucket_extremes(void **state)
{
	const struct rl_limit l = {RL_BUCKET, RL_LIMIT_MAX, RL_LIMIT_MAX,
	                           RL_WINDOW_MAX};
	const struct rl_limit slow = {RL_BUCKET, 1, RL_LIMIT_MAX,
	                              RL_WINDOW_MAX};
	struct policy_slot s;
	int64_t retry, now = 1000, i;

	memset(&s, 0, sizeof(s));
	for (i = 0; i < 1000; i++)
		assert_true(take(&l, &s, now, &retry));
	assert_true(s.val[0] > 0);
	/* Refilled (not fresh) after 50 years: full, not overflowed. */
	assert_true(
	    rl_take(&l, &s, false, now + 50LL * 365 * 86400000, &retry));
	assert_true(s.val[0] == (RL_LIMIT_MAX - 1) * RL_WINDOW_MAX);
	memset(&s, 0, sizeof(s));
	assert_true(take(&slow, &s, now, &retry));
	assert_true(s.expires == now + RL_WINDOW_MAX);
	assert_true(rl_take(&slow, &s, false, INT64_MAX / 4, &retry));
	assert_true(s.val[0] == (RL_LIMIT_MAX - 1) * RL_WINDOW_MAX);
}

static void
test_fixed(void **state)
{
	const struct rl_limit l = {RL_FIXED, 3, 3, 10000};
	struct policy_slot s;
	int64_t retry;

	memset(&s, 0, sizeof(s));
	assert_true(take(&l, &s, 500, &retry));
	assert_true(take(&l, &s, 600, &retry));
	assert_true(take(&l, &s, 9000, &retry));
	assert_false(take(&l, &s, 9000, &retry));
	assert_int_equal(retry, 1500); /* the window started at 500 */
	assert_int_equal(s.expires, 10500);
	assert_false(take(&l, &s, 10499, &retry));
	assert_int_equal(retry, 1);
	/* A new window at the end of the old one. */
	assert_true(take(&l, &s, 10500, &retry));
	assert_int_equal(s.expires, 20500);
	rl_give_back(&l, &s, 10500);
	assert_true(take(&l, &s, 10501, &retry));
	assert_true(take(&l, &s, 10502, &retry));
	assert_true(take(&l, &s, 10503, &retry));
	assert_false(take(&l, &s, 10504, &retry));
}

static void
test_sliding(void **state)
{
	/* 10 per 10 s, windows aligned on multiples of 10 s. */
	const struct rl_limit l = {RL_SLIDING, 10, 10, 10000};
	struct policy_slot s;
	int64_t retry;
	int i;

	memset(&s, 0, sizeof(s));
	for (i = 0; i < 10; i++)
		assert_true(take(&l, &s, 15000, &retry));
	assert_false(take(&l, &s, 15000, &retry));
	assert_int_equal(retry, 5000);
	/* At 22 s the previous window still weighs 80%: 8 of 10 used. */
	assert_true(take(&l, &s, 22000, &retry));
	assert_true(take(&l, &s, 22000, &retry));
	assert_false(take(&l, &s, 22000, &retry));
	/* Room again once the old window weighs 7: at 23 s. */
	assert_int_equal(retry, 1000);
	assert_true(take(&l, &s, 23000, &retry));
	assert_false(take(&l, &s, 23000, &retry));
	/* Two windows later everything is forgotten. */
	assert_int_equal(s.expires, 40000);
	for (i = 0; i < 10; i++)
		assert_true(take(&l, &s, 40000, &retry));
	/* A window skipped: the previous one does not count. */
	memset(&s, 0, sizeof(s));
	for (i = 0; i < 10; i++)
		assert_true(take(&l, &s, 1000, &retry));
	s.expires = 100000; /* keep the slot, as if still live */
	for (i = 0; i < 10; i++)
		assert_true(take(&l, &s, 25000, &retry));
}

/*
 * Two workers share a slot, each with the time of its own loop turn: one
 * a few milliseconds behind the other must not restart the window or
 * refill the bucket (one connection too many got through with two
 * workers). A jump far back (a slot from before a reboot) still resets.
 */
static void
test_time_skew_between_workers(void **state)
{
	const struct rl_limit fixed = {RL_FIXED, 3, 3, 600000};
	const struct rl_limit sliding = {RL_SLIDING, 3, 3, 600000};
	const struct rl_limit bucket = {RL_BUCKET, 3, 3, 600000};
	struct policy_slot s;
	int64_t retry;

	memset(&s, 0, sizeof(s));
	assert_true(take(&fixed, &s, 1000005, &retry));
	assert_true(take(&fixed, &s, 1000001, &retry)); /* 4 ms behind */
	assert_true(take(&fixed, &s, 1000006, &retry));
	assert_false(take(&fixed, &s, 1000002, &retry));
	assert_false(take(&fixed, &s, 1000007, &retry));
	/* Far back: a new window. */
	assert_true(take(&fixed, &s, 500, &retry));

	memset(&s, 0, sizeof(s));
	assert_true(take(&sliding, &s, 1200000, &retry)); /* window start */
	assert_true(take(&sliding, &s, 1199999, &retry)); /* 1 ms before */
	assert_true(take(&sliding, &s, 1200001, &retry));
	assert_false(take(&sliding, &s, 1199998, &retry));

	memset(&s, 0, sizeof(s));
	assert_true(take(&bucket, &s, 1000010, &retry));
	assert_true(take(&bucket, &s, 1000000, &retry));
	assert_true(take(&bucket, &s, 1000010, &retry));
	/* The 10 ms "gained" going back and forth refill nothing. */
	assert_false(take(&bucket, &s, 1000010, &retry));
	assert_int_equal(retry, 200000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bucket),
	    cmocka_unit_test(test_bucket_give_back),
	    cmocka_unit_test(test_bucket_extremes),
	    cmocka_unit_test(test_fixed),
	    cmocka_unit_test(test_sliding),
	    cmocka_unit_test(test_time_skew_between_workers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
