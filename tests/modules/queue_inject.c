/* SPDX-License-Identifier: MIT */
/* Test module: enqueue messages through the "queue" service on request. */

/*
 * Drives the queue in a real worker before the SMTP module is wired to
 * it. Config: {"listen": "host:port"}. Protocol (CRLF lines):
 *
 *   ENQUEUE <from> <rcpt>[,<rcpt>...] <size> [OPTION...]
 *   <size bytes of message>
 *       -> +OK <queue id> | -ERR <reason>
 *
 * <from> "<>" is the null sender. Options: RET=FULL|HDRS, ENVID=x,
 * NOTIFY=SUCCESS+FAILURE+DELAY|NEVER (for every recipient),
 * ORCPT=rfc822;x (for every recipient), SMTPUTF8, 8BITMIME.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/mman.h>

#include <petrel/petrel.h>
#include <petrel/queue.h>

#define INJECT_RCPTS_MAX 1000
#define INJECT_LINE_MAX  65536

struct inject_conf {
	struct ptl_conf_address listen;
};

static const struct ptl_conf_key inject_keys[] = {
    {
        .name = "listen",
        .type = PTL_CONF_ADDRESS,
        .flags = PTL_CONF_REQUIRED,
        .offset = offsetof(struct inject_conf, listen),
        .doc = "where to listen",
    },
    {NULL},
};

struct inject_session {
	struct ptl_conn *conn; /* NULL once closed */
	bool busy;             /* an enqueue is running */
	int fd;                /* the message being received, or -1 */
	uint64_t want, got;
	struct ptl_queue_message msg;
	struct ptl_queue_rcpt rcpts[INJECT_RCPTS_MAX];
	char line[INJECT_LINE_MAX];
};

static void inject_read(struct inject_session *s);

static void
inject_say(struct inject_session *s, const char *text)
{
	if (s->conn != NULL &&
	    ptl_conn_write(s->conn, text, strlen(text)) == PTL_ERROR)
		ptl_conn_abort(s->conn);
}

static void
inject_reset(struct inject_session *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->want = s->got = 0;
}

static void
inject_done(enum ptl_queue_status status, const char *queue_id,
            const char *reason, void *arg)
{
	struct inject_session *s = arg;
	char text[256];

	s->busy = false;
	inject_reset(s);
	if (status == PTL_QUEUE_OK)
		(void)snprintf(text, sizeof(text), "+OK %s\r\n", queue_id);
	else
		(void)snprintf(text, sizeof(text), "-ERR %s\r\n",
		               reason ? reason : "failed");
	inject_say(s, text);
	if (s->conn != NULL) {
		ptl_conn_resume(s->conn);
		inject_read(s);
	}
}

static unsigned
inject_notify(const char *v)
{
	unsigned n = 0;

	if (strstr(v, "NEVER"))
		n |= PTL_DSN_NOTIFY_NEVER;
	if (strstr(v, "SUCCESS"))
		n |= PTL_DSN_NOTIFY_SUCCESS;
	if (strstr(v, "FAILURE"))
		n |= PTL_DSN_NOTIFY_FAILURE;
	if (strstr(v, "DELAY"))
		n |= PTL_DSN_NOTIFY_DELAY;
	return n;
}

/* Parse the ENQUEUE line in s->line (modified in place). */
static int
inject_parse(struct inject_session *s)
{
	char *save = NULL, *from, *rcpts, *size, *opt, *r, *save2 = NULL;
	unsigned notify = 0;
	const char *orcpt = NULL;
	size_t n = 0, i;

	memset(&s->msg, 0, sizeof(s->msg));
	if (strncmp(s->line, "ENQUEUE ", 8) != 0 ||
	    (from = strtok_r(s->line + 8, " ", &save)) == NULL ||
	    (rcpts = strtok_r(NULL, " ", &save)) == NULL ||
	    (size = strtok_r(NULL, " ", &save)) == NULL)
		return -1;
	while ((opt = strtok_r(NULL, " ", &save)) != NULL) {
		if (strncmp(opt, "RET=", 4) == 0)
			s->msg.ret = strcmp(opt + 4, "FULL") == 0
			                 ? PTL_DSN_RET_FULL
			                 : PTL_DSN_RET_HDRS;
		else if (strncmp(opt, "ENVID=", 6) == 0)
			s->msg.envid = opt + 6;
		else if (strncmp(opt, "NOTIFY=", 7) == 0)
			notify = inject_notify(opt + 7);
		else if (strncmp(opt, "ORCPT=", 6) == 0)
			orcpt = opt + 6;
		else if (strcmp(opt, "SMTPUTF8") == 0)
			s->msg.smtputf8 = true;
		else if (strcmp(opt, "8BITMIME") == 0)
			s->msg.body = PTL_BODY_8BITMIME;
		else
			return -1;
	}
	for (r = strtok_r(rcpts, ",", &save2);
	     r != NULL && n < INJECT_RCPTS_MAX; r = strtok_r(NULL, ",", &save2))
		s->rcpts[n++].address = r;
	for (i = 0; i < n; i++) {
		s->rcpts[i].notify = notify;
		s->rcpts[i].orcpt = orcpt;
	}
	s->msg.mail_from = strcmp(from, "<>") == 0 ? "" : from;
	s->msg.rcpts = s->rcpts;
	s->msg.nrcpts = n;
	s->msg.received_at = ptl_wall_time();
	s->msg.client_ip = "127.0.0.1";
	s->want = strtoull(size, NULL, 10);
	return n > 0 ? 0 : -1;
}

