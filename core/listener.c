/* SPDX-License-Identifier: MIT */
/* Listening sockets: declared, bound by the master, accepted by workers. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/cycle.h"
#include "core/listener.h"
#include "core/loop.h"

#define LISTEN_BACKLOG_DEFAULT 511
/* Accepts per wakeup: other listeners and connections get a turn. */
#define LISTEN_ACCEPT_BATCH 32
/* Pause after EMFILE/ENFILE: closing connections free descriptors. */
#define LISTEN_FD_PAUSE_MS 100
/* At most one "connection limit reached" line per listener and second. */
#define LISTEN_LIMIT_LOG_MS 1000

#define IP_TABLE_BUCKETS 256

struct ip_count {
	struct ip_count *next;
	unsigned count;
	sa_family_t family;
	unsigned char addr[16];
};

/* Open connections per peer address of one listener in one process. */
struct ptl_ip_table {
	struct ip_count *buckets[IP_TABLE_BUCKETS];
	uint32_t seed; /* a peer must not pick addresses that collide */
};

/* "1.2.3.4:25" for messages. */
static const char *
listen_text(const struct ptl_listener *l)
{
	return l->spec.address.text != NULL ? l->spec.address.text : "?";
}

static int
listen_parse_host(const char *host, uint16_t port, struct sockaddr_storage *ss,
                  socklen_t *len_out)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (strcmp(host, "*") == 0) {
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		sin->sin_port = htons(port);
		*len_out = sizeof(*sin);
		return PTL_OK;
	}
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len_out = sizeof(*sin);
		return PTL_OK;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len_out = sizeof(*sin6);
		return PTL_OK;
	}
	return PTL_ERROR;
}

