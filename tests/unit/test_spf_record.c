/* SPDX-License-Identifier: MIT */
/* Unit tests of the SPF record parser and macro expansion (modules/spf). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "spf.h"

/* ---- record selection and syntax -------------------------------------- */

static void
test_is_spf(void **state)
{
	(void)state;
	assert_true(spf_record_is_spf("v=spf1", 6));
	assert_true(spf_record_is_spf("v=spf1 -all", 11));
	assert_true(spf_record_is_spf("V=SpF1 ~all", 11));
	assert_false(spf_record_is_spf("v=spf10", 7));
	assert_false(spf_record_is_spf("v=spf1mx", 8)); /* joined strings */
	assert_false(spf_record_is_spf("v=spf", 5));
	assert_false(spf_record_is_spf(" v=spf1", 7));
	assert_false(spf_record_is_spf("v=spf1\t-all", 11));
	assert_false(spf_record_is_spf("spf2.0/pra", 10));
}

/* Records that must parse (ok) or be a permerror (!ok). */
static const struct {
	const char *text;
	bool ok;
} records[] = {
    {"v=spf1", true},
    {"v=spf1 ", true},
    {"v=spf1  a   -all  ", true},
    {"v=spf1 +all", true},
    {"v=spf1 ?all", true},
    {"v=spf1 all -all", true},
    {"v=spf1 -all.", false},
    {"v=spf1 -all:foobar", false},
    {"v=spf1 -all/8", false},
    {"v=spf1 ip4:1.2.3.4 -all moo", false},
    {"v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all", true},
    {"v=spf1 moo.cow/far_out=man:dog/cat ip4:1.2.3.4 -all", false},
    {"v=spf1 moo.cow:far_out=man:dog/cat ip4:1.2.3.4 -all", false},
    {"v=spf1 redirect=t5.example.com ~all", true},
    {"v=spf1 ip4:1.2.3.4 redirect:t2.example.com", false},
    {"v=spf1 a:foo-bar -all", false},
    {"v=spf1 a:mail.example...com -all", true},
    {"v=spf1 a:%{H}.bar -all", true},
    {"v=spf1 ptr/0 -all", false},
    {"v=spf1 ptr:example.com -all", true},
    {"v=spf1 ptr:", false},
    {"v=spf1 a//33 -all", true},
    {"v=spf1 a/33 -all", false},
    {"v=spf1 a//129 -all", false},
    {"v=spf1 a/24//64 -all", true},
    {"v=spf1 a/24/64 -all", false},
    {"v=spf1 a:example.com:8080", false},
    {"v=spf1 a:foo.example.com/24", true},
    {"v=spf1 a:foo:bar/baz.example.com", true},
    {"v=spf1 a:example.-com", false},
    {"v=spf1 a:", false},
    {"v=spf1 a:111.222.33.44", false},
    {"v=spf1 a:abc.123", false},
    {"v=spf1 a:museum", false},
    {"v=spf1 a:museum.", false},
    {"v=spf1 a:foo.example.xn--zckzah -all", true},
    {"v=spf1 include:ip5.example.com ~all", true},
    {"v=spf1 include +all", false},
    {"v=spf1 include: -all", false},
    {"v=spf1 include:ip5.example.com/24 -all", false},
    {"v=spf1 mx//0 -all", true},
    {"v=spf1 mx: -all", false},
    {"v=spf1 exists:", false},
    {"v=spf1 exists", false},
    {"v=spf1 exists:mail.example.com/24", false},
    {"v=spf1 ip4:1.1.1.1/0 -all", true},
    {"v=spf1 ip4:1.2.3.4/32 -all", true},
    {"v=spf1 ip4:1.2.3.4/33 -all", false},
    {"v=spf1 ip4:1.2.3.4/032 -all", false},
    {"v=spf1 ip4", false},
    {"v=spf1 ip4:1.2.3.4//32", false},
    {"v=spf1 ip4:1.2.3.4:8080", false},
    {"v=spf1 ip4:1.2.3", false},
    {"v=spf1 ip4:01.2.3.4", false},
    {"v=spf1 ip4:1.2.3.256", false},
    {"v=spf1 -all ip6", false},
    {"v=spf1 ip6:::1.1.1.1/0", true},
    {"v=spf1 ip6:::1.1.1.1/129", false},
    {"v=spf1 ip6:::1.1.1.1//33", false},
    {"v=spf1 ip6:Cafe:Babe:8000::/33", true},
    {"v=spf1 ip6::CAFE::BABE", false},
    {"v=spf1 exp=exp1.example.com redirect=e2.example.com", true},
    {"v=spf1 1up=foo", false},
    {"v=spf1 =all", false},
    {"v=spf1 -all foo=%abc", false},
    {"v=spf1 exp= -all", false},
    {"v=spf1 exp=e13msg.example.com -all exp=e11msg.example.com", false},
    {"v=spf1 redirect=e12.example.com -all redirect=e12.example.com", false},
    {"v=spf1 exp=-all", false},
    {"v=spf1 redirect=-all ?all", false},
    {"v=spf1 ?all redirect=", false},
    {"v=spf1 default=pass", true},
    {"v=spf1 default=+", true},
    {"v=spf1 -all exp=%{r}.example.com", false},
    {"v=spf1 -exists:%(ir).sbl.example.com ?all", false},
    {"v=spf1 exists:foo%(ir).sbl.example.com ?all", false},
    {"v=spf1 exists:foo%.sbl.example.com ?all", false},
    {"v=spf1 a:macro%%percent%_%_space%-url-space.example.com -all", true},
    {"v=spf1 a:%{a}.example.com -all", false},
    {"v=spf1 exists:%{i}.%{l2r-}.user.%{d2}", true},
    {"v=spf1 exists:%{l2r+-}.user.%{d2}", true},
    {"v=spf1 exists:%{l0}.example.com", false},
    {"v=spf1 exists:%{d}", true},
    {"v=spf1 exists:%%", true},
    {"v=spf1 a:%{d", false},
    {"v=spf1 unknown", false},
    {"v=spf1 a:ctrl.example.com\rptr -all", false},
    {"v=spf1 a:\xEF\xBB\xBFgarbage.example.net -all", false},
    {"v=spf1 \x80"
     "a:example.net -all",
     false},
    {"v=spf1 a:example.net \x96"
     "all",
     false},
};

