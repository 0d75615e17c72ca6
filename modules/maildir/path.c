/* SPDX-License-Identifier: MIT */
/* Maildir path template: checking, expansion per user, directory creation. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "maildir.h"

/* One user name part (local part or domain) as it appears in a path. */
#define MAILDIR_PART_MAX 255

int
maildir_template_check(const char *tmpl, struct ptl_error *err)
{
	bool has_user = false;
	const char *p;

	if (tmpl[0] == '\0')
		return ptl_error_set(err, "expected a non-empty path");
	for (p = tmpl; *p != '\0'; p++) {
		if (*p != '%')
			continue;
		p++;
		switch (*p) {
		case 'n':
		case 'u':
			has_user = true;
			break;
		case 'd':
		case '%':
			break;
		case '\0':
			return ptl_error_set(err, "path ends in a lone \"%%\"");
		default:
			return ptl_error_set(err,
			                     "unknown escape \"%%%c\" (known: "
			                     "%%d domain, %%n local part, %%u "
			                     "user, %%%% percent)",
			                     *p);
		}
	}
	/* Without the user in the path every user would share one inbox. */
	if (!has_user)
		return ptl_error_set(err, "path must contain %%n or %%u");
	return PTL_OK;
}

/*
 * The user name comes from the userdb, but it ends up in a path: refuse
 * anything that could climb out of the template's directory or hide.
 */
static int
maildir_part_check(const char *what, const char *s, size_t len,
                   struct maildir_outcome *res)
{
	size_t i;

	if (len == 0)
		return maildir_outcome_set(res, PTL_STORAGE_PERMFAIL,
		                           "user has an empty %s", what);
	if (len > MAILDIR_PART_MAX)
		return maildir_outcome_set(res, PTL_STORAGE_PERMFAIL,
		                           "%s of the user is too long", what);
	if (s[0] == '.')
		return maildir_outcome_set(res, PTL_STORAGE_PERMFAIL,
		                           "%s of the user starts with \".\"",
		                           what);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '/' || c < 0x20 || c == 0x7f)
			return maildir_outcome_set(
			    res, PTL_STORAGE_PERMFAIL,
			    "%s of the user contains \"/\" or a control "
			    "character",
			    what);
	}
	return PTL_OK;
}

static int
maildir_append(char *out, size_t outsz, size_t *pos, const char *s, size_t len,
               struct maildir_outcome *res)
{
	if (*pos + len >= outsz)
		return maildir_outcome_set(res, PTL_STORAGE_PERMFAIL,
		                           "mailbox path is too long");
	memcpy(out + *pos, s, len);
	*pos += len;
	out[*pos] = '\0';
	return PTL_OK;
}

int
maildir_path_expand(const char *tmpl, const char *user, char *out, size_t outsz,
                    struct maildir_outcome *res)
{
	const char *at = strrchr(user, '@');
	const char *local = user, *domain = "";
	size_t local_len = strlen(user), domain_len = 0, pos = 0;
	const char *p;

	if (at != NULL) {
		local_len = (size_t)(at - user);
		domain = at + 1;
		domain_len = strlen(domain);
	}
	if (maildir_part_check("local part", local, local_len, res) != PTL_OK)
		return PTL_ERROR;
	if (at != NULL &&
	    maildir_part_check("domain", domain, domain_len, res) != PTL_OK)
		return PTL_ERROR;
	if (maildir_part_check("name", user, strlen(user), res) != PTL_OK)
		return PTL_ERROR;

	out[0] = '\0';
	for (p = tmpl; *p != '\0'; p++) {
		int rc;

		if (*p != '%') {
			rc = maildir_append(out, outsz, &pos, p, 1, res);
		} else if (*++p == 'n') {
			rc = maildir_append(out, outsz, &pos, local, local_len,
			                    res);
		} else if (*p == 'd') {
			if (at == NULL)
				return maildir_outcome_set(
				    res, PTL_STORAGE_PERMFAIL,
				    "user has no domain but the path "
				    "template uses %%d");
			rc = maildir_append(out, outsz, &pos, domain,
			                    domain_len, res);
		} else if (*p == 'u') {
			rc = maildir_append(out, outsz, &pos, user,
			                    strlen(user), res);
		} else {
			rc = maildir_append(out, outsz, &pos, "%", 1, res);
		}
		if (rc != PTL_OK)
			return PTL_ERROR;
	}
	return PTL_OK;
}

