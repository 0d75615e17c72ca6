/* SPDX-License-Identifier: MIT */
/* The dmarc module: config, the Public Suffix List, the filter service. */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "dmarc_module.h"

static const char *const dmarc_action_names[] = {
    "continue", "reject", "tempfail", "quarantine", NULL};

static int
dmarc_validate_path(const json_t *value, void *field, struct ptl_error *err)
{
	const char *path = *(const char **)field;

	if (path != NULL && path[0] != '/')
		return ptl_error_set(err, "\"%s\" is not an absolute path",
		                     path);
	return PTL_OK;
}

#define DMARC_ACTION_KEY(n, c, d, what)                                        \
	{                                                                      \
		.name = n, .type = PTL_CONF_ENUM, .offset = (c) * sizeof(int), \
		.def = d, .enum_names = dmarc_action_names, .doc = what        \
	}

static const struct ptl_conf_key dmarc_action_keys[] = {
    DMARC_ACTION_KEY("reject", DMARC_CASE_REJECT, "reject",
                     "A failing message whose policy is reject."),
    DMARC_ACTION_KEY("quarantine", DMARC_CASE_QUARANTINE, "quarantine",
                     "A failing message whose policy is quarantine."),
    DMARC_ACTION_KEY("none", DMARC_CASE_NONE, "continue",
                     "A failing message whose policy is none."),
    DMARC_ACTION_KEY("temperror", DMARC_CASE_TEMPERROR, "continue",
                     "The policy could not be looked up (DNS)."),
    DMARC_ACTION_KEY("permerror", DMARC_CASE_PERMERROR, "continue",
                     "No single From domain (no From, several From "
                     "fields or addresses)."),
    {NULL},
};

static const struct ptl_conf_key dmarc_conf_keys[] = {
    {.name = "actions",
     .type = PTL_CONF_OBJECT,
     .offset = offsetof(struct dmarc_conf, actions),
     .sub = dmarc_action_keys,
     .doc = "Per policy (reject, quarantine, none) and error (temperror, "
            "permerror): \"continue\", \"reject\" (550 5.7.1), "
            "\"tempfail\" (451 4.7.1) or \"quarantine\"."},
    {.name = "roles",
     .type = PTL_CONF_STRING_LIST,
     .offset = offsetof(struct dmarc_conf, roles),
     .def = "[\"mx\"]",
     .max = 3,
     .validate = ptl_filter_validate_roles,
     .doc = "Listener roles checked (empty: all)."},
    {.name = "check_authenticated",
     .type = PTL_CONF_BOOL,
     .offset = offsetof(struct dmarc_conf, check_authenticated),
     .def = "false",
     .doc = "Check sessions that authenticated too."},
    {.name = "check_trusted",
     .type = PTL_CONF_BOOL,
     .offset = offsetof(struct dmarc_conf, check_trusted),
     .def = "false",
     .doc = "Check clients in the smtp module's trusted_networks too."},
    {.name = "public_suffix_list",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct dmarc_conf, public_suffix_list),
     .def = "/usr/share/publicsuffix/public_suffix_list.dat",
     .validate = dmarc_validate_path,
     .doc = "The Public Suffix List (Debian: package publicsuffix), read "
            "at start and on reload."},
    {.name = "report",
     .type = PTL_CONF_BOOL,
     .offset = offsetof(struct dmarc_conf, report),
     .def = "true",
     .doc = "Record aggregate report data: one JSON line per message "
            "with a policy, in report_dir/YYYY-MM-DD.jsonl."},
    {.name = "report_dir",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct dmarc_conf, report_dir),
     .validate = dmarc_validate_path,
     .doc = "Where report data goes (default: STATE_DIR/dmarc; created "
            "by the workers)."},
    {.name = "folder",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct dmarc_conf, folder),
     .doc = "Folder for \"quarantine\" (default: the smtp module's, "
            "\"Quarantine\")."},
    {.name = "max_header",
     .type = PTL_CONF_SIZE,
     .offset = offsetof(struct dmarc_conf, max_header),
     .def = "256k",
     .min = 4096,
     .max = 16 * 1024 * 1024,
     .doc = "Bytes of the header section read to find the From field."},
    {NULL},
};

