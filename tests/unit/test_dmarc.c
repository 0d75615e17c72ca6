/* SPDX-License-Identifier: MIT */
/* Unit tests of the dmarc module's pure parts: PSL, records, From, policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "dmarc.h"

#define SYSTEM_PSL "/usr/share/publicsuffix/public_suffix_list.dat"

/* A small list in the published format, rules from the real one. */
static const char small_list[] =
    "// ===BEGIN ICANN DOMAINS===\n"
    "com\n"
    "uk\n"
    "co.uk\n"
    "ck\n"
    "*.ck\n"
    "!www.ck\n"
    "jp\n"
    "kobe.jp\n"
    "*.kobe.jp\n"
    "!city.kobe.jp\n"
    "cn\n"
    "\xe5\x85\xac\xe5\x8f\xb8.cn\n" /* 公司.cn */
    "  org   trailing words are not part of the rule\r\n"
    "\n"
    "// ===BEGIN PRIVATE DOMAINS===\n"
    "uk.com\n"
    "blogspot.com\n";

static struct dmarc_psl *small;

static int
setup(void **state)
{
	const char *why;

	(void)state;
	small = dmarc_psl_parse(small_list, sizeof(small_list) - 1, &why);
	return small == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	dmarc_psl_free(small);
	return 0;
}

/* ---- Punycode and names ----------------------------------------------- */

static void
test_to_ascii(void **state)
{
	static const struct {
		const char *in;
		const char *out; /* NULL: refused */
	} cases[] = {
	    {"Example.COM", "example.com"},
	    {"example.com.", "example.com"},
	    {"\xe4\xb8\xad\xe5\x9b\xbd", "xn--fiqs8s"}, /* 中国 */
	    {"\xe5\x85\xac\xe5\x8f\xb8.cn", "xn--55qx5d.cn"},
	    {"b\xc3\xbc"
	     "cher.example",
	     "xn--bcher-kva.example"},
	    {"m\xc3\xbc"
	     "nchen.de",
	     "xn--mnchen-3ya.de"},
	    {"www.\xe9\xa3\x9f\xe7\x8b\xae.\xe5\x85\xac\xe5\x8f\xb8.cn",
	     "www.xn--85x722f.xn--55qx5d.cn"},
	    {"a..b", NULL},
	    {"", NULL},
	    {".", NULL},
	    {"\xc3(.com", NULL},        /* bad UTF-8 */
	    {"\xc0\xaf.com", NULL},     /* overlong */
	    {"\xed\xa0\x80.com", NULL}, /* surrogate */
	};
	char out[300];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = dmarc_domain_to_ascii(cases[i].in, strlen(cases[i].in),
		                               out, sizeof(out));

		if (cases[i].out == NULL) {
			if (rc == 0)
				fail_msg("\"%s\": expected a refusal, got %s",
				         cases[i].in, out);
			continue;
		}
		if (rc != 0 || strcmp(out, cases[i].out) != 0)
			fail_msg("\"%s\": expected %s, got %s", cases[i].in,
			         cases[i].out, rc == 0 ? out : "(refused)");
	}
	assert_int_equal(dmarc_domain_to_ascii("example.com", 11, out, 5), -1);
}

/* ---- the Public Suffix List ------------------------------------------- */

struct org_case {
	const char *domain;
	const char *org;
};

/* Cases in the spirit of publicsuffix.org's tests/test_psl.txt. */
static const struct org_case org_cases[] = {
    {"com", "com"},
    {"example.com", "example.com"},
    {"www.example.com", "example.com"},
    {"a.b.c.example.com", "example.com"},
    {"uk.com", "uk.com"},
    {"example.uk.com", "example.uk.com"},
    {"b.example.uk.com", "example.uk.com"},
    {"example.co.uk", "example.co.uk"},
    {"mail.example.co.uk", "example.co.uk"},
    {"co.uk", "co.uk"},
    {"ck", "ck"},
    {"test.ck", "test.ck"},
    {"b.test.ck", "b.test.ck"},
    {"a.b.test.ck", "b.test.ck"},
    {"www.ck", "www.ck"},
    {"www.www.ck", "www.ck"},
    {"kobe.jp", "kobe.jp"},
    {"c.kobe.jp", "c.kobe.jp"},
    {"b.c.kobe.jp", "b.c.kobe.jp"},
    {"a.b.c.kobe.jp", "b.c.kobe.jp"},
    {"city.kobe.jp", "city.kobe.jp"},
    {"www.city.kobe.jp", "city.kobe.jp"},
    {"example.example", "example.example"},
    {"b.example.example", "example.example"},
    {"example", "example"},
    {"xn--85x722f.xn--55qx5d.cn", "xn--85x722f.xn--55qx5d.cn"},
    {"www.xn--85x722f.xn--55qx5d.cn", "xn--85x722f.xn--55qx5d.cn"},
    {"shishi.xn--55qx5d.cn", "shishi.xn--55qx5d.cn"},
    {"www.example.org", "example.org"},
    {"foo.blogspot.com", "foo.blogspot.com"},
};

