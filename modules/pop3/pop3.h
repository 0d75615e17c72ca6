/* SPDX-License-Identifier: MIT */
/* POP3 module internals shared by its files (RFC 1939, 2449, 2595, 5034). */
#ifndef PETREL_POP3_H
#define PETREL_POP3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <petrel/petrel.h>

/* ---- Limits ----------------------------------------------------------- */

/* RFC 2449 section 4: a command line is at most 255 octets, CRLF included. */
#define POP3_MAX_LINE_DEFAULT 255
/*
 * RFC 5034 section 4: the 255-octet limit does not bind the client's
 * answer to a "+ " continuation. PLAIN with the longest name and password
 * below fits in base64 with room to spare.
 */
#define POP3_SASL_LINE_MAX 2048
/* Longest login name (an address is at most 64 + 1 + 255). */
#define POP3_USER_MAX 320
/* Longest password passed to the auth service. */
#define POP3_PASS_MAX 1024
/* RFC 1939 section 7: a unique-id is 1 to 70 characters 0x21..0x7e. */
#define POP3_UID_MAX 70
/* Verbs are 3 or 4 letters (RFC 1939 section 3). */
#define POP3_VERB_MAX 4

/* ---- Configuration (pop3_conf.c) ------------------------------------ */

enum pop3_tls_mode {
	POP3_TLS_STARTTLS = 0, /* index in pop3_tls_names */
	POP3_TLS_IMPLICIT = 1,
};

struct pop3_listen_conf {
	struct ptl_conf_address address;
	int tls; /* enum pop3_tls_mode */
};

struct pop3_conf {
	struct ptl_conf_list listen;                  /* pop3_listen_conf */
	struct ptl_conf_list plaintext_auth_networks; /* const char * */
	const char *greeting;
	int64_t idle_timeout_ms;
	int64_t session_timeout_ms;
	int64_t max_line;
	int64_t max_connections;
	int64_t max_per_ip;
	int64_t auth_failure_delay_ms;
	int64_t auth_failure_delay_max_ms;
	int64_t auth_max_failures;
	int64_t auth_failure_window_ms;
	uint64_t retr_chunk;
	uint64_t write_buffer;
};

extern const struct ptl_conf_key pop3_conf_keys[];

int pop3_check_config(struct ptl_instance *inst, const json_t *section,
                      void *conf, struct ptl_error *err);

/** One network prefix of plaintext_auth_networks. */
struct pop3_cidr {
	int family;       /* AF_INET or AF_INET6 */
	unsigned bits;    /* prefix length */
	uint8_t addr[16]; /* host bits zero */
};

/**
 * Parse "ADDR" or "ADDR/BITS". Host bits set below the prefix are refused
 * ("10.0.0.1/8" is most likely a typo).
 * @return PTL_OK, or PTL_ERROR with err->text.
 */
int pop3_cidr_parse(const char *text, struct pop3_cidr *out,
                    struct ptl_error *err);
/** Whether the textual address @p ip lies in @p net (v4-mapped v6 too). */
bool pop3_cidr_match(const struct pop3_cidr *net, const char *ip);

/* ---- Per-process state (pop3_module.c) ------------------------------ */

struct pop3_throttle;

/** What one worker process holds for the module instance. */
struct pop3_worker {
	const struct pop3_conf *conf;
	const struct ptl_auth_methods *auth;
	void *auth_instance;
	const struct ptl_storage_methods *storage;
	void *storage_instance;
	struct pop3_cidr *networks;
	size_t nnetworks;
	struct pop3_throttle *throttle;
};

/** What ptl_listener_add() hands back to pop3_session_accept(). */
struct pop3_listener {
	struct ptl_instance *inst;
	const struct pop3_conf *conf;
	bool implicit_tls;
};

/* ---- Command parser (pop3_parse.c) ---------------------------------- */

enum pop3_parse_mode {
	POP3_PARSE_COMMAND, /* VERB [SP args] CRLF */
	POP3_PARSE_LINE,    /* a whole line (a SASL response) */
};

