/* SPDX-License-Identifier: MIT */
/* AUTH (RFC 4954): PLAIN and LOGIN through the auth service, with delays. */
#include <string.h>

#include "smtp.h"

#define SASL_MECH_PLAIN 1
#define SASL_MECH_LOGIN 2

/* What the next client line answers. */
enum sasl_step {
	SASL_STEP_PLAIN = 1,  /* the PLAIN message */
	SASL_STEP_LOGIN_USER, /* LOGIN: the user name */
	SASL_STEP_LOGIN_PASS, /* LOGIN: the password */
};

/* Longest delay before a 535, however many failures. */
#define AUTH_DELAY_MAX_MS 30000

static const char *
auth_mech_name(const struct smtp_session *s)
{
	return s->sasl->mech == SASL_MECH_PLAIN ? "PLAIN" : "LOGIN";
}

static void
auth_fail_reply(struct smtp_session *s)
{
	smtp_reply(s, 535, "5.7.8", "Authentication credentials invalid");
	if (s->verify_rc != 0) {
		smtp_reply(s, 421, "4.7.0",
		           "Too many authentication failures, closing");
		smtp_session_close(s, false);
	}
}

/*
 * A failed attempt. The reply is delayed, and the delay doubles with
 * each failure of the session or of the client address (remembered
 * across connections, so reconnecting does not reset it). Unknown user
 * and wrong password take this same path: the auth service answers
 * both alike and in similar time.
 */
static int
auth_failed(struct smtp_session *s)
{
	const struct smtp_conf *conf = s->w->conf;
	const char *ip = ptl_conn_peer_ip(s->conn);
	char user[SMTP_SASL_USER_MAX * 4 + 1];
	unsigned ipn, n, i;
	int64_t delay;

	smtp_session_set_phase(s, SMTP_PHASE_COMMAND);
	s->auth_failures++;
	ipn = smtp_authfail_add(s->w->authfail, ip, ptl_now_ms());
	n = s->auth_failures > ipn ? s->auth_failures : ipn;
	s->verify_rc = s->auth_failures >= (unsigned)conf->auth_max_failures ||
	               ipn >= (unsigned)conf->auth_max_failures;
	smtp_session_log_escape(user, sizeof(user), s->sasl->user);
	ptl_conn_log(s->conn, PTL_LOG_NOTICE,
	             "auth failed from %s user=\"%s\" mech=%s failures=%u "
	             "address_failures=%u",
	             ip, user, auth_mech_name(s), s->auth_failures, ipn);
	delay = conf->auth_failure_delay;
	for (i = 1; i < n && delay < AUTH_DELAY_MAX_MS; i++)
		delay *= 2;
	if (delay > AUTH_DELAY_MAX_MS)
		delay = AUTH_DELAY_MAX_MS;
	if (delay <= 0 ||
	    smtp_session_timer(s, SMTP_TIMER_AUTH_DELAY, delay) != PTL_OK) {
		auth_fail_reply(s);
		return PTL_DECLINED;
	}
	return PTL_AGAIN;
}

void
smtp_auth_timer(struct smtp_session *s)
{
	auth_fail_reply(s);
	smtp_cmd_resume(s, PTL_DECLINED);
}

static void
auth_verify_done(enum ptl_auth_status status, const char *user, void *arg)
{
	struct smtp_session *s = arg;
	char esc[SMTP_SASL_USER_MAX * 4 + 1];
	int rc = PTL_OK;

	if (s == NULL || s->magic != SMTP_SESSION_MAGIC || s->cmd == NULL)
		return;
	if (status == PTL_AUTH_OK) {
		s->auth_user = ptl_pstrdup(ptl_conn_pool(s->conn),
		                           user != NULL ? user : s->sasl->user);
		if (s->auth_user == NULL) {
			smtp_reply(s, 454, "4.7.0",
			           "Temporary authentication failure");
		} else {
			smtp_authfail_clear(s->w->authfail,
			                    ptl_conn_peer_ip(s->conn));
			smtp_session_log_escape(esc, sizeof(esc), s->auth_user);
			ptl_conn_log(s->conn, PTL_LOG_INFO,
			             "auth ok user=\"%s\" mech=%s", esc,
			             auth_mech_name(s));
			smtp_reply(s, 235, "2.7.0",
			           "Authentication successful");
		}
	} else if (status == PTL_AUTH_TEMPFAIL) {
		smtp_reply(s, 454, "4.7.0", "Temporary authentication failure");
	} else {
		rc = auth_failed(s);
		if (rc == PTL_AGAIN)
			return; /* the delay timer resumes */
	}
	smtp_cmd_resume(s, rc);
}

/* The auth service copies what it needs before verify() returns. */
static int
auth_verify(struct smtp_session *s, const char *pass, size_t len)
{
	const struct smtp_worker *w = s->w;
	int rc;

	smtp_session_set_phase(s, SMTP_PHASE_COMMAND);
	rc = w->auth->verify(w->auth_inst, s->sasl->user, pass, len,
	                     auth_verify_done, s);
	if (rc == PTL_AGAIN)
		return PTL_AGAIN;
	smtp_reply(s, 454, "4.7.0", "Temporary authentication failure");
	return PTL_DECLINED;
}

/* The sasl helpers already bounded the name to SMTP_SASL_USER_MAX. */
static void
auth_set_user(struct smtp_session *s, const char *name, size_t len)
{
	if (len >= sizeof(s->sasl->user))
		len = sizeof(s->sasl->user) - 1;
	memcpy(s->sasl->user, name, len);
	s->sasl->user[len] = '\0';
}

