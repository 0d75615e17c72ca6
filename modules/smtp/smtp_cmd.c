/* SPDX-License-Identifier: MIT */
/* The SMTP command table and the simple commands (HELO, RSET, STARTTLS...). */
#include <string.h>

#include "smtp.h"

/* ---- Greeting (the CONNECT hook runs before it) --------------------- */

static int
cmd_greet(struct smtp_session *s)
{
	smtp_session_set_phase(s, SMTP_PHASE_COMMAND);
	/* RFC 5321 4.2: the greeting starts with the domain; RFC 2034 puts
	 * no enhanced code here. */
	smtp_reply(s, 220, NULL, "%s ESMTP Petrel", s->w->hostname);
	return PTL_OK;
}

const struct smtp_command smtp_cmd_connect = {
    "<connect>", 0, NULL, PTL_FILTER_CONNECT, cmd_greet,
};

/* ---- HELO / EHLO ----------------------------------------------------- */

/*
 * RFC 5321 4.1.4: HELO/EHLO resets the session like RSET. The name is
 * kept as sent (checked for control characters and length only; a server
 * must not refuse a name that merely fails to match the address) and
 * escaped wherever it is written.
 */
static int
cmd_helo_common(struct smtp_session *s, const struct smtp_cmdline *cl,
                bool esmtp)
{
	if (smtp_parse_helo(cl->args, cl->args_len) != PTL_OK) {
		smtp_reply(s, 501, "5.5.4", "Syntax: %s hostname",
		           esmtp ? "EHLO" : "HELO");
		return PTL_DECLINED;
	}
	smtp_txn_abort(s);
	memcpy(s->helo, cl->args, cl->args_len);
	s->helo[cl->args_len] = '\0';
	s->helo_done = false;
	s->esmtp = esmtp;
	return PTL_OK;
}

static int
cmd_ehlo_check(struct smtp_session *s, const struct smtp_cmdline *cl)
{
	return cmd_helo_common(s, cl, true);
}

static int
cmd_helo_check(struct smtp_session *s, const struct smtp_cmdline *cl)
{
	return cmd_helo_common(s, cl, false);
}

static int
cmd_ehlo_proceed(struct smtp_session *s)
{
	s->helo_done = true;
	smtp_reply_ehlo(s);
	return PTL_OK;
}

static int
cmd_helo_proceed(struct smtp_session *s)
{
	s->helo_done = true;
	smtp_reply(s, 250, NULL, "%s", s->w->hostname);
	return PTL_OK;
}

/* ---- Small commands -------------------------------------------------- */

static int
cmd_rset(struct smtp_session *s, const struct smtp_cmdline *cl)
{
	smtp_txn_abort(s);
	smtp_reply(s, 250, "2.0.0", "Ok");
	return PTL_OK;
}

static int
cmd_noop(struct smtp_session *s, const struct smtp_cmdline *cl)
{
	smtp_reply(s, 250, "2.0.0", "Ok");
	return PTL_OK;
}

static int
cmd_quit(struct smtp_session *s, const struct smtp_cmdline *cl)
{
	smtp_reply(s, 221, "2.0.0", "Bye");
	smtp_session_close(s, false);
	return PTL_OK;
}

static int
cmd_help(struct smtp_session *s, const struct smtp_cmdline *cl)
{
	smtp_reply(s, 214, "2.0.0",
	           "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT "
	           "VRFY HELP STARTTLS AUTH");
	return PTL_OK;
}

static int
cmd_expn(struct smtp_session *s, const struct smtp_cmdline *cl)
{
	/* Mailing list contents are nobody's business (RFC 5321 7.3). */
	smtp_reply(s, 502, "5.5.1", "EXPN not available");
	return PTL_OK;
}

/* ---- STARTTLS (RFC 3207) -------------------------------------------- */

static int
cmd_starttls_check(struct smtp_session *s, const struct smtp_cmdline *cl)
{
	if (!smtp_session_starttls_offered(s)) {
		smtp_reply(s, 502, "5.5.1", "STARTTLS not available");
		return PTL_DECLINED;
	}
	return PTL_OK;
}

static int
cmd_starttls_proceed(struct smtp_session *s)
{
	struct ptl_error err;

	/*
	 * The reply is queued first and leaves in clear; the core then
	 * drops every byte the client sent after STARTTLS, so commands
	 * smuggled into the same packet never run inside TLS
	 * (CVE-2011-0411). Nothing after this command is read: the phase
	 * leaves COMMAND until the handshake is done.
	 */
	smtp_reply(s, 220, "2.0.0", "Ready to start TLS");
	if (s->closing)
		return PTL_OK;
	if (ptl_conn_starttls(s->conn, &err) != PTL_OK) {
		ptl_conn_log(s->conn, PTL_LOG_ERROR,
		             "STARTTLS failed: %s; no longer offered by this "
		             "process",
		             err.text);
		s->w->tls_unavailable = true;
		smtp_session_close(s, false);
		return PTL_OK;
	}
	smtp_session_reset(s);
	smtp_session_set_phase(s, SMTP_PHASE_STARTTLS);
	return PTL_OK;
}

/* ---- The table ------------------------------------------------------- */

static const struct smtp_command smtp_commands[] = {
    {"EHLO", 0, cmd_ehlo_check, PTL_FILTER_HELO, cmd_ehlo_proceed},
    {"HELO", 0, cmd_helo_check, PTL_FILTER_HELO, cmd_helo_proceed},
    {"MAIL", SMTP_CMD_NEEDS_HELO | SMTP_CMD_NO_TXN | SMTP_CMD_NEEDS_AUTH,
     smtp_mail_check, PTL_FILTER_MAIL, smtp_mail_proceed},
    {"RCPT", SMTP_CMD_NEEDS_HELO | SMTP_CMD_NEEDS_MAIL, smtp_rcpt_check,
     PTL_FILTER_RCPT, smtp_rcpt_proceed},
    {"DATA", SMTP_CMD_NEEDS_HELO | SMTP_CMD_NEEDS_MAIL | SMTP_CMD_NO_ARGS,
     smtp_data_check, -1, smtp_data_proceed},
    {"BDAT", 0, smtp_bdat_check, -1, smtp_bdat_proceed},
    {"RSET", SMTP_CMD_NO_ARGS, cmd_rset, -1, NULL},
    {"NOOP", 0, cmd_noop, -1, NULL},
    {"QUIT", SMTP_CMD_NO_ARGS | SMTP_CMD_PIPELINE_LAST, cmd_quit, -1, NULL},
    {"VRFY", 0, smtp_vrfy_check, -1, NULL},
    {"EXPN", 0, cmd_expn, -1, NULL},
    {"HELP", 0, cmd_help, -1, NULL},
    {"STARTTLS", SMTP_CMD_NO_ARGS | SMTP_CMD_PRE_TLS | SMTP_CMD_PIPELINE_LAST,
     cmd_starttls_check, -1, cmd_starttls_proceed},
    {"AUTH", SMTP_CMD_NEEDS_HELO | SMTP_CMD_NO_TXN, smtp_auth_check, -1, NULL},
    {NULL, 0, NULL, -1, NULL},
};

const struct smtp_command *
smtp_cmd_find(const struct smtp_cmdline *cl)
{
	const struct smtp_command *cmd;

	for (cmd = smtp_commands; cmd->verb != NULL; cmd++) {
		if (smtp_verb_is(cl, cmd->verb))
			return cmd;
	}
	return NULL;
}
