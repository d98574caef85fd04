/* handlers/: one file per method family. Each turns validated params into
 * engine calls, and engine events into notifications; no policy logic here.
 */
#ifndef WARDEN_HANDLERS_H
#define WARDEN_HANDLERS_H

#include "server/server.h"

/* The dispatch table, terminated by {NULL, NULL}. */
extern const rpc_handler warden_handlers[];

int handlers_start(warden_server *s);   /* create engines and handler state */
void handlers_stop(warden_server *s);   /* shutdown reached: fail pending long-polls */
void handlers_free(warden_server *s);
void handlers_on_notification(void *server, const char *method, json_t *params);

/* `warden run [--sandbox JSON] [--cwd DIR] -- CMD...`: exit status of CMD. */
int handlers_run_command(warden_server *s, int argc, char **argv);

/* Per family (lifecycle.c, process.c, policy.c, sandbox.c). */
void handle_initialize(void *s, rpc_request *req, json_t *params);
void handle_shutdown(void *s, rpc_request *req, json_t *params);
void handle_process_spawn(void *s, rpc_request *req, json_t *params);
/* handlers/limits.c: effective resource limits for a spawn, and the spawn
 * result's `limits` object. */
struct exec_limits;
void handlers_spawn_limits(warden_server *s, json_t *params, bool sandboxed,
                           struct exec_limits *out);
json_t *handlers_applied_limits_json(const exec_proc *p, const struct exec_limits *l);
void handle_process_write(void *s, rpc_request *req, json_t *params);
void handle_process_resize(void *s, rpc_request *req, json_t *params);
void handle_process_terminate(void *s, rpc_request *req, json_t *params);
void handle_process_read(void *s, rpc_request *req, json_t *params);
void handle_process_release(void *s, rpc_request *req, json_t *params);
void handle_process_list(void *s, rpc_request *req, json_t *params);
void handle_policy_resolve(void *s, rpc_request *req, json_t *params);
void handle_policy_transform(void *s, rpc_request *req, json_t *params);
void handle_sandbox_readiness(void *s, rpc_request *req, json_t *params);
void handle_sandbox_setup(void *s, rpc_request *req, json_t *params);
void handle_sandbox_refresh(void *s, rpc_request *req, json_t *params);

/* approvals.c: network approval prompts and the network-rules file. */
int approvals_handlers_start(warden_server *s);
void approvals_handlers_free(warden_server *s);
/* initialize: whether the client answers approval/network. */
void handlers_approvals_client(warden_server *s, bool network_approvals);
/* stdin EOF or stdout gone: pending approvals are denied, none are asked. */
void handlers_approvals_client_gone(warden_server *s);
/* sandbox/refresh: reload network-rules; its bad lines go into warnings. */
void handlers_approvals_reload(warden_server *s, json_t *warnings);
/* sandbox/readiness: the bad lines of the last load. */
void handlers_approvals_warnings(warden_server *s, json_t *warnings);
/* The rules in force: [{action, protocol, host, port}]. */
json_t *handlers_approvals_rules_json(warden_server *s);
/* The proxy's ask hook: hold h until the prompt for its key is answered
 * (network.c's on_ask and on_hold_closed). */
struct netproxy_hold;
struct netproxy_event;
void handlers_approvals_ask(warden_server *s, struct netproxy_hold *h,
                            const struct netproxy_event *ev);
void handlers_approvals_hold_closed(warden_server *s, struct netproxy_hold *h);

/* process.c: engine lifecycle. */
int process_handlers_start(warden_server *s);
void process_handlers_stop(warden_server *s);
void process_handlers_free(warden_server *s);

/* Run a command for warden itself (process.c): not listed, no
 * notifications, stdout and stderr collected (up to the cap). fn runs once:
 * with failure set when it could not start, else with the exit info and the
 * output. The spec (may be NULL) is taken over. */
#define PROCESS_INTERNAL_PREFIX "warden.internal."
#define PROCESS_INTERNAL_MAX_OUTPUT 4096
struct sandbox_spec;
typedef void (*process_internal_fn)(void *arg, const char *failure, const exec_exit_info *info,
                                    const char *output, size_t len);
int process_spawn_internal(warden_server *s, char *const *argv, const char *cwd,
                           struct sandbox_spec *spec, process_internal_fn fn, void *arg);

/* Proxy mode, once the spawn is reported started: receive the listeners the
 * supervisor created inside the sandbox's network namespace from *chan
 * (closed and set to -1) and serve them with the egress proxy, reporting
 * owner (the processId; must outlive the listeners) with every decision.
 * No-op when *chan < 0. A failure leaves the command with listeners nobody
 * serves: its connections fail, nothing gets out. (network.c) */
int handlers_proxy_serve(warden_server *s, int *chan, const char *owner);
/* Close the listeners and connections of that owner. */
void handlers_proxy_close(warden_server *s, const char *owner);

/* network.c: the egress proxy engine and the network family. */
int network_handlers_start(warden_server *s);
void network_handlers_free(warden_server *s);
void handle_network_policy_get(void *s, rpc_request *req, json_t *params);
void handle_network_policy_set(void *s, rpc_request *req, json_t *params);
void handle_network_blocked_list(void *s, rpc_request *req, json_t *params);

/* Telemetry for the process family (telemetry.c); no-ops when it is off.
 * The span starts as the spawn request's child; _end takes info NULL for a
 * process released (or abandoned) before its exit. A refused spawn's record
 * takes processId and argv[0] from params, or from id/argv0 when params is NULL. */
struct tele_span;
struct tele_span *handlers_process_span_start(warden_server *s, rpc_request *req, exec_proc *proc,
                                              const char *backend, bool enforced,
                                              const char *network);
void handlers_process_span_end(struct tele_span *sp, const exec_exit_info *info);
void handlers_log_spawn_refused(warden_server *s, rpc_request *req, json_t *params,
                                const char *id, const char *argv0, int code, const char *reason,
                                int err, const char *syscall);
/* The command's environment carries the spawn request's trace context
 * (TRACEPARENT, TRACESTATE: the OpenTelemetry environment carriers) unless
 * env sets them: a new object (env copied), or NULL when there is nothing
 * to add. */
json_t *handlers_trace_env(warden_server *s, rpc_request *req, const json_t *env);

/* The policy context for resolving a policy in this server (policy.c). */
void handlers_policy_context(warden_server *s, policy_context *ctx);
/* A policy error as a -32602 answer with data.path. */
void handlers_respond_policy_error(rpc_request *req, const policy_error *err);

#endif
