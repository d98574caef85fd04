/* The HTTP/1.x side: request heads parsed with http_parser (Debian's
 * libhttp-parser, the Node.js parser in C), absolute-form requests
 * forwarded with keep-alive and pipelining, bodies streamed both ways, and
 * CONNECT handed to the relay.
 *
 * One exchange at a time per client connection: the head is read (at most
 * NETPROXY_MAX_HEAD bytes and NETPROXY_MAX_HEADERS lines, complete within the
 * head timeout), decided, the upstream dialled (or the previous one reused
 * when it is the same host and port), a rebuilt head sent without hop-by-hop
 * headers, then the body streamed as the parser finds it (chunked bodies are
 * re-framed: the parser hands over the payload, the proxy writes the chunk
 * lines). The response comes back the same way. Pipelined requests wait in
 * the input buffer (the client is not read meanwhile) until the response
 * before them is out. Backpressure: while a write to one side is pending,
 * the other side is not read. */
#include "server/netproxy/np_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NP_IOV_MAX 192                    /* body pieces gathered per write */
#define NP_SCRATCH (NP_IOV_MAX * 12)      /* chunk-size lines of one write */
#define NP_UPSTREAM_IN (NETPROXY_MAX_RESPONSE_HEAD + 64 * 1024)

enum { H_HEAD = 0, H_DECIDE, H_BODY, H_WAIT, H_TUNNEL, H_DONE };

static http_parser_settings req_settings, resp_settings;
static bool settings_ready;

/* ---- answers of our own ---- */

static void answer(np_conn *c, int code, const char *status, const char *extra_headers,
                   const char *ctype, const char *body) {
  char head[1024];
  size_t bl = strlen(body);
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%sContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n",
                   code, status, ctype, extra_headers, bl);
  char *msg = malloc((size_t)n + bl);
  if (!msg) {
    np_conn_close(c);
    return;
  }
  memcpy(msg, head, (size_t)n);
  memcpy(msg + n, body, bl);
  c->state = H_DONE;
  np_timer_stop(c);
  uv_read_stop((uv_stream_t *)c->client);
  np_write(c, c->client, msg, (size_t)n + bl, true);
  free(msg);
}

static void answer_text(np_conn *c, int code, const char *status, const char *fmt, const char *a) {
  char body[512];
  snprintf(body, sizeof body, fmt, a ? a : "");
  size_t l = strlen(body);
  if (l + 2 < sizeof body)
    memcpy(body + l, "\r\n", 3);
  answer(c, code, status, "", "text/plain; charset=utf-8", body);
}

static const char *error_header(const char *reason) {
  if (strcmp(reason, "denied") == 0)
    return "blocked-by-denylist";
  if (strcmp(reason, "not_allowed_local") == 0)
    return "blocked-by-local-policy";
  if (strcmp(reason, "method_not_allowed") == 0)
    return "blocked-by-method-policy";
  return "blocked-by-allowlist";
}

static void message_for(const np_conn *c, const char *reason, char *out, size_t n) {
  if (strcmp(reason, "denied") == 0)
    snprintf(out, n,
             "warden blocked this request: %s is in the network policy's denied domains. It "
             "cannot be reached from this sandbox; do not retry, work without it.",
             c->host);
  else if (strcmp(reason, "not_allowed_local") == 0)
    snprintf(out, n,
             "warden blocked this request: %s is a local or private address (or resolves to "
             "one). Such destinations are refused unless the network policy sets "
             "allowLocalBinding or allows that exact IP literal.",
             c->host);
  else if (strcmp(reason, "method_not_allowed") == 0)
    snprintf(out, n,
             "warden blocked this request: the network policy is in limited mode, which allows "
             "only GET, HEAD and OPTIONS requests and no CONNECT or SOCKS5 tunnels (%s %s).",
             c->method, c->host);
  else
    snprintf(out, n,
             "warden blocked this request: %s is not in the network policy's allowed domains. "
             "Ask the user to allow it (network/policy/set allowedDomains), or work without it.",
             c->host);
}

