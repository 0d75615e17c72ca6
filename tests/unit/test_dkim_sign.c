/* SPDX-License-Identifier: MIT */
/* DKIM signing: keys, round trips through the verifier (modules/dkim). */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "dkim.h"

#define NOW 1700000000

/* Keys made once for the whole run, and their DNS records. */
static char rsa_path[64], ed_path[64];
static char rsa_record[1100], ed_record[1100];

static const char *const headers_to_sign[] = {
    "from", "to",         "cc",           "subject",
    "date", "message-id", "mime-version", "content-type",
};
static const char *const headers_to_oversign[] = {"from", "to", "subject",
                                                  "date"};

static EVP_PKEY *
make_key(int type, int bits)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(type, NULL);
	EVP_PKEY *pkey = NULL;

	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
	if (type == EVP_PKEY_RSA)
		assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, bits),
		                 1);
	assert_int_equal(EVP_PKEY_keygen(ctx, &pkey), 1);
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

static void
write_key(EVP_PKEY *pkey, char *path, size_t size)
{
	FILE *f;
	int fd;

	(void)snprintf(path, size, "/tmp/test_dkim_XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(
	    PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
}

static int
setup_keys(void **state)
{
	unsigned char der[700], *p = der, raw[32];
	char b64[1000];
	size_t raw_len = sizeof(raw);
	EVP_PKEY *rsa = make_key(EVP_PKEY_RSA, 2048);
	EVP_PKEY *ed = make_key(EVP_PKEY_ED25519, 0);
	int n;

	write_key(rsa, rsa_path, sizeof(rsa_path));
	write_key(ed, ed_path, sizeof(ed_path));
	n = i2d_PUBKEY(rsa, &p);
	assert_true(n > 0);
	assert_true(dkim_b64_encode(der, (size_t)n, b64, sizeof(b64)) > 0);
	(void)snprintf(rsa_record, sizeof(rsa_record), "v=DKIM1; k=rsa; p=%s",
	               b64);
	assert_int_equal(EVP_PKEY_get_raw_public_key(ed, raw, &raw_len), 1);
	assert_true(dkim_b64_encode(raw, raw_len, b64, sizeof(b64)) > 0);
	(void)snprintf(ed_record, sizeof(ed_record), "v=DKIM1; k=ed25519; p=%s",
	               b64);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
	return 0;
}

static int
teardown_keys(void **state)
{
	unlink(rsa_path);
	unlink(ed_path);
	return 0;
}

struct signers {
	struct dkim_signer sg[2];
	const struct dkim_signer *ptr[2];
};

static void
load_signers(struct signers *s, enum dkim_canon h, enum dkim_canon b)
{
	const char *paths[2] = {rsa_path, ed_path};
	const char *sels[2] = {"rsa2024", "ed2024"};
	unsigned bits;
	char why[256];
	size_t i;

	for (i = 0; i < 2; i++) {
		memset(&s->sg[i], 0, sizeof(s->sg[i]));
		if (dkim_signer_load_key(paths[i], &s->sg[i].pkey,
		                         &s->sg[i].alg, &bits, why,
		                         sizeof(why)) != 0)
			fail_msg("%s", why);
		s->sg[i].domain = "example.org";
		s->sg[i].selector = sels[i];
		s->sg[i].hcanon = h;
		s->sg[i].bcanon = b;
		s->sg[i].headers = headers_to_sign;
		s->sg[i].nheaders =
		    sizeof(headers_to_sign) / sizeof(headers_to_sign[0]);
		s->sg[i].oversign = headers_to_oversign;
		s->sg[i].noversign = sizeof(headers_to_oversign) /
		                     sizeof(headers_to_oversign[0]);
		s->sg[i].add_time = true;
		s->sg[i].ttl = 3600;
		s->ptr[i] = &s->sg[i];
	}
	assert_int_equal(s->sg[0].alg, DKIM_ALG_RSA_SHA256);
	assert_int_equal(s->sg[1].alg, DKIM_ALG_ED25519_SHA256);
}

static void
free_signers(struct signers *s)
{
	EVP_PKEY_free(s->sg[0].pkey);
	EVP_PKEY_free(s->sg[1].pkey);
}

/* Sign @msg with both keys; return the signed message (malloc'd). */
static char *
sign(const struct signers *s, const char *msg, size_t chunk)
{
	struct dkim_sign_job j;
	size_t len = strlen(msg), off, n, i, total;
	char why[256], *out;

	if (dkim_sign_begin(&j, s->ptr, 2, msg, len, true, 1000, why,
	                    sizeof(why)) != 0)
		fail_msg("sign_begin: %s", why);
	for (off = j.hdrs.body_off; off < len; off += n) {
		n = len - off < chunk ? len - off : chunk;
		dkim_sign_body(&j, msg + off, n);
	}
	if (dkim_sign_end(&j, NOW, why, sizeof(why)) != 0)
		fail_msg("sign_end: %s", why);
	total = len + 1;
	for (i = 0; i < 2; i++) {
		/* One line: the smtp module folds nothing. */
		assert_null(strpbrk(j.value[i], "\r\n"));
		total += strlen("DKIM-Signature: \r\n") + strlen(j.value[i]);
	}
	out = malloc(total);
	assert_non_null(out);
	out[0] = '\0';
	for (i = 0; i < 2; i++) {
		strcat(out, "DKIM-Signature: ");
		strcat(out, j.value[i]);
		strcat(out, "\r\n");
	}
	strcat(out, msg);
	dkim_sign_free(&j);
	return out;
}

/* Verify @msg; both signatures must have @want. */
static void
verify(const char *msg, enum dkim_status want, const char *what)
{
	struct dkim_verify_opts o = {
	    .now = NOW + 10,
	    .max_signatures = 8,
	    .max_fields = 1000,
	    .min_rsa_bits = 1024,
	    .future_slack = 3600,
	};
	struct dkim_verifier v;
	const char *rec;
	size_t i, len = strlen(msg), rec_len;

	assert_int_equal(dkim_verify_begin(&v, msg, len, true, &o), 0);
	dkim_verify_body(&v, msg + v.hdrs.body_off, len - v.hdrs.body_off);
	dkim_verify_body_end(&v);
	assert_int_equal(v.nsig, 2);
	for (i = 0; i < v.nsig; i++) {
		rec = v.sig[i].alg == DKIM_ALG_RSA_SHA256 ? rsa_record
		                                          : ed_record;
		rec_len = strlen(rec);
		dkim_verify_with_records(&v, i, &rec, &rec_len, 1);
		if (v.sig[i].status != want)
			fail_msg("%s: signature %zu (%s): %s (%s)", what, i,
			         dkim_alg_name(v.sig[i].alg),
			         dkim_status_name(v.sig[i].status),
			         v.sig[i].reason);
	}
	dkim_verifier_free(&v);
}

static char *
replace(const char *msg, const char *from, const char *to)
{
	const char *at = strstr(msg, from);
	char *out;

	assert_non_null(at);
	out = malloc(strlen(msg) + strlen(to) + 1);
	assert_non_null(out);
	memcpy(out, msg, (size_t)(at - msg));
	strcpy(out + (at - msg), to);
	strcat(out, at + strlen(from));
	return out;
}

static const char *const messages[] = {
    /* Ordinary. */
    "From: Alice <alice@example.org>\r\n"
    "To: bob@example.net\r\n"
    "Subject: Hello\r\n"
    "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    "Message-ID: <1@example.org>\r\n"
    "\r\n"
    "Hello Bob.\r\n",
    /* Folded fields, odd whitespace, trailing empty lines. */
    "From: \"Alice A.\"\r\n\t<alice@example.org>\r\n"
    "To:bob@example.net,\r\n    carol@example.net \r\n"
    "Subject:  lots   of \t space  \r\n"
    "X-Unsigned: whatever\r\n"
    "\r\n"
    "  indented  line  \r\n"
    "\t\r\n"
    "last\r\n"
    "\r\n"
    "\r\n"
    "\r\n",
    /* No final CRLF. */
    "From: alice@example.org\r\nSubject: x\r\n\r\nno newline at end",
    /* Empty body, and no body at all. */
    "From: alice@example.org\r\n\r\n",
    "From: alice@example.org\r\n",
    /* Only empty lines. */
    "From: alice@example.org\r\n\r\n\r\n\r\n\r\n",
    /* Repeated fields: every instance is signed. */
    "From: alice@example.org\r\nTo: a@x\r\nTo: b@x\r\nCc: c@x\r\n"
    "Subject: s\r\n\r\nbody\r\n",
};

static void
test_round_trips(void **state)
{
	static const enum dkim_canon modes[4][2] = {
	    {DKIM_CANON_RELAXED, DKIM_CANON_RELAXED},
	    {DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE},
	    {DKIM_CANON_RELAXED, DKIM_CANON_SIMPLE},
	    {DKIM_CANON_SIMPLE, DKIM_CANON_RELAXED},
	};
	struct signers s;
	char *signed_msg, what[64];
	size_t m, i;

	for (m = 0; m < 4; m++) {
		load_signers(&s, modes[m][0], modes[m][1]);
		for (i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
			(void)snprintf(what, sizeof(what),
			               "mode %zu message %zu", m, i);
			signed_msg = sign(&s, messages[i], i + 1);
			verify(signed_msg, DKIM_PASS, what);
			free(signed_msg);
		}
		free_signers(&s);
	}
}

/* What relaxed tolerates and simple does not, after signing. */
static void
test_changes_after_signing(void **state)
{
	struct signers s;
	char *signed_msg, *m;

	load_signers(&s, DKIM_CANON_RELAXED, DKIM_CANON_RELAXED);
	signed_msg = sign(&s, messages[0], 4096);
	m = replace(signed_msg, "Subject: Hello", "SUBJECT :\r\n  Hello ");
	verify(m, DKIM_PASS, "relaxed refold");
	free(m);
	m = replace(signed_msg, "Hello Bob.\r\n", "Hello   Bob. \r\n\r\n\r\n");
	verify(m, DKIM_PASS, "relaxed body whitespace");
	free(m);
	/* Over-signed: a second Subject, Date or To anywhere. */
	m = replace(signed_msg, "From: Alice", "Subject: Hi\r\nFrom: Alice");
	verify(m, DKIM_FAIL, "extra subject");
	free(m);
	m = replace(signed_msg, "\r\n\r\nHello Bob",
	            "\r\nTo: mallory@example.com\r\n\r\nHello Bob");
	verify(m, DKIM_FAIL, "extra to");
	free(m);
	/* A field not signed may change. */
	m = replace(signed_msg, "From: Alice", "X-Spam: no\r\nFrom: Alice");
	verify(m, DKIM_PASS, "unsigned field");
	free(m);
	free(signed_msg);
	free_signers(&s);

	load_signers(&s, DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE);
	signed_msg = sign(&s, messages[0], 4096);
	m = replace(signed_msg, "Subject: Hello", "Subject:  Hello");
	verify(m, DKIM_FAIL, "simple header change");
	free(m);
	m = replace(signed_msg, "Hello Bob.\r\n", "Hello Bob. \r\n");
	verify(m, DKIM_FAIL, "simple body change");
	free(m);
	/* Trailing empty lines are ignored even by simple. */
	m = replace(signed_msg, "Hello Bob.\r\n", "Hello Bob.\r\n\r\n\r\n");
	verify(m, DKIM_PASS, "simple trailing lines");
	free(m);
	free(signed_msg);
	free_signers(&s);
}

static void
test_signature_value(void **state)
{
	struct signers s;
	struct dkim_sign_job j;
	const char *msg = messages[6];
	char why[256];

	load_signers(&s, DKIM_CANON_RELAXED, DKIM_CANON_RELAXED);
	assert_int_equal(dkim_sign_begin(&j, s.ptr, 2, msg, strlen(msg), true,
	                                 100, why, sizeof(why)),
	                 0);
	dkim_sign_body(&j, msg + j.hdrs.body_off,
	               strlen(msg) - j.hdrs.body_off);
	assert_int_equal(dkim_sign_end(&j, NOW, why, sizeof(why)), 0);
	/* Two To fields: both signed, plus one over-signed entry; Cc is
	 * signed, not over-signed; absent fields only when over-signed. */
	assert_non_null(strstr(j.value[0],
	                       "; h=from:from:to:to:to:cc:subject:subject:"
	                       "date;"));
	assert_non_null(strstr(j.value[0], "v=1; a=rsa-sha256; "
	                                   "c=relaxed/relaxed; d=example.org; "
	                                   "s=rsa2024; t=1700000000; "
	                                   "x=1700003600;"));
	assert_non_null(strstr(j.value[1], "a=ed25519-sha256;"));
	/* A 2048-bit signature with the default list fits a filter field. */
	assert_true(strlen(j.value[0]) < 900);
	dkim_sign_free(&j);
	free_signers(&s);
}

static void
test_sign_refusals(void **state)
{
	struct signers s;
	struct dkim_sign_job j;
	const char *nofrom = "To: a@x\r\nSubject: s\r\n\r\nbody\r\n";
	char why[256];

	load_signers(&s, DKIM_CANON_RELAXED, DKIM_CANON_RELAXED);
	assert_int_equal(dkim_sign_begin(&j, s.ptr, 2, nofrom, strlen(nofrom),
	                                 true, 100, why, sizeof(why)),
	                 -1);
	assert_string_equal(why, "message has no From field");
	assert_int_equal(dkim_sign_begin(&j, s.ptr, 2, nofrom,
	                                 strlen(nofrom) - 10, false, 100, why,
	                                 sizeof(why)),
	                 -1);
	assert_string_equal(why, "header section too large");
	free_signers(&s);
}

static void
test_key_files(void **state)
{
	EVP_PKEY *pkey, *small = make_key(EVP_PKEY_RSA, 1024);
	EVP_PKEY *ec;
	EVP_PKEY_CTX *ctx;
	enum dkim_alg alg;
	unsigned bits;
	char path[64], why[256];
	FILE *f;

	assert_int_equal(dkim_signer_load_key("/nonexistent/key.pem", &pkey,
	                                      &alg, &bits, why, sizeof(why)),
	                 -1);
	assert_string_equal(why, "cannot open /nonexistent/key.pem");
	write_key(small, path, sizeof(path));
	assert_int_equal(
	    dkim_signer_load_key(path, &pkey, &alg, &bits, why, sizeof(why)),
	    -1);
	assert_non_null(strstr(why, "RSA key of 1024 bits"));
	unlink(path);
	EVP_PKEY_free(small);

	ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
	assert_int_equal(
	    EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, NID_X9_62_prime256v1),
	    1);
	ec = NULL;
	assert_int_equal(EVP_PKEY_keygen(ctx, &ec), 1);
	EVP_PKEY_CTX_free(ctx);
	write_key(ec, path, sizeof(path));
	assert_int_equal(
	    dkim_signer_load_key(path, &pkey, &alg, &bits, why, sizeof(why)),
	    -1);
	assert_non_null(strstr(why, "neither RSA nor Ed25519"));
	unlink(path);
	EVP_PKEY_free(ec);

	(void)snprintf(path, sizeof(path), "/tmp/test_dkim_XXXXXX");
	f = fdopen(mkstemp(path), "w");
	assert_non_null(f);
	fputs("-----BEGIN PRIVATE KEY-----\nnot a key\n"
	      "-----END PRIVATE KEY-----\n",
	      f);
	fclose(f);
	assert_int_equal(
	    dkim_signer_load_key(path, &pkey, &alg, &bits, why, sizeof(why)),
	    -1);
	assert_non_null(strstr(why, "not a PEM private key"));
	unlink(path);
}

static void
test_from_domain(void **state)
{
	static const struct {
		const char *value;
		const char *domain;
	} cases[] = {
	    {" Alice <alice@Example.ORG>", "example.org"},
	    {" alice@example.org", "example.org"},
	    {" alice@example.org (Alice)", "example.org"},
	    {" \"a@b\" <x@real.example>", "real.example"},
	    {" \"Bob, the @ builder\" <bob@x.example.>", "x.example"},
	    {" \"quoted@local\"@domain.example", "domain.example"},
	    {" a@one.example, b@two.example", "one.example"},
	    {" no address", NULL},
	    {" <unterminated@x", NULL},
	    {" <@>", NULL},
	};
	char out[64];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rc = dkim_from_domain(cases[i].value, strlen(cases[i].value),
		                      out, sizeof(out));
		if (cases[i].domain == NULL) {
			assert_int_equal(rc, -1);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_string_equal(out, cases[i].domain);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trips),
	    cmocka_unit_test(test_changes_after_signing),
	    cmocka_unit_test(test_signature_value),
	    cmocka_unit_test(test_sign_refusals),
	    cmocka_unit_test(test_key_files),
	    cmocka_unit_test(test_from_domain),
	};

	return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
