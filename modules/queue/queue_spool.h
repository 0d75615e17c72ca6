/* SPDX-License-Identifier: MIT */
/* The spool on disk: message files, state logs, requests; no core needed. */
#ifndef PETREL_QUEUE_SPOOL_H
#define PETREL_QUEUE_SPOOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue_record.h"

/*
 * Layout of the queue directory (default STATE_DIR/queue):
 *
 *   tmp/ID      a message being written; never read
 *   msg/ID      a committed message file (immutable)
 *   state/ID    its state log (append-only), when it has one
 *   ctl/NAME    requests from petrelctl to the runner
 *   corrupt/    files that failed their checks, moved aside
 *
 * A message file is
 *
 *   BODY        the message as it is delivered (Received: prefix and
 *               data), B bytes from offset 0: the delivery engine and
 *               the storage service read it with pread() from 0
 *   ENVELOPE    records (queue_record.h): sender, recipients, DSN
 *               parameters, E bytes
 *   TRAILER     QUEUE_TRAILER_LEN bytes: "PTLQ1 <B:16 hex> <E:8 hex>
 *               <CRC-32 of ENVELOPE:8 hex>\n"
 *
 * It is written in tmp/, fsync'd, renamed into msg/ and msg/ is fsync'd
 * before the enqueue is reported: one file per message, one fsync plus
 * a (group-committed) directory fsync.
 *
 * The state log holds "U" records, each a set of per-recipient states
 * ending in a CRC: a recipient's latest state wins. A record cut by a
 * crash fails its length or CRC check and everything from it on is
 * ignored (and cut off before the next append). A message with no state
 * log has every recipient pending.
 */

#define QUEUE_ID_SIZE        33 /* 1..32 characters and the NUL */
#define QUEUE_TRAILER_LEN    41
#define QUEUE_ENVELOPE_MAX   ((size_t)4 * 1024 * 1024)
#define QUEUE_STATE_MAX      ((size_t)16 * 1024 * 1024)
#define QUEUE_RCPTS_MAX      10000
#define QUEUE_ADDRESS_MAX    1024
#define QUEUE_ERROR_TEXT_MAX 512
#define QUEUE_WHY_MAX        256

/** Recipient states (the words in state records are in queue_spool.c). */
enum queue_rcpt_status {
	QUEUE_RCPT_PENDING = 0,
	QUEUE_RCPT_DEFERRED = 1,
	QUEUE_RCPT_DELIVERED = 2,
	QUEUE_RCPT_FAILED = 3,
};

/** Recipient flags. */
#define QUEUE_RCPT_REPORTED                                                    \
	0x1u                   /* the DSN for the final state went out,        \
	                          or none is due */
#define QUEUE_RCPT_WARNED 0x2u /* a delay DSN went out */

/** One recipient of an envelope. */
struct queue_env_rcpt {
	const char *address;
	unsigned notify;   /* PTL_DSN_NOTIFY_* */
	const char *orcpt; /* or NULL */
};

/** The envelope of a message. Strings are NUL-free. */
struct queue_env {
	char id[QUEUE_ID_SIZE];
	const char *from; /* "" for the null sender */
	const char *envid;
	const char *auth_user;
	const char *client_ip;
	int ret;  /* enum ptl_dsn_ret */
	int body; /* enum ptl_body_type */
	bool smtputf8;
	bool is_dsn;      /* a report made by the runner */
	int64_t received; /* wall-clock seconds */
	uint64_t body_size;
	size_t nrcpts;
	struct queue_env_rcpt *rcpts;
	/* Decoded envelopes: the buffer the strings point into. */
	char *storage;
};

/** Free what queue_msg_read() allocated. */
void queue_env_free(struct queue_env *env);

/** The durable state of one recipient. */
struct queue_rcpt_state {
	uint8_t status; /* enum queue_rcpt_status */
	uint8_t flags;  /* QUEUE_RCPT_* */
	uint32_t attempts;
	int64_t next_try_ms; /* wall clock; deferred only */
	int64_t last_ms;     /* time of the last change */
	char *error;         /* last reply or reason, or NULL (malloc) */
	char *host;          /* host that gave it, or NULL (malloc) */
};

/* ---- ids and paths ---- */