static void refuse(np_conn *c, const char *reason, const char *source) {
  np_report(c, NETPROXY_DENY, reason, source);
  char msg[512], body[1024], hdr[96];
  message_for(c, reason, msg, sizeof msg);
  snprintf(body, sizeof body,
           "{\"status\":\"blocked\",\"host\":\"%s\",\"port\":%u,\"protocol\":\"%s\","
           "\"reason\":\"%s\",\"decision\":\"deny\",\"source\":\"%s\",\"message\":\"%s\"}\n",
           c->host, c->port, netproxy_protocol_name(c->proto), reason, source, msg);
  snprintf(hdr, sizeof hdr, "x-proxy-error: %s\r\n", error_header(reason));
  answer(c, 403, "Forbidden", hdr, "application/json", body);
}

/* ---- gathering writes ---- */

static void iov_add(np_conn *c, bool to_up, const char *p, size_t len) {
  uv_buf_t *iov = to_up ? c->iov_u : c->iov_c;
  unsigned *n = to_up ? &c->niov_u : &c->niov_c;
  if (len)
    iov[(*n)++] = uv_buf_init((char *)p, (unsigned)len);
}

static void iov_chunk_line(np_conn *c, bool to_up, size_t len) {
  char *s = to_up ? c->scratch_u : c->scratch_c;
  size_t *sl = to_up ? &c->scratch_u_len : &c->scratch_c_len;
  int w = snprintf(s + *sl, NP_SCRATCH - *sl, "%zx\r\n", len);
  iov_add(c, to_up, s + *sl, (size_t)w);
  *sl += (size_t)w;
}

static bool iov_full(const np_conn *c, bool to_up) {
  return (to_up ? c->niov_u : c->niov_c) + 4 > NP_IOV_MAX ||
         (to_up ? c->scratch_u_len : c->scratch_c_len) + 24 > NP_SCRATCH;
}

/* ---- parser callbacks ---- */

static np_head *head_of(http_parser *p) {
  np_conn *c = p->data;
  return p == &c->reqp ? &c->rq : &c->rs;
}

static const char *base_of(http_parser *p) {
  np_conn *c = p->data;
  return p == &c->reqp ? c->in : c->uin;
}

static void span_add(np_span *s, const char *base, const char *at, size_t len) {
  if (!s->len)
    s->off = (uint32_t)(at - base);
  s->len += (uint32_t)len;
}

static int on_begin(http_parser *p) {
  np_head *h = head_of(p);
  memset(h, 0, sizeof *h);
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  span_add(&head_of(p)->url, base_of(p), at, len);
  return 0;
}

static int on_status(http_parser *p, const char *at, size_t len) {
  span_add(&head_of(p)->status, base_of(p), at, len);
  return 0;
}

static int on_field(http_parser *p, const char *at, size_t len) {
  np_head *h = head_of(p);
  if (h->n == 0 || h->in_value) {
    if (h->n == NETPROXY_MAX_HEADERS) {
      h->too_many = true;
      return -1;
    }
    h->n++;
    h->in_value = false;
  }
  span_add(&h->name[h->n - 1], base_of(p), at, len);
  return 0;
}

static int on_value(http_parser *p, const char *at, size_t len) {
  np_head *h = head_of(p);
  if (h->n == 0)
    return 0;
  h->in_value = true;
  span_add(&h->value[h->n - 1], base_of(p), at, len);
  return 0;
}

static int on_headers_complete(http_parser *p) {
  np_conn *c = p->data;
  head_of(p)->done = true;
  http_parser_pause(p, 1);
  if (p == &c->resp && (c->head_request || p->status_code == 101))
    return 1; /* no body */
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  np_conn *c = p->data;
  bool to_up = p == &c->reqp;
  bool chunked = to_up ? c->chunked_req : c->chunked_resp;
  if (chunked)
    iov_chunk_line(c, to_up, len);
  iov_add(c, to_up, at, len);
  if (chunked)
    iov_add(c, to_up, "\r\n", 2);
  if (iov_full(c, to_up))
    http_parser_pause(p, 1);
  return 0;
}

