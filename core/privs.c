/* SPDX-License-Identifier: MIT */
/* Privileges: the state directory, and the drop from root to server.user. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "cycle.h"
#include "log_internal.h"
#include "process.h"

struct privs_ids {
	uid_t uid;
	gid_t gid;
};

/*
 * getpwnam()/getgrnam() return NULL with errno 0 for "no such entry" and
 * with errno set when the lookup itself failed (NSS down, file unreadable).
 */
static int
privs_lookup(const struct ptl_cycle *cycle, struct privs_ids *ids,
             struct ptl_error *err)
{
	const char *user = cycle->server.user;
	const char *group = cycle->server.group;
	struct passwd *pw;
	struct group *gr;

	if (user == NULL)
		return ptl_error_set_path(err, "server.user",
		                          "required when running as root "
		                          "(workers never run as root)");
	errno = 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		if (errno != 0)
			return ptl_error_set_path(err, "server.user",
			                          "cannot look up user \"%s\": "
			                          "%s",
			                          user, strerror(errno));
		return ptl_error_set_path(err, "server.user",
		                          "unknown user \"%s\"", user);
	}
	if (pw->pw_uid == 0)
		return ptl_error_set_path(err, "server.user",
		                          "user \"%s\" has uid 0 (workers "
		                          "never run as root)",
		                          user);
	ids->uid = pw->pw_uid;
	ids->gid = pw->pw_gid;
	if (group == NULL)
		return PTL_OK;

	errno = 0;
	gr = getgrnam(group);
	if (gr == NULL) {
		if (errno != 0)
			return ptl_error_set_path(
			    err, "server.group",
			    "cannot look up group \"%s\": "
			    "%s",
			    group, strerror(errno));
		return ptl_error_set_path(err, "server.group",
		                          "unknown group \"%s\"", group);
	}
	if (gr->gr_gid == 0)
		return ptl_error_set_path(err, "server.group",
		                          "group \"%s\" has gid 0 (workers "
		                          "never run as root)",
		                          group);
	ids->gid = gr->gr_gid;
	return PTL_OK;
}

int
ptl_privs_check(const struct ptl_cycle *cycle, struct ptl_error *err)
{
	static bool noted;
	struct privs_ids ids;
	struct stat st;

	if (geteuid() != 0) {
		if (!noted &&
		    (cycle->server.user != NULL || cycle->server.group != NULL))
			ptl_log(PTL_LOG_NOTICE,
			        "not running as root: server.user and "
			        "server.group are ignored");
		noted = true;
		return PTL_OK;
	}
	if (privs_lookup(cycle, &ids, err) != PTL_OK)
		return PTL_ERROR;
	if (cycle->server.chroot == NULL)
		return PTL_OK;
	if (stat(cycle->server.chroot, &st) < 0)
		return ptl_error_set_path(
		    err, "server.chroot", "cannot use \"%s\": %s",
		    cycle->server.chroot, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return ptl_error_set_path(err, "server.chroot",
		                          "\"%s\" is not a directory",
		                          cycle->server.chroot);
	return PTL_OK;
}

/* mkdir -p: each missing component is created with @mode. */
static int
privs_mkdir_p(const char *dir, mode_t mode, struct ptl_error *err)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(path))
		return ptl_error_set(err,
		                     "state directory path \"%s\" is "
		                     "empty or too long",
		                     dir);
	memcpy(path, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, mode) < 0 && errno != EEXIST)
			return ptl_error_set_errno(err, errno,
			                           "cannot create directory "
			                           "\"%s\"",
			                           path);
		path[i] = dir[i];
	}
	return PTL_OK;
}

int
ptl_privs_prepare_state_dir(const struct ptl_cycle *cycle,
                            struct ptl_error *err)
{
	const char *dir = cycle->server.state_dir;
	struct privs_ids ids;
	struct stat st;
	int fd;

	if (dir == NULL)
		return PTL_OK;
	if (privs_mkdir_p(dir, 0750, err) != PTL_OK)
		return PTL_ERROR;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ptl_error_set_errno(
		    err, errno, "cannot open state directory \"%s\"", dir);
	if (fstat(fd, &st) < 0) {
		int saved = errno;

		close(fd);
		return ptl_error_set_errno(err, saved, "cannot stat \"%s\"",
		                           dir);
	}
	if (geteuid() != 0) {
		close(fd);
		return PTL_OK;
	}
	if (privs_lookup(cycle, &ids, err) != PTL_OK) {
		close(fd);
		return PTL_ERROR;
	}
	/* fchown on the opened directory: no race with a swapped symlink. */
	if ((st.st_uid != ids.uid || st.st_gid != ids.gid) &&
	    fchown(fd, ids.uid, ids.gid) < 0) {
		int saved = errno;

		close(fd);
		return ptl_error_set_errno(err, saved,
		                           "cannot give state directory \"%s\" "
		                           "to %s",
		                           dir, cycle->server.user);
	}
	close(fd);
	return PTL_OK;
}

