# SPDX-License-Identifier: MIT
"""Helpers for the SMTP integration tests: a petrel with the smtp module,
the real passwd module (users from a Dovecot-style passwd file) and a
storage backend (maildir or sqlite); an SMTP client that checks the shape
of every reply; readers for what ended up in the mailboxes.

Standard library only (smtplib, ssl, sqlite3). Every wait is bounded.
"""

import glob
import os
import re
import socket
import sqlite3
import ssl
import subprocess
import time
import warnings

import harness
from harness import LineClient, client_context

DOMAIN = "example.test"
HOSTNAME = "mail.example.test"
USERS = {
    "alice@example.test": "alice secret",
    "bob@example.test": "bob-pw-2",
    "carol@example.test": "carol pw 3",
    "dave@example.test": "dave pw 4",
    "postmaster@example.test": "postmaster pw",
}
ROLES = ("mx", "submission", "submissions")

# What an enhanced status code looks like at the start of a reply text.
ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)")
# Replies that carry no enhanced code (docs/smtp.md, Protocol).
NO_ENHANCED_CODES = (354, 334)

_hash_cache = {}


def hash_password(password):
    """A {SHA512-CRYPT} hash of password: Python's crypt module when it
    exists, else `openssl passwd -6`."""
    if password in _hash_cache:
        return _hash_cache[password]
    value = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # noqa: deprecated in 3.11, gone in 3.13
        value = crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))
    except (ImportError, AttributeError):
        value = None
    if not value or not value.startswith("$6$"):
        result = harness.run(["openssl", "passwd", "-6", "-stdin"],
                             input=password + "\n")
        if result.returncode != 0:
            raise RuntimeError("openssl passwd failed: " + result.stderr)
        value = result.stdout.strip()
    _hash_cache[password] = value
    return value


def passwd_line(user, password):
    return "%s:{SHA512-CRYPT}%s" % (user, hash_password(password))


# ---------------------------------------------------------------- replies

class Reply:
    """One SMTP reply: its code and its lines (text after "NNN-"/"NNN ")."""

    def __init__(self, raw_lines):
        self.raw = raw_lines
        self.code = int(raw_lines[-1][:3])
        self.lines = [line[4:] for line in raw_lines]

    @property
    def text(self):
        """The text of the last line (after the code)."""
        return self.lines[-1]

    @property
    def enhanced(self):
        """The enhanced status code of the last line, or None."""
        m = ENHANCED.match(self.text)
        return "%s.%s.%s" % m.groups() if m else None

    def __str__(self):
        return "\n".join(self.raw)

    __repr__ = __str__


