/* SPDX-License-Identifier: MIT */
/* Length-framed records of queue files: "KEY LEN:VALUE\n", and CRC-32. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_record.h"

/* Decimal digits of QREC_VALUE_MAX and of any 64-bit value. */
#define QREC_LEN_DIGITS_MAX 8
#define QREC_U64_DIGITS_MAX 20

void
qrec_buf_init(struct qrec_buf *b, size_t limit)
{
	memset(b, 0, sizeof(*b));
	b->limit = limit;
}

void
qrec_buf_free(struct qrec_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = false;
}

void
qrec_buf_reset(struct qrec_buf *b)
{
	b->len = 0;
	b->failed = false;
}

static bool
qrec_buf_reserve(struct qrec_buf *b, size_t more)
{
	size_t want, cap;
	char *grown;

	if (b->failed)
		return false;
	if (more > b->limit || b->len > b->limit - more) {
		b->failed = true;
		return false;
	}
	want = b->len + more;
	if (want <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < want)
		cap = cap > b->limit / 2 ? b->limit : cap * 2;
	grown = realloc(b->data, cap);
	if (grown == NULL) {
		b->failed = true;
		return false;
	}
	b->data = grown;
	b->cap = cap;
	return true;
}

void
qrec_buf_raw(struct qrec_buf *b, const void *p, size_t len)
{
	if (len == 0 || !qrec_buf_reserve(b, len))
		return;
	memcpy(b->data + b->len, p, len);
	b->len += len;
}

static bool
qrec_key_ok(const char *key, size_t len)
{
	size_t i;

	if (len == 0 || len > QREC_KEY_MAX)
		return false;
	for (i = 0; i < len; i++) {
		char c = key[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return true;
}

void
qrec_put(struct qrec_buf *b, const char *key, const void *value, size_t len)
{
	char head[QREC_KEY_MAX + QREC_LEN_DIGITS_MAX + 4];
	size_t klen = strlen(key);
	int n;

	if (!qrec_key_ok(key, klen) || len > QREC_VALUE_MAX) {
		b->failed = true;
		return;
	}
	n = snprintf(head, sizeof(head), "%s %zu:", key, len);
	if (n < 0 || (size_t)n >= sizeof(head)) {
		b->failed = true;
		return;
	}
	qrec_buf_raw(b, head, (size_t)n);
	qrec_buf_raw(b, value, len);
	qrec_buf_raw(b, "\n", 1);
}

void
qrec_put_str(struct qrec_buf *b, const char *key, const char *s)
{
	if (s != NULL)
		qrec_put(b, key, s, strlen(s));
}

void
qrec_put_u64(struct qrec_buf *b, const char *key, uint64_t v)
{
	char text[QREC_U64_DIGITS_MAX + 2];
	int n = snprintf(text, sizeof(text), "%" PRIu64, v);

	qrec_put(b, key, text, (size_t)n);
}

void
qrec_put_i64(struct qrec_buf *b, const char *key, int64_t v)
{
	char text[QREC_U64_DIGITS_MAX + 3];
	int n = snprintf(text, sizeof(text), "%" PRId64, v);

	qrec_put(b, key, text, (size_t)n);
}

/*
 * Byte by byte, so that a file cut anywhere (a torn append) is told
 * apart from one that is wrong: SHORT only while everything seen so far
 * could still become a record.
 */
enum qrec_result
qrec_next(const char *p, size_t avail, struct qrec *r, size_t *used_out)
{
	size_t i = 0, key_len, len = 0, digits = 0;

	if (avail == 0)
		return QREC_END;
	while (i < avail && p[i] != ' ') {
		char c = p[i];

		if (i >= QREC_KEY_MAX || !((c >= 'A' && c <= 'Z') ||
		                           (c >= '0' && c <= '9') || c == '_'))
			return QREC_BAD;
		i++;
	}
	if (i == avail)
		return QREC_SHORT;
	key_len = i;
	if (key_len == 0)
		return QREC_BAD;
	i++;
	while (i < avail && p[i] != ':') {
		char c = p[i];

		if (c < '0' || c > '9' || digits >= QREC_LEN_DIGITS_MAX ||
		    (digits == 1 && len == 0))
			return QREC_BAD;
		len = len * 10 + (size_t)(c - '0');
		digits++;
		i++;
	}
	if (i == avail)
		return digits > 0 || i == key_len + 1 ? QREC_SHORT : QREC_BAD;
	if (digits == 0 || len > QREC_VALUE_MAX)
		return QREC_BAD;
	i++;
	if (avail - i < len + 1) {
		/* What is there of the terminator must be right. */
		return QREC_SHORT;
	}
	if (p[i + len] != '\n')
		return QREC_BAD;
	r->key = p;
	r->key_len = key_len;
	r->value = p + i;
	r->len = len;
	*used_out = i + len + 1;
	return QREC_RECORD;
}

bool
qrec_is(const struct qrec *r, const char *key)
{
	size_t n = strlen(key);

	return r->key_len == n && memcmp(r->key, key, n) == 0;
}

bool
qrec_u64(const struct qrec *r, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (r->len == 0 || r->len > QREC_U64_DIGITS_MAX ||
	    (r->len > 1 && r->value[0] == '0'))
		return false;
	for (i = 0; i < r->len; i++) {
		unsigned d;

		if (r->value[i] < '0' || r->value[i] > '9')
			return false;
		d = (unsigned)(r->value[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

bool
qrec_i64(const struct qrec *r, int64_t *out)
{
	struct qrec abs = *r;
	uint64_t v;

	if (r->len > 0 && r->value[0] == '-') {
		abs.value++;
		abs.len--;
		if (!qrec_u64(&abs, (uint64_t)INT64_MAX, &v) || v == 0)
			return false;
		*out = -(int64_t)v;
		return true;
	}
	if (!qrec_u64(r, (uint64_t)INT64_MAX, &v))
		return false;
	*out = (int64_t)v;
	return true;
}

bool
qrec_is_text(const struct qrec *r)
{
	return memchr(r->value, '\0', r->len) == NULL;
}

uint32_t
qrec_crc32(uint32_t crc, const void *p, size_t len)
{
	static uint32_t table[256];
	static int ready;
	const unsigned char *s = p;
	uint32_t c;
	size_t i;
	int k;

	/* Filling it twice from two threads writes the same values. */
	if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
		for (i = 0; i < 256; i++) {
			c = (uint32_t)i;
			for (k = 0; k < 8; k++)
				c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
			__atomic_store_n(&table[i], c, __ATOMIC_RELAXED);
		}
		__atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
	}
	crc = ~crc;
	for (i = 0; i < len; i++)
		crc = __atomic_load_n(&table[(crc ^ s[i]) & 0xff],
		                      __ATOMIC_RELAXED) ^
		      (crc >> 8);
	return ~crc;
}
