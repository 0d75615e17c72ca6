/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: strict base64 and SASL PLAIN/LOGIN messages. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <petrel/core.h>

#include "smtp_sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *out = malloc(SMTP_SASL_DECODED_MAX + 1);
	unsigned char *copy = malloc(size + 1);
	struct smtp_sasl_creds c;
	size_t n;

	if (out == NULL || copy == NULL)
		abort();
	if (smtp_base64_decode((const char *)data, size, out,
	                       SMTP_SASL_DECODED_MAX, &n) == PTL_OK) {
		if (n > SMTP_SASL_DECODED_MAX || n > size)
			abort();
		if (smtp_sasl_plain(out, n, &c) == PTL_OK &&
		    (c.pass < (const char *)out ||
		     c.pass + c.pass_len > (const char *)out + n ||
		     strlen(c.user) == 0))
			abort();
	}
	memcpy(copy, data, size);
	(void)smtp_sasl_plain(copy, size, &c);
	memcpy(copy, data, size);
	(void)smtp_sasl_login_user(copy, size);
	(void)smtp_sasl_login_pass(data, size);
	free(out);
	free(copy);
	return 0;
}
