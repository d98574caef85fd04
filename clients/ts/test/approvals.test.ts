// The typed approval handler: NetworkApproval in, Decision out, against a
// small fake server that sends approval/network on demand (test/ask) and
// reports the client's answer.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { Decision, DECISIONS, decisionAllows, ErrorCode, NetworkApproval, WardenClient } from "../src";
import type { ApprovalHandler, WardenClientOptions } from "../src";

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
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close(20000)));
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
