/* SPDX-License-Identifier: MIT */
/* Unit tests for POP3 login throttling and trusted-network prefixes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "pop3.h"

static void
test_counts_and_window(void **state)
{
	struct pop3_throttle *t = pop3_throttle_new(60000);

	assert_non_null(t);
	assert_int_equal(pop3_throttle_count(t, "192.0.2.1", 1000), 0);
	assert_int_equal(pop3_throttle_add(t, "192.0.2.1", 1000), 1);
	assert_int_equal(pop3_throttle_add(t, "192.0.2.1", 2000), 2);
	assert_int_equal(pop3_throttle_count(t, "192.0.2.1", 3000), 2);
	assert_int_equal(pop3_throttle_count(t, "192.0.2.2", 3000), 0);
	/* Forgotten a window after the last failure. */
	assert_int_equal(pop3_throttle_count(t, "192.0.2.1", 61999), 2);
	assert_int_equal(pop3_throttle_count(t, "192.0.2.1", 62000), 0);
	assert_int_equal(pop3_throttle_add(t, "192.0.2.1", 62001), 1);
	/* Garbage addresses are not counted. */
	assert_int_equal(pop3_throttle_add(t, "not an ip", 1000), 0);
	pop3_throttle_free(t);
}

static void
test_ipv6_prefix(void **state)
{
	struct pop3_throttle *t = pop3_throttle_new(60000);

	assert_non_null(t);
	/* One /64 is one client. */
	assert_int_equal(pop3_throttle_add(t, "2001:db8:1:2::1", 10), 1);
	assert_int_equal(pop3_throttle_add(t, "2001:db8:1:2:ffff::7", 10), 2);
	assert_int_equal(pop3_throttle_count(t, "2001:db8:1:3::1", 10), 0);
	/* A v4-mapped address counts with its IPv4 form. */
	assert_int_equal(pop3_throttle_add(t, "198.51.100.9", 10), 1);
	assert_int_equal(pop3_throttle_count(t, "::ffff:198.51.100.9", 10), 1);
	assert_int_equal(pop3_throttle_count(t, "::ffff:198.51.100.8", 10), 0);
	pop3_throttle_free(t);
}

/* A flood of addresses stays within the table and keeps counting. */
static void
test_bounded(void **state)
{
	struct pop3_throttle *t = pop3_throttle_new(60000);
	char ip[32];
	unsigned i, found = 0;

	assert_non_null(t);
	for (i = 0; i < 10000; i++) {
		(void)snprintf(ip, sizeof(ip), "10.%u.%u.%u", i >> 16,
		               (i >> 8) & 255, i & 255);
		assert_int_equal(pop3_throttle_add(t, ip, 100 + i), 1);
	}
	/* The most recent ones are still there. */
	for (i = 9990; i < 10000; i++) {
		(void)snprintf(ip, sizeof(ip), "10.%u.%u.%u", i >> 16,
		               (i >> 8) & 255, i & 255);
		found += pop3_throttle_count(t, ip, 20000);
	}
	assert_int_equal(found, 10);
	pop3_throttle_free(t);
}

static void
test_delay(void **state)
{
	assert_int_equal(pop3_throttle_delay(1000, 30000, 0), 0);
	assert_int_equal(pop3_throttle_delay(1000, 30000, 1), 1000);
	assert_int_equal(pop3_throttle_delay(1000, 30000, 2), 2000);
	assert_int_equal(pop3_throttle_delay(1000, 30000, 3), 4000);
	assert_int_equal(pop3_throttle_delay(1000, 30000, 5), 16000);
	assert_int_equal(pop3_throttle_delay(1000, 30000, 6), 30000);
	assert_int_equal(pop3_throttle_delay(1000, 30000, 1000000), 30000);
	assert_int_equal(pop3_throttle_delay(0, 30000, 5), 0);
}

static void
test_cidr(void **state)
{
	struct pop3_cidr n;
	struct ptl_error err;

	assert_int_equal(pop3_cidr_parse("192.0.2.0/24", &n, &err), PTL_OK);
	assert_int_equal(n.family, AF_INET);
	assert_int_equal(n.bits, 24);
	assert_true(pop3_cidr_match(&n, "192.0.2.77"));
	assert_true(pop3_cidr_match(&n, "::ffff:192.0.2.77"));
	assert_false(pop3_cidr_match(&n, "192.0.3.1"));
	assert_false(pop3_cidr_match(&n, "2001:db8::1"));
	assert_false(pop3_cidr_match(&n, "garbage"));

	assert_int_equal(pop3_cidr_parse("127.0.0.1", &n, &err), PTL_OK);
	assert_int_equal(n.bits, 32);
	assert_true(pop3_cidr_match(&n, "127.0.0.1"));
	assert_false(pop3_cidr_match(&n, "127.0.0.2"));

	assert_int_equal(pop3_cidr_parse("2001:db8::/33", &n, &err), PTL_OK);
	assert_true(pop3_cidr_match(&n, "2001:db8:7fff::1"));
	assert_false(pop3_cidr_match(&n, "2001:db8:8000::1"));
	assert_false(pop3_cidr_match(&n, "192.0.2.1"));

	assert_int_equal(pop3_cidr_parse("0.0.0.0/0", &n, &err), PTL_OK);
	assert_true(pop3_cidr_match(&n, "203.0.113.5"));
	assert_int_equal(pop3_cidr_parse("::/0", &n, &err), PTL_OK);
	assert_true(pop3_cidr_match(&n, "::1"));

	assert_int_equal(pop3_cidr_parse("192.0.2.1/24", &n, &err), PTL_ERROR);
	assert_int_equal(pop3_cidr_parse("192.0.2.0/33", &n, &err), PTL_ERROR);
	assert_int_equal(pop3_cidr_parse("192.0.2.0/", &n, &err), PTL_ERROR);
	assert_int_equal(pop3_cidr_parse("192.0.2.0/x", &n, &err), PTL_ERROR);
	assert_int_equal(pop3_cidr_parse("host/8", &n, &err), PTL_ERROR);
	assert_int_equal(pop3_cidr_parse("", &n, &err), PTL_ERROR);
	assert_int_equal(pop3_cidr_parse("/8", &n, &err), PTL_ERROR);
	assert_int_equal(pop3_cidr_parse("::1/129", &n, &err), PTL_ERROR);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counts_and_window),
	    cmocka_unit_test(test_ipv6_prefix),
	    cmocka_unit_test(test_bounded),
	    cmocka_unit_test(test_delay),
	    cmocka_unit_test(test_cidr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
