/* SPDX-License-Identifier: MIT */
/* Unit tests for fixed-capacity buffers and line framing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <petrel/buf.h>

static void
test_init_from_pool(void **state)
{
	struct ptl_pool *pool;
	struct ptl_buf b;

	pool = ptl_pool_create(0);
	assert_non_null(pool);
	assert_int_equal(ptl_buf_init(&b, pool, 100), PTL_OK);
	assert_int_equal(ptl_buf_capacity(&b), 100);
	assert_int_equal(ptl_buf_len(&b), 0);
	assert_int_equal(ptl_buf_room(&b), 100);
	assert_ptr_equal(b.pos, b.start);
	assert_ptr_equal(b.last, b.start);

	/* Bigger than a block: still one contiguous buffer. */
	assert_int_equal(ptl_buf_init(&b, pool, 64 * 1024), PTL_OK);
	memset(b.start, 'x', 64 * 1024);
	assert_int_equal(ptl_buf_init(&b, pool, SIZE_MAX), PTL_ERROR);
	ptl_pool_destroy(pool);
}

static void
test_wrap_and_append(void **state)
{
	char mem[8];
	struct ptl_buf b;

	ptl_buf_wrap(&b, mem, sizeof(mem));
	assert_ptr_equal(b.start, mem);
	assert_ptr_equal(b.end, mem + sizeof(mem));
	assert_int_equal(ptl_buf_append(&b, "abc", 3), PTL_OK);
	assert_int_equal(ptl_buf_len(&b), 3);
	assert_int_equal(ptl_buf_room(&b), 5);
	assert_int_equal(ptl_buf_append(&b, "defgh", 5), PTL_OK);
	assert_int_equal(ptl_buf_room(&b), 0);
	assert_memory_equal(b.pos, "abcdefgh", 8);
	/* Full: refused, nothing changes. */
	assert_int_equal(ptl_buf_append(&b, "i", 1), PTL_AGAIN);
	assert_int_equal(ptl_buf_len(&b), 8);
	assert_int_equal(ptl_buf_append(&b, NULL, 0), PTL_OK);
}

static void
test_append_compacts(void **state)
{
	char mem[8];
	struct ptl_buf b;

	ptl_buf_wrap(&b, mem, sizeof(mem));
	assert_int_equal(ptl_buf_append(&b, "abcdef", 6), PTL_OK);
	ptl_buf_consume(&b, 4);
	assert_int_equal(ptl_buf_len(&b), 2);
	assert_int_equal(ptl_buf_room(&b), 2);
	/* 5 bytes only fit after moving "ef" to the start. */
	assert_int_equal(ptl_buf_append(&b, "12345", 5), PTL_OK);
	assert_ptr_equal(b.pos, b.start);
	assert_int_equal(ptl_buf_len(&b), 7);
	assert_memory_equal(b.pos, "ef12345", 7);
	/* 2 more would need 9 bytes: refused and unchanged. */
	assert_int_equal(ptl_buf_append(&b, "xy", 2), PTL_AGAIN);
	assert_int_equal(ptl_buf_len(&b), 7);
	assert_memory_equal(b.pos, "ef12345", 7);
}

static void
test_append_too_big_leaves_buffer(void **state)
{
	char mem[8];
	struct ptl_buf b;

	ptl_buf_wrap(&b, mem, sizeof(mem));
	assert_int_equal(ptl_buf_append(&b, "abcd", 4), PTL_OK);
	ptl_buf_consume(&b, 1);
	assert_int_equal(ptl_buf_append(&b, "123456", 6), PTL_AGAIN);
	/* Not even compacted when the append is refused. */
	assert_ptr_equal(b.pos, b.start + 1);
	assert_memory_equal(b.pos, "bcd", 3);
}

static void
test_consume_and_compact(void **state)
{
	char mem[16];
	struct ptl_buf b;

	ptl_buf_wrap(&b, mem, sizeof(mem));
	assert_int_equal(ptl_buf_append(&b, "hello world", 11), PTL_OK);
	ptl_buf_consume(&b, 6);
	assert_int_equal(ptl_buf_len(&b), 5);
	assert_memory_equal(b.pos, "world", 5);
	ptl_buf_compact(&b);
	assert_ptr_equal(b.pos, b.start);
	assert_int_equal(ptl_buf_len(&b), 5);
	assert_int_equal(ptl_buf_room(&b), 11);
	assert_memory_equal(b.pos, "world", 5);

	/* Emptying resets both pointers to the start. */
	ptl_buf_consume(&b, 5);
	assert_ptr_equal(b.pos, b.start);
	assert_ptr_equal(b.last, b.start);
	assert_int_equal(ptl_buf_room(&b), 16);

	/* Asking for more than is there empties, never overruns. */
	assert_int_equal(ptl_buf_append(&b, "abc", 3), PTL_OK);
	ptl_buf_consume(&b, 1);
	ptl_buf_consume(&b, 100);
	assert_ptr_equal(b.pos, b.start);
	assert_ptr_equal(b.last, b.start);

	ptl_buf_compact(&b);
	assert_int_equal(ptl_buf_len(&b), 0);
}

