/* SPDX-License-Identifier: MIT */
/* POP3 command table and the commands of CAPA, STLS and TRANSACTION state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3.h"

/* ---- Checks --------------------------------------------------------- */

static bool
pop3_is_deleted(const struct pop3_session *s, size_t index)
{
	return (s->deleted[index / 8] >> (index % 8)) & 1u;
}

static int
pop3_check_no_args(struct pop3_session *s, struct pop3_args *a)
{
	if (a->argc == 0)
		return PTL_OK;
	pop3_reply(s, "-ERR syntax error: no arguments expected");
	return PTL_DECLINED;
}

/*
 * RFC 1939 section 5: "msg" is 1..N and may not refer to a deleted
 * message. RETR 0, huge numbers and signs are refused here, before any
 * storage call.
 */
static int
pop3_check_msgnum(struct pop3_session *s, struct pop3_args *a, size_t i)
{
	uint64_t n;

	if (pop3_parse_number(a->argv[i], a->argl[i], &n) != PTL_OK) {
		pop3_reply(s, "-ERR syntax error: invalid message number");
		return PTL_DECLINED;
	}
	if (n == 0 || n > s->count) {
		pop3_reply(s, "-ERR no such message");
		return PTL_DECLINED;
	}
	if (pop3_is_deleted(s, (size_t)(n - 1))) {
		pop3_reply(s, "-ERR message %llu already deleted",
		           (unsigned long long)n);
		return PTL_DECLINED;
	}
	a->num[i] = n;
	return PTL_OK;
}

static int
pop3_check_msg(struct pop3_session *s, struct pop3_args *a)
{
	if (a->argc != 1) {
		pop3_reply(s, "-ERR syntax error: one message number expected");
		return PTL_DECLINED;
	}
	return pop3_check_msgnum(s, a, 0);
}

static int
pop3_check_opt_msg(struct pop3_session *s, struct pop3_args *a)
{
	if (a->argc == 0)
		return PTL_OK;
	return pop3_check_msg(s, a);
}

static int
pop3_check_top(struct pop3_session *s, struct pop3_args *a)
{
	if (a->argc != 2) {
		pop3_reply(s, "-ERR syntax error: TOP msg n");
		return PTL_DECLINED;
	}
	/* "TOP 1 -1" and friends: the line count is digits only. */
	if (pop3_parse_number(a->argv[1], a->argl[1], &a->num[1]) != PTL_OK) {
		pop3_reply(s, "-ERR syntax error: invalid line count");
		return PTL_DECLINED;
	}
	return pop3_check_msgnum(s, a, 0);
}

static int
pop3_check_user(struct pop3_session *s, struct pop3_args *a)
{
	if (a->raw_len > 0)
		return PTL_OK;
	pop3_reply(s, "-ERR syntax error: USER name");
	return PTL_DECLINED;
}

/* ---- AUTHORIZATION extras ------------------------------------------- */

static void
pop3_cmd_capa(struct pop3_session *s, const struct pop3_args *a)
{
	bool authz = s->phase == POP3_PHASE_AUTHORIZATION;

	pop3_reply(s, "+OK capability list follows");
	pop3_reply(s, "TOP");
	pop3_reply(s, "UIDL");
	pop3_reply(s, "RESP-CODES");
	pop3_reply(s, "AUTH-RESP-CODE");
	pop3_reply(s, "PIPELINING");
	pop3_reply(s, "EXPIRE NEVER");
	pop3_reply(s, "IMPLEMENTATION Petrel");
	if (authz && !s->listener->implicit_tls &&
	    ptl_conn_starttls_available(s->conn))
		pop3_reply(s, "STLS");
	/* RFC 2595 section 4: no password mechanisms before TLS unless
	 * the network is trusted. */
	if (authz && pop3_login_allowed(s)) {
		pop3_reply(s, "USER");
		pop3_reply(s, "SASL PLAIN");
	}
	pop3_reply(s, ".");
}