static bool
listen_same_addr(const struct ptl_listener *a, const struct ptl_listener *b)
{
	return a->addrlen == b->addrlen &&
	       memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

static const char *
listen_module_name(const struct ptl_instance *inst)
{
	if (inst == NULL || inst->module == NULL || inst->module->name == NULL)
		return "?";
	return inst->module->name;
}

PTL_API int
ptl_listener_add(struct ptl_instance *inst, const struct ptl_listen_spec *spec,
                 ptl_accept_fn on_accept, void *arg, struct ptl_error *err)
{
	struct ptl_cycle *cycle;
	struct ptl_listener *l, **grown;
	struct ptl_conf_address addr;
	size_t i;

	if (inst == NULL || inst->cycle == NULL || spec == NULL ||
	    on_accept == NULL)
		return ptl_error_set(err, "ptl_listener_add: missing argument");
	cycle = inst->cycle;
	/* Later, nothing would bind the socket: fail loudly instead. */
	if (!cycle->in_init_master)
		return ptl_error_set(err, "ptl_listener_add() is only allowed "
		                          "in init_master");
	addr = spec->address;
	if (addr.host == NULL) {
		if (addr.text == NULL)
			return ptl_error_set(err,
			                     "listener without an address");
		if (ptl_conf_parse_address(cycle->pool, addr.text, &addr,
		                           err) != PTL_OK)
			return PTL_ERROR;
	}

	l = ptl_pcalloc(cycle->pool, sizeof(*l));
	if (l == NULL)
		return ptl_error_set(err, "out of memory");
	l->spec = *spec;
	l->spec.address.host = ptl_pstrdup(cycle->pool, addr.host);
	l->spec.address.port = addr.port;
	if (addr.text != NULL)
		l->spec.address.text = ptl_pstrdup(cycle->pool, addr.text);
	else
		l->spec.address.text = ptl_psprintf(
		    cycle->pool, strchr(addr.host, ':') ? "[%s]:%u" : "%s:%u",
		    addr.host, (unsigned)addr.port);
	if (l->spec.address.host == NULL || l->spec.address.text == NULL)
		return ptl_error_set(err, "out of memory");
	if (l->spec.backlog <= 0)
		l->spec.backlog = LISTEN_BACKLOG_DEFAULT;
	l->on_accept = on_accept;
	l->arg = arg;
	l->inst = inst;
	l->cycle = cycle;
	l->fd = -1;

	if (addr.port == 0)
		return ptl_error_set(err, "bad address %s: port 0",
		                     listen_text(l));
	if (listen_parse_host(addr.host, addr.port, &l->addr, &l->addrlen) !=
	    PTL_OK)
		return ptl_error_set(err,
		                     "bad address %s: the host must be an IP "
		                     "address or \"*\"",
		                     listen_text(l));
	for (i = 0; i < cycle->nlisteners; i++) {
		const struct ptl_listener *other = cycle->listeners[i];

		if (!listen_same_addr(other, l))
			continue;
		if (other->inst == inst)
			return ptl_error_set(err,
			                     "address %s declared twice "
			                     "(module %s)",
			                     listen_text(l),
			                     listen_module_name(inst));
		return ptl_error_set(err,
		                     "address %s declared twice (modules %s "
		                     "and %s)",
		                     listen_text(l),
		                     listen_module_name(other->inst),
		                     listen_module_name(inst));
	}
	/* Relies on ptl_cycle_init_master() building TLS before init_master. */
	if (spec->tls == PTL_TLS_IMPLICIT && cycle->tls == NULL)
		return ptl_error_set(err,
		                     "address %s: implicit TLS needs a "
		                     "certificate in the \"tls\" section",
		                     listen_text(l));

	if (cycle->nlisteners == cycle->listeners_cap) {
		size_t cap =
		    cycle->listeners_cap ? cycle->listeners_cap * 2 : 8;

		/* The old array stays in the pool: a few pointers per cycle. */
		grown = ptl_palloc(cycle->pool, cap * sizeof(*grown));
		if (grown == NULL)
			return ptl_error_set(err, "out of memory");
		if (cycle->nlisteners > 0)
			memcpy(grown, cycle->listeners,
			       cycle->nlisteners * sizeof(*grown));
		cycle->listeners = grown;
		cycle->listeners_cap = cap;
	}
	cycle->listeners[cycle->nlisteners++] = l;
	return PTL_OK;
}

static int
listen_open(struct ptl_listener *l, struct ptl_error *err)
{
	const struct sockaddr *sa = (const struct sockaddr *)&l->addr;
	int fd, on = 1;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            0);
	if (fd < 0)
		return ptl_error_set_errno(err, errno, "socket %s",
		                           listen_text(l));
	/* A restart must not wait for TIME_WAIT connections of the old one. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0)
		goto fail_errno;
	/* "[::]:25" must not also grab IPv4 and collide with "*:25". */
	if (sa->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0)
		goto fail_errno;
	if (bind(fd, sa, l->addrlen) < 0) {
		ptl_error_set_errno(err, errno, "bind %s", listen_text(l));
		close(fd);
		return PTL_ERROR;
	}
	if (listen(fd, l->spec.backlog) < 0) {
		ptl_error_set_errno(err, errno, "listen %s", listen_text(l));
		close(fd);
		return PTL_ERROR;
	}
	l->fd = fd;
	return PTL_OK;
fail_errno:
	ptl_error_set_errno(err, errno, "setsockopt %s", listen_text(l));
	close(fd);
	return PTL_ERROR;
}

static struct ptl_listener *
listen_find_old(struct ptl_cycle *old, const struct ptl_listener *l)
{
	size_t i;

	if (old == NULL)
		return NULL;
	for (i = 0; i < old->nlisteners; i++) {
		struct ptl_listener *o = old->listeners[i];

		if (o->fd >= 0 && listen_same_addr(o, l))
			return o;
	}
	return NULL;
}

/* Undo a failed bind: give borrowed sockets back, close our own. */
static void
listen_unbind(struct ptl_cycle *cycle)
{
	size_t i;

	for (i = 0; i < cycle->nlisteners; i++) {
		struct ptl_listener *l = cycle->listeners[i];

		if (l->fd < 0)
			continue;
		if (l->taken_from != NULL) {
			l->taken_from->fd = l->fd;
			l->taken_from = NULL;
		} else {
			close(l->fd);
		}
		l->fd = -1;
	}
}

