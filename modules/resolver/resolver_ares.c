/* SPDX-License-Identifier: MIT */
/* A c-ares channel driven by the core event loop, never blocking. */

/*
 * c-ares tells us which sockets it wants watched (ARES_OPT_SOCK_STATE_CB)
 * and when its next timeout is (ares_timeout); we map those onto ptl_io
 * watchers and one ptl_timer, and hand readiness back with
 * ares_process_fd(). c-ares does the transport: server rotation on
 * failure, retries, TCP after a truncated UDP answer, matching of the
 * id and question, and dropping EDNS when a server answers FORMERR.
 */
#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "resolver_internal.h"

/* EDNS(0) UDP payload size: the 2020 DNS flag day value, no fragments. */
#define RESOLVER_EDNS_SIZE 1232
#define DNS_CLASS_IN       1

struct ares_watch {
	struct ares_watch *next;
	struct resolver_ares *ra;
	ares_socket_t fd;
	struct ptl_io *io;
};

struct resolver_ares {
	ares_channel channel;
	struct ares_watch *watches;
	struct ptl_timer *timer;
	bool edns;
	bool set_ad;
};

/* One query on the wire: what to call when c-ares is done with it. */
struct ares_request {
	resolver_ares_fn done;
	void *arg;
};

static void
ares_rearm(struct resolver_ares *ra)
{
	struct timeval tv, *next;
	int64_t ms;

	next = ares_timeout(ra->channel, NULL, &tv);
	if (next == NULL) {
		ptl_timer_stop(ra->timer);
		return;
	}
	ms = (int64_t)next->tv_sec * 1000 + (next->tv_usec + 999) / 1000;
	/* Never 0: the loop's cached clock may lag c-ares's own. */
	ptl_timer_start(ra->timer, ms > 0 ? ms : 1);
}

static void
ares_on_timer(struct ptl_timer *t, void *arg)
{
	struct resolver_ares *ra = arg;

	ares_process_fd(ra->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	ares_rearm(ra);
}

static void
ares_on_io(struct ptl_io *io, unsigned events, void *arg)
{
	struct ares_watch *w = arg;
	struct resolver_ares *ra = w->ra;
	ares_socket_t fd = w->fd;

	/* An error is read so that c-ares sees it and moves on. The
	 * watcher may be gone when this returns. */
	ares_process_fd(
	    ra->channel,
	    (events & (PTL_IO_READ | PTL_IO_ERROR)) ? fd : ARES_SOCKET_BAD,
	    (events & PTL_IO_WRITE) ? fd : ARES_SOCKET_BAD);
	ares_rearm(ra);
}

static void
ares_on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct resolver_ares *ra = data;
	struct ares_watch **link, *w;
	unsigned events =
	    (readable ? PTL_IO_READ : 0u) | (writable ? PTL_IO_WRITE : 0u);

	for (link = &ra->watches; *link != NULL; link = &(*link)->next) {
		if ((*link)->fd == fd)
			break;
	}
	w = *link;
	if (events == 0) {
		if (w != NULL) {
			*link = w->next;
			ptl_io_remove(w->io);
			free(w);
		}
		return;
	}
	if (w != NULL) {
		if (ptl_io_modify(w->io, events) != PTL_OK)
			ptl_log(PTL_LOG_ERROR,
			        "resolver: cannot watch DNS socket %d: %s",
			        (int)fd, strerror(errno));
		return;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		/* Its queries then end by timeout; nothing is lost. */
		ptl_log(PTL_LOG_ERROR, "resolver: out of memory watching a "
		                       "DNS socket");
		return;
	}
	w->ra = ra;
	w->fd = fd;
	w->io = ptl_io_add(fd, events, ares_on_io, w);
	if (w->io == NULL) {
		ptl_log(PTL_LOG_ERROR,
		        "resolver: cannot watch DNS socket %d: %s", (int)fd,
		        strerror(errno));
		free(w);
		return;
	}
	w->next = ra->watches;
	ra->watches = w;
}

int
resolver_ares_new(const struct resolver_conf *conf, struct resolver_ares **out,
                  struct ptl_error *err)
{
	struct ares_options opts;
	struct resolver_ares *ra;
	int mask, rc;

	rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc != ARES_SUCCESS)
		return ptl_error_set(err, "c-ares: %s", ares_strerror(rc));
	ra = calloc(1, sizeof(*ra));
	if (ra == NULL) {
		ares_library_cleanup();
		return ptl_error_set(err, "out of memory");
	}
	ra->edns = conf->edns;
	ra->set_ad = conf->dnssec_ad;
	ra->timer = ptl_timer_new(ares_on_timer, ra);
	if (ra->timer == NULL) {
		free(ra);
		ares_library_cleanup();
		return ptl_error_set(err, "out of memory");
	}

	memset(&opts, 0, sizeof(opts));
	/*
	 * A mail server asks for exactly the names it means: no search
	 * list, no HOSTALIASES file from the environment.
	 */
	opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	if (conf->edns)
		opts.flags |= ARES_FLAG_EDNS;
	opts.timeout = (int)conf->timeout_ms;
	opts.tries = (int)conf->tries;
	opts.ednspsz = RESOLVER_EDNS_SIZE;
	opts.sock_state_cb = ares_on_sock_state;
	opts.sock_state_cb_data = ra;
	mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
	       ARES_OPT_SOCK_STATE_CB | (conf->edns ? ARES_OPT_EDNSPSZ : 0);
	rc = ares_init_options(&ra->channel, &opts, mask);
	if (rc != ARES_SUCCESS) {
		ptl_timer_free(ra->timer);
		free(ra);
		ares_library_cleanup();
		return ptl_error_set(err, "c-ares: %s", ares_strerror(rc));
	}
	if (conf->servers_csv != NULL && conf->servers_csv[0] != '\0') {
		rc = ares_set_servers_ports_csv(ra->channel, conf->servers_csv);
		if (rc != ARES_SUCCESS) {
			resolver_ares_free(ra);
			return ptl_error_set(err, "c-ares: servers \"%s\": %s",
			                     conf->servers_csv,
			                     ares_strerror(rc));
		}
	}
	*out = ra;
	return PTL_OK;
}

void
resolver_ares_free(struct resolver_ares *ra)
{
	if (ra == NULL)
		return;
	/* Runs every pending callback with ARES_EDESTRUCTION and closes
	 * the sockets through ares_on_sock_state(). */
	ares_destroy(ra->channel);
	while (ra->watches != NULL) {
		struct ares_watch *w = ra->watches;

		ra->watches = w->next;
		ptl_io_remove(w->io);
		free(w);
	}
	ptl_timer_free(ra->timer);
	free(ra);
	ares_library_cleanup();
}

static void
ares_on_answer(void *arg, int status, int timeouts, unsigned char *abuf,
               int alen)
{
	struct ares_request *req = arg;
	resolver_ares_fn done = req->done;
	void *done_arg = req->arg;

	free(req);
	switch (status) {
	case ARES_SUCCESS:
		if (abuf == NULL || alen <= 0) {
			done(done_arg, RESOLVER_ARES_PERMFAIL,
			     "malformed answer: empty", NULL, 0);
			return;
		}
		done(done_arg, RESOLVER_ARES_ANSWER, NULL, abuf, (size_t)alen);
		return;
	case ARES_EDESTRUCTION:
		done(done_arg, RESOLVER_ARES_DESTROYED, "shutting down", NULL,
		     0);
		return;
	case ARES_ETIMEOUT:
		done(done_arg, RESOLVER_ARES_TEMPFAIL, "timeout", NULL, 0);
		return;
	case ARES_ESERVFAIL:
		done(done_arg, RESOLVER_ARES_TEMPFAIL, "SERVFAIL", NULL, 0);
		return;
	case ARES_EREFUSED:
		done(done_arg, RESOLVER_ARES_TEMPFAIL, "REFUSED", NULL, 0);
		return;
	case ARES_ENOTIMP:
		done(done_arg, RESOLVER_ARES_TEMPFAIL, "NOTIMP", NULL, 0);
		return;
	case ARES_EFORMERR:
		done(done_arg, RESOLVER_ARES_TEMPFAIL, "FORMERR", NULL, 0);
		return;
	case ARES_ECONNREFUSED:
		/* c-ares 1.18 ends with this when every server answered
		 * SERVFAIL, REFUSED or NOTIMP, or could not be reached. */
		done(done_arg, RESOLVER_ARES_TEMPFAIL,
		     "no server answered (SERVFAIL, REFUSED or unreachable)",
		     NULL, 0);
		return;
	case ARES_EBADRESP:
		done(done_arg, RESOLVER_ARES_PERMFAIL,
		     "malformed answer: refused by c-ares", NULL, 0);
		return;
	case ARES_EBADNAME:
	case ARES_EBADQUERY:
		done(done_arg, RESOLVER_ARES_PERMFAIL, "invalid name", NULL, 0);
		return;
	default:
		done(done_arg, RESOLVER_ARES_TEMPFAIL, ares_strerror(status),
		     NULL, 0);
		return;
	}
}

int
resolver_ares_send(struct resolver_ares *ra, const char *name,
                   enum ptl_dns_type type, resolver_ares_fn done, void *arg)
{
	struct ares_request *req;
	unsigned char *query;
	int query_len, rc;

