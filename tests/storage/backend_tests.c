/* SPDX-License-Identifier: MIT */
/* Backend-specific checks of the suite: Maildir layout, SQLite file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#ifdef HAVE_SQLITE3
#include <sqlite3.h>
#endif

#include "suite_tests.h"

static void
only_for(const char *backend)
{
	if (strcmp(suite.name, backend) != 0) {
		print_message("# only for the %s backend\n", backend);
		skip();
	}
}

/* The Maildir of @p user per the "location" template (relative to cwd). */
static void
maildir_of(const char *user, char *out, size_t outsz)
{
	const json_t *loc = json_object_get(suite.section, "location");
	const char *tmpl = json_is_string(loc) ? json_string_value(loc)
	                                       : "var/mail/%d/%n/Maildir";
	const char *at = strrchr(user, '@');
	size_t pos = 0;

	assert_non_null(at);
	for (const char *p = tmpl; *p != '\0' && pos + 1 < outsz; p++) {
		const char *s = NULL;
		size_t n = 0;

		if (*p == '%' && p[1] == 'n') {
			s = user;
			n = (size_t)(at - user);
		} else if (*p == '%' && p[1] == 'd') {
			s = at + 1;
			n = strlen(s);
		} else if (*p == '%' && p[1] == 'u') {
			s = user;
			n = strlen(s);
		} else if (*p == '%' && p[1] == '%') {
			s = "%";
			n = 1;
		}
		if (s != NULL) {
			p++;
		} else {
			s = p;
			n = 1;
		}
		assert_true(pos + n < outsz);
		memcpy(out + pos, s, n);
		pos += n;
	}
	out[pos] = '\0';
}

/* Names in @p dir, not starting with "."; returns how many, first in @p. */
static size_t
dir_entries(const char *dir, char *first, size_t firstsz)
{
	struct dirent *de;
	size_t n = 0;
	DIR *d = opendir(dir);

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n++ == 0 && first != NULL)
			snprintf(first, firstsz, "%s", de->d_name);
	}
	closedir(d);
	return n;
}

static void
write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void
expect_text(struct ptl_mailbox *mb, size_t index, const char *text)
{
	char buf[256];
	ssize_t n;
	int fd;

	assert_int_equal(st->message(mb, index)->size, strlen(text));
	expect_ok(st_read(mb, index, &fd));
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	assert_string_equal(buf, text);
}

/* Dovecot/mutt layout: tmp/ -> new/ with ",S=", cur/ with ":2,". */
void
test_maildir_layout(void **state)
{
	const char *user = harness_user("layout");
	const char *prefix = "Return-Path: <a@b.example>\r\n";
	char dir[PATH_MAX], sub[PATH_MAX + 8], name[300], path[PATH_MAX * 2];
	char pattern[256], uid[320];
	struct ptl_mailbox *mb;
	struct stat sb;
	regex_t re;
	int fd;

	only_for("maildir");
	expect_ok(st_deliver(user, 42, 3000, prefix));
	maildir_of(user, dir, sizeof(dir));

	snprintf(sub, sizeof(sub), "%s/tmp", dir);
	assert_int_equal(dir_entries(sub, NULL, 0), 0);
	assert_int_equal(stat(sub, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0700);
	snprintf(sub, sizeof(sub), "%s/cur", dir);
	assert_int_equal(dir_entries(sub, NULL, 0), 0);
	snprintf(sub, sizeof(sub), "%s/new", dir);
	assert_int_equal(dir_entries(sub, name, sizeof(name)), 1);

	/* time.M<usec>P<pid>Q<n>.<host>,S=<size> */
	snprintf(pattern, sizeof(pattern),
	         "^[0-9]+\\.M[0-9]+P%ldQ[0-9]+\\.mx\\.storage-suite\\.test"
	         ",S=%zu$",
	         (long)getpid(), strlen(prefix) + 3000);
	assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	if (regexec(&re, name, 0, NULL, 0) != 0)
		fail_msg("name \"%s\" does not match %s", name, pattern);
	regfree(&re);
	snprintf(path, sizeof(path), "%s/%s", sub, name);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	msg_expect_fd(fd, prefix, strlen(prefix), 42, 3000);
	close(fd);

	/* Opening moves it to cur/ with an info part; uid = unique part. */
	expect_ok(st_open(user, PTL_STORAGE_LOCK, &mb));
	assert_int_equal(dir_entries(sub, NULL, 0), 0);
	snprintf(sub, sizeof(sub), "%s/cur", dir);
	snprintf(uid, sizeof(uid), "%s:2,", name);
	assert_int_equal(dir_entries(sub, path, sizeof(path)), 1);
	assert_string_equal(path, uid);
	*strchr(uid, ',') = '\0';
	assert_string_equal(st->message(mb, 0)->uid, uid);
	st->close(mb);
}

/* A user name must never lead outside the template's directory. */
void
test_maildir_unsafe_users(void **state)
{
	static const char *const users[] = {
	    "../evil@example.test",
	    "a/b@example.test",
	    "x@../etc",
	    "x@..",
	    ".hidden@example.test",
	    "x@.example.test",
	    "x@exa/mple.test",
	    "@example.test",
	    "x@",
	    "line\nbreak@example.test",
	    "",
	};
	struct ptl_mailbox *mb;
	struct st_result r;
	char cwd[PATH_MAX];

	only_for("maildir");
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		r = st_deliver(users[i], 1, 100, NULL);
		if (r.status != PTL_STORAGE_PERMFAIL)
			fail_msg("deliver to \"%s\": status %d (%s)", users[i],
			         (int)r.status, r.reason);
		r = st_open(users[i], 0, &mb);
		if (r.status != PTL_STORAGE_PERMFAIL)
			fail_msg("open of \"%s\": status %d (%s)", users[i],
			         (int)r.status, r.reason);
		assert_null(mb);
	}
	/* Nothing was created anywhere: not even var/. */
	assert_int_equal(dir_entries(cwd, NULL, 0), 0);
	assert_int_equal(access("../etc", F_OK), -1);
	assert_int_equal(access("../evil", F_OK), -1);
}

