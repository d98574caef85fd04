/* Network approvals: the approval/network server-to-client request and the
 * approval/resolved notification around server/approvals, and the
 * network-rules file in the state directory (loaded at start and on
 * sandbox/refresh, written by allowAlways and denyAlways).
 *
 * The engine decides who waits on which prompt; this file only turns its
 * hooks into messages and the client's answer back into a decision:
 *   result {decision: <one of ApprovalDecision>}  that decision
 *   an unknown decision                            deny (approval_unknown_decision)
 *   an error answer                                deny (approval_error)
 *   no answer within approvalTimeoutMs             deny (approval_timeout)
 *   the client gone (stdin EOF, shutdown)          deny (approval_client_gone)
 * A client that did not set capabilities.networkApprovals is never asked:
 * requests that would prompt are refused at once.
 */
#include "handlers/handlers.h"
#include "server/approvals/approvals.h"
#include "server/approvals/rules.h"
#include "server/log.h"
#include "server/netproxy/netproxy.h"
#include "server/sandbox/sandbox.h"
#include "server/telemetry/telemetry.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The rpc layer's own timer for approval/network fires this long after the
 * engine's, so a timeout is always reported by the engine (one reason). */
#define APPROVAL_CALL_SLACK_MS 1000

/* A proxy connection held on a prompt. */
typedef struct held {
  struct held *prev, *next;
  netproxy_hold *h;
  approval_waiter *w;
} held;

/* Held connections hashed by their hold pointer: a closing connection finds
 * its waiter in O(1) however many wait. */
#define HELD_BUCKETS 1024

typedef struct approvals_state {
  warden_server *s;
  char *rules_path;   /* NULL: no state directory, nothing persisted */
  json_t *warnings;   /* strings: the rules file's bad lines at the last load */
  held *held[HELD_BUCKETS];
} approvals_state;

static approvals_state g_state; /* one server per process */

typedef struct call_ctx {
  warden_server *s;
  uint64_t id;
} call_ctx;

static void approval_id(char *buf, size_t n, uint64_t id) {
  snprintf(buf, n, "net-%llu", (unsigned long long)id);
}

static void on_answer(void *arg, const json_t *result, const json_t *error) {
  call_ctx *c = arg;
  approvals *a = c->s->approvals;
  uint64_t id = c->id;
  free(c);
  if (!a)
    return;
  if (error) {
    const char *msg = json_string_value(json_object_get(error, "message"));
    const char *why = APPROVAL_REASON_ERROR;
    if (msg && strstr(msg, "timed out"))
      why = APPROVAL_REASON_TIMEOUT;
    else if (msg && strstr(msg, "connection closed"))
      why = APPROVAL_REASON_GONE;
    LOGI("approvals", "net-%llu: %s (%s): deny", (unsigned long long)id, why, msg ? msg : "?");
    approvals_fail(a, id, why);
    return;
  }
  const char *d = json_string_value(json_object_get(result, "decision"));
  approval_decision dec;
  if (approval_decision_parse(d, &dec) < 0) {
    LOGW("approvals", "net-%llu: unknown decision %s%s%s: deny", (unsigned long long)id,
         d ? "\"" : "", d ? d : "(none)", d ? "\"" : "");
    approvals_fail(a, id, APPROVAL_REASON_UNKNOWN);
    return;
  }
  approvals_answer(a, id, dec);
}

static const char *reason_text(const char *reason, char *buf, size_t n, const approval_key *k) {
  if (strcmp(reason, "not_allowed") == 0) {
    snprintf(buf, n, "%s is not in allowedDomains", k->host);
    return buf;
  }
  return reason;
}

static void hook_prompt(void *arg, const approval_prompt_info *p) {
  warden_server *s = arg;
  char id[32], why[320];
  approval_id(id, sizeof id, p->id);
  json_t *pids = json_array();
  for (size_t i = 0; i < p->n_process_ids; i++)
    json_array_append_new(pids, json_string(p->process_ids[i]));
  json_t *params = json_pack(
      "{s:s,s:s,s:i,s:s,s:o,s:s,s:I}", "approvalId", id, "host", p->key->host, "port",
      (int)p->key->port, "protocol", approval_proto_name(p->key->proto), "processIds", pids,
      "reason", reason_text(p->reason, why, sizeof why, p->key), "startedAtMs",
      (json_int_t)p->started_at_ms);
  call_ctx *c = malloc(sizeof *c);
  if (!params || !c || !s->rpc) {
    json_decref(params);
    free(c);
    approvals_fail(s->approvals, p->id, APPROVAL_REASON_ERROR);
    return;
  }
  c->s = s;
  c->id = p->id;
  LOGI("approvals", "%s: asking for %s %s:%u (%zu processes)", id,
       approval_proto_name(p->key->proto), p->key->host, (unsigned)p->key->port,
       p->n_process_ids);
  if (s->telemetry)
    telemetry_log_approval_request(s->telemetry, id, p->key->host, (int)p->key->port,
                                   approval_proto_name(p->key->proto), p->process_ids,
                                   p->n_process_ids, p->reason);
  uint64_t timeout = s->cfg.call_timeout_ms ? s->cfg.call_timeout_ms
                                            : APPROVALS_DEFAULT_TIMEOUT_MS;
  rpc_call(s->rpc, "approval/network", params, timeout + APPROVAL_CALL_SLACK_MS, on_answer, c);
}

