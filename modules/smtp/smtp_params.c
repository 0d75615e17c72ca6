/* SPDX-License-Identifier: MIT */
/* ESMTP parameters of MAIL and RCPT: SIZE, BODY, SMTPUTF8, DSN, AUTH. */
#include <string.h>
#include <strings.h>

#include <petrel/core.h>

#include "smtp_params.h"

/* One "KEYWORD[=VALUE]" item. */
struct params_item {
	const char *key;
	size_t key_len;
	const char *value; /* NULL: no '=' */
	size_t value_len;
};

static bool
params_key_is(const struct params_item *it, const char *key)
{
	size_t n = strlen(key);

	return it->key_len == n && strncasecmp(it->key, key, n) == 0;
}

static bool
params_value_is(const struct params_item *it, const char *word)
{
	size_t n = strlen(word);

	return it->value_len == n && strncasecmp(it->value, word, n) == 0;
}

/*
 * RFC 5321 section 4.1.2: esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT
 * / "-"); esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 under
 * SMTPUTF8 which only ORCPT may use and which it refuses anyway.
 */
static enum smtp_params_error
params_next(const char **p, const char *end, struct params_item *it)
{
	const char *s = *p, *eq;
	size_t i, n;

	while (s < end && *s == ' ')
		s++;
	if (s >= end)
		return SMTP_PARAMS_OK; /* caller sees it->key == NULL */
	for (n = 0; s + n < end && s[n] != ' '; n++)
		;
	*p = s + n;
	eq = memchr(s, '=', n);
	it->key = s;
	it->key_len = eq != NULL ? (size_t)(eq - s) : n;
	it->value = eq != NULL ? eq + 1 : NULL;
	it->value_len = eq != NULL ? n - it->key_len - 1 : 0;
	if (it->key_len == 0)
		return SMTP_PARAMS_SYNTAX;
	for (i = 0; i < it->key_len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || (c == '-' && i > 0)))
			return SMTP_PARAMS_SYNTAX;
	}
	if (it->value != NULL) {
		if (it->value_len == 0)
			return SMTP_PARAMS_SYNTAX;
		for (i = 0; i < it->value_len; i++) {
			unsigned char c = (unsigned char)it->value[i];

			if (c < 33 || c == '=' || c > 126)
				return SMTP_PARAMS_SYNTAX;
		}
	}
	return SMTP_PARAMS_OK;
}

static int
params_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
smtp_xtext_decode(struct ptl_pool *pool, const char *in, size_t len)
{
	char *out = ptl_palloc(pool, len + 1);
	size_t i, n = 0;
	int hi, lo;

	if (out == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '+') {
			if (len - i < 3)
				return NULL;
			hi = params_hex((unsigned char)in[i + 1]);
			lo = params_hex((unsigned char)in[i + 2]);
			if (hi < 0 || lo < 0)
				return NULL;
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
			if (c < 32 || c > 126)
				return NULL;
		} else if (c < 33 || c > 126 || c == '=') {
			return NULL;
		}
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return out;
}

static enum smtp_params_error
params_size(const struct params_item *it, struct smtp_mail_params *out)
{
	uint64_t v = 0;
	size_t i;

	if (out->has_size || it->value == NULL || it->value_len > 20)
		return SMTP_PARAMS_SYNTAX;
	for (i = 0; i < it->value_len; i++) {
		unsigned char c = (unsigned char)it->value[i];

		if (c < '0' || c > '9')
			return SMTP_PARAMS_SYNTAX;
		/* RFC 1870: 1*20DIGIT is valid syntax even past 2^64; such
		 * a size is simply too big (552), so saturate. */
		if (v > (UINT64_MAX - (uint64_t)(c - '0')) / 10)
			v = UINT64_MAX;
		else
			v = v * 10 + (uint64_t)(c - '0');
	}
	out->has_size = true;
	out->size = v;
	return SMTP_PARAMS_OK;
}

static enum smtp_params_error
params_body(const struct params_item *it, struct smtp_mail_params *out)
{
	if (out->body != SMTP_BODY_NONE || it->value == NULL)
		return SMTP_PARAMS_SYNTAX;
	if (params_value_is(it, "7BIT"))
		out->body = SMTP_BODY_7BIT;
	else if (params_value_is(it, "8BITMIME"))
		out->body = SMTP_BODY_8BITMIME;
	else if (params_value_is(it, "BINARYMIME"))
		out->body = SMTP_BODY_BINARYMIME;
	else
		return SMTP_PARAMS_SYNTAX;
	return SMTP_PARAMS_OK;
}

static enum smtp_params_error
params_ret(const struct params_item *it, struct smtp_mail_params *out)
{
	if (out->ret != SMTP_RET_NONE || it->value == NULL)
		return SMTP_PARAMS_SYNTAX;
	if (params_value_is(it, "FULL"))
		out->ret = SMTP_RET_FULL;
	else if (params_value_is(it, "HDRS"))
		out->ret = SMTP_RET_HDRS;
	else
		return SMTP_PARAMS_SYNTAX;
	return SMTP_PARAMS_OK;
}

static enum smtp_params_error
params_xtext(const struct params_item *it, size_t max, struct ptl_pool *pool,
             const char **field)
{
	char *v;

	if (*field != NULL || it->value == NULL)
		return SMTP_PARAMS_SYNTAX;
	v = smtp_xtext_decode(pool, it->value, it->value_len);
	if (v == NULL || strlen(v) > max)
		return SMTP_PARAMS_SYNTAX;
	*field = v;
	return SMTP_PARAMS_OK;
}