static int on_complete(http_parser *p) {
  np_conn *c = p->data;
  bool to_up = p == &c->reqp;
  if (to_up ? c->chunked_req : c->chunked_resp)
    iov_add(c, to_up, "0\r\n\r\n", 5);
  head_of(p)->complete = true;
  http_parser_pause(p, 1);
  return 0;
}

static void settings_init(void) {
  if (settings_ready)
    return;
  settings_ready = true;
  http_parser_settings *s[2] = {&req_settings, &resp_settings};
  for (int i = 0; i < 2; i++) {
    s[i]->on_message_begin = on_begin;
    s[i]->on_url = on_url;
    s[i]->on_status = on_status;
    s[i]->on_header_field = on_field;
    s[i]->on_header_value = on_value;
    s[i]->on_headers_complete = on_headers_complete;
    s[i]->on_body = on_body;
    s[i]->on_message_complete = on_complete;
  }
}

/* ---- heads ---- */

static bool name_is(const char *base, np_span s, const char *name) {
  return s.len == strlen(name) && strncasecmp(base + s.off, name, s.len) == 0;
}

/* The header names listed by every Connection header (hop-by-hop too). */
static bool listed_by_connection(const char *base, const np_head *h, np_span name) {
  for (unsigned i = 0; i < h->n; i++) {
    if (!name_is(base, h->name[i], "connection"))
      continue;
    const char *v = base + h->value[i].off, *end = v + h->value[i].len;
    while (v < end) {
      while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
        v++;
      const char *t = v;
      while (v < end && *v != ',' && *v != ' ' && *v != '\t')
        v++;
      if ((size_t)(v - t) == name.len && name.len &&
          strncasecmp(t, base + name.off, name.len) == 0)
        return true;
    }
  }
  return false;
}

