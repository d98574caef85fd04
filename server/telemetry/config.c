/* Telemetry configuration: the standard OTEL_* environment, then the config
 * file's `telemetry` object over it. Everything is validated here, before
 * the engine exists: a bad header, tracestate member or endpoint is an error
 * at start that names it. */
#include "server/telemetry/telemetry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void tele_config_init(tele_config *c) {
  memset(c, 0, sizeof *c);
  c->timeout_ms = TELE_DEFAULT_TIMEOUT_MS;
  c->max_queue_bytes = TELE_DEFAULT_MAX_QUEUE_BYTES;
  c->batch_delay_ms = TELE_DEFAULT_BATCH_DELAY_MS;
  c->batch_max_events = TELE_DEFAULT_BATCH_MAX_EVENTS;
  c->resource_attrs = json_object();
  c->span_attrs = json_object();
}

static void kv_free(tele_kv *kv, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(kv[i].key);
    free(kv[i].value);
    kv[i].key = kv[i].value = NULL;
  }
}

void tele_config_free(tele_config *c) {
  free(c->traces_url);
  free(c->logs_url);
  free(c->service_name);
  kv_free(c->headers, c->n_headers);
  kv_free(c->tracestate, c->n_tracestate);
  json_decref(c->resource_attrs);
  json_decref(c->span_attrs);
  memset(c, 0, sizeof *c);
}

bool tele_config_enabled(const tele_config *c) { return c->traces_url || c->logs_url; }

static void set_str(char **dst, const char *v) {
  free(*dst);
  *dst = v ? strdup(v) : NULL;
}

/* ---- checks ---- */

static int url_check(const char *what, const char *url, char *err, size_t errlen) {
  size_t n = strlen(url);
  if (n > TELE_MAX_STRING ||
      !(strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0)) {
    snprintf(err, errlen, "%s \"%.200s\": expected an http:// or https:// URL", what, url);
    return -EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)url[i];
    if (c <= 0x20 || c == 0x7f) {
      snprintf(err, errlen, "%s \"%.200s\": control character or space at %zu", what, url, i + 1);
      return -EINVAL;
    }
  }
  return 0;
}

/* RFC 9110 token characters. */
static bool tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

int tele_header_check(const char *name, const char *value, char *err, size_t errlen) {
  size_t n = strlen(name);
  if (n == 0 || n > 256) {
    snprintf(err, errlen, "header name must be 1..256 characters");
    return -EINVAL;
  }
  for (size_t i = 0; i < n; i++)
    if (!tchar((unsigned char)name[i])) {
      snprintf(err, errlen, "header name \"%.100s\": byte 0x%02x at %zu is not a token character",
               name, (unsigned char)name[i], i + 1);
      return -EINVAL;
    }
  size_t vn = strlen(value);
  if (vn > TELE_MAX_STRING) {
    snprintf(err, errlen, "header \"%.100s\": value longer than %d bytes", name, TELE_MAX_STRING);
    return -EINVAL;
  }
  for (size_t i = 0; i < vn; i++) {
    unsigned char c = (unsigned char)value[i];
    /* field-value: visible ASCII, space, tab and obs-text; never CR, LF, NUL
     * or other controls (they would split or end the header). */
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      snprintf(err, errlen, "header \"%.100s\": value has control byte 0x%02x at %zu", name, c,
               i + 1);
      return -EINVAL;
    }
  }
  return 0;
}

static int header_set(tele_config *c, const char *name, const char *value, const char *src,
                      char *err, size_t errlen) {
  char why[256];
  if (tele_header_check(name, value, why, sizeof why) < 0) {
    snprintf(err, errlen, "%s: %s", src, why);
    return -EINVAL;
  }
  for (size_t i = 0; i < c->n_headers; i++)
    if (strcasecmp(c->headers[i].key, name) == 0) {
      set_str(&c->headers[i].value, value);
      return 0;
    }
  if (c->n_headers >= TELE_MAX_HEADERS) {
    snprintf(err, errlen, "%s: more than %d headers", src, TELE_MAX_HEADERS);
    return -EINVAL;
  }
  c->headers[c->n_headers].key = strdup(name);
  c->headers[c->n_headers].value = strdup(value);
  c->n_headers++;
  return 0;
}

