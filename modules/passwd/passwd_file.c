/* SPDX-License-Identifier: MIT */
/* Line parsers of the passwd-file (Dovecot format) and the aliases file. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "passwd.h"

/* Longest piece of user input quoted in a message. */
#define PASSWD_QUOTE_MAX 64

struct passwd_scheme_name {
	const char *name; /* inside the braces */
	enum passwd_scheme scheme;
	bool generic_crypt; /* {CRYPT}: the hash prefix tells the kind */
};

/*
 * {CRYPT} is how Dovecot names "whatever crypt(3) recognises": it is the
 * only name Dovecot has for yescrypt, so both are accepted.
 */
static const struct passwd_scheme_name passwd_scheme_names[] = {
    {"SHA512-CRYPT", PASSWD_SCHEME_SHA512_CRYPT, false},
    {"BLF-CRYPT", PASSWD_SCHEME_BLF_CRYPT, false},
    {"YESCRYPT", PASSWD_SCHEME_YESCRYPT, false},
    {"CRYPT", PASSWD_SCHEME_NONE, true},
    {"PLAIN", PASSWD_SCHEME_PLAIN, false},
    {"CLEARTEXT", PASSWD_SCHEME_PLAIN, false},
    {NULL, PASSWD_SCHEME_NONE, false},
};

static bool
passwd_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool
passwd_has_prefix(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(s, prefix, n) == 0;
}

static int passwd_why(char *why, size_t why_size, const char *fmt, ...)
    PTL_PRINTF(3, 4);

static int
passwd_why(char *why, size_t why_size, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && why_size > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(why, why_size, fmt, ap);
		va_end(ap);
	}
	return PTL_ERROR;
}

/* The part every line shares: bounds, CR, NUL, comments, blank lines. */
static int
passwd_line_prepare(const char *line, size_t *len, char *why, size_t why_size)
{
	size_t i;

	if (*len > 0 && line[*len - 1] == '\r')
		(*len)--;
	if (*len > PASSWD_LINE_MAX)
		return passwd_why(why, why_size, "line longer than %u bytes",
		                  PASSWD_LINE_MAX);
	if (memchr(line, '\0', *len) != NULL)
		return passwd_why(why, why_size, "NUL byte in the line");
	for (i = 0; i < *len && passwd_is_blank(line[i]); i++)
		;
	if (i == *len || line[i] == '#')
		return PTL_DECLINED;
	return PTL_OK;
}

int
passwd_check_address(const char *addr, size_t len, const char *what, char *why,
                     size_t why_size)
{
	const char *at = NULL;
	size_t i, ats = 0;

	if (len == 0)
		return passwd_why(why, why_size, "empty %s", what);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)addr[i];

		if (c <= 0x20 || c == 0x7f)
			return passwd_why(why, why_size,
			                  "%s contains a blank or a control "
			                  "character",
			                  what);
		if (c == ':' || c == ',')
			return passwd_why(why, why_size, "%s contains '%c'",
			                  what, c);
		if (c == '@') {
			ats++;
			at = addr + i;
		}
	}
	if (len > PASSWD_ADDRESS_MAX)
		return passwd_why(why, why_size, "%s longer than %u bytes",
		                  what, PASSWD_ADDRESS_MAX);
	if (ats != 1 || at == addr || at == addr + len - 1)
		return passwd_why(
		    why, why_size,
		    "%s \"%.*s\" is not an address "
		    "(local@domain)",
		    what,
		    (int)(len < PASSWD_QUOTE_MAX ? len : PASSWD_QUOTE_MAX),
		    addr);
	return PTL_OK;
}

