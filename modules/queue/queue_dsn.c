/* SPDX-License-Identifier: MIT */
/* Delivery status notifications (RFC 3464 multipart/report). Pure. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <petrel/core.h>

#include "queue_dsn.h"

/* The longest header part returned, and the read size while looking. */
#define DSN_HEADER_MAX ((size_t)64 * 1024)
#define DSN_CHUNK      ((size_t)64 * 1024)
#define DSN_LINE_MAX   1200

struct dsn_out {
	queue_dsn_write_fn write;
	void *ctx;
	bool failed;
};

static void dsn_printf(struct dsn_out *o, const char *fmt, ...)
    PTL_PRINTF(2, 3);

static void
dsn_put(struct dsn_out *o, const void *p, size_t len)
{
	if (!o->failed && len > 0 && o->write(o->ctx, p, len) != 0)
		o->failed = true;
}

static void
dsn_printf(struct dsn_out *o, const char *fmt, ...)
{
	char line[DSN_LINE_MAX];
	va_list ap;
	size_t len;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		/* A cut line keeps its CRLF, or it would run into the next
		 * one (or end in a bare CR). */
		n = (int)sizeof(line) - 1;
		len = strlen(fmt);
		if (len >= 2 && memcmp(fmt + len - 2, "\r\n", 2) == 0)
			memcpy(line + n - 2, "\r\n", 2);
	}
	dsn_put(o, line, (size_t)n);
}

void
queue_dsn_clean(char *out, size_t size, const char *in, bool utf8)
{
	size_t i = 0;

	if (size == 0)
		return;
	for (; in != NULL && *in != '\0' && i + 1 < size; in++) {
		unsigned char c = (unsigned char)*in;

		/* CR, LF and friends would end the header line early. */
		if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8))
			c = c >= 0x80 ? '?' : ' ';
		out[i++] = (char)c;
	}
	out[i] = '\0';
}

static void
dsn_date(char *out, size_t size, int64_t when)
{
	time_t t = (time_t)when;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, size, "%a, %d %b %Y %H:%M:%S +0000", &tm) == 0)
		(void)snprintf(out, size, "Thu, 01 Jan 1970 00:00:00 +0000");
}

void
queue_dsn_status(enum queue_dsn_action action, const char *diagnostic,
                 char out[16])
{
	const char *p = diagnostic;
	char cls = action == QUEUE_DSN_FAILED    ? '5'
	           : action == QUEUE_DSN_DELAYED ? '4'
	                                         : '2';
	size_t a, b;

	if (p != NULL && strstr(p, "delivery time expired") != NULL) {
		(void)snprintf(out, 16, "%c.4.7", cls);
		return;
	}
	/* "550 5.1.1 text": a reply code, then an enhanced code. */
	if (p != NULL && p[0] >= '2' && p[0] <= '5' && p[1] >= '0' &&
	    p[1] <= '9' && p[2] >= '0' && p[2] <= '9' &&
	    (p[3] == ' ' || p[3] == '-') && p[4] >= '2' && p[4] <= '5' &&
	    p[5] == '.') {
		p += 6;
		a = strspn(p, "0123456789");
		if (a >= 1 && a <= 3 && p[a] == '.') {
			b = strspn(p + a + 1, "0123456789");
			if (b >= 1 && b <= 3) {
				(void)snprintf(out, 16, "%c.%.*s.%.*s", cls,
				               (int)a, p, (int)b, p + a + 1);
				return;
			}
		}
	}
	(void)snprintf(out, 16, "%c.0.0", cls);
}

static const char *
dsn_action_word(enum queue_dsn_action a)
{
	switch (a) {
	case QUEUE_DSN_FAILED:
		return "failed";
	case QUEUE_DSN_DELAYED:
		return "delayed";
	case QUEUE_DSN_DELIVERED:
		return "delivered";
	case QUEUE_DSN_RELAYED:
		return "relayed";
	}
	return "failed";
}

/* The worst action decides the subject and the text. */
static enum queue_dsn_action
dsn_worst(const struct queue_dsn *d)
{
	bool delayed = false, failed = false;
	size_t i;

	for (i = 0; i < d->nrcpts; i++) {
		failed |= d->rcpts[i].action == QUEUE_DSN_FAILED;
		delayed |= d->rcpts[i].action == QUEUE_DSN_DELAYED;
	}
	return failed    ? QUEUE_DSN_FAILED
	       : delayed ? QUEUE_DSN_DELAYED
	                 : QUEUE_DSN_DELIVERED;
}

static void
dsn_header(struct dsn_out *o, const struct queue_dsn *d,
           enum queue_dsn_action worst)
{
	char date[64], to[1100], host[300];