/** Why a line was refused. */
enum pop3_parse_error {
	POP3_PARSE_OK = 0,
	POP3_PARSE_TOO_LONG, /* over max_line octets, CRLF included */
	POP3_PARSE_NUL,      /* a NUL byte */
	POP3_PARSE_BAD_VERB, /* empty, not letters, or over 4 letters */
	POP3_PARSE_BAD_CHAR, /* a control character or a CR without LF */
};

enum pop3_parse_state {
	POP3_PS_START,
	POP3_PS_VERB,
	POP3_PS_ARGS,
	POP3_PS_CR,   /* CR seen, LF must follow */
	POP3_PS_SKIP, /* refused line: drop bytes up to its LF */
};

/**
 * A resumable byte-wise parser: feed it whatever arrived, it keeps its
 * place across calls. The arguments are copied into @c args (owned by the
 * caller, @c args_cap bytes), so the connection's buffer can be consumed
 * at once.
 */
struct pop3_parser {
	enum pop3_parse_state state;
	enum pop3_parse_mode mode;
	enum pop3_parse_error error;
	size_t max_line; /* for the current mode, CRLF included */
	size_t line_len; /* octets of the current line so far */
	char verb[POP3_VERB_MAX + 1];
	size_t verb_len;
	char *args;
	size_t args_len;
	size_t args_cap;
};

/**
 * Set up @p p with @p args_cap bytes at @p args for arguments; lines in
 * COMMAND mode are limited to @p max_line octets.
 */
void pop3_parse_init(struct pop3_parser *p, char *args, size_t args_cap,
                     size_t max_line);
/** Switch mode for the next line (and its limit, capped by args_cap). */
void pop3_parse_set_mode(struct pop3_parser *p, enum pop3_parse_mode mode,
                         size_t max_line);
/** Forget a partial line. */
void pop3_parse_reset(struct pop3_parser *p);

/**
 * Feed @p len bytes. *@p used_out says how many were taken: all of them on
 * PTL_AGAIN, up to and including the LF otherwise.
 * @return PTL_OK (a complete command: verb (upper case, NUL-terminated)
 * and args (NUL-terminated, args_len bytes) are set), PTL_DECLINED (a
 * complete line was refused: p->error says why), or PTL_AGAIN.
 */
int pop3_parse_feed(struct pop3_parser *p, const char *data, size_t len,
                    size_t *used_out);

/**
 * A message number or line count: 1 to 10 ASCII digits, nothing else.
 * @return PTL_OK, or PTL_ERROR (empty, a sign, a non-digit, overflow).
 */
int pop3_parse_number(const char *s, size_t len, uint64_t *out);

/** Arguments of a command split at spaces. */
#define POP3_ARGS_MAX 2
struct pop3_args {
	const char *raw; /* the whole argument text (PASS takes it as is) */
	size_t raw_len;
	size_t argc; /* POP3_ARGS_MAX + 1 means "too many" */
	const char *argv[POP3_ARGS_MAX];
	size_t argl[POP3_ARGS_MAX];
	uint64_t num[POP3_ARGS_MAX]; /* numbers, filled by a command check */
};

/** Split @p raw at runs of spaces into @p out. */
void pop3_args_split(const char *raw, size_t len, struct pop3_args *out);

/* ---- Failed logins per client address (pop3_throttle.c) ------------- */

/** Sets x ways: a bounded table, the stalest entry of a set is evicted. */
#define POP3_THROTTLE_SETS 128
#define POP3_THROTTLE_WAYS 8

/** @return an empty table remembering failures for @p window_ms. */
struct pop3_throttle *pop3_throttle_new(int64_t window_ms);
void pop3_throttle_free(struct pop3_throttle *t);
/** Failures of @p ip still remembered at @p now_ms. */
unsigned pop3_throttle_count(struct pop3_throttle *t, const char *ip,
                             int64_t now_ms);
/** Record a failure of @p ip. @return its remembered failures now. */
unsigned pop3_throttle_add(struct pop3_throttle *t, const char *ip,
                           int64_t now_ms);
/** Delay after @p failures failures: base doubled each time, capped. */
int64_t pop3_throttle_delay(int64_t base_ms, int64_t max_ms, unsigned failures);

/* ---- Message streaming (pop3_retr.c) -------------------------------- */

