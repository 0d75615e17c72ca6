# SPDX-License-Identifier: MIT
"""Helpers for the POP3 integration tests: a petrel with the pop3 module on
a chosen storage backend, message delivery into it, and a raw client.

Backends: "maildir" and "sqlite" (the real modules) and "fake" (the test
module tests/modules/pop3_fake_storage.so, which can inject failures).
Users come from the real passwd module (SHA512-CRYPT hashes in a
Dovecot-style passwd-file), or from the test auth module pop3_fake_auth
(auth="fake"), which can fail on purpose and map login names. Messages
are delivered through the storage service by the test module
pop3_inject, so every backend is filled the same way.
"""

import os
import shutil
import socket
import ssl
import tempfile
import time

import harness
from harness import LineClient, client_context

USERS = {
    "alice@example.test": "secret",
    "bob@example.test": "hunter2 with spaces",
    "carol@example.test": "carol-pw",
}
BACKENDS = ("maildir", "sqlite")

_hashes = {}


def crypt_sha512(password):
    """A {SHA512-CRYPT} hash made by the openssl CLI (5000 rounds: the
    tests log in often), once per password and run."""
    if password not in _hashes:
        result = harness.run(["openssl", "passwd", "-6", "-stdin"],
                             input=password + "\n")
        if result.returncode != 0:
            raise RuntimeError("openssl passwd failed: " + result.stderr)
        _hashes[password] = "{SHA512-CRYPT}" + result.stdout.strip()
    return _hashes[password]


def test_module(name):
    return os.path.join(harness.TEST_MODULE_DIR, name + ".so")


class Pop3Server:
    """One petrel serving POP3: a starttls and an implicit-TLS listener,
    the inject helper, fake auth (or passwd) and one storage backend."""

    def __init__(self, testcase, backend="maildir", pop3=None, auth=None,
                 fake_auth=None, extra_modules=None, workers=1,
                 fake_tempfail=(), certificates=True):
        self.testcase = testcase
        self.backend = backend
        self.p = testcase.petrel()
        self.cert, self.key = harness.make_cert(
            "pop3.example.test", ["pop3.example.test", "localhost"])
        self.plain = harness.free_port()
        self.tls = harness.free_port()
        self.inject_port = harness.free_port()
        self.mail_dir = self.p.path("mail")
        os.mkdir(self.mail_dir)
        self.p.chown_run_user(self.mail_dir)
        self.msg_dir = self.p.path("msgs")
        os.mkdir(self.msg_dir)
        os.chmod(self.msg_dir, 0o755)
        self.serial = 0

        # Without certificates there is no implicit-TLS listener.
        listen = [{"address": "127.0.0.1:%d" % self.plain}]
        if certificates:
            listen.append({"address": "127.0.0.1:%d" % self.tls,
                           "tls": "implicit"})
        section = {
            "listen": listen,
            "auth_failure_delay": "50ms",
            "auth_failure_delay_max": "400ms",
        }
        section.update(pop3 or {})
        modules = {"pop3": section,
                   "pop3_inject": {
                       "path": test_module("pop3_inject"),
                       "listen": "127.0.0.1:%d" % self.inject_port}}
        if auth == "fake":
            users = ["%s:%s" % kv for kv in USERS.items()]
            auth_section = {"path": test_module("pop3_fake_auth"),
                            "users": users,
                            "tempfail": list(fake_tempfail)}
            auth_section.update(fake_auth or {})
            modules["pop3_fake_auth"] = auth_section
        else:
            users_file = self.p.path("users.passwd")
            with open(users_file, "w") as f:
                for user, password in USERS.items():
                    f.write("%s:%s\n" % (user, crypt_sha512(password)))
            os.chmod(users_file, 0o644)
            modules["passwd"] = {"file": users_file}
        if backend == "maildir":
            modules["maildir"] = {
                "location": os.path.join(self.mail_dir,
                                         "%d/%n/Maildir")}
        elif backend == "sqlite":
            modules["sqlite"] = {
                "database": os.path.join(self.mail_dir, "mail.db")}
        elif backend == "fake":
            modules["pop3_fake_storage"] = {
                "path": test_module("pop3_fake_storage"),
                "dir": self.mail_dir}
            for user in USERS:
                self.fake_dir(user)
        else:
            raise ValueError(backend)
        modules.update(extra_modules or {})
        tls = None
        if certificates:
            tls = {"certificates": [{"cert": self.cert, "key": self.key}]}
        cfg = self.p.config(modules=modules, workers=workers, tls=tls)
        self.p.write_config(cfg)
        ports = [self.plain, self.inject_port]
        if certificates:
            ports.append(self.tls)
        self.p.start(wait_ports=ports, wait_log="worker 0 started")

    # -- mailbox content

    def fake_dir(self, user):
        path = os.path.join(self.mail_dir, user)
        if not os.path.isdir(path):
            os.mkdir(path, 0o700)
            self.p.chown_run_user(path)
        return path

    def maildir(self, user):
        local, domain = user.split("@")
        return os.path.join(self.mail_dir, domain, local, "Maildir")

    def deliver(self, user, data):
        """Store one message (bytes) through the storage service."""
        self.serial += 1
        path = os.path.join(self.msg_dir, "m%d" % self.serial)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o644)
        with LineClient(self.inject_port, read_greeting=False,
                        timeout=30) as c:
            reply = c.cmd("DELIVER %s %s" % (user, path), timeout=60)
        os.unlink(path)
        if reply != "+OK":
            raise AssertionError("delivery failed: %s\n%s"
                                 % (reply, self.p.log_tail()))

    # -- clients

    def connect(self, tls=False, **kwargs):
        """A raw client on the starttls port, or on the implicit one."""
        return Pop3Client(self.tls if tls else self.plain, tls=tls,
                          **kwargs)

    def login(self, user="alice@example.test", password=None, tls=True):
        """A client logged in over implicit TLS (default)."""
        c = self.connect(tls=tls)
        c.expect_ok(c.greeting)
        c.expect_ok(c.cmd("USER " + user))
        reply = c.cmd("PASS " + (password or USERS[user]))
        c.expect_ok(reply)
        return c

    def login_retry(self, user="alice@example.test", timeout=5.0):
        """Log in, retrying while the mailbox is still locked by a
        session the server has not finished closing."""
        deadline = time.monotonic() + timeout
        while True:
            c = self.connect(tls=True)
            c.cmd("USER " + user)
            reply = c.cmd("PASS " + USERS[user])
            if reply.startswith("+OK"):
                return c
            c.close()
            if "[IN-USE]" not in reply or time.monotonic() > deadline:
                raise AssertionError("login failed: " + reply)
            time.sleep(0.05)