static void
test_parse_table(void **state)
{
	const char *why;
	struct spf_record *rec;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(records) / sizeof(records[0]); i++) {
		why = NULL;
		rec = spf_record_parse(records[i].text, strlen(records[i].text),
		                       &why);
		if ((rec != NULL) != records[i].ok)
			fail_msg("\"%s\": expected %s, got %s (%s)",
			         records[i].text,
			         records[i].ok ? "ok" : "error",
			         rec != NULL ? "ok" : "error",
			         why != NULL ? why : "-");
		if (rec == NULL)
			assert_non_null(why);
		spf_record_free(rec);
	}
}

static void
test_parse_nul(void **state)
{
	static const char text[] = "v=spf1 a:foo.example.com\0";
	const char *why;

	(void)state;
	assert_null(spf_record_parse(text, sizeof(text) - 1, &why));
	assert_string_equal(why, "invalid character in record");
}

static void
test_parse_terms(void **state)
{
	const char *text = "v=spf1 ~a:mail.example.com/24//64 mx ?ptr "
	                   "-ip4:192.0.2.0/24 ip6:2001:db8::/32 "
	                   "include:_spf.example.net exists:%{i}.x.example "
	                   "exp=why.example.com redirect=other.example";
	const struct spf_term *t;
	struct spf_record *rec;
	const char *why;

	(void)state;
	rec = spf_record_parse(text, strlen(text), &why);
	assert_non_null(rec);
	assert_int_equal(rec->nterms, 7);
	t = &rec->terms[0];
	assert_int_equal(t->mech, SPF_MECH_A);
	assert_int_equal(t->qualifier, SPF_SOFTFAIL);
	assert_int_equal(t->cidr4, 24);
	assert_int_equal(t->cidr6, 64);
	assert_int_equal(t->domain_len, strlen("mail.example.com"));
	assert_memory_equal(t->domain_spec, "mail.example.com", t->domain_len);
	assert_int_equal(t->text_len, strlen("~a:mail.example.com/24//64"));
	t = &rec->terms[1];
	assert_int_equal(t->mech, SPF_MECH_MX);
	assert_int_equal(t->qualifier, SPF_PASS);
	assert_null(t->domain_spec);
	assert_int_equal(t->cidr4, 32);
	assert_int_equal(t->cidr6, 128);
	assert_int_equal(rec->terms[2].mech, SPF_MECH_PTR);
	assert_int_equal(rec->terms[2].qualifier, SPF_NEUTRAL);
	t = &rec->terms[3];
	assert_int_equal(t->mech, SPF_MECH_IP4);
	assert_int_equal(t->qualifier, SPF_FAIL);
	assert_int_equal(t->cidr4, 24);
	assert_int_equal(t->net.family, AF_INET);
	assert_int_equal(t->net.addr[0], 192);
	t = &rec->terms[4];
	assert_int_equal(t->mech, SPF_MECH_IP6);
	assert_int_equal(t->cidr6, 32);
	assert_int_equal(t->net.family, AF_INET6);
	assert_int_equal(rec->terms[5].mech, SPF_MECH_INCLUDE);
	assert_int_equal(rec->terms[6].mech, SPF_MECH_EXISTS);
	assert_true(spf_term_is_dns(&rec->terms[6]));
	assert_false(spf_term_is_dns(&rec->terms[3]));
	assert_int_equal(rec->exp_len, strlen("why.example.com"));
	assert_int_equal(rec->redirect_len, strlen("other.example"));
	assert_memory_equal(rec->redirect, "other.example", rec->redirect_len);
	spf_record_free(rec);
}

