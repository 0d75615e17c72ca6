# SPDX-License-Identifier: MIT
"""POP3 configuration, limits and failure paths: trusted networks, failed
logins and their throttling, SASL PLAIN edge cases, storage and auth
failures (response codes), timeouts, connection caps, long listings and
memory use while streaming."""

import base64
import os
import signal
import socket
import time
import unittest

import harness
from harness import LineClient
from pop3_harness import (Pop3Server, USERS, message, test_module,
                          unstuff)


def b64(text):
    return base64.b64encode(text.encode()).decode()


class TrustedNetwork(harness.PetrelTestCase):

    def test_plaintext_login_from_trusted_network(self):
        s = Pop3Server(self, pop3={
            "plaintext_auth_networks": ["10.0.0.0/8", "127.0.0.0/8"]})
        s.deliver("alice@example.test", message("one"))
        with s.connect() as c:
            capa = c.capa()
            self.assertIn("STLS", capa)
            self.assertIn("USER", capa)
            self.assertIn("SASL PLAIN", capa)
            self.assertRegex(c.login("alice@example.test", "secret"),
                             r"^\+OK maildrop has 1 messages")

    def test_untrusted_network_still_refused(self):
        s = Pop3Server(self, pop3={
            "plaintext_auth_networks": ["10.0.0.0/8", "::1"]})
        with s.connect() as c:
            self.assertNotIn("USER", c.capa())
            self.assertEqual(c.cmd("USER alice@example.test"),
                             "-ERR [AUTH] TLS required: use STLS")

    def test_pipelined_quit_then_eof(self):
        """Commands and EOF in one go: all of them run, QUIT included,
        and the deletion happens."""
        s = Pop3Server(self, pop3={
            "plaintext_auth_networks": ["127.0.0.1"]})
        s.deliver("alice@example.test", message("one"))
        s.deliver("alice@example.test", message("two"))
        with s.connect() as c:
            c.send_raw(b"USER alice@example.test\r\nPASS secret\r\n"
                       b"DELE 1\r\nQUIT\r\n")
            c.sock.shutdown(socket.SHUT_WR)
            c.expect_ok(c.read_line())
            c.expect_ok(c.read_line())
            c.expect_ok(c.read_line())
            self.assertEqual(c.read_line(), "+OK bye, 1 messages deleted")
        with s.login_retry() as c:
            self.assertRegex(c.cmd("STAT"), r"^\+OK 1 ")

    def test_eof_without_quit_deletes_nothing(self):
        s = Pop3Server(self, pop3={
            "plaintext_auth_networks": ["127.0.0.1"]})
        s.deliver("alice@example.test", message("one"))
        with s.connect() as c:
            c.send_raw(b"USER alice@example.test\r\nPASS secret\r\n"
                       b"DELE 1\r\n")
            c.sock.shutdown(socket.SHUT_WR)
            for _ in range(3):
                c.expect_ok(c.read_line())
            self.assertTrue(c.wait_closed())
        with s.login_retry() as c:
            self.assertRegex(c.cmd("STAT"), r"^\+OK 1 ")


