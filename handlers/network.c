/* The network family: network/policy/get, network/policy/set,
 * network/blocked/list, and the network/decision notification. Owns the
 * egress proxy engine (server/netproxy) for the server: the listeners each
 * proxy-mode sandbox hands over, and --proxy-listen. */
#include "handlers/handlers.h"
#include "server/log.h"
#include "server/netproxy/netproxy.h"
#include "server/telemetry/telemetry.h"
#include "server/sandbox/sandbox.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void rfc3339(int64_t ms, char *out, size_t n) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char base[32];
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, n, "%s.%03dZ", base, (int)(ms % 1000));
}

static json_t *event_json(const netproxy_event *ev) {
  char ts[48];
  rfc3339(ev->timestamp_ms, ts, sizeof ts);
  const char *owner = ev->owner;
  return json_pack("{s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:o}", "timestamp", ts, "host", ev->host,
                   "port", (int)ev->port, "protocol", netproxy_protocol_name(ev->protocol),
                   "method", ev->method, "decision", netproxy_verdict_name(ev->decision), "reason",
                   ev->reason, "source", ev->source, "processId",
                   owner ? json_string(owner) : json_null());
}

/* The audit record of a decision (telemetry off: nothing). A refusal for
 * what the destination or method is (a local address, limited mode) is a
 * block decision; everything the domain rules decided is a domain policy
 * decision. */
static void log_decision(warden_server *s, const netproxy_event *ev) {
  if (!s->telemetry)
    return;
  char ts[48];
  rfc3339(ev->timestamp_ms, ts, sizeof ts);
  bool block = strcmp(ev->reason, "not_allowed_local") == 0 ||
               strcmp(ev->reason, "method_not_allowed") == 0;
  tele_net_decision d = {.timestamp = ts,
                         .host = ev->host,
                         .port = (int)ev->port,
                         .protocol = netproxy_protocol_name(ev->protocol),
                         .method = ev->method && ev->method[0] ? ev->method : NULL,
                         .decision = netproxy_verdict_name(ev->decision),
                         .reason = ev->reason,
                         .source = ev->source,
                         .process_id = ev->owner};
  telemetry_log_network_decision(s->telemetry, block ? TELE_NET_BLOCK : TELE_NET_DOMAIN_POLICY,
                                 &d);
}

static void on_decision(void *ctx, const netproxy_event *ev) {
  warden_server *s = ctx;
  log_decision(s, ev);
  if (s->rpc) {
    if (rpc_notification_wanted(s->rpc, "network/decision"))
      rpc_notify(s->rpc, "network/decision", event_json(ev));
  } else if (ev->decision == NETPROXY_DENY) { /* warden run: tell the user */
    fprintf(stderr, "warden: network %s %s:%u refused (%s)\n",
            netproxy_protocol_name(ev->protocol), ev->host, ev->port, ev->reason);
  }
}

/* An allow-list miss becomes an approval prompt (handlers/approvals.c): the
 * connection is held until the group's answer. */
static void on_ask(void *ctx, netproxy_hold *h, const netproxy_event *ev) {
  handlers_approvals_ask(ctx, h, ev);
}

static void on_hold_closed(void *ctx, netproxy_hold *h) { handlers_approvals_hold_closed(ctx, h); }

/* ---- NetworkPolicy <-> netproxy_policy ---- */

static int strings_of(json_t *arr, char ***out, size_t *n) {
  *n = json_array_size(arr);
  *out = calloc(*n ? *n : 1, sizeof **out);
  if (!*out)
    return -ENOMEM;
  for (size_t i = 0; i < *n; i++)
    (*out)[i] = (char *)json_string_value(json_array_get(arr, i));
  return 0;
}

/* A borrowed view of a NetworkPolicy object (strings stay in `obj`); fields
 * absent keep the value in `base`. Frees only the arrays. */
