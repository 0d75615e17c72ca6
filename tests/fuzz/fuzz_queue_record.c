/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: spool records, envelopes, state logs, requests, DSNs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include <petrel/queue.h>

#include "queue_dsn.h"
#include "queue_record.h"
#include "queue_spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Spool files are written by Petrel but read back after crashes, disk
 * trouble or a careless admin: the readers take any bytes. Input: one
 * byte of settings, then the file's bytes. CRC-checked files (message
 * trailers, state records) would stop the fuzzer at the checksum, so
 * the harness also wraps the bytes with a right one.
 */

static void
touch(const char *p, size_t len)
{
	volatile char sink = 0;

	for (size_t i = 0; i < len; i++)
		sink ^= p[i];
	(void)sink;
}

/* ---- Records ------------------------------------------------------------ */

static void
records(const char *p, size_t len)
{
	size_t pos = 0, used, k;
	enum qrec_result res;
	struct qrec r, r2;
	uint64_t u;
	int64_t i;

	while ((res = qrec_next(p + pos, len - pos, &r, &used)) ==
	       QREC_RECORD) {
		if (used > len - pos || used < r.key_len + r.len + 4 ||
		    r.key != p + pos || r.key_len == 0 ||
		    r.key_len > QREC_KEY_MAX ||
		    r.value + r.len + 1 != p + pos + used ||
		    p[pos + used - 1] != '\n')
			abort();
		touch(r.value, r.len);
		/* A record cut anywhere is a torn write, never junk. */
		for (k = 1; k < used; k += 1 + used / 8)
			if (qrec_next(p + pos, k, &r2, &used) != QREC_SHORT)
				abort();
		(void)qrec_next(p + pos, len - pos, &r, &used);
		if (qrec_u64(&r, UINT64_MAX, &u)) {
			char text[32];

			snprintf(text, sizeof(text), "%llu",
			         (unsigned long long)u);
			if (strlen(text) != r.len ||
			    memcmp(text, r.value, r.len) != 0)
				abort();
		}
		(void)qrec_i64(&r, &i);
		(void)qrec_is_text(&r);
		pos += used;
	}
	if (res != QREC_END && res != QREC_BAD && res != QREC_SHORT)
		abort();
	if ((res == QREC_END) != (pos == len))
		abort();
}

/* What the writer puts is what the reader gets. */
static void
record_roundtrip(const char *p, size_t len)
{
	struct qrec_buf b;
	struct qrec r;
	size_t used;
	const char *key = len > 0 && (p[0] & 1) ? "RCPT" : "E";

	qrec_buf_init(&b, QREC_VALUE_MAX + 64);
	qrec_put(&b, key, p, len);
	if (b.failed || qrec_next(b.data, b.len, &r, &used) != QREC_RECORD ||
	    used != b.len || !qrec_is(&r, key) || r.len != len ||
	    memcmp(r.value, p, len) != 0)
		abort();
	qrec_buf_free(&b);
}

/* ---- Envelopes ---------------------------------------------------------- */

