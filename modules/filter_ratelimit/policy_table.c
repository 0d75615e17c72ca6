/* SPDX-License-Identifier: MIT */
/* A fixed-size hash table in memory shared by every process of a server. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <petrel/log.h>

#include "policy_net.h"
#include "policy_table.h"

#define TABLE_MAGIC       "PTLPOLT"
#define TABLE_VERSION     1u
#define TABLE_BYTE_ORDER  0x0102030405060708ull
#define TABLE_HEADER_SIZE 4096u
#define TABLE_MAX_STRIPES 64u
/* Stripes get about this many slots each (fewer stripes in small tables). */
#define TABLE_STRIPE_SLOTS 1024u

/* First page of every table; in a file, native byte order (checked). */
struct policy_table_header {
	char magic[8];
	uint32_t version;
	uint32_t slot_size;
	uint64_t byte_order;
	uint64_t nslots;
	uint64_t nstripes;
	uint64_t hash_key[4];
	char kind[16];
	uint64_t evictions;  /* __atomic */
	uint64_t recoveries; /* __atomic */
};

_Static_assert(sizeof(struct policy_slot) == 64, "slot is one cache line");
_Static_assert(sizeof(struct policy_table_header) <= TABLE_HEADER_SIZE,
               "header fits its page");

static void
table_geometry(uint64_t want, uint64_t *nstripes_out, uint64_t *per_out)
{
	uint64_t nstripes;

	if (want < POLICY_TABLE_WINDOW)
		want = POLICY_TABLE_WINDOW;
	if (want > POLICY_TABLE_MAX_SLOTS)
		want = POLICY_TABLE_MAX_SLOTS;
	nstripes = want / TABLE_STRIPE_SLOTS;
	if (nstripes < 1)
		nstripes = 1;
	if (nstripes > TABLE_MAX_STRIPES)
		nstripes = TABLE_MAX_STRIPES;
	*nstripes_out = nstripes;
	*per_out = (want + nstripes - 1) / nstripes;
}

static size_t
table_round(size_t n, size_t to)
{
	return (n + to - 1) / to * to;
}

static void
table_header_fill(struct policy_table_header *h, uint64_t nstripes,
                  uint64_t per, const char *kind, const uint64_t key[4])
{
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, TABLE_MAGIC, sizeof(TABLE_MAGIC));
	h->version = TABLE_VERSION;
	h->slot_size = (uint32_t)sizeof(struct policy_slot);
	h->byte_order = TABLE_BYTE_ORDER;
	h->nslots = nstripes * per;
	h->nstripes = nstripes;
	memcpy(h->hash_key, key, sizeof(h->hash_key));
	(void)snprintf(h->kind, sizeof(h->kind), "%s", kind);
}

/* The handle of a mapping whose header is already in place. */
static struct policy_table *
table_handle(void *map, size_t map_size, size_t slots_offset, int fd)
{
	struct policy_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->map = map;
	t->map_size = map_size;
	t->hdr = map;
	t->fd = fd;
	t->nslots = t->hdr->nslots;
	t->nstripes = t->hdr->nstripes;
	t->per_stripe = t->nslots / t->nstripes;
	t->window = t->per_stripe < POLICY_TABLE_WINDOW
	                ? (unsigned)t->per_stripe
	                : POLICY_TABLE_WINDOW;
	t->slots = (struct policy_slot *)((char *)map + slots_offset);
	memcpy(t->hash_key, t->hdr->hash_key, sizeof(t->hash_key));
	return t;
}

int
policy_table_anon(uint64_t nslots, const char *kind, struct policy_table **out,
                  struct ptl_error *err)
{
	pthread_mutexattr_t attr;
	uint64_t nstripes, per, key[4];
	size_t locks_size, size;
	struct policy_table *t;
	void *map;
	uint64_t i;
	int rc;

