/* SPDX-License-Identifier: MIT */
/* DKIM verification: RFC vectors, malformed input, confusion (dkim). */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dkim.h"

/*
 * RFC 8463 appendix A: the keys (A.2) and the message signed with both
 * (A.3), typed in from the RFC text. Its RSA key has 1024 bits, the
 * minimum RFC 8301 still accepts.
 */
#define RFC8463_NOW 1528637909

static const char ed25519_record[] =
    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

static const char rsa8463_record[] =
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiG"
    "s5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfz"
    "wQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G"
    "+2kryOTIKT+l/K4w3QIDAQAB";

#define RFC8463_ED_SIG                                                         \
	"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"        \
	" d=football.example.com; i=@football.example.com;\r\n"                \
	" q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"              \
	" subject : date : message-id : from : subject : date;\r\n"            \
	" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"                \
	" b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"      \
	" Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"

#define RFC8463_RSA_SIG                                                        \
	"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"            \
	" d=football.example.com; i=@football.example.com;\r\n"                \
	" q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"        \
	" date : message-id : from : subject : date;\r\n"                      \
	" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"                \
	" b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"      \
	" DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"      \
	" dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"

#define RFC8463_HEADERS                                                        \
	"From: Joe SixPack <joe@football.example.com>\r\n"                     \
	"To: Suzie Q <suzie@shopping.example.net>\r\n"                         \
	"Subject: Is dinner ready?\r\n"                                        \
	"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"                      \
	"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"

#define RFC8463_BODY                                                           \
	"Hi.\r\n"                                                              \
	"\r\n"                                                                 \
	"We lost the game.  Are you hungry yet?\r\n"                           \
	"\r\n"                                                                 \
	"Joe.\r\n"

static const char rfc8463_message[] =
    RFC8463_ED_SIG RFC8463_RSA_SIG RFC8463_HEADERS "\r\n" RFC8463_BODY;

/*
 * RFC 6376 appendix A.2 (signed with the appendix C key, 1024 bits),
 * simple/simple: the indentation of the continuation lines is part of
 * what was signed.
 */
static const char rfc6376_record[] =
    "v=DKIM1; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW"
    "3/DkMoGeLnQg1fWn7/zYtIxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/Rt"
    "dC2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4OuKhitdY9tf6mcwGjaNBcWToIMmPSPDd"
    "QPNUYckcQ2QIDAQAB";

static const char rfc6376_message[] =
    "DKIM-Signature: v=1; a=rsa-sha256; s=brisbane; d=example.com;\r\n"
    "      c=simple/simple; q=dns/txt; i=joe@football.example.com;\r\n"
    "      h=Received : From : To : Subject : Date : Message-ID;\r\n"
    "      bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    "      b=AuUoFEfDxTDkHlLXSZEpZj79LICEps6eda7W3deTVFOk4yAUoqOB\r\n"
    "        4nujc7YopdG5dWLSdNg6xNAZpOPr+kHxt1IrE+NahM6L/LbvaHut\r\n"
    "        KVdkLLkpVaVVQPzeRDI009SO2Il5Lu7rDNH6mZckBdrIx0orEtZV\r\n"
    "        4bmp/YzhwvcubU4=;\r\n"
    "Received: from client1.football.example.com  [192.0.2.1]\r\n"
    "      by submitserver.example.com with SUBMISSION;\r\n"
    "      Fri, 11 Jul 2003 21:01:54 -0700 (PDT)\r\n"
    "From: Joe SixPack <joe@football.example.com>\r\n"
    "To: Suzie Q <suzie@shopping.example.net>\r\n"
    "Subject: Is dinner ready?\r\n"
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
    "\r\n"
    "Hi.\r\n"
    "\r\n"
    "We lost the game. Are you hungry yet?\r\n"
    "\r\n"
    "Joe.\r\n";

