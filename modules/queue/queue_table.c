/* SPDX-License-Identifier: MIT */
/* The runner's indexes: message table, heap by due time, destinations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

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

bool
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

void
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

void
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

void
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

void
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
			ptl_log(PTL_LOG_ERROR,
			        "queue: %s: out of memory, "
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

struct queue_dest *
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

void
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
