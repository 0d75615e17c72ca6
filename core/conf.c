/* SPDX-License-Identifier: MIT */
/* Config key tables: check a JSON section and fill a module's struct. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <petrel/config.h>
#include <petrel/log.h>

#include "core/conf_doc.h"
#include "core/conf_internal.h"

/* Valid key names are listed in an "unknown key" message up to this size. */
#define CONF_KEY_LIST_MAX 200
/* Longest key name quoted in a message (escaped). */
#define CONF_NAME_MAX 96

static int conf_parse_object(const struct ptl_conf_key *keys, const json_t *obj,
                             void *out, struct ptl_pool *pool, const char *path,
                             unsigned depth, struct ptl_error *err);

static void
conf_path_key(char *out, size_t size, const char *path, const char *key)
{
	if (path == NULL || path[0] == '\0')
		(void)snprintf(out, size, "%s", key);
	else
		(void)snprintf(out, size, "%s.%s", path, key);
}

static void
conf_path_index(char *out, size_t size, const char *path, size_t index)
{
	(void)snprintf(out, size, "%s[%zu]", path, index);
}

/* A JSON string without embedded NUL, copied into the pool. */
static int
conf_string(const json_t *v, struct ptl_pool *pool, const char **out,
            const char *path, struct ptl_error *err)
{
	const char *s;
	size_t len;
	char *copy;

	if (!json_is_string(v))
		return ptl_error_set_path(err, path, "expected a string");
	s = json_string_value(v);
	len = json_string_length(v);
	/* A NUL inside would silently cut the value C code sees. */
	if (strlen(s) != len)
		return ptl_error_set_path(err, path,
		                          "expected a string without NUL "
		                          "characters");
	copy = ptl_pstrndup(pool, s, len);
	if (copy == NULL)
		return ptl_error_set_path(err, path, "out of memory");
	*out = copy;
	return PTL_OK;
}

static int
conf_parse_int(const struct ptl_conf_key *k, const json_t *v, int64_t *out,
               const char *path, struct ptl_error *err)
{
	json_int_t n;

	if (json_is_integer(v)) {
		n = json_integer_value(v);
		if (!conf_bounded(k) || (n >= k->min && n <= k->max)) {
			*out = (int64_t)n;
			return PTL_OK;
		}
	}
	if (conf_bounded(k))
		return ptl_error_set_path(err, path,
		                          "expected an integer between %" PRId64
		                          " and %" PRId64,
		                          k->min, k->max);
	return ptl_error_set_path(err, path, "expected an integer");
}

static int
conf_parse_size_value(const struct ptl_conf_key *k, const json_t *v,
                      uint64_t *out, const char *path, struct ptl_error *err)
{
	char lo[32], hi[32];
	uint64_t n;

	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return ptl_error_set_path(err, path, CONF_HINT_SIZE);
		n = (uint64_t)json_integer_value(v);
	} else if (json_is_string(v) &&
	           strlen(json_string_value(v)) == json_string_length(v)) {
		if (ptl_conf_parse_size(json_string_value(v), &n, err) !=
		    PTL_OK)
			return ptl_error_set_path(err, path, "%s", err->text);
	} else {
		return ptl_error_set_path(err, path, CONF_HINT_SIZE);
	}
	if (conf_bounded(k) && ((k->min > 0 && n < (uint64_t)k->min) ||
	                        k->max < 0 || n > (uint64_t)k->max)) {
		ptl_conf_format_size(lo, sizeof(lo), k->min);
		ptl_conf_format_size(hi, sizeof(hi), k->max);
		return ptl_error_set_path(
		    err, path, "expected a size between %s and %s", lo, hi);
	}
	*out = n;
	return PTL_OK;
}

