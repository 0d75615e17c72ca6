/* SPDX-License-Identifier: MIT */
/* Key tables and post-parse rules of the core "server" and "tls" sections. */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <petrel/petrel.h>

#include "core/cycle.h"
#include "core/log_internal.h"

#define SERVER_WORKERS_MAX 256
/* Longest host name in DNS (RFC 1035 section 2.3.4, without the root dot). */
#define SERVER_HOSTNAME_MAX 253

/*
 * Same order as enum ptl_log_level, which starts at PTL_LOG_ERROR: the
 * index that PTL_CONF_ENUM stores is mapped back in
 * ptl_server_conf_resolve().
 */
static const char *const server_log_level_names[] = {
    "error", "warn", "notice", "info", "debug", NULL,
};

/* Same order as enum ptl_log_target: the index is the value. */
static const char *const server_log_target_names[] = {
    "stderr",
    "file",
    "syslog",
    NULL,
};

/* Same order as ptl_tls_conf.min_version (0: TLSv1.2, 1: TLSv1.3). */
static const char *const tls_version_names[] = {
    "TLSv1.2",
    "TLSv1.3",
    NULL,
};

/*
 * "workers" is either the word "auto" or a number, which no single typed
 * key can express: the key is PTL_CONF_JSON and this checks the value.
 */
static int
server_validate_workers(const json_t *value, void *field, struct ptl_error *err)
{
	json_int_t n;

	if (value == NULL)
		return PTL_OK;
	if (json_is_string(value) &&
	    strcmp(json_string_value(value), "auto") == 0)
		return PTL_OK;
	if (json_is_integer(value)) {
		n = json_integer_value(value);
		if (n >= 1 && n <= SERVER_WORKERS_MAX)
			return PTL_OK;
	}
	return ptl_error_set(err, "expected \"auto\" or an integer 1..%d",
	                     SERVER_WORKERS_MAX);
}

/*
 * The host name goes into protocol greetings and headers: a space, CR or
 * LF in it would let the config break the protocol.
 */
static bool
server_hostname_valid(const char *name)
{
	size_t len = strlen(name), i;

	if (len == 0 || len > SERVER_HOSTNAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return false;
	}
	return true;
}

static int
server_validate_hostname(const json_t *value, void *field,
                         struct ptl_error *err)
{
	const char *name = *(const char **)field;

	if (name != NULL && !server_hostname_valid(name))
		return ptl_error_set(err,
		                     "expected a host name (letters, digits, "
		                     "\"-\" and \".\")");
	return PTL_OK;
}

/* A chroot relative to whatever the working directory is would surprise. */
static int
server_validate_absolute(const json_t *value, void *field,
                         struct ptl_error *err)
{
	const char *path = *(const char **)field;

	if (path != NULL && path[0] != '/')
		return ptl_error_set(err, "expected an absolute path");
	return PTL_OK;
}

static const struct ptl_conf_key server_log_keys[] = {
    {
        .name = "level",
        .type = PTL_CONF_ENUM,
        .offset = offsetof(struct ptl_log_conf, level),
        .def = "info",
        .enum_names = server_log_level_names,
        .doc = "Lowest severity written: error, warn, notice, info "
               "or debug.",
    },
    {
        .name = "target",
        .type = PTL_CONF_ENUM,
        .offset = offsetof(struct ptl_log_conf, target),
        .def = "stderr",
        .enum_names = server_log_target_names,
        .doc = "Where log lines go: stderr, file (see \"file\") or "
               "syslog.",
    },
    {
        .name = "file",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct ptl_log_conf, file),
        .doc = "Log file for target \"file\"; reopened on SIGUSR1.",
    },
    {
        .name = "json",
        .type = PTL_CONF_BOOL,
        .offset = offsetof(struct ptl_log_conf, json),
        .def = "false",
        .doc = "Write each line as a JSON object.",
    },
    {
        .name = "ident",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct ptl_log_conf, ident),
        .def = "petrel",
        .doc = "Program name in syslog lines.",
    },
    {NULL},
};

