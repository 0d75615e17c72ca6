/* SPDX-License-Identifier: MIT */
/* POP3 command parser: byte by byte, resumable across partial reads. */
#include <string.h>

#include "pop3.h"

void
pop3_parse_init(struct pop3_parser *p, char *args, size_t args_cap,
                size_t max_line)
{
	memset(p, 0, sizeof(*p));
	p->args = args;
	p->args_cap = args_cap;
	pop3_parse_set_mode(p, POP3_PARSE_COMMAND, max_line);
}

void
pop3_parse_set_mode(struct pop3_parser *p, enum pop3_parse_mode mode,
                    size_t max_line)
{
	p->mode = mode;
	/* The arguments plus the verb, a space and CRLF must fit. */
	if (max_line > p->args_cap)
		max_line = p->args_cap;
	p->max_line = max_line;
	pop3_parse_reset(p);
}

void
pop3_parse_reset(struct pop3_parser *p)
{
	p->state = POP3_PS_START;
	p->error = POP3_PARSE_OK;
	p->line_len = 0;
	p->verb_len = 0;
	p->verb[0] = '\0';
	p->args_len = 0;
	if (p->args_cap > 0)
		p->args[0] = '\0';
}

/* Refuse the line: keep eating up to its LF, then report once. */
static void
pop3_parse_refuse(struct pop3_parser *p, enum pop3_parse_error error)
{
	if (p->error == POP3_PARSE_OK)
		p->error = error;
	p->state = POP3_PS_SKIP;
}

static bool
pop3_is_letter(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* The line ended (LF consumed): report it. */
static int
pop3_parse_done(struct pop3_parser *p)
{
	if (p->state == POP3_PS_SKIP || p->error != POP3_PARSE_OK) {
		p->state = POP3_PS_START;
		return PTL_DECLINED;
	}
	if (p->mode == POP3_PARSE_COMMAND && p->verb_len == 0) {
		p->error = POP3_PARSE_BAD_VERB;
		p->state = POP3_PS_START;
		return PTL_DECLINED;
	}
	p->verb[p->verb_len] = '\0';
	p->args[p->args_len] = '\0';
	p->state = POP3_PS_START;
	return PTL_OK;
}

int
pop3_parse_feed(struct pop3_parser *p, const char *data, size_t len,
                size_t *used_out)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)data[i];

		if (p->state == POP3_PS_START) {
			/* A fresh line: forget the previous one. */
			p->error = POP3_PARSE_OK;
			p->line_len = 0;
			p->verb_len = 0;
			p->args_len = 0;
			p->state = p->mode == POP3_PARSE_COMMAND ? POP3_PS_VERB
			                                         : POP3_PS_ARGS;
		}
		p->line_len++;
		if (c == '\n') {
			*used_out = i + 1;
			return pop3_parse_done(p);
		}
		/*
		 * The limit counts CRLF (RFC 2449 section 4): a line of
		 * max_line - 2 octets plus CRLF is the longest accepted.
		 * Being too long is the error reported, whatever else.
		 */
		if (p->line_len + (c == '\r' ? 1 : 2) > p->max_line) {
			p->error = POP3_PARSE_TOO_LONG;
			p->state = POP3_PS_SKIP;
			continue;
		}
		if (p->state == POP3_PS_SKIP)
			continue;
		if (c == '\0') {
			pop3_parse_refuse(p, POP3_PARSE_NUL);
			continue;
		}
		if (p->state == POP3_PS_CR) {
			/* A CR inside a line could smuggle a second line to
			 * whatever logs or forwards it. */
			pop3_parse_refuse(p, POP3_PARSE_BAD_CHAR);
			continue;
		}
		if (c == '\r') {
			p->state = POP3_PS_CR;
			continue;
		}
		if (c < 0x20 || c == 0x7f) {
			pop3_parse_refuse(p, POP3_PARSE_BAD_CHAR);
			continue;
		}
		if (p->state == POP3_PS_VERB) {
			if (c == ' ' && p->verb_len > 0) {
				p->state = POP3_PS_ARGS;
				continue;
			}
			if (!pop3_is_letter(c) ||
			    p->verb_len == POP3_VERB_MAX) {
				pop3_parse_refuse(p, POP3_PARSE_BAD_VERB);
				continue;
			}
			p->verb[p->verb_len++] = (char)(c & ~0x20);
			continue;
		}
		/* POP3_PS_ARGS; the length check above keeps room for NUL. */
		p->args[p->args_len++] = (char)c;
	}
	*used_out = len;
	return PTL_AGAIN;
}

int
pop3_parse_number(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	/* Ten digits cover every 32-bit number and cannot overflow. */
	if (len == 0 || len > 10)
		return PTL_ERROR;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return PTL_ERROR;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return PTL_OK;
}

void
pop3_args_split(const char *raw, size_t len, struct pop3_args *out)
{
	size_t i = 0, start;

	memset(out, 0, sizeof(*out));
	out->raw = raw;
	out->raw_len = len;
	for (;;) {
		while (i < len && raw[i] == ' ')
			i++;
		if (i == len)
			return;
		if (out->argc == POP3_ARGS_MAX) {
			out->argc = POP3_ARGS_MAX + 1;
			return;
		}
		start = i;
		while (i < len && raw[i] != ' ')
			i++;
		out->argv[out->argc] = raw + start;
		out->argl[out->argc] = i - start;
		out->argc++;
	}
}
