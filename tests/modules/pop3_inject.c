/* SPDX-License-Identifier: MIT */
/* Test module: deliver files through the storage service on request. */

/*
 * Lets POP3 tests fill a mailbox through whichever storage backend is
 * configured, before the SMTP module can. Config: {"listen": "host:port"}.
 * Protocol, one line each way:
 *   DELIVER <user> <absolute file path>   ->  +OK | -ERR <reason>
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <petrel/petrel.h>

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
	struct ptl_instance *inst;
	bool busy;
	int fd;
};

static void inject_read(struct inject_session *s);

static void
inject_say(struct inject_session *s, const char *text)
{
	if (ptl_conn_write(s->conn, text, strlen(text)) == PTL_ERROR)
		ptl_conn_abort(s->conn);
}

static void
inject_free_if_idle(struct inject_session *s)
{
	if (s->conn == NULL && !s->busy)
		free(s);
}

static void
inject_done(const struct ptl_storage_result *res, void *arg)
{
	struct inject_session *s = arg;

	s->busy = false;
	close(s->fd);
	s->fd = -1;
	if (s->conn == NULL) {
		inject_free_if_idle(s);
		return;
	}
	if (res->status == PTL_STORAGE_OK) {
		inject_say(s, "+OK\r\n");
	} else {
		char line[512];

		(void)snprintf(line, sizeof(line), "-ERR %d %s\r\n",
		               (int)res->status,
		               res->reason ? res->reason : "");
		inject_say(s, line);
	}
	ptl_conn_resume(s->conn);
}

static void
inject_line(struct inject_session *s, char *line)
{
	const struct ptl_service *svc;
	const struct ptl_storage_methods *st;
	struct ptl_storage_delivery d;
	char *user, *path;
	struct stat sb;

	if (strncmp(line, "DELIVER ", 8) != 0 ||
	    (user = strtok(line + 8, " ")) == NULL ||
	    (path = strtok(NULL, " ")) == NULL) {
		inject_say(s, "-ERR syntax\r\n");
		return;
	}
	svc = ptl_service_find(PTL_STORAGE_SERVICE, PTL_STORAGE_VERSION);
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (svc == NULL || s->fd < 0 || fstat(s->fd, &sb) != 0) {
		if (s->fd >= 0)
			close(s->fd);
		s->fd = -1;
		inject_say(s, "-ERR cannot open\r\n");
		return;
	}
	st = svc->methods;
	memset(&d, 0, sizeof(d));
	d.user = user;
	d.fd = s->fd;
	d.size = (uint64_t)sb.st_size;
	d.envelope_from = "";
	d.received_at = ptl_wall_time();
	s->busy = true;
	ptl_conn_pause(s->conn);
	if (st->deliver(svc->instance, &d, inject_done, s) == PTL_ERROR) {
		s->busy = false;
		close(s->fd);
		s->fd = -1;
		ptl_conn_resume(s->conn);
		inject_say(s, "-ERR deliver refused\r\n");
	}
}

static void
inject_read(struct inject_session *s)
{
	const char *line;
	char copy[8192];
	size_t len;

	while (s->conn != NULL && !s->busy &&
	       ptl_conn_read_line(s->conn, &line, &len) == PTL_OK) {
		while (len > 0 &&
		       (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (len >= sizeof(copy))
			len = sizeof(copy) - 1;
		memcpy(copy, line, len);
		copy[len] = '\0';
		inject_line(s, copy);
	}
}

static void
inject_handler(struct ptl_conn *c, enum ptl_conn_event ev, void *arg)
{
	struct inject_session *s = arg;

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
		inject_free_if_idle(s);
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
	s->inst = arg;
	s->fd = -1;
	ptl_conn_set_handler(c, inject_handler, s);
}

static int
inject_init_master(struct ptl_instance *inst, struct ptl_error *err)
{
	const struct inject_conf *conf = ptl_instance_conf(inst);
	struct ptl_listen_spec spec;

	memset(&spec, 0, sizeof(spec));
	spec.address = conf->listen;
	spec.limits.max_line = 8192;
	return ptl_listener_add(inst, &spec, inject_accept, inst, err);
}

static const struct ptl_service_ref inject_needs[] = {
    {PTL_STORAGE_SERVICE, PTL_STORAGE_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "pop3_inject",
    .version = "1.0",
    .description = "test helper delivering files through storage",
    .license = "MIT",
    .needs = inject_needs,
    .conf_keys = inject_keys,
    .conf_size = sizeof(struct inject_conf),
    .init_master = inject_init_master,
};