const struct ptl_conf_key ptl_server_conf_keys[] = {
    {
        .name = "hostname",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct ptl_server_conf, hostname),
        .validate = server_validate_hostname,
        .doc = "Fully qualified name this server calls itself "
               "(default: the system host name).",
    },
    {
        .name = "user",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct ptl_server_conf, user),
        .doc = "Unprivileged user the workers run as; required when "
               "started as root, ignored otherwise.",
    },
    {
        .name = "group",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct ptl_server_conf, group),
        .doc = "Group the workers run as (default: the primary group "
               "of \"user\").",
    },
    {
        .name = "workers",
        .type = PTL_CONF_JSON,
        .offset = offsetof(struct ptl_server_conf, workers_value),
        .def = "\"auto\"",
        .validate = server_validate_workers,
        .doc = "Number of worker processes, 1..256, or \"auto\" for "
               "one per online CPU.",
    },
    {
        .name = "state_dir",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct ptl_server_conf, state_dir),
        .def = "var/state",
        .doc = "Directory for the server's state; a relative path is "
               "taken from the working directory at startup.",
    },
    {
        .name = "pid_file",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct ptl_server_conf, pid_file),
        .doc = "File holding the master's pid (default: "
               "STATE_DIR/petrel.pid).",
    },
    {
        .name = "module_dir",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct ptl_server_conf, module_dir),
        .doc = "Directory modules are loaded from (the -M option wins; "
               "default: the build's module directory).",
    },
    {
        .name = "shutdown_timeout",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct ptl_server_conf, shutdown_timeout_ms),
        .def = "10s",
        .min = 0,
        .max = 3600 * 1000,
        .doc = "How long stopping workers may take to finish their "
               "connections before they are killed.",
    },
    {
        .name = "threads",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct ptl_server_conf, threads),
        .def = "4",
        .min = 1,
        .max = 64,
        .doc = "Threads per process for blocking work (fsync, "
               "password hashing).",
    },
    {
        .name = "chroot",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct ptl_server_conf, chroot),
        .validate = server_validate_absolute,
        .doc = "Absolute directory that workers chroot into after "
               "dropping privileges (optional).",
    },
    {
        .name = "log",
        .type = PTL_CONF_OBJECT,
        .offset = offsetof(struct ptl_server_conf, log),
        .sub = server_log_keys,
        .doc = "Logging: level, target, file, json, ident.",
    },
    {NULL},
};

static const struct ptl_conf_key tls_cert_keys[] = {
    {
        .name = "cert",
        .type = PTL_CONF_STRING,
        .flags = PTL_CONF_REQUIRED,
        .offset = offsetof(struct ptl_tls_cert_conf, cert),
        .doc = "PEM file: the certificate followed by its chain.",
    },
    {
        .name = "key",
        .type = PTL_CONF_STRING,
        .flags = PTL_CONF_REQUIRED,
        .offset = offsetof(struct ptl_tls_cert_conf, key),
        .doc = "PEM file with the private key (read by the master as "
               "root).",
    },
    {
        .name = "names",
        .type = PTL_CONF_STRING_LIST,
        .offset = offsetof(struct ptl_tls_cert_conf, names),
        .min = 0,
        .max = 256,
        .doc = "SNI names this certificate is chosen for (the first "
               "certificate is the default).",
    },
    {NULL},
};

const struct ptl_conf_key ptl_tls_conf_keys[] = {
    {
        .name = "certificates",
        .type = PTL_CONF_OBJECT_LIST,
        .offset = offsetof(struct ptl_tls_conf, certificates),
        .min = 0,
        .max = 64,
        .sub = tls_cert_keys,
        .sub_size = sizeof(struct ptl_tls_cert_conf),
        .doc = "Server certificates: {\"cert\", \"key\", \"names\"}.",
    },
    {
        .name = "min_version",
        .type = PTL_CONF_ENUM,
        .offset = offsetof(struct ptl_tls_conf, min_version),
        .def = "TLSv1.2",
        .enum_names = tls_version_names,
        .doc = "Oldest TLS version accepted: TLSv1.2 or TLSv1.3.",
    },
    {
        .name = "ciphers",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct ptl_tls_conf, ciphers),
        .doc = "OpenSSL cipher list for TLS 1.2 (default: OpenSSL's).",
    },
    {
        .name = "ciphersuites",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct ptl_tls_conf, ciphersuites),
        .doc = "OpenSSL TLS 1.3 cipher suites (default: OpenSSL's).",
    },
    {
        .name = "ca_file",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct ptl_tls_conf, ca_file),
        .doc = "CA bundle for verifying servers we connect to "
               "(default: the system store).",
    },
    {NULL},
};

/* Relative paths are taken from the working directory at startup. */
PTL_API int
ptl_conf_path_absolute(struct ptl_pool *pool, const char **path,
                       const char *key, struct ptl_error *err)
{
	char cwd[PATH_MAX];
	const char *sep;
	char *abs;

	if ((*path)[0] == '\0')
		return ptl_error_set_path(err, key, "must not be empty");
	if ((*path)[0] == '/')
		return PTL_OK;
	if (getcwd(cwd, sizeof(cwd)) == NULL) {
		ptl_error_set_errno(err, errno,
		                    "cannot get the working directory");
		(void)ptl_error_set_path(err, key, "%s", err->text);
		return PTL_ERROR;
	}
	sep = cwd[strlen(cwd) - 1] == '/' ? "" : "/";
	abs = ptl_psprintf(pool, "%s%s%s", cwd, sep, *path);
	if (abs == NULL)
		return ptl_error_set_path(err, key, "out of memory");
	*path = abs;
	return PTL_OK;
}

