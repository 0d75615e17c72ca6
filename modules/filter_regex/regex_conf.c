/* SPDX-License-Identifier: MIT */
/* The filter_regex config keys, and compiling the rules at config load. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "regex.h"

const char *const regex_target_names[] = {
    "client_ip", "client_hostname", "helo", "mail_from", "rcpt",
    "header:",   "any_header",      "body", "body_text", NULL,
};

static const char *const regex_action_names[] = {
    "continue", "accept", "reject", "tempfail", "discard", "quarantine", NULL,
};

static const char *const regex_on_limit_names[] = {
    "no_match",
    "match",
    "tempfail",
    NULL,
};

static const struct ptl_conf_key regex_rule_keys[] = {
    {.name = "name",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct regex_rule, name),
     .doc = "Label in logs and in the default result."},
    {.name = "target",
     .type = PTL_CONF_STRING,
     .flags = PTL_CONF_REQUIRED,
     .offset = offsetof(struct regex_rule, target),
     .doc = "client_ip, client_hostname, helo, mail_from, rcpt, "
            "header:NAME, any_header, body or body_text."},
    {.name = "pattern",
     .type = PTL_CONF_STRING,
     .flags = PTL_CONF_REQUIRED,
     .offset = offsetof(struct regex_rule, pattern),
     .doc = "PCRE2 pattern."},
    {.name = "caseless",
     .type = PTL_CONF_BOOL,
     .def = "false",
     .offset = offsetof(struct regex_rule, caseless),
     .doc = "Ignore case."},
    {.name = "utf",
     .type = PTL_CONF_BOOL,
     .def = "false",
     .offset = offsetof(struct regex_rule, utf),
     .doc = "Match UTF-8 characters, not bytes (invalid UTF-8 in "
            "the subject never matches a character)."},
    {.name = "negate",
     .type = PTL_CONF_BOOL,
     .def = "false",
     .offset = offsetof(struct regex_rule, negate),
     .doc = "The rule applies when the pattern does not match."},
    {.name = "decode_2047",
     .type = PTL_CONF_BOOL,
     .def = "false",
     .offset = offsetof(struct regex_rule, decode_2047),
     .doc = "header:NAME, any_header: decode RFC 2047 encoded-words "
            "first."},
    {.name = "action",
     .type = PTL_CONF_ENUM,
     .def = "continue",
     .offset = offsetof(struct regex_rule, action),
     .enum_names = regex_action_names,
     .doc = "continue, accept, reject, tempfail, discard or "
            "quarantine."},
    {.name = "code",
     .type = PTL_CONF_INT,
     .def = "0",
     .min = 0,
     .max = 599,
     .offset = offsetof(struct regex_rule, code),
     .doc = "reject: 5xx, tempfail: 4xx (0: 550 / 451)."},
    {.name = "enhanced",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct regex_rule, enhanced),
     .doc = "Enhanced status code (default 5.7.1 / 4.7.1)."},
    {.name = "text",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct regex_rule, text),
     .doc = "Reply text."},
    {.name = "folder",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct regex_rule, folder),
     .doc = "quarantine: the folder (default \"Quarantine\")."},
    {.name = "result",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct regex_rule, result),
     .doc = "Trace result when the rule applies (default "
            "\"regex=hit rule=NAME\")."},
    {.name = "add_header",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct regex_rule, add_header),
     .doc = "\"Name: value\" added when the rule applies."},
    {.name = "remove_header",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct regex_rule, remove_header),
     .doc = "Field name removed from the message."},
    {.name = "replace_header",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct regex_rule, replace_header),
     .doc = "\"Name: value\": the field's new body."},
    {.name = "header_index",
     .type = PTL_CONF_INT,
     .def = "0",
     .min = 0,
     .max = 1000,
     .offset = offsetof(struct regex_rule, header_index),
     .doc = "remove/replace: the instance (1-based; 0: all)."},
    {NULL},
};

const struct ptl_conf_key regex_conf_keys[] = {
    {.name = "rules",
     .type = PTL_CONF_OBJECT_LIST,
     .flags = PTL_CONF_REQUIRED,
     .offset = offsetof(struct regex_conf, rules),
     .max = REGEX_RULES_MAX,
     .sub = regex_rule_keys,
     .sub_size = sizeof(struct regex_rule),
     .doc = "Rules, tried in order at the hook of their target."},
    {.name = "match_limit",
     .type = PTL_CONF_INT,
     .def = "100000",
     .min = 1,
     .max = 100000000,
     .offset = offsetof(struct regex_conf, match_limit),
     .doc = "PCRE2 match limit per match (backtracking steps)."},
    {.name = "depth_limit",
     .type = PTL_CONF_INT,
     .def = "10000",
     .min = 1,
     .max = 10000000,
     .offset = offsetof(struct regex_conf, depth_limit),
     .doc = "PCRE2 depth limit per match (interpreter only)."},
    {.name = "heap_limit",
     .type = PTL_CONF_SIZE,
     .def = "8M",
     .min = 65536,
     .max = (int64_t)1 << 30,
     .offset = offsetof(struct regex_conf, heap_limit),
     .doc = "PCRE2 heap limit per match (interpreter only)."},
    {.name = "on_limit",
     .type = PTL_CONF_ENUM,
     .def = "no_match",
     .enum_names = regex_on_limit_names,
     .offset = offsetof(struct regex_conf, on_limit),
     .doc = "A limit hit counts as no_match, match, or makes the "
            "verdict tempfail; a warning is logged either way."},
    {.name = "max_line",
     .type = PTL_CONF_SIZE,
     .def = "1M",
     .min = 1024,
     .max = (int64_t)16 << 20,
     .offset = offsetof(struct regex_conf, max_line),
     .doc = "Longest line or header field matched; longer ones are "
            "matched in pieces of this size."},
    {.name = "max_header_bytes",
     .type = PTL_CONF_SIZE,
     .def = "1M",
     .min = 1024,
     .max = (int64_t)64 << 20,
     .offset = offsetof(struct regex_conf, max_header_bytes),
     .doc = "Header section read for header rules."},
    {.name = "max_headers",
     .type = PTL_CONF_INT,
     .def = "10000",
     .min = 1,
     .max = 1000000,
     .offset = offsetof(struct regex_conf, max_headers),
     .doc = "Header fields read for header rules."},
    {.name = "max_mime_depth",
     .type = PTL_CONF_INT,
     .def = "20",
     .min = 1,
     .max = 100,
     .offset = offsetof(struct regex_conf, max_mime_depth),
     .doc = "Multipart / message nesting walked into."},
    {.name = "max_body_bytes",
     .type = PTL_CONF_SIZE,
     .def = "1M",
     .min = 1024,
     .max = (int64_t)1 << 30,
     .offset = offsetof(struct regex_conf, max_body_bytes),
     .doc = "Decoded text matched by body_text rules, in total."},
    {.name = "max_scan_bytes",
     .type = PTL_CONF_SIZE,
     .def = "32M",
     .min = 1024,
     .max = (int64_t)4 << 30,
     .offset = offsetof(struct regex_conf, max_scan_bytes),
     .doc = "Message bytes read at DATA; the rest is not matched."},
    {.name = "scan_time_limit",
     .type = PTL_CONF_DURATION,
     .def = "5s",
     .min = 10,
     .max = 600000,
     .offset = offsetof(struct regex_conf, scan_time_limit),
     .doc = "Longest scan of one message; then the rules not decided "
            "yet are skipped (logged)."},
    {.name = "jit",
     .type = PTL_CONF_BOOL,
     .def = "true",
     .offset = offsetof(struct regex_conf, jit),
     .doc = "Compile patterns to machine code when PCRE2 can."},
    {.name = "timeout",
     .type = PTL_CONF_DURATION,
     .def = "0",
     .min = 0,
     .max = 600000,
     .offset = offsetof(struct regex_conf, timeout),
     .doc = "Longest wait for a verdict (0: the smtp module's "
            "filter_timeout)."},
    {.name = "fail_open",
     .type = PTL_CONF_BOOL,
     .def = "false",
     .offset = offsetof(struct regex_conf, fail_open),
     .doc = "On error or timeout let the mail through."},
    {NULL},
};

/* Hook of each target. */
static const int regex_target_hooks[] = {
    [REGEX_CLIENT_IP] = PTL_FILTER_CONNECT,
    [REGEX_CLIENT_HOSTNAME] = PTL_FILTER_CONNECT,
    [REGEX_HELO] = PTL_FILTER_HELO,
    [REGEX_MAIL_FROM] = PTL_FILTER_MAIL,
    [REGEX_RCPT] = PTL_FILTER_RCPT,
    [REGEX_HEADER] = PTL_FILTER_DATA,
    [REGEX_ANY_HEADER] = PTL_FILTER_DATA,
    [REGEX_BODY] = PTL_FILTER_DATA,
    [REGEX_BODY_TEXT] = PTL_FILTER_DATA,
};

