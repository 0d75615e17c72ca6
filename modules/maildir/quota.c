/* SPDX-License-Identifier: MIT */
/* Maildir quota: bytes used by a user's messages, from ",S=" or stat(). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "maildir.h"

struct maildir_quota_job {
	struct maildir_instance *md;
	ptl_storage_quota_fn done;
	void *arg;
	uint64_t used;
	struct maildir_outcome res;
	char user[];
};

/* Sum of the message sizes in @p dir (a new/ or cur/); missing is 0. */
static int
maildir_dir_usage(const char *dir, uint64_t *used, struct maildir_outcome *res)
{
	struct dirent *de;
	int fd, e = 0;
	DIR *d;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT
		           ? PTL_OK
		           : maildir_outcome_errno(res, errno, "open %s", dir);
	d = fdopendir(fd);
	if (d == NULL) {
		e = errno;
		close(fd);
		return maildir_outcome_errno(res, e, "read %s", dir);
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		uint64_t size;
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		/* The name carries the size: no stat() per message. */
		if (!maildir_name_size(de->d_name, &size)) {
			if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) !=
			    0)
				continue; /* expunged meanwhile */
			size = (uint64_t)st.st_size;
		}
		*used += size;
	}
	if (errno != 0)
		e = errno;
	closedir(d);
	if (e != 0)
		return maildir_outcome_errno(res, e, "read %s", dir);
	return PTL_OK;
}

static int
maildir_box_usage(const char *box, uint64_t *used, struct maildir_outcome *res)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/new", box) >= (int)sizeof(path) ||
	    maildir_dir_usage(path, used, res) != PTL_OK)
		return PTL_ERROR;
	if (snprintf(path, sizeof(path), "%s/cur", box) >= (int)sizeof(path))
		return maildir_outcome_set(res, PTL_STORAGE_PERMFAIL,
		                           "mailbox path is too long");
	return maildir_dir_usage(path, used, res);
}

/*
 * The inbox plus every Maildir++ folder (".Name"). This scans names on
 * each call; it costs one readdir per folder, not one stat per message.
 * Two deliveries racing near the limit may both pass: the quota is a
 * bound on growth, not an exact ceiling.
 */
int
maildir_usage(const char *maildir, uint64_t *used_out,
              struct maildir_outcome *res)
{
	char path[PATH_MAX];
	uint64_t used = 0;
	struct dirent *de;
	int e = 0;
	DIR *d;

	if (maildir_box_usage(maildir, &used, res) != PTL_OK)
		return PTL_ERROR;
	d = opendir(maildir);
	if (d == NULL) {
		if (errno != ENOENT)
			return maildir_outcome_errno(res, errno, "open %s",
			                             maildir);
		*used_out = used;
		return PTL_OK;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", maildir,
		             de->d_name) >= (int)sizeof(path))
			continue;
		if (maildir_box_usage(path, &used, res) != PTL_OK) {
			closedir(d);
			return PTL_ERROR;
		}
	}
	if (errno != 0)
		e = errno;
	closedir(d);
	if (e != 0)
		return maildir_outcome_errno(res, e, "read %s", maildir);
	*used_out = used;
	return PTL_OK;
}

static void
maildir_quota_work(void *arg)
{
	struct maildir_quota_job *job = arg;
	char maildir[PATH_MAX];

	if (maildir_path_expand(job->md->conf->path, job->user, maildir,
	                        sizeof(maildir), &job->res) != PTL_OK)
		return;
	if (maildir_usage(maildir, &job->used, &job->res) == PTL_OK)
		job->res.status = PTL_STORAGE_OK;
}

static void
maildir_quota_done(void *arg)
{
	struct maildir_quota_job *job = arg;
	struct ptl_storage_result res = {job->res.status, job->res.reason};
	char user[128];

	if (res.status != PTL_STORAGE_OK) {
		ptl_log_escape(user, sizeof(user), job->user,
		               strlen(job->user));
		ptl_log(PTL_LOG_ERROR, "maildir: quota of %s failed: %s", user,
		        job->res.reason);
	} else {
		res.reason = "ok";
	}
	job->done(&res, job->used, job->md->conf->quota, job->arg);
	maildir_instance_unref(job->md);
	free(job);
}

int
maildir_quota(void *instance, const char *user, ptl_storage_quota_fn done,
              void *arg)
{
	struct maildir_instance *md = instance;
	size_t len = strlen(user);
	struct maildir_quota_job *job;

	job = calloc(1, sizeof(*job) + len + 1);
	if (job == NULL) {
		ptl_log(PTL_LOG_ERROR, "maildir: quota: out of memory");
		return PTL_ERROR;
	}
	memcpy(job->user, user, len + 1);
	job->md = md;
	job->done = done;
	job->arg = arg;
	job->res.status = PTL_STORAGE_TEMPFAIL;
	maildir_instance_ref(md);
	if (ptl_task_submit(maildir_quota_work, maildir_quota_done, job) !=
	    PTL_OK) {
		ptl_log(PTL_LOG_ERROR, "maildir: quota: cannot queue task");
		maildir_instance_unref(md);
		free(job);
		return PTL_ERROR;
	}
	return PTL_AGAIN;
}
