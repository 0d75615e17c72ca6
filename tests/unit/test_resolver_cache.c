/* SPDX-License-Identifier: MIT */
/* Resolver cache: TTL policy, expiry, LRU eviction, entry and byte bounds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "resolver_internal.h"

static struct resolver_answer *
answer(const char *name, enum ptl_dns_type type, enum ptl_dns_status status,
       uint32_t ttl)
{
	struct resolver_answer *a =
	    resolver_answer_status(name, type, status, NULL);

	assert_non_null(a);
	a->result.ttl = ttl;
	return a;
}

static void
test_ttl_policy(void **state)
{
	const struct resolver_ttl_policy policy = {
	    .min_ttl = 30, .max_ttl = 86400, .negative_ttl = 3600};
	struct resolver_answer *a;

	a = answer("a.test", PTL_DNS_A, PTL_DNS_OK, 5);
	assert_int_equal(resolver_ttl_effective(&policy, a), 30);
	a->result.ttl = 600;
	assert_int_equal(resolver_ttl_effective(&policy, a), 600);
	a->result.ttl = 604800;
	assert_int_equal(resolver_ttl_effective(&policy, a), 86400);
	resolver_answer_unref(a);

	/* Negative: the SOA's TTL up to negative_ttl; none without SOA. */
	a = answer("a.test", PTL_DNS_A, PTL_DNS_NXDOMAIN, 900);
	assert_int_equal(resolver_ttl_effective(&policy, a), 0);
	a->has_negative_ttl = true;
	assert_int_equal(resolver_ttl_effective(&policy, a), 900);
	a->result.ttl = 86400;
	assert_int_equal(resolver_ttl_effective(&policy, a), 3600);
	a->result.status = PTL_DNS_NODATA;
	assert_int_equal(resolver_ttl_effective(&policy, a), 3600);
	/* min_ttl floors positive answers only. */
	a->result.ttl = 1;
	assert_int_equal(resolver_ttl_effective(&policy, a), 1);
	resolver_answer_unref(a);

	/* Failures are never kept. */
	a = answer("a.test", PTL_DNS_A, PTL_DNS_TEMPFAIL, 600);
	assert_int_equal(resolver_ttl_effective(&policy, a), 0);
	a->result.status = PTL_DNS_PERMFAIL;
	assert_int_equal(resolver_ttl_effective(&policy, a), 0);
	resolver_answer_unref(a);
}

static void
test_get_put_expiry(void **state)
{
	struct resolver_cache *cache = resolver_cache_new(10, 0);
	struct resolver_answer *a, *b, *got;
	uint32_t left = 0;

	assert_non_null(cache);
	a = answer("example.test", PTL_DNS_MX, PTL_DNS_OK, 60);
	assert_int_equal(resolver_cache_put(cache, a, 1000 + 60000), PTL_OK);
	/* The cache holds its own reference. */
	resolver_answer_unref(a);

	got =
	    resolver_cache_get(cache, PTL_DNS_MX, "example.test", 1000, &left);
	assert_ptr_equal(got, a);
	assert_int_equal(left, 60);
	got =
	    resolver_cache_get(cache, PTL_DNS_MX, "example.test", 60500, &left);
	assert_non_null(got);
	assert_int_equal(left, 1); /* rounded up */
	/* Same name, other type: a different key. */
	assert_null(
	    resolver_cache_get(cache, PTL_DNS_A, "example.test", 1000, &left));
	assert_null(
	    resolver_cache_get(cache, PTL_DNS_MX, "other.test", 1000, &left));

	/* A newer answer for the key replaces the old one. */
	b = answer("example.test", PTL_DNS_MX, PTL_DNS_NXDOMAIN, 30);
	assert_int_equal(resolver_cache_put(cache, b, 1000 + 30000), PTL_OK);
	resolver_answer_unref(b);
	assert_int_equal(resolver_cache_count(cache), 1);
	got =
	    resolver_cache_get(cache, PTL_DNS_MX, "example.test", 2000, &left);
	assert_ptr_equal(got, b);

	/* Expired: gone, and removed. */
	assert_null(resolver_cache_get(cache, PTL_DNS_MX, "example.test", 31000,
	                               &left));
	assert_int_equal(resolver_cache_count(cache), 0);
	assert_int_equal(resolver_cache_bytes(cache), 0);
	resolver_cache_free(cache);
}

