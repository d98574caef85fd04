"""The asyncio API: concurrent commands, streamed output, an approval callback.

    WARDEN_BIN=build/server/warden python3 clients/python/examples/quickstart_async.py
"""

import asyncio

from warden_client import AsyncWardenClient


async def on_approval(params):
    # Called for approval/network requests (a blocked connection asking to go out).
    print("approve?", params["host"], params["port"])
    return "deny"


async def main():
    async with AsyncWardenClient(on_approval=on_approval) as client:
        # Three commands at once; each process has its own ordered event stream.
        procs = await asyncio.gather(*[
            client.spawn(["sh", "-c", "sleep 0.$1; echo done $1", "sh", str(n)])
            for n in (3, 1, 2)])
        for proc in procs:
            await proc.wait(timeout=10)
            print(proc.process_id, proc.stdout.decode().strip(), "exit", proc.exit_code)

        # Stream a process's output as it arrives.
        counter = await client.spawn(["sh", "-c", "for i in 1 2 3; do echo tick $i; sleep 0.05; done"])
        async for event in counter.events(timeout=10):
            if event.method == "process/output":
                print("output:", event.data.decode().strip())
            else:
                print("exited:", event.params["exitCode"])


asyncio.run(main())
