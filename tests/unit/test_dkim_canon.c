/* SPDX-License-Identifier: MIT */
/* DKIM canonicalization and the header/body split (modules/dkim). */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dkim.h"

/* Collects what a canonicalizer emits. */
struct sink {
	char buf[65536];
	size_t len;
	size_t calls;
};

static void
sink_emit(void *arg, const char *data, size_t len)
{
	struct sink *s = arg;

	assert_true(s->len + len <= sizeof(s->buf));
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	s->calls++;
}

static void
assert_sink(const struct sink *s, const char *want)
{
	size_t n = strlen(want);

	if (s->len != n || memcmp(s->buf, want, n) != 0)
		fail_msg("got [%.*s] (%zu bytes), want [%s] (%zu bytes)",
		         (int)s->len, s->buf, s->len, want, n);
}

/* Canonicalize @body in chunks of @chunk bytes (0: all at once). */
static void
body_canon(enum dkim_canon mode, const char *body, size_t len, size_t chunk,
           bool has_l, uint64_t l, struct sink *out, uint64_t *total)
{
	struct dkim_body_canon *c = malloc(sizeof(*c));
	size_t off, n;

	assert_non_null(c);
	memset(out, 0, sizeof(*out));
	dkim_body_canon_init(c, mode, has_l, l, sink_emit, out);
	if (chunk == 0)
		chunk = len > 0 ? len : 1;
	for (off = 0; off < len; off += n) {
		n = len - off < chunk ? len - off : chunk;
		dkim_body_canon_update(c, body + off, n);
	}
	dkim_body_canon_final(c);
	if (total != NULL)
		*total = c->total;
	free(c);
}

static void
check_body(enum dkim_canon mode, const char *body, const char *want)
{
	static const size_t chunks[] = {0, 1, 2, 3, 7};
	struct sink out;
	size_t i;

	/* Every chunking gives the same bytes: the state carries over. */
	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		body_canon(mode, body, strlen(body), chunks[i], false, 0, &out,
		           NULL);
		assert_sink(&out, want);
	}
}

/* RFC 6376 section 3.4.5, both canonicalizations of the example. */
static void
test_rfc6376_example_headers(void **state)
{
	const char *a = "A: X ";
	const char *b = "B : Y\t\r\n\tZ  ";
	struct sink out = {0};

	dkim_canon_header(DKIM_CANON_RELAXED, a, strlen(a), true, sink_emit,
	                  &out);
	dkim_canon_header(DKIM_CANON_RELAXED, b, strlen(b), true, sink_emit,
	                  &out);
	assert_sink(&out, "a:X\r\nb:Y Z\r\n");
	memset(&out, 0, sizeof(out));
	dkim_canon_header(DKIM_CANON_SIMPLE, a, strlen(a), true, sink_emit,
	                  &out);
	dkim_canon_header(DKIM_CANON_SIMPLE, b, strlen(b), true, sink_emit,
	                  &out);
	assert_sink(&out, "A: X \r\nB : Y\t\r\n\tZ  \r\n");
}

static void
test_rfc6376_example_body(void **state)
{
	const char *body = " C \r\nD \t E\r\n\r\n\r\n";

	check_body(DKIM_CANON_RELAXED, body, " C\r\nD E\r\n");
	check_body(DKIM_CANON_SIMPLE, body, " C \r\nD \t E\r\n");
}

static void
test_empty_bodies(void **state)
{
	/* Simple: an empty body is one CRLF; relaxed: nothing at all. */
	check_body(DKIM_CANON_SIMPLE, "", "\r\n");
	check_body(DKIM_CANON_RELAXED, "", "");
	check_body(DKIM_CANON_SIMPLE, "\r\n\r\n\r\n", "\r\n");
	check_body(DKIM_CANON_RELAXED, "\r\n\r\n\r\n", "");
	/* A line of spaces is empty only in relaxed mode. */
	check_body(DKIM_CANON_RELAXED, " \t \r\n \r\n", "");
	check_body(DKIM_CANON_SIMPLE, " \t \r\n", " \t \r\n");
}

static void
test_trailing_lines_and_missing_crlf(void **state)
{
	check_body(DKIM_CANON_SIMPLE, "a\r\n\r\n\r\nb\r\n\r\n",
	           "a\r\n\r\n\r\nb\r\n");
	check_body(DKIM_CANON_RELAXED, "a  \r\n  \r\n\tb \t\r\n \r\n",
	           "a\r\n\r\n b\r\n");
	/* No CRLF at the end: one is added; trailing WSP still goes. */
	check_body(DKIM_CANON_SIMPLE, "end", "end\r\n");
	check_body(DKIM_CANON_RELAXED, "end \t", "end\r\n");
	check_body(DKIM_CANON_SIMPLE, "a\r\n\r\nend", "a\r\n\r\nend\r\n");
}

