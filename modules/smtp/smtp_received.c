/* SPDX-License-Identifier: MIT */
/* The Received: trace field (RFC 5321 4.4) with TLS details (RFC 8314). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "smtp_received.h"

const char *
smtp_received_protocol(bool esmtp, bool tls, bool auth, bool utf8)
{
	static const char *const names[2][4] = {
	    {"ESMTP", "ESMTPA", "ESMTPS", "ESMTPSA"},
	    {"UTF8SMTP", "UTF8SMTPA", "UTF8SMTPS", "UTF8SMTPSA"},
	};

	if (!esmtp)
		return "SMTP";
	return names[utf8 ? 1 : 0][(tls ? 2 : 0) + (auth ? 1 : 0)];
}

static bool
received_safe(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr(".-_:[]@+=", c) != NULL);
}

size_t
smtp_header_escape(char *out, size_t cap, const char *in, size_t len,
                   bool keep_utf8)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, n = 0;

	if (cap == 0)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (received_safe(c) || (keep_utf8 && c >= 0x80)) {
			if (n + 1 >= cap)
				break;
			out[n++] = (char)c;
			continue;
		}
		if (n + 3 >= cap)
			break;
		out[n++] = '%';
		out[n++] = hex[c >> 4];
		out[n++] = hex[c & 0xf];
	}
	out[n] = '\0';
	return n;
}

void
smtp_rfc5322_date(int64_t when, char *out, size_t cap)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
	                                   "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
	                                     "May", "Jun", "Jul", "Aug",
	                                     "Sep", "Oct", "Nov", "Dec"};
	time_t t = (time_t)when;
	struct tm tm;
	long off;

	/* Names written by hand: strftime's %a and %b follow the locale. */
	if (localtime_r(&t, &tm) == NULL) {
		(void)snprintf(out, cap, "Thu, 01 Jan 1970 00:00:00 +0000");
		return;
	}
	off = tm.tm_gmtoff / 60;
	(void)snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld",
	               days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	               tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
	               off < 0 ? '-' : '+', (off < 0 ? -off : off) / 60,
	               (off < 0 ? -off : off) % 60);
}

size_t
smtp_received_format(const struct smtp_received_info *ri, char *out, size_t cap)
{
	char helo[SMTP_RECEIVED_MAX / 4], rcpt[SMTP_RECEIVED_MAX / 4];
	char date[64], tls[256];
	int n;

	if (ri->helo != NULL)
		smtp_header_escape(helo, sizeof(helo), ri->helo,
		                   strlen(ri->helo), false);
	else
		(void)snprintf(helo, sizeof(helo), "unknown");
	tls[0] = '\0';
	if (ri->tls_version != NULL && ri->tls_cipher != NULL)
		(void)snprintf(tls, sizeof(tls),
		               "\r\n\t(using %s with cipher %s)",
		               ri->tls_version, ri->tls_cipher);
	rcpt[0] = '\0';
	if (ri->rcpt != NULL)
		smtp_header_escape(rcpt, sizeof(rcpt), ri->rcpt,
		                   strlen(ri->rcpt), ri->rcpt_utf8);
	smtp_rfc5322_date(ri->when, date, sizeof(date));
	n = snprintf(out, cap,
	             "Received: from %s ([%s])\r\n"
	             "\tby %s (Petrel) with %s id %s%s%s%s%s; %s\r\n",
	             helo, ri->peer_ip, ri->hostname, ri->protocol, ri->id, tls,
	             ri->rcpt != NULL ? "\r\n\tfor <" : "", rcpt,
	             ri->rcpt != NULL ? ">" : "", date);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	return (size_t)n;
}
