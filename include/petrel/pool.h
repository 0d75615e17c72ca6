/* SPDX-License-Identifier: MIT */
/* Memory pools: many small allocations freed together at a named moment. */
#ifndef PETREL_POOL_H
#define PETREL_POOL_H

#include <petrel/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A memory pool. Every allocation from it is freed when the pool is reset
 * or destroyed. Petrel gives modules pools with named lifetimes: the config
 * generation (ptl_instance_pool()), the connection (ptl_conn_pool()); a
 * module may create its own (e.g. one per SMTP transaction, reset by RSET).
 * A pool is not thread-safe: use it from one thread at a time.
 */
struct ptl_pool;

/** Cleanup callback run when its pool is reset or destroyed. */
typedef void (*ptl_cleanup_fn)(void *arg);

/**
 * Create a pool whose blocks are @p block_size bytes (0: 4 KiB default).
 * @return the pool, or NULL when out of memory. The caller owns it and
 * frees it with ptl_pool_destroy().
 */
PTL_API struct ptl_pool *ptl_pool_create(size_t block_size) PTL_WUR;

/** Run the cleanups and free the pool and all its memory. NULL is a no-op. */
PTL_API void ptl_pool_destroy(struct ptl_pool *pool);

/**
 * Run the cleanups and free every allocation, keeping the pool (and its
 * first block) for reuse.
 */
PTL_API void ptl_pool_reset(struct ptl_pool *pool);

/**
 * Allocate @p size bytes aligned for any type.
 * @return the memory, or NULL when out of memory (the caller must then end
 * the unit of work that needed it: one connection, never the process).
 */
PTL_API void *ptl_palloc(struct ptl_pool *pool, size_t size) PTL_WUR;

/** ptl_palloc() then zero the memory. */
PTL_API void *ptl_pcalloc(struct ptl_pool *pool, size_t size) PTL_WUR;

/** Copy the NUL-terminated @p s into the pool. NULL on OOM or NULL @p s. */
PTL_API char *ptl_pstrdup(struct ptl_pool *pool, const char *s) PTL_WUR;

/** Copy @p len bytes of @p s into the pool and NUL-terminate. */
PTL_API char *ptl_pstrndup(struct ptl_pool *pool, const char *s,
                           size_t len) PTL_WUR;

/** printf into pool memory. NULL on OOM. */
PTL_API char *ptl_psprintf(struct ptl_pool *pool, const char *fmt, ...)
    PTL_PRINTF(2, 3) PTL_WUR;

/**
 * Register @p fn(@p arg) to run when the pool is reset or destroyed
 * (last registered runs first). Use it to tie a file descriptor or a
 * malloc'd object to the pool's lifetime.
 * @return PTL_OK, or PTL_ERROR when out of memory (fn is then NOT
 * registered and the caller still owns arg).
 */
PTL_API int ptl_pool_cleanup_add(struct ptl_pool *pool, ptl_cleanup_fn fn,
                                 void *arg) PTL_WUR;

/** Bytes currently held by the pool from the system (for accounting). */
PTL_API size_t ptl_pool_footprint(const struct ptl_pool *pool);

#ifdef __cplusplus
}
#endif
#endif
