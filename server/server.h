/* The server: one libuv loop, the stdio transport, the dispatcher and the
 * engines. Handlers (handlers/) receive a warden_server and reach the
 * engines through it. */
#ifndef WARDEN_SERVER_H
#define WARDEN_SERVER_H

#include "server/config.h"
#include "server/exec/exec.h"
#include "server/policy/policy.h"
#include "server/rpc.h"
#include "server/transport.h"

#include <stdbool.h>
#include <uv.h>

typedef struct warden_server {
  uv_loop_t *loop;
  warden_config cfg;
  transport *tr;
  rpc *rpc;
  exec_engine *exec;
  struct netproxy *netproxy; /* the egress proxy (handlers/network.c) */
  policy_features features;
  bool features_probed;
  bool zygote;        /* start the zygote after initialize (off: --no-zygote) */
  bool zygote_tried;
  size_t warm_supervisors; /* per kind of spawn (--warm-supervisors) */
  bool shutting_down;
  int exit_code;
  uv_signal_t sigterm, sigint;
  struct handler_state *handlers; /* owned by handlers/ */
  struct telemetry *telemetry;    /* NULL: telemetry off (server/telemetry) */
  struct approvals *approvals;    /* network approvals (handlers/approvals.c) */
} warden_server;

/* Start the orderly shutdown: terminate every process, flush stdout, stop the
 * loop. `then` (may be NULL) runs once the processes are gone, before the
 * flush: the shutdown request answers there. */
void server_shutdown(warden_server *s, void (*then)(void *arg), void *arg);

/* Probe kernel sandbox features once (cached). */
const policy_features *server_features(warden_server *s);

#endif
