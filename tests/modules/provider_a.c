/* SPDX-License-Identifier: MIT */
/* Test module: one of two providers of "example_svc" v1. */
#include <petrel/petrel.h>

/* Same layout as the example module's struct example_svc_methods. */
struct provider_a_methods {
	unsigned version;
	const char *(*greeting)(void *inst);
};

static const char *
provider_a_greeting(void *inst)
{
	return "hello from provider_a";
}

static const struct provider_a_methods provider_a_methods = {
    .version = 1,
    .greeting = provider_a_greeting,
};

static const struct ptl_service_ref provider_a_provides[] = {
    {"example_svc", 1},
    {NULL, 0},
};

static int
provider_a_init_master(struct ptl_instance *inst, struct ptl_error *err)
{
	return ptl_service_register(inst, "example_svc", 1, &provider_a_methods,
	                            inst, err);
}

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "provider_a",
    .version = "0",
    .description = "test provider of example_svc",
    .license = "MIT",
    .provides = provider_a_provides,
    .init_master = provider_a_init_master,
};