int
ptl_privs_share_log(const struct ptl_cycle *cycle, struct ptl_error *err)
{
	const struct ptl_log_conf *log = &cycle->server.log;
	struct privs_ids ids;
	struct stat st;
	int fd, rc = PTL_OK;

	if (geteuid() != 0 || log->target != PTL_LOG_TARGET_FILE ||
	    log->file == NULL)
		return PTL_OK;
	if (privs_lookup(cycle, &ids, err) != PTL_OK)
		return PTL_ERROR;
	fd = open(log->file,
	          O_WRONLY | O_APPEND | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return ptl_error_set_errno(err, errno, "cannot open \"%s\"",
		                           log->file);
	/*
	 * Only a file the master itself created: a second link could make
	 * root give away some other file (the directory may belong to the
	 * unprivileged user, who could plant one).
	 */
	if (fstat(fd, &st) < 0)
		rc = ptl_error_set_errno(err, errno, "cannot stat \"%s\"",
		                         log->file);
	else if (S_ISREG(st.st_mode) && st.st_nlink == 1 && st.st_uid == 0 &&
	         fchown(fd, ids.uid, ids.gid) < 0)
		rc = ptl_error_set_errno(err, errno, "cannot give \"%s\" to %s",
		                         log->file, cycle->server.user);
	close(fd);
	return rc;
}

static int
privs_verify(const struct privs_ids *ids, struct ptl_error *err)
{
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;

	if (getresuid(&ruid, &euid, &suid) < 0 ||
	    getresgid(&rgid, &egid, &sgid) < 0)
		return ptl_error_set_errno(err, errno, "getresuid");
	/* A saved id of 0 would let the process become root again. */
	if (ruid != ids->uid || euid != ids->uid || suid != ids->uid ||
	    rgid != ids->gid || egid != ids->gid || sgid != ids->gid ||
	    ruid == 0 || euid == 0 || suid == 0 || rgid == 0 || egid == 0 ||
	    sgid == 0)
		return ptl_error_set(err,
		                     "privilege drop did not take effect "
		                     "(uid %u/%u/%u gid %u/%u/%u)",
		                     (unsigned)ruid, (unsigned)euid,
		                     (unsigned)suid, (unsigned)rgid,
		                     (unsigned)egid, (unsigned)sgid);
	return PTL_OK;
}

static int
privs_no_new_privs(struct ptl_error *err)
{
	/* No set-uid binary or file capability can give anything back. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return ptl_error_set_errno(err, errno,
		                           "prctl(PR_SET_NO_NEW_PRIVS)");
	return PTL_OK;
}

int
ptl_privs_drop(const struct ptl_cycle *cycle, struct ptl_error *err)
{
	const char *root_dir = cycle->server.chroot;
	struct privs_ids ids;

	if (geteuid() != 0)
		return privs_no_new_privs(err);

	/* The lookups need /etc, so they come before the chroot. */
	if (privs_lookup(cycle, &ids, err) != PTL_OK)
		return PTL_ERROR;
	if (root_dir != NULL) {
		if (chroot(root_dir) < 0)
			return ptl_error_set_errno(err, errno, "chroot(\"%s\")",
			                           root_dir);
		if (chdir("/") < 0)
			return ptl_error_set_errno(err, errno,
			                           "chdir(\"/\") in chroot");
	}
	/*
	 * Groups first: once the uid is dropped, the process may no longer
	 * change them, and root's supplementary groups would stay.
	 */
	if (setgroups(1, &ids.gid) < 0)
		return ptl_error_set_errno(err, errno, "setgroups(%u)",
		                           (unsigned)ids.gid);
	if (setresgid(ids.gid, ids.gid, ids.gid) < 0)
		return ptl_error_set_errno(err, errno, "setresgid(%u)",
		                           (unsigned)ids.gid);
	if (setresuid(ids.uid, ids.uid, ids.uid) < 0)
		return ptl_error_set_errno(err, errno, "setresuid(%u)",
		                           (unsigned)ids.uid);
	if (privs_verify(&ids, err) != PTL_OK)
		return PTL_ERROR;
	return privs_no_new_privs(err);
}
