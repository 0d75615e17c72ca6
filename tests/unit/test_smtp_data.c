/* SPDX-License-Identifier: MIT */
/* Unit tests for the SMTP message scanner: end of DATA and smuggling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <petrel/core.h>

#include "smtp_data.h"

/* Result of scanning a whole input. */
struct scan_result {
	int rc;          /* PTL_DONE or PTL_AGAIN */
	size_t consumed; /* input bytes used */
	char out[4096];
	size_t out_len;
	unsigned flags;
};

static void
scan_init(struct smtp_data_scan *s, bool dot_mode)
{
	memset(s, 0, sizeof(*s));
	s->dot_mode = dot_mode;
	s->check_lines = true;
	s->max_line = 1000;
	s->max_size = 0;
}

/* Feed @in in pieces of @step bytes (1 = byte by byte) until DONE. */
static void
scan_all(struct smtp_data_scan *s, const char *in, size_t len, size_t step,
         struct scan_result *r)
{
	size_t off = 0, n, out_len, used;
	int rc = PTL_AGAIN;

	memset(r, 0, sizeof(*r));
	while (off < len) {
		n = len - off < step ? len - off : step;
		rc = smtp_data_scan(s, in + off, n, r->out + r->out_len,
		                    &out_len, &used);
		assert_true(r->out_len + out_len <= sizeof(r->out));
		r->out_len += out_len;
		off += used;
		if (rc == PTL_DONE)
			break;
		assert_int_equal(used, n);
	}
	r->rc = rc;
	r->consumed = off;
	r->flags = s->flags;
}

static void
check_whole_and_split(const char *in, size_t len, bool dot_mode,
                      struct scan_result *whole)
{
	struct smtp_data_scan s;
	struct scan_result r;
	size_t step;

	scan_init(&s, dot_mode);
	scan_all(&s, in, len, len == 0 ? 1 : len, whole);
	/* Every way of splitting the input must give the same result. */
	for (step = 1; step <= 7; step++) {
		scan_init(&s, dot_mode);
		scan_all(&s, in, len, step, &r);
		assert_int_equal(r.rc, whole->rc);
		assert_int_equal(r.consumed, whole->consumed);
		assert_int_equal(r.out_len, whole->out_len);
		assert_memory_equal(r.out, whole->out, r.out_len);
		assert_int_equal(r.flags, whole->flags);
	}
}

#define S(lit) lit, sizeof(lit) - 1

static void
test_simple_message(void **state)
{
	struct scan_result r;

	check_whole_and_split(S("Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n"),
	                      true, &r);
	assert_int_equal(r.rc, PTL_DONE);
	assert_int_equal(r.consumed,
	                 strlen("Subject: x\r\n\r\nhello\r\n.\r\n"));
	assert_int_equal(r.out_len, strlen("Subject: x\r\n\r\nhello\r\n"));
	assert_memory_equal(r.out, "Subject: x\r\n\r\nhello\r\n", r.out_len);
	assert_int_equal(r.flags, 0);
}

static void
test_empty_message(void **state)
{
	struct scan_result r;

	/* The CRLF of the DATA command counts as the first CRLF. */
	check_whole_and_split(S(".\r\n"), true, &r);
	assert_int_equal(r.rc, PTL_DONE);
	assert_int_equal(r.out_len, 0);
	assert_int_equal(r.consumed, 3);
}

static void
test_dot_unstuffing(void **state)
{
	struct scan_result r;

	check_whole_and_split(S("..\r\n..x\r\n.y\r\na.b\r\n...\r\n.\r\n"), true,
	                      &r);
	assert_int_equal(r.rc, PTL_DONE);
	assert_int_equal(r.out_len, strlen(".\r\n.x\r\ny\r\na.b\r\n..\r\n"));
	assert_memory_equal(r.out, ".\r\n.x\r\ny\r\na.b\r\n..\r\n", r.out_len);
	assert_int_equal(r.flags, 0);
}

/*
 * SECURITY.md #1: every non-standard end-of-data must not end the
 * message; the spoofed second message stays inside the first, and the
 * message is flagged (and later refused).
 */
static void
check_smuggle(const char *variant, unsigned want_flag)
{
	char in[512];
	struct scan_result r;
	const char *spoof = "MAIL FROM:<ceo@example.test>\r\n"
	                    "RCPT TO:<victim@example.test>\r\nDATA\r\n"
	                    "Subject: spoofed\r\n\r\nhi\r\n";
	int n;

	n = snprintf(in, sizeof(in), "Subject: first\r\n\r\nbody%s%s.\r\n",
	             variant, spoof);
	assert_true(n > 0 && (size_t)n < sizeof(in));
	check_whole_and_split(in, (size_t)n, true, &r);
	assert_int_equal(r.rc, PTL_DONE);
	/* Only the final CRLF.CRLF ended it: everything was consumed. */
	assert_int_equal(r.consumed, (size_t)n);
	assert_true(r.flags & want_flag);
	/* The spoofed commands are message text, never commands. */
	assert_non_null(memmem(r.out, r.out_len, "MAIL FROM:<ceo", 14));
}

static void
test_smuggling_variants(void **state)
{
	check_smuggle("\n.\n", SMTP_DATA_BARE_LF);
	check_smuggle("\n.\r\n", SMTP_DATA_BARE_LF);
	check_smuggle("\r.\n", SMTP_DATA_BARE_CR);
	check_smuggle("\r\n.\n", SMTP_DATA_BARE_LF);
	check_smuggle("\r\n.\r", SMTP_DATA_BARE_CR);
	check_smuggle("\r.\r", SMTP_DATA_BARE_CR);
	check_smuggle("\r.\r\n", SMTP_DATA_BARE_CR);
	check_smuggle("\n.\r", SMTP_DATA_BARE_LF);
	check_smuggle("\r\n\n.\r\n", SMTP_DATA_BARE_LF);
}

