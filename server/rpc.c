#include "server/rpc.h"

#include "protocol/protocol.h"
#include "server/log.h"
#include "server/telemetry/telemetry.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rpc_call_entry {
  struct rpc_call_entry *next;
  rpc *r;
  int64_t id;
  uv_timer_t timer;
  rpc_call_cb cb;
  void *arg;
  char method[64];
} rpc_call_entry;

struct rpc {
  uv_loop_t *loop;
  transport *out;
  rpc_opts o;
  bool initialized;
  json_t *opt_out; /* object used as a set */
  unsigned inflight;
  int64_t next_call_id;
  rpc_call_entry *calls;
  /* telemetry: the span of the request being dispatched, until a handler owns it */
  struct telemetry *tele;
  tele_span *pending_span;
  int early_code;
  char early_msg[160];
};

struct rpc_request {
  rpc *r;
  json_t *id;
  char method[64];
  tele_span *span;
};

int rpc_new(uv_loop_t *loop, transport *out, const rpc_opts *opts, rpc **out_rpc) {
  rpc *r = calloc(1, sizeof *r);
  if (!r)
    return -1;
  r->loop = loop;
  r->out = out;
  r->o = *opts;
  r->opt_out = json_object();
  r->next_call_id = 1;
  *out_rpc = r;
  return 0;
}

void rpc_set_transport(rpc *r, transport *t) { r->out = t; }
transport *rpc_transport(rpc *r) { return r->out; }

void rpc_free(rpc *r) {
  if (!r)
    return;
  json_decref(r->opt_out);
  free(r);
}

/* ---- sending ---- */

static void send_json(rpc *r, json_t *msg) {
  if (!r->out) {
    json_decref(msg);
    return;
  }
  size_t n = json_dumpb(msg, NULL, 0, JSON_COMPACT);
  char *p;
  transport_buf *b = n ? transport_out_alloc(n + 1, &p) : NULL;
  if (!b) {
    LOGE("rpc", "cannot encode a message of %zu bytes", n);
    json_decref(msg);
    return;
  }
  json_dumpb(msg, p, n, JSON_COMPACT);
  p[n] = '\n';
  transport_out_send(r->out, b, n + 1);
  json_decref(msg);
}

/* {"jsonrpc":"2.0", ...}: jsonrpc first, for readers that look at it. */
static json_t *envelope(void) { return json_pack("{s:s}", "jsonrpc", "2.0"); }

static void trace_note_error(rpc *r, int code, const char *message);
static void trace_end(tele_span *sp, int code, const char *message);

static void send_error(rpc *r, json_t *id, int code, const char *message, json_t *data) {
  trace_note_error(r, code, message);
  json_t *err = json_pack("{s:i,s:s}", "code", code, "message", message);
  if (data)
    json_object_set_new(err, "data", data);
  json_t *msg = envelope();
  json_object_set(msg, "id", id ? id : json_null());
  json_object_set_new(msg, "error", err);
  send_json(r, msg);
}

static void finish(rpc_request *req) {
  req->r->inflight--;
  json_decref(req->id);
  free(req);
}

void rpc_respond(rpc_request *req, json_t *result) {
  trace_end(req->span, 0, NULL);
  json_t *msg = envelope();
  json_object_set(msg, "id", req->id);
  json_object_set_new(msg, "result", result ? result : json_object());
  send_json(req->r, msg);
  finish(req);
}

void rpc_respond_error(rpc_request *req, int code, const char *message, json_t *data) {
  trace_end(req->span, code, message);
  send_error(req->r, req->id, code, message, data);
  finish(req);
}

void rpc_respond_errorf(rpc_request *req, int code, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  rpc_respond_error(req, code, msg, NULL);
}

const char *rpc_request_method(const rpc_request *req) { return req->method; }
rpc *rpc_request_rpc(const rpc_request *req) { return req->r; }
unsigned rpc_inflight(const rpc *r) { return r->inflight; }

void rpc_set_initialized(rpc *r) { r->initialized = true; }
bool rpc_is_initialized(const rpc *r) { return r->initialized; }

void rpc_set_opt_out(rpc *r, const json_t *methods) {
  size_t i;
  const json_t *m;
  json_array_foreach(methods, i, m) {
    if (json_is_string(m))
      json_object_set_new(r->opt_out, json_string_value(m), json_true());
  }
}

