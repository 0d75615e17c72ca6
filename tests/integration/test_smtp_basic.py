# SPDX-License-Identifier: MIT
"""The basic RFC 5321 conversation on the mx role: every command, the
sequencing and syntax reply codes, address forms, and delivery byte for
byte into Maildir and SQLite, with smtplib, swaks and curl."""

import re
import smtplib
import unittest

import harness
from smtp_harness import (HOSTNAME, SmtpClient, SmtpServer, make_message,
                          split_stored, swaks, curl)

RECEIVED = re.compile(
    rb"^Received: from (\S+) \(\[127\.0\.0\.1\]\)\r\n"
    rb"\tby mail\.example\.test \(Petrel\) with (\S+) id ([0-9A-F]+)"
    rb"(?:\r\n\t\(using (TLSv1\.[23]) with cipher ([A-Z0-9_-]+)\))?"
    rb"(?:\r\n\tfor <([^>\r\n]*)>)?;(?: |\r\n\t)"
    rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} "
    rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    rb"\d\d:\d\d:\d\d [+-]\d{4}\r\n\Z")


class Base(harness.PetrelTestCase):

    BACKEND = "maildir"
    SMTP = None

    def setUp(self):
        self.s = SmtpServer(self, self.BACKEND, smtp=self.SMTP)

    def assertStored(self, user, message, sender="sender@example.org",
                     helo=b"client.example.org", proto=b"ESMTP",
                     rcpt=None, index=-1, count=None):
        """The message stored for user (the index-th) is exactly
        Petrel's headers followed by message; returns the Received
        match."""
        msgs = self.s.messages(user)
        if count is not None:
            self.assertEqual(len(msgs), count, msgs)
        self.assertTrue(msgs, "nothing stored for %s" % user)
        ret, delivered, received, rest = split_stored(msgs[index])
        self.assertEqual(ret, sender.encode())
        self.assertEqual(delivered, user.encode())
        self.assertEqual(rest, message)
        m = RECEIVED.match(received)
        self.assertTrue(m, "malformed Received: %r" % received)
        self.assertEqual(m.group(1), helo)
        self.assertEqual(m.group(2), proto)
        if rcpt is not None:
            self.assertEqual(m.group(6), rcpt)
        return m


