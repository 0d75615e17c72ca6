/* SPDX-License-Identifier: MIT */
/* Unit tests for the policy filters' addresses, networks and SipHash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include <petrel/filter.h>

#include "policy_net.h"

static void
test_ip_parse(void **state)
{
	struct policy_ip ip;
	char text[POLICY_IP_TEXT_MAX];

	assert_int_equal(policy_ip_parse("192.0.2.1", &ip), PTL_OK);
	assert_int_equal(ip.family, AF_INET);
	assert_int_equal(ip.addr[0], 192);
	assert_int_equal(ip.addr[3], 1);
	assert_string_equal(policy_ip_format(&ip, 32, text, sizeof(text)),
	                    "192.0.2.1");

	/* A v4 client on a dual-stack socket is that v4 client. */
	assert_int_equal(policy_ip_parse("::ffff:192.0.2.1", &ip), PTL_OK);
	assert_int_equal(ip.family, AF_INET);
	assert_string_equal(policy_ip_format(&ip, 32, text, sizeof(text)),
	                    "192.0.2.1");

	assert_int_equal(policy_ip_parse("2001:DB8::1", &ip), PTL_OK);
	assert_int_equal(ip.family, AF_INET6);
	assert_string_equal(policy_ip_format(&ip, 128, text, sizeof(text)),
	                    "2001:db8::1");
	assert_int_equal(policy_ip_parse("fe80::1%eth0", &ip), PTL_OK);
	assert_int_equal(ip.family, AF_INET6);

	assert_int_equal(policy_ip_parse("", &ip), PTL_ERROR);
	assert_int_equal(policy_ip_parse(NULL, &ip), PTL_ERROR);
	assert_int_equal(policy_ip_parse("192.0.2", &ip), PTL_ERROR);
	assert_int_equal(policy_ip_parse("192.0.2.1 ", &ip), PTL_ERROR);
	assert_int_equal(policy_ip_parse("host.example", &ip), PTL_ERROR);
}

static void
test_ip_mask(void **state)
{
	struct policy_ip ip;
	char text[POLICY_IP_TEXT_MAX];

	assert_int_equal(policy_ip_parse("192.0.2.77", &ip), PTL_OK);
	policy_ip_mask(&ip, 24, 64);
	assert_string_equal(policy_ip_format(&ip, 24, text, sizeof(text)),
	                    "192.0.2.0/24");
	assert_int_equal(policy_ip_parse("192.0.2.77", &ip), PTL_OK);
	policy_ip_mask(&ip, 25, 64);
	assert_string_equal(policy_ip_format(&ip, 25, text, sizeof(text)),
	                    "192.0.2.0/25");
	assert_int_equal(policy_ip_parse("192.0.2.200", &ip), PTL_OK);
	policy_ip_mask(&ip, 25, 64);
	assert_string_equal(policy_ip_format(&ip, 25, text, sizeof(text)),
	                    "192.0.2.128/25");

	assert_int_equal(policy_ip_parse("2001:db8:1:2:3:4:5:6", &ip), PTL_OK);
	policy_ip_mask(&ip, 24, 64);
	assert_string_equal(policy_ip_format(&ip, 64, text, sizeof(text)),
	                    "2001:db8:1:2::/64");
	assert_int_equal(policy_ip_parse("2001:db8:1:2:3:4:5:6", &ip), PTL_OK);
	policy_ip_mask(&ip, 24, 48);
	assert_string_equal(policy_ip_format(&ip, 48, text, sizeof(text)),
	                    "2001:db8:1::/48");
	/* Out-of-range lengths keep the whole address. */
	assert_int_equal(policy_ip_parse("192.0.2.77", &ip), PTL_OK);
	policy_ip_mask(&ip, 99, 999);
	assert_string_equal(policy_ip_format(&ip, 32, text, sizeof(text)),
	                    "192.0.2.77");
}

