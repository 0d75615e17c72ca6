/* SPDX-License-Identifier: MIT */
/* DKIM tag lists, base64 and key records (modules/dkim). */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dkim.h"

/* The RFC 8463 appendix A keys. */
#define ED25519_PUB "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
#define RSA1024_PUB                                                              \
	"MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5" \
	"qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+y"   \
	"z1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K"   \
	"4w3QIDAQAB"

static int
parse(const char *text, struct dkim_tags *t, const char **why)
{
	*why = NULL;
	return dkim_tags_parse(text, strlen(text), t, why);
}

static void
assert_tag(const struct dkim_tags *t, const char *name, const char *value)
{
	const struct dkim_tag *tag = dkim_tags_get(t, name);

	assert_non_null(tag);
	if (tag->value_len != strlen(value) ||
	    memcmp(tag->value, value, tag->value_len) != 0)
		fail_msg("%s=[%.*s], want [%s]", name, (int)tag->value_len,
		         tag->value, value);
}

static void
test_tags_basic(void **state)
{
	struct dkim_tags t;
	const char *why;

	assert_int_equal(
	    parse("v=1; a=rsa-sha256;d=example.net; s=x", &t, &why), 0);
	assert_int_equal(t.count, 4);
	assert_tag(&t, "v", "1");
	assert_tag(&t, "a", "rsa-sha256");
	assert_tag(&t, "d", "example.net");
	assert_tag(&t, "s", "x");
	assert_null(dkim_tags_get(&t, "b"));
	/* Names are case-sensitive. */
	assert_null(dkim_tags_get(&t, "V"));
}

static void
test_tags_whitespace_and_folding(void **state)
{
	const char *text = " v = 1 ;\r\n\th=from : to\r\n : subject ; "
	                   "b=abc\r\n def= ;p= ; ";
	const struct dkim_tag *b;
	struct dkim_tags t;
	const char *why;

	assert_int_equal(parse(text, &t, &why), 0);
	assert_int_equal(t.count, 4);
	assert_tag(&t, "v", "1");
	assert_tag(&t, "h", "from : to\r\n : subject");
	assert_tag(&t, "b", "abc\r\n def=");
	assert_tag(&t, "p", "");
	/* The raw span of b= takes the whitespace around the value. */
	b = dkim_tags_get(&t, "b");
	assert_int_equal(text[b->raw_start - 1], '=');
	assert_int_equal(text[b->raw_end], ';');
}

static void
test_tags_trailing_semicolon(void **state)
{
	struct dkim_tags t;
	const char *why;

	assert_int_equal(parse("a=1;", &t, &why), 0);
	assert_int_equal(parse("a=1; \r\n ", &t, &why), 0);
	assert_int_equal(t.count, 1);
}

static void
test_tags_errors(void **state)
{
	static const struct {
		const char *text;
		const char *why;
	} cases[] = {
	    {"", "empty tag list"},
	    {"   ", "empty tag list"},
	    {"a=1;;b=2", "bad tag name"},
	    {";a=1", "bad tag name"},
	    {"1a=1", "bad tag name"},
	    {"a", "tag without '='"},
	    {"a b=1", "tag without '='"},
	    {"a=1; a=2", "duplicate tag"},
	    {"a=x;y", "tag without '='"},
	    {"a=b\nc", "invalid character in tag value"},
	    {"a=b\r\nc", "invalid character in tag value"},
	    {"a=b\rc", "invalid character in tag value"},
	    {"a=\x80", "invalid character in tag value"},
	    {"a=b\x7f", "invalid character in tag value"},
	    {"a=b\r\n", "invalid character in tag value"},
	    {"abcdefghijabcdefghijabcdefghijabc=1", "tag name too long"},
	};
	struct dkim_tags t;
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (parse(cases[i].text, &t, &why) != -1)
			fail_msg("case %zu [%s] parsed", i, cases[i].text);
		assert_string_equal(why, cases[i].why);
	}
}

static void
test_tags_bounded(void **state)
{
	char text[2048];
	struct dkim_tags t;
	const char *why;
	size_t i, n = 0;

	for (i = 0; i < DKIM_TAGS_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "t%zu=v;", i);
	assert_int_equal(parse(text, &t, &why), 0);
	assert_int_equal(t.count, DKIM_TAGS_MAX);
	(void)snprintf(text + n, sizeof(text) - n, "extra=1");
	assert_int_equal(parse(text, &t, &why), -1);
	assert_string_equal(why, "too many tags");
	/* NUL inside the buffer is a byte like any other: refused. */
	assert_int_equal(dkim_tags_parse("a=b\0c", 5, &t, &why), -1);
}