/*
 * l=5, made with dkimpy and the RFC 8463 Ed25519 key (Ed25519 signatures
 * are deterministic, so this is fixed data): only "Hi.\r\n" is signed.
 */
#define L_NOW 1795797942
#define L_SIG                                                                  \
	"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"        \
	" d=football.example.com; i=@football.example.com; l=5; "              \
	"q=dns/txt;\r\n"                                                       \
	" s=brisbane; t=1795797942; h=from : to : subject;\r\n"                \
	" bh=UrA8rmgY3eNBotmDWtzAmHyn5RyZv8Gea45sNGsP0zw=;\r\n"                \
	" b=+0XDDYsHRYN5C+yHh9pFOWiOVb0i26bPaQXA9Ap2i/0uBmf8NJLo9BZCeqWwh70Y"  \
	"u3fi8\r\n"                                                            \
	" WfsFDtjyQaMgKzAAA==\r\n"
#define L_HEADERS                                                              \
	"From: Joe SixPack <joe@football.example.com>\r\n"                     \
	"To: Suzie Q <suzie@shopping.example.net>\r\n"                         \
	"Subject: Is dinner ready?\r\n"

struct rec {
	const char *name;
	const char *record;
};

static const struct rec rfc_recs[] = {
    {"brisbane._domainkey.football.example.com", ed25519_record},
    {"test._domainkey.football.example.com", rsa8463_record},
    {"brisbane._domainkey.example.com", rfc6376_record},
};

static struct dkim_verify_opts
default_opts(int64_t now)
{
	struct dkim_verify_opts o = {
	    .now = now,
	    .max_signatures = 8,
	    .max_fields = 1000,
	    .min_rsa_bits = 1024,
	    .reject_l = false,
	    .future_slack = 3600,
	};

	return o;
}

/* Verify @msg with the records above, the body fed in @chunk bytes. */
static void
run(struct dkim_verifier *v, const char *msg, size_t len,
    const struct dkim_verify_opts *o, size_t chunk)
{
	const char *rec;
	size_t i, k, off, n, rec_len;
	char name[300];

	assert_int_equal(dkim_verify_begin(v, msg, len, true, o), 0);
	for (off = v->hdrs.body_off; off < len; off += n) {
		n = len - off < chunk ? len - off : chunk;
		dkim_verify_body(v, msg + off, n);
	}
	dkim_verify_body_end(v);
	for (i = 0; i < v->nsig; i++) {
		if (!dkim_verify_needs_key(v, i))
			continue;
		assert_int_equal(dkim_verify_key_name(v, i, name, sizeof(name)),
		                 0);
		rec = NULL;
		for (k = 0; k < sizeof(rfc_recs) / sizeof(rfc_recs[0]); k++) {
			if (strcmp(rfc_recs[k].name, name) == 0)
				rec = rfc_recs[k].record;
		}
		if (rec == NULL) {
			dkim_verify_set(v, i, DKIM_PERMERROR,
			                "no key for signature");
			continue;
		}
		rec_len = strlen(rec);
		dkim_verify_with_records(v, i, &rec, &rec_len, 1);
	}
}

static void
assert_sig(const struct dkim_verifier *v, size_t i, enum dkim_status st,
           const char *reason)
{
	assert_true(i < v->nsig);
	if (v->sig[i].status != st ||
	    (reason != NULL && strcmp(v->sig[i].reason, reason) != 0))
		fail_msg("signature %zu: %s (%s), want %s (%s)", i,
		         dkim_status_name(v->sig[i].status), v->sig[i].reason,
		         dkim_status_name(st), reason != NULL ? reason : "*");
}

/* Verify and expect one status for every signature. */
static void
expect_all(const char *msg, int64_t now, enum dkim_status st,
           const char *reason)
{
	struct dkim_verify_opts o = default_opts(now);
	struct dkim_verifier v;
	size_t i;

	run(&v, msg, strlen(msg), &o, 7);
	assert_true(v.nsig > 0);
	for (i = 0; i < v.nsig; i++)
		assert_sig(&v, i, st, reason);
	dkim_verifier_free(&v);
}

