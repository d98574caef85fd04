/* policy/resolve and policy/transform: thin wrappers over server/policy. */
#include "handlers/handlers.h"
#include "server/sandbox/sandbox.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void handlers_policy_context(warden_server *s, policy_context *ctx) {
  memset(ctx, 0, sizeof *ctx);
  ctx->profiles = s->cfg.profiles;
  ctx->home = getenv("HOME");
  ctx->tmpdir = getenv("TMPDIR");
  ctx->path_env = getenv("PATH");
  ctx->features = *server_features(s);
  /* The egress proxy (server/netproxy) serves every proxy-mode sandbox's
   * listeners: networkAccess:false means network mode "proxy", so what the
   * network policy allows is reachable through it and nothing else. */
  ctx->proxy_available = true;
  ctx->proxy_listeners = true;
}

void handlers_respond_policy_error(rpc_request *req, const policy_error *err) {
  json_t *data = json_pack("{s:s}", "path", err->path[0] ? err->path : "params.sandbox");
  rpc_respond_error(req, RPC_INVALID_PARAMS, err->message, data);
}

void handle_policy_resolve(void *server, rpc_request *req, json_t *params) {
  warden_server *s = server;
  policy_context ctx;
  handlers_policy_context(s, &ctx);
  policy_plan *plan = NULL;
  policy_error err;
  memset(&err, 0, sizeof err);
  const char *cwd = json_string_value(json_object_get(params, "cwd"));
  if (policy_resolve(json_object_get(params, "sandbox"), cwd, &ctx, "params.sandbox", &plan,
                     &err) < 0) {
    handlers_respond_policy_error(req, &err);
    return;
  }
  /* enforceable and backend are what process/spawn would do: the spawn's
   * own build, without touching the host (no mount point stubs), so an
   * entry the sandbox refuses (/dev, /proc beyond its own) or a kernel
   * without seccomp is not reported enforceable here */
  if (plan->enforce && plan->enforceable) {
    sandbox_build_opts bo = {.cwd = cwd, .host_uid = getuid(), .host_gid = getgid(),
                             .exe_path = "/proc/self/exe", .state_dir = s->cfg.state_dir};
    sandbox_spec *spec = NULL;
    char *reason = NULL;
    int rc = sandbox_spec_build_dry(plan, &bo, &spec, &reason);
    if (rc < 0) {
      plan->enforceable = false;
      free(plan->reason);
      plan->reason = reason ? reason : strdup(strerror(-rc));
      reason = NULL;
    } else {
      plan->backend = strcmp(sandbox_spec_backend_name(spec), "landlock") == 0
                          ? POLICY_BACKEND_LANDLOCK
                          : POLICY_BACKEND_NAMESPACES;
    }
    free(reason);
    sandbox_spec_free(spec);
  }
  json_t *result = json_pack("{s:o,s:b,s:b}", "plan", policy_plan_to_json(plan),
                             "legacyEquivalent", plan->legacy_equivalent, "enforceable",
                             plan->enforceable);
  if (plan->reason)
    json_object_set_new(result, "reason", json_string(plan->reason));
  json_object_set_new(result, "backend", json_string(policy_backend_name(plan->backend)));
  json_t *warnings = json_array();
  struct stat st;
  if (stat(cwd, &st) < 0)
    json_array_append_new(warnings, json_sprintf("cwd %s: %s", cwd, strerror(errno)));
  else if (!S_ISDIR(st.st_mode))
    json_array_append_new(warnings, json_sprintf("cwd %s is not a directory", cwd));
  json_object_set_new(result, "warnings", warnings);
  policy_plan_free(plan);
  rpc_respond(req, result);
}

void handle_policy_transform(void *server, rpc_request *req, json_t *params) {
  warden_server *s = server;
  policy_context ctx;
  handlers_policy_context(s, &ctx);
  policy_error err;
  memset(&err, 0, sizeof err);
  json_t *out = NULL;
  if (policy_transform(json_object_get(params, "sandbox"),
                       json_string_value(json_object_get(params, "cwd")), &ctx,
                       json_string_value(json_object_get(params, "to")), "params.sandbox", &out,
                       &err) < 0) {
    handlers_respond_policy_error(req, &err);
    return;
  }
  rpc_respond(req, json_pack("{s:o}", "sandbox", out));
}
