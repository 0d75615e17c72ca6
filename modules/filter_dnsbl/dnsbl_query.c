/* SPDX-License-Identifier: MIT */
/* DNSBL names, answer codes and reply texts (no I/O). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "dnsbl_query.h"

int
dnsbl_reverse_ip(const struct policy_ip *ip, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	int i, len;

	if (ip->family == AF_INET) {
		len = snprintf(out, size, "%u.%u.%u.%u", ip->addr[3],
		               ip->addr[2], ip->addr[1], ip->addr[0]);
		return len > 0 && (size_t)len < size ? PTL_OK : PTL_ERROR;
	}
	/* 32 nibbles, least significant first, each followed by a dot
	 * except the last. */
	if (size < 64)
		return PTL_ERROR;
	for (i = 15; i >= 0; i--) {
		out[n++] = hex[ip->addr[i] & 0xf];
		out[n++] = '.';
		out[n++] = hex[ip->addr[i] >> 4];
		out[n++] = i > 0 ? '.' : '\0';
	}
	return PTL_OK;
}

int
dnsbl_query_name(const char *prefix, const char *zone, char *out, size_t size)
{
	size_t plen = strlen(prefix), zlen = strlen(zone), label = 0, i;

	if (zlen > 0 && zone[zlen - 1] == '.')
		zlen--;
	if (plen == 0 || zlen == 0 || plen + 1 + zlen > DNSBL_NAME_MAX ||
	    plen + 1 + zlen + 1 > size)
		return PTL_ERROR;
	memcpy(out, prefix, plen);
	out[plen] = '.';
	memcpy(out + plen + 1, zone, zlen);
	out[plen + 1 + zlen] = '\0';
	for (i = 0; out[i] != '\0'; i++) {
		if (out[i] == '.') {
			if (label == 0)
				return PTL_ERROR;
			label = 0;
		} else if (++label > 63) {
			return PTL_ERROR;
		}
	}
	return label > 0 ? PTL_OK : PTL_ERROR;
}

bool
dnsbl_sender_domain(const char *mail_from, char *out, size_t size)
{
	const char *at = mail_from != NULL ? strrchr(mail_from, '@') : NULL;
	size_t len, label = 0, i;
	char c;

	if (at == NULL)
		return false;
	len = strlen(at + 1);
	if (len > 0 && at[len] == '.')
		len--;
	if (len == 0 || len >= size || len > DNSBL_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		c = at[1 + i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		           c == '-') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
		out[i] = c;
	}
	out[len] = '\0';
	/* One label ("localhost") cannot be a registered domain. */
	return label > 0 && memchr(out, '.', len) != NULL;
}

static int
dnsbl_parse_v4(const char *text, size_t len, uint32_t *out)
{
	char buf[INET_ADDRSTRLEN];
	struct in_addr a;

	if (len == 0 || len >= sizeof(buf))
		return PTL_ERROR;
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1)
		return PTL_ERROR;
	*out = ntohl(a.s_addr);
	return PTL_OK;
}

int
dnsbl_range_parse(const char *text, struct dnsbl_range *out,
                  struct ptl_error *err)
{
	const char *dash = strchr(text, '-');
	const char *slash = strchr(text, '/');
	struct policy_cidr net;

