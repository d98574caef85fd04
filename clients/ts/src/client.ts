import { spawn as spawnChild, type ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import * as fs from "node:fs";
import * as path from "node:path";
import type {
  ApprovalDecision,
  ApprovalNetworkParams,
  ApprovalNetworkResult,
  ClientCapabilities,
  ClientRequests,
  InitializeParams,
  InitializeResult,
  NetworkBlockedListParams,
  NetworkPolicySetParams,
  PolicyResolveParams,
  PolicyTransformParams,
  ProcessReadParams,
  ProcessReleaseParams,
  ProcessResizeParams,
  ProcessSpawnParams,
  ProcessTerminateParams,
  ProcessWriteParams,
  SandboxRefreshParams,
  SandboxSetupParams,
  ServerNotifications,
} from "./generated";
import { CLIENT_REQUEST_METHODS } from "./generated";
import { NetworkApproval, type ApprovalHandler } from "./approvals";
import { ErrorCode, ServerExitedError, WardenError, WardenTimeoutError } from "./errors";
import { Process, type ProcessEvent } from "./process";
import { AsyncQueue } from "./queue";
import { WardenNotFoundError } from "./errors";

export const VERSION = "0.1.0";

export type { ApprovalAnswer, ApprovalHandler } from "./approvals";
/** Answers a server request: resolves to the result, or throws (a WardenError is sent as is). */
export type RequestHandler = (params: unknown) => unknown;

export interface WardenClientOptions {
  /** The binary (a path, or a name looked up on PATH); default `$WARDEN_BIN`, then `warden` on PATH. */
  warden?: string;
  /** Extra server arguments, e.g. `["--config", file]`. */
  args?: string[];
  /** Variables added to the server's environment. */
  env?: Record<string, string>;
  /** The server's working directory. */
  cwd?: string;
  clientName?: string;
  clientVersion?: string;
  capabilities?: ClientCapabilities;
  /** Answers `approval/network`; giving one announces `networkApprovals`. */
  onApproval?: ApprovalHandler;
  /** Default time limit for every request (none: wait until answered or the server is gone). */
  requestTimeoutMs?: number;
  /** The server's stderr: inherited (default), ignored, or piped and kept for ServerExitedError.data.stderr. */
  stderr?: "inherit" | "ignore" | "pipe";
}

export interface RequestOptions {
  timeoutMs?: number;
}

/** A notification from the server. */
export type Notification = {
  [M in keyof ServerNotifications]: { method: M; params: ServerNotifications[M]["params"] };
}[keyof ServerNotifications];

/** Events of WardenClient: every notification, each notification method, and `close`. */
export type ClientEvents = {
  [K in keyof ServerNotifications | "notification" | "close"]: K extends keyof ServerNotifications
    ? [ServerNotifications[K]["params"]]
    : K extends "notification"
      ? [Notification]
      : [ServerExitedError];
};

/** Options of `spawn`: the params of `process/spawn` but argv; processId defaults to p1, p2... */
export type SpawnOptions = Omit<ProcessSpawnParams, "processId" | "argv"> & { processId?: string };

type CamelMethod<S extends string> = S extends `${infer Head}/${infer Tail}`
  ? `${Head}${Capitalize<CamelMethod<Tail>>}`
  : S;

/** One camelCase method per client request of the protocol; the compiler checks WardenClient has them all.
 * A method without arguments (its params may be undefined: only `_meta` could go there) takes just options. */
export type RequestMethods = {
  [M in keyof ClientRequests as CamelMethod<M & string>]: undefined extends ClientRequests[M]["params"]
    ? (options?: RequestOptions) => Promise<ClientRequests[M]["result"]>
    : (params: ClientRequests[M]["params"], options?: RequestOptions) => Promise<ClientRequests[M]["result"]>;
};

const DECISIONS: Record<ApprovalDecision, true> = {
  allowOnce: true,
  allowForSession: true,
  allowAlways: true,
  deny: true,
  denyAlways: true,
};

/** Said when none of the three places names a server (the Python client says the same). */
const NOT_FOUND =
  "warden server not found: no `warden` argument was given, $WARDEN_BIN is not set, " +
  "and no executable `warden` is on PATH";

function isExecutableFile(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function searchPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const file = path.resolve(dir || ".", name);
    if (isExecutableFile(file)) return file;
  }
  return null;
}