static int
conf_parse_duration_value(const struct ptl_conf_key *k, const json_t *v,
                          int64_t *out, const char *path, struct ptl_error *err)
{
	char lo[32], hi[32];
	json_int_t secs;
	int64_t ms;

	if (json_is_integer(v)) {
		secs = json_integer_value(v);
		if (secs < 0)
			return ptl_error_set_path(err, path,
			                          CONF_HINT_DURATION);
		if (secs > INT64_MAX / 1000)
			return ptl_error_set_path(
			    err, path, CONF_HINT_DURATION ": too large");
		ms = (int64_t)secs * 1000;
	} else if (json_is_string(v) &&
	           strlen(json_string_value(v)) == json_string_length(v)) {
		if (ptl_conf_parse_duration(json_string_value(v), &ms, err) !=
		    PTL_OK)
			return ptl_error_set_path(err, path, "%s", err->text);
	} else {
		return ptl_error_set_path(err, path, CONF_HINT_DURATION);
	}
	if (conf_bounded(k) && (ms < k->min || ms > k->max)) {
		ptl_conf_format_duration(lo, sizeof(lo), k->min);
		ptl_conf_format_duration(hi, sizeof(hi), k->max);
		return ptl_error_set_path(
		    err, path, "expected a duration between %s and %s", lo, hi);
	}
	*out = ms;
	return PTL_OK;
}

/* Append `"name"` (comma-separated) to out; false when it does not fit. */
static bool
conf_quote_name(char *out, size_t size, size_t *len, const char *name)
{
	int n;

	n = snprintf(out + *len, size - *len, "%s\"%s\"", *len > 0 ? ", " : "",
	             name);
	if (n < 0 || (size_t)n >= size - *len)
		return false;
	*len += (size_t)n;
	return true;
}

static int
conf_parse_enum(const struct ptl_conf_key *k, const json_t *v, int *out,
                const char *path, struct ptl_error *err)
{
	char names[PTL_ERROR_TEXT_MAX - 32];
	const char *s;
	size_t i, len = 0;

	if (k->enum_names == NULL)
		return ptl_error_set_path(err, path,
		                          "key table error: no enum names");
	if (json_is_string(v)) {
		s = json_string_value(v);
		for (i = 0; k->enum_names[i] != NULL; i++) {
			if (strlen(s) == json_string_length(v) &&
			    strcmp(s, k->enum_names[i]) == 0) {
				*out = (int)i;
				return PTL_OK;
			}
		}
	}
	names[0] = '\0';
	for (i = 0; k->enum_names[i] != NULL; i++) {
		if (!conf_quote_name(names, sizeof(names), &len,
		                     k->enum_names[i]))
			return ptl_error_set_path(
			    err, path, "expected one of %s...", names);
	}
	return ptl_error_set_path(err, path, "expected one of %s", names);
}

static int
conf_check_count(const struct ptl_conf_key *k, size_t count, const char *path,
                 struct ptl_error *err)
{
	if (!conf_bounded(k))
		return PTL_OK;
	if (count > INT64_MAX || (int64_t)count < k->min ||
	    (int64_t)count > k->max)
		return ptl_error_set_path(err, path,
		                          "expected between %" PRId64
		                          " and %" PRId64 " items",
		                          k->min, k->max);
	return PTL_OK;
}

static int
conf_parse_string_list(const struct ptl_conf_key *k, const json_t *v,
                       struct ptl_conf_list *out, struct ptl_pool *pool,
                       const char *path, struct ptl_error *err)
{
	char epath[PTL_ERROR_PATH_MAX];
	const char **items = NULL;
	size_t count, i;

	if (!json_is_array(v))
		return ptl_error_set_path(err, path,
		                          "expected an array of strings");
	count = json_array_size(v);
	if (conf_check_count(k, count, path, err) != PTL_OK)
		return PTL_ERROR;
	if (count > 0) {
		if (count > SIZE_MAX / sizeof(*items))
			return ptl_error_set_path(err, path, "out of memory");
		items = ptl_palloc(pool, count * sizeof(*items));
		if (items == NULL)
			return ptl_error_set_path(err, path, "out of memory");
	}
	for (i = 0; i < count; i++) {
		conf_path_index(epath, sizeof(epath), path, i);
		if (conf_string(json_array_get(v, i), pool, &items[i], epath,
		                err) != PTL_OK)
			return PTL_ERROR;
	}
	out->count = count;
	out->items = items;
	return PTL_OK;
}

