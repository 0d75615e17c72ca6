/* SPDX-License-Identifier: MIT */
/* Logging: one escaped line per event to stderr, a file or syslog. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <petrel/log.h>

#include "core/cycle.h"
#include "core/log_internal.h"
#include "core/process.h"

/* Longest line written, newline included; longer messages end in "...". */
#define LOG_LINE_MAX 8192
/* Kept free at the end of a line for "...", the JSON closing and "\n". */
#define LOG_TAIL_RESERVE 8
#define LOG_PROC_MAX     64
#define LOG_IDENT_MAX    64

/*
 * Any thread reads these while formatting; only the main thread writes
 * them (ptl_log_configure, ptl_log_set_process). Atomics keep a level
 * check from racing a reload.
 */
static atomic_int log_level = PTL_LOG_INFO;
static atomic_int log_target = PTL_LOG_TARGET_STDERR;
static atomic_bool log_json = false;
/*
 * The file descriptor number never changes once opened: ptl_log_reopen()
 * dup2()s the new file onto it, so a thread writing concurrently writes
 * either to the old file or to the new one, never to a stale number.
 */
static atomic_int log_fd = -1;
static char log_path[PATH_MAX];
static char log_ident[LOG_IDENT_MAX] = "petrel";
static char log_proc[LOG_PROC_MAX] = "petrel";

static const char *const log_level_names[] = {
    [PTL_LOG_ERROR] = "error",   [PTL_LOG_WARN] = "warn",
    [PTL_LOG_NOTICE] = "notice", [PTL_LOG_INFO] = "info",
    [PTL_LOG_DEBUG] = "debug",
};

static const char log_hex[] = "0123456789abcdef";

/* Bytes that never reach a log line raw: they could forge or hide lines. */
static bool
log_byte_unsafe(unsigned char c)
{
	return c < 0x20 || c >= 0x7f;
}

/* ptl_log_escape() also escapes the characters it uses as quoting. */
static bool
log_byte_needs_escape(unsigned char c)
{
	return log_byte_unsafe(c) || c == '\\' || c == '"';
}

char *
ptl_log_escape(char *out, size_t out_size, const char *in, size_t in_len)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t need = 0, len = 0, limit, i, n;

	if (out == NULL || out_size == 0)
		return out;
	if (in == NULL)
		in_len = 0;
	for (i = 0; i < in_len; i++)
		need += log_byte_needs_escape(s[i]) ? 4 : 1;
	if (need < out_size) {
		limit = need;
	} else {
		/* Room for "..." (or as many dots as fit in a tiny buffer). */
		limit = out_size - 1 > 3 ? out_size - 1 - 3 : 0;
	}
	for (i = 0; i < in_len; i++) {
		if (log_byte_needs_escape(s[i])) {
			if (len + 4 > limit)
				break;
			out[len++] = '\\';
			out[len++] = 'x';
			out[len++] = log_hex[s[i] >> 4];
			out[len++] = log_hex[s[i] & 0xf];
		} else {
			if (len + 1 > limit)
				break;
			out[len++] = (char)s[i];
		}
	}
	for (n = 0; i < in_len && n < 3 && len < out_size - 1; n++)
		out[len++] = '.';
	out[len] = '\0';
	return out;
}

int
ptl_log_level_from_name(const char *name)
{
	int level;

	if (name == NULL)
		return -1;
	for (level = PTL_LOG_ERROR; level <= PTL_LOG_DEBUG; level++) {
		if (strcmp(name, log_level_names[level]) == 0)
			return level;
	}
	return -1;
}

int
ptl_log_enabled(enum ptl_log_level level)
{
	return (int)level <=
	       atomic_load_explicit(&log_level, memory_order_relaxed);
}

void
ptl_log_set_process(const char *kind)
{
	if (kind == NULL || kind[0] == '\0')
		kind = "petrel";
	(void)snprintf(log_proc, sizeof(log_proc), "%s", kind);
}

/* A line under construction in a caller's stack buffer. */
struct log_line {
	char *buf;
	size_t len;
	size_t cap;     /* usable bytes, LOG_TAIL_RESERVE kept aside */
	bool truncated; /* something did not fit */
};