	dsn_date(date, sizeof(date), d->now);
	queue_dsn_clean(to, sizeof(to), d->sender, d->utf8);
	queue_dsn_clean(host, sizeof(host), d->reporting_mta, false);
	dsn_printf(o, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
	           host);
	dsn_printf(o, "To: <%s>\r\n", to);
	dsn_printf(
	    o, "Subject: %s\r\n",
	    worst == QUEUE_DSN_FAILED    ? "Undelivered Mail Returned to Sender"
	    : worst == QUEUE_DSN_DELAYED ? "Delayed Mail (still being retried)"
	                                 : "Successful Mail Delivery Report");
	dsn_printf(o, "Date: %s\r\n", date);
	dsn_printf(o, "Message-ID: <%s>\r\n", d->message_id);
	/* RFC 3834: no vacation responder answers this. */
	dsn_printf(o, "Auto-Submitted: auto-replied\r\n");
	dsn_printf(o, "MIME-Version: 1.0\r\n");
	dsn_printf(o,
	           "Content-Type: multipart/report; "
	           "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n",
	           d->boundary);
	dsn_printf(o, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");
}

static void
dsn_text(struct dsn_out *o, const struct queue_dsn *d,
         enum queue_dsn_action worst)
{
	char addr[1100], diag[600], host[300];
	size_t i;

	dsn_printf(o, "--%s\r\n", d->boundary);
	dsn_printf(o, "Content-Description: Notification\r\n");
	dsn_printf(o, "Content-Type: text/plain; charset=%s\r\n\r\n",
	           d->utf8 ? "utf-8" : "us-ascii");
	queue_dsn_clean(host, sizeof(host), d->reporting_mta, false);
	dsn_printf(o, "This is the mail system at host %s.\r\n\r\n", host);
	if (worst == QUEUE_DSN_FAILED)
		dsn_printf(o, "Your message could not be delivered to one "
		              "or more recipients.\r\nIt is attached "
		              "below.\r\n\r\n");
	else if (worst == QUEUE_DSN_DELAYED)
		dsn_printf(o, "Your message could not be delivered yet. The "
		              "mail system will keep\r\ntrying; you need "
		              "not send it again.\r\n\r\n");
	else
		dsn_printf(o, "Your message was delivered to the recipients "
		              "below, as you asked\r\nto be told.\r\n\r\n");
	for (i = 0; i < d->nrcpts; i++) {
		const struct queue_dsn_rcpt *r = &d->rcpts[i];

		queue_dsn_clean(addr, sizeof(addr), r->address, d->utf8);
		queue_dsn_clean(diag, sizeof(diag),
		                r->diagnostic ? r->diagnostic : "", false);
		dsn_printf(o, "<%s>: %s%s%s\r\n", addr,
		           dsn_action_word(r->action), diag[0] ? ": " : "",
		           diag);
	}
	dsn_printf(o, "\r\n");
}

static void
dsn_status_part(struct dsn_out *o, const struct queue_dsn *d)
{
	char date[64], buf[1100], diag[600], status[16];
	size_t i;

	dsn_printf(o, "--%s\r\n", d->boundary);
	dsn_printf(o, "Content-Description: Delivery report\r\n");
	dsn_printf(o, "Content-Type: %s\r\n\r\n",
	           d->utf8 ? "message/global-delivery-status"
	                   : "message/delivery-status");
	/* Per-message fields (RFC 3464 2.2). */
	queue_dsn_clean(buf, sizeof(buf), d->reporting_mta, false);
	dsn_printf(o, "Reporting-MTA: dns; %s\r\n", buf);
	queue_dsn_clean(buf, sizeof(buf), d->queue_id, false);
	dsn_printf(o, "X-Petrel-Queue-ID: %s\r\n", buf);
	if (d->envid != NULL) {
		queue_dsn_clean(buf, sizeof(buf), d->envid, false);
		dsn_printf(o, "Original-Envelope-Id: %s\r\n", buf);
	}
	dsn_date(date, sizeof(date), d->arrival);
	dsn_printf(o, "Arrival-Date: %s\r\n", date);
	/* Per-recipient fields (2.3), one block each. */
	for (i = 0; i < d->nrcpts; i++) {
		const struct queue_dsn_rcpt *r = &d->rcpts[i];

		dsn_printf(o, "\r\n");
		if (r->orcpt != NULL && strchr(r->orcpt, ';') != NULL) {
			queue_dsn_clean(buf, sizeof(buf), r->orcpt, d->utf8);
			dsn_printf(o, "Original-Recipient: %s\r\n", buf);
		}
		queue_dsn_clean(buf, sizeof(buf), r->address, d->utf8);
		dsn_printf(o, "Final-Recipient: %s; %s\r\n",
		           d->utf8 ? "utf-8" : "rfc822", buf);
		dsn_printf(o, "Action: %s\r\n", dsn_action_word(r->action));
		queue_dsn_status(r->action, r->diagnostic, status);
		dsn_printf(o, "Status: %s\r\n", status);
		if (r->remote_mta != NULL && r->remote_mta[0] != '\0') {
			queue_dsn_clean(buf, sizeof(buf), r->remote_mta, false);
			dsn_printf(o, "Remote-MTA: dns; %s\r\n", buf);
		}
		if (r->diagnostic != NULL && r->diagnostic[0] != '\0') {
			bool smtp = r->diagnostic[0] >= '2' &&
			            r->diagnostic[0] <= '5' &&
			            strspn(r->diagnostic, "0123456789") == 3;

			queue_dsn_clean(diag, sizeof(diag), r->diagnostic,
			                false);
			dsn_printf(o, "Diagnostic-Code: %s; %s\r\n",
			           smtp ? "smtp" : "X-Petrel", diag);
		}
		if (r->last_attempt > 0) {
			dsn_date(date, sizeof(date), r->last_attempt);
			dsn_printf(o, "Last-Attempt-Date: %s\r\n", date);
		}
		if (r->action == QUEUE_DSN_DELAYED && d->retry_until > 0) {
			dsn_date(date, sizeof(date), d->retry_until);
			dsn_printf(o, "Will-Retry-Until: %s\r\n", date);
		}
	}
	dsn_printf(o, "\r\n");
}

/* Bytes of the header part: up to the first empty line, bounded. */
static int
dsn_header_len(int fd, uint64_t size, uint64_t *len_out)
{
	size_t want = size < DSN_HEADER_MAX ? (size_t)size : DSN_HEADER_MAX;
	char *buf = malloc(want + 1);
	size_t got = 0, i;
	ssize_t n;

	if (buf == NULL)
		return -1;
	while (got < want) {
		n = pread(fd, buf + got, want - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return -1;
		}
		got += (size_t)n;
	}
	*len_out = got;
	for (i = 0; i < got; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < got && buf[i + 1] == '\n') {
			*len_out = i + 1;
			break;
		}
		if (i + 2 < got && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
			*len_out = i + 1;
			break;
		}
	}
	free(buf);
	return 0;
}