static void
check_orgs(const struct dmarc_psl *psl, const struct org_case *cases, size_t n)
{
	char out[DMARC_NAME_MAX + 1];
	size_t i;

	for (i = 0; i < n; i++) {
		assert_int_equal(
		    dmarc_org_domain(psl, cases[i].domain, out, sizeof(out)),
		    0);
		if (strcmp(out, cases[i].org) != 0)
			fail_msg("%s: expected %s, got %s", cases[i].domain,
			         cases[i].org, out);
	}
}

static void
test_psl_small(void **state)
{
	(void)state;
	/* 15 rules; "ck" and "*.ck", "kobe.jp" and "*.kobe.jp" merged. */
	assert_int_equal(dmarc_psl_rules(small), 13);
	check_orgs(small, org_cases, sizeof(org_cases) / sizeof(org_cases[0]));
}

static void
test_psl_system(void **state)
{
	static const struct org_case cases[] = {
	    {"example.com", "example.com"},
	    {"mail.example.co.uk", "example.co.uk"},
	    {"a.b.example.com.au", "example.com.au"},
	    {"www.city.kobe.jp", "city.kobe.jp"},
	    {"a.b.c.kobe.jp", "b.c.kobe.jp"},
	    {"www.ck", "www.ck"},
	    {"x.www.ck", "www.ck"},
	    {"foo.example.xn--p1ai", "example.xn--p1ai"},
	    {"www.xn--85x722f.xn--55qx5d.cn", "xn--85x722f.xn--55qx5d.cn"},
	    {"mail.example.test", "example.test"},
	};
	struct dmarc_psl *psl;
	char why[256];

	(void)state;
	if (access(SYSTEM_PSL, R_OK) != 0)
		skip();
	psl = dmarc_psl_load(SYSTEM_PSL, why, sizeof(why));
	if (psl == NULL)
		fail_msg("%s", why);
	assert_true(dmarc_psl_rules(psl) > 5000);
	check_orgs(psl, cases, sizeof(cases) / sizeof(cases[0]));
	dmarc_psl_free(psl);
}

static void
test_psl_errors(void **state)
{
	const char *why;
	char text[300];

	(void)state;
	assert_null(dmarc_psl_parse("// only comments\n\n", 18, &why));
	assert_string_equal(why, "no rules");
	assert_null(dmarc_psl_load("/nonexistent/psl.dat", text, sizeof(text)));
	assert_non_null(strstr(text, "No such file"));
	assert_null(dmarc_psl_load("/", text, sizeof(text)));
	/* Without a list, the last two labels. */
	assert_int_equal(
	    dmarc_org_domain(NULL, "a.b.example.org", text, sizeof(text)), 0);
	assert_string_equal(text, "example.org");
}

/* ---- records ---------------------------------------------------------- */