class FailedLogins(harness.PetrelTestCase):
    """auth_failure_delay 50ms, doubling up to 400ms, 3 per connection."""

    def setUp(self):
        self.s = Pop3Server(self)

    def timed(self, c, line):
        start = time.monotonic()
        reply = c.cmd(line)
        return reply, time.monotonic() - start

    def test_same_reply_for_unknown_user_and_bad_password(self):
        with self.s.connect(tls=True) as c:
            c.expect_ok(c.cmd("USER nobody@example.test"))
            r1, t1 = self.timed(c, "PASS secret")
            c.expect_ok(c.cmd("USER alice@example.test"))
            r2, t2 = self.timed(c, "PASS wrong")
            self.assertEqual(r1, "-ERR [AUTH] invalid user name or password")
            self.assertEqual(r1, r2)
            self.assertGreaterEqual(t1, 0.045)
            self.assertGreaterEqual(t2, 0.095)
        log = self.s.p.log_text()
        self.assertIn("authentication failed: user=nobody@example.test "
                      "method=USER failures=1", log)
        self.assertIn("authentication failed: user=alice@example.test "
                      "method=USER failures=2", log)
        self.assertNotIn("wrong", log)
        self.assertNotIn("secret", log)

    def test_delay_grows_then_disconnect_and_throttle_per_ip(self):
        with self.s.connect(tls=True) as c:
            delays = []
            for _ in range(3):
                c.expect_ok(c.cmd("USER alice@example.test"))
                reply, t = self.timed(c, "PASS wrong")
                self.assertEqual(reply,
                                 "-ERR [AUTH] invalid user name or "
                                 "password")
                delays.append(t)
            self.assertGreaterEqual(delays[0], 0.045)
            self.assertGreaterEqual(delays[1], 0.095)
            self.assertGreaterEqual(delays[2], 0.195)
            self.assertTrue(c.wait_closed())
        # A new connection from the same address starts where the last
        # one stopped: 4 failures -> 400 ms (the cap).
        with self.s.connect(tls=True) as c:
            c.expect_ok(c.cmd("USER alice@example.test"))
            reply, t = self.timed(c, "PASS wrong")
            self.assertTrue(reply.startswith("-ERR [AUTH]"))
            self.assertGreaterEqual(t, 0.39)
            # Even the right password waits while the address is hot.
            c.expect_ok(c.cmd("USER alice@example.test"))
            reply, t = self.timed(c, "PASS secret")
            c.expect_ok(reply)
            self.assertGreaterEqual(t, 0.39)

    def test_auth_plain(self):
        with self.s.connect(tls=True) as c:
            self.assertEqual(c.cmd("AUTH"), "+OK SASL mechanisms follow")
            self.assertEqual(c.multi_text(), ["PLAIN"])
            self.assertEqual(c.cmd("AUTH LOGIN"),
                             "-ERR unsupported authentication mechanism")
            self.assertEqual(c.cmd("AUTH CRAM-MD5"),
                             "-ERR unsupported authentication mechanism")
            # "*" cancels (RFC 5034 section 4).
            self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
            self.assertEqual(c.cmd("*"), "-ERR authentication cancelled")
            # Bad base64, in both places.
            self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
            self.assertEqual(c.cmd("!!!!"), "-ERR malformed SASL response")
            self.assertEqual(c.cmd("AUTH PLAIN AGFsaWN"),
                             "-ERR malformed SASL response")
            self.assertEqual(c.cmd("AUTH PLAIN Zh=="),
                             "-ERR malformed SASL response")
            refused = ("-ERR [AUTH] malformed PLAIN response or "
                       "authorization identity not allowed")
            # Empty response, missing parts.
            self.assertEqual(c.cmd("AUTH PLAIN ="), refused)
            self.assertEqual(c.cmd("AUTH PLAIN " + b64("alice")), refused)
            # maddy CVE-2023-27582: authzid other than the user.
            self.assertEqual(c.cmd("AUTH PLAIN " + b64(
                "bob@example.test\0alice@example.test\0secret")), refused)
            # A 12 KB response is refused cleanly.
            self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
            self.assertEqual(c.cmd("A" * 12288), "-ERR line too long")
            # None of these counted as a failed password.
            self.assertEqual(c.cmd("AUTH PLAIN " + b64(
                "\0alice@example.test\0wrong")),
                "-ERR [AUTH] invalid user name or password")
            # Continuation, with authzid equal to the user.
            self.assertEqual(c.cmd("AUTH plain"), "+ ")
            reply = c.cmd(b64("alice@example.test\0alice@example.test"
                              "\0secret"))
            self.assertRegex(reply, r"^\+OK maildrop has 0 messages")
        self.assertIn("login user=alice@example.test method=PLAIN",
                      self.s.p.log_text())

    def test_auth_plain_initial_response_and_spaces(self):
        with self.s.connect(tls=True) as c:
            reply = c.cmd("AUTH PLAIN " + b64(
                "\0bob@example.test\0" + USERS["bob@example.test"]))
            c.expect_ok(reply)
        with self.s.connect(tls=True) as c:
            c.expect_ok(c.cmd("USER bob@example.test"))
            c.expect_ok(c.cmd("PASS " + USERS["bob@example.test"]))


