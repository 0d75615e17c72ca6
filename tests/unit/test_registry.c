/* SPDX-License-Identifier: MIT */
/* Unit tests: service registration, lookup and the needs/provides graph. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/cycle.h"

/* A service methods struct: the version comes first. */
struct test_methods {
	unsigned version;
};

static const struct test_methods methods_v1 = {1};
static const struct test_methods methods_v2 = {2};

#define REFS(...)                                                              \
	(const struct ptl_service_ref[])                                       \
	{                                                                      \
		__VA_ARGS__,                                                   \
		{                                                              \
			NULL, 0                                                \
		}                                                              \
	}

static const struct ptl_module mod_provider_a = {
    PTL_MODULE_HEADER,
    .name = "provider_a",
    .provides = REFS({"example_svc", 1}),
};
static const struct ptl_module mod_provider_b = {
    PTL_MODULE_HEADER,
    .name = "provider_b",
    .provides = REFS({"example_svc", 1}),
};
static const struct ptl_module mod_provider_v2 = {
    PTL_MODULE_HEADER,
    .name = "provider_v2",
    .provides = REFS({"example_svc", 2}),
};
static const struct ptl_module mod_consumer = {
    PTL_MODULE_HEADER,
    .name = "consumer",
    .needs = REFS({"example_svc", 1}),
};
static const struct ptl_module mod_consumer_v2 = {
    PTL_MODULE_HEADER,
    .name = "consumer",
    .needs = REFS({"example_svc", 2}),
};
static const struct ptl_module mod_plain = {
    PTL_MODULE_HEADER,
    .name = "plain",
};

/* A hand-built cycle with up to 8 instances, no config file, no dlopen. */
struct test_cycle {
	struct ptl_cycle cycle;
	struct ptl_instance inst[8];
	json_t *choice;
};

static struct test_cycle *
tc_new(const struct ptl_module *const *mods, size_t n, const char *choice)
{
	struct test_cycle *tc = test_calloc(1, sizeof(*tc));
	size_t i;

	assert_non_null(tc);
	assert_true(n <= 8);
	tc->cycle.pool = ptl_pool_create(0);
	assert_non_null(tc->cycle.pool);
	for (i = 0; i < n; i++) {
		tc->inst[i].module = mods[i];
		tc->inst[i].cycle = &tc->cycle;
	}
	tc->cycle.instances = tc->inst;
	tc->cycle.ninstances = n;
	if (choice != NULL) {
		tc->choice = json_loads(choice, 0, NULL);
		assert_non_null(tc->choice);
		tc->cycle.services_choice = tc->choice;
	}
	ptl_cycle_current = &tc->cycle;
	return tc;
}

static void
tc_free(struct test_cycle *tc)
{
	ptl_cycle_current = NULL;
	json_decref(tc->choice);
	ptl_pool_destroy(tc->cycle.pool);
	test_free(tc);
}

static void
test_register_find(void **state)
{
	const struct ptl_module *mods[] = {&mod_provider_v2, &mod_plain};
	struct test_cycle *tc = tc_new(mods, 2, NULL);
	const struct ptl_service *svc;
	struct ptl_error err;
	int token;

	assert_null(ptl_service_find("example_svc", 1));
	assert_int_equal(ptl_service_register(&tc->inst[0], "example_svc", 2,
	                                      &methods_v2, &token, &err),
	                 PTL_OK);
	svc = ptl_service_find("example_svc", 1);
	assert_non_null(svc);
	assert_string_equal(svc->name, "example_svc");
	assert_int_equal(svc->version, 2);
	assert_ptr_equal(svc->methods, &methods_v2);
	assert_ptr_equal(svc->instance, &token);
	assert_ptr_equal(svc->provider, &tc->inst[0]);
	assert_ptr_equal(ptl_service_find("example_svc", 2), svc);
	assert_null(ptl_service_find("example_svc", 3));
	assert_null(ptl_service_find("other_svc", 0));
	assert_false(tc->cycle.services[0].per_process);
	tc_free(tc);
}

static void
test_register_lower_version(void **state)
{
	const struct ptl_module *mods[] = {&mod_provider_v2};
	struct test_cycle *tc = tc_new(mods, 1, NULL);
	struct ptl_error err;

	/* Declaring v2 and registering v1 is allowed (v2 is the ceiling). */
	assert_int_equal(ptl_service_register(&tc->inst[0], "example_svc", 1,
	                                      &methods_v1, NULL, &err),
	                 PTL_OK);
	assert_null(ptl_service_find("example_svc", 2));
	assert_non_null(ptl_service_find("example_svc", 1));
	tc_free(tc);
}

