/* SPDX-License-Identifier: MIT */
/* The Received: trace field (RFC 5321 4.4) with TLS details (RFC 8314). */
#ifndef PETREL_SMTP_RECEIVED_H
#define PETREL_SMTP_RECEIVED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Longest Received: field we write, folded lines and CRLFs included. */
#define SMTP_RECEIVED_MAX 2048

/** What goes into one Received: field. */
struct smtp_received_info {
	const char *helo;        /* as the client sent it; NULL: none */
	const char *peer_ip;     /* client address */
	const char *hostname;    /* this server */
	const char *protocol;    /* smtp_received_protocol() */
	const char *id;          /* message id in the logs */
	const char *tls_version; /* NULL: no TLS */
	const char *tls_cipher;
	const char *rcpt; /* the recipient when there is one; NULL */
	bool rcpt_utf8;   /* rcpt may keep UTF-8 (SMTPUTF8 message) */
	int64_t when;     /* wall-clock seconds */
};

/**
 * The "with" keyword of RFC 3848 / RFC 6531: SMTP, ESMTP, ESMTPS,
 * ESMTPA, ESMTPSA, UTF8SMTP, UTF8SMTPS, UTF8SMTPA, UTF8SMTPSA.
 */
const char *smtp_received_protocol(bool esmtp, bool tls, bool auth, bool utf8);

/**
 * Copy peer-supplied @p in into @p out for a header: letters, digits
 * and ".-_:[]@+=" stay, as do bytes >= 0x80 when @p keep_utf8; every
 * other byte becomes "%HH". The result is NUL-terminated and cut (never
 * inside an escape) to fit @p cap.
 * @return the length written.
 */
size_t smtp_header_escape(char *out, size_t cap, const char *in, size_t len,
                          bool keep_utf8);

/**
 * RFC 5322 date-time of @p when in local time, e.g.
 * "Tue, 26 Nov 2024 10:00:00 +0100", into @p out (at least 40 bytes).
 */
void smtp_rfc5322_date(int64_t when, char *out, size_t cap);

/**
 * Format the whole field, folded, ending in CRLF. Peer values (HELO,
 * recipient) are escaped with smtp_header_escape(), so the field stays
 * one well-formed header whatever the client sent (SECURITY.md #5).
 * @return the length written, or 0 when @p cap is too small.
 */
size_t smtp_received_format(const struct smtp_received_info *ri, char *out,
                            size_t cap);

#endif
