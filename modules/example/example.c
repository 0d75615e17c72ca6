/* SPDX-License-Identifier: MIT */
/* Example module: a line echo service, and the model for plugin authors. */

/*
 * A Petrel module is one shared object exporting one descriptor,
 * `petrel_module` (at the end of this file). Everything else is static:
 * modules are built with -fvisibility=hidden and meet each other only
 * through the service registry.
 *
 * This module shows each part a real module has:
 *   1. a config struct filled by a key table (no parsing code),
 *   2. check_config for rules across keys,
 *   3. init_master declaring listeners and registering a service,
 *   4. a protocol session: magic, phase, command table, resumable reads.
 *
 * Protocol (lines end in CRLF; a bare LF is accepted):
 *   on connect      +OK <greeting>   (after the handshake on implicit TLS)
 *   ECHO <text>     +OK <text>
 *   PID             +OK <pid of the worker serving the connection>
 *   TLS             +OK <TLS version> <cipher>, or +OK none
 *   STARTTLS        +OK begin TLS, then the TLS handshake
 *   QUIT            +OK bye, then the connection closes
 *   anything else   -ERR unknown command
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <petrel/petrel.h>

/* ---- 1. Configuration ------------------------------------------------ */

enum example_tls {
	EXAMPLE_TLS_NONE = 0, /* index in example_tls_names */
	EXAMPLE_TLS_IMPLICIT = 1,
};

/* One item of "listen": filled by example_listen_keys. */
struct example_listen_conf {
	struct ptl_conf_address address;
	int tls; /* enum example_tls */
};

/* The whole section: filled by example_conf_keys. */
struct example_conf {
	struct ptl_conf_list listen; /* struct example_listen_conf */
	const char *greeting;
	int64_t max_line;
};

static const char *const example_tls_names[] = {"none", "implicit", NULL};

/*
 * The greeting is sent as one protocol line: a CR or LF in it would let
 * the config inject extra replies.
 */
static int
example_validate_greeting(const json_t *value, void *field,
                          struct ptl_error *err)
{
	const char *text = *(const char **)field;

	for (; text != NULL && *text != '\0'; text++) {
		if ((unsigned char)*text < 0x20 || *text == 0x7f)
			return ptl_error_set(err, "control characters are not "
			                          "allowed");
	}
	return PTL_OK;
}

static const struct ptl_conf_key example_listen_keys[] = {
    {
        .name = "address",
        .type = PTL_CONF_ADDRESS,
        .flags = PTL_CONF_REQUIRED,
        .offset = offsetof(struct example_listen_conf, address),
        .doc = "Where to listen: \"host:port\", \"[v6]:port\" or "
               "\"*:port\".",
    },
    {
        .name = "tls",
        .type = PTL_CONF_ENUM,
        .offset = offsetof(struct example_listen_conf, tls),
        .def = "none",
        .enum_names = example_tls_names,
        .doc = "\"implicit\": TLS from the first byte; \"none\": "
               "plaintext, STARTTLS upgrades.",
    },
    {NULL},
};

static const struct ptl_conf_key example_conf_keys[] = {
    {
        .name = "listen",
        .type = PTL_CONF_OBJECT_LIST,
        .flags = PTL_CONF_REQUIRED,
        .offset = offsetof(struct example_conf, listen),
        .min = 1,
        .max = 16,
        .sub = example_listen_keys,
        .sub_size = sizeof(struct example_listen_conf),
        .doc = "Listening sockets: {\"address\", \"tls\"}, 1 to 16.",
    },
    {
        .name = "greeting",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct example_conf, greeting),
        .def = "petrel example ready",
        .validate = example_validate_greeting,
        .doc = "Text of the +OK line sent on connect.",
    },
    {
        .name = "max_line",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct example_conf, max_line),
        .def = "1024",
        .min = 16,
        .max = 65536,
        .doc = "Longest command line in bytes, CRLF included.",
    },
    {NULL},
};

/*
 * The key table checked each key alone; rules that involve several keys
 * go here. Pure: `petrel -t` and reloads run it without side effects.
 * A path in err is relative to this module's section.
 */
