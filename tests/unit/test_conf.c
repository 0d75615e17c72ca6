/* SPDX-License-Identifier: MIT */
/* Unit tests for config key tables and the size/duration/address parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <petrel/config.h>

#include "core/conf_doc.h"

#define KIB 1024
#define MIB (1024 * 1024)
#define GIB ((int64_t)1024 * 1024 * 1024)

static const char *const roles[] = {"mx", "submission", "submissions", NULL};

struct listen_conf {
	struct ptl_conf_address address;
	int role;
	bool tls;
};

struct limits_conf {
	uint64_t max_size;
	int64_t idle;
};

struct test_conf {
	const char *hostname;
	int64_t workers;
	int64_t offset;
	bool verbose;
	uint64_t max_size;
	int64_t timeout;
	int role;
	struct ptl_conf_list domains;
	struct limits_conf limits;
	struct ptl_conf_list listen;
	struct ptl_conf_address relay;
	json_t *extra;
};

static const struct ptl_conf_key listen_keys[] = {
    {.name = "address",
     .type = PTL_CONF_ADDRESS,
     .flags = PTL_CONF_REQUIRED,
     .offset = offsetof(struct listen_conf, address),
     .doc = "where to listen"},
    {.name = "role",
     .type = PTL_CONF_ENUM,
     .offset = offsetof(struct listen_conf, role),
     .def = "submission",
     .enum_names = roles,
     .doc = "what the port is for"},
    {.name = "tls",
     .type = PTL_CONF_BOOL,
     .offset = offsetof(struct listen_conf, tls),
     .doc = "implicit TLS"},
    {.name = NULL},
};

static const struct ptl_conf_key limits_keys[] = {
    {.name = "max_size",
     .type = PTL_CONF_SIZE,
     .offset = offsetof(struct limits_conf, max_size),
     .def = "25M",
     .min = KIB,
     .max = GIB,
     .doc = "largest message"},
    {.name = "idle",
     .type = PTL_CONF_DURATION,
     .offset = offsetof(struct limits_conf, idle),
     .def = "5m",
     .doc = "idle timeout"},
    {.name = NULL},
};

static const struct ptl_conf_key test_keys[] = {
    {.name = "hostname",
     .type = PTL_CONF_STRING,
     .flags = PTL_CONF_REQUIRED,
     .offset = offsetof(struct test_conf, hostname),
     .doc = "our name | with a pipe"},
    {.name = "workers",
     .type = PTL_CONF_INT,
     .offset = offsetof(struct test_conf, workers),
     .def = "4",
     .min = 1,
     .max = 64,
     .doc = "worker processes"},
    {.name = "offset",
     .type = PTL_CONF_INT,
     .offset = offsetof(struct test_conf, offset),
     .doc = "any integer"},
    {.name = "verbose",
     .type = PTL_CONF_BOOL,
     .offset = offsetof(struct test_conf, verbose),
     .def = "true"},
    {.name = "max_size",
     .type = PTL_CONF_SIZE,
     .offset = offsetof(struct test_conf, max_size),
     .def = "10M"},
    {.name = "timeout",
     .type = PTL_CONF_DURATION,
     .offset = offsetof(struct test_conf, timeout),
     .def = "30s",
     .min = 1000,
     .max = 300000},
    {.name = "role",
     .type = PTL_CONF_ENUM,
     .offset = offsetof(struct test_conf, role),
     .def = "mx",
     .enum_names = roles},
    {.name = "domains",
     .type = PTL_CONF_STRING_LIST,
     .offset = offsetof(struct test_conf, domains),
     .def = "[\"a.test\", \"b.test\"]",
     .min = 1,
     .max = 3},
    {.name = "limits",
     .type = PTL_CONF_OBJECT,
     .offset = offsetof(struct test_conf, limits),
     .sub = limits_keys},
    {.name = "listen",
     .type = PTL_CONF_OBJECT_LIST,
     .offset = offsetof(struct test_conf, listen),
     .sub = listen_keys,
     .sub_size = sizeof(struct listen_conf),
     .min = 0,
     .max = 4},
    {.name = "relay",
     .type = PTL_CONF_ADDRESS,
     .offset = offsetof(struct test_conf, relay)},
    {.name = "extra",
     .type = PTL_CONF_JSON,
     .offset = offsetof(struct test_conf, extra),
     .def = "{\"k\": 1}"},
    {.name = NULL},
};

struct fixture {
	struct ptl_pool *pool;
	json_t *root;
	struct test_conf conf;
	struct ptl_error err;
};

static int
setup(void **state)
{
	struct fixture *f;

	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	f->pool = ptl_pool_create(0);
	if (f->pool == NULL)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	ptl_pool_destroy(f->pool);
	json_decref(f->root);
	free(f);
	return 0;
}

/* Parse @json (held by the fixture) with @keys at path "modules.x". */
static int
parse_with(struct fixture *f, const struct ptl_conf_key *keys, const char *json,
           void *out)
{
	json_error_t jerr;

	json_decref(f->root);
	f->root = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (f->root == NULL)
		fail_msg("bad test JSON: %s: %s", jerr.text, json);
	memset(&f->err, 0, sizeof(f->err));
	return ptl_conf_parse(keys, f->root, out, f->pool, "modules.x",
	                      &f->err);
}

static int
parse(struct fixture *f, const char *json)
{
	memset(&f->conf, 0, sizeof(f->conf));
	return parse_with(f, test_keys, json, &f->conf);
}

/* parse() that reports the error when it unexpectedly fails. */
static int
parse_ok(struct fixture *f, const char *json)
{
	int rc = parse(f, json);

	if (rc != PTL_OK)
		fail_msg("refused: %s: %s: %s", json, f->err.path, f->err.text);
	return rc;
}

static void
expect_error(struct fixture *f, const char *json, const char *path,
             const char *text)
{
	if (parse(f, json) != PTL_ERROR)
		fail_msg("accepted: %s", json);
	assert_string_equal(f->err.path, path);
	assert_string_equal(f->err.text, text);
}

/* Like expect_error, but the text only has to start with @prefix. */
static void
expect_error_prefix(struct fixture *f, const char *json, const char *path,
                    const char *prefix)
{
	if (parse(f, json) != PTL_ERROR)
		fail_msg("accepted: %s", json);
	assert_string_equal(f->err.path, path);
	if (strncmp(f->err.text, prefix, strlen(prefix)) != 0)
		fail_msg("text \"%s\" does not start with \"%s\"", f->err.text,
		         prefix);
}