static void
pop3_cmd_stls(struct pop3_session *s, const struct pop3_args *a)
{
	struct ptl_error err;

	if (s->listener->implicit_tls || ptl_conn_is_tls(s->conn)) {
		pop3_reply(s, "-ERR TLS is already active");
		return;
	}
	if (!ptl_conn_starttls_available(s->conn)) {
		pop3_reply(s, "-ERR TLS is not available");
		return;
	}
	/*
	 * The reply goes out in clear, then the core drops every byte the
	 * client sent after STLS: commands smuggled in the same packet
	 * never run inside TLS (CVE-2011-0411, Dovecot CVE-2021-33515).
	 */
	pop3_reply(s, "+OK begin TLS negotiation");
	if (s->phase == POP3_PHASE_CLOSING)
		return;
	if (ptl_conn_starttls(s->conn, &err) != PTL_OK) {
		ptl_conn_log(s->conn, PTL_LOG_WARN, "pop3: STLS failed: %s",
		             err.text);
		s->phase = POP3_PHASE_CLOSING;
		ptl_conn_abort(s->conn);
		return;
	}
	pop3_session_wait(s, POP3_WAIT_STARTTLS);
}

static void
pop3_log_logout(struct pop3_session *s, const char *how, size_t deleted)
{
	char name[128];

	ptl_log_escape(name, sizeof(name), s->mailbox_user,
	               strlen(s->mailbox_user));
	ptl_conn_log(s->conn, PTL_LOG_INFO,
	             "pop3: logout user=%s %s retr=%u top=%u deleted=%zu "
	             "octets_sent=%llu",
	             name, how, s->n_retr, s->n_top, deleted,
	             (unsigned long long)s->bytes_sent);
}

/* Unlock at QUIT: the next session need not wait for our goodbye to
 * reach a slow client. */
static void
pop3_mailbox_release(struct pop3_session *s)
{
	if (s->mb != NULL)
		s->worker->storage->close(s->mb);
	s->mb = NULL;
}

static void
pop3_expunged(const struct ptl_storage_result *res, void *arg)
{
	struct pop3_session *s = arg;

	if (s->magic != POP3_SESSION_MAGIC || s->wait != POP3_WAIT_EXPUNGE)
		return;
	s->wait = POP3_WAIT_NONE;
	if (res->status != PTL_STORAGE_OK)
		ptl_log(PTL_LOG_ERROR, "pop3: removing %zu messages failed: %s",
		        s->ndeleted,
		        res->reason != NULL ? res->reason : "unknown");
	pop3_mailbox_release(s);
	if (s->conn == NULL) {
		(void)pop3_session_orphan_done(s);
		return;
	}
	if (res->status != PTL_STORAGE_OK) {
		pop3_log_logout(s, "expunge_failed", 0);
		pop3_reply(s, "-ERR [SYS/TEMP] deleting messages failed; some "
		              "may remain");
	} else {
		pop3_log_logout(s, "quit", s->ndeleted);
		pop3_reply(s, "+OK bye, %zu messages deleted", s->ndeleted);
	}
	pop3_session_close(s);
}

static void
pop3_cmd_quit(struct pop3_session *s, const struct pop3_args *a)
{
	const struct ptl_storage_methods *st = s->worker->storage;
	size_t i, n = 0;
	int rc;

	s->quit = true;
	if (s->phase != POP3_PHASE_TRANSACTION) {
		pop3_reply(s, "+OK bye");
		pop3_session_close(s);
		return;
	}
	/* RFC 1939 section 6: deletions happen here and only here. */
	s->phase = POP3_PHASE_UPDATE;
	if (s->ndeleted == 0) {
		pop3_mailbox_release(s);
		pop3_log_logout(s, "quit", 0);
		pop3_reply(s, "+OK bye");
		pop3_session_close(s);
		return;
	}
	s->expunge_idx = malloc(s->ndeleted * sizeof(*s->expunge_idx));
	if (s->expunge_idx == NULL) {
		pop3_reply(s, "-ERR [SYS/TEMP] out of memory; nothing deleted");
		pop3_session_close(s);
		return;
	}
	for (i = 0; i < s->count; i++) {
		if (pop3_is_deleted(s, i))
			s->expunge_idx[n++] = i;
	}
	pop3_session_wait(s, POP3_WAIT_EXPUNGE);
	rc = st->expunge(s->mb, s->expunge_idx, n, pop3_expunged, s);
	if (rc == PTL_ERROR && s->wait == POP3_WAIT_EXPUNGE) {
		s->wait = POP3_WAIT_NONE;
		pop3_log_logout(s, "expunge_failed", 0);
		pop3_reply(s, "-ERR [SYS/TEMP] deleting messages failed; "
		              "nothing deleted");
		pop3_session_close(s);
	}
}

