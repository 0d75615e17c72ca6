/* SPDX-License-Identifier: MIT */
/* The resolver module: descriptor, config keys, per-process lifecycle. */
#include <stdio.h>
#include <string.h>

#include "resolver_internal.h"

/* Room for one server in c-ares form: "[v6]:port". */
#define RESOLVER_SERVER_TEXT 64

static int
resolver_validate_servers(const json_t *value, void *field,
                          struct ptl_error *err)
{
	const struct ptl_conf_list *list = field;
	const char *const *items = list->items;
	char text[RESOLVER_SERVER_TEXT];

	for (size_t i = 0; i < list->count; i++) {
		if (resolver_server_normalize(items[i], text, sizeof(text),
		                              err) != PTL_OK) {
			char reason[PTL_ERROR_TEXT_MAX];

			(void)snprintf(reason, sizeof(reason), "%s", err->text);
			return ptl_error_set(err, "servers[%zu]: %s", i,
			                     reason);
		}
	}
	return PTL_OK;
}

static const struct ptl_conf_key resolver_conf_keys[] = {
    {
        .name = "servers",
        .type = PTL_CONF_STRING_LIST,
        .offset = offsetof(struct resolver_conf, servers),
        .max = 16,
        .validate = resolver_validate_servers,
        .doc = "Name servers to ask, \"ip\", \"ip:port\" or "
               "\"[ipv6]:port\", up to 16 (default: those of "
               "/etc/resolv.conf).",
    },
    {
        .name = "timeout",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct resolver_conf, timeout_ms),
        .def = "5s",
        .min = 100,
        .max = 60000,
        .doc = "Time to wait for one server's answer in the first "
               "round; c-ares doubles it in each further round.",
    },
    {
        .name = "tries",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct resolver_conf, tries),
        .def = "2",
        .min = 1,
        .max = 10,
        .doc = "Rounds over the servers before a lookup fails with a "
               "timeout.",
    },
    {
        .name = "cache_size",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct resolver_conf, cache_size),
        .def = "10000",
        .min = 0,
        .max = 1000000,
        .doc = "Answers kept per process (0: no cache); the least "
               "recently used go first.",
    },
    {
        .name = "cache_memory",
        .type = PTL_CONF_SIZE,
        .offset = offsetof(struct resolver_conf, cache_memory),
        .def = "32M",
        .min = 65536,
        .max = (int64_t)1 << 34,
        .doc = "Bytes the cached answers may take per process.",
    },
    {
        .name = "min_ttl",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct resolver_conf, min_ttl_ms),
        .def = "0s",
        .min = 0,
        .max = 86400000,
        .doc = "Shortest time a positive answer is cached, whatever its "
               "TTL.",
    },
    {
        .name = "max_ttl",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct resolver_conf, max_ttl_ms),
        .def = "1d",
        .min = 1000,
        .max = 7 * 86400000LL,
        .doc = "Longest time an answer is cached, whatever its TTL.",
    },
    {
        .name = "negative_ttl",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct resolver_conf, negative_ttl_ms),
        .def = "1h",
        .min = 0,
        .max = 86400000,
        .doc = "Longest time an NXDOMAIN or no-data answer is cached "
               "(its SOA's TTL otherwise).",
    },
    {
        .name = "edns",
        .type = PTL_CONF_BOOL,
        .offset = offsetof(struct resolver_conf, edns),
        .def = "true",
        .doc = "Send EDNS(0) with a 1232-byte UDP size, so that large "
               "answers need no TCP.",
    },
    {
        .name = "dnssec_ad",
        .type = PTL_CONF_BOOL,
        .offset = offsetof(struct resolver_conf, dnssec_ad),
        .def = "true",
        .doc = "Set the AD bit in queries so that a validating resolver "
               "reports whether answers validated (result \"secure\").",
    },
    {NULL},
};

static int
resolver_check_config(struct ptl_instance *inst, const json_t *section,
                      void *conf_ptr, struct ptl_error *err)
{
	const struct resolver_conf *conf = conf_ptr;

	if (conf->min_ttl_ms > conf->max_ttl_ms)
		return ptl_error_set_path(err, "min_ttl",
		                          "min_ttl is longer than max_ttl");
	return PTL_OK;
}

/* The server list as c-ares CSV, decided once per generation. */
static int
resolver_init_master(struct ptl_instance *inst, struct ptl_error *err)
{
	struct resolver_conf *conf = ptl_instance_conf(inst);
	struct ptl_pool *pool = ptl_instance_pool(inst);
	const char *const *items = conf->servers.items;
	char text[RESOLVER_SERVER_TEXT];
	char *csv;
	size_t used = 0;

	if (conf->servers.count == 0) {
		if (resolver_ares_system_servers(pool, &conf->servers_csv,
		                                 err) != PTL_OK)
			return PTL_ERROR;
		ptl_log(PTL_LOG_INFO,
		        "resolver: name servers from /etc/resolv.conf: %s",
		        conf->servers_csv[0] != '\0' ? conf->servers_csv
		                                     : "(none)");
		return PTL_OK;
	}
	csv = ptl_palloc(pool, conf->servers.count * RESOLVER_SERVER_TEXT);
	if (csv == NULL)
		return ptl_error_set(err, "out of memory");
	for (size_t i = 0; i < conf->servers.count; i++) {
		if (resolver_server_normalize(items[i], text, sizeof(text),
		                              err) != PTL_OK)
			return PTL_ERROR;
		used += (size_t)snprintf(
		    csv + used,
		    conf->servers.count * RESOLVER_SERVER_TEXT - used, "%s%s",
		    i > 0 ? "," : "", text);
	}
	conf->servers_csv = csv;
	ptl_log(PTL_LOG_INFO, "resolver: name servers: %s", csv);
	return PTL_OK;
}

/* Each worker and helper has its own channel and cache. */
static int
resolver_init_worker(struct ptl_instance *inst, struct ptl_error *err)
{
	const struct resolver_conf *conf = ptl_instance_conf(inst);
	struct resolver *r;

	if (resolver_new(conf, &r, err) != PTL_OK)
		return PTL_ERROR;
	if (ptl_service_register(inst, PTL_RESOLVER_SERVICE,
	                         PTL_RESOLVER_VERSION, &resolver_methods, r,
	                         err) != PTL_OK) {
		resolver_free(r);
		return PTL_ERROR;
	}
	ptl_instance_set_data(inst, r);
	return PTL_OK;
}

static void
resolver_exit_worker(struct ptl_instance *inst)
{
	resolver_free(ptl_instance_data(inst));
	ptl_instance_set_data(inst, NULL);
}

static const struct ptl_service_ref resolver_provides[] = {
    {PTL_RESOLVER_SERVICE, PTL_RESOLVER_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "resolver",
    .version = "1.0",
    .description = "asynchronous caching DNS resolver on c-ares",
    .license = "MIT",
    .provides = resolver_provides,
    .conf_keys = resolver_conf_keys,
    .conf_size = sizeof(struct resolver_conf),
    .check_config = resolver_check_config,
    .init_master = resolver_init_master,
    .init_worker = resolver_init_worker,
    .exit_worker = resolver_exit_worker,
};