static void
test_parse_case(void **state)
{
	const char *text = "v=SPF1 -ALL Exp=x.example.COM";
	struct spf_record *rec;
	const char *why;

	(void)state;
	rec = spf_record_parse(text, strlen(text), &why);
	assert_non_null(rec);
	assert_int_equal(rec->nterms, 1);
	assert_int_equal(rec->terms[0].mech, SPF_MECH_ALL);
	assert_non_null(rec->exp);
	spf_record_free(rec);
}

static void
test_parse_long(void **state)
{
	char *text = malloc(SPF_RECORD_MAX + 64);
	struct spf_record *rec;
	const char *why;
	size_t n;

	(void)state;
	assert_non_null(text);
	n = (size_t)snprintf(text, 16, "v=spf1");
	while (n + 16 < SPF_RECORD_MAX)
		n +=
		    (size_t)sprintf(text + n, " ip4:10.0.0.%d", (int)(n % 200));
	rec = spf_record_parse(text, n, &why);
	assert_non_null(rec);
	assert_true(rec->nterms > 500);
	spf_record_free(rec);
	memset(text + n, 'a', 32);
	assert_null(spf_record_parse(text, SPF_RECORD_MAX + 1, &why));
	assert_string_equal(why, "record too long");
	free(text);
}

/* ---- addresses -------------------------------------------------------- */

static void
test_ip(void **state)
{
	struct spf_ip a, net;
	char text[64];

	(void)state;
	assert_int_equal(spf_ip_parse("192.0.2.3", &a), 0);
	assert_int_equal(a.family, AF_INET);
	assert_int_equal(spf_ip_parse("::ffff:192.0.2.3", &a), 0);
	assert_int_equal(a.family, AF_INET); /* mapped: IPv4 */
	spf_ip_format(&a, text, sizeof(text));
	assert_string_equal(text, "192.0.2.3");
	assert_int_equal(spf_ip_parse("192.0.2.0", &net), 0);
	assert_true(spf_ip_match(&a, &net, 24));
	assert_true(spf_ip_match(&a, &net, 30));
	assert_false(spf_ip_match(&a, &net, 31));
	assert_true(spf_ip_match(&a, &net, 0));
	assert_int_equal(spf_ip_parse("2001:DB8::CB01", &a), 0);
	assert_int_equal(a.family, AF_INET6);
	spf_ip_format(&a, text, sizeof(text));
	assert_string_equal(text, "2001:db8::cb01");
	assert_false(spf_ip_match(&a, &net, 0)); /* families differ */
	assert_int_equal(spf_ip_parse("2001:db8::", &net), 0);
	assert_true(spf_ip_match(&a, &net, 32));
	assert_true(spf_ip_match(&a, &net, 112));
	assert_false(spf_ip_match(&a, &net, 128));
	assert_int_equal(spf_ip_parse("2001:db8:8000::", &net), 0);
	assert_false(spf_ip_match(&a, &net, 33));
	assert_int_equal(spf_ip_parse("not an address", &a), -1);
	assert_int_equal(spf_ip_parse(NULL, &a), -1);
}