static int
conf_parse_object_list(const struct ptl_conf_key *k, const json_t *v,
                       struct ptl_conf_list *out, struct ptl_pool *pool,
                       const char *path, unsigned depth, struct ptl_error *err)
{
	char epath[PTL_ERROR_PATH_MAX];
	char *items = NULL;
	size_t count, i;

	if (k->sub == NULL || k->sub_size == 0)
		return ptl_error_set_path(err, path,
		                          "key table error: no sub keys");
	if (!json_is_array(v))
		return ptl_error_set_path(err, path,
		                          "expected an array of objects");
	count = json_array_size(v);
	if (conf_check_count(k, count, path, err) != PTL_OK)
		return PTL_ERROR;
	if (count > 0) {
		if (count > SIZE_MAX / k->sub_size)
			return ptl_error_set_path(err, path, "out of memory");
		items = ptl_pcalloc(pool, count * k->sub_size);
		if (items == NULL)
			return ptl_error_set_path(err, path, "out of memory");
	}
	for (i = 0; i < count; i++) {
		conf_path_index(epath, sizeof(epath), path, i);
		if (conf_parse_object(k->sub, json_array_get(v, i),
		                      items + i * k->sub_size, pool, epath,
		                      depth + 1, err) != PTL_OK)
			return PTL_ERROR;
	}
	out->count = count;
	out->items = items;
	return PTL_OK;
}

