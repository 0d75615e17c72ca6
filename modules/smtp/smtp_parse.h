/* SPDX-License-Identifier: MIT */
/* SMTP command lines: verb and argument splitting, HELO and BDAT arguments. */
#ifndef PETREL_SMTP_PARSE_H
#define PETREL_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Longest verb we know ("STARTTLS"); longer words are unknown verbs. */
#define SMTP_VERB_MAX 16
/** Longest HELO/EHLO argument (a domain is at most 255 octets). */
#define SMTP_HELO_MAX 255

/** A command line split into a verb and its argument text. */
struct smtp_cmdline {
	const char *verb; /* points into the line */
	size_t verb_len;
	const char *args; /* after the blank(s) following the verb */
	size_t args_len;  /* 0: no argument; trailing blanks removed */
};

/**
 * Split @p line (@p len bytes ending in CRLF or LF) into verb and
 * arguments. The verb is one or more ASCII letters followed by a space
 * or the end of the line.
 * @return PTL_OK; PTL_ERROR when the line holds a NUL byte, a CR that is
 * not part of the final CRLF, or does not start with a verb.
 */
int smtp_parse_command(const char *line, size_t len, struct smtp_cmdline *out);

/** Whether the verb of @p cl is @p verb (ASCII case-insensitive). */
bool smtp_verb_is(const struct smtp_cmdline *cl, const char *verb);

/**
 * Check that @p args starts with @p keyword ("FROM:" or "TO:",
 * case-insensitive) and return the text after it, skipping spaces that
 * some clients put after the colon.
 * @return PTL_OK or PTL_ERROR.
 */
int smtp_parse_keyword(const char *args, size_t len, const char *keyword,
                       const char **rest_out, size_t *rest_len_out);

/**
 * Validate a HELO/EHLO argument: 1..SMTP_HELO_MAX bytes, no control
 * characters; bytes >= 0x80 only as well-formed UTF-8 (RFC 6531 allows
 * U-labels).
 * @return PTL_OK or PTL_ERROR.
 */
int smtp_parse_helo(const char *args, size_t len);

/**
 * Parse "BDAT" arguments: chunk-size [SP "LAST"] (RFC 3030).
 * @return PTL_OK or PTL_ERROR (bad syntax or a size over 2^63).
 */
int smtp_parse_bdat(const char *args, size_t len, uint64_t *size_out,
                    bool *last_out);

/**
 * Whether @p s[0..len) is well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF). ASCII control characters are
 * well-formed too: callers check those separately.
 */
bool smtp_utf8_valid(const unsigned char *s, size_t len);

#endif
