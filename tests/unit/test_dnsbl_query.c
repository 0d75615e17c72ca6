/* SPDX-License-Identifier: MIT */
/* Unit tests for DNSBL query names, answer codes, texts and the cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "dnsbl_cache.h"
#include "dnsbl_query.h"

#define IP4(a, b, c, d)                                                        \
	((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 |      \
	 (uint32_t)(d))

static void
test_reverse(void **state)
{
	struct policy_ip ip;
	char out[80], name[DNSBL_NAME_MAX + 1];

	assert_int_equal(policy_ip_parse("192.0.2.99", &ip), PTL_OK);
	assert_int_equal(dnsbl_reverse_ip(&ip, out, sizeof(out)), PTL_OK);
	assert_string_equal(out, "99.2.0.192");
	assert_int_equal(dnsbl_reverse_ip(&ip, out, 10), PTL_ERROR);
	/* A mapped client is looked up as IPv4. */
	assert_int_equal(policy_ip_parse("::ffff:127.0.0.2", &ip), PTL_OK);
	assert_int_equal(dnsbl_reverse_ip(&ip, out, sizeof(out)), PTL_OK);
	assert_string_equal(out, "2.0.0.127");

	/* RFC 5782 section 2.4: nibbles, least significant first. */
	assert_int_equal(policy_ip_parse("2001:db8:1:2:3:4:567:89ab", &ip),
	                 PTL_OK);
	assert_int_equal(dnsbl_reverse_ip(&ip, out, sizeof(out)), PTL_OK);
	assert_string_equal(out, "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0."
	                         "2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2");
	assert_int_equal(policy_ip_parse("::1", &ip), PTL_OK);
	assert_int_equal(dnsbl_reverse_ip(&ip, out, sizeof(out)), PTL_OK);
	assert_string_equal(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	                         "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0");
	assert_int_equal(strlen(out), 63);
	assert_int_equal(dnsbl_reverse_ip(&ip, out, 63), PTL_ERROR);

	assert_int_equal(
	    dnsbl_query_name(out, "zen.example.", name, sizeof(name)), PTL_OK);
	assert_string_equal(name + 64, "zen.example");
}

static void
test_query_name(void **state)
{
	char zone[300], name[DNSBL_NAME_MAX + 1];

	assert_int_equal(
	    dnsbl_query_name("2.0.0.127", "bl.test", name, sizeof(name)),
	    PTL_OK);
	assert_string_equal(name, "2.0.0.127.bl.test");
	assert_int_equal(dnsbl_query_name("a", "", name, sizeof(name)),
	                 PTL_ERROR);
	assert_int_equal(dnsbl_query_name("", "bl.test", name, sizeof(name)),
	                 PTL_ERROR);
	assert_int_equal(dnsbl_query_name("a", "bl..test", name, sizeof(name)),
	                 PTL_ERROR);
	/* 253 characters in all at most. */
	memset(zone, 'a', sizeof(zone));
	for (size_t i = 63; i < sizeof(zone); i += 64)
		zone[i] = '.';
	zone[251] = '\0';
	assert_int_equal(dnsbl_query_name("b", zone, name, sizeof(name)),
	                 PTL_OK);
	zone[251] = 'a';
	zone[252] = '\0';
	assert_int_equal(dnsbl_query_name("b", zone, name, sizeof(name)),
	                 PTL_ERROR);
	/* Labels of 63 at most. */
	memset(zone, 'a', 64);
	zone[64] = '\0';
	assert_int_equal(dnsbl_query_name("b", zone, name, sizeof(name)),
	                 PTL_ERROR);
}

static void
test_sender_domain(void **state)
{
	char d[DNSBL_NAME_MAX + 1];

	assert_true(dnsbl_sender_domain("a@Spam.Example.NET", d, sizeof(d)));
	assert_string_equal(d, "spam.example.net");
	assert_true(dnsbl_sender_domain("\"a@b\"@x-y.example.", d, sizeof(d)));
	assert_string_equal(d, "x-y.example");
	assert_false(dnsbl_sender_domain("", d, sizeof(d)));
	assert_false(dnsbl_sender_domain(NULL, d, sizeof(d)));
	assert_false(dnsbl_sender_domain("a@localhost", d, sizeof(d)));
	assert_false(dnsbl_sender_domain("a@[192.0.2.1]", d, sizeof(d)));
	assert_false(dnsbl_sender_domain("a@b..example", d, sizeof(d)));
	assert_false(dnsbl_sender_domain("a@bücher.example", d, sizeof(d)));
	assert_false(dnsbl_sender_domain("a@b_c.example", d, sizeof(d)));
	assert_false(dnsbl_sender_domain("a@x.example", d, 5));
}

