/* SPDX-License-Identifier: MIT */
/* Unit tests: filter_regex rule configs (errors), verdicts, the scan. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "regex.h"

struct fixture {
	struct ptl_pool *pool;
	struct regex_conf conf;
	struct ptl_error err;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->pool = ptl_pool_create(0);
	*state = f;
	return f->pool != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	ptl_pool_destroy(f->pool);
	free(f);
	return 0;
}

static void
json_release(void *arg)
{
	json_decref(arg);
}

/* Parse and prepare @json as the module's section. */
static int
load(struct fixture *f, const char *json)
{
	json_error_t jerr;
	json_t *root = json_loads(json, 0, &jerr);
	int rc;

	assert_non_null(root);
	/* A pool per config, as a generation has. */
	ptl_pool_destroy(f->pool);
	f->pool = ptl_pool_create(0);
	assert_non_null(f->pool);
	memset(&f->conf, 0, sizeof(f->conf));
	memset(&f->err, 0, sizeof(f->err));
	/* The pool keeps borrowed JSON strings alive. */
	assert_int_equal(ptl_pool_cleanup_add(f->pool, json_release, root),
	                 PTL_OK);
	rc = ptl_conf_parse(regex_conf_keys, root, &f->conf, f->pool,
	                    "modules.filter_regex", &f->err);
	if (rc != PTL_OK)
		return rc;
	return regex_conf_prepare(&f->conf, f->pool, &f->err);
}

static void
test_bad_pattern(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "{\"rules\": ["
	                         "{\"target\": \"helo\", \"pattern\": \"a\"},"
	                         "{\"target\": \"helo\", \"pattern\": \"b\"},"
	                         "{\"target\": \"helo\", \"pattern\": \"c\"},"
	                         "{\"target\": \"body\", "
	                         "\"pattern\": \"abc(def\"}]}"),
	                 PTL_ERROR);
	assert_string_equal(f->err.path, "rules[3].pattern");
	assert_string_equal(f->err.text,
	                    "missing closing parenthesis at offset 7");
	assert_int_equal(load(f, "{\"rules\": [{\"target\": \"body\", "
	                         "\"pattern\": \"x[z-a]\"}]}"),
	                 PTL_ERROR);
	assert_string_equal(f->err.path, "rules[0].pattern");
	assert_non_null(strstr(f->err.text, "at offset 4"));
}

static void
test_other_errors(void **state)
{
	static const struct {
		const char *rule;
		const char *path;
	} cases[] = {
	    {"{\"target\": \"subject\", \"pattern\": \"x\"}",
	     "rules[0].target"},
	    {"{\"target\": \"header:a b\", \"pattern\": \"x\"}",
	     "rules[0].target"},
	    {"{\"target\": \"helo\", \"pattern\": \"x\", \"decode_2047\": true}",
	     "rules[0].decode_2047"},
	    {"{\"target\": \"helo\", \"pattern\": \"x\", \"add_header\": "
	     "\"X-A\"}",
	     "rules[0].add_header"},
	    {"{\"target\": \"helo\", \"pattern\": \"x\", \"replace_header\": "
	     "\"X A: b\"}",
	     "rules[0].replace_header"},
	    {"{\"target\": \"helo\", \"pattern\": \"x\", \"remove_header\": "
	     "\"X:A\"}",
	     "rules[0].remove_header"},
	    {"{\"target\": \"helo\", \"pattern\": \"x\", \"action\": \"drop\"}",
	     "modules.filter_regex.rules[0].action"},
	    {"{\"target\": \"helo\"}", "modules.filter_regex.rules[0]"},
	};
	struct fixture *f = *state;
	char json[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		(void)snprintf(json, sizeof(json), "{\"rules\": [%s]}",
		               cases[i].rule);
		assert_int_equal(load(f, json), PTL_ERROR);
		if (strncmp(f->err.path, cases[i].path,
		            strlen(cases[i].path)) != 0)
			fail_msg("%s: path %s, expected %s", cases[i].rule,
			         f->err.path, cases[i].path);
	}
}

static void
test_hooks_and_wants(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(
	    load(f, "{\"rules\": ["
	            "{\"target\": \"client_ip\", \"pattern\": \"^10\\\\.\"},"
	            "{\"target\": \"header:Subject\", \"pattern\": \"x\","
	            " \"decode_2047\": true},"
	            "{\"target\": \"body_text\", \"pattern\": \"y\"}]}"),
	    PTL_OK);
	assert_int_equal(f->conf.hooks,
	                 PTL_FILTER_HOOK_BIT(PTL_FILTER_CONNECT) |
	                     PTL_FILTER_HOOK_BIT(PTL_FILTER_DATA));
	assert_true(f->conf.want_headers);
	assert_true(f->conf.want_text);
	assert_false(f->conf.want_body);
	assert_false(f->conf.want_hostname);
}

