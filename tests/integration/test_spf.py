# SPDX-License-Identifier: MIT
"""The spf filter module in a real petrel: smtp + resolver + spf, with
the domains' SPF records served by dnsmasq. The client connects from
127.0.0.1, which the records allow or not.

  pass          accepted, Received-SPF: pass ... stored with the message
  fail          MAIL refused 550 5.7.23 (with the domain's exp= text)
  softfail      accepted with Received-SPF: softfail
  include chain three levels deep: pass
  11 lookups    permerror (problem="more than 10 DNS lookups")
  3 void        permerror
  DNS failure   temperror: MAIL refused 451 4.7.24
  null path     checked as postmaster@HELO
  HELO check    results of both identities in Authentication-Results
Skipped without dnsmasq."""

import os
import socket
import time
import unittest

import harness
import mailauth_harness
from mailauth_harness import Dns, header_fields, message
from smtp_harness import SmtpServer

# include:l1 ... include:l11: one lookup too many.
LIMIT_CHAIN = {"l%d.example.org" % i:
               "v=spf1 include:l%d.example.org -all" % (i + 1)
               for i in range(11)}
LIMIT_CHAIN["l11.example.org"] = "v=spf1 ip4:127.0.0.1 -all"

RECORDS = {
    "pass.example.org": "v=spf1 ip4:192.0.2.0/24 ip4:127.0.0.1 -all",
    "fail.example.org": "v=spf1 ip4:192.0.2.1 -all",
    "explain.example.org": "v=spf1 ip4:192.0.2.1 -all exp=why.example.org",
    "why.example.org": "%{i} is not one of %{d}'s mail servers",
    "soft.example.org": "v=spf1 ip4:192.0.2.1 ~all",
    "neutral.example.org": "v=spf1 ?all",
    "inc.example.org": "v=spf1 include:inc1.example.org -all",
    "inc1.example.org": "v=spf1 ip4:192.0.2.9 include:inc2.example.org ~all",
    "inc2.example.org": "v=spf1 a:host.example.org mx -all",
    "amx.example.org": "v=spf1 mx -all",
    "void.example.org": "v=spf1 a:nx1.example.org a:nx2.example.org "
                        "a:nx3.example.org +all",
    "broken.example.org": "v=spf1 ip4:127.0.0.1 -all foo=%bar",
    "two.example.org": ["v=spf1 +all", "v=spf1 -all"],
    "temp.example.org": "v=spf1 include:unanswered.example.net -all",
    "helo.example.org": "v=spf1 a -all",
    "badhelo.example.org": "v=spf1 -all",
    "softhelo.example.org": "v=spf1 ~all",
}
RECORDS.update(LIMIT_CHAIN)
HOSTS = {
    "host.example.org": ["192.0.2.77"],
    "mx1.example.org": ["127.0.0.1"],
    "helo.example.org": ["127.0.0.1"],
}
MX = {"amx.example.org": [(10, "mx1.example.org")],
      "inc2.example.org": [(10, "mx1.example.org")]}


@unittest.skipUnless(mailauth_harness.have_dnsmasq(),
                     "dnsmasq is not installed")
