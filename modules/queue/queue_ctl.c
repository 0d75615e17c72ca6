/* SPDX-License-Identifier: MIT */
/* Requests from petrelctl (flush, retry, delete) read from ctl/. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue_int.h"

/*
 * petrelctl writes one small length-framed file per request into ctl/
 * (a dot-file renamed into place) and waits for it to disappear. The
 * runner learns of it through inotify (or the periodic rescan, or at its
 * start: requests made while it was down are not lost), reads it,
 * removes it and acts. Only the runner ever changes a message, so
 * petrelctl and deliveries never race on a file.
 */

#define CTL_REQUEST_MAX 4096
#define CTL_BATCH_MAX   1024

struct ctl_request {
	int req;
	char id[QUEUE_ID_SIZE];
};

struct ctl_scan {
	struct queue_runner *r;
	const char *qdir;
	struct ctl_request *reqs;
	size_t n;
};

static int
ctl_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
ctl_read_one(struct ctl_scan *s, int dfd, const char *name)
{
	char buf[CTL_REQUEST_MAX];
	ssize_t n;
	int fd;

	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		ptl_log(PTL_LOG_WARN,
		        "queue: cannot read a request in ctl/: "
		        "%s; removed",
		        strerror(errno));
		(void)unlinkat(dfd, name, 0);
		return;
	}
	n = read(fd, buf, sizeof(buf));
	(void)close(fd);
	/* Gone first: a bad request must not come back at every scan. */
	(void)unlinkat(dfd, name, 0);
	if (n <= 0 || (size_t)n == sizeof(buf) ||
	    queue_request_parse(buf, (size_t)n, &s->reqs[s->n].req,
	                        s->reqs[s->n].id) != 0) {
		ptl_log(PTL_LOG_WARN, "queue: ignored a malformed request in "
		                      "ctl/");
		return;
	}
	s->n++;
}

static void
ctl_scan_work(void *arg)
{
	struct ctl_scan *s = arg;
	char dir[4096], **names = NULL, **grown;
	size_t nnames = 0, cap = 0, i;
	struct dirent *de;
	DIR *d;

	if (!queue_path(dir, sizeof(dir), s->qdir, "ctl", NULL) ||
	    (d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL && nnames < CTL_BATCH_MAX) {
		if (de->d_name[0] == '.')
			continue;
		if (nnames == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(names, cap * sizeof(*names));
			if (grown == NULL)
				break;
			names = grown;
		}
		names[nnames] = strdup(de->d_name);
		if (names[nnames] != NULL)
			nnames++;
	}
	/* Names start with the time: requests run in the order made. */
	if (nnames > 0)
		qsort(names, nnames, sizeof(*names), ctl_name_cmp);
	s->reqs = calloc(nnames ? nnames : 1, sizeof(*s->reqs));
	for (i = 0; i < nnames; i++) {
		if (s->reqs != NULL)
			ctl_read_one(s, dirfd(d), names[i]);
		free(names[i]);
	}
	free(names);
	(void)closedir(d);
}

static void
ctl_flush_one(struct queue_runner *r, struct queue_msg *m, bool reset)
{
	size_t i;

	if (reset) {
		/* The backoff starts again from backoff_min. */
		for (i = 0; i < m->env.nrcpts; i++)
			if (m->rcpts[i].st.status == QUEUE_RCPT_DEFERRED)
				m->rcpts[i].st.attempts = 0;
	}
	queue_msg_flush(r, m);
}

static void
ctl_apply(struct queue_runner *r, const struct ctl_request *q)
{
	struct queue_msg *m = NULL;
	size_t i;

	if (q->id[0] != '\0')
		m = queue_msg_find(r, q->id);
	switch (q->req) {
	case QUEUE_REQ_FLUSH:
	case QUEUE_REQ_RETRY:
		if (q->id[0] == '\0') {
			ptl_log(PTL_LOG_INFO,
			        "queue: %s of every message "
			        "requested by petrelctl",
			        queue_request_name(q->req));
			for (i = 0; i < r->nbuckets; i++)
				for (m = r->buckets[i]; m != NULL;
				     m = m->hash_next)
					ctl_flush_one(
					    r, m, q->req == QUEUE_REQ_RETRY);
		} else if (m != NULL) {
			ptl_log(PTL_LOG_INFO,
			        "queue: %s: %s requested by "
			        "petrelctl",
			        q->id, queue_request_name(q->req));
			ctl_flush_one(r, m, q->req == QUEUE_REQ_RETRY);
		} else {
			ptl_log(PTL_LOG_NOTICE,
			        "queue: %s: %s requested by "
			        "petrelctl, but no such "
			        "message is queued",
			        q->id, queue_request_name(q->req));
		}
		break;
	case QUEUE_REQ_DELETE:
		if (q->id[0] == '\0')
			break;
		ptl_log(PTL_LOG_INFO,
		        "queue: %s: delete requested by "
		        "petrelctl",
		        q->id);
		if (m == NULL) {
			queue_remove_id(r, q->id);
		} else {
			m->deleted = true;
			queue_msg_settle(r, m);
		}
		break;
	default:
		break;
	}
}

static void
ctl_scan_done(void *arg)
{
	struct ctl_scan *s = arg;
	struct queue_runner *r = s->r;
	size_t i;

	r->ctl_running = false;
	for (i = 0; i < s->n; i++)
		ctl_apply(r, &s->reqs[i]);
	free(s->reqs);
	free(s);
	queue_dispatch(r);
	if (r->ctl_again) {
		r->ctl_again = false;
		queue_ctl_scan(r);
	}
}

void
queue_ctl_scan(struct queue_runner *r)
{
	struct ctl_scan *s;

	if (r->stopping)
		return;
	if (r->ctl_running) {
		r->ctl_again = true;
		return;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return;
	s->r = r;
	s->qdir = r->spool.qdir;
	r->ctl_running = true;
	queue_task(r, ctl_scan_work, ctl_scan_done, s);
}
