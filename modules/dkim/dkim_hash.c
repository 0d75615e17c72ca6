/* SPDX-License-Identifier: MIT */
/* DKIM base64 (with folding whitespace) and streaming SHA-256. */
#include <string.h>

#include "dkim.h"

static int
hash_b64_value(unsigned char c)
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

/*
 * Whitespace may appear anywhere in b=, bh= and p= (section 3.5: FWS is
 * ignored), but nothing else: a decoder that skipped unknown bytes would
 * let two different header texts carry the same signature.
 */
int
dkim_b64_decode(const char *in, size_t len, unsigned char *out, size_t out_max,
                size_t *out_len)
{
	uint32_t acc = 0;
	size_t i, n = 0, bits = 0, pad = 0, chars = 0;
	int v;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
			chars++;
			continue;
		}
		if (pad > 0)
			return -1; /* data after padding */
		v = hash_b64_value(c);
		if (v < 0)
			return -1;
		chars++;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == out_max)
				return -1;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (pad > 2 || chars % 4 != 0)
		return -1;
	/* The padding must match the bits left over, and they must be 0. */
	if ((pad == 0 && bits != 0) || (pad == 1 && bits != 2) ||
	    (pad == 2 && bits != 4) || acc != 0)
		return -1;
	*out_len = n;
	return 0;
}

size_t
dkim_b64_encode(const unsigned char *in, size_t len, char *out, size_t out_size)
{
	size_t need = (len + 2) / 3 * 4;

	if (out_size < need + 1)
		return 0;
	if (EVP_EncodeBlock((unsigned char *)out, in, (int)len) != (int)need)
		return 0;
	out[need] = '\0';
	return need;
}

int
dkim_digest_init(struct dkim_digest *d)
{
	d->failed = false;
	d->md = EVP_MD_CTX_new();
	if (d->md == NULL)
		return -1;
	if (EVP_DigestInit_ex(d->md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(d->md);
		d->md = NULL;
		return -1;
	}
	return 0;
}

void
dkim_digest_emit(void *arg, const char *data, size_t len)
{
	struct dkim_digest *d = arg;

	if (d->md == NULL || d->failed || len == 0)
		return;
	if (EVP_DigestUpdate(d->md, data, len) != 1)
		d->failed = true;
}

int
dkim_digest_final(struct dkim_digest *d, unsigned char out[32])
{
	unsigned int n = 0;

	if (d->md == NULL || d->failed)
		return -1;
	if (EVP_DigestFinal_ex(d->md, out, &n) != 1 || n != 32)
		return -1;
	return 0;
}

void
dkim_digest_free(struct dkim_digest *d)
{
	EVP_MD_CTX_free(d->md);
	d->md = NULL;
}
