/* SPDX-License-Identifier: MIT */
/* Test module: a tiny "storage" service with failure injection, for POP3 tests.
 */

/*
 * Config: {"dir": "/abs/path"}. A user's mailbox is DIR/USER/; every file
 * not starting with "." is a message whose uid is its name, in name
 * order. Marker files make operations fail:
 *   .tempfail_open .permfail_open .tempfail_read .permfail_read
 *   .tempfail_expunge .bad_uids (uids with a space)
 * The lock is flock() on DIR/USER/.lock. Completions come from
 * ptl_defer(), never inside the call, as the contract requires. Plain
 * blocking file calls are fine for a test double.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <petrel/petrel.h>

struct fake_storage_conf {
	const char *dir;
};

static const struct ptl_conf_key fake_storage_keys[] = {
    {
        .name = "dir",
        .type = PTL_CONF_STRING,
        .flags = PTL_CONF_REQUIRED,
        .offset = offsetof(struct fake_storage_conf, dir),
        .doc = "directory holding one directory per user",
    },
    {NULL},
};

struct ptl_mailbox {
	char *path;
	int lock_fd;
	size_t count;
	char **names;
	struct ptl_storage_msg *msgs;
};

enum fake_op { FAKE_DELIVER, FAKE_OPEN, FAKE_READ, FAKE_EXPUNGE };

struct fake_job {
	enum fake_op op;
	struct ptl_storage_result res;
	char reason[256];
	struct ptl_mailbox *mb;
	int fd;
	void *done;
	void *arg;
};

static bool
fake_marker(const char *path, const char *name)
{
	char p[4096];

	(void)snprintf(p, sizeof(p), "%s/%s", path, name);
	return access(p, F_OK) == 0;
}

static void
fake_job_run(void *arg)
{
	struct fake_job *j = arg;

	j->res.reason = j->reason;
	switch (j->op) {
	case FAKE_DELIVER:
		((ptl_storage_done_fn)j->done)(&j->res, j->arg);
		break;
	case FAKE_OPEN:
		((ptl_storage_open_fn)j->done)(&j->res, j->mb, j->arg);
		break;
	case FAKE_READ:
		((ptl_storage_read_fn)j->done)(&j->res, j->fd, j->arg);
		break;
	case FAKE_EXPUNGE:
		((ptl_storage_done_fn)j->done)(&j->res, j->arg);
		break;
	}
	free(j);
}

static int
fake_job_submit(struct fake_job *j)
{
	if (ptl_defer(fake_job_run, j) != PTL_OK) {
		free(j);
		return PTL_ERROR;
	}
	return PTL_AGAIN;
}

static struct fake_job *
fake_job_new(enum fake_op op, void *done, void *arg)
{
	struct fake_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	j->op = op;
	j->done = done;
	j->arg = arg;
	j->fd = -1;
	return j;
}

static void
fake_fail(struct fake_job *j, enum ptl_storage_status st, const char *why)
{
	j->res.status = st;
	(void)snprintf(j->reason, sizeof(j->reason), "%s", why);
}

static bool
fake_user_ok(const char *user)
{
	return user[0] != '\0' && user[0] != '.' && strchr(user, '/') == NULL;
}

static int
fake_deliver(void *instance, const struct ptl_storage_delivery *d,
             ptl_storage_done_fn done, void *arg)
{
	const struct fake_storage_conf *conf = ptl_instance_conf(instance);
	struct fake_job *j = fake_job_new(FAKE_DELIVER, (void *)done, arg);
	static unsigned serial;
	char path[4096], buf[65536];
	uint64_t off = 0;
	int fd;

	if (j == NULL)
		return PTL_ERROR;
	if (!fake_user_ok(d->user)) {
		fake_fail(j, PTL_STORAGE_PERMFAIL, "bad user");
		return fake_job_submit(j);
	}
	(void)snprintf(path, sizeof(path), "%s/%s", conf->dir, d->user);
	(void)mkdir(path, 0700);
	(void)snprintf(path, sizeof(path), "%s/%s/m%010ld.%06u.%d", conf->dir,
	               d->user, (long)ptl_wall_time(), ++serial, (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fake_fail(j, PTL_STORAGE_TEMPFAIL, strerror(errno));
		return fake_job_submit(j);
	}
	if (d->prefix_len > 0 &&
	    write(fd, d->prefix, d->prefix_len) != (ssize_t)d->prefix_len)
		fake_fail(j, PTL_STORAGE_TEMPFAIL, "write");
	while (j->res.status == PTL_STORAGE_OK && off < d->size) {
		size_t want =
		    d->size - off < sizeof(buf) ? d->size - off : sizeof(buf);
		ssize_t n = pread(d->fd, buf, want, (off_t)off);

		if (n <= 0 || write(fd, buf, (size_t)n) != n) {
			fake_fail(j, PTL_STORAGE_TEMPFAIL, "copy");
			break;
		}
		off += (uint64_t)n;
	}
	close(fd);
	if (j->res.status != PTL_STORAGE_OK)
		unlink(path);
	return fake_job_submit(j);
}

static int
fake_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
fake_mailbox_free(struct ptl_mailbox *mb)
{
	size_t i;

	if (mb == NULL)
		return;
	for (i = 0; i < mb->count; i++) {
		free(mb->names[i]);
		free((char *)mb->msgs[i].uid);
	}
	free(mb->names);
	free(mb->msgs);
	if (mb->lock_fd >= 0)
		close(mb->lock_fd);
	free(mb->path);
	free(mb);
}

static int
fake_list(struct ptl_mailbox *mb, bool bad_uids)
{
	DIR *d = opendir(mb->path);
	struct dirent *e;
	size_t cap = 0, i;

	if (d == NULL)
		return PTL_ERROR;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (mb->count == cap) {
			char **n;

			cap = cap ? cap * 2 : 16;
			n = realloc(mb->names, cap * sizeof(*n));
			if (n == NULL)
				break;
			mb->names = n;
		}
		mb->names[mb->count] = strdup(e->d_name);
		if (mb->names[mb->count] == NULL)
			break;
		mb->count++;
	}
	closedir(d);
	if (mb->count > 0)
		qsort(mb->names, mb->count, sizeof(*mb->names), fake_name_cmp);
	mb->msgs = calloc(mb->count + 1, sizeof(*mb->msgs));
	if (mb->msgs == NULL)
		return PTL_ERROR;
	for (i = 0; i < mb->count; i++) {
		char p[4096];
		struct stat sb;

		(void)snprintf(p, sizeof(p), "%s/%s", mb->path, mb->names[i]);
		if (stat(p, &sb) != 0)
			return PTL_ERROR;
		mb->msgs[i].size = (uint64_t)sb.st_size;
		if (bad_uids) {
			char *u = malloc(strlen(mb->names[i]) + 3);

			if (u != NULL)
				sprintf(u, "x %s", mb->names[i]);
			mb->msgs[i].uid = u;
		} else {
			mb->msgs[i].uid = strdup(mb->names[i]);
		}
		if (mb->msgs[i].uid == NULL)
			return PTL_ERROR;
	}
	return PTL_OK;
}

static int
fake_open(void *instance, const char *user, unsigned flags,
          ptl_storage_open_fn done, void *arg)
{
	const struct fake_storage_conf *conf = ptl_instance_conf(instance);
	struct fake_job *j = fake_job_new(FAKE_OPEN, (void *)done, arg);
	struct ptl_mailbox *mb;
	char lock[4096];

	if (j == NULL)
		return PTL_ERROR;
	mb = calloc(1, sizeof(*mb));
	if (mb == NULL) {
		free(j);
		return PTL_ERROR;
	}
	mb->lock_fd = -1;
	if (!fake_user_ok(user) ||
	    asprintf(&mb->path, "%s/%s", conf->dir, user) < 0) {
		mb->path = NULL;
		fake_mailbox_free(mb);
		fake_fail(j, PTL_STORAGE_PERMFAIL, "bad user");
		return fake_job_submit(j);
	}
	if (access(mb->path, F_OK) != 0 ||
	    fake_marker(mb->path, ".permfail_open")) {
		fake_mailbox_free(mb);
		fake_fail(j, PTL_STORAGE_PERMFAIL, "no mailbox");
		return fake_job_submit(j);
	}
	if (fake_marker(mb->path, ".tempfail_open")) {
		fake_mailbox_free(mb);
		fake_fail(j, PTL_STORAGE_TEMPFAIL, "injected failure");
		return fake_job_submit(j);
	}
	if (flags & PTL_STORAGE_LOCK) {
		(void)snprintf(lock, sizeof(lock), "%s/.lock", mb->path);
		mb->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (mb->lock_fd < 0 ||
		    flock(mb->lock_fd, LOCK_EX | LOCK_NB) != 0) {
			bool busy = mb->lock_fd >= 0 && errno == EWOULDBLOCK;

			fake_mailbox_free(mb);
			fake_fail(
			    j, busy ? PTL_STORAGE_LOCKED : PTL_STORAGE_TEMPFAIL,
			    busy ? "locked" : "lock");
			return fake_job_submit(j);
		}
	}
	if (fake_list(mb, fake_marker(mb->path, ".bad_uids")) != PTL_OK) {
		fake_mailbox_free(mb);
		fake_fail(j, PTL_STORAGE_TEMPFAIL, "list");
		return fake_job_submit(j);
	}
	j->mb = mb;
	return fake_job_submit(j);
}

static size_t
fake_count(struct ptl_mailbox *mb)
{
	return mb->count;
}

static const struct ptl_storage_msg *
fake_message(struct ptl_mailbox *mb, size_t index)
{
	return index < mb->count ? &mb->msgs[index] : NULL;
}

static int
fake_read(struct ptl_mailbox *mb, size_t index, ptl_storage_read_fn done,
          void *arg)
{
	struct fake_job *j = fake_job_new(FAKE_READ, (void *)done, arg);
	char p[4096];

	if (j == NULL)
		return PTL_ERROR;
	if (index >= mb->count)
		fake_fail(j, PTL_STORAGE_PERMFAIL, "no such message");
	else if (fake_marker(mb->path, ".tempfail_read"))
		fake_fail(j, PTL_STORAGE_TEMPFAIL, "injected failure");
	else if (fake_marker(mb->path, ".permfail_read"))
		fake_fail(j, PTL_STORAGE_PERMFAIL, "injected failure");
	if (j->res.status == PTL_STORAGE_OK) {
		(void)snprintf(p, sizeof(p), "%s/%s", mb->path,
		               mb->names[index]);
		j->fd = open(p, O_RDONLY | O_CLOEXEC);
		if (j->fd < 0)
			fake_fail(j, PTL_STORAGE_TEMPFAIL, strerror(errno));
	}
	return fake_job_submit(j);
}

static int
fake_expunge(struct ptl_mailbox *mb, const size_t *indexes, size_t n,
             ptl_storage_done_fn done, void *arg)
{
	struct fake_job *j = fake_job_new(FAKE_EXPUNGE, (void *)done, arg);
	char p[4096];
	size_t i;

	if (j == NULL)
		return PTL_ERROR;
	if (fake_marker(mb->path, ".tempfail_expunge")) {
		fake_fail(j, PTL_STORAGE_TEMPFAIL, "injected failure");
		return fake_job_submit(j);
	}
	for (i = 0; i < n; i++) {
		if (indexes[i] >= mb->count)
			continue;
		(void)snprintf(p, sizeof(p), "%s/%s", mb->path,
		               mb->names[indexes[i]]);
		if (unlink(p) != 0 && errno != ENOENT)
			fake_fail(j, PTL_STORAGE_TEMPFAIL, strerror(errno));
	}
	return fake_job_submit(j);
}

static void
fake_close(struct ptl_mailbox *mb)
{
	fake_mailbox_free(mb);
}

static int
fake_quota(void *instance, const char *user, ptl_storage_quota_fn done,
           void *arg)
{
	return PTL_ERROR;
}

static const struct ptl_storage_methods fake_storage_methods = {
    .version = PTL_STORAGE_VERSION,
    .deliver = fake_deliver,
    .open = fake_open,
    .count = fake_count,
    .message = fake_message,
    .read = fake_read,
    .expunge = fake_expunge,
    .close = fake_close,
    .quota = fake_quota,
};

static int
fake_storage_init_master(struct ptl_instance *inst, struct ptl_error *err)
{
	return ptl_service_register(inst, PTL_STORAGE_SERVICE,
	                            PTL_STORAGE_VERSION, &fake_storage_methods,
	                            inst, err);
}

static const struct ptl_service_ref fake_storage_provides[] = {
    {PTL_STORAGE_SERVICE, PTL_STORAGE_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "pop3_fake_storage",
    .version = "1.0",
    .description = "test storage service with failure injection",
    .license = "MIT",
    .provides = fake_storage_provides,
    .conf_keys = fake_storage_keys,
    .conf_size = sizeof(struct fake_storage_conf),
    .init_master = fake_storage_init_master,
};