class SmtpClient(LineClient):
    """A raw SMTP conversation. Every reply is checked for its shape
    (NNN[- ]text, CRLF, one code for all lines) and, unless it is one of
    the replies the RFCs leave without, for an enhanced status code on
    every line whose class matches the reply code (RFC 2034)."""

    def __init__(self, port, tls=False, context=None, check_enhanced=True,
                 **kwargs):
        self.check_enhanced = check_enhanced
        self.replies = []
        super().__init__(port, tls=tls, context=context,
                         read_greeting=False, **kwargs)
        self.greeting = self.reply(kind="greeting")

    # -- reading

    def raw_line(self, timeout=None):
        """The next line as bytes; asserts it ends in CRLF."""
        self.sock.settimeout(timeout or self.timeout)
        while b"\n" not in self.buf:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise AssertionError("no reply within %.1f s (got %r)"
                                     % (timeout or self.timeout,
                                        self.buf[:300]))
            except (ConnectionError, ssl.SSLError) as e:
                raise AssertionError("connection failed: %s (got %r)"
                                     % (e, self.buf[:300]))
            if not data:
                raise AssertionError("connection closed (got %r)"
                                     % self.buf[:300])
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        if not line.endswith(b"\r"):
            raise AssertionError("reply line without CR: %r" % line[:300])
        return line[:-1]

    def reply(self, kind=None, timeout=None):
        """Read one (possibly multi-line) reply. kind is the verb it
        answers (for the enhanced code check), or "greeting"."""
        lines = []
        while True:
            raw = self.raw_line(timeout)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise AssertionError("reply not UTF-8: %r" % raw)
            if not re.match(r"^[2-5]\d\d([ -]|$)", line):
                raise AssertionError("malformed reply line %r" % line)
            if lines and line[:3] != lines[0][:3]:
                raise AssertionError("codes differ in one reply: %r, %r"
                                     % (lines[0], line))
            lines.append(line)
            if len(line) == 3 or line[3] == " ":
                break
        r = Reply(lines)
        self.replies.append(r)
        if self.check_enhanced:
            self._check_enhanced(r, kind)
        return r

    def _check_enhanced(self, r, kind):
        kind = (kind or "").upper()
        if kind == "GREETING" and r.code == 220:
            return
        if r.code in NO_ENHANCED_CODES:
            return
        if kind in ("EHLO", "HELO") and r.code == 250:
            return
        for line in r.lines:
            m = ENHANCED.match(line)
            if not m:
                raise AssertionError("reply to %s without an enhanced "
                                     "status code: %s" % (kind, r))
            if m.group(1) != str(r.code)[0]:
                raise AssertionError("enhanced code class differs from "
                                     "the reply code: %s" % r)

    # -- writing

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, line, timeout=None):
        """Send one command line (str or bytes, CRLF added); its Reply."""
        if isinstance(line, str):
            line = line.encode()
        self.sock.sendall(line + b"\r\n")
        return self.reply(kind=_verb(line), timeout=timeout)

    def expect(self, line, code, enhanced=None, text=None, timeout=None):
        """cmd(line) and assert the code (and enhanced code, and a regex
        on the text) of its reply; returns it."""
        r = self.cmd(line, timeout=timeout)
        _assert_reply(r, code, enhanced, text, line)
        return r

    def expect_reply(self, code, enhanced=None, text=None, kind=None,
                     timeout=None):
        r = self.reply(kind=kind, timeout=timeout)
        _assert_reply(r, code, enhanced, text, kind)
        return r

    def pipeline(self, lines):
        """Send every line in one write; read one reply per line."""
        data = b"".join((l.encode() if isinstance(l, str) else l) + b"\r\n"
                        for l in lines)
        self.sock.sendall(data)
        return [self.reply(kind=_verb(l)) for l in lines]

    def ehlo(self, name="client.example.org"):
        """EHLO; returns the list of extension lines (upper-cased
        keywords as sent)."""
        r = self.expect("EHLO " + name, 250)
        return r.lines[1:]

    def starttls(self, context=None, server_hostname="localhost"):
        """STARTTLS and the handshake."""
        self.expect("STARTTLS", 220, "2.0.0")
        self.handshake(context, server_hostname)

    def handshake(self, context=None, server_hostname="localhost"):
        """The TLS handshake alone (STARTTLS already answered); fails if
        the server sent anything past its 220."""
        LineClient.starttls(self, context, server_hostname)

    def auth_plain(self, user, password, authzid=""):
        import base64
        token = base64.b64encode(("%s\0%s\0%s" % (authzid, user, password))
                                 .encode()).decode()
        return self.cmd("AUTH PLAIN " + token, timeout=30)

    def data(self, message, timeout=30):
        """DATA, then message (bytes, already CRLF; dot-stuffed here)
        and the end marker; returns the final Reply."""
        self.expect("DATA", 354)
        self.sock.sendall(dot_stuff(message) + b".\r\n")
        return self.reply(kind="DATA-END", timeout=timeout)

    def send_mail(self, sender, rcpts, message, mail_params="",
                  timeout=30):
        """A whole transaction; asserts MAIL and RCPT succeed; returns
        the final Reply."""
        self.expect("MAIL FROM:<%s>%s" % (sender, mail_params), 250,
                    "2.1.0")
        for rcpt in rcpts:
            self.expect("RCPT TO:<%s>" % rcpt, 250, "2.1.5")
        return self.data(message, timeout)

    def quit(self):
        try:
            self.expect("QUIT", 221, "2.0.0")
        finally:
            self.close()

    def closed(self, timeout=harness.IO_TIMEOUT):
        """True once the server closed (EOF or reset) with nothing more
        to read than what is already buffered."""
        return self.wait_closed(timeout)


def _verb(line):
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    return line.split(" ", 1)[0].strip().upper()


def _assert_reply(r, code, enhanced, text, what):
    if r.code != code:
        raise AssertionError("%r: expected %d, got %s" % (what, code, r))
    if enhanced is not None and r.enhanced != enhanced:
        raise AssertionError("%r: expected %d %s, got %s"
                             % (what, code, enhanced, r))
    if text is not None and not re.search(text, r.text):
        raise AssertionError("%r: expected text matching %r, got %s"
                             % (what, text, r))


def dot_stuff(message):
    """Dot-stuff a CRLF message and make sure it ends in CRLF."""
    if message and not message.endswith(b"\r\n"):
        message += b"\r\n"
    out = []
    for line in message.split(b"\r\n")[:-1]:
        out.append(b"." + line if line.startswith(b".") else line)
    return b"".join(l + b"\r\n" for l in out)


