/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: ESMTP parameters of MAIL and RCPT. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <petrel/pool.h>

#include "smtp_params.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_text(const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ptl_pool *pool = ptl_pool_create(0);
	struct smtp_mail_params m;
	struct smtp_rcpt_params r;

	if (pool == NULL)
		return 0;
	if (smtp_params_mail((const char *)data, size, pool, &m) ==
	    SMTP_PARAMS_OK) {
		check_text(m.envid);
		check_text(m.auth);
	}
	if (smtp_params_rcpt((const char *)data, size, pool, &r) ==
	    SMTP_PARAMS_OK) {
		check_text(r.orcpt);
		check_text(r.orcpt_type);
	}
	ptl_pool_destroy(pool);
	return 0;
}