	*out = NULL;
	table_geometry(nslots, &nstripes, &per);
	if (policy_random(key, sizeof(key), err) != PTL_OK)
		return PTL_ERROR;
	locks_size = table_round(nstripes * sizeof(pthread_mutex_t), 64);
	size = TABLE_HEADER_SIZE + locks_size +
	       (size_t)(nstripes * per) * sizeof(struct policy_slot);
	map = mmap(NULL, size, PROT_READ | PROT_WRITE,
	           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return ptl_error_set_errno(err, errno,
		                           "cannot map a shared table of %zu "
		                           "bytes",
		                           size);
	table_header_fill(map, nstripes, per, kind, key);
	t = table_handle(map, size, TABLE_HEADER_SIZE + locks_size, -1);
	if (t == NULL) {
		munmap(map, size);
		return ptl_error_set(err, "out of memory");
	}
	t->locks = (pthread_mutex_t *)((char *)map + TABLE_HEADER_SIZE);
	if (pthread_mutexattr_init(&attr) != 0)
		goto fail;
	/* Shared by the workers; robust: a worker killed while it holds a
	 * stripe must not stall the others for good. */
	rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	if (rc == 0)
		rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	for (i = 0; rc == 0 && i < nstripes; i++)
		rc = pthread_mutex_init(&t->locks[i], &attr);
	(void)pthread_mutexattr_destroy(&attr);
	if (rc != 0)
		goto fail;
	*out = t;
	return PTL_OK;
fail:
	policy_table_free(t);
	return ptl_error_set(err, "cannot set up the table's locks");
}

/* ---- locks ---------------------------------------------------------- */

static int
table_fcntl(int fd, short type, off_t start, off_t len)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = start;
	fl.l_len = len;
	while (fcntl(fd, type == F_UNLCK ? F_SETLK : F_SETLKW, &fl) < 0) {
		if (errno != EINTR)
			return PTL_ERROR;
	}
	return PTL_OK;
}

/* Byte 0 of a file guards its set-up; byte 1 + s guards stripe s. */
#define TABLE_LOCK_SETUP     0
#define TABLE_LOCK_STRIPE(s) ((off_t)(1 + (s)))

int
policy_table_lock(struct policy_table *t, uint64_t stripe,
                  struct ptl_error *err)
{
	int rc;

	if (t->fd >= 0) {
		if (table_fcntl(t->fd, F_WRLCK, TABLE_LOCK_STRIPE(stripe), 1) !=
		    PTL_OK)
			return ptl_error_set_errno(err, errno,
			                           "cannot lock the %s table",
			                           t->hdr->kind);
		return PTL_OK;
	}
	rc = pthread_mutex_lock(&t->locks[stripe]);
	if (rc == EOWNERDEAD) {
		/*
		 * The holder died in the middle of an update of one slot:
		 * at worst that slot holds a half-written count, which is
		 * no worse than a lost update. Carry on with it.
		 */
		(void)pthread_mutex_consistent(&t->locks[stripe]);
		__atomic_fetch_add(&t->hdr->recoveries, 1, __ATOMIC_RELAXED);
		ptl_log(PTL_LOG_WARN,
		        "%s: a process died holding a table lock; recovered",
		        t->hdr->kind);
		return PTL_OK;
	}
	if (rc != 0)
		return ptl_error_set_errno(err, rc, "cannot lock the %s table",
		                           t->hdr->kind);
	return PTL_OK;
}

void
policy_table_unlock(struct policy_table *t, uint64_t stripe)
{
	if (t->fd >= 0)
		(void)table_fcntl(t->fd, F_UNLCK, TABLE_LOCK_STRIPE(stripe), 1);
	else
		(void)pthread_mutex_unlock(&t->locks[stripe]);
}

/* ---- slots ---------------------------------------------------------- */

static struct policy_slot *
table_find(struct policy_table *t, const uint64_t key[2], int64_t now,
           bool create, bool *fresh_out)
{
	uint64_t stripe = key[0] % t->nstripes;
	struct policy_slot *base = t->slots + stripe * t->per_stripe;
	struct policy_slot *s, *free_slot = NULL, *oldest = NULL;
	uint64_t start = key[1] % t->per_stripe;
	unsigned i;

	*fresh_out = false;
	for (i = 0; i < t->window; i++) {
		s = &base[(start + i) % t->per_stripe];
		if (s->expires <= now) {
			if (free_slot == NULL)
				free_slot = s;
			continue;
		}
		if (s->key[0] == key[0] && s->key[1] == key[1])
			return s;
		if (oldest == NULL || s->expires < oldest->expires)
			oldest = s;
	}
	if (!create)
		return NULL;
	if (free_slot == NULL) {
		free_slot = oldest;
		__atomic_fetch_add(&t->hdr->evictions, 1, __ATOMIC_RELAXED);
	}
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->key[0] = key[0];
	free_slot->key[1] = key[1];
	*fresh_out = true;
	return free_slot;
}

