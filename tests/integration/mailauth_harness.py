# SPDX-License-Identifier: MIT
"""Helpers for the SPF and DMARC integration tests: a dnsmasq serving a
small zone (TXT, A/AAAA, MX records) on a free loopback port, and readers
for the header fields of stored messages.

dnsmasq comes from Debian's dnsmasq-base package (the program without a
system service). Names under the zones given as `local` that have no
record are NXDOMAIN; any other name is REFUSED (no upstream), which the
resolver reports as a temporary failure.
"""

import os
import re
import shutil
import subprocess
import tempfile

import harness

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


def have_dnsmasq():
    return os.path.exists(DNSMASQ)


class Dns:
    """dnsmasq on 127.0.0.1:PORT with the records given.

    txt:   {name: text or [text, ...]} (several texts: several records)
    hosts: {name: [address, ...]} (A and AAAA)
    mx:    {domain: [(preference, exchange), ...]}
    local: zones answered here (NXDOMAIN for unknown names)
    """

    def __init__(self, txt=None, hosts=None, mx=None,
                 local=("example.org", "example.net", "example.test")):
        self.port = harness.free_port()
        self.dir = tempfile.mkdtemp(prefix="petrel-mailauth-dns-")
        args = [DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts",
                "--conf-file=/dev/null", "--pid-file=",
                "--port=%d" % self.port, "--listen-address=127.0.0.1",
                "--bind-interfaces", "--log-queries", "--log-facility=-",
                "--local-ttl=1"]
        for zone in local:
            args.append("--local=/%s/" % zone)
        for name, texts in (txt or {}).items():
            if isinstance(texts, str):
                texts = [texts]
            for text in texts:
                if "," in text:
                    raise ValueError("dnsmasq splits TXT data at commas")
                # One record of character-strings of at most 255 bytes.
                parts = [text[i:i + 250] for i in range(0, len(text), 250)]
                args.append("--txt-record=%s,%s" % (name, ",".join(parts)))
        for name, addrs in (hosts or {}).items():
            args.append("--host-record=%s,%s" % (name, ",".join(addrs)))
        for name, exchanges in (mx or {}).items():
            for pref, host in exchanges:
                args.append("--mx-host=%s,%s,%d" % (name, host, pref))
        if harness.IS_ROOT:
            args += ["--user=nobody", "--group=nogroup"]
        self.log_path = os.path.join(self.dir, "dnsmasq.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=self.log,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            harness.wait_port(self.port, proc=self.proc)
        except AssertionError:
            self.stop()
            raise

    @property
    def server(self):
        return "127.0.0.1:%d" % self.port

    def queries(self):
        """The names dnsmasq was asked, in order (from its log)."""
        with open(self.log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        return re.findall(r"query\[(\w+)\] (\S+) from", text)

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


def header_fields(stored, name):
    """Values of the header fields called name in stored (bytes), in
    order, unfolded and stripped."""
    head = stored.split(b"\r\n\r\n", 1)[0]
    out = []
    for field in re.split(rb"\r\n(?![ \t])", head):
        if field.lower().startswith(name.lower().encode() + b":"):
            value = field.split(b":", 1)[1]
            value = re.sub(rb"\r\n[ \t]+", b" ", value)
            out.append(value.strip().decode("utf-8", "replace"))
    return out


def message(sender, subject, body=b"Hello.\r\n", extra=b""):
    """A small message From: sender."""
    return ("From: Someone <%s>\r\n"
            "To: alice@example.test\r\n"
            "Subject: %s\r\n"
            "Date: Mon, 01 Jan 2024 12:00:00 +0000\r\n"
            "Message-ID: <%s@example.org>\r\n"
            % (sender, subject, re.sub(r"\W", ".", subject))).encode() + \
        extra + b"\r\n" + body
