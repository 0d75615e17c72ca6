/* SPDX-License-Identifier: MIT */
/* DMARC aggregate report data: one JSON line per message, per UTC day. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "dmarc.h"

/*
 * What RFC 7489 appendix C needs to build aggregate reports later
 * (grouped per policy domain and day by whatever sends them): the
 * source address, the identifiers, the published policy, the
 * disposition applied and the SPF and DKIM results with their
 * alignment. Values that came from the client are reduced to printable
 * ASCII, so every line is valid JSON and valid UTF-8.
 */

static json_t *
dmarc_jstr(const char *s)
{
	char buf[1024];
	size_t i;

	if (s == NULL)
		return json_null();
	for (i = 0; s[i] != '\0' && i < sizeof(buf) - 1; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	buf[i] = '\0';
	return json_string(buf);
}

char *
dmarc_report_line(const struct dmarc_report_in *in)
{
	const struct dmarc_record *rec = in->rec;
	const struct dmarc_auth *auth = in->auth;
	const struct dmarc_outcome *out = in->out;
	json_t *root, *pol, *spf, *dkim, *sig;
	char *text, *line = NULL;
	size_t i, n;
	int rc = 0;

	root = json_object();
	pol = json_object();
	spf = json_object();
	dkim = json_array();
	if (root == NULL || pol == NULL || spf == NULL || dkim == NULL)
		goto out;
	rc |= json_object_set_new(root, "time", json_integer(in->time));
	rc |= json_object_set_new(root, "source_ip", dmarc_jstr(in->source_ip));
	rc |= json_object_set_new(root, "header_from",
	                          dmarc_jstr(in->header_from));
	rc |= json_object_set_new(root, "envelope_from",
	                          dmarc_jstr(in->envelope_from));
	rc |= json_object_set_new(root, "policy_domain",
	                          dmarc_jstr(in->policy_domain));
	rc |= json_object_set_new(root, "message", dmarc_jstr(in->message_id));
	rc |= json_object_set_new(pol, "p",
	                          json_string(dmarc_policy_name(rec->p)));
	rc |= json_object_set_new(pol, "sp",
	                          json_string(dmarc_policy_name(rec->sp)));
	rc |= json_object_set_new(pol, "pct", json_integer(rec->pct));
	rc |= json_object_set_new(pol, "adkim",
	                          json_string(rec->adkim_strict ? "s" : "r"));
	rc |= json_object_set_new(pol, "aspf",
	                          json_string(rec->aspf_strict ? "s" : "r"));
	rc |= json_object_set_new(pol, "fo", dmarc_jstr(rec->fo));
	rc |= json_object_set_new(pol, "ri", json_integer(rec->ri));
	rc |= json_object_set_new(pol, "rua", dmarc_jstr(rec->rua));
	rc |= json_object_set_new(root, "policy", pol);
	pol = NULL;
	rc |= json_object_set_new(root, "dmarc",
	                          json_string(dmarc_result_name(out->result)));
	rc |= json_object_set_new(
	    root, "disposition",
	    json_string(dmarc_policy_name(out->disposition)));
	rc |= json_object_set_new(root, "sampled_out",
	                          json_boolean(out->sampled_out));
	rc |= json_object_set_new(
	    spf, "result", dmarc_jstr(auth->spf[0] ? auth->spf : "none"));
	rc |= json_object_set_new(spf, "domain", dmarc_jstr(auth->spf_domain));
	rc |= json_object_set_new(
	    spf, "scope", json_string(auth->spf_helo ? "helo" : "mfrom"));
	rc |=
	    json_object_set_new(spf, "aligned", json_boolean(out->spf_aligned));
	rc |= json_object_set_new(root, "spf", spf);
	spf = NULL;
	for (i = 0; i < auth->ndkim; i++) {
		sig = json_object();
		if (sig == NULL) {
			rc = -1;
			break;
		}
		rc |= json_object_set_new(sig, "result",
		                          dmarc_jstr(auth->dkim[i].result));
		rc |= json_object_set_new(sig, "domain",
		                          dmarc_jstr(auth->dkim[i].domain));
		rc |= json_object_set_new(sig, "selector",
		                          dmarc_jstr(auth->dkim[i].selector));
		rc |= json_object_set_new(
		    sig, "aligned", json_boolean(out->dkim_index == (int)i));
		rc |= json_array_append_new(dkim, sig);
	}
	rc |= json_object_set_new(root, "dkim", dkim);
	dkim = NULL;
	if (rc != 0)
		goto out;
	text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text == NULL)
		goto out;
	n = strlen(text);
	line = malloc(n + 2);
	if (line != NULL) {
		memcpy(line, text, n);
		line[n] = '\n';
		line[n + 1] = '\0';
	}
	free(text);
out:
	json_decref(root);
	json_decref(pol);
	json_decref(spf);
	json_decref(dkim);
	return line;
}

void
dmarc_report_file_name(int64_t time, char *out, size_t size)
{
	time_t t = (time_t)time;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, size, "%Y-%m-%d.jsonl", &tm) == 0)
		(void)snprintf(out, size, "unknown.jsonl");
}

int
dmarc_report_append(const char *dir, const char *name, const char *line)
{
	char path[4096];
	size_t len = strlen(line), off = 0;
	ssize_t n;
	int fd, err = 0;

	if (mkdir(dir, 0750) != 0 && errno != EEXIST)
		return errno;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    sizeof(path))
		return ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	          0640);
	if (fd < 0)
		return errno;
	/* O_APPEND: each write lands whole at the end of the file. */
	while (off < len) {
		n = write(fd, line + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : EIO;
			break;
		}
		off += (size_t)n;
	}
	if (close(fd) != 0 && err == 0)
		err = errno;
	return err;
}
