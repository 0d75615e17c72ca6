/* SPDX-License-Identifier: MIT */
/* Config generations: load and check a config file, run module lifecycles. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <petrel/petrel.h>

#include "core/cycle.h"
#include "core/tls.h"
#include "petrel_build.h"

/* Longest helper process name (it is shown in logs and process titles). */
#define CYCLE_HELPER_NAME_MAX 32

/*
 * The generation this process serves. In the master it is the newest
 * accepted generation: ptl_cycle_init_master() sets it and leaves it set
 * on success (old generations only wait to be retired), and puts the
 * previous one back when the new generation fails.
 */
struct ptl_cycle *ptl_cycle_current;

/* Numbers handed to successfully loaded generations. */
static unsigned cycle_last_generation;
/* Set by the process code in each worker (ptl_cycle_set_worker_index). */
static unsigned cycle_worker_index;

static const char *const cycle_top_keys[] = {
    "server", "tls", "services", "modules", NULL,
};

/* A module without conf_keys accepts an empty section only. */
static const struct ptl_conf_key cycle_no_keys[] = {{NULL}};

void
ptl_cycle_format_error(const char *conf_path, const struct ptl_error *err,
                       char *out, size_t outsz)
{
	size_t len = strlen(conf_path);

	if (outsz == 0)
		return;
	if (err->path[0] != '\0')
		(void)snprintf(out, outsz, "%s: %s: %s", conf_path, err->path,
		               err->text);
	else if (strncmp(err->text, conf_path, len) == 0 &&
	         err->text[len] == ':')
		(void)snprintf(out, outsz, "%s", err->text);
	else
		(void)snprintf(out, outsz, "%s: %s", conf_path, err->text);
}

void
ptl_cycle_set_worker_index(unsigned index)
{
	cycle_worker_index = index;
	if (ptl_cycle_current != NULL)
		ptl_cycle_current->info.worker_index = index;
}

/*
 * Errors from a module callback name the module's section. A module may
 * give a path relative to its section ("listen[0]"); a full one
 * ("modules.x.listen[0]", e.g. from its own ptl_conf_parse()) is kept.
 */
static void
cycle_module_error_path(struct ptl_error *err, const char *section_path)
{
	char path[PTL_ERROR_PATH_MAX];

	if (err->path[0] == '\0') {
		(void)snprintf(err->path, sizeof(err->path), "%s",
		               section_path);
	} else if (strncmp(err->path, "modules.", 8) != 0) {
		/* A cut path still points the admin at the right section. */
		if (snprintf(path, sizeof(path), "%s.%s", section_path,
		             err->path) < 0)
			return;
		memcpy(err->path, path, sizeof(path));
	}
}

static void
cycle_error_clear(struct ptl_error *err)
{
	err->text[0] = '\0';
	err->path[0] = '\0';
	err->sys_errno = 0;
}

static int
cycle_read_json(struct ptl_cycle *cycle, const char *path,
                struct ptl_error *err)
{
	json_error_t jerr;
	FILE *fp;

	fp = fopen(path, "re");
	if (fp == NULL)
		return ptl_error_set_errno(err, errno,
		                           "cannot open the configuration");
	/* A key given twice is almost always a mistake the admin cannot see. */
	cycle->root = json_loadf(fp, JSON_REJECT_DUPLICATES, &jerr);
	(void)fclose(fp);
	if (cycle->root == NULL)
		return ptl_error_set(err, "%s:%d:%d: syntax error: %s", path,
		                     jerr.line, jerr.column, jerr.text);
	if (!json_is_object(cycle->root))
		return ptl_error_set(err, "the configuration must be a JSON "
		                          "object");
	return PTL_OK;
}

static int
cycle_check_top_keys(const json_t *root, struct ptl_error *err)
{
	char shown[64];
	const char *key;
	size_t i, len;
	void *it;

	for (it = json_object_iter((json_t *)root); it != NULL;
	     it = json_object_iter_next((json_t *)root, it)) {
		key = json_object_iter_key(it);
		len = json_object_iter_key_len(it);
		for (i = 0; cycle_top_keys[i] != NULL; i++) {
			if (strcmp(key, cycle_top_keys[i]) == 0)
				break;
		}
		if (cycle_top_keys[i] != NULL)
			continue;
		/* The key comes from the file: keep the message printable. */
		ptl_log_escape(shown, sizeof(shown), key, len);
		return ptl_error_set_path(err, shown,
		                          "unknown key \"%s\" (valid keys: "
		                          "\"server\", \"tls\", \"services\", "
		                          "\"modules\")",
		                          shown);
	}
	return PTL_OK;
}

