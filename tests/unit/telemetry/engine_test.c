/* The engine end to end on one loop: spans and records are encoded, batched
 * and POSTed by the exporter to a small HTTP collector served by the same
 * libuv loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "server/telemetry/telemetry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* ---- a collector on the loop ---- */

#define MAX_BODIES 32
typedef struct collector {
  uv_tcp_t srv;
  int port;
  int statuses[8]; /* answered in turn, then 200 */
  int nstatus, next;
  bool hang;       /* read requests, never answer */
  json_t *bodies[MAX_BODIES];
  char paths[MAX_BODIES][64];
  int codes[MAX_BODIES];
  bool gzipped[MAX_BODIES];
  int nbodies;
} collector;

typedef struct conn {
  uv_tcp_t h;
  collector *c;
  char *buf;
  size_t len, cap;
  uv_write_t w;
  char reply[256];
} conn;

static void conn_closed(uv_handle_t *h) {
  conn *k = h->data;
  free(k->buf);
  free(k);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  conn *k = h->data;
  (void)hint;
  if (k->cap - k->len < 65536) {
    k->cap = k->cap * 2 + 65536;
    k->buf = realloc(k->buf, k->cap);
  }
  *b = uv_buf_init(k->buf + k->len, (unsigned)(k->cap - k->len - 1));
}

static void written(uv_write_t *w, int status) {
  (void)status;
  conn *k = w->data;
  uv_close((uv_handle_t *)&k->h, conn_closed);
}

static json_t *gunzip_json(const char *in, size_t n) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  inflateInit2(&zs, 15 + 16);
  size_t cap = n * 20 + 1024;
  char *out = malloc(cap);
  zs.next_in = (Bytef *)in;
  zs.avail_in = (uInt)n;
  zs.next_out = (Bytef *)out;
  zs.avail_out = (uInt)cap;
  int rc = inflate(&zs, Z_FINISH);
  json_t *j = rc == Z_STREAM_END ? json_loadb(out, zs.total_out, 0, NULL) : NULL;
  inflateEnd(&zs);
  free(out);
  return j;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
  conn *k = s->data;
  (void)b;
  if (nread < 0) {
    uv_close((uv_handle_t *)s, conn_closed);
    return;
  }
  k->len += (size_t)nread;
  k->buf[k->len] = '\0';
  char *end = strstr(k->buf, "\r\n\r\n");
  if (!end)
    return;
  char *cl = strcasestr(k->buf, "content-length:");
  size_t want = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
  size_t head = (size_t)(end + 4 - k->buf);
  if (k->len < head + want)
    return;
  collector *c = k->c;
  if (c->hang)
    return;
  int code = c->next < c->nstatus ? c->statuses[c->next++] : 200;
  if (c->nbodies < MAX_BODIES) {
    int i = c->nbodies++;
    char *gz = strcasestr(k->buf, "content-encoding: gzip");
    c->gzipped[i] = gz && gz < end;
    c->bodies[i] = c->gzipped[i] ? gunzip_json(k->buf + head, want)
                                 : json_loadb(k->buf + head, want, 0, NULL);
    sscanf(k->buf, "POST %63s", c->paths[i]);
    c->codes[i] = code;
  }
  snprintf(k->reply, sizeof k->reply,
           "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n%s\r\n{}", code,
           code == 503 ? "Retry-After: 1\r\n" : "");
  uv_buf_t out = uv_buf_init(k->reply, (unsigned)strlen(k->reply));
  k->w.data = k;
  uv_read_stop(s);
  uv_write(&k->w, s, &out, 1, written);
}

static void on_conn(uv_stream_t *srv, int status) {
  collector *c = srv->data;
  if (status < 0)
    return;
  conn *k = calloc(1, sizeof *k);
  k->c = c;
  uv_tcp_init(srv->loop, &k->h);
  k->h.data = k;
  if (uv_accept(srv, (uv_stream_t *)&k->h) == 0)
    uv_read_start((uv_stream_t *)&k->h, on_alloc, on_read);
  else
    uv_close((uv_handle_t *)&k->h, conn_closed);
}

