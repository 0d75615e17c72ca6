/* SPDX-License-Identifier: MIT */
/* The service registry and the check of the modules' needs/provides graph. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <petrel/petrel.h>

#include "core/cycle.h"

/* Longest "a" -> "b" -> ... chain shown for a dependency cycle. */
#define REGISTRY_CYCLE_TEXT_MAX 400

static const struct ptl_service_ref *
registry_declared(const struct ptl_module *mod, const char *name)
{
	const struct ptl_service_ref *ref;

	if (mod->provides == NULL)
		return NULL;
	for (ref = mod->provides; ref->name != NULL; ref++) {
		if (strcmp(ref->name, name) == 0)
			return ref;
	}
	return NULL;
}

/* The module the "services" section picks for @service, or NULL. */
static const char *
registry_choice(const struct ptl_cycle *cycle, const char *service)
{
	const json_t *choice;

	if (cycle->services_choice == NULL)
		return NULL;
	choice = json_object_get(cycle->services_choice, service);
	return json_is_string(choice) ? json_string_value(choice) : NULL;
}

/*
 * Every registration is declared in some `provides` and a name is
 * registered at most once, so the declarations bound the table. Sizing
 * it once means it never moves: ptl_service_find() hands out pointers
 * into it that modules keep.
 */
static int
registry_reserve(struct ptl_cycle *cycle, struct ptl_error *err)
{
	const struct ptl_service_ref *ref;
	size_t i, cap = 0;

	if (cycle->services != NULL)
		return PTL_OK;
	for (i = 0; i < cycle->ninstances; i++) {
		ref = cycle->instances[i].module->provides;
		for (; ref != NULL && ref->name != NULL; ref++)
			cap++;
	}
	if (cap == 0)
		cap = 1;
	cycle->services =
	    ptl_pcalloc(cycle->pool, cap * sizeof(*cycle->services));
	if (cycle->services == NULL)
		return ptl_error_set(err, "out of memory");
	cycle->services_cap = cap;
	cycle->nservices = 0;
	return PTL_OK;
}

int
ptl_service_register(struct ptl_instance *inst, const char *name,
                     unsigned version, const void *methods, void *instance,
                     struct ptl_error *err)
{
	struct ptl_cycle *cycle = inst->cycle;
	const struct ptl_module *mod = inst->module;
	const struct ptl_service_ref *ref;
	struct ptl_service_entry *entry;
	char path[PTL_ERROR_PATH_MAX];
	const char *choice;
	size_t i;

	(void)snprintf(path, sizeof(path), "modules.%s", mod->name);
	if (name == NULL || methods == NULL)
		return ptl_error_set_path(err, path,
		                          "service registered without a name "
		                          "or methods");
	ref = registry_declared(mod, name);
	if (ref == NULL)
		return ptl_error_set_path(err, path,
		                          "module \"%s\" registers service "
		                          "\"%s\", which its descriptor does "
		                          "not declare in provides",
		                          mod->name, name);
	if (version > ref->version)
		return ptl_error_set_path(err, path,
		                          "module \"%s\" registers service "
		                          "\"%s\" v%u but declares v%u in "
		                          "provides",
		                          mod->name, name, version,
		                          ref->version);
	/* Callers trust the version in the methods struct: keep it honest. */
	if (*(const unsigned *)methods < version)
		return ptl_error_set_path(err, path,
		                          "module \"%s\" registers service "
		                          "\"%s\" v%u with methods of v%u",
		                          mod->name, name, version,
		                          *(const unsigned *)methods);
	choice = registry_choice(cycle, name);
	if (choice != NULL && strcmp(choice, mod->name) != 0)
		return PTL_OK;

	for (i = 0; i < cycle->nservices; i++) {
		if (strcmp(cycle->services[i].svc.name, name) == 0)
			return ptl_error_set_path(
			    err, path,
			    "service \"%s\" is already registered by "
			    "\"%s\"",
			    name,
			    cycle->services[i].svc.provider->module->name);
	}
	if (registry_reserve(cycle, err) != PTL_OK)
		return PTL_ERROR;
	if (cycle->nservices == cycle->services_cap)
		return ptl_error_set_path(err, path, "service table full");

	entry = &cycle->services[cycle->nservices];
	entry->svc.name = ptl_pstrdup(cycle->pool, name);
	if (entry->svc.name == NULL)
		return ptl_error_set(err, "out of memory");
	entry->svc.version = version;
	entry->svc.methods = methods;
	entry->svc.instance = instance;
	entry->svc.provider = inst;
	entry->per_process = cycle->in_init_worker;
	cycle->nservices++;
	return PTL_OK;
}

