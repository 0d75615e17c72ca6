/* SPDX-License-Identifier: MIT */
/* The smtp module's config keys, their defaults and cross-key checks. */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "smtp.h"

const char *const smtp_role_names[] = {"mx", "submission", "submissions", NULL};

/* Names in protocol lines and headers: a space, CR or LF would let the
 * config break the protocol. */
static bool
conf_hostname_ok(const char *name)
{
	size_t len = strlen(name), i;

	if (len == 0 || len > 253)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return false;
	}
	return true;
}

static int
conf_validate_hostname(const json_t *value, void *field, struct ptl_error *err)
{
	const char *name = *(const char **)field;

	if (name != NULL && !conf_hostname_ok(name))
		return ptl_error_set(err, "expected a host name (letters, "
		                          "digits, \"-\" and \".\")");
	return PTL_OK;
}

static int
conf_validate_absolute(const json_t *value, void *field, struct ptl_error *err)
{
	const char *path = *(const char **)field;

	if (path != NULL && path[0] != '/')
		return ptl_error_set(err, "expected an absolute path");
	return PTL_OK;
}

static const struct ptl_conf_key smtp_listen_keys[] = {
    {
        .name = "address",
        .type = PTL_CONF_ADDRESS,
        .flags = PTL_CONF_REQUIRED,
        .offset = offsetof(struct smtp_listen_conf, address),
        .doc = "Where to listen: \"host:port\", \"[v6]:port\" or "
               "\"*:port\".",
    },
    {
        .name = "role",
        .type = PTL_CONF_ENUM,
        .offset = offsetof(struct smtp_listen_conf, role),
        .def = "mx",
        .enum_names = smtp_role_names,
        .doc = "\"mx\" (anyone may send to local domains, no AUTH), "
               "\"submission\" (STARTTLS, AUTH, MAIL needs AUTH) or "
               "\"submissions\" (implicit TLS, AUTH, MAIL needs "
               "AUTH).",
    },
    {
        .name = "max_connections",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct smtp_listen_conf, max_connections),
        .def = "1000",
        .min = 0,
        .max = 1000000,
        .doc = "Open connections per worker process (0: no limit); "
               "more are closed at once.",
    },
    {
        .name = "max_per_ip",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct smtp_listen_conf, max_per_ip),
        .def = "100",
        .min = 0,
        .max = 1000000,
        .doc = "Open connections per client address and worker "
               "process (0: no limit).",
    },
    {NULL},
};

