/* SPDX-License-Identifier: MIT */
/* The pid file: refuse a second master, write atomically, remove at exit. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "process.h"

/* The pid in @path, or 0 when there is none (missing, garbage). */
static pid_t
pidfile_read(const char *path)
{
	char buf[32];
	ssize_t n;
	char *end;
	long pid;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	errno = 0;
	pid = strtol(buf, &end, 10);
	if (errno != 0 || end == buf || (*end != '\n' && *end != '\0') ||
	    pid <= 0 || pid > INT_MAX)
		return 0;
	return (pid_t)pid;
}

/*
 * After a crash the file names a dead pid, or a pid reused by another
 * program: only a process that calls itself petrel counts.
 */
static bool
pid_is_petrel(pid_t pid)
{
	char path[64], comm[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	if (n <= 0)
		return false;
	comm[n] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	return strcmp(comm, "petrel-master") == 0 ||
	       strcmp(comm, "petrel") == 0;
}

int
ptl_pidfile_check(const char *path, struct ptl_error *err)
{
	pid_t pid;

	if (path == NULL)
		return PTL_OK;
	pid = pidfile_read(path);
	if (pid <= 0 || pid == getpid() || !pid_is_petrel(pid))
		return PTL_OK;
	return ptl_error_set_path(err, "server.pid_file",
	                          "petrel is already running (pid %d in "
	                          "\"%s\")",
	                          (int)pid, path);
}

int
ptl_pidfile_write(const char *path, struct ptl_error *err)
{
	char tmp[PATH_MAX], line[32];
	int fd, len, saved;
	ssize_t n;

	if (path == NULL)
		return PTL_OK;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return ptl_error_set_path(err, "server.pid_file",
		                          "path too long");
	len = snprintf(line, sizeof(line), "%d\n", (int)getpid());
	/* O_EXCL|O_NOFOLLOW: never write through a planted link. */
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	          0644);
	if (fd < 0)
		return ptl_error_set_errno(err, errno, "cannot create \"%s\"",
		                           tmp);
	n = write(fd, line, (size_t)len);
	saved = errno;
	if (close(fd) < 0 && n == len) {
		n = -1;
		saved = errno;
	}
	if (n != len) {
		(void)unlink(tmp);
		return ptl_error_set_errno(err, n < 0 ? saved : EIO,
		                           "cannot write \"%s\"", tmp);
	}
	if (rename(tmp, path) < 0) {
		saved = errno;
		(void)unlink(tmp);
		return ptl_error_set_errno(
		    err, saved, "cannot rename \"%s\" to \"%s\"", tmp, path);
	}
	return PTL_OK;
}

void
ptl_pidfile_remove(const char *path)
{
	if (path == NULL || pidfile_read(path) != getpid())
		return;
	if (unlink(path) < 0)
		ptl_log(PTL_LOG_WARN, "cannot remove pid file \"%s\": %s", path,
		        strerror(errno));
}
