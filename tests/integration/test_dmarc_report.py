# SPDX-License-Identifier: MIT
"""petrelctl dmarc report: a day of the dmarc module's report data in,
RFC 7489 aggregate report messages out (.eml files, or SMTP to a sink),
with the external-destination rule checked against a dnsmasq."""

import base64
import email
import email.policy
import gzip
import json
import os
import shutil
import signal
import subprocess
import tempfile
import unittest
import xml.etree.ElementTree as ET

import harness
from queue_harness import PETRELCTL, SmtpSink
from relay_harness import dnsmasq_path

DAY = "2024-03-01"
BEGIN = 1709251200
END = BEGIN + 86399
HOST = "mx.rep.test"

RUA1 = "mailto:agg@example.test,mailto:ext@reports.other.test"
RUA2 = "mailto:agg@example.test,mailto:x@reports.example.test"
RUA3 = ("mailto:small@second.test!10,mailto:big@second.test!10m,"
        "https://r.second.test/dmarc")
HOSTILE = "<b>&amp;\"'evil"


def line(ip, policy_domain, rua, header_from=None, disposition="none",
         spf="pass", spf_aligned=True, dkim="pass", dkim_aligned=True,
         p="reject", sampled_out=False):
    """One line as the dmarc module writes it."""
    rec = {"time": BEGIN + 3600, "source_ip": ip,
           "header_from": header_from or policy_domain,
           "envelope_from": "bounce@mail." + policy_domain,
           "policy_domain": policy_domain, "message": "6B09BEE80356D1",
           "policy": {"p": p, "sp": p, "pct": 100, "adkim": "r",
                      "aspf": "r", "fo": "0", "ri": 86400, "rua": rua},
           "dmarc": "pass" if spf_aligned or dkim_aligned else "fail",
           "disposition": disposition, "sampled_out": sampled_out,
           "spf": {"result": spf, "domain": "mail." + policy_domain,
                   "scope": "mfrom", "aligned": spf_aligned},
           "dkim": []}
    if dkim is not None:
        rec["dkim"].append({"result": dkim, "domain": policy_domain,
                            "selector": "s1", "aligned": dkim_aligned})
    return json.dumps(rec, separators=(",", ":"))


def day_lines():
    lines = []
    # example.test, RUA1: a repeated passing source, failures, a hostile
    # From domain.
    lines += [line("192.0.2.1", "example.test", RUA1)] * 3
    lines += [line("198.51.100.7", "example.test", RUA1,
                   disposition="reject", spf="fail", spf_aligned=False,
                   dkim="fail", dkim_aligned=False)] * 2
    lines.append(line("192.0.2.1", "example.test", RUA1,
                      disposition="quarantine", spf="softfail",
                      spf_aligned=False, dkim=None, dkim_aligned=False))
    lines.append(line("203.0.113.9", "example.test", RUA1,
                      header_from=HOSTILE, disposition="reject",
                      spf="fail", spf_aligned=False, dkim=None,
                      dkim_aligned=False))
    # example.test with another rua: its own report.
    lines += [line("192.0.2.44", "example.test", RUA2)] * 4
    # second.test: one destination too small, one fine, one not mailto.
    lines += [line("2001:db8::25", "second.test", RUA3, p="none")] * 2
    # Malformed: not JSON, cut short, a policy domain that would break
    # a header, an impossible address.
    lines.append("this is not json")
    lines.append(line("192.0.2.1", "example.test", RUA1)[:60])
    lines.append(line("192.0.2.1", "evil.test\r\nBcc: x@evil.test", RUA1))
    lines.append(line("999.1.1.1", "example.test", RUA1))
    return lines


