/* SPDX-License-Identifier: MIT */
/* DKIM signing: rsa-sha256 and ed25519-sha256 (RFC 6376, RFC 8463). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "dkim.h"

#define SIGN_RSA_MIN 2048
#define SIGN_RSA_MAX 3072
/* Names in one h=: each configured name may appear a few times. */
#define SIGN_H_MAX 128
/* The value without b=: h= is at most SIGN_H_MAX names of 76 bytes. */
#define SIGN_VALUE_MAX (SIGN_H_MAX * 78 + 1024)

static void
sign_why(char *why, size_t why_size, const char *text)
{
	(void)snprintf(why, why_size, "%s", text);
}

/* A key file never prompts for a passphrase: encrypted keys fail. */
static int
sign_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

int
dkim_signer_load_key(const char *path, EVP_PKEY **pkey_out,
                     enum dkim_alg *alg_out, unsigned *bits_out, char *why,
                     size_t why_size)
{
	EVP_PKEY *pkey;
	FILE *f;
	int bits;

	*pkey_out = NULL;
	f = fopen(path, "re");
	if (f == NULL) {
		(void)snprintf(why, why_size, "cannot open %s", path);
		return -1;
	}
	pkey = PEM_read_PrivateKey(f, NULL, sign_no_passphrase, NULL);
	(void)fclose(f);
	if (pkey == NULL) {
		(void)snprintf(why, why_size,
		               "%s: not a PEM private key (or encrypted)",
		               path);
		return -1;
	}
	switch (EVP_PKEY_base_id(pkey)) {
	case EVP_PKEY_RSA:
		bits = EVP_PKEY_get_bits(pkey);
		if (bits < SIGN_RSA_MIN || bits > SIGN_RSA_MAX) {
			(void)snprintf(why, why_size,
			               "%s: RSA key of %d bits (2048 to 3072 "
			               "bits are accepted)",
			               path, bits);
			EVP_PKEY_free(pkey);
			return -1;
		}
		*alg_out = DKIM_ALG_RSA_SHA256;
		*bits_out = (unsigned)bits;
		break;
	case EVP_PKEY_ED25519:
		*alg_out = DKIM_ALG_ED25519_SHA256;
		*bits_out = 256;
		break;
	default:
		(void)snprintf(why, why_size,
		               "%s: key type is neither RSA nor Ed25519", path);
		EVP_PKEY_free(pkey);
		return -1;
	}
	*pkey_out = pkey;
	return 0;
}

int
dkim_from_domain(const char *value, size_t len, char *out, size_t out_size)
{
	const char *lt, *gt, *at = NULL, *p, *end = value + len;
	bool quoted = false;
	size_t n = 0;

	lt = memchr(value, '<', len);
	if (lt != NULL) {
		gt = memchr(lt, '>', (size_t)(end - lt));
		if (gt == NULL)
			return -1;
		/* The last '@' inside <...>: a quoted local part may hold
		 * one too. */
		for (p = lt + 1; p < gt; p++) {
			if (*p == '@')
				at = p;
		}
		end = gt;
	} else {
		for (p = value; p < end; p++) {
			if (*p == '"')
				quoted = !quoted;
			else if (*p == '@' && !quoted) {
				at = p;
				break;
			}
		}
	}
	if (at == NULL)
		return -1;
	for (p = at + 1; p < end; p++) {
		char c = *p;

		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_'))
			break;
		if (n + 1 >= out_size)
			return -1;
		out[n++] = c;
	}
	while (n > 0 && out[n - 1] == '.')
		n--;
	if (n == 0)
		return -1;
	out[n] = '\0';
	return 0;
}

