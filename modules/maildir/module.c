/* SPDX-License-Identifier: MIT */
/* The maildir module: descriptor, config, lifecycle, service table. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maildir.h"

static int
maildir_validate_path(const json_t *value, void *field, struct ptl_error *err)
{
	const char *tmpl = *(const char **)field;

	return tmpl == NULL ? PTL_OK : maildir_template_check(tmpl, err);
}

/* Octal text: JSON has no octal literals, and 448 means nothing to admins. */
static int
maildir_parse_mode(const char *text, mode_t *mode_out)
{
	char *end;
	unsigned long v;

	if (text[0] < '0' || text[0] > '7')
		return PTL_ERROR;
	errno = 0;
	v = strtoul(text, &end, 8);
	if (errno != 0 || *end != '\0' || v > 0777)
		return PTL_ERROR;
	/* The server itself must be able to use what it creates. */
	if ((v & 0700) != 0700)
		return PTL_ERROR;
	*mode_out = (mode_t)v;
	return PTL_OK;
}

static int
maildir_validate_mode(const json_t *value, void *field, struct ptl_error *err)
{
	const char *text = *(const char **)field;
	mode_t mode;

	if (text != NULL && maildir_parse_mode(text, &mode) != PTL_OK)
		return ptl_error_set(err, "expected an octal mode between "
		                          "\"0700\" and \"0777\"");
	return PTL_OK;
}

static const struct ptl_conf_key maildir_conf_keys[] = {
    {
        .name = "location",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct maildir_conf, path),
        .def = "var/mail/%d/%n/Maildir",
        .validate = maildir_validate_path,
        .doc = "Maildir of each user, a path template: %d domain, "
               "%n local part, %u user@domain, %% a percent sign. "
               "Relative paths are relative to the working directory "
               "at startup. (Not \"path\": that key names the module "
               "file.)",
    },
    {
        .name = "quota",
        .type = PTL_CONF_SIZE,
        .offset = offsetof(struct maildir_conf, quota),
        .def = "0",
        .doc = "Largest mailbox per user (e.g. \"1G\"); a delivery "
               "that would exceed it fails permanently. 0: no limit.",
    },
    {
        .name = "create_mode",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct maildir_conf, create_mode),
        .def = "0700",
        .validate = maildir_validate_mode,
        .doc = "Octal mode of the directories created for a mailbox; "
               "message files get it without the execute bits.",
    },
    {.name = NULL},
};

static int
maildir_check_config(struct ptl_instance *inst, const json_t *section,
                     void *conf_ptr, struct ptl_error *err)
{
	struct maildir_conf *conf = conf_ptr;

	if (maildir_parse_mode(conf->create_mode, &conf->dir_mode) != PTL_OK)
		return ptl_error_set_path(err, "modules.maildir.create_mode",
		                          "expected an octal mode");
	return ptl_conf_path_absolute(ptl_instance_pool(inst), &conf->path,
	                              "modules.maildir.location", err);
}

static const struct ptl_storage_methods maildir_methods = {
    .version = PTL_STORAGE_VERSION,
    .deliver = maildir_deliver,
    .open = maildir_open,
    .count = maildir_count,
    .message = maildir_message,
    .read = maildir_read,
    .expunge = maildir_expunge,
    .close = maildir_close,
    .quota = maildir_quota,
};

void
maildir_instance_ref(struct maildir_instance *md)
{
	atomic_fetch_add(&md->refs, 1);
}

void
maildir_instance_unref(struct maildir_instance *md)
{
	if (atomic_fetch_sub(&md->refs, 1) != 1)
		return;
	maildir_dirsync_free(md->dirsync);
	free(md);
}

static int
maildir_init_worker(struct ptl_instance *inst, struct ptl_error *err)
{
	const struct ptl_server_info *info = ptl_server_info();
	struct maildir_instance *md;
	char host[256];

	md = calloc(1, sizeof(*md));
	if (md == NULL)
		return ptl_error_set(err, "out of memory");
	atomic_init(&md->refs, 1);
	atomic_init(&md->counter, 0);
	md->conf = ptl_instance_conf(inst);
	md->dirsync = maildir_dirsync_new();
	if (md->dirsync == NULL) {
		free(md);
		return ptl_error_set(err, "out of memory");
	}
	if (info != NULL && info->hostname != NULL) {
		snprintf(host, sizeof(host), "%s", info->hostname);
	} else if (gethostname(host, sizeof(host)) != 0) {
		host[0] = '\0';
	}
	host[sizeof(host) - 1] = '\0';
	maildir_hostname_sanitize(host, md->hostname, sizeof(md->hostname));
	if (ptl_service_register(inst, PTL_STORAGE_SERVICE, PTL_STORAGE_VERSION,
	                         &maildir_methods, md, err) != PTL_OK) {
		maildir_instance_unref(md);
		return PTL_ERROR;
	}
	ptl_instance_set_data(inst, md);
	return PTL_OK;
}

static void
maildir_exit_worker(struct ptl_instance *inst)
{
	struct maildir_instance *md = ptl_instance_data(inst);

	ptl_instance_set_data(inst, NULL);
	if (md != NULL)
		maildir_instance_unref(md);
}

static int
maildir_outcome_vset(struct maildir_outcome *out,
                     enum ptl_storage_status status, int errnum,
                     const char *fmt, va_list ap)
{
	int n;

	out->status = status;
	n = vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	if (n < 0)
		out->reason[0] = '\0';
	if (errnum != 0 && n >= 0 && (size_t)n < sizeof(out->reason))
		snprintf(out->reason + n, sizeof(out->reason) - (size_t)n,
		         ": %s", strerror(errnum));
	return PTL_ERROR;
}

int
maildir_outcome_set(struct maildir_outcome *out, enum ptl_storage_status status,
                    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	maildir_outcome_vset(out, status, 0, fmt, ap);
	va_end(ap);
	return PTL_ERROR;
}

/*
 * Every system error is temporary for the sender: a full disk, a quota of
 * the file system, an I/O error or wrong permissions get fixed by an
 * admin, and the sending MTA retries meanwhile instead of bouncing.
 */
int
maildir_outcome_errno(struct maildir_outcome *out, int errnum, const char *fmt,
                      ...)
{
	va_list ap;

	va_start(ap, fmt);
	maildir_outcome_vset(out, PTL_STORAGE_TEMPFAIL, errnum, fmt, ap);
	va_end(ap);
	return PTL_ERROR;
}

static const struct ptl_service_ref maildir_provides[] = {
    {PTL_STORAGE_SERVICE, PTL_STORAGE_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "maildir",
    .version = "0.1.0",
    .description = "Mail storage in Maildir directories (Dovecot and "
                   "mutt compatible)",
    .license = "MIT",
    .provides = maildir_provides,
    .conf_keys = maildir_conf_keys,
    .conf_size = sizeof(struct maildir_conf),
    .check_config = maildir_check_config,
    .init_worker = maildir_init_worker,
    .exit_worker = maildir_exit_worker,
};
