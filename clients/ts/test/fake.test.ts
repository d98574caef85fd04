// The client against a fake server written here: what the real server cannot
// be made to do on demand (floods, approval requests, dying mid-request).
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, test } from "node:test";
import { ErrorCode, ServerExitedError, WardenClient, WardenError, WardenNotFoundError, WardenTimeoutError } from "../src";
import type { Notification, WardenClientOptions } from "../src";
import { REPO_ROOT } from "./helpers";

// Speaks NDJSON JSON-RPC on stdio. process/spawn with argv ["flood", N] and
// test/flood {processId, count} send N process/output notifications and the
// exit before answering; test/ask sends approval/network and answers with the
// client's reply; test/fail errors with data; test/die exits 3; test/hang
// never answers; any other method is echoed back.
const FAKE_SERVER = `
const send = (m) => process.stdout.write(JSON.stringify({ jsonrpc: "2.0", ...m }) + "\\n");
const flood = (processId, count) => {
  const deltaBase64 = Buffer.alloc(512, "x").toString("base64");
  for (let seq = 1; seq <= count; seq++)
    send({ method: "process/output", params: { processId, seq, stream: "stdout", deltaBase64 } });
  send({ method: "process/exited", params: { processId, seq: count + 1, exitCode: 0, signal: null, timedOut: false, durationMs: 1 } });
};
let nextServerId = 1;
const waiting = new Map();
require("node:readline").createInterface({ input: process.stdin }).on("line", (line) => {
  if (!line.trim()) return;
  const m = JSON.parse(line);
  if (m.method === undefined) return waiting.get(m.id)?.(m);
  if (m.id === undefined) return;
  const p = m.params || {};
  switch (m.method) {
    case "initialize":
      return send({ id: m.id, result: { serverInfo: { name: "warden", version: "0.0.0-fake" }, protocolVersion: 1,
        platform: { os: "Linux", arch: "x86_64", kernel: "fake" },
        sandbox: { landlockAbi: 0, userNamespaces: false, networkNamespaces: false, seccomp: false }, received: p } });
    case "shutdown":
      return process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: {} }) + "\\n", () => process.exit(0));
    case "process/spawn":
      if (p.argv?.[0] !== "flood") break;
      flood(p.processId, Number(p.argv[1]));
      return send({ id: m.id, result: { processId: p.processId, pid: 1, sandbox: { enforced: false, backend: "none", network: "full" } } });
    case "test/flood":
      flood(p.processId, p.count);
      return send({ id: m.id, result: { sent: p.count } });
    case "test/ask": {
      const sid = nextServerId++;
      waiting.set(sid, (reply) => send({ id: m.id, result: { answer: "result" in reply ? reply.result : reply.error } }));
      return send({ id: sid, method: "approval/network", params: { approvalId: "a" + sid, host: p.host, port: 443,
        protocol: "https", processIds: ["p1"], reason: "not allowlisted", startedAtMs: 0 } });
    }
    case "test/fail":
      return send({ id: m.id, error: { code: -32003, message: "sandbox cannot be enforced", data: { reason: "no landlock" } } });
    case "test/die":
      return process.exit(3);
    case "test/hang":
      return;
  }
  send({ id: m.id, result: { echo: m.method, params: m.params ?? null } });
});
`;

const clients: WardenClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close(20000)));
});

async function fake(options: WardenClientOptions = {}): Promise<WardenClient> {
  const client = await WardenClient.start({ warden: process.execPath, args: ["-e", FAKE_SERVER], requestTimeoutMs: 30000, ...options });
  clients.push(client);
  return client;
}

const FLOOD = 5000; // ~3.5 MB of notifications, far more than a pipe holds

test("handshake", async () => {
  const client = await fake();
  assert.equal(client.serverInfo.serverInfo.version, "0.0.0-fake");
  assert.deepEqual((client.serverInfo as unknown as { received: unknown }).received, {
    clientInfo: { name: "warden-client-ts", version: "0.1.0" },
  });
});

test("a flood of notifications does not block a pending request", async () => {
  const client = await fake();
  const seen: Notification[] = [];
  client.on("notification", (note) => seen.push(note));
  // The response comes after FLOOD notifications that nobody reads yet.
  const proc = await client.spawn(["flood", String(FLOOD)], { processId: "f1" });
  assert.equal(seen.length, FLOOD + 1);
  const events = [];
  for await (const event of proc.events(60000)) events.push(event);
  assert.deepEqual(events.map((e) => e.params.seq), Array.from({ length: FLOOD + 1 }, (_, i) => i + 1));
  assert.equal(events.at(-1)!.method, "process/exited");
  assert.deepEqual(proc.stdout, Buffer.alloc(512 * FLOOD, "x"));
  assert.equal(proc.exitCode, 0);
});

test("concurrent requests during floods", async () => {
  const client = await fake();
  const exits: string[] = [];
  client.on("process/exited", (params) => exits.push(params.processId));
  const results = await Promise.all(
    Array.from({ length: 10 }, (_, i) => client.requestRaw("test/flood", { processId: `c${i}`, count: 300 })),
  );
  assert.deepEqual(results, Array(10).fill({ sent: 300 }));
  assert.equal(exits.length, 10);
});

