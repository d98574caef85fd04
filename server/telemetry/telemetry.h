/* telemetry: audit events and OpenTelemetry export (OTLP/HTTP, JSON encoding).
 *
 * Spans and log records are encoded to OTLP JSON when they end, queued, and
 * sent in batches (by count, bytes and age) to /v1/traces and /v1/logs through
 * libcurl's multi interface driven by the caller's libuv loop (uv_poll per
 * socket, one uv_timer): nothing here ever blocks the loop. Batches are
 * gzipped when configured (`compression: gzip`, OTEL_EXPORTER_OTLP_COMPRESSION;
 * a 415 answer turns it off),
 * retried with backoff on 429/502/503/504 and transport errors (Retry-After is
 * honoured), and memory is bounded: past `maxQueueBytes` new events are
 * dropped and counted (telemetry_stats, and the on_log callback).
 *
 * Telemetry off is a NULL engine: every function here accepts t == NULL or a
 * NULL span and does nothing, without allocating.
 *
 * Files: config.c (config object and OTEL_* environment), ids.c (trace and
 * span ids, traceparent, tracestate), otlp.c (JSON encoding, gzip),
 * export.c (queues and curl on uv), telemetry.c (spans, records, helpers).
 *
 * Ownership: telemetry_new copies what it needs from the config. A span
 * belongs to whoever started it until telemetry_span_end, which frees it.
 * Strings passed in are copied.
 */
#ifndef WARDEN_TELEMETRY_H
#define WARDEN_TELEMETRY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* ---- limits and defaults (named, like every limit) ---- */
#define TELE_DEFAULT_TIMEOUT_MS 10000          /* OTEL_EXPORTER_OTLP_TIMEOUT default */
#define TELE_DEFAULT_MAX_QUEUE_BYTES (4u << 20) /* queued + in flight, both signals */
#define TELE_DEFAULT_BATCH_DELAY_MS 1000       /* oldest event waits at most this */
#define TELE_DEFAULT_BATCH_MAX_EVENTS 512      /* a batch is sent when this many wait */
#define TELE_BATCH_MAX_BYTES (1u << 20)        /* ... or this many encoded bytes */
#define TELE_MAX_ATTEMPTS 6                    /* sends of one batch before it is dropped */
#define TELE_BACKOFF_INITIAL_MS 500
#define TELE_BACKOFF_MAX_MS 30000
#define TELE_RETRY_AFTER_MAX_MS 60000          /* a longer Retry-After is capped */
#define TELE_SHUTDOWN_FLUSH_MAX_MS 2000        /* final flush at exit, at most */
#define TELE_TRACESTATE_MAX_MEMBERS 32         /* W3C */
#define TELE_TRACESTATE_MAX_LEN 512            /* W3C: at least this much must be propagated */
#define TELE_MAX_HEADERS 64
#define TELE_MAX_ATTRIBUTES 128                /* resource or static span attributes */
#define TELE_MAX_STRING 4096                   /* longest configured value */

/* ---- config ---- */

typedef struct tele_kv {
  char *key;
  char *value;
} tele_kv;

typedef struct tele_config {
  char *traces_url; /* NULL: no traces */
  char *logs_url;   /* NULL: no log records */
  tele_kv headers[TELE_MAX_HEADERS];
  size_t n_headers;
  uint64_t timeout_ms;
  bool gzip;
  char *service_name;
  json_t *resource_attrs; /* object: key -> string | integer | real | boolean */
  json_t *span_attrs;     /* object: added to every span */
  tele_kv tracestate[TELE_TRACESTATE_MAX_MEMBERS]; /* upserted, in this order (first = leftmost) */
  size_t n_tracestate;
  size_t max_queue_bytes;
  uint64_t batch_delay_ms;
  size_t batch_max_events;
} tele_config;

void tele_config_init(tele_config *c);
void tele_config_free(tele_config *c);
/* The standard environment: OTEL_EXPORTER_OTLP_{ENDPOINT,TRACES_ENDPOINT,
 * LOGS_ENDPOINT,HEADERS,TIMEOUT,COMPRESSION}, OTEL_SERVICE_NAME,
 * OTEL_RESOURCE_ATTRIBUTES. getenv_fn NULL: getenv. 0, or -EINVAL with a
 * message in err naming the variable and what was wrong. */
