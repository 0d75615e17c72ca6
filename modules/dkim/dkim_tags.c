/* SPDX-License-Identifier: MIT */
/* DKIM tag=value lists (RFC 6376 section 3.2), parsed strictly. */
#include <string.h>

#include "dkim.h"

static bool
tags_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * FWS = [*WSP CRLF] 1*WSP: a CRLF counts only when a space or tab follows,
 * so a header field can never smuggle a line break into a value.
 */
static size_t
tags_skip_fws(const char *s, size_t len, size_t pos)
{
	for (;;) {
		if (pos < len && tags_is_wsp(s[pos])) {
			pos++;
		} else if (pos + 2 < len && s[pos] == '\r' &&
		           s[pos + 1] == '\n' && tags_is_wsp(s[pos + 2])) {
			pos += 3;
		} else {
			return pos;
		}
	}
}

static bool
tags_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
tags_is_valchar(char c)
{
	unsigned char u = (unsigned char)c;

	return (u >= 0x21 && u <= 0x3a) || (u >= 0x3c && u <= 0x7e);
}

int
dkim_tags_parse(const char *text, size_t len, struct dkim_tags *out,
                const char **why_out)
{
	struct dkim_tag *t;
	size_t pos = 0, start, end, i;
	bool after_semicolon = false;

	out->count = 0;
	for (;;) {
		pos = tags_skip_fws(text, len, pos);
		if (pos == len) {
			if (after_semicolon)
				return 0;
			*why_out = "empty tag list";
			return -1;
		}
		if (out->count == DKIM_TAGS_MAX) {
			*why_out = "too many tags";
			return -1;
		}
		t = &out->tag[out->count];
		start = pos;
		if (!tags_is_alpha(text[pos])) {
			*why_out = "bad tag name";
			return -1;
		}
		while (pos < len && (tags_is_alpha(text[pos]) ||
		                     (text[pos] >= '0' && text[pos] <= '9') ||
		                     text[pos] == '_'))
			pos++;
		if (pos - start > DKIM_TAG_NAME_MAX) {
			*why_out = "tag name too long";
			return -1;
		}
		t->name = text + start;
		t->name_len = pos - start;
		pos = tags_skip_fws(text, len, pos);
		if (pos == len || text[pos] != '=') {
			*why_out = "tag without '='";
			return -1;
		}
		pos++;
		t->raw_start = pos;
		pos = tags_skip_fws(text, len, pos);
		start = end = pos;
		while (pos < len && text[pos] != ';') {
			if (tags_is_valchar(text[pos])) {
				end = ++pos;
				continue;
			}
			i = tags_skip_fws(text, len, pos);
			if (i == pos) {
				*why_out = "invalid character in tag value";
				return -1;
			}
			pos = i;
		}
		t->value = text + start;
		t->value_len = end - start;
		t->raw_end = pos;
		for (i = 0; i < out->count; i++) {
			if (out->tag[i].name_len == t->name_len &&
			    memcmp(out->tag[i].name, t->name, t->name_len) ==
			        0) {
				*why_out = "duplicate tag";
				return -1;
			}
		}
		out->count++;
		if (pos == len)
			return 0;
		pos++; /* ';' */
		after_semicolon = true;
	}
}

const struct dkim_tag *
dkim_tags_get(const struct dkim_tags *tags, const char *name)
{
	size_t n = strlen(name), i;

	for (i = 0; i < tags->count; i++) {
		if (tags->tag[i].name_len == n &&
		    memcmp(tags->tag[i].name, name, n) == 0)
			return &tags->tag[i];
	}
	return NULL;
}

bool
dkim_tag_equals(const struct dkim_tag *tag, const char *s)
{
	size_t n = strlen(s);

	return tag->value_len == n && memcmp(tag->value, s, n) == 0;
}
