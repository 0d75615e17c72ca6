/* SPDX-License-Identifier: MIT */
/* Bringing a config generation into service: at start-up and on reload. */
#include <stdio.h>
#include <string.h>

#include "cycle.h"
#include "listener.h"
#include "log_internal.h"
#include "process.h"

static const char *generation_module_dir; /* -M, or NULL */

void
ptl_master_set_module_dir(const char *module_dir)
{
	generation_module_dir = module_dir;
}

void
ptl_master_report(const struct ptl_cycle *cycle, const char *what,
                  const struct ptl_error *err)
{
	char text[PTL_ERROR_TEXT_MAX + PTL_ERROR_PATH_MAX + 512];

	ptl_cycle_format_error(cycle->conf_path, err, text, sizeof(text));
	ptl_log(PTL_LOG_ERROR, "%s%s", what, text);
	/* Start-up failures must reach the admin's terminal too. */
	if (what[0] == '\0' &&
	    cycle->server.log.target != PTL_LOG_TARGET_STDERR)
		fprintf(stderr, "petrel: %s\n", text);
}

void
ptl_master_share_log(const struct ptl_cycle *cycle)
{
	struct ptl_error err = {0};

	if (ptl_privs_share_log(cycle, &err) != PTL_OK)
		ptl_log(PTL_LOG_WARN, "workers may not reopen the log: %s",
		        err.text);
}

int
ptl_master_setup(struct ptl_cycle *cycle, bool *inited_out,
                 struct ptl_error *err)
{
	*inited_out = false;
	if (ptl_privs_check(cycle, err) != PTL_OK ||
	    ptl_privs_prepare_state_dir(cycle, err) != PTL_OK ||
	    ptl_pidfile_check(cycle->server.pid_file, err) != PTL_OK)
		return PTL_ERROR;
	ptl_master_share_log(cycle);
	if (ptl_cycle_init_master(cycle, err) != PTL_OK)
		return PTL_ERROR;
	*inited_out = true;
	if (ptl_listeners_bind(cycle, NULL, err) != PTL_OK)
		return PTL_ERROR;
	if (ptl_pidfile_write(cycle->server.pid_file, err) != PTL_OK) {
		ptl_listeners_close(cycle);
		return PTL_ERROR;
	}
	return PTL_OK;
}

static struct ptl_instance *
find_instance(struct ptl_cycle *cycle, const char *name)
{
	for (size_t i = 0; i < cycle->ninstances; i++)
		if (strcmp(cycle->instances[i].module->name, name) == 0)
			return &cycle->instances[i];
	return NULL;
}

/*
 * A module's reload callback may carry state over from its old instance,
 * or refuse. It runs before the bind: after the bind, the new generation
 * owns the shared sockets and could no longer be dropped.
 */
static int
reload_modules(struct ptl_cycle *old, struct ptl_cycle *cycle,
               struct ptl_error *err)
{
	for (size_t i = 0; i < cycle->ninstances; i++) {
		struct ptl_instance *inst = &cycle->instances[i];
		const struct ptl_module *mod = inst->module;
		struct ptl_instance *old_inst;

		if (mod->reload == NULL)
			continue;
		old_inst = find_instance(old, mod->name);
		if (old_inst == NULL)
			continue;
		memset(err, 0, sizeof(*err));
		if (mod->reload(old_inst, inst, err) == PTL_OK)
			continue;
		if (err->text[0] == '\0')
			ptl_error_set(err, "refused by module \"%s\"",
			              mod->name);
		if (err->path[0] == '\0')
			snprintf(err->path, sizeof(err->path), "modules.%s",
			         mod->name);
		return PTL_ERROR;
	}
	return PTL_OK;
}

static int
reload_fail(struct ptl_cycle *old, struct ptl_cycle *cycle, bool inited)
{
	ptl_cycle_current = old;
	ptl_cycle_free(cycle, inited);
	return PTL_ERROR;
}

/* Everything -t checks, then what only the master can do. */
int
ptl_generation_prepare(struct ptl_cycle *old, struct ptl_cycle **cycle_out,
                       struct ptl_error *err)
{
	struct ptl_cycle *cycle;

	*cycle_out = NULL;
	ptl_log(PTL_LOG_INFO, "reload: reading %s", old->conf_path);
	if (ptl_cycle_load(old->conf_path, generation_module_dir, &cycle,
	                   err) != PTL_OK)
		return PTL_ERROR;
	/* Numbered here: a load that failed later must leave no gap. */
	cycle->generation = old->generation + 1;
	if (ptl_privs_check(cycle, err) != PTL_OK ||
	    ptl_privs_prepare_state_dir(cycle, err) != PTL_OK ||
	    ptl_cycle_init_master(cycle, err) != PTL_OK)
		return reload_fail(old, cycle, false);
	if (reload_modules(old, cycle, err) != PTL_OK ||
	    ptl_listeners_bind(cycle, old, err) != PTL_OK)
		return reload_fail(old, cycle, true);
	*cycle_out = cycle;
	return PTL_OK;
}
