/* SPDX-License-Identifier: MIT */
/* Compiling one rule (PCRE2, JIT when it can) and matching a subject. */
#include <stdio.h>
#include <string.h>

#include "regex.h"

static bool
rule_field_name_ok(const char *name, size_t len)
{
	size_t i;

	if (len == 0 || len > 76)
		return false;
	for (i = 0; i < len; i++) {
		if ((unsigned char)name[i] < 33 ||
		    (unsigned char)name[i] > 126 || name[i] == ':')
			return false;
	}
	return true;
}

/* "Name: value" into its parts (pool memory). */
static int
rule_split_field(const char *text, struct ptl_pool *pool, const char **name,
                 const char **value, const char *path, struct ptl_error *err)
{
	const char *colon = strchr(text, ':'), *v;
	size_t i;

	if (colon == NULL || !rule_field_name_ok(text, (size_t)(colon - text)))
		return ptl_error_set_path(err, path,
		                          "expected \"Name: value\"");
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	for (i = 0; v[i] != '\0'; i++) {
		if ((unsigned char)v[i] < 0x20 && v[i] != '\t')
			return ptl_error_set_path(err, path,
			                          "control characters are not "
			                          "allowed");
	}
	*name = ptl_pstrndup(pool, text, (size_t)(colon - text));
	*value = v;
	return *name != NULL ? PTL_OK : ptl_error_set(err, "out of memory");
}

static int
rule_headers(struct regex_rule *r, size_t index, struct ptl_pool *pool,
             struct ptl_error *err)
{
	struct ptl_filter_header_edit *e;
	char path[64];

	if (r->add_header != NULL) {
		(void)snprintf(path, sizeof(path), "rules[%zu].add_header",
		               index);
		if (rule_split_field(r->add_header, pool, &r->add.name,
		                     &r->add.value, path, err) != PTL_OK)
			return PTL_ERROR;
	}
	if (r->remove_header != NULL) {
		(void)snprintf(path, sizeof(path), "rules[%zu].remove_header",
		               index);
		if (!rule_field_name_ok(r->remove_header,
		                        strlen(r->remove_header)))
			return ptl_error_set_path(err, path,
			                          "expected a field name");
		e = &r->edits[r->nedits++];
		e->op = PTL_FILTER_HEADER_REMOVE;
		e->name = r->remove_header;
		e->index = (unsigned)r->header_index;
	}
	if (r->replace_header != NULL) {
		(void)snprintf(path, sizeof(path), "rules[%zu].replace_header",
		               index);
		e = &r->edits[r->nedits++];
		e->op = PTL_FILTER_HEADER_REPLACE;
		e->index = (unsigned)r->header_index;
		if (rule_split_field(r->replace_header, pool, &e->name,
		                     &e->value, path, err) != PTL_OK)
			return PTL_ERROR;
	}
	return PTL_OK;
}

int
regex_rule_compile(struct regex_rule *r, const struct regex_conf *conf,
                   size_t index, struct ptl_pool *pool, struct ptl_error *err)
{
	PCRE2_UCHAR message[160];
	PCRE2_SIZE offset = 0;
	uint32_t options = 0, newline = 0;
	char path[64];
	int code = 0;

	r->label =
	    r->name != NULL ? r->name : ptl_psprintf(pool, "#%zu", index);
	if (r->label == NULL)
		return ptl_error_set(err, "out of memory");
	if (r->caseless)
		options |= PCRE2_CASELESS;
	if (r->utf)
		options |= PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
	r->re = pcre2_compile((PCRE2_SPTR)r->pattern, PCRE2_ZERO_TERMINATED,
	                      options, &code, &offset, NULL);
	if (r->re == NULL) {
		if (pcre2_get_error_message(code, message, sizeof(message)) < 0)
			(void)snprintf((char *)message, sizeof(message),
			               "error %d", code);
		(void)snprintf(path, sizeof(path), "rules[%zu].pattern", index);
		return ptl_error_set_path(err, path, "%s at offset %zu",
		                          (const char *)message,
		                          (size_t)offset);
	}
	/* Without JIT (not built in, or no executable memory) the
	 * interpreter does the same job, slower: no error. */
	r->jit = conf->jit && pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE) == 0;
	/* The block's lines are joined with LF: LF must be the newline of
	 * ^ and $ in multi-line mode (not the case in a PCRE2 built with
	 * another default). */
	if ((r->kind == REGEX_BODY || r->kind == REGEX_BODY_TEXT) &&
	    pcre2_pattern_info(r->re, PCRE2_INFO_NEWLINE, &newline) == 0 &&
	    newline == PCRE2_NEWLINE_LF && regex_block_safe(r->pattern)) {
		/* Only a speed-up: without it the lines are matched one by
		 * one, so a failure here is no error. */
		r->block_re = pcre2_compile(
		    (PCRE2_SPTR)r->pattern, PCRE2_ZERO_TERMINATED,
		    options | PCRE2_MULTILINE, &code, &offset, NULL);
		r->block_jit =
		    r->block_re != NULL && conf->jit &&
		    pcre2_jit_compile(r->block_re, PCRE2_JIT_COMPLETE) == 0;
	}
	if (r->decode_2047 && r->kind != REGEX_HEADER &&
	    r->kind != REGEX_ANY_HEADER) {
		(void)snprintf(path, sizeof(path), "rules[%zu].decode_2047",
		               index);
		return ptl_error_set_path(err, path,
		                          "only for header:NAME and "
		                          "any_header");
	}
	return rule_headers(r, index, pool, err);
}