/* ---- macros ----------------------------------------------------------- */

static struct spf_ip ip4, ip6;

static void
ctx_init(struct spf_macro_ctx *ctx, const struct spf_ip *ip)
{
	memset(ctx, 0, sizeof(*ctx));
	/* The example of RFC 7208 section 7.4. */
	ctx->sender = "strong-bad@email.example.com";
	ctx->local = "strong-bad";
	ctx->sender_domain = "email.example.com";
	ctx->domain = "email.example.com";
	ctx->ip = ip;
	ctx->ptr_name = "mx.example.org";
	ctx->helo = "mx.example.org";
	ctx->receiver = "mail.example.test";
	ctx->now = 1700000000;
}

static const struct {
	const char *in;
	const char *out;
	bool v6;
	bool exp;
} expansions[] = {
    {"%{s}", "strong-bad@email.example.com"},
    {"%{o}", "email.example.com"},
    {"%{d}", "email.example.com"},
    {"%{d4}", "email.example.com"},
    {"%{d3}", "email.example.com"},
    {"%{d2}", "example.com"},
    {"%{d1}", "com"},
    {"%{dr}", "com.example.email"},
    {"%{d2r}", "example.email"},
    {"%{l}", "strong-bad"},
    {"%{l-}", "strong.bad"},
    {"%{lr}", "strong-bad"},
    {"%{lr-}", "bad.strong"},
    {"%{l1r-}", "strong"},
    {"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
    {"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
    {"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
     "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
    {"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
     "3.2.0.192.in-addr.strong.lp._spf.example.com"},
    {"%{d2}.trusted-domains.example.net",
     "example.com.trusted-domains.example.net"},
    {"%{ir}.%{v}._spf.%{d2}",
     "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6."
     "_spf.example.com",
     true},
    {"%{i}", "192.0.2.3"},
    {"%{c}", "2001:db8::cb01", true, true},
    {"%{v}", "ip6", true},
    {"%{p}", "mx.example.org"},
    {"%{h}", "mx.example.org"},
    {"%{r}", "mail.example.test", false, true},
    {"%{t}", "1700000000", false, true},
    {"%%%_%-", "% %20"},
    {"a%{d99}b", "aemail.example.comb"},
    {"%{d2000}", "email.example.com"},
    {"%{L}", "strong-bad"},
    {"%{S}", "strong-bad%40email.example.com"},
    {"%{D2R}", "example.email"},
    {"%{l2r-+}", "bad.strong"},
    {"%{d2.}", "example.com"},
    {"The %{d} policy", "The email.example.com policy", false, true},
};

static void
test_expand_table(void **state)
{
	struct spf_macro_ctx ctx;
	char out[SPF_EXPAND_MAX];
	const char *why;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(expansions) / sizeof(expansions[0]); i++) {
		ctx_init(&ctx, expansions[i].v6 ? &ip6 : &ip4);
		if (spf_macro_check(expansions[i].in, strlen(expansions[i].in),
		                    expansions[i].exp, &why) != 0)
			fail_msg("\"%s\": check failed: %s", expansions[i].in,
			         why);
		assert_int_equal(
		    spf_macro_expand(expansions[i].in, strlen(expansions[i].in),
		                     expansions[i].exp, &ctx, out, sizeof(out)),
		    0);
		if (strcmp(out, expansions[i].out) != 0)
			fail_msg("\"%s\": expected \"%s\", got \"%s\"",
			         expansions[i].in, expansions[i].out, out);
	}
}

static void
test_expand_url(void **state)
{
	struct spf_macro_ctx ctx;
	char out[256];
	const char *in = "http://example.com/why.html?l=%{L}";
	const char *why;

	(void)state;
	ctx_init(&ctx, &ip4);
	ctx.local = "~jack&jill=up-a_b3.c";
	assert_int_equal(spf_macro_check(in, strlen(in), true, &why), 0);
	assert_int_equal(
	    spf_macro_expand(in, strlen(in), true, &ctx, out, sizeof(out)), 0);
	assert_string_equal(out,
	                    "http://example.com/why.html?l=~jack%26jill%3Dup-a_"
	                    "b3.c");
}

static void
test_expand_unknown(void **state)
{
	struct spf_macro_ctx ctx;
	char out[64];

	(void)state;
	ctx_init(&ctx, &ip4);
	ctx.ptr_name = NULL;
	ctx.helo = "";
	assert_int_equal(
	    spf_macro_expand("%{p}.%{h}", 9, false, &ctx, out, sizeof(out)), 0);
	assert_string_equal(out, "unknown.unknown");
}

static void
test_expand_overflow(void **state)
{
	struct spf_macro_ctx ctx;
	char out[16];

	(void)state;
	ctx_init(&ctx, &ip4);
	assert_int_equal(
	    spf_macro_expand("%{s}", 4, false, &ctx, out, sizeof(out)), -1);
	assert_int_equal(spf_macro_expand("0123456789abcdef", 16, false, &ctx,
	                                  out, sizeof(out)),
	                 -1);
	assert_int_equal(spf_macro_expand("0123456789abcde", 15, false, &ctx,
	                                  out, sizeof(out)),
	                 0);
}

/* Many parts: every one is kept up to the documented bound. */
static void
test_expand_many_parts(void **state)
{
	struct spf_macro_ctx ctx;
	char local[600], out[SPF_EXPAND_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < 299; i++) {
		local[2 * i] = 'x';
		local[2 * i + 1] = '-';
	}
	local[598] = 'y';
	local[599] = '\0';
	ctx_init(&ctx, &ip4);
	ctx.local = local;
	assert_int_equal(
	    spf_macro_expand("%{l1-}", 6, false, &ctx, out, sizeof(out)), 0);
	assert_string_equal(out + strlen(out) - 1, "y");
	assert_int_equal(
	    spf_macro_expand("%{l1r-}", 7, false, &ctx, out, sizeof(out)), 0);
	assert_string_equal(out, "x");
}

static void
test_macro_syntax(void **state)
{
	static const struct {
		const char *in;
		bool exp;
		bool ok;
	} cases[] = {
	    {"%{c}", false, false},        {"%{c}", true, true},
	    {"%{r}", false, false},        {"%{t}", false, false},
	    {"%{x}", true, false},         {"%{d0}", false, false},
	    {"%{d", false, false},         {"%{}", false, false},
	    {"%", false, false},           {"%x", false, false},
	    {"a b", false, false},         {"a b", true, true},
	    {"%{dr.-+,/_=}", false, true}, {"%{d2r}", false, true},
	    {"%{d2R}", false, true},       {"%{drr}", false, false},
	    {"%{d:}", false, false},       {"\xc3\xa9", true, false},
	};
	const char *why;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = spf_macro_check(cases[i].in, strlen(cases[i].in),
		                         cases[i].exp, &why);

		if ((rc == 0) != cases[i].ok)
			fail_msg("\"%s\" (exp %d): expected %s", cases[i].in,
			         cases[i].exp, cases[i].ok ? "ok" : "error");
	}
	assert_true(spf_macro_uses("a.%{p}.b", 8, 'p'));
	assert_true(spf_macro_uses("%{P2}", 5, 'p'));
	assert_false(spf_macro_uses("%%p.%{d}", 8, 'p'));
}

static void
test_domain_spec(void **state)
{
	static const struct {
		const char *in;
		bool ok;
	} cases[] = {
	    {"example.com", true},
	    {"example.com.", true},
	    {"%{d}", true},
	    {"%{d}.", false},
	    {"x.%{d}", true},
	    {"%%", true},
	    {"%-", true},
	    {"foo", false},
	    {"foo.", false},
	    {".com", true},
	    {"foo.123", false},
	    {"foo.1-2", true},
	    {"foo.-com", false},
	    {"foo.com-", false},
	    {"foo.xn--zckzah", true},
	    {"foo.com/24", false},
	    {"example.com:8080", false},
	    {"", false},
	    {"a.b.c..d.com", true},
	};
	const char *why;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = spf_domain_spec_check(cases[i].in, strlen(cases[i].in),
		                               &why);

		if ((rc == 0) != cases[i].ok)
			fail_msg("\"%s\": expected %s", cases[i].in,
			         cases[i].ok ? "ok" : "error");
	}
}