static int
conf_parse_value(const struct ptl_conf_key *k, const json_t *v, void *field,
                 struct ptl_pool *pool, const char *path, unsigned depth,
                 struct ptl_error *err)
{
	switch (k->type) {
	case PTL_CONF_STRING:
		return conf_string(v, pool, (const char **)field, path, err);
	case PTL_CONF_INT:
		return conf_parse_int(k, v, field, path, err);
	case PTL_CONF_BOOL:
		if (!json_is_boolean(v))
			return ptl_error_set_path(err, path,
			                          "expected true or false");
		*(bool *)field = json_is_true(v);
		return PTL_OK;
	case PTL_CONF_SIZE:
		return conf_parse_size_value(k, v, field, path, err);
	case PTL_CONF_DURATION:
		return conf_parse_duration_value(k, v, field, path, err);
	case PTL_CONF_ENUM:
		return conf_parse_enum(k, v, field, path, err);
	case PTL_CONF_STRING_LIST:
		return conf_parse_string_list(k, v, field, pool, path, err);
	case PTL_CONF_OBJECT:
		if (k->sub == NULL)
			return ptl_error_set_path(
			    err, path, "key table error: no sub keys");
		return conf_parse_object(k->sub, v, field, pool, path,
		                         depth + 1, err);
	case PTL_CONF_OBJECT_LIST:
		return conf_parse_object_list(k, v, field, pool, path, depth,
		                              err);
	case PTL_CONF_ADDRESS:
		if (!json_is_string(v) ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return ptl_error_set_path(err, path, CONF_HINT_ADDRESS);
		if (ptl_conf_parse_address(pool, json_string_value(v), field,
		                           err) != PTL_OK)
			return ptl_error_set_path(err, path, "%s", err->text);
		return PTL_OK;
	case PTL_CONF_JSON:
		*(json_t **)field = (json_t *)v;
		return PTL_OK;
	}
	return ptl_error_set_path(err, path, "key table error: type %d",
	                          (int)k->type);
}

/*
 * The default of @k as the JSON value a config would hold, so that it is
 * checked by exactly the code that checks config values. Text that is not
 * of the key's type becomes a JSON string, which the type check then
 * refuses with its usual message. New reference; NULL on OOM, for text
 * that is not UTF-8, or for a JSON default that does not parse.
 */
static json_t *
conf_default_json(const struct ptl_conf_key *k)
{
	json_t *v = NULL;
	long long n;
	char *end;

	switch (k->type) {
	case PTL_CONF_INT:
		errno = 0;
		n = strtoll(k->def, &end, 10);
		if (errno == 0 && end != k->def && *end == '\0' &&
		    k->def[0] != ' ')
			v = json_integer(n);
		break;
	case PTL_CONF_BOOL:
		if (strcmp(k->def, "true") == 0)
			v = json_true();
		else if (strcmp(k->def, "false") == 0)
			v = json_false();
		break;
	case PTL_CONF_JSON:
		/* Any value has the right type: only bad JSON is refused. */
		return json_loads(
		    k->def, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	case PTL_CONF_STRING_LIST:
	case PTL_CONF_OBJECT:
	case PTL_CONF_OBJECT_LIST:
		v = json_loads(k->def, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
		               NULL);
		break;
	default:
		break;
	}
	return v != NULL ? v : json_string(k->def);
}

static void
conf_json_release(void *arg)
{
	json_decref(arg);
}

static int
conf_parse_default(const struct ptl_conf_key *k, void *field,
                   struct ptl_pool *pool, const char *path, unsigned depth,
                   json_t **value_out, struct ptl_error *err)
{
	json_t *v;

	v = k->def != NULL ? conf_default_json(k) : json_object();
	if (v == NULL && k->def == NULL)
		return ptl_error_set_path(err, path, "out of memory");
	if (v == NULL)
		return ptl_error_set_path(err, path,
		                          "bad default for key \"%s\": cannot "
		                          "be read as %s",
		                          path, ptl_conf_type_name(k->type));
	if (conf_parse_value(k, v, field, pool, path, depth, err) != PTL_OK) {
		json_decref(v);
		if (k->def == NULL)
			return PTL_ERROR;
		return ptl_error_set_path(err, path,
		                          "bad default for key \"%s\": %s",
		                          path, err->text);
	}
	/* A JSON field borrows the value: the pool keeps it alive. */
	if (k->type == PTL_CONF_JSON &&
	    ptl_pool_cleanup_add(pool, conf_json_release, v) != PTL_OK) {
		json_decref(v);
		return ptl_error_set_path(err, path, "out of memory");
	}
	*value_out = v;
	return PTL_OK;
}

static bool
conf_has_required(const struct ptl_conf_key *keys)
{
	for (; keys != NULL && keys->name != NULL; keys++) {
		if (keys->flags & PTL_CONF_REQUIRED)
			return true;
	}
	return false;
}

/*
 * Parse the default of a key that the config does set, into scratch space:
 * a bad default in a table then fails every config, not only those that
 * happen to leave the key out.
 */
static int
conf_check_default(const struct ptl_conf_key *k, struct ptl_pool *pool,
                   const char *path, unsigned depth, struct ptl_error *err)
{
	union {
		int64_t i;
		uint64_t u;
		bool b;
		int e;
		const char *s;
		struct ptl_conf_list l;
		struct ptl_conf_address a;
		json_t *j;
	} scratch;
	void *dst = &scratch;
	json_t *def = NULL;

	memset(&scratch, 0, sizeof(scratch));
	if (k->type == PTL_CONF_OBJECT) {
		/* An embedded struct's size is known only from sub_size. */
		if (k->sub_size == 0)
			return PTL_OK;
		dst = ptl_pcalloc(pool, k->sub_size);
		if (dst == NULL)
			return ptl_error_set_path(err, path, "out of memory");
	}
	if (conf_parse_default(k, dst, pool, path, depth, &def, err) != PTL_OK)
		return PTL_ERROR;
	/* A JSON default belongs to the pool already. */
	if (k->type != PTL_CONF_JSON)
		json_decref(def);
	return PTL_OK;
}

static int
conf_parse_key(const struct ptl_conf_key *k, const json_t *obj, void *out,
               struct ptl_pool *pool, const char *path, unsigned depth,
               struct ptl_error *err)
{
	char kpath[PTL_ERROR_PATH_MAX];
	struct ptl_error verr;
	void *field = (char *)out + k->offset;
	json_t *v, *def = NULL;
	int rc;

	conf_path_key(kpath, sizeof(kpath), path, k->name);
	v = json_object_get(obj, k->name);
	if (v == NULL && (k->flags & PTL_CONF_REQUIRED))
		return ptl_error_set_path(err, kpath, "missing required key");
	if (v != NULL) {
		if (k->def != NULL &&
		    conf_check_default(k, pool, kpath, depth, err) != PTL_OK)
			return PTL_ERROR;
		if (conf_parse_value(k, v, field, pool, kpath, depth, err) !=
		    PTL_OK)
			return PTL_ERROR;
	} else {
		/*
		 * An absent object still gets its sub-keys' defaults, so that
		 * e.g. "server.log" may be left out entirely; unless it has
		 * required keys: then absent means "not configured" and the
		 * struct stays zero.
		 */
		if (k->def == NULL &&
		    (k->type != PTL_CONF_OBJECT || conf_has_required(k->sub)))
			return PTL_OK;
		if (conf_parse_default(k, field, pool, kpath, depth, &def,
		                       err) != PTL_OK)
			return PTL_ERROR;
		v = def;
	}

	rc = PTL_OK;
	if (k->validate != NULL) {
		memset(&verr, 0, sizeof(verr));
		if (k->validate(v, field, &verr) != PTL_OK) {
			if (verr.text[0] == '\0')
				(void)snprintf(verr.text, sizeof(verr.text),
				               "invalid value");
			if (verr.path[0] == '\0')
				memcpy(verr.path, kpath, sizeof(verr.path));
			*err = verr;
			rc = PTL_ERROR;
		}
	}
	/* A JSON default is owned by the pool; any other is not needed. */
	if (def != NULL && k->type != PTL_CONF_JSON)
		json_decref(def);
	return rc;
}

static const struct ptl_conf_key *
conf_find_key(const struct ptl_conf_key *keys, const char *name, size_t len)
{
	const struct ptl_conf_key *k;

	for (k = keys; k->name != NULL; k++) {
		if (strlen(k->name) == len && memcmp(k->name, name, len) == 0)
			return k;
	}
	return NULL;
}

static int
conf_unknown_key(const struct ptl_conf_key *keys, const char *name, size_t len,
                 const char *path, struct ptl_error *err)
{
	char shown[CONF_NAME_MAX], kpath[PTL_ERROR_PATH_MAX];
	char valid[CONF_KEY_LIST_MAX];
	const struct ptl_conf_key *k;
	size_t vlen = 0;

	/* The name comes from the config file: keep it printable. */
	ptl_log_escape(shown, sizeof(shown), name, len);
	conf_path_key(kpath, sizeof(kpath), path, shown);
	if (keys[0].name == NULL)
		return ptl_error_set_path(err, kpath,
		                          "unknown key \"%s\" (this section "
		                          "takes no keys)",
		                          shown);
	valid[0] = '\0';
	for (k = keys; k->name != NULL; k++) {
		/* A long list would bury the point: leave it out. */
		if (!conf_quote_name(valid, sizeof(valid), &vlen, k->name))
			return ptl_error_set_path(err, kpath,
			                          "unknown key \"%s\"", shown);
	}
	return ptl_error_set_path(
	    err, kpath, "unknown key \"%s\" (valid keys: %s)", shown, valid);
}

static int
conf_parse_object(const struct ptl_conf_key *keys, const json_t *obj, void *out,
                  struct ptl_pool *pool, const char *path, unsigned depth,
                  struct ptl_error *err)
{
	const struct ptl_conf_key *k;
	const char *name;
	size_t len;
	void *it;

	if (depth > CONF_DEPTH_MAX)
		return ptl_error_set_path(err, path,
		                          "key table error: nested too deep");
	if (!json_is_object(obj))
		return ptl_error_set_path(err, path, "expected an object");
	/*
	 * Unknown keys first: a typo is the likeliest mistake, and reporting
	 * it beats a "missing required key" for the key the admin meant.
	 * Lengths are compared because JSON keys may contain NUL.
	 */
	for (it = json_object_iter((json_t *)obj); it != NULL;
	     it = json_object_iter_next((json_t *)obj, it)) {
		name = json_object_iter_key(it);
		len = json_object_iter_key_len(it);
		if (conf_find_key(keys, name, len) == NULL)
			return conf_unknown_key(keys, name, len, path, err);
	}
	for (k = keys; k->name != NULL; k++) {
		if (conf_parse_key(k, obj, out, pool, path, depth, err) !=
		    PTL_OK)
			return PTL_ERROR;
	}
	return PTL_OK;
}

int
ptl_conf_parse(const struct ptl_conf_key *keys, const json_t *obj, void *out,
               struct ptl_pool *pool, const char *path, struct ptl_error *err)
{
	struct ptl_error local;

	if (err == NULL)
		err = &local;
	if (keys == NULL || out == NULL || pool == NULL)
		return ptl_error_set_path(err, path,
		                          "key table error: "
		                          "missing argument");
	return conf_parse_object(keys, obj, out, pool, path, 0, err);
}