/** The protocol's error codes (JSON-RPC 2.0 plus warden's own). */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  Overloaded: -32001,
  UnknownProcess: -32002,
  SandboxUnenforceable: -32003,
  SpawnFailed: -32004,
} as const;

/** An error response from the server: the JSON-RPC error object's code, message and data. */
export class WardenError extends Error {
  readonly code: number;
  /** Machine-readable detail (`{path}`, `{errno, syscall}`...), undefined when the server sent none. */
  readonly data: unknown;

  constructor(code: number, message: string, data?: unknown) {
    super(message);
    this.name = "WardenError";
    this.code = code;
    this.data = data;
  }

  static fromErrorObject(error: unknown): WardenError {
    const e = (typeof error === "object" && error !== null ? error : {}) as Record<string, unknown>;
    const code = typeof e.code === "number" ? e.code : ErrorCode.InternalError;
    return new WardenError(code, String(e.message ?? "malformed error object"), e.data);
  }

  toErrorObject(): { code: number; message: string; data?: unknown } {
    return this.data === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, data: this.data };
  }
}

/**
 * The server went away (exited, was killed, closed its stdout) while something
 * waited on it. Code -32603; data is `{exitCode, signal, stderr?}`.
 */
export class ServerExitedError extends WardenError {
  constructor(
    readonly exitCode: number | null,
    readonly signal: string | null,
    stderr?: string,
    message = "server exited",
  ) {
    super(ErrorCode.InternalError, message, stderr ? { exitCode, signal, stderr } : { exitCode, signal });
    this.name = "ServerExitedError";
  }
}

/** No response (or event) within the time the caller allowed. */
export class WardenTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WardenTimeoutError";
  }
}

/**
 * No server binary: the `warden` option, `$WARDEN_BIN` and `PATH` gave none
 * (or the first of them that was given names no executable). `code` is
 * "ENOENT", as for a missing file.
 */
export class WardenNotFoundError extends Error {
  readonly code = "ENOENT";
  constructor(message: string) {
    super(message);
    this.name = "WardenNotFoundError";
  }
}
