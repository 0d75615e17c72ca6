/* SPDX-License-Identifier: MIT */
/* SQLite group commit: concurrent deliveries share one transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_store.h"

/*
 * Each commit costs an fsync of the WAL, and only one writer runs at a
 * time, so deliveries arriving together are written in one transaction
 * and made durable by one commit. Every delivery task puts its request
 * in the instance's queue. If no task is writing, it becomes the leader:
 * it takes a bounded batch from the queue, writes each message inside a
 * savepoint (a failure undoes only that message), commits, and reports
 * the batch from its completion on the loop. A task that finds a leader
 * at work returns at once, freeing its pool thread; its request waits in
 * the queue. When a leader's completion sees requests left and no
 * leader, it queues a flush task that leads the next batch. A delivery
 * is reported OK only after the COMMIT that contains it succeeded.
 */

static void
sqlite_batch_fail(struct sqlite_delivery *batch,
                  const struct sqlite_outcome *why)
{
	/* Written ones are undone; untouched ones never ran; failed ones keep
	 * their own reason. */
	for (struct sqlite_delivery *j = batch; j != NULL; j = j->next) {
		if (j->staged || j->res.reason[0] == '\0') {
			j->res = *why;
			j->staged = false;
		}
	}
}

/* Undo a failed message inside the transaction; false: it is gone. */
static bool
sqlite_batch_undo_one(struct sqlite_conn *c, struct sqlite_delivery *j,
                      struct sqlite_outcome *why)
{
	int rc;

	if (sqlite3_get_autocommit(c->db)) {
		/* SQLite rolled everything back (disk full, I/O error). */
		sqlite_outcome_set(why, PTL_STORAGE_TEMPFAIL,
		                   "delivery batch rolled back: %s",
		                   j->res.reason);
		return false;
	}
	rc = sqlite3_exec(c->db,
	                  "ROLLBACK TO petrel_delivery;"
	                  "RELEASE petrel_delivery",
	                  NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sqlite_outcome_db(why, c->db, rc, "rollback to savepoint");
		return false;
	}
	return true;
}

static void
sqlite_batch_commit(struct sqlite_instance *si, struct sqlite_delivery *batch)
{
	struct sqlite_outcome why = {PTL_STORAGE_TEMPFAIL, ""};
	struct sqlite_delivery *j;
	struct sqlite_conn *c;
	bool healthy = true;
	int rc;

	c = sqlite_conn_get(si, &why);
	if (c == NULL) {
		sqlite_batch_fail(batch, &why);
		return;
	}
	/* IMMEDIATE: take the write lock now, not on the first write. */
	rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sqlite_outcome_db(&why, c->db, rc, "begin");
		healthy = sqlite_rc_healthy(rc);
		goto abort;
	}
	for (j = batch; j != NULL; j = j->next) {
		rc = sqlite3_exec(c->db, "SAVEPOINT petrel_delivery", NULL,
		                  NULL, NULL);
		if (rc != SQLITE_OK) {
			sqlite_outcome_db(&why, c->db, rc, "savepoint");
			healthy = sqlite_rc_healthy(rc);
			goto abort;
		}
		if (sqlite_store_message(c, j, &rc) == PTL_OK) {
			rc = sqlite3_exec(c->db, "RELEASE petrel_delivery",
			                  NULL, NULL, NULL);
			if (rc == SQLITE_OK) {
				j->staged = true;
				continue;
			}
			sqlite_outcome_db(&j->res, c->db, rc, "release");
		}
		if (!sqlite_rc_healthy(rc))
			healthy = false;
		if (!sqlite_batch_undo_one(c, j, &why))
			goto abort;
	}
	rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sqlite_outcome_db(&why, c->db, rc, "commit");
		healthy = healthy && sqlite_rc_healthy(rc);
		goto abort;
	}
	for (j = batch; j != NULL; j = j->next) {
		if (j->staged) {
			j->res.status = PTL_STORAGE_OK;
			j->res.reason[0] = '\0';
		}
	}
	sqlite_conn_put(si, c, healthy);
	return;

