/* SPDX-License-Identifier: MIT */
/* Test module: a line protocol that drives the "resolver" service. */

/*
 * Protocol (one command per line, one reply line each):
 *   A|AAAA|MX|TXT|TLSA <name>   +OK <STATUS> ttl=N secure=0|1 cached=0|1
 *   PTR <ip>                        [canonical=NAME] [reason=TEXT]
 *                                   [| record]...
 *   MULTI <n> <TYPE> <name>     n identical lookups at once:
 *                               +OK n=<n> <STATUS of each, space separated>
 *   DROP <TYPE> <name>          start a lookup and cancel it at once:
 *                               +OK cancelled
 *   STATS                       +OK lookups=N hits=N misses=N joined=N
 *                               queries=N tempfails=N cancelled=N entries=N
 *   QUIT                        +OK bye
 * Records: A/AAAA "ip", MX "pref exchange" (exchange "." for the root),
 * TXT the data with bytes outside 0x21..0x7e and '|' '\' as \xHH,
 * PTR "name", TLSA "usage selector mtype hex".
 * A client that closes while its lookup runs cancels it (logged).
 * One command at a time: the next line waits for the running lookup.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <petrel/petrel.h>
#include <petrel/resolver.h>

#define PROBE_MAGIC     0x50524f42u /* "PROB" */
#define PROBE_REPLY_MAX 16384
#define PROBE_MULTI_MAX 16

struct probe_conf {
	struct ptl_conf_address listen;
};

static const struct ptl_conf_key probe_conf_keys[] = {
    {
        .name = "listen",
        .type = PTL_CONF_ADDRESS,
        .flags = PTL_CONF_REQUIRED,
        .offset = offsetof(struct probe_conf, listen),
        .doc = "Where the probe listens.",
    },
    {NULL},
};

static const struct ptl_service *probe_resolver;

struct probe_session {
	uint32_t magic;
	struct ptl_conn *conn;
	/* Lookups running; the next command waits for them. */
	struct ptl_dns_query *pending[PROBE_MULTI_MAX];
	unsigned npending;
	unsigned multi_total;
	char multi_reply[256];
	bool closing;
};

struct probe_slot {
	struct probe_session *s;
	unsigned index;
};

static const struct ptl_resolver_methods *
probe_methods(void)
{
	return probe_resolver->methods;
}

static void probe_read(struct probe_session *s);

static void
probe_send(struct probe_session *s, const char *text)
{
	if (s->closing)
		return;
	if (ptl_conn_write(s->conn, text, strlen(text)) == PTL_ERROR ||
	    ptl_conn_write(s->conn, "\r\n", 2) == PTL_ERROR) {
		s->closing = true;
		ptl_conn_abort(s->conn);
	}
}

static void probe_append(char *out, size_t *used, const char *fmt, ...)
    PTL_PRINTF(3, 4);

static void
probe_append(char *out, size_t *used, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*used >= PROBE_REPLY_MAX - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(out + *used, PROBE_REPLY_MAX - *used, fmt, ap);
	va_end(ap);
	if (n > 0)
		*used += (size_t)n;
	if (*used > PROBE_REPLY_MAX - 1)
		*used = PROBE_REPLY_MAX - 1;
}

static void
probe_append_bytes(char *out, size_t *used, const unsigned char *data,
                   size_t len, bool hex_only)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = data[i];

		if (hex_only)
			probe_append(out, used, "%02x", c);
		else if (c < 0x21 || c > 0x7e || c == '|' || c == '\\')
			probe_append(out, used, "\\x%02x", c);
		else
			probe_append(out, used, "%c", c);
	}
}

