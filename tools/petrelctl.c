/* SPDX-License-Identifier: MIT */
/* petrelctl: the administration command (users of the passwd module). */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "petrel_build.h"
#include "ctl.h"

static void
usage(FILE *out)
{
	fputs("usage: petrelctl [-c CONFIG] [-f FILE] COMMAND\n"
	      "\n"
	      "  user add ADDRESS [--scheme SCHEME]     add a user\n"
	      "  user passwd ADDRESS [--scheme SCHEME]  change a password\n"
	      "  user del ADDRESS                       delete a user\n"
	      "  user list                              list the users\n"
	      "  user check ADDRESS                     check a password\n"
	      "\n"
	      "  -f FILE    the passwd-file to edit\n"
	      "  -c CONFIG  take the file from modules.passwd.file of "
	      "CONFIG\n"
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

int
main(int argc, char **argv)
{
	const char *config = NULL, *file = NULL;
	json_t *root = NULL;
	int opt, rc;

	while ((opt = getopt(argc, argv, "+c:f:hV")) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'f':
			file = optarg;
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
