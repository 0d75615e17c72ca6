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
 */
void ptl_loop_forget(void);

/* Handle @signo on the loop (signalfd); blocks its normal delivery. */
typedef void (*ptl_signal_fn)(int signo, void *arg);
int ptl_loop_signal(int signo, ptl_signal_fn fn, void *arg);

/* Start the thread pool with @nthreads threads (after fork). */
int ptl_task_init(unsigned nthreads, struct ptl_error *err);
/* Wait for queued tasks, run their completions, stop the threads. */
void ptl_task_fini(void);

/* Timer heap internals used by the loop (timer.c). */
int64_t ptl_timer_next_ms(void);  /* ms until the next timer, -1: none */
void ptl_timers_run(void);        /* fire due timers */
void ptl_timers_fini(void);
void ptl_loop_update_time(void);

#endif
