/* SPDX-License-Identifier: MIT */
/* The shared storage backend suite: the contract of storage.h, any backend. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "core/loop.h"
#include "harness.h"
#include "suite_tests.h"

/* Concurrent deliveries, all submitted before the loop runs. */
#define SUITE_CONCURRENT 1000

static char suite_why[1024];

/* Per test: a fresh directory as working directory, the backend loaded. */
static int
test_setup(void **state)
{
	/* The initial state is the test's name (see SUITE_TEST). */
	if (harness_test_dir(*state) != 0)
		return -1;
	if (harness_load(NULL, suite_why, sizeof(suite_why)) != PTL_OK) {
		print_error("load: %s\n", suite_why);
		return -1;
	}
	return 0;
}

static int
test_teardown(void **state)
{
	char cwd[PATH_MAX];

	harness_unload();
	if (getcwd(cwd, sizeof(cwd)) != NULL)
		harness_chmod_tree(cwd, true);
	harness_leave_dir();
	return 0;
}

void
suite_reload(const json_t *extra)
{
	harness_unload();
	if (harness_load(extra, suite_why, sizeof(suite_why)) != PTL_OK)
		fail_msg("reload: %s", suite_why);
}

static void
expect_status(struct st_result r, enum ptl_storage_status want)
{
	if (r.status != want)
		fail_msg("status %d (%s), expected %d", (int)r.status, r.reason,
		         (int)want);
}

void
expect_ok(struct st_result r)
{
	expect_status(r, PTL_STORAGE_OK);
}

/* Uids: printable ASCII without spaces, 1..70 chars (a POP3 UIDL). */
static void
expect_uid_valid(const char *uid)
{
	size_t len;

	assert_non_null(uid);
	len = strlen(uid);
	if (len < 1 || len > 70)
		fail_msg("uid \"%s\" has %zu characters", uid, len);
	for (size_t i = 0; i < len; i++)
		if (uid[i] <= 0x20 || uid[i] >= 0x7f)
			fail_msg("uid \"%s\" has a bad character", uid);
}

void
expect_message(struct ptl_mailbox *mb, size_t index, const char *prefix,
               uint32_t seed, uint64_t size)
{
	size_t plen = prefix != NULL ? strlen(prefix) : 0;
	const struct ptl_storage_msg *m = st->message(mb, index);
	int fd;

	assert_non_null(m);
	expect_uid_valid(m->uid);
	assert_int_equal(m->size, plen + size);
	expect_ok(st_read(mb, index, &fd));
	assert_true(fd >= 0);
	msg_expect_fd(fd, prefix, plen, seed, size);
	close(fd);
}

size_t
expect_count(const char *user, size_t want)
{
	struct ptl_mailbox *mb;
	size_t n;

	expect_ok(st_open(user, 0, &mb));
	n = st->count(mb);
	st->close(mb);
	if (n != want)
		fail_msg("%zu messages, expected %zu", n, want);
	return n;
}

/* deliver, list, read back byte-exact, in delivery order. */
static void
test_deliver_list_read(void **state)
{
	const char *user = harness_user("basic");
	static const uint64_t sizes[] = {100, 2048, 70000, 1};
	struct ptl_mailbox *mb;

	for (size_t i = 0; i < 4; i++)
		expect_ok(st_deliver(user, (uint32_t)i + 1, sizes[i], NULL));
	expect_ok(st_open(user, 0, &mb));
	assert_int_equal(st->count(mb), 4);
	for (size_t i = 0; i < 4; i++)
		expect_message(mb, i, NULL, (uint32_t)i + 1, sizes[i]);
	for (size_t i = 0; i < 4; i++)
		for (size_t j = i + 1; j < 4; j++)
			assert_string_not_equal(st->message(mb, i)->uid,
			                        st->message(mb, j)->uid);
	assert_null(st->message(mb, 4));
	st->close(mb);
}

/* A user that never got mail has an empty mailbox, not an error. */
static void
test_empty_mailbox(void **state)
{
	expect_count(harness_user("nobody-yet"), 0);
}

