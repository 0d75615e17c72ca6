/* SPDX-License-Identifier: MIT */
/* The resolver service: lookups, the queries they share, delivery, cancel. */

/*
 * A lookup is a struct ptl_dns_query on exactly one list at a time:
 *   - the waiters of an in-flight query (a cache miss), or
 *   - the resolver's ready list (an answer attached, delivery pending),
 *   - the delivering list (taken from ready by the running flush).
 * Cancel unlinks it from whichever list holds it and frees it, so a
 * cancelled lookup can never be called. Identical misses (same type and
 * name) share one query on the wire.
 *
 * Every completion runs from a flush of the ready list, which runs from
 * ptl_defer(): never inside lookup() (a cache hit or an invalid name
 * would otherwise call back into a caller that has not yet stored the
 * handle) and never inside c-ares's own processing.
 */
#include <stdlib.h>
#include <string.h>

#include "resolver_internal.h"

/* "DNSQ": catches a stale or foreign handle passed to cancel(). */
#define RESOLVER_QUERY_MAGIC 0x444e5351u
#define INFLIGHT_BUCKETS     256

struct query_list {
	struct ptl_dns_query *head, *tail;
};

struct ptl_dns_query {
	uint32_t magic;
	struct query_list *list;
	struct ptl_dns_query *prev, *next;
	/* What to deliver; NULL: the query failed for lack of memory. */
	struct resolver_answer *answer;
	uint32_t ttl;
	bool cached;
	ptl_dns_fn done;
	void *arg;
	enum ptl_dns_type type;
	char name[RESOLVER_NAME_BUF];
};

struct inflight {
	struct inflight *chain;
	struct resolver *r;
	struct query_list waiters;
	enum ptl_dns_type type;
	uint32_t hash;
	char name[RESOLVER_NAME_BUF];
};

struct resolver {
	const struct resolver_conf *conf;
	struct resolver_ttl_policy policy;
	struct resolver_cache *cache;
	struct resolver_ares *ares;
	struct inflight *inflight[INFLIGHT_BUCKETS];
	struct query_list ready;
	struct query_list delivering;
	bool flush_queued;
	/* Used when ptl_defer() has no memory: it cannot fail. */
	struct ptl_timer *flush_timer;
	struct ptl_resolver_stats stats;
};

/* ---- Lists ----------------------------------------------------------- */

static void
list_append(struct query_list *list, struct ptl_dns_query *q)
{
	q->list = list;
	q->next = NULL;
	q->prev = list->tail;
	if (list->tail != NULL)
		list->tail->next = q;
	else
		list->head = q;
	list->tail = q;
}

static void
list_unlink(struct ptl_dns_query *q)
{
	struct query_list *list = q->list;

	if (list == NULL)
		return;
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		list->head = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	else
		list->tail = q->prev;
	q->list = NULL;
	q->prev = q->next = NULL;
}

static void
query_free(struct ptl_dns_query *q)
{
	list_unlink(q);
	resolver_answer_unref(q->answer);
	q->magic = 0;
	free(q);
}

static void
list_free_all(struct query_list *list)
{
	while (list->head != NULL)
		query_free(list->head);
}

/* ---- Delivery -------------------------------------------------------- */

static void
resolver_flush(struct resolver *r)
{
	struct ptl_dns_query *q;

	r->flush_queued = false;
	/*
	 * Only what is ready now: lookups that the completions start are
	 * delivered by the next flush, so a callback that always looks up a
	 * cached name again cannot keep the loop here.
	 */
	while (r->ready.head != NULL) {
		q = r->ready.head;
		list_unlink(q);
		list_append(&r->delivering, q);
	}
	while ((q = r->delivering.head) != NULL) {
		struct ptl_dns_result res;

		list_unlink(q);
		if (q->answer != NULL) {
			res = q->answer->result;
			res.ttl = q->ttl;
			res.cached = q->cached;
		} else {
			memset(&res, 0, sizeof(res));
			res.status = PTL_DNS_TEMPFAIL;
			res.type = q->type;
			res.name = q->name;
			res.reason = "out of memory";
		}
		q->magic = 0;
		q->done(&res, q->arg);
		resolver_answer_unref(q->answer);
		free(q);
	}
}

static void
resolver_on_defer(void *arg)
{
	resolver_flush(arg);
}

static void
resolver_on_flush_timer(struct ptl_timer *t, void *arg)
{
	resolver_flush(arg);
}

static void
schedule_flush(struct resolver *r)
{
	if (r->flush_queued)
		return;
	r->flush_queued = true;
	if (ptl_defer(resolver_on_defer, r) != PTL_OK)
		ptl_timer_start(r->flush_timer, 0);
}

/* Attach @a (a new reference) to @q and queue it for delivery. */
static void
make_ready(struct resolver *r, struct ptl_dns_query *q,
           struct resolver_answer *a, uint32_t ttl, bool cached)
{
	list_unlink(q);
	if (a != NULL)
		resolver_answer_ref(a);
	q->answer = a;
	q->ttl = ttl;
	q->cached = cached;
	list_append(&r->ready, q);
	schedule_flush(r);
}