static bool hop_by_hop(const char *base, const np_head *h, np_span name) {
  static const char *const names[] = {"connection", "keep-alive", "proxy-connection",
                                      "proxy-authorization", "proxy-authenticate", "te",
                                      "trailer", "upgrade"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (name_is(base, name, names[i]))
      return true;
  return listed_by_connection(base, h, name);
}

typedef struct sbuf {
  char *p;
  size_t len, cap;
  bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = (b->cap ? b->cap * 2 : 1024) + n;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_headers(sbuf *b, const char *base, const np_head *h) {
  for (unsigned i = 0; i < h->n; i++) {
    if (hop_by_hop(base, h, h->name[i]))
      continue;
    sb_add(b, base + h->name[i].off, h->name[i].len);
    sb_str(b, ": ");
    sb_add(b, base + h->value[i].off, h->value[i].len);
    sb_str(b, "\r\n");
  }
}

static int find_header(const char *base, const np_head *h, const char *name) {
  for (unsigned i = 0; i < h->n; i++)
    if (name_is(base, h->name[i], name))
      return (int)i;
  return -1;
}

/* ---- the exchange ---- */

static void feed_req(np_conn *c);
static void feed_resp(np_conn *c);
static void up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void compact_in(np_conn *c) {
  if (c->in_used) {
    memmove(c->in, c->in + c->in_used, c->in_len - c->in_used);
    c->in_len -= c->in_used;
    c->in_used = 0;
  }
}

static void head_timeout(np_conn *c) {
  answer_text(c, 408, "Request Timeout",
              "warden proxy: the request head did not arrive within the time allowed", NULL);
}

static void idle_timeout(np_conn *c) { np_conn_close(c); }

static void up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  np_conn *c = h->data;
  (void)suggested;
  if (!c->uin)
    c->uin = malloc(NP_UPSTREAM_IN);
  if (!c->uin || c->uin_len >= NP_UPSTREAM_IN) {
    *buf = uv_buf_init(NULL, 0);
    return;
  }
  *buf = uv_buf_init(c->uin + c->uin_len, (unsigned)(NP_UPSTREAM_IN - c->uin_len));
}

static void resp_reset(np_conn *c) {
  http_parser_init(&c->resp, HTTP_RESPONSE);
  c->resp.data = c;
  memset(&c->rs, 0, sizeof c->rs);
  c->resp_done = false;
}

static void next_exchange(np_conn *c) {
  http_parser_init(&c->reqp, HTTP_REQUEST);
  c->reqp.data = c;
  memset(&c->rq, 0, sizeof c->rq);
  c->state = H_HEAD;
  compact_in(c);
  c->head_timing = c->in_len > 0;
  if (c->in_len)
    np_timer_set(c, np_head_timeout(c), head_timeout);
  else
    np_timer_set(c, np_idle_timeout(c), idle_timeout);
  if (c->in_len)
    feed_req(c);
  else if (np_client_read_start(c) < 0)
    np_conn_close(c);
}

/* The response is out; keep the connection for the next request or end it. */
static void exchange_done(np_conn *c) {
  bool keep = c->rq.complete && c->req_keepalive && !c->resp_close &&
              http_should_keep_alive(&c->resp);
  if (!keep) {
    np_conn_close(c);
    return;
  }
  c->uin_len = c->uin_used = 0;
  resp_reset(c);
  if (c->up) /* watch the idle upstream: its close is noticed, not found later */
    uv_read_start((uv_stream_t *)c->up, up_alloc, up_read);
  next_exchange(c);
}

static void wrote_client(uv_write_t *req, int status) {
  np_conn *c = req->data;
  if (c->dead)
    return;
  c->writing_client = false;
  c->niov_c = 0;
  c->scratch_c_len = 0;
  free(c->scratch_c_head);
  c->scratch_c_head = NULL;
  if (status < 0) {
    np_conn_close(c);
    return;
  }
  /* the bytes written were spans of uin: drop them */
  memmove(c->uin, c->uin + c->uin_used, c->uin_len - c->uin_used);
  c->uin_len -= c->uin_used;
  c->uin_used = 0;
  if (c->resp_done) {
    exchange_done(c);
    return;
  }
  if (c->up && !c->up_eof)
    uv_read_start((uv_stream_t *)c->up, up_alloc, up_read);
  if (c->uin_len || c->up_eof)
    feed_resp(c);
}

static void flush_client(np_conn *c) {
  if (!c->niov_c) {
    if (c->resp_done)
      exchange_done(c);
    return;
  }
  c->writing_client = true;
  c->wc.data = c;
  if (c->up)
    uv_read_stop((uv_stream_t *)c->up);
  if (uv_write(&c->wc, (uv_stream_t *)c->client, c->iov_c, c->niov_c, wrote_client) < 0)
    np_conn_close(c);
}

/* Build the head the client gets from the response head in uin. */
static int build_resp_head(np_conn *c) {
  sbuf b = {0};
  char line[64];
  snprintf(line, sizeof line, "HTTP/1.1 %u ", c->resp.status_code);
  sb_str(&b, line);
  sb_add(&b, c->uin + c->rs.status.off, c->rs.status.len);
  sb_str(&b, "\r\n");
  sb_headers(&b, c->uin, &c->rs);
  c->chunked_resp = (c->resp.flags & F_CHUNKED) != 0;
  bool until_close = !c->head_request && !c->chunked_resp && c->resp.status_code >= 200 &&
                     c->resp.status_code != 204 && c->resp.status_code != 304 &&
                     find_header(c->uin, &c->rs, "content-length") < 0;
  if (until_close)
    c->resp_close = true;
  if (c->resp.status_code >= 200 && (c->resp_close || !c->req_keepalive))
    sb_str(&b, "Connection: close\r\n");
  sb_str(&b, "\r\n");
  if (b.oom) {
    free(b.p);
    return -ENOMEM;
  }
  c->scratch_c_head = b.p;
  iov_add(c, false, b.p, b.len);
  return 0;
}

static void feed_resp(np_conn *c) {
  if (c->writing_client || c->dead)
    return;
  for (;;) {
    size_t avail = c->uin_len - c->uin_used;
    if (!avail && !c->up_eof)
      break;
    if ((HTTP_PARSER_ERRNO(&c->resp) == HPE_PAUSED))
      http_parser_pause(&c->resp, 0);
    size_t n = http_parser_execute(&c->resp, &resp_settings, avail ? c->uin + c->uin_used : NULL,
                                   avail);
    c->uin_used += n;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->resp);
    if (e != HPE_OK && e != HPE_PAUSED) {
      if (!c->rs.head_sent)
        answer_text(c, 502, "Bad Gateway", "warden proxy: the upstream answered with a malformed "
                                           "response (%s)", http_errno_name(e));
      else
        np_conn_close(c);
      return;
    }
    if (c->rs.done && !c->rs.head_sent) {
      c->rs.head_sent = true;
      if (build_resp_head(c) < 0) {
        np_conn_close(c);
        return;
      }
    }
    if (c->rs.complete) {
      unsigned code = c->resp.status_code;
      if (code >= 100 && code < 200 && code != 101) { /* interim: the real answer follows */
        size_t used = c->uin_used;
        http_parser_init(&c->resp, HTTP_RESPONSE);
        c->resp.data = c;
        memset(&c->rs, 0, sizeof c->rs);
        c->uin_used = used;
        continue;
      }
      c->resp_done = true;
      if (code == 101)
        c->resp_close = true;
      break;
    }
    if (c->up_eof && !avail) {
      /* EOF before the end of the response */
      if (!c->rs.head_sent) {
        answer_text(c, 502, "Bad Gateway",
                    "warden proxy: the upstream closed the connection without a response%s",
                    NULL);
        return;
      }
      if (!c->niov_c) {
        np_conn_close(c);
        return;
      }
      break;
    }
    if (iov_full(c, false))
      break;
    if (n == avail && !(HTTP_PARSER_ERRNO(&c->resp) == HPE_PAUSED))
      break; /* all consumed; wait for more */
  }
  if (!c->rs.done && c->uin_len >= NETPROXY_MAX_RESPONSE_HEAD) {
    answer_text(c, 502, "Bad Gateway", "warden proxy: the upstream response head is too large%s",
                NULL);
    return;
  }
  flush_client(c);
  if (c->up_eof && !c->resp_done && !c->writing_client && !c->dead)
    np_conn_close(c);
}