const struct ptl_conf_key smtp_conf_keys[] = {
    {
        .name = "hostname",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct smtp_conf, hostname),
        .validate = conf_validate_hostname,
        .doc = "Name in the greeting, EHLO reply and Received: "
               "(default: server.hostname).",
    },
    {
        .name = "local_domains",
        .type = PTL_CONF_STRING_LIST,
        .offset = offsetof(struct smtp_conf, local_domains),
        .max = 10000,
        .doc = "Domains delivered here; empty: ask the auth service "
               "(is_local_domain).",
    },
    {
        .name = "local_literals",
        .type = PTL_CONF_STRING_LIST,
        .offset = offsetof(struct smtp_conf, local_literals),
        .max = 64,
        .doc = "IP addresses whose address literals (user@[192.0.2.1]) "
               "count as local; default none.",
    },
    {
        .name = "listen",
        .type = PTL_CONF_OBJECT_LIST,
        .flags = PTL_CONF_REQUIRED,
        .offset = offsetof(struct smtp_conf, listen),
        .min = 1,
        .max = 32,
        .sub = smtp_listen_keys,
        .sub_size = sizeof(struct smtp_listen_conf),
        .doc = "Listening sockets: {\"address\", \"role\", "
               "\"max_connections\", \"max_per_ip\"}.",
    },
    {
        .name = "max_message_size",
        .type = PTL_CONF_SIZE,
        .offset = offsetof(struct smtp_conf, max_message_size),
        .def = "25M",
        .min = 1024,
        .max = (int64_t)4 << 30,
        .doc = "Largest message accepted (SIZE; 552 5.3.4 beyond).",
    },
    {
        .name = "max_recipients",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct smtp_conf, max_recipients),
        .def = "100",
        .min = 1,
        .max = 100000,
        .doc = "Recipients per message (452 4.5.3 beyond).",
    },
    {
        .name = "max_errors",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct smtp_conf, max_errors),
        .def = "10",
        .min = 1,
        .max = 1000,
        .doc = "Error replies per session before 421 4.7.0 and "
               "disconnect.",
    },
    {
        .name = "command_timeout",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct smtp_conf, command_timeout),
        .def = "5m",
        .min = 1000,
        .max = (int64_t)3600 * 1000,
        .doc = "Wait for a command (RFC 5321 4.5.3.2); then 421 4.4.2.",
    },
    {
        .name = "data_timeout",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct smtp_conf, data_timeout),
        .def = "10m",
        .min = 1000,
        .max = (int64_t)7200 * 1000,
        .doc = "Wait for message data and for its delivery; then "
               "421 4.4.2.",
    },
    {
        .name = "session_timeout",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct smtp_conf, session_timeout),
        .def = "1h",
        .min = 10000,
        .max = (int64_t)86400 * 1000,
        .doc = "Longest session; then 421 4.4.2.",
    },
    {
        .name = "max_command_line",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct smtp_conf, max_command_line),
        .def = "512",
        .min = 512,
        .max = 65536,
        .doc = "Longest command line in octets, CRLF included "
               "(RFC 5321 4.5.3.1.4); 500 5.5.2 beyond.",
    },
    {
        .name = "max_text_line",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct smtp_conf, max_text_line),
        .def = "1000",
        .min = 1000,
        .max = 1048576,
        .doc = "Longest message line in octets, CRLF included "
               "(RFC 5321 4.5.3.1.6); 500 5.5.6 beyond.",
    },
    {
        .name = "trusted_networks",
        .type = PTL_CONF_STRING_LIST,
        .offset = offsetof(struct smtp_conf, trusted_networks),
        .max = 1024,
        .doc = "Client networks (\"192.0.2.0/24\", \"::1\") that may "
               "relay and send without AUTH; default none.",
    },
    {
        .name = "starttls",
        .type = PTL_CONF_BOOL,
        .offset = offsetof(struct smtp_conf, starttls),
        .def = "true",
        .doc = "Offer STARTTLS on plaintext listeners (needs "
               "\"tls\" certificates).",
    },
    {
        .name = "auth_plaintext",
        .type = PTL_CONF_BOOL,
        .offset = offsetof(struct smtp_conf, auth_plaintext),
        .def = "false",
        .doc = "Allow AUTH without TLS (submission roles); otherwise "
               "538 5.7.11.",
    },
    {
        .name = "auth_max_failures",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct smtp_conf, auth_max_failures),
        .def = "3",
        .min = 1,
        .max = 100,
        .doc = "Failed AUTH per session, or per client address within "
               "15 minutes, before 421 4.7.0 and disconnect.",
    },
    {
        .name = "auth_failure_delay",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct smtp_conf, auth_failure_delay),
        .def = "1s",
        .min = 0,
        .max = 60000,
        .doc = "Delay before a 535 reply, doubling with each failure "
               "of the client address (at most 30s).",
    },
    {
        .name = "vrfy",
        .type = PTL_CONF_BOOL,
        .offset = offsetof(struct smtp_conf, vrfy),
        .def = "false",
        .doc = "Answer VRFY for local users to authenticated or "
               "trusted clients; otherwise 252 2.5.2.",
    },
    {
        .name = "require_fqdn_sender",
        .type = PTL_CONF_BOOL,
        .offset = offsetof(struct smtp_conf, require_fqdn_sender),
        .def = "true",
        .doc = "Refuse MAIL FROM whose domain has no dot (553 5.1.7).",
    },
    {
        .name = "spool_dir",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct smtp_conf, spool_dir),
        .validate = conf_validate_absolute,
        .doc = "Directory for messages being received (mode 0700; "
               "default STATE_DIR/spool).",
    },
    {
        .name = "filters",
        .type = PTL_CONF_JSON,
        .offset = offsetof(struct smtp_conf, filters),
        .doc = "Filters asked in this order: module names (providing "
               "\"filter.NAME\") or objects {\"module\", \"timeout\", "
               "\"on_timeout\", \"on_error\", \"roles\", "
               "\"listeners\"} (docs/filters.md).",
    },
    {
        .name = "filter_timeout",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct smtp_conf, filter_timeout),
        .def = "30s",
        .min = 100,
        .max = 600000,
        .doc = "Longest wait for a filter verdict (unless the filter "
               "sets its own).",
    },
    {
        .name = "trace_header",
        .type = PTL_CONF_BOOL,
        .offset = offsetof(struct smtp_conf, trace_header),
        .def = "false",
        .doc = "Add an Authentication-Results: field built from the "
               "filters' results (authserv-id: hostname).",
    },
    {NULL},
};

static bool
conf_domain_ok(const char *d)
{
	size_t len = strlen(d), label = 0, i;

	if (len == 0 || len > 253)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];

		if (c == '.') {
			if (label == 0 || d[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c >= 0x80 ||
		      (c == '-' && label > 0)))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && d[len - 1] != '-';
}

int
smtp_check_config(struct ptl_instance *inst, const json_t *section,
                  void *conf_ptr, struct ptl_error *err)
{
	struct smtp_conf *conf = conf_ptr;
	const struct smtp_listen_conf *l = conf->listen.items;
	const char *const *list;
	struct smtp_cidr net;
	unsigned char bin[16];
	char path[64];
	size_t i, j;

	for (i = 0; i < conf->listen.count; i++) {
		for (j = 0; j < i; j++) {
			if (l[i].address.port != l[j].address.port ||
			    strcmp(l[i].address.host, l[j].address.host) != 0)
				continue;
			(void)snprintf(path, sizeof(path),
			               "listen[%zu].address", i);
			return ptl_error_set_path(err, path,
			                          "address \"%s\" is listed "
			                          "twice",
			                          l[i].address.text);
		}
	}
	list = conf->local_domains.items;
	for (i = 0; i < conf->local_domains.count; i++) {
		if (conf_domain_ok(list[i]))
			continue;
		(void)snprintf(path, sizeof(path), "local_domains[%zu]", i);
		return ptl_error_set_path(err, path, "\"%s\" is not a domain",
		                          list[i]);
	}
	list = conf->local_literals.items;
	for (i = 0; i < conf->local_literals.count; i++) {
		if (inet_pton(AF_INET, list[i], bin) == 1 ||
		    inet_pton(AF_INET6, list[i], bin) == 1)
			continue;
		(void)snprintf(path, sizeof(path), "local_literals[%zu]", i);
		return ptl_error_set_path(
		    err, path, "\"%s\" is not an IP address", list[i]);
	}
	list = conf->trusted_networks.items;
	for (i = 0; i < conf->trusted_networks.count; i++) {
		if (smtp_cidr_parse(list[i], &net) == PTL_OK)
			continue;
		(void)snprintf(path, sizeof(path), "trusted_networks[%zu]", i);
		return ptl_error_set_path(err, path,
		                          "expected \"address/bits\" with "
		                          "the host bits zero");
	}
	return smtp_filter_conf_check(conf, ptl_instance_pool(inst), err);
}
