/* SPDX-License-Identifier: MIT */
/* Unit tests for the core's strict base64 and SASL PLAIN splitting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <petrel/sasl.h>

#define USER_MAX 320
#define PASS_MAX 1024

static int
decode(const char *in, unsigned char *out, size_t cap, size_t *n)
{
	return ptl_base64_decode(in, strlen(in), out, cap, n);
}

static void
test_base64_good(void **state)
{
	unsigned char out[64];
	size_t n;

	(void)state;
	assert_int_equal(decode("", out, sizeof(out), &n), PTL_OK);
	assert_int_equal(n, 0);
	assert_int_equal(decode("Zg==", out, sizeof(out), &n), PTL_OK);
	assert_int_equal(n, 1);
	assert_memory_equal(out, "f", 1);
	assert_int_equal(decode("Zm8=", out, sizeof(out), &n), PTL_OK);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "fo", 2);
	assert_int_equal(decode("Zm9v", out, sizeof(out), &n), PTL_OK);
	assert_memory_equal(out, "foo", 3);
	assert_int_equal(decode("Zm9vYmFy", out, sizeof(out), &n), PTL_OK);
	assert_int_equal(n, 6);
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
	    "Zg",       /* no padding */
	    "Zg=",      /* short padding */
	    "Zg==Zg==", /* data after padding */
	    "Z===",     /* too much padding */
	    "Zh==",     /* non-zero unused bits */
	    "Zm9=",     /* non-zero unused bits */
	    "Zm 9v",    /* whitespace */
	    "Zm9v\r\n", /* line end */
	    "Zm-v",     /* URL alphabet */
	    "Zm_v",     /* URL alphabet */
	    "Zm=v",     /* padding in the middle */
	    "Z=g=",     "=Zm9", "Zm9v=", "====", "*", "=",
	};
	unsigned char out[64];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (decode(bad[i], out, sizeof(out), &n) != PTL_ERROR)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	/* Capacity is enforced, exactly. */
	assert_int_equal(decode("Zm9vYmFy", out, 5, &n), PTL_ERROR);
	assert_int_equal(decode("Zm9vYmFy", out, 6, &n), PTL_OK);
	assert_int_equal(decode("Zm8=", out, 1, &n), PTL_ERROR);
	assert_int_equal(decode("Zm8=", out, 2, &n), PTL_OK);
}

static void
test_base64_digits(void **state)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
	    "opqrstuvwxyz0123456789+/";
	int c, seen = 0;

	(void)state;
	for (c = 0; c < 64; c++)
		assert_int_equal(ptl_base64_digit((unsigned char)alphabet[c]),
		                 c);
	for (c = 0; c < 256; c++)
		seen += ptl_base64_digit((unsigned char)c) >= 0;
	assert_int_equal(seen, 64);
	assert_int_equal(ptl_base64_digit('='), -1);
	assert_int_equal(ptl_base64_digit('-'), -1);
}

static void
test_base64_round_trip(void **state)
{
	unsigned char in[64], back[64];
	char enc[100];
	size_t len, n, k;

	(void)state;
	for (k = 0; k < sizeof(in); k++)
		in[k] = (unsigned char)(k * 37 + 11);
	for (len = 0; len <= sizeof(in); len++) {
		n = ptl_base64_encode(in, len, enc, sizeof(enc));
		assert_int_equal(n, (len + 2) / 3 * 4);
		assert_int_equal(strlen(enc), n);
		assert_int_equal(
		    ptl_base64_decode(enc, n, back, sizeof(back), &k), PTL_OK);
		assert_int_equal(k, len);
		assert_memory_equal(back, in, len);
	}
	n = ptl_base64_encode((const unsigned char *)"foobar", 5, enc,
	                      sizeof(enc));
	assert_string_equal(enc, "Zm9vYmE=");
	assert_int_equal(n, 8);
	/* Too small for the output and its NUL: nothing. */
	assert_int_equal(
	    ptl_base64_encode((const unsigned char *)"foo", 3, enc, 4), 0);
	assert_int_equal(
	    ptl_base64_encode((const unsigned char *)"foo", 3, enc, 5), 4);
}

