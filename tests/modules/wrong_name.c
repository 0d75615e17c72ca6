/* SPDX-License-Identifier: MIT */
/* Test module: calls itself something else than its file name. */
#include <petrel/petrel.h>

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "other_name",
    .version = "0",
    .description = "refused by the loader: name differs from the config",
    .license = "MIT",
};
