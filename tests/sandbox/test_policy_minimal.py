"""The `:minimal` read view (issue 9, item 11): a dynamically linked binary
runs in it on merged-/usr systems, where /bin, /lib64 ... are symlinks into
/usr (the view recreates them as symlinks, never as second binds that
would bypass a carveout), as root and as uid 65534, workspaces under /tmp
and /var/tmp."""

import os

from policy_harness import PY, Box, each_setup, label
from wardenrpc import run_tests

MINIMAL = {"type": "split", "network": {"mode": "none"}, "fileSystem": {"entries": [
    {"path": ":minimal", "access": "read"}, {"path": ":cwd", "access": "write"}]}}


def check_minimal(user, loc):
    b = Box(user, loc)
    try:
        ws = b.mkdir("ws")
        b.start()
        what = "minimal view %s" % label(user, loc)
        # a dynamic ELF binary by its /usr path: needs the ELF interpreter
        # at /lib64/ld-linux-*.so.2 (or /lib/ld-*), a symlink on merged /usr
        for argv in (["/usr/bin/true"], ["/bin/sh", "-c", "echo shell-ok > out.txt"],
                     [PY, "-c", "print('py-ok')"], ["env"]):
            r, code, out = b.spawn(argv, MINIMAL, ws)
            assert code == 0, (what, argv, r, out)
        with open(os.path.join(ws, "out.txt")) as f:
            assert f.read() == "shell-ok\n"
        # the platform links are symlinks in the view, as on the host
        for link in ("/bin", "/lib64", "/lib", "/sbin"):
            if not os.path.islink(link):
                continue
            r, code, out = b.spawn([PY, "-c", "import os,sys; print(os.readlink(sys.argv[1]))",
                                    link], MINIMAL, ws)
            assert code == 0 and out.strip() == os.readlink(link), (what, link, out)
        # an unreadable file under /usr stays unreadable through /bin
        if os.path.islink("/bin") and os.path.realpath("/bin") == "/usr/bin":
            hidden = dict(MINIMAL)
            hidden["fileSystem"] = {"entries": MINIMAL["fileSystem"]["entries"] + [
                {"path": "/usr/bin/od", "access": "none"}]}
            r, code, out = b.spawn(["/bin/sh", "-c", "/bin/od -c /dev/null"], hidden, ws)
            assert code != 0, (what, out)
    finally:
        b.close()


def test_dynamic_binary_runs_in_minimal_view():
    each_setup(check_minimal)


if __name__ == "__main__":
    run_tests(globals())
