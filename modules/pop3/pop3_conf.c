/* SPDX-License-Identifier: MIT */
/* POP3 configuration: key table, cross-key checks, network prefixes. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "pop3.h"

static const char *const pop3_tls_names[] = {"starttls", "implicit", NULL};

/* The greeting is one protocol line: a CR or LF would inject replies. */
static int
pop3_validate_greeting(const json_t *value, void *field, struct ptl_error *err)
{
	const char *text = *(const char **)field;

	for (; text != NULL && *text != '\0'; text++) {
		if ((unsigned char)*text < 0x20 || *text == 0x7f)
			return ptl_error_set(err, "control characters are not "
			                          "allowed");
	}
	return PTL_OK;
}

static int
pop3_validate_networks(const json_t *value, void *field, struct ptl_error *err)
{
	const struct ptl_conf_list *list = field;
	const char *const *items = list->items;
	struct ptl_error why;
	struct pop3_cidr net;
	size_t i;

	for (i = 0; i < list->count; i++) {
		if (pop3_cidr_parse(items[i], &net, &why) != PTL_OK)
			return ptl_error_set(err, "item %zu \"%.64s\": %.200s",
			                     i, items[i], why.text);
	}
	return PTL_OK;
}

static const struct ptl_conf_key pop3_listen_keys[] = {
    {
        .name = "address",
        .type = PTL_CONF_ADDRESS,
        .flags = PTL_CONF_REQUIRED,
        .offset = offsetof(struct pop3_listen_conf, address),
        .doc = "Where to listen: \"host:port\", \"[v6]:port\" or "
               "\"*:port\".",
    },
    {
        .name = "tls",
        .type = PTL_CONF_ENUM,
        .offset = offsetof(struct pop3_listen_conf, tls),
        .def = "starttls",
        .enum_names = pop3_tls_names,
        .doc = "\"starttls\": plaintext, upgraded by STLS (port 110 "
               "style); \"implicit\": TLS from the first byte (port "
               "995 style, RFC 8314).",
    },
    {NULL},
};

const struct ptl_conf_key pop3_conf_keys[] = {
    {
        .name = "listen",
        .type = PTL_CONF_OBJECT_LIST,
        .flags = PTL_CONF_REQUIRED,
        .offset = offsetof(struct pop3_conf, listen),
        .min = 1,
        .max = 16,
        .sub = pop3_listen_keys,
        .sub_size = sizeof(struct pop3_listen_conf),
        .doc = "Listening sockets: {\"address\", \"tls\"}, 1 to 16.",
    },
    {
        .name = "plaintext_auth_networks",
        .type = PTL_CONF_STRING_LIST,
        .offset = offsetof(struct pop3_conf, plaintext_auth_networks),
        .max = 256,
        .validate = pop3_validate_networks,
        .doc = "Client networks (\"192.0.2.0/24\", \"::1\") allowed to "
               "log in without TLS on a starttls listener; default "
               "none.",
    },
    {
        .name = "greeting",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct pop3_conf, greeting),
        .def = "Petrel POP3 server ready",
        .validate = pop3_validate_greeting,
        .doc = "Text of the +OK greeting.",
    },
    {
        .name = "idle_timeout",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct pop3_conf, idle_timeout_ms),
        .def = "10m",
        .min = 1000,
        .max = (int64_t)24 * 3600 * 1000,
        .doc = "Autologout after this long without a command (RFC "
               "1939 asks for at least 10 minutes).",
    },
    {
        .name = "session_timeout",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct pop3_conf, session_timeout_ms),
        .def = "2h",
        .min = 1000,
        .max = (int64_t)7 * 24 * 3600 * 1000,
        .doc = "Longest session, downloads included.",
    },
    {
        .name = "max_line",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct pop3_conf, max_line),
        .def = "255",
        .min = 64,
        .max = 8192,
        .doc = "Longest command line in octets, CRLF included (RFC "
               "2449: 255).",
    },
    {
        .name = "max_connections",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct pop3_conf, max_connections),
        .def = "1000",
        .min = 0,
        .max = 1000000,
        .doc = "Connections per listener and worker process (0: no "
               "limit).",
    },
    {
        .name = "max_per_ip",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct pop3_conf, max_per_ip),
        .def = "20",
        .min = 0,
        .max = 1000000,
        .doc = "Connections from one client address per listener and "
               "worker process (0: no limit).",
    },
    {
        .name = "auth_failure_delay",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct pop3_conf, auth_failure_delay_ms),
        .def = "1s",
        .min = 0,
        .max = (int64_t)60 * 1000,
        .doc = "Wait before answering a failed login; doubles with "
               "each failure of the client address.",
    },
    {
        .name = "auth_failure_delay_max",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct pop3_conf, auth_failure_delay_max_ms),
        .def = "30s",
        .min = 0,
        .max = (int64_t)10 * 60 * 1000,
        .doc = "Longest such wait.",
    },
    {
        .name = "auth_max_failures",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct pop3_conf, auth_max_failures),
        .def = "3",
        .min = 1,
        .max = 100,
        .doc = "Failed logins after which the connection is closed; "
               "an address with that many recent failures waits "
               "even before a successful login.",
    },
    {
        .name = "auth_failure_window",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct pop3_conf, auth_failure_window_ms),
        .def = "15m",
        .min = 1000,
        .max = (int64_t)24 * 3600 * 1000,
        .doc = "How long a client address's failures are remembered "
               "(per worker process).",
    },
    {
        .name = "retr_chunk",
        .type = PTL_CONF_SIZE,
        .offset = offsetof(struct pop3_conf, retr_chunk),
        .def = "64k",
        .min = 4096,
        .max = 1024 * 1024,
        .doc = "Bytes of a message read at a time by RETR and TOP.",
    },
    {
        .name = "write_buffer",
        .type = PTL_CONF_SIZE,
        .offset = offsetof(struct pop3_conf, write_buffer),
        .def = "256k",
        .min = 16 * 1024,
        .max = 16 * 1024 * 1024,
        .doc = "Output queued per connection before the session waits "
               "for the client to read.",
    },
    {NULL},
};