static void hook_resolved(void *arg, const approval_prompt_info *p, approval_decision d,
                          size_t waiters, const char *reason) {
  warden_server *s = arg;
  char id[32];
  approval_id(id, sizeof id, p->id);
  LOGI("approvals", "%s: %s for %zu waiters%s%s", id, approval_decision_name(d), waiters,
       reason ? ": " : "", reason ? reason : "");
  if (s->telemetry)
    telemetry_log_approval_decision(s->telemetry, id, p->key->host, (int)p->key->port,
                                    approval_proto_name(p->key->proto), approval_decision_name(d),
                                    reason ? reason : "client", (unsigned)waiters);
  if (!s->rpc)
    return;
  json_t *params = json_pack("{s:s,s:s,s:I}", "approvalId", id, "decision",
                             approval_decision_name(d), "waiters", (json_int_t)waiters);
  if (reason && !approval_decision_allows(d))
    json_object_set_new(params, "reason", json_string(reason));
  rpc_notify(s->rpc, "approval/resolved", params);
}

static void warn_line(void *arg, unsigned line, const char *msg) {
  approvals_state *st = arg;
  LOGW("approvals", "%s line %u: %s", st->rules_path, line, msg);
  if (st->warnings)
    json_array_append_new(st->warnings,
                          json_sprintf("%s line %u: %s", st->rules_path, line, msg));
}

static int hook_persist(void *arg, const approval_key *k, bool allow) {
  warden_server *s = arg;
  approvals_state *st = &g_state;
  if (!st->rules_path) {
    LOGW("approvals", "no state directory: the %s rule for %s is kept for this session only",
         allow ? "allow" : "deny", k->host);
    return -ENOENT;
  }
  approval_rule r = {.key = *k, .allow = allow};
  approval_rules *merged = NULL;
  json_t *fresh = json_array();
  json_t *old = st->warnings;
  st->warnings = fresh;
  int rc = approval_rules_store(st->rules_path, &r, &merged, warn_line, st);
  if (rc < 0) {
    st->warnings = old;
    json_decref(fresh);
    LOGE("approvals", "cannot write %s: %s (the rule holds for this session only)",
         st->rules_path, strerror(-rc));
    return rc;
  }
  json_decref(old);
  /* The file as written: this rule and every other server's. */
  approvals_set_rules(s->approvals, merged);
  return 0;
}

/* ---- the rules file ---- */

static int load_rules(warden_server *s) {
  approvals_state *st = &g_state;
  json_decref(st->warnings);
  st->warnings = json_array();
  if (!st->rules_path)
    return 0;
  approval_rules *r = NULL;
  int rc = approval_rules_load(st->rules_path, &r, warn_line, st);
  if (rc < 0) {
    /* Nothing from a file that cannot be read: fail closed (no rule allows). */
    LOGW("approvals", "%s: %s; no persisted rules loaded", st->rules_path, strerror(-rc));
    json_array_append_new(st->warnings, json_sprintf("%s: %s; no persisted rules loaded",
                                                     st->rules_path, strerror(-rc)));
    approvals_set_rules(s->approvals, NULL);
    return rc;
  }
  LOGI("approvals", "%zu rules from %s", r->n, st->rules_path);
  approvals_set_rules(s->approvals, r);
  return 0;
}

void handlers_approvals_reload(warden_server *s, json_t *warnings) {
  if (!s->approvals)
    return;
  load_rules(s);
  handlers_approvals_warnings(s, warnings);
}

void handlers_approvals_warnings(warden_server *s, json_t *warnings) {
  (void)s;
  size_t i;
  json_t *w;
  if (g_state.warnings && warnings)
    json_array_foreach(g_state.warnings, i, w) json_array_append(warnings, w);
}

json_t *handlers_approvals_rules_json(warden_server *s) {
  json_t *out = json_array();
  const approval_rules *r = s->approvals ? approvals_rules(s->approvals) : NULL;
  for (size_t i = 0; r && i < r->n; i++)
    json_array_append_new(out, json_pack("{s:s,s:s,s:s,s:i}", "action",
                                         r->v[i].allow ? "allow" : "deny", "protocol",
                                         approval_proto_name(r->v[i].key.proto), "host",
                                         r->v[i].key.host, "port", (int)r->v[i].key.port));
  return out;
}

/* ---- the proxy's ask hook ---- */

