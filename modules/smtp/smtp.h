/* SPDX-License-Identifier: MIT */
/* The smtp module's shared types: config, per-process state, sessions. */
#ifndef PETREL_SMTP_H
#define PETREL_SMTP_H

#include <stdbool.h>
#include <stdint.h>

#include <petrel/petrel.h>
#include <petrel/filter.h>
#include <petrel/queue.h>

#include "smtp_addr.h"
#include "smtp_authfail.h"
#include "smtp_cidr.h"
#include "smtp_data.h"
#include "smtp_edit.h"
#include "smtp_params.h"
#include "smtp_parse.h"
#include "smtp_sasl.h"

/* ---- Configuration (smtp_conf.c) ------------------------------------ */

/** Listener roles; the index in smtp_role_names. */
enum smtp_role {
	SMTP_ROLE_MX = 0,          /* port 25: mail for local domains */
	SMTP_ROLE_SUBMISSION = 1,  /* port 587: STARTTLS, AUTH, then mail */
	SMTP_ROLE_SUBMISSIONS = 2, /* port 465: implicit TLS (RFC 8314) */
};

extern const char *const smtp_role_names[];

/** One item of "listen". */
struct smtp_listen_conf {
	struct ptl_conf_address address;
	int role; /* enum smtp_role */
	int64_t max_connections;
	int64_t max_per_ip;
};

/** One entry of "filters" (a module name, or an object). */
struct smtp_filter_conf {
	const char *module;
	int64_t timeout;                /* ms; 0: the filter's own, then
	                                   filter_timeout */
	int on_timeout;                 /* SMTP_FILTER_ON_* */
	int on_error;                   /* SMTP_FILTER_ON_* */
	struct ptl_conf_list roles;     /* const char *: role names */
	struct ptl_conf_list listeners; /* const char *: listen addresses */
	uint32_t listen_mask;           /* bit i: applies to listen[i] */
};

/** What a filter failure (timeout, error) turns into. */
enum smtp_filter_on {
	SMTP_FILTER_ON_DEFAULT = 0, /* the filter's PTL_FILTER_FAIL_OPEN */
	SMTP_FILTER_ON_CONTINUE,
	SMTP_FILTER_ON_TEMPFAIL,
	SMTP_FILTER_ON_REJECT,
	SMTP_FILTER_ON_ACCEPT,
};

extern const char *const smtp_filter_on_names[];

/** The module's config section. */
struct smtp_conf {
	const char *hostname;
	struct ptl_conf_list local_domains;  /* const char * */
	struct ptl_conf_list local_literals; /* const char * */
	struct ptl_conf_list listen;         /* struct smtp_listen_conf */
	uint64_t max_message_size;
	int64_t max_recipients;
	int64_t max_errors;
	int64_t command_timeout; /* ms */
	int64_t data_timeout;    /* ms */
	int64_t session_timeout; /* ms */
	int64_t max_command_line;
	int64_t max_text_line;
	struct ptl_conf_list trusted_networks; /* const char * */
	bool starttls;
	bool auth_plaintext;
	int64_t auth_max_failures;
	int64_t auth_failure_delay; /* ms */
	bool vrfy;
	bool require_fqdn_sender;
	const char *spool_dir;
	json_t *filters;        /* the raw "filters" array */
	int64_t filter_timeout; /* ms */
	bool trace_header;      /* add Authentication-Results: */
	/* "filters" parsed by smtp_check_config(). */
	struct smtp_filter_conf *filter_list;
	size_t nfilter_list;
};

extern const struct ptl_conf_key smtp_conf_keys[];

int smtp_check_config(struct ptl_instance *inst, const json_t *section,
                      void *conf, struct ptl_error *err);

/* ---- Per-process state (smtp_module.c) ------------------------------- */

/** What ptl_listener_add() hands back on accept. */
struct smtp_listener {
	struct ptl_instance *inst;
	enum smtp_role role;
	bool implicit_tls;
	unsigned index; /* in "listen" */
};

/** A filter from the "filters" key, once found in the registry. */
struct smtp_filter_ref {
	const char *name; /* module name as configured */
	const struct ptl_filter_methods *m;
	void *instance;
	const struct smtp_filter_conf *conf;
	unsigned hooks; /* m->hooks less what its version cannot take */
};

/** Longest number of filters (a bit per filter in a session). */
#define SMTP_FILTERS_MAX 32

/** State of the module in one worker (or the single process). */
struct smtp_worker {
	struct ptl_instance *inst;
	const struct smtp_conf *conf;
	const char *hostname;

	const struct ptl_auth_methods *auth;
	void *auth_inst;
	const struct ptl_storage_methods *storage;
	void *storage_inst;
	/* Optional: without a queue, mail for other domains is refused. */
	const struct ptl_queue_methods *queue;
	void *queue_inst;
	bool queue_resolved;