static void
test_find_line(void **state)
{
	char mem[64];
	struct ptl_buf b;
	size_t len = 0;

	ptl_buf_wrap(&b, mem, sizeof(mem));
	assert_int_equal(ptl_buf_find_line(&b, 10, &len), PTL_AGAIN);

	assert_int_equal(ptl_buf_append(&b, "HELO a", 6), PTL_OK);
	assert_int_equal(ptl_buf_find_line(&b, 10, &len), PTL_AGAIN);
	assert_int_equal(ptl_buf_append(&b, "\r\nQUIT\r\n", 8), PTL_OK);
	assert_int_equal(ptl_buf_find_line(&b, 10, &len), PTL_OK);
	assert_int_equal(len, 8);
	assert_memory_equal(b.pos, "HELO a\r\n", 8);
	ptl_buf_consume(&b, len);
	assert_int_equal(ptl_buf_find_line(&b, 10, &len), PTL_OK);
	assert_int_equal(len, 6);
	ptl_buf_consume(&b, len);
	assert_int_equal(ptl_buf_len(&b), 0);
	assert_int_equal(ptl_buf_find_line(&b, 10, &len), PTL_AGAIN);
}

static void
test_find_line_limits(void **state)
{
	char mem[64];
	struct ptl_buf b;
	size_t len = 0;

	/* A line of exactly max bytes, LF included, is accepted. */
	ptl_buf_wrap(&b, mem, sizeof(mem));
	assert_int_equal(ptl_buf_append(&b, "123456789\n", 10), PTL_OK);
	assert_int_equal(ptl_buf_find_line(&b, 10, &len), PTL_OK);
	assert_int_equal(len, 10);

	/* One byte more is too long: the LF is past max. */
	ptl_buf_wrap(&b, mem, sizeof(mem));
	assert_int_equal(ptl_buf_append(&b, "1234567890\n", 11), PTL_OK);
	assert_int_equal(ptl_buf_find_line(&b, 10, &len), PTL_DECLINED);

	/* max bytes buffered without LF: declined. */
	ptl_buf_wrap(&b, mem, sizeof(mem));
	assert_int_equal(ptl_buf_append(&b, "1234567890", 10), PTL_OK);
	assert_int_equal(ptl_buf_find_line(&b, 10, &len), PTL_DECLINED);

	/* max - 1 bytes without LF: could still become a valid line. */
	ptl_buf_wrap(&b, mem, sizeof(mem));
	assert_int_equal(ptl_buf_append(&b, "123456789", 9), PTL_OK);
	assert_int_equal(ptl_buf_find_line(&b, 10, &len), PTL_AGAIN);

	/* A bare LF is a line of length 1. */
	ptl_buf_wrap(&b, mem, sizeof(mem));
	assert_int_equal(ptl_buf_append(&b, "\nrest", 5), PTL_OK);
	assert_int_equal(ptl_buf_find_line(&b, 10, &len), PTL_OK);
	assert_int_equal(len, 1);

	/* The search looks at unread bytes only. */
	ptl_buf_wrap(&b, mem, sizeof(mem));
	assert_int_equal(ptl_buf_append(&b, "ab\ncd", 5), PTL_OK);
	ptl_buf_consume(&b, 3);
	assert_int_equal(ptl_buf_find_line(&b, 10, &len), PTL_AGAIN);

	/* max 0 accepts nothing. */
	assert_int_equal(ptl_buf_find_line(&b, 0, &len), PTL_DECLINED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_from_pool),
	    cmocka_unit_test(test_wrap_and_append),
	    cmocka_unit_test(test_append_compacts),
	    cmocka_unit_test(test_append_too_big_leaves_buffer),
	    cmocka_unit_test(test_consume_and_compact),
	    cmocka_unit_test(test_find_line),
	    cmocka_unit_test(test_find_line_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