/* Single spaces stay inside fast runs; everything else is reduced. */
static void
test_relaxed_spans(void **state)
{
	check_body(DKIM_CANON_RELAXED, "a b\tc  d \r\n e f\t\r\ng h",
	           "a b c d\r\n e f\r\ng h\r\n");
	check_body(DKIM_CANON_RELAXED, "\x80 \xff\x01 \x7f",
	           "\x80 \xff\x01 \x7f\r\n");
	check_body(DKIM_CANON_RELAXED, " x \r\n", " x\r\n");
	check_body(DKIM_CANON_SIMPLE, "a b\tc  d \r\n", "a b\tc  d \r\n");
}

static void
test_lone_cr_and_lf(void **state)
{
	/* Only CR LF ends a line; a lone CR or LF is line content. */
	check_body(DKIM_CANON_SIMPLE, "a\rb\nc\r\n", "a\rb\nc\r\n");
	check_body(DKIM_CANON_RELAXED, "a \r b\r\n", "a \r b\r\n");
	check_body(DKIM_CANON_SIMPLE, "a\r", "a\r\r\n");
	check_body(DKIM_CANON_SIMPLE, "a\r\r\n", "a\r\r\n");
}

static void
test_body_length_limit(void **state)
{
	const char *body = "Hello\r\n\r\nWorld  \r\n\r\n";
	struct sink out;
	uint64_t total;

	body_canon(DKIM_CANON_RELAXED, body, strlen(body), 1, true, 5, &out,
	           &total);
	assert_sink(&out, "Hello");
	assert_int_equal(total, strlen("Hello\r\n\r\nWorld\r\n"));
	body_canon(DKIM_CANON_SIMPLE, body, strlen(body), 3, true, 0, &out,
	           &total);
	assert_sink(&out, "");
	assert_int_equal(total, strlen("Hello\r\n\r\nWorld  \r\n"));
	body_canon(DKIM_CANON_SIMPLE, body, strlen(body), 0, true, 1000, &out,
	           &total);
	assert_sink(&out, "Hello\r\n\r\nWorld  \r\n");
}

/* A large body: constant state, output identical to a reference. */
static void
test_big_body_streams(void **state)
{
	struct dkim_body_canon *c = malloc(sizeof(*c));
	struct dkim_digest d1, d2;
	unsigned char h1[32], h2[32];
	char line[100];
	size_t i;

	assert_non_null(c);
	assert_int_equal(dkim_digest_init(&d1), 0);
	assert_int_equal(dkim_digest_init(&d2), 0);
	dkim_body_canon_init(c, DKIM_CANON_RELAXED, false, 0, dkim_digest_emit,
	                     &d1);
	for (i = 0; i < 200000; i++) {
		int n = snprintf(line, sizeof(line),
		                 "line %zu  \t with  "
		                 "spaces   \r\n",
		                 i);

		dkim_body_canon_update(c, line, (size_t)n);
		n = snprintf(line, sizeof(line), "line %zu with spaces\r\n", i);
		dkim_digest_emit(&d2, line, (size_t)n);
	}
	for (i = 0; i < 100000; i++)
		dkim_body_canon_update(c, "\r\n", 2);
	dkim_body_canon_final(c);
	assert_int_equal(dkim_digest_final(&d1, h1), 0);
	assert_int_equal(dkim_digest_final(&d2, h2), 0);
	assert_memory_equal(h1, h2, 32);
	dkim_digest_free(&d1);
	dkim_digest_free(&d2);
	free(c);
}

static void
test_relaxed_header_details(void **state)
{
	struct sink out = {0};
	const char *f1 = "SUBJECT  :   a  \t b\r\n\r\n c   ";
	const char *f2 = "X-Empty:";
	const char *f3 = "X-Spaces: \t ";

	dkim_canon_header(DKIM_CANON_RELAXED, f1, strlen(f1), true, sink_emit,
	                  &out);
	dkim_canon_header(DKIM_CANON_RELAXED, f2, strlen(f2), true, sink_emit,
	                  &out);
	dkim_canon_header(DKIM_CANON_RELAXED, f3, strlen(f3), false, sink_emit,
	                  &out);
	assert_sink(&out, "subject:a b c\r\nx-empty:\r\nx-spaces:");
}

/* ---- the header/body split (SECURITY.md #10) -------------------------- */

