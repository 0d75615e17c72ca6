# SPDX-License-Identifier: MIT
"""Helpers for the queue integration tests: a small SMTP sink to play the
remote server, a petrel with the queue module and the queue_inject test
module, and petrelctl.

The sink is a threaded Python SMTP server on 127.0.0.1 that records every
transaction and answers by a policy the test sets (so a test can make it
say 451, 550 or drop the connection). Routes send every domain to it, so
no DNS is needed.
"""

import os
import socket
import socketserver
import threading
import time

import harness

PETRELCTL = os.path.join(harness.BUILD_ROOT, "tools", "petrelctl")


def test_module(name):
    return os.path.join(harness.TEST_MODULE_DIR, name + ".so")


class SinkMessage:
    def __init__(self, mail_from, rcpts, data, conn_id):
        self.mail_from = mail_from
        self.rcpts = rcpts
        self.data = data
        self.conn_id = conn_id
        self.time = time.monotonic()

    def header(self, name):
        head = self.data.split(b"\r\n\r\n", 1)[0].decode("utf-8",
                                                           "replace")
        for line in head.split("\r\n"):
            if line.lower().startswith(name.lower() + ":"):
                return line.split(":", 1)[1].strip()
        return None


class _Handler(socketserver.StreamRequestHandler):
    timeout = 30

    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        sink = self.server.sink
        with sink.lock:
            sink.conn_counter += 1
            conn_id = sink.conn_counter
            sink.connections += 1
        try:
            self.session(sink, conn_id)
        except (OSError, ConnectionError):
            pass
        finally:
            with sink.lock:
                sink.connections -= 1

    def session(self, sink, conn_id):
        decision = sink.decide("connect", None, None)
        if decision == "drop":
            return
        self.reply(decision or "220 sink.test ESMTP")
        mail_from, rcpts = None, []
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250-sink.test\r\n250-8BITMIME\r\n"
                           "250-PIPELINING\r\n250 SIZE 100000000"
                           if verb == "EHLO" else "250 sink.test")
            elif verb == "MAIL":
                mail_from = cmd[10:].split(">")[0].lstrip("<")
                rcpts = []
                self.reply(sink.decide("mail", mail_from, None)
                           or "250 2.1.0 ok")
            elif verb == "RCPT":
                rcpt = cmd[8:].split(">")[0].lstrip("<")
                answer = sink.decide("rcpt", mail_from, rcpt) or \
                    "250 2.1.5 ok"
                if answer.startswith("2"):
                    rcpts.append(rcpt)
                self.reply(answer)
            elif verb == "DATA":
                if not rcpts:
                    self.reply("554 5.5.1 no valid recipients")
                    continue
                self.reply("354 go ahead")
                with sink.lock:
                    sink.open_data += 1
                try:
                    lines = []
                    while True:
                        dl = self.rfile.readline(1 << 20)
                        if not dl:
                            return
                        if dl == b".\r\n":
                            break
                        if dl.startswith(b"."):
                            dl = dl[1:]
                        lines.append(dl)
                    data = b"".join(lines)
                    answer = sink.decide("data", mail_from, rcpts) or \
                        "250 2.0.0 queued"
                    if answer == "drop":
                        return
                    if answer.startswith("2"):
                        sink.record(SinkMessage(mail_from, list(rcpts),
                                                data, conn_id))
                    self.reply(answer)
                finally:
                    with sink.lock:
                        sink.open_data -= 1
                mail_from, rcpts = None, []
            elif verb == "RSET":
                mail_from, rcpts = None, []
                self.reply("250 2.0.0 ok")
            elif verb == "NOOP":
                self.reply("250 2.0.0 ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 bye")
                return
            else:
                self.reply("502 5.5.2 not implemented")


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    # A burst of connections (a restarted runner) must not overflow the
    # accept queue: the client would wait for a greeting that never comes.
    request_queue_size = 256