static void
test_record(void **state)
{
	struct dmarc_record r;
	const char *why;
	const char *t;

	(void)state;
	t = "v=DMARC1; p=reject";
	assert_int_equal(dmarc_record_parse(t, strlen(t), &r, &why), 0);
	assert_int_equal(r.p, DMARC_P_REJECT);
	assert_int_equal(r.sp, DMARC_P_REJECT);
	assert_false(r.has_sp);
	assert_int_equal(r.pct, 100);
	assert_false(r.adkim_strict);
	assert_false(r.aspf_strict);
	assert_string_equal(r.rua, "");

	t = "v=DMARC1;p=quarantine;sp=none;pct=50;adkim=s;aspf=S;"
	    "rua=mailto:agg@example.org,mailto:x@example.net!10m;ri=3600;"
	    "fo=1:d;rf=afrf;x-unknown=1";
	assert_int_equal(dmarc_record_parse(t, strlen(t), &r, &why), 0);
	assert_int_equal(r.p, DMARC_P_QUARANTINE);
	assert_int_equal(r.sp, DMARC_P_NONE);
	assert_true(r.has_sp);
	assert_int_equal(r.pct, 50);
	assert_true(r.adkim_strict);
	assert_true(r.aspf_strict);
	assert_int_equal(r.ri, 3600);
	assert_string_equal(r.fo, "1:d");
	assert_string_equal(r.rua,
	                    "mailto:agg@example.org,mailto:x@example.net!10m");

	t = "v = DMARC1 ; p = Reject ; pct = 0 ;";
	assert_int_equal(dmarc_record_parse(t, strlen(t), &r, &why), 0);
	assert_int_equal(r.p, DMARC_P_REJECT);
	assert_int_equal(r.pct, 0);

	/* Bad optional values: defaults. */
	t = "v=DMARC1; p=none; pct=101; adkim=x; ri=-1; fo=z";
	assert_int_equal(dmarc_record_parse(t, strlen(t), &r, &why), 0);
	assert_int_equal(r.pct, 100);
	assert_false(r.adkim_strict);
	assert_int_equal(r.ri, 86400);
	assert_string_equal(r.fo, "0");

	/* Section 6.6.3: no valid p, but a rua: p=none. */
	t = "v=DMARC1; rua=mailto:a@example.org";
	assert_int_equal(dmarc_record_parse(t, strlen(t), &r, &why), 0);
	assert_int_equal(r.p, DMARC_P_NONE);
	t = "v=DMARC1; p=bogus; rua=mailto:a@example.org";
	assert_int_equal(dmarc_record_parse(t, strlen(t), &r, &why), 0);
	assert_int_equal(r.p, DMARC_P_NONE);
	t = "v=DMARC1; p=reject; sp=bogus; rua=mailto:a@example.org";
	assert_int_equal(dmarc_record_parse(t, strlen(t), &r, &why), 0);
	assert_int_equal(r.p, DMARC_P_NONE);
	assert_int_equal(r.sp, DMARC_P_NONE);

	/* No usable policy. */
	t = "v=DMARC1; p=bogus";
	assert_int_equal(dmarc_record_parse(t, strlen(t), &r, &why), -1);
	assert_string_equal(why, "no valid p");
	t = "v=DMARC1; p=reject; sp=bogus";
	assert_int_equal(dmarc_record_parse(t, strlen(t), &r, &why), -1);
	assert_string_equal(why, "invalid sp");
	t = "v=DMARC1; p=none; rua=not a uri";
	assert_int_equal(dmarc_record_parse(t, strlen(t), &r, &why), 0);
	t = "v=DMARC1; rua=nouri";
	assert_int_equal(dmarc_record_parse(t, strlen(t), &r, &why), -1);

	/* Not DMARC records at all. */
	assert_false(dmarc_record_is_dmarc("v=dmarc1; p=reject", 18));
	assert_false(dmarc_record_is_dmarc("v=DMARC10; p=reject", 19));
	assert_false(dmarc_record_is_dmarc("p=reject; v=DMARC1", 18));
	assert_false(dmarc_record_is_dmarc(" v=DMARC1", 9));
	assert_false(dmarc_record_is_dmarc("v=spf1 -all", 11));
	assert_true(dmarc_record_is_dmarc("v=DMARC1", 8));
	assert_true(dmarc_record_is_dmarc("v=DMARC1 ;", 10));
	t = "v=DMARC2; p=reject";
	assert_int_equal(dmarc_record_parse(t, strlen(t), &r, &why), -1);

	/* The first p counts; rua is reduced to printable ASCII. */
	t = "v=DMARC1; p=none; p=reject; rua=mailto:a\x01@x.org";
	assert_int_equal(dmarc_record_parse(t, strlen(t), &r, &why), 0);
	assert_int_equal(r.p, DMARC_P_NONE);
	assert_string_equal(r.rua, "mailto:a?@x.org");
}

