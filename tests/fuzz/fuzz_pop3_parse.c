/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: POP3 command lines, arguments and byte-stuffing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The byte-stuffing encoder lives in pop3_retr.c next to the streaming
 * that calls into sessions and the core; the harness has neither (only
 * the encoder runs here).
 */
void
pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
	(void)s;
	(void)fmt;
	abort();
}

void
pop3_write(struct pop3_session *s, const void *data, size_t len)
{
	(void)s;
	(void)data;
	(void)len;
	abort();
}

void
pop3_session_continue(struct pop3_session *s)
{
	(void)s;
	abort();
}

void
pop3_session_wait(struct pop3_session *s, enum pop3_wait wait)
{
	(void)s;
	(void)wait;
	abort();
}

bool
pop3_session_orphan_done(struct pop3_session *s)
{
	(void)s;
	abort();
}

PTL_API void
ptl_conn_abort(struct ptl_conn *c)
{
	(void)c;
	abort();
}

PTL_API void
ptl_conn_log(const struct ptl_conn *c, enum ptl_log_level level,
             const char *fmt, ...)
{
	(void)c;
	(void)level;
	(void)fmt;
	abort();
}

PTL_API int
ptl_task_submit(ptl_task_work_fn work, ptl_task_done_fn done, void *arg)
{
	(void)work;
	(void)done;
	(void)arg;
	abort();
}

/* ---- Command parser ---------------------------------------------------- */

static uint64_t
mix(uint64_t h, const void *p, size_t len)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ s[i]) * 0x100000001b3ull;
	return (h ^ len) * 0x100000001b3ull;
}

/* The arguments of an accepted line, split and checked. */
static void
check_args(const struct pop3_parser *p)
{
	struct pop3_args a;
	uint64_t v;

	if (p->args_len >= p->args_cap || p->args[p->args_len] != '\0')
		abort();
	for (size_t i = 0; i < p->args_len; i++) {
		unsigned char c = (unsigned char)p->args[i];

		if (c < 0x20 || c == 0x7f)
			abort();
	}
	if (p->mode == POP3_PARSE_COMMAND) {
		if (p->verb_len == 0 || p->verb_len > POP3_VERB_MAX ||
		    p->verb[p->verb_len] != '\0')
			abort();
		for (size_t i = 0; i < p->verb_len; i++)
			if (p->verb[i] < 'A' || p->verb[i] > 'Z')
				abort();
	}
	pop3_args_split(p->args, p->args_len, &a);
	if (a.argc > POP3_ARGS_MAX + 1)
		abort();
	for (size_t i = 0; i < a.argc && i < POP3_ARGS_MAX; i++) {
		if (a.argv[i] < p->args || a.argl[i] == 0 ||
		    a.argv[i] + a.argl[i] > p->args + p->args_len ||
		    memchr(a.argv[i], ' ', a.argl[i]) != NULL)
			abort();
		if (pop3_parse_number(a.argv[i], a.argl[i], &v) == PTL_OK &&
		    (v > 9999999999ull || a.argl[i] > 10))
			abort();
	}
}

/*
 * Feed @in in pieces of @step bytes; every line result goes into the
 * returned hash. Lines alternate between the modes as @modes says.
 */
static uint64_t
parse_all(const uint8_t *in, size_t size, size_t step, size_t max_line,
          size_t args_cap, uint8_t modes)
{
	struct pop3_parser p;
	char *args = malloc(args_cap);
	uint64_t h = 0xcbf29ce484222325ull;
	size_t off = 0, line_start = 0, lines = 0, n, used;
	int rc;

	if (args == NULL)
		abort();
	pop3_parse_init(&p, args, args_cap, max_line);
	while (off < size) {
		n = size - off < step ? size - off : step;
		rc = pop3_parse_feed(&p, (const char *)in + off, n, &used);
		if (used > n || (rc == PTL_AGAIN && used != n) ||
		    (rc != PTL_AGAIN &&
		     (used == 0 || in[off + used - 1] != '\n')))
			abort();
		off += used;
		if (rc == PTL_AGAIN)
			continue;
		h = mix(h, &rc, sizeof(rc));
		if (rc == PTL_OK) {
			/* The limit counts CRLF: a longer line is refused. */
			if (off - line_start > p.max_line)
				abort();
			check_args(&p);
			h = mix(h, p.verb, p.verb_len);
			h = mix(h, p.args, p.args_len);
		} else if (rc == PTL_DECLINED) {
			if (p.error == POP3_PARSE_OK)
				abort();
			h = mix(h, &p.error, sizeof(p.error));
		} else {
			abort();
		}
		line_start = off;
		lines++;
		pop3_parse_set_mode(
		    &p,
		    (modes >> (lines % 8)) & 1 ? POP3_PARSE_LINE
		                               : POP3_PARSE_COMMAND,
		    (modes & 1) ? POP3_SASL_LINE_MAX : max_line);
	}
	free(args);
	return h;
}

