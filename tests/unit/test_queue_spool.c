/* SPDX-License-Identifier: MIT */
/* Unit tests for the queue spool: framing, files, state logs, requests. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <petrel/queue.h>

#include "queue_record.h"
#include "queue_spool.h"

static char qdir[256];
static struct queue_spool spool;

static int
setup(void **state)
{
	char why[QUEUE_WHY_MAX];

	(void)snprintf(qdir, sizeof(qdir), "%s/petrel-qspool-XXXXXX",
	               getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(qdir));
	assert_int_equal(queue_dirs_create(qdir, why, sizeof(why)), 0);
	assert_int_equal(queue_spool_open(&spool, qdir, why, sizeof(why)), 0);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[512];

	queue_spool_close(&spool);
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", qdir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* ---- records ---- */

static void
test_record_round_trip(void **state)
{
	static const char tricky[] = "a\r\nRCPT 5:evil@\n\0x:";
	struct qrec_buf b;
	struct qrec r;
	size_t used, pos = 0;

	qrec_buf_init(&b, 4096);
	qrec_put(&b, "FROM", tricky, sizeof(tricky) - 1);
	qrec_put_u64(&b, "N", 42);
	qrec_put_i64(&b, "T", -7);
	qrec_put(&b, "EMPTY", "", 0);
	assert_false(b.failed);

	assert_int_equal(qrec_next(b.data, b.len, &r, &used), QREC_RECORD);
	assert_true(qrec_is(&r, "FROM"));
	assert_int_equal(r.len, sizeof(tricky) - 1);
	assert_memory_equal(r.value, tricky, r.len);
	assert_false(qrec_is_text(&r));
	pos += used;
	assert_int_equal(qrec_next(b.data + pos, b.len - pos, &r, &used),
	                 QREC_RECORD);
	{
		uint64_t v;
		int64_t t;

		assert_true(qrec_u64(&r, 100, &v));
		assert_int_equal(v, 42);
		assert_false(qrec_u64(&r, 41, &v));
		pos += used;
		assert_int_equal(
		    qrec_next(b.data + pos, b.len - pos, &r, &used),
		    QREC_RECORD);
		assert_true(qrec_i64(&r, &t));
		assert_int_equal(t, -7);
	}
	pos += used;
	assert_int_equal(qrec_next(b.data + pos, b.len - pos, &r, &used),
	                 QREC_RECORD);
	assert_int_equal(r.len, 0);
	pos += used;
	assert_int_equal(qrec_next(b.data + pos, b.len - pos, &r, &used),
	                 QREC_END);
	qrec_buf_free(&b);
}

static void
test_record_torn_and_bad(void **state)
{
	const char *good = "KEY 3:abc\n";
	struct qrec r;
	size_t used, i;

	/* Every proper prefix of a record is a torn write, never a record. */
	for (i = 1; i < strlen(good); i++)
		assert_int_equal(qrec_next(good, i, &r, &used), QREC_SHORT);
	assert_int_equal(qrec_next(good, strlen(good), &r, &used), QREC_RECORD);
	assert_int_equal(qrec_next("key 3:abc\n", 10, &r, &used), QREC_BAD);
	assert_int_equal(qrec_next("KEY 03:abc\n", 11, &r, &used), QREC_BAD);
	assert_int_equal(qrec_next("KEY 3:abcd", 10, &r, &used), QREC_BAD);
	assert_int_equal(qrec_next("KEY x:abc\n", 10, &r, &used), QREC_BAD);
	assert_int_equal(qrec_next(" 3:abc\n", 7, &r, &used), QREC_BAD);
	assert_int_equal(qrec_next("KEY :abc\n", 9, &r, &used), QREC_BAD);
	assert_int_equal(qrec_next("AAAAAAAAAAAAAAAAA 1:a\n", 22, &r, &used),
	                 QREC_BAD);
	assert_int_equal(qrec_next("KEY 99999999999:a\n", 18, &r, &used),
	                 QREC_BAD);
	assert_int_equal(qrec_next("\0\0\0\0", 4, &r, &used), QREC_BAD);
}

