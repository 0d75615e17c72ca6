/* SPDX-License-Identifier: MIT */
/* Logging: levels, one line per event, process and connection ids. */
#ifndef PETREL_LOG_H
#define PETREL_LOG_H

#include <stdarg.h>
#include <petrel/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Severity levels, most severe first (syslog order). */
enum ptl_log_level {
	PTL_LOG_ERROR = 3,
	PTL_LOG_WARN = 4,
	PTL_LOG_NOTICE = 5,
	PTL_LOG_INFO = 6,
	PTL_LOG_DEBUG = 7,
};

/**
 * Log one line at @p level. The core adds the time, the level, the process
 * kind and pid; the text must be one line: control characters in it are
 * escaped by the core. Lines below the configured level cost one
 * comparison. Any thread.
 */
PTL_API void ptl_log(enum ptl_log_level level, const char *fmt, ...)
    PTL_PRINTF(2, 3);

/** va_list variant of ptl_log(). */
PTL_API void ptl_logv(enum ptl_log_level level, const char *fmt, va_list ap);

/** Whether a line at @p level would be written (to skip costly formatting). */
PTL_API int ptl_log_enabled(enum ptl_log_level level);

/**
 * Copy untrusted bytes (an envelope address, a HELO name, a header) into
 * @p out as printable ASCII: CR, LF, NUL, other controls, backslash,
 * double quote and bytes >= 0x7f become \\xHH escapes. The result is
 * always NUL-terminated and truncated with "..." to fit @p out_size.
 * Use it whenever peer-supplied data goes into a log line or a header.
 * @return @p out.
 */
PTL_API char *ptl_log_escape(char *out, size_t out_size, const char *in,
                             size_t in_len);

#ifdef __cplusplus
}
#endif
#endif
