/* SPDX-License-Identifier: MIT */
/* petrelctl dmarc report: RFC 7489 aggregate reports from the day's data. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl.h"
#include "ctl_dmarc.h"
#include "ctl_dmarc_agg.h"
#include "ctl_dmarc_mail.h"
#include "ctl_dmarc_net.h"
#include "dmarc.h"

#define DMARC_DEFAULT_PSL "/usr/share/publicsuffix/public_suffix_list.dat"

struct dmarc_opts {
	const char *config;
	const char *day;
	const char *dir;
	const char *out;
	const char *send;
	const char *org_name;
	const char *email;
	const char *resolver;
	bool dry_run;
	bool verify_external;
};

/* What one run found and did, for the summary and the exit code. */
struct dmarc_run {
	struct dmarc_opts o;
	char hostname[256];
	char email[CTL_DMARC_VALUE_MAX + 1];
	char report_dir[4096];
	char psl_path[4096];
	struct dmarc_psl *psl; /* NULL: compare domains without it */
	int64_t begin, end;
	char run_id[17]; /* random, makes report ids unique */
	unsigned long long lines, malformed, over_limit;
	unsigned reports, messages, skipped, failed;
};

static void
dmarc_usage(void)
{
	ctl_error("usage: petrelctl dmarc report [-c CONFIG] "
	          "[--day YYYY-MM-DD] [--dir REPORT_DIR]\n"
	          "         (--out DIR | --send HOST:PORT | --dry-run) "
	          "[--org-name NAME]\n"
	          "         [--email ADDR] [--no-verify-external] "
	          "[--resolver IP:PORT]");
}

static int
dmarc_parse(int argc, char **argv, struct dmarc_opts *o)
{
	int i;

	o->verify_external = true;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		const char **slot = NULL;

		if (strcmp(a, "--dry-run") == 0) {
			o->dry_run = true;
			continue;
		}
		if (strcmp(a, "--no-verify-external") == 0) {
			o->verify_external = false;
			continue;
		}
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
			slot = &o->config;
		else if (strcmp(a, "--day") == 0)
			slot = &o->day;
		else if (strcmp(a, "--dir") == 0)
			slot = &o->dir;
		else if (strcmp(a, "--out") == 0)
			slot = &o->out;
		else if (strcmp(a, "--send") == 0)
			slot = &o->send;
		else if (strcmp(a, "--org-name") == 0)
			slot = &o->org_name;
		else if (strcmp(a, "--email") == 0)
			slot = &o->email;
		else if (strcmp(a, "--resolver") == 0)
			slot = &o->resolver;
		if (slot == NULL || v == NULL) {
			ctl_error("dmarc report: %s %s", a,
			          slot == NULL ? "is not an option"
			                       : "needs a value");
			return -1;
		}
		*slot = v;
		i++;
	}
	if (o->out != NULL && o->send != NULL) {
		ctl_error("dmarc report: --out or --send, not both");
		return -1;
	}
	if (o->out == NULL && o->send == NULL && !o->dry_run) {
		ctl_error("dmarc report: --out DIR or --send HOST:PORT");
		return -1;
	}
	return 0;
}

