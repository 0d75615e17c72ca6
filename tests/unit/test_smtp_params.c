/* SPDX-License-Identifier: MIT */
/* Unit tests for ESMTP parameters of MAIL and RCPT and xtext. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <petrel/pool.h>

#include "smtp_params.h"

static int
setup(void **state)
{
	*state = ptl_pool_create(0);
	return *state == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	ptl_pool_destroy(*state);
	return 0;
}

static enum smtp_params_error
mail(void **state, const char *text, struct smtp_mail_params *p)
{
	return smtp_params_mail(text, strlen(text), *state, p);
}

static enum smtp_params_error
rcpt(void **state, const char *text, struct smtp_rcpt_params *p)
{
	return smtp_params_rcpt(text, strlen(text), *state, p);
}

static void
test_mail_ok(void **state)
{
	struct smtp_mail_params p;

	assert_int_equal(mail(state, "", &p), SMTP_PARAMS_OK);
	assert_false(p.has_size);
	assert_int_equal(mail(state,
	                      " SIZE=1000 body=8bitmime SMTPUTF8 "
	                      "RET=HDRS ENVID=QQ+2Bx AUTH=<>",
	                      &p),
	                 SMTP_PARAMS_OK);
	assert_true(p.has_size);
	assert_int_equal(p.size, 1000);
	assert_int_equal(p.body, SMTP_BODY_8BITMIME);
	assert_true(p.smtputf8);
	assert_int_equal(p.ret, SMTP_RET_HDRS);
	assert_string_equal(p.envid, "QQ+x");
	assert_string_equal(p.auth, "<>");
	assert_int_equal(mail(state, "BODY=BINARYMIME", &p), SMTP_PARAMS_OK);
	assert_int_equal(p.body, SMTP_BODY_BINARYMIME);
	assert_int_equal(mail(state, "SIZE=18446744073709551615", &p),
	                 SMTP_PARAMS_OK);
	assert_int_equal(p.size, UINT64_MAX);
}

static void
test_mail_errors(void **state)
{
	struct smtp_mail_params p;

	assert_int_equal(mail(state, "FOO=bar", &p), SMTP_PARAMS_UNKNOWN);
	assert_int_equal(mail(state, "XCLIENT", &p), SMTP_PARAMS_UNKNOWN);
	assert_int_equal(mail(state, "SIZE", &p), SMTP_PARAMS_SYNTAX);
	assert_int_equal(mail(state, "SIZE=", &p), SMTP_PARAMS_SYNTAX);
	assert_int_equal(mail(state, "SIZE=-1", &p), SMTP_PARAMS_SYNTAX);
	/* 20 digits are valid (RFC 1870) and saturate; 21 are not. */
	assert_int_equal(mail(state, "SIZE=99999999999999999999", &p),
	                 SMTP_PARAMS_OK);
	assert_int_equal(p.size, UINT64_MAX);
	assert_int_equal(mail(state, "SIZE=100000000000000000000", &p),
	                 SMTP_PARAMS_SYNTAX);
	assert_int_equal(mail(state, "SIZE=1 SIZE=2", &p), SMTP_PARAMS_SYNTAX);
	assert_int_equal(mail(state, "BODY=9BIT", &p), SMTP_PARAMS_SYNTAX);
	assert_int_equal(mail(state, "SMTPUTF8=yes", &p), SMTP_PARAMS_SYNTAX);
	assert_int_equal(mail(state, "RET=ALL", &p), SMTP_PARAMS_SYNTAX);
	assert_int_equal(mail(state, "ENVID=a+0Ab", &p), SMTP_PARAMS_SYNTAX);
	assert_int_equal(mail(state, "ENVID=a+zz", &p), SMTP_PARAMS_SYNTAX);
	/* Decoded control characters would reach the queue: refused. */
	assert_int_equal(mail(state, "ENVID=a+0Db", &p), SMTP_PARAMS_SYNTAX);
	assert_int_equal(mail(state, "ENVID=a+00b", &p), SMTP_PARAMS_SYNTAX);
	assert_int_equal(mail(state, "=x", &p), SMTP_PARAMS_SYNTAX);
	assert_int_equal(mail(state, "-X=1", &p), SMTP_PARAMS_SYNTAX);
	assert_int_equal(mail(state, "SIZE=1\x7f", &p), SMTP_PARAMS_SYNTAX);
	assert_int_equal(mail(state, "BODY=8BITMIME\xc3\xa4", &p),
	                 SMTP_PARAMS_SYNTAX);
}

