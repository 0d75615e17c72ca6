/* SPDX-License-Identifier: MIT */
/* The filter service: verdicts on SMTP sessions at fixed hook points. */
#ifndef PETREL_FILTER_H
#define PETREL_FILTER_H

#include <stdbool.h>
#include <stdint.h>
#include <petrel/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Writing a filter
 * ----------------
 * A filter is a module that registers one service named
 * PTL_FILTER_SERVICE_PREFIX + its module name (module "filter_regex"
 * registers "filter.filter_regex"), declares it in its `provides` list
 * with PTL_FILTER_VERSION, and fills a struct ptl_filter_methods. The
 * admin turns it on by listing the module name in the "filters" key of
 * the smtp module; filters run in that order.
 *
 * The smtp module looks filters up when the first connection arrives in a
 * process, so a filter may register its service in init_master (shared
 * by every process) or in init_worker. A listed filter that cannot be
 * found makes every session fail closed (421 4.3.0) and is logged.
 *
 * At each hook point a session calls check() of every filter whose
 * `hooks` mask contains that hook, one after the other, and stops at the
 * first verdict other than PTL_FILTER_CONTINUE. Filters run after the
 * session's own checks have passed (syntax, sequence, relay policy,
 * recipient lookup), so a filter never sees a command the server would
 * refuse anyway, and before the server acts on the command.
 *
 * Threads: every call is made on the loop thread of a worker (or of the
 * single process). check() must not block: slow work (DNS, a remote
 * policy server, reading a large message) goes to the event loop or to
 * ptl_task_submit(), and the verdict comes back through `done`.
 */

/** Service name prefix and interface version of this header. */
#define PTL_FILTER_SERVICE_PREFIX "filter."
#define PTL_FILTER_VERSION        1

/** Hook points, in the order a session meets them. */
enum ptl_filter_hook {
	/** Connection accepted (after the TLS handshake on implicit TLS),
	 *  before the greeting. */
	PTL_FILTER_CONNECT = 0,
	/** HELO or EHLO accepted by the server; `helo` is set. */
	PTL_FILTER_HELO = 1,
	/** MAIL FROM accepted by the server; `mail_from` is set. */
	PTL_FILTER_MAIL = 2,
	/** One RCPT TO accepted by the server; `rcpt` is the recipient. */
	PTL_FILTER_RCPT = 3,
	/** End of data (DATA or the last BDAT chunk): the message is
	 *  complete in `message_fd`, before it is delivered. */
	PTL_FILTER_DATA = 4,
};

/** Number of hook points. */
#define PTL_FILTER_HOOKS 5
/** Bit of @p hook in ptl_filter_methods.hooks. */
#define PTL_FILTER_HOOK_BIT(hook) (1u << (unsigned)(hook))

/** What a filter decides. */
enum ptl_filter_action {
	/** No objection: ask the next filter, then proceed normally. */
	PTL_FILTER_CONTINUE = 0,
	/** Proceed normally and skip the remaining filters of this hook
	 *  (this hook only: later hooks still run every filter). The
	 *  server's own policy (relay, recipients, limits) is never
	 *  overridden. */
	PTL_FILTER_ACCEPT = 1,
	/**
	 * Refuse with a permanent error. CONNECT: the reply replaces the
	 * greeting and the connection closes. HELO: the HELO/EHLO is
	 * refused (the client may try again). MAIL, RCPT: that command is
	 * refused. DATA: the message is refused (nothing is delivered).
	 */
	PTL_FILTER_REJECT = 2,
	/** Like REJECT with a temporary error (4xx): the client retries
	 *  later. On CONNECT the reply is 421 and the connection closes. */
	PTL_FILTER_TEMPFAIL = 3,
	/**
	 * Answer as if accepted but deliver nothing. On CONNECT or HELO it
	 * applies to every message of the session, on MAIL, RCPT or DATA
	 * to the current message (all its recipients).
	 */
	PTL_FILTER_DISCARD = 4,
	/** Accept and deliver into the folder `folder` (default
	 *  "Quarantine") instead of the inbox. Scope as DISCARD. */
	PTL_FILTER_QUARANTINE = 5,
};

/** A header field to add to the message, above the Received: field. */
struct ptl_filter_header {
	/** Field name: 1..76 printable ASCII characters, no ':' or space. */
	const char *name;
	/**
	 * Field body: printable ASCII, UTF-8 or tabs and spaces; no CR, LF
	 * or NUL (the server folds nothing: keep it under 900 bytes). An
	 * invalid header is dropped and logged, the verdict still counts.
	 */
	const char *value;
};

/**
 * A verdict. Strings and the header array need to stay valid only
 * during the check() call that returns it or the done() call that
 * passes it: the session copies what it keeps.
 */