static void collector_start(uv_loop_t *loop, collector *c) {
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_init(loop, &c->srv);
  c->srv.data = c;
  assert_int_equal(uv_tcp_bind(&c->srv, (const struct sockaddr *)&a, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&c->srv, 16, on_conn), 0);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  uv_tcp_getsockname(&c->srv, (struct sockaddr *)&ss, &len);
  c->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void close_any(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, h->data && h->type == UV_TCP && h != arg ? conn_closed : NULL);
}

static void collector_stop(uv_loop_t *loop, collector *c) {
  uv_close((uv_handle_t *)&c->srv, NULL);
  uv_walk(loop, close_any, &c->srv);
  uv_run(loop, UV_RUN_DEFAULT);
  for (int i = 0; i < c->nbodies; i++)
    json_decref(c->bodies[i]);
}

/* ---- helpers ---- */

static void config_for(tele_config *tc, const collector *c, const char *json_extra) {
  tele_config_init(tc);
  char buf[1024], err[600];
  snprintf(buf, sizeof buf, "{\"endpoint\":\"http://127.0.0.1:%d\"%s%s}", c->port,
           json_extra ? "," : "", json_extra ? json_extra : "");
  json_t *o = json_loads(buf, 0, NULL);
  assert_non_null(o);
  if (tele_config_from_json(tc, o, err, sizeof err) < 0)
    fail_msg("config: %s", err);
  json_decref(o);
}

/* Run the loop until pred() holds or ms pass (a failing engine must fail the
 * test, not hang it). */
static bool g_expired;
static void on_guard(uv_timer_t *h) {
  (void)h;
  g_expired = true;
}
static bool run_until(uv_loop_t *loop, bool (*pred)(void *), void *arg, uint64_t ms) {
  uv_timer_t guard;
  uv_timer_init(loop, &guard);
  g_expired = false;
  uv_timer_start(&guard, on_guard, ms, 0);
  while (!pred(arg) && !g_expired)
    uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&guard, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return pred(arg);
}

static bool g_done;
static bool is_done(void *arg) {
  (void)arg;
  return g_done;
}
static bool two_bodies(void *arg) { return ((collector *)arg)->nbodies >= 2; }
static void on_done(void *arg) {
  (void)arg;
  g_done = true;
}

static void shutdown_and_run(uv_loop_t *loop, telemetry *t) {
  g_done = false;
  telemetry_shutdown(t, on_done, NULL);
  assert_true(run_until(loop, is_done, NULL, 10000));
}

static const char *attr_str(const json_t *obj, const char *key) {
  size_t i;
  json_t *a;
  json_array_foreach(json_object_get(obj, "attributes"), i, a) {
    if (strcmp(json_string_value(json_object_get(a, "key")), key) == 0) {
      json_t *v = json_object_get(a, "value");
      json_t *s = json_object_get(v, "stringValue");
      if (s)
        return json_string_value(s);
      s = json_object_get(v, "intValue");
      if (s)
        return json_string_value(s);
      return json_is_true(json_object_get(v, "boolValue")) ? "true" : "false";
    }
  }
  return NULL;
}

static json_t *records_of(const collector *c, int i) {
  return json_object_get(json_array_get(json_object_get(json_array_get(json_object_get(
                                                           c->bodies[i], "resourceLogs"), 0),
                                                       "scopeLogs"),
                                        0),
                         "logRecords");
}

static json_t *spans_of(const collector *c, int i) {
  return json_object_get(json_array_get(json_object_get(json_array_get(json_object_get(
                                                           c->bodies[i], "resourceSpans"), 0),
                                                       "scopeSpans"),
                                        0),
                         "spans");
}

/* ---- tests ---- */

static void test_off_is_null(void **state) {
  (void)state;
  tele_config tc;
  tele_config_init(&tc);
  telemetry *t = (telemetry *)1;
  assert_int_equal(telemetry_new(uv_default_loop(), &tc, NULL, &t), 0);
  assert_null(t);
  /* every call takes the NULL engine */
  assert_null(telemetry_span_start(NULL, "x", TELE_SPAN_SERVER, NULL, NULL, NULL));
  telemetry_span_set_str(NULL, "k", "v");
  telemetry_span_end(NULL);
  telemetry_log(NULL, "e", TELE_SEV_INFO, NULL, NULL, 0, NULL);
  tele_net_decision d = {.host = "h"};
  telemetry_log_network_decision(NULL, TELE_NET_BLOCK, &d);
  json_t *j = telemetry_stats_json(NULL);
  assert_true(json_is_false(json_object_get(j, "enabled")));
  json_decref(j);
  telemetry_shutdown(NULL, on_done, NULL);
  telemetry_free(NULL);
  tele_config_free(&tc);
}

