// The client against the real warden binary ($WARDEN_BIN).
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, test } from "node:test";
import { ErrorCode, ServerExitedError, WardenClient, WardenError } from "../src";
import { UNSANDBOXED, realWarden } from "./helpers";

const WARDEN = realWarden();
const skip = WARDEN ? false : "no warden binary: set WARDEN_BIN or build into build/";
const TIMEOUT = 30000;

const clients: WardenClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close(TIMEOUT)));
});

async function start(): Promise<WardenClient> {
  const client = await WardenClient.start({ warden: WARDEN!, requestTimeoutMs: TIMEOUT, clientName: "ts-tests", stderr: "pipe" });
  clients.push(client);
  return client;
}

async function rejection(promise: Promise<unknown>): Promise<WardenError> {
  const error = await promise.then(() => assert.fail("expected an error"), (e: unknown) => e);
  assert.ok(error instanceof WardenError, String(error));
  return error;
}

test("handshake", { skip }, async () => {
  const client = await start();
  assert.equal(client.serverInfo.serverInfo.name, "warden");
  assert.equal(client.serverInfo.protocolVersion, 1);
  assert.equal(client.serverInfo.platform.os, "Linux");
  assert.equal(typeof client.serverInfo.sandbox.userNamespaces, "boolean");
});

test("a PTY session: type, resize, read, exit", { skip }, async () => {
  const client = await start();
  const shell = await client.spawn(["sh"], { tty: true, size: { rows: 24, cols: 80 }, sandbox: UNSANDBOXED });
  // Wait for what only the shell prints ($((40+2)) expanded), not for the echo of what was typed.
  await shell.write("stty size; tty >/dev/null && echo tty-$((40+2))\n");
  assert.match((await shell.readUntil("tty-42", TIMEOUT)).toString(), /24 80/);
  await shell.resize(40, 120);
  await shell.write("stty size\n");
  await shell.readUntil("40 120", TIMEOUT);
  await shell.write("exit 7\n");
  const status = await shell.wait(TIMEOUT);
  assert.equal(status.exitCode, 7);
  assert.equal(shell.stderr.length, 0); // a PTY has one stream
});

test("stdin streaming", { skip }, async () => {
  const client = await start();
  const cat = await client.spawn(["cat"], { streamStdin: true, sandbox: UNSANDBOXED });
  assert.equal(await cat.write("hello\n"), 6);
  assert.equal((await cat.readUntil("hello\n", TIMEOUT)).toString(), "hello\n");
  await cat.write(Buffer.from("world"), { closeStdin: true });
  assert.equal((await cat.wait(TIMEOUT)).exitCode, 0);
  assert.equal(cat.stdout.toString(), "hello\nworld");
  const events = [];
  const echo = await client.spawn(["sh", "-c", "echo out; echo err >&2"], { sandbox: UNSANDBOXED });
  for await (const event of echo.events(TIMEOUT)) events.push(event);
  assert.deepEqual(events.map((e) => e.params.seq), events.map((_, i) => i + 1));
  assert.equal(echo.stdout.toString() + echo.stderr.toString(), "out\nerr\n");
});

test("terminate", { skip }, async () => {
  const client = await start();
  const proc = await client.spawn(["sleep", "100"], { sandbox: UNSANDBOXED });
  assert.equal(await proc.terminate(), true);
  const status = await proc.wait(TIMEOUT);
  assert.deepEqual([status.exitCode, status.signal], [null, "TERM"]);
});

test("errors carry their data", { skip }, async () => {
  const client = await start();
  let error = await rejection(
    client.processSpawn({ processId: "bad", argv: ["true"], tty: true, size: { rows: 0, cols: 80 }, sandbox: UNSANDBOXED }),
  );
  assert.equal(error.code, ErrorCode.InvalidParams);
  assert.equal((error.data as { path: string }).path, "params.size.rows");
  assert.ok(error.message);

  error = await rejection(client.spawn(["/nonexistent/program"], { sandbox: UNSANDBOXED }));
  assert.equal(error.code, ErrorCode.SpawnFailed);
  assert.deepEqual(error.data, { errno: 2, syscall: "execve" });

  error = await rejection(client.processTerminate({ processId: "no-such-process" }));
  assert.equal(error.code, ErrorCode.UnknownProcess);

  error = await rejection(client.requestRaw("no/such/method"));
  assert.equal(error.code, ErrorCode.MethodNotFound);

  const proc = await client.spawn(["sleep", "5"], { sandbox: UNSANDBOXED });
  error = await rejection(proc.write("x")); // stdin not open
  assert.equal(error.code, ErrorCode.InvalidParams);
  await proc.terminate("KILL");
  await proc.wait(TIMEOUT);
});

