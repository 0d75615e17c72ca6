/* SPDX-License-Identifier: MIT */
/* The filter service: verdicts on SMTP sessions at fixed hook points. */
#ifndef PETREL_FILTER_H
#define PETREL_FILTER_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <petrel/config.h>
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
 * the smtp module; filters run in that order. An entry may also be an
 * object that sets a timeout, the verdict applied on timeout or error,
 * and the roles or listeners whose sessions the filter sees (per-role
 * chains: see docs/filters.md); a filter is called only in sessions of
 * those listeners.
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
 *
 * Versions: this header is interface version 2. Version 2 only appended
 * to version 1: the hook PTL_FILTER_RELAY, the verdict fields `result`,
 * `edits` and `nedits`, and the request fields `trace`, `ntrace`,
 * `remote_rcpts` and `nremote_rcpts`. The smtp module still loads
 * version 1 filters (it looks them up with PTL_FILTER_VERSION_MIN): it
 * never calls them at PTL_FILTER_RELAY and never reads the version 2
 * verdict fields from them. A filter built against this header declares
 * PTL_FILTER_VERSION in `provides` and in ptl_filter_methods.version.
 */

/** Service name prefix and interface version of this header. */
#define PTL_FILTER_SERVICE_PREFIX "filter."
#define PTL_FILTER_VERSION        2
/** Oldest interface version a consumer of filters still accepts. */
#define PTL_FILTER_VERSION_MIN 1

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
	/**
	 * Version 2. Before relay: after the DATA hook, for a message with
	 * at least one remote recipient (`remote_rcpts`), before it is
	 * handed to the queue. `message_fd` holds the message with the
	 * header edits of earlier verdicts applied. The verdict applies to
	 * the whole message, as at DATA. Called only for filters whose
	 * methods.version is 2 or more.
	 */
	PTL_FILTER_RELAY = 5,
	/* New hooks are only ever appended here. */
};

/**
 * Number of hook points of this header: one more than the last hook.
 * It grows when a hook is appended (it was 5 in version 1), so size
 * per-hook arrays with it and index them only with hooks whose bit the
 * filter set in `hooks`: a filter is never called at another hook.
 */
#define PTL_FILTER_HOOKS 6
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
	 *  "Quarantine") instead of the inbox. Scope as DISCARD. Remote
	 *  recipients of a quarantined message are not relayed (logged). */
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

/** What a header edit does (version 2). */
enum ptl_filter_header_op {
	/** Add `name: value`, like ptl_filter_verdict.headers. */
	PTL_FILTER_HEADER_ADD = 0,
	/** Remove the `index`-th field called `name` (0: every one). */
	PTL_FILTER_HEADER_REMOVE = 1,
	/**
	 * Give the `index`-th field called `name` the body `value`, in
	 * place (0: the first one, and remove the others). When the
	 * message has no such field, it is added at the end of the header
	 * section.
	 */
	PTL_FILTER_HEADER_REPLACE = 2,
};

/**
 * A header edit (version 2). REMOVE and REPLACE act on the header
 * section the client sent, never on the fields the server writes
 * (Return-Path, Delivered-To, Received) nor on fields added by filters.
 * Names compare case-insensitively. Edits are applied when the message
 * is delivered (the spool copy is rewritten by streaming, the body is
 * never loaded); filters later in the chain at the same hook see the
 * message before the edits, filters at PTL_FILTER_RELAY after them. The
 * same limits as for `headers` apply (name, value, 32 per message).
 */
struct ptl_filter_header_edit {
	enum ptl_filter_header_op op;
	const char *name;  /**< field name */
	const char *value; /**< ADD, REPLACE: the field body */
	unsigned index;    /**< REMOVE, REPLACE: 1-based; 0: all */
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

	/* Version 2: read only from filters whose methods.version >= 2. */

	/**
	 * Free-form result recorded in the trace (see struct
	 * ptl_filter_trace), as `method=result property=value ...` in the
	 * shape of an RFC 8601 resinfo, e.g. "spf=pass
	 * smtp.mailfrom=a@example.org" or "dkim=pass header.d=example.org";
	 * printable ASCII or UTF-8, at most 256 bytes (longer is cut, control
	 * bytes become '?'). NULL: none.
	 */
	const char *result;
	/** Header edits (add, remove, replace), in order. */
	const struct ptl_filter_header_edit *edits;
	size_t nedits;
};