static void test_network_and_approval_records(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  collector c = {0};
  collector_start(&loop, &c);
  tele_config tc;
  config_for(&tc, &c, "\"serviceName\":\"svc\"");
  telemetry *t;
  assert_int_equal(telemetry_new(&loop, &tc, NULL, &t), 0);
  assert_non_null(t);
  tele_net_decision d = {.timestamp = "2026-01-01T00:00:00.000Z", .host = "example.com",
                         .port = 443, .protocol = "https", .method = NULL, .decision = "deny",
                         .reason = "not_allowed", .source = "baseline_policy",
                         .process_id = "p1"};
  telemetry_log_network_decision(t, TELE_NET_DOMAIN_POLICY, &d);
  d.decision = "deny";
  d.reason = "method_not_allowed";
  d.source = "mode_guard";
  d.method = "POST";
  d.process_id = NULL;
  telemetry_log_network_decision(t, TELE_NET_BLOCK, &d);
  const char *ids[] = {"p1", "p2"};
  telemetry_log_approval_request(t, "a1", "example.com", 443, "https", ids, 2, "not_allowed");
  telemetry_log_approval_decision(t, "a1", "example.com", 443, "https", "allowOnce", "client", 2);
  tele_attr extra[] = {TELE_STR("k", "v"), TELE_INT("n", 7), TELE_BOOL("b", true)};
  telemetry_log(t, "custom.event", TELE_SEV_ERROR, "body text", extra, 3, NULL);
  shutdown_and_run(&loop, t);

  assert_int_equal(c.nbodies, 1);
  assert_string_equal(c.paths[0], "/v1/logs");
  json_t *recs = records_of(&c, 0);
  assert_int_equal(json_array_size(recs), 5);
  json_t *r = json_array_get(recs, 0);
  assert_string_equal(json_string_value(json_object_get(r, "eventName")),
                      "warden.network.domain_policy_decision");
  assert_string_equal(attr_str(r, "event.name"), "warden.network.domain_policy_decision");
  assert_string_equal(attr_str(r, "server.address"), "example.com");
  assert_string_equal(attr_str(r, "server.port"), "443");
  assert_string_equal(attr_str(r, "network.transport.protocol"), "https");
  assert_string_equal(attr_str(r, "http.request.method"), "none");
  assert_string_equal(attr_str(r, "network.policy.decision"), "deny");
  assert_string_equal(attr_str(r, "network.policy.reason"), "not_allowed");
  assert_string_equal(attr_str(r, "network.policy.source"), "baseline_policy");
  assert_string_equal(attr_str(r, "warden.process.id"), "p1");
  assert_string_equal(attr_str(r, "event.timestamp"), "2026-01-01T00:00:00.000Z");
  assert_int_equal(json_integer_value(json_object_get(r, "severityNumber")), TELE_SEV_WARN);
  r = json_array_get(recs, 1);
  assert_string_equal(json_string_value(json_object_get(r, "eventName")),
                      "warden.network.block_decision");
  assert_string_equal(attr_str(r, "http.request.method"), "POST");
  assert_string_equal(attr_str(r, "network.policy.source"), "mode_guard");
  assert_null(attr_str(r, "warden.process.id"));
  r = json_array_get(recs, 2);
  assert_string_equal(json_string_value(json_object_get(r, "eventName")),
                      "warden.approval.request");
  assert_string_equal(attr_str(r, "warden.approval.id"), "a1");
  r = json_array_get(recs, 3);
  assert_string_equal(json_string_value(json_object_get(r, "eventName")),
                      "warden.approval.decision");
  assert_string_equal(attr_str(r, "warden.approval.decision"), "allowOnce");
  assert_string_equal(attr_str(r, "warden.approval.waiters"), "2");
  r = json_array_get(recs, 4);
  assert_string_equal(json_string_value(json_object_get(json_object_get(r, "body"), "stringValue")),
                      "body text");
  assert_string_equal(attr_str(r, "n"), "7");
  assert_string_equal(attr_str(r, "b"), "true");
  /* resource */
  json_t *res = json_object_get(
      json_array_get(json_object_get(c.bodies[0], "resourceLogs"), 0), "resource");
  assert_string_equal(attr_str(res, "service.name"), "svc");
  tele_stats st;
  telemetry_stats(t, &st);
  assert_int_equal(st.logs_exported, 5);
  assert_int_equal(st.logs_dropped, 0);
  telemetry_free(t);
  tele_config_free(&tc);
  collector_stop(&loop, &c);
  uv_loop_close(&loop);
}

