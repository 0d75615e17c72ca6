/* SPDX-License-Identifier: MIT */
/* POP3 login: USER/PASS, AUTH PLAIN (RFC 5034), failure delays, mailbox open.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pop3.h"

/* Decoded PLAIN responses are at most this long. */
#define POP3_SASL_DECODED_MAX (POP3_SASL_LINE_MAX / 4 * 3)

/* One reply for an unknown user and a wrong password (RFC 3206 [AUTH]). */
#define POP3_AUTH_FAILED "-ERR [AUTH] invalid user name or password"

/* ---- Login flow ----------------------------------------------------- */

static void pop3_auth_verified(enum ptl_auth_status status, const char *user,
                               void *arg);

static void
pop3_log_name(const struct pop3_session *s, char *out, size_t size)
{
	ptl_log_escape(out, size, s->user, strlen(s->user));
}

static void
pop3_auth_timer_cb(struct ptl_timer *t, void *arg)
{
	struct pop3_session *s = arg;

	(void)t;
	if (s->magic != POP3_SESSION_MAGIC || s->wait != POP3_WAIT_DELAY)
		return;
	pop3_auth_timer(s);
}

static void
pop3_auth_delay(struct pop3_session *s, int64_t ms)
{
	if (s->timer == NULL) {
		s->timer = ptl_timer_new(pop3_auth_timer_cb, s);
		if (s->timer == NULL) {
			/* No timer: answer now rather than never. */
			pop3_session_wait(s, POP3_WAIT_DELAY);
			pop3_auth_timer(s);
			return;
		}
	}
	pop3_session_wait(s, POP3_WAIT_DELAY);
	ptl_timer_start(s->timer, ms);
}

/* Credentials are complete: hand them to the auth service. */
static void
pop3_login_start(struct pop3_session *s, const char *pass, size_t pass_len,
                 const char *method)
{
	struct pop3_worker *w = s->worker;
	int rc;

	s->method = method;
	pop3_session_wait(s, POP3_WAIT_VERIFY);
	rc = w->auth->verify(w->auth_instance, s->user, pass, pass_len,
	                     pop3_auth_verified, s);
	if (rc == PTL_ERROR && s->wait == POP3_WAIT_VERIFY) {
		ptl_conn_log(s->conn, PTL_LOG_WARN,
		             "pop3: auth service refused the request");
		pop3_reply(s, "-ERR [SYS/TEMP] authentication is not "
		              "available now; try again later");
		pop3_session_continue(s);
	}
}

static void
pop3_auth_opened(const struct ptl_storage_result *res, struct ptl_mailbox *mb,
                 void *arg)
{
	struct pop3_session *s = arg;
	const struct ptl_storage_methods *st;
	char name[128];
	size_t i;

	if (s->magic != POP3_SESSION_MAGIC || s->wait != POP3_WAIT_OPEN)
		return;
	st = s->worker->storage;
	if (s->conn == NULL) {
		if (res->status == PTL_STORAGE_OK && mb != NULL)
			st->close(mb);
		s->wait = POP3_WAIT_NONE;
		(void)pop3_session_orphan_done(s);
		return;
	}
	pop3_log_name(s, name, sizeof(name));
	if (res->status != PTL_STORAGE_OK || mb == NULL) {
		ptl_conn_log(s->conn,
		             res->status == PTL_STORAGE_LOCKED ? PTL_LOG_INFO
		                                               : PTL_LOG_WARN,
		             "pop3: cannot open the mailbox of %s: %s", name,
		             res->reason != NULL ? res->reason : "unknown");
		switch (res->status) {
		case PTL_STORAGE_LOCKED:
			pop3_reply(s, "-ERR [IN-USE] mailbox is locked by "
			              "another session");
			break;
		case PTL_STORAGE_PERMFAIL:
			pop3_reply(s, "-ERR [SYS/PERM] mailbox is not "
			              "available");
			break;
		default:
			pop3_reply(s, "-ERR [SYS/TEMP] mailbox is not "
			              "available now; try again later");
			break;
		}
		s->have_user = false;
		pop3_session_continue(s);
		return;
	}
	s->mb = mb;
	s->count = st->count(mb);
	s->deleted = calloc(s->count / 8 + 1, 1);
	if (s->deleted == NULL) {
		ptl_conn_log(s->conn, PTL_LOG_ERROR, "pop3: out of memory");
		pop3_reply(s, "-ERR [SYS/TEMP] out of memory");
		pop3_session_close(s);
		return;
	}
	s->total_size = 0;
	s->uids_ok = true;
	for (i = 0; i < s->count; i++) {
		const struct ptl_storage_msg *m = st->message(mb, i);
		size_t k, len;

		if (m == NULL) {
			s->uids_ok = false;
			continue;
		}
		s->total_size += m->size;
		len = m->uid != NULL ? strlen(m->uid) : 0;
		if (len == 0 || len > POP3_UID_MAX)
			s->uids_ok = false;
		for (k = 0; k < len; k++) {
			if (m->uid[k] < 0x21 || m->uid[k] > 0x7e)
				s->uids_ok = false;
		}
	}
	if (!s->uids_ok)
		ptl_conn_log(s->conn, PTL_LOG_ERROR,
		             "pop3: storage gave invalid unique ids for %s; "
		             "UIDL is refused",
		             name);
	s->phase = POP3_PHASE_TRANSACTION;
	ptl_conn_log(s->conn, PTL_LOG_INFO,
	             "pop3: login user=%s method=%s messages=%zu octets=%llu",
	             name, s->method, s->count,
	             (unsigned long long)s->total_size);
	pop3_reply(s, "+OK maildrop has %zu messages (%llu octets)", s->count,
	           (unsigned long long)s->total_size);
	pop3_session_continue(s);
}