/** `value` from `source` as an absolute path: a path (with a slash) must be an executable file, a bare name is looked up on PATH. */
function resolveGiven(value: string, source: string): string {
  if (!value.includes("/")) {
    const found = searchPath(value);
    if (!found) throw new WardenNotFoundError(`${source} is "${value}", which is not an executable on PATH`);
    return found;
  }
  if (!isExecutableFile(value)) throw new WardenNotFoundError(`${source} is "${value}", which is not an executable file`);
  return path.resolve(value);
}

/**
 * The server binary, as an absolute path: `explicit` when given, else
 * `$WARDEN_BIN` when set and not empty, else `warden` on PATH. The first of
 * these that is given is the one used: a bad value there is an error, not a
 * reason to look further. Throws WardenNotFoundError naming the place it
 * looked at.
 */
export function findWarden(explicit?: string): string {
  if (explicit) return resolveGiven(explicit, "the `warden` argument");
  const env = process.env.WARDEN_BIN;
  if (env) return resolveGiven(env, "$WARDEN_BIN");
  const found = searchPath("warden");
  if (found) return found;
  throw new WardenNotFoundError(`${NOT_FOUND} (PATH=${process.env.PATH ?? ""})`);
}

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void; timer?: NodeJS.Timeout };

/**
 * Starts warden as a child process and talks JSON-RPC to it over stdio.
 *
 * `WardenClient.start()` spawns the server and performs the handshake.
 * stdout is read as fast as it comes: responses settle their promises at
 * once, whatever notifications are queued in front of them, so a flood of
 * notifications never stalls a request. Every notification is emitted
 * (`"notification"` and its method name); the events of processes started
 * with `spawn` are also queued per process for `Process.events()`.
 */
export class WardenClient extends EventEmitter<ClientEvents> implements RequestMethods {
  /** The `initialize` result. */
  serverInfo!: InitializeResult;
  requestTimeoutMs: number | undefined;
  private readonly child: ChildProcess;
  private readonly done: Promise<void>;
  private readonly pending = new Map<number, Pending>();
  private readonly processQueues = new Map<string, AsyncQueue<ProcessEvent>>();
  private readonly handlers = new Map<string, RequestHandler>();
  private readonly stderrTail: string[] | null;
  private partial: Buffer[] = [];
  private nextId = 1;
  private spawned = 0;
  private closing = false;
  private closedError: ServerExitedError | null = null;
  private exit: { code: number | null; signal: string | null } | null = null;

  /** Start the server and perform the handshake (`initialize`, then `initialized`). */
  static async start(options: WardenClientOptions = {}): Promise<WardenClient> {
    const client = new WardenClient(options);
    try {
      const params: InitializeParams = {
        clientInfo: { name: options.clientName ?? "warden-client-ts", version: options.clientVersion ?? VERSION },
      };
      const capabilities = { ...options.capabilities };
      if (options.onApproval && capabilities.networkApprovals === undefined) capabilities.networkApprovals = true;
      if (Object.keys(capabilities).length > 0) params.capabilities = capabilities;
      client.serverInfo = await client.initialize(params);
      client.notify("initialized");
    } catch (error) {
      client.kill();
      throw error;
    }
    return client;
  }

