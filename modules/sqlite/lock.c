/* SPDX-License-Identifier: MIT */
/* Exclusive mailbox lock: flock() on a side file per user beside the DB. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>

#include "sqlite_store.h"

/*
 * A row in the database would outlive a crashed process and need
 * cleanup; flock() is dropped by the kernel when its holder dies, it
 * conflicts between processes and between two opens in one process.
 * The file name carries a 64-bit digest of the user (a name may hold any
 * byte); a collision would only make two users share a lock.
 */
static uint64_t
sqlite_user_digest(const char *user)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *p = (const unsigned char *)user; *p != '\0';
	     p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	return h;
}

int
sqlite_lock(const char *db_path, const char *user, int *fd_out,
            struct sqlite_outcome *res)
{
	char path[PATH_MAX];
	int fd, n;

	n = snprintf(path, sizeof(path), "%s.lock.%016" PRIx64, db_path,
	             sqlite_user_digest(user));
	if (n < 0 || (size_t)n >= sizeof(path))
		return sqlite_outcome_set(res, PTL_STORAGE_PERMFAIL,
		                          "database path is too long");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return sqlite_outcome_errno(res, errno, "open %s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;

		close(fd);
		if (e == EWOULDBLOCK)
			return sqlite_outcome_set(res, PTL_STORAGE_LOCKED,
			                          "mailbox is locked by "
			                          "another session");
		return sqlite_outcome_errno(res, e, "flock %s", path);
	}
	*fd_out = fd;
	return PTL_OK;
}