/* @msg with the first occurrence of @from replaced by @to (malloc'd). */
static char *
replace(const char *msg, const char *from, const char *to)
{
	const char *at = strstr(msg, from);
	size_t n = strlen(msg) - strlen(from) + strlen(to);
	char *out;

	assert_non_null(at);
	out = malloc(n + 1);
	assert_non_null(out);
	memcpy(out, msg, (size_t)(at - msg));
	strcpy(out + (at - msg), to);
	strcat(out, at + strlen(from));
	return out;
}

/* ---- published vectors ------------------------------------------------ */

static void
test_rfc8463_both_pass(void **state)
{
	static const size_t chunks[] = {1, 3, 64, 100000};
	struct dkim_verify_opts o = default_opts(RFC8463_NOW);
	struct dkim_verifier v;
	size_t i;

	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		run(&v, rfc8463_message, strlen(rfc8463_message), &o,
		    chunks[i]);
		assert_int_equal(v.nsig, 2);
		assert_sig(&v, 0, DKIM_PASS, "");
		assert_sig(&v, 1, DKIM_PASS, "");
		assert_int_equal(v.sig[0].alg, DKIM_ALG_ED25519_SHA256);
		assert_int_equal(v.sig[1].alg, DKIM_ALG_RSA_SHA256);
		assert_int_equal(v.sig[1].key_bits, 1024);
		assert_string_equal(v.sig[0].domain, "football.example.com");
		assert_string_equal(v.sig[0].selector, "brisbane");
		assert_string_equal(v.sig[0].auid, "@football.example.com");
		assert_string_equal(v.sig[0].b_prefix, "/gCrinpc");
		dkim_verifier_free(&v);
	}
}

static void
test_rfc6376_appendix_a(void **state)
{
	struct dkim_verify_opts o = default_opts(RFC8463_NOW);
	struct dkim_verifier v;

	run(&v, rfc6376_message, strlen(rfc6376_message), &o, 5);
	assert_int_equal(v.nsig, 1);
	assert_sig(&v, 0, DKIM_PASS, "");
	assert_string_equal(v.sig[0].auid, "joe@football.example.com");
	dkim_verifier_free(&v);
	/* Simple canonicalization: one more space anywhere breaks it. */
	{
		char *m =
		    replace(rfc6376_message, "Subject: Is", "Subject:  Is");

		expect_all(m, RFC8463_NOW, DKIM_FAIL,
		           "signature did not verify");
		free(m);
		m = replace(rfc6376_message, "Joe.\r\n", "Joe. \r\n");
		expect_all(m, RFC8463_NOW, DKIM_FAIL,
		           "body hash did not verify");
		free(m);
	}
	/* A stricter minimum refuses the 1024-bit key. */
	o.min_rsa_bits = 2048;
	run(&v, rfc6376_message, strlen(rfc6376_message), &o, 5);
	assert_sig(&v, 0, DKIM_PERMERROR, "RSA key of 1024 bits refused");
	dkim_verifier_free(&v);
}

static void
test_rfc8463_tampered(void **state)
{
	char *m;

	m = replace(rfc8463_message, "Joe.\r\n", "Jim.\r\n");
	expect_all(m, RFC8463_NOW, DKIM_FAIL, "body hash did not verify");
	free(m);
	m = replace(rfc8463_message, "Is dinner ready?", "Is lunch ready?");
	expect_all(m, RFC8463_NOW, DKIM_FAIL, "signature did not verify");
	free(m);
	/* Over-signed Subject: a second one added anywhere breaks it. */
	m = replace(rfc8463_message, "From: Joe",
	            "Subject: Free money\r\nFrom: Joe");
	expect_all(m, RFC8463_NOW, DKIM_FAIL, "signature did not verify");
	free(m);
	/* To is signed once: another To above it is not covered. */
	m = replace(rfc8463_message, "From: Joe", "To: extra@x\r\nFrom: Joe");
	expect_all(m, RFC8463_NOW, DKIM_PASS, "");
	free(m);
}

