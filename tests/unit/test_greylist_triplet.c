/* SPDX-License-Identifier: MIT */
/* Unit tests for greylisting: triplet normalization and entry states. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "greylist_triplet.h"

static const struct gl_times times = {
    .delay = 300000,                  /* 5 min */
    .retry_window = 86400000,         /* 24 h */
    .whitelist_expiry = 3110400000LL, /* 36 d */
};

static void
test_normalize_sender(void **state)
{
	char out[128];

	gl_normalize_sender("Alice@Example.ORG", out, sizeof(out));
	assert_string_equal(out, "alice@example.org");
	gl_normalize_sender("", out, sizeof(out));
	assert_string_equal(out, "");
	/* BATV tags and VERP numbers differ per message. */
	gl_normalize_sender("prvs=1234abcdef=list@example.org", out,
	                    sizeof(out));
	assert_string_equal(out, "list@example.org");
	gl_normalize_sender("PRVS=0123456789=List@Example.org", out,
	                    sizeof(out));
	assert_string_equal(out, "list@example.org");
	gl_normalize_sender("msprvs1=17123abcd=bounce@example.org", out,
	                    sizeof(out));
	assert_string_equal(out, "bounce@example.org");
	gl_normalize_sender("bounce-12345-678@lists.example.org", out,
	                    sizeof(out));
	assert_string_equal(out, "bounce-#-#@lists.example.org");
	/* Digits of the domain stay. */
	gl_normalize_sender("a1@mx2.example.org", out, sizeof(out));
	assert_string_equal(out, "a#@mx2.example.org");
	/* A tag without its second '=' is left as it is. */
	gl_normalize_sender("prvs=abc@example.org", out, sizeof(out));
	assert_string_equal(out, "prvs=abc@example.org");
	/* Truncated to fit. */
	gl_normalize_sender("abcdef@x", out, 4);
	assert_string_equal(out, "abc");
}

static void
test_triplet_bytes(void **state)
{
	struct policy_ip a, b, c;
	char x[256], y[256];
	size_t nx, ny;

	assert_int_equal(policy_ip_parse("192.0.2.10", &a), PTL_OK);
	assert_int_equal(policy_ip_parse("192.0.2.200", &b), PTL_OK);
	assert_int_equal(policy_ip_parse("192.0.3.10", &c), PTL_OK);
	nx = gl_triplet_bytes(&a, 24, 64, "S@Example.org", "Bob@Example.test",
	                      x, sizeof(x));
	assert_true(nx > 0);
	assert_memory_equal(x,
	                    "t\0"
	                    "192.0.2.0/24\0"
	                    "s@example.org\0"
	                    "bob@example.test",
	                    nx);
	/* Same /24, same sender after normalization: the same triplet. */
	ny = gl_triplet_bytes(&b, 24, 64, "s@EXAMPLE.org", "bob@example.test",
	                      y, sizeof(y));
	assert_int_equal(nx, ny);
	assert_memory_equal(x, y, nx);
	ny = gl_triplet_bytes(&c, 24, 64, "s@example.org", "bob@example.test",
	                      y, sizeof(y));
	assert_false(nx == ny && memcmp(x, y, nx) == 0);
	/* Full addresses when asked. */
	ny = gl_triplet_bytes(&b, 32, 64, "s@example.org", "bob@example.test",
	                      y, sizeof(y));
	assert_false(nx == ny && memcmp(x, y, nx) == 0);

	assert_int_equal(policy_ip_parse("2001:db8:1:2:aaaa::1", &a), PTL_OK);
	assert_int_equal(policy_ip_parse("2001:db8:1:2:bbbb::9", &b), PTL_OK);
	nx = gl_triplet_bytes(&a, 24, 64, "", "r@x.test", x, sizeof(x));
	ny = gl_triplet_bytes(&b, 24, 64, "", "r@x.test", y, sizeof(y));
	assert_int_equal(nx, ny);
	assert_memory_equal(x, y, nx);
	assert_memory_equal(x,
	                    "t\0"
	                    "2001:db8:1:2::/64\0"
	                    "\0"
	                    "r@x.test",
	                    nx);
	nx = gl_net_bytes(&a, 24, 64, x, sizeof(x));
	assert_memory_equal(x,
	                    "n\0"
	                    "2001:db8:1:2::/64",
	                    nx);

	/* Too small a buffer: 0, never a partial key. */
	assert_int_equal(gl_triplet_bytes(&a, 24, 64, "s@x", "r@x", x, 20), 0);
}

