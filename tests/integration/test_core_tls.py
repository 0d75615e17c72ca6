# SPDX-License-Identifier: MIT
"""TLS through the example module: implicit TLS, versions, SNI, STARTTLS
(and the injection attack against it), garbage handshakes, long lines."""

import os
import random
import re
import socket
import ssl
import unittest

import harness
from harness import LineClient, client_context


class Tls(harness.PetrelTestCase):
    """One server per test: a plain and an implicit-TLS listener, two
    certificates (a.example.test is the first, b.example.test by SNI)."""

    MAX_LINE = 64

    def setUp(self):
        self.cert_a, self.key_a = harness.make_cert(
            "a.example.test", ["a.example.test", "localhost"])
        self.cert_b, self.key_b = harness.make_cert(
            "b.example.test", ["b.example.test"])
        self.p = self.petrel()
        self.plain = harness.free_port()
        self.tls = harness.free_port()
        cfg = self.p.config(
            modules={"example": {
                "greeting": "tls test",
                "max_line": self.MAX_LINE,
                "listen": [
                    {"address": "127.0.0.1:%d" % self.plain},
                    {"address": "127.0.0.1:%d" % self.tls,
                     "tls": "implicit"}]}},
            tls={"certificates": [
                {"cert": self.cert_a, "key": self.key_a,
                 "names": ["a.example.test", "localhost"]},
                {"cert": self.cert_b, "key": self.key_b,
                 "names": ["b.example.test"]}]})
        self.p.write_config(cfg)
        self.p.start(wait_ports=[self.plain, self.tls],
                     wait_log="worker 0 started")

    def ctx(self, **kwargs):
        return client_context(cafile=self.cert_a, **kwargs)

    def tls_client(self, **kwargs):
        return LineClient(self.tls, tls=True, **kwargs)

    # -- implicit TLS

    def test_implicit_tls_verified(self):
        with self.tls_client(context=self.ctx(),
                             server_hostname="a.example.test") as c:
            self.assertEqual(c.greeting, "+OK tls test")
            self.assertEqual(c.cmd("ECHO secret"), "+OK secret")
            version, cipher = c.sock.version(), c.sock.cipher()[0]
            self.assertEqual(c.cmd("TLS"), "+OK %s %s" % (version, cipher))
            self.assertEqual(c.cmd("STARTTLS"), "-ERR already")
            self.assertEqual(c.cmd("ECHO still"), "+OK still")
            self.assertEqual(c.cmd("QUIT"), "+OK bye")

    def test_tls12_and_tls13(self):
        for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
                              (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
            with self.subTest(version=name):
                ctx = self.ctx(minimum=version, maximum=version)
                with self.tls_client(context=ctx) as c:
                    self.assertEqual(c.greeting, "+OK tls test")
                    self.assertEqual(c.sock.version(), name)
                    self.assertRegex(c.cmd("TLS"),
                                     r"^\+OK %s \S+$" % re.escape(name))

    def test_tls11_refused(self):
        try:
            ctx = client_context(minimum=ssl.TLSVersion.TLSv1_1,
                                 maximum=ssl.TLSVersion.TLSv1_1,
                                 ciphers="DEFAULT:@SECLEVEL=0")
        except (ValueError, ssl.SSLError) as e:
            self.skipTest("local OpenSSL cannot speak TLS 1.1: %s" % e)
        sock = socket.create_connection(("127.0.0.1", self.tls), timeout=5)
        try:
            tls = ctx.wrap_socket(sock, server_hostname="localhost")
        except ssl.SSLError as e:
            text = str(e).upper()
            if "NO_PROTOCOLS_AVAILABLE" in text or "NO CIPHERS" in text:
                self.skipTest("local OpenSSL cannot speak TLS 1.1: %s" % e)
            return  # refused by the server: good
        except (ConnectionError, OSError):
            return
        finally:
            sock.close()
        version = tls.version()
        tls.close()
        self.fail("TLS 1.1 handshake succeeded (%s)" % version)

    def test_openssl_s_client_shows_cert(self):
        result = harness.run(["openssl", "s_client", "-connect",
                              "127.0.0.1:%d" % self.tls,
                              "-servername", "a.example.test",
                              "-CAfile", self.cert_a, "-verify_return_error",
                              "-ign_eof"],
                             input="QUIT\r\n", timeout=20)
        out = result.stdout
        self.assertIn("a.example.test", out)
        pem = re.search(r"-----BEGIN CERTIFICATE-----.*?"
                        r"-----END CERTIFICATE-----", out, re.S)
        self.assertIsNotNone(pem, out + result.stderr)
        self.assertEqual(ssl.PEM_cert_to_DER_cert(pem.group(0)),
                         harness.cert_der(self.cert_a))
        self.assertRegex(out, r"Verify return code: 0 \(ok\)")
        self.assertIn("+OK tls test", out)
        self.assertIn("+OK bye", out)

    # -- SNI

    def served_cert(self, server_hostname):
        with self.tls_client(server_hostname=server_hostname) as c:
            self.assertEqual(c.greeting, "+OK tls test")
            return c.sock.getpeercert(binary_form=True)

    def test_sni_selects_certificate(self):
        self.assertEqual(self.served_cert("b.example.test"),
                         harness.cert_der(self.cert_b))
        self.assertEqual(self.served_cert("a.example.test"),
                         harness.cert_der(self.cert_a))
        self.assertEqual(self.served_cert("localhost"),
                         harness.cert_der(self.cert_a))

    def test_sni_verified_second_name(self):
        ctx = client_context(cafile=self.cert_b)
        with self.tls_client(context=ctx,
                             server_hostname="b.example.test") as c:
            self.assertEqual(c.cmd("ECHO b"), "+OK b")

    def test_unknown_name_gets_first_certificate(self):
        self.assertEqual(self.served_cert("unknown.example.test"),
                         harness.cert_der(self.cert_a))

    # -- STARTTLS

    def test_starttls(self):
        with LineClient(self.plain) as c:
            self.assertEqual(c.greeting, "+OK tls test")
            self.assertEqual(c.cmd("TLS"), "+OK none")
            c.send_line("STARTTLS")
            self.assertEqual(c.read_line_unbuffered(), "+OK begin TLS")
            c.starttls(self.ctx(), "localhost")
            self.assertEqual(c.cmd("TLS"), "+OK %s %s" % (
                c.sock.version(), c.sock.cipher()[0]))
            self.assertEqual(c.cmd("STARTTLS"), "-ERR already")
            self.assertEqual(c.cmd("ECHO over tls"), "+OK over tls")
            self.assertEqual(c.cmd("QUIT"), "+OK bye")

    def test_starttls_injection(self):
        """Bytes sent with STARTTLS in one write are discarded, never run
        after the handshake (CVE-2011-0411 family)."""
        with LineClient(self.plain) as c:
            c.send_raw(b"STARTTLS\r\nECHO injected\r\n")
            self.assertEqual(c.read_line_unbuffered(), "+OK begin TLS")
            c.starttls(self.ctx(), "localhost")
            c.send_line("ECHO after")
            self.assertEqual(c.read_line(), "+OK after")
            self.assertEqual(c.cmd("ECHO again"), "+OK again")

    def test_starttls_injection_split_lines(self):
        """The same with the injected command split over the handshake
        boundary in a single segment with a bare LF."""
        with LineClient(self.plain) as c:
            c.send_raw(b"STARTTLS\nECHO inj")
            self.assertEqual(c.read_line_unbuffered(), "+OK begin TLS")
            c.starttls(self.ctx(), "localhost")
            c.send_line("ECHO after")
            self.assertEqual(c.read_line(), "+OK after")

    # -- hostile input

    def worker_pid(self):
        with LineClient(self.plain) as c:
            reply = c.cmd("PID")
        self.assertRegex(reply, r"^\+OK \d+$")
        return int(reply.split()[1])

    def test_garbage_handshake(self):
        before = self.worker_pid()
        for size in (5, 512, 16384):
            with self.subTest(size=size):
                # Random, but never a TLS (0x14-0x17) or SSLv2 (high bit)
                # record header, which would make the server rightly wait
                # for more bytes.
                first = random.choice([b for b in range(0x80)
                                       if not 0x14 <= b <= 0x17])
                c = LineClient(self.tls, read_greeting=False)
                try:
                    c.send_raw(bytes([first]) + os.urandom(size - 1))
                    self.assertTrue(c.wait_closed(10),
                                    "connection not closed")
                finally:
                    c.close()
        # Plaintext on the TLS port is garbage too.
        c = LineClient(self.tls, read_greeting=False)
        try:
            c.send_raw(b"ECHO hello\r\n")
            self.assertTrue(c.wait_closed(10))
        finally:
            c.close()
        self.assertEqual(self.worker_pid(), before)
        self.assertNotIn("exited on signal", self.p.log_text())
        with self.tls_client(context=self.ctx()) as c:
            self.assertEqual(c.cmd("ECHO fine"), "+OK fine")

    def test_client_closes_mid_handshake(self):
        before = self.worker_pid()
        for _ in range(5):
            sock = socket.create_connection(("127.0.0.1", self.tls), 5)
            sock.close()
        with self.tls_client(context=self.ctx()) as c:
            self.assertEqual(c.cmd("ECHO fine"), "+OK fine")
        self.assertEqual(self.worker_pid(), before)

    def test_line_too_long(self):
        for client in (lambda: LineClient(self.plain),
                       lambda: self.tls_client(context=self.ctx())):
            with client() as c:
                c.send_line("ECHO " + "x" * (self.MAX_LINE * 4))
                self.assertEqual(c.read_line(), "-ERR line too long")
                self.assertEqual(c.cmd("ECHO next"), "+OK next")

    def test_line_far_too_long(self):
        with LineClient(self.plain) as c:
            c.send_line("ECHO " + "y" * 200000)
            self.assertEqual(c.read_line(10), "-ERR line too long")
            self.assertEqual(c.cmd("ECHO next"), "+OK next")

    def test_line_at_limit(self):
        # The limit counts the line without its CRLF, or with it; a line
        # well under it always fits.
        text = "z" * (self.MAX_LINE - 16)
        with LineClient(self.plain) as c:
            self.assertEqual(c.cmd("ECHO " + text), "+OK " + text)


if __name__ == "__main__":
    unittest.main()
