/* SPDX-License-Identifier: MIT */
/* Shared by the policy filters: IP addresses, CIDR lists, keyed hashing. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "policy_net.h"

static const uint8_t policy_v4_mapped[12] = {0, 0, 0, 0, 0,    0,
                                             0, 0, 0, 0, 0xff, 0xff};

int
policy_ip_parse(const char *text, struct policy_ip *out)
{
	char buf[INET6_ADDRSTRLEN + 1];
	size_t len;

	memset(out, 0, sizeof(*out));
	if (text == NULL)
		return PTL_ERROR;
	len = strcspn(text, "%");
	if (len == 0 || len >= sizeof(buf))
		return PTL_ERROR;
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = AF_INET;
		return PTL_OK;
	}
	if (inet_pton(AF_INET6, buf, out->addr) != 1)
		return PTL_ERROR;
	out->family = AF_INET6;
	/* A v4 client on a dual-stack socket is the same client as on a
	 * v4 socket: it must meet the same lists and counters. */
	if (memcmp(out->addr, policy_v4_mapped, 12) == 0) {
		memmove(out->addr, out->addr + 12, 4);
		memset(out->addr + 4, 0, 12);
		out->family = AF_INET;
	}
	return PTL_OK;
}

static void
policy_zero_bits(uint8_t *addr, unsigned bits, unsigned total)
{
	unsigned i;

	for (i = bits; i < total; i++)
		addr[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
}

void
policy_ip_mask(struct policy_ip *ip, unsigned v4_bits, unsigned v6_bits)
{
	if (ip->family == AF_INET)
		policy_zero_bits(ip->addr, v4_bits > 32 ? 32 : v4_bits, 32);
	else
		policy_zero_bits(ip->addr, v6_bits > 128 ? 128 : v6_bits, 128);
}

char *
policy_ip_format(const struct policy_ip *ip, unsigned bits, char *out,
                 size_t size)
{
	char text[INET6_ADDRSTRLEN];
	unsigned total = ip->family == AF_INET ? 32 : 128;

	if (inet_ntop(ip->family, ip->addr, text, sizeof(text)) == NULL)
		(void)snprintf(text, sizeof(text), "?");
	if (bits < total)
		(void)snprintf(out, size, "%s/%u", text, bits);
	else
		(void)snprintf(out, size, "%s", text);
	return out;
}

int
policy_cidr_parse(const char *text, struct policy_cidr *out,
                  struct ptl_error *err)
{
	char buf[INET6_ADDRSTRLEN + 5], *slash, *end;
	struct policy_cidr masked;
	unsigned long bits;
	unsigned total;

	memset(out, 0, sizeof(*out));
	if (text == NULL || strlen(text) >= sizeof(buf))
		return ptl_error_set(err, "\"%s\" is not an address or network",
		                     text != NULL ? text : "");
	strcpy(buf, text);
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';
	/* Parsed as text by inet_pton, never with a zone or mapped form. */
	if (inet_pton(AF_INET, buf, out->net.addr) == 1) {
		out->net.family = AF_INET;
		total = 32;
	} else if (inet_pton(AF_INET6, buf, out->net.addr) == 1) {
		out->net.family = AF_INET6;
		total = 128;
	} else {
		return ptl_error_set(err, "\"%s\" is not an address or network",
		                     text);
	}
	bits = total;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9')
			return ptl_error_set(err, "\"%s\": bad prefix length",
			                     text);
		errno = 0;
		bits = strtoul(slash + 1, &end, 10);
		if (errno != 0 || *end != '\0' || bits > total)
			return ptl_error_set(err, "\"%s\": bad prefix length",
			                     text);
	}
	out->bits = (unsigned)bits;
	masked = *out;
	policy_zero_bits(masked.net.addr, out->bits, total);
	if (memcmp(masked.net.addr, out->net.addr, 16) != 0)
		return ptl_error_set(err, "\"%s\": host bits set beyond /%u",
		                     text, out->bits);
	return PTL_OK;
}

bool
policy_cidr_match(const struct policy_cidr *nets, size_t n,
                  const struct policy_ip *ip)
{
	struct policy_ip masked;
	size_t i;

	for (i = 0; i < n; i++) {
		if (nets[i].net.family != ip->family)
			continue;
		masked = *ip;
		policy_ip_mask(&masked, nets[i].bits, nets[i].bits);
		if (memcmp(masked.addr, nets[i].net.addr, 16) == 0)
			return true;
	}
	return false;
}