static void
pop3_auth_open(struct pop3_session *s)
{
	struct pop3_worker *w = s->worker;
	int rc;

	pop3_session_wait(s, POP3_WAIT_OPEN);
	rc = w->storage->open(w->storage_instance, s->mailbox_user,
	                      PTL_STORAGE_LOCK, pop3_auth_opened, s);
	if (rc == PTL_ERROR && s->wait == POP3_WAIT_OPEN) {
		pop3_reply(s, "-ERR [SYS/TEMP] mailbox is not available now; "
		              "try again later");
		s->have_user = false;
		pop3_session_continue(s);
	}
}

void
pop3_auth_timer(struct pop3_session *s)
{
	if (s->verified_ok) {
		pop3_auth_open(s);
		return;
	}
	pop3_reply(s, POP3_AUTH_FAILED);
	if ((int64_t)s->failures >= s->conf->auth_max_failures) {
		ptl_conn_log(s->conn, PTL_LOG_NOTICE,
		             "pop3: %u failed logins; closing", s->failures);
		pop3_session_close(s);
		return;
	}
	pop3_session_continue(s);
}

static void
pop3_auth_verified(enum ptl_auth_status status, const char *user, void *arg)
{
	struct pop3_session *s = arg;
	const struct pop3_conf *conf;
	unsigned ip_failures, n;
	char name[128];
	size_t len;

	if (s->magic != POP3_SESSION_MAGIC || s->wait != POP3_WAIT_VERIFY)
		return;
	if (s->conn == NULL) {
		s->wait = POP3_WAIT_NONE;
		(void)pop3_session_orphan_done(s);
		return;
	}
	conf = s->conf;
	s->have_user = false;
	if (status == PTL_AUTH_TEMPFAIL) {
		pop3_reply(s, "-ERR [SYS/TEMP] authentication is not "
		              "available now; try again later");
		pop3_session_continue(s);
		return;
	}
	if (status == PTL_AUTH_OK && user != NULL && (len = strlen(user)) > 0 &&
	    len <= POP3_USER_MAX) {
		memcpy(s->mailbox_user, user, len + 1);
		s->verified_ok = true;
		/* Parallel connections from a guessing address gain nothing:
		 * even a right password waits out the address's delay. */
		ip_failures = pop3_throttle_count(s->worker->throttle,
		                                  s->peer_ip, ptl_now_ms());
		if ((int64_t)ip_failures >= conf->auth_max_failures) {
			pop3_auth_delay(s, pop3_throttle_delay(
			                       conf->auth_failure_delay_ms,
			                       conf->auth_failure_delay_max_ms,
			                       ip_failures));
			return;
		}
		pop3_auth_open(s);
		return;
	}
	s->verified_ok = false;
	s->failures++;
	ip_failures =
	    pop3_throttle_add(s->worker->throttle, s->peer_ip, ptl_now_ms());
	n = ip_failures > s->failures ? ip_failures : s->failures;
	pop3_log_name(s, name, sizeof(name));
	ptl_conn_log(s->conn, PTL_LOG_NOTICE,
	             "pop3: authentication failed: user=%s method=%s "
	             "failures=%u address_failures=%u",
	             name, s->method, s->failures, ip_failures);
	pop3_auth_delay(s, pop3_throttle_delay(conf->auth_failure_delay_ms,
	                                       conf->auth_failure_delay_max_ms,
	                                       n));
}

