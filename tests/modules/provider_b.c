/* SPDX-License-Identifier: MIT */
/* Test module: one of two providers of "example_svc" v1. */
#include <petrel/petrel.h>

/* Same layout as the example module's struct example_svc_methods. */
struct provider_b_methods {
	unsigned version;
	const char *(*greeting)(void *inst);
};

static const char *
provider_b_greeting(void *inst)
{
	return "hello from provider_b";
}

static const struct provider_b_methods provider_b_methods = {
    .version = 1,
    .greeting = provider_b_greeting,
};

static const struct ptl_service_ref provider_b_provides[] = {
    {"example_svc", 1},
    {NULL, 0},
};

static int
provider_b_init_master(struct ptl_instance *inst, struct ptl_error *err)
{
	return ptl_service_register(inst, "example_svc", 1, &provider_b_methods,
	                            inst, err);
}

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "provider_b",
    .version = "0",
    .description = "test provider of example_svc",
    .license = "MIT",
    .provides = provider_b_provides,
    .init_master = provider_b_init_master,
};
