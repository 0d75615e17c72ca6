/* SPDX-License-Identifier: MIT */
/* SASL for AUTH: strict base64 and the PLAIN and LOGIN messages. */
#ifndef PETREL_SMTP_SASL_H
#define PETREL_SMTP_SASL_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 4954 section 4: an AUTH line, CRLF included, is at most 12288. */
#define SMTP_SASL_LINE_MAX 12288
/* Longest decoded response we look at. */
#define SMTP_SASL_DECODED_MAX (SMTP_SASL_LINE_MAX / 4 * 3)
/* Longest login name (an address: 64 + 1 + 255) and password. */
#define SMTP_SASL_USER_MAX 320
#define SMTP_SASL_PASS_MAX 1024

/**
 * Decode strict base64 (RFC 4648 section 4: the standard alphabet, '='
 * padding required, no whitespace, no data after the padding, unused
 * bits zero). An empty input decodes to nothing.
 * @return PTL_OK with *@p out_len set, or PTL_ERROR (malformed, or more
 * than @p cap bytes).
 */
int smtp_base64_decode(const char *in, size_t len, unsigned char *out,
                       size_t cap, size_t *out_len);

/** Credentials taken from a SASL response; pointers into its buffer. */
struct smtp_sasl_creds {
	const char *user; /* authentication identity, NUL-terminated */
	const char *pass; /* not NUL-terminated: pass_len bytes */
	size_t pass_len;
};

/**
 * Split a decoded PLAIN message (RFC 4616): [authzid] NUL authcid NUL
 * passwd. The user name stays NUL-terminated in @p msg. Refused: a missing
 * part, an empty authcid or password, a NUL in the password, names or passwords
 * over the limits, control characters in the name, and an authzid that is
 * neither empty nor equal to the authcid: Petrel has no proxy
 * authorization, and accepting any authzid unchecked let a user act as
 * another (maddy CVE-2023-27582).
 * @return PTL_OK or PTL_ERROR.
 */
int smtp_sasl_plain(unsigned char *msg, size_t len,
                    struct smtp_sasl_creds *out);

/**
 * Check a decoded LOGIN user name (NUL-terminated in place, one spare
 * byte needed) or password: lengths and, for the name, no control
 * characters or NUL.
 * @return PTL_OK or PTL_ERROR.
 */
int smtp_sasl_login_user(unsigned char *msg, size_t len);
int smtp_sasl_login_pass(const unsigned char *msg, size_t len);

#endif