static void
test_prefix_first(void **state)
{
	const char *user = harness_user("prefix");
	const char *prefix = "Return-Path: <sender@example.org>\r\n"
	                     "Delivered-To: prefix@example.test\r\n";
	struct ptl_mailbox *mb;

	expect_ok(st_deliver(user, 7, 5000, prefix));
	expect_ok(st_open(user, 0, &mb));
	assert_int_equal(st->count(mb), 1);
	expect_message(mb, 0, prefix, 7, 5000);
	st->close(mb);
}

static void
test_zero_length(void **state)
{
	const char *user = harness_user("empty");
	struct ptl_mailbox *mb;
	char c;
	int fd;

	expect_ok(st_deliver(user, 9, 0, NULL));
	expect_ok(st_open(user, 0, &mb));
	assert_int_equal(st->count(mb), 1);
	assert_int_equal(st->message(mb, 0)->size, 0);
	expect_uid_valid(st->message(mb, 0)->uid);
	expect_ok(st_read(mb, 0, &fd));
	assert_int_equal(pread(fd, &c, 1, 0), 0);
	close(fd);
	st->close(mb);
}

static void
test_large_10mb(void **state)
{
	const char *user = harness_user("large");
	const uint64_t size = 10 * 1024 * 1024 + 17;
	struct ptl_mailbox *mb;

	expect_ok(st_deliver(user, 10, size, "X-Prefix: yes\r\n"));
	expect_ok(st_open(user, 0, &mb));
	assert_int_equal(st->count(mb), 1);
	expect_message(mb, 0, "X-Prefix: yes\r\n", 10, size);
	st->close(mb);
}

/* expunge: the chosen ones go, the others stay intact and in order. */
static void
test_expunge(void **state)
{
	const char *user = harness_user("expunge");
	const size_t gone[] = {1, 3};
	char uids[5][80];
	struct ptl_mailbox *mb;
	int fd;

	for (uint32_t i = 0; i < 5; i++)
		expect_ok(st_deliver(user, 100 + i, 300 + i, NULL));
	expect_ok(st_open(user, PTL_STORAGE_LOCK, &mb));
	assert_int_equal(st->count(mb), 5);
	for (size_t i = 0; i < 5; i++)
		snprintf(uids[i], sizeof(uids[i]), "%s",
		         st->message(mb, i)->uid);
	expect_ok(st_expunge(mb, gone, 2));
	/* The snapshot keeps its numbering; an expunged one cannot be read. */
	assert_int_equal(st->count(mb), 5);
	if (st_read(mb, 1, &fd).status == PTL_STORAGE_OK) {
		close(fd);
		fail_msg("read of an expunged message succeeded");
	}
	expect_message(mb, 2, NULL, 102, 302);
	st->close(mb);

	expect_ok(st_open(user, PTL_STORAGE_LOCK, &mb));
	assert_int_equal(st->count(mb), 3);
	assert_string_equal(st->message(mb, 0)->uid, uids[0]);
	assert_string_equal(st->message(mb, 1)->uid, uids[2]);
	assert_string_equal(st->message(mb, 2)->uid, uids[4]);
	expect_message(mb, 0, NULL, 100, 300);
	expect_message(mb, 1, NULL, 102, 302);
	expect_message(mb, 2, NULL, 104, 304);
	/* Everything at once, then an empty mailbox. */
	{
		const size_t all[] = {0, 1, 2};

		expect_ok(st_expunge(mb, all, 3));
	}
	st->close(mb);
	expect_count(user, 0);
}

