/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: SPF records, macro-strings and the Received-SPF field. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "spf.h"

/*
 * Input: one flag byte, then a TXT record as DNS would give it (NUL
 * bytes included). Flag bit 0 puts "v=spf1 " in front, so that the
 * fuzzer spends its time past the version; bit 1 makes the client an
 * IPv6 one; bit 2 gives the macro expansions a small buffer. Every
 * domain-spec of a parsed record is expanded as the evaluator would,
 * and the record's text and the input go into the Received-SPF field
 * and the trace result, which must stay one printable line.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

#define FUZZ_PREFIX "v=spf1 "

static struct spf_ip fuzz_v4, fuzz_v6;

static void
fuzz_expand(const char *spec, size_t len, bool exp,
            const struct spf_macro_ctx *ctx, bool small)
{
	char out[SPF_EXPAND_MAX + 1];
	size_t size = small ? 40 : sizeof(out), n;

	memset(out, 'x', sizeof(out));
	(void)spf_macro_uses(spec, len, 'p');
	if (spf_macro_expand(spec, len, exp, ctx, out, size) != 0)
		return;
	n = strlen(out);
	CHECK(n < size);
	if (exp)
		return;
	spf_domain_truncate(out);
	CHECK(strlen(out) <= n);
	CHECK(strlen(out) <= SPF_NAME_MAX || strchr(out, '.') == NULL);
	(void)spf_domain_valid(out, false);
	(void)spf_domain_valid(out, true);
}

/*
 * A field value or trace result: printable ASCII on one line, every
 * quoted-string and comment closed.
 */
static void
fuzz_check_line(const char *s, size_t size)
{
	size_t n = strlen(s), i;
	unsigned depth = 0;
	bool quoted = false;

	CHECK(n < size);
	for (i = 0; i < n; i++) {
		CHECK((unsigned char)s[i] >= 0x20 &&
		      (unsigned char)s[i] < 0x7f);
		if (quoted) {
			if (s[i] == '\\')
				CHECK(++i < n);
			else if (s[i] == '"')
				quoted = false;
		} else if (s[i] == '"') {
			quoted = true;
		} else if (s[i] == '(') {
			depth++;
		} else if (s[i] == ')') {
			CHECK(depth-- > 0);
		}
	}
	CHECK(!quoted && depth == 0);
}

