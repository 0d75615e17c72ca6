# SPDX-License-Identifier: MIT
"""Relay: TLS towards the remote (policies none, may, encrypt, verify with
a test CA), STARTTLS injection by a hostile server (SECURITY.md #2,
client side), a multi-line reply flood (SECURITY.md #6, OpenSMTPD
CVE-2020-8794), and a smarthost route with AUTH PLAIN."""

import os
import unittest

import harness
import relay_harness as rh

DOMAIN = "remote.test"
MX = "mx.remote.test"


class TlsCase(harness.PetrelTestCase):
    def start_peer(self, cert=None, **kwargs):
        self.port, (self.peer,) = rh.peers(self, [("127.0.0.2", MX)],
                                           tls=cert, **kwargs)
        self.dns = rh.Dns(self, mx=[(DOMAIN, MX, 10)],
                          hosts={MX: "127.0.0.2"})

    def server(self, relay=None, **kwargs):
        return rh.RelayServer(self, dns=self.dns, mx_port=self.port,
                              relay=relay, **kwargs)


class PolicyTest(TlsCase):
    @classmethod
    def setUpClass(cls):
        cls.ca, issue = rh.make_ca()
        cls.good = issue(MX)
        cls.wrong_name = issue("other.remote.test")
        cls.self_signed = harness.make_cert(MX, [MX])

    def test_may_uses_tls_when_offered(self):
        self.start_peer(self.self_signed)
        s = self.server()
        s.submit(["bob@" + DOMAIN])
        m = self.peer.wait_messages(1)[0]
        self.assertTrue(m.tls)
        # RFC 3207 4.2: EHLO again after the handshake.
        self.assertEqual([c.split()[0] for c in self.peer.commands()[:4]],
                         ["EHLO", "STARTTLS", "EHLO", "MAIL"])

    def test_none_never_starts_tls(self):
        self.start_peer(self.self_signed)
        s = self.server(relay={"tls": "none"})
        s.submit(["bob@" + DOMAIN])
        m = self.peer.wait_messages(1)[0]
        self.assertFalse(m.tls)
        self.assertEqual(self.peer.commands("STARTTLS"), [])

    def test_may_falls_back_to_clear_when_tls_breaks(self):
        self.start_peer(self.self_signed, hostile="starttls_close")
        s = self.server()
        s.submit(["bob@" + DOMAIN])
        m = self.peer.wait_messages(1)[0]
        self.assertFalse(m.tls)
        self.assertEqual(len(self.peer.conns), 2)
        s.wait_status("bob@" + DOMAIN, "delivered")

    def test_verify_with_the_test_ca(self):
        self.start_peer(self.good)
        s = self.server(relay={"tls": "verify", "ca_file": self.ca})
        s.submit(["bob@" + DOMAIN])
        m = self.peer.wait_messages(1)[0]
        self.assertTrue(m.tls)
        s.wait_status("bob@" + DOMAIN, "delivered")

    def test_verify_refuses_a_certificate_for_another_name(self):
        self.start_peer(self.wrong_name)
        s = self.server(relay={"tls": "verify", "ca_file": self.ca})
        s.submit(["bob@" + DOMAIN])
        line = s.wait_status("bob@" + DOMAIN, "deferred")
        self.assertIn("4.7.5", line)
        self.assertEqual(self.peer.messages, [])
        self.assertEqual(self.peer.commands("MAIL"), [])

    def test_verify_refuses_an_unknown_issuer(self):
        self.start_peer(self.self_signed)
        s = self.server(relay={"tls": "verify", "ca_file": self.ca})
        s.submit(["bob@" + DOMAIN])
        s.wait_status("bob@" + DOMAIN, "deferred")
        self.assertEqual(self.peer.commands("MAIL"), [])

    def test_encrypt_without_verification(self):
        self.start_peer(self.self_signed)
        s = self.server(relay={"tls": "encrypt"})
        s.submit(["bob@" + DOMAIN])
        self.assertTrue(self.peer.wait_messages(1)[0].tls)

    def test_encrypt_needs_starttls(self):
        self.start_peer(None)
        s = self.server(relay={"tls": "encrypt"})
        s.submit(["bob@" + DOMAIN])
        line = s.wait_status("bob@" + DOMAIN, "deferred")
        self.assertIn("4.7.4", line)
        self.assertEqual(self.peer.commands("MAIL"), [])