/* A JSON path as a string, or NULL. */
static const char *
dmarc_conf_str(json_t *root, const char *section, const char *sub,
               const char *key)
{
	json_t *v = json_object_get(root, section);

	if (sub != NULL)
		v = json_object_get(v, sub);
	v = json_object_get(v, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int
dmarc_copy(char *out, size_t size, const char *what, const char *s)
{
	if (strlen(s) >= size) {
		ctl_error("%s too long", what);
		return -1;
	}
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

/* The settings the server has: host name, report directory, PSL. */
static int
dmarc_settings(struct dmarc_run *r)
{
	const char *config = r->o.config, *host = NULL, *dir = NULL;
	const char *state = NULL, *psl = NULL;
	json_error_t jerr;
	json_t *root = NULL;
	int rc = -1;

	if (config != NULL) {
		root = json_load_file(config, JSON_REJECT_DUPLICATES, &jerr);
		if (root == NULL) {
			ctl_error("%s: %s", config, jerr.text);
			return -1;
		}
		host = dmarc_conf_str(root, "server", NULL, "hostname");
		state = dmarc_conf_str(root, "server", NULL, "state_dir");
		dir = dmarc_conf_str(root, "modules", "dmarc", "report_dir");
		psl = dmarc_conf_str(root, "modules", "dmarc",
		                     "public_suffix_list");
	}
	if (host != NULL) {
		if (dmarc_copy(r->hostname, sizeof(r->hostname),
		               "server.hostname", host) != 0)
			goto out;
	} else if (gethostname(r->hostname, sizeof(r->hostname)) != 0) {
		ctl_error("gethostname: %s", strerror(errno));
		goto out;
	}
	r->hostname[sizeof(r->hostname) - 1] = '\0';
	if (!ctl_dmarc_domain_ok(r->hostname)) {
		ctl_error("host name \"%.64s\" is not a domain name (set "
		          "server.hostname)",
		          r->hostname);
		goto out;
	}
	if (r->o.dir != NULL)
		rc = dmarc_copy(r->report_dir, sizeof(r->report_dir), "--dir",
		                r->o.dir);
	else if (dir != NULL)
		rc = dmarc_copy(r->report_dir, sizeof(r->report_dir),
		                "report_dir", dir);
	else if (state != NULL &&
	         (size_t)snprintf(r->report_dir, sizeof(r->report_dir),
	                          "%s/dmarc", state) < sizeof(r->report_dir))
		rc = 0;
	else
		ctl_error("which report data? Use --dir DIR or -c CONFIG");
	if (rc == 0)
		rc = dmarc_copy(r->psl_path, sizeof(r->psl_path),
		                "public_suffix_list",
		                psl != NULL ? psl : DMARC_DEFAULT_PSL);
out:
	json_decref(root);
	return rc;
}

/* --day, or yesterday (UTC): the day a daily run after midnight wants. */
static int
dmarc_day(struct dmarc_run *r)
{
	struct tm tm;
	time_t t;
	char *end;

	if (r->o.day == NULL) {
		t = time(NULL) - 86400;
		r->begin = (int64_t)(t - t % 86400);
	} else {
		memset(&tm, 0, sizeof(tm));
		end = strptime(r->o.day, "%Y-%m-%d", &tm);
		if (end == NULL || *end != '\0' || strlen(r->o.day) != 10) {
			ctl_error("--day wants YYYY-MM-DD: %s", r->o.day);
			return -1;
		}
		r->begin = (int64_t)timegm(&tm);
	}
	r->end = r->begin + 86399;
	return 0;
}

static int
dmarc_identity(struct dmarc_run *r)
{
	unsigned char rnd[8];
	size_t i;

	if (r->o.email != NULL) {
		if (dmarc_copy(r->email, sizeof(r->email), "--email",
		               r->o.email) != 0)
			return -1;
	} else if ((size_t)snprintf(r->email, sizeof(r->email), "postmaster@%s",
	                            r->hostname) >= sizeof(r->email)) {
		ctl_error("host name too long");
		return -1;
	}
	if (!ctl_dmarc_addr_ok(r->email)) {
		ctl_error("--email: not a usable address: %.80s", r->email);
		return -1;
	}
	if (r->o.org_name == NULL)
		r->o.org_name = r->hostname;
	for (i = 0; r->o.org_name[i] != '\0'; i++)
		if (r->o.org_name[i] < 0x20 || r->o.org_name[i] > 0x7e ||
		    i >= 128) {
			ctl_error("--org-name: printable ASCII, up to 128 "
			          "characters");
			return -1;
		}
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		ctl_error("getrandom: %s", strerror(errno));
		return -1;
	}
	for (i = 0; i < sizeof(rnd); i++)
		(void)snprintf(r->run_id + 2 * i, 3, "%02x", rnd[i]);
	return 0;
}

/* Read the day's file into @a. @return 0, 1 (no file), or -1. */
static int
dmarc_read(struct dmarc_run *r, struct ctl_dmarc_agg *a, char *path,
           size_t size)
{
	time_t day = (time_t)r->begin;
	char name[32];
	struct tm tm;
	char *line;
	size_t n = 0;
	bool too_long = false;
	FILE *f;
	int ch, rc = 0;

	/* The module's name for the day (dmarc_report_file_name()). */
	if (gmtime_r(&day, &tm) == NULL ||
	    strftime(name, sizeof(name), "%Y-%m-%d.jsonl", &tm) == 0)
		return -1;
	if ((size_t)snprintf(path, size, "%s/%s", r->report_dir, name) >=
	    size) {
		ctl_error("report directory path too long");
		return -1;
	}
	f = fopen(path, "re");
	if (f == NULL) {
		if (errno == ENOENT)
			return 1;
		ctl_error("%s: %s", path, strerror(errno));
		return -1;
	}
	line = malloc(CTL_DMARC_LINE_MAX + 1);
	if (line == NULL) {
		(void)fclose(f);
		ctl_error("out of memory");
		return -1;
	}
	/* A line longer than the bound is skipped to its end, never
	 * held whole. */
	for (;;) {
		ch = getc(f);
		if (ch != '\n' && ch != EOF) {
			if (n < CTL_DMARC_LINE_MAX)
				line[n++] = (char)ch;
			else
				too_long = true;
			continue;
		}
		if (n > 0 || too_long) {
			r->lines++;
			rc = too_long ? CTL_DMARC_LINE_MALFORMED
			              : ctl_dmarc_agg_add(a, line, n);
			if (rc == CTL_DMARC_LINE_MALFORMED)
				r->malformed++;
			else if (rc == CTL_DMARC_LINE_FULL)
				r->over_limit++;
			else if (rc == CTL_DMARC_LINE_NOMEM)
				break;
		}
		n = 0;
		too_long = false;
		if (ch == EOF)
			break;
	}
	rc = rc == CTL_DMARC_LINE_NOMEM ? -1 : 0;
	if (rc != 0)
		ctl_error("out of memory");
	else if (ferror(f)) {
		ctl_error("%s: read error", path);
		rc = -1;
	}
	free(line);
	(void)fclose(f);
	return rc;
}

/* Section 7.1: a destination outside the policy domain's
 * Organizational Domain must have agreed to receive its reports. */
static bool
dmarc_same_org(const struct dmarc_run *r, const char *policy_domain,
               const char *rua_domain)
{
	char a[DMARC_NAME_MAX + 1], b[DMARC_NAME_MAX + 1];
	size_t pl = strlen(policy_domain), rl = strlen(rua_domain);

	if (r->psl != NULL &&
	    dmarc_org_domain(r->psl, policy_domain, a, sizeof(a)) == 0 &&
	    dmarc_org_domain(r->psl, rua_domain, b, sizeof(b)) == 0)
		return strcmp(a, b) == 0;
	/* Without the list: the same domain, or one inside the other. */
	if (pl == rl)
		return strcmp(policy_domain, rua_domain) == 0;
	if (pl > rl)
		return policy_domain[pl - rl - 1] == '.' &&
		       strcmp(policy_domain + pl - rl, rua_domain) == 0;
	return rua_domain[rl - pl - 1] == '.' &&
	       strcmp(rua_domain + rl - pl, policy_domain) == 0;
}

static int
dmarc_write_eml(const char *dir, const char *report_id, unsigned serial,
                const struct ctl_dmarc_buf *msg, char *path, size_t size)
{
	size_t off = 0;
	ssize_t n;
	int fd, err = 0;

	if ((size_t)snprintf(path, size, "%s/%s.%u.eml", dir, report_id,
	                     serial) >= size)
		return ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	          0640);
	if (fd < 0)
		return errno;
	while (off < msg->len) {
		n = write(fd, msg->data + off, msg->len - off);
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
	if (err != 0)
		(void)unlink(path);
	return err;
}

/* One copy of the report to @d. */
static void
dmarc_deliver(struct dmarc_run *r, const struct ctl_dmarc_group *g,
              const struct ctl_dmarc_dest *d, struct ctl_dmarc_msg *m,
              const struct ctl_dmarc_buf *gz)
{
	struct ctl_dmarc_buf msg;
	char why[512], path[4200];
	int ok, err;

	if (d->max_size != 0 && gz->len > d->max_size) {
		printf("%s: %s: skipped, the report (%zu bytes) is over its "
		       "size limit (%llu)\n",
		       g->policy_domain, d->addr, gz->len,
		       (unsigned long long)d->max_size);
		r->skipped++;
		return;
	}
	if (!dmarc_same_org(r, g->policy_domain, d->domain)) {
		if (!r->o.verify_external) {
			ok = 1;
		} else {
			ok = ctl_dmarc_external_ok(g->policy_domain, d->domain,
			                           why, sizeof(why));
		}
		if (ok < 0) {
			ctl_error("%s: %s: %s", g->policy_domain, d->addr, why);
			r->failed++;
			return;
		}
		if (ok == 0) {
			printf("%s: %s: skipped, external destination "
			       "without authorization (%s)\n",
			       g->policy_domain, d->addr, why);
			r->skipped++;
			return;
		}
	}
	m->to = d->addr;
	ctl_dmarc_buf_init(&msg);
	if (ctl_dmarc_message(m, gz->data, gz->len, &msg) != 0) {
		ctl_error("%s: out of memory", g->policy_domain);
		r->failed++;
		goto out;
	}
	if (r->o.dry_run) {
		printf("%s: %s: would send report %s (%llu messages, %zu "
		       "records, %zu bytes)\n",
		       g->policy_domain, d->addr, m->report_id,
		       (unsigned long long)g->messages, g->nrows, msg.len);
		r->messages++;
	} else if (r->o.out != NULL) {
		err = dmarc_write_eml(r->o.out, m->report_id, m->serial, &msg,
		                      path, sizeof(path));
		if (err != 0) {
			ctl_error("%s: %s", path, strerror(err));
			r->failed++;
			goto out;
		}
		printf("%s: %s: report %s written to %s\n", g->policy_domain,
		       d->addr, m->report_id, path);
		r->messages++;
	} else {
		if (ctl_dmarc_smtp_send(r->o.send, r->hostname, r->email,
		                        d->addr, msg.data, msg.len, why,
		                        sizeof(why)) != 0) {
			ctl_error("%s: %s: %s: %s", g->policy_domain, d->addr,
			          r->o.send, why);
			r->failed++;
			goto out;
		}
		printf("%s: %s: report %s sent\n", g->policy_domain, d->addr,
		       m->report_id);
		r->messages++;
	}
out:
	ctl_dmarc_buf_free(&msg);
}

static void
dmarc_group(struct dmarc_run *r, const struct ctl_dmarc_group *g, size_t idx)
{
	struct ctl_dmarc_dest dests[CTL_DMARC_DEST_MAX];
	struct ctl_dmarc_buf xml, gz;
	struct ctl_dmarc_meta meta;
	struct ctl_dmarc_msg m;
	char report_id[64], file[600], boundary[40];
	size_t ndest, skipped, i;
	struct tm tm;
	time_t t = (time_t)r->begin;

	if (g->nrows == 0)
		return;
	ndest =
	    ctl_dmarc_rua_parse(g->rua, dests, CTL_DMARC_DEST_MAX, &skipped);
	if (skipped > 0)
		printf("%s: %zu rua URI(s) not used (only mailto:, at most "
		       "%d): %s\n",
		       g->policy_domain, skipped, CTL_DMARC_DEST_MAX, g->rua);
	if (ndest == 0)
		return;
	if (gmtime_r(&t, &tm) == NULL)
		return;
	(void)snprintf(report_id, sizeof(report_id), "%04d%02d%02d.%s.%zu",
	               tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, r->run_id,
	               idx + 1);
	(void)snprintf(boundary, sizeof(boundary), "=_petrel_dmarc_%s",
	               r->run_id);
	/* RFC 7489 7.2.1.1: receiver!policy-domain!begin!end. */
	(void)snprintf(file, sizeof(file), "%s!%s!%lld!%lld.xml.gz",
	               r->hostname, g->policy_domain, (long long)r->begin,
	               (long long)r->end);
	meta.org_name = r->o.org_name;
	meta.email = r->email;
	meta.report_id = report_id;
	meta.begin = r->begin;
	meta.end = r->end;
	ctl_dmarc_buf_init(&xml);
	ctl_dmarc_buf_init(&gz);
	if (ctl_dmarc_xml(g, &meta, &xml) != 0 ||
	    ctl_dmarc_gzip(xml.data, xml.len, &gz) != 0) {
		ctl_error("%s: cannot build the report (out of memory)",
		          g->policy_domain);
		r->failed++;
		goto out;
	}
	r->reports++;
	memset(&m, 0, sizeof(m));
	m.from = r->email;
	m.policy_domain = g->policy_domain;
	m.submitter =
	    ctl_dmarc_domain_ok(r->o.org_name) ? r->o.org_name : r->hostname;
	m.report_id = report_id;
	m.msg_id_domain = r->hostname;
	m.file_name = file;
	m.boundary = boundary;
	m.date = (int64_t)time(NULL);
	m.begin = r->begin;
	m.end = r->end;
	for (i = 0; i < ndest; i++) {
		m.serial = (unsigned)i + 1;
		dmarc_deliver(r, g, &dests[i], &m, &gz);
	}
out:
	ctl_dmarc_buf_free(&xml);
	ctl_dmarc_buf_free(&gz);
}

static int
dmarc_report(struct dmarc_run *r)
{
	struct ctl_dmarc_agg *a;
	char path[4200], why[256];
	size_t i;
	int rc;

	if (dmarc_settings(r) != 0 || dmarc_day(r) != 0 ||
	    dmarc_identity(r) != 0)
		return CTL_EXIT_ERROR;
	if (r->o.out != NULL && access(r->o.out, W_OK) != 0) {
		ctl_error("--out %s: %s", r->o.out, strerror(errno));
		return CTL_EXIT_ERROR;
	}
	if (r->o.verify_external &&
	    ctl_dmarc_dns_init(r->o.resolver, why, sizeof(why)) != 0) {
		ctl_error("%s", why);
		return CTL_EXIT_ERROR;
	}
	a = ctl_dmarc_agg_new();
	if (a == NULL) {
		ctl_error("out of memory");
		return CTL_EXIT_ERROR;
	}
	rc = dmarc_read(r, a, path, sizeof(path));
	if (rc == 1) {
		printf("%s: no report data for that day\n", path);
		ctl_dmarc_agg_free(a);
		return CTL_EXIT_OK;
	}
	if (rc != 0 || ctl_dmarc_agg_finish(a) != 0) {
		ctl_dmarc_agg_free(a);
		return CTL_EXIT_ERROR;
	}
	if (r->malformed > 0)
		ctl_error("%s: %llu malformed line(s) skipped", path,
		          r->malformed);
	if (r->over_limit > 0)
		ctl_error("%s: %llu line(s) over the limits (%d reports, %d "
		          "records) skipped",
		          path, r->over_limit, CTL_DMARC_GROUPS_MAX,
		          CTL_DMARC_ROWS_MAX);
	/* The list only decides which destinations are external. */
	r->psl = dmarc_psl_load(r->psl_path, why, sizeof(why));
	if (r->psl == NULL)
		ctl_error("%s: %s (comparing domains without it)", r->psl_path,
		          why);
	for (i = 0; i < ctl_dmarc_agg_ngroups(a); i++)
		dmarc_group(r, ctl_dmarc_agg_group(a, i), i);
	printf("%s: %llu lines, %llu malformed; %u report(s), %u message(s) "
	       "%s, %u skipped, %u failed\n",
	       path, r->lines, r->malformed, r->reports, r->messages,
	       r->o.dry_run       ? "to send"
	       : r->o.out != NULL ? "written"
	                          : "sent",
	       r->skipped, r->failed);
	dmarc_psl_free(r->psl);
	ctl_dmarc_agg_free(a);
	return r->failed > 0 ? CTL_EXIT_ERROR : CTL_EXIT_OK;
}

int
ctl_dmarc_main(const char *config, int argc, char **argv)
{
	struct dmarc_run *r;
	int rc;

	if (argc < 1 || strcmp(argv[0], "report") != 0) {
		dmarc_usage();
		return CTL_EXIT_USAGE;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		ctl_error("out of memory");
		return CTL_EXIT_ERROR;
	}
	r->o.config = config;
	if (dmarc_parse(argc, argv, &r->o) != 0) {
		dmarc_usage();
		free(r);
		return CTL_EXIT_USAGE;
	}
	rc = dmarc_report(r);
	free(r);
	return rc;
}