	rc = ares_create_query(name, DNS_CLASS_IN, (int)type, 0, 1, &query,
	                       &query_len, ra->edns ? RESOLVER_EDNS_SIZE : 0);
	if (rc != ARES_SUCCESS)
		return PTL_ERROR;
	/*
	 * RFC 6840 section 5.7: AD in a query asks a validating resolver to
	 * tell us whether the answer validated, without requesting DNSSEC
	 * records (DO) we would not check ourselves.
	 */
	if (ra->set_ad)
		query[3] |= 0x20;
	req = malloc(sizeof(*req));
	if (req == NULL) {
		ares_free_string(query);
		return PTL_ERROR;
	}
	req->done = done;
	req->arg = arg;
	/* ares_send() picks a fresh random id and copies the query. */
	ares_send(ra->channel, query, query_len, ares_on_answer, req);
	ares_free_string(query);
	ares_rearm(ra);
	return PTL_OK;
}

/* "192.0.2.1:53" or "[2001:db8::1]:53" for one c-ares server. */
static int
server_text(const struct ares_addr_port_node *node, char *out, size_t size)
{
	char ip[INET6_ADDRSTRLEN];
	int port = node->udp_port > 0 ? node->udp_port : 53;

	if (inet_ntop(node->family, &node->addr, ip, sizeof(ip)) == NULL)
		return PTL_ERROR;
	if (node->family == AF_INET6)
		(void)snprintf(out, size, "[%s]:%d", ip, port);
	else
		(void)snprintf(out, size, "%s:%d", ip, port);
	return PTL_OK;
}

int
resolver_ares_system_servers(struct ptl_pool *pool, const char **csv_out,
                             struct ptl_error *err)
{
	struct ares_addr_port_node *servers = NULL, *node;
	ares_channel channel;
	char csv[1024], one[INET6_ADDRSTRLEN + 16];
	size_t used = 0;
	int rc;

	rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc != ARES_SUCCESS)
		return ptl_error_set(err, "c-ares: %s", ares_strerror(rc));
	rc = ares_init(&channel);
	if (rc == ARES_SUCCESS) {
		rc = ares_get_servers_ports(channel, &servers);
		ares_destroy(channel);
	}
	ares_library_cleanup();
	if (rc != ARES_SUCCESS)
		return ptl_error_set(err,
		                     "c-ares: reading /etc/resolv.conf: %s",
		                     ares_strerror(rc));
	csv[0] = '\0';
	for (node = servers; node != NULL; node = node->next) {
		size_t n;

		if (server_text(node, one, sizeof(one)) != PTL_OK)
			continue;
		n = strlen(one);
		if (used + n + 2 > sizeof(csv))
			break;
		if (used > 0)
			csv[used++] = ',';
		memcpy(csv + used, one, n + 1);
		used += n;
	}
	ares_free_data(servers);
	*csv_out = ptl_pstrdup(pool, csv);
	if (*csv_out == NULL)
		return ptl_error_set(err, "out of memory");
	return PTL_OK;
}

int
resolver_server_normalize(const char *text, char *out, size_t out_size,
                          struct ptl_error *err)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port_text = NULL, *colon;
	struct in6_addr in6;
	struct in_addr in4;
	unsigned long port = 53;
	size_t host_len;
	bool v6;

	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (close == NULL)
			return ptl_error_set(err,
			                     "expected \"ip\", \"ip:port\" "
			                     "or \"[ipv6]:port\"");
		host_len = (size_t)(close - text - 1);
		if (host_len >= sizeof(host))
			return ptl_error_set(err, "bad IPv6 address");
		memcpy(host, text + 1, host_len);
		host[host_len] = '\0';
		if (close[1] == ':')
			port_text = close + 2;
		else if (close[1] != '\0')
			return ptl_error_set(err, "expected \"[ipv6]:port\"");
	} else {
		colon = strchr(text, ':');
		/* Two colons or more: a bare IPv6 address, port 53. */
		if (colon != NULL && strchr(colon + 1, ':') == NULL) {
			host_len = (size_t)(colon - text);
			port_text = colon + 1;
		} else {
			host_len = strlen(text);
		}
		if (host_len >= sizeof(host))
			return ptl_error_set(err, "bad IP address");
		memcpy(host, text, host_len);
		host[host_len] = '\0';
	}
	if (port_text != NULL) {
		char *end;

		if (port_text[0] < '0' || port_text[0] > '9')
			return ptl_error_set(err, "bad port");
		errno = 0;
		port = strtoul(port_text, &end, 10);
		if (errno != 0 || *end != '\0' || port == 0 || port > 65535)
			return ptl_error_set(err, "bad port");
	}
	if (inet_pton(AF_INET, host, &in4) == 1)
		v6 = false;
	else if (inet_pton(AF_INET6, host, &in6) == 1)
		v6 = true;
	else
		return ptl_error_set(err,
		                     "\"%s\" is not an IP address (name "
		                     "servers are given by address)",
		                     host);
	(void)snprintf(out, out_size, v6 ? "[%s]:%lu" : "%s:%lu", host, port);
	return PTL_OK;
}
