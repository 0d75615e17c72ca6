/* SPDX-License-Identifier: MIT */
/* Memory pools: bump allocation in chained blocks, big chunks on the side. */
#include <stdalign.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <petrel/pool.h>

#define POOL_ALIGN         alignof(max_align_t)
#define POOL_DEFAULT_BLOCK 4096u
/* Below this a block would hold almost nothing besides its header. */
#define POOL_MIN_BLOCK 256u
/* A block size so big that header arithmetic could overflow is a bug. */
#define POOL_MAX_BLOCK (SIZE_MAX / 4)

#define POOL_ALIGN_UP(n) (((n) + (POOL_ALIGN - 1)) & ~(POOL_ALIGN - 1))

struct pool_block {
	struct pool_block *next;
	char *pos; /* first free byte */
	char *end; /* one past the block */
};

struct pool_large {
	struct pool_large *next;
	size_t size; /* bytes malloc'd, header included */
};

struct pool_cleanup {
	struct pool_cleanup *next;
	ptl_cleanup_fn fn;
	void *arg;
};

struct ptl_pool {
	size_t block_size;
	size_t large_min; /* requests above this go to the large list */
	size_t footprint; /* bytes malloc'd, headers included */
	struct pool_block *first;
	struct pool_block *current; /* last block of the chain */
	struct pool_large *large;
	struct pool_cleanup *cleanups; /* most recent first */
};

#define POOL_BLOCK_HDR POOL_ALIGN_UP(sizeof(struct pool_block))
#define POOL_LARGE_HDR POOL_ALIGN_UP(sizeof(struct pool_large))

static struct pool_block *
pool_block_new(struct ptl_pool *pool)
{
	struct pool_block *blk;

	blk = malloc(pool->block_size);
	if (blk == NULL)
		return NULL;
	blk->next = NULL;
	blk->pos = (char *)blk + POOL_BLOCK_HDR;
	blk->end = (char *)blk + pool->block_size;
	pool->footprint += pool->block_size;
	return blk;
}

struct ptl_pool *
ptl_pool_create(size_t block_size)
{
	struct ptl_pool *pool;

	if (block_size == 0)
		block_size = POOL_DEFAULT_BLOCK;
	if (block_size < POOL_MIN_BLOCK)
		block_size = POOL_MIN_BLOCK;
	if (block_size > POOL_MAX_BLOCK)
		return NULL;
	/* Whole alignment units keep every bump pointer aligned. */
	block_size = POOL_ALIGN_UP(block_size);

	pool = malloc(sizeof(*pool));
	if (pool == NULL)
		return NULL;
	pool->block_size = block_size;
	pool->large_min = block_size / 4;
	pool->footprint = sizeof(*pool);
	pool->large = NULL;
	pool->cleanups = NULL;
	pool->first = pool_block_new(pool);
	if (pool->first == NULL) {
		free(pool);
		return NULL;
	}
	pool->current = pool->first;
	return pool;
}

static void
pool_run_cleanups(struct ptl_pool *pool)
{
	struct pool_cleanup *c;

	/*
	 * Unlink before calling: a cleanup may itself register another one,
	 * which then runs in this same loop instead of being lost.
	 */
	while ((c = pool->cleanups) != NULL) {
		pool->cleanups = c->next;
		c->fn(c->arg);
	}
}

static void
pool_free_large(struct ptl_pool *pool)
{
	struct pool_large *l, *next;

	for (l = pool->large; l != NULL; l = next) {
		next = l->next;
		pool->footprint -= l->size;
		free(l);
	}
	pool->large = NULL;
}

void
ptl_pool_reset(struct ptl_pool *pool)
{
	struct pool_block *blk, *next;

	if (pool == NULL)
		return;
	/* Cleanups first: their records live in the memory freed below. */
	pool_run_cleanups(pool);
	pool_free_large(pool);
	for (blk = pool->first->next; blk != NULL; blk = next) {
		next = blk->next;
		pool->footprint -= pool->block_size;
		free(blk);
	}
	pool->first->next = NULL;
	pool->first->pos = (char *)pool->first + POOL_BLOCK_HDR;
	pool->current = pool->first;
}

void
ptl_pool_destroy(struct ptl_pool *pool)
{
	if (pool == NULL)
		return;
	ptl_pool_reset(pool);
	free(pool->first);
	free(pool);
}

static void *
pool_alloc_large(struct ptl_pool *pool, size_t size)
{
	struct pool_large *l;
	size_t total;

	/* No object may be larger than PTRDIFF_MAX: pointer math breaks. */
	if (size > PTRDIFF_MAX - POOL_LARGE_HDR)
		return NULL;
	total = POOL_LARGE_HDR + size;
	l = malloc(total);
	if (l == NULL)
		return NULL;
	l->size = total;
	l->next = pool->large;
	pool->large = l;
	pool->footprint += total;
	return (char *)l + POOL_LARGE_HDR;
}

void *
ptl_palloc(struct ptl_pool *pool, size_t size)
{
	struct pool_block *blk;
	size_t need;
	void *p;

	if (pool == NULL)
		return NULL;
	if (size > pool->large_min)
		return pool_alloc_large(pool, size);
	/* size <= block_size / 4, so rounding up cannot overflow. */
	need = POOL_ALIGN_UP(size == 0 ? 1 : size);
	blk = pool->current;
	if ((size_t)(blk->end - blk->pos) < need) {
		/*
		 * The tail of the old block is abandoned: it is less than a
		 * quarter block, and never searching old blocks keeps
		 * allocation O(1).
		 */
		blk = pool_block_new(pool);
		if (blk == NULL)
			return NULL;
		pool->current->next = blk;
		pool->current = blk;
	}
	p = blk->pos;
	blk->pos += need;
	return p;
}

void *
ptl_pcalloc(struct ptl_pool *pool, size_t size)
{
	void *p;

	p = ptl_palloc(pool, size);
	if (p != NULL)
		memset(p, 0, size);
	return p;
}

char *
ptl_pstrndup(struct ptl_pool *pool, const char *s, size_t len)
{
	char *p;

	if (s == NULL || len == SIZE_MAX)
		return NULL;
	p = ptl_palloc(pool, len + 1);
	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
ptl_pstrdup(struct ptl_pool *pool, const char *s)
{
	if (s == NULL)
		return NULL;
	return ptl_pstrndup(pool, s, strlen(s));
}

char *
ptl_psprintf(struct ptl_pool *pool, const char *fmt, ...)
{
	va_list ap, ap2;
	int n;
	char *p;

	va_start(ap, fmt);
	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		va_end(ap2);
		return NULL;
	}
	p = ptl_palloc(pool, (size_t)n + 1);
	if (p != NULL && vsnprintf(p, (size_t)n + 1, fmt, ap2) != n)
		p = NULL;
	va_end(ap2);
	return p;
}

int
ptl_pool_cleanup_add(struct ptl_pool *pool, ptl_cleanup_fn fn, void *arg)
{
	struct pool_cleanup *c;

	if (fn == NULL)
		return PTL_ERROR;
	c = ptl_palloc(pool, sizeof(*c));
	if (c == NULL)
		return PTL_ERROR;
	c->fn = fn;
	c->arg = arg;
	c->next = pool->cleanups;
	pool->cleanups = c;
	return PTL_OK;
}

size_t
ptl_pool_footprint(const struct ptl_pool *pool)
{
	return pool == NULL ? 0 : pool->footprint;
}