static void test_spans_parent_tracestate_gzip(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  collector c = {0};
  collector_start(&loop, &c);
  tele_config tc;
  config_for(&tc, &c,
             "\"compression\":\"gzip\",\"spanAttributes\":{\"team\":\"t1\"},"
             "\"tracestate\":{\"warden\":\"w1\"}");
  telemetry *t;
  assert_int_equal(telemetry_new(&loop, &tc, NULL, &t), 0);
  tele_span *req = telemetry_span_start(
      t, "process/spawn", TELE_SPAN_SERVER, NULL,
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "congo=abc");
  tele_span *proc = telemetry_span_start(t, "process", TELE_SPAN_INTERNAL, req, NULL, NULL);
  telemetry_span_set_int(proc, "process.exit.code", 3);
  telemetry_span_set_error(req, "boom");
  telemetry_span_end(req);
  telemetry_span_end(proc);
  /* not sampled by the caller: no span */
  assert_null(telemetry_span_start(t, "x", TELE_SPAN_SERVER, NULL,
                                   "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
                                   NULL));
  shutdown_and_run(&loop, t);
  assert_int_equal(c.nbodies, 1);
  assert_true(c.gzipped[0]);
  assert_string_equal(c.paths[0], "/v1/traces");
  json_t *spans = spans_of(&c, 0);
  assert_int_equal(json_array_size(spans), 2);
  json_t *a = json_array_get(spans, 0), *b = json_array_get(spans, 1);
  assert_string_equal(json_string_value(json_object_get(a, "traceId")),
                      "0af7651916cd43dd8448eb211c80319c");
  assert_string_equal(json_string_value(json_object_get(a, "parentSpanId")), "b7ad6b7169203331");
  assert_string_equal(json_string_value(json_object_get(b, "traceId")),
                      "0af7651916cd43dd8448eb211c80319c");
  assert_string_equal(json_string_value(json_object_get(b, "parentSpanId")),
                      json_string_value(json_object_get(a, "spanId")));
  assert_string_equal(json_string_value(json_object_get(a, "traceState")), "warden=w1,congo=abc");
  assert_string_equal(json_string_value(json_object_get(b, "traceState")), "warden=w1,congo=abc");
  assert_string_equal(attr_str(a, "team"), "t1");
  assert_string_equal(attr_str(b, "team"), "t1");
  assert_string_equal(attr_str(b, "process.exit.code"), "3");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(a, "status"), "code")), 2);
  assert_int_equal(json_integer_value(json_object_get(a, "kind")), 2);
  assert_int_equal(strlen(json_string_value(json_object_get(b, "spanId"))), 16);
  unsigned long long s0 = strtoull(json_string_value(json_object_get(a, "startTimeUnixNano")), NULL, 10);
  unsigned long long e0 = strtoull(json_string_value(json_object_get(a, "endTimeUnixNano")), NULL, 10);
  assert_true(e0 >= s0 && s0 > 1600000000ull * 1000000000ull);
  telemetry_free(t);
  tele_config_free(&tc);
  collector_stop(&loop, &c);
  uv_loop_close(&loop);
}

