/* SPDX-License-Identifier: MIT */
/* SPF records (RFC 7208 sections 4.5, 4.6, 5, 6 and 12): the parser. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "spf.h"

/*
 * A record is parsed whole before any of it is used: section 4.6 makes
 * a syntax error anywhere a permerror, even after a mechanism that
 * would have matched. Terms are separated by spaces only; every byte
 * of a term must be visible ASCII, which also refuses NUL, CR and
 * UTF-8 smuggled into a record (the test suite's "hosed" records).
 */

static const char *const spf_result_names[SPF_RESULTS] = {
    "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror",
};

const char *
spf_result_name(enum spf_result r)
{
	return (unsigned)r < SPF_RESULTS ? spf_result_names[r] : "permerror";
}

/* ---- addresses -------------------------------------------------------- */

int
spf_ip_parse(const char *text, struct spf_ip *out)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
	                                   0, 0, 0, 0, 0xff, 0xff};
	struct in6_addr a6;
	struct in_addr a4;

	memset(out, 0, sizeof(*out));
	if (text == NULL)
		return -1;
	if (inet_pton(AF_INET, text, &a4) == 1) {
		out->family = AF_INET;
		memcpy(out->addr, &a4, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, text, &a6) != 1)
		return -1;
	/* Section 5: an IPv4-mapped client is an IPv4 client. */
	if (memcmp(a6.s6_addr, mapped, sizeof(mapped)) == 0) {
		out->family = AF_INET;
		memcpy(out->addr, a6.s6_addr + 12, 4);
		return 0;
	}
	out->family = AF_INET6;
	memcpy(out->addr, a6.s6_addr, 16);
	return 0;
}

bool
spf_ip_match(const struct spf_ip *a, const struct spf_ip *net, unsigned prefix)
{
	unsigned bytes = prefix / 8, bits = prefix % 8;
	uint8_t mask;

	if (a->family != net->family)
		return false;
	if (prefix > (a->family == AF_INET ? 32u : 128u))
		return false;
	if (memcmp(a->addr, net->addr, bytes) != 0)
		return false;
	if (bits == 0)
		return true;
	mask = (uint8_t)(0xffu << (8 - bits));
	return (a->addr[bytes] & mask) == (net->addr[bytes] & mask);
}

void
spf_ip_format(const struct spf_ip *a, char *out, size_t size)
{
	if (inet_ntop(a->family, a->addr, out, (socklen_t)size) == NULL)
		(void)snprintf(out, size, "?");
}

/* ---- record selection ------------------------------------------------- */

bool
spf_record_is_spf(const char *txt, size_t len)
{
	return len >= 6 && strncasecmp(txt, "v=spf1", 6) == 0 &&
	       (len == 6 || txt[6] == ' ');
}

/* ---- terms ------------------------------------------------------------ */

static bool
spf_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
spf_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * A CIDR length: "0" or digits without a leading zero (the test suite
 * reads section 5.6 that way, as for ip4-network), at most @max.
 */
static int
spf_parse_prefix(const char *s, size_t n, unsigned max, unsigned *out)
{
	unsigned v = 0;
	size_t i;

	if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (!spf_is_digit(s[i]))
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/*
 * Take a dual-cidr-length ("/24", "//64", "/24//64") off the end of
 * s[0..*n), updating *n.
 */
static int
spf_parse_dual_cidr(const char *s, size_t *n, unsigned *c4, unsigned *c6)
{
	size_t end = *n, d;

	d = end;
	while (d > 0 && spf_is_digit(s[d - 1]))
		d--;
	if (d < end && d >= 2 && s[d - 1] == '/' && s[d - 2] == '/') {
		if (spf_parse_prefix(s + d, end - d, 128, c6) != 0)
			return -1;
		end = d - 2;
	}
	d = end;
	while (d > 0 && spf_is_digit(s[d - 1]))
		d--;
	if (d < end && d >= 1 && s[d - 1] == '/') {
		if (spf_parse_prefix(s + d, end - d, 32, c4) != 0)
			return -1;
		end = d - 1;
	}
	*n = end;
	return 0;
}

/* ip4-network: four decimal octets without leading zeros. */
static int
spf_parse_ip4(const char *s, size_t n, struct spf_ip *out)
{
	unsigned part = 0, value = 0, digits = 0;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->family = AF_INET;
	for (i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (digits == 0 || part > 3)
				return -1;
			out->addr[part++] = (uint8_t)value;
			value = 0;
			digits = 0;
			continue;
		}
		if (!spf_is_digit(s[i]) || (digits == 1 && value == 0))
			return -1;
		value = value * 10 + (unsigned)(s[i] - '0');
		if (++digits > 3 || value > 255)
			return -1;
	}
	return part == 4 ? 0 : -1;
}

