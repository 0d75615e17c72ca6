/* SPDX-License-Identifier: MIT */
/* Internals of the SMTP client session, shared by its three files. */
#ifndef PETREL_QUEUE_SMTPC_INT_H
#define PETREL_QUEUE_SMTPC_INT_H

#include <netinet/in.h>

#include "smtpc.h"

/*
 * How a session runs
 *
 * A session is one connection to one address. It greets (EHLO, HELO
 * when EHLO is refused), upgrades with STARTTLS as the target's policy
 * says and greets again, authenticates when the route has credentials,
 * then runs transactions: one per message, on the same connection when
 * the engine parks it between messages.
 *
 * Commands go out in the order their replies are read back; with
 * PIPELINING (RFC 2920) MAIL, every RCPT and DATA leave in one write.
 * `outstanding` counts the replies still owed: input is read only while
 * some are, so a server that talks out of turn is caught, and nothing
 * read before the STARTTLS handshake survives it (the core discards the
 * buffer: SECURITY.md #2, client side).
 *
 * The result of a transaction goes to its callback as soon as it is
 * known, never from inside a call the engine made (a timer defers it
 * when needed). After SMTPC_NEXT_HOST and SMTPC_TLS_RETRY the session
 * closes on its own; it frees itself at the connection's CLOSED event.
 *
 * smtpc_session.c owns the session (start, events, input, teardown),
 * smtpc_handshake.c reads the replies up to the first transaction, and
 * smtpc_txn.c runs the transactions; they share what is below.
 */

/* "host[address]:port" */
#define SMTPC_PEER_MAX (RELAY_HOST_MAX + INET6_ADDRSTRLEN + 10)

enum smtpc_phase {
	SMTPC_CONNECTING = 0,
	SMTPC_GREETING,
	SMTPC_EHLO,
	SMTPC_HELO,
	SMTPC_STARTTLS,
	SMTPC_HANDSHAKE,
	SMTPC_AUTH,
	SMTPC_TXN,     /* replies to MAIL, RCPT, DATA */
	SMTPC_SENDING, /* message data going out */
	SMTPC_DOT,     /* reply to the end of data */
	SMTPC_IDLE,    /* parked between messages */
	SMTPC_QUIT,    /* reply to QUIT */
	SMTPC_CLOSING, /* waiting for CLOSED */
};

struct smtpc_session {
	uint32_t magic;
	struct ptl_conn *conn;
	const struct smtpc_conf *conf;
	enum smtpc_phase phase;
	struct ptl_timer *timer; /* deferred results */

	char helo[RELAY_HOST_MAX];
	char host[RELAY_HOST_MAX];
	char peer[SMTPC_PEER_MAX];
	enum relay_tls_policy tls_policy;
	bool no_starttls;
	char *ca_file;
	char *auth_user;
	char *auth_password;

	struct smtpc_reply reply;
	unsigned outstanding; /* replies owed by the server */
	struct smtpc_caps caps;
	bool ehlo_done;
	bool tls;
	bool starttls_refused;
	bool authed;
	unsigned messages;
	bool clean; /* no transaction open: another may start */

	/* The running transaction. */
	bool has_txn;
	struct smtpc_txn txn;
	size_t *order;  /* recipients in RCPT order */
	bool *accepted; /* by position in order */
	size_t norder;
	size_t sent;     /* commands sent: 0 MAIL, 1..norder RCPT, DATA */
	size_t answered; /* replies read, same numbering */
	bool pipelining;
	bool bdat;
	bool mail_ok;
	bool utf8; /* MAIL carries SMTPUTF8 */
	size_t naccepted;
	char mail_reply[SMTPC_REPLY_TEXT_MAX];
	int mail_code;
	struct smtpc_data data;
	bool data_started;

	/* The result waiting for the timer. */
	bool result_pending;
	enum smtpc_outcome result;

	char reason[SMTPC_REPLY_TEXT_MAX];
	bool reason_remote;
	bool permanent;

