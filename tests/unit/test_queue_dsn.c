/* SPDX-License-Identifier: MIT */
/* Unit tests for delivery status notifications, checked by structure. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "queue_dsn.h"

struct out {
	char *data;
	size_t len;
};

static int
out_write(void *ctx, const void *p, size_t len)
{
	struct out *o = ctx;
	char *grown = realloc(o->data, o->len + len + 1);

	if (grown == NULL)
		return -1;
	o->data = grown;
	memcpy(o->data + o->len, p, len);
	o->len += len;
	o->data[o->len] = '\0';
	return 0;
}

static const char original[] = "Received: from client\r\n"
                               "Subject: the original\r\n"
                               "\r\n"
                               "Body line 1\r\n"
                               "Body line 2\r\n";

static int
original_fd(void)
{
	int fd = memfd_create("orig", 0);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, original, sizeof(original) - 1),
	                 (ssize_t)sizeof(original) - 1);
	return fd;
}

/* The parts between the delimiter lines (RFC 2046 5.1.1), copied; the
 * closing delimiter must end the text. */
static size_t
split_parts(const char *text, const char *boundary, char **parts, size_t max)
{
	char delim[128], close_delim[128];
	const char *p, *next, *end;
	size_t n = 0;

	(void)snprintf(delim, sizeof(delim), "\r\n--%s\r\n", boundary);
	(void)snprintf(close_delim, sizeof(close_delim), "\r\n--%s--\r\n",
	               boundary);
	end = strstr(text, close_delim);
	assert_non_null(end);
	assert_string_equal(end + strlen(close_delim), "");
	p = strstr(text, delim);
	assert_non_null(p);
	while (p != NULL && p < end && n < max) {
		p += strlen(delim);
		next = strstr(p, delim);
		if (next == NULL || next > end)
			next = end;
		parts[n++] = strndup(p, (size_t)(next - p));
		p = next == end ? NULL : next;
	}
	return n;
}

static void
free_parts(char **parts, size_t n)
{
	while (n > 0)
		free(parts[--n]);
}

static void
assert_crlf_only(const char *text, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (text[i] == '\n')
			assert_true(i > 0 && text[i - 1] == '\r');
		if (text[i] == '\r')
			assert_true(i + 1 < len && text[i + 1] == '\n');
	}
}

static void
compose(struct queue_dsn *d, struct queue_dsn_rcpt *r, size_t n, bool full,
        struct out *o)
{
	char why[256];
	int fd = original_fd();

	memset(d, 0, sizeof(*d));
	d->reporting_mta = "mail.example.test";
	d->queue_id = "QID123";
	d->message_id = "DSN1.dsn@mail.example.test";
	d->boundary = "=_petrel_DSN1";
	d->sender = "alice@example.test";
	d->envid = "ENV-42";
	d->arrival = 1700000000;
	d->now = 1700003600;
	d->retry_until = 1700432000;
	d->full = full;
	d->nrcpts = n;
	d->rcpts = r;
	memset(o, 0, sizeof(*o));
	assert_int_equal(queue_dsn_compose(d, fd, sizeof(original) - 1,
	                                   out_write, o, why, sizeof(why)),
	                 0);
	close(fd);
	assert_crlf_only(o->data, o->len);
}

