/* SPDX-License-Identifier: MIT */
/* SMTP client parsing: server replies, EHLO keywords, xtext, paths. */
#include <string.h>

#include "smtpc.h"

void
smtpc_reply_reset(struct smtpc_reply *r)
{
	r->code = 0;
	r->nlines = 0;
	r->bytes = 0;
	r->complete = false;
	r->text[0] = '\0';
	r->text_len = 0;
	r->enh_len = 0;
	r->error = NULL;
}

static int
reply_error(struct smtpc_reply *r, const char *why)
{
	r->error = why;
	return PTL_ERROR;
}

/* RFC 5321 4.2: the first digit is 2..5, the second 0..5. */
static int
reply_code(const char *p)
{
	if (p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '5' ||
	    p[2] < '0' || p[2] > '9')
		return 0;
	return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

/* Length of an enhanced status code "c.ddd.ddd" (RFC 3463) at the start
 * of @p s whose class matches @p cls, with the space after it; 0: none. */
static size_t
reply_enhanced(const char *s, size_t len, int cls)
{
	size_t i = 0, part, digits;

	if (len < 6 || s[0] != '0' + cls || s[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		digits = 0;
		while (i < len && s[i] >= '0' && s[i] <= '9' && digits < 3) {
			i++;
			digits++;
		}
		if (digits == 0)
			return 0;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && s[i] != ' ')
		return 0;
	return i < len ? i + 1 : i;
}

/* The summary is one printable line: whatever a server sends, a result's
 * reply may end up in a bounce header and in logs. */
static void
reply_append(struct smtpc_reply *r, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && r->text_len + 1 < sizeof(r->text); i++) {
		unsigned char c = (unsigned char)s[i];

		r->text[r->text_len++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	r->text[r->text_len] = '\0';
}

int
smtpc_reply_feed(struct smtpc_reply *r, const char *line, size_t len,
                 const char **text_out, size_t *text_len_out)
{
	const char *text;
	size_t text_len, skip;
	int code;
	bool last;

	/* After an error the reply, and the connection, are dead. */
	if (r->error != NULL)
		return PTL_ERROR;
	if (r->complete)
		return reply_error(r, "reply already complete");
	if (len > SMTPC_REPLY_LINE_MAX)
		return reply_error(r, "reply line too long");
	if (r->nlines >= SMTPC_REPLY_LINES_MAX)
		return reply_error(r, "too many reply lines");
	if (len > SMTPC_REPLY_BYTES_MAX - r->bytes)
		return reply_error(r, "reply too long");
	r->bytes += len;
	r->nlines++;
	/* A bare LF ends a line too: strict here buys nothing. */
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len < 3 || (code = reply_code(line)) == 0)
		return reply_error(r, "malformed reply code");
	if (len == 3) {
		last = true;
	} else if (line[3] == ' ') {
		last = true;
	} else if (line[3] == '-') {
		last = false;
	} else {
		return reply_error(r, "malformed reply line");
	}
	if (r->code != 0 && code != r->code)
		return reply_error(r, "reply codes differ between lines");
	text = len > 4 ? line + 4 : line + len;
	text_len = len > 4 ? len - 4 : 0;
	if (r->code == 0) {
		r->code = code;
		reply_append(r, line, 3);
		r->enh_len = reply_enhanced(text, text_len, code / 100);
		if (text_len > 0) {
			reply_append(r, " ", 1);
			reply_append(r, text, text_len);
		}
	} else if (text_len > 0) {
		/* Repeating line 1's status code on every line says nothing
		 * new in a one-line summary. */
		skip = reply_enhanced(text, text_len, code / 100);
		if (skip != 0 && skip == r->enh_len &&
		    memcmp(text, r->text + 4, skip) == 0) {
			text += skip;
			text_len -= skip;
		}
		if (text_len > 0) {
			reply_append(r, " ", 1);
			reply_append(r, text, text_len);
		}
	}
	if (text_out != NULL) {
		*text_out = text;
		*text_len_out = text_len;
	}
	if (!last)
		return PTL_AGAIN;
	r->complete = true;
	return PTL_OK;
}

/* ---- EHLO keywords ------------------------------------------------------ */

static bool
caps_word_is(const char *s, size_t len, const char *word)
{
	size_t i, n = strlen(word);

	if (len != n)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c != word[i])
			return false;
	}
	return true;
}

