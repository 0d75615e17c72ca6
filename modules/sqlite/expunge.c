/* SPDX-License-Identifier: MIT */
/* SQLite expunge: every chosen message goes in one transaction. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_store.h"

struct sqlite_expunge_item {
	size_t index;
	int64_t id;
	uint64_t size;
};

struct sqlite_expunge_job {
	struct ptl_mailbox *mb;
	ptl_storage_done_fn done;
	void *arg;
	size_t n;
	struct sqlite_outcome res;
	struct sqlite_expunge_item items[];
};

static int
sqlite_expunge_rows(struct sqlite_conn *c, struct sqlite_expunge_job *job,
                    int *rc_out)
{
	sqlite3_stmt *del = NULL, *upd = NULL;
	uint64_t freed = 0;
	int rc;

	rc = sqlite3_prepare_v2(c->db,
	                        "DELETE FROM messages "
	                        "WHERE id = ?1 AND user_id = ?2",
	                        -1, &del, NULL);
	for (size_t i = 0; rc == SQLITE_OK && i < job->n; i++) {
		rc = sqlite3_bind_int64(del, 1, job->items[i].id);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_int64(del, 2, job->mb->user_id);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(del);
		if (rc != SQLITE_DONE)
			break;
		/* 0 changes: already gone (a duplicate index); not freed twice.
		 */
		if (sqlite3_changes(c->db) > 0)
			freed += job->items[i].size;
		rc = sqlite3_reset(del);
	}
	sqlite3_finalize(del);
	if (rc == SQLITE_OK || rc == SQLITE_DONE)
		rc = sqlite3_prepare_v2(c->db,
		                        "UPDATE users SET used_bytes = "
		                        "max(0, used_bytes - ?1) WHERE id = ?2",
		                        -1, &upd, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(upd, 1, (sqlite3_int64)freed);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(upd, 2, job->mb->user_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(upd);
	sqlite3_finalize(upd);
	if (rc != SQLITE_DONE) {
		*rc_out = rc;
		return sqlite_outcome_db(&job->res, c->db, rc, "delete");
	}
	return PTL_OK;
}

static void
sqlite_expunge_work(void *arg)
{
	struct sqlite_expunge_job *job = arg;
	struct sqlite_conn *c;
	int rc = SQLITE_OK;

	c = sqlite_conn_get(job->mb->si, &job->res);
	if (c == NULL)
		return;
	rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sqlite_outcome_db(&job->res, c->db, rc, "begin");
		goto out;
	}
	if (sqlite_expunge_rows(c, job, &rc) != PTL_OK)
		goto out;
	rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sqlite_outcome_db(&job->res, c->db, rc, "commit");
		goto out;
	}
	job->res.status = PTL_STORAGE_OK;

out:
	/* A failed transaction removes nothing: all or none. */
	if (!sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite_conn_put(job->mb->si, c, sqlite_rc_healthy(rc));
}

static void
sqlite_expunge_done(void *arg)
{
	struct sqlite_expunge_job *job = arg;
	struct ptl_storage_result res = {job->res.status, job->res.reason};
	struct ptl_mailbox *mb = job->mb;

	if (res.status == PTL_STORAGE_OK) {
		for (size_t i = 0; i < job->n; i++)
			mb->expunged[job->items[i].index] = true;
		res.reason = "expunged";
	} else {
		sqlite_log_failure("expunge for", mb->user, &job->res);
	}
	job->done(&res, job->arg);
	free(job);
	sqlite_mailbox_release(mb);
}

int
sqlite_expunge(struct ptl_mailbox *mb, const size_t *indexes, size_t n,
               ptl_storage_done_fn done, void *arg)
{
	struct sqlite_expunge_job *job;
	size_t k = 0;

	if (mb->closing ||
	    n > (SIZE_MAX - sizeof(*job)) / sizeof(job->items[0])) {
		errno = EINVAL;
		return PTL_ERROR;
	}
	for (size_t i = 0; i < n; i++) {
		if (indexes[i] >= mb->count) {
			errno = EINVAL;
			return PTL_ERROR;
		}
	}
	job = calloc(1, sizeof(*job) + n * sizeof(job->items[0]));
	if (job == NULL) {
		ptl_log(PTL_LOG_ERROR, "sqlite: expunge: out of memory");
		return PTL_ERROR;
	}
	for (size_t i = 0; i < n; i++) {
		if (mb->expunged[indexes[i]])
			continue;
		job->items[k].index = indexes[i];
		job->items[k].id = mb->ids[indexes[i]];
		job->items[k].size = mb->msgs[indexes[i]].size;
		k++;
	}
	job->n = k;
	job->mb = mb;
	job->done = done;
	job->arg = arg;
	job->res.status = PTL_STORAGE_TEMPFAIL;
	if (ptl_task_submit(sqlite_expunge_work, sqlite_expunge_done, job) !=
	    PTL_OK) {
		ptl_log(PTL_LOG_ERROR, "sqlite: expunge: cannot queue task");
		free(job);
		return PTL_ERROR;
	}
	mb->busy++;
	return PTL_AGAIN;
}