abort:
	/* Nothing of the batch stays: the whole transaction goes. */
	if (!sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite_batch_fail(batch, &why);
	sqlite_conn_put(si, c, healthy);
}

void
sqlite_batch_work(void *arg)
{
	struct sqlite_delivery *job = arg, *batch = NULL, **tail = &batch;
	struct sqlite_instance *si = job->si;
	uint64_t bytes = 0;
	size_t n = 0;

	pthread_mutex_lock(&si->batch_lock);
	if (!job->is_flush) {
		job->next = NULL;
		if (si->queue_tail != NULL)
			si->queue_tail->next = job;
		else
			si->queue_head = job;
		si->queue_tail = job;
	}
	/* From here on, @job may be another leader's; do not touch it. */
	if (si->leader || si->queue_head == NULL) {
		pthread_mutex_unlock(&si->batch_lock);
		return;
	}
	si->leader = true;
	while (si->queue_head != NULL && n < SQLITE_BATCH_MAX) {
		struct sqlite_delivery *j = si->queue_head;
		uint64_t size = j->size + j->prefix_len;

		if (n > 0 && size > SQLITE_BATCH_BYTES - bytes)
			break;
		si->queue_head = j->next;
		if (si->queue_head == NULL)
			si->queue_tail = NULL;
		j->next = NULL;
		*tail = j;
		tail = &j->next;
		bytes += size < SQLITE_BATCH_BYTES ? size : SQLITE_BATCH_BYTES;
		n++;
	}
	pthread_mutex_unlock(&si->batch_lock);

	sqlite_batch_commit(si, batch);

	pthread_mutex_lock(&si->batch_lock);
	si->leader = false;
	pthread_mutex_unlock(&si->batch_lock);
	/* Our own task's reference keeps @job alive until our completion. */
	job->batch = batch;
}

void
sqlite_delivery_unref(struct sqlite_delivery *job)
{
	if (--job->refs > 0)
		return;
	sqlite_instance_unref(job->si);
	free(job);
}

static void
sqlite_batch_flush(struct sqlite_instance *si)
{
	struct sqlite_delivery *flush = calloc(1, sizeof(*flush));

	if (flush != NULL) {
		flush->si = si;
		flush->is_flush = true;
		flush->refs = 1;
		sqlite_instance_ref(si);
		if (ptl_task_submit(sqlite_batch_work, sqlite_batch_done,
		                    flush) == PTL_OK)
			return;
		sqlite_instance_unref(si);
		free(flush);
	}
	/* They are not lost: the next delivery leads a batch with them. */
	ptl_log(PTL_LOG_ERROR, "sqlite: cannot queue a commit task; waiting "
	                       "deliveries go with the next one");
}

static void
sqlite_batch_report(struct sqlite_delivery *j)
{
	struct ptl_storage_result res = {j->res.status, j->res.reason};

	if (res.status != PTL_STORAGE_OK)
		sqlite_log_failure("delivery to", j->user, &j->res);
	else
		res.reason = "delivered";
	j->done(&res, j->arg);
}

void
sqlite_batch_done(void *arg)
{
	struct sqlite_delivery *job = arg, *j, *next;
	struct sqlite_instance *si = job->si;
	bool leftovers;

	for (j = job->batch; j != NULL; j = next) {
		next = j->next;
		sqlite_batch_report(j);
		sqlite_delivery_unref(j);
	}
	job->batch = NULL;
	/*
	 * Requests queued while this task led a batch wait for a leader;
	 * one that arrives after the leader finished leads itself.
	 */
	pthread_mutex_lock(&si->batch_lock);
	leftovers = si->queue_head != NULL && !si->leader;
	pthread_mutex_unlock(&si->batch_lock);
	if (leftovers)
		sqlite_batch_flush(si);
	sqlite_delivery_unref(job);
}
