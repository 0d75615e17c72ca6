/* SPDX-License-Identifier: MIT */
/* Config values written as text: sizes, durations, host:port addresses. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <petrel/config.h>

#include "core/conf_internal.h"

/*
 * Leading decimal digits of *p into *n, advancing *p.
 * Returns 1 on success, 0 when there is no digit, -1 on overflow.
 */
static int
conf_digits(const char **p, uint64_t *n)
{
	const char *s = *p;
	uint64_t v = 0;
	unsigned d;

	if (*s < '0' || *s > '9')
		return 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*p = s;
	*n = v;
	return 1;
}

int
ptl_conf_parse_size(const char *text, uint64_t *bytes_out,
                    struct ptl_error *err)
{
	const char *p = text;
	uint64_t n = 0, mult;
	int rc;

	if (text == NULL)
		return ptl_error_set(err, CONF_HINT_SIZE);
	rc = conf_digits(&p, &n);
	if (rc < 0)
		return ptl_error_set(err, CONF_HINT_SIZE ": too large");
	if (rc == 0)
		return ptl_error_set(err, CONF_HINT_SIZE);
	switch (*p) {
	case '\0':
		mult = 1;
		break;
	case 'k':
	case 'K':
		mult = UINT64_C(1) << 10;
		break;
	case 'm':
	case 'M':
		mult = UINT64_C(1) << 20;
		break;
	case 'g':
	case 'G':
		mult = UINT64_C(1) << 30;
		break;
	case 't':
	case 'T':
		mult = UINT64_C(1) << 40;
		break;
	default:
		return ptl_error_set(err, CONF_HINT_SIZE);
	}
	if (*p != '\0' && *++p != '\0')
		return ptl_error_set(err, CONF_HINT_SIZE);
	if (n > UINT64_MAX / mult)
		return ptl_error_set(err, CONF_HINT_SIZE ": too large");
	*bytes_out = n * mult;
	return PTL_OK;
}

int
ptl_conf_parse_duration(const char *text, int64_t *ms_out,
                        struct ptl_error *err)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = {
	    {"", 1000},   {"ms", 1},      {"s", 1000},
	    {"m", 60000}, {"h", 3600000}, {"d", 86400000},
	};
	const char *p = text;
	uint64_t n = 0;
	size_t i;
	int rc;

	if (text == NULL)
		return ptl_error_set(err, CONF_HINT_DURATION);
	rc = conf_digits(&p, &n);
	if (rc < 0)
		return ptl_error_set(err, CONF_HINT_DURATION ": too large");
	if (rc == 0)
		return ptl_error_set(err, CONF_HINT_DURATION);
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].suffix) != 0)
			continue;
		if (n > (uint64_t)INT64_MAX / units[i].ms)
			return ptl_error_set(err,
			                     CONF_HINT_DURATION ": too large");
		*ms_out = (int64_t)(n * units[i].ms);
		return PTL_OK;
	}
	return ptl_error_set(err, CONF_HINT_DURATION);
}

static int
conf_address_error(struct ptl_error *err, const char *detail)
{
	return ptl_error_set(err, CONF_HINT_ADDRESS ": %s", detail);
}

static bool
conf_is_ipv6(const char *host, size_t len)
{
	char buf[INET6_ADDRSTRLEN];
	struct in6_addr a6;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, host, len);
	buf[len] = '\0';
	return inet_pton(AF_INET6, buf, &a6) == 1;
}

/*
 * An IPv4 literal, or a DNS name of letters, digits, '-' and '.' with no
 * empty label (a single trailing dot is allowed). Nothing else reaches a
 * resolver or a log line from here.
 */