static void
test_register_version_over_declared(void **state)
{
	const struct ptl_module *mods[] = {&mod_provider_a};
	struct test_cycle *tc = tc_new(mods, 1, NULL);
	struct ptl_error err;

	assert_int_equal(ptl_service_register(&tc->inst[0], "example_svc", 2,
	                                      &methods_v2, NULL, &err),
	                 PTL_ERROR);
	assert_non_null(strstr(err.text, "v2 but declares v1"));
	assert_string_equal(err.path, "modules.provider_a");
	assert_null(ptl_service_find("example_svc", 0));
	tc_free(tc);
}

static void
test_register_methods_version_checked(void **state)
{
	const struct ptl_module *mods[] = {&mod_provider_v2};
	struct test_cycle *tc = tc_new(mods, 1, NULL);
	struct ptl_error err;

	assert_int_equal(ptl_service_register(&tc->inst[0], "example_svc", 2,
	                                      &methods_v1, NULL, &err),
	                 PTL_ERROR);
	assert_non_null(strstr(err.text, "with methods of v1"));
	tc_free(tc);
}

static void
test_register_undeclared(void **state)
{
	const struct ptl_module *mods[] = {&mod_plain};
	struct test_cycle *tc = tc_new(mods, 1, NULL);
	struct ptl_error err;

	assert_int_equal(ptl_service_register(&tc->inst[0], "example_svc", 1,
	                                      &methods_v1, NULL, &err),
	                 PTL_ERROR);
	assert_string_equal(err.text,
	                    "module \"plain\" registers service "
	                    "\"example_svc\", which its descriptor does not "
	                    "declare in provides");
	assert_null(ptl_service_find("example_svc", 0));
	tc_free(tc);
}

static void
test_register_duplicate(void **state)
{
	/* Two providers and no choice: the graph check refuses this config,
	 * and the registry refuses it too if it ever got that far. */
	const struct ptl_module *mods[] = {&mod_provider_a, &mod_provider_b};
	struct test_cycle *tc = tc_new(mods, 2, NULL);
	struct ptl_error err;

	assert_int_equal(ptl_service_register(&tc->inst[0], "example_svc", 1,
	                                      &methods_v1, NULL, &err),
	                 PTL_OK);
	assert_int_equal(ptl_service_register(&tc->inst[0], "example_svc", 1,
	                                      &methods_v1, NULL, &err),
	                 PTL_ERROR);
	assert_string_equal(err.text, "service \"example_svc\" is already "
	                              "registered by \"provider_a\"");
	assert_int_equal(ptl_service_register(&tc->inst[1], "example_svc", 1,
	                                      &methods_v1, NULL, &err),
	                 PTL_ERROR);
	assert_ptr_equal(ptl_service_find("example_svc", 1)->provider,
	                 &tc->inst[0]);
	assert_int_equal(tc->cycle.nservices, 1);
	tc_free(tc);
}

static void
test_register_choice_honoured(void **state)
{
	const struct ptl_module *mods[] = {&mod_provider_a, &mod_provider_b};
	struct test_cycle *tc =
	    tc_new(mods, 2, "{\"example_svc\": \"provider_b\"}");
	struct ptl_error err;

	/* Not chosen: succeeds and is ignored. */
	assert_int_equal(ptl_service_register(&tc->inst[0], "example_svc", 1,
	                                      &methods_v1, NULL, &err),
	                 PTL_OK);
	assert_null(ptl_service_find("example_svc", 1));
	assert_int_equal(ptl_service_register(&tc->inst[1], "example_svc", 1,
	                                      &methods_v1, NULL, &err),
	                 PTL_OK);
	assert_ptr_equal(ptl_service_find("example_svc", 1)->provider,
	                 &tc->inst[1]);
	tc_free(tc);
}

static void
test_register_per_process(void **state)
{
	const struct ptl_module *mods[] = {&mod_provider_a};
	struct test_cycle *tc = tc_new(mods, 1, NULL);
	struct ptl_error err;

	tc->cycle.in_init_worker = true;
	assert_int_equal(ptl_service_register(&tc->inst[0], "example_svc", 1,
	                                      &methods_v1, NULL, &err),
	                 PTL_OK);
	assert_true(tc->cycle.services[0].per_process);
	tc_free(tc);
}

static void
test_graph_ok_without_needs(void **state)
{
	const struct ptl_module *mods[] = {&mod_plain, &mod_provider_a};
	struct test_cycle *tc = tc_new(mods, 2, NULL);
	struct ptl_error err;

	assert_int_equal(ptl_registry_check_graph(&tc->cycle, &err), PTL_OK);
	assert_ptr_equal(tc->inst[0].module, &mod_plain);
	assert_ptr_equal(tc->inst[1].module, &mod_provider_a);
	tc_free(tc);
}

