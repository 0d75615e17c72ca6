/* SPDX-License-Identifier: MIT */
/* Unit tests for the SMTP client's reply parser, EHLO keywords and xtext. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "smtpc.h"

static int
feed(struct smtpc_reply *r, const char *line)
{
	const char *text;
	size_t len;

	return smtpc_reply_feed(r, line, strlen(line), &text, &len);
}

static void
test_single_line(void **state)
{
	struct smtpc_reply r;

	smtpc_reply_reset(&r);
	assert_int_equal(feed(&r, "250 2.1.0 Ok\r\n"), PTL_OK);
	assert_true(r.complete);
	assert_int_equal(r.code, 250);
	assert_int_equal(smtpc_reply_class(&r), 2);
	assert_string_equal(r.text, "250 2.1.0 Ok");

	/* A code alone, and a bare LF, are fine. */
	smtpc_reply_reset(&r);
	assert_int_equal(feed(&r, "354\n"), PTL_OK);
	assert_int_equal(r.code, 354);
	assert_string_equal(r.text, "354");
}

static void
test_multi_line(void **state)
{
	struct smtpc_reply r;
	const char *text;
	size_t len;

	smtpc_reply_reset(&r);
	assert_int_equal(
	    smtpc_reply_feed(&r, "250-mx.example.org hi\r\n", 23, &text, &len),
	    PTL_AGAIN);
	assert_int_equal(len, strlen("mx.example.org hi"));
	assert_memory_equal(text, "mx.example.org hi", len);
	assert_false(r.complete);
	assert_int_equal(
	    smtpc_reply_feed(&r, "250-PIPELINING\r\n", 16, &text, &len),
	    PTL_AGAIN);
	assert_memory_equal(text, "PIPELINING", len);
	assert_int_equal(feed(&r, "250 SIZE 1000\r\n"), PTL_OK);
	assert_int_equal(r.nlines, 3);
	assert_string_equal(r.text,
	                    "250 mx.example.org hi PIPELINING SIZE 1000");

	/* A repeated enhanced code is said once. */
	smtpc_reply_reset(&r);
	assert_int_equal(feed(&r, "550-5.1.1 No such user\r\n"), PTL_AGAIN);
	assert_int_equal(feed(&r, "550 5.1.1 here\r\n"), PTL_OK);
	assert_string_equal(r.text, "550 5.1.1 No such user here");

	/* An empty continuation line. */
	smtpc_reply_reset(&r);
	assert_int_equal(feed(&r, "220-\r\n"), PTL_AGAIN);
	assert_int_equal(feed(&r, "220 ready\r\n"), PTL_OK);
	assert_string_equal(r.text, "220 ready");
}

static void
test_garbage(void **state)
{
	static const char *const bad[] = {
	    "\r\n",        "25\r\n",      "2x0 ok\r\n",
	    "650 no\r\n",  "190 no\r\n",  "260 no\r\n",
	    "250x ok\r\n", "250\tok\r\n", "HTTP/1.1 200\r\n",
	    "-250 ok\r\n", " 250 ok\r\n",
	};
	struct smtpc_reply r;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		smtpc_reply_reset(&r);
		assert_int_equal(feed(&r, bad[i]), PTL_ERROR);
		assert_non_null(r.error);
	}
	/* Codes must agree over the lines of one reply. */
	smtpc_reply_reset(&r);
	assert_int_equal(feed(&r, "250-a\r\n"), PTL_AGAIN);
	assert_int_equal(feed(&r, "550 b\r\n"), PTL_ERROR);
	assert_string_equal(r.error, "reply codes differ between lines");

	/* Nothing after the last line. */
	smtpc_reply_reset(&r);
	assert_int_equal(feed(&r, "250 a\r\n"), PTL_OK);
	assert_int_equal(feed(&r, "250 b\r\n"), PTL_ERROR);
}

/* OpenSMTPD CVE-2020-8794: a hostile server's endless reply. */
static void
test_bounds(void **state)
{
	struct smtpc_reply r;
	char line[SMTPC_REPLY_LINE_MAX + 16];
	size_t i;
	int rc = PTL_AGAIN;

	smtpc_reply_reset(&r);
	for (i = 0; i < 1000 && rc == PTL_AGAIN; i++)
		rc = feed(&r, "250-flood\r\n");
	assert_int_equal(rc, PTL_ERROR);
	assert_int_equal(i, SMTPC_REPLY_LINES_MAX + 1);
	assert_string_equal(r.error, "too many reply lines");

	/* A line over the bound. */
	memset(line, 'a', sizeof(line));
	memcpy(line, "250 ", 4);
	smtpc_reply_reset(&r);
	assert_int_equal(
	    smtpc_reply_feed(&r, line, SMTPC_REPLY_LINE_MAX + 1, NULL, NULL),
	    PTL_ERROR);
	assert_int_equal(
	    smtpc_reply_feed(&r, line, SMTPC_REPLY_LINE_MAX, NULL, NULL),
	    PTL_ERROR); /* already failed: the reply is dead */
	smtpc_reply_reset(&r);
	assert_int_equal(
	    smtpc_reply_feed(&r, line, SMTPC_REPLY_LINE_MAX, NULL, NULL),
	    PTL_OK);
	/* The summary is bounded and terminated. */
	assert_int_equal(strlen(r.text), SMTPC_REPLY_TEXT_MAX - 1);

	/* Total bytes: 99 lines of 1000 octets pass the line count but
	 * not the byte budget. */
	memcpy(line, "250-", 4);
	smtpc_reply_reset(&r);
	rc = PTL_AGAIN;
	for (i = 0; i < 99 && rc == PTL_AGAIN; i++)
		rc = smtpc_reply_feed(&r, line, 1000, NULL, NULL);
	assert_int_equal(rc, PTL_ERROR);
	assert_string_equal(r.error, "reply too long");
}