static void
test_record_limits(void **state)
{
	struct qrec_buf b;

	qrec_buf_init(&b, 16);
	qrec_put_str(&b, "K", "0123456789abcdef");
	assert_true(b.failed);
	qrec_buf_free(&b);
	qrec_buf_init(&b, 100);
	qrec_put_str(&b, "bad key", "x");
	assert_true(b.failed);
	qrec_buf_free(&b);
	/* The check value of the standard: CRC-32 of "123456789". */
	assert_int_equal(qrec_crc32(0, "123456789", 9), 0xcbf43926u);
}

/* ---- message files ---- */

static const char body[] = "Received: from x\r\nSubject: hi\r\n\r\nbody\r\n";

static void
write_message(struct queue_env *env, struct queue_env_rcpt *rcpts,
              char id_out[QUEUE_ID_SIZE])
{
	char why[QUEUE_WHY_MAX];
	struct queue_writer w;

	memset(env, 0, sizeof(*env));
	memset(rcpts, 0, 2 * sizeof(*rcpts));
	rcpts[0].address = "one@example.org";
	rcpts[0].notify = PTL_DSN_NOTIFY_SUCCESS | PTL_DSN_NOTIFY_FAILURE;
	rcpts[0].orcpt = "rfc822;One@Example.org";
	/* An injection attempt: must stay one address. */
	rcpts[1].address = "two@example.net\r\nRCPT 14:evil@evil.test";
	env->from = "sender@example.com";
	env->envid = "ENV\nID";
	env->ret = PTL_DSN_RET_HDRS;
	env->body = PTL_BODY_8BITMIME;
	env->smtputf8 = true;
	env->client_ip = "192.0.2.1";
	env->received = 1700000000;
	env->rcpts = rcpts;
	env->nrcpts = 2;
	assert_int_equal(queue_writer_open(&w, &spool, why, sizeof(why)), 0);
	assert_int_equal(queue_writer_write(&w, body, 10, why, sizeof(why)), 0);
	assert_int_equal(queue_writer_write(&w, body + 10, sizeof(body) - 11,
	                                    why, sizeof(why)),
	                 0);
	assert_int_equal(queue_writer_commit(&w, env, why, sizeof(why)), 0);
	memcpy(id_out, w.id, QUEUE_ID_SIZE);
}

static void
msg_path(char *out, size_t size, const char *sub, const char *id)
{
	assert_true(queue_path(out, size, qdir, sub, id));
}

static void
test_message_round_trip(void **state)
{
	struct queue_env_rcpt rcpts[2];
	struct queue_env in, out;
	char id[QUEUE_ID_SIZE], why[QUEUE_WHY_MAX], path[512];
	char buf[sizeof(body)];
	int fd;

	write_message(&in, rcpts, id);
	assert_true(queue_id_valid(id));
	why[0] = '\0';
	if (queue_msg_read(qdir, id, &out, why, sizeof(why)) != QUEUE_READ_OK)
		fail_msg("read: %s", why);
	assert_string_equal(out.id, id);
	assert_string_equal(out.from, "sender@example.com");
	assert_string_equal(out.envid, "ENV\nID");
	assert_int_equal(out.ret, PTL_DSN_RET_HDRS);
	assert_int_equal(out.body, PTL_BODY_8BITMIME);
	assert_true(out.smtputf8);
	assert_false(out.is_dsn);
	assert_int_equal(out.received, 1700000000);
	assert_int_equal(out.body_size, sizeof(body) - 1);
	assert_int_equal(out.nrcpts, 2);
	assert_string_equal(out.rcpts[0].address, "one@example.org");
	assert_int_equal(out.rcpts[0].notify,
	                 PTL_DSN_NOTIFY_SUCCESS | PTL_DSN_NOTIFY_FAILURE);
	assert_string_equal(out.rcpts[0].orcpt, "rfc822;One@Example.org");
	assert_string_equal(out.rcpts[1].address,
	                    "two@example.net\r\nRCPT 14:evil@evil.test");
	assert_null(out.rcpts[1].orcpt);
	queue_env_free(&out);

	/* The message is at offset 0: engines pread() it from there. */
	msg_path(path, sizeof(path), "msg", id);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, sizeof(body) - 1, 0),
	                 (ssize_t)sizeof(body) - 1);
	assert_memory_equal(buf, body, sizeof(body) - 1);
	close(fd);
	/* Nothing is left in tmp/. */
	msg_path(path, sizeof(path), "tmp", id);
	assert_int_not_equal(access(path, F_OK), 0);
}

