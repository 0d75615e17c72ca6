/* SPDX-License-Identifier: MIT */
/* Maildir delivery: tmp/ file, fsync, link into new/, directory fsync. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maildir.h"

/* Attempts at a fresh unique name when one is somehow taken already. */
#define MAILDIR_NAME_TRIES 3

struct maildir_delivery {
	struct maildir_instance *md;
	ptl_storage_done_fn done;
	void *arg;
	int src_fd;
	uint64_t size;
	size_t prefix_len;
	char *user;   /* the strings below live in the same allocation */
	char *folder; /* NULL: inbox */
	char *prefix;
	struct maildir_outcome res;
};

/* Write all of @p len bytes, looping over short writes. */
static int
maildir_write_all(int fd, const char *buf, size_t len)
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

/* Prefix, then the source in bounded chunks: never the whole message. */
static int
maildir_copy(struct maildir_delivery *job, int out_fd, const char *tmp_path)
{
	char *buf;
	uint64_t off = 0;

	if (job->prefix_len > 0 &&
	    maildir_write_all(out_fd, job->prefix, job->prefix_len) != PTL_OK)
		return maildir_outcome_errno(&job->res, errno, "write %s",
		                             tmp_path);
	buf = malloc(MAILDIR_COPY_CHUNK);
	if (buf == NULL)
		return maildir_outcome_set(&job->res, PTL_STORAGE_TEMPFAIL,
		                           "out of memory");
	while (off < job->size) {
		size_t want = MAILDIR_COPY_CHUNK;
		ssize_t n;

		if (job->size - off < want)
			want = (size_t)(job->size - off);
		n = pread(job->src_fd, buf, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			maildir_outcome_errno(&job->res, errno,
			                      "read message source");
			break;
		}
		if (n == 0) {
			maildir_outcome_set(
			    &job->res, PTL_STORAGE_TEMPFAIL,
			    "message source ended after %" PRIu64 " of %" PRIu64
			    " bytes",
			    off, job->size);
			break;
		}
		if (maildir_write_all(out_fd, buf, (size_t)n) != PTL_OK) {
			maildir_outcome_errno(&job->res, errno, "write %s",
			                      tmp_path);
			break;
		}
		off += (uint64_t)n;
	}
	free(buf);
	return off == job->size ? PTL_OK : PTL_ERROR;
}

/*
 * A Maildir++ folder is a Maildir of its own plus an empty
 * "maildirfolder" file that tells readers (Courier, Dovecot) what it is.
 */
static int
maildir_prepare(struct maildir_delivery *job, const char *maildir,
                const char *dir)
{
	mode_t mode = job->md->conf->dir_mode;
	char marker[PATH_MAX];
	int fd;

	if (maildir_make_subdirs(maildir, mode, &job->res) != PTL_OK)
		return PTL_ERROR;
	if (dir == maildir || strcmp(dir, maildir) == 0)
		return PTL_OK;
	if (maildir_make_subdirs(dir, mode, &job->res) != PTL_OK)
		return PTL_ERROR;
	if (snprintf(marker, sizeof(marker), "%s/maildirfolder", dir) >=
	    (int)sizeof(marker))
		return maildir_outcome_set(&job->res, PTL_STORAGE_PERMFAIL,
		                           "mailbox path is too long");
	fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	          mode & 0666);
	if (fd < 0)
		return maildir_outcome_errno(&job->res, errno, "create %s",
		                             marker);
	close(fd);
	return PTL_OK;
}

static int
maildir_check_quota(struct maildir_delivery *job, const char *maildir)
{
	uint64_t limit = job->md->conf->quota, used, total;

	if (limit == 0)
		return PTL_OK;
	total = job->size + job->prefix_len;
	if (maildir_usage(maildir, &used, &job->res) != PTL_OK)
		return PTL_ERROR;
	if (total > limit || used > limit - total)
		return maildir_outcome_set(&job->res, PTL_STORAGE_PERMFAIL,
		                           "mailbox over quota (%" PRIu64
		                           " of %" PRIu64
		                           " bytes used, message "
		                           "is %" PRIu64 ")",
		                           used, limit, total);
	return PTL_OK;
}

