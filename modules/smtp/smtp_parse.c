/* SPDX-License-Identifier: MIT */
/* SMTP command lines: verb and argument splitting, HELO and BDAT arguments. */
#include <string.h>
#include <strings.h>

#include <petrel/core.h>

#include "smtp_parse.h"

static bool
parse_is_alpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool
parse_is_blank(unsigned char c)
{
	return c == ' ' || c == '\t';
}

int
smtp_parse_command(const char *line, size_t len, struct smtp_cmdline *out)
{
	size_t i, end = len;

	if (end > 0 && line[end - 1] == '\n')
		end--;
	if (end > 0 && line[end - 1] == '\r')
		end--;
	/*
	 * A NUL or a stray CR inside a command is never legitimate, and
	 * tolerating them is how commands get split differently by
	 * different parsers along a path.
	 */
	for (i = 0; i < end; i++) {
		if (line[i] == '\0' || line[i] == '\r' || line[i] == '\n')
			return PTL_ERROR;
	}
	for (i = 0; i < end && parse_is_alpha((unsigned char)line[i]); i++)
		;
	if (i == 0 || (i < end && line[i] != ' '))
		return PTL_ERROR;
	out->verb = line;
	out->verb_len = i;
	while (i < end && line[i] == ' ')
		i++;
	while (end > i && parse_is_blank((unsigned char)line[end - 1]))
		end--;
	out->args = line + i;
	out->args_len = end - i;
	return PTL_OK;
}

bool
smtp_verb_is(const struct smtp_cmdline *cl, const char *verb)
{
	size_t n = strlen(verb);

	return cl->verb_len == n && strncasecmp(cl->verb, verb, n) == 0;
}

int
smtp_parse_keyword(const char *args, size_t len, const char *keyword,
                   const char **rest_out, size_t *rest_len_out)
{
	size_t n = strlen(keyword);

	if (len < n || strncasecmp(args, keyword, n) != 0)
		return PTL_ERROR;
	while (n < len && args[n] == ' ')
		n++;
	*rest_out = args + n;
	*rest_len_out = len - n;
	return PTL_OK;
}

bool
smtp_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0, n, k;
	uint32_t cp;

	while (i < len) {
		unsigned char c = s[i];

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1fu;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0fu;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07u;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3fu);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

int
smtp_parse_helo(const char *args, size_t len)
{
	size_t i;

	if (len == 0 || len > SMTP_HELO_MAX)
		return PTL_ERROR;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)args[i];

		if (c < 0x20 || c == 0x7f)
			return PTL_ERROR;
	}
	return smtp_utf8_valid((const unsigned char *)args, len) ? PTL_OK
	                                                         : PTL_ERROR;
}

int
smtp_parse_bdat(const char *args, size_t len, uint64_t *size_out,
                bool *last_out)
{
	uint64_t size = 0;
	size_t i = 0;

	if (len == 0)
		return PTL_ERROR;
	for (; i < len && args[i] >= '0' && args[i] <= '9'; i++) {
		if (size > (UINT64_MAX / 2 - 9) / 10)
			return PTL_ERROR;
		size = size * 10 + (uint64_t)(args[i] - '0');
	}
	if (i == 0)
		return PTL_ERROR;
	*last_out = false;
	if (i < len) {
		if (args[i] != ' ')
			return PTL_ERROR;
		while (i < len && args[i] == ' ')
			i++;
		if (len - i != 4 || strncasecmp(args + i, "LAST", 4) != 0)
			return PTL_ERROR;
		*last_out = true;
	}
	*size_out = size;
	return PTL_OK;
}