static int
count_dir(const char *sub)
{
	char path[512];
	struct dirent *de;
	int n = 0;
	DIR *d;

	msg_path(path, sizeof(path), sub, NULL);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void
corrupt_and_check(off_t cut, off_t flip, const char *expect)
{
	struct queue_env_rcpt rcpts[2];
	struct queue_env in, out;
	char id[QUEUE_ID_SIZE], why[QUEUE_WHY_MAX], path[512];
	struct stat sb;
	char c;
	int fd;

	write_message(&in, rcpts, id);
	msg_path(path, sizeof(path), "msg", id);
	assert_int_equal(stat(path, &sb), 0);
	if (cut > 0)
		assert_int_equal(truncate(path, sb.st_size - cut), 0);
	if (flip > 0) {
		fd = open(path, O_RDWR);
		assert_true(fd >= 0);
		assert_int_equal(pread(fd, &c, 1, sb.st_size - flip), 1);
		/* Still a hex digit in the trailer, but a different one. */
		c = c == 'f' ? 'e' : 'f';
		assert_int_equal(pwrite(fd, &c, 1, sb.st_size - flip), 1);
		close(fd);
	}
	why[0] = '\0';
	assert_int_equal(queue_msg_read(qdir, id, &out, why, sizeof(why)),
	                 QUEUE_READ_CORRUPT);
	if (strstr(why, expect) == NULL)
		fail_msg("expected \"%s\", got \"%s\"", expect, why);
	assert_int_equal(queue_quarantine(qdir, id, why, sizeof(why)), 0);
	assert_int_not_equal(access(path, F_OK), 0);
}

static void
test_message_corrupt(void **state)
{
	char path[512];
	int fd;

	corrupt_and_check(1, 0, "trailer");           /* truncated */
	corrupt_and_check(100, 0, "trailer");         /* truncated more */
	corrupt_and_check(0, 60, "checksum");         /* envelope byte */
	corrupt_and_check(0, 20, "sizes do not add"); /* trailer size */
	assert_int_equal(count_dir("corrupt"), 4);

	/* Not a queue file at all, and an empty one. */
	msg_path(path, sizeof(path), "msg", "GARBAGE1");
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello world\n", 12), 12);
	close(fd);
	{
		struct queue_env out;
		char why[QUEUE_WHY_MAX];

		assert_int_equal(
		    queue_msg_read(qdir, "GARBAGE1", &out, why, sizeof(why)),
		    QUEUE_READ_CORRUPT);
		assert_int_equal(
		    queue_msg_read(qdir, "NOSUCH", &out, why, sizeof(why)),
		    QUEUE_READ_GONE);
	}
	assert_false(queue_id_valid("../x"));
	assert_false(queue_id_valid(""));
	assert_false(queue_id_valid("a b"));
	assert_false(queue_id_valid("0123456789012345678901234567890123"));
}

/* ---- state logs ---- */

static void
append_state(const char *id, uint32_t idx, uint8_t status, uint32_t attempts,
             const char *error)
{
	struct queue_rcpt_state st;
	char why[QUEUE_WHY_MAX];
	struct qrec_buf b;

	memset(&st, 0, sizeof(st));
	st.status = status;
	st.attempts = attempts;
	st.next_try_ms = status == QUEUE_RCPT_DEFERRED ? 1700000300000 : 0;
	st.error = (char *)error;
	qrec_buf_init(&b, 1 << 20);
	queue_state_encode(&b, 1700000000000, &idx, &st, 1);
	assert_false(b.failed);
	assert_int_equal(queue_state_append(&spool, id, b.data, b.len,
	                                    UINT64_MAX, why, sizeof(why)),
	                 0);
	qrec_buf_free(&b);
}

static void
test_state_log(void **state)
{
	struct queue_rcpt_state st[3];
	char why[QUEUE_WHY_MAX], path[512];
	uint64_t valid, size;
	const char *id = "STATETEST1";
	int fd;

	memset(st, 0, sizeof(st));
	/* No log: everything pending. */
	assert_int_equal(queue_state_load(qdir, id, st, 3, true, &valid, &size,
	                                  why, sizeof(why)),
	                 QUEUE_READ_OK);
	assert_int_equal(st[0].status, QUEUE_RCPT_PENDING);

	append_state(id, 0, QUEUE_RCPT_DEFERRED, 1, "451 4.3.0 try\r\nlater");
	append_state(id, 1, QUEUE_RCPT_DELIVERED, 1, "250 ok");
	append_state(id, 0, QUEUE_RCPT_DEFERRED, 2, "451 again");
	append_state(id, 7, QUEUE_RCPT_FAILED, 1, "out of range: ignored");

	/* A torn append: half a record at the end. */
	msg_path(path, sizeof(path), "state", id);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "U 120:T 13:17", 13), 13);
	close(fd);

	memset(st, 0, sizeof(st));
	assert_int_equal(queue_state_load(qdir, id, st, 3, true, &valid, &size,
	                                  why, sizeof(why)),
	                 QUEUE_READ_OK);
	assert_int_equal(size - valid, 13);
	assert_int_equal(st[0].status, QUEUE_RCPT_DEFERRED);
	assert_int_equal(st[0].attempts, 2);
	assert_int_equal(st[0].next_try_ms, 1700000300000);
	assert_string_equal(st[0].error, "451 again");
	assert_int_equal(st[1].status, QUEUE_RCPT_DELIVERED);
	assert_int_equal(st[2].status, QUEUE_RCPT_PENDING);
	queue_state_free_texts(st, 3);

	/* Cut, then appends go on from a clean end. */
	assert_int_equal(
	    queue_state_truncate(qdir, id, valid, why, sizeof(why)), 0);
	append_state(id, 2, QUEUE_RCPT_FAILED, 1, "550 no");
	memset(st, 0, sizeof(st));
	assert_int_equal(queue_state_load(qdir, id, st, 3, false, &valid, &size,
	                                  why, sizeof(why)),
	                 QUEUE_READ_OK);
	assert_int_equal(valid, size);
	assert_int_equal(st[2].status, QUEUE_RCPT_FAILED);
	assert_null(st[2].error);

	/* A flipped byte inside a record: that record and the rest stop
	 * counting (its CRC fails), the ones before stay. */
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, (off_t)size - 20), 1);
	close(fd);
	memset(st, 0, sizeof(st));
	assert_int_equal(queue_state_load(qdir, id, st, 3, false, &valid, &size,
	                                  why, sizeof(why)),
	                 QUEUE_READ_OK);
	assert_true(valid < size);
	assert_int_equal(st[2].status, QUEUE_RCPT_PENDING);
	assert_int_equal(st[1].status, QUEUE_RCPT_DELIVERED);
}