static int tracestate_set(tele_config *c, const char *key, const char *value, char *err,
                          size_t errlen) {
  char why[200];
  if (tele_tracestate_key_check(key, why, sizeof why) < 0 ||
      tele_tracestate_value_check(value, why, sizeof why) < 0) {
    snprintf(err, errlen, "tracestate member \"%.100s=%.100s\": %s", key, value, why);
    return -EINVAL;
  }
  size_t total = 0;
  for (size_t i = 0; i < c->n_tracestate; i++) {
    if (strcmp(c->tracestate[i].key, key) == 0) {
      set_str(&c->tracestate[i].value, value);
      return 0;
    }
    total += strlen(c->tracestate[i].key) + strlen(c->tracestate[i].value) + 2;
  }
  if (c->n_tracestate >= TELE_TRACESTATE_MAX_MEMBERS ||
      total + strlen(key) + strlen(value) + 1 > TELE_TRACESTATE_MAX_LEN) {
    snprintf(err, errlen, "tracestate member \"%.100s\": more than %d members or %d characters",
             key, TELE_TRACESTATE_MAX_MEMBERS, TELE_TRACESTATE_MAX_LEN);
    return -EINVAL;
  }
  c->tracestate[c->n_tracestate].key = strdup(key);
  c->tracestate[c->n_tracestate].value = strdup(value);
  c->n_tracestate++;
  return 0;
}

/* ---- environment ---- */

static int unhex1(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* Percent-decode [s, s+n) into a new string (W3C baggage octets, as the OTel
 * spec asks for header and resource attribute values). */
static char *pct_decode(const char *s, size_t n) {
  char *o = malloc(n + 1);
  if (!o)
    return NULL;
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n && unhex1(s[i + 1]) >= 0 && unhex1(s[i + 2]) >= 0) {
      o[j++] = (char)(unhex1(s[i + 1]) << 4 | unhex1(s[i + 2]));
      i += 2;
    } else {
      o[j++] = s[i];
    }
  }
  o[j] = '\0';
  return o;
}

static char *trimmed(const char *a, const char *b) {
  while (a < b && (*a == ' ' || *a == '\t'))
    a++;
  while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
    b--;
  return pct_decode(a, (size_t)(b - a));
}

/* "k1=v1,k2=v2": calls fn(key, value) for each; empty items are skipped. */
static int each_pair(const char *var, const char *list,
                     int (*fn)(tele_config *, const char *, const char *, const char *, char *,
                               size_t),
                     tele_config *c, char *err, size_t errlen) {
  const char *p = list;
  while (*p) {
    const char *end = strchr(p, ',');
    if (!end)
      end = p + strlen(p);
    const char *eq = memchr(p, '=', (size_t)(end - p));
    bool blank = true;
    for (const char *q = p; q < end; q++)
      blank &= *q == ' ' || *q == '\t';
    if (!blank) {
      if (!eq) {
        snprintf(err, errlen, "%s: item \"%.*s\" is not key=value", var,
                 (int)((end - p) > 100 ? 100 : end - p), p);
        return -EINVAL;
      }
      char *k = trimmed(p, eq), *v = trimmed(eq + 1, end);
      int rc = k && v ? fn(c, var, k, v, err, errlen) : -ENOMEM;
      free(k);
      free(v);
      if (rc < 0)
        return rc;
    }
    if (!*end)
      break;
    p = end + 1;
  }
  return 0;
}

static int env_header(tele_config *c, const char *var, const char *k, const char *v, char *err,
                      size_t errlen) {
  return header_set(c, k, v, var, err, errlen);
}

static int env_resource(tele_config *c, const char *var, const char *k, const char *v, char *err,
                        size_t errlen) {
  if (!*k) {
    snprintf(err, errlen, "%s: empty attribute key", var);
    return -EINVAL;
  }
  json_object_set_new(c->resource_attrs, k, json_string(v));
  return 0;
}

static char *signal_url(const char *base, const char *path) {
  size_t n = strlen(base);
  while (n && base[n - 1] == '/')
    n--;
  char *u = malloc(n + strlen(path) + 1);
  if (u) {
    memcpy(u, base, n);
    strcpy(u + n, path);
  }
  return u;
}

static int set_endpoint(tele_config *c, const char *what, const char *base, char *err,
                        size_t errlen) {
  if (url_check(what, base, err, errlen) < 0)
    return -EINVAL;
  free(c->traces_url);
  free(c->logs_url);
  c->traces_url = signal_url(base, "/v1/traces");
  c->logs_url = signal_url(base, "/v1/logs");
  return 0;
}

static int set_signal_url(char **dst, const char *what, const char *url, char *err,
                          size_t errlen) {
  if (url_check(what, url, err, errlen) < 0)
    return -EINVAL;
  set_str(dst, url);
  return 0;
}