	struct smtp_filter_ref filters[SMTP_FILTERS_MAX];
	size_t nfilters;
	bool filters_resolved; /* looked up (at the first connection) */
	bool filters_broken;   /* one is missing: sessions fail closed */

	struct smtp_cidr *trusted;
	size_t ntrusted;
	const char **local_domains; /* normalized */
	size_t nlocal_domains;
	const char **local_literals; /* "[192.0.2.1]", "[IPv6:...]" */
	size_t nlocal_literals;

	int spool_dirfd;
	const char *spool_dir;
	bool tls_unavailable; /* STARTTLS failed once: stop offering it */

	struct smtp_authfail *authfail;
	uint64_t next_message;
	unsigned sessions;
};

/* ---- Sessions -------------------------------------------------------- */

/* "SMTP": catches a stale or foreign pointer passed as a session. */
#define SMTP_SESSION_MAGIC 0x534d5450u
/* "TXN!": the same for transactions that outlive their session. */
#define SMTP_TXN_MAGIC 0x54584e21u

enum smtp_phase {
	SMTP_PHASE_HANDSHAKE = 0, /* implicit TLS: waiting for the handshake */
	SMTP_PHASE_CONNECT,       /* connect filters, then the greeting */
	SMTP_PHASE_COMMAND,       /* reading command lines */
	SMTP_PHASE_AUTH,          /* reading SASL responses */
	SMTP_PHASE_DATA,          /* reading a DATA body */
	SMTP_PHASE_BDAT,          /* reading a BDAT chunk */
	SMTP_PHASE_STARTTLS,      /* handshake after STARTTLS */
	SMTP_PHASE_CLOSING,       /* nothing more is read */
};

/* Where the running command is (see smtp_session.c). */
enum smtp_stage {
	SMTP_STAGE_NONE = 0,
	SMTP_STAGE_CHECK,   /* validation, may wait for a lookup */
	SMTP_STAGE_FILTER,  /* filters, may wait for verdicts */
	SMTP_STAGE_PROCEED, /* the action, may wait for storage */
};

struct smtp_session;

/* Command flags. */
#define SMTP_CMD_NEEDS_HELO 0x01u /* 503 before HELO/EHLO */
#define SMTP_CMD_NEEDS_MAIL 0x02u /* 503 outside a transaction */
#define SMTP_CMD_NO_TXN     0x04u /* 503 inside a transaction */
#define SMTP_CMD_NO_ARGS    0x08u /* 501 when arguments are given */
#define SMTP_CMD_PRE_TLS    0x10u /* 503 once TLS is on */
/* Ends a pipelined group: nothing after it is read before its reply
 * (STARTTLS, QUIT). */
#define SMTP_CMD_PIPELINE_LAST 0x20u
/* 530 on submission roles unless authenticated or trusted. */
#define SMTP_CMD_NEEDS_AUTH 0x40u

/**
 * A command: validation (check), the filter hook, then the action
 * (proceed). check/proceed return PTL_OK (go on / done), PTL_DECLINED
 * (refused, the reply is sent), or PTL_AGAIN (waiting: the completion
 * calls smtp_cmd_resume()).
 */
struct smtp_command {
	const char *verb;
	unsigned flags;
	int (*check)(struct smtp_session *s, const struct smtp_cmdline *cl);
	int hook; /* enum ptl_filter_hook, or -1 */
	int (*proceed)(struct smtp_session *s);
};

/** One accepted recipient. */
struct smtp_rcpt {
	const char *address; /* "local@domain" as accepted */
	bool remote;         /* not a local domain (queue) */
	/* Local, but NOTIFY=SUCCESS: stored by the queue's local route,
	 * which sends the "delivered" report (RFC 3461 section 6.2). */
	bool via_queue;
	bool utf8;
	const char **users; /* local: canonical users from the auth service */
	size_t nusers;
	struct smtp_rcpt_params params;
};

/** A spool file holding one message while it is received and delivered. */
struct smtp_spool {
	int fd;     /* -1: not open */
	char *buf;  /* write buffer (malloc) */
	size_t len; /* bytes in buf */
	size_t cap;
	uint64_t size; /* bytes in the file, buf included */
	int error;     /* first write errno; 0: none */
};

/**
 * A mail transaction: from MAIL to the end of its delivery. It has its
 * own pool and outlives the session when the client goes away while
 * storage is still writing (storage cannot cancel).
 */
struct smtp_txn {
	uint32_t magic;
	struct ptl_pool *pool;
	struct smtp_session *session; /* NULL once the session ended */
	struct smtp_worker *w;
	char id[48];

