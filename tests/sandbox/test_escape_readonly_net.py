"""Issue 9 item 2: network access must not weaken filesystem isolation.

{"type":"readOnly","networkAccess":true} (and workspaceWrite with network)
used to run under Landlock alone: chmod (setuid bits too), utimes and
xattrs changed host files, the host's /dev/pts was open read-write and host
SysV shared memory was writable. Every attempt here succeeds unsandboxed and
must fail sandboxed, as root and as uid 65534, workspace under /tmp and
/var/tmp; the host network must stay reachable (full network)."""

import ctypes
import os
import random
import socket
import sys

sys.path.insert(0, os.path.dirname(__file__))
from sbxenv import each, FULL  # noqa: E402
from wardenrpc import run_tests  # noqa: E402

READONLY_NET = {"type": "readOnly", "networkAccess": True}
WRITE_NET = {"type": "workspaceWrite", "networkAccess": True}

ATTEMPT = r'''
import ctypes, os, sys
what, arg = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
try:
    if what == "chmod":
        os.chmod(arg, 0o777)
    elif what == "setuid":
        os.chmod(arg, 0o4755)
    elif what == "fchmod":
        fd = os.open(arg, os.O_RDONLY)
        os.fchmod(fd, 0o777)
    elif what == "utime":
        os.utime(arg, (1, 1))
    elif what == "setxattr":
        os.setxattr(arg, "user.warden", b"x")
    elif what == "pts":
        fd = os.open(arg, os.O_RDWR | os.O_NOCTTY)
        os.write(fd, b"typed\n")
    elif what == "shm":
        shmid = libc.shmget(int(arg), 0, 0)
        if shmid < 0:
            raise OSError(ctypes.get_errno(), "shmget")
        libc.shmat.restype = ctypes.c_void_p
        addr = libc.shmat(shmid, None, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "shmat")
        ctypes.memmove(addr, b"pwned", 5)
    elif what == "tcp":
        import socket
        socket.create_connection(("127.0.0.1", int(arg)), timeout=5).close()
except OSError as e:
    print("refused", what, e)
    sys.exit(1)
print("ok", what)
'''


def shm_create():
    libc = ctypes.CDLL(None, use_errno=True)
    key = random.randint(0x10000, 0x7fffffff)
    shmid = libc.shmget(key, 4096, 0o1000 | 0o666)  # IPC_CREAT | 0666
    assert shmid >= 0, ctypes.get_errno()
    return libc, key, shmid


def shm_read(libc, shmid):
    libc.shmat.restype = ctypes.c_void_p
    addr = libc.shmat(shmid, None, 0)
    data = ctypes.string_at(addr, 5)
    libc.shmdt(ctypes.c_void_p(addr))
    return data


def check(e, label):
    f = os.path.join(e.outside, "file")
    with open(f, "w") as fh:
        fh.write("host\n")
    os.chown(f, e.uid, e.gid)
    for policy in (READONLY_NET, WRITE_NET):
        pid, res = e.spawn(["true"], policy)
        assert pid, res
        e.server.wait_exit(pid)
        for what in ("chmod", "setuid", "fchmod", "utime"):
            os.chmod(f, 0o644)
            before = os.stat(f)
            code, out = e.py(ATTEMPT, policy, what, f)
            after = os.stat(f)
            assert code == 1, (label, policy, what, out)
            assert (after.st_mode, after.st_mtime) == (before.st_mode, before.st_mtime), \
                (label, what)
            bc, bout = e.py(ATTEMPT, FULL, what, f)  # the attempt is a real one
            assert bc == 0, (label, what, bout)
        bc, bout = e.py(ATTEMPT, FULL, "setxattr", f)
        if bc == 0:  # the file system takes user xattrs
            os.removexattr(f, "user.warden")
            code, out = e.py(ATTEMPT, policy, "setxattr", f)
            assert code == 1, (label, out)
            assert "user.warden" not in os.listxattr(f), label
        # another terminal of the same user
        master, slave = os.openpty()
        try:
            name = os.ttyname(slave)
            os.chown(name, e.uid, e.gid)
            assert e.py(ATTEMPT, FULL, "pts", name)[0] == 0
            os.set_blocking(master, False)
            try:
                os.read(master, 100)
            except BlockingIOError:
                pass
            code, out = e.py(ATTEMPT, policy, "pts", name)
            assert code == 1, (label, out)
            try:
                got = os.read(master, 100)
            except BlockingIOError:
                got = b""
            assert b"typed" not in got, (label, got)
        finally:
            os.close(master)
            os.close(slave)
        # host SysV shared memory
        libc, key, shmid = shm_create()
        try:
            assert e.py(ATTEMPT, FULL, "shm", key)[0] == 0
            ctypes.memset  # keep ctypes referenced
            libc.shmat.restype = ctypes.c_void_p
            addr = libc.shmat(shmid, None, 0)
            ctypes.memmove(addr, b"clean", 5)
            libc.shmdt(ctypes.c_void_p(addr))
            code, out = e.py(ATTEMPT, policy, "shm", key)
            assert code == 1, (label, out)
            assert shm_read(libc, shmid) == b"clean", label
        finally:
            libc.shmctl(shmid, 0, None)  # IPC_RMID
        # the host network is kept
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        try:
            code, out = e.py(ATTEMPT, policy, "tcp", srv.getsockname()[1])
            assert code == 0, (label, out)
        finally:
            srv.close()
        # network access does not change the backend
        assert res["sandbox"] == {"enforced": True, "backend": "namespaces", "network": "full"}, \
            (label, res)


def test_network_does_not_weaken_the_filesystem():
    each(check)


if __name__ == "__main__":
    run_tests(globals())
