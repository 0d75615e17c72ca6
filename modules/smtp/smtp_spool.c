/* SPDX-License-Identifier: MIT */
/* Spool files: an unnamed file per message while it arrives and is stored. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtp.h"

/* Write buffer per message being received (allocated only then). */
#define SPOOL_BUFFER (64 * 1024)

/*
 * The file has no name (O_TMPFILE), so a crash leaves nothing behind and
 * no other process can open it; where the file system cannot do that, a
 * unique name is created exclusively and unlinked at once.
 */
int
smtp_spool_create(struct smtp_worker *w)
{
	static unsigned long long serial;
	char name[64];
	int fd, tries;

#ifdef O_TMPFILE
	fd = openat(w->spool_dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL &&
	    errno != ENOENT)
		return -1;
#endif
	for (tries = 0; tries < 8; tries++) {
		(void)snprintf(name, sizeof(name), "spool.%ld.%llu",
		               (long)getpid(), ++serial);
		fd = openat(w->spool_dirfd, name,
		            O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		            0600);
		if (fd >= 0) {
			(void)unlinkat(w->spool_dirfd, name, 0);
			return fd;
		}
		if (errno != EEXIST)
			return -1;
	}
	return -1;
}

int
smtp_spool_open(struct smtp_spool *sp, struct smtp_worker *w)
{
	memset(sp, 0, sizeof(*sp));
	sp->fd = -1;
	sp->buf = malloc(SPOOL_BUFFER);
	if (sp->buf == NULL)
		return PTL_ERROR;
	sp->cap = SPOOL_BUFFER;
	sp->fd = smtp_spool_create(w);
	if (sp->fd < 0) {
		ptl_log(PTL_LOG_ERROR,
		        "smtp: cannot create a spool file in %s: %s",
		        w->spool_dir, strerror(errno));
		free(sp->buf);
		sp->buf = NULL;
		return PTL_ERROR;
	}
	return PTL_OK;
}

/*
 * Write the buffer out. After the first error the rest of the message is
 * dropped (and the message refused with 451 at its end), but reading
 * goes on so that the session stays in step with the client.
 */
int
smtp_spool_flush(struct smtp_spool *sp)
{
	size_t off = 0;
	ssize_t n;

	while (sp->error == 0 && off < sp->len) {
		n = write(sp->fd, sp->buf + off, sp->len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			sp->error = errno;
			break;
		}
		off += (size_t)n;
	}
	sp->len = 0;
	return sp->error == 0 ? PTL_OK : PTL_ERROR;
}

char *
smtp_spool_space(struct smtp_spool *sp, size_t want, size_t *room_out)
{
	if (sp->cap - sp->len < want)
		(void)smtp_spool_flush(sp);
	*room_out = sp->cap - sp->len;
	return sp->buf + sp->len;
}

void
smtp_spool_commit(struct smtp_spool *sp, size_t n)
{
	sp->len += n;
	sp->size += n;
}

void
smtp_spool_write(struct smtp_spool *sp, const void *data, size_t len)
{
	const char *p = data;
	size_t room, n;
	char *dst;

	while (len > 0) {
		dst = smtp_spool_space(sp, 1, &room);
		n = len < room ? len : room;
		memcpy(dst, p, n);
		smtp_spool_commit(sp, n);
		p += n;
		len -= n;
	}
}

int
smtp_spool_finish(struct smtp_spool *sp)
{
	int rc = smtp_spool_flush(sp);

	/* The buffer is not needed while the message waits for storage. */
	free(sp->buf);
	sp->buf = NULL;
	sp->cap = 0;
	return rc;
}

void
smtp_spool_close(struct smtp_spool *sp)
{
	if (sp->fd >= 0)
		close(sp->fd);
	sp->fd = -1;
	free(sp->buf);
	sp->buf = NULL;
	sp->len = 0;
	sp->cap = 0;
}
