/* SPDX-License-Identifier: MIT */
/* Internals of the queue module shared by its service and runner files. */
#ifndef PETREL_QUEUE_INT_H
#define PETREL_QUEUE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <petrel/petrel.h>
#include <petrel/queue.h>
#include <petrel/resolver.h>

#include "queue_conf.h"
#include "queue_dsn.h"
#include "queue_sched.h"
#include "queue_spool.h"
#include "relay.h"

/* ---- the service in every worker (queue_service.c) ---- */

struct queue_service;

/** Create and register the "queue" service of this process. */
int queue_service_start(struct ptl_instance *inst, struct queue_conf *conf,
                        struct ptl_error *err);
/** exit_worker: drop the service (freed when its last task is done). */
void queue_service_stop(struct ptl_instance *inst);

/* ---- the runner in the helper process ---- */

/** One recipient of a message, as the runner tracks it. */
struct queue_run_rcpt {
	struct queue_rcpt_state st; /* texts stay on disk (NULL here) */
	const char *domain;         /* lower case, in the envelope */
	bool inflight;
	bool warn_due; /* a delay DSN is to be sent */
};

/** A message in the runner's memory (never its body). */
struct queue_msg {
	struct queue_env env; /* owns every string */
	struct queue_run_rcpt *rcpts;
	int64_t received_ms;
	unsigned busy;     /* queued work, running jobs, tasks */
	size_t heap_index; /* SIZE_MAX: not waiting in the heap */
	int64_t due_ms;
	bool deleted; /* petrelctl delete: remove once idle */
	bool flush;   /* try every deferred recipient now */
	struct queue_msg *hash_next;
};

/** A destination: a domain, a smarthost, or the local store. */
struct queue_dest {
	char *key;
	unsigned active;
	unsigned limit;
	struct queue_work *head, *tail;
	struct queue_dest *ready_next;
	bool in_ready;
	struct queue_dest *hash_next;
};

/** Recipients of one message for one destination, waiting or running. */
struct queue_work {
	struct queue_msg *m;
	struct queue_dest *dest;
	const struct queue_route *route; /* NULL: MX (or local) */
	bool local;
	const char *domain;
	size_t n;
	uint32_t *idx;
	struct queue_work *next;
};

struct queue_runner {
	struct ptl_instance *inst;
	struct queue_conf *conf;
	struct queue_policy policy;
	struct queue_spool spool;
	struct relay_engine *engine;
	const struct ptl_service *storage;
	const struct ptl_service *auth;
	const char *hostname;

	struct queue_msg **buckets;
	size_t nbuckets;
	size_t nmsgs;
	struct queue_msg **heap;
	size_t heap_len, heap_cap;
	struct ptl_timer *timer;

	struct queue_dest **dbuckets;
	size_t ndbuckets;
	size_t ndests;
	struct queue_dest *ready_head, *ready_tail;
	unsigned active_total;

	int ino_fd;
	struct ptl_io *ino_io;
	int wd_msg, wd_ctl;
	struct ptl_timer *scan_timer;
	struct ptl_timer *lock_timer;
	int lock_fd; /* flock of QDIR/runner.lock: one runner per spool */
	bool scan_running, scan_again, full;
	/* ids waiting to be read from disk */
	char (*load_ids)[QUEUE_ID_SIZE];
	size_t load_len, load_cap;
	bool load_running;
	bool ctl_running, ctl_again;
	unsigned tasks; /* tasks in flight */
	bool stopping;  /* draining: start nothing new */
	bool closing;   /* exit_worker: the loop is gone, tasks run inline */
};

/* queue_runner.c */
/** The helper's entry (ptl_helper_add). */
int queue_runner_start(struct ptl_instance *inst, void *arg,
                       struct ptl_error *err);
/** exit_worker: stop the runner if this process runs it. */
void queue_runner_stop(struct ptl_instance *inst);
/**
 * Start the runner of this process on @p conf (conf->qdir set); @p inst
 * goes to relay_engine_create() (unit tests pass NULL).
 */
int queue_runner_open(struct ptl_instance *inst, struct queue_conf *conf,
                      struct ptl_error *err);
