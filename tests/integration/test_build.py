"""Builds: -Werror is for development and CI (an option scripts/test.sh turns
on), and the sources compile warning-free with the Release flags, where the
optimiser finds warnings (maybe-uninitialized) the other builds do not."""

import glob
import os
import re
import shutil
import subprocess

from wardenrpc import WARDEN_BIN, run_tests

SRC = os.path.abspath(os.environ.get("WARDEN_SOURCE_DIR",
                                     os.path.join(os.path.dirname(__file__), "..", "..")))


def read(path):
    with open(os.path.join(SRC, path)) as f:
        return f.read()


def test_werror_is_an_option_off_by_default():
    cm = read("CMakeLists.txt")
    assert re.search(r'option\(WARDEN_WERROR\s+"[^"]*"\s+OFF\)', cm), "WARDEN_WERROR option"
    for m in re.finditer(r"add_compile_options\(([^)]*)\)", cm):
        start = m.start()
        guarded = cm.rfind("if(WARDEN_WERROR)", 0, start) > cm.rfind("endif()", 0, start)
        assert "-Werror" not in m.group(1) or guarded, m.group(0)
    test_sh = read("scripts/test.sh")
    configures = [l for l in test_sh.splitlines() if l.startswith("cmake -S")]
    assert configures and all("-DWARDEN_WERROR=ON" in l for l in configures), configures


def test_release_flags_compile_without_warnings():
    cc = shutil.which(os.environ.get("CC", "cc"))
    assert cc, "no C compiler"
    generated = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(WARDEN_BIN))),
                             "generated")
    assert os.path.exists(os.path.join(generated, "server", "version.h")), generated
    pkg = subprocess.run(["pkg-config", "--cflags", "jansson", "libuv", "libcurl", "libseccomp"],
                         capture_output=True, text=True, check=True).stdout.split()
    files = sorted(glob.glob(os.path.join(SRC, "server", "**", "*.c"), recursive=True)
                   + glob.glob(os.path.join(SRC, "protocol", "*.c"))
                   + glob.glob(os.path.join(SRC, "handlers", "*.c")))
    assert len(files) > 20, files
    failures = []
    for f in files:
        # CMake's Release flags for C are -O3 -DNDEBUG.
        p = subprocess.run([cc, "-std=gnu17", "-O3", "-DNDEBUG", "-Wall", "-Wextra", "-Werror",
                            "-Wno-unused-parameter", "-Wno-format-truncation", "-D_GNU_SOURCE",
                            "-DWARDEN_EXEC_HAVE_SANDBOX=1", "-I", SRC, "-I", generated, *pkg,
                            "-c", f, "-o", os.devnull], capture_output=True, text=True)
        if p.returncode != 0:
            failures.append("%s:\n%s" % (os.path.relpath(f, SRC), p.stderr[-2000:]))
    assert not failures, "\n".join(failures)


def test_nothing_points_outside_the_repository():
    files = subprocess.run(["git", "ls-files"], cwd=SRC, capture_output=True, text=True,
                           check=True).stdout.split()
    hits = []
    for f in files:
        if f.startswith(("schema/", "clients/ts/src/generated/")) or f == "tests/integration/test_build.py":
            continue
        try:
            with open(os.path.join(SRC, f), encoding="utf-8") as fh:
                text = fh.read()
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        for needle in ("/work/shared", "../shared/", "anchors/install-codex"):
            if needle in text:
                hits.append("%s: %s" % (f, needle))
    assert not hits, hits


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def offline_env(cache):
    env = dict(os.environ)
    env["WARDEN_BENCH_CACHE"] = cache
    # npm's registry on a closed loopback port: unreachable, fails fast
    env["npm_config_registry"] = "http://127.0.0.1:%d/" % free_port()
    env["npm_config_fetch_retries"] = "0"
    env["npm_config_fetch_timeout"] = "2000"
    env["npm_config_cache"] = os.path.join(cache, "npm-cache")
    env["npm_config_offline"] = "false"
    return env


def test_bench_installs_codex_into_its_cache_and_runs_without_it():
    import tempfile
    script = os.path.join(SRC, "bench", "install-references.sh")
    with tempfile.TemporaryDirectory() as cache:
        env = offline_env(cache)
        p = subprocess.run(["bash", script, "codex"], capture_output=True, text=True, env=env,
                           timeout=600)
        assert p.returncode == 1 and p.stdout == "", (p.returncode, p.stdout, p.stderr)
        assert "codex 0.169.0" in p.stderr or "@openai/codex@0.169.0" in p.stderr, p.stderr
        assert os.path.isdir(os.path.join(cache, "codex-0.169.0")), os.listdir(cache)
        # The whole benchmark still runs, and says the reference is missing.
        benv = dict(env, WARDEN_BIN=WARDEN_BIN, WARDEN_BENCH_QUICK="1",
                    WARDENBENCH=os.path.join(os.path.dirname(os.path.dirname(
                        os.path.abspath(WARDEN_BIN))), "bench", "wardenbench"))
        benv.pop("WARDEN_BENCH_SKIP_CODEX", None)
        benv.pop("CODEX_BIN", None)
        p = subprocess.run(["bash", os.path.join(SRC, "bench", "run.sh"), "--only", "startup"],
                           capture_output=True, text=True, env=benv, timeout=600)
        assert p.returncode == 0, (p.stdout, p.stderr[-2000:])
        assert "codex: not installed, the reference is missing" in p.stdout, p.stdout
        assert "| startup: " in p.stdout, p.stdout
        # An installed, pinned codex in the cache is found without the network.
        arch = {"x86_64": ("codex-linux-x64", "x86_64-unknown-linux-musl"),
                "aarch64": ("codex-linux-arm64", "aarch64-unknown-linux-musl")}[os.uname().machine]
        binary = os.path.join(cache, "codex-0.169.0", "node_modules", "@openai", arch[0],
                              "vendor", arch[1], "bin", "codex")
        os.makedirs(os.path.dirname(binary))
        with open(binary, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(binary, 0o755)
        p = subprocess.run(["bash", script, "codex"], capture_output=True, text=True, env=env,
                           timeout=60)
        assert p.returncode == 0 and p.stdout.strip() == binary, (p.stdout, p.stderr)


if __name__ == "__main__":
    run_tests(globals())
