/* SPDX-License-Identifier: MIT */
/* The module ABI: the descriptor every Petrel module exports. */
#ifndef PETREL_MODULE_H
#define PETREL_MODULE_H

#include <jansson.h>
#include <petrel/core.h>
#include <petrel/config.h>
#include <petrel/pool.h>

#ifdef __cplusplus
extern "C" {
#endif

/** "PTRL": first field of every descriptor. */
#define PTL_MODULE_MAGIC 0x5054524cu
/**
 * ABI version. The core loads a module when the majors are equal, the
 * module's minor is <= the core's, and struct_size covers that minor.
 * Additive changes (new fields at the end, new API functions) bump the
 * minor; any change of layout or meaning bumps the major.
 */
#define PTL_ABI_MAJOR 1
#define PTL_ABI_MINOR 1

/** The one symbol the loader looks up in a module file. */
#define PTL_MODULE_SYMBOL "petrel_module"

/**
 * Put before the descriptor definition so that it stays visible when the
 * module is built with -fvisibility=hidden:
 * `PTL_MODULE_EXPORT const struct ptl_module petrel_module = {...};`
 */
#define PTL_MODULE_EXPORT __attribute__((visibility("default")))

/** A module instance: one module within one config generation. */
struct ptl_instance;

/** A service name and interface version, as provided or needed. */
struct ptl_service_ref {
	const char *name; /**< e.g. "storage" */
	unsigned version; /**< interface version provided / at least needed */
};

/** Check the parsed config (cross-field rules). Pure; master only. */
typedef int (*ptl_check_config_fn)(struct ptl_instance *inst,
                                   const json_t *section, void *conf,
                                   struct ptl_error *err);
/** Lifecycle callback that can fail. */
typedef int (*ptl_init_fn)(struct ptl_instance *inst, struct ptl_error *err);
/** Lifecycle callback that cannot fail. */
typedef void (*ptl_fini_fn)(struct ptl_instance *inst);

/**
 * The module descriptor, exported as `const struct ptl_module
 * petrel_module` and filled with PTL_MODULE_HEADER first. Every callback
 * may be NULL. Callbacks run on the main thread of the process named.
 */
struct ptl_module {
	/* Frozen fields: never move, filled by PTL_MODULE_HEADER. */
	uint32_t magic;
	uint16_t abi_major;
	uint16_t abi_minor;
	uint32_t struct_size;

	const char *name;        /**< equals the key under "modules" */
	const char *version;     /**< the module's own version */
	const char *description; /**< one line */
	const char *license;     /**< SPDX id */

	/** Services this module registers; ends with {NULL, 0}. May be NULL. */
	const struct ptl_service_ref *provides;
	/** Services this module needs; ends with {NULL, 0}. May be NULL. */
	const struct ptl_service_ref *needs;

	/** Keys of the module's config section (without "path"). */
	const struct ptl_conf_key *conf_keys;
	/** Size of the struct that conf_keys fill (0: no config struct). */
	size_t conf_size;

	/**
	 * After the section parsed: extra checks. Pure (run by `petrel -t`
	 * and before a reload is accepted). Master, as root.
	 */
	ptl_check_config_fn check_config;
	/**
	 * Config accepted: declare listeners (ptl_listener_add()), ask for
	 * helper processes (ptl_helper_add()), open privileged files,
	 * register services. Master, as root, once per generation.
	 */
	ptl_init_fn init_master;
	/**
	 * In each worker and helper process after privileges were dropped,
	 * providers before the modules that need them: open per-process
	 * resources, register per-process services, look up services.
	 * In foreground mode (-f) runs in the single process.
	 */
	ptl_init_fn init_worker;
	/** Process is ending (after connections drained). */
	ptl_fini_fn exit_worker;
	/**
	 * Master, after a new generation was accepted on SIGHUP: the module
	 * of the old generation may carry state over. Returning PTL_ERROR
	 * refuses the reload (the old generation stays).
	 */
	int (*reload)(struct ptl_instance *old_inst,
	              struct ptl_instance *new_inst, struct ptl_error *err);
	/** Master: the generation is being dropped. */
	ptl_fini_fn fini_master;

	void *reserved[8]; /**< for additive ABI growth; leave zero */
};

/** Fills the frozen fields of a struct ptl_module initializer. */
#define PTL_MODULE_HEADER                                                      \
	.magic = PTL_MODULE_MAGIC, .abi_major = PTL_ABI_MAJOR,                 \
	.abi_minor = PTL_ABI_MINOR,                                            \
	.struct_size = (uint32_t)sizeof(struct ptl_module)

/** The module's parsed config struct (conf_size bytes), or NULL. */
PTL_API void *ptl_instance_conf(const struct ptl_instance *inst);
/** The module's raw config section (borrowed). */
PTL_API const json_t *ptl_instance_section(const struct ptl_instance *inst);
/** Pool living as long as the config generation. */
PTL_API struct ptl_pool *ptl_instance_pool(const struct ptl_instance *inst);
/** The module's descriptor. */
PTL_API const struct ptl_module *
ptl_instance_module(const struct ptl_instance *inst);
/** Store module-private per-process state; the module owns it. */
PTL_API void ptl_instance_set_data(struct ptl_instance *inst, void *data);
/** Get what ptl_instance_set_data() stored, or NULL. */
PTL_API void *ptl_instance_data(const struct ptl_instance *inst);

/** Server-wide settings from the "server" section. */
struct ptl_server_info {
	const char *hostname;  /**< FQDN this server calls itself */
	const char *state_dir; /**< absolute path of the state directory */
	unsigned workers;      /**< number of worker processes */
	unsigned worker_index; /**< this worker's index (0 in master/helpers) */
};

/** Server-wide settings of the current generation. Any process. */
PTL_API const struct ptl_server_info *ptl_server_info(void);

/** The kind of the calling process. */
enum ptl_process_kind {
	PTL_PROCESS_MASTER = 1,
	PTL_PROCESS_WORKER,
	PTL_PROCESS_HELPER,
	PTL_PROCESS_SINGLE, /**< foreground mode: everything in one process */
};

/** Kind of the calling process. */
PTL_API enum ptl_process_kind ptl_process_kind(void);

/** Entry of a helper process, called after every init_worker. */
typedef int (*ptl_helper_start_fn)(struct ptl_instance *inst, void *arg,
                                   struct ptl_error *err);

/**
 * Ask the master to run a dedicated helper process named @p name (shown
 * in logs) for this module: it is forked, drops privileges, runs every
 * module's init_worker, then @p start and the event loop. It has no
 * listeners and is respawned when it dies. Call from init_master only.
 * In foreground mode @p start runs in the single process.
 * @return PTL_OK or PTL_ERROR.
 */
PTL_API int ptl_helper_add(struct ptl_instance *inst, const char *name,
                           ptl_helper_start_fn start, void *arg,
                           struct ptl_error *err) PTL_WUR;

#ifdef __cplusplus
}
#endif
#endif
