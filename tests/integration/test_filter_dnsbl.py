# SPDX-License-Identifier: MIT
"""filter_dnsbl (issue 7 point 3) in a real petrel against a test zone
served by dnsmasq: listings and their TXT reason, the "refused" answer
127.255.255.254 that must not count, return-code filters, weighted
scoring over two lists and first-hit mode, rejection at RCPT that lets
postmaster@ through, tempfail and tag actions, a sender-domain list,
whitelists, IPv6 nibble names, and a silent name server (fail open or
closed).

Clients are played from 127.0.0.x addresses; which is listed where:
  127.0.0.2  bl.test 127.0.0.2 (TXT reason)
  127.0.0.3  bl.test 127.255.255.254 (the list refuses the query)
  127.0.0.4  bl.test 127.0.0.4 and bl2.test 127.0.0.3
  127.0.0.5  bl2.test 127.0.0.3
  127.0.0.6  bl.test 127.0.0.12 (outside the configured returns)
  127.0.0.7  nowhere
  ::1        bl.test 127.0.0.2 (nibble name)
  spam.example.net  dbl.test 127.0.1.2
"""

import re
import socket
import time
import unittest

import harness
from policy_harness import (Dnsmasq, SourceClient, ipv6_loopback,
                            policy_server)
from smtp_harness import make_message

V6_NAME = ".".join("1" + "0" * 31) + ".bl.test"

RECORDS = [
    "--host-record=2.0.0.127.bl.test,127.0.0.2",
    "--txt-record=2.0.0.127.bl.test,Listed: see https://bl.test/?127.0.0.2",
    "--host-record=3.0.0.127.bl.test,127.255.255.254",
    "--host-record=4.0.0.127.bl.test,127.0.0.4",
    "--host-record=4.0.0.127.bl2.test,127.0.0.3",
    "--host-record=5.0.0.127.bl2.test,127.0.0.3",
    "--host-record=6.0.0.127.bl.test,127.0.0.12",
    "--host-record=%s,127.0.0.2" % V6_NAME,
    "--host-record=spam.example.net.dbl.test,127.0.1.2",
]


