/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: RFC 2047 encoded-words of header fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "regex_2047.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input: one byte choosing a small output capacity, then the field body.
 * The header promises that 2 * len + 1 bytes are always enough and that
 * a smaller buffer gets a cut version of the same output.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in;
	char *full, *cut, *big;
	size_t len, cap, n_full, n_cut, n_big;

	if (size < 1)
		return 0;
	cap = data[0];
	in = (const char *)data + 1;
	len = size - 1;

	full = malloc(2 * len + 1);
	cut = malloc(cap > 0 ? cap : 1);
	big = malloc(4 * len + 64);
	if (full == NULL || cut == NULL || big == NULL)
		abort();

	n_full = regex_2047_decode(in, len, full, 2 * len + 1);
	if (n_full > 2 * len || full[n_full] != '\0')
		abort();
	/* More room changes nothing: 2 * len + 1 was enough. */
	n_big = regex_2047_decode(in, len, big, 4 * len + 64);
	if (n_big != n_full || memcmp(big, full, n_full) != 0)
		abort();
	/* Less room cuts the same output. */
	n_cut = regex_2047_decode(in, len, cut, cap);
	if (cap == 0) {
		if (n_cut != 0)
			abort();
	} else if (n_cut != (n_full < cap - 1 ? n_full : cap - 1) ||
	           memcmp(cut, full, n_cut) != 0 || cut[n_cut] != '\0') {
		abort();
	}
	free(full);
	free(cut);
	free(big);
	return 0;
}
