/* SPDX-License-Identifier: MIT */
/* The petrel command line: check, document or run a configuration. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "petrel_build.h"
#include "conf_doc.h"
#include "cycle.h"
#include "log_internal.h"
#include "process.h"
#include "tls.h"

#define DEFAULT_CONF PETREL_SYSCONF_DIR "/petrel.json"

enum run_mode {
	MODE_MASTER,
	MODE_SINGLE,
	MODE_TEST,
	MODE_KEYS,
	MODE_KEYS_ALL,
};

struct options {
	const char *conf_path;
	const char *module_dir; /* -M, or NULL: server.module_dir or default */
	enum run_mode mode;
};

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: petrel [-c FILE] [-M MODULE_DIR] [-t] [-f] [-V] [-h] "
	        "[--keys] [--keys-all]\n"
	        "  -c FILE        configuration (default %s)\n"
	        "  -M MODULE_DIR  module directory (default: server.module_dir,"
	        " else %s)\n"
	        "  -t             check the configuration and exit\n"
	        "  -f             run everything in one foreground process\n"
	        "  -V             print the version and exit\n"
	        "  -h             print this help and exit\n"
	        "  --keys         print the reference of every configuration "
	        "key (markdown)\n"
	        "  --keys-all     the same for every module in the module "
	        "directory, without a configuration\n",
	        DEFAULT_CONF, PETREL_MODULE_DIR);
}