/* Relaxed/relaxed survives refolding and whitespace changes. */
static void
test_rfc8463_relaxed_variations(void **state)
{
	char *m1, *m2, *m3, *m4;

	m1 = replace(rfc8463_message, "Subject: Is dinner ready?",
	             "subject:   Is \t dinner\r\n\tready?   ");
	expect_all(m1, RFC8463_NOW, DKIM_PASS, "");
	m2 = replace(m1, "Joe.\r\n", "Joe.   \r\n\r\n\r\n \r\n");
	expect_all(m2, RFC8463_NOW, DKIM_PASS, "");
	m3 = replace(m2, "the game.  Are", "the   game. \t Are");
	expect_all(m3, RFC8463_NOW, DKIM_PASS, "");
	/* A space inside a word is a change. */
	m4 = replace(m3, "hungry", "hun gry");
	expect_all(m4, RFC8463_NOW, DKIM_FAIL, "body hash did not verify");
	free(m1);
	free(m2);
	free(m3);
	free(m4);
}

/* ---- l= --------------------------------------------------------------- */

static void
test_l_tag(void **state)
{
	const char *signed_only = L_SIG L_HEADERS "\r\nHi.\r\n";
	const char *appended =
	    L_SIG L_HEADERS "\r\nHi.\r\nClick http://evil.example/\r\n";
	struct dkim_verify_opts o = default_opts(L_NOW);
	struct dkim_verifier v;

	run(&v, signed_only, strlen(signed_only), &o, 3);
	assert_sig(&v, 0, DKIM_PASS, "");
	assert_false(v.sig[0].unsigned_body);
	dkim_verifier_free(&v);
	/* Content after l=: still pass, but said out loud. */
	run(&v, appended, strlen(appended), &o, 3);
	assert_sig(&v, 0, DKIM_PASS, "l= leaves 28 body bytes unsigned");
	assert_true(v.sig[0].unsigned_body);
	assert_true(v.sig[0].has_l);
	assert_int_equal(v.sig[0].l, 5);
	dkim_verifier_free(&v);
	/* reject_l_tag: the same is a policy result. */
	o.reject_l = true;
	run(&v, appended, strlen(appended), &o, 3);
	assert_sig(&v, 0, DKIM_POLICY, "l= leaves 28 body bytes unsigned");
	dkim_verifier_free(&v);
	/* A body shorter than l=. */
	{
		const char *shorter = L_SIG L_HEADERS "\r\nHi\r\n";

		o.reject_l = false;
		run(&v, shorter, strlen(shorter), &o, 3);
		assert_sig(&v, 0, DKIM_FAIL, "l= is longer than the body");
		dkim_verifier_free(&v);
	}
}

/* ---- malformed signatures --------------------------------------------- */

#define MIN_SIG(tags)                                                          \
	"DKIM-Signature: " tags "\r\n" RFC8463_HEADERS "\r\n" RFC8463_BODY

#define OK_TAGS_NO_V                                                           \
	"a=ed25519-sha256; c=relaxed/relaxed; d=football.example.com; "        \
	"s=brisbane; h=from; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; "

#define B64_64                                                                 \
	"b=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"   \
	"AAAAAAAAAAAAAAAAAAAAAA=="