static bool
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	       (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void
envelope(const char *p, size_t len, uint64_t body_size)
{
	struct queue_env env, again;
	struct qrec_buf b;
	char why[QUEUE_WHY_MAX];
	char *copy = malloc(len + 1);
	size_t i;

	if (copy == NULL)
		abort();
	memcpy(copy, p, len);
	copy[len] = '\0';
	env.body_size = body_size;
	if (queue_env_decode(copy, len, &env, why, sizeof(why)) != 0) {
		if (strlen(why) >= sizeof(why) || env.storage != NULL ||
		    env.rcpts != NULL)
			abort();
		return;
	}
	if (env.nrcpts == 0 || env.nrcpts > QUEUE_RCPTS_MAX ||
	    env.from == NULL || env.id[0] == '\0' ||
	    strlen(env.id) >= QUEUE_ID_SIZE || env.body_size != body_size)
		abort();
	for (i = 0; i < env.nrcpts; i++) {
		if (env.rcpts[i].address == NULL ||
		    strlen(env.rcpts[i].address) == 0 ||
		    strlen(env.rcpts[i].address) > QUEUE_ADDRESS_MAX)
			abort();
		if (env.rcpts[i].orcpt != NULL)
			touch(env.rcpts[i].orcpt, strlen(env.rcpts[i].orcpt));
	}
	/* Written back and read again, it is the same envelope. */
	qrec_buf_init(&b, QUEUE_ENVELOPE_MAX * 2);
	queue_env_encode(&env, &b);
	if (b.failed)
		abort();
	again.body_size = body_size;
	if (queue_env_decode(b.data, b.len, &again, why, sizeof(why)) != 0)
		abort();
	if (strcmp(env.id, again.id) != 0 || !same_str(env.from, again.from) ||
	    !same_str(env.envid, again.envid) ||
	    !same_str(env.auth_user, again.auth_user) ||
	    !same_str(env.client_ip, again.client_ip) || env.ret != again.ret ||
	    env.body != again.body || env.smtputf8 != again.smtputf8 ||
	    env.is_dsn != again.is_dsn || env.received != again.received ||
	    env.nrcpts != again.nrcpts)
		abort();
	for (i = 0; i < env.nrcpts; i++)
		if (!same_str(env.rcpts[i].address, again.rcpts[i].address) ||
		    env.rcpts[i].notify != again.rcpts[i].notify ||
		    !same_str(env.rcpts[i].orcpt, again.rcpts[i].orcpt))
			abort();
	queue_env_free(&again); /* frees b.data */
	queue_env_free(&env);
}

/* A whole message file in a memfd: raw bytes, or body + envelope with a
 * right trailer. */
static void
message_file(const char *p, size_t len, bool wrap, size_t body_len)
{
	char trailer[QUEUE_TRAILER_LEN + 1], why[QUEUE_WHY_MAX];
	struct queue_env env;
	enum queue_read_status rs;
	int fd = memfd_create("fuzz", MFD_CLOEXEC);

	if (fd < 0)
		abort();
	if (wrap) {
		if (body_len > len)
			body_len = len;
		queue_trailer_format(
		    trailer, body_len, (uint32_t)(len - body_len),
		    qrec_crc32(0, p + body_len, len - body_len));
		if (write(fd, p, len) != (ssize_t)len ||
		    write(fd, trailer, QUEUE_TRAILER_LEN) != QUEUE_TRAILER_LEN)
			abort();
	} else if (write(fd, p, len) != (ssize_t)len) {
		abort();
	}
	rs = queue_msg_read_fd(fd, "A1", &env, why, sizeof(why));
	if (rs == QUEUE_READ_OK) {
		if (strcmp(env.id, "A1") != 0 || env.nrcpts == 0)
			abort();
		queue_env_free(&env);
	} else if (rs != QUEUE_READ_CORRUPT || env.storage != NULL ||
	           env.rcpts != NULL) {
		abort();
	}
	(void)close(fd);
}

/* ---- State logs --------------------------------------------------------- */

static void
states_free(struct queue_rcpt_state *st, size_t n)
{
	queue_state_free_texts(st, n);
	free(st);
}

/* Whether @p is whole records, none of them a "C" (the checksum). */
static bool
state_fields(const char *p, size_t len)
{
	size_t pos = 0, used;
	struct qrec r;

	while (qrec_next(p + pos, len - pos, &r, &used) == QREC_RECORD) {
		if (qrec_is(&r, "C"))
			return false;
		pos += used;
	}
	return pos == len;
}

/*
 * Cut the input at 0xff bytes; each piece becomes the fields of one "U"
 * record with its right "C" record; what follows the last cut is a
 * torn tail. The records before the first piece that is not fields
 * must be applied.
 */
static void
state_log(const char *p, size_t len, size_t nrcpts, bool texts)
{
	struct qrec_buf log, inner;
	struct queue_rcpt_state *st, *st2;
	uint32_t *idx;
	size_t start = 0, i, valid, applied, whole = 0, wrapped = 0;
	bool good = true;
	char crc[16];

	qrec_buf_init(&log, QUEUE_STATE_MAX);
	for (i = 0; i < len; i++) {
		if ((unsigned char)p[i] != 0xff)
			continue;
		qrec_buf_init(&inner, QUEUE_STATE_MAX);
		qrec_buf_raw(&inner, p + start, i - start);
		snprintf(crc, sizeof(crc), "%08x",
		         (unsigned)qrec_crc32(0, p + start, i - start));
		qrec_put(&inner, "C", crc, 8);
		qrec_put(&log, "U", inner.data, inner.len);
		qrec_buf_free(&inner);
		good = good && state_fields(p + start, i - start);
		if (good) {
			whole++;
			wrapped = log.len;
		}
		start = i + 1;
	}
	qrec_buf_raw(&log, p + start, len - start);
	if (log.failed)
		abort();

	st = calloc(nrcpts + 1, sizeof(*st));
	st2 = calloc(nrcpts + 1, sizeof(*st2));
	idx = calloc(nrcpts + 1, sizeof(*idx));
	if (st == NULL || st2 == NULL || idx == NULL)
		abort();
	/* An empty buffer has no storage; a file read has some. */
	applied = queue_state_apply(log.data != NULL ? log.data : "", log.len,
	                            st, nrcpts, texts, &valid);
	if (valid > log.len || valid < wrapped || applied < whole)
		abort();
	for (i = 0; i < nrcpts; i++) {
		if (st[i].status > QUEUE_RCPT_FAILED)
			abort();
		if (st[i].error != NULL)
			touch(st[i].error, strlen(st[i].error));
		if (st[i].host != NULL)
			touch(st[i].host, strlen(st[i].host));
		if (!texts && (st[i].error != NULL || st[i].host != NULL))
			abort();
		idx[i] = (uint32_t)i;
	}
	qrec_buf_free(&log);

	/* The writer's record of these states gives them back. */
	qrec_buf_init(&log, QUEUE_STATE_MAX);
	queue_state_encode(&log, 1234, idx, st, nrcpts);
	if (!log.failed && nrcpts > 0) {
		applied = queue_state_apply(log.data, log.len, st2, nrcpts,
		                            true, &valid);
		if (applied != 1 || valid != log.len)
			abort();
		for (i = 0; i < nrcpts; i++)
			if (st[i].status != st2[i].status ||
			    st[i].flags != st2[i].flags ||
			    st[i].attempts != st2[i].attempts ||
			    st[i].next_try_ms != st2[i].next_try_ms ||
			    st2[i].last_ms != 1234 ||
			    !same_str(st[i].error, st2[i].error) ||
			    !same_str(st[i].host, st2[i].host))
				abort();
	}
	qrec_buf_free(&log);
	states_free(st, nrcpts);
	states_free(st2, nrcpts);
	free(idx);
}

/* ---- Requests and reports ---------------------------------------------- */

static void
request(const char *p, size_t len)
{
	char id[QUEUE_ID_SIZE];
	int req;

	if (queue_request_parse(p, len, &req, id) != 0)
		return;
	if (req < QUEUE_REQ_FLUSH || req > QUEUE_REQ_DELETE ||
	    strlen(id) >= QUEUE_ID_SIZE ||
	    (id[0] != '\0' && !queue_id_valid(id)))
		abort();
}

struct sink {
	char *data;
	size_t len;
};

static int
sink_write(void *ctx, const void *p, size_t len)
{
	struct sink *s = ctx;
	char *grown = realloc(s->data, s->len + len);

	if (grown == NULL)
		return -1;
	memcpy(grown + s->len, p, len);
	s->data = grown;
	s->len += len;
	return 0;
}

/* Remote replies and addresses end up in a report's header fields. */
static void
report(const char *p, size_t len, uint8_t flags)
{
	struct queue_dsn_rcpt rcpts[3];
	struct queue_dsn d;
	struct sink out = {NULL, 0};
	char *text = malloc(len + 1), status[16], clean[64], why[128];
	const char *pieces[6] = {"", "", "", "", "", ""};
	size_t i, k = 0, n;
	int fd;

	if (text == NULL)
		abort();
	/* NUL-separated texts. */
	memcpy(text, p, len);
	text[len] = '\0';
	for (i = 0; i < len + 1 && k < 6; i += strlen(text + i) + 1)
		pieces[k++] = text + i;

	queue_dsn_status((enum queue_dsn_action)(flags % 4), pieces[0], status);
	n = strlen(status);
	if (n < 5 || n > 9 || status[1] != '.' ||
	    (status[0] != '2' && status[0] != '4' && status[0] != '5'))
		abort();
	queue_dsn_clean(clean, sizeof(clean), pieces[0], flags & 4);
	for (i = 0; clean[i] != '\0'; i++) {
		unsigned char c = (unsigned char)clean[i];

		if (c < 0x20 || c == 0x7f || (c >= 0x80 && !(flags & 4)))
			abort();
	}
	if (i >= sizeof(clean))
		abort();

	memset(&d, 0, sizeof(d));
	d.reporting_mta = "mx.example.org";
	d.queue_id = "Q1";
	d.message_id = "r1@mx.example.org";
	d.boundary = "b0undary";
	d.sender = pieces[1];
	d.envid = (flags & 8) ? pieces[2] : NULL;
	d.arrival = 1700000000;
	d.now = 1700000600;
	d.retry_until = (flags & 16) ? 1700400000 : 0;
	d.utf8 = flags & 4;
	d.full = flags & 32;
	for (i = 0; i < 3; i++) {
		rcpts[i].address = pieces[3 + i];
		rcpts[i].orcpt = pieces[(2 + i) % 6];
		rcpts[i].action =
		    (enum queue_dsn_action)((flags >> (2 * i)) % 4);
		rcpts[i].diagnostic = pieces[(i + 5) % 6];
		rcpts[i].remote_mta = pieces[i];
		rcpts[i].last_attempt = i;
	}
	d.nrcpts = 1 + flags % 3;
	d.rcpts = rcpts;
	fd = memfd_create("orig", MFD_CLOEXEC);
	if (fd < 0 || write(fd, p, len) != (ssize_t)len)
		abort();
	/* Without the original message, every line is ours: CRLF only. */
	if (queue_dsn_compose(&d, -1, 0, sink_write, &out, why, sizeof(why)) !=
	    0)
		abort();
	for (i = 0; i < out.len; i++)
		if ((out.data[i] == '\n' &&
		     (i == 0 || out.data[i - 1] != '\r')) ||
		    (out.data[i] == '\r' &&
		     (i + 1 == out.len || out.data[i + 1] != '\n')))
			abort();
	out.len = 0;
	if (queue_dsn_compose(&d, fd, len, sink_write, &out, why,
	                      sizeof(why)) != 0)
		abort();
	free(out.data);
	(void)close(fd);
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p;
	uint8_t sel;

	if (size < 1)
		return 0;
	sel = data[0];
	p = (const char *)data + 1;
	size--;
	records(p, size);
	record_roundtrip(p, size);
	envelope(p, size, sel % 4 == 0 ? 0 : sel);
	message_file(p, size, sel & 1, (size_t)(sel >> 1));
	state_log(p, size, sel % 5, sel & 2);
	request(p, size);
	if (size >= QUEUE_TRAILER_LEN) {
		uint64_t body;
		uint32_t env_len, crc;

		(void)queue_trailer_parse(p, &body, &env_len, &crc);
	}
	report(p, size, sel);
	return 0;
}
