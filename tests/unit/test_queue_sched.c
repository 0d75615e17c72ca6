/* SPDX-License-Identifier: MIT */
/* Unit tests for queue scheduling arithmetic: backoff, expiry, reports. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <petrel/queue.h>

#include "queue_sched.h"

#define MIN_MS  ((int64_t)60 * 1000)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS  (24 * HOUR_MS)

static const struct queue_policy policy = {
    .backoff_min = 5 * MIN_MS,
    .backoff_max = 4 * HOUR_MS,
    .lifetime = 5 * DAY_MS,
    .delay_warning = 4 * HOUR_MS,
};

static void
test_backoff(void **state)
{
	assert_int_equal(queue_backoff_ms(&policy, 0), 0);
	assert_int_equal(queue_backoff_ms(&policy, 1), 5 * MIN_MS);
	assert_int_equal(queue_backoff_ms(&policy, 2), 10 * MIN_MS);
	assert_int_equal(queue_backoff_ms(&policy, 3), 20 * MIN_MS);
	assert_int_equal(queue_backoff_ms(&policy, 4), 40 * MIN_MS);
	assert_int_equal(queue_backoff_ms(&policy, 5), 80 * MIN_MS);
	assert_int_equal(queue_backoff_ms(&policy, 6), 160 * MIN_MS);
	assert_int_equal(queue_backoff_ms(&policy, 7), 4 * HOUR_MS);
	assert_int_equal(queue_backoff_ms(&policy, 8), 4 * HOUR_MS);
	assert_int_equal(queue_backoff_ms(&policy, UINT32_MAX), 4 * HOUR_MS);
	{
		/* A ceiling that is no power-of-two multiple of the floor. */
		struct queue_policy odd = {.backoff_min = 3000,
		                           .backoff_max = 10000};

		assert_int_equal(queue_backoff_ms(&odd, 2), 6000);
		assert_int_equal(queue_backoff_ms(&odd, 3), 10000);
		/* The floor above the ceiling: the ceiling wins. */
		odd.backoff_min = 20000;
		assert_int_equal(queue_backoff_ms(&odd, 1), 10000);
	}
}

static void
test_apply_defer_then_deliver(void **state)
{
	struct queue_report_rule rule = {0, false};
	struct queue_rcpt_state st;
	int64_t t0 = 1700000000000;
	bool expired;

	memset(&st, 0, sizeof(st));
	queue_sched_apply(&policy, &rule, t0, t0 + 1000, QUEUE_OUTCOME_DEFERRED,
	                  &st, &expired);
	assert_false(expired);
	assert_int_equal(st.status, QUEUE_RCPT_DEFERRED);
	assert_int_equal(st.attempts, 1);
	assert_int_equal(st.next_try_ms, t0 + 1000 + 5 * MIN_MS);
	assert_false(queue_sched_due(&st, t0 + 1000));
	assert_true(queue_sched_due(&st, t0 + 1000 + 5 * MIN_MS));
	queue_sched_apply(&policy, &rule, t0, t0 + 2000, QUEUE_OUTCOME_DEFERRED,
	                  &st, &expired);
	assert_int_equal(st.next_try_ms, t0 + 2000 + 10 * MIN_MS);
	queue_sched_apply(&policy, &rule, t0, t0 + 3000,
	                  QUEUE_OUTCOME_DELIVERED, &st, &expired);
	assert_int_equal(st.status, QUEUE_RCPT_DELIVERED);
	assert_int_equal(st.attempts, 3);
	assert_int_equal(st.next_try_ms, 0);
	assert_true(st.flags & QUEUE_RCPT_REPORTED);
	assert_true(queue_sched_done(&st));
	assert_false(queue_sched_due(&st, t0 + DAY_MS));
}

