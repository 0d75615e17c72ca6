/* SPDX-License-Identifier: MIT */
/* Unit tests for AUTH LOGIN's messages (base64 and PLAIN: test_sasl). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <petrel/core.h>

#include "smtp_sasl.h"

static void
test_login(void **state)
{
	unsigned char buf[64];

	memcpy(buf, "alice", 5);
	assert_int_equal(smtp_sasl_login_user(buf, 5), PTL_OK);
	assert_string_equal((char *)buf, "alice");
	assert_int_equal(smtp_sasl_login_user(buf, 0), PTL_ERROR);
	memcpy(buf, "a\0b", 3);
	assert_int_equal(smtp_sasl_login_user(buf, 3), PTL_ERROR);
	assert_int_equal(smtp_sasl_login_pass((const unsigned char *)"pw", 2),
	                 PTL_OK);
	assert_int_equal(smtp_sasl_login_pass((const unsigned char *)"", 0),
	                 PTL_ERROR);
	assert_int_equal(smtp_sasl_login_pass((const unsigned char *)"p\0w", 3),
	                 PTL_ERROR);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_login),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
