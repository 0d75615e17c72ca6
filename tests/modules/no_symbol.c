/* SPDX-License-Identifier: MIT */
/* Test module: a valid descriptor under the wrong symbol name. */
#include <petrel/petrel.h>

PTL_MODULE_EXPORT const struct ptl_module not_petrel_module = {
    PTL_MODULE_HEADER,
    .name = "no_symbol",
    .version = "0",
    .description = "refused by the loader: no petrel_module symbol",
    .license = "MIT",
};
