/* SPDX-License-Identifier: MIT */
/* Opened Maildir: lock, snapshot of cur/ with stable uids, reading. */
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

struct maildir_open_job {
	struct maildir_instance *md;
	unsigned flags;
	ptl_storage_open_fn done;
	void *arg;
	struct ptl_mailbox *mb;
	struct maildir_outcome res;
	char user[]; /* flexible: the copied user name */
};

struct maildir_read_job {
	struct ptl_mailbox *mb;
	size_t index;
	ptl_storage_read_fn done;
	void *arg;
	int fd;
	char *renamed; /* the entry's new name when flags changed meanwhile */
	struct maildir_outcome res;
	char name[]; /* flexible: the name at submit time */
};

static void
maildir_mailbox_free(struct ptl_mailbox *mb)
{
	if (mb == NULL)
		return;
	for (size_t i = 0; i < mb->count; i++) {
		free(mb->entries[i].name);
		if (mb->msgs != NULL)
			free((char *)mb->msgs[i].uid);
	}
	free(mb->entries);
	free(mb->msgs);
	if (mb->lock_fd >= 0)
		close(mb->lock_fd);
	free(mb->dir);
	free(mb->user);
	if (mb->md != NULL)
		maildir_instance_unref(mb->md);
	free(mb);
}

/*
 * Another Maildir client (Dovecot, mutt) may change the flags after the
 * snapshot, which renames cur/BASE:2,OLD to cur/BASE:2,NEW. Find the
 * message by its base name. 0, ENOENT, or another errno.
 */
int
maildir_find_renamed(int cur_fd, const char *name, char **found_out)
{
	const char *colon = strchr(name, ':');
	size_t base = colon != NULL ? (size_t)(colon - name) : strlen(name);
	struct dirent *de;
	int fd, result = ENOENT;
	DIR *d;

	fd = openat(cur_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	d = fdopendir(fd);
	if (d == NULL) {
		result = errno;
		close(fd);
		return result;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, name, base) != 0 ||
		    (de->d_name[base] != ':' && de->d_name[base] != '\0'))
			continue;
		*found_out = strdup(de->d_name);
		result = *found_out != NULL ? 0 : ENOMEM;
		break;
	}
	if (de == NULL && errno != 0)
		result = errno;
	closedir(d);
	return result;
}

/*
 * Readers see new/ mail only once it moved to cur/ with an info part, as
 * Dovecot and mutt do; the base name (and so the uid) stays the same.
 */
static int
maildir_move_new(const char *dir, int cur_fd, struct maildir_outcome *res)
{
	char path[PATH_MAX], target[NAME_MAX + 1];
	unsigned moved = 0;
	struct dirent *de;
	int new_fd, dup_fd, e = 0;
	DIR *d;

	if (snprintf(path, sizeof(path), "%s/new", dir) >= (int)sizeof(path))
		return maildir_outcome_set(res, PTL_STORAGE_PERMFAIL,
		                           "mailbox path is too long");
	new_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (new_fd < 0)
		return maildir_outcome_errno(res, errno, "open %s", path);
	dup_fd = dup(new_fd);
	d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (d == NULL) {
		e = errno;
		if (dup_fd >= 0)
			close(dup_fd);
		close(new_fd);
		return maildir_outcome_errno(res, e, "read %s", path);
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		const char *name = de->d_name;

		if (name[0] == '.')
			continue;
		if (snprintf(target, sizeof(target), "%s%s", name,
		             strchr(name, ':') != NULL ? "" : ":2,") >=
		    (int)sizeof(target))
			continue; /* cannot get an info part: leave it */
		if (renameat(new_fd, name, cur_fd, target) == 0) {
			moved++;
		} else if (errno != ENOENT) {
			/* ENOENT: another reader moved it first; fine. */
			e = errno;
			maildir_outcome_errno(res, e, "move %s/%s to cur/",
			                      path, name);
			break;
		}
	}
	if (e == 0 && de == NULL && errno != 0) {
		e = errno;
		maildir_outcome_errno(res, e, "read %s", path);
	}
	closedir(d);
	/*
	 * Both directories must be durable: otherwise a crash could bring
	 * back in new/ a message that was read and expunged from cur/.
	 */
	if (e == 0 && moved > 0) {
		if (fsync(new_fd) != 0) {
			e = errno;
			maildir_outcome_errno(res, e, "fsync %s", path);
		} else if (fsync(cur_fd) != 0) {
			e = errno;
			maildir_outcome_errno(res, e, "fsync %s/cur", dir);
		}
	}
	close(new_fd);
	return e == 0 ? PTL_OK : PTL_ERROR;
}

