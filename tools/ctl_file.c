/* SPDX-License-Identifier: MIT */
/* Editing a file safely: lock, read, write a temp file, fsync, rename. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "passwd.h"
#include "ctl.h"

/* Mode of a file petrelctl creates: the server's group may read it. */
#define CTL_NEW_FILE_MODE 0640

void
ctl_file_init(struct ctl_file *f, const char *path)
{
	memset(f, 0, sizeof(*f));
	f->path = path;
	f->lock_fd = -1;
}

int
ctl_file_lock(struct ctl_file *f)
{
	char lock_path[4096];
	int fd;

	if ((size_t)snprintf(lock_path, sizeof(lock_path), "%s.lock",
	                     f->path) >= sizeof(lock_path)) {
		ctl_error("%s: path too long", f->path);
		return -1;
	}
	fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	/* Made by another admin account: a read-only fd takes flock too. */
	if (fd < 0 && errno == EACCES)
		fd = open(lock_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ctl_error("cannot open %s: %s", lock_path, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX) != 0) {
		if (errno == EINTR)
			continue;
		ctl_error("cannot lock %s: %s", lock_path, strerror(errno));
		(void)close(fd);
		return -1;
	}
	f->lock_fd = fd;
	return 0;
}

int
ctl_file_read(struct ctl_file *f, bool may_be_missing)
{
	size_t cap;
	ssize_t n;
	int fd;

	free(f->text);
	f->text = NULL;
	f->len = 0;
	f->exists = false;
	fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 && errno == ENOENT && may_be_missing) {
		f->text = strdup("");
		if (f->text == NULL) {
			ctl_error("out of memory");
			return -1;
		}
		return 0;
	}
	if (fd < 0) {
		ctl_error("cannot open %s: %s", f->path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &f->st) != 0 || !S_ISREG(f->st.st_mode)) {
		ctl_error("%s: not a regular file", f->path);
		(void)close(fd);
		return -1;
	}
	cap = (size_t)f->st.st_size + 1;
	if (cap > PASSWD_FILE_MAX + 1)
		cap = PASSWD_FILE_MAX + 1;
	f->text = malloc(cap + 1);
	if (f->text == NULL) {
		ctl_error("out of memory");
		(void)close(fd);
		return -1;
	}
	for (;;) {
		if (f->len == cap) {
			char *bigger;

			if (cap > PASSWD_FILE_MAX)
				break;
			cap = PASSWD_FILE_MAX + 1;
			bigger = realloc(f->text, cap + 1);
			if (bigger == NULL) {
				ctl_error("out of memory");
				(void)close(fd);
				return -1;
			}
			f->text = bigger;
		}
		n = read(fd, f->text + f->len, cap - f->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ctl_error("cannot read %s: %s", f->path,
			          strerror(errno));
			(void)close(fd);
			return -1;
		}
		if (n == 0)
			break;
		f->len += (size_t)n;
	}
	(void)close(fd);
	if (f->len > PASSWD_FILE_MAX) {
		ctl_error("%s: larger than %u MiB", f->path,
		          PASSWD_FILE_MAX >> 20);
		return -1;
	}
	f->text[f->len] = '\0';
	f->exists = true;
	return 0;
}

static int
ctl_write_all(int fd, const char *text, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, text, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		text += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The rename is only durable once the directory entry is on disk. */
static int
ctl_sync_dir(const char *path)
{
	char dir[4096];
	char *slash;
	int fd, rc;

	if ((size_t)snprintf(dir, sizeof(dir), "%s", path) >= sizeof(dir))
		return -1;
	slash = strrchr(dir, '/');
	if (slash == NULL)
		(void)snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	(void)close(fd);
	return rc;
}

/* The new file gets the old one's mode and owner, or the default. */
static int
ctl_copy_attributes(const struct ctl_file *f, int fd)
{
	mode_t mode = f->exists ? f->st.st_mode & 07777 : CTL_NEW_FILE_MODE;

	if (fchmod(fd, mode) != 0) {
		ctl_error("cannot set the mode of the new %s: %s", f->path,
		          strerror(errno));
		return -1;
	}
	if (f->exists &&
	    (f->st.st_uid != geteuid() || f->st.st_gid != getegid()) &&
	    fchown(fd, f->st.st_uid, f->st.st_gid) != 0) {
		ctl_error("cannot keep the owner of %s (uid %u, gid %u): %s; "
		          "run petrelctl as that user or as root",
		          f->path, (unsigned)f->st.st_uid,
		          (unsigned)f->st.st_gid, strerror(errno));
		return -1;
	}
	return 0;
}

int
ctl_file_replace(struct ctl_file *f, const char *text, size_t len)
{
	char tmp[4096];
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", f->path) >=
	    sizeof(tmp)) {
		ctl_error("%s: path too long", f->path);
		return -1;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		ctl_error("cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	if (ctl_copy_attributes(f, fd) != 0)
		goto fail;
	if (ctl_write_all(fd, text, len) != 0 || fsync(fd) != 0) {
		ctl_error("cannot write %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		ctl_error("cannot write %s: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, f->path) != 0) {
		ctl_error("cannot rename %s to %s: %s", tmp, f->path,
		          strerror(errno));
		goto fail;
	}
	if (ctl_sync_dir(f->path) != 0) {
		ctl_error("%s was replaced, but syncing its directory failed: "
		          "%s",
		          f->path, strerror(errno));
		return -1;
	}
	return 0;
fail:
	if (fd >= 0)
		(void)close(fd);
	(void)unlink(tmp);
	return -1;
}

void
ctl_file_close(struct ctl_file *f)
{
	free(f->text);
	f->text = NULL;
	if (f->lock_fd >= 0)
		(void)close(f->lock_fd);
	f->lock_fd = -1;
}
