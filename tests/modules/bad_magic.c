/* SPDX-License-Identifier: MIT */
/* Test module: refused by the loader for a wrong magic number. */
#include <stddef.h>

#include <petrel/petrel.h>

/* The frozen fields are written by hand to break them on purpose. */
PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    .magic = 0x4e4f5045u, /* "NOPE" */
    .abi_major = PTL_ABI_MAJOR,
    .abi_minor = PTL_ABI_MINOR,
    .struct_size = (uint32_t)sizeof(struct ptl_module),
    .name = "bad_magic",
    .version = "0",
    .description = "refused by the loader for a wrong magic number",
    .license = "MIT",
};
