/* SPDX-License-Identifier: MIT */
/* SQLite delivery: one transaction, the body streamed into a blob. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sqlite_store.h"

/* Row id of @p user, creating the row; and its bytes in use. */
static int
sqlite_user_row(struct sqlite_conn *c, const char *user, int64_t *id_out,
                uint64_t *used_out, struct sqlite_outcome *res, int *rc_out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(c->db,
	                        "SELECT id, used_bytes FROM users "
	                        "WHERE name = ?1",
	                        -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		int64_t used = sqlite3_column_int64(st, 1);

		*id_out = sqlite3_column_int64(st, 0);
		*used_out = used > 0 ? (uint64_t)used : 0;
		sqlite3_finalize(st);
		return PTL_OK;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE)
		goto fail;
	rc = sqlite3_prepare_v2(c->db,
	                        "INSERT INTO users(name, used_bytes) "
	                        "VALUES(?1, 0)",
	                        -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto fail;
	*id_out = sqlite3_last_insert_rowid(c->db);
	*used_out = 0;
	return PTL_OK;

fail:
	*rc_out = rc;
	return sqlite_outcome_db(res, c->db, rc, "user row");
}

/*
 * The next message id, read under the write lock of BEGIN IMMEDIATE.
 * AUTOINCREMENT keeps the high-water mark in sqlite_sequence, so an id
 * (and the uid made of it) is never handed out twice, even after the
 * newest message was expunged. Knowing it before the INSERT lets the
 * row be written once, with its uid, instead of updating a row that
 * already holds a large blob.
 */
static int
sqlite_next_id(struct sqlite_conn *c, int64_t *id_out,
               struct sqlite_outcome *res, int *rc_out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(
	    c->db,
	    "SELECT max(coalesce((SELECT seq FROM sqlite_sequence "
	    "WHERE name = 'messages'), 0), "
	    "coalesce((SELECT max(id) FROM messages), 0)) + 1",
	    -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id_out = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		return PTL_OK;
	}
	sqlite3_finalize(st);
	*rc_out = rc;
	return sqlite_outcome_db(res, c->db, rc, "next id");
}

static int
sqlite_insert_message(struct sqlite_conn *c, struct sqlite_delivery *job,
                      int64_t user_id, int64_t id, uint64_t total, int *rc_out)
{
	char uid[64];
	sqlite3_stmt *st = NULL;
	int rc;

	snprintf(uid, sizeof(uid), "%s.%" PRId64, c->uid_prefix, id);
	rc = sqlite3_prepare_v2(c->db,
	                        "INSERT INTO messages(id, user_id, folder, uid,"
	                        " size, envelope_from, received_at, body) "
	                        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	                        -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 1, id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 2, user_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 3,
		                       job->folder != NULL ? job->folder : "",
		                       -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 4, uid, -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 5, (sqlite3_int64)total);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 6, job->envelope_from, -1,
		                       SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 7, job->received_at);
	/* Room for the body, filled in place below: never whole in memory. */
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_zeroblob64(st, 8, total);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*rc_out = rc;
		return sqlite_outcome_db(&job->res, c->db, rc,
		                         "insert message");
	}
	return PTL_OK;
}

static int
sqlite_write_body(struct sqlite_conn *c, struct sqlite_delivery *job,
                  int64_t id, int *rc_out)
{
	sqlite3_blob *blob = NULL;
	uint64_t off = 0;
	char *buf = NULL;
	int rc;

	rc = sqlite3_blob_open(c->db, "main", "messages", "body", id, 1, &blob);
	if (rc != SQLITE_OK)
		goto db_fail;
	if (job->prefix_len > 0) {
		rc = sqlite3_blob_write(blob, job->prefix, (int)job->prefix_len,
		                        0);
		if (rc != SQLITE_OK)
			goto db_fail;
	}
	buf = malloc(SQLITE_COPY_CHUNK);
	if (buf == NULL) {
		sqlite_outcome_set(&job->res, PTL_STORAGE_TEMPFAIL,
		                   "out of memory");
		goto fail;
	}
	while (off < job->size) {
		size_t want = SQLITE_COPY_CHUNK;
		ssize_t n;

		if (job->size - off < want)
			want = (size_t)(job->size - off);
		n = pread(job->src_fd, buf, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sqlite_outcome_errno(&job->res, errno,
			                     "read message source");
			goto fail;
		}
		if (n == 0) {
			sqlite_outcome_set(&job->res, PTL_STORAGE_TEMPFAIL,
			                   "message source ended after %" PRIu64
			                   " of %" PRIu64 " bytes",
			                   off, job->size);
			goto fail;
		}
		rc = sqlite3_blob_write(blob, buf, (int)n,
		                        (int)(job->prefix_len + off));
		if (rc != SQLITE_OK)
			goto db_fail;
		off += (uint64_t)n;
	}
	free(buf);
	buf = NULL; /* the failure path below frees it too */
	rc = sqlite3_blob_close(blob);
	if (rc != SQLITE_OK) {
		blob = NULL;
		goto db_fail;
	}
	return PTL_OK;

db_fail:
	*rc_out = rc;
	sqlite_outcome_db(&job->res, c->db, rc, "write body");
fail:
	free(buf);
	if (blob != NULL)
		sqlite3_blob_close(blob);
	return PTL_ERROR;
}

