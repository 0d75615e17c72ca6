/* SPDX-License-Identifier: MIT */
/* Unit tests for the queue runner, driven by a stub delivery engine. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "core/loop.h"

#include "queue_int.h"

/*
 * The stub stands where relay_engine.c stands in the module: it takes
 * jobs through relay.h exactly as the real engine does, answers each
 * recipient by the test's policy, and completes from the loop (never
 * from inside relay_start). Tests can hold jobs to look at concurrency.
 */

/* ---- the stub engine ---- */

struct relay_engine {
	int unused;
};

struct stub_job {
	struct relay_job *job;
	relay_done_fn done;
	void *arg;
	struct stub_job *next;
};

#define STUB_MAX_SEEN 4096

struct stub_seen {
	char from[256];
	char rcpt[256];
	char domain[256];
	char body[2048];
};

static struct relay_engine stub_engine;
static struct stub_job *stub_held;
static bool stub_hold;
static unsigned stub_running, stub_max_running, stub_jobs;
static unsigned stub_running_dom[4], stub_max_dom[4];
static struct stub_seen stub_seen[STUB_MAX_SEEN];
static unsigned stub_nseen;
/* Reply for an address at its n-th attempt (1-based). */
static enum relay_rcpt_status (*stub_policy)(const char *rcpt, unsigned attempt,
                                             char *reply);
static unsigned stub_attempts[64];

int
relay_engine_create(struct ptl_instance *inst, const void *conf,
                    struct relay_engine **engine_out, struct ptl_error *err)
{
	*engine_out = &stub_engine;
	return PTL_OK;
}

void
relay_engine_free(struct relay_engine *e)
{
}

static unsigned
stub_dom(const char *domain)
{
	return (unsigned)(domain[0] % 4);
}

static unsigned
stub_addr_slot(const char *a)
{
	unsigned h = 0;

	while (*a)
		h = h * 31 + (unsigned char)*a++;
	return h % 64;
}

static void
stub_finish(struct stub_job *sj)
{
	struct relay_job *job = sj->job;
	size_t i;

	for (i = 0; i < job->nrcpts; i++) {
		unsigned n =
		    ++stub_attempts[stub_addr_slot(job->rcpts[i].address)];

		job->rcpts[i].status = stub_policy != NULL
		                           ? stub_policy(job->rcpts[i].address,
		                                         n, job->rcpts[i].reply)
		                           : RELAY_RCPT_DELIVERED;
		if (stub_policy == NULL)
			strcpy(job->rcpts[i].reply, "250 2.0.0 ok");
		strcpy(job->rcpts[i].remote_host, "mx.stub.test");
	}
	stub_running--;
	stub_running_dom[stub_dom(job->domain)]--;
	sj->done(job, sj->arg);
	free(sj);
}

static void
stub_complete(void *arg)
{
	stub_finish(arg);
}

int
relay_start(struct relay_engine *e, struct relay_job *job, relay_done_fn done,
            void *arg)
{
	struct stub_job *sj = calloc(1, sizeof(*sj));
	size_t i;
	ssize_t n;

	assert_non_null(sj);
	sj->job = job;
	sj->done = done;
	sj->arg = arg;
	stub_jobs++;
	stub_running++;
	if (stub_running > stub_max_running)
		stub_max_running = stub_running;
	if (++stub_running_dom[stub_dom(job->domain)] >
	    stub_max_dom[stub_dom(job->domain)])
		stub_max_dom[stub_dom(job->domain)] =
		    stub_running_dom[stub_dom(job->domain)];
	for (i = 0; i < job->nrcpts && stub_nseen < STUB_MAX_SEEN; i++) {
		struct stub_seen *s = &stub_seen[stub_nseen++];

		(void)snprintf(s->from, sizeof(s->from), "%s", job->mail_from);
		(void)snprintf(s->rcpt, sizeof(s->rcpt), "%s",
		               job->rcpts[i].address);
		(void)snprintf(s->domain, sizeof(s->domain), "%s", job->domain);
		n = pread(job->fd, s->body,
		          job->size < sizeof(s->body) - 1 ? job->size
		                                          : sizeof(s->body) - 1,
		          0);
		s->body[n > 0 ? n : 0] = '\0';
		assert_true(job->size < sizeof(s->body) ||
		            n == (ssize_t)sizeof(s->body) - 1);
	}
	if (stub_hold) {
		sj->next = stub_held;
		stub_held = sj;
		return PTL_OK;
	}
	assert_int_equal(ptl_defer(stub_complete, sj), PTL_OK);
	return PTL_OK;
}

