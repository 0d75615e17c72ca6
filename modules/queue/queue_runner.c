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
#include <sys/inotify.h>
#include <sys/stat.h>

#include "queue_int.h"

/*
 * The runner is the only process that changes the spool after a message
 * was enqueued: it appends to state logs, writes reports and removes
 * finished messages. Workers only add files to msg/ (it learns of them
 * through inotify), petrelctl only reads and drops requests into ctl/.
 *
 * Everything here runs on the helper's loop; every file operation is a
 * task on the core's thread pool.
 */

#define QUEUE_LOAD_BATCH 128
/* Temporary files older than this were left by a crashed writer. */
#define QUEUE_TMP_STALE_S 3600
/* A removal or report that failed is tried again after this. */
#define QUEUE_RETRY_LATER_MS ((int64_t)60 * 1000)
#define QUEUE_INOTIFY_BUF 16384

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
queue_task(struct queue_runner *r, ptl_task_work_fn work,
	   ptl_task_done_fn done, void *arg)
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

/* ---- the message table ---- */

static size_t
queue_hash(const char *s)
{
	size_t h = 5381;

	while (*s != '\0')
		h = h * 33 + (unsigned char)*s++;
	return h;
}

struct queue_msg *
queue_msg_find(struct queue_runner *r, const char *id)
{
	struct queue_msg *m;

	if (r->nbuckets == 0)
		return NULL;
	for (m = r->buckets[queue_hash(id) & (r->nbuckets - 1)]; m != NULL;
	     m = m->hash_next)
		if (strcmp(m->env.id, id) == 0)
			return m;
	return NULL;
}

static bool
queue_msg_insert(struct queue_runner *r, struct queue_msg *m)
{
	struct queue_msg **grown, *e, *next;
	size_t n, i, h;

	if (r->nmsgs + 1 > r->nbuckets * 2 || r->nbuckets == 0) {
		n = r->nbuckets ? r->nbuckets * 2 : 256;
		grown = calloc(n, sizeof(*grown));
		if (grown == NULL && r->nbuckets == 0)
			return false;
		if (grown != NULL) {
			for (i = 0; i < r->nbuckets; i++) {
				for (e = r->buckets[i]; e != NULL; e = next) {
					next = e->hash_next;
					h = queue_hash(e->env.id) & (n - 1);
					e->hash_next = grown[h];
					grown[h] = e;
				}
			}
			free(r->buckets);
			r->buckets = grown;
			r->nbuckets = n;
		}
	}
	h = queue_hash(m->env.id) & (r->nbuckets - 1);
	m->hash_next = r->buckets[h];
	r->buckets[h] = m;
	r->nmsgs++;
	return true;
}

static void
queue_msg_unlink(struct queue_runner *r, struct queue_msg *m)
{
	struct queue_msg **pp;

	pp = &r->buckets[queue_hash(m->env.id) & (r->nbuckets - 1)];
	for (; *pp != NULL; pp = &(*pp)->hash_next) {
		if (*pp == m) {
			*pp = m->hash_next;
			r->nmsgs--;
			return;
		}
	}
}

static void
queue_msg_free(struct queue_msg *m)
{
	queue_env_free(&m->env);
	free(m->rcpts);
	free(m);
}

/* ---- the heap of waiting messages, by due time ---- */

static void
queue_heap_swap(struct queue_runner *r, size_t a, size_t b)
{
	struct queue_msg *t = r->heap[a];

	r->heap[a] = r->heap[b];
	r->heap[b] = t;
	r->heap[a]->heap_index = a;
	r->heap[b]->heap_index = b;
}