static void
test_domain_names(void **state)
{
	char name[600];
	size_t i, n = 0;

	(void)state;
	/* Section 7.3: drop labels from the left until 253 fit. */
	for (i = 0; i < 9; i++)
		n +=
		    (size_t)sprintf(name + n, "somewhat.long.exp.example.com.");
	(void)sprintf(name + n, "example.com");
	spf_domain_truncate(name);
	assert_true(strlen(name) <= SPF_NAME_MAX);
	assert_true(strlen(name) > SPF_NAME_MAX - 64);
	assert_true(spf_domain_valid(name, false));
	assert_string_equal(name + strlen(name) - 12, ".example.com");
	(void)strcpy(name, "example.com.");
	spf_domain_truncate(name);
	assert_string_equal(name, "example.com");

	assert_true(spf_domain_valid("example.com", true));
	assert_true(spf_domain_valid("_spf.example.com.", true));
	assert_false(spf_domain_valid("museum", true));
	assert_true(spf_domain_valid("museum", false));
	assert_false(spf_domain_valid("[1.2.3.5]", true));
	assert_false(spf_domain_valid("a..example.com", true));
	assert_false(spf_domain_valid("a..example.com", false));
	assert_true(spf_domain_valid("foo:bar/baz.example.com", false));
	assert_true(spf_domain_valid("foo bar.example.com", false));
	assert_false(spf_domain_valid("foo bar.example.com", true));
	assert_false(spf_domain_valid("foo\tbar.example.com", false));
	assert_false(spf_domain_valid("", false));
	memset(name, 'a', 64);
	(void)strcpy(name + 64, ".example.com");
	assert_false(spf_domain_valid(name, false));
	(void)strcpy(name + 63, ".example.com");
	assert_true(spf_domain_valid(name, true));
}

