/* SPDX-License-Identifier: MIT */
/* Unit tests: loading config files into cycles, module sections, services. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/cycle.h"
#include "core/log_internal.h"
#include "petrel_build.h"

/* snprintf that must not truncate (test paths are short). */
#define FMT(buf, ...)                                                          \
	assert_true((size_t)snprintf(buf, sizeof(buf), __VA_ARGS__) <          \
	            sizeof(buf))

/* The root rule needs a real account when the tests run as root. */
#define SERVER "\"server\": {\"user\": \"nobody\"}"

/*
 * Modules are dlopen'ed with RTLD_NOW: every core function they call must
 * be in this executable, which only has the core objects it references.
 */
__attribute__((used)) static void (*const keep_symbols[])(void) = {
    (void (*)(void))ptl_service_register,
    (void (*)(void))ptl_service_find,
    (void (*)(void))ptl_log,
    (void (*)(void))ptl_listener_add,
    (void (*)(void))ptl_conn_set_handler,
    (void (*)(void))ptl_conn_read_line,
    (void (*)(void))ptl_conn_write,
    (void (*)(void))ptl_conn_starttls,
    (void (*)(void))ptl_conn_is_tls,
    (void (*)(void))ptl_conn_tls_version,
    (void (*)(void))ptl_conn_tls_cipher,
    (void (*)(void))ptl_conn_close,
    (void (*)(void))ptl_conn_abort,
    (void (*)(void))ptl_conn_log,
    (void (*)(void))ptl_conn_pool,
    (void (*)(void))ptl_palloc,
    (void (*)(void))ptl_pcalloc,
};

static char tmp_dir[PATH_MAX];
static char conf_file[PATH_MAX];
static char test_modules[PATH_MAX]; /* build/tests/modules */
static char core_modules[PATH_MAX]; /* build/modules */

static int
setup(void **state)
{
	const char *dir = getenv("PETREL_TEST_MODULE_DIR");
	char *slash;

	if (dir == NULL) {
		fprintf(stderr, "PETREL_TEST_MODULE_DIR is not set\n");
		return -1;
	}
	(void)snprintf(test_modules, sizeof(test_modules), "%s", dir);
	/* build/tests/modules -> build/modules */
	(void)snprintf(core_modules, sizeof(core_modules), "%s", dir);
	slash = strrchr(core_modules, '/');
	if (slash != NULL)
		*slash = '\0';
	slash = strrchr(core_modules, '/');
	if (slash == NULL)
		return -1;
	(void)snprintf(slash,
	               sizeof(core_modules) - (size_t)(slash - core_modules),
	               "/modules");

	(void)snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/petrel-cycle-XXXXXX");
	if (mkdtemp(tmp_dir) == NULL)
		return -1;
	if ((size_t)snprintf(conf_file, sizeof(conf_file), "%s/t.json",
	                     tmp_dir) >= sizeof(conf_file))
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)unlink(conf_file);
	(void)rmdir(tmp_dir);
	return 0;
}

static void
write_conf(const char *fmt, ...)
{
	va_list ap;
	FILE *fp;

	fp = fopen(conf_file, "w");
	assert_non_null(fp);
	va_start(ap, fmt);
	assert_true(vfprintf(fp, fmt, ap) >= 0);
	va_end(ap);
	assert_int_equal(fclose(fp), 0);
}

/* Load conf_file; on failure *cycle_out is NULL and err filled. */
static int
load(const char *module_dir, struct ptl_cycle **cycle_out,
     struct ptl_error *err)
{
	int rc;

	memset(err, 0, sizeof(*err));
	rc = ptl_cycle_load(conf_file, module_dir, cycle_out, err);
	if (rc == PTL_OK)
		assert_non_null(*cycle_out);
	else
		assert_null(*cycle_out);
	return rc;
}

static void
assert_load_ok(const char *module_dir, struct ptl_cycle **cycle_out)
{
	struct ptl_error err;

	if (load(module_dir, cycle_out, &err) != PTL_OK)
		fail_msg("load failed: %s: %s", err.path, err.text);
}

static void
assert_load_error(const char *module_dir, const char *path, const char *phrase)
{
	struct ptl_cycle *cycle;
	struct ptl_error err;

	assert_int_equal(load(module_dir, &cycle, &err), PTL_ERROR);
	if (strcmp(err.path, path) != 0 || strstr(err.text, phrase) == NULL)
		fail_msg("got \"%s: %s\", want \"%s: ...%s...\"", err.path,
		         err.text, path, phrase);
}

