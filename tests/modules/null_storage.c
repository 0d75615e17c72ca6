/* SPDX-License-Identifier: MIT */
/* Test module: a "storage" service writing each delivery to a directory. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <petrel/petrel.h>

/*
 * {"dir": "/abs/path",             deliveries go to DIR/USER/N.eml
 *  "fail_users": ["x@example.test"],      refused for good
 *  "tempfail_users": ["y@example.test"]}  refused for now
 * Each file holds the prefix then the message, written to a temporary
 * name, fsync'd, renamed, and the directory fsync'd: the contract.
 * Mailbox reading (open, read...) is not implemented.
 */

struct null_conf {
	const char *dir;
	struct ptl_conf_list fail_users;
	struct ptl_conf_list tempfail_users;
};

static const struct ptl_conf_key null_keys[] = {
    {.name = "dir",
     .type = PTL_CONF_STRING,
     .flags = PTL_CONF_REQUIRED,
     .offset = offsetof(struct null_conf, dir),
     .doc = "Directory receiving the deliveries."},
    {.name = "fail_users",
     .type = PTL_CONF_STRING_LIST,
     .offset = offsetof(struct null_conf, fail_users),
     .doc = "Users whose deliveries fail permanently."},
    {.name = "tempfail_users",
     .type = PTL_CONF_STRING_LIST,
     .offset = offsetof(struct null_conf, tempfail_users),
     .doc = "Users whose deliveries fail temporarily."},
    {NULL},
};

struct null_job {
	const struct null_conf *conf;
	char user[320];
	char folder[64];
	int fd;
	uint64_t size;
	char *prefix;
	size_t prefix_len;
	ptl_storage_done_fn done;
	void *arg;
	int status;
	char reason[128];
};

static unsigned long long null_serial;

static bool
null_in_list(const struct ptl_conf_list *l, const char *s)
{
	const char *const *items = l->items;
	size_t i;

	for (i = 0; i < l->count; i++) {
		if (strcasecmp(items[i], s) == 0)
			return true;
	}
	return false;
}

static int
null_write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void
null_fail(struct null_job *j, int status, const char *what)
{
	j->status = status;
	(void)snprintf(j->reason, sizeof(j->reason), "%s: %s", what,
	               strerror(errno));
}

/* Pool thread. */
static void
null_work(void *arg)
{
	struct null_job *j = arg;
	char dir[4096], tmp[4200], final[4200], buf[65536];
	uint64_t off = 0;
	ssize_t n;
	int out, dfd;

	(void)snprintf(dir, sizeof(dir), "%s/%s%s%s", j->conf->dir, j->user,
	               j->folder[0] != '\0' ? "/" : "", j->folder);
	(void)mkdir(j->conf->dir, 0700);
	(void)snprintf(tmp, sizeof(tmp), "%s/%s", j->conf->dir, j->user);
	(void)mkdir(tmp, 0700);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		null_fail(j, PTL_STORAGE_TEMPFAIL, "mkdir");
		return;
	}
	(void)snprintf(tmp, sizeof(tmp), "%s/.tmp.%ld.%llu", dir,
	               (long)getpid(),
	               __atomic_add_fetch(&null_serial, 1, __ATOMIC_RELAXED));
	(void)snprintf(final, sizeof(final), "%s/%ld.%llu.eml", dir,
	               (long)getpid(),
	               __atomic_add_fetch(&null_serial, 1, __ATOMIC_RELAXED));
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		null_fail(j, PTL_STORAGE_TEMPFAIL, "open");
		return;
	}
	if (null_write_all(out, j->prefix, j->prefix_len) != 0)
		goto fail;
	while (off < j->size) {
		n = pread(j->fd, buf,
		          j->size - off < sizeof(buf) ? j->size - off
		                                      : sizeof(buf),
		          (off_t)off);
		if (n <= 0)
			goto fail;
		if (null_write_all(out, buf, (size_t)n) != 0)
			goto fail;
		off += (uint64_t)n;
	}
	if (fsync(out) != 0 || close(out) != 0) {
		out = -1;
		goto fail;
	}
	out = -1;
	if (rename(tmp, final) != 0)
		goto fail;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0) {
		if (dfd >= 0)
			close(dfd);
		null_fail(j, PTL_STORAGE_TEMPFAIL, "fsync dir");
		return;
	}
	close(dfd);
	j->status = PTL_STORAGE_OK;
	return;
