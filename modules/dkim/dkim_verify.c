/* SPDX-License-Identifier: MIT */
/* DKIM verification of every DKIM-Signature field (RFC 6376 section 6). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/rsa.h>

#include "dkim.h"

#define VERIFY_H_MAX    256 /* names in h= */
#define VERIFY_NAME_MAX 253 /* "selector._domainkey.domain" */

static const char *const verify_status_names[] = {
    "none", "pass", "fail", "neutral", "temperror", "permerror", "policy",
};

const char *
dkim_status_name(enum dkim_status st)
{
	if ((size_t)st >=
	    sizeof(verify_status_names) / sizeof(verify_status_names[0]))
		return "none";
	return verify_status_names[st];
}

const char *
dkim_alg_name(enum dkim_alg alg)
{
	switch (alg) {
	case DKIM_ALG_RSA_SHA256:
		return "rsa-sha256";
	case DKIM_ALG_ED25519_SHA256:
		return "ed25519-sha256";
	default:
		return "none";
	}
}

/* @return 0, so that a check can end with `return verify_decide(...)`. */
static int
verify_decide(struct dkim_sig *s, enum dkim_status st, const char *reason)
{
	s->status = st;
	(void)snprintf(s->reason, sizeof(s->reason), "%s", reason);
	return 0;
}

/* ---- tag checks -------------------------------------------------------- */