const struct ptl_service *
ptl_service_find(const char *name, unsigned min_version)
{
	struct ptl_cycle *cycle = ptl_cycle_current;
	size_t i;

	if (cycle == NULL || name == NULL)
		return NULL;
	for (i = 0; i < cycle->nservices; i++) {
		if (strcmp(cycle->services[i].svc.name, name) == 0)
			return cycle->services[i].svc.version >= min_version
			           ? &cycle->services[i].svc
			           : NULL;
	}
	return NULL;
}

/* Index of the instance of module @name, or -1. */
static long
registry_instance_index(const struct ptl_cycle *cycle, const char *name)
{
	size_t i;

	for (i = 0; i < cycle->ninstances; i++) {
		if (strcmp(cycle->instances[i].module->name, name) == 0)
			return (long)i;
	}
	return -1;
}

/*
 * Index of the instance that provides @service in this cycle, or -1.
 * Valid once registry_check_choices() and registry_check_providers()
 * passed: then a choice names a provider and an unchosen service has at
 * most one.
 */
static long
registry_provider(const struct ptl_cycle *cycle, const char *service)
{
	const char *choice = registry_choice(cycle, service);
	size_t i;

	if (choice != NULL)
		return registry_instance_index(cycle, choice);
	for (i = 0; i < cycle->ninstances; i++) {
		if (registry_declared(cycle->instances[i].module, service))
			return (long)i;
	}
	return -1;
}

static int
registry_check_choices(const struct ptl_cycle *cycle, struct ptl_error *err)
{
	char path[PTL_ERROR_PATH_MAX];
	const char *service;
	const json_t *value;
	const char *name;
	void *it;
	long idx;

	if (cycle->services_choice == NULL)
		return PTL_OK;
	if (!json_is_object(cycle->services_choice))
		return ptl_error_set_path(err, "services",
		                          "expected an object mapping service "
		                          "names to module names");
	for (it = json_object_iter((json_t *)cycle->services_choice);
	     it != NULL;
	     it = json_object_iter_next((json_t *)cycle->services_choice, it)) {
		service = json_object_iter_key(it);
		value = json_object_iter_value(it);
		(void)snprintf(path, sizeof(path), "services.%s", service);
		if (!json_is_string(value))
			return ptl_error_set_path(err, path,
			                          "expected a module name");
		name = json_string_value(value);
		idx = registry_instance_index(cycle, name);
		if (idx < 0)
			return ptl_error_set_path(
			    err, path,
			    "module \"%s\" is not "
			    "configured under \"modules\"",
			    name);
		if (!registry_declared(cycle->instances[idx].module, service))
			return ptl_error_set_path(err, path,
			                          "module \"%s\" does not "
			                          "provide service \"%s\"",
			                          name, service);
	}
	return PTL_OK;
}

/*
 * Two providers of one service would both register it in init_master;
 * refuse that here so that `petrel -t` reports it, even when no module
 * needs the service.
 */
static int
registry_check_providers(const struct ptl_cycle *cycle, struct ptl_error *err)
{
	const struct ptl_service_ref *ref;
	const struct ptl_module *mod;
	char path[PTL_ERROR_PATH_MAX];
	size_t i, j;

	for (i = 0; i < cycle->ninstances; i++) {
		mod = cycle->instances[i].module;
		for (ref = mod->provides; ref && ref->name; ref++) {
			if (registry_choice(cycle, ref->name) != NULL)
				continue;
			for (j = i + 1; j < cycle->ninstances; j++) {
				if (!registry_declared(
				        cycle->instances[j].module, ref->name))
					continue;
				(void)snprintf(
				    path, sizeof(path), "modules.%s",
				    cycle->instances[j].module->name);
				return ptl_error_set_path(
				    err, path,
				    "service \"%s\" is provided by both "
				    "\"%s\" and \"%s\"; choose one in "
				    "\"services\"",
				    ref->name, mod->name,
				    cycle->instances[j].module->name);
			}
		}
	}
	return PTL_OK;
}

static int
registry_check_needs(const struct ptl_cycle *cycle, struct ptl_error *err)
{
	const struct ptl_service_ref *need, *prov;
	const struct ptl_module *mod, *pmod;
	char path[PTL_ERROR_PATH_MAX];
	size_t i;
	long p;

	for (i = 0; i < cycle->ninstances; i++) {
		mod = cycle->instances[i].module;
		(void)snprintf(path, sizeof(path), "modules.%s", mod->name);
		for (need = mod->needs; need && need->name; need++) {
			p = registry_provider(cycle, need->name);
			if (p < 0)
				return ptl_error_set_path(
				    err, path,
				    "module \"%s\" needs service \"%s\" "
				    "v%u, which no loaded module provides",
				    mod->name, need->name, need->version);
			pmod = cycle->instances[p].module;
			prov = registry_declared(pmod, need->name);
			if (prov->version < need->version)
				return ptl_error_set_path(
				    err, path,
				    "module \"%s\" needs service \"%s\" "
				    "v%u, but \"%s\" provides v%u",
				    mod->name, need->name, need->version,
				    pmod->name, prov->version);
		}
	}
	return PTL_OK;
}

