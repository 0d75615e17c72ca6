/* SPDX-License-Identifier: MIT */
/* MAIL, RCPT and VRFY: envelope checks, relay policy, recipient lookup. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtp.h"

/* ---- Transactions ---------------------------------------------------- */

static struct smtp_txn *
txn_new(struct smtp_session *s)
{
	struct ptl_pool *pool = ptl_pool_create(0);
	struct smtp_txn *t;

	if (pool == NULL)
		return NULL;
	t = ptl_pcalloc(pool, sizeof(*t));
	if (t == NULL) {
		ptl_pool_destroy(pool);
		return NULL;
	}
	t->magic = SMTP_TXN_MAGIC;
	t->pool = pool;
	t->session = s;
	t->w = s->w;
	t->spool.fd = -1;
	/* Unique across processes and restarts: time, pid, counter. */
	(void)snprintf(t->id, sizeof(t->id), "%llX%05X%llX",
	               (unsigned long long)ptl_wall_time(),
	               (unsigned)getpid() & 0xfffffu,
	               (unsigned long long)++s->w->next_message);
	return t;
}

void
smtp_txn_free(struct smtp_txn *t)
{
	if (t == NULL)
		return;
	smtp_spool_close(&t->spool);
	t->magic = 0;
	ptl_pool_destroy(t->pool);
}

/* Forget the transaction (RSET, HELO, a refused message). */
void
smtp_txn_abort(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;

	if (t == NULL)
		return;
	s->txn = NULL;
	if (t->pending_deliveries > 0) {
		/* Never happens: no command runs during a delivery. */
		t->session = NULL;
		return;
	}
	smtp_txn_free(t);
}

/* ---- MAIL ------------------------------------------------------------ */

/*
 * The text after a path is empty or starts with a space and holds
 * parameters; those need EHLO (RFC 5321 4.1.1.11).
 */
static int
mail_params_start(struct smtp_session *s, const char *rest, size_t len)
{
	if (len == 0)
		return PTL_OK;
	if (rest[0] != ' ') {
		smtp_reply(s, 501, "5.5.4", "Syntax error after the address");
		return PTL_DECLINED;
	}
	if (!s->esmtp) {
		smtp_reply(s, 555, "5.5.4", "Parameters need EHLO");
		return PTL_DECLINED;
	}
	return PTL_OK;
}

static int
mail_params_error(struct smtp_session *s, enum smtp_params_error e)
{
	if (e == SMTP_PARAMS_UNKNOWN)
		smtp_reply(s, 555, "5.5.4", "Unsupported parameter");
	else
		smtp_reply(s, 501, "5.5.4", "Bad parameter syntax");
	return PTL_DECLINED;
}