/* ---- From ------------------------------------------------------------- */

static void
test_from(void **state)
{
	static const struct {
		const char *hdr;
		const char *domain; /* NULL: refused */
	} cases[] = {
	    {"From: a@example.org\r\n\r\nbody", "example.org"},
	    {"Subject: x\r\nFrom: Some One <a@Example.ORG>\r\nTo: b@c.d\r\n\r\n",
	     "example.org"},
	    {"From: \"a@evil.example, b@evil.example\" <x@good.example>\r\n",
	     "good.example"},
	    {"From: (a@evil.example) x@good.example (c@evil.example)\r\n",
	     "good.example"},
	    {"From: x@good.example.\r\n", "good.example"},
	    {"From: Group: x@good.example;\r\n", "good.example"},
	    {"From:\r\n  Some\r\n\tOne <x@good.example>\r\n", "good.example"},
	    {"From : x@good.example\n\n", "good.example"},
	    {"from: x@good.example\r\n", "good.example"},
	    {"From: \"x@y\"@good.example\r\n", "good.example"},
	    {"From: <@route.example:x@good.example>\r\n", "good.example"},
	    {"From: x@b\xc3\xbc"
	     "cher.example\r\n",
	     "xn--bcher-kva.example"},
	    {"X-From: a@evil.example\r\nResent-From: b@evil.example\r\n"
	     "From: x@good.example\r\n",
	     "good.example"},
	    {"From: x@good.example\r\n\r\nFrom: a@evil.example\r\n",
	     "good.example"},
	    {"From: a@one.example\r\nFrom: b@two.example\r\n", NULL},
	    {"From: a@one.example, b@two.example\r\n", NULL},
	    /* Not a continuation line: not part of the field. */
	    {"From: a@one.example\r\n, b@two.example\r\n", "one.example"},
	    {"Subject: nothing\r\n\r\nFrom: a@b.example\r\n", NULL},
	    {"From: Group:;\r\n", NULL},
	    {"From: nobody\r\n", NULL},
	    {"From: a@[192.0.2.1]\r\n", NULL},
	    {"From: <a@example.org\r\n", NULL},
	    {"From: a@example.org>\r\n", NULL},
	    {"From: \"unterminated <a@example.org>\r\n", NULL},
	    {"From: a@exa mple.org\r\n", "example.org"}, /* obs FWS */
	    {"From: a@ex;ample.org\r\n", NULL},
	    {"From: a@.example.org\r\n", NULL},
	    {"From: a@example..org\r\n", NULL},
	};
	char out[DMARC_NAME_MAX + 1];
	const char *why;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = dmarc_from_domain(cases[i].hdr, strlen(cases[i].hdr),
		                           true, out, sizeof(out), &why);

		if (cases[i].domain == NULL) {
			if (rc == 0)
				fail_msg("case %zu: expected a refusal, got %s",
				         i, out);
			continue;
		}
		if (rc != 0 || strcmp(out, cases[i].domain) != 0)
			fail_msg("case %zu: expected %s, got %s", i,
			         cases[i].domain, rc == 0 ? out : why);
	}
	assert_int_equal(dmarc_from_domain("From: a@b.org\r\nFrom: c@d.org\r\n",
	                                   30, true, out, sizeof(out), &why),
	                 -1);
	assert_string_equal(why, "several From fields");
}

/* ---- trace results and policy ----------------------------------------- */

