/* SPDX-License-Identifier: MIT */
/* Test module: refused for an ABI minor newer than the core's. */
#include <stddef.h>

#include <petrel/petrel.h>

/* The frozen fields are written by hand to break them on purpose. */
PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    .magic = PTL_MODULE_MAGIC,
    .abi_major = PTL_ABI_MAJOR,
    .abi_minor = PTL_ABI_MINOR + 1,
    .struct_size = (uint32_t)sizeof(struct ptl_module),
    .name = "minor_too_new",
    .version = "0",
    .description = "refused for an ABI minor newer than the core's",
    .license = "MIT",
};
