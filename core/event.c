/* SPDX-License-Identifier: MIT */
/* The process event loop: epoll readiness, deferred calls, signals, time. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>

#include "loop.h"

/*
 * Watchers are level-triggered: a callback that leaves data unread is
 * called again on the next iteration, so no handler has to drain a socket
 * to EAGAIN to stay correct. Listening sockets shared by several workers
 * use EPOLLEXCLUSIVE to avoid waking every worker for one connection.
 */

#define LOOP_MAX_EVENTS       64
#define LOOP_SIGNALS_PER_READ 16

struct ptl_io {
	int fd;
	unsigned events;
	bool exclusive;
	bool dead;
	ptl_io_fn fn;
	void *arg;
	struct ptl_io *prev; /* live list, or dead list (next only) */
	struct ptl_io *next;
};

struct loop_deferred {
	ptl_defer_fn fn;
	void *arg;
	struct loop_deferred *next;
};

struct loop_signal {
	ptl_signal_fn fn;
	void *arg;
};

static int loop_epfd = -1;
static bool loop_exit_requested;
static bool loop_running;
static bool loop_dispatching;
static int loop_stopping;

static struct ptl_io *loop_watchers;      /* every live watcher */
static struct ptl_io *loop_dead_watchers; /* removed during a batch */

static struct loop_deferred *loop_defer_head;
static struct loop_deferred *loop_defer_tail;

static int loop_signal_fd = -1;
static struct ptl_io *loop_signal_io;
static sigset_t loop_signal_mask;
static struct loop_signal loop_signals[_NSIG];

static bool loop_time_valid;
static int64_t loop_now_ms;
static int64_t loop_wall_time;

static int64_t
clock_ms(clockid_t clock)
{
	struct timespec ts;

	/* Only fails for an invalid clock id, which these are not. */
	(void)clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
ptl_loop_update_time(void)
{
	loop_now_ms = clock_ms(CLOCK_MONOTONIC);
	loop_wall_time = clock_ms(CLOCK_REALTIME) / 1000;
	loop_time_valid = true;
}

PTL_API int64_t
ptl_now_ms(void)
{
	if (!loop_time_valid)
		ptl_loop_update_time();
	return loop_now_ms;
}

PTL_API int64_t
ptl_wall_time(void)
{
	if (!loop_time_valid)
		ptl_loop_update_time();
	return loop_wall_time;
}

PTL_API int
ptl_loop_stopping(void)
{
	return loop_stopping;
}

void
ptl_loop_set_stopping(int stopping)
{
	loop_stopping = stopping != 0;
}

int
ptl_loop_init(struct ptl_error *err)
{
	if (loop_epfd >= 0)
		return ptl_error_set(err, "event loop already initialized");
	loop_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop_epfd < 0)
		return ptl_error_set_errno(err, errno, "epoll_create1");
	sigemptyset(&loop_signal_mask);
	loop_exit_requested = false;
	ptl_loop_update_time();
	return PTL_OK;
}

static uint32_t
io_epoll_events(unsigned events)
{
	uint32_t ev = 0;

	if (events & PTL_IO_READ)
		ev |= EPOLLIN;
	if (events & PTL_IO_WRITE)
		ev |= EPOLLOUT;
	return ev;
}

static unsigned
io_ptl_events(uint32_t ev)
{
	unsigned events = 0;

	if (ev & EPOLLIN)
		events |= PTL_IO_READ;
	if (ev & EPOLLOUT)
		events |= PTL_IO_WRITE;
	if (ev & (EPOLLERR | EPOLLHUP))
		events |= PTL_IO_ERROR;
	return events;
}

static void
io_link(struct ptl_io *io)
{
	io->prev = NULL;
	io->next = loop_watchers;
	if (loop_watchers != NULL)
		loop_watchers->prev = io;
	loop_watchers = io;
}

static void
io_unlink(struct ptl_io *io)
{
	if (io->prev != NULL)
		io->prev->next = io->next;
	else
		loop_watchers = io->next;
	if (io->next != NULL)
		io->next->prev = io->prev;
	io->prev = io->next = NULL;
}

