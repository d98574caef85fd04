import * as fs from "node:fs";
import * as path from "node:path";

/** clients/ts, from dist/test. */
export const PACKAGE_ROOT = path.resolve(__dirname, "..", "..");
export const REPO_ROOT = path.resolve(PACKAGE_ROOT, "..", "..");

/** The real binary: $WARDEN_BIN (must exist when set), else build/server/warden, else null (tests skip). */
export function realWarden(): string | null {
  const given = process.env.WARDEN_BIN;
  if (given) {
    fs.accessSync(given, fs.constants.X_OK);
    return given;
  }
  const built = path.join(REPO_ROOT, "build", "server", "warden");
  try {
    fs.accessSync(built, fs.constants.X_OK);
    return built;
  } catch {
    return null;
  }
}

export const UNSANDBOXED = { type: "dangerFullAccess" } as const;
