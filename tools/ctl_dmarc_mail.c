/* SPDX-License-Identifier: MIT */
/* petrelctl dmarc: rua destinations, gzip and the report message. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <zlib.h>

#include "ctl_dmarc_mail.h"

/* ---- rua -------------------------------------------------------------- */

static int
rua_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "!" size: digits and an optional unit, powers of two (RFC 7489 6.2). */
static int
rua_size(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	unsigned shift = 0;
	size_t i;

	if (len > 0) {
		switch (s[len - 1] | 0x20) {
		case 'k':
			shift = 10;
			break;
		case 'm':
			shift = 20;
			break;
		case 'g':
			shift = 30;
			break;
		case 't':
			shift = 40;
			break;
		}
		if (shift != 0)
			len--;
	}
	if (len == 0 || len > 12)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v << shift;
	return 0;
}

/* The characters of a dot-atom local part (RFC 5322 3.2.3). */
static bool
rua_local_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 64 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') ||
		      strchr("!#$%&'*+/=?^_`{|}~.-", c) != NULL))
			return false;
		if (c == '.' && s[i + 1] == '.')
			return false;
	}
	return true;
}

/* One URI of @len bytes: a destination in @d, or -1 (not usable). */
static int
rua_uri(const char *s, size_t len, struct ctl_dmarc_dest *d)
{
	const char *bang, *q, *at;
	char addr[CTL_DMARC_VALUE_MAX + 1];
	size_t n = 0, i;
	int hi, lo;

	/* The module stores inner whitespace as '?'. */
	while (len > 0 && (*s == ' ' || *s == '\t' || *s == '?')) {
		s++;
		len--;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len < 7 || strncasecmp(s, "mailto:", 7) != 0)
		return -1;
	s += 7;
	len -= 7;
	memset(d, 0, sizeof(*d));
	bang = memchr(s, '!', len);
	if (bang != NULL) {
		if (rua_size(bang + 1, len - (size_t)(bang + 1 - s),
		             &d->max_size) != 0 ||
		    d->max_size == 0)
			return -1;
		len = (size_t)(bang - s);
	}
	/* Header fields of the URI (RFC 6068) are not ours to send. */
	q = memchr(s, '?', len);
	if (q != NULL)
		len = (size_t)(q - s);
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c == '%') {
			if (i + 2 >= len)
				return -1;
			hi = rua_hex(s[i + 1]);
			lo = rua_hex(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (c <= 0x20 || c >= 0x7f || n + 1 >= sizeof(addr))
			return -1;
		addr[n++] = c;
	}
	addr[n] = '\0';
	at = strrchr(addr, '@');
	if (at == NULL || !rua_local_ok(addr, (size_t)(at - addr)) ||
	    !ctl_dmarc_domain_ok(at + 1))
		return -1;
	memcpy(d->addr, addr, n + 1);
	memcpy(d->domain, at + 1, strlen(at + 1) + 1);
	for (i = 0; d->domain[i] != '\0'; i++)
		if (d->domain[i] >= 'A' && d->domain[i] <= 'Z')
			d->domain[i] = (char)(d->domain[i] - 'A' + 'a');
	return 0;
}

bool
ctl_dmarc_addr_ok(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL && strlen(addr) <= CTL_DMARC_VALUE_MAX &&
	       rua_local_ok(addr, (size_t)(at - addr)) &&
	       ctl_dmarc_domain_ok(at + 1);
}

size_t
ctl_dmarc_rua_parse(const char *rua, struct ctl_dmarc_dest *out, size_t max,
                    size_t *skipped_out)
{
	const char *p = rua, *comma;
	size_t n = 0, skipped = 0, len;

	for (;;) {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (n < max && rua_uri(p, len, &out[n]) == 0)
			n++;
		else
			skipped++;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	*skipped_out = skipped;
	return n;
}

/* ---- gzip and base64 -------------------------------------------------- */

int
ctl_dmarc_gzip(const void *data, size_t len, struct ctl_dmarc_buf *out)
{
	unsigned char chunk[16384];
	z_stream zs;
	int zrc;

	memset(&zs, 0, sizeof(zs));
	/* 16 + window bits: a gzip header and trailer (RFC 1952). */
	if (len > CTL_DMARC_BUF_MAX ||
	    deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
	                 Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	zs.next_in = (unsigned char *)(uintptr_t)data;
	zs.avail_in = (uInt)len;
	do {
		zs.next_out = chunk;
		zs.avail_out = sizeof(chunk);
		zrc = deflate(&zs, Z_FINISH);
		if (zrc == Z_STREAM_ERROR ||
		    ctl_dmarc_buf_add(out, chunk,
		                      sizeof(chunk) - zs.avail_out) != 0) {
			(void)deflateEnd(&zs);
			return -1;
		}
	} while (zrc != Z_STREAM_END);
	return deflateEnd(&zs) == Z_OK ? 0 : -1;
}

int
ctl_dmarc_base64(const void *data, size_t len, struct ctl_dmarc_buf *out)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                          "abcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = data;
	char line[78];
	size_t i = 0, n = 0;
	uint32_t v;

	while (i < len) {
		v = (uint32_t)s[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < len)
			v |= s[i + 2];
		line[n++] = abc[(v >> 18) & 63];
		line[n++] = abc[(v >> 12) & 63];
		line[n++] = i + 1 < len ? abc[(v >> 6) & 63] : '=';
		line[n++] = i + 2 < len ? abc[v & 63] : '=';
		i += 3;
		if (n == 76 || i >= len) {
			line[n++] = '\r';
			line[n++] = '\n';
			if (ctl_dmarc_buf_add(out, line, n) != 0)
				return -1;
			n = 0;
		}
	}
	return 0;
}

/* ---- the message ------------------------------------------------------ */

/* @t as an RFC 5322 date (@header) or as "YYYY-MM-DD HH:MM:SS". */
static void
msg_time(int64_t t, bool header, char *out, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	size_t n = 0;

	if (gmtime_r(&tt, &tm) != NULL)
		n = header ? strftime(out, size, "%a, %d %b %Y %H:%M:%S +0000",
		                      &tm)
		           : strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm);
	if (n == 0)
		(void)snprintf(out, size, "?");
}

