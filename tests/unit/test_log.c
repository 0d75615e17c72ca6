/* SPDX-License-Identifier: MIT */
/* Unit tests for logging: escaping, line format, targets, reopen. */
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <petrel/log.h>

#include "core/cycle.h"
#include "core/log_internal.h"

struct log_fixture {
	char dir[64];
	char file[128];
};

static int
setup(void **state)
{
	struct log_fixture *f;

	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	(void)snprintf(f->dir, sizeof(f->dir), "/tmp/petrel-test-log-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	(void)snprintf(f->file, sizeof(f->file), "%s/petrel.log", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct log_fixture *f = *state;
	char path[200];
	struct ptl_error err;

	(void)ptl_log_configure(NULL, &err);
	ptl_log_set_process(NULL);
	(void)unlink(f->file);
	(void)snprintf(path, sizeof(path), "%s.1", f->file);
	(void)unlink(path);
	(void)rmdir(f->dir);
	free(f);
	return 0;
}

/* The whole file as a string (caller frees). */
static char *
slurp(const char *path)
{
	FILE *fp;
	char *s;
	long n;

	fp = fopen(path, "r");
	if (fp == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	s = malloc((size_t)n + 1);
	if (s != NULL) {
		if (fread(s, 1, (size_t)n, fp) != (size_t)n) {
			free(s);
			s = NULL;
		} else {
			s[n] = '\0';
		}
	}
	fclose(fp);
	return s;
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static void
use_file(struct log_fixture *f, int level, bool json)
{
	struct ptl_log_conf conf = {
	    .level = level,
	    .target = PTL_LOG_TARGET_FILE,
	    .file = f->file,
	    .json = json,
	};
	struct ptl_error err;

	assert_int_equal(ptl_log_configure(&conf, &err), PTL_OK);
}

static void
log_id(enum ptl_log_level level, const char *id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ptl_log_with_id(level, id, fmt, ap);
	va_end(ap);
}

static void
test_escape(void **state)
{
	char out[128];

	assert_string_equal(ptl_log_escape(out, sizeof(out), "a\r\nb", 4),
	                    "a\\x0d\\x0ab");
	assert_string_equal(ptl_log_escape(out, sizeof(out), "a\0b", 3),
	                    "a\\x00b");
	assert_string_equal(ptl_log_escape(out, sizeof(out), "\xff\x7f\x1b", 3),
	                    "\\xff\\x7f\\x1b");
	assert_string_equal(ptl_log_escape(out, sizeof(out), "say \"hi\"", 8),
	                    "say \\x22hi\\x22");
	assert_string_equal(ptl_log_escape(out, sizeof(out), "a\\b", 3),
	                    "a\\x5cb");
	assert_string_equal(ptl_log_escape(out, sizeof(out), "tab\there", 8),
	                    "tab\\x09here");
	assert_string_equal(
	    ptl_log_escape(out, sizeof(out), "<user@example.test> ~", 21),
	    "<user@example.test> ~");
	assert_string_equal(ptl_log_escape(out, sizeof(out), "", 0), "");
	assert_string_equal(ptl_log_escape(out, sizeof(out), NULL, 5), "");
	/* Only in_len bytes are read. */
	assert_string_equal(ptl_log_escape(out, sizeof(out), "abcdef", 3),
	                    "abc");
}

static void
test_escape_truncation(void **state)
{
	char out[16];

	/* Exactly fits: no dots. */
	assert_string_equal(
	    ptl_log_escape(out, sizeof(out), "123456789012345", 15),
	    "123456789012345");
	/* One more byte: cut with "...", still 15 characters. */
	assert_string_equal(
	    ptl_log_escape(out, sizeof(out), "1234567890123456", 16),
	    "123456789012...");
	/* An escape is never split: "\x0d" does not fit after "1234567890". */
	assert_string_equal(
	    ptl_log_escape(out, sizeof(out), "1234567890\r\n\r\n", 14),
	    "1234567890...");
	/* Escapes that fit exactly are not cut. */
	assert_string_equal(ptl_log_escape(out, 13, "\r\n\"", 3),
	                    "\\x0d\\x0a\\x22");
	assert_string_equal(ptl_log_escape(out, 12, "\r\n\"", 3),
	                    "\\x0d\\x0a...");

	/* Tiny buffers: terminated, as many dots as fit. */
	assert_string_equal(ptl_log_escape(out, 4, "abcdef", 6), "...");
	assert_string_equal(ptl_log_escape(out, 3, "abcdef", 6), "..");
	assert_string_equal(ptl_log_escape(out, 1, "abcdef", 6), "");
	assert_string_equal(ptl_log_escape(out, 4, "abc", 3), "abc");
	out[0] = 'Z';
	assert_ptr_equal(ptl_log_escape(out, 0, "abc", 3), out);
	assert_int_equal(out[0], 'Z');
}

static void
test_level_names(void **state)
{
	assert_int_equal(ptl_log_level_from_name("error"), PTL_LOG_ERROR);
	assert_int_equal(ptl_log_level_from_name("warn"), PTL_LOG_WARN);
	assert_int_equal(ptl_log_level_from_name("notice"), PTL_LOG_NOTICE);
	assert_int_equal(ptl_log_level_from_name("info"), PTL_LOG_INFO);
	assert_int_equal(ptl_log_level_from_name("debug"), PTL_LOG_DEBUG);
	assert_int_equal(ptl_log_level_from_name("INFO"), -1);
	assert_int_equal(ptl_log_level_from_name("trace"), -1);
	assert_int_equal(ptl_log_level_from_name(""), -1);
	assert_int_equal(ptl_log_level_from_name(NULL), -1);
}

static void
test_default_level(void **state)
{
	assert_true(ptl_log_enabled(PTL_LOG_ERROR));
	assert_true(ptl_log_enabled(PTL_LOG_INFO));
	assert_false(ptl_log_enabled(PTL_LOG_DEBUG));
}

static void
test_file_levels_and_format(void **state)
{
	struct log_fixture *f = *state;
	regex_t re;
	char *text, *line, *save = NULL;
	char pattern[256];
	const char *levels[] = {"error", "warn", "notice", "info", "debug"};
	int i;

	ptl_log_set_process("worker 1");
	use_file(f, PTL_LOG_NOTICE, false);
	assert_true(ptl_log_enabled(PTL_LOG_NOTICE));
	assert_false(ptl_log_enabled(PTL_LOG_INFO));
	ptl_log(PTL_LOG_ERROR, "message %d", 1);
	ptl_log(PTL_LOG_WARN, "message %d", 2);
	ptl_log(PTL_LOG_NOTICE, "message %d", 3);
	ptl_log(PTL_LOG_INFO, "message %d", 4);
	ptl_log(PTL_LOG_DEBUG, "message %d", 5);
	use_file(f, PTL_LOG_DEBUG, false);
	ptl_log(PTL_LOG_INFO, "message %d", 4);
	ptl_log(PTL_LOG_DEBUG, "message %d", 5);

	text = slurp(f->file);
	assert_non_null(text);
	assert_int_equal(count_lines(text), 5);
	line = strtok_r(text, "\n", &save);
	for (i = 0; i < 5; i++) {
		assert_non_null(line);
		(void)snprintf(pattern, sizeof(pattern),
		               "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
		               "[0-9]{2}\\.[0-9]{3}Z %s \\[worker 1 pid %ld\\] "
		               "message %d$",
		               levels[i], (long)getpid(), i + 1);
		assert_int_equal(
		    regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
		if (regexec(&re, line, 0, NULL, 0) != 0)
			fail_msg("line \"%s\" does not match \"%s\"", line,
			         pattern);
		regfree(&re);
		line = strtok_r(NULL, "\n", &save);
	}
	free(text);
}

static void
test_file_mode(void **state)
{
	struct log_fixture *f = *state;
	struct stat st;
	mode_t old;

	old = umask(0);
	use_file(f, PTL_LOG_INFO, false);
	umask(old);
	assert_int_equal(stat(f->file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
}

static void
test_connection_id_and_escaping(void **state)
{
	struct log_fixture *f = *state;
	char *text;

	use_file(f, PTL_LOG_INFO, false);
	log_id(PTL_LOG_INFO, "4711.12", "client said %s", "hi\r\nQUIT");
	log_id(PTL_LOG_DEBUG, "4711.12", "hidden");
	ptl_log(PTL_LOG_WARN, "quote \" and backslash \\ stay; \x01\x7f\xc3");
	text = slurp(f->file);
	assert_non_null(text);
	assert_int_equal(count_lines(text), 2);
	assert_non_null(strstr(text, " info [petrel pid "));
	assert_non_null(
	    strstr(text, "] [c 4711.12] client said hi\\x0d\\x0aQUIT\n"));
	assert_null(strstr(text, "hidden"));
	assert_non_null(strstr(text, "] quote \" and backslash \\ stay; "
	                             "\\x01\\x7f\\xc3\n"));
	free(text);
}

static void
test_long_message_truncated(void **state)
{
	struct log_fixture *f = *state;
	char *big, *text;
	size_t n;

	big = malloc(20000);
	assert_non_null(big);
	memset(big, 'x', 19999);
	big[19999] = '\0';
	use_file(f, PTL_LOG_INFO, false);
	ptl_log(PTL_LOG_INFO, "%s", big);
	/* Escapes near the limit must not be split either. */
	memset(big, '\n', 19999);
	ptl_log(PTL_LOG_INFO, "%s", big);
	text = slurp(f->file);
	assert_non_null(text);
	assert_int_equal(count_lines(text), 2);
	n = strcspn(text, "\n");
	assert_true(n + 1 <= 8192);
	assert_true(n > 8000);
	assert_memory_equal(text + n - 4, "x...", 4);
	n = strlen(text + n + 1);
	assert_true(n <= 8192);
	assert_memory_equal(text + strlen(text) - 8, "\\x0a...\n", 8);
	free(text);
	free(big);
}

static void
test_json_lines(void **state)
{
	struct log_fixture *f = *state;
	char *text, *line, *save = NULL, *big;
	json_t *obj;
	json_error_t jerr;
	int n = 0;

	ptl_log_set_process("worker \"2\"");
	use_file(f, PTL_LOG_INFO, true);
	log_id(PTL_LOG_NOTICE, "4711.12", "from %s", "<a\"b\\c\r\n\xff>");
	ptl_log(PTL_LOG_ERROR, "plain");
	big = malloc(20000);
	assert_non_null(big);
	memset(big, '"', 19999);
	big[19999] = '\0';
	ptl_log(PTL_LOG_ERROR, "%s", big);
	free(big);

	text = slurp(f->file);
	assert_non_null(text);
	assert_int_equal(count_lines(text), 3);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save), n++) {
		assert_true(strlen(line) < 8192);
		obj = json_loads(line, 0, &jerr);
		if (obj == NULL)
			fail_msg("not JSON (%s): %s", jerr.text, line);
		assert_true(json_is_string(json_object_get(obj, "ts")));
		assert_int_equal(
		    strlen(json_string_value(json_object_get(obj, "ts"))), 24);
		assert_string_equal(
		    json_string_value(json_object_get(obj, "proc")),
		    "worker \"2\"");
		assert_int_equal(
		    json_integer_value(json_object_get(obj, "pid")), getpid());
		if (n == 0) {
			assert_string_equal(
			    json_string_value(json_object_get(obj, "level")),
			    "notice");
			assert_string_equal(
			    json_string_value(json_object_get(obj, "conn")),
			    "4711.12");
			/* Same text as a plain line would carry. */
			assert_string_equal(
			    json_string_value(json_object_get(obj, "msg")),
			    "from <a\"b\\c\\x0d\\x0a\\xff>");
		} else if (n == 1) {
			assert_string_equal(
			    json_string_value(json_object_get(obj, "level")),
			    "error");
			assert_true(json_is_null(json_object_get(obj, "conn")));
			assert_string_equal(
			    json_string_value(json_object_get(obj, "msg")),
			    "plain");
		} else {
			const char *msg =
			    json_string_value(json_object_get(obj, "msg"));
			assert_non_null(msg);
			assert_true(strlen(msg) > 3000);
			assert_string_equal(msg + strlen(msg) - 4, "\"...");
		}
		json_decref(obj);
	}
	free(text);
}

static void
test_reopen_after_rename(void **state)
{
	struct log_fixture *f = *state;
	struct ptl_error err;
	char rotated[200], *text;

	use_file(f, PTL_LOG_INFO, false);
	ptl_log(PTL_LOG_INFO, "one");
	(void)snprintf(rotated, sizeof(rotated), "%s.1", f->file);
	assert_int_equal(rename(f->file, rotated), 0);
	ptl_log(PTL_LOG_INFO, "two");
	assert_int_equal(ptl_log_reopen(&err), PTL_OK);
	ptl_log(PTL_LOG_INFO, "three");

	text = slurp(rotated);
	assert_non_null(text);
	assert_non_null(strstr(text, "] one\n"));
	assert_non_null(strstr(text, "] two\n"));
	assert_null(strstr(text, "three"));
	free(text);
	text = slurp(f->file);
	assert_non_null(text);
	assert_int_equal(count_lines(text), 1);
	assert_non_null(strstr(text, "] three\n"));
	free(text);
}

static void
test_reopen_without_file(void **state)
{
	struct ptl_error err;

	assert_int_equal(ptl_log_configure(NULL, &err), PTL_OK);
	assert_int_equal(ptl_log_reopen(&err), PTL_OK);
}

static void
test_configure_errors(void **state)
{
	struct log_fixture *f = *state;
	struct ptl_log_conf conf = {
	    .level = PTL_LOG_INFO,
	    .target = PTL_LOG_TARGET_FILE,
	};
	struct ptl_error err;
	char missing[200], *text;

	use_file(f, PTL_LOG_WARN, false);

	(void)snprintf(missing, sizeof(missing), "%s/no/such/dir/x.log",
	               f->dir);
	conf.file = missing;
	assert_int_equal(ptl_log_configure(&conf, &err), PTL_ERROR);
	assert_int_equal(err.sys_errno, ENOENT);
	assert_non_null(strstr(err.text, "cannot open log file"));

	conf.file = NULL;
	assert_int_equal(ptl_log_configure(&conf, &err), PTL_ERROR);

	conf.file = f->file;
	conf.level = 9;
	assert_int_equal(ptl_log_configure(&conf, &err), PTL_ERROR);
	conf.level = PTL_LOG_INFO;
	conf.target = 7;
	assert_int_equal(ptl_log_configure(&conf, &err), PTL_ERROR);

	/* The failures left the previous config in place. */
	assert_false(ptl_log_enabled(PTL_LOG_INFO));
	ptl_log(PTL_LOG_WARN, "still here");
	text = slurp(f->file);
	assert_non_null(text);
	assert_non_null(strstr(text, "] still here\n"));
	free(text);
}

static void
test_syslog_configure(void **state)
{
	struct ptl_log_conf conf = {
	    .level = PTL_LOG_ERROR,
	    .target = PTL_LOG_TARGET_SYSLOG,
	    .ident = "petrel-test",
	};
	struct ptl_error err;

	assert_int_equal(ptl_log_configure(&conf, &err), PTL_OK);
	assert_false(ptl_log_enabled(PTL_LOG_WARN));
	assert_int_equal(ptl_log_reopen(&err), PTL_OK);
	assert_int_equal(ptl_log_configure(NULL, &err), PTL_OK);
	assert_true(ptl_log_enabled(PTL_LOG_INFO));
}

enum { THREADS = 4, LINES = 300 };

static void *
log_thread(void *arg)
{
	int id = (int)(intptr_t)arg, i;

	for (i = 0; i < LINES; i++)
		log_id(PTL_LOG_INFO, "t", "thread %d line %d %s", id, i,
		       "padding padding padding padding padding padding");
	return NULL;
}

/* Lines written concurrently arrive whole, one per write. */
static void
test_threads(void **state)
{
	struct log_fixture *f = *state;
	pthread_t t[THREADS];
	char *text, *line, *save = NULL;
	size_t n = 0;
	int i;

	use_file(f, PTL_LOG_INFO, false);
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, log_thread,
		                                (void *)(intptr_t)i),
		                 0);
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	text = slurp(f->file);
	assert_non_null(text);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save), n++) {
		assert_non_null(strstr(line, " info [petrel pid "));
		assert_non_null(strstr(line, "padding padding padding "
		                             "padding padding padding"));
	}
	assert_int_equal(n, THREADS * LINES);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escape),
	    cmocka_unit_test(test_escape_truncation),
	    cmocka_unit_test(test_level_names),
	    cmocka_unit_test(test_default_level),
	    cmocka_unit_test_setup_teardown(test_file_levels_and_format, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_file_mode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_connection_id_and_escaping,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_long_message_truncated, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_json_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reopen_after_rename, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_reopen_without_file, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_configure_errors, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_syslog_configure, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
