/* SPDX-License-Identifier: MIT */
/* petrelctl dmarc: a bounded growing buffer, XML escaping, name checks. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_dmarc_agg.h"

void
ctl_dmarc_buf_init(struct ctl_dmarc_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void
ctl_dmarc_buf_free(struct ctl_dmarc_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

int
ctl_dmarc_buf_add(struct ctl_dmarc_buf *b, const void *s, size_t len)
{
	size_t cap;
	char *data;

	if (b->failed)
		return -1;
	if (len > CTL_DMARC_BUF_MAX - b->len - 1) {
		b->failed = true;
		return -1;
	}
	if (b->len + len + 1 > b->cap) {
		cap = b->cap != 0 ? b->cap : 256;
		while (cap < b->len + len + 1)
			cap *= 2;
		data = realloc(b->data, cap);
		if (data == NULL) {
			b->failed = true;
			return -1;
		}
		b->data = data;
		b->cap = cap;
	}
	if (len > 0)
		memcpy(b->data + b->len, s, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int
ctl_dmarc_buf_str(struct ctl_dmarc_buf *b, const char *s)
{
	return ctl_dmarc_buf_add(b, s, strlen(s));
}

int
ctl_dmarc_buf_printf(struct ctl_dmarc_buf *b, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	/* Only short fixed texts and numbers go through here. */
	if (n < 0 || (size_t)n >= sizeof(small)) {
		b->failed = true;
		return -1;
	}
	return ctl_dmarc_buf_add(b, small, (size_t)n);
}

int
ctl_dmarc_xml_escape(struct ctl_dmarc_buf *b, const char *s)
{
	size_t start = 0, i;
	const char *ent;

	for (i = 0;; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0')
			break;
		switch (c) {
		case '&':
			ent = "&amp;";
			break;
		case '<':
			ent = "&lt;";
			break;
		case '>':
			ent = "&gt;";
			break;
		case '"':
			ent = "&quot;";
			break;
		case '\'':
			ent = "&apos;";
			break;
		default:
			/* XML 1.0 forbids most C0 controls; non-ASCII
			 * could be invalid UTF-8. */
			ent = c < 0x20 || c > 0x7e ? "?" : NULL;
			break;
		}
		if (ent == NULL)
			continue;
		if (ctl_dmarc_buf_add(b, s + start, i - start) != 0 ||
		    ctl_dmarc_buf_str(b, ent) != 0)
			return -1;
		start = i + 1;
	}
	return ctl_dmarc_buf_add(b, s + start, i - start);
}

bool
ctl_dmarc_domain_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.' ||
	    strstr(s, "..") != NULL)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return false;
	}
	return true;
}
