#!/usr/bin/env python3
"""A short walkthrough of warden, driven by the Python client (clients/python).

    python3 examples/demo.py --warden build/server/warden

It starts warden as a child process, talks JSON-RPC to it over stdio, and
prints what happens: the handshake, an interactive shell in a PTY, a pipe
command, a sandboxed command whose forbidden writes are blocked, the exit.
"""

import argparse
import os
import socket
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))

from warden_client import WardenClient  # noqa: E402

TIMEOUT = 10  # seconds; every step takes a fraction of that


def step(title):
    print("\n== %s" % title)


def show(label, data):
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    lines = text.replace("\r\n", "\n").strip("\n").split("\n")
    print("  %-11s %s" % (label, lines[0]))
    for line in lines[1:]:
        print("  %-11s %s" % ("", line))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warden", help="the warden binary (default: $WARDEN_BIN, then PATH)")
    args = parser.parse_args()

    step("initialize: start warden and shake hands")
    client = WardenClient(args.warden, client_name="warden-demo", request_timeout=TIMEOUT)
    info = client.server_info
    show("server", "%(name)s %(version)s, protocol %(v)d" % dict(info["serverInfo"], v=info["protocolVersion"]))
    show("platform", "%(os)s %(arch)s, kernel %(kernel)s" % info["platform"])
    show("sandbox", ", ".join("%s=%s" % kv for kv in info["sandbox"].items()))

    step("a shell in a PTY: type into it, resize it, read its output")
    shell = client.spawn(["sh"], process_id="shell", tty=True, size={"rows": 24, "cols": 80},
                         sandbox={"type": "dangerFullAccess"})
    show("spawned", "sh, pid %d, 24x80" % shell.pid)
    shell.write("echo hello from $(tty); stty size\n")
    show("typed", "echo hello from $(tty); stty size")
    show("screen", shell.read_until("24 80", TIMEOUT))
    shell.resize(30, 100)
    show("resized", "to 30 rows x 100 columns")
    shell.write("stty size\n")
    show("typed", "stty size")
    show("screen", shell.read_until("30 100", TIMEOUT))
    shell.write("exit 7\n")
    show("exit", "typed 'exit 7'; process/exited says exitCode=%s" % shell.wait(TIMEOUT)["exitCode"])

    step("a pipe command: stdin streamed in, stdout and stderr kept apart")
    proc = client.spawn(["sh", "-c", "tr a-z A-Z; echo 'a note on stderr' >&2; exit 3"],
                        process_id="pipe", stream_stdin=True, sandbox={"type": "dangerFullAccess"})
    proc.write("hello through a pipe\n", close_stdin=True)
    proc.wait(TIMEOUT)
    show("stdin", "hello through a pipe")
    show("stdout", proc.stdout)
    show("stderr", proc.stderr)
    show("exit code", proc.exit_code)

    step("a sandboxed command: workspaceWrite, no network, cwd = a fresh temp dir")
    with tempfile.TemporaryDirectory(prefix="warden-demo-") as workspace:
        os.mkdir(os.path.join(workspace, ".git"))
        with open(os.path.join(workspace, ".git", "config"), "w") as f:
            f.write("[core]\n")
        # Outside the workspace (and not under /tmp, which workspaceWrite allows).
        outside = os.path.join(os.path.expanduser("~"), "warden-demo-%d.txt" % os.getpid())
        script = "; ".join([
            "echo hi > inside.txt && echo 'wrote inside.txt'",
            'echo x > "$1" && echo "wrote $1"',
            "echo '[evil]' >> .git/config && echo 'wrote .git/config'",
            "/usr/bin/python3 -c 'import socket,sys; socket.create_connection((\"127.0.0.1\","
            " int(sys.argv[1])), 3)' \"$2\" 2>&1 | tail -n 1"
            " | sed \"s/^/connect to the host's 127.0.0.1:$2: /\" >&2",
            "exit 0",
        ])
        # A listener on the host's loopback: the sandbox has a loopback of its own.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = str(listener.getsockname()[1])
        proc = client.run(["sh", "-c", script, "sh", outside, port], process_id="sandboxed",
                          cwd=workspace, sandbox={"type": "workspaceWrite", "networkAccess": False},
                          timeout=TIMEOUT)
        show("policy", '{"type": "workspaceWrite", "networkAccess": false}')
        show("enforced", "%(enforced)s by %(backend)s, network %(network)s" % proc.sandbox)
        show("stdout", proc.stdout)
        show("stderr", proc.stderr)
        show("on disk", "inside.txt: %s; %s: %s; .git/config unchanged: %s" % (
            os.path.exists(os.path.join(workspace, "inside.txt")), outside,
            "exists" if os.path.exists(outside) else "absent",
            open(os.path.join(workspace, ".git", "config")).read() == "[core]\n"))
        listener.close()
        if os.path.exists(outside):
            os.unlink(outside)

    step("exit: shutdown terminates every process, answers, and exits 0")
    show("exit code", "warden exited with %s" % client.close())


if __name__ == "__main__":
    main()