class Spf(harness.PetrelTestCase):

    @classmethod
    def setUpClass(cls):
        cls.dns = Dns(txt=RECORDS, hosts=HOSTS, mx=MX,
                      local=("example.org",))

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def server(self, spf=None, smtp=None):
        section = {"filters": ["spf"]}
        section.update(smtp or {})
        return SmtpServer(
            self, smtp=section,
            extra_modules={
                "resolver": {"servers": [self.dns.server],
                             "timeout": "1s", "tries": 1},
                "spf": spf or {},
            })

    def setUp(self):
        self.srv = self.server()

    def deliver(self, sender, n, helo="client.example.org"):
        c = self.srv.ehlo_client("mx", name=helo)
        r = c.send_mail(sender, ["alice@example.test"],
                        message(sender or "x@example.org", "spf %d" % n))
        self.assertEqual(r.code, 250, str(r))
        c.quit()
        return self.srv.wait_messages("alice@example.test", n)[-1]

    def mail_reply(self, sender, helo="client.example.org"):
        c = self.srv.ehlo_client("mx", name=helo)
        r = c.cmd("MAIL FROM:<%s>" % sender, timeout=30)
        c.quit()
        return r

    def test_pass_header_stored(self):
        stored = self.deliver("alice@pass.example.org", 1)
        rs = header_fields(stored, "Received-SPF")
        self.assertEqual(len(rs), 1, rs)
        self.assertEqual(
            rs[0],
            "pass (mail.example.test: domain of alice@pass.example.org "
            "designates 127.0.0.1 as permitted sender) "
            "client-ip=127.0.0.1; envelope-from=alice@pass.example.org; "
            "helo=client.example.org; receiver=mail.example.test; "
            "identity=mailfrom; mechanism=\"ip4:127.0.0.1\"")
        # Above our Received: field, with the other filter fields.
        self.assertLess(stored.index(b"Received-SPF:"),
                        stored.index(b"Received: from"))
        self.srv.p.wait_log("spf: mailfrom=<alice@pass.example.org> "
                            "ip=127.0.0.1: pass by ip4:127.0.0.1")

    def test_fail_rejected(self):
        r = self.mail_reply("bob@fail.example.org")
        self.assertEqual(r.code, 550, str(r))
        self.assertEqual(r.enhanced, "5.7.23")
        self.assertIn("fail.example.org does not allow 127.0.0.1", r.text)
        self.srv.p.wait_log("spf: mailfrom=<bob@fail.example.org> "
                            "ip=127.0.0.1: fail by -all (lookups 0, void 0) "
                            "-> reject")
        # The explanation the domain publishes, macros expanded.
        r = self.mail_reply("bob@explain.example.org")
        self.assertEqual((r.code, r.enhanced), (550, "5.7.23"), str(r))
        self.assertEqual(r.text, "5.7.23 SPF: 127.0.0.1 is not one of "
                                 "explain.example.org's mail servers")

    def test_softfail_neutral_accepted(self):
        stored = self.deliver("carol@soft.example.org", 1)
        rs = header_fields(stored, "Received-SPF")
        self.assertTrue(rs[0].startswith(
            "softfail (mail.example.test: domain of transitioning "
            "carol@soft.example.org does not designate 127.0.0.1 as "
            "permitted sender)"), rs)
        self.assertIn("mechanism=~all", rs[0])
        stored = self.deliver("x@neutral.example.org", 2)
        self.assertTrue(header_fields(stored, "Received-SPF")[0]
                        .startswith("neutral "))

    def test_include_chain(self):
        # inc -> inc1 -> inc2 (mx -> mx1 = 127.0.0.1): pass, reported as
        # the top-level include that matched.
        stored = self.deliver("dave@inc.example.org", 1)
        rs = header_fields(stored, "Received-SPF")[0]
        self.assertTrue(rs.startswith("pass "), rs)
        self.assertIn("mechanism=\"include:inc1.example.org\"", rs)
        stored = self.deliver("eve@amx.example.org", 2)
        self.assertIn("mechanism=mx",
                      header_fields(stored, "Received-SPF")[0])

    def test_lookup_limit_permerror(self):
        stored = self.deliver("x@l0.example.org", 1)
        rs = header_fields(stored, "Received-SPF")[0]
        self.assertTrue(rs.startswith("permerror "), rs)
        self.assertIn("problem=\"more than 10 DNS lookups\"", rs)
        # Evaluation stopped at the limit: l11 was never asked.
        names = [n for t, n in self.dns.queries() if t == "TXT"]
        self.assertIn("l10.example.org", names)
        self.assertNotIn("l11.example.org", names)

    def test_void_and_syntax_permerror(self):
        stored = self.deliver("x@void.example.org", 1)
        rs = header_fields(stored, "Received-SPF")[0]
        self.assertIn("problem=\"more than 2 void DNS lookups\"", rs)
        stored = self.deliver("x@broken.example.org", 2)
        self.assertTrue(header_fields(stored, "Received-SPF")[0]
                        .startswith("permerror "))
        stored = self.deliver("x@two.example.org", 3)
        rs = header_fields(stored, "Received-SPF")[0]
        self.assertIn("has 2 SPF records", rs)

    def test_none(self):
        stored = self.deliver("x@nospf.example.org", 1)
        rs = header_fields(stored, "Received-SPF")[0]
        self.assertTrue(rs.startswith(
            "none (mail.example.test: domain of x@nospf.example.org does "
            "not designate permitted sender hosts)"), rs)

    def test_temperror_tempfails(self):
        r = self.mail_reply("x@temp.example.org")
        self.assertEqual((r.code, r.enhanced), (451, "4.7.24"), str(r))
        self.assertIn("temporary error", r.text)

    def test_null_path_uses_helo(self):
        stored = self.deliver("", 1, helo="helo.example.org")
        rs = header_fields(stored, "Received-SPF")[0]
        self.assertTrue(rs.startswith("pass "), rs)
        self.assertIn("envelope-from=postmaster@helo.example.org", rs)
        self.assertIn("identity=mailfrom", rs)
        r = self.mail_reply("", helo="badhelo.example.org")
        self.assertEqual((r.code, r.enhanced), (550, "5.7.23"), str(r))

    def test_submission_not_checked(self):
        c = self.srv.auth_client("submission")
        r = c.send_mail("alice@fail.example.org", ["bob@example.test"],
                        message("alice@fail.example.org", "sub"))
        self.assertEqual(r.code, 250, str(r))
        c.quit()
        stored = self.srv.wait_messages("bob@example.test", 1)[-1]
        self.assertEqual(header_fields(stored, "Received-SPF"), [])


