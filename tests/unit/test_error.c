/* SPDX-License-Identifier: MIT */
/* Unit tests for the struct ptl_error helpers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <petrel/core.h>

static void
test_null_err(void **state)
{
	assert_int_equal(ptl_error_set(NULL, "x %d", 1), PTL_ERROR);
	assert_int_equal(ptl_error_set_path(NULL, "a.b", "x"), PTL_ERROR);
	assert_int_equal(ptl_error_set_errno(NULL, EIO, "x"), PTL_ERROR);
}

static void
test_set_clears_path_and_errno(void **state)
{
	struct ptl_error err;

	memset(&err, 'z', sizeof(err));
	err.sys_errno = 5;
	assert_int_equal(ptl_error_set(&err, "bad %s %d", "value", 42),
	                 PTL_ERROR);
	assert_string_equal(err.text, "bad value 42");
	assert_string_equal(err.path, "");
	assert_int_equal(err.sys_errno, 0);
}

static void
test_set_truncates(void **state)
{
	struct ptl_error err;
	char big[2000];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(ptl_error_set(&err, "%s", big), PTL_ERROR);
	assert_int_equal(strlen(err.text), PTL_ERROR_TEXT_MAX - 1);
}

static void
test_set_path(void **state)
{
	struct ptl_error err;
	char long_path[1000];

	memset(&err, 0, sizeof(err));
	err.sys_errno = 3;
	assert_int_equal(ptl_error_set_path(&err, "modules.smtp.listen[1]",
	                                    "expected %s", "\"host:port\""),
	                 PTL_ERROR);
	assert_string_equal(err.text, "expected \"host:port\"");
	assert_string_equal(err.path, "modules.smtp.listen[1]");
	assert_int_equal(err.sys_errno, 0);

	memset(long_path, 'p', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = '\0';
	(void)ptl_error_set_path(&err, long_path, "x");
	assert_int_equal(strlen(err.path), PTL_ERROR_PATH_MAX - 1);

	(void)ptl_error_set_path(&err, NULL, "no path");
	assert_string_equal(err.path, "");
}

/* Wrapping an inner error's own text and path must not corrupt them. */
static void
test_set_path_aliasing(void **state)
{
	struct ptl_error err;

	(void)ptl_error_set_path(&err, "a.b", "inner problem");
	(void)ptl_error_set_path(&err, err.path, "outer: %s (at %s)", err.text,
	                         err.path);
	assert_string_equal(err.text, "outer: inner problem (at a.b)");
	assert_string_equal(err.path, "a.b");

	(void)ptl_error_set(&err, "first");
	(void)ptl_error_set(&err, "%s, second", err.text);
	assert_string_equal(err.text, "first, second");
}

static void
test_set_errno(void **state)
{
	struct ptl_error err;
	char expect[PTL_ERROR_TEXT_MAX];

	(void)ptl_error_set_path(&err, "x.y", "old");
	assert_int_equal(
	    ptl_error_set_errno(&err, ENOENT, "cannot open \"%s\"", "/nope"),
	    PTL_ERROR);
	(void)snprintf(expect, sizeof(expect), "cannot open \"/nope\": %s",
	               strerror(ENOENT));
	assert_string_equal(err.text, expect);
	assert_int_equal(err.sys_errno, ENOENT);
	assert_string_equal(err.path, "");
}

static void
test_set_errno_full_text(void **state)
{
	struct ptl_error err;
	char big[1000];

	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	(void)ptl_error_set_errno(&err, EACCES, "%s", big);
	assert_int_equal(strlen(err.text), PTL_ERROR_TEXT_MAX - 1);
	assert_int_equal(err.sys_errno, EACCES);

	/* Room for only part of the reason: still terminated. */
	big[PTL_ERROR_TEXT_MAX - 5] = '\0';
	(void)ptl_error_set_errno(&err, EACCES, "%s", big);
	assert_int_equal(strlen(err.text), PTL_ERROR_TEXT_MAX - 1);
	assert_memory_equal(err.text + PTL_ERROR_TEXT_MAX - 5, ": ", 2);
}

static void
test_set_errno_unknown(void **state)
{
	struct ptl_error err;

	(void)ptl_error_set_errno(&err, 99999, "odd");
	assert_true(strncmp(err.text, "odd: ", 5) == 0);
	assert_true(strlen(err.text) > 5);
	assert_int_equal(err.sys_errno, 99999);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_null_err),
	    cmocka_unit_test(test_set_clears_path_and_errno),
	    cmocka_unit_test(test_set_truncates),
	    cmocka_unit_test(test_set_path),
	    cmocka_unit_test(test_set_path_aliasing),
	    cmocka_unit_test(test_set_errno),
	    cmocka_unit_test(test_set_errno_full_text),
	    cmocka_unit_test(test_set_errno_unknown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
