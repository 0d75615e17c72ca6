/* SPDX-License-Identifier: MIT */
/* SQLite quota: the per-user byte count kept up to date by each change. */
#include <stdlib.h>
#include <string.h>

#include "sqlite_store.h"

struct sqlite_quota_job {
	struct sqlite_instance *si;
	ptl_storage_quota_fn done;
	void *arg;
	uint64_t used;
	struct sqlite_outcome res;
	char user[];
};

static void
sqlite_quota_work(void *arg)
{
	struct sqlite_quota_job *job = arg;
	sqlite3_stmt *st = NULL;
	struct sqlite_conn *c;
	int rc;

	if (sqlite_user_check(job->user, &job->res) != PTL_OK)
		return;
	c = sqlite_conn_get(job->si, &job->res);
	if (c == NULL)
		return;
	rc = sqlite3_prepare_v2(c->db,
	                        "SELECT used_bytes FROM users WHERE name = ?1",
	                        -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 1, job->user, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		int64_t used = sqlite3_column_int64(st, 0);

		job->used = used > 0 ? (uint64_t)used : 0;
		rc = SQLITE_DONE;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		job->res.status = PTL_STORAGE_OK;
	else
		sqlite_outcome_db(&job->res, c->db, rc, "quota");
	sqlite_conn_put(job->si, c, sqlite_rc_healthy(rc));
}

static void
sqlite_quota_done(void *arg)
{
	struct sqlite_quota_job *job = arg;
	struct ptl_storage_result res = {job->res.status, job->res.reason};

	if (res.status != PTL_STORAGE_OK)
		sqlite_log_failure("quota of", job->user, &job->res);
	else
		res.reason = "ok";
	job->done(&res, job->used, job->si->conf->quota, job->arg);
	sqlite_instance_unref(job->si);
	free(job);
}

int
sqlite_quota(void *instance, const char *user, ptl_storage_quota_fn done,
             void *arg)
{
	struct sqlite_instance *si = instance;
	size_t len = strlen(user);
	struct sqlite_quota_job *job;

	job = calloc(1, sizeof(*job) + len + 1);
	if (job == NULL) {
		ptl_log(PTL_LOG_ERROR, "sqlite: quota: out of memory");
		return PTL_ERROR;
	}
	memcpy(job->user, user, len + 1);
	job->si = si;
	job->done = done;
	job->arg = arg;
	job->res.status = PTL_STORAGE_TEMPFAIL;
	sqlite_instance_ref(si);
	if (ptl_task_submit(sqlite_quota_work, sqlite_quota_done, job) !=
	    PTL_OK) {
		ptl_log(PTL_LOG_ERROR, "sqlite: quota: cannot queue task");
		sqlite_instance_unref(si);
		free(job);
		return PTL_ERROR;
	}
	return PTL_AGAIN;
}
