# SPDX-License-Identifier: MIT
"""The module loader's refusals and the service graph, through `petrel -t`
with the purpose-built modules of tests/modules."""

import os
import re
import shutil
import unittest

import harness
from harness import IS_ROOT, MODULE_DIR, TEST_MODULE_DIR


class Loader(harness.PetrelTestCase):

    def setUp(self):
        self.p = self.petrel(module_dir=TEST_MODULE_DIR)

    def so(self, name):
        return os.path.join(TEST_MODULE_DIR, name + ".so")

    def load(self, name, section=None):
        """`petrel -t` with only module NAME configured."""
        return self.p.check(self.p.config(modules={name: section or {}}))

    def refused(self, name, *phrases):
        result = self.load(name)
        self.assertCheckFails(result, "modules.%s" % name, *phrases)
        return result

    def test_missing_file(self):
        self.refused("no_such_module", "cannot open module",
                     self.so("no_such_module"))

    def test_no_symbol(self):
        self.refused("no_symbol", "%s: no symbol petrel_module (not a "
                     "Petrel module)" % self.so("no_symbol"))

    def test_bad_magic(self):
        self.refused("bad_magic", re.compile(
            r"%s: bad magic 0x[0-9a-fA-F]+, not a Petrel module"
            % re.escape(self.so("bad_magic"))))

    def test_abi_major(self):
        result = self.refused("bad_major", re.compile(
            r"%s: ABI major \d+, this petrel needs 1"
            % re.escape(self.so("bad_major"))))
        self.assertNotRegex(result.stderr, r"ABI major 1,")

    def test_abi_minor_too_new(self):
        self.refused("minor_too_new", re.compile(
            r"%s: ABI minor \d+ is newer than this petrel's 1\.\d+"
            % re.escape(self.so("minor_too_new"))))

    def test_descriptor_too_small(self):
        self.refused("small_struct", re.compile(
            r"%s: descriptor size \d+ too small for ABI 1\.\d+"
            % re.escape(self.so("small_struct"))))

    def test_name_mismatch(self):
        self.refused("wrong_name", re.compile(
            r'%s: module calls itself "[^"]+", config names it '
            r'"wrong_name"' % re.escape(self.so("wrong_name"))))

    def test_good_module_by_explicit_path(self):
        port = harness.free_port()
        section = {"path": os.path.join(MODULE_DIR, "example.so"),
                   "listen": [{"address": "127.0.0.1:%d" % port}]}
        self.assertCheckOk(self.load("example", section))

    def test_relative_explicit_path(self):
        port = harness.free_port()
        os.symlink(os.path.join(MODULE_DIR, "example.so"),
                   self.p.path("example.so"))
        section = {"path": "example.so",
                   "listen": [{"address": "127.0.0.1:%d" % port}]}
        result = self.load("example", section)
        self.assertCheckFails(result, "modules.example")
        self.assertRegex(result.stderr.lower(), "absolute|relative")


