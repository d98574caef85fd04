#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "server/telemetry/telemetry.h"

#include <stdlib.h>
#include <string.h>

/* A fake environment: NULL-terminated name, value pairs. */
static const char *const *g_env;
static const char *fake_getenv(const char *name) {
  for (const char *const *p = g_env; p && *p; p += 2)
    if (strcmp(p[0], name) == 0)
      return p[1];
  return NULL;
}

static int from_env(tele_config *c, const char *const *env, char *err, size_t n) {
  g_env = env;
  return tele_config_from_env(c, fake_getenv, err, n);
}

static int from_json(tele_config *c, const char *text, char *err, size_t n) {
  json_error_t je;
  json_t *o = json_loads(text, 0, &je);
  assert_non_null(o);
  int rc = tele_config_from_json(c, o, err, n);
  json_decref(o);
  return rc;
}

static void test_off_by_default(void **state) {
  (void)state;
  tele_config c;
  tele_config_init(&c);
  char err[600];
  static const char *const env[] = {"OTEL_SERVICE_NAME", "x", NULL};
  assert_int_equal(from_env(&c, env, err, sizeof err), 0);
  assert_false(tele_config_enabled(&c));
  tele_config_free(&c);
}

static void test_env(void **state) {
  (void)state;
  tele_config c;
  tele_config_init(&c);
  char err[600];
  static const char *const env[] = {
      "OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/",
      "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://127.0.0.1:9/custom/logs",
      "OTEL_EXPORTER_OTLP_HEADERS", " api-key = se%20cret ,x-b=2,",
      "OTEL_EXPORTER_OTLP_TIMEOUT", "2500",
      "OTEL_EXPORTER_OTLP_COMPRESSION", "gzip",
      "OTEL_SERVICE_NAME", "svc",
      "OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,team=a%2Cb",
      NULL};
  assert_int_equal(from_env(&c, env, err, sizeof err), 0);
  assert_true(tele_config_enabled(&c));
  assert_string_equal(c.traces_url, "http://127.0.0.1:4318/v1/traces");
  assert_string_equal(c.logs_url, "http://127.0.0.1:9/custom/logs");
  assert_int_equal(c.n_headers, 2);
  assert_string_equal(c.headers[0].key, "api-key");
  assert_string_equal(c.headers[0].value, "se cret");
  assert_int_equal(c.timeout_ms, 2500);
  assert_true(c.gzip);
  assert_string_equal(c.service_name, "svc");
  assert_string_equal(json_string_value(json_object_get(c.resource_attrs, "team")), "a,b");
  tele_config_free(&c);
}

static void expect_env_error(const char *name, const char *value, const char *needle) {
  tele_config c;
  tele_config_init(&c);
  char err[600] = "";
  const char *env[] = {name, value, NULL};
  assert_int_equal(from_env(&c, env, err, sizeof err), -22);
  if (!strstr(err, needle) || !strstr(err, name))
    fail_msg("error \"%s\" should name %s and say %s", err, name, needle);
  tele_config_free(&c);
}

static void test_env_errors(void **state) {
  (void)state;
  expect_env_error("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://x", "http");
  expect_env_error("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://a b", "space");
  expect_env_error("OTEL_EXPORTER_OTLP_HEADERS", "x-a=1%0d%0aevil: 1", "control byte 0x0d");
  expect_env_error("OTEL_EXPORTER_OTLP_HEADERS", "bad name=1", "bad name");
  expect_env_error("OTEL_EXPORTER_OTLP_HEADERS", "novalue", "not key=value");
  expect_env_error("OTEL_EXPORTER_OTLP_TIMEOUT", "10s", "milliseconds");
  expect_env_error("OTEL_EXPORTER_OTLP_COMPRESSION", "br", "gzip");
}

static void test_json(void **state) {
  (void)state;
  tele_config c;
  tele_config_init(&c);
  char err[600];
  static const char *const env[] = {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:1",
                                    "OTEL_EXPORTER_OTLP_HEADERS", "a=env", NULL};
  assert_int_equal(from_env(&c, env, err, sizeof err), 0);
  assert_int_equal(
      from_json(&c,
                "{\"endpoint\":\"https://file:2\",\"headers\":{\"A\":\"file\",\"b\":\"\"},"
                "\"timeoutMs\":100,\"compression\":\"none\",\"serviceName\":\"s\","
                "\"resourceAttributes\":{\"r\":1},\"spanAttributes\":{\"team\":\"x\",\"n\":2.5},"
                "\"tracestate\":{\"warden\":\"on\",\"t@v\":\"1\"},\"maxQueueBytes\":8192,"
                "\"batchDelayMs\":5,\"batchMaxEvents\":3}",
                err, sizeof err),
      0);
  assert_string_equal(c.traces_url, "https://file:2/v1/traces");
  assert_int_equal(c.n_headers, 2); /* "A" replaced "a" (names are case-insensitive) */
  assert_string_equal(c.headers[0].value, "file");
  assert_int_equal(c.n_tracestate, 2);
  assert_string_equal(c.tracestate[1].key, "t@v");
  assert_int_equal(c.max_queue_bytes, 8192);
  assert_int_equal(c.batch_max_events, 3);
  assert_int_equal(json_object_size(c.span_attrs), 2);
  assert_int_equal(from_json(&c, "{\"enabled\":false}", err, sizeof err), 0);
  assert_false(tele_config_enabled(&c));
  tele_config_free(&c);
}

static void expect_json_error(const char *text, const char *needle) {
  tele_config c;
  tele_config_init(&c);
  char err[600] = "";
  assert_int_equal(from_json(&c, text, err, sizeof err), -22);
  if (!strstr(err, needle))
    fail_msg("error \"%s\" should say %s", err, needle);
  tele_config_free(&c);
}

static void test_json_errors(void **state) {
  (void)state;
  expect_json_error("{\"tracestate\":{\"Bad\":\"1\"}}", "tracestate member \"Bad=1\"");
  expect_json_error("{\"tracestate\":{\"ok\":\"a,b\"}}", "tracestate member \"ok=a,b\"");
  expect_json_error("{\"tracestate\":{\"ok\":\"x\\ny\"}}", "tracestate member");
  expect_json_error("{\"tracestate\":{\"ok\":1}}", "must be a string");
  expect_json_error("{\"headers\":{\"x\":\"a\\r\\nb: c\"}}", "control byte 0x0d");
  expect_json_error("{\"headers\":{\"x y\":\"1\"}}", "token");
  expect_json_error("{\"endpoint\":\"localhost:4318\"}", "telemetry.endpoint");
  expect_json_error("{\"timeoutMs\":0}", "telemetry.timeoutMs");
  expect_json_error("{\"spanAttributes\":{\"a\":[1]}}", "telemetry.spanAttributes.a");
  expect_json_error("{\"endpointt\":\"x\"}", "unknown key \"endpointt\"");
  expect_json_error("{\"compression\":\"zstd\"}", "telemetry.compression");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_off_by_default), cmocka_unit_test(test_env),
      cmocka_unit_test(test_env_errors),     cmocka_unit_test(test_json),
      cmocka_unit_test(test_json_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
