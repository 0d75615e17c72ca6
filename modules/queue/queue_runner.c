/* SPDX-License-Identifier: MIT */
/* The queue runner: reads the spool, schedules deliveries, retries. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "queue_int.h"
#include "relay_idn.h"

/*
 * The runner is the only process that changes the spool after a message
 * was enqueued: it appends to state logs, writes reports and removes
 * finished messages. Workers only add files to msg/ (it learns of them
 * through inotify), petrelctl only reads and drops requests into ctl/.
 *
 * Everything here runs on the helper's loop; every file operation is a
 * task on the core's thread pool.
 */

/* The spool lock (in the queue directory) and how often a waiting runner
 * tries it. */
#define QUEUE_LOCK_NAME     "runner.lock"
#define QUEUE_LOCK_RETRY_MS 500
/* A removal or report that failed is tried again after this. */
#define QUEUE_RETRY_LATER_MS ((int64_t)60 * 1000)

static struct queue_runner *queue_the_runner;

struct queue_runner *
queue_runner_get(void)
{
	return queue_the_runner;
}

int64_t
queue_now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- tasks ---- */

struct queue_task_ctx {
	struct queue_runner *r;
	ptl_task_work_fn work;
	ptl_task_done_fn done;
	void *arg;
};

static void
queue_task_work(void *arg)
{
	struct queue_task_ctx *t = arg;

	t->work(t->arg);
}

static void
queue_task_done(void *arg)
{
	struct queue_task_ctx *t = arg;

	t->r->tasks--;
	t->done(t->arg);
	free(t);
}

void
queue_task(struct queue_runner *r, ptl_task_work_fn work, ptl_task_done_fn done,
           void *arg)
{
	struct queue_task_ctx *t = r->closing ? NULL : malloc(sizeof(*t));

	if (t != NULL) {
		t->r = r;
		t->work = work;
		t->done = done;
		t->arg = arg;
		r->tasks++;
		if (ptl_task_submit(queue_task_work, queue_task_done, t) ==
		    PTL_OK)
			return;
		r->tasks--;
		free(t);
	}
	/*
	 * Out of memory, or the pool is draining at exit: doing the work
	 * here blocks the loop once, which beats losing a state update.
	 */
	if (!r->closing)
		ptl_log(PTL_LOG_WARN, "queue: thread pool refused a task; "
		                      "running it on the loop");
	work(arg);
	done(arg);
}

/* ---- turning due recipients into work ---- */

struct queue_rcpt_ref {
	const char *domain;
	uint32_t idx;
};