static void
inject_enqueue(struct inject_session *s)
{
	const struct ptl_service *svc;
	const struct ptl_queue_methods *qm;

	svc = ptl_service_find(PTL_QUEUE_SERVICE, PTL_QUEUE_VERSION);
	if (svc == NULL) {
		inject_reset(s);
		inject_say(s, "-ERR no queue service\r\n");
		return;
	}
	qm = svc->methods;
	s->msg.fd = s->fd;
	s->msg.size = s->got;
	s->busy = true;
	ptl_conn_pause(s->conn);
	if (qm->enqueue(svc->instance, &s->msg, inject_done, s) != PTL_AGAIN) {
		s->busy = false;
		ptl_conn_resume(s->conn);
		inject_reset(s);
		inject_say(s, "-ERR enqueue refused\r\n");
	}
}

static void
inject_read(struct inject_session *s)
{
	const char *data;
	size_t len, take;

	while (s->conn != NULL && !s->busy) {
		if (s->fd >= 0) {
			len = ptl_conn_peek(s->conn, &data);
			if (len == 0 && s->got < s->want)
				return;
			take = s->want - s->got < len
			           ? (size_t)(s->want - s->got)
			           : len;
			if (take > 0 &&
			    write(s->fd, data, take) != (ssize_t)take) {
				inject_reset(s);
				inject_say(s, "-ERR write\r\n");
				continue;
			}
			ptl_conn_consume(s->conn, take);
			s->got += take;
			if (s->got == s->want)
				inject_enqueue(s);
			continue;
		}
		if (ptl_conn_read_line(s->conn, &data, &len) != PTL_OK)
			return;
		while (len > 0 &&
		       (data[len - 1] == '\n' || data[len - 1] == '\r'))
			len--;
		if (len >= sizeof(s->line))
			len = sizeof(s->line) - 1;
		memcpy(s->line, data, len);
		s->line[len] = '\0';
		if (strcmp(s->line, "QUIT") == 0) {
			inject_say(s, "+OK bye\r\n");
			ptl_conn_close(s->conn);
			return;
		}
		if (inject_parse(s) != 0) {
			inject_say(s, "-ERR syntax\r\n");
			continue;
		}
		s->fd = memfd_create("inject", MFD_CLOEXEC);
		if (s->fd < 0) {
			inject_say(s, "-ERR memfd\r\n");
			continue;
		}
		if (s->want == 0)
			inject_enqueue(s);
	}
}

static void
inject_handler(struct ptl_conn *c, enum ptl_conn_event ev, void *arg)
{
	struct inject_session *s = arg;
	const struct ptl_service *svc;

	switch (ev) {
	case PTL_CONN_READ:
		inject_read(s);
		break;
	case PTL_CONN_EOF:
	case PTL_CONN_TIMEOUT:
		ptl_conn_close(c);
		break;
	case PTL_CONN_CLOSED:
		s->conn = NULL;
		if (s->busy) {
			/* The queue must not call back into a freed session;
			 * the message may still be queued. */
			svc = ptl_service_find(PTL_QUEUE_SERVICE,
			                       PTL_QUEUE_VERSION);
			if (svc != NULL)
				((const struct ptl_queue_methods *)svc->methods)
				    ->cancel(svc->instance, s);
		}
		inject_reset(s);
		free(s);
		break;
	default:
		break;
	}
}

static void
inject_accept(struct ptl_conn *c, void *arg)
{
	struct inject_session *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		ptl_conn_abort(c);
		return;
	}
	s->conn = c;
	s->fd = -1;
	ptl_conn_set_handler(c, inject_handler, s);
	inject_say(s, "+OK queue_inject ready\r\n");
}

static int
inject_init_master(struct ptl_instance *inst, struct ptl_error *err)
{
	const struct inject_conf *conf = ptl_instance_conf(inst);
	struct ptl_listen_spec spec;

	memset(&spec, 0, sizeof(spec));
	spec.address = conf->listen;
	spec.limits.max_line = INJECT_LINE_MAX;
	return ptl_listener_add(inst, &spec, inject_accept, inst, err);
}

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "queue_inject",
    .version = "1.0",
    .description = "test: enqueue messages from a line protocol",
    .license = "MIT",
    .conf_keys = inject_keys,
    .conf_size = sizeof(struct inject_conf),
    .init_master = inject_init_master,
};