  private constructor(options: WardenClientOptions) {
    super();
    this.requestTimeoutMs = options.requestTimeoutMs;
    this.stderrTail = options.stderr === "pipe" ? [] : null;
    if (options.onApproval) this.setApprovalHandler(options.onApproval);
    const binary = findWarden(options.warden);
    this.child = spawnChild(binary, options.args ?? [], {
      stdio: ["pipe", "pipe", options.stderr ?? "inherit"],
      env: options.env ? { ...process.env, ...options.env } : process.env,
      cwd: options.cwd,
    });
    this.done = new Promise((resolve) => {
      this.child.once("close", () => resolve());
      this.child.once("error", () => resolve());
    });
    this.child.on("error", (error) => this.gone(`cannot run ${binary}: ${error.message}`));
    this.child.on("exit", (code, signal) => {
      this.exit = { code, signal };
      // Normally stdout ends first; should something else hold it open, fail the waiters anyway.
      setTimeout(() => this.gone(), 1000).unref();
    });
    this.child.on("close", () => this.gone());
    this.child.stdin!.on("error", () => {}); // EPIPE once the server is gone: reported through gone()
    this.child.stdout!.on("data", (chunk: Buffer) => this.onData(chunk));
    this.child.stderr?.on("data", (chunk: Buffer) => {
      this.stderrTail!.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      this.stderrTail!.splice(0, Math.max(0, this.stderrTail!.length - 50));
    });
  }

  /** The server's process id. */
  get serverPid(): number | undefined {
    return this.child.pid;
  }

  /** False once the server is gone or the client closed. */
  get connected(): boolean {
    return this.closedError === null;
  }

  /**
   * Shut the server down (`shutdown`, then end of stdin) and wait for it;
   * kill it if it has not exited within `timeoutMs`. Resolves to its exit code.
   */
  async close(timeoutMs = 10000): Promise<number | null> {
    if (this.closedError === null && !this.closing) {
      this.closing = true;
      await this.shutdown({ timeoutMs }).catch(() => undefined);
    }
    this.closing = true;
    this.child.stdin!.end();
    const timer = setTimeout(() => this.kill(), timeoutMs);
    await this.done;
    clearTimeout(timer);
    this.gone();
    return this.child.exitCode;
  }

