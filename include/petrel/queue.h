/* SPDX-License-Identifier: MIT */
/* The "queue" service: durable outbound queue for mail that goes onward. */
#ifndef PETREL_QUEUE_H
#define PETREL_QUEUE_H

#include <stdbool.h>
#include <petrel/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Service name and interface version of this header. */
#define PTL_QUEUE_SERVICE "queue"
#define PTL_QUEUE_VERSION 1

/** DSN NOTIFY flags of a recipient (RFC 3461); 0: not given. */
#define PTL_DSN_NOTIFY_NEVER   0x1u
#define PTL_DSN_NOTIFY_SUCCESS 0x2u
#define PTL_DSN_NOTIFY_FAILURE 0x4u
#define PTL_DSN_NOTIFY_DELAY   0x8u

/** DSN RET of a message (RFC 3461). */
enum ptl_dsn_ret {
	PTL_DSN_RET_UNSET = 0,
	PTL_DSN_RET_FULL = 1,
	PTL_DSN_RET_HDRS = 2,
};

/** BODY parameter the message was received with (RFC 6152, 3030). */
enum ptl_body_type {
	PTL_BODY_7BIT = 0,
	PTL_BODY_8BITMIME = 1,
	PTL_BODY_BINARYMIME = 2,
};

/** One recipient of a queued message. */
struct ptl_queue_rcpt {
	const char *address; /**< "local@domain" as given in RCPT TO */
	unsigned notify;     /**< PTL_DSN_NOTIFY_* flags, 0 when unset */
	const char *orcpt;   /**< ORCPT as received ("rfc822;a@b"), or NULL */
};

/** A message handed to the queue. Every field is copied by enqueue(). */
struct ptl_queue_message {
	const char *mail_from; /**< reverse path; "" for the null sender */
	const char *envid;     /**< DSN ENVID, or NULL */
	enum ptl_dsn_ret ret;  /**< DSN RET */
	enum ptl_body_type body;
	bool smtputf8; /**< received with SMTPUTF8 */
	const struct ptl_queue_rcpt *rcpts;
	size_t nrcpts;
	int fd; /**< message: pread() from offset 0; the
	           caller keeps it open until the completion
	           (enqueue() works on a dup() of it, so
	           after cancel() it may be closed at once) */
	uint64_t size;
	const char *prefix; /**< bytes stored before the message (the
	                       Received: header), may be NULL */
	size_t prefix_len;
	const char *auth_user; /**< authenticated submitter, or NULL */
	const char *client_ip; /**< for logs and bounces */
	int64_t received_at;   /**< wall-clock seconds */
};

/** Outcome of enqueue(). */
enum ptl_queue_status {
	PTL_QUEUE_OK = 0,       /**< stored durably (file + directory fsync) */
	PTL_QUEUE_TEMPFAIL = 1, /**< not stored: answer 4xx */
};

/**
 * Completion of enqueue(): on PTL_QUEUE_OK @p queue_id names the message
 * in logs and `petrelctl queue`; @p reason explains a failure. Both are
 * valid during the call only. Loop thread.
 */
typedef void (*ptl_queue_done_fn)(enum ptl_queue_status status,
                                  const char *queue_id, const char *reason,
                                  void *arg);

/** Methods of the "queue" service. Loop thread of a worker/helper. */
struct ptl_queue_methods {
	unsigned version; /**< PTL_QUEUE_VERSION implemented */

	/**
	 * Store @p m durably with every recipient pending, then call
	 * @p done exactly once. Only after PTL_QUEUE_OK may the caller
	 * acknowledge the message (250): from then on the queue owns the
	 * delivery, retries and bounces.
	 * @return PTL_AGAIN (done follows) or PTL_ERROR (nothing stored,
	 * done is not called).
	 */
	int (*enqueue)(void *instance, const struct ptl_queue_message *m,
	               ptl_queue_done_fn done, void *arg);

	/** Do not call done for enqueue()s started with @p arg (the
	 *  session is gone); a message already being stored may still be
	 *  stored and delivered. */
	void (*cancel)(void *instance, void *arg);
};

#ifdef __cplusplus
}
#endif
#endif