/** Make a new id, unique across processes (time, pid, counter). */
void queue_id_make(char id[QUEUE_ID_SIZE]);
/** Copy a valid id (at most QUEUE_ID_SIZE - 1 characters). */
void queue_copy_id(char dst[QUEUE_ID_SIZE], const char *src);
/** Whether @p id is 1..32 letters and digits (safe as a file name). */
bool queue_id_valid(const char *id);
/** "QDIR/SUB/NAME" into @p out; false when it does not fit. */
bool queue_path(char *out, size_t size, const char *qdir, const char *sub,
                const char *name);
/**
 * Create QDIR and its subdirectories (mode 0700) when missing.
 * @return 0 or -1 with @p why filled.
 */
int queue_dirs_create(const char *qdir, char *why, size_t why_size);

/* ---- message files ---- */

/** Envelope records of @p env (body_size included) into @p b. */
void queue_env_encode(const struct queue_env *env, struct qrec_buf *b);
/**
 * Decode @p len envelope bytes at @p data (taken over: freed with the
 * envelope, or here on failure) into @p env.
 * @return 0, or -1 with @p why filled.
 */
int queue_env_decode(char *data, size_t len, struct queue_env *env, char *why,
                     size_t why_size);
/** Format the trailer (QUEUE_TRAILER_LEN bytes, no NUL) into @p out. */
void queue_trailer_format(char out[QUEUE_TRAILER_LEN + 1], uint64_t body,
                          uint32_t env_len, uint32_t crc);
/** Parse a trailer. @return 0 or -1. */
int queue_trailer_parse(const char *p, uint64_t *body_out,
                        uint32_t *env_len_out, uint32_t *crc_out);

/** Outcomes of reading a spool file. */
enum queue_read_status {
	QUEUE_READ_OK = 0,
	QUEUE_READ_GONE = 1,    /* no such file (removed meanwhile) */
	QUEUE_READ_CORRUPT = 2, /* fails a check: quarantine it */
	QUEUE_READ_ERROR = 3,   /* I/O error: try later */
};

/**
 * Read the envelope of message @p id (not the body): open, check the
 * trailer, sizes and CRC, decode.
 */
enum queue_read_status queue_msg_read(const char *qdir, const char *id,
                                      struct queue_env *env, char *why,
                                      size_t why_size);
/** Same from an open file. */
enum queue_read_status queue_msg_read_fd(int fd, const char *id,
                                         struct queue_env *env, char *why,
                                         size_t why_size);

/* ---- the state log ---- */

/** Encode one "U" record: @p n recipients @p idx with states @p st. */
void queue_state_encode(struct qrec_buf *b, int64_t now_ms, const uint32_t *idx,
                        const struct queue_rcpt_state *st, size_t n);
/**
 * Apply the state log bytes @p data to @p st (@p nrcpts entries, the
 * caller initialized them as pending). Texts are copied only when
 * @p texts. *@p valid_out: bytes of whole, checked records.
 * @return the number of records applied.
 */
size_t queue_state_apply(const char *data, size_t len,
                         struct queue_rcpt_state *st, size_t nrcpts, bool texts,
                         size_t *valid_out);
/**
 * Read state/ID and apply it. *@p valid_out and *@p size_out tell
 * whether a torn tail is there (valid < size). A missing log is fine.
 * @return QUEUE_READ_OK, or QUEUE_READ_ERROR (why filled).
 */
enum queue_read_status queue_state_load(const char *qdir, const char *id,
                                        struct queue_rcpt_state *st,
                                        size_t nrcpts, bool texts,
                                        uint64_t *valid_out, uint64_t *size_out,
                                        char *why, size_t why_size);
/** Free the texts of @p n states. */
void queue_state_free_texts(struct queue_rcpt_state *st, size_t n);
/** Name of a status ("pending", ...). */
const char *queue_status_name(unsigned status);

/* ---- durable writes ---- */

/**
 * Group commit of one directory's fsync: an fsync that starts after a
 * rename (or unlink) returned makes it durable, so concurrent callers
 * share fsyncs. Thread-safe.
 */
struct queue_dirsync {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	int fd;
	uint64_t tickets;
	uint64_t synced;
	bool syncing;
};

/** Open @p path for syncing. @return 0 or -1 (errno). */
int queue_dirsync_init(struct queue_dirsync *ds, const char *path);
void queue_dirsync_fini(struct queue_dirsync *ds);
/** Return once every change made before the call is durable: 0 or errno. */
int queue_dirsync_commit(struct queue_dirsync *ds);

