/* SPDX-License-Identifier: MIT */
/* petrelctl: the administration command (users, the mail queue). */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "petrel_build.h"
#include "ctl.h"
#ifdef CTL_WITH_QUEUE
#include "ctl_queue.h"
#endif
#ifdef CTL_WITH_DKIM
#include "ctl_dkim.h"
#endif
#ifdef CTL_WITH_DMARC
#include "ctl_dmarc.h"
#endif

static void
usage(FILE *out)
{
	fputs("usage: petrelctl [-c CONFIG] [-f FILE] [-q DIR] COMMAND\n"
	      "\n"
	      "  user add ADDRESS [--scheme SCHEME]     add a user\n"
	      "  user passwd ADDRESS [--scheme SCHEME]  change a password\n"
	      "  user del ADDRESS                       delete a user\n"
	      "  user list                              list the users\n"
	      "  user check ADDRESS                     check a password\n"
	      "\n"
	      "  queue list                             list queued messages\n"
	      "  queue show ID                          a message's envelope "
	      "and state\n"
	      "  queue flush [ID]                       try deferred mail "
	      "now\n"
	      "  queue retry ID                         restart the backoff, "
	      "try now\n"
	      "  queue delete ID                        remove without a "
	      "report\n"
	      "\n"
	      "  dkim keygen --type rsa|ed25519 [--bits 2048] --selector S\n"
	      "              --domain D --out FILE      make a DKIM key, "
	      "print\n"
	      "                                         its DNS TXT record\n"
	      "\n"
	      "  dmarc report [--day YYYY-MM-DD] [--dir DIR]\n"
	      "              (--out DIR | --send HOST:PORT | --dry-run)\n"
	      "              [--org-name NAME] [--email ADDR]\n"
	      "              [--no-verify-external] [--resolver IP:PORT]\n"
	      "                                         send the DMARC "
	      "aggregate\n"
	      "                                         reports of a day "
	      "(default:\n"
	      "                                         yesterday, UTC)\n"
	      "\n"
	      "  -f FILE    the passwd-file to edit\n"
	      "  -q DIR     the queue directory (default: from CONFIG)\n"
	      "  -c CONFIG  take the file from modules.passwd.file of "
	      "CONFIG,\n"
	      "             the queue from modules.queue.directory or\n"
	      "             server.state_dir/queue, the DMARC data from\n"
	      "             modules.dmarc.report_dir or "
	      "server.state_dir/dmarc\n"
	      "  -h         this help; -V: the version\n"
	      "\n"
	      "SCHEME: yescrypt (default), sha512-crypt, blf-crypt.\n"
	      "The password is read from the terminal (twice, without "
	      "echo),\n"
	      "or as one line from stdin when stdin is not a terminal.\n"
	      "Exit status: 0 ok, 1 error, 2 usage.\n",
	      out);
}

void
ctl_error(const char *fmt, ...)
{
	va_list ap;

	fputs("petrelctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * The file from the server's config, so that admins name it once. The
 * returned string lives in @root_out (the caller decrefs it).
 */
static const char *
file_from_config(const char *config, json_t **root_out)
{
	json_error_t jerr;
	json_t *file;

	*root_out = json_load_file(config, JSON_REJECT_DUPLICATES, &jerr);
	if (*root_out == NULL) {
		if (jerr.line > 0)
			ctl_error("%s:%d:%d: %s", config, jerr.line,
			          jerr.column, jerr.text);
		else
			ctl_error("%s: %s", config, jerr.text);
		return NULL;
	}
	file = json_object_get(
	    json_object_get(json_object_get(*root_out, "modules"), "passwd"),
	    "file");
	if (!json_is_string(file)) {
		ctl_error("%s: no modules.passwd.file (use -f FILE)", config);
		return NULL;
	}
	return json_string_value(file);
}

#ifdef CTL_WITH_QUEUE
/* The spool: modules.queue.directory, else server.state_dir + "/queue".
 * Written into @out; @return 0 or -1 (message printed). */
static int
queue_dir_from_config(const char *config, char *out, size_t size)
{
	json_error_t jerr;
	json_t *root, *dir, *state;
	int rc = -1;

	root = json_load_file(config, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		ctl_error("%s: %s", config, jerr.text);
		return -1;
	}
	dir = json_object_get(
	    json_object_get(json_object_get(root, "modules"), "queue"),
	    "directory");
	state = json_object_get(json_object_get(root, "server"), "state_dir");
	if (json_is_string(dir))
		rc = snprintf(out, size, "%s", json_string_value(dir));
	else if (json_is_string(state))
		rc = snprintf(out, size, "%s/queue", json_string_value(state));
	else
		ctl_error("%s: no modules.queue.directory and no "
		          "server.state_dir (use -q DIR)",
		          config);
	json_decref(root);
	if (rc < 0 || (size_t)rc >= size) {
		if (rc >= 0)
			ctl_error("queue directory path too long");
		return -1;
	}
	return 0;
}

static int
queue_command(const char *config, const char *qdir, int argc, char **argv)
{
	char path[4096];
	int rc;

	if (qdir == NULL && config == NULL) {
		ctl_error("which queue? Use -q DIR or -c CONFIG");
		return CTL_EXIT_USAGE;
	}
	if (qdir == NULL) {
		if (queue_dir_from_config(config, path, sizeof(path)) != 0)
			return CTL_EXIT_ERROR;
		qdir = path;
	}
	rc = ctl_queue_main(qdir, argc, argv);
	if (rc == CTL_EXIT_USAGE)
		usage(stderr);
	return rc;
}
#endif

int
main(int argc, char **argv)
{
	const char *config = NULL, *file = NULL, *qdir = NULL;
	json_t *root = NULL;
	int opt, rc;

	while ((opt = getopt(argc, argv, "+c:f:q:hV")) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'f':
			file = optarg;
			break;
		case 'q':
			qdir = optarg;
			break;
		case 'h':
			usage(stdout);
			return CTL_EXIT_OK;
		case 'V':
			printf("petrelctl %s\n", PETREL_VERSION);
			return CTL_EXIT_OK;
		default:
			usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
#ifdef CTL_WITH_QUEUE
	if (optind + 1 < argc && strcmp(argv[optind], "queue") == 0)
		return queue_command(config, qdir, argc - optind - 1,
		                     argv + optind + 1);
#endif
#ifdef CTL_WITH_DKIM
	if (optind < argc && strcmp(argv[optind], "dkim") == 0)
		return ctl_dkim_main(argc - optind - 1, argv + optind + 1);
#endif
#ifdef CTL_WITH_DMARC
	if (optind < argc && strcmp(argv[optind], "dmarc") == 0)
		return ctl_dmarc_main(config, argc - optind - 1,
		                      argv + optind + 1);
#endif
	(void)qdir;
	if (optind >= argc || strcmp(argv[optind], "user") != 0 ||
	    optind + 1 >= argc) {
		usage(stderr);
		return CTL_EXIT_USAGE;
	}
	if (file == NULL && config != NULL) {
		file = file_from_config(config, &root);
		if (file == NULL) {
			json_decref(root);
			return CTL_EXIT_ERROR;
		}
	}
	if (file == NULL) {
		ctl_error("which passwd-file? Use -f FILE or -c CONFIG");
		return CTL_EXIT_USAGE;
	}
	rc = ctl_user_main(file, argc - optind - 1, argv + optind + 1);
	if (rc == CTL_EXIT_USAGE)
		usage(stderr);
	json_decref(root);
	return rc;
}