static void
test_failed_report(void **state)
{
	struct queue_dsn_rcpt r[2] = {
	    {.address = "bob@remote.test",
	     .orcpt = "rfc822;Bob@Remote.test",
	     .action = QUEUE_DSN_FAILED,
	     .diagnostic = "550 5.1.1 <bob@remote.test>: no such user",
	     .remote_mta = "mx.remote.test",
	     .last_attempt = 1700003500},
	    {.address = "carol@remote.test",
	     .action = QUEUE_DSN_FAILED,
	     .diagnostic = "delivery time expired; last error: 451 4.3.0 "
	                   "busy"},
	};
	char *parts[8], *head_end;
	struct queue_dsn d;
	struct out o;
	size_t n;

	compose(&d, r, 2, false, &o);
	head_end = strstr(o.data, "\r\n\r\n");
	assert_non_null(head_end);
	*head_end = '\0';
	assert_non_null(strstr(o.data, "\r\nTo: <alice@example.test>\r\n"));
	assert_non_null(strstr(o.data, "From: Mail Delivery System "
	                               "<MAILER-DAEMON@mail.example.test>"));
	assert_non_null(strstr(o.data, "Subject: Undelivered Mail"));
	assert_non_null(strstr(o.data, "Auto-Submitted: auto-replied\r\n"));
	assert_non_null(strstr(o.data, "MIME-Version: 1.0\r\n"));
	assert_non_null(strstr(o.data, "Content-Type: multipart/report; "
	                               "report-type=delivery-status;\r\n\t"
	                               "boundary=\"=_petrel_DSN1\""));
	*head_end = '\r';

	n = split_parts(o.data, "=_petrel_DSN1", parts, 8);
	assert_int_equal(n, 3);
	/* 1: human readable. */
	assert_non_null(strstr(parts[0], "Content-Type: text/plain"));
	assert_non_null(strstr(parts[0], "<bob@remote.test>: failed: 550"));
	/* 2: machine readable, RFC 3464 fields. */
	assert_non_null(strstr(parts[1], "Content-Type: "
	                                 "message/delivery-status\r\n\r\n"));
	assert_non_null(strstr(parts[1], "Reporting-MTA: dns; "
	                                 "mail.example.test\r\n"));
	assert_non_null(strstr(parts[1], "Original-Envelope-Id: ENV-42\r\n"));
	assert_non_null(strstr(parts[1], "Arrival-Date: Tue, 14 Nov 2023 "
	                                 "22:13:20 +0000\r\n"));
	assert_non_null(strstr(parts[1], "\r\n\r\nOriginal-Recipient: "
	                                 "rfc822;Bob@Remote.test\r\n"
	                                 "Final-Recipient: rfc822; "
	                                 "bob@remote.test\r\nAction: failed\r\n"
	                                 "Status: 5.1.1\r\nRemote-MTA: dns; "
	                                 "mx.remote.test\r\nDiagnostic-Code: "
	                                 "smtp; 550 5.1.1 <bob@remote.test>: "
	                                 "no such user\r\n"));
	assert_non_null(strstr(parts[1], "Final-Recipient: rfc822; "
	                                 "carol@remote.test\r\nAction: failed"
	                                 "\r\nStatus: 5.4.7\r\n"));
	assert_non_null(strstr(parts[1], "Diagnostic-Code: X-Petrel; delivery "
	                                 "time expired"));
	/* 3: the header only (full not asked for). */
	assert_non_null(strstr(parts[2], "Content-Type: "
	                                 "text/rfc822-headers\r\n\r\n"
	                                 "Received: from client\r\n"
	                                 "Subject: the original\r\n"));
	assert_null(strstr(parts[2], "Body line"));
	free_parts(parts, n);
	free(o.data);
}

static void
test_full_and_success(void **state)
{
	struct queue_dsn_rcpt fail = {.address = "bob@remote.test",
	                              .action = QUEUE_DSN_FAILED,
	                              .diagnostic = "554 rejected"};
	struct queue_dsn_rcpt ok = {.address = "dan@remote.test",
	                            .action = QUEUE_DSN_RELAYED,
	                            .diagnostic = "250 2.0.0 queued as X",
	                            .remote_mta = "mx.remote.test"};
	struct queue_dsn_rcpt late = {.address = "eve@remote.test",
	                              .action = QUEUE_DSN_DELAYED,
	                              .diagnostic = "421 4.7.0 later"};
	char *parts[8];
	struct queue_dsn d;
	struct out o;

	compose(&d, &fail, 1, true, &o);
	assert_int_equal(split_parts(o.data, "=_petrel_DSN1", parts, 8), 3);
	assert_non_null(strstr(parts[1], "Status: 5.0.0\r\n"));
	assert_non_null(strstr(parts[2], "Content-Type: message/rfc822\r\n\r\n"
	                                 "Received: from client"));
	assert_non_null(strstr(parts[2], "Body line 2\r\n"));
	free_parts(parts, 3);
	free(o.data);

	/* A success report returns the header only, even with full. */
	compose(&d, &ok, 1, true, &o);
	assert_non_null(strstr(o.data, "Subject: Successful Mail Delivery"));
	assert_int_equal(split_parts(o.data, "=_petrel_DSN1", parts, 8), 3);
	assert_non_null(strstr(parts[1], "Action: relayed\r\nStatus: "
	                                 "2.0.0\r\n"));
	assert_non_null(strstr(parts[2], "text/rfc822-headers"));
	free_parts(parts, 3);
	free(o.data);

	compose(&d, &late, 1, false, &o);
	assert_non_null(strstr(o.data, "Subject: Delayed Mail"));
	assert_int_equal(split_parts(o.data, "=_petrel_DSN1", parts, 8), 3);
	assert_non_null(strstr(parts[1], "Action: delayed\r\nStatus: "
	                                 "4.7.0\r\n"));
	assert_non_null(strstr(parts[1], "Will-Retry-Until: "));
	free_parts(parts, 3);
	free(o.data);
}

