/* SPDX-License-Identifier: MIT */
/* Deliveries per second of a storage backend beside the disk's fsync rate. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <jansson.h>

#include "core/cycle.h"
#include "core/loop.h"

/*
 * usage: storage_bench MODULE.so SECTION-JSON DIR [COUNT]
 *
 * Everything happens inside DIR (relative paths of the section land
 * there), so the backend and the raw loop measure the same disk. The raw
 * loop is what one durable Maildir delivery costs at the least: write
 * 2 KB to a new file, fsync it, rename it into another directory, fsync
 * that directory. A ratio near 1 means the backend adds nothing to the
 * disk's cost; above 1 means it batches (group commit).
 */

struct bench_run {
	unsigned pending;
	unsigned failed;
	char reason[256];
};

static double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
bench_fail(const char *what)
{
	fprintf(stderr, "storage_bench: %s: %s\n", what, strerror(errno));
	return -1;
}

/* Loops per second of: write 2 KB, fsync, rename, fsync the directory. */
static double
bench_raw_fsync(unsigned count)
{
	char buf[2048], from[64], to[64];
	double start;
	int dir_fd;

	memset(buf, 'x', sizeof(buf));
	if ((mkdir("raw-tmp", 0700) != 0 && errno != EEXIST) ||
	    (mkdir("raw-new", 0700) != 0 && errno != EEXIST))
		return bench_fail("mkdir raw-*");
	dir_fd = open("raw-new", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return bench_fail("open raw-new");
	start = bench_now();
	for (unsigned i = 0; i < count; i++) {
		int fd;

		snprintf(from, sizeof(from), "raw-tmp/%u", i);
		snprintf(to, sizeof(to), "raw-new/%u", i);
		fd = open(from, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, buf, sizeof(buf)) != sizeof(buf) ||
		    fsync(fd) != 0 || close(fd) != 0 || rename(from, to) != 0 ||
		    fsync(dir_fd) != 0) {
			close(dir_fd);
			return bench_fail("raw loop");
		}
	}
	close(dir_fd);
	return count / (bench_now() - start);
}

static void
bench_done(const struct ptl_storage_result *res, void *arg)
{
	struct bench_run *run = arg;

	if (res->status != PTL_STORAGE_OK) {
		run->failed++;
		snprintf(run->reason, sizeof(run->reason), "%s", res->reason);
	}
	if (--run->pending == 0)
		ptl_loop_exit();
}

