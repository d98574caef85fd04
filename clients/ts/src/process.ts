import type {
  OutputStream,
  ProcessExitedNotification,
  ProcessOutputNotification,
  ProcessSpawnResult,
  ProcessTerminateParams,
} from "./generated";
import type { WardenClient } from "./client";
import type { AsyncQueue } from "./queue";

/** One notification of a process, in order: output (with its decoded bytes), then the exit. */
export type ProcessEvent =
  | { method: "process/output"; params: ProcessOutputNotification; data: Buffer }
  | { method: "process/exited"; params: ProcessExitedNotification };

/**
 * A process started by `WardenClient.spawn`. Its events are queued from
 * before the spawn request is sent, so none is missed; reading them
 * (`events`, `readUntil`, `wait`) fills in `stdout`, `stderr` (PTY output
 * counts as stdout), `output` (every stream in order) and `exitStatus`.
 */
export class Process {
  readonly processId: string;
  readonly pid: number;
  /** How the server sandboxed it: `{enforced, backend, network}`. */
  readonly sandbox: ProcessSpawnResult["sandbox"];
  /** The `process/exited` params once read. */
  exitStatus: ProcessExitedNotification | null = null;
  /** Streams whose output cap was reached. */
  readonly capReached: OutputStream[] = [];
  private readonly out: Buffer[] = [];
  private readonly err: Buffer[] = [];
  private readonly all: Buffer[] = [];
  private sinceMatch: Buffer[] = [];

  constructor(
    readonly client: WardenClient,
    result: ProcessSpawnResult,
    private readonly queue: AsyncQueue<ProcessEvent>,
  ) {
    this.processId = result.processId;
    this.pid = result.pid;
    this.sandbox = result.sandbox;
  }

  get stdout(): Buffer { return Buffer.concat(this.out); }
  get stderr(): Buffer { return Buffer.concat(this.err); }
  get output(): Buffer { return Buffer.concat(this.all); }
  get exited(): boolean { return this.exitStatus !== null; }
  get exitCode(): number | null { return this.exitStatus?.exitCode ?? null; }
  get signal(): string | null { return this.exitStatus?.signal ?? null; }

  /** Write to the PTY, or to stdin when spawned with `streamStdin`; resolves to the byte count. */
  async write(data: string | Uint8Array, options: { closeStdin?: boolean } = {}): Promise<number> {
    const result = await this.client.processWrite({
      processId: this.processId,
      deltaBase64: Buffer.from(data).toString("base64"),
      ...(options.closeStdin ? { closeStdin: true } : {}),
    });
    return result.bytesWritten;
  }

  async closeStdin(): Promise<void> {
    await this.client.processWrite({ processId: this.processId, closeStdin: true });
  }

  async resize(rows: number, cols: number): Promise<void> {
    await this.client.processResize({ processId: this.processId, size: { rows, cols } });
  }

  /** Signal the process group (TERM unless told, KILL after `graceMs`); resolves to whether it was running. */
  async terminate(signal?: ProcessTerminateParams["signal"], graceMs?: number): Promise<boolean> {
    const params: ProcessTerminateParams = { processId: this.processId };
    if (signal !== undefined) params.signal = signal;
    if (graceMs !== undefined) params.graceMs = graceMs;
    return (await this.client.processTerminate(params)).running;
  }

  async release(): Promise<void> {
    await this.client.processRelease({ processId: this.processId });
  }

  /** This process's events as they arrive, ending after `process/exited`. */
  async *events(timeoutMs?: number): AsyncGenerator<ProcessEvent> {
    const deadline = deadlineOf(timeoutMs);
    while (!this.exited) yield await this.next(deadline);
  }

  /**
   * Wait until `needle` appears in the output after the previous match and
   * resolve to the output from there up to and including it. Rejects when the
   * process exits first, or with WardenTimeoutError after `timeoutMs`.
   */
  async readUntil(needle: string | Uint8Array, timeoutMs?: number): Promise<Buffer> {
    const want = Buffer.from(needle);
    const deadline = deadlineOf(timeoutMs);
    for (;;) {
      const text = Buffer.concat(this.sinceMatch);
      const at = text.indexOf(want);
      if (at >= 0) {
        this.sinceMatch = [text.subarray(at + want.length)];
        return text.subarray(0, at + want.length);
      }
      this.sinceMatch = [text];
      if (this.exited) {
        throw new Error(`process ${this.processId} exited before ${JSON.stringify(want.toString())} appeared`);
      }
      await this.next(deadline);
    }
  }

  /** Read the remaining events; resolves to the `process/exited` params. */
  async wait(timeoutMs?: number): Promise<ProcessExitedNotification> {
    const deadline = deadlineOf(timeoutMs);
    while (this.exitStatus === null) await this.next(deadline);
    return this.exitStatus;
  }

  private async next(deadline: number | undefined): Promise<ProcessEvent> {
    const event = await this.queue.next(deadline, `event from process ${this.processId}`);
    if (event.method === "process/output") {
      (event.params.stream === "stderr" ? this.err : this.out).push(event.data);
      this.all.push(event.data);
      this.sinceMatch.push(event.data);
      if (event.params.capReached) this.capReached.push(event.params.stream);
    } else {
      this.exitStatus = event.params;
    }
    return event;
  }
}

function deadlineOf(timeoutMs: number | undefined): number | undefined {
  return timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
}