class Conversation(Base):

    SMTP = {"max_errors": 100}

    def test_greeting_and_quit(self):
        with self.s.connect() as c:
            self.assertEqual(str(c.greeting), "220 %s ESMTP Petrel"
                             % HOSTNAME)
            r = c.expect("QUIT", 221, "2.0.0")
            self.assertTrue(c.closed())

    def test_helo_and_ehlo(self):
        with self.s.connect() as c:
            r = c.expect("HELO client.example.org", 250)
            self.assertTrue(r.text.startswith(HOSTNAME), r)
            r = c.expect("EHLO client.example.org", 250)
            self.assertTrue(r.lines[0].startswith(HOSTNAME), r)
            self.assertGreater(len(r.lines), 1)
            c.expect("EHLO", 501, "5.5.4")
            c.expect("HELO", 501, "5.5.4")
            c.expect("EHLO " + "a" * 256, 501, "5.5.4")
            c.expect("EHLO " + "a" * 255, 250)
            c.quit()

    def test_simple_commands(self):
        with self.s.ehlo_client() as c:
            c.expect("NOOP", 250, "2.0.0")
            c.expect("RSET", 250, "2.0.0")
            c.expect("VRFY alice@example.test", 252, "2.5.2")
            c.expect("VRFY nobody@example.test", 252, "2.5.2")
            c.expect("EXPN staff", 502, "5.5.1")
            c.expect("HELP", 214, "2.0.0")
            c.expect("RSET now", 501, "5.5.4")
            c.expect("QUIT now", 501, "5.5.4")
            c.quit()

    def test_sequencing(self):
        with self.s.connect() as c:
            c.expect("MAIL FROM:<a@example.org>", 503, "5.5.1")
            c.expect("RCPT TO:<alice@example.test>", 503, "5.5.1")
            c.expect("DATA", 503, "5.5.1")
            c.ehlo()
            c.expect("RCPT TO:<alice@example.test>", 503, "5.5.1")
            c.expect("DATA", 503, "5.5.1")
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            c.expect("MAIL FROM:<b@example.org>", 503, "5.5.1")
            # MAIL without any accepted recipient.
            c.expect("DATA", 554, "5.5.1")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            # RSET ends the transaction; EHLO does as well.
            c.expect("RSET", 250, "2.0.0")
            c.expect("RCPT TO:<alice@example.test>", 503, "5.5.1")
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            c.ehlo()
            c.expect("RCPT TO:<alice@example.test>", 503, "5.5.1")
            c.quit()

    def test_syntax_errors(self):
        with self.s.ehlo_client() as c:
            c.expect("FROB", 500, "5.5.2")
            c.expect("MAIL", 501)
            c.expect("MAIL TO:<a@example.org>", 501)
            c.expect("MAIL FROM:a@example.org>", 501)
            c.expect("MAIL FROM:<a@example.org", 501)
            c.expect("MAIL FROM:<a@@example.org>", 501, "5.1.7")
            c.expect("MAIL FROM:<a b@example.org>", 501, "5.1.7")
            c.expect("MAIL FROM:<a@example.org> FOO=bar", 555, "5.5.4")
            # Spaces after the colon are tolerated.
            c.expect("MAIL FROM: <a@example.org>", 250, "2.1.0")
            c.expect("RCPT TO:<alice@@example.test>", 501, "5.1.3")
            c.expect("RCPT TO:alice@example.test", 501)
            c.expect("RCPT TO:<alice@example.test> BAR", 555, "5.5.4")
            c.expect("RCPT TO:<%s@example.test>" % ("a" * 65), 501, "5.1.3")
            c.expect("RCPT TO: <alice@example.test>", 250, "2.1.5")
            c.expect("DATA now", 501, "5.5.4")
            c.expect("RSET", 250, "2.0.0")

    def test_nul_and_stray_cr_in_commands(self):
        with self.s.ehlo_client() as c:
            c.expect(b"NOOP\0", 500, "5.5.2")
            c.expect(b"NO\rOP", 500, "5.5.2")
            c.expect(b"HELO a\0b", 500, "5.5.2")
            # A bare LF ends a command line too.
            c.send(b"NOOP\n")
            c.expect_reply(250, "2.0.0")
            c.expect("NOOP", 250, "2.0.0")

    def test_http_verbs_close(self):
        for verb in ("GET / HTTP/1.1", "POST /x HTTP/1.0", "HEAD / HTTP/1.1",
                     "PUT /x HTTP/1.1", "CONNECT a:25 HTTP/1.1",
                     "OPTIONS * HTTP/1.1"):
            with self.subTest(verb=verb), self.s.connect() as c:
                c.expect(verb, 421, "4.7.0")
                self.assertTrue(c.closed())

    def test_unknown_user(self):
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            c.expect("RCPT TO:<nobody@example.test>", 550, "5.1.1")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
        self.assertEqual(self.s.messages("alice@example.test"), [])

    def test_sender_checks(self):
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@localhost>", 553, "5.1.7")
            c.expect("MAIL FROM:<a@[127.0.0.1]>", 250, "2.1.0")
            c.expect("RSET", 250, "2.0.0")
            c.expect("MAIL FROM:<a@[IPv6:::1]>", 250, "2.1.0")
            c.expect("RSET", 250, "2.0.0")
            c.expect("MAIL FROM:<%s@example.org>" % ("l" * 65), 501,
                     "5.1.7")
            c.expect("MAIL FROM:<a@%s.org>" % ("d" * 260), 501)
            c.expect("MAIL FROM:<>", 250, "2.1.0")


class Options(harness.PetrelTestCase):
    """Config keys that change the conversation."""

    def test_vrfy_enabled(self):
        s = SmtpServer(self, smtp={"vrfy": True,
                                   "trusted_networks": ["127.0.0.0/8"]})
        with s.ehlo_client() as c:
            c.expect("VRFY alice@example.test", 250, "2.1.5")
            c.expect("VRFY <bob@example.test>", 250, "2.1.5")
            c.expect("VRFY nobody@example.test", 550, "5.1.1")
        # Untrusted and not authenticated: nothing is revealed.
        s = SmtpServer(self, smtp={"vrfy": True})
        with s.ehlo_client() as c:
            c.expect("VRFY alice@example.test", 252, "2.5.2")
            c.expect("VRFY nobody@example.test", 252, "2.5.2")
        with s.auth_client() as c:
            c.expect("VRFY alice@example.test", 250, "2.1.5")
            c.expect("VRFY nobody@example.test", 550, "5.1.1")

    def test_fqdn_sender_not_required(self):
        s = SmtpServer(self, smtp={"require_fqdn_sender": False})
        with s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@localhost>", 250, "2.1.0")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            self.assertEqual(c.data(make_message("fqdn")).code, 250)

    def test_local_domains_from_userdb(self):
        """With local_domains empty, the auth service decides."""
        s = SmtpServer(self, smtp={"local_domains": []})
        with s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            c.expect("RCPT TO:<zed@example.test>", 550, "5.1.1")
            c.expect("RCPT TO:<user@example.org>", 554, "5.7.1")
            self.assertEqual(c.data(make_message("userdb")).code, 250)
        self.assertEqual(len(s.messages("alice@example.test")), 1)

    def test_hostname_default(self):
        s = SmtpServer(self, start=False)
        del s.cfg["modules"]["smtp"]["hostname"]
        s.cfg["server"]["hostname"] = "mx.example.test"
        s.p.write_config(s.cfg)
        s.start()
        c = SmtpClient(s.mx)
        self.assertEqual(str(c.greeting), "220 mx.example.test ESMTP Petrel")
        r = c.expect("EHLO client.example.org", 250)
        self.assertTrue(r.lines[0].startswith("mx.example.test"))
        c.close()


