/* SPDX-License-Identifier: MIT */
/* Unit tests for the shared policy table: slots, expiry, fork, files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy_net.h"
#include "policy_table.h"

/* Each slot used as a counter: val[0] += 1, lives until `arg` ms. */
struct count_ctx {
	int64_t expires;
	int64_t value;
	bool fresh;
};

static void
count_fn(struct policy_slot *slot, bool fresh, void *arg)
{
	struct count_ctx *ctx = arg;

	slot->val[0]++;
	slot->expires = ctx->expires;
	ctx->value = slot->val[0];
	ctx->fresh = fresh;
}

static void
read_fn(struct policy_slot *slot, bool fresh, void *arg)
{
	struct count_ctx *ctx = arg;

	ctx->value = slot->val[0];
	ctx->fresh = fresh;
}

static int64_t
bump(struct policy_table *t, const char *name, int64_t now, int64_t expires)
{
	struct count_ctx ctx = {expires, 0, false};
	struct ptl_error err;
	uint64_t key[2];

	policy_table_key(t, name, strlen(name), key);
	assert_int_equal(
	    policy_table_update(t, key, now, true, count_fn, &ctx, &err),
	    PTL_OK);
	return ctx.value;
}

static int64_t
peek(struct policy_table *t, const char *name, int64_t now)
{
	struct count_ctx ctx = {0, -1, false};
	struct ptl_error err;
	uint64_t key[2];
	int rc;

	policy_table_key(t, name, strlen(name), key);
	rc = policy_table_update(t, key, now, false, read_fn, &ctx, &err);
	assert_true(rc == PTL_OK || rc == PTL_DECLINED);
	return rc == PTL_OK ? ctx.value : -1;
}

static void
test_count_and_expire(void **state)
{
	struct policy_table *t;
	struct ptl_error err;

	assert_int_equal(policy_table_anon(1024, "test", &t, &err), PTL_OK);
	assert_int_equal(t->nslots, 1024);
	assert_int_equal(bump(t, "a", 100, 200), 1);
	assert_int_equal(bump(t, "a", 150, 200), 2);
	assert_int_equal(bump(t, "b", 150, 300), 1);
	assert_int_equal(peek(t, "a", 199), 2);
	assert_int_equal(policy_table_count(t, 199), 2);
	/* Expired at 200: absent, and a new entry starts from zero. */
	assert_int_equal(peek(t, "a", 200), -1);
	assert_int_equal(policy_table_count(t, 200), 1);
	assert_int_equal(bump(t, "a", 250, 400), 1);
	assert_int_equal(peek(t, "missing", 250), -1);
	policy_table_free(t);
}

static void
test_window_eviction(void **state)
{
	struct policy_table_stats stats;
	struct policy_table *t;
	struct ptl_error err;
	char name[32];
	int i, live;

	/* 16 slots, one stripe: the 17th key must push one out, the one
	 * closest to expiry. */
	assert_int_equal(policy_table_anon(16, "test", &t, &err), PTL_OK);
	assert_int_equal(t->nslots, 16);
	assert_int_equal(t->nstripes, 1);
	for (i = 0; i < 16; i++) {
		(void)snprintf(name, sizeof(name), "k%d", i);
		assert_int_equal(bump(t, name, 10, 1000 + i), 1);
	}
	policy_table_stats(t, &stats);
	assert_int_equal(stats.evictions, 0);
	assert_int_equal(bump(t, "new", 10, 5000), 1);
	policy_table_stats(t, &stats);
	assert_int_equal(stats.evictions, 1);
	assert_int_equal(peek(t, "k0", 10), -1); /* expired first: evicted */
	for (i = 1, live = 0; i < 16; i++) {
		(void)snprintf(name, sizeof(name), "k%d", i);
		live += peek(t, name, 10) == 1;
	}
	assert_int_equal(live, 15);
	assert_int_equal(peek(t, "new", 10), 1);
	policy_table_free(t);
}

/* Two processes add 20000 each to one key: the total must be exact. */
static void
race(struct policy_table *t)
{
	pid_t pids[2];
	int i, n, status;

	for (i = 0; i < 2; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			for (n = 0; n < 20000; n++)
				(void)bump(t, "shared", 1, INT64_MAX);
			_exit(0);
		}
	}
	for (i = 0; i < 2; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	assert_int_equal(peek(t, "shared", 1), 40000);
}

static void
test_fork_anon(void **state)
{
	struct policy_table *t;
	struct ptl_error err;

	assert_int_equal(policy_table_anon(4096, "test", &t, &err), PTL_OK);
	race(t);
	policy_table_free(t);
}

static char *
make_dir(void)
{
	char tmpl[] = "/tmp/petrel-table-XXXXXX";
	char *dir = mkdtemp(tmpl);

	assert_non_null(dir);
	return strdup(dir);
}

static void
remove_dir(char *dir)
{
	char cmd[512];

	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(dir);
}