static void
test_malformed_signatures(void **state)
{
	static const struct {
		const char *msg;
		const char *reason;
	} cases[] = {
	    {MIN_SIG("v=1; " OK_TAGS_NO_V B64_64), "signature did not verify"},
	    {MIN_SIG(OK_TAGS_NO_V B64_64), "missing a required tag"},
	    {MIN_SIG("v=2; " OK_TAGS_NO_V B64_64), "unknown version"},
	    {MIN_SIG("v=1; " OK_TAGS_NO_V), "missing a required tag"},
	    {MIN_SIG("v=1; v=1; " OK_TAGS_NO_V B64_64),
	     "syntax: duplicate tag"},
	    {MIN_SIG("v=1; a=rsa-sha1; d=football.example.com; s=test; "
	             "h=from; bh=AA==; b=AA=="),
	     "rsa-sha1 is not accepted (RFC 8301)"},
	    {MIN_SIG("v=1; a=rsa-md5; d=football.example.com; s=test; "
	             "h=from; bh=AA==; b=AA=="),
	     "unknown algorithm"},
	    {MIN_SIG("v=1; a=ed25519-sha256; d=football.example.com; "
	             "s=brisbane; h=to:subject; bh=AA==; b=AA=="),
	     "From is not signed"},
	    {MIN_SIG("v=1; a=ed25519-sha256; d=football.example.com; "
	             "s=brisbane; h=from::to; bh=AA==; b=AA=="),
	     "bad h="},
	    {MIN_SIG("v=1; a=ed25519-sha256; c=fancy; d=football.example.com; "
	             "s=brisbane; h=from; bh=AA==; b=AA=="),
	     "unknown canonicalization"},
	    {MIN_SIG("v=1; a=ed25519-sha256; c=relaxed/; "
	             "d=football.example.com; s=brisbane; h=from; bh=AA==; "
	             "b=AA=="),
	     "unknown canonicalization"},
	    {MIN_SIG("v=1; a=ed25519-sha256; q=http; d=football.example.com; "
	             "s=brisbane; h=from; bh=AA==; b=AA=="),
	     "unknown query method"},
	    {MIN_SIG("v=1; a=ed25519-sha256; d=football.example.com; "
	             "i=joe@evil.example; s=brisbane; h=from; bh=AA==; b=AA=="),
	     "i= is not within d="},
	    {MIN_SIG("v=1; a=ed25519-sha256; d=football.example.com; "
	             "i=joe@xfootball.example.com; s=brisbane; h=from; "
	             "bh=AA==; b=AA=="),
	     "i= is not within d="},
	    {MIN_SIG("v=1; a=ed25519-sha256; d=foot ball.example.com; "
	             "s=brisbane; h=from; bh=AA==; b=AA=="),
	     "bad d="},
	    {MIN_SIG("v=1; a=ed25519-sha256; d=football..example.com; "
	             "s=brisbane; h=from; bh=AA==; b=AA=="),
	     "bad d="},
	    {MIN_SIG("v=1; a=ed25519-sha256; d=football.example.com; "
	             "s=bris/bane; h=from; bh=AA==; b=AA=="),
	     "bad s="},
	    {MIN_SIG("v=1; " OK_TAGS_NO_V "l=12x; " B64_64), "bad l="},
	    {MIN_SIG("v=1; " OK_TAGS_NO_V "l=99999999999999999999; " B64_64),
	     "bad l="},
	    {MIN_SIG("v=1; " OK_TAGS_NO_V "t=-5; " B64_64), "bad t="},
	    {MIN_SIG("v=1; " OK_TAGS_NO_V
	             "t=1528637909; x=1528637000; " B64_64),
	     "x= is before t="},
	    {MIN_SIG("v=1; " OK_TAGS_NO_V "x=1528630000; " B64_64),
	     "signature expired"},
	    {MIN_SIG("v=1; " OK_TAGS_NO_V "t=1600000000; " B64_64),
	     "signature is from the future"},
	    {MIN_SIG("v=1; a=ed25519-sha256; d=football.example.com; "
	             "s=brisbane; h=from; bh=AAAA; " B64_64),
	     "bad bh="},
	    {MIN_SIG("v=1; " OK_TAGS_NO_V "b=AAAA"), "bad b="},
	    {MIN_SIG("v=1; " OK_TAGS_NO_V "b=!!!!"), "bad b="},
	    {MIN_SIG("v=1; " OK_TAGS_NO_V "b=\x01"),
	     "syntax: invalid character in tag value"},
	    {MIN_SIG("v=1; " OK_TAGS_NO_V "b="), "bad b="},
	    {MIN_SIG(
	         "v=1; a=ed25519-sha256; c=relaxed/relaxed; "
	         "d=football.example.com; s=missing; h=from; "
	         "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; " B64_64),
	     "no key for signature"},
	    /* An Ed25519 signature against the RSA key. */
	    {MIN_SIG(
	         "v=1; a=ed25519-sha256; c=relaxed/relaxed; "
	         "d=football.example.com; s=test; h=from; "
	         "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; " B64_64),
	     "key type does not match a="},
	};
	struct dkim_verify_opts o = default_opts(RFC8463_NOW);
	struct dkim_verifier v;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run(&v, cases[i].msg, strlen(cases[i].msg), &o, 11);
		assert_int_equal(v.nsig, 1);
		if (strcmp(v.sig[0].reason, cases[i].reason) != 0)
			fail_msg("case %zu: %s (%s), want (%s)", i,
			         dkim_status_name(v.sig[0].status),
			         v.sig[0].reason, cases[i].reason);
		assert_true(v.sig[0].status == DKIM_PERMERROR ||
		            v.sig[0].status == DKIM_FAIL);
		dkim_verifier_free(&v);
	}
}

