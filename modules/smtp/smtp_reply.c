/* SPDX-License-Identifier: MIT */
/* SMTP replies: enhanced status codes (RFC 2034/3463), multi-line EHLO. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "smtp.h"

/* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets with CRLF. */
#define REPLY_LINE_MAX 512

/*
 * Queue bytes. PTL_AGAIN means queued but the client is not reading:
 * stop taking commands until DRAINED, so that a client pipelining
 * without reading cannot make the worker buffer replies without end.
 */
void
smtp_reply_line(struct smtp_session *s, const char *text, size_t len)
{
	int rc;

	if (s->conn == NULL || s->phase == SMTP_PHASE_CLOSING)
		return;
	rc = ptl_conn_write(s->conn, text, len);
	if (rc == PTL_AGAIN) {
		s->blocked = true;
	} else if (rc != PTL_OK) {
		/* Out of memory or closing: end this connection only. */
		smtp_session_close(s, true);
	}
}

/*
 * Every reply carries an enhanced status code except those RFC 2034 and
 * RFC 5321 exempt: the greeting, the EHLO/HELO reply and the 354/334
 * intermediate replies (their classes have no enhanced codes). Callers
 * pass NULL for those.
 */
void
smtp_reply(struct smtp_session *s, unsigned code, const char *enhanced,
           const char *fmt, ...)
{
	char line[REPLY_LINE_MAX];
	va_list ap;
	int n, m;

	if (enhanced != NULL)
		n = snprintf(line, sizeof(line), "%03u %s ", code, enhanced);
	else
		n = snprintf(line, sizeof(line), "%03u ", code);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 2, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	if ((size_t)m >= sizeof(line) - (size_t)n - 2)
		m = (int)(sizeof(line) - (size_t)n - 3);
	n += m;
	/* A reply is one line: the text never comes from the client
	 * unescaped, but a stray control byte must not split it either. */
	for (m = 0; m < n; m++) {
		if ((unsigned char)line[m] < 0x20 || line[m] == 0x7f)
			line[m] = '?';
	}
	line[n++] = '\r';
	line[n++] = '\n';
	if (code >= 400)
		s->errors++;
	smtp_reply_line(s, line, (size_t)n);
}

void
smtp_reply_ehlo(struct smtp_session *s)
{
	const struct smtp_worker *w = s->w;
	char buf[1024];
	int n;

	n = snprintf(buf, sizeof(buf),
	             "250-%s\r\n"
	             "250-PIPELINING\r\n"
	             "250-SIZE %llu\r\n"
	             "250-8BITMIME\r\n"
	             "250-BINARYMIME\r\n"
	             "250-CHUNKING\r\n"
	             "250-SMTPUTF8\r\n"
	             "250-DSN\r\n"
	             "%s%s"
	             "250 ENHANCEDSTATUSCODES\r\n",
	             w->hostname, (unsigned long long)w->conf->max_message_size,
	             smtp_session_starttls_offered(s) ? "250-STARTTLS\r\n" : "",
	             smtp_session_auth_offered(s) ? "250-AUTH PLAIN LOGIN\r\n"
	                                          : "");
	if (n < 0 || (size_t)n >= sizeof(buf))
		return;
	smtp_reply_line(s, buf, (size_t)n);
}
