/* SPDX-License-Identifier: MIT */
/* RFC 5321 paths: reverse-path and forward-path of MAIL and RCPT. */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "smtp_addr.h"
#include "smtp_parse.h"

/* Longest address literal between the brackets ("IPv6:" + 45). */
#define ADDR_LITERAL_MAX 64

/* A cursor over the path text. */
struct addr_cursor {
	const unsigned char *p;
	const unsigned char *end;
};

static bool
addr_is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* RFC 5322 atext, plus UTF-8 bytes (RFC 6531; checked by the caller). */
static bool
addr_is_atext(unsigned char c)
{
	return addr_is_alnum(c) || c >= 0x80 ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* RFC 5321 qtextSMTP: printable ASCII except '"' and '\', plus UTF-8. */
static bool
addr_is_qtext(unsigned char c)
{
	return (c >= 32 && c <= 126 && c != '"' && c != '\\') || c >= 0x80;
}

void
smtp_domain_normalize(char *s)
{
	size_t len = strlen(s), i;

	for (i = 0; i < len; i++) {
		if (s[i] >= 'A' && s[i] <= 'Z')
			s[i] = (char)(s[i] - 'A' + 'a');
	}
	if (len > 0 && s[len - 1] == '.')
		s[len - 1] = '\0';
}

/*
 * Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]:
 * letters, digits and inner hyphens; UTF-8 bytes count as letters
 * (U-labels). One trailing dot is accepted (and dropped later): it names
 * the same domain, and refusing it would only push clients to retry.
 */
static bool
addr_scan_domain(struct addr_cursor *cur, size_t *len_out)
{
	const unsigned char *start = cur->p;
	size_t label = 0;
	unsigned char prev = '.';

	while (cur->p < cur->end) {
		unsigned char c = *cur->p;

		if (addr_is_alnum(c) || c >= 0x80) {
			label++;
		} else if (c == '-') {
			if (label == 0)
				return false;
			label++;
		} else if (c == '.') {
			if (label == 0 || prev == '-')
				return false;
			label = 0;
		} else {
			break;
		}
		if (label > 63)
			return false;
		prev = c;
		cur->p++;
	}
	if (cur->p == start || prev == '-')
		return false;
	/* "a." is fine (trailing dot), "." alone is not. */
	if (prev == '.' && cur->p - start < 2)
		return false;
	*len_out = (size_t)(cur->p - start);
	return true;
}

/*
 * address-literal: "[" IPv4 "]" or "[IPv6:" IPv6 "]". Written back as
 * inet_ntop() prints it, so that "[127.000.0.1]"-style spellings cannot
 * sneak past a comparison with the configured local literals.
 */
static char *
addr_scan_literal(struct addr_cursor *cur, struct ptl_pool *pool)
{
	char text[ADDR_LITERAL_MAX + 1], out[INET6_ADDRSTRLEN];
	unsigned char bin[16];
	const unsigned char *close;
	size_t n;

	cur->p++; /* '[' */
	close = memchr(cur->p, ']', (size_t)(cur->end - cur->p));
	if (close == NULL)
		return NULL;
	n = (size_t)(close - cur->p);
	if (n == 0 || n > ADDR_LITERAL_MAX)
		return NULL;
	memcpy(text, cur->p, n);
	text[n] = '\0';
	cur->p = close + 1;
	if (n > 5 && strncasecmp(text, "IPv6:", 5) == 0) {
		if (inet_pton(AF_INET6, text + 5, bin) != 1 ||
		    inet_ntop(AF_INET6, bin, out, sizeof(out)) == NULL)
			return NULL;
		return ptl_psprintf(pool, "[IPv6:%s]", out);
	}
	if (inet_pton(AF_INET, text, bin) != 1 ||
	    inet_ntop(AF_INET, bin, out, sizeof(out)) == NULL)
		return NULL;
	return ptl_psprintf(pool, "[%s]", out);
}

/* A-d-l = At-domain *( "," At-domain ) ":"; checked, then ignored. */
static bool
addr_skip_route(struct addr_cursor *cur)
{
	size_t dlen;

	for (;;) {
		if (cur->p >= cur->end || *cur->p != '@')
			return false;
		cur->p++;
		if (!addr_scan_domain(cur, &dlen))
			return false;
		if (cur->p < cur->end && *cur->p == ',') {
			cur->p++;
			continue;
		}
		if (cur->p < cur->end && *cur->p == ':') {
			cur->p++;
			return true;
		}
		return false;
	}
}

/* Dot-string = Atom *("." Atom). */
static bool
addr_is_dot_string(const unsigned char *s, size_t len)
{
	size_t i;

	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (s[i - 1] == '.')
				return false;
		} else if (!addr_is_atext(s[i])) {
			return false;
		}
	}
	return true;
}

/*
 * The local part, unquoted into @content (capacity >= the rest of the
 * input). Sets *quoted when it was a Quoted-string.
 */
static bool
addr_scan_local(struct addr_cursor *cur, char *content, size_t *len_out,
                bool *quoted)
{
	size_t n = 0;

	*quoted = false;
	if (cur->p < cur->end && *cur->p == '"') {
		*quoted = true;
		cur->p++;
		while (cur->p < cur->end && *cur->p != '"') {
			unsigned char c = *cur->p;

			if (c == '\\') {
				/* quoted-pairSMTP = "\" %d32-126 */
				if (cur->end - cur->p < 2 || cur->p[1] < 32 ||
				    cur->p[1] > 126)
					return false;
				content[n++] = (char)cur->p[1];
				cur->p += 2;
				continue;
			}
			if (!addr_is_qtext(c))
				return false;
			content[n++] = (char)c;
			cur->p++;
		}
		if (cur->p >= cur->end)
			return false;
		cur->p++; /* closing '"' */
		*len_out = n;
		return true;
	}
	while (cur->p < cur->end && (addr_is_atext(*cur->p) || *cur->p == '.'))
		content[n++] = (char)*cur->p++;
	*len_out = n;
	return addr_is_dot_string((const unsigned char *)content, n);
}

