# SPDX-License-Identifier: MIT
"""POP3 conversations (RFC 1939, 2449, 2595, 5034) against both storage
backends: every command in every state, deletion semantics, locking, bad
input and the STLS injection attack."""

import os
import smtplib
import socket
import ssl
import time
import unittest

import harness
from harness import client_context
from pop3_harness import Pop3Server, USERS, message, unstuff


class Protocol:
    """The conversations; a subclass per backend runs them."""

    BACKEND = None

    def setUp(self):
        self.s = Pop3Server(self, self.BACKEND)

    def fill(self, n=3, user="alice@example.test"):
        msgs = [message("message %d" % i,
                        ("body %d\r\n.dot line\r\n" % i).encode() * i)
                for i in range(1, n + 1)]
        for m in msgs:
            self.s.deliver(user, m)
        return msgs

    # -- AUTHORIZATION before TLS

    def test_plaintext_port_requires_tls(self):
        with self.s.connect() as c:
            self.assertEqual(c.greeting, "+OK Petrel POP3 server ready")
            capa = c.capa()
            self.assertIn("STLS", capa)
            self.assertNotIn("USER", capa)
            self.assertNotIn("SASL PLAIN", capa)
            for line in ("USER alice@example.test", "PASS secret",
                         "AUTH PLAIN", "AUTH PLAIN AGFsaWNlAHNlY3JldA=="):
                self.assertEqual(c.cmd(line),
                                 "-ERR [AUTH] TLS required: use STLS")
            self.assertEqual(c.cmd("QUIT"), "+OK bye")
            self.assertTrue(c.wait_closed())

    def test_stls_then_login(self):
        self.fill(2)
        with self.s.connect() as c:
            self.assertEqual(c.cmd("STLS"), "+OK begin TLS negotiation")
            c.starttls(client_context(cafile=self.s.cert),
                       server_hostname="pop3.example.test")
            capa = c.capa()
            self.assertNotIn("STLS", capa)
            self.assertIn("USER", capa)
            self.assertIn("SASL PLAIN", capa)
            self.assertEqual(c.cmd("STLS"), "-ERR TLS is already active")
            c.expect_ok(c.cmd("USER alice@example.test"))
            reply = c.cmd("PASS secret")
            self.assertRegex(reply, r"^\+OK maildrop has 2 messages "
                                    r"\(\d+ octets\)$")
            self.assertEqual(c.cmd("STLS"),
                             "-ERR command not valid in this state")
            self.assertEqual(c.cmd("QUIT"), "+OK bye")

    def test_stls_injection(self):
        """SECURITY.md 2: USER sent with STLS in one packet must not run
        inside TLS: the first reply after the handshake belongs to the
        first command sent through TLS."""
        with self.s.connect() as c:
            c.send_raw(b"STLS\r\nUSER alice@example.test\r\n")
            self.assertEqual(c.read_line_unbuffered(),
                             "+OK begin TLS negotiation")
            c.starttls()
            # Had USER run, PASS would be answered by the auth service.
            self.assertEqual(c.cmd("PASS secret"), "-ERR send USER first")
            self.assertEqual(c.cmd("CAPA"), "+OK capability list follows")
            c.multi()

    def test_stls_injection_after_user(self):
        """USER given in clear is forgotten after STLS."""
        with self.s.connect() as c:
            # USER is refused in clear anyway; remembered state must not
            # leak through the upgrade either way.
            c.cmd("USER alice@example.test")
            c.send_raw(b"STLS\r\nPASS secret\r\n")
            self.assertEqual(c.read_line_unbuffered(),
                             "+OK begin TLS negotiation")
            c.starttls()
            self.assertEqual(c.cmd("PASS secret"), "-ERR send USER first")

    def test_implicit_tls(self):
        self.fill(1)
        with self.s.connect(tls=True) as c:
            self.assertEqual(c.greeting, "+OK Petrel POP3 server ready")
            capa = c.capa()
            self.assertNotIn("STLS", capa)
            for cap in ("TOP", "UIDL", "USER", "SASL PLAIN", "RESP-CODES",
                        "AUTH-RESP-CODE", "PIPELINING",
                        "IMPLEMENTATION Petrel"):
                self.assertIn(cap, capa)
            self.assertEqual(c.cmd("STLS"), "-ERR TLS is already active")
            self.assertRegex(c.login("alice@example.test", "secret"),
                             r"^\+OK maildrop has 1 messages")
            capa = c.capa()
            self.assertNotIn("USER", capa)
            self.assertIn("TOP", capa)

    # -- TRANSACTION

    def test_transaction_commands(self):
        msgs = self.fill(3)
        sizes = [len(m) for m in msgs]
        with self.s.login() as c:
            self.assertEqual(c.cmd("STAT"), "+OK 3 %d" % sum(sizes))
            self.assertEqual(c.cmd("LIST"), "+OK 3 messages (%d octets)"
                             % sum(sizes))
            self.assertEqual(c.multi_text(),
                             ["%d %d" % (i + 1, sz)
                              for i, sz in enumerate(sizes)])
            self.assertEqual(c.cmd("LIST 2"), "+OK 2 %d" % sizes[1])
            c.expect_ok(c.cmd("UIDL"))
            uidl = [l.split(" ") for l in c.multi_text()]
            self.assertEqual([n for n, _ in uidl], ["1", "2", "3"])
            uids = [u for _, u in uidl]
            self.assertEqual(len(set(uids)), 3)
            for u in uids:
                self.assertRegex(u, r"^[\x21-\x7e]{1,70}$")
            self.assertEqual(c.cmd("UIDL 3"), "+OK 3 " + uids[2])
            for i, m in enumerate(msgs):
                status, body = c.retr_raw("RETR %d" % (i + 1))
                self.assertEqual(status, "+OK %d octets" % len(m))
                self.assertEqual(unstuff(body), m)
            self.assertEqual(c.cmd("NOOP"), "+OK")
            self.assertEqual(c.cmd("QUIT"), "+OK bye")
        # UIDs are stable across sessions.
        with self.s.login_retry() as c:
            c.expect_ok(c.cmd("UIDL"))
            self.assertEqual([l.split(" ")[1] for l in c.multi_text()],
                             uids)

    def test_top(self):
        self.s.deliver("alice@example.test",
                       b"Subject: t\r\nX-A: 1\r\n\r\nl1\r\n.l2\r\nl3\r\n")
        with self.s.login() as c:
            status, body = c.retr_raw("TOP 1 0")
            self.assertEqual(status, "+OK top of message follows")
            self.assertEqual(body, b"Subject: t\r\nX-A: 1\r\n\r\n")
            status, body = c.retr_raw("TOP 1 2")
            self.assertEqual(body,
                             b"Subject: t\r\nX-A: 1\r\n\r\nl1\r\n..l2\r\n")
            status, body = c.retr_raw("TOP 1 4294967295")
            self.assertEqual(
                body, b"Subject: t\r\nX-A: 1\r\n\r\nl1\r\n..l2\r\nl3\r\n")

    def test_dele_rset_quit(self):
        msgs = self.fill(3)
        with self.s.login() as c:
            self.assertEqual(c.cmd("DELE 1"), "+OK message 1 deleted")
            self.assertEqual(c.cmd("DELE 1"),
                             "-ERR message 1 already deleted")
            self.assertEqual(c.cmd("RETR 1"),
                             "-ERR message 1 already deleted")
            self.assertEqual(c.cmd("TOP 1 0"),
                             "-ERR message 1 already deleted")
            self.assertEqual(c.cmd("LIST 1"),
                             "-ERR message 1 already deleted")
            self.assertEqual(c.cmd("UIDL 1"),
                             "-ERR message 1 already deleted")
            rest = len(msgs[1]) + len(msgs[2])
            self.assertEqual(c.cmd("STAT"), "+OK 2 %d" % rest)
            c.expect_ok(c.cmd("LIST"))
            self.assertEqual([l.split()[0] for l in c.multi_text()],
                             ["2", "3"])
            # Message numbers do not shift after DELE.
            status, body = c.retr_raw("RETR 3")
            self.assertEqual(unstuff(body), msgs[2])
            self.assertRegex(c.cmd("RSET"), r"^\+OK maildrop has 3 ")
            self.assertEqual(c.cmd("STAT"), "+OK 3 %d"
                             % sum(len(m) for m in msgs))
            c.expect_ok(c.cmd("DELE 2"))
            self.assertEqual(c.cmd("QUIT"), "+OK bye, 1 messages deleted")
            self.assertTrue(c.wait_closed())
        with self.s.login_retry() as c:
            self.assertEqual(c.cmd("STAT"), "+OK 2 %d"
                             % (len(msgs[0]) + len(msgs[2])))
            status, body = c.retr_raw("RETR 2")
            self.assertEqual(unstuff(body), msgs[2])

    def test_dele_rset_keeps_mail(self):
        self.fill(2)
        with self.s.login() as c:
            c.expect_ok(c.cmd("DELE 1"))
            c.expect_ok(c.cmd("DELE 2"))
            c.expect_ok(c.cmd("RSET"))
            self.assertEqual(c.cmd("QUIT"), "+OK bye")
        with self.s.login_retry() as c:
            self.assertRegex(c.cmd("STAT"), r"^\+OK 2 ")

    def test_dropped_connection_deletes_nothing(self):
        self.fill(3)
        c = self.s.login()
        for i in (1, 2, 3):
            c.expect_ok(c.cmd("DELE %d" % i))
        # Gone without QUIT: RFC 1939 section 6, no UPDATE state.
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
        with self.s.login_retry() as c:
            self.assertRegex(c.cmd("STAT"), r"^\+OK 3 ")
        self.s.p.wait_log("connection lost in TRANSACTION state; "
                          "nothing deleted")

    def test_delivered_during_session_appears_next_time(self):
        self.fill(1)
        with self.s.login() as c:
            self.s.deliver("alice@example.test", message("late"))
            self.assertRegex(c.cmd("STAT"), r"^\+OK 1 ")
            c.expect_ok(c.cmd("QUIT"))
        with self.s.login_retry() as c:
            self.assertRegex(c.cmd("STAT"), r"^\+OK 2 ")

    def test_lock_in_use(self):
        self.fill(1)
        first = self.s.login()
        with self.s.connect(tls=True) as second:
            second.expect_ok(second.cmd("USER alice@example.test"))
            self.assertEqual(second.cmd("PASS secret"),
                             "-ERR [IN-USE] mailbox is locked by another "
                             "session")
            # Still in AUTHORIZATION: STAT is refused, login may retry.
            self.assertEqual(second.cmd("STAT"),
                             "-ERR command not valid in this state")
            # Another user's mailbox is not affected.
            with self.s.login("bob@example.test") as bob:
                bob.expect_ok(bob.cmd("STAT"))
            first.expect_ok(first.cmd("QUIT"))
            first.close()
            deadline = time.monotonic() + 5
            while True:
                reply = second.login("alice@example.test", "secret")
                if not reply.startswith("-ERR [IN-USE]"):
                    break
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            second.expect_ok(reply)

    # -- Bad input

    def test_bad_message_numbers(self):
        self.fill(2)
        with self.s.login() as c:
            for line, reply in (
                    ("RETR 0", "-ERR no such message"),
                    ("RETR 3", "-ERR no such message"),
                    ("RETR 4294967296", "-ERR no such message"),
                    ("RETR 99999999999999999999",
                     "-ERR syntax error: invalid message number"),
                    ("RETR -1", "-ERR syntax error: invalid message number"),
                    ("RETR +1", "-ERR syntax error: invalid message number"),
                    ("RETR x", "-ERR syntax error: invalid message number"),
                    ("RETR 0x1",
                     "-ERR syntax error: invalid message number"),
                    ("RETR", "-ERR syntax error: one message number "
                             "expected"),
                    ("RETR 1 2", "-ERR syntax error: one message number "
                                 "expected"),
                    ("TOP 1 -1", "-ERR syntax error: invalid line count"),
                    ("TOP 1", "-ERR syntax error: TOP msg n"),
                    ("TOP 1 x", "-ERR syntax error: invalid line count"),
                    ("TOP 0 1", "-ERR no such message"),
                    ("DELE 0", "-ERR no such message"),
                    ("LIST 0", "-ERR no such message"),
                    ("UIDL 9", "-ERR no such message"),
                    ("STAT 1", "-ERR syntax error: no arguments expected"),
                    ("NOOP x", "-ERR syntax error: no arguments expected")):
                with self.subTest(line=line):
                    self.assertEqual(c.cmd(line), reply)
            self.assertEqual(c.cmd("STAT"), c.cmd("STAT"))
            self.assertEqual(c.cmd("NOOP"), "+OK")

    def test_commands_in_wrong_state(self):
        self.fill(1)
        with self.s.connect(tls=True) as c:
            for line in ("STAT", "LIST", "LIST 1", "UIDL", "RETR 1",
                         "DELE 1", "TOP 1 1", "NOOP", "RSET"):
                with self.subTest(line=line):
                    self.assertEqual(c.cmd(line),
                                     "-ERR command not valid in this state")
            self.assertEqual(c.cmd("PASS secret"), "-ERR send USER first")
            # APOP is not offered (CVE-2007-1558).
            self.assertEqual(c.cmd("APOP alice@example.test "
                                   "c4c9334bac560ecc979e58001b3e22fb"),
                             "-ERR unknown command")
            c.expect_ok(c.login("alice@example.test", "secret"))
            for line in ("USER bob@example.test", "PASS x", "AUTH PLAIN",
                         "STLS"):
                with self.subTest(line=line):
                    self.assertEqual(c.cmd(line),
                                     "-ERR command not valid in this state")
            self.assertEqual(c.cmd("STAT"), "+OK 1 %d"
                             % len(message("message 1",
                                           b"body 1\r\n.dot line\r\n")))

    def test_garbage(self):
        with self.s.connect(tls=True) as c:
            for raw, reply in (
                    (b"HELO x\r\n", "-ERR unknown command"),
                    (b"STATSTAT\r\n", "-ERR unknown command"),
                    (b"\r\n", "-ERR unknown command"),
                    (b" USER x\r\n", "-ERR unknown command"),
                    (b"\x01\x02\x03\r\n", "-ERR syntax error"),
                    (b"\xff\xfe\r\n", "-ERR unknown command"),
                    (b"USER a\x00b\r\n", "-ERR NUL byte in command"),
                    (b"\x00\x00\x00\r\n", "-ERR NUL byte in command"),
                    (b"USER a\rPASS b\r\n", "-ERR syntax error"),
                    (b"USER \x1b[31m\r\n", "-ERR syntax error")):
                with self.subTest(raw=raw):
                    c.send_raw(raw)
                    self.assertEqual(c.read_line(), reply)
            # Still usable afterwards.
            c.expect_ok(c.login("alice@example.test", "secret"))

    def test_long_lines(self):
        with self.s.connect(tls=True) as c:
            # 255 octets with CRLF is the limit (RFC 2449 section 4).
            name = "u" * (255 - len("USER \r\n"))
            c.expect_ok(c.cmd("USER " + name))
            self.assertEqual(c.cmd("USER " + name + "u"),
                             "-ERR line too long")
            # 100 KB in one line: one error, nothing executed from it.
            c.send_raw(b"USER " + b"x" * (100 * 1024) + b"\r\nNOOP\r\n")
            self.assertEqual(c.read_line(), "-ERR line too long")
            self.assertEqual(c.read_line(),
                             "-ERR command not valid in this state")
            # 1 MB without a line end, then a line end.
            c.send_raw(b"Q" * (1024 * 1024))
            c.send_raw(b"\r\nCAPA\r\n")
            self.assertEqual(c.read_line(timeout=20), "-ERR line too long")
            self.assertEqual(c.read_line(), "+OK capability list follows")
            c.multi()
            c.expect_ok(c.login("alice@example.test", "secret"))

    # -- Pipelining (RFC 2449 section 6.6)

    def test_pipelining(self):
        msgs = self.fill(2)
        with self.s.connect(tls=True) as c:
            c.send_raw(b"CAPA\r\nUSER alice@example.test\r\nPASS secret\r\n"
                       b"STAT\r\nRETR 1\r\nLIST\r\nRETR 2\r\nDELE 1\r\n"
                       b"UIDL 2\r\nNOOP\r\nRSET\r\nQUIT\r\n")
            self.assertEqual(c.read_line(), "+OK capability list follows")
            c.multi()
            c.expect_ok(c.read_line())
            self.assertRegex(c.read_line(), r"^\+OK maildrop has 2 ")
            self.assertRegex(c.read_line(), r"^\+OK 2 \d+$")
            self.assertEqual(c.read_line(), "+OK %d octets" % len(msgs[0]))
            self.assertEqual(b"\r\n".join(c.multi()) + b"\r\n", msgs[0])
            c.expect_ok(c.read_line())
            self.assertEqual(len(c.multi()), 2)
            self.assertEqual(c.read_line(), "+OK %d octets" % len(msgs[1]))
            self.assertEqual(b"\r\n".join(c.multi()) + b"\r\n", msgs[1])
            self.assertEqual(c.read_line(), "+OK message 1 deleted")
            self.assertRegex(c.read_line(), r"^\+OK 2 \S+$")
            self.assertEqual(c.read_line(), "+OK")
            self.assertRegex(c.read_line(), r"^\+OK maildrop has 2 ")
            self.assertEqual(c.read_line(), "+OK bye")
            self.assertTrue(c.wait_closed())

    # -- Big messages

    def test_10mb_message_byte_exact(self):
        big = big_message(10 * 1024 * 1024)
        self.s.deliver("alice@example.test", big)
        with self.s.login() as c:
            self.assertEqual(c.cmd("LIST 1"), "+OK 1 %d" % len(big))
            status, body = c.retr_raw("RETR 1", timeout=120)
            self.assertEqual(status, "+OK %d octets" % len(big))
            self.assertEqual(len(unstuff(body)), len(big))
            self.assertTrue(unstuff(body) == big)
            # Byte-stuffed on the wire.
            self.assertIn(b"\r\n..0123", body)
            self.assertEqual(c.cmd("NOOP"), "+OK")


