/* SPDX-License-Identifier: MIT */
/* The thread pool: blocking work off the loop, completions back on it. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "loop.h"
#include "process.h"

#define TASK_DEFAULT_THREADS 4
#define TASK_MAX_THREADS     256

struct task {
	ptl_task_work_fn work;
	ptl_task_done_fn done;
	void *arg;
	struct task *next;
};

struct task_queue {
	struct task *head;
	struct task *tail;
};

enum task_state {
	TASK_STOPPED = 0,
	TASK_RUNNING,
	TASK_DRAINING, /* inside ptl_task_fini(): no new submissions */
};

/*
 * The mutex guards both queues and task_quit; everything else is touched
 * by the loop thread only.
 */
static pthread_mutex_t task_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t task_wakeup = PTHREAD_COND_INITIALIZER;
static struct task_queue task_pending;
static struct task_queue task_completed;
static bool task_quit;

static enum task_state task_state;
static pid_t task_owner_pid;
static pthread_t *task_threads;
static unsigned task_nthreads;
static int task_event_fd = -1;
static struct ptl_io *task_event_io;

static void
queue_push(struct task_queue *q, struct task *t)
{
	t->next = NULL;
	if (q->tail != NULL)
		q->tail->next = t;
	else
		q->head = t;
	q->tail = t;
}

static struct task *
queue_take_all(struct task_queue *q)
{
	struct task *head = q->head;

	q->head = q->tail = NULL;
	return head;
}

static void *
task_thread_main(void *unused)
{
	const uint64_t one = 1;

	pthread_mutex_lock(&task_lock);
	for (;;) {
		struct task *t;

		while (task_pending.head == NULL && !task_quit)
			pthread_cond_wait(&task_wakeup, &task_lock);
		t = task_pending.head;
		if (t == NULL)
			break;
		task_pending.head = t->next;
		if (task_pending.head == NULL)
			task_pending.tail = NULL;
		pthread_mutex_unlock(&task_lock);

		t->work(t->arg);

		pthread_mutex_lock(&task_lock);
		queue_push(&task_completed, t);
		/*
		 * EAGAIN means the counter is saturated, so the fd is
		 * readable anyway and the loop will look at the queue.
		 */
		if (write(task_event_fd, &one, sizeof(one)) < 0 &&
		    errno != EAGAIN)
			ptl_log(PTL_LOG_ERROR, "task pool: eventfd write: %s",
			        strerror(errno));
	}
	pthread_mutex_unlock(&task_lock);
	return NULL;
}

static void
task_run_completions(void)
{
	struct task *t;

	pthread_mutex_lock(&task_lock);
	t = queue_take_all(&task_completed);
	pthread_mutex_unlock(&task_lock);
	while (t != NULL) {
		struct task *next = t->next;
		ptl_task_done_fn done = t->done;
		void *arg = t->arg;

		free(t);
		if (done != NULL)
			done(arg);
		t = next;
	}
}

static void
task_on_event(struct ptl_io *io, unsigned events, void *arg)
{
	uint64_t count;

	/* Drain before taking the queue so no completion goes unnoticed. */
	if (read(task_event_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		ptl_log(PTL_LOG_ERROR, "task pool: eventfd read: %s",
		        strerror(errno));
	task_run_completions();
}

/* Stop and join @n threads; the queue is empty or will be drained. */
static void
task_join(unsigned n)
{
	pthread_mutex_lock(&task_lock);
	task_quit = true;
	pthread_cond_broadcast(&task_wakeup);
	pthread_mutex_unlock(&task_lock);
	for (unsigned i = 0; i < n; i++)
		pthread_join(task_threads[i], NULL);
	task_quit = false;
}

static void
task_release(void)
{
	ptl_io_remove(task_event_io);
	task_event_io = NULL;
	if (task_event_fd >= 0)
		close(task_event_fd);
	task_event_fd = -1;
	free(task_threads);
	task_threads = NULL;
	task_nthreads = 0;
	task_state = TASK_STOPPED;
}

int
ptl_task_init(unsigned nthreads, struct ptl_error *err)
{
	sigset_t all, saved;
	int rc;

	if (task_state != TASK_STOPPED && task_owner_pid != ptl_self_pid())
		return ptl_error_set(err, "task pool inherited across fork()");
	if (task_state == TASK_RUNNING)
		return PTL_OK;
	if (task_state == TASK_DRAINING)
		return ptl_error_set(err, "task pool is shutting down");
	if (nthreads == 0)
		nthreads = TASK_DEFAULT_THREADS;
	if (nthreads > TASK_MAX_THREADS)
		return ptl_error_set(err, "task pool: %u threads (maximum %u)",
		                     nthreads, TASK_MAX_THREADS);

	task_event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (task_event_fd < 0)
		return ptl_error_set_errno(err, errno, "task pool: eventfd");
	task_event_io =
	    ptl_io_add(task_event_fd, PTL_IO_READ, task_on_event, NULL);
	if (task_event_io == NULL) {
		rc = ptl_error_set_errno(err, errno,
		                         "task pool: watching its eventfd");
		task_release();
		return rc;
	}
	task_threads = calloc(nthreads, sizeof(*task_threads));
	if (task_threads == NULL) {
		rc = ptl_error_set(err, "task pool: out of memory");
		task_release();
		return rc;
	}

	/*
	 * Threads inherit the creator's mask: blocking everything first means
	 * no signal meant for the loop's signalfd can ever land on a worker
	 * thread, not even before it starts running.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	for (unsigned i = 0; i < nthreads; i++) {
		int e = pthread_create(&task_threads[i], NULL, task_thread_main,
		                       NULL);

		if (e != 0) {
			pthread_sigmask(SIG_SETMASK, &saved, NULL);
			rc = ptl_error_set_errno(err, e,
			                         "task pool: starting thread");
			task_join(i);
			task_release();
			return rc;
		}
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);

	task_nthreads = nthreads;
	task_owner_pid = ptl_self_pid();
	task_state = TASK_RUNNING;
	return PTL_OK;
}

PTL_API int
ptl_task_submit(ptl_task_work_fn work, ptl_task_done_fn done, void *arg)
{
	struct task *t;

	if (work == NULL) {
		errno = EINVAL;
		return PTL_ERROR;
	}
	if (task_state == TASK_STOPPED) {
		struct ptl_error err;

		if (ptl_task_init(0, &err) != PTL_OK) {
			ptl_log(PTL_LOG_ERROR, "%s", err.text);
			return PTL_ERROR;
		}
	}
	if (task_state != TASK_RUNNING || task_owner_pid != ptl_self_pid()) {
		/* After fork() the threads are gone: queueing would hang. */
		errno = EINVAL;
		return PTL_ERROR;
	}
	t = malloc(sizeof(*t));
	if (t == NULL)
		return PTL_ERROR;
	t->work = work;
	t->done = done;
	t->arg = arg;
	pthread_mutex_lock(&task_lock);
	queue_push(&task_pending, t);
	pthread_cond_signal(&task_wakeup);
	pthread_mutex_unlock(&task_lock);
	return PTL_OK;
}

void
ptl_task_fini(void)
{
	if (task_state != TASK_RUNNING || task_owner_pid != ptl_self_pid())
		return;
	task_state = TASK_DRAINING;
	/* Threads leave only once the pending queue is empty. */
	task_join(task_nthreads);
	task_run_completions();
	task_release();
}
