/* SPDX-License-Identifier: MIT */
/* Seam between the queue scheduler and the outbound SMTP delivery engine. */
#ifndef PETREL_QUEUE_RELAY_H
#define PETREL_QUEUE_RELAY_H

#include <stdbool.h>
#include <petrel/petrel.h>
#include <petrel/queue.h>

/*
 * The scheduler (queue_*.c) decides WHAT to deliver and WHEN: it groups
 * due recipients of one message by destination domain (or route), builds
 * a struct relay_job and calls relay_start(). The engine (relay_*.c,
 * smtpc_*.c) decides HOW: route or MX lookup, connection, TLS policy,
 * the SMTP client conversation, and fills one result per recipient. It
 * never touches the spool: the scheduler records the results durably.
 */

/** TLS policy towards a destination (config "tls" of a route). */
enum relay_tls_policy {
	RELAY_TLS_MAY = 0,     /**< STARTTLS when offered, unverified */
	RELAY_TLS_NONE = 1,    /**< never STARTTLS */
	RELAY_TLS_ENCRYPT = 2, /**< STARTTLS required, unverified */
	RELAY_TLS_VERIFY = 3,  /**< STARTTLS required, chain + name verified */
};

/** Where a job goes when not by MX lookup. */
struct relay_route {
	const char *host; /**< smarthost name or IP; NULL: MX lookup */
	uint16_t port;    /**< 0: 25 */
	enum relay_tls_policy tls;
	const char *ca_file;   /**< for RELAY_TLS_VERIFY; NULL: system */
	const char *auth_user; /**< AUTH PLAIN to the smarthost, or NULL */
	const char *auth_password;
};

/** Per-recipient outcome, filled by the engine. */
enum relay_rcpt_status {
	RELAY_RCPT_DELIVERED = 0, /**< 2xx after DATA */
	RELAY_RCPT_DEFERRED = 1,  /**< 4xx, network or DNS failure: retry */
	RELAY_RCPT_FAILED = 2,    /**< 5xx, null MX, no such domain: bounce */
};

struct relay_rcpt {
	const char *address; /**< "local@domain" */
	unsigned notify;     /**< PTL_DSN_NOTIFY_* */
	const char *orcpt;   /**< or NULL */
	/* Filled by the engine before done is called: */
	enum relay_rcpt_status status;
	char reply[512];       /**< remote reply ("550 5.1.1 ...") or our
	                          own reason ("connect to mx.x: refused"),
	                          printable ASCII, one line */
	char remote_host[256]; /**< host that gave the result, or "" */
	/** DELIVERED to a next hop that advertised DSN and got this
	 *  recipient's NOTIFY (and ORCPT): reporting success is its job
	 *  now, not ours (RFC 3461 5.2.1); false: a "relayed" report is
	 *  due for NOTIFY=SUCCESS (5.2.2). */
	bool dsn_passed;
};

/** One delivery attempt of one message to one destination. */
struct relay_job {
	const char *queue_id;
	const char *domain;              /**< recipients' domain (lower case) */
	const struct relay_route *route; /**< NULL: MX lookup of domain */
	const char *mail_from;           /**< "" for the null sender */
	const char *envid;
	enum ptl_dsn_ret ret;
	enum ptl_body_type body;
	bool smtputf8;
	int fd; /**< whole message incl. prefix, offset 0 */
	uint64_t size;
	struct relay_rcpt *rcpts;
	size_t nrcpts;
};

struct relay_engine;

/** Completion: every rcpts[i].status/reply is set. Loop thread. */
typedef void (*relay_done_fn)(struct relay_job *job, void *arg);

/**
 * Create the engine in the helper process (after init_worker): finds the
 * resolver service, reads the relay config (@p conf is the module's
 * parsed config, see queue_conf.h).
 */
int relay_engine_create(struct ptl_instance *inst, const void *conf,
                        struct relay_engine **engine_out,
                        struct ptl_error *err);
void relay_engine_free(struct relay_engine *e);

/**
 * Start delivering @p job. The job and its strings stay valid until
 * @p done runs; done is called exactly once, never from inside this call.
 * @return PTL_OK, or PTL_ERROR (nothing started, done not called).
 */
int relay_start(struct relay_engine *e, struct relay_job *job,
                relay_done_fn done, void *arg);

/** Abort every running job (shutdown): each still gets done(), with the
 *  unfinished recipients DEFERRED. */
void relay_abort_all(struct relay_engine *e);

#endif