void
passwd_address_key(const char *addr, size_t len, char *out)
{
	size_t i;

	for (i = 0; i < len; i++) {
		char c = addr[i];

		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[len] = '\0';
}

const char *
passwd_scheme_name(enum passwd_scheme scheme)
{
	switch (scheme) {
	case PASSWD_SCHEME_SHA512_CRYPT:
		return "SHA512-CRYPT";
	case PASSWD_SCHEME_BLF_CRYPT:
		return "BLF-CRYPT";
	case PASSWD_SCHEME_YESCRYPT:
		return "YESCRYPT";
	case PASSWD_SCHEME_PLAIN:
		return "PLAIN";
	case PASSWD_SCHEME_NONE:
		break;
	}
	return "NONE";
}

enum passwd_scheme
passwd_scheme_from_option(const char *name)
{
	if (strcasecmp(name, "sha512-crypt") == 0)
		return PASSWD_SCHEME_SHA512_CRYPT;
	if (strcasecmp(name, "blf-crypt") == 0)
		return PASSWD_SCHEME_BLF_CRYPT;
	if (strcasecmp(name, "yescrypt") == 0)
		return PASSWD_SCHEME_YESCRYPT;
	return PASSWD_SCHEME_NONE;
}

/* The kind of crypt hash by its "$id$" prefix, or NONE. */
static enum passwd_scheme
passwd_crypt_kind(const char *hash, size_t len)
{
	if (passwd_has_prefix(hash, len, "$6$"))
		return PASSWD_SCHEME_SHA512_CRYPT;
	if (passwd_has_prefix(hash, len, "$2y$") ||
	    passwd_has_prefix(hash, len, "$2b$"))
		return PASSWD_SCHEME_BLF_CRYPT;
	if (passwd_has_prefix(hash, len, "$y$"))
		return PASSWD_SCHEME_YESCRYPT;
	return PASSWD_SCHEME_NONE;
}

static const char *
passwd_crypt_prefixes(enum passwd_scheme scheme)
{
	switch (scheme) {
	case PASSWD_SCHEME_SHA512_CRYPT:
		return "\"$6$\"";
	case PASSWD_SCHEME_BLF_CRYPT:
		return "\"$2y$\" or \"$2b$\"";
	case PASSWD_SCHEME_YESCRYPT:
		return "\"$y$\"";
	default:
		break;
	}
	return "\"$\"";
}

/* The scheme named between braces; @name_len excludes them. */
static const struct passwd_scheme_name *
passwd_scheme_lookup(const char *name, size_t name_len)
{
	const struct passwd_scheme_name *s;

	for (s = passwd_scheme_names; s->name != NULL; s++) {
		if (strlen(s->name) == name_len &&
		    strncasecmp(s->name, name, name_len) == 0)
			return s;
	}
	return NULL;
}

static bool
passwd_printable(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f)
			return false;
	}
	return true;
}

/* The password field: "{SCHEME}hash", a bare crypt hash, or empty. */
static int
passwd_parse_password(const char *field, size_t len, bool allow_plaintext,
                      struct passwd_entry *out, char *why, size_t why_size)
{
	const struct passwd_scheme_name *named = NULL;
	const char *hash = field, *close;
	size_t hash_len = len;
	enum passwd_scheme kind;

	out->prefix.ptr = field;
	out->prefix.len = 0;
	if (len == 0) {
		out->hash.ptr = field;
		out->hash.len = 0;
		out->scheme = PASSWD_SCHEME_NONE;
		return PTL_OK;
	}
	if (field[0] == '{') {
		close = memchr(field, '}', len);
		if (close == NULL)
			return passwd_why(why, why_size,
			                  "missing '}' after the password "
			                  "scheme");
		named = passwd_scheme_lookup(field + 1,
		                             (size_t)(close - field - 1));
		if (named == NULL) {
			size_t n = (size_t)(close - field + 1);

			if (n > PASSWD_QUOTE_MAX || !passwd_printable(field, n))
				return passwd_why(why, why_size,
				                  "unknown password scheme");
			return passwd_why(why, why_size,
			                  "unknown password scheme \"%.*s\" "
			                  "(known: SHA512-CRYPT, BLF-CRYPT, "
			                  "YESCRYPT, CRYPT, PLAIN)",
			                  (int)n, field);
		}
		out->prefix.len = (size_t)(close - field + 1);
		hash = close + 1;
		hash_len = len - out->prefix.len;
	}
	out->hash.ptr = hash;
	out->hash.len = hash_len;

	if (named != NULL && named->scheme == PASSWD_SCHEME_PLAIN) {
		if (!allow_plaintext)
			return passwd_why(why, why_size,
			                  "plaintext password refused (set "
			                  "\"allow_plaintext\": true to allow "
			                  "it)");
		if (hash_len == 0)
			return passwd_why(why, why_size,
			                  "empty plaintext password");
		out->scheme = PASSWD_SCHEME_PLAIN;
		return PTL_OK;
	}

