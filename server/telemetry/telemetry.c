/* The engine's front: spans, log records and the audit helpers. Each span
 * or record is encoded to OTLP JSON once, when it ends, and queued
 * (export.c). */
#include "server/telemetry/tele_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TELE_SPAN_NAME_MAX 128

struct tele_span {
  telemetry *t;
  char name[TELE_SPAN_NAME_MAX];
  tele_span_kind kind;
  tele_ctx ctx;
  uint8_t parent_id[8];
  bool has_parent;
  char *tracestate;
  uint64_t start_ns;
  uint64_t anchor_real_ns, anchor_mono_ns; /* end = anchor_real + monotonic elapsed */
  json_t *attrs;                           /* OTLP attribute array */
  bool error;
  char *status_message;
};

int telemetry_new(uv_loop_t *loop, const tele_config *cfg, const tele_opts *opts,
                  telemetry **out) {
  *out = NULL;
  if (!tele_config_enabled(cfg))
    return 0;
  telemetry *t = calloc(1, sizeof *t);
  if (!t)
    return -ENOMEM;
  t->loop = loop;
  if (opts)
    t->opts = *opts;
  t->max_queue_bytes = cfg->max_queue_bytes;
  t->batch_max_events = cfg->batch_max_events ? cfg->batch_max_events : 1;
  t->batch_delay_ms = cfg->batch_delay_ms;
  t->timeout_ms = cfg->timeout_ms;
  t->gzip = cfg->gzip;
  t->span_attrs = json_array();
  const char *k;
  json_t *v;
  json_object_foreach(cfg->span_attrs, k, v) tele_attrs_append(t->span_attrs, k,
                                                               tele_attr_value(v));
  if (cfg->n_tracestate) {
    t->tracestate = calloc(cfg->n_tracestate, sizeof *t->tracestate);
    if (!t->tracestate) {
      telemetry_free(t);
      return -ENOMEM;
    }
    for (size_t i = 0; i < cfg->n_tracestate; i++) {
      t->tracestate[i].key = strdup(cfg->tracestate[i].key);
      t->tracestate[i].value = strdup(cfg->tracestate[i].value);
    }
    t->n_tracestate = cfg->n_tracestate;
  }
  json_t *res = tele_resource_json(cfg->service_name, cfg->resource_attrs);
  json_t *scope = json_pack("{s:s,s:s}", "name", "warden", "version",
                            opts && opts->scope_version ? opts->scope_version : "");
  char *rs = json_dumps(res, JSON_COMPACT), *ss = json_dumps(scope, JSON_COMPACT);
  json_decref(res);
  json_decref(scope);
  for (int i = 0; rs && ss && i < TELE_NQ; i++)
    t->batch_head[i] = tele_batch_head(i, rs, ss);
  free(rs);
  free(ss);
  if (!t->batch_head[0] || !t->batch_head[1]) {
    telemetry_free(t);
    return -ENOMEM;
  }
  int rc = tele_export_start(t, cfg);
  if (rc < 0) {
    /* handles may be open: leave it to telemetry_shutdown's path */
    telemetry_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

void telemetry_shutdown(telemetry *t, void (*done)(void *arg), void *arg) {
  if (!t || t->shutting_down) {
    if (done)
      done(arg);
    return;
  }
  t->done = done;
  t->done_arg = arg;
  tele_export_shutdown(t);
}

void telemetry_free(telemetry *t) {
  if (!t)
    return;
  tele_export_free(t);
  json_decref(t->span_attrs);
  for (size_t i = 0; i < t->n_tracestate; i++) {
    free(t->tracestate[i].key);
    free(t->tracestate[i].value);
  }
  free(t->tracestate);
  for (int i = 0; i < TELE_NQ; i++)
    free(t->batch_head[i]);
  free(t);
}

void telemetry_stats(const telemetry *t, tele_stats *o) {
  memset(o, 0, sizeof *o);
  if (!t)
    return;
  o->spans_exported = t->q[TELE_Q_TRACES].exported;
  o->logs_exported = t->q[TELE_Q_LOGS].exported;
  o->spans_dropped = t->q[TELE_Q_TRACES].dropped;
  o->logs_dropped = t->q[TELE_Q_LOGS].dropped;
  o->export_failures = t->export_failures;
  o->retries = t->retries;
  o->queued_bytes = t->total_bytes;
}

json_t *telemetry_stats_json(const telemetry *t) {
  tele_stats s;
  telemetry_stats(t, &s);
  return json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "enabled", t != NULL, "spansExported",
                   (json_int_t)s.spans_exported, "logRecordsExported", (json_int_t)s.logs_exported,
                   "spansDropped", (json_int_t)s.spans_dropped, "logRecordsDropped",
                   (json_int_t)s.logs_dropped, "exportFailures", (json_int_t)s.export_failures,
                   "retries", (json_int_t)s.retries, "queuedBytes", (json_int_t)s.queued_bytes);
}

/* ---- spans ---- */

tele_span *telemetry_span_start(telemetry *t, const char *name, tele_span_kind kind,
                                const tele_span *parent, const char *traceparent,
                                const char *tracestate) {
  if (!t || !t->q[TELE_Q_TRACES].url || t->closed)
    return NULL;
  tele_ctx remote;
  const char *incoming_state = NULL;
  if (parent) {
    remote = parent->ctx;
    incoming_state = parent->tracestate;
  } else if (traceparent && tele_traceparent_parse(traceparent, &remote) == 0) {
    if (!(remote.flags & 1))
      return NULL; /* the caller did not sample this trace: neither do we */
    incoming_state = tracestate;
  } else {
    remote.valid = false;
  }
  tele_span *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->t = t;
  snprintf(s->name, sizeof s->name, "%s", name);
  s->kind = kind;
  if (remote.valid) {
    memcpy(s->ctx.trace_id, remote.trace_id, 16);
    memcpy(s->parent_id, remote.span_id, 8);
    s->has_parent = true;
  } else {
    tele_random_bytes(s->ctx.trace_id, 16);
  }
  tele_random_bytes(s->ctx.span_id, 8);
  s->ctx.flags = 1;
  s->ctx.valid = true;
  /* Spans from a parent inherit its state as is; a remote state gets the
   * configured members upserted (a new trace: just those). */
  s->tracestate = parent ? (parent->tracestate ? strdup(parent->tracestate) : NULL)
                         : (incoming_state || t->n_tracestate
                                ? tele_tracestate_merge(incoming_state, t->tracestate,
                                                        t->n_tracestate)
                                : NULL);
  s->anchor_real_ns = s->start_ns = tele_now_ns();
  s->anchor_mono_ns = tele_mono_ns();
  s->attrs = json_array();
  return s;
}

void telemetry_span_set_str(tele_span *s, const char *key, const char *value) {
  if (s && value)
    tele_attrs_append(s->attrs, key, json_pack("{s:s}", "stringValue", value));
}

void telemetry_span_set_int(tele_span *s, const char *key, long long value) {
  if (!s)
    return;
  char num[32];
  snprintf(num, sizeof num, "%lld", value);
  tele_attrs_append(s->attrs, key, json_pack("{s:s}", "intValue", num));
}

void telemetry_span_set_bool(tele_span *s, const char *key, bool value) {
  if (s)
    tele_attrs_append(s->attrs, key, json_pack("{s:b}", "boolValue", value));
}

void telemetry_span_set_error(tele_span *s, const char *message) {
  if (!s)
    return;
  s->error = true;
  free(s->status_message);
  s->status_message = message ? strdup(message) : NULL;
}

uint64_t telemetry_span_start_ns(const tele_span *s) { return s ? s->start_ns : 0; }
void telemetry_span_set_start_ns(tele_span *s, uint64_t ns) {
  if (s)
    s->start_ns = ns;
}

tele_ctx telemetry_span_ctx(const tele_span *s) {
  tele_ctx c;
  memset(&c, 0, sizeof c);
  if (s)
    c = s->ctx;
  return c;
}

const char *telemetry_span_tracestate(const tele_span *s) { return s ? s->tracestate : NULL; }

static json_t *ns_string(uint64_t ns) {
  char b[32];
  snprintf(b, sizeof b, "%llu", (unsigned long long)ns);
  return json_string(b);
}

static void queue_json(telemetry *t, int which, json_t *o) {
  char *enc = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  if (!enc) {
    t->q[which].dropped++;
    return;
  }
  tele_enqueue(t, which, enc, strlen(enc));
  free(enc);
}

void telemetry_span_end(tele_span *s) {
  if (!s)
    return;
  telemetry *t = s->t;
  uint64_t end = s->anchor_real_ns + (tele_mono_ns() - s->anchor_mono_ns);
  if (end < s->start_ns)
    end = s->start_ns;
  char tid[33], sid[17], pid[17];
  tele_hex(s->ctx.trace_id, 16, tid);
  tele_hex(s->ctx.span_id, 8, sid);
  size_t i;
  json_t *a;
  json_array_foreach(t->span_attrs, i, a) json_array_append(s->attrs, a);
  json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:o,s:o,s:o}", "traceId", tid, "spanId", sid, "name",
                        s->name, "kind", (int)s->kind, "startTimeUnixNano", ns_string(s->start_ns),
                        "endTimeUnixNano", ns_string(end), "attributes", s->attrs);
  s->attrs = NULL;
  if (s->has_parent) {
    tele_hex(s->parent_id, 8, pid);
    json_object_set_new(o, "parentSpanId", json_string(pid));
  }
  if (s->tracestate && *s->tracestate)
    json_object_set_new(o, "traceState", json_string(s->tracestate));
  json_object_set_new(o, "flags", json_integer(s->ctx.flags));
  /* Status: 2 = ERROR; UNSET (0) is left out. */
  if (s->error)
    json_object_set_new(o, "status", json_pack("{s:i,s:s}", "code", 2, "message",
                                               s->status_message ? s->status_message : ""));
  if (o)
    queue_json(t, TELE_Q_TRACES, o);
  free(s->tracestate);
  free(s->status_message);
  json_decref(s->attrs);
  free(s);
}

