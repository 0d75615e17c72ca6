/* SPDX-License-Identifier: MIT */
/* Test module: a key table and a check_config that refuse bad sections. */
#include <stddef.h>
#include <string.h>

#include <petrel/petrel.h>

struct bad_config_conf {
	int64_t count;
	const char *name;
};

static const struct ptl_conf_key bad_config_keys[] = {
    {
        .name = "count",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct bad_config_conf, count),
        .min = 1,
        .max = 10,
        .doc = "A number from 1 to 10.",
    },
    {
        .name = "name",
        .type = PTL_CONF_STRING,
        .flags = PTL_CONF_REQUIRED,
        .offset = offsetof(struct bad_config_conf, name),
        .doc = "Any name but \"forbidden\".",
    },
    {NULL},
};

static int
bad_config_check(struct ptl_instance *inst, const json_t *section, void *conf,
                 struct ptl_error *err)
{
	const struct bad_config_conf *bc = conf;

	/* A path relative to the section: the core prefixes "modules.NAME". */
	if (strcmp(bc->name, "forbidden") == 0)
		return ptl_error_set_path(err, "name",
		                          "name \"forbidden\" is not allowed");
	return PTL_OK;
}

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "bad_config",
    .version = "0",
    .description = "test module with config checks",
    .license = "MIT",
    .conf_keys = bad_config_keys,
    .conf_size = sizeof(struct bad_config_conf),
    .check_config = bad_config_check,
};
