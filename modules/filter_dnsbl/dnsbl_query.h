/* SPDX-License-Identifier: MIT */
/* DNSBL names, answer codes and reply texts (no I/O). */
#ifndef PETREL_DNSBL_QUERY_H
#define PETREL_DNSBL_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <petrel/core.h>

#include "policy_net.h"

/** Zones per configuration (a bit each in 32-bit masks). */
#define DNSBL_ZONES_MAX 32
/** Longest DNS name (RFC 1035 section 2.3.4, as text without the dot). */
#define DNSBL_NAME_MAX 253
/** Longest reply text the smtp module sends. */
#define DNSBL_TEXT_MAX 200

/**
 * Which answers count as a listing: an inclusive range of IPv4
 * addresses (host order), or with `mask` set, any address sharing a bit
 * with it inside 127.0.0.0/8 (lists that encode reasons as bits).
 */
struct dnsbl_range {
	uint32_t lo, hi;
	uint32_t mask;
};

/**
 * The query name prefix of @p ip: "4.3.2.1" for 1.2.3.4 (RFC 5782
 * section 2.1), 32 reversed nibbles for IPv6 (section 2.4).
 * @return PTL_OK, or PTL_ERROR when @p size is too small.
 */
int dnsbl_reverse_ip(const struct policy_ip *ip, char *out, size_t size);

/**
 * "@p prefix.@p zone" into @p out. @return PTL_OK, or PTL_ERROR when the
 * name would be longer than DNSBL_NAME_MAX or a label than 63.
 */
int dnsbl_query_name(const char *prefix, const char *zone, char *out,
                     size_t size);

/**
 * The domain of envelope sender @p mail_from, lower case, when it is a
 * host name that can prefix a zone (letters, digits, '-', dots between
 * labels of 1..63); false for <>, address literals and anything else.
 */
bool dnsbl_sender_domain(const char *mail_from, char *out, size_t size);

/**
 * Parse one "returns" entry: "127.0.0.2", "127.0.0.4-127.0.0.11",
 * "127.0.0.0/24" or "&0.0.0.4" (bit mask). @return PTL_OK or PTL_ERROR
 * with err->text.
 */
int dnsbl_range_parse(const char *text, struct dnsbl_range *out,
                      struct ptl_error *err);

/**
 * 127.255.255.0/24: what lists answer when they refuse a query (Spamhaus
 * 127.255.255.254: query through a public resolver; .255: too many
 * queries; .252: typo in the zone). Never a listing.
 */
bool dnsbl_code_is_error(uint32_t code);

/**
 * Whether answer @p code (IPv4, host order) is a listing under @p n
 * ranges: never an error code; with no ranges, anything in 127.0.0.2 ..
 * 127.255.254.255 (RFC 5782: 127.0.0.2 is listed, 127.0.0.1 and answers
 * outside 127/8 are not).
 */
bool dnsbl_code_listed(const struct dnsbl_range *ranges, size_t n,
                       uint32_t code);

/** What a reason template may refer to. */
struct dnsbl_reason_args {
	const char *ip;     /* %i: client address */
	const char *zone;   /* %z */
	const char *domain; /* %d: sender domain ("" for IP lists) */
	const char *code;   /* %r: the answer, "127.0.0.2" */
	const char *txt;    /* %t: the TXT record ("" when none) */
};

/**
 * Check a reason template: %i %z %d %r %t %% and nothing else.
 * @return PTL_OK or PTL_ERROR with err->text.
 */
int dnsbl_template_check(const char *tmpl, struct ptl_error *err);

/**
 * Expand @p tmpl into @p out (at most @p size - 1 bytes, NUL-terminated).
 * Bytes that are not printable ASCII become '?': a TXT record is
 * written by whoever runs the list.
 */
void dnsbl_reason_format(const char *tmpl, const struct dnsbl_reason_args *a,
                         char *out, size_t size);

#endif