struct ptl_filter_verdict {
	enum ptl_filter_action action;
	/**
	 * REJECT: a 5xx code, TEMPFAIL: a 4xx code; 0 (or a code of the
	 * wrong class) takes the default: 550 (554 on CONNECT) for REJECT,
	 * 451 (421 on CONNECT) for TEMPFAIL.
	 */
	unsigned code;
	/** Enhanced status code "C.S.D" with C matching the code's class;
	 *  NULL or invalid: "5.7.1" / "4.7.1". */
	const char *enhanced;
	/** Reply text: printable ASCII, at most 200 bytes (longer text is
	 *  cut, other bytes become '?'); NULL: a generic text. */
	const char *text;
	/** QUARANTINE: the storage folder; NULL: "Quarantine". */
	const char *folder;
	/**
	 * Header fields to add, with any action (ignored when the message
	 * is refused). Added on CONNECT or HELO, they go into every
	 * message of the session; at most 32 per message.
	 */
	const struct ptl_filter_header *headers;
	size_t nheaders;
};

/**
 * What a filter sees at a hook. Every pointer is valid during the
 * check() call only; copy what you keep. Fields that do not apply at the
 * hook (or before the session reached them) are NULL, 0 or -1.
 *
 * New fields are only ever appended: read a field only when
 * `struct_size` covers it, e.g.
 * `req->struct_size >= offsetof(struct ptl_filter_request, field) +
 *  sizeof(req->field)`.
 */
struct ptl_filter_request {
	size_t struct_size;        /**< sizeof the caller's struct */
	enum ptl_filter_hook hook; /**< where the session is */

	/* The connection (every hook). */
	const char *session_id; /**< connection id as in the logs */
	const char *peer_ip;    /**< client address, text */
	uint16_t peer_port;
	const char *local_ip; /**< the listener's address */
	uint16_t local_port;
	const char *role;        /**< "mx", "submission" or "submissions" */
	const char *tls_version; /**< e.g. "TLSv1.3"; NULL: plaintext */
	const char *tls_cipher;  /**< NULL: plaintext */
	const char *auth_user;   /**< authenticated user; NULL: none */
	bool trusted;            /**< client is in trusted_networks */

	/* HELO and later. */
	const char *helo; /**< the HELO/EHLO argument as sent (no CR/LF) */
	bool esmtp;       /**< EHLO, not HELO */

	/* MAIL and later: the transaction. */
	const char *message_id; /**< id of the transaction in the logs */
	const char *mail_from;  /**< reverse path without <>; "" for <> */
	bool smtputf8;          /**< MAIL had SMTPUTF8 */
	const char *body;       /**< "7BIT", "8BITMIME", "BINARYMIME" or
	                             NULL when MAIL had no BODY= */
	/** Recipients accepted so far (at DATA: all), "local@domain". */
	const char *const *rcpts;
	size_t nrcpts;

	/* RCPT: the recipient being decided. */
	const char *rcpt;

	/* DATA: the message as it will be delivered (without the fields
	 * that filters add). Read it with pread(); never write, seek with
	 * lseek or close it. Lines end in CRLF. */
	int message_fd;               /**< -1 before DATA */
	uint64_t message_size;        /**< bytes in message_fd */
	uint64_t message_body_offset; /**< where the client's data starts
	                                  (after the server's Received:) */
};

/**
 * Completion of an asynchronous check(): called exactly once on the loop
 * thread, never from inside check() itself, unless the session called
 * cancel() first. @p verdict may be NULL, which counts as an error (see
 * ptl_filter_methods.flags).
 */
typedef void (*ptl_filter_done_fn)(const struct ptl_filter_verdict *verdict,
                                   void *arg);

/** ptl_filter_methods.flags: on error or timeout, continue instead of
 *  failing the command with a temporary error. */
#define PTL_FILTER_FAIL_OPEN 0x1u

/**
 * Methods of a filter service (struct ptl_service.methods). `instance` is
 * the provider's ptl_service.instance.
 */
struct ptl_filter_methods {
	unsigned version; /**< PTL_FILTER_VERSION the provider implements */
	/** PTL_FILTER_HOOK_BIT() of every hook to be called at. */
	unsigned hooks;
	/** PTL_FILTER_FAIL_OPEN or 0 (fail closed: errors and timeouts give
	 *  a temporary error: 451 4.7.1, 421 on CONNECT). */
	unsigned flags;
	/** Longest wait for an asynchronous verdict in ms; 0: the smtp
	 *  module's filter_timeout. On expiry the session calls cancel()
	 *  and treats the filter as failed. */
	int64_t timeout_ms;

	/**
	 * Decide on @p req. Either fill *@p verdict_out and return PTL_OK
	 * (done is not called), or return PTL_AGAIN and later call
	 * @p done(verdict, @p arg) exactly once. PTL_ERROR counts as a
	 * failure (see flags); done is then not called.
	 *
	 * @p arg identifies the session: it is the same for every call of
	 * one session and unique among live sessions, so a filter may key
	 * per-session state on it (freed in session_end()).
	 */
	int (*check)(void *instance, const struct ptl_filter_request *req,
	             struct ptl_filter_verdict *verdict_out,
	             ptl_filter_done_fn done, void *arg);

	/**
	 * Forget the pending asynchronous check() of session @p arg (it
	 * timed out or the session is going away): done must not be
	 * called after cancel() returns. No-op when none is pending.
	 */
	void (*cancel)(void *instance, void *arg);

	/**
	 * The session @p arg ended (may be NULL). Called once for each
	 * filter whose check() was called at least once in the session,
	 * after cancel(). Free per-session state here.
	 */
	void (*session_end)(void *instance, void *arg);
};

#ifdef __cplusplus
}
#endif
#endif