static void
test_apply_lifetime(void **state)
{
	struct queue_report_rule rule = {0, false};
	struct queue_rcpt_state st;
	int64_t t0 = 1700000000000, deadline = t0 + 5 * DAY_MS;
	bool expired;

	memset(&st, 0, sizeof(st));
	st.attempts = 30;
	/* The last retry is put at the deadline, not past it. */
	queue_sched_apply(&policy, &rule, t0, deadline - MIN_MS,
	                  QUEUE_OUTCOME_DEFERRED, &st, &expired);
	assert_false(expired);
	assert_int_equal(st.next_try_ms, deadline);
	/* Deferred at the deadline: failed, and the sender is told. */
	queue_sched_apply(&policy, &rule, t0, deadline, QUEUE_OUTCOME_DEFERRED,
	                  &st, &expired);
	assert_true(expired);
	assert_int_equal(st.status, QUEUE_RCPT_FAILED);
	assert_false(st.flags & QUEUE_RCPT_REPORTED);
	assert_false(queue_sched_done(&st));
}

static void
test_report_rules(void **state)
{
	struct queue_report_rule unset = {0, false};
	struct queue_report_rule never = {PTL_DSN_NOTIFY_NEVER, false};
	struct queue_report_rule success = {PTL_DSN_NOTIFY_SUCCESS, false};
	struct queue_report_rule delay = {PTL_DSN_NOTIFY_DELAY, false};
	struct queue_report_rule bounce = {PTL_DSN_NOTIFY_FAILURE, true};
	struct queue_rcpt_state st;
	int64_t t0 = 1700000000000;
	bool expired;

	assert_true(queue_sched_report_failure(&unset));
	assert_false(queue_sched_report_failure(&never));
	assert_false(queue_sched_report_failure(&success));
	assert_false(queue_sched_report_failure(&bounce));
	assert_false(queue_sched_report_success(&unset));
	assert_true(queue_sched_report_success(&success));

	/* 5xx: reported unless NEVER or a null sender. */
	memset(&st, 0, sizeof(st));
	queue_sched_apply(&policy, &unset, t0, t0, QUEUE_OUTCOME_FAILED, &st,
	                  &expired);
	assert_false(st.flags & QUEUE_RCPT_REPORTED);
	memset(&st, 0, sizeof(st));
	queue_sched_apply(&policy, &bounce, t0, t0, QUEUE_OUTCOME_FAILED, &st,
	                  &expired);
	assert_true(st.flags & QUEUE_RCPT_REPORTED);
	memset(&st, 0, sizeof(st));
	queue_sched_apply(&policy, &never, t0, t0, QUEUE_OUTCOME_FAILED, &st,
	                  &expired);
	assert_true(st.flags & QUEUE_RCPT_REPORTED);
	/* NOTIFY=SUCCESS: a delivery owes a report. */
	memset(&st, 0, sizeof(st));
	queue_sched_apply(&policy, &success, t0, t0, QUEUE_OUTCOME_DELIVERED,
	                  &st, &expired);
	assert_false(st.flags & QUEUE_RCPT_REPORTED);

	/* Delay warnings: old enough, once, NOTIFY unset or DELAY. */
	memset(&st, 0, sizeof(st));
	st.status = QUEUE_RCPT_DEFERRED;
	assert_false(
	    queue_sched_warn_due(&policy, &unset, t0, t0 + HOUR_MS, &st));
	assert_true(
	    queue_sched_warn_due(&policy, &unset, t0, t0 + 4 * HOUR_MS, &st));
	assert_true(
	    queue_sched_warn_due(&policy, &delay, t0, t0 + 5 * HOUR_MS, &st));
	assert_false(
	    queue_sched_warn_due(&policy, &success, t0, t0 + 5 * HOUR_MS, &st));
	assert_false(
	    queue_sched_warn_due(&policy, &bounce, t0, t0 + 5 * HOUR_MS, &st));
	st.flags |= QUEUE_RCPT_WARNED;
	assert_false(
	    queue_sched_warn_due(&policy, &unset, t0, t0 + 5 * HOUR_MS, &st));
	{
		struct queue_policy off = policy;

		off.delay_warning = 0;
		st.flags = 0;
		assert_false(queue_sched_warn_due(&off, &unset, t0,
		                                  t0 + 5 * DAY_MS, &st));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backoff),
	    cmocka_unit_test(test_apply_defer_then_deliver),
	    cmocka_unit_test(test_apply_lifetime),
	    cmocka_unit_test(test_report_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
