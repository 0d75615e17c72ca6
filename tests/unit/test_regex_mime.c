/* SPDX-License-Identifier: MIT */
/* Unit tests: filter_regex's MIME walker, base64/QP decoders, RFC 2047. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "regex_2047.h"
#include "regex_mime.h"

/* ---- Decoders ---------------------------------------------------------- */

static void
test_b64_across_calls(void **state)
{
	struct mime_b64 st = {0};
	char out[64];
	size_t n;

	(void)state;
	/* "Hello, world!" split at odd places, with line breaks, junk. */
	n = mime_b64_decode(&st, "SGVs", 4, out);
	n += mime_b64_decode(&st, "bG8s\r\nIH", 8, out + n);
	n += mime_b64_decode(&st, "dv*cm\txkIQ==", 12, out + n);
	assert_int_equal(n, 13);
	assert_memory_equal(out, "Hello, world!", 13);
	/* After the padding the rest is ignored. */
	assert_int_equal(mime_b64_decode(&st, "QUJD", 4, out), 0);
}

static void
test_b64_padding(void **state)
{
	struct mime_b64 st = {0};
	char out[16];

	(void)state;
	assert_int_equal(mime_b64_decode(&st, "YQ==", 4, out), 1);
	assert_int_equal(out[0], 'a');
	memset(&st, 0, sizeof(st));
	assert_int_equal(mime_b64_decode(&st, "YWI=", 4, out), 2);
	assert_memory_equal(out, "ab", 2);
}

static void
test_qp_line(void **state)
{
	char out[128];
	bool soft;
	size_t n;

	(void)state;
	n = mime_qp_decode_line("Caf=E9 =3D ok  \t", 16, out, &soft);
	assert_false(soft);
	assert_int_equal(n, 9);
	assert_memory_equal(out, "Caf\xe9 = ok", 9);
	n = mime_qp_decode_line("soft=", 5, out, &soft);
	assert_true(soft);
	assert_int_equal(n, 4);
	/* Malformed sequences stay. */
	n = mime_qp_decode_line("a=ZZb=4", 7, out, &soft);
	assert_false(soft);
	assert_int_equal(n, 7);
	assert_memory_equal(out, "a=ZZb=4", 7);
	n = mime_qp_decode_line("=4a", 3, out, &soft);
	assert_int_equal(n, 1);
	assert_int_equal(out[0], 'J');
}

static void
test_latin1(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(mime_latin1_to_utf8("\xe9t\xe9", 3, out), 5);
	assert_memory_equal(out, "\xc3\xa9t\xc3\xa9", 5);
	assert_int_equal(mime_charset_find("ISO-8859-1", 10),
	                 MIME_CHARSET_LATIN1);
	assert_int_equal(mime_charset_find("UTF-8", 5), MIME_CHARSET_UTF8);
	assert_int_equal(mime_charset_find("koi8-r", 6), MIME_CHARSET_OTHER);
}

/* ---- RFC 2047 ---------------------------------------------------------- */

static void
check_2047(const char *in, const char *want)
{
	char out[256];
	size_t n = regex_2047_decode(in, strlen(in), out, sizeof(out));

	assert_int_equal(n, strlen(want));
	assert_string_equal(out, want);
}

static void
test_2047(void **state)
{
	(void)state;
	check_2047("plain text", "plain text");
	check_2047("=?UTF-8?B?w5xuw69jb2Rl?=", "\xc3\x9c"
	                                       "n\xc3\xaf"
	                                       "code");
	check_2047("=?iso-8859-1?q?caf=E9_cr=E8me?=",
	           "caf\xc3\xa9 cr\xc3\xa8me");
	/* White space between two words goes, around them it stays. */
	check_2047("a =?utf-8?q?b?=  =?utf-8?q?c?= d", "a bc d");
	/* Unknown charset, malformed word, space inside: kept. */
	check_2047("=?koi8-r?b?w5w=?=", "=?koi8-r?b?w5w=?=");
	check_2047("=?utf-8?x?abc?=", "=?utf-8?x?abc?=");
	check_2047("=?utf-8?q?a b?=", "=?utf-8?q?a b?=");
	check_2047("=?utf-8?q?unterminated", "=?utf-8?q?unterminated");
	/* RFC 2231 language. */
	check_2047("=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore");
	check_2047("=?utf-8?q?"
	           "?=x",
	           "x");
}

