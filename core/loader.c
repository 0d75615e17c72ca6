/* SPDX-License-Identifier: MIT */
/* The module loader: file safety checks, dlopen, ABI checks, the cache. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <petrel/petrel.h>

#include "core/cycle.h"

/* Longest module name (names become file names and JSON paths). */
#define LOADER_NAME_MAX 64

/*
 * Every module file ever loaded, by real path. Modules are never
 * dlclose'd while the master lives: instances of an old generation and
 * registered services may still point into them, and a reload must not
 * run a module's load-time code twice.
 */
static struct ptl_loaded_module *loaded_modules;
static size_t loaded_count, loaded_cap;

/*
 * Smallest descriptor a module built for ABI 1.@minor can have: the end of
 * the last field that minor defined. Every new minor adds a case.
 */
static size_t
loader_min_struct_size(unsigned minor)
{
	switch (minor) {
	case 0:
	case 1: /* 1.1 added API functions, no descriptor fields */
		return offsetof(struct ptl_module, reserved) +
		       sizeof(((struct ptl_module *)0)->reserved);
	default:
		return sizeof(struct ptl_module);
	}
}

int
ptl_module_check_abi(const struct ptl_module *mod, const char *path,
                     const char *expected_name, struct ptl_error *err)
{
	size_t need;

	if (mod->magic != PTL_MODULE_MAGIC)
		return ptl_error_set(err,
		                     "%s: bad magic 0x%08x, not a Petrel "
		                     "module",
		                     path, (unsigned)mod->magic);
	if (mod->abi_major != PTL_ABI_MAJOR)
		return ptl_error_set(
		    err, "%s: ABI major %u, this petrel needs %u", path,
		    (unsigned)mod->abi_major, (unsigned)PTL_ABI_MAJOR);
	if (mod->abi_minor > PTL_ABI_MINOR)
		return ptl_error_set(err,
		                     "%s: ABI minor %u is newer than this "
		                     "petrel's %u.%u",
		                     path, (unsigned)mod->abi_minor,
		                     (unsigned)PTL_ABI_MAJOR,
		                     (unsigned)PTL_ABI_MINOR);
	/* Only now is it safe to read past the frozen fields. */
	need = loader_min_struct_size(mod->abi_minor);
	if (mod->struct_size < need)
		return ptl_error_set(err,
		                     "%s: descriptor size %u too small for "
		                     "ABI %u.%u",
		                     path, (unsigned)mod->struct_size,
		                     (unsigned)PTL_ABI_MAJOR,
		                     (unsigned)mod->abi_minor);
	if (mod->name == NULL || strcmp(mod->name, expected_name) != 0)
		return ptl_error_set(err,
		                     "%s: module calls itself \"%s\", config "
		                     "names it \"%s\"",
		                     path, mod->name ? mod->name : "(null)",
		                     expected_name);
	return PTL_OK;
}

/*
 * Code loaded into the master runs as root: whoever can write the file,
 * or replace it through its directory, owns the server. Refuse what
 * anyone but root or the running user could have changed.
 */
static int
loader_check_owner(const char *path, const struct stat *st,
                   struct ptl_error *err)
{
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return ptl_error_set(err,
		                     "%s: writable by group or others, "
		                     "refusing to load",
		                     path);
	if (st->st_uid != 0 && st->st_uid != geteuid())
		return ptl_error_set(err,
		                     "%s: owned by uid %u, not root or the "
		                     "running user, refusing to load",
		                     path, (unsigned)st->st_uid);
	return PTL_OK;
}

static int
loader_check_dir_of(const char *file, struct ptl_error *err)
{
	char dir[PATH_MAX];
	struct stat st;
	char *slash;

	(void)snprintf(dir, sizeof(dir), "%s", file);
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	if (stat(dir, &st) != 0)
		return ptl_error_set_errno(
		    err, errno, "cannot open module directory %s", dir);
	return loader_check_owner(dir, &st, err);
}

/*
 * @real is the file's real path, @path the one configured: both
 * directories are checked, since a writable directory holding a symlink
 * lets anyone point it elsewhere.
 */
static int
loader_check_file(const char *path, const char *real, struct ptl_error *err)
{
	struct stat st;

	if (stat(real, &st) != 0)
		return ptl_error_set_errno(err, errno, "cannot open module %s",
		                           path);
	if (!S_ISREG(st.st_mode))
		return ptl_error_set(err,
		                     "%s: not a regular file, refusing "
		                     "to load",
		                     path);
	if (loader_check_owner(path, &st, err) != PTL_OK ||
	    loader_check_dir_of(real, err) != PTL_OK)
		return PTL_ERROR;
	if (strcmp(path, real) != 0)
		return loader_check_dir_of(path, err);
	return PTL_OK;
}

