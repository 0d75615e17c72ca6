/* SPDX-License-Identifier: MIT */
/* ESMTP parameters of MAIL and RCPT: SIZE, BODY, SMTPUTF8, DSN, AUTH. */
#ifndef PETREL_SMTP_PARAMS_H
#define PETREL_SMTP_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <petrel/pool.h>

/* RFC 3461 section 4.4: ENVID is at most 100 characters. */
#define SMTP_ENVID_MAX 100
/* RFC 3461 section 4.2 and RFC 4954 section 5: at most 500 characters. */
#define SMTP_ORCPT_MAX      500
#define SMTP_AUTH_PARAM_MAX 500

/** BODY= values (RFC 6152, RFC 3030). */
enum smtp_body {
	SMTP_BODY_NONE = 0, /* no BODY= given */
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
	SMTP_BODY_BINARYMIME,
};

/** RET= values (RFC 3461). */
enum smtp_ret {
	SMTP_RET_NONE = 0,
	SMTP_RET_FULL,
	SMTP_RET_HDRS,
};

/** NOTIFY= bits (RFC 3461). */
#define SMTP_NOTIFY_NEVER   0x1u
#define SMTP_NOTIFY_SUCCESS 0x2u
#define SMTP_NOTIFY_FAILURE 0x4u
#define SMTP_NOTIFY_DELAY   0x8u

/** Parameters of MAIL FROM. */
struct smtp_mail_params {
	bool has_size;
	uint64_t size;       /* SIZE= (RFC 1870) */
	enum smtp_body body; /* BODY= */
	bool smtputf8;       /* SMTPUTF8 (RFC 6531) */
	enum smtp_ret ret;   /* RET= */
	const char *envid;   /* ENVID=, xtext-decoded; NULL: none */
	const char *auth;    /* AUTH=, xtext-decoded; NULL: none */
};

/** Parameters of RCPT TO. */
struct smtp_rcpt_params {
	unsigned notify;        /* SMTP_NOTIFY_* bits; 0: none given */
	const char *orcpt_type; /* ORCPT= address type ("rfc822") */
	const char *orcpt;      /* ORCPT= address, xtext-decoded */
};

/** Outcome of parameter parsing, mapped to replies by the caller. */
enum smtp_params_error {
	SMTP_PARAMS_OK = 0,
	SMTP_PARAMS_UNKNOWN, /* 555 5.5.4: not a parameter we know */
	SMTP_PARAMS_SYNTAX,  /* 501 5.5.4: bad value, duplicate, bad list */
};

/**
 * Parse the parameters after a MAIL FROM path: @p text (may start with
 * spaces) holds "KEYWORD[=VALUE]" items separated by spaces. Keywords
 * are case-insensitive. Strings go into @p pool.
 */
enum smtp_params_error smtp_params_mail(const char *text, size_t len,
                                        struct ptl_pool *pool,
                                        struct smtp_mail_params *out);

/** Parse the parameters after a RCPT TO path (NOTIFY, ORCPT). */
enum smtp_params_error smtp_params_rcpt(const char *text, size_t len,
                                        struct ptl_pool *pool,
                                        struct smtp_rcpt_params *out);

/**
 * Decode RFC 3461 xtext ("+HH" escapes, upper-case hex) into a new
 * string. Every decoded byte must be printable ASCII (33..126 or a
 * space), so the result never carries a control character.
 * @return the string, or NULL when malformed or out of memory.
 */
char *smtp_xtext_decode(struct ptl_pool *pool, const char *in, size_t len);

#endif