	kind = passwd_crypt_kind(hash, hash_len);
	if (named == NULL) {
		/* Dovecot's default scheme for passwd-file is CRYPT. */
		if (kind == PASSWD_SCHEME_NONE)
			return passwd_why(why, why_size,
			                  "password field is neither "
			                  "{SCHEME}hash nor a crypt hash "
			                  "($6$, $2y$, $2b$, $y$)");
	} else if (hash_len == 0) {
		return passwd_why(why, why_size, "empty hash after {%s}",
		                  named->name);
	} else if (named->generic_crypt) {
		if (kind == PASSWD_SCHEME_NONE)
			return passwd_why(why, why_size,
			                  "{CRYPT} hash of an unsupported "
			                  "kind (supported: $6$, $2y$, $2b$, "
			                  "$y$)");
	} else if (kind != named->scheme) {
		return passwd_why(
		    why, why_size, "{%s} hash does not start with %s",
		    named->name, passwd_crypt_prefixes(named->scheme));
	}
	for (size_t i = 0; i < hash_len; i++) {
		unsigned char c = (unsigned char)hash[i];

		if (c <= 0x20 || c >= 0x7f)
			return passwd_why(why, why_size,
			                  "%s hash contains a blank or a "
			                  "control character",
			                  passwd_scheme_name(kind));
	}
	if (!passwd_hash_valid(hash, hash_len))
		return passwd_why(why, why_size, "malformed %s hash",
		                  passwd_scheme_name(kind));
	out->scheme = kind;
	return PTL_OK;
}

int
passwd_parse_user_line(const char *line, size_t len, bool allow_plaintext,
                       struct passwd_entry *out, char *why, size_t why_size)
{
	const char *colon, *end, *field_end;
	int rc;

	rc = passwd_line_prepare(line, &len, why, why_size);
	if (rc != PTL_OK)
		return rc;
	end = line + len;
	colon = memchr(line, ':', len);
	if (colon == NULL)
		return passwd_why(why, why_size,
		                  "missing ':' after the user name");
	out->user.ptr = line;
	out->user.len = (size_t)(colon - line);
	if (passwd_check_address(out->user.ptr, out->user.len, "user name", why,
	                         why_size) != PTL_OK)
		return PTL_ERROR;

	field_end = memchr(colon + 1, ':', (size_t)(end - colon - 1));
	if (field_end == NULL)
		field_end = end;
	out->rest.ptr = field_end;
	out->rest.len = (size_t)(end - field_end);
	return passwd_parse_password(colon + 1, (size_t)(field_end - colon - 1),
	                             allow_plaintext, out, why, why_size);
}

int
passwd_parse_alias_line(const char *line, size_t len,
                        struct passwd_span *address_out,
                        struct passwd_span *targets_out, char *why,
                        size_t why_size)
{
	const char *colon;
	size_t addr_len;
	int rc;

	rc = passwd_line_prepare(line, &len, why, why_size);
	if (rc != PTL_OK)
		return rc;
	/* As in Postfix: an indented line continues the previous entry. */
	if (passwd_is_blank(line[0])) {
		targets_out->ptr = line;
		targets_out->len = len;
		return PTL_AGAIN;
	}
	colon = memchr(line, ':', len);
	if (colon == NULL)
		return passwd_why(why, why_size,
		                  "missing ':' after the alias address");
	addr_len = (size_t)(colon - line);
	while (addr_len > 0 && passwd_is_blank(line[addr_len - 1]))
		addr_len--;
	if (passwd_check_address(line, addr_len, "alias", why, why_size) !=
	    PTL_OK)
		return PTL_ERROR;
	address_out->ptr = line;
	address_out->len = addr_len;
	targets_out->ptr = colon + 1;
	targets_out->len = (size_t)(line + len - colon - 1);
	return PTL_OK;
}

bool
passwd_next_target(struct passwd_span *list, struct passwd_span *target_out)
{
	const char *p = list->ptr, *end = list->ptr + list->len, *start;

	while (p < end && (passwd_is_blank(*p) || *p == ','))
		p++;
	if (p == end) {
		list->ptr = end;
		list->len = 0;
		return false;
	}
	start = p;
	while (p < end && !passwd_is_blank(*p) && *p != ',')
		p++;
	target_out->ptr = start;
	target_out->len = (size_t)(p - start);
	list->ptr = p;
	list->len = (size_t)(end - p);
	return true;
}
