/* SPDX-License-Identifier: MIT */
/* Unit tests: the module loader's refusals, file checks and ABI checks. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/cycle.h"

/* snprintf that must not truncate (test paths are short). */
#define FMT(buf, ...)                                                          \
	assert_true((size_t)snprintf(buf, sizeof(buf), __VA_ARGS__) <          \
	            sizeof(buf))

/*
 * The test modules are dlopen'ed with RTLD_NOW: every core function they
 * call must be in this executable, which links the core statically and
 * so only has the objects something references.
 */
__attribute__((used)) static void (*const keep_symbols[])(void) = {
    (void (*)(void))ptl_service_register, (void (*)(void))ptl_service_find,
    (void (*)(void))ptl_instance_module,  (void (*)(void))ptl_log,
    (void (*)(void))ptl_error_set_path,
};

static const char *
module_dir(void)
{
	const char *dir = getenv("PETREL_TEST_MODULE_DIR");

	assert_non_null(dir);
	return dir;
}

/* Load @name from the test module directory; return the error text. */
static int
load(const char *name, const struct ptl_module **mod_out, struct ptl_error *err)
{
	memset(err, 0, sizeof(*err));
	*mod_out = NULL;
	return ptl_module_load(name, NULL, module_dir(), mod_out, err);
}

static void
assert_refused(const char *name, const char *phrase)
{
	const struct ptl_module *mod;
	struct ptl_error err;
	char file[PATH_MAX];

	assert_int_equal(load(name, &mod, &err), PTL_ERROR);
	assert_null(mod);
	if (strstr(err.text, phrase) == NULL)
		fail_msg("%s: \"%s\" lacks \"%s\"", name, err.text, phrase);
	/* Every refusal names the file. */
	FMT(file, "%s/%s.so", module_dir(), name);
	if (strstr(err.text, file) == NULL)
		fail_msg("%s: \"%s\" does not name %s", name, err.text, file);
}

static void
test_bad_magic(void **state)
{
	assert_refused("bad_magic", ".so: bad magic 0x4e4f5045, not a Petrel "
	                            "module");
}

static void
test_bad_major(void **state)
{
	assert_refused("bad_major", ".so: ABI major 2, this petrel needs 1");
}

static void
test_minor_too_new(void **state)
{
	char phrase[128];

	FMT(phrase, ".so: ABI minor %d is newer than this petrel's 1.%d",
	    PTL_ABI_MINOR + 1, PTL_ABI_MINOR);
	assert_refused("minor_too_new", phrase);
}

static void
test_small_struct(void **state)
{
	char phrase[128];

	FMT(phrase, ".so: descriptor size %zu too small for ABI 1.%d",
	    offsetof(struct ptl_module, reserved), PTL_ABI_MINOR);
	assert_refused("small_struct", phrase);
}

static void
test_no_symbol(void **state)
{
	assert_refused("no_symbol",
	               ".so: no symbol petrel_module (not a Petrel module)");
}

static void
test_wrong_name(void **state)
{
	assert_refused("wrong_name", ".so: module calls itself "
	                             "\"other_name\", config names it "
	                             "\"wrong_name\"");
}

static void
test_missing_file(void **state)
{
	assert_refused("does_not_exist", "cannot open module ");
	assert_refused("does_not_exist", "No such file or directory");
}

static void
test_bad_names_and_paths(void **state)
{
	const struct ptl_module *mod = NULL;
	struct ptl_error err;

	/* A name must never walk out of the module directory. */
	assert_int_equal(
	    ptl_module_load("../unit/x", NULL, module_dir(), &mod, &err),
	    PTL_ERROR);
	assert_non_null(strstr(err.text, "invalid module name"));
	assert_int_equal(ptl_module_load("", NULL, module_dir(), &mod, &err),
	                 PTL_ERROR);
	assert_int_equal(
	    ptl_module_load("provider_a", "provider_a.so", NULL, &mod, &err),
	    PTL_ERROR);
	assert_string_equal(err.text,
	                    "module path provider_a.so is not absolute");
	assert_int_equal(
	    ptl_module_load("provider_a", NULL, "rel/dir", &mod, &err),
	    PTL_ERROR);
	assert_null(mod);
}

static void
test_good_module_cached(void **state)
{
	const struct ptl_module *mod, *again, *explicit;
	struct ptl_error err;
	char path[PATH_MAX];

	assert_int_equal(load("provider_a", &mod, &err), PTL_OK);
	assert_non_null(mod);
	assert_string_equal(mod->name, "provider_a");
	assert_int_equal(mod->magic, PTL_MODULE_MAGIC);
	assert_non_null(mod->init_master);

	/* A reload finds the same file: no second dlopen, same descriptor. */
	assert_int_equal(load("provider_a", &again, &err), PTL_OK);
	assert_ptr_equal(again, mod);
	FMT(path, "%s/./provider_a.so", module_dir());
	assert_int_equal(
	    ptl_module_load("provider_a", path, NULL, &explicit, &err), PTL_OK);
	assert_ptr_equal(explicit, mod);

	/* The cache does not bypass the name check. */
	assert_int_equal(
	    ptl_module_load("provider_b", path, NULL, &explicit, &err),
	    PTL_ERROR);
	assert_non_null(strstr(err.text, "module calls itself "
	                                 "\"provider_a\", config names it "
	                                 "\"provider_b\""));
}