static void
test_defaults(void **state)
{
	struct fixture *f = *state;
	const char **domains;

	assert_int_equal(parse_ok(f, "{\"hostname\": \"mx.test\"}"), PTL_OK);
	assert_string_equal(f->conf.hostname, "mx.test");
	assert_int_equal(f->conf.workers, 4);
	assert_int_equal(f->conf.offset, 0);
	assert_true(f->conf.verbose);
	assert_int_equal(f->conf.max_size, 10 * MIB);
	assert_int_equal(f->conf.timeout, 30000);
	assert_int_equal(f->conf.role, 0);
	assert_int_equal(f->conf.domains.count, 2);
	domains = f->conf.domains.items;
	assert_string_equal(domains[0], "a.test");
	assert_string_equal(domains[1], "b.test");
	/* An absent object still gets its keys' defaults. */
	assert_int_equal(f->conf.limits.max_size, 25 * MIB);
	assert_int_equal(f->conf.limits.idle, 300000);
	assert_int_equal(f->conf.listen.count, 0);
	assert_null(f->conf.listen.items);
	assert_null(f->conf.relay.text);
	assert_int_equal(f->conf.relay.port, 0);
	/* The JSON default lives as long as the pool. */
	assert_non_null(f->conf.extra);
	assert_int_equal(
	    json_integer_value(json_object_get(f->conf.extra, "k")), 1);
}

static void
test_full(void **state)
{
	struct fixture *f = *state;
	const struct listen_conf *l;
	const char **domains;

	assert_int_equal(
	    parse_ok(f, "{\"hostname\": \"mail.example.test\","
	                " \"workers\": 64, \"offset\": -5, \"verbose\": false,"
	                " \"max_size\": \"2T\", \"timeout\": \"1500ms\","
	                " \"role\": \"submissions\","
	                " \"domains\": [\"example.test\"],"
	                " \"limits\": {\"max_size\": 2048, \"idle\": 10},"
	                " \"listen\": [{\"address\": \"127.0.0.1:2525\","
	                "               \"role\": \"mx\"},"
	                "              {\"address\": \"[::1]:2465\","
	                "               \"tls\": true}],"
	                " \"relay\": \"smtp.example.test:587\","
	                " \"extra\": [1, 2]}"),
	    PTL_OK);
	assert_string_equal(f->conf.hostname, "mail.example.test");
	/* Strings are copies in the pool, not borrowed from the JSON. */
	assert_ptr_not_equal(
	    f->conf.hostname,
	    json_string_value(json_object_get(f->root, "hostname")));
	assert_int_equal(f->conf.workers, 64);
	assert_int_equal(f->conf.offset, -5);
	assert_false(f->conf.verbose);
	assert_int_equal(f->conf.max_size, (uint64_t)2 << 40);
	assert_int_equal(f->conf.timeout, 1500);
	assert_int_equal(f->conf.role, 2);
	assert_int_equal(f->conf.domains.count, 1);
	domains = f->conf.domains.items;
	assert_string_equal(domains[0], "example.test");
	assert_int_equal(f->conf.limits.max_size, 2048);
	assert_int_equal(f->conf.limits.idle, 10000);
	assert_int_equal(f->conf.listen.count, 2);
	l = f->conf.listen.items;
	assert_string_equal(l[0].address.text, "127.0.0.1:2525");
	assert_string_equal(l[0].address.host, "127.0.0.1");
	assert_int_equal(l[0].address.port, 2525);
	assert_int_equal(l[0].role, 0);
	assert_false(l[0].tls);
	assert_string_equal(l[1].address.text, "[::1]:2465");
	assert_string_equal(l[1].address.host, "::1");
	assert_int_equal(l[1].address.port, 2465);
	assert_int_equal(l[1].role, 1); /* per-item default */
	assert_true(l[1].tls);
	assert_string_equal(f->conf.relay.host, "smtp.example.test");
	assert_int_equal(f->conf.relay.port, 587);
	/* JSON values are borrowed from the document. */
	assert_ptr_equal(f->conf.extra, json_object_get(f->root, "extra"));
}

static void
test_not_an_object(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "[1]", "modules.x", "expected an object");
	expect_error(f, "\"x\"", "modules.x", "expected an object");
	expect_error(f, "null", "modules.x", "expected an object");
}

static void
test_unknown_key(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "{\"hostname\": \"h\", \"hostnme\": 1}",
	             "modules.x.hostnme",
	             "unknown key \"hostnme\" (valid keys: \"hostname\", "
	             "\"workers\", \"offset\", \"verbose\", \"max_size\", "
	             "\"timeout\", \"role\", \"domains\", \"limits\", "
	             "\"listen\", \"relay\", \"extra\")");
	/* Reported even when a required key is missing too. */
	expect_error_prefix(f, "{\"hostnam\": \"h\"}", "modules.x.hostnam",
	                    "unknown key \"hostnam\"");
	expect_error(f,
	             "{\"hostname\": \"h\", \"listen\": [{\"address\": "
	             "\"*:25\"}, {\"adress\": \"*:26\"}]}",
	             "modules.x.listen[1].adress",
	             "unknown key \"adress\" (valid keys: \"address\", "
	             "\"role\", \"tls\")");
	expect_error_prefix(f, "{\"hostname\": \"h\", \"limits\": {\"x\": 1}}",
	                    "modules.x.limits.x", "unknown key \"x\"");
}

/* A key that differs only after an embedded NUL is not the same key. */
static void
test_unknown_key_with_nul(void **state)
{
	struct fixture *f = *state;
	json_t *obj;

	/* json_loads refuses such keys; the API can still build them. */
	obj = json_object();
	assert_non_null(obj);
	assert_int_equal(json_object_set_new(obj, "hostname", json_string("h")),
	                 0);
	assert_int_equal(
	    json_object_setn_new(obj, "workers\0x", 9, json_integer(1)), 0);
	memset(&f->conf, 0, sizeof(f->conf));
	assert_int_equal(ptl_conf_parse(test_keys, obj, &f->conf, f->pool,
	                                "modules.x", &f->err),
	                 PTL_ERROR);
	json_decref(obj);
	assert_string_equal(f->err.path, "modules.x.workers\\x00x");
	assert_true(strncmp(f->err.text, "unknown key \"workers\\x00x\"", 26) ==
	            0);

	expect_error_prefix(f, "{\"hostname\": \"h\", \"a\\nb\\\"\": 1}",
	                    "modules.x.a\\x0ab\\x22",
	                    "unknown key \"a\\x0ab\\x22\"");
}

struct many_conf {
	int64_t v;
};

