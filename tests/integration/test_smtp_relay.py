# SPDX-License-Identifier: MIT
"""Relay policy (SECURITY.md #3): an unauthenticated client can never
relay, whatever the address trick; authenticated and trusted clients get
451 4.3.0 for remote recipients until a queue service exists; nothing is
accepted and dropped; XCLIENT and PROXY lines change nothing."""

import smtplib
import unittest

import harness
from smtp_harness import SmtpServer, make_message

# Recipients that must never be accepted from an unauthenticated client:
# 554 5.7.1 (or a syntax error), never 250.
RELAY_TRICKS = [
    "user@example.org",
    "user@EXAMPLE.ORG",
    "user@example.org.",
    "user@example.test.example.org",
    "user@example.testx",
    "user@xexample.test",
    "user@sub.example.test",
    "user%example.org@example.test",
    "alice%example.org@example.test",
    "user%example.org@EXAMPLE.TEST",
    "example.org!user@example.test",
    "alice!user@example.test",
    '"user@example.org"@example.test',
    '"user%example.org"@example.test',
    '"example.org!user"@example.test',
    "@example.test:user@example.org",
    "@mail.example.test,@example.test:user@example.org",
    "user@[127.0.0.1]",
    "user@[192.0.2.1]",
    "alice@[127.0.0.1]",
    "user@[IPv6:::1]",
    "postmaster@example.org",
    "user@example.org@example.test",
    "user@xn--exmple-cua.test",
    "alice@xn--exmple-cua.test",
]


class RelayDenied(harness.PetrelTestCase):

    def setUp(self):
        self.s = SmtpServer(self, smtp={"max_errors": 1000})

    def check_denied(self, c, rcpt, allowed_codes=(554,)):
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        self.assertNotEqual(r.code // 100, 2, "%s accepted: %s" % (rcpt, r))
        if r.code == 554:
            self.assertEqual(r.enhanced, "5.7.1", r)
            self.assertEqual(r.text, "5.7.1 Relay access denied")
        else:
            # Only an address the parser refuses may get another code.
            self.assertIn(r.code, (501, 553), "%s: %s" % (rcpt, r))
        return r

    def test_relay_tricks_mx(self):
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<spammer@example.org>", 250, "2.1.0")
            for rcpt in RELAY_TRICKS:
                with self.subTest(rcpt=rcpt):
                    self.check_denied(c, rcpt)
            # Nothing accepted: DATA has no recipient.
            c.expect("DATA", 554, "5.5.1")
        self.assertEqual(self.s.count_all(), 0)

    def test_relay_codes_exact(self):
        """The tricks docs/smtp.md names get exactly 554 5.7.1."""
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<spammer@example.org>", 250, "2.1.0")
            for rcpt in ("user@example.org", "user@EXAMPLE.ORG",
                         "user@example.org.",
                         "user%example.org@example.test",
                         "example.org!user@example.test",
                         '"user@example.org"@example.test',
                         "@example.test:user@example.org",
                         "user@[127.0.0.1]", "user@[IPv6:::1]"):
                with self.subTest(rcpt=rcpt):
                    c.expect("RCPT TO:<%s>" % rcpt, 554, "5.7.1")

    def test_idn_domains(self):
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<spammer@example.org> SMTPUTF8", 250,
                     "2.1.0")
            for rcpt in ("user@exämple.test", "alice@exämple.test",
                         "user@例え.テスト", "user@example.tést"):
                with self.subTest(rcpt=rcpt):
                    self.check_denied(c, rcpt)

    def test_relay_denied_on_submission_without_auth(self):
        c = self.s.tls_client("submission")
        c.expect("MAIL FROM:<spammer@example.org>", 530, "5.7.0")
        c.expect("RCPT TO:<user@example.org>", 503, "5.5.1")
        c.close()
        c = self.s.connect("submissions")
        c.ehlo()
        c.expect("MAIL FROM:<spammer@example.org>", 530, "5.7.0")
        c.close()

    def test_local_recipients_still_work(self):
        msg = make_message("local")
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            for rcpt in ("alice@example.test", "ALICE@EXAMPLE.TEST",
                         "alice@example.test.", '"alice"@example.test',
                         "@example.org:alice@example.test"):
                with self.subTest(rcpt=rcpt):
                    c.expect("RCPT TO:<%s>" % rcpt, 250, "2.1.5")
            c.expect("RCPT TO:<zed@example.test>", 550, "5.1.1")
            r = c.data(msg)
            self.assertEqual(r.code, 250, r)
        self.assertEqual(len(self.s.messages("alice@example.test")), 1)
        self.assertEqual(self.s.count_all(), 1)

    def test_xclient_and_proxy_ignored(self):
        s = SmtpServer(self, smtp={"trusted_networks": ["10.0.0.0/8",
                                                        "192.0.2.0/24"]})
        # PROXY protocol line as the first thing sent.
        c = s.connect("mx")
        c.expect("PROXY TCP4 10.1.2.3 127.0.0.1 40000 25", 500, "5.5.2")
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
        c.expect("RCPT TO:<user@example.org>", 554, "5.7.1")
        c.close()
        c = s.connect("mx")
        c.ehlo()
        for line in ("XCLIENT ADDR=10.1.2.3 NAME=trusted.example.test",
                     "XFORWARD ADDR=192.0.2.7"):
            r = c.cmd(line)
            self.assertEqual((r.code, r.enhanced), (500, "5.5.2"), r)
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
        c.expect("RCPT TO:<user@example.org>", 554, "5.7.1")
        c.close()
        self.assertNotIn(" trusted", s.p.log_text().replace(
            "trusted.example.test", ""))

    def test_smtplib_relay_refused(self):
        with smtplib.SMTP("127.0.0.1", self.s.mx, timeout=30) as c:
            c.ehlo("client.example.org")
            with self.assertRaises(smtplib.SMTPRecipientsRefused) as cm:
                c.sendmail("a@example.org", ["user@example.org"],
                           make_message("relay"))
            code, text = cm.exception.recipients["user@example.org"]
            self.assertEqual(code, 554)
            self.assertIn(b"5.7.1", text)
        self.assertEqual(self.s.count_all(), 0)