static void
line_put(struct log_line *l, const char *s, size_t n)
{
	if (l->truncated || n > l->cap - l->len) {
		l->truncated = true;
		return;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void
line_puts(struct log_line *l, const char *s)
{
	line_put(l, s, strlen(s));
}

/*
 * The message text. Backslash and double quote stay as they are: peer data
 * in a message was already escaped by the caller with ptl_log_escape(), and
 * escaping it again would turn "\x0d" into "\x5cx0d". In JSON the same
 * text is then JSON-escaped, so a decoded "msg" equals the text line's.
 */
static void
line_put_escaped(struct log_line *l, const char *s, size_t n, bool json)
{
	char unit[6];
	size_t i, ulen;
	unsigned char c;

	for (i = 0; i < n && !l->truncated; i++) {
		c = (unsigned char)s[i];
		ulen = 0;
		if (log_byte_unsafe(c)) {
			unit[ulen++] = '\\';
			if (json)
				unit[ulen++] = '\\';
			unit[ulen++] = 'x';
			unit[ulen++] = log_hex[c >> 4];
			unit[ulen++] = log_hex[c & 0xf];
		} else if (json && (c == '\\' || c == '"')) {
			unit[ulen++] = '\\';
			unit[ulen++] = (char)c;
		} else {
			unit[ulen++] = (char)c;
		}
		line_put(l, unit, ulen);
	}
}

static void
line_put_time(struct log_line *l)
{
	struct timespec ts;
	struct tm tm;
	char when[40];
	size_t n;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0 ||
	    gmtime_r(&ts.tv_sec, &tm) == NULL) {
		line_puts(l, "1970-01-01T00:00:00.000Z");
		return;
	}
	n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	(void)snprintf(when + n, sizeof(when) - n, ".%03ldZ",
	               (long)(ts.tv_nsec / 1000000));
	line_puts(l, when);
}

static const char *
log_level_name(int level)
{
	if (level < PTL_LOG_ERROR)
		level = PTL_LOG_ERROR;
	if (level > PTL_LOG_DEBUG)
		level = PTL_LOG_DEBUG;
	return log_level_names[level];
}

/*
 * Fill l with the whole line, newline included. with_time is false for
 * syslog, which stamps lines itself.
 */
static void
log_build_line(struct log_line *l, int level, const char *id, const char *msg,
               size_t msg_len, bool msg_cut, bool json, bool with_time)
{
	char pid[24];

	(void)snprintf(pid, sizeof(pid), "%ld", (long)ptl_self_pid());
	if (json) {
		line_puts(l, "{");
		if (with_time) {
			line_puts(l, "\"ts\":\"");
			line_put_time(l);
			line_puts(l, "\",");
		}
		line_puts(l, "\"level\":\"");
		line_puts(l, log_level_name(level));
		line_puts(l, "\",\"proc\":\"");
		line_put_escaped(l, log_proc, strlen(log_proc), true);
		line_puts(l, "\",\"pid\":");
		line_puts(l, pid);
		line_puts(l, ",\"conn\":");
		if (id != NULL) {
			line_puts(l, "\"");
			line_put_escaped(l, id, strlen(id), true);
			line_puts(l, "\"");
		} else {
			line_puts(l, "null");
		}
		line_puts(l, ",\"msg\":\"");
		line_put_escaped(l, msg, msg_len, true);
	} else {
		if (with_time) {
			line_put_time(l);
			line_puts(l, " ");
		}
		line_puts(l, log_level_name(level));
		line_puts(l, " [");
		line_put_escaped(l, log_proc, strlen(log_proc), false);
		line_puts(l, " pid ");
		line_puts(l, pid);
		line_puts(l, "] ");
		if (id != NULL) {
			line_puts(l, "[c ");
			line_put_escaped(l, id, strlen(id), false);
			line_puts(l, "] ");
		}
		line_put_escaped(l, msg, msg_len, false);
	}
	/* The reserve guarantees room for this tail. */
	l->cap += LOG_TAIL_RESERVE;
	l->truncated = l->truncated || msg_cut;
	if (l->truncated) {
		memcpy(l->buf + l->len, "...", 3);
		l->len += 3;
	}
	if (json) {
		memcpy(l->buf + l->len, "\"}", 2);
		l->len += 2;
	}
	l->buf[l->len++] = '\n';
}

static void
log_write_fd(int fd, const char *s, size_t n)
{
	ssize_t w;

	/*
	 * One write(2) per line: with O_APPEND the kernel places it whole at
	 * the end, so lines of different processes never interleave. Retry
	 * only what an interrupted or short write left.
	 */
	while (n > 0) {
		w = write(fd, s, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		s += w;
		n -= (size_t)w;
	}
}

static int
log_syslog_priority(int level)
{
	switch (level) {
	case PTL_LOG_ERROR:
		return LOG_ERR;
	case PTL_LOG_WARN:
		return LOG_WARNING;
	case PTL_LOG_NOTICE:
		return LOG_NOTICE;
	case PTL_LOG_INFO:
		return LOG_INFO;
	default:
		return LOG_DEBUG;
	}
}

static void log_emit(int level, const char *id, const char *fmt, va_list ap)
    PTL_PRINTF(3, 0);

static void
log_emit(int level, const char *id, const char *fmt, va_list ap)
{
	char msg[LOG_LINE_MAX];
	char buf[LOG_LINE_MAX];
	struct log_line l = {buf, 0, sizeof(buf) - LOG_TAIL_RESERVE, false};
	int target, fd, n, saved_errno;
	bool json;
	size_t msg_len;

	/* Logging must not change errno under a caller that reports it. */
	saved_errno = errno;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0) {
		msg[0] = '\0';
		n = 0;
	}
	msg_len = (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
	target = atomic_load_explicit(&log_target, memory_order_relaxed);
	json = atomic_load_explicit(&log_json, memory_order_relaxed);

	log_build_line(&l, level, id, msg, msg_len, msg_len < (size_t)n, json,
	               target != PTL_LOG_TARGET_SYSLOG);
	switch (target) {
	case PTL_LOG_TARGET_SYSLOG:
		syslog(log_syslog_priority(level), "%.*s", (int)(l.len - 1),
		       l.buf);
		break;
	case PTL_LOG_TARGET_FILE:
		fd = atomic_load_explicit(&log_fd, memory_order_relaxed);
		log_write_fd(fd >= 0 ? fd : STDERR_FILENO, l.buf, l.len);
		break;
	default:
		log_write_fd(STDERR_FILENO, l.buf, l.len);
		break;
	}
	errno = saved_errno;
}

void
ptl_logv(enum ptl_log_level level, const char *fmt, va_list ap)
{
	if (!ptl_log_enabled(level))
		return;
	log_emit((int)level, NULL, fmt, ap);
}

void
ptl_log(enum ptl_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!ptl_log_enabled(level))
		return;
	va_start(ap, fmt);
	log_emit((int)level, NULL, fmt, ap);
	va_end(ap);
}

void
ptl_log_with_id(enum ptl_log_level level, const char *id, const char *fmt,
                va_list ap)
{
	if (!ptl_log_enabled(level))
		return;
	log_emit((int)level, id, fmt, ap);
}

static int
log_open_file(const char *path, struct ptl_error *err)
{
	int fd;

	do {
		fd = open(path,
		          O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY,
		          0640);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return ptl_error_set_errno(err, errno,
		                           "cannot open log file \"%s\"", path);
	return fd;
}

/* Put the file open at path on log_fd, keeping log_fd's number. */
static int
log_install_file(const char *path, struct ptl_error *err)
{
	int fd, old;

	fd = log_open_file(path, err);
	if (fd < 0)
		return PTL_ERROR;
	old = atomic_load(&log_fd);
	if (old < 0) {
		atomic_store(&log_fd, fd);
		return PTL_OK;
	}
	if (dup3(fd, old, O_CLOEXEC) < 0) {
		int e = errno;

		(void)close(fd);
		return ptl_error_set_errno(
		    err, e, "cannot reopen log file \"%s\"", path);
	}
	(void)close(fd);
	return PTL_OK;
}

int
ptl_log_configure(const struct ptl_log_conf *conf, struct ptl_error *err)
{
	static const struct ptl_log_conf defaults = {
	    .level = PTL_LOG_INFO,
	    .target = PTL_LOG_TARGET_STDERR,
	};
	int old_target, fd;
	const char *ident;
	size_t len;

	/* NULL restores the state before any configuration. */
	if (conf == NULL)
		conf = &defaults;
	if (conf->level < PTL_LOG_ERROR || conf->level > PTL_LOG_DEBUG)
		return ptl_error_set(err, "invalid log level %d", conf->level);
	old_target = atomic_load(&log_target);

	switch (conf->target) {
	case PTL_LOG_TARGET_STDERR:
		break;
	case PTL_LOG_TARGET_FILE:
		if (conf->file == NULL || conf->file[0] == '\0')
			return ptl_error_set(err, "log target \"file\" "
			                          "needs a file name");
		len = strlen(conf->file);
		if (len >= sizeof(log_path))
			return ptl_error_set(err, "log file name too long");
		if (log_install_file(conf->file, err) != PTL_OK)
			return PTL_ERROR;
		memcpy(log_path, conf->file, len + 1);
		break;
	case PTL_LOG_TARGET_SYSLOG:
		ident = conf->ident != NULL && conf->ident[0] != '\0'
		            ? conf->ident
		            : "petrel";
		if (old_target == PTL_LOG_TARGET_SYSLOG)
			closelog();
		/* openlog() keeps the pointer: hand it our own copy. */
		(void)snprintf(log_ident, sizeof(log_ident), "%s", ident);
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
		break;
	default:
		return ptl_error_set(err, "invalid log target %d",
		                     conf->target);
	}

	atomic_store(&log_level, conf->level);
	atomic_store(&log_json, conf->json);
	atomic_store(&log_target, conf->target);

	if (conf->target != PTL_LOG_TARGET_FILE) {
		fd = atomic_exchange(&log_fd, -1);
		if (fd >= 0)
			(void)close(fd);
		log_path[0] = '\0';
	}
	if (old_target == PTL_LOG_TARGET_SYSLOG &&
	    conf->target != PTL_LOG_TARGET_SYSLOG)
		closelog();
	return PTL_OK;
}

int
ptl_log_reopen(struct ptl_error *err)
{
	if (atomic_load(&log_target) != PTL_LOG_TARGET_FILE ||
	    log_path[0] == '\0')
		return PTL_OK;
	return log_install_file(log_path, err);
}