/* tmp/, new/ or cur/ removed behind the server's back come back. */
void
test_maildir_missing_subdirs(void **state)
{
	const char *user = harness_user("subdirs");
	char dir[PATH_MAX], sub[PATH_MAX + 8];
	static const char *const names[] = {"tmp", "new", "cur"};

	only_for("maildir");
	expect_ok(st_deliver(user, 1, 100, NULL));
	expect_count(user, 1); /* moves it to cur/ */
	maildir_of(user, dir, sizeof(dir));
	for (size_t i = 0; i < 2; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", dir, names[i]);
		harness_remove_tree(sub);
		assert_int_equal(access(sub, F_OK), -1);
	}
	expect_ok(st_deliver(user, 2, 100, NULL));
	expect_count(user, 2);
	/* Only new/ gone: the delivery must not fail after writing tmp/. */
	snprintf(sub, sizeof(sub), "%s/new", dir);
	harness_remove_tree(sub);
	expect_ok(st_deliver(user, 3, 100, NULL));
	expect_count(user, 3);
	for (size_t i = 0; i < 3; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", dir, names[i]);
		harness_remove_tree(sub);
	}
	expect_count(user, 0);
	expect_ok(st_deliver(user, 4, 100, NULL));
	expect_count(user, 1);
}

/* Files written by Dovecot, mutt or older tools, and flag changes. */
void
test_maildir_foreign_files(void **state)
{
	const char *user = harness_user("foreign");
	char dir[PATH_MAX], path[PATH_MAX * 2], from[PATH_MAX * 2];
	const char *longname = "1400000000.M1P1.a-very-long-host-name-that-"
	                       "goes-on-and-on-and-on.example.org:2,S";
	struct ptl_mailbox *mb;
	const char *uid;

	only_for("maildir");
	expect_ok(st_deliver(user, 5, 100, NULL));
	maildir_of(user, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/cur/1600000000.M1P2.other,S=5,W=6:2,S",
	         dir);
	write_file(path, "hello");
	snprintf(path, sizeof(path), "%s/cur/1500000000.legacy:2,", dir);
	write_file(path, "legacy!\n");
	snprintf(path, sizeof(path), "%s/new/1650000000.M5P6.other", dir);
	write_file(path, "new one");
	snprintf(path, sizeof(path), "%s/cur/%s", dir, longname);
	write_file(path, "long");
	snprintf(path, sizeof(path), "%s/cur/.hidden", dir);
	write_file(path, "not mail");

	expect_ok(st_open(user, PTL_STORAGE_LOCK, &mb));
	assert_int_equal(st->count(mb), 5);
	uid = st->message(mb, 0)->uid;
	assert_int_equal(uid[0], 'H'); /* too long for a UIDL: a digest */
	assert_int_equal(strlen(uid), 33);
	expect_text(mb, 0, "long");
	assert_string_equal(st->message(mb, 1)->uid, "1500000000.legacy");
	expect_text(mb, 1, "legacy!\n");
	assert_string_equal(st->message(mb, 2)->uid, "1600000000.M1P2.other");
	expect_text(mb, 2, "hello");
	assert_string_equal(st->message(mb, 3)->uid, "1650000000.M5P6.other");
	expect_text(mb, 3, "new one");
	expect_message(mb, 4, NULL, 5, 100);

	/* Another client sets flags after our snapshot: still found. */
	snprintf(from, sizeof(from), "%s/cur/1600000000.M1P2.other,S=5,W=6:2,S",
	         dir);
	snprintf(path, sizeof(path),
	         "%s/cur/1600000000.M1P2.other,S=5,W=6:2,RS", dir);
	assert_int_equal(rename(from, path), 0);
	expect_text(mb, 2, "hello");
	snprintf(from, sizeof(from), "%s/cur/1500000000.legacy:2,", dir);
	snprintf(path, sizeof(path), "%s/cur/1500000000.legacy:2,T", dir);
	assert_int_equal(rename(from, path), 0);
	{
		const size_t both[] = {1, 2};

		expect_ok(st_expunge(mb, both, 2));
	}
	assert_int_equal(access(path, F_OK), -1);
	st->close(mb);

	expect_ok(st_open(user, 0, &mb));
	assert_int_equal(st->count(mb), 3);
	assert_string_equal(st->message(mb, 1)->uid, "1650000000.M5P6.other");
	st->close(mb);
}

