# SPDX-License-Identifier: MIT
"""filter_regex end to end over SMTP: a rule on each target (client IP,
PTR name through a dnsmasq-served zone, HELO, sender, recipient, a header
with RFC 2047 words, any header, the raw body, the decoded text of
base64 and quoted-printable MIME parts), negated rules, header edits,
catastrophic backtracking against a hostile 100 KB line (bounded, and
logged), the scan time limit, hostile MIME (deep nesting, 20000 header
fields), and config errors naming the rule and the offset."""

import base64
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

import harness
from harness import IS_ROOT
from smtp_harness import SmtpClient, SmtpServer, make_message

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


class FromClient(SmtpClient):
    """An SMTP client connecting from another loopback address."""

    def __init__(self, port, source, **kwargs):
        real = socket.create_connection

        def connect(address, timeout=None, source_address=None):
            return real(address, timeout=timeout,
                        source_address=(source, 0))

        socket.create_connection = connect
        try:
            super().__init__(port, **kwargs)
        finally:
            socket.create_connection = real


class PtrZone:
    """dnsmasq answering PTR queries for 127.0.0.4 (bad-host) and
    127.0.0.5 (good-host); other loopback addresses: NXDOMAIN."""

    def __init__(self):
        if not os.path.exists(DNSMASQ):
            raise AssertionError("dnsmasq is not installed "
                                 "(apt-get install dnsmasq-base)")
        self.port = harness.free_port()
        self.dir = tempfile.mkdtemp(prefix="petrel-regex-dns-")
        args = [DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts",
                "--conf-file=/dev/null", "--pid-file=",
                "--port=%d" % self.port, "--listen-address=127.0.0.1",
                "--bind-interfaces", "--log-facility=-",
                "--local=/127.in-addr.arpa/", "--local-ttl=60",
                "--ptr-record=4.0.0.127.in-addr.arpa,bad-host.example.net",
                "--ptr-record=5.0.0.127.in-addr.arpa,good-host.example.net"]
        if IS_ROOT:
            import grp
            import pwd
            nobody = pwd.getpwnam("nobody")
            args += ["--user=nobody",
                     "--group=" + grp.getgrgid(nobody.pw_gid).gr_name]
        self.log = open(os.path.join(self.dir, "dnsmasq.log"), "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=self.log,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        harness.wait_port(self.port, proc=self.proc)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


RULES = [
    {"name": "bad-ip", "target": "client_ip", "pattern": r"^127\.0\.0\.3$",
     "action": "reject", "text": "bad address"},
    {"name": "bad-ptr", "target": "client_hostname",
     "pattern": r"^bad-host\.", "action": "reject", "text": "bad host"},
    {"name": "bad-helo", "target": "helo", "pattern": "^bad-helo\\b",
     "caseless": True, "action": "reject", "code": 550,
     "enhanced": "5.7.2", "text": "bad helo"},
    {"name": "spam-sender", "target": "mail_from", "pattern": "^spam@",
     "action": "tempfail", "code": 450, "enhanced": "4.7.3",
     "text": "not now"},
    {"name": "no-carol", "target": "rcpt", "pattern": "^carol@",
     "action": "reject", "text": "carol takes no mail"},
    {"name": "subject", "target": "header:Subject", "decode_2047": True,
     "utf": True, "caseless": True, "pattern": "ünïcode spam",
     "action": "reject", "text": "subject"},
    {"name": "mailer", "target": "any_header",
     "pattern": "^X-Mailer: BadMailer", "action": "quarantine",
     "folder": "Junk"},
    {"name": "raw", "target": "body", "pattern": "RAW-MARKER",
     "add_header": "X-Raw-Hit: yes"},
    {"name": "decoded", "target": "body_text",
     "pattern": "decoded secret phrase", "action": "reject",
     "text": "decoded text"},
    {"name": "qp", "target": "body_text", "pattern": "softbroken phrase",
     "action": "reject", "text": "quoted-printable text"},
    {"name": "no-msgid", "target": "header:Message-ID", "pattern": ".",
     "negate": True, "add_header": "X-No-Message-ID: yes"},
    {"name": "spoof", "target": "header:X-Spam-Flag", "pattern": ".",
     "remove_header": "X-Spam-Flag"},
]


class Targets(harness.PetrelTestCase):

    @classmethod
    def setUpClass(cls):
        cls.dns = PtrZone()
        cls.addClassCleanup(cls.dns.stop)

    def setUp(self):
        self.s = SmtpServer(self, smtp={"filters": ["filter_regex"],
                                        "max_errors": 100},
                            extra_modules={
                                "filter_regex": {"rules": RULES},
                                "resolver": {"servers": [
                                    "127.0.0.1:%d" % self.dns.port]}})

    def send(self, message, rcpt="alice@example.test",
             sender="sender@example.org"):
        with self.s.ehlo_client() as c:
            return c.send_mail(sender, [rcpt], message)

    def last(self, user="alice@example.test"):
        return self.s.wait_messages(user, 1)[-1]

    def test_client_ip(self):
        c = FromClient(self.s.mx, "127.0.0.3")
        self.assertEqual((c.greeting.code, c.greeting.enhanced),
                         (554, "5.7.1"), c.greeting)
        self.assertIn("bad address", c.greeting.text)
        c.close()
        with FromClient(self.s.mx, "127.0.0.6") as c:
            self.assertEqual(c.greeting.code, 220)

    def test_client_hostname_from_ptr(self):
        c = FromClient(self.s.mx, "127.0.0.4")
        self.assertEqual(c.greeting.code, 554, c.greeting)
        self.assertIn("bad host", c.greeting.text)
        c.close()
        for source in ("127.0.0.5", "127.0.0.7"):
            with FromClient(self.s.mx, source) as c:
                self.assertEqual(c.greeting.code, 220, source)

    def test_helo_sender_recipient(self):
        with self.s.connect() as c:
            c.expect("EHLO BAD-HELO.example.org", 550, "5.7.2", "bad helo")
            c.ehlo()
            c.expect("MAIL FROM:<spam@example.org>", 450, "4.7.3",
                     "not now")
            c.expect("MAIL FROM:<ham@example.org>", 250)
            c.expect("RCPT TO:<carol@example.test>", 550, "5.7.1",
                     "carol takes no mail")
            c.expect("RCPT TO:<alice@example.test>", 250)
            self.assertEqual(c.data(make_message()).code, 250)

    def test_subject_rfc2047(self):
        for subject in ("=?UTF-8?B?%s?=" % base64.b64encode(
                            "Ünïcode spam".encode()).decode(),
                        "=?iso-8859-1?q?=DCn=EFcode?= =?utf-8?q?_spam?=",
                        "Re: =?ISO-8859-1?Q?=FCn=EFcode_SPAM?= today"):
            with self.subTest(subject=subject):
                r = self.send(make_message(subject=subject))
                self.assertEqual(r.code, 550, r)
                self.assertIn("subject", r.text)
        # Unknown charsets stay encoded: no match.
        r = self.send(make_message(
            subject="=?koi8-r?b?%s?=" % base64.b64encode(
                "Ünïcode spam".encode()).decode()))
        self.assertEqual(r.code, 250, r)

    def test_any_header_quarantine(self):
        msg = b"X-Mailer: BadMailer 1.0\r\n" + make_message()
        self.assertEqual(self.send(msg).code, 250)
        junk = os.path.join(self.s.maildir("alice@example.test"), ".Junk",
                            "new")
        harness.wait_until(lambda: os.path.isdir(junk) and
                           os.listdir(junk), 5, "a message in .Junk")

    def test_raw_body_and_negate(self):
        msg = (b"From: <a@example.org>\r\nSubject: raw\r\n\r\n"
               b"line with RAW-MARKER\r\n")
        self.assertEqual(self.send(msg).code, 250)
        stored = self.last()
        self.assertIn(b"\r\nX-Raw-Hit: yes\r\n", stored)
        # No Message-ID: the negated rule applied.
        self.assertIn(b"\r\nX-No-Message-ID: yes\r\n", stored)
        self.assertEqual(self.send(make_message(subject="has id")).code,
                         250)
        self.assertNotIn(b"X-No-Message-ID", self.last())

    def test_base64_text_part(self):
        text = "Hello,\r\nthis is the decoded secret phrase.\r\n"
        encoded = base64.encodebytes(text.encode()).replace(b"\n", b"\r\n")
        msg = (b"From: <a@example.org>\r\nSubject: mime\r\n"
               b"Message-ID: <b64@example.org>\r\n"
               b"MIME-Version: 1.0\r\n"
               b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
               b"preamble decoded secret phrase (not text)\r\n"
               b"--outer\r\n"
               b"Content-Type: application/octet-stream\r\n"
               b"Content-Transfer-Encoding: base64\r\n\r\n"
               + base64.encodebytes(b"decoded secret phrase in binary")
               .replace(b"\n", b"\r\n") +
               b"--outer\r\n"
               b"Content-Type: multipart/alternative; boundary=inner\r\n"
               b"\r\n--inner\r\n"
               b"Content-Type: text/plain; charset=utf-8\r\n"
               b"Content-Transfer-Encoding: base64\r\n\r\n"
               + encoded +
               b"--inner--\r\n--outer--\r\n")
        self.assertNotIn(b"decoded secret phrase.", msg.split(b"\r\n\r\n",
                                                              1)[1][60:])
        r = self.send(msg)
        self.assertEqual(r.code, 550, r)
        self.assertIn("decoded text", r.text)

    def test_binary_part_is_not_text(self):
        msg = (b"From: <a@example.org>\r\nSubject: mime\r\n"
               b"Message-ID: <bin@example.org>\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: multipart/mixed; boundary=b1\r\n\r\n"
               b"--b1\r\nContent-Type: application/octet-stream\r\n"
               b"Content-Transfer-Encoding: base64\r\n\r\n"
               + base64.encodebytes(b"decoded secret phrase in binary")
               .replace(b"\n", b"\r\n") + b"--b1--\r\n")
        self.assertEqual(self.send(msg).code, 250)

    def test_quoted_printable_part(self):
        msg = (b"From: <a@example.org>\r\nSubject: qp\r\n"
               b"Message-ID: <qp@example.org>\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: text/plain; charset=iso-8859-1\r\n"
               b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
               b"Caf=E9 and soft=\r\n"
               b"broken phrase=20\r\n")
        r = self.send(msg)
        self.assertEqual(r.code, 550, r)
        self.assertIn("quoted-printable text", r.text)

    def test_spoofed_header_removed(self):
        msg = b"X-Spam-Flag: NO (trust me)\r\n" + make_message()
        self.assertEqual(self.send(msg).code, 250)
        self.assertNotIn(b"X-Spam-Flag", self.last())


class Hostile(harness.PetrelTestCase):

    def server(self, rules, **regex):
        section = {"rules": rules}
        section.update(regex)
        return SmtpServer(self, smtp={"filters": ["filter_regex"],
                                      "max_text_line": 1048576},
                          extra_modules={"filter_regex": section})

    def test_catastrophic_backtracking_is_bounded(self):
        s = self.server([
            {"name": "evil-body", "target": "body", "pattern": "(a+)+$",
             "action": "reject"},
            {"name": "evil-subject", "target": "header:Subject",
             "pattern": "^(a|aa)+$", "action": "reject"},
            {"name": "evil-text", "target": "body_text",
             "pattern": "^(\\w+?)+$", "action": "reject"}])
        hostile = b"a" * 100000 + b"!"
        msg = (b"From: <a@example.org>\r\nSubject: " + b"a" * 5000 + b"!"
               + b"\r\n\r\n" + hostile + b"\r\n")
        t0 = time.monotonic()
        with s.ehlo_client() as c:
            r = c.send_mail("sender@example.org", ["alice@example.test"],
                            msg, timeout=30)
        elapsed = time.monotonic() - t0
        # A limit hit counts as no match: delivered, and quickly.
        self.assertEqual(r.code, 250, r)
        self.assertLess(elapsed, 5.0)
        for rule in ("evil-body", "evil-subject", "evil-text"):
            s.p.wait_log("rule %s " % rule)
        s.p.wait_log("PCRE2 match limit hit, counted as no match")

    def test_on_limit_tempfail(self):
        s = self.server([{"target": "body", "pattern": "(a+)+$",
                          "action": "reject"}], on_limit="tempfail")
        with s.ehlo_client() as c:
            r = c.send_mail("sender@example.org", ["alice@example.test"],
                            make_message(body=b"a" * 5000 + b"b\r\n"))
        self.assertEqual((r.code, r.enhanced), (451, "4.7.1"), r)

    def test_scan_time_limit(self):
        """A pattern that stays under the match limit at every start
        position, against many of them: the scan stops at its time
        limit, the rule is skipped, the mail goes through."""
        s = self.server([{"name": "slow", "target": "body",
                          "pattern": "(a+)+$", "action": "reject"}],
                        scan_time_limit="300ms", match_limit=100000)
        line = b"aaaaaaaaaaaaa " * 7000 + b"x"
        t0 = time.monotonic()
        with s.ehlo_client() as c:
            r = c.send_mail("sender@example.org", ["alice@example.test"],
                            make_message(body=(line + b"\r\n") * 20),
                            timeout=60)
        self.assertEqual(r.code, 250, r)
        self.assertLess(time.monotonic() - t0, 10)
        s.p.wait_log("scan stopped after scan_time_limit (300 ms)")

    def test_deep_nesting_and_many_headers(self):
        s = self.server([
            {"name": "deep", "target": "body_text", "pattern": "DEEP-TEXT",
             "action": "reject", "text": "deep"},
            {"name": "late", "target": "header:X-Late", "pattern": ".",
             "action": "reject", "text": "late"}])
        # 60 levels; the text sits at the bottom, beyond the cap of 20.
        parts = [b"From: <a@example.org>\r\nSubject: deep\r\n"
                 b"MIME-Version: 1.0\r\n"]
        for i in range(60):
            parts.append(b"Content-Type: multipart/mixed; boundary=b%d"
                         b"\r\n\r\n--b%d\r\n" % (i, i))
        parts.append(b"Content-Type: text/plain\r\n\r\nDEEP-TEXT\r\n")
        for i in reversed(range(60)):
            parts.append(b"--b%d--\r\n" % i)
        with s.ehlo_client() as c:
            r = c.send_mail("sender@example.org", ["alice@example.test"],
                            b"".join(parts))
            self.assertEqual(r.code, 250, r)
            # Shallow: found.
            shallow = (b"From: <a@example.org>\r\nMIME-Version: 1.0\r\n"
                       b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
                       b"--x\r\nContent-Type: message/rfc822\r\n\r\n"
                       b"Subject: inner\r\n"
                       b"Content-Type: text/plain\r\n\r\nDEEP-TEXT\r\n"
                       b"--x--\r\n")
            r = c.send_mail("sender@example.org", ["alice@example.test"],
                            shallow)
            self.assertEqual((r.code, r.text), (550, "5.7.1 deep"), r)
            # 20000 header fields: the ones past max_headers are not
            # read, and nothing breaks.
            many = b"".join(b"X-H%d: v\r\n" % i for i in range(20000))
            r = c.send_mail("sender@example.org", ["alice@example.test"],
                            many + b"X-Late: here\r\n\r\nbody\r\n",
                            timeout=60)
            self.assertEqual(r.code, 250, r)
            r = c.send_mail("sender@example.org", ["alice@example.test"],
                            b"X-Late: early\r\n" + many + b"\r\nbody\r\n",
                            timeout=60)
            self.assertEqual((r.code, r.text), (550, "5.7.1 late"), r)


class ConfigErrors(harness.PetrelTestCase):

    def check(self, rules, *phrases, **regex):
        s = SmtpServer(self, smtp={"filters": ["filter_regex"]},
                       start=False)
        section = {"rules": rules}
        section.update(regex)
        s.cfg["modules"]["filter_regex"] = section
        self.assertCheckFails(s.p.check(s.cfg), *phrases)

    def test_bad_pattern_names_rule_and_offset(self):
        self.check([{"target": "helo", "pattern": "ok"},
                    {"target": "helo", "pattern": "ok"},
                    {"target": "helo", "pattern": "ok"},
                    {"target": "body", "pattern": "abc(def"}],
                   "modules.filter_regex.rules[3].pattern: missing "
                   "closing parenthesis at offset 7")
        self.check([{"target": "body", "pattern": "a{2,1}"}],
                   "modules.filter_regex.rules[0].pattern:", "at offset")

    def test_other_errors(self):
        self.check([{"target": "subject", "pattern": "x"}],
                   "modules.filter_regex.rules[0].target", "unknown target")
        self.check([{"target": "header:", "pattern": "x"}],
                   "modules.filter_regex.rules[0].target")
        self.check([{"target": "body", "pattern": "x", "decode_2047": True}],
                   "modules.filter_regex.rules[0].decode_2047")
        self.check([{"target": "body", "pattern": "x",
                     "add_header": "no colon"}],
                   "modules.filter_regex.rules[0].add_header")
        self.check([{"target": "body", "pattern": "x", "action": "bounce"}],
                   "modules.filter_regex.rules[0].action")
        self.check([{"target": "body"}], "modules.filter_regex.rules[0]",
                   "pattern")

    def test_good_config(self):
        s = SmtpServer(self, smtp={"filters": ["filter_regex"]},
                       start=False)
        s.cfg["modules"]["filter_regex"] = {"rules": RULES}
        self.assertCheckOk(s.p.check(s.cfg))


if __name__ == "__main__":
    unittest.main()