/* ---- log records ---- */

static const char *severity_text(tele_severity sev) {
  return sev >= TELE_SEV_ERROR ? "ERROR" : sev >= TELE_SEV_WARN ? "WARN" : "INFO";
}

static void log_record(telemetry *t, const char *event_name, tele_severity sev, const char *body,
                       json_t *attrs, const tele_span *span) {
  uint64_t now = tele_now_ns();
  json_t *rec = json_pack("{s:o,s:o,s:i,s:s,s:s}", "timeUnixNano", ns_string(now),
                          "observedTimeUnixNano", ns_string(now), "severityNumber", (int)sev,
                          "severityText", severity_text(sev), "eventName", event_name);
  if (!rec) {
    json_decref(attrs);
    return;
  }
  if (body)
    json_object_set_new(rec, "body", json_pack("{s:s}", "stringValue", body));
  /* event.name as an attribute too, for collectors older than eventName. */
  json_t *all = json_array();
  tele_attrs_append(all, "event.name", json_pack("{s:s}", "stringValue", event_name));
  json_array_extend(all, attrs);
  json_decref(attrs);
  json_object_set_new(rec, "attributes", all);
  if (span) {
    char tid[33], sid[17];
    tele_hex(span->ctx.trace_id, 16, tid);
    tele_hex(span->ctx.span_id, 8, sid);
    json_object_set_new(rec, "traceId", json_string(tid));
    json_object_set_new(rec, "spanId", json_string(sid));
    json_object_set_new(rec, "flags", json_integer(span->ctx.flags));
  }
  queue_json(t, TELE_Q_LOGS, rec);
}

