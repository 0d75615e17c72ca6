/* SPDX-License-Identifier: MIT */
/* Message byte scanner: end of DATA, dot-unstuffing, line and size checks. */
#ifndef PETREL_SMTP_DATA_H
#define PETREL_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** What the scanner found wrong in a message (it keeps scanning). */
#define SMTP_DATA_BARE_CR   0x1u /* CR not followed by LF */
#define SMTP_DATA_BARE_LF   0x2u /* LF not preceded by CR */
#define SMTP_DATA_LONG_LINE 0x4u /* a line over max_line octets */
#define SMTP_DATA_TOO_BIG   0x8u /* more than max_size octets */

/** Scanner state; zero it, then set the mode and limits. */
struct smtp_data_scan {
	/** true: DATA (dot-stuffing, ends at CRLF.CRLF); false: BDAT
	 *  chunks (no dots, no end marker: the caller counts bytes). */
	bool dot_mode;
	/** false for BODY=BINARYMIME: line endings and lengths are not
	 *  checked (RFC 3030). */
	bool check_lines;
	uint64_t max_line; /* longest line, CRLF included; 0: no limit */
	uint64_t max_size; /* most message bytes kept; 0: no limit */

	/* Output so far (message bytes after unstuffing), counted even
	 * past max_size where nothing is written any more. */
	uint64_t size;
	unsigned flags; /* SMTP_DATA_* */

	/* Private. */
	int state;
	uint64_t line_len;
};

/**
 * Scan @p len input bytes. Message bytes go to @p out, which has room
 * for at least @p len + 2 bytes (a held-back "." and CR may come out
 * late); *@p out_len says how many were written. Bytes past max_size are
 * counted but not written.
 *
 * In dot mode the message ends only at CR LF "." CR LF, where the first
 * CR LF is the end of the DATA command or of a line: a lone LF or CR
 * never ends a line for this purpose, so no bare-LF or bare-CR variant
 * ends the message early (the SMTP smuggling attacks of 2023). The final
 * CR LF of the message is kept; the "." CR LF is not.
 *
 * @return PTL_DONE when the end of data was consumed (*@p consumed_out
 * bytes were used, the rest belongs to the next command), else PTL_AGAIN
 * (all @p len bytes consumed).
 */
int smtp_data_scan(struct smtp_data_scan *s, const char *in, size_t len,
                   char *out, size_t *out_len, size_t *consumed_out);

/**
 * BDAT: the last chunk ended. A message ending in a lone CR has a bare
 * CR (a lone final LF was flagged when seen).
 */
void smtp_data_finish(struct smtp_data_scan *s);

#endif
