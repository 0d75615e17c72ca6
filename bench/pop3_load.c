/* SPDX-License-Identifier: MIT */
/* POP3 load generator for bench/pop3_bench.py: many clients, one epoll loop. */

/*
 * usage: pop3_load -p PORT -m retr|login [-t] [-n CLIENTS] [-d SECONDS]
 *                  [-r PASSES] [-f 1STUSER] [-u FORMAT] [-w PASSWORD]
 *
 * Client i (i = 0..n-1) logs in as FORMAT with number 1STUSER + i (the
 * default "bench%02d@example.test"), so that no two clients share a
 * mailbox (POP3 locks it). In "retr" mode a client sends STAT, RETRs
 * every message PASSES times (default 10, so that the login is a small
 * part of the session), QUITs and starts over; in "login" mode it sends USER,
 * PASS, QUIT and starts over. -t speaks implicit TLS (no certificate
 * check). After SECONDS it prints one line:
 *   bytes=N messages=N sessions=N logins=N errors=N
 * Message bodies are counted and thrown away as they arrive.
 *
 * Written for benchmarks on one host: a client costs far less CPU than
 * the servers it measures, unlike a Python one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define LOAD_BUF (256 * 1024)

enum load_step {
	STEP_CONNECT,
	STEP_HANDSHAKE,
	STEP_GREETING,
	STEP_USER,
	STEP_PASS,
	STEP_STAT,
	STEP_RETR_STATUS,
	STEP_RETR_BODY,
	STEP_QUIT,
};

struct load_client {
	int fd;
	SSL *ssl;
	enum load_step step;
	char user[128];
	unsigned count, next; /* messages in the mailbox, next to RETR */
	unsigned passes;      /* rounds over the mailbox still to go */
	char buf[LOAD_BUF];
	size_t len;
};

static const char *load_password = "bench password";
static bool load_retr, load_tls;
static unsigned load_passes = 10;
static struct sockaddr_in load_addr;
static SSL_CTX *load_ctx;
static int load_epoll;
static unsigned long long n_bytes, n_messages, n_sessions, n_logins, n_errors;
static const char *last_error = "";

static double
load_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void load_start(struct load_client *c);

static void
load_reset(struct load_client *c, const char *why)
{
	if (why != NULL) {
		n_errors++;
		last_error = why;
	}
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	c->ssl = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	load_start(c);
}

static void
load_start(struct load_client *c)
{
	struct epoll_event ev;
	int one = 1;

	c->len = 0;
	c->step = STEP_CONNECT;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		perror("socket");
		exit(1);
	}
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&load_addr, sizeof(load_addr)) <
	        0 &&
	    errno != EINPROGRESS) {
		perror("connect");
		exit(1);
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLOUT;
	ev.data.ptr = c;
	if (epoll_ctl(load_epoll, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		perror("epoll_ctl");
		exit(1);
	}
}

static void
load_want(struct load_client *c, unsigned events)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = c;
	(void)epoll_ctl(load_epoll, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Commands are short: they always fit the socket buffer at once. */
static bool
load_send(struct load_client *c, const char *text)
{
	size_t len = strlen(text);
	ssize_t n;

	if (c->ssl != NULL)
		n = SSL_write(c->ssl, text, (int)len);
	else
		n = send(c->fd, text, len, MSG_NOSIGNAL);
	if (n != (ssize_t)len) {
		load_reset(c, "short write");
		return false;
	}
	return true;
}

/* Read what is there. 1: got data, 0: nothing yet, -1: reset done. */
static int
load_read(struct load_client *c)
{
	ssize_t n;

	if (c->len == sizeof(c->buf)) {
		load_reset(c, "line too long");
		return -1;
	}
	if (c->ssl != NULL) {
		n = SSL_read(c->ssl, c->buf + c->len,
		             (int)(sizeof(c->buf) - c->len));
		if (n <= 0) {
			int e = SSL_get_error(c->ssl, (int)n);

			if (e == SSL_ERROR_WANT_READ ||
			    e == SSL_ERROR_WANT_WRITE)
				return 0;
			load_reset(c, "TLS read");
			return -1;
		}
	} else {
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0) {
			load_reset(c, n == 0 ? "closed by server" : "read");
			return -1;
		}
	}
	c->len += (size_t)n;
	return 1;
}

/* Take one line; false when none is complete yet. */
static bool
load_line(struct load_client *c, char *line, size_t size)
{
	char *lf = memchr(c->buf, '\n', c->len);
	size_t n;

	if (lf == NULL)
		return false;
	n = (size_t)(lf - c->buf) + 1;
	snprintf(line, size, "%.*s", (int)(n < size ? n : size - 1), c->buf);
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	return true;
}

static bool
load_next_retr(struct load_client *c)
{
	char cmd[32];

	if (c->next > c->count && c->count > 0 && --c->passes > 0)
		c->next = 1;
	if (c->next > c->count) {
		c->step = STEP_QUIT;
		return load_send(c, "QUIT\r\n");
	}
	snprintf(cmd, sizeof(cmd), "RETR %u\r\n", c->next++);
	c->step = STEP_RETR_STATUS;
	return load_send(c, cmd);
}

/* Consume buffered input as far as it goes. */
static void
load_process(struct load_client *c)
{
	char line[512], cmd[300];

	for (;;) {
		if (c->step == STEP_RETR_BODY) {
			char *end = memmem(c->buf, c->len, "\r\n.\r\n", 5);
			size_t n;

			if (end == NULL) {
				/* Keep what may start the terminator. */
				if (c->len > 4) {
					n_bytes += c->len - 4;
					memmove(c->buf, c->buf + c->len - 4, 4);
					c->len = 4;
				}
				return;
			}
			n = (size_t)(end - c->buf) + 5;
			n_bytes += n;
			n_messages++;
			memmove(c->buf, c->buf + n, c->len - n);
			c->len -= n;
			if (!load_next_retr(c))
				return;
			continue;
		}
		if (!load_line(c, line, sizeof(line)))
			return;
		if (strncmp(line, "+OK", 3) != 0) {
			load_reset(c, "-ERR reply");
			return;
		}
		switch (c->step) {
		case STEP_GREETING:
			snprintf(cmd, sizeof(cmd), "USER %s\r\n", c->user);
			c->step = STEP_USER;
			if (!load_send(c, cmd))
				return;
			break;
		case STEP_USER:
			snprintf(cmd, sizeof(cmd), "PASS %s\r\n",
			         load_password);
			c->step = STEP_PASS;
			if (!load_send(c, cmd))
				return;
			break;
		case STEP_PASS:
			n_logins++;
			if (!load_retr) {
				c->step = STEP_QUIT;
				if (!load_send(c, "QUIT\r\n"))
					return;
				break;
			}
			c->step = STEP_STAT;
			if (!load_send(c, "STAT\r\n"))
				return;
			break;
		case STEP_STAT:
			c->count = (unsigned)strtoul(line + 4, NULL, 10);
			c->next = 1;
			c->passes = load_passes;
			if (!load_next_retr(c))
				return;
			break;
		case STEP_RETR_STATUS:
			c->step = STEP_RETR_BODY;
			break;
		case STEP_QUIT:
			n_sessions++;
			load_reset(c, NULL);
			return;
		default:
			load_reset(c, "protocol");
			return;
		}
	}
}

static void
load_event(struct load_client *c, unsigned events)
{
	int rc;

	if (c->step == STEP_CONNECT) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
		    err != 0) {
			load_reset(c, "connect");
			return;
		}
		load_want(c, EPOLLIN);
		if (!load_tls) {
			c->step = STEP_GREETING;
			return;
		}
		c->ssl = SSL_new(load_ctx);
		SSL_set_fd(c->ssl, c->fd);
		SSL_set_connect_state(c->ssl);
		c->step = STEP_HANDSHAKE;
	}
	if (c->step == STEP_HANDSHAKE) {
		rc = SSL_do_handshake(c->ssl);
		if (rc != 1) {
			int e = SSL_get_error(c->ssl, rc);

			if (e == SSL_ERROR_WANT_READ) {
				load_want(c, EPOLLIN);
				return;
			}
			if (e == SSL_ERROR_WANT_WRITE) {
				load_want(c, EPOLLOUT);
				return;
			}
			load_reset(c, "handshake");
			return;
		}
		load_want(c, EPOLLIN);
		c->step = STEP_GREETING;
	}
	(void)events;
	/* TLS may hold decrypted bytes beyond what one read returned. */
	do {
		rc = load_read(c);
		if (rc < 0)
			return;
		if (rc > 0)
			load_process(c);
	} while (rc > 0 && c->ssl != NULL && SSL_pending(c->ssl) > 0);
}