static bool logs_on(const telemetry *t) { return t && t->q[TELE_Q_LOGS].url && !t->closed; }

static json_t *build_attrs(const tele_attr *attrs, size_t n_attrs) {
  json_t *a = json_array();
  char num[32];
  for (size_t i = 0; i < n_attrs; i++) {
    const tele_attr *x = &attrs[i];
    switch (x->type) {
    case TA_STR:
      if (x->s)
        tele_attrs_append(a, x->key, json_pack("{s:s}", "stringValue", x->s));
      break;
    case TA_INT:
      snprintf(num, sizeof num, "%lld", x->i);
      tele_attrs_append(a, x->key, json_pack("{s:s}", "intValue", num));
      break;
    case TA_BOOL: tele_attrs_append(a, x->key, json_pack("{s:b}", "boolValue", x->i != 0)); break;
    }
  }
  return a;
}

void telemetry_log(telemetry *t, const char *event_name, tele_severity sev, const char *body,
                   const tele_attr *attrs, size_t n_attrs, const tele_span *span) {
  if (!logs_on(t))
    return;
  log_record(t, event_name, sev, body, build_attrs(attrs, n_attrs), span);
}

void telemetry_log_network_decision(telemetry *t, tele_net_kind kind, const tele_net_decision *d) {
  if (!logs_on(t) || !d)
    return;
  const char *name = kind == TELE_NET_BLOCK ? "warden.network.block_decision"
                                            : "warden.network.domain_policy_decision";
  tele_attr a[] = {
      TELE_STR("event.timestamp", d->timestamp),
      TELE_STR("server.address", d->host),
      TELE_INT("server.port", d->port),
      TELE_STR("network.transport.protocol", d->protocol),
      TELE_STR("http.request.method", d->method ? d->method : "none"),
      TELE_STR("network.policy.decision", d->decision),
      TELE_STR("network.policy.reason", d->reason),
      TELE_STR("network.policy.source", d->source),
      TELE_STR("network.policy.scope", kind == TELE_NET_BLOCK ? "non_domain" : "domain"),
      TELE_STR("warden.process.id", d->process_id),
  };
  bool deny = d->decision && strcmp(d->decision, "allow") != 0;
  telemetry_log(t, name, deny ? TELE_SEV_WARN : TELE_SEV_INFO, NULL, a, sizeof a / sizeof a[0],
                NULL);
}

