# SPDX-License-Identifier: MIT
"""Header, newline and log injection (SECURITY.md #5; Exim
CVE-2020-28021) and envelope data reaching a shell or an expansion
(SECURITY.md #7; OpenSMTPD CVE-2020-7247, Exim CVE-2019-10149).

HELO names and envelope values with CR, LF, NUL, spaces, non-ASCII and
over 1 KB: refused, or escaped so that the stored message still starts
with exactly Petrel's three well-formed header fields and the log has
one line per event. Shell metacharacters in addresses: refused or stored
verbatim, never run."""

import glob
import os
import re
import time
import unittest
import uuid

import harness
from smtp_harness import SmtpServer, make_message, split_stored

# The escaped HELO in Received: only these bytes appear as themselves.
SAFE_HELO = re.compile(rb"^[A-Za-z0-9.\-_:\[\]@+=%]+$")


class HeaderInjection(harness.PetrelTestCase):

    def setUp(self):
        self.s = SmtpServer(self, smtp={"max_errors": 100})
        self.msg = make_message("inject")

    def deliver_after(self, c):
        r = c.send_mail("a@example.org", ["alice@example.test"], self.msg)
        self.assertEqual(r.code, 250, r)

    def last_stored(self):
        msgs = self.s.messages("alice@example.test")
        self.assertTrue(msgs)
        ret, delivered, received, rest = split_stored(msgs[-1])
        self.assertEqual(rest, self.msg)
        self.assertWellFormed(received)
        return received

    def assertWellFormed(self, received):
        """One Received field: a first line and tab-continued lines, only
        printable ASCII, and the from part escaped."""
        lines = received.split(b"\r\n")
        self.assertEqual(lines[-1], b"")
        self.assertTrue(lines[0].startswith(b"Received: from "))
        for line in lines[1:-1]:
            self.assertTrue(line.startswith(b"\t"), received)
        for b in received.replace(b"\r\n", b"").replace(b"\t", b""):
            self.assertTrue(0x20 <= b < 0x7f, "byte %#x in %r"
                            % (b, received))
        helo = lines[0].split(b" ")[2]
        self.assertRegex(helo, SAFE_HELO)
        self.assertEqual(lines[0], b"Received: from %s ([127.0.0.1])"
                         % helo)
        return helo

    def test_helo_control_bytes_refused(self):
        with self.s.connect() as c:
            c.expect(b"EHLO a\rX-Injected: yes", 500, "5.5.2")
            c.expect(b"EHLO a\0b", 500, "5.5.2")
            c.expect(b"EHLO a\x01b", 501, "5.5.4")
            c.expect(b"EHLO a\x7fb", 501, "5.5.4")
            c.expect(b"EHLO \xff\xfe", 501, "5.5.4")
            c.expect(b"EHLO " + b"h" * 1100, 500, "5.5.2")
            c.expect(b"HELO " + b"h" * 300, 501, "5.5.4")
            # An LF ends the line: what follows is another command.
            c.send(b"EHLO safe.example.org\nX-Injected: yes\r\n")
            c.expect_reply(250, kind="EHLO")
            c.expect_reply(500, "5.5.2")
            self.deliver_after(c)
        helo = self.assertWellFormed(self.last_stored())
        self.assertEqual(helo, b"safe.example.org")
        self.assertNotIn(b"X-Injected", self.s.messages(
            "alice@example.test")[0].split(b"\r\n\r\n")[0][:400])

    def test_helo_escaped(self):
        cases = [
            ("spaces and parens", b"a b) (by evil",
             b"a%20b%29%20%28by%20evil"),
            ("utf8", "héllo.exämple".encode(), b"h%C3%A9llo.ex%C3%A4mple"),
            ("semicolon", b"x;for <root@x>", b"x%3Bfor%20%3Croot@x%3E"),
            ("literal", b"[192.0.2.1]", b"[192.0.2.1]"),
            ("percent", b"100%", b"100%25"),
            ("long", b"a" * 255, b"a" * 255),
        ]
        for name, helo, want in cases:
            with self.subTest(case=name):
                with self.s.connect() as c:
                    c.expect(b"EHLO " + helo, 250)
                    self.deliver_after(c)
                got = self.assertWellFormed(self.last_stored())
                self.assertEqual(got, want)

    def test_envelope_params_with_newlines(self):
        """xtext may encode CR LF; decoded values must not be kept with
        control characters (Exim CVE-2020-28021)."""
        with self.s.ehlo_client() as c:
            for params in ("ENVID=a+0D+0AX-Evil:+20yes",
                           "ENVID=a+0A.", "ENVID=a+00b",
                           "AUTH=a+0D+0Ab"):
                with self.subTest(params=params):
                    r = c.cmd("MAIL FROM:<a@example.org> " + params)
                    if r.code == 250:
                        c.expect("RSET", 250, "2.0.0")
                    else:
                        self.assertEqual((r.code, r.enhanced),
                                         (501, "5.5.4"), r)
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            r = c.cmd("RCPT TO:<alice@example.test> "
                      "ORCPT=rfc822;a+0D+0AX-Evil:+20yes@b")
            self.assertIn(r.code, (250, 501), r)
            if r.code != 250:
                c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            r = c.data(self.msg)
            self.assertEqual(r.code, 250, r)
        stored = self.s.messages("alice@example.test")[0]
        self.assertNotIn(b"\nX-Evil", stored)
        self.assertNotIn(b"\nX-Evil", self.s.p.log_text().encode())

    def test_log_lines_stay_single(self):
        """Peer values land escaped in the log: no forged log line."""
        marker = uuid.uuid4().hex
        with self.s.connect() as c:
            c.expect(b"EHLO x\xc3\xa9" + marker.encode(), 250)
            # CR LF ends the command: two commands, two errors.
            c.expect(b"MAIL FROM:<\"a\\\r\n" + marker.encode()
                     + b" forged\"@example.org>", 501, "5.1.7")
            c.expect_reply(500, "5.5.2")
            c.expect("MAIL FROM:<\"x y\\\"z%s\"@example.org>" % marker,
                     250, "2.1.0")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            self.assertEqual(c.data(self.msg).code, 250)
            c.expect("AUTH PLAIN " + marker, 503)
        log = self.s.p.wait_log("accepted from=<")
        for line in log.splitlines():
            if marker in line:
                self.assertRegex(line, r"^\S+ \w+ \[worker")
                self.assertNotIn(" forged", line.split(marker, 1)[0][-3:])
        self.assertNotRegex(log, r"(?m)^%s" % marker)
        self.assertNotRegex(log, r"(?m)^ forged")

    def test_auth_username_in_log_escaped(self):
        """A SASL user name may hold any byte: the failure log line
        escapes it (no forged line, no raw ESC or NUL)."""
        import base64
        marker = uuid.uuid4().hex
        forged = ("x\n2026-01-01T00:00:00.000Z info [worker 0 pid 1] "
                  "auth ok user=\"root\" %s\r\x1b[2J\0end" % marker)
        token = base64.b64encode(("\0%s\0pw" % forged).encode()).decode()
        c = self.s.tls_client("submission")
        c.expect("AUTH PLAIN " + token, 535, "5.7.8")
        c.close()
        log = self.s.p.wait_log("auth failed from 127.0.0.1")
        # The name may be left out of the line; if it is there, it is
        # inside that one line.
        for line in log.splitlines():
            if marker in line:
                self.assertIn("auth failed from 127.0.0.1", line)
        self.assertNotIn("\x1b", log)
        self.assertNotIn("\0", log)
        self.assertNotRegex(log, r"(?m)^2026-01-01T00:00:00")

    def test_received_for_escaped(self):
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            c.expect('RCPT TO:<"alice"@example.test>', 250, "2.1.5")
            self.assertEqual(c.data(self.msg).code, 250)
        received = self.last_stored()
        self.assertIn(b"\tfor <alice@example.test>;", received)


