/* SPDX-License-Identifier: MIT */
/* Durable writes to the spool: group fsync, writers, removal, requests. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "queue_spool.h"

#define QUEUE_COPY_CHUNK ((size_t)64 * 1024)
#define QUEUE_FILE_MODE  0600

int
queue_dirsync_init(struct queue_dirsync *ds, const char *path)
{
	memset(ds, 0, sizeof(*ds));
	ds->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ds->fd < 0)
		return -1;
	if (pthread_mutex_init(&ds->lock, NULL) != 0) {
		(void)close(ds->fd);
		ds->fd = -1;
		errno = ENOMEM;
		return -1;
	}
	if (pthread_cond_init(&ds->changed, NULL) != 0) {
		pthread_mutex_destroy(&ds->lock);
		(void)close(ds->fd);
		ds->fd = -1;
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void
queue_dirsync_fini(struct queue_dirsync *ds)
{
	if (ds->fd < 0)
		return;
	pthread_cond_destroy(&ds->changed);
	pthread_mutex_destroy(&ds->lock);
	(void)close(ds->fd);
	ds->fd = -1;
}

int
queue_dirsync_commit(struct queue_dirsync *ds)
{
	uint64_t ticket, target;
	int result = 0, rc;

	pthread_mutex_lock(&ds->lock);
	ticket = ++ds->tickets;
	while (ds->synced < ticket) {
		if (ds->syncing) {
			pthread_cond_wait(&ds->changed, &ds->lock);
			continue;
		}
		/* Everything up to target changed before this fsync starts. */
		ds->syncing = true;
		target = ds->tickets;
		pthread_mutex_unlock(&ds->lock);
		rc = fsync(ds->fd) == 0 ? 0 : errno;
		pthread_mutex_lock(&ds->lock);
		ds->syncing = false;
		pthread_cond_broadcast(&ds->changed);
		if (rc != 0) {
			/* The waiters try with their own fsync. */
			result = rc;
			break;
		}
		if (target > ds->synced)
			ds->synced = target;
	}
	pthread_mutex_unlock(&ds->lock);
	return result;
}

int
queue_spool_open(struct queue_spool *sp, const char *qdir, char *why,
                 size_t why_size)
{
	char path[4096];

	memset(sp, 0, sizeof(*sp));
	sp->msg_sync.fd = sp->state_sync.fd = -1;
	sp->qdir = strdup(qdir);
	if (sp->qdir == NULL)
		return queue_why(why, why_size, "out of memory");
	if (!queue_path(path, sizeof(path), qdir, "msg", NULL) ||
	    queue_dirsync_init(&sp->msg_sync, path) != 0) {
		queue_why(why, why_size, "cannot open %s: %s", path,
		          strerror(errno));
		queue_spool_close(sp);
		return -1;
	}
	if (!queue_path(path, sizeof(path), qdir, "state", NULL) ||
	    queue_dirsync_init(&sp->state_sync, path) != 0) {
		queue_why(why, why_size, "cannot open %s: %s", path,
		          strerror(errno));
		queue_spool_close(sp);
		return -1;
	}
	return 0;
}

void
queue_spool_close(struct queue_spool *sp)
{
	queue_dirsync_fini(&sp->msg_sync);
	queue_dirsync_fini(&sp->state_sync);
	free(sp->qdir);
	sp->qdir = NULL;
}

int
queue_writer_open(struct queue_writer *w, struct queue_spool *sp, char *why,
                  size_t why_size)
{
	char path[4096];

	memset(w, 0, sizeof(*w));
	w->sp = sp;
	queue_id_make(w->id);
	if (!queue_path(path, sizeof(path), sp->qdir, "tmp", w->id))
		return queue_why(why, why_size, "path too long");
	w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY,
	             QUEUE_FILE_MODE);
	if (w->fd < 0)
		return queue_why(why, why_size, "cannot create %s: %s", path,
		                 strerror(errno));
	return 0;
}

