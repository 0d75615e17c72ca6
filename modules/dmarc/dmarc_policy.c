/* SPDX-License-Identifier: MIT */
/* DMARC results: SPF and DKIM from the trace, alignment, disposition. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dmarc.h"

/*
 * The SPF and DKIM filters report what they found as RFC 8601 resinfos
 * in the filter trace ("spf=pass smtp.mailfrom=a@example.org", "dkim=pass
 * header.d=example.org header.s=sel; dkim=fail header.d=..."). That text
 * is the whole contract between them and this module: any filter that
 * reports those methods is used, whatever its name.
 */

static const char *const dmarc_result_names[] = {
    "none", "pass", "fail", "temperror", "permerror",
};

const char *
dmarc_result_name(enum dmarc_result r)
{
	return (unsigned)r < 5 ? dmarc_result_names[r] : "permerror";
}

/* Skip blanks and (nested) comments. */
static const char *
dmarc_skip_cfws(const char *p)
{
	unsigned depth = 0;

	for (; *p != '\0'; p++) {
		if (depth > 0) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')')
				depth--;
		} else if (*p == '(') {
			depth = 1;
		} else if (*p != ' ' && *p != '\t' && *p != '\r' &&
		           *p != '\n') {
			break;
		}
	}
	return p;
}

/* A token up to a blank, '=', ';' or '('. */
static size_t
dmarc_token(const char *p)
{
	size_t n = 0;

	while (p[n] != '\0' && p[n] != ' ' && p[n] != '\t' && p[n] != '=' &&
	       p[n] != ';' && p[n] != '(' && p[n] != '\r' && p[n] != '\n')
		n++;
	return n;
}

/* @v (@n bytes) as a lower-case domain without the trailing dot. */
static void
dmarc_copy_domain(char *out, size_t size, const char *v, size_t n)
{
	size_t i;

	if (n > 0 && v[n - 1] == '.')
		n--;
	if (n >= size)
		n = 0; /* too long for a domain: none */
	for (i = 0; i < n; i++)
		out[i] = v[i] >= 'A' && v[i] <= 'Z' ? (char)(v[i] + 32) : v[i];
	out[n] = '\0';
}

static void
dmarc_copy_lower(char *out, size_t size, const char *v, size_t n)
{
	size_t i;

	if (n >= size)
		n = size - 1;
	for (i = 0; i < n; i++)
		out[i] = v[i] >= 'A' && v[i] <= 'Z' ? (char)(v[i] + 32) : v[i];
	out[n] = '\0';
}