static int set_compression(tele_config *c, const char *what, const char *v, char *err,
                           size_t errlen) {
  if (strcasecmp(v, "gzip") == 0)
    c->gzip = true;
  else if (strcasecmp(v, "none") == 0)
    c->gzip = false;
  else {
    snprintf(err, errlen, "%s: \"%.100s\" is not \"gzip\" or \"none\"", what, v);
    return -EINVAL;
  }
  return 0;
}

int tele_config_from_env(tele_config *c, const char *(*getenv_fn)(const char *), char *err,
                         size_t errlen) {
  const char *(*get)(const char *) = getenv_fn ? getenv_fn : (const char *(*)(const char *))getenv;
#define ENV(name) (get(name) && *get(name) ? get(name) : NULL)
  const char *v;
  if ((v = ENV("OTEL_EXPORTER_OTLP_ENDPOINT")) &&
      set_endpoint(c, "OTEL_EXPORTER_OTLP_ENDPOINT", v, err, errlen) < 0)
    return -EINVAL;
  if ((v = ENV("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) &&
      set_signal_url(&c->traces_url, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", v, err, errlen) < 0)
    return -EINVAL;
  if ((v = ENV("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")) &&
      set_signal_url(&c->logs_url, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", v, err, errlen) < 0)
    return -EINVAL;
  if ((v = ENV("OTEL_EXPORTER_OTLP_HEADERS")) &&
      each_pair("OTEL_EXPORTER_OTLP_HEADERS", v, env_header, c, err, errlen) < 0)
    return -EINVAL;
  if ((v = ENV("OTEL_EXPORTER_OTLP_TIMEOUT"))) {
    char *end;
    errno = 0;
    unsigned long long ms = strtoull(v, &end, 10);
    if (*end || errno || ms < 1 || ms > 600000) {
      snprintf(err, errlen, "OTEL_EXPORTER_OTLP_TIMEOUT: \"%.40s\" is not milliseconds 1..600000",
               v);
      return -EINVAL;
    }
    c->timeout_ms = ms;
  }
  if ((v = ENV("OTEL_EXPORTER_OTLP_COMPRESSION")) &&
      set_compression(c, "OTEL_EXPORTER_OTLP_COMPRESSION", v, err, errlen) < 0)
    return -EINVAL;
  if ((v = ENV("OTEL_RESOURCE_ATTRIBUTES")) &&
      each_pair("OTEL_RESOURCE_ATTRIBUTES", v, env_resource, c, err, errlen) < 0)
    return -EINVAL;
  if ((v = ENV("OTEL_SERVICE_NAME")))
    set_str(&c->service_name, v);
#undef ENV
  return 0;
}

/* ---- the config file's `telemetry` object ---- */

static int attrs_from_json(json_t *dst, const char *what, const json_t *v, char *err,
                           size_t errlen) {
  if (!json_is_object(v)) {
    snprintf(err, errlen, "telemetry.%s: expected an object of name -> value", what);
    return -EINVAL;
  }
  if (json_object_size(v) > TELE_MAX_ATTRIBUTES) {
    snprintf(err, errlen, "telemetry.%s: more than %d attributes", what, TELE_MAX_ATTRIBUTES);
    return -EINVAL;
  }
  const char *k;
  json_t *a;
  json_object_foreach((json_t *)v, k, a) {
    if (!*k || !(json_is_string(a) || json_is_integer(a) || json_is_real(a) || json_is_boolean(a))) {
      snprintf(err, errlen, "telemetry.%s.%.100s: expected a string, number or boolean", what, k);
      return -EINVAL;
    }
    json_object_set(dst, k, a);
  }
  return 0;
}

static int get_int(const json_t *v, const char *key, long long min, long long max, long long *out,
                   char *err, size_t errlen) {
  if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
    snprintf(err, errlen, "telemetry.%s: expected an integer %lld..%lld", key, min, max);
    return -EINVAL;
  }
  *out = json_integer_value(v);
  return 0;
}

static int get_string(const json_t *v, const char *key, const char **out, char *err,
                      size_t errlen) {
  if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
      json_string_length(v) > TELE_MAX_STRING) {
    snprintf(err, errlen, "telemetry.%s: expected a string (no NUL, at most %d bytes)", key,
             TELE_MAX_STRING);
    return -EINVAL;
  }
  *out = json_string_value(v);
  return 0;
}

int tele_config_from_json(tele_config *c, const json_t *obj, char *err, size_t errlen) {
  if (!json_is_object(obj)) {
    snprintf(err, errlen, "telemetry: expected an object");
    return -EINVAL;
  }
  const char *key, *s;
  json_t *v;
  long long n;
  bool disabled = false;
  char what[300];
  json_object_foreach((json_t *)obj, key, v) {
    int rc = 0;
    if (strcmp(key, "enabled") == 0) {
      if (!json_is_boolean(v)) {
        snprintf(err, errlen, "telemetry.enabled: expected a boolean");
        return -EINVAL;
      }
      disabled = json_is_false(v);
    } else if (strcmp(key, "endpoint") == 0) {
      rc = get_string(v, key, &s, err, errlen);
      if (rc == 0)
        rc = set_endpoint(c, "telemetry.endpoint", s, err, errlen);
    } else if (strcmp(key, "tracesEndpoint") == 0 || strcmp(key, "logsEndpoint") == 0) {
      rc = get_string(v, key, &s, err, errlen);
      snprintf(what, sizeof what, "telemetry.%s", key);
      if (rc == 0)
        rc = set_signal_url(key[0] == 't' ? &c->traces_url : &c->logs_url, what, s, err, errlen);
    } else if (strcmp(key, "headers") == 0) {
      if (!json_is_object(v)) {
        snprintf(err, errlen, "telemetry.headers: expected an object of name -> value");
        return -EINVAL;
      }
      const char *hk;
      json_t *hv;
      json_object_foreach(v, hk, hv) {
        snprintf(what, sizeof what, "telemetry.headers.%.200s", hk);
        if (!json_is_string(hv) || strlen(json_string_value(hv)) != json_string_length(hv)) {
          snprintf(err, errlen, "%s: expected a string without NUL", what);
          return -EINVAL;
        }
        if ((rc = header_set(c, hk, json_string_value(hv), "telemetry.headers", err, errlen)) < 0)
          return rc;
      }
    } else if (strcmp(key, "timeoutMs") == 0) {
      rc = get_int(v, key, 1, 600000, &n, err, errlen);
      if (rc == 0)
        c->timeout_ms = (uint64_t)n;
    } else if (strcmp(key, "compression") == 0) {
      rc = get_string(v, key, &s, err, errlen);
      if (rc == 0)
        rc = set_compression(c, "telemetry.compression", s, err, errlen);
    } else if (strcmp(key, "serviceName") == 0) {
      rc = get_string(v, key, &s, err, errlen);
      if (rc == 0)
        set_str(&c->service_name, s);
    } else if (strcmp(key, "resourceAttributes") == 0) {
      rc = attrs_from_json(c->resource_attrs, key, v, err, errlen);
    } else if (strcmp(key, "spanAttributes") == 0) {
      rc = attrs_from_json(c->span_attrs, key, v, err, errlen);
    } else if (strcmp(key, "tracestate") == 0) {
      if (!json_is_object(v)) {
        snprintf(err, errlen, "telemetry.tracestate: expected an object of key -> value");
        return -EINVAL;
      }
      const char *tk;
      json_t *tv;
      json_object_foreach(v, tk, tv) {
        if (!json_is_string(tv)) {
          snprintf(err, errlen, "telemetry.tracestate member \"%.100s\": value must be a string",
                   tk);
          return -EINVAL;
        }
        char why[400];
        if ((rc = tracestate_set(c, tk, json_string_value(tv), why, sizeof why)) < 0) {
          snprintf(err, errlen, "telemetry.%s", why);
          return rc;
        }
      }
    } else if (strcmp(key, "maxQueueBytes") == 0) {
      rc = get_int(v, key, 4096, 1LL << 30, &n, err, errlen);
      if (rc == 0)
        c->max_queue_bytes = (size_t)n;
    } else if (strcmp(key, "batchDelayMs") == 0) {
      rc = get_int(v, key, 1, 600000, &n, err, errlen);
      if (rc == 0)
        c->batch_delay_ms = (uint64_t)n;
    } else if (strcmp(key, "batchMaxEvents") == 0) {
      rc = get_int(v, key, 1, 100000, &n, err, errlen);
      if (rc == 0)
        c->batch_max_events = (size_t)n;
    } else {
      snprintf(err, errlen,
               "telemetry: unknown key \"%.100s\" (known: enabled, endpoint, tracesEndpoint, "
               "logsEndpoint, headers, timeoutMs, compression, serviceName, resourceAttributes, "
               "spanAttributes, tracestate, maxQueueBytes, batchDelayMs, batchMaxEvents)",
               key);
      return -EINVAL;
    }
    if (rc < 0)
      return rc;
  }
  if (disabled) {
    free(c->traces_url);
    free(c->logs_url);
    c->traces_url = c->logs_url = NULL;
  }
  return 0;
}