	const char *sender; /* "" for the null path */
	bool sender_utf8;
	struct smtp_mail_params params;

	struct smtp_rcpt *rcpts;
	const char **rcpt_addrs; /* rcpts[i].address, for filters */
	size_t nrcpts, rcpts_cap;
	struct smtp_rcpt pending; /* the RCPT being decided */

	/* The body. */
	struct smtp_spool spool;
	struct smtp_data_scan scan;
	uint64_t body_offset; /* where the client's bytes start in the spool */
	bool data_started;    /* spool open, Received: written */
	bool bdat;            /* body came by BDAT */

	/* Filter results. */
	char **headers; /* "Name: value\r\n" lines */
	size_t nheaders;
	struct smtp_edit *edits; /* remove/replace, applied at delivery */
	size_t nedits;
	bool discard;
	const char *folder;        /* quarantine folder; NULL: inbox */
	int eod_step;              /* smtp_eod.c: where end of data is */
	size_t edits_applied;      /* txn edits already in the spool file */
	const char **remote_addrs; /* RELAY hook: remote recipients */
	size_t nremote_addrs;

	/* Delivery. */
	int64_t received_at;
	unsigned pending_deliveries;
	unsigned delivered, tempfailed, permfailed;
	size_t nremote;    /* recipients handed to the queue (via_queue too) */
	char queue_id[64]; /* the queue's name for them */
	char fail_reason[160];
};

/** State of an AUTH exchange. */
struct smtp_sasl_state {
	int mech; /* SMTP_SASL_MECH_* (smtp_auth.c) */
	int step; /* what the next client line answers */
	char user[SMTP_SASL_USER_MAX + 1]; /* login name being tried */
};

/** Why the session timer runs. */
enum smtp_timer_use {
	SMTP_TIMER_NONE = 0,
	SMTP_TIMER_AUTH_DELAY, /* slowing down a failed AUTH */
	SMTP_TIMER_FILTER,     /* a filter's verdict is late */
};

/** Filter chain position of the running hook (smtp_filter.c). */
struct smtp_filter_run {
	int hook;       /* enum ptl_filter_hook, -1: none */
	size_t index;   /* filter being asked */
	bool waiting;   /* its verdict is pending */
	bool in_call;   /* inside its check() */
	bool early_set; /* done() came from inside check() */
	int early;      /* ...with this decision */
	uint32_t seen;  /* filters called in this session (bits) */
	/* Called with the chain's result instead of smtp_cmd_resume()
	 * when the chain finishes asynchronously (NULL: resume). */
	void (*on_done)(struct smtp_session *s, int rc);
};

/** The verdicts recorded in a session (smtp_filter.c). */
struct smtp_trace {
	struct ptl_filter_trace **items; /* malloc; each item one malloc */
	size_t count;
	size_t nsession; /* the first nsession are CONNECT/HELO ones */
	char txn_id[48]; /* transaction the others belong to */
	unsigned dropped;
};

struct smtp_session {
	uint32_t magic;
	enum smtp_phase phase;
	enum smtp_stage stage;
	struct ptl_conn *conn;
	struct smtp_worker *w;
	const struct smtp_listener *listener;

	/* The command running, and the transaction. */
	const struct smtp_command *cmd;
	struct smtp_txn *txn;
	bool in_stage;   /* inside a check/filter/proceed call */
	bool early_done; /* its completion came before it returned */
	int early_rc;

	struct smtp_filter_run frun;
	struct ptl_timer *timer; /* lazily created */
	enum smtp_timer_use timer_use;
	struct smtp_sasl_state *sasl; /* lazily, once */
	struct ptl_pool *scratch;     /* VRFY lookups */

	/* Session-wide filter results (CONNECT, HELO). */
	char **headers;
	size_t nheaders;
	struct smtp_edit *edits;
	size_t nedits;
	bool discard;
	const char *folder;
	struct smtp_trace trace;

	/* BDAT chunk being read. */
	uint64_t bdat_left;
	bool bdat_last;
	int bdat_refused; /* read the chunk, then refuse it (smtp_bdat.c) */

	char helo[SMTP_HELO_MAX + 1];
	const char *auth_user;
	int verify_rc; /* result of the last auth/lookup completion */

	unsigned errors;
	unsigned auth_failures;
	unsigned messages;
	unsigned commands;

	bool esmtp; /* EHLO (not HELO) was accepted */
	bool helo_done;
	bool trusted; /* peer is in trusted_networks */
	bool tls;     /* TLS is on */
	bool blocked; /* output over the high-water mark */
	bool closing;
	bool eof;     /* the client closed its side */
	bool rcpt_ok; /* the pending RCPT passed the lookup */
};

