/* SPDX-License-Identifier: MIT */
/* The outbound SMTP client: reply parser, data encoder, sessions. */
#ifndef PETREL_QUEUE_SMTPC_H
#define PETREL_QUEUE_SMTPC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <petrel/petrel.h>

#include "relay.h"
#include "relay_mx.h"
#include "smtpc_conf.h"

/* ---- Replies (smtpc_reply.c, pure) ----------------------------------- */

/*
 * Bounds of one server reply. RFC 5321 4.5.3.1.5 allows 512 octets per
 * reply line; real servers sometimes send more, so a line may take twice
 * that, but a reply never grows without end (OpenSMTPD CVE-2020-8794 was
 * a client that mishandled multi-line replies).
 */
#define SMTPC_REPLY_LINE_MAX  1024  /* octets per line, CRLF included */
#define SMTPC_REPLY_LINES_MAX 100   /* lines per reply */
#define SMTPC_REPLY_BYTES_MAX 65536 /* octets per reply */
/* The summary kept of a reply: what a result's reply field holds. */
#define SMTPC_REPLY_TEXT_MAX 512

/** A reply being read, line by line. */
struct smtpc_reply {
	int code; /* 0 before the first line */
	size_t nlines;
	size_t bytes;
	bool complete; /* the last line was read */
	/* "550 5.1.1 text of line 1 text of line 2", printable ASCII,
	 * NUL-terminated, truncated to fit. */
	char text[SMTPC_REPLY_TEXT_MAX];
	size_t text_len;
	size_t enh_len;    /* length of line 1's enhanced status code */
	const char *error; /* why feed() returned PTL_ERROR (static text) */
};

/** Start reading a new reply. */
void smtpc_reply_reset(struct smtpc_reply *r);

/**
 * Feed one line (@p len bytes, the terminator included or not). On
 * success *@p text_out / *@p text_len_out give the line's text after the
 * code and separator (borrowed from @p line), for EHLO keywords.
 * @return PTL_AGAIN (a continuation line: more follow), PTL_OK (the last
 * line: the reply is complete), PTL_ERROR (malformed or over a bound:
 * r->error says why; the connection cannot be trusted any more).
 */
int smtpc_reply_feed(struct smtpc_reply *r, const char *line, size_t len,
                     const char **text_out, size_t *text_len_out);

/** Reply class: 2, 3, 4 or 5 (0 when no code). */
static inline int
smtpc_reply_class(const struct smtpc_reply *r)
{
	return r->code / 100;
}

/* ESMTP extensions from an EHLO reply. */
#define SMTPC_EXT_PIPELINING 0x001u
#define SMTPC_EXT_STARTTLS   0x002u
#define SMTPC_EXT_SIZE       0x004u
#define SMTPC_EXT_8BITMIME   0x008u
#define SMTPC_EXT_SMTPUTF8   0x010u
#define SMTPC_EXT_DSN        0x020u
#define SMTPC_EXT_AUTH_PLAIN 0x040u
#define SMTPC_EXT_CHUNKING   0x080u
#define SMTPC_EXT_BINARYMIME 0x100u
#define SMTPC_EXT_ENHANCED   0x200u

/** What the server announced. */
struct smtpc_caps {
	unsigned ext;      /* SMTPC_EXT_* */
	uint64_t size_max; /* SIZE limit; 0: none announced */
};

/**
 * Read one keyword line of an EHLO reply (the text after "250-"/"250 ";
 * not the first line, which is the server's name). Unknown keywords and
 * malformed parameters are ignored.
 */
void smtpc_caps_line(struct smtpc_caps *caps, const char *text, size_t len);

/**
 * Encode @p len bytes as RFC 3461 xtext into @p out (capacity @p cap).
 * @return the length written (NUL not counted), or (size_t)-1 when it
 * does not fit.
 */
size_t smtpc_xtext(char *out, size_t cap, const char *in, size_t len);

/**
 * Whether @p addr may go into a MAIL FROM/RCPT TO path: no controls,
 * spaces, '<' or '>'; non-ASCII only when @p utf8 is allowed; at most
 * 512 octets.
 */
bool smtpc_address_ok(const char *addr, bool utf8);

/** Whether @p s is all ASCII. */
bool smtpc_is_ascii(const char *s);

/* ---- Message data (smtpc_data.c) ------------------------------------- */

/** State of the DATA encoder across chunks. */
struct smtpc_dot {
	bool line_start; /* the next byte starts a line */
	bool pending_cr; /* a CR was seen; its LF may follow */
};

void smtpc_dot_init(struct smtpc_dot *d);

/**
 * Encode @p len message bytes for DATA (RFC 5321 4.5.2): every bare CR
 * and every bare LF becomes CRLF (SECURITY.md #1: no bare CR or LF ever
 * leaves, so no end-of-data can be smuggled), and a '.' starting a line
 * is doubled. @p out needs room for 2 * len + 2 bytes.
 * @return the bytes written to @p out.
 */
size_t smtpc_dot_encode(struct smtpc_dot *d, const char *in, size_t len,
                        char *out);

/**
 * End the data: a line break if the message did not end with one, then
 * ".\r\n". @p out needs 8 bytes. @return the bytes written.
 */