static void
test_result_names(void **state)
{
	(void)state;
	assert_string_equal(spf_result_name(SPF_NONE), "none");
	assert_string_equal(spf_result_name(SPF_SOFTFAIL), "softfail");
	assert_string_equal(spf_result_name(SPF_PERMERROR), "permerror");
	assert_string_equal(spf_result_name((enum spf_result)99), "permerror");
}

/* ---- fields ----------------------------------------------------------- */

static void
outcome_init(struct spf_outcome *out, enum spf_result r, const char *sender,
             const char *domain)
{
	memset(out, 0, sizeof(*out));
	out->result = r;
	out->identity = "mailfrom";
	(void)snprintf(out->sender, sizeof(out->sender), "%s", sender);
	(void)snprintf(out->domain, sizeof(out->domain), "%s", domain);
}

static void
test_received_field(void **state)
{
	struct spf_outcome out;
	char buf[900];

	(void)state;
	outcome_init(&out, SPF_PASS, "myname@example.com", "example.com");
	(void)strcpy(out.mechanism, "ip4:192.0.2.0/24");
	spf_received_field(&out, "192.0.2.1", "foo.example.com",
	                   "mybox.example.org", buf, sizeof(buf));
	assert_string_equal(
	    buf, "pass (mybox.example.org: domain of "
	         "myname@example.com designates 192.0.2.1 as "
	         "permitted sender) client-ip=192.0.2.1; "
	         "envelope-from=myname@example.com; "
	         "helo=foo.example.com; receiver=mybox.example.org; "
	         "identity=mailfrom; mechanism=\"ip4:192.0.2.0/24\"");

	/* Client words that could break the field are quoted or left out. */
	outcome_init(&out, SPF_PERMERROR, "\"a;b\\\"c)\r\n\"@example.com",
	             "example.com");
	(void)strcpy(out.problem, "more than 10 DNS lookups");
	spf_received_field(&out, "2001:db8::1", "evil\"; x=(y", "mx.example",
	                   buf, sizeof(buf));
	assert_string_equal(buf,
	                    "permerror (mx.example: permanent error in "
	                    "processing domain of example.com) "
	                    "client-ip=\"2001:db8::1\"; "
	                    "envelope-from=\"\\\"a;b\\\\\\\"c)??\\\"@example."
	                    "com\"; helo=\"evil\\\"; x=(y\"; "
	                    "receiver=mx.example; identity=mailfrom; "
	                    "problem=\"more than 10 DNS lookups\"");
	assert_null(strchr(buf, '\r'));
	assert_null(strchr(buf, '\n'));

	/* A long HELO is cut, the field stays under 900 bytes. */
	{
		char helo[1000];

		memset(helo, 'h', sizeof(helo) - 1);
		helo[sizeof(helo) - 1] = '\0';
		outcome_init(&out, SPF_NONE, "", "");
		spf_received_field(&out, "192.0.2.1", helo, "bad host!", buf,
		                   sizeof(buf));
		assert_true(strlen(buf) < 700);
		assert_non_null(strstr(buf, "...\""));
		assert_non_null(strstr(buf, "(unknown: domain of the sender"));
	}
}