/*
 * "\r\r\n.\r\n" holds a real CRLF.CRLF: every server ends the message
 * there, so there is nothing to smuggle; the bare CR still gets the
 * first message refused.
 */
static void
test_real_end_after_bare_cr(void **state)
{
	struct scan_result r;

	check_whole_and_split(S("body\r\r\n.\r\nMAIL FROM:<a@b.c>\r\n"), true,
	                      &r);
	assert_int_equal(r.rc, PTL_DONE);
	assert_int_equal(r.consumed, strlen("body\r\r\n.\r\n"));
	assert_int_equal(r.flags, SMTP_DATA_BARE_CR);
}

static void
test_bare_lf_only_end(void **state)
{
	struct scan_result r;

	/* A client speaking LF only never ends the message. */
	check_whole_and_split(S("hello\n.\nMAIL FROM:<x@y>\n"), true, &r);
	assert_int_equal(r.rc, PTL_AGAIN);
	assert_true(r.flags & SMTP_DATA_BARE_LF);
}

static void
test_dot_cr_then_stuff(void **state)
{
	struct scan_result r;

	/* ".\rX": the CR is bare, the dot was stuffing. */
	check_whole_and_split(S("a\r\n.\rX\r\n.\r\n"), true, &r);
	assert_int_equal(r.rc, PTL_DONE);
	assert_true(r.flags & SMTP_DATA_BARE_CR);
	assert_memory_equal(r.out, "a\r\n\rX\r\n", r.out_len);
}

static void
test_long_line(void **state)
{
	char *in = malloc(3000);
	struct smtp_data_scan s;
	struct scan_result *r = malloc(sizeof(*r));
	size_t n = 0;

	assert_non_null(in);
	assert_non_null(r);
	/* 998 octets + CRLF = 1000: fine. */
	memset(in, 'a', 998);
	n = 998;
	memcpy(in + n, "\r\n.\r\n", 5);
	n += 5;
	scan_init(&s, true);
	scan_all(&s, in, n, n, r);
	assert_int_equal(r->rc, PTL_DONE);
	assert_int_equal(r->flags, 0);
	/* 999 + CRLF = 1001: too long. */
	memset(in, 'a', 999);
	n = 999;
	memcpy(in + n, "\r\n.\r\n", 5);
	n += 5;
	scan_init(&s, true);
	scan_all(&s, in, n, 1, r);
	assert_int_equal(r->rc, PTL_DONE);
	assert_int_equal(r->flags, SMTP_DATA_LONG_LINE);
	free(in);
	free(r);
}

static void
test_size_limit(void **state)
{
	struct smtp_data_scan s;
	struct scan_result r;

	scan_init(&s, true);
	s.max_size = 10;
	scan_all(&s, S("0123456789abcdef\r\n.\r\n"), 3, &r);
	assert_int_equal(r.rc, PTL_DONE);
	assert_true(r.flags & SMTP_DATA_TOO_BIG);
	assert_int_equal(r.out_len, 10);
	assert_memory_equal(r.out, "0123456789", 10);
	assert_int_equal(s.size, 18);
}

static void
test_bdat_mode(void **state)
{
	struct smtp_data_scan s;
	struct scan_result r;

	/* No dot handling, no end marker. */
	scan_init(&s, false);
	scan_all(&s, S("a\r\n.\r\n..x\r\n"), 4, &r);
	assert_int_equal(r.rc, PTL_AGAIN);
	assert_int_equal(r.out_len, 11);
	assert_memory_equal(r.out, "a\r\n.\r\n..x\r\n", 11);
	assert_int_equal(r.flags, 0);
	smtp_data_finish(&s);
	assert_int_equal(s.flags, 0);

	scan_init(&s, false);
	scan_all(&s, S("a\nb\r"), 1, &r);
	assert_true(s.flags & SMTP_DATA_BARE_LF);
	smtp_data_finish(&s);
	assert_true(s.flags & SMTP_DATA_BARE_CR);

	/* BINARYMIME: nothing is checked. */
	scan_init(&s, false);
	s.check_lines = false;
	scan_all(&s, S("a\nb\r\0c"), 2, &r);
	smtp_data_finish(&s);
	assert_int_equal(s.flags, 0);
	assert_int_equal(r.out_len, 6);
}

static void
test_binary_bytes_kept(void **state)
{
	struct scan_result r;
	const char in[] = "a\0b\xff\r\n.\r\n";

	check_whole_and_split(in, sizeof(in) - 1, true, &r);
	assert_int_equal(r.rc, PTL_DONE);
	assert_int_equal(r.out_len, 6);
	assert_memory_equal(r.out, "a\0b\xff\r\n", 6);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_simple_message),
	    cmocka_unit_test(test_empty_message),
	    cmocka_unit_test(test_dot_unstuffing),
	    cmocka_unit_test(test_smuggling_variants),
	    cmocka_unit_test(test_real_end_after_bare_cr),
	    cmocka_unit_test(test_bare_lf_only_end),
	    cmocka_unit_test(test_dot_cr_then_stuff),
	    cmocka_unit_test(test_long_line),
	    cmocka_unit_test(test_size_limit),
	    cmocka_unit_test(test_bdat_mode),
	    cmocka_unit_test(test_binary_bytes_kept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
