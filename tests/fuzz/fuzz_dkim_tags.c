/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: DKIM tag lists, key records, signatures, base64. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dkim.h"

/*
 * Input: one flag byte, then text. The two low bits of the flag choose
 * what the text is:
 *   0  a tag=value list (RFC 6376 section 3.2), each value also as base64
 *   1  a key record from DNS (section 3.6.1)
 *   2  a message: header section with DKIM-Signature fields and a body,
 *      verified up to the crypto with the text itself and a fixed
 *      Ed25519 record as the key records found
 *   3  base64 with FWS, a From value, a header field and a body through
 *      both canonicalizations, in one piece and byte by byte
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

/* An Ed25519 key record (RFC 8463 section A.2). */
static const char fuzz_ed_key[] =
    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

static void
fuzz_tags(const char *text, size_t len)
{
	unsigned char out[512];
	struct dkim_tags tags;
	const char *why = NULL;
	size_t n;

	if (dkim_tags_parse(text, len, &tags, &why) != 0) {
		CHECK(why != NULL);
		return;
	}
	CHECK(tags.count >= 1 && tags.count <= DKIM_TAGS_MAX);
	for (size_t i = 0; i < tags.count; i++) {
		const struct dkim_tag *t = &tags.tag[i];
		char name[DKIM_TAG_NAME_MAX + 1];

		CHECK(t->name >= text && t->name_len >= 1 &&
		      t->name_len <= DKIM_TAG_NAME_MAX);
		CHECK(t->name + t->name_len <= text + len);
		CHECK(t->raw_start <= t->raw_end && t->raw_end <= len);
		CHECK(t->value >= text + t->raw_start);
		CHECK(t->value + t->value_len <= text + t->raw_end);
		/* A value never holds a ';' nor a line break without WSP. */
		for (size_t k = 0; k < t->value_len; k++) {
			CHECK(t->value[k] != ';');
			if (t->value[k] == '\n')
				CHECK(k + 1 < t->value_len &&
				      (t->value[k + 1] == ' ' ||
				       t->value[k + 1] == '\t'));
		}
		memcpy(name, t->name, t->name_len);
		name[t->name_len] = '\0';
		CHECK(dkim_tags_get(&tags, name) == t);
		if (dkim_b64_decode(t->value, t->value_len, out, sizeof(out),
		                    &n) == 0)
			CHECK(n <= sizeof(out) && n <= t->value_len);
	}
}

static void
fuzz_key(const char *text, size_t len, unsigned flags)
{
	struct dkim_key key;
	char why[96];
	unsigned min_bits = (flags & 4) ? 1024 : 2048;

	why[0] = '\0';
	if (dkim_key_parse(text, len, min_bits, &key, why, sizeof(why)) !=
	    DKIM_PASS) {
		CHECK(why[0] != '\0' && key.pkey == NULL);
		return;
	}
	CHECK(key.revoked == (key.pkey == NULL));
	CHECK(key.alg == DKIM_ALG_RSA_SHA256 ||
	      key.alg == DKIM_ALG_ED25519_SHA256);
	if (!key.revoked && key.alg == DKIM_ALG_RSA_SHA256)
		CHECK(key.bits >= min_bits && key.bits <= 8192);
	dkim_key_free(&key);
}

static void
fuzz_verify(const char *text, size_t len, unsigned flags)
{
	const struct dkim_verify_opts opts = {
	    .now = 1700000000,
	    .max_signatures = 4,
	    .max_fields = 200,
	    .min_rsa_bits = 1024,
	    .reject_l = (flags & 8) != 0,
	    .future_slack = 300,
	};
	const char *recs[2] = {text, fuzz_ed_key};
	size_t lens[2] = {len, sizeof(fuzz_ed_key) - 1};
	struct dkim_verifier v;
	char name[300];
	size_t i, body, half;

	if (dkim_verify_begin(&v, text, len, (flags & 4) != 0, &opts) != 0) {
		dkim_verifier_free(&v);
		return;
	}
	CHECK(v.nsig <= opts.max_signatures);
	if (v.header_error) {
		CHECK(v.nsig == 0);
		dkim_verifier_free(&v);
		return;
	}
	CHECK(v.hdrs.body_off <= len);
	body = v.hdrs.body_off;
	half = (len - body) / 2;
	dkim_verify_body(&v, text + body, half);
	dkim_verify_body(&v, text + body + half, len - body - half);
	dkim_verify_body_end(&v);
	for (i = 0; i < v.nsig; i++) {
		CHECK(v.sig[i].field < v.hdrs.count);
		CHECK(memchr(v.sig[i].reason, '\0', sizeof(v.sig[i].reason)));
		if (!dkim_verify_needs_key(&v, i))
			continue;
		if (dkim_verify_key_name(&v, i, name, sizeof(name)) == 0)
			CHECK(strlen(name) < sizeof(name));
		if (flags & 16)
			dkim_verify_set(&v, i, DKIM_TEMPERROR, "timeout");
		else
			dkim_verify_with_records(&v, i, recs, lens, 2);
		CHECK(!dkim_verify_needs_key(&v, i));
		CHECK(v.sig[i].status != DKIM_NONE);
	}
	dkim_verifier_free(&v);
}

