/* SPDX-License-Identifier: MIT */
/* `petrelctl queue list|show|flush|retry|delete` on the spool directory. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <petrel/queue.h>

#include "queue_spool.h"
#include "ctl.h"
#include "ctl_queue.h"

/*
 * Reading needs no cooperation: message files are immutable and state
 * logs only grow, so list and show read the spool directly with the
 * runner's own parser (a torn last record is ignored as the runner
 * ignores it). Changes go through the runner: a request file in ctl/
 * (queue_request_write), which the runner reads through inotify, removes
 * and acts on. petrelctl waits a little for that removal so it can say
 * whether the runner took the request.
 */

#define CTL_REQUEST_WAIT_MS 5000
#define CTL_REQUEST_POLL_MS 50

/* Peer-supplied text made safe for a terminal. */
static const char *
ctl_esc(char *out, size_t size, const char *in)
{
	size_t o = 0;

	for (; in != NULL && *in != '\0' && o + 5 < size; in++) {
		unsigned char c = (unsigned char)*in;

		if (c < 0x20 || c == 0x7f || c == '\\')
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}

static void
ctl_time(char *out, size_t size, int64_t secs)
{
	time_t t = (time_t)secs;
	struct tm tm;

	if (secs <= 0 || localtime_r(&t, &tm) == NULL ||
	    strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		(void)snprintf(out, size, "-");
}

static int
ctl_id_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The ids in msg/, oldest first. */
static char **
ctl_list_ids(const char *qdir, size_t *n_out)
{
	char dir[4096], **ids = NULL, **grown;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	*n_out = 0;
	if (!queue_path(dir, sizeof(dir), qdir, "msg", NULL) ||
	    (d = opendir(dir)) == NULL) {
		ctl_error("cannot read %s: %s", dir, strerror(errno));
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !queue_id_valid(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			grown = realloc(ids, cap * sizeof(*ids));
			if (grown == NULL)
				break;
			ids = grown;
		}
		ids[n] = strdup(de->d_name);
		if (ids[n] != NULL)
			n++;
	}
	(void)closedir(d);
	if (n > 0)
		qsort(ids, n, sizeof(*ids), ctl_id_cmp);
	*n_out = n;
	return ids != NULL ? ids : calloc(1, sizeof(*ids));
}

/* Envelope and state of one message; @st has env->nrcpts entries. */
static int
ctl_load(const char *qdir, const char *id, struct queue_env *env,
         struct queue_rcpt_state **st_out, bool texts, char *why,
         size_t why_size)
{
	struct queue_rcpt_state *st;
	uint64_t valid, size;

	*st_out = NULL;
	switch (queue_msg_read(qdir, id, env, why, why_size)) {
	case QUEUE_READ_OK:
		break;
	case QUEUE_READ_GONE:
		(void)snprintf(why, why_size, "no such message");
		return -1;
	default:
		return -1;
	}
	st = calloc(env->nrcpts, sizeof(*st));
	if (st == NULL) {
		queue_env_free(env);
		(void)snprintf(why, why_size, "out of memory");
		return -1;
	}
	if (queue_state_load(qdir, id, st, env->nrcpts, texts, &valid, &size,
	                     why, why_size) != QUEUE_READ_OK) {
		free(st);
		queue_env_free(env);
		return -1;
	}
	*st_out = st;
	return 0;
}

static int
ctl_queue_list(const char *qdir)
{
	char when[32], from[1100], why[QUEUE_WHY_MAX];
	struct queue_rcpt_state *st;
	size_t n, i, j, counts[4];
	struct queue_env env;
	char **ids;

	ids = ctl_list_ids(qdir, &n);
	if (ids == NULL)
		return CTL_EXIT_ERROR;
	for (i = 0; i < n; i++) {
		if (ctl_load(qdir, ids[i], &env, &st, false, why,
		             sizeof(why)) != 0) {
			printf("%-24s (unreadable: %s)\n", ids[i], why);
			free(ids[i]);
			continue;
		}
		memset(counts, 0, sizeof(counts));
		for (j = 0; j < env.nrcpts; j++)
			counts[st[j].status & 3]++;
		ctl_time(when, sizeof(when), env.received);
		printf("%-24s %10" PRIu64 "  %s  <%s>  %zu rcpt: %zu pending, "
		       "%zu deferred, %zu delivered, %zu failed%s\n",
		       ids[i], env.body_size, when,
		       ctl_esc(from, sizeof(from), env.from), env.nrcpts,
		       counts[QUEUE_RCPT_PENDING], counts[QUEUE_RCPT_DEFERRED],
		       counts[QUEUE_RCPT_DELIVERED], counts[QUEUE_RCPT_FAILED],
		       env.is_dsn ? " (report)" : "");
		free(st);
		queue_env_free(&env);
		free(ids[i]);
	}
	printf("%zu message%s in the queue\n", n, n == 1 ? "" : "s");
	free(ids);
	return CTL_EXIT_OK;
}

static int
ctl_queue_show(const char *qdir, const char *id)
{
	char when[32], text[1100], why[QUEUE_WHY_MAX];
	static const char *const rets[] = {"-", "FULL", "HDRS"};
	static const char *const bodies[] = {"7BIT", "8BITMIME", "BINARYMIME"};
	struct queue_rcpt_state *st;
	struct queue_env env;
	size_t i;

	if (!queue_id_valid(id)) {
		ctl_error("\"%s\" is not a queue id", id);
		return CTL_EXIT_USAGE;
	}
	if (ctl_load(qdir, id, &env, &st, true, why, sizeof(why)) != 0) {
		ctl_error("%s: %s", id, why);
		return CTL_EXIT_ERROR;
	}
	printf("id:        %s%s\n", env.id, env.is_dsn ? " (report)" : "");
	printf("from:      <%s>\n", ctl_esc(text, sizeof(text), env.from));
	ctl_time(when, sizeof(when), env.received);
	printf("received:  %s\n", when);
	printf("size:      %" PRIu64 "\n", env.body_size);
	printf("body:      %s%s\n", bodies[env.body % 3],
	       env.smtputf8 ? " SMTPUTF8" : "");
	printf("ret:       %s\n", rets[env.ret % 3]);
	if (env.envid != NULL)
		printf("envid:     %s\n",
		       ctl_esc(text, sizeof(text), env.envid));
	if (env.auth_user != NULL)
		printf("auth:      %s\n",
		       ctl_esc(text, sizeof(text), env.auth_user));
	if (env.client_ip != NULL)
		printf("client:    %s\n",
		       ctl_esc(text, sizeof(text), env.client_ip));
	for (i = 0; i < env.nrcpts; i++) {
		printf("rcpt:      <%s> %s",
		       ctl_esc(text, sizeof(text), env.rcpts[i].address),
		       queue_status_name(st[i].status));
		if (st[i].attempts > 0)
			printf(", %u attempt%s", st[i].attempts,
			       st[i].attempts == 1 ? "" : "s");
		if (st[i].status == QUEUE_RCPT_DEFERRED) {
			ctl_time(when, sizeof(when), st[i].next_try_ms / 1000);
			printf(", next %s", when);
		}
		if (st[i].flags & QUEUE_RCPT_REPORTED &&
		    st[i].status != QUEUE_RCPT_DELIVERED)
			printf(", reported");
		if (st[i].flags & QUEUE_RCPT_WARNED)
			printf(", delay reported");
		printf("\n");
		if (st[i].host != NULL)
			printf("           host: %s\n",
			       ctl_esc(text, sizeof(text), st[i].host));
		if (st[i].error != NULL)
			printf("           last: %s\n",
			       ctl_esc(text, sizeof(text), st[i].error));
	}
	queue_state_free_texts(st, env.nrcpts);
	free(st);
	queue_env_free(&env);
	return CTL_EXIT_OK;
}

static int
ctl_queue_request(const char *qdir, int req, const char *id)
{
	char name[128], path[4096], why[QUEUE_WHY_MAX];
	struct timespec pause = {0, CTL_REQUEST_POLL_MS * 1000000L};
	int waited;

	if (id != NULL && !queue_id_valid(id)) {
		ctl_error("\"%s\" is not a queue id", id);
		return CTL_EXIT_USAGE;
	}
	if (id != NULL && req != QUEUE_REQ_FLUSH) {
		if (!queue_path(path, sizeof(path), qdir, "msg", id) ||
		    access(path, F_OK) != 0) {
			ctl_error("%s: no such message", id);
			return CTL_EXIT_ERROR;
		}
	}
	if (queue_request_write(qdir, req, id, name, sizeof(name), why,
	                        sizeof(why)) != 0) {
		ctl_error("%s", why);
		return CTL_EXIT_ERROR;
	}
	if (!queue_path(path, sizeof(path), qdir, "ctl", name))
		return CTL_EXIT_ERROR;
	for (waited = 0; waited < CTL_REQUEST_WAIT_MS;
	     waited += CTL_REQUEST_POLL_MS) {
		if (access(path, F_OK) != 0 && errno == ENOENT) {
			printf("%s%s%s: taken by the queue runner\n",
			       queue_request_name(req), id ? " " : "",
			       id ? id : "");
			return CTL_EXIT_OK;
		}
		(void)nanosleep(&pause, NULL);
	}
	printf("%s%s%s: requested; the queue runner has not taken it yet "
	       "(is petrel running?): it will when it starts\n",
	       queue_request_name(req), id ? " " : "", id ? id : "");
	return CTL_EXIT_OK;
}

int
ctl_queue_main(const char *qdir, int argc, char **argv)
{
	const char *verb;

	if (argc < 1)
		return CTL_EXIT_USAGE;
	verb = argv[0];
	if (strcmp(verb, "list") == 0 && argc == 1)
		return ctl_queue_list(qdir);
	if (strcmp(verb, "show") == 0 && argc == 2)
		return ctl_queue_show(qdir, argv[1]);
	if (strcmp(verb, "flush") == 0 && argc <= 2)
		return ctl_queue_request(qdir, QUEUE_REQ_FLUSH,
		                         argc == 2 ? argv[1] : NULL);
	if (strcmp(verb, "retry") == 0 && argc == 2)
		return ctl_queue_request(qdir, QUEUE_REQ_RETRY, argv[1]);
	if (strcmp(verb, "delete") == 0 && argc == 2)
		return ctl_queue_request(qdir, QUEUE_REQ_DELETE, argv[1]);
	return CTL_EXIT_USAGE;
}
