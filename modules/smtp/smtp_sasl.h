/* SPDX-License-Identifier: MIT */
/* SASL for AUTH: limits, and the LOGIN mechanism's two messages. */
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
 * Check a decoded LOGIN user name (NUL-terminated in place, one spare
 * byte needed) or password: lengths and, for the name, no control
 * characters or NUL.
 * @return PTL_OK or PTL_ERROR.
 */
int smtp_sasl_login_user(unsigned char *msg, size_t len);
int smtp_sasl_login_pass(const unsigned char *msg, size_t len);

#endif