class AuthService(harness.PetrelTestCase):

    def test_auth_tempfail_and_canonical_name(self):
        users = ["%s:%s" % kv for kv in USERS.items()]
        users.append("dave@example.test:davepw:alice@example.test")
        s = Pop3Server(self, auth="fake",
                       fake_auth={"users": users,
                                  "tempfail": ["carol@example.test"]})
        s.deliver("alice@example.test", message("for alice"))
        with s.connect(tls=True) as c:
            self.assertEqual(c.login("carol@example.test", "carol-pw"),
                             "-ERR [SYS/TEMP] authentication is not "
                             "available now; try again later")
            # Login name dave, mailbox alice (the canonical user).
            self.assertRegex(c.login("dave@example.test", "davepw"),
                             r"^\+OK maildrop has 1 messages")
        # Temporary failures are not counted against the address.
        self.assertNotIn("authentication failed", s.p.log_text())


class StorageFailures(harness.PetrelTestCase):
    """The fake storage backend injects failures through marker files."""

    def setUp(self):
        self.s = Pop3Server(self, backend="fake")
        self.box = self.s.fake_dir("alice@example.test")

    def marker(self, name, present=True):
        path = os.path.join(self.box, name)
        if present:
            open(path, "w").close()
        elif os.path.exists(path):
            os.unlink(path)

    def test_open_failures(self):
        with self.s.connect(tls=True) as c:
            self.marker(".tempfail_open")
            self.assertEqual(c.login("alice@example.test", "secret"),
                             "-ERR [SYS/TEMP] mailbox is not available "
                             "now; try again later")
            self.marker(".tempfail_open", False)
            self.marker(".permfail_open")
            self.assertEqual(c.login("alice@example.test", "secret"),
                             "-ERR [SYS/PERM] mailbox is not available")
            self.marker(".permfail_open", False)
            self.assertRegex(c.login("alice@example.test", "secret"),
                             r"^\+OK maildrop has 0 messages")

    def test_read_failure_keeps_session(self):
        m = message("one")
        self.s.deliver("alice@example.test", m)
        with self.s.login() as c:
            self.marker(".tempfail_read")
            self.assertEqual(c.cmd("RETR 1"),
                             "-ERR [SYS/TEMP] message is not available "
                             "now; try again later")
            self.assertEqual(c.cmd("TOP 1 0"),
                             "-ERR [SYS/TEMP] message is not available "
                             "now; try again later")
            self.marker(".tempfail_read", False)
            self.marker(".permfail_read")
            self.assertEqual(c.cmd("RETR 1"),
                             "-ERR [SYS/PERM] message is not available")
            self.marker(".permfail_read", False)
            self.assertEqual(c.cmd("NOOP"), "+OK")
            status, body = c.retr_raw("RETR 1")
            self.assertEqual(unstuff(body), m)

    def test_expunge_failure(self):
        self.s.deliver("alice@example.test", message("one"))
        self.marker(".tempfail_expunge")
        with self.s.login() as c:
            c.expect_ok(c.cmd("DELE 1"))
            self.assertEqual(c.cmd("QUIT"),
                             "-ERR [SYS/TEMP] deleting messages failed; "
                             "some may remain")
            self.assertTrue(c.wait_closed())
        self.marker(".tempfail_expunge", False)
        with self.s.login_retry() as c:
            self.assertRegex(c.cmd("STAT"), r"^\+OK 1 ")

    def test_empty_and_unterminated_messages(self):
        for name, data in (("a-empty", b""), ("b-noeol", b"X: 1\n\n.end"),
                           ("c-dot", b".")):
            path = os.path.join(self.box, name)
            with open(path, "wb") as f:
                f.write(data)
            self.s.p.chown_run_user(path)
        with self.s.login() as c:
            self.assertEqual(c.retr_raw("RETR 1"), ("+OK 0 octets", b""))
            self.assertEqual(c.retr_raw("TOP 1 5"),
                             ("+OK top of message follows", b""))
            self.assertEqual(c.retr_raw("RETR 2"),
                             ("+OK 10 octets", b"X: 1\r\n\r\n..end\r\n"))
            self.assertEqual(c.retr_raw("TOP 2 0"),
                             ("+OK top of message follows",
                              b"X: 1\r\n\r\n"))
            self.assertEqual(c.retr_raw("RETR 3"), ("+OK 1 octets",
                                                    b"..\r\n"))
            self.assertEqual(c.cmd("NOOP"), "+OK")

    def test_invalid_uids_refuse_uidl(self):
        self.s.deliver("alice@example.test", message("one"))
        self.marker(".bad_uids")
        with self.s.login() as c:
            self.assertEqual(c.cmd("UIDL"),
                             "-ERR [SYS/PERM] unique ids are not available")
            self.assertEqual(c.cmd("UIDL 1"),
                             "-ERR [SYS/PERM] unique ids are not available")
            c.expect_ok(c.cmd("LIST"))
            self.assertEqual(len(c.multi()), 1)
        self.assertIn("storage gave invalid unique ids",
                      self.s.p.log_text())


