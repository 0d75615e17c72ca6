/* SPDX-License-Identifier: MIT */
/* The spool on disk: message files, state logs, requests; no core needed. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <petrel/queue.h>

#include "queue_spool.h"

#define QUEUE_COPY_CHUNK ((size_t)64 * 1024)
#define QUEUE_DIR_MODE 0700
#define QUEUE_FILE_MODE 0600

static const char *const queue_subdirs[] = {"tmp", "msg", "state", "ctl",
					    "corrupt", NULL};

static const char *const queue_status_names[] = {"pending", "deferred",
						 "delivered", "failed"};

static int queue_why(char *why, size_t why_size, const char *fmt, ...)
	PTL_PRINTF(3, 4);

static int
queue_why(char *why, size_t why_size, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && why_size > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(why, why_size, fmt, ap);
		va_end(ap);
	}
	return -1;
}

const char *
queue_status_name(unsigned status)
{
	return status < 4 ? queue_status_names[status] : "unknown";
}

/* ---- ids and paths ---- */

void
queue_id_make(char id[QUEUE_ID_SIZE])
{
	static unsigned counter;
	struct timespec ts;
	unsigned n = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	/*
	 * Seconds first so that ids sort by age; the pid and a per-process
	 * counter make two processes (or two threads in the same
	 * microsecond) differ. O_EXCL and a non-replacing rename back it up.
	 */
	(void)snprintf(id, QUEUE_ID_SIZE, "%08" PRIX64 "%05lX%06X%03X",
		       (uint64_t)ts.tv_sec & 0xffffffffu,
		       (unsigned long)(ts.tv_nsec / 1000) & 0xfffffu,
		       (unsigned)getpid() & 0xffffffu, n & 0xfffu);
}