class RelayAllowed(harness.PetrelTestCase):
    """Authenticated or trusted clients: remote recipients get 451 4.3.0
    (no queue module yet), never 250 and dropped."""

    def test_authenticated_remote(self):
        s = SmtpServer(self)
        for role in ("submission", "submissions"):
            with self.subTest(role=role):
                c = s.auth_client(role)
                c.expect("MAIL FROM:<alice@example.test>", 250, "2.1.0")
                c.expect("RCPT TO:<user@example.org>", 451, "4.3.0",
                         text="Relaying is not available")
                c.expect("RCPT TO:<user@[192.0.2.1]>", 451, "4.3.0")
                c.expect("RCPT TO:<bob@example.test>", 250, "2.1.5")
                c.expect("RCPT TO:<nobody@example.test>", 550, "5.1.1")
                r = c.data(make_message("mixed"))
                self.assertEqual(r.code, 250, r)
                c.close()
        self.assertEqual(len(s.messages("bob@example.test")), 2)
        self.assertEqual(s.count_all(), 2)

    def test_trusted_network_mx(self):
        s = SmtpServer(self, smtp={"trusted_networks": ["127.0.0.0/8"]})
        with s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            c.expect("RCPT TO:<user@example.org>", 451, "4.3.0")
            c.expect("DATA", 554, "5.5.1")
        s.p.wait_log("role=mx trusted")
        self.assertEqual(s.count_all(), 0)

    def test_untrusted_neighbour_network(self):
        s = SmtpServer(self, smtp={"trusted_networks": ["127.0.0.2/32",
                                                        "::1"]})
        with s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            c.expect("RCPT TO:<user@example.org>", 554, "5.7.1")

    def test_trusted_networks_config_checked(self):
        s = SmtpServer(self, smtp={"trusted_networks": ["127.0.0.1/8"]},
                       start=False)
        result = s.p.check()
        self.assertExit(result, 1)
        self.assertIn("trusted_networks", result.stderr)


if __name__ == "__main__":
    unittest.main()
