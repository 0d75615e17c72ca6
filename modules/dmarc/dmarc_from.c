/* SPDX-License-Identifier: MIT */
/* The RFC5322.From domain of a message (RFC 7489 section 6.6.1). */
#include <string.h>
#include <strings.h>

#include "dmarc.h"

/*
 * DMARC protects one domain: the one in the From field a reader sees.
 * A message with no From, several From fields or several addresses in
 * it has no such single domain; section 6.6.1 leaves the receiver to
 * refuse it, and this file reports it as an error rather than guessing
 * which address a mail reader would show (the classic bypass is a
 * second From field that one program reads and another ignores).
 *
 * The field is parsed as RFC 5322 mailbox-list / group syntax with
 * comments removed, quoted strings and angle brackets respected, so
 * that `"a@evil" <b@good>` or `(x@evil) b@good` yield good.
 */

#define FROM_ADDR_MAX 1024

struct from_scan {
	char cur[FROM_ADDR_MAX];   /* text of the mailbox outside <> */
	char angle[FROM_ADDR_MAX]; /* inside the last <> */
	size_t cur_len, angle_len;
	bool angle_seen, in_angle, overflow;
	unsigned count;
	char addr[FROM_ADDR_MAX]; /* the last address found */
};

static void
from_put(struct from_scan *sc, char c)
{
	char *buf = sc->in_angle ? sc->angle : sc->cur;
	size_t *len = sc->in_angle ? &sc->angle_len : &sc->cur_len;

	if (*len + 1 >= FROM_ADDR_MAX) {
		sc->overflow = true;
		return;
	}
	buf[(*len)++] = c;
}

static void
from_finish(struct from_scan *sc)
{
	const char *a = sc->angle_seen ? sc->angle : sc->cur;
	size_t n = sc->angle_seen ? sc->angle_len : sc->cur_len;

	if (n > 0) {
		sc->count++;
		memcpy(sc->addr, a, n);
		sc->addr[n] = '\0';
	}
	sc->cur_len = sc->angle_len = 0;
	sc->angle_seen = sc->in_angle = false;
}

static int
from_scan_value(struct from_scan *sc, const char *v, size_t n)
{
	bool quoted = false;
	unsigned depth = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		char c = v[i];

		if (c == '\r' || c == '\n')
			continue; /* unfolding */
		if (depth > 0) {
			if (c == '\\')
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (quoted) {
			from_put(sc, c);
			if (c == '\\' && i + 1 < n)
				from_put(sc, v[++i]);
			else if (c == '"')
				quoted = false;
			continue;
		}
		switch (c) {
		case '(':
			depth = 1;
			break;
		case '"':
			quoted = true;
			from_put(sc, c);
			break;
		case '<':
			if (sc->in_angle)
				return -1;
			sc->in_angle = true;
			sc->angle_seen = true;
			sc->angle_len = 0;
			break;
		case '>':
			if (!sc->in_angle)
				return -1;
			sc->in_angle = false;
			break;
		case ':':
			if (sc->in_angle)
				sc->angle_len = 0; /* obs-route "@a,@b:" */
			else
				sc->cur_len = 0; /* a group's display-name */
			break;
		case ',':
		case ';':
			if (sc->in_angle) {
				if (c == ';')
					return -1;
				break; /* obs-route list */
			}
			from_finish(sc);
			break;
		case ' ':
		case '\t':
			break;
		default:
			from_put(sc, c);
			break;
		}
	}
	if (quoted || depth > 0 || sc->in_angle || sc->overflow)
		return -1;
	from_finish(sc);
	return 0;
}

/* The domain of an addr-spec: after the last '@' outside quotes. */
static const char *
from_addr_domain(const char *addr)
{
	const char *at = NULL, *p;
	bool quoted = false;

	for (p = addr; *p != '\0'; p++) {
		if (quoted && *p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (!quoted && *p == '@')
			at = p;
	}
	return at != NULL ? at + 1 : NULL;
}

static bool
from_domain_ok(const char *d)
{
	size_t label = 0;

	if (*d == '\0')
		return false;
	for (; *d != '\0'; d++) {
		if (*d == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		label++;
		if (!((*d >= 'a' && *d <= 'z') || (*d >= '0' && *d <= '9') ||
		      *d == '-' || *d == '_'))
			return false;
	}
	return label > 0;
}

int
dmarc_from_domain(const char *hdr, size_t len, bool complete, char *out,
                  size_t size, const char **why)
{
	struct from_scan sc;
	const char *line = hdr, *end = hdr + len, *eol, *value = NULL;
	const char *field_end = NULL, *colon, *domain;
	unsigned froms = 0;
	size_t name_len;
	bool in_from = false;

	(void)complete;
	while (line < end) {
		eol = memchr(line, '\n', (size_t)(end - line));
		eol = eol != NULL ? eol + 1 : end;
		/* The empty line ends the header section. */
		if (line[0] == '\n' ||
		    (line[0] == '\r' && line + 1 < end && line[1] == '\n'))
			break;
		if (line[0] == ' ' || line[0] == '\t') {
			if (in_from)
				field_end = eol;
			line = eol;
			continue;
		}
		in_from = false;
		colon = memchr(line, ':', (size_t)(eol - line));
		if (colon != NULL) {
			for (name_len = (size_t)(colon - line);
			     name_len > 0 && (line[name_len - 1] == ' ' ||
			                      line[name_len - 1] == '\t');
			     name_len--)
				;
			if (name_len == 4 &&
			    strncasecmp(line, "from", 4) == 0) {
				froms++;
				in_from = true;
				value = colon + 1;
				field_end = eol;
			}
		}
		line = eol;
	}
	if (froms == 0) {
		*why = "no From field";
		return -1;
	}
	if (froms > 1) {
		*why = "several From fields";
		return -1;
	}
	memset(&sc, 0, sizeof(sc));
	if (from_scan_value(&sc, value, (size_t)(field_end - value)) != 0) {
		*why = "malformed From field";
		return -1;
	}
	if (sc.count != 1) {
		*why = sc.count == 0 ? "no address in From"
		                     : "several addresses in From";
		return -1;
	}
	domain = from_addr_domain(sc.addr);
	if (domain == NULL || domain[0] == '\0' || domain[0] == '[') {
		*why = "From address without a domain name";
		return -1;
	}
	if (dmarc_domain_to_ascii(domain, strlen(domain), out, size) != 0 ||
	    !from_domain_ok(out)) {
		*why = "From domain is not a valid domain name";
		return -1;
	}
	return 0;
}
