/* The dispatch table and the handler layer's lifecycle. */
#include "handlers/handlers.h"

const rpc_handler warden_handlers[] = {
    {"initialize", handle_initialize},
    {"shutdown", handle_shutdown},
    {"process/spawn", handle_process_spawn},
    {"process/write", handle_process_write},
    {"process/resize", handle_process_resize},
    {"process/terminate", handle_process_terminate},
    {"process/read", handle_process_read},
    {"process/release", handle_process_release},
    {"process/list", handle_process_list},
    {"policy/resolve", handle_policy_resolve},
    {"policy/transform", handle_policy_transform},
    {"sandbox/readiness", handle_sandbox_readiness},
    {"sandbox/setup", handle_sandbox_setup},
    {"sandbox/refresh", handle_sandbox_refresh},
    {"network/policy/get", handle_network_policy_get},
    {"network/policy/set", handle_network_policy_set},
    {"network/blocked/list", handle_network_blocked_list},
    {NULL, NULL},
};

int handlers_start(warden_server *s) {
  int rc = approvals_handlers_start(s);
  if (rc == 0)
    rc = network_handlers_start(s);
  return rc < 0 ? rc : process_handlers_start(s);
}

void handlers_stop(warden_server *s) { process_handlers_stop(s); }

void handlers_free(warden_server *s) {
  /* Approvals first: pending prompts are denied while the proxy still holds
   * their connections. */
  approvals_handlers_free(s);
  process_handlers_free(s);
  network_handlers_free(s);
}