/* ---- Commands ------------------------------------------------------- */

void
pop3_cmd_user(struct pop3_session *s, const struct pop3_args *a)
{
	/* Unknown names get "+OK" too: USER must not tell who exists. */
	if (!ptl_sasl_name_ok(a->raw, a->raw_len, POP3_USER_MAX)) {
		pop3_reply(s, "-ERR invalid user name");
		return;
	}
	memcpy(s->user, a->raw, a->raw_len);
	s->user[a->raw_len] = '\0';
	s->have_user = true;
	pop3_reply(s, "+OK send PASS");
}

void
pop3_cmd_pass(struct pop3_session *s, const struct pop3_args *a)
{
	if (!s->have_user) {
		pop3_reply(s, "-ERR send USER first");
		return;
	}
	/* RFC 1939 section 7: the whole rest of the line is the password,
	 * spaces included. */
	if (a->raw_len == 0 || a->raw_len > POP3_PASS_MAX) {
		s->have_user = false;
		pop3_reply(s, "-ERR syntax error");
		return;
	}
	pop3_login_start(s, a->raw, a->raw_len, "USER");
}

/* A base64 PLAIN response, from AUTH or from a continuation line. */
static void
pop3_auth_plain(struct pop3_session *s, const char *b64, size_t len)
{
	unsigned char msg[POP3_SASL_DECODED_MAX];
	struct ptl_sasl_plain creds;
	size_t n;

	if (len == 1 && b64[0] == '=')
		len = 0; /* RFC 5034 section 4: "=" is an empty response */
	if (ptl_base64_decode(b64, len, msg, sizeof(msg), &n) != PTL_OK) {
		pop3_reply(s, "-ERR malformed SASL response");
		return;
	}
	if (ptl_sasl_plain_split(msg, n, POP3_USER_MAX, POP3_PASS_MAX,
	                         &creds) != PTL_OK) {
		explicit_bzero(msg, sizeof(msg));
		pop3_reply(s, "-ERR [AUTH] malformed PLAIN response or "
		              "authorization identity not allowed");
		return;
	}
	memcpy(s->user, creds.user, creds.user_len + 1);
	s->have_user = true;
	pop3_login_start(s, creds.pass, creds.pass_len, "PLAIN");
	explicit_bzero(msg, sizeof(msg));
}

void
pop3_cmd_auth(struct pop3_session *s, const struct pop3_args *a)
{
	if (a->argc == 0) {
		/* Older clients probe the mechanisms with a bare AUTH. */
		pop3_reply(s, "+OK SASL mechanisms follow");
		pop3_reply(s, "PLAIN");
		pop3_reply(s, ".");
		return;
	}
	if (a->argl[0] != 5 || strncasecmp(a->argv[0], "PLAIN", 5) != 0) {
		pop3_reply(s, "-ERR unsupported authentication mechanism");
		return;
	}
	if (a->argc > 2) {
		pop3_reply(s, "-ERR syntax error");
		return;
	}
	s->have_user = false;
	if (a->argc == 2) {
		pop3_auth_plain(s, a->argv[1], a->argl[1]);
		return;
	}
	s->sasl_pending = true;
	pop3_parse_set_mode(&s->parser, POP3_PARSE_LINE, POP3_SASL_LINE_MAX);
	pop3_reply(s, "+ ");
}

void
pop3_auth_sasl_line(struct pop3_session *s, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		pop3_reply(s, "-ERR authentication cancelled");
		return;
	}
	pop3_auth_plain(s, line, len);
}