static size_t bucket(const netproxy_hold *h) {
  uintptr_t x = (uintptr_t)h;
  return (size_t)((x >> 4) ^ (x >> 14)) % HELD_BUCKETS;
}

static void held_unlink(held *x) {
  held **head = &g_state.held[bucket(x->h)];
  if (x->prev)
    x->prev->next = x->next;
  else
    *head = x->next;
  if (x->next)
    x->next->prev = x->prev;
}

static void held_done(void *arg, bool allowed, const char *why) {
  held *x = arg;
  netproxy_hold *h = x->h;
  held_unlink(x);
  free(x);
  if (!allowed)
    LOGD("approvals", "held request refused: %s", why ? why : "?");
  netproxy_hold_resume(h, allowed);
}

static approval_proto proto_of(netproxy_protocol p) {
  switch (p) {
  case NETPROXY_HTTP:
    return APPROVAL_HTTP;
  case NETPROXY_HTTPS:
    return APPROVAL_HTTPS;
  case NETPROXY_SOCKS5_TCP:
    return APPROVAL_SOCKS5_TCP;
  case NETPROXY_SOCKS5_UDP:
    return APPROVAL_SOCKS5_UDP;
  }
  return APPROVAL_PROTO_COUNT; /* not a key: refused */
}

void handlers_approvals_ask(warden_server *s, netproxy_hold *h, const netproxy_event *ev) {
  if (!s->approvals) { /* warden run: nobody to ask */
    netproxy_hold_resume(h, false);
    return;
  }
  held *x = calloc(1, sizeof *x);
  if (!x) {
    netproxy_hold_resume(h, false);
    return;
  }
  x->h = h;
  approval_request r = {.host = ev->host, .proto = proto_of(ev->protocol), .port = ev->port,
                        .process_id = ev->owner, .reason = ev->reason};
  const char *why = NULL;
  int rc = approvals_request(s->approvals, &r, held_done, x, &x->w, &why);
  if (rc != APPROVAL_PENDING) {
    free(x);
    if (rc < 0)
      LOGI("approvals", "%s:%u cannot be asked for: %s", ev->host, (unsigned)ev->port,
           why ? why : strerror(-rc));
    else if (rc == APPROVAL_DENIED && (strcmp(why, APPROVAL_REASON_PROMPTS_FULL) == 0 ||
                                       strcmp(why, APPROVAL_REASON_WAITERS_FULL) == 0))
      LOGW("approvals", "%s:%u refused: %s", ev->host, (unsigned)ev->port, why);
    else if (rc == APPROVAL_DENIED)
      LOGD("approvals", "%s:%u refused without a prompt: %s", ev->host, (unsigned)ev->port, why);
    netproxy_hold_resume(h, rc == APPROVAL_ALLOWED);
    return;
  }
  held **head = &g_state.held[bucket(h)];
  x->next = *head;
  if (*head)
    (*head)->prev = x;
  *head = x;
}

void handlers_approvals_hold_closed(warden_server *s, netproxy_hold *h) {
  (void)s;
  for (held *x = g_state.held[bucket(h)]; x; x = x->next) {
    if (x->h == h) {
      held_unlink(x);
      approvals_waiter_cancel(x->w);
      free(x);
      LOGI("approvals", "a held connection closed: it left its approval group");
      return;
    }
  }
}

/* ---- the client ---- */

void handlers_approvals_client(warden_server *s, bool network_approvals) {
  if (s->approvals)
    approvals_set_enabled(s->approvals, network_approvals);
}

void handlers_approvals_client_gone(warden_server *s) {
  if (s->approvals && approvals_enabled(s->approvals)) {
    LOGI("approvals", "client gone: pending approvals are denied");
    approvals_set_enabled(s->approvals, false);
  }
}

/* ---- lifecycle ---- */

int approvals_handlers_start(warden_server *s) {
  approvals_state *st = &g_state;
  memset(st, 0, sizeof *st);
  st->s = s;
  char *dir = sandbox_state_dir(s->cfg.state_dir);
  if (dir) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, APPROVAL_RULES_FILE) < (int)sizeof path)
      st->rules_path = strdup(path);
    free(dir);
  }
  approvals_opts o = {
      .timeout_ms = s->cfg.call_timeout_ms,
      .gather_ms = UINT64_MAX,
      .hooks = {.arg = s, .prompt = hook_prompt, .resolved = hook_resolved,
                .persist = hook_persist},
  };
  int rc = approvals_new(s->loop, &o, &s->approvals);
  if (rc < 0)
    return rc;
  load_rules(s);
  return 0;
}

void approvals_handlers_free(warden_server *s) {
  if (s->approvals) {
    approvals_close(s->approvals);
    s->approvals = NULL;
  }
  free(g_state.rules_path);
  g_state.rules_path = NULL;
  json_decref(g_state.warnings);
  g_state.warnings = NULL;
}
