/* SPDX-License-Identifier: MIT */
/* The Received-SPF field and the Authentication-Results resinfo of SPF. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "spf.h"

/*
 * The sender and the HELO name are the client's words: a quote, a
 * semicolon or a parenthesis in them must not end a value, a comment or
 * the field early (RFC 7208 section 9.1 says receivers add the field,
 * and readers trust it). So a value is written bare only when it is a
 * dot-atom, else as a quoted-string with every byte that is not
 * printable ASCII turned into '?'; in comments only checked values go.
 */

/* Longest quoted value (the sender, the HELO name). */
#define SPF_VALUE_MAX 200

static bool
spf_atext(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

bool
spf_dot_atom(const char *s, bool address)
{
	size_t i, ats = 0;
	char prev = '.';

	if (s == NULL || s[0] == '\0' || strlen(s) > SPF_VALUE_MAX)
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == '.' || s[i] == '@') {
			if (prev == '.' || prev == '@')
				return false;
			if (s[i] == '@' && (!address || ++ats > 1))
				return false;
		} else if (!spf_atext(s[i])) {
			return false;
		}
		prev = s[i];
	}
	return prev != '.' && prev != '@' && ats == (address ? 1u : 0u);
}

/* A host name: letters, digits, '-', '_' and inner dots. */
static bool
spf_host_token(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0' || strlen(s) > SPF_NAME_MAX + 1 ||
	    s[0] == '.')
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      (c == '.' && s[i + 1] != '.')))
			return false;
	}
	return true;
}

struct spf_buf {
	char *p;
	size_t size, len;
	bool full; /* a piece did not fit: nothing more is added */
};

static void spf_add(struct spf_buf *b, const char *fmt, ...) PTL_PRINTF(2, 3);

static void
spf_add(struct spf_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->size - b->len, fmt, ap);
	va_end(ap);
	/*
	 * A piece cut short could leave a quoted-string or a comment open
	 * (or end in the backslash of an escape): it is left out whole,
	 * and so is everything after it.
	 */
	if (n < 0 || (size_t)n >= b->size - b->len) {
		b->p[b->len] = '\0';
		b->full = true;
		return;
	}
	b->len += (size_t)n;
}

/* `key=value` with the value bare or quoted. */
static void
spf_add_pair(struct spf_buf *b, const char *key, const char *value)
{
	char q[SPF_VALUE_MAX * 2 + 8];
	size_t i, n = 0;

	if (spf_dot_atom(value, strchr(value, '@') != NULL)) {
		spf_add(b, " %s=%s;", key, value);
		return;
	}
	q[n++] = '"';
	for (i = 0; value[i] != '\0' && i < SPF_VALUE_MAX; i++) {
		unsigned char c = (unsigned char)value[i];

		if (c == '"' || c == '\\')
			q[n++] = '\\';
		q[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (value[i] != '\0') {
		memcpy(q + n, "...", 3);
		n += 3;
	}
	q[n++] = '"';
	q[n] = '\0';
	spf_add(b, " %s=%s;", key, q);
}

void
spf_received_field(const struct spf_outcome *out, const char *ip,
                   const char *helo, const char *receiver, char *buf,
                   size_t size)
{
	struct spf_buf b = {buf, size, 0, false};
	char comment[512];
	struct spf_buf c = {comment, sizeof(comment), 0, false};
	const char *who = spf_dot_atom(out->sender, true) ? out->sender
	                  : spf_host_token(out->domain)   ? out->domain
	                                                  : "the sender";
	const char *r = spf_host_token(receiver) ? receiver : "unknown";
	const char *name = spf_result_name(out->result);

	if (size == 0)
		return;
	buf[0] = '\0';
	comment[0] = '\0';
	switch (out->result) {
	case SPF_PASS:
		spf_add(&c, "domain of %s designates %s as permitted sender",
		        who, ip);
		break;
	case SPF_FAIL:
		spf_add(
		    &c,
		    "domain of %s does not designate %s as permitted sender",
		    who, ip);
		break;
	case SPF_SOFTFAIL:
		spf_add(&c,
		        "domain of transitioning %s does not designate %s as "
		        "permitted sender",
		        who, ip);
		break;
	case SPF_NEUTRAL:
		spf_add(&c,
		        "%s is neither permitted nor denied by domain of %s",
		        ip, who);
		break;
	case SPF_NONE:
		spf_add(
		    &c,
		    "domain of %s does not designate permitted sender hosts",
		    who);
		break;
	case SPF_TEMPERROR:
		spf_add(&c, "error in processing during lookup of %s", who);
		break;
	case SPF_PERMERROR:
		spf_add(&c, "permanent error in processing domain of %s", who);
		break;
	}
	/* One piece, so that a small @buf never holds half a comment. */
	spf_add(&b, "%s (%s: %s)", name, r, comment);
	spf_add_pair(&b, "client-ip", ip);
	spf_add_pair(&b, "envelope-from", out->sender);
	if (helo != NULL && helo[0] != '\0')
		spf_add_pair(&b, "helo", helo);
	spf_add_pair(&b, "receiver", r);
	spf_add_pair(&b, "identity", out->identity);
	if (out->mechanism[0] != '\0')
		spf_add_pair(&b, "mechanism", out->mechanism);
	if (out->problem[0] != '\0' &&
	    (out->result == SPF_PERMERROR || out->result == SPF_TEMPERROR))
		spf_add_pair(&b, "problem", out->problem);
	/* No trailing ";": some readers take it for an empty pair. */
	if (b.len > 0 && buf[b.len - 1] == ';')
		buf[--b.len] = '\0';
}

void
spf_trace_result(const struct spf_outcome *out, bool null_path,
                 const char *helo, char *buf, size_t size)
{
	struct spf_buf b = {buf, size, 0, false};
	const char *name = spf_result_name(out->result);

	if (size == 0)
		return;
	buf[0] = '\0';
	spf_add(&b, "spf=%s", name);
	if (null_path || strcmp(out->identity, "helo") == 0) {
		if (spf_host_token(helo))
			spf_add(&b, " smtp.helo=%s", helo);
	} else if (spf_dot_atom(out->sender, true)) {
		spf_add(&b, " smtp.mailfrom=%s", out->sender);
	} else if (spf_host_token(out->domain)) {
		spf_add(&b, " smtp.mailfrom=%s", out->domain);
	}
}