static int
queue_ref_cmp(const void *a, const void *b)
{
	const struct queue_rcpt_ref *x = a, *y = b;
	int c = strcmp(x->domain, y->domain);

	if (c != 0)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static bool
queue_is_local(struct queue_runner *r, const char *domain)
{
	const struct ptl_auth_methods *am;

	if (domain[0] == '\0' || queue_conf_is_local_domain(r->conf, domain))
		return true;
	if (r->auth == NULL)
		return false;
	am = r->auth->methods;
	return am->is_local_domain(r->auth->instance, domain) != 0;
}

static bool
queue_work_add(struct queue_runner *r, struct queue_msg *m,
               const struct queue_rcpt_ref *refs, size_t n)
{
	const struct queue_route *route = NULL;
	struct queue_work *w;
	struct queue_dest *d;
	char key[320], ascii[256];
	const char *why;
	unsigned limit;
	bool local;
	size_t i;

	/*
	 * Config keys (routes, local_domains) are ASCII: a domain in
	 * U-labels is matched by its A-labels, and both forms share one
	 * destination. A name that is no IDN keeps its form; the engine
	 * fails it with a clear reason.
	 */
	if (!relay_idn_to_ascii(refs[0].domain, ascii, sizeof(ascii), &why))
		(void)snprintf(ascii, sizeof(ascii), "%s", refs[0].domain);
	local =
	    queue_is_local(r, refs[0].domain) ||
	    (strcmp(ascii, refs[0].domain) != 0 && queue_is_local(r, ascii));
	if (local) {
		(void)snprintf(key, sizeof(key), "local:");
		limit = (unsigned)r->conf->local_concurrency;
	} else {
		route = queue_route_find(r->conf, ascii);
		if (route != NULL && route->relay.host != NULL)
			(void)snprintf(key, sizeof(key), "[%s]:%u",
			               route->relay.host,
			               (unsigned)route->relay.port);
		else
			(void)snprintf(key, sizeof(key), "%s", ascii);
		limit = (unsigned)r->conf->max_per_destination;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return false;
	w->idx = calloc(n, sizeof(*w->idx));
	d = queue_dest_get(r, key, limit);
	if (w->idx == NULL || d == NULL) {
		free(w->idx);
		free(w);
		return false;
	}
	w->m = m;
	w->dest = d;
	w->route = route;
	w->local = local;
	w->domain = refs[0].domain;
	w->n = n;
	for (i = 0; i < n; i++) {
		w->idx[i] = refs[i].idx;
		m->rcpts[refs[i].idx].inflight = true;
	}
	m->busy++;
	if (d->tail != NULL)
		d->tail->next = w;
	else
		d->head = w;
	d->tail = w;
	queue_dest_ready(r, d);
	return true;
}

/* A message is due: its due recipients go to their destinations. */
void
queue_msg_activate(struct queue_runner *r, struct queue_msg *m, int64_t now)
{
	struct queue_rcpt_ref *refs;
	size_t n = 0, i, start, max = (size_t)r->conf->max_rcpts_per_delivery;

	if (m->deleted || m->busy > 0) {
		queue_msg_settle(r, m);
		return;
	}
	refs = calloc(m->env.nrcpts, sizeof(*refs));
	if (refs == NULL) {
		queue_heap_push(r, m, now + QUEUE_RETRY_LATER_MS);
		return;
	}
	for (i = 0; i < m->env.nrcpts; i++) {
		struct queue_run_rcpt *rc = &m->rcpts[i];

		if (rc->inflight || (rc->st.status != QUEUE_RCPT_PENDING &&
		                     rc->st.status != QUEUE_RCPT_DEFERRED))
			continue;
		if (!m->flush && !queue_sched_due(&rc->st, now))
			continue;
		refs[n].domain = rc->domain;
		refs[n].idx = (uint32_t)i;
		n++;
	}
	m->flush = false;
	qsort(refs, n, sizeof(*refs), queue_ref_cmp);
	for (start = 0; start < n;) {
		size_t end = start + 1;

		while (end < n && end - start < max &&
		       strcmp(refs[end].domain, refs[start].domain) == 0)
			end++;
		if (!queue_work_add(r, m, refs + start, end - start)) {
			ptl_log(PTL_LOG_ERROR,
			        "queue: %s: out of memory scheduling "
			        "recipients; trying later",
			        m->env.id);
			break;
		}
		start = end;
	}
	free(refs);
	if (m->busy == 0)
		queue_msg_settle(r, m);
}

void
queue_timer_fire(struct ptl_timer *t, void *arg)
{
	struct queue_runner *r = arg;
	int64_t now = queue_now_ms();
	struct queue_msg *m;

	while (r->heap_len > 0 && r->heap[0]->due_ms <= now) {
		m = r->heap[0];
		queue_heap_remove(r, m);
		queue_msg_activate(r, m, now);
	}
	queue_timer_arm(r);
	queue_dispatch(r);
}

void
queue_timer_arm(struct queue_runner *r)
{
	int64_t delay;

	if (r->heap_len == 0) {
		ptl_timer_stop(r->timer);
		return;
	}
	delay = r->heap[0]->due_ms - queue_now_ms();
	if (delay < 0)
		delay = 0;
	/* A wall clock that jumps is noticed within a minute. */
	if (delay > 60000)
		delay = 60000;
	ptl_timer_start(r->timer, delay);
}

/* ---- settling ---- */

struct queue_report_rule
queue_rule(const struct queue_msg *m, size_t i)
{
	struct queue_report_rule rule;

	rule.notify = m->env.rcpts[i].notify;
	rule.null_sender = m->env.from[0] == '\0' || m->env.is_dsn;
	return rule;
}

struct queue_remove {
	struct queue_runner *r;
	struct queue_msg *m;
	int rc;
	char why[QUEUE_WHY_MAX];
};

static void
queue_remove_work(void *arg)
{
	struct queue_remove *rm = arg;

	rm->rc = queue_msg_remove(&rm->r->spool, rm->m->env.id, rm->why,
	                          sizeof(rm->why));
}

static void
queue_remove_done(void *arg)
{
	struct queue_remove *rm = arg;
	struct queue_runner *r = rm->r;
	struct queue_msg *m = rm->m;

	m->busy--;
	if (rm->rc != 0) {
		ptl_log(PTL_LOG_ERROR, "queue: %s: cannot remove: %s",
		        m->env.id, rm->why);
		free(rm);
		queue_heap_push(r, m, queue_now_ms() + QUEUE_RETRY_LATER_MS);
		return;
	}
	ptl_log(PTL_LOG_INFO, "queue: %s: %s", m->env.id,
	        m->deleted ? "deleted" : "removed (done)");
	free(rm);
	queue_msg_forget(r, m);
}

static void
queue_remove_start(struct queue_runner *r, struct queue_msg *m)
{
	struct queue_remove *rm = calloc(1, sizeof(*rm));

	if (rm == NULL) {
		queue_heap_push(r, m, queue_now_ms() + QUEUE_RETRY_LATER_MS);
		return;
	}
	queue_heap_remove(r, m);
	rm->r = r;
	rm->m = m;
	m->busy++;
	queue_task(r, queue_remove_work, queue_remove_done, rm);
}

void
queue_msg_settle(struct queue_runner *r, struct queue_msg *m)
{
	int64_t due = INT64_MAX, now = queue_now_ms();
	bool open = false;
	size_t i;

	if (m->busy > 0)
		return;
	if (m->deleted) {
		queue_remove_start(r, m);
		return;
	}
	if (queue_bounce_due(m)) {
		queue_bounce_start(r, m);
		return;
	}
	for (i = 0; i < m->env.nrcpts; i++) {
		const struct queue_rcpt_state *st = &m->rcpts[i].st;

		if (st->status == QUEUE_RCPT_PENDING) {
			due = now;
			open = true;
		} else if (st->status == QUEUE_RCPT_DEFERRED) {
			if (st->next_try_ms < due)
				due = st->next_try_ms;
			open = true;
		}
	}
	if (!open) {
		queue_remove_start(r, m);
		return;
	}
	if (m->flush)
		due = now;
	queue_heap_push(r, m, due);
}

void
queue_msg_later(struct queue_runner *r, struct queue_msg *m)
{
	queue_heap_push(r, m, queue_now_ms() + QUEUE_RETRY_LATER_MS);
}

void
queue_msg_flush(struct queue_runner *r, struct queue_msg *m)
{
	m->flush = true;
	if (m->busy == 0 && m->heap_index != SIZE_MAX)
		queue_heap_push(r, m, queue_now_ms());
}

struct queue_remove_byid {
	struct queue_runner *r;
	char id[QUEUE_ID_SIZE];
	int rc;
	char why[QUEUE_WHY_MAX];
};

static void
queue_remove_id_work(void *arg)
{
	struct queue_remove_byid *rm = arg;

	rm->rc =
	    queue_msg_remove(&rm->r->spool, rm->id, rm->why, sizeof(rm->why));
}

static void
queue_remove_id_done(void *arg)
{
	struct queue_remove_byid *rm = arg;

	if (rm->rc != 0)
		ptl_log(PTL_LOG_ERROR, "queue: %s: cannot delete: %s", rm->id,
		        rm->why);
	else
		ptl_log(PTL_LOG_INFO, "queue: %s: deleted", rm->id);
	free(rm);
}

void
queue_remove_id(struct queue_runner *r, const char *id)
{
	struct queue_remove_byid *rm = calloc(1, sizeof(*rm));

	if (rm == NULL)
		return;
	rm->r = r;
	queue_copy_id(rm->id, id);
	queue_task(r, queue_remove_id_work, queue_remove_id_done, rm);
}

void
queue_msg_forget(struct queue_runner *r, struct queue_msg *m)
{
	queue_heap_remove(r, m);
	queue_msg_unlink(r, m);
	queue_msg_free(m);
	/* Messages left on disk for want of room can come in now. */
	if (r->full && r->nmsgs < (size_t)r->conf->max_active * 9 / 10) {
		r->full = false;
		queue_scan_soon(r, 100);
	}
}

/* ---- start and stop ---- */

static void
queue_runner_free(struct queue_runner *r)
{
	struct queue_dest *d, *dn;
	struct queue_work *w, *wn;
	struct queue_msg *m, *mn;
	size_t i;

	if (r->ino_io != NULL)
		ptl_io_remove(r->ino_io);
	if (r->ino_fd >= 0)
		(void)close(r->ino_fd);
	ptl_timer_free(r->timer);
	ptl_timer_free(r->scan_timer);
	ptl_timer_free(r->lock_timer);
	if (r->lock_fd >= 0)
		(void)close(r->lock_fd);
	for (i = 0; i < r->ndbuckets; i++) {
		for (d = r->dbuckets[i]; d != NULL; d = dn) {
			dn = d->hash_next;
			for (w = d->head; w != NULL; w = wn) {
				wn = w->next;
				queue_work_free(w);
			}
			free(d->key);
			free(d);
		}
	}
	free(r->dbuckets);
	for (i = 0; i < r->nbuckets; i++) {
		for (m = r->buckets[i]; m != NULL; m = mn) {
			mn = m->hash_next;
			queue_msg_free(m);
		}
	}
	free(r->buckets);
	free(r->heap);
	free(r->load_ids);
	queue_spool_close(&r->spool);
	free(r);
}

/*
 * One runner per spool: during a reload the new generation's helper
 * starts while the old one drains its deliveries, and two runners on one
 * spool would deliver the same message twice. The lock dies with its
 * holder (kill -9 included).
 */
static bool
queue_runner_lock(struct queue_runner *r)
{
	char path[4096];

	if (r->lock_fd < 0) {
		if (!queue_path(path, sizeof(path), r->spool.qdir,
		                QUEUE_LOCK_NAME, NULL))
			return false;
		r->lock_fd =
		    open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (r->lock_fd < 0) {
			ptl_log(PTL_LOG_ERROR, "queue: cannot open %s: %s",
			        path, strerror(errno));
			return false;
		}
	}
	return flock(r->lock_fd, LOCK_EX | LOCK_NB) == 0;
}

/* The lock is ours: watch the spool and load it. */
static void
queue_runner_go(struct queue_runner *r)
{
	if (queue_inotify_start(r) != 0) {
		/* Still correct without it: the periodic rescan finds all. */
		ptl_log(PTL_LOG_WARN,
		        "queue: inotify unavailable (%s); new "
		        "messages are found by the rescan "
		        "every %lld ms",
		        strerror(errno), (long long)r->conf->scan_interval);
	}
	/* The first scan loads the spool; requests left while the runner
	 * was down are read with it. */
	ptl_timer_start(r->scan_timer, 0);
}

static void
queue_lock_fire(struct ptl_timer *t, void *arg)
{
	struct queue_runner *r = arg;

	if (r->stopping)
		return;
	if (!queue_runner_lock(r)) {
		ptl_timer_start(t, QUEUE_LOCK_RETRY_MS);
		return;
	}
	ptl_log(PTL_LOG_INFO, "queue: spool lock taken");
	queue_runner_go(r);
}

int
queue_runner_open(struct ptl_instance *inst, struct queue_conf *conf,
                  struct ptl_error *err)
{
	char why[QUEUE_WHY_MAX];
	struct queue_runner *r;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return ptl_error_set(err, "out of memory");
	r->inst = inst;
	r->conf = conf;
	r->ino_fd = -1;
	r->lock_fd = -1;
	r->wd_msg = r->wd_ctl = -1;
	r->hostname = ptl_server_info()->hostname;
	r->policy.backoff_min = conf->backoff_min;
	r->policy.backoff_max = conf->backoff_max;
	r->policy.lifetime = conf->lifetime;
	r->policy.delay_warning = conf->delay_warning;
	if (queue_dirs_create(conf->qdir, why, sizeof(why)) != 0 ||
	    queue_spool_open(&r->spool, conf->qdir, why, sizeof(why)) != 0) {
		free(r);
		return ptl_error_set(err, "queue: %s", why);
	}
	r->timer = ptl_timer_new(queue_timer_fire, r);
	r->scan_timer = ptl_timer_new(queue_scan_fire, r);
	r->lock_timer = ptl_timer_new(queue_lock_fire, r);
	if (r->timer == NULL || r->scan_timer == NULL ||
	    r->lock_timer == NULL) {
		queue_runner_free(r);
		return ptl_error_set(err, "out of memory");
	}
	r->storage = ptl_service_find(PTL_STORAGE_SERVICE, PTL_STORAGE_VERSION);
	r->auth = ptl_service_find(PTL_AUTH_SERVICE, PTL_AUTH_VERSION);
	if (r->storage == NULL)
		ptl_log(PTL_LOG_NOTICE, "queue: no \"storage\" service: "
		                        "recipients in local domains stay "
		                        "deferred");
	if (ptl_service_find(PTL_RESOLVER_SERVICE, PTL_RESOLVER_VERSION) ==
	    NULL)
		ptl_log(PTL_LOG_NOTICE, "queue: no \"resolver\" service: "
		                        "only routes with a \"host\" can be "
		                        "delivered; the rest stays deferred");
	if (relay_engine_create(inst, &conf->relay, &r->engine, err) !=
	    PTL_OK) {
		ptl_log(PTL_LOG_ERROR,
		        "queue: delivery engine unavailable: "
		        "%s; remote recipients stay deferred",
		        err->text);
		r->engine = NULL;
	}
	queue_the_runner = r;
	ptl_log(PTL_LOG_INFO, "queue: runner started on %s", conf->qdir);
	if (queue_runner_lock(r)) {
		queue_runner_go(r);
	} else {
		ptl_log(PTL_LOG_NOTICE,
		        "queue: another runner holds %s/%s "
		        "(a reload drains the old one); "
		        "waiting for it",
		        conf->qdir, QUEUE_LOCK_NAME);
		ptl_timer_start(r->lock_timer, QUEUE_LOCK_RETRY_MS);
	}
	return PTL_OK;
}

int
queue_runner_start(struct ptl_instance *inst, void *arg, struct ptl_error *err)
{
	return queue_runner_open(inst, ptl_instance_conf(inst), err);
}

void
queue_runner_stop(struct ptl_instance *inst)
{
	struct queue_runner *r = queue_the_runner;

	if (r == NULL || r->inst != inst)
		return;
	queue_runner_close();
}

void
queue_runner_close(void)
{
	struct queue_runner *r = queue_the_runner;

	if (r == NULL)
		return;
	/*
	 * The loop has stopped and the pool drained: what the engine's
	 * aborted jobs still record is written right here.
	 */
	r->stopping = true;
	r->closing = true;
	if (r->engine != NULL) {
		/* Every running job completes (deferred) and is recorded. */
		relay_abort_all(r->engine);
		relay_engine_free(r->engine);
		r->engine = NULL;
	}
	queue_the_runner = NULL;
	queue_runner_free(r);
}
