/* SPDX-License-Identifier: MIT */
/* The smtp module descriptor and its lifecycle: listeners, services, spool. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "smtp.h"

/*
 * Master, once per generation: declare the listeners. The listener
 * structs come from the instance pool, which workers inherit.
 */
static int
smtp_init_master(struct ptl_instance *inst, struct ptl_error *err)
{
	const struct smtp_conf *conf = ptl_instance_conf(inst);
	const struct smtp_listen_conf *items = conf->listen.items;
	struct smtp_listener *l;
	struct ptl_listen_spec spec;
	uint64_t budget;
	size_t i;

	/* Enough for many large messages per session; the session timeout
	 * bounds the rest. */
	budget = conf->max_message_size * 64;
	if (budget < ((uint64_t)1 << 30))
		budget = (uint64_t)1 << 30;
	for (i = 0; i < conf->listen.count; i++) {
		l = ptl_pcalloc(ptl_instance_pool(inst), sizeof(*l));
		if (l == NULL)
			return ptl_error_set(err, "out of memory");
		l->inst = inst;
		l->role = (enum smtp_role)items[i].role;
		l->implicit_tls = l->role == SMTP_ROLE_SUBMISSIONS;
		l->index = (unsigned)i;

		memset(&spec, 0, sizeof(spec));
		spec.address = items[i].address;
		spec.tls = l->implicit_tls ? PTL_TLS_IMPLICIT : PTL_TLS_NONE;
		spec.limits.idle_timeout_ms = conf->command_timeout;
		spec.limits.total_timeout_ms = conf->session_timeout;
		spec.limits.max_input_bytes = budget;
		spec.limits.max_line = (size_t)conf->max_command_line;
		spec.max_connections = (unsigned)items[i].max_connections;
		spec.max_per_ip = (unsigned)items[i].max_per_ip;
		if (ptl_listener_add(inst, &spec, smtp_session_accept, l,
		                     err) != PTL_OK)
			return PTL_ERROR;
	}
	return PTL_OK;
}

/*
 * The spool directory holds messages while they arrive. It belongs to
 * the worker user and nobody else may look inside: 0700.
 */
