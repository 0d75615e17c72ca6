/* SPDX-License-Identifier: MIT */
/* Test module: needs a service that no module provides. */
#include <petrel/petrel.h>

static const struct ptl_service_ref needs_missing_needs[] = {
    {"nonexistent_svc", 1},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER, .name = "needs_missing",
    .version = "0",    .description = "refused by the service graph check",
    .license = "MIT",  .needs = needs_missing_needs,
};
