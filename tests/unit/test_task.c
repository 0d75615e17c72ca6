/* SPDX-License-Identifier: MIT */
/* Unit tests for the thread pool: work off the loop, completions on it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "core/loop.h"

#define NTASKS 1000

static pthread_t main_thread;
static struct ptl_timer *safety;

struct job {
	int index;
	pthread_t worker;
	int work_on_main;
	int work_signals_blocked;
	int done_ran;
	int done_on_main;
	int resubmit_rc; /* ptl_task_submit() called from done */
	int resubmit;
};

static atomic_int works_run;
static int dones_run;
static int dones_wanted;

static void
fail_safety(struct ptl_timer *t, void *arg)
{
	fail_msg("safety timer fired: the tasks did not complete");
}

static int
setup(void **state)
{
	struct ptl_error err;

	main_thread = pthread_self();
	atomic_store(&works_run, 0);
	dones_run = 0;
	dones_wanted = -1;
	assert_int_equal(ptl_loop_init(&err), PTL_OK);
	safety = ptl_timer_new(fail_safety, NULL);
	assert_non_null(safety);
	ptl_timer_start(safety, 30000);
	return 0;
}

static int
teardown(void **state)
{
	ptl_task_fini();
	ptl_loop_fini();
	return 0;
}

static void
job_work(void *arg)
{
	struct job *j = arg;
	sigset_t cur;

	j->worker = pthread_self();
	j->work_on_main = pthread_equal(j->worker, main_thread);
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	j->work_signals_blocked = sigismember(&cur, SIGTERM) == 1 &&
	                          sigismember(&cur, SIGUSR1) == 1 &&
	                          sigismember(&cur, SIGCHLD) == 1;
	atomic_fetch_add(&works_run, 1);
}

static void
slow_work(void *arg)
{
	const struct timespec ms = {0, 1000000};

	nanosleep(&ms, NULL);
	job_work(arg);
}

static void
job_done(void *arg)
{
	struct job *j = arg;

	j->done_ran++;
	j->done_on_main = pthread_equal(pthread_self(), main_thread);
	if (j->resubmit)
		j->resubmit_rc = ptl_task_submit(job_work, job_done, j);
	if (++dones_run == dones_wanted)
		ptl_loop_exit();
}

static void
check_jobs(struct job *jobs, int n)
{
	for (int i = 0; i < n; i++) {
		assert_int_equal(jobs[i].done_ran, 1);
		assert_true(jobs[i].done_on_main);
		assert_false(jobs[i].work_on_main);
		assert_true(jobs[i].work_signals_blocked);
	}
}

static void
test_thousand_tasks(void **state)
{
	static struct job jobs[NTASKS];
	struct ptl_error err;

	memset(jobs, 0, sizeof(jobs));
	assert_int_equal(ptl_task_init(3, &err), PTL_OK);
	/* Already running: a second init keeps the pool. */
	assert_int_equal(ptl_task_init(8, &err), PTL_OK);
	dones_wanted = NTASKS;
	for (int i = 0; i < NTASKS; i++) {
		jobs[i].index = i;
		assert_int_equal(ptl_task_submit(job_work, job_done, &jobs[i]),
		                 PTL_OK);
	}
	/* Completions never run outside the loop. */
	assert_int_equal(dones_run, 0);
	assert_int_equal(ptl_loop_run(), PTL_OK);
	assert_int_equal(dones_run, NTASKS);
	assert_int_equal(atomic_load(&works_run), NTASKS);
	check_jobs(jobs, NTASKS);
}

static void
test_lazy_start(void **state)
{
	struct job jobs[10];

	memset(jobs, 0, sizeof(jobs));
	dones_wanted = 10;
	for (int i = 0; i < 10; i++)
		assert_int_equal(ptl_task_submit(job_work, job_done, &jobs[i]),
		                 PTL_OK);
	assert_int_equal(ptl_loop_run(), PTL_OK);
	check_jobs(jobs, 10);
}

static void
test_fini_drains(void **state)
{
	struct job jobs[100];
	struct ptl_error err;

	memset(jobs, 0, sizeof(jobs));
	assert_int_equal(ptl_task_init(2, &err), PTL_OK);
	for (int i = 0; i < 100; i++) {
		/* Completions during fini may not queue more work. */
		jobs[i].resubmit = i % 10 == 0;
		assert_int_equal(ptl_task_submit(slow_work, job_done, &jobs[i]),
		                 PTL_OK);
	}
	/* No loop iteration: fini itself waits and runs completions. */
	ptl_task_fini();
	assert_int_equal(dones_run, 100);
	assert_int_equal(atomic_load(&works_run), 100);
	check_jobs(jobs, 100);
	for (int i = 0; i < 100; i += 10)
		assert_int_equal(jobs[i].resubmit_rc, PTL_ERROR);

	/* Stopped pools start again; a second fini is harmless. */
	ptl_task_fini();
	memset(jobs, 0, sizeof(jobs));
	dones_run = 0;
	dones_wanted = 1;
	assert_int_equal(ptl_task_submit(job_work, job_done, &jobs[0]), PTL_OK);
	assert_int_equal(ptl_loop_run(), PTL_OK);
	check_jobs(jobs, 1);
}

static void
test_init_bounds(void **state)
{
	struct ptl_error err;

	assert_int_equal(ptl_task_init(100000, &err), PTL_ERROR);
	assert_non_null(strstr(err.text, "threads"));
	assert_int_equal(ptl_task_submit(NULL, job_done, NULL), PTL_ERROR);
	assert_int_equal(ptl_task_init(0, &err), PTL_OK);
}

static void
test_needs_loop(void **state)
{
	struct ptl_error err;
	struct job j = {0};

	ptl_loop_fini();
	/* Without a loop no completion could ever run: refuse. */
	assert_int_equal(ptl_task_init(1, &err), PTL_ERROR);
	assert_int_equal(ptl_task_submit(job_work, job_done, &j), PTL_ERROR);
	assert_int_equal(j.done_ran, 0);
	setup(state);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_thousand_tasks, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_lazy_start, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fini_drains, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_init_bounds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_needs_loop, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