/*
 * A missing section is an empty one, so that its defaults apply; it is
 * added to the root, which owns it.
 */
static json_t *
cycle_section(json_t *parent, const char *key, const char *path,
              struct ptl_error *err)
{
	json_t *obj = json_object_get(parent, key);

	if (obj == NULL) {
		obj = json_object();
		if (obj == NULL || json_object_set_new(parent, key, obj) != 0) {
			(void)ptl_error_set(err, "out of memory");
			return NULL;
		}
	}
	if (!json_is_object(obj)) {
		(void)ptl_error_set_path(err, path, "expected an object");
		return NULL;
	}
	return obj;
}

static int
cycle_load_core(struct ptl_cycle *cycle, const char *module_dir,
                struct ptl_error *err)
{
	json_t *server, *tls;

	server = cycle_section(cycle->root, "server", "server", err);
	if (server == NULL)
		return PTL_ERROR;
	if (ptl_conf_parse(ptl_server_conf_keys, server, &cycle->server,
	                   cycle->pool, "server", err) != PTL_OK ||
	    ptl_server_conf_resolve(&cycle->server, cycle->pool, err) != PTL_OK)
		return PTL_ERROR;

	tls = cycle_section(cycle->root, "tls", "tls", err);
	if (tls == NULL ||
	    ptl_conf_parse(ptl_tls_conf_keys, tls, &cycle->tls_conf,
	                   cycle->pool, "tls", err) != PTL_OK)
		return PTL_ERROR;

	/* -M beats the config, which beats the build default. */
	if (module_dir != NULL) {
		cycle->module_dir = ptl_pstrdup(cycle->pool, module_dir);
		if (cycle->module_dir == NULL)
			return ptl_error_set(err, "out of memory");
	} else if (cycle->server.module_dir != NULL) {
		cycle->module_dir = cycle->server.module_dir;
	} else {
		cycle->module_dir = PETREL_MODULE_DIR;
	}
	if (ptl_conf_path_absolute(
	        cycle->pool, &cycle->module_dir,
	        module_dir != NULL ? "" : "server.module_dir", err) != PTL_OK)
		return PTL_ERROR;

	cycle->services_choice = json_object_get(cycle->root, "services");
	return PTL_OK;
}

/*
 * "path" tells the loader where the file is; it is not a module key.
 * The module gets a shallow copy of its section without it.
 */
static int
cycle_split_path(struct ptl_cycle *cycle, const json_t *value,
                 const char *section_path, json_t **section_out,
                 const char **file_out, struct ptl_error *err)
{
	char path[PTL_ERROR_PATH_MAX];
	const json_t *file;
	json_t *section;

	*file_out = NULL;
	file = json_object_get(value, "path");
	if (file != NULL) {
		if (snprintf(path, sizeof(path), "%s.path", section_path) < 0)
			path[0] = '\0';
		if (!json_is_string(file))
			return ptl_error_set_path(err, path,
			                          "expected a string");
		if (json_string_value(file)[0] != '/')
			return ptl_error_set_path(err, path,
			                          "expected an absolute path");
		*file_out = ptl_pstrdup(cycle->pool, json_string_value(file));
		if (*file_out == NULL)
			return ptl_error_set(err, "out of memory");
	}
	section = json_copy((json_t *)value);
	if (section == NULL)
		return ptl_error_set(err, "out of memory");
	(void)json_object_del(section, "path");
	*section_out = section;
	return PTL_OK;
}

static int
cycle_load_instance(struct ptl_cycle *cycle, struct ptl_instance *inst,
                    const char *name, const char *file, json_t *section,
                    struct ptl_error *err)
{
	const struct ptl_conf_key *keys;
	const struct ptl_module *mod;
	char path[PTL_ERROR_PATH_MAX];
	char no_conf;