static bool
conf_is_host(const char *host, size_t len)
{
	char buf[INET_ADDRSTRLEN];
	struct in_addr a4;
	size_t i, label = 0;
	bool numeric = true;
	char c;

	if (len == 0 || len > 253)
		return false;
	for (i = 0; i < len; i++) {
		c = host[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-'))
			return false;
		if (c < '0' || c > '9')
			numeric = false;
		if (++label > 63)
			return false;
	}
	if (!numeric)
		return true;
	/* All digits and dots: it must be a real dotted-quad address. */
	if (len >= sizeof(buf))
		return false;
	memcpy(buf, host, len);
	buf[len] = '\0';
	return inet_pton(AF_INET, buf, &a4) == 1;
}

static int
conf_parse_port(const char *s, uint16_t *port_out, struct ptl_error *err)
{
	unsigned long v = 0;
	size_t i;

	if (s[0] == '\0')
		return conf_address_error(err, "missing port");
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return conf_address_error(err, "port is not a number");
		if (i >= 5)
			return conf_address_error(err, "port out of range");
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return conf_address_error(err, "port out of range");
	*port_out = (uint16_t)v;
	return PTL_OK;
}

int
ptl_conf_parse_address(struct ptl_pool *pool, const char *text,
                       struct ptl_conf_address *out, struct ptl_error *err)
{
	const char *host, *bracket, *colon, *port_text;
	size_t host_len;
	uint16_t port = 0;
	char *text_copy, *host_copy;

	if (text == NULL || text[0] == '\0')
		return ptl_error_set(err, CONF_HINT_ADDRESS);
	if (text[0] == '[') {
		host = text + 1;
		bracket = strchr(host, ']');
		if (bracket == NULL)
			return conf_address_error(err, "missing \"]\"");
		host_len = (size_t)(bracket - host);
		if (bracket[1] != ':')
			return conf_address_error(err,
			                          "missing \":\" after \"]\"");
		port_text = bracket + 2;
		if (!conf_is_ipv6(host, host_len))
			return conf_address_error(err, "bad IPv6 address");
	} else {
		colon = strchr(text, ':');
		if (colon == NULL)
			return conf_address_error(err, "missing port");
		if (strchr(colon + 1, ':') != NULL)
			return conf_address_error(
			    err, "an IPv6 address goes in brackets");
		host = text;
		host_len = (size_t)(colon - text);
		port_text = colon + 1;
		if (host_len == 0)
			return conf_address_error(err, "missing host");
		if (!(host_len == 1 && host[0] == '*') &&
		    !conf_is_host(host, host_len))
			return conf_address_error(err, "bad host");
	}
	if (conf_parse_port(port_text, &port, err) != PTL_OK)
		return PTL_ERROR;
	text_copy = ptl_pstrdup(pool, text);
	host_copy = ptl_pstrndup(pool, host, host_len);
	if (text_copy == NULL || host_copy == NULL)
		return ptl_error_set(err, "out of memory");
	out->text = text_copy;
	out->host = host_copy;
	out->port = port;
	return PTL_OK;
}

/* "10M" when exact in a binary unit, else plain bytes. */
void
ptl_conf_format_size(char *out, size_t size, int64_t bytes)
{
	static const char units[] = "TGMk";
	unsigned shift = 40;
	size_t i;

	for (i = 0; bytes > 0 && i < sizeof(units) - 1; i++, shift -= 10) {
		if ((bytes & ((INT64_C(1) << shift) - 1)) == 0) {
			(void)snprintf(out, size, "%" PRId64 "%c",
			               bytes >> shift, units[i]);
			return;
		}
	}
	(void)snprintf(out, size, "%" PRId64, bytes);
}

/* "5m" when exact in a unit, else milliseconds. */
void
ptl_conf_format_duration(char *out, size_t size, int64_t ms)
{
	static const struct {
		const char *suffix;
		int64_t ms;
	} units[] = {
	    {"d", 86400000},
	    {"h", 3600000},
	    {"m", 60000},
	    {"s", 1000},
	};
	size_t i;

	for (i = 0; ms > 0 && i < sizeof(units) / sizeof(units[0]); i++) {
		if (ms % units[i].ms == 0) {
			(void)snprintf(out, size, "%" PRId64 "%s",
			               ms / units[i].ms, units[i].suffix);
			return;
		}
	}
	(void)snprintf(out, size, ms == 0 ? "%" PRId64 : "%" PRId64 "ms", ms);
}