static void up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  np_conn *c = s->data;
  (void)buf;
  if (c->dead || nread == 0)
    return;
  if (nread < 0 && nread != UV_ENOBUFS) {
    uv_read_stop(s);
    if ((c->state == H_HEAD || c->state == H_DECIDE) && c->uin_len == 0) {
      /* an idle keep-alive upstream (no request outstanding) went away:
       * dial again next time */
      np_handle_close(c, (uv_handle_t *)c->up);
      c->up = NULL;
      return;
    }
    c->up_eof = true;
    feed_resp(c);
    return;
  }
  if (nread == UV_ENOBUFS) {
    uv_read_stop(s);
    feed_resp(c);
    return;
  }
  c->uin_len += (size_t)nread;
  if (c->state == H_HEAD || c->state == H_DECIDE) {
    /* bytes from an idle upstream with no request outstanding: a broken
     * server; drop it */
    np_handle_close(c, (uv_handle_t *)c->up);
    c->up = NULL;
    c->uin_len = 0;
    return;
  }
  feed_resp(c);
}

static void wrote_up(uv_write_t *req, int status) {
  np_conn *c = req->data;
  if (c->dead)
    return;
  c->writing_up = false;
  c->niov_u = 0;
  c->scratch_u_len = 0;
  if (status < 0) {
    np_conn_close(c);
    return;
  }
  compact_in(c);
  feed_req(c);
}

static void flush_up(np_conn *c) {
  if (!c->niov_u)
    return;
  c->writing_up = true;
  c->wu.data = c;
  uv_read_stop((uv_stream_t *)c->client);
  if (uv_write(&c->wu, (uv_stream_t *)c->up, c->iov_u, c->niov_u, wrote_up) < 0)
    np_conn_close(c);
}

