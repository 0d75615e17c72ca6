/* SPDX-License-Identifier: MIT */
/* Opened SQLite mailbox: lock, snapshot of row ids, reading into a memfd. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "sqlite_store.h"

struct sqlite_open_job {
	struct sqlite_instance *si;
	unsigned flags;
	ptl_storage_open_fn done;
	void *arg;
	struct ptl_mailbox *mb;
	struct sqlite_outcome res;
};

struct sqlite_read_job {
	struct ptl_mailbox *mb;
	int64_t id;
	uint64_t size;
	ptl_storage_read_fn done;
	void *arg;
	int fd;
	struct sqlite_outcome res;
};

static void
sqlite_mailbox_free(struct ptl_mailbox *mb)
{
	if (mb == NULL)
		return;
	if (mb->msgs != NULL)
		for (size_t i = 0; i < mb->count; i++)
			free((char *)mb->msgs[i].uid);
	free(mb->msgs);
	free(mb->ids);
	free(mb->expunged);
	if (mb->lock_fd >= 0)
		close(mb->lock_fd);
	free(mb->user);
	if (mb->si != NULL)
		sqlite_instance_unref(mb->si);
	free(mb);
}

static int
sqlite_snapshot_grow(struct ptl_mailbox *mb, size_t *cap)
{
	size_t ncap = *cap == 0 ? 64 : *cap * 2;
	struct ptl_storage_msg *msgs;
	int64_t *ids;

	ids = realloc(mb->ids, ncap * sizeof(*ids));
	if (ids == NULL)
		return PTL_ERROR;
	mb->ids = ids;
	msgs = realloc(mb->msgs, ncap * sizeof(*msgs));
	if (msgs == NULL)
		return PTL_ERROR;
	mb->msgs = msgs;
	*cap = ncap;
	return PTL_OK;
}

/* The user's inbox rows, oldest first, read in one transaction. */
static int
sqlite_snapshot(struct sqlite_conn *c, struct ptl_mailbox *mb,
                struct sqlite_outcome *res, int *rc_out)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc;

	rc = sqlite3_prepare_v2(c->db,
	                        "SELECT m.id, m.uid, m.size, u.id "
	                        "FROM users u JOIN messages m "
	                        "ON m.user_id = u.id AND m.folder = '' "
	                        "WHERE u.name = ?1 ORDER BY m.id",
	                        -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 1, mb->user, -1, SQLITE_STATIC);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *uid = sqlite3_column_text(st, 1);
		int64_t size = sqlite3_column_int64(st, 2);

		rc = SQLITE_OK;
		if (mb->count == SQLITE_SNAPSHOT_MAX) {
			ptl_log(PTL_LOG_WARN,
			        "sqlite: mailbox holds more than %u messages; "
			        "listing only the oldest",
			        (unsigned)SQLITE_SNAPSHOT_MAX);
			rc = SQLITE_DONE;
			break;
		}
		if (mb->count == cap &&
		    sqlite_snapshot_grow(mb, &cap) != PTL_OK) {
			sqlite3_finalize(st);
			return sqlite_outcome_set(res, PTL_STORAGE_TEMPFAIL,
			                          "out of memory");
		}
		mb->ids[mb->count] = sqlite3_column_int64(st, 0);
		mb->msgs[mb->count].size = size > 0 ? (uint64_t)size : 0;
		mb->msgs[mb->count].uid =
		    strdup(uid != NULL ? (const char *)uid : "0");
		if (mb->msgs[mb->count].uid == NULL) {
			sqlite3_finalize(st);
			return sqlite_outcome_set(res, PTL_STORAGE_TEMPFAIL,
			                          "out of memory");
		}
		mb->user_id = sqlite3_column_int64(st, 3);
		mb->count++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*rc_out = rc;
		return sqlite_outcome_db(res, c->db, rc, "snapshot");
	}
	mb->expunged = calloc(mb->count > 0 ? mb->count : 1, 1);
	if (mb->expunged == NULL)
		return sqlite_outcome_set(res, PTL_STORAGE_TEMPFAIL,
		                          "out of memory");
	return PTL_OK;
}