/*
 * Maildir++ folders are ".Name" directories inside the Maildir (what
 * Dovecot and Courier read); nested names use "." as separator.
 */
int
maildir_folder_path(const char *maildir, const char *folder, char *out,
                    size_t outsz, struct maildir_outcome *res)
{
	size_t i, len;
	int n;

	if (folder == NULL || folder[0] == '\0' ||
	    strcmp(folder, "INBOX") == 0) {
		n = snprintf(out, outsz, "%s", maildir);
	} else {
		len = strlen(folder);
		if (len > MAILDIR_PART_MAX || folder[0] == '.' ||
		    folder[len - 1] == '.')
			return maildir_outcome_set(res, PTL_STORAGE_PERMFAIL,
			                           "invalid folder name");
		for (i = 0; i < len; i++) {
			unsigned char c = (unsigned char)folder[i];

			if (c == '/' || c < 0x20 || c == 0x7f ||
			    (c == '.' && folder[i + 1] == '.'))
				return maildir_outcome_set(
				    res, PTL_STORAGE_PERMFAIL,
				    "invalid folder name");
		}
		n = snprintf(out, outsz, "%s/.%s", maildir, folder);
	}
	if (n < 0 || (size_t)n >= outsz)
		return maildir_outcome_set(res, PTL_STORAGE_PERMFAIL,
		                           "mailbox path is too long");
	return PTL_OK;
}

int
maildir_join(char *out, size_t outsz, const char *dir, const char *name,
             struct maildir_outcome *res)
{
	int n = snprintf(out, outsz, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= outsz)
		return maildir_outcome_set(res, PTL_STORAGE_PERMFAIL,
		                           "mailbox path is too long");
	return PTL_OK;
}

int
maildir_fsync_dir(const char *path, struct maildir_outcome *res)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return maildir_outcome_errno(res, errno, "open %s", path);
	if (fsync(fd) != 0) {
		int e = errno;

		close(fd);
		return maildir_outcome_errno(res, e, "fsync %s", path);
	}
	close(fd);
	return PTL_OK;
}

/* fsync the directory holding @path, so that a new entry in it survives. */
static int
maildir_fsync_parent(const char *path, struct maildir_outcome *res)
{
	char parent[PATH_MAX];
	char *slash;

	if (snprintf(parent, sizeof(parent), "%s", path) >= (int)sizeof(parent))
		return maildir_outcome_set(res, PTL_STORAGE_PERMFAIL,
		                           "mailbox path is too long");
	slash = strrchr(parent, '/');
	if (slash == NULL)
		return maildir_fsync_dir(".", res);
	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	return maildir_fsync_dir(parent, res);
}

int
maildir_mkdir_p(const char *path, mode_t mode, struct maildir_outcome *res)
{
	char buf[PATH_MAX];
	size_t len = strlen(path), i;
	struct stat st;

	if (len == 0 || len >= sizeof(buf))
		return maildir_outcome_set(res, PTL_STORAGE_PERMFAIL,
		                           "mailbox path is too long");
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return PTL_OK;
	memcpy(buf, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		if (buf[i - 1] == '/')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, mode) == 0) {
			/* A new directory is only durable once its parent is.
			 */
			if (maildir_fsync_parent(buf, res) != PTL_OK)
				return PTL_ERROR;
		} else if (errno != EEXIST) {
			return maildir_outcome_errno(res, errno, "mkdir %s",
			                             buf);
		}
		if (i < len)
			buf[i] = '/';
	}
	return PTL_OK;
}

int
maildir_make_subdirs(const char *maildir, mode_t mode,
                     struct maildir_outcome *res)
{
	static const char *const subdirs[] = {"tmp", "new", "cur"};
	bool created = false;
	int dfd;

	if (maildir_mkdir_p(maildir, mode, res) != PTL_OK)
		return PTL_ERROR;
	dfd = open(maildir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return maildir_outcome_errno(res, errno, "open %s", maildir);
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		if (mkdirat(dfd, subdirs[i], mode) == 0) {
			created = true;
		} else if (errno != EEXIST) {
			int e = errno;

			close(dfd);
			return maildir_outcome_errno(res, e, "mkdir %s/%s",
			                             maildir, subdirs[i]);
		}
	}
	if (created && fsync(dfd) != 0) {
		int e = errno;

		close(dfd);
		return maildir_outcome_errno(res, e, "fsync %s", maildir);
	}
	close(dfd);
	return PTL_OK;
}
