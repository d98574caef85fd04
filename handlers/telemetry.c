/* Telemetry for the process family: the process span (spawn to exit, child
 * of the process/spawn request's span) and refused spawns (-32003, -32004)
 * as log records. process.c calls these at its few hook points; with
 * telemetry off each returns at once. */
#include "handlers/handlers.h"
#include "server/telemetry/telemetry.h"

#include <stdio.h>
#include <string.h>

tele_span *handlers_process_span_start(warden_server *s, rpc_request *req, exec_proc *proc,
                                       const char *backend, bool enforced, const char *network) {
  tele_span *parent = rpc_request_span(req);
  if (!s->telemetry || !parent)
    return NULL; /* off, or the caller's trace is not sampled */
  tele_span *sp =
      telemetry_span_start(s->telemetry, "process", TELE_SPAN_INTERNAL, parent, NULL, NULL);
  /* The process's life starts with the request that spawned it. */
  telemetry_span_set_start_ns(sp, telemetry_span_start_ns(parent));
  char *const *argv = exec_proc_argv(proc);
  telemetry_span_set_str(sp, "warden.process.id", exec_proc_id(proc));
  telemetry_span_set_str(sp, "process.executable.name", argv && argv[0] ? argv[0] : "");
  telemetry_span_set_int(sp, "process.pid", exec_proc_pid(proc));
  telemetry_span_set_str(sp, "warden.sandbox.backend", backend);
  telemetry_span_set_bool(sp, "warden.sandbox.enforced", enforced);
  telemetry_span_set_str(sp, "warden.network.mode", network);
  telemetry_span_set_bool(sp, "warden.process.tty", exec_proc_tty(proc));
  return sp;
}

void handlers_process_span_end(tele_span *sp, const exec_exit_info *info) {
  if (!sp)
    return;
  if (!info) {
    telemetry_span_set_bool(sp, "warden.process.released", true);
  } else if (info->signal) {
    const char *name = exec_signal_name(info->signal);
    char msg[64];
    snprintf(msg, sizeof msg, "killed by signal %s", name ? name : "?");
    telemetry_span_set_str(sp, "warden.process.signal", name ? name : "");
    telemetry_span_set_int(sp, "warden.process.signal_number", info->signal);
    telemetry_span_set_error(sp, msg);
  } else {
    telemetry_span_set_int(sp, "process.exit.code", info->exit_code);
  }
  if (info && info->timed_out)
    telemetry_span_set_bool(sp, "warden.process.timed_out", true);
  telemetry_span_end(sp);
}

void handlers_log_spawn_refused(warden_server *s, rpc_request *req, json_t *params,
                                const char *id, const char *argv0, int code, const char *reason,
                                int err, const char *syscall) {
  if (!s->telemetry)
    return;
  if (params) {
    id = json_string_value(json_object_get(params, "processId"));
    argv0 = json_string_value(json_array_get(json_object_get(params, "argv"), 0));
  }
  bool denied = code == RPC_SANDBOX_DENIED;
  tele_attr a[] = {
      TELE_STR("warden.process.id", id),
      TELE_STR("process.executable.name", argv0),
      TELE_INT("rpc.jsonrpc.error_code", code),
      TELE_STR(denied ? "warden.sandbox.reason" : "warden.spawn.reason", reason),
      TELE_INT("warden.spawn.errno", err),
      TELE_STR("warden.spawn.syscall", syscall),
  };
  size_t n = sizeof a / sizeof a[0] - (err ? 0 : 2);
  telemetry_log(s->telemetry, denied ? "warden.sandbox.denied" : "warden.process.spawn_failed",
                denied ? TELE_SEV_WARN : TELE_SEV_ERROR, reason, a, n, rpc_request_span(req));
}

json_t *handlers_trace_env(warden_server *s, rpc_request *req, const json_t *env) {
  tele_span *sp = s->telemetry ? rpc_request_span(req) : NULL;
  if (!sp || json_object_get(env, "TRACEPARENT"))
    return NULL; /* off, not sampled, or the client chose its own */
  tele_ctx c = telemetry_span_ctx(sp);
  char tp[56];
  tele_traceparent_format(&c, tp);
  json_t *out = env ? json_copy((json_t *)env) : json_object();
  json_object_set_new(out, "TRACEPARENT", json_string(tp));
  const char *ts = telemetry_span_tracestate(sp);
  if (ts && *ts && !json_object_get(env, "TRACESTATE"))
    json_object_set_new(out, "TRACESTATE", json_string(ts));
  return out;
}