/* An exclusive open excludes a second one, here and in another process. */
static void
test_lock_conflict(void **state)
{
	const char *user = harness_user("lock");
	struct ptl_mailbox *mb, *mb2;

	expect_ok(st_deliver(user, 1, 100, NULL));
	expect_ok(st_open(user, PTL_STORAGE_LOCK, &mb));
	expect_status(st_open(user, PTL_STORAGE_LOCK, &mb2),
	              PTL_STORAGE_LOCKED);
	assert_null(mb2);
	assert_int_equal(harness_child_open_lock(user), PTL_STORAGE_LOCKED);
	/* Reading without the lock, and delivering, still work. */
	expect_ok(st_open(user, 0, &mb2));
	st->close(mb2);
	expect_ok(st_deliver(user, 2, 100, NULL));
	/* Other users are not affected. */
	expect_ok(st_open(harness_user("lock-other"), PTL_STORAGE_LOCK, &mb2));
	st->close(mb2);
	st->close(mb);

	assert_int_equal(harness_child_open_lock(user), PTL_STORAGE_OK);
	expect_ok(st_open(user, PTL_STORAGE_LOCK, &mb2));
	assert_int_equal(st->count(mb2), 2);
	st->close(mb2);
}

static void
test_quota(void **state)
{
	const char *user = harness_user("quota");
	json_t *extra = json_pack("{s:s}", "quota", "10k");
	uint64_t used = 1, limit = 1;
	struct ptl_mailbox *mb;
	const size_t first = 0;
	char why[1024];

	harness_unload();
	if (harness_load(extra, why, sizeof(why)) != PTL_OK) {
		json_decref(extra);
		print_message("# %s\n", why);
		skip(); /* the backend has no "quota" key */
	}
	json_decref(extra);
	expect_ok(st_quota(user, &used, &limit));
	assert_int_equal(used, 0);
	assert_int_equal(limit, 10240);
	expect_ok(st_deliver(user, 1, 4000, NULL));
	expect_ok(st_deliver(user, 2, 4000, NULL));
	expect_status(st_deliver(user, 3, 4000, NULL), PTL_STORAGE_PERMFAIL);
	expect_status(st_deliver(user, 4, 20000, NULL), PTL_STORAGE_PERMFAIL);
	expect_ok(st_quota(user, &used, &limit));
	assert_int_equal(used, 8000);
	expect_count(user, 2);
	/* Room again after an expunge. */
	expect_ok(st_open(user, PTL_STORAGE_LOCK, &mb));
	expect_ok(st_expunge(mb, &first, 1));
	st->close(mb);
	expect_ok(st_quota(user, &used, &limit));
	assert_int_equal(used, 4000);
	expect_ok(st_deliver(user, 5, 4000, NULL));
	/* Unlimited: the limit reads 0 and the use is still counted. */
	suite_reload(NULL);
	expect_ok(st_quota(user, &used, &limit));
	assert_int_equal(used, 8000);
	assert_int_equal(limit, 0);
}

/* uids survive closing, a fresh load of the backend, and are never reused. */
static void
test_restart_uids(void **state)
{
	const char *user = harness_user("restart");
	char uids[4][80];
	struct ptl_mailbox *mb;
	size_t last;

	for (uint32_t i = 0; i < 3; i++)
		expect_ok(st_deliver(user, 200 + i, 1000, NULL));
	expect_ok(st_open(user, PTL_STORAGE_LOCK, &mb));
	assert_int_equal(st->count(mb), 3);
	for (size_t i = 0; i < 3; i++)
		snprintf(uids[i], sizeof(uids[i]), "%s",
		         st->message(mb, i)->uid);
	st->close(mb);

	suite_reload(NULL);
	expect_ok(st_open(user, PTL_STORAGE_LOCK, &mb));
	assert_int_equal(st->count(mb), 3);
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(st->message(mb, i)->uid, uids[i]);
		expect_message(mb, i, NULL, 200 + (uint32_t)i, 1000);
	}
	st->close(mb);

	/* The newest message goes; its uid must not come back. */
	expect_ok(st_deliver(user, 203, 1000, NULL));
	expect_ok(st_open(user, PTL_STORAGE_LOCK, &mb));
	assert_int_equal(st->count(mb), 4);
	snprintf(uids[3], sizeof(uids[3]), "%s", st->message(mb, 3)->uid);
	last = 3;
	expect_ok(st_expunge(mb, &last, 1));
	st->close(mb);
	suite_reload(NULL);
	expect_ok(st_deliver(user, 204, 1000, NULL));
	expect_ok(st_open(user, 0, &mb));
	assert_int_equal(st->count(mb), 4);
	for (size_t i = 0; i < 4; i++)
		assert_string_not_equal(st->message(mb, i)->uid, uids[3]);
	assert_string_equal(st->message(mb, 2)->uid, uids[2]);
	expect_message(mb, 3, NULL, 204, 1000);
	st->close(mb);
}