static void
test_ranges(void **state)
{
	struct dnsbl_range r[4];
	struct ptl_error err;

	assert_int_equal(dnsbl_range_parse("127.0.0.2", &r[0], &err), PTL_OK);
	assert_int_equal(dnsbl_range_parse("127.0.0.4-127.0.0.11", &r[1], &err),
	                 PTL_OK);
	assert_int_equal(dnsbl_range_parse("127.0.1.0/24", &r[2], &err),
	                 PTL_OK);
	assert_int_equal(dnsbl_range_parse("&0.0.0.64", &r[3], &err), PTL_OK);

	assert_true(dnsbl_code_listed(r, 3, IP4(127, 0, 0, 2)));
	assert_false(dnsbl_code_listed(r, 3, IP4(127, 0, 0, 3)));
	assert_true(dnsbl_code_listed(r, 3, IP4(127, 0, 0, 4)));
	assert_true(dnsbl_code_listed(r, 3, IP4(127, 0, 0, 11)));
	assert_false(dnsbl_code_listed(r, 3, IP4(127, 0, 0, 12)));
	assert_true(dnsbl_code_listed(r, 3, IP4(127, 0, 1, 200)));
	assert_false(dnsbl_code_listed(r, 3, IP4(127, 0, 2, 0)));
	/* Bit masks, within 127/8 only. */
	assert_true(dnsbl_code_listed(&r[3], 1, IP4(127, 0, 0, 66)));
	assert_false(dnsbl_code_listed(&r[3], 1, IP4(127, 0, 0, 2)));
	assert_false(dnsbl_code_listed(&r[3], 1, IP4(10, 0, 0, 64)));

	/* Refusal codes never count, whatever the config says. */
	assert_int_equal(dnsbl_range_parse("127.0.0.0/8", &r[0], &err), PTL_OK);
	assert_true(dnsbl_code_listed(r, 1, IP4(127, 0, 0, 2)));
	assert_false(dnsbl_code_listed(r, 1, IP4(127, 255, 255, 254)));
	assert_false(dnsbl_code_listed(r, 1, IP4(127, 255, 255, 255)));
	assert_false(dnsbl_code_listed(r, 1, IP4(127, 255, 255, 252)));
	assert_true(dnsbl_code_is_error(IP4(127, 255, 255, 0)));
	assert_false(dnsbl_code_is_error(IP4(127, 255, 254, 255)));

	/* The default: 127.0.0.2 and up, not .1, nothing outside 127/8. */
	assert_false(dnsbl_code_listed(NULL, 0, IP4(127, 0, 0, 1)));
	assert_true(dnsbl_code_listed(NULL, 0, IP4(127, 0, 0, 2)));
	assert_true(dnsbl_code_listed(NULL, 0, IP4(127, 0, 1, 5)));
	assert_false(dnsbl_code_listed(NULL, 0, IP4(127, 255, 255, 254)));
	assert_false(dnsbl_code_listed(NULL, 0, IP4(192, 0, 2, 1)));

	assert_int_equal(dnsbl_range_parse("127.0.0.11-127.0.0.4", &r[0], &err),
	                 PTL_ERROR);
	assert_int_equal(dnsbl_range_parse("127.0.0", &r[0], &err), PTL_ERROR);
	assert_int_equal(dnsbl_range_parse("127.0.0.1/24", &r[0], &err),
	                 PTL_ERROR);
	assert_int_equal(dnsbl_range_parse("::1/128", &r[0], &err), PTL_ERROR);
	assert_int_equal(dnsbl_range_parse("&0.0.0.0", &r[0], &err), PTL_ERROR);
	assert_int_equal(dnsbl_range_parse("&1.0.0.0", &r[0], &err), PTL_ERROR);
	assert_int_equal(dnsbl_range_parse("", &r[0], &err), PTL_ERROR);
}

