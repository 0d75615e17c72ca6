/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: DMARC records, From fields, PSL and trace results. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dmarc.h"

/*
 * Input: one flag byte, then text that is at once a DMARC TXT record, a
 * header section (for the From domain), a domain name (for Punycode), a
 * filter trace result (for SPF/DKIM results) and, with flag bit 0, a
 * Public Suffix List. The From domain and the trace's domains go through
 * the Organizational Domain and the policy with the record found.
 *
 * The list used otherwise is the system's when there is one
 * (/usr/share/publicsuffix, Debian's publicsuffix package), else a few
 * rules that have each kind of rule.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

static const char fuzz_psl_text[] = "// a few rules\n"
                                    "com\norg\nuk\nco.uk\njp\n"
                                    "*.kawasaki.jp\n!city.kawasaki.jp\n"
                                    "*.ck\n!www.ck\nxn--p1ai\n";

static struct dmarc_psl *fuzz_psl;

/* Lower-case letters, digits, '-', '_' in non-empty labels. */
static void
fuzz_check_domain(const char *d)
{
	size_t n = strlen(d), label = 0;

	CHECK(n > 0 && n <= DMARC_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		if (d[i] == '.') {
			CHECK(label > 0);
			label = 0;
			continue;
		}
		label++;
		CHECK((d[i] >= 'a' && d[i] <= 'z') ||
		      (d[i] >= '0' && d[i] <= '9') || d[i] == '-' ||
		      d[i] == '_');
	}
	CHECK(label > 0);
}

/* The Organizational Domain is @domain or one of its parent domains. */
static void
fuzz_check_org(const struct dmarc_psl *psl, const char *domain)
{
	char org[DMARC_NAME_MAX + 1];
	size_t n, o;

	if (dmarc_org_domain(psl, domain, org, sizeof(org)) != 0)
		return;
	n = strlen(domain);
	o = strlen(org);
	CHECK(o <= n);
	CHECK(strcmp(domain + n - o, org) == 0);
	CHECK(o == n || o == 0 || domain[n - o - 1] == '.');
	/* In place, as dmarc_aligned() may use it. */
	if (n < sizeof(org)) {
		char copy[DMARC_NAME_MAX + 1];

		memcpy(copy, domain, n + 1);
		CHECK(dmarc_org_domain(psl, copy, copy, sizeof(copy)) == 0);
		CHECK(strcmp(copy, org) == 0);
	}
}

static void
fuzz_check_auth(const struct dmarc_auth *a)
{
	CHECK(memchr(a->spf, '\0', sizeof(a->spf)) != NULL);
	CHECK(memchr(a->spf_domain, '\0', sizeof(a->spf_domain)) != NULL);
	CHECK(a->ndkim <= DMARC_DKIM_MAX);
	for (size_t i = 0; i < a->ndkim; i++) {
		CHECK(memchr(a->dkim[i].result, '\0',
		             sizeof(a->dkim[i].result)) != NULL);
		CHECK(memchr(a->dkim[i].domain, '\0',
		             sizeof(a->dkim[i].domain)) != NULL);
		CHECK(memchr(a->dkim[i].selector, '\0',
		             sizeof(a->dkim[i].selector)) != NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char from[DMARC_NAME_MAX + 1], ascii[DMARC_NAME_MAX + 1], small[16];
	const struct dmarc_psl *psl;
	struct dmarc_psl *own = NULL;
	struct dmarc_record rec;
	struct dmarc_outcome out;
	struct dmarc_auth auth;
	const char *text, *why = NULL;
	char *str, errbuf[256];
	unsigned flags;
	bool have_rec, have_from;
	size_t i;

	if (fuzz_psl == NULL) {
		fuzz_psl = dmarc_psl_load(
		    "/usr/share/publicsuffix/public_suffix_list.dat", errbuf,
		    sizeof(errbuf));
		if (fuzz_psl == NULL)
			fuzz_psl = dmarc_psl_parse(
			    fuzz_psl_text, sizeof(fuzz_psl_text) - 1, &why);
		CHECK(fuzz_psl != NULL);
	}
	if (size < 1)
		return 0;
	flags = data[0];
	text = (const char *)data + 1;
	size--;
	psl = fuzz_psl;
	if (flags & 1) {
		own = dmarc_psl_parse(text, size, &why);
		if (own == NULL)
			CHECK(why != NULL);
		else
			psl = own;
	}

	/* The record. */
	have_rec = dmarc_record_parse(text, size, &rec, &why) == 0;
	if (have_rec) {
		CHECK(dmarc_record_is_dmarc(text, size));
		CHECK(rec.p <= DMARC_P_REJECT && rec.sp <= DMARC_P_REJECT);
		CHECK(rec.has_sp || rec.sp == rec.p);
		CHECK(rec.pct <= 100);
		CHECK(memchr(rec.rua, '\0', sizeof(rec.rua)) != NULL);
		for (i = 0; rec.rua[i] != '\0'; i++)
			CHECK(rec.rua[i] > ' ' && rec.rua[i] < 0x7f);
		CHECK(memchr(rec.fo, '\0', sizeof(rec.fo)) != NULL);
		CHECK(strspn(rec.fo, "01ds:") == strlen(rec.fo));
	} else {
		CHECK(why != NULL);
	}

	/* The From domain of the text as a header section. */
	have_from = dmarc_from_domain(text, size, (flags & 2) != 0, from,
	                              sizeof(from), &why) == 0;
	if (have_from) {
		fuzz_check_domain(from);
		fuzz_check_org(psl, from);
	} else {
		CHECK(why != NULL);
	}

	/* The text as a domain name, also into a buffer too small. */
	if (dmarc_domain_to_ascii(text, size, ascii, sizeof(ascii)) == 0) {
		CHECK(strlen(ascii) <= DMARC_NAME_MAX);
		for (i = 0; ascii[i] != '\0'; i++)
			CHECK((unsigned char)ascii[i] < 0x80 &&
			      !(ascii[i] >= 'A' && ascii[i] <= 'Z'));
		if (ascii[0] != '\0' && strchr(ascii, '.') != ascii)
			fuzz_check_org(psl, ascii);
	}
	if (dmarc_domain_to_ascii(text, size, small, sizeof(small)) == 0)
		CHECK(strlen(small) < sizeof(small));

	/* The text as trace results, then the policy. */
	str = malloc(size + 1);
	if (str != NULL) {
		memcpy(str, text, size);
		str[size] = '\0';
		memset(&auth, 0, sizeof(auth));
		dmarc_auth_add(&auth, str, (flags & 4) != 0);
		dmarc_auth_add(&auth, str, (flags & 8) != 0);
		fuzz_check_auth(&auth);
		if (have_from && have_rec) {
			dmarc_evaluate(psl, from, (flags & 16) != 0, &rec,
			               &auth, flags % 100, &out);
			CHECK(out.result == DMARC_RES_PASS ||
			      out.result == DMARC_RES_FAIL);
			CHECK(out.disposition <= out.policy);
			CHECK(out.dkim_index < (int)auth.ndkim);
			CHECK((out.result == DMARC_RES_PASS) ==
			      (out.spf_aligned || out.dkim_aligned));
		}
		for (i = 0; i < auth.ndkim; i++) {
			if (auth.dkim[i].domain[0] != '\0' &&
			    strlen(auth.dkim[i].domain) < DMARC_NAME_MAX)
				(void)dmarc_aligned(psl, auth.dkim[i].domain,
				                    auth.spf_domain, false);
		}
		free(str);
	}
	dmarc_psl_free(own);
	return 0;
}