/* Create tmp/<unique> exclusively, creating the Maildir when missing. */
static int
maildir_create_tmp(struct maildir_delivery *job, const char *maildir,
                   const char *dir, char *unique, size_t uniquesz,
                   char *tmp_path, size_t tmpsz)
{
	mode_t mode = job->md->conf->dir_mode & 0666;
	bool prepared = false;

	for (int tries = 0; tries < MAILDIR_NAME_TRIES;) {
		int fd, n;

		if (maildir_unique_name(job->md, unique, uniquesz) != PTL_OK)
			return maildir_outcome_set(&job->res,
			                           PTL_STORAGE_PERMFAIL,
			                           "mailbox path is too long");
		n = snprintf(tmp_path, tmpsz, "%s/tmp/%s", dir, unique);
		if (n < 0 || (size_t)n >= tmpsz)
			return maildir_outcome_set(&job->res,
			                           PTL_STORAGE_PERMFAIL,
			                           "mailbox path is too long");
		fd = open(tmp_path,
		          O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		          mode);
		if (fd >= 0)
			return fd;
		if (errno == ENOENT && !prepared) {
			prepared = true;
			if (maildir_prepare(job, maildir, dir) != PTL_OK)
				return -1;
			continue;
		}
		if (errno != EEXIST) {
			maildir_outcome_errno(&job->res, errno, "create %s",
			                      tmp_path);
			return -1;
		}
		tries++;
	}
	maildir_outcome_set(&job->res, PTL_STORAGE_TEMPFAIL,
	                    "no unique file name in %s/tmp", dir);
	return -1;
}

/*
 * link() refuses to replace an existing name, so a clash can never
 * overwrite a delivered message; file systems without hard links get
 * rename().
 */
static int
maildir_publish(const char *tmp_path, const char *new_path)
{
	if (link(tmp_path, new_path) == 0) {
		unlink(tmp_path);
		return 0;
	}
	if (errno == EPERM || errno == EOPNOTSUPP || errno == ENOSYS ||
	    errno == EMLINK || errno == EXDEV)
		return rename(tmp_path, new_path) == 0 ? 0 : errno;
	return errno;
}

