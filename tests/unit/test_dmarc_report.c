/* SPDX-License-Identifier: MIT */
/* Unit tests of petrelctl dmarc: aggregation, XML, rua, gzip, message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <zlib.h>

#include "ctl_dmarc_agg.h"
#include "ctl_dmarc_mail.h"
#include "dmarc.h"

static const char line_pass[] =
    "{\"time\":1700000000,\"source_ip\":\"192.0.2.1\","
    "\"header_from\":\"example.org\","
    "\"envelope_from\":\"bounce@Mail.Example.org\","
    "\"policy_domain\":\"Example.org\",\"message\":\"A\","
    "\"policy\":{\"p\":\"reject\",\"sp\":\"quarantine\",\"pct\":50,"
    "\"adkim\":\"s\",\"aspf\":\"r\",\"fo\":\"1\",\"ri\":86400,"
    "\"rua\":\"mailto:agg@example.org\"},"
    "\"dmarc\":\"pass\",\"disposition\":\"none\",\"sampled_out\":false,"
    "\"spf\":{\"result\":\"pass\",\"domain\":\"mail.example.org\","
    "\"scope\":\"mfrom\",\"aligned\":true},"
    "\"dkim\":[{\"result\":\"pass\",\"domain\":\"example.org\","
    "\"selector\":\"s1\",\"aligned\":true}]}";

/* Same row as line_pass, the address written differently. */
static const char line_pass_v6[] =
    "{\"source_ip\":\"2001:DB8:0:0::1\",\"header_from\":\"example.org\","
    "\"envelope_from\":null,\"policy_domain\":\"example.org\","
    "\"policy\":{\"p\":\"reject\",\"rua\":\"mailto:agg@example.org\"},"
    "\"disposition\":\"quarantine\",\"sampled_out\":true,"
    "\"spf\":{\"result\":\"Hardfail\",\"domain\":null,\"aligned\":false},"
    "\"dkim\":[{\"result\":\"weird\",\"domain\":\"x\",\"aligned\":false}]}";

static const char line_hostile[] =
    "{\"source_ip\":\"198.51.100.7\",\"header_from\":\"<a&b>\\\"'\","
    "\"envelope_from\":\"x@y\",\"policy_domain\":\"example.org\","
    "\"policy\":{\"p\":\"none\",\"rua\":\"mailto:agg@example.org\"},"
    "\"disposition\":\"none\",\"spf\":{\"result\":\"fail\"},"
    "\"dkim\":[]}";

static void
add_ok(struct ctl_dmarc_agg *a, const char *line)
{
	assert_int_equal(ctl_dmarc_agg_add(a, line, strlen(line)),
	                 CTL_DMARC_LINE_OK);
}

static void
test_escape(void **state)
{
	struct ctl_dmarc_buf b;

	(void)state;
	ctl_dmarc_buf_init(&b);
	assert_int_equal(ctl_dmarc_xml_escape(&b, "a<b>&\"'\x01\x7f\xc3z"), 0);
	assert_string_equal(b.data, "a&lt;b&gt;&amp;&quot;&apos;???z");
	ctl_dmarc_buf_free(&b);
	ctl_dmarc_buf_init(&b);
	assert_int_equal(ctl_dmarc_xml_escape(&b, ""), 0);
	assert_non_null(b.data);
	assert_string_equal(b.data, "");
	ctl_dmarc_buf_free(&b);
}

static void
test_domain_ok(void **state)
{
	(void)state;
	assert_true(ctl_dmarc_domain_ok("example.org"));
	assert_true(ctl_dmarc_domain_ok("_x.a-b.test"));
	assert_false(ctl_dmarc_domain_ok(""));
	assert_false(ctl_dmarc_domain_ok(".example.org"));
	assert_false(ctl_dmarc_domain_ok("example..org"));
	assert_false(ctl_dmarc_domain_ok("exa mple.org"));
	assert_false(ctl_dmarc_domain_ok("a!b.org"));
	assert_false(ctl_dmarc_domain_ok("a/b"));
}