def make_message(subject="test", body=None, size=None, sender=None,
                 to="alice@example.test"):
    """A small RFC 5322 message (bytes, CRLF, ends in CRLF). With size,
    the body is padded with 70-column lines to about that many bytes."""
    sender = sender or "sender@example.org"
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
            "Message-ID: <%s.%d@example.org>\r\n\r\n"
            % (sender, to, subject, re.sub(r"[^A-Za-z0-9]", ".", subject),
               time.monotonic_ns())).encode()
    if body is None:
        body = b"Hello.\r\n.leading dot\r\n..two dots\r\n\r\nEnd.\r\n"
    if size is not None:
        line = b"y" * 68 + b"\r\n"
        n = max(0, (size - len(head)) // len(line))
        body = line * n
    return head + body


STORED_HEAD = re.compile(
    rb"\AReturn-Path: <([^\r\n]*)>\r\n"
    rb"Delivered-To: ([^\r\n]*)\r\n"
    rb"(Received: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)")


def split_stored(data):
    """(return_path, delivered_to, received_field, original_message) of a
    stored message; AssertionError if Petrel's header lines are not
    there in the documented shape."""
    m = STORED_HEAD.match(data)
    if not m:
        raise AssertionError("stored message does not start with "
                             "Return-Path/Delivered-To/Received: %r"
                             % data[:600])
    return m.group(1), m.group(2), m.group(3), data[m.end():]


# ------------------------------------------------------------- the server

class SmtpServer:
    """One petrel with the smtp module (mx, submission and submissions
    listeners by default), passwd and one storage backend."""

    def __init__(self, testcase, backend="maildir", smtp=None, users=None,
                 workers=1, roles=ROLES, listen_extra=None, tls=True,
                 extra_modules=None, server=None, start=True,
                 wait_timeout=harness.START_TIMEOUT):
        self.testcase = testcase
        self.backend = backend
        self.p = testcase.petrel()
        self.workers = workers
        self.users = dict(USERS if users is None else users)
        self.cert, self.key = harness.make_cert(
            HOSTNAME, [HOSTNAME, "localhost"])
        self.ports = {}
        listen = []
        for role in roles:
            port = harness.free_port()
            self.ports[role] = port
            entry = {"address": "127.0.0.1:%d" % port, "role": role}
            entry.update((listen_extra or {}).get(role, {}))
            listen.append(entry)
        self.mail_dir = self.p.path("mail")
        os.mkdir(self.mail_dir)
        os.chmod(self.mail_dir, 0o755)
        self.p.chown_run_user(self.mail_dir)
        self.passwd_file = self.p.path("users.passwd")
        self.write_users()

        section = {"hostname": HOSTNAME, "local_domains": [DOMAIN],
                   "listen": listen, "auth_failure_delay": "50ms"}
        section.update(smtp or {})
        modules = {"passwd": {"file": self.passwd_file}}
        if backend == "maildir":
            modules["maildir"] = {
                "location": os.path.join(self.mail_dir, "%d/%n/Maildir")}
        elif backend == "sqlite":
            self.db_path = os.path.join(self.mail_dir, "mailstore.db")
            modules["sqlite"] = {"database": self.db_path}
        else:
            raise ValueError(backend)
        modules["smtp"] = section
        modules.update(extra_modules or {})
        tls_section = None
        if tls:
            tls_section = {"certificates": [{"cert": self.cert,
                                             "key": self.key}]}
        self.cfg = self.p.config(modules=modules, tls=tls_section,
                                 workers=workers, **(server or {}))
        self.p.write_config(self.cfg)
        if start:
            self.start(wait_timeout)

    def write_users(self):
        with open(self.passwd_file, "w") as f:
            for user, pw in self.users.items():
                f.write(passwd_line(user, pw) + "\n")
        os.chmod(self.passwd_file, 0o644)

    def start(self, timeout=harness.START_TIMEOUT, attempts=3):
        """Start petrel; if a port was taken between the moment it was
        picked and the bind (another test process picked it too), pick
        new ports and try again."""
        for attempt in range(attempts):
            mark = self.p.log_mark()
            try:
                # Another process listening on a taken port answers
                # wait_port: the bind error shows in wait_log.
                self.p.start(wait_ports=list(self.ports.values()),
                             timeout=timeout)
                self.p.wait_log("worker %d started" % (self.workers - 1),
                                timeout=timeout, since=mark)
                return self
            except AssertionError:
                taken = "Address already in use" in \
                    self.p.log_text()[mark:]
                if not taken or attempt == attempts - 1:
                    raise
                self.p.kill_group()
                self.p.proc = None
                self._new_ports()
        return self

    def _new_ports(self):
        for entry in self.cfg["modules"]["smtp"]["listen"]:
            port = harness.free_port()
            self.ports[entry["role"]] = port
            entry["address"] = "127.0.0.1:%d" % port
        self.p.write_config(self.cfg)

    # -- clients

    @property
    def mx(self):
        return self.ports["mx"]

    @property
    def sub(self):
        return self.ports["submission"]

    @property
    def subs(self):
        return self.ports["submissions"]

    def ctx(self, check_hostname=True):
        """A client context that verifies the server's certificate (and
        its name, unless told not to: clients that connect to
        127.0.0.1 by address)."""
        ctx = client_context(cafile=self.cert)
        ctx.check_hostname = check_hostname
        return ctx

    def connect(self, role="mx", **kwargs):
        """A raw client; on submissions with implicit TLS. Asserts the
        greeting."""
        tls = role == "submissions"
        if tls and "context" not in kwargs:
            kwargs["context"] = self.ctx()
            kwargs.setdefault("server_hostname", HOSTNAME)
        c = SmtpClient(self.ports[role], tls=tls, **kwargs)
        if c.greeting.code != 220 or \
                c.greeting.text != "%s ESMTP Petrel" % HOSTNAME:
            c.close()
            raise AssertionError("unexpected greeting %s" % c.greeting)
        return c

    def ehlo_client(self, role="mx", name="client.example.org", **kwargs):
        c = self.connect(role, **kwargs)
        c.ehlo(name)
        return c

    def tls_client(self, role="submission", name="client.example.org"):
        """EHLO, STARTTLS (verified), EHLO again."""
        c = self.connect(role)
        c.ehlo(name)
        c.starttls(self.ctx(), server_hostname=HOSTNAME)
        c.ehlo(name)
        return c

    def auth_client(self, role="submission", user="alice@example.test"):
        """A client authenticated with PLAIN over TLS."""
        c = self.tls_client(role) if role == "submission" else \
            self.ehlo_client(role)
        r = c.auth_plain(user, self.users[user])
        _assert_reply(r, 235, "2.7.0", None, "AUTH PLAIN")
        return c

    # -- mailboxes

    def maildir(self, user):
        local, domain = user.split("@")
        return os.path.join(self.mail_dir, domain, local, "Maildir")

    def files(self, user, sub="new"):
        d = os.path.join(self.maildir(user), sub)
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            return []
        return sorted(os.path.join(d, n) for n in names)

    def all_files(self):
        """Every file in any tmp/, new/ or cur/ under the mail dir."""
        found = []
        for sub in ("tmp", "new", "cur"):
            found += glob.glob(os.path.join(self.mail_dir, "*", "*",
                                            "Maildir", sub, "*"))
        return sorted(found)

    def messages(self, user):
        """The stored messages of user (bytes), oldest first."""
        if self.backend == "sqlite":
            return self.sqlite_messages(user)
        paths = self.files(user, "new") + self.files(user, "cur")
        paths.sort(key=os.path.getmtime)
        out = []
        for path in paths:
            with open(path, "rb") as f:
                out.append(f.read())
        return out

    def count_all(self):
        if self.backend == "sqlite":
            return len(self.sqlite_rows())
        return len(self.all_files())

    def sqlite_rows(self):
        if not os.path.exists(self.db_path):
            return []
        db = sqlite3.connect("file:%s?mode=ro" % self.db_path, uri=True,
                             timeout=10)
        try:
            return db.execute(
                "SELECT u.name, m.body FROM messages m "
                "JOIN users u ON m.user_id = u.id ORDER BY m.id").fetchall()
        finally:
            db.close()

    def sqlite_messages(self, user):
        return [bytes(body) for name, body in self.sqlite_rows()
                if name == user]

    def wait_messages(self, user, n, timeout=10):
        return harness.wait_until(
            lambda: len(self.messages(user)) >= n and self.messages(user),
            timeout, "%d messages for %s" % (n, user))

    # -- processes

    def worker_pids(self):
        return self.p.children()


# ----------------------------------------------------------- other clients

def swaks(args, timeout=60):
    """Run swaks with args (list); CompletedProcess (text)."""
    return harness.run(["swaks", "--timeout", "20"] + list(args),
                       timeout=timeout)


def curl(args, timeout=60, data=None):
    """Run curl with args (list), the message on stdin if given."""
    argv = ["curl", "--silent", "--show-error", "--max-time", "30"] + \
        list(args)
    if data is None:
        return harness.run(argv, timeout=timeout)
    return subprocess.run(argv, input=data, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout)