static int
queue_write_all(int fd, const void *p, size_t len)
{
	const char *s = p;
	ssize_t n;

	while (len > 0) {
		n = write(fd, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

int
queue_writer_write(struct queue_writer *w, const void *p, size_t len, char *why,
                   size_t why_size)
{
	if (queue_write_all(w->fd, p, len) != 0)
		return queue_why(why, why_size, "write: %s", strerror(errno));
	w->body_size += len;
	return 0;
}

int
queue_writer_copy(struct queue_writer *w, int fd, uint64_t size, char *why,
                  size_t why_size)
{
	uint64_t off = 0;
	size_t chunk;
	char *buf;
	int rc = 0;

	buf = malloc(QUEUE_COPY_CHUNK);
	if (buf == NULL)
		return queue_why(why, why_size, "out of memory");
	while (off < size) {
		chunk = size - off < QUEUE_COPY_CHUNK ? (size_t)(size - off)
		                                      : QUEUE_COPY_CHUNK;
		if (queue_pread_all(fd, buf, chunk, off) != 0) {
			rc = queue_why(why, why_size, "reading the message: %s",
			               errno == ENODATA ? "shorter than "
			                                  "announced"
			                                : strerror(errno));
			break;
		}
		if (queue_writer_write(w, buf, chunk, why, why_size) != 0) {
			rc = -1;
			break;
		}
		off += chunk;
	}
	free(buf);
	return rc;
}

void
queue_writer_abort(struct queue_writer *w)
{
	char path[4096];

	if (w->fd >= 0)
		(void)close(w->fd);
	w->fd = -1;
	if (queue_path(path, sizeof(path), w->sp->qdir, "tmp", w->id))
		(void)unlink(path);
}

/* rename() that never replaces: an id collision must not lose mail. */
static int
queue_rename_new(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* File systems without RENAME_NOREPLACE: link fails on EEXIST. */
	if (link(from, to) != 0)
		return -1;
	(void)unlink(from);
	return 0;
}

int
queue_writer_commit(struct queue_writer *w, struct queue_env *env, char *why,
                    size_t why_size)
{
	char trailer[QUEUE_TRAILER_LEN + 1], from[4096], to[4096];
	struct qrec_buf b;
	int err;

	memcpy(env->id, w->id, sizeof(env->id));
	env->body_size = w->body_size;
	qrec_buf_init(&b, QUEUE_ENVELOPE_MAX);
	queue_env_encode(env, &b);
	if (b.failed) {
		qrec_buf_free(&b);
		queue_writer_abort(w);
		return queue_why(why, why_size,
		                 "envelope too large or out of memory");
	}
	queue_trailer_format(trailer, w->body_size, (uint32_t)b.len,
	                     qrec_crc32(0, b.data, b.len));
	if (queue_write_all(w->fd, b.data, b.len) != 0 ||
	    queue_write_all(w->fd, trailer, QUEUE_TRAILER_LEN) != 0) {
		err = errno;
		qrec_buf_free(&b);
		queue_writer_abort(w);
		return queue_why(why, why_size, "write: %s", strerror(err));
	}
	qrec_buf_free(&b);
	if (fsync(w->fd) != 0) {
		err = errno;
		queue_writer_abort(w);
		return queue_why(why, why_size, "fsync: %s", strerror(err));
	}
	if (close(w->fd) != 0) {
		err = errno;
		w->fd = -1;
		queue_writer_abort(w);
		return queue_why(why, why_size, "close: %s", strerror(err));
	}
	w->fd = -1;
	if (!queue_path(from, sizeof(from), w->sp->qdir, "tmp", w->id) ||
	    !queue_path(to, sizeof(to), w->sp->qdir, "msg", w->id)) {
		queue_writer_abort(w);
		return queue_why(why, why_size, "path too long");
	}
	if (queue_rename_new(from, to) != 0) {
		err = errno;
		queue_writer_abort(w);
		return queue_why(why, why_size, "rename into msg/: %s",
		                 strerror(err));
	}
	err = queue_dirsync_commit(&w->sp->msg_sync);
	if (err != 0) {
		/*
		 * The name may or may not survive a crash: do not promise
		 * it. Removing it keeps the caller's 4xx truthful.
		 */
		(void)unlink(to);
		return queue_why(why, why_size, "fsync of msg/: %s",
		                 strerror(err));
	}
	return 0;
}

int
queue_state_append(struct queue_spool *sp, const char *id, const void *data,
                   size_t len, uint64_t truncate_to, char *why, size_t why_size)
{
	bool created = false;
	char path[4096];
	int fd, err;

	if (!queue_path(path, sizeof(path), sp->qdir, "state", id))
		return queue_why(why, why_size, "path too long");
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		/*
		 * Jobs for two destinations of one message can both get here:
		 * no O_EXCL, or the second would fail and its results would
		 * never reach the disk. Both sync the directory, since the
		 * other's create may not be durable yet.
		 */
		fd =
		    open(path,
		         O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		         QUEUE_FILE_MODE);
		created = fd >= 0;
	}
	if (fd < 0)
		return queue_why(why, why_size, "open %s: %s", path,
		                 strerror(errno));
	if (truncate_to != UINT64_MAX &&
	    ftruncate(fd, (off_t)truncate_to) != 0) {
		err = errno;
		(void)close(fd);
		return queue_why(why, why_size, "truncate %s: %s", path,
		                 strerror(err));
	}
	/* One write: concurrent appends of other jobs never interleave. */
	if (queue_write_all(fd, data, len) != 0 || fdatasync(fd) != 0) {
		err = errno;
		(void)close(fd);
		return queue_why(why, why_size, "write %s: %s", path,
		                 strerror(err));
	}
	if (close(fd) != 0)
		return queue_why(why, why_size, "close %s: %s", path,
		                 strerror(errno));
	if (created && (err = queue_dirsync_commit(&sp->state_sync)) != 0)
		return queue_why(why, why_size, "fsync of state/: %s",
		                 strerror(err));
	return 0;
}

int
queue_state_truncate(const char *qdir, const char *id, uint64_t len, char *why,
                     size_t why_size)
{
	char path[4096];
	int fd, err;

	if (!queue_path(path, sizeof(path), qdir, "state", id))
		return queue_why(why, why_size, "path too long");
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return queue_why(why, why_size, "open %s: %s", path,
		                 strerror(errno));
	if (ftruncate(fd, (off_t)len) != 0 || fdatasync(fd) != 0) {
		err = errno;
		(void)close(fd);
		return queue_why(why, why_size, "truncate %s: %s", path,
		                 strerror(err));
	}
	(void)close(fd);
	return 0;
}

int
queue_msg_remove(struct queue_spool *sp, const char *id, char *why,
                 size_t why_size)
{
	char path[4096];
	int err;

	if (!queue_path(path, sizeof(path), sp->qdir, "msg", id))
		return queue_why(why, why_size, "path too long");
	if (unlink(path) != 0 && errno != ENOENT)
		return queue_why(why, why_size, "unlink %s: %s", path,
		                 strerror(errno));
	/* An orphaned log (crash right here) is removed by the next scan. */
	if (queue_path(path, sizeof(path), sp->qdir, "state", id))
		(void)unlink(path);
	err = queue_dirsync_commit(&sp->msg_sync);
	if (err != 0)
		return queue_why(why, why_size, "fsync of msg/: %s",
		                 strerror(err));
	return 0;
}

int
queue_quarantine(const char *qdir, const char *id, char *why, size_t why_size)
{
	char from[4096], to[4096], name[QUEUE_ID_SIZE + 32];
	long now = (long)time(NULL);

	(void)snprintf(name, sizeof(name), "%s.%ld", id, now);
	if (!queue_path(from, sizeof(from), qdir, "msg", id) ||
	    !queue_path(to, sizeof(to), qdir, "corrupt", name))
		return queue_why(why, why_size, "path too long");
	if (rename(from, to) != 0 && errno != ENOENT)
		return queue_why(why, why_size, "rename to corrupt/: %s",
		                 strerror(errno));
	(void)snprintf(name, sizeof(name), "%s.%ld.state", id, now);
	if (queue_path(from, sizeof(from), qdir, "state", id) &&
	    queue_path(to, sizeof(to), qdir, "corrupt", name))
		(void)rename(from, to);
	return 0;
}

/* ---- petrelctl requests ---- */

static const char *const queue_request_names[] = {NULL, "flush", "retry",
                                                  "delete"};

const char *
queue_request_name(int req)
{
	return req >= QUEUE_REQ_FLUSH && req <= QUEUE_REQ_DELETE
	           ? queue_request_names[req]
	           : NULL;
}

int
queue_request_write(const char *qdir, int req, const char *id, char *name_out,
                    size_t name_size, char *why, size_t why_size)
{
	char tmp[4096], dst[4096], ctl_dir[4096], name[64],
	    tmpname[sizeof(name) + 1];
	static unsigned counter;
	struct qrec_buf b;
	struct timespec ts;
	struct stat dir_st;
	int fd, err;

	if (queue_request_name(req) == NULL ||
	    (id != NULL && !queue_id_valid(id)))
		return queue_why(why, why_size, "bad request");
	(void)clock_gettime(CLOCK_REALTIME, &ts);
	(void)snprintf(name, sizeof(name), "%010lld.%09ld.%d.%u",
	               (long long)ts.tv_sec, ts.tv_nsec, (int)getpid(),
	               counter++);
	(void)snprintf(tmpname, sizeof(tmpname), ".%s", name);
	if (!queue_path(tmp, sizeof(tmp), qdir, "ctl", tmpname) ||
	    !queue_path(dst, sizeof(dst), qdir, "ctl", name))
		return queue_why(why, why_size, "path too long");
	qrec_buf_init(&b, 4096);
	qrec_put_str(&b, "REQ", queue_request_name(req));
	qrec_put_str(&b, "ID", id);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = errno;
		qrec_buf_free(&b);
		return queue_why(why, why_size, "cannot create %s: %s", tmp,
		                 strerror(err));
	}
	/*
	 * petrelctl usually runs as root, the runner as the server's user:
	 * the request belongs to whoever owns ctl/, so the runner can read
	 * and remove it.
	 */
	if (geteuid() == 0 &&
	    queue_path(ctl_dir, sizeof(ctl_dir), qdir, "ctl", NULL) &&
	    stat(ctl_dir, &dir_st) == 0)
		(void)fchown(fd, dir_st.st_uid, dir_st.st_gid);
	if (b.failed || queue_write_all(fd, b.data, b.len) != 0 ||
	    close(fd) != 0) {
		err = errno;
		qrec_buf_free(&b);
		(void)unlink(tmp);
		return queue_why(why, why_size, "write %s: %s", tmp,
		                 strerror(err));
	}
	qrec_buf_free(&b);
	if (rename(tmp, dst) != 0) {
		err = errno;
		(void)unlink(tmp);
		return queue_why(why, why_size, "rename %s: %s", tmp,
		                 strerror(err));
	}
	if (name_out != NULL)
		(void)snprintf(name_out, name_size, "%s", name);
	return 0;
}

int
queue_request_parse(const char *data, size_t len, int *req_out,
                    char id_out[QUEUE_ID_SIZE])
{
	size_t pos = 0, used;
	struct qrec r;
	int req = 0, i;

	id_out[0] = '\0';
	while (qrec_next(data + pos, len - pos, &r, &used) == QREC_RECORD) {
		pos += used;
		if (qrec_is(&r, "REQ")) {
			for (i = QUEUE_REQ_FLUSH; i <= QUEUE_REQ_DELETE; i++)
				if (r.len == strlen(queue_request_names[i]) &&
				    memcmp(r.value, queue_request_names[i],
				           r.len) == 0)
					req = i;
		} else if (qrec_is(&r, "ID")) {
			if (r.len == 0 || r.len >= QUEUE_ID_SIZE)
				return -1;
			memcpy(id_out, r.value, r.len);
			id_out[r.len] = '\0';
			if (!queue_id_valid(id_out))
				return -1;
		}
	}
	if (pos != len || req == 0)
		return -1;
	*req_out = req;
	return 0;
}
