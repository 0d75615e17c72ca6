/* SPDX-License-Identifier: MIT */
/* SPF macros (RFC 7208 section 7): syntax, expansion, domain names. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "spf.h"

/*
 * A macro-string is walked one token at a time: a literal byte, an
 * escape ("%%", "%_", "%-") or a macro ("%{" letter [digits] ["r"]
 * [delimiters] "}"). The same walker serves the syntax check, the
 * search for %{p} (which needs DNS before expansion) and the expansion,
 * so the three can never disagree about where a macro ends.
 */

enum spf_tok_kind {
	SPF_TOK_LITERAL,
	SPF_TOK_ESCAPE, /* "%%", "%_" or "%-": a macro-expand in the ABNF */
	SPF_TOK_MACRO,
};

struct spf_tok {
	enum spf_tok_kind kind;
	char c;          /* LITERAL: the byte; ESCAPE: '%', '_' or '-' */
	char letter;     /* MACRO: as written (upper case: URL-escape) */
	unsigned digits; /* MACRO: 0 = all parts */
	bool reverse;    /* MACRO */
	char delims[8];  /* MACRO: NUL-terminated; empty: "." */
};

/* Parts kept at most: RFC 7208 asks for at least 128. */
#define SPF_PARTS_MAX 256

static bool
spf_letter_ok(char letter, bool exp)
{
	char l = (char)(letter | 0x20);

	if (strchr("slodiphv", l) != NULL && l != '\0')
		return true;
	return exp && l != '\0' && strchr("crt", l) != NULL;
}

/*
 * The token at s[*pos]. @exp: explanation text (SP literal; c, r, t
 * allowed). @return 0 and advances *pos, or -1 with *why set.
 */
static int
spf_tok_next(const char *s, size_t len, size_t *pos, bool exp,
             struct spf_tok *tok, const char **why)
{
	size_t i = *pos, nd = 0;
	unsigned char c = (unsigned char)s[i];
	unsigned digits = 0;

	memset(tok, 0, sizeof(*tok));
	if (c != '%') {
		if ((c < 0x21 || c > 0x7e) && !(exp && c == ' ')) {
			*why = "invalid character in macro-string";
			return -1;
		}
		tok->kind = SPF_TOK_LITERAL;
		tok->c = (char)c;
		*pos = i + 1;
		return 0;
	}
	if (i + 1 >= len) {
		*why = "'%' at the end of a macro-string";
		return -1;
	}
	switch (s[i + 1]) {
	case '%':
	case '_':
	case '-':
		tok->kind = SPF_TOK_ESCAPE;
		tok->c = s[i + 1];
		*pos = i + 2;
		return 0;
	case '{':
		break;
	default:
		*why = "'%' not followed by '{', '%', '_' or '-'";
		return -1;
	}
	i += 2;
	if (i >= len || !spf_letter_ok(s[i], exp)) {
		*why = "unknown macro letter";
		return -1;
	}
	tok->kind = SPF_TOK_MACRO;
	tok->letter = s[i++];
	if (i < len && s[i] >= '0' && s[i] <= '9') {
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			if (digits <= SPF_PARTS_MAX)
				digits = digits * 10 + (unsigned)(s[i] - '0');
			i++;
		}
		/* Section 7.3: a DIGIT transformer must be nonzero. */
		if (digits == 0) {
			*why = "macro transformer 0";
			return -1;
		}
		tok->digits = digits > SPF_PARTS_MAX ? 0 : digits;
	}
	if (i < len && (s[i] == 'r' || s[i] == 'R')) {
		tok->reverse = true;
		i++;
	}
	while (i < len && strchr(".-+,/_=", s[i]) != NULL && s[i] != '\0') {
		if (nd + 1 < sizeof(tok->delims) && !strchr(tok->delims, s[i]))
			tok->delims[nd++] = s[i];
		i++;
	}
	if (i >= len || s[i] != '}') {
		*why = "unterminated or malformed macro";
		return -1;
	}
	*pos = i + 1;
	return 0;
}

