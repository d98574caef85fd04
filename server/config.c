#include "server/config.h"

#include "protocol/protocol.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void config_defaults(warden_config *c) {
  memset(c, 0, sizeof *c);
  c->max_line_bytes = 16u << 20;
  c->retain_bytes = 1u << 20;
  c->max_inflight = 1024;
  c->shutdown_grace_ms = 2000;
  c->call_timeout_ms = 120000;
  c->out_high_water = 4u << 20;
}

void config_free(warden_config *c) {
  free(c->state_dir);
  json_decref(c->default_sandbox);
  json_decref(c->profiles);
  json_decref(c->telemetry);
  json_decref(c->limits);
  c->state_dir = NULL;
  c->default_sandbox = c->profiles = c->telemetry = c->limits = NULL;
  json_decref(c->network);
  c->network = NULL;
  free(c->proxy_listen);
  c->proxy_listen = NULL;
}

static int get_size(const char *path, const char *key, json_t *v, long long min, long long max,
                    long long *out, char *err, size_t errlen) {
  if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
    snprintf(err, errlen, "%s: \"%s\" must be an integer %lld..%lld", path, key, min, max);
    return -1;
  }
  *out = (long long)json_integer_value(v);
  return 0;
}

/* "network": {allowedDomains?, deniedDomains?, mode?, allowLocalBinding?,
 * proxyListen?, headTimeoutMs?, idleTimeoutMs?, maxConnectionsPerProcess?}:
 * the egress proxy's start policy (patterns are checked when it starts) and
 * its limits. */
static int config_network(warden_config *c, const char *path, json_t *v, char *err,
                          size_t errlen) {
  if (!json_is_object(v)) {
    snprintf(err, errlen, "%s: \"network\" must be an object", path);
    return -1;
  }
  const char *key;
  json_t *f;
  json_object_foreach(v, key, f) {
    bool ok;
    if (strcmp(key, "allowedDomains") == 0 || strcmp(key, "deniedDomains") == 0) {
      ok = json_is_array(f);
      for (size_t i = 0; ok && i < json_array_size(f); i++)
        ok = json_is_string(json_array_get(f, i));
    } else if (strcmp(key, "mode") == 0) {
      ok = json_is_string(f) && (strcmp(json_string_value(f), "full") == 0 ||
                                 strcmp(json_string_value(f), "limited") == 0);
    } else if (strcmp(key, "allowLocalBinding") == 0) {
      ok = json_is_boolean(f);
    } else if (strcmp(key, "proxyListen") == 0) {
      ok = json_is_string(f);
    } else if (strcmp(key, "headTimeoutMs") == 0 || strcmp(key, "idleTimeoutMs") == 0 ||
               strcmp(key, "maxConnectionsPerProcess") == 0) {
      ok = json_is_integer(f) && json_integer_value(f) > 0 &&
           json_integer_value(f) <= 86400000;
    } else {
      snprintf(err, errlen,
               "%s: network: unknown key \"%s\" (known: allowedDomains, deniedDomains, mode, "
               "allowLocalBinding, proxyListen, headTimeoutMs, idleTimeoutMs, "
               "maxConnectionsPerProcess)",
               path, key);
      return -1;
    }
    if (!ok) {
      snprintf(err, errlen, "%s: network.%s has the wrong type or value", path, key);
      return -1;
    }
  }
  json_decref(c->network);
  c->network = json_incref(v);
  json_t *pl = json_object_get(v, "proxyListen");
  if (pl) {
    free(c->proxy_listen);
    c->proxy_listen = strdup(json_string_value(pl));
  }
  return 0;
}

int config_load_file(warden_config *c, const char *path, char *err, size_t errlen) {
  json_error_t je;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  if (!root) {
    snprintf(err, errlen, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    return -1;
  }
  int rc = 0;
  if (!json_is_object(root)) {
    snprintf(err, errlen, "%s: expected a JSON object", path);
    rc = -1;
  }
  const char *key;
  json_t *v;
  long long n = 0; /* set by get_size, and read only when it succeeded */
  json_object_foreach(root, key, v) {
    if (rc)
      break;
    if (strcmp(key, "maxLineBytes") == 0) {
      rc = get_size(path, key, v, 64, 1LL << 30, &n, err, errlen);
      if (rc == 0)
        c->max_line_bytes = (size_t)n;
    } else if (strcmp(key, "retainBytes") == 0) {
      rc = get_size(path, key, v, 0, 1LL << 30, &n, err, errlen);
      if (rc == 0)
        c->retain_bytes = (size_t)n;
    } else if (strcmp(key, "maxInflight") == 0) {
      rc = get_size(path, key, v, 1, 1 << 20, &n, err, errlen);
      if (rc == 0)
        c->max_inflight = (unsigned)n;
    } else if (strcmp(key, "shutdownGraceMs") == 0) {
      rc = get_size(path, key, v, 0, 600000, &n, err, errlen);
      if (rc == 0)
        c->shutdown_grace_ms = (uint64_t)n;
    } else if (strcmp(key, "approvalTimeoutMs") == 0) {
      rc = get_size(path, key, v, 1, 3600000, &n, err, errlen);
      if (rc == 0)
        c->call_timeout_ms = (uint64_t)n;
    } else if (strcmp(key, "outputHighWaterBytes") == 0) {
      rc = get_size(path, key, v, 65536, 1LL << 30, &n, err, errlen);
      if (rc == 0)
        c->out_high_water = (size_t)n;
    } else if (strcmp(key, "stateDir") == 0) {
      if (!json_is_string(v) || json_string_value(v)[0] != '/') {
        snprintf(err, errlen, "%s: \"stateDir\" must be an absolute path", path);
        rc = -1;
      } else {
        free(c->state_dir);
        c->state_dir = strdup(json_string_value(v));
      }
    } else if (strcmp(key, "defaultSandbox") == 0) {
      proto_violation pv;
      if (!proto_validate(&proto_t_sandbox_policy, v, "defaultSandbox", &pv)) {
        snprintf(err, errlen, "%s: %s", path, pv.message);
        rc = -1;
      } else {
        json_decref(c->default_sandbox);
        c->default_sandbox = json_incref(v);
      }
    } else if (strcmp(key, "limits") == 0) {
      proto_violation pv;
      if (!proto_validate(&proto_t_resource_limits, v, "limits", &pv)) {
        snprintf(err, errlen, "%s: %s", path, pv.message);
        rc = -1;
      } else {
        json_decref(c->limits);
        c->limits = json_incref(v);
      }
    } else if (strcmp(key, "profiles") == 0) {
      if (!json_is_object(v)) {
        snprintf(err, errlen, "%s: \"profiles\" must be an object of name -> policy", path);
        rc = -1;
      } else {
        json_decref(c->profiles);
        c->profiles = json_incref(v);
      }
    } else if (strcmp(key, "telemetry") == 0) {
      if (!json_is_object(v)) {
        snprintf(err, errlen, "%s: \"telemetry\" must be an object", path);
        rc = -1;
      } else {
        json_decref(c->telemetry);
        c->telemetry = json_incref(v);
      }
    } else if (strcmp(key, "network") == 0) {
      rc = config_network(c, path, v, err, errlen);
    } else {
      snprintf(err, errlen,
               "%s: unknown key \"%s\" (known: maxLineBytes, retainBytes, maxInflight, "
               "shutdownGraceMs, approvalTimeoutMs, outputHighWaterBytes, stateDir, "
               "defaultSandbox, profiles, telemetry, network, limits)",
               path, key);
      rc = -1;
    }
  }
  json_decref(root);
  return rc;
}
