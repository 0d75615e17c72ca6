/* SPDX-License-Identifier: MIT */
/* Maildir expunge: unlink the chosen messages, then fsync cur/. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maildir.h"

struct maildir_expunge_item {
	size_t index;
	char *name;   /* copied at submit time */
	bool removed; /* gone from cur/ (by us or someone else) */
};

struct maildir_expunge_job {
	struct ptl_mailbox *mb;
	ptl_storage_done_fn done;
	void *arg;
	size_t n;
	struct maildir_outcome res;
	struct maildir_expunge_item items[];
};

/* Unlink one message, following a flag change made by another client. */
static int
maildir_unlink_entry(int cur_fd, const char *name)
{
	char *renamed = NULL;
	int e;

	if (unlinkat(cur_fd, name, 0) == 0)
		return 0;
	if (errno != ENOENT)
		return errno;
	e = maildir_find_renamed(cur_fd, name, &renamed);
	if (e == ENOENT)
		return 0; /* already gone: the goal is reached */
	if (e != 0)
		return e;
	e = unlinkat(cur_fd, renamed, 0) == 0 || errno == ENOENT ? 0 : errno;
	free(renamed);
	return e;
}

/*
 * A Maildir has no multi-file transaction. Each unlink is atomic, so no
 * message is ever half removed; the single fsync of cur/ at the end
 * makes the whole set durable at once. On a failure the messages not
 * yet reached stay, and the reason says how far it got.
 */
static void
maildir_expunge_work(void *arg)
{
	struct maildir_expunge_job *job = arg;
	char cur[PATH_MAX];
	size_t done = 0, i;
	int cur_fd, e = 0;

	if (maildir_join(cur, sizeof(cur), job->mb->dir, "cur", &job->res) !=
	    PTL_OK)
		return;
	cur_fd = open(cur, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cur_fd < 0) {
		maildir_outcome_errno(&job->res, errno, "open %s", cur);
		return;
	}
	for (i = 0; i < job->n; i++) {
		e = maildir_unlink_entry(cur_fd, job->items[i].name);
		if (e != 0)
			break;
		job->items[i].removed = true;
		done++;
	}
	if (e != 0) {
		maildir_outcome_errno(&job->res, e,
		                      "unlink %s/%s (%zu of %zu removed)", cur,
		                      job->items[i].name, done, job->n);
	} else if (fsync(cur_fd) != 0) {
		maildir_outcome_errno(&job->res, errno, "fsync %s", cur);
	} else {
		job->res.status = PTL_STORAGE_OK;
	}
	close(cur_fd);
}

static void
maildir_expunge_done(void *arg)
{
	struct maildir_expunge_job *job = arg;
	struct ptl_storage_result res = {job->res.status, job->res.reason};
	struct ptl_mailbox *mb = job->mb;
	char user[128];

	for (size_t i = 0; i < job->n; i++) {
		if (job->items[i].removed)
			mb->entries[job->items[i].index].expunged = true;
		free(job->items[i].name);
	}
	if (res.status != PTL_STORAGE_OK) {
		ptl_log_escape(user, sizeof(user), mb->user, strlen(mb->user));
		ptl_log(PTL_LOG_ERROR, "maildir: expunge for %s failed: %s",
		        user, job->res.reason);
	} else {
		res.reason = "expunged";
	}
	job->done(&res, job->arg);
	free(job);
	maildir_mailbox_release(mb);
}

int
maildir_expunge(struct ptl_mailbox *mb, const size_t *indexes, size_t n,
                ptl_storage_done_fn done, void *arg)
{
	struct maildir_expunge_job *job;
	size_t i, k = 0;

	if (mb->closing ||
	    n > (SIZE_MAX - sizeof(*job)) / sizeof(job->items[0])) {
		errno = EINVAL;
		return PTL_ERROR;
	}
	for (i = 0; i < n; i++) {
		if (indexes[i] >= mb->count) {
			errno = EINVAL;
			return PTL_ERROR;
		}
	}
	job = calloc(1, sizeof(*job) + n * sizeof(job->items[0]));
	if (job == NULL) {
		ptl_log(PTL_LOG_ERROR, "maildir: expunge: out of memory");
		return PTL_ERROR;
	}
	for (i = 0; i < n; i++) {
		struct maildir_entry *e = &mb->entries[indexes[i]];

		if (e->expunged)
			continue;
		job->items[k].index = indexes[i];
		job->items[k].name = strdup(e->name);
		if (job->items[k].name == NULL) {
			while (k > 0)
				free(job->items[--k].name);
			free(job);
			ptl_log(PTL_LOG_ERROR,
			        "maildir: expunge: out of memory");
			return PTL_ERROR;
		}
		k++;
	}
	job->n = k;
	job->mb = mb;
	job->done = done;
	job->arg = arg;
	job->res.status = PTL_STORAGE_TEMPFAIL;
	if (ptl_task_submit(maildir_expunge_work, maildir_expunge_done, job) !=
	    PTL_OK) {
		ptl_log(PTL_LOG_ERROR, "maildir: expunge: cannot queue task");
		for (i = 0; i < k; i++)
			free(job->items[i].name);
		free(job);
		return PTL_ERROR;
	}
	mb->busy++;
	return PTL_AGAIN;
}