static size_t
caps_word_len(const char *s, size_t len, char stop)
{
	size_t i = 0;

	while (i < len && s[i] != ' ' && s[i] != stop)
		i++;
	return i;
}

/* "SIZE 35882577": RFC 1870; no number or 0 means no fixed limit. */
static uint64_t
caps_size(const char *s, size_t len)
{
	uint64_t n = 0;
	size_t i;

	if (len == 0 || len > 19)
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		n = n * 10 + (uint64_t)(s[i] - '0');
	}
	return n;
}

/* The mechanisms after "AUTH " (or the obsolete "AUTH="). */
static void
caps_auth(struct smtpc_caps *caps, const char *s, size_t len)
{
	size_t w;

	while (len > 0) {
		while (len > 0 && *s == ' ') {
			s++;
			len--;
		}
		w = caps_word_len(s, len, '\0');
		if (w == 0 && len > 0) {
			/* A NUL from a hostile server: step over it, or this
			 * loop would never end (found by fuzz_smtpc_reply). */
			s++;
			len--;
			continue;
		}
		if (caps_word_is(s, w, "PLAIN"))
			caps->ext |= SMTPC_EXT_AUTH_PLAIN;
		s += w;
		len -= w;
	}
}

void
smtpc_caps_line(struct smtpc_caps *caps, const char *text, size_t len)
{
	static const struct {
		const char *word;
		unsigned ext;
	} simple[] = {
	    {"PIPELINING", SMTPC_EXT_PIPELINING},
	    {"STARTTLS", SMTPC_EXT_STARTTLS},
	    {"8BITMIME", SMTPC_EXT_8BITMIME},
	    {"SMTPUTF8", SMTPC_EXT_SMTPUTF8},
	    {"DSN", SMTPC_EXT_DSN},
	    {"CHUNKING", SMTPC_EXT_CHUNKING},
	    {"BINARYMIME", SMTPC_EXT_BINARYMIME},
	    {"ENHANCEDSTATUSCODES", SMTPC_EXT_ENHANCED},
	};
	size_t w, i, rest;
	const char *param;

	w = caps_word_len(text, len, '=');
	rest = len - w;
	param = text + w;
	if (rest > 0) {
		param++;
		rest--;
	}
	if (caps_word_is(text, w, "SIZE")) {
		caps->ext |= SMTPC_EXT_SIZE;
		caps->size_max =
		    caps_size(param, caps_word_len(param, rest, '\0'));
		return;
	}
	if (caps_word_is(text, w, "AUTH")) {
		caps_auth(caps, param, rest);
		return;
	}
	for (i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		if (caps_word_is(text, w, simple[i].word)) {
			caps->ext |= simple[i].ext;
			return;
		}
	}
}

/* ---- Parameters and paths ----------------------------------------------- */

size_t
smtpc_xtext(char *out, size_t cap, const char *in, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0, i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		/* RFC 3461 4: "+" and "=" and anything outside 33..126. */
		if (c >= 33 && c <= 126 && c != '+' && c != '=') {
			if (o + 1 >= cap)
				return (size_t)-1;
			out[o++] = (char)c;
		} else {
			if (o + 3 >= cap)
				return (size_t)-1;
			out[o++] = '+';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 0xf];
		}
	}
	if (o >= cap)
		return (size_t)-1;
	out[o] = '\0';
	return o;
}

bool
smtpc_address_ok(const char *addr, bool utf8)
{
	size_t i;

	for (i = 0; addr[i] != '\0'; i++) {
		unsigned char c = (unsigned char)addr[i];

		if (i >= 512)
			return false;
		if (c <= 0x20 || c == 0x7f || c == '<' || c == '>')
			return false;
		if (c >= 0x80 && !utf8)
			return false;
	}
	return true;
}

bool
smtpc_is_ascii(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return false;
	}
	return true;
}