static void
test_auth_add(void **state)
{
	struct dmarc_auth a;
	size_t i;

	(void)state;
	memset(&a, 0, sizeof(a));
	dmarc_auth_add(&a, "spf=pass smtp.helo=mx.example.org", false);
	assert_string_equal(a.spf, "");
	dmarc_auth_add(&a,
	               "SPF=Pass (the comment; with a semicolon) "
	               "smtp.mailfrom=Bounce@Mail.Example.ORG",
	               true);
	assert_string_equal(a.spf, "pass");
	assert_string_equal(a.spf_domain, "mail.example.org");
	assert_false(a.spf_helo);
	dmarc_auth_add(&a, "spf=none smtp.helo=mx.example.org", true);
	assert_string_equal(a.spf, "none");
	assert_string_equal(a.spf_domain, "mx.example.org");
	assert_true(a.spf_helo);
	dmarc_auth_add(&a,
	               "dkim=pass header.d=example.org header.s=r1; "
	               "dkim=fail header.d=evil.example header.s=x",
	               false);
	dmarc_auth_add(&a, "dnsbl=none", false);
	dmarc_auth_add(&a,
	               "dkim=pass (2048-bit rsa key) header.d=Other.Example "
	               "header.i=@other.example header.s=S2",
	               false);
	assert_int_equal(a.ndkim, 3);
	assert_string_equal(a.dkim[0].result, "pass");
	assert_string_equal(a.dkim[0].domain, "example.org");
	assert_string_equal(a.dkim[0].selector, "r1");
	assert_string_equal(a.dkim[1].result, "fail");
	assert_string_equal(a.dkim[2].domain, "other.example");
	assert_string_equal(a.dkim[2].selector, "s2");
	/* Full of failures: a later pass still gets in. */
	for (i = 0; i < 10; i++)
		dmarc_auth_add(&a, "dkim=fail header.d=x.example", false);
	assert_int_equal(a.ndkim, DMARC_DKIM_MAX);
	dmarc_auth_add(&a, "dkim=pass header.d=late.example", false);
	assert_string_equal(a.dkim[1].domain, "late.example");
	/* Garbage does not hurt. */
	dmarc_auth_add(&a, "((((", false);
	dmarc_auth_add(&a, ";;;=;=", false);
	dmarc_auth_add(&a, "dkim", false);
}

static void
test_alignment(void **state)
{
	(void)state;
	assert_true(dmarc_aligned(small, "example.com", "example.com", true));
	assert_true(dmarc_aligned(small, "Example.com", "example.COM", true));
	assert_false(
	    dmarc_aligned(small, "example.com", "mail.example.com", true));
	assert_true(
	    dmarc_aligned(small, "example.com", "mail.example.com", false));
	assert_true(dmarc_aligned(small, "news.example.com", "mail.example.com",
	                          false));
	assert_false(dmarc_aligned(small, "example.com", "example.net", false));
	assert_true(
	    dmarc_aligned(small, "a.example.co.uk", "b.example.co.uk", false));
	assert_false(dmarc_aligned(small, "a.co.uk", "b.co.uk", false));
	assert_false(dmarc_aligned(small, "x.b.test.ck", "y.a.test.ck", false));
	assert_true(dmarc_aligned(small, "x.b.test.ck", "y.b.test.ck", false));
	assert_false(dmarc_aligned(small, "example.com", "", false));
	assert_false(
	    dmarc_aligned(small, "a.blogspot.com", "b.blogspot.com", false));
}

static void
rec_init(struct dmarc_record *r, enum dmarc_policy p, bool has_sp,
         enum dmarc_policy sp, unsigned pct)
{
	memset(r, 0, sizeof(*r));
	r->p = p;
	r->has_sp = has_sp;
	r->sp = has_sp ? sp : p;
	r->pct = pct;
}

