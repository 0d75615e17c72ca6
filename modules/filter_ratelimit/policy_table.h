/* SPDX-License-Identifier: MIT */
/* A fixed-size hash table in memory shared by every process of a server. */
#ifndef PETREL_POLICY_TABLE_H
#define PETREL_POLICY_TABLE_H

#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>

#include <petrel/core.h>

/*
 * The master maps the table before it forks, so every worker inherits
 * the same pages (MAP_SHARED) and the same counts; a worker that dies and
 * is respawned finds them still there.
 *
 * Two kinds:
 *  - anonymous (filter_ratelimit): MAP_SHARED|MAP_ANONYMOUS, locked with
 *    process-shared robust mutexes, one per stripe, so that a worker
 *    killed while it holds one does not stall the others;
 *  - file-backed (filter_greylist): a file mapped MAP_SHARED, so the
 *    kernel writes it back and it survives a restart; locked with POSIX
 *    record locks (fcntl F_SETLKW) on one byte per stripe, which the
 *    kernel drops when a process dies and which need no state in the
 *    file (a mutex in a file would be left "locked" by a crash).
 *
 * The table is split into stripes, each with its own lock and its own
 * slots: a key lives in stripe key[0] % nstripes, within a window of
 * POLICY_TABLE_WINDOW slots from key[1] (open addressing, bounded
 * probing). When the window is full of live entries, the one closest to
 * expiry is evicted. Keys are 128-bit keyed fingerprints
 * (policy_fingerprint), so a client cannot aim its keys at one window.
 *
 * Time is whatever the caller passes as `now` (monotonic ms for
 * ratelimit, wall-clock ms for greylist); a slot whose `expires` is
 * <= now is free.
 */

/** Slots probed per key. */
#define POLICY_TABLE_WINDOW 16
/** Owner-defined values in a slot. */
#define POLICY_SLOT_VALUES 5

/** One entry: 64 bytes. */
struct policy_slot {
	uint64_t key[2]; /* fingerprint; {0, 0}: never used */
	int64_t expires; /* free when <= now */
	int64_t val[POLICY_SLOT_VALUES];
};

struct policy_table_header;

/** A process's handle on a table. */
struct policy_table {
	struct policy_table_header *hdr;
	pthread_mutex_t *locks; /* anonymous tables: one per stripe */
	struct policy_slot *slots;
	void *map;
	size_t map_size;
	int fd; /* file-backed tables; -1 otherwise */
	uint64_t nslots;
	uint64_t nstripes;
	uint64_t per_stripe;
	unsigned window;
	uint64_t hash_key[4];
};

/** Counters kept in the shared header. */
struct policy_table_stats {
	uint64_t evictions;  /* live entries pushed out */
	uint64_t recoveries; /* locks taken over from a dead process */
};

/** Largest table: 16M slots (1 GiB). */
#define POLICY_TABLE_MAX_SLOTS (16u * 1024 * 1024)

/**
 * Create an anonymous shared table of about @p nslots slots (rounded up
 * to whole stripes) with a fresh random hash key. Master, before the
 * fork. @p kind ("ratelimit") is recorded in the header.
 * @return PTL_OK or PTL_ERROR.
 */
int policy_table_anon(uint64_t nslots, const char *kind,
                      struct policy_table **out, struct ptl_error *err);

/**
 * Open or create the table file @p name in directory @p dir (created
 * 0700 when missing; both must belong to the calling user and not be
 * writable by others). A file made for another slot count is migrated
 * into a new file of @p nslots slots (entries still live at @p now are
 * kept, with the same hash key) that replaces it; a damaged file is
 * renamed NAME.corrupt and a fresh one made. Master, before the fork.
 * @return PTL_OK or PTL_ERROR.
 */
int policy_table_file(const char *dir, const char *name, uint64_t nslots,
                      const char *kind, int64_t now, struct policy_table **out,
                      struct ptl_error *err);

/** Unmap and close in this process. NULL is a no-op. */
void policy_table_free(struct policy_table *t);

/** Fingerprint @p len bytes of @p data with the table's hash key. */
void policy_table_key(const struct policy_table *t, const void *data,
                      size_t len, uint64_t key_out[2]);

/**
 * Called with the stripe locked. @p fresh: the slot was just taken for
 * this key (all values zero, expires 0). Set slot->expires: at or below
 * now frees the slot.
 */
typedef void (*policy_update_fn)(struct policy_slot *slot, bool fresh,
                                 void *arg);

/**
 * Find the live slot of @p key (or, when @p create, take one) and call
 * @p fn on it under the stripe's lock.
 * @return PTL_OK (fn ran), PTL_DECLINED (absent and !create: fn did not
 * run), PTL_ERROR (the lock failed: err says why).
 */
int policy_table_update(struct policy_table *t, const uint64_t key[2],
                        int64_t now, bool create, policy_update_fn fn,
                        void *arg, struct ptl_error *err);

/** Lock / unlock one stripe (for tests and bulk work). */
int policy_table_lock(struct policy_table *t, uint64_t stripe,
                      struct ptl_error *err);
void policy_table_unlock(struct policy_table *t, uint64_t stripe);

/** Live entries at @p now (walks the whole table, stripe by stripe). */
uint64_t policy_table_count(struct policy_table *t, int64_t now);

/** The shared counters. */
void policy_table_stats(const struct policy_table *t,
                        struct policy_table_stats *out);

/**
 * Write the file-backed table's dirty pages to disk and wait (msync
 * MS_SYNC). Blocking: from a pool thread or at exit. No-op for an
 * anonymous table. @return PTL_OK or PTL_ERROR.
 */
int policy_table_sync(struct policy_table *t, struct ptl_error *err);

#endif