static void
test_sanitized(void **state)
{
	struct smtpc_reply r;
	static const char line[] = "550 bad\0nul \x1b[31m \xff\r\n";

	smtpc_reply_reset(&r);
	assert_int_equal(
	    smtpc_reply_feed(&r, line, sizeof(line) - 1, NULL, NULL), PTL_OK);
	assert_string_equal(r.text, "550 bad?nul ?[31m ?");
}

static void
test_caps(void **state)
{
	static const char *const lines[] = {
	    "PIPELINING",       "SIZE 35882577",
	    "8bitmime",         "STARTTLS",
	    "AUTH LOGIN PLAIN", "DSN",
	    "SMTPUTF8",         "CHUNKING",
	    "BINARYMIME",       "ENHANCEDSTATUSCODES",
	    "X-UNKNOWN foo",
	};
	struct smtpc_caps caps = {0};
	size_t i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		smtpc_caps_line(&caps, lines[i], strlen(lines[i]));
	assert_int_equal(caps.ext, SMTPC_EXT_PIPELINING | SMTPC_EXT_SIZE |
	                               SMTPC_EXT_8BITMIME | SMTPC_EXT_STARTTLS |
	                               SMTPC_EXT_AUTH_PLAIN | SMTPC_EXT_DSN |
	                               SMTPC_EXT_SMTPUTF8 | SMTPC_EXT_CHUNKING |
	                               SMTPC_EXT_BINARYMIME |
	                               SMTPC_EXT_ENHANCED);
	assert_int_equal(caps.size_max, 35882577);

	memset(&caps, 0, sizeof(caps));
	smtpc_caps_line(&caps, "AUTH=PLAIN", 10);
	smtpc_caps_line(&caps, "SIZE", 4);
	assert_int_equal(caps.ext, SMTPC_EXT_AUTH_PLAIN | SMTPC_EXT_SIZE);
	assert_int_equal(caps.size_max, 0);

	/* Not PLAIN: a prefix is not the word. */
	memset(&caps, 0, sizeof(caps));
	smtpc_caps_line(&caps, "AUTH PLAINX LOGIN", 17);
	smtpc_caps_line(&caps, "SIZE 99999999999999999999999", 28);
	smtpc_caps_line(&caps, "PIPELININGX", 11);
	assert_int_equal(caps.ext, SMTPC_EXT_SIZE);
	assert_int_equal(caps.size_max, 0);

	/* NUL bytes in AUTH's list (a hostile server): no endless loop,
	 * and the words around them still count (fuzz_smtpc_reply). */
	memset(&caps, 0, sizeof(caps));
	smtpc_caps_line(&caps, "AUTH \0\0 LOGIN\0PLAIN", 19);
	assert_int_equal(caps.ext, SMTPC_EXT_AUTH_PLAIN);
	memset(&caps, 0, sizeof(caps));
	smtpc_caps_line(&caps, "AUTH \0", 6);
	assert_int_equal(caps.ext, 0);
}

static void
test_xtext(void **state)
{
	char out[64];

	assert_int_equal(smtpc_xtext(out, sizeof(out), "a+b=c d", 7), 13);
	assert_string_equal(out, "a+2Bb+3Dc+20d");
	assert_int_equal(smtpc_xtext(out, sizeof(out), "x\r\ny", 4), 8);
	assert_string_equal(out, "x+0D+0Ay");
	assert_int_equal(smtpc_xtext(out, 4, "abcd", 4), (size_t)-1);
	assert_int_equal(smtpc_xtext(out, 5, "abcd", 4), 4);
	assert_int_equal(smtpc_xtext(out, 5, "ab+", 3), (size_t)-1);
}

static void
test_address(void **state)
{
	char big[600];

	assert_true(smtpc_address_ok("", false));
	assert_true(smtpc_address_ok("user@example.org", false));
	assert_false(smtpc_address_ok("a@b>\r\nRCPT TO:<x@y", false));
	assert_false(smtpc_address_ok("a b@c", false));
	assert_false(smtpc_address_ok("a\x7f@c", false));
	assert_false(smtpc_address_ok("j\xc3\xb6rg@example.org", false));
	assert_true(smtpc_address_ok("j\xc3\xb6rg@example.org", true));
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_false(smtpc_address_ok(big, false));
	assert_true(smtpc_is_ascii("abc"));
	assert_false(smtpc_is_ascii("\xc3\xa9"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_single_line),
	    cmocka_unit_test(test_multi_line),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_sanitized),
	    cmocka_unit_test(test_caps),
	    cmocka_unit_test(test_xtext),
	    cmocka_unit_test(test_address),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