static void
stub_release_all(void)
{
	struct stub_job *sj;

	stub_hold = false;
	while ((sj = stub_held) != NULL) {
		stub_held = sj->next;
		assert_int_equal(ptl_defer(stub_complete, sj), PTL_OK);
	}
}

void
relay_abort_all(struct relay_engine *e)
{
	struct stub_job *sj;
	size_t i;

	while ((sj = stub_held) != NULL) {
		stub_held = sj->next;
		for (i = 0; i < sj->job->nrcpts; i++)
			sj->job->rcpts[i].status = RELAY_RCPT_DEFERRED;
		stub_running--;
		stub_running_dom[stub_dom(sj->job->domain)]--;
		sj->done(sj->job, sj->arg);
		free(sj);
	}
}

/* ---- fixture ---- */

static char qdir[256];
static struct queue_spool spool;
static struct queue_conf conf;
static bool (*until)(void);
static struct ptl_timer *poll_timer;
static int64_t deadline;

static void
poll_fire(struct ptl_timer *t, void *arg)
{
	if (until() || ptl_now_ms() > deadline) {
		ptl_loop_exit();
		return;
	}
	ptl_timer_start(t, 10);
}

/* Run the loop until @cond holds (or 10 s pass). */
static bool
run_until(bool (*cond)(void))
{
	until = cond;
	deadline = ptl_now_ms() + 10000;
	ptl_timer_start(poll_timer, 10);
	assert_int_equal(ptl_loop_run(), PTL_OK);
	return cond();
}