static void
test_snapshot_excludes_later(void **state)
{
	const char *user = harness_user("snapshot");
	struct ptl_mailbox *mb;

	expect_ok(st_deliver(user, 1, 500, NULL));
	expect_ok(st_deliver(user, 2, 500, NULL));
	expect_ok(st_open(user, PTL_STORAGE_LOCK, &mb));
	assert_int_equal(st->count(mb), 2);
	expect_ok(st_deliver(user, 3, 500, NULL));
	assert_int_equal(st->count(mb), 2);
	assert_null(st->message(mb, 2));
	expect_message(mb, 1, NULL, 2, 500);
	st->close(mb);
	expect_count(user, 3);
}

struct concurrent_delivery {
	int fd;
	uint64_t size;
	struct st_result r;
};

static void
on_concurrent(const struct ptl_storage_result *res, void *arg)
{
	struct concurrent_delivery *c = arg;

	c->r.status = res->status;
	snprintf(c->r.reason, sizeof(c->r.reason), "%s", res->reason);
	if (--suite_pending == 0)
		ptl_loop_exit();
}

/*
 * Submit @p n deliveries (message i has seed i and size c[i].size) before
 * the loop runs, then run it until every completion came.
 */
static void
deliver_concurrently(const char *user, struct concurrent_delivery *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct ptl_storage_delivery d = {
		    .user = user,
		    .size = c[i].size,
		    .envelope_from = "",
		    .received_at = 1700000000 + (int64_t)i,
		};

		c[i].fd = msg_source((uint32_t)i, d.size);
		d.fd = c[i].fd;
		c[i].r.status = PTL_STORAGE_TEMPFAIL;
		suite_pending++;
		c[i].r.rc = st->deliver(st_inst, &d, on_concurrent, &c[i]);
		assert_int_equal(c[i].r.rc, PTL_AGAIN);
	}
	suite_run_pending();
	for (size_t i = 0; i < n; i++)
		close(c[i].fd);
}

/*
 * The mailbox holds exactly the deliveries of @p c that succeeded, each
 * intact, with distinct uids. Returns how many there are.
 */
static size_t
expect_delivered(const char *user, const struct concurrent_delivery *c,
                 size_t n)
{
	struct ptl_mailbox *mb;
	size_t count, ok = 0;
	bool *seen = calloc(n, sizeof(*seen));

	assert_non_null(seen);
	for (size_t i = 0; i < n; i++)
		ok += c[i].r.status == PTL_STORAGE_OK;
	expect_ok(st_open(user, PTL_STORAGE_LOCK, &mb));
	count = st->count(mb);
	assert_int_equal(count, ok);
	for (size_t i = 0; i < count; i++) {
		const struct ptl_storage_msg *m = st->message(mb, i);
		uint32_t seed;
		int fd;

		expect_ok(st_read(mb, i, &fd));
		assert_int_equal(msg_seed_of_fd(fd, &seed), 0);
		assert_true(seed < n);
		assert_int_equal(c[seed].r.status, PTL_STORAGE_OK);
		assert_false(seen[seed]);
		seen[seed] = true;
		assert_int_equal(m->size, c[seed].size);
		msg_expect_fd(fd, NULL, 0, seed, m->size);
		close(fd);
		for (size_t j = 0; j < i; j++)
			if (strcmp(st->message(mb, j)->uid, m->uid) == 0)
				fail_msg("uid %s twice", m->uid);
	}
	st->close(mb);
	free(seen);
	return count;
}