/* ---- TRANSACTION ---------------------------------------------------- */

static const struct ptl_storage_msg *
pop3_msg(const struct pop3_session *s, size_t index)
{
	return s->worker->storage->message(s->mb, index);
}

static void
pop3_cmd_stat(struct pop3_session *s, const struct pop3_args *a)
{
	pop3_reply(s, "+OK %zu %llu", s->count - s->ndeleted,
	           (unsigned long long)(s->total_size - s->deleted_size));
}

/* One "n size" or "n uid" line; @return its length in @p out. */
static size_t
pop3_listing_line(const struct pop3_session *s, size_t index, bool uidl,
                  char *out, size_t size)
{
	const struct ptl_storage_msg *m = pop3_msg(s, index);
	int n;

	if (m == NULL)
		return 0;
	if (uidl)
		n = snprintf(out, size, "%zu %s\r\n", index + 1, m->uid);
	else
		n = snprintf(out, size, "%zu %llu\r\n", index + 1,
		             (unsigned long long)m->size);
	return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/*
 * A mailbox of 100 000 messages makes a listing of megabytes: it goes out
 * in pieces, waiting for DRAINED like a message does.
 */
void
pop3_listing_pump(struct pop3_session *s)
{
	char buf[4096];
	size_t len = s->listing_head_len;

	/* The status line leaves with the first lines: one write, one TLS
	 * record. */
	memcpy(buf, s->listing_head, len);
	s->listing_head_len = 0;
	while (s->listing_next < s->count) {
		size_t i = s->listing_next++;

		if (pop3_is_deleted(s, i))
			continue;
		len += pop3_listing_line(s, i, s->listing_uidl, buf + len,
		                         sizeof(buf) - len);
		if (len > sizeof(buf) - 128) {
			pop3_write(s, buf, len);
			len = 0;
			if (s->blocked || s->phase == POP3_PHASE_CLOSING)
				return;
		}
	}
	memcpy(buf + len, ".\r\n", 3);
	pop3_write(s, buf, len + 3);
	if (s->phase != POP3_PHASE_CLOSING)
		pop3_session_continue(s);
}

static void
pop3_listing(struct pop3_session *s, const struct pop3_args *a, bool uidl)
{
	char line[128];
	size_t len;
	int n;

	if (uidl && !s->uids_ok) {
		pop3_reply(s, "-ERR [SYS/PERM] unique ids are not available");
		return;
	}
	if (a->argc == 1) {
		len = pop3_listing_line(s, (size_t)(a->num[0] - 1), uidl, line,
		                        sizeof(line));
		if (len < 2) {
			pop3_reply(s, "-ERR [SYS/TEMP] message is not "
			              "available now");
			return;
		}
		pop3_reply(s, "+OK %.*s", (int)(len - 2), line);
		return;
	}
	if (uidl)
		n = snprintf(s->listing_head, sizeof(s->listing_head),
		             "+OK unique-id listing follows\r\n");
	else
		n = snprintf(
		    s->listing_head, sizeof(s->listing_head),
		    "+OK %zu messages (%llu octets)\r\n",
		    s->count - s->ndeleted,
		    (unsigned long long)(s->total_size - s->deleted_size));
	s->listing_head_len =
	    n > 0 && (size_t)n < sizeof(s->listing_head) ? (size_t)n : 0;
	s->listing_uidl = uidl;
	s->listing_next = 0;
	pop3_session_wait(s, POP3_WAIT_LISTING);
	if (!s->blocked)
		pop3_listing_pump(s);
}

static void
pop3_cmd_list(struct pop3_session *s, const struct pop3_args *a)
{
	pop3_listing(s, a, false);
}

static void
pop3_cmd_uidl(struct pop3_session *s, const struct pop3_args *a)
{
	pop3_listing(s, a, true);
}

static void
pop3_cmd_retr(struct pop3_session *s, const struct pop3_args *a)
{
	pop3_retr_start(s, (size_t)(a->num[0] - 1), false, 0);
}

static void
pop3_cmd_top(struct pop3_session *s, const struct pop3_args *a)
{
	pop3_retr_start(s, (size_t)(a->num[0] - 1), true, a->num[1]);
}

static void
pop3_cmd_dele(struct pop3_session *s, const struct pop3_args *a)
{
	size_t index = (size_t)(a->num[0] - 1);
	const struct ptl_storage_msg *m = pop3_msg(s, index);

	s->deleted[index / 8] |= (uint8_t)(1u << (index % 8));
	s->ndeleted++;
	s->deleted_size += m != NULL ? m->size : 0;
	pop3_reply(s, "+OK message %llu deleted",
	           (unsigned long long)a->num[0]);
}

static void
pop3_cmd_noop(struct pop3_session *s, const struct pop3_args *a)
{
	pop3_reply(s, "+OK");
}

static void
pop3_cmd_rset(struct pop3_session *s, const struct pop3_args *a)
{
	memset(s->deleted, 0, s->count / 8 + 1);
	s->ndeleted = 0;
	s->deleted_size = 0;
	pop3_reply(s, "+OK maildrop has %zu messages (%llu octets)", s->count,
	           (unsigned long long)s->total_size);
}

#define POP3_AUTHZ POP3_CMD_AUTHORIZATION
#define POP3_TRANS POP3_CMD_TRANSACTION
#define POP3_PRE   POP3_CMD_PRE_TLS_OK

/* APOP is missing on purpose: it needs plaintext passwords on the server
 * and its MD5 challenge is breakable (CVE-2007-1558). */
const struct pop3_command pop3_commands[] = {
    {"CAPA", POP3_AUTHZ | POP3_TRANS | POP3_PRE, pop3_check_no_args,
     pop3_cmd_capa},
    {"STLS", POP3_AUTHZ | POP3_PRE, pop3_check_no_args, pop3_cmd_stls},
    {"USER", POP3_AUTHZ, pop3_check_user, pop3_cmd_user},
    {"PASS", POP3_AUTHZ, NULL, pop3_cmd_pass},
    {"AUTH", POP3_AUTHZ, NULL, pop3_cmd_auth},
    {"QUIT", POP3_AUTHZ | POP3_TRANS | POP3_PRE, pop3_check_no_args,
     pop3_cmd_quit},
    {"STAT", POP3_TRANS, pop3_check_no_args, pop3_cmd_stat},
    {"LIST", POP3_TRANS, pop3_check_opt_msg, pop3_cmd_list},
    {"UIDL", POP3_TRANS, pop3_check_opt_msg, pop3_cmd_uidl},
    {"RETR", POP3_TRANS, pop3_check_msg, pop3_cmd_retr},
    {"TOP", POP3_TRANS, pop3_check_top, pop3_cmd_top},
    {"DELE", POP3_TRANS, pop3_check_msg, pop3_cmd_dele},
    {"NOOP", POP3_TRANS, pop3_check_no_args, pop3_cmd_noop},
    {"RSET", POP3_TRANS, pop3_check_no_args, pop3_cmd_rset},
    {NULL, 0, NULL, NULL},
};