static void
test_2047_cut(void **state)
{
	char out[8];
	size_t n;

	(void)state;
	n = regex_2047_decode("=?utf-8?q?abcdefghijkl?=", 24, out, sizeof(out));
	assert_int_equal(n, 7);
	assert_string_equal(out, "abcdefg");
}

/* ---- The walker -------------------------------------------------------- */

struct collect {
	char headers[4096];
	char body[8192];
	char text[8192];
	size_t nheaders, nbody, ntext;
	size_t stop_after_text; /* 0: never */
};

static void
collect_add(char *buf, size_t cap, const char *a, size_t alen, const char *b,
            size_t blen)
{
	size_t len = strlen(buf);

	(void)snprintf(buf + len, cap - len, "%.*s%s%.*s|", (int)alen, a,
	               b != NULL ? "=" : "", (int)blen, b != NULL ? b : "");
}

static bool
on_header(void *arg, const char *name, size_t nlen, const char *value,
          size_t vlen)
{
	struct collect *c = arg;

	c->nheaders++;
	collect_add(c->headers, sizeof(c->headers), name, nlen, value, vlen);
	return true;
}

static bool
on_body(void *arg, const char *line, size_t len)
{
	struct collect *c = arg;

	c->nbody++;
	collect_add(c->body, sizeof(c->body), line, len, NULL, 0);
	return true;
}

static bool
on_text(void *arg, const char *line, size_t len)
{
	struct collect *c = arg;

	c->ntext++;
	collect_add(c->text, sizeof(c->text), line, len, NULL, 0);
	return c->stop_after_text == 0 || c->ntext < c->stop_after_text;
}

static struct mime_limits
default_limits(void)
{
	struct mime_limits lim = {
	    .max_line = 1024,
	    .max_header_bytes = 1 << 20,
	    .max_headers = 10000,
	    .max_depth = 20,
	    .max_text_bytes = 1 << 20,
	};

	return lim;
}

/* Feed @msg in pieces of @step bytes. */
static void
walk(const char *msg, size_t step, const struct mime_limits *lim,
     struct collect *c, struct mime_stats *st)
{
	struct mime_handler h = {c, on_header, on_body, on_text};
	struct mime_walker *w = mime_walker_new(lim, &h);
	size_t len = strlen(msg), off, n;

	assert_non_null(w);
	for (off = 0; off < len; off += n) {
		n = len - off < step ? len - off : step;
		if (!mime_walker_feed(w, msg + off, n))
			break;
	}
	(void)mime_walker_finish(w);
	if (st != NULL)
		mime_walker_stats(w, st);
	mime_walker_free(w);
}

static const char *const multipart_msg =
    "From: a@example.org\r\n"
    "Subject: hello\r\n"
    "\tworld\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed;\r\n"
    " boundary=\"=_outer\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--=_outer\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "bGluZSBvbmUKbGluZSB0d28K\r\n"
    "--=_outer\r\n"
    "Content-Type: multipart/alternative; boundary=inner\r\n"
    "\r\n"
    "--inner\r\n"
    "Content-Type: text/html; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "<p>caf=E9 soft=\r\n"
    "break</p>\r\n"
    "--inner\r\n"
    "Content-Type: image/png\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "aW1hZ2UgYnl0ZXM=\r\n"
    "--inner--\r\n"
    "--=_outer\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "Subject: inner message\r\n"
    "\r\n"
    "inner body\r\n"
    "--=_outer--\r\n"
    "epilogue\r\n";

static void
test_walker_multipart(void **state)
{
	static const size_t steps[] = {1, 3, 7, 64, 100000};
	struct mime_limits lim = default_limits();
	struct collect c;
	struct mime_stats st;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		memset(&c, 0, sizeof(c));
		walk(multipart_msg, steps[i], &lim, &c, &st);
		assert_string_equal(c.headers,
		                    "From=a@example.org|Subject=hello\tworld|"
		                    "MIME-Version=1.0|Content-Type=multipart/"
		                    "mixed; boundary=\"=_outer\"|");
		assert_string_equal(c.text, "line one|line two|"
		                            "<p>caf\xc3\xa9 softbreak</p>|"
		                            "inner body|");
		assert_int_equal(st.parts, 5);
		assert_true(strncmp(c.body, "preamble|--=_outer|", 19) == 0);
		assert_true(strstr(c.body, "|epilogue|") != NULL);
		assert_false(st.depth_capped);
	}
}

