/* SPDX-License-Identifier: MIT */
/* Internal: a config generation (cycle) with its module instances. */
#ifndef PETREL_CORE_CYCLE_H
#define PETREL_CORE_CYCLE_H

#include <stdbool.h>
#include <jansson.h>
#include <petrel/petrel.h>

struct ptl_tls;
struct ptl_listener;

/* A module file loaded once and never dlclose'd during the master's life. */
struct ptl_loaded_module {
	char *name;
	char *path;
	void *handle;
	const struct ptl_module *module;
};

struct ptl_instance {
	const struct ptl_module *module;
	struct ptl_cycle *cycle;
	const json_t *section; /* borrowed from cycle->root */
	void *conf;            /* conf_size bytes from cycle->pool */
	void *data;            /* module-private, per process */
	bool master_inited;    /* init_master returned PTL_OK */
	bool worker_inited;    /* init_worker returned PTL_OK (this process) */
};

/* The "server.log" section. */
struct ptl_log_conf {
	int level;         /* enum ptl_log_level */
	int target;        /* enum ptl_log_target (log_internal.h) */
	const char *file;  /* for target "file" */
	bool json;         /* JSON lines */
	const char *ident; /* syslog ident */
};

/* The "server" section. */
struct ptl_server_conf {
	const char *hostname;
	const char *user;
	const char *group;
	const char *workers; /* "auto" or a number, resolved to nworkers */
	unsigned nworkers;
	const json_t *workers_value; /* the raw "workers" value (key table) */
	const char *module_dir;      /* "server.module_dir" as written */
	const char *state_dir;
	const char *pid_file;
	int64_t shutdown_timeout_ms;
	int64_t threads; /* thread pool size per process */
	const char *chroot;
	struct ptl_log_conf log;
};

/* One certificate of the "tls" section. */
struct ptl_tls_cert_conf {
	const char *cert;
	const char *key;
	struct ptl_conf_list names; /* const char *: SNI names (optional) */
};

/* The "tls" section. */
struct ptl_tls_conf {
	struct ptl_conf_list certificates; /* struct ptl_tls_cert_conf */
	int min_version;                   /* 0: TLSv1.2, 1: TLSv1.3 */
	const char *ciphers;               /* TLS <= 1.2 cipher list */
	const char *ciphersuites;          /* TLS 1.3 suites */
	const char *ca_file;               /* default CA file for clients */
};

struct ptl_helper_decl {
	char *name;
	ptl_helper_start_fn start;
	void *arg;
	struct ptl_instance *inst;
	pid_t pid;          /* master bookkeeping */
	int64_t restart_at; /* backoff */
	unsigned failures;
};

struct ptl_service_entry {
	struct ptl_service svc;
	bool per_process; /* registered in init_worker */
};

struct ptl_cycle {
	struct ptl_pool *pool;
	json_t *root;    /* owned */
	char *conf_path; /* owned (pool) */
	const char *module_dir;
	unsigned generation;

	struct ptl_server_conf server;
	struct ptl_tls_conf tls_conf;
	struct ptl_tls *tls; /* NULL when no certificates configured */
	const json_t *services_choice; /* "services": {"storage": "maildir"} */

	/* In dependency order: providers before the modules needing them. */
	struct ptl_instance *instances;
	size_t ninstances;

	struct ptl_listener **listeners;
	size_t nlisteners, listeners_cap;

	struct ptl_helper_decl *helpers;
	size_t nhelpers, helpers_cap;

	struct ptl_service_entry *services;
	size_t nservices, services_cap;

	struct ptl_server_info info;

	/* The lifecycle step running now (helpers, per-process services). */
	bool in_init_master;
	bool in_init_worker;
};

/* The generation the calling process serves (master: the newest one). */
extern struct ptl_cycle *ptl_cycle_current;

/*
 * Read and check @path: JSON syntax (file:line:column), the core sections,
 * load each module under "modules" (from module_dir or its "path"), parse
 * and check each section, resolve needs/provides and order instances.
 * @module_dir (-M) may be NULL: then server.module_dir, else
 * PETREL_MODULE_DIR. Successful loads are numbered 1, 2, ... in
 * cycle->generation (the master may renumber). No side effects besides
 * dlopen. Caller owns *cycle_out; on error *cycle_out is NULL and @err
 * is ready for ptl_cycle_format_error().
 */
int ptl_cycle_load(const char *path, const char *module_dir,
                   struct ptl_cycle **cycle_out, struct ptl_error *err);

/*
 * Master: build TLS contexts, then init_master of each instance in order
 * with ptl_cycle_current = @cycle. On success @cycle stays current (the
 * master serves the newest accepted generation); on failure the instances
 * already initialized get fini_master and the previous current returns.
 */
int ptl_cycle_init_master(struct ptl_cycle *cycle, struct ptl_error *err);

/*
 * In a worker/helper/single process: sets ptl_cycle_current = @cycle, then
 * init_worker of each instance in order. On failure the instances already
 * initialized get exit_worker.
 */
int ptl_cycle_init_worker(struct ptl_cycle *cycle, struct ptl_error *err);

/* exit_worker of each instance, in reverse order. */
void ptl_cycle_exit_worker(struct ptl_cycle *cycle);

/*
 * With @masters_inited: fini_master of each instance whose init_master
 * succeeded, in reverse order. Then free TLS, the JSON and the pool.
 * A process that only inherited @cycle passes false.
 */
void ptl_cycle_free(struct ptl_cycle *cycle, bool masters_inited);

/* Module loading (loader.c). Returns the loaded module, cached by path. */
int ptl_module_load(const char *name, const char *explicit_path,
                    const char *module_dir, const struct ptl_module **mod_out,
                    struct ptl_error *err);

/* Check a descriptor against this core's ABI (pure, unit-testable). */
int ptl_module_check_abi(const struct ptl_module *mod, const char *path,
                         const char *expected_name, struct ptl_error *err);

/* Service registry (registry.c). */
int ptl_registry_check_graph(struct ptl_cycle *cycle, struct ptl_error *err);

/*
 * Format @err from loading @conf_path as one line for the admin:
 * "FILE: PATH: TEXT", or "FILE: TEXT" without a path, or just TEXT when it
 * already starts with "FILE:" (syntax errors: "FILE:LINE:COLUMN: syntax
 * error: ..."). main.c prints "petrel: " before it.
 */
void ptl_cycle_format_error(const char *conf_path, const struct ptl_error *err,
                            char *out, size_t outsz);

/* Set the worker index reported by ptl_server_info() in this process. */
void ptl_cycle_set_worker_index(unsigned index);

/*
 * After ptl_conf_parse() of "server" (conf_server.c): resolve "workers",
 * map log level names to enum ptl_log_level, default hostname and pid_file,
 * make state_dir and pid_file absolute, apply the root rule for "user".
 * Strings are allocated from @pool. err->path names the key at fault.
 */
int ptl_server_conf_resolve(struct ptl_server_conf *conf, struct ptl_pool *pool,
                            struct ptl_error *err);

/* The key table of the top-level "server" and "tls" sections (for docs). */
extern const struct ptl_conf_key ptl_server_conf_keys[];
extern const struct ptl_conf_key ptl_tls_conf_keys[];

#endif