static void
maildir_deliver_work(void *arg)
{
	struct maildir_delivery *job = arg;
	char maildir[PATH_MAX], dir[PATH_MAX], unique[NAME_MAX + 1];
	char tmp_path[PATH_MAX], new_path[PATH_MAX], new_dir[PATH_MAX];
	uint64_t total = job->size + job->prefix_len;
	int fd, dir_fd, e, n;

	if (maildir_path_expand(job->md->conf->path, job->user, maildir,
	                        sizeof(maildir), &job->res) != PTL_OK)
		return;
	if (maildir_folder_path(maildir, job->folder, dir, sizeof(dir),
	                        &job->res) != PTL_OK)
		return;
	if (maildir_check_quota(job, maildir) != PTL_OK)
		return;
	fd = maildir_create_tmp(job, maildir, dir, unique, sizeof(unique),
	                        tmp_path, sizeof(tmp_path));
	if (fd < 0)
		return;
	if (maildir_copy(job, fd, tmp_path) != PTL_OK)
		goto fail_open;
	if (fsync(fd) != 0) {
		maildir_outcome_errno(&job->res, errno, "fsync %s", tmp_path);
		goto fail_open;
	}
	/* NFS and some FUSE file systems report write errors only here. */
	if (close(fd) != 0) {
		maildir_outcome_errno(&job->res, errno, "close %s", tmp_path);
		goto fail;
	}

	n = snprintf(new_dir, sizeof(new_dir), "%s/new", dir);
	if (n < 0 || (size_t)n >= sizeof(new_dir)) {
		maildir_outcome_set(&job->res, PTL_STORAGE_PERMFAIL,
		                    "mailbox path is too long");
		goto fail;
	}
	n = snprintf(new_path, sizeof(new_path), "%s/%s,S=%" PRIu64, new_dir,
	             unique, total);
	if (n < 0 || (size_t)n >= sizeof(new_path)) {
		maildir_outcome_set(&job->res, PTL_STORAGE_PERMFAIL,
		                    "mailbox path is too long");
		goto fail;
	}
	dir_fd = open(new_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* new/ removed behind our back while tmp/ stayed: make it again. */
	if (dir_fd < 0 && errno == ENOENT &&
	    maildir_prepare(job, maildir, dir) == PTL_OK)
		dir_fd = open(new_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0) {
		if (job->res.reason[0] == '\0')
			maildir_outcome_errno(&job->res, errno, "open %s",
			                      new_dir);
		goto fail;
	}
	e = maildir_publish(tmp_path, new_path);
	if (e != 0) {
		close(dir_fd);
		maildir_outcome_errno(&job->res, e, "link into %s", new_dir);
		goto fail;
	}
	e = maildir_dirsync_commit(job->md->dirsync, new_dir, dir_fd);
	close(dir_fd);
	if (e != 0) {
		/* Not durable, so not delivered: the sender will retry. */
		maildir_outcome_errno(&job->res, e, "fsync %s", new_dir);
		unlink(new_path);
		unlink(tmp_path);
		return;
	}
	job->res.status = PTL_STORAGE_OK;
	job->res.reason[0] = '\0';
	return;

fail_open:
	close(fd);
fail:
	unlink(tmp_path);
}

static void
maildir_deliver_done(void *arg)
{
	struct maildir_delivery *job = arg;
	struct ptl_storage_result res = {job->res.status, job->res.reason};
	char user[128];

	if (res.status != PTL_STORAGE_OK) {
		ptl_log_escape(user, sizeof(user), job->user,
		               strlen(job->user));
		ptl_log(res.status == PTL_STORAGE_TEMPFAIL ? PTL_LOG_ERROR
		                                           : PTL_LOG_NOTICE,
		        "maildir: delivery to %s failed: %s", user,
		        job->res.reason);
	} else {
		res.reason = "delivered";
	}
	job->done(&res, job->arg);
	maildir_instance_unref(job->md);
	free(job);
}

int
maildir_deliver(void *instance, const struct ptl_storage_delivery *d,
                ptl_storage_done_fn done, void *arg)
{
	struct maildir_instance *md = instance;
	size_t user_len = strlen(d->user);
	size_t folder_len = d->folder != NULL ? strlen(d->folder) + 1 : 0;
	struct maildir_delivery *job;
	char *p;

	if (d->size > UINT64_MAX - d->prefix_len) {
		errno = EFBIG;
		return PTL_ERROR;
	}
	job = malloc(sizeof(*job) + user_len + 1 + folder_len + d->prefix_len);
	if (job == NULL) {
		ptl_log(PTL_LOG_ERROR, "maildir: delivery: out of memory");
		return PTL_ERROR;
	}
	memset(job, 0, sizeof(*job));
	p = (char *)(job + 1);
	job->user = p;
	memcpy(p, d->user, user_len + 1);
	p += user_len + 1;
	if (d->folder != NULL) {
		job->folder = p;
		memcpy(p, d->folder, folder_len);
		p += folder_len;
	}
	job->prefix = p;
	if (d->prefix_len > 0)
		memcpy(p, d->prefix, d->prefix_len);
	job->prefix_len = d->prefix_len;
	job->src_fd = d->fd;
	job->size = d->size;
	job->done = done;
	job->arg = arg;
	job->md = md;
	job->res.status = PTL_STORAGE_TEMPFAIL;
	maildir_instance_ref(md);
	if (ptl_task_submit(maildir_deliver_work, maildir_deliver_done, job) !=
	    PTL_OK) {
		ptl_log(PTL_LOG_ERROR, "maildir: delivery: cannot queue task");
		maildir_instance_unref(md);
		free(job);
		return PTL_ERROR;
	}
	return PTL_AGAIN;
}
