/* SPDX-License-Identifier: MIT */
/* The spf module: config, lifecycle and the filter service. */
#include <stdio.h>
#include <string.h>

#include "spf_module.h"

static const char *const spf_action_names[] = {"continue", "reject", "tempfail",
                                               "quarantine", NULL};

/* It goes into Received-SPF: a host name, nothing a client could use. */
static int
spf_validate_host(const json_t *value, void *field, struct ptl_error *err)
{
	const char *host = *(const char **)field;
	const char *p;

	if (host == NULL)
		return PTL_OK;
	if (host[0] == '\0' || strlen(host) > SPF_NAME_MAX)
		return ptl_error_set(err, "a host name of 1 to 253 characters");
	for (p = host; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
			return ptl_error_set(err, "\"%s\" is not a host name",
			                     host);
	}
	return PTL_OK;
}

#define SPF_ACTION_KEY(n, r, d)                                                \
	{                                                                      \
		.name = n, .type = PTL_CONF_ENUM, .offset = (r) * sizeof(int), \
		.def = d, .enum_names = spf_action_names,                      \
		.doc = "What to do when the result is \"" n "\"."              \
	}

static const struct ptl_conf_key spf_action_keys[] = {
    SPF_ACTION_KEY("none", SPF_NONE, "continue"),
    SPF_ACTION_KEY("neutral", SPF_NEUTRAL, "continue"),
    SPF_ACTION_KEY("pass", SPF_PASS, "continue"),
    SPF_ACTION_KEY("fail", SPF_FAIL, "reject"),
    SPF_ACTION_KEY("softfail", SPF_SOFTFAIL, "continue"),
    SPF_ACTION_KEY("temperror", SPF_TEMPERROR, "tempfail"),
    SPF_ACTION_KEY("permerror", SPF_PERMERROR, "continue"),
    {NULL},
};

static const struct ptl_conf_key spf_conf_keys[] = {
    {.name = "actions",
     .type = PTL_CONF_OBJECT,
     .offset = offsetof(struct spf_conf, actions),
     .sub = spf_action_keys,
     .doc = "Per result (none, neutral, pass, fail, softfail, temperror, "
            "permerror): \"continue\", \"reject\" (550 5.7.23), "
            "\"tempfail\" (451 4.7.24) or \"quarantine\"."},
    {.name = "roles",
     .type = PTL_CONF_STRING_LIST,
     .offset = offsetof(struct spf_conf, roles),
     .def = "[\"mx\"]",
     .max = 3,
     .validate = ptl_filter_validate_roles,
     .doc = "Listener roles checked (empty: all)."},
    {.name = "check_helo",
     .type = PTL_CONF_BOOL,
     .offset = offsetof(struct spf_conf, check_helo),
     .def = "false",
     .doc = "Also check the HELO identity at HELO/EHLO (the actions "
            "apply there)."},
    {.name = "received_spf",
     .type = PTL_CONF_BOOL,
     .offset = offsetof(struct spf_conf, received_spf),
     .def = "true",
     .doc = "Add a Received-SPF: field (RFC 7208 section 9.1)."},
    {.name = "check_authenticated",
     .type = PTL_CONF_BOOL,
     .offset = offsetof(struct spf_conf, check_authenticated),
     .def = "false",
     .doc = "Check sessions that authenticated too."},
    {.name = "check_trusted",
     .type = PTL_CONF_BOOL,
     .offset = offsetof(struct spf_conf, check_trusted),
     .def = "false",
     .doc = "Check clients in the smtp module's trusted_networks too."},
    {.name = "explanation",
     .type = PTL_CONF_BOOL,
     .offset = offsetof(struct spf_conf, explanation),
     .def = "true",
     .doc = "On fail, fetch the domain's exp= text for the reply."},
    {.name = "max_lookups",
     .type = PTL_CONF_INT,
     .offset = offsetof(struct spf_conf, max_lookups),
     .def = "10",
     .min = 1,
     .max = 10,
     .doc = "DNS-querying mechanisms and redirects per check; more is a "
            "permerror (RFC 7208 section 4.6.4 sets at most 10)."},
    {.name = "max_void_lookups",
     .type = PTL_CONF_INT,
     .offset = offsetof(struct spf_conf, max_void_lookups),
     .def = "2",
     .min = 0,
     .max = 10,
     .doc = "Lookups answered with no record or NXDOMAIN per check; more "
            "is a permerror."},
    {.name = "timeout",
     .type = PTL_CONF_DURATION,
     .offset = offsetof(struct spf_conf, timeout),
     .def = "20s",
     .min = 1000,
     .max = 300000,
     .doc = "Longest time a check may take; then temperror."},
    {.name = "folder",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct spf_conf, folder),
     .doc = "Folder for \"quarantine\" (default: the smtp module's, "
            "\"Quarantine\")."},
    {.name = "receiver",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct spf_conf, receiver),
     .validate = spf_validate_host,
     .doc = "Host name in Received-SPF and the %{r} macro (default: "
            "server.hostname)."},
    {NULL},
};