/* Stream the request body to the upstream. */
static void body_step(np_conn *c) {
  for (;;) {
    size_t avail = c->in_len - c->in_used;
    if (!avail) /* (a zero-length execute would mean EOF to the parser) */
      break;
    if ((HTTP_PARSER_ERRNO(&c->reqp) == HPE_PAUSED))
      http_parser_pause(&c->reqp, 0);
    size_t n = http_parser_execute(&c->reqp, &req_settings, c->in + c->in_used, avail);
    c->in_used += n;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->reqp);
    if (e != HPE_OK && e != HPE_PAUSED) {
      np_conn_close(c); /* a malformed body: the upstream has a partial request */
      return;
    }
    if (c->rq.complete || iov_full(c, true) || n == avail)
      break;
  }
  if (c->rq.complete) {
    c->state = H_WAIT;
    uv_read_stop((uv_stream_t *)c->client);
  }
  if (c->niov_u) {
    flush_up(c);
    return;
  }
  if (c->state == H_BODY) {
    if (c->client_eof) {
      np_conn_close(c);
      return;
    }
    compact_in(c);
    np_client_read_start(c);
  }
}

static void send_head(np_conn *c) {
  /* The rebuilt head goes first; the body follows as it is parsed. */
  iov_add(c, true, c->req_head, c->req_head_len);
  c->state = H_BODY;
  c->req_done = false;
  uv_read_start((uv_stream_t *)c->up, up_alloc, up_read);
  body_step(c);
}

static void dialed(np_conn *c, int err) {
  if (c->dead)
    return;
  if (err == -EACCES) {
    refuse(c, "not_allowed_local", "baseline_policy");
    return;
  }
  if (err == -ETIMEDOUT) {
    answer_text(c, 504, "Gateway Timeout", "warden proxy: %s did not answer in time", c->host);
    return;
  }
  if (err < 0) {
    char msg[400];
    snprintf(msg, sizeof msg, "warden proxy: cannot reach %s port %u: %s", c->host, c->port,
             err == -EHOSTUNREACH ? "the name does not resolve" : uv_strerror(err));
    answer_text(c, 502, "Bad Gateway", "%s", msg);
    return;
  }
  np_report(c, NETPROXY_ALLOW, "allowed", c->allow_source);
  if (c->proto == NETPROXY_HTTPS) {
    c->state = H_TUNNEL;
    np_timer_stop(c);
    static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    np_relay_start(c, ok, sizeof ok - 1);
    return;
  }
  snprintf(c->up_host, sizeof c->up_host, "%s", c->host);
  c->up_port = c->port;
  c->up_reading = false;
  c->up_eof = false;
  c->uin_len = c->uin_used = 0;
  resp_reset(c);
  send_head(c);
}

static void decided(np_conn *c, netproxy_verdict v, const char *reason, const char *source) {
  if (c->dead)
    return;
  if (v != NETPROXY_ALLOW) {
    refuse(c, reason, source);
    return;
  }
  c->allow_source = source;
  if (c->proto == NETPROXY_HTTP && c->up && c->up_connected && !c->up_eof &&
      strcmp(c->up_host, c->host) == 0 && c->up_port == c->port) {
    np_report(c, NETPROXY_ALLOW, "allowed", source); /* reuse: checked when dialled */
    resp_reset(c);
    send_head(c);
    return;
  }
  if (c->up) {
    np_handle_close(c, (uv_handle_t *)c->up);
    c->up = NULL;
    c->up_connected = false;
  }
  np_dial(c, dialed);
}