bool rpc_notification_wanted(const rpc *r, const char *method) {
  return json_object_get(r->opt_out, method) == NULL;
}

void rpc_notify(rpc *r, const char *method, json_t *params) {
  if (!rpc_notification_wanted(r, method)) {
    json_decref(params);
    return;
  }
  json_t *msg = envelope();
  json_object_set_new(msg, "method", json_string(method));
  if (params)
    json_object_set_new(msg, "params", params);
  send_json(r, msg);
}

/* ---- server-to-client requests ---- */

static void call_closed(uv_handle_t *h) { free(h->data); }

static void call_finish(rpc_call_entry *c, const json_t *result, const json_t *error) {
  rpc *r = c->r;
  for (rpc_call_entry **pp = &r->calls; *pp; pp = &(*pp)->next) {
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  }
  uv_timer_stop(&c->timer);
  c->cb(c->arg, result, error);
  uv_close((uv_handle_t *)&c->timer, call_closed);
}

static void call_fail(rpc_call_entry *c, const char *why) {
  json_t *err = json_pack("{s:i,s:s}", "code", RPC_INTERNAL_ERROR, "message", why);
  call_finish(c, NULL, err);
  json_decref(err);
}

static void call_timeout(uv_timer_t *t) {
  rpc_call_entry *c = t->data;
  LOGW("rpc", "client did not answer %s (id %lld) in time", c->method, (long long)c->id);
  call_fail(c, "timed out waiting for the client");
}

int64_t rpc_call(rpc *r, const char *method, json_t *params, uint64_t timeout_ms, rpc_call_cb cb,
                 void *arg) {
  rpc_call_entry *c = calloc(1, sizeof *c);
  if (!c) {
    json_decref(params);
    return -1;
  }
  c->r = r;
  c->id = r->next_call_id++;
  c->cb = cb;
  c->arg = arg;
  snprintf(c->method, sizeof c->method, "%s", method);
  uv_timer_init(r->loop, &c->timer);
  c->timer.data = c;
  uv_timer_start(&c->timer, call_timeout, timeout_ms ? timeout_ms : r->o.call_timeout_ms, 0);
  c->next = r->calls;
  r->calls = c;
  json_t *msg = envelope();
  json_object_set_new(msg, "id", json_integer(c->id));
  json_object_set_new(msg, "method", json_string(method));
  if (params)
    json_object_set_new(msg, "params", params);
  send_json(r, msg);
  return c->id;
}

void rpc_cancel_calls(rpc *r) {
  while (r->calls)
    call_fail(r->calls, "connection closed");
}

static void handle_response(rpc *r, json_t *msg, json_t *id) {
  if (!json_is_integer(id)) {
    LOGW("rpc", "response with an id the server never used; ignored");
    return;
  }
  int64_t want = (int64_t)json_integer_value(id);
  for (rpc_call_entry *c = r->calls; c; c = c->next) {
    if (c->id == want) {
      json_t *error = json_object_get(msg, "error");
      call_finish(c, error ? NULL : json_object_get(msg, "result"), error);
      return;
    }
  }
  LOGW("rpc", "response to unknown or expired request id %lld; ignored", (long long)want);
}

/* ---- dispatch ---- */

static const rpc_handler *find_handler(const rpc *r, const char *method) {
  for (const rpc_handler *h = r->o.handlers; h && h->method; h++)
    if (strcmp(h->method, method) == 0)
      return h;
  return NULL;
}