static int
regex_target_parse(struct regex_rule *r, const char *path,
                   struct ptl_error *err)
{
	size_t i, plen = strlen("header:");
	const char *name;

	for (i = 0; regex_target_names[i] != NULL; i++) {
		if (i == REGEX_HEADER) {
			if (strncmp(r->target, "header:", plen) != 0)
				continue;
			name = r->target + plen;
			if (name[0] == '\0' || strlen(name) > 76 ||
			    strpbrk(name, ": \t") != NULL)
				return ptl_error_set_path(
				    err, path, "expected \"header:NAME\"");
			r->header_name = name;
			r->header_name_len = strlen(name);
		} else if (strcmp(r->target, regex_target_names[i]) != 0) {
			continue;
		}
		r->kind = (enum regex_target)i;
		r->hook = regex_target_hooks[i];
		return PTL_OK;
	}
	return ptl_error_set_path(err, path,
	                          "unknown target \"%s\" (client_ip, "
	                          "client_hostname, helo, mail_from, rcpt, "
	                          "header:NAME, any_header, body, body_text)",
	                          r->target);
}

/* The rules of each target in rule order, so that a scan of a line or
 * a field looks only at the rules that want it. */
static int
regex_conf_group(struct regex_conf *conf, struct ptl_pool *pool,
                 struct ptl_error *err)
{
	const struct regex_rule *rules = conf->rules.items;
	size_t next[REGEX_TARGETS], i, k;