static void
sqlite_open_work(void *arg)
{
	struct sqlite_open_job *job = arg;
	struct ptl_mailbox *mb = job->mb;
	struct sqlite_conn *c;
	int rc = SQLITE_OK;

	if (sqlite_user_check(mb->user, &job->res) != PTL_OK)
		return;
	/* Lock first: the snapshot must not race a concurrent expunge. */
	if ((job->flags & PTL_STORAGE_LOCK) != 0 &&
	    sqlite_lock(job->si->conf->path, mb->user, &mb->lock_fd,
	                &job->res) != PTL_OK)
		return;
	c = sqlite_conn_get(job->si, &job->res);
	if (c == NULL)
		return;
	if (sqlite_snapshot(c, mb, &job->res, &rc) == PTL_OK)
		job->res.status = PTL_STORAGE_OK;
	sqlite_conn_put(job->si, c, sqlite_rc_healthy(rc));
}

static void
sqlite_open_done(void *arg)
{
	struct sqlite_open_job *job = arg;
	struct ptl_storage_result res = {job->res.status, job->res.reason};
	struct ptl_mailbox *mb = job->mb;

	if (res.status != PTL_STORAGE_OK) {
		sqlite_log_failure("open of", mb->user, &job->res);
		sqlite_mailbox_free(mb);
		mb = NULL;
	} else {
		res.reason = "opened";
	}
	job->done(&res, mb, job->arg);
	sqlite_instance_unref(job->si);
	free(job);
}

int
sqlite_open(void *instance, const char *user, unsigned flags,
            ptl_storage_open_fn done, void *arg)
{
	struct sqlite_instance *si = instance;
	struct sqlite_open_job *job;
	struct ptl_mailbox *mb;

	job = calloc(1, sizeof(*job));
	mb = calloc(1, sizeof(*mb));
	if (job == NULL || mb == NULL || (mb->user = strdup(user)) == NULL) {
		ptl_log(PTL_LOG_ERROR, "sqlite: open: out of memory");
		free(job);
		free(mb);
		return PTL_ERROR;
	}
	mb->lock_fd = -1;
	mb->si = si;
	sqlite_instance_ref(si);
	sqlite_instance_ref(si);
	job->si = si;
	job->mb = mb;
	job->flags = flags;
	job->done = done;
	job->arg = arg;
	job->res.status = PTL_STORAGE_TEMPFAIL;
	if (ptl_task_submit(sqlite_open_work, sqlite_open_done, job) !=
	    PTL_OK) {
		ptl_log(PTL_LOG_ERROR, "sqlite: open: cannot queue task");
		sqlite_mailbox_free(mb);
		sqlite_instance_unref(si);
		free(job);
		return PTL_ERROR;
	}
	return PTL_AGAIN;
}

size_t
sqlite_count(struct ptl_mailbox *mb)
{
	return mb->count;
}

const struct ptl_storage_msg *
sqlite_message(struct ptl_mailbox *mb, size_t index)
{
	return index < mb->count ? &mb->msgs[index] : NULL;
}

static int
sqlite_fd_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return PTL_ERROR;
		}
		buf += n;
		len -= (size_t)n;
	}
	return PTL_OK;
}

/*
 * Callers want an fd, a blob is not one: the message is copied in
 * bounded chunks into an anonymous memory file. That costs one copy and
 * the message's size in memory (shmem) while the reader holds the fd.
 */