static void
test_envelope_verdict(void **state)
{
	struct fixture *f = *state;
	struct ptl_filter_request req;
	struct regex_verdict v;
	struct regex_eval ev;
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);

	assert_int_equal(
	    load(f, "{\"rules\": ["
	            "{\"target\": \"mail_from\", \"pattern\": \"@bad\\\\.\","
	            " \"add_header\": \"X-A: 1\", \"result\": \"r=one\"},"
	            "{\"name\": \"nope\", \"target\": \"mail_from\","
	            " \"pattern\": \"@good\\\\.\", \"negate\": true,"
	            " \"action\": \"reject\", \"code\": 553,"
	            " \"text\": \"no\", \"remove_header\": \"X-B\"},"
	            "{\"target\": \"mail_from\", \"pattern\": \".\","
	            " \"action\": \"discard\"}]}"),
	    PTL_OK);
	memset(&req, 0, sizeof(req));
	req.struct_size = sizeof(req);
	req.hook = PTL_FILTER_MAIL;
	req.mail_from = "x@bad.example";
	assert_int_equal(regex_eval_init(&ev, &f->conf, PTL_FILTER_MAIL),
	                 PTL_OK);
	assert_int_equal(regex_envelope(&f->conf, &req, md, &ev), PTL_OK);
	assert_int_equal(regex_verdict_build(&ev, &v), PTL_OK);
	/* Rule 0 continues with its header, rule 1 decides: rule 2 is
	 * not reached. */
	assert_int_equal(v.v.action, PTL_FILTER_REJECT);
	assert_int_equal(v.v.code, 553);
	assert_string_equal(v.v.text, "no");
	assert_int_equal(v.v.nheaders, 1);
	assert_string_equal(v.v.headers[0].name, "X-A");
	assert_int_equal(v.v.nedits, 1);
	assert_int_equal(v.v.edits[0].op, PTL_FILTER_HEADER_REMOVE);
	assert_string_equal(v.v.result, "r=one; regex=hit rule=nope");
	regex_verdict_free(&v);
	regex_eval_free(&ev);

	req.mail_from = "x@good.example";
	assert_int_equal(regex_eval_init(&ev, &f->conf, PTL_FILTER_MAIL),
	                 PTL_OK);
	(void)regex_envelope(&f->conf, &req, md, &ev);
	assert_int_equal(regex_verdict_build(&ev, &v), PTL_OK);
	assert_int_equal(v.v.action, PTL_FILTER_DISCARD);
	assert_string_equal(v.v.result, "regex=hit rule=#2");
	regex_verdict_free(&v);
	regex_eval_free(&ev);
	pcre2_match_data_free(md);
}

/* The message in an unnamed file, as the smtp module's spool. */
static int
message_fd(const char *msg)
{
	int fd = memfd_create("msg", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, msg, strlen(msg)), (ssize_t)strlen(msg));
	return fd;
}

static void
test_scan(void **state)
{
	static const char msg[] =
	    "Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	    "Subject: =?utf-8?q?hidden_w=C3=B6rd?=\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "\r\n"
	    "c2VjcmV0IGJvZHk=\r\n";
	struct fixture *f = *state;
	struct regex_scan sc;
	struct regex_verdict v;
	size_t offset = strlen("Received: from x by y; Mon, 1 Jan 2024 "
	                       "00:00:00 +0000\r\n");
	int fd;

	assert_int_equal(
	    load(f,
	         "{\"rules\": ["
	         "{\"target\": \"header:subject\", \"pattern\": \"w\\u00f6rd\","
	         " \"decode_2047\": true, \"result\": \"subj=hit\"},"
	         "{\"target\": \"any_header\", \"pattern\": \"^Received:\","
	         " \"result\": \"never\"},"
	         "{\"target\": \"body\", \"pattern\": \"secret\","
	         " \"result\": \"never\"},"
	         "{\"target\": \"body_text\", \"pattern\": \"^secret body$\","
	         " \"action\": \"quarantine\", \"folder\": \"Junk\"}]}"),
	    PTL_OK);
	fd = message_fd(msg);
	assert_int_equal(
	    regex_scan_init(&sc, &f->conf, fd, offset, strlen(msg)), PTL_OK);
	regex_scan_run(&sc);
	assert_false(sc.timed_out);
	assert_false(sc.read_error);
	assert_int_equal(regex_verdict_build(&sc.ev, &v), PTL_OK);
	assert_int_equal(v.v.action, PTL_FILTER_QUARANTINE);
	assert_string_equal(v.v.folder, "Junk");
	/* The server's Received: is not the client's; the raw body holds
	 * only base64. */
	assert_string_equal(v.v.result, "subj=hit; regex=hit rule=#3");
	regex_verdict_free(&v);
	regex_scan_free(&sc);
}