	(void)snprintf(path, sizeof(path), "modules.%s", name);
	if (ptl_module_load(name, file, cycle->module_dir, &mod, err) !=
	    PTL_OK) {
		(void)snprintf(err->path, sizeof(err->path), "%s", path);
		return PTL_ERROR;
	}
	inst->module = mod;
	inst->cycle = cycle;
	inst->section = section;

	keys = mod->conf_keys != NULL ? mod->conf_keys : cycle_no_keys;
	if (keys[0].name != NULL && mod->conf_size == 0)
		return ptl_error_set_path(err, path,
		                          "module \"%s\" has config keys but "
		                          "conf_size 0",
		                          name);
	if (mod->conf_size > 0) {
		inst->conf = ptl_pcalloc(cycle->pool, mod->conf_size);
		if (inst->conf == NULL)
			return ptl_error_set(err, "out of memory");
	}
	if (ptl_conf_parse(keys, section, inst->conf ? inst->conf : &no_conf,
	                   cycle->pool, path, err) != PTL_OK)
		return PTL_ERROR;
	if (mod->check_config == NULL)
		return PTL_OK;
	cycle_error_clear(err);
	if (mod->check_config(inst, section, inst->conf, err) != PTL_OK) {
		if (err->text[0] == '\0')
			(void)snprintf(err->text, sizeof(err->text),
			               "rejected by module \"%s\"", name);
		cycle_module_error_path(err, path);
		return PTL_ERROR;
	}
	return PTL_OK;
}

/* Instances follow the config order here; the graph check reorders them. */
static int
cycle_load_modules(struct ptl_cycle *cycle, struct ptl_error *err)
{
	char path[PTL_ERROR_PATH_MAX];
	json_t *modules, *value, *sections, *section = NULL;
	const char *name, *file;
	char shown[96];
	size_t n;
	void *it;
	int rc = PTL_OK;

	modules = cycle_section(cycle->root, "modules", "modules", err);
	if (modules == NULL)
		return PTL_ERROR;
	n = json_object_size(modules);
	if (n == 0)
		return PTL_OK;
	cycle->instances =
	    ptl_pcalloc(cycle->pool, n * sizeof(*cycle->instances));
	sections = json_object();
	if (cycle->instances == NULL || sections == NULL) {
		json_decref(sections);
		return ptl_error_set(err, "out of memory");
	}
	for (it = json_object_iter(modules); it != NULL;
	     it = json_object_iter_next(modules, it)) {
		name = json_object_iter_key(it);
		value = json_object_iter_value(it);
		/* Only valid names reach the loader; keep others printable. */
		ptl_log_escape(shown, sizeof(shown), name, strlen(name));
		(void)snprintf(path, sizeof(path), "modules.%s", shown);
		if (!json_is_object(value)) {
			rc =
			    ptl_error_set_path(err, path, "expected an object");
			break;
		}
		if (cycle_split_path(cycle, value, path, &section, &file,
		                     err) != PTL_OK) {
			rc = PTL_ERROR;
			break;
		}
		if (json_object_set_new(sections, name, section) != 0) {
			rc = ptl_error_set(err, "out of memory");
			break;
		}
		if (cycle_load_instance(cycle,
		                        &cycle->instances[cycle->ninstances],
		                        name, file, section, err) != PTL_OK) {
			rc = PTL_ERROR;
			break;
		}
		cycle->ninstances++;
	}
	/* The root keeps the sections the instances borrow. */
	if (json_object_set_new(cycle->root, "modules", sections) != 0 &&
	    rc == PTL_OK)
		rc = ptl_error_set(err, "out of memory");
	return rc;
}

int
ptl_cycle_load(const char *path, const char *module_dir,
               struct ptl_cycle **cycle_out, struct ptl_error *err)
{
	struct ptl_cycle *cycle;
	struct ptl_pool *pool;