static void
test_walker_plain_message(void **state)
{
	struct mime_limits lim = default_limits();
	struct collect c;

	(void)state;
	memset(&c, 0, sizeof(c));
	/* No MIME: the body is text/plain, as sent; a bare LF ends lines. */
	walk("Subject: x\r\n\r\nfirst\r\nsecond\nlast", 5, &lim, &c, NULL);
	assert_string_equal(c.body, "first|second|last|");
	assert_string_equal(c.text, "first|second|last|");
	/* Only a header, without the empty line. */
	memset(&c, 0, sizeof(c));
	walk("Subject: only\r\nX-A: b", 2, &lim, &c, NULL);
	assert_string_equal(c.headers, "Subject=only|X-A=b|");
	assert_int_equal(c.nbody, 0);
}

static void
test_walker_long_lines(void **state)
{
	struct mime_limits lim = default_limits();
	struct collect c;
	char *msg;
	size_t i;

	(void)state;
	lim.max_line = 64;
	msg = malloc(400);
	assert_non_null(msg);
	strcpy(msg, "Subject: s\r\n\r\n");
	for (i = strlen(msg); i < 14 + 200; i++)
		msg[i] = 'a';
	strcpy(msg + i, "\r\nend\r\n");
	memset(&c, 0, sizeof(c));
	walk(msg, 7, &lim, &c, NULL);
	/* 200 bytes: three pieces of 64 and one of 8, then "end". */
	assert_int_equal(c.nbody, 5);
	assert_true(strstr(c.body, "|end|") != NULL);
	free(msg);
}

/*
 * A line of exactly max_line bytes whose LF comes in the next piece is
 * one line, as when both come together (fuzz_mime: an extra empty body
 * line appeared when the input was cut right before the LF).
 */
static void
test_walker_full_line_then_lf(void **state)
{
	struct mime_limits lim = default_limits();
	struct collect whole, cut;
	char msg[128];
	size_t step;

	(void)state;
	lim.max_line = 64;
	strcpy(msg, "A: b\n\n");
	memset(msg + 6, 'x', 64);
	strcpy(msg + 70, "\nend\n");
	memset(&whole, 0, sizeof(whole));
	walk(msg, sizeof(msg), &lim, &whole, NULL);
	assert_int_equal(whole.nbody, 2);
	for (step = 1; step <= 70; step++) {
		memset(&cut, 0, sizeof(cut));
		walk(msg, step, &lim, &cut, NULL);
		assert_int_equal(cut.nbody, 2);
		assert_string_equal(cut.body, whole.body);
		assert_string_equal(cut.text, whole.text);
	}
}

static bool
on_text_not_null(void *arg, const char *line, size_t len)
{
	size_t *n = arg;

	assert_non_null(line);
	(void)len;
	(*n)++;
	return true;
}

/* A decoded text starting with an empty line (fuzz_mime: it was handed
 * over as NULL, which PCRE2 refuses as a subject). */
static void
test_walker_empty_first_text_line(void **state)
{
	static const char msg[] = "Content-Transfer-Encoding: base64\n\n"
	                          "CmFiYwo=\n";
	struct mime_limits lim = default_limits();
	struct mime_handler h = {NULL, NULL, NULL, on_text_not_null};
	struct mime_walker *w;
	size_t n = 0;

	(void)state;
	h.arg = &n;
	w = mime_walker_new(&lim, &h);
	assert_non_null(w);
	assert_true(mime_walker_feed(w, msg, sizeof(msg) - 1));
	assert_true(mime_walker_finish(w));
	mime_walker_free(w);
	assert_int_equal(n, 2); /* "" and "abc" */
}

