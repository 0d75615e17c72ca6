/* SPDX-License-Identifier: MIT */
/* The sqlite module: descriptor, config, lifecycle, service table. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sqlite_store.h"

static const struct ptl_conf_key sqlite_conf_keys[] = {
    {
        .name = "database",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct sqlite_conf, path),
        .def = "var/mail/mailstore.db",
        .doc = "The database file holding every mailbox (created "
               "when missing). Relative paths are relative to the "
               "working directory at startup. (Not \"path\": that "
               "key names the module file.)",
    },
    {
        .name = "quota",
        .type = PTL_CONF_SIZE,
        .offset = offsetof(struct sqlite_conf, quota),
        .def = "0",
        .doc = "Largest mailbox per user (e.g. \"1G\"); a delivery "
               "that would exceed it fails permanently. 0: no limit.",
    },
    {
        .name = "busy_timeout",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct sqlite_conf, busy_timeout),
        .def = "30s",
        .min = 0,
        .max = 600000,
        .doc = "How long a write waits for another process's write "
               "transaction before failing temporarily.",
    },
    {.name = NULL},
};

static int
sqlite_check_config(struct ptl_instance *inst, const json_t *section,
                    void *conf_ptr, struct ptl_error *err)
{
	struct sqlite_conf *conf = conf_ptr;

	if (conf->path[0] == '\0')
		return ptl_error_set_path(err, "modules.sqlite.database",
		                          "expected a file name");
	return ptl_conf_path_absolute(ptl_instance_pool(inst), &conf->path,
	                              "modules.sqlite.database", err);
}

static const struct ptl_storage_methods sqlite_methods = {
    .version = PTL_STORAGE_VERSION,
    .deliver = sqlite_deliver,
    .open = sqlite_open,
    .count = sqlite_count,
    .message = sqlite_message,
    .read = sqlite_read,
    .expunge = sqlite_expunge,
    .close = sqlite_close,
    .quota = sqlite_quota,
};

void
sqlite_instance_ref(struct sqlite_instance *si)
{
	atomic_fetch_add(&si->refs, 1);
}

void
sqlite_instance_unref(struct sqlite_instance *si)
{
	if (atomic_fetch_sub(&si->refs, 1) != 1)
		return;
	/* Queued deliveries hold references: the queue is empty here. */
	sqlite_conn_close_all(si);
	pthread_mutex_destroy(&si->batch_lock);
	pthread_mutex_destroy(&si->lock);
	free(si);
}

static int
sqlite_init_worker(struct ptl_instance *inst, struct ptl_error *err)
{
	struct sqlite_instance *si;

	/*
	 * Connections move between pool threads (one task at a time each),
	 * which needs at least the multi-thread build of SQLite.
	 */
	if (sqlite3_threadsafe() == 0)
		return ptl_error_set(err,
		                     "SQLite %s is built without thread "
		                     "support (SQLITE_THREADSAFE=0)",
		                     sqlite3_libversion());
	si = calloc(1, sizeof(*si));
	if (si == NULL)
		return ptl_error_set(err, "out of memory");
	if (pthread_mutex_init(&si->lock, NULL) != 0) {
		free(si);
		return ptl_error_set(err, "cannot create a mutex");
	}
	if (pthread_mutex_init(&si->batch_lock, NULL) != 0) {
		pthread_mutex_destroy(&si->lock);
		free(si);
		return ptl_error_set(err, "cannot create a mutex");
	}
	atomic_init(&si->refs, 1);
	si->conf = ptl_instance_conf(inst);
	/*
	 * The database is opened lazily by the first task: a missing or
	 * corrupt file then fails that delivery (4xx) and is retried later,
	 * instead of keeping the whole server from starting.
	 */
	if (ptl_service_register(inst, PTL_STORAGE_SERVICE, PTL_STORAGE_VERSION,
	                         &sqlite_methods, si, err) != PTL_OK) {
		sqlite_instance_unref(si);
		return PTL_ERROR;
	}
	ptl_instance_set_data(inst, si);
	return PTL_OK;
}

static void
sqlite_exit_worker(struct ptl_instance *inst)
{
	struct sqlite_instance *si = ptl_instance_data(inst);

	ptl_instance_set_data(inst, NULL);
	if (si != NULL)
		sqlite_instance_unref(si);
}

static void
sqlite_outcome_vset(struct sqlite_outcome *out, enum ptl_storage_status status,
                    int errnum, const char *fmt, va_list ap)
{
	int n;

	out->status = status;
	n = vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	if (n < 0)
		out->reason[0] = '\0';
	if (errnum != 0 && n >= 0 && (size_t)n < sizeof(out->reason))
		snprintf(out->reason + n, sizeof(out->reason) - (size_t)n,
		         ": %s", strerror(errnum));
}

int
sqlite_outcome_set(struct sqlite_outcome *out, enum ptl_storage_status status,
                   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sqlite_outcome_vset(out, status, 0, fmt, ap);
	va_end(ap);
	return PTL_ERROR;
}

int
sqlite_outcome_errno(struct sqlite_outcome *out, int errnum, const char *fmt,
                     ...)
{
	va_list ap;

	va_start(ap, fmt);
	sqlite_outcome_vset(out, PTL_STORAGE_TEMPFAIL, errnum, fmt, ap);
	va_end(ap);
	return PTL_ERROR;
}

/*
 * Every database error is temporary for the sender: a full disk, a busy
 * or corrupt file, wrong permissions get fixed by an admin while the
 * sending MTA retries, instead of bouncing the message.
 */
int
sqlite_outcome_db(struct sqlite_outcome *out, sqlite3 *db, int rc,
                  const char *step)
{
	const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
	const char *code = sqlite3_errstr(rc);

	if (strcmp(msg, code) == 0)
		return sqlite_outcome_set(out, PTL_STORAGE_TEMPFAIL,
		                          "database %s: %s", step, msg);
	return sqlite_outcome_set(out, PTL_STORAGE_TEMPFAIL,
	                          "database %s: %s (%s)", step, msg, code);
}

/*
 * The user is a key, never a path, so only sanity limits apply: the
 * lock file name uses a digest of it.
 */
int
sqlite_user_check(const char *user, struct sqlite_outcome *res)
{
	size_t len = strlen(user);

	if (len == 0 || len > SQLITE_USER_MAX)
		return sqlite_outcome_set(res, PTL_STORAGE_PERMFAIL,
		                          "invalid user name");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)user[i];

		if (c < 0x20 || c == 0x7f)
			return sqlite_outcome_set(res, PTL_STORAGE_PERMFAIL,
			                          "invalid user name");
	}
	return PTL_OK;
}

void
sqlite_log_failure(const char *op, const char *user,
                   const struct sqlite_outcome *res)
{
	char safe[128];

	ptl_log_escape(safe, sizeof(safe), user, strlen(user));
	ptl_log(res->status == PTL_STORAGE_TEMPFAIL ? PTL_LOG_ERROR
	                                            : PTL_LOG_NOTICE,
	        "sqlite: %s %s failed: %s", op, safe, res->reason);
}

static const struct ptl_service_ref sqlite_provides[] = {
    {PTL_STORAGE_SERVICE, PTL_STORAGE_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "sqlite",
    .version = "0.1.0",
    .description = "Mail storage in one SQLite database (WAL mode)",
    .license = "MIT",
    .provides = sqlite_provides,
    .conf_keys = sqlite_conf_keys,
    .conf_size = sizeof(struct sqlite_conf),
    .check_config = sqlite_check_config,
    .init_worker = sqlite_init_worker,
    .exit_worker = sqlite_exit_worker,
};