static void
test_scan_limit(void **state)
{
	struct fixture *f = *state;
	struct regex_scan sc;
	struct regex_verdict v;
	char *msg = malloc(20100);
	int fd;

	assert_non_null(msg);
	strcpy(msg, "Subject: x\r\n\r\n");
	memset(msg + 14, 'a', 20000);
	strcpy(msg + 20014, "!\r\n");
	assert_int_equal(
	    load(f, "{\"match_limit\": 10000, \"rules\": ["
	            "{\"target\": \"body\", \"pattern\": \"(a+)+$\","
	            " \"action\": \"reject\"},"
	            "{\"target\": \"body\", \"pattern\": \"(a+)+$\","
	            " \"negate\": true, \"add_header\": \"X-N: 1\"}]}"),
	    PTL_OK);
	fd = message_fd(msg);
	assert_int_equal(regex_scan_init(&sc, &f->conf, fd, 0, strlen(msg)),
	                 PTL_OK);
	regex_scan_run(&sc);
	assert_true(sc.ev.limited[0]);
	assert_true(sc.ev.limited[1]);
	assert_int_equal(regex_verdict_build(&sc.ev, &v), PTL_OK);
	/* No match: the reject does not apply, the negated rule does. */
	assert_int_equal(v.v.action, PTL_FILTER_CONTINUE);
	assert_int_equal(v.v.nheaders, 1);
	regex_verdict_free(&v);
	regex_scan_free(&sc);
	free(msg);
}

static void
test_block_safe(void **state)
{
	static const char *const safe[] = {
	    "^foo$",   "(?i)abc",       "(?<=a)b",   "(?<n>x)y",
	    "a{2,3}b", "\\Qa(?!\\E",    "(?:a|b)+c", "(?s:a.b)",
	    "[^x]+",   "\\$[0-9]{1,3}", "(?P<n>a)",  "a\\+b",
	};
	static const char *const unsafe[] = {
	    "\\Aa",   "a\\z",  "a\\Z",      "\\Ga", "(?!a)b", "(?<!a)b",
	    "(?>a)b", "a++b",  "a*+b",      "a?+b", "a{2}+b", "(*CR)a",
	    "(?-i)a", "(?^)a", "(?(1)a|b)", "(?1)", "(?R)",   "(?C1)a",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(safe) / sizeof(safe[0]); i++) {
		if (!regex_block_safe(safe[i]))
			fail_msg("block-safe: %s", safe[i]);
	}
	for (i = 0; i < sizeof(unsafe) / sizeof(unsafe[0]); i++) {
		if (regex_block_safe(unsafe[i]))
			fail_msg("not block-safe: %s", unsafe[i]);
	}
}

/* @msg in a file of the working directory (the build directory): a
 * memfd cannot be read with RWF_NOWAIT, as regex_scan_inline() does. */
static int
message_file(const char *msg, bool *nowait_out)
{
	char path[] = "test_regex_rules.XXXXXX", byte;
	struct iovec iov = {&byte, 1};
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(write(fd, msg, strlen(msg)), (ssize_t)strlen(msg));
	*nowait_out = preadv2(fd, &iov, 1, 0, RWF_NOWAIT) == 1;
	return fd;
}

/* Does @pattern match one of the CRLF lines of @body on its own? */
static bool
match_some_line(const char *pattern, const char *body)
{
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);
	const char *line = body, *end;
	pcre2_code *re;
	PCRE2_SIZE off;
	bool hit = false;
	int code;

	re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &code,
	                   &off, NULL);
	assert_non_null(re);
	assert_non_null(md);
	while (!hit && (end = strstr(line, "\r\n")) != NULL) {
		hit = pcre2_match(re, (PCRE2_SPTR)line, (size_t)(end - line), 0,
		                  0, md, NULL) >= 0;
		line = end + 2;
	}
	pcre2_match_data_free(md);
	pcre2_code_free(re);
	return hit;
}

/*
 * Body rules searched a block of lines at a time decide as if each line
 * were matched alone: matches across lines, at the ends of the block,
 * of empty lines, and patterns that are matched line by line.
 */
