/* SPDX-License-Identifier: MIT */
/* Declarative config key tables: JSON section -> typed module struct. */
#ifndef PETREL_CONFIG_H
#define PETREL_CONFIG_H

#include <stdbool.h>
#include <jansson.h>
#include <petrel/core.h>
#include <petrel/pool.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Value types of config keys, and the C type each one fills at
 * ptl_conf_key.offset in the module's config struct.
 */
enum ptl_conf_type {
	PTL_CONF_STRING = 1, /**< JSON string -> `const char *` */
	PTL_CONF_INT,        /**< JSON integer -> `int64_t`, within min..max */
	PTL_CONF_BOOL,       /**< JSON true/false -> `bool` */
	PTL_CONF_SIZE, /**< integer bytes or "10k"/"25M"/"1G" -> `uint64_t` */
	PTL_CONF_DURATION, /**< integer seconds or "500ms"/"30s"/"5m"/"4h"/"5d"
	                      -> `int64_t` milliseconds */
	PTL_CONF_ENUM,     /**< one of enum_names -> `int` (its index) */
	PTL_CONF_STRING_LIST, /**< array of strings -> struct ptl_conf_list of
	                         `const char *` */
	PTL_CONF_OBJECT, /**< object parsed with `sub` -> an embedded struct
	                    at offset */
	PTL_CONF_OBJECT_LIST, /**< array of objects parsed with `sub` -> struct
	                         ptl_conf_list of items of `sub_size` bytes */
	PTL_CONF_ADDRESS,     /**< "host:port", "[v6]:port" or "*:port" ->
	                         struct ptl_conf_address */
	PTL_CONF_JSON,        /**< any JSON value -> `json_t *` (borrowed; valid
	                         for the config generation) */
};

/** Key flags. */
#define PTL_CONF_REQUIRED 0x1u /**< absent key is an error */

/** An array value: `count` items at `items`, allocated from the pool. */
struct ptl_conf_list {
	size_t count;
	void *items;
};

/** A parsed listen/connect address. */
struct ptl_conf_address {
	const char *text; /**< as written, e.g. "[::1]:2525" */
	const char *host; /**< "127.0.0.1", "::1", or "*" for any address */
	uint16_t port;
};

/**
 * Optional validator run after the type check: inspect the parsed field at
 * @p field (or the raw @p value) and return PTL_OK, or PTL_ERROR with
 * err->text set (the core fills err->path).
 */
typedef int (*ptl_conf_validate_fn)(const json_t *value, void *field,
                                    struct ptl_error *err);

/**
 * One key of a config object. Tables end with an entry whose name is NULL.
 * Unknown keys in the JSON object are errors.
 */
struct ptl_conf_key {
	const char *name;              /**< JSON key */
	enum ptl_conf_type type;       /**< value type (decides the C type) */
	unsigned flags;                /**< PTL_CONF_REQUIRED */
	size_t offset;                 /**< offsetof() in the target struct */
	const char *def;               /**< default, written as in a config
	                                  ("30s", "10M", "true", "mx"); NULL: none
	                                  (the field stays zero) */
	int64_t min, max;              /**< bounds for INT, SIZE, DURATION (ms),
	                                  and list lengths; both 0: no bound */
	const char *const *enum_names; /**< NULL-terminated, for ENUM */
	const struct ptl_conf_key *sub; /**< keys of OBJECT / OBJECT_LIST */
	size_t sub_size;               /**< item struct size, for OBJECT_LIST */
	ptl_conf_validate_fn validate; /**< optional extra check */
	const char *doc;               /**< one-line description for the docs */
};

/**
 * Parse JSON object @p obj with @p keys into the struct at @p out (zeroed
 * by the caller), allocating strings and lists from @p pool. @p path is
 * the JSON path of @p obj, used in messages ("modules.smtp").
 * Pure: no side effects beyond @p out and @p pool. Master or worker.
 * @return PTL_OK, or PTL_ERROR with err->path naming the offending value
 * (e.g. "modules.smtp.listen[1].address") and err->text the reason.
 */
PTL_API int ptl_conf_parse(const struct ptl_conf_key *keys, const json_t *obj,
                           void *out, struct ptl_pool *pool, const char *path,
                           struct ptl_error *err) PTL_WUR;

/**
 * Parse a size ("512", "10k", "25M", "1G"; binary multiples) into bytes.
 * @return PTL_OK or PTL_ERROR (err->text says why).
 */
PTL_API int ptl_conf_parse_size(const char *text, uint64_t *bytes_out,
                                struct ptl_error *err) PTL_WUR;

/**
 * Parse a duration ("250ms", "30s", "5m", "4h", "5d"; a bare number is
 * seconds) into milliseconds.
 * @return PTL_OK or PTL_ERROR.
 */
PTL_API int ptl_conf_parse_duration(const char *text, int64_t *ms_out,
                                    struct ptl_error *err) PTL_WUR;

/**
 * Parse "host:port", "[v6]:port" or "*:port".
 * @return PTL_OK or PTL_ERROR with text "expected \"host:port\"".
 */
PTL_API int ptl_conf_parse_address(struct ptl_pool *pool, const char *text,
                                   struct ptl_conf_address *out,
                                   struct ptl_error *err) PTL_WUR;

/**
 * Make the file name *@p path absolute: a relative one is taken from the
 * working directory petrel was started in, so that a later chdir() or
 * chroot() does not change what it names. Call it from a module's
 * postconfiguration step (which runs before anything changes directory);
 * the new string is allocated from @p pool, usually the instance's pool.
 * An absolute name is left as it is. Since ABI 1.1.
 * @return PTL_OK, or PTL_ERROR with err->path set to @p key (the JSON
 * path, e.g. "modules.maildir.location") for an empty name, an
 * unreadable working directory or no memory.
 */
PTL_API int ptl_conf_path_absolute(struct ptl_pool *pool, const char **path,
                                   const char *key,
                                   struct ptl_error *err) PTL_WUR;

#ifdef __cplusplus
}
#endif
#endif
