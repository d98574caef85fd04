"""Drive warden from Python: a PTY shell, then a sandboxed command.

    WARDEN_BIN=build/server/warden python3 clients/python/examples/quickstart.py
"""

import tempfile

from warden_client import WardenClient, WardenError

with WardenClient() as client:  # starts $WARDEN_BIN (or warden on PATH), initializes
    print("server:", client.server_info["serverInfo"])

    # An interactive shell in a PTY: type into it, resize it, read its output.
    shell = client.spawn(["sh"], tty=True, size={"rows": 24, "cols": 80},
                         sandbox={"type": "dangerFullAccess"})
    shell.write("stty size\n")
    print("before resize:", shell.read_until("24 80", timeout=10))
    shell.resize(40, 120)
    shell.write("stty size; exit 3\n")
    print("after resize:", shell.read_until("40 120", timeout=10))
    print("shell exit code:", shell.wait(timeout=10)["exitCode"])

    # A sandboxed command: it may write its workspace (cwd), nothing else.
    with tempfile.TemporaryDirectory() as workspace:
        proc = client.run(
            ["sh", "-c", 'echo hi > inside.txt && echo wrote inside.txt; echo x > "$HOME/outside.txt"'],
            cwd=workspace, sandbox={"type": "workspaceWrite", "networkAccess": False},
            timeout=10)
        print("sandbox:", proc.sandbox)
        print("stdout:", proc.stdout.decode().strip())
        print("stderr:", proc.stderr.decode().strip())
        print("exit code:", proc.exit_code)

    # Errors carry the JSON-RPC code, message and data.
    try:
        client.spawn(["/no/such/program"])
    except WardenError as error:
        print("error:", error.code, error.message, error.data)