static const struct ptl_conf_key many_keys[] = {
    {.name = "a_rather_long_key_name_number_one", .type = PTL_CONF_INT},
    {.name = "a_rather_long_key_name_number_two", .type = PTL_CONF_INT},
    {.name = "a_rather_long_key_name_number_three", .type = PTL_CONF_INT},
    {.name = "a_rather_long_key_name_number_four", .type = PTL_CONF_INT},
    {.name = "a_rather_long_key_name_number_five", .type = PTL_CONF_INT},
    {.name = "a_rather_long_key_name_number_six", .type = PTL_CONF_INT},
    {.name = "a_rather_long_key_name_number_seven", .type = PTL_CONF_INT},
    {.name = NULL},
};

static const struct ptl_conf_key no_keys[] = {
    {.name = NULL},
};

static void
test_unknown_key_long_list(void **state)
{
	struct fixture *f = *state;
	struct many_conf out = {0};

	assert_int_equal(parse_with(f, many_keys, "{\"nope\": 1}", &out),
	                 PTL_ERROR);
	assert_string_equal(f->err.path, "modules.x.nope");
	assert_string_equal(f->err.text, "unknown key \"nope\"");

	assert_int_equal(parse_with(f, no_keys, "{\"nope\": 1}", &out),
	                 PTL_ERROR);
	assert_string_equal(f->err.path, "modules.x.nope");
	assert_string_equal(
	    f->err.text, "unknown key \"nope\" (this section takes no keys)");
	assert_int_equal(parse_with(f, no_keys, "{}", &out), PTL_OK);
}

static void
test_missing_required(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "{}", "modules.x.hostname", "missing required key");
	expect_error(f,
	             "{\"hostname\": \"h\", \"listen\": [{\"role\": \"mx\"}]}",
	             "modules.x.listen[0].address", "missing required key");
}

static void
test_string(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "{\"hostname\": 5}", "modules.x.hostname",
	             "expected a string");
	expect_error(f, "{\"hostname\": null}", "modules.x.hostname",
	             "expected a string");
	expect_error(f, "{\"hostname\": \"a\\u0000b\"}", "modules.x.hostname",
	             "expected a string without NUL characters");
	assert_int_equal(parse_ok(f, "{\"hostname\": \"\"}"), PTL_OK);
	assert_string_equal(f->conf.hostname, "");
	assert_int_equal(parse_ok(f, "{\"hostname\": \"caf\\u00e9\"}"), PTL_OK);
	assert_string_equal(f->conf.hostname, "caf\xc3\xa9");
}

static void
test_int(void **state)
{
	struct fixture *f = *state;
	const char *range = "expected an integer between 1 and 64";

	expect_error(f, "{\"hostname\": \"h\", \"workers\": 0}",
	             "modules.x.workers", range);
	expect_error(f, "{\"hostname\": \"h\", \"workers\": 65}",
	             "modules.x.workers", range);
	expect_error(f, "{\"hostname\": \"h\", \"workers\": -1}",
	             "modules.x.workers", range);
	expect_error(f, "{\"hostname\": \"h\", \"workers\": \"4\"}",
	             "modules.x.workers", range);
	expect_error(f, "{\"hostname\": \"h\", \"workers\": 1.5}",
	             "modules.x.workers", range);
	expect_error(f, "{\"hostname\": \"h\", \"workers\": 2.0}",
	             "modules.x.workers", range);
	expect_error(f, "{\"hostname\": \"h\", \"workers\": true}",
	             "modules.x.workers", range);
	assert_int_equal(parse_ok(f, "{\"hostname\": \"h\", \"workers\": 1}"),
	                 PTL_OK);
	assert_int_equal(f->conf.workers, 1);

	expect_error(f, "{\"hostname\": \"h\", \"offset\": \"x\"}",
	             "modules.x.offset", "expected an integer");
	assert_int_equal(parse_ok(f, "{\"hostname\": \"h\", \"offset\":"
	                             " -9223372036854775808}"),
	                 PTL_OK);
	assert_true(f->conf.offset == INT64_MIN);
	assert_int_equal(parse_ok(f, "{\"hostname\": \"h\", \"offset\":"
	                             " 9223372036854775807}"),
	                 PTL_OK);
	assert_true(f->conf.offset == INT64_MAX);
}

static void
test_bool(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "{\"hostname\": \"h\", \"verbose\": \"yes\"}",
	             "modules.x.verbose", "expected true or false");
	expect_error(f, "{\"hostname\": \"h\", \"verbose\": 1}",
	             "modules.x.verbose", "expected true or false");
	expect_error(f, "{\"hostname\": \"h\", \"verbose\": \"true\"}",
	             "modules.x.verbose", "expected true or false");
	assert_int_equal(
	    parse_ok(f, "{\"hostname\": \"h\", \"verbose\": false}"), PTL_OK);
	assert_false(f->conf.verbose);
}

static void
check_size(const char *text, uint64_t expect)
{
	struct ptl_error err;
	uint64_t v = 12345;

	if (ptl_conf_parse_size(text, &v, &err) != PTL_OK)
		fail_msg("size \"%s\" refused: %s", text, err.text);
	if (v != expect)
		fail_msg("size \"%s\" = %llu", text, (unsigned long long)v);
}

static void
check_size_bad(const char *text, const char *why)
{
	struct ptl_error err;
	uint64_t v = 12345;
	const char *hint =
	    "expected a size such as \"512\", \"10k\", \"25M\" or \"1G\"";
	char expect[PTL_ERROR_TEXT_MAX];

	if (ptl_conf_parse_size(text, &v, &err) != PTL_ERROR)
		fail_msg("size \"%s\" accepted", text ? text : "(null)");
	assert_int_equal(v, 12345);
	(void)snprintf(expect, sizeof(expect), "%s%s%s", hint,
	               why != NULL ? ": " : "", why != NULL ? why : "");
	assert_string_equal(err.text, expect);
}

static void
test_size_parser(void **state)
{
	check_size("0", 0);
	check_size("512", 512);
	check_size("10k", 10 * KIB);
	check_size("10K", 10 * KIB);
	check_size("25M", 25 * MIB);
	check_size("25m", 25 * MIB);
	check_size("1G", GIB);
	check_size("1g", GIB);
	check_size("2T", (uint64_t)2 << 40);
	check_size("0007k", 7 * KIB);
	check_size("18446744073709551615", UINT64_MAX);
	check_size("16777215T", (uint64_t)16777215 << 40);

	check_size_bad("", NULL);
	check_size_bad(NULL, NULL);
	check_size_bad("10x", NULL);
	check_size_bad("-5", NULL);
	check_size_bad("+5", NULL);
	check_size_bad("k", NULL);
	check_size_bad("10kb", NULL);
	check_size_bad("10 k", NULL);
	check_size_bad(" 10", NULL);
	check_size_bad("10 ", NULL);
	check_size_bad("1.5G", NULL);
	check_size_bad("0x10", NULL);
	check_size_bad("99999999999G", "too large");
	check_size_bad("16777216T", "too large");
	check_size_bad("18446744073709551616", "too large");
	check_size_bad("99999999999999999999999999k", "too large");

	/* NULL err is allowed. */
	uint64_t v;
	assert_int_equal(ptl_conf_parse_size("x", &v, NULL), PTL_ERROR);
}