static void
test_malformed(void **state)
{
	static const char *const bad[] = {
	    "",
	    "garbage{",
	    "[]",
	    "{}",
	    /* no rua */
	    "{\"source_ip\":\"192.0.2.1\",\"header_from\":\"a.org\","
	    "\"policy_domain\":\"a.org\",\"policy\":{\"p\":\"none\"},"
	    "\"disposition\":\"none\",\"spf\":{}}",
	    /* bad address */
	    "{\"source_ip\":\"192.0.2.300\",\"header_from\":\"a.org\","
	    "\"policy_domain\":\"a.org\",\"policy\":{\"p\":\"none\","
	    "\"rua\":\"mailto:x@a.org\"},\"disposition\":\"none\","
	    "\"spf\":{}}",
	    /* a policy domain that would break a header or file name */
	    "{\"source_ip\":\"192.0.2.1\",\"header_from\":\"a.org\","
	    "\"policy_domain\":\"a.org\\r\\nBcc: x\",\"policy\":{\"p\":"
	    "\"none\",\"rua\":\"mailto:x@a.org\"},\"disposition\":\"none\","
	    "\"spf\":{}}",
	    "{\"source_ip\":\"192.0.2.1\",\"header_from\":\"a.org\","
	    "\"policy_domain\":\"../etc\",\"policy\":{\"p\":"
	    "\"none\",\"rua\":\"mailto:x@a.org\"},\"disposition\":\"none\","
	    "\"spf\":{}}",
	    /* unknown disposition, pct out of range, control character */
	    "{\"source_ip\":\"192.0.2.1\",\"header_from\":\"a.org\","
	    "\"policy_domain\":\"a.org\",\"policy\":{\"p\":\"none\","
	    "\"rua\":\"mailto:x@a.org\"},\"disposition\":\"drop\","
	    "\"spf\":{}}",
	    "{\"source_ip\":\"192.0.2.1\",\"header_from\":\"a.org\","
	    "\"policy_domain\":\"a.org\",\"policy\":{\"p\":\"none\","
	    "\"pct\":101,\"rua\":\"mailto:x@a.org\"},\"disposition\":"
	    "\"none\",\"spf\":{}}",
	    "{\"source_ip\":\"192.0.2.1\",\"header_from\":\"a\\u0001.org\","
	    "\"policy_domain\":\"a.org\",\"policy\":{\"p\":\"none\","
	    "\"rua\":\"mailto:x@a.org\"},\"disposition\":\"none\","
	    "\"spf\":{}}",
	    /* dkim not an array, duplicate key */
	    "{\"source_ip\":\"192.0.2.1\",\"header_from\":\"a.org\","
	    "\"policy_domain\":\"a.org\",\"policy\":{\"p\":\"none\","
	    "\"rua\":\"mailto:x@a.org\"},\"disposition\":\"none\","
	    "\"spf\":{},\"dkim\":{}}",
	    "{\"source_ip\":\"192.0.2.1\",\"source_ip\":\"192.0.2.2\"}",
	};
	struct ctl_dmarc_agg *a = ctl_dmarc_agg_new();
	char *huge;
	size_t i;

	assert_non_null(a);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ctl_dmarc_agg_add(a, bad[i], strlen(bad[i])),
		                 CTL_DMARC_LINE_MALFORMED);
	/* A line cut short anywhere is never taken and never crashes. */
	for (i = 0; i < sizeof(line_pass) - 1; i++)
		assert_int_equal(ctl_dmarc_agg_add(a, line_pass, i),
		                 CTL_DMARC_LINE_MALFORMED);
	huge = malloc(CTL_DMARC_LINE_MAX + 2);
	assert_non_null(huge);
	memset(huge, ' ', CTL_DMARC_LINE_MAX + 1);
	memcpy(huge, line_pass, strlen(line_pass));
	assert_int_equal(ctl_dmarc_agg_add(a, huge, CTL_DMARC_LINE_MAX + 1),
	                 CTL_DMARC_LINE_MALFORMED);
	free(huge);
	assert_int_equal(ctl_dmarc_agg_finish(a), 0);
	assert_int_equal(ctl_dmarc_agg_ngroups(a), 0);
	ctl_dmarc_agg_free(a);
}

