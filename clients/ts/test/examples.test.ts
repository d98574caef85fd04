// The README's example runs against the real binary, and the README shows it verbatim.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { PACKAGE_ROOT, realWarden } from "./helpers";

const WARDEN = realWarden();

test("the README shows examples/quickstart.ts verbatim", () => {
  const readme = fs.readFileSync(path.join(PACKAGE_ROOT, "README.md"), "utf8");
  const example = fs.readFileSync(path.join(PACKAGE_ROOT, "examples", "quickstart.ts"), "utf8");
  assert.ok(readme.includes("```ts\n" + example + "```"), "README.md's example differs from examples/quickstart.ts");
});

test("examples/quickstart.ts runs", { skip: WARDEN ? false : "no warden binary" }, async () => {
  const outside = path.join(os.homedir(), "outside.txt");
  const existed = fs.existsSync(outside);
  const script = path.join(PACKAGE_ROOT, "dist", "examples", "quickstart.js");
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, [script], { env: { ...process.env, WARDEN_BIN: WARDEN! }, timeout: 60000 }, (error, out, err) =>
      error ? reject(new Error(`${error.message}\n${out}\n${err}`)) : resolve(out),
    );
  });
  const lines = new Map(stdout.trim().split("\n").map((l) => [l.slice(0, l.indexOf(": ")), l.slice(l.indexOf(": ") + 2)]));
  assert.match(lines.get("before resize")!, /24 80"$/);
  assert.match(lines.get("after resize")!, /40 120"$/);
  assert.equal(lines.get("shell exit code"), "3");
  assert.match(lines.get("sandbox")!, /enforced: true/);
  assert.equal(lines.get("stdout"), "wrote inside.txt");
  assert.match(lines.get("stderr")!, /outside\.txt: Read-only file system$/);
  assert.equal(lines.get("exit code"), "2");
  assert.match(lines.get("error")!, /^-32004 .*errno: 2/);
  assert.equal(lines.get("exited"), "last 0");
  assert.equal(lines.get("server exit code"), "0");
  if (!existed) assert.ok(!fs.existsSync(outside), "the sandbox let a write through");
});