static void
probe_format(const struct ptl_dns_result *res, char *out)
{
	char ip[INET6_ADDRSTRLEN];
	size_t used = 0;

	probe_append(out, &used, "+OK %s ttl=%u secure=%d cached=%d",
	             res->status == PTL_DNS_OK         ? "OK"
	             : res->status == PTL_DNS_NXDOMAIN ? "NXDOMAIN"
	             : res->status == PTL_DNS_NODATA   ? "NODATA"
	             : res->status == PTL_DNS_TEMPFAIL ? "TEMPFAIL"
	                                               : "PERMFAIL",
	             res->ttl, res->secure ? 1 : 0, res->cached ? 1 : 0);
	if (res->canonical != NULL && strcmp(res->canonical, res->name) != 0)
		probe_append(out, &used, " canonical=%s", res->canonical);
	if (res->reason != NULL) {
		probe_append(out, &used, " reason=");
		probe_append_bytes(out, &used,
		                   (const unsigned char *)res->reason,
		                   strlen(res->reason), false);
	}
	for (size_t i = 0; i < res->count; i++) {
		probe_append(out, &used, " | ");
		switch (res->type) {
		case PTL_DNS_A:
		case PTL_DNS_AAAA:
			(void)inet_ntop(res->addrs[i].family,
			                &res->addrs[i].in6, ip, sizeof(ip));
			probe_append(out, &used, "%s", ip);
			break;
		case PTL_DNS_MX:
			probe_append(out, &used, "%u %s", res->mx[i].preference,
			             res->mx[i].exchange[0] != '\0'
			                 ? res->mx[i].exchange
			                 : ".");
			break;
		case PTL_DNS_TXT:
			probe_append_bytes(
			    out, &used, (const unsigned char *)res->txt[i].data,
			    res->txt[i].len, false);
			break;
		case PTL_DNS_PTR:
			probe_append(out, &used, "%s", res->ptr[i]);
			break;
		case PTL_DNS_TLSA:
			probe_append(out, &used, "%u %u %u ",
			             res->tlsa[i].usage, res->tlsa[i].selector,
			             res->tlsa[i].mtype);
			probe_append_bytes(out, &used, res->tlsa[i].data,
			                   res->tlsa[i].len, true);
			break;
		}
	}
}

/*
 * Lines that arrived meanwhile stay buffered: reading is not paused, so
 * that a client closing during a lookup is seen (EOF) and cancels it.
 */
static void
probe_finish(struct probe_session *s)
{
	if (s->npending == 0 && !s->closing)
		probe_read(s);
}

static void
probe_done(const struct ptl_dns_result *res, void *arg)
{
	struct probe_slot *slot = arg;
	struct probe_session *s = slot->s;
	char *reply;

	if (s->magic != PROBE_MAGIC) {
		/* Would be a completion after cancel: the contract says
		 * never. The tests look for this line. */
		ptl_log(PTL_LOG_ERROR, "resolver_probe: completion for a "
		                       "finished session");
		return;
	}
	s->pending[slot->index] = NULL;
	s->npending--;
	if (s->multi_total > 0) {
		size_t used = strlen(s->multi_reply);

		(void)snprintf(s->multi_reply + used,
		               sizeof(s->multi_reply) - used, " %s",
		               res->status == PTL_DNS_OK ? "OK" : "FAIL");
		if (s->npending == 0) {
			s->multi_total = 0;
			probe_send(s, s->multi_reply);
		}
		probe_finish(s);
		return;
	}
	reply = malloc(PROBE_REPLY_MAX);
	if (reply == NULL) {
		probe_send(s, "-ERR out of memory");
	} else {
		probe_format(res, reply);
		probe_send(s, reply);
		free(reply);
	}
	probe_finish(s);
}

static int
probe_type(const char *verb, size_t len, enum ptl_dns_type *type_out)
{
	static const struct {
		const char *name;
		enum ptl_dns_type type;
	} types[] = {
	    {"A", PTL_DNS_A},     {"AAAA", PTL_DNS_AAAA},
	    {"MX", PTL_DNS_MX},   {"TXT", PTL_DNS_TXT},
	    {"PTR", PTL_DNS_PTR}, {"TLSA", PTL_DNS_TLSA},
	};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strlen(types[i].name) == len &&
		    strncasecmp(types[i].name, verb, len) == 0) {
			*type_out = types[i].type;
			return PTL_OK;
		}
	}
	return PTL_ERROR;
}

