/* SPDX-License-Identifier: MIT */
/* Unit tests for RFC 5321 paths: syntax, normalization, relay tricks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <petrel/pool.h>

#include "smtp_addr.h"

struct addr_fixture {
	struct ptl_pool *pool;
};

static int
setup(void **state)
{
	static struct addr_fixture fx;

	fx.pool = ptl_pool_create(0);
	if (fx.pool == NULL)
		return -1;
	*state = &fx;
	return 0;
}

static int
teardown(void **state)
{
	struct addr_fixture *fx = *state;

	ptl_pool_destroy(fx->pool);
	return 0;
}

static enum smtp_addr_error
parse(void **state, const char *in, unsigned flags, struct smtp_addr *a,
      size_t *used)
{
	struct addr_fixture *fx = *state;
	size_t dummy;

	return smtp_addr_parse(in, strlen(in), flags, fx->pool, a,
	                       used != NULL ? used : &dummy);
}

static void
expect(void **state, const char *in, unsigned flags, const char *address)
{
	struct smtp_addr a;
	size_t used;

	assert_int_equal(parse(state, in, flags, &a, &used), SMTP_ADDR_OK);
	assert_string_equal(a.address, address);
	assert_int_equal(used, strlen(in));
}

static void
expect_error(void **state, const char *in, unsigned flags,
             enum smtp_addr_error e)
{
	struct smtp_addr a;

	assert_int_equal(parse(state, in, flags, &a, NULL), e);
}

static void
test_plain(void **state)
{
	struct smtp_addr a;

	expect(state, "<alice@example.test>", 0, "alice@example.test");
	expect(state, "<Alice.B+tag@Example.TEST>", 0,
	       "Alice.B+tag@example.test");
	assert_int_equal(parse(state, "<a@b.c>", 0, &a, NULL), SMTP_ADDR_OK);
	assert_string_equal(a.local, "a");
	assert_string_equal(a.domain, "b.c");
	assert_false(a.is_null);
	assert_false(a.routing_chars);
	/* atext allows these; they are stored verbatim, never executed. */
	expect(state, "<`id`@x.test>", 0, "`id`@x.test");
	expect(state, "<${run{x}}@x.test>", 0, "${run{x}}@x.test");
	expect(state, "<a|b&c@x.test>", 0, "a|b&c@x.test");
	expect_error(state, "<a;b@x.test>", 0, SMTP_ADDR_SYNTAX);
}

static void
test_null_and_postmaster(void **state)
{
	struct smtp_addr a;

	assert_int_equal(parse(state, "<>", SMTP_ADDR_NULL_OK, &a, NULL),
	                 SMTP_ADDR_OK);
	assert_true(a.is_null);
	assert_string_equal(a.address, "");
	expect_error(state, "<>", 0, SMTP_ADDR_SYNTAX);
	assert_int_equal(
	    parse(state, "<Postmaster>", SMTP_ADDR_POSTMASTER_OK, &a, NULL),
	    SMTP_ADDR_OK);
	assert_true(a.is_postmaster);
	expect_error(state, "<postmaster>", 0, SMTP_ADDR_SYNTAX);
	expect_error(state, "<bob>", SMTP_ADDR_POSTMASTER_OK, SMTP_ADDR_SYNTAX);
}

static void
test_params_follow(void **state)
{
	struct smtp_addr a;
	size_t used;

	assert_int_equal(parse(state, "<a@b.c> SIZE=10", 0, &a, &used),
	                 SMTP_ADDR_OK);
	assert_int_equal(used, 7);
	/* '>' inside quotes does not end the path. */
	assert_int_equal(parse(state, "<\"a>b\"@c.d> X", 0, &a, &used),
	                 SMTP_ADDR_OK);
	assert_int_equal(used, 11);
	assert_string_equal(a.address, "\"a>b\"@c.d");
}