  /** Kill the server at once (SIGKILL). */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }

  // -- requests ---------------------------------------------------------------

  /** Send a protocol request and resolve to its result; rejects with WardenError. */
  request<M extends keyof ClientRequests>(
    method: M,
    params: ClientRequests[M]["params"],
    options?: RequestOptions,
  ): Promise<ClientRequests[M]["result"]> {
    return this.requestRaw(method, params, options) as Promise<ClientRequests[M]["result"]>;
  }

  /** Send any request, untyped. */
  requestRaw(method: string, params?: unknown, options: RequestOptions = {}): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    return new Promise((resolve, reject) => {
      const entry: Pending = { resolve, reject };
      if (timeoutMs !== undefined) {
        entry.timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new WardenTimeoutError(`${method}: no response within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.pending.set(id, entry);
      const message = params === undefined ? { jsonrpc: "2.0", id, method } : { jsonrpc: "2.0", id, method, params };
      this.send(message, () => {
        // The server stopped reading, so it is exiting: gone() rejects this
        // request with its exit status. Should it linger, give up after a second.
        setTimeout(() => {
          if (this.pending.delete(id)) {
            clearTimeout(entry.timer);
            reject(this.exitedError("server is not reading its stdin"));
          }
        }, 1000).unref();
      });
    });
  }

  /** Send a notification. */
  notify(method: string, params?: unknown): void {
    if (this.closedError) throw this.closedError;
    // warden refuses a request sent without an id (docs/protocol.md).
    if ((CLIENT_REQUEST_METHODS as ReadonlyArray<string>).includes(method))
      throw new Error(`${method} is a request, not a notification: use request()`);
    this.send(params === undefined ? { jsonrpc: "2.0", method } : { jsonrpc: "2.0", method, params });
  }

  private send(message: object, onError?: () => void): void {
    this.child.stdin!.write(JSON.stringify(message) + "\n", (error) => {
      if (error && onError) onError();
    });
  }

  // -- typed requests, one per client request of the protocol ------------------

  initialize(params: InitializeParams, options?: RequestOptions) {
    return this.request("initialize", params, options);
  }
  shutdown(options?: RequestOptions) {
    return this.request("shutdown", undefined, options);
  }
  processSpawn(params: ProcessSpawnParams, options?: RequestOptions) {
    return this.request("process/spawn", params, options);
  }
  processWrite(params: ProcessWriteParams, options?: RequestOptions) {
    return this.request("process/write", params, options);
  }
  processResize(params: ProcessResizeParams, options?: RequestOptions) {
    return this.request("process/resize", params, options);
  }
  processTerminate(params: ProcessTerminateParams, options?: RequestOptions) {
    return this.request("process/terminate", params, options);
  }
  processRead(params: ProcessReadParams, options?: RequestOptions) {
    return this.request("process/read", params, options);
  }
  processRelease(params: ProcessReleaseParams, options?: RequestOptions) {
    return this.request("process/release", params, options);
  }
  processList(options?: RequestOptions) {
    return this.request("process/list", undefined, options);
  }
  policyResolve(params: PolicyResolveParams, options?: RequestOptions) {
    return this.request("policy/resolve", params, options);
  }
  policyTransform(params: PolicyTransformParams, options?: RequestOptions) {
    return this.request("policy/transform", params, options);
  }
  sandboxReadiness(options?: RequestOptions) {
    return this.request("sandbox/readiness", undefined, options);
  }
  sandboxSetup(params: SandboxSetupParams, options?: RequestOptions) {
    return this.request("sandbox/setup", params, options);
  }
  sandboxRefresh(params: SandboxRefreshParams, options?: RequestOptions) {
    return this.request("sandbox/refresh", params, options);
  }
  networkPolicyGet(options?: RequestOptions) {
    return this.request("network/policy/get", undefined, options);
  }
  networkPolicySet(params: NetworkPolicySetParams, options?: RequestOptions) {
    return this.request("network/policy/set", params, options);
  }
  networkBlockedList(params: NetworkBlockedListParams, options?: RequestOptions) {
    return this.request("network/blocked/list", params, options);
  }

  // -- processes ----------------------------------------------------------------

  /** `process/spawn`, resolving to a Process whose events are queued from before the request went out. */
  async spawn(argv: string[], options: SpawnOptions = {}): Promise<Process> {
    const { processId = `p${++this.spawned}`, ...rest } = options;
    const queue = new AsyncQueue<ProcessEvent>();
    // A live process of ours with this id keeps its queue (the server refuses the duplicate).
    const owned = !this.processQueues.has(processId);
    if (owned) this.processQueues.set(processId, queue);
    try {
      const result = await this.processSpawn({ ...rest, processId, argv });
      if (!owned) this.processQueues.set(processId, queue);
      return new Process(this, result, queue);
    } catch (error) {
      if (owned && this.processQueues.get(processId) === queue) this.processQueues.delete(processId);
      throw error;
    }
  }

  /** Spawn and wait for the exit (`waitMs` bounds the wait); the Process has its output and exit status. */
  async run(argv: string[], options: SpawnOptions = {}, waitMs?: number): Promise<Process> {
    const proc = await this.spawn(argv, options);
    await proc.wait(waitMs);
    return proc;
  }

  // -- server requests ------------------------------------------------------------

  /** Answer server requests of `method` with `handler(params)`; null removes it (the server then gets -32601). */
  setRequestHandler(method: string, handler: RequestHandler | null): void {
    if (handler) this.handlers.set(method, handler);
    else this.handlers.delete(method);
  }

  /**
   * Answer `approval/network` with `handler(request)`: `request` is a
   * NetworkApproval (the params, typed), and the handler returns a decision
   * (`Decision.AllowOnce`, ... or its string) or `{decision}`. A throw or an
   * invalid decision is sent as an error, which the server counts as deny.
   */
  setApprovalHandler(handler: ApprovalHandler | null): void {
    this.setRequestHandler(
      "approval/network",
      handler &&
        (async (params) => approvalResult(await handler(new NetworkApproval(params as ApprovalNetworkParams)))),
    );
  }

  private async answer(id: unknown, method: string, params: unknown): Promise<void> {
    const handler = this.handlers.get(method);
    let reply: object;
    if (!handler) {
      reply = { jsonrpc: "2.0", id, error: { code: ErrorCode.MethodNotFound, message: `client has no handler for ${method}` } };
    } else {
      try {
        reply = { jsonrpc: "2.0", id, result: (await handler(params)) ?? null };
      } catch (error) {
        const e = error instanceof WardenError ? error : new WardenError(ErrorCode.InternalError, String((error as Error)?.message ?? error));
        reply = { jsonrpc: "2.0", id, error: e.toErrorObject() };
      }
    }
    if (!this.closedError) this.send(reply);
  }

  // -- reading ----------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    let start = 0;
    for (let end = chunk.indexOf(10); end >= 0; end = chunk.indexOf(10, start)) {
      const line = this.partial.length ? Buffer.concat([...this.partial, chunk.subarray(start, end)]) : chunk.subarray(start, end);
      this.partial = [];
      start = end + 1;
      this.onLine(line.toString("utf8"));
    }
    if (start < chunk.length) this.partial.push(chunk.subarray(start));
  }

  private onLine(line: string): void {
    if (!line.trim()) return;
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line);
    } catch {
      process.stderr.write(`warden-client: unparsable line from server: ${line.slice(0, 200)}\n`);
      return;
    }
    if (typeof message !== "object" || message === null) return;
    if (typeof message.method === "string") {
      if (message.id !== undefined && message.id !== null) void this.answer(message.id, message.method, message.params);
      else this.onNotification(message.method, message.params ?? {});
    } else if (typeof message.id === "number") {
      const entry = this.pending.get(message.id);
      if (!entry) return; // answered after its timeout
      this.pending.delete(message.id);
      clearTimeout(entry.timer);
      if (message.error !== undefined) entry.reject(WardenError.fromErrorObject(message.error));
      else entry.resolve(message.result);
    }
  }

  private onNotification(method: string, params: unknown): void {
    const note = { method, params } as Notification;
    if (note.method === "process/output" || note.method === "process/exited") {
      const queue = this.processQueues.get(note.params.processId);
      if (queue) {
        if (note.method === "process/output") {
          queue.push({ ...note, data: Buffer.from(note.params.deltaBase64, "base64") });
        } else {
          queue.push(note);
          this.processQueues.delete(note.params.processId); // the exit is its last event
        }
      }
    }
    // A listener that throws must not break the reading of the stream: rethrow it outside.
    try {
      this.emit("notification", note);
      (this.emit as (event: string, ...args: unknown[]) => boolean)(method, params);
    } catch (error) {
      process.nextTick(() => {
        throw error;
      });
    }
  }

  private exitedError(message: string): ServerExitedError {
    const tail = this.stderrTail?.join("\n") || undefined;
    return new ServerExitedError(this.exit?.code ?? null, this.exit?.signal ?? null, tail, message);
  }

  private gone(message?: string): void {
    if (this.closedError) return;
    this.closedError = this.exitedError(message ?? (this.closing ? "client closed the connection" : "server exited"));
    for (const entry of this.pending.values()) {
      clearTimeout(entry.timer);
      entry.reject(this.closedError);
    }
    this.pending.clear();
    for (const queue of this.processQueues.values()) queue.fail(this.closedError);
    this.processQueues.clear();
    this.emit("close", this.closedError);
  }
}

function approvalResult(answer: unknown): ApprovalNetworkResult {
  const result = typeof answer === "string" ? { decision: answer } : answer;
  const decision = (result as { decision?: unknown } | null)?.decision;
  if (typeof decision !== "string" || !Object.hasOwn(DECISIONS, decision)) {
    throw new WardenError(ErrorCode.InternalError, `approval handler returned no valid decision: ${JSON.stringify(answer)}`);
  }
  return result as ApprovalNetworkResult;
}