	smtpc_closed_fn closed;
	void *closed_arg;
};

enum smtpc_close_mode {
	SMTPC_CLOSE_ABORT = 0, /* drop queued output: data may be incomplete */
	SMTPC_CLOSE_FLUSH,     /* send what is queued, then close */
	SMTPC_CLOSE_QUIT,      /* say QUIT first (its reply does not matter) */
};

/* Reasons go into bounces and logs: relay_text() keeps them one
 * printable ASCII line. */
#define smtpc_set_reason(s, remote, ...)                                       \
	do {                                                                   \
		relay_text((s)->reason, sizeof((s)->reason), __VA_ARGS__);     \
		(s)->reason_remote = (remote);                                 \
	} while (0)

/* ---- smtpc_session.c ----------------------------------------------------- */

/** The phase's name for logs and reasons ("EHLO", "end of data"). */
const char *smtpc_phase_name(enum smtpc_phase phase);

/** Idle timeout of the connection from now on (no-op once it is gone). */
void smtpc_set_timeout(struct smtpc_session *s, int64_t ms);

/** Hand the transaction's result to its callback now, then forget it. */
void smtpc_report(struct smtpc_session *s, enum smtpc_outcome outcome);

/** The same from a zero timer: for when the engine may be on the stack. */
void smtpc_report_later(struct smtpc_session *s, enum smtpc_outcome outcome);

/** Start closing (phase CLOSING); the CLOSED event frees the session. */
void smtpc_close(struct smtpc_session *s, enum smtpc_close_mode mode);

/** Set the result of recipient @p i (an index into the job's rcpts). */
void smtpc_settle(struct smtpc_session *s, size_t i,
                  enum relay_rcpt_status status, const char *reply,
                  bool remote);

/** Set the result of every recipient still without one. */
void smtpc_settle_all(struct smtpc_session *s, enum relay_rcpt_status status,
                      const char *reply, bool remote);

/**
 * Close the connection and report the transaction (later) as
 * SMTPC_NEXT_HOST, or SMTPC_DONE once message data has left. The reason
 * must be set first. @p polite says QUIT before closing.
 */
void smtpc_fail(struct smtpc_session *s, bool polite);

/** smtpc_fail() after an I/O failure: @p what goes into the reason. */
void smtpc_fail_io(struct smtpc_session *s, const char *what);

/**
 * Send one command line and count the reply it is owed.
 * @return PTL_OK, or PTL_ERROR (the session is failing: stop).
 */
int smtpc_write(struct smtpc_session *s, const char *fmt, ...) PTL_PRINTF(2, 3);

/* ---- smtpc_handshake.c --------------------------------------------------- */

/* Replies in the phases GREETING, EHLO/HELO, STARTTLS and AUTH; the last
 * of them starts the transaction (smtpc_txn_begin). */
void smtpc_on_greeting(struct smtpc_session *s);
void smtpc_on_ehlo(struct smtpc_session *s);
void smtpc_on_starttls(struct smtpc_session *s);
void smtpc_on_auth(struct smtpc_session *s);

/** The TLS handshake after STARTTLS completed: check it, EHLO again. */
void smtpc_on_tls_ready(struct smtpc_session *s);

/* ---- smtpc_txn.c --------------------------------------------------------- */

/** Start the transaction in s->txn (no-op without one). */
void smtpc_txn_begin(struct smtpc_session *s);

/** A reply to MAIL, RCPT, DATA or BDAT (phase TXN). */
void smtpc_on_txn_reply(struct smtpc_session *s);

/**
 * The reply to the message data: @p premature when it came before the
 * data was all sent (phase SENDING).
 */
void smtpc_on_data_reply(struct smtpc_session *s, bool premature);

/** The write queue drained while sending the message: send more. */
void smtpc_continue_data(struct smtpc_session *s);

/** Release the transaction's buffers (safe to call twice). */
void smtpc_txn_free(struct smtpc_session *s);

#endif
