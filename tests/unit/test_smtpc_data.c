/* SPDX-License-Identifier: MIT */
/* Unit tests for the SMTP client's DATA encoding (dot-stuffing, CRLF). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtpc.h"

/* Encode @p in in chunks of @p chunk bytes, then finish. */
static size_t
encode(const char *in, size_t len, size_t chunk, char *out)
{
	struct smtpc_dot d;
	size_t o = 0, i, n;

	smtpc_dot_init(&d);
	for (i = 0; i < len; i += n) {
		n = len - i < chunk ? len - i : chunk;
		o += smtpc_dot_encode(&d, in + i, n, out + o);
	}
	o += smtpc_dot_finish(&d, out + o);
	out[o] = '\0';
	return o;
}

/*
 * SECURITY.md #1: what goes out has no bare CR or LF, and the only
 * "CRLF . CRLF" is the one that ends it.
 */
static void
assert_clean(const char *out, size_t len)
{
	size_t i;
	const char *end;

	for (i = 0; i < len; i++) {
		if (out[i] == '\r')
			assert_true(i + 1 < len && out[i + 1] == '\n');
		if (out[i] == '\n')
			assert_true(i > 0 && out[i - 1] == '\r');
	}
	assert_true(len >= 3);
	assert_memory_equal(out + len - 3, ".\r\n", 3);
	end = memmem(out, len, "\r\n.\r\n", 5);
	if (end != NULL)
		assert_ptr_equal(end, out + len - 5);
	/* A message of nothing is ".\r\n" alone. */
	if (len > 3)
		assert_memory_equal(out + len - 5, "\r\n.\r\n", 5);
}

static void
check(const char *in, const char *want)
{
	char out[512];
	size_t chunk, len;

	for (chunk = 1; chunk <= strlen(in) + 1; chunk++) {
		len = encode(in, strlen(in), chunk, out);
		assert_string_equal(out, want);
		assert_int_equal(len, strlen(want));
		assert_clean(out, len);
	}
}

static void
test_plain(void **state)
{
	check("", ".\r\n");
	check("a\r\n", "a\r\n.\r\n");
	check("a\r\nb", "a\r\nb\r\n.\r\n");
	check("Subject: x\r\n\r\nbody\r\n", "Subject: x\r\n\r\nbody\r\n.\r\n");
}

static void
test_dot_stuffing(void **state)
{
	check(".\r\n", "..\r\n.\r\n");
	check("a\r\n.b\r\n..\r\n", "a\r\n..b\r\n...\r\n.\r\n");
	check("x.y\r\n", "x.y\r\n.\r\n");
}

/* The smuggling variants of SECURITY.md #1 inside a message. */
static void
test_smuggling(void **state)
{
	check("a\n.\nMAIL FROM:<x@y>\n", "a\r\n..\r\nMAIL FROM:<x@y>\r\n.\r\n");
	check("a\n.\r\nb", "a\r\n..\r\nb\r\n.\r\n");
	check("a\r.\nb", "a\r\n..\r\nb\r\n.\r\n");
	check("a\r\n.\nb", "a\r\n..\r\nb\r\n.\r\n");
	check("a\r\n.\rb", "a\r\n..\r\nb\r\n.\r\n");
	check("a\r.\rb", "a\r\n..\r\nb\r\n.\r\n");
	check("a\r", "a\r\n.\r\n");
	check("\r\r\n\n", "\r\n\r\n\r\n.\r\n");
}

static void
test_random(void **state)
{
	static const char alphabet[] = "\r\n.a";
	char in[256], *out = malloc(2 * sizeof(in) + 8);
	size_t round, i, len, chunk;

	assert_non_null(out);
	srand(4711);
	for (round = 0; round < 2000; round++) {
		len = (size_t)rand() % sizeof(in);
		for (i = 0; i < len; i++)
			in[i] = alphabet[rand() % 4];
		chunk = 1 + (size_t)rand() % 17;
		/* The bound the header promises: 2 * len + finish. */
		assert_true(encode(in, len, chunk, out) <= 2 * len + 5);
		assert_clean(out, strlen(out));
	}
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain),
	    cmocka_unit_test(test_dot_stuffing),
	    cmocka_unit_test(test_smuggling),
	    cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
