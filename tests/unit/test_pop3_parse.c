/* SPDX-License-Identifier: MIT */
/* Unit tests for the POP3 command parser, numbers and argument splitting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pop3.h"

struct parse_fixture {
	struct pop3_parser p;
	char args[POP3_SASL_LINE_MAX];
};

static int
setup(void **state)
{
	struct parse_fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	pop3_parse_init(&f->p, f->args, sizeof(f->args), 255);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	free(*state);
	return 0;
}

/* Feed a whole string; return the result of the first complete line. */
static int
feed_all(struct pop3_parser *p, const char *s, size_t len, size_t *used_out)
{
	size_t used;
	int rc = pop3_parse_feed(p, s, len, &used);

	if (used_out != NULL)
		*used_out = used;
	return rc;
}

static void
check_verb(const struct pop3_parser *p)
{
	size_t i;

	assert_true(p->verb_len >= 1 && p->verb_len <= 4);
	for (i = 0; i < p->verb_len; i++)
		assert_true(p->verb[i] >= 'A' && p->verb[i] <= 'Z');
}

static void
test_simple_commands(void **state)
{
	struct parse_fixture *f = *state;
	size_t used;

	assert_int_equal(feed_all(&f->p, "STAT\r\n", 6, &used), PTL_OK);
	assert_int_equal(used, 6);
	assert_string_equal(f->p.verb, "STAT");
	assert_int_equal(f->p.args_len, 0);

	assert_int_equal(feed_all(&f->p, "retr 12\r\n", 9, &used), PTL_OK);
	assert_string_equal(f->p.verb, "RETR");
	assert_string_equal(f->p.args, "12");

	/* A bare LF ends a line too. */
	assert_int_equal(feed_all(&f->p, "Top 1 5\n", 8, &used), PTL_OK);
	assert_string_equal(f->p.verb, "TOP");
	assert_string_equal(f->p.args, "1 5");

	/* PASS keeps spaces: the argument is the rest of the line. */
	assert_int_equal(feed_all(&f->p, "PASS a b  c \r\n", 14, &used),
	                 PTL_OK);
	assert_string_equal(f->p.args, "a b  c ");
}

static void
test_pipelined_lines(void **state)
{
	struct parse_fixture *f = *state;
	const char *in = "USER a\r\nPASS b\r\nSTAT\r\n";
	size_t len = strlen(in), used, off = 0;

	assert_int_equal(feed_all(&f->p, in, len, &used), PTL_OK);
	assert_string_equal(f->p.verb, "USER");
	off += used;
	assert_int_equal(feed_all(&f->p, in + off, len - off, &used), PTL_OK);
	assert_string_equal(f->p.verb, "PASS");
	off += used;
	assert_int_equal(feed_all(&f->p, in + off, len - off, &used), PTL_OK);
	assert_string_equal(f->p.verb, "STAT");
	off += used;
	assert_int_equal(off, len);
}

/* Every split point of a line gives the same result. */
static void
test_byte_by_byte(void **state)
{
	struct parse_fixture *f = *state;
	const char *in = "UIDL 7\r\n";
	size_t len = strlen(in), i, used;

	for (i = 0; i + 1 < len; i++) {
		assert_int_equal(pop3_parse_feed(&f->p, in + i, 1, &used),
		                 PTL_AGAIN);
		assert_int_equal(used, 1);
	}
	assert_int_equal(pop3_parse_feed(&f->p, in + len - 1, 1, &used),
	                 PTL_OK);
	assert_string_equal(f->p.verb, "UIDL");
	assert_string_equal(f->p.args, "7");
}

static void
test_bad_verbs(void **state)
{
	struct parse_fixture *f = *state;
	static const char *const bad[] = {
	    "\r\n",      "STATS\r\n",     "ST4T\r\n",
	    " STAT\r\n", "\xc3\xa9t\r\n", "?\r\n",
	};
	size_t i, used;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(feed_all(&f->p, bad[i], strlen(bad[i]), &used),
		                 PTL_DECLINED);
		assert_int_equal(used, strlen(bad[i]));
		assert_int_equal(f->p.error, POP3_PARSE_BAD_VERB);
	}
	/* The parser recovers for the next line. */
	assert_int_equal(feed_all(&f->p, "NOOP\r\n", 6, &used), PTL_OK);
}