static void
test_aggregate(void **state)
{
	static const char other_rua[] =
	    "{\"source_ip\":\"192.0.2.1\",\"header_from\":\"example.org\","
	    "\"policy_domain\":\"example.org\",\"policy\":{\"p\":\"none\","
	    "\"rua\":\"mailto:b@example.org\"},\"disposition\":\"none\","
	    "\"spf\":{\"result\":\"pass\"}}";
	static const char aaa[] =
	    "{\"source_ip\":\"192.0.2.9\",\"header_from\":\"aaa.test\","
	    "\"policy_domain\":\"aaa.test\",\"policy\":{\"p\":\"none\","
	    "\"rua\":\"mailto:b@aaa.test\"},\"disposition\":\"none\","
	    "\"spf\":{\"result\":\"pass\"}}";
	struct ctl_dmarc_agg *a = ctl_dmarc_agg_new();
	const struct ctl_dmarc_group *g;
	int i;

	(void)state;
	assert_non_null(a);
	for (i = 0; i < 5; i++)
		add_ok(a, line_pass);
	add_ok(a, line_pass_v6);
	add_ok(a, line_pass_v6);
	add_ok(a, line_hostile);
	add_ok(a, other_rua);
	add_ok(a, aaa);
	assert_int_equal(ctl_dmarc_agg_finish(a), 0);
	assert_int_equal(ctl_dmarc_agg_ngroups(a), 3);
	/* Sorted by policy domain, then rua. */
	g = ctl_dmarc_agg_group(a, 0);
	assert_string_equal(g->policy_domain, "aaa.test");
	g = ctl_dmarc_agg_group(a, 2);
	assert_string_equal(g->rua, "mailto:b@example.org");
	assert_int_equal(g->messages, 1);
	g = ctl_dmarc_agg_group(a, 1);
	assert_string_equal(g->policy_domain, "example.org");
	assert_string_equal(g->rua, "mailto:agg@example.org");
	assert_int_equal(g->messages, 8);
	assert_int_equal(g->nrows, 3);
	/* The policy of the first line of the group. */
	assert_string_equal(g->policy.p, "reject");
	assert_string_equal(g->policy.sp, "quarantine");
	assert_int_equal(g->policy.pct, 50);
	assert_string_equal(g->policy.adkim, "s");
	assert_string_equal(g->policy.aspf, "r");
	assert_string_equal(g->policy.fo, "1");
	assert_null(ctl_dmarc_agg_group(a, 3));
	ctl_dmarc_agg_free(a);
}

static void
test_xml(void **state)
{
	struct ctl_dmarc_meta meta = {.org_name = "Org <&> Inc",
	                              .email = "dmarc@rep.test",
	                              .report_id = "r1",
	                              .begin = 1700006400,
	                              .end = 1700092799};
	struct ctl_dmarc_agg *a = ctl_dmarc_agg_new();
	struct ctl_dmarc_buf b;
	const char *x;
	int i;

	(void)state;
	assert_non_null(a);
	for (i = 0; i < 3; i++)
		add_ok(a, line_pass);
	add_ok(a, line_pass_v6);
	add_ok(a, line_hostile);
	assert_int_equal(ctl_dmarc_agg_finish(a), 0);
	ctl_dmarc_buf_init(&b);
	assert_int_equal(ctl_dmarc_xml(ctl_dmarc_agg_group(a, 0), &meta, &b),
	                 0);
	x = b.data;
	assert_non_null(
	    strstr(x, "<org_name>Org &lt;&amp;&gt; Inc</org_name>"));
	assert_non_null(strstr(x, "<begin>1700006400</begin>"));
	assert_non_null(strstr(x, "<end>1700092799</end>"));
	assert_non_null(strstr(x, "<domain>example.org</domain>\n"
	                          "    <adkim>s</adkim>"));
	assert_non_null(strstr(x, "<pct>50</pct>"));
	assert_non_null(strstr(x, "<source_ip>192.0.2.1</source_ip>\n"
	                          "      <count>3</count>"));
	/* Canonical IPv6, sampled_out, the envelope domain. */
	assert_non_null(strstr(x, "<source_ip>2001:db8::1</source_ip>"));
	assert_non_null(strstr(x, "<type>sampled_out</type>"));
	assert_non_null(strstr(x, "<envelope_from>mail.example.org"
	                          "</envelope_from>"));
	/* Results outside the schema's sets mapped into them. */
	assert_non_null(strstr(x, "<result>fail</result>\n      </spf>"));
	assert_non_null(strstr(x, "<result>permerror</result>\n"
	                          "      </dkim>"));
	assert_non_null(strstr(x, "<header_from>&lt;a&amp;b&gt;&quot;&apos;"
	                          "</header_from>"));
	assert_null(strstr(x, "<a&b>"));
	assert_int_equal(strncmp(x, "<?xml", 5), 0);
	assert_non_null(strstr(x, "</feedback>\n"));
	ctl_dmarc_buf_free(&b);
	ctl_dmarc_agg_free(a);
}

