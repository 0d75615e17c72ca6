/* SPDX-License-Identifier: MIT */
/* Unit tests for the timer heap: ordering, stop/restart, callbacks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <cmocka.h>

#include "core/loop.h"

#define NRANDOM 1000

struct fired_log {
	int order[NRANDOM + 16];
	int n;
};

struct probe {
	struct fired_log *log;
	int id;
	int delay;
	struct ptl_timer *timer;
};

static int
loop_setup(void **state)
{
	struct ptl_error err;

	assert_int_equal(ptl_loop_init(&err), PTL_OK);
	return 0;
}

static int
loop_teardown(void **state)
{
	ptl_loop_fini();
	return 0;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
record_fire(struct ptl_timer *t, void *arg)
{
	struct probe *p = arg;

	assert_ptr_equal(t, p->timer);
	assert_false(ptl_timer_active(t));
	p->log->order[p->log->n++] = p->id;
}

static void
exit_loop(struct ptl_timer *t, void *arg)
{
	ptl_loop_exit();
}

static void
fail_safety(struct ptl_timer *t, void *arg)
{
	fail_msg("safety timer fired: the loop did not get to its exit");
}

static int
cmp_probe(const void *a, const void *b)
{
	const struct probe *pa = a, *pb = b;

	/* All were started at the same cached time: by delay, then order. */
	if (pa->delay != pb->delay)
		return pa->delay < pb->delay ? -1 : 1;
	return pa->id < pb->id ? -1 : pa->id > pb->id;
}

static void
test_random_order(void **state)
{
	static struct probe probes[NRANDOM];
	static struct probe expected[NRANDOM];
	static struct fired_log log;
	struct ptl_timer *done, *safety;
	int nexpected = 0;

	srand(12345);
	log.n = 0;
	ptl_loop_update_time();
	for (int i = 0; i < NRANDOM; i++) {
		probes[i].log = &log;
		probes[i].id = i;
		probes[i].delay = rand() % 100;
		probes[i].timer = ptl_timer_new(record_fire, &probes[i]);
		assert_non_null(probes[i].timer);
		ptl_timer_start(probes[i].timer, probes[i].delay);
		assert_true(ptl_timer_active(probes[i].timer));
	}
	/* Stop every 7th, restart every 11th (moves it to the back). */
	for (int i = 0; i < NRANDOM; i++) {
		if (i % 7 == 0) {
			ptl_timer_stop(probes[i].timer);
			assert_false(ptl_timer_active(probes[i].timer));
		} else if (i % 11 == 0) {
			probes[i].delay = rand() % 100;
			ptl_timer_start(probes[i].timer, probes[i].delay);
			/* Restarted later than every first start. */
			probes[i].id += NRANDOM;
		}
	}
	assert_in_range(ptl_timer_next_ms(), 0, 99);
	for (int i = 0; i < NRANDOM; i++)
		if (i % 7 != 0)
			expected[nexpected++] = probes[i];
	qsort(expected, (size_t)nexpected, sizeof(expected[0]), cmp_probe);

	done = ptl_timer_new(exit_loop, NULL);
	safety = ptl_timer_new(fail_safety, NULL);
	assert_non_null(done);
	assert_non_null(safety);
	ptl_timer_start(done, 150);
	ptl_timer_start(safety, 30000);
	assert_int_equal(ptl_loop_run(), PTL_OK);

	assert_int_equal(log.n, nexpected);
	for (int i = 0; i < nexpected; i++)
		assert_int_equal(log.order[i], expected[i].id);
	for (int i = 0; i < NRANDOM; i++) {
		assert_false(ptl_timer_active(probes[i].timer));
		ptl_timer_free(probes[i].timer);
	}
	ptl_timer_free(done);
	ptl_timer_free(safety);
	assert_int_equal(ptl_timer_next_ms(), -1);
}

static void
test_ties_and_restart(void **state)
{
	struct fired_log log = {.n = 0};
	struct probe p[4];

	ptl_loop_update_time();
	for (int i = 0; i < 4; i++) {
		p[i].log = &log;
		p[i].id = i;
		p[i].timer = ptl_timer_new(record_fire, &p[i]);
		assert_non_null(p[i].timer);
		ptl_timer_start(p[i].timer, 0);
	}
	/* Same expiry: restarting 1 puts it after the others. */
	ptl_timer_start(p[1].timer, 0);
	ptl_timer_stop(p[2].timer);
	ptl_timer_stop(p[2].timer); /* stopping twice is a no-op */
	assert_int_equal(ptl_timer_next_ms(), 0);
	ptl_timers_run();
	assert_int_equal(log.n, 3);
	assert_int_equal(log.order[0], 0);
	assert_int_equal(log.order[1], 3);
	assert_int_equal(log.order[2], 1);
	assert_int_equal(ptl_timer_next_ms(), -1);
	for (int i = 0; i < 4; i++)
		ptl_timer_free(p[i].timer);
	ptl_timer_free(NULL);
}

static void
test_stop_and_pending(void **state)
{
	struct fired_log log = {.n = 0};
	struct probe p = {.log = &log, .id = 7};
	int64_t next;

	p.timer = ptl_timer_new(record_fire, &p);
	assert_non_null(p.timer);
	assert_false(ptl_timer_active(p.timer));
	assert_int_equal(ptl_timer_next_ms(), -1);
	ptl_timer_start(p.timer, 10000);
	assert_true(ptl_timer_active(p.timer));
	next = ptl_timer_next_ms();
	assert_in_range(next, 1, 10000);
	ptl_timers_run();
	assert_int_equal(log.n, 0);
	ptl_timer_stop(p.timer);
	assert_false(ptl_timer_active(p.timer));
	assert_int_equal(ptl_timer_next_ms(), -1);
	/* Freed while armed: it must leave the heap. */
	ptl_timer_start(p.timer, 0);
	ptl_timer_free(p.timer);
	assert_int_equal(ptl_timer_next_ms(), -1);
	ptl_timers_run();
	assert_int_equal(log.n, 0);
}