static struct ptl_loaded_module *
loader_find(const char *real)
{
	size_t i;

	for (i = 0; i < loaded_count; i++) {
		if (strcmp(loaded_modules[i].path, real) == 0)
			return &loaded_modules[i];
	}
	return NULL;
}

static int
loader_remember(const char *name, const char *real, void *handle,
                const struct ptl_module *mod, struct ptl_error *err)
{
	struct ptl_loaded_module *grown, *lm;
	size_t cap;

	if (loaded_count == loaded_cap) {
		cap = loaded_cap ? loaded_cap * 2 : 8;
		grown = realloc(loaded_modules, cap * sizeof(*grown));
		if (grown == NULL)
			return ptl_error_set(err, "out of memory");
		loaded_modules = grown;
		loaded_cap = cap;
	}
	lm = &loaded_modules[loaded_count];
	lm->name = strdup(name);
	lm->path = strdup(real);
	if (lm->name == NULL || lm->path == NULL) {
		free(lm->name);
		free(lm->path);
		return ptl_error_set(err, "out of memory");
	}
	lm->handle = handle;
	lm->module = mod;
	loaded_count++;
	return PTL_OK;
}

/* Module names become file names: no "/" or ".." may slip through. */
static int
loader_check_name(const char *name, struct ptl_error *err)
{
	size_t i, len = strlen(name);

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			break;
	}
	/* The name is not echoed: it may hold anything, even a newline. */
	if (len == 0 || len > LOADER_NAME_MAX || i < len)
		return ptl_error_set(err,
		                     "invalid module name (1..%d letters, "
		                     "digits, \"_\" and \"-\")",
		                     LOADER_NAME_MAX);
	return PTL_OK;
}

int
ptl_module_load(const char *name, const char *explicit_path,
                const char *module_dir, const struct ptl_module **mod_out,
                struct ptl_error *err)
{
	char path[PATH_MAX], real[PATH_MAX];
	const struct ptl_module *mod;
	struct ptl_loaded_module *lm;
	void *handle;
	int n;

	if (loader_check_name(name, err) != PTL_OK)
		return PTL_ERROR;
	if (explicit_path != NULL) {
		if (explicit_path[0] != '/')
			return ptl_error_set(err,
			                     "module path %s is not absolute",
			                     explicit_path);
		n = snprintf(path, sizeof(path), "%s", explicit_path);
	} else {
		if (module_dir == NULL || module_dir[0] != '/')
			return ptl_error_set(err,
			                     "module directory %s is not "
			                     "absolute",
			                     module_dir ? module_dir
			                                : "(none)");
		n = snprintf(path, sizeof(path), "%s/%s.so", module_dir, name);
	}
	if (n < 0 || (size_t)n >= sizeof(path))
		return ptl_error_set(err, "module path too long");
	if (realpath(path, real) == NULL)
		return ptl_error_set_errno(err, errno, "cannot open module %s",
		                           path);

	lm = loader_find(real);
	if (lm != NULL) {
		if (ptl_module_check_abi(lm->module, path, name, err) != PTL_OK)
			return PTL_ERROR;
		*mod_out = lm->module;
		return PTL_OK;
	}

	if (loader_check_file(path, real, err) != PTL_OK)
		return PTL_ERROR;
	/*
	 * RTLD_NOW: a missing symbol is an error now, not a crash in a
	 * worker later. RTLD_LOCAL: modules cannot bind to each other's
	 * symbols; they meet only through the service registry.
	 */
	handle = dlopen(real, RTLD_NOW | RTLD_LOCAL);
	if (handle == NULL) {
		const char *why = dlerror();

		return ptl_error_set(err, "cannot open module %s: %s", path,
		                     why ? why : "dlopen failed");
	}
	mod = dlsym(handle, PTL_MODULE_SYMBOL);
	if (mod == NULL) {
		(void)dlclose(handle);
		return ptl_error_set(err,
		                     "%s: no symbol %s (not a Petrel "
		                     "module)",
		                     path, PTL_MODULE_SYMBOL);
	}
	/* Refused modules never ran a callback, so closing them is safe. */
	if (ptl_module_check_abi(mod, path, name, err) != PTL_OK ||
	    loader_remember(name, real, handle, mod, err) != PTL_OK) {
		(void)dlclose(handle);
		return PTL_ERROR;
	}
	*mod_out = mod;
	return PTL_OK;
}
