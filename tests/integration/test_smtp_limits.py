# SPDX-License-Identifier: MIT
"""Limits (issue 3 point 5): command and text line length, message size
(552 5.3.4), recipients per message (452 4.5.3), errors per session (421
4.7.0), command, data and session timeouts (421 4.4.2), and connections in
total and per client address."""

import socket
import time
import unittest

import harness
from smtp_harness import SmtpClient, SmtpServer, make_message

MAX_SIZE = 64 * 1024


def connect_from(port, source):
    """A raw socket to 127.0.0.1:port from the source address, or None if
    that address cannot be bound here."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(5)
    try:
        sock.bind((source, 0))
    except OSError:
        sock.close()
        return None
    sock.connect(("127.0.0.1", port))
    return sock


def greeting_or_close(sock, timeout=3):
    """The first bytes the server sends, b"" when it closes first."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionError:
        pass
    except socket.timeout:
        raise AssertionError("neither a greeting nor a close (got %r)"
                             % data)
    return data


class Lines(harness.PetrelTestCase):

    def setUp(self):
        self.s = SmtpServer(self, smtp={"max_errors": 100,
                                        "max_message_size": MAX_SIZE})

    def test_command_line_length(self):
        with self.s.ehlo_client() as c:
            # 512 octets with the CRLF: accepted as a line.
            rcpt = "RCPT TO:<%s@example.test>" % ("a" * 64)
            line = "NOOP " + "x" * (510 - 5)
            self.assertEqual(len(line) + 2, 512)
            r = c.cmd(line)
            self.assertNotEqual(r.text, "5.5.2 Line too long", r)
            r = c.cmd(line + "y")
            self.assertEqual((r.code, r.enhanced), (500, "5.5.2"), r)
            self.assertIn("too long", r.text)
            # The long line was skipped as a whole.
            c.expect("NOOP", 250, "2.0.0")
            r = c.cmd("MAIL FROM:<a@example.org> " + "X" * 600)
            self.assertEqual((r.code, r.enhanced), (500, "5.5.2"), r)
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            c.expect(rcpt, 550, "5.1.1")

    def test_text_line_length(self):
        ok = b"Subject: lines\r\n\r\n" + b"a" * 998 + b"\r\n"
        long = b"Subject: lines\r\n\r\n" + b"a" * 999 + b"\r\n"
        with self.s.ehlo_client() as c:
            r = c.send_mail("a@example.org", ["alice@example.test"], ok)
            self.assertEqual(r.code, 250, r)
            r = c.send_mail("a@example.org", ["alice@example.test"], long)
            self.assertEqual((r.code, r.enhanced), (500, "5.5.6"), r)
            c.expect("NOOP", 250, "2.0.0")
            # A dot-stuffed line counts as it is on the wire.
            r = c.send_mail("a@example.org", ["alice@example.test"],
                            b"Subject: x\r\n\r\n." + b"b" * 997 + b"\r\n")
            self.assertIn(r.code, (250, 500), r)
        msgs = self.s.messages("alice@example.test")
        self.assertIn(len(msgs), (1, 2))
        self.assertTrue(msgs[0].endswith(ok))
        self.s.p.wait_log("refused: line too long")

    def test_message_size(self):
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org> SIZE=%d" % (MAX_SIZE + 1),
                     552, "5.3.4")
            r = c.send_mail("a@example.org", ["alice@example.test"],
                            make_message("over", size=MAX_SIZE + 3000))
            self.assertEqual((r.code, r.enhanced), (552, "5.3.4"), r)
            c.expect("NOOP", 250, "2.0.0")
            msg = make_message("under", size=MAX_SIZE - 3000)
            r = c.send_mail("a@example.org", ["alice@example.test"], msg)
            self.assertEqual(r.code, 250, r)
        self.assertEqual(len(self.s.messages("alice@example.test")), 1)
        self.s.p.wait_log("refused: too big")

    def test_size_overrun_aborts_early(self):
        """Past twice the limit the server answers 552 and closes without
        reading the rest (SECURITY.md #8)."""
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org> SIZE=1000", 250, "2.1.0")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            c.expect("DATA", 354)
            chunk = (b"z" * 78 + b"\r\n") * 800
            sent = 0
            start = time.monotonic()
            closed = False
            try:
                # Up to 50 times the limit; the server must stop us first.
                while sent < 50 * MAX_SIZE:
                    c.sock.sendall(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
            c.sock.settimeout(5)
            r = c.expect_reply(552, "5.3.4", kind="DATA-END")
            self.assertTrue(closed or c.closed())
            self.assertLess(time.monotonic() - start, 20)
        self.assertEqual(self.s.count_all(), 0)
        self.assertEqual(self.s.all_files(), [])


class Recipients(harness.PetrelTestCase):

    def test_max_recipients(self):
        s = SmtpServer(self, smtp={"max_recipients": 3})
        msg = make_message("rcpts")
        with s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            for user in ("alice", "bob", "carol"):
                c.expect("RCPT TO:<%s@example.test>" % user, 250, "2.1.5")
            c.expect("RCPT TO:<dave@example.test>", 452, "4.5.3")
            c.expect("RCPT TO:<postmaster@example.test>", 452, "4.5.3")
            self.assertEqual(c.data(msg).code, 250)
            # The count starts again with the next transaction.
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            c.expect("RCPT TO:<dave@example.test>", 250, "2.1.5")
        for user in ("alice", "bob", "carol"):
            self.assertEqual(len(s.messages(user + "@example.test")), 1)
        self.assertEqual(s.messages("dave@example.test"), [])


class Errors(harness.PetrelTestCase):

    def test_max_errors(self):
        s = SmtpServer(self, smtp={"max_errors": 3})
        with s.connect() as c:
            c.expect("FROB", 500, "5.5.2")
            c.expect("MAIL FROM:<a@example.org>", 503, "5.5.1")
            c.ehlo()
            c.expect("RCPT TO:<a@example.org>", 503, "5.5.1")
            c.expect("NOOP", 421, "4.7.0")
            self.assertTrue(c.closed())
        s.p.wait_log("too many errors (3), closing")

    def test_errors_count_rcpt_refusals(self):
        s = SmtpServer(self, smtp={"max_errors": 4})
        with s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            for i in range(4):
                c.expect("RCPT TO:<nobody%d@example.test>" % i, 550,
                         "5.1.1")
            c.expect("RCPT TO:<alice@example.test>", 421, "4.7.0")
            self.assertTrue(c.closed())
        self.assertEqual(s.count_all(), 0)


class Timeouts(harness.PetrelTestCase):

    def setUp(self):
        self.s = SmtpServer(self, smtp={"command_timeout": "1s",
                                        "data_timeout": "2s",
                                        "session_timeout": "10s"})

    def test_command_timeout(self):
        with self.s.connect() as c:
            start = time.monotonic()
            c.expect_reply(421, "4.4.2", timeout=10)
            took = time.monotonic() - start
            self.assertTrue(c.closed())
            self.assertGreater(took, 0.8)
            self.assertLess(took, 5)
        self.s.p.wait_log("timeout in command phase")

    def test_command_timeout_after_partial_line(self):
        with self.s.ehlo_client() as c:
            c.send(b"MAIL FROM:<a@exa")
            c.expect_reply(421, "4.4.2", timeout=10)
            self.assertTrue(c.closed())

    def test_data_timeout(self):
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            c.expect("DATA", 354)
            c.send(b"Subject: stalled\r\n\r\nsome text\r\n")
            start = time.monotonic()
            c.expect_reply(421, "4.4.2", timeout=10)
            took = time.monotonic() - start
            self.assertTrue(c.closed())
            self.assertGreater(took, 1.5)
            self.assertLess(took, 6)
        self.s.p.wait_log("timeout in message data")
        self.assertEqual(self.s.count_all(), 0)

    def test_session_timeout(self):
        with self.s.ehlo_client() as c:
            start = time.monotonic()
            while time.monotonic() - start < 20:
                r = c.cmd("NOOP", timeout=10)
                if r.code != 250:
                    break
                time.sleep(0.4)
            self.assertEqual((r.code, r.enhanced), (421, "4.4.2"), r)
            self.assertTrue(c.closed())
            self.assertGreater(time.monotonic() - start, 9)
            self.assertLess(time.monotonic() - start, 14)

    def test_slowloris_command(self):
        """One byte a second never completes a command: the session
        ends within the session timeout."""
        with self.s.ehlo_client() as c:
            start = time.monotonic()
            closed = False
            for b in (b"NOOP " + b"x" * 200):
                try:
                    c.sock.sendall(bytes([b]))
                except OSError:
                    closed = True
                    break
                c.sock.settimeout(0.5)
                try:
                    data = c.sock.recv(4096)
                except socket.timeout:
                    continue
                except OSError:
                    closed = True
                    break
                if not data:
                    closed = True
                    break
                c.buf += data
                if b"\n" in c.buf:
                    r = c.reply()
                    self.assertEqual((r.code, r.enhanced), (421, "4.4.2"))
                    closed = c.closed()
                    break
                if time.monotonic() - start > 15:
                    break
            self.assertTrue(closed, "still open after %.0f s"
                            % (time.monotonic() - start))
            self.assertLess(time.monotonic() - start, 13)

    def test_slowloris_data(self):
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            c.expect("DATA", 354)
            start = time.monotonic()
            closed = False
            while time.monotonic() - start < 15:
                try:
                    c.sock.sendall(b"x")
                except OSError:
                    closed = True
                    break
                c.sock.settimeout(0.7)
                try:
                    data = c.sock.recv(4096)
                except socket.timeout:
                    continue
                except OSError:
                    closed = True
                    break
                if not data:
                    closed = True
                    break
                c.buf += data
                if b"\n" in c.buf:
                    r = c.reply()
                    self.assertEqual((r.code, r.enhanced), (421, "4.4.2"))
                    closed = c.closed()
                    break
            self.assertTrue(closed)
            self.assertLess(time.monotonic() - start, 13)
        self.assertEqual(self.s.count_all(), 0)


class Connections(harness.PetrelTestCase):

    def test_max_per_ip(self):
        s = SmtpServer(self, roles=("mx",),
                       listen_extra={"mx": {"max_per_ip": 3}})
        clients = [s.connect() for _ in range(3)]
        try:
            with socket.create_connection(("127.0.0.1", s.mx),
                                          timeout=5) as extra:
                self.assertEqual(greeting_or_close(extra), b"")
            # Another address is still welcome.
            other = connect_from(s.mx, "127.0.0.2")
            if other is not None:
                with other:
                    self.assertTrue(greeting_or_close(other)
                                    .startswith(b"220 "))
            # Closing one makes room again.
            clients.pop().quit()
            c = harness.wait_until(lambda: _try_connect(s.mx), 5,
                                   "a free slot")
            clients.append(c)
        finally:
            for c in clients:
                c.close()
        s.p.wait_log("connection limit reached")

    def test_max_connections(self):
        s = SmtpServer(self, roles=("mx",),
                       listen_extra={"mx": {"max_connections": 2}})
        # The harness's readiness probe may still hold a slot until the
        # worker has seen it close: retry instead of failing on it.
        clients = [harness.wait_until(lambda: _try_connect(s.mx), 5,
                                      "a free slot") for _ in range(2)]
        try:
            other = connect_from(s.mx, "127.0.0.3")
            if other is None:
                other = socket.create_connection(("127.0.0.1", s.mx), 5)
            with other:
                self.assertEqual(greeting_or_close(other), b"")
            for c in clients:
                c.expect("NOOP", 250, "2.0.0")
        finally:
            for c in clients:
                c.close()


def _try_connect(port):
    try:
        c = SmtpClient(port)
    except AssertionError:
        return None
    return c


if __name__ == "__main__":
    unittest.main()
