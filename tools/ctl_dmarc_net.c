/* SPDX-License-Identifier: MIT */
/* petrelctl dmarc: the external-destination lookup and SMTP submission. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "ctl_dmarc_agg.h"
#include "ctl_dmarc_mail.h"
#include "ctl_dmarc_net.h"

/* A command's reply, a write: what a blocking client waits at most. */
#define NET_TIMEOUT_SEC 30
/* RFC 5321 4.5.3.1.5: a reply line is at most 512 bytes; some say more. */
#define NET_LINE_MAX        1000
#define NET_REPLY_LINES_MAX 100

/* ---- DNS -------------------------------------------------------------- */

/* "HOST:PORT" or "[HOST]:PORT" into @host and @port. */
static int
net_split(const char *hostport, char *host, size_t size, char *port,
          size_t psize)
{
	const char *colon;
	size_t hlen;

	if (hostport[0] == '[') {
		colon = strstr(hostport, "]:");
		if (colon == NULL)
			return -1;
		hlen = (size_t)(colon - hostport - 1);
		hostport++;
		colon++;
	} else {
		colon = strrchr(hostport, ':');
		if (colon == NULL)
			return -1;
		hlen = (size_t)(colon - hostport);
	}
	if (hlen == 0 || hlen >= size || strlen(colon + 1) == 0 ||
	    strlen(colon + 1) >= psize ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return -1;
	memcpy(host, hostport, hlen);
	host[hlen] = '\0';
	memcpy(port, colon + 1, strlen(colon + 1) + 1);
	return 0;
}

int
ctl_dmarc_dns_init(const char *resolver, char *why, size_t size)
{
	char host[64], port[8];
	struct in_addr addr;
	unsigned long p;
	int i;

	if (res_init() != 0) {
		(void)snprintf(why, size, "res_init failed");
		return -1;
	}
	if (resolver == NULL)
		return 0;
	if (net_split(resolver, host, sizeof(host), port, sizeof(port)) != 0 ||
	    inet_pton(AF_INET, host, &addr) != 1 ||
	    (p = strtoul(port, NULL, 10)) == 0 || p > 65535) {
		(void)snprintf(why, size, "--resolver wants IPv4:PORT");
		return -1;
	}
	/* The resolver keeps its servers in _res; IPv6 ones from
	 * resolv.conf live in the extension and would come first. */
	_res.nscount = 1;
	memset(&_res.nsaddr_list[0], 0, sizeof(_res.nsaddr_list[0]));
	_res.nsaddr_list[0].sin_family = AF_INET;
	_res.nsaddr_list[0].sin_addr = addr;
	_res.nsaddr_list[0].sin_port = htons((uint16_t)p);
	for (i = 0; i < MAXNS; i++)
		_res._u._ext.nsaddrs[i] = NULL;
	_res.retrans = 2;
	_res.retry = 2;
	return 0;
}

/* Whether one TXT rdata (character-strings) starts with v=DMARC1. */
static bool
net_txt_is_report_ok(const unsigned char *rd, size_t rdlen)
{
	char text[512];
	size_t off = 0, n = 0, len;

	while (off < rdlen && n < sizeof(text) - 1) {
		len = rd[off++];
		if (len > rdlen - off)
			return false;
		if (len > sizeof(text) - 1 - n)
			len = sizeof(text) - 1 - n;
		memcpy(text + n, rd + off, len);
		n += len;
		off += len;
	}
	text[n] = '\0';
	/* The tag ends the record, or a ';' or whitespace follows it. */
	return strncmp(text, "v=DMARC1", 8) == 0 &&
	       (text[8] == '\0' || text[8] == ';' || text[8] == ' ' ||
	        text[8] == '\t');
}

int
ctl_dmarc_external_ok(const char *policy_domain, const char *rua_domain,
                      char *why, size_t size)
{
	unsigned char answer[4096];
	char name[NS_MAXDNAME];
	ns_msg msg;
	ns_rr rr;
	int len, i, n;

	len = snprintf(name, sizeof(name), "%s._report._dmarc.%s",
	               policy_domain, rua_domain);
	if (len < 0 || len > 253) {
		(void)snprintf(why, size, "%s._report._dmarc.%s: too long",
		               policy_domain, rua_domain);
		return 0;
	}
	len = res_query(name, ns_c_in, ns_t_txt, answer, sizeof(answer));
	if (len < 0) {
		if (h_errno == HOST_NOT_FOUND || h_errno == NO_DATA) {
			(void)snprintf(why, size, "no TXT record at %s", name);
			return 0;
		}
		(void)snprintf(why, size, "TXT lookup of %s failed: %s", name,
		               hstrerror(h_errno));
		return -1;
	}
	if (ns_initparse(answer, len, &msg) != 0) {
		(void)snprintf(why, size, "TXT lookup of %s: bad answer", name);
		return -1;
	}
	n = ns_msg_count(msg, ns_s_an);
	for (i = 0; i < n; i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr) != 0)
			break;
		if (ns_rr_type(rr) == ns_t_txt &&
		    net_txt_is_report_ok(ns_rr_rdata(rr), ns_rr_rdlen(rr)))
			return 1;
	}
	(void)snprintf(why, size, "no v=DMARC1 TXT record at %s", name);
	return 0;
}

/* ---- SMTP ------------------------------------------------------------- */

struct net_conn {
	int fd;
	char buf[4096];
	size_t off, len;
	char last[160]; /* the last reply line, printable, for errors */
};