class DnsblTest(harness.PetrelTestCase):

    def setUp(self):
        self.dns = Dnsmasq(self, ["bl.test", "bl2.test", "dbl.test"],
                           RECORDS)

    def server(self, dnsbl, workers=1, resolver=None, **kwargs):
        resolver_section = {"servers": [self.dns.server]}
        resolver_section.update(resolver or {})
        self.srv = policy_server(
            self, ["filter_dnsbl"],
            {"resolver": resolver_section, "filter_dnsbl": dnsbl},
            workers=workers, **kwargs)
        return self.srv

    def greet(self, source, port=None, host="127.0.0.1"):
        """The greeting a client from source gets (connection closed)."""
        c = SourceClient(port or self.srv.mx, source, host=host)
        g = c.greeting
        if g.code != 220:
            self.assertTrue(c.closed(), "not closed after %s" % g)
        c.close()
        return g

    def assertGreeting(self, source, code, enhanced=None, text=None):
        g = self.greet(source)
        self.assertEqual(g.code, code, "%s got %s" % (source, g))
        if enhanced:
            self.assertEqual(g.enhanced, enhanced, str(g))
        if text:
            self.assertRegex(g.text, text)
        return g

    # -- IP lists at connect

    def test_listed_client_refused_at_connect(self):
        self.server({"zones": [{
            "zone": "bl.test", "txt": True,
            "reason": "%i is listed by %z (%r): %t"}]})
        g = self.assertGreeting("127.0.0.2", 554, "5.7.1")
        self.assertEqual(g.text, "5.7.1 127.0.0.2 is listed by bl.test "
                         "(127.0.0.2): Listed: see https://bl.test/?127.0.0.2")
        self.assertGreeting("127.0.0.7", 220)
        log = self.srv.p.wait_log("filter filter_dnsbl at connect: reject "
                                  "554 5.7.1")
        self.assertIn("dnsbl: 127.0.0.2 listed: bl.test=127.0.0.2 "
                      "score=1/1", log)
        # Again: decided from the per-process cache, same answer.
        self.assertGreeting("127.0.0.2", 554, "5.7.1", "Listed: see")

    def test_refusal_code_never_counts(self):
        self.server({"zones": [{"zone": "bl.test",
                                "returns": ["127.0.0.0/8"]}]})
        # 127.255.255.254 means "query refused": not a listing, even
        # within the configured returns.
        self.assertGreeting("127.0.0.3", 220)
        self.srv.p.wait_log("dnsbl: bl.test answered 127.255.255.254: the "
                            "list refuses our queries")
        self.assertGreeting("127.0.0.2", 554, "5.7.1")

    def test_return_code_filter(self):
        self.server({"zones": [{
            "zone": "bl.test",
            "returns": ["127.0.0.2", "127.0.0.4-127.0.0.11"]}]})
        self.assertGreeting("127.0.0.6", 220)   # 127.0.0.12: not counted
        self.assertGreeting("127.0.0.4", 554)   # 127.0.0.4: in the range
        self.assertGreeting("127.0.0.2", 554)

    def test_scoring_two_lists(self):
        self.server({"threshold": 3, "zones": [
            {"zone": "bl.test", "weight": 2},
            {"zone": "bl2.test", "weight": 1}]})
        self.assertGreeting("127.0.0.2", 220)   # 2 < 3
        self.assertGreeting("127.0.0.5", 220)   # 1 < 3
        self.assertGreeting("127.0.0.7", 220)
        self.assertGreeting("127.0.0.4", 554, "5.7.1",
                            r"127\.0\.0\.4 is listed by bl\.test")
        self.srv.p.wait_log("dnsbl: 127.0.0.4 listed: bl.test=127.0.0.4 "
                            "bl2.test=127.0.0.3 score=3/3")

    def test_negative_weight_allow_list(self):
        # bl2.test used as an allow list: it cancels bl.test.
        self.server({"threshold": 1, "zones": [
            {"zone": "bl.test", "weight": 1},
            {"zone": "bl2.test", "weight": -5}]})
        self.assertGreeting("127.0.0.4", 220)
        self.assertGreeting("127.0.0.2", 554)

    def test_first_hit(self):
        self.server({"mode": "first_hit", "threshold": 100, "zones": [
            {"zone": "bl.test"}, {"zone": "bl2.test"}]})
        self.assertGreeting("127.0.0.5", 554, "5.7.1", "bl2.test")
        self.assertGreeting("127.0.0.7", 220)

    def test_tempfail_action(self):
        self.server({"action": "tempfail", "zones": [{"zone": "bl.test"}]})
        self.assertGreeting("127.0.0.2", 421, "4.7.1",
                            "127.0.0.2 is listed by bl.test")

    def test_whitelist(self):
        self.server({"whitelist": ["127.0.0.2/32"],
                     "zones": [{"zone": "bl.test"}]})
        self.assertGreeting("127.0.0.2", 220)
        self.assertGreeting("127.0.0.4", 554)
        self.assertEqual(self.dns.queries("2.0.0.127.bl.test"), 0)

    def test_trusted_network_skipped(self):
        self.server({"zones": [{"zone": "bl.test"}]},
                    smtp={"trusted_networks": ["127.0.0.2"]})
        self.assertGreeting("127.0.0.2", 220)

    # -- reject_at rcpt

    def test_reject_at_rcpt_lets_postmaster_through(self):
        srv = self.server({"reject_at": "rcpt", "zones": [
            {"zone": "bl.test", "txt": True, "reason": "Blocked: %t"}]})
        c = SourceClient(srv.mx, "127.0.0.2")
        self.assertEqual(c.greeting.code, 220)
        c.ehlo()
        c.expect("MAIL FROM:<someone@example.org>", 250, "2.1.0")
        c.expect("RCPT TO:<alice@example.test>", 550, "5.7.1",
                 r"^5\.7\.1 Blocked: Listed: see https://bl\.test/")
        c.expect("RCPT TO:<postmaster@example.test>", 250, "2.1.5")
        c.expect("RCPT TO:<Postmaster>", 250, "2.1.5")
        r = c.data(make_message(subject="delisting request",
                                to="postmaster@example.test"))
        self.assertEqual(r.code, 250, str(r))
        c.quit()
        self.assertEqual(len(srv.messages("postmaster@example.test")), 1)
        self.assertEqual(srv.messages("alice@example.test"), [])
        # A clean client is not touched.
        c = SourceClient(srv.mx, "127.0.0.7")
        c.ehlo()
        c.expect("MAIL FROM:<someone@example.org>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
        c.quit()

    def test_reject_at_rcpt_waits_for_slow_lists(self):
        # The RCPT comes at once: the lookups started at connect may
        # still be running, and the RCPT waits for them.
        srv = self.server({"reject_at": "rcpt",
                           "zones": [{"zone": "bl.test"}]})
        c = SourceClient(srv.mx, "127.0.0.4")
        replies = c.pipeline(["EHLO client.example.org",
                              "MAIL FROM:<someone@example.org>",
                              "RCPT TO:<bob@example.test>"])
        self.assertEqual([r.code for r in replies], [250, 250, 550])
        c.quit()

    # -- other actions and lists

    def test_tag_action_adds_header(self):
        srv = self.server({"action": "tag", "header": "X-Blocklisted",
                           "zones": [{"zone": "bl.test"},
                                     {"zone": "bl2.test"}]})
        for source in ("127.0.0.4", "127.0.0.7"):
            c = SourceClient(srv.mx, source)
            self.assertEqual(c.greeting.code, 220)
            c.ehlo()
            r = c.send_mail("someone@example.org", ["bob@example.test"],
                            make_message(subject="from " + source,
                                         to="bob@example.test"))
            self.assertEqual(r.code, 250, str(r))
            c.quit()
        msgs = harness.wait_until(
            lambda: len(srv.messages("bob@example.test")) == 2
            and srv.messages("bob@example.test"), 10, "two messages")
        tagged = [m for m in msgs if b"from 127.0.0.4" in m][0]
        clean = [m for m in msgs if b"from 127.0.0.7" in m][0]
        self.assertIn(b"X-Blocklisted: bl.test=127.0.0.4 bl2.test=127.0.0.3 "
                      b"score=2/1\r\n", tagged)
        self.assertNotIn(b"X-Blocklisted", clean)

    def test_sender_domain_list(self):
        srv = self.server({"zones": [
            {"zone": "bl.test"},
            {"zone": "dbl.test", "type": "domain"}]})
        c = SourceClient(srv.mx, "127.0.0.7")
        c.ehlo()
        c.expect("MAIL FROM:<x@Spam.Example.NET>", 550, "5.7.1",
                 "Sender domain spam.example.net is listed by dbl.test")
        c.expect("MAIL FROM:<x@ok.example.org>", 250, "2.1.0")
        c.expect("RSET", 250)
        c.expect("MAIL FROM:<>", 250, "2.1.0")
        c.quit()
        self.assertEqual(self.dns.queries("spam.example.net.dbl.test"), 1)

    @unittest.skipUnless(ipv6_loopback(), "no IPv6 loopback here")
    def test_ipv6_nibble_name(self):
        port = harness.free_port()
        srv = self.server({"zones": [{"zone": "bl.test"}]},
                          listen_extra={"mx": {"address":
                                               "[::1]:%d" % port}},
                          start=False)
        srv.ports["mx"] = port
        srv.p.start()
        harness.wait_until(lambda: _v6_open(port), harness.START_TIMEOUT,
                           "[::1]:%d" % port)
        srv.p.wait_log("worker 0 started")
        g = self.greet("::1", port=port, host="::1")
        self.assertEqual(g.code, 554, str(g))
        self.assertGreaterEqual(self.dns.queries(V6_NAME), 1)

    # -- failures

    def silent_server(self):
        """A UDP port that takes queries and never answers."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        self.addCleanup(sock.close)
        return "127.0.0.1:%d" % sock.getsockname()[1]

    def test_dns_timeout_fails_open(self):
        self.dns.stop()
        srv = policy_server(self, ["filter_dnsbl"], {
            "resolver": {"servers": [self.silent_server()],
                         "timeout": "200ms", "tries": 1},
            "filter_dnsbl": {"zones": [{"zone": "bl.test"}]}})
        started = time.monotonic()
        c = SourceClient(srv.mx, "127.0.0.2")
        self.assertEqual(c.greeting.code, 220, str(c.greeting))
        self.assertLess(time.monotonic() - started, 5)
        c.quit()
        srv.p.wait_log("dnsbl: bl.test: lookup failed: timeout")

    def test_dns_timeout_fails_closed(self):
        self.dns.stop()
        srv = policy_server(self, ["filter_dnsbl"], {
            "resolver": {"servers": [self.silent_server()],
                         "timeout": "200ms", "tries": 1},
            "filter_dnsbl": {"on_failure": "tempfail",
                             "zones": [{"zone": "bl.test"}]}})
        c = SourceClient(srv.mx, "127.0.0.2")
        self.assertEqual(c.greeting.code, 421, str(c.greeting))
        self.assertTrue(c.closed())

    def test_filter_timeout_fails_open(self):
        # The filter's own limit, shorter than the resolver's.
        self.dns.stop()
        srv = policy_server(self, ["filter_dnsbl"], {
            "resolver": {"servers": [self.silent_server()],
                         "timeout": "5s", "tries": 1},
            "filter_dnsbl": {"timeout": "300ms",
                             "zones": [{"zone": "bl.test"}]}})
        started = time.monotonic()
        c = SourceClient(srv.mx, "127.0.0.2")
        self.assertEqual(c.greeting.code, 220, str(c.greeting))
        self.assertLess(time.monotonic() - started, 3)
        c.quit()
        srv.p.wait_log("filter filter_dnsbl at connect: no verdict within "
                       "300 ms")

    def test_lookups_cancelled_when_session_ends(self):
        self.dns.stop()
        srv = policy_server(self, ["filter_dnsbl"], {
            "resolver": {"servers": [self.silent_server()],
                         "timeout": "10s", "tries": 1},
            "filter_dnsbl": {"reject_at": "rcpt", "zones": [
                {"zone": "bl.test"}, {"zone": "bl2.test"}]}},
            server={"log": {"level": "debug"}})
        c = SourceClient(srv.mx, "127.0.0.2")
        self.assertEqual(c.greeting.code, 220)
        c.quit()
        log = srv.p.wait_log("resolver: A 2.0.0.127.bl2.test: cancelled")
        self.assertIn("resolver: A 2.0.0.127.bl.test: cancelled", log)

    # -- config

    def test_config_errors(self):
        p = self.petrel()
        base = {"resolver": {}, "filter_dnsbl": None}
        cases = [
            ({"zones": [{"zone": "bl..test"}]}, "zones[0].zone"),
            ({"zones": [{"zone": "bl.test", "returns": ["127.0.0.9-1"]}]},
             "zones[0].returns"),
            ({"zones": [{"zone": "bl.test", "reason": "%q"}]},
             "zones[0].reason"),
            ({"mode": "first_hit",
              "zones": [{"zone": "bl.test", "weight": -1}]},
             "zones[0].weight"),
            ({"zones": [{"zone": "bl.test"}], "whitelist": ["10.0.0.1/8"]},
             "whitelist"),
            ({"zones": []}, "zones"),
        ]
        for section, path in cases:
            base["filter_dnsbl"] = section
            r = p.check(p.config(modules=dict(base)))
            self.assertCheckFails(r, "modules.filter_dnsbl." + path)


def _v6_open(port):
    try:
        with socket.create_connection(("::1", port), timeout=1):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    unittest.main()