int
dkim_sign_begin(struct dkim_sign_job *j,
                const struct dkim_signer *const *signers, size_t n,
                const char *buf, size_t len, bool complete, size_t max_fields,
                char *why, size_t why_size)
{
	const char *reason;
	size_t i, m;
	bool has_from = false;

	memset(j, 0, sizeof(*j));
	if (n == 0 || n > DKIM_SIGNERS_MAX) {
		sign_why(why, why_size, "bad number of signing keys");
		return -1;
	}
	for (i = 0; i < n; i++)
		j->signer[i] = signers[i];
	j->nsigner = n;
	j->hdr_buf = buf;
	if (dkim_headers_parse(buf, len, complete, max_fields, &j->hdrs,
	                       &reason) != 0) {
		sign_why(why, why_size, reason);
		return -1;
	}
	for (i = 0; i < j->hdrs.count && !has_from; i++)
		has_from = dkim_headers_is(&j->hdrs, i, "from", 4);
	if (!has_from) {
		sign_why(why, why_size, "message has no From field");
		dkim_sign_free(j);
		return -1;
	}
	for (i = 0; i < n; i++) {
		m = signers[i]->bcanon;
		if (j->body[m] != NULL)
			continue;
		j->body[m] = malloc(sizeof(*j->body[m]));
		if (j->body[m] == NULL ||
		    dkim_digest_init(&j->body_digest[m]) != 0) {
			free(j->body[m]);
			j->body[m] = NULL;
			sign_why(why, why_size, "out of memory");
			dkim_sign_free(j);
			return -1;
		}
		dkim_body_canon_init(j->body[m], (enum dkim_canon)m, false, 0,
		                     dkim_digest_emit, &j->body_digest[m]);
	}
	return 0;
}

void
dkim_sign_body(struct dkim_sign_job *j, const char *data, size_t len)
{
	size_t m;

	for (m = 0; m < 2; m++) {
		if (j->body[m] != NULL)
			dkim_body_canon_update(j->body[m], data, len);
	}
}

static bool
sign_listed(const char *const *list, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcasecmp(list[i], name) == 0)
			return true;
	}
	return false;
}

static size_t
sign_count(const struct dkim_headers *h, const char *name)
{
	size_t i, c = 0, n = strlen(name);

	for (i = 0; i < h->count; i++) {
		if (dkim_headers_is(h, i, name, n))
			c++;
	}
	return c;
}

/* Add @p name to h=: once per field present, once more if over-signed. */
static void
sign_add_name(const struct dkim_signer *sg, const struct dkim_headers *h,
              const char *name, struct dkim_name *names, size_t *nnames)
{
	size_t c = sign_count(h, name), k;

	if (sign_listed(sg->oversign, sg->noversign, name))
		c++;
	for (k = 0; k < c && *nnames < SIGN_H_MAX; k++) {
		names[*nnames].p = name;
		names[*nnames].n = strlen(name);
		(*nnames)++;
	}
}

static int
sign_build_h(const struct dkim_signer *sg, const struct dkim_headers *h,
             struct dkim_name *names, size_t *nnames)
{
	size_t i;

	*nnames = 0;
	/* From is always signed, first. */
	sign_add_name(sg, h, "from", names, nnames);
	for (i = 0; i < sg->nheaders; i++) {
		if (strcasecmp(sg->headers[i], "from") != 0)
			sign_add_name(sg, h, sg->headers[i], names, nnames);
	}
	for (i = 0; i < sg->noversign; i++) {
		if (strcasecmp(sg->oversign[i], "from") != 0 &&
		    !sign_listed(sg->headers, sg->nheaders, sg->oversign[i]))
			sign_add_name(sg, h, sg->oversign[i], names, nnames);
	}
	return *nnames < SIGN_H_MAX ? 0 : -1;
}

/* Sign the 32-byte header hash. @return the signature length or 0. */
static size_t
sign_crypto(const struct dkim_signer *sg, const unsigned char hash[32],
            unsigned char *sig, size_t sig_size)
{
	EVP_PKEY_CTX *pctx;
	EVP_MD_CTX *mctx;
	size_t len = sig_size;
	bool ok;

	if (sg->alg == DKIM_ALG_ED25519_SHA256) {
		/* RFC 8463: PureEdDSA over the SHA-256 hash. */
		mctx = EVP_MD_CTX_new();
		if (mctx == NULL)
			return 0;
		ok =
		    EVP_DigestSignInit(mctx, NULL, NULL, NULL, sg->pkey) == 1 &&
		    EVP_DigestSign(mctx, sig, &len, hash, 32) == 1;
		EVP_MD_CTX_free(mctx);
		return ok ? len : 0;
	}
	pctx = EVP_PKEY_CTX_new(sg->pkey, NULL);
	if (pctx == NULL)
		return 0;
	ok = EVP_PKEY_sign_init(pctx) == 1 &&
	     EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1 &&
	     EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) == 1 &&
	     EVP_PKEY_sign(pctx, sig, &len, hash, 32) == 1;
	EVP_PKEY_CTX_free(pctx);
	return ok ? len : 0;
}