static void
test_graph_missing(void **state)
{
	const struct ptl_module *mods[] = {&mod_plain, &mod_consumer};
	struct test_cycle *tc = tc_new(mods, 2, NULL);
	struct ptl_error err;

	assert_int_equal(ptl_registry_check_graph(&tc->cycle, &err), PTL_ERROR);
	assert_string_equal(err.text,
	                    "module \"consumer\" needs service \"example_svc\" "
	                    "v1, which no loaded module provides");
	assert_string_equal(err.path, "modules.consumer");
	tc_free(tc);
}

static void
test_graph_two_providers(void **state)
{
	const struct ptl_module *mods[] = {&mod_consumer, &mod_provider_a,
	                                   &mod_provider_b};
	struct test_cycle *tc = tc_new(mods, 3, NULL);
	struct ptl_error err;

	assert_int_equal(ptl_registry_check_graph(&tc->cycle, &err), PTL_ERROR);
	assert_string_equal(err.text,
	                    "service \"example_svc\" is provided by both "
	                    "\"provider_a\" and \"provider_b\"; choose one in "
	                    "\"services\"");
	tc_free(tc);
}

static void
test_graph_two_providers_nobody_needs(void **state)
{
	const struct ptl_module *mods[] = {&mod_provider_a, &mod_provider_b};
	struct test_cycle *tc = tc_new(mods, 2, NULL);
	struct ptl_error err;

	/* Both would register in init_master: refused before that. */
	assert_int_equal(ptl_registry_check_graph(&tc->cycle, &err), PTL_ERROR);
	assert_non_null(strstr(err.text, "is provided by both"));
	tc_free(tc);
}

static void
test_graph_choice_fixes_two_providers(void **state)
{
	const struct ptl_module *mods[] = {&mod_consumer, &mod_provider_a,
	                                   &mod_provider_b};
	struct test_cycle *tc =
	    tc_new(mods, 3, "{\"example_svc\": \"provider_b\"}");
	struct ptl_error err;

	assert_int_equal(ptl_registry_check_graph(&tc->cycle, &err), PTL_OK);
	/* The consumer moved after its (chosen) provider. */
	assert_ptr_equal(tc->inst[0].module, &mod_provider_a);
	assert_ptr_equal(tc->inst[1].module, &mod_provider_b);
	assert_ptr_equal(tc->inst[2].module, &mod_consumer);
	tc_free(tc);
}

static void
test_graph_choice_not_a_provider(void **state)
{
	const struct ptl_module *mods[] = {&mod_consumer, &mod_provider_a,
	                                   &mod_plain};
	struct test_cycle *tc = tc_new(mods, 3, "{\"example_svc\": \"plain\"}");
	struct ptl_error err;

	assert_int_equal(ptl_registry_check_graph(&tc->cycle, &err), PTL_ERROR);
	assert_string_equal(err.path, "services.example_svc");
	assert_string_equal(err.text, "module \"plain\" does not provide "
	                              "service \"example_svc\"");
	tc_free(tc);
}

static void
test_graph_choice_unknown_module(void **state)
{
	const struct ptl_module *mods[] = {&mod_provider_a};
	struct test_cycle *tc =
	    tc_new(mods, 1, "{\"example_svc\": \"provider_z\"}");
	struct ptl_error err;

	assert_int_equal(ptl_registry_check_graph(&tc->cycle, &err), PTL_ERROR);
	assert_string_equal(err.path, "services.example_svc");
	assert_non_null(strstr(err.text, "\"provider_z\" is not configured"));
	tc_free(tc);
}

static void
test_graph_choice_not_a_string(void **state)
{
	const struct ptl_module *mods[] = {&mod_provider_a};
	struct test_cycle *tc = tc_new(mods, 1, "{\"example_svc\": 3}");
	struct ptl_error err;

	assert_int_equal(ptl_registry_check_graph(&tc->cycle, &err), PTL_ERROR);
	assert_string_equal(err.path, "services.example_svc");
	tc_free(tc);

	tc = tc_new(mods, 1, "[1]");
	assert_int_equal(ptl_registry_check_graph(&tc->cycle, &err), PTL_ERROR);
	assert_string_equal(err.path, "services");
	tc_free(tc);
}

