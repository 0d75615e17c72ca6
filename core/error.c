/* SPDX-License-Identifier: MIT */
/* Filling caller-owned struct ptl_error values. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <petrel/core.h>

/*
 * Formats into a local copy first: callers may pass err->text or err->path
 * as an argument (to wrap an inner error), and vsnprintf into one of its
 * own arguments is undefined.
 */
static void error_vformat(struct ptl_error *err, const char *fmt, va_list ap)
    PTL_PRINTF(2, 0);

static void
error_vformat(struct ptl_error *err, const char *fmt, va_list ap)
{
	char text[PTL_ERROR_TEXT_MAX];

	if (vsnprintf(text, sizeof(text), fmt, ap) < 0)
		text[0] = '\0';
	memcpy(err->text, text, sizeof(text));
}

/* An over-long path is cut, never overflowed. */
static void
error_copy_path(struct ptl_error *err, const char *path)
{
	size_t len;

	if (path == NULL) {
		err->path[0] = '\0';
		return;
	}
	len = strnlen(path, sizeof(err->path) - 1);
	memmove(err->path, path, len);
	err->path[len] = '\0';
}

int
ptl_error_set(struct ptl_error *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return PTL_ERROR;
	va_start(ap, fmt);
	error_vformat(err, fmt, ap);
	va_end(ap);
	err->path[0] = '\0';
	err->sys_errno = 0;
	return PTL_ERROR;
}

int
ptl_error_set_path(struct ptl_error *err, const char *path, const char *fmt,
                   ...)
{
	va_list ap;

	if (err == NULL)
		return PTL_ERROR;
	va_start(ap, fmt);
	error_vformat(err, fmt, ap);
	va_end(ap);
	error_copy_path(err, path);
	err->sys_errno = 0;
	return PTL_ERROR;
}

int
ptl_error_set_errno(struct ptl_error *err, int errnum, const char *fmt, ...)
{
	va_list ap;
	char reason[128];
	const char *msg;
	size_t len;

	if (err == NULL)
		return PTL_ERROR;
	/* GNU strerror_r: returns either a static string or fills ours. */
	msg = strerror_r(errnum, reason, sizeof(reason));
	if (msg == NULL)
		msg = "unknown error";
	va_start(ap, fmt);
	error_vformat(err, fmt, ap);
	va_end(ap);
	len = strlen(err->text);
	if (len < sizeof(err->text) - 1)
		(void)snprintf(err->text + len, sizeof(err->text) - len, ": %s",
		               msg);
	err->path[0] = '\0';
	err->sys_errno = errnum;
	return PTL_ERROR;
}
