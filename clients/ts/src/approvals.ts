// Typed network approvals: what the server asks (`approval/network`), what the
// client answers, and how it was settled (`approval/resolved`).
//
// The server asks once per (host, protocol, port) at a time; every connection
// waiting on that key shares the answer. No answer within its timeout, a throw
// in the handler or an unknown decision counts as `deny`.
import type {
  ApprovalDecision,
  ApprovalNetworkParams,
  ApprovalNetworkResult,
  ApprovalResolvedNotification,
  NetworkProtocol,
} from "./generated";

/** The decisions, by name: `Decision.AllowForSession === "allowForSession"`. */
export const Decision = {
  /** Let the waiting connections through; remember nothing. */
  AllowOnce: "allowOnce",
  /** Also allow this (host, protocol, port) until the server exits. */
  AllowForSession: "allowForSession",
  /** Also persist an allow rule for this exact host, protocol and port. */
  AllowAlways: "allowAlways",
  /** Refuse the waiting connections. */
  Deny: "deny",
  /** Also persist a deny rule for this exact host, protocol and port. */
  DenyAlways: "denyAlways",
} as const satisfies Record<string, ApprovalDecision>;

export const DECISIONS: readonly ApprovalDecision[] = Object.values(Decision);

/** Whether a decision lets the waiting connections through. */
export function decisionAllows(decision: ApprovalDecision): boolean {
  return decision === "allowOnce" || decision === "allowForSession" || decision === "allowAlways";
}

/** The params of `approval/network`, typed, with a few conveniences. */
export class NetworkApproval implements ApprovalNetworkParams {
  readonly approvalId: string;
  readonly host: string;
  readonly port: number;
  readonly protocol: NetworkProtocol;
  /** The processes waiting when the prompt went out (later ones join without a new prompt). */
  readonly processIds: string[];
  readonly reason: string;
  readonly startedAtMs: number;

  constructor(params: ApprovalNetworkParams) {
    this.approvalId = params.approvalId;
    this.host = params.host;
    this.port = params.port;
    this.protocol = params.protocol;
    this.processIds = [...(params.processIds ?? [])];
    this.reason = params.reason;
    this.startedAtMs = params.startedAtMs;
  }

  /** What one prompt stands for: `"https api.example.com 443"` (the rule-file order). */
  get key(): string {
    return `${this.protocol} ${this.host} ${this.port}`;
  }

  get startedAt(): Date {
    return new Date(this.startedAtMs);
  }
}

/** `approval/resolved`: how a prompt was settled and how many connections shared it. */
export type ApprovalResolved = ApprovalResolvedNotification;

/** What a handler answers: a decision, or the whole result. */
export type ApprovalAnswer = ApprovalDecision | ApprovalNetworkResult;
/** Answers `approval/network`; may be async. */
export type ApprovalHandler = (request: NetworkApproval) => ApprovalAnswer | Promise<ApprovalAnswer>;
