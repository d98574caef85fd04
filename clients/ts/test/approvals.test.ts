// The typed approval handler: NetworkApproval in, Decision out, against a
// small fake server that sends approval/network on demand (test/ask) and
// reports the client's answer.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, test } from "node:test";
import { Decision, DECISIONS, decisionAllows, ErrorCode, NetworkApproval, WardenClient } from "../src";
import type { ApprovalHandler, WardenClientOptions } from "../src";
import { PACKAGE_ROOT, realWarden } from "./helpers";

const FAKE_SERVER = `
const send = (m) => process.stdout.write(JSON.stringify({ jsonrpc: "2.0", ...m }) + "\\n");
let nextServerId = 1;
const waiting = new Map();
require("node:readline").createInterface({ input: process.stdin }).on("line", (line) => {
  const m = JSON.parse(line);
  if (m.method === undefined) return waiting.get(m.id)?.(m);
  if (m.id === undefined) return;
  const p = m.params || {};
  if (m.method === "initialize")
    return send({ id: m.id, result: { serverInfo: { name: "warden", version: "0.0.0-fake" }, protocolVersion: 1,
      platform: { os: "Linux", arch: "x86_64", kernel: "fake" },
      sandbox: { landlockAbi: 0, userNamespaces: false, networkNamespaces: false, seccomp: false } } });
  if (m.method === "shutdown")
    return process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: {} }) + "\\n", () => process.exit(0));
  if (m.method === "test/ask") {
    const sid = nextServerId++;
    waiting.set(sid, (reply) => send({ id: m.id, result: { answer: "result" in reply ? reply.result : reply.error } }));
    return send({ id: sid, method: "approval/network", params: { approvalId: "net-" + sid, host: p.host, port: p.port ?? 443,
      protocol: "https", processIds: ["p1", "p2"], reason: p.host + " is not in allowedDomains", startedAtMs: 1700000000000 } });
  }
  send({ id: m.id, error: { code: -32601, message: "method not found" } });
});
`;

const clients: WardenClient[] = [];
const stateDirs: string[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close(20000)));
  for (const d of stateDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function fake(options: WardenClientOptions = {}): Promise<WardenClient> {
  const client = await WardenClient.start({ warden: process.execPath, args: ["-e", FAKE_SERVER], requestTimeoutMs: 30000, ...options });
  clients.push(client);
  return client;
}

test("Decision names are the wire strings", () => {
  assert.equal(Decision.AllowForSession, "allowForSession");
  assert.deepEqual(DECISIONS, ["allowOnce", "allowForSession", "allowAlways", "deny", "denyAlways"]);
  assert.equal(decisionAllows(Decision.AllowAlways), true);
  assert.equal(decisionAllows(Decision.DenyAlways), false);
});

test("the handler gets a NetworkApproval and returns a Decision", async () => {
  const seen: NetworkApproval[] = [];
  const onApproval: ApprovalHandler = (req) => {
    seen.push(req);
    return req.host === "ok.example" && req.port === 443 ? Decision.AllowForSession : Decision.Deny;
  };
  const client = await fake({ onApproval });
  assert.deepEqual(await client.requestRaw("test/ask", { host: "ok.example" }), { answer: { decision: "allowForSession" } });
  assert.deepEqual(await client.requestRaw("test/ask", { host: "ok.example", port: 80 }), { answer: { decision: "deny" } });
  assert.ok(seen[0] instanceof NetworkApproval);
  assert.equal(seen[0].key, "https ok.example 443");
  assert.deepEqual(seen[0].processIds, ["p1", "p2"]);
  assert.equal(seen[0].startedAt.getTime(), 1700000000000);
  assert.equal(seen[0].approvalId, "net-1");
});

test("an async handler, and a result object", async () => {
  const client = await fake({
    onApproval: async (req) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      return { decision: req.host === "a" ? Decision.AllowAlways : Decision.DenyAlways };
    },
  });
  assert.deepEqual(await client.requestRaw("test/ask", { host: "a" }), { answer: { decision: "allowAlways" } });
  assert.deepEqual(await client.requestRaw("test/ask", { host: "b" }), { answer: { decision: "denyAlways" } });
});