static struct ptl_io *
io_register(int fd, uint32_t ev, unsigned events, bool exclusive, ptl_io_fn fn,
            void *arg)
{
	struct epoll_event eev;
	struct ptl_io *io;

	if (loop_epfd < 0 || fd < 0 || fn == NULL) {
		errno = EINVAL;
		return NULL;
	}
	io = calloc(1, sizeof(*io));
	if (io == NULL)
		return NULL;
	io->fd = fd;
	io->events = events;
	io->exclusive = exclusive;
	io->fn = fn;
	io->arg = arg;

	memset(&eev, 0, sizeof(eev));
	eev.events = ev;
	eev.data.ptr = io;
	if (epoll_ctl(loop_epfd, EPOLL_CTL_ADD, fd, &eev) < 0) {
		int saved = errno;

		free(io);
		errno = saved;
		return NULL;
	}
	io_link(io);
	return io;
}

PTL_API struct ptl_io *
ptl_io_add(int fd, unsigned events, ptl_io_fn fn, void *arg)
{
	events &= PTL_IO_READ | PTL_IO_WRITE;
	return io_register(fd, io_epoll_events(events), events, false, fn, arg);
}

struct ptl_io *
ptl_io_add_exclusive(int fd, ptl_io_fn fn, void *arg)
{
	return io_register(fd, EPOLLIN | EPOLLEXCLUSIVE, PTL_IO_READ, true, fn,
	                   arg);
}

PTL_API int
ptl_io_modify(struct ptl_io *io, unsigned events)
{
	struct epoll_event eev;

	/* The kernel refuses EPOLL_CTL_MOD on an EPOLLEXCLUSIVE entry. */
	if (io == NULL || io->dead || io->exclusive || loop_epfd < 0) {
		errno = EINVAL;
		return PTL_ERROR;
	}
	events &= PTL_IO_READ | PTL_IO_WRITE;
	if (events == io->events)
		return PTL_OK;
	memset(&eev, 0, sizeof(eev));
	eev.events = io_epoll_events(events);
	eev.data.ptr = io;
	if (epoll_ctl(loop_epfd, EPOLL_CTL_MOD, io->fd, &eev) < 0)
		return PTL_ERROR;
	io->events = events;
	return PTL_OK;
}

