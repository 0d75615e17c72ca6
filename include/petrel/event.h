/* SPDX-License-Identifier: MIT */
/* The event loop: fd readiness, timers, deferred calls, off-loop tasks. */
#ifndef PETREL_EVENT_H
#define PETREL_EVENT_H

#include <petrel/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Each Petrel process runs one event loop (epoll) on its main thread. All
 * functions here are for that thread only, except ptl_task_submit()'s work
 * callback, which runs on a pool thread. Callbacks must never block: put
 * blocking work (fsync, password hashing, SQLite) in a task.
 */

/** Readiness bits for ptl_io. */
#define PTL_IO_READ  0x1u
#define PTL_IO_WRITE 0x2u
#define PTL_IO_ERROR 0x4u /**< error or hang-up (always reported) */

/** A watched file descriptor. */
struct ptl_io;
/** Called with the ready bits. May remove @p io. */
typedef void (*ptl_io_fn)(struct ptl_io *io, unsigned events, void *arg);

/**
 * Watch @p fd (non-blocking, owned by the caller) for @p events.
 * @return the watcher, or NULL (out of memory or epoll failure; errno).
 */
PTL_API struct ptl_io *ptl_io_add(int fd, unsigned events, ptl_io_fn fn,
                                  void *arg) PTL_WUR;
/** Change the watched events. @return PTL_OK or PTL_ERROR (errno). */
PTL_API int ptl_io_modify(struct ptl_io *io, unsigned events) PTL_WUR;
/** Stop watching and free @p io (not the fd). Safe inside its callback. */
PTL_API void ptl_io_remove(struct ptl_io *io);

/** A one-shot timer, re-armed with ptl_timer_start(). */
struct ptl_timer;
typedef void (*ptl_timer_fn)(struct ptl_timer *t, void *arg);

/** Create a stopped timer. @return it or NULL (out of memory). */
PTL_API struct ptl_timer *ptl_timer_new(ptl_timer_fn fn, void *arg) PTL_WUR;
/** (Re)arm @p t to fire once after @p ms milliseconds. */
PTL_API void ptl_timer_start(struct ptl_timer *t, int64_t ms);
/** Disarm @p t (no-op when not armed). */
PTL_API void ptl_timer_stop(struct ptl_timer *t);
/** Whether @p t is armed. */
PTL_API int ptl_timer_active(const struct ptl_timer *t);
/** Stop and free @p t. NULL is a no-op. Safe inside its callback. */
PTL_API void ptl_timer_free(struct ptl_timer *t);

/** Monotonic milliseconds, cached per loop iteration. */
PTL_API int64_t ptl_now_ms(void);
/** Wall-clock seconds since the epoch, cached per loop iteration. */
PTL_API int64_t ptl_wall_time(void);

/** A deferred call. */
typedef void (*ptl_defer_fn)(void *arg);
/**
 * Run @p fn(@p arg) on the loop after the current callback returns, before
 * waiting for new events. @return PTL_OK or PTL_ERROR (out of memory).
 */
PTL_API int ptl_defer(ptl_defer_fn fn, void *arg) PTL_WUR;

/** Blocking work run on a pool thread. Must not touch loop objects. */
typedef void (*ptl_task_work_fn)(void *arg);
/** Completion, run on the loop thread after the work returned. */
typedef void (*ptl_task_done_fn)(void *arg);

/**
 * Run @p work(@p arg) on the core's thread pool, then @p done(@p arg) on
 * the loop. The caller keeps @p arg alive until @p done runs.
 * @return PTL_OK, or PTL_ERROR (out of memory: neither callback runs).
 */
PTL_API int ptl_task_submit(ptl_task_work_fn work, ptl_task_done_fn done,
                            void *arg) PTL_WUR;

/**
 * Whether the process is shutting down (graceful stop or reload): a
 * module should finish what it is doing and accept no new work.
 */
PTL_API int ptl_loop_stopping(void);

#ifdef __cplusplus
}
#endif
#endif
