/* SPDX-License-Identifier: MIT */
/* The "filters" key: module names or objects with per-filter settings. */
#include <stdio.h>
#include <string.h>

#include "smtp.h"

const char *const smtp_filter_on_names[] = {
    "default", "continue", "tempfail", "reject", "accept", NULL,
};

static const struct ptl_conf_key filter_entry_keys[] = {
    {
        .name = "module",
        .type = PTL_CONF_STRING,
        .flags = PTL_CONF_REQUIRED,
        .offset = offsetof(struct smtp_filter_conf, module),
        .doc = "Module providing the filter service \"filter.NAME\".",
    },
    {
        .name = "timeout",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct smtp_filter_conf, timeout),
        .def = "0",
        .min = 0,
        .max = 600000,
        .doc = "Longest wait for this filter's verdict (0: the filter's "
               "own, else filter_timeout).",
    },
    {
        .name = "on_timeout",
        .type = PTL_CONF_ENUM,
        .offset = offsetof(struct smtp_filter_conf, on_timeout),
        .def = "default",
        .enum_names = smtp_filter_on_names,
        .doc = "Verdict when the filter does not answer in time: "
               "continue, tempfail, reject, accept (default: continue "
               "for fail-open filters, else tempfail).",
    },
    {
        .name = "on_error",
        .type = PTL_CONF_ENUM,
        .offset = offsetof(struct smtp_filter_conf, on_error),
        .def = "default",
        .enum_names = smtp_filter_on_names,
        .doc = "Verdict when the filter fails: as on_timeout.",
    },
    {
        .name = "roles",
        .type = PTL_CONF_STRING_LIST,
        .offset = offsetof(struct smtp_filter_conf, roles),
        .max = 3,
        .doc = "Only for sessions of these roles (\"mx\", \"submission\", "
               "\"submissions\"); default all.",
    },
    {
        .name = "listeners",
        .type = PTL_CONF_STRING_LIST,
        .offset = offsetof(struct smtp_filter_conf, listeners),
        .max = 32,
        .doc = "Only for sessions of these listeners (their \"address\" "
               "as written in \"listen\"); default all.",
    },
    {NULL},
};

static bool
filter_conf_name_ok(const char *name)
{
	size_t len = strlen(name), i;

	if (len == 0 || len > 64)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool
filter_conf_listed(const struct ptl_conf_list *list, const char *value)
{
	const char *const *items = list->items;
	size_t i;

	for (i = 0; i < list->count; i++) {
		if (strcmp(items[i], value) == 0)
			return true;
	}
	return false;
}

/* Which listeners an entry applies to; checks its roles and listeners. */
static int
filter_conf_mask(const struct smtp_conf *conf, struct smtp_filter_conf *f,
                 const char *path, struct ptl_error *err)
{
	const struct smtp_listen_conf *l = conf->listen.items;
	const char *const *items;
	char sub[96];
	size_t i, r;

	items = f->roles.items;
	for (i = 0; i < f->roles.count; i++) {
		for (r = 0; smtp_role_names[r] != NULL; r++) {
			if (strcmp(items[i], smtp_role_names[r]) == 0)
				break;
		}
		if (smtp_role_names[r] != NULL)
			continue;
		(void)snprintf(sub, sizeof(sub), "%s.roles[%zu]", path, i);
		return ptl_error_set_path(err, sub,
		                          "expected \"mx\", \"submission\" or "
		                          "\"submissions\"");
	}
	items = f->listeners.items;
	for (i = 0; i < f->listeners.count; i++) {
		for (r = 0; r < conf->listen.count; r++) {
			if (strcmp(items[i], l[r].address.text) == 0)
				break;
		}
		if (r < conf->listen.count)
			continue;
		(void)snprintf(sub, sizeof(sub), "%s.listeners[%zu]", path, i);
		return ptl_error_set_path(err, sub,
		                          "\"%s\" is not the address of a "
		                          "listener",
		                          items[i]);
	}
	f->listen_mask = 0;
	for (r = 0; r < conf->listen.count && r < 32; r++) {
		if (f->roles.count > 0 &&
		    !filter_conf_listed(&f->roles, smtp_role_names[l[r].role]))
			continue;
		if (f->listeners.count > 0 &&
		    !filter_conf_listed(&f->listeners, l[r].address.text))
			continue;
		f->listen_mask |= 1u << r;
	}
	if (f->listen_mask == 0)
		return ptl_error_set_path(err, path,
		                          "the filter applies to no listener");
	return PTL_OK;
}

/*
 * Parse "filters" into conf->filter_list. Run by check_config, so the
 * workers inherit the result; plain strings keep their old meaning.
 */
int
smtp_filter_conf_check(struct smtp_conf *conf, struct ptl_pool *pool,
                       struct ptl_error *err)
{
	struct smtp_filter_conf *list, *f;
	const json_t *item;
	char path[64];
	size_t n, i, j;

	conf->filter_list = NULL;
	conf->nfilter_list = 0;
	if (conf->filters == NULL || json_is_null(conf->filters))
		return PTL_OK;
	if (!json_is_array(conf->filters))
		return ptl_error_set_path(err, "filters",
		                          "expected a list of module names "
		                          "or objects");
	n = json_array_size(conf->filters);
	if (n > SMTP_FILTERS_MAX)
		return ptl_error_set_path(err, "filters", "at most %d filters",
		                          SMTP_FILTERS_MAX);
	list = ptl_pcalloc(pool, (n + 1) * sizeof(*list));
	if (list == NULL)
		return ptl_error_set(err, "out of memory");
	for (i = 0; i < n; i++) {
		f = &list[i];
		item = json_array_get(conf->filters, i);
		(void)snprintf(path, sizeof(path), "filters[%zu]", i);
		if (json_is_string(item)) {
			f->module = json_string_value(item);
		} else if (json_is_object(item)) {
			if (ptl_conf_parse(filter_entry_keys, item, f, pool,
			                   path, err) != PTL_OK)
				return PTL_ERROR;
		} else {
			return ptl_error_set_path(err, path,
			                          "expected a module name or "
			                          "an object");
		}
		if (!filter_conf_name_ok(f->module)) {
			if (json_is_object(item))
				(void)snprintf(path, sizeof(path),
				               "filters[%zu].module", i);
			return ptl_error_set_path(err, path,
			                          "expected a module name");
		}
		if (f->timeout != 0 && f->timeout < 100)
			return ptl_error_set_path(err, path,
			                          "timeout: at least 100ms");
		if (filter_conf_mask(conf, f, path, err) != PTL_OK)
			return PTL_ERROR;
		/* One module twice in one session would get its
		 * session_end() twice: only for disjoint listeners. */
		for (j = 0; j < i; j++) {
			if (strcmp(f->module, list[j].module) != 0 ||
			    (f->listen_mask & list[j].listen_mask) == 0)
				continue;
			return ptl_error_set_path(err, path,
			                          "filter \"%s\" is listed "
			                          "twice for the same listener",
			                          f->module);
		}
	}
	conf->filter_list = list;
	conf->nfilter_list = n;
	return PTL_OK;
}