int
ptl_listeners_bind(struct ptl_cycle *new_cycle, struct ptl_cycle *old_cycle,
                   struct ptl_error *err)
{
	size_t i;

	for (i = 0; i < new_cycle->nlisteners; i++) {
		struct ptl_listener *l = new_cycle->listeners[i];
		struct ptl_listener *old;

		if (l->fd >= 0)
			continue;
		old = listen_find_old(old_cycle, l);
		if (old != NULL) {
			l->fd = old->fd;
			l->taken_from = old;
			old->fd = -1;
			/* The new generation may have a different backlog. */
			if (listen(l->fd, l->spec.backlog) < 0) {
				ptl_error_set_errno(err, errno, "listen %s",
				                    listen_text(l));
				listen_unbind(new_cycle);
				return PTL_ERROR;
			}
			continue;
		}
		if (listen_open(l, err) != PTL_OK) {
			listen_unbind(new_cycle);
			return PTL_ERROR;
		}
	}
	/* Committed: the old cycle no longer owns what we took. */
	for (i = 0; i < new_cycle->nlisteners; i++)
		new_cycle->listeners[i]->taken_from = NULL;
	return PTL_OK;
}

void
ptl_listeners_close(struct ptl_cycle *cycle)
{
	size_t i;

	if (cycle == NULL)
		return;
	for (i = 0; i < cycle->nlisteners; i++) {
		struct ptl_listener *l = cycle->listeners[i];

		if (l->fd >= 0)
			close(l->fd);
		l->fd = -1;
	}
}

static uint32_t
ip_hash(const struct ptl_ip_table *t, const unsigned char *addr, size_t len)
{
	uint32_t h = 2166136261u ^ t->seed;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= addr[i];
		h *= 16777619u;
	}
	h ^= h >> 15;
	return h;
}

/* Binary key of a peer; false for families we do not count. */
static bool
ip_key(const struct sockaddr *peer, sa_family_t *family_out,
       unsigned char addr_out[16], size_t *len_out)
{
	if (peer->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)peer;

		memcpy(addr_out, &sin->sin_addr, 4);
		*len_out = 4;
	} else if (peer->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)peer;

		memcpy(addr_out, &sin6->sin6_addr, 16);
		*len_out = 16;
	} else {
		return false;
	}
	*family_out = peer->sa_family;
	return true;
}

static struct ip_count **
ip_find(struct ptl_ip_table *t, const struct sockaddr *peer)
{
	unsigned char addr[16];
	struct ip_count **pp;
	sa_family_t family;
	size_t len;

	if (!ip_key(peer, &family, addr, &len))
		return NULL;
	pp = &t->buckets[ip_hash(t, addr, len) % IP_TABLE_BUCKETS];
	for (; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->family == family &&
		    memcmp((*pp)->addr, addr, len) == 0)
			return pp;
	}
	return pp; /* the empty tail: where a new entry goes */
}

static unsigned
ip_count_get(struct ptl_ip_table *t, const struct sockaddr *peer)
{
	struct ip_count **pp = ip_find(t, peer);

	return pp != NULL && *pp != NULL ? (*pp)->count : 0;
}

static int
ip_count_add(struct ptl_ip_table *t, const struct sockaddr *peer)
{
	struct ip_count **pp = ip_find(t, peer);
	struct ip_count *e;
	size_t len;

	if (pp == NULL)
		return PTL_OK;
	if (*pp != NULL) {
		(*pp)->count++;
		return PTL_OK;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return PTL_ERROR;
	(void)ip_key(peer, &e->family, e->addr, &len);
	e->count = 1;
	*pp = e;
	return PTL_OK;
}

static void
ip_count_del(struct ptl_ip_table *t, const struct sockaddr *peer)
{
	struct ip_count **pp = ip_find(t, peer);
	struct ip_count *e;

	if (pp == NULL || *pp == NULL)
		return;
	e = *pp;
	if (--e->count > 0)
		return;
	*pp = e->next;
	free(e);
}

static void
ip_table_free(struct ptl_ip_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < IP_TABLE_BUCKETS; i++) {
		while (t->buckets[i] != NULL) {
			struct ip_count *e = t->buckets[i];

			t->buckets[i] = e->next;
			free(e);
		}
	}
	free(t);
}

