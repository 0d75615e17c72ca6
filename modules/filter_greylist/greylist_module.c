/* SPDX-License-Identifier: MIT */
/* filter_greylist: classic greylisting at RCPT, state kept in a file. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <petrel/petrel.h>
#include <petrel/filter.h>

#include "greylist_triplet.h"
#include "policy_net.h"
#include "policy_table.h"

/*
 * The state is a policy table (policy_table.c) in a file mapped
 * MAP_SHARED by the master before it forks: every worker reads and
 * writes the same pages, under POSIX record locks on the file, and the
 * kernel writes them back to disk, so the state survives restarts and
 * even a crash of Petrel. Worker 0 also msyncs the file every
 * `sync_interval`, and every worker at its exit, which bounds what a
 * crash of the machine can lose.
 */

#define GL_FILE_NAME "greylist.db"

struct gl_conf {
	int64_t delay;
	int64_t retry_window;
	int64_t whitelist_expiry;
	int64_t auto_whitelist;
	int64_t ipv4_prefix;
	int64_t ipv6_prefix;
	struct ptl_conf_list whitelist;
	struct ptl_conf_list whitelist_domains;
	struct ptl_conf_list roles;
	int64_t slots;
	const char *dir;
	int64_t sync_interval;
	bool fail_open;
};

static int
gl_validate_dir(const json_t *value, void *field, struct ptl_error *err)
{
	const char *dir = *(const char **)field;

	if (dir != NULL && dir[0] != '/')
		return ptl_error_set(err, "must be an absolute path");
	return PTL_OK;
}

static const struct ptl_conf_key gl_conf_keys[] = {
    {.name = "delay",
     .type = PTL_CONF_DURATION,
     .offset = offsetof(struct gl_conf, delay),
     .def = "5m",
     .min = 1000,
     .max = 24LL * 3600 * 1000,
     .doc = "Shortest wait before a retry is accepted (1s..1d)."},
    {.name = "retry_window",
     .type = PTL_CONF_DURATION,
     .offset = offsetof(struct gl_conf, retry_window),
     .def = "24h",
     .min = 60 * 1000,
     .max = 30LL * 24 * 3600 * 1000,
     .doc = "Longest wait: a retry later than this starts over."},
    {.name = "whitelist_expiry",
     .type = PTL_CONF_DURATION,
     .offset = offsetof(struct gl_conf, whitelist_expiry),
     .def = "36d",
     .min = 3600 * 1000,
     .max = 365LL * 24 * 3600 * 1000,
     .doc = "A triplet (or client) that passed is known this long after "
            "its last message."},
    {.name = "auto_whitelist",
     .type = PTL_CONF_INT,
     .offset = offsetof(struct gl_conf, auto_whitelist),
     .def = "5",
     .min = 0,
     .max = 1000000,
     .doc = "After this many triplets of a client network passed, the "
            "whole network skips greylisting (0: never)."},
    {.name = "ipv4_prefix",
     .type = PTL_CONF_INT,
     .offset = offsetof(struct gl_conf, ipv4_prefix),
     .def = "24",
     .min = 8,
     .max = 32,
     .doc = "IPv4 clients are one client per network of this length "
            "(large senders retry from another address)."},
    {.name = "ipv6_prefix",
     .type = PTL_CONF_INT,
     .offset = offsetof(struct gl_conf, ipv6_prefix),
     .def = "64",
     .min = 16,
     .max = 128,
     .doc = "IPv6 clients are one client per network of this length."},
    {.name = "whitelist",
     .type = PTL_CONF_STRING_LIST,
     .offset = offsetof(struct gl_conf, whitelist),
     .def = "[]",
     .validate = policy_validate_cidrs,
     .doc = "Client networks never greylisted."},
    {.name = "whitelist_domains",
     .type = PTL_CONF_STRING_LIST,
     .offset = offsetof(struct gl_conf, whitelist_domains),
     .def = "[]",
     .doc = "Sender domains (and their subdomains) never greylisted."},
    {.name = "roles",
     .type = PTL_CONF_STRING_LIST,
     .offset = offsetof(struct gl_conf, roles),
     .def = "[\"mx\"]",
     .validate = ptl_filter_validate_roles,
     .doc = "Listener roles greylisted (empty: all)."},
    {.name = "slots",
     .type = PTL_CONF_INT,
     .offset = offsetof(struct gl_conf, slots),
     .def = "65536",
     .min = 1024,
     .max = POLICY_TABLE_MAX_SLOTS,
     .doc = "Entries in the state file (64 bytes each)."},
    {.name = "dir",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct gl_conf, dir),
     .validate = gl_validate_dir,
     .doc = "Directory of the state file greylist.db (default: "
            "STATE_DIR/greylist)."},
    {.name = "sync_interval",
     .type = PTL_CONF_DURATION,
     .offset = offsetof(struct gl_conf, sync_interval),
     .def = "60s",
     .min = 0,
     .max = 24LL * 3600 * 1000,
     .doc = "How often the state file is flushed to disk (0: only at "
            "exit; the kernel writes it back anyway)."},
    {.name = "fail_open",
     .type = PTL_CONF_BOOL,
     .offset = offsetof(struct gl_conf, fail_open),
     .def = "true",
     .doc = "When the state cannot be read, let the recipient pass."},
    {NULL},
};