class HostileTest(TlsCase):
    def test_starttls_injection_is_discarded(self):
        """The server sends "220 go\\r\\n250 injected\\r\\n" in one write:
        the line after the 220 must never be read as a reply inside TLS
        (it would answer the EHLO that follows the handshake)."""
        self.start_peer(harness.make_cert(MX, [MX]),
                        hostile="starttls_inject")
        s = self.server()
        s.submit(["bob@" + DOMAIN])
        m = self.peer.wait_messages(1)[0]
        self.assertTrue(m.tls)
        self.assertEqual(len(self.peer.conns), 1)
        self.assertEqual([c.split()[0] for c in self.peer.commands()[:4]],
                         ["EHLO", "STARTTLS", "EHLO", "MAIL"])
        line = s.wait_status("bob@" + DOMAIN, "delivered")
        self.assertIn("250 2.0.0 queued", line)
        self.assertNotIn("injected", s.p.log_text())

    def test_multi_line_reply_flood_is_bounded(self):
        self.start_peer(None, hostile="ehlo_flood")
        s = self.server()
        s.submit(["bob@" + DOMAIN])
        line = s.wait_status("bob@" + DOMAIN, "deferred")
        self.assertIn("451 4.5.0 %s[127.0.0.2]:%d: too many reply lines "
                      "during EHLO" % (MX, self.port), line)
        self.assertTrue(s.p.running())


class SmarthostTest(TlsCase):
    def setUp(self):
        cert = harness.make_cert("smart.relay.test", ["smart.relay.test"])
        self.port, (self.smart,) = rh.peers(
            self, [("127.0.0.3", "smart.relay.test")], tls=cert,
            auth={"relayuser": "s3cret pass"})
        self.dns = rh.Dns(self, hosts={"smart.relay.test": "127.0.0.3"})

    def route_server(self, password):
        pw = os.path.join(harness.tempfile.mkdtemp(prefix="petrel-pw-"),
                          "pw")
        self.addCleanup(harness.shutil.rmtree, os.path.dirname(pw), True)
        with open(pw, "w") as f:
            f.write(password + "\n")
        route = {"host": "smart.relay.test", "port": self.port,
                 "tls": "encrypt", "auth_user": "relayuser",
                 "auth_password_file": pw}
        return rh.RelayServer(self, dns=self.dns, mx_port=1,
                              queue={"routes": {"*": route}})

    def test_route_with_auth(self):
        s = self.route_server("s3cret pass")
        s.submit(["bob@anywhere.test", "carol@elsewhere.test"])
        msgs = self.smart.wait_messages(1)
        got = sorted(r for m in msgs for r in m.rcpts)
        if len(got) < 2:
            msgs = self.smart.wait_messages(2)
            got = sorted(r for m in msgs for r in m.rcpts)
        self.assertEqual(got, ["bob@anywhere.test", "carol@elsewhere.test"])
        self.assertTrue(all(m.tls and m.auth == "relayuser" for m in msgs))
        self.assertNotIn("s3cret", s.p.log_text())

    def test_route_with_bad_password_defers(self):
        s = self.route_server("wrong")
        s.submit(["bob@anywhere.test"])
        line = s.wait_status("bob@anywhere.test", "deferred")
        self.assertIn("535 5.7.8", line)
        self.assertEqual(self.smart.messages, [])
        self.assertNotIn("wrong", s.p.log_text().replace(
            "wrong version", ""))


if __name__ == "__main__":
    unittest.main()