static int
spf_parse_ip6(const char *s, size_t n, struct spf_ip *out)
{
	char text[INET6_ADDRSTRLEN + 1];

	memset(out, 0, sizeof(*out));
	if (n == 0 || n >= sizeof(text))
		return -1;
	memcpy(text, s, n);
	text[n] = '\0';
	/* Kept as written: an IPv4-mapped network only matches IPv6
	 * clients, which an IPv4-mapped client never is (section 5). */
	if (inet_pton(AF_INET6, text, out->addr) != 1)
		return -1;
	out->family = AF_INET6;
	return 0;
}

/* ip4:network[/len] or ip6:network[/len], @rest after the name. */
static int
spf_parse_ip_mech(struct spf_term *t, const char *rest, size_t n,
                  const char **why)
{
	const char *slash;
	size_t net_len;
	bool v4 = t->mech == SPF_MECH_IP4;

	if (n < 2 || rest[0] != ':') {
		*why = v4 ? "ip4 without a network" : "ip6 without a network";
		return -1;
	}
	rest++;
	n--;
	slash = memchr(rest, '/', n);
	net_len = slash != NULL ? (size_t)(slash - rest) : n;
	if ((v4 ? spf_parse_ip4(rest, net_len, &t->net)
	        : spf_parse_ip6(rest, net_len, &t->net)) != 0) {
		*why = v4 ? "invalid ip4 network" : "invalid ip6 network";
		return -1;
	}
	if (slash != NULL &&
	    spf_parse_prefix(slash + 1, n - net_len - 1, v4 ? 32 : 128,
	                     v4 ? &t->cidr4 : &t->cidr6) != 0) {
		*why = "invalid CIDR length";
		return -1;
	}
	return 0;
}

static const struct {
	const char *name;
	enum spf_mech mech;
} spf_mechs[] = {
    {"all", SPF_MECH_ALL}, {"include", SPF_MECH_INCLUDE}, {"a", SPF_MECH_A},
    {"mx", SPF_MECH_MX},   {"ptr", SPF_MECH_PTR},         {"ip4", SPF_MECH_IP4},
    {"ip6", SPF_MECH_IP6}, {"exists", SPF_MECH_EXISTS},
};

static int
spf_parse_directive(struct spf_term *t, const char *p, size_t n,
                    const char **why)
{
	const char *rest;
	size_t i, name_len, rest_len;

	t->text = p;
	t->text_len = n;
	t->qualifier = SPF_PASS;
	t->cidr4 = 32;
	t->cidr6 = 128;
	switch (p[0]) {
	case '+':
		p++, n--;
		break;
	case '-':
		t->qualifier = SPF_FAIL;
		p++, n--;
		break;
	case '~':
		t->qualifier = SPF_SOFTFAIL;
		p++, n--;
		break;
	case '?':
		t->qualifier = SPF_NEUTRAL;
		p++, n--;
		break;
	}
	for (name_len = 0;
	     name_len < n && p[name_len] != ':' && p[name_len] != '/';
	     name_len++)
		;
	for (i = 0; i < sizeof(spf_mechs) / sizeof(spf_mechs[0]); i++) {
		if (strlen(spf_mechs[i].name) == name_len &&
		    strncasecmp(spf_mechs[i].name, p, name_len) == 0)
			break;
	}
	if (name_len == 0 || i == sizeof(spf_mechs) / sizeof(spf_mechs[0])) {
		*why = "unknown mechanism";
		return -1;
	}
	t->mech = spf_mechs[i].mech;
	rest = p + name_len;
	rest_len = n - name_len;

	switch (t->mech) {
	case SPF_MECH_ALL:
		if (rest_len != 0) {
			*why = "\"all\" takes no argument";
			return -1;
		}
		return 0;
	case SPF_MECH_IP4:
	case SPF_MECH_IP6:
		return spf_parse_ip_mech(t, rest, rest_len, why);
	case SPF_MECH_A:
	case SPF_MECH_MX:
		if (spf_parse_dual_cidr(rest, &rest_len, &t->cidr4,
		                        &t->cidr6) != 0) {
			*why = "invalid CIDR length";
			return -1;
		}
		break;
	default:
		break;
	}
	if (rest_len == 0) {
		if (t->mech == SPF_MECH_INCLUDE || t->mech == SPF_MECH_EXISTS) {
			*why = "mechanism without a domain";
			return -1;
		}
		return 0;
	}
	if (rest[0] != ':') {
		*why = "invalid mechanism argument";
		return -1;
	}
	t->domain_spec = rest + 1;
	t->domain_len = rest_len - 1;
	return spf_domain_spec_check(t->domain_spec, t->domain_len, why);
}

