/* SPDX-License-Identifier: MIT */
/* Internal seams of the Maildir storage backend. */
#ifndef PETREL_MODULES_MAILDIR_H
#define PETREL_MODULES_MAILDIR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <petrel/petrel.h>

/* Room for a reason in a completion: one log line, not a paragraph. */
#define MAILDIR_REASON_MAX 320
/* Copy buffer of a delivery: bounded, whatever the message size. */
#define MAILDIR_COPY_CHUNK (64 * 1024)
/* A snapshot lists at most this many messages (the oldest ones). */
#define MAILDIR_SNAPSHOT_MAX (1024 * 1024)
/* Longest uid handed out (RFC 1939 section 7: UIDL is 1..70 chars). */
#define MAILDIR_UID_MAX 70
/* The lock file inside each Maildir. */
#define MAILDIR_LOCK_NAME "petrel.lock"

/* The parsed "maildir" config section. */
struct maildir_conf {
	const char *path;        /* template; made absolute by check_config */
	uint64_t quota;          /* bytes, 0: unlimited */
	const char *create_mode; /* octal text, e.g. "0700" */
	mode_t dir_mode;         /* create_mode parsed */
};

/* Batches fsync() of one directory across concurrent renames (dirsync.c). */
struct maildir_dirsync;

/*
 * Per-process state. Jobs hold a reference, so the instance outlives
 * exit_worker while tasks are still running on the pool.
 */
struct maildir_instance {
	atomic_uint refs;
	const struct maildir_conf *conf; /* generation pool, read-only */
	char hostname[72];               /* sanitized for file names */
	atomic_uint_fast64_t counter;    /* Q<n> of unique names */
	struct maildir_dirsync *dirsync;
};

/* Outcome of a job, filled on a pool thread, reported on the loop. */
struct maildir_outcome {
	enum ptl_storage_status status;
	char reason[MAILDIR_REASON_MAX];
};

/* One message of an opened mailbox. */
struct maildir_entry {
	char *name; /* file name in cur/ (may change flags: see read) */
	bool expunged;
};

/* The opened mailbox (opaque to callers of the storage service). */
struct ptl_mailbox {
	struct maildir_instance *md;
	char *user;
	char *dir;   /* the Maildir */
	int lock_fd; /* -1 when opened without PTL_STORAGE_LOCK */
	size_t count;
	struct maildir_entry *entries;
	struct ptl_storage_msg *msgs; /* uid + size, parallel to entries */
	unsigned busy;                /* jobs in flight (close must wait) */
	bool closing;                 /* close() came while jobs were busy */
};

/* module.c */
void maildir_instance_ref(struct maildir_instance *md);
void maildir_instance_unref(struct maildir_instance *md);
int maildir_outcome_set(struct maildir_outcome *out,
                        enum ptl_storage_status status, const char *fmt, ...)
    PTL_PRINTF(3, 4);
int maildir_outcome_errno(struct maildir_outcome *out, int errnum,
                          const char *fmt, ...) PTL_PRINTF(3, 4);

/* path.c: template checks and expansion. */
int maildir_template_check(const char *tmpl, struct ptl_error *err);
int maildir_path_expand(const char *tmpl, const char *user, char *out,
                        size_t outsz, struct maildir_outcome *res);
int maildir_folder_path(const char *maildir, const char *folder, char *out,
                        size_t outsz, struct maildir_outcome *res);
int maildir_mkdir_p(const char *path, mode_t mode, struct maildir_outcome *res);
int maildir_make_subdirs(const char *maildir, mode_t mode,
                         struct maildir_outcome *res);
int maildir_join(char *out, size_t outsz, const char *dir, const char *name,
                 struct maildir_outcome *res);
int maildir_fsync_dir(const char *path, struct maildir_outcome *res);

/* unique.c: Maildir file names. */
void maildir_hostname_sanitize(const char *host, char *out, size_t outsz);
int maildir_unique_name(struct maildir_instance *md, char *out, size_t outsz);
bool maildir_name_size(const char *name, uint64_t *size_out);
void maildir_name_uid(const char *name, char *uid_out, size_t uidsz);
int maildir_name_compare(const char *a, const char *b);

/* dirsync.c */
struct maildir_dirsync *maildir_dirsync_new(void);
void maildir_dirsync_free(struct maildir_dirsync *ds);
int maildir_dirsync_commit(struct maildir_dirsync *ds, const char *path,
                           int dir_fd);

/* lock.c */
int maildir_lock(const char *maildir, int *fd_out, struct maildir_outcome *res);

/* deliver.c */
int maildir_deliver(void *instance, const struct ptl_storage_delivery *d,
                    ptl_storage_done_fn done, void *arg);

/* mailbox.c */
int maildir_open(void *instance, const char *user, unsigned flags,
                 ptl_storage_open_fn done, void *arg);
size_t maildir_count(struct ptl_mailbox *mb);
const struct ptl_storage_msg *maildir_message(struct ptl_mailbox *mb,
                                              size_t index);
int maildir_read(struct ptl_mailbox *mb, size_t index, ptl_storage_read_fn done,
                 void *arg);
void maildir_close(struct ptl_mailbox *mb);
void maildir_mailbox_release(struct ptl_mailbox *mb);
int maildir_find_renamed(int cur_fd, const char *name, char **found_out);

/* expunge.c */
int maildir_expunge(struct ptl_mailbox *mb, const size_t *indexes, size_t n,
                    ptl_storage_done_fn done, void *arg);

/* quota.c */
int maildir_usage(const char *maildir, uint64_t *used_out,
                  struct maildir_outcome *res);
int maildir_quota(void *instance, const char *user, ptl_storage_quota_fn done,
                  void *arg);

#endif
