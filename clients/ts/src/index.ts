export * from "./generated";
export * from "./errors";
export {
  WardenClient,
  findWarden,
  VERSION,
  type ApprovalAnswer,
  type ApprovalHandler,
  type ClientEvents,
  type Notification,
  type RequestHandler,
  type RequestMethods,
  type RequestOptions,
  type SpawnOptions,
  type WardenClientOptions,
} from "./client";
export { Process, type ProcessEvent } from "./process";
export { Decision, DECISIONS, decisionAllows, NetworkApproval, type ApprovalResolved } from "./approvals";