static int
sign_one(struct dkim_sign_job *j, size_t idx, const unsigned char bh[32],
         int64_t now, char *why, size_t why_size)
{
	static const char *const canon_names[] = {"simple", "relaxed"};
	const struct dkim_signer *sg = j->signer[idx];
	struct dkim_name names[SIGN_H_MAX];
	unsigned char hash[32], sig[DKIM_SIG_MAX];
	char bh64[48], *value = NULL, *field = NULL;
	struct dkim_digest d = {0};
	size_t nnames, i, off, sig_len, cap;
	bool *used = NULL;
	int n, rc = -1;

	if (sign_build_h(sg, &j->hdrs, names, &nnames) != 0) {
		sign_why(why, why_size, "too many header fields to sign");
		return -1;
	}
	if (dkim_b64_encode(bh, 32, bh64, sizeof(bh64)) == 0)
		goto oom;
	cap = SIGN_VALUE_MAX + DKIM_SIG_MAX * 4 / 3 + 8;
	value = malloc(cap);
	field = malloc(cap + 20);
	used = calloc(j->hdrs.count + 1, sizeof(*used));
	if (value == NULL || field == NULL || used == NULL)
		goto oom;
	n = snprintf(value, cap, "v=1; a=%s; c=%s/%s; d=%s; s=%s;",
	             dkim_alg_name(sg->alg), canon_names[sg->hcanon],
	             canon_names[sg->bcanon], sg->domain, sg->selector);
	off = (size_t)n;
	if (sg->add_time || sg->ttl > 0)
		off += (size_t)snprintf(value + off, cap - off, " t=%lld;",
		                        (long long)now);
	if (sg->ttl > 0)
		off += (size_t)snprintf(value + off, cap - off, " x=%lld;",
		                        (long long)(now + sg->ttl));
	off += (size_t)snprintf(value + off, cap - off, " h=");
	for (i = 0; i < nnames; i++)
		off += (size_t)snprintf(value + off, cap - off, "%s%s",
		                        i > 0 ? ":" : "", names[i].p);
	off += (size_t)snprintf(value + off, cap - off, "; bh=%s; b=", bh64);
	if (off >= SIGN_VALUE_MAX) {
		sign_why(why, why_size, "signature too long");
		goto out;
	}
	/* The field exactly as the smtp module will write it. */
	n = snprintf(field, cap + 20, "DKIM-Signature: %s", value);
	if (dkim_digest_init(&d) != 0)
		goto oom;
	dkim_canon_select(&j->hdrs, names, nnames, sg->hcanon, used,
	                  dkim_digest_emit, &d);
	dkim_canon_header(sg->hcanon, field, (size_t)n, false, dkim_digest_emit,
	                  &d);
	if (dkim_digest_final(&d, hash) != 0)
		goto oom;
	sig_len = sign_crypto(sg, hash, sig, sizeof(sig));
	if (sig_len == 0) {
		sign_why(why, why_size, "signing failed");
		goto out;
	}
	if (dkim_b64_encode(sig, sig_len, value + off, cap - off) == 0) {
		sign_why(why, why_size, "signature too long");
		goto out;
	}
	j->value[idx] = value;
	value = NULL;
	rc = 0;
	goto out;
oom:
	sign_why(why, why_size, "out of memory");
out:
	dkim_digest_free(&d);
	free(used);
	free(field);
	free(value);
	return rc;
}

int
dkim_sign_end(struct dkim_sign_job *j, int64_t now, char *why, size_t why_size)
{
	unsigned char bh[2][32];
	size_t m, i;

	for (m = 0; m < 2; m++) {
		if (j->body[m] == NULL)
			continue;
		dkim_body_canon_final(j->body[m]);
		if (dkim_digest_final(&j->body_digest[m], bh[m]) != 0) {
			sign_why(why, why_size, "hashing failed");
			return -1;
		}
	}
	for (i = 0; i < j->nsigner; i++) {
		if (sign_one(j, i, bh[j->signer[i]->bcanon], now, why,
		             why_size) != 0)
			return -1;
	}
	return 0;
}

void
dkim_sign_free(struct dkim_sign_job *j)
{
	size_t i;

	for (i = 0; i < 2; i++) {
		dkim_digest_free(&j->body_digest[i]);
		free(j->body[i]);
		j->body[i] = NULL;
	}
	for (i = 0; i < DKIM_SIGNERS_MAX; i++) {
		free(j->value[i]);
		j->value[i] = NULL;
	}
	dkim_headers_free(&j->hdrs);
}