struct gl_state {
	const struct gl_conf *conf;
	struct gl_times times;
	struct policy_cidr *whitelist;
	size_t nwhitelist;
	struct policy_table *table;
	struct ptl_filter_methods methods;
	/* Per process. */
	struct ptl_timer *sync_timer;
	bool sync_running;
	char text[200];
};

static int
gl_check_config(struct ptl_instance *inst, const json_t *section,
                void *conf_ptr, struct ptl_error *err)
{
	const struct gl_conf *conf = conf_ptr;

	if (conf->retry_window <= conf->delay)
		return ptl_error_set_path(err, "retry_window",
		                          "must be longer than \"delay\"");
	return PTL_OK;
}

static int64_t
gl_wall_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the filter ----------------------------------------------------- */

struct gl_step_ctx {
	const struct gl_state *st;
	int64_t now;
	int64_t wait_ms;
	enum gl_outcome outcome;
	bool white;
};

static void
gl_triplet_fn(struct policy_slot *slot, bool fresh, void *arg)
{
	struct gl_step_ctx *ctx = arg;

	ctx->outcome = gl_triplet_step(&ctx->st->times, slot, fresh, ctx->now,
	                               &ctx->wait_ms);
}

static void
gl_net_check_fn(struct policy_slot *slot, bool fresh, void *arg)
{
	struct gl_step_ctx *ctx = arg;

	ctx->white = gl_net_whitelisted(&ctx->st->times, slot, ctx->now);
}

static void
gl_net_passed_fn(struct policy_slot *slot, bool fresh, void *arg)
{
	struct gl_step_ctx *ctx = arg;

	ctx->white =
	    gl_net_passed(&ctx->st->times, ctx->st->conf->auto_whitelist, slot,
	                  fresh, ctx->now);
}

static void
gl_log(const struct ptl_filter_request *req, const char *net, const char *what)
{
	char sender[200], rcpt[200];

	ptl_log(
	    PTL_LOG_INFO, "[c %s] greylist: %s <%s> <%s>: %s",
	    req->session_id != NULL ? req->session_id : "-", net,
	    ptl_log_escape(sender, sizeof(sender), req->mail_from,
	                   strlen(req->mail_from)),
	    ptl_log_escape(rcpt, sizeof(rcpt), req->rcpt, strlen(req->rcpt)),
	    what);
}

