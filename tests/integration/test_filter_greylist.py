# SPDX-License-Identifier: MIT
"""filter_greylist (issue 7 point 5) in a real petrel: the first delivery
attempt of a triplet gets 451 4.7.1, a retry before the delay too, a
retry after it passes; the client's /24 counts as one client; state kept
in STATE_DIR/greylist across a restart; two workers share it; clients
whitelisted automatically after enough passes, by network or by sender
domain; authenticated and trusted clients never greylisted."""

import os
import time
import unittest

import harness
from policy_harness import SourceClient, policy_server, restart
from smtp_harness import make_message

DELAY = 3  # seconds, as configured below


def greylist(**extra):
    section = {"delay": "%ds" % DELAY, "retry_window": "1h"}
    section.update(extra)
    return {"filter_greylist": section}


class GreylistTest(harness.PetrelTestCase):

    def attempt(self, srv, source, sender, rcpt, expect, data=False):
        """One delivery attempt: the RCPT reply must be `expect`."""
        c = SourceClient(srv.mx, source)
        self.assertEqual(c.greeting.code, 220)
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % sender, 250, "2.1.0")
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        self.assertEqual(r.code, expect, str(r))
        if expect == 451:
            self.assertEqual(r.enhanced, "4.7.1")
            self.assertRegex(r.text, r"^4\.7\.1 Greylisted, try again in "
                                     r"[1-%d] seconds$" % DELAY)
        if data and expect == 250:
            d = c.data(make_message(sender=sender, to=rcpt))
            self.assertEqual(d.code, 250, str(d))
        c.quit()
        return r

    def test_first_early_then_after_delay(self):
        srv = policy_server(self, ["filter_greylist"], greylist(),
                            workers=2)
        first = time.monotonic()
        self.attempt(srv, "127.0.0.20", "news@example.org",
                     "alice@example.test", 451)
        self.attempt(srv, "127.0.0.20", "news@example.org",
                     "alice@example.test", 451)
        time.sleep(max(0, first + DELAY + 0.3 - time.monotonic()))
        self.attempt(srv, "127.0.0.20", "news@example.org",
                     "alice@example.test", 250, data=True)
        self.assertEqual(len(srv.messages("alice@example.test")), 1)
        # Known now: passes at once, from anywhere in its /24.
        self.attempt(srv, "127.0.0.21", "news@example.org",
                     "alice@example.test", 250)
        # Another recipient, sender or network is another triplet.
        self.attempt(srv, "127.0.0.20", "news@example.org",
                     "bob@example.test", 451)
        self.attempt(srv, "127.0.0.20", "other@example.org",
                     "alice@example.test", 451)
        self.attempt(srv, "127.0.1.20", "news@example.org",
                     "alice@example.test", 451)
        log = srv.p.log_text()
        self.assertIn("greylist: 127.0.0.0/24 <news@example.org> "
                      "<alice@example.test>: greylisted, retry in %d s"
                      % DELAY, log)
        self.assertIn("greylist: 127.0.0.0/24 <news@example.org> "
                      "<alice@example.test>: retried too early", log)
        self.assertRegex(log, r"greylist: 127\.0\.0\.0/24 <news@example\.org> "
                              r"<alice@example\.test>: passed after \d+ s")
        self.assertIn("filter filter_greylist at rcpt: tempfail 451 4.7.1",
                      log)

    def test_state_kept_across_restart(self):
        srv = policy_server(self, ["filter_greylist"], greylist(),
                            workers=2)
        state = os.path.join(srv.p.state_dir, "greylist", "greylist.db")
        first = time.monotonic()
        self.attempt(srv, "127.0.0.30", "a@example.org",
                     "alice@example.test", 451)
        self.attempt(srv, "127.0.0.40", "b@example.org",
                     "bob@example.test", 451)
        time.sleep(max(0, first + DELAY + 0.3 - time.monotonic()))
        self.attempt(srv, "127.0.0.40", "b@example.org",
                     "bob@example.test", 250)
        self.assertTrue(os.path.isfile(state))

        restart(srv)
        # The first triplet's wait started before the restart: it passes
        # now, not greylisted as new; the second is still known.
        self.attempt(srv, "127.0.0.30", "a@example.org",
                     "alice@example.test", 250)
        self.attempt(srv, "127.0.0.40", "b@example.org",
                     "bob@example.test", 250)
        self.attempt(srv, "127.0.0.30", "new@example.org",
                     "alice@example.test", 451)
        self.assertNotIn("is damaged", srv.p.log_text())

    def test_resized_state_is_kept(self):
        srv = policy_server(self, ["filter_greylist"], greylist(),
                            start=False)
        srv.start()
        self.attempt(srv, "127.0.0.50", "a@example.org",
                     "alice@example.test", 451)
        srv.p.stop()
        srv.cfg["modules"]["filter_greylist"]["slots"] = 131072
        srv.p.write_config(srv.cfg)
        srv.p.proc = None
        srv.start()
        srv.p.wait_log("greylist: state in %s/greylist/greylist.db (131072 "
                       "slots)" % srv.p.state_dir)
        srv.p.wait_log("resized from 65536 to 131072 slots")
        time.sleep(DELAY + 0.3)
        self.attempt(srv, "127.0.0.50", "a@example.org",
                     "alice@example.test", 250)

    def test_auto_whitelist(self):
        srv = policy_server(self, ["filter_greylist"],
                            greylist(auto_whitelist=2))
        first = time.monotonic()
        for rcpt in ("alice@example.test", "bob@example.test"):
            self.attempt(srv, "127.0.0.60", "s@example.org", rcpt, 451)
        time.sleep(max(0, first + DELAY + 0.3 - time.monotonic()))
        for rcpt in ("alice@example.test", "bob@example.test"):
            self.attempt(srv, "127.0.0.60", "s@example.org", rcpt, 250)
        srv.p.wait_log("greylist: 127.0.0.0/24 whitelisted after 2 passed "
                       "triplets")
        # The whole network is known now: new triplets pass.
        self.attempt(srv, "127.0.0.61", "x@other.example",
                     "carol@example.test", 250)

    def test_whitelists(self):
        srv = policy_server(self, ["filter_greylist"], greylist(
            whitelist=["127.0.0.70/31"],
            whitelist_domains=["friendly.example"]),
            smtp={"trusted_networks": ["127.0.0.72"]})
        self.attempt(srv, "127.0.0.71", "a@example.org",
                     "alice@example.test", 250)
        self.attempt(srv, "127.0.0.73", "a@lists.friendly.example",
                     "alice@example.test", 250)
        self.attempt(srv, "127.0.0.72", "a@example.org",
                     "alice@example.test", 250)
        self.attempt(srv, "127.0.0.73", "a@unfriendly.example",
                     "alice@example.test", 451)

    def test_authenticated_not_greylisted(self):
        srv = policy_server(self, ["filter_greylist"],
                            greylist(roles=["mx", "submission"]),
                            roles=("mx", "submission"))
        c = srv.auth_client("submission", "alice@example.test")
        r = c.send_mail("alice@example.test", ["bob@example.test"],
                        make_message(subject="no wait"))
        self.assertEqual(r.code, 250)
        c.quit()

    def test_config_errors(self):
        p = self.petrel()
        cases = [
            ({"delay": "1h", "retry_window": "30m"}, "retry_window"),
            ({"delay": "100ms"}, "delay"),
            ({"dir": "relative/dir"}, "dir"),
            ({"whitelist": ["127.0.0.1/8"]}, "whitelist"),
        ]
        for section, path in cases:
            r = p.check(p.config(modules={"filter_greylist": section}))
            self.assertCheckFails(r, "modules.filter_greylist." + path)


if __name__ == "__main__":
    unittest.main()
