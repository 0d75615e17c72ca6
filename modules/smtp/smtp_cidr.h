/* SPDX-License-Identifier: MIT */
/* Network prefixes ("192.0.2.0/24", "2001:db8::/32") for trusted_networks. */
#ifndef PETREL_SMTP_CIDR_H
#define PETREL_SMTP_CIDR_H

#include <stdbool.h>
#include <stdint.h>

/** One network: address family, prefix length and address bytes. */
struct smtp_cidr {
	int family;       /* AF_INET or AF_INET6 */
	unsigned bits;    /* prefix length */
	uint8_t addr[16]; /* network address, host bits zero */
};

/**
 * Parse "ADDR" or "ADDR/BITS" (IPv4 or IPv6). Host bits set below the
 * prefix are refused ("192.0.2.1/24"): they usually mean a typo.
 * @return PTL_OK or PTL_ERROR.
 */
int smtp_cidr_parse(const char *text, struct smtp_cidr *out);

/**
 * Whether the address @p ip (text, as ptl_conn_peer_ip() gives it) is in
 * @p net. IPv4-mapped IPv6 addresses ("::ffff:192.0.2.1") match IPv4
 * networks.
 */
bool smtp_cidr_match(const struct smtp_cidr *net, const char *ip);

#endif