fail:
	null_fail(j, PTL_STORAGE_TEMPFAIL, "write");
	if (out >= 0)
		close(out);
	(void)unlink(tmp);
}

static void
null_work_none(void *arg)
{
}

static void
null_done(void *arg)
{
	struct null_job *j = arg;
	struct ptl_storage_result res = {(enum ptl_storage_status)j->status,
	                                 j->reason};

	j->done(&res, j->arg);
	free(j->prefix);
	free(j);
}

static int
null_deliver(void *instance, const struct ptl_storage_delivery *d,
             ptl_storage_done_fn done, void *arg)
{
	const struct null_conf *conf = instance;
	struct null_job *j;

	if (strchr(d->user, '/') != NULL || d->user[0] == '.' ||
	    strlen(d->user) >= sizeof(j->user) ||
	    (d->folder != NULL &&
	     (strchr(d->folder, '/') != NULL || d->folder[0] == '.' ||
	      strlen(d->folder) >= sizeof(j->folder))))
		return PTL_ERROR;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return PTL_ERROR;
	j->conf = conf;
	strcpy(j->user, d->user);
	if (d->folder != NULL)
		strcpy(j->folder, d->folder);
	j->fd = d->fd;
	j->size = d->size;
	j->prefix = malloc(d->prefix_len + 1);
	if (j->prefix == NULL) {
		free(j);
		return PTL_ERROR;
	}
	if (d->prefix_len > 0)
		memcpy(j->prefix, d->prefix, d->prefix_len);
	j->prefix_len = d->prefix_len;
	j->done = done;
	j->arg = arg;
	if (null_in_list(&conf->fail_users, d->user)) {
		j->status = PTL_STORAGE_PERMFAIL;
		(void)snprintf(j->reason, sizeof(j->reason),
		               "mailbox disabled");
	} else if (null_in_list(&conf->tempfail_users, d->user)) {
		j->status = PTL_STORAGE_TEMPFAIL;
		(void)snprintf(j->reason, sizeof(j->reason), "disk trouble");
	} else {
		if (ptl_task_submit(null_work, null_done, j) != PTL_OK) {
			free(j->prefix);
			free(j);
			return PTL_ERROR;
		}
		return PTL_AGAIN;
	}
	/* Refusals still complete later, as the contract says. */
	if (ptl_task_submit(null_work_none, null_done, j) != PTL_OK) {
		free(j->prefix);
		free(j);
		return PTL_ERROR;
	}
	return PTL_AGAIN;
}

static int
null_open(void *instance, const char *user, unsigned flags,
          ptl_storage_open_fn done, void *arg)
{
	return PTL_ERROR;
}

static const struct ptl_storage_methods null_methods = {
    .version = PTL_STORAGE_VERSION,
    .deliver = null_deliver,
    .open = null_open,
};

static int
null_init_worker(struct ptl_instance *inst, struct ptl_error *err)
{
	return ptl_service_register(inst, PTL_STORAGE_SERVICE,
	                            PTL_STORAGE_VERSION, &null_methods,
	                            ptl_instance_conf(inst), err);
}

static const struct ptl_service_ref null_provides[] = {
    {PTL_STORAGE_SERVICE, PTL_STORAGE_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "null_storage",
    .version = "0",
    .description = "test storage writing deliveries to a directory",
    .license = "MIT",
    .provides = null_provides,
    .conf_keys = null_keys,
    .conf_size = sizeof(struct null_conf),
    .init_worker = null_init_worker,
};