static void
test_size_key(void **state)
{
	struct fixture *f = *state;
	const char *hint =
	    "expected a size such as \"512\", \"10k\", \"25M\" or \"1G\"";

	assert_int_equal(parse_ok(f, "{\"hostname\": \"h\", \"max_size\": 0}"),
	                 PTL_OK);
	assert_int_equal(f->conf.max_size, 0);
	assert_int_equal(
	    parse_ok(f, "{\"hostname\": \"h\", \"max_size\": \"0\"}"), PTL_OK);
	assert_int_equal(parse_ok(f, "{\"hostname\": \"h\", \"max_size\": "
	                             "9223372036854775807}"),
	                 PTL_OK);
	assert_true(f->conf.max_size == INT64_MAX);
	expect_error(f, "{\"hostname\": \"h\", \"max_size\": -5}",
	             "modules.x.max_size", hint);
	expect_error(f, "{\"hostname\": \"h\", \"max_size\": \"-5\"}",
	             "modules.x.max_size", hint);
	expect_error(f, "{\"hostname\": \"h\", \"max_size\": \"\"}",
	             "modules.x.max_size", hint);
	expect_error(f, "{\"hostname\": \"h\", \"max_size\": \"10x\"}",
	             "modules.x.max_size", hint);
	expect_error(f, "{\"hostname\": \"h\", \"max_size\": 1.5}",
	             "modules.x.max_size", hint);
	expect_error(f, "{\"hostname\": \"h\", \"max_size\": \"1\\u0000k\"}",
	             "modules.x.max_size", hint);
	expect_error_prefix(f,
	                    "{\"hostname\": \"h\", \"max_size\": "
	                    "\"99999999999G\"}",
	                    "modules.x.max_size", hint);

	/* Bounds: 1k..1G, shown in units. */
	expect_error(
	    f, "{\"hostname\": \"h\", \"limits\": {\"max_size\": 1023}}",
	    "modules.x.limits.max_size", "expected a size between 1k and 1G");
	expect_error(
	    f, "{\"hostname\": \"h\", \"limits\": {\"max_size\": \"2G\"}}",
	    "modules.x.limits.max_size", "expected a size between 1k and 1G");
	assert_int_equal(parse_ok(f, "{\"hostname\": \"h\", \"limits\": "
	                             "{\"max_size\": \"1G\"}}"),
	                 PTL_OK);
	assert_int_equal(f->conf.limits.max_size, GIB);
	assert_int_equal(parse_ok(f, "{\"hostname\": \"h\", \"limits\": "
	                             "{\"max_size\": \"1k\"}}"),
	                 PTL_OK);
	assert_int_equal(f->conf.limits.max_size, KIB);
	/* The sibling default still applies. */
	assert_int_equal(f->conf.limits.idle, 300000);
}

static void
check_duration(const char *text, int64_t expect)
{
	struct ptl_error err;
	int64_t v = 12345;

	if (ptl_conf_parse_duration(text, &v, &err) != PTL_OK)
		fail_msg("duration \"%s\" refused: %s", text, err.text);
	if (v != expect)
		fail_msg("duration \"%s\" = %lld", text, (long long)v);
}

static void
check_duration_bad(const char *text, bool too_large)
{
	struct ptl_error err;
	int64_t v = 12345;
	const char *hint = "expected a duration such as \"250ms\", \"30s\", "
	                   "\"5m\", \"4h\" or \"5d\"";
	char expect[PTL_ERROR_TEXT_MAX];

	if (ptl_conf_parse_duration(text, &v, &err) != PTL_ERROR)
		fail_msg("duration \"%s\" accepted", text ? text : "(null)");
	assert_int_equal(v, 12345);
	(void)snprintf(expect, sizeof(expect), "%s%s", hint,
	               too_large ? ": too large" : "");
	assert_string_equal(err.text, expect);
}

static void
test_duration_parser(void **state)
{
	check_duration("250ms", 250);
	check_duration("0ms", 0);
	check_duration("30s", 30000);
	check_duration("30", 30000);
	check_duration("0", 0);
	check_duration("5m", 300000);
	check_duration("4h", 4 * 3600000);
	check_duration("5d", 5 * 86400000LL);
	check_duration("9223372036854775807ms", INT64_MAX);
	check_duration("9223372036854775s", 9223372036854775000LL);

	check_duration_bad("", false);
	check_duration_bad(NULL, false);
	check_duration_bad("10x", false);
	check_duration_bad("-5", false);
	check_duration_bad("-5s", false);
	check_duration_bad("s", false);
	check_duration_bad("5M", false);
	check_duration_bad("5S", false);
	check_duration_bad("1.5s", false);
	check_duration_bad("5 s", false);
	check_duration_bad("5sec", false);
	check_duration_bad("5mss", false);
	check_duration_bad("9223372036854776s", true);
	check_duration_bad("9223372036854775808ms", true);
	check_duration_bad("99999999999999999999999d", true);
}

static void
test_duration_key(void **state)
{
	struct fixture *f = *state;
	const char *range = "expected a duration between 1s and 5m";

	assert_int_equal(parse_ok(f, "{\"hostname\": \"h\", \"timeout\": 10}"),
	                 PTL_OK);
	assert_int_equal(f->conf.timeout, 10000);
	assert_int_equal(
	    parse_ok(f, "{\"hostname\": \"h\", \"timeout\": \"5m\"}"), PTL_OK);
	assert_int_equal(f->conf.timeout, 300000);
	assert_int_equal(
	    parse_ok(f, "{\"hostname\": \"h\", \"timeout\": \"1000ms\"}"),
	    PTL_OK);
	assert_int_equal(f->conf.timeout, 1000);
	expect_error(f, "{\"hostname\": \"h\", \"timeout\": \"999ms\"}",
	             "modules.x.timeout", range);
	expect_error(f, "{\"hostname\": \"h\", \"timeout\": 301}",
	             "modules.x.timeout", range);
	expect_error(f, "{\"hostname\": \"h\", \"timeout\": -1}",
	             "modules.x.timeout",
	             "expected a duration such as \"250ms\", \"30s\", \"5m\", "
	             "\"4h\" or \"5d\"");
	expect_error(f, "{\"hostname\": \"h\", \"timeout\": true}",
	             "modules.x.timeout",
	             "expected a duration such as \"250ms\", \"30s\", \"5m\", "
	             "\"4h\" or \"5d\"");
	expect_error(f,
	             "{\"hostname\": \"h\", \"timeout\": "
	             "9223372036854775807}",
	             "modules.x.timeout",
	             "expected a duration such as \"250ms\", \"30s\", \"5m\", "
	             "\"4h\" or \"5d\": too large");
	expect_error(f, "{\"hostname\": \"h\", \"limits\": {\"idle\": \"5y\"}}",
	             "modules.x.limits.idle",
	             "expected a duration such as \"250ms\", \"30s\", \"5m\", "
	             "\"4h\" or \"5d\"");
}