enum smtp_params_error
smtp_params_mail(const char *text, size_t len, struct ptl_pool *pool,
                 struct smtp_mail_params *out)
{
	const char *p = text, *end = text + len;
	struct params_item it;
	enum smtp_params_error rc;

	memset(out, 0, sizeof(*out));
	for (;;) {
		memset(&it, 0, sizeof(it));
		rc = params_next(&p, end, &it);
		if (rc != SMTP_PARAMS_OK)
			return rc;
		if (it.key == NULL)
			return SMTP_PARAMS_OK;
		if (params_key_is(&it, "SIZE")) {
			rc = params_size(&it, out);
		} else if (params_key_is(&it, "BODY")) {
			rc = params_body(&it, out);
		} else if (params_key_is(&it, "SMTPUTF8")) {
			rc = out->smtputf8 || it.value != NULL
			         ? SMTP_PARAMS_SYNTAX
			         : SMTP_PARAMS_OK;
			out->smtputf8 = true;
		} else if (params_key_is(&it, "RET")) {
			rc = params_ret(&it, out);
		} else if (params_key_is(&it, "ENVID")) {
			rc = params_xtext(&it, SMTP_ENVID_MAX, pool,
			                  &out->envid);
		} else if (params_key_is(&it, "AUTH")) {
			rc = params_xtext(&it, SMTP_AUTH_PARAM_MAX, pool,
			                  &out->auth);
		} else {
			rc = SMTP_PARAMS_UNKNOWN;
		}
		if (rc != SMTP_PARAMS_OK)
			return rc;
	}
}

/* NOTIFY=NEVER or a list of SUCCESS, FAILURE, DELAY (RFC 3461 4.1). */
static enum smtp_params_error
params_notify(const struct params_item *it, struct smtp_rcpt_params *out)
{
	const char *p, *end, *comma;
	size_t n;
	unsigned bit, bits = 0;

	if (out->notify != 0 || it->value == NULL)
		return SMTP_PARAMS_SYNTAX;
	p = it->value;
	end = it->value + it->value_len;
	while (p < end) {
		comma = memchr(p, ',', (size_t)(end - p));
		n = comma != NULL ? (size_t)(comma - p) : (size_t)(end - p);
		if (n == 5 && strncasecmp(p, "NEVER", 5) == 0)
			bit = SMTP_NOTIFY_NEVER;
		else if (n == 7 && strncasecmp(p, "SUCCESS", 7) == 0)
			bit = SMTP_NOTIFY_SUCCESS;
		else if (n == 7 && strncasecmp(p, "FAILURE", 7) == 0)
			bit = SMTP_NOTIFY_FAILURE;
		else if (n == 5 && strncasecmp(p, "DELAY", 5) == 0)
			bit = SMTP_NOTIFY_DELAY;
		else
			return SMTP_PARAMS_SYNTAX;
		if (bits & bit)
			return SMTP_PARAMS_SYNTAX;
		bits |= bit;
		if (comma == NULL)
			break;
		p = comma + 1;
		if (p == end)
			return SMTP_PARAMS_SYNTAX;
	}
	if ((bits & SMTP_NOTIFY_NEVER) && bits != SMTP_NOTIFY_NEVER)
		return SMTP_PARAMS_SYNTAX;
	out->notify = bits;
	return SMTP_PARAMS_OK;
}

/* ORCPT=addr-type ";" xtext (RFC 3461 4.2). */
static enum smtp_params_error
params_orcpt(const struct params_item *it, struct ptl_pool *pool,
             struct smtp_rcpt_params *out)
{
	const char *semi;
	size_t tlen, i;
	char *type, *addr;

	if (out->orcpt != NULL || it->value == NULL)
		return SMTP_PARAMS_SYNTAX;
	semi = memchr(it->value, ';', it->value_len);
	if (semi == NULL)
		return SMTP_PARAMS_SYNTAX;
	tlen = (size_t)(semi - it->value);
	if (tlen == 0 || tlen > 32 || it->value_len - tlen - 1 == 0)
		return SMTP_PARAMS_SYNTAX;
	for (i = 0; i < tlen; i++) {
		unsigned char c = (unsigned char)it->value[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-'))
			return SMTP_PARAMS_SYNTAX;
	}
	type = ptl_pstrndup(pool, it->value, tlen);
	addr = smtp_xtext_decode(pool, semi + 1, it->value_len - tlen - 1);
	if (type == NULL || addr == NULL || strlen(addr) > SMTP_ORCPT_MAX)
		return SMTP_PARAMS_SYNTAX;
	out->orcpt_type = type;
	out->orcpt = addr;
	return SMTP_PARAMS_OK;
}

enum smtp_params_error
smtp_params_rcpt(const char *text, size_t len, struct ptl_pool *pool,
                 struct smtp_rcpt_params *out)
{
	const char *p = text, *end = text + len;
	struct params_item it;
	enum smtp_params_error rc;

	memset(out, 0, sizeof(*out));
	for (;;) {
		memset(&it, 0, sizeof(it));
		rc = params_next(&p, end, &it);
		if (rc != SMTP_PARAMS_OK)
			return rc;
		if (it.key == NULL)
			return SMTP_PARAMS_OK;
		if (params_key_is(&it, "NOTIFY"))
			rc = params_notify(&it, out);
		else if (params_key_is(&it, "ORCPT"))
			rc = params_orcpt(&it, pool, out);
		else
			rc = SMTP_PARAMS_UNKNOWN;
		if (rc != SMTP_PARAMS_OK)
			return rc;
	}
}