/* ---- Queries on the wire --------------------------------------------- */

static uint32_t
inflight_hash(enum ptl_dns_type type, const char *name)
{
	uint32_t h = 2166136261u ^ (uint32_t)type;

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return h;
}

static struct inflight *
inflight_find(struct resolver *r, enum ptl_dns_type type, const char *name,
              uint32_t hash)
{
	struct inflight *f = r->inflight[hash % INFLIGHT_BUCKETS];

	for (; f != NULL; f = f->chain) {
		if (f->hash == hash && f->type == type &&
		    strcmp(f->name, name) == 0)
			return f;
	}
	return NULL;
}

static void
inflight_unlink(struct resolver *r, struct inflight *f)
{
	struct inflight **link = &r->inflight[f->hash % INFLIGHT_BUCKETS];

	while (*link != NULL && *link != f)
		link = &(*link)->chain;
	if (*link == f)
		*link = f->chain;
}

static void
log_answer(const struct inflight *f, const struct resolver_answer *a)
{
	if (a->dropped > 0)
		ptl_log(PTL_LOG_WARN,
		        "resolver: %s %s: more than %d records in the answer, "
		        "%zu dropped",
		        resolver_type_name(f->type), f->name,
		        RESOLVER_MAX_RECORDS, a->dropped);
	if (!ptl_log_enabled(PTL_LOG_DEBUG))
		return;
	if (a->result.status == PTL_DNS_OK)
		ptl_log(PTL_LOG_DEBUG,
		        "resolver: %s %s: OK, records %zu, ttl %u%s",
		        resolver_type_name(f->type), f->name, a->result.count,
		        a->result.ttl, a->result.secure ? ", secure" : "");
	else
		ptl_log(PTL_LOG_DEBUG, "resolver: %s %s: %s%s%s, ttl %u",
		        resolver_type_name(f->type), f->name,
		        resolver_status_name(a->result.status),
		        a->result.reason != NULL ? ": " : "",
		        a->result.reason != NULL ? a->result.reason : "",
		        a->result.ttl);
}

static void
inflight_done(void *arg, enum resolver_ares_status status, const char *reason,
              const unsigned char *msg, size_t len)
{
	struct inflight *f = arg;
	struct resolver *r = f->r;
	struct resolver_answer *a = NULL;
	uint32_t ttl;

	inflight_unlink(r, f);
	if (status == RESOLVER_ARES_DESTROYED) {
		/* The process is ending: nobody is called any more. */
		list_free_all(&f->waiters);
		free(f);
		return;
	}
	if (status == RESOLVER_ARES_ANSWER)
		a = resolver_parse(msg, len, f->name, f->type);
	else
		a = resolver_answer_status(f->name, f->type,
		                           status == RESOLVER_ARES_PERMFAIL
		                               ? PTL_DNS_PERMFAIL
		                               : PTL_DNS_TEMPFAIL,
		                           reason);
	if (a == NULL) {
		ptl_log(PTL_LOG_WARN, "resolver: %s %s: out of memory",
		        resolver_type_name(f->type), f->name);
		r->stats.tempfails++;
		while (f->waiters.head != NULL)
			make_ready(r, f->waiters.head, NULL, 0, false);
		free(f);
		return;
	}
	ttl = resolver_ttl_effective(&r->policy, a);
	a->result.ttl = ttl;
	if (a->result.status == PTL_DNS_TEMPFAIL)
		r->stats.tempfails++;
	/* Kept even when every waiter was cancelled: the next one gains. */
	if (ttl > 0)
		(void)resolver_cache_put(r->cache, a,
		                         ptl_now_ms() + (int64_t)ttl * 1000);
	log_answer(f, a);
	while (f->waiters.head != NULL)
		make_ready(r, f->waiters.head, a, ttl, false);
	resolver_answer_unref(a);
	free(f);
}

/* ---- Methods --------------------------------------------------------- */

static void
log_lookup(const struct ptl_dns_query *q, const char *what)
{
	if (ptl_log_enabled(PTL_LOG_DEBUG))
		ptl_log(PTL_LOG_DEBUG, "resolver: %s %s: %s",
		        resolver_type_name(q->type), q->name, what);
}

