/* SPDX-License-Identifier: MIT */
/* The state log of a message: per-recipient states, replayed on load. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "queue_spool.h"

void
queue_state_encode(struct qrec_buf *b, int64_t now_ms, const uint32_t *idx,
                   const struct queue_rcpt_state *st, size_t n)
{
	struct qrec_buf inner;
	char crc[16];
	size_t i;

	qrec_buf_init(&inner, QUEUE_STATE_MAX / 4);
	qrec_put_i64(&inner, "T", now_ms);
	for (i = 0; i < n; i++) {
		qrec_put_u64(&inner, "R", idx[i]);
		qrec_put_str(&inner, "S", queue_status_name(st[i].status));
		if (st[i].flags != 0)
			qrec_put_u64(&inner, "F", st[i].flags);
		if (st[i].attempts != 0)
			qrec_put_u64(&inner, "A", st[i].attempts);
		if (st[i].next_try_ms != 0)
			qrec_put_i64(&inner, "N", st[i].next_try_ms);
		qrec_put_str(&inner, "E", st[i].error);
		qrec_put_str(&inner, "H", st[i].host);
	}
	(void)snprintf(crc, sizeof(crc), "%08" PRIx32,
	               qrec_crc32(0, inner.data, inner.len));
	qrec_put(&inner, "C", crc, 8);
	if (inner.failed)
		b->failed = true;
	else
		qrec_put(b, "U", inner.data, inner.len);
	qrec_buf_free(&inner);
}

static void
queue_state_set_text(char **slot, const struct qrec *r)
{
	char *copy = malloc(r->len + 1);

	if (copy == NULL)
		return;
	memcpy(copy, r->value, r->len);
	copy[r->len] = '\0';
	free(*slot);
	*slot = copy;
}

/* Whether the "U" value ends in a matching "C" record. */
static bool
queue_state_crc_ok(const char *v, size_t len, size_t *fields_len_out)
{
	size_t pos = 0, used;
	uint64_t want;
	struct qrec r;

	while (qrec_next(v + pos, len - pos, &r, &used) == QREC_RECORD) {
		if (qrec_is(&r, "C")) {
			if (pos + used != len || r.len != 8 ||
			    !queue_hex(r.value, 8, &want))
				return false;
			*fields_len_out = pos;
			return qrec_crc32(0, v, pos) == (uint32_t)want;
		}
		pos += used;
	}
	return false;
}

static void
queue_state_commit(struct queue_rcpt_state *st, size_t nrcpts, uint64_t idx,
                   struct queue_rcpt_state *cur, bool texts)
{
	struct queue_rcpt_state *dst;

	if (idx >= nrcpts) {
		free(cur->error);
		free(cur->host);
		return;
	}
	dst = &st[idx];
	free(dst->error);
	free(dst->host);
	*dst = *cur;
	if (!texts) {
		dst->error = NULL;
		dst->host = NULL;
	}
}