static void
test_quoted(void **state)
{
	struct smtp_addr a;

	/* A quoted dot-string is the same mailbox unquoted. */
	expect(state, "<\"john\"@example.test>", 0, "john@example.test");
	expect(state, "<\"john smith\"@example.test>", 0,
	       "\"john smith\"@example.test");
	expect(state, "<\"a\\\"b\"@example.test>", 0,
	       "\"a\\\"b\"@example.test");
	expect(state, "<\"a\\\\b\"@x.y>", 0, "\"a\\\\b\"@x.y");
	/* Relay trick: the quoted local part holds a whole address. */
	assert_int_equal(
	    parse(state, "<\"user@remote.test\"@local.test>", 0, &a, NULL),
	    SMTP_ADDR_OK);
	assert_true(a.routing_chars);
	assert_string_equal(a.domain, "local.test");
	expect_error(state, "<\"unterminated@x.y>", 0, SMTP_ADDR_SYNTAX);
	expect_error(state, "<\"a\rb\"@x.y>", 0, SMTP_ADDR_SYNTAX);
	expect_error(state, "<\"a\\\x01\"@x.y>", 0, SMTP_ADDR_SYNTAX);
}

static void
test_relay_tricks(void **state)
{
	struct smtp_addr a;

	assert_int_equal(
	    parse(state, "<user%remote.test@local.test>", 0, &a, NULL),
	    SMTP_ADDR_OK);
	assert_true(a.routing_chars);
	assert_string_equal(a.domain, "local.test");
	assert_int_equal(
	    parse(state, "<remote.test!user@local.test>", 0, &a, NULL),
	    SMTP_ADDR_OK);
	assert_true(a.routing_chars);
	/* Source route: checked, ignored; the mailbox is what counts. */
	assert_int_equal(
	    parse(state, "<@local.test:user@remote.test>", 0, &a, NULL),
	    SMTP_ADDR_OK);
	assert_string_equal(a.address, "user@remote.test");
	assert_string_equal(a.domain, "remote.test");
	expect(state, "<@a.test,@b.test:user@c.test>", 0, "user@c.test");
	expect_error(state, "<@a.test user@c.test>", 0, SMTP_ADDR_SYNTAX);
	expect_error(state, "<@:user@c.test>", 0, SMTP_ADDR_SYNTAX);
	/* Trailing dot: one is dropped, the domain is the same. */
	expect(state, "<user@Remote.Test.>", 0, "user@remote.test");
	expect_error(state, "<user@remote.test..>", 0, SMTP_ADDR_SYNTAX);
	expect_error(state, "<user@.>", 0, SMTP_ADDR_SYNTAX);
}

static void
test_literals(void **state)
{
	struct smtp_addr a;

	assert_int_equal(parse(state, "<user@[127.0.0.1]>", 0, &a, NULL),
	                 SMTP_ADDR_OK);
	assert_true(a.is_literal);
	assert_string_equal(a.domain, "[127.0.0.1]");
	expect(state, "<u@[IPv6:0:0::1]>", 0, "u@[IPv6:::1]");
	expect(state, "<u@[ipv6:2001:DB8::1]>", 0, "u@[IPv6:2001:db8::1]");
	expect_error(state, "<u@[127.0.0.256]>", 0, SMTP_ADDR_SYNTAX);
	expect_error(state, "<u@[127.1]>", 0, SMTP_ADDR_SYNTAX);
	expect_error(state, "<u@[0177.0.0.1]>", 0, SMTP_ADDR_SYNTAX);
	expect_error(state, "<u@[x-tag:abc]>", 0, SMTP_ADDR_SYNTAX);
	expect_error(state, "<u@[]>", 0, SMTP_ADDR_SYNTAX);
	expect_error(state, "<u@[1.2.3.4>", 0, SMTP_ADDR_SYNTAX);
}