void
queue_copy_id(char dst[QUEUE_ID_SIZE], const char *src)
{
	size_t n = strnlen(src, QUEUE_ID_SIZE - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

bool
queue_id_valid(const char *id)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++) {
		char c = id[i];

		if (i >= QUEUE_ID_SIZE - 1 ||
		    !((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
		      (c >= 'a' && c <= 'z')))
			return false;
	}
	return i > 0;
}

bool
queue_path(char *out, size_t size, const char *qdir, const char *sub,
	   const char *name)
{
	int n;

	if (name != NULL)
		n = snprintf(out, size, "%s/%s/%s", qdir, sub, name);
	else
		n = snprintf(out, size, "%s/%s", qdir, sub);
	return n > 0 && (size_t)n < size;
}

int
queue_dirs_create(const char *qdir, char *why, size_t why_size)
{
	char path[4096];
	size_t i;

	if (mkdir(qdir, QUEUE_DIR_MODE) != 0 && errno != EEXIST)
		return queue_why(why, why_size, "cannot create %s: %s", qdir,
				 strerror(errno));
	for (i = 0; queue_subdirs[i] != NULL; i++) {
		if (!queue_path(path, sizeof(path), qdir, queue_subdirs[i],
				NULL))
			return queue_why(why, why_size, "path too long");
		if (mkdir(path, QUEUE_DIR_MODE) != 0 && errno != EEXIST)
			return queue_why(why, why_size,
					 "cannot create %s: %s", path,
					 strerror(errno));
	}
	return 0;
}

/* ---- envelopes ---- */

static const char *const queue_ret_words[] = {NULL, "FULL", "HDRS"};
static const char *const queue_body_words[] = {"7BIT", "8BITMIME",
					       "BINARYMIME"};

void
queue_env_encode(const struct queue_env *env, struct qrec_buf *b)
{
	size_t i;

	qrec_put_str(b, "V", "1");
	qrec_put_str(b, "ID", env->id);
	qrec_put_str(b, "FROM", env->from != NULL ? env->from : "");
	qrec_put_str(b, "ENVID", env->envid);
	if (env->ret == PTL_DSN_RET_FULL || env->ret == PTL_DSN_RET_HDRS)
		qrec_put_str(b, "RET", queue_ret_words[env->ret]);
	if (env->body >= 0 && env->body <= PTL_BODY_BINARYMIME)
		qrec_put_str(b, "BODY", queue_body_words[env->body]);
	if (env->smtputf8)
		qrec_put_str(b, "UTF8", "1");
	if (env->is_dsn)
		qrec_put_str(b, "KIND", "DSN");
	qrec_put_str(b, "AUTH", env->auth_user);
	qrec_put_str(b, "CLIENT", env->client_ip);
	qrec_put_i64(b, "TIME", env->received);
	qrec_put_u64(b, "SIZE", env->body_size);
	for (i = 0; i < env->nrcpts; i++) {
		qrec_put_str(b, "RCPT", env->rcpts[i].address);
		if (env->rcpts[i].notify != 0)
			qrec_put_u64(b, "NOTIFY", env->rcpts[i].notify);
		qrec_put_str(b, "ORCPT", env->rcpts[i].orcpt);
	}
}

void
queue_env_free(struct queue_env *env)
{
	free(env->storage);
	free(env->rcpts);
	env->storage = NULL;
	env->rcpts = NULL;
	env->nrcpts = 0;
}

static int
queue_word(const struct qrec *r, const char *const *words, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (words[i] != NULL && r->len == strlen(words[i]) &&
		    memcmp(r->value, words[i], r->len) == 0)
			return i;
	return -1;
}

/* Make the value a C string in place: its LF becomes the NUL. */
static const char *
queue_env_text(struct qrec *r)
{
	((char *)r->value)[r->len] = '\0';
	return r->value;
}

static int
queue_env_field(struct queue_env *env, struct qrec *r, size_t *rcpt,
		char *why, size_t why_size)
{
	struct queue_env_rcpt *last =
		*rcpt > 0 ? &env->rcpts[*rcpt - 1] : NULL;
	uint64_t v;
	int64_t t;
	int w;

	if (!qrec_is_text(r))
		return queue_why(why, why_size, "NUL byte in %.*s",
				 (int)r->key_len, r->key);
	if (qrec_is(r, "V")) {
		if (r->len != 1 || r->value[0] != '1')
			return queue_why(why, why_size,
					 "unknown envelope version");
	} else if (qrec_is(r, "ID")) {
		if (r->len >= QUEUE_ID_SIZE)
			return queue_why(why, why_size, "bad ID record");
		memcpy(env->id, r->value, r->len);
		env->id[r->len] = '\0';
	} else if (qrec_is(r, "FROM")) {
		if (r->len > QUEUE_ADDRESS_MAX)
			return queue_why(why, why_size, "sender too long");
		env->from = queue_env_text(r);
	} else if (qrec_is(r, "ENVID")) {
		env->envid = queue_env_text(r);
	} else if (qrec_is(r, "AUTH")) {
		env->auth_user = queue_env_text(r);
	} else if (qrec_is(r, "CLIENT")) {
		env->client_ip = queue_env_text(r);
	} else if (qrec_is(r, "RET")) {
		w = queue_word(r, queue_ret_words, 3);
		if (w < 0)
			return queue_why(why, why_size, "bad RET record");
		env->ret = w;
	} else if (qrec_is(r, "BODY")) {
		w = queue_word(r, queue_body_words, 3);
		if (w < 0)
			return queue_why(why, why_size, "bad BODY record");
		env->body = w;
	} else if (qrec_is(r, "UTF8")) {
		env->smtputf8 = true;
	} else if (qrec_is(r, "KIND")) {
		env->is_dsn = r->len == 3 && memcmp(r->value, "DSN", 3) == 0;
	} else if (qrec_is(r, "TIME")) {
		if (!qrec_i64(r, &t))
			return queue_why(why, why_size, "bad TIME record");
		env->received = t;
	} else if (qrec_is(r, "SIZE")) {
		if (!qrec_u64(r, UINT64_MAX, &v) || v != env->body_size)
			return queue_why(why, why_size,
					 "SIZE does not match the trailer");
	} else if (qrec_is(r, "RCPT")) {
		if (r->len == 0 || r->len > QUEUE_ADDRESS_MAX)
			return queue_why(why, why_size, "bad RCPT record");
		env->rcpts[*rcpt].address = queue_env_text(r);
		(*rcpt)++;
	} else if (qrec_is(r, "NOTIFY")) {
		if (last == NULL || !qrec_u64(r, 0xf, &v))
			return queue_why(why, why_size, "bad NOTIFY record");
		last->notify = (unsigned)v;
	} else if (qrec_is(r, "ORCPT")) {
		if (last == NULL || r->len > QUEUE_ADDRESS_MAX + 16)
			return queue_why(why, why_size, "bad ORCPT record");
		last->orcpt = queue_env_text(r);
	}
	/* Unknown keys come from a newer version: skip them. */
	return 0;
}

int
queue_env_decode(char *data, size_t len, struct queue_env *env, char *why,
		 size_t why_size)
{
	size_t pos = 0, used, nrcpts = 0, rcpt = 0;
	uint64_t body_size = env->body_size;
	enum qrec_result res;
	struct qrec r;

	memset(env, 0, sizeof(*env));
	env->body_size = body_size;
	env->storage = data;
	/* First pass: check the framing and count the recipients. */
	while ((res = qrec_next(data + pos, len - pos, &r, &used)) ==
	       QREC_RECORD) {
		if (qrec_is(&r, "RCPT"))
			nrcpts++;
		pos += used;
	}
	if (res != QREC_END) {
		queue_why(why, why_size, "malformed envelope record at "
					 "offset %zu", pos);
		goto fail;
	}
	if (nrcpts == 0 || nrcpts > QUEUE_RCPTS_MAX) {
		queue_why(why, why_size, "%zu recipients", nrcpts);
		goto fail;
	}
	env->rcpts = calloc(nrcpts, sizeof(*env->rcpts));
	if (env->rcpts == NULL) {
		queue_why(why, why_size, "out of memory");
		goto fail;
	}
	env->nrcpts = nrcpts;
	for (pos = 0; pos < len; pos += used) {
		(void)qrec_next(data + pos, len - pos, &r, &used);
		if (queue_env_field(env, &r, &rcpt, why, why_size) != 0)
			goto fail;
	}
	if (env->id[0] == '\0' || env->from == NULL || env->received <= 0) {
		queue_why(why, why_size, "ID, FROM or TIME missing");
		goto fail;
	}
	return 0;
fail:
	queue_env_free(env);
	return -1;
}

void
queue_trailer_format(char out[QUEUE_TRAILER_LEN + 1], uint64_t body,
		     uint32_t env_len, uint32_t crc)
{
	(void)snprintf(out, QUEUE_TRAILER_LEN + 1,
		       "PTLQ1 %016" PRIx64 " %08" PRIx32 " %08" PRIx32 "\n",
		       body, env_len, crc);
}

static bool
queue_hex(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		char c = p[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return false;
		v = v << 4 | d;
	}
	*out = v;
	return true;
}

int
queue_trailer_parse(const char *p, uint64_t *body_out, uint32_t *env_len_out,
		    uint32_t *crc_out)
{
	uint64_t body, env_len, crc;

	if (memcmp(p, "PTLQ1 ", 6) != 0 || p[22] != ' ' || p[31] != ' ' ||
	    p[40] != '\n' || !queue_hex(p + 6, 16, &body) ||
	    !queue_hex(p + 23, 8, &env_len) || !queue_hex(p + 32, 8, &crc))
		return -1;
	*body_out = body;
	*env_len_out = (uint32_t)env_len;
	*crc_out = (uint32_t)crc;
	return 0;
}

static int
queue_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(fd, (char *)buf + done, len - done,
			  (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = ENODATA;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

enum queue_read_status
queue_msg_read_fd(int fd, const char *id, struct queue_env *env, char *why,
		  size_t why_size)
{
	char trailer[QUEUE_TRAILER_LEN];
	uint64_t body;
	uint32_t env_len, crc;
	struct stat st;
	char *data;

	memset(env, 0, sizeof(*env));
	if (fstat(fd, &st) != 0) {
		queue_why(why, why_size, "fstat: %s", strerror(errno));
		return QUEUE_READ_ERROR;
	}
	if (!S_ISREG(st.st_mode)) {
		queue_why(why, why_size, "not a regular file");
		return QUEUE_READ_CORRUPT;
	}
	if ((uint64_t)st.st_size < QUEUE_TRAILER_LEN) {
		queue_why(why, why_size, "truncated (%lld bytes)",
			  (long long)st.st_size);
		return QUEUE_READ_CORRUPT;
	}
	if (queue_pread_all(fd, trailer, sizeof(trailer),
			    (uint64_t)st.st_size - QUEUE_TRAILER_LEN) != 0) {
		queue_why(why, why_size, "read: %s", strerror(errno));
		return QUEUE_READ_ERROR;
	}
	if (queue_trailer_parse(trailer, &body, &env_len, &crc) != 0) {
		queue_why(why, why_size, "bad trailer (truncated or not a "
					 "queue file)");
		return QUEUE_READ_CORRUPT;
	}
	if (env_len == 0 || env_len > QUEUE_ENVELOPE_MAX ||
	    body > (uint64_t)st.st_size ||
	    body + env_len + QUEUE_TRAILER_LEN != (uint64_t)st.st_size) {
		queue_why(why, why_size,
			  "sizes do not add up (body %" PRIu64
			  ", envelope %" PRIu32 ", file %lld)",
			  body, env_len, (long long)st.st_size);
		return QUEUE_READ_CORRUPT;
	}
	data = malloc(env_len + 1);
	if (data == NULL) {
		queue_why(why, why_size, "out of memory");
		return QUEUE_READ_ERROR;
	}
	if (queue_pread_all(fd, data, env_len, body) != 0) {
		queue_why(why, why_size, "read: %s", strerror(errno));
		free(data);
		return QUEUE_READ_ERROR;
	}
	data[env_len] = '\0';
	if (qrec_crc32(0, data, env_len) != crc) {
		queue_why(why, why_size, "envelope checksum mismatch");
		free(data);
		return QUEUE_READ_CORRUPT;
	}
	env->body_size = body;
	if (queue_env_decode(data, env_len, env, why, why_size) != 0)
		return QUEUE_READ_CORRUPT;
	if (strcmp(env->id, id) != 0) {
		queue_why(why, why_size, "file holds message %s", env->id);
		queue_env_free(env);
		return QUEUE_READ_CORRUPT;
	}
	return QUEUE_READ_OK;
}

enum queue_read_status
queue_msg_read(const char *qdir, const char *id, struct queue_env *env,
	       char *why, size_t why_size)
{
	enum queue_read_status rs;
	char path[4096];
	int fd;

	memset(env, 0, sizeof(*env));
	if (!queue_path(path, sizeof(path), qdir, "msg", id)) {
		queue_why(why, why_size, "path too long");
		return QUEUE_READ_ERROR;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0) {
		queue_why(why, why_size, "open: %s", strerror(errno));
		if (errno == ENOENT)
			return QUEUE_READ_GONE;
		return errno == ELOOP ? QUEUE_READ_CORRUPT : QUEUE_READ_ERROR;
	}
	rs = queue_msg_read_fd(fd, id, env, why, why_size);
	(void)close(fd);
	return rs;
}

/* ---- the state log ---- */

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
			w = queue_word(&r, queue_status_names, 4);
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
queue_state_load(const char *qdir, const char *id,
		 struct queue_rcpt_state *st, size_t nrcpts, bool texts,
		 uint64_t *valid_out, uint64_t *size_out, char *why,
		 size_t why_size)
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

/* ---- durable writes ---- */

int
queue_dirsync_init(struct queue_dirsync *ds, const char *path)
{
	memset(ds, 0, sizeof(*ds));
	ds->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ds->fd < 0)
		return -1;
	if (pthread_mutex_init(&ds->lock, NULL) != 0) {
		(void)close(ds->fd);
		ds->fd = -1;
		errno = ENOMEM;
		return -1;
	}
	if (pthread_cond_init(&ds->changed, NULL) != 0) {
		pthread_mutex_destroy(&ds->lock);
		(void)close(ds->fd);
		ds->fd = -1;
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void
queue_dirsync_fini(struct queue_dirsync *ds)
{
	if (ds->fd < 0)
		return;
	pthread_cond_destroy(&ds->changed);
	pthread_mutex_destroy(&ds->lock);
	(void)close(ds->fd);
	ds->fd = -1;
}

int
queue_dirsync_commit(struct queue_dirsync *ds)
{
	uint64_t ticket, target;
	int result = 0, rc;

	pthread_mutex_lock(&ds->lock);
	ticket = ++ds->tickets;
	while (ds->synced < ticket) {
		if (ds->syncing) {
			pthread_cond_wait(&ds->changed, &ds->lock);
			continue;
		}
		/* Everything up to target changed before this fsync starts. */
		ds->syncing = true;
		target = ds->tickets;
		pthread_mutex_unlock(&ds->lock);
		rc = fsync(ds->fd) == 0 ? 0 : errno;
		pthread_mutex_lock(&ds->lock);
		ds->syncing = false;
		pthread_cond_broadcast(&ds->changed);
		if (rc != 0) {
			/* The waiters try with their own fsync. */
			result = rc;
			break;
		}
		if (target > ds->synced)
			ds->synced = target;
	}
	pthread_mutex_unlock(&ds->lock);
	return result;
}

int
queue_spool_open(struct queue_spool *sp, const char *qdir, char *why,
		 size_t why_size)
{
	char path[4096];

	memset(sp, 0, sizeof(*sp));
	sp->msg_sync.fd = sp->state_sync.fd = -1;
	sp->qdir = strdup(qdir);
	if (sp->qdir == NULL)
		return queue_why(why, why_size, "out of memory");
	if (!queue_path(path, sizeof(path), qdir, "msg", NULL) ||
	    queue_dirsync_init(&sp->msg_sync, path) != 0) {
		queue_why(why, why_size, "cannot open %s: %s", path,
			  strerror(errno));
		queue_spool_close(sp);
		return -1;
	}
	if (!queue_path(path, sizeof(path), qdir, "state", NULL) ||
	    queue_dirsync_init(&sp->state_sync, path) != 0) {
		queue_why(why, why_size, "cannot open %s: %s", path,
			  strerror(errno));
		queue_spool_close(sp);
		return -1;
	}
	return 0;
}

void
queue_spool_close(struct queue_spool *sp)
{
	queue_dirsync_fini(&sp->msg_sync);
	queue_dirsync_fini(&sp->state_sync);
	free(sp->qdir);
	sp->qdir = NULL;
}

int
queue_writer_open(struct queue_writer *w, struct queue_spool *sp, char *why,
		  size_t why_size)
{
	char path[4096];

	memset(w, 0, sizeof(*w));
	w->sp = sp;
	queue_id_make(w->id);
	if (!queue_path(path, sizeof(path), sp->qdir, "tmp", w->id))
		return queue_why(why, why_size, "path too long");
	w->fd = open(path,
		     O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY,
		     QUEUE_FILE_MODE);
	if (w->fd < 0)
		return queue_why(why, why_size, "cannot create %s: %s", path,
				 strerror(errno));
	return 0;
}

static int
queue_write_all(int fd, const void *p, size_t len)
{
	const char *s = p;
	ssize_t n;

	while (len > 0) {
		n = write(fd, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

int
queue_writer_write(struct queue_writer *w, const void *p, size_t len,
		   char *why, size_t why_size)
{
	if (queue_write_all(w->fd, p, len) != 0)
		return queue_why(why, why_size, "write: %s", strerror(errno));
	w->body_size += len;
	return 0;
}

int
queue_writer_copy(struct queue_writer *w, int fd, uint64_t size, char *why,
		  size_t why_size)
{
	uint64_t off = 0;
	size_t chunk;
	char *buf;
	int rc = 0;

	buf = malloc(QUEUE_COPY_CHUNK);
	if (buf == NULL)
		return queue_why(why, why_size, "out of memory");
	while (off < size) {
		chunk = size - off < QUEUE_COPY_CHUNK ? (size_t)(size - off)
						      : QUEUE_COPY_CHUNK;
		if (queue_pread_all(fd, buf, chunk, off) != 0) {
			rc = queue_why(why, why_size,
				       "reading the message: %s",
				       errno == ENODATA ? "shorter than "
							  "announced"
							: strerror(errno));
			break;
		}
		if (queue_writer_write(w, buf, chunk, why, why_size) != 0) {
			rc = -1;
			break;
		}
		off += chunk;
	}
	free(buf);
	return rc;
}

void
queue_writer_abort(struct queue_writer *w)
{
	char path[4096];

	if (w->fd >= 0)
		(void)close(w->fd);
	w->fd = -1;
	if (queue_path(path, sizeof(path), w->sp->qdir, "tmp", w->id))
		(void)unlink(path);
}

/* rename() that never replaces: an id collision must not lose mail. */
static int
queue_rename_new(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* File systems without RENAME_NOREPLACE: link fails on EEXIST. */
	if (link(from, to) != 0)
		return -1;
	(void)unlink(from);
	return 0;
}

int
queue_writer_commit(struct queue_writer *w, struct queue_env *env, char *why,
		    size_t why_size)
{
	char trailer[QUEUE_TRAILER_LEN + 1], from[4096], to[4096];
	struct qrec_buf b;
	int err;

	memcpy(env->id, w->id, sizeof(env->id));
	env->body_size = w->body_size;
	qrec_buf_init(&b, QUEUE_ENVELOPE_MAX);
	queue_env_encode(env, &b);
	if (b.failed) {
		qrec_buf_free(&b);
		queue_writer_abort(w);
		return queue_why(why, why_size,
				 "envelope too large or out of memory");
	}
	queue_trailer_format(trailer, w->body_size, (uint32_t)b.len,
			     qrec_crc32(0, b.data, b.len));
	if (queue_write_all(w->fd, b.data, b.len) != 0 ||
	    queue_write_all(w->fd, trailer, QUEUE_TRAILER_LEN) != 0) {
		err = errno;
		qrec_buf_free(&b);
		queue_writer_abort(w);
		return queue_why(why, why_size, "write: %s", strerror(err));
	}
	qrec_buf_free(&b);
	if (fsync(w->fd) != 0) {
		err = errno;
		queue_writer_abort(w);
		return queue_why(why, why_size, "fsync: %s", strerror(err));
	}
	if (close(w->fd) != 0) {
		err = errno;
		w->fd = -1;
		queue_writer_abort(w);
		return queue_why(why, why_size, "close: %s", strerror(err));
	}
	w->fd = -1;
	if (!queue_path(from, sizeof(from), w->sp->qdir, "tmp", w->id) ||
	    !queue_path(to, sizeof(to), w->sp->qdir, "msg", w->id)) {
		queue_writer_abort(w);
		return queue_why(why, why_size, "path too long");
	}
	if (queue_rename_new(from, to) != 0) {
		err = errno;
		queue_writer_abort(w);
		return queue_why(why, why_size, "rename into msg/: %s",
				 strerror(err));
	}
	err = queue_dirsync_commit(&w->sp->msg_sync);
	if (err != 0) {
		/*
		 * The name may or may not survive a crash: do not promise
		 * it. Removing it keeps the caller's 4xx truthful.
		 */
		(void)unlink(to);
		return queue_why(why, why_size, "fsync of msg/: %s",
				 strerror(err));
	}
	return 0;
}

int
queue_state_append(struct queue_spool *sp, const char *id, const void *data,
		   size_t len, uint64_t truncate_to, char *why,
		   size_t why_size)
{
	bool created = false;
	char path[4096];
	int fd, err;

	if (!queue_path(path, sizeof(path), sp->qdir, "state", id))
		return queue_why(why, why_size, "path too long");
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		fd = open(path,
			  O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC,
			  QUEUE_FILE_MODE);
		created = fd >= 0;
	}
	if (fd < 0)
		return queue_why(why, why_size, "open %s: %s", path,
				 strerror(errno));
	if (truncate_to != UINT64_MAX &&
	    ftruncate(fd, (off_t)truncate_to) != 0) {
		err = errno;
		(void)close(fd);
		return queue_why(why, why_size, "truncate %s: %s", path,
				 strerror(err));
	}
	/* One write: concurrent appends of other jobs never interleave. */
	if (queue_write_all(fd, data, len) != 0 || fdatasync(fd) != 0) {
		err = errno;
		(void)close(fd);
		return queue_why(why, why_size, "write %s: %s", path,
				 strerror(err));
	}
	if (close(fd) != 0)
		return queue_why(why, why_size, "close %s: %s", path,
				 strerror(errno));
	if (created && (err = queue_dirsync_commit(&sp->state_sync)) != 0)
		return queue_why(why, why_size, "fsync of state/: %s",
				 strerror(err));
	return 0;
}

int
queue_state_truncate(const char *qdir, const char *id, uint64_t len,
		     char *why, size_t why_size)
{
	char path[4096];
	int fd, err;

	if (!queue_path(path, sizeof(path), qdir, "state", id))
		return queue_why(why, why_size, "path too long");
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return queue_why(why, why_size, "open %s: %s", path,
				 strerror(errno));
	if (ftruncate(fd, (off_t)len) != 0 || fdatasync(fd) != 0) {
		err = errno;
		(void)close(fd);
		return queue_why(why, why_size, "truncate %s: %s", path,
				 strerror(err));
	}
	(void)close(fd);
	return 0;
}

int
queue_msg_remove(struct queue_spool *sp, const char *id, char *why,
		 size_t why_size)
{
	char path[4096];
	int err;

	if (!queue_path(path, sizeof(path), sp->qdir, "msg", id))
		return queue_why(why, why_size, "path too long");
	if (unlink(path) != 0 && errno != ENOENT)
		return queue_why(why, why_size, "unlink %s: %s", path,
				 strerror(errno));
	/* An orphaned log (crash right here) is removed by the next scan. */
	if (queue_path(path, sizeof(path), sp->qdir, "state", id))
		(void)unlink(path);
	err = queue_dirsync_commit(&sp->msg_sync);
	if (err != 0)
		return queue_why(why, why_size, "fsync of msg/: %s",
				 strerror(err));
	return 0;
}

int
queue_quarantine(const char *qdir, const char *id, char *why,
		 size_t why_size)
{
	char from[4096], to[4096], name[QUEUE_ID_SIZE + 32];
	long now = (long)time(NULL);

	(void)snprintf(name, sizeof(name), "%s.%ld", id, now);
	if (!queue_path(from, sizeof(from), qdir, "msg", id) ||
	    !queue_path(to, sizeof(to), qdir, "corrupt", name))
		return queue_why(why, why_size, "path too long");
	if (rename(from, to) != 0 && errno != ENOENT)
		return queue_why(why, why_size, "rename to corrupt/: %s",
				 strerror(errno));
	(void)snprintf(name, sizeof(name), "%s.%ld.state", id, now);
	if (queue_path(from, sizeof(from), qdir, "state", id) &&
	    queue_path(to, sizeof(to), qdir, "corrupt", name))
		(void)rename(from, to);
	return 0;
}

/* ---- petrelctl requests ---- */

static const char *const queue_request_names[] = {NULL, "flush", "retry",
						  "delete"};

const char *
queue_request_name(int req)
{
	return req >= QUEUE_REQ_FLUSH && req <= QUEUE_REQ_DELETE
		       ? queue_request_names[req]
		       : NULL;
}

int
queue_request_write(const char *qdir, int req, const char *id,
		    char *name_out, size_t name_size, char *why,
		    size_t why_size)
{
	char tmp[4096], dst[4096], ctl_dir[4096], name[64],
		tmpname[sizeof(name) + 1];
	static unsigned counter;
	struct qrec_buf b;
	struct timespec ts;
	struct stat dir_st;
	int fd, err;

	if (queue_request_name(req) == NULL ||
	    (id != NULL && !queue_id_valid(id)))
		return queue_why(why, why_size, "bad request");
	(void)clock_gettime(CLOCK_REALTIME, &ts);
	(void)snprintf(name, sizeof(name), "%010lld.%09ld.%d.%u",
		       (long long)ts.tv_sec, ts.tv_nsec, (int)getpid(),
		       counter++);
	(void)snprintf(tmpname, sizeof(tmpname), ".%s", name);
	if (!queue_path(tmp, sizeof(tmp), qdir, "ctl", tmpname) ||
	    !queue_path(dst, sizeof(dst), qdir, "ctl", name))
		return queue_why(why, why_size, "path too long");
	qrec_buf_init(&b, 4096);
	qrec_put_str(&b, "REQ", queue_request_name(req));
	qrec_put_str(&b, "ID", id);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = errno;
		qrec_buf_free(&b);
		return queue_why(why, why_size, "cannot create %s: %s", tmp,
				 strerror(err));
	}
	/*
	 * petrelctl usually runs as root, the runner as the server's user:
	 * the request belongs to whoever owns ctl/, so the runner can read
	 * and remove it.
	 */
	if (geteuid() == 0 &&
	    queue_path(ctl_dir, sizeof(ctl_dir), qdir, "ctl", NULL) &&
	    stat(ctl_dir, &dir_st) == 0)
		(void)fchown(fd, dir_st.st_uid, dir_st.st_gid);
	if (b.failed || queue_write_all(fd, b.data, b.len) != 0 ||
	    close(fd) != 0) {
		err = errno;
		qrec_buf_free(&b);
		(void)unlink(tmp);
		return queue_why(why, why_size, "write %s: %s", tmp,
				 strerror(err));
	}
	qrec_buf_free(&b);
	if (rename(tmp, dst) != 0) {
		err = errno;
		(void)unlink(tmp);
		return queue_why(why, why_size, "rename %s: %s", tmp,
				 strerror(err));
	}
	if (name_out != NULL)
		(void)snprintf(name_out, name_size, "%s", name);
	return 0;
}

int
queue_request_parse(const char *data, size_t len, int *req_out,
		    char id_out[QUEUE_ID_SIZE])
{
	size_t pos = 0, used;
	struct qrec r;
	int req = 0, i;

	id_out[0] = '\0';
	while (qrec_next(data + pos, len - pos, &r, &used) == QREC_RECORD) {
		pos += used;
		if (qrec_is(&r, "REQ")) {
			for (i = QUEUE_REQ_FLUSH; i <= QUEUE_REQ_DELETE; i++)
				if (r.len == strlen(queue_request_names[i]) &&
				    memcmp(r.value, queue_request_names[i],
					   r.len) == 0)
					req = i;
		} else if (qrec_is(&r, "ID")) {
			if (r.len == 0 || r.len >= QUEUE_ID_SIZE)
				return -1;
			memcpy(id_out, r.value, r.len);
			id_out[r.len] = '\0';
			if (!queue_id_valid(id_out))
				return -1;
		}
	}
	if (pos != len || req == 0)
		return -1;
	*req_out = req;
	return 0;
}