void
ptl_listener_conn_closed(struct ptl_listener *l, const struct sockaddr *peer)
{
	if (l == NULL)
		return;
	if (l->nconns > 0)
		l->nconns--;
	if (l->ips != NULL && peer != NULL)
		ip_count_del(l->ips, peer);
}

static void
peer_text(const struct sockaddr *peer, char *buf, size_t size)
{
	const void *src;

	if (peer->sa_family == AF_INET)
		src =
		    &((const struct sockaddr_in *)(const void *)peer)->sin_addr;
	else if (peer->sa_family == AF_INET6)
		src = &((const struct sockaddr_in6 *)(const void *)peer)
		           ->sin6_addr;
	else
		src = NULL;
	if (src == NULL ||
	    inet_ntop(peer->sa_family, src, buf, (socklen_t)size) == NULL)
		snprintf(buf, size, "?");
}

/*
 * Refusing means closing at once: the protocol module has not seen the
 * connection and cannot answer it. Logged at most once a second per
 * listener so that a flood does not flood the log too.
 */
static void
listen_refuse(struct ptl_listener *l, int fd, const struct sockaddr *peer,
              const char *limit, unsigned value)
{
	char ip[INET6_ADDRSTRLEN];
	int64_t now = ptl_now_ms();

	close(fd);
	if (l->limit_logged_ms != 0 &&
	    now - l->limit_logged_ms < LISTEN_LIMIT_LOG_MS) {
		l->limit_suppressed++;
		return;
	}
	peer_text(peer, ip, sizeof(ip));
	if (l->limit_suppressed > 0)
		ptl_log(PTL_LOG_INFO,
		        "listener %s: connection limit reached (%s %u), "
		        "refused %s (and %u more since the last message)",
		        listen_text(l), limit, value, ip, l->limit_suppressed);
	else
		ptl_log(PTL_LOG_INFO,
		        "listener %s: connection limit reached (%s %u), "
		        "refused %s",
		        listen_text(l), limit, value, ip);
	l->limit_logged_ms = now != 0 ? now : 1;
	l->limit_suppressed = 0;
}

static void listen_on_readable(struct ptl_io *io, unsigned events, void *arg);

static int
listen_watch(struct ptl_listener *l)
{
	l->io = ptl_io_add_exclusive(l->fd, listen_on_readable, l);
	return l->io != NULL ? PTL_OK : PTL_ERROR;
}

static void
listen_on_resume(struct ptl_timer *t, void *arg)
{
	struct ptl_listener *l = arg;

	(void)t;
	if (l->io != NULL || l->fd < 0)
		return;
	if (listen_watch(l) != PTL_OK) {
		/* Try again later rather than never accept again. */
		ptl_log(PTL_LOG_ERROR, "listener %s: cannot watch socket: %s",
		        listen_text(l), strerror(errno));
		ptl_timer_start(l->resume_timer, LISTEN_FD_PAUSE_MS);
	}
}

/* Out of descriptors: stop the level-triggered wakeups for a while. */
static void
listen_pause(struct ptl_listener *l, int errnum)
{
	if (!l->fd_limit_logged) {
		ptl_log(PTL_LOG_WARN,
		        "listener %s: accept: %s; pausing accepts for %d ms",
		        listen_text(l), strerror(errnum), LISTEN_FD_PAUSE_MS);
		l->fd_limit_logged = true;
	}
	if (l->resume_timer == NULL) {
		l->resume_timer = ptl_timer_new(listen_on_resume, l);
		if (l->resume_timer == NULL)
			return; /* keep watching: spins, but still serves */
	}
	ptl_io_remove(l->io);
	l->io = NULL;
	ptl_timer_start(l->resume_timer, LISTEN_FD_PAUSE_MS);
}

