/* SPDX-License-Identifier: MIT */
/* Unit tests for SMTP command lines, HELO and BDAT arguments, UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <petrel/core.h>

#include "smtp_parse.h"

static int
split(const char *line, struct smtp_cmdline *cl)
{
	return smtp_parse_command(line, strlen(line), cl);
}

static void
test_split(void **state)
{
	struct smtp_cmdline cl;

	assert_int_equal(split("MAIL FROM:<a@b.c> SIZE=1\r\n", &cl), PTL_OK);
	assert_true(smtp_verb_is(&cl, "mail"));
	assert_int_equal(cl.args_len, strlen("FROM:<a@b.c> SIZE=1"));
	assert_memory_equal(cl.args, "FROM:<a@b.c> SIZE=1", cl.args_len);

	assert_int_equal(split("quit\r\n", &cl), PTL_OK);
	assert_true(smtp_verb_is(&cl, "QUIT"));
	assert_int_equal(cl.args_len, 0);

	/* A bare LF ends a command too; trailing blanks are dropped. */
	assert_int_equal(split("NOOP  hello \t\n", &cl), PTL_OK);
	assert_int_equal(cl.args_len, 5);
	assert_memory_equal(cl.args, "hello", 5);

	assert_int_equal(split("RSET", &cl), PTL_OK);
	assert_true(smtp_verb_is(&cl, "RSET"));
	assert_false(smtp_verb_is(&cl, "RSE"));
	assert_false(smtp_verb_is(&cl, "RSETX"));
}

static void
test_split_errors(void **state)
{
	struct smtp_cmdline cl;

	assert_int_equal(split("\r\n", &cl), PTL_ERROR);
	assert_int_equal(split(" MAIL\r\n", &cl), PTL_ERROR);
	assert_int_equal(split("MA1L\r\n", &cl), PTL_ERROR);
	assert_int_equal(split("MAIL\tFROM:<>\r\n", &cl), PTL_ERROR);
	/* A CR inside the line, or a NUL, is refused. */
	assert_int_equal(split("RSET\rQUIT\r\n", &cl), PTL_ERROR);
	assert_int_equal(split("NOOP a\r\r\n", &cl), PTL_ERROR);
	assert_int_equal(smtp_parse_command("NOOP a\0b\r\n", 10, &cl),
	                 PTL_ERROR);
}

static void
test_keyword(void **state)
{
	const char *rest;
	size_t len;

	assert_int_equal(
	    smtp_parse_keyword("from:<a@b>", 10, "FROM:", &rest, &len), PTL_OK);
	assert_int_equal(len, 5);
	assert_int_equal(
	    smtp_parse_keyword("FROM:  <>", 9, "FROM:", &rest, &len), PTL_OK);
	assert_int_equal(len, 2);
	assert_int_equal(smtp_parse_keyword("FROM <>", 7, "FROM:", &rest, &len),
	                 PTL_ERROR);
	assert_int_equal(smtp_parse_keyword("TO", 2, "TO:", &rest, &len),
	                 PTL_ERROR);
}

static void
test_helo(void **state)
{
	char big[300];

	assert_int_equal(smtp_parse_helo("mail.example.test", 17), PTL_OK);
	assert_int_equal(smtp_parse_helo("[192.0.2.1]", 11), PTL_OK);
	assert_int_equal(smtp_parse_helo("b\xc3\xbc\x63her.test", 11), PTL_OK);
	assert_int_equal(smtp_parse_helo("", 0), PTL_ERROR);
	assert_int_equal(smtp_parse_helo("a\x01", 2), PTL_ERROR);
	assert_int_equal(smtp_parse_helo("a\x7f", 2), PTL_ERROR);
	assert_int_equal(smtp_parse_helo("a\xff", 2), PTL_ERROR);
	memset(big, 'a', sizeof(big));
	assert_int_equal(smtp_parse_helo(big, 255), PTL_OK);
	assert_int_equal(smtp_parse_helo(big, 256), PTL_ERROR);
}

static void
test_bdat(void **state)
{
	uint64_t size;
	bool last;

	assert_int_equal(smtp_parse_bdat("100", 3, &size, &last), PTL_OK);
	assert_int_equal(size, 100);
	assert_false(last);
	assert_int_equal(smtp_parse_bdat("0 LAST", 6, &size, &last), PTL_OK);
	assert_int_equal(size, 0);
	assert_true(last);
	assert_int_equal(smtp_parse_bdat("7 last", 6, &size, &last), PTL_OK);
	assert_true(last);
	assert_int_equal(smtp_parse_bdat("", 0, &size, &last), PTL_ERROR);
	assert_int_equal(smtp_parse_bdat("x", 1, &size, &last), PTL_ERROR);
	assert_int_equal(smtp_parse_bdat("-1", 2, &size, &last), PTL_ERROR);
	assert_int_equal(smtp_parse_bdat("1 FIRST", 7, &size, &last),
	                 PTL_ERROR);
	assert_int_equal(smtp_parse_bdat("1 LAST x", 8, &size, &last),
	                 PTL_ERROR);
	assert_int_equal(smtp_parse_bdat("1x", 2, &size, &last), PTL_ERROR);
	assert_int_equal(
	    smtp_parse_bdat("99999999999999999999999", 23, &size, &last),
	    PTL_ERROR);
}

static void
test_utf8(void **state)
{
	assert_true(smtp_utf8_valid((const unsigned char *)"abc", 3));
	assert_true(smtp_utf8_valid((const unsigned char *)"\xc3\xa4", 2));
	assert_true(smtp_utf8_valid((const unsigned char *)"\xe2\x82\xac", 3));
	assert_true(
	    smtp_utf8_valid((const unsigned char *)"\xf0\x9f\x98\x80", 4));
	assert_false(smtp_utf8_valid((const unsigned char *)"\xc3", 1));
	assert_false(smtp_utf8_valid((const unsigned char *)"\xc0\x80", 2));
	assert_false(smtp_utf8_valid((const unsigned char *)"\xe0\x80\x80", 3));
	assert_false(smtp_utf8_valid((const unsigned char *)"\xed\xa0\x80", 3));
	assert_false(
	    smtp_utf8_valid((const unsigned char *)"\xf4\x90\x80\x80", 4));
	assert_false(smtp_utf8_valid((const unsigned char *)"\x80", 1));
	assert_false(smtp_utf8_valid((const unsigned char *)"\xff", 1));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_split),   cmocka_unit_test(test_split_errors),
	    cmocka_unit_test(test_keyword), cmocka_unit_test(test_helo),
	    cmocka_unit_test(test_bdat),    cmocka_unit_test(test_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