static void
test_nul_and_controls(void **state)
{
	struct parse_fixture *f = *state;
	size_t used;

	assert_int_equal(feed_all(&f->p, "USER a\0b\r\n", 10, &used),
	                 PTL_DECLINED);
	assert_int_equal(used, 10);
	assert_int_equal(f->p.error, POP3_PARSE_NUL);
	assert_int_equal(feed_all(&f->p, "US\0ER\r\n", 7, &used), PTL_DECLINED);
	assert_int_equal(f->p.error, POP3_PARSE_NUL);
	/* A CR inside a line. */
	assert_int_equal(feed_all(&f->p, "USER a\rQUIT\r\n", 13, &used),
	                 PTL_DECLINED);
	assert_int_equal(used, 13);
	assert_int_equal(f->p.error, POP3_PARSE_BAD_CHAR);
	assert_int_equal(feed_all(&f->p, "USER a\tb\r\n", 10, &used),
	                 PTL_DECLINED);
	assert_int_equal(f->p.error, POP3_PARSE_BAD_CHAR);
	assert_int_equal(feed_all(&f->p, "QUIT\r\n", 6, &used), PTL_OK);
}

static void
test_line_limit(void **state)
{
	struct parse_fixture *f = *state;
	char line[300];
	size_t used;

	/* 253 octets + CRLF = 255: accepted. */
	memset(line, 'a', sizeof(line));
	memcpy(line, "USER ", 5);
	memcpy(line + 253, "\r\n", 2);
	assert_int_equal(feed_all(&f->p, line, 255, &used), PTL_OK);
	assert_int_equal(f->p.args_len, 248);
	/* 254 + CRLF = 256: refused, all of it consumed. */
	memset(line, 'a', sizeof(line));
	memcpy(line, "USER ", 5);
	memcpy(line + 254, "\r\n", 2);
	assert_int_equal(feed_all(&f->p, line, 256, &used), PTL_DECLINED);
	assert_int_equal(used, 256);
	assert_int_equal(f->p.error, POP3_PARSE_TOO_LONG);
	/* Too long wins over a bad verb seen first. */
	memset(line, 'Q', sizeof(line));
	memcpy(line + 298, "\r\n", 2);
	assert_int_equal(feed_all(&f->p, line, 300, &used), PTL_DECLINED);
	assert_int_equal(f->p.error, POP3_PARSE_TOO_LONG);
	/* A bad verb on a short line stays a bad verb. */
	assert_int_equal(feed_all(&f->p, "QQQQQ\r\n", 7, &used), PTL_DECLINED);
	assert_int_equal(f->p.error, POP3_PARSE_BAD_VERB);
}

/* A 100 KB line fed in pieces: one refusal at its end, then recovery. */
static void
test_huge_line(void **state)
{
	struct parse_fixture *f = *state;
	size_t total = 100 * 1024, off = 0, used;
	char *big = malloc(total + 8);
	int rc = PTL_AGAIN;

	assert_non_null(big);
	memset(big, 'x', total);
	memcpy(big, "USER ", 5);
	memcpy(big + total, "\r\nSTAT\r\n", 8);
	while (off < total + 8) {
		size_t n = total + 8 - off < 1000 ? total + 8 - off : 1000;

		rc = pop3_parse_feed(&f->p, big + off, n, &used);
		off += used;
		if (rc != PTL_AGAIN)
			break;
	}
	assert_int_equal(rc, PTL_DECLINED);
	assert_int_equal(f->p.error, POP3_PARSE_TOO_LONG);
	assert_int_equal(off, total + 2);
	assert_int_equal(feed_all(&f->p, big + off, 6, &used), PTL_OK);
	assert_string_equal(f->p.verb, "STAT");
	free(big);
}

static void
test_line_mode(void **state)
{
	struct parse_fixture *f = *state;
	char line[2100];
	size_t used;

	pop3_parse_set_mode(&f->p, POP3_PARSE_LINE, POP3_SASL_LINE_MAX);
	assert_int_equal(feed_all(&f->p, "AGFAYg==\r\n", 10, &used), PTL_OK);
	assert_string_equal(f->p.args, "AGFAYg==");
	assert_int_equal(feed_all(&f->p, "*\r\n", 3, &used), PTL_OK);
	assert_string_equal(f->p.args, "*");
	/* Longer than a command may be, shorter than the SASL limit. */
	memset(line, 'A', sizeof(line));
	memcpy(line + 1000, "\r\n", 2);
	assert_int_equal(feed_all(&f->p, line, 1002, &used), PTL_OK);
	assert_int_equal(f->p.args_len, 1000);
	memset(line, 'A', sizeof(line));
	memcpy(line + 2050, "\r\n", 2);
	assert_int_equal(feed_all(&f->p, line, 2052, &used), PTL_DECLINED);
	assert_int_equal(f->p.error, POP3_PARSE_TOO_LONG);
	pop3_parse_set_mode(&f->p, POP3_PARSE_COMMAND, 255);
	assert_int_equal(feed_all(&f->p, "QUIT\r\n", 6, &used), PTL_OK);
}

