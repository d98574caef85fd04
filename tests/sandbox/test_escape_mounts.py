"""Issue 9 item 7: devices and mounts. Every mount in the sandbox is nosuid
and nodev except the sandbox's own /dev (a device node anywhere else does
not open); no mount propagates from the host (a tmpfs mounted on the host
under a read-only area while a command runs does not appear, let alone
writable); a policy entry for /proc, /dev, /dev/shm or /dev/null is enforced
or refused (-32003), never ignored, and the host's /dev is never bound. As
root and as uid 65534, workspace under /tmp and /var/tmp."""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from sbxenv import each, split, Env, matrix, FULL, WORKSPACE  # noqa: E402
from wardenrpc import run_tests  # noqa: E402

MOUNTINFO = r'''
bad = []
mounts = []
for line in open("/proc/self/mountinfo"):
    f = line.split()
    sep = f.index("-")
    mounts.append((f[0], f[1], f[4], f[5].split(","), f[6:sep], f[sep + 1]))
parents = set(m[1] for m in mounts)
for mid, parent, mnt, opts, optional, fstype in mounts:
    if optional:
        bad.append("propagation %s %s" % (mnt, optional))
    if "nosuid" not in opts:
        bad.append("suid " + mnt)
    # exempt: the sandbox's own /dev, i.e. mounts on the topmost /dev tmpfs
    if "nodev" not in opts and not (mnt == "/dev" or mnt.startswith("/dev/")):
        bad.append("dev " + mnt)
tops = [m for m in mounts if m[2] == "/dev" and
        not any(o[2] == "/dev" and o[1] == m[0] for o in mounts)]
if len(tops) != 1 or tops[0][5] != "tmpfs":
    bad.append("/dev is not the sandbox's own tmpfs: %s" % tops)
for mid, parent, mnt, opts, optional, fstype in mounts:
    # a host device tree (the one the base bind brought along, covered by
    # ours) is read-only and nodev
    if fstype == "devtmpfs" and mnt == "/dev" and not ("nodev" in opts and "ro" in opts):
        bad.append("host /dev usable " + mnt)
    if "nodev" not in opts and mnt.startswith("/dev") and parent != tops[0][0] and \
            mnt != "/dev" and not mnt.startswith("/dev/pts"):
        bad.append("device mount outside our /dev " + mnt)
print("\n".join(bad) or "clean")
'''

# a restricted read view (explicit system directories)
RESTRICTED = [(p, "read") for p in ("/usr", "/bin", "/lib", "/lib64", "/etc") if os.path.exists(p)]

READ_DEV = r'''
import sys
try:
    with open(sys.argv[1], "rb") as f:
        assert len(f.read(4)) == 4
except OSError as e:
    print("refused", e)
    sys.exit(1)
print("read")
'''


def check_nodev_nosuid(e, label):
    node = os.path.join(e.outside, "zero")
    os.mknod(node, 0o20666, os.makedev(1, 5))  # a copy of /dev/zero
    wnode = os.path.join(e.ws, "zero")
    os.mknod(wnode, 0o20666, os.makedev(1, 5))
    policies = [WORKSPACE, {"type": "readOnly"}, {"type": "readOnly", "networkAccess": True},
                split([(":root", "read"), (":cwd", "write")], network="full"),
                split(RESTRICTED + [(":cwd", "write"), (e.outside, "read")])]
    failures = []
    for policy in policies:
        for n in (node, wnode):
            code, out = e.both(READ_DEV, policy, n)
            if code != 1:
                failures.append((policy, "device node opened", n, out))
        # the sandbox's /dev nodes are the host's: their metadata must not change
        # (chmod to the mode they already have: the attempt, not the damage)
        code, out = e.run(["sh", "-c", "chmod 666 /dev/null || chmod 666 /dev/zero || "
                           "chmod 666 /dev/full || exit 0; echo changed; exit 1"], policy)
        if code != 0:
            failures.append((policy, "chmod of a /dev node", out))
        code, out = e.run(["sh", "-c", "echo x > /dev/null && head -c 2 /dev/zero | wc -c"],
                          policy)
        if code != 0 or out.strip() != "2":
            failures.append((policy, "/dev nodes unusable", out))
        code, out = e.py(MOUNTINFO, policy)
        if code != 0 or out.strip() != "clean":
            failures.append((policy, out))
    assert not failures, (label, failures)