int tele_config_from_env(tele_config *c, const char *(*getenv_fn)(const char *), char *err,
                         size_t errlen);
/* The config file's `telemetry` object, over whatever the environment set.
 * Keys: endpoint, tracesEndpoint, logsEndpoint, headers {}, timeoutMs,
 * compression ("gzip"|"none"), serviceName, resourceAttributes {},
 * spanAttributes {}, tracestate {}, maxQueueBytes, batchDelayMs,
 * batchMaxEvents, enabled (false turns it off). 0 or -EINVAL, err names the key. */
int tele_config_from_json(tele_config *c, const json_t *obj, char *err, size_t errlen);
bool tele_config_enabled(const tele_config *c);

/* Validation (exposed for tests): 0, or -EINVAL with a reason in err. */
int tele_tracestate_key_check(const char *key, char *err, size_t errlen);
int tele_tracestate_value_check(const char *value, char *err, size_t errlen);
int tele_header_check(const char *name, const char *value, char *err, size_t errlen);

/* ---- ids and W3C trace context ---- */

typedef struct tele_ctx {
  uint8_t trace_id[16];
  uint8_t span_id[8];
  uint8_t flags;    /* bit 0: sampled */
  bool valid;
} tele_ctx;

/* "00-<32 hex>-<16 hex>-<2 hex>" (version 00, or a higher version with the
 * same prefix). 0, or -EINVAL: invalid input is ignored by callers (W3C: start
 * a new trace). */
int tele_traceparent_parse(const char *s, tele_ctx *out);
/* buf: at least 56 bytes. */
void tele_traceparent_format(const tele_ctx *c, char *buf);
/* Upsert the configured members into an incoming tracestate (may be NULL):
 * configured keys go first in their order, incoming members with other keys
 * follow, the whole capped at 32 members. Malformed incoming members are
 * dropped. Returns a malloc'd string ("" when empty), or NULL on ENOMEM. */
char *tele_tracestate_merge(const char *incoming, const tele_kv *members, size_t n);
void tele_random_bytes(uint8_t *buf, size_t n);
void tele_hex(const uint8_t *in, size_t n, char *out); /* writes 2n chars and NUL */

/* ---- the engine ---- */

typedef struct telemetry telemetry;
typedef struct tele_span tele_span;

typedef enum tele_level { TELE_LOG_ERROR = 0, TELE_LOG_WARN, TELE_LOG_INFO } tele_level;

typedef struct tele_opts {
  const char *scope_version; /* instrumentation scope version (warden's version) */
  /* Messages for warden's own log: drops, export failures (may be NULL). */
  void (*on_log)(void *arg, tele_level level, const char *msg);
  void *arg;
} tele_opts;

/* NULL *out (and 0) when cfg is not enabled: no curl, no allocation. */
int telemetry_new(uv_loop_t *loop, const tele_config *cfg, const tele_opts *opts,
                  telemetry **out);
/* Send what is queued (ignoring the batch delay) and call done once both
 * queues are empty and nothing is in flight, or after
 * min(timeout, TELE_SHUTDOWN_FLUSH_MAX_MS); then every handle is closed and
 * events recorded later are dropped. done may run before this returns. */
void telemetry_shutdown(telemetry *t, void (*done)(void *arg), void *arg);
/* Frees everything; call after telemetry_shutdown's done, or once the loop
 * has stopped (a NULL t is fine). */
void telemetry_free(telemetry *t);

typedef struct tele_stats {
  uint64_t spans_exported, logs_exported;
  uint64_t spans_dropped, logs_dropped; /* queue full, retries exhausted or shutdown */
  uint64_t export_failures;             /* batches given up on */
  uint64_t retries;
  size_t queued_bytes;                  /* queued plus in flight */
} tele_stats;
void telemetry_stats(const telemetry *t, tele_stats *out);
/* {"enabled":bool, "spansExported":n, ...} for status answers. */
json_t *telemetry_stats_json(const telemetry *t);