static void
test_enum(void **state)
{
	struct fixture *f = *state;
	const char *msg =
	    "expected one of \"mx\", \"submission\", \"submissions\"";

	assert_int_equal(
	    parse_ok(f, "{\"hostname\": \"h\", \"role\": \"submission\"}"),
	    PTL_OK);
	assert_int_equal(f->conf.role, 1);
	expect_error(f, "{\"hostname\": \"h\", \"role\": \"MX\"}",
	             "modules.x.role", msg);
	expect_error(f, "{\"hostname\": \"h\", \"role\": \"\"}",
	             "modules.x.role", msg);
	expect_error(f, "{\"hostname\": \"h\", \"role\": 0}", "modules.x.role",
	             msg);
	expect_error(f, "{\"hostname\": \"h\", \"role\": \"mx\\u0000x\"}",
	             "modules.x.role", msg);
}

struct auth_conf {
	const char *user;
	int64_t port;
};

struct outer_conf {
	struct auth_conf auth;
};

static const struct ptl_conf_key auth_keys[] = {
    {.name = "user",
     .type = PTL_CONF_STRING,
     .flags = PTL_CONF_REQUIRED,
     .offset = offsetof(struct auth_conf, user)},
    {.name = "port",
     .type = PTL_CONF_INT,
     .offset = offsetof(struct auth_conf, port),
     .def = "25"},
    {.name = NULL},
};

static const struct ptl_conf_key outer_keys[] = {
    {.name = "auth",
     .type = PTL_CONF_OBJECT,
     .offset = offsetof(struct outer_conf, auth),
     .sub = auth_keys},
    {.name = NULL},
};

/* An absent object with required keys means "not configured". */
static void
test_optional_object_with_required_keys(void **state)
{
	struct fixture *f = *state;
	struct outer_conf out;

	memset(&out, 0, sizeof(out));
	assert_int_equal(parse_with(f, outer_keys, "{}", &out), PTL_OK);
	assert_null(out.auth.user);
	assert_int_equal(out.auth.port, 0);

	assert_int_equal(parse_with(f, outer_keys, "{\"auth\": {}}", &out),
	                 PTL_ERROR);
	assert_string_equal(f->err.path, "modules.x.auth.user");
	assert_string_equal(f->err.text, "missing required key");

	assert_int_equal(
	    parse_with(f, outer_keys, "{\"auth\": {\"user\": \"u\"}}", &out),
	    PTL_OK);
	assert_string_equal(out.auth.user, "u");
	assert_int_equal(out.auth.port, 25);
}

struct pair_conf {
	int64_t a;
	int64_t b;
};

struct pair_outer {
	struct pair_conf p;
};

static const struct ptl_conf_key pair_keys[] = {
    {.name = "a",
     .type = PTL_CONF_INT,
     .offset = offsetof(struct pair_conf, a)},
    {.name = "b",
     .type = PTL_CONF_INT,
     .offset = offsetof(struct pair_conf, b)},
    {.name = NULL},
};

/* An object default applies whole or not at all. */
static void
test_object_default(void **state)
{
	struct fixture *f = *state;
	struct ptl_conf_key keys[] = {
	    {.name = "p",
	     .type = PTL_CONF_OBJECT,
	     .offset = offsetof(struct pair_outer, p),
	     .def = "{\"a\": 1, \"b\": 2}",
	     .sub = pair_keys,
	     .sub_size = sizeof(struct pair_conf)},
	    {.name = NULL},
	};
	struct pair_outer out;

	memset(&out, 0, sizeof(out));
	assert_int_equal(parse_with(f, keys, "{}", &out), PTL_OK);
	assert_int_equal(out.p.a, 1);
	assert_int_equal(out.p.b, 2);

	memset(&out, 0, sizeof(out));
	assert_int_equal(parse_with(f, keys, "{\"p\": {\"b\": 5}}", &out),
	                 PTL_OK);
	assert_int_equal(out.p.a, 0);
	assert_int_equal(out.p.b, 5);

	/* A bad object default is found even when the config sets it. */
	keys[0].def = "{\"c\": 1}";
	assert_int_equal(parse_with(f, keys, "{\"p\": {\"b\": 5}}", &out),
	                 PTL_ERROR);
	assert_string_equal(f->err.path, "modules.x.p");
	assert_string_equal(f->err.text,
	                    "bad default for key \"modules.x.p\": unknown key "
	                    "\"c\" (valid keys: \"a\", \"b\")");
}

static void
test_string_list(void **state)
{
	struct fixture *f = *state;
	const char **items;

	assert_int_equal(parse_ok(f, "{\"hostname\": \"h\", \"domains\": "
	                             "[\"x\", \"y\", \"z\"]}"),
	                 PTL_OK);
	assert_int_equal(f->conf.domains.count, 3);
	items = f->conf.domains.items;
	assert_string_equal(items[0], "x");
	assert_string_equal(items[2], "z");
	expect_error(f, "{\"hostname\": \"h\", \"domains\": \"x\"}",
	             "modules.x.domains", "expected an array of strings");
	expect_error(f, "{\"hostname\": \"h\", \"domains\": [\"x\", 5]}",
	             "modules.x.domains[1]", "expected a string");
	expect_error(
	    f, "{\"hostname\": \"h\", \"domains\": [\"x\", \"y\\u0000\"]}",
	    "modules.x.domains[1]", "expected a string without NUL characters");
	expect_error(f, "{\"hostname\": \"h\", \"domains\": []}",
	             "modules.x.domains", "expected between 1 and 3 items");
	expect_error(f,
	             "{\"hostname\": \"h\", \"domains\": [\"a\", \"b\", \"c\", "
	             "\"d\"]}",
	             "modules.x.domains", "expected between 1 and 3 items");
}

static void
test_object(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "{\"hostname\": \"h\", \"limits\": []}",
	             "modules.x.limits", "expected an object");
	expect_error(f, "{\"hostname\": \"h\", \"limits\": {\"idle\": false}}",
	             "modules.x.limits.idle",
	             "expected a duration such as \"250ms\", \"30s\", \"5m\", "
	             "\"4h\" or \"5d\"");
}