static int
setup(void **state)
{
	char why[QUEUE_WHY_MAX];
	struct ptl_error err;

	(void)snprintf(qdir, sizeof(qdir), "%s/petrel-qrun-XXXXXX",
	               getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(qdir));
	assert_int_equal(queue_dirs_create(qdir, why, sizeof(why)), 0);
	assert_int_equal(queue_spool_open(&spool, qdir, why, sizeof(why)), 0);
	memset(&conf, 0, sizeof(conf));
	conf.max_concurrency = 4;
	conf.max_per_destination = 2;
	conf.local_concurrency = 2;
	conf.max_rcpts_per_delivery = 100;
	conf.backoff_min = 100;
	conf.backoff_max = 400;
	conf.lifetime = 60000;
	conf.bounce_size_limit = 50 * 1024;
	conf.max_active = 1000;
	conf.scan_interval = 60000;
	conf.qdir = qdir;
	stub_held = NULL;
	stub_hold = false;
	stub_running = stub_max_running = stub_jobs = 0;
	memset(stub_running_dom, 0, sizeof(stub_running_dom));
	memset(stub_max_dom, 0, sizeof(stub_max_dom));
	memset(stub_attempts, 0, sizeof(stub_attempts));
	stub_nseen = 0;
	stub_policy = NULL;
	assert_int_equal(ptl_loop_init(&err), PTL_OK);
	assert_int_equal(ptl_task_init(2, &err), PTL_OK);
	poll_timer = ptl_timer_new(poll_fire, NULL);
	assert_non_null(poll_timer);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[512];

	/* As the helper does: drain the pool, then exit_worker. */
	ptl_task_fini();
	queue_runner_close();
	ptl_timer_free(poll_timer);
	ptl_loop_fini();
	queue_spool_close(&spool);
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", qdir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void
start_runner(void)
{
	struct ptl_error err;

	assert_int_equal(queue_runner_open(NULL, &conf, &err), PTL_OK);
}

static void
enqueue(const char *from, const char **rcpts, size_t n, const char *text,
        char id_out[QUEUE_ID_SIZE])
{
	struct queue_env_rcpt r[16];
	char why[QUEUE_WHY_MAX];
	struct queue_writer w;
	struct queue_env env;
	size_t i;

	memset(&env, 0, sizeof(env));
	memset(r, 0, sizeof(r));
	for (i = 0; i < n; i++)
		r[i].address = rcpts[i];
	env.from = from;
	env.received = time(NULL);
	env.rcpts = r;
	env.nrcpts = n;
	assert_int_equal(queue_writer_open(&w, &spool, why, sizeof(why)), 0);
	assert_int_equal(
	    queue_writer_write(&w, text, strlen(text), why, sizeof(why)), 0);
	assert_int_equal(queue_writer_commit(&w, &env, why, sizeof(why)), 0);
	if (id_out != NULL)
		memcpy(id_out, w.id, QUEUE_ID_SIZE);
}

static unsigned
count_files(const char *sub)
{
	char path[512];
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	assert_true(queue_path(path, sizeof(path), qdir, sub, NULL));
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static bool
spool_empty(void)
{
	return count_files("msg") == 0 && count_files("state") == 0;
}

/* ---- tests ---- */

static void
test_deliver_and_remove(void **state)
{
	const char *rcpts[] = {"a@one.test", "b@two.test", "c@one.test"};
	unsigned i;

	for (i = 0; i < 5; i++)
		enqueue("sender@example.test", rcpts, 3,
		        "Subject: x\r\n\r\nhi\r\n", NULL);
	start_runner();
	assert_true(run_until(spool_empty));
	assert_int_equal(stub_nseen, 15);
	/* One job per domain per message: the two one.test go together. */
	assert_int_equal(stub_jobs, 10);
	for (i = 0; i < stub_nseen; i++) {
		assert_string_equal(stub_seen[i].from, "sender@example.test");
		assert_string_equal(stub_seen[i].body,
		                    "Subject: x\r\n\r\nhi\r\n");
	}
}

static unsigned
held_count(void)
{
	struct stub_job *sj;
	unsigned n = 0;

	for (sj = stub_held; sj != NULL; sj = sj->next)
		n++;
	return n;
}

static bool
four_held(void)
{
	return held_count() == 4;
}

static void
test_concurrency_limits(void **state)
{
	const char *a[] = {"x@aaa.test"}, *b[] = {"x@bbb.test"},
	           *c[] = {"x@ccc.test"};
	unsigned i;

	for (i = 0; i < 6; i++) {
		enqueue("s@example.test", a, 1, "A\r\n", NULL);
		enqueue("s@example.test", b, 1, "B\r\n", NULL);
		enqueue("s@example.test", c, 1, "C\r\n", NULL);
	}
	stub_hold = true;
	start_runner();
	assert_true(run_until(four_held));
	/* Total 4; at most 2 per destination. */
	assert_int_equal(stub_running, 4);
	assert_true(stub_max_dom[stub_dom("aaa.test")] <= 2);
	assert_true(stub_max_dom[stub_dom("bbb.test")] <= 2);
	assert_true(stub_max_dom[stub_dom("ccc.test")] <= 2);
	stub_release_all();
	assert_true(run_until(spool_empty));
	assert_int_equal(stub_jobs, 18);
	assert_true(stub_max_running <= 4);
	for (i = 0; i < 4; i++)
		assert_true(stub_max_dom[i] <= 2);
}

static enum relay_rcpt_status
policy_temp_twice(const char *rcpt, unsigned attempt, char *reply)
{
	if (attempt <= 2) {
		strcpy(reply, "451 4.3.0 try again");
		return RELAY_RCPT_DEFERRED;
	}
	strcpy(reply, "250 2.0.0 ok");
	return RELAY_RCPT_DELIVERED;
}

static void
test_retry_backoff(void **state)
{
	const char *r[] = {"x@retry.test"};
	int64_t t0;

	enqueue("s@example.test", r, 1, "R\r\n", NULL);
	stub_policy = policy_temp_twice;
	t0 = ptl_now_ms();
	start_runner();
	assert_true(run_until(spool_empty));
	assert_int_equal(stub_jobs, 3);
	/* 100 ms, then 200 ms of backoff at least. */
	assert_true(ptl_now_ms() - t0 >= 300);
}

static enum relay_rcpt_status
policy_reject_bob(const char *rcpt, unsigned attempt, char *reply)
{
	if (strncmp(rcpt, "bob@", 4) == 0) {
		strcpy(reply, "550 5.1.1 no such user");
		return RELAY_RCPT_FAILED;
	}
	strcpy(reply, "250 2.0.0 ok");
	return RELAY_RCPT_DELIVERED;
}

static bool
bounce_seen_and_empty(void)
{
	unsigned i;

	if (!spool_empty())
		return false;
	for (i = 0; i < stub_nseen; i++)
		if (stub_seen[i].from[0] == '\0')
			return true;
	return false;
}

static void
test_bounce(void **state)
{
	const char *r[] = {"bob@remote.test", "carol@remote.test"};
	const struct stub_seen *dsn = NULL;
	unsigned i;

	enqueue("alice@sender.test", r, 2,
	        "Subject: original\r\n\r\nthe text\r\n", NULL);
	stub_policy = policy_reject_bob;
	start_runner();
	assert_true(run_until(bounce_seen_and_empty));
	for (i = 0; i < stub_nseen; i++)
		if (stub_seen[i].from[0] == '\0')
			dsn = &stub_seen[i];
	assert_non_null(dsn);
	/* To the sender, from the null sender, about bob only. */
	assert_string_equal(dsn->rcpt, "alice@sender.test");
	assert_non_null(strstr(dsn->body, "multipart/report"));
	assert_non_null(strstr(dsn->body,
	                       "Final-Recipient: rfc822; "
	                       "bob@remote.test\r\nAction: failed\r\n"
	                       "Status: 5.1.1"));
	assert_non_null(strstr(dsn->body, "Diagnostic-Code: smtp; 550 5.1.1 "
	                                  "no such user"));
	assert_null(strstr(dsn->body, "carol@remote.test"));
	assert_non_null(strstr(dsn->body, "Subject: original"));
}

static enum relay_rcpt_status
policy_reject_all(const char *rcpt, unsigned attempt, char *reply)
{
	strcpy(reply, "550 5.7.1 go away");
	return RELAY_RCPT_FAILED;
}

static bool
three_jobs_and_empty(void)
{
	return stub_jobs >= 3 && spool_empty();
}

static void
test_no_bounce_for_bounce(void **state)
{
	const char *r[] = {"bob@remote.test"};

	/* A null-sender message that fails is dropped, never reported;
	 * the failed DSN of a normal message is not reported either. */
	enqueue("", r, 1, "Subject: a DSN\r\n\r\n", NULL);
	enqueue("alice@sender.test", r, 1, "Subject: b\r\n\r\n", NULL);
	stub_policy = policy_reject_all;
	start_runner();
	assert_true(run_until(three_jobs_and_empty));
	/* Let anything that would follow happen. */
	stub_jobs = 0;
	run_until(spool_empty);
	assert_int_equal(stub_jobs, 0);
	assert_int_equal(stub_nseen, 3);
}

static bool
one_seen(void)
{
	return stub_nseen >= 1 && spool_empty();
}

static void
test_state_survives_restart(void **state)
{
	const char *r[] = {"done@x.test", "todo@x.test"};
	struct queue_rcpt_state st;
	char id[QUEUE_ID_SIZE], why[QUEUE_WHY_MAX], path[512];
	uint32_t idx = 0;
	struct qrec_buf b;
	int fd;

	enqueue("s@example.test", r, 2, "S\r\n", id);
	/* As a runner killed after recording the first recipient... */
	memset(&st, 0, sizeof(st));
	st.status = QUEUE_RCPT_DELIVERED;
	st.flags = QUEUE_RCPT_REPORTED;
	st.attempts = 1;
	qrec_buf_init(&b, 1 << 16);
	queue_state_encode(&b, 1, &idx, &st, 1);
	assert_int_equal(queue_state_append(&spool, id, b.data, b.len,
	                                    UINT64_MAX, why, sizeof(why)),
	                 0);
	qrec_buf_free(&b);
	/* ...in the middle of its next append. */
	assert_true(queue_path(path, sizeof(path), qdir, "state", id));
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "U 999:T 1:1\nR 1", 15), 15);
	close(fd);
	start_runner();
	assert_true(run_until(one_seen));
	/* The recorded delivery is never repeated. */
	assert_int_equal(stub_nseen, 1);
	assert_string_equal(stub_seen[0].rcpt, "todo@x.test");
}

