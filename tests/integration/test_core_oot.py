# SPDX-License-Identifier: MIT
"""Out-of-tree module build: install Petrel into a temp dir, compile
modules/example against the installed headers through pkg-config only,
load the result by "path" and talk to it."""

import glob
import os
import shlex
import shutil
import tempfile
import unittest

import harness
from harness import BUILD_ROOT, LineClient, SOURCE_ROOT


def meson_command():
    meson = shutil.which("meson")
    return [meson] if meson else ["python3", "-m", "mesonbuild.mesonmain"]


class OutOfTree(harness.PetrelTestCase):

    @classmethod
    def setUpClass(cls):
        cls.destdir = tempfile.mkdtemp(prefix="petrel-oot-")
        os.chmod(cls.destdir, 0o755)
        result = harness.run(meson_command() + [
            "install", "-C", BUILD_ROOT, "--no-rebuild", "--quiet",
            "--destdir", cls.destdir], timeout=120)
        if result.returncode != 0:
            shutil.rmtree(cls.destdir, ignore_errors=True)
            raise AssertionError("meson install failed:\n%s\n%s"
                                 % (result.stdout, result.stderr))
        pcs = glob.glob(os.path.join(cls.destdir, "**", "petrel-module.pc"),
                        recursive=True)
        if len(pcs) != 1:
            shutil.rmtree(cls.destdir, ignore_errors=True)
            raise AssertionError("installed petrel-module.pc: %r" % pcs)
        cls.pc_dir = os.path.dirname(pcs[0])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.destdir, ignore_errors=True)

    def pkg_config(self, *args, sysroot=True):
        env = dict(os.environ)
        env["PKG_CONFIG_PATH"] = self.pc_dir
        if sysroot:
            # Installed paths (/usr/local/include...) then point into the
            # destdir, as they would on a machine where it is installed.
            env["PKG_CONFIG_SYSROOT_DIR"] = self.destdir
        else:
            env.pop("PKG_CONFIG_SYSROOT_DIR", None)
        result = harness.run(["pkg-config"] + list(args) + ["petrel-module"],
                             env=env)
        self.assertExit(result, 0)
        return result.stdout.strip()

    def test_pkg_config_variables(self):
        self.assertEqual(self.pkg_config("--variable=abi_major",
                                         sysroot=False), "1")
        self.assertTrue(self.pkg_config("--variable=moduledir",
                                        sysroot=False))
        self.assertEqual(self.pkg_config("--modversion", sysroot=False),
                         self.installed_version())

    def installed_version(self):
        with open(os.path.join(self.pc_dir, "petrel-module.pc")) as f:
            for line in f:
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
        return None

    def test_installed_headers_complete(self):
        """Every public header is installed, and nothing else."""
        src = sorted(os.path.relpath(p, os.path.join(SOURCE_ROOT,
                                                     "include"))
                     for p in glob.glob(os.path.join(
                         SOURCE_ROOT, "include", "petrel", "**", "*.h"),
                         recursive=True))
        incs = glob.glob(os.path.join(self.destdir, "**", "include",
                                      "petrel", "module.h"), recursive=True)
        self.assertEqual(len(incs), 1, incs)
        inc_root = os.path.dirname(os.path.dirname(incs[0]))
        installed = sorted(os.path.relpath(p, inc_root)
                           for p in glob.glob(os.path.join(
                               inc_root, "petrel", "**", "*.h"),
                               recursive=True))
        self.assertEqual(installed, src)

    def test_build_and_load_example(self):
        cflags = shlex.split(self.pkg_config("--cflags"))
        libs = shlex.split(self.pkg_config("--libs", sysroot=False))
        includes = [f[2:] for f in cflags if f.startswith("-I")]
        header_dirs = [d for d in includes
                       if os.path.exists(os.path.join(d, "petrel",
                                                      "module.h"))]
        self.assertEqual(len(header_dirs), 1, cflags)
        for d in includes:
            self.assertTrue(os.path.realpath(d).startswith(
                os.path.realpath(self.destdir) + os.sep),
                "include path %s outside the install dir" % d)
        self.assertNotIn(SOURCE_ROOT, " ".join(cflags))

        p = self.petrel()
        moddir = p.path("oot")
        os.mkdir(moddir, 0o755)
        os.chmod(moddir, 0o755)
        so = os.path.join(moddir, "example.so")
        sources = sorted(glob.glob(os.path.join(SOURCE_ROOT, "modules",
                                                "example", "*.c")))
        self.assertTrue(sources)
        cc = os.environ.get("CC", "cc")
        result = harness.run([cc, "-shared", "-fPIC", "-O2", "-Wall",
                              "-Werror", "-o", so] + cflags + sources + libs,
                             timeout=120, cwd=moddir)
        self.assertExit(result, 0)
        os.chmod(so, 0o755)

        port = harness.free_port()
        empty = p.path("empty")
        os.mkdir(empty, 0o755)
        p.write_config(p.config(modules={"example": {
            "path": so, "greeting": "out of tree",
            "listen": [{"address": "127.0.0.1:%d" % port}]}}))
        p.module_dir = empty
        self.assertCheckOk(p.check())
        p.start(foreground=True, wait_ports=[port])
        with LineClient(port) as c:
            self.assertEqual(c.greeting, "+OK out of tree")
            self.assertEqual(c.cmd("ECHO built outside"),
                             "+OK built outside")
            self.assertEqual(c.cmd("QUIT"), "+OK bye")
        self.assertEqual(p.stop(), 0, p.log_tail())


if __name__ == "__main__":
    unittest.main()
