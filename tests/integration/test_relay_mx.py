# SPDX-License-Identifier: MIT
"""Relay: where mail goes. dnsmasq serves the test domains; SMTP peers on
127.0.0.x are their MX hosts. Covers MX preference and fallback, random
order among equal preferences, implicit MX, null MX (RFC 7505), a domain
that does not exist, and mail that would loop back to ourselves."""

import unittest

import harness
import relay_harness as rh


class MxOrderTest(harness.PetrelTestCase):
    """MX preference order, and fallback to the next MX."""

    def setUp(self):
        self.port, (self.mx1, self.mx2) = rh.peers(
            self, [("127.0.0.2", "mx1.pref.test"),
                   ("127.0.0.3", "mx2.pref.test")])

    def dns(self, **extra):
        return rh.Dns(self, mx=[("pref.test", "mx1.pref.test", 10),
                                ("pref.test", "mx2.pref.test", 20)],
                      hosts={"mx1.pref.test": "127.0.0.2",
                             "mx2.pref.test": "127.0.0.3",
                             "mx3.pref.test": "127.0.0.4"}, **extra)

    def test_preferred_mx_gets_the_mail(self):
        s = rh.RelayServer(self, dns=self.dns(), mx_port=self.port)
        for i in range(3):
            s.submit(["user%d@pref.test" % i])
        msgs = self.mx1.wait_messages(3)
        self.assertEqual(sorted(r for m in msgs for r in m.rcpts),
                         ["user0@pref.test", "user1@pref.test",
                          "user2@pref.test"])
        self.assertEqual(self.mx2.messages, [])
        for i in range(3):
            line = s.wait_status("user%d@pref.test" % i, "delivered")
            self.assertIn("relay=mx1.pref.test[127.0.0.2]:%d" % self.port,
                          line)
        # What went out is what came in, with Petrel's Received on top.
        self.assertTrue(msgs[0].data.startswith(b"Received: from "))
        self.assertIn(b"\r\n.leading dot\r\n..two dots\r\n",
                      msgs[0].data)
        self.assertFalse(any(m.bare_newline for m in msgs))
        self.assertEqual(msgs[0].helo, "mail.example.test")

    def test_fallback_to_next_mx_when_the_first_is_down(self):
        self.mx1.stop()
        s = rh.RelayServer(self, dns=self.dns(), mx_port=self.port)
        s.submit(["bob@pref.test"])
        msgs = self.mx2.wait_messages(1)
        self.assertEqual(msgs[0].rcpts, ["bob@pref.test"])
        line = s.wait_status("bob@pref.test", "delivered")
        self.assertIn("relay=mx2.pref.test[127.0.0.3]", line)

    def test_fallback_on_4xx_greeting_and_mail(self):
        """A 4xx at the greeting or to MAIL sends the mail to the next
        MX at once (RFC 5321 5.1)."""
        self.mx1.set_replies("CONNECT", ["421 4.3.2 busy"])
        # A new connection per message, so that mx1 is asked again.
        s = rh.RelayServer(self, dns=self.dns(), mx_port=self.port,
                           relay={"reuse_messages": 0})
        s.submit(["bob@pref.test"])
        self.mx2.wait_messages(1)
        s.wait_status("bob@pref.test", "delivered")

        self.mx1.set_replies("MAIL", ["452 4.3.1 full"])
        s.submit(["carol@pref.test"])
        msgs = self.mx2.wait_messages(2)
        self.assertEqual(msgs[1].rcpts, ["carol@pref.test"])
        self.assertEqual(self.mx1.messages, [])
        self.assertEqual(len(self.mx1.commands("MAIL")), 1)

    def test_every_mx_down_defers(self):
        self.mx1.stop()
        self.mx2.stop()
        s = rh.RelayServer(self, dns=self.dns(), mx_port=self.port)
        s.submit(["bob@pref.test"])
        line = s.wait_status("bob@pref.test", "deferred")
        self.assertIn("451 4.4.1", line)


