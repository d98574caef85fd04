"""Escape attempts, run inside (and outside) a sandbox by test_escape.py.

usage: probe.py NAME [ARG...]; exit 0 when the action succeeded, 1 when the
kernel refused it (the errno is printed), 2 on a usage error. Standard
library only, and only /usr/bin/python3 is assumed inside the sandbox."""

import ctypes
import errno
import json
import os
import socket
import struct
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)


def refused(what, err):
    print("refused %s: %s (%s)" % (what, errno.errorcode.get(err, err), os.strerror(err)))
    sys.exit(1)


def check(rc, what):
    if rc < 0:
        refused(what, ctypes.get_errno())


def sandbox_view():
    """What this process can see of its own confinement: the capability
    sets, no_new_privs and seccomp from /proc/self/status, the namespaces'
    inode numbers, whether Landlock stops a write that nothing else stops
    (its own /proc/self/comm: the mount view leaves procfs writable, only
    Landlock's read-only rule on /proc refuses it), and whether / is a
    read-only mount."""
    v = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, val = line.partition(":")
            if k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"):
                v[k] = val.strip()
    v["ns"] = {}
    for ns in ("user", "mnt", "pid", "net", "ipc"):
        try:
            v["ns"][ns] = os.readlink("/proc/self/ns/" + ns)
        except OSError as e:
            v["ns"][ns] = "error:%d" % e.errno
    try:
        with open("/proc/self/comm", "w") as f:
            f.write("probe")
        v["procWrite"] = "allowed"
    except OSError as e:
        v["procWrite"] = errno.errorcode.get(e.errno, str(e.errno))
    v["rootReadOnly"] = bool(os.statvfs("/").f_flag & os.ST_RDONLY)
    return v


def main(argv):
    name, args = argv[1], argv[2:]
    try:
        if name == "write":
            with open(args[0], "a") as f:
                f.write("probe\n")
        elif name == "mkdir":
            os.mkdir(args[0])
        elif name == "replace-with-symlink":
            target = args[0]
            decoy = target + "-decoy"
            os.makedirs(decoy, exist_ok=True)
            try:
                os.rename(target, target + "-old")
            except FileNotFoundError:
                pass
            os.symlink(decoy, target)
        elif name == "read":
            with open(args[0]) as f:
                f.read()
        elif name == "ptrace":
            pid = os.fork()
            if pid == 0:
                time.sleep(5)
                os._exit(0)
            rc = libc.ptrace(16, pid, None, None)  # PTRACE_ATTACH
            err = ctypes.get_errno()
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            if rc < 0:
                refused("ptrace", err)
        elif name == "mount":
            check(libc.mount(b"none", args[0].encode(), b"tmpfs", 0, None), "mount")
        elif name == "userns":
            check(libc.unshare(0x10000000), "unshare(CLONE_NEWUSER)")
        elif name == "io_uring":
            params = ctypes.create_string_buffer(120)
            fd = libc.syscall(425, 8, params)
            check(fd, "io_uring_setup")
            os.close(fd)
        elif name == "tiocsti":
            check(libc.ioctl(0, 0x5412, ctypes.c_char_p(b"x")), "ioctl(TIOCSTI)")
        elif name == "icmp":
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            except PermissionError:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
            s.settimeout(2)
            s.sendto(struct.pack("!BBHHH", 8, 0, 0xf7ff, 0, 0), (args[0], 0))
            s.recvfrom(1024)
        elif name == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(b"probe", (args[0], int(args[1])))
        elif name == "tcp":
            s = socket.create_connection((args[0], int(args[1])), timeout=3)
            s.sendall(b"probe")
            s.close()
        elif name == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(args[0])  # reaching the listener is the escape
            try:
                s.sendall(b"probe")
            except OSError:
                pass  # the listener closes right after accepting
        elif name == "view":
            print(json.dumps(sandbox_view()))
            sys.exit(0)
        elif name == "netlink":
            socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
        else:
            print("unknown probe", name)
            sys.exit(2)
    except OSError as e:
        refused(name, e.errno or 0)
    print("ok %s" % name)
    sys.exit(0)


if __name__ == "__main__":
    main(sys.argv)