void telemetry_log_approval_request(telemetry *t, const char *approval_id, const char *host,
                                    int port, const char *protocol, const char *const *process_ids,
                                    size_t n_process_ids, const char *reason) {
  if (!logs_on(t))
    return;
  tele_attr a[] = {
      TELE_STR("warden.approval.id", approval_id),
      TELE_STR("server.address", host),
      TELE_INT("server.port", port),
      TELE_STR("network.transport.protocol", protocol),
      TELE_STR("network.policy.reason", reason),
  };
  json_t *attrs = build_attrs(a, sizeof a / sizeof a[0]);
  json_t *ids = json_array();
  for (size_t i = 0; i < n_process_ids; i++)
    if (process_ids[i])
      json_array_append_new(ids, json_pack("{s:s}", "stringValue", process_ids[i]));
  tele_attrs_append(attrs, "warden.process.ids", json_pack("{s:{s:o}}", "arrayValue", "values", ids));
  log_record(t, "warden.approval.request", TELE_SEV_INFO, NULL, attrs, NULL);
}

void telemetry_log_approval_decision(telemetry *t, const char *approval_id, const char *host,
                                     int port, const char *protocol, const char *decision,
                                     const char *source, unsigned waiters) {
  if (!logs_on(t))
    return;
  tele_attr a[] = {
      TELE_STR("warden.approval.id", approval_id),
      TELE_STR("server.address", host),
      TELE_INT("server.port", port),
      TELE_STR("network.transport.protocol", protocol),
      TELE_STR("warden.approval.decision", decision),
      TELE_STR("warden.approval.source", source),
      TELE_INT("warden.approval.waiters", waiters),
  };
  bool deny = decision && strncmp(decision, "deny", 4) == 0;
  telemetry_log(t, "warden.approval.decision", deny ? TELE_SEV_WARN : TELE_SEV_INFO, NULL, a,
                sizeof a / sizeof a[0], NULL);
}