static void
formatted(const struct ptl_error *err, char *out, size_t outsz)
{
	ptl_cycle_format_error(conf_file, err, out, outsz);
}

static void
test_syntax_error(void **state)
{
	struct ptl_cycle *cycle;
	struct ptl_error err;
	char want[PATH_MAX + 32], line[1024];

	write_conf("{\n  \"server\": {\n    \"user\": \"nobody\",,\n  }\n}\n");
	assert_int_equal(load(NULL, &cycle, &err), PTL_ERROR);
	assert_string_equal(err.path, "");
	/* FILE:LINE:COLUMN: syntax error: TEXT */
	FMT(want, "%s:3:", conf_file);
	assert_memory_equal(err.text, want, strlen(want));
	assert_non_null(strstr(err.text, ": syntax error: "));
	formatted(&err, line, sizeof(line));
	assert_string_equal(line, err.text);
}

static void
test_duplicate_key(void **state)
{
	struct ptl_cycle *cycle;
	struct ptl_error err;

	write_conf("{" SERVER ", " SERVER "}");
	assert_int_equal(load(NULL, &cycle, &err), PTL_ERROR);
	assert_non_null(strstr(err.text, ": syntax error: duplicate"));
	assert_string_equal(err.path, "");
}

static void
test_missing_file_and_not_object(void **state)
{
	struct ptl_cycle *cycle;
	struct ptl_error err;
	char want[PATH_MAX + 128], line[1024];

	(void)unlink(conf_file);
	assert_int_equal(load(NULL, &cycle, &err), PTL_ERROR);
	formatted(&err, line, sizeof(line));
	FMT(want,
	    "%s: cannot open the configuration: No such file or directory",
	    conf_file);
	assert_string_equal(line, want);

	write_conf("[1, 2]");
	assert_int_equal(load(NULL, &cycle, &err), PTL_ERROR);
	formatted(&err, line, sizeof(line));
	FMT(want, "%s: the configuration must be a JSON object", conf_file);
	assert_string_equal(line, want);
}

static void
test_unknown_top_key(void **state)
{
	struct ptl_cycle *cycle;
	struct ptl_error err;
	char want[PATH_MAX + 128], line[1024];

	write_conf("{" SERVER ", \"bogus\": 1}");
	assert_int_equal(load(NULL, &cycle, &err), PTL_ERROR);
	assert_string_equal(err.path, "bogus");
	formatted(&err, line, sizeof(line));
	FMT(want, "%s: bogus: unknown key \"bogus\"", conf_file);
	assert_memory_equal(line, want, strlen(want));

	/* The code relies on jansson refusing a NUL inside a key. */
	write_conf("{" SERVER ", \"tls\\u0000x\": {}}");
	assert_load_error(NULL, "", ": syntax error: ");
}

static void
test_unknown_server_key(void **state)
{
	write_conf("{\"server\": {\"user\": \"nobody\", \"bogus\": 1}}");
	assert_load_error(NULL, "server.bogus", "unknown key \"bogus\"");
	write_conf("{\"server\": {\"user\": \"nobody\", \"log\": {\"lvl\": "
	           "1}}}");
	assert_load_error(NULL, "server.log.lvl", "unknown key \"lvl\"");
	write_conf("{\"server\": 3}");
	assert_load_error(NULL, "server", "expected an object");
	write_conf("{" SERVER ", \"tls\": {\"certificates\": [{\"cert\": "
	           "\"c.pem\"}]}}");
	assert_load_error(NULL, "tls.certificates[0].key",
	                  "missing required key");
	write_conf("{" SERVER ", \"tls\": {\"min_version\": \"TLSv1.1\"}}");
	assert_load_error(NULL, "tls.min_version", "expected one of");
}