int
main(int argc, char **argv)
{
	const char *format = "bench%02d@example.test";
	unsigned nclients = 50, first = 1, i;
	double duration = 8, deadline;
	struct load_client *clients;
	struct epoll_event evs[64];
	int port = 0, opt;

	while ((opt = getopt(argc, argv, "p:m:tn:d:r:f:u:w:")) != -1) {
		switch (opt) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'm':
			load_retr = strcmp(optarg, "retr") == 0;
			break;
		case 't':
			load_tls = true;
			break;
		case 'n':
			nclients = (unsigned)atoi(optarg);
			break;
		case 'd':
			duration = atof(optarg);
			break;
		case 'r':
			load_passes = (unsigned)atoi(optarg);
			if (load_passes == 0)
				load_passes = 1;
			break;
		case 'f':
			first = (unsigned)atoi(optarg);
			break;
		case 'u':
			format = optarg;
			break;
		case 'w':
			load_password = optarg;
			break;
		default:
			fprintf(stderr,
			        "usage: see the comment in pop3_load.c\n");
			return 2;
		}
	}
	if (port <= 0 || nclients == 0) {
		fprintf(stderr, "pop3_load: -p PORT and -n N > 0 needed\n");
		return 2;
	}
	memset(&load_addr, 0, sizeof(load_addr));
	load_addr.sin_family = AF_INET;
	load_addr.sin_port = htons((uint16_t)port);
	load_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (load_tls) {
		load_ctx = SSL_CTX_new(TLS_client_method());
		if (load_ctx == NULL)
			return 1;
		SSL_CTX_set_verify(load_ctx, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_mode(load_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
	}
	load_epoll = epoll_create1(EPOLL_CLOEXEC);
	clients = calloc(nclients, sizeof(*clients));
	if (load_epoll < 0 || clients == NULL)
		return 1;
	for (i = 0; i < nclients; i++) {
		clients[i].fd = -1;
		snprintf(clients[i].user, sizeof(clients[i].user), format,
		         (int)(first + i));
		load_start(&clients[i]);
	}
	deadline = load_now() + duration;
	while (load_now() < deadline) {
		int n = epoll_wait(load_epoll, evs, 64, 100);

		for (int k = 0; k < n; k++)
			load_event(evs[k].data.ptr, evs[k].events);
	}
	printf("bytes=%llu messages=%llu sessions=%llu logins=%llu "
	       "errors=%llu last_error=%s\n",
	       n_bytes, n_messages, n_sessions, n_logins, n_errors,
	       last_error[0] != '\0' ? last_error : "-");
	return 0;
}
