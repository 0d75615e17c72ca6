/* SPDX-License-Identifier: MIT */
/* SASL for AUTH: strict base64 and the PLAIN and LOGIN messages. */
#include <string.h>

#include <petrel/core.h>

#include "smtp_sasl.h"

static int
sasl_b64_value(unsigned char c)
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

int
smtp_base64_decode(const char *in, size_t len, unsigned char *out, size_t cap,
                   size_t *out_len)
{
	size_t i, n = 0, pad = 0;
	int v[4], k;

	if (len % 4 != 0)
		return PTL_ERROR;
	for (i = 0; i < len; i += 4) {
		for (k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + (size_t)k];

			if (c == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			/* Data after a '=' inside the last group. */
			if (pad > 0)
				return PTL_ERROR;
			v[k] = sasl_b64_value(c);
			if (v[k] < 0)
				return PTL_ERROR;
		}
		/* "==" or "=" only at the very end; "x=y=" is caught above. */
		if (pad == 2 && (v[1] & 0x0f) != 0)
			return PTL_ERROR;
		if (pad == 1 && (v[2] & 0x03) != 0)
			return PTL_ERROR;
		if (n + 3 - pad > cap)
			return PTL_ERROR;
		out[n++] = (unsigned char)((v[0] << 2) | (v[1] >> 4));
		if (pad < 2)
			out[n++] =
			    (unsigned char)(((v[1] & 0x0f) << 4) | (v[2] >> 2));
		if (pad < 1)
			out[n++] = (unsigned char)(((v[2] & 0x03) << 6) | v[3]);
	}
	*out_len = n;
	return PTL_OK;
}

static bool
sasl_name_ok(const unsigned char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > SMTP_SASL_USER_MAX)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < 0x20 || s[i] == 0x7f)
			return false;
	}
	return true;
}

int
smtp_sasl_plain(unsigned char *msg, size_t len, struct smtp_sasl_creds *out)
{
	unsigned char *nul1, *nul2;
	size_t zlen, clen, plen;

	nul1 = memchr(msg, '\0', len);
	if (nul1 == NULL)
		return PTL_ERROR;
	zlen = (size_t)(nul1 - msg);
	nul2 = memchr(nul1 + 1, '\0', len - zlen - 1);
	if (nul2 == NULL)
		return PTL_ERROR;
	clen = (size_t)(nul2 - nul1 - 1);
	plen = len - zlen - clen - 2;
	if (!sasl_name_ok(nul1 + 1, clen))
		return PTL_ERROR;
	if (plen == 0 || plen > SMTP_SASL_PASS_MAX ||
	    memchr(nul2 + 1, '\0', plen) != NULL)
		return PTL_ERROR;
	if (zlen != 0 && (zlen != clen || memcmp(msg, nul1 + 1, clen) != 0))
		return PTL_ERROR;
	/* The second NUL terminates the user name in place. */
	out->user = (const char *)(nul1 + 1);
	out->pass = (const char *)(nul2 + 1);
	out->pass_len = plen;
	return PTL_OK;
}

int
smtp_sasl_login_user(unsigned char *msg, size_t len)
{
	if (!sasl_name_ok(msg, len))
		return PTL_ERROR;
	msg[len] = '\0';
	return PTL_OK;
}

int
smtp_sasl_login_pass(const unsigned char *msg, size_t len)
{
	if (len == 0 || len > SMTP_SASL_PASS_MAX ||
	    memchr(msg, '\0', len) != NULL)
		return PTL_ERROR;
	return PTL_OK;
}