PTL_API void
ptl_io_remove(struct ptl_io *io)
{
	if (io == NULL || io->dead)
		return;
	/*
	 * Deregister now so that the caller may close the fd right away;
	 * EBADF/ENOENT only mean the fd is already gone from the set.
	 */
	if (loop_epfd >= 0)
		(void)epoll_ctl(loop_epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io_unlink(io);
	io->dead = true;
	io->fn = NULL;
	if (!loop_dispatching) {
		free(io);
		return;
	}
	/* Later entries of the current epoll_wait batch may still name it. */
	io->next = loop_dead_watchers;
	loop_dead_watchers = io;
}

static void
io_free_dead(void)
{
	while (loop_dead_watchers != NULL) {
		struct ptl_io *io = loop_dead_watchers;

		loop_dead_watchers = io->next;
		free(io);
	}
}

PTL_API int
ptl_defer(ptl_defer_fn fn, void *arg)
{
	struct loop_deferred *d;

	if (fn == NULL) {
		errno = EINVAL;
		return PTL_ERROR;
	}
	d = malloc(sizeof(*d));
	if (d == NULL)
		return PTL_ERROR;
	d->fn = fn;
	d->arg = arg;
	d->next = NULL;
	if (loop_defer_tail != NULL)
		loop_defer_tail->next = d;
	else
		loop_defer_head = d;
	loop_defer_tail = d;
	return PTL_OK;
}

/*
 * Run the calls queued before this round started. Calls they queue wait
 * for the next round, which the loop enters without sleeping: a deferred
 * call that always defers itself again cannot starve I/O and timers.
 */
static void
defer_run_round(void)
{
	struct loop_deferred *d = loop_defer_head;

	loop_defer_head = loop_defer_tail = NULL;
	while (d != NULL) {
		struct loop_deferred *next = d->next;
		ptl_defer_fn fn = d->fn;
		void *arg = d->arg;

		free(d);
		fn(arg);
		d = next;
	}
}

static void
defer_free_all(void)
{
	while (loop_defer_head != NULL) {
		struct loop_deferred *d = loop_defer_head;

		loop_defer_head = d->next;
		free(d);
	}
	loop_defer_tail = NULL;
}

static void
signal_on_readable(struct ptl_io *io, unsigned events, void *arg)
{
	struct signalfd_siginfo info[LOOP_SIGNALS_PER_READ];
	ssize_t n;

	n = read(loop_signal_fd, info, sizeof(info));
	if (n <= 0)
		return;
	for (size_t i = 0; i < (size_t)n / sizeof(info[0]); i++) {
		int signo = (int)info[i].ssi_signo;

		if (signo <= 0 || signo >= _NSIG)
			continue;
		if (loop_signals[signo].fn != NULL)
			loop_signals[signo].fn(signo, loop_signals[signo].arg);
	}
}

int
ptl_loop_signal(int signo, ptl_signal_fn fn, void *arg)
{
	sigset_t mask, block;
	int fd;

	if (loop_epfd < 0 || signo <= 0 || signo >= _NSIG) {
		errno = EINVAL;
		return PTL_ERROR;
	}
	mask = loop_signal_mask;
	if (sigaddset(&mask, signo) < 0)
		return PTL_ERROR;
	fd = signalfd(loop_signal_fd, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return PTL_ERROR;
	if (loop_signal_io == NULL) {
		loop_signal_io =
		    ptl_io_add(fd, PTL_IO_READ, signal_on_readable, NULL);
		if (loop_signal_io == NULL) {
			int saved = errno;

			close(fd);
			errno = saved;
			return PTL_ERROR;
		}
		loop_signal_fd = fd;
	}
	/*
	 * Blocked signals stay pending until the loop reads them from the
	 * signalfd; unblocked ones would take their default action instead.
	 */
	sigemptyset(&block);
	sigaddset(&block, signo);
	if (sigprocmask(SIG_BLOCK, &block, NULL) < 0)
		return PTL_ERROR;
	loop_signal_mask = mask;
	loop_signals[signo].fn = fn;
	loop_signals[signo].arg = arg;
	return PTL_OK;
}

int
ptl_loop_run(void)
{
	struct epoll_event events[LOOP_MAX_EVENTS];
	int rc = PTL_OK;

	if (loop_epfd < 0 || loop_running) {
		errno = EINVAL;
		return PTL_ERROR;
	}
	loop_running = true;
	while (!loop_exit_requested) {
		int64_t next = ptl_timer_next_ms();
		int timeout, n, wait_errno;

		if (loop_defer_head != NULL)
			timeout = 0;
		else if (next > INT_MAX)
			timeout = INT_MAX;
		else
			timeout = (int)next;

		n = epoll_wait(loop_epfd, events, LOOP_MAX_EVENTS, timeout);
		wait_errno = errno;
		ptl_loop_update_time();
		if (n < 0) {
			if (wait_errno == EINTR)
				continue;
			ptl_log(PTL_LOG_ERROR, "event loop: epoll_wait: %s",
			        strerror(wait_errno));
			rc = PTL_ERROR;
			break;
		}

		loop_dispatching = true;
		for (int i = 0; i < n; i++) {
			struct ptl_io *io = events[i].data.ptr;

			if (io->dead)
				continue;
			io->fn(io, io_ptl_events(events[i].events), io->arg);
		}
		loop_dispatching = false;
		io_free_dead();

		ptl_timers_run();
		defer_run_round();
	}
	loop_exit_requested = false;
	loop_running = false;
	return rc;
}

void
ptl_loop_exit(void)
{
	loop_exit_requested = true;
}

static void
loop_release(void)
{
	loop_signal_io = NULL;
	if (loop_signal_fd >= 0)
		close(loop_signal_fd);
	loop_signal_fd = -1;
	memset(loop_signals, 0, sizeof(loop_signals));
	sigemptyset(&loop_signal_mask);

	/*
	 * Freeing without EPOLL_CTL_DEL: the epoll instance goes away with
	 * its fd, and after fork() it is shared with the parent, whose
	 * registrations must survive.
	 */
	while (loop_watchers != NULL) {
		struct ptl_io *io = loop_watchers;

		loop_watchers = io->next;
		free(io);
	}
	io_free_dead();
	defer_free_all();
	ptl_timers_fini();

	if (loop_epfd >= 0)
		close(loop_epfd);
	loop_epfd = -1;
	loop_exit_requested = false;
	loop_running = false;
	loop_dispatching = false;
}

void
ptl_loop_fini(void)
{
	loop_release();
}

void
ptl_loop_forget(void)
{
	/*
	 * Closing our copy of the epoll fd leaves the parent's set intact.
	 * Signals stay blocked: one arriving before the child registers its
	 * own handlers then waits instead of killing the child.
	 */
	loop_release();
	loop_stopping = 0;
}
