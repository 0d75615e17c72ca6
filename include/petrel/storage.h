/* SPDX-License-Identifier: MIT */
/* The "storage" service: durable mailboxes behind one interface. */
#ifndef PETREL_STORAGE_H
#define PETREL_STORAGE_H

#include <stdbool.h>
#include <petrel/core.h>
#include <petrel/pool.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Service name and interface version of this header. */
#define PTL_STORAGE_SERVICE "storage"
#define PTL_STORAGE_VERSION 1

/*
 * Contract for backend authors
 * ----------------------------
 * Every method is called on the loop thread of a worker or helper process
 * with the provider's `instance`. Methods that touch the disk return
 * PTL_AGAIN and do the work on the core thread pool (ptl_task_submit()),
 * then call their completion exactly once on the loop thread. A method
 * that fails before starting returns PTL_ERROR and calls nothing.
 *
 * Durability: a delivery completes with PTL_STORAGE_OK only when the
 * message and the directory entry naming it are on stable storage
 * (fsync of file and directory, or a committed transaction). A failed
 * delivery leaves nothing visible in the mailbox.
 *
 * Consistency: a mailbox opened with PTL_STORAGE_LOCK is exclusive across
 * every process of the server; the message list is a snapshot taken at
 * open, so mail delivered meanwhile appears at the next open. Message
 * uids are stable across sessions and restarts and never reused.
 */

/** Outcome of a storage operation. */
enum ptl_storage_status {
	PTL_STORAGE_OK = 0,
	PTL_STORAGE_TEMPFAIL = 1, /**< try later: disk full, I/O error, busy */
	PTL_STORAGE_PERMFAIL = 2, /**< never works: over quota, no mailbox */
	PTL_STORAGE_LOCKED = 3,   /**< mailbox is locked by another session */
};

/** What a completion reports: status plus a human-readable reason. */
struct ptl_storage_result {
	enum ptl_storage_status status;
	const char *reason; /**< for logs and replies; valid during the call */
};

/** One message of a delivery request. */
struct ptl_storage_delivery {
	const char *user;   /**< canonical user from the auth service */
	const char *folder; /**< NULL: the inbox; e.g. "Quarantine" */
	int fd;             /**< message source: read with pread() from
	                       offset 0; the caller keeps it open until the
	                       completion and closes it */
	uint64_t size;      /**< bytes to copy from fd */
	const char *prefix; /**< bytes written before the message (e.g.
	                       "Return-Path: <a@b>\r\nDelivered-To: ...");
	                       may be NULL */
	size_t prefix_len;
	const char *envelope_from; /**< "" for the null sender */
	int64_t received_at;       /**< wall-clock seconds */
};

/** Completion of deliver(). Loop thread. */
typedef void (*ptl_storage_done_fn)(const struct ptl_storage_result *res,
                                    void *arg);

/** An opened mailbox, owned by the backend until close(). */
struct ptl_mailbox;

/** One message in an opened mailbox's snapshot. */
struct ptl_storage_msg {
	const char *uid; /**< stable unique id, printable ASCII 1..70 chars,
	                    no spaces (usable as a POP3 UIDL) */
	uint64_t size;   /**< exact size in bytes of what read gives */
};

/** Completion of open(): @p mb is NULL unless status is OK. */
typedef void (*ptl_storage_open_fn)(const struct ptl_storage_result *res,
                                    struct ptl_mailbox *mb, void *arg);
/** Completion of read(): on OK, @p fd (owned by the caller from now on,
 *  close it) reads the message from offset 0 to its size. */
typedef void (*ptl_storage_read_fn)(const struct ptl_storage_result *res,
                                    int fd, void *arg);
/** Completion of quota(). */
typedef void (*ptl_storage_quota_fn)(const struct ptl_storage_result *res,
                                     uint64_t used_bytes, uint64_t limit_bytes,
                                     void *arg);

/** open() flags. */
#define PTL_STORAGE_LOCK 0x1u /**< exclusive access (POP3) */

/** Methods of the "storage" service. */
struct ptl_storage_methods {
	unsigned version; /**< PTL_STORAGE_VERSION implemented */

	/** Store one message durably. The request is copied. */
	int (*deliver)(void *instance, const struct ptl_storage_delivery *d,
	               ptl_storage_done_fn done, void *arg);

	/** Open @p user's inbox and take a snapshot of its messages. */
	int (*open)(void *instance, const char *user, unsigned flags,
	            ptl_storage_open_fn done, void *arg);

	/** Messages in the snapshot (valid until close). Synchronous. */
	size_t (*count)(struct ptl_mailbox *mb);
	/** Message @p index (0-based) of the snapshot. Synchronous. */
	const struct ptl_storage_msg *(*message)(struct ptl_mailbox *mb,
	                                         size_t index);

	/** Open message @p index for reading. */
	int (*read)(struct ptl_mailbox *mb, size_t index,
	            ptl_storage_read_fn done, void *arg);

	/**
	 * Remove the messages at @p indexes (@p n of them) durably and as a
	 * whole: after OK none of them is visible; after a failure, as
	 * many as possible stay (never half a message).
	 */
	int (*expunge)(struct ptl_mailbox *mb, const size_t *indexes, size_t n,
	               ptl_storage_done_fn done, void *arg);

	/**
	 * Release the lock and free @p mb. Synchronous and never fails; may
	 * queue background work. Pending completions for @p mb must have
	 * run first (the caller waits for them).
	 */
	void (*close)(struct ptl_mailbox *mb);

	/** Used and allowed bytes of @p user (limit 0: unlimited). */
	int (*quota)(void *instance, const char *user,
	             ptl_storage_quota_fn done, void *arg);
};

#ifdef __cplusplus
}
#endif
#endif