void
policy_table_key(const struct policy_table *t, const void *data, size_t len,
                 uint64_t key_out[2])
{
	policy_fingerprint(t->hash_key, data, len, key_out);
}

int
policy_table_update(struct policy_table *t, const uint64_t key[2], int64_t now,
                    bool create, policy_update_fn fn, void *arg,
                    struct ptl_error *err)
{
	uint64_t stripe = key[0] % t->nstripes;
	struct policy_slot *s;
	bool fresh;

	if (policy_table_lock(t, stripe, err) != PTL_OK)
		return PTL_ERROR;
	s = table_find(t, key, now, create, &fresh);
	if (s != NULL)
		fn(s, fresh, arg);
	policy_table_unlock(t, stripe);
	return s != NULL ? PTL_OK : PTL_DECLINED;
}

uint64_t
policy_table_count(struct policy_table *t, int64_t now)
{
	struct ptl_error err;
	uint64_t stripe, i, n = 0;

	for (stripe = 0; stripe < t->nstripes; stripe++) {
		if (policy_table_lock(t, stripe, &err) != PTL_OK)
			continue;
		for (i = 0; i < t->per_stripe; i++) {
			if (t->slots[stripe * t->per_stripe + i].expires > now)
				n++;
		}
		policy_table_unlock(t, stripe);
	}
	return n;
}

void
policy_table_stats(const struct policy_table *t, struct policy_table_stats *out)
{
	out->evictions = __atomic_load_n(&t->hdr->evictions, __ATOMIC_RELAXED);
	out->recoveries =
	    __atomic_load_n(&t->hdr->recoveries, __ATOMIC_RELAXED);
}

void
policy_table_free(struct policy_table *t)
{
	if (t == NULL)
		return;
	if (t->map != NULL)
		(void)munmap(t->map, t->map_size);
	if (t->fd >= 0)
		(void)close(t->fd);
	free(t);
}

int
policy_table_sync(struct policy_table *t, struct ptl_error *err)
{
	if (t->fd < 0)
		return PTL_OK;
	if (msync(t->map, t->map_size, MS_SYNC) < 0)
		return ptl_error_set_errno(err, errno, "msync of the %s table",
		                           t->hdr->kind);
	return PTL_OK;
}

/* ---- file-backed tables --------------------------------------------- */

static size_t
table_file_size(uint64_t nslots)
{
	return TABLE_HEADER_SIZE + (size_t)nslots * sizeof(struct policy_slot);
}

/* Size and header of a new, empty file. */
static int
table_file_init(int fd, uint64_t nstripes, uint64_t per, const char *kind,
                const uint64_t key[4], const char *path, struct ptl_error *err)
{
	struct policy_table_header h;
	size_t size = table_file_size(nstripes * per);
	int rc;

	if (ftruncate(fd, (off_t)size) < 0)
		return ptl_error_set_errno(err, errno, "cannot size \"%s\"",
		                           path);
	/* Blocks reserved now: a full disk must fail here, not as a SIGBUS
	 * in a worker writing through the mapping. */
	rc = posix_fallocate(fd, 0, (off_t)size);
	if (rc != 0 && rc != EOPNOTSUPP && rc != EINVAL)
		return ptl_error_set_errno(err, rc,
		                           "cannot reserve %zu bytes for "
		                           "\"%s\"",
		                           size, path);
	table_header_fill(&h, nstripes, per, kind, key);
	if (pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || fsync(fd) < 0)
		return ptl_error_set_errno(err, errno, "cannot write \"%s\"",
		                           path);
	return PTL_OK;
}

static bool
table_header_ok(const struct policy_table_header *h, const char *kind,
                off_t size)
{
	char want[16];

	(void)snprintf(want, sizeof(want), "%s", kind);
	return memcmp(h->magic, TABLE_MAGIC, sizeof(TABLE_MAGIC)) == 0 &&
	       h->version == TABLE_VERSION &&
	       h->slot_size == sizeof(struct policy_slot) &&
	       h->byte_order == TABLE_BYTE_ORDER &&
	       strncmp(h->kind, want, sizeof(h->kind)) == 0 &&
	       h->nstripes >= 1 && h->nstripes <= TABLE_MAX_STRIPES &&
	       h->nslots >= h->nstripes &&
	       h->nslots <= POLICY_TABLE_MAX_SLOTS + TABLE_MAX_STRIPES &&
	       h->nslots % h->nstripes == 0 &&
	       (uint64_t)size == table_file_size(h->nslots);
}