/* The database file the section names (or the default), relative to cwd. */
static const char *
sqlite_db_path(void)
{
	const json_t *db = json_object_get(suite.section, "database");

	return json_is_string(db) ? json_string_value(db)
	                          : "var/mail/mailstore.db";
}

/* Issue point 6: a file that is not a database fails temporarily. */
void
test_sqlite_corrupt(void **state)
{
	const char *user = harness_user("corrupt");
	const char *db = sqlite_db_path();
	char text[8192 + 1];
	struct ptl_mailbox *mb;
	struct st_result r;
	long mark;

	only_for("sqlite");
	if (db[0] == '/') {
		print_message("# the database path is absolute: not touched\n");
		skip();
	}
	harness_unload();
	harness_remove_tree("var");
	assert_int_equal(mkdir("var", 0700), 0);
	assert_int_equal(mkdir("var/mail", 0700), 0);
	for (size_t i = 0; i < sizeof(text) - 1; i++)
		text[i] = "garbage, not SQLite\n"[i % 20];
	text[sizeof(text) - 1] = '\0';
	write_file(db, text);
	suite_reload(NULL);

	mark = harness_log_mark();
	r = st_deliver(user, 1, 1000, NULL);
	if (r.status != PTL_STORAGE_TEMPFAIL)
		fail_msg("deliver: status %d (%s)", (int)r.status, r.reason);
	if (!harness_log_has(mark, user, "not a database"))
		fail_msg("no log line naming %s and \"not a database\"", user);
	r = st_open(user, PTL_STORAGE_LOCK, &mb);
	if (r.status != PTL_STORAGE_TEMPFAIL)
		fail_msg("open: status %d (%s)", (int)r.status, r.reason);
	assert_null(mb);
	/* The file is left for the admin to inspect, not overwritten. */
	{
		char head[20];
		int fd = open(db, O_RDONLY | O_CLOEXEC);

		assert_true(fd >= 0);
		assert_int_equal(read(fd, head, sizeof(head)), 20);
		close(fd);
		assert_memory_equal(head, "garbage, not SQLite\n", 20);
	}
}

/* What the rows hold: envelope, time, uid, the body byte-exact; WAL mode. */
void
test_sqlite_layout(void **state)
{
#ifdef HAVE_SQLITE3
	const char *user = harness_user("rows");
	const char *prefix = "Delivered-To: rows@example.test\r\n";
	struct ptl_mailbox *mb;
	sqlite3_stmt *q;
	sqlite3 *db;
	char uid[80];
	int n;

	only_for("sqlite");
	expect_ok(st_deliver(user, 77, 5000, prefix));
	expect_ok(st_open(user, 0, &mb));
	assert_int_equal(st->count(mb), 1);
	snprintf(uid, sizeof(uid), "%s", st->message(mb, 0)->uid);
	st->close(mb);

	assert_int_equal(
	    sqlite3_open_v2(sqlite_db_path(), &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
	sqlite3_finalize(q);
	assert_int_equal(
	    sqlite3_prepare_v2(db,
	                       "SELECT m.uid, m.size, m.envelope_from, "
	                       "m.received_at, m.body FROM messages m "
	                       "JOIN users u ON u.id = m.user_id "
	                       "WHERE u.name = ?1",
	                       -1, &q, NULL),
	    SQLITE_OK);
	sqlite3_bind_text(q, 1, user, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), uid);
	assert_int_equal(sqlite3_column_int64(q, 1), strlen(prefix) + 5000);
	assert_string_equal((const char *)sqlite3_column_text(q, 2),
	                    "sender@example.org");
	assert_int_equal(sqlite3_column_int64(q, 3), 1700000000);
	n = sqlite3_column_bytes(q, 4);
	assert_int_equal(n, (int)strlen(prefix) + 5000);
	{
		const unsigned char *body = sqlite3_column_blob(q, 4);

		assert_memory_equal(body, prefix, strlen(prefix));
		for (int i = 0; i < 5000; i++)
			assert_int_equal(body[strlen(prefix) + (size_t)i],
			                 msg_byte(77, (uint64_t)i));
	}
	assert_int_equal(sqlite3_step(q), SQLITE_DONE);
	sqlite3_finalize(q);
	sqlite3_close(db);
#else
	print_message("# built without sqlite3\n");
	skip();
#endif
}
