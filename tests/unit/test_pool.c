/* SPDX-License-Identifier: MIT */
/* Unit tests for memory pools. */
#include <setjmp.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <petrel/pool.h>

/* Let a failed huge malloc return NULL under ASan instead of aborting. */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}

#define ALIGN alignof(max_align_t)

static bool
aligned(const void *p)
{
	return ((uintptr_t)p % ALIGN) == 0;
}

static void
test_create_destroy(void **state)
{
	struct ptl_pool *pool;

	pool = ptl_pool_create(0);
	assert_non_null(pool);
	assert_true(ptl_pool_footprint(pool) >= 4096);
	ptl_pool_destroy(pool);
	ptl_pool_destroy(NULL);
	assert_int_equal(ptl_pool_footprint(NULL), 0);

	/* A silly small block size still yields a usable pool. */
	pool = ptl_pool_create(1);
	assert_non_null(pool);
	assert_non_null(ptl_palloc(pool, 100));
	ptl_pool_destroy(pool);
}

struct chunk {
	unsigned char *p;
	size_t size;
};

/* Many allocations of many sizes: aligned, disjoint, intact. */
static void
test_many_allocations(void **state)
{
	enum { N = 5000 };
	struct ptl_pool *pool;
	struct chunk *chunks;
	size_t i, j;

	chunks = calloc(N, sizeof(*chunks));
	assert_non_null(chunks);
	pool = ptl_pool_create(0);
	assert_non_null(pool);
	for (i = 0; i < N; i++) {
		chunks[i].size =
		    (i * 37) % 1500; /* some go to the large list */
		chunks[i].p = ptl_palloc(pool, chunks[i].size);
		assert_non_null(chunks[i].p);
		assert_true(aligned(chunks[i].p));
		memset(chunks[i].p, (int)(i & 0xff), chunks[i].size);
	}
	for (i = 0; i < N; i++) {
		for (j = 0; j < chunks[i].size; j++)
			assert_int_equal(chunks[i].p[j], i & 0xff);
	}
	assert_true(ptl_pool_footprint(pool) > 1000 * 1000);
	ptl_pool_destroy(pool);
	free(chunks);
}

static void
test_zero_size(void **state)
{
	struct ptl_pool *pool;
	void *a, *b;

	pool = ptl_pool_create(0);
	assert_non_null(pool);
	a = ptl_palloc(pool, 0);
	b = ptl_palloc(pool, 0);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	ptl_pool_destroy(pool);
}

static void
test_large_and_footprint(void **state)
{
	struct ptl_pool *pool;
	size_t base, after;
	char *big, *small;

	pool = ptl_pool_create(4096);
	assert_non_null(pool);
	base = ptl_pool_footprint(pool);

	/* Up to a quarter block comes from the block: no new memory. */
	small = ptl_palloc(pool, 1024);
	assert_non_null(small);
	assert_int_equal(ptl_pool_footprint(pool), base);

	big = ptl_palloc(pool, 1025);
	assert_non_null(big);
	assert_true(aligned(big));
	after = ptl_pool_footprint(pool);
	assert_true(after >= base + 1025);
	assert_true(after < base + 1025 + 256);

	big = ptl_palloc(pool, 1 << 20);
	assert_non_null(big);
	memset(big, 1, 1 << 20);
	assert_true(ptl_pool_footprint(pool) >= after + (1 << 20));

	/* Filling the first block chains a second one. */
	for (int i = 0; i < 4; i++)
		assert_non_null(ptl_palloc(pool, 1000));
	assert_true(ptl_pool_footprint(pool) >= after + (1 << 20) + 4096);

	ptl_pool_reset(pool);
	assert_int_equal(ptl_pool_footprint(pool), base);
	ptl_pool_destroy(pool);
}

static void
test_reset_reuses_first_block(void **state)
{
	struct ptl_pool *pool;
	char *first, *again;
	int i;

	pool = ptl_pool_create(0);
	assert_non_null(pool);
	first = ptl_palloc(pool, 16);
	assert_non_null(first);
	for (i = 0; i < 100; i++)
		assert_non_null(ptl_palloc(pool, 500));
	ptl_pool_reset(pool);
	again = ptl_palloc(pool, 16);
	assert_ptr_equal(first, again);
	ptl_pool_destroy(pool);
}

static void
test_overflow(void **state)
{
	struct ptl_pool *pool;

	pool = ptl_pool_create(0);
	assert_non_null(pool);
	assert_null(ptl_palloc(pool, SIZE_MAX));
	assert_null(ptl_palloc(pool, SIZE_MAX - 8));
	assert_null(ptl_pcalloc(pool, SIZE_MAX - 100));
	assert_null(ptl_palloc(pool, SIZE_MAX / 2));
	assert_null(ptl_pstrndup(pool, "abc", SIZE_MAX));
	/* Still usable after refusals. */
	assert_non_null(ptl_palloc(pool, 10));
	assert_null(ptl_pool_create(SIZE_MAX));
	assert_null(ptl_palloc(NULL, 10));
	ptl_pool_destroy(pool);
}

static void
test_pcalloc(void **state)
{
	struct ptl_pool *pool;
	unsigned char *p;
	size_t i;

	pool = ptl_pool_create(0);
	assert_non_null(pool);
	/* Dirty the block, reset, then expect zeroed memory anyway. */
	p = ptl_palloc(pool, 512);
	assert_non_null(p);
	memset(p, 0xaa, 512);
	ptl_pool_reset(pool);
	p = ptl_pcalloc(pool, 512);
	assert_non_null(p);
	for (i = 0; i < 512; i++)
		assert_int_equal(p[i], 0);
	p = ptl_pcalloc(pool, 10000);
	assert_non_null(p);
	for (i = 0; i < 10000; i++)
		assert_int_equal(p[i], 0);
	ptl_pool_destroy(pool);
}

