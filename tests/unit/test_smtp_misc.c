/* SPDX-License-Identifier: MIT */
/* Unit tests for Received:, trusted networks and the AUTH failure table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <petrel/core.h>

#include "smtp_authfail.h"
#include "smtp_cidr.h"
#include "smtp_received.h"

static void
test_protocol(void **state)
{
	assert_string_equal(smtp_received_protocol(false, true, true, true),
	                    "SMTP");
	assert_string_equal(smtp_received_protocol(true, false, false, false),
	                    "ESMTP");
	assert_string_equal(smtp_received_protocol(true, true, false, false),
	                    "ESMTPS");
	assert_string_equal(smtp_received_protocol(true, false, true, false),
	                    "ESMTPA");
	assert_string_equal(smtp_received_protocol(true, true, true, false),
	                    "ESMTPSA");
	assert_string_equal(smtp_received_protocol(true, true, true, true),
	                    "UTF8SMTPSA");
}

static void
test_escape(void **state)
{
	char out[64];

	smtp_header_escape(out, sizeof(out), "mx.example-1.test", 17, false);
	assert_string_equal(out, "mx.example-1.test");
	smtp_header_escape(out, sizeof(out), "a b\r\nX: y", 9, false);
	assert_string_equal(out, "a%20b%0D%0AX:%20y");
	smtp_header_escape(out, sizeof(out), "(x);\\", 5, false);
	assert_string_equal(out, "%28x%29%3B%5C");
	smtp_header_escape(out, sizeof(out), "\xc3\xa4", 2, false);
	assert_string_equal(out, "%C3%A4");
	smtp_header_escape(out, sizeof(out), "\xc3\xa4", 2, true);
	assert_string_equal(out, "\xc3\xa4");
	smtp_header_escape(out, sizeof(out), "a\0b", 3, false);
	assert_string_equal(out, "a%00b");
	/* Cut to fit, never inside an escape. */
	smtp_header_escape(out, 6, "ab\ncd", 5, false);
	assert_string_equal(out, "ab%0A");
	smtp_header_escape(out, 5, "ab\ncd", 5, false);
	assert_string_equal(out, "ab");
}

/* Every line of a header ends in CRLF; continuation lines start with a
 * tab; no other CR or LF. */
static void
assert_one_header(const char *h, size_t len)
{
	size_t i;

	assert_true(len > 2);
	assert_memory_equal(h + len - 2, "\r\n", 2);
	for (i = 0; i < len; i++) {
		if (h[i] == '\r') {
			assert_true(i + 1 < len && h[i + 1] == '\n');
			if (i + 2 < len)
				assert_true(h[i + 2] == '\t');
		} else if (h[i] == '\n') {
			assert_true(i > 0 && h[i - 1] == '\r');
		} else {
			assert_true((unsigned char)h[i] >= 0x20 ||
			            h[i] == '\t');
		}
	}
}

static void
test_received(void **state)
{
	struct smtp_received_info ri;
	char out[SMTP_RECEIVED_MAX], helo[1100];
	size_t n;

	memset(&ri, 0, sizeof(ri));
	ri.helo = "client.example.test";
	ri.peer_ip = "192.0.2.7";
	ri.hostname = "mx.example.test";
	ri.protocol = "ESMTPS";
	ri.id = "ABC123";
	ri.tls_version = "TLSv1.3";
	ri.tls_cipher = "TLS_AES_256_GCM_SHA384";
	ri.rcpt = "bob@example.test";
	ri.when = 0;
	n = smtp_received_format(&ri, out, sizeof(out));
	assert_int_not_equal(n, 0);
	assert_one_header(out, n);
	assert_non_null(strstr(out, "Received: from client.example.test "
	                            "([192.0.2.7])\r\n"));
	assert_non_null(strstr(out, "\tby mx.example.test (Petrel) with "
	                            "ESMTPS id ABC123\r\n"));
	assert_non_null(strstr(out, "(using TLSv1.3 with cipher "
	                            "TLS_AES_256_GCM_SHA384)"));
	assert_non_null(strstr(out, "for <bob@example.test>; "));

	/* SECURITY.md #5: a hostile HELO stays inside one header. */
	memset(helo, 'A', sizeof(helo));
	memcpy(helo, "evil\r\nX-Injected: 1\r\n\0(", 24);
	helo[sizeof(helo) - 1] = '\0';
	ri.helo = "evil\r\nX-Injected: yes (\\";
	ri.rcpt = NULL;
	ri.tls_version = NULL;
	n = smtp_received_format(&ri, out, sizeof(out));
	assert_int_not_equal(n, 0);
	assert_one_header(out, n);
	assert_null(strstr(out, "\nX-Injected"));
	assert_null(strstr(out, "for <"));
	assert_null(strstr(out, "using"));
	ri.helo = helo;
	n = smtp_received_format(&ri, out, sizeof(out));
	assert_int_not_equal(n, 0);
	assert_one_header(out, n);
}