class Limits(harness.PetrelTestCase):

    def test_idle_timeout(self):
        s = Pop3Server(self, pop3={"idle_timeout": "1s"})
        s.deliver("alice@example.test", message("one"))
        with s.connect(tls=True) as c:
            self.assertEqual(c.read_line(timeout=5),
                             "-ERR autologout: idle for too long")
            self.assertTrue(c.wait_closed())
        # Autologout in TRANSACTION deletes nothing (RFC 1939 section 3).
        with s.login() as c:
            c.expect_ok(c.cmd("DELE 1"))
            self.assertEqual(c.read_line(timeout=5),
                             "-ERR autologout: idle for too long")
            self.assertTrue(c.wait_closed())
        with s.login_retry() as c:
            self.assertRegex(c.cmd("STAT"), r"^\+OK 1 ")

    def test_max_per_ip(self):
        s = Pop3Server(self, pop3={"max_per_ip": 2})
        first = s.connect(tls=True)
        second = s.connect(tls=True)
        try:
            third = LineClient(s.tls, read_greeting=False)
            self.assertTrue(third.wait_closed())
            third.close()
            # The plain listener has its own count.
            with s.connect() as other:
                self.assertTrue(other.greeting.startswith("+OK"))
        finally:
            first.close()
            second.close()

    def test_max_line(self):
        s = Pop3Server(self, pop3={"max_line": 64})
        with s.connect(tls=True) as c:
            name = "x" * (64 - len("USER \r\n"))
            c.expect_ok(c.cmd("USER " + name))
            self.assertEqual(c.cmd("USER " + name + "x"),
                             "-ERR line too long")

    def test_long_listing_with_small_buffer(self):
        """3000 messages through a 16 KB output queue: LIST and UIDL
        resume after DRAINED, in order, complete."""
        s = Pop3Server(self, backend="fake", pop3={"write_buffer": "16k"})
        box = s.fake_dir("alice@example.test")
        n = 3000
        for i in range(n):
            path = os.path.join(box, "m%05d" % i)
            with open(path, "wb") as f:
                f.write(b"Subject: %d\r\n\r\n%s\r\n" % (i, b"x" * i))
            s.p.chown_run_user(path)
        with s.login() as c:
            self.assertEqual(c.cmd("LIST"), "+OK %d messages (%d octets)"
                             % (n, sum(len(b"Subject: %d\r\n\r\n" % i)
                                       + i + 2 for i in range(n))))
            lines = c.multi_text()
            self.assertEqual(len(lines), n)
            self.assertEqual(lines[-1], "%d %d" % (
                n, len(b"Subject: %d\r\n\r\n" % (n - 1)) + n - 1 + 2))
            c.expect_ok(c.cmd("UIDL"))
            lines = c.multi_text()
            self.assertEqual(lines, ["%d m%05d" % (i + 1, i)
                                     for i in range(n)])
            status, body = c.retr_raw("RETR %d" % n)
            self.assertEqual(body, b"Subject: %d\r\n\r\n%s\r\n"
                             % (n - 1, b"x" * (n - 1)))

    def test_streaming_memory_stays_small(self):
        """A client that stops reading in the middle of a 48 MB RETR:
        the worker holds the output queue and one chunk, not the
        message."""
        s = Pop3Server(self, backend="fake")
        box = s.fake_dir("alice@example.test")
        line = b"y" * 78 + b"\r\n"
        big = b"Subject: big\r\n\r\n" + line * (48 * 1024 * 1024 // 80)
        path = os.path.join(box, "big")
        with open(path, "wb") as f:
            f.write(big)
        s.p.chown_run_user(path)
        workers = s.p.wait_children(1)
        pid = workers[0]

        def rss_kb():
            return int(harness.proc_status(pid, "VmRSS").split()[0])

        with s.login() as c:
            c.expect_ok(c.cmd("STAT"))
            before = rss_kb()
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            c.send_line("RETR 1")
            time.sleep(1.0)
            during = rss_kb()
            # Now read it all and check it.
            data = bytearray(c.buf)
            c.sock.settimeout(60)
            while not data.endswith(b"\r\n.\r\n"):
                chunk = c.sock.recv(1 << 20)
                self.assertTrue(chunk)
                data += chunk
            data = bytes(data)
            head, rest = data.split(b"\r\n", 1)
            self.assertEqual(head, b"+OK %d octets" % len(big))
            self.assertEqual(unstuff(rest[:-3]), big)
        print("worker RSS before %d KB, while streaming %d KB"
              % (before, during))
        # A third of the message: generous for sanitizer builds, far
        # below what holding the message would cost.
        self.assertLess(during - before, len(big) // 3 // 1024,
                        "worker RSS grew by %d KB while streaming"
                        % (during - before))


class Reload(harness.PetrelTestCase):

    def test_session_survives_reload(self):
        """SIGHUP: a session of the old generation finishes its work
        (and its QUIT deletes); new connections reach the new one."""
        s = Pop3Server(self)
        m = message("one")
        s.deliver("alice@example.test", m)
        s.deliver("alice@example.test", message("two"))
        old = s.login()
        old.expect_ok(old.cmd("DELE 2"))
        mark = s.p.log_mark()
        s.p.signal(signal.SIGHUP)
        s.p.wait_log("reload: generation 2 accepted", since=mark)
        status, body = old.retr_raw("RETR 1")
        self.assertEqual(unstuff(body), m)
        self.assertEqual(old.cmd("QUIT"), "+OK bye, 1 messages deleted")
        old.close()
        with s.login_retry() as c:
            self.assertRegex(c.cmd("STAT"), r"^\+OK 1 ")
        s.p.wait_log("reload: generation 1 retired", since=mark)


class ConfigChecks(harness.PetrelTestCase):

    def check(self, pop3, modules=None):
        p = self.petrel()
        section = {"listen": [{"address": "127.0.0.1:%d"
                               % harness.free_port()}]}
        section.update(pop3)
        mods = {"pop3": section,
                "pop3_fake_auth": {"path": test_module("pop3_fake_auth")},
                "pop3_fake_storage": {"path": test_module(
                    "pop3_fake_storage"), "dir": p.dir}}
        if modules is not None:
            mods = modules(mods)
        return p.check(p.config(modules=mods))

    def test_good_config(self):
        self.assertCheckOk(self.check({
            "plaintext_auth_networks": ["127.0.0.1", "2001:db8::/32"],
            "idle_timeout": "10m", "max_line": 255}))

    def test_bad_values(self):
        for pop3, phrases in (
                ({"plaintext_auth_networks": ["10.0.0.1/8"]},
                 ["modules.pop3.plaintext_auth_networks",
                  "bits set beyond the /8 prefix"]),
                ({"plaintext_auth_networks": ["localhost"]},
                 ["is not an IP address"]),
                ({"greeting": "hi\r\n+OK fake"},
                 ["modules.pop3.greeting", "control characters"]),
                ({"listen": [{"address": "127.0.0.1:1110"},
                             {"address": "127.0.0.1:1110",
                              "tls": "implicit"}]},
                 ["listed twice"]),
                ({"listen": [{"address": "127.0.0.1:1110",
                              "tls": "none"}]},
                 ["modules.pop3.listen[0].tls"]),
                ({"max_line": 10}, ["modules.pop3.max_line"]),
                ({"idle_timeout": "10ms"}, ["modules.pop3.idle_timeout"]),
                ({"auth_failure_delay": "5s",
                  "auth_failure_delay_max": "1s"},
                 ["auth_failure_delay_max"]),
                ({"apop": True}, ['unknown key "apop"'])):
            with self.subTest(pop3=pop3):
                self.assertCheckFails(self.check(pop3), *phrases)

    def test_needs_auth_and_storage(self):
        def no_auth(mods):
            del mods["pop3_fake_auth"]
            return mods
        self.assertCheckFails(self.check({}, no_auth),
                              'needs service "auth"')


if __name__ == "__main__":
    unittest.main()