/* smtp_module.c */
void smtp_queue_resolve(struct smtp_worker *w);

/* smtp_session.c */
void smtp_session_accept(struct ptl_conn *c, void *arg);
void smtp_session_input(struct smtp_session *s);
void smtp_cmd_resume(struct smtp_session *s, int rc);
int smtp_cmd_start(struct smtp_session *s, const struct smtp_command *cmd,
                   const struct smtp_cmdline *cl);
void smtp_session_close(struct smtp_session *s, bool now);
void smtp_session_reset(struct smtp_session *s);
void smtp_session_set_phase(struct smtp_session *s, enum smtp_phase phase);
bool smtp_session_may_relay(const struct smtp_session *s);
bool smtp_session_auth_offered(const struct smtp_session *s);
bool smtp_session_starttls_offered(const struct smtp_session *s);
int smtp_session_timer(struct smtp_session *s, enum smtp_timer_use use,
                       int64_t ms);
void smtp_session_timer_stop(struct smtp_session *s);
void smtp_session_log_escape(char *out, size_t cap, const char *in);

/* smtp_reply.c */
void smtp_reply(struct smtp_session *s, unsigned code, const char *enhanced,
                const char *fmt, ...) PTL_PRINTF(4, 5);
void smtp_reply_line(struct smtp_session *s, const char *text, size_t len);
void smtp_reply_ehlo(struct smtp_session *s);

/* smtp_cmd.c */
const struct smtp_command *smtp_cmd_find(const struct smtp_cmdline *cl);
extern const struct smtp_command smtp_cmd_connect;

/* smtp_mail.c */
int smtp_mail_check(struct smtp_session *s, const struct smtp_cmdline *cl);
int smtp_mail_proceed(struct smtp_session *s);
int smtp_rcpt_check(struct smtp_session *s, const struct smtp_cmdline *cl);
int smtp_rcpt_proceed(struct smtp_session *s);
int smtp_vrfy_check(struct smtp_session *s, const struct smtp_cmdline *cl);
bool smtp_domain_is_local(struct smtp_session *s, const struct smtp_addr *a);
void smtp_txn_free(struct smtp_txn *t);
void smtp_txn_abort(struct smtp_session *s);

/* smtp_body.c */
int smtp_data_check(struct smtp_session *s, const struct smtp_cmdline *cl);
int smtp_data_proceed(struct smtp_session *s);
int smtp_body_begin(struct smtp_session *s);
int smtp_body_data_input(struct smtp_session *s);
bool smtp_body_overrun(struct smtp_session *s);
extern const struct smtp_command smtp_cmd_end_of_data;

/* smtp_bdat.c */
int smtp_bdat_check(struct smtp_session *s, const struct smtp_cmdline *cl);
int smtp_bdat_proceed(struct smtp_session *s);
int smtp_bdat_input(struct smtp_session *s);

/* smtp_spool.c */
int smtp_spool_create(struct smtp_worker *w);
int smtp_spool_open(struct smtp_spool *sp, struct smtp_worker *w);
void smtp_spool_write(struct smtp_spool *sp, const void *data, size_t len);
char *smtp_spool_space(struct smtp_spool *sp, size_t want, size_t *room_out);
void smtp_spool_commit(struct smtp_spool *sp, size_t n);
int smtp_spool_flush(struct smtp_spool *sp);
int smtp_spool_finish(struct smtp_spool *sp);
void smtp_spool_close(struct smtp_spool *sp);

/* smtp_deliver.c */
int smtp_deliver_start(struct smtp_session *s);

/* smtp_auth.c */
int smtp_auth_check(struct smtp_session *s, const struct smtp_cmdline *cl);
int smtp_auth_line(struct smtp_session *s, const char *line, size_t len);
void smtp_auth_timer(struct smtp_session *s);
extern const struct smtp_command smtp_cmd_auth_response;

/* smtp_filter.c */
int smtp_filter_resolve(struct smtp_worker *w, bool final);
int smtp_filter_run(struct smtp_session *s, int hook);
int smtp_filter_run_then(struct smtp_session *s, int hook,
                         void (*on_done)(struct smtp_session *s, int rc));
bool smtp_filter_wants(const struct smtp_session *s, int hook);
void smtp_filter_timeout(struct smtp_session *s);
void smtp_filter_end_session(struct smtp_session *s);
void smtp_filter_trace_free(struct smtp_session *s);
char *smtp_filter_trace_header(struct smtp_session *s, struct ptl_pool *pool);

/* smtp_filter_conf.c */
int smtp_filter_conf_check(struct smtp_conf *conf, struct ptl_pool *pool,
                           struct ptl_error *err);

/* smtp_eod.c */
int smtp_eod_proceed(struct smtp_session *s);

#endif