static void
test_key_problems(void **state)
{
	static const char *revoked = "v=DKIM1; k=ed25519; p=";
	static const char *strict =
	    "v=DKIM1; k=ed25519; t=s; "
	    "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
	static const char *junk[] = {"v=spf1 -all", "hello world"};
	const char *msg = MIN_SIG("v=1; a=ed25519-sha256; c=relaxed/relaxed; "
	                          "d=football.example.com; "
	                          "i=x@sub.football.example.com; s=brisbane; "
	                          "h=from; "
	                          "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOz"
	                          "v8=; " B64_64);
	struct dkim_verify_opts o = default_opts(RFC8463_NOW);
	struct dkim_verifier v;
	size_t len = strlen(revoked), lens[2];

	assert_int_equal(dkim_verify_begin(&v, msg, strlen(msg), true, &o), 0);
	dkim_verify_body(&v, msg + v.hdrs.body_off,
	                 strlen(msg) - v.hdrs.body_off);
	dkim_verify_body_end(&v);
	if (!dkim_verify_needs_key(&v, 0))
		fail_msg("decided early: %s", v.sig[0].reason);
	dkim_verify_with_records(&v, 0, &revoked, &len, 1);
	assert_sig(&v, 0, DKIM_PERMERROR, "key revoked");
	/* Decided: later answers change nothing. */
	assert_false(dkim_verify_needs_key(&v, 0));
	len = strlen(strict);
	dkim_verify_with_records(&v, 0, &strict, &len, 1);
	assert_sig(&v, 0, DKIM_PERMERROR, "key revoked");
	dkim_verifier_free(&v);

	assert_int_equal(dkim_verify_begin(&v, msg, strlen(msg), true, &o), 0);
	dkim_verify_body(&v, msg + v.hdrs.body_off,
	                 strlen(msg) - v.hdrs.body_off);
	dkim_verify_body_end(&v);
	len = strlen(strict);
	dkim_verify_with_records(&v, 0, &strict, &len, 1);
	assert_sig(&v, 0, DKIM_PERMERROR,
	           "key has t=s and i= is a subdomain of d=");
	dkim_verifier_free(&v);

	/* Records that are not keys are skipped; none left: permerror. */
	assert_int_equal(dkim_verify_begin(&v, msg, strlen(msg), true, &o), 0);
	dkim_verify_body(&v, msg + v.hdrs.body_off,
	                 strlen(msg) - v.hdrs.body_off);
	dkim_verify_body_end(&v);
	lens[0] = strlen(junk[0]);
	lens[1] = strlen(junk[1]);
	dkim_verify_with_records(&v, 0, junk, lens, 2);
	assert_sig(&v, 0, DKIM_PERMERROR, "key record: bad v=");
	dkim_verifier_free(&v);

	/* DNS trouble is the caller's to report. */
	assert_int_equal(dkim_verify_begin(&v, msg, strlen(msg), true, &o), 0);
	dkim_verify_body(&v, msg + v.hdrs.body_off,
	                 strlen(msg) - v.hdrs.body_off);
	dkim_verify_body_end(&v);
	dkim_verify_set(&v, 0, DKIM_TEMPERROR, "key lookup: timeout");
	assert_sig(&v, 0, DKIM_TEMPERROR, "key lookup: timeout");
	dkim_verifier_free(&v);
}