static int
resolver_lookup(void *instance, const char *name, enum ptl_dns_type type,
                ptl_dns_fn done, void *arg, struct ptl_dns_query **query_out)
{
	struct resolver *r = instance;
	struct ptl_dns_query *q;
	struct resolver_answer *a;
	struct inflight *f;
	const char *why;
	uint32_t hash, remaining;

	if (r == NULL || done == NULL || !resolver_type_supported((int)type))
		return PTL_ERROR;
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return PTL_ERROR;
	q->magic = RESOLVER_QUERY_MAGIC;
	q->done = done;
	q->arg = arg;
	q->type = type;
	r->stats.lookups++;

	if (resolver_name_normalize(name, resolver_name_class_for(type),
	                            q->name, &why) != PTL_OK) {
		/* The caller's own text, cut to size, for its messages. */
		(void)ptl_log_escape(q->name, sizeof(q->name),
		                     name != NULL ? name : "",
		                     name != NULL ? strlen(name) : 0);
		a = resolver_answer_status(q->name, type, PTL_DNS_PERMFAIL,
		                           why);
		if (a == NULL) {
			free(q);
			return PTL_ERROR;
		}
		log_lookup(q, why);
		make_ready(r, q, a, 0, false);
		resolver_answer_unref(a);
		goto started;
	}

	a = resolver_cache_get(r->cache, type, q->name, ptl_now_ms(),
	                       &remaining);
	if (a != NULL) {
		r->stats.hits++;
		log_lookup(q, "from the cache");
		make_ready(r, q, a, remaining, true);
		goto started;
	}
	r->stats.misses++;

	hash = inflight_hash(type, q->name);
	f = inflight_find(r, type, q->name, hash);
	if (f != NULL) {
		r->stats.joined++;
		log_lookup(q, "joins the query in flight");
		list_append(&f->waiters, q);
		goto started;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		free(q);
		return PTL_ERROR;
	}
	f->r = r;
	f->type = type;
	f->hash = hash;
	memcpy(f->name, q->name, sizeof(f->name));
	f->chain = r->inflight[hash % INFLIGHT_BUCKETS];
	r->inflight[hash % INFLIGHT_BUCKETS] = f;
	list_append(&f->waiters, q);
	log_lookup(q, "query sent");
	/* May complete at once (c-ares found no usable server): then q is
	 * already on the ready list and f is gone. */
	if (resolver_ares_send(r->ares, f->name, type, inflight_done, f) !=
	    PTL_OK) {
		inflight_unlink(r, f);
		free(f);
		query_free(q);
		return PTL_ERROR;
	}
	r->stats.queries++;

started:
	if (query_out != NULL)
		*query_out = q;
	return PTL_AGAIN;
}

static int
resolver_lookup_ptr(void *instance, const struct sockaddr *addr,
                    ptl_dns_fn done, void *arg,
                    struct ptl_dns_query **query_out)
{
	char name[RESOLVER_NAME_BUF];

	if (resolver_ptr_name(addr, name) != PTL_OK)
		return PTL_ERROR;
	return resolver_lookup(instance, name, PTL_DNS_PTR, done, arg,
	                       query_out);
}

static void
resolver_cancel(void *instance, struct ptl_dns_query *q)
{
	struct resolver *r = instance;

	if (q == NULL)
		return;
	if (q->magic != RESOLVER_QUERY_MAGIC) {
		ptl_log(PTL_LOG_ERROR, "resolver: cancel of an unknown or "
		                       "finished lookup ignored");
		return;
	}
	if (r != NULL)
		r->stats.cancelled++;
	log_lookup(q, "cancelled");
	/* An in-flight query with no waiters left still fills the cache. */
	query_free(q);
}

static void
resolver_stats(void *instance, struct ptl_resolver_stats *out)
{
	struct resolver *r = instance;

	if (r == NULL) {
		memset(out, 0, sizeof(*out));
		return;
	}
	*out = r->stats;
	out->entries = resolver_cache_count(r->cache);
	out->cache_bytes = resolver_cache_bytes(r->cache);
	out->evictions = resolver_cache_evictions(r->cache);
}

const struct ptl_resolver_methods resolver_methods = {
    .version = PTL_RESOLVER_VERSION,
    .lookup = resolver_lookup,
    .lookup_ptr = resolver_lookup_ptr,
    .cancel = resolver_cancel,
    .stats = resolver_stats,
};

/* ---- Lifecycle ------------------------------------------------------- */

static uint32_t
ms_to_seconds(int64_t ms)
{
	if (ms <= 0)
		return 0;
	if (ms / 1000 > UINT32_MAX)
		return UINT32_MAX;
	return (uint32_t)(ms / 1000);
}

int
resolver_new(const struct resolver_conf *conf, struct resolver **out,
             struct ptl_error *err)
{
	struct resolver *r;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return ptl_error_set(err, "out of memory");
	r->conf = conf;
	r->policy.min_ttl = ms_to_seconds(conf->min_ttl_ms);
	r->policy.max_ttl = ms_to_seconds(conf->max_ttl_ms);
	r->policy.negative_ttl = ms_to_seconds(conf->negative_ttl_ms);
	r->cache = resolver_cache_new((size_t)conf->cache_size,
	                              (size_t)conf->cache_memory);
	r->flush_timer = ptl_timer_new(resolver_on_flush_timer, r);
	if (r->cache == NULL || r->flush_timer == NULL) {
		resolver_free(r);
		return ptl_error_set(err, "out of memory");
	}
	if (resolver_ares_new(conf, &r->ares, err) != PTL_OK) {
		resolver_free(r);
		return PTL_ERROR;
	}
	*out = r;
	return PTL_OK;
}

void
resolver_free(struct resolver *r)
{
	if (r == NULL)
		return;
	/* In-flight queries end with RESOLVER_ARES_DESTROYED, uncalled. */
	resolver_ares_free(r->ares);
	list_free_all(&r->ready);
	list_free_all(&r->delivering);
	resolver_cache_free(r->cache);
	ptl_timer_free(r->flush_timer);
	free(r);
}