static void
test_object_list(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "{\"hostname\": \"h\", \"listen\": {}}",
	             "modules.x.listen", "expected an array of objects");
	expect_error(f, "{\"hostname\": \"h\", \"listen\": [\"*:25\"]}",
	             "modules.x.listen[0]", "expected an object");
	expect_error(f,
	             "{\"hostname\": \"h\", \"listen\": [{\"address\": "
	             "\"127.0.0.1:25\"}, {\"address\": \"127.0.0.1\"}]}",
	             "modules.x.listen[1].address",
	             "expected \"host:port\": missing port");
	expect_error(f,
	             "{\"hostname\": \"h\", \"listen\": [{\"address\": "
	             "\"127.0.0.1:25\", \"role\": \"relay\"}]}",
	             "modules.x.listen[0].role",
	             "expected one of \"mx\", \"submission\", \"submissions\"");
	expect_error(
	    f,
	    "{\"hostname\": \"h\", \"listen\": [{\"address\": \"*:1\"},"
	    " {\"address\": \"*:2\"}, {\"address\": \"*:3\"},"
	    " {\"address\": \"*:4\"}, {\"address\": \"*:5\"}]}",
	    "modules.x.listen", "expected between 0 and 4 items");
	assert_int_equal(parse_ok(f, "{\"hostname\": \"h\", \"listen\": []}"),
	                 PTL_OK);
	assert_int_equal(f->conf.listen.count, 0);
}

static void
test_address_key(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "{\"hostname\": \"h\", \"relay\": 25}",
	             "modules.x.relay", "expected \"host:port\"");
	expect_error(f, "{\"hostname\": \"h\", \"relay\": \"a:25\\u0000\"}",
	             "modules.x.relay", "expected \"host:port\"");
	expect_error_prefix(f, "{\"hostname\": \"h\", \"relay\": \"h:0\"}",
	                    "modules.x.relay", "expected \"host:port\"");
}

static void
check_address(const char *text, const char *host, unsigned port)
{
	struct ptl_pool *pool;
	struct ptl_conf_address a = {0};
	struct ptl_error err;

	pool = ptl_pool_create(0);
	assert_non_null(pool);
	if (ptl_conf_parse_address(pool, text, &a, &err) != PTL_OK)
		fail_msg("address \"%s\" refused: %s", text, err.text);
	assert_string_equal(a.text, text);
	assert_string_equal(a.host, host);
	assert_int_equal(a.port, port);
	ptl_pool_destroy(pool);
}

static void
check_address_bad(const char *text, const char *detail)
{
	struct ptl_pool *pool;
	struct ptl_conf_address a = {0};
	struct ptl_error err;
	char expect[PTL_ERROR_TEXT_MAX];

	pool = ptl_pool_create(0);
	assert_non_null(pool);
	if (ptl_conf_parse_address(pool, text, &a, &err) != PTL_ERROR)
		fail_msg("address \"%s\" accepted", text ? text : "(null)");
	(void)snprintf(expect, sizeof(expect), "expected \"host:port\"%s%s",
	               detail != NULL ? ": " : "",
	               detail != NULL ? detail : "");
	assert_string_equal(err.text, expect);
	assert_null(a.text);
	assert_null(a.host);
	ptl_pool_destroy(pool);
}

static void
test_address_parser(void **state)
{
	check_address("127.0.0.1:25", "127.0.0.1", 25);
	check_address("0.0.0.0:2525", "0.0.0.0", 2525);
	check_address("[::1]:2525", "::1", 2525);
	check_address("[::]:25", "::", 25);
	check_address("[2001:db8::1]:587", "2001:db8::1", 587);
	check_address("[::ffff:192.0.2.1]:25", "::ffff:192.0.2.1", 25);
	check_address("*:25", "*", 25);
	check_address("localhost:1", "localhost", 1);
	check_address("mx-1.example.test:65535", "mx-1.example.test", 65535);
	check_address("mx.example.test.:25", "mx.example.test.", 25);
	check_address("127.0.0.1:00025", "127.0.0.1", 25);

	check_address_bad(NULL, NULL);
	check_address_bad("", NULL);
	check_address_bad("127.0.0.1", "missing port");
	check_address_bad("host:", "missing port");
	check_address_bad("[::1]:", "missing port");
	check_address_bad(":25", "missing host");
	check_address_bad("127.0.0.1:0", "port out of range");
	check_address_bad("127.0.0.1:70000", "port out of range");
	check_address_bad("127.0.0.1:65536", "port out of range");
	check_address_bad("127.0.0.1:000025", "port out of range");
	check_address_bad("127.0.0.1:99999999999999999999",
	                  "port out of range");
	check_address_bad("127.0.0.1:+25", "port is not a number");
	check_address_bad("127.0.0.1:-25", "port is not a number");
	check_address_bad("127.0.0.1:2a", "port is not a number");
	check_address_bad("127.0.0.1: 25", "port is not a number");
	check_address_bad("127.0.0.1:0x19", "port is not a number");
	check_address_bad("[::1]25", "missing \":\" after \"]\"");
	check_address_bad("[::1]", "missing \":\" after \"]\"");
	check_address_bad("[::1:25", "missing \"]\"");
	check_address_bad("[]:25", "bad IPv6 address");
	check_address_bad("[1.2.3.4]:25", "bad IPv6 address");
	check_address_bad("[example.test]:25", "bad IPv6 address");
	check_address_bad("::1:25", "an IPv6 address goes in brackets");
	check_address_bad("a:b:25", "an IPv6 address goes in brackets");
	check_address_bad("300.1.1.1:25", "bad host");
	check_address_bad("1.2.3:25", "bad host");
	check_address_bad("bad_host:25", "bad host");
	check_address_bad("a..b:25", "bad host");
	check_address_bad(".a:25", "bad host");
	check_address_bad("a b:25", "bad host");
	check_address_bad("**:25", "bad host");
	check_address_bad("*.example.test:25", "bad host");
	check_address_bad("h\xc3\xa9:25", "bad host");
}

static int validate_calls;

static int
validate_even(const json_t *value, void *field, struct ptl_error *err)
{
	validate_calls++;
	if (*(int64_t *)field % 2 != 0)
		return ptl_error_set(err, "must be even");
	return PTL_OK;
}

static int
validate_with_path(const json_t *value, void *field, struct ptl_error *err)
{
	return ptl_error_set_path(err, "somewhere.else", "nope");
}

static int
validate_silent(const json_t *value, void *field, struct ptl_error *err)
{
	return PTL_ERROR;
}