static int
smtp_spool_dir_open(struct smtp_worker *w, struct ptl_error *err)
{
	const struct smtp_conf *conf = w->conf;
	const struct ptl_server_info *info = ptl_server_info();
	struct stat st;
	char *dir;
	int fd;

	if (conf->spool_dir != NULL)
		dir = ptl_pstrdup(ptl_instance_pool(w->inst), conf->spool_dir);
	else
		dir = ptl_psprintf(ptl_instance_pool(w->inst), "%s/spool",
		                   info->state_dir);
	if (dir == NULL)
		return ptl_error_set(err, "out of memory");
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return ptl_error_set_errno(err, errno, "cannot create %s", dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return ptl_error_set_errno(err, errno, "cannot open %s", dir);
	if (fstat(fd, &st) != 0) {
		int e = errno;

		close(fd);
		return ptl_error_set_errno(err, e, "cannot stat %s", dir);
	}
	if (st.st_uid != geteuid()) {
		close(fd);
		return ptl_error_set(err,
		                     "%s: owned by uid %u, not the worker "
		                     "user %u",
		                     dir, (unsigned)st.st_uid,
		                     (unsigned)geteuid());
	}
	if ((st.st_mode & 077) != 0 && fchmod(fd, 0700) != 0) {
		int e = errno;

		close(fd);
		return ptl_error_set_errno(err, e, "cannot chmod %s", dir);
	}
	w->spool_dirfd = fd;
	w->spool_dir = dir;
	return PTL_OK;
}

static int
smtp_worker_lists(struct smtp_worker *w, struct ptl_error *err)
{
	const struct smtp_conf *conf = w->conf;
	struct ptl_pool *pool = ptl_instance_pool(w->inst);
	const char *const *list;
	struct smtp_addr addr;
	char *text;
	size_t i, used;

	w->ntrusted = conf->trusted_networks.count;
	w->trusted = ptl_pcalloc(pool, sizeof(*w->trusted) * (w->ntrusted + 1));
	if (w->trusted == NULL)
		return ptl_error_set(err, "out of memory");
	list = conf->trusted_networks.items;
	for (i = 0; i < w->ntrusted; i++) {
		if (smtp_cidr_parse(list[i], &w->trusted[i]) != PTL_OK)
			return ptl_error_set(err, "bad network \"%s\"",
			                     list[i]);
	}

	w->nlocal_domains = conf->local_domains.count;
	w->local_domains =
	    ptl_pcalloc(pool, sizeof(char *) * (w->nlocal_domains + 1));
	if (w->local_domains == NULL)
		return ptl_error_set(err, "out of memory");
	list = conf->local_domains.items;
	for (i = 0; i < w->nlocal_domains; i++) {
		text = ptl_pstrdup(pool, list[i]);
		if (text == NULL)
			return ptl_error_set(err, "out of memory");
		smtp_domain_normalize(text);
		w->local_domains[i] = text;
	}

	/* Normalized the way the address parser writes literals, so that a
	 * plain string comparison is exact. */
	w->nlocal_literals = conf->local_literals.count;
	w->local_literals =
	    ptl_pcalloc(pool, sizeof(char *) * (w->nlocal_literals + 1));
	if (w->local_literals == NULL)
		return ptl_error_set(err, "out of memory");
	list = conf->local_literals.items;
	for (i = 0; i < w->nlocal_literals; i++) {
		text = ptl_psprintf(
		    pool,
		    strchr(list[i], ':') != NULL ? "<x@[IPv6:%s]>" : "<x@[%s]>",
		    list[i]);
		if (text == NULL ||
		    smtp_addr_parse(text, strlen(text), 0, pool, &addr,
		                    &used) != SMTP_ADDR_OK)
			return ptl_error_set(err, "bad literal \"%s\"",
			                     list[i]);
		w->local_literals[i] = addr.domain;
	}
	return PTL_OK;
}

/*
 * Each worker, after the privilege drop: find the services (providers
 * ran their init_worker first), open the spool, build lookup tables.
 */
/*
 * The queue is optional (not in `needs`), so nothing orders its
 * init_worker before ours: it is looked up here and, if not found yet,
 * once more at the first connection.
 */
void
smtp_queue_resolve(struct smtp_worker *w)
{
	const struct ptl_service *svc;
	const struct ptl_queue_methods *m;

	if (w->queue_resolved)
		return;
	svc = ptl_service_find(PTL_QUEUE_SERVICE, PTL_QUEUE_VERSION);
	m = svc != NULL ? svc->methods : NULL;
	if (m == NULL || m->version < PTL_QUEUE_VERSION || m->enqueue == NULL)
		return;
	w->queue = m;
	w->queue_inst = svc->instance;
	w->queue_resolved = true;
}

static int
smtp_init_worker(struct ptl_instance *inst, struct ptl_error *err)
{
	const struct ptl_service *svc;
	struct smtp_worker *w;

	w = ptl_pcalloc(ptl_instance_pool(inst), sizeof(*w));
	if (w == NULL)
		return ptl_error_set(err, "out of memory");
	w->inst = inst;
	w->conf = ptl_instance_conf(inst);
	w->spool_dirfd = -1;
	w->hostname = w->conf->hostname != NULL ? w->conf->hostname
	                                        : ptl_server_info()->hostname;

	svc = ptl_service_find(PTL_AUTH_SERVICE, PTL_AUTH_VERSION);
	if (svc == NULL)
		return ptl_error_set(err, "no \"auth\" service");
	w->auth = svc->methods;
	w->auth_inst = svc->instance;
	svc = ptl_service_find(PTL_STORAGE_SERVICE, PTL_STORAGE_VERSION);
	if (svc == NULL)
		return ptl_error_set(err, "no \"storage\" service");
	w->storage = svc->methods;
	w->storage_inst = svc->instance;
	if (w->auth->version < PTL_AUTH_VERSION ||
	    w->storage->version < PTL_STORAGE_VERSION)
		return ptl_error_set(err, "auth or storage service too old");

	if (smtp_worker_lists(w, err) != PTL_OK)
		return PTL_ERROR;
	if (smtp_spool_dir_open(w, err) != PTL_OK)
		return PTL_ERROR;
	w->authfail = smtp_authfail_new();
	if (w->authfail == NULL) {
		close(w->spool_dirfd);
		return ptl_error_set(err, "out of memory");
	}
	/* Filters registered by modules that come after us in the init
	 * order are found at the first connection instead. */
	(void)smtp_filter_resolve(w, false);
	smtp_queue_resolve(w);
	ptl_instance_set_data(inst, w);
	return PTL_OK;
}

static void
smtp_exit_worker(struct ptl_instance *inst)
{
	struct smtp_worker *w = ptl_instance_data(inst);

	if (w == NULL)
		return;
	if (w->spool_dirfd >= 0)
		close(w->spool_dirfd);
	w->spool_dirfd = -1;
	smtp_authfail_free(w->authfail);
	w->authfail = NULL;
	ptl_instance_set_data(inst, NULL);
}

static const struct ptl_service_ref smtp_needs[] = {
    {PTL_STORAGE_SERVICE, PTL_STORAGE_VERSION},
    {PTL_AUTH_SERVICE, PTL_AUTH_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "smtp",
    .version = "1.0",
    .description = "SMTP server: MX, submission and submissions listeners",
    .license = "MIT",
    .needs = smtp_needs,
    .conf_keys = smtp_conf_keys,
    .conf_size = sizeof(struct smtp_conf),
    .check_config = smtp_check_config,
    .init_master = smtp_init_master,
    .init_worker = smtp_init_worker,
    .exit_worker = smtp_exit_worker,
};
