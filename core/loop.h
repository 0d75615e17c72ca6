/* SPDX-License-Identifier: MIT */
/* Internal: lifecycle of the process event loop, signals, task pool. */
#ifndef PETREL_CORE_LOOP_H
#define PETREL_CORE_LOOP_H

#include <petrel/petrel.h>

/* Create the epoll loop of this process. */
int ptl_loop_init(struct ptl_error *err);
/* Run until ptl_loop_exit() is called. Returns PTL_OK or PTL_ERROR. */
int ptl_loop_run(void);
/* Make ptl_loop_run() return after the current iteration. */
void ptl_loop_exit(void);
/* Mark the process as draining: ptl_loop_stopping() returns true. */
void ptl_loop_set_stopping(int stopping);
/* Free the loop and every watcher/timer still registered. */
void ptl_loop_fini(void);
/*
 * Called after fork() in the child: the inherited loop must not be used.
 * Frees the parent's loop state without touching the parent's epoll.
 * Signals blocked by ptl_loop_signal() stay blocked (so none is lost or
 * takes its default action before the child registers its own handlers
 * after ptl_loop_init()); a child that execs must restore its own mask.
 */
void ptl_loop_forget(void);

/*
 * ptl_io watchers are level-triggered; remove a watcher before closing
 * its fd. This one watches a listening socket shared by several worker
 * processes for PTL_IO_READ with EPOLLEXCLUSIVE, so one connection wakes
 * one worker, not all. ptl_io_modify() refuses it (EINVAL); remove it
 * instead. Returns NULL with errno on failure.
 */
struct ptl_io *ptl_io_add_exclusive(int fd, ptl_io_fn fn, void *arg);

/* Handle @signo on the loop (signalfd); blocks its normal delivery. */
typedef void (*ptl_signal_fn)(int signo, void *arg);
int ptl_loop_signal(int signo, ptl_signal_fn fn, void *arg);

/*
 * Start the thread pool with @nthreads threads (0: the default, 4; at most
 * 256) after ptl_loop_init(); a no-op when it already runs. ptl_task_submit()
 * starts it lazily with the default size.
 * Fork safety is by contract: threads do not survive fork(), so the master
 * never starts the pool (nor submits a task) before it forks; only
 * workers and helpers do, after ptl_loop_init(). An inherited pool is
 * refused (submit returns PTL_ERROR).
 */
int ptl_task_init(unsigned nthreads, struct ptl_error *err);
/*
 * Stop accepting tasks, wait for queued ones, run their completions here,
 * stop the threads. Call it before ptl_loop_fini() (it removes a watcher).
 */
void ptl_task_fini(void);

/* Timer heap internals used by the loop (timer.c). */
int64_t ptl_timer_next_ms(void); /* ms until the next timer, -1: none */
void ptl_timers_run(void);       /* fire due timers */
void ptl_timers_fini(void);
void ptl_loop_update_time(void);

#endif