static int
split(const char *msg, size_t len, struct ptl_sasl_plain *p)
{
	return ptl_sasl_plain_split((const unsigned char *)msg, len, USER_MAX,
	                            PASS_MAX, p);
}

static void
test_plain(void **state)
{
	struct ptl_sasl_plain p;

	(void)state;
	assert_int_equal(split("\0alice@x.test\0secret", 20, &p), PTL_OK);
	assert_string_equal(p.user, "alice@x.test");
	assert_int_equal(p.user_len, 12);
	assert_int_equal(p.pass_len, 6);
	assert_memory_equal(p.pass, "secret", 6);
	/* authzid equal to authcid is fine. */
	assert_int_equal(split("user\0user\0pass", 14, &p), PTL_OK);
	assert_string_equal(p.user, "user");
	/* A password with spaces and 8-bit octets. */
	assert_int_equal(split("\0u\0p a\xc3\xa9", 8, &p), PTL_OK);
	assert_int_equal(p.pass_len, 5);
}

static void
test_plain_refused(void **state)
{
	struct ptl_sasl_plain p;
	char big[USER_MAX + PASS_MAX + 16];

	(void)state;
	/* maddy CVE-2023-27582: another identity must not be accepted. */
	assert_int_equal(split("admin\0bob\0pw", 12, &p), PTL_ERROR);
	assert_int_equal(split("bobx\0bob\0pw", 11, &p), PTL_ERROR);
	assert_int_equal(split("bo\0bob\0pw", 9, &p), PTL_ERROR);
	/* Missing or empty parts, extra NULs. */
	assert_int_equal(split("", 0, &p), PTL_ERROR);
	assert_int_equal(split("bob", 3, &p), PTL_ERROR);
	assert_int_equal(split("\0bob", 4, &p), PTL_ERROR);
	assert_int_equal(split("\0bob\0", 5, &p), PTL_ERROR);
	assert_int_equal(split("\0\0pw", 4, &p), PTL_ERROR);
	assert_int_equal(split("\0bob\0p\0w", 8, &p), PTL_ERROR);
	/* Control characters in the name. */
	assert_int_equal(split("\0bo\nb\0pw", 8, &p), PTL_ERROR);
	assert_int_equal(split("\0bo\x7f\0pw", 7, &p), PTL_ERROR);
	/* Name and password lengths, at and over the limits. */
	memset(big, 'u', sizeof(big));
	big[0] = '\0';
	big[USER_MAX + 1] = '\0';
	big[USER_MAX + 2] = 'p';
	assert_int_equal(split(big, USER_MAX + 3, &p), PTL_OK);
	big[USER_MAX + 1] = 'u';
	big[USER_MAX + 2] = '\0';
	big[USER_MAX + 3] = 'p';
	assert_int_equal(split(big, USER_MAX + 4, &p), PTL_ERROR);
	memset(big, 'p', sizeof(big));
	memcpy(big, "\0u\0", 3);
	assert_int_equal(split(big, 3 + PASS_MAX, &p), PTL_OK);
	assert_int_equal(split(big, 3 + PASS_MAX + 1, &p), PTL_ERROR);
}

static void
test_names(void **state)
{
	char big[USER_MAX + 1];

	(void)state;
	assert_true(ptl_sasl_name_ok("a@b.example", 11, USER_MAX));
	assert_true(ptl_sasl_name_ok("with space", 10, USER_MAX));
	assert_false(ptl_sasl_name_ok("", 0, USER_MAX));
	assert_false(ptl_sasl_name_ok("a\rb", 3, USER_MAX));
	assert_false(ptl_sasl_name_ok("a\x7f", 2, USER_MAX));
	assert_false(ptl_sasl_name_ok("a\0b", 3, USER_MAX));
	memset(big, 'x', sizeof(big));
	assert_true(ptl_sasl_name_ok(big, USER_MAX, USER_MAX));
	assert_false(ptl_sasl_name_ok(big, USER_MAX + 1, USER_MAX));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_base64_good),
	    cmocka_unit_test(test_base64_bad),
	    cmocka_unit_test(test_base64_digits),
	    cmocka_unit_test(test_base64_round_trip),
	    cmocka_unit_test(test_plain),
	    cmocka_unit_test(test_plain_refused),
	    cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
