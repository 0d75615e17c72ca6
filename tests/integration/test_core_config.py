# SPDX-License-Identifier: MIT
"""`petrel -t` and the command line: config errors name FILE and JSON path."""

import glob
import json
import os
import re
import unittest

import harness
from harness import IS_ROOT, MODULE_DIR, SOURCE_ROOT, TEST_MODULE_DIR


def project_version():
    with open(os.path.join(SOURCE_ROOT, "meson.build")) as f:
        m = re.search(r"version\s*:\s*'([^']+)'", f.read())
    return m.group(1) if m else None


class ConfigCheck(harness.PetrelTestCase):

    def setUp(self):
        self.p = self.petrel()
        self.port = harness.free_port()

    def example(self, **keys):
        section = {"listen": [{"address": "127.0.0.1:%d" % self.port}]}
        section.update(keys)
        return {"example": section}

    def good(self, **server):
        return self.p.config(modules=self.example(), **server)

    def fails(self, cfg, *phrases, module_dir=None):
        result = self.p.check(cfg, module_dir=module_dir)
        self.assertCheckFails(result, *phrases)
        # One line naming the file, no matter which error.
        self.assertIn("petrel: " + self.p.conf_path, result.stderr)
        return result

    # -- accepted configs

    def test_good_config_is_ok(self):
        result = self.p.check(self.good())
        self.assertCheckOk(result)
        self.assertIn("petrel: configuration %s is ok" % self.p.conf_path,
                      result.stderr)

    def test_shipped_dev_config_is_ok(self):
        """conf/petrel.json, with its ports, files and user moved into the
        test's temp dir, passes -t."""
        with open(os.path.join(SOURCE_ROOT, "conf", "petrel.json")) as f:
            cfg = json.load(f)
        cert, key = harness.make_cert()
        for c in cfg["tls"]["certificates"]:
            c["cert"], c["key"] = cert, key
        cfg["server"]["state_dir"] = self.p.state_dir
        if IS_ROOT:
            cfg["server"]["user"] = harness.RUN_USER
        for mod in cfg["modules"].values():
            for item in mod.get("listen", []):
                item["address"] = "127.0.0.1:%d" % harness.free_port()
        # Files the dev config names relative to the checkout (dev-run.sh
        # creates them) move into the temp dir, created empty.
        if "passwd" in cfg["modules"]:
            users = self.p.path("users.passwd")
            open(users, "w").close()
            cfg["modules"]["passwd"]["file"] = users
        if "maildir" in cfg["modules"]:
            cfg["modules"]["maildir"]["location"] = self.p.path(
                "mail", "%d", "%n", "Maildir")
        self.assertCheckOk(self.p.check(cfg))

    def test_documented_examples(self):
        """conf/examples/*.json pass -t once the modules they use are
        built (file paths and ports moved into the temp dir)."""
        files = sorted(glob.glob(os.path.join(SOURCE_ROOT, "conf",
                                              "examples", "*.json")))
        self.assertTrue(files, "no conf/examples/*.json")
        checked = 0
        cert, key = harness.make_cert()
        for path in files:
            with open(path) as f:
                cfg = json.load(f)
            missing = [m for m in cfg.get("modules", {})
                       if not os.path.exists(
                           os.path.join(MODULE_DIR, m + ".so"))]
            if missing:
                continue
            cfg["server"]["state_dir"] = self.p.state_dir
            cfg["server"].pop("pid_file", None)
            cfg["server"].pop("group", None)
            cfg["server"]["log"] = {"level": "info"}
            cfg["server"]["user"] = harness.RUN_USER
            for c in cfg.get("tls", {}).get("certificates", []):
                c["cert"], c["key"] = cert, key
            for name, mod in cfg["modules"].items():
                for item in mod.get("listen", []):
                    item["address"] = "127.0.0.1:%d" % harness.free_port()
                cfg["modules"][name] = self.relocate(mod)
            with self.subTest(example=os.path.basename(path)):
                self.assertCheckOk(self.p.check(cfg))
            checked += 1
        if checked == 0:
            self.skipTest("the examples need modules not built yet")

    # Keys of the examples that name files the modules read at -t.
    EXAMPLE_FILES = ("file", "aliases")

    def relocate(self, value, key=None):
        """Absolute paths of an example, moved into the temp dir; the
        files the modules read are created empty."""
        if isinstance(value, dict):
            return {k: self.relocate(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.relocate(v) for v in value]
        if not (isinstance(value, str) and value.startswith("/")):
            return value
        moved = self.p.path("root" + value)
        os.makedirs(os.path.dirname(moved), exist_ok=True)
        if key in self.EXAMPLE_FILES and not os.path.exists(moved):
            with open(moved, "w"):
                pass
            os.chmod(moved, 0o640)
        return moved

    def test_durations_accepted(self):
        for value in ("500ms", "2s", "1m", 10):
            with self.subTest(shutdown_timeout=value):
                self.assertCheckOk(self.p.check(
                    self.good(shutdown_timeout=value)))

    # -- syntax

    def test_json_syntax_error_has_line_and_column(self):
        path = self.p.write_text('{\n  "server": {\n'
                                 '    "hostname": "x",,\n  }\n}\n')
        result = self.p.check(path=path)
        self.assertCheckFails(result)
        self.assertRegex(result.stderr, r"(?m)^petrel: %s:3:\d+: syntax "
                         r"error: \S" % re.escape(path))

    def test_empty_file(self):
        path = self.p.write_text("")
        result = self.p.check(path=path)
        self.assertCheckFails(result, "petrel: " + path)

    def test_missing_file(self):
        path = self.p.path("nonexistent.json")
        result = self.p.check(path=path)
        self.assertCheckFails(result, path)

    def test_top_level_not_object(self):
        self.p.write_text("[1, 2]\n")
        self.assertCheckFails(self.p.check())

    # -- unknown keys, types, ranges

    def test_unknown_top_level_key(self):
        cfg = self.good()
        cfg["bogus"] = {}
        self.fails(cfg, ': bogus: unknown key "bogus"')

    def test_unknown_server_key(self):
        self.fails(self.good(bogus=1), 'server.bogus: unknown key "bogus"')

    def test_unknown_log_key(self):
        self.fails(self.good(log={"level": "info", "colour": True}),
                   'server.log.colour: unknown key "colour"')

    def test_unknown_module_key(self):
        cfg = self.p.config(modules=self.example(bogus=1))
        self.fails(cfg, 'modules.example.bogus: unknown key "bogus"')

    def test_wrong_types(self):
        cases = [
            ({"hostname": 42}, "server.hostname:"),
            ({"workers": "many"}, "server.workers:"),
            ({"workers": True}, "server.workers:"),
            ({"log": {"json": "yes"}}, "server.log.json:"),
            ({"log": {"level": "loud"}}, "server.log.level:"),
            ({"log": "stderr"}, "server.log:"),
        ]
        for server, phrase in cases:
            with self.subTest(server=server):
                self.fails(self.good(**server), phrase)

    def test_section_wrong_type(self):
        cfg = self.good()
        cfg["server"] = "localhost"
        self.fails(cfg, "server:")
        cfg = self.good()
        cfg["modules"]["example"] = 5
        self.fails(cfg, "modules.example:")

    def test_workers_range(self):
        for value in (0, 257, -1):
            with self.subTest(workers=value):
                self.fails(self.good(workers=value), "server.workers:")

    def test_listen_address_path(self):
        section = {"listen": [{"address": "127.0.0.1:%d" % self.port},
                              {"address": "nope"}]}
        result = self.fails(self.p.config(modules={"example": section}))
        self.assertIn('petrel: %s: modules.example.listen[1].address: '
                      'expected "host:port"' % self.p.conf_path,
                      result.stderr)

    def test_example_module_keys(self):
        cases = [
            ({"max_line": 8}, "modules.example.max_line:"),
            ({"max_line": 65537}, "modules.example.max_line:"),
            ({"greeting": 1}, "modules.example.greeting:"),
            ({"listen": []}, "modules.example.listen:"),
            ({"listen": [{"address": "127.0.0.1:%d" % self.port,
                          "tls": "maybe"}]},
             "modules.example.listen[0].tls:"),
        ]
        for keys, phrase in cases:
            with self.subTest(keys=keys):
                self.fails(self.p.config(modules=self.example(**keys)),
                           phrase)

    def test_required_key_missing(self):
        self.fails(self.p.config(modules={"example": {}}),
                   "modules.example.listen:")

    def test_duration_errors(self):
        for value in ("soon", "10 parsecs", "-5s", "5x", ""):
            with self.subTest(shutdown_timeout=value):
                self.fails(self.good(shutdown_timeout=value),
                           "server.shutdown_timeout:")

    def test_size_errors(self):
        """No core key is a size: use the maildir module's "quota"."""
        if not os.path.exists(os.path.join(MODULE_DIR, "maildir.so")):
            self.skipTest("needs the maildir module (a size key)")
        location = self.p.path("mail", "%d", "%n")
        for value, ok in (("10M", True), ("1G", True), (4096, True),
                          ("ten", False), ("10 parsecs", False),
                          ("-1M", False), ("5Q", False)):
            with self.subTest(quota=value):
                cfg = self.p.config(modules={"maildir": {
                    "location": location, "quota": value}})
                if ok:
                    self.assertCheckOk(self.p.check(cfg))
                else:
                    self.fails(cfg, "modules.maildir.quota:")

    def test_tls_errors(self):
        cert, key = harness.make_cert()
        missing = self.p.path("missing.pem")
        cases = [
            ({"certificates": [{"cert": missing, "key": key}]}, missing),
            ({"certificates": [{"cert": cert, "key": missing}]}, missing),
            ({"certificates": [{"cert": cert, "key": key}],
              "min_version": "SSLv3"}, "tls.min_version:"),
            ({"certificates": [{"cert": cert}]}, "tls.certificates[0].key:"),
            ({"certificates": [{"cert": cert, "key": key, "pin": 1}]},
             'tls.certificates[0].pin: unknown key "pin"'),
        ]
        for tls, phrase in cases:
            with self.subTest(tls=tls):
                cfg = self.good()
                cfg["tls"] = tls
                self.fails(cfg, phrase)

    def test_key_not_matching_cert(self):
        cert_a, _ = harness.make_cert("a.example.test", ["a.example.test"])
        _, key_b = harness.make_cert("b.example.test", ["b.example.test"])
        cfg = self.good()
        cfg["tls"] = {"certificates": [{"cert": cert_a, "key": key_b}]}
        self.fails(cfg)

    @unittest.skipUnless(IS_ROOT, "only as root")
    def test_root_requires_user(self):
        cfg = self.good()
        del cfg["server"]["user"]
        self.fails(cfg, "server.user: required when running as root")

    @unittest.skipUnless(IS_ROOT, "only as root")
    def test_unknown_user(self):
        self.fails(self.good(user="no-such-user-petrel-test"),
                   "server.user:")

    # -- a module's own checks (tests/modules/bad_config.c)

    def bad_config(self, **section):
        return self.p.config(modules={"bad_config": section})

    def test_module_config_accepted(self):
        self.assertCheckOk(self.p.check(self.bad_config(count=5, name="ok"),
                                        module_dir=TEST_MODULE_DIR))

    def test_module_int_range(self):
        for count in (0, 11):
            with self.subTest(count=count):
                self.fails(self.bad_config(count=count, name="ok"),
                           "modules.bad_config.count:",
                           module_dir=TEST_MODULE_DIR)

    def test_module_int_type(self):
        self.fails(self.bad_config(count="five", name="ok"),
                   "modules.bad_config.count:", module_dir=TEST_MODULE_DIR)

    def test_module_required_missing(self):
        self.fails(self.bad_config(count=5), "modules.bad_config.name:",
                   module_dir=TEST_MODULE_DIR)

    def test_module_check_config_rejects(self):
        result = self.fails(self.bad_config(count=5, name="forbidden"),
                            "modules.bad_config",
                            module_dir=TEST_MODULE_DIR)
        self.assertNotIn("is ok", result.stderr)

    def test_module_unknown_key(self):
        self.fails(self.bad_config(count=5, name="ok", extra=1),
                   'modules.bad_config.extra: unknown key "extra"',
                   module_dir=TEST_MODULE_DIR)


class CommandLine(harness.PetrelTestCase):

    def setUp(self):
        self.p = self.petrel()

    def output(self, result):
        return result.stdout + result.stderr

    def test_version(self):
        result = self.p.run("-V")
        self.assertExit(result, 0)
        version = project_version()
        with open(os.path.join(SOURCE_ROOT, "include", "petrel",
                               "module.h")) as f:
            header = f.read()
        abi = [re.search(r"#define PTL_ABI_%s (\d+)" % part, header).group(1)
               for part in ("MAJOR", "MINOR")]
        self.assertRegex(self.output(result),
                         r"(?m)^petrel %s \(module ABI %s\.%s\)$"
                         % (re.escape(version or r"\S+"), abi[0], abi[1]))

    def test_help(self):
        result = self.p.run("-h")
        self.assertExit(result, 0)
        self.assertIn("usage", self.output(result).lower())

    def test_unknown_option(self):
        result = self.p.run("--no-such-option")
        self.assertIn(result.returncode, (1, 2), self.output(result))
        self.assertIn("usage", self.output(result).lower())

    def test_missing_option_argument(self):
        result = self.p.run("-c")
        self.assertIn(result.returncode, (1, 2), self.output(result))

    def test_keys_reference(self):
        port = harness.free_port()
        path = self.p.write_config(self.p.config(modules={"example": {
            "listen": [{"address": "127.0.0.1:%d" % port}]}}))
        result = self.p.run("--keys", "-c", path, "-M", self.p.module_dir)
        self.assertExit(result, 0)
        for key in ("hostname", "shutdown_timeout", "certificates",
                    "max_line", "greeting"):
            self.assertIn(key, result.stdout)


if __name__ == "__main__":
    unittest.main()