/* Returns -1 to go on, else the exit code. */
static int
parse_options(int argc, char **argv, struct options *opts)
{
	static const struct option longopts[] = {
	    {"keys", no_argument, NULL, 'k'},
	    {"keys-all", no_argument, NULL, 'K'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	opts->conf_path = DEFAULT_CONF;
	opts->module_dir = NULL;
	opts->mode = MODE_MASTER;
	while ((c = getopt_long(argc, argv, "c:M:tfVh", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'c':
			opts->conf_path = optarg;
			break;
		case 'M':
			opts->module_dir = optarg;
			break;
		case 't':
			opts->mode = MODE_TEST;
			break;
		case 'f':
			if (opts->mode == MODE_MASTER)
				opts->mode = MODE_SINGLE;
			break;
		case 'k':
			opts->mode = MODE_KEYS;
			break;
		case 'K':
			opts->mode = MODE_KEYS_ALL;
			break;
		case 'V':
			printf("petrel %s (module ABI %d.%d)\n", PETREL_VERSION,
			       PTL_ABI_MAJOR, PTL_ABI_MINOR);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "petrel: unexpected argument \"%s\"\n",
		        argv[optind]);
		usage(stderr);
		return 1;
	}
	return -1;
}

static void
print_error(const char *conf_path, const struct ptl_error *err)
{
	char text[PTL_ERROR_TEXT_MAX + PTL_ERROR_PATH_MAX + 512];

	ptl_cycle_format_error(conf_path, err, text, sizeof(text));
	fprintf(stderr, "petrel: %s\n", text);
}

/*
 * -t: also prove that every key and certificate file loads and, as root,
 * that the account the workers switch to exists.
 */
static int
check_config(struct ptl_cycle *cycle, const char *conf_path)
{
	struct ptl_error err = {0};
	int rc = PTL_OK;

	if (geteuid() == 0)
		rc = ptl_privs_check(cycle, &err);
	if (rc == PTL_OK)
		rc = ptl_tls_build(cycle, &err);
	if (cycle->tls != NULL) {
		ptl_tls_free(cycle->tls);
		cycle->tls = NULL;
	}
	if (rc != PTL_OK) {
		print_error(conf_path, &err);
		return 1;
	}
	fprintf(stderr, "petrel: configuration %s is ok\n", conf_path);
	return 0;
}

/*
 * "server" without its "log" object, which gets a section of its own
 * instead of rows in the server table.
 */
static int
print_server_keys(void)
{
	const struct ptl_conf_key *keys = ptl_server_conf_keys,
	                          *log_keys = NULL;
	struct ptl_conf_key *flat;
	size_t n = 0, used = 0;
	int rc;

	while (keys[n].name != NULL)
		n++;
	flat = calloc(n + 1, sizeof(*flat));
	if (flat == NULL)
		return PTL_ERROR;
	for (size_t i = 0; i < n; i++) {
		if (keys[i].type == PTL_CONF_OBJECT &&
		    strcmp(keys[i].name, "log") == 0)
			log_keys = keys[i].sub;
		else
			flat[used++] = keys[i];
	}
	rc = ptl_conf_doc_markdown(stdout, "server", flat);
	free(flat);
	if (rc == PTL_OK && log_keys != NULL)
		rc = ptl_conf_doc_markdown(stdout, "server.log", log_keys);
	return rc;
}

static int
compare_instances(const void *a, const void *b)
{
	const struct ptl_instance *const *ia = a;
	const struct ptl_instance *const *ib = b;

	return strcmp((*ia)->module->name, (*ib)->module->name);
}

/* Module sections in name order, so the generated docs are stable. */
static int
print_module_keys(const struct ptl_cycle *cycle)
{
	const struct ptl_instance **sorted;
	char section[256];
	int rc = 0;

	if (cycle->ninstances == 0)
		return 0;
	sorted = calloc(cycle->ninstances, sizeof(*sorted));
	if (sorted == NULL)
		return 1;
	for (size_t i = 0; i < cycle->ninstances; i++)
		sorted[i] = &cycle->instances[i];
	qsort(sorted, cycle->ninstances, sizeof(*sorted), compare_instances);
	for (size_t i = 0; i < cycle->ninstances && rc == 0; i++) {
		const struct ptl_module *mod = sorted[i]->module;
		static const struct ptl_conf_key no_keys[] = {{NULL}};

		snprintf(section, sizeof(section), "modules.%s", mod->name);
		if (ptl_conf_doc_markdown(stdout, section,
		                          mod->conf_keys != NULL
		                              ? mod->conf_keys
		                              : no_keys) != PTL_OK)
			rc = 1;
	}
	free(sorted);
	return rc;
}

static int
compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * --keys-all: the reference of every module file in @dir, loaded through
 * the normal loader (with its safety checks) but without a config, so
 * docs/configuration.md can be generated from the build tree.
 */
static int
print_dir_module_keys(const char *dir_arg)
{
	static const struct ptl_conf_key no_keys[] = {{NULL}};
	char *names[256];
	size_t n = 0, len;
	struct dirent *de;
	char section[256];
	int rc = 0;
	char dir[PATH_MAX];
	DIR *d = NULL;

	/* The loader takes absolute directories only. */
	if (realpath(dir_arg, dir) == NULL || (d = opendir(dir)) == NULL) {
		fprintf(stderr, "petrel: %s: %s\n", dir_arg, strerror(errno));
		return 1;
	}
	while ((de = readdir(d)) != NULL &&
	       n < sizeof(names) / sizeof(*names)) {
		len = strlen(de->d_name);
		if (len <= 3 || strcmp(de->d_name + len - 3, ".so") != 0)
			continue;
		names[n] = strndup(de->d_name, len - 3);
		if (names[n] == NULL)
			break;
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), compare_names);
	for (size_t i = 0; i < n; i++) {
		const struct ptl_module *mod;
		struct ptl_error err = {0};

		if (rc == 0 && ptl_module_load(names[i], NULL, dir, &mod,
		                               &err) == PTL_OK) {
			snprintf(section, sizeof(section), "modules.%s",
			         mod->name);
			printf("\n%s: %s\n\n", mod->name,
			       mod->description != NULL ? mod->description
			                                : "");
			if (ptl_conf_doc_markdown(stdout, section,
			                          mod->conf_keys != NULL
			                              ? mod->conf_keys
			                              : no_keys) != PTL_OK)
				rc = 1;
		} else if (rc == 0) {
			fprintf(stderr, "petrel: %s\n", err.text);
			rc = 1;
		}
		free(names[i]);
	}
	return rc;
}

static int
print_core_keys(void)
{
	return print_server_keys() != PTL_OK ||
	               ptl_conf_doc_markdown(stdout, "tls",
	                                     ptl_tls_conf_keys) != PTL_OK
	           ? 1
	           : 0;
}

static int
print_keys(const struct ptl_cycle *cycle)
{
	if (print_core_keys() != 0 || print_module_keys(cycle) != 0 ||
	    fflush(stdout) != 0) {
		fprintf(stderr, "petrel: cannot write the key reference\n");
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct ptl_cycle *cycle = NULL;
	struct ptl_error err = {0};
	struct options opts;
	int rc;

	rc = parse_options(argc, argv, &opts);
	if (rc >= 0)
		return rc;
	/* A peer closing early must end a write with EPIPE, not the process. */
	signal(SIGPIPE, SIG_IGN);
	ptl_log_set_process(opts.mode == MODE_SINGLE ? "single" : "master");
	if (opts.mode == MODE_KEYS_ALL) {
		rc = print_core_keys();
		if (rc == 0)
			rc = print_dir_module_keys(opts.module_dir != NULL
			                               ? opts.module_dir
			                               : PETREL_MODULE_DIR);
		if (fflush(stdout) != 0)
			rc = 1;
		return rc;
	}

	if (ptl_cycle_load(opts.conf_path, opts.module_dir, &cycle, &err) !=
	    PTL_OK) {
		print_error(opts.conf_path, &err);
		return 1;
	}
	cycle->generation = 1;
	switch (opts.mode) {
	case MODE_TEST:
		rc = check_config(cycle, opts.conf_path);
		ptl_cycle_free(cycle, false);
		return rc;
	case MODE_KEYS:
		rc = print_keys(cycle);
		ptl_cycle_free(cycle, false);
		return rc;
	default:
		break;
	}

	/* As early as possible, so that start-up problems land there too. */
	if (ptl_log_configure(&cycle->server.log, &err) != PTL_OK) {
		print_error(opts.conf_path, &err);
		ptl_cycle_free(cycle, false);
		return 1;
	}
	if (opts.mode == MODE_SINGLE)
		return ptl_single_run(cycle);
	ptl_master_set_module_dir(opts.module_dir);
	return ptl_master_run(cycle);
}