test("a handler that answers nothing valid sends an error (the server denies)", async () => {
  const client = await fake({ onApproval: () => undefined as never });
  const { answer } = (await client.requestRaw("test/ask", { host: "x" })) as { answer: { code: number; message: string } };
  assert.equal(answer.code, ErrorCode.InternalError);
  assert.match(answer.message, /no valid decision/);
});

// ---- against the real server ----

const WARDEN = realWarden();
const FETCH = `
const http = require("node:http");
const proxy = new URL(process.env.HTTP_PROXY), target = new URL(process.argv[1]);
http.get({ host: proxy.hostname, port: proxy.port, path: target.href, headers: { host: target.host } },
  (res) => { res.resume(); res.on("end", () => console.log(res.statusCode)); });`;

async function withOrigin(fn: (url: string, port: number) => Promise<void>): Promise<void> {
  const origin = createServer((req, res) => res.end("hi"));
  await new Promise<void>((resolve) => origin.listen(0, "127.0.0.1", resolve));
  const port = (origin.address() as AddressInfo).port;
  try {
    await fn(`http://127.0.0.1:${port}/`, port);
  } finally {
    origin.close();
  }
}

async function fetchWith(handler: ApprovalHandler, url: string): Promise<{ out: string; client: WardenClient }> {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), "warden-state-"));
  stateDirs.push(state);
  const client = await WardenClient.start({ warden: WARDEN!, args: ["--state-dir", state], onApproval: handler, requestTimeoutMs: 60000 });
  clients.push(client);
  await client.networkPolicySet({ allowedDomains: [], deniedDomains: [], mode: "full", allowLocalBinding: true });
  const proc = await client.run([process.execPath, "-e", FETCH, url], {
    cwd: os.tmpdir(),
    sandbox: { type: "workspaceWrite", networkAccess: false },
  });
  return { out: proc.stdout.toString().trim(), client };
}

const skip = WARDEN ? false : "no warden binary";

test("real server: allowAlways lets the request through and shows the rule", { skip }, async () => {
  await withOrigin(async (url, port) => {
    const seen: NetworkApproval[] = [];
    const { out, client } = await fetchWith((req) => (seen.push(req), Decision.AllowAlways), url);
    assert.equal(out, "200");
    assert.deepEqual([seen.length, seen[0].host, seen[0].protocol, seen[0].processIds], [1, "127.0.0.1", "http", ["p1"]]);
    assert.deepEqual((await client.networkPolicyGet()).approvalRules, [{ action: "allow", protocol: "http", host: "127.0.0.1", port }]);
  });
});

test("real server: an async handler that denies", { skip }, async () => {
  await withOrigin(async (url) => {
    const { out, client } = await fetchWith(async () => Decision.Deny, url);
    assert.equal(out, "403");
    assert.equal((await client.networkPolicyGet()).approvalRules, undefined);
  });
});

test("the README shows examples/approvals.ts verbatim", () => {
  const readme = fs.readFileSync(path.join(PACKAGE_ROOT, "README.md"), "utf8");
  const example = fs.readFileSync(path.join(PACKAGE_ROOT, "examples", "approvals.ts"), "utf8");
  assert.ok(readme.includes("```ts\n" + example + "```"));
});

test("examples/approvals.ts answers a prompt", { skip }, async () => {
  const script = path.join(PACKAGE_ROOT, "dist", "examples", "approvals.js");
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, [script], { env: { ...process.env, WARDEN_BIN: WARDEN! }, timeout: 60000 }, (error, out, err) =>
      error ? reject(new Error(`${error.message}\n${out}\n${err}`)) : resolve(out),
    );
  });
  assert.deepEqual(stdout.trim().split("\n"), [
    "asked: http 127.0.0.1 true for fetch1",
    "fetch 1: 200 hello",
    "fetch 2: 200 hello",
    "resolved: allowForSession for 1 request(s)",
  ]);
});
