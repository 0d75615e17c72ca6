/* SPDX-License-Identifier: MIT */
/* Unit tests for POP3 byte-stuffing, CRLF normalisation and TOP cut-off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pop3.h"

/*
 * Encode @p in split into pieces of @p piece octets (0: whole), like
 * chunked reads would, then finish. Returns a malloc'd NUL-terminated
 * result.
 */
static char *
encode(const char *in, size_t len, size_t piece, bool top, uint64_t lines)
{
	struct pop3_dot d;
	char *out = malloc(2 * len + 16);
	size_t o = 0, off = 0, used;

	assert_non_null(out);
	pop3_dot_init(&d, top, lines);
	if (piece == 0)
		piece = len > 0 ? len : 1;
	while (off < len && !d.done) {
		size_t n = len - off < piece ? len - off : piece;

		o += pop3_dot_encode(&d, in + off, n, out + o, &used);
		assert_true(used <= n);
		if (used < n)
			assert_true(d.done);
		off += n;
	}
	o += pop3_dot_finish(&d, out + o);
	out[o] = '\0';
	return out;
}

static void
check_all_splits(const char *in, bool top, uint64_t lines, const char *expect)
{
	size_t len = strlen(in), piece;

	for (piece = 0; piece <= len + 1; piece++) {
		char *out = encode(in, len, piece, top, lines);

		assert_string_equal(out, expect);
		free(out);
	}
}

static void
test_plain_message(void **state)
{
	check_all_splits("Subject: x\r\n\r\nhello\r\n", false, 0,
	                 "Subject: x\r\n\r\nhello\r\n.\r\n");
}

static void
test_empty_message(void **state)
{
	check_all_splits("", false, 0, ".\r\n");
}

static void
test_dot_stuffing(void **state)
{
	check_all_splits(".\r\n..\r\n.x\r\nx.\r\n", false, 0,
	                 "..\r\n...\r\n..x\r\nx.\r\n.\r\n");
	/* A dot at the very start, and after a bare LF. */
	check_all_splits(".a\n.b\n", false, 0, "..a\r\n..b\r\n.\r\n");
	/* The terminator sequence inside a message never ends it. */
	check_all_splits("a\r\n.\r\nb\r\n", false, 0, "a\r\n..\r\nb\r\n.\r\n");
}

static void
test_bare_lf_and_cr(void **state)
{
	check_all_splits("a\nb\n\nc\n", false, 0, "a\r\nb\r\n\r\nc\r\n.\r\n");
	/* A CR not before LF stays as it is. */
	check_all_splits("a\rb\r\n", false, 0, "a\rb\r\n.\r\n");
	/* Mixed endings. */
	check_all_splits("a\r\nb\nc\r\n", false, 0, "a\r\nb\r\nc\r\n.\r\n");
}

static void
test_missing_final_newline(void **state)
{
	check_all_splits("a\r\nlast", false, 0, "a\r\nlast\r\n.\r\n");
	check_all_splits("a\r\nlast\r", false, 0, "a\r\nlast\r\n.\r\n");
	check_all_splits(".", false, 0, "..\r\n.\r\n");
}

static void
test_top(void **state)
{
	const char *msg = "A: 1\r\nB: 2\r\n\r\nl1\r\n.l2\r\nl3\r\n";

	check_all_splits(msg, true, 0, "A: 1\r\nB: 2\r\n\r\n.\r\n");
	check_all_splits(msg, true, 1, "A: 1\r\nB: 2\r\n\r\nl1\r\n.\r\n");
	check_all_splits(msg, true, 2,
	                 "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\n.\r\n");
	check_all_splits(msg, true, 3,
	                 "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n");
	check_all_splits(msg, true, 100,
	                 "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n");
	/* Bare LF header end. */
	check_all_splits("A: 1\n\nbody\nmore\n", true, 1,
	                 "A: 1\r\n\r\nbody\r\n.\r\n");
	/* No body at all. */
	check_all_splits("A: 1\r\nB: 2\r\n", true, 5, "A: 1\r\nB: 2\r\n.\r\n");
	/* A line of spaces does not end the header. */
	check_all_splits("A: 1\r\n \r\nB: 2\r\n\r\nx\r\n", true, 0,
	                 "A: 1\r\n \r\nB: 2\r\n\r\n.\r\n");
}