static void
test_signature_count_bounded(void **state)
{
	struct dkim_verify_opts o = default_opts(RFC8463_NOW);
	struct dkim_verifier v;
	char *msg =
	    malloc(20 * sizeof(RFC8463_ED_SIG) + sizeof(rfc8463_message));
	size_t i;

	assert_non_null(msg);
	msg[0] = '\0';
	for (i = 0; i < 20; i++)
		strcat(msg, RFC8463_ED_SIG);
	strcat(msg, rfc8463_message);
	o.max_signatures = 8;
	run(&v, msg, strlen(msg), &o, 4096);
	assert_int_equal(v.nsig, 8);
	for (i = 0; i < v.nsig; i++)
		assert_sig(&v, i, DKIM_PASS, "");
	dkim_verifier_free(&v);
	free(msg);
}

static void
test_no_signature_and_bad_header(void **state)
{
	const char *plain = RFC8463_HEADERS "\r\n" RFC8463_BODY;
	struct dkim_verify_opts o = default_opts(RFC8463_NOW);
	struct dkim_verifier v;

	run(&v, plain, strlen(plain), &o, 10);
	assert_int_equal(v.nsig, 0);
	assert_false(v.header_error);
	dkim_verifier_free(&v);
	o.max_fields = 3;
	run(&v, rfc8463_message, strlen(rfc8463_message), &o, 10);
	assert_int_equal(v.nsig, 0);
	assert_true(v.header_error);
	assert_string_equal(v.header_reason, "too many header fields");
	dkim_verifier_free(&v);
}

/* Truncations and byte flips never crash and never pass. */
static void
test_mangled_never_crash(void **state)
{
	static const char flips[] = {'\0', '\r', '\n', ' ',    ';',
	                             '=',  ':',  'A',  '\x80', '\xff'};
	struct dkim_verify_opts o = default_opts(RFC8463_NOW);
	size_t len = strlen(rfc8463_message), sig_len = strlen(RFC8463_ED_SIG);
	struct dkim_verifier v;
	char *m = malloc(len + 1);
	size_t i, f;

	assert_non_null(m);
	for (i = 0; i <= len; i++) {
		run(&v, rfc8463_message, i, &o, 13);
		dkim_verifier_free(&v);
	}
	for (i = 0; i < sig_len; i++) {
		for (f = 0; f < sizeof(flips); f++) {
			/* Field names are case-insensitive. */
			if (rfc8463_message[i] == flips[f] ||
			    (i < 14 &&
			     (rfc8463_message[i] | 0x20) == (flips[f] | 0x20)))
				continue;
			memcpy(m, rfc8463_message, len + 1);
			m[i] = flips[f];
			run(&v, m, len, &o, 13);
			/* The RSA signature after it is untouched. */
			if (v.nsig > 0 && v.sig[0].field == 0 &&
			    v.sig[0].status == DKIM_PASS &&
			    strcmp(v.sig[0].selector, "brisbane") == 0)
				fail_msg("flip at %zu to %02x passed", i,
				         (unsigned char)flips[f]);
			dkim_verifier_free(&v);
		}
	}
	free(m);
}