/** Stop the runner: abort the engine's jobs (recorded), free it all. */
void queue_runner_close(void);
/** The runner of this process, or NULL (for tests). */
struct queue_runner *queue_runner_get(void);
int64_t queue_now_ms(void);
/** A message may have changed: reschedule, report, remove or free it. */
void queue_msg_settle(struct queue_runner *r, struct queue_msg *m);
/** Start jobs while slots are free. */
void queue_dispatch(struct queue_runner *r);
/** Look at @p m again in a minute (after a failed removal or report). */
void queue_msg_later(struct queue_runner *r, struct queue_msg *m);
/** A job of @p d ended: its slot is free again. */
void queue_dest_release(struct queue_runner *r, struct queue_dest *d);
/** Forget a message that is idle (no busy count). */
void queue_msg_forget(struct queue_runner *r, struct queue_msg *m);
/** ptl_task_submit(), run in place when the pool refuses. */
void queue_task(struct queue_runner *r, ptl_task_work_fn work,
                ptl_task_done_fn done, void *arg);
/** The report rule of recipient @p i of @p m. */
struct queue_report_rule queue_rule(const struct queue_msg *m, size_t i);

/* queue_table.c */
bool queue_msg_insert(struct queue_runner *r, struct queue_msg *m);
void queue_msg_unlink(struct queue_runner *r, struct queue_msg *m);
void queue_msg_free(struct queue_msg *m);
/** Take @p m out of the heap (no-op when not in it). */
void queue_heap_remove(struct queue_runner *r, struct queue_msg *m);
/** (Re)insert @p m due at @p due (wall ms) and rearm the timer. */
void queue_heap_push(struct queue_runner *r, struct queue_msg *m, int64_t due);
/** The destination @p key, created with slot @p limit when new. */
struct queue_dest *queue_dest_get(struct queue_runner *r, const char *key,
                                  unsigned limit);
/** Put @p d in the round-robin ring when it has work and a free slot. */
void queue_dest_ready(struct queue_runner *r, struct queue_dest *d);

/* queue_runner.c (scheduling) */
void queue_timer_arm(struct queue_runner *r);
void queue_timer_fire(struct ptl_timer *t, void *arg);
/** @p m is due: queue its due recipients at their destinations. */
void queue_msg_activate(struct queue_runner *r, struct queue_msg *m,
                        int64_t now);

/* queue_scan.c */
/** Full scan of msg/ (coalesced), and cleanup of crash leftovers. */
void queue_scan_start(struct queue_runner *r);
/** Run the scan timer after @p delay ms. */
void queue_scan_soon(struct queue_runner *r, int64_t delay);
void queue_scan_fire(struct ptl_timer *t, void *arg);
/** Load the next batch of ids waiting to be read. */
void queue_load_next(struct queue_runner *r);
/** Watch msg/ and ctl/. @return 0 or -1 (errno). */
int queue_inotify_start(struct queue_runner *r);

/* queue_job.c */
/** Run @p w (taken over): open the file, deliver, record. */
void queue_job_start(struct queue_runner *r, struct queue_work *w);
/** Free a work item that never ran. */
void queue_work_free(struct queue_work *w);

/** A running delivery (queue_job.c, queue_local.c). */
struct queue_job {
	struct queue_runner *r;
	struct queue_work *w;
	int fd;
	int open_errno;
	struct relay_job rj;
	struct relay_rcpt *rr; /* w->n results */
	/* the local route */
	unsigned local_pending;
	struct ptl_pool *pool;
	/* recording */
	struct qrec_buf rec;
	bool remove;
	bool record;
	int rc;
	char why[QUEUE_WHY_MAX];
};

/** Completion of a job's delivery: every rr[i] is filled. */
void queue_job_results(struct queue_job *job);

/* queue_local.c */
/**
 * Deliver @p job's recipients through the storage service (auth lookups
 * first). queue_job_results() follows, never from inside the call.
 */
void queue_local_start(struct queue_job *job);

/* queue_bounce.c */
/** Send the reports @p m owes (busy is taken), then settle it. */
void queue_bounce_start(struct queue_runner *r, struct queue_msg *m);
/** Whether @p m owes a report now. */
bool queue_bounce_due(const struct queue_msg *m);

/* queue_ctl.c */
/** Read and act on ctl/ requests (coalesced). */
void queue_ctl_scan(struct queue_runner *r);
/** Find a message in memory, or NULL. */
struct queue_msg *queue_msg_find(struct queue_runner *r, const char *id);
/** Activate waiting message @p m now (flush). */
void queue_msg_flush(struct queue_runner *r, struct queue_msg *m);
/** Remove message @p id that is not in memory (task). */
void queue_remove_id(struct queue_runner *r, const char *id);

#endif
