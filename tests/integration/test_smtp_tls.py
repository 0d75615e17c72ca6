# SPDX-License-Identifier: MIT
"""STARTTLS (RFC 3207) and implicit TLS (RFC 8314, submissions): the
handshake, the state reset, the Received header's TLS clause, the
command injection attack (CVE-2011-0411), a listener without
certificates, and the swaks and curl clients over TLS."""

import smtplib
import socket
import ssl
import time
import unittest

import harness
from harness import client_context
from smtp_harness import (HOSTNAME, SmtpServer, make_message,
                          split_stored, swaks, curl)


class Tls(harness.PetrelTestCase):

    def setUp(self):
        self.s = SmtpServer(self, smtp={"max_errors": 50})

    def received(self, user="alice@example.test"):
        msgs = self.s.messages(user)
        self.assertEqual(len(msgs), 1)
        return split_stored(msgs[0])

    def test_starttls_delivery(self):
        msg = make_message("starttls")
        c = self.s.tls_client("mx")
        version, cipher = c.sock.version(), c.sock.cipher()[0]
        c.expect("STARTTLS", 503, "5.5.1")
        r = c.send_mail("a@example.org", ["alice@example.test"], msg)
        self.assertEqual(r.code, 250, r)
        c.quit()
        _, _, received, rest = self.received()
        self.assertEqual(rest, msg)
        self.assertIn(b" with ESMTPS id ", received)
        self.assertIn(("\r\n\t(using %s with cipher %s)\r\n"
                       % (version, cipher)).encode(), received)
        self.s.p.wait_log("STARTTLS %s %s" % (version, cipher))
        self.s.p.wait_log("tls=%s" % version)

    def test_starttls_tls12(self):
        c = self.s.connect("mx")
        c.ehlo()
        c.expect("STARTTLS", 220, "2.0.0", text="Ready to start TLS")
        ctx = client_context(cafile=self.s.cert,
                             minimum=ssl.TLSVersion.TLSv1_2,
                             maximum=ssl.TLSVersion.TLSv1_2)
        c.handshake(ctx, server_hostname=HOSTNAME)
        self.assertEqual(c.sock.version(), "TLSv1.2")
        c.ehlo()
        r = c.send_mail("a@example.org", ["alice@example.test"],
                        make_message("tls12"))
        self.assertEqual(r.code, 250, r)
        c.close()
        _, _, received, _ = self.received()
        self.assertRegex(received, rb"\(using TLSv1\.2 with cipher "
                                   rb"[A-Z0-9-]+\)")

    def test_tls11_refused(self):
        try:
            ctx = client_context(minimum=ssl.TLSVersion.TLSv1_1,
                                 maximum=ssl.TLSVersion.TLSv1_1)
            ctx.set_ciphers("ALL:@SECLEVEL=0")
        except (ValueError, ssl.SSLError):
            self.skipTest("this OpenSSL cannot offer TLS 1.1")
        c = self.s.connect("mx")
        c.ehlo()
        c.expect("STARTTLS", 220, "2.0.0")
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            c.handshake(ctx)
            c.cmd("EHLO x")
        c.close()
        # The server lives on.
        with self.s.connect("mx") as c2:
            c2.expect("NOOP", 250, "2.0.0")

    def test_starttls_arguments_and_order(self):
        with self.s.connect("mx") as c:
            # Before EHLO: RFC 3207 needs EHLO first.
            r = c.cmd("STARTTLS")
            self.assertIn(r.code, (220, 503), r)
            if r.code == 220:
                c.handshake()
                c.ehlo()
                return
            c.ehlo()
            c.expect("STARTTLS now", 501, "5.5.4")
            c.starttls()
            c.ehlo()

    def test_state_reset_after_starttls(self):
        """RFC 3207 4.2: the EHLO, the transaction are forgotten."""
        c = self.s.connect("mx")
        c.ehlo("before.example.org")
        c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
        c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
        c.starttls()
        c.expect("MAIL FROM:<a@example.org>", 503, "5.5.1")
        c.ehlo("after.example.org")
        c.expect("RCPT TO:<alice@example.test>", 503, "5.5.1")
        c.expect("DATA", 503, "5.5.1")
        r = c.send_mail("a@example.org", ["alice@example.test"],
                        make_message("reset"))
        self.assertEqual(r.code, 250, r)
        c.close()
        _, _, received, _ = self.received()
        self.assertTrue(received.startswith(b"Received: from "
                                            b"after.example.org "))

    def test_auth_state_reset_after_starttls(self):
        """AUTH in clear (allowed here) is forgotten after STARTTLS."""
        s = SmtpServer(self, smtp={"auth_plaintext": True})
        c = s.connect("submission")
        r = c.expect("EHLO client.example.org", 250)
        self.assertIn("AUTH PLAIN LOGIN", r.lines)
        r = c.auth_plain("alice@example.test", s.users["alice@example.test"])
        self.assertEqual(r.code, 235, r)
        c.starttls()
        c.ehlo()
        c.expect("MAIL FROM:<alice@example.test>", 530, "5.7.0")
        c.close()

    # -- CVE-2011-0411 and friends

    def injection(self, injected, role="mx"):
        c = self.s.connect(role)
        c.ehlo()
        c.send(b"STARTTLS\r\n" + injected)
        line = c.read_line_unbuffered()
        self.assertEqual(line, "220 2.0.0 Ready to start TLS")
        c.handshake()
        # Nothing may come unasked after the handshake.
        c.sock.settimeout(0.5)
        try:
            extra = c.sock.recv(4096)
        except (socket.timeout, ssl.SSLWantReadError):
            extra = b""
        except (ssl.SSLError, OSError) as e:
            self.fail("TLS failed after injection: %s" % e)
        self.assertEqual(extra, b"", "reply to injected bytes arrived")
        return c

    def test_starttls_injection_rset(self):
        c = self.injection(b"RSET\r\n")
        # Had RSET run, its 250 would come before HELP's 214.
        c.expect("HELP", 214, "2.0.0")
        c.expect("NOOP", 250, "2.0.0")
        c.close()

    def test_starttls_injection_transaction(self):
        c = self.injection(b"EHLO evil.example.org\r\n"
                           b"MAIL FROM:<evil@example.org>\r\n"
                           b"RCPT TO:<alice@example.test>\r\n"
                           b"DATA\r\nSubject: injected\r\n\r\nx\r\n.\r\n")
        c.expect("HELP", 214, "2.0.0")
        # No EHLO happened inside TLS: MAIL is out of sequence.
        c.expect("MAIL FROM:<a@example.org>", 503, "5.5.1")
        c.close()
        time.sleep(0.3)
        self.assertEqual(self.s.count_all(), 0)

    def test_starttls_injection_submission_auth(self):
        token = "AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZSBzZWNyZXQ="
        c = self.injection(("AUTH PLAIN %s\r\n" % token).encode(),
                           role="submission")
        c.ehlo()
        c.expect("MAIL FROM:<alice@example.test>", 530, "5.7.0")
        c.close()

    def test_starttls_injection_in_pieces(self):
        """The injected bytes arrive just after STARTTLS, in a second
        segment, before the client could have seen the 220."""
        c = self.s.connect("mx")
        c.ehlo()
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.send(b"STARTTLS\r\n")
        c.send(b"NOOP\r\n")
        self.assertEqual(c.read_line_unbuffered(),
                         "220 2.0.0 Ready to start TLS")
        # The NOOP is either discarded or breaks the handshake; it is
        # never answered.
        try:
            c.handshake()
            c.sock.settimeout(0.5)
            try:
                extra = c.sock.recv(4096)
            except (socket.timeout, ssl.SSLWantReadError):
                extra = b""
            self.assertEqual(extra, b"")
            c.expect("HELP", 214, "2.0.0")
        except (ssl.SSLError, ConnectionError):
            pass
        c.close()

    # -- implicit TLS

    def test_submissions_greeting_after_handshake(self):
        with self.s.connect("submissions") as c:
            self.assertEqual(c.sock.version()[:6], "TLSv1.")
            r = c.expect("EHLO client.example.org", 250)
            self.assertNotIn("STARTTLS", r.lines)
            self.assertIn("AUTH PLAIN LOGIN", r.lines)
            c.expect("STARTTLS", 503, "5.5.1")
            c.expect("MAIL FROM:<alice@example.test>", 530, "5.7.0")
            r = c.auth_plain("alice@example.test",
                             self.s.users["alice@example.test"])
            self.assertEqual(r.code, 235, r)
            r = c.send_mail("alice@example.test", ["bob@example.test"],
                            make_message("submissions"))
            self.assertEqual(r.code, 250, r)
        _, _, received, _ = self.received("bob@example.test")
        self.assertIn(b" with ESMTPSA id ", received)
        self.assertIn(b"\r\n\t(using TLSv1.3 with cipher ", received)

    def test_submissions_plaintext_client(self):
        """A client speaking plain SMTP to the TLS port gets no
        greeting and no command is run."""
        with socket.create_connection(("127.0.0.1", self.s.subs),
                                      timeout=5) as sock:
            sock.sendall(b"EHLO x\r\nMAIL FROM:<a@example.org>\r\n")
            sock.settimeout(5)
            data = b""
            try:
                while True:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except (socket.timeout, ConnectionError):
                pass
            self.assertNotIn(b"220", data)
            self.assertNotIn(b"250", data)
        with self.s.connect("submissions") as c:
            c.expect("NOOP", 250, "2.0.0")

    def test_smtplib_starttls_and_ssl(self):
        msg = make_message("smtplib tls")
        with smtplib.SMTP("127.0.0.1", self.s.sub, timeout=30) as c:
            c.ehlo("client.example.org")
            self.assertTrue(c.has_extn("starttls"))
            self.assertFalse(c.has_extn("auth"))
            c.starttls(context=self.s.ctx(check_hostname=False))
            c.ehlo("client.example.org")
            self.assertIn("PLAIN", c.esmtp_features["auth"].split())
            c.login("alice@example.test", self.s.users["alice@example.test"])
            c.sendmail("alice@example.test", ["bob@example.test"], msg)
        with smtplib.SMTP_SSL("127.0.0.1", self.s.subs, timeout=30,
                              context=self.s.ctx(False)) as c:
            c.ehlo("client.example.org")
            c.login("bob@example.test", self.s.users["bob@example.test"])
            c.sendmail("bob@example.test", ["alice@example.test"], msg)
        self.assertEqual(self.received("bob@example.test")[3], msg)
        self.assertEqual(self.received("alice@example.test")[3], msg)

    def test_swaks_tls(self):
        args = ["--from", "alice@example.test", "--to", "bob@example.test",
                "--header", "Subject: swaks tls", "--body", "via swaks\n",
                "--auth", "PLAIN", "--auth-user", "alice@example.test",
                "--auth-password", self.s.users["alice@example.test"]]
        result = swaks(["--server", "127.0.0.1:%d" % self.s.sub, "--tls"]
                       + args)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        result = swaks(["--server", "127.0.0.1:%d" % self.s.subs,
                        "--tls-on-connect"] + args[:-6] +
                       ["--auth", "LOGIN", "--auth-user",
                        "alice@example.test", "--auth-password",
                        self.s.users["alice@example.test"]])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        msgs = self.s.messages("bob@example.test")
        self.assertEqual(len(msgs), 2)
        for m in msgs:
            _, _, received, rest = split_stored(m)
            self.assertIn(b" with ESMTPSA id ", received)
            self.assertIn(b"\r\n\r\nvia swaks\r\n", rest)

    def test_curl_smtps_and_starttls(self):
        msg = make_message("curl tls")
        user = "alice@example.test:" + self.s.users["alice@example.test"]
        result = curl(["smtps://127.0.0.1:%d" % self.s.subs,
                       "--cacert", self.s.cert, "--resolve",
                       "%s:%d:127.0.0.1" % (HOSTNAME, self.s.subs),
                       "--user", user,
                       "--mail-from", "alice@example.test",
                       "--mail-rcpt", "bob@example.test",
                       "--upload-file", "-"], data=msg)
        if result.returncode != 0:
            # --resolve did not apply to the IP URL: use -k instead.
            result = curl(["smtps://127.0.0.1:%d" % self.s.subs, "-k",
                           "--user", user,
                           "--mail-from", "alice@example.test",
                           "--mail-rcpt", "bob@example.test",
                           "--upload-file", "-"], data=msg)
        self.assertEqual(result.returncode, 0, result.stderr)
        result = curl(["smtp://%s:%d" % (HOSTNAME, self.s.sub),
                       "--resolve", "%s:%d:127.0.0.1" % (HOSTNAME,
                                                         self.s.sub),
                       "--ssl-reqd", "--cacert", self.s.cert,
                       "--user", user,
                       "--mail-from", "alice@example.test",
                       "--mail-rcpt", "carol@example.test",
                       "--upload-file", "-"], data=msg)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.received("bob@example.test")[3], msg)
        self.assertEqual(self.received("carol@example.test")[3], msg)
        # Without TLS curl cannot log in on submission.
        result = curl(["smtp://127.0.0.1:%d" % self.s.sub,
                       "--user", user, "--login-options", "AUTH=PLAIN",
                       "--mail-from", "alice@example.test",
                       "--mail-rcpt", "bob@example.test",
                       "--upload-file", "-"], data=msg)
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(len(self.s.messages("bob@example.test")), 1)


class NoCertificates(harness.PetrelTestCase):
    """Without certificates STARTTLS is neither offered nor accepted:
    answering 220 and then dropping the client would be worse."""

    def test_starttls_without_certificates(self):
        s = SmtpServer(self, tls=False, roles=("mx",))
        c = s.connect("mx")
        self.assertNotIn("STARTTLS", c.ehlo())
        c.expect("STARTTLS", 502, "5.5.1")
        self.assertFalse(c.closed())
        # Plain mail still works.
        r = c.send_mail("a@example.org", ["alice@example.test"],
                        make_message("no tls"))
        self.assertEqual(r.code, 250, r)
        c.close()


if __name__ == "__main__":
    unittest.main()