static void
dmarc_psl_cleanup(void *arg)
{
	dmarc_psl_free(arg);
}

static int
dmarc_init_master(struct ptl_instance *inst, struct ptl_error *err)
{
	struct ptl_pool *pool = ptl_instance_pool(inst);
	const struct dmarc_conf *conf = ptl_instance_conf(inst);
	const struct ptl_server_info *info = ptl_server_info();
	struct dmarc_state *st;
	char why[512];

	st = ptl_pcalloc(pool, sizeof(*st));
	if (st == NULL)
		return ptl_error_set(err, "out of memory");
	st->conf = conf;
	st->psl = dmarc_psl_load(conf->public_suffix_list, why, sizeof(why));
	if (st->psl == NULL)
		return ptl_error_set(err, "public suffix list: %s", why);
	if (ptl_pool_cleanup_add(pool, dmarc_psl_cleanup, st->psl) != PTL_OK) {
		dmarc_psl_free(st->psl);
		return ptl_error_set(err, "out of memory");
	}
	ptl_log(PTL_LOG_INFO, "dmarc: public suffix list %s: %zu rules",
	        conf->public_suffix_list, dmarc_psl_rules(st->psl));
	st->report_dir = conf->report_dir;
	if (st->report_dir == NULL && info != NULL && info->state_dir != NULL)
		st->report_dir =
		    ptl_psprintf(pool, "%s/dmarc", info->state_dir);
	if (conf->report && st->report_dir == NULL)
		return ptl_error_set(err, "no report_dir and no state_dir");
	st->methods.version = PTL_FILTER_VERSION;
	st->methods.hooks = PTL_FILTER_HOOK_BIT(PTL_FILTER_DATA);
	st->methods.check = dmarc_filter_check;
	st->methods.cancel = dmarc_filter_cancel;
	st->methods.session_end = dmarc_filter_session_end;
	ptl_instance_set_data(inst, st);
	return ptl_service_register(inst, PTL_FILTER_SERVICE_PREFIX "dmarc",
	                            PTL_FILTER_VERSION, &st->methods, st, err);
}

static int
dmarc_init_worker(struct ptl_instance *inst, struct ptl_error *err)
{
	struct dmarc_state *st = ptl_instance_data(inst);

	if (st == NULL)
		return PTL_OK;
	st->resolver =
	    ptl_service_find(PTL_RESOLVER_SERVICE, PTL_RESOLVER_VERSION);
	if (st->resolver == NULL)
		return ptl_error_set(err, "no \"%s\" service",
		                     PTL_RESOLVER_SERVICE);
	/* Each worker samples pct on its own sequence. */
	if (getrandom(&st->rng, sizeof(st->rng), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(st->rng))
		st->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	st->rng |= 1;
	return PTL_OK;
}

static void
dmarc_exit_worker(struct ptl_instance *inst)
{
	struct dmarc_state *st = ptl_instance_data(inst);

	if (st != NULL && st->resolver != NULL)
		dmarc_filter_free_all(st);
}

static const struct ptl_service_ref dmarc_provides[] = {
    {PTL_FILTER_SERVICE_PREFIX "dmarc", PTL_FILTER_VERSION},
    {NULL, 0},
};

static const struct ptl_service_ref dmarc_needs[] = {
    {PTL_RESOLVER_SERVICE, PTL_RESOLVER_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "dmarc",
    .version = "1.0",
    .description = "DMARC (RFC 7489) policy evaluation of the From domain",
    .license = "MIT",
    .provides = dmarc_provides,
    .needs = dmarc_needs,
    .conf_keys = dmarc_conf_keys,
    .conf_size = sizeof(struct dmarc_conf),
    .init_master = dmarc_init_master,
    .init_worker = dmarc_init_worker,
    .exit_worker = dmarc_exit_worker,
};