test("an error carries code, message and data", async () => {
  const client = await fake();
  const error = await client.requestRaw("test/fail").then(
    () => assert.fail("no error"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof WardenError);
  assert.equal(error.code, ErrorCode.SandboxUnenforceable);
  assert.equal(error.message, "sandbox cannot be enforced");
  assert.deepEqual(error.data, { reason: "no landlock" });
});

test("the approval callback answers approval/network", async () => {
  const asked: string[] = [];
  const client = await fake({
    onApproval: (params) => {
      asked.push(params.host);
      return params.host === "ok.example" ? "allowOnce" : { decision: "denyAlways" };
    },
  });
  assert.deepEqual((client.serverInfo as unknown as { received: { capabilities: unknown } }).received.capabilities, {
    networkApprovals: true,
  });
  assert.deepEqual(await client.requestRaw("test/ask", { host: "ok.example" }), { answer: { decision: "allowOnce" } });
  assert.deepEqual(await client.requestRaw("test/ask", { host: "bad.example" }), { answer: { decision: "denyAlways" } });
  assert.deepEqual(asked, ["ok.example", "bad.example"]);
});

test("an async approval callback, replaced and removed", async () => {
  const client = await fake();
  client.setApprovalHandler(async (params) => {
    await new Promise((resolve) => setTimeout(resolve, 10));
    return params.port === 443 ? "allowForSession" : "deny";
  });
  assert.deepEqual(await client.requestRaw("test/ask", { host: "a" }), { answer: { decision: "allowForSession" } });
  client.setApprovalHandler(null);
  const { answer } = (await client.requestRaw("test/ask", { host: "a" })) as { answer: { code: number } };
  assert.equal(answer.code, ErrorCode.MethodNotFound);
});

test("a callback that throws or returns no valid decision sends an error", async () => {
  const client = await fake({
    onApproval: (params) => {
      if (params.host === "throw.example") throw new Error("user closed the dialog");
      return "yes please" as never;
    },
  });
  const thrown = (await client.requestRaw("test/ask", { host: "throw.example" })) as { answer: { code: number; message: string } };
  assert.equal(thrown.answer.code, ErrorCode.InternalError);
  assert.match(thrown.answer.message, /user closed the dialog/);
  const invalid = (await client.requestRaw("test/ask", { host: "x.example" })) as { answer: { code: number } };
  assert.equal(invalid.answer.code, ErrorCode.InternalError);
});

test("a server that dies mid-request makes everything reject, nothing hangs", async () => {
  const client = await fake();
  const closed = new Promise((resolve) => client.once("close", resolve));
  const hanging = client.requestRaw("test/hang");
  // ServerExitedError, not a timeout: the death is noticed, not waited out
  await assert.rejects(client.requestRaw("test/die"), (e: unknown) => {
    assert.ok(e instanceof ServerExitedError);
    assert.equal(e.code, ErrorCode.InternalError);
    assert.deepEqual(e.data, { exitCode: 3, signal: null });
    return true;
  });
  await assert.rejects(hanging, ServerExitedError);
  await closed;
  assert.equal(client.connected, false);
  await assert.rejects(client.processList(), ServerExitedError);
  await assert.rejects(client.spawn(["flood", "1"]), ServerExitedError);
});

test("a request times out", async () => {
  const client = await fake();
  await assert.rejects(client.requestRaw("test/hang", undefined, { timeoutMs: 200 }), WardenTimeoutError);
});

test("every typed method sends its protocol method (checked against the schema's x-methods)", async () => {
  const bundle = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "schema", "warden_protocol.schemas.json"), "utf8"));
  const client = await fake();
  const methods = Object.entries(bundle["x-methods"] as Record<string, { direction: string; params?: string }>)
    .filter(([, spec]) => spec.direction === "clientRequest");
  assert.ok(methods.length > 10);
  for (const [method, spec] of methods) {
    const camel = method.replace(/\/(\w)/g, (_, c: string) => c.toUpperCase());
    const fn = (client as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[camel];
    assert.equal(typeof fn, "function", `WardenClient.${camel} for ${method}`);
    if (method === "initialize" || method === "shutdown") continue; // the fake answers those itself
    // Every client request's params may carry _meta; a method takes arguments
    // when its params type has other fields.
    const props = Object.keys(bundle.definitions[spec.params ?? ""]?.properties ?? {});
    const takesArgs = props.some((p) => p !== "_meta");
    const reply = takesArgs ? await fn.call(client, { marker: 1 }) : await fn.call(client);
    assert.deepEqual(reply, { echo: method, params: takesArgs ? { marker: 1 } : null }, method);
  }
});

test("_meta goes in the params of any request, also of one without arguments", async () => {
  const client = await fake();
  const meta = { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" };
  // typed: ProcessListParams and ProcessReadParams have an optional _meta (tsc checks this)
  assert.deepEqual(await client.request("process/list", { _meta: meta }), {
    echo: "process/list",
    params: { _meta: meta },
  });
  assert.deepEqual(await client.request("process/read", { processId: "p", _meta: meta }), {
    echo: "process/read",
    params: { processId: "p", _meta: meta },
  });
  await client.close();
});

test("close shuts the server down and reports its exit code", async () => {
  const client = await WardenClient.start({ warden: process.execPath, args: ["-e", FAKE_SERVER] });
  assert.equal(await client.close(), 0);
  assert.equal(await client.close(), 0);
});

test("a server that cannot start, or exits at once, rejects start()", async () => {
  await assert.rejects(WardenClient.start({ warden: "/nonexistent/warden" }), (e: unknown) => {
    assert.ok(e instanceof WardenNotFoundError);
    assert.match(e.message, /\/nonexistent\/warden/);
    return true;
  });
  await assert.rejects(WardenClient.start({ warden: "/bin/false" }), (e: unknown) => {
    assert.ok(e instanceof ServerExitedError);
    assert.deepEqual(e.data, { exitCode: 1, signal: null });
    return true;
  });
});

test("notify refuses a request method (warden would refuse it without an id)", async () => {
  const c = await fake();
  assert.throws(() => c.notify("process/spawn", { processId: "x", argv: ["true"] }), /is a request/);
  c.notify("initialized"); // a real notification goes out
  await c.shutdown();
});