static void
test_syntax_errors(void **state)
{
	static const char *const bad[] = {
	    "",           "<",          "a@b.c",    "<a@b.c",    "<;sleep 66;>",
	    "<a@>",       "<@b.c>",     "<a@b..c>", "<.a@b.c>",  "<a.@b.c>",
	    "<a..b@c.d>", "<a@-b.c>",   "<a@b-.c>", "<a b@c.d>", "<a@b c>",
	    "<a@b.c\r>",  "<a\0b@c.d>", "<a@@b.c>", "<a@b.c>>x", "<a(b)@c.d>",
	    "< a@b.c>",   "<a@b_c.d>",  NULL,
	};
	struct smtp_addr a;
	size_t i, used;

	for (i = 0; bad[i] != NULL; i++) {
		enum smtp_addr_error e = parse(state, bad[i], 0, &a, &used);

		/* "<a@b.c>>x" parses the path; the rest is the caller's. */
		if (strcmp(bad[i], "<a@b.c>>x") == 0) {
			assert_int_equal(e, SMTP_ADDR_OK);
			assert_int_equal(used, 7);
			continue;
		}
		if (e == SMTP_ADDR_OK)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	/* NUL inside: length-delimited input. */
	assert_int_equal(smtp_addr_parse("<a\0b@c.d>", 9, 0,
	                                 ((struct addr_fixture *)*state)->pool,
	                                 &a, &used),
	                 SMTP_ADDR_SYNTAX);
}

static void
test_limits(void **state)
{
	char in[600], local[100];
	struct smtp_addr a;

	memset(local, 'a', 64);
	local[64] = '\0';
	snprintf(in, sizeof(in), "<%s@x.test>", local);
	assert_int_equal(parse(state, in, 0, &a, NULL), SMTP_ADDR_OK);
	local[64] = 'a';
	local[65] = '\0';
	snprintf(in, sizeof(in), "<%s@x.test>", local);
	assert_int_equal(parse(state, in, 0, &a, NULL), SMTP_ADDR_TOO_LONG);
	/* A 64-octet label is too long; a 63-octet one is fine. */
	memset(local, 'b', 63);
	local[63] = '\0';
	snprintf(in, sizeof(in), "<a@%s.test>", local);
	assert_int_equal(parse(state, in, 0, &a, NULL), SMTP_ADDR_OK);
	memset(local, 'b', 64);
	local[64] = '\0';
	snprintf(in, sizeof(in), "<a@%s.test>", local);
	assert_int_equal(parse(state, in, 0, &a, NULL), SMTP_ADDR_SYNTAX);
	/* Local part 64, domain 190: a path of 257 octets. */
	memset(local, 'c', 60);
	local[60] = '\0';
	snprintf(
	    in, sizeof(in), "<%.64s@%s.%s.%s.ab.test>",
	    "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
	    local, local, local);
	assert_int_equal(parse(state, in, 0, &a, NULL), SMTP_ADDR_TOO_LONG);
	snprintf(
	    in, sizeof(in), "<%.63s@%s.%s.%s.ab.test>",
	    "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
	    local, local, local);
	assert_int_equal(parse(state, in, 0, &a, NULL), SMTP_ADDR_OK);
	/* A domain over 255 octets (four labels of 63). */
	memset(local, 'e', 63);
	local[63] = '\0';
	snprintf(in, sizeof(in), "<a@%s.%s.%s.%s.test>", local, local, local,
	         local);
	assert_int_equal(parse(state, in, 0, &a, NULL), SMTP_ADDR_TOO_LONG);
}

static void
test_utf8(void **state)
{
	struct smtp_addr a;

	expect_error(state, "<j\xc3\xb6rg@example.test>", 0,
	             SMTP_ADDR_NON_ASCII);
	assert_int_equal(parse(state, "<j\xc3\xb6rg@example.test>",
	                       SMTP_ADDR_UTF8_OK, &a, NULL),
	                 SMTP_ADDR_OK);
	assert_true(a.utf8);
	assert_int_equal(parse(state, "<a@b\xc3\xbc\x63her.test>",
	                       SMTP_ADDR_UTF8_OK, &a, NULL),
	                 SMTP_ADDR_OK);
	assert_true(a.utf8);
	/* Malformed UTF-8 is a syntax error, SMTPUTF8 or not. */
	expect_error(state, "<j\xc3rg@example.test>", SMTP_ADDR_UTF8_OK,
	             SMTP_ADDR_SYNTAX);
	expect_error(state, "<j\xc0\xafrg@example.test>", SMTP_ADDR_UTF8_OK,
	             SMTP_ADDR_SYNTAX);
	expect_error(state, "<j\xed\xa0\x80@example.test>", SMTP_ADDR_UTF8_OK,
	             SMTP_ADDR_SYNTAX);
}

static void
test_domain_normalize(void **state)
{
	char d1[] = "ExAmPle.TEST.";
	char d2[] = "a";

	smtp_domain_normalize(d1);
	assert_string_equal(d1, "example.test");
	smtp_domain_normalize(d2);
	assert_string_equal(d2, "a");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain),
	    cmocka_unit_test(test_null_and_postmaster),
	    cmocka_unit_test(test_params_follow),
	    cmocka_unit_test(test_quoted),
	    cmocka_unit_test(test_relay_tricks),
	    cmocka_unit_test(test_literals),
	    cmocka_unit_test(test_syntax_errors),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_domain_normalize),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
