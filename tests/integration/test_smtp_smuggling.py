# SPDX-License-Identifier: MIT
"""SMTP smuggling (SECURITY.md #1; Postfix CVE-2023-51764, Sendmail
CVE-2023-51765, Exim CVE-2023-51766, chasquid CVE-2023-52354).

For each non-standard end of data, one DATA carries the variant followed
by MAIL/RCPT/DATA of a spoofed message, all in one write. Only CR LF . CR
LF ends the data: either the whole thing is refused (550 5.6.11, nothing
stored) or exactly one message is stored with the spoofed text inside it.
Never two messages, never a message from the spoofed sender."""

import os
import unittest

import harness
from smtp_harness import SmtpServer, split_stored

VARIANTS = [
    ("lf_dot_lf", b"\n.\n"),
    ("lf_dot_crlf", b"\n.\r\n"),
    ("cr_dot_lf", b"\r.\n"),
    ("crlf_dot_lf", b"\r\n.\n"),
    ("crlf_dot_cr", b"\r\n.\r"),
    ("cr_dot_cr", b"\r.\r"),
    ("lf_dot_cr", b"\n.\r"),
    ("cr_dot_crlf", b"\r.\r\n"),
    ("crlf_dot_space_crlf", b"\r\n. \r\n"),
    ("crlf_dot_nul_crlf", b"\r\n.\0\r\n"),
]

FIRST = (b"From: <legit@example.org>\r\nTo: <alice@example.test>\r\n"
         b"Subject: first\r\n\r\nFIRST-BODY")
SPOOF = (b"MAIL FROM:<ceo@example.test>\r\n"
         b"RCPT TO:<alice@example.test>\r\n"
         b"DATA\r\n"
         b"From: <ceo@example.test>\r\nSubject: spoofed\r\n\r\n"
         b"SMUGGLED-BODY\r\n"
         b".\r\n")


class Smuggling(harness.PetrelTestCase):

    BACKEND = "maildir"

    def setUp(self):
        self.s = SmtpServer(self, self.BACKEND)

    def attempt(self, variant):
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<legit@example.org>", 250, "2.1.0")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            c.expect("DATA", 354)
            c.send(FIRST + variant + SPOOF + b"QUIT\r\n")
            replies = []
            while True:
                r = c.reply(kind="DATA-END", timeout=15)
                replies.append(r)
                if r.code == 221 or len(replies) > 8:
                    break
            self.assertTrue(c.closed())
        return replies

    def check_outcome(self, name, replies):
        codes = [r.code for r in replies]
        msgs = self.s.messages("alice@example.test")
        self.assertLessEqual(self.s.count_all(), 1)
        if codes == [550, 221]:
            self.assertEqual(replies[0].enhanced, "5.6.11", replies)
            self.assertEqual(msgs, [])
        elif codes == [250, 221]:
            self.assertEqual(len(msgs), 1)
            ret, _, _, body = split_stored(msgs[0])
            self.assertEqual(ret, b"legit@example.org")
            self.assertIn(b"FIRST-BODY", body)
            self.assertIn(b"SMUGGLED-BODY", body)
            # Stored as sent: the spoofed commands are message text.
            self.assertIn(b"MAIL FROM:<ceo@example.test>", body)
        else:
            self.fail("%s: smuggled commands were run: %s"
                      % (name, replies))
        for m in msgs:
            self.assertNotIn(b"Return-Path: <ceo@example.test>", m)

    def test_variants(self):
        for name, variant in VARIANTS:
            with self.subTest(variant=name):
                before = self.s.count_all()
                self.assertEqual(before, 0)
                replies = self.attempt(variant)
                self.check_outcome(name, replies)
                # Start from an empty mailbox for the next variant.
                for path in self.s.all_files():
                    os.unlink(path)

    def test_bare_lf_and_cr_refused(self):
        """docs/smtp.md: a bare CR or LF anywhere is refused with 550
        5.6.11 at the real end; the session goes on."""
        for name, body in (("bare_lf", b"Subject: x\r\n\r\na\nb\r\n"),
                           ("bare_cr", b"Subject: x\r\n\r\na\rb\r\n"),
                           ("lf_in_header", b"Subject: x\nBcc: y\r\n\r\n"),
                           ("trailing_lf", b"Subject: x\r\n\r\nend\n")):
            with self.subTest(case=name), self.s.ehlo_client() as c:
                c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
                c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
                c.expect("DATA", 354)
                c.send(body + b"\r\n.\r\n")
                c.expect_reply(550, "5.6.11", kind="DATA-END",
                               text="Bare CR or LF")
                c.expect("NOOP", 250, "2.0.0")
        self.assertEqual(self.s.count_all(), 0)
        self.s.p.wait_log("refused: bare CR or LF")

    def test_bdat_carries_no_commands(self):
        """A BDAT chunk holding the spoof is message text, whatever its
        line ends; with a real CRLF.CRLF inside it is still one
        message."""
        chunk = FIRST + b"\r\n.\r\n" + SPOOF
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<legit@example.org>", 250, "2.1.0")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk + b"QUIT\r\n")
            c.expect_reply(250, "2.0.0", kind="BDAT")
            c.expect_reply(221, "2.0.0", kind="QUIT")
        msgs = self.s.messages("alice@example.test")
        self.assertEqual(len(msgs), 1)
        self.assertEqual(split_stored(msgs[0])[3], chunk)


class SmugglingSqlite(Smuggling):
    BACKEND = "sqlite"

    def test_variants(self):
        for name, variant in VARIANTS:
            with self.subTest(variant=name):
                n = len(self.s.messages("alice@example.test"))
                replies = self.attempt(variant)
                codes = [r.code for r in replies]
                self.assertIn(codes, ([550, 221], [250, 221]), replies)
                got = self.s.messages("alice@example.test")[n:]
                self.assertEqual(len(got), 1 if codes[0] == 250 else 0)
                for m in got:
                    self.assertIn(b"SMUGGLED-BODY", m)


if __name__ == "__main__":
    unittest.main()