static int
gl_check(void *instance, const struct ptl_filter_request *req,
         struct ptl_filter_verdict *verdict_out, ptl_filter_done_fn done,
         void *arg)
{
	struct gl_state *st = instance;
	const struct gl_conf *conf = st->conf;
	unsigned v4 = (unsigned)conf->ipv4_prefix;
	unsigned v6 = (unsigned)conf->ipv6_prefix;
	char bytes[1200], net[POLICY_IP_TEXT_MAX], what[96];
	struct gl_step_ctx ctx;
	struct ptl_error err;
	struct policy_ip ip;
	uint64_t key[2];
	long long secs;
	size_t len;
	int rc;

	memset(verdict_out, 0, sizeof(*verdict_out));
	verdict_out->action = PTL_FILTER_CONTINUE;
	if (req->hook != PTL_FILTER_RCPT || req->rcpt == NULL ||
	    req->mail_from == NULL || req->auth_user != NULL || req->trusted ||
	    !ptl_filter_role_listed(&conf->roles, req->role) ||
	    policy_ip_parse(req->peer_ip, &ip) != PTL_OK ||
	    policy_cidr_match(st->whitelist, st->nwhitelist, &ip) ||
	    (req->mail_from[0] != '\0' &&
	     gl_domain_listed(&conf->whitelist_domains, req->mail_from)))
		return PTL_OK;

	memset(&ctx, 0, sizeof(ctx));
	ctx.st = st;
	ctx.now = gl_wall_ms();
	len = gl_net_bytes(&ip, v4, v6, bytes, sizeof(bytes));
	(void)snprintf(net, sizeof(net), "%.*s", (int)sizeof(net) - 1,
	               bytes + 2);
	if (conf->auto_whitelist > 0) {
		policy_table_key(st->table, bytes, len, key);
		rc = policy_table_update(st->table, key, ctx.now, false,
		                         gl_net_check_fn, &ctx, &err);
		if (rc == PTL_ERROR)
			goto failed;
		if (rc == PTL_OK && ctx.white) {
			verdict_out->result = "greylist=pass";
			return PTL_OK;
		}
	}
	len = gl_triplet_bytes(&ip, v4, v6, req->mail_from, req->rcpt, bytes,
	                       sizeof(bytes));
	if (len == 0)
		return PTL_OK;
	policy_table_key(st->table, bytes, len, key);
	if (policy_table_update(st->table, key, ctx.now, true, gl_triplet_fn,
	                        &ctx, &err) != PTL_OK)
		goto failed;

	secs = (long long)((ctx.wait_ms + 999) / 1000);
	switch (ctx.outcome) {
	case GL_NEW:
	case GL_EARLY:
		(void)snprintf(what, sizeof(what), "%s, retry in %lld s",
		               ctx.outcome == GL_NEW ? "greylisted"
		                                     : "retried too early",
		               secs);
		gl_log(req, net, what);
		(void)snprintf(st->text, sizeof(st->text),
		               "Greylisted, try again in %lld seconds", secs);
		memset(verdict_out, 0, sizeof(*verdict_out));
		verdict_out->action = PTL_FILTER_TEMPFAIL;
		verdict_out->code = 451;
		verdict_out->enhanced = "4.7.1";
		verdict_out->text = st->text;
		verdict_out->result = "greylist=tempfail";
		return PTL_OK;
	case GL_PASSED:
		verdict_out->result = "greylist=pass";
		(void)snprintf(what, sizeof(what), "passed after %lld s",
		               (long long)(ctx.wait_ms / 1000));
		gl_log(req, net, what);
		if (conf->auto_whitelist <= 0)
			return PTL_OK;
		policy_table_key(
		    st->table, bytes,
		    gl_net_bytes(&ip, v4, v6, bytes, sizeof(bytes)), key);
		if (policy_table_update(st->table, key, ctx.now, true,
		                        gl_net_passed_fn, &ctx,
		                        &err) == PTL_OK &&
		    ctx.white)
			ptl_log(PTL_LOG_INFO,
			        "[c %s] greylist: %s whitelisted after %lld "
			        "passed triplets",
			        req->session_id != NULL ? req->session_id : "-",
			        net, (long long)conf->auto_whitelist);
		return PTL_OK;
	case GL_KNOWN:
		verdict_out->result = "greylist=pass";
		return PTL_OK;
	}
	return PTL_OK;
failed:
	ptl_log(PTL_LOG_ERROR, "[c %s] greylist: %s",
	        req->session_id != NULL ? req->session_id : "-", err.text);
	return PTL_ERROR;
}

/* Never asynchronous: nothing to cancel. */
static void
gl_cancel(void *instance, void *arg)
{
}

/* ---- writing back --------------------------------------------------- */

static void
gl_sync_work(void *arg)
{
	struct gl_state *st = arg;
	struct ptl_error err;

	if (policy_table_sync(st->table, &err) != PTL_OK)
		ptl_log(PTL_LOG_WARN, "greylist: %s", err.text);
}

static void
gl_sync_done(void *arg)
{
	struct gl_state *st = arg;

	st->sync_running = false;
	if (st->sync_timer != NULL && !ptl_loop_stopping())
		ptl_timer_start(st->sync_timer, st->conf->sync_interval);
}

static void
gl_sync_tick(struct ptl_timer *t, void *arg)
{
	struct gl_state *st = arg;

	if (st->sync_running || ptl_loop_stopping())
		return;
	/* msync waits for the disk: on a pool thread, never the loop. */
	if (ptl_task_submit(gl_sync_work, gl_sync_done, st) == PTL_OK)
		st->sync_running = true;
	else
		ptl_timer_start(t, st->conf->sync_interval);
}