/* Letters, digits, '-', '_' in dot-separated labels; lower-cased copy. */
static bool
verify_copy_domain(const struct dkim_tag *t, char *out, size_t out_size)
{
	size_t i;

	if (t->value_len == 0 || t->value_len >= out_size ||
	    t->value[0] == '.' || t->value[t->value_len - 1] == '.')
		return false;
	for (i = 0; i < t->value_len; i++) {
		char c = t->value[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
		if (c == '.' && i > 0 && out[i - 1] == '.')
			return false;
		out[i] = c;
	}
	out[i] = '\0';
	return true;
}

/* An unsigned decimal of at most @p max_digits digits. */
static bool
verify_number(const struct dkim_tag *t, size_t max_digits, uint64_t *out)
{
	uint64_t n = 0;
	size_t i;

	if (t->value_len == 0 || t->value_len > max_digits)
		return false;
	for (i = 0; i < t->value_len; i++) {
		if (t->value[i] < '0' || t->value[i] > '9')
			return false;
		n = n * 10 + (uint64_t)(t->value[i] - '0');
	}
	*out = n;
	return true;
}

static bool
verify_canon_word(const char *s, size_t n, enum dkim_canon *out)
{
	if (n == 6 && memcmp(s, "simple", 6) == 0)
		*out = DKIM_CANON_SIMPLE;
	else if (n == 7 && memcmp(s, "relaxed", 7) == 0)
		*out = DKIM_CANON_RELAXED;
	else
		return false;
	return true;
}

/* c= "header[/body]"; a missing body part is simple (section 3.5). */
static bool
verify_canon(const struct dkim_tag *t, struct dkim_sig *s)
{
	const char *slash;

	s->hcanon = s->bcanon = DKIM_CANON_SIMPLE;
	if (t == NULL)
		return true;
	slash = memchr(t->value, '/', t->value_len);
	if (slash == NULL)
		return verify_canon_word(t->value, t->value_len, &s->hcanon);
	return verify_canon_word(t->value, (size_t)(slash - t->value),
	                         &s->hcanon) &&
	       verify_canon_word(slash + 1,
	                         t->value_len - (size_t)(slash - t->value) - 1,
	                         &s->bcanon);
}

/* i= "[local]@domain" with domain equal to d= or under it. */
static bool
verify_auid(const struct dkim_tag *t, struct dkim_sig *s)
{
	const char *at;
	size_t dlen, n = strlen(s->domain), i;

	if (t == NULL) {
		(void)snprintf(s->auid, sizeof(s->auid), "@%s", s->domain);
		return true;
	}
	if (t->value_len >= sizeof(s->auid))
		return false;
	at = memchr(t->value, '@', t->value_len);
	if (at == NULL)
		return false;
	for (i = 0; i < t->value_len; i++) {
		unsigned char c = (unsigned char)t->value[i];

		if (c <= ' ' || c >= 127)
			return false;
		s->auid[i] = (char)c;
	}
	s->auid[i] = '\0';
	at++;
	dlen = t->value_len - (size_t)(at - t->value);
	if (dlen < n)
		return false;
	if (strncasecmp(at + dlen - n, s->domain, n) != 0)
		return false;
	return dlen == n || at[dlen - n - 1] == '.';
}

/* The domain part of i= (or d= when i= is absent). */
static const char *
verify_auid_domain(const struct dkim_sig *s)
{
	const char *at = strrchr(s->auid, '@');

	return at != NULL ? at + 1 : s->domain;
}

/* h=: names separated by ':' with FWS around them. */
static int
verify_split_h(const struct dkim_tag *t, struct dkim_name *names, size_t *count)
{
	size_t i = 0, start, end, n = 0;

	while (i <= t->value_len) {
		while (i < t->value_len &&
		       (t->value[i] == ' ' || t->value[i] == '\t' ||
		        t->value[i] == '\r' || t->value[i] == '\n'))
			i++;
		start = i;
		while (i < t->value_len && t->value[i] != ':')
			i++;
		end = i;
		while (end > start &&
		       (t->value[end - 1] == ' ' || t->value[end - 1] == '\t' ||
		        t->value[end - 1] == '\r' || t->value[end - 1] == '\n'))
			end--;
		if (end == start || n == VERIFY_H_MAX)
			return -1;
		for (size_t k = start; k < end; k++) {
			unsigned char c = (unsigned char)t->value[k];

			if (c <= 32 || c >= 127)
				return -1;
		}
		names[n].p = t->value + start;
		names[n].n = end - start;
		n++;
		i++;
	}
	*count = n;
	return 0;
}

/* ---- header hash ------------------------------------------------------- */

/*
 * The fields named in h= (dkim_canon_select), then the signature's own
 * field with its b= value emptied and no final CRLF (section 3.7).
 */
static int
verify_header_hash(struct dkim_verifier *v, struct dkim_sig *s,
                   const struct dkim_name *names, size_t nnames,
                   size_t value_off, const struct dkim_tag *b)
{
	const struct dkim_headers *h = &v->hdrs;
	const struct dkim_hfield *own = &h->field[s->field];
	const char *own_text = h->base + own->off;
	struct dkim_digest d;
	bool *used;
	char *copy;
	size_t cut_start, cut_end, copy_len;
	int rc = -1;

	used = calloc(h->count, sizeof(*used));
	if (used == NULL)
		return -1;
	if (dkim_digest_init(&d) != 0) {
		free(used);
		return -1;
	}
	used[s->field] = true;
	dkim_canon_select(h, names, nnames, s->hcanon, used, dkim_digest_emit,
	                  &d);
	cut_start = value_off + b->raw_start;
	cut_end = value_off + b->raw_end;
	copy_len = own->len - (cut_end - cut_start);
	copy = malloc(copy_len + 1);
	if (copy != NULL) {
		memcpy(copy, own_text, cut_start);
		memcpy(copy + cut_start, own_text + cut_end,
		       own->len - cut_end);
		dkim_canon_header(s->hcanon, copy, copy_len, false,
		                  dkim_digest_emit, &d);
		free(copy);
		rc = dkim_digest_final(&d, s->hdr_hash);
	}
	dkim_digest_free(&d);
	free(used);
	return rc;
}

/* ---- one signature ----------------------------------------------------- */

/*
 * Check the tags of the signature in field @p fi (section 6.1.1) and hash
 * its header data. @return 0 (decided or waiting), -1 out of memory.
 */
static int
verify_sig_begin(struct dkim_verifier *v, struct dkim_sig *s, size_t fi)
{
	const struct dkim_hfield *f = &v->hdrs.field[fi];
	const char *text = v->hdrs.base + f->off;
	const struct dkim_tag *tv, *ta, *tb, *tbh, *tc, *td, *th, *ti, *tl, *tq,
	    *ts, *tt, *tx;
	struct dkim_name names[VERIFY_H_MAX];
	struct dkim_tags tags;
	const char *why;
	const char *colon = memchr(text, ':', f->len);
	size_t value_off, nnames, k, j;
	uint64_t num;
	char name[VERIFY_NAME_MAX + 2];

	s->field = fi;
	value_off = (size_t)(colon - text) + 1;
	if (dkim_tags_parse(text + value_off, f->len - value_off, &tags,
	                    &why) != 0) {
		(void)snprintf(s->reason, sizeof(s->reason), "syntax: %s", why);
		s->status = DKIM_PERMERROR;
		return 0;
	}
	tv = dkim_tags_get(&tags, "v");
	ta = dkim_tags_get(&tags, "a");
	tb = dkim_tags_get(&tags, "b");
	tbh = dkim_tags_get(&tags, "bh");
	tc = dkim_tags_get(&tags, "c");
	td = dkim_tags_get(&tags, "d");
	th = dkim_tags_get(&tags, "h");
	ti = dkim_tags_get(&tags, "i");
	tl = dkim_tags_get(&tags, "l");
	tq = dkim_tags_get(&tags, "q");
	ts = dkim_tags_get(&tags, "s");
	tt = dkim_tags_get(&tags, "t");
	tx = dkim_tags_get(&tags, "x");
	if (tb != NULL) {
		for (k = 0, j = 0; k < tb->value_len && j < 8; k++) {
			char c = tb->value[k];

			if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
				s->b_prefix[j++] = c;
		}
		s->b_prefix[j] = '\0';
	}
	if (td != NULL && !verify_copy_domain(td, s->domain, sizeof(s->domain)))
		return verify_decide(s, DKIM_PERMERROR, "bad d=");
	if (ts != NULL &&
	    !verify_copy_domain(ts, s->selector, sizeof(s->selector)))
		return verify_decide(s, DKIM_PERMERROR, "bad s=");
	if (tv == NULL || ta == NULL || tb == NULL || tbh == NULL ||
	    td == NULL || th == NULL || ts == NULL)
		return verify_decide(s, DKIM_PERMERROR,
		                     "missing a required tag");
	if (!dkim_tag_equals(tv, "1"))
		return verify_decide(s, DKIM_PERMERROR, "unknown version");
	if (dkim_tag_equals(ta, "rsa-sha256"))
		s->alg = DKIM_ALG_RSA_SHA256;
	else if (dkim_tag_equals(ta, "ed25519-sha256"))
		s->alg = DKIM_ALG_ED25519_SHA256;
	else if (dkim_tag_equals(ta, "rsa-sha1"))
		return verify_decide(s, DKIM_PERMERROR,
		                     "rsa-sha1 is not accepted (RFC 8301)");
	else
		return verify_decide(s, DKIM_PERMERROR, "unknown algorithm");
	if (!verify_canon(tc, s))
		return verify_decide(s, DKIM_PERMERROR,
		                     "unknown canonicalization");
	if (tq != NULL && !dkim_tag_equals(tq, "dns/txt"))
		return verify_decide(s, DKIM_PERMERROR, "unknown query method");
	if (!verify_auid(ti, s))
		return verify_decide(s, DKIM_PERMERROR, "i= is not within d=");
	if (snprintf(name, sizeof(name), "%s._domainkey.%s", s->selector,
	             s->domain) > VERIFY_NAME_MAX)
		return verify_decide(s, DKIM_PERMERROR, "key name too long");
	if (verify_split_h(th, names, &nnames) != 0)
		return verify_decide(s, DKIM_PERMERROR, "bad h=");
	for (k = 0; k < nnames; k++) {
		if (names[k].n == 4 && strncasecmp(names[k].p, "from", 4) == 0)
			break;
	}
	if (k == nnames)
		return verify_decide(s, DKIM_PERMERROR, "From is not signed");
	if (tl != NULL) {
		if (!verify_number(tl, 19, &num))
			return verify_decide(s, DKIM_PERMERROR, "bad l=");
		s->has_l = true;
		s->l = num;
	}
	if (tt != NULL) {
		if (!verify_number(tt, 12, &num))
			return verify_decide(s, DKIM_PERMERROR, "bad t=");
		s->has_t = true;
		s->t = (int64_t)num;
		if (s->t > v->opts.now + v->opts.future_slack)
			return verify_decide(s, DKIM_PERMERROR,
			                     "signature is from the future");
	}
	if (tx != NULL) {
		if (!verify_number(tx, 12, &num))
			return verify_decide(s, DKIM_PERMERROR, "bad x=");
		s->has_x = true;
		s->x = (int64_t)num;
		if (s->has_t && s->x < s->t)
			return verify_decide(s, DKIM_PERMERROR,
			                     "x= is before t=");
		if (s->x < v->opts.now)
			return verify_decide(s, DKIM_PERMERROR,
			                     "signature expired");
	}
	if (dkim_b64_decode(tbh->value, tbh->value_len, s->bh, sizeof(s->bh),
	                    &k) != 0 ||
	    k != sizeof(s->bh))
		return verify_decide(s, DKIM_PERMERROR, "bad bh=");
	if (dkim_b64_decode(tb->value, tb->value_len, s->b, sizeof(s->b),
	                    &s->b_len) != 0 ||
	    s->b_len == 0 ||
	    (s->alg == DKIM_ALG_ED25519_SHA256 && s->b_len != 64))
		return verify_decide(s, DKIM_PERMERROR, "bad b=");
	if (verify_header_hash(v, s, names, nnames, value_off, tb) != 0)
		return -1;
	s->body = malloc(sizeof(*s->body));
	if (s->body == NULL || dkim_digest_init(&s->body_digest) != 0) {
		free(s->body);
		s->body = NULL;
		return -1;
	}
	dkim_body_canon_init(s->body, s->bcanon, s->has_l, s->l,
	                     dkim_digest_emit, &s->body_digest);
	return 0;
}

/* ---- the message ------------------------------------------------------- */

int
dkim_verify_begin(struct dkim_verifier *v, const char *buf, size_t len,
                  bool complete, const struct dkim_verify_opts *opts)
{
	static const char name[] = "dkim-signature";
	const char *why;
	size_t i, n = 0, total = 0;

	memset(v, 0, sizeof(*v));
	v->opts = *opts;
	if (dkim_headers_parse(buf, len, complete, opts->max_fields, &v->hdrs,
	                       &why) != 0) {
		if (strcmp(why, "out of memory") == 0)
			return -1;
		v->header_error = true;
		(void)snprintf(v->header_reason, sizeof(v->header_reason), "%s",
		               why);
		return 0;
	}
	for (i = 0; i < v->hdrs.count; i++) {
		if (dkim_headers_is(&v->hdrs, i, name, sizeof(name) - 1))
			total++;
	}
	if (total == 0)
		return 0;
	if (total > opts->max_signatures)
		total = opts->max_signatures;
	v->sig = calloc(total, sizeof(*v->sig));
	if (v->sig == NULL)
		return -1;
	for (i = 0; i < v->hdrs.count && n < total; i++) {
		if (!dkim_headers_is(&v->hdrs, i, name, sizeof(name) - 1))
			continue;
		v->nsig = ++n;
		if (verify_sig_begin(v, &v->sig[n - 1], i) != 0)
			return -1;
	}
	return 0;
}

void
dkim_verify_body(struct dkim_verifier *v, const char *data, size_t len)
{
	size_t i;

	for (i = 0; i < v->nsig; i++) {
		if (v->sig[i].body != NULL)
			dkim_body_canon_update(v->sig[i].body, data, len);
	}
}

static void
verify_body_release(struct dkim_sig *s)
{
	dkim_digest_free(&s->body_digest);
	free(s->body);
	s->body = NULL;
}

void
dkim_verify_body_end(struct dkim_verifier *v)
{
	unsigned char bh[32];
	struct dkim_sig *s;
	size_t i;

	for (i = 0; i < v->nsig; i++) {
		s = &v->sig[i];
		if (s->body == NULL)
			continue;
		dkim_body_canon_final(s->body);
		s->body_len = s->body->total;
		if (dkim_digest_final(&s->body_digest, bh) != 0) {
			verify_decide(s, DKIM_TEMPERROR, "hashing failed");
		} else if (s->has_l && s->l > s->body_len) {
			verify_decide(s, DKIM_FAIL,
			              "l= is longer than the body");
		} else if (CRYPTO_memcmp(bh, s->bh, sizeof(bh)) != 0) {
			verify_decide(s, DKIM_FAIL, "body hash did not verify");
		} else if (s->has_l && s->body_len > s->l) {
			s->unsigned_body = true;
		}
		verify_body_release(s);
	}
}

bool
dkim_verify_needs_key(const struct dkim_verifier *v, size_t i)
{
	return i < v->nsig && v->sig[i].status == DKIM_NONE &&
	       v->sig[i].body == NULL;
}

int
dkim_verify_key_name(const struct dkim_verifier *v, size_t i, char *out,
                     size_t out_size)
{
	int n;

	if (i >= v->nsig)
		return -1;
	n = snprintf(out, out_size, "%s._domainkey.%s", v->sig[i].selector,
	             v->sig[i].domain);
	return n > 0 && (size_t)n < out_size ? 0 : -1;
}

/* The signature over the header hash: PKCS#1 v1.5 or PureEdDSA (RFC
 * 8463 section 3: Ed25519 signs the SHA-256 hash, not the data). */
static bool
verify_crypto(const struct dkim_sig *s, EVP_PKEY *pkey)
{
	EVP_PKEY_CTX *pctx;
	EVP_MD_CTX *mctx;
	bool ok = false;

	if (s->alg == DKIM_ALG_ED25519_SHA256) {
		mctx = EVP_MD_CTX_new();
		if (mctx == NULL)
			return false;
		ok = EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, pkey) == 1 &&
		     EVP_DigestVerify(mctx, s->b, s->b_len, s->hdr_hash,
		                      sizeof(s->hdr_hash)) == 1;
		EVP_MD_CTX_free(mctx);
		return ok;
	}
	pctx = EVP_PKEY_CTX_new(pkey, NULL);
	if (pctx == NULL)
		return false;
	ok = EVP_PKEY_verify_init(pctx) == 1 &&
	     EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1 &&
	     EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) == 1 &&
	     EVP_PKEY_verify(pctx, s->b, s->b_len, s->hdr_hash,
	                     sizeof(s->hdr_hash)) == 1;
	EVP_PKEY_CTX_free(pctx);
	return ok;
}

