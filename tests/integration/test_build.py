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


if __name__ == "__main__":
    run_tests(globals())
