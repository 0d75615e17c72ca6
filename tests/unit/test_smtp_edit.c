/* SPDX-License-Identifier: MIT */
/* Unit tests: the smtp module's header rewriter (filter header edits). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <petrel/core.h>
#include <petrel/filter.h>

#include "smtp_edit.h"

#define PREFIX "Received: by us\r\n"

static int
file_with(const char *data, size_t len)
{
	int fd = memfd_create("edit", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}

/* Rewrite @in with the edits; return the result (malloc). */
static char *
rewrite(const char *in, const struct smtp_edit *edits, size_t n,
        bool *changed_out)
{
	size_t len = strlen(in);
	int in_fd = file_with(in, len), out_fd = file_with("", 0);
	uint64_t size = 0, dry_size = 0;
	bool dry_changed = false;
	char *out;

	/* The dry run tells the same as the real one. */
	assert_int_equal(smtp_edit_rewrite(in_fd, len, strlen(PREFIX), -1,
	                                   edits, n, &dry_size, &dry_changed),
	                 PTL_OK);
	assert_int_equal(smtp_edit_rewrite(in_fd, len, strlen(PREFIX), out_fd,
	                                   edits, n, &size, changed_out),
	                 PTL_OK);
	assert_int_equal(dry_changed, *changed_out);
	out = calloc(1, size + 1);
	assert_non_null(out);
	assert_int_equal(pread(out_fd, out, size, 0), (ssize_t)size);
	close(in_fd);
	close(out_fd);
	return out;
}

static void
expect(const char *in, const struct smtp_edit *edits, size_t n,
       const char *want, bool want_changed)
{
	bool changed = false;
	char *out = rewrite(in, edits, n, &changed);

	assert_string_equal(out, want);
	assert_int_equal(changed, want_changed);
	free(out);
}

static const char *const message = PREFIX "From: a@example.org\r\n"
                                          "X-Spam: one\r\n"
                                          "Subject: hello\r\n"
                                          "X-SPAM: two,\r\n"
                                          "\tfolded\r\n"
                                          "\r\n"
                                          "X-Spam: in the body\r\n";

static void
test_remove(void **state)
{
	struct smtp_edit all = {PTL_FILTER_HEADER_REMOVE, "x-spam", NULL, 0};
	struct smtp_edit second = {PTL_FILTER_HEADER_REMOVE, "X-Spam", NULL, 2};
	struct smtp_edit none = {PTL_FILTER_HEADER_REMOVE, "X-Other", NULL, 0};

	(void)state;
	expect(message, &all, 1,
	       PREFIX "From: a@example.org\r\nSubject: hello\r\n\r\n"
	              "X-Spam: in the body\r\n",
	       true);
	expect(message, &second, 1,
	       PREFIX "From: a@example.org\r\nX-Spam: one\r\n"
	              "Subject: hello\r\n\r\nX-Spam: in the body\r\n",
	       true);
	expect(message, &none, 1, message, false);
}

static void
test_replace(void **state)
{
	struct smtp_edit subject = {PTL_FILTER_HEADER_REPLACE, "Subject",
	                            "[SPAM] hello", 0};
	struct smtp_edit all = {PTL_FILTER_HEADER_REPLACE, "X-Spam", "yes", 0};
	struct smtp_edit nth = {PTL_FILTER_HEADER_REPLACE, "X-Spam", "2nd", 2};
	struct smtp_edit absent = {PTL_FILTER_HEADER_REPLACE, "X-New", "v", 0};

	(void)state;
	expect(message, &subject, 1,
	       PREFIX "From: a@example.org\r\nX-Spam: one\r\n"
	              "Subject: [SPAM] hello\r\nX-SPAM: two,\r\n\tfolded\r\n"
	              "\r\nX-Spam: in the body\r\n",
	       true);
	expect(message, &all, 1,
	       PREFIX "From: a@example.org\r\nX-Spam: yes\r\n"
	              "Subject: hello\r\n\r\nX-Spam: in the body\r\n",
	       true);
	expect(message, &nth, 1,
	       PREFIX "From: a@example.org\r\nX-Spam: one\r\n"
	              "Subject: hello\r\nX-Spam: 2nd\r\n\r\n"
	              "X-Spam: in the body\r\n",
	       true);
	expect(message, &absent, 1,
	       PREFIX "From: a@example.org\r\nX-Spam: one\r\n"
	              "Subject: hello\r\nX-SPAM: two,\r\n\tfolded\r\n"
	              "X-New: v\r\n\r\nX-Spam: in the body\r\n",
	       true);
	/* No header/body separator at all: added at the end. */
	expect(PREFIX "Subject: x\r\n", &absent, 1,
	       PREFIX "Subject: x\r\nX-New: v\r\n", true);
}

static void
test_authserv(void **state)
{
	struct smtp_edit ar = {SMTP_EDIT_REMOVE_AUTHSERV,
	                       "Authentication-Results", "mx.example.test", 0};

	(void)state;
	expect(PREFIX "Authentication-Results: mx.example.test; spf=pass\r\n"
	              "Authentication-Results: other.example; spf=fail\r\n"
	              "Authentication-Results:\r\n"
	              "  (comment) MX.Example.Test;\r\n\tdkim=pass\r\n"
	              "Authentication-Results: mx.example.test.evil; x=y\r\n"
	              "\r\nbody\r\n",
	       &ar, 1,
	       PREFIX "Authentication-Results: other.example; spf=fail\r\n"
	              "Authentication-Results: mx.example.test.evil; x=y\r\n"
	              "\r\nbody\r\n",
	       true);
}

static void
test_junk_line_does_not_end_header(void **state)
{
	struct smtp_edit rm = {PTL_FILTER_HEADER_REMOVE, "X-Spam", NULL, 0};

	(void)state;
	/* A line without a colon, or with a name too long, must not hide
	 * the fields after it. */
	expect(PREFIX "junk line without colon\r\nX-Spam: a\r\n\r\nb\r\n", &rm,
	       1, PREFIX "junk line without colon\r\n\r\nb\r\n", true);
}

static void
test_large_message_streams(void **state)
{
	struct smtp_edit rm = {PTL_FILTER_HEADER_REMOVE, "X-Big", NULL, 0};
	size_t body = 3 * 1024 * 1024, field = 200 * 1024, len;
	char *in, *p, *want, *out;
	bool changed;

	(void)state;
	len = strlen(PREFIX) + field + 64 + body;
	in = malloc(len + 1);
	want = malloc(len + 1);
	assert_non_null(in);
	assert_non_null(want);
	/* A 200 KB folded field (through many buffer refills), then a 3 MB
	 * body. */
	p = stpcpy(in, PREFIX "X-Big: ");
	memset(p, 'f', field);
	p += field;
	p = stpcpy(p, "\r\nSubject: s\r\n\r\n");
	memset(p, 'b', body);
	p[body] = '\0';
	p = stpcpy(want, PREFIX "Subject: s\r\n\r\n");
	memset(p, 'b', body);
	p[body] = '\0';
	out = rewrite(in, &rm, 1, &changed);
	assert_true(changed);
	assert_int_equal(strlen(out), strlen(want));
	assert_true(strcmp(out, want) == 0);
	free(out);
	free(in);
	free(want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_remove),
	    cmocka_unit_test(test_replace),
	    cmocka_unit_test(test_authserv),
	    cmocka_unit_test(test_junk_line_does_not_end_header),
	    cmocka_unit_test(test_large_message_streams),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