	*cycle_out = NULL;
	pool = ptl_pool_create(0);
	if (pool == NULL)
		return ptl_error_set(err, "out of memory");
	cycle = ptl_pcalloc(pool, sizeof(*cycle));
	if (cycle == NULL) {
		ptl_pool_destroy(pool);
		return ptl_error_set(err, "out of memory");
	}
	cycle->pool = pool;
	cycle->conf_path = ptl_pstrdup(pool, path);
	if (cycle->conf_path == NULL) {
		ptl_cycle_free(cycle, false);
		return ptl_error_set(err, "out of memory");
	}

	if (cycle_read_json(cycle, path, err) != PTL_OK ||
	    cycle_check_top_keys(cycle->root, err) != PTL_OK ||
	    cycle_load_core(cycle, module_dir, err) != PTL_OK ||
	    cycle_load_modules(cycle, err) != PTL_OK ||
	    ptl_registry_check_graph(cycle, err) != PTL_OK) {
		ptl_cycle_free(cycle, false);
		return PTL_ERROR;
	}

	cycle->info.hostname = cycle->server.hostname;
	cycle->info.state_dir = cycle->server.state_dir;
	cycle->info.workers = cycle->server.nworkers;
	cycle->info.worker_index = 0;
	cycle->generation = ++cycle_last_generation;
	*cycle_out = cycle;
	return PTL_OK;
}

/* Undo init_master of the instances that completed it, newest first. */
static void
cycle_fini_masters(struct ptl_cycle *cycle)
{
	struct ptl_instance *inst;
	size_t i;

	for (i = cycle->ninstances; i-- > 0;) {
		inst = &cycle->instances[i];
		if (!inst->master_inited)
			continue;
		inst->master_inited = false;
		if (inst->module->fini_master != NULL)
			inst->module->fini_master(inst);
	}
}

int
ptl_cycle_init_master(struct ptl_cycle *cycle, struct ptl_error *err)
{
	struct ptl_cycle *previous = ptl_cycle_current;
	char path[PTL_ERROR_PATH_MAX];
	struct ptl_instance *inst;
	size_t i;

	/* Modules may rely on TLS being ready when they declare listeners. */
	if (ptl_tls_build(cycle, err) != PTL_OK)
		return PTL_ERROR;

	ptl_cycle_current = cycle;
	cycle->in_init_master = true;
	for (i = 0; i < cycle->ninstances; i++) {
		inst = &cycle->instances[i];
		if (inst->module->init_master != NULL) {
			cycle_error_clear(err);
			if (inst->module->init_master(inst, err) != PTL_OK)
				break;
		}
		inst->master_inited = true;
	}
	cycle->in_init_master = false;
	if (i == cycle->ninstances)
		return PTL_OK;

	if (err->text[0] == '\0')
		(void)snprintf(err->text, sizeof(err->text),
		               "init_master failed");
	(void)snprintf(path, sizeof(path), "modules.%s",
	               cycle->instances[i].module->name);
	cycle_module_error_path(err, path);
	cycle_fini_masters(cycle);
	ptl_cycle_current = previous;
	return PTL_ERROR;
}

void
ptl_cycle_exit_worker(struct ptl_cycle *cycle)
{
	struct ptl_instance *inst;
	size_t i;

	for (i = cycle->ninstances; i-- > 0;) {
		inst = &cycle->instances[i];
		if (!inst->worker_inited)
			continue;
		inst->worker_inited = false;
		if (inst->module->exit_worker != NULL)
			inst->module->exit_worker(inst);
	}
}

int
ptl_cycle_init_worker(struct ptl_cycle *cycle, struct ptl_error *err)
{
	char path[PTL_ERROR_PATH_MAX];
	struct ptl_instance *inst;
	size_t i;

	/* Normally already done by the process code; ptl_service_find() needs
	 * it. */
	ptl_cycle_current = cycle;
	cycle->info.worker_index = cycle_worker_index;
	cycle->in_init_worker = true;
	for (i = 0; i < cycle->ninstances; i++) {
		inst = &cycle->instances[i];
		if (inst->module->init_worker != NULL) {
			cycle_error_clear(err);
			if (inst->module->init_worker(inst, err) != PTL_OK)
				break;
		}
		inst->worker_inited = true;
	}
	cycle->in_init_worker = false;
	if (i == cycle->ninstances)
		return PTL_OK;

	if (err->text[0] == '\0')
		(void)snprintf(err->text, sizeof(err->text),
		               "init_worker failed");
	(void)snprintf(path, sizeof(path), "modules.%s",
	               cycle->instances[i].module->name);
	cycle_module_error_path(err, path);
	ptl_cycle_exit_worker(cycle);
	return PTL_ERROR;
}