/* 1,000 deliveries queued at once: every one present and intact. */
static void
test_concurrent_1000(void **state)
{
	const char *user = harness_user("concurrent");
	struct concurrent_delivery *c = calloc(SUITE_CONCURRENT, sizeof(*c));

	assert_non_null(c);
	for (size_t i = 0; i < SUITE_CONCURRENT; i++)
		c[i].size = 200 + (i * 37) % 3000;
	deliver_concurrently(user, c, SUITE_CONCURRENT);
	for (size_t i = 0; i < SUITE_CONCURRENT; i++)
		if (c[i].r.status != PTL_STORAGE_OK)
			fail_msg("delivery %zu: status %d (%s)", i,
			         (int)c[i].r.status, c[i].r.reason);
	assert_int_equal(expect_delivered(user, c, SUITE_CONCURRENT),
	                 SUITE_CONCURRENT);
	free(c);
}

/*
 * Concurrent deliveries near the quota: the ones that fit get in, the
 * others fail permanently, and a refused one never disturbs an accepted
 * one (backends that batch deliveries must isolate them).
 */
static void
test_concurrent_quota(void **state)
{
	const char *user = harness_user("cquota");
	json_t *extra = json_pack("{s:s}", "quota", "100k");
	struct concurrent_delivery c[40];
	size_t ok = 0;
	char why[1024];

	harness_unload();
	if (harness_load(extra, why, sizeof(why)) != PTL_OK) {
		json_decref(extra);
		print_message("# %s\n", why);
		skip();
	}
	json_decref(extra);
	memset(c, 0, sizeof(c));
	for (size_t i = 0; i < 40; i++)
		c[i].size = 5000;
	deliver_concurrently(user, c, 40);
	for (size_t i = 0; i < 40; i++) {
		if (c[i].r.status == PTL_STORAGE_OK)
			ok++;
		else if (c[i].r.status != PTL_STORAGE_PERMFAIL)
			fail_msg("delivery %zu: status %d (%s)", i,
			         (int)c[i].r.status, c[i].r.reason);
	}
	/* 20 fit in 100 KiB; racing checks may let a few more in. */
	if (ok < 20 || ok == 40)
		fail_msg("%zu of 40 deliveries accepted", ok);
	assert_int_equal(expect_delivered(user, c, 40), ok);
}

/* Issue point 6: permission denied is temporary, logged, leaves nothing. */
static void
test_fail_readonly(void **state)
{
	const char *user = harness_user("readonly");
	char cwd[PATH_MAX];
	long mark;

	if (suite.root && !suite.dac_dropped) {
		print_message(
		    "# root without a way to drop CAP_DAC_OVERRIDE\n");
		skip();
	}
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	expect_ok(st_deliver(user, 1, 1000, NULL));
	harness_unload();
	harness_chmod_tree(cwd, false);
	/* A fresh load: nothing may keep a file opened before the change. */
	suite_reload(NULL);
	mark = harness_log_mark();
	expect_status(st_deliver(user, 2, 1000, NULL), PTL_STORAGE_TEMPFAIL);
	if (!harness_log_has(mark, user, "failed"))
		fail_msg("no log line naming %s and \"failed\"", user);
	harness_unload();
	harness_chmod_tree(cwd, true);
	suite_reload(NULL);
	assert_int_equal(harness_tmp_leftovers(cwd), 0);
	{
		struct ptl_mailbox *mb;

		expect_ok(st_open(user, 0, &mb));
		assert_int_equal(st->count(mb), 1);
		expect_message(mb, 0, NULL, 1, 1000);
		st->close(mb);
	}
	expect_ok(st_deliver(user, 3, 1000, NULL));
	expect_count(user, 2);
}

/* Issue point 6: a mailbox (or the whole store) that vanished is recreated. */
static void
test_fail_missing_store(void **state)
{
	const char *user = harness_user("missing");
	char cwd[PATH_MAX];
	char path[PATH_MAX + 8];

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	expect_ok(st_deliver(user, 1, 1000, NULL));
	harness_unload();
	/* Everything the backend created under the test directory. */
	snprintf(path, sizeof(path), "%s/var", cwd);
	harness_remove_tree(path);
	suite_reload(NULL);
	expect_ok(st_deliver(user, 2, 1000, NULL));
	{
		struct ptl_mailbox *mb;

		expect_ok(st_open(user, 0, &mb));
		assert_int_equal(st->count(mb), 1);
		expect_message(mb, 0, NULL, 2, 1000);
		st->close(mb);
	}
}