int
policy_cidr_list(struct ptl_pool *pool, const struct ptl_conf_list *texts,
                 struct policy_cidr **out, size_t *n_out, struct ptl_error *err)
{
	const char *const *items = texts->items;
	struct policy_cidr *nets = NULL;
	size_t i;

	*out = NULL;
	*n_out = 0;
	if (texts->count == 0)
		return PTL_OK;
	nets = ptl_pcalloc(pool, texts->count * sizeof(*nets));
	if (nets == NULL)
		return ptl_error_set(err, "out of memory");
	for (i = 0; i < texts->count; i++) {
		if (policy_cidr_parse(items[i], &nets[i], err) != PTL_OK)
			return PTL_ERROR;
	}
	*out = nets;
	*n_out = texts->count;
	return PTL_OK;
}

int
policy_validate_cidrs(const json_t *value, void *field, struct ptl_error *err)
{
	const struct ptl_conf_list *list = field;
	const char *const *items = list->items;
	struct policy_cidr net;
	size_t i;

	for (i = 0; i < list->count; i++) {
		if (policy_cidr_parse(items[i], &net, err) != PTL_OK)
			return PTL_ERROR;
	}
	return PTL_OK;
}

/* ---- SipHash-2-4 (Aumasson and Bernstein, 2012) ---------------------- */

static inline uint64_t
policy_rotl(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

static inline uint64_t
policy_load64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

#define POLICY_SIPROUND(v0, v1, v2, v3)                                        \
	do {                                                                   \
		v0 += v1;                                                      \
		v1 = policy_rotl(v1, 13);                                      \
		v1 ^= v0;                                                      \
		v0 = policy_rotl(v0, 32);                                      \
		v2 += v3;                                                      \
		v3 = policy_rotl(v3, 16);                                      \
		v3 ^= v2;                                                      \
		v0 += v3;                                                      \
		v3 = policy_rotl(v3, 21);                                      \
		v3 ^= v0;                                                      \
		v2 += v1;                                                      \
		v1 = policy_rotl(v1, 17);                                      \
		v1 ^= v2;                                                      \
		v2 = policy_rotl(v2, 32);                                      \
	} while (0)

uint64_t
policy_siphash(const uint64_t key[2], const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t v0 = key[0] ^ 0x736f6d6570736575ull;
	uint64_t v1 = key[1] ^ 0x646f72616e646f6dull;
	uint64_t v2 = key[0] ^ 0x6c7967656e657261ull;
	uint64_t v3 = key[1] ^ 0x7465646279746573ull;
	uint64_t m, last = (uint64_t)(len & 0xff) << 56;
	size_t i, full = len & ~(size_t)7;

	for (i = 0; i < full; i += 8) {
		m = policy_load64(p + i);
		v3 ^= m;
		POLICY_SIPROUND(v0, v1, v2, v3);
		POLICY_SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	for (i = 0; i < (len & 7); i++)
		last |= (uint64_t)p[full + i] << (8 * i);
	v3 ^= last;
	POLICY_SIPROUND(v0, v1, v2, v3);
	POLICY_SIPROUND(v0, v1, v2, v3);
	v0 ^= last;
	v2 ^= 0xff;
	for (i = 0; i < 4; i++)
		POLICY_SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

void
policy_fingerprint(const uint64_t key[4], const void *data, size_t len,
                   uint64_t out[2])
{
	out[0] = policy_siphash(key, data, len);
	out[1] = policy_siphash(key + 2, data, len);
	if (out[0] == 0 && out[1] == 0)
		out[1] = 1;
}

int
policy_random(void *buf, size_t len, struct ptl_error *err)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len > 0) {
		n = getrandom(p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return ptl_error_set_errno(err, errno,
			                           "getrandom failed");
		p += n;
		len -= (size_t)n;
	}
	return PTL_OK;
}

size_t
policy_lower(char *out, size_t size, const char *in)
{
	size_t i;

	if (size == 0)
		return 0;
	for (i = 0; in[i] != '\0' && i + 1 < size; i++)
		out[i] =
		    (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] + 32) : in[i];
	out[i] = '\0';
	return i;
}