class TxtDns:
    """dnsmasq on 127.0.0.1:PORT answering for *.test with the TXT
    records given (name -> text), NXDOMAIN for other .test names."""

    def __init__(self, testcase, txt):
        exe = dnsmasq_path()
        if exe is None:
            raise AssertionError("dnsmasq not installed (apt-get install "
                                 "dnsmasq-base)")
        self.port = harness.free_port()
        args = [exe, "--no-daemon", "-C", "/dev/null", "--no-resolv",
                "--no-hosts", "--port=%d" % self.port,
                "--listen-address=127.0.0.1", "--bind-interfaces",
                "--pid-file=", "--local=/test/", "--log-facility=-",
                "--log-queries"]
        if harness.IS_ROOT:
            args.append("--user=nobody")
        for name, text in txt.items():
            # No quotes: only dnsmasq's config file parser strips them.
            args.append('--txt-record=%s,%s' % (name, text))
        fd, self.log_path = tempfile.mkstemp(prefix="petrel-dnsmasq-")
        self._log = os.fdopen(fd, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=self._log,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        testcase.addCleanup(self.stop)
        harness.wait_until(lambda: b"started" in self.log()
                           or self.proc.poll() is not None, 10,
                           "dnsmasq to start")
        if self.proc.poll() is not None:
            raise AssertionError("dnsmasq did not start: %s" % self.log())

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read()

    def stop(self):
        if self._log.closed:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        os.unlink(self.log_path)


def parse_message(data):
    """(message, XML root, attachment file name) of a report message."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    parts = list(msg.iter_attachments())
    assert len(parts) == 1, "one attachment, got %d" % len(parts)
    att = parts[0]
    assert att.get_content_type() == "application/gzip"
    assert att["Content-Transfer-Encoding"] == "base64"
    xml = gzip.decompress(att.get_content())
    return msg, ET.fromstring(xml), att.get_filename()


def records(root):
    """{(source_ip, disposition, header_from): count}."""
    out = {}
    for rec in root.findall("record"):
        key = (rec.findtext("row/source_ip"),
               rec.findtext("row/policy_evaluated/disposition"),
               rec.findtext("identifiers/header_from"))
        assert key not in out, "row %r twice" % (key,)
        out[key] = int(rec.findtext("row/count"))
    return out


class DmarcReportTest(harness.PetrelTestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="petrel-dmarc-report-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.state = os.path.join(self.dir, "state")
        self.data = os.path.join(self.state, "dmarc")
        self.out = os.path.join(self.dir, "out")
        os.makedirs(self.data)
        os.mkdir(self.out)
        self.conf = os.path.join(self.dir, "petrel.json")
        with open(self.conf, "w") as f:
            json.dump({"server": {"hostname": HOST,
                                  "state_dir": self.state},
                       "modules": {"dmarc": {}}}, f)
        self.write_day(day_lines())

    def write_day(self, lines, day=DAY):
        with open(os.path.join(self.data, day + ".jsonl"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def ctl(self, *args):
        return harness.run([PETRELCTL, "-c", self.conf, "dmarc", "report",
                            "--day", DAY] + list(args), timeout=60)

    def emls(self):
        out = {}
        for name in sorted(os.listdir(self.out)):
            self.assertRegex(name, r"^[0-9a-f.]+\.eml$")
            with open(os.path.join(self.out, name), "rb") as f:
                msg, root, fname = parse_message(f.read())
            out.setdefault(msg["To"], []).append((msg, root, fname))
        return out

    def check_example_report(self, msg, root, fname):
        self.assertEqual(fname, "%s!example.test!%d!%d.xml.gz"
                         % (HOST, BEGIN, END))
        meta = root.find("report_metadata")
        self.assertEqual(meta.findtext("org_name"), "Rep & Co <x>")
        self.assertEqual(meta.findtext("email"), "dmarc@rep.test")
        self.assertEqual(meta.findtext("date_range/begin"), str(BEGIN))
        self.assertEqual(meta.findtext("date_range/end"), str(END))
        rid = meta.findtext("report_id")
        self.assertTrue(rid)
        subject = " ".join(str(msg["Subject"]).split())
        self.assertEqual(subject, "Report Domain: example.test Submitter: "
                         "%s Report-ID: <%s@%s>" % (HOST, rid, HOST))
        self.assertEqual(msg["From"], "dmarc@rep.test")
        self.assertEqual(msg.get_content_type(), "multipart/mixed")
        self.assertIsNotNone(msg["Date"])
        self.assertIsNotNone(msg["Message-ID"])
        pol = root.find("policy_published")
        self.assertEqual(pol.findtext("domain"), "example.test")
        self.assertEqual(pol.findtext("p"), "reject")
        self.assertEqual(pol.findtext("pct"), "100")
        return rid

    def test_out_files(self):
        r = self.ctl("--out", self.out, "--no-verify-external",
                     "--org-name", "Rep & Co <x>", "--email",
                     "dmarc@rep.test")
        self.assertExit(r, 0)
        self.assertIn("4 malformed line(s) skipped", r.stderr)
        self.assertIn("small@second.test: skipped, the report", r.stdout)
        self.assertIn("over its size limit (10)", r.stdout)
        self.assertIn("1 rua URI(s) not used", r.stdout)
        self.assertIn("3 report(s), 5 message(s) written, 1 skipped, "
                      "0 failed", r.stdout)
        got = self.emls()
        self.assertEqual(len(got["agg@example.test"]), 2)
        self.assertEqual(sorted(got), ["agg@example.test", "big@second.test",
                                       "ext@reports.other.test",
                                       "x@reports.example.test"])
        # RUA1's report, the same to both of its destinations.
        by_rid = {}
        for to in ("agg@example.test", "ext@reports.other.test",
                   "x@reports.example.test"):
            for msg, root, fname in got[to]:
                rid = self.check_example_report(msg, root, fname)
                by_rid.setdefault(rid, []).append((to, records(root)))
        self.assertEqual(len(by_rid), 2, "two reports for example.test")
        for rid, copies in by_rid.items():
            tos = sorted(to for to, _ in copies)
            recs = copies[0][1]
            self.assertTrue(all(c[1] == recs for c in copies))
            if "ext@reports.other.test" in tos:
                self.assertEqual(tos, ["agg@example.test",
                                       "ext@reports.other.test"])
                self.assertEqual(recs, {
                    ("192.0.2.1", "none", "example.test"): 3,
                    ("192.0.2.1", "quarantine", "example.test"): 1,
                    ("198.51.100.7", "reject", "example.test"): 2,
                    ("203.0.113.9", "reject", HOSTILE): 1,
                })
            else:
                self.assertEqual(tos, ["agg@example.test",
                                       "x@reports.example.test"])
                self.assertEqual(recs, {
                    ("192.0.2.44", "none", "example.test"): 4})
        # The whole XML of RUA1's report: evaluation and auth results.
        msg, root, _ = got["ext@reports.other.test"][0]
        for rec in root.findall("record"):
            ip = rec.findtext("row/source_ip")
            ev = rec.find("row/policy_evaluated")
            auth = rec.find("auth_results")
            self.assertEqual(rec.findtext("identifiers/envelope_from"),
                             "mail.example.test")
            self.assertEqual(auth.findtext("spf/domain"),
                             "mail.example.test")
            self.assertEqual(auth.findtext("spf/scope"), "mfrom")
            if ip == "198.51.100.7":
                self.assertEqual(ev.findtext("dkim"), "fail")
                self.assertEqual(ev.findtext("spf"), "fail")
                self.assertEqual(auth.findtext("dkim/result"), "fail")
                self.assertEqual(auth.findtext("dkim/selector"), "s1")
            elif ev.findtext("disposition") == "none":
                self.assertEqual(ev.findtext("dkim"), "pass")
                self.assertEqual(ev.findtext("spf"), "pass")
                self.assertEqual(auth.findtext("dkim/domain"),
                                 "example.test")
                self.assertEqual(auth.findtext("spf/result"), "pass")
            elif ip == "192.0.2.1":
                self.assertIsNone(auth.find("dkim"))
                self.assertEqual(auth.findtext("spf/result"), "softfail")
        # second.test: IPv6 source, p=none, to the destination without a
        # size problem.
        msg, root, fname = got["big@second.test"][0]
        self.assertEqual(fname, "%s!second.test!%d!%d.xml.gz"
                         % (HOST, BEGIN, END))
        self.assertEqual(records(root),
                         {("2001:db8::25", "none", "second.test"): 2})
        self.assertEqual(root.findtext("policy_published/p"), "none")
        # The attachment's base64 lines are at most 76 characters and
        # every line ends in CRLF.
        for name in os.listdir(self.out):
            with open(os.path.join(self.out, name), "rb") as f:
                data = f.read()
            self.assertNotIn(b"\n", data.replace(b"\r\n", b""))
            body = data.split(b"filename=", 1)[1].split(b"\r\n\r\n", 1)[1]
            b64 = body.split(b"\r\n\r\n--", 1)[0]
            for ln in b64.split(b"\r\n"):
                self.assertLessEqual(len(ln), 76)
            base64.b64decode(b64.replace(b"\r\n", b""), validate=True)
        # The hostile value is escaped in the raw XML too.
        msg, root, _ = got["ext@reports.other.test"][0]
        raw = gzip.decompress(
            next(msg.iter_attachments()).get_content()).decode()
        self.assertIn("<header_from>&lt;b&gt;&amp;amp;&quot;&apos;evil"
                      "</header_from>", raw)

    def test_defaults_from_config(self):
        r = self.ctl("--out", self.out, "--no-verify-external")
        self.assertExit(r, 0)
        got = self.emls()
        msg, root, _ = got["big@second.test"][0]
        self.assertEqual(msg["From"], "postmaster@" + HOST)
        self.assertEqual(root.findtext("report_metadata/org_name"), HOST)
        self.assertEqual(root.findtext("report_metadata/email"),
                         "postmaster@" + HOST)
        # Each run's report ids are new.
        ids = {root.findtext("report_metadata/report_id")
               for v in got.values() for _, root, _ in v}
        shutil.rmtree(self.out)
        os.mkdir(self.out)
        self.assertExit(self.ctl("--out", self.out,
                                 "--no-verify-external"), 0)
        ids2 = {root.findtext("report_metadata/report_id")
                for v in self.emls().values() for _, root, _ in v}
        self.assertEqual(len(ids), 3)
        self.assertEqual(len(ids2), 3)
        self.assertFalse(ids & ids2)

    def test_dry_run_and_usage(self):
        r = self.ctl("--dry-run", "--no-verify-external")
        self.assertExit(r, 0)
        self.assertIn("would send report", r.stdout)
        self.assertEqual(os.listdir(self.out), [])
        self.assertExit(self.ctl(), 2)
        self.assertExit(self.ctl("--out", self.out, "--send", "x:1"), 2)
        self.assertExit(self.ctl("--bogus"), 2)
        r = harness.run([PETRELCTL, "-c", self.conf, "dmarc", "report",
                         "--day", "2024-13-01", "--out", self.out])
        self.assertExit(r, 1)
        r = harness.run([PETRELCTL, "-c", self.conf, "dmarc", "report",
                         "--day", "2024-02-01", "--out", self.out,
                         "--no-verify-external"])
        self.assertExit(r, 0)
        self.assertIn("no report data", r.stdout)
        r = harness.run([PETRELCTL, "-h"])
        self.assertIn("dmarc report", r.stdout)

    def test_hostile_file(self):
        """Binary junk, a huge line, many malformed lines: never a crash,
        the good line still reported."""
        junk = [bytes(range(256)).decode("latin-1"), "x" * 100000, "{",
                "[" * 5000, '{"policy_domain":' * 100, "\0\0\0"]
        good = line("192.0.2.1", "example.test", "mailto:a@example.test")
        self.write_day(junk * 20 + [good])
        r = self.ctl("--out", self.out, "--no-verify-external")
        self.assertExit(r, 0)
        # The bytes 0..255 hold a newline: 7 lines per round.
        self.assertIn("140 malformed line(s) skipped", r.stderr)
        got = self.emls()
        self.assertEqual(list(got), ["a@example.test"])
        _, root, _ = got["a@example.test"][0]
        self.assertEqual(records(root),
                         {("192.0.2.1", "none", "example.test"): 1})

    def test_send_to_sink(self):
        sink = SmtpSink().start()
        self.addCleanup(sink.stop)
        r = self.ctl("--send", "127.0.0.1:%d" % sink.port,
                     "--no-verify-external", "--email", "dmarc@rep.test",
                     "--org-name", "Rep & Co <x>")
        self.assertExit(r, 0)
        self.assertIn("5 message(s) sent", r.stdout)
        msgs = sink.snapshot()
        self.assertEqual(sorted(m.rcpts[0] for m in msgs),
                         ["agg@example.test", "agg@example.test",
                          "big@second.test", "ext@reports.other.test",
                          "x@reports.example.test"])
        for m in msgs:
            self.assertEqual(m.mail_from, "dmarc@rep.test")
            self.assertEqual(len(m.rcpts), 1)
            msg, root, fname = parse_message(m.data)
            self.assertEqual(msg["To"], m.rcpts[0])
            if m.rcpts[0] != "big@second.test":
                self.check_example_report(msg, root, fname)
        # A refusing server: the failure is reported, exit 1.
        bad = SmtpSink(policy=lambda stage, f, a:
                       "550 5.1.1 no such user" if stage == "rcpt"
                       else None).start()
        self.addCleanup(bad.stop)
        r = self.ctl("--send", "127.0.0.1:%d" % bad.port,
                     "--no-verify-external")
        self.assertExit(r, 1)
        self.assertIn("550 5.1.1 no such user", r.stderr)
        self.assertEqual(bad.snapshot(), [])
        # Nobody listening.
        r = self.ctl("--send", "127.0.0.1:%d" % harness.free_port(),
                     "--no-verify-external")
        self.assertExit(r, 1)
        self.assertIn("connect to", r.stderr)

    def test_send_large(self):
        """200 rows in one report over SMTP: the attachment arrives
        whole and counts."""
        sink = SmtpSink().start()
        self.addCleanup(sink.stop)
        self.write_day([line("192.0.2.%d" % i, "example.test",
                             "mailto:a@example.test") for i in range(200)])
        r = self.ctl("--send", "127.0.0.1:%d" % sink.port,
                     "--no-verify-external")
        self.assertExit(r, 0)
        msgs = sink.snapshot()
        self.assertEqual(len(msgs), 1)
        _, root, _ = parse_message(msgs[0].data)
        self.assertEqual(len(records(root)), 200)

    def test_external_destination(self):
        # Authorized: the TXT record exists at the rua domain.
        dns = TxtDns(self, {
            "example.test._report._dmarc.reports.other.test": "v=DMARC1"})
        r = self.ctl("--out", self.out, "--resolver",
                     "127.0.0.1:%d" % dns.port)
        self.assertExit(r, 0)
        got = self.emls()
        self.assertIn("ext@reports.other.test", got)
        # Same organizational domain: no lookup needed.
        self.assertIn("x@reports.example.test", got)
        self.assertIn(b"example.test._report._dmarc.reports.other.test",
                      dns.log())
        self.assertNotIn(b"_report._dmarc.reports.example.test", dns.log())
        dns.stop()
        # Not authorized: no record (NXDOMAIN), or a record that is not
        # DMARC1.
        for txt in ({}, {"example.test._report._dmarc.reports.other.test":
                         "v=spf1 -all"}):
            shutil.rmtree(self.out)
            os.mkdir(self.out)
            dns = TxtDns(self, txt)
            r = self.ctl("--out", self.out, "--resolver",
                         "127.0.0.1:%d" % dns.port)
            self.assertExit(r, 0)
            self.assertIn("ext@reports.other.test: skipped, external "
                          "destination without authorization", r.stdout)
            got = self.emls()
            self.assertNotIn("ext@reports.other.test", got)
            self.assertEqual(sorted(got), ["agg@example.test",
                                           "big@second.test",
                                           "x@reports.example.test"])
            dns.stop()


if __name__ == "__main__":
    unittest.main()