static int
table_map_file(int fd, const char *path, struct policy_table **out,
               struct ptl_error *err)
{
	struct policy_table_header h;
	struct policy_table *t;
	size_t size;
	void *map;

	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return ptl_error_set_errno(err, errno, "cannot read \"%s\"",
		                           path);
	size = table_file_size(h.nslots);
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return ptl_error_set_errno(err, errno, "cannot map \"%s\"",
		                           path);
	t = table_handle(map, size, TABLE_HEADER_SIZE, fd);
	if (t == NULL) {
		munmap(map, size);
		return ptl_error_set(err, "out of memory");
	}
	*out = t;
	return PTL_OK;
}

/* Open NAME in the directory, refusing links and files of others. */
static int
table_open_at(int dirfd, const char *name, int flags, const char *path,
              struct ptl_error *err)
{
	struct stat st;
	int fd;

	fd = openat(dirfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC | flags, 0600);
	if (fd < 0)
		return ptl_error_set_errno(err, errno, "cannot open \"%s\"",
		                           path);
	/*
	 * The master may run as root while the directory's parent belongs
	 * to the unprivileged user: a planted hard link must not make root
	 * write into some other file.
	 */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
	    st.st_uid != geteuid()) {
		(void)close(fd);
		ptl_error_set(err,
		              "\"%s\" is not a regular file of uid %u with one "
		              "link",
		              path, (unsigned)geteuid());
		return -1;
	}
	return fd;
}

/* Copy the live entries of @old into the new file and put it in place. */
static int
table_migrate(int dirfd, const char *dir, const char *name,
              struct policy_table *old, uint64_t want, const char *kind,
              int64_t now, struct policy_table **out, struct ptl_error *err)
{
	char tmp[256], path[4096];
	struct policy_table *t = NULL;
	struct policy_slot *src, *dst;
	uint64_t nstripes, per, i;
	bool fresh;
	int fd;

	(void)snprintf(tmp, sizeof(tmp), "%s.new", name);
	(void)snprintf(path, sizeof(path), "%s/%s", dir, tmp);
	if (unlinkat(dirfd, tmp, 0) < 0 && errno != ENOENT)
		return ptl_error_set_errno(err, errno, "cannot remove \"%s\"",
		                           path);
	fd = table_open_at(dirfd, tmp, O_CREAT | O_EXCL, path, err);
	if (fd < 0)
		return PTL_ERROR;
	table_geometry(want, &nstripes, &per);
	if (table_file_init(fd, nstripes, per, kind, old->hash_key, path,
	                    err) != PTL_OK ||
	    table_map_file(fd, path, &t, err) != PTL_OK) {
		(void)close(fd);
		(void)unlinkat(dirfd, tmp, 0);
		return PTL_ERROR;
	}
	/* Old workers (a reload) may still be writing: hold every stripe. */
	if (table_fcntl(old->fd, F_WRLCK, TABLE_LOCK_STRIPE(0),
	                (off_t)old->nstripes) != PTL_OK) {
		ptl_error_set_errno(err, errno, "cannot lock the old table");
		goto fail;
	}
	for (i = 0; i < old->nslots; i++) {
		src = &old->slots[i];
		if (src->expires <= now)
			continue;
		dst = table_find(t, src->key, now, true, &fresh);
		*dst = *src;
	}
	(void)table_fcntl(old->fd, F_UNLCK, TABLE_LOCK_STRIPE(0),
	                  (off_t)old->nstripes);
	if (policy_table_sync(t, err) != PTL_OK)
		goto fail;
	if (renameat(dirfd, tmp, dirfd, name) < 0 || fsync(dirfd) < 0) {
		ptl_error_set_errno(err, errno, "cannot rename \"%s\"", path);
		goto fail;
	}
	ptl_log(PTL_LOG_NOTICE, "%s: %s/%s resized from %llu to %llu slots",
	        kind, dir, name, (unsigned long long)old->nslots,
	        (unsigned long long)t->nslots);
	*out = t;
	return PTL_OK;
fail:
	policy_table_free(t);
	(void)unlinkat(dirfd, tmp, 0);
	return PTL_ERROR;
}

