# SPDX-License-Identifier: MIT
"""Load test with Postfix's smtp-source (package postfix): 100 concurrent
sessions, every message arrives intact: counted, each file byte-exact
with its marker lines, each with its own queue id. Bounded to well under
two minutes (PETREL_LOAD_SCALE scales the counts, e.g. 0.25 under a slow
sanitizer build)."""

import os
import re
import shutil
import time
import unittest

import harness
from smtp_harness import SmtpServer, split_stored

SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
SCALE = float(os.environ.get("PETREL_LOAD_SCALE", "1"))
SESSIONS = 100


def message_file(path, marker, body_bytes):
    """Write a message for smtp-source -F (LF line ends; it sends CRLF,
    dot-stuffs, and ends the text with one empty line of its own) and
    return the bytes that must arrive."""
    lines = ["From: <load@example.org>", "To: <alice@example.test>",
             "Subject: load %s" % marker, "", "BEGIN %s" % marker]
    i = 0
    while sum(len(l) + 2 for l in lines) < body_bytes:
        # Leading dots exercise the stuffing on the way in.
        lines.append("%sline %06d %s" % ("." if i % 7 == 0 else "", i,
                                         "x" * 60))
        i += 1
    lines.append("END %s" % marker)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o644)
    return "".join(l + "\r\n" for l in lines + [""]).encode()


class Load(harness.PetrelTestCase):

    def setUp(self):
        if not os.access(SMTP_SOURCE, os.X_OK):
            # In CI a missing tool must not pass as a skip.
            if os.environ.get("CI"):
                self.fail("smtp-source missing: scripts/deps.sh test must "
                          "install the postfix package")
            self.skipTest("smtp-source (package postfix) is not installed")
        self.s = SmtpServer(self, workers=2, roles=("mx",),
                            listen_extra={"mx": {"max_per_ip": 10000,
                                                 "max_connections": 10000}})

    def source(self, args, count, msgfile, to="alice@example.test",
               timeout=100):
        argv = [SMTP_SOURCE, "-s", str(SESSIONS), "-m", str(count),
                "-F", msgfile, "-f", "load@example.org", "-t", to,
                "-M", "load.example.org", "-C", "5"] + args + \
            ["127.0.0.1:%d" % self.s.mx]
        start = time.monotonic()
        result = harness.run(argv, timeout=timeout)
        took = time.monotonic() - start
        self.assertEqual(result.returncode, 0,
                         "smtp-source failed: %s%s\n--- petrel log:\n%s"
                         % (result.stdout, result.stderr,
                            self.s.p.log_tail()))
        print("smtp-source %s: %d messages in %.1f s (%.0f/s)"
              % (" ".join(args) or "(one session per message)", count,
                 took, count / took))
        return took

    def check(self, user, expected, count):
        stored = self.s.messages(user)
        self.assertEqual(len(stored), count)
        ids = set()
        for m in stored:
            ret, delivered, received, rest = split_stored(m)
            self.assertEqual(ret, b"load@example.org")
            self.assertEqual(rest, expected)
            ids.add(re.search(rb" id ([0-9A-F]+)", received).group(1))
        self.assertEqual(len(ids), count, "queue ids repeat")
        if self.s.backend == "maildir":
            self.assertEqual(self.s.files(user, "tmp"), [])

    def test_100_sessions_small(self):
        count = max(SESSIONS, int(2000 * SCALE))
        path = self.s.p.path("small.txt")
        expected = message_file(path, "small-marker", 2048)
        self.source([], count, path)
        self.check("alice@example.test", expected, count)

    def test_100_sessions_reused_connections(self):
        count = max(SESSIONS, int(2000 * SCALE))
        path = self.s.p.path("reuse.txt")
        expected = message_file(path, "reuse-marker", 2048)
        self.source(["-d"], count, path, to="bob@example.test")
        self.check("bob@example.test", expected, count)

    def test_100_sessions_100k(self):
        count = max(SESSIONS, int(300 * SCALE))
        path = self.s.p.path("big.txt")
        expected = message_file(path, "big-marker", 100 * 1024)
        self.source(["-d"], count, path, to="carol@example.test")
        self.check("carol@example.test", expected, count)


if __name__ == "__main__":
    unittest.main()