static void
test_envid_length(void **state)
{
	struct smtp_mail_params p;
	char buf[200];

	memcpy(buf, "ENVID=", 6);
	memset(buf + 6, 'e', 100);
	buf[106] = '\0';
	assert_int_equal(mail(state, buf, &p), SMTP_PARAMS_OK);
	buf[106] = 'e';
	buf[107] = '\0';
	assert_int_equal(mail(state, buf, &p), SMTP_PARAMS_SYNTAX);
}

static void
test_rcpt(void **state)
{
	struct smtp_rcpt_params p;

	assert_int_equal(rcpt(state, "", &p), SMTP_PARAMS_OK);
	assert_int_equal(p.notify, 0);
	assert_int_equal(rcpt(state,
	                      " NOTIFY=SUCCESS,failure,DELAY "
	                      "ORCPT=rfc822;bob+40example.test",
	                      &p),
	                 SMTP_PARAMS_OK);
	assert_int_equal(p.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE |
	                               SMTP_NOTIFY_DELAY);
	assert_string_equal(p.orcpt_type, "rfc822");
	assert_string_equal(p.orcpt, "bob@example.test");
	assert_int_equal(rcpt(state, "NOTIFY=NEVER", &p), SMTP_PARAMS_OK);
	assert_int_equal(p.notify, SMTP_NOTIFY_NEVER);

	assert_int_equal(rcpt(state, "NOTIFY=NEVER,DELAY", &p),
	                 SMTP_PARAMS_SYNTAX);
	assert_int_equal(rcpt(state, "NOTIFY=DELAY,DELAY", &p),
	                 SMTP_PARAMS_SYNTAX);
	assert_int_equal(rcpt(state, "NOTIFY=DELAY,", &p), SMTP_PARAMS_SYNTAX);
	assert_int_equal(rcpt(state, "NOTIFY=SOMETIMES", &p),
	                 SMTP_PARAMS_SYNTAX);
	assert_int_equal(rcpt(state, "ORCPT=rfc822", &p), SMTP_PARAMS_SYNTAX);
	assert_int_equal(rcpt(state, "ORCPT=;x", &p), SMTP_PARAMS_SYNTAX);
	assert_int_equal(rcpt(state, "ORCPT=rfc822;", &p), SMTP_PARAMS_SYNTAX);
	assert_int_equal(rcpt(state, "ORCPT=rfc822;a ORCPT=rfc822;b", &p),
	                 SMTP_PARAMS_SYNTAX);
	assert_int_equal(rcpt(state, "SIZE=10", &p), SMTP_PARAMS_UNKNOWN);
}

static void
test_xtext(void **state)
{
	char *s;

	s = smtp_xtext_decode(*state, "a+2Bb+3Dc", 9);
	assert_non_null(s);
	assert_string_equal(s, "a+b=c");
	assert_null(smtp_xtext_decode(*state, "a+2", 3));
	assert_null(smtp_xtext_decode(*state, "a+2b", 4));
	assert_null(smtp_xtext_decode(*state, "a=b", 3));
	assert_null(smtp_xtext_decode(*state, "a+0A", 4));
	s = smtp_xtext_decode(*state, "", 0);
	assert_non_null(s);
	assert_string_equal(s, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mail_ok),
	    cmocka_unit_test(test_mail_errors),
	    cmocka_unit_test(test_envid_length),
	    cmocka_unit_test(test_rcpt),
	    cmocka_unit_test(test_xtext),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