/* A damaged file is kept for a post-mortem, out of the way. */
static int
table_set_aside(int dirfd, const char *dir, const char *name,
                struct ptl_error *err)
{
	char aside[256];

	(void)snprintf(aside, sizeof(aside), "%s.corrupt", name);
	if (renameat(dirfd, name, dirfd, aside) < 0)
		return ptl_error_set_errno(
		    err, errno, "cannot rename damaged \"%s/%s\"", dir, name);
	ptl_log(PTL_LOG_WARN,
	        "%s/%s is damaged or of another format: renamed to %s, "
	        "starting empty",
	        dir, name, aside);
	return PTL_OK;
}

static int
table_open_dir(const char *dir, struct ptl_error *err)
{
	struct stat st;
	int dirfd;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return ptl_error_set_errno(
		    err, errno, "cannot create directory \"%s\"", dir);
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0) {
		ptl_error_set_errno(err, errno, "cannot open directory \"%s\"",
		                    dir);
		return -1;
	}
	if (fstat(dirfd, &st) < 0 || st.st_uid != geteuid() ||
	    (st.st_mode & 022) != 0) {
		(void)close(dirfd);
		ptl_error_set(err,
		              "directory \"%s\" must belong to uid %u and not "
		              "be writable by group or others",
		              dir, (unsigned)geteuid());
		return -1;
	}
	return dirfd;
}

int
policy_table_file(const char *dir, const char *name, uint64_t nslots,
                  const char *kind, int64_t now, struct policy_table **out,
                  struct ptl_error *err)
{
	struct policy_table_header h;
	struct policy_table *t = NULL, *moved = NULL;
	uint64_t nstripes, per, key[4];
	char path[4096];
	struct stat st;
	int dirfd, fd = -1, attempt, rc = PTL_ERROR;

	*out = NULL;
	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	dirfd = table_open_dir(dir, err);
	if (dirfd < 0)
		return PTL_ERROR;
	for (attempt = 0; attempt < 2; attempt++) {
		fd = table_open_at(dirfd, name, O_CREAT, path, err);
		if (fd < 0)
			goto out;
		if (table_fcntl(fd, F_WRLCK, TABLE_LOCK_SETUP, 1) != PTL_OK ||
		    fstat(fd, &st) < 0) {
			ptl_error_set_errno(err, errno, "cannot lock \"%s\"",
			                    path);
			goto out;
		}
		if (st.st_size == 0) {
			table_geometry(nslots, &nstripes, &per);
			if (policy_random(key, sizeof(key), err) != PTL_OK ||
			    table_file_init(fd, nstripes, per, kind, key, path,
			                    err) != PTL_OK ||
			    fstat(fd, &st) < 0)
				goto out;
			if (fsync(dirfd) < 0) {
				ptl_error_set_errno(err, errno,
				                    "cannot sync \"%s\"", dir);
				goto out;
			}
		}
		if (pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
		    table_header_ok(&h, kind, st.st_size))
			break;
		if (attempt == 1 ||
		    table_set_aside(dirfd, dir, name, err) != PTL_OK) {
			if (attempt == 1)
				ptl_error_set(err, "\"%s\" is unusable", path);
			goto out;
		}
		(void)close(fd);
		fd = -1;
	}
	if (table_map_file(fd, path, &t, err) != PTL_OK)
		goto out;
	fd = -1; /* the table owns it */
	table_geometry(nslots, &nstripes, &per);
	if (t->nslots != nstripes * per) {
		if (table_migrate(dirfd, dir, name, t, nslots, kind, now,
		                  &moved, err) != PTL_OK)
			goto out;
		policy_table_free(t);
		t = moved;
	}
	rc = PTL_OK;
out:
	if (rc == PTL_OK) {
		*out = t;
	} else {
		policy_table_free(t);
	}
	if (fd >= 0)
		(void)close(fd); /* drops the set-up lock */
	if (*out != NULL)
		(void)table_fcntl((*out)->fd, F_UNLCK, TABLE_LOCK_SETUP, 1);
	(void)close(dirfd);
	return rc;
}