static void
test_triplet_states(void **state)
{
	struct policy_slot s;
	int64_t wait, t0 = 1700000000000LL;

	memset(&s, 0, sizeof(s));
	assert_int_equal(gl_triplet_step(&times, &s, true, t0, &wait), GL_NEW);
	assert_int_equal(wait, 300000);
	assert_true(s.expires == t0 + 86400000);
	/* Too early: the wait shrinks, the first sighting stays. */
	assert_int_equal(gl_triplet_step(&times, &s, false, t0 + 60000, &wait),
	                 GL_EARLY);
	assert_int_equal(wait, 240000);
	assert_int_equal(gl_triplet_step(&times, &s, false, t0 + 299999, &wait),
	                 GL_EARLY);
	assert_int_equal(wait, 1);
	assert_int_equal(gl_triplet_step(&times, &s, false, t0 + 300000, &wait),
	                 GL_PASSED);
	assert_int_equal(wait, 300000);
	assert_true(s.expires == t0 + 300000 + 3110400000LL);
	/* Whitelisted: passes and the expiry moves on. */
	assert_int_equal(gl_triplet_step(&times, &s, false, t0 + 900000, &wait),
	                 GL_KNOWN);
	assert_true(s.expires == t0 + 900000 + 3110400000LL);

	/* A clock set back does not lengthen the wait beyond the delay. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(gl_triplet_step(&times, &s, true, t0, &wait), GL_NEW);
	assert_int_equal(
	    gl_triplet_step(&times, &s, false, t0 - 3600000, &wait), GL_EARLY);
	assert_int_equal(wait, 300000);
	/* Garbage state (a damaged file) starts over. */
	s.val[0] = 99;
	assert_int_equal(gl_triplet_step(&times, &s, false, t0, &wait), GL_NEW);
}

static void
test_net_whitelist(void **state)
{
	struct policy_slot s;
	int64_t t0 = 1000;

	memset(&s, 0, sizeof(s));
	assert_false(gl_net_whitelisted(&times, &s, t0));
	assert_false(gl_net_passed(&times, 3, &s, true, t0));
	assert_false(gl_net_passed(&times, 3, &s, false, t0 + 1));
	assert_false(gl_net_whitelisted(&times, &s, t0 + 2));
	assert_true(gl_net_passed(&times, 3, &s, false, t0 + 3));
	assert_true(gl_net_whitelisted(&times, &s, t0 + 10));
	assert_true(s.expires == t0 + 10 + times.whitelist_expiry);
	memset(&s, 0, sizeof(s));
	assert_true(gl_net_passed(&times, 1, &s, true, t0));
}

static void
test_domains(void **state)
{
	const char *items[] = {"example.org", "Trusted.TEST."};
	struct ptl_conf_list list = {2, items}, empty = {0, NULL};

	assert_true(gl_domain_listed(&list, "a@example.org"));
	assert_true(gl_domain_listed(&list, "a@mx.EXAMPLE.org"));
	assert_true(gl_domain_listed(&list, "a@example.org."));
	assert_true(gl_domain_listed(&list, "b@trusted.test"));
	assert_false(gl_domain_listed(&list, "a@badexample.org"));
	assert_false(gl_domain_listed(&list, "a@example.org.evil"));
	assert_false(gl_domain_listed(&list, "a@org"));
	assert_false(gl_domain_listed(&empty, "a@example.org"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_normalize_sender),
	    cmocka_unit_test(test_triplet_bytes),
	    cmocka_unit_test(test_triplet_states),
	    cmocka_unit_test(test_net_whitelist),
	    cmocka_unit_test(test_domains),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
