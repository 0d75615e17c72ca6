# SPDX-License-Identifier: MIT
"""Helpers for the policy filter tests (filter_dnsbl, filter_ratelimit,
filter_greylist): an SMTP client that connects from a chosen loopback
address (every 127.0.0.0/8 address is local on Linux, so one test can
play many clients), and a petrel with the smtp module and filters.

The harness itself connects from 127.0.0.1 to see that a port is open:
tests keep 127.0.0.1 out of their counts (whitelist) and act as other
127.x addresses."""

import grp
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile

import harness
from smtp_harness import SmtpClient, SmtpServer


class SourceClient(SmtpClient):
    """SmtpClient from a given source address; reads the greeting (any
    code) into self.greeting."""

    def __init__(self, port, source="127.0.0.1", host="127.0.0.1",
                 timeout=harness.IO_TIMEOUT, check_enhanced=True):
        self.check_enhanced = check_enhanced
        self.replies = []
        self.timeout = timeout
        self.buf = b""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.bind((source, 0))
            self.sock.connect((host, port))
        except OSError:
            self.sock.close()
            raise
        self.greeting = self.reply(kind="greeting")


def policy_server(testcase, filters, modules, workers=1, smtp=None,
                  roles=("mx",), server=None, listen_extra=None, start=True):
    """A petrel (started unless told not to): smtp on the given roles
    with `filters`, passwd, maildir, and the extra `modules` sections."""
    section = {"filters": filters}
    section.update(smtp or {})
    return SmtpServer(testcase, roles=roles, workers=workers, smtp=section,
                      extra_modules=modules, server=server,
                      listen_extra=listen_extra, start=start)


def restart(srv):
    """Stop petrel (SIGTERM, workers exit cleanly) and start it again on
    the same config and state directory."""
    srv.p.stop()
    srv.p.proc = None
    srv.start()


def ipv6_loopback():
    """Whether ::1 can be bound here."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# ------------------------------------------------------------- dnsmasq

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


def free_dns_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(100):
        port = harness.free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port for DNS")


class Dnsmasq:
    """dnsmasq on 127.0.0.1:port answering for the `local` zones (names
    not listed there are NXDOMAIN) with the records in `records`
    (dnsmasq options such as "--host-record=NAME,ADDR"). Stopped by the
    test's cleanup. Queries are logged to self.log_path."""

    def __init__(self, testcase, local, records):
        if not os.path.exists(DNSMASQ):
            raise AssertionError("dnsmasq is not installed "
                                 "(apt-get install dnsmasq-base)")
        self.port = free_dns_port()
        self.dir = tempfile.mkdtemp(prefix="petrel-dnsmasq-")
        self.log_path = os.path.join(self.dir, "dnsmasq.log")
        args = [DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts",
                "--conf-file=/dev/null", "--pid-file=",
                "--port=%d" % self.port, "--listen-address=127.0.0.1",
                "--bind-interfaces", "--log-queries", "--log-facility=-",
                "--local-ttl=300"]
        args += ["--local=/%s/" % zone for zone in local]
        args += list(records)
        if harness.IS_ROOT:
            nobody = pwd.getpwnam("nobody")
            args += ["--user=nobody",
                     "--group=" + grp.getgrgid(nobody.pw_gid).gr_name]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=self.log,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        testcase.addCleanup(self.stop)
        harness.wait_port(self.port, proc=self.proc)

    @property
    def server(self):
        return "127.0.0.1:%d" % self.port

    def queries(self, name):
        """How many queries for name dnsmasq saw."""
        with open(self.log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        return len(re.findall(r"query\[\w+\] %s from" % re.escape(name),
                              text))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