static char full_mount[PATH_MAX + 16];

static int
full_teardown(void **state)
{
	harness_unload();
	harness_leave_dir();
	if (full_mount[0] != '\0') {
		if (umount2(full_mount, MNT_DETACH) != 0)
			print_error("umount %s: %s\n", full_mount,
			            strerror(errno));
		full_mount[0] = '\0';
	}
	return test_teardown(state);
}

/* Issue point 6: a full disk (a 1 MiB tmpfs) is temporary, leaves nothing. */
static void
test_fail_disk_full(void **state)
{
	const char *user = harness_user("full");
	struct ptl_mailbox *mb;
	char cwd[PATH_MAX];
	long mark;

	if (!suite.root) {
		print_message("# not root: cannot mount a small tmpfs\n");
		skip();
	}
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	snprintf(full_mount, sizeof(full_mount), "%s/full", cwd);
	assert_int_equal(mkdir(full_mount, 0700), 0);
	if (mount("tmpfs", full_mount, "tmpfs", MS_NOSUID | MS_NODEV,
	          "size=1m,mode=0700") != 0) {
		print_message("# mount tmpfs: %s\n", strerror(errno));
		full_mount[0] = '\0';
		skip();
	}
	/* The store's relative paths now land on the small file system. */
	harness_unload();
	assert_int_equal(chdir(full_mount), 0);
	suite_reload(NULL);
	expect_ok(st_deliver(user, 1, 10000, NULL));
	mark = harness_log_mark();
	expect_status(st_deliver(user, 2, 2 * 1024 * 1024, NULL),
	              PTL_STORAGE_TEMPFAIL);
	if (!harness_log_has(mark, user, "failed"))
		fail_msg("no log line naming %s and \"failed\"", user);
	assert_int_equal(harness_tmp_leftovers(full_mount), 0);
	expect_ok(st_open(user, 0, &mb));
	assert_int_equal(st->count(mb), 1);
	expect_message(mb, 0, NULL, 1, 10000);
	st->close(mb);
	/* The failed one gave its space back. */
	expect_ok(st_deliver(user, 3, 10000, NULL));
	expect_count(user, 2);

	/*
	 * The same among others delivered at the same time: the big one
	 * fails; the small ones may succeed or fail temporarily (a backend
	 * may roll back a whole batch) but never end up half there.
	 */
	{
		const char *user2 = harness_user("full-batch");
		struct concurrent_delivery c[5];

		memset(c, 0, sizeof(c));
		for (size_t i = 0; i < 5; i++)
			c[i].size = i == 2 ? 2 * 1024 * 1024 : 5000;
		deliver_concurrently(user2, c, 5);
		if (c[2].r.status != PTL_STORAGE_TEMPFAIL)
			fail_msg("big delivery: status %d (%s)",
			         (int)c[2].r.status, c[2].r.reason);
		for (size_t i = 0; i < 5; i++)
			if (c[i].r.status == PTL_STORAGE_PERMFAIL)
				fail_msg("delivery %zu: PERMFAIL (%s)", i,
				         c[i].r.reason);
		expect_delivered(user2, c, 5);
		assert_int_equal(harness_tmp_leftovers(full_mount), 0);
	}
}