/* The validator sees the raw value too. */
static int
validate_raw(const json_t *value, void *field, struct ptl_error *err)
{
	if (!json_is_string(value) ||
	    strcmp(json_string_value(value), "30s") != 0)
		return ptl_error_set(err, "write it as \"30s\"");
	return PTL_OK;
}

struct val_conf {
	int64_t n;
	int64_t d;
};

static void
test_validate(void **state)
{
	struct fixture *f = *state;
	struct ptl_conf_key keys[] = {
	    {.name = "n",
	     .type = PTL_CONF_INT,
	     .offset = offsetof(struct val_conf, n),
	     .validate = validate_even},
	    {.name = "d",
	     .type = PTL_CONF_DURATION,
	     .offset = offsetof(struct val_conf, d),
	     .def = "30s",
	     .validate = validate_raw},
	    {.name = NULL},
	};
	struct val_conf out;

	validate_calls = 0;
	memset(&out, 0, sizeof(out));
	assert_int_equal(parse_with(f, keys, "{\"n\": 4}", &out), PTL_OK);
	assert_int_equal(out.n, 4);
	assert_int_equal(out.d, 30000);
	assert_int_equal(validate_calls, 1);

	assert_int_equal(parse_with(f, keys, "{\"n\": 3}", &out), PTL_ERROR);
	assert_string_equal(f->err.path, "modules.x.n");
	assert_string_equal(f->err.text, "must be even");

	/* Not called when the type check already failed. */
	validate_calls = 0;
	assert_int_equal(parse_with(f, keys, "{\"n\": \"3\"}", &out),
	                 PTL_ERROR);
	assert_int_equal(validate_calls, 0);
	assert_string_equal(f->err.text, "expected an integer");

	/* Absent key without default: nothing to validate. */
	assert_int_equal(parse_with(f, keys, "{}", &out), PTL_OK);
	assert_int_equal(validate_calls, 0);

	assert_int_equal(parse_with(f, keys, "{\"d\": 30}", &out), PTL_ERROR);
	assert_string_equal(f->err.path, "modules.x.d");
	assert_string_equal(f->err.text, "write it as \"30s\"");

	keys[0].validate = validate_with_path;
	assert_int_equal(parse_with(f, keys, "{\"n\": 2}", &out), PTL_ERROR);
	assert_string_equal(f->err.path, "somewhere.else");
	assert_string_equal(f->err.text, "nope");

	keys[0].validate = validate_silent;
	assert_int_equal(parse_with(f, keys, "{\"n\": 2}", &out), PTL_ERROR);
	assert_string_equal(f->err.path, "modules.x.n");
	assert_string_equal(f->err.text, "invalid value");
}

struct bad_conf {
	int64_t i;
	bool b;
	uint64_t s;
	int64_t d;
	int e;
	struct ptl_conf_list l;
	struct ptl_conf_address a;
	json_t *j;
	const char *str;
};

static void
expect_bad_default(struct fixture *f, struct ptl_conf_key *key,
                   const char *text, const char *json)
{
	struct ptl_conf_key keys[2] = {*key, {.name = NULL}};
	struct bad_conf out;
	char expect[PTL_ERROR_TEXT_MAX];

	memset(&out, 0, sizeof(out));
	if (parse_with(f, keys, json, &out) != PTL_ERROR)
		fail_msg("bad default \"%s\" of %s accepted with %s", key->def,
		         key->name, json);
	(void)snprintf(expect, sizeof(expect),
	               "bad default for key \"modules.x.%s\": %s", key->name,
	               text);
	assert_string_equal(f->err.text, expect);
	assert_string_equal(f->err.path, "modules.x.k");
}

static void
test_bad_defaults(void **state)
{
	struct fixture *f = *state;
	struct ptl_conf_key k = {.name = "k"};

	k.type = PTL_CONF_INT;
	k.offset = offsetof(struct bad_conf, i);
	k.def = "abc";
	expect_bad_default(f, &k, "expected an integer", "{}");
	/* Found even when the config sets the key. */
	expect_bad_default(f, &k, "expected an integer", "{\"k\": 5}");
	k.def = "99999999999999999999";
	expect_bad_default(f, &k, "expected an integer", "{}");
	k.def = "100";
	k.min = 1;
	k.max = 10;
	expect_bad_default(f, &k, "expected an integer between 1 and 10", "{}");
	k.min = k.max = 0;

	k.type = PTL_CONF_BOOL;
	k.offset = offsetof(struct bad_conf, b);
	k.def = "yes";
	expect_bad_default(f, &k, "expected true or false", "{}");

	k.type = PTL_CONF_SIZE;
	k.offset = offsetof(struct bad_conf, s);
	k.def = "10x";
	expect_bad_default(f, &k,
	                   "expected a size such as \"512\", \"10k\", \"25M\" "
	                   "or \"1G\"",
	                   "{}");

	k.type = PTL_CONF_DURATION;
	k.offset = offsetof(struct bad_conf, d);
	k.def = "5y";
	expect_bad_default(f, &k,
	                   "expected a duration such as \"250ms\", \"30s\", "
	                   "\"5m\", \"4h\" or \"5d\"",
	                   "{}");

	k.type = PTL_CONF_ENUM;
	k.offset = offsetof(struct bad_conf, e);
	k.def = "relay";
	k.enum_names = roles;
	expect_bad_default(
	    f, &k, "expected one of \"mx\", \"submission\", \"submissions\"",
	    "{}");

	k.type = PTL_CONF_STRING_LIST;
	k.offset = offsetof(struct bad_conf, l);
	k.def = "a.test";
	expect_bad_default(f, &k, "expected an array of strings", "{}");

	k.type = PTL_CONF_ADDRESS;
	k.offset = offsetof(struct bad_conf, a);
	k.def = "localhost";
	expect_bad_default(f, &k, "expected \"host:port\": missing port", "{}");

	k.type = PTL_CONF_JSON;
	k.offset = offsetof(struct bad_conf, j);
	k.def = "{\"a\":";
	expect_bad_default(f, &k, "cannot be read as JSON", "{}");

	k.type = PTL_CONF_STRING;
	k.offset = offsetof(struct bad_conf, str);
	k.def = "\xff";
	expect_bad_default(f, &k, "cannot be read as string", "{}");
}

