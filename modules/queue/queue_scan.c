/* SPDX-License-Identifier: MIT */
/* Finding messages on disk: the startup scan, rescans, inotify, loading. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "queue_int.h"

#define QUEUE_LOAD_BATCH 128
/* Temporary files older than this were left by a crashed writer. */
#define QUEUE_TMP_STALE_S 3600
#define QUEUE_INOTIFY_BUF 16384

/* ---- loading messages ---- */

struct queue_load {
	struct queue_runner *r;
	size_t n;
	char (*ids)[QUEUE_ID_SIZE];
	struct queue_msg **msgs; /* NULL where nothing was loaded */
	const char *qdir;
};

static void
queue_domain_of(struct queue_msg *m, size_t i)
{
	char *addr = (char *)m->env.rcpts[i].address, *at, *p;

	at = strrchr(addr, '@');
	if (at == NULL) {
		m->rcpts[i].domain = "";
		return;
	}
	/* Domains are case-insensitive: lower case makes one key each. */
	for (p = at + 1; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (p > at + 1 && p[-1] == '.')
		p[-1] = '\0';
	m->rcpts[i].domain = at + 1;
}

static struct queue_msg *
queue_load_one(const char *qdir, const char *id)
{
	char why[QUEUE_WHY_MAX], qwhy[QUEUE_WHY_MAX];
	enum queue_read_status rs;
	struct queue_rcpt_state *st;
	uint64_t valid, size;
	struct queue_msg *m;
	size_t i;

	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	rs = queue_msg_read(qdir, id, &m->env, why, sizeof(why));
	if (rs == QUEUE_READ_CORRUPT) {
		if (queue_quarantine(qdir, id, qwhy, sizeof(qwhy)) == 0)
			ptl_log(PTL_LOG_ERROR,
			        "queue: %s: corrupt queue file (%s); moved "
			        "to corrupt/",
			        id, why);
		else
			ptl_log(PTL_LOG_ERROR,
			        "queue: %s: corrupt queue file (%s); cannot "
			        "move it aside: %s",
			        id, why, qwhy);
	} else if (rs == QUEUE_READ_ERROR) {
		ptl_log(PTL_LOG_ERROR, "queue: %s: cannot read: %s", id, why);
	}
	if (rs != QUEUE_READ_OK) {
		free(m);
		return NULL;
	}
	m->rcpts = calloc(m->env.nrcpts, sizeof(*m->rcpts));
	st = calloc(m->env.nrcpts, sizeof(*st));
	if (m->rcpts == NULL || st == NULL ||
	    queue_state_load(qdir, id, st, m->env.nrcpts, false, &valid, &size,
	                     why, sizeof(why)) != QUEUE_READ_OK) {
		if (m->rcpts != NULL && st != NULL)
			ptl_log(PTL_LOG_ERROR,
			        "queue: %s: cannot read its "
			        "state: %s",
			        id, why);
		free(st);
		queue_msg_free(m);
		return NULL;
	}
	if (valid < size) {
		/*
		 * A crash cut the last append short: it never counted. Cut
		 * it off now, before any job of this message appends.
		 */
		ptl_log(PTL_LOG_NOTICE,
		        "queue: %s: state log has %llu bytes of torn or "
		        "corrupt tail; ignored and cut off",
		        id, (unsigned long long)(size - valid));
		if (queue_state_truncate(qdir, id, valid, why, sizeof(why)) !=
		    0)
			ptl_log(PTL_LOG_ERROR, "queue: %s: %s", id, why);
	}
	for (i = 0; i < m->env.nrcpts; i++) {
		m->rcpts[i].st = st[i];
		queue_domain_of(m, i);
	}
	free(st);
	m->received_ms = m->env.received * 1000;
	m->heap_index = SIZE_MAX;
	return m;
}

static void
queue_load_work(void *arg)
{
	struct queue_load *ld = arg;
	size_t i;

	for (i = 0; i < ld->n; i++)
		ld->msgs[i] = queue_load_one(ld->qdir, ld->ids[i]);
}

static void
queue_load_done(void *arg)
{
	struct queue_load *ld = arg;
	struct queue_runner *r = ld->r;
	struct queue_msg *m;
	size_t i;

	r->load_running = false;
	for (i = 0; i < ld->n; i++) {
		m = ld->msgs[i];
		if (m == NULL)
			continue;
		if (queue_msg_find(r, m->env.id) != NULL || r->stopping ||
		    !queue_msg_insert(r, m)) {
			queue_msg_free(m);
			continue;
		}
		queue_msg_settle(r, m);
	}
	free(ld->ids);
	free(ld->msgs);
	free(ld);
	queue_load_next(r);
	queue_dispatch(r);
}

void
queue_load_next(struct queue_runner *r)
{
	struct queue_load *ld;
	size_t n, room;

	if (r->load_running || r->load_len == 0 || r->stopping)
		return;
	room = r->nmsgs < (size_t)r->conf->max_active
	           ? (size_t)r->conf->max_active - r->nmsgs
	           : 0;
	if (room == 0) {
		/* The rest waits on disk; a rescan finds it later. */
		r->full = true;
		r->load_len = 0;
		return;
	}
	n = r->load_len < QUEUE_LOAD_BATCH ? r->load_len : QUEUE_LOAD_BATCH;
	if (n > room)
		n = room;
	ld = calloc(1, sizeof(*ld));
	if (ld == NULL)
		return;
	ld->ids = calloc(n, sizeof(*ld->ids));
	ld->msgs = calloc(n, sizeof(*ld->msgs));
	if (ld->ids == NULL || ld->msgs == NULL) {
		free(ld->ids);
		free(ld->msgs);
		free(ld);
		return;
	}
	ld->r = r;
	ld->n = n;
	ld->qdir = r->spool.qdir;
	memcpy(ld->ids, r->load_ids + (r->load_len - n), n * sizeof(*ld->ids));
	r->load_len -= n;
	r->load_running = true;
	queue_task(r, queue_load_work, queue_load_done, ld);
}

static void
queue_load_add(struct queue_runner *r, const char *id)
{
	char(*grown)[QUEUE_ID_SIZE];
	size_t cap;

	if (!queue_id_valid(id) || queue_msg_find(r, id) != NULL)
		return;
	if (r->load_len == r->load_cap) {
		cap = r->load_cap ? r->load_cap * 2 : 256;
		grown = realloc(r->load_ids, cap * sizeof(*grown));
		if (grown == NULL) {
			r->full = true; /* the next rescan brings it */
			return;
		}
		r->load_ids = grown;
		r->load_cap = cap;
	}
	queue_copy_id(r->load_ids[r->load_len++], id);
}

/* ---- scanning the spool ---- */

struct queue_scan {
	struct queue_runner *r;
	const char *qdir;
	char (*ids)[QUEUE_ID_SIZE];
	size_t n, cap;
	bool failed;
	char why[QUEUE_WHY_MAX];
};

static void
queue_scan_add(struct queue_scan *s, const char *name)
{
	char(*grown)[QUEUE_ID_SIZE];
	size_t cap;

	if (s->n == s->cap) {
		cap = s->cap ? s->cap * 2 : 1024;
		grown = realloc(s->ids, cap * sizeof(*grown));
		if (grown == NULL) {
			s->failed = true;
			return;
		}
		s->ids = grown;
		s->cap = cap;
	}
	queue_copy_id(s->ids[s->n++], name);
}

/* Remove what crashes leave behind: stale tmp/ files, orphaned logs. */
static void
queue_scan_clean(const char *qdir)
{
	char dir[4096], path[4096];
	struct dirent *de;
	struct stat sb;
	time_t now = time(NULL);
	DIR *d;

	if (queue_path(dir, sizeof(dir), qdir, "tmp", NULL) &&
	    (d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.' ||
			    fstatat(dirfd(d), de->d_name, &sb,
			            AT_SYMLINK_NOFOLLOW) != 0)
				continue;
			if (now - sb.st_mtime > QUEUE_TMP_STALE_S)
				(void)unlinkat(dirfd(d), de->d_name, 0);
		}
		(void)closedir(d);
	}
	if (queue_path(dir, sizeof(dir), qdir, "state", NULL) &&
	    (d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.' ||
			    !queue_id_valid(de->d_name) ||
			    !queue_path(path, sizeof(path), qdir, "msg",
			                de->d_name))
				continue;
			if (access(path, F_OK) != 0 && errno == ENOENT)
				(void)unlinkat(dirfd(d), de->d_name, 0);
		}
		(void)closedir(d);
	}
}

