/* SPDX-License-Identifier: MIT */
/* Unit tests for POP3's strict base64 decoder and SASL PLAIN splitting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pop3.h"

static int
decode(const char *in, unsigned char *out, size_t cap, size_t *n)
{
	return pop3_base64_decode(in, strlen(in), out, cap, n);
}

static void
test_base64_good(void **state)
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
	assert_int_equal(decode("Zm9v", out, sizeof(out), &n), PTL_OK);
	assert_memory_equal(out, "foo", 3);
	assert_int_equal(decode("Zm9vYmFy", out, sizeof(out), &n), PTL_OK);
	assert_memory_equal(out, "foobar", 6);
	assert_int_equal(decode("+/+/", out, sizeof(out), &n), PTL_OK);
	assert_int_equal(n, 3);
	assert_int_equal(out[0], 0xfb);
	assert_int_equal(out[1], 0xff);
	assert_int_equal(out[2], 0xbf);
	/* "\0user\0pass" */
	assert_int_equal(decode("AHVzZXIAcGFzcw==", out, sizeof(out), &n),
	                 PTL_OK);
	assert_int_equal(n, 10);
	assert_memory_equal(out, "\0user\0pass", 10);
}

static void
test_base64_bad(void **state)
{
	static const char *const bad[] = {
	    "Zg",                /* missing padding */
	    "Zg=",               /* short */
	    "Zh==",              /* unused bits set */
	    "Zm9=",              /* unused bits set */
	    "Zg==Zg==",          /* data after padding */
	    "Z===",              /* too much padding */
	    "====",     "Zm 9v", /* whitespace */
	    "Zm9v\r\n",          /* line end */
	    "Zm-v",              /* URL alphabet */
	    "Zm_v",     "Zm9v=", "=Zm9", "Z=g=",
	};
	unsigned char out[64];
	size_t i, n;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (decode(bad[i], out, sizeof(out), &n) != PTL_ERROR)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	/* Over capacity. */
	assert_int_equal(decode("Zm9vYmFy", out, 5, &n), PTL_ERROR);
	assert_int_equal(decode("Zm9vYmFy", out, 6, &n), PTL_OK);
}

static int
split(const char *msg, size_t len, struct pop3_plain *p)
{
	return pop3_plain_split((const unsigned char *)msg, len, p);
}

static void
test_plain(void **state)
{
	struct pop3_plain p;
	char big[2000];

	assert_int_equal(split("\0user\0pass", 10, &p), PTL_OK);
	assert_string_equal(p.user, "user");
	assert_int_equal(p.pass_len, 4);
	assert_memory_equal(p.pass, "pass", 4);
	/* authzid equal to authcid is fine. */
	assert_int_equal(split("user\0user\0pass", 14, &p), PTL_OK);
	assert_string_equal(p.user, "user");
	/* A password with spaces and 8-bit octets. */
	assert_int_equal(split("\0u\0p a\xc3\xa9", 8, &p), PTL_OK);
	assert_int_equal(p.pass_len, 5);

	/* maddy CVE-2023-27582: another authzid is refused. */
	assert_int_equal(split("admin\0user\0pass", 15, &p), PTL_ERROR);
	assert_int_equal(split("use\0user\0pass", 13, &p), PTL_ERROR);
	/* Missing parts, empty parts, extra NULs. */
	assert_int_equal(split("", 0, &p), PTL_ERROR);
	assert_int_equal(split("userpass", 8, &p), PTL_ERROR);
	assert_int_equal(split("\0userpass", 9, &p), PTL_ERROR);
	assert_int_equal(split("\0\0pass", 6, &p), PTL_ERROR);
	assert_int_equal(split("\0user\0", 6, &p), PTL_ERROR);
	assert_int_equal(split("\0user\0pa\0ss", 11, &p), PTL_ERROR);
	/* Control characters in the name. */
	assert_int_equal(split("\0us\ner\0pass", 11, &p), PTL_ERROR);
	/* Over-long password. */
	memset(big, 'p', sizeof(big));
	big[0] = '\0';
	big[1] = 'u';
	big[2] = '\0';
	assert_int_equal(split(big, 3 + POP3_PASS_MAX, &p), PTL_OK);
	assert_int_equal(split(big, 4 + POP3_PASS_MAX, &p), PTL_ERROR);
}

static void
test_user_names(void **state)
{
	char big[POP3_USER_MAX + 2];

	assert_true(pop3_user_name_ok("a@b.example", 11));
	assert_true(pop3_user_name_ok("with space", 10));
	assert_false(pop3_user_name_ok("", 0));
	assert_false(pop3_user_name_ok("a\rb", 3));
	assert_false(pop3_user_name_ok("a\x7f", 2));
	memset(big, 'u', sizeof(big));
	assert_true(pop3_user_name_ok(big, POP3_USER_MAX));
	assert_false(pop3_user_name_ok(big, POP3_USER_MAX + 1));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_base64_good),
	    cmocka_unit_test(test_base64_bad),
	    cmocka_unit_test(test_plain),
	    cmocka_unit_test(test_user_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
