/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: SMTP server replies as the relay client reads them. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smtpc.h"

/*
 * Build and run (from the repository root), like tests/fuzz/build.sh:
 *   clang -g -O1 -std=c11 -D_GNU_SOURCE \
 *     -fsanitize=fuzzer,address,undefined -Iinclude -Imodules/queue \
 *     tests/fuzz/fuzz_smtpc_reply.c modules/queue/smtpc_reply.c \
 *     modules/queue/smtpc_data.c core/pool.c core/error.c \
 *     -o build-fuzz/fuzz_smtpc_reply
 *   build-fuzz/fuzz_smtpc_reply -max_total_time=60
 *
 * The input is cut into lines at LF, as ptl_conn_read_line() would
 * (lines longer than the connection's limit never reach the parser, but
 * the parser must survive them anyway); every complete reply starts a
 * new one, and EHLO keywords, xtext and the DATA encoder get the same
 * bytes (OpenSMTPD CVE-2020-8794, SECURITY.md #6).
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The streaming half of smtpc_data.c writes to connections; the harness
 * has none (only the encoder runs here). */
PTL_API int
ptl_conn_write(struct ptl_conn *c, const void *data, size_t len)
{
	return PTL_ERROR;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *lf, *text;
	struct smtpc_reply r;
	struct smtpc_caps caps = {0};
	struct smtpc_dot dot;
	static char out[2 * 4096 + 8];
	char xt[3 * 256 + 1];
	size_t len, text_len;
	int rc;

	smtpc_reply_reset(&r);
	while (p < end) {
		lf = memchr(p, '\n', (size_t)(end - p));
		len = lf != NULL ? (size_t)(lf - p) + 1 : (size_t)(end - p);
		rc = smtpc_reply_feed(&r, p, len, &text, &text_len);
		if (rc != PTL_ERROR && r.nlines > 1)
			smtpc_caps_line(&caps, text, text_len);
		if (rc != PTL_AGAIN) {
			if (strlen(r.text) != r.text_len)
				__builtin_trap();
			smtpc_reply_reset(&r);
		}
		p += len;
	}
	(void)smtpc_xtext(xt, sizeof(xt), (const char *)data,
	                  size < 256 ? size : 256);
	smtpc_dot_init(&dot);
	len = smtpc_dot_encode(&dot, (const char *)data,
	                       size < 4096 ? size : 4096, out);
	len += smtpc_dot_finish(&dot, out + len);
	for (size_t i = 0; i < len; i++) {
		if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r'))
			__builtin_trap();
		if (out[i] == '\r' && (i + 1 == len || out[i + 1] != '\n'))
			__builtin_trap();
	}
	return 0;
}
