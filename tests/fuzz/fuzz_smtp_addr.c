/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: RFC 5321 paths. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <petrel/pool.h>

#include "smtp_addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ptl_pool *pool;
	struct smtp_addr a;
	size_t used, i;
	unsigned flags;

	if (size < 1)
		return 0;
	flags = data[0] & 7u;
	pool = ptl_pool_create(0);
	if (pool == NULL)
		return 0;
	if (smtp_addr_parse((const char *)data + 1, size - 1, flags, pool, &a,
	                    &used) == SMTP_ADDR_OK) {
		if (used > size - 1 || a.address == NULL)
			abort();
		/* What Petrel keeps never holds a control character. */
		for (i = 0; a.address[i] != '\0'; i++) {
			if ((unsigned char)a.address[i] < 0x20 ||
			    a.address[i] == 0x7f)
				abort();
		}
		if (!a.is_null && !a.is_postmaster &&
		    strlen(a.address) + 2 > SMTP_PATH_MAX)
			abort();
	}
	ptl_pool_destroy(pool);
	return 0;
}
