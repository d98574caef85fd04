/* initialize, initialized, shutdown. */
#include "handlers/handlers.h"
#include "protocol/protocol.h"
#include "server/exec/limits.h"
#include "server/log.h"
#include "server/sandbox/sandbox.h"
#include "server/version.h"

#include <string.h>
#include <sys/utsname.h>

const policy_features *server_features(warden_server *s) {
  if (!s->features_probed) {
    sandbox_features_probe(&s->features);
    s->features_probed = true;
  }
  return &s->features;
}

json_t *handlers_features_json(const policy_features *f);
json_t *handlers_features_json(const policy_features *f) {
  exec_limit_mech m[EXEC_LIMIT_COUNT];
  exec_limits_probe(m);
  json_t *lim = json_object();
  for (int i = 0; i < EXEC_LIMIT_COUNT; i++)
    json_object_set_new(lim, exec_limit_name(i), json_string(exec_limit_mech_name(m[i])));
  return json_pack("{s:i,s:b,s:b,s:b,s:o,s:s}", "landlockAbi", f->landlock_abi, "userNamespaces",
                   f->user_namespaces, "networkNamespaces", f->network_namespaces, "seccomp",
                   f->seccomp, "limits", lim, "cgroups", exec_limits_host_summary());
}

void handle_initialize(void *server, rpc_request *req, json_t *params) {
  warden_server *s = server;
  json_t *caps = json_object_get(params, "capabilities");
  json_t *opt_out = json_object_get(caps, "optOutNotificationMethods");
  if (opt_out)
    rpc_set_opt_out(s->rpc, opt_out);
  handlers_approvals_client(s, json_is_true(json_object_get(caps, "networkApprovals")));
  const char *client = json_string_value(json_object_get(json_object_get(params, "clientInfo"), "name"));
  LOGI("server", "initialize from %s", client ? client : "?");
  struct utsname u;
  if (uname(&u) < 0)
    memset(&u, 0, sizeof u);
  json_t *result = json_pack("{s:{s:s,s:s},s:i,s:{s:s,s:s,s:s},s:o}", "serverInfo", "name",
                             "warden", "version", WARDEN_VERSION, "protocolVersion",
                             PROTOCOL_VERSION, "platform", "os", u.sysname, "arch", u.machine,
                             "kernel", u.release, "sandbox",
                             handlers_features_json(server_features(s)));
  rpc_set_initialized(s->rpc);
  rpc_respond(req, result);
}

static void shutdown_answer(void *arg) { rpc_respond(arg, json_object()); }

void handle_shutdown(void *server, rpc_request *req, json_t *params) {
  (void)params;
  server_shutdown(server, shutdown_answer, req);
}

void handlers_on_notification(void *server, const char *method, json_t *params) {
  (void)server;
  (void)params;
  /* The dispatcher passes only the client notifications of the protocol
   * (others are answered with an error, id null). */
  if (strcmp(method, "initialized") == 0)
    return;
  LOGW("rpc", "notification \"%s\" has no handler", method);
}