int
spf_macro_check(const char *s, size_t len, bool exp, const char **why_out)
{
	struct spf_tok tok;
	size_t pos = 0;

	while (pos < len) {
		if (spf_tok_next(s, len, &pos, exp, &tok, why_out) != 0)
			return -1;
	}
	return 0;
}

bool
spf_macro_uses(const char *s, size_t len, char letter)
{
	struct spf_tok tok;
	size_t pos = 0;
	const char *why;

	while (pos < len) {
		if (spf_tok_next(s, len, &pos, true, &tok, &why) != 0)
			return false;
		if (tok.kind == SPF_TOK_MACRO &&
		    (tok.letter | 0x20) == (letter | 0x20))
			return true;
	}
	return false;
}

/* toplabel = ( *alphanum ALPHA *alphanum ) /
 *            ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool
spf_toplabel_ok(const char *s, size_t n)
{
	bool alpha = false;
	size_t i;

	if (n == 0 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
			alpha = true;
		else if (c == '-')
			alpha = true; /* the second form: not all digits */
		else if (c < '0' || c > '9')
			return false;
	}
	return alpha;
}

int
spf_domain_spec_check(const char *s, size_t len, const char **why_out)
{
	struct spf_tok tok;
	size_t pos = 0, end, dot;
	bool last_macro = false;

	if (len == 0) {
		*why_out = "empty domain-spec";
		return -1;
	}
	while (pos < len) {
		if (spf_tok_next(s, len, &pos, false, &tok, why_out) != 0)
			return -1;
		last_macro = tok.kind != SPF_TOK_LITERAL;
	}
	/* domain-end = ( "." toplabel [ "." ] ) / macro-expand */
	if (last_macro)
		return 0;
	end = len;
	if (s[end - 1] == '.')
		end--;
	for (dot = end; dot > 0 && s[dot - 1] != '.'; dot--)
		;
	if (dot == 0 || !spf_toplabel_ok(s + dot, end - dot)) {
		*why_out = "domain-spec does not end in a valid top label";
		return -1;
	}
	return 0;
}

/* ---- expansion -------------------------------------------------------- */

struct spf_out {
	char *buf;
	size_t size, len;
	bool overflow;
};

static void
spf_put(struct spf_out *o, const char *s, size_t n)
{
	if (o->overflow || o->len + n >= o->size) {
		o->overflow = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

/* Section 7.3: upper-case macros are URL-escaped (RFC 3986 unreserved). */
static void
spf_put_escaped(struct spf_out *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	char enc[3];
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			spf_put(o, s + i, 1);
			continue;
		}
		enc[0] = '%';
		enc[1] = hex[c >> 4];
		enc[2] = hex[c & 15];
		spf_put(o, enc, 3);
	}
}

/* "i" of an IPv6 address: 32 nibbles, dot-separated (section 7.3). */
static void
spf_ip_dotted(const struct spf_ip *ip, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, n = 0;

	if (ip->family == AF_INET) {
		spf_ip_format(ip, out, size);
		return;
	}
	for (i = 0; i < 16 && n + 4 < size; i++) {
		out[n++] = hex[ip->addr[i] >> 4];
		out[n++] = '.';
		out[n++] = hex[ip->addr[i] & 15];
		out[n++] = '.';
	}
	out[n > 0 ? n - 1 : 0] = '\0';
}

static const char *
spf_macro_value(const struct spf_macro_ctx *ctx, char letter, char *tmp,
                size_t tmp_size)
{
	const char *v = NULL;

	switch (letter | 0x20) {
	case 's':
		v = ctx->sender;
		break;
	case 'l':
		v = ctx->local;
		break;
	case 'o':
		v = ctx->sender_domain;
		break;
	case 'd':
		v = ctx->domain;
		break;
	case 'i':
		if (ctx->ip == NULL)
			break;
		spf_ip_dotted(ctx->ip, tmp, tmp_size);
		return tmp;
	case 'c':
		if (ctx->ip == NULL)
			break;
		spf_ip_format(ctx->ip, tmp, tmp_size);
		return tmp;
	case 'p':
		v = ctx->ptr_name;
		break;
	case 'h':
		v = ctx->helo;
		break;
	case 'r':
		v = ctx->receiver;
		break;
	case 't':
		(void)snprintf(tmp, tmp_size, "%lld", (long long)ctx->now);
		return tmp;
	case 'v':
		if (ctx->ip == NULL)
			break;
		return ctx->ip->family == AF_INET6 ? "ip6" : "in-addr";
	default:
		break;
	}
	return v != NULL && v[0] != '\0' ? v : "unknown";
}

