# SPDX-License-Identifier: MIT
"""A scriptable SMTP server for the relay tests: the remote MX (or
smarthost) that Petrel delivers to.

Standard library only (asyncio, ssl). It runs its own event loop in a
thread, so a test drives Petrel and looks at what arrived here:

    peer = SmtpPeer("127.0.0.2", port, name="mx1.pref.test")
    peer.start()
    ...
    msgs = peer.wait_messages(1)
    peer.stop()

Scripted replies: `replies` maps a stage ("CONNECT" for the greeting,
"EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA" for the 354,
"DOT" for the reply after the data, "BDAT", "RSET", "QUIT") to a list of
replies used one per command in order (then the default again), or to a
function(argument) returning a reply or None (default). A reply may hold
several lines ("250-a\\r\\n250 b"). `hostile` makes it misbehave on
purpose:
  "starttls_inject"  the 220 to STARTTLS and "250 injected" in one write
  "ehlo_flood"       an endless multi-line EHLO reply
  "starttls_close"   on the first connection, a TLS alert instead of a
                     handshake after the 220 to STARTTLS
Every message is recorded with what a test may check, including whether
its data had a bare CR or LF (SECURITY.md #1: Petrel must never send
one).
"""

import asyncio
import base64
import os
import re
import ssl
import threading
import time

DEFAULT_EHLO = ("PIPELINING", "SIZE 52428800", "8BITMIME", "SMTPUTF8",
                "DSN", "ENHANCEDSTATUSCODES")
LINE_MAX = 4096


class PeerMessage:
    """One message as the peer received it."""

    def __init__(self, conn, mail_from, mail_params, rcpts, data,
                 bare_newline):
        self.conn = conn                  # connection number (1, 2, ...)
        self.tls = conn.tls
        self.auth = conn.auth_user
        self.helo = conn.helo
        self.mail_from = mail_from
        self.mail_params = mail_params    # "SIZE=12 BODY=8BITMIME", ...
        self.rcpts = [r for r, _ in rcpts]
        self.rcpt_params = dict(rcpts)
        self.data = data                  # bytes, dot-unstuffed, CRLF
        self.bare_newline = bare_newline  # a bare CR or LF was sent

    def __repr__(self):
        return "<PeerMessage from=%s to=%s %d bytes>" % (
            self.mail_from, self.rcpts, len(self.data))


class _Conn:
    def __init__(self, number):
        self.number = number
        self.tls = False
        self.auth_user = None
        self.helo = None
        self.commands = []


