/* SPDX-License-Identifier: MIT */
/* The relay part of the queue module's config: keys, defaults, checks. */
#include <stddef.h>
#include <string.h>

#include "smtpc_conf.h"

const char *const smtpc_ip_version_names[] = {"any", "ipv4", "ipv6", NULL};
const char *const smtpc_tls_policy_names[] = {"may", "none", "encrypt",
                                              "verify", NULL};

/* The HELO name goes into a command line: a space, CR or LF in it would
 * let the config inject commands. */
static int
smtpc_conf_validate_helo(const json_t *value, void *field,
                         struct ptl_error *err)
{
	const char *name = *(const char **)field;
	size_t len, i;

	if (name == NULL)
		return PTL_OK;
	len = strlen(name);
	if (len == 0 || len > 253)
		return ptl_error_set(err, "expected a host name of 1 to 253 "
		                          "characters");
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return ptl_error_set(err, "expected a host name "
			                          "(letters, digits, \"-\" and "
			                          "\".\")");
	}
	return PTL_OK;
}

static int
smtpc_conf_validate_absolute(const json_t *value, void *field,
                             struct ptl_error *err)
{
	const char *path = *(const char **)field;

	if (path != NULL && path[0] != '/')
		return ptl_error_set(err, "expected an absolute path");
	return PTL_OK;
}

const struct ptl_conf_key smtpc_conf_keys[] = {
    {
        .name = "helo_name",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct smtpc_conf, helo_name),
        .validate = smtpc_conf_validate_helo,
        .doc = "Name sent in EHLO/HELO (default: server.hostname).",
    },
    {
        .name = "connect_timeout",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct smtpc_conf, connect_timeout),
        .def = "30s",
        .min = 100,
        .max = (int64_t)600 * 1000,
        .doc = "Wait for a TCP connection to a remote host; then the "
               "next host is tried.",
    },
    {
        .name = "greeting_timeout",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct smtpc_conf, greeting_timeout),
        .def = "5m",
        .min = 100,
        .max = (int64_t)3600 * 1000,
        .doc = "Wait for the 220 greeting (RFC 5321 4.5.3.2.1).",
    },
    {
        .name = "command_timeout",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct smtpc_conf, command_timeout),
        .def = "5m",
        .min = 100,
        .max = (int64_t)3600 * 1000,
        .doc = "Wait for the reply to EHLO, STARTTLS, AUTH, MAIL, RCPT "
               "or RSET, and for a TLS handshake (RFC 5321 "
               "4.5.3.2.2-3).",
    },
    {
        .name = "data_timeout",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct smtpc_conf, data_timeout),
        .def = "2m",
        .min = 100,
        .max = (int64_t)3600 * 1000,
        .doc = "Wait for the 354 reply to DATA (RFC 5321 4.5.3.2.4).",
    },
    {
        .name = "data_block_timeout",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct smtpc_conf, data_block_timeout),
        .def = "3m",
        .min = 100,
        .max = (int64_t)3600 * 1000,
        .doc = "Longest time without progress while sending the "
               "message (RFC 5321 4.5.3.2.5).",
    },
    {
        .name = "data_done_timeout",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct smtpc_conf, data_done_timeout),
        .def = "10m",
        .min = 100,
        .max = (int64_t)7200 * 1000,
        .doc = "Wait for the reply to the final \".\" (RFC 5321 "
               "4.5.3.2.6).",
    },
    {
        .name = "quit_timeout",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct smtpc_conf, quit_timeout),
        .def = "10s",
        .min = 100,
        .max = (int64_t)600 * 1000,
        .doc = "Wait for the reply to QUIT before closing.",
    },
    {
        .name = "max_hosts",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct smtpc_conf, max_hosts),
        .def = "5",
        .min = 1,
        .max = 100,
        .doc = "Connection attempts (MX host addresses) per delivery "
               "attempt before the recipients are deferred.",
    },
    {
        .name = "tls",
        .type = PTL_CONF_ENUM,
        .offset = offsetof(struct smtpc_conf, tls),
        .def = "may",
        .enum_names = smtpc_tls_policy_names,
        .doc = "TLS towards MX hosts: \"may\" (STARTTLS when offered), "
               "\"none\", \"encrypt\" (STARTTLS required) or "
               "\"verify\" (required, certificate and MX name "
               "verified).",
    },
    {
        .name = "ca_file",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct smtpc_conf, ca_file),
        .validate = smtpc_conf_validate_absolute,
        .doc = "PEM CA certificates for \"verify\" (default: the "
               "system store).",
    },
    {
        .name = "mx_port",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct smtpc_conf, mx_port),
        .def = "25",
        .min = 1,
        .max = 65535,
        .doc = "Port of MX hosts and of routes without one. Only for "
               "tests and labs: the Internet's MX hosts listen on 25.",
    },
    {
        .name = "ip_version",
        .type = PTL_CONF_ENUM,
        .offset = offsetof(struct smtpc_conf, ip_version),
        .def = "any",
        .enum_names = smtpc_ip_version_names,
        .doc = "Addresses to connect to: \"any\" (IPv4 first, then "
               "IPv6), \"ipv4\" or \"ipv6\".",
    },
    {
        .name = "reuse_messages",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct smtpc_conf, reuse_messages),
        .def = "100",
        .min = 0,
        .max = 100000,
        .doc = "Messages sent over one connection before it is closed; "
               "0: a new connection for every message.",
    },
    {
        .name = "reuse_idle",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct smtpc_conf, reuse_idle),
        .def = "5s",
        .min = 100,
        .max = (int64_t)300 * 1000,
        .doc = "How long an idle connection waits for the next message "
               "to the same destination.",
    },
    {NULL},
};