/* ---- SECURITY.md #10: one header/body split -------------------------- */

/*
 * The smtp module refuses a bare LF in DATA, so a stored message has
 * none; the verifier's split is the first CRLF CRLF, the same as every
 * reader of the stored file. These messages try to make a verifier see a
 * different header section than the reader does.
 */
static void
test_confusion_whitespace_line(void **state)
{
	struct dkim_verify_opts o = default_opts(RFC8463_NOW);
	struct dkim_verifier v;
	char *m;

	/* A line of spaces after the last field: a continuation of
	 * Message-ID (relaxed ignores it), not the end of the header. */
	m = replace(rfc8463_message, "football.example.com>\r\n\r\n",
	            "football.example.com>\r\n \t \r\n\r\n");
	run(&v, m, strlen(m), &o, 9);
	assert_sig(&v, 0, DKIM_PASS, "");
	assert_string_equal(m + v.hdrs.body_off, RFC8463_BODY);
	dkim_verifier_free(&v);
	free(m);

	/* Fields after such a line are still fields, for the verifier as
	 * for the reader: an unsigned field, but never the body. */
	m = replace(rfc8463_message, "football.example.com>\r\n\r\n",
	            "football.example.com>\r\n \r\nX-Injected: yes\r\n\r\n");
	run(&v, m, strlen(m), &o, 9);
	assert_sig(&v, 0, DKIM_PASS, "");
	assert_true(
	    dkim_headers_is(&v.hdrs, v.hdrs.count - 1, "x-injected", 10));
	assert_string_equal(m + v.hdrs.body_off, RFC8463_BODY);
	dkim_verifier_free(&v);
	free(m);

	/* A line of spaces as the "blank line": the header goes on, so the
	 * text after it is not the signed body. */
	m = replace(rfc8463_message, "football.example.com>\r\n\r\nHi.",
	            "football.example.com>\r\n \r\nHi.");
	run(&v, m, strlen(m), &o, 9);
	assert_sig(&v, 0, DKIM_FAIL, NULL);
	dkim_verifier_free(&v);
	free(m);
}

static void
test_confusion_bare_lf(void **state)
{
	struct dkim_verify_opts o = default_opts(RFC8463_NOW);
	struct dkim_verifier v;
	char *m;

	/* "\n\n" inside the header is no boundary: it stays part of the
	 * To field, whose signed value then differs. */
	m = replace(rfc8463_message, "To: Suzie Q",
	            "To: evil@x\n\nfake body\nTo: Suzie Q");
	run(&v, m, strlen(m), &o, 9);
	assert_sig(&v, 0, DKIM_FAIL, "signature did not verify");
	assert_string_equal(m + v.hdrs.body_off, RFC8463_BODY);
	dkim_verifier_free(&v);
	free(m);

	/* Bare LF line ends in the body are content, not line ends: the
	 * body hash changes. */
	m = replace(rfc8463_message, "Hi.\r\n", "Hi.\n");
	run(&v, m, strlen(m), &o, 9);
	assert_sig(&v, 0, DKIM_FAIL, "body hash did not verify");
	dkim_verifier_free(&v);
	free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc8463_both_pass),
	    cmocka_unit_test(test_rfc6376_appendix_a),
	    cmocka_unit_test(test_rfc8463_tampered),
	    cmocka_unit_test(test_rfc8463_relaxed_variations),
	    cmocka_unit_test(test_l_tag),
	    cmocka_unit_test(test_malformed_signatures),
	    cmocka_unit_test(test_key_problems),
	    cmocka_unit_test(test_signature_count_bounded),
	    cmocka_unit_test(test_no_signature_and_bad_header),
	    cmocka_unit_test(test_mangled_never_crash),
	    cmocka_unit_test(test_confusion_whitespace_line),
	    cmocka_unit_test(test_confusion_bare_lf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
