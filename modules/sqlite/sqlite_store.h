/* SPDX-License-Identifier: MIT */
/* Internal seams of the SQLite storage backend. */
#ifndef PETREL_MODULES_SQLITE_STORE_H
#define PETREL_MODULES_SQLITE_STORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sqlite3.h>

#include <petrel/petrel.h>

/* Room for a reason in a completion: one log line. */
#define SQLITE_REASON_MAX 320
/* Bytes moved per blob read/write: bounded, whatever the message size. */
#define SQLITE_COPY_CHUNK (64 * 1024)
/* A snapshot lists at most this many messages (the oldest ones). */
#define SQLITE_SNAPSHOT_MAX (1024 * 1024)
/* Longest user name accepted (the part before and after "@" together). */
#define SQLITE_USER_MAX 512

/* The parsed "sqlite" config section. */
struct sqlite_conf {
	const char *path;     /* database file; made absolute by check_config */
	uint64_t quota;       /* bytes per user, 0: unlimited */
	int64_t busy_timeout; /* ms a writer waits for another one */
};

/* One database connection, borrowed by one task at a time. */
struct sqlite_conn {
	struct sqlite_conn *next; /* in the idle list */
	sqlite3 *db;
	char uid_prefix[24]; /* random per database: uids never repeat */
};

/* Deliveries committed in one transaction at most (group commit). */
#define SQLITE_BATCH_MAX 64
/* ... and at most this many message bytes, unless a single one is more. */
#define SQLITE_BATCH_BYTES (32 * 1024 * 1024)

struct sqlite_delivery;

/*
 * Per-process state. Jobs hold a reference, so the instance (and its
 * connections) outlive exit_worker while tasks still run on the pool.
 */
struct sqlite_instance {
	atomic_uint refs;
	const struct sqlite_conf *conf;
	pthread_mutex_t lock; /* guards idle */
	struct sqlite_conn *idle;
	pthread_mutex_t batch_lock; /* guards the three below */
	struct sqlite_delivery *queue_head, *queue_tail;
	bool leader; /* a task is writing a batch now */
};

/* Outcome of a job, filled on a pool thread, reported on the loop. */
struct sqlite_outcome {
	enum ptl_storage_status status;
	char reason[SQLITE_REASON_MAX];
};

/* One delivery request (or, with is_flush, a task that only commits). */
struct sqlite_delivery {
	struct sqlite_instance *si;
	ptl_storage_done_fn done;
	void *arg;
	int src_fd;
	uint64_t size;
	size_t prefix_len;
	int64_t received_at;
	char *user; /* the strings live in the same allocation */
	char *folder;
	char *envelope_from;
	char *prefix;
	struct sqlite_delivery *next;  /* in the queue, then in a batch */
	struct sqlite_delivery *batch; /* what this task committed as leader */
	unsigned refs;                 /* loop thread only: task + batch */
	bool is_flush;
	bool staged; /* written inside the open transaction */
	struct sqlite_outcome res;
};

/* The opened mailbox (opaque to callers of the storage service). */
struct ptl_mailbox {
	struct sqlite_instance *si;
	char *user;
	int lock_fd;     /* -1 when opened without PTL_STORAGE_LOCK */
	int64_t user_id; /* 0: the user has no row (never got mail) */
	size_t count;
	int64_t *ids;                 /* row ids, oldest first */
	struct ptl_storage_msg *msgs; /* parallel to ids */
	bool *expunged;
	unsigned busy; /* jobs in flight */
	bool closing;  /* close() came while jobs were busy */
};

/* module.c */
void sqlite_instance_ref(struct sqlite_instance *si);
void sqlite_instance_unref(struct sqlite_instance *si);
int sqlite_outcome_set(struct sqlite_outcome *out,
                       enum ptl_storage_status status, const char *fmt, ...)
    PTL_PRINTF(3, 4);
int sqlite_outcome_errno(struct sqlite_outcome *out, int errnum,
                         const char *fmt, ...) PTL_PRINTF(3, 4);
int sqlite_outcome_db(struct sqlite_outcome *out, sqlite3 *db, int rc,
                      const char *step);
int sqlite_user_check(const char *user, struct sqlite_outcome *res);
void sqlite_log_failure(const char *op, const char *user,
                        const struct sqlite_outcome *res);

/* conn.c: the connection pool and the schema. */
struct sqlite_conn *sqlite_conn_get(struct sqlite_instance *si,
                                    struct sqlite_outcome *res);
void sqlite_conn_put(struct sqlite_instance *si, struct sqlite_conn *c,
                     bool healthy);
void sqlite_conn_close_all(struct sqlite_instance *si);
int sqlite_exec(struct sqlite_conn *c, const char *sql,
                struct sqlite_outcome *res);
bool sqlite_rc_healthy(int rc);

/* lock.c */
int sqlite_lock(const char *db_path, const char *user, int *fd_out,
                struct sqlite_outcome *res);

/* deliver.c */
int sqlite_deliver(void *instance, const struct ptl_storage_delivery *d,
                   ptl_storage_done_fn done, void *arg);
int sqlite_store_message(struct sqlite_conn *c, struct sqlite_delivery *job,
                         int *rc_out);

/* batch.c: group commit of concurrent deliveries. */
void sqlite_batch_work(void *arg);
void sqlite_batch_done(void *arg);
void sqlite_delivery_unref(struct sqlite_delivery *job);

/* mailbox.c */
int sqlite_open(void *instance, const char *user, unsigned flags,
                ptl_storage_open_fn done, void *arg);
size_t sqlite_count(struct ptl_mailbox *mb);
const struct ptl_storage_msg *sqlite_message(struct ptl_mailbox *mb,
                                             size_t index);
int sqlite_read(struct ptl_mailbox *mb, size_t index, ptl_storage_read_fn done,
                void *arg);
void sqlite_close(struct ptl_mailbox *mb);
void sqlite_mailbox_release(struct ptl_mailbox *mb);

/* expunge.c */
int sqlite_expunge(struct ptl_mailbox *mb, const size_t *indexes, size_t n,
                   ptl_storage_done_fn done, void *arg);

/* quota.c */
int sqlite_quota(void *instance, const char *user, ptl_storage_quota_fn done,
                 void *arg);

#endif