/*
 * Split @value at the delimiters, reverse, keep the rightmost parts,
 * join with dots (section 7.3).
 */
static void
spf_put_macro(struct spf_out *o, const struct spf_tok *tok, const char *value)
{
	const char *delims = tok->delims[0] != '\0' ? tok->delims : ".";
	const char *start[SPF_PARTS_MAX];
	size_t plen[SPF_PARTS_MAX];
	char joined[SPF_EXPAND_MAX];
	struct spf_out j = {joined, sizeof(joined), 0, false};
	size_t n = 0, first, i, k;
	const char *p = value, *q;

	joined[0] = '\0';
	for (;;) {
		for (q = p; *q != '\0' && strchr(delims, *q) == NULL; q++)
			;
		if (n == SPF_PARTS_MAX) {
			/* Too many parts to keep apart: the rest is one. */
			plen[n - 1] = strlen(start[n - 1]);
			break;
		}
		start[n] = p;
		plen[n] = (size_t)(q - p);
		n++;
		if (*q == '\0')
			break;
		p = q + 1;
	}
	if (tok->reverse) {
		for (i = 0; i < n / 2; i++) {
			const char *ts = start[i];
			size_t tl = plen[i];

			start[i] = start[n - 1 - i];
			plen[i] = plen[n - 1 - i];
			start[n - 1 - i] = ts;
			plen[n - 1 - i] = tl;
		}
	}
	first = tok->digits > 0 && tok->digits < n ? n - tok->digits : 0;
	for (k = first; k < n; k++) {
		if (k > first)
			spf_put(&j, ".", 1);
		spf_put(&j, start[k], plen[k]);
	}
	if (j.overflow) {
		o->overflow = true;
		return;
	}
	if (tok->letter >= 'A' && tok->letter <= 'Z')
		spf_put_escaped(o, joined, j.len);
	else
		spf_put(o, joined, j.len);
}

int
spf_macro_expand(const char *s, size_t len, bool exp,
                 const struct spf_macro_ctx *ctx, char *out, size_t size)
{
	struct spf_out o = {out, size, 0, false};
	struct spf_tok tok;
	char tmp[80];
	size_t pos = 0;
	const char *why;

	if (size == 0)
		return -1;
	out[0] = '\0';
	while (pos < len && !o.overflow) {
		if (spf_tok_next(s, len, &pos, exp, &tok, &why) != 0)
			return -1;
		switch (tok.kind) {
		case SPF_TOK_LITERAL:
			spf_put(&o, &tok.c, 1);
			break;
		case SPF_TOK_ESCAPE:
			if (tok.c == '%')
				spf_put(&o, "%", 1);
			else if (tok.c == '_')
				spf_put(&o, " ", 1);
			else
				spf_put(&o, "%20", 3);
			break;
		case SPF_TOK_MACRO:
			spf_put_macro(
			    &o, &tok,
			    spf_macro_value(ctx, tok.letter, tmp, sizeof(tmp)));
			break;
		}
	}
	return o.overflow ? -1 : 0;
}

/* ---- domain names ----------------------------------------------------- */

void
spf_domain_truncate(char *name)
{
	size_t len = strlen(name);
	char *dot;

	if (len > 0 && name[len - 1] == '.')
		name[--len] = '\0';
	while (len > SPF_NAME_MAX) {
		dot = strchr(name, '.');
		if (dot == NULL)
			return;
		len -= (size_t)(dot + 1 - name);
		memmove(name, dot + 1, len + 1);
	}
}

bool
spf_domain_valid(const char *name, bool initial)
{
	size_t len = strlen(name), label = 0, labels = 1, i;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > SPF_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			labels++;
			continue;
		}
		if (++label > 63)
			return false;
		if (c < 0x20 || c > 0x7e)
			return false;
		if (initial &&
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return label > 0 && (!initial || labels >= 2);
}