static int
example_check_config(struct ptl_instance *inst, const json_t *section,
                     void *conf_ptr, struct ptl_error *err)
{
	const struct example_conf *conf = conf_ptr;
	const struct example_listen_conf *items = conf->listen.items;
	char path[64];
	size_t i, j;

	for (i = 0; i < conf->listen.count; i++) {
		for (j = 0; j < i; j++) {
			if (items[i].address.port != items[j].address.port ||
			    strcmp(items[i].address.host,
			           items[j].address.host) != 0)
				continue;
			(void)snprintf(path, sizeof(path),
			               "listen[%zu].address", i);
			return ptl_error_set_path(err, path,
			                          "address \"%s\" is listed "
			                          "twice",
			                          items[i].address.text);
		}
	}
	return PTL_OK;
}

/* ---- 2. The service this module provides ---------------------------- */

/*
 * The interface of "example_svc" v1. A real interface lives in a header
 * under include/petrel/ (like storage.h) so that other modules can include it;
 * it starts with `version`, and new methods are only ever appended (a
 * caller checks `version` before using them).
 */
struct example_svc_methods {
	unsigned version;
	const char *(*greeting)(void *inst);
};

static const char *
example_svc_greeting(void *inst)
{
	const struct example_conf *conf = ptl_instance_conf(inst);

	return conf->greeting;
}

static const struct example_svc_methods example_svc_methods = {
    .version = 1,
    .greeting = example_svc_greeting,
};

/* ---- 3. Protocol session -------------------------------------------- */

/* "EXMP": catches a stale or foreign pointer passed as the session. */
#define EXAMPLE_SESSION_MAGIC 0x45584d50u

enum example_phase {
	EXAMPLE_PHASE_HANDSHAKE, /* implicit TLS: greet once it is up */
	EXAMPLE_PHASE_COMMAND,   /* reading command lines */
	EXAMPLE_PHASE_STARTTLS,  /* "+OK begin TLS" sent, handshake running */
	EXAMPLE_PHASE_CLOSING,   /* QUIT or timeout: read nothing more */
};

struct example_session {
	uint32_t magic;
	enum example_phase phase;
	/* The output queue is over its high-water mark: wait for DRAINED. */
	bool blocked;
	struct ptl_conn *conn;
	const struct example_conf *conf;
};

/* What ptl_listener_add() hands back to example_accept(). */
struct example_listener {
	const struct example_conf *conf;
	bool implicit_tls;
};

/*
 * Queue one reply line. PTL_AGAIN means it was queued but the client is
 * not reading: stop taking commands until DRAINED, so that a client that
 * pipelines without reading cannot make the worker buffer without end.
 */
static void
example_reply_parts(struct example_session *s, const char *a, size_t alen,
                    const char *b, size_t blen)
{
	int rc = ptl_conn_write(s->conn, a, alen);

	if (rc != PTL_ERROR && blen > 0)
		rc = ptl_conn_write(s->conn, b, blen);
	if (rc != PTL_ERROR)
		rc = ptl_conn_write(s->conn, "\r\n", 2);
	if (rc == PTL_AGAIN) {
		s->blocked = true;
	} else if (rc == PTL_ERROR) {
		/* Out of memory or already closing: end this connection only.
		 */
		s->phase = EXAMPLE_PHASE_CLOSING;
		ptl_conn_abort(s->conn);
	}
}

static void
example_reply(struct example_session *s, const char *text)
{
	example_reply_parts(s, text, strlen(text), NULL, 0);
}

static void
example_greet(struct example_session *s)
{
	example_reply_parts(s, "+OK ", 4, s->conf->greeting,
	                    strlen(s->conf->greeting));
}

/* Command flags. */
#define EXAMPLE_CMD_ARG     0x1u /* takes text after "VERB " */
#define EXAMPLE_CMD_PRE_TLS 0x2u /* refused once the connection is TLS */

struct example_command {
	const char *verb;
	unsigned flags;
	void (*proceed)(struct example_session *s, const char *arg,
	                size_t arg_len);
};

static void
example_cmd_echo(struct example_session *s, const char *arg, size_t arg_len)
{
	/* Written as bytes, not with "%s": the text may contain a NUL. */
	example_reply_parts(s, "+OK ", arg_len > 0 ? 4 : 3, arg, arg_len);
}