/* ---- Byte-stuffing ----------------------------------------------------- */

/*
 * RFC 1939 3 written out plainly: a line starting with "." gets another,
 * every line ends in CRLF (a CR before the LF is kept, not doubled), a
 * last line without its LF gets one, then "." CRLF.
 */
static size_t
stuff_reference(const uint8_t *in, size_t len, char *out)
{
	size_t i = 0, n = 0, start, end;

	while (i < len) {
		start = i;
		while (i < len && in[i] != '\n')
			i++;
		end = i;
		if (in[start] == '.' && end > start)
			out[n++] = '.';
		memcpy(out + n, in + start, end - start);
		n += end - start;
		if (i < len || end > start) {
			if (end == start || in[end - 1] != '\r')
				out[n++] = '\r';
			out[n++] = '\n';
		}
		if (i < len)
			i++; /* the LF */
	}
	memcpy(out + n, ".\r\n", 3);
	return n + 3;
}

/*
 * Encode as pop3_retr_send() does: chunks read into the upper part of one
 * buffer, encoded in place into its lower part after a status line.
 */
static size_t
stuff_in_place(const uint8_t *in, size_t len, size_t chunk, size_t status,
               bool top, uint64_t lines, char *result)
{
	struct pop3_dot d;
	char *buf = malloc(2 * chunk + 64), *bin = buf + chunk + 64;
	size_t off = 0, total = 0, got, n, used;

	if (buf == NULL)
		abort();
	pop3_dot_init(&d, top, lines);
	for (;;) {
		got = len - off < chunk ? len - off : chunk;
		memcpy(bin, in + off, got);
		memset(buf, 'S', status);
		n = status;
		n += pop3_dot_encode(&d, bin, got, buf + n, &used);
		if (used > got || (!d.done && used != got))
			abort();
		off += got;
		if (d.done || off >= len)
			n += pop3_dot_finish(&d, buf + n);
		if (n > 2 * chunk + 64)
			abort();
		memcpy(result + total, buf + status, n - status);
		total += n - status;
		status = 0;
		if (d.done || off >= len)
			break;
	}
	free(buf);
	return total;
}

static void
stuffing(const uint8_t *in, size_t len, size_t chunk, size_t status, bool top,
         uint64_t lines)
{
	char *whole = malloc(2 * len + 8), *pieces = malloc(2 * len + 8);
	struct pop3_dot d;
	size_t n, m, used;

	if (whole == NULL || pieces == NULL)
		abort();
	pop3_dot_init(&d, top, lines);
	n = pop3_dot_encode(&d, (const char *)in, len, whole, &used);
	if (n > 2 * len || used > len || (!top && used != len))
		abort();
	n += pop3_dot_finish(&d, whole + n);
	if (!top) {
		m = stuff_reference(in, len, pieces);
		if (m != n || memcmp(whole, pieces, n) != 0)
			abort();
	}
	m = stuff_in_place(in, len, chunk, status, top, lines, pieces);
	if (m != n || memcmp(whole, pieces, n) != 0)
		abort();
	free(whole);
	free(pieces);
}

/* Input: 4 bytes of settings, then the client's (or message's) bytes. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t max_line, args_cap, step, chunk;
	uint8_t modes;
	uint64_t a, b;

	if (size < 4)
		return 0;
	max_line = 3 + data[0] % 64 * 4;
	args_cap = data[1] & 1 ? POP3_SASL_LINE_MAX + 1 : 1 + data[1] / 2;
	step = 1 + data[2] % 32;
	modes = data[3];
	data += 4;
	size -= 4;

	/* However the input is cut, the lines come out the same. */
	a = parse_all(data, size, size + 1, max_line, args_cap, modes);
	b = parse_all(data, size, step, max_line, args_cap, modes);
	if (a != b)
		abort();

	chunk = 1 + (size_t)modes % 64;
	stuffing(data, size, chunk, step + 16, false, 0);
	stuffing(data, size, chunk, step, true, modes % 8);
	return 0;
}
