/* SPDX-License-Identifier: MIT */
/* petrelctl dmarc: rua destinations, gzip and the report message. */
#ifndef PETREL_CTL_DMARC_MAIL_H
#define PETREL_CTL_DMARC_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl_dmarc_agg.h"

/* Destinations taken from one rua value; more are ignored (RFC 7489
 * 6.2 lets a receiver limit them, and two must be honoured). */
#define CTL_DMARC_DEST_MAX 8

/* A mailto: destination of a rua tag. */
struct ctl_dmarc_dest {
	char addr[CTL_DMARC_VALUE_MAX + 1];   /* local@domain */
	char domain[CTL_DMARC_VALUE_MAX + 1]; /* lower case */
	uint64_t max_size;                    /* "!size" in bytes; 0: none */
};

/* Whether @addr is local@domain with a dot-atom local part: safe in
 * SMTP commands and header fields. */
bool ctl_dmarc_addr_ok(const char *addr);

/*
 * Parse the rua value @rua (comma-separated URIs, RFC 7489 6.4): the
 * mailto: URIs with a usable address go into @out (at most @max);
 * other schemes and invalid URIs are counted in *@skipped_out.
 * @return the number of destinations in @out.
 */
size_t ctl_dmarc_rua_parse(const char *rua, struct ctl_dmarc_dest *out,
                           size_t max, size_t *skipped_out);

/* @len bytes of @data gzip-compressed into @out. @return 0 or -1. */
int ctl_dmarc_gzip(const void *data, size_t len, struct ctl_dmarc_buf *out);

/* Base64 of @data in lines of 76 characters, each ending in CRLF
 * (RFC 2045 6.8). @return 0 or -1. */
int ctl_dmarc_base64(const void *data, size_t len, struct ctl_dmarc_buf *out);

/* What the report message says besides the attachment. */
struct ctl_dmarc_msg {
	const char *from;          /* the reporting address */
	const char *to;            /* one destination address */
	const char *policy_domain; /* validated by ctl_dmarc_domain_ok() */
	const char *submitter;     /* a domain name, for the Subject */
	const char *report_id;     /* letters, digits, '.', '-' */
	const char *msg_id_domain; /* right side of Message-ID */
	const char *file_name;     /* of the attachment */
	const char *boundary;      /* MIME boundary, not in base64 */
	int64_t date;              /* Date: field, seconds */
	int64_t begin, end;        /* what the report covers */
	unsigned serial;           /* makes Message-ID unique per copy */
};

/*
 * The RFC 7489 7.2.1.1 report message into @out with CRLF lines: the
 * header, a multipart/mixed body of a short text part and @gz as an
 * application/gzip base64 attachment. @return 0 or -1.
 */
int ctl_dmarc_message(const struct ctl_dmarc_msg *m, const void *gz,
                      size_t gzlen, struct ctl_dmarc_buf *out);

/*
 * @len bytes of @msg (CRLF lines) as SMTP DATA into @out: a '.' doubled
 * at the start of every line (RFC 5321 4.5.2), a CRLF added when the
 * last line lacks one, then the ".CRLF" that ends the data.
 * @return 0 or -1.
 */
int ctl_dmarc_dot_stuff(const char *msg, size_t len, struct ctl_dmarc_buf *out);

#endif