static int
server_resolve_hostname(struct ptl_server_conf *conf, struct ptl_pool *pool,
                        struct ptl_error *err)
{
	char name[SERVER_HOSTNAME_MAX + 2];

	if (conf->hostname != NULL)
		return PTL_OK;
	if (gethostname(name, sizeof(name)) != 0) {
		ptl_error_set_errno(err, errno, "cannot get the host name");
		(void)ptl_error_set_path(err, "server.hostname",
		                         "%s; set server.hostname", err->text);
		return PTL_ERROR;
	}
	name[sizeof(name) - 1] = '\0';
	if (!server_hostname_valid(name))
		return ptl_error_set_path(err, "server.hostname",
		                          "the system host name is not valid; "
		                          "set server.hostname");
	conf->hostname = ptl_pstrdup(pool, name);
	if (conf->hostname == NULL)
		return ptl_error_set(err, "out of memory");
	return PTL_OK;
}

static int
server_resolve_workers(struct ptl_server_conf *conf, struct ptl_pool *pool,
                       struct ptl_error *err)
{
	const json_t *value = conf->workers_value;
	long ncpu;

	if (value == NULL || json_is_string(value)) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		if (ncpu < 1)
			ncpu = 1;
		if (ncpu > SERVER_WORKERS_MAX)
			ncpu = SERVER_WORKERS_MAX;
		conf->nworkers = (unsigned)ncpu;
		conf->workers = "auto";
		return PTL_OK;
	}
	/* The validator already bounded it. */
	conf->nworkers = (unsigned)json_integer_value(value);
	conf->workers = ptl_psprintf(pool, "%u", conf->nworkers);
	if (conf->workers == NULL)
		return ptl_error_set(err, "out of memory");
	return PTL_OK;
}

/*
 * Workers drop to server.user; checking the account here makes `petrel -t`
 * catch a typo instead of the first fork.
 */
static int
server_resolve_user(struct ptl_server_conf *conf, struct ptl_error *err)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return PTL_OK;
	if (conf->user == NULL)
		return ptl_error_set_path(err, "server.user",
		                          "required when running as root "
		                          "(workers never run as root)");
	errno = 0;
	pw = getpwnam(conf->user);
	if (pw == NULL)
		return ptl_error_set_path(err, "server.user",
		                          "unknown user \"%s\"", conf->user);
	if (pw->pw_uid == 0)
		return ptl_error_set_path(err, "server.user",
		                          "user \"%s\" is root (workers never "
		                          "run as root)",
		                          conf->user);
	if (conf->group != NULL && getgrnam(conf->group) == NULL)
		return ptl_error_set_path(err, "server.group",
		                          "unknown group \"%s\"", conf->group);
	return PTL_OK;
}

int
ptl_server_conf_resolve(struct ptl_server_conf *conf, struct ptl_pool *pool,
                        struct ptl_error *err)
{
	const char *pid_file;

	if (conf->log.level < 0 ||
	    conf->log.level > PTL_LOG_DEBUG - PTL_LOG_ERROR)
		return ptl_error_set_path(err, "server.log.level",
		                          "invalid level");
	conf->log.level += PTL_LOG_ERROR;
	if (conf->log.target == PTL_LOG_TARGET_FILE &&
	    (conf->log.file == NULL || conf->log.file[0] == '\0'))
		return ptl_error_set_path(err, "server.log.file",
		                          "required when \"target\" is "
		                          "\"file\"");

	if (server_resolve_workers(conf, pool, err) != PTL_OK)
		return PTL_ERROR;
	if (server_resolve_hostname(conf, pool, err) != PTL_OK)
		return PTL_ERROR;
	if (ptl_conf_path_absolute(pool, &conf->state_dir, "server.state_dir",
	                           err) != PTL_OK)
		return PTL_ERROR;
	if (conf->pid_file == NULL) {
		pid_file = ptl_psprintf(pool, "%s/petrel.pid", conf->state_dir);
		if (pid_file == NULL)
			return ptl_error_set(err, "out of memory");
		conf->pid_file = pid_file;
	} else if (ptl_conf_path_absolute(pool, &conf->pid_file,
	                                  "server.pid_file", err) != PTL_OK) {
		return PTL_ERROR;
	}
	return server_resolve_user(conf, err);
}
