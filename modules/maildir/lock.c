/* SPDX-License-Identifier: MIT */
/* Exclusive mailbox lock: flock() on a file inside the Maildir. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/file.h>

#include "maildir.h"

/*
 * flock() belongs to the open file description: it conflicts between
 * processes and between two opens in one process alike, and the kernel
 * drops it when the holder dies, so a crashed worker never leaves a
 * mailbox locked. Delivery does not take it: Maildir delivery is safe
 * beside a reader by design (tmp/ then rename).
 */
int
maildir_lock(const char *maildir, int *fd_out, struct maildir_outcome *res)
{
	char path[PATH_MAX];
	int fd, n;

	n = snprintf(path, sizeof(path), "%s/%s", maildir, MAILDIR_LOCK_NAME);
	if (n < 0 || (size_t)n >= sizeof(path))
		return maildir_outcome_set(res, PTL_STORAGE_PERMFAIL,
		                           "mailbox path is too long");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return maildir_outcome_errno(res, errno, "open %s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;

		close(fd);
		if (e == EWOULDBLOCK)
			return maildir_outcome_set(res, PTL_STORAGE_LOCKED,
			                           "mailbox is locked by "
			                           "another session");
		return maildir_outcome_errno(res, e, "flock %s", path);
	}
	*fd_out = fd;
	return PTL_OK;
}
