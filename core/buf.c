/* SPDX-License-Identifier: MIT */
/* Fixed-capacity byte buffers and bounded line framing. */
#include <string.h>

#include <petrel/buf.h>

int
ptl_buf_init(struct ptl_buf *b, struct ptl_pool *pool, size_t capacity)
{
	char *mem;

	mem = ptl_palloc(pool, capacity);
	if (mem == NULL)
		return PTL_ERROR;
	ptl_buf_wrap(b, mem, capacity);
	return PTL_OK;
}

void
ptl_buf_wrap(struct ptl_buf *b, void *mem, size_t capacity)
{
	b->start = mem;
	b->pos = mem;
	b->last = mem;
	b->end = (char *)mem + capacity;
}

void
ptl_buf_compact(struct ptl_buf *b)
{
	size_t len;

	if (b->pos == b->start)
		return;
	len = ptl_buf_len(b);
	if (len > 0)
		memmove(b->start, b->pos, len);
	b->pos = b->start;
	b->last = b->start + len;
}

int
ptl_buf_append(struct ptl_buf *b, const void *data, size_t len)
{
	if (len == 0)
		return PTL_OK;
	if (len > ptl_buf_room(b)) {
		if (len > ptl_buf_capacity(b) - ptl_buf_len(b))
			return PTL_AGAIN;
		ptl_buf_compact(b);
	}
	memcpy(b->last, data, len);
	b->last += len;
	return PTL_OK;
}

void
ptl_buf_consume(struct ptl_buf *b, size_t n)
{
	/* Never move pos past last, whatever the caller asks. */
	if (n > ptl_buf_len(b))
		n = ptl_buf_len(b);
	b->pos += n;
	if (b->pos == b->last) {
		b->pos = b->start;
		b->last = b->start;
	}
}

int
ptl_buf_find_line(const struct ptl_buf *b, size_t max, size_t *len_out)
{
	size_t len, scan;
	const char *lf;

	len = ptl_buf_len(b);
	/*
	 * Looking no further than max bytes keeps the cost of a peer that
	 * trickles a huge line bounded, and an LF beyond max would belong to
	 * a line that is too long anyway.
	 */
	scan = len < max ? len : max;
	lf = scan > 0 ? memchr(b->pos, '\n', scan) : NULL;
	if (lf != NULL) {
		*len_out = (size_t)(lf - b->pos) + 1;
		return PTL_OK;
	}
	return len >= max ? PTL_DECLINED : PTL_AGAIN;
}