/* Whether every quoted-string and comment of @s is closed. */
static bool
field_well_formed(const char *s)
{
	bool quoted = false;
	unsigned depth = 0;

	for (; *s != '\0'; s++) {
		if (quoted) {
			if (*s == '\\' && *++s == '\0')
				return false;
			else if (*s == '"')
				quoted = false;
		} else if (*s == '"') {
			quoted = true;
		} else if (*s == '(') {
			depth++;
		} else if (*s == ')') {
			if (depth-- == 0)
				return false;
		}
	}
	return !quoted && depth == 0;
}

/*
 * A sender and a HELO name that need escaping overflow 900 bytes: the
 * field used to be cut inside the quoted HELO value (found by
 * tests/fuzz/fuzz_spf_record). Pairs that do not fit are left out whole.
 */
static void
test_received_field_too_long(void **state)
{
	struct spf_outcome out;
	char buf[900], sender[300], helo[400];

	(void)state;
	memset(sender, '"', sizeof(sender) - 1);
	sender[sizeof(sender) - 1] = '\0';
	memset(helo, '\\', sizeof(helo) - 1);
	helo[sizeof(helo) - 1] = '\0';
	outcome_init(&out, SPF_SOFTFAIL, sender,
	             "a-rather-long-domain-name-for-the-comment.example.com");
	(void)strcpy(out.mechanism, "~all");
	spf_received_field(&out, "2001:db8:1234:5678:9abc:def0:1234:5678", helo,
	                   "mx.example.org", buf, sizeof(buf));
	assert_true(strlen(buf) < sizeof(buf));
	assert_true(field_well_formed(buf));
	assert_non_null(strstr(buf, "envelope-from=\"\\\"\\\""));
	assert_null(strstr(buf, "helo="));
	assert_int_not_equal(buf[strlen(buf) - 1], ';');

	/* A buffer too small for the comment gets nothing after it. */
	spf_received_field(&out, "192.0.2.1", "mx.example", "mx.example.org",
	                   buf, 60);
	assert_true(strlen(buf) < 60);
	assert_true(field_well_formed(buf));
}

