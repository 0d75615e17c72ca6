/* SPDX-License-Identifier: MIT */
/* DMARC policy records (RFC 7489 sections 6.3 and 6.4): the parser. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dmarc.h"

static const char *const dmarc_policy_names[] = {"none", "quarantine",
                                                 "reject"};

const char *
dmarc_policy_name(enum dmarc_policy p)
{
	return (unsigned)p < 3 ? dmarc_policy_names[p] : "none";
}

static bool
dmarc_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* "v" *WSP "=" *WSP "DMARC1" *WSP ( ";" / end ), the value exactly. */
bool
dmarc_record_is_dmarc(const char *txt, size_t len)
{
	size_t i = 0;

	if (len == 0 || txt[i++] != 'v')
		return false;
	while (i < len && dmarc_wsp(txt[i]))
		i++;
	if (i == len || txt[i++] != '=')
		return false;
	while (i < len && dmarc_wsp(txt[i]))
		i++;
	if (len - i < 6 || memcmp(txt + i, "DMARC1", 6) != 0)
		return false;
	i += 6;
	while (i < len && dmarc_wsp(txt[i]))
		i++;
	return i == len || txt[i] == ';';
}

static int
dmarc_parse_policy(const char *v, size_t n, enum dmarc_policy *out)
{
	size_t i;

	for (i = 0; i < 3; i++) {
		if (strlen(dmarc_policy_names[i]) == n &&
		    strncasecmp(dmarc_policy_names[i], v, n) == 0) {
			*out = (enum dmarc_policy)i;
			return 0;
		}
	}
	return -1;
}

static int
dmarc_parse_uint(const char *v, size_t n, unsigned max, unsigned *out)
{
	unsigned value = 0;
	size_t i;

	if (n == 0 || n > 10)
		return -1;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		value = value * 10 + (unsigned)(v[i] - '0');
		if (value > max)
			return -1;
	}
	*out = value;
	return 0;
}

static bool
dmarc_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Whether a rua/ruf list holds one URI that could be used (section
 * 6.2: a scheme, then something). */
static bool
dmarc_has_uri(const char *v, size_t n)
{
	size_t i = 0, start, k;

	while (i < n) {
		while (i < n && (dmarc_wsp(v[i]) || v[i] == ','))
			i++;
		start = i;
		while (i < n && v[i] != ',')
			i++;
		k = start;
		if (k == i || !dmarc_alpha(v[k]))
			continue;
		while (k < i &&
		       (dmarc_alpha(v[k]) || (v[k] >= '0' && v[k] <= '9') ||
		        v[k] == '+' || v[k] == '.' || v[k] == '-'))
			k++;
		if (k < i && v[k] == ':' && k + 1 < i)
			return true;
	}
	return false;
}

static bool
dmarc_tag_is(const char *tag, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp(tag, name, n) == 0;
}

int
dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *out,
                   const char **why)
{
	bool have_p = false, bad_p = false, bad_sp = false, rua_ok = false;
	const char *tag, *val, *part, *end = txt + len, *semi, *eq;
	size_t tag_len, val_len, i;
	unsigned u;

	memset(out, 0, sizeof(*out));
	out->pct = 100;
	out->ri = 86400;
	(void)snprintf(out->fo, sizeof(out->fo), "0");
	if (!dmarc_record_is_dmarc(txt, len)) {
		*why = "not a DMARC record";
		return -1;
	}
	for (part = txt; part < end; part = semi + 1) {
		semi = memchr(part, ';', (size_t)(end - part));
		if (semi == NULL)
			semi = end;
		eq = memchr(part, '=', (size_t)(semi - part));
		if (eq == NULL)
			continue; /* empty, or junk: ignored */
		for (tag = part; tag < eq && dmarc_wsp(*tag); tag++)
			;
		for (tag_len = (size_t)(eq - tag);
		     tag_len > 0 && dmarc_wsp(tag[tag_len - 1]); tag_len--)
			;
		for (val = eq + 1; val < semi && dmarc_wsp(*val); val++)
			;
		for (val_len = (size_t)(semi - val);
		     val_len > 0 && dmarc_wsp(val[val_len - 1]); val_len--)
			;
		if (dmarc_tag_is(tag, tag_len, "p")) {
			if (have_p || bad_p)
				continue; /* the first one counts */
			if (dmarc_parse_policy(val, val_len, &out->p) == 0)
				have_p = true;
			else
				bad_p = true;
		} else if (dmarc_tag_is(tag, tag_len, "sp")) {
			if (out->has_sp || bad_sp)
				continue;
			if (dmarc_parse_policy(val, val_len, &out->sp) == 0)
				out->has_sp = true;
			else
				bad_sp = true;
		} else if (dmarc_tag_is(tag, tag_len, "adkim")) {
			out->adkim_strict =
			    val_len == 1 && (val[0] | 0x20) == 's';
		} else if (dmarc_tag_is(tag, tag_len, "aspf")) {
			out->aspf_strict =
			    val_len == 1 && (val[0] | 0x20) == 's';
		} else if (dmarc_tag_is(tag, tag_len, "pct")) {
			if (dmarc_parse_uint(val, val_len, 100, &u) == 0)
				out->pct = u;
		} else if (dmarc_tag_is(tag, tag_len, "ri")) {
			if (dmarc_parse_uint(val, val_len, 0xffffffffu, &u) ==
			    0)
				out->ri = u;
		} else if (dmarc_tag_is(tag, tag_len, "fo")) {
			for (i = 0; i < val_len && strchr("01ds:", val[i]) &&
			            val[i] != '\0';
			     i++)
				;
			if (val_len > 0 && val_len < sizeof(out->fo) &&
			    i == val_len)
				(void)snprintf(out->fo, sizeof(out->fo), "%.*s",
				               (int)val_len, val);
		} else if (dmarc_tag_is(tag, tag_len, "rua")) {
			rua_ok = dmarc_has_uri(val, val_len);
			/* Kept for the report: printable ASCII only. */
			for (i = 0; i < val_len && i < DMARC_RUA_MAX; i++)
				out->rua[i] = val[i] > ' ' && val[i] < 0x7f
				                  ? val[i]
				                  : '?';
			out->rua[i] = '\0';
		}
	}
	/* Section 6.6.3: no valid p (or a bad sp) is p=none when there is
	 * somewhere to report to, else no policy at all. */
	if (!have_p || bad_sp) {
		if (!rua_ok) {
			*why = have_p ? "invalid sp" : "no valid p";
			return -1;
		}
		out->p = DMARC_P_NONE;
		out->has_sp = false;
	}
	if (!out->has_sp)
		out->sp = out->p;
	return 0;
}