/* The module's own writer feeds the reader: the two agree. */
static void
test_module_lines(void **state)
{
	struct dmarc_record rec;
	struct dmarc_auth auth;
	struct dmarc_outcome out;
	struct dmarc_report_in in;
	struct ctl_dmarc_agg *a = ctl_dmarc_agg_new();
	const struct ctl_dmarc_group *g;
	const char *txt = "v=DMARC1; p=quarantine; rua=mailto:r@ex.test";
	const char *why;
	char *line;

	(void)state;
	assert_non_null(a);
	assert_int_equal(dmarc_record_parse(txt, strlen(txt), &rec, &why), 0);
	memset(&auth, 0, sizeof(auth));
	strcpy(auth.spf, "pass");
	strcpy(auth.spf_domain, "ex.test");
	auth.ndkim = 1;
	strcpy(auth.dkim[0].result, "fail");
	strcpy(auth.dkim[0].domain, "ex.test");
	strcpy(auth.dkim[0].selector, "k");
	memset(&out, 0, sizeof(out));
	out.result = DMARC_RES_PASS;
	out.spf_aligned = true;
	out.dkim_index = -1;
	memset(&in, 0, sizeof(in));
	in.time = 1700000000;
	in.source_ip = "203.0.113.5";
	in.header_from = "ex.test";
	in.envelope_from = "a@ex.test";
	in.policy_domain = "ex.test";
	in.message_id = "M1";
	in.rec = &rec;
	in.auth = &auth;
	in.out = &out;
	line = dmarc_report_line(&in);
	assert_non_null(line);
	assert_int_equal(ctl_dmarc_agg_add(a, line, strlen(line) - 1),
	                 CTL_DMARC_LINE_OK);
	free(line);
	assert_int_equal(ctl_dmarc_agg_finish(a), 0);
	g = ctl_dmarc_agg_group(a, 0);
	assert_non_null(g);
	assert_string_equal(g->rua, "mailto:r@ex.test");
	assert_string_equal(g->policy.p, "quarantine");
	assert_int_equal(g->messages, 1);
	ctl_dmarc_agg_free(a);
}

static void
test_limits(void **state)
{
	struct ctl_dmarc_agg *a = ctl_dmarc_agg_new();
	char line[512];
	int i, full = 0;

	(void)state;
	assert_non_null(a);
	/* Distinct rows past the bound are refused, not grown into. */
	for (i = 0; i < CTL_DMARC_ROWS_MAX + 10; i++) {
		int rc;

		(void)snprintf(line, sizeof(line),
		               "{\"source_ip\":\"10.%d.%d.%d\","
		               "\"header_from\":\"a.test\","
		               "\"policy_domain\":\"a.test\",\"policy\":"
		               "{\"p\":\"none\",\"rua\":\"mailto:r@a.test\"},"
		               "\"disposition\":\"none\",\"spf\":{}}",
		               (i >> 16) & 255, (i >> 8) & 255, i & 255);
		rc = ctl_dmarc_agg_add(a, line, strlen(line));
		assert_true(rc == CTL_DMARC_LINE_OK ||
		            rc == CTL_DMARC_LINE_FULL);
		full += rc == CTL_DMARC_LINE_FULL;
	}
	assert_int_equal(full, 10);
	assert_int_equal(ctl_dmarc_agg_finish(a), 0);
	assert_int_equal(ctl_dmarc_agg_group(a, 0)->nrows, CTL_DMARC_ROWS_MAX);
	ctl_dmarc_agg_free(a);
}