static int
maildir_entry_compare(const void *a, const void *b)
{
	const struct maildir_entry *ea = a, *eb = b;

	return maildir_name_compare(ea->name, eb->name);
}

/* Read the names in cur/ into @p mb->entries, oldest first. */
static int
maildir_list_cur(struct ptl_mailbox *mb, int cur_fd,
                 struct maildir_outcome *res)
{
	size_t cap = 0, n = 0;
	struct dirent *de;
	int dup_fd = dup(cur_fd), e = 0;
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;

	if (d == NULL) {
		e = errno;
		if (dup_fd >= 0)
			close(dup_fd);
		return maildir_outcome_errno(res, e, "read %s/cur", mb->dir);
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == MAILDIR_SNAPSHOT_MAX) {
			ptl_log(PTL_LOG_WARN,
			        "maildir: %s/cur holds more than %u messages; "
			        "listing only some of them",
			        mb->dir, (unsigned)MAILDIR_SNAPSHOT_MAX);
			break;
		}
		if (n == cap) {
			size_t ncap = cap == 0 ? 64 : cap * 2;
			struct maildir_entry *ne;

			ne = realloc(mb->entries, ncap * sizeof(*ne));
			if (ne == NULL) {
				e = ENOMEM;
				break;
			}
			mb->entries = ne;
			cap = ncap;
		}
		mb->entries[n].name = strdup(de->d_name);
		if (mb->entries[n].name == NULL) {
			e = ENOMEM;
			break;
		}
		mb->entries[n].expunged = false;
		n++;
	}
	if (e == 0 && de == NULL && errno != 0)
		e = errno;
	closedir(d);
	mb->count = n;
	if (e != 0)
		return maildir_outcome_errno(res, e, "read %s/cur", mb->dir);
	if (n > 0)
		qsort(mb->entries, n, sizeof(*mb->entries),
		      maildir_entry_compare);
	return PTL_OK;
}

/* uid and size of each entry; drops the ones that vanished meanwhile. */
static int
maildir_fill_msgs(struct ptl_mailbox *mb, int cur_fd,
                  struct maildir_outcome *res)
{
	char uid[MAILDIR_UID_MAX + 2];
	size_t out = 0, i;

	mb->msgs = calloc(mb->count > 0 ? mb->count : 1, sizeof(*mb->msgs));
	if (mb->msgs == NULL) {
		maildir_outcome_set(res, PTL_STORAGE_TEMPFAIL, "out of memory");
		i = 0;
		goto fail;
	}
	for (i = 0; i < mb->count; i++) {
		struct maildir_entry e = mb->entries[i];
		uint64_t size;
		struct stat st;

		if (!maildir_name_size(e.name, &size)) {
			if (fstatat(cur_fd, e.name, &st, AT_SYMLINK_NOFOLLOW) !=
			    0) {
				if (errno == ENOENT) {
					free(e.name);
					continue;
				}
				maildir_outcome_errno(res, errno,
				                      "stat %s/cur/%s", mb->dir,
				                      e.name);
				goto fail;
			}
			size = (uint64_t)st.st_size;
		}
		maildir_name_uid(e.name, uid, sizeof(uid));
		mb->msgs[out].uid = strdup(uid);
		if (mb->msgs[out].uid == NULL) {
			maildir_outcome_set(res, PTL_STORAGE_TEMPFAIL,
			                    "out of memory");
			goto fail;
		}
		mb->msgs[out].size = size;
		mb->entries[out] = e;
		out++;
	}
	mb->count = out;
	return PTL_OK;

fail:
	/* [0, out) is compacted and owned; [i, count) still owns names. */
	for (; i < mb->count; i++)
		free(mb->entries[i].name);
	mb->count = mb->msgs != NULL ? out : 0;
	return PTL_ERROR;
}