static void
test_fork_file(void **state)
{
	struct policy_table *t;
	struct ptl_error err;
	char *dir = make_dir(), sub[512];

	(void)snprintf(sub, sizeof(sub), "%s/grey", dir);
	assert_int_equal(
	    policy_table_file(sub, "t.db", 2048, "test", 1, &t, &err), PTL_OK);
	race(t);
	policy_table_free(t);
	remove_dir(dir);
}

/* A child dies holding a stripe: the next locker takes it over. */
static void
test_robust_lock(void **state)
{
	struct policy_table_stats stats;
	struct policy_table *t;
	struct ptl_error err;
	uint64_t key[2];
	pid_t pid;
	int status;

	assert_int_equal(policy_table_anon(1024, "test", &t, &err), PTL_OK);
	policy_table_key(t, "k", 1, key);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (policy_table_lock(t, key[0] % t->nstripes, &err) != PTL_OK)
			_exit(1);
		_exit(0); /* without unlocking */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(bump(t, "k", 1, 100), 1);
	assert_int_equal(bump(t, "k", 1, 100), 2);
	policy_table_stats(t, &stats);
	assert_int_equal(stats.recoveries, 1);
	policy_table_free(t);
}

static void
test_file_persists(void **state)
{
	struct policy_table *t;
	struct ptl_error err;
	char *dir = make_dir();
	uint64_t key0;

	assert_int_equal(
	    policy_table_file(dir, "t.db", 2048, "test", 1, &t, &err), PTL_OK);
	key0 = t->hash_key[0];
	assert_int_equal(bump(t, "kept", 1, 1000), 1);
	assert_int_equal(bump(t, "kept", 1, 1000), 2);
	assert_int_equal(bump(t, "gone", 1, 50), 1);
	assert_int_equal(policy_table_sync(t, &err), PTL_OK);
	policy_table_free(t);

	/* Reopened: same key, same counts. */
	assert_int_equal(
	    policy_table_file(dir, "t.db", 2048, "test", 10, &t, &err), PTL_OK);
	assert_true(t->hash_key[0] == key0);
	assert_int_equal(peek(t, "kept", 10), 2);
	assert_int_equal(peek(t, "gone", 10), 1);
	policy_table_free(t);

	/* Another size: migrated, live entries kept, expired dropped. */
	assert_int_equal(
	    policy_table_file(dir, "t.db", 8192, "test", 100, &t, &err),
	    PTL_OK);
	assert_int_equal(t->nslots, 8192);
	assert_true(t->hash_key[0] == key0);
	assert_int_equal(peek(t, "kept", 100), 2);
	assert_int_equal(peek(t, "gone", 10), -1);
	assert_int_equal(policy_table_count(t, 100), 1);
	policy_table_free(t);
	remove_dir(dir);
}

static void
test_file_damaged(void **state)
{
	struct policy_table *t;
	struct ptl_error err;
	char *dir = make_dir(), path[512];
	struct stat st;
	int fd;

	(void)snprintf(path, sizeof(path), "%s/t.db", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "garbage", 7), 7);
	close(fd);
	assert_int_equal(
	    policy_table_file(dir, "t.db", 1024, "test", 1, &t, &err), PTL_OK);
	assert_int_equal(peek(t, "x", 1), -1);
	policy_table_free(t);
	(void)snprintf(path, sizeof(path), "%s/t.db.corrupt", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 7);

	/* A table of another kind is not taken for ours either. */
	assert_int_equal(
	    policy_table_file(dir, "t.db", 1024, "other", 1, &t, &err), PTL_OK);
	policy_table_free(t);
	remove_dir(dir);
}

static void
test_file_refuses_links(void **state)
{
	struct policy_table *t;
	struct ptl_error err;
	char *dir = make_dir(), path[512], target[512];
	int fd;

	(void)snprintf(target, sizeof(target), "%s/victim", dir);
	fd = open(target, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	(void)snprintf(path, sizeof(path), "%s/t.db", dir);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(
	    policy_table_file(dir, "t.db", 1024, "test", 1, &t, &err),
	    PTL_ERROR);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(link(target, path), 0);
	assert_int_equal(
	    policy_table_file(dir, "t.db", 1024, "test", 1, &t, &err),
	    PTL_ERROR);
	assert_non_null(strstr(err.text, "one link"));
	/* A directory others may write to is refused. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(
	    policy_table_file(dir, "t.db", 1024, "test", 1, &t, &err),
	    PTL_ERROR);
	assert_non_null(strstr(err.text, "writable"));
	remove_dir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_count_and_expire),
	    cmocka_unit_test(test_window_eviction),
	    cmocka_unit_test(test_fork_anon),
	    cmocka_unit_test(test_fork_file),
	    cmocka_unit_test(test_robust_lock),
	    cmocka_unit_test(test_file_persists),
	    cmocka_unit_test(test_file_damaged),
	    cmocka_unit_test(test_file_refuses_links),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