static void
test_date(void **state)
{
	char out[64];

	setenv("TZ", "UTC", 1);
	smtp_rfc5322_date(0, out, sizeof(out));
	assert_string_equal(out, "Thu, 01 Jan 1970 00:00:00 +0000");
	smtp_rfc5322_date(1732615200, out, sizeof(out));
	assert_string_equal(out, "Tue, 26 Nov 2024 10:00:00 +0000");
}

static void
test_cidr(void **state)
{
	struct smtp_cidr n;

	assert_int_equal(smtp_cidr_parse("192.0.2.0/24", &n), PTL_OK);
	assert_true(smtp_cidr_match(&n, "192.0.2.1"));
	assert_true(smtp_cidr_match(&n, "192.0.2.255"));
	assert_false(smtp_cidr_match(&n, "192.0.3.1"));
	assert_true(smtp_cidr_match(&n, "::ffff:192.0.2.9"));
	assert_false(smtp_cidr_match(&n, "2001:db8::1"));
	assert_false(smtp_cidr_match(&n, "garbage"));

	assert_int_equal(smtp_cidr_parse("10.1.2.3", &n), PTL_OK);
	assert_true(smtp_cidr_match(&n, "10.1.2.3"));
	assert_false(smtp_cidr_match(&n, "10.1.2.4"));

	assert_int_equal(smtp_cidr_parse("2001:db8::/32", &n), PTL_OK);
	assert_true(smtp_cidr_match(&n, "2001:db8:ffff::1"));
	assert_false(smtp_cidr_match(&n, "2001:db9::1"));
	assert_int_equal(smtp_cidr_parse("::1", &n), PTL_OK);
	assert_true(smtp_cidr_match(&n, "::1"));
	assert_int_equal(smtp_cidr_parse("0.0.0.0/0", &n), PTL_OK);
	assert_true(smtp_cidr_match(&n, "203.0.113.5"));
	assert_int_equal(smtp_cidr_parse("10.0.0.0/9", &n), PTL_OK);
	assert_true(smtp_cidr_match(&n, "10.127.0.1"));
	assert_false(smtp_cidr_match(&n, "10.128.0.1"));

	assert_int_equal(smtp_cidr_parse("192.0.2.1/24", &n), PTL_ERROR);
	assert_int_equal(smtp_cidr_parse("192.0.2.0/33", &n), PTL_ERROR);
	assert_int_equal(smtp_cidr_parse("192.0.2.0/", &n), PTL_ERROR);
	assert_int_equal(smtp_cidr_parse("192.0.2.0/-1", &n), PTL_ERROR);
	assert_int_equal(smtp_cidr_parse("192.0.2.0/2x", &n), PTL_ERROR);
	assert_int_equal(smtp_cidr_parse("example.test", &n), PTL_ERROR);
	assert_int_equal(smtp_cidr_parse("", &n), PTL_ERROR);
}

static void
test_authfail(void **state)
{
	struct smtp_authfail *t = smtp_authfail_new();
	char ip[32];
	int i;

	assert_non_null(t);
	assert_int_equal(smtp_authfail_count(t, "192.0.2.1", 1000), 0);
	assert_int_equal(smtp_authfail_add(t, "192.0.2.1", 1000), 1);
	assert_int_equal(smtp_authfail_add(t, "192.0.2.1", 2000), 2);
	assert_int_equal(smtp_authfail_count(t, "192.0.2.1", 3000), 2);
	assert_int_equal(smtp_authfail_count(t, "192.0.2.2", 3000), 0);
	/* Forgotten after the window. */
	assert_int_equal(
	    smtp_authfail_count(t, "192.0.2.1",
	                        2000 + SMTP_AUTHFAIL_WINDOW_MS + 1),
	    0);
	assert_int_equal(smtp_authfail_add(t, "192.0.2.1", 5000), 1);
	smtp_authfail_clear(t, "192.0.2.1");
	assert_int_equal(smtp_authfail_count(t, "192.0.2.1", 5000), 0);
	/* Many addresses: the table stays bounded and still answers. */
	for (i = 0; i < 10 * SMTP_AUTHFAIL_SLOTS; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", (i >> 16) & 255,
		         (i >> 8) & 255, i & 255);
		(void)smtp_authfail_add(t, ip, 10000 + i);
	}
	assert_int_equal(smtp_authfail_add(t, "192.0.2.9", 900000), 1);
	assert_int_equal(smtp_authfail_add(t, "192.0.2.9", 900001), 2);
	smtp_authfail_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_protocol), cmocka_unit_test(test_escape),
	    cmocka_unit_test(test_received), cmocka_unit_test(test_date),
	    cmocka_unit_test(test_cidr),     cmocka_unit_test(test_authfail),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