class ShellMetacharacters(harness.PetrelTestCase):
    """Addresses made to hurt a server that passes them to a shell or an
    expander: refused (5xx) or accepted and stored verbatim; a `touch`
    payload must never create its file."""

    def setUp(self):
        self.s = SmtpServer(self, smtp={"max_errors": 100})
        self.tag = uuid.uuid4().hex[:12]
        self.pwned = "/tmp/pwned-" + self.tag
        self.addCleanup(self.cleanup_pwned)

    def cleanup_pwned(self):
        for path in glob.glob("/tmp/pwned-%s*" % self.tag):
            os.unlink(path)

    def assertNotPwned(self):
        time.sleep(0.5)
        self.assertEqual(glob.glob("/tmp/pwned-%s*" % self.tag), [])

    def test_documented_payloads(self):
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<;sleep 66;>", 501, "5.1.7")
            c.expect("MAIL FROM:<`id`@x>", 553, "5.1.7")
            c.expect("MAIL FROM:<${run{x}}@x>", 553, "5.1.7")
            start = time.monotonic()
            c.expect("MAIL FROM:<;sleep 66;@example.org>", 501)
            c.expect("NOOP", 250, "2.0.0")
            self.assertLess(time.monotonic() - start, 5)

    def test_touch_payloads(self):
        t = self.pwned
        senders = [
            "`touch${IFS}%s-a`@example.org" % t,
            "$(touch${IFS}%s-b)@example.org" % t,
            '"|touch %s-c"@example.org' % t,
            '";touch %s-d;"@example.org' % t,
            "${run{/usr/bin/touch${IFS}%s-e}}@example.org" % t,
            "x|touch${IFS}%s-f@example.org" % t,
            '"`touch %s-g`"@example.org' % t,
        ]
        rcpts = [
            "`touch${IFS}%s-h`@example.test" % t,
            '"|touch %s-i"@example.test' % t,
            "${run{/usr/bin/touch${IFS}%s-j}}@example.test" % t,
            ";touch${IFS}%s-k;@example.test" % t,
        ]
        stored_senders = []
        with self.s.ehlo_client() as c:
            for sender in senders:
                with self.subTest(sender=sender):
                    r = c.cmd("MAIL FROM:<%s>" % sender)
                    self.assertIn(r.code, (250, 501, 553), r)
                    if r.code != 250:
                        continue
                    for rcpt in rcpts:
                        r = c.cmd("RCPT TO:<%s>" % rcpt)
                        self.assertEqual(r.code // 100, 5, r)
                    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
                    r = c.data(make_message("shell"))
                    self.assertEqual(r.code, 250, r)
                    stored_senders.append(sender)
        self.assertNotPwned()
        msgs = self.s.messages("alice@example.test")
        self.assertEqual(len(msgs), len(stored_senders))
        got = sorted(split_stored(m)[0].decode() for m in msgs)
        self.assertEqual(got, sorted(stored_senders))

    def test_helo_and_params_payloads(self):
        t = self.pwned
        with self.s.connect() as c:
            r = c.cmd("EHLO $(touch${IFS}%s-l)" % t)
            self.assertIn(r.code, (250, 501), r)
            if r.code != 250:
                c.ehlo()
            c.expect("MAIL FROM:<a@example.org> ENVID=`touch+20%s-m`" % t,
                     250, "2.1.0")
            r = c.cmd("RCPT TO:<alice@example.test> "
                      "ORCPT=rfc822;$(touch+20%s-n)" % t)
            self.assertIn(r.code, (250, 501), r)
            if r.code != 250:
                c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            self.assertEqual(c.data(make_message("x")).code, 250)
        self.assertNotPwned()


if __name__ == "__main__":
    unittest.main()
