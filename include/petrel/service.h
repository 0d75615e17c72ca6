/* SPDX-License-Identifier: MIT */
/* The service registry: how modules find each other without linking. */
#ifndef PETREL_SERVICE_H
#define PETREL_SERVICE_H

#include <petrel/core.h>
#include <petrel/module.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A registered service. `methods` points to a struct of function pointers
 * whose first field is `unsigned version` (the interface version): a
 * caller checks it before using a method added in a later version.
 */
struct ptl_service {
	const char *name;
	unsigned version;
	const void *methods;
	void *instance; /**< provider's state, passed back to its methods */
	struct ptl_instance *provider;
};

/**
 * Register service @p name at interface @p version for the calling
 * process. @p methods and @p instance must outlive the generation.
 * Call from init_master (inherited by every process) or init_worker
 * (this process only). The module must declare @p name in `provides`.
 * When config "services" names another provider for @p name, the call
 * succeeds and is ignored.
 * @return PTL_OK, or PTL_ERROR (undeclared, or already registered).
 */
PTL_API int ptl_service_register(struct ptl_instance *inst, const char *name,
                                 unsigned version, const void *methods,
                                 void *instance, struct ptl_error *err) PTL_WUR;

/**
 * Find service @p name with interface version >= @p min_version.
 * Call from init_worker or later (providers are initialized first).
 * @return the service (owned by the registry), or NULL.
 */
PTL_API const struct ptl_service *ptl_service_find(const char *name,
                                                   unsigned min_version);

#ifdef __cplusplus
}
#endif
#endif