class Delivery(Base):

    def test_raw_delivery_byte_exact(self):
        msg = make_message("raw", body=(
            b"line one\r\n.\r\n..\r\n.dot\r\n\r\n \r\n\ttab\r\n"
            b"Trailing spaces   \r\nlast line\r\n"))
        with self.s.ehlo_client() as c:
            r = c.send_mail("sender@example.org", ["alice@example.test"],
                            msg)
            self.assertEqual(r.code, 250, r)
            self.assertEqual(r.enhanced, "2.0.0")
            self.assertRegex(r.text, r"^2\.0\.0 Ok: queued as [0-9A-F]+$")
            queue_id = r.text.rsplit(" ", 1)[1]
            c.quit()
        m = self.assertStored("alice@example.test", msg, count=1,
                              rcpt=b"alice@example.test")
        self.assertEqual(m.group(3).decode(), queue_id)
        self.assertIsNone(m.group(4))
        log = self.s.p.wait_log("message %s accepted" % queue_id)
        self.assertRegex(log, r"message %s accepted from=<sender@example"
                              r"\.org> nrcpt=1 size=%d tls=none auth=-"
                         % (queue_id, len(msg)))

    def test_smtplib_delivery(self):
        msg = make_message("smtplib", body=b"a\r\n.b\r\n.\r\nc\r\n")
        with smtplib.SMTP("127.0.0.1", self.s.mx, timeout=30) as c:
            c.ehlo("client.example.org")
            refused = c.sendmail("sender@example.org",
                                 ["alice@example.test"], msg)
            self.assertEqual(refused, {})
        self.assertStored("alice@example.test", msg, count=1)

    def test_empty_message_and_no_final_crlf(self):
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<>", 250, "2.1.0")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            c.expect("DATA", 354)
            c.send(b".\r\n")
            c.expect_reply(250, "2.0.0")
        self.assertStored("alice@example.test", b"", sender="", count=1)

    def test_several_recipients(self):
        msg = make_message("several")
        with self.s.ehlo_client() as c:
            r = c.send_mail("sender@example.org",
                            ["alice@example.test", "bob@example.test",
                             "ALICE@Example.Test", "alice@example.test."],
                            msg)
            self.assertEqual(r.code, 250, r)
        # Duplicate recipients collapse; no "for" with several.
        for user in ("alice@example.test", "bob@example.test"):
            m = self.assertStored(user, msg, count=1)
            self.assertIsNone(m.group(6))
        self.assertEqual(self.s.count_all(), 2)

    def test_several_messages_one_session(self):
        msgs = [make_message("m%d" % i) for i in range(5)]
        with self.s.ehlo_client() as c:
            for m in msgs:
                r = c.send_mail("sender@example.org",
                                ["bob@example.test"], m)
                self.assertEqual(r.code, 250, r)
            c.quit()
        stored = self.s.messages("bob@example.test")
        self.assertEqual(len(stored), 5)
        self.assertEqual(sorted(split_stored(x)[3] for x in stored),
                         sorted(msgs))

    def test_helo_gives_smtp(self):
        msg = make_message("helo")
        with self.s.connect() as c:
            c.expect("HELO old.example.org", 250)
            c.expect("MAIL FROM:<sender@example.org> SIZE=10", 555, "5.5.4")
            r = c.send_mail("sender@example.org", ["alice@example.test"],
                            msg)
            self.assertEqual(r.code, 250, r)
        self.assertStored("alice@example.test", msg,
                          helo=b"old.example.org", proto=b"SMTP")

    def test_address_forms(self):
        msg = make_message("forms")
        with self.s.ehlo_client() as c:
            c.expect('MAIL FROM:<"john q. public"@example.org>', 250,
                     "2.1.0")
            # A quoted local part that is a plain dot-string is unquoted.
            c.expect('RCPT TO:<"alice"@example.test>', 250, "2.1.5")
            # Source routes are accepted and ignored.
            c.expect("RCPT TO:<@mail.example.test,@other.example.test:"
                     "bob@example.test>", 250, "2.1.5")
            r = c.data(msg)
            self.assertEqual(r.code, 250, r)
        self.assertStored("alice@example.test", msg,
                          sender='"john q. public"@example.org')
        self.assertStored("bob@example.test", msg,
                          sender='"john q. public"@example.org')

    def test_postmaster(self):
        msg = make_message("pm")
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<>", 250, "2.1.0")
            c.expect("RCPT TO:<Postmaster>", 250, "2.1.5")
            self.assertEqual(c.data(msg).code, 250)
        self.assertStored("postmaster@example.test", msg, sender="",
                          count=1)

    def test_large_message(self):
        msg = make_message("large", size=3 * 1024 * 1024)
        with self.s.ehlo_client() as c:
            r = c.send_mail("sender@example.org", ["alice@example.test"],
                            msg, timeout=60)
            self.assertEqual(r.code, 250, r)
        self.assertStored("alice@example.test", msg, count=1)

    def test_all_octets_8bitmime(self):
        body = bytes(b for b in range(256) if b not in (0, 10, 13))
        msg = make_message("octets", body=body + b"\r\n" + body + b"\r\n")
        with self.s.ehlo_client() as c:
            r = c.send_mail("sender@example.org", ["alice@example.test"],
                            msg, mail_params=" BODY=8BITMIME")
            self.assertEqual(r.code, 250, r)
        self.assertStored("alice@example.test", msg, count=1)