def big_message(size):
    """About @size octets of CRLF lines, some starting with a dot."""
    line = b"0123456789" * 7 + b"\r\n"
    parts, total, i = [b"Subject: big\r\n\r\n"], 0, 0
    while total < size:
        part = (b"." + line) if i % 97 == 0 else line
        parts.append(part)
        total += len(part)
        i += 1
    return b"".join(parts)


class SmtpRoundTrip:
    """Issue 5: a 10 MB message byte-exact after SMTP in, POP3 out."""

    BACKEND = None

    def test_10mb_through_smtp(self):
        smtp_port = harness.free_port()
        s = Pop3Server(self, self.BACKEND, extra_modules={"smtp": {
            "listen": [{"address": "127.0.0.1:%d" % smtp_port}],
            "local_domains": ["example.test"]}})
        s.p.wait_port(smtp_port)
        big = big_message(10 * 1024 * 1024)
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=120) as smtp:
            refused = smtp.sendmail("sender@example.org",
                                    ["alice@example.test"], big)
            self.assertEqual(refused, {})
        with s.login() as c:
            reply = c.cmd("LIST 1")
            size = int(reply.split()[2])
            status, body = c.retr_raw("RETR 1", timeout=120)
            self.assertEqual(status, "+OK %d octets" % size)
            got = unstuff(body)
            self.assertEqual(len(got), size)
            # The server adds trace headers in front; the rest is the
            # message as sent, every octet.
            self.assertTrue(got.endswith(big))
            prefix = got[:-len(big)]
            self.assertTrue(prefix.endswith(b"\r\n"))
            for line in prefix.split(b"\r\n")[:-1]:
                self.assertRegex(line, rb"^([A-Za-z-]+:|[ \t])")