static bool
quarantined(void)
{
	return count_files("corrupt") == 1 && count_files("msg") == 0;
}

static void
test_corrupt_quarantined(void **state)
{
	char path[512];
	int fd;

	assert_true(queue_path(path, sizeof(path), qdir, "msg", "BROKEN1"));
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "not a queue file at all\n", 24), 24);
	close(fd);
	start_runner();
	assert_true(run_until(quarantined));
	assert_int_equal(stub_jobs, 0);
}

static bool
delivered_two(void)
{
	return stub_nseen >= 2 && spool_empty();
}

static void
test_inotify_picks_up_new(void **state)
{
	const char *r[] = {"x@late.test"};

	start_runner();
	/* Loaded from the scan at start... */
	enqueue("s@example.test", r, 1, "1\r\n", NULL);
	assert_true(run_until(one_seen));
	/* ...and while running, without a rescan (interval 60 s). */
	enqueue("s@example.test", r, 1, "2\r\n", NULL);
	assert_true(run_until(delivered_two));
}

static bool
nothing_queued_ctl(void)
{
	return count_files("msg") == 0 && count_files("ctl") == 0;
}

static enum relay_rcpt_status
policy_always_temp(const char *rcpt, unsigned attempt, char *reply)
{
	strcpy(reply, "421 4.4.2 later");
	return RELAY_RCPT_DEFERRED;
}