/* Length of a modifier name at @p (section 12), 0 when there is none. */
static size_t
spf_modifier_name(const char *p, size_t n)
{
	size_t i;

	if (n == 0 || !spf_is_alpha(p[0]))
		return 0;
	for (i = 1; i < n; i++) {
		if (!spf_is_alpha(p[i]) && !spf_is_digit(p[i]) && p[i] != '-' &&
		    p[i] != '_' && p[i] != '.')
			break;
	}
	return i < n && p[i] == '=' ? i : 0;
}

static int
spf_parse_modifier(struct spf_record *rec, const char *p, size_t n,
                   size_t name_len, const char **why)
{
	const char *value = p + name_len + 1;
	size_t value_len = n - name_len - 1;

	if (name_len == 8 && strncasecmp(p, "redirect", 8) == 0) {
		if (rec->redirect != NULL) {
			*why = "redirect given twice";
			return -1;
		}
		rec->redirect = value;
		rec->redirect_len = value_len;
		return spf_domain_spec_check(value, value_len, why);
	}
	if (name_len == 3 && strncasecmp(p, "exp", 3) == 0) {
		if (rec->exp != NULL) {
			*why = "exp given twice";
			return -1;
		}
		rec->exp = value;
		rec->exp_len = value_len;
		return spf_domain_spec_check(value, value_len, why);
	}
	/* Unknown modifiers are ignored, but must be well-formed. */
	return spf_macro_check(value, value_len, true, why);
}

struct spf_record *
spf_record_parse(const char *txt, size_t len, const char **why_out)
{
	struct spf_record *rec;
	size_t ntok = 0, i, start, n, name_len;
	const char *why = NULL;
	char *p;

	if (len > SPF_RECORD_MAX) {
		*why_out = "record too long";
		return NULL;
	}
	if (!spf_record_is_spf(txt, len)) {
		*why_out = "not an SPF record";
		return NULL;
	}
	for (i = 6; i < len; i++) {
		if (txt[i] != ' ' && (i == 6 || txt[i - 1] == ' '))
			ntok++;
	}
	rec =
	    calloc(1, sizeof(*rec) + ntok * sizeof(struct spf_term) + len + 1);
	if (rec == NULL) {
		*why_out = "out of memory";
		return NULL;
	}
	rec->terms = (struct spf_term *)(rec + 1);
	rec->text = (char *)(rec->terms + ntok);
	memcpy(rec->text, txt, len);
	rec->text[len] = '\0';
	p = rec->text;

	for (i = 6; i < len;) {
		if (p[i] == ' ') {
			i++;
			continue;
		}
		for (start = i; i < len && p[i] != ' '; i++) {
			if ((unsigned char)p[i] < 0x21 ||
			    (unsigned char)p[i] > 0x7e) {
				why = "invalid character in record";
				goto fail;
			}
		}
		n = i - start;
		name_len = spf_modifier_name(p + start, n);
		if (name_len > 0) {
			if (spf_parse_modifier(rec, p + start, n, name_len,
			                       &why) != 0)
				goto fail;
			continue;
		}
		if (spf_parse_directive(&rec->terms[rec->nterms], p + start, n,
		                        &why) != 0)
			goto fail;
		rec->nterms++;
	}
	return rec;
fail:
	free(rec);
	*why_out = why != NULL ? why : "syntax error";
	return NULL;
}

void
spf_record_free(struct spf_record *rec)
{
	free(rec);
}

bool
spf_term_is_dns(const struct spf_term *term)
{
	switch (term->mech) {
	case SPF_MECH_INCLUDE:
	case SPF_MECH_A:
	case SPF_MECH_MX:
	case SPF_MECH_PTR:
	case SPF_MECH_EXISTS:
		return true;
	default:
		return false;
	}
}
