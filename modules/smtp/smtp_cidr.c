/* SPDX-License-Identifier: MIT */
/* Network prefixes ("192.0.2.0/24", "2001:db8::/32") for trusted_networks. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <petrel/core.h>

#include "smtp_cidr.h"

/* Longest text we accept: an IPv6 address and "/128". */
#define CIDR_TEXT_MAX (INET6_ADDRSTRLEN + 4)

static bool
cidr_host_bits_zero(const uint8_t *addr, unsigned bits, unsigned total)
{
	unsigned i;

	for (i = bits; i < total; i++) {
		if (addr[i / 8] & (0x80u >> (i % 8)))
			return false;
	}
	return true;
}

int
smtp_cidr_parse(const char *text, struct smtp_cidr *out)
{
	char buf[CIDR_TEXT_MAX + 1], *slash, *end;
	unsigned long bits;
	unsigned total;

	if (strlen(text) > CIDR_TEXT_MAX)
		return PTL_ERROR;
	memset(out, 0, sizeof(*out));
	strcpy(buf, text);
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = AF_INET;
		total = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = AF_INET6;
		total = 128;
	} else {
		return PTL_ERROR;
	}
	bits = total;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9')
			return PTL_ERROR;
		bits = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || bits > total)
			return PTL_ERROR;
	}
	out->bits = (unsigned)bits;
	if (!cidr_host_bits_zero(out->addr, out->bits, total))
		return PTL_ERROR;
	return PTL_OK;
}

static bool
cidr_prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	uint8_t mask;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xffu << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

bool
smtp_cidr_match(const struct smtp_cidr *net, const char *ip)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
	                                   0, 0, 0, 0, 0xff, 0xff};
	uint8_t addr[16];

	if (inet_pton(AF_INET, ip, addr) == 1) {
		if (net->family != AF_INET)
			return false;
		return cidr_prefix_equal(addr, net->addr, net->bits);
	}
	if (inet_pton(AF_INET6, ip, addr) != 1)
		return false;
	if (net->family == AF_INET6)
		return cidr_prefix_equal(addr, net->addr, net->bits);
	if (memcmp(addr, mapped, sizeof(mapped)) != 0)
		return false;
	return cidr_prefix_equal(addr + 12, net->addr, net->bits);
}