static void
test_evaluate(void **state)
{
	struct dmarc_record r;
	struct dmarc_auth a;
	struct dmarc_outcome o;

	(void)state;
	rec_init(&r, DMARC_P_REJECT, false, DMARC_P_NONE, 100);
	memset(&a, 0, sizeof(a));

	/* Nothing authenticated: fail, reject. */
	dmarc_evaluate(small, "example.com", false, &r, &a, 0, &o);
	assert_int_equal(o.result, DMARC_RES_FAIL);
	assert_int_equal(o.disposition, DMARC_P_REJECT);
	assert_int_equal(o.dkim_index, -1);

	/* SPF pass for a subdomain: relaxed alignment passes. */
	dmarc_auth_add(&a, "spf=pass smtp.mailfrom=b@bounce.example.com", true);
	dmarc_evaluate(small, "example.com", false, &r, &a, 0, &o);
	assert_int_equal(o.result, DMARC_RES_PASS);
	assert_true(o.spf_aligned);
	assert_int_equal(o.disposition, DMARC_P_NONE);
	/* ... but not strict. */
	r.aspf_strict = true;
	dmarc_evaluate(small, "example.com", false, &r, &a, 0, &o);
	assert_int_equal(o.result, DMARC_RES_FAIL);

	/* DKIM of the parent domain, strict: fail; relaxed: pass. */
	dmarc_auth_add(&a, "dkim=pass header.d=example.com", false);
	r.adkim_strict = true;
	dmarc_evaluate(small, "news.example.com", true, &r, &a, 0, &o);
	assert_int_equal(o.result, DMARC_RES_FAIL);
	r.adkim_strict = false;
	dmarc_evaluate(small, "news.example.com", true, &r, &a, 0, &o);
	assert_int_equal(o.result, DMARC_RES_PASS);
	assert_true(o.dkim_aligned);
	assert_int_equal(o.dkim_index, 0);

	/* A failing DKIM signature never aligns. */
	memset(&a, 0, sizeof(a));
	dmarc_auth_add(&a,
	               "dkim=fail header.d=example.com; "
	               "spf=fail smtp.mailfrom=example.com",
	               true);
	dmarc_evaluate(small, "example.com", false, &r, &a, 0, &o);
	assert_int_equal(o.result, DMARC_RES_FAIL);

	/* sp for subdomains when found at the Organizational Domain. */
	rec_init(&r, DMARC_P_REJECT, true, DMARC_P_QUARANTINE, 100);
	dmarc_evaluate(small, "news.example.com", true, &r, &a, 0, &o);
	assert_int_equal(o.policy, DMARC_P_QUARANTINE);
	assert_true(o.subdomain_policy);
	dmarc_evaluate(small, "example.com", false, &r, &a, 0, &o);
	assert_int_equal(o.policy, DMARC_P_REJECT);
	assert_false(o.subdomain_policy);

	/* pct: rolls below pct get the policy, the others the next down. */
	rec_init(&r, DMARC_P_REJECT, false, DMARC_P_NONE, 30);
	dmarc_evaluate(small, "example.com", false, &r, &a, 29, &o);
	assert_int_equal(o.disposition, DMARC_P_REJECT);
	assert_false(o.sampled_out);
	dmarc_evaluate(small, "example.com", false, &r, &a, 30, &o);
	assert_int_equal(o.disposition, DMARC_P_QUARANTINE);
	assert_true(o.sampled_out);
	rec_init(&r, DMARC_P_QUARANTINE, false, DMARC_P_NONE, 0);
	dmarc_evaluate(small, "example.com", false, &r, &a, 0, &o);
	assert_int_equal(o.disposition, DMARC_P_NONE);
	assert_int_equal(o.result, DMARC_RES_FAIL);
	rec_init(&r, DMARC_P_NONE, false, DMARC_P_NONE, 0);
	dmarc_evaluate(small, "example.com", false, &r, &a, 0, &o);
	assert_int_equal(o.disposition, DMARC_P_NONE);
	assert_false(o.sampled_out);
}

/* ---- reports ---------------------------------------------------------- */