static int
auth_step(struct smtp_session *s, int step, const char *text, size_t len)
{
	unsigned char buf[SMTP_SASL_DECODED_MAX + 1];
	struct ptl_sasl_plain creds;
	size_t n = 0;
	int rc;

	/* RFC 4954 section 4: "*" cancels the exchange. */
	if (len == 1 && text[0] == '*') {
		smtp_session_set_phase(s, SMTP_PHASE_COMMAND);
		smtp_reply(s, 501, "5.0.0", "Authentication cancelled");
		return PTL_DECLINED;
	}
	/* "=" is an empty initial response. */
	if (!(len == 1 && text[0] == '=') &&
	    ptl_base64_decode(text, len, buf, sizeof(buf) - 1, &n) != PTL_OK) {
		smtp_session_set_phase(s, SMTP_PHASE_COMMAND);
		smtp_reply(s, 501, "5.5.2", "Invalid base64 data");
		return PTL_DECLINED;
	}
	switch (step) {
	case SASL_STEP_PLAIN:
		if (ptl_sasl_plain_split(buf, n, SMTP_SASL_USER_MAX,
		                         SMTP_SASL_PASS_MAX,
		                         &creds) != PTL_OK) {
			s->sasl->user[0] = '\0';
			rc = auth_failed(s);
			break;
		}
		auth_set_user(s, creds.user, creds.user_len);
		rc = auth_verify(s, creds.pass, creds.pass_len);
		break;
	case SASL_STEP_LOGIN_USER:
		if (smtp_sasl_login_user(buf, n) != PTL_OK) {
			s->sasl->user[0] = '\0';
			rc = auth_failed(s);
			break;
		}
		auth_set_user(s, (const char *)buf, n);
		s->sasl->step = SASL_STEP_LOGIN_PASS;
		smtp_session_set_phase(s, SMTP_PHASE_AUTH);
		smtp_reply(s, 334, NULL, "UGFzc3dvcmQ6"); /* "Password:" */
		rc = PTL_OK;
		break;
	default:
		if (smtp_sasl_login_pass(buf, n) != PTL_OK) {
			rc = auth_failed(s);
			break;
		}
		rc = auth_verify(s, (const char *)buf, n);
		break;
	}
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

int
smtp_auth_check(struct smtp_session *s, const struct smtp_cmdline *cl)
{
	const char *space, *ir = NULL;
	size_t mlen, irlen = 0;
	int mech;

	if (s->listener->role == SMTP_ROLE_MX) {
		smtp_reply(s, 503, "5.5.1", "AUTH not available");
		return PTL_DECLINED;
	}
	if (s->auth_user != NULL) {
		smtp_reply(s, 503, "5.5.1", "Already authenticated");
		return PTL_DECLINED;
	}
	if (!s->tls && !s->w->conf->auth_plaintext) {
		smtp_reply(s, 538, "5.7.11",
		           "Encryption required for requested authentication "
		           "mechanism");
		return PTL_DECLINED;
	}
	if (!s->esmtp) {
		smtp_reply(s, 503, "5.5.1", "Send EHLO first");
		return PTL_DECLINED;
	}
	space = memchr(cl->args, ' ', cl->args_len);
	mlen = space != NULL ? (size_t)(space - cl->args) : cl->args_len;
	if (space != NULL) {
		ir = space + 1;
		irlen = cl->args_len - mlen - 1;
	}
	if (mlen == 5 && strncasecmp(cl->args, "PLAIN", 5) == 0) {
		mech = SASL_MECH_PLAIN;
	} else if (mlen == 5 && strncasecmp(cl->args, "LOGIN", 5) == 0) {
		mech = SASL_MECH_LOGIN;
	} else {
		smtp_reply(s, 504, "5.5.4", "Unrecognized authentication type");
		return PTL_DECLINED;
	}
	if (s->sasl == NULL) {
		s->sasl = ptl_pcalloc(ptl_conn_pool(s->conn), sizeof(*s->sasl));
		if (s->sasl == NULL) {
			smtp_reply(s, 454, "4.7.0",
			           "Temporary authentication failure");
			return PTL_DECLINED;
		}
	}
	s->sasl->mech = mech;
	s->sasl->user[0] = '\0';
	if (ir != NULL && irlen > 0)
		return auth_step(s,
		                 mech == SASL_MECH_PLAIN ? SASL_STEP_PLAIN
		                                         : SASL_STEP_LOGIN_USER,
		                 ir, irlen);
	s->sasl->step =
	    mech == SASL_MECH_PLAIN ? SASL_STEP_PLAIN : SASL_STEP_LOGIN_USER;
	smtp_session_set_phase(s, SMTP_PHASE_AUTH);
	if (mech == SASL_MECH_PLAIN)
		smtp_reply(s, 334, NULL, "%s", "");
	else
		smtp_reply(s, 334, NULL, "VXNlcm5hbWU6"); /* "Username:" */
	return PTL_OK;
}

static int
auth_response_check(struct smtp_session *s, const struct smtp_cmdline *cl)
{
	return auth_step(s, s->sasl->step, cl->args, cl->args_len);
}

const struct smtp_command smtp_cmd_auth_response = {
    "<sasl response>", 0, auth_response_check, -1, NULL,
};