static void
listen_accept_one(struct ptl_listener *l, int fd,
                  const struct sockaddr_storage *ss, socklen_t len)
{
	const struct sockaddr *peer = (const struct sockaddr *)ss;
	struct ptl_conn *c;

	if (l->spec.max_connections > 0 &&
	    l->nconns >= l->spec.max_connections) {
		listen_refuse(l, fd, peer, "max_connections",
		              l->spec.max_connections);
		return;
	}
	if (l->ips != NULL &&
	    ip_count_get(l->ips, peer) >= l->spec.max_per_ip) {
		listen_refuse(l, fd, peer, "max_per_ip", l->spec.max_per_ip);
		return;
	}
	if (l->ips != NULL && ip_count_add(l->ips, peer) != PTL_OK) {
		ptl_log(PTL_LOG_ERROR, "listener %s: out of memory",
		        listen_text(l));
		close(fd);
		return;
	}
	c = ptl_conn_new_accepted(fd, l, peer, len);
	if (c == NULL) {
		if (l->ips != NULL)
			ip_count_del(l->ips, peer);
		return;
	}
	l->nconns++;
	l->on_accept(c, l->arg);
}

static void
listen_on_readable(struct ptl_io *io, unsigned events, void *arg)
{
	struct ptl_listener *l = arg;
	int i;

	(void)io;
	(void)events;
	for (i = 0; i < LISTEN_ACCEPT_BATCH && l->io != NULL; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd;

		fd = accept4(l->fd, (struct sockaddr *)&ss, &len,
		             SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			switch (errno) {
			case EINTR:
				continue;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				listen_pause(l, errno);
				return;
			case EAGAIN:
				return;
			default:
				/*
				 * ECONNABORTED, EPROTO, EPERM (firewall)...:
				 * that one connection failed, not the socket.
				 */
				ptl_log(PTL_LOG_DEBUG,
				        "listener %s: accept: %s",
				        listen_text(l), strerror(errno));
				continue;
			}
		}
		l->fd_limit_logged = false;
		listen_accept_one(l, fd, &ss, len);
	}
}

int
ptl_listeners_start(struct ptl_cycle *cycle, struct ptl_error *err)
{
	size_t i;

	for (i = 0; i < cycle->nlisteners; i++) {
		struct ptl_listener *l = cycle->listeners[i];

		if (l->fd < 0 || l->io != NULL)
			continue;
		if (l->spec.max_per_ip > 0 && l->ips == NULL) {
			l->ips = calloc(1, sizeof(*l->ips));
			if (l->ips == NULL)
				return ptl_error_set(err, "out of memory");
			if (getrandom(&l->ips->seed, sizeof(l->ips->seed),
			              GRND_NONBLOCK) != sizeof(l->ips->seed))
				l->ips->seed =
				    (uint32_t)getpid() ^ (uint32_t)ptl_now_ms();
		}
		if (listen_watch(l) != PTL_OK)
			return ptl_error_set_errno(err, errno,
			                           "listener %s: cannot watch "
			                           "socket",
			                           listen_text(l));
	}
	return PTL_OK;
}

void
ptl_listeners_stop(struct ptl_cycle *cycle)
{
	size_t i;

	if (cycle == NULL)
		return;
	for (i = 0; i < cycle->nlisteners; i++) {
		struct ptl_listener *l = cycle->listeners[i];

		ptl_io_remove(l->io);
		l->io = NULL;
		ptl_timer_free(l->resume_timer);
		l->resume_timer = NULL;
		/* Connections still open stop counting against it. */
		ip_table_free(l->ips);
		l->ips = NULL;
		if (l->fd >= 0)
			close(l->fd);
		l->fd = -1;
	}
}