static void
test_rua(void **state)
{
	struct ctl_dmarc_dest d[CTL_DMARC_DEST_MAX];
	size_t n, skipped;

	(void)state;
	n = ctl_dmarc_rua_parse("mailto:agg@example.org", d, 8, &skipped);
	assert_int_equal(n, 1);
	assert_int_equal(skipped, 0);
	assert_string_equal(d[0].addr, "agg@example.org");
	assert_string_equal(d[0].domain, "example.org");
	assert_int_equal(d[0].max_size, 0);
	n = ctl_dmarc_rua_parse("MAILTO:a@Ex.ORG!10k,?mailto:b%2Bx@y.test!2m,"
	                        "https://r.test/x,mailto:c@z.test!3,"
	                        "mailto:d@w.test?subject=hi",
	                        d, 8, &skipped);
	assert_int_equal(n, 4);
	assert_int_equal(skipped, 1);
	assert_string_equal(d[0].addr, "a@Ex.ORG");
	assert_string_equal(d[0].domain, "ex.org");
	assert_int_equal(d[0].max_size, 10240);
	assert_string_equal(d[1].addr, "b+x@y.test");
	assert_int_equal(d[1].max_size, 2 * 1024 * 1024);
	assert_int_equal(d[2].max_size, 3);
	assert_string_equal(d[3].addr, "d@w.test");
	/* Addresses that could inject into SMTP or headers. */
	n = ctl_dmarc_rua_parse("mailto:a%0d%0aRCPT@x.test,mailto:a>b@x.test,"
	                        "mailto:a@x.test!,mailto:a@x.test!1x,"
	                        "mailto:noat,mailto:a b@x.test,mailto:%4",
	                        d, 8, &skipped);
	assert_int_equal(n, 0);
	assert_int_equal(skipped, 7);
	/* At most @max taken. */
	n = ctl_dmarc_rua_parse("mailto:a@x.test,mailto:b@x.test,"
	                        "mailto:c@x.test",
	                        d, 2, &skipped);
	assert_int_equal(n, 2);
	assert_int_equal(skipped, 1);
	assert_true(ctl_dmarc_addr_ok("postmaster@rep.test"));
	assert_false(ctl_dmarc_addr_ok("post master@rep.test"));
	assert_false(ctl_dmarc_addr_ok("x@rep.test>"));
}

static void
test_gzip_base64(void **state)
{
	struct ctl_dmarc_buf gz, b64;
	char text[5000], back[6000];
	uLongf backlen = sizeof(back);
	z_stream zs;
	size_t i, linelen = 0;

	(void)state;
	for (i = 0; i < sizeof(text); i++)
		text[i] = (char)('a' + (i * 7) % 26);
	ctl_dmarc_buf_init(&gz);
	ctl_dmarc_buf_init(&b64);
	assert_int_equal(ctl_dmarc_gzip(text, sizeof(text), &gz), 0);
	assert_true(gz.len > 18);
	assert_int_equal((unsigned char)gz.data[0], 0x1f);
	assert_int_equal((unsigned char)gz.data[1], 0x8b);
	memset(&zs, 0, sizeof(zs));
	assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
	zs.next_in = (unsigned char *)gz.data;
	zs.avail_in = (uInt)gz.len;
	zs.next_out = (unsigned char *)back;
	zs.avail_out = (uInt)backlen;
	assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
	assert_int_equal(zs.total_out, sizeof(text));
	assert_memory_equal(back, text, sizeof(text));
	(void)inflateEnd(&zs);
	assert_int_equal(ctl_dmarc_base64("foobar", 6, &b64), 0);
	assert_string_equal(b64.data, "Zm9vYmFy\r\n");
	ctl_dmarc_buf_free(&b64);
	ctl_dmarc_buf_init(&b64);
	assert_int_equal(ctl_dmarc_base64("fooba", 5, &b64), 0);
	assert_string_equal(b64.data, "Zm9vYmE=\r\n");
	ctl_dmarc_buf_free(&b64);
	ctl_dmarc_buf_init(&b64);
	assert_int_equal(ctl_dmarc_base64(gz.data, gz.len, &b64), 0);
	for (i = 0; i < b64.len; i++) {
		if (b64.data[i] == '\r') {
			assert_int_equal(b64.data[i + 1], '\n');
			assert_true(linelen <= 76);
			linelen = 0;
			i++;
		} else {
			linelen++;
		}
	}
	assert_int_equal(linelen, 0);
	ctl_dmarc_buf_free(&gz);
	ctl_dmarc_buf_free(&b64);
}