@unittest.skipUnless(mailauth_harness.have_dnsmasq(),
                     "dnsmasq is not installed")
class SpfConfigured(harness.PetrelTestCase):
    """Actions from the config, the HELO check and the
    Authentication-Results field built from the filter results."""

    @classmethod
    def setUpClass(cls):
        cls.dns = Dns(txt=RECORDS, hosts=HOSTS, mx=MX,
                      local=("example.org",))

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def test_actions_helo_and_results(self):
        srv = SmtpServer(
            self, smtp={"filters": ["spf"], "trace_header": True},
            extra_modules={
                "resolver": {"servers": [self.dns.server]},
                "spf": {"check_helo": True, "received_spf": False,
                        "actions": {"fail": "quarantine",
                                    "softfail": "reject",
                                    "permerror": "reject"}},
            })
        c = srv.ehlo_client("mx", name="helo.example.org")
        r = c.send_mail("a@fail.example.org", ["alice@example.test"],
                        message("a@fail.example.org", "quarantined"))
        self.assertEqual(r.code, 250, str(r))
        c.expect("MAIL FROM:<a@soft.example.org>", 550, "5.7.23")
        c.expect("MAIL FROM:<a@l0.example.org>", 550, "5.7.24",
                 timeout=30)
        c.quit()
        # fail -> quarantine: stored in the Quarantine folder.
        qdir = srv.maildir("alice@example.test") + "/.Quarantine/new"
        files = harness.wait_until(
            lambda: os.path.isdir(qdir) and os.listdir(qdir), 10,
            "quarantined message")
        with open(qdir + "/" + files[0], "rb") as f:
            stored = f.read()
        self.assertEqual(header_fields(stored, "Received-SPF"), [])
        ar = header_fields(stored, "Authentication-Results")
        self.assertEqual(len(ar), 1, ar)
        self.assertEqual(ar[0], "mail.example.test; "
                                "spf=pass smtp.helo=helo.example.org; "
                                "spf=fail smtp.mailfrom=a@fail.example.org")

        # The actions apply to the HELO identity at HELO/EHLO.
        c = srv.connect("mx")
        r = c.expect("EHLO softhelo.example.org", 550, "5.7.23")
        self.assertIn("softhelo.example.org does not allow 127.0.0.1",
                      r.text)
        c.ehlo("helo.example.org")
        c.quit()
        srv.p.wait_log("spf: helo=<postmaster@softhelo.example.org> "
                       "ip=127.0.0.1: softfail by ~all")

    def test_timeout_is_temperror(self):
        # A name server that never answers: the check gives up after the
        # spf timeout (the lookup is cancelled) with temperror.
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        self.addCleanup(silent.close)
        srv = SmtpServer(
            self, smtp={"filters": ["spf"]},
            extra_modules={
                "resolver": {"servers": ["127.0.0.1:%d"
                                         % silent.getsockname()[1]],
                             "timeout": "10s"},
                "spf": {"timeout": "1s"},
            })
        c = srv.ehlo_client("mx")
        start = time.monotonic()
        r = c.cmd("MAIL FROM:<a@pass.example.org>", timeout=15)
        self.assertEqual((r.code, r.enhanced), (451, "4.7.24"), str(r))
        self.assertIn("no answer within 1000 ms", r.text)
        self.assertLess(time.monotonic() - start, 5)
        # The session goes on; RSET and QUIT work.
        c.expect("RSET", 250, "2.0.0")
        c.quit()
        srv.p.wait_log("pass.example.org> ip=127.0.0.1: temperror: no "
                       "answer within 1000 ms")


if __name__ == "__main__":
    unittest.main()
