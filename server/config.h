/* Configuration: defaults, then the JSON config file (--config FILE or
 * $WARDEN_CONFIG), then command-line flags. */
#ifndef WARDEN_CONFIG_H
#define WARDEN_CONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct warden_config {
  size_t max_line_bytes;       /* --max-line-bytes, "maxLineBytes": 16 MiB */
  size_t retain_bytes;         /* --retain-bytes, "retainBytes": 1 MiB */
  unsigned max_inflight;       /* "maxInflight": 1024 */
  uint64_t shutdown_grace_ms;  /* "shutdownGraceMs": 2000 */
  uint64_t call_timeout_ms;    /* "approvalTimeoutMs": 120000 */
  size_t out_high_water;       /* "outputHighWaterBytes": 4 MiB */
  char *state_dir;             /* --state-dir, "stateDir" */
  json_t *default_sandbox;     /* "defaultSandbox": SandboxPolicy, NULL: workspaceWrite */
  json_t *profiles;            /* "profiles": name -> SandboxPolicy */
  json_t *telemetry;           /* "telemetry": checked by server/telemetry at start */
  json_t *network;             /* "network": start NetworkPolicy and proxy limits */
  char *proxy_listen;          /* --proxy-listen, "network.proxyListen": HOST:PORT */
  json_t *limits;              /* "limits": ResourceLimits defaults for every spawn, NULL: none */
} warden_config;

void config_defaults(warden_config *c);
/* Load a JSON config file over c. 0, or -1 with a message in err naming the
 * file and the key that was wrong. */
int config_load_file(warden_config *c, const char *path, char *err, size_t errlen);
void config_free(warden_config *c);

#endif
