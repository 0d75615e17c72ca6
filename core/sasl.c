/* SPDX-License-Identifier: MIT */
/* Strict base64 and SASL PLAIN, shared by the protocol modules. */
#include <stdint.h>
#include <string.h>

#include <petrel/sasl.h>

static const char b64_digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

PTL_API int
ptl_base64_digit(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

PTL_API int
ptl_base64_decode(const char *in, size_t len, unsigned char *out, size_t cap,
                  size_t *out_len)
{
	size_t i, n = 0, pad = 0;

	if (len % 4 != 0)
		return PTL_ERROR;
	if (len > 0 && in[len - 1] == '=')
		pad = in[len - 2] == '=' ? 2 : 1;
	if (len / 4 * 3 - pad > cap)
		return PTL_ERROR;
	for (i = 0; i < len; i += 4) {
		int digits = i + 4 == len ? 4 - (int)pad : 4;
		uint32_t word = 0;

		for (int k = 0; k < 4; k++) {
			int v = 0;

			if (k < digits) {
				v = ptl_base64_digit(
				    (unsigned char)in[i + (size_t)k]);
				/* '=' anywhere but the end lands here too. */
				if (v < 0)
					return PTL_ERROR;
			}
			word = (word << 6) | (uint32_t)v;
		}
		/* One encoding per value: the bits past the last whole
		 * octet must be zero. */
		if ((digits == 2 && (word & 0xffff) != 0) ||
		    (digits == 3 && (word & 0xff) != 0))
			return PTL_ERROR;
		out[n++] = (unsigned char)(word >> 16);
		if (digits > 2)
			out[n++] = (unsigned char)(word >> 8);
		if (digits > 3)
			out[n++] = (unsigned char)word;
	}
	*out_len = n;
	return PTL_OK;
}

PTL_API size_t
ptl_base64_encode(const unsigned char *in, size_t len, char *out, size_t cap)
{
	size_t i, n = 0;

	if (len > (SIZE_MAX - 1) / 4 * 3 - 2 || cap < (len + 2) / 3 * 4 + 1)
		return 0;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t w = ((uint32_t)in[i] << 16) |
		             ((uint32_t)in[i + 1] << 8) | in[i + 2];

		out[n++] = b64_digits[w >> 18];
		out[n++] = b64_digits[(w >> 12) & 63];
		out[n++] = b64_digits[(w >> 6) & 63];
		out[n++] = b64_digits[w & 63];
	}
	if (i < len) {
		uint32_t w = (uint32_t)in[i] << 16;

		if (i + 1 < len)
			w |= (uint32_t)in[i + 1] << 8;
		out[n++] = b64_digits[w >> 18];
		out[n++] = b64_digits[(w >> 12) & 63];
		out[n++] = i + 1 < len ? b64_digits[(w >> 6) & 63] : '=';
		out[n++] = '=';
	}
	out[n] = '\0';
	return n;
}

PTL_API bool
ptl_sasl_name_ok(const char *name, size_t len, size_t max)
{
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

PTL_API int
ptl_sasl_plain_split(const unsigned char *msg, size_t len, size_t user_max,
                     size_t pass_max, struct ptl_sasl_plain *out)
{
	const unsigned char *nul1, *nul2, *end = msg + len;
	size_t authz_len;

	nul1 = memchr(msg, '\0', len);
	if (nul1 == NULL)
		return PTL_ERROR;
	nul2 = memchr(nul1 + 1, '\0', (size_t)(end - nul1 - 1));
	if (nul2 == NULL)
		return PTL_ERROR;
	authz_len = (size_t)(nul1 - msg);
	out->user = (const char *)nul1 + 1;
	out->user_len = (size_t)(nul2 - nul1 - 1);
	out->pass = (const char *)nul2 + 1;
	out->pass_len = (size_t)(end - nul2 - 1);
	if (!ptl_sasl_name_ok(out->user, out->user_len, user_max))
		return PTL_ERROR;
	if (out->pass_len == 0 || out->pass_len > pass_max ||
	    memchr(out->pass, '\0', out->pass_len) != NULL)
		return PTL_ERROR;
	if (authz_len != 0 && (authz_len != out->user_len ||
	                       memcmp(msg, out->user, out->user_len) != 0))
		return PTL_ERROR;
	return PTL_OK;
}