/* A private directory holding a copy of consumer.so. */
struct copy {
	char dir[PATH_MAX];
	char file[PATH_MAX];
};

static void
copy_module(struct copy *c, const char *name)
{
	char src[PATH_MAX], buf[8192];
	int in, out;
	ssize_t n;

	FMT(c->dir, "/tmp/petrel-loader-XXXXXX");
	assert_non_null(mkdtemp(c->dir));
	FMT(c->file, "%s/%s.so", c->dir, name);
	FMT(src, "%s/%s.so", module_dir(), name);
	in = open(src, O_RDONLY | O_CLOEXEC);
	assert_true(in >= 0);
	out = open(c->file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	(void)close(in);
	(void)close(out);
	/* mkdtemp and open honour the umask: set the modes the tests expect. */
	assert_int_equal(chmod(c->file, 0644), 0);
	assert_int_equal(chmod(c->dir, 0755), 0);
}

static int
copy_setup(void **state)
{
	static struct copy c;

	memset(&c, 0, sizeof(c));
	*state = &c;
	return 0;
}

/* A teardown, so that a failed assertion leaves no directory behind. */
static int
copy_teardown(void **state)
{
	struct copy *c = *state;

	if (c->file[0] != '\0')
		(void)unlink(c->file);
	if (c->dir[0] != '\0')
		(void)rmdir(c->dir);
	return 0;
}

static void
assert_copy_refused(struct copy *c, const char *name, const char *phrase)
{
	const struct ptl_module *mod = NULL;
	struct ptl_error err;

	assert_int_equal(ptl_module_load(name, NULL, c->dir, &mod, &err),
	                 PTL_ERROR);
	assert_null(mod);
	if (strstr(err.text, phrase) == NULL)
		fail_msg("\"%s\" lacks \"%s\"", err.text, phrase);
}

static void
test_unsafe_permissions(void **state)
{
	char phrase[PATH_MAX + 64];
	const struct ptl_module *mod;
	struct ptl_error err;
	struct copy *c = *state;

	copy_module(c, "consumer");
	FMT(phrase, "%s: writable by group or others, refusing to load",
	    c->file);

	assert_int_equal(chmod(c->file, 0664), 0);
	assert_copy_refused(c, "consumer", phrase);
	assert_int_equal(chmod(c->file, 0646), 0);
	assert_copy_refused(c, "consumer", phrase);
	assert_int_equal(chmod(c->file, 0644), 0);

	/* The directory counts too: whoever can write it can swap the file. */
	FMT(phrase, "%s: writable by group or others, refusing to load",
	    c->dir);
	assert_int_equal(chmod(c->dir, 0777), 0);
	assert_copy_refused(c, "consumer", phrase);
	assert_int_equal(chmod(c->dir, 0775), 0);
	assert_copy_refused(c, "consumer", phrase);
	assert_int_equal(chmod(c->dir, 0755), 0);

	/* Safe again: it loads (and the loader never ran the refused ones). */
	assert_int_equal(ptl_module_load("consumer", NULL, c->dir, &mod, &err),
	                 PTL_OK);
	assert_string_equal(mod->name, "consumer");
}

static void
test_foreign_owner(void **state)
{
	char phrase[PATH_MAX + 64];
	struct copy *c = *state;

	if (geteuid() != 0)
		skip(); /* only root can give a file away */
	copy_module(c, "provider_b");
	assert_int_equal(chown(c->file, 12345, 0), 0);
	FMT(phrase,
	    "%s: owned by uid 12345, not root or the running user, "
	    "refusing to load",
	    c->file);
	assert_copy_refused(c, "provider_b", phrase);
	assert_int_equal(chown(c->file, 0, 0), 0);
	assert_int_equal(chown(c->dir, 12345, 0), 0);
	FMT(phrase, "%s: owned by uid 12345", c->dir);
	assert_copy_refused(c, "provider_b", phrase);
}

static void
test_not_regular_file(void **state)
{
	char dir[PATH_MAX], sub[PATH_MAX];

	FMT(dir, "/tmp/petrel-loader-XXXXXX");
	assert_non_null(mkdtemp(dir));
	FMT(sub, "%s/adir.so", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	{
		const struct ptl_module *mod = NULL;
		struct ptl_error err;

		assert_int_equal(ptl_module_load("adir", NULL, dir, &mod, &err),
		                 PTL_ERROR);
		assert_non_null(strstr(err.text, "not a regular file"));
	}
	(void)rmdir(sub);
	(void)rmdir(dir);
}

/* ---- ptl_module_check_abi on hand-made descriptors ---- */

static struct ptl_module
good_descriptor(void)
{
	struct ptl_module m = {
	    PTL_MODULE_HEADER,
	    .name = "hand",
	};

	return m;
}

static void
assert_abi(const struct ptl_module *m, int rc, const char *text)
{
	struct ptl_error err;

	memset(&err, 0, sizeof(err));
	assert_int_equal(ptl_module_check_abi(m, "/x/hand.so", "hand", &err),
	                 rc);
	if (text != NULL)
		assert_string_equal(err.text, text);
}

static void
test_abi_accepts(void **state)
{
	struct ptl_module m = good_descriptor();

	assert_abi(&m, PTL_OK, NULL);
	/* Built by a newer header with more fields at the end: fine. */
	m.struct_size = (uint32_t)sizeof(m) + 64;
	assert_abi(&m, PTL_OK, NULL);
	/* Exactly the end of the reserved slots of ABI 1.0. */
	m.struct_size = (uint32_t)(offsetof(struct ptl_module, reserved) +
	                           sizeof(m.reserved));
	assert_abi(&m, PTL_OK, NULL);
}

static void
test_abi_refusals(void **state)
{
	struct ptl_module m = good_descriptor();
	char text[128];

	m.magic = 0x12345678u;
	assert_abi(&m, PTL_ERROR,
	           "/x/hand.so: bad magic 0x12345678, not a Petrel module");
	m = good_descriptor();
	m.abi_major = 0;
	assert_abi(&m, PTL_ERROR,
	           "/x/hand.so: ABI major 0, this petrel needs 1");
	m = good_descriptor();
	m.abi_minor = PTL_ABI_MINOR + 3;
	FMT(text,
	    "/x/hand.so: ABI minor %d is newer than this petrel's "
	    "1.%d",
	    PTL_ABI_MINOR + 3, PTL_ABI_MINOR);
	assert_abi(&m, PTL_ERROR, text);
	m = good_descriptor();
	m.struct_size = (uint32_t)sizeof(m) - 1;
	FMT(text, "/x/hand.so: descriptor size %zu too small for ABI 1.%d",
	    sizeof(m) - 1, PTL_ABI_MINOR);
	assert_abi(&m, PTL_ERROR, text);
	m = good_descriptor();
	m.struct_size = 16;
	FMT(text, "/x/hand.so: descriptor size 16 too small for ABI 1.%d",
	    PTL_ABI_MINOR);
	assert_abi(&m, PTL_ERROR, text);
	m = good_descriptor();
	m.name = "other";
	assert_abi(&m, PTL_ERROR,
	           "/x/hand.so: module calls itself \"other\", config names "
	           "it \"hand\"");
	m.name = NULL;
	assert_abi(&m, PTL_ERROR,
	           "/x/hand.so: module calls itself \"(null)\", config names "
	           "it \"hand\"");
}

static void
test_abi_check_order(void **state)
{
	struct ptl_module m = good_descriptor();
	struct ptl_error err;

	/* A foreign struct is reported as such, whatever else is wrong. */
	m.magic = 0;
	m.abi_major = 9;
	m.struct_size = 4;
	m.name = NULL;
	assert_int_equal(ptl_module_check_abi(&m, "f", "hand", &err),
	                 PTL_ERROR);
	assert_non_null(strstr(err.text, "bad magic"));
	/* The size is checked before fields past the frozen ones are read. */
	m = good_descriptor();
	m.struct_size = 4;
	m.name = "other";
	assert_int_equal(ptl_module_check_abi(&m, "f", "hand", &err),
	                 PTL_ERROR);
	assert_non_null(strstr(err.text, "descriptor size 4"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_magic),
	    cmocka_unit_test(test_bad_major),
	    cmocka_unit_test(test_minor_too_new),
	    cmocka_unit_test(test_small_struct),
	    cmocka_unit_test(test_no_symbol),
	    cmocka_unit_test(test_wrong_name),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_bad_names_and_paths),
	    cmocka_unit_test(test_good_module_cached),
	    cmocka_unit_test_setup_teardown(test_unsafe_permissions, copy_setup,
	                                    copy_teardown),
	    cmocka_unit_test_setup_teardown(test_foreign_owner, copy_setup,
	                                    copy_teardown),
	    cmocka_unit_test(test_not_regular_file),
	    cmocka_unit_test(test_abi_accepts),
	    cmocka_unit_test(test_abi_refusals),
	    cmocka_unit_test(test_abi_check_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