/* Worst case growth: every octet doubles. Encoding in place, output
 * trailing the input by the chunk size, stays correct. */
static void
test_worst_case_in_place(void **state)
{
	enum { CHUNK = 64 };
	char buf[2 * CHUNK + 8], expect[2 * CHUNK + 8];
	char *in = buf + CHUNK + 8;
	struct pop3_dot d;
	size_t n, used, i;

	for (i = 0; i < CHUNK; i++)
		in[i] = (i % 2 == 0) ? '\n' : '.';
	for (i = 0; i < CHUNK; i += 2) {
		memcpy(expect + 2 * i, "\r\n", 2);
		memcpy(expect + 2 * i + 2, "..", 2);
	}
	pop3_dot_init(&d, false, 0);
	n = pop3_dot_encode(&d, in, CHUNK, buf, &used);
	assert_int_equal(used, CHUNK);
	assert_int_equal(n, 2 * CHUNK);
	assert_memory_equal(buf, expect, n);
}

/* What a client gets back: unstuffed, lines joined with LF. */
static size_t
decode_lf(const char *wire, size_t len, char *out)
{
	size_t i = 0, o = 0;

	/* Drop the terminator ".\r\n". */
	assert_true(len >= 3);
	assert_memory_equal(wire + len - 3, ".\r\n", 3);
	len -= 3;
	while (i < len) {
		const char *crlf = memmem(wire + i, len - i, "\r\n", 2);
		size_t end;

		assert_non_null(crlf);
		end = (size_t)(crlf - wire);
		if (wire[i] == '.') {
			/* Stuffed: a line starting with "." has two. */
			assert_true(end > i + 1 && wire[i + 1] == '.');
			i++;
		}
		memcpy(out + o, wire + i, end - i);
		o += end - i;
		out[o++] = '\n';
		i = end + 2;
	}
	return o;
}

/*
 * Random messages of dots, CR, LF and letters in random pieces: the wire
 * form has only CRLF line ends, no line ".", and decodes to the input
 * with every line end made LF (plus one at the end if missing).
 */
static void
test_random_round_trip(void **state)
{
	enum { MAX = 3000 };
	static const char alphabet[] = ".\r\nab";
	static char in[MAX], wire[2 * MAX + 16], back[2 * MAX + 16];
	static char expect[MAX + 2];
	unsigned seed = 777;
	size_t round;

	for (round = 0; round < 3000; round++) {
		size_t len = (size_t)(rand_r(&seed) % MAX), i, e = 0, o = 0;
		size_t off = 0, used, n;
		struct pop3_dot d;

		for (i = 0; i < len; i++)
			in[i] = alphabet[rand_r(&seed) % 5];
		/* CRLF or bare LF -> LF; a CR not before LF stays. */
		for (i = 0; i < len; i++) {
			if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
				continue;
			expect[e++] = in[i];
		}
		/* A missing last line end is added; a last bare CR gets
		 * its LF. */
		if (e > 0 && expect[e - 1] == '\r')
			expect[e - 1] = '\n';
		else if (e > 0 && expect[e - 1] != '\n')
			expect[e++] = '\n';
		pop3_dot_init(&d, false, 0);
		while (off < len) {
			n = 1 + (size_t)rand_r(&seed) % (len - off);
			o += pop3_dot_encode(&d, in + off, n, wire + o, &used);
			assert_int_equal(used, n);
			off += n;
		}
		o += pop3_dot_finish(&d, wire + o);
		for (i = 0; i < o; i++) {
			if (wire[i] == '\n')
				assert_true(i > 0 && wire[i - 1] == '\r');
		}
		/* Nothing before the terminator looks like one. */
		assert_true(o >= 3);
		assert_null(memmem(wire, o > 3 ? o - 3 : 0, "\r\n.\r\n", 5));
		n = decode_lf(wire, o, back);
		assert_int_equal(n, e);
		assert_memory_equal(back, expect, e);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_message),
	    cmocka_unit_test(test_empty_message),
	    cmocka_unit_test(test_dot_stuffing),
	    cmocka_unit_test(test_bare_lf_and_cr),
	    cmocka_unit_test(test_missing_final_newline),
	    cmocka_unit_test(test_top),
	    cmocka_unit_test(test_worst_case_in_place),
	    cmocka_unit_test(test_random_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