void
ptl_cycle_free(struct ptl_cycle *cycle, bool masters_inited)
{
	struct ptl_cycle *previous = ptl_cycle_current;

	if (cycle == NULL)
		return;
	if (masters_inited) {
		/* fini_master may still ask for the server info of its cycle.
		 */
		ptl_cycle_current = cycle;
		cycle_fini_masters(cycle);
		ptl_cycle_current = previous;
	}
	if (ptl_cycle_current == cycle)
		ptl_cycle_current = NULL;
	if (cycle->tls != NULL)
		ptl_tls_free(cycle->tls);
	free(cycle->helpers);
	json_decref(cycle->root);
	ptl_pool_destroy(cycle->pool);
}

void *
ptl_instance_conf(const struct ptl_instance *inst)
{
	return inst->conf;
}

const json_t *
ptl_instance_section(const struct ptl_instance *inst)
{
	return inst->section;
}

struct ptl_pool *
ptl_instance_pool(const struct ptl_instance *inst)
{
	return inst->cycle->pool;
}

const struct ptl_module *
ptl_instance_module(const struct ptl_instance *inst)
{
	return inst->module;
}

void
ptl_instance_set_data(struct ptl_instance *inst, void *data)
{
	inst->data = data;
}

void *
ptl_instance_data(const struct ptl_instance *inst)
{
	return inst->data;
}

const struct ptl_server_info *
ptl_server_info(void)
{
	/* Before any config is loaded (e.g. a module's own unit test). */
	static const struct ptl_server_info no_config = {
	    .hostname = "localhost",
	    .state_dir = "/",
	    .workers = 1,
	};

	if (ptl_cycle_current == NULL)
		return &no_config;
	return &ptl_cycle_current->info;
}

/* Shown in logs and process names: keep it short and printable. */
static bool
cycle_helper_name_valid(const char *name)
{
	size_t len = strlen(name), i;

	if (len == 0 || len > CYCLE_HELPER_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		      c == '.'))
			return false;
	}
	return true;
}

int
ptl_helper_add(struct ptl_instance *inst, const char *name,
               ptl_helper_start_fn start, void *arg, struct ptl_error *err)
{
	struct ptl_cycle *cycle = inst->cycle;
	struct ptl_helper_decl *grown, *decl;
	size_t i, cap;

	if (!cycle->in_init_master)
		return ptl_error_set(err, "ptl_helper_add() is only allowed "
		                          "in init_master");
	if (name == NULL || !cycle_helper_name_valid(name) || start == NULL)
		return ptl_error_set(err,
		                     "invalid helper \"%s\" (1..%d letters, "
		                     "digits, \"_\", \"-\", \".\" and a start "
		                     "function)",
		                     name ? name : "", CYCLE_HELPER_NAME_MAX);
	for (i = 0; i < cycle->nhelpers; i++) {
		if (strcmp(cycle->helpers[i].name, name) == 0)
			return ptl_error_set(err,
			                     "helper \"%s\" is already "
			                     "declared",
			                     name);
	}
	if (cycle->nhelpers == cycle->helpers_cap) {
		cap = cycle->helpers_cap ? cycle->helpers_cap * 2 : 4;
		grown = realloc(cycle->helpers, cap * sizeof(*grown));
		if (grown == NULL)
			return ptl_error_set(err, "out of memory");
		cycle->helpers = grown;
		cycle->helpers_cap = cap;
	}
	decl = &cycle->helpers[cycle->nhelpers];
	memset(decl, 0, sizeof(*decl));
	decl->name = ptl_pstrdup(cycle->pool, name);
	if (decl->name == NULL)
		return ptl_error_set(err, "out of memory");
	decl->start = start;
	decl->arg = arg;
	decl->inst = inst;
	cycle->nhelpers++;
	return PTL_OK;
}
