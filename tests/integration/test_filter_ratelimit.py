# SPDX-License-Identifier: MIT
"""filter_ratelimit (issue 7 point 4) in a real petrel: connection limits
that hold across two workers (one shared table), recipients per sender,
messages per authenticated user, the token bucket refilling, counts that
survive a worker killed and respawned and a reload, and whitelists.

The harness probes ports from 127.0.0.1, so 127.0.0.1 is whitelisted and
the clients come from other 127.0.0.x addresses."""

import os
import re
import signal
import time
import unittest

import harness
from policy_harness import SourceClient, policy_server
from smtp_harness import make_message

LOCALHOST_OK = ["127.0.0.1"]


def limits(*rules, **extra):
    section = {"whitelist": LOCALHOST_OK, "limits": list(rules)}
    section.update(extra)
    return {"filter_ratelimit": section}


class RateLimitTest(harness.PetrelTestCase):

    def open_many(self, srv, source, n):
        """Open n connections at once (kept open) and read each
        greeting; returns the list of greeting codes."""
        clients = [SourceClient(srv.mx, source) for _ in range(n)]
        codes = [c.greeting.code for c in clients]
        for c in clients:
            c.close()
        return codes

    def test_connections_limit_holds_across_workers(self):
        srv = policy_server(self, ["filter_ratelimit"], limits(
            {"key": "ip", "count": "connections", "limit": 12,
             "window": "10m", "algorithm": "fixed"}), workers=2)
        codes = []
        # Bursts of simultaneous connections, so that both workers take
        # some: the kernel hands each to whichever worker accepts first.
        for _ in range(6):
            codes += self.open_many(srv, "127.0.0.9", 8)
        self.assertEqual(codes.count(220), 12, codes)
        self.assertEqual(codes.count(421), len(codes) - 12, codes)
        log = srv.p.log_text()
        served = set(re.findall(r"\[(worker \d) pid \d+\] \[c [^]]+\] "
                                r"connect from 127\.0\.0\.9:", log))
        refused = re.findall(r"\[(worker \d) pid \d+\] \[c [^]]+\] "
                             r"ratelimit: rule 1: over 12 connections per "
                             r"10m per client address for 127\.0\.0\.9",
                             log)
        self.assertEqual(len(refused), len(codes) - 12)
        # Both workers met the client and together let 12 through.
        self.assertEqual(served, {"worker 0", "worker 1"}, served)
        # Another client has its own count.
        self.assertEqual(self.open_many(srv, "127.0.0.10", 1), [220])

    def test_refusal_reply(self):
        srv = policy_server(self, ["filter_ratelimit"], limits(
            {"key": "ip", "count": "connections", "limit": 1,
             "window": "1h", "algorithm": "fixed"}))
        self.assertEqual(self.open_many(srv, "127.0.0.11", 1), [220])
        c = SourceClient(srv.mx, "127.0.0.11")
        self.assertEqual(c.greeting.code, 421)
        self.assertEqual(c.greeting.enhanced, "4.7.1")
        self.assertRegex(c.greeting.text,
                         r"Rate limit exceeded \(1 connections per 1h per "
                         r"client address\), try again in 3[56]\d\d "
                         r"seconds")
        self.assertTrue(c.closed())

    def test_recipients_per_sender(self):
        srv = policy_server(self, ["filter_ratelimit"], limits(
            {"key": "sender", "count": "recipients", "limit": 3,
             "window": "1h"}))
        c = SourceClient(srv.mx, "127.0.0.12")
        c.ehlo()
        c.expect("MAIL FROM:<Bulk@Example.org>", 250)
        for user in ("alice", "bob", "carol"):
            c.expect("RCPT TO:<%s@example.test>" % user, 250, "2.1.5")
        c.expect("RCPT TO:<dave@example.test>", 451, "4.7.1",
                 r"3 recipients per 1h per sender")
        r = c.data(make_message(to="alice@example.test"))
        self.assertEqual(r.code, 250)
        # The same sender in another case, on another connection.
        c.expect("MAIL FROM:<bulk@example.org>", 250)
        c.expect("RCPT TO:<dave@example.test>", 451, "4.7.1")
        c.expect("RSET", 250)
        # Another sender is counted apart; bounces are not counted.
        c.expect("MAIL FROM:<other@example.org>", 250)
        c.expect("RCPT TO:<dave@example.test>", 250)
        c.expect("RSET", 250)
        c.expect("MAIL FROM:<>", 250)
        for _ in range(5):
            c.expect("RCPT TO:<dave@example.test>", 250)
        c.quit()

    def test_messages_per_user(self):
        srv = policy_server(self, ["filter_ratelimit"], {
            "filter_ratelimit": {"limits": [
                {"key": "user", "count": "messages", "limit": 2,
                 "window": "1d", "algorithm": "sliding"}]}},
            roles=("mx", "submission"))
        c = srv.auth_client("submission", "alice@example.test")
        for i in range(2):
            r = c.send_mail("alice@example.test", ["bob@example.test"],
                            make_message(subject="m%d" % i))
            self.assertEqual(r.code, 250)
        c.expect("MAIL FROM:<alice@example.test>", 451, "4.7.1",
                 r"2 messages per 1d per user")
        c.quit()
        # Another user is not affected; unauthenticated mail is not
        # counted by a per-user limit.
        c = srv.auth_client("submission", "bob@example.test")
        c.expect("MAIL FROM:<bob@example.test>", 250)
        c.quit()
        c = SourceClient(srv.mx, "127.0.0.13")
        c.ehlo()
        for _ in range(3):
            c.expect("MAIL FROM:<x@example.org>", 250)
            c.expect("RSET", 250)
        c.quit()

    def test_bucket_refills(self):
        srv = policy_server(self, ["filter_ratelimit"], limits(
            {"key": "ip", "count": "connections", "limit": 2,
             "window": "2s", "burst": 2}))
        self.assertEqual(self.open_many(srv, "127.0.0.14", 3),
                         [220, 220, 421])
        # One token per second.
        time.sleep(1.2)
        self.assertEqual(self.open_many(srv, "127.0.0.14", 2), [220, 421])

    def test_all_or_nothing(self):
        # A recipient refused by the second limit is not counted by the
        # first: dave's refusals do not use up bulk's budget.
        srv = policy_server(self, ["filter_ratelimit"], limits(
            {"key": "ip", "count": "recipients", "limit": 4,
             "window": "1h", "algorithm": "fixed"},
            {"key": "sender", "count": "recipients", "limit": 1,
             "window": "1h", "algorithm": "fixed"}))
        c = SourceClient(srv.mx, "127.0.0.15")
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        for _ in range(3):
            c.expect("RCPT TO:<bob@example.test>", 451, "4.7.1",
                     "per sender")
        c.expect("RSET", 250)
        c.expect("MAIL FROM:<b@example.org>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("RSET", 250)
        c.expect("MAIL FROM:<c@example.org>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("RSET", 250)
        c.expect("MAIL FROM:<d@example.org>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("RSET", 250)
        c.expect("MAIL FROM:<e@example.org>", 250)
        c.expect("RCPT TO:<alice@example.test>", 451, "4.7.1",
                 "per client address")
        c.quit()

    def test_counts_survive_worker_respawn_and_reload(self):
        srv = policy_server(self, ["filter_ratelimit"], limits(
            {"key": "ip", "count": "connections", "limit": 3,
             "window": "1h", "algorithm": "fixed"}))
        self.assertEqual(self.open_many(srv, "127.0.0.16", 4),
                         [220, 220, 220, 421])
        # The worker dies; the master keeps the table for its successor.
        worker = srv.p.wait_children(1)[0]
        mark = srv.p.log_mark()
        os.kill(worker, signal.SIGKILL)
        srv.p.wait_log("worker 0 started", since=mark)
        harness.wait_until(lambda: srv.p.children() and
                           srv.p.children()[0] != worker, 10, "respawn")
        self.assertEqual(self.open_many(srv, "127.0.0.16", 1), [421])
        # A reload with the same size carries the table over.
        mark = srv.p.log_mark()
        srv.p.signal(signal.SIGHUP)
        srv.p.wait_log("ratelimit: counts carried over to the new "
                       "generation", since=mark)
        srv.p.wait_log("worker 0 started", since=mark)
        self.assertEqual(self.open_many(srv, "127.0.0.16", 1), [421])
        self.assertEqual(self.open_many(srv, "127.0.0.17", 1), [220])

    def test_whitelist_and_trusted(self):
        srv = policy_server(self, ["filter_ratelimit"], {
            "filter_ratelimit": {
                "whitelist": ["127.0.0.1", "127.0.0.18/31"],
                "limits": [{"key": "ip", "count": "connections",
                            "limit": 1, "window": "1h"}]}},
            smtp={"trusted_networks": ["127.0.0.20"]})
        self.assertEqual(self.open_many(srv, "127.0.0.19", 3),
                         [220, 220, 220])
        self.assertEqual(self.open_many(srv, "127.0.0.20", 3),
                         [220, 220, 220])
        self.assertEqual(self.open_many(srv, "127.0.0.21", 2), [220, 421])

    def test_ipv4_prefix(self):
        srv = policy_server(self, ["filter_ratelimit"], limits(
            {"key": "ip", "count": "connections", "limit": 2,
             "window": "1h", "algorithm": "fixed"},
            ipv4_prefix=24, whitelist=["127.0.0.1"]))
        self.assertEqual(self.open_many(srv, "127.0.5.1", 1), [220])
        self.assertEqual(self.open_many(srv, "127.0.5.2", 1), [220])
        self.assertEqual(self.open_many(srv, "127.0.5.3", 1), [421])
        self.assertEqual(self.open_many(srv, "127.0.6.3", 1), [220])

    def test_config_errors(self):
        p = self.petrel()
        cases = [
            ({"limits": [{"key": "user", "count": "connections",
                          "limit": 1, "window": "1m"}]}, "limits[0]",
             "connections can only be counted per \"ip\""),
            ({"limits": [{"key": "ip", "count": "messages", "limit": 1,
                          "window": "1m", "algorithm": "fixed",
                          "burst": 5}]}, "limits[0]", "burst"),
            ({"limits": [{"key": "ip", "count": "messages", "limit": 1,
                          "window": "1m"},
                         {"key": "ip", "count": "messages", "limit": 1,
                          "window": "60s"}]}, "limits[1]",
             "same limit as limits[0]"),
            ({"limits": [{"key": "ip", "count": "messages", "limit": 0,
                          "window": "1m"}]}, "limits[0].limit", ""),
            ({"limits": []}, "limits", ""),
            ({"limits": [{"key": "ip", "count": "messages", "limit": 1,
                          "window": "1m"}], "roles": ["smtp"]}, "roles",
             "not a role"),
        ]
        for section, path, phrase in cases:
            r = p.check(p.config(modules={"filter_ratelimit": section}))
            self.assertCheckFails(r, "modules.filter_ratelimit." + path,
                                  phrase)


if __name__ == "__main__":
    unittest.main()