static void
test_lru_eviction(void **state)
{
	struct resolver_cache *cache = resolver_cache_new(3, 0);
	struct resolver_answer *held;
	char name[32];
	uint32_t left;

	for (int i = 0; i < 3; i++) {
		struct resolver_answer *a;

		snprintf(name, sizeof(name), "n%d.test", i);
		a = answer(name, PTL_DNS_A, PTL_DNS_OK, 60);
		assert_int_equal(resolver_cache_put(cache, a, 60000), PTL_OK);
		resolver_answer_unref(a);
	}
	/* Use n0: n1 becomes the least recently used. */
	assert_non_null(
	    resolver_cache_get(cache, PTL_DNS_A, "n0.test", 0, &left));
	held = resolver_cache_get(cache, PTL_DNS_A, "n1.test", 0, &left);
	assert_non_null(held);
	resolver_answer_ref(held); /* as a delivery in progress does */
	assert_non_null(
	    resolver_cache_get(cache, PTL_DNS_A, "n0.test", 0, &left));
	assert_non_null(
	    resolver_cache_get(cache, PTL_DNS_A, "n2.test", 0, &left));

	struct resolver_answer *a =
	    answer("n3.test", PTL_DNS_A, PTL_DNS_OK, 60);
	assert_int_equal(resolver_cache_put(cache, a, 60000), PTL_OK);
	resolver_answer_unref(a);
	assert_int_equal(resolver_cache_count(cache), 3);
	assert_int_equal(resolver_cache_evictions(cache), 1);
	assert_null(resolver_cache_get(cache, PTL_DNS_A, "n1.test", 0, &left));
	assert_non_null(
	    resolver_cache_get(cache, PTL_DNS_A, "n0.test", 0, &left));
	assert_non_null(
	    resolver_cache_get(cache, PTL_DNS_A, "n3.test", 0, &left));
	/* The evicted answer lives on while referenced (ASan checks). */
	assert_string_equal(held->result.name, "n1.test");
	resolver_answer_unref(held);
	resolver_cache_free(cache);
}

static void
test_byte_bound(void **state)
{
	struct resolver_answer *a;
	struct resolver_cache *cache;
	char name[32];
	size_t one;

	a = answer("n0.test", PTL_DNS_A, PTL_DNS_OK, 60);
	one = a->size;
	resolver_answer_unref(a);

	/* Room for three answers' bytes, many entries. */
	cache = resolver_cache_new(1000, one * 3);
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "n%d.test", i);
		a = answer(name, PTL_DNS_A, PTL_DNS_OK, 60);
		assert_int_equal(resolver_cache_put(cache, a, 60000), PTL_OK);
		resolver_answer_unref(a);
		assert_true(resolver_cache_bytes(cache) <= one * 3);
	}
	assert_int_equal(resolver_cache_count(cache), 3);
	assert_int_equal(resolver_cache_evictions(cache), 7);

	/* An answer bigger than the whole bound is not kept at all. */
	a = answer("a-much-longer-name-than-the-others.example.test", PTL_DNS_A,
	           PTL_DNS_OK, 60);
	a->size = one * 4;
	assert_int_equal(resolver_cache_put(cache, a, 60000), PTL_ERROR);
	assert_int_equal(resolver_cache_count(cache), 3);
	resolver_answer_unref(a);
	resolver_cache_free(cache);

	/* cache_size 0: nothing is kept. */
	cache = resolver_cache_new(0, 0);
	assert_non_null(cache);
	a = answer("n0.test", PTL_DNS_A, PTL_DNS_OK, 60);
	assert_int_equal(resolver_cache_put(cache, a, 60000), PTL_ERROR);
	resolver_answer_unref(a);
	assert_int_equal(resolver_cache_count(cache), 0);
	resolver_cache_free(cache);
}

/* Many names through a small cache: the hash chains stay consistent. */
static void
test_churn(void **state)
{
	struct resolver_cache *cache = resolver_cache_new(64, 0);
	char name[32];
	uint32_t left;

	for (int i = 0; i < 5000; i++) {
		struct resolver_answer *a;

		snprintf(name, sizeof(name), "h%d.test", i % 200);
		if (resolver_cache_get(cache, PTL_DNS_A, name, i, &left))
			continue;
		a = answer(name, PTL_DNS_A, PTL_DNS_OK, 1);
		assert_int_equal(resolver_cache_put(cache, a, i + 50), PTL_OK);
		resolver_answer_unref(a);
		assert_true(resolver_cache_count(cache) <= 64);
	}
	resolver_cache_free(cache);
	resolver_cache_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ttl_policy),
	    cmocka_unit_test(test_get_put_expiry),
	    cmocka_unit_test(test_lru_eviction),
	    cmocka_unit_test(test_byte_bound),
	    cmocka_unit_test(test_churn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