class Pop3Client(LineClient):
    """A POP3 conversation over a raw socket."""

    def expect_ok(self, reply):
        if not reply.startswith("+OK"):
            raise AssertionError("expected +OK, got %r" % reply)
        return reply

    def raw_line(self, timeout=None):
        """The next line as bytes, without its CRLF."""
        self.sock.settimeout(timeout or self.timeout)
        while b"\n" not in self.buf:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise AssertionError("no reply (got %r)" % self.buf[:200])
            if not data:
                raise AssertionError("connection closed (got %r)"
                                     % self.buf[:200])
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        if not line.endswith(b"\r"):
            raise AssertionError("line without CR: %r" % line[:200])
        return line[:-1]

    def multi(self, timeout=None):
        """Lines of a multi-line answer, byte-unstuffed (bytes)."""
        lines = []
        while True:
            line = self.raw_line(timeout)
            if line == b".":
                return lines
            if line.startswith(b"."):
                line = line[1:]
            lines.append(line)

    def multi_text(self, timeout=None):
        return [l.decode() for l in self.multi(timeout)]

    def retr_raw(self, cmd, timeout=60):
        """Send RETR/TOP; return (status line, body bytes exactly as
        sent on the wire, without the final ".\\r\\n")."""
        self.send_line(cmd)
        status = self.raw_line(timeout).decode()
        if not status.startswith("+OK"):
            return status, None
        self.sock.settimeout(timeout)
        data = bytearray(self.buf)
        self.buf = b""
        searched = 0
        while True:
            if data[:3] == b".\r\n":
                self.buf = bytes(data[3:])
                return status, b""
            end = data.find(b"\r\n.\r\n", max(0, searched - 4))
            if end >= 0:
                self.buf = bytes(data[end + 5:])
                return status, bytes(data[:end + 2])
            searched = len(data)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise AssertionError("closed in the middle of a message "
                                     "(%d octets)" % len(data))
            data += chunk

    def capa(self):
        self.expect_ok(self.cmd("CAPA"))
        return self.multi_text()

    def login(self, user, password):
        self.expect_ok(self.cmd("USER " + user))
        return self.cmd("PASS " + password)


def unstuff(wire):
    """Undo byte-stuffing of a RETR body as sent on the wire."""
    out = []
    for line in wire.split(b"\r\n"):
        out.append(line[1:] if line.startswith(b".") else line)
    return b"\r\n".join(out)


def message(subject="test", body=b"hello\r\n", size=None):
    """A small RFC 5322 message (bytes, CRLF)."""
    head = ("From: sender@example.org\r\nTo: alice@example.test\r\n"
            "Subject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\n"
            % (subject, subject.replace(" ", "."))).encode()
    if size is not None:
        line = b"x" * 70 + b"\r\n"
        body = line * max(0, (size - len(head)) // len(line))
    return head + body