static void
test_cidr(void **state)
{
	struct policy_cidr nets[3];
	struct policy_ip ip;
	struct ptl_error err;

	assert_int_equal(policy_cidr_parse("192.0.2.0/24", &nets[0], &err),
	                 PTL_OK);
	assert_int_equal(policy_cidr_parse("2001:db8::/32", &nets[1], &err),
	                 PTL_OK);
	assert_int_equal(policy_cidr_parse("10.1.2.3", &nets[2], &err), PTL_OK);
	assert_int_equal(nets[2].bits, 32);

	assert_int_equal(policy_ip_parse("192.0.2.200", &ip), PTL_OK);
	assert_true(policy_cidr_match(nets, 3, &ip));
	assert_int_equal(policy_ip_parse("::ffff:192.0.2.9", &ip), PTL_OK);
	assert_true(policy_cidr_match(nets, 3, &ip));
	assert_int_equal(policy_ip_parse("192.0.3.1", &ip), PTL_OK);
	assert_false(policy_cidr_match(nets, 3, &ip));
	assert_int_equal(policy_ip_parse("2001:db8:ffff::1", &ip), PTL_OK);
	assert_true(policy_cidr_match(nets, 3, &ip));
	assert_int_equal(policy_ip_parse("2001:db9::1", &ip), PTL_OK);
	assert_false(policy_cidr_match(nets, 3, &ip));
	assert_int_equal(policy_ip_parse("10.1.2.3", &ip), PTL_OK);
	assert_true(policy_cidr_match(nets, 3, &ip));
	assert_int_equal(policy_ip_parse("10.1.2.4", &ip), PTL_OK);
	assert_false(policy_cidr_match(nets, 3, &ip));
	assert_false(policy_cidr_match(nets, 0, &ip));

	assert_int_equal(policy_cidr_parse("0.0.0.0/0", &nets[0], &err),
	                 PTL_OK);
	assert_true(policy_cidr_match(nets, 1, &ip));

	assert_int_equal(policy_cidr_parse("192.0.2.1/24", &nets[0], &err),
	                 PTL_ERROR);
	assert_non_null(strstr(err.text, "host bits"));
	assert_int_equal(policy_cidr_parse("192.0.2.0/33", &nets[0], &err),
	                 PTL_ERROR);
	assert_int_equal(policy_cidr_parse("192.0.2.0/", &nets[0], &err),
	                 PTL_ERROR);
	assert_int_equal(policy_cidr_parse("192.0.2.0/-1", &nets[0], &err),
	                 PTL_ERROR);
	assert_int_equal(policy_cidr_parse("::/129", &nets[0], &err),
	                 PTL_ERROR);
	assert_int_equal(policy_cidr_parse("mx.example/8", &nets[0], &err),
	                 PTL_ERROR);
	assert_int_equal(policy_cidr_parse("", &nets[0], &err), PTL_ERROR);
}

/* The reference vectors of the SipHash paper (appendix A): key 00..0f,
 * messages 00, 00 01, ... */
static void
test_siphash_vectors(void **state)
{
	const uint64_t key[2] = {0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};
	uint8_t msg[64];
	size_t i;

	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)i;
	assert_true(policy_siphash(key, msg, 0) == 0x726fdb47dd0e0e31ull);
	assert_true(policy_siphash(key, msg, 1) == 0x74f839c593dc67fdull);
	assert_true(policy_siphash(key, msg, 7) == 0xab0200f58b01d137ull);
	assert_true(policy_siphash(key, msg, 8) == 0x93f5f5799a932462ull);
	assert_true(policy_siphash(key, msg, 15) == 0xa129ca6149be45e5ull);
	assert_true(policy_siphash(key, msg, 63) == 0x958a324ceb064572ull);
}

static void
test_fingerprint(void **state)
{
	uint64_t key[4] = {1, 2, 3, 4}, other[4] = {1, 2, 3, 5};
	uint64_t a[2], b[2], c[2];

	policy_fingerprint(key, "ip/1.2.3.4", 10, a);
	policy_fingerprint(key, "ip/1.2.3.4", 10, b);
	assert_true(a[0] == b[0] && a[1] == b[1]);
	policy_fingerprint(key, "ip/1.2.3.5", 10, c);
	assert_false(a[0] == c[0] && a[1] == c[1]);
	/* Another key: other fingerprints (a client cannot aim at one). */
	policy_fingerprint(other, "ip/1.2.3.4", 10, c);
	assert_true(a[0] == c[0]);
	assert_false(a[1] == c[1]);
}

static void
test_lower_and_roles(void **state)
{
	const char *roles[] = {"mx", "submission"};
	struct ptl_conf_list list = {2, roles}, empty = {0, NULL};
	struct ptl_error err;
	char out[8];

	assert_int_equal(policy_lower(out, sizeof(out), "AbC@X.Org"), 7);
	assert_string_equal(out, "abc@x.o");
	assert_int_equal(policy_lower(out, 1, "A"), 0);
	assert_string_equal(out, "");

	assert_true(ptl_filter_role_listed(&list, "mx"));
	assert_false(ptl_filter_role_listed(&list, "submissions"));
	assert_false(ptl_filter_role_listed(&list, NULL));
	assert_true(ptl_filter_role_listed(&empty, "submissions"));
	assert_int_equal(ptl_filter_validate_roles(NULL, &list, &err), PTL_OK);
	roles[1] = "smtp";
	assert_int_equal(ptl_filter_validate_roles(NULL, &list, &err),
	                 PTL_ERROR);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ip_parse),
	    cmocka_unit_test(test_ip_mask),
	    cmocka_unit_test(test_cidr),
	    cmocka_unit_test(test_siphash_vectors),
	    cmocka_unit_test(test_fingerprint),
	    cmocka_unit_test(test_lower_and_roles),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