static int
bench_source(size_t size)
{
	char buf[4096];
	size_t off = 0;
	int fd = open(".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0)
		return bench_fail("O_TMPFILE");
	while (off < size) {
		size_t n = size - off < sizeof(buf) ? size - off : sizeof(buf);

		for (size_t i = 0; i < n; i++)
			buf[i] = (char)('a' + (off + i) % 26);
		if (off + n == size)
			buf[n - 1] = '\n';
		if (write(fd, buf, n) != (ssize_t)n) {
			close(fd);
			return bench_fail("write source");
		}
		off += n;
	}
	return fd;
}

/*
 * Deliveries per second: @p batch at a time submitted before the loop
 * runs (1: one after the other), @p count in all.
 */
static double
bench_deliveries(const struct ptl_service *svc, int fd, size_t size,
                 unsigned count, unsigned batch)
{
	const struct ptl_storage_methods *m = svc->methods;
	struct bench_run run = {0};
	double start = bench_now();
	static unsigned user_serial;
	char user[64];

	/* A fresh mailbox per measurement: no growth from the last one. */
	snprintf(user, sizeof(user), "bench%u@example.test", ++user_serial);
	for (unsigned done = 0; done < count;) {
		unsigned n = count - done < batch ? count - done : batch;

		for (unsigned i = 0; i < n; i++) {
			struct ptl_storage_delivery d = {
			    .user = user,
			    .fd = fd,
			    .size = size,
			    .envelope_from = "bench@example.org",
			    .received_at = 1700000000,
			};

			run.pending++;
			if (m->deliver(svc->instance, &d, bench_done, &run) !=
			    PTL_AGAIN) {
				fprintf(stderr, "storage_bench: deliver "
				                "refused\n");
				return -1;
			}
		}
		while (run.pending > 0)
			if (ptl_loop_run() != PTL_OK)
				return -1;
		done += n;
	}
	if (run.failed > 0) {
		fprintf(stderr, "storage_bench: %u deliveries failed: %s\n",
		        run.failed, run.reason);
		return -1;
	}
	return count / (bench_now() - start);
}

static struct ptl_cycle *
bench_load(const char *module, const char *section_text)
{
	char module_dir[PATH_MAX], name[64], path[PATH_MAX], msg[1024];
	json_t *root, *section;
	struct ptl_cycle *cycle;
	struct ptl_error err;
	json_error_t jerr;
	const char *base;
	char *dot;

	if (realpath(module, module_dir) == NULL) {
		bench_fail(module);
		return NULL;
	}
	base = strrchr(module_dir, '/') + 1;
	snprintf(name, sizeof(name), "%s", base);
	dot = strstr(name, ".so");
	if (dot != NULL)
		*dot = '\0';
	section = json_loads(section_text, 0, &jerr);
	if (section == NULL || !json_is_object(section)) {
		fprintf(stderr, "storage_bench: section: %s\n", jerr.text);
		return NULL;
	}
	json_object_set_new(section, "path", json_string(module_dir));
	*strrchr(module_dir, '/') = '\0';
	root = json_pack("{s:{s:s}, s:{s:o}}", "server", "hostname",
	                 "bench.example.test", "modules", name, section);
	if (root == NULL)
		return NULL;
	if (geteuid() == 0)
		json_object_set_new(json_object_get(root, "server"), "user",
		                    json_string("nobody"));
	snprintf(path, sizeof(path), "bench-%s.json", name);
	if (json_dump_file(root, path, JSON_INDENT(1)) != 0) {
		json_decref(root);
		bench_fail(path);
		return NULL;
	}
	json_decref(root);
	if (ptl_cycle_load(path, module_dir, &cycle, &err) != PTL_OK ||
	    ptl_cycle_init_master(cycle, &err) != PTL_OK ||
	    ptl_cycle_init_worker(cycle, &err) != PTL_OK) {
		ptl_cycle_format_error(path, &err, msg, sizeof(msg));
		fprintf(stderr, "storage_bench: %s\n", msg);
		return NULL;
	}
	return cycle;
}

int
main(int argc, char **argv)
{
	static const size_t sizes[] = {2 * 1024, 100 * 1024};
	const struct ptl_service *svc;
	unsigned count = argc > 4 ? (unsigned)atoi(argv[4]) : 300;
	struct ptl_cycle *cycle;
	struct ptl_error err;
	double raw;

	if (argc < 4 || count == 0) {
		fprintf(stderr, "usage: storage_bench MODULE.so SECTION-JSON "
		                "DIR [COUNT]\n");
		return 2;
	}
	if (chdir(argv[3]) != 0) {
		bench_fail(argv[3]);
		return 1;
	}
	if (ptl_loop_init(&err) != PTL_OK) {
		fprintf(stderr, "storage_bench: %s\n", err.text);
		return 1;
	}
	cycle = bench_load(argv[1], argv[2]);
	if (cycle == NULL)
		return 1;
	svc = ptl_service_find(PTL_STORAGE_SERVICE, PTL_STORAGE_VERSION);
	if (svc == NULL) {
		fprintf(stderr, "storage_bench: no storage service\n");
		return 1;
	}
	raw = bench_raw_fsync(count);
	if (raw <= 0)
		return 1;
	printf("%-8s %-6s %-9s %12s %12s %7s\n", "backend", "size", "mode",
	       "deliveries/s", "raw loops/s", "ratio");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int fd = bench_source(sizes[i]);

		if (fd < 0)
			return 1;
		for (unsigned batch = 1; batch <= 64; batch *= 64) {
			double rate =
			    bench_deliveries(svc, fd, sizes[i], count, batch);

			if (rate <= 0) {
				close(fd);
				return 1;
			}
			printf("%-8s %4zuKB %-9s %12.0f %12.0f %7.2f\n",
			       ptl_instance_module(&cycle->instances[0])->name,
			       sizes[i] / 1024,
			       batch == 1 ? "serial" : "64-at-once", rate, raw,
			       rate / raw);
			fflush(stdout);
		}
		close(fd);
	}
	ptl_cycle_exit_worker(cycle);
	ptl_task_fini();
	ptl_cycle_free(cycle, true);
	ptl_loop_fini();
	return 0;
}