WAIT_AND_WRITE = r'''
import os, sys, time
go, target = sys.argv[1], sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.02)
try:
    with open(os.path.join(target, "x"), "w") as f:
        f.write("inside")
except OSError as e:
    print("refused", e)
    sys.exit(1)
print("wrote")
'''


def check_propagation(e, label):
    mnt = os.path.join(e.outside, "mnt")
    os.makedirs(mnt)
    go = os.path.join(e.ws, "go")
    for policy in (WORKSPACE, {"type": "readOnly", "networkAccess": True}):
        if os.path.exists(go):
            os.unlink(go)
        pid, res = e.spawn(["/usr/bin/python3", "-c", WAIT_AND_WRITE, go, mnt], policy)
        assert pid, res
        time.sleep(0.3)  # the sandbox is built (spawn answered) and waiting
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0777", "tmpfs", mnt], check=True)
        try:
            with open(go, "w"):
                pass
            x = e.server.wait_exit(pid, timeout=60)
            out = e.server.output_of(pid).decode()
            assert x["exitCode"] == 1, (label, policy, "host mount writable inside", out)
            assert not os.path.exists(os.path.join(mnt, "x")), label
        finally:
            subprocess.run(["umount", mnt], check=True)


def test_nodev_nosuid_everywhere_but_own_dev():
    each(check_nodev_nosuid)


def test_host_mounts_do_not_propagate():
    each(check_propagation)


REFUSED = [("/dev", "write"), ("/dev", "none"), ("/dev/shm", "none"), ("/dev/null", "none"),
           ("/proc", "write"), ("/proc", "none"), ("/proc/sys", "none"), ("/dev/kmsg", "write")]


def test_dev_and_proc_entries_enforced_or_refused():
    failures = []
    for label, user, base in matrix():
        with Env(user, base) as e:
            for path, access in REFUSED:
                policy = split([(":root", "read"), (":cwd", "write"), (path, access)])
                code, out = e.run(["sh", "-c", "echo x > /dev/null"], policy)
                if code is not None or out.get("code") != -32003:
                    failures.append((label, path, access, "not refused", code, out))
            # what the sandbox's own /dev and /proc give is enforced
            policy = split([(":root", "read"), (":cwd", "write"), ("/dev/null", "write"),
                            ("/dev/shm", "write"), ("/proc", "read"), ("/dev", "read")])
            tag = "warden-esc-%d" % os.getpid()
            code, out = e.run(["sh", "-c", "echo x > /dev/null && echo s > /dev/shm/%s && "
                               "cat /dev/shm/%s && head -c1 /proc/self/stat" % (tag, tag)],
                              policy)
            if code != 0 or "s" not in out:
                failures.append((label, "own /dev entries", out))
            if os.path.exists("/dev/shm/" + tag):
                os.unlink("/dev/shm/" + tag)
                failures.append((label, "wrote the host's /dev/shm"))
            # restricted read with /dev readable: still the sandbox's own /dev
            policy = split(RESTRICTED + [(":cwd", "write"), ("/dev", "read")])
            code, out = e.run(["sh", "-c", "ls /dev"], policy)
            if code != 0 or "kmsg" in out or "loop0" in out:
                failures.append((label, "restricted /dev", out))
            # a host device named readable in a restricted view is refused
            policy = split(RESTRICTED + [(":cwd", "write"), ("/dev/kmsg", "read")])
            code, out = e.run(["true"], policy)
            if code is not None or out.get("code") != -32003:
                failures.append((label, "/dev/kmsg read not refused", code, out))
    assert not failures, failures


def test_minimal_view_runs_dynamic_binaries():
    """Issue 9 item 11 (views): the :minimal read view keeps merged-/usr's
    top-level symlinks (/lib64 -> usr/lib64: the dynamic loader's path)."""
    failures = []
    for label, user, base in matrix():
        with Env(user, base) as e:
            policy = split([(":minimal", "read"), (":cwd", "write")])
            code, out = e.run(["/usr/bin/python3", "-c", "print('dyn-ok')"], policy)
            if code != 0 or "dyn-ok" not in out:
                failures.append((label, out))
            code, out = e.run(["sh", "-c", "ls /bin/sh && cat /etc/hostname >/dev/null; echo x"],
                              policy)
            if code != 0:
                failures.append((label, out))
    assert not failures, failures


if __name__ == "__main__":
    run_tests(globals())