	conf->by_target =
	    ptl_palloc(pool, (conf->rules.count + 1) * sizeof(size_t));
	if (conf->by_target == NULL)
		return ptl_error_set(err, "out of memory");
	memset(conf->target_first, 0, sizeof(conf->target_first));
	for (i = 0; i < conf->rules.count; i++)
		conf->target_first[rules[i].kind + 1]++;
	for (k = 0; k < REGEX_TARGETS; k++) {
		conf->target_first[k + 1] += conf->target_first[k];
		next[k] = conf->target_first[k];
	}
	for (i = 0; i < conf->rules.count; i++)
		conf->by_target[next[rules[i].kind]++] = i;
	return PTL_OK;
}

int
regex_check_config(struct ptl_instance *inst, const json_t *section,
                   void *conf_ptr, struct ptl_error *err)
{
	return regex_conf_prepare(conf_ptr, ptl_instance_pool(inst), err);
}

int
regex_conf_prepare(struct regex_conf *conf, struct ptl_pool *pool,
                   struct ptl_error *err)
{
	struct regex_rule *rules = conf->rules.items, *r;
	char path[64];
	size_t i;

	/* Whatever gets compiled is freed with the generation, also when
	 * a later rule fails here. */
	if (ptl_pool_cleanup_add(pool, regex_rules_free, conf) != PTL_OK)
		return ptl_error_set(err, "out of memory");
	conf->mctx = pcre2_match_context_create(NULL);
	if (conf->mctx == NULL)
		return ptl_error_set(err, "out of memory");
	(void)pcre2_set_match_limit(conf->mctx, (uint32_t)conf->match_limit);
	(void)pcre2_set_depth_limit(conf->mctx, (uint32_t)conf->depth_limit);
	(void)pcre2_set_heap_limit(conf->mctx,
	                           (uint32_t)(conf->heap_limit / 1024));
	conf->inline_mctx = pcre2_match_context_copy(conf->mctx);
	if (conf->inline_mctx == NULL)
		return ptl_error_set(err, "out of memory");
	if (conf->match_limit > REGEX_INLINE_MATCH_LIMIT)
		(void)pcre2_set_match_limit(conf->inline_mctx,
		                            REGEX_INLINE_MATCH_LIMIT);
	for (i = 0; i < conf->rules.count; i++) {
		r = &rules[i];
		(void)snprintf(path, sizeof(path), "rules[%zu].target", i);
		if (regex_target_parse(r, path, err) != PTL_OK)
			return PTL_ERROR;
		if (regex_rule_compile(r, conf, i, pool, err) != PTL_OK)
			return PTL_ERROR;
		conf->hooks |= PTL_FILTER_HOOK_BIT(r->hook);
		conf->njit += r->jit ? 1 : 0;
		if (r->block_re != NULL && r->kind == REGEX_BODY)
			conf->block_body = true;
		if (r->block_re != NULL && r->kind == REGEX_BODY_TEXT)
			conf->block_text = true;
		switch (r->kind) {
		case REGEX_HEADER:
		case REGEX_ANY_HEADER:
			conf->want_headers = true;
			break;
		case REGEX_BODY:
			conf->want_body = true;
			break;
		case REGEX_BODY_TEXT:
			conf->want_text = true;
			break;
		case REGEX_CLIENT_HOSTNAME:
			conf->want_hostname = true;
			break;
		default:
			break;
		}
	}
	return regex_conf_group(conf, pool, err);
}
