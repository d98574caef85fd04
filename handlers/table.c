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
    /* The network and approval families are described in protocol/ (and so in the
     * schema) but answer -32601 until the egress proxy lands. */
    {NULL, NULL},
};

int handlers_start(warden_server *s) {
  int rc = process_handlers_start(s);
  if (rc == 0)
    rc = approvals_handlers_start(s);
  return rc;
}

void handlers_stop(warden_server *s) { process_handlers_stop(s); }

void handlers_free(warden_server *s) {
  approvals_handlers_free(s);
  process_handlers_free(s);
}