/* Parse the target and the Host header; build the head for the upstream. */
static void process_head(np_conn *c) {
  const char *in = c->in;
  snprintf(c->method, sizeof c->method, "%s", http_method_str(c->reqp.method));
  c->req_keepalive = http_should_keep_alive(&c->reqp);
  c->head_request = c->reqp.method == HTTP_HEAD;
  c->chunked_req = (c->reqp.flags & F_CHUNKED) != 0;
  bool connect = c->reqp.method == HTTP_CONNECT;
  struct http_parser_url u;
  http_parser_url_init(&u);
  if (!c->rq.url.len ||
      http_parser_parse_url(in + c->rq.url.off, c->rq.url.len, connect, &u) != 0) {
    answer_text(c, 400, "Bad Request", "warden proxy: the request target is not a valid URL%s",
                NULL);
    return;
  }
  const char *url = in + c->rq.url.off;
  if (!connect) {
    if (!(u.field_set & (1 << UF_SCHEMA)) || !(u.field_set & (1 << UF_HOST))) {
      answer_text(c, 400, "Bad Request",
                  "warden proxy: this is a forward proxy; send absolute-form requests "
                  "(GET http://host/path) or CONNECT host:port%s",
                  NULL);
      return;
    }
    if (u.field_data[UF_SCHEMA].len != 4 ||
        strncasecmp(url + u.field_data[UF_SCHEMA].off, "http", 4) != 0) {
      answer_text(c, 400, "Bad Request",
                  "warden proxy: only http:// URLs are forwarded; use CONNECT for https%s", NULL);
      return;
    }
  } else if (!(u.field_set & (1 << UF_PORT))) {
    answer_text(c, 400, "Bad Request", "warden proxy: CONNECT needs host:port%s", NULL);
    return;
  }
  if (np_host_normalize(url + u.field_data[UF_HOST].off, u.field_data[UF_HOST].len, c->host,
                        sizeof c->host) < 0) {
    answer_text(c, 400, "Bad Request", "warden proxy: invalid host in the request target%s",
                NULL);
    return;
  }
  c->port = (u.field_set & (1 << UF_PORT)) ? u.port : 80;
  if (c->port == 0) {
    answer_text(c, 400, "Bad Request", "warden proxy: port 0 is not a destination%s", NULL);
    return;
  }
  c->proto = connect ? NETPROXY_HTTPS : NETPROXY_HTTP;
  /* Host must name the target (absolute form). */
  int hi = find_header(in, &c->rq, "host");
  if (hi >= 0 && !connect) {
    np_span v = c->rq.value[hi];
    char hh[NETPROXY_MAX_HOST + 1];
    const char *hv = in + v.off;
    size_t hl = v.len;
    /* the port part: after "]" for v6, else after the only ":" */
    const char *colon = NULL;
    const char *rb = memchr(hv, ']', hl);
    if (rb)
      colon = (size_t)(rb - hv) + 1 < hl && rb[1] == ':' ? rb + 1 : NULL;
    else {
      colon = memchr(hv, ':', hl);
      if (colon && memchr(colon + 1, ':', hl - (size_t)(colon - hv) - 1))
        colon = NULL;
    }
    long hport = 80;
    bool bad = np_host_normalize(hv, hl, hh, sizeof hh) < 0;
    if (!bad && colon) {
      char *end;
      char digits[8] = {0};
      size_t dl = hl - (size_t)(colon - hv) - 1;
      if (dl == 0 || dl >= sizeof digits)
        bad = true;
      else {
        memcpy(digits, colon + 1, dl);
        hport = strtol(digits, &end, 10);
        bad = *end != 0;
      }
    }
    if (bad || strcmp(hh, c->host) != 0 || hport != c->port) {
      answer_text(c, 400, "Bad Request",
                  "warden proxy: the Host header does not match the request target%s", NULL);
      return;
    }
  }
  if (!connect) {
    sbuf b = {0};
    sb_str(&b, c->method);
    sb_str(&b, " ");
    if (u.field_set & (1 << UF_PATH))
      sb_add(&b, url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    else
      sb_str(&b, "/");
    if (u.field_set & (1 << UF_QUERY)) {
      sb_str(&b, "?");
      sb_add(&b, url + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
    }
    char ver[32];
    snprintf(ver, sizeof ver, " HTTP/%u.%u\r\n", c->reqp.http_major, c->reqp.http_minor);
    sb_str(&b, ver);
    if (hi < 0) {
      sb_str(&b, "Host: ");
      sb_add(&b, url + u.field_data[UF_HOST].off - (url[u.field_data[UF_HOST].off - 1] == '[' ? 1 : 0),
             u.field_data[UF_HOST].len + (url[u.field_data[UF_HOST].off - 1] == '[' ? 2 : 0));
      if (u.field_set & (1 << UF_PORT)) {
        char p[16];
        snprintf(p, sizeof p, ":%u", c->port);
        sb_str(&b, p);
      }
      sb_str(&b, "\r\n");
    }
    sb_headers(&b, in, &c->rq);
    sb_str(&b, "\r\n");
    if (b.oom) {
      free(b.p);
      np_conn_close(c);
      return;
    }
    free(c->req_head);
    c->req_head = b.p;
    c->req_head_len = b.len;
  } else {
    /* consume the rest of the head; what follows is tunnel data */
    http_parser_pause(&c->reqp, 0);
    size_t n = http_parser_execute(&c->reqp, &req_settings, c->in + c->in_used,
                                   c->in_len - c->in_used);
    c->in_used += n;
  }
  c->state = H_DECIDE;
  np_timer_stop(c);
  uv_read_stop((uv_stream_t *)c->client);
  np_decide(c, decided);
}

static void feed_req(np_conn *c) {
  if (c->dead)
    return;
  if (c->state == H_BODY) {
    if (!c->writing_up)
      body_step(c);
    return;
  }
  if (c->state != H_HEAD)
    return;
  if (c->in_len > c->in_used) {
    size_t n = http_parser_execute(&c->reqp, &req_settings, c->in + c->in_used,
                                   c->in_len - c->in_used);
    c->in_used += n;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->reqp);
    if (c->rq.too_many) {
      answer_text(c, 431, "Request Header Fields Too Large",
                  "warden proxy: more header lines than the proxy accepts%s", NULL);
      return;
    }
    if (e == HPE_HEADER_OVERFLOW) {
      answer_text(c, 431, "Request Header Fields Too Large",
                  "warden proxy: the request head is larger than the proxy accepts%s", NULL);
      return;
    }
    if (e != HPE_OK && e != HPE_PAUSED) {
      answer_text(c, 400, "Bad Request", "warden proxy: malformed request (%s)",
                  http_errno_description(e));
      return;
    }
    if (c->rq.done) {
      if (c->in_used > NETPROXY_MAX_HEAD) {
        answer_text(c, 431, "Request Header Fields Too Large",
                    "warden proxy: the request head is larger than the proxy accepts%s", NULL);
        return;
      }
      process_head(c);
      return;
    }
  }
  if (c->in_len >= NETPROXY_MAX_HEAD) {
    answer_text(c, 431, "Request Header Fields Too Large",
                "warden proxy: the request head is larger than the proxy accepts%s", NULL);
    return;
  }
  if (c->client_eof) {
    np_conn_close(c);
    return;
  }
  if (c->in_len && !c->head_timing) { /* a head has begun: it must end in time */
    c->head_timing = true;
    np_timer_set(c, np_head_timeout(c), head_timeout);
  }
  np_client_read_start(c);
}

void np_http_start(np_conn *c) {
  settings_init();
  c->iov_c = malloc(NP_IOV_MAX * sizeof *c->iov_c);
  c->iov_u = malloc(NP_IOV_MAX * sizeof *c->iov_u);
  c->scratch_c = malloc(NP_SCRATCH);
  c->scratch_u = malloc(NP_SCRATCH);
  if (!c->iov_c || !c->iov_u || !c->scratch_c || !c->scratch_u) {
    np_conn_close(c);
    return;
  }
  http_parser_init(&c->reqp, HTTP_REQUEST);
  c->reqp.data = c;
  c->state = H_HEAD;
  feed_req(c);
}

void np_http_on_read(np_conn *c) { feed_req(c); }