static int
sqlite_add_usage(struct sqlite_conn *c, int64_t user_id, uint64_t total,
                 struct sqlite_outcome *res, int *rc_out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(c->db,
	                        "UPDATE users SET used_bytes = used_bytes + ?1 "
	                        "WHERE id = ?2",
	                        -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)total);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 2, user_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*rc_out = rc;
		return sqlite_outcome_db(res, c->db, rc, "usage update");
	}
	return PTL_OK;
}

/*
 * Write one message inside the batch's open transaction: user row, quota,
 * id, row with a zero-filled blob, the body in chunks, the user's usage.
 * The caller wraps it in a savepoint so that a failure undoes just this.
 */
int
sqlite_store_message(struct sqlite_conn *c, struct sqlite_delivery *job,
                     int *rc_out)
{
	uint64_t total = job->size + job->prefix_len, used = 0, limit;
	int64_t user_id = 0, id = 0;

	*rc_out = SQLITE_OK;
	if (sqlite_user_check(job->user, &job->res) != PTL_OK)
		return PTL_ERROR;
	/* Blobs are bounded by SQLITE_MAX_LENGTH (1e9 bytes by default). */
	if (total > (uint64_t)sqlite3_limit(c->db, SQLITE_LIMIT_LENGTH, -1))
		return sqlite_outcome_set(&job->res, PTL_STORAGE_PERMFAIL,
		                          "message of %" PRIu64 " bytes is too "
		                          "large for this database",
		                          total);
	if (sqlite_user_row(c, job->user, &user_id, &used, &job->res, rc_out) !=
	    PTL_OK)
		return PTL_ERROR;
	limit = job->si->conf->quota;
	if (limit > 0 && (total > limit || used > limit - total))
		return sqlite_outcome_set(&job->res, PTL_STORAGE_PERMFAIL,
		                          "mailbox over quota (%" PRIu64
		                          " of %" PRIu64 " bytes used, message "
		                          "is %" PRIu64 ")",
		                          used, limit, total);
	if (sqlite_next_id(c, &id, &job->res, rc_out) != PTL_OK ||
	    sqlite_insert_message(c, job, user_id, id, total, rc_out) !=
	        PTL_OK ||
	    sqlite_write_body(c, job, id, rc_out) != PTL_OK ||
	    sqlite_add_usage(c, user_id, total, &job->res, rc_out) != PTL_OK)
		return PTL_ERROR;
	return PTL_OK;
}

int
sqlite_deliver(void *instance, const struct ptl_storage_delivery *d,
               ptl_storage_done_fn done, void *arg)
{
	struct sqlite_instance *si = instance;
	const char *from = d->envelope_from != NULL ? d->envelope_from : "";
	size_t user_len = strlen(d->user), from_len = strlen(from);
	size_t folder_len = d->folder != NULL ? strlen(d->folder) + 1 : 0;
	struct sqlite_delivery *job;
	char *p;

	if (d->size > UINT64_MAX - d->prefix_len ||
	    d->prefix_len > SQLITE_COPY_CHUNK * 16) {
		errno = EFBIG;
		return PTL_ERROR;
	}
	job = malloc(sizeof(*job) + user_len + 1 + folder_len + from_len + 1 +
	             d->prefix_len);
	if (job == NULL) {
		ptl_log(PTL_LOG_ERROR, "sqlite: delivery: out of memory");
		return PTL_ERROR;
	}
	memset(job, 0, sizeof(*job));
	p = (char *)(job + 1);
	job->user = memcpy(p, d->user, user_len + 1);
	p += user_len + 1;
	if (d->folder != NULL) {
		job->folder = memcpy(p, d->folder, folder_len);
		p += folder_len;
	}
	job->envelope_from = memcpy(p, from, from_len + 1);
	p += from_len + 1;
	job->prefix = p;
	if (d->prefix_len > 0)
		memcpy(p, d->prefix, d->prefix_len);
	job->prefix_len = d->prefix_len;
	job->src_fd = d->fd;
	job->size = d->size;
	job->received_at = d->received_at;
	job->done = done;
	job->arg = arg;
	job->si = si;
	job->res.status = PTL_STORAGE_TEMPFAIL;
	/* One reference for its own task, one for the batch that commits it. */
	job->refs = 2;
	sqlite_instance_ref(si);
	if (ptl_task_submit(sqlite_batch_work, sqlite_batch_done, job) !=
	    PTL_OK) {
		ptl_log(PTL_LOG_ERROR, "sqlite: delivery: cannot queue task");
		sqlite_instance_unref(si);
		free(job);
		return PTL_ERROR;
	}
	return PTL_AGAIN;
}