static void
queue_scan_work(void *arg)
{
	struct queue_scan *s = arg;
	char dir[4096];
	struct dirent *de;
	DIR *d;

	queue_scan_clean(s->qdir);
	if (!queue_path(dir, sizeof(dir), s->qdir, "msg", NULL) ||
	    (d = opendir(dir)) == NULL) {
		s->failed = true;
		(void)snprintf(s->why, sizeof(s->why), "cannot read %.200s: %s",
		               dir, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL && !s->failed) {
		if (de->d_name[0] == '.')
			continue;
		if (!queue_id_valid(de->d_name)) {
			char qwhy[QUEUE_WHY_MAX];

			ptl_log(PTL_LOG_WARN, "queue: msg/ holds a file with "
			                      "a name that is no queue id; "
			                      "moving it to corrupt/");
			(void)queue_quarantine(s->qdir, de->d_name, qwhy,
			                       sizeof(qwhy));
			continue;
		}
		queue_scan_add(s, de->d_name);
	}
	(void)closedir(d);
}

static int
queue_id_cmp(const void *a, const void *b)
{
	/* Newest first in the array: queue_load_next takes from the end,
	 * so the oldest messages load first. */
	return -strcmp(a, b);
}

static void
queue_scan_done(void *arg)
{
	struct queue_scan *s = arg;
	struct queue_runner *r = s->r;
	size_t i;

	r->scan_running = false;
	if (s->failed && s->why[0] != '\0')
		ptl_log(PTL_LOG_ERROR, "queue: scan failed: %s", s->why);
	if (s->n > 0)
		qsort(s->ids, s->n, sizeof(*s->ids), queue_id_cmp);
	for (i = 0; i < s->n && !r->stopping; i++)
		queue_load_add(r, s->ids[i]);
	free(s->ids);
	free(s);
	queue_load_next(r);
	if (r->scan_again) {
		r->scan_again = false;
		queue_scan_soon(r, 0);
	}
}

void
queue_scan_start(struct queue_runner *r)
{
	struct queue_scan *s;

	if (r->stopping)
		return;
	if (r->scan_running) {
		r->scan_again = true;
		return;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return;
	s->r = r;
	s->qdir = r->spool.qdir;
	r->scan_running = true;
	queue_task(r, queue_scan_work, queue_scan_done, s);
}

void
queue_scan_fire(struct ptl_timer *t, void *arg)
{
	struct queue_runner *r = arg;

	queue_scan_start(r);
	queue_ctl_scan(r);
	ptl_timer_start(t, r->conf->scan_interval);
}

void
queue_scan_soon(struct queue_runner *r, int64_t delay)
{
	ptl_timer_start(r->scan_timer, delay);
}

/* ---- inotify: new messages and requests ---- */

static void
queue_inotify_read(struct ptl_io *io, unsigned events, void *arg)
{
	struct queue_runner *r = arg;
	char buf[QUEUE_INOTIFY_BUF]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	bool added = false;
	ssize_t n;
	size_t off;

	for (;;) {
		n = read(r->ino_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (off = 0; off + sizeof(*ev) <= (size_t)n;
		     off += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)(buf + off);
			if (ev->mask & IN_Q_OVERFLOW) {
				/* Events were lost: look at everything. */
				queue_scan_start(r);
				queue_ctl_scan(r);
				continue;
			}
			if (ev->len == 0 || ev->name[0] == '.')
				continue;
			if (ev->wd == r->wd_ctl) {
				queue_ctl_scan(r);
			} else if (ev->wd == r->wd_msg && !r->stopping) {
				queue_load_add(r, ev->name);
				added = true;
			}
		}
	}
	if (added)
		queue_load_next(r);
}

int
queue_inotify_start(struct queue_runner *r)
{
	char path[4096];

	r->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (r->ino_fd < 0)
		return -1;
	if (!queue_path(path, sizeof(path), r->spool.qdir, "msg", NULL) ||
	    (r->wd_msg = inotify_add_watch(r->ino_fd, path, IN_MOVED_TO)) < 0)
		return -1;
	if (!queue_path(path, sizeof(path), r->spool.qdir, "ctl", NULL) ||
	    (r->wd_ctl = inotify_add_watch(r->ino_fd, path, IN_MOVED_TO)) < 0)
		return -1;
	r->ino_io = ptl_io_add(r->ino_fd, PTL_IO_READ, queue_inotify_read, r);
	return r->ino_io != NULL ? 0 : -1;
}
