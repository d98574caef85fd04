"""`cmake --install build --prefix P` installs the binary, the schema, the
contract and the man page, and the installed `warden --help` names the
installed contract (under P), not a file of the source tree."""

import filecmp
import os
import shutil
import unittest

from support import (BUILD_DIR, CMAKE, SOURCE_DIR, WARDEN_BIN, TempDirTest, contract_docs,
                     help_paths, run)


class CMakeInstall(TempDirTest):
    def install(self, prefix):
        run([CMAKE, "--install", BUILD_DIR, "--prefix", prefix])
        return prefix

    def test_layout(self):
        p = self.install(os.path.join(self.tmp, "prefix"))
        binary = os.path.join(p, "bin", "warden")
        self.assertTrue(os.access(binary, os.X_OK), binary)
        self.assertEqual(run([binary, "--version"]), run([WARDEN_BIN, "--version"]))

        schema_src = os.path.join(SOURCE_DIR, "schema")
        schema_dst = os.path.join(p, "share", "warden", "schema")
        names = sorted(os.listdir(schema_src))
        self.assertIn("warden_protocol.schemas.json", names)
        self.assertEqual(sorted(os.listdir(schema_dst)), names)
        match, mismatch, errors = filecmp.cmpfiles(schema_src, schema_dst, names, shallow=False)
        self.assertEqual((mismatch, errors), ([], []))

        docdir = os.path.join(p, "share", "doc", "warden")
        expected = sorted(contract_docs() + ["README.md"])
        self.assertEqual(sorted(os.listdir(docdir)), expected)
        for name in expected:
            src = os.path.join(SOURCE_DIR, "docs" if name != "README.md" else "", name)
            self.assertTrue(filecmp.cmp(src, os.path.join(docdir, name), shallow=False), name)

        man = os.path.join(p, "share", "man", "man1", "warden.1")
        self.assertTrue(os.path.isfile(man), man)
        with open(man) as f:
            self.assertIn('.TH WARDEN 1 ', f.read())

    def check_help(self, prefix):
        text = run([os.path.join(prefix, "bin", "warden"), "--help"])
        contract, schema = help_paths(text)
        docdir = os.path.join(prefix, "share", "doc", "warden")
        expected = ["protocol.md"] if "protocol.md" in contract_docs() else []
        expected += [d for d in contract_docs() if d != "protocol.md"] or ["README.md"]
        self.assertEqual(contract, [os.path.join(docdir, d) for d in expected], text)
        for path in contract:
            self.assertTrue(os.path.isfile(path), path)
        self.assertEqual(schema, os.path.join(prefix, "share", "warden", "schema") + "/", text)
        self.assertTrue(os.path.isfile(os.path.join(schema, "warden_protocol.schemas.json")))
        self.assertNotIn(SOURCE_DIR, text)
        self.assertNotIn("PROTOCOL.md", text)

    def test_help_names_the_installed_contract(self):
        p = self.install(os.path.realpath(os.path.join(self.tmp, "prefix")))
        self.check_help(p)
        # The tree is relocatable: moved elsewhere, it names its new place.
        moved = os.path.join(os.path.realpath(self.tmp), "moved", "elsewhere")
        os.makedirs(os.path.dirname(moved))
        shutil.move(p, moved)
        self.check_help(moved)

    def test_destdir_staging(self):
        # Packagers stage with DESTDIR: the files land under DESTDIR/PREFIX,
        # and the staged binary names the staged files.
        cache = open(os.path.join(BUILD_DIR, "CMakeCache.txt")).read()
        prefix = [l.split("=", 1)[1] for l in cache.splitlines()
                  if l.startswith("CMAKE_INSTALL_PREFIX:")][0]
        stage = os.path.realpath(os.path.join(self.tmp, "stage"))
        run([CMAKE, "--install", BUILD_DIR], env=dict(os.environ, DESTDIR=stage))
        staged = stage + prefix
        self.assertTrue(os.access(os.path.join(staged, "bin", "warden"), os.X_OK))
        self.check_help(staged)

    def test_help_of_the_build_tree_names_the_configured_prefix(self):
        # Run from the build tree, the binary names where `cmake --install`
        # (without --prefix) puts the contract: CMAKE_INSTALL_PREFIX.
        cache = open(os.path.join(BUILD_DIR, "CMakeCache.txt")).read()
        prefix = [l.split("=", 1)[1] for l in cache.splitlines()
                  if l.startswith("CMAKE_INSTALL_PREFIX:")][0]
        contract, schema = help_paths(run([WARDEN_BIN, "--help"]))
        self.assertTrue(contract)
        for path in contract:
            self.assertTrue(path.startswith(os.path.join(prefix, "share", "doc", "warden") + "/"),
                            path)
        self.assertEqual(schema, os.path.join(prefix, "share", "warden", "schema") + "/")


if __name__ == "__main__":
    unittest.main()