static void
test_reason(void **state)
{
	struct dnsbl_reason_args a = {"192.0.2.1", "bl.test", "", "127.0.0.2",
	                              "see http://bl.test/?\r\nX: y\x01"};
	struct ptl_error err;
	char out[DNSBL_TEXT_MAX + 1];

	assert_int_equal(
	    dnsbl_template_check("%i listed by %z (%r): %t 100%%", &err),
	    PTL_OK);
	assert_int_equal(dnsbl_template_check("%x", &err), PTL_ERROR);
	assert_int_equal(dnsbl_template_check("trailing %", &err), PTL_ERROR);
	assert_int_equal(dnsbl_template_check("tab\there", &err), PTL_ERROR);

	dnsbl_reason_format("%i listed by %z (%r): %t 100%%", &a, out,
	                    sizeof(out));
	/* The TXT record cannot inject lines or control bytes. */
	assert_string_equal(out, "192.0.2.1 listed by bl.test (127.0.0.2): see "
	                         "http://bl.test/???X: y? 100%");
	dnsbl_reason_format("[%d]", &a, out, sizeof(out));
	assert_string_equal(out, "[]");
	dnsbl_reason_format("%i%i%i", &a, out, 12);
	assert_string_equal(out, "192.0.2.119");
}

static void
test_cache(void **state)
{
	const uint64_t key[2] = {7, 8};
	const struct dnsbl_cache_entry *got;
	struct dnsbl_cache_entry e;
	struct dnsbl_cache c;
	int i, found;

	assert_int_equal(dnsbl_cache_init(&c, 0, key), PTL_OK);
	memset(&e, 0, sizeof(e));
	assert_int_equal(policy_ip_parse("192.0.2.1", &e.ip), PTL_OK);
	e.expires = 1000;
	dnsbl_cache_put(&c, &e, 0);
	assert_null(dnsbl_cache_get(&c, &e.ip, 0));
	dnsbl_cache_free(&c);

	assert_int_equal(dnsbl_cache_init(&c, 8, key), PTL_OK);
	e.codes[1] = IP4(127, 0, 0, 2);
	(void)snprintf(e.txt, sizeof(e.txt), "listed");
	e.txt_zone = 1;
	dnsbl_cache_put(&c, &e, 0);
	got = dnsbl_cache_get(&c, &e.ip, 999);
	assert_non_null(got);
	assert_int_equal(got->codes[1], IP4(127, 0, 0, 2));
	assert_string_equal(got->txt, "listed");
	assert_null(dnsbl_cache_get(&c, &e.ip, 1000));
	/* An update replaces the address's entry. */
	e.codes[1] = 0;
	e.expires = 5000;
	dnsbl_cache_put(&c, &e, 0);
	e.expires = 6000;
	dnsbl_cache_put(&c, &e, 0);
	got = dnsbl_cache_get(&c, &e.ip, 5500);
	assert_non_null(got);
	assert_int_equal(got->codes[1], 0);
	/* Bounded: 100 addresses in 8 entries. */
	for (i = 0; i < 100; i++) {
		memset(&e, 0, sizeof(e));
		e.ip.family = AF_INET;
		e.ip.addr[0] = 10;
		e.ip.addr[3] = (uint8_t)i;
		e.expires = 10000 + i;
		dnsbl_cache_put(&c, &e, 0);
	}
	for (i = 0, found = 0; i < 100; i++) {
		e.ip.addr[3] = (uint8_t)i;
		found += dnsbl_cache_get(&c, &e.ip, 0) != NULL;
	}
	assert_true(found > 0 && found <= 8);
	/* Expired entries are never returned, and not stored. */
	e.ip.addr[3] = 200;
	e.expires = 50;
	dnsbl_cache_put(&c, &e, 60);
	assert_null(dnsbl_cache_get(&c, &e.ip, 0));
	dnsbl_cache_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reverse),
	    cmocka_unit_test(test_query_name),
	    cmocka_unit_test(test_sender_domain),
	    cmocka_unit_test(test_ranges),
	    cmocka_unit_test(test_reason),
	    cmocka_unit_test(test_cache),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