static void
test_server_defaults(void **state)
{
	struct ptl_cycle *cycle, *second;
	char cwd[PATH_MAX], want[PATH_MAX + 64], host[256];

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	write_conf("{" SERVER "}");
	assert_load_ok("/nonexistent/modules", &cycle);

	assert_string_equal(cycle->server.hostname, host);
	FMT(want, "%s/var/state", cwd);
	assert_string_equal(cycle->server.state_dir, want);
	FMT(want, "%s/var/state/petrel.pid", cwd);
	assert_string_equal(cycle->server.pid_file, want);
	assert_string_equal(cycle->server.workers, "auto");
	assert_int_equal(cycle->server.nworkers, sysconf(_SC_NPROCESSORS_ONLN));
	assert_int_equal(cycle->server.threads, 4);
	assert_int_equal(cycle->server.shutdown_timeout_ms, 10000);
	assert_int_equal(cycle->server.log.level, PTL_LOG_INFO);
	assert_int_equal(cycle->server.log.target, PTL_LOG_TARGET_STDERR);
	assert_string_equal(cycle->server.log.ident, "petrel");
	assert_false(cycle->server.log.json);
	assert_null(cycle->server.chroot);
	assert_int_equal(cycle->tls_conf.min_version, 0);
	assert_int_equal(cycle->tls_conf.certificates.count, 0);
	assert_int_equal(cycle->ninstances, 0);
	assert_string_equal(cycle->module_dir, "/nonexistent/modules");
	assert_string_equal(cycle->conf_path, conf_file);
	assert_string_equal(cycle->info.hostname, host);
	assert_string_equal(cycle->info.state_dir, cycle->server.state_dir);
	assert_int_equal(cycle->info.workers, cycle->server.nworkers);

	/* Each loaded generation gets the next number. */
	assert_load_ok(NULL, &second);
	assert_int_equal(second->generation, cycle->generation + 1);
	assert_string_equal(second->module_dir, PETREL_MODULE_DIR);
	ptl_cycle_free(second, false);
	ptl_cycle_free(cycle, false);
}

static void
test_server_values(void **state)
{
	struct ptl_cycle *cycle;
	char cwd[PATH_MAX], want[PATH_MAX + 64];

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	write_conf("{\"server\": {\"user\": \"nobody\", \"hostname\": "
	           "\"mx.example.test\", \"workers\": 3, \"state_dir\": "
	           "\"/srv/petrel\", \"pid_file\": \"run/p.pid\", "
	           "\"module_dir\": \"mods\", \"threads\": 8, "
	           "\"shutdown_timeout\": \"2m\", \"chroot\": \"/var/empty\", "
	           "\"log\": {\"level\": \"debug\", \"target\": \"file\", "
	           "\"file\": \"/tmp/x.log\", \"json\": true}},"
	           "\"tls\": {\"min_version\": \"TLSv1.3\"}}");
	assert_load_ok(NULL, &cycle);
	assert_string_equal(cycle->server.hostname, "mx.example.test");
	assert_int_equal(cycle->server.nworkers, 3);
	assert_string_equal(cycle->server.workers, "3");
	assert_int_equal(cycle->info.workers, 3);
	assert_string_equal(cycle->server.state_dir, "/srv/petrel");
	FMT(want, "%s/run/p.pid", cwd);
	assert_string_equal(cycle->server.pid_file, want);
	/* Relative module_dir: from the working directory too. */
	FMT(want, "%s/mods", cwd);
	assert_string_equal(cycle->module_dir, want);
	assert_int_equal(cycle->server.threads, 8);
	assert_int_equal(cycle->server.shutdown_timeout_ms, 120000);
	assert_string_equal(cycle->server.chroot, "/var/empty");
	assert_int_equal(cycle->server.log.level, PTL_LOG_DEBUG);
	assert_int_equal(cycle->server.log.target, PTL_LOG_TARGET_FILE);
	assert_string_equal(cycle->server.log.file, "/tmp/x.log");
	assert_true(cycle->server.log.json);
	assert_int_equal(cycle->tls_conf.min_version, 1);
	ptl_cycle_free(cycle, false);

	/* -M wins over server.module_dir. */
	write_conf("{\"server\": {\"user\": \"nobody\", \"module_dir\": "
	           "\"/a\", \"log\": {\"level\": \"error\", \"target\": "
	           "\"syslog\"}}}");
	assert_load_ok("/b", &cycle);
	assert_string_equal(cycle->module_dir, "/b");
	assert_int_equal(cycle->server.log.level, PTL_LOG_ERROR);
	assert_int_equal(cycle->server.log.target, PTL_LOG_TARGET_SYSLOG);
	ptl_cycle_free(cycle, false);
}

