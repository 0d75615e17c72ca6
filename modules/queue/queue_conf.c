/* SPDX-License-Identifier: MIT */
/* The queue module's config: scheduler keys, routes, the relay object. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "queue_conf.h"

#define QUEUE_PASSWORD_MAX 1024

static int
queue_conf_validate_abs(const json_t *value, void *field, struct ptl_error *err)
{
	const char *path = *(const char **)field;

	if (path != NULL && path[0] != '/')
		return ptl_error_set(err, "expected an absolute path");
	return PTL_OK;
}

/* Domains are compared as lower case A-labels without a trailing dot. */
static bool
queue_domain_ok(const char *d, bool allow_lead_dot)
{
	size_t len = strlen(d), i;

	if (allow_lead_dot && d[0] == '.') {
		d++;
		len--;
	}
	if (len == 0 || len > 253 || d[0] == '.' || d[len - 1] == '.')
		return false;
	for (i = 0; i < len; i++) {
		char c = d[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_'))
			return false;
		if (c == '.' && d[i + 1] == '.')
			return false;
	}
	return true;
}

static int
queue_conf_validate_domains(const json_t *value, void *field,
                            struct ptl_error *err)
{
	const struct ptl_conf_list *list = field;
	const char *const *items = list->items;
	size_t i;

	for (i = 0; i < list->count; i++)
		if (!queue_domain_ok(items[i], false))
			return ptl_error_set(err,
			                     "\"%s\" is not a lower-case "
			                     "domain name",
			                     items[i]);
	return PTL_OK;
}

const struct ptl_conf_key queue_conf_keys[] = {
    {
        .name = "directory",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct queue_conf, directory),
        .validate = queue_conf_validate_abs,
        .doc = "Spool directory (absolute; default: "
               "server.state_dir/queue).",
    },
    {
        .name = "max_concurrency",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct queue_conf, max_concurrency),
        .def = "50",
        .min = 1,
        .max = 10000,
        .doc = "Deliveries running at once, in total.",
    },
    {
        .name = "max_per_destination",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct queue_conf, max_per_destination),
        .def = "10",
        .min = 1,
        .max = 1000,
        .doc = "Deliveries running at once to one domain (MX) or one "
               "smarthost.",
    },
    {
        .name = "local_concurrency",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct queue_conf, local_concurrency),
        .def = "10",
        .min = 1,
        .max = 1000,
        .doc = "Local deliveries (storage service) running at once.",
    },
    {
        .name = "max_recipients_per_delivery",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct queue_conf, max_rcpts_per_delivery),
        .def = "100",
        .min = 1,
        .max = 1000,
        .doc = "Recipients of one domain sent in one SMTP transaction "
               "(RFC 5321 4.5.3.1.8: servers take at least 100).",
    },
    {
        .name = "backoff_min",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct queue_conf, backoff_min),
        .def = "5m",
        .min = 100,
        .max = (int64_t)7 * 24 * 3600 * 1000,
        .doc = "Wait after the first temporary failure; doubled after "
               "each further one.",
    },
    {
        .name = "backoff_max",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct queue_conf, backoff_max),
        .def = "4h",
        .min = 100,
        .max = (int64_t)30 * 24 * 3600 * 1000,
        .doc = "Longest wait between two attempts.",
    },
    {
        .name = "lifetime",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct queue_conf, lifetime),
        .def = "5d",
        .min = 1000,
        .max = (int64_t)100 * 24 * 3600 * 1000,
        .doc = "Age after which a recipient still deferred fails and "
               "is bounced.",
    },
    {
        .name = "delay_warning",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct queue_conf, delay_warning),
        .def = "0",
        .min = 0,
        .max = (int64_t)100 * 24 * 3600 * 1000,
        .doc = "Age after which the sender gets one \"delayed\" DSN "
               "per recipient (0: never).",
    },
    {
        .name = "bounce_size_limit",
        .type = PTL_CONF_SIZE,
        .offset = offsetof(struct queue_conf, bounce_size_limit),
        .def = "50k",
        .min = 0,
        .max = (int64_t)100 * 1024 * 1024,
        .doc = "Largest original message returned whole in a DSN "
               "(RET=FULL); larger ones return their header.",
    },
    {
        .name = "max_active",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct queue_conf, max_active),
        .def = "20000",
        .min = 10,
        .max = 10000000,
        .doc = "Messages the runner keeps in memory; the rest wait on "
               "disk until there is room.",
    },
    {
        .name = "scan_interval",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct queue_conf, scan_interval),
        .def = "5m",
        .min = 1000,
        .max = (int64_t)24 * 3600 * 1000,
        .doc = "How often the runner rescans the spool for messages "
               "it was not told about.",
    },
    {
        .name = "local_domains",
        .type = PTL_CONF_STRING_LIST,
        .offset = offsetof(struct queue_conf, local_domains),
        .max = 100000,
        .validate = queue_conf_validate_domains,
        .doc = "Domains delivered through the storage service (besides "
               "those the auth service calls local).",
    },
    {
        .name = "routes",
        .type = PTL_CONF_JSON,
        .offset = offsetof(struct queue_conf, routes_json),
        .doc = "Per-domain routes: {\"DOMAIN\": {\"host\", \"port\", "
               "\"tls\", \"ca_file\", \"auth_user\", "
               "\"auth_password_file\"}}; \"*\" is the default "
               "route, \".example.org\" matches subdomains.",
    },
    {
        .name = "relay",
        .type = PTL_CONF_OBJECT,
        .offset = offsetof(struct queue_conf, relay),
        .sub = smtpc_conf_keys,
        .sub_size = sizeof(struct smtpc_conf),
        .doc = "Outbound SMTP client (see docs/queue.md).",
    },
    {NULL},
};