class EqualPreferenceTest(harness.PetrelTestCase):
    def test_equal_preferences_are_shuffled(self):
        """RFC 5321 5.1: MX hosts of equal preference are tried in
        random order, so the load spreads over them."""
        port, peers = rh.peers(self, [("127.0.0.2", "a.eq.test"),
                                      ("127.0.0.3", "b.eq.test")])
        dns = rh.Dns(self, mx=[("eq.test", "a.eq.test", 10),
                               ("eq.test", "b.eq.test", 10)],
                     hosts={"a.eq.test": "127.0.0.2",
                            "b.eq.test": "127.0.0.3"})
        # One connection per message: reuse would pin one host.
        s = rh.RelayServer(self, dns=dns, mx_port=port,
                           relay={"reuse_messages": 0})
        n = 24
        for i in range(n):
            s.submit(["u%d@eq.test" % i])
        harness.wait_until(
            lambda: len(peers[0].messages) + len(peers[1].messages) >= n,
            30, "%d messages" % n)
        # Both get some: the chance that 24 fair draws all land on one
        # side is 2 in 16 million.
        self.assertGreater(len(peers[0].messages), 0)
        self.assertGreater(len(peers[1].messages), 0)


class DestinationTest(harness.PetrelTestCase):
    def test_implicit_mx(self):
        """No MX record: the domain's own address is its mail host."""
        port, (peer,) = rh.peers(self, [("127.0.0.5", "implicit.test")])
        dns = rh.Dns(self, hosts={"implicit.test": "127.0.0.5"})
        s = rh.RelayServer(self, dns=dns, mx_port=port)
        s.submit(["bob@implicit.test"])
        msgs = peer.wait_messages(1)
        self.assertEqual(msgs[0].rcpts, ["bob@implicit.test"])
        s.wait_status("bob@implicit.test", "delivered")

    def test_null_mx_bounces_at_once(self):
        """RFC 7505: MX "." says the domain takes no mail: failed on the
        first attempt, and the sender gets a bounce saying why."""
        port, (peer,) = rh.peers(self, [("127.0.0.6", "null.test")])
        dns = rh.Dns(self, null_mx=["null.test"],
                     hosts={"null.test": "127.0.0.6"})
        s = rh.RelayServer(self, dns=dns, mx_port=port)
        s.submit(["bob@null.test"])
        line = s.wait_status("bob@null.test", "failed")
        self.assertIn("556 5.1.10", line)
        self.assertIn("attempts=1", line)
        bounce = s.wait_messages(rh.SENDER, 1, timeout=20)[0]
        self.assertIn(b"bob@null.test", bounce)
        self.assertIn(b"5.1.10", bounce)
        self.assertEqual(peer.conns, [])

    def test_nonexistent_domain_fails(self):
        dns = rh.Dns(self)
        s = rh.RelayServer(self, dns=dns, mx_port=harness.free_port())
        s.submit(["bob@nowhere.test"])
        line = s.wait_status("bob@nowhere.test", "failed")
        self.assertIn("550 5.1.2", line)

    def test_dns_failure_defers(self):
        """The name server does not answer: try later, never bounce."""
        s = rh.RelayServer(self, mx_port=harness.free_port(),
                           resolver={"servers": ["127.0.0.1:%d"
                                                 % harness.free_port()]})
        s.submit(["bob@pref.test"])
        line = s.wait_status("bob@pref.test", "deferred")
        self.assertIn("4.4.3", line)

    def test_mail_looping_back_to_us_fails(self):
        """We are the best MX of the domain (but it is not local)."""
        dns = rh.Dns(self, mx=[("loop.test", "mail.example.test", 10)],
                     hosts={"mail.example.test": "127.0.0.1"})
        s = rh.RelayServer(self, dns=dns, mx_port=harness.free_port())
        s.submit(["bob@loop.test"])
        line = s.wait_status("bob@loop.test", "failed")
        self.assertIn("5.4.6", line)


if __name__ == "__main__":
    unittest.main()