static void
test_base64(void **state)
{
	unsigned char out[64];
	char text[64];
	size_t n;

	assert_int_equal(dkim_b64_decode("SGVs bG8=", 9, out, sizeof(out), &n),
	                 0);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "Hello", 5);
	assert_int_equal(
	    dkim_b64_decode("SGVs\r\n\tbG8h", 11, out, sizeof(out), &n), 0);
	assert_memory_equal(out, "Hello!", 6);
	assert_int_equal(dkim_b64_decode("", 0, out, sizeof(out), &n), 0);
	assert_int_equal(n, 0);
	/* Malformed: wrong length, data after padding, stray bytes, bits
	 * left over, too much padding, too long for the buffer. */
	assert_int_equal(dkim_b64_decode("SGV", 3, out, sizeof(out), &n), -1);
	assert_int_equal(dkim_b64_decode("SG=s", 4, out, sizeof(out), &n), -1);
	assert_int_equal(dkim_b64_decode("SGV*", 4, out, sizeof(out), &n), -1);
	assert_int_equal(dkim_b64_decode("SGVt", 4, out, 2, &n), -1);
	assert_int_equal(dkim_b64_decode("SGF=", 4, out, sizeof(out), &n), -1);
	assert_int_equal(dkim_b64_decode("S===", 4, out, sizeof(out), &n), -1);
	assert_int_equal(dkim_b64_encode((const unsigned char *)"Hello", 5,
	                                 text, sizeof(text)),
	                 8);
	assert_string_equal(text, "SGVsbG8=");
	assert_int_equal(
	    dkim_b64_encode((const unsigned char *)"Hello", 5, text, 8), 0);
}

static enum dkim_status
key(const char *rec, struct dkim_key *k, char *why)
{
	return dkim_key_parse(rec, strlen(rec), 1024, k, why, 96);
}

static void
test_key_records(void **state)
{
	struct dkim_key k;
	char why[96];

	assert_int_equal(key("v=DKIM1; k=ed25519; p=" ED25519_PUB, &k, why),
	                 DKIM_PASS);
	assert_int_equal(k.alg, DKIM_ALG_ED25519_SHA256);
	assert_non_null(k.pkey);
	dkim_key_free(&k);
	/* k= defaults to rsa; h=, s=, t= and unknown tags. */
	assert_int_equal(key("p=" RSA1024_PUB "; h=sha1:sha256; s=email; "
	                     "t=y:s; n=notes; zz=ignored",
	                     &k, why),
	                 DKIM_PASS);
	assert_int_equal(k.alg, DKIM_ALG_RSA_SHA256);
	assert_int_equal(k.bits, 1024);
	assert_true(k.testing);
	assert_true(k.strict);
	dkim_key_free(&k);
	/* Revoked: empty p=. */
	assert_int_equal(key("v=DKIM1; p=", &k, why), DKIM_PASS);
	assert_true(k.revoked);
	assert_null(k.pkey);
}

static void
test_key_records_refused(void **state)
{
	static const struct {
		const char *rec;
		const char *why;
	} cases[] = {
	    {"k=rsa; v=DKIM1; p=" RSA1024_PUB, "key record: bad v="},
	    {"v=DKIM2; p=" RSA1024_PUB, "key record: bad v="},
	    {"v=DKIM1; h=sha1; p=" RSA1024_PUB, "key does not allow sha256"},
	    {"v=DKIM1; s=tlsrpt; p=" RSA1024_PUB, "key not for email"},
	    {"v=DKIM1; k=dsa; p=" RSA1024_PUB, "unknown key type"},
	    {"v=DKIM1; k=rsa", "key record without p="},
	    {"v=DKIM1; p=not*base64", "bad base64 in p="},
	    {"v=DKIM1; p=AAAA", "bad RSA key"},
	    {"v=DKIM1; k=ed25519; p=AAAA", "ed25519 key is not 32 bytes"},
	    /* An ed25519 key offered as rsa: not valid DER. */
	    {"v=DKIM1; k=rsa; p=" ED25519_PUB, "bad RSA key"},
	    {"v=DKIM1; p", "key record: tag without '='"},
	    {"v=spf1 -all", "key record: bad v="},
	};
	struct dkim_key k;
	char why[96];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (key(cases[i].rec, &k, why) != DKIM_PERMERROR)
			fail_msg("case %zu accepted", i);
		assert_string_equal(why, cases[i].why);
		assert_null(k.pkey);
	}
}

/* RFC 8301: keys under 1024 bits are refused; the bound is a setting. */
static void
test_key_too_small(void **state)
{
	/* A 512-bit RSA SubjectPublicKeyInfo. */
	static const char rec512[] =
	    "p=MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBALPNtLfXf+yYYCqHjir4mVY5trP0cfI"
	    "TNiXgF7fW75UrYs3Aflyh86q2/SjeFFrsEtVJDgzR+LU19X+sMP6txr8CAwEAAQ"
	    "==";
	struct dkim_key k;
	char why[96];

	assert_int_equal(
	    dkim_key_parse(rec512, strlen(rec512), 1024, &k, why, sizeof(why)),
	    DKIM_PERMERROR);
	assert_string_equal(why, "RSA key of 512 bits refused");
	assert_int_equal(dkim_key_parse("p=" RSA1024_PUB,
	                                strlen("p=" RSA1024_PUB), 2048, &k, why,
	                                sizeof(why)),
	                 DKIM_PERMERROR);
	assert_string_equal(why, "RSA key of 1024 bits refused");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tags_basic),
	    cmocka_unit_test(test_tags_whitespace_and_folding),
	    cmocka_unit_test(test_tags_trailing_semicolon),
	    cmocka_unit_test(test_tags_errors),
	    cmocka_unit_test(test_tags_bounded),
	    cmocka_unit_test(test_base64),
	    cmocka_unit_test(test_key_records),
	    cmocka_unit_test(test_key_records_refused),
	    cmocka_unit_test(test_key_too_small),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