static void
fuzz_fields(const struct spf_record *rec, const char *text, bool v6)
{
	static const char *const idents[] = {"mailfrom", "helo"};
	struct spf_outcome out;
	char buf[1024];
	size_t n;

	memset(&out, 0, sizeof(out));
	out.result = (enum spf_result)(strlen(text) % (SPF_RESULTS + 1));
	out.identity = idents[strlen(text) % 2];
	(void)snprintf(out.sender, sizeof(out.sender), "%s", text);
	(void)snprintf(out.domain, sizeof(out.domain), "%s",
	               strchr(text, '@') != NULL ? strchr(text, '@') + 1
	                                         : text);
	if (rec != NULL && rec->nterms > 0) {
		n = rec->terms[0].text_len;
		if (n >= sizeof(out.mechanism))
			n = sizeof(out.mechanism) - 1;
		memcpy(out.mechanism, rec->terms[0].text, n);
	}
	(void)snprintf(out.problem, sizeof(out.problem), "record of %s: x",
	               text);
	/* 900: the buffer of spf_filter.c; the receiver is our host name. */
	spf_received_field(&out, v6 ? "2001:db8::1" : "192.0.2.1", text,
	                   "mx.example.org", buf, 900);
	fuzz_check_line(buf, 900);
	spf_received_field(&out, "192.0.2.1", text, text, buf,
	                   strlen(text) % sizeof(buf));
	if (strlen(text) % sizeof(buf) > 0)
		fuzz_check_line(buf, strlen(text) % sizeof(buf));
	spf_trace_result(&out, strlen(text) % 3 == 0, text, buf, sizeof(buf));
	fuzz_check_line(buf, sizeof(buf));
	(void)spf_dot_atom(text, true);
	(void)spf_dot_atom(text, false);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spf_macro_ctx ctx;
	struct spf_record *rec;
	struct spf_ip ip;
	const char *why = NULL;
	char *txt, *text;
	size_t len, i, plen;
	unsigned flags;
	bool small;

	if (size < 1)
		return 0;
	flags = data[0];
	data++, size--;
	small = (flags & 4) != 0;
	plen = (flags & 1) ? sizeof(FUZZ_PREFIX) - 1 : 0;
	len = plen + size;
	txt = malloc(len + 1);
	if (txt == NULL)
		return 0;
	memcpy(txt, FUZZ_PREFIX, plen);
	memcpy(txt + plen, data, size);
	txt[len] = '\0';

	if (fuzz_v4.family == 0) {
		CHECK(spf_ip_parse("192.0.2.1", &fuzz_v4) == 0);
		CHECK(spf_ip_parse("2001:db8::1", &fuzz_v6) == 0);
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.sender = "user.name@sub.example.com";
	ctx.local = "user.name";
	ctx.sender_domain = "sub.example.com";
	ctx.domain = "sub.example.com";
	ctx.ip = (flags & 2) ? &fuzz_v6 : &fuzz_v4;
	ctx.ptr_name = (flags & 8) ? "mail.example.com" : NULL;
	ctx.helo = "mail.example.com";
	ctx.receiver = "mx.example.org";
	ctx.now = 1700000000;

	(void)spf_record_is_spf(txt, len);
	rec = spf_record_parse(txt, len, &why);
	if (rec == NULL) {
		CHECK(why != NULL);
	} else {
		CHECK(spf_record_is_spf(txt, len));
		CHECK(rec->nterms <= len / 2);
		for (i = 0; i < rec->nterms; i++) {
			const struct spf_term *t = &rec->terms[i];

			CHECK(t->text >= rec->text &&
			      t->text + t->text_len <= rec->text + len);
			CHECK(t->cidr4 <= 32 && t->cidr6 <= 128);
			CHECK(t->qualifier == SPF_PASS ||
			      t->qualifier == SPF_FAIL ||
			      t->qualifier == SPF_SOFTFAIL ||
			      t->qualifier == SPF_NEUTRAL);
			(void)spf_term_is_dns(t);
			if (t->mech == SPF_MECH_IP4 ||
			    t->mech == SPF_MECH_IP6) {
				CHECK(t->domain_spec == NULL);
				CHECK(spf_ip_match(&t->net, &t->net,
				                   t->mech == SPF_MECH_IP4
				                       ? t->cidr4
				                       : t->cidr6));
				(void)spf_ip_match(ctx.ip, &t->net,
				                   t->mech == SPF_MECH_IP4
				                       ? t->cidr4
				                       : t->cidr6);
			}
			if (t->domain_spec == NULL)
				continue;
			CHECK(t->domain_spec >= rec->text &&
			      t->domain_spec + t->domain_len <=
			          rec->text + len);
			CHECK(spf_domain_spec_check(t->domain_spec,
			                            t->domain_len, &why) == 0);
			fuzz_expand(t->domain_spec, t->domain_len, false, &ctx,
			            small);
		}
		if (rec->redirect != NULL)
			fuzz_expand(rec->redirect, rec->redirect_len, false,
			            &ctx, small);
		if (rec->exp != NULL)
			fuzz_expand(rec->exp, rec->exp_len, false, &ctx, small);
	}

	/* The record text itself as an explanation (section 6.2). */
	text = txt + plen;
	if (spf_macro_check(text, size, true, &why) == 0)
		fuzz_expand(text, size, true, &ctx, small);
	if (spf_domain_spec_check(text, size, &why) == 0)
		fuzz_expand(text, size, false, &ctx, small);
	if (spf_ip_parse(text, &ip) == 0) {
		char out[64];

		CHECK(ip.family == AF_INET || ip.family == AF_INET6);
		spf_ip_format(&ip, out, sizeof(out));
		CHECK(strlen(out) < sizeof(out));
	}
	fuzz_fields(rec, text, (flags & 2) != 0);
	spf_record_free(rec);
	free(txt);
	return 0;
}