static void
test_good_defaults_of_every_type(void **state)
{
	struct fixture *f = *state;
	struct ptl_conf_key keys[] = {
	    {.name = "i",
	     .type = PTL_CONF_INT,
	     .offset = offsetof(struct bad_conf, i),
	     .def = "-25"},
	    {.name = "b",
	     .type = PTL_CONF_BOOL,
	     .offset = offsetof(struct bad_conf, b),
	     .def = "true"},
	    {.name = "s",
	     .type = PTL_CONF_SIZE,
	     .offset = offsetof(struct bad_conf, s),
	     .def = "512"},
	    {.name = "d",
	     .type = PTL_CONF_DURATION,
	     .offset = offsetof(struct bad_conf, d),
	     .def = "4h"},
	    {.name = "e",
	     .type = PTL_CONF_ENUM,
	     .offset = offsetof(struct bad_conf, e),
	     .def = "submissions",
	     .enum_names = roles},
	    {.name = "a",
	     .type = PTL_CONF_ADDRESS,
	     .offset = offsetof(struct bad_conf, a),
	     .def = "[::1]:25"},
	    {.name = "str",
	     .type = PTL_CONF_STRING,
	     .offset = offsetof(struct bad_conf, str),
	     .def = "mx"},
	    {.name = NULL},
	};
	struct bad_conf out;

	memset(&out, 0, sizeof(out));
	assert_int_equal(parse_with(f, keys, "{}", &out), PTL_OK);
	assert_int_equal(out.i, -25);
	assert_true(out.b);
	assert_int_equal(out.s, 512);
	assert_int_equal(out.d, 4 * 3600000);
	assert_int_equal(out.e, 2);
	assert_string_equal(out.a.host, "::1");
	assert_int_equal(out.a.port, 25);
	assert_string_equal(out.str, "mx");

	/* Values in the config win over defaults. */
	memset(&out, 0, sizeof(out));
	assert_int_equal(parse_with(f, keys,
	                            "{\"i\": 7, \"b\": false, \"str\": \"x\"}",
	                            &out),
	                 PTL_OK);
	assert_int_equal(out.i, 7);
	assert_false(out.b);
	assert_string_equal(out.str, "x");
}

static void
test_paths(void **state)
{
	struct fixture *f = *state;
	json_t *obj;

	/* Top level: no leading dot. */
	obj = json_pack("{s:i}", "hostname", 5);
	assert_non_null(obj);
	memset(&f->conf, 0, sizeof(f->conf));
	assert_int_equal(
	    ptl_conf_parse(test_keys, obj, &f->conf, f->pool, "", &f->err),
	    PTL_ERROR);
	assert_string_equal(f->err.path, "hostname");
	assert_int_equal(
	    ptl_conf_parse(test_keys, obj, &f->conf, f->pool, NULL, &f->err),
	    PTL_ERROR);
	assert_string_equal(f->err.path, "hostname");
	/* err may be NULL. */
	assert_int_equal(
	    ptl_conf_parse(test_keys, obj, &f->conf, f->pool, "x", NULL),
	    PTL_ERROR);
	json_decref(obj);
}

struct self_conf {
	struct ptl_conf_list items;
};

/* A table that contains itself only recurses as deep as the input. */
static const struct ptl_conf_key self_keys[] = {
    {.name = "items",
     .type = PTL_CONF_OBJECT_LIST,
     .offset = offsetof(struct self_conf, items),
     .sub = self_keys,
     .sub_size = sizeof(struct self_conf)},
    {.name = NULL},
};

static void
test_recursive_table(void **state)
{
	struct fixture *f = *state;
	struct self_conf out = {0};
	const struct self_conf *inner;

	assert_int_equal(
	    parse_with(f, self_keys, "{\"items\": [{\"items\": [{}]}]}", &out),
	    PTL_OK);
	assert_int_equal(out.items.count, 1);
	inner = out.items.items;
	assert_int_equal(inner[0].items.count, 1);
	assert_int_equal(parse_with(f, self_keys,
	                            "{\"items\": [{\"items\": [{\"x\": 1}]}]}",
	                            &out),
	                 PTL_ERROR);
	assert_string_equal(f->err.path, "modules.x.items[0].items[0].x");
}

static void
test_doc_markdown(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out;

	out = open_memstream(&text, &len);
	assert_non_null(out);
	assert_int_equal(ptl_conf_doc_markdown(out, "modules.x", test_keys),
	                 PTL_OK);
	assert_int_equal(fclose(out), 0);
	assert_non_null(text);
	assert_non_null(strstr(text, "### `modules.x`\n\n"));
	assert_non_null(strstr(text, "| Key | Type | Default | Required | "
	                             "Bounds | Description |\n"));
	assert_non_null(strstr(text, "| `hostname` | string |  | yes |  | "
	                             "our name \\| with a pipe |\n"));
	assert_non_null(strstr(text, "| `workers` | integer | `4` | no | "
	                             "1..64 | worker processes |\n"));
	assert_non_null(strstr(text, "| `timeout` | duration | `30s` | no | "
	                             "1s..5m |  |\n"));
	assert_non_null(strstr(text, "| `role` | enum: `mx`, `submission`, "
	                             "`submissions` | `mx` | no |  |  |\n"));
	assert_non_null(strstr(text, "| `domains` | list of strings | "
	                             "`[\"a.test\", \"b.test\"]` | no | "
	                             "1..3 items |  |\n"));
	assert_non_null(strstr(text, "| `limits` | object |"));
	assert_non_null(strstr(text, "| `limits.max_size` | size | `25M` | no "
	                             "| 1k..1G | largest message |\n"));
	assert_non_null(strstr(text, "| `listen` | list of objects |"));
	assert_non_null(strstr(text, "| `listen[].address` | address |  | yes "
	                             "|  | where to listen |\n"));
	assert_non_null(strstr(text, "| `listen[].role` | enum: "));
	free(text);

	/* Without a section name: just the table. */
	out = open_memstream(&text, &len);
	assert_non_null(out);
	assert_int_equal(ptl_conf_doc_markdown(out, NULL, listen_keys), PTL_OK);
	assert_int_equal(fclose(out), 0);
	assert_true(strncmp(text, "| Key |", 7) == 0);
	free(text);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_defaults),
	    T(test_full),
	    T(test_not_an_object),
	    T(test_unknown_key),
	    T(test_unknown_key_with_nul),
	    T(test_unknown_key_long_list),
	    T(test_missing_required),
	    T(test_string),
	    T(test_int),
	    T(test_bool),
	    cmocka_unit_test(test_size_parser),
	    T(test_size_key),
	    cmocka_unit_test(test_duration_parser),
	    T(test_duration_key),
	    T(test_enum),
	    T(test_string_list),
	    T(test_object),
	    T(test_object_list),
	    T(test_optional_object_with_required_keys),
	    T(test_object_default),
	    T(test_address_key),
	    cmocka_unit_test(test_address_parser),
	    T(test_validate),
	    T(test_bad_defaults),
	    T(test_good_defaults_of_every_type),
	    T(test_paths),
	    T(test_recursive_table),
	    cmocka_unit_test(test_doc_markdown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
