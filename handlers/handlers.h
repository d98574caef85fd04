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
 * (closed and set to -1) and serve them. No-op when *chan < 0. A failure
 * leaves the command with listeners nobody serves: its connections fail,
 * nothing gets out. */
struct netstub;
int handlers_proxy_serve(uv_loop_t *loop, int *chan, struct netstub **out);

/* The policy context for resolving a policy in this server (policy.c). */
void handlers_policy_context(warden_server *s, policy_context *ctx);
/* A policy error as a -32602 answer with data.path. */
void handlers_respond_policy_error(rpc_request *req, const policy_error *err);

#endif