int
pop3_check_config(struct ptl_instance *inst, const json_t *section,
                  void *conf_ptr, struct ptl_error *err)
{
	const struct pop3_conf *conf = conf_ptr;
	const struct pop3_listen_conf *items = conf->listen.items;
	char path[64];
	size_t i, j;

	for (i = 0; i < conf->listen.count; i++) {
		for (j = 0; j < i; j++) {
			if (items[i].address.port != items[j].address.port ||
			    strcmp(items[i].address.host,
			           items[j].address.host) != 0)
				continue;
			(void)snprintf(path, sizeof(path),
			               "listen[%zu].address", i);
			return ptl_error_set_path(err, path,
			                          "address \"%s\" is listed "
			                          "twice",
			                          items[i].address.text);
		}
	}
	if (conf->auth_failure_delay_max_ms < conf->auth_failure_delay_ms)
		return ptl_error_set_path(err, "auth_failure_delay_max",
		                          "must not be shorter than "
		                          "auth_failure_delay");
	return PTL_OK;
}

/* ---- Network prefixes ----------------------------------------------- */

int
pop3_cidr_parse(const char *text, struct pop3_cidr *out, struct ptl_error *err)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(text, '/');
	size_t host_len = slash != NULL ? (size_t)(slash - text) : strlen(text);
	unsigned max_bits, bits, i;

	memset(out, 0, sizeof(*out));
	if (host_len == 0 || host_len >= sizeof(host))
		return ptl_error_set(err, "expected an address or "
		                          "\"address/bits\"");
	memcpy(host, text, host_len);
	host[host_len] = '\0';
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
		max_bits = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
		max_bits = 128;
	} else {
		return ptl_error_set(err, "\"%s\" is not an IP address", host);
	}
	bits = max_bits;
	if (slash != NULL) {
		const char *p = slash + 1;

		if (*p == '\0' || strlen(p) > 3)
			return ptl_error_set(err, "bad prefix length");
		bits = 0;
		for (; *p != '\0'; p++) {
			if (*p < '0' || *p > '9')
				return ptl_error_set(err, "bad prefix length");
			bits = bits * 10 + (unsigned)(*p - '0');
		}
		if (bits > max_bits)
			return ptl_error_set(err, "prefix length over %u",
			                     max_bits);
	}
	out->bits = bits;
	for (i = bits; i < max_bits; i++) {
		if (out->addr[i / 8] & (0x80u >> (i % 8)))
			return ptl_error_set(err,
			                     "address has bits set "
			                     "beyond the /%u prefix",
			                     bits);
	}
	return PTL_OK;
}

bool
pop3_cidr_match(const struct pop3_cidr *net, const char *ip)
{
	uint8_t addr[16];
	const uint8_t *a = addr;
	unsigned full, rest;

	if (inet_pton(AF_INET6, ip, addr) == 1) {
		if (net->family == AF_INET) {
			/* ::ffff:192.0.2.1 is an IPv4 client on a v6 socket */
			if (!IN6_IS_ADDR_V4MAPPED((struct in6_addr *)addr))
				return false;
			a = addr + 12;
		}
	} else if (inet_pton(AF_INET, ip, addr) == 1) {
		if (net->family != AF_INET)
			return false;
	} else {
		return false;
	}
	full = net->bits / 8;
	rest = net->bits % 8;
	if (memcmp(a, net->addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[full] ^ net->addr[full]) & (0xffu << (8 - rest))) == 0;
}