/* ---- lifecycle ------------------------------------------------------ */

static void
gl_pool_release(void *arg)
{
	struct gl_state *st = arg;

	policy_table_free(st->table);
	st->table = NULL;
}

static int
gl_init_master(struct ptl_instance *inst, struct ptl_error *err)
{
	struct ptl_pool *pool = ptl_instance_pool(inst);
	const struct gl_conf *conf = ptl_instance_conf(inst);
	const struct ptl_server_info *info = ptl_server_info();
	struct gl_state *st;
	char dir[4096];

	st = ptl_pcalloc(pool, sizeof(*st));
	if (st == NULL)
		return ptl_error_set(err, "out of memory");
	st->conf = conf;
	st->times.delay = conf->delay;
	st->times.retry_window = conf->retry_window;
	st->times.whitelist_expiry = conf->whitelist_expiry;
	if (policy_cidr_list(pool, &conf->whitelist, &st->whitelist,
	                     &st->nwhitelist, err) != PTL_OK)
		return PTL_ERROR;
	if (conf->dir != NULL)
		(void)snprintf(dir, sizeof(dir), "%s", conf->dir);
	else if (info != NULL && info->state_dir != NULL)
		(void)snprintf(dir, sizeof(dir), "%s/greylist",
		               info->state_dir);
	else
		return ptl_error_set(err, "no \"dir\" and no server "
		                          "state_dir");
	if (policy_table_file(dir, GL_FILE_NAME, (uint64_t)conf->slots,
	                      "greylist", gl_wall_ms(), &st->table,
	                      err) != PTL_OK)
		return PTL_ERROR;
	if (ptl_pool_cleanup_add(pool, gl_pool_release, st) != PTL_OK) {
		policy_table_free(st->table);
		st->table = NULL;
		return ptl_error_set(err, "out of memory");
	}
	ptl_log(PTL_LOG_INFO, "greylist: state in %s/%s (%llu slots)", dir,
	        GL_FILE_NAME, (unsigned long long)st->table->nslots);
	st->methods.version = PTL_FILTER_VERSION;
	st->methods.hooks = PTL_FILTER_HOOK_BIT(PTL_FILTER_RCPT);
	st->methods.flags = conf->fail_open ? PTL_FILTER_FAIL_OPEN : 0;
	st->methods.check = gl_check;
	st->methods.cancel = gl_cancel;
	ptl_instance_set_data(inst, st);
	return ptl_service_register(inst,
	                            PTL_FILTER_SERVICE_PREFIX "filter_greylist",
	                            PTL_FILTER_VERSION, &st->methods, st, err);
}

static int
gl_init_worker(struct ptl_instance *inst, struct ptl_error *err)
{
	struct gl_state *st = ptl_instance_data(inst);
	const struct ptl_server_info *info = ptl_server_info();

	if (st == NULL || st->conf->sync_interval <= 0 ||
	    ptl_process_kind() == PTL_PROCESS_HELPER ||
	    (info != NULL && info->worker_index != 0))
		return PTL_OK;
	st->sync_timer = ptl_timer_new(gl_sync_tick, st);
	if (st->sync_timer == NULL)
		return ptl_error_set(err, "out of memory");
	ptl_timer_start(st->sync_timer, st->conf->sync_interval);
	return PTL_OK;
}

static void
gl_exit_worker(struct ptl_instance *inst)
{
	struct gl_state *st = ptl_instance_data(inst);
	struct ptl_error err;

	if (st == NULL || st->table == NULL)
		return;
	ptl_timer_free(st->sync_timer);
	st->sync_timer = NULL;
	/* The process is ending: waiting for the disk is fine here. */
	if (policy_table_sync(st->table, &err) != PTL_OK)
		ptl_log(PTL_LOG_WARN, "greylist: %s", err.text);
}

static const struct ptl_service_ref gl_provides[] = {
    {PTL_FILTER_SERVICE_PREFIX "filter_greylist", PTL_FILTER_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "filter_greylist",
    .version = "1.0",
    .description = "greylisting at RCPT with state kept across restarts",
    .license = "MIT",
    .provides = gl_provides,
    .conf_keys = gl_conf_keys,
    .conf_size = sizeof(struct gl_conf),
    .check_config = gl_check_config,
    .init_master = gl_init_master,
    .init_worker = gl_init_worker,
    .exit_worker = gl_exit_worker,
};
