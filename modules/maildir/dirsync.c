/* SPDX-License-Identifier: MIT */
/* Group commit: one fsync of a directory covers every rename made before. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maildir.h"

/*
 * Pool threads delivering into the same new/ each need a directory fsync
 * after their rename. An fsync that *starts* after a rename completed
 * makes that rename durable, so while one thread syncs, the others queue
 * behind it and the next fsync covers all of them at once. A delivery is
 * reported only after an fsync that began after its own rename returned
 * success: the durability promise stays per message.
 */
struct dirsync_entry {
	struct dirsync_entry *next;
	char *path;
	unsigned users;   /* threads inside commit for this directory */
	uint64_t renamed; /* tickets handed out */
	uint64_t synced;  /* every ticket <= this one is durable */
	bool syncing;
};

struct maildir_dirsync {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct dirsync_entry *entries; /* few: at most one per pool thread */
};

struct maildir_dirsync *
maildir_dirsync_new(void)
{
	struct maildir_dirsync *ds = calloc(1, sizeof(*ds));

	if (ds == NULL)
		return NULL;
	if (pthread_mutex_init(&ds->lock, NULL) != 0) {
		free(ds);
		return NULL;
	}
	if (pthread_cond_init(&ds->changed, NULL) != 0) {
		pthread_mutex_destroy(&ds->lock);
		free(ds);
		return NULL;
	}
	return ds;
}

void
maildir_dirsync_free(struct maildir_dirsync *ds)
{
	if (ds == NULL)
		return;
	/* Entries exist only while a commit runs; none can be left here. */
	pthread_cond_destroy(&ds->changed);
	pthread_mutex_destroy(&ds->lock);
	free(ds);
}

static struct dirsync_entry *
dirsync_get(struct maildir_dirsync *ds, const char *path)
{
	struct dirsync_entry *e;

	for (e = ds->entries; e != NULL; e = e->next)
		if (strcmp(e->path, path) == 0)
			break;
	if (e == NULL) {
		e = calloc(1, sizeof(*e));
		if (e == NULL)
			return NULL;
		e->path = strdup(path);
		if (e->path == NULL) {
			free(e);
			return NULL;
		}
		e->next = ds->entries;
		ds->entries = e;
	}
	e->users++;
	return e;
}

static void
dirsync_put(struct maildir_dirsync *ds, struct dirsync_entry *e)
{
	struct dirsync_entry **pp;

	if (--e->users > 0)
		return;
	for (pp = &ds->entries; *pp != e; pp = &(*pp)->next)
		;
	*pp = e->next;
	free(e->path);
	free(e);
}

/*
 * Call right after the rename into @p path (whose open fd is @p dir_fd).
 * Returns 0 once that rename is durable, or an errno value.
 */
int
maildir_dirsync_commit(struct maildir_dirsync *ds, const char *path, int dir_fd)
{
	struct dirsync_entry *e;
	uint64_t ticket;
	int result = 0;

	pthread_mutex_lock(&ds->lock);
	e = dirsync_get(ds, path);
	if (e == NULL) {
		pthread_mutex_unlock(&ds->lock);
		/* No memory to coordinate: sync alone, still correct. */
		return fsync(dir_fd) == 0 ? 0 : errno;
	}
	ticket = ++e->renamed;
	while (e->synced < ticket) {
		uint64_t target;
		int rc;

		if (e->syncing) {
			pthread_cond_wait(&ds->changed, &ds->lock);
			continue;
		}
		e->syncing = true;
		target = e->renamed;
		pthread_mutex_unlock(&ds->lock);
		rc = fsync(dir_fd) == 0 ? 0 : errno;
		pthread_mutex_lock(&ds->lock);
		e->syncing = false;
		pthread_cond_broadcast(&ds->changed);
		if (rc != 0) {
			/* Waiters retry with their own fsync and see theirs. */
			result = rc;
			break;
		}
		if (target > e->synced)
			e->synced = target;
	}
	dirsync_put(ds, e);
	pthread_mutex_unlock(&ds->lock);
	return result;
}