static void
test_server_errors(void **state)
{
	static const struct {
		const char *server; /* after "user" */
		const char *path;
		const char *phrase;
	} cases[] = {
	    {"\"workers\": 0", "server.workers", "\"auto\" or an integer"},
	    {"\"workers\": 257", "server.workers", "1..256"},
	    {"\"workers\": \"many\"", "server.workers", "\"auto\""},
	    {"\"workers\": 1.5", "server.workers", "\"auto\""},
	    {"\"threads\": 65", "server.threads", "expected an integer"},
	    {"\"hostname\": \"bad host\"", "server.hostname",
	     "expected a host name"},
	    {"\"hostname\": \"a\\r\\nb\"", "server.hostname",
	     "expected a host name"},
	    {"\"chroot\": \"jail\"", "server.chroot", "absolute path"},
	    {"\"state_dir\": \"\"", "server.state_dir", "must not be empty"},
	    {"\"shutdown_timeout\": \"2x\"", "server.shutdown_timeout",
	     "duration"},
	    {"\"log\": {\"target\": \"file\"}", "server.log.file",
	     "required when \"target\" is \"file\""},
	    {"\"log\": {\"level\": \"loud\"}", "server.log.level",
	     "expected one of"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_conf("{\"server\": {\"user\": \"nobody\", %s}}",
		           cases[i].server);
		assert_load_error(NULL, cases[i].path, cases[i].phrase);
	}
}

static void
test_root_rule(void **state)
{
	if (geteuid() != 0)
		skip(); /* the rule only applies to root */
	write_conf("{\"server\": {}}");
	assert_load_error(NULL, "server.user",
	                  "required when running as root (workers never run "
	                  "as root)");
	write_conf("{}");
	assert_load_error(NULL, "server.user", "required when running as root");
	write_conf("{\"server\": {\"user\": \"no_such_user_petrel\"}}");
	assert_load_error(NULL, "server.user",
	                  "unknown user \"no_such_user_petrel\"");
	write_conf("{\"server\": {\"user\": \"root\"}}");
	assert_load_error(NULL, "server.user", "is root");
	write_conf("{\"server\": {\"user\": \"nobody\", \"group\": "
	           "\"no_such_group_petrel\"}}");
	assert_load_error(NULL, "server.group",
	                  "unknown group \"no_such_group_petrel\"");
}

static void
test_example_module(void **state)
{
	struct ptl_cycle *cycle;
	struct {
		struct ptl_conf_list listen;
		const char *greeting;
		int64_t max_line;
	} * conf;

	write_conf("{" SERVER ", \"modules\": {\"example\": {\"listen\": "
	           "[{\"address\": \"127.0.0.1:2525\"}, {\"address\": "
	           "\"[::1]:2525\", \"tls\": \"implicit\"}]}}}");
	assert_load_ok(core_modules, &cycle);
	assert_int_equal(cycle->ninstances, 1);
	assert_string_equal(ptl_instance_module(&cycle->instances[0])->name,
	                    "example");
	conf = ptl_instance_conf(&cycle->instances[0]);
	assert_non_null(conf);
	assert_int_equal(conf->listen.count, 2);
	assert_string_equal(conf->greeting, "petrel example ready");
	assert_int_equal(conf->max_line, 1024);
	assert_ptr_equal(ptl_instance_pool(&cycle->instances[0]), cycle->pool);
	assert_non_null(json_object_get(
	    ptl_instance_section(&cycle->instances[0]), "listen"));
	ptl_cycle_free(cycle, false);
}

/* Same layout as the example module's service interface. */
struct example_svc_methods {
	unsigned version;
	const char *(*greeting)(void *inst);
};

static void
test_example_init_master(void **state)
{
	const struct example_svc_methods *m;
	const struct ptl_service *svc;
	struct ptl_cycle *cycle;
	struct ptl_error err;

	write_conf("{" SERVER ", \"modules\": {\"example\": {\"listen\": "
	           "[{\"address\": \"127.0.0.1:2525\"}, {\"address\": "
	           "\"127.0.0.1:2526\"}], \"greeting\": \"hi there\"}}}");
	assert_load_ok(core_modules, &cycle);
	if (ptl_cycle_init_master(cycle, &err) != PTL_OK)
		fail_msg("init_master: %s: %s", err.path, err.text);
	assert_int_equal(cycle->nlisteners, 2);
	svc = ptl_service_find("example_svc", 1);
	assert_non_null(svc);
	assert_ptr_equal(svc->provider, &cycle->instances[0]);
	m = svc->methods;
	assert_int_equal(m->version, 1);
	assert_string_equal(m->greeting(svc->instance), "hi there");
	ptl_cycle_free(cycle, true);
}

static void
test_example_nested_errors(void **state)
{
	char line[1024], want[PATH_MAX + 128];
	struct ptl_cycle *cycle;
	struct ptl_error err;

	write_conf("{" SERVER ", \"modules\": {\"example\": {\"listen\": "
	           "[{\"address\": \"127.0.0.1:2525\"}, {\"address\": "
	           "\"nope\"}]}}}");
	assert_int_equal(load(core_modules, &cycle, &err), PTL_ERROR);
	formatted(&err, line, sizeof(line));
	FMT(want,
	    "%s: modules.example.listen[1].address: expected \"host:port\"",
	    conf_file);
	assert_memory_equal(line, want, strlen(want));

	write_conf("{" SERVER ", \"modules\": {\"example\": {\"listen\": "
	           "[{\"address\": \"127.0.0.1:2525\"}], \"bogus\": 1}}}");
	assert_load_error(core_modules, "modules.example.bogus",
	                  "unknown key \"bogus\"");
	write_conf("{" SERVER ", \"modules\": {\"example\": {}}}");
	assert_load_error(core_modules, "modules.example.listen",
	                  "missing required key");
	write_conf("{" SERVER ", \"modules\": {\"example\": {\"listen\": "
	           "[{\"address\": \"*:25\"}], \"max_line\": 8}}}");
	assert_load_error(core_modules, "modules.example.max_line",
	                  "expected an integer");
	write_conf("{" SERVER ", \"modules\": {\"example\": {\"listen\": "
	           "[{\"address\": \"*:25\"}], \"greeting\": \"a\\r\\nb\"}}}");
	assert_load_error(core_modules, "modules.example.greeting",
	                  "control characters");
	/* check_config's relative path lands under the module section. */
	write_conf("{" SERVER ", \"modules\": {\"example\": {\"listen\": "
	           "[{\"address\": \"127.0.0.1:25\"}, {\"address\": "
	           "\"127.0.0.1:25\"}]}}}");
	assert_load_error(core_modules, "modules.example.listen[1].address",
	                  "address \"127.0.0.1:25\" is listed twice");
}

static void
test_module_refusals(void **state)
{
	write_conf("{" SERVER ", \"modules\": {\"bad_magic\": {}}}");
	assert_load_error(test_modules, "modules.bad_magic",
	                  "bad_magic.so: bad magic 0x4e4f5045, not a Petrel "
	                  "module");
	write_conf("{" SERVER ", \"modules\": {\"bad_major\": {\"path\": "
	           "\"%s/bad_major.so\"}}}",
	           test_modules);
	assert_load_error("/nonexistent", "modules.bad_major",
	                  "ABI major 2, this petrel needs 1");
	write_conf("{" SERVER ", \"modules\": {\"nosuch\": {}}}");
	assert_load_error(test_modules, "modules.nosuch",
	                  "cannot open module ");
	write_conf("{" SERVER ", \"modules\": {\"x\": {\"path\": \"x.so\"}}}");
	assert_load_error(test_modules, "modules.x.path",
	                  "expected an absolute path");
	write_conf("{" SERVER ", \"modules\": {\"x\": {\"path\": 5}}}");
	assert_load_error(test_modules, "modules.x.path", "expected a string");
	write_conf("{" SERVER ", \"modules\": {\"x\": 3}}");
	assert_load_error(test_modules, "modules.x", "expected an object");
	write_conf("{" SERVER ", \"modules\": [1]}");
	assert_load_error(test_modules, "modules", "expected an object");
	write_conf("{" SERVER ", \"modules\": {\"../tests\": {}}}");
	assert_load_error(test_modules, "modules.../tests",
	                  "invalid module name");
}

static void
test_module_config_checks(void **state)
{
	struct ptl_cycle *cycle;
	struct {
		int64_t count;
		const char *name;
	} * conf;

	write_conf("{" SERVER ", \"modules\": {\"bad_config\": {\"count\": "
	           "11, \"name\": \"x\"}}}");
	assert_load_error(test_modules, "modules.bad_config.count",
	                  "expected an integer");
	write_conf("{" SERVER ", \"modules\": {\"bad_config\": {\"count\": "
	           "2}}}");
	assert_load_error(test_modules, "modules.bad_config.name",
	                  "missing required key");
	write_conf("{" SERVER ", \"modules\": {\"bad_config\": {\"name\": "
	           "\"forbidden\"}}}");
	assert_load_error(test_modules, "modules.bad_config.name",
	                  "name \"forbidden\" is not allowed");
	/* "path" is the loader's: the module's key table never sees it. */
	write_conf("{" SERVER ", \"modules\": {\"bad_config\": {\"path\": "
	           "\"%s/bad_config.so\", \"count\": 10, \"name\": \"ok\"}}}",
	           test_modules);
	assert_load_ok("/nonexistent", &cycle);
	conf = ptl_instance_conf(&cycle->instances[0]);
	assert_int_equal(conf->count, 10);
	assert_string_equal(conf->name, "ok");
	assert_null(json_object_get(ptl_instance_section(&cycle->instances[0]),
	                            "path"));
	ptl_cycle_free(cycle, false);
}

static void
test_services_choice(void **state)
{
	const struct ptl_service *svc;
	struct ptl_cycle *cycle;
	struct ptl_error err;

	write_conf("{" SERVER ", \"modules\": {\"consumer\": {}, "
	           "\"provider_a\": {}, \"provider_b\": {}}}");
	assert_load_error(test_modules, "modules.provider_b",
	                  "service \"example_svc\" is provided by both "
	                  "\"provider_a\" and \"provider_b\"; choose one in "
	                  "\"services\"");
	write_conf("{" SERVER ", \"services\": {\"example_svc\": "
	           "\"consumer\"}, \"modules\": {\"consumer\": {}, "
	           "\"provider_a\": {}}}");
	assert_load_error(test_modules, "services.example_svc",
	                  "module \"consumer\" does not provide service "
	                  "\"example_svc\"");

	write_conf("{" SERVER ", \"services\": {\"example_svc\": "
	           "\"provider_b\"}, \"modules\": {\"consumer\": {}, "
	           "\"provider_a\": {}, \"provider_b\": {}}}");
	assert_load_ok(test_modules, &cycle);
	/* Providers before the consumer, otherwise the config order. */
	assert_string_equal(cycle->instances[0].module->name, "provider_a");
	assert_string_equal(cycle->instances[1].module->name, "provider_b");
	assert_string_equal(cycle->instances[2].module->name, "consumer");

	/* The whole lifecycle, as the single process (-f) runs it. */
	assert_int_equal(ptl_cycle_init_master(cycle, &err), PTL_OK);
	assert_ptr_equal(ptl_cycle_current, cycle);
	assert_true(cycle->instances[0].master_inited);
	svc = ptl_service_find("example_svc", 1);
	assert_non_null(svc);
	assert_string_equal(svc->provider->module->name, "provider_b");
	assert_int_equal(cycle->nservices, 1);
	assert_int_equal(ptl_cycle_init_worker(cycle, &err), PTL_OK);
	assert_true(cycle->instances[2].worker_inited);
	ptl_cycle_exit_worker(cycle);
	assert_false(cycle->instances[2].worker_inited);
	ptl_cycle_free(cycle, true);
	assert_null(ptl_cycle_current);
}

static void
test_needs_missing(void **state)
{
	write_conf("{" SERVER ", \"modules\": {\"needs_missing\": {}}}");
	assert_load_error(test_modules, "modules.needs_missing",
	                  "module \"needs_missing\" needs service "
	                  "\"nonexistent_svc\" v1, which no loaded module "
	                  "provides");
	write_conf("{" SERVER ", \"modules\": {\"consumer\": {}}}");
	assert_load_error(test_modules, "modules.consumer",
	                  "module \"consumer\" needs service \"example_svc\" "
	                  "v1, which no loaded module provides");
}

static int
helper_start(struct ptl_instance *inst, void *arg, struct ptl_error *err)
{
	return PTL_OK;
}

static void
test_helper_add(void **state)
{
	struct ptl_cycle *cycle;
	struct ptl_instance *inst;
	struct ptl_error err;

	write_conf("{" SERVER ", \"modules\": {\"provider_a\": {}}}");
	assert_load_ok(test_modules, &cycle);
	inst = &cycle->instances[0];
	assert_int_equal(
	    ptl_helper_add(inst, "relay", helper_start, NULL, &err), PTL_ERROR);
	assert_non_null(strstr(err.text, "only allowed in init_master"));

	/* As if init_master of the instance were running. */
	cycle->in_init_master = true;
	assert_int_equal(
	    ptl_helper_add(inst, "relay", helper_start, &err, &err), PTL_OK);
	assert_int_equal(
	    ptl_helper_add(inst, "relay", helper_start, NULL, &err), PTL_ERROR);
	assert_non_null(strstr(err.text, "already declared"));
	assert_int_equal(
	    ptl_helper_add(inst, "bad name", helper_start, NULL, &err),
	    PTL_ERROR);
	assert_int_equal(ptl_helper_add(inst, "queue", NULL, NULL, &err),
	                 PTL_ERROR);
	cycle->in_init_master = false;
	assert_int_equal(cycle->nhelpers, 1);
	assert_string_equal(cycle->helpers[0].name, "relay");
	assert_ptr_equal(cycle->helpers[0].inst, inst);
	assert_ptr_equal(cycle->helpers[0].arg, &err);
	ptl_cycle_free(cycle, false);
}

static void
test_init_master_failure(void **state)
{
	struct ptl_cycle *cycle;
	struct ptl_error err;

	/* Implicit TLS without any certificate: refused by init_master. */
	write_conf("{" SERVER ", \"modules\": {\"example\": {\"listen\": "
	           "[{\"address\": \"127.0.0.1:2525\", \"tls\": "
	           "\"implicit\"}]}}}");
	assert_load_ok(core_modules, &cycle);
	ptl_cycle_current = NULL;
	assert_int_equal(ptl_cycle_init_master(cycle, &err), PTL_ERROR);
	assert_string_equal(err.path, "modules.example");
	assert_non_null(strstr(err.text, "certificate"));
	/* The old generation (none here) stays current. */
	assert_null(ptl_cycle_current);
	assert_false(cycle->instances[0].master_inited);
	ptl_cycle_free(cycle, true);
}

static void
test_format_error(void **state)
{
	struct ptl_error err;
	char out[128];

	memset(&err, 0, sizeof(err));
	(void)ptl_error_set_path(&err, "modules.x.y", "bad");
	ptl_cycle_format_error("t.json", &err, out, sizeof(out));
	assert_string_equal(out, "t.json: modules.x.y: bad");
	(void)ptl_error_set(&err, "t.json:1:2: syntax error: oops");
	ptl_cycle_format_error("t.json", &err, out, sizeof(out));
	assert_string_equal(out, "t.json:1:2: syntax error: oops");
	(void)ptl_error_set(&err, "cannot load x.pem");
	ptl_cycle_format_error("t.json", &err, out, sizeof(out));
	assert_string_equal(out, "t.json: cannot load x.pem");
	ptl_cycle_format_error("t.json", &err, out, 8);
	assert_string_equal(out, "t.json:");
}

static void
test_server_info(void **state)
{
	struct ptl_cycle *cycle;

	ptl_cycle_current = NULL;
	assert_string_equal(ptl_server_info()->hostname, "localhost");
	write_conf("{\"server\": {\"user\": \"nobody\", \"hostname\": "
	           "\"mail.example.test\", \"workers\": 2}}");
	assert_load_ok(NULL, &cycle);
	ptl_cycle_current = cycle;
	ptl_cycle_set_worker_index(1);
	assert_string_equal(ptl_server_info()->hostname, "mail.example.test");
	assert_int_equal(ptl_server_info()->workers, 2);
	assert_int_equal(ptl_server_info()->worker_index, 1);
	ptl_cycle_set_worker_index(0);
	ptl_cycle_free(cycle, false);
	assert_null(ptl_cycle_current);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_syntax_error),
	    cmocka_unit_test(test_duplicate_key),
	    cmocka_unit_test(test_missing_file_and_not_object),
	    cmocka_unit_test(test_unknown_top_key),
	    cmocka_unit_test(test_unknown_server_key),
	    cmocka_unit_test(test_server_defaults),
	    cmocka_unit_test(test_server_values),
	    cmocka_unit_test(test_server_errors),
	    cmocka_unit_test(test_root_rule),
	    cmocka_unit_test(test_example_module),
	    cmocka_unit_test(test_example_init_master),
	    cmocka_unit_test(test_example_nested_errors),
	    cmocka_unit_test(test_module_refusals),
	    cmocka_unit_test(test_module_config_checks),
	    cmocka_unit_test(test_services_choice),
	    cmocka_unit_test(test_needs_missing),
	    cmocka_unit_test(test_helper_add),
	    cmocka_unit_test(test_init_master_failure),
	    cmocka_unit_test(test_format_error),
	    cmocka_unit_test(test_server_info),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