static void
test_message(void **state)
{
	struct ctl_dmarc_msg m = {
	    .from = "dmarc@rep.test",
	    .to = "agg@example.org",
	    .policy_domain = "example.org",
	    .submitter = "rep.test",
	    .report_id = "20231115.ab.1",
	    .msg_id_domain = "mx.rep.test",
	    .file_name = "mx.rep.test!example.org!1700006400!1700092799.xml.gz",
	    .boundary = "=_b",
	    .date = 1700100000,
	    .begin = 1700006400,
	    .end = 1700092799,
	    .serial = 2,
	};
	struct ctl_dmarc_buf b;
	const char *p;

	(void)state;
	ctl_dmarc_buf_init(&b);
	assert_int_equal(ctl_dmarc_message(&m, "gz", 2, &b), 0);
	assert_int_equal(strncmp(b.data,
	                         "From: dmarc@rep.test\r\n"
	                         "To: agg@example.org\r\n",
	                         43),
	                 0);
	assert_non_null(strstr(b.data, "\r\nSubject: Report Domain: example.org"
	                               "\r\n Submitter: rep.test\r\n "
	                               "Report-ID: <20231115.ab.1@mx.rep.test>"
	                               "\r\n"));
	assert_non_null(strstr(b.data, "\r\nDate: Thu, 16 Nov 2023 02:00:00 "
	                               "+0000\r\n"));
	assert_non_null(strstr(b.data, "\r\nMessage-ID: "
	                               "<20231115.ab.1.2@mx.rep.test>\r\n"));
	assert_non_null(strstr(b.data, "\r\n--=_b\r\nContent-Type: "
	                               "application/gzip;"));
	assert_non_null(strstr(b.data, "filename=\"mx.rep.test!example.org!"
	                               "1700006400!1700092799.xml.gz\""));
	assert_non_null(strstr(b.data, "\r\n\r\nZ3o=\r\n\r\n--=_b--\r\n"));
	/* Every line ends in CRLF. */
	for (p = b.data; (p = strchr(p, '\n')) != NULL; p++)
		assert_int_equal(p[-1], '\r');
	ctl_dmarc_buf_free(&b);
	/* A short subject stays on one line. */
	m.policy_domain = "ex.org";
	m.report_id = "r1";
	m.msg_id_domain = "rep.test";
	ctl_dmarc_buf_init(&b);
	assert_int_equal(ctl_dmarc_message(&m, "gz", 2, &b), 0);
	assert_non_null(strstr(b.data, "\r\nSubject: Report Domain: ex.org "
	                               "Submitter: rep.test Report-ID: "
	                               "<r1@rep.test>\r\n"));
	ctl_dmarc_buf_free(&b);
}

static void
test_dot_stuff(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"", ".\r\n"},
	    {"a\r\n", "a\r\n.\r\n"},
	    {".\r\n", "..\r\n.\r\n"},
	    {"a\r\n.b\r\n..\r\nc.\r\n", "a\r\n..b\r\n...\r\nc.\r\n.\r\n"},
	    {"a\r\n.end", "a\r\n..end\r\n.\r\n"},
	};
	struct ctl_dmarc_buf b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ctl_dmarc_buf_init(&b);
		assert_int_equal(
		    ctl_dmarc_dot_stuff(cases[i].in, strlen(cases[i].in), &b),
		    0);
		assert_string_equal(b.data, cases[i].out);
		ctl_dmarc_buf_free(&b);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escape),
	    cmocka_unit_test(test_domain_ok),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_aggregate),
	    cmocka_unit_test(test_xml),
	    cmocka_unit_test(test_module_lines),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_rua),
	    cmocka_unit_test(test_gzip_base64),
	    cmocka_unit_test(test_message),
	    cmocka_unit_test(test_dot_stuff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