static void
queue_state_apply_one(const char *v, size_t len, struct queue_rcpt_state *st,
                      size_t nrcpts, bool texts)
{
	struct queue_rcpt_state cur;
	uint64_t idx = UINT64_MAX, u;
	size_t pos = 0, used;
	int64_t t = 0, when = 0;
	struct qrec r;
	int w;

	memset(&cur, 0, sizeof(cur));
	while (pos < len &&
	       qrec_next(v + pos, len - pos, &r, &used) == QREC_RECORD) {
		pos += used;
		if (qrec_is(&r, "T")) {
			if (qrec_i64(&r, &t))
				when = t;
		} else if (qrec_is(&r, "R")) {
			if (idx != UINT64_MAX)
				queue_state_commit(st, nrcpts, idx, &cur,
				                   texts);
			memset(&cur, 0, sizeof(cur));
			cur.last_ms = when;
			if (!qrec_u64(&r, QUEUE_RCPTS_MAX, &idx))
				idx = QUEUE_RCPTS_MAX;
		} else if (idx == UINT64_MAX) {
			continue;
		} else if (qrec_is(&r, "S")) {
			w = queue_status_parse(r.value, r.len);
			cur.status = (uint8_t)(w < 0 ? QUEUE_RCPT_DEFERRED : w);
		} else if (qrec_is(&r, "F")) {
			if (qrec_u64(&r, 0xff, &u))
				cur.flags = (uint8_t)u;
		} else if (qrec_is(&r, "A")) {
			if (qrec_u64(&r, UINT32_MAX, &u))
				cur.attempts = (uint32_t)u;
		} else if (qrec_is(&r, "N")) {
			if (qrec_i64(&r, &t))
				cur.next_try_ms = t;
		} else if (texts && qrec_is(&r, "E") && qrec_is_text(&r)) {
			queue_state_set_text(&cur.error, &r);
		} else if (texts && qrec_is(&r, "H") && qrec_is_text(&r)) {
			queue_state_set_text(&cur.host, &r);
		}
	}
	if (idx != UINT64_MAX)
		queue_state_commit(st, nrcpts, idx, &cur, texts);
}

size_t
queue_state_apply(const char *data, size_t len, struct queue_rcpt_state *st,
                  size_t nrcpts, bool texts, size_t *valid_out)
{
	size_t pos = 0, used, fields, applied = 0;
	struct qrec r;

	while (qrec_next(data + pos, len - pos, &r, &used) == QREC_RECORD) {
		if (!qrec_is(&r, "U") ||
		    !queue_state_crc_ok(r.value, r.len, &fields))
			break;
		queue_state_apply_one(r.value, fields, st, nrcpts, texts);
		applied++;
		pos += used;
	}
	*valid_out = pos;
	return applied;
}

enum queue_read_status
queue_state_load(const char *qdir, const char *id, struct queue_rcpt_state *st,
                 size_t nrcpts, bool texts, uint64_t *valid_out,
                 uint64_t *size_out, char *why, size_t why_size)
{
	char path[4096];
	struct stat sb;
	size_t valid;
	char *data;
	int fd;

	*valid_out = *size_out = 0;
	if (!queue_path(path, sizeof(path), qdir, "state", id)) {
		queue_why(why, why_size, "path too long");
		return QUEUE_READ_ERROR;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0 && errno == ENOENT)
		return QUEUE_READ_OK;
	if (fd < 0) {
		queue_why(why, why_size, "open %s: %s", path, strerror(errno));
		return QUEUE_READ_ERROR;
	}
	if (fstat(fd, &sb) != 0) {
		queue_why(why, why_size, "fstat: %s", strerror(errno));
		(void)close(fd);
		return QUEUE_READ_ERROR;
	}
	*size_out = (uint64_t)sb.st_size;
	/* An oversized log reads as its first part: the rest is cut. */
	if ((uint64_t)sb.st_size > QUEUE_STATE_MAX)
		sb.st_size = (off_t)QUEUE_STATE_MAX;
	data = malloc((size_t)sb.st_size + 1);
	if (data == NULL) {
		queue_why(why, why_size, "out of memory");
		(void)close(fd);
		return QUEUE_READ_ERROR;
	}
	if (sb.st_size > 0 &&
	    queue_pread_all(fd, data, (size_t)sb.st_size, 0) != 0) {
		queue_why(why, why_size, "read %s: %s", path, strerror(errno));
		free(data);
		(void)close(fd);
		return QUEUE_READ_ERROR;
	}
	(void)close(fd);
	(void)queue_state_apply(data, (size_t)sb.st_size, st, nrcpts, texts,
	                        &valid);
	*valid_out = valid;
	free(data);
	return QUEUE_READ_OK;
}

void
queue_state_free_texts(struct queue_rcpt_state *st, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(st[i].error);
		free(st[i].host);
		st[i].error = st[i].host = NULL;
	}
}