static int
net_connect(const char *hostport, char *why, size_t size)
{
	struct timeval tv = {.tv_sec = NET_TIMEOUT_SEC};
	struct addrinfo hints, *res, *ai;
	char host[256], port[8];
	int fd = -1, rc, err = 0;

	if (net_split(hostport, host, sizeof(host), port, sizeof(port)) != 0) {
		(void)snprintf(why, size, "%s: want HOST:PORT", hostport);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		(void)snprintf(why, size, "%s: %s", host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		            ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		/* On Linux SO_SNDTIMEO bounds connect() too. */
		if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ==
		        0 &&
		    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ==
		        0 &&
		    connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno;
		(void)close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		(void)snprintf(why, size, "connect to %s: %s", hostport,
		               strerror(err));
	return fd;
}

static int
net_write(struct net_conn *c, const char *s, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(c->fd, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One line without its CRLF into @line. @return its length or -1. */
static int
net_read_line(struct net_conn *c, char *line, size_t size)
{
	size_t n = 0;
	ssize_t r;
	char ch;

	for (;;) {
		if (c->off == c->len) {
			r = read(c->fd, c->buf, sizeof(c->buf));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return -1;
			c->off = 0;
			c->len = (size_t)r;
		}
		ch = c->buf[c->off++];
		if (ch == '\n')
			break;
		if (n + 1 >= size)
			return -1;
		line[n++] = ch;
	}
	if (n > 0 && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	return (int)n;
}

/* A whole (multi-line) reply. @return its code, or -1 (no reply). */
static int
net_reply(struct net_conn *c)
{
	char line[NET_LINE_MAX + 1];
	int i, n, code = -1;
	size_t j;

	for (i = 0; i < NET_REPLY_LINES_MAX; i++) {
		n = net_read_line(c, line, sizeof(line));
		if (n < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
		    line[1] > '9' || line[2] < '0' || line[2] > '9' ||
		    (n > 3 && line[3] != ' ' && line[3] != '-'))
			return -1;
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
		       (line[2] - '0');
		for (j = 0; line[j] != '\0' && j < sizeof(c->last) - 1; j++)
			c->last[j] =
			    line[j] >= 0x20 && line[j] < 0x7f ? line[j] : '?';
		c->last[j] = '\0';
		if (n == 3 || line[3] == ' ')
			return code;
	}
	return -1;
}

/* Send @cmd (no CRLF) and expect a reply of class @want (2 or 3). */
static int
net_command(struct net_conn *c, const char *cmd, int want, char *why,
            size_t size)
{
	int code;

	if (net_write(c, cmd, strlen(cmd)) != 0 ||
	    net_write(c, "\r\n", 2) != 0) {
		(void)snprintf(why, size, "%.40s: write: %s", cmd,
		               strerror(errno));
		return -1;
	}
	code = net_reply(c);
	if (code / 100 != want) {
		if (code < 0)
			(void)snprintf(why, size, "%.60s: no valid reply", cmd);
		else
			(void)snprintf(why, size, "%.60s: %s", cmd, c->last);
		return -1;
	}
	return 0;
}

int
ctl_dmarc_smtp_send(const char *hostport, const char *helo, const char *from,
                    const char *to, const char *msg, size_t len, char *why,
                    size_t size)
{
	struct net_conn *c;
	struct ctl_dmarc_buf data;
	char cmd[600];
	int rc = -1, code;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		(void)snprintf(why, size, "out of memory");
		return -1;
	}
	ctl_dmarc_buf_init(&data);
	c->fd = net_connect(hostport, why, size);
	if (c->fd < 0)
		goto out;
	code = net_reply(c);
	if (code != 220) {
		(void)snprintf(why, size, "greeting: %s",
		               code < 0 ? "none" : c->last);
		goto out;
	}
	(void)snprintf(cmd, sizeof(cmd), "EHLO %s", helo);
	if (net_command(c, cmd, 2, why, size) != 0) {
		(void)snprintf(cmd, sizeof(cmd), "HELO %s", helo);
		if (net_command(c, cmd, 2, why, size) != 0)
			goto out;
	}
	(void)snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>", from);
	if (net_command(c, cmd, 2, why, size) != 0)
		goto out;
	(void)snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>", to);
	if (net_command(c, cmd, 2, why, size) != 0)
		goto out;
	if (net_command(c, "DATA", 3, why, size) != 0)
		goto out;
	if (ctl_dmarc_dot_stuff(msg, len, &data) != 0) {
		(void)snprintf(why, size, "out of memory");
		goto out;
	}
	if (net_write(c, data.data, data.len) != 0) {
		(void)snprintf(why, size, "DATA: write: %s", strerror(errno));
		goto out;
	}
	code = net_reply(c);
	if (code / 100 != 2) {
		(void)snprintf(why, size, "end of DATA: %s",
		               code < 0 ? "no valid reply" : c->last);
		goto out;
	}
	rc = 0;
	/* Accepted now: a bad answer to QUIT is only worth a line. */
	if (net_command(c, "QUIT", 2, why, size) != 0)
		fprintf(stderr,
		        "petrelctl: %s: %s (the message was "
		        "accepted)\n",
		        hostport, why);
out:
	if (c->fd >= 0)
		(void)close(c->fd);
	ctl_dmarc_buf_free(&data);
	free(c);
	return rc;
}