static int
dsn_copy(struct dsn_out *o, int fd, uint64_t len)
{
	char *buf = malloc(DSN_CHUNK);
	uint64_t off = 0;
	size_t chunk;
	ssize_t n;
	bool last_lf = true;

	if (buf == NULL)
		return -1;
	while (off < len) {
		chunk = len - off < DSN_CHUNK ? (size_t)(len - off) : DSN_CHUNK;
		n = pread(fd, buf, chunk, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return -1;
		}
		dsn_put(o, buf, (size_t)n);
		last_lf = buf[n - 1] == '\n';
		off += (uint64_t)n;
	}
	free(buf);
	if (!last_lf)
		dsn_put(o, "\r\n", 2);
	return 0;
}

int
queue_dsn_compose(const struct queue_dsn *d, int orig_fd, uint64_t orig_size,
                  queue_dsn_write_fn write, void *ctx, char *why,
                  size_t why_size)
{
	struct dsn_out o = {write, ctx, false};
	enum queue_dsn_action worst = dsn_worst(d);
	uint64_t hdr_len = 0;
	bool full = d->full && worst == QUEUE_DSN_FAILED;

	dsn_header(&o, d, worst);
	dsn_text(&o, d, worst);
	dsn_status_part(&o, d);
	if (orig_fd >= 0) {
		if (!full && orig_size > 0 &&
		    dsn_header_len(orig_fd, orig_size, &hdr_len) != 0) {
			(void)snprintf(why, why_size,
			               "cannot read the original message");
			return -1;
		}
		dsn_printf(&o, "--%s\r\n", d->boundary);
		dsn_printf(&o, "Content-Description: %s\r\n",
		           full ? "Undelivered Message"
		                : "Header of the original message");
		dsn_printf(&o, "Content-Type: %s\r\n\r\n",
		           full
		               ? (d->utf8 ? "message/global" : "message/rfc822")
		               : (d->utf8 ? "message/global-headers"
		                          : "text/rfc822-headers"));
		if (dsn_copy(&o, orig_fd, full ? orig_size : hdr_len) != 0) {
			(void)snprintf(why, why_size,
			               "cannot read the original message");
			return -1;
		}
		dsn_printf(&o, "\r\n");
	}
	dsn_printf(&o, "--%s--\r\n", d->boundary);
	if (o.failed) {
		(void)snprintf(why, why_size, "cannot write the report");
		return -1;
	}
	return 0;
}