/* An unplaced instance that @i needs before it, or -1 when none is left. */
static long
registry_unplaced_provider(const struct ptl_cycle *cycle, size_t i,
                           const bool *placed)
{
	const struct ptl_service_ref *need;
	long p;

	for (need = cycle->instances[i].module->needs; need && need->name;
	     need++) {
		p = registry_provider(cycle, need->name);
		/* A module may use a service it provides itself. */
		if (p >= 0 && (size_t)p != i && !placed[p])
			return p;
	}
	return -1;
}

/*
 * Called when no unplaced instance is ready: each one waits for another
 * unplaced one, so following "waits for" from any of them must loop.
 */
static int
registry_report_cycle(const struct ptl_cycle *cycle, const bool *placed,
                      size_t start, struct ptl_error *err)
{
	char text[REGISTRY_CYCLE_TEXT_MAX], path[PTL_ERROR_PATH_MAX];
	size_t n = cycle->ninstances, len = 0, k, first;
	long *seen_at, cur = (long)start;
	size_t *walk;

	seen_at = malloc(n * sizeof(*seen_at));
	walk = malloc(n * sizeof(*walk));
	if (seen_at == NULL || walk == NULL) {
		free(seen_at);
		free(walk);
		return ptl_error_set(err, "out of memory");
	}
	for (k = 0; k < n; k++)
		seen_at[k] = -1;
	while (cur >= 0 && seen_at[cur] < 0) {
		seen_at[cur] = (long)len;
		walk[len++] = (size_t)cur;
		cur = registry_unplaced_provider(cycle, (size_t)cur, placed);
	}
	first = cur >= 0 ? (size_t)seen_at[cur] : 0;
	text[0] = '\0';
	for (k = first; k < len; k++) {
		size_t used = strlen(text);

		(void)snprintf(text + used, sizeof(text) - used, "\"%s\" -> ",
		               cycle->instances[walk[k]].module->name);
	}
	(void)snprintf(text + strlen(text), sizeof(text) - strlen(text),
	               "\"%s\"", cycle->instances[walk[first]].module->name);
	(void)snprintf(path, sizeof(path), "modules.%s",
	               cycle->instances[walk[first]].module->name);
	free(seen_at);
	free(walk);
	return ptl_error_set_path(err, path,
	                          "dependency cycle between modules %s (each "
	                          "needs a service of the next)",
	                          text);
}

/*
 * Providers first, so their init_worker registers what the modules
 * needing them look up. Among ready instances the config order wins,
 * which keeps the order predictable for the admin.
 */
static int
registry_sort(struct ptl_cycle *cycle, struct ptl_error *err)
{
	size_t n = cycle->ninstances, done, i;
	struct ptl_instance *sorted;
	bool *placed;
	int rc = PTL_OK;

	if (n == 0)
		return PTL_OK;
	placed = calloc(n, sizeof(*placed));
	sorted = malloc(n * sizeof(*sorted));
	if (placed == NULL || sorted == NULL) {
		free(placed);
		free(sorted);
		return ptl_error_set(err, "out of memory");
	}
	for (done = 0; done < n; done++) {
		for (i = 0; i < n; i++) {
			if (!placed[i] &&
			    registry_unplaced_provider(cycle, i, placed) < 0)
				break;
		}
		if (i == n) {
			for (i = 0; placed[i]; i++)
				;
			rc = registry_report_cycle(cycle, placed, i, err);
			break;
		}
		placed[i] = true;
		sorted[done] = cycle->instances[i];
	}
	if (rc == PTL_OK)
		memcpy(cycle->instances, sorted, n * sizeof(*sorted));
	free(placed);
	free(sorted);
	return rc;
}

int
ptl_registry_check_graph(struct ptl_cycle *cycle, struct ptl_error *err)
{
	if (registry_check_choices(cycle, err) != PTL_OK ||
	    registry_check_providers(cycle, err) != PTL_OK ||
	    registry_check_needs(cycle, err) != PTL_OK)
		return PTL_ERROR;
	return registry_sort(cycle, err);
}