static void
test_trace_result(void **state)
{
	struct spf_outcome out;
	char buf[257];

	(void)state;
	outcome_init(&out, SPF_PASS, "a.b+c@example.org", "example.org");
	spf_trace_result(&out, false, "mx.example.org", buf, sizeof(buf));
	assert_string_equal(buf, "spf=pass smtp.mailfrom=a.b+c@example.org");
	outcome_init(&out, SPF_FAIL, "\"x y\"@example.org", "example.org");
	spf_trace_result(&out, false, "mx.example.org", buf, sizeof(buf));
	assert_string_equal(buf, "spf=fail smtp.mailfrom=example.org");
	outcome_init(&out, SPF_NONE, "postmaster@mx.example.org",
	             "mx.example.org");
	spf_trace_result(&out, true, "mx.example.org", buf, sizeof(buf));
	assert_string_equal(buf, "spf=none smtp.helo=mx.example.org");
	out.identity = "helo";
	spf_trace_result(&out, false, "[1.2.3.4]", buf, sizeof(buf));
	assert_string_equal(buf, "spf=none");
	assert_true(spf_dot_atom("a.b", false));
	assert_false(spf_dot_atom("a..b", false));
	assert_false(spf_dot_atom(".a", false));
	assert_false(spf_dot_atom("a@b", false));
	assert_true(spf_dot_atom("a@b", true));
	assert_false(spf_dot_atom("a@@b", true));
	assert_false(spf_dot_atom("a@b@c", true));
	assert_false(spf_dot_atom("a;b@c", true));
}

/* ---- random inputs ---------------------------------------------------- */

static uint32_t rnd_state = 12345;

static uint32_t
rnd(void)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return rnd_state >> 8;
}

/*
 * Mutations of real records and strings over the syntax's alphabet: the
 * parser and the expansion must never crash (ASan run), and whatever
 * parses must expand within its bounds.
 */
static void
test_random_records(void **state)
{
	static const char alphabet[] = "v=spf1 :/%{}.-+~?ailmxptrsodhcve0123"
	                               "456789_,=AI\x80\x01\r";
	struct spf_macro_ctx ctx;
	char text[300], out[SPF_EXPAND_MAX];
	struct spf_record *rec;
	const char *why;
	size_t i, k, n, base;

	(void)state;
	ctx_init(&ctx, &ip6);
	for (i = 0; i < 200000; i++) {
		if (i % 2 == 0) {
			base = rnd() % (sizeof(records) / sizeof(records[0]));
			n = strlen(records[base].text);
			memcpy(text, records[base].text, n);
			for (k = rnd() % 4 + 1; k > 0 && n > 0; k--)
				text[rnd() % n] =
				    alphabet[rnd() % (sizeof(alphabet) - 1)];
		} else {
			n = 7 + rnd() % 60;
			memcpy(text, "v=spf1 ", 7);
			for (k = 7; k < n; k++)
				text[k] =
				    alphabet[rnd() % (sizeof(alphabet) - 1)];
		}
		text[n] = '\0';
		rec = spf_record_parse(text, n, &why);
		if (rec == NULL) {
			assert_non_null(why);
			continue;
		}
		for (k = 0; k < rec->nterms; k++) {
			const struct spf_term *t = &rec->terms[k];

			if (t->domain_spec != NULL &&
			    spf_macro_expand(t->domain_spec, t->domain_len,
			                     false, &ctx, out,
			                     sizeof(out)) == 0)
				spf_domain_truncate(out);
		}
		spf_record_free(rec);
		/* Any string as explanation text. */
		if (spf_macro_check(text, n, true, &why) == 0)
			assert_int_equal(spf_macro_expand(text, n, true, &ctx,
			                                  out, sizeof(out)),
			                 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_is_spf),
	    cmocka_unit_test(test_parse_table),
	    cmocka_unit_test(test_parse_nul),
	    cmocka_unit_test(test_parse_terms),
	    cmocka_unit_test(test_parse_case),
	    cmocka_unit_test(test_parse_long),
	    cmocka_unit_test(test_ip),
	    cmocka_unit_test(test_expand_table),
	    cmocka_unit_test(test_expand_url),
	    cmocka_unit_test(test_expand_unknown),
	    cmocka_unit_test(test_expand_overflow),
	    cmocka_unit_test(test_expand_many_parts),
	    cmocka_unit_test(test_macro_syntax),
	    cmocka_unit_test(test_domain_spec),
	    cmocka_unit_test(test_domain_names),
	    cmocka_unit_test(test_result_names),
	    cmocka_unit_test(test_received_field),
	    cmocka_unit_test(test_received_field_too_long),
	    cmocka_unit_test(test_trace_result),
	    cmocka_unit_test(test_random_records),
	};

	if (spf_ip_parse("192.0.2.3", &ip4) != 0 ||
	    spf_ip_parse("2001:db8::cb01", &ip6) != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