class SqliteDelivery(Delivery):
    BACKEND = "sqlite"

    def test_sqlite_rows(self):
        msg = make_message("row")
        with smtplib.SMTP("127.0.0.1", self.s.mx, timeout=30) as c:
            c.ehlo("client.example.org")
            c.sendmail("sender@example.org",
                       ["alice@example.test", "bob@example.test"], msg)
        rows = self.s.sqlite_rows()
        self.assertEqual(sorted(r[0] for r in rows),
                         ["alice@example.test", "bob@example.test"])
        for name, body in rows:
            self.assertEqual(split_stored(bytes(body))[3], msg)


class OtherClients(Base):

    def test_swaks_mx(self):
        result = swaks(["--server", "127.0.0.1:%d" % self.s.mx,
                        "--ehlo", "swaks.example.org",
                        "--from", "swaks@example.org",
                        "--to", "alice@example.test,bob@example.test",
                        "--header", "Subject: swaks test",
                        "--body", "swaks body\n.dot\n"])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertRegex(result.stdout, r"<-  250 2\.0\.0 Ok: queued as")
        for user in ("alice@example.test", "bob@example.test"):
            msgs = self.s.messages(user)
            self.assertEqual(len(msgs), 1)
            ret, _, received, rest = split_stored(msgs[0])
            self.assertEqual(ret, b"swaks@example.org")
            self.assertIn(b"from swaks.example.org ", received)
            self.assertIn(b"Subject: swaks test\r\n", rest)
            self.assertIn(b"\r\n\r\nswaks body\r\n.dot\r\n", rest)

    def test_curl_smtp(self):
        msg = make_message("curl", body=b"curl body\r\n.dot line\r\n")
        result = curl(["smtp://127.0.0.1:%d/curl.example.org" % self.s.mx,
                       "--mail-from", "curl@example.org",
                       "--mail-rcpt", "alice@example.test",
                       "--upload-file", "-"], data=msg)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertStored("alice@example.test", msg,
                          sender="curl@example.org",
                          helo=b"curl.example.org", count=1)

    def test_curl_unknown_recipient(self):
        result = curl(["smtp://127.0.0.1:%d" % self.s.mx,
                       "--mail-from", "curl@example.org",
                       "--mail-rcpt", "nobody@example.test",
                       "--upload-file", "-"], data=make_message("x"))
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(b"550", result.stderr)
        self.assertEqual(self.s.count_all(), 0)


if __name__ == "__main__":
    unittest.main()
