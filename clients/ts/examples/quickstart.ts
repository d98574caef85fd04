// Drive warden from TypeScript: a PTY shell, then a sandboxed command.
//   WARDEN_BIN=build/server/warden node clients/ts/dist/examples/quickstart.js
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WardenClient, WardenError } from "warden-client";

async function main(): Promise<void> {
  const client = await WardenClient.start(); // starts $WARDEN_BIN (or warden on PATH), initializes
  console.log("server:", client.serverInfo.serverInfo);

  // An interactive shell in a PTY: type into it, resize it, read its output.
  const shell = await client.spawn(["sh"], {
    tty: true,
    size: { rows: 24, cols: 80 },
    sandbox: { type: "dangerFullAccess" },
  });
  await shell.write("stty size\n");
  console.log("before resize:", JSON.stringify((await shell.readUntil("24 80", 10000)).toString()));
  await shell.resize(40, 120);
  await shell.write("stty size; exit 3\n");
  console.log("after resize:", JSON.stringify((await shell.readUntil("40 120", 10000)).toString()));
  console.log("shell exit code:", (await shell.wait(10000)).exitCode);

  // A sandboxed command: it may write its workspace (cwd), nothing else.
  const workspace = mkdtempSync(join(tmpdir(), "warden-example-"));
  try {
    const proc = await client.run(
      ["sh", "-c", 'echo hi > inside.txt && echo wrote inside.txt; echo x > "$HOME/outside.txt"'],
      { cwd: workspace, sandbox: { type: "workspaceWrite", networkAccess: false } },
      10000,
    );
    console.log("sandbox:", proc.sandbox);
    console.log("stdout:", proc.stdout.toString().trim());
    console.log("stderr:", proc.stderr.toString().trim());
    console.log("exit code:", proc.exitCode);
  } finally {
    rmSync(workspace, { recursive: true, force: true });
  }

  // Errors carry the JSON-RPC code, message and data.
  try {
    await client.spawn(["/no/such/program"]);
  } catch (error) {
    if (!(error instanceof WardenError)) throw error;
    console.log("error:", error.code, error.message, error.data);
  }

  // Notifications: per process (proc.events()), or all of them as events.
  client.on("process/exited", (params) => console.log("exited:", params.processId, params.exitCode));
  await client.run(["true"], { processId: "last" });
  console.log("server exit code:", await client.close());
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
