/* SPDX-License-Identifier: MIT */
/* The "queue" service in every worker: store a message durably. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue_int.h"

/*
 * enqueue() copies the request, writes tmp/ID (the prefix, then the
 * message read with pread() in 64 KiB chunks), the envelope and the
 * trailer, fsyncs the file, renames it into msg/ and fsyncs msg/ (group
 * commit with every other enqueue of this process), all on the thread
 * pool. Only then does the caller hear PTL_QUEUE_OK and may answer 250.
 * The runner learns of the new file by itself (inotify on msg/).
 */

#define QUEUE_SVC_MAGIC 0x51535643u /* "QSVC" */

struct queue_enq;

struct queue_service {
	uint32_t magic;
	unsigned refs; /* the registration + one per task in flight */
	struct queue_spool spool;
	struct queue_enq *pending; /* for cancel() */
};

struct queue_enq {
	struct queue_service *svc;
	ptl_queue_done_fn done;
	void *arg;
	bool cancelled;
	struct ptl_pool *pool;
	struct queue_env env;
	int fd;
	uint64_t size;
	const char *prefix;
	size_t prefix_len;
	int rc;
	char id[QUEUE_ID_SIZE];
	char why[QUEUE_WHY_MAX];
	struct queue_enq *next, **prevp;
};

static struct queue_service *queue_svc;

static void
queue_service_put(struct queue_service *svc)
{
	if (--svc->refs > 0)
		return;
	svc->magic = 0;
	queue_spool_close(&svc->spool);
	free(svc);
}

static void
queue_enq_work(void *arg)
{
	struct queue_enq *e = arg;
	struct queue_writer w;

	e->rc = -1;
	if (queue_writer_open(&w, &e->svc->spool, e->why, sizeof(e->why)) != 0)
		return;
	if ((e->prefix_len > 0 &&
	     queue_writer_write(&w, e->prefix, e->prefix_len, e->why,
	                        sizeof(e->why)) != 0) ||
	    queue_writer_copy(&w, e->fd, e->size, e->why, sizeof(e->why)) !=
	        0) {
		queue_writer_abort(&w);
		return;
	}
	if (queue_writer_commit(&w, &e->env, e->why, sizeof(e->why)) != 0)
		return;
	memcpy(e->id, w.id, sizeof(e->id));
	e->rc = 0;
}

static void
queue_enq_done(void *arg)
{
	struct queue_enq *e = arg;
	struct queue_service *svc = e->svc;
	char from[QUEUE_ADDRESS_MAX + 1];

	*e->prevp = e->next;
	if (e->next != NULL)
		e->next->prevp = e->prevp;
	if (e->rc == 0) {
		ptl_log_escape(from, sizeof(from), e->env.from,
		               strlen(e->env.from));
		ptl_log(PTL_LOG_INFO,
		        "queue: %s: queued from=<%s> nrcpt=%zu size=%llu%s",
		        e->id, from, e->env.nrcpts,
		        (unsigned long long)(e->size + e->prefix_len),
		        e->cancelled ? " (client gone)" : "");
	} else {
		ptl_log(PTL_LOG_ERROR, "queue: cannot queue a message: %s",
		        e->why);
	}
	if (!e->cancelled)
		e->done(e->rc == 0 ? PTL_QUEUE_OK : PTL_QUEUE_TEMPFAIL,
		        e->rc == 0 ? e->id : NULL,
		        e->rc == 0 ? NULL : "queue write failed", e->arg);
	(void)close(e->fd);
	ptl_pool_destroy(e->pool);
	free(e);
	queue_service_put(svc);
}

/* Envelope strings go into a file: no NUL can hide in a C string, but a
 * length bound keeps one message from making a giant envelope. */
static bool
queue_addr_ok(const char *a, bool may_be_empty)
{
	size_t len;

	if (a == NULL)
		return false;
	len = strlen(a);
	return (len > 0 || may_be_empty) && len <= QUEUE_ADDRESS_MAX;
}