static void
sqlite_read_work(void *arg)
{
	struct sqlite_read_job *job = arg;
	struct ptl_mailbox *mb = job->mb;
	sqlite3_blob *blob = NULL;
	struct sqlite_conn *c;
	char *buf = NULL;
	int rc = SQLITE_OK, len, off = 0;

	if (job->res.status == PTL_STORAGE_PERMFAIL)
		return;
	c = sqlite_conn_get(mb->si, &job->res);
	if (c == NULL)
		return;
	/* The blob handle holds a read transaction: a consistent copy. */
	rc = sqlite3_blob_open(c->db, "main", "messages", "body", job->id, 0,
	                       &blob);
	if (rc == SQLITE_ERROR) {
		sqlite_outcome_set(&job->res, PTL_STORAGE_PERMFAIL,
		                   "message no longer exists (%s)",
		                   sqlite3_errmsg(c->db));
		rc = SQLITE_OK;
		goto out;
	}
	if (rc != SQLITE_OK) {
		sqlite_outcome_db(&job->res, c->db, rc, "open blob");
		goto out;
	}
	len = sqlite3_blob_bytes(blob);
	buf = malloc(SQLITE_COPY_CHUNK);
	job->fd = memfd_create("petrel-message", MFD_CLOEXEC);
	if (buf == NULL || job->fd < 0) {
		sqlite_outcome_errno(&job->res, buf == NULL ? ENOMEM : errno,
		                     "memfd_create");
		goto out;
	}
	while (off < len) {
		int n = len - off < SQLITE_COPY_CHUNK ? len - off
		                                      : SQLITE_COPY_CHUNK;

		rc = sqlite3_blob_read(blob, buf, n, off);
		if (rc != SQLITE_OK) {
			sqlite_outcome_db(&job->res, c->db, rc, "read blob");
			goto out;
		}
		if (sqlite_fd_write_all(job->fd, buf, (size_t)n) != PTL_OK) {
			sqlite_outcome_errno(&job->res, errno,
			                     "write message copy");
			goto out;
		}
		off += n;
	}
	if (lseek(job->fd, 0, SEEK_SET) != 0) {
		sqlite_outcome_errno(&job->res, errno, "lseek");
		goto out;
	}
	job->res.status = PTL_STORAGE_OK;

out:
	free(buf);
	if (blob != NULL)
		sqlite3_blob_close(blob);
	if (job->res.status != PTL_STORAGE_OK && job->fd >= 0) {
		close(job->fd);
		job->fd = -1;
	}
	sqlite_conn_put(mb->si, c, sqlite_rc_healthy(rc));
}

void
sqlite_mailbox_release(struct ptl_mailbox *mb)
{
	if (--mb->busy == 0 && mb->closing)
		sqlite_mailbox_free(mb);
}

static void
sqlite_read_done(void *arg)
{
	struct sqlite_read_job *job = arg;
	struct ptl_storage_result res = {job->res.status, job->res.reason};
	struct ptl_mailbox *mb = job->mb;

	if (res.status != PTL_STORAGE_OK)
		sqlite_log_failure("read for", mb->user, &job->res);
	else
		res.reason = "opened";
	job->done(&res, res.status == PTL_STORAGE_OK ? job->fd : -1, job->arg);
	free(job);
	sqlite_mailbox_release(mb);
}

int
sqlite_read(struct ptl_mailbox *mb, size_t index, ptl_storage_read_fn done,
            void *arg)
{
	struct sqlite_read_job *job;

	if (index >= mb->count || mb->closing) {
		errno = EINVAL;
		return PTL_ERROR;
	}
	job = calloc(1, sizeof(*job));
	if (job == NULL) {
		ptl_log(PTL_LOG_ERROR, "sqlite: read: out of memory");
		return PTL_ERROR;
	}
	job->mb = mb;
	job->id = mb->ids[index];
	job->size = mb->msgs[index].size;
	job->done = done;
	job->arg = arg;
	job->fd = -1;
	job->res.status = PTL_STORAGE_TEMPFAIL;
	if (mb->expunged[index])
		sqlite_outcome_set(&job->res, PTL_STORAGE_PERMFAIL,
		                   "message was expunged");
	if (ptl_task_submit(sqlite_read_work, sqlite_read_done, job) !=
	    PTL_OK) {
		ptl_log(PTL_LOG_ERROR, "sqlite: read: cannot queue task");
		free(job);
		return PTL_ERROR;
	}
	mb->busy++;
	return PTL_AGAIN;
}

void
sqlite_close(struct ptl_mailbox *mb)
{
	if (mb == NULL)
		return;
	/* Callers wait for their completions; be safe if one did not. */
	if (mb->busy > 0) {
		mb->closing = true;
		return;
	}
	sqlite_mailbox_free(mb);
}