/* One route as written in the config. */
struct queue_route_conf {
	const char *host;
	int64_t port;
	int tls;
	const char *ca_file;
	const char *auth_user;
	const char *auth_password_file;
};

static int
queue_conf_validate_host(const json_t *value, void *field,
                         struct ptl_error *err)
{
	const char *host = *(const char **)field;
	size_t i;

	if (host == NULL)
		return PTL_OK;
	/* A name, an IPv4 or an IPv6 literal ("[::1]" or "::1"). */
	if (host[0] == '\0' || strlen(host) > 255)
		return ptl_error_set(err, "expected a host name or address");
	for (i = 0; host[i] != '\0'; i++) {
		char c = host[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		      c == ':' || c == '[' || c == ']'))
			return ptl_error_set(err, "expected a host name or "
			                          "address");
	}
	return PTL_OK;
}

static const struct ptl_conf_key queue_route_keys[] = {
    {
        .name = "host",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct queue_route_conf, host),
        .validate = queue_conf_validate_host,
        .doc = "Smarthost name or IP; absent: MX lookup.",
    },
    {
        .name = "port",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct queue_route_conf, port),
        .def = "0",
        .min = 0,
        .max = 65535,
        .doc = "Smarthost port (0: relay.mx_port, normally 25).",
    },
    {
        .name = "tls",
        .type = PTL_CONF_ENUM,
        .offset = offsetof(struct queue_route_conf, tls),
        .def = "may",
        .enum_names = smtpc_tls_policy_names,
        .doc = "\"none\", \"may\", \"encrypt\" or \"verify\".",
    },
    {
        .name = "ca_file",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct queue_route_conf, ca_file),
        .validate = queue_conf_validate_abs,
        .doc = "CA file for \"verify\" (default: the system store).",
    },
    {
        .name = "auth_user",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct queue_route_conf, auth_user),
        .doc = "AUTH PLAIN user at the smarthost.",
    },
    {
        .name = "auth_password_file",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct queue_route_conf, auth_password_file),
        .validate = queue_conf_validate_abs,
        .doc = "File whose first line is the AUTH password (read by "
               "the master as root).",
    },
    {NULL},
};

/* The first line of @path, without its line end. Never logged. */
static int
queue_read_password(struct ptl_pool *pool, const char *path, char **out,
                    const char *jpath, struct ptl_error *err)
{
	char buf[QUEUE_PASSWORD_MAX + 2];
	size_t len;
	FILE *f;

	f = fopen(path, "re");
	if (f == NULL)
		return ptl_error_set_path(err, jpath, "cannot read %s: %s",
		                          path, strerror(errno));
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	(void)fclose(f);
	len = strcspn(buf, "\r\n");
	buf[len] = '\0';
	if (len == 0 || len > QUEUE_PASSWORD_MAX) {
		explicit_bzero(buf, sizeof(buf));
		return ptl_error_set_path(err, jpath,
		                          "%s: expected a password of 1 to "
		                          "%d bytes on its first line",
		                          path, QUEUE_PASSWORD_MAX);
	}
	*out = ptl_pstrdup(pool, buf);
	explicit_bzero(buf, sizeof(buf));
	if (*out == NULL)
		return ptl_error_set(err, "out of memory");
	return PTL_OK;
}

static int
queue_conf_route(const char *domain, const json_t *obj, struct ptl_pool *pool,
                 struct queue_route *out, struct ptl_error *err)
{
	struct queue_route_conf rc;
	char path[320];
	char *lower, *pw = NULL;
	size_t i;