	memset(out, 0, sizeof(*out));
	if (text[0] == '&') {
		if (dnsbl_parse_v4(text + 1, strlen(text + 1), &out->mask) !=
		        PTL_OK ||
		    out->mask == 0 || (out->mask >> 24) != 0)
			return ptl_error_set(err,
			                     "\"%s\": expected a bit mask such "
			                     "as \"&0.0.0.4\"",
			                     text);
		return PTL_OK;
	}
	if (dash != NULL) {
		if (dnsbl_parse_v4(text, (size_t)(dash - text), &out->lo) !=
		        PTL_OK ||
		    dnsbl_parse_v4(dash + 1, strlen(dash + 1), &out->hi) !=
		        PTL_OK ||
		    out->hi < out->lo)
			return ptl_error_set(err,
			                     "\"%s\": expected \"FIRST-LAST\" "
			                     "IPv4 addresses in order",
			                     text);
		return PTL_OK;
	}
	if (slash != NULL) {
		if (policy_cidr_parse(text, &net, err) != PTL_OK)
			return PTL_ERROR;
		if (net.net.family != AF_INET)
			return ptl_error_set(err, "\"%s\": answers are IPv4",
			                     text);
		out->lo = (uint32_t)net.net.addr[0] << 24 |
		          (uint32_t)net.net.addr[1] << 16 |
		          (uint32_t)net.net.addr[2] << 8 | net.net.addr[3];
		out->hi =
		    out->lo |
		    (net.bits == 0 ? 0xffffffffu : (1u << (32 - net.bits)) - 1);
		if (net.bits == 32)
			out->hi = out->lo;
		return PTL_OK;
	}
	if (dnsbl_parse_v4(text, strlen(text), &out->lo) != PTL_OK)
		return ptl_error_set(
		    err,
		    "\"%s\": expected \"127.0.0.2\", "
		    "\"127.0.0.2-127.0.0.11\", \"127.0.0.0/24\" "
		    "or \"&0.0.0.4\"",
		    text);
	out->hi = out->lo;
	return PTL_OK;
}

bool
dnsbl_code_is_error(uint32_t code)
{
	return (code & 0xffffff00u) == 0x7fffff00u;
}

bool
dnsbl_code_listed(const struct dnsbl_range *ranges, size_t n, uint32_t code)
{
	size_t i;

	if (dnsbl_code_is_error(code))
		return false;
	if (n == 0)
		return code >= 0x7f000002u && code <= 0x7ffffeffu;
	for (i = 0; i < n; i++) {
		if (ranges[i].mask != 0) {
			if ((code >> 24) == 127 && (code & ranges[i].mask) != 0)
				return true;
		} else if (code >= ranges[i].lo && code <= ranges[i].hi) {
			return true;
		}
	}
	return false;
}

int
dnsbl_template_check(const char *tmpl, struct ptl_error *err)
{
	const char *p;

	for (p = tmpl; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return ptl_error_set(err, "only printable ASCII is "
			                          "allowed");
		if (*p != '%')
			continue;
		p++;
		if (*p == '\0' || strchr("izdrt%", *p) == NULL)
			return ptl_error_set(
			    err,
			    "unknown \"%%%c\": use %%i %%z %%d "
			    "%%r %%t or %%%%",
			    *p != '\0' ? *p : ' ');
	}
	return PTL_OK;
}

static size_t
dnsbl_put(char *out, size_t size, size_t n, const char *s)
{
	for (; s != NULL && *s != '\0' && n + 1 < size; s++) {
		unsigned char c = (unsigned char)*s;

		out[n++] = c >= 0x20 && c <= 0x7e ? (char)c : '?';
	}
	return n;
}

void
dnsbl_reason_format(const char *tmpl, const struct dnsbl_reason_args *a,
                    char *out, size_t size)
{
	const char *p, *v;
	char one[2] = {0, 0};
	size_t n = 0;

	if (size == 0)
		return;
	for (p = tmpl; *p != '\0' && n + 1 < size; p++) {
		if (*p != '%' || p[1] == '\0') {
			one[0] = *p;
			n = dnsbl_put(out, size, n, one);
			continue;
		}
		switch (*++p) {
		case 'i':
			v = a->ip;
			break;
		case 'z':
			v = a->zone;
			break;
		case 'd':
			v = a->domain;
			break;
		case 'r':
			v = a->code;
			break;
		case 't':
			v = a->txt;
			break;
		default:
			one[0] = *p;
			v = one;
			break;
		}
		n = dnsbl_put(out, size, n, v);
	}
	out[n] = '\0';
}