static void test_retry_503_then_200(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  collector c = {.statuses = {503}, .nstatus = 1};
  collector_start(&loop, &c);
  tele_config tc;
  config_for(&tc, &c, "\"batchDelayMs\":1");
  telemetry *t;
  assert_int_equal(telemetry_new(&loop, &tc, NULL, &t), 0);
  tele_attr a[] = {TELE_STR("k", "v")};
  telemetry_log(t, "e1", TELE_SEV_INFO, NULL, a, 1, NULL);
  telemetry_log(t, "e2", TELE_SEV_INFO, NULL, a, 1, NULL);
  /* run until the second answer (Retry-After: 1 s) */
  assert_true(run_until(&loop, two_bodies, &c, 10000));
  assert_int_equal(c.codes[0], 503);
  assert_int_equal(c.codes[1], 200);
  assert_true(json_equal(c.bodies[0], c.bodies[1])); /* the same batch, sent again */
  assert_int_equal(json_array_size(records_of(&c, 1)), 2);
  while (uv_run(&loop, UV_RUN_NOWAIT)) {
    tele_stats st;
    telemetry_stats(t, &st);
    if (st.logs_exported == 2)
      break;
  }
  tele_stats st;
  telemetry_stats(t, &st);
  assert_int_equal(st.logs_exported, 2);
  assert_int_equal(st.retries, 1);
  assert_int_equal(st.export_failures, 0);
  assert_int_equal(st.queued_bytes, 0);
  shutdown_and_run(&loop, t);
  assert_int_equal(c.nbodies, 2); /* nothing sent twice after the 200 */
  telemetry_free(t);
  tele_config_free(&tc);
  collector_stop(&loop, &c);
  uv_loop_close(&loop);
}

static void test_gzip_refused_then_plain(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  collector c = {.statuses = {415}, .nstatus = 1};
  collector_start(&loop, &c);
  tele_config tc;
  config_for(&tc, &c, "\"compression\":\"gzip\",\"batchDelayMs\":1");
  telemetry *t;
  assert_int_equal(telemetry_new(&loop, &tc, NULL, &t), 0);
  telemetry_log(t, "e1", TELE_SEV_INFO, NULL, NULL, 0, NULL);
  assert_true(run_until(&loop, two_bodies, &c, 10000));
  assert_true(c.gzipped[0]);
  assert_int_equal(c.codes[0], 415);
  assert_false(c.gzipped[1]); /* the same batch, plain */
  assert_int_equal(c.codes[1], 200);
  assert_true(json_equal(c.bodies[0], c.bodies[1]));
  telemetry_log(t, "e2", TELE_SEV_INFO, NULL, NULL, 0, NULL);
  shutdown_and_run(&loop, t);
  assert_int_equal(c.nbodies, 3);
  assert_false(c.gzipped[2]); /* and plain from then on */
  tele_stats st;
  telemetry_stats(t, &st);
  assert_int_equal(st.logs_exported, 2);
  assert_int_equal(st.export_failures, 0);
  telemetry_free(t);
  tele_config_free(&tc);
  collector_stop(&loop, &c);
  uv_loop_close(&loop);
}

static void test_bound_with_hanging_collector(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  collector c = {.hang = true};
  collector_start(&loop, &c);
  tele_config tc;
  config_for(&tc, &c, "\"maxQueueBytes\":8192,\"batchDelayMs\":1,\"timeoutMs\":300");
  telemetry *t;
  assert_int_equal(telemetry_new(&loop, &tc, NULL, &t), 0);
  tele_attr a[] = {TELE_STR("payload", "0123456789012345678901234567890123456789")};
  for (int i = 0; i < 2000; i++) {
    telemetry_log(t, "e", TELE_SEV_INFO, NULL, a, 1, NULL);
    if (i % 100 == 0)
      uv_run(&loop, UV_RUN_NOWAIT);
    tele_stats st;
    telemetry_stats(t, &st);
    assert_true(st.queued_bytes <= 8192);
  }
  tele_stats st;
  telemetry_stats(t, &st);
  assert_true(st.logs_dropped > 1000);
  assert_int_equal(st.logs_exported, 0);
  json_t *j = telemetry_stats_json(t);
  assert_int_equal(json_integer_value(json_object_get(j, "logRecordsDropped")),
                   (json_int_t)st.logs_dropped);
  json_decref(j);
  shutdown_and_run(&loop, t); /* gives up after min(timeout, 2 s) */
  telemetry_stats(t, &st);
  assert_int_equal(st.queued_bytes, 0);
  assert_int_equal(st.logs_exported, 0);
  assert_int_equal(st.logs_dropped, 2000); /* every record is counted, none lost silently */
  telemetry_free(t);
  tele_config_free(&tc);
  collector_stop(&loop, &c);
  uv_loop_close(&loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_off_is_null),
      cmocka_unit_test(test_network_and_approval_records),
      cmocka_unit_test(test_spans_parent_tracestate_gzip),
      cmocka_unit_test(test_retry_503_then_200),
      cmocka_unit_test(test_gzip_refused_then_plain),
      cmocka_unit_test(test_bound_with_hanging_collector),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
