/* SPDX-License-Identifier: MIT */
/* RFC 2047 encoded-words in header fields, decoded to UTF-8. */
#ifndef PETREL_REGEX_2047_H
#define PETREL_REGEX_2047_H

#include <stddef.h>

/**
 * Decode the encoded-words ("=?charset?B?...?=", "=?charset?Q?...?=") of
 * an unfolded field body @p in into @p out, which has room for @p cap
 * bytes (2 * len + 1 is always enough; less is cut). Charsets UTF-8,
 * US-ASCII and ISO-8859-1 are decoded (ISO-8859-1 converted to UTF-8);
 * words in other charsets and malformed words are kept as they are.
 * White space between two decoded words is dropped (RFC 2047 6.2).
 * @return bytes written, not counting the NUL that follows them.
 */
size_t regex_2047_decode(const char *in, size_t len, char *out, size_t cap);

#endif