static void
test_report(void **state)
{
	struct dmarc_record r;
	struct dmarc_auth a;
	struct dmarc_outcome o;
	struct dmarc_report_in in;
	json_error_t jerr;
	json_t *j;
	char *line, dir[] = "/tmp/test_dmarc_XXXXXX", path[300], name[32];
	char buf[8192];
	FILE *f;
	size_t n;

	(void)state;
	rec_init(&r, DMARC_P_REJECT, false, DMARC_P_NONE, 100);
	(void)strcpy(r.rua, "mailto:agg@example.com");
	memset(&a, 0, sizeof(a));
	dmarc_auth_add(&a, "spf=fail smtp.mailfrom=x@example.com", true);
	dmarc_auth_add(&a, "dkim=pass header.d=example.com header.s=s1", false);
	dmarc_evaluate(small, "example.com", false, &r, &a, 0, &o);
	memset(&in, 0, sizeof(in));
	in.time = 1700000000;
	in.source_ip = "192.0.2.1";
	in.header_from = "example.com";
	in.envelope_from = "x@example.com\xff\"\n";
	in.policy_domain = "example.com";
	in.message_id = "ABC123";
	in.rec = &r;
	in.auth = &a;
	in.out = &o;
	line = dmarc_report_line(&in);
	assert_non_null(line);
	assert_int_equal(line[strlen(line) - 1], '\n');
	assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);
	j = json_loads(line, 0, &jerr);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "dmarc")),
	                    "pass");
	assert_string_equal(
	    json_string_value(json_object_get(j, "envelope_from")),
	    "x@example.com?\"?");
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(j, "policy"), "rua")),
	                    "mailto:agg@example.com");
	assert_true(json_is_false(
	    json_object_get(json_object_get(j, "spf"), "aligned")));
	assert_true(json_is_true(json_object_get(
	    json_array_get(json_object_get(j, "dkim"), 0), "aligned")));
	json_decref(j);

	dmarc_report_file_name(1700000000, name, sizeof(name));
	assert_string_equal(name, "2023-11-14.jsonl");
	assert_non_null(mkdtemp(dir));
	(void)snprintf(path, sizeof(path), "%s/dmarc", dir);
	assert_int_equal(dmarc_report_append(path, name, line), 0);
	assert_int_equal(dmarc_report_append(path, name, line), 0);
	(void)snprintf(path, sizeof(path), "%s/dmarc/%s", dir, name);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	(void)fclose(f);
	assert_int_equal(n, 2 * strlen(line));
	assert_int_equal(dmarc_report_append("/proc/no/such", name, line) != 0,
	                 1);
	(void)unlink(path);
	(void)snprintf(path, sizeof(path), "%s/dmarc", dir);
	(void)rmdir(path);
	(void)rmdir(dir);
	free(line);
}

/* ---- random inputs ---------------------------------------------------- */

static uint32_t rnd_state = 4242;

static uint32_t
rnd(void)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return rnd_state >> 8;
}

/* The parsers on mutated and random input: no crash (ASan), bounded. */
static void
test_random_inputs(void **state)
{
	static const char from_alpha[] = "From: <>@\"\\(),:;. \r\n\tab.c-x"
	                                 "\xc3\xbc\xff";
	static const char rec_alpha[] = "v=DMARC1;p=rejectquarantinenone "
	                                "sp=pct=100adkims;aspfrua=mailto:,";
	char text[400], out[DMARC_NAME_MAX + 1];
	struct dmarc_record r;
	struct dmarc_auth a;
	const char *why;
	size_t i, k, n;

	(void)state;
	memset(&a, 0, sizeof(a));
	for (i = 0; i < 100000; i++) {
		n = rnd() % 120;
		memcpy(text, "From: ", 6);
		for (k = 6; k < n + 6; k++)
			text[k] = from_alpha[rnd() % (sizeof(from_alpha) - 1)];
		text[n + 6] = '\0';
		if (dmarc_from_domain(text, n + 6, true, out, sizeof(out),
		                      &why) == 0)
			assert_true(strlen(out) <= DMARC_NAME_MAX);
		n = rnd() % 120;
		memcpy(text, "v=DMARC1;", 9);
		for (k = 9; k < n + 9; k++)
			text[k] = rec_alpha[rnd() % (sizeof(rec_alpha) - 1)];
		text[n + 9] = '\0';
		if (dmarc_record_parse(text, n + 9, &r, &why) == 0)
			assert_true(r.pct <= 100);
		dmarc_auth_add(&a, text, true);
		if (a.ndkim == DMARC_DKIM_MAX)
			memset(&a, 0, sizeof(a));
		for (k = 0; k < n; k++)
			text[k] = (char)(rnd() % 255 + 1);
		text[n] = '\0';
		if (dmarc_domain_to_ascii(text, n, out, sizeof(out)) == 0)
			assert_int_equal(
			    dmarc_org_domain(small, out, out, sizeof(out)), 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_to_ascii),
	    cmocka_unit_test(test_psl_small),
	    cmocka_unit_test(test_psl_system),
	    cmocka_unit_test(test_psl_errors),
	    cmocka_unit_test(test_record),
	    cmocka_unit_test(test_from),
	    cmocka_unit_test(test_auth_add),
	    cmocka_unit_test(test_alignment),
	    cmocka_unit_test(test_evaluate),
	    cmocka_unit_test(test_report),
	    cmocka_unit_test(test_random_inputs),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
