# SPDX-License-Identifier: MIT
"""Internationalized domain names: an SMTPUTF8 recipient domain in
U-labels (kunde@bücher.test) is looked up in DNS by its A-labels
(xn--bcher-kva.test), which is all dnsmasq knows; the address itself
goes to the SMTPUTF8 server unchanged. A name that is no valid IDN
fails at once."""

import harness
import relay_harness as rh

ALABEL = "xn--bcher-kva.test"
ULABEL = "bücher.test"
MX = "mx." + ALABEL
PEER_ADDR = "127.0.0.12"


def logged(address):
    """An address as the log shows it (non-ASCII bytes escaped)."""
    return "".join(c if ord(c) < 0x80 else "".join(
        "\\x%02x" % b for b in c.encode()) for c in address)


class IdnTest(harness.PetrelTestCase):

    def setUp(self):
        self.port, (self.peer,) = rh.peers(self, [(PEER_ADDR, MX)])
        # Only the A-label form exists in DNS.
        self.dns = rh.Dns(self, mx=[(ALABEL, MX, 10)],
                          hosts={MX: PEER_ADDR})
        self.s = rh.RelayServer(self, dns=self.dns, mx_port=self.port)

    def test_u_label_domain_found_by_its_a_labels(self):
        rcpt = "kunde@" + ULABEL
        self.s.submit([rcpt], mail_params=" SMTPUTF8")
        line = self.s.wait_status(logged(rcpt), "delivered")
        self.assertIn("relay=%s[%s]" % (MX, PEER_ADDR), line)
        m = self.peer.wait_messages(1)[0]
        self.assertEqual(m.rcpts, [rcpt])
        self.assertIn("SMTPUTF8", m.mail_params)

    def test_upper_case_u_label_maps_to_the_same_name(self):
        # UTS #46 mapping: "BÜCHER" is "bücher".
        # (The queue keeps domains with ASCII letters lowered.)
        self.s.submit(["kunde@BÜCHER.test"], mail_params=" SMTPUTF8")
        line = self.s.wait_status(logged("kunde@bÜcher.test"), "delivered")
        self.assertIn("relay=%s[%s]" % (MX, PEER_ADDR), line)
        self.assertEqual(len(self.peer.wait_messages(1)), 1)

    def test_a_label_address_as_ascii(self):
        rcpt = "kunde@" + ALABEL
        self.s.submit([rcpt])
        self.s.wait_status(rcpt, "delivered")
        m = self.peer.wait_messages(1)[0]
        self.assertEqual(m.rcpts, [rcpt])

    def test_invalid_idn_fails(self):
        # A ZERO WIDTH JOINER after a letter breaks IDNA2008's CONTEXTJ
        # rule: no DNS name can be made of it.
        rcpt = "kunde@a\u200db.test"
        self.s.submit([rcpt], mail_params=" SMTPUTF8")
        line = self.s.wait_status(logged(rcpt), "failed")
        self.assertIn("553 5.1.2 bad domain name", line)
        self.assertEqual(self.peer.messages, [])


class IdnRouteTest(harness.PetrelTestCase):
    """Route keys are ASCII: a route written for the A-label form takes
    mail for the U-label form too (no DNS record exists for either)."""

    def test_route_for_a_labels_takes_u_label_mail(self):
        port, (hop,) = rh.peers(self, [("127.0.0.13", "hop.test")])
        s = rh.RelayServer(self, dns=rh.Dns(self), mx_port=port,
                           queue={"routes": {ALABEL: {
                               "host": "127.0.0.13", "port": port,
                               "tls": "none"}}})
        for rcpt in ("kunde@" + ULABEL, "chef@" + ALABEL):
            s.submit([rcpt], mail_params=" SMTPUTF8")
            line = s.wait_status(logged(rcpt), "delivered")
            self.assertIn("[127.0.0.13]", line)
        msgs = hop.wait_messages(2)
        self.assertEqual(sorted(r for m in msgs for r in m.rcpts),
                         sorted(["kunde@" + ULABEL, "chef@" + ALABEL]))

