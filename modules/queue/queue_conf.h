/* SPDX-License-Identifier: MIT */
/* The queue module's config: scheduler keys, routes, the relay object. */
#ifndef PETREL_QUEUE_CONF_H
#define PETREL_QUEUE_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include <petrel/petrel.h>

#include "relay.h"
#include "smtpc_conf.h"

/** One entry of "routes": a domain (or "*") and where it goes. */
struct queue_route {
	const char *domain; /* lower case; ".example.org": subdomains;
	                       "*": the default route */
	struct relay_route relay;
};

/** The module's section, filled by queue_conf_keys. Durations in ms. */
struct queue_conf {
	const char *directory;       /* NULL: STATE_DIR/queue */
	int64_t max_concurrency;     /* deliveries at once, in total */
	int64_t max_per_destination; /* ... to one domain or smarthost */
	int64_t local_concurrency;   /* ... through the storage service */
	int64_t max_rcpts_per_delivery;
	int64_t backoff_min;
	int64_t backoff_max;
	int64_t lifetime;
	int64_t delay_warning; /* 0: no delay DSNs */
	uint64_t bounce_size_limit;
	int64_t max_active;    /* messages held in the runner's memory */
	int64_t scan_interval; /* full rescan of msg/ as a safety net */
	struct ptl_conf_list local_domains; /* const char * */
	json_t *routes_json;
	struct smtpc_conf relay; /* the SMTP client's object (smtpc_conf.h) */

	/* Filled by queue_conf_routes() in init_master, not by keys. */
	struct queue_route *routes;
	size_t nroutes;
	const char *qdir; /* resolved queue directory */
};

/** The key table of the module's section. */
extern const struct ptl_conf_key queue_conf_keys[];

/**
 * Parse "routes" into @p routes_out / @p n_out (allocated from @p pool),
 * reading every auth_password_file. @p conf gives defaults.
 * @return PTL_OK or PTL_ERROR with err->path relative to the section.
 */
int queue_conf_parse_routes(const struct queue_conf *conf,
                            struct ptl_pool *pool,
                            struct queue_route **routes_out, size_t *n_out,
                            struct ptl_error *err);

/** check_config of the module. */
int queue_conf_check(struct ptl_instance *inst, const json_t *section,
                     void *conf, struct ptl_error *err);

/**
 * The route of @p domain (lower case): the exact entry, else the nearest
 * ".parent" entry, else "*", else NULL (MX lookup with the relay
 * object's defaults).
 */
const struct queue_route *queue_route_find(const struct queue_conf *conf,
                                           const char *domain);

/** Whether @p domain is listed in local_domains. */
bool queue_conf_is_local_domain(const struct queue_conf *conf,
                                const char *domain);

/** Queue directory for @p conf: "directory", else STATE_DIR/queue. */
const char *queue_conf_dir(const struct queue_conf *conf,
                           struct ptl_pool *pool);

#endif