static bool
two_attempts(void)
{
	return stub_jobs >= 2;
}

static bool
first_attempt_recorded(void)
{
	return stub_jobs >= 1 && count_files("state") == 1;
}

static void
test_requests(void **state)
{
	const char *r[] = {"x@slow.test"};
	char id[QUEUE_ID_SIZE], why[QUEUE_WHY_MAX];
	unsigned before;

	conf.backoff_min = 30000;
	conf.backoff_max = 30000;
	enqueue("s@example.test", r, 1, "F\r\n", id);
	stub_policy = policy_always_temp;
	start_runner();
	assert_true(run_until(first_attempt_recorded));
	before = stub_jobs;
	assert_int_equal(before, 1);
	/* flush: tried again at once despite the 30 s backoff. */
	assert_int_equal(queue_request_write(qdir, QUEUE_REQ_FLUSH, id, NULL, 0,
	                                     why, sizeof(why)),
	                 0);
	assert_true(run_until(two_attempts));
	/* delete: gone without a report. */
	assert_int_equal(queue_request_write(qdir, QUEUE_REQ_DELETE, id, NULL,
	                                     0, why, sizeof(why)),
	                 0);
	assert_true(run_until(nothing_queued_ctl));
	assert_int_equal(stub_jobs, 2);
}

static int lock_holder = -1;
static int64_t lock_release_at;

static bool
released_and_delivered(void)
{
	if (lock_holder >= 0 && ptl_now_ms() >= lock_release_at) {
		/* Nothing was delivered while another runner held the lock. */
		assert_int_equal(stub_jobs, 0);
		close(lock_holder);
		lock_holder = -1;
	}
	return lock_holder < 0 && stub_nseen == 1 && spool_empty();
}

static void
test_one_runner_per_spool(void **state)
{
	const char *r[] = {"x@lock.test"};
	char path[512];

	/* As an old generation's runner still draining after a reload. */
	assert_true(queue_path(path, sizeof(path), qdir, "runner.lock", NULL));
	lock_holder = open(path, O_RDWR | O_CREAT, 0600);
	assert_true(lock_holder >= 0);
	assert_int_equal(flock(lock_holder, LOCK_EX), 0);
	enqueue("s@example.test", r, 1, "L\r\n", NULL);
	start_runner();
	lock_release_at = ptl_now_ms() + 700;
	assert_true(run_until(released_and_delivered));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_deliver_and_remove, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_concurrency_limits, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_retry_backoff, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_bounce, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_bounce_for_bounce, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_state_survives_restart, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_quarantined, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_inotify_picks_up_new, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_one_runner_per_spool, setup,
	                                    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
