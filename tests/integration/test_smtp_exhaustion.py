# SPDX-License-Identifier: MIT
"""Resource exhaustion and parser abuse (SECURITY.md #6 and #8): a 64 KB
EHLO (Exim CVE-2019-16928), 1 MB lines in commands and data, 10,000
headers, deep MIME nesting, hundreds of connections at once, and BDAT
interrupted by a TLS shutdown followed by cleartext (Exim
CVE-2026-45185). The worker must answer, stay alive and keep its memory
bounded; these tests matter most under ASan."""

import socket
import ssl
import time
import unittest

import harness
from smtp_harness import SmtpClient, SmtpServer, make_message, split_stored


def rss_kib(pid):
    return int(harness.proc_status(pid, "VmRSS").split()[0])


class Exhaustion(harness.PetrelTestCase):

    def setUp(self):
        self.s = SmtpServer(self, smtp={"max_errors": 100,
                                        "max_message_size": "4M"},
                            listen_extra={"mx": {"max_per_ip": 1000}})
        self.worker = self.s.worker_pids()[0]

    def assertAlive(self):
        with self.s.ehlo_client() as c:
            c.expect("NOOP", 250, "2.0.0")
        self.assertEqual(self.s.worker_pids(), [self.worker])

    def test_64k_ehlo(self):
        with self.s.connect() as c:
            r = c.cmd(b"EHLO " + b"e" * 65536)
            self.assertEqual((r.code, r.enhanced), (500, "5.5.2"), r)
            c.expect("NOOP", 250, "2.0.0")
            r = c.cmd(b"EHLO " + b"e." * 40000 + b"x")
            self.assertEqual(r.code, 500, r)
            c.ehlo()
        self.assertAlive()

    def test_1mb_command_line(self):
        before = rss_kib(self.worker)
        with self.s.ehlo_client() as c:
            for _ in range(3):
                r = c.cmd(b"MAIL FROM:<" + b"a" * (1 << 20) + b"@x.org>",
                          timeout=30)
                self.assertEqual((r.code, r.enhanced), (500, "5.5.2"), r)
                c.expect("NOOP", 250, "2.0.0")
            # No line end at all for a long while: still bounded.
            c.send(b"NOOP " + b"n" * (2 << 20))
            c.send(b"\r\nNOOP\r\n")
            r = c.reply(timeout=30)
            self.assertEqual(r.code, 500, r)
            c.expect_reply(250, "2.0.0")
        self.assertLess(rss_kib(self.worker) - before, 64 * 1024)
        self.assertAlive()

    def test_1mb_text_line(self):
        before = rss_kib(self.worker)
        msg = b"Subject: long\r\n\r\n" + b"L" * (1 << 20) + b"\r\nend\r\n"
        with self.s.ehlo_client() as c:
            r = c.send_mail("a@example.org", ["alice@example.test"], msg,
                            timeout=60)
            self.assertEqual((r.code, r.enhanced), (500, "5.5.6"), r)
            c.expect("NOOP", 250, "2.0.0")
            # Also in a header.
            r = c.send_mail("a@example.org", ["alice@example.test"],
                            b"X-Long: " + b"h" * (1 << 20) + b"\r\n\r\nb\r\n",
                            timeout=60)
            self.assertEqual((r.code, r.enhanced), (500, "5.5.6"), r)
        self.assertEqual(self.s.count_all(), 0)
        self.assertLess(rss_kib(self.worker) - before, 64 * 1024)
        self.assertAlive()

    def test_10k_headers(self):
        head = b"".join(b"X-H%d: value %d\r\n" % (i, i)
                        for i in range(10000))
        msg = head + b"Subject: many\r\n\r\nbody\r\n"
        with self.s.ehlo_client() as c:
            r = c.send_mail("a@example.org", ["alice@example.test"], msg,
                            timeout=60)
            self.assertEqual(r.code, 250, r)
        stored = self.s.messages("alice@example.test")
        self.assertEqual(split_stored(stored[0])[3], msg)
        self.assertAlive()

    def test_10k_folded_header(self):
        msg = (b"Subject: folded\r\n" + b"\tcontinued line\r\n" * 10000
               + b"\r\nbody\r\n")
        with self.s.ehlo_client() as c:
            r = c.send_mail("a@example.org", ["alice@example.test"], msg,
                            timeout=60)
            self.assertEqual(r.code, 250, r)
        self.assertEqual(split_stored(
            self.s.messages("alice@example.test")[0])[3], msg)

    def test_deep_mime_nesting(self):
        depth = 2000
        parts = [b"Subject: nested\r\nMIME-Version: 1.0\r\n"
                 b"Content-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n"]
        for i in range(1, depth):
            parts.append(b"--b%d\r\nContent-Type: multipart/mixed; "
                         b"boundary=\"b%d\"\r\n\r\n" % (i - 1, i))
        parts.append(b"--b%d\r\nContent-Type: text/plain\r\n\r\ndeep\r\n"
                     % (depth - 1))
        for i in range(depth - 1, -1, -1):
            parts.append(b"--b%d--\r\n" % i)
        msg = b"".join(parts)
        with self.s.ehlo_client() as c:
            r = c.send_mail("a@example.org", ["alice@example.test"], msg,
                            timeout=60)
            self.assertEqual(r.code, 250, r)
        self.assertEqual(split_stored(
            self.s.messages("alice@example.test")[0])[3], msg)

    def test_many_connections(self):
        clients = []
        try:
            for _ in range(300):
                clients.append(SmtpClient(self.s.mx, timeout=10))
            for c in clients:
                c.send(b"EHLO many.example.org\r\n")
            for c in clients:
                r = c.reply(kind="EHLO", timeout=20)
                self.assertEqual(r.code, 250, r)
            # Half of them go away abruptly, in the middle of a command.
            for c in clients[::2]:
                c.send(b"MAIL FROM:<a@exa")
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                  b"\x01\x00\x00\x00\x00\x00\x00\x00")
                c.close()
            msg = make_message("many")
            for c in clients[1::2][:20]:
                r = c.send_mail("a@example.org", ["alice@example.test"],
                                msg)
                self.assertEqual(r.code, 250, r)
        finally:
            for c in clients:
                c.close()
        self.assertEqual(len(self.s.messages("alice@example.test")), 20)
        self.assertAlive()

    def test_max_recipients_default(self):
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            replies = c.pipeline(["RCPT TO:<alice+%d@example.test>" % i
                                  for i in range(150)])
            codes = [r.code for r in replies]
            self.assertEqual(codes, [250] * 100 + [452] * 50)
            r = c.data(make_message("hundred"))
            self.assertEqual(r.code, 250, r)
        # alice+N all deliver to alice, and collapse into one copy.
        self.assertEqual(len(self.s.messages("alice@example.test")), 1)

    def test_bdat_then_tls_close_then_cleartext(self):
        """Exim CVE-2026-45185: the connection is closed, never read as
        cleartext, after the TLS layer ends inside a BDAT chunk."""
        c = self.s.tls_client("mx")
        c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
        c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
        c.send(b"BDAT 1000 LAST\r\nSubject: cut\r\n\r\npart")
        time.sleep(0.2)
        try:
            raw = c.sock.unwrap()
        except (ssl.SSLError, OSError):
            raw = None
        if raw is not None:
            try:
                raw.sendall(b"QUIT\r\nNOOP\r\n")
                raw.settimeout(5)
                data = b""
                while True:
                    chunk = raw.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except (ConnectionError, socket.timeout, OSError):
                data = b""
            # No cleartext SMTP reply may come back.
            self.assertNotIn(b"221", data)
            self.assertNotIn(b"250", data)
            raw.close()
        c.close()
        self.assertEqual(self.s.count_all(), 0)
        self.assertAlive()


if __name__ == "__main__":
    unittest.main()