/* Two jobs (two destinations of one message) record results at once. */
struct race_arg {
	pthread_barrier_t *go;
	const char *id;
	int rc;
};

static void *
race_append(void *p)
{
	struct race_arg *a = p;
	char why[QUEUE_WHY_MAX];

	pthread_barrier_wait(a->go);
	a->rc = queue_state_append(&spool, a->id, "x", 1, UINT64_MAX, why,
	                           sizeof(why));
	return NULL;
}

static void
test_state_first_appends_race(void **state)
{
	pthread_barrier_t go;
	pthread_t t[2];
	struct race_arg a[2];
	char id[QUEUE_ID_SIZE];

	for (int round = 0; round < 300; round++) {
		(void)snprintf(id, sizeof(id), "RACE%04d", round);
		assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
		for (int k = 0; k < 2; k++) {
			a[k] = (struct race_arg){&go, id, -1};
			assert_int_equal(
			    pthread_create(&t[k], NULL, race_append, &a[k]), 0);
		}
		for (int k = 0; k < 2; k++)
			assert_int_equal(pthread_join(t[k], NULL), 0);
		pthread_barrier_destroy(&go);
		/* Both results reach the file; neither is refused. */
		assert_int_equal(a[0].rc, 0);
		assert_int_equal(a[1].rc, 0);
	}
}