static void
example_cmd_pid(struct example_session *s, const char *arg, size_t arg_len)
{
	char text[32];

	(void)snprintf(text, sizeof(text), "+OK %ld", (long)getpid());
	example_reply(s, text);
}

static void
example_cmd_tls(struct example_session *s, const char *arg, size_t arg_len)
{
	const char *version = ptl_conn_tls_version(s->conn);
	const char *cipher = ptl_conn_tls_cipher(s->conn);
	char text[160];

	if (!ptl_conn_is_tls(s->conn) || version == NULL || cipher == NULL) {
		example_reply(s, "+OK none");
		return;
	}
	(void)snprintf(text, sizeof(text), "+OK %s %s", version, cipher);
	example_reply(s, text);
}

static void
example_cmd_starttls(struct example_session *s, const char *arg, size_t arg_len)
{
	struct ptl_error err;

	/*
	 * The reply is queued first and goes out in clear; the core then
	 * drops every byte the client sent after STARTTLS, so commands
	 * smuggled in the same packet never run inside TLS (CVE-2011-0411).
	 */
	example_reply(s, "+OK begin TLS");
	if (s->phase == EXAMPLE_PHASE_CLOSING)
		return;
	if (ptl_conn_starttls(s->conn, &err) != PTL_OK) {
		ptl_conn_log(s->conn, PTL_LOG_WARN, "STARTTLS failed: %s",
		             err.text);
		s->phase = EXAMPLE_PHASE_CLOSING;
		ptl_conn_abort(s->conn);
		return;
	}
	s->phase = EXAMPLE_PHASE_STARTTLS;
}

static void
example_cmd_quit(struct example_session *s, const char *arg, size_t arg_len)
{
	example_reply(s, "+OK bye");
	if (s->phase == EXAMPLE_PHASE_CLOSING)
		return;
	s->phase = EXAMPLE_PHASE_CLOSING;
	ptl_conn_close(s->conn);
}

static const struct example_command example_commands[] = {
    {"ECHO", EXAMPLE_CMD_ARG, example_cmd_echo},
    {"PID", 0, example_cmd_pid},
    {"TLS", 0, example_cmd_tls},
    {"STARTTLS", EXAMPLE_CMD_PRE_TLS, example_cmd_starttls},
    {"QUIT", 0, example_cmd_quit},
    {NULL, 0, NULL},
};

/* @line has its CRLF or LF removed. Verbs are case-insensitive. */
static void
example_dispatch(struct example_session *s, const char *line, size_t len)
{
	const struct example_command *cmd;
	const char *space = memchr(line, ' ', len);
	size_t verb_len = space ? (size_t)(space - line) : len;
	const char *arg = space ? space + 1 : line + len;
	size_t arg_len = (size_t)(line + len - arg);

	for (cmd = example_commands; cmd->verb != NULL; cmd++) {
		if (strlen(cmd->verb) == verb_len &&
		    strncasecmp(cmd->verb, line, verb_len) == 0)
			break;
	}
	if (cmd->verb == NULL ||
	    (space != NULL && !(cmd->flags & EXAMPLE_CMD_ARG))) {
		example_reply(s, "-ERR unknown command");
		return;
	}
	if ((cmd->flags & EXAMPLE_CMD_PRE_TLS) && ptl_conn_is_tls(s->conn)) {
		example_reply(s, "-ERR already");
		return;
	}
	cmd->proceed(s, arg, arg_len);
}

/*
 * Take every complete line that is buffered: a client may pipeline
 * several commands in one packet. Stops when a line is incomplete (the
 * next READ event resumes here), when the reply queue is full, or when a
 * command changed the phase (STARTTLS, QUIT).
 */
static void
example_read(struct example_session *s)
{
	const char *line;
	size_t len;
	int rc;

	while (s->phase == EXAMPLE_PHASE_COMMAND && !s->blocked) {
		rc = ptl_conn_read_line(s->conn, &line, &len);
		if (rc == PTL_AGAIN)
			return;
		if (rc == PTL_DECLINED) {
			/* The core already skipped the rest of that line. */
			example_reply(s, "-ERR line too long");
			continue;
		}
		if (rc != PTL_OK) {
			ptl_conn_abort(s->conn);
			return;
		}
		len--;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		example_dispatch(s, line, len);
	}
}

