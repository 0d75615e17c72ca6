/* SPDX-License-Identifier: MIT */
/* Basic types shared by every Petrel API: result codes, errors, attributes. */
#ifndef PETREL_CORE_H
#define PETREL_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Marks a function exported by the petrel binary to modules. */
#define PTL_API __attribute__((visibility("default")))
/** Results of every public function that can fail must be checked. */
#define PTL_WUR __attribute__((warn_unused_result))
/** printf-style format checking. */
#define PTL_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

/** Result codes returned as `int` by Petrel functions and callbacks. */
enum ptl_rc {
	PTL_OK = 0,        /**< success */
	PTL_ERROR = -1,    /**< failure; details in the caller's ptl_error */
	PTL_AGAIN = -2,    /**< not finished: call again on the next event */
	PTL_DONE = -3,     /**< finished, nothing more to do */
	PTL_DECLINED = -4, /**< not handled here / not applicable */
};

/** Capacity of the text and JSON path in struct ptl_error. */
#define PTL_ERROR_TEXT_MAX 512
#define PTL_ERROR_PATH_MAX 256

/**
 * Details of a failure, owned by the caller and filled by the callee.
 *
 * A callee that returns PTL_ERROR fills `text` (a complete sentence
 * fragment such as "expected \"host:port\""), and where it applies `path`
 * (the JSON path of the offending config value, e.g.
 * "modules.smtp.listen[1].address") and `sys_errno`.
 */
struct ptl_error {
	char text[PTL_ERROR_TEXT_MAX];
	char path[PTL_ERROR_PATH_MAX];
	int sys_errno;
};

/**
 * Fill @p err with a formatted message (truncated to fit); clears path
 * and errno. Safe to call with @p err NULL. Any thread.
 * @return PTL_ERROR, so callers can write `return ptl_error_set(...)`.
 */
PTL_API int ptl_error_set(struct ptl_error *err, const char *fmt, ...)
    PTL_PRINTF(2, 3);

/**
 * Like ptl_error_set() and also records @p path (a JSON path). Any thread.
 * @return PTL_ERROR.
 */
PTL_API int ptl_error_set_path(struct ptl_error *err, const char *path,
                               const char *fmt, ...) PTL_PRINTF(3, 4);

/**
 * Like ptl_error_set() with ": strerror(errnum)" appended and sys_errno
 * set to @p errnum. Any thread.
 * @return PTL_ERROR.
 */
PTL_API int ptl_error_set_errno(struct ptl_error *err, int errnum,
                                const char *fmt, ...) PTL_PRINTF(3, 4);

#ifdef __cplusplus
}
#endif
#endif
