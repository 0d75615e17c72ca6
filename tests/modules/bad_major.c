/* SPDX-License-Identifier: MIT */
/* Test module: refused by the loader for another ABI major. */
#include <stddef.h>

#include <petrel/petrel.h>

/* The frozen fields are written by hand to break them on purpose. */
PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    .magic = PTL_MODULE_MAGIC,
    .abi_major = PTL_ABI_MAJOR + 1,
    .abi_minor = 0,
    .struct_size = (uint32_t)sizeof(struct ptl_module),
    .name = "bad_major",
    .version = "0",
    .description = "refused by the loader for another ABI major",
    .license = "MIT",
};
