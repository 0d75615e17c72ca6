# SPDX-License-Identifier: MIT
"""Real POP3 clients against petrel on both storage backends: Python's
poplib (STLS and POP3S), curl (pop3:// with STLS required, pop3s://) and
fetchmail (STLS, certificate checked)."""

import os
import poplib
import shutil
import subprocess
import unittest

import harness
from harness import client_context
from pop3_harness import Pop3Server, USERS, message

FETCHMAIL = shutil.which("fetchmail")
CURL = shutil.which("curl")


class Clients:
    BACKEND = None

    def setUp(self):
        self.s = Pop3Server(self, self.BACKEND)
        self.msgs = [message("client %d" % i,
                             b"line one\r\n.starts with a dot\r\n"
                             b"..two dots\r\nlast\r\n" * i)
                     for i in (1, 2, 3)]
        for m in self.msgs:
            self.s.deliver("alice@example.test", m)

    def ctx(self):
        """Checks the chain; the certificate names no IP address."""
        ctx = client_context(cafile=self.s.cert)
        ctx.check_hostname = False
        return ctx

    # -- poplib

    def check_poplib_session(self, pop):
        pop.user("alice@example.test")
        pop.pass_("secret")
        count, size = pop.stat()
        self.assertEqual(count, 3)
        self.assertEqual(size, sum(len(m) for m in self.msgs))
        resp, listing, _ = pop.list()
        self.assertEqual([l.split()[1] for l in listing],
                         [str(len(m)).encode() for m in self.msgs])
        resp, uids, _ = pop.uidl()
        self.assertEqual(len(uids), 3)
        for i, m in enumerate(self.msgs):
            resp, lines, octets = pop.retr(i + 1)
            self.assertEqual(b"\r\n".join(lines) + b"\r\n", m)
        resp, lines, _ = pop.top(2, 1)
        self.assertEqual(lines[-1], b"line one")
        self.assertIn(b"Subject: client 2", lines)
        pop.dele(1)
        pop.rset()
        pop.dele(3)
        self.assertTrue(pop.quit().startswith(b"+OK bye, 1 messages"))

    def test_poplib_stls(self):
        pop = poplib.POP3("127.0.0.1", self.s.plain, timeout=10)
        try:
            self.assertIn("STLS", pop.capa())
            self.assertNotIn("USER", pop.capa())
            pop.stls(context=self.ctx())
            self.assertIn("USER", pop.capa())
            self.check_poplib_session(pop)
        finally:
            pop.close()
        with self.s.login_retry() as c:
            self.assertRegex(c.cmd("STAT"), r"^\+OK 2 ")

    def test_poplib_pop3s(self):
        ctx = self.ctx()
        pop = poplib.POP3_SSL("127.0.0.1", self.s.tls, context=ctx,
                              timeout=10)
        try:
            caps = pop.capa()
            self.assertIn("SASL", caps)
            self.assertEqual(caps["SASL"], ["PLAIN"])
            self.assertEqual(caps["IMPLEMENTATION"], ["Petrel"])
            self.check_poplib_session(pop)
        finally:
            pop.close()

    def test_poplib_in_use(self):
        ctx = self.ctx()
        first = poplib.POP3_SSL("127.0.0.1", self.s.tls, context=ctx,
                                timeout=10)
        second = poplib.POP3_SSL("127.0.0.1", self.s.tls, context=ctx,
                                 timeout=10)
        try:
            first.user("alice@example.test")
            first.pass_("secret")
            second.user("alice@example.test")
            with self.assertRaises(poplib.error_proto) as cm:
                second.pass_("secret")
            self.assertIn(b"[IN-USE]", cm.exception.args[0])
        finally:
            first.close()
            second.close()

    # -- curl

    def curl(self, url, *args):
        if CURL is None:
            self.fail("curl is not installed")
        port = self.s.tls if url.startswith("pop3s") else self.s.plain
        argv = [CURL, "-sS", "--cacert", self.s.cert,
                "--resolve", "pop3.example.test:%d:127.0.0.1" % port,
                "-u", "alice@example.test:secret",
                url % port] + list(args)
        result = subprocess.run(argv, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def test_curl_pop3_stls(self):
        out = self.curl("pop3://pop3.example.test:%d/", "--ssl-reqd")
        self.assertEqual(out.decode().split("\r\n")[:3],
                         ["%d %d" % (i + 1, len(m))
                          for i, m in enumerate(self.msgs)])
        out = self.curl("pop3://pop3.example.test:%d/2", "--ssl-reqd")
        self.assertEqual(out, self.msgs[1])
        out = self.curl("pop3://pop3.example.test:%d/", "--ssl-reqd",
                        "-X", "UIDL")
        self.assertEqual(len(out.decode().split("\r\n")), 4)
        # SASL PLAIN is what curl picks when it is offered.
        self.assertIn("method=PLAIN", self.s.p.log_text())

    def test_curl_pop3s_and_dele(self):
        out = self.curl("pop3s://pop3.example.test:%d/3")
        self.assertEqual(out, self.msgs[2])
        self.curl("pop3s://pop3.example.test:%d/1", "-X", "DELE", "-I")
        out = self.curl("pop3s://pop3.example.test:%d/")
        self.assertEqual(len(out.decode().strip().split("\r\n")), 2)

    def test_curl_sasl_initial_response(self):
        out = self.curl("pop3s://pop3.example.test:%d/1", "--sasl-ir")
        self.assertEqual(out, self.msgs[0])
        self.assertIn("method=PLAIN", self.s.p.log_text())

    # -- fetchmail

    def test_fetchmail_stls(self):
        if FETCHMAIL is None:
            self.fail("fetchmail is not installed (apt-get install "
                      "fetchmail)")
        home = self.s.p.path("fetchmail")
        out = os.path.join(home, "out")
        os.makedirs(out)
        os.chmod(home, 0o700)
        rc = os.path.join(home, "fetchmailrc")
        with open(rc, "w") as f:
            f.write('set no syslog\n'
                    'poll pop3.example.test via 127.0.0.1 with proto POP3 '
                    'port %d\n'
                    '  user "alice@example.test" there with password '
                    '"secret" is "root" here\n'
                    '  sslcertck sslcertfile "%s" sslcommonname '
                    '"pop3.example.test"\n'
                    '  mda "cat > %s/msg.$$"\n'
                    % (self.s.plain, self.s.cert, out))
        os.chmod(rc, 0o600)
        env = dict(os.environ, HOME=home)
        result = subprocess.run(
            [FETCHMAIL, "-f", rc, "-i", os.path.join(home, "ids"), "-v"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
            timeout=60)
        log = result.stdout.decode("utf-8", "replace")
        self.assertEqual(result.returncode, 0, log)
        self.assertIn("upgrade to TLS succeeded", log)
        got = []
        for name in os.listdir(out):
            with open(os.path.join(out, name), "rb") as f:
                got.append(f.read())
        self.assertEqual(len(got), 3, log)
        # fetchmail adds a Received: line and writes LF line ends.
        for m in self.msgs:
            text = m.replace(b"\r\n", b"\n")
            self.assertTrue(any(g.endswith(text) for g in got),
                            "message not fetched intact: %r" % text[:60])
        # Without "keep", fetchmail deleted them at QUIT.
        with self.s.login_retry() as c:
            self.assertEqual(c.cmd("STAT"), "+OK 0 0")


class MaildirClients(Clients, harness.PetrelTestCase):
    BACKEND = "maildir"


class SqliteClients(Clients, harness.PetrelTestCase):
    BACKEND = "sqlite"


if __name__ == "__main__":
    unittest.main()