/** What the spool writers need: the directory and its syncers. */
struct queue_spool {
	char *qdir;
	struct queue_dirsync msg_sync;
	struct queue_dirsync state_sync;
};

/** Open the spool at @p qdir (which must exist). @return 0 or -1. */
int queue_spool_open(struct queue_spool *sp, const char *qdir, char *why,
                     size_t why_size);
void queue_spool_close(struct queue_spool *sp);

/** A message being written. */
struct queue_writer {
	struct queue_spool *sp;
	char id[QUEUE_ID_SIZE];
	int fd;
	uint64_t body_size;
};

/** Create tmp/ID for a new id. @return 0 or -1 (why). */
int queue_writer_open(struct queue_writer *w, struct queue_spool *sp, char *why,
                      size_t why_size);
/** Append body bytes. @return 0 or -1. */
int queue_writer_write(struct queue_writer *w, const void *p, size_t len,
                       char *why, size_t why_size);
/** Append @p size bytes of @p fd from offset 0 (pread, 64 KiB chunks). */
int queue_writer_copy(struct queue_writer *w, int fd, uint64_t size, char *why,
                      size_t why_size);
/**
 * Write the envelope (its id and body_size are set from @p w) and the
 * trailer, fsync, rename into msg/ without replacing anything, fsync
 * msg/. On failure the temporary file is removed.
 * @return 0 (durable) or -1.
 */
int queue_writer_commit(struct queue_writer *w, struct queue_env *env,
                        char *why, size_t why_size);
/** Remove the temporary file (after a failure before commit). */
void queue_writer_abort(struct queue_writer *w);

/**
 * Append @p len bytes to state/ID with one write and fdatasync; cut the
 * log to @p truncate_to first when it is not UINT64_MAX. A new log is
 * made durable in state/ too. @return 0 or -1.
 */
int queue_state_append(struct queue_spool *sp, const char *id, const void *data,
                       size_t len, uint64_t truncate_to, char *why,
                       size_t why_size);
/** Cut state/ID to @p len bytes (a torn tail), durably. @return 0/-1. */
int queue_state_truncate(const char *qdir, const char *id, uint64_t len,
                         char *why, size_t why_size);
/**
 * Remove a finished message: msg/ID first (that is the commit), then
 * its state log, then fsync msg/. @return 0 or -1.
 */
int queue_msg_remove(struct queue_spool *sp, const char *id, char *why,
                     size_t why_size);
/**
 * Move msg/ID and state/ID aside into corrupt/.
 * @return 0 or -1.
 */
int queue_quarantine(const char *qdir, const char *id, char *why,
                     size_t why_size);

/* ---- petrelctl requests (ctl/) ---- */

/** Requests to the runner. */
enum queue_request {
	QUEUE_REQ_FLUSH = 1,  /* try deferred recipients now */
	QUEUE_REQ_RETRY = 2,  /* reset the backoff durably, then try now */
	QUEUE_REQ_DELETE = 3, /* remove without a report */
};

/** Name of a request ("flush", ...) or NULL. */
const char *queue_request_name(int req);
/**
 * Write a request (@p id NULL: every message) as ctl/NAME (tmp file
 * then rename). @p name_out receives NAME. @return 0 or -1.
 */
int queue_request_write(const char *qdir, int req, const char *id,
                        char *name_out, size_t name_size, char *why,
                        size_t why_size);
/**
 * Parse request bytes. *@p id_out is "" for every message.
 * @return 0 or -1.
 */
int queue_request_parse(const char *data, size_t len, int *req_out,
                        char id_out[QUEUE_ID_SIZE]);

/* ---- shared by the spool files (queue_spool.c, _state.c, _write.c) ---- */

/** Fill @p why (if not NULL) and return -1. */
int queue_why(char *why, size_t why_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Index of the record's value in @p words (@p n, NULLs skipped), or -1. */
int queue_word(const struct qrec *r, const char *const *words, int n);
/** Lower-case hex digits, exactly @p n of them. */
bool queue_hex(const char *p, size_t n, uint64_t *out);
/** pread() all @p len bytes (ENODATA at a premature end). @return 0/-1. */
int queue_pread_all(int fd, void *buf, size_t len, uint64_t off);
/** Status from its word, or -1. */
int queue_status_parse(const char *word, size_t len);

#endif