static void
test_block_same_as_lines(void **state)
{
	static const char *const patterns[] = {
	    "^gamma$",
	    "foo\\s+bar",
	    "foo[^x]bar",
	    "^$",
	    "^bar",
	    "a$",
	    "o$",
	    "(?<=foo)\\s",
	    "^\\s*$",
	    "beta.gamma",
	    "(?s)beta.gamma",
	    "\\Agamma",
	    "end\\z",
	    "(?i)ALPHA",
	    "zzz",
	    "a\\n\\ngamma",
	    "^alpha",
	    "(?<!z)end$",
	    "\\$[0-9]{1,3}(,[0-9]{3}){2,}",
	    "x\\$100,000,000 y\\z",
	    "(?m)^foo$",
	    "^  indented$",
	    "baz\\s*$",
	};
	static const char body[] = "alpha beta\r\n"
	                           "\r\n"
	                           "gamma\r\n"
	                           "foo\r\n"
	                           "bar baz\r\n"
	                           "  indented\r\n"
	                           "x$100,000,000 y\r\n"
	                           "end\r\n";
	struct fixture *f = *state;
	char json[8192], *msg;
	struct regex_scan sc;
	size_t i, n = sizeof(patterns) / sizeof(patterns[0]), len = 0;
	bool nowait;
	int fd, pass;

	len += (size_t)snprintf(json, sizeof(json), "{\"rules\": [");
	for (i = 0; i < n; i++) {
		const char *p;

		len += (size_t)snprintf(json + len, sizeof(json) - len,
		                        "%s{\"target\": \"body\", "
		                        "\"pattern\": \"",
		                        i > 0 ? "," : "");
		for (p = patterns[i]; *p != '\0'; p++)
			len += (size_t)snprintf(json + len, sizeof(json) - len,
			                        "%s%c", *p == '\\' ? "\\" : "",
			                        *p);
		len += (size_t)snprintf(json + len, sizeof(json) - len, "\"}");
	}
	(void)snprintf(json + len, sizeof(json) - len, "]}");
	assert_int_equal(load(f, json), PTL_OK);
	assert_true(f->conf.block_body);
	msg = malloc(strlen(body) + 16);
	assert_non_null(msg);
	strcpy(msg, "Subject: x\r\n\r\n");
	strcat(msg, body);
	fd = message_file(msg, &nowait);
	/* Without RWF_NOWAIT (a file system that has none) every scan goes
	 * to the thread pool: pass 1 tests nothing then. */
	for (pass = 0; pass < (nowait ? 2 : 1); pass++) {
		assert_int_equal(
		    regex_scan_init(&sc, &f->conf, fd, 0, strlen(msg)), PTL_OK);
		if (pass == 0)
			regex_scan_run(&sc);
		else
			assert_true(regex_scan_inline(&sc));
		for (i = 0; i < n; i++) {
			if (sc.ev.matched[i] !=
			    match_some_line(patterns[i], body))
				fail_msg("pass %d: %s: %s", pass, patterns[i],
				         sc.ev.matched[i] ? "matched"
				                          : "no match");
			assert_true(sc.ev.evaluated[i]);
		}
		sc.fd = -1; /* still ours */
		regex_scan_free(&sc);
	}
	close(fd);
	free(msg);
}

/* On the loop a pattern that runs away is left to the thread pool. */
static void
test_inline_gives_up(void **state)
{
	struct fixture *f = *state;
	struct regex_scan sc;
	char *msg = malloc(20100);
	bool nowait;
	int fd;

	assert_non_null(msg);
	strcpy(msg, "Subject: x\r\n\r\n");
	memset(msg + 14, 'a', 20000);
	strcpy(msg + 20014, "!\r\n");
	assert_int_equal(load(f, "{\"rules\": ["
	                         "{\"target\": \"body\", \"pattern\": "
	                         "\"(a+)+$\", \"action\": \"reject\"}]}"),
	                 PTL_OK);
	fd = message_file(msg, &nowait);
	assert_int_equal(regex_scan_init(&sc, &f->conf, fd, 0, strlen(msg)),
	                 PTL_OK);
	assert_false(regex_scan_inline(&sc));
	/* Given up for the limit, not for want of RWF_NOWAIT. */
	assert_true(!nowait || sc.offset == sc.end);
	sc.fd = -1;
	regex_scan_free(&sc);
	close(fd);
	free(msg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_bad_pattern, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hooks_and_wants, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_envelope_verdict, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scan_limit, setup, teardown),
	    cmocka_unit_test(test_block_safe),
	    cmocka_unit_test_setup_teardown(test_block_same_as_lines, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_inline_gives_up, setup,
	                                    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