/**
 * Byte-stuffing state (RFC 1939 section 3): a line starting with "." gets
 * another "."; every line ends in CRLF (a bare LF gains its CR); TOP stops
 * after the header and N lines of body.
 */
struct pop3_dot {
	size_t line_len; /* octets of the current line before its LF */
	bool prev_cr;    /* the last octet seen was CR */
	bool top;        /* TOP: stop after lines_left body lines */
	bool in_body;
	uint64_t lines_left;
	bool done; /* TOP limit reached: nothing more to send */
};

void pop3_dot_init(struct pop3_dot *d, bool top, uint64_t lines);
/**
 * Encode @p len bytes into @p out (at least 2 * @p len bytes).
 * *@p used_out: input taken (less than @p len once TOP is done).
 * @return bytes written.
 */
size_t pop3_dot_encode(struct pop3_dot *d, const char *in, size_t len,
                       char *out, size_t *used_out);
/** End the response: a line end if one is missing, then ".\r\n" (at most
 *  5 bytes). @return bytes written. */
size_t pop3_dot_finish(struct pop3_dot *d, char *out);

/* ---- Session (pop3_session.c) --------------------------------------- */

/* "POP3": catches a stale or foreign pointer passed as the session. */
#define POP3_SESSION_MAGIC 0x504f5033u

enum pop3_phase {
	POP3_PHASE_HANDSHAKE,     /* implicit TLS: greet once it is up */
	POP3_PHASE_AUTHORIZATION, /* RFC 1939 section 4 */
	POP3_PHASE_TRANSACTION,   /* RFC 1939 section 5 */
	POP3_PHASE_UPDATE,        /* QUIT: removing the deleted messages */
	POP3_PHASE_CLOSING,       /* reading nothing more */
};

/* What a session waits for; commands are read only in POP3_WAIT_NONE. */
enum pop3_wait {
	POP3_WAIT_NONE,
	POP3_WAIT_STARTTLS, /* "+OK" of STLS sent, handshake running */
	POP3_WAIT_VERIFY,   /* auth service checks a password */
	POP3_WAIT_DELAY,    /* failed or throttled login: timer */
	POP3_WAIT_OPEN,     /* storage opens the mailbox */
	POP3_WAIT_READ,     /* storage opens a message */
	POP3_WAIT_STREAM,   /* sending RETR/TOP output */
	POP3_WAIT_LISTING,  /* sending a long LIST/UIDL output */
	POP3_WAIT_EXPUNGE,  /* UPDATE state */
};

/* A message being sent. */
struct pop3_stream {
	int fd;          /* -1 when none */
	uint64_t size;   /* octets to read */
	uint64_t offset; /* octets read so far */
	struct pop3_dot dot;
	bool in_memory;    /* tmpfs/memfd: reading never waits for a disk */
	bool nowait_ok;    /* RWF_NOWAIT works on this file */
	bool task_pending; /* a pool thread is reading into in[] */
	ssize_t task_got;  /* its result */
	int task_errno;
	bool retr;       /* RETR (counted as such), else TOP */
	bool finished;   /* the terminator is queued */
	char status[48]; /* "+OK ..." line sent with the first chunk */
	size_t status_len;
	char *in; /* chunk buffers, allocated at the first RETR */
	char *out;
	size_t chunk; /* capacity of in[]; out[] holds 2 * chunk + 8 */
};

struct pop3_session {
	uint32_t magic;
	enum pop3_phase phase;
	enum pop3_wait wait;
	/* The output queue is over its high-water mark: wait for DRAINED. */
	bool blocked;
	/* The client sent EOF: close once the buffered commands ran. */
	bool eof;
	/* "+ " was sent: the next line answers AUTH PLAIN. */
	bool sasl_pending;
	bool plaintext_ok; /* peer is in plaintext_auth_networks */

	struct ptl_conn *conn; /* NULL after CLOSED */
	const struct pop3_listener *listener;
	struct pop3_worker *worker;
	const struct pop3_conf *conf;
	char peer_ip[64];

	struct pop3_parser parser;
	char *linebuf; /* parser argument storage */

