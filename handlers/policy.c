/* policy/resolve and policy/transform: thin wrappers over server/policy. */
#include "handlers/handlers.h"

#include <stdlib.h>
#include <string.h>

void handlers_policy_context(warden_server *s, policy_context *ctx) {
  memset(ctx, 0, sizeof *ctx);
  ctx->profiles = s->cfg.profiles;
  ctx->home = getenv("HOME");
  ctx->tmpdir = getenv("TMPDIR");
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
  json_t *result = json_pack("{s:o,s:b,s:b}", "plan", policy_plan_to_json(plan),
                             "legacyEquivalent", plan->legacy_equivalent, "enforceable",
                             plan->enforceable);
  if (plan->reason)
    json_object_set_new(result, "reason", json_string(plan->reason));
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