static void
test_split_first_crlf_crlf(void **state)
{
	const char *m = "From: a\r\nSubject: b\r\n\r\nBody\r\n\r\nX: y\r\n";
	struct dkim_headers h;
	const char *why;

	assert_int_equal(dkim_headers_parse(m, strlen(m), true, 100, &h, &why),
	                 0);
	assert_int_equal(h.count, 2);
	assert_true(h.has_body);
	assert_int_equal(h.body_off, strlen("From: a\r\nSubject: b\r\n\r\n"));
	assert_true(dkim_headers_is(&h, 0, "FROM", 4));
	assert_true(dkim_headers_is(&h, 1, "subject", 7));
	dkim_headers_free(&h);
}

/*
 * The smtp module refuses bare LF in DATA, so stored messages have none;
 * if one got here anyway, it must not end the header section for the
 * verifier when storage would see one long header.
 */
static void
test_split_bare_lf_is_not_a_boundary(void **state)
{
	const char *m = "From: a\nSubject: b\n\nX-Hidden: c\r\n\r\nbody";
	struct dkim_headers h;
	const char *why;

	assert_int_equal(dkim_headers_parse(m, strlen(m), true, 100, &h, &why),
	                 0);
	assert_int_equal(h.count, 1);
	assert_int_equal(h.field[0].len,
	                 strlen("From: a\nSubject: b\n\nX-Hidden: c"));
	assert_int_equal(h.body_off, strlen(m) - 4);
	dkim_headers_free(&h);

	/* Only LFs, no CRLF CRLF at all: all header, no body. */
	m = "From: a\n\nbody\n";
	assert_int_equal(dkim_headers_parse(m, strlen(m), true, 100, &h, &why),
	                 0);
	assert_false(h.has_body);
	assert_int_equal(h.body_off, strlen(m));
	dkim_headers_free(&h);
}

/* A line of spaces continues the field above; it never ends the header
 * section, and the field after it is still a header field. */
static void
test_split_whitespace_line(void **state)
{
	const char *m = "From: a\r\nSubject: b\r\n \t \r\nX-After: c\r\n\r\n"
	                "body\r\n";
	struct dkim_headers h;
	const char *why;

	assert_int_equal(dkim_headers_parse(m, strlen(m), true, 100, &h, &why),
	                 0);
	assert_int_equal(h.count, 3);
	assert_int_equal(h.field[1].len, strlen("Subject: b\r\n \t "));
	assert_true(dkim_headers_is(&h, 2, "x-after", 7));
	assert_string_equal(m + h.body_off, "body\r\n");
	dkim_headers_free(&h);
}

static void
test_split_edge_cases(void **state)
{
	struct dkim_headers h;
	const char *why, *m;

	/* No header fields: the body starts after the first CRLF. */
	m = "\r\nbody";
	assert_int_equal(dkim_headers_parse(m, strlen(m), true, 100, &h, &why),
	                 0);
	assert_int_equal(h.count, 0);
	assert_int_equal(h.body_off, 2);
	dkim_headers_free(&h);
	/* A partial buffer without the boundary: too large. */
	m = "From: a\r\nSubject: b\r\n";
	assert_int_equal(dkim_headers_parse(m, strlen(m), false, 100, &h, &why),
	                 -1);
	assert_string_equal(why, "header section too large");
	/* Too many fields. */
	m = "A: 1\r\nB: 2\r\nC: 3\r\n\r\n";
	assert_int_equal(dkim_headers_parse(m, strlen(m), true, 2, &h, &why),
	                 -1);
	assert_string_equal(why, "too many header fields");
	/* A line without a colon is kept, never matched by name. */
	m = "garbage line\r\nFrom : x\r\n\r\n";
	assert_int_equal(dkim_headers_parse(m, strlen(m), true, 10, &h, &why),
	                 0);
	assert_int_equal(h.count, 2);
	assert_int_equal(h.field[0].name_len, 0);
	assert_true(dkim_headers_is(&h, 1, "from", 4));
	dkim_headers_free(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc6376_example_headers),
	    cmocka_unit_test(test_rfc6376_example_body),
	    cmocka_unit_test(test_empty_bodies),
	    cmocka_unit_test(test_trailing_lines_and_missing_crlf),
	    cmocka_unit_test(test_relaxed_spans),
	    cmocka_unit_test(test_lone_cr_and_lf),
	    cmocka_unit_test(test_body_length_limit),
	    cmocka_unit_test(test_big_body_streams),
	    cmocka_unit_test(test_relaxed_header_details),
	    cmocka_unit_test(test_split_first_crlf_crlf),
	    cmocka_unit_test(test_split_bare_lf_is_not_a_boundary),
	    cmocka_unit_test(test_split_whitespace_line),
	    cmocka_unit_test(test_split_edge_cases),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