static int policy_view(json_t *obj, const netproxy_policy *base, netproxy_policy *p, char *err,
                       size_t errlen) {
  *p = *base;
  p->allowed = p->denied = NULL;
  json_t *a = json_object_get(obj, "allowedDomains"), *d = json_object_get(obj, "deniedDomains");
  int rc = 0;
  if (a) {
    if (!json_is_array(a)) {
      snprintf(err, errlen, "allowedDomains must be an array of host patterns");
      return -EINVAL;
    }
    rc = strings_of(a, &p->allowed, &p->n_allowed);
  } else {
    p->allowed = calloc(base->n_allowed ? base->n_allowed : 1, sizeof *p->allowed);
    if (p->allowed)
      memcpy(p->allowed, base->allowed, base->n_allowed * sizeof *p->allowed);
  }
  if (!rc && d) {
    if (!json_is_array(d)) {
      snprintf(err, errlen, "deniedDomains must be an array of host patterns");
      free(p->allowed);
      return -EINVAL;
    }
    rc = strings_of(d, &p->denied, &p->n_denied);
  } else if (!rc) {
    p->denied = calloc(base->n_denied ? base->n_denied : 1, sizeof *p->denied);
    if (p->denied)
      memcpy(p->denied, base->denied, base->n_denied * sizeof *p->denied);
  }
  if (rc < 0 || !p->allowed || !p->denied) {
    free(p->allowed);
    free(p->denied);
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  for (size_t i = 0; i < p->n_allowed; i++)
    if (!p->allowed[i]) {
      snprintf(err, errlen, "allowedDomains[%zu] must be a string", i);
      rc = -EINVAL;
    }
  for (size_t i = 0; i < p->n_denied; i++)
    if (!p->denied[i]) {
      snprintf(err, errlen, "deniedDomains[%zu] must be a string", i);
      rc = -EINVAL;
    }
  json_t *m = json_object_get(obj, "mode");
  if (m) {
    const char *mv = json_string_value(m);
    if (!mv || (strcmp(mv, "full") && strcmp(mv, "limited"))) {
      snprintf(err, errlen, "mode must be \"full\" or \"limited\"");
      rc = -EINVAL;
    } else {
      p->limited = strcmp(mv, "limited") == 0;
    }
  }
  json_t *l = json_object_get(obj, "allowLocalBinding");
  if (l) {
    if (!json_is_boolean(l)) {
      snprintf(err, errlen, "allowLocalBinding must be a boolean");
      rc = -EINVAL;
    } else {
      p->allow_local_binding = json_is_true(l);
    }
  }
  if (rc < 0) {
    free(p->allowed);
    free(p->denied);
  }
  return rc;
}

static json_t *policy_json(const netproxy_policy *p) {
  json_t *a = json_array(), *d = json_array();
  for (size_t i = 0; i < p->n_allowed; i++)
    json_array_append_new(a, json_string(p->allowed[i]));
  for (size_t i = 0; i < p->n_denied; i++)
    json_array_append_new(d, json_string(p->denied[i]));
  return json_pack("{s:o,s:o,s:s,s:b}", "allowedDomains", a, "deniedDomains", d, "mode",
                   p->limited ? "limited" : "full", "allowLocalBinding", p->allow_local_binding);
}

static int apply_policy(netproxy *np, json_t *obj, char *err, size_t errlen) {
  netproxy_policy view;
  int rc = policy_view(obj, netproxy_get_policy(np), &view, err, errlen);
  if (rc < 0)
    return rc;
  rc = netproxy_set_policy(np, &view, err, errlen);
  free(view.allowed);
  free(view.denied);
  return rc;
}

/* ---- methods ---- */

void handle_network_policy_get(void *server, rpc_request *req, json_t *params) {
  warden_server *s = server;
  (void)params;
  json_t *r = policy_json(netproxy_get_policy(s->netproxy));
  json_t *rules = handlers_approvals_rules_json(s);
  if (json_array_size(rules))
    json_object_set_new(r, "approvalRules", rules);
  else
    json_decref(rules);
  rpc_respond(req, r);
}

void handle_network_policy_set(void *server, rpc_request *req, json_t *params) {
  warden_server *s = server;
  char err[512] = "";
  if (apply_policy(s->netproxy, params, err, sizeof err) < 0) {
    /* The message starts with the field it names ("deniedDomains[0] ..."):
     * that is data.path, as for every -32602. */
    char path[160] = "params";
    size_t n = strspn(err, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_[].");
    if (n > 0 && n < sizeof path - 8)
      snprintf(path, sizeof path, "params.%.*s", (int)n, err);
    rpc_respond_error(req, RPC_INVALID_PARAMS, err, json_pack("{s:s}", "path", path));
    return;
  }
  rpc_respond(req, json_object());
}

static void blocked_one(void *arg, const netproxy_event *ev) {
  json_array_append_new(arg, event_json(ev));
}

void handle_network_blocked_list(void *server, rpc_request *req, json_t *params) {
  warden_server *s = server;
  json_t *l = json_object_get(params, "limit");
  size_t limit = l ? (size_t)json_integer_value(l) : NETPROXY_HISTORY;
  json_t *arr = json_array();
  netproxy_blocked_each(s->netproxy, limit, blocked_one, arr);
  rpc_respond(req, json_pack("{s:o}", "blocked", arr));
}

/* ---- lifecycle ---- */

int network_handlers_start(warden_server *s) {
  const json_t *cfg = s->cfg.network;
  netproxy_opts o = {0};
  if (cfg) {
    o.head_timeout_ms = (uint64_t)json_integer_value(json_object_get(cfg, "headTimeoutMs"));
    o.idle_timeout_ms = (uint64_t)json_integer_value(json_object_get(cfg, "idleTimeoutMs"));
    o.max_conns = (unsigned)json_integer_value(json_object_get(cfg, "maxConnectionsPerProcess"));
  }
  netproxy_callbacks cb = {.ctx = s, .on_decision = on_decision, .on_ask = on_ask,
                           .on_hold_closed = on_hold_closed};
  int rc = netproxy_new(s->loop, &o, &cb, &s->netproxy);
  if (rc < 0)
    return rc;
  char err[512] = "";
  if (cfg && apply_policy(s->netproxy, (json_t *)cfg, err, sizeof err) < 0) {
    fprintf(stderr, "warden: config: network: %s\n", err);
    return -EINVAL;
  }
  const char *listen = s->cfg.proxy_listen;
  if (listen && *listen) {
    char host[128];
    const char *colon = strrchr(listen, ':');
    int port = colon ? atoi(colon + 1) : -1;
    size_t hl = colon ? (size_t)(colon - listen) : 0;
    if (hl && listen[0] == '[' && listen[hl - 1] == ']')
      listen++, hl -= 2;
    if (!colon || hl == 0 || hl >= sizeof host || port < 0 || port > 65535) {
      fprintf(stderr, "warden: --proxy-listen wants HOST:PORT on loopback, not \"%s\"\n",
              s->cfg.proxy_listen);
      return -EINVAL;
    }
    memcpy(host, listen, hl);
    host[hl] = 0;
    int bound = 0;
    rc = netproxy_listen_addr(s->netproxy, host, port, NULL, &bound);
    if (rc < 0) {
      fprintf(stderr, "warden: --proxy-listen %s: %s\n", s->cfg.proxy_listen,
              rc == -EADDRNOTAVAIL ? "only loopback addresses are served" : strerror(-rc));
      return rc;
    }
    fprintf(stderr, "warden: proxy listening on %s%s%s:%d (HTTP and SOCKS5)\n",
            strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", bound);
  }
  return 0;
}

void network_handlers_free(warden_server *s) {
  netproxy_free(s->netproxy);
  s->netproxy = NULL;
}

/* ---- the listeners a proxy-mode sandbox hands over ---- */

int handlers_proxy_serve(warden_server *s, int *chan, const char *owner) {
  if (*chan < 0)
    return 0;
  int fds[2];
  int rc = sandbox_proxy_receive(*chan, fds);
  close(*chan);
  *chan = -1;
  if (rc < 0)
    return rc;
  if (!s->netproxy) {
    close(fds[0]);
    close(fds[1]);
    return -ENOTCONN;
  }
  rc = netproxy_listen_fd(s->netproxy, fds[0], (void *)owner);
  int rc2 = netproxy_listen_fd(s->netproxy, fds[1], (void *)owner);
  return rc < 0 ? rc : rc2;
}

void handlers_proxy_close(warden_server *s, const char *owner) {
  if (s->netproxy && owner)
    netproxy_close_owner(s->netproxy, (void *)owner);
}
