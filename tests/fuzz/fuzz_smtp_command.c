/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: SMTP command lines, HELO and BDAT arguments. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <petrel/core.h>

#include "smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_cmdline cl;
	const char *rest;
	size_t rest_len;
	uint64_t chunk;
	bool last;
	char *line = malloc(size + 1);

	if (line == NULL)
		return 0;
	memcpy(line, data, size);
	if (smtp_parse_command(line, size, &cl) == PTL_OK) {
		/* The pieces stay inside the line. */
		if (cl.verb != line || cl.verb_len == 0 || cl.args < line ||
		    cl.args + cl.args_len > line + size)
			abort();
		(void)smtp_parse_helo(cl.args, cl.args_len);
		(void)smtp_parse_bdat(cl.args, cl.args_len, &chunk, &last);
		if (smtp_parse_keyword(cl.args, cl.args_len, "FROM:", &rest,
		                       &rest_len) == PTL_OK &&
		    rest + rest_len != cl.args + cl.args_len)
			abort();
	}
	(void)smtp_utf8_valid(data, size);
	free(line);
	return 0;
}