test("100 concurrent processes", { skip }, async () => {
  const client = await start();
  const procs = await Promise.all(
    Array.from({ length: 100 }, (_, i) =>
      client.spawn(["sh", "-c", "echo hello-$1", "sh", String(i)], { processId: `c${i}`, sandbox: UNSANDBOXED }),
    ),
  );
  assert.equal(new Set(procs.map((p) => p.pid)).size, 100);
  await Promise.all(procs.map((p) => p.wait(TIMEOUT)));
  procs.forEach((p, i) => {
    assert.equal(p.stdout.toString(), `hello-${i}\n`);
    assert.equal(p.exitCode, 0);
  });
});

test("requests are answered while output floods unread", { skip }, async () => {
  const client = await start();
  const size = 8 << 20; // ~11 MB of notifications, far past every pipe buffer
  const proc = await client.spawn(["head", "-c", String(size), "/dev/zero"], { sandbox: UNSANDBOXED });
  for (let i = 0; i < 20; i++) {
    const { processes } = await client.processList();
    assert.ok(processes.some((p) => p.processId === proc.processId));
  }
  assert.equal((await proc.wait(TIMEOUT)).exitCode, 0);
  assert.deepEqual(proc.stdout, Buffer.alloc(size));
});

test("a sandboxed command cannot write outside its workspace or to .git", { skip }, async () => {
  const client = await start();
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), "warden-ts-"));
  const outside = path.join(os.homedir(), `warden-ts-test-${process.pid}`);
  try {
    fs.mkdirSync(path.join(workspace, ".git"));
    fs.writeFileSync(path.join(workspace, ".git", "config"), "[core]\n");
    const proc = await client.run(
      ["sh", "-c", 'echo in > inside.txt; echo out > "$1"; echo evil >> .git/config', "sh", outside],
      { cwd: workspace, sandbox: { type: "workspaceWrite", networkAccess: false } },
      TIMEOUT,
    );
    assert.deepEqual(proc.sandbox, { enforced: true, backend: "namespaces", network: "proxy" });
    assert.ok(fs.existsSync(path.join(workspace, "inside.txt")));
    assert.ok(!fs.existsSync(outside));
    assert.equal(fs.readFileSync(path.join(workspace, ".git", "config"), "utf8"), "[core]\n");
    assert.match(proc.stderr.toString(), /Read-only file system[\s\S]*\.git\/config: Read-only file system/);
    assert.notEqual(proc.exitCode, 0);
  } finally {
    fs.rmSync(workspace, { recursive: true, force: true });
    fs.rmSync(outside, { force: true });
  }
});

test("a server killed mid-request: the client rejects, it does not hang", { skip }, async () => {
  const client = await start();
  const proc = await client.spawn(["sleep", "100"], { sandbox: UNSANDBOXED });
  const pending = client.processRead({ processId: proc.processId, afterSeq: 0, waitMs: 60000 });
  const waiting = proc.wait();
  // requests are handled in order: once this is answered, the read waits in the server
  await client.processList();
  process.kill(client.serverPid!, "SIGKILL");
  const error = await rejection(pending);
  assert.ok(error instanceof ServerExitedError);
  assert.equal(error.code, ErrorCode.InternalError);
  assert.deepEqual([error.exitCode, error.signal], [null, "SIGKILL"]);
  await assert.rejects(waiting, ServerExitedError);
  await assert.rejects(client.processList(), ServerExitedError);
});

test("shutdown with a process running exits 0", { skip }, async () => {
  const client = await WardenClient.start({ warden: WARDEN! });
  await client.spawn(["sleep", "100"], { sandbox: UNSANDBOXED });
  assert.equal(await client.close(), 0);
});