void
dkim_verify_with_records(struct dkim_verifier *v, size_t i,
                         const char *const *recs, const size_t *lens,
                         size_t nrec)
{
	struct dkim_sig *s;
	struct dkim_key key;
	char why[96], first_why[96] = "no key record";
	size_t r;
	bool found = false;

	if (!dkim_verify_needs_key(v, i))
		return;
	s = &v->sig[i];
	/* Several records at one name: the first usable one (3.6.2.2). */
	for (r = 0; r < nrec; r++) {
		if (dkim_key_parse(recs[r], lens[r], v->opts.min_rsa_bits, &key,
		                   why, sizeof(why)) == DKIM_PASS) {
			found = true;
			break;
		}
		if (r == 0)
			(void)snprintf(first_why, sizeof(first_why), "%s", why);
	}
	if (!found) {
		verify_decide(s, DKIM_PERMERROR, first_why);
		return;
	}
	s->testing = key.testing;
	if (key.revoked) {
		verify_decide(s, DKIM_PERMERROR, "key revoked");
	} else if (key.alg != s->alg) {
		verify_decide(s, DKIM_PERMERROR, "key type does not match a=");
	} else if (key.strict &&
	           strcasecmp(verify_auid_domain(s), s->domain) != 0) {
		verify_decide(s, DKIM_PERMERROR,
		              "key has t=s and i= is a subdomain of d=");
	} else if (!verify_crypto(s, key.pkey)) {
		verify_decide(s, DKIM_FAIL, "signature did not verify");
	} else {
		s->key_bits = key.bits;
		if (s->unsigned_body) {
			(void)snprintf(
			    why, sizeof(why),
			    "l= leaves %llu body bytes unsigned",
			    (unsigned long long)(s->body_len - s->l));
			verify_decide(
			    s, v->opts.reject_l ? DKIM_POLICY : DKIM_PASS, why);
		} else {
			verify_decide(s, DKIM_PASS, "");
		}
	}
	dkim_key_free(&key);
}

void
dkim_verify_set(struct dkim_verifier *v, size_t i, enum dkim_status st,
                const char *reason)
{
	if (dkim_verify_needs_key(v, i))
		verify_decide(&v->sig[i], st, reason);
}

void
dkim_verifier_free(struct dkim_verifier *v)
{
	size_t i;

	for (i = 0; i < v->nsig; i++)
		verify_body_release(&v->sig[i]);
	free(v->sig);
	v->sig = NULL;
	v->nsig = 0;
	dkim_headers_free(&v->hdrs);
}
