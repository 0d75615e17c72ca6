/* SPDX-License-Identifier: MIT */
/* The spool on disk: ids, paths, envelopes, reading message files. */
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

#define QUEUE_DIR_MODE 0700

static const char *const queue_subdirs[] = {"tmp", "msg",     "state",
                                            "ctl", "corrupt", NULL};

static const char *const queue_status_names[] = {"pending", "deferred",
                                                 "delivered", "failed"};

int
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

int
queue_status_parse(const char *word, size_t len)
{
	unsigned i;

	for (i = 0; i < 4; i++)
		if (len == strlen(queue_status_names[i]) &&
		    memcmp(word, queue_status_names[i], len) == 0)
			return (int)i;
	return -1;
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
			return queue_why(why, why_size, "cannot create %s: %s",
			                 path, strerror(errno));
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

int
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
queue_env_field(struct queue_env *env, struct qrec *r, size_t *rcpt, char *why,
                size_t why_size)
{
	struct queue_env_rcpt *last = *rcpt > 0 ? &env->rcpts[*rcpt - 1] : NULL;
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
		queue_why(why, why_size,
		          "malformed envelope record at "
		          "offset %zu",
		          pos);
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

bool
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

int
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
		queue_why(why, why_size,
		          "bad trailer (truncated or not a "
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