static void dispatch_request(rpc *r, json_t *id, const char *method, json_t *params) {
  /* shutdown is always answered: before initialize too, and never -32001. */
  bool always = strcmp(method, "shutdown") == 0;
  if (!r->initialized && strcmp(method, "initialize") != 0 && !always) {
    send_error(r, id, RPC_INVALID_REQUEST, "not initialized: send initialize first", NULL);
    return;
  }
  if (r->initialized && strcmp(method, "initialize") == 0) {
    send_error(r, id, RPC_INVALID_REQUEST, "already initialized", NULL);
    return;
  }
  const proto_method *m = proto_method_find(method, PD_CLIENT_REQUEST);
  const rpc_handler *h = m ? find_handler(r, method) : NULL;
  if (!h) {
    char msg[160];
    snprintf(msg, sizeof msg, "method not found: %.100s%s", method,
             m ? " (not available in this build)" : "");
    send_error(r, id, RPC_METHOD_NOT_FOUND, msg, json_pack("{s:s}", "method", method));
    return;
  }
  json_t *p = params;
  if (!p || json_is_null(p)) {
    p = json_object();
  } else if (!json_is_object(p)) {
    send_error(r, id, RPC_INVALID_PARAMS, "params: expected object",
               json_pack("{s:s,s:s}", "path", "params", "expected", "object"));
    return;
  } else {
    json_incref(p);
  }
  proto_violation v;
  static const proto_type no_params = {.kind = PK_EMPTY};
  if (!proto_validate(m->params ? m->params : &no_params, p, "params", &v)) {
    send_error(r, id, RPC_INVALID_PARAMS, v.message,
               json_pack("{s:s,s:s}", "path", v.path, "expected", v.expected));
    json_decref(p);
    return;
  }
  if (r->inflight >= r->o.max_inflight && !always) {
    send_error(r, id, RPC_OVERLOADED, "overloaded: too many requests in flight, retry later",
               json_pack("{s:i}", "maxInflight", r->o.max_inflight));
    json_decref(p);
    return;
  }
  rpc_request *req = calloc(1, sizeof *req);
  if (!req) {
    send_error(r, id, RPC_INTERNAL_ERROR, "out of memory", NULL);
    json_decref(p);
    return;
  }
  req->r = r;
  req->id = json_incref(id);
  snprintf(req->method, sizeof req->method, "%s", method);
  req->span = r->pending_span; /* the handler's answer ends it */
  r->pending_span = NULL;
  r->inflight++;
  h->fn(r->o.server, req, p);
  json_decref(p);
}

/* ---- parsing: valid JSON is never a parse error ---- */

#define PARSE_FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL)

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Can jansson hold this number token? Integers must fit 64 bits, reals a
 * double (jansson refuses overflow, not underflow). */
static bool number_fits(const char *tok, size_t n) {
  char buf[512];
  if (n >= sizeof buf)
    return false;
  memcpy(buf, tok, n);
  buf[n] = '\0';
  errno = 0;
  if (!memchr(tok, '.', n) && !memchr(tok, 'e', n) && !memchr(tok, 'E', n)) {
    (void)strtoll(buf, NULL, 10);
    return errno != ERANGE;
  }
  double d = strtod(buf, NULL);
  return !(errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL));
}

/* A copy of a line that jansson refused only for what it cannot represent:
 * numbers it cannot hold become PROTO_BIG_NUMBER_PREFIX strings (the
 * validator names them), and \u0000 in object keys becomes the six
 * characters "\u0000" (an unknown field the validator names). Strings are
 * copied as they are. NULL on ENOMEM or when the line is too big to grow. */
static char *rewrite_unrepresentable(const char *line, size_t len, size_t *out_len) {
  size_t cap = len * 2 + 64, o = 0;
  if (len > ((size_t)1 << 30))
    return NULL;
  char *out = malloc(cap);
  if (!out)
    return NULL;
  for (size_t i = 0; i < len;) {
    /* worst growth of one step: a number token of n bytes -> n + 16 */
    char c = line[i];
    if (c == '"') {
      size_t j = i + 1;
      while (j < len && line[j] != '"')
        j += line[j] == '\\' ? 2 : 1;
      j = j < len ? j + 1 : len;
      size_t k = j;
      while (k < len && is_ws(line[k]))
        k++;
      bool key = k < len && line[k] == ':';
      for (size_t x = i; x < j; x++) {
        if (o + 8 > cap)
          goto grow_fail;
        if (key && line[x] == '\\' && x + 5 < j && memcmp(line + x + 1, "u0000", 5) == 0) {
          memcpy(out + o, "\\\\u0000", 7); /* the JSON text \\u0000 */
          o += 7;
          x += 5;
          continue;
        }
        if (line[x] == '\\' && x + 1 < j) {
          out[o++] = line[x++];
        }
        out[o++] = line[x];
      }
      i = j;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      size_t j = i;
      while (j < len && (line[j] == '-' || line[j] == '+' || line[j] == '.' || line[j] == 'e' ||
                         line[j] == 'E' || (line[j] >= '0' && line[j] <= '9')))
        j++;
      if (o + (j - i) + 16 > cap)
        goto grow_fail;
      if (number_fits(line + i, j - i)) {
        memcpy(out + o, line + i, j - i);
        o += j - i;
      } else {
        memcpy(out + o, "\"\\u0000number:", 14);
        o += 14;
        memcpy(out + o, line + i, j - i);
        o += j - i;
        out[o++] = '"';
      }
      i = j;
    } else {
      if (o + 1 > cap)
        goto grow_fail;
      out[o++] = c;
      i++;
    }
  }
  *out_len = o;
  return out;
grow_fail:
  free(out);
  return NULL;
}