class SmtpSink:
    """A recording SMTP server. policy(stage, mail_from, rcpt_or_rcpts)
    returns a reply line, "drop", or None for the default; stages are
    "connect", "mail", "rcpt", "data"."""

    def __init__(self, host="127.0.0.1", port=None, policy=None):
        self.host = host
        self.port = port or harness.free_port()
        self.policy = policy
        self.lock = threading.Lock()
        self.messages = []
        self.conn_counter = 0
        self.connections = 0
        self.open_data = 0
        self.server = None
        self.thread = None

    def decide(self, stage, mail_from, arg):
        policy = self.policy
        return policy(stage, mail_from, arg) if policy else None

    def record(self, msg):
        with self.lock:
            self.messages.append(msg)

    def start(self):
        self.server = _Server((self.host, self.port), _Handler,
                              bind_and_activate=True)
        self.server.sink = self
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def snapshot(self):
        with self.lock:
            return list(self.messages)

    def wait_count(self, n, timeout, what=None):
        return harness.wait_until(lambda: len(self.snapshot()) >= n,
                                  timeout, what or "%d messages at the "
                                  "sink" % n)


class InjectClient(harness.LineClient):
    """The queue_inject protocol: ENQUEUE then the message bytes."""

    def enqueue(self, mail_from, rcpts, body, *options):
        if isinstance(body, str):
            body = body.encode()
        line = "ENQUEUE %s %s %d" % (mail_from or "<>", ",".join(rcpts),
                                     len(body))
        if options:
            line += " " + " ".join(options)
        self.send_raw(line.encode() + b"\r\n" + body)
        reply = self.read_line(timeout=30)
        if not reply.startswith("+OK "):
            raise AssertionError("enqueue failed: %s" % reply)
        return reply[4:]


def make_message(subject, body="hello\r\n", extra=""):
    return ("From: <sender@example.test>\r\nTo: <rcpt@remote.test>\r\n"
            "Subject: %s\r\n%s\r\n%s" % (subject, extra, body)).encode()


class QueueServer:
    """A petrel with the queue module (routes to the sink) and the
    queue_inject listener."""

    def __init__(self, testcase, sink_port=None, queue=None,
                 extra_modules=None, routes=None, start=True):
        self.testcase = testcase
        self.p = testcase.petrel()
        self.inject_port = harness.free_port()
        self.queue_dir = os.path.join(self.p.state_dir, "queue")
        section = {"backoff_min": "1s", "backoff_max": "2s",
                   "scan_interval": "2s",
                   "relay": {"connect_timeout": "2s",
                             "greeting_timeout": "10s",
                             "command_timeout": "10s",
                             "tls": "none"}}
        if routes is None and sink_port is not None:
            routes = {"*": {"host": "127.0.0.1", "port": sink_port,
                            "tls": "none"}}
        if routes is not None:
            section["routes"] = routes
        for key, value in (queue or {}).items():
            if key == "relay":
                section["relay"].update(value)
            else:
                section[key] = value
        self.section = section
        self.modules = {"queue": section,
                        "queue_inject": {
                            "path": test_module("queue_inject"),
                            "listen": "127.0.0.1:%d" % self.inject_port}}
        self.modules.update(extra_modules or {})
        self.p.write_config(self.p.config(modules=self.modules,
                                          **self.server_keys()))
        if start:
            self.start()

    def server_keys(self):
        level = os.environ.get("PETREL_QUEUE_LOG_LEVEL")
        return {"log": {"level": level}} if level else {}

    def write_config(self):
        self.p.write_config(self.p.config(modules=self.modules,
                                          **self.server_keys()))

    def start(self):
        self.p.proc = None
        self.p.start(wait_ports=[self.inject_port],
                     wait_log="queue: runner started")

    def inject(self):
        return InjectClient(self.inject_port)

    def enqueue(self, mail_from, rcpts, body, *options):
        with self.inject() as c:
            return c.enqueue(mail_from, rcpts, body, *options)

    def queued_ids(self):
        try:
            return sorted(os.listdir(os.path.join(self.queue_dir, "msg")))
        except FileNotFoundError:
            return []

    def petrelctl(self, *args, timeout=30):
        return harness.run([PETRELCTL, "-c", self.p.conf_path, "queue"] +
                           list(args), timeout=timeout)

    def wait_empty(self, timeout):
        return harness.wait_until(lambda: not self.queued_ids(), timeout,
                                  "an empty queue")
