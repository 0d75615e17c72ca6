/* SPDX-License-Identifier: MIT */
/* SASL helpers for protocol modules: strict base64 and PLAIN (ABI 1.1). */
#ifndef PETREL_SASL_H
#define PETREL_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include <petrel/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Decode strict base64 (RFC 4648 section 4): the standard alphabet, '='
 * padding required, no whitespace, nothing after the padding, and the
 * unused bits of the last group zero, so that each value has exactly one
 * encoding. An empty input decodes to nothing. Pure; any thread.
 * Since ABI 1.1.
 * @return PTL_OK with *@p out_len set, or PTL_ERROR when the input is
 * malformed or would decode to more than @p cap bytes.
 */
PTL_API int ptl_base64_decode(const char *in, size_t len, unsigned char *out,
                              size_t cap, size_t *out_len) PTL_WUR;

/**
 * The value (0..63) of one digit of the standard base64 alphabet, or -1
 * for any other byte, '=' included: for decoders with rules of their own
 * (folding whitespace in DKIM tags, streaming MIME bodies). Pure.
 * Since ABI 1.1.
 */
PTL_API int ptl_base64_digit(unsigned char c);

/**
 * Encode @p len bytes as padded base64 into @p out, NUL-terminated.
 * Pure; any thread. Since ABI 1.1.
 * @return the length written (without the NUL), or 0 when @p cap is
 * smaller than 4 * ceil(len / 3) + 1 (nothing useful is written then).
 */
PTL_API size_t ptl_base64_encode(const unsigned char *in, size_t len, char *out,
                                 size_t cap);

/** The parts of a PLAIN message; pointers into the decoded buffer. */
struct ptl_sasl_plain {
	const char *user; /**< authentication identity, NUL-terminated */
	size_t user_len;
	const char *pass; /**< password: pass_len bytes, not terminated */
	size_t pass_len;
};

/**
 * Split a decoded SASL PLAIN message (RFC 4616): [authzid] NUL authcid
 * NUL passwd. Refused: a missing part; an empty user name, or one longer
 * than @p user_max or holding a control character; an empty password,
 * one longer than @p pass_max or holding a NUL; and an authorization
 * identity that is neither empty nor the user name: there is no proxy
 * authorization, and accepting any authzid unchecked lets one user act
 * as another (maddy, CVE-2023-27582). @p msg is not changed. Pure; any
 * thread. Since ABI 1.1.
 * @return PTL_OK with @p out filled, or PTL_ERROR.
 */
PTL_API int ptl_sasl_plain_split(const unsigned char *msg, size_t len,
                                 size_t user_max, size_t pass_max,
                                 struct ptl_sasl_plain *out) PTL_WUR;

/**
 * A user name as a SASL mechanism or USER command may carry it: 1 to
 * @p max bytes, no control characters (C0, DEL) and no NUL. Pure.
 * Since ABI 1.1.
 */
PTL_API bool ptl_sasl_name_ok(const char *name, size_t len, size_t max);

#ifdef __cplusplus
}
#endif
#endif