static void
test_injection(void **state)
{
	struct queue_dsn_rcpt r = {
	    .address = "x@y\r\nBcc: victim@example.org",
	    .orcpt = "rfc822;a\r\nX-Evil: 1",
	    .action = QUEUE_DSN_FAILED,
	    .diagnostic = "550 bad\r\nX-Injected: yes",
	};
	struct queue_dsn d;
	struct out o;

	compose(&d, &r, 1, false, &o);
	/* Every CR/LF from the data became a space: no new field. */
	assert_null(strstr(o.data, "\r\nBcc:"));
	assert_null(strstr(o.data, "\r\nX-Evil:"));
	assert_null(strstr(o.data, "\r\nX-Injected:"));
	assert_non_null(strstr(o.data, "x@y  Bcc: victim@example.org"));
	free(o.data);
	{
		char s[16];

		queue_dsn_status(QUEUE_DSN_FAILED, "550 5.7.1 denied", s);
		assert_string_equal(s, "5.7.1");
		queue_dsn_status(QUEUE_DSN_FAILED, "451 4.3.2 no", s);
		assert_string_equal(s, "5.3.2");
		queue_dsn_status(QUEUE_DSN_DELAYED, "connect: refused", s);
		assert_string_equal(s, "4.0.0");
		queue_dsn_status(QUEUE_DSN_FAILED, "550 5.1234.1 x", s);
		assert_string_equal(s, "5.0.0");
		queue_dsn_status(QUEUE_DSN_FAILED, NULL, s);
		assert_string_equal(s, "5.0.0");
	}
}

/*
 * A long address and a long reply make a text line longer than the line
 * buffer: it is cut, but keeps its CRLF (found by fuzz_queue_record's
 * invariants: the line ran into the next one).
 */
static void
test_long_line_keeps_crlf(void **state)
{
	struct queue_dsn_rcpt r[2];
	char addr[1025], diag[700];
	struct queue_dsn d;
	struct out o;
	const char *p, *nl;

	(void)state;
	memset(addr, 'a', 1024);
	addr[1024] = '\0';
	addr[500] = '@';
	memcpy(diag, "550 5.1.1 ", 10);
	memset(diag + 10, 'x', 600);
	diag[610] = '\0';
	memset(r, 0, sizeof(r));
	r[0].address = r[1].address = addr;
	r[0].action = r[1].action = QUEUE_DSN_FAILED;
	r[0].diagnostic = r[1].diagnostic = diag;
	compose(&d, r, 2, false, &o);
	/* Each recipient's text line is its own line, cut to fit. */
	for (p = o.data; (nl = strstr(p, "\r\n")) != NULL; p = nl + 2) {
		assert_true(nl - p < 1200);
		if (p[0] == '<')
			assert_int_equal(p[1], 'a');
	}
	free(o.data);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_failed_report),
	    cmocka_unit_test(test_full_and_success),
	    cmocka_unit_test(test_injection),
	    cmocka_unit_test(test_long_line_keeps_crlf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