/*
 * Random bytes in random pieces: the parser never writes past its buffer,
 * never takes more than it was given, and reports sane commands.
 */
static void
test_random_input(void **state)
{
	struct parse_fixture *f = *state;
	unsigned seed = 12345;
	char data[4096];
	size_t round, i;

	for (round = 0; round < 2000; round++) {
		size_t len = (size_t)(rand_r(&seed) % sizeof(data)), off = 0;

		for (i = 0; i < len; i++) {
			/* Mostly letters, spaces and line ends. */
			int r = rand_r(&seed) % 16;

			if (r < 8)
				data[i] = (char)('A' + rand_r(&seed) % 26);
			else if (r < 10)
				data[i] = ' ';
			else if (r < 12)
				data[i] = '\n';
			else if (r < 13)
				data[i] = '\r';
			else
				data[i] = (char)(rand_r(&seed) % 256);
		}
		if (round % 7 == 0)
			pop3_parse_set_mode(&f->p, POP3_PARSE_LINE,
			                    POP3_SASL_LINE_MAX);
		else if (round % 7 == 1)
			pop3_parse_set_mode(&f->p, POP3_PARSE_COMMAND, 255);
		while (off < len) {
			size_t n = 1 + (size_t)rand_r(&seed) % (len - off);
			size_t used = 0;
			int rc = pop3_parse_feed(&f->p, data + off, n, &used);

			assert_true(used >= 1 && used <= n);
			assert_true(f->p.args_len < f->p.args_cap);
			if (rc == PTL_OK) {
				assert_int_equal(data[off + used - 1], '\n');
				assert_true(f->p.args_len + 1 < f->p.max_line);
				assert_int_equal(strlen(f->p.args),
				                 f->p.args_len);
				if (f->p.mode == POP3_PARSE_COMMAND)
					check_verb(&f->p);
			} else if (rc == PTL_DECLINED) {
				assert_int_equal(data[off + used - 1], '\n');
				assert_int_not_equal(f->p.error, POP3_PARSE_OK);
			} else {
				assert_int_equal(rc, PTL_AGAIN);
				assert_int_equal(used, n);
			}
			off += used;
		}
	}
}

static void
test_numbers(void **state)
{
	uint64_t n;

	assert_int_equal(pop3_parse_number("1", 1, &n), PTL_OK);
	assert_int_equal(n, 1);
	assert_int_equal(pop3_parse_number("0", 1, &n), PTL_OK);
	assert_int_equal(n, 0);
	assert_int_equal(pop3_parse_number("4294967295", 10, &n), PTL_OK);
	assert_int_equal(n, 4294967295u);
	assert_int_equal(pop3_parse_number("9999999999", 10, &n), PTL_OK);
	assert_int_equal(pop3_parse_number("99999999999", 11, &n), PTL_ERROR);
	assert_int_equal(pop3_parse_number("-1", 2, &n), PTL_ERROR);
	assert_int_equal(pop3_parse_number("+1", 2, &n), PTL_ERROR);
	assert_int_equal(pop3_parse_number("1a", 2, &n), PTL_ERROR);
	assert_int_equal(pop3_parse_number("", 0, &n), PTL_ERROR);
	assert_int_equal(pop3_parse_number("0x1", 3, &n), PTL_ERROR);
}

static void
test_args_split(void **state)
{
	struct pop3_args a;

	pop3_args_split("", 0, &a);
	assert_int_equal(a.argc, 0);
	pop3_args_split("1", 1, &a);
	assert_int_equal(a.argc, 1);
	assert_int_equal(a.argl[0], 1);
	pop3_args_split("12  5 ", 6, &a);
	assert_int_equal(a.argc, 2);
	assert_memory_equal(a.argv[0], "12", 2);
	assert_memory_equal(a.argv[1], "5", 1);
	assert_int_equal(a.argl[1], 1);
	pop3_args_split("1 2 3", 5, &a);
	assert_int_equal(a.argc, POP3_ARGS_MAX + 1);
	assert_int_equal(a.raw_len, 5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_simple_commands, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_pipelined_lines, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_byte_by_byte, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_verbs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nul_and_controls, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_line_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_huge_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_line_mode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_random_input, setup, teardown),
	    cmocka_unit_test(test_numbers),
	    cmocka_unit_test(test_args_split),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
