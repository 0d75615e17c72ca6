/* SPDX-License-Identifier: MIT */
/* One-shot timers in a binary min-heap keyed by (expiry, start order). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "loop.h"

#define TIMER_INACTIVE SIZE_MAX

struct ptl_timer {
	int64_t expiry;    /* ptl_now_ms() time at which it fires */
	uint64_t seq;      /* start order, breaks ties between equal expiries */
	size_t heap_index; /* TIMER_INACTIVE when not armed */
	ptl_timer_fn fn;
	void *arg;
	struct ptl_timer *prev; /* every timer, for ptl_timers_fini() */
	struct ptl_timer *next;
};

static struct ptl_timer **timer_heap;
static size_t timer_heap_len;
static size_t timer_heap_cap;
static size_t timer_count; /* timers allocated, armed or not */
static uint64_t timer_seq;
static struct ptl_timer *timer_all;

static bool
timer_before(const struct ptl_timer *a, const struct ptl_timer *b)
{
	if (a->expiry != b->expiry)
		return a->expiry < b->expiry;
	return a->seq < b->seq;
}

static void
heap_place(size_t i, struct ptl_timer *t)
{
	timer_heap[i] = t;
	t->heap_index = i;
}

static void
heap_sift_up(size_t i)
{
	struct ptl_timer *t = timer_heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!timer_before(t, timer_heap[parent]))
			break;
		heap_place(i, timer_heap[parent]);
		i = parent;
	}
	heap_place(i, t);
}

static void
heap_sift_down(size_t i)
{
	struct ptl_timer *t = timer_heap[i];

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= timer_heap_len)
			break;
		if (child + 1 < timer_heap_len &&
		    timer_before(timer_heap[child + 1], timer_heap[child]))
			child++;
		if (!timer_before(timer_heap[child], t))
			break;
		heap_place(i, timer_heap[child]);
		i = child;
	}
	heap_place(i, t);
}

static void
heap_remove(struct ptl_timer *t)
{
	size_t i = t->heap_index;
	struct ptl_timer *last;

	t->heap_index = TIMER_INACTIVE;
	last = timer_heap[--timer_heap_len];
	if (i == timer_heap_len)
		return;
	heap_place(i, last);
	if (i > 0 && timer_before(last, timer_heap[(i - 1) / 2]))
		heap_sift_up(i);
	else
		heap_sift_down(i);
}

PTL_API struct ptl_timer *
ptl_timer_new(ptl_timer_fn fn, void *arg)
{
	struct ptl_timer *t;

	if (fn == NULL)
		return NULL;
	/*
	 * Reserve the heap slot now: ptl_timer_start() cannot fail, so it
	 * must never need memory.
	 */
	if (timer_count == timer_heap_cap) {
		size_t cap = timer_heap_cap ? timer_heap_cap * 2 : 64;
		struct ptl_timer **heap;

		if (cap > SIZE_MAX / sizeof(*heap))
			return NULL;
		heap = realloc(timer_heap, cap * sizeof(*heap));
		if (heap == NULL)
			return NULL;
		timer_heap = heap;
		timer_heap_cap = cap;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->heap_index = TIMER_INACTIVE;
	t->fn = fn;
	t->arg = arg;
	t->next = timer_all;
	if (timer_all != NULL)
		timer_all->prev = t;
	timer_all = t;
	timer_count++;
	return t;
}

PTL_API void
ptl_timer_start(struct ptl_timer *t, int64_t ms)
{
	int64_t now = ptl_now_ms();

	if (ms < 0)
		ms = 0;
	if (ms > INT64_MAX - now)
		ms = INT64_MAX - now;
	if (t->heap_index != TIMER_INACTIVE)
		heap_remove(t);
	t->expiry = now + ms;
	t->seq = timer_seq++;
	timer_heap_len++;
	heap_place(timer_heap_len - 1, t);
	heap_sift_up(timer_heap_len - 1);
}

PTL_API void
ptl_timer_stop(struct ptl_timer *t)
{
	if (t->heap_index != TIMER_INACTIVE)
		heap_remove(t);
}

PTL_API int
ptl_timer_active(const struct ptl_timer *t)
{
	return t->heap_index != TIMER_INACTIVE;
}

PTL_API void
ptl_timer_free(struct ptl_timer *t)
{
	if (t == NULL)
		return;
	ptl_timer_stop(t);
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		timer_all = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	timer_count--;
	free(t);
}

int64_t
ptl_timer_next_ms(void)
{
	struct timespec ts;
	int64_t now;

	if (timer_heap_len == 0)
		return -1;
	/*
	 * A fresh reading, not the cached one: callbacks since the last
	 * update may have taken time, and sleeping the full delay from a
	 * stale "now" would make every timer late by that much.
	 */
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (timer_heap[0]->expiry <= now)
		return 0;
	return timer_heap[0]->expiry - now;
}

void
ptl_timers_run(void)
{
	int64_t now = ptl_now_ms();
	uint64_t pass_seq = timer_seq;

	/*
	 * Timers started during this pass have seq >= pass_seq and sort
	 * after every timer already due, so a timer re-armed with 0 ms in
	 * its own callback waits for the next pass instead of spinning.
	 */
	while (timer_heap_len > 0) {
		struct ptl_timer *t = timer_heap[0];

		if (t->expiry > now || t->seq >= pass_seq)
			break;
		heap_remove(t);
		/* The callback may free or re-arm t: do not touch it after. */
		t->fn(t, t->arg);
	}
}

void
ptl_timers_fini(void)
{
	while (timer_all != NULL) {
		struct ptl_timer *t = timer_all;

		timer_all = t->next;
		free(t);
	}
	free(timer_heap);
	timer_heap = NULL;
	timer_heap_len = 0;
	timer_heap_cap = 0;
	timer_count = 0;
}