class UnsafeFiles(harness.PetrelTestCase):
    """A module file or its directory that someone else could change is
    refused before dlopen."""

    def setUp(self):
        self.p = self.petrel()
        self.dir = self.p.path("mods")
        os.mkdir(self.dir, 0o755)
        os.chmod(self.dir, 0o755)
        self.file = os.path.join(self.dir, "example.so")
        shutil.copyfile(os.path.join(MODULE_DIR, "example.so"), self.file)
        os.chmod(self.file, 0o755)
        self.port = harness.free_port()

    def check(self):
        return self.p.check(self.p.config(modules={"example": {
            "path": self.file,
            "listen": [{"address": "127.0.0.1:%d" % self.port}]}}))

    def test_safe_copy_loads(self):
        self.assertCheckOk(self.check())

    def test_group_writable_file(self):
        os.chmod(self.file, 0o775)
        self.assertCheckFails(self.check(), "modules.example",
                              "%s: writable by group or others, refusing "
                              "to load" % self.file)

    def test_other_writable_file(self):
        os.chmod(self.file, 0o757)
        self.assertCheckFails(self.check(), "modules.example",
                              "writable by group or others, refusing to "
                              "load")

    def test_group_writable_directory(self):
        os.chmod(self.dir, 0o775)
        result = self.check()
        self.assertCheckFails(result, "modules.example",
                              "writable by group or others, refusing to "
                              "load")
        self.assertIn(self.dir, result.stderr)

    def test_other_writable_directory(self):
        os.chmod(self.dir, 0o777)
        self.assertCheckFails(self.check(), "modules.example",
                              "writable by group or others, refusing to "
                              "load")

    def test_sticky_world_writable_directory(self):
        # /tmp-like: others can still add files there.
        os.chmod(self.dir, 0o1777)
        self.assertCheckFails(self.check(), "modules.example",
                              "refusing to load")

    @unittest.skipUnless(IS_ROOT, "needs root to give the file away")
    def test_file_owned_by_other_user(self):
        uid = harness.pwd.getpwnam(harness.RUN_USER).pw_uid
        os.chown(self.file, uid, -1)
        self.assertCheckFails(self.check(), "modules.example",
                              "%s: owned by uid %d, not root or the running "
                              "user, refusing to load" % (self.file, uid))

    @unittest.skipUnless(IS_ROOT, "needs root to give the dir away")
    def test_directory_owned_by_other_user(self):
        uid = harness.pwd.getpwnam(harness.RUN_USER).pw_uid
        os.chown(self.dir, uid, -1)
        result = self.check()
        self.assertCheckFails(result, "modules.example",
                              "owned by uid %d, not root or the running "
                              "user, refusing to load" % uid)
        self.assertIn(self.dir, result.stderr)


class Services(harness.PetrelTestCase):
    """needs/provides: tests/modules provider_a and provider_b both
    provide example_svc v1; consumer needs it."""

    def setUp(self):
        self.p = self.petrel(module_dir=TEST_MODULE_DIR)

    def cfg(self, names, services=None):
        cfg = self.p.config(modules={n: {} for n in names})
        if services is not None:
            cfg["services"] = services
        return cfg

    def test_need_without_provider(self):
        self.assertCheckFails(
            self.p.check(self.cfg(["consumer"])),
            'module "consumer" needs service "example_svc" v1, which no '
            'loaded module provides')

    def test_needs_missing_module(self):
        self.assertCheckFails(
            self.p.check(self.cfg(["needs_missing"])),
            re.compile(r'module "needs_missing" needs service "[^"]+" '
                       r'v\d+, which no loaded module provides'))

    def test_one_provider_is_enough(self):
        self.assertCheckOk(self.p.check(self.cfg(["provider_a",
                                                  "consumer"])))

    def test_two_providers_need_a_choice(self):
        self.assertCheckFails(
            self.p.check(self.cfg(["provider_a", "provider_b",
                                   "consumer"])),
            re.compile(r'service "example_svc" is provided by both '
                       r'"provider_[ab]" and "provider_[ab]"; choose one '
                       r'in "services"'))

    def test_choice_accepted(self):
        self.assertCheckOk(self.p.check(self.cfg(
            ["provider_a", "provider_b", "consumer"],
            services={"example_svc": "provider_b"})))

    def test_choice_of_unloaded_module(self):
        self.assertCheckFails(self.p.check(self.cfg(
            ["provider_a", "provider_b", "consumer"],
            services={"example_svc": "provider_c"})), "services")

    def run_consumer(self, chosen):
        self.p.write_config(self.cfg(["provider_a", "provider_b",
                                      "consumer"],
                                     services={"example_svc": chosen}))
        self.p.start(foreground=True)
        self.p.wait_log("consumer found example_svc from %s" % chosen)
        other = "provider_a" if chosen == "provider_b" else "provider_b"
        self.assertNotIn("consumer found example_svc from %s" % other,
                         self.p.log_text())
        self.assertTrue(self.p.running(), self.p.log_tail())
        self.assertEqual(self.p.stop(), 0, self.p.log_tail())

    def test_consumer_finds_chosen_provider_b(self):
        self.run_consumer("provider_b")

    def test_consumer_finds_chosen_provider_a(self):
        self.run_consumer("provider_a")


if __name__ == "__main__":
    unittest.main()