static void
test_graph_version_too_low(void **state)
{
	const struct ptl_module *mods[] = {&mod_provider_a, &mod_consumer_v2};
	struct test_cycle *tc = tc_new(mods, 2, NULL);
	struct ptl_error err;

	assert_int_equal(ptl_registry_check_graph(&tc->cycle, &err), PTL_ERROR);
	assert_string_equal(err.text,
	                    "module \"consumer\" needs service \"example_svc\" "
	                    "v2, but \"provider_a\" provides v1");
	assert_string_equal(err.path, "modules.consumer");
	tc_free(tc);

	mods[0] = &mod_provider_v2;
	tc = tc_new(mods, 2, NULL);
	assert_int_equal(ptl_registry_check_graph(&tc->cycle, &err), PTL_OK);
	tc_free(tc);
}

/* Modules of a small dependency tree, and two that need each other. */
static const struct ptl_module mod_app = {
    PTL_MODULE_HEADER,
    .name = "app",
    .needs = REFS({"db", 1}, {"cache", 1}),
};
static const struct ptl_module mod_db = {
    PTL_MODULE_HEADER,
    .name = "db",
    .provides = REFS({"db", 1}),
    .needs = REFS({"log", 1}),
};
static const struct ptl_module mod_cache = {
    PTL_MODULE_HEADER,
    .name = "cache",
    .provides = REFS({"cache", 1}),
};
static const struct ptl_module mod_logger = {
    PTL_MODULE_HEADER,
    .name = "logger",
    .provides = REFS({"log", 1}),
};
static const struct ptl_module mod_ping = {
    PTL_MODULE_HEADER,
    .name = "ping",
    .provides = REFS({"ping", 1}),
    .needs = REFS({"pong", 1}),
};
static const struct ptl_module mod_pong = {
    PTL_MODULE_HEADER,
    .name = "pong",
    .provides = REFS({"pong", 1}),
    .needs = REFS({"ping", 1}),
};
static const struct ptl_module mod_self = {
    PTL_MODULE_HEADER,
    .name = "self",
    .provides = REFS({"selfsvc", 1}),
    .needs = REFS({"selfsvc", 1}),
};

static void
test_graph_topological_order(void **state)
{
	const struct ptl_module *mods[] = {&mod_app, &mod_db, &mod_cache,
	                                   &mod_logger, &mod_self};
	struct test_cycle *tc = tc_new(mods, 5, NULL);
	struct ptl_error err;

	assert_int_equal(ptl_registry_check_graph(&tc->cycle, &err), PTL_OK);
	/* Providers first; otherwise the config order is kept. */
	assert_string_equal(tc->inst[0].module->name, "cache");
	assert_string_equal(tc->inst[1].module->name, "logger");
	assert_string_equal(tc->inst[2].module->name, "db");
	assert_string_equal(tc->inst[3].module->name, "app");
	assert_string_equal(tc->inst[4].module->name, "self");
	assert_int_equal(tc->cycle.ninstances, 5);
	tc_free(tc);
}

static void
test_graph_dependency_cycle(void **state)
{
	const struct ptl_module *mods[] = {&mod_app,    &mod_db,   &mod_cache,
	                                   &mod_logger, &mod_ping, &mod_pong};
	struct test_cycle *tc = tc_new(mods, 6, NULL);
	struct ptl_error err;

	assert_int_equal(ptl_registry_check_graph(&tc->cycle, &err), PTL_ERROR);
	assert_string_equal(err.text,
	                    "dependency cycle between modules \"ping\" -> "
	                    "\"pong\" -> \"ping\" (each needs a service of the "
	                    "next)");
	assert_string_equal(err.path, "modules.ping");
	/* A refused graph leaves the config order alone. */
	assert_ptr_equal(tc->inst[0].module, &mod_app);
	tc_free(tc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_register_find),
	    cmocka_unit_test(test_register_lower_version),
	    cmocka_unit_test(test_register_version_over_declared),
	    cmocka_unit_test(test_register_methods_version_checked),
	    cmocka_unit_test(test_register_undeclared),
	    cmocka_unit_test(test_register_duplicate),
	    cmocka_unit_test(test_register_choice_honoured),
	    cmocka_unit_test(test_register_per_process),
	    cmocka_unit_test(test_graph_ok_without_needs),
	    cmocka_unit_test(test_graph_missing),
	    cmocka_unit_test(test_graph_two_providers),
	    cmocka_unit_test(test_graph_two_providers_nobody_needs),
	    cmocka_unit_test(test_graph_choice_fixes_two_providers),
	    cmocka_unit_test(test_graph_choice_not_a_provider),
	    cmocka_unit_test(test_graph_choice_unknown_module),
	    cmocka_unit_test(test_graph_choice_not_a_string),
	    cmocka_unit_test(test_graph_version_too_low),
	    cmocka_unit_test(test_graph_topological_order),
	    cmocka_unit_test(test_graph_dependency_cycle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