/* ---- spans ---- */

typedef enum tele_span_kind {
  TELE_SPAN_INTERNAL = 1,
  TELE_SPAN_SERVER = 2,
} tele_span_kind;

/* A new span. The parent is `parent` if given, else the W3C `traceparent`
 * string (may be NULL; invalid is ignored) with its `tracestate`, else a new
 * trace. Returns NULL when t is NULL, the parent is not sampled, or on ENOMEM. */
tele_span *telemetry_span_start(telemetry *t, const char *name, tele_span_kind kind,
                                const tele_span *parent, const char *traceparent,
                                const char *tracestate);
void telemetry_span_set_str(tele_span *s, const char *key, const char *value);
void telemetry_span_set_int(tele_span *s, const char *key, long long value);
void telemetry_span_set_bool(tele_span *s, const char *key, bool value);
/* Status ERROR with a message (ERROR is final; never set means UNSET). */
void telemetry_span_set_error(tele_span *s, const char *message);
/* Move the start back to when something really began (ns since the epoch). */
uint64_t telemetry_span_start_ns(const tele_span *s);
void telemetry_span_set_start_ns(tele_span *s, uint64_t start_ns);
/* The span's context, for parent links and propagation. */
tele_ctx telemetry_span_ctx(const tele_span *s);
/* The span's W3C tracestate (borrowed; NULL or "" when empty). */
const char *telemetry_span_tracestate(const tele_span *s);
/* Ends, encodes and queues the span; frees it. */
void telemetry_span_end(tele_span *s);

/* ---- log records ---- */

typedef enum tele_attr_type { TA_STR = 0, TA_INT, TA_BOOL } tele_attr_type;
typedef struct tele_attr {
  const char *key;
  tele_attr_type type;
  const char *s; /* TA_STR; NULL: the attribute is left out */
  long long i;   /* TA_INT, TA_BOOL */
} tele_attr;
#define TELE_STR(k, v) ((tele_attr){.key = (k), .type = TA_STR, .s = (v)})
#define TELE_INT(k, v) ((tele_attr){.key = (k), .type = TA_INT, .i = (long long)(v)})
#define TELE_BOOL(k, v) ((tele_attr){.key = (k), .type = TA_BOOL, .i = (v) ? 1 : 0})

typedef enum tele_severity {
  TELE_SEV_INFO = 9,
  TELE_SEV_WARN = 13,
  TELE_SEV_ERROR = 17,
} tele_severity;

/* One log record named event_name (OTLP eventName and the event.name
 * attribute), with body and attributes; linked to span's trace when given. */
void telemetry_log(telemetry *t, const char *event_name, tele_severity sev, const char *body,
                   const tele_attr *attrs, size_t n_attrs, const tele_span *span);

/* The egress proxy's decisions: the NetworkDecision fields. */
typedef enum tele_net_kind {
  TELE_NET_DOMAIN_POLICY = 0, /* warden.network.domain_policy_decision: a domain rule decided */
  TELE_NET_BLOCK,             /* warden.network.block_decision: blocked before domain policy */
} tele_net_kind;
typedef struct tele_net_decision {
  const char *timestamp; /* RFC 3339 UTC with milliseconds */
  const char *host;
  int port;
  const char *protocol;  /* http | https | socks5Tcp | socks5Udp */
  const char *method;    /* NULL: "none" */
  const char *decision;  /* allow | deny | ask */
  const char *reason;
  const char *source;
  const char *process_id; /* NULL: unknown */
} tele_net_decision;
void telemetry_log_network_decision(telemetry *t, tele_net_kind kind, const tele_net_decision *d);

/* Approval prompts (warden.approval.request) and their answers
 * (warden.approval.decision). */
void telemetry_log_approval_request(telemetry *t, const char *approval_id, const char *host,
                                    int port, const char *protocol, const char *const *process_ids,
                                    size_t n_process_ids, const char *reason);
void telemetry_log_approval_decision(telemetry *t, const char *approval_id, const char *host,
                                     int port, const char *protocol, const char *decision,
                                     const char *source, unsigned waiters);

#endif
