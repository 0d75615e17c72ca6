/* SPDX-License-Identifier: MIT */
/* Test module: refused for a descriptor smaller than its ABI minor. */
#include <stddef.h>

#include <petrel/petrel.h>

/* The frozen fields are written by hand to break them on purpose. */
PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    .magic = PTL_MODULE_MAGIC,
    .abi_major = PTL_ABI_MAJOR,
    .abi_minor = PTL_ABI_MINOR,
    /* Claims to end before the reserved slots of ABI 1.0. */
    .struct_size = (uint32_t)offsetof(struct ptl_module, reserved),
    .name = "small_struct",
    .version = "0",
    .description = "refused for a descriptor smaller than its ABI minor",
    .license = "MIT",
};