void
dmarc_auth_add(struct dmarc_auth *a, const char *result, bool mail_hook)
{
	const char *p = result, *method, *res, *prop, *val;
	size_t mlen, rlen, plen, vlen, slot, i;
	char domain[DMARC_NAME_MAX + 1], selector[64];
	bool helo;

	while (p != NULL && *p != '\0') {
		p = dmarc_skip_cfws(p);
		method = p;
		mlen = dmarc_token(p);
		p += mlen;
		p = dmarc_skip_cfws(p);
		if (*p != '=') {
			p = strchr(p, ';');
			p = p != NULL ? p + 1 : NULL;
			continue;
		}
		p = dmarc_skip_cfws(p + 1);
		res = p;
		rlen = dmarc_token(p);
		p += rlen;
		domain[0] = selector[0] = '\0';
		helo = false;
		/* ptype.property=value pairs up to the next ';'. */
		for (;;) {
			p = dmarc_skip_cfws(p);
			if (*p == '\0' || *p == ';')
				break;
			prop = p;
			plen = dmarc_token(p);
			p = dmarc_skip_cfws(p + plen);
			if (*p != '=') {
				if (plen == 0)
					p++;
				continue;
			}
			p = dmarc_skip_cfws(p + 1);
			val = p;
			vlen = dmarc_token(p);
			p += vlen;
			if (plen == 13 &&
			    strncasecmp(prop, "smtp.mailfrom", 13) == 0) {
				const char *at = memrchr(val, '@', vlen);

				if (at != NULL) {
					vlen -= (size_t)(at + 1 - val);
					val = at + 1;
				}
				dmarc_copy_domain(domain, sizeof(domain), val,
				                  vlen);
			} else if (plen == 9 &&
			           strncasecmp(prop, "smtp.helo", 9) == 0) {
				dmarc_copy_domain(domain, sizeof(domain), val,
				                  vlen);
				helo = true;
			} else if (plen == 8 &&
			           strncasecmp(prop, "header.d", 8) == 0) {
				dmarc_copy_domain(domain, sizeof(domain), val,
				                  vlen);
			} else if (plen == 8 &&
			           strncasecmp(prop, "header.s", 8) == 0) {
				dmarc_copy_lower(selector, sizeof(selector),
				                 val, vlen);
			}
		}
		if (*p == ';')
			p++;
		if (mlen == 3 && strncasecmp(method, "spf", 3) == 0 &&
		    mail_hook) {
			dmarc_copy_lower(a->spf, sizeof(a->spf), res, rlen);
			memcpy(a->spf_domain, domain, sizeof(domain));
			a->spf_helo = helo;
		} else if (mlen == 4 && strncasecmp(method, "dkim", 4) == 0) {
			bool pass =
			    rlen == 4 && strncasecmp(res, "pass", 4) == 0;

			slot = a->ndkim;
			if (slot == DMARC_DKIM_MAX) {
				/* Full: a pass may take a failure's place. */
				if (!pass)
					continue;
				for (i = 0;
				     i < DMARC_DKIM_MAX &&
				     strcmp(a->dkim[i].result, "pass") == 0;
				     i++)
					;
				if (i == DMARC_DKIM_MAX)
					continue;
				slot = i;
			} else {
				a->ndkim++;
			}
			dmarc_copy_lower(a->dkim[slot].result,
			                 sizeof(a->dkim[slot].result), res,
			                 rlen);
			memcpy(a->dkim[slot].domain, domain, sizeof(domain));
			memcpy(a->dkim[slot].selector, selector,
			       sizeof(selector));
		}
	}
}

bool
dmarc_aligned(const struct dmarc_psl *psl, const char *from_domain,
              const char *auth_domain, bool strict)
{
	char a[DMARC_NAME_MAX + 1], b[DMARC_NAME_MAX + 1];

	if (from_domain[0] == '\0' || auth_domain[0] == '\0')
		return false;
	if (strcasecmp(from_domain, auth_domain) == 0)
		return true;
	if (strict)
		return false;
	/* Relaxed (section 3.1.1): the same Organizational Domain. */
	if (dmarc_org_domain(psl, from_domain, a, sizeof(a)) != 0 ||
	    dmarc_org_domain(psl, auth_domain, b, sizeof(b)) != 0)
		return false;
	return strcasecmp(a, b) == 0;
}

void
dmarc_evaluate(const struct dmarc_psl *psl, const char *from_domain,
               bool at_org, const struct dmarc_record *rec,
               const struct dmarc_auth *auth, unsigned roll,
               struct dmarc_outcome *out)
{
	size_t i;

	memset(out, 0, sizeof(*out));
	out->dkim_index = -1;
	/* Section 6.3: sp is for subdomains of the domain that published
	 * the record, found through the Organizational Domain. */
	out->subdomain_policy = at_org && rec->has_sp;
	out->policy = at_org ? rec->sp : rec->p;
	out->spf_aligned =
	    strcmp(auth->spf, "pass") == 0 &&
	    dmarc_aligned(psl, from_domain, auth->spf_domain, rec->aspf_strict);
	for (i = 0; i < auth->ndkim; i++) {
		if (strcmp(auth->dkim[i].result, "pass") == 0 &&
		    dmarc_aligned(psl, from_domain, auth->dkim[i].domain,
		                  rec->adkim_strict)) {
			out->dkim_aligned = true;
			out->dkim_index = (int)i;
			break;
		}
	}
	if (out->spf_aligned || out->dkim_aligned) {
		out->result = DMARC_RES_PASS;
		out->disposition = DMARC_P_NONE;
		return;
	}
	out->result = DMARC_RES_FAIL;
	out->disposition = out->policy;
	/* Section 6.6.4: outside pct, the next policy down applies. */
	if (roll >= rec->pct && out->policy != DMARC_P_NONE) {
		out->sampled_out = true;
		out->disposition = out->policy == DMARC_P_REJECT
		                       ? DMARC_P_QUARANTINE
		                       : DMARC_P_NONE;
	}
}