static int
mail_parse(struct smtp_session *s, struct smtp_txn *t,
           const struct smtp_cmdline *cl)
{
	const struct smtp_conf *conf = s->w->conf;
	enum smtp_addr_error aerr;
	enum smtp_params_error perr;
	struct smtp_addr addr;
	const char *rest;
	size_t rest_len, used;

	if (smtp_parse_keyword(cl->args, cl->args_len, "FROM:", &rest,
	                       &rest_len) != PTL_OK) {
		smtp_reply(s, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
		return PTL_DECLINED;
	}
	aerr = smtp_addr_parse(rest, rest_len,
	                       SMTP_ADDR_NULL_OK | SMTP_ADDR_UTF8_OK, t->pool,
	                       &addr, &used);
	if (aerr != SMTP_ADDR_OK) {
		smtp_reply(s, 501, "5.1.7", "Bad sender address syntax");
		return PTL_DECLINED;
	}
	rest += used;
	rest_len -= used;
	if (mail_params_start(s, rest, rest_len) != PTL_OK)
		return PTL_DECLINED;
	perr = smtp_params_mail(rest, rest_len, t->pool, &t->params);
	if (perr != SMTP_PARAMS_OK)
		return mail_params_error(s, perr);
	if (addr.utf8 && !t->params.smtputf8) {
		smtp_reply(s, 553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
		return PTL_DECLINED;
	}
	if (conf->require_fqdn_sender && !addr.is_null && !addr.is_literal &&
	    strchr(addr.domain, '.') == NULL) {
		smtp_reply(s, 553, "5.1.7",
		           "Sender domain must be fully qualified");
		return PTL_DECLINED;
	}
	if (t->params.has_size && t->params.size > conf->max_message_size) {
		smtp_reply(s, 552, "5.3.4",
		           "Message size exceeds fixed maximum message size");
		return PTL_DECLINED;
	}
	t->sender = addr.address;
	t->sender_utf8 = addr.utf8;
	return PTL_OK;
}

int
smtp_mail_check(struct smtp_session *s, const struct smtp_cmdline *cl)
{
	struct smtp_txn *t;

	t = txn_new(s);
	if (t == NULL) {
		smtp_reply(s, 421, "4.3.0", "Out of memory, closing");
		smtp_session_close(s, false);
		return PTL_DECLINED;
	}
	if (mail_parse(s, t, cl) != PTL_OK) {
		smtp_txn_free(t);
		return PTL_DECLINED;
	}
	/* Set now so that the MAIL filters see the transaction. */
	s->txn = t;
	return PTL_OK;
}

int
smtp_mail_proceed(struct smtp_session *s)
{
	smtp_reply(s, 250, "2.1.0", "Ok");
	return PTL_OK;
}

/* ---- Local domains --------------------------------------------------- */

bool
smtp_domain_is_local(struct smtp_session *s, const struct smtp_addr *a)
{
	const struct smtp_worker *w = s->w;
	size_t i;

	if (a->is_postmaster)
		return true;
	if (a->domain == NULL)
		return false;
	/* Literals are local only when configured: "user@[127.0.0.1]" must
	 * not turn into a way around the relay check. */
	if (a->is_literal) {
		for (i = 0; i < w->nlocal_literals; i++) {
			if (strcmp(a->domain, w->local_literals[i]) == 0)
				return true;
		}
		return false;
	}
	if (w->nlocal_domains > 0) {
		for (i = 0; i < w->nlocal_domains; i++) {
			if (strcmp(a->domain, w->local_domains[i]) == 0)
				return true;
		}
		return false;
	}
	return w->auth->is_local_domain(w->auth_inst, a->domain) != 0;
}

/* RFC 5321 4.5.1: <Postmaster> needs no domain; it means ours. */
static const char *
rcpt_postmaster_address(struct smtp_session *s, struct ptl_pool *pool)
{
	const struct smtp_worker *w = s->w;
	char *addr;

	addr = ptl_psprintf(pool, "postmaster@%s",
	                    w->nlocal_domains > 0 ? w->local_domains[0]
	                                          : w->hostname);
	if (addr != NULL)
		smtp_domain_normalize(addr + strlen("postmaster@"));
	return addr;
}

/* ---- Recipient lookups ----------------------------------------------- */

static int
rcpt_lookup_result(struct smtp_session *s, const struct ptl_auth_lookup *res)
{
	struct smtp_rcpt *r = &s->txn->pending;

	if (res == NULL || res->status == PTL_AUTH_TEMPFAIL) {
		smtp_reply(s, 451, "4.3.0", "Temporary lookup failure");
		return PTL_DECLINED;
	}
	if (res->status != PTL_AUTH_OK || res->nusers == 0) {
		smtp_reply(s, 550, "5.1.1", "User unknown");
		return PTL_DECLINED;
	}
	r->users = res->users;
	r->nusers = res->nusers;
	return PTL_OK;
}

static int
vrfy_lookup_result(struct smtp_session *s, const struct ptl_auth_lookup *res)
{
	if (res == NULL || res->status == PTL_AUTH_TEMPFAIL)
		smtp_reply(s, 451, "4.3.0", "Temporary lookup failure");
	else if (res->status != PTL_AUTH_OK || res->nusers == 0)
		smtp_reply(s, 550, "5.1.1", "User unknown");
	else
		smtp_reply(s, 250, "2.1.5", "User ok");
	ptl_pool_destroy(s->scratch);
	s->scratch = NULL;
	return PTL_DECLINED;
}

static void
mail_lookup_done(const struct ptl_auth_lookup *res, void *arg)
{
	struct smtp_session *s = arg;
	int rc;

	if (s->magic != SMTP_SESSION_MAGIC || s->cmd == NULL)
		return;
	if (s->cmd->check == smtp_vrfy_check)
		rc = vrfy_lookup_result(s, res);
	else if (s->txn != NULL)
		rc = rcpt_lookup_result(s, res);
	else
		return;
	smtp_cmd_resume(s, rc);
}

static int
mail_lookup(struct smtp_session *s, const char *address, struct ptl_pool *pool)
{
	const struct smtp_worker *w = s->w;
	struct ptl_auth_lookup res;
	int rc;

	memset(&res, 0, sizeof(res));
	rc = w->auth->lookup(w->auth_inst, address, pool, &res,
	                     mail_lookup_done, s);
	if (rc == PTL_AGAIN)
		return PTL_AGAIN;
	if (rc != PTL_OK) {
		res.status = PTL_AUTH_TEMPFAIL;
		res.nusers = 0;
	}
	if (s->cmd->check == smtp_vrfy_check)
		return vrfy_lookup_result(s, &res);
	return rcpt_lookup_result(s, &res);
}

/* ---- RCPT ------------------------------------------------------------ */

static int
rcpt_parse(struct smtp_session *s, const struct smtp_cmdline *cl,
           struct smtp_addr *addr)
{
	struct smtp_txn *t = s->txn;
	enum smtp_addr_error aerr;
	enum smtp_params_error perr;
	const char *rest;
	size_t rest_len, used;

	if (smtp_parse_keyword(cl->args, cl->args_len, "TO:", &rest,
	                       &rest_len) != PTL_OK) {
		smtp_reply(s, 501, "5.5.4", "Syntax: RCPT TO:<address>");
		return PTL_DECLINED;
	}
	aerr = smtp_addr_parse(rest, rest_len,
	                       SMTP_ADDR_POSTMASTER_OK | SMTP_ADDR_UTF8_OK,
	                       t->pool, addr, &used);
	if (aerr != SMTP_ADDR_OK) {
		smtp_reply(s, 501, "5.1.3", "Bad recipient address syntax");
		return PTL_DECLINED;
	}
	rest += used;
	rest_len -= used;
	if (mail_params_start(s, rest, rest_len) != PTL_OK)
		return PTL_DECLINED;
	perr = smtp_params_rcpt(rest, rest_len, t->pool, &t->pending.params);
	if (perr != SMTP_PARAMS_OK)
		return mail_params_error(s, perr);
	if (addr->utf8 && !t->params.smtputf8) {
		smtp_reply(s, 553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
		return PTL_DECLINED;
	}
	return PTL_OK;
}

int
smtp_rcpt_check(struct smtp_session *s, const struct smtp_cmdline *cl)
{
	struct smtp_txn *t = s->txn;
	struct smtp_addr addr;
	const char *address;

	memset(&t->pending, 0, sizeof(t->pending));
	if (t->nrcpts >= (size_t)s->w->conf->max_recipients) {
		smtp_reply(s, 452, "4.5.3", "Too many recipients");
		return PTL_DECLINED;
	}
	if (rcpt_parse(s, cl, &addr) != PTL_OK)
		return PTL_DECLINED;
	address = addr.is_postmaster ? rcpt_postmaster_address(s, t->pool)
	                             : addr.address;
	if (address == NULL) {
		smtp_reply(s, 451, "4.3.0", "Out of memory");
		return PTL_DECLINED;
	}
	t->pending.address = address;
	t->pending.utf8 = addr.utf8;
	if (!smtp_domain_is_local(s, &addr)) {
		if (!smtp_session_may_relay(s)) {
			smtp_reply(s, 554, "5.7.1", "Relay access denied");
			return PTL_DECLINED;
		}
		/*
		 * Without a "queue" service, mail for other domains is
		 * refused with a temporary error rather than accepted and
		 * lost.
		 */
		if (s->w->queue == NULL) {
			smtp_reply(s, 451, "4.3.0",
			           "Relaying is not available");
			return PTL_DECLINED;
		}
		t->pending.remote = true;
		return PTL_OK;
	}
	/*
	 * "user%remote@local", "remote!user@local", "\"user@remote\"@local":
	 * old routing syntaxes. Petrel would only look the local part up,
	 * but a later hop might route on it, so they are refused.
	 */
	if (addr.routing_chars) {
		smtp_reply(s, 554, "5.7.1", "Relay access denied");
		return PTL_DECLINED;
	}
	return mail_lookup(s, address, t->pool);
}

int
smtp_rcpt_proceed(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	struct smtp_rcpt *grown;
	const char **addrs;
	size_t cap;

	/* Doubling in the transaction pool: the old arrays stay until the
	 * transaction ends, which max_recipients bounds. */
	if (t->nrcpts == t->rcpts_cap) {
		cap = t->rcpts_cap == 0 ? 4 : t->rcpts_cap * 2;
		grown = ptl_palloc(t->pool, cap * sizeof(*grown));
		addrs = ptl_palloc(t->pool, (cap + 1) * sizeof(*addrs));
		if (grown == NULL || addrs == NULL) {
			smtp_reply(s, 451, "4.3.0", "Out of memory");
			return PTL_OK;
		}
		if (t->nrcpts > 0) {
			memcpy(grown, t->rcpts, t->nrcpts * sizeof(*grown));
			memcpy(addrs, t->rcpt_addrs,
			       t->nrcpts * sizeof(*addrs));
		}
		t->rcpts = grown;
		t->rcpt_addrs = addrs;
		t->rcpts_cap = cap;
	}
	t->rcpt_addrs[t->nrcpts] = t->pending.address;
	t->rcpt_addrs[t->nrcpts + 1] = NULL;
	t->rcpts[t->nrcpts++] = t->pending;
	memset(&t->pending, 0, sizeof(t->pending));
	smtp_reply(s, 250, "2.1.5", "Ok");
	return PTL_OK;
}

/* ---- VRFY ------------------------------------------------------------ */

/*
 * VRFY tells who exists: off by default (252, RFC 5321 3.5.3), and even
 * when on only for authenticated or trusted clients.
 */
int
smtp_vrfy_check(struct smtp_session *s, const struct smtp_cmdline *cl)
{
	struct smtp_addr addr;
	const char *address;
	char path[SMTP_PATH_MAX + 3];
	size_t used;
	int n;

	if (cl->args_len == 0) {
		smtp_reply(s, 501, "5.5.4", "Syntax: VRFY address");
		return PTL_DECLINED;
	}
	if (!s->w->conf->vrfy || !smtp_session_may_relay(s)) {
		smtp_reply(s, 252, "2.5.2",
		           "Cannot VRFY user, but will accept message and "
		           "attempt delivery");
		return PTL_DECLINED;
	}
	n = snprintf(path, sizeof(path), cl->args[0] == '<' ? "%.*s" : "<%.*s>",
	             (int)cl->args_len, cl->args);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		smtp_reply(s, 501, "5.1.3", "Bad address syntax");
		return PTL_DECLINED;
	}
	ptl_pool_destroy(s->scratch);
	s->scratch = ptl_pool_create(0);
	if (s->scratch == NULL) {
		smtp_reply(s, 451, "4.3.0", "Out of memory");
		return PTL_DECLINED;
	}
	if (smtp_addr_parse(path, (size_t)n, SMTP_ADDR_POSTMASTER_OK,
	                    s->scratch, &addr, &used) != SMTP_ADDR_OK ||
	    used != (size_t)n) {
		smtp_reply(s, 501, "5.1.3", "Bad address syntax");
		return PTL_DECLINED;
	}
	if (!smtp_domain_is_local(s, &addr) || addr.routing_chars) {
		smtp_reply(s, 252, "2.5.2",
		           "Cannot VRFY user, but will accept message and "
		           "attempt delivery");
		return PTL_DECLINED;
	}
	address = addr.is_postmaster ? rcpt_postmaster_address(s, s->scratch)
	                             : addr.address;
	if (address == NULL) {
		smtp_reply(s, 451, "4.3.0", "Out of memory");
		return PTL_DECLINED;
	}
	return mail_lookup(s, address, s->scratch);
}