/* Where canonical bytes are collected, up to a bound. */
struct fuzz_sink {
	char *buf;
	size_t len, cap;
};

static void
fuzz_emit(void *arg, const char *data, size_t len)
{
	struct fuzz_sink *s = arg;

	CHECK(len <= s->cap - s->len);
	memcpy(s->buf + s->len, data, len);
	s->len += len;
}

static void
fuzz_canon(const char *text, size_t len, unsigned flags)
{
	enum dkim_canon mode =
	    (flags & 4) ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
	bool has_limit = (flags & 8) != 0;
	uint64_t limit = len / 2;
	struct dkim_body_canon *one, *bytes;
	struct fuzz_sink a, b;

	a.cap = b.cap = 2 * len + 16;
	a.len = b.len = 0;
	a.buf = malloc(a.cap);
	b.buf = malloc(b.cap);
	one = malloc(sizeof(*one));
	bytes = malloc(sizeof(*bytes));
	if (a.buf == NULL || b.buf == NULL || one == NULL || bytes == NULL)
		goto out;

	/* A field is never longer once canonicalized, but for the CRLF. */
	dkim_canon_header(mode, text, len, true, fuzz_emit, &a);
	CHECK(a.len <= len + 3);

	/* The body: chunking must not change a byte of the result. */
	a.len = 0;
	dkim_body_canon_init(one, mode, has_limit, limit, fuzz_emit, &a);
	dkim_body_canon_init(bytes, mode, has_limit, limit, fuzz_emit, &b);
	dkim_body_canon_update(one, text, len);
	for (size_t i = 0; i < len; i++)
		dkim_body_canon_update(bytes, text + i, 1);
	dkim_body_canon_final(one);
	dkim_body_canon_final(bytes);
	CHECK(a.len == b.len && memcmp(a.buf, b.buf, a.len) == 0);
	CHECK(one->total == bytes->total && one->emitted == a.len);
	CHECK(!has_limit || a.len <= limit);
	CHECK(a.len <= one->total);
	if (!has_limit && a.len >= 2)
		CHECK(a.buf[a.len - 2] == '\r' && a.buf[a.len - 1] == '\n');
out:
	free(a.buf);
	free(b.buf);
	free(one);
	free(bytes);
}

static void
fuzz_b64_from(const char *text, size_t len)
{
	unsigned char bin[1024];
	char enc[2048], dom[256];
	size_t n, k, m, j = 0;

	if (dkim_b64_decode(text, len, bin, sizeof(bin), &n) == 0) {
		/* Strict decoding: the text was the canonical encoding. */
		m = dkim_b64_encode(bin, n, enc, sizeof(enc));
		CHECK(m > 0 || n == 0);
		for (k = 0; k < len; k++) {
			if (text[k] == ' ' || text[k] == '\t' ||
			    text[k] == '\r' || text[k] == '\n')
				continue;
			CHECK(j < m && enc[j] == text[k]);
			j++;
		}
		CHECK(j == m);
	}
	if (dkim_from_domain(text, len, dom, sizeof(dom)) == 0) {
		CHECK(dom[0] != '\0' && strlen(dom) < sizeof(dom));
		CHECK(strspn(dom, "abcdefghijklmnopqrstuvwxyz0123456789-._") ==
		      strlen(dom));
	}
	if (dkim_from_domain(text, len, dom, 8) == 0)
		CHECK(strlen(dom) < 8);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data + 1;
	unsigned flags;

	if (size < 1)
		return 0;
	flags = data[0];
	size--;
	switch (flags & 3) {
	case 0:
		fuzz_tags(text, size);
		break;
	case 1:
		fuzz_key(text, size, flags);
		break;
	case 2:
		fuzz_verify(text, size, flags);
		break;
	default:
		fuzz_canon(text, size, flags);
		fuzz_b64_from(text, size);
		break;
	}
	return 0;
}