static void
test_walker_depth_cap(void **state)
{
	struct mime_limits lim = default_limits();
	char msg[8192], *p = msg;
	struct mime_stats st;
	struct collect c;
	int i;

	(void)state;
	lim.max_depth = 5;
	p += sprintf(p, "Subject: deep\r\n");
	for (i = 0; i < 50; i++)
		p += sprintf(p,
		             "Content-Type: multipart/mixed; boundary=b%d\r\n"
		             "\r\n--b%d\r\n",
		             i, i);
	p += sprintf(p, "Content-Type: text/plain\r\n\r\nDEEP\r\n");
	for (i = 49; i >= 0; i--)
		p += sprintf(p, "--b%d--\r\n", i);
	memset(&c, 0, sizeof(c));
	walk(msg, 13, &lim, &c, &st);
	assert_true(st.depth_capped);
	assert_null(strstr(c.text, "DEEP"));
}

static void
test_walker_header_limits(void **state)
{
	struct mime_limits lim = default_limits();
	char msg[4096], *p = msg;
	struct mime_stats st;
	struct collect c;
	int i;

	(void)state;
	lim.max_headers = 10;
	for (i = 0; i < 50; i++)
		p += sprintf(p, "X-%d: v\r\n", i);
	p += sprintf(p, "\r\nbody\r\n");
	memset(&c, 0, sizeof(c));
	walk(msg, 11, &lim, &c, &st);
	assert_int_equal(c.nheaders, 10);
	assert_true(st.header_truncated);
	assert_string_equal(c.body, "body|");

	lim = default_limits();
	lim.max_header_bytes = 100;
	memset(&c, 0, sizeof(c));
	walk(msg, 11, &lim, &c, &st);
	assert_true(c.nheaders < 15);
	assert_true(st.header_truncated);
	assert_string_equal(c.body, "body|");
}

static void
test_walker_text_cap_and_stop(void **state)
{
	struct mime_limits lim = default_limits();
	struct mime_stats st;
	struct collect c;

	(void)state;
	lim.max_text_bytes = 10;
	memset(&c, 0, sizeof(c));
	walk("S: x\r\n\r\n0123456789abcdef\r\nmore\r\n", 4, &lim, &c, &st);
	assert_true(st.text_capped);
	assert_string_equal(c.text, "0123456789|");

	lim = default_limits();
	memset(&c, 0, sizeof(c));
	c.stop_after_text = 2;
	walk("S: x\r\n\r\na\r\nb\r\nc\r\nd\r\n", 100, &lim, &c, NULL);
	assert_int_equal(c.ntext, 2);
}

static void
test_walker_boundary_edge_cases(void **state)
{
	struct mime_limits lim = default_limits();
	struct collect c;

	(void)state;
	/* Transport padding after a delimiter; a line that only starts like
	 * the boundary is content; an outer delimiter closes inner parts. */
	memset(&c, 0, sizeof(c));
	walk("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
	     "--b  \r\n\r\none\r\n--bx is text\r\n"
	     "--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n"
	     "--c\r\n\r\ntwo\r\n"
	     "--b--\r\nafter\r\n",
	     9, &lim, &c, NULL);
	assert_string_equal(c.text, "one|--bx is text|two|");
	/* A multipart without a boundary is not walked into. */
	memset(&c, 0, sizeof(c));
	walk("Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\ntext\r\n", 100,
	     &lim, &c, NULL);
	assert_string_equal(c.text, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_b64_across_calls),
	    cmocka_unit_test(test_b64_padding),
	    cmocka_unit_test(test_qp_line),
	    cmocka_unit_test(test_latin1),
	    cmocka_unit_test(test_2047),
	    cmocka_unit_test(test_2047_cut),
	    cmocka_unit_test(test_walker_multipart),
	    cmocka_unit_test(test_walker_plain_message),
	    cmocka_unit_test(test_walker_long_lines),
	    cmocka_unit_test(test_walker_full_line_then_lf),
	    cmocka_unit_test(test_walker_empty_first_text_line),
	    cmocka_unit_test(test_walker_depth_cap),
	    cmocka_unit_test(test_walker_header_limits),
	    cmocka_unit_test(test_walker_text_cap_and_stop),
	    cmocka_unit_test(test_walker_boundary_edge_cases),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