struct free_pair {
	struct ptl_timer *self;
	struct ptl_timer *other;
	int fired;
};

static void
free_self_and_other(struct ptl_timer *t, void *arg)
{
	struct free_pair *fp = arg;

	fp->fired++;
	ptl_timer_free(fp->other);
	ptl_timer_free(t);
}

static void
must_not_fire(struct ptl_timer *t, void *arg)
{
	fail_msg("a freed timer fired");
}

static void
test_free_in_callback(void **state)
{
	struct free_pair fp = {0};

	fp.self = ptl_timer_new(free_self_and_other, &fp);
	fp.other = ptl_timer_new(must_not_fire, NULL);
	assert_non_null(fp.self);
	assert_non_null(fp.other);
	/* Both due in the same pass; the first frees the second. */
	ptl_timer_start(fp.self, 0);
	ptl_timer_start(fp.other, 0);
	ptl_timers_run();
	assert_int_equal(fp.fired, 1);
	assert_int_equal(ptl_timer_next_ms(), -1);
}

struct rearm {
	int fired;
	int64_t delay;
	int limit;
};

static void
rearm_self(struct ptl_timer *t, void *arg)
{
	struct rearm *r = arg;

	r->fired++;
	if (r->fired < r->limit)
		ptl_timer_start(t, r->delay);
	else
		ptl_loop_exit();
}

static void
test_rearm_zero_not_same_pass(void **state)
{
	struct rearm r = {.delay = 0, .limit = 1000};
	struct ptl_timer *t = ptl_timer_new(rearm_self, &r);

	assert_non_null(t);
	ptl_timer_start(t, 0);
	ptl_timers_run();
	assert_int_equal(r.fired, 1);
	assert_true(ptl_timer_active(t));
	ptl_timers_run();
	assert_int_equal(r.fired, 2);
	ptl_timer_free(t);
}

static void
test_rearm_future_fires_later(void **state)
{
	struct rearm r = {.delay = 30, .limit = 3};
	struct ptl_timer *t = ptl_timer_new(rearm_self, &r);
	struct ptl_timer *safety = ptl_timer_new(fail_safety, NULL);
	int64_t start;

	assert_non_null(t);
	assert_non_null(safety);
	/* Read before the loop's clock so that start <= the cached now. */
	start = mono_ms();
	ptl_loop_update_time();
	ptl_timer_start(t, 0);
	ptl_timers_run();
	assert_int_equal(r.fired, 1);
	assert_true(ptl_timer_active(t));
	ptl_timers_run();
	assert_int_equal(r.fired, 1);

	ptl_timer_start(safety, 30000);
	assert_int_equal(ptl_loop_run(), PTL_OK);
	assert_int_equal(r.fired, 3);
	/* Two 30 ms re-arms: never earlier than 60 ms in total. */
	assert_true(mono_ms() - start >= 60);
	ptl_timer_free(t);
	ptl_timer_free(safety);
}

static void
stamp_fire(struct ptl_timer *t, void *arg)
{
	*(int64_t *)arg = mono_ms();
	ptl_loop_exit();
}

static void
test_not_early(void **state)
{
	int64_t fired_at = 0, start;
	struct ptl_timer *t = ptl_timer_new(stamp_fire, &fired_at);
	struct ptl_timer *safety = ptl_timer_new(fail_safety, NULL);

	assert_non_null(t);
	assert_non_null(safety);
	/* Read before the loop's clock so that start <= the cached now. */
	start = mono_ms();
	ptl_loop_update_time();
	ptl_timer_start(t, 50);
	ptl_timer_start(safety, 30000);
	assert_int_equal(ptl_loop_run(), PTL_OK);
	assert_true(fired_at - start >= 50);
	ptl_timer_free(t);
	ptl_timer_free(safety);
}

static void
test_fini_frees_all(void **state)
{
	/* Left for ptl_loop_fini(): ASan reports a leak if it does not. */
	struct ptl_timer *armed = ptl_timer_new(must_not_fire, NULL);
	struct ptl_timer *idle = ptl_timer_new(must_not_fire, NULL);

	assert_non_null(armed);
	assert_non_null(idle);
	ptl_timer_start(armed, 100000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_random_order, loop_setup,
	                                    loop_teardown),
	    cmocka_unit_test_setup_teardown(test_ties_and_restart, loop_setup,
	                                    loop_teardown),
	    cmocka_unit_test_setup_teardown(test_stop_and_pending, loop_setup,
	                                    loop_teardown),
	    cmocka_unit_test_setup_teardown(test_free_in_callback, loop_setup,
	                                    loop_teardown),
	    cmocka_unit_test_setup_teardown(test_rearm_zero_not_same_pass,
	                                    loop_setup, loop_teardown),
	    cmocka_unit_test_setup_teardown(test_rearm_future_fires_later,
	                                    loop_setup, loop_teardown),
	    cmocka_unit_test_setup_teardown(test_not_early, loop_setup,
	                                    loop_teardown),
	    cmocka_unit_test_setup_teardown(test_fini_frees_all, loop_setup,
	                                    loop_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