int
ctl_dmarc_message(const struct ctl_dmarc_msg *m, const void *gz, size_t gzlen,
                  struct ctl_dmarc_buf *out)
{
	char date[64], begin[32], end[32], subject[700];
	int n;

	/* English names whatever the locale: petrelctl never sets one. */
	msg_time(m->date, true, date, sizeof(date));
	msg_time(m->begin, false, begin, sizeof(begin));
	msg_time(m->end, false, end, sizeof(end));
	/* RFC 7489 7.2.1.1: dmarc-subject, folded where it is long. */
	n = snprintf(subject, sizeof(subject),
	             "Report Domain: %s Submitter: %s Report-ID: <%s@%s>",
	             m->policy_domain, m->submitter, m->report_id,
	             m->msg_id_domain);
	if (n < 0 || (size_t)n >= sizeof(subject))
		return -1;
	if (n + sizeof("Subject: ") - 1 > 78)
		(void)snprintf(subject, sizeof(subject),
		               "Report Domain: %s\r\n Submitter: %s\r\n"
		               " Report-ID: <%s@%s>",
		               m->policy_domain, m->submitter, m->report_id,
		               m->msg_id_domain);
	(void)ctl_dmarc_buf_str(out, "From: ");
	(void)ctl_dmarc_buf_str(out, m->from);
	(void)ctl_dmarc_buf_str(out, "\r\nTo: ");
	(void)ctl_dmarc_buf_str(out, m->to);
	(void)ctl_dmarc_buf_str(out, "\r\nSubject: ");
	(void)ctl_dmarc_buf_str(out, subject);
	(void)ctl_dmarc_buf_printf(out, "\r\nDate: %s\r\n", date);
	(void)ctl_dmarc_buf_printf(out, "Message-ID: <%s.%u@", m->report_id,
	                           m->serial);
	(void)ctl_dmarc_buf_str(out, m->msg_id_domain);
	(void)ctl_dmarc_buf_printf(out,
	                           ">\r\nMIME-Version: 1.0\r\n"
	                           "Content-Type: multipart/mixed;\r\n"
	                           " boundary=\"%s\"\r\n"
	                           "\r\n"
	                           "This is a DMARC aggregate report in MIME "
	                           "format.\r\n"
	                           "\r\n--%s\r\n"
	                           "Content-Type: text/plain; "
	                           "charset=us-ascii\r\n"
	                           "Content-Transfer-Encoding: 7bit\r\n"
	                           "\r\n",
	                           m->boundary, m->boundary);
	(void)ctl_dmarc_buf_str(out, "This is a DMARC aggregate report (RFC "
	                             "7489) for ");
	(void)ctl_dmarc_buf_str(out, m->policy_domain);
	(void)ctl_dmarc_buf_printf(out,
	                           ",\r\ncovering %s to %s UTC.\r\n"
	                           "The report is attached, compressed with "
	                           "gzip.\r\n"
	                           "\r\n--%s\r\n"
	                           "Content-Type: application/gzip;\r\n"
	                           " name=\"",
	                           begin, end, m->boundary);
	(void)ctl_dmarc_buf_str(out, m->file_name);
	(void)ctl_dmarc_buf_str(out,
	                        "\"\r\nContent-Transfer-Encoding: base64\r\n"
	                        "Content-Disposition: attachment;\r\n"
	                        " filename=\"");
	(void)ctl_dmarc_buf_str(out, m->file_name);
	(void)ctl_dmarc_buf_str(out, "\"\r\n\r\n");
	(void)ctl_dmarc_base64(gz, gzlen, out);
	(void)ctl_dmarc_buf_printf(out, "\r\n--%s--\r\n", m->boundary);
	return out->failed ? -1 : 0;
}

int
ctl_dmarc_dot_stuff(const char *msg, size_t len, struct ctl_dmarc_buf *out)
{
	size_t i, start = 0;

	for (i = 0; i <= len; i++) {
		if (i < len && msg[i] != '\n')
			continue;
		if (i > start && msg[start] == '.' &&
		    ctl_dmarc_buf_add(out, ".", 1) != 0)
			return -1;
		if (i == len) {
			if (i > start &&
			    (ctl_dmarc_buf_add(out, msg + start, i - start) !=
			         0 ||
			     ctl_dmarc_buf_add(out, "\r\n", 2) != 0))
				return -1;
			break;
		}
		if (ctl_dmarc_buf_add(out, msg + start, i + 1 - start) != 0)
			return -1;
		start = i + 1;
	}
	return ctl_dmarc_buf_add(out, ".\r\n", 3);
}
