/* SPDX-License-Identifier: MIT */
/* Internal: configuring where and how log lines go. */
#ifndef PETREL_CORE_LOG_INTERNAL_H
#define PETREL_CORE_LOG_INTERNAL_H

#include <stdbool.h>
#include <petrel/log.h>

enum ptl_log_target {
	PTL_LOG_TARGET_STDERR = 0,
	PTL_LOG_TARGET_FILE = 1,
	PTL_LOG_TARGET_SYSLOG = 2,
};

struct ptl_log_conf;

/* Apply a log config (opens the file). Before: stderr, level info. */
int ptl_log_configure(const struct ptl_log_conf *conf, struct ptl_error *err);
/* Name of this process in log lines: "master", "worker 2", "helper relay". */
void ptl_log_set_process(const char *kind);
/* Reopen the log file (SIGUSR1, log rotation). */
int ptl_log_reopen(struct ptl_error *err);
/* Log with an explicit connection id prefix (used by ptl_conn_log). */
void ptl_log_with_id(enum ptl_log_level level, const char *id, const char *fmt,
                     va_list ap);
/* Parse "error", "warn", "notice", "info", "debug". -1 if unknown. */
int ptl_log_level_from_name(const char *name);

#endif