static void
test_remove(void **state)
{
	struct queue_env_rcpt rcpts[2];
	struct queue_env in;
	char id[QUEUE_ID_SIZE], why[QUEUE_WHY_MAX], path[512];

	write_message(&in, rcpts, id);
	append_state(id, 0, QUEUE_RCPT_DELIVERED, 1, "250 ok");
	assert_int_equal(queue_msg_remove(&spool, id, why, sizeof(why)), 0);
	msg_path(path, sizeof(path), "msg", id);
	assert_int_not_equal(access(path, F_OK), 0);
	msg_path(path, sizeof(path), "state", id);
	assert_int_not_equal(access(path, F_OK), 0);
	/* Removing twice is fine (a crash may repeat it). */
	assert_int_equal(queue_msg_remove(&spool, id, why, sizeof(why)), 0);
}

/* ---- requests ---- */

static void
test_requests(void **state)
{
	char name[128], why[QUEUE_WHY_MAX], path[512], buf[256],
	    id[QUEUE_ID_SIZE];
	ssize_t n;
	int fd, req;

	assert_int_equal(queue_request_write(qdir, QUEUE_REQ_DELETE, "ABC123",
	                                     name, sizeof(name), why,
	                                     sizeof(why)),
	                 0);
	msg_path(path, sizeof(path), "ctl", name);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_true(n > 0);
	assert_int_equal(queue_request_parse(buf, (size_t)n, &req, id), 0);
	assert_int_equal(req, QUEUE_REQ_DELETE);
	assert_string_equal(id, "ABC123");
	assert_int_equal(queue_request_write(qdir, QUEUE_REQ_FLUSH, NULL, name,
	                                     sizeof(name), why, sizeof(why)),
	                 0);
	assert_int_equal(queue_request_write(qdir, QUEUE_REQ_FLUSH, "../x",
	                                     name, sizeof(name), why,
	                                     sizeof(why)),
	                 -1);
	assert_int_equal(queue_request_parse("REQ 5:flush\n", 12, &req, id), 0);
	assert_int_equal(req, QUEUE_REQ_FLUSH);
	assert_string_equal(id, "");
	assert_int_equal(queue_request_parse("REQ 4:nuke\n", 11, &req, id), -1);
	assert_int_equal(
	    queue_request_parse("REQ 6:delete\nID 4:../x\n", 23, &req, id), -1);
	assert_int_equal(queue_request_parse("REQ 6:delete\nI", 14, &req, id),
	                 -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_record_round_trip),
	    cmocka_unit_test(test_record_torn_and_bad),
	    cmocka_unit_test(test_record_limits),
	    cmocka_unit_test_setup_teardown(test_message_round_trip, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_message_corrupt, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_state_log, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_first_appends_race,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