class MaildirSmtpRoundTrip(SmtpRoundTrip, harness.PetrelTestCase):
    BACKEND = "maildir"


class SqliteSmtpRoundTrip(SmtpRoundTrip, harness.PetrelTestCase):
    BACKEND = "sqlite"


class MaildirProtocol(Protocol, harness.PetrelTestCase):
    BACKEND = "maildir"

    def test_bare_lf_file_is_sent_with_crlf(self):
        """A Maildir written by another MDA (bare LF) goes out in CRLF,
        byte-stuffed."""
        raw = b"Subject: lf\n\nline\n.dot\n..two\n\nend"
        self.s.deliver("alice@example.test", message("seed"))
        new = os.path.join(self.s.maildir("alice@example.test"), "new")
        path = os.path.join(new, "1700000000.M1P1.test")
        with open(path, "wb") as f:
            f.write(raw)
        self.s.p.chown_run_user(path)
        with self.s.login() as c:
            c.expect_ok(c.cmd("LIST"))
            listing = c.multi_text()
            self.assertEqual(len(listing), 2)
            n = [l.split()[0] for l in listing
                 if l.split()[1] == str(len(raw))][0]
            status, body = c.retr_raw("RETR " + n)
            self.assertEqual(body, b"Subject: lf\r\n\r\nline\r\n..dot\r\n"
                                   b"...two\r\n\r\nend\r\n")


class SqliteProtocol(Protocol, harness.PetrelTestCase):
    BACKEND = "sqlite"


class NoCertificates(harness.PetrelTestCase):
    """Without certificates STLS is neither offered nor accepted:
    "+OK begin TLS negotiation" followed by a dropped connection would
    leave the client guessing."""

    def test_stls_not_offered(self):
        s = Pop3Server(self, certificates=False)
        with s.connect() as c:
            self.assertNotIn("STLS", c.capa())
            self.assertEqual(c.cmd("STLS"), "-ERR TLS is not available")
            # Still talking, and still no login without TLS.
            self.assertEqual(c.cmd("USER alice@example.test"),
                             "-ERR [AUTH] TLS required: use STLS")
            self.assertEqual(c.cmd("QUIT"), "+OK bye")


if __name__ == "__main__":
    unittest.main()
