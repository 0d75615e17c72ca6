/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: strict base64 and SASL PLAIN/LOGIN messages. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <petrel/core.h>
#include <petrel/sasl.h>

#include "smtp_sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *out = malloc(SMTP_SASL_DECODED_MAX + 1);
	unsigned char *copy = malloc(size + 1);
	struct ptl_sasl_plain c;
	size_t n;

	if (out == NULL || copy == NULL)
		abort();
	if (ptl_base64_decode((const char *)data, size, out,
	                      SMTP_SASL_DECODED_MAX, &n) == PTL_OK) {
		if (n > SMTP_SASL_DECODED_MAX || n > size)
			abort();
		if (ptl_sasl_plain_split(out, n, SMTP_SASL_USER_MAX,
		                         SMTP_SASL_PASS_MAX, &c) == PTL_OK &&
		    (c.pass < (const char *)out ||
		     c.pass + c.pass_len > (const char *)out + n ||
		     strlen(c.user) != c.user_len || c.user_len == 0))
			abort();
	}
	(void)ptl_sasl_plain_split(data, size, SMTP_SASL_USER_MAX,
	                           SMTP_SASL_PASS_MAX, &c);
	memcpy(copy, data, size);
	(void)smtp_sasl_login_user(copy, size);
	(void)smtp_sasl_login_pass(data, size);
	free(out);
	free(copy);
	return 0;
}