/* Start one lookup into slot @index; PTR takes an IP address. */
static int
probe_start(struct probe_session *s, enum ptl_dns_type type, const char *arg,
            unsigned index)
{
	const struct ptl_resolver_methods *m = probe_methods();
	struct probe_slot *slot;
	struct sockaddr_storage ss;
	int rc;

	slot = ptl_palloc(ptl_conn_pool(s->conn), sizeof(*slot));
	if (slot == NULL)
		return PTL_ERROR;
	slot->s = s;
	slot->index = index;
	memset(&ss, 0, sizeof(ss));
	if (type == PTL_DNS_PTR) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		if (inet_pton(AF_INET, arg, &sin->sin_addr) == 1)
			sin->sin_family = AF_INET;
		else if (inet_pton(AF_INET6, arg, &sin6->sin6_addr) == 1)
			sin6->sin6_family = AF_INET6;
		else
			return PTL_DECLINED;
		rc = m->lookup_ptr(probe_resolver->instance,
		                   (struct sockaddr *)&ss, probe_done, slot,
		                   &s->pending[index]);
	} else {
		rc = m->lookup(probe_resolver->instance, arg, type, probe_done,
		               slot, &s->pending[index]);
	}
	if (rc != PTL_AGAIN)
		return PTL_ERROR;
	s->npending++;
	return PTL_OK;
}

static void
probe_cmd_stats(struct probe_session *s)
{
	struct ptl_resolver_stats st;
	char text[512];

	probe_methods()->stats(probe_resolver->instance, &st);
	(void)snprintf(
	    text, sizeof(text),
	    "+OK lookups=%llu hits=%llu misses=%llu joined=%llu "
	    "queries=%llu tempfails=%llu cancelled=%llu "
	    "entries=%llu",
	    (unsigned long long)st.lookups, (unsigned long long)st.hits,
	    (unsigned long long)st.misses, (unsigned long long)st.joined,
	    (unsigned long long)st.queries, (unsigned long long)st.tempfails,
	    (unsigned long long)st.cancelled, (unsigned long long)st.entries);
	probe_send(s, text);
}

/* "n TYPE name" */
static void
probe_cmd_multi(struct probe_session *s, char *arg)
{
	enum ptl_dns_type type;
	char *verb, *name, *end;
	unsigned long n;

	n = strtoul(arg, &end, 10);
	verb = end + (*end == ' ');
	name = strchr(verb, ' ');
	if (n == 0 || n > PROBE_MULTI_MAX || *end != ' ' || name == NULL ||
	    probe_type(verb, (size_t)(name - verb), &type) != PTL_OK) {
		probe_send(s, "-ERR usage: MULTI n TYPE name");
		return;
	}
	name++;
	(void)snprintf(s->multi_reply, sizeof(s->multi_reply), "+OK n=%lu", n);
	s->multi_total = (unsigned)n;
	for (unsigned i = 0; i < n; i++) {
		if (probe_start(s, type, name, i) != PTL_OK) {
			probe_send(s, "-ERR lookup not started");
			ptl_conn_abort(s->conn);
			s->closing = true;
			return;
		}
	}
}

static void
probe_cmd_drop(struct probe_session *s, char *arg)
{
	enum ptl_dns_type type;
	char *name = strchr(arg, ' ');

	if (name == NULL ||
	    probe_type(arg, (size_t)(name - arg), &type) != PTL_OK ||
	    probe_start(s, type, name + 1, 0) != PTL_OK) {
		probe_send(s, "-ERR usage: DROP TYPE name");
		return;
	}
	probe_methods()->cancel(probe_resolver->instance, s->pending[0]);
	s->pending[0] = NULL;
	s->npending--;
	probe_send(s, "+OK cancelled");
}

