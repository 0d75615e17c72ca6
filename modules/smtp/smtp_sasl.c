/* SPDX-License-Identifier: MIT */
/* SASL LOGIN for AUTH (base64 and PLAIN are in the core: petrel/sasl.h). */
#include <string.h>

#include <petrel/core.h>
#include <petrel/sasl.h>

#include "smtp_sasl.h"

int
smtp_sasl_login_user(unsigned char *msg, size_t len)
{
	if (!ptl_sasl_name_ok((const char *)msg, len, SMTP_SASL_USER_MAX))
		return PTL_ERROR;
	msg[len] = '\0';
	return PTL_OK;
}

int
smtp_sasl_login_pass(const unsigned char *msg, size_t len)
{
	if (len == 0 || len > SMTP_SASL_PASS_MAX ||
	    memchr(msg, '\0', len) != NULL)
		return PTL_ERROR;
	return PTL_OK;
}