	(void)snprintf(path, sizeof(path), "routes.%s", domain);
	lower = ptl_pstrdup(pool, domain);
	if (lower == NULL)
		return ptl_error_set(err, "out of memory");
	for (i = 0; lower[i] != '\0'; i++)
		if (lower[i] >= 'A' && lower[i] <= 'Z')
			lower[i] = (char)(lower[i] - 'A' + 'a');
	if (strcmp(lower, "*") != 0 && !queue_domain_ok(lower, true))
		return ptl_error_set_path(err, "routes",
		                          "\"%s\" is not a domain name, "
		                          "\".domain\" or \"*\"",
		                          domain);
	memset(&rc, 0, sizeof(rc));
	if (ptl_conf_parse(queue_route_keys, obj, &rc, pool, path, err) !=
	    PTL_OK)
		return PTL_ERROR;
	if ((rc.auth_user == NULL) != (rc.auth_password_file == NULL))
		return ptl_error_set_path(err, path,
		                          "auth_user and auth_password_file "
		                          "go together");
	if (rc.auth_user != NULL && rc.host == NULL)
		return ptl_error_set_path(err, path,
		                          "AUTH needs a smarthost (\"host\")");
	/* Credentials never cross the network in clear. */
	if (rc.auth_user != NULL &&
	    (rc.tls == RELAY_TLS_NONE || rc.tls == RELAY_TLS_MAY))
		return ptl_error_set_path(err, path,
		                          "AUTH needs \"tls\": \"encrypt\" or "
		                          "\"verify\"");
	if (rc.auth_password_file != NULL &&
	    queue_read_password(pool, rc.auth_password_file, &pw, path, err) !=
	        PTL_OK)
		return PTL_ERROR;
	memset(out, 0, sizeof(*out));
	out->domain = lower;
	out->relay.host = rc.host;
	out->relay.port = (uint16_t)rc.port;
	out->relay.tls = (enum relay_tls_policy)rc.tls;
	out->relay.ca_file = rc.ca_file;
	out->relay.auth_user = rc.auth_user;
	out->relay.auth_password = pw;
	return PTL_OK;
}

int
queue_conf_parse_routes(const struct queue_conf *conf, struct ptl_pool *pool,
                        struct queue_route **routes_out, size_t *n_out,
                        struct ptl_error *err)
{
	const json_t *routes = conf->routes_json;
	struct queue_route *items;
	const char *domain;
	json_t *value;
	size_t n = 0, j;

	*routes_out = NULL;
	*n_out = 0;
	if (routes == NULL || json_is_null(routes))
		return PTL_OK;
	if (!json_is_object(routes))
		return ptl_error_set_path(err, "routes",
		                          "expected an object of domain: "
		                          "route");
	if (json_object_size(routes) > 100000)
		return ptl_error_set_path(err, "routes", "too many routes");
	items =
	    ptl_pcalloc(pool, (json_object_size(routes) + 1) * sizeof(*items));
	if (items == NULL)
		return ptl_error_set(err, "out of memory");
	json_object_foreach((json_t *)routes, domain, value)
	{
		if (queue_conf_route(domain, value, pool, &items[n], err) !=
		    PTL_OK)
			return PTL_ERROR;
		for (j = 0; j < n; j++)
			if (strcmp(items[j].domain, items[n].domain) == 0)
				return ptl_error_set_path(
				    err, "routes", "\"%s\" is listed twice",
				    domain);
		n++;
	}
	*routes_out = items;
	*n_out = n;
	return PTL_OK;
}

int
queue_conf_check(struct ptl_instance *inst, const json_t *section,
                 void *conf_ptr, struct ptl_error *err)
{
	const struct queue_conf *conf = conf_ptr;
	struct queue_route *routes;
	struct ptl_pool *scratch;
	size_t n;
	int rc;

	if (conf->backoff_max < conf->backoff_min)
		return ptl_error_set_path(err, "backoff_max",
		                          "must not be less than backoff_min");
	scratch = ptl_pool_create(0);
	if (scratch == NULL)
		return ptl_error_set(err, "out of memory");
	rc = queue_conf_parse_routes(conf, scratch, &routes, &n, err);
	ptl_pool_destroy(scratch);
	return rc;
}

const struct queue_route *
queue_route_find(const struct queue_conf *conf, const char *domain)
{
	const struct queue_route *star = NULL, *best = NULL;
	size_t dlen = strlen(domain), best_len = 0, i, len;

	for (i = 0; i < conf->nroutes; i++) {
		const char *rd = conf->routes[i].domain;

		if (strcmp(rd, domain) == 0)
			return &conf->routes[i];
		if (rd[0] == '*') {
			star = &conf->routes[i];
			continue;
		}
		len = strlen(rd);
		/* ".example.org" matches "a.example.org", not itself. */
		if (rd[0] == '.' && dlen > len &&
		    strcmp(domain + dlen - len, rd) == 0 && len > best_len) {
			best = &conf->routes[i];
			best_len = len;
		}
	}
	return best != NULL ? best : star;
}

bool
queue_conf_is_local_domain(const struct queue_conf *conf, const char *domain)
{
	const char *const *items = conf->local_domains.items;
	size_t i;

	for (i = 0; i < conf->local_domains.count; i++)
		if (strcasecmp(items[i], domain) == 0)
			return true;
	return false;
}

const char *
queue_conf_dir(const struct queue_conf *conf, struct ptl_pool *pool)
{
	if (conf->directory != NULL)
		return conf->directory;
	return ptl_psprintf(pool, "%s/queue", ptl_server_info()->state_dir);
}