static void
probe_dispatch(struct probe_session *s, char *line)
{
	enum ptl_dns_type type;
	char *space = strchr(line, ' ');
	size_t verb_len = space ? (size_t)(space - line) : strlen(line);
	int rc;

	if (strcasecmp(line, "STATS") == 0) {
		probe_cmd_stats(s);
		return;
	}
	if (strcasecmp(line, "QUIT") == 0) {
		probe_send(s, "+OK bye");
		s->closing = true;
		ptl_conn_close(s->conn);
		return;
	}
	if (space != NULL && verb_len == 5 &&
	    strncasecmp(line, "MULTI", 5) == 0) {
		probe_cmd_multi(s, space + 1);
		return;
	}
	if (space != NULL && verb_len == 4 &&
	    strncasecmp(line, "DROP", 4) == 0) {
		probe_cmd_drop(s, space + 1);
		return;
	}
	if (space == NULL || probe_type(line, verb_len, &type) != PTL_OK) {
		probe_send(s, "-ERR unknown command");
		return;
	}
	rc = probe_start(s, type, space + 1, 0);
	if (rc == PTL_DECLINED) {
		probe_send(s, "-ERR not an IP address");
		return;
	}
	if (rc != PTL_OK) {
		probe_send(s, "-ERR lookup not started");
		return;
	}
	/* One lookup at a time: the next command waits for the answer. */
}

static void
probe_read(struct probe_session *s)
{
	const char *line;
	char buf[1100];
	size_t len;
	int rc;

	while (!s->closing && s->npending == 0) {
		rc = ptl_conn_read_line(s->conn, &line, &len);
		if (rc == PTL_AGAIN)
			return;
		if (rc == PTL_DECLINED) {
			probe_send(s, "-ERR line too long");
			continue;
		}
		if (rc != PTL_OK) {
			ptl_conn_abort(s->conn);
			return;
		}
		len--;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len >= sizeof(buf)) {
			probe_send(s, "-ERR line too long");
			continue;
		}
		memcpy(buf, line, len);
		buf[len] = '\0';
		probe_dispatch(s, buf);
	}
}

static void
probe_handler(struct ptl_conn *c, enum ptl_conn_event ev, void *arg)
{
	struct probe_session *s = arg;

	switch (ev) {
	case PTL_CONN_READ:
	case PTL_CONN_DRAINED:
		probe_read(s);
		break;
	case PTL_CONN_TIMEOUT:
	case PTL_CONN_EOF:
		s->closing = true;
		ptl_conn_close(c);
		break;
	case PTL_CONN_CLOSED:
		for (unsigned i = 0; i < PROBE_MULTI_MAX; i++) {
			if (s->pending[i] == NULL)
				continue;
			probe_methods()->cancel(probe_resolver->instance,
			                        s->pending[i]);
			s->pending[i] = NULL;
			ptl_log(PTL_LOG_INFO,
			        "resolver_probe: lookup cancelled at close");
		}
		s->magic = 0;
		break;
	case PTL_CONN_TLS_READY:
	case PTL_CONN_ERROR:
	case PTL_CONN_CONNECTED:
		break;
	}
}

static void
probe_accept(struct ptl_conn *c, void *arg)
{
	struct probe_session *s = ptl_pcalloc(ptl_conn_pool(c), sizeof(*s));

	if (s == NULL || probe_resolver == NULL) {
		ptl_conn_abort(c);
		return;
	}
	s->magic = PROBE_MAGIC;
	s->conn = c;
	ptl_conn_set_handler(c, probe_handler, s);
	probe_send(s, "+OK resolver probe");
}

static int
probe_init_master(struct ptl_instance *inst, struct ptl_error *err)
{
	const struct probe_conf *conf = ptl_instance_conf(inst);
	struct ptl_listen_spec spec;

	memset(&spec, 0, sizeof(spec));
	spec.address = conf->listen;
	spec.limits.max_line = 1100;
	return ptl_listener_add(inst, &spec, probe_accept, NULL, err);
}

static int
probe_init_worker(struct ptl_instance *inst, struct ptl_error *err)
{
	probe_resolver =
	    ptl_service_find(PTL_RESOLVER_SERVICE, PTL_RESOLVER_VERSION);
	if (probe_resolver == NULL)
		return ptl_error_set(err, "service resolver v1 not found");
	return PTL_OK;
}

static const struct ptl_service_ref probe_needs[] = {
    {PTL_RESOLVER_SERVICE, PTL_RESOLVER_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "resolver_probe",
    .version = "0",
    .description = "test driver of the resolver service",
    .license = "MIT",
    .needs = probe_needs,
    .conf_keys = probe_conf_keys,
    .conf_size = sizeof(struct probe_conf),
    .init_master = probe_init_master,
    .init_worker = probe_init_worker,
};