#define SUITE_TEST(fn)                                                         \
	cmocka_unit_test_prestate_setup_teardown(fn, test_setup,               \
	                                         test_teardown, (void *)#fn)

static const struct CMUnitTest suite_tests[] = {
    SUITE_TEST(test_deliver_list_read),
    SUITE_TEST(test_empty_mailbox),
    SUITE_TEST(test_prefix_first),
    SUITE_TEST(test_zero_length),
    SUITE_TEST(test_large_10mb),
    SUITE_TEST(test_expunge),
    SUITE_TEST(test_lock_conflict),
    SUITE_TEST(test_quota),
    SUITE_TEST(test_restart_uids),
    SUITE_TEST(test_snapshot_excludes_later),
    SUITE_TEST(test_concurrent_1000),
    SUITE_TEST(test_concurrent_quota),
    SUITE_TEST(test_fail_readonly),
    SUITE_TEST(test_fail_missing_store),
    cmocka_unit_test_prestate_setup_teardown(test_fail_disk_full, test_setup,
                                             full_teardown,
                                             (void *)"test_fail_disk_full"),
    SUITE_TEST(test_maildir_layout),
    SUITE_TEST(test_maildir_unsafe_users),
    SUITE_TEST(test_maildir_missing_subdirs),
    SUITE_TEST(test_maildir_foreign_files),
    SUITE_TEST(test_sqlite_corrupt),
    SUITE_TEST(test_sqlite_layout),
};

static void
usage(void)
{
	fprintf(stderr,
	        "usage: storage_suite MODULE.so [SECTION-JSON]\n"
	        "   or: PETREL_STORAGE_MODULE=MODULE.so "
	        "PETREL_STORAGE_CONFIG=JSON storage_suite\n"
	        "Runs the storage contract tests against the backend in "
	        "MODULE.so,\nconfigured with SECTION-JSON (default {}); "
	        "relative paths in it land\nin a scratch directory per "
	        "test. PETREL_STORAGE_NAME overrides the\nmodule name "
	        "(default: the file name without .so).\n");
}

static int
suite_parse(const char *module, const char *section_text)
{
	json_error_t jerr;
	const char *base, *name;
	char *dot;

	if (realpath(module, suite.module_path) == NULL) {
		fprintf(stderr, "storage_suite: %s: %s\n", module,
		        strerror(errno));
		return -1;
	}
	snprintf(suite.module_dir, sizeof(suite.module_dir), "%s",
	         suite.module_path);
	*strrchr(suite.module_dir, '/') = '\0';
	base = strrchr(suite.module_path, '/') + 1;
	name = getenv("PETREL_STORAGE_NAME");
	snprintf(suite.name, sizeof(suite.name), "%s",
	         name != NULL ? name : base);
	dot = strstr(suite.name, ".so");
	if (name == NULL && dot != NULL)
		*dot = '\0';
	suite.section =
	    json_loads(section_text != NULL ? section_text : "{}", 0, &jerr);
	if (suite.section == NULL || !json_is_object(suite.section)) {
		fprintf(stderr, "storage_suite: config section: %s\n",
		        suite.section == NULL ? jerr.text
		                              : "expected an object");
		return -1;
	}
	if (readlink("/proc/self/exe", suite.self_exe,
	             sizeof(suite.self_exe) - 1) < 0) {
		perror("storage_suite: /proc/self/exe");
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *module = getenv("PETREL_STORAGE_MODULE");
	const char *section = getenv("PETREL_STORAGE_CONFIG");
	int rc;

	if (argc == 7 && strcmp(argv[1], "--child-lock") == 0) {
		if (suite_parse(argv[2], argv[3]) != 0)
			return 2;
		return harness_child_main(argc, argv);
	}
	if (argc >= 2 && argv[1][0] == '-') {
		usage();
		return argv[1][1] == 'h' ? 0 : 2;
	}
	if (argc >= 2)
		module = argv[1];
	if (argc >= 3)
		section = argv[2];
	if (module == NULL) {
		usage();
		return 2;
	}
	if (suite_parse(module, section) != 0 || harness_prepare() != 0)
		return 1;
	if (chdir(suite.base_dir) != 0)
		return 1;
	harness_tap_filter_start();
	rc = cmocka_run_group_tests_name(suite.name, suite_tests, NULL, NULL);
	harness_tap_filter_finish();
	if (rc == 0 && getenv("PETREL_STORAGE_KEEP") == NULL) {
		harness_chmod_tree(suite.base_dir, true);
		harness_remove_tree(suite.base_dir);
	} else {
		fprintf(stderr, "storage_suite: scratch kept in %s\n",
		        suite.base_dir);
	}
	json_decref(suite.section);
	return rc;
}