static int
queue_enqueue(void *instance, const struct ptl_queue_message *m,
              ptl_queue_done_fn done, void *arg)
{
	struct queue_service *svc = instance;
	struct queue_env_rcpt *rcpts;
	struct queue_enq *e;
	struct ptl_pool *pool;
	size_t i;

	if (svc == NULL || svc->magic != QUEUE_SVC_MAGIC || m == NULL ||
	    done == NULL || m->fd < 0 || m->nrcpts == 0 ||
	    m->nrcpts > QUEUE_RCPTS_MAX || !queue_addr_ok(m->mail_from, true) ||
	    (m->prefix == NULL && m->prefix_len > 0))
		return PTL_ERROR;
	for (i = 0; i < m->nrcpts; i++)
		if (!queue_addr_ok(m->rcpts[i].address, false))
			return PTL_ERROR;
	pool = ptl_pool_create(0);
	if (pool == NULL)
		return PTL_ERROR;
	e = calloc(1, sizeof(*e));
	if (e != NULL)
		e->fd = -1;
	rcpts = ptl_pcalloc(pool, m->nrcpts * sizeof(*rcpts));
	if (e == NULL || rcpts == NULL)
		goto oom;
	e->pool = pool;
	e->svc = svc;
	e->done = done;
	e->arg = arg;
	/* Our own descriptor: after cancel() the caller may close its. */
	e->fd = fcntl(m->fd, F_DUPFD_CLOEXEC, 0);
	if (e->fd < 0)
		goto oom;
	e->size = m->size;
	e->prefix_len = m->prefix_len;
	if (m->prefix_len > 0 &&
	    (e->prefix = ptl_pstrndup(pool, m->prefix, m->prefix_len)) == NULL)
		goto oom;
	e->env.from = ptl_pstrdup(pool, m->mail_from);
	if (e->env.from == NULL)
		goto oom;
#define QUEUE_COPY(dst, src)                                                   \
	do {                                                                   \
		if ((src) != NULL &&                                           \
		    ((dst) = ptl_pstrndup(                                     \
		         pool, (src),                                          \
		         strnlen((src), QUEUE_ADDRESS_MAX + 16))) == NULL)     \
			goto oom;                                              \
	} while (0)
	QUEUE_COPY(e->env.envid, m->envid);
	QUEUE_COPY(e->env.auth_user, m->auth_user);
	QUEUE_COPY(e->env.client_ip, m->client_ip);
	for (i = 0; i < m->nrcpts; i++) {
		QUEUE_COPY(rcpts[i].address, m->rcpts[i].address);
		QUEUE_COPY(rcpts[i].orcpt, m->rcpts[i].orcpt);
		rcpts[i].notify = m->rcpts[i].notify & 0xfu;
	}
#undef QUEUE_COPY
	e->env.ret = m->ret;
	e->env.body = m->body;
	e->env.smtputf8 = m->smtputf8;
	e->env.received = m->received_at > 0 ? m->received_at : ptl_wall_time();
	e->env.rcpts = rcpts;
	e->env.nrcpts = m->nrcpts;
	e->next = svc->pending;
	if (e->next != NULL)
		e->next->prevp = &e->next;
	e->prevp = &svc->pending;
	svc->pending = e;
	svc->refs++;
	if (ptl_task_submit(queue_enq_work, queue_enq_done, e) != PTL_OK) {
		svc->refs--;
		svc->pending = e->next;
		if (e->next != NULL)
			e->next->prevp = &svc->pending;
		goto oom;
	}
	return PTL_AGAIN;
oom:
	if (e != NULL && e->fd >= 0)
		(void)close(e->fd);
	free(e);
	ptl_pool_destroy(pool);
	return PTL_ERROR;
}

static void
queue_cancel(void *instance, void *arg)
{
	struct queue_service *svc = instance;
	struct queue_enq *e;

	if (svc == NULL || svc->magic != QUEUE_SVC_MAGIC)
		return;
	for (e = svc->pending; e != NULL; e = e->next)
		if (e->arg == arg)
			e->cancelled = true;
}

static const struct ptl_queue_methods queue_methods = {
    .version = PTL_QUEUE_VERSION,
    .enqueue = queue_enqueue,
    .cancel = queue_cancel,
};

int
queue_service_start(struct ptl_instance *inst, struct queue_conf *conf,
                    struct ptl_error *err)
{
	struct queue_service *svc;
	char why[QUEUE_WHY_MAX];

	if (queue_dirs_create(conf->qdir, why, sizeof(why)) != 0)
		return ptl_error_set(err, "queue: %s", why);
	svc = calloc(1, sizeof(*svc));
	if (svc == NULL)
		return ptl_error_set(err, "out of memory");
	if (queue_spool_open(&svc->spool, conf->qdir, why, sizeof(why)) != 0) {
		free(svc);
		return ptl_error_set(err, "queue: %s", why);
	}
	svc->magic = QUEUE_SVC_MAGIC;
	svc->refs = 1;
	if (ptl_service_register(inst, PTL_QUEUE_SERVICE, PTL_QUEUE_VERSION,
	                         &queue_methods, svc, err) != PTL_OK) {
		queue_service_put(svc);
		return PTL_ERROR;
	}
	queue_svc = svc;
	return PTL_OK;
}

void
queue_service_stop(struct ptl_instance *inst)
{
	if (queue_svc == NULL)
		return;
	/* Tasks still running keep it alive until their completion. */
	queue_service_put(queue_svc);
	queue_svc = NULL;
}
