/* SPDX-License-Identifier: MIT */
/* Test module: needs "example_svc" v1 and logs which module provided it. */
#include <petrel/petrel.h>

static const struct ptl_service_ref consumer_needs[] = {
    {"example_svc", 1},
    {NULL, 0},
};

static int
consumer_init_worker(struct ptl_instance *inst, struct ptl_error *err)
{
	const struct ptl_service *svc = ptl_service_find("example_svc", 1);

	if (svc == NULL)
		return ptl_error_set(err, "service example_svc v1 not found");
	/* The integration tests grep this line to see the "services" choice. */
	ptl_log(PTL_LOG_INFO, "consumer found example_svc from %s",
	        ptl_instance_module(svc->provider)->name);
	return PTL_OK;
}

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "consumer",
    .version = "0",
    .description = "test consumer of example_svc",
    .license = "MIT",
    .needs = consumer_needs,
    .init_worker = consumer_init_worker,
};