	char user[POP3_USER_MAX + 1]; /* from USER, or the login name */
	bool have_user;
	char mailbox_user[POP3_USER_MAX + 1]; /* canonical, from auth */
	const char *method;                   /* "USER" or "PLAIN" */
	unsigned failures;                    /* on this connection */
	bool verified_ok;                     /* WAIT_DELAY then open */
	struct ptl_timer *timer;

	/* TRANSACTION state */
	struct ptl_mailbox *mb;
	size_t count;
	uint64_t total_size;
	uint8_t *deleted; /* bitmap of count bits */
	size_t ndeleted;
	uint64_t deleted_size;
	bool uids_ok; /* every uid is a valid RFC 1939 unique-id */

	/* LIST/UIDL output resumed after DRAINED */
	bool listing_uidl;
	size_t listing_next;
	char listing_head[64]; /* "+OK ..." line sent with the first lines */
	size_t listing_head_len;
	/* UPDATE state: what expunge removes; kept until it completes. */
	size_t *expunge_idx;
	bool quit; /* QUIT was received */

	struct pop3_stream stream;

	/* Counters for the logout line. */
	unsigned n_retr, n_top;
	uint64_t bytes_sent;
};

/** Accept callback given to ptl_listener_add(). */
void pop3_session_accept(struct ptl_conn *c, void *arg);

/** Queue one reply line (CRLF added). */
void pop3_reply(struct pop3_session *s, const char *fmt, ...) PTL_PRINTF(2, 3);
/** Queue raw bytes; tracks backpressure like pop3_reply(). */
void pop3_write(struct pop3_session *s, const void *data, size_t len);

/** Leave a wait: read commands again. */
void pop3_session_continue(struct pop3_session *s);
/** Enter a wait: stop reading commands until pop3_session_continue(). */
void pop3_session_wait(struct pop3_session *s, enum pop3_wait wait);
/** End the connection after the queued output (QUIT, fatal errors). */
void pop3_session_close(struct pop3_session *s);
/**
 * A storage or auth completion ran after the connection was gone: free
 * the session if nothing else is pending. @return true when freed.
 */
bool pop3_session_orphan_done(struct pop3_session *s);
/** Whether the client may send a password now (TLS or trusted net). */
bool pop3_login_allowed(const struct pop3_session *s);

/* ---- Commands (pop3_cmd.c) ------------------------------------------ */

/* Command flags. */
#define POP3_CMD_AUTHORIZATION 0x1u /* valid in AUTHORIZATION state */
#define POP3_CMD_TRANSACTION   0x2u /* valid in TRANSACTION state */
#define POP3_CMD_PRE_TLS_OK    0x4u /* allowed where login needs TLS first */

/**
 * One command: validation (check) apart from action (proceed). check
 * answers the client itself and returns PTL_DECLINED to stop there.
 */
struct pop3_command {
	const char *verb;
	unsigned flags;
	int (*check)(struct pop3_session *s, struct pop3_args *a);
	void (*proceed)(struct pop3_session *s, const struct pop3_args *a);
};

/** The command table; ends with a NULL verb. */
extern const struct pop3_command pop3_commands[];

/** DRAINED during a long LIST/UIDL: send more. */
void pop3_listing_pump(struct pop3_session *s);

/* ---- Login (pop3_auth.c) -------------------------------------------- */

void pop3_cmd_user(struct pop3_session *s, const struct pop3_args *a);
void pop3_cmd_pass(struct pop3_session *s, const struct pop3_args *a);
void pop3_cmd_auth(struct pop3_session *s, const struct pop3_args *a);
/** The line that answers a "+ " continuation (parser LINE mode). */
void pop3_auth_sasl_line(struct pop3_session *s, const char *line, size_t len);
/** The delay timer fired (failed or throttled login). */
void pop3_auth_timer(struct pop3_session *s);

/* ---- RETR/TOP (pop3_retr.c) ----------------------------------------- */

/** Start sending message @p index (0-based); TOP when @p top. */
void pop3_retr_start(struct pop3_session *s, size_t index, bool top,
                     uint64_t lines);
/** DRAINED while streaming: send more. */
void pop3_retr_resume(struct pop3_session *s);
/** Release the stream's fd and buffers (not while a task is pending). */
void pop3_retr_release(struct pop3_session *s);

#endif
