"""`cpack -G DEB` builds a Debian package that depends, by package name, on
every shared library the binary links and installs the same layout as
`cmake --install` under /usr. The package is unpacked into a scratch root
(dpkg -x) and the binary in it answers --version, names its own contract in
--help, and runs a command over stdio."""

import base64
import glob
import os
import re
import subprocess
import unittest

import wardenrpc
from support import BUILD_DIR, CPACK, WARDEN_BIN, TempDirTest, contract_docs, help_paths, run


def linked_libraries(binary):
    """{soname: path} of the shared libraries the binary itself names
    (DT_NEEDED, from objdump), resolved to files by ldd."""
    needed = re.findall(r"^\s*NEEDED\s+(\S+)", run(["objdump", "-p", binary]), re.M)
    resolved = dict(re.findall(r"^\s*(\S+) => (/\S+)", run(["ldd", binary]), re.M))
    missing = [n for n in needed if n not in resolved]
    assert not missing, "ldd cannot resolve %s" % missing
    return {n: resolved[n] for n in needed}


def owning_package(path):
    """The Debian package that ships path (trying the merged-/usr spellings too)."""
    candidates = [path, os.path.realpath(path)]
    for p in list(candidates):
        candidates.append(p[4:] if p.startswith("/usr/") else "/usr" + p)
    for p in candidates:
        r = subprocess.run(["dpkg", "-S", p], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           universal_newlines=True)
        if r.returncode == 0:
            return r.stdout.split(":")[0].strip()
    raise AssertionError("no installed package ships %s" % path)


def depends_names(depends):
    return {re.split(r"[\s(]", alt.strip())[0]
            for dep in depends.split(",") for alt in dep.split("|") if alt.strip()}


class DebianPackage(TempDirTest):
    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.out = tempfile.mkdtemp(prefix="warden-deb-test-")
        run([CPACK, "-G", "DEB", "--config", os.path.join(BUILD_DIR, "CPackConfig.cmake"),
             "-B", cls.out])
        debs = glob.glob(os.path.join(cls.out, "*.deb"))
        assert len(debs) == 1, debs
        cls.deb = debs[0]

    @classmethod
    def tearDownClass(cls):
        import shutil
        shutil.rmtree(cls.out, True)

    def field(self, name):
        return run(["dpkg-deb", "-f", self.deb, name]).strip()

    def test_control(self):
        self.assertEqual(self.field("Package"), "warden")
        version = run([WARDEN_BIN, "--version"]).split()[1]
        self.assertEqual(self.field("Version"), version)
        self.assertEqual(self.field("Architecture"),
                         run(["dpkg", "--print-architecture"]).strip())

    def test_depends_names_every_linked_library_and_nothing_else(self):
        depends = depends_names(self.field("Depends"))
        owners = {soname: owning_package(path)
                  for soname, path in linked_libraries(WARDEN_BIN).items()}
        # libc always; libuv, jansson and libseccomp only in a build with
        # -DWARDEN_STATIC_DEPS=OFF (the default links them statically)
        self.assertIn("libc.so.6", owners)
        for soname, package in owners.items():
            self.assertIn(package, depends, "%s (from %s) is not in Depends: %s"
                          % (package, soname, self.field("Depends")))
        self.assertEqual(depends - set(owners.values()), set(), self.field("Depends"))

    def test_libcurl_is_recommended_not_linked(self):
        # OTLP export dlopen()s libcurl.so.4: the package recommends it.
        self.assertNotIn("libcurl.so.4", linked_libraries(WARDEN_BIN))
        self.assertIn("libcurl4", depends_names(self.field("Recommends")))

    def test_unpacked_binary_runs(self):
        root = os.path.join(self.tmp, "root")
        run(["dpkg-deb", "-x", self.deb, root])
        binary = os.path.join(root, "usr", "bin", "warden")
        self.assertEqual(run([binary, "--version"]), run([WARDEN_BIN, "--version"]))

        docdir = os.path.join(root, "usr", "share", "doc", "warden")
        self.assertEqual(sorted(os.listdir(docdir)), sorted(contract_docs() + ["README.md"]))
        self.assertTrue(os.path.isfile(os.path.join(root, "usr", "share", "man", "man1", "warden.1")))
        contract, schema = help_paths(run([binary, "--help"]))
        self.assertTrue(contract)
        for path in contract:
            self.assertEqual(os.path.dirname(path), os.path.realpath(docdir))
            self.assertTrue(os.path.isfile(path), path)
        self.assertTrue(os.path.isfile(os.path.join(schema, "warden_protocol.schemas.json")), schema)

        # A spawn over stdio, sandboxed by default (workspaceWrite on cwd).
        workspace = os.path.join(self.tmp, "ws")
        os.mkdir(workspace)
        wardenrpc.WARDEN_BIN = binary
        state = os.path.join(self.tmp, "state")
        with wardenrpc.Server("--state-dir", state) as server:
            result = server.call("process/spawn", {
                "processId": "p1", "cwd": workspace,
                "argv": ["sh", "-c", "echo from-the-package > out.txt; cat out.txt"]})
            self.assertTrue(result["sandbox"]["enforced"], result)
            exited = server.wait_exit("p1")
            self.assertEqual(exited["exitCode"], 0, exited)
            self.assertEqual(server.output_of("p1", "stdout"), b"from-the-package\n")
            server.call("shutdown")
            self.assertEqual(server.close(), 0)
        with open(os.path.join(workspace, "out.txt")) as f:
            self.assertEqual(f.read(), "from-the-package\n")


if __name__ == "__main__":
    unittest.main()