static void
queue_heap_up(struct queue_runner *r, size_t i)
{
	while (i > 0 && r->heap[(i - 1) / 2]->due_ms > r->heap[i]->due_ms) {
		queue_heap_swap(r, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
queue_heap_down(struct queue_runner *r, size_t i)
{
	size_t l, s;

	for (;;) {
		l = 2 * i + 1;
		s = i;
		if (l < r->heap_len && r->heap[l]->due_ms < r->heap[s]->due_ms)
			s = l;
		if (l + 1 < r->heap_len &&
		    r->heap[l + 1]->due_ms < r->heap[s]->due_ms)
			s = l + 1;
		if (s == i)
			return;
		queue_heap_swap(r, i, s);
		i = s;
	}
}

static void
queue_heap_remove(struct queue_runner *r, struct queue_msg *m)
{
	size_t i = m->heap_index;

	if (i == SIZE_MAX)
		return;
	m->heap_index = SIZE_MAX;
	r->heap_len--;
	if (i == r->heap_len)
		return;
	r->heap[i] = r->heap[r->heap_len];
	r->heap[i]->heap_index = i;
	queue_heap_down(r, i);
	queue_heap_up(r, i);
}

static void queue_timer_arm(struct queue_runner *r);

static void
queue_heap_push(struct queue_runner *r, struct queue_msg *m, int64_t due)
{
	struct queue_msg **grown;
	size_t cap;

	queue_heap_remove(r, m);
	if (r->heap_len == r->heap_cap) {
		cap = r->heap_cap ? r->heap_cap * 2 : 256;
		grown = realloc(r->heap, cap * sizeof(*grown));
		if (grown == NULL) {
			/* It comes back at the next rescan. */
			ptl_log(PTL_LOG_ERROR, "queue: %s: out of memory, "
					       "dropped from the schedule",
				m->env.id);
			queue_msg_forget(r, m);
			return;
		}
		r->heap = grown;
		r->heap_cap = cap;
	}
	m->due_ms = due;
	m->heap_index = r->heap_len;
	r->heap[r->heap_len++] = m;
	queue_heap_up(r, m->heap_index);
	queue_timer_arm(r);
}

/* ---- destinations ---- */

static struct queue_dest *
queue_dest_get(struct queue_runner *r, const char *key, unsigned limit)
{
	struct queue_dest *d, **grown, *next;
	size_t h, n, i;

	if (r->ndbuckets == 0 || r->ndests + 1 > r->ndbuckets * 2) {
		n = r->ndbuckets ? r->ndbuckets * 2 : 64;
		grown = calloc(n, sizeof(*grown));
		if (grown == NULL && r->ndbuckets == 0)
			return NULL;
		if (grown != NULL) {
			for (i = 0; i < r->ndbuckets; i++)
				for (d = r->dbuckets[i]; d != NULL; d = next) {
					next = d->hash_next;
					h = queue_hash(d->key) & (n - 1);
					d->hash_next = grown[h];
					grown[h] = d;
				}
			free(r->dbuckets);
			r->dbuckets = grown;
			r->ndbuckets = n;
		}
	}
	h = queue_hash(key) & (r->ndbuckets - 1);
	for (d = r->dbuckets[h]; d != NULL; d = d->hash_next)
		if (strcmp(d->key, key) == 0)
			return d;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->key = strdup(key);
	if (d->key == NULL) {
		free(d);
		return NULL;
	}
	d->limit = limit;
	d->hash_next = r->dbuckets[h];
	r->dbuckets[h] = d;
	r->ndests++;
	return d;
}

/* An idle destination with nothing waiting is dropped. */
static void
queue_dest_maybe_free(struct queue_runner *r, struct queue_dest *d)
{
	struct queue_dest **pp;

	if (d->active > 0 || d->head != NULL || d->in_ready)
		return;
	pp = &r->dbuckets[queue_hash(d->key) & (r->ndbuckets - 1)];
	for (; *pp != NULL; pp = &(*pp)->hash_next) {
		if (*pp == d) {
			*pp = d->hash_next;
			r->ndests--;
			free(d->key);
			free(d);
			return;
		}
	}
}

static void
queue_dest_ready(struct queue_runner *r, struct queue_dest *d)
{
	if (d->in_ready || d->head == NULL || d->active >= d->limit)
		return;
	d->in_ready = true;
	d->ready_next = NULL;
	if (r->ready_tail != NULL)
		r->ready_tail->ready_next = d;
	else
		r->ready_head = d;
	r->ready_tail = d;
}

void
queue_dispatch(struct queue_runner *r)
{
	struct queue_work *w;
	struct queue_dest *d;

	if (ptl_loop_stopping())
		r->stopping = true;
	/* Round robin over destinations, so one busy domain cannot starve
	 * the others. */
	while (!r->stopping && r->ready_head != NULL &&
	       r->active_total < (unsigned)r->conf->max_concurrency) {
		d = r->ready_head;
		r->ready_head = d->ready_next;
		if (r->ready_head == NULL)
			r->ready_tail = NULL;
		d->in_ready = false;
		if (d->head == NULL || d->active >= d->limit)
			continue;
		w = d->head;
		d->head = w->next;
		if (d->head == NULL)
			d->tail = NULL;
		w->next = NULL;
		d->active++;
		r->active_total++;
		queue_dest_ready(r, d);
		queue_job_start(r, w);
	}
}

void
queue_dest_release(struct queue_runner *r, struct queue_dest *d)
{
	d->active--;
	r->active_total--;
	queue_dest_ready(r, d);
	queue_dest_maybe_free(r, d);
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
	char key[320];
	unsigned limit;
	bool local;
	size_t i;

	local = queue_is_local(r, refs[0].domain);
	if (local) {
		(void)snprintf(key, sizeof(key), "local:");
		limit = (unsigned)r->conf->local_concurrency;
	} else {
		route = queue_route_find(r->conf, refs[0].domain);
		if (route != NULL && route->relay.host != NULL)
			(void)snprintf(key, sizeof(key), "[%s]:%u",
				       route->relay.host,
				       (unsigned)route->relay.port);
		else
			(void)snprintf(key, sizeof(key), "%s",
				       refs[0].domain);
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
static void
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

		if (rc->inflight ||
		    (rc->st.status != QUEUE_RCPT_PENDING &&
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

static void
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

static void
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

static void queue_scan_soon(struct queue_runner *r, int64_t delay);

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

	rm->rc = queue_msg_remove(&rm->r->spool, rm->id, rm->why,
				  sizeof(rm->why));
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

/* ---- loading messages ---- */

struct queue_load {
	struct queue_runner *r;
	size_t n;
	char (*ids)[QUEUE_ID_SIZE];
	struct queue_msg **msgs; /* NULL where nothing was loaded */
	const char *qdir;
};

static void
queue_domain_of(struct queue_msg *m, size_t i)
{
	char *addr = (char *)m->env.rcpts[i].address, *at, *p;

	at = strrchr(addr, '@');
	if (at == NULL) {
		m->rcpts[i].domain = "";
		return;
	}
	/* Domains are case-insensitive: lower case makes one key each. */
	for (p = at + 1; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (p > at + 1 && p[-1] == '.')
		p[-1] = '\0';
	m->rcpts[i].domain = at + 1;
}

static struct queue_msg *
queue_load_one(const char *qdir, const char *id)
{
	char why[QUEUE_WHY_MAX], qwhy[QUEUE_WHY_MAX];
	enum queue_read_status rs;
	struct queue_rcpt_state *st;
	uint64_t valid, size;
	struct queue_msg *m;
	size_t i;

	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	rs = queue_msg_read(qdir, id, &m->env, why, sizeof(why));
	if (rs == QUEUE_READ_CORRUPT) {
		if (queue_quarantine(qdir, id, qwhy, sizeof(qwhy)) == 0)
			ptl_log(PTL_LOG_ERROR,
				"queue: %s: corrupt queue file (%s); moved "
				"to corrupt/",
				id, why);
		else
			ptl_log(PTL_LOG_ERROR,
				"queue: %s: corrupt queue file (%s); cannot "
				"move it aside: %s",
				id, why, qwhy);
	} else if (rs == QUEUE_READ_ERROR) {
		ptl_log(PTL_LOG_ERROR, "queue: %s: cannot read: %s", id, why);
	}
	if (rs != QUEUE_READ_OK) {
		free(m);
		return NULL;
	}
	m->rcpts = calloc(m->env.nrcpts, sizeof(*m->rcpts));
	st = calloc(m->env.nrcpts, sizeof(*st));
	if (m->rcpts == NULL || st == NULL ||
	    queue_state_load(qdir, id, st, m->env.nrcpts, false, &valid,
			     &size, why, sizeof(why)) != QUEUE_READ_OK) {
		if (m->rcpts != NULL && st != NULL)
			ptl_log(PTL_LOG_ERROR, "queue: %s: cannot read its "
					       "state: %s",
				id, why);
		free(st);
		queue_msg_free(m);
		return NULL;
	}
	if (valid < size) {
		/*
		 * A crash cut the last append short: it never counted. Cut
		 * it off now, before any job of this message appends.
		 */
		ptl_log(PTL_LOG_NOTICE,
			"queue: %s: state log has %llu bytes of torn or "
			"corrupt tail; ignored and cut off",
			id, (unsigned long long)(size - valid));
		if (queue_state_truncate(qdir, id, valid, why, sizeof(why)) !=
		    0)
			ptl_log(PTL_LOG_ERROR, "queue: %s: %s", id, why);
	}
	for (i = 0; i < m->env.nrcpts; i++) {
		m->rcpts[i].st = st[i];
		queue_domain_of(m, i);
	}
	free(st);
	m->received_ms = m->env.received * 1000;
	m->heap_index = SIZE_MAX;
	return m;
}

static void
queue_load_work(void *arg)
{
	struct queue_load *ld = arg;
	size_t i;

	for (i = 0; i < ld->n; i++)
		ld->msgs[i] = queue_load_one(ld->qdir, ld->ids[i]);
}

static void queue_load_next(struct queue_runner *r);

static void
queue_load_done(void *arg)
{
	struct queue_load *ld = arg;
	struct queue_runner *r = ld->r;
	struct queue_msg *m;
	size_t i;

	r->load_running = false;
	for (i = 0; i < ld->n; i++) {
		m = ld->msgs[i];
		if (m == NULL)
			continue;
		if (queue_msg_find(r, m->env.id) != NULL || r->stopping ||
		    !queue_msg_insert(r, m)) {
			queue_msg_free(m);
			continue;
		}
		queue_msg_settle(r, m);
	}
	free(ld->ids);
	free(ld->msgs);
	free(ld);
	queue_load_next(r);
	queue_dispatch(r);
}

static void
queue_load_next(struct queue_runner *r)
{
	struct queue_load *ld;
	size_t n, room;

	if (r->load_running || r->load_len == 0 || r->stopping)
		return;
	room = r->nmsgs < (size_t)r->conf->max_active
		       ? (size_t)r->conf->max_active - r->nmsgs
		       : 0;
	if (room == 0) {
		/* The rest waits on disk; a rescan finds it later. */
		r->full = true;
		r->load_len = 0;
		return;
	}
	n = r->load_len < QUEUE_LOAD_BATCH ? r->load_len : QUEUE_LOAD_BATCH;
	if (n > room)
		n = room;
	ld = calloc(1, sizeof(*ld));
	if (ld == NULL)
		return;
	ld->ids = calloc(n, sizeof(*ld->ids));
	ld->msgs = calloc(n, sizeof(*ld->msgs));
	if (ld->ids == NULL || ld->msgs == NULL) {
		free(ld->ids);
		free(ld->msgs);
		free(ld);
		return;
	}
	ld->r = r;
	ld->n = n;
	ld->qdir = r->spool.qdir;
	memcpy(ld->ids, r->load_ids + (r->load_len - n), n * sizeof(*ld->ids));
	r->load_len -= n;
	r->load_running = true;
	queue_task(r, queue_load_work, queue_load_done, ld);
}

static void
queue_load_add(struct queue_runner *r, const char *id)
{
	char(*grown)[QUEUE_ID_SIZE];
	size_t cap;

	if (!queue_id_valid(id) || queue_msg_find(r, id) != NULL)
		return;
	if (r->load_len == r->load_cap) {
		cap = r->load_cap ? r->load_cap * 2 : 256;
		grown = realloc(r->load_ids, cap * sizeof(*grown));
		if (grown == NULL) {
			r->full = true; /* the next rescan brings it */
			return;
		}
		r->load_ids = grown;
		r->load_cap = cap;
	}
	queue_copy_id(r->load_ids[r->load_len++], id);
}

/* ---- scanning the spool ---- */

struct queue_scan {
	struct queue_runner *r;
	const char *qdir;
	char (*ids)[QUEUE_ID_SIZE];
	size_t n, cap;
	bool failed;
	char why[QUEUE_WHY_MAX];
};

static void
queue_scan_add(struct queue_scan *s, const char *name)
{
	char(*grown)[QUEUE_ID_SIZE];
	size_t cap;

	if (s->n == s->cap) {
		cap = s->cap ? s->cap * 2 : 1024;
		grown = realloc(s->ids, cap * sizeof(*grown));
		if (grown == NULL) {
			s->failed = true;
			return;
		}
		s->ids = grown;
		s->cap = cap;
	}
	queue_copy_id(s->ids[s->n++], name);
}

/* Remove what crashes leave behind: stale tmp/ files, orphaned logs. */
static void
queue_scan_clean(const char *qdir)
{
	char dir[4096], path[4096];
	struct dirent *de;
	struct stat sb;
	time_t now = time(NULL);
	DIR *d;

	if (queue_path(dir, sizeof(dir), qdir, "tmp", NULL) &&
	    (d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.' ||
			    fstatat(dirfd(d), de->d_name, &sb,
				    AT_SYMLINK_NOFOLLOW) != 0)
				continue;
			if (now - sb.st_mtime > QUEUE_TMP_STALE_S)
				(void)unlinkat(dirfd(d), de->d_name, 0);
		}
		(void)closedir(d);
	}
	if (queue_path(dir, sizeof(dir), qdir, "state", NULL) &&
	    (d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.' ||
			    !queue_id_valid(de->d_name) ||
			    !queue_path(path, sizeof(path), qdir, "msg",
					de->d_name))
				continue;
			if (access(path, F_OK) != 0 && errno == ENOENT)
				(void)unlinkat(dirfd(d), de->d_name, 0);
		}
		(void)closedir(d);
	}
}

static void
queue_scan_work(void *arg)
{
	struct queue_scan *s = arg;
	char dir[4096];
	struct dirent *de;
	DIR *d;

	queue_scan_clean(s->qdir);
	if (!queue_path(dir, sizeof(dir), s->qdir, "msg", NULL) ||
	    (d = opendir(dir)) == NULL) {
		s->failed = true;
		(void)snprintf(s->why, sizeof(s->why), "cannot read %.200s: %s",
			       dir, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL && !s->failed) {
		if (de->d_name[0] == '.')
			continue;
		if (!queue_id_valid(de->d_name)) {
			char qwhy[QUEUE_WHY_MAX];

			ptl_log(PTL_LOG_WARN, "queue: msg/ holds a file with "
					      "a name that is no queue id; "
					      "moving it to corrupt/");
			(void)queue_quarantine(s->qdir, de->d_name, qwhy,
					       sizeof(qwhy));
			continue;
		}
		queue_scan_add(s, de->d_name);
	}
	(void)closedir(d);
}

static int
queue_id_cmp(const void *a, const void *b)
{
	/* Newest first in the array: queue_load_next takes from the end,
	 * so the oldest messages load first. */
	return -strcmp(a, b);
}

static void
queue_scan_done(void *arg)
{
	struct queue_scan *s = arg;
	struct queue_runner *r = s->r;
	size_t i;

	r->scan_running = false;
	if (s->failed && s->why[0] != '\0')
		ptl_log(PTL_LOG_ERROR, "queue: scan failed: %s", s->why);
	qsort(s->ids, s->n, sizeof(*s->ids), queue_id_cmp);
	for (i = 0; i < s->n && !r->stopping; i++)
		queue_load_add(r, s->ids[i]);
	free(s->ids);
	free(s);
	queue_load_next(r);
	if (r->scan_again) {
		r->scan_again = false;
		queue_scan_soon(r, 0);
	}
}

static void
queue_scan_start(struct queue_runner *r)
{
	struct queue_scan *s;

	if (r->stopping)
		return;
	if (r->scan_running) {
		r->scan_again = true;
		return;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return;
	s->r = r;
	s->qdir = r->spool.qdir;
	r->scan_running = true;
	queue_task(r, queue_scan_work, queue_scan_done, s);
}

static void
queue_scan_fire(struct ptl_timer *t, void *arg)
{
	struct queue_runner *r = arg;

	queue_scan_start(r);
	queue_ctl_scan(r);
	ptl_timer_start(t, r->conf->scan_interval);
}

static void
queue_scan_soon(struct queue_runner *r, int64_t delay)
{
	ptl_timer_start(r->scan_timer, delay);
}

/* ---- inotify: new messages and requests ---- */

static void
queue_inotify_read(struct ptl_io *io, unsigned events, void *arg)
{
	struct queue_runner *r = arg;
	char buf[QUEUE_INOTIFY_BUF]
		__attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	bool added = false;
	ssize_t n;
	size_t off;

	for (;;) {
		n = read(r->ino_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (off = 0; off + sizeof(*ev) <= (size_t)n;
		     off += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)(buf + off);
			if (ev->mask & IN_Q_OVERFLOW) {
				/* Events were lost: look at everything. */
				queue_scan_start(r);
				queue_ctl_scan(r);
				continue;
			}
			if (ev->len == 0 || ev->name[0] == '.')
				continue;
			if (ev->wd == r->wd_ctl) {
				queue_ctl_scan(r);
			} else if (ev->wd == r->wd_msg && !r->stopping) {
				queue_load_add(r, ev->name);
				added = true;
			}
		}
	}
	if (added)
		queue_load_next(r);
}

static int
queue_inotify_start(struct queue_runner *r)
{
	char path[4096];

	r->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (r->ino_fd < 0)
		return -1;
	if (!queue_path(path, sizeof(path), r->spool.qdir, "msg", NULL) ||
	    (r->wd_msg = inotify_add_watch(r->ino_fd, path, IN_MOVED_TO)) <
		    0)
		return -1;
	if (!queue_path(path, sizeof(path), r->spool.qdir, "ctl", NULL) ||
	    (r->wd_ctl = inotify_add_watch(r->ino_fd, path, IN_MOVED_TO)) <
		    0)
		return -1;
	r->ino_io = ptl_io_add(r->ino_fd, PTL_IO_READ, queue_inotify_read, r);
	return r->ino_io != NULL ? 0 : -1;
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
	if (r->timer == NULL || r->scan_timer == NULL) {
		queue_runner_free(r);
		return ptl_error_set(err, "out of memory");
	}
	if (queue_inotify_start(r) != 0) {
		/* Still correct without it: the periodic rescan finds all. */
		ptl_log(PTL_LOG_WARN, "queue: inotify unavailable (%s); new "
				      "messages are found by the rescan "
				      "every %lld ms",
			strerror(errno), (long long)conf->scan_interval);
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
		ptl_log(PTL_LOG_ERROR, "queue: delivery engine unavailable: "
				       "%s; remote recipients stay deferred",
			err->text);
		r->engine = NULL;
	}
	queue_the_runner = r;
	ptl_log(PTL_LOG_INFO, "queue: runner started on %s", conf->qdir);
	/* The first scan loads the spool; requests left while the runner
	 * was down are read with it. */
	ptl_timer_start(r->scan_timer, 0);
	return PTL_OK;
}

int
queue_runner_start(struct ptl_instance *inst, void *arg,
		   struct ptl_error *err)
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