/*
 * The shortest spelling of a local part: bare when it is a Dot-string
 * ("\"john\"" is "john", RFC 5321 section 4.1.2), else quoted with only
 * '"' and '\' escaped.
 */
static char *
addr_local_canonical(struct ptl_pool *pool, const char *content, size_t len)
{
	char *out, *w;
	size_t i;

	if (addr_is_dot_string((const unsigned char *)content, len))
		return ptl_pstrndup(pool, content, len);
	out = ptl_palloc(pool, len * 2 + 3);
	if (out == NULL)
		return NULL;
	w = out;
	*w++ = '"';
	for (i = 0; i < len; i++) {
		if (content[i] == '"' || content[i] == '\\')
			*w++ = '\\';
		*w++ = content[i];
	}
	*w++ = '"';
	*w = '\0';
	return out;
}

static bool
addr_has_routing_chars(const char *content, size_t len)
{
	return memchr(content, '@', len) != NULL ||
	       memchr(content, '%', len) != NULL ||
	       memchr(content, '!', len) != NULL;
}

enum smtp_addr_error
smtp_addr_parse(const char *in, size_t len, unsigned flags,
                struct ptl_pool *pool, struct smtp_addr *out,
                size_t *consumed_out)
{
	struct addr_cursor cur;
	const unsigned char *close, *dstart;
	char *content, *local, *domain, *address;
	size_t clen, dlen, i;
	bool quoted, has_8bit = false;

	memset(out, 0, sizeof(*out));
	cur.p = (const unsigned char *)in;
	cur.end = cur.p + len;
	if (len < 2 || in[0] != '<')
		return SMTP_ADDR_SYNTAX;
	cur.p++;
	if (*cur.p == '>') {
		if (!(flags & SMTP_ADDR_NULL_OK))
			return SMTP_ADDR_SYNTAX;
		out->is_null = true;
		out->address = "";
		out->local = "";
		*consumed_out = 2;
		return SMTP_ADDR_OK;
	}
	for (i = 1; i < len; i++) {
		if ((unsigned char)in[i] >= 0x80)
			has_8bit = true;
	}
	if (has_8bit) {
		/* Only the path itself, which ends at the first '>' not in
		 * quotes; a rough bound is enough for the UTF-8 check. */
		if (!smtp_utf8_valid((const unsigned char *)in, len))
			return SMTP_ADDR_SYNTAX;
	}
	if (*cur.p == '@' && !addr_skip_route(&cur))
		return SMTP_ADDR_SYNTAX;

	content = ptl_palloc(pool, len + 1);
	if (content == NULL)
		return SMTP_ADDR_SYNTAX;
	if (!addr_scan_local(&cur, content, &clen, &quoted))
		return SMTP_ADDR_SYNTAX;
	content[clen] = '\0';
	if (addr_has_routing_chars(content, clen))
		out->routing_chars = true;
	for (i = 0; i < clen; i++) {
		if ((unsigned char)content[i] >= 0x80)
			out->utf8 = true;
	}
	local = addr_local_canonical(pool, content, clen);
	if (local == NULL)
		return SMTP_ADDR_SYNTAX;

	if (cur.p < cur.end && *cur.p == '>' &&
	    (flags & SMTP_ADDR_POSTMASTER_OK) && !quoted &&
	    strcasecmp(local, "postmaster") == 0) {
		out->is_postmaster = true;
		out->address = local;
		out->local = local;
		*consumed_out = (size_t)(cur.p + 1 - (const unsigned char *)in);
		return SMTP_ADDR_OK;
	}
	if (cur.p >= cur.end || *cur.p != '@')
		return SMTP_ADDR_SYNTAX;
	cur.p++;
	if (cur.p < cur.end && *cur.p == '[') {
		domain = addr_scan_literal(&cur, pool);
		if (domain == NULL)
			return SMTP_ADDR_SYNTAX;
		out->is_literal = true;
	} else {
		dstart = cur.p;
		if (!addr_scan_domain(&cur, &dlen))
			return SMTP_ADDR_SYNTAX;
		domain = ptl_pstrndup(pool, (const char *)dstart, dlen);
		if (domain == NULL)
			return SMTP_ADDR_SYNTAX;
		for (i = 0; i < dlen; i++) {
			if ((unsigned char)domain[i] >= 0x80)
				out->utf8 = true;
		}
		smtp_domain_normalize(domain);
	}
	close = cur.p;
	if (close >= cur.end || *close != '>')
		return SMTP_ADDR_SYNTAX;

	if (strlen(local) > SMTP_LOCAL_MAX || strlen(domain) > SMTP_DOMAIN_MAX)
		return SMTP_ADDR_TOO_LONG;
	address = ptl_psprintf(pool, "%s@%s", local, domain);
	if (address == NULL)
		return SMTP_ADDR_SYNTAX;
	if (strlen(address) + 2 > SMTP_PATH_MAX)
		return SMTP_ADDR_TOO_LONG;
	if (out->utf8 && !(flags & SMTP_ADDR_UTF8_OK))
		return SMTP_ADDR_NON_ASCII;
	out->address = address;
	out->local = local;
	out->domain = domain;
	*consumed_out = (size_t)(close + 1 - (const unsigned char *)in);
	return SMTP_ADDR_OK;
}