/** ptl_filter_trace.flags: the filter gave no verdict in time. */
#define PTL_FILTER_TRACE_TIMEOUT 0x1u
/** ptl_filter_trace.flags: check() or done() failed (no verdict). */
#define PTL_FILTER_TRACE_ERROR 0x2u

/**
 * One verdict as recorded by the session (version 2): every verdict of
 * every filter at every hook, in the order they were given. Entries of
 * the CONNECT and HELO hooks last for the session (a new HELO/EHLO
 * replaces the HELO ones), the others for the transaction. Read-only;
 * valid during the check() call that sees it.
 *
 * New fields are only ever appended: read one only when `struct_size`
 * covers it.
 */
struct ptl_filter_trace {
	size_t struct_size;
	const char *filter;            /**< module name of the filter */
	enum ptl_filter_hook hook;     /**< where it was given */
	enum ptl_filter_action action; /**< what the session applied
	                                   (for a failure: the configured
	                                   on_timeout / on_error action) */
	unsigned code;                 /**< reply code sent; 0: none */
	const char *enhanced;          /**< with code; else NULL */
	const char *text;              /**< reply text sent; else NULL */
	const char *result;            /**< the verdict's result; never
	                                   NULL, "" when none */
	unsigned flags;                /**< PTL_FILTER_TRACE_* */
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

	/* DATA, RELAY: the message as it will be delivered (without the
	 * fields that filters add). Read it with pread(); never write, seek
	 * with lseek or close it. Lines end in CRLF. The descriptor is
	 * valid during check() only: a filter that reads the message after
	 * check() returned (on ptl_task_submit()) reads from a dup() of it
	 * that it closes itself, since the session may end meanwhile. */
	int message_fd;               /**< -1 before DATA */
	uint64_t message_size;        /**< bytes in message_fd */
	uint64_t message_body_offset; /**< where the client's data starts
	                                  (after the server's Received:) */

	/* Version 2 (check struct_size before reading). */

	/** The verdicts given so far in this session and transaction,
	 *  oldest first (see struct ptl_filter_trace). */
	const struct ptl_filter_trace *const *trace;
	size_t ntrace;
	/** RELAY: the recipients handed to the queue; else NULL, 0. */
	const char *const *remote_rcpts;
	size_t nremote_rcpts;
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
 *  failing the command with a temporary error. The admin's on_timeout
 *  and on_error settings, when given, take precedence. */
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
	 *  module's filter_timeout. A "timeout" in the filter's entry of
	 *  the smtp config takes precedence. On expiry the session calls
	 *  cancel() and treats the filter as failed. */
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

/* ---- Helpers for filter modules (header-only: no ABI of their own) --- */

/**
 * Whether a request's @p role ("mx", "submission", "submissions", or
 * NULL) is in @p roles, a "roles" list of the filter's config; an empty
 * list means every role.
 */
static inline bool
ptl_filter_role_listed(const struct ptl_conf_list *roles, const char *role)
{
	const char *const *items = (const char *const *)roles->items;

	if (roles->count == 0)
		return true;
	for (size_t i = 0; role != NULL && i < roles->count; i++) {
		if (strcmp(items[i], role) == 0)
			return true;
	}
	return false;
}

/**
 * A `validate` function for a PTL_CONF_STRING_LIST of roles: each item
 * must be "mx", "submission" or "submissions".
 */
static inline int
ptl_filter_validate_roles(const json_t *value, void *field,
                          struct ptl_error *err)
{
	const struct ptl_conf_list *list = (const struct ptl_conf_list *)field;
	const char *const *items = (const char *const *)list->items;

	(void)value;
	for (size_t i = 0; i < list->count; i++) {
		if (strcmp(items[i], "mx") != 0 &&
		    strcmp(items[i], "submission") != 0 &&
		    strcmp(items[i], "submissions") != 0)
			return ptl_error_set(err,
			                     "\"%s\" is not a role (\"mx\", "
			                     "\"submission\", \"submissions\")",
			                     items[i]);
	}
	return PTL_OK;
}

#ifdef __cplusplus
}
#endif
#endif