static int
spf_init_master(struct ptl_instance *inst, struct ptl_error *err)
{
	const struct spf_conf *conf = ptl_instance_conf(inst);
	const struct ptl_server_info *info = ptl_server_info();
	struct spf_state *st;

	st = ptl_pcalloc(ptl_instance_pool(inst), sizeof(*st));
	if (st == NULL)
		return ptl_error_set(err, "out of memory");
	st->conf = conf;
	st->receiver = conf->receiver;
	if (st->receiver == NULL && info != NULL)
		st->receiver = info->hostname;
	if (st->receiver == NULL)
		st->receiver = "localhost";
	st->limits.max_lookups = (unsigned)conf->max_lookups;
	st->limits.max_void = (unsigned)conf->max_void_lookups;
	st->limits.explain = conf->explanation;
	st->methods.version = PTL_FILTER_VERSION;
	st->methods.hooks = PTL_FILTER_HOOK_BIT(PTL_FILTER_MAIL);
	if (conf->check_helo)
		st->methods.hooks |= PTL_FILTER_HOOK_BIT(PTL_FILTER_HELO);
	/* Our own timer answers (temperror) before the session gives up. */
	st->methods.timeout_ms = conf->timeout + 5000;
	st->methods.check = spf_filter_check;
	st->methods.cancel = spf_filter_cancel;
	st->methods.session_end = spf_filter_session_end;
	ptl_instance_set_data(inst, st);
	return ptl_service_register(inst, PTL_FILTER_SERVICE_PREFIX "spf",
	                            PTL_FILTER_VERSION, &st->methods, st, err);
}

static int
spf_init_worker(struct ptl_instance *inst, struct ptl_error *err)
{
	struct spf_state *st = ptl_instance_data(inst);

	if (st == NULL)
		return PTL_OK;
	st->resolver =
	    ptl_service_find(PTL_RESOLVER_SERVICE, PTL_RESOLVER_VERSION);
	if (st->resolver == NULL)
		return ptl_error_set(err, "no \"%s\" service",
		                     PTL_RESOLVER_SERVICE);
	return PTL_OK;
}

static void
spf_exit_worker(struct ptl_instance *inst)
{
	struct spf_state *st = ptl_instance_data(inst);

	if (st != NULL)
		spf_filter_free_all(st);
}

static const struct ptl_service_ref spf_provides[] = {
    {PTL_FILTER_SERVICE_PREFIX "spf", PTL_FILTER_VERSION},
    {NULL, 0},
};

static const struct ptl_service_ref spf_needs[] = {
    {PTL_RESOLVER_SERVICE, PTL_RESOLVER_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "spf",
    .version = "1.0",
    .description = "SPF (RFC 7208) checks of the MAIL FROM and HELO "
                   "identities",
    .license = "MIT",
    .provides = spf_provides,
    .needs = spf_needs,
    .conf_keys = spf_conf_keys,
    .conf_size = sizeof(struct spf_conf),
    .init_master = spf_init_master,
    .init_worker = spf_init_worker,
    .exit_worker = spf_exit_worker,
};
