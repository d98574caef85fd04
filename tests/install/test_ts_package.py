"""clients/ts is publishable: `npm pack` (its prepack script compiles src/)
makes a tarball of the built JavaScript and .d.ts files and nothing else; the
tarball installs into a scratch project without the registry (`npm install
--offline`: the package has no runtime dependencies), the README's example
compiles there against the installed .d.ts files alone, and runs with plain
node against the built binary."""

import json
import os
import re
import shutil
import subprocess
import tarfile
import unittest

from support import SOURCE_DIR, WARDEN_BIN, TempDirTest, run

CLIENT = os.path.join(SOURCE_DIR, "clients", "ts")
NODE_MODULES = os.path.join(CLIENT, "node_modules")


def npm_env():
    env = dict(os.environ, npm_config_offline="true", npm_config_audit="false",
               npm_config_fund="false", npm_config_update_notifier="false")
    env.pop("WARDEN_BIN", None)
    return env


def ensure_node_modules():
    """The TypeScript compiler and @types/node (devDependencies), as
    clients/ts/run-tests.sh gets them: `npm ci` from the cache first."""
    if os.path.isdir(os.path.join(NODE_MODULES, "typescript")):
        return
    for offline in ("true", "false"):
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=CLIENT,
                           env=dict(npm_env(), npm_config_offline=offline))
        if r.returncode == 0:
            return
    raise AssertionError("npm ci failed in %s" % CLIENT)


class TypeScriptPackage(TempDirTest):
    def setUp(self):
        super().setUp()
        for tool in ("node", "npm"):
            if not shutil.which(tool):
                raise AssertionError("%s is not installed (scripts/deps.sh installs it)" % tool)
        ensure_node_modules()
        # Pack from a copy: prepack writes dist/.
        self.pkg = os.path.join(self.tmp, "pkg")
        shutil.copytree(CLIENT, self.pkg, ignore=shutil.ignore_patterns(
            "node_modules", "dist", "*.tgz"))
        os.symlink(NODE_MODULES, os.path.join(self.pkg, "node_modules"))
        out = os.path.join(self.tmp, "out")
        os.mkdir(out)
        run(["npm", "pack", "--pack-destination", out], cwd=self.pkg, env=npm_env())
        tarballs = [f for f in os.listdir(out) if f.endswith(".tgz")]
        self.assertEqual(len(tarballs), 1, tarballs)
        self.tarball = os.path.join(out, tarballs[0])

    def test_tarball_contents(self):
        with tarfile.open(self.tarball) as tar:
            names = set(tar.getnames())
            manifest = json.load(tar.extractfile("package/package.json"))
        self.assertNotIn("private", manifest)
        self.assertFalse(manifest.get("dependencies"), "no runtime dependencies")
        for entry in (manifest["main"], manifest["types"]):
            self.assertIn("package/" + entry, names)
        sources = []
        for root, _, files in os.walk(os.path.join(CLIENT, "src")):
            for f in files:
                if f.endswith(".ts"):
                    rel = os.path.relpath(os.path.join(root, f), CLIENT)[:-3]
                    sources.append(rel)
        self.assertIn("src/generated/index", sources)
        expected = {"package/dist/%s%s" % (s, ext) for s in sources for ext in (".js", ".d.ts")}
        self.assertEqual(expected - names, set())
        extra = {n for n in names - expected
                 if n not in ("package/package.json", "package/README.md")}
        self.assertEqual(extra, set(), "only the built client ships")

    def test_readme_example_from_the_installed_tarball(self):
        app = os.path.join(self.tmp, "app")
        os.mkdir(app)
        with open(os.path.join(app, "package.json"), "w") as f:
            json.dump({"name": "scratch-app", "version": "1.0.0", "private": True}, f)
        run(["npm", "install", "--offline", "--no-audit", "--no-fund", self.tarball],
            cwd=app, env=npm_env())
        installed = os.path.join(app, "node_modules", "warden-client")
        self.assertTrue(os.path.isfile(os.path.join(installed, "dist", "src", "index.d.ts")))

        with open(os.path.join(CLIENT, "README.md"), encoding="utf-8") as f:
            example = re.findall(r"```ts\n(.*?)```", f.read(), re.S)[0]
        self.assertIn('from "warden-client"', example)
        with open(os.path.join(app, "example.ts"), "w", encoding="utf-8") as f:
            f.write(example)
        # Compiled against the installed .d.ts files (and @types/node from the
        # client's devDependencies): the types ship and are enough.
        with open(os.path.join(app, "tsconfig.json"), "w") as f:
            json.dump({"compilerOptions": {
                "target": "es2022", "module": "nodenext", "moduleResolution": "nodenext",
                "strict": True, "types": ["node"],
                "typeRoots": [os.path.join(NODE_MODULES, "@types")], "outDir": "out"},
                "files": ["example.ts"]}, f)
        run([os.path.join(NODE_MODULES, ".bin", "tsc"), "-p", app], cwd=app)

        env = dict(npm_env(), WARDEN_BIN=os.path.abspath(WARDEN_BIN))
        out = run(["node", os.path.join(app, "out", "example.js")], cwd=app, env=env)
        lines = dict(line.split(": ", 1) for line in out.splitlines())
        self.assertIn("name: 'warden'", lines["server"])
        self.assertIn("40 120", lines["after resize"])
        self.assertEqual(lines["shell exit code"], "3")
        self.assertIn("enforced: true", lines["sandbox"])
        self.assertEqual(lines["stdout"], "wrote inside.txt")
        self.assertIn("Read-only file system", lines["stderr"])
        self.assertEqual(lines["exit code"], "2")
        self.assertTrue(lines["error"].startswith("-32004 "), lines["error"])
        self.assertEqual(lines["exited"], "last 0")
        self.assertEqual(lines["server exit code"], "0")

        # Plain JavaScript: require() the installed package by name.
        out = run(["node", "-e",
                   "const w = require('warden-client');"
                   "console.log(typeof w.WardenClient.start, typeof w.findWarden, w.VERSION)"],
                  cwd=app, env=env)
        self.assertEqual(out.split()[:2], ["function", "function"])


if __name__ == "__main__":
    unittest.main()
