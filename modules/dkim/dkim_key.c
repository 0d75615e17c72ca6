/* SPDX-License-Identifier: MIT */
/* DKIM key records from DNS (RFC 6376 section 3.6.1, RFC 8463). */
#include <stdio.h>
#include <string.h>

#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "dkim.h"

/* Largest p= accepted, decoded: an 8192-bit RSA SubjectPublicKeyInfo. */
#define KEY_DER_MAX 1100
#define KEY_RSA_MAX 8192

static enum dkim_status
key_fail(char *why, size_t why_size, const char *text)
{
	(void)snprintf(why, why_size, "%s", text);
	return DKIM_PERMERROR;
}

/* Whether the ':'-separated list @p v (with FWS around items) has @p item. */
static bool
key_list_has(const char *v, size_t len, const char *item)
{
	size_t n = strlen(item), i = 0, start, end;

	while (i <= len) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' ||
		                   v[i] == '\r' || v[i] == '\n'))
			i++;
		start = i;
		while (i < len && v[i] != ':')
			i++;
		end = i;
		while (end > start &&
		       (v[end - 1] == ' ' || v[end - 1] == '\t' ||
		        v[end - 1] == '\r' || v[end - 1] == '\n'))
			end--;
		if (end - start == n && memcmp(v + start, item, n) == 0)
			return true;
		i++;
	}
	return false;
}

static EVP_PKEY *
key_rsa_from_der(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	EVP_PKEY *pkey;

	/* The RFC says SubjectPublicKeyInfo; some publish bare PKCS#1. */
	pkey = d2i_PUBKEY(NULL, &p, (long)len);
	if (pkey != NULL && p == der + len &&
	    EVP_PKEY_base_id(pkey) == EVP_PKEY_RSA)
		return pkey;
	EVP_PKEY_free(pkey);
	p = der;
	pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)len);
	if (pkey != NULL && p == der + len)
		return pkey;
	EVP_PKEY_free(pkey);
	return NULL;
}

enum dkim_status
dkim_key_parse(const char *rec, size_t len, unsigned min_rsa_bits,
               struct dkim_key *out, char *why, size_t why_size)
{
	unsigned char der[KEY_DER_MAX];
	const struct dkim_tag *v, *h, *k, *s, *t, *p;
	struct dkim_tags tags;
	const char *reason;
	size_t der_len;
	int bits;

	memset(out, 0, sizeof(*out));
	if (dkim_tags_parse(rec, len, &tags, &reason) != 0) {
		(void)snprintf(why, why_size, "key record: %s", reason);
		return DKIM_PERMERROR;
	}
	v = dkim_tags_get(&tags, "v");
	if (v != NULL && (v != &tags.tag[0] || !dkim_tag_equals(v, "DKIM1")))
		return key_fail(why, why_size, "key record: bad v=");
	h = dkim_tags_get(&tags, "h");
	if (h != NULL && !key_list_has(h->value, h->value_len, "sha256"))
		return key_fail(why, why_size, "key does not allow sha256");
	s = dkim_tags_get(&tags, "s");
	if (s != NULL && !key_list_has(s->value, s->value_len, "*") &&
	    !key_list_has(s->value, s->value_len, "email"))
		return key_fail(why, why_size, "key not for email");
	t = dkim_tags_get(&tags, "t");
	if (t != NULL) {
		out->testing = key_list_has(t->value, t->value_len, "y");
		out->strict = key_list_has(t->value, t->value_len, "s");
	}
	k = dkim_tags_get(&tags, "k");
	if (k == NULL || dkim_tag_equals(k, "rsa"))
		out->alg = DKIM_ALG_RSA_SHA256;
	else if (dkim_tag_equals(k, "ed25519"))
		out->alg = DKIM_ALG_ED25519_SHA256;
	else
		return key_fail(why, why_size, "unknown key type");
	p = dkim_tags_get(&tags, "p");
	if (p == NULL)
		return key_fail(why, why_size, "key record without p=");
	if (p->value_len == 0) {
		out->revoked = true;
		return DKIM_PASS;
	}
	if (dkim_b64_decode(p->value, p->value_len, der, sizeof(der),
	                    &der_len) != 0)
		return key_fail(why, why_size, "bad base64 in p=");
	if (out->alg == DKIM_ALG_ED25519_SHA256) {
		if (der_len != 32)
			return key_fail(why, why_size,
			                "ed25519 key is not 32 bytes");
		out->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
		                                        der, der_len);
		if (out->pkey == NULL)
			return key_fail(why, why_size, "bad ed25519 key");
		out->bits = 256;
		return DKIM_PASS;
	}
	out->pkey = key_rsa_from_der(der, der_len);
	if (out->pkey == NULL)
		return key_fail(why, why_size, "bad RSA key");
	bits = EVP_PKEY_get_bits(out->pkey);
	if (bits < (int)min_rsa_bits || bits > KEY_RSA_MAX) {
		(void)snprintf(why, why_size, "RSA key of %d bits refused",
		               bits);
		dkim_key_free(out);
		return DKIM_PERMERROR;
	}
	out->bits = (unsigned)bits;
	return DKIM_PASS;
}

void
dkim_key_free(struct dkim_key *k)
{
	EVP_PKEY_free(k->pkey);
	k->pkey = NULL;
}
