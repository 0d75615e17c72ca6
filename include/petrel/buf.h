/* SPDX-License-Identifier: MIT */
/* Fixed-capacity byte buffers: {start, pos, last, end}. */
#ifndef PETREL_BUF_H
#define PETREL_BUF_H

#include <petrel/core.h>
#include <petrel/pool.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A byte buffer of fixed capacity. Unread data is [pos, last); free space
 * is [last, end). A buffer never grows: producers check ptl_buf_room().
 */
struct ptl_buf {
	char *start; /**< first byte of the storage */
	char *pos;   /**< first unread byte */
	char *last;  /**< one past the last written byte */
	char *end;   /**< one past the storage */
};

/** Bytes waiting to be read. */
static inline size_t
ptl_buf_len(const struct ptl_buf *b)
{
	return (size_t)(b->last - b->pos);
}

/** Bytes that can still be appended without compacting. */
static inline size_t
ptl_buf_room(const struct ptl_buf *b)
{
	return (size_t)(b->end - b->last);
}

/** Total capacity. */
static inline size_t
ptl_buf_capacity(const struct ptl_buf *b)
{
	return (size_t)(b->end - b->start);
}

/**
 * Allocate a buffer of @p capacity bytes from @p pool.
 * @return PTL_OK or PTL_ERROR (out of memory).
 */
PTL_API int ptl_buf_init(struct ptl_buf *b, struct ptl_pool *pool,
                         size_t capacity) PTL_WUR;

/** Point @p b at caller-owned storage @p mem of @p capacity bytes. */
PTL_API void ptl_buf_wrap(struct ptl_buf *b, void *mem, size_t capacity);

/** Move unread bytes to the start so that all free space is at the end. */
PTL_API void ptl_buf_compact(struct ptl_buf *b);

/**
 * Append @p len bytes, compacting first when needed.
 * @return PTL_OK, or PTL_AGAIN when they do not fit (nothing appended).
 */
PTL_API int ptl_buf_append(struct ptl_buf *b, const void *data,
                           size_t len) PTL_WUR;

/** Mark @p n bytes (n <= ptl_buf_len()) as read. Empties reset to start. */
PTL_API void ptl_buf_consume(struct ptl_buf *b, size_t n);

/**
 * Find a complete line ending in LF among the unread bytes.
 *
 * @param max  the longest line accepted, terminator included.
 * @param len_out  set to the line length including its LF on PTL_OK.
 * @return PTL_OK when a line is found (it starts at b->pos); PTL_AGAIN when
 * there is no LF yet and fewer than @p max bytes are buffered;
 * PTL_DECLINED when @p max bytes are buffered without an LF (the line is
 * too long: the caller decides whether to discard it).
 */
PTL_API int ptl_buf_find_line(const struct ptl_buf *b, size_t max,
                              size_t *len_out) PTL_WUR;

#ifdef __cplusplus
}
#endif
#endif