class SmtpPeer:
    def __init__(self, host, port, name="peer.test", ehlo=DEFAULT_EHLO,
                 tls=None, auth=None, replies=None, hostile=None,
                 chunking=False):
        self.host = host
        self.port = port
        self.name = name
        self.ehlo = list(ehlo)
        self.tls = tls              # (cert, key) to offer STARTTLS
        self.auth = auth or {}      # user -> password: offer AUTH PLAIN
        self.replies = dict(replies or {})
        self.hostile = hostile
        self.chunking = chunking
        self.messages = []
        self.conns = []
        self.log = []               # (conn number, line) of every command
        self.lock = threading.Lock()
        self.holding = False        # hold every reply to the data
        self.hold_after = None      # start holding at this many messages
        self.held = 0               # transactions waiting for it now
        self._loop = None
        self._server = None
        self._thread = None
        self._ctx = None

    # ---------------------------------------------------------- control

    def start(self, timeout=10):
        if self.tls:
            self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ctx.load_cert_chain(*self.tls)
        ready = threading.Event()
        errors = []

        def run():
            self._loop = asyncio.new_event_loop()
            try:
                self._server = self._loop.run_until_complete(
                    asyncio.start_server(self._serve, self.host, self.port,
                                         reuse_address=True))
            except OSError as e:
                errors.append(e)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise AssertionError("peer %s:%d did not start"
                                 % (self.host, self.port))
        if errors:
            raise errors[0]
        return self

    def stop(self):
        if self._loop is None or self._server is None:
            return

        async def shutdown():
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
        fut = asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        try:
            fut.result(5)
        except Exception:
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._server = None

    def set_replies(self, stage, replies):
        with self.lock:
            self.replies[stage] = replies

    def wait_messages(self, n, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if len(self.messages) >= n:
                    return list(self.messages)
            if time.monotonic() > deadline:
                raise AssertionError(
                    "peer %s: %d messages after %.0f s, expected %d; "
                    "commands: %r" % (self.name, len(self.messages),
                                      timeout, n, self.log[-30:]))
            time.sleep(0.05)

    def commands(self, verb=None):
        with self.lock:
            return [line for _, line in self.log
                    if verb is None or line.upper().startswith(verb)]

    # ----------------------------------------------------------- server

    def _reply_for(self, stage, arg, default):
        with self.lock:
            script = self.replies.get(stage)
            if callable(script):
                reply = script(arg)
                return reply if reply is not None else default
            if script:
                return script.pop(0)
        return default

    async def _send(self, writer, reply):
        writer.write(reply.encode() + b"\r\n")
        await writer.drain()

    async def _serve(self, reader, writer):
        with self.lock:
            conn = _Conn(len(self.conns) + 1)
            self.conns.append(conn)
        try:
            await self._session(conn, reader, writer)
        except (asyncio.CancelledError, ConnectionError, ssl.SSLError,
                asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                OSError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def _line(self, reader):
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed")
        return line

    async def _session(self, conn, reader, writer):
        greeting = self._reply_for("CONNECT", None,
                                   "220 %s ESMTP peer" % self.name)
        await self._send(writer, greeting)
        if not greeting.startswith("2"):
            # Some servers keep talking after a refusal; this one waits
            # for QUIT or the close.
            pass
        mail_from = None
        mail_params = ""
        rcpts = []
        while True:
            raw = await self._line(reader)
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self.lock:
                self.log.append((conn.number, line))
                conn.commands.append(line)
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb in ("EHLO", "HELO"):
                conn.helo = arg
                mail_from, rcpts = None, []
                if verb == "HELO":
                    await self._send(writer, self._reply_for(
                        "HELO", arg, "250 %s" % self.name))
                    continue
                reply = self._reply_for("EHLO", arg, None)
                if reply is not None:
                    await self._send(writer, reply)
                    continue
                if self.hostile == "ehlo_flood":
                    await self._flood(writer)
                    return
                words = list(self.ehlo)
                if self.tls and not conn.tls:
                    words.append("STARTTLS")
                if self.auth and conn.tls:
                    words.append("AUTH PLAIN LOGIN")
                if self.chunking:
                    words += ["CHUNKING", "BINARYMIME"]
                lines = [self.name] + words
                text = "\r\n".join("250-" + w for w in lines[:-1])
                text += ("\r\n" if len(lines) > 1 else "") + \
                    "250 " + lines[-1]
                await self._send(writer, text)
            elif verb == "STARTTLS" and self.tls and not conn.tls:
                reply = self._reply_for("STARTTLS", None,
                                        "220 2.0.0 go ahead")
                if self.hostile == "starttls_close" and \
                        conn.number == 1:
                    # A TLS stack that breaks: the handshake fails.
                    await self._send(writer, reply)
                    writer.write(b"\x15\x03\x03\x00\x02\x02\x28")
                    await writer.drain()
                    return
                if self.hostile == "starttls_inject":
                    # One write: the reply and a forged one after it.
                    writer.write(b"220 go\r\n250 injected\r\n")
                    await writer.drain()
                else:
                    await self._send(writer, reply)
                    if not reply.startswith("2"):
                        continue
                await writer.start_tls(self._ctx)
                conn.tls = True
                conn.helo = None
                mail_from, rcpts = None, []
            elif verb == "AUTH":
                await self._send(writer, self._auth(conn, arg))
            elif verb == "MAIL":
                m = re.match(r"FROM:<([^>]*)>\s*(.*)$", arg, re.I)
                reply = self._reply_for("MAIL", arg, "250 2.1.0 ok")
                if m and reply.startswith("2"):
                    mail_from, mail_params, rcpts = (m.group(1),
                                                     m.group(2), [])
                await self._send(writer, reply)
            elif verb == "RCPT":
                m = re.match(r"TO:<([^>]*)>\s*(.*)$", arg, re.I)
                addr = m.group(1) if m else arg
                reply = self._reply_for("RCPT", addr, "250 2.1.5 ok")
                if mail_from is None:
                    reply = "503 5.5.1 MAIL first"
                if m and reply.startswith("2"):
                    rcpts.append((m.group(1), m.group(2)))
                await self._send(writer, reply)
            elif verb == "DATA":
                if mail_from is None or not rcpts:
                    await self._send(writer, "554 5.5.1 no valid "
                                     "recipients")
                    continue
                reply = self._reply_for("DATA", None, "354 go ahead")
                await self._send(writer, reply)
                if not reply.startswith("354"):
                    continue
                data, bare = await self._read_data(reader)
                reply = self._reply_for("DOT", None, "250 2.0.0 queued")
                if reply.startswith("2"):
                    self._record(conn, mail_from, mail_params, rcpts, data,
                                 bare)
                await self._hold()
                mail_from, rcpts = None, []
                await self._send(writer, reply)
            elif verb == "BDAT":
                size, _, last = arg.partition(" ")
                data = await reader.readexactly(int(size))
                reply = self._reply_for("DOT", None, "250 2.0.0 queued")
                if reply.startswith("2") and mail_from is not None:
                    self._record(conn, mail_from, mail_params, rcpts, data,
                                 False)
                mail_from, rcpts = None, []
                await self._send(writer, reply)
            elif verb == "RSET":
                mail_from, rcpts = None, []
                await self._send(writer, self._reply_for(
                    "RSET", None, "250 2.0.0 ok"))
            elif verb == "NOOP":
                await self._send(writer, "250 2.0.0 ok")
            elif verb == "QUIT":
                await self._send(writer, self._reply_for(
                    "QUIT", None, "221 2.0.0 bye"))
                return
            else:
                await self._send(writer, "502 5.5.2 unknown command")

    async def _hold(self):
        """While holding, the message is stored (as a server that
        crashes before it replies may have done) but not acknowledged."""
        if not self.holding:
            return
        with self.lock:
            self.held += 1
        try:
            while self.holding:
                await asyncio.sleep(0.02)
        finally:
            with self.lock:
                self.held -= 1

    def _auth(self, conn, arg):
        mech, _, initial = arg.partition(" ")
        if mech.upper() != "PLAIN" or not initial:
            return "504 5.5.4 PLAIN with an initial response only"
        if not conn.tls:
            return "538 5.7.11 encryption required"
        try:
            _, user, password = base64.b64decode(initial).split(b"\0")
        except ValueError:
            return "501 5.5.2 bad response"
        user, password = user.decode(), password.decode()
        reply = self._reply_for("AUTH", user, None)
        if reply is not None:
            return reply
        if self.auth.get(user) == password:
            conn.auth_user = user
            return "235 2.7.0 ok"
        return "535 5.7.8 bad credentials"

    async def _read_data(self, reader):
        """Read to CRLF.CRLF; returns (unstuffed data, bare CR/LF seen)."""
        chunks = []
        bare = False
        while True:
            line = await reader.readuntil(b"\n")
            body = line[:-1]
            if not body.endswith(b"\r") or b"\r" in body[:-1]:
                bare = True
            if line == b".\r\n":
                break
            if line.startswith(b"."):
                line = line[1:]
            chunks.append(line)
        return b"".join(chunks), bare

    async def _flood(self, writer):
        """An EHLO reply that never ends (OpenSMTPD CVE-2020-8794)."""
        line = b"250-" + b"x" * 60 + b"\r\n"
        for _ in range(20000):
            writer.write(line * 50)
            await writer.drain()

    def _record(self, conn, mail_from, mail_params, rcpts, data, bare):
        with self.lock:
            self.messages.append(PeerMessage(conn, mail_from, mail_params,
                                             rcpts, data, bare))
            if self.hold_after is not None and \
                    len(self.messages) >= self.hold_after:
                self.holding = True


def free_port_on(hosts, start_low=None):
    """A TCP port free on every address of hosts (e.g. 127.0.0.2 and
    127.0.0.3), picked like harness.free_port()."""
    import harness
    import socket
    for _ in range(100):
        port = harness.free_port()
        ok = True
        for h in hosts:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((h, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no port free on %r" % (hosts,))


if __name__ == "__main__":
    import sys
    p = SmtpPeer(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1",
                 int(sys.argv[2]) if len(sys.argv) > 2 else 2525)
    p.start()
    print("listening on %s:%d" % (p.host, p.port))
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        p.stop()
    os._exit(0)