static json_t *parse_line(const char *line, size_t len, json_error_t *jerr) {
  json_t *msg = json_loadb(line, len, PARSE_FLAGS, jerr);
  if (msg)
    return msg;
  enum json_error_code code = json_error_code(jerr);
  if (code != json_error_numeric_overflow && code != json_error_null_byte_in_key)
    return NULL;
  size_t n;
  char *fixed = rewrite_unrepresentable(line, len, &n);
  if (!fixed)
    return NULL;
  json_error_t jerr2;
  msg = json_loadb(fixed, n, PARSE_FLAGS, &jerr2);
  free(fixed);
  return msg;
}

/* A string member the dispatcher compares as a C string: NUL inside would
 * make "process/list\u0000x" look like "process/list". */
static bool plain_string(const json_t *v) {
  return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

/* A message without an id. Only client notifications go unanswered; a
 * request sent without an id is refused rather than run with its answer
 * thrown away, and an unknown one is named: nothing is dropped silently. */
static void handle_notification(rpc *r, const char *method, json_t *params) {
  char m[200];
  if (proto_method_find(method, PD_CLIENT_NOTIFICATION)) {
    if (r->o.on_notification)
      r->o.on_notification(r->o.server, method, params);
  } else if (proto_method_find(method, PD_CLIENT_REQUEST)) {
    snprintf(m, sizeof m, "invalid request: \"%.100s\" is a request and needs an id", method);
    send_error(r, NULL, RPC_INVALID_REQUEST, m, json_pack("{s:s}", "method", method));
  } else {
    snprintf(m, sizeof m, "method not found: %.100s (sent as a notification)", method);
    send_error(r, NULL, RPC_METHOD_NOT_FOUND, m, json_pack("{s:s}", "method", method));
  }
}

/* ---- params._meta and request spans ---- */

void rpc_set_telemetry(rpc *r, struct telemetry *t) { r->tele = t; }
tele_span *rpc_request_span(const rpc_request *req) { return req->span; }

static void trace_note_error(rpc *r, int code, const char *message) {
  if (!r->pending_span)
    return;
  r->early_code = code;
  snprintf(r->early_msg, sizeof r->early_msg, "%s", message);
}

static void trace_end(tele_span *sp, int code, const char *message) {
  if (!sp)
    return;
  telemetry_span_set_str(sp, "warden.outcome", code ? "error" : "ok");
  if (code) {
    telemetry_span_set_int(sp, "rpc.jsonrpc.error_code", code);
    telemetry_span_set_str(sp, "rpc.jsonrpc.error_message", message);
    telemetry_span_set_error(sp, message);
  }
  telemetry_span_end(sp);
}

/* `_meta` (MCP's convention) is request metadata, not arguments: it is
 * accepted in the params of every request, must be an object (null means
 * absent), and is taken out before the params are validated. _meta.traceparent (with
 * _meta.tracestate) continues the caller's W3C trace; a malformed one is
 * ignored (a new trace starts), as W3C asks. Other _meta members are
 * ignored. The request's span starts here and ends with its one answer. */
static void dispatch_traced(rpc *r, json_t *id, const char *method, json_t *params) {
  json_t *meta = json_is_object(params) ? json_object_get(params, "_meta") : NULL;
  const char *traceparent = NULL, *tracestate = NULL;
  if (json_is_null(meta)) {
    /* null means absent, as for every optional field */
    json_object_del(params, "_meta");
    meta = NULL;
  }
  if (meta) {
    json_incref(meta);
    json_object_del(params, "_meta");
    traceparent = json_string_value(json_object_get(meta, "traceparent"));
    tracestate = json_string_value(json_object_get(meta, "tracestate"));
  }
  if (r->tele) {
    tele_span *sp = telemetry_span_start(r->tele, method, TELE_SPAN_SERVER, NULL, traceparent,
                                         tracestate);
    telemetry_span_set_str(sp, "rpc.system", "jsonrpc");
    telemetry_span_set_str(sp, "rpc.jsonrpc.version", "2.0");
    telemetry_span_set_str(sp, "rpc.method", method);
    if (sp && json_is_string(id))
      telemetry_span_set_str(sp, "rpc.jsonrpc.request_id", json_string_value(id));
    else if (sp)
      telemetry_span_set_int(sp, "rpc.jsonrpc.request_id", (long long)json_integer_value(id));
    r->pending_span = sp;
    r->early_code = 0;
  }
  if (meta && !json_is_object(meta))
    send_error(r, id, RPC_INVALID_PARAMS, "params._meta: expected object",
               json_pack("{s:s,s:s}", "path", "params._meta", "expected", "object"));
  else
    dispatch_request(r, id, method, params);
  if (r->pending_span) {
    /* Answered before a handler got it (not initialized, unknown method,
     * invalid params, overloaded). */
    trace_end(r->pending_span, r->early_code, r->early_msg);
    r->pending_span = NULL;
  }
  json_decref(meta);
}

void rpc_handle_line(rpc *r, const char *line, size_t len) {
  size_t i = 0;
  while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
    i++;
  if (i == len)
    return; /* blank line: nothing to answer */
  json_error_t jerr;
  json_t *msg = parse_line(line, len, &jerr);
  if (!msg) {
    char m[300];
    snprintf(m, sizeof m, "parse error: %s at column %d", jerr.text, jerr.column);
    send_error(r, NULL, RPC_PARSE_ERROR, m, NULL);
    return;
  }
  if (!json_is_object(msg)) {
    /* Batches are refused as a whole (docs/protocol.md says why). */
    if (json_is_array(msg))
      send_error(r, NULL, RPC_INVALID_REQUEST,
                 "invalid request: batches are not supported; send one message per line",
                 json_pack("{s:b}", "batch", 1));
    else
      send_error(r, NULL, RPC_INVALID_REQUEST, "invalid request: expected a JSON object", NULL);
    json_decref(msg);
    return;
  }
  json_t *id = json_object_get(msg, "id");
  json_t *method = json_object_get(msg, "method");
  json_t *ver = json_object_get(msg, "jsonrpc");
  bool id_ok = id && ((json_is_string(id) && !proto_big_number(id)) || json_is_integer(id));
  if (ver && !(plain_string(ver) && strcmp(json_string_value(ver), "2.0") == 0)) {
    send_error(r, id_ok ? id : NULL, RPC_INVALID_REQUEST,
               "invalid request: jsonrpc must be \"2.0\" when present", NULL);
  } else if (method) {
    if (!json_is_string(method)) {
      send_error(r, id_ok ? id : NULL, RPC_INVALID_REQUEST,
                 "invalid request: method must be a string", NULL);
    } else if (id && !id_ok) {
      send_error(r, NULL, RPC_INVALID_REQUEST,
                 "invalid request: id must be a string or an integer (of at most 64 bits)", NULL);
    } else if (!plain_string(method)) {
      send_error(r, id, RPC_METHOD_NOT_FOUND, "method not found: the name contains NUL",
                 json_pack("{s:O}", "method", method));
    } else if (id) {
      dispatch_traced(r, id, json_string_value(method), json_object_get(msg, "params"));
    } else {
      handle_notification(r, json_string_value(method), json_object_get(msg, "params"));
    }
  } else if (id && (json_object_get(msg, "result") || json_object_get(msg, "error"))) {
    handle_response(r, msg, id);
  } else {
    send_error(r, id_ok ? id : NULL, RPC_INVALID_REQUEST,
               "invalid request: no method, and not a response", NULL);
  }
  json_decref(msg);
}

void rpc_handle_oversize(rpc *r, unsigned long long bytes, size_t limit) {
  char m[160];
  snprintf(m, sizeof m, "invalid request: line of %llu bytes exceeds the limit of %zu bytes", bytes,
           limit);
  send_error(r, NULL, RPC_INVALID_REQUEST, m,
             json_pack("{s:I,s:I}", "lineBytes", (json_int_t)bytes, "maxLineBytes",
                       (json_int_t)limit));
}
