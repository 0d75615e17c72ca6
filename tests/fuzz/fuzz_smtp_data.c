/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the DATA scanner (end of data, unstuffing, checks). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <petrel/core.h>

#include "smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
	int rc;
	size_t consumed;
	unsigned flags;
	char *out;
	size_t out_len;
};

static void
scan(const uint8_t *in, size_t size, size_t step, bool dot, struct run *r)
{
	struct smtp_data_scan s;
	size_t off = 0, n, out_len, used;

	memset(&s, 0, sizeof(s));
	s.dot_mode = dot;
	s.check_lines = true;
	s.max_line = 1000;
	s.max_size = 4096;
	r->out = malloc(size + 2);
	r->out_len = 0;
	r->rc = PTL_AGAIN;
	if (r->out == NULL)
		abort();
	while (off < size) {
		n = size - off < step ? size - off : step;
		r->rc = smtp_data_scan(&s, (const char *)in + off, n,
		                       r->out + r->out_len, &out_len, &used);
		r->out_len += out_len;
		if (used > n || r->out_len > size)
			abort();
		off += used;
		if (r->rc == PTL_DONE)
			break;
	}
	r->consumed = off;
	r->flags = s.flags;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run a, b;
	size_t step;

	if (size < 1)
		return 0;
	step = (data[0] % 16) + 1;
	data++;
	size--;
	scan(data, size, size + 1, true, &a);
	/* The end of data is CR LF "." CR LF (or "." CR LF at the start),
	 * never anything else. */
	if (a.rc == PTL_DONE) {
		if (a.consumed < 3 ||
		    memcmp(data + a.consumed - 3, ".\r\n", 3) != 0)
			abort();
		if (a.consumed > 3 &&
		    (a.consumed < 5 ||
		     memcmp(data + a.consumed - 5, "\r\n", 2) != 0))
			abort();
	}
	/* However the input is split, the result is the same. */
	scan(data, size, step, true, &b);
	if (a.rc != b.rc || a.consumed != b.consumed || a.flags != b.flags ||
	    a.out_len != b.out_len || memcmp(a.out, b.out, a.out_len) != 0)
		abort();
	free(a.out);
	free(b.out);
	/* BDAT mode consumes everything. */
	scan(data, size, step, false, &b);
	if (b.rc != PTL_AGAIN || b.consumed != size)
		abort();
	free(b.out);
	return 0;
}
