/* OTLP JSON encoding (the protobuf JSON mapping with the OTLP exceptions:
 * trace and span ids as lowercase hex, enums as integers, 64-bit integers as
 * decimal strings) and gzip for request bodies. */
#include "server/telemetry/tele_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

const char *const tele_batch_tail = "]}]}]}";

uint64_t tele_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t tele_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

json_t *tele_attr_value(const json_t *v) {
  char num[32];
  switch (json_typeof(v)) {
  case JSON_STRING: return json_pack("{s:s}", "stringValue", json_string_value(v));
  case JSON_INTEGER:
    snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
    return json_pack("{s:s}", "intValue", num);
  case JSON_REAL: return json_pack("{s:f}", "doubleValue", json_real_value(v));
  case JSON_TRUE:
  case JSON_FALSE: return json_pack("{s:b}", "boolValue", json_is_true(v));
  case JSON_ARRAY: {
    json_t *vals = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
      json_t *a = tele_attr_value(e);
      if (a)
        json_array_append_new(vals, a);
    }
    return json_pack("{s:{s:o}}", "arrayValue", "values", vals);
  }
  default: return NULL;
  }
}

void tele_attrs_append(json_t *attrs, const char *key, json_t *any_value) {
  if (!any_value)
    return;
  json_array_append_new(attrs, json_pack("{s:s,s:o}", "key", key, "value", any_value));
}

json_t *tele_resource_json(const char *service_name, const json_t *attrs) {
  json_t *a = json_array();
  /* service.name: the configured name wins over the one in the attributes. */
  const json_t *from_attrs = json_object_get(attrs, "service.name");
  json_t *svc = json_string(service_name             ? service_name
                            : json_is_string(from_attrs) ? json_string_value(from_attrs)
                                                         : "warden");
  tele_attrs_append(a, "service.name", tele_attr_value(svc));
  json_decref(svc);
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)attrs, k, v) {
    if (strcmp(k, "service.name") != 0)
      tele_attrs_append(a, k, tele_attr_value(v));
  }
  if (!json_object_get(attrs, "telemetry.sdk.name")) {
    tele_attrs_append(a, "telemetry.sdk.name", json_pack("{s:s}", "stringValue", "warden"));
    tele_attrs_append(a, "telemetry.sdk.language", json_pack("{s:s}", "stringValue", "c"));
  }
  return json_pack("{s:o}", "attributes", a);
}

char *tele_batch_head(int which, const char *resource_json, const char *scope_json) {
  const char *fmt = which == TELE_Q_TRACES
                        ? "{\"resourceSpans\":[{\"resource\":%s,\"scopeSpans\":[{\"scope\":%s,"
                          "\"spans\":["
                        : "{\"resourceLogs\":[{\"resource\":%s,\"scopeLogs\":[{\"scope\":%s,"
                          "\"logRecords\":[";
  size_t n = strlen(fmt) + strlen(resource_json) + strlen(scope_json) + 1;
  char *out = malloc(n);
  if (out)
    snprintf(out, n, fmt, resource_json, scope_json);
  return out;
}

int tele_gzip(const char *in, size_t n, char **out, size_t *out_len) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  /* windowBits 15 + 16: a gzip wrapper (Content-Encoding: gzip), not zlib's. */
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return -ENOMEM;
  uLong cap = deflateBound(&zs, (uLong)n) + 32;
  char *buf = malloc(cap);
  if (!buf) {
    deflateEnd(&zs);
    return -ENOMEM;
  }
  zs.next_in = (Bytef *)in;
  zs.avail_in = (uInt)n;
  zs.next_out = (Bytef *)buf;
  zs.avail_out = (uInt)cap;
  int rc = deflate(&zs, Z_FINISH);
  if (rc != Z_STREAM_END) {
    deflateEnd(&zs);
    free(buf);
    return -EIO;
  }
  *out_len = zs.total_out;
  *out = buf;
  deflateEnd(&zs);
  return 0;
}
