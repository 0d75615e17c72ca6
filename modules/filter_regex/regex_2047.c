/* SPDX-License-Identifier: MIT */
/* RFC 2047 encoded-words in header fields, decoded to UTF-8. */
#include <stdbool.h>
#include <string.h>

#include "regex_2047.h"
#include "regex_mime.h"

/* RFC 2047 2: an encoded-word is at most 75 characters; some senders
 * exceed that, so a little more is accepted. */
#define WORD_MAX 256

/* A parsed encoded-word. */
struct ew {
	const char *text; /* encoded text */
	size_t text_len;
	size_t total;  /* bytes from "=?" to "?=" inclusive */
	char encoding; /* 'B' or 'Q' */
	enum mime_charset charset;
};

/* Is there a well-formed encoded-word at @p? */
static bool
ew_parse(const char *p, const char *end, struct ew *w)
{
	const char *cs, *q, *star;
	size_t limit =
	    (size_t)(end - p) < WORD_MAX ? (size_t)(end - p) : WORD_MAX;
	const char *stop = p + limit;

	if (limit < 8 || p[0] != '=' || p[1] != '?')
		return false;
	cs = p + 2;
	q = memchr(cs, '?', (size_t)(stop - cs));
	if (q == NULL || q == cs || q + 3 >= stop || q[2] != '?')
		return false;
	/* RFC 2231 5: "charset*language". */
	star = memchr(cs, '*', (size_t)(q - cs));
	w->charset =
	    mime_charset_find(cs, (size_t)((star != NULL ? star : q) - cs));
	if (q[1] == 'B' || q[1] == 'b')
		w->encoding = 'B';
	else if (q[1] == 'Q' || q[1] == 'q')
		w->encoding = 'Q';
	else
		return false;
	w->text = q + 3;
	for (q = w->text; q + 1 < stop; q++) {
		if (q[0] == '?' && q[1] == '=')
			break;
		/* No white space inside an encoded-word (RFC 2047 5). */
		if (*q == ' ' || *q == '\t' || (unsigned char)*q < 0x20)
			return false;
	}
	if (q + 1 >= stop)
		return false;
	w->text_len = (size_t)(q - w->text);
	w->total = (size_t)(q + 2 - p);
	return true;
}

static int
ew_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode the word's bytes into @raw (room for text_len). */
static size_t
ew_bytes(const struct ew *w, char *raw)
{
	struct mime_b64 b64 = {0};
	size_t i, n = 0;
	int hi, lo;

	if (w->encoding == 'B')
		return mime_b64_decode(&b64, w->text, w->text_len, raw);
	for (i = 0; i < w->text_len; i++) {
		char c = w->text[i];

		if (c == '_') {
			raw[n++] = ' ';
		} else if (c == '=' && i + 2 < w->text_len &&
		           (hi = ew_hex((unsigned char)w->text[i + 1])) >= 0 &&
		           (lo = ew_hex((unsigned char)w->text[i + 2])) >= 0) {
			raw[n++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			raw[n++] = c;
		}
	}
	return n;
}

static size_t
ew_put(char *out, size_t n, size_t cap, const char *data, size_t len)
{
	if (n >= cap)
		return n;
	if (len > cap - n)
		len = cap - n;
	memcpy(out + n, data, len);
	return n + len;
}

size_t
regex_2047_decode(const char *in, size_t len, char *out, size_t cap)
{
	const char *p = in, *end = in + len, *ws;
	char raw[WORD_MAX], utf8[2 * WORD_MAX];
	bool after_word = false;
	struct ew w;
	size_t n = 0, m;

	if (cap == 0)
		return 0;
	cap--; /* the NUL */
	while (p < end) {
		if (ew_parse(p, end, &w) && w.charset != MIME_CHARSET_OTHER) {
			m = ew_bytes(&w, raw);
			if (w.charset == MIME_CHARSET_LATIN1)
				n = ew_put(out, n, cap, utf8,
				           mime_latin1_to_utf8(raw, m, utf8));
			else
				n = ew_put(out, n, cap, raw, m);
			p += w.total;
			after_word = true;
			continue;
		}
		if (after_word && (*p == ' ' || *p == '\t')) {
			/* White space between two encoded-words goes. */
			for (ws = p; ws < end && (*ws == ' ' || *ws == '\t');
			     ws++)
				;
			if (ws < end && ew_parse(ws, end, &w) &&
			    w.charset != MIME_CHARSET_OTHER) {
				p = ws;
				continue;
			}
			n = ew_put(out, n, cap, p, (size_t)(ws - p));
			p = ws;
			after_word = false;
			continue;
		}
		n = ew_put(out, n, cap, p, 1);
		p++;
		after_word = false;
	}
	out[n] = '\0';
	return n;
}