void
regex_rules_free(void *arg)
{
	struct regex_conf *conf = arg;
	struct regex_rule *rules = conf->rules.items;
	size_t i;

	for (i = 0; i < conf->rules.count; i++) {
		pcre2_code_free(rules[i].re);
		rules[i].re = NULL;
		pcre2_code_free(rules[i].block_re);
		rules[i].block_re = NULL;
	}
	pcre2_match_context_free(conf->mctx);
	conf->mctx = NULL;
	pcre2_match_context_free(conf->inline_mctx);
	conf->inline_mctx = NULL;
}

/*
 * Can a search of lines joined with LF, in multi-line mode, miss a match
 * that one of the lines has on its own? Every way the pattern matches a
 * line is also a way to match the joined text at the same place, except
 * where the pattern looks past the line's ends: \A \z \Z \G (ends of
 * the subject), negative lookarounds (more text to see), atomic groups
 * and possessive quantifiers (which may swallow the LF and not give it
 * back), backtracking verbs, callouts, recursion, conditions, and
 * options that could switch multi-line mode off. A pattern with any of
 * these, or with anything this scan does not know, is matched line by
 * line. The other direction (a match across lines) only costs a check
 * of the line where that match starts.
 */
bool
regex_block_safe(const char *pattern)
{
	const char *p, *q;

	for (p = pattern; *p != '\0'; p++) {
		if (*p == '\\') {
			p++;
			if (*p == '\0' || strchr("AzZG", *p) != NULL)
				return false;
			if (*p == 'Q') {
				/* Literal up to \E (or the end). */
				q = strstr(p, "\\E");
				if (q == NULL)
					return true;
				p = q + 1;
			}
			continue;
		}
		if ((*p == '+' && p > pattern &&
		     strchr("*+?}", p[-1]) != NULL) ||
		    (*p == '(' && p[1] == '*'))
			return false;
		if (*p != '(' || p[1] != '?')
			continue;
		q = p + 2;
		if (*q == ':' || *q == '=' || *q == '|' || *q == '#' ||
		    *q == '\'' || (q[0] == '<' && q[1] == '=') ||
		    (q[0] == 'P' && q[1] == '<'))
			continue;
		if (*q == '<' && (q[1] == '_' || (q[1] >= 'a' && q[1] <= 'z') ||
		                  (q[1] >= 'A' && q[1] <= 'Z')))
			continue;
		/* Option letters only, none unset: "(?i)", "(?s:...)". */
		while (*q != '\0' && strchr("imnsxJU", *q) != NULL)
			q++;
		if (q == p + 2 || (*q != ')' && *q != ':'))
			return false;
	}
	return true;
}

static enum regex_hit
rule_hit(int rc)
{
	if (rc >= 0)
		return REGEX_YES;
	switch (rc) {
	case PCRE2_ERROR_MATCHLIMIT:
	case PCRE2_ERROR_DEPTHLIMIT:
	case PCRE2_ERROR_HEAPLIMIT:
	case PCRE2_ERROR_JIT_STACKLIMIT:
	case PCRE2_ERROR_NOMEMORY:
		return REGEX_LIMIT;
	default:
		/* No match, or a subject the pattern cannot take. */
		return REGEX_NO;
	}
}

/* Search @block (lines joined with LF) from @start; REGEX_YES with the
 * offset where the match starts. */
enum regex_hit
regex_rule_match_block(const struct regex_rule *r, pcre2_match_context *mctx,
                       pcre2_match_data *md, const char *block, size_t len,
                       size_t start, size_t *at_out)
{
	enum regex_hit hit;
	int rc;

	if (r->block_jit)
		rc = pcre2_jit_match(r->block_re, (PCRE2_SPTR)block, len, start,
		                     0, md, mctx);
	else
		rc = pcre2_match(r->block_re, (PCRE2_SPTR)block, len, start, 0,
		                 md, mctx);
	hit = rule_hit(rc);
	if (hit == REGEX_YES)
		*at_out = (size_t)pcre2_get_ovector_pointer(md)[0];
	return hit;
}

enum regex_hit
regex_rule_match(const struct regex_rule *r, pcre2_match_context *mctx,
                 pcre2_match_data *md, const char *subject, size_t len)
{
	int rc;

	/* pcre2_jit_match() skips pcre2_match()'s checks, which do not
	 * apply: no UTF check is asked for (utf rules are compiled with
	 * PCRE2_MATCH_INVALID_UTF), no options at match time. A rule is
	 * matched a few hundred times per message. */
	if (r->jit)
		rc = pcre2_jit_match(r->re, (PCRE2_SPTR)subject, len, 0, 0, md,
		                     mctx);
	else
		rc = pcre2_match(r->re, (PCRE2_SPTR)subject, len, 0, 0, md,
		                 mctx);
	return rule_hit(rc);
}
