/* SPDX-License-Identifier: MIT */
/* Automatic reload: notice a changed file, re-read it off the loop. */
#include <stdlib.h>
#include <string.h>

#include <petrel/petrel.h>

#include "passwd.h"

/*
 * Each process checks on its own (workers do not share memory): at most
 * once per reload_check, when a call comes in. stat() and the parse run
 * on a pool thread; the new tables are swapped in on the loop. A file
 * that fails to parse leaves the old tables in place and is logged once
 * per change. SIGHUP reloads through a new generation instead, where a
 * bad file refuses the whole reload.
 */

/* One check: inputs copied on the loop, outputs read back on the loop. */
struct passwd_check {
	struct passwd_service *svc; /* only svc->opts is read on the thread */
	struct passwd_file_id seen_users, seen_aliases;
	struct passwd_file_id now_users, now_aliases;
	bool changed;
	int rc;
	struct passwd_db *db;
	struct ptl_error err;
};

static void
passwd_check_work(void *arg)
{
	struct passwd_check *c = arg;
	const struct passwd_options *opts = &c->svc->opts;

	passwd_file_id_get(opts->file, &c->now_users);
	if (opts->aliases != NULL)
		passwd_file_id_get(opts->aliases, &c->now_aliases);
	c->changed = !passwd_file_id_equal(&c->now_users, &c->seen_users) ||
	             !passwd_file_id_equal(&c->now_aliases, &c->seen_aliases);
	if (c->changed)
		c->rc = passwd_db_load(opts, &c->db, &c->err);
}

static void
passwd_log_loaded(const struct passwd_service *svc, const char *what)
{
	const char *warning;
	size_t nwarnings;

	ptl_log(PTL_LOG_INFO,
	        "passwd: %s %s: %zu users, %zu aliases, %zu domains", what,
	        svc->opts.file_name, passwd_db_nusers(svc->db),
	        passwd_db_naliases(svc->db), passwd_db_ndomains(svc->db));
	warning = passwd_db_warning(svc->db, &nwarnings);
	if (warning != NULL)
		ptl_log(PTL_LOG_WARN, "passwd: %s%s", warning,
		        nwarnings > 1 ? " (and more problems like it)" : "");
}

static void
passwd_reload_drain(struct passwd_service *svc)
{
	struct passwd_call *call;

	/* A done callback may start the next check: the rest waits for it. */
	while (!svc->check_running && (call = svc->waiting_head) != NULL) {
		passwd_call_unlink(call);
		passwd_call_resume(call);
	}
}

static void
passwd_check_done(void *arg)
{
	struct passwd_check *c = arg;
	struct passwd_service *svc = c->svc;

	svc->check_running = false;
	if (c->changed && c->rc == PTL_OK) {
		passwd_db_free(svc->db);
		svc->db = c->db;
		svc->seen_users = *passwd_db_users_id(svc->db);
		svc->seen_aliases = *passwd_db_aliases_id(svc->db);
		passwd_log_loaded(svc, "reloaded");
	} else if (c->changed) {
		svc->seen_users = c->now_users;
		svc->seen_aliases = c->now_aliases;
		ptl_log(PTL_LOG_ERROR,
		        "passwd: reload failed, keeping the previous table: %s",
		        c->err.text);
	}
	free(c);
	passwd_reload_drain(svc);
}

bool
passwd_reload_poke(struct passwd_service *svc)
{
	struct passwd_check *c;
	int64_t now;

	if (svc->check_running)
		return true;
	now = ptl_now_ms();
	if (svc->checked_once &&
	    now - svc->last_check_ms < svc->check_interval_ms)
		return false;
	/* Whatever happens next, do not retry before the next interval. */
	svc->checked_once = true;
	svc->last_check_ms = now;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return false;
	c->svc = svc;
	c->seen_users = svc->seen_users;
	c->seen_aliases = svc->seen_aliases;
	if (ptl_task_submit(passwd_check_work, passwd_check_done, c) !=
	    PTL_OK) {
		free(c);
		return false;
	}
	svc->check_running = true;
	return true;
}

void
passwd_service_log_loaded(const struct passwd_service *svc)
{
	passwd_log_loaded(svc, "loaded");
}
