// Answer network approval prompts: sandboxed commands fetch a URL through
// warden's proxy, and the handler decides what goes out.
//   WARDEN_BIN=build/server/warden node clients/ts/dist/examples/approvals.js
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Decision, WardenClient, type ApprovalResolved, type NetworkApproval } from "warden-client";

// What the sandboxed command runs: a GET through the proxy warden gives it.
const FETCH = `
const http = require("node:http");
const proxy = new URL(process.env.HTTP_PROXY);
const target = new URL(process.argv[1]);
http.get({ host: proxy.hostname, port: proxy.port, path: target.href, headers: { host: target.host } }, (res) => {
  let body = "";
  res.on("data", (d) => (body += d)).on("end", () => console.log(res.statusCode, body.trim()));
});`;

async function main(): Promise<void> {
  // A local origin (loopback only).
  const origin = createServer((req, res) => res.end("hello\n"));
  await new Promise<void>((resolve) => origin.listen(0, "127.0.0.1", resolve));
  const port = (origin.address() as AddressInfo).port;

  const state = mkdtempSync(join(tmpdir(), "warden-state-"));
  const workspace = mkdtempSync(join(tmpdir(), "warden-example-"));
  const client = await WardenClient.start({
    args: ["--state-dir", state],
    // One prompt per (host, protocol, port), however many requests wait on it.
    onApproval: (req: NetworkApproval) => {
      console.log("asked:", req.protocol, req.host, req.port === port, "for", req.processIds.join(","));
      return req.port === port ? Decision.AllowForSession : Decision.Deny;
    },
  });
  const resolved = new Promise<ApprovalResolved>((resolve) => client.once("approval/resolved", resolve));
  try {
    // Nothing is allowed outright, so every destination asks; loopback is a
    // local address, which the policy must let through to be asked about.
    await client.networkPolicySet({ allowedDomains: [], deniedDomains: [], mode: "full", allowLocalBinding: true });
    for (const attempt of [1, 2]) {
      // networkAccess false: no network but through warden's proxy. The
      // second fetch is not asked about: allowed for the session.
      const proc = await client.run([process.execPath, "-e", FETCH, `http://127.0.0.1:${port}/`], {
        processId: `fetch${attempt}`,
        cwd: workspace,
        sandbox: { type: "workspaceWrite", networkAccess: false },
      });
      console.log(`fetch ${attempt}:`, proc.stdout.toString().trim());
    }
    const r = await resolved;
    console.log("resolved:", r.decision, "for", r.waiters, "request(s)");
  } finally {
    await client.close();
    origin.close();
    rmSync(state, { recursive: true, force: true });
    rmSync(workspace, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