static void
maildir_open_work(void *arg)
{
	struct maildir_open_job *job = arg;
	struct ptl_mailbox *mb = job->mb;
	char maildir[PATH_MAX], cur[PATH_MAX];
	int cur_fd;

	if (maildir_path_expand(job->md->conf->path, job->user, maildir,
	                        sizeof(maildir), &job->res) != PTL_OK)
		return;
	/* A user with no mail yet has an empty mailbox, not an error. */
	if (maildir_make_subdirs(maildir, job->md->conf->dir_mode, &job->res) !=
	    PTL_OK)
		return;
	mb->dir = strdup(maildir);
	if (mb->dir == NULL) {
		maildir_outcome_set(&job->res, PTL_STORAGE_TEMPFAIL,
		                    "out of memory");
		return;
	}
	if ((job->flags & PTL_STORAGE_LOCK) != 0 &&
	    maildir_lock(maildir, &mb->lock_fd, &job->res) != PTL_OK)
		return;
	if (maildir_join(cur, sizeof(cur), maildir, "cur", &job->res) != PTL_OK)
		return;
	cur_fd = open(cur, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cur_fd < 0) {
		maildir_outcome_errno(&job->res, errno, "open %s", cur);
		return;
	}
	if (maildir_move_new(maildir, cur_fd, &job->res) == PTL_OK &&
	    maildir_list_cur(mb, cur_fd, &job->res) == PTL_OK &&
	    maildir_fill_msgs(mb, cur_fd, &job->res) == PTL_OK) {
		job->res.status = PTL_STORAGE_OK;
		job->res.reason[0] = '\0';
	}
	close(cur_fd);
}

static void
maildir_open_done(void *arg)
{
	struct maildir_open_job *job = arg;
	struct ptl_storage_result res = {job->res.status, job->res.reason};
	struct ptl_mailbox *mb = job->mb;
	char user[128];

	if (res.status != PTL_STORAGE_OK) {
		ptl_log_escape(user, sizeof(user), job->user,
		               strlen(job->user));
		ptl_log(res.status == PTL_STORAGE_TEMPFAIL ? PTL_LOG_ERROR
		                                           : PTL_LOG_NOTICE,
		        "maildir: open of %s failed: %s", user,
		        job->res.reason);
		maildir_mailbox_free(mb);
		mb = NULL;
	} else {
		res.reason = "opened";
	}
	job->done(&res, mb, job->arg);
	maildir_instance_unref(job->md);
	free(job);
}

int
maildir_open(void *instance, const char *user, unsigned flags,
             ptl_storage_open_fn done, void *arg)
{
	struct maildir_instance *md = instance;
	size_t len = strlen(user);
	struct maildir_open_job *job;
	struct ptl_mailbox *mb;

	job = calloc(1, sizeof(*job) + len + 1);
	mb = calloc(1, sizeof(*mb));
	if (job == NULL || mb == NULL || (mb->user = strdup(user)) == NULL) {
		ptl_log(PTL_LOG_ERROR, "maildir: open: out of memory");
		free(job);
		free(mb);
		return PTL_ERROR;
	}
	memcpy(job->user, user, len + 1);
	mb->lock_fd = -1;
	mb->md = md;
	maildir_instance_ref(md);
	maildir_instance_ref(md);
	job->md = md;
	job->mb = mb;
	job->flags = flags;
	job->done = done;
	job->arg = arg;
	job->res.status = PTL_STORAGE_TEMPFAIL;
	if (ptl_task_submit(maildir_open_work, maildir_open_done, job) !=
	    PTL_OK) {
		ptl_log(PTL_LOG_ERROR, "maildir: open: cannot queue task");
		maildir_mailbox_free(mb);
		maildir_instance_unref(md);
		free(job);
		return PTL_ERROR;
	}
	return PTL_AGAIN;
}

size_t
maildir_count(struct ptl_mailbox *mb)
{
	return mb->count;
}