size_t smtpc_dot_finish(struct smtpc_dot *d, char *out);

/** Streaming of one message to a connection. */
struct smtpc_data {
	int fd;
	uint64_t size;   /* bytes of the file to send */
	uint64_t offset; /* next byte to read */
	bool raw;        /* BDAT: bytes as they are; else DATA encoding */
	bool done;       /* everything, the final "." included, is queued */
	struct smtpc_dot dot;
	char *in;  /* read buffer (malloc, SMTPC_DATA_CHUNK) */
	char *out; /* encoded buffer (malloc, 2 * chunk + 8) */
};

#define SMTPC_DATA_CHUNK 16384

/** Prepare to send @p size bytes of @p fd. @return PTL_OK or PTL_ERROR. */
int smtpc_data_begin(struct smtpc_data *d, int fd, uint64_t size, bool raw,
                     struct ptl_error *err);

/**
 * Queue more of the message on @p c until its write queue is full.
 * @return PTL_AGAIN (wait for DRAINED, then call again), PTL_DONE (all
 * queued), or PTL_ERROR (read error, short file, connection refused the
 * write: the data must NOT be ended, the connection must be aborted).
 */
int smtpc_data_send(struct smtpc_data *d, struct ptl_conn *c,
                    struct ptl_error *err);

/** Release the buffers (safe to call twice). */
void smtpc_data_end(struct smtpc_data *d);

/* ---- Sessions (smtpc_session.c, smtpc_handshake.c, smtpc_txn.c) ------ */

/** Where and how one connection goes. Copied by smtpc_session_start(). */
struct smtpc_target {
	const char *host; /* name for logs, SNI and certificate checks */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	enum relay_tls_policy tls;
	bool no_starttls;      /* "may" retrying in clear after a failed
	                          handshake */
	const char *ca_file;   /* NULL: system store */
	const char *auth_user; /* AUTH PLAIN when set (TLS only) */
	const char *auth_password;
};

/** How one transaction attempt on a session ended. */
enum smtpc_outcome {
	/* Every recipient that got a result has settled[i] = true and its
	 * status/reply set; the others stay pending (deferred). */
	SMTPC_DONE = 0,
	/* Nothing was sent that could deliver: try another host. The
	 * reason is smtpc_session_reason(); permanent when the host
	 * refused us with 5xx at the greeting. */
	SMTPC_NEXT_HOST = 1,
	/* "may": the TLS handshake failed; the same address may be tried
	 * again without STARTTLS. */
	SMTPC_TLS_RETRY = 2,
};

struct smtpc_session;

/**
 * Result of a transaction. After SMTPC_NEXT_HOST or SMTPC_TLS_RETRY the
 * session is closing and belongs to nobody: forget it. After SMTPC_DONE
 * the callee must call smtpc_session_park() or smtpc_session_quit().
 */
typedef void (*smtpc_result_fn)(struct smtpc_session *s,
                                enum smtpc_outcome outcome, void *arg);
/** A parked (idle) session closed. Forget it. */
typedef void (*smtpc_closed_fn)(struct smtpc_session *s, void *arg);

/** One message's attempt on a session. */
struct smtpc_txn {
	struct relay_job *job;
	bool *settled; /* per recipient: a result is set, skip it */
	smtpc_result_fn done;
	void *arg;
};

/**
 * Connect to @p t, greet, EHLO, STARTTLS and AUTH as policy says, then
 * run @p txn. @p txn->done runs exactly once, never from inside this
 * call. @return the session, or NULL (err filled; nothing started).
 */
struct smtpc_session *smtpc_session_start(const struct smtpc_conf *conf,
                                          const char *helo,
                                          const struct smtpc_target *t,
                                          const struct smtpc_txn *txn,
                                          struct ptl_error *err);

/**
 * Run another transaction on a parked session.
 * @return PTL_OK (done follows, never from inside), PTL_ERROR (the
 * session is gone: nothing follows).
 */
int smtpc_session_send(struct smtpc_session *s, const struct smtpc_txn *txn);

/** Whether the session can carry another message. */
bool smtpc_session_reusable(const struct smtpc_session *s);

/**
 * Keep the session open, idle, for smtpc_session_send(); @p closed runs
 * when it closes meanwhile (timeout, server gone, aborted).
 */
void smtpc_session_park(struct smtpc_session *s, int64_t idle_ms,
                        smtpc_closed_fn closed, void *arg);

/** Say QUIT and close; no callback follows. */
void smtpc_session_quit(struct smtpc_session *s);

/** Close now; no callback follows. */
void smtpc_session_abort(struct smtpc_session *s);

/** Why the last transaction ended ("451 4.4.1 connect to ..."). */
const char *smtpc_session_reason(const struct smtpc_session *s);
/** Whether the remote server said it (else it is our own). */
bool smtpc_session_reason_remote(const struct smtpc_session *s);
/** Whether that reason is permanent (5xx greeting). */
bool smtpc_session_permanent(const struct smtpc_session *s);
/** "host[ip]:port" of the session. */
const char *smtpc_session_peer(const struct smtpc_session *s);
/** Messages sent on the session so far. */
unsigned smtpc_session_messages(const struct smtpc_session *s);

#endif