static void
test_strings(void **state)
{
	struct ptl_pool *pool;
	char big[5000];
	char *s;

	pool = ptl_pool_create(0);
	assert_non_null(pool);
	s = ptl_pstrdup(pool, "hello");
	assert_non_null(s);
	assert_string_equal(s, "hello");
	assert_null(ptl_pstrdup(pool, NULL));
	assert_null(ptl_pstrndup(pool, NULL, 3));

	s = ptl_pstrndup(pool, "hello world", 5);
	assert_non_null(s);
	assert_string_equal(s, "hello");
	s = ptl_pstrndup(pool, "", 0);
	assert_non_null(s);
	assert_string_equal(s, "");
	/* Exactly len bytes are copied, NULs included. */
	s = ptl_pstrndup(pool, "a\0b", 3);
	assert_non_null(s);
	assert_memory_equal(s, "a\0b\0", 4);

	s = ptl_psprintf(pool, "%s-%d-%c", "x", 42, 'z');
	assert_non_null(s);
	assert_string_equal(s, "x-42-z");
	s = ptl_psprintf(pool, "%s", "");
	assert_non_null(s);
	assert_string_equal(s, "");

	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	s = ptl_psprintf(pool, "<%s>", big);
	assert_non_null(s);
	assert_int_equal(strlen(s), sizeof(big) + 1);
	assert_int_equal(s[0], '<');
	assert_int_equal(s[sizeof(big)], '>');
	ptl_pool_destroy(pool);
}

static int order[8];
static int norder;

static void
record(void *arg)
{
	order[norder++] = *(int *)arg;
}

static int values[] = {1, 2, 3, 4};

static struct ptl_pool *nested_pool;

/* A cleanup that registers another one while cleanups run. */
static void
record_and_add(void *arg)
{
	record(arg);
	assert_int_equal(ptl_pool_cleanup_add(nested_pool, record, &values[3]),
	                 PTL_OK);
}

static void
test_cleanups(void **state)
{
	struct ptl_pool *pool;

	pool = ptl_pool_create(0);
	assert_non_null(pool);
	norder = 0;
	assert_int_equal(ptl_pool_cleanup_add(pool, record, &values[0]),
	                 PTL_OK);
	assert_int_equal(ptl_pool_cleanup_add(pool, record, &values[1]),
	                 PTL_OK);
	assert_int_equal(ptl_pool_cleanup_add(pool, record, &values[2]),
	                 PTL_OK);
	ptl_pool_reset(pool);
	assert_int_equal(norder, 3);
	assert_int_equal(order[0], 3);
	assert_int_equal(order[1], 2);
	assert_int_equal(order[2], 1);

	/* Reset cleared the list: a second reset runs nothing. */
	ptl_pool_reset(pool);
	assert_int_equal(norder, 3);

	norder = 0;
	assert_int_equal(ptl_pool_cleanup_add(pool, record, &values[0]),
	                 PTL_OK);
	assert_int_equal(ptl_pool_cleanup_add(pool, record, &values[1]),
	                 PTL_OK);
	ptl_pool_destroy(pool);
	assert_int_equal(norder, 2);
	assert_int_equal(order[0], 2);
	assert_int_equal(order[1], 1);

	assert_int_equal(ptl_pool_cleanup_add(NULL, record, NULL), PTL_ERROR);
}

static void
test_cleanup_added_during_cleanup(void **state)
{
	nested_pool = ptl_pool_create(0);
	assert_non_null(nested_pool);
	norder = 0;
	assert_int_equal(
	    ptl_pool_cleanup_add(nested_pool, record_and_add, &values[0]),
	    PTL_OK);
	ptl_pool_destroy(nested_pool);
	assert_int_equal(norder, 2);
	assert_int_equal(order[0], 1);
	assert_int_equal(order[1], 4);
}

static void
free_it(void *arg)
{
	free(arg);
}

/* The documented use: tie a malloc'd object to the pool (ASan checks). */
static void
test_cleanup_frees(void **state)
{
	struct ptl_pool *pool;
	void *obj;

	pool = ptl_pool_create(0);
	assert_non_null(pool);
	obj = malloc(100);
	assert_non_null(obj);
	assert_int_equal(ptl_pool_cleanup_add(pool, free_it, obj), PTL_OK);
	ptl_pool_destroy(pool);
}

static void
test_huge_allocation_fails_cleanly(void **state)
{
	struct ptl_pool *pool;
	size_t before;

	pool = ptl_pool_create(0);
	assert_non_null(pool);
	before = ptl_pool_footprint(pool);
	assert_null(ptl_palloc(pool, (size_t)1 << 62));
	assert_int_equal(ptl_pool_footprint(pool), before);
	ptl_pool_destroy(pool);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_destroy),
	    cmocka_unit_test(test_many_allocations),
	    cmocka_unit_test(test_zero_size),
	    cmocka_unit_test(test_large_and_footprint),
	    cmocka_unit_test(test_reset_reuses_first_block),
	    cmocka_unit_test(test_overflow),
	    cmocka_unit_test(test_pcalloc),
	    cmocka_unit_test(test_strings),
	    cmocka_unit_test(test_cleanups),
	    cmocka_unit_test(test_cleanup_added_during_cleanup),
	    cmocka_unit_test(test_cleanup_frees),
	    cmocka_unit_test(test_huge_allocation_fails_cleanly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
