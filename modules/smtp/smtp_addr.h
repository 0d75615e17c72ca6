/* SPDX-License-Identifier: MIT */
/* RFC 5321 paths: reverse-path and forward-path of MAIL and RCPT. */
#ifndef PETREL_SMTP_ADDR_H
#define PETREL_SMTP_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include <petrel/pool.h>

/* RFC 5321 section 4.5.3.1: limits that every implementation accepts. */
#define SMTP_LOCAL_MAX  64
#define SMTP_DOMAIN_MAX 255
#define SMTP_PATH_MAX   256

/** smtp_addr_parse() flags. */
#define SMTP_ADDR_NULL_OK       0x1u /* "<>" allowed (MAIL FROM) */
#define SMTP_ADDR_POSTMASTER_OK 0x2u /* "<Postmaster>" allowed (RCPT TO) */
#define SMTP_ADDR_UTF8_OK       0x4u /* UTF-8 allowed (SMTPUTF8, RFC 6531) */

/** Why a path was refused. */
enum smtp_addr_error {
	SMTP_ADDR_OK = 0,
	SMTP_ADDR_SYNTAX,    /* not a path */
	SMTP_ADDR_TOO_LONG,  /* local part, domain or path over the limits */
	SMTP_ADDR_NON_ASCII, /* well-formed UTF-8 without SMTPUTF8 */
};

/** A parsed path; strings are allocated from the caller's pool. */
struct smtp_addr {
	/**
	 * The mailbox as Petrel uses it: "local@domain" with the domain in
	 * lower case (ASCII letters only), without a trailing dot, and the
	 * local part in its shortest form (quotes only when needed, case
	 * kept). "" for the null path and "Postmaster" for <Postmaster>.
	 */
	const char *address;
	const char *local;  /* local part as in address (maybe quoted) */
	const char *domain; /* NULL for the null path and <Postmaster> */
	bool is_null;       /* <> */
	bool is_postmaster; /* <Postmaster> without a domain */
	bool is_literal;    /* domain is an address literal "[...]" */
	bool utf8;          /* non-ASCII bytes in the address */
	/**
	 * The local part (unquoted) holds '@', '%' or '!': old source
	 * routing syntaxes that some servers still interpret as "relay to
	 * the remote part". Petrel never does, and refuses them for local
	 * domains so that a later hop cannot either.
	 */
	bool routing_chars;
};

/**
 * Parse a path starting at @p in[0] (which must be '<'): an optional
 * source route (parsed, checked and ignored, RFC 5321 section 4.1.2 and
 * appendix C), a mailbox, '>'. *@p consumed_out is the length of the
 * path including the brackets; what follows is the parameter list.
 * Address literals are [IPv4] or [IPv6:...] (normalized to the form
 * inet_ntop() prints); other tagged literals are refused.
 * @return SMTP_ADDR_OK, or the reason for the refusal.
 */
enum smtp_addr_error smtp_addr_parse(const char *in, size_t len, unsigned flags,
                                     struct ptl_pool *pool,
                                     struct smtp_addr *out,
                                     size_t *consumed_out);

/**
 * Lower-case ASCII letters of @p s in place and drop one trailing dot.
 */
void smtp_domain_normalize(char *s);

#endif
