/* Internals shared by the telemetry engine's files (not for other modules). */
#ifndef WARDEN_TELE_INT_H
#define WARDEN_TELE_INT_H

#include "server/telemetry/telemetry.h"

#include "server/telemetry/curl_dl.h"

#define TELE_DROP_LOG_INTERVAL_MS 10000 /* drops are reported at most this often */
#define TELE_RESPONSE_MAX_BYTES 65536    /* a collector's answer is read and discarded */

/* One encoded span or log record waiting in a queue. */
typedef struct tele_item {
  struct tele_item *next;
  size_t len;
  char data[];
} tele_item;

enum { TELE_Q_TRACES = 0, TELE_Q_LOGS = 1, TELE_NQ = 2 };

typedef enum tele_qstate {
  TQ_IDLE = 0, /* nothing waits, or events wait without a timer (shutdown) */
  TQ_WAIT,     /* events wait for the batch delay */
  TQ_SENDING,  /* a batch is in flight */
  TQ_BACKOFF,  /* a batch waits to be sent again */
} tele_qstate;

typedef struct tele_queue {
  struct telemetry *t;
  int which; /* TELE_Q_TRACES or TELE_Q_LOGS */
  char *url; /* NULL: this signal is off */
  tele_item *head, **tail;
  size_t count, bytes;
  tele_qstate state;
  uv_timer_t timer; /* batch delay, then backoff */
  /* the batch in flight (or backing off) */
  char *body;
  size_t body_len;
  char *plain; /* the body before gzip, kept in case the collector refuses gzip (415) */
  size_t plain_len;
  bool gzipped;
  size_t batch_count, batch_bytes;
  unsigned attempt;
  CURL *easy;
  size_t response_bytes;
  uint64_t exported, dropped;
} tele_queue;

typedef struct tele_sock {
  uv_poll_t poll;
  struct telemetry *t;
  curl_socket_t fd;
} tele_sock;

struct telemetry {
  uv_loop_t *loop;
  tele_opts opts;
  /* what spans and records need from the config */
  json_t *span_attrs;    /* OTLP attribute array, added to every span */
  tele_kv *tracestate;
  size_t n_tracestate;
  char *batch_head[TELE_NQ]; /* {"resourceSpans":[{"resource":...,"scopeSpans":[{"scope":...,"spans":[ */
  size_t max_queue_bytes, batch_max_events;
  uint64_t batch_delay_ms, timeout_ms;
  bool gzip;
  /* export */
  bool curl_inited; /* libcurl loaded and curl_global_init done */
  CURLM *multi;
  struct curl_slist *headers; /* "Content-Encoding: gzip" first: ->next for plain bodies */
  uv_timer_t curl_timer;
  unsigned open_handles;
  tele_queue q[TELE_NQ];
  size_t total_bytes; /* queued plus in flight, both queues */
  uint64_t export_failures, retries;
  uint64_t last_drop_log_ms, drops_at_last_log;
  /* shutdown */
  bool shutting_down, closed;
  uv_timer_t shutdown_timer;
  void (*done)(void *);
  void *done_arg;
};

/* otlp.c */
json_t *tele_attr_value(const json_t *v); /* a JSON scalar as an OTLP AnyValue */
void tele_attrs_append(json_t *attrs, const char *key, json_t *any_value); /* steals any_value */
char *tele_batch_head(int which, const char *resource_json, const char *scope_json);
extern const char *const tele_batch_tail; /* "]}]}]}" */
json_t *tele_resource_json(const char *service_name, const json_t *attrs);
int tele_gzip(const char *in, size_t n, char **out, size_t *out_len);
uint64_t tele_now_ns(void);
uint64_t tele_mono_ns(void);

/* export.c */
int tele_export_start(struct telemetry *t, const tele_config *cfg);
/* Queue one encoded event (copied); drops and counts past the memory bound. */
void tele_enqueue(struct telemetry *t, int which, const char *data, size_t len);
void tele_export_shutdown(struct telemetry *t);
void tele_export_free(struct telemetry *t);
void tele_note(struct telemetry *t, tele_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
