/* SPDX-License-Identifier: MIT */
/* Shared by the policy filters: IP addresses, CIDR lists, keyed hashing. */
#ifndef PETREL_POLICY_NET_H
#define PETREL_POLICY_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <petrel/config.h>
#include <petrel/core.h>
#include <petrel/pool.h>

/*
 * These files are compiled into filter_dnsbl, filter_ratelimit and
 * filter_greylist (each module gets its own hidden copy).
 */

/** An IP address; IPv4 uses addr[0..3], IPv4-mapped IPv6 is IPv4. */
struct policy_ip {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
};

/** A network: address with host bits zero and a prefix length. */
struct policy_cidr {
	struct policy_ip net;
	unsigned bits;
};

/** Longest text of policy_ip_format(), with "/128" and the NUL. */
#define POLICY_IP_TEXT_MAX 52

/**
 * Parse an IP address as ptl_conn_peer_ip() gives it ("192.0.2.1",
 * "2001:db8::1", "::ffff:192.0.2.1" becomes IPv4; a "%zone" suffix is
 * ignored). @return PTL_OK or PTL_ERROR.
 */
int policy_ip_parse(const char *text, struct policy_ip *out);

/** Zero the host bits of @p ip beyond @p v4_bits / @p v6_bits. */
void policy_ip_mask(struct policy_ip *ip, unsigned v4_bits, unsigned v6_bits);

/** Write @p ip as text, with "/bits" when @p bits is below the full
 *  length. @return @p out. */
char *policy_ip_format(const struct policy_ip *ip, unsigned bits, char *out,
                       size_t size);

/**
 * Parse "ADDR" or "ADDR/BITS". Host bits set beyond the prefix are an
 * error: "192.0.2.1/24" is usually a typo. @return PTL_OK or PTL_ERROR
 * with err->text set.
 */
int policy_cidr_parse(const char *text, struct policy_cidr *out,
                      struct ptl_error *err);

/** Whether @p ip is in one of the @p n networks. */
bool policy_cidr_match(const struct policy_cidr *nets, size_t n,
                       const struct policy_ip *ip);

/**
 * Build the networks of a string list (already checked by
 * policy_validate_cidrs) into @p pool. @return PTL_OK or PTL_ERROR.
 */
int policy_cidr_list(struct ptl_pool *pool, const struct ptl_conf_list *texts,
                     struct policy_cidr **out, size_t *n_out,
                     struct ptl_error *err);

/** Config validator for a PTL_CONF_STRING_LIST of CIDRs. */
int policy_validate_cidrs(const json_t *value, void *field,
                          struct ptl_error *err);

/** SipHash-2-4 of @p data under the 128-bit key @p key. */
uint64_t policy_siphash(const uint64_t key[2], const void *data, size_t len);

/**
 * A 128-bit fingerprint of @p data under the 256-bit key @p key: two
 * SipHash-2-4 values under its two halves. Never {0, 0} (that marks an
 * unused slot in a policy table).
 */
void policy_fingerprint(const uint64_t key[4], const void *data, size_t len,
                        uint64_t out[2]);

/** Fill @p buf with random bytes (getrandom). @return PTL_OK or
 *  PTL_ERROR. */
int policy_random(void *buf, size_t len, struct ptl_error *err);

/** Lower-case ASCII copy of @p in into @p out (truncated to fit).
 *  @return the length written. */
size_t policy_lower(char *out, size_t size, const char *in);

#endif