const struct ptl_storage_msg *
maildir_message(struct ptl_mailbox *mb, size_t index)
{
	return index < mb->count ? &mb->msgs[index] : NULL;
}

static void
maildir_read_work(void *arg)
{
	struct maildir_read_job *job = arg;
	char cur[PATH_MAX];
	int cur_fd, e;

	if (job->res.status == PTL_STORAGE_PERMFAIL)
		return;
	if (maildir_join(cur, sizeof(cur), job->mb->dir, "cur", &job->res) !=
	    PTL_OK)
		return;
	cur_fd = open(cur, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cur_fd < 0) {
		maildir_outcome_errno(&job->res, errno, "open %s", cur);
		return;
	}
	job->fd = openat(cur_fd, job->name,
	                 O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (job->fd < 0 && errno == ENOENT) {
		e = maildir_find_renamed(cur_fd, job->name, &job->renamed);
		if (e == 0)
			job->fd = openat(cur_fd, job->renamed,
			                 O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
			                     O_NOCTTY);
		else
			errno = e;
	}
	if (job->fd < 0) {
		if (errno == ENOENT)
			maildir_outcome_set(&job->res, PTL_STORAGE_PERMFAIL,
			                    "message %s no longer exists",
			                    job->name);
		else
			maildir_outcome_errno(&job->res, errno, "open %s/%s",
			                      cur, job->name);
	} else {
		job->res.status = PTL_STORAGE_OK;
	}
	close(cur_fd);
}

void
maildir_mailbox_release(struct ptl_mailbox *mb)
{
	if (--mb->busy == 0 && mb->closing)
		maildir_mailbox_free(mb);
}

static void
maildir_read_done(void *arg)
{
	struct maildir_read_job *job = arg;
	struct ptl_storage_result res = {job->res.status, job->res.reason};
	struct ptl_mailbox *mb = job->mb;
	char user[128];

	if (job->renamed != NULL && job->index < mb->count) {
		free(mb->entries[job->index].name);
		mb->entries[job->index].name = job->renamed;
		job->renamed = NULL;
	}
	if (res.status != PTL_STORAGE_OK) {
		ptl_log_escape(user, sizeof(user), mb->user, strlen(mb->user));
		ptl_log(res.status == PTL_STORAGE_TEMPFAIL ? PTL_LOG_ERROR
		                                           : PTL_LOG_NOTICE,
		        "maildir: read for %s failed: %s", user,
		        job->res.reason);
	} else {
		res.reason = "opened";
	}
	job->done(&res, res.status == PTL_STORAGE_OK ? job->fd : -1, job->arg);
	free(job->renamed);
	free(job);
	maildir_mailbox_release(mb);
}

int
maildir_read(struct ptl_mailbox *mb, size_t index, ptl_storage_read_fn done,
             void *arg)
{
	struct maildir_read_job *job;
	const char *name;

	if (index >= mb->count || mb->closing) {
		errno = EINVAL;
		return PTL_ERROR;
	}
	name = mb->entries[index].name;
	job = calloc(1, sizeof(*job) + strlen(name) + 1);
	if (job == NULL) {
		ptl_log(PTL_LOG_ERROR, "maildir: read: out of memory");
		return PTL_ERROR;
	}
	strcpy(job->name, name);
	job->mb = mb;
	job->index = index;
	job->done = done;
	job->arg = arg;
	job->fd = -1;
	job->res.status = PTL_STORAGE_TEMPFAIL;
	if (mb->entries[index].expunged)
		maildir_outcome_set(&job->res, PTL_STORAGE_PERMFAIL,
		                    "message was expunged");
	if (ptl_task_submit(maildir_read_work, maildir_read_done, job) !=
	    PTL_OK) {
		ptl_log(PTL_LOG_ERROR, "maildir: read: cannot queue task");
		free(job);
		return PTL_ERROR;
	}
	mb->busy++;
	return PTL_AGAIN;
}

void
maildir_close(struct ptl_mailbox *mb)
{
	if (mb == NULL)
		return;
	/* Callers wait for their completions; be safe if one did not. */
	if (mb->busy > 0) {
		mb->closing = true;
		return;
	}
	maildir_mailbox_free(mb);
}
