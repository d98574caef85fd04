// How the client finds the server: the `warden` option, else $WARDEN_BIN,
// else `warden` on PATH, with one error naming all three when none gives one
// (clients/python/tests/test_discovery.py checks the Python client the same way).
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, test } from "node:test";
import { WardenClient, WardenNotFoundError, findWarden } from "../src";
import { realWarden } from "./helpers";

const WARDEN = realWarden();
let tmp = "";
let saved: NodeJS.ProcessEnv = {};

function executable(file: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, "#!/bin/sh\nexit 0\n", { mode: 0o700 });
  return file;
}

function environ(wardenBin: string | undefined, pathValue: string): void {
  delete process.env.WARDEN_BIN;
  if (wardenBin !== undefined) process.env.WARDEN_BIN = wardenBin;
  process.env.PATH = pathValue;
}

function notFound(fn: () => unknown): WardenNotFoundError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof WardenNotFoundError, String(error));
    assert.equal(error.code, "ENOENT");
    return error;
  }
  assert.fail("expected WardenNotFoundError");
}

beforeEach(() => {
  saved = { ...process.env };
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "warden-discovery-")));
  fs.mkdirSync(path.join(tmp, "empty"));
});

afterEach(() => {
  for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
  Object.assign(process.env, saved);
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("the argument comes first, then $WARDEN_BIN, then PATH", () => {
  const arg = executable(path.join(tmp, "arg", "warden"));
  const env = executable(path.join(tmp, "env", "warden"));
  const onPath = executable(path.join(tmp, "path", "warden"));
  environ(env, path.join(tmp, "path"));
  assert.equal(findWarden(arg), arg);
  assert.equal(findWarden(), env);
  assert.equal(findWarden(""), env);
  environ(undefined, path.join(tmp, "path"));
  assert.equal(findWarden(), onPath);
  environ("", path.join(tmp, "path")); // set but empty counts as unset
  assert.equal(findWarden(), onPath);
});

test("none found: one error naming all three places", () => {
  environ(undefined, path.join(tmp, "empty"));
  const error = notFound(() => findWarden());
  for (const place of ["`warden` argument", "$WARDEN_BIN", "on PATH", path.join(tmp, "empty")]) {
    assert.ok(error.message.includes(place), `${place} not in: ${error.message}`);
  }
});

test("a bad value is an error, not a fallback", () => {
  executable(path.join(tmp, "path", "warden"));
  const missing = path.join(tmp, "nowhere", "warden");
  environ(missing, path.join(tmp, "path"));
  let error = notFound(() => findWarden());
  assert.ok(error.message.includes("$WARDEN_BIN") && error.message.includes(missing), error.message);
  error = notFound(() => findWarden(path.join(tmp, "path"))); // a directory
  assert.ok(error.message.includes("`warden` argument"), error.message);
  const plain = path.join(tmp, "plain");
  fs.writeFileSync(plain, "");
  environ(plain, path.join(tmp, "path"));
  notFound(() => findWarden());
  // A directory named warden on PATH is not the server either.
  fs.mkdirSync(path.join(tmp, "dirs", "warden"), { recursive: true });
  environ(undefined, path.join(tmp, "dirs"));
  notFound(() => findWarden());
});

test("a bare name is looked up on PATH; relative paths become absolute", () => {
  const onPath = executable(path.join(tmp, "path", "warden"));
  const env = executable(path.join(tmp, "env", "warden"));
  environ(undefined, path.join(tmp, "path"));
  assert.equal(findWarden("warden"), onPath);
  notFound(() => findWarden("no-such-warden-binary"));
  const cwd = process.cwd();
  process.chdir(tmp);
  try {
    assert.equal(findWarden(path.join("env", "warden")), env);
  } finally {
    process.chdir(cwd);
  }
});

test("the client starts the server found on PATH", { skip: WARDEN ? false : "no warden binary" }, async () => {
  const bindir = path.join(tmp, "bin");
  fs.mkdirSync(bindir);
  fs.symlinkSync(WARDEN!, path.join(bindir, "warden"));
  environ(undefined, `${bindir}${path.delimiter}/usr/bin:/bin`);
  const client = await WardenClient.start({ clientName: "discovery-test" });
  try {
    assert.equal(client.serverInfo.serverInfo.name, "warden");
  } finally {
    await client.close(30000);
  }
  environ(undefined, path.join(tmp, "empty"));
  await assert.rejects(WardenClient.start(), WardenNotFoundError);
});
