/* SPDX-License-Identifier: MIT */
/* Test module: a "queue" service writing each message to a directory. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <petrel/petrel.h>
#include <petrel/queue.h>

/*
 * {"dir": "/abs/path", "tempfail": false}
 * Each message becomes DIR/N.eml (prefix and message) and DIR/N.env
 * (one "key value" line per envelope item, written length-framed as
 * "<len>:<bytes>\n" so that no value can forge a line). Nothing is
 * ever relayed.
 */

struct nq_conf {
	const char *dir;
	bool tempfail;
};

static const struct ptl_conf_key nq_keys[] = {
    {.name = "dir",
     .type = PTL_CONF_STRING,
     .flags = PTL_CONF_REQUIRED,
     .offset = offsetof(struct nq_conf, dir),
     .doc = "Queue directory."},
    {.name = "tempfail",
     .type = PTL_CONF_BOOL,
     .def = "false",
     .offset = offsetof(struct nq_conf, tempfail),
     .doc = "Refuse every message temporarily."},
    {NULL},
};

struct nq_job {
	const struct nq_conf *conf;
	char *env;
	size_t env_len;
	char *prefix;
	size_t prefix_len;
	int fd;
	uint64_t size;
	ptl_queue_done_fn done;
	void *arg;
	int ok;
	char id[64];
};

static unsigned long long nq_serial;

static int
nq_write_file(const char *path, const char *a, size_t alen, int fd,
              uint64_t size)
{
	char buf[65536];
	uint64_t off = 0;
	ssize_t n;
	int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (out < 0)
		return -1;
	if (alen > 0 && write(out, a, alen) != (ssize_t)alen)
		goto fail;
	while (fd >= 0 && off < size) {
		n = pread(fd, buf,
		          size - off < sizeof(buf) ? size - off : sizeof(buf),
		          (off_t)off);
		if (n <= 0 || write(out, buf, (size_t)n) != n)
			goto fail;
		off += (uint64_t)n;
	}
	if (fsync(out) != 0)
		goto fail;
	return close(out);
fail:
	close(out);
	return -1;
}

static void
nq_work(void *arg)
{
	struct nq_job *j = arg;
	char path[4200];
	unsigned long long n;

	n = __atomic_add_fetch(&nq_serial, 1, __ATOMIC_RELAXED);
	(void)snprintf(j->id, sizeof(j->id), "Q%ld.%llu", (long)getpid(), n);
	(void)mkdir(j->conf->dir, 0700);
	(void)snprintf(path, sizeof(path), "%s/%s.eml", j->conf->dir, j->id);
	if (nq_write_file(path, j->prefix, j->prefix_len, j->fd, j->size) != 0)
		return;
	(void)snprintf(path, sizeof(path), "%s/%s.env", j->conf->dir, j->id);
	if (nq_write_file(path, j->env, j->env_len, -1, 0) != 0)
		return;
	j->ok = 1;
}

static void
nq_work_none(void *arg)
{
}

static void
nq_done(void *arg)
{
	struct nq_job *j = arg;

	j->done(j->ok ? PTL_QUEUE_OK : PTL_QUEUE_TEMPFAIL, j->id,
	        j->ok ? NULL : "cannot write", j->arg);
	free(j->env);
	free(j->prefix);
	free(j);
}

/* Appends "key len:value\n"; values may hold any byte. */
static int
nq_env_add(char **env, size_t *len, const char *key, const char *value)
{
	size_t vlen = value != NULL ? strlen(value) : 0;
	size_t add = strlen(key) + vlen + 32;
	char *grown = realloc(*env, *len + add);
	int n;

	if (grown == NULL)
		return -1;
	*env = grown;
	n = snprintf(grown + *len, add, "%s %zu:", key, vlen);
	*len += (size_t)n;
	if (vlen > 0)
		memcpy(grown + *len, value, vlen);
	*len += vlen;
	grown[(*len)++] = '\n';
	return 0;
}

static int
nq_enqueue(void *instance, const struct ptl_queue_message *m,
           ptl_queue_done_fn done, void *arg)
{
	const struct nq_conf *conf = instance;
	struct nq_job *j = calloc(1, sizeof(*j));
	char num[32];
	size_t i;
	int rc = 0;

	if (j == NULL)
		return PTL_ERROR;
	j->conf = conf;
	j->fd = m->fd;
	j->size = m->size;
	j->done = done;
	j->arg = arg;
	rc |= nq_env_add(&j->env, &j->env_len, "from", m->mail_from);
	rc |= nq_env_add(&j->env, &j->env_len, "envid", m->envid);
	(void)snprintf(num, sizeof(num), "%d", (int)m->ret);
	rc |= nq_env_add(&j->env, &j->env_len, "ret", num);
	(void)snprintf(num, sizeof(num), "%d", (int)m->body);
	rc |= nq_env_add(&j->env, &j->env_len, "body", num);
	rc |= nq_env_add(&j->env, &j->env_len, "auth", m->auth_user);
	for (i = 0; i < m->nrcpts; i++) {
		rc |= nq_env_add(&j->env, &j->env_len, "rcpt",
		                 m->rcpts[i].address);
		(void)snprintf(num, sizeof(num), "%u", m->rcpts[i].notify);
		rc |= nq_env_add(&j->env, &j->env_len, "notify", num);
		rc |= nq_env_add(&j->env, &j->env_len, "orcpt",
		                 m->rcpts[i].orcpt);
	}
	j->prefix = malloc(m->prefix_len + 1);
	if (rc != 0 || j->prefix == NULL)
		goto fail;
	if (m->prefix_len > 0)
		memcpy(j->prefix, m->prefix, m->prefix_len);
	j->prefix_len = m->prefix_len;
	if (conf->tempfail) {
		j->fd = -1;
		j->size = 0;
		j->env_len = 0;
	}
	if (ptl_task_submit(conf->tempfail ? nq_work_none : nq_work, nq_done,
	                    j) == PTL_OK)
		return PTL_AGAIN;
fail:
	free(j->env);
	free(j->prefix);
	free(j);
	return PTL_ERROR;
}

static const struct ptl_queue_methods nq_methods = {
    .version = PTL_QUEUE_VERSION,
    .enqueue = nq_enqueue,
};

static int
nq_init_worker(struct ptl_instance *inst, struct ptl_error *err)
{
	return ptl_service_register(inst, PTL_QUEUE_SERVICE, PTL_QUEUE_VERSION,
	                            &nq_methods, ptl_instance_conf(inst), err);
}

static const struct ptl_service_ref nq_provides[] = {
    {PTL_QUEUE_SERVICE, PTL_QUEUE_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "null_queue",
    .version = "0",
    .description = "test queue writing messages to a directory",
    .license = "MIT",
    .provides = nq_provides,
    .conf_keys = nq_keys,
    .conf_size = sizeof(struct nq_conf),
    .init_worker = nq_init_worker,
};