static void
example_conn_handler(struct ptl_conn *c, enum ptl_conn_event ev, void *arg)
{
	struct example_session *s = arg;

	if (s->magic != EXAMPLE_SESSION_MAGIC) {
		ptl_conn_log(c, PTL_LOG_ERROR, "example: bad session magic");
		if (ev != PTL_CONN_CLOSED)
			ptl_conn_abort(c);
		return;
	}
	switch (ev) {
	case PTL_CONN_READ:
		example_read(s);
		break;
	case PTL_CONN_DRAINED:
		s->blocked = false;
		example_read(s);
		break;
	case PTL_CONN_TLS_READY:
		/* After STARTTLS the client speaks first: no new greeting. */
		if (s->phase == EXAMPLE_PHASE_HANDSHAKE) {
			s->phase = EXAMPLE_PHASE_COMMAND;
			example_greet(s);
		} else if (s->phase == EXAMPLE_PHASE_STARTTLS) {
			s->phase = EXAMPLE_PHASE_COMMAND;
			example_read(s);
		}
		break;
	case PTL_CONN_TIMEOUT:
		if (s->phase != EXAMPLE_PHASE_CLOSING) {
			example_reply(s, "-ERR timeout");
			s->phase = EXAMPLE_PHASE_CLOSING;
			ptl_conn_close(c);
		}
		break;
	case PTL_CONN_EOF:
		s->phase = EXAMPLE_PHASE_CLOSING;
		ptl_conn_close(c);
		break;
	case PTL_CONN_CLOSED:
		/* The session lives in the connection's pool: nothing to free.
		 */
		s->magic = 0;
		break;
	case PTL_CONN_ERROR:
	case PTL_CONN_CONNECTED:
		break;
	}
}

/* Runs in a worker for each accepted connection. */
static void
example_accept(struct ptl_conn *c, void *arg)
{
	const struct example_listener *l = arg;
	struct example_session *s;

	s = ptl_pcalloc(ptl_conn_pool(c), sizeof(*s));
	if (s == NULL) {
		ptl_conn_abort(c);
		return;
	}
	s->magic = EXAMPLE_SESSION_MAGIC;
	s->conn = c;
	s->conf = l->conf;
	ptl_conn_set_handler(c, example_conn_handler, s);
	if (l->implicit_tls) {
		s->phase = EXAMPLE_PHASE_HANDSHAKE;
		return;
	}
	s->phase = EXAMPLE_PHASE_COMMAND;
	example_greet(s);
}

/* ---- 4. Lifecycle --------------------------------------------------- */

/*
 * Master, as root, once per config generation: declare the sockets (the
 * master binds them, so ports below 1024 work) and register the service.
 * Memory from the instance pool lives as long as the generation and is
 * inherited by the workers.
 */
static int
example_init_master(struct ptl_instance *inst, struct ptl_error *err)
{
	const struct example_conf *conf = ptl_instance_conf(inst);
	const struct example_listen_conf *items = conf->listen.items;
	struct example_listener *l;
	struct ptl_listen_spec spec;
	size_t i;

	for (i = 0; i < conf->listen.count; i++) {
		l = ptl_palloc(ptl_instance_pool(inst), sizeof(*l));
		if (l == NULL)
			return ptl_error_set(err, "out of memory");
		l->conf = conf;
		l->implicit_tls = items[i].tls == EXAMPLE_TLS_IMPLICIT;

		memset(&spec, 0, sizeof(spec));
		spec.address = items[i].address;
		spec.tls = l->implicit_tls ? PTL_TLS_IMPLICIT : PTL_TLS_NONE;
		spec.limits.max_line = (size_t)conf->max_line;
		if (ptl_listener_add(inst, &spec, example_accept, l, err) !=
		    PTL_OK)
			return PTL_ERROR;
	}
	return ptl_service_register(inst, "example_svc", 1,
	                            &example_svc_methods, inst, err);
}

/* ---- The descriptor ------------------------------------------------- */

static const struct ptl_service_ref example_provides[] = {
    {"example_svc", 1},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "example",
    .version = "1.0",
    .description = "line echo service, the model for plugin authors",
    .license = "MIT",
    .provides = example_provides,
    .conf_keys = example_conf_keys,
    .conf_size = sizeof(struct example_conf),
    .check_config = example_check_config,
    .init_master = example_init_master,
};
