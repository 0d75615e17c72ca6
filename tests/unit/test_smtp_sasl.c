/* SPDX-License-Identifier: MIT */
/* Unit tests for AUTH: strict base64 and the PLAIN and LOGIN messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <petrel/core.h>

#include "smtp_sasl.h"

static int
decode(const char *in, unsigned char *out, size_t cap, size_t *n)
{
	return smtp_base64_decode(in, strlen(in), out, cap, n);
}

static void
test_base64(void **state)
{
	unsigned char out[64];
	size_t n;

	assert_int_equal(decode("", out, sizeof(out), &n), PTL_OK);
	assert_int_equal(n, 0);
	assert_int_equal(decode("Zg==", out, sizeof(out), &n), PTL_OK);
	assert_int_equal(n, 1);
	assert_memory_equal(out, "f", 1);
	assert_int_equal(decode("Zm8=", out, sizeof(out), &n), PTL_OK);
	assert_memory_equal(out, "fo", 2);
	assert_int_equal(decode("Zm9vYmFy", out, sizeof(out), &n), PTL_OK);
	assert_int_equal(n, 6);
	assert_memory_equal(out, "foobar", 6);
	assert_int_equal(decode("+/+/", out, sizeof(out), &n), PTL_OK);
	assert_int_equal(n, 3);
}

static void
test_base64_strict(void **state)
{
	static const char *const bad[] = {
	    "Zg",       /* no padding */
	    "Zg=",      /* short padding */
	    "Zg==Zg==", /* data after padding */
	    "Z===",     /* too much padding */
	    "Zh==",     /* non-zero unused bits */
	    "Zm9=",     /* non-zero unused bits */
	    "Zm 9v",    /* whitespace */
	    "Zm9v\r\n", /* line end */
	    "Zm-v",     /* URL alphabet */
	    "Zm=v",     /* padding in the middle */
	    "====",     "*", "=", NULL,
	};
	unsigned char out[64];
	size_t i, n;

	for (i = 0; bad[i] != NULL; i++) {
		if (decode(bad[i], out, sizeof(out), &n) == PTL_OK)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	/* Capacity is enforced. */
	assert_int_equal(decode("Zm9vYmFy", out, 5, &n), PTL_ERROR);
	assert_int_equal(decode("Zm9vYmFy", out, 6, &n), PTL_OK);
}

static int
plain(const char *msg, size_t len, struct smtp_sasl_creds *c,
      unsigned char *buf)
{
	memcpy(buf, msg, len);
	return smtp_sasl_plain(buf, len, c);
}

static void
test_plain(void **state)
{
	unsigned char buf[2048];
	struct smtp_sasl_creds c;

	assert_int_equal(plain("\0alice@x.test\0secret", 20, &c, buf), PTL_OK);
	assert_string_equal(c.user, "alice@x.test");
	assert_int_equal(c.pass_len, 6);
	assert_memory_equal(c.pass, "secret", 6);
	/* authzid equal to authcid is fine. */
	assert_int_equal(plain("bob\0bob\0pw", 10, &c, buf), PTL_OK);
	assert_string_equal(c.user, "bob");
}

static void
test_plain_refused(void **state)
{
	unsigned char buf[2048];
	struct smtp_sasl_creds c;

	/* maddy CVE-2023-27582: another identity must not be accepted. */
	assert_int_equal(plain("admin\0bob\0pw", 12, &c, buf), PTL_ERROR);
	assert_int_equal(plain("bobx\0bob\0pw", 11, &c, buf), PTL_ERROR);
	assert_int_equal(plain("bo\0bob\0pw", 9, &c, buf), PTL_ERROR);
	/* Missing parts. */
	assert_int_equal(plain("", 0, &c, buf), PTL_ERROR);
	assert_int_equal(plain("bob", 3, &c, buf), PTL_ERROR);
	assert_int_equal(plain("\0bob", 4, &c, buf), PTL_ERROR);
	assert_int_equal(plain("\0bob\0", 5, &c, buf), PTL_ERROR);
	assert_int_equal(plain("\0\0pw", 4, &c, buf), PTL_ERROR);
	/* A third NUL (in the password). */
	assert_int_equal(plain("\0bob\0p\0w", 8, &c, buf), PTL_ERROR);
	/* Control characters in the name. */
	assert_int_equal(plain("\0bo\nb\0pw", 8, &c, buf), PTL_ERROR);
	/* Overlong name or password. */
	memset(buf, 'u', sizeof(buf));
	buf[0] = '\0';
	buf[SMTP_SASL_USER_MAX + 2] = '\0';
	buf[SMTP_SASL_USER_MAX + 3] = 'p';
	assert_int_equal(smtp_sasl_plain(buf, SMTP_SASL_USER_MAX + 4, &c),
	                 PTL_ERROR);
	memset(buf, 'p', sizeof(buf));
	memcpy(buf, "\0u\0", 3);
	assert_int_equal(smtp_sasl_plain(buf, 3 + SMTP_SASL_PASS_MAX + 1, &c),
	                 PTL_ERROR);
	memcpy(buf, "\0u\0", 3);
	assert_int_equal(smtp_sasl_plain(buf, 3 + SMTP_SASL_PASS_MAX, &c),
	                 PTL_OK);
}

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
	    cmocka_unit_test(test_base64), cmocka_unit_test(test_base64_strict),
	    cmocka_unit_test(test_plain),  cmocka_unit_test(test_plain_refused),
	    cmocka_unit_test(test_login),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
