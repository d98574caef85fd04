/* HTTP messages: the parser's callbacks (heads as spans of the input
 * buffers, bodies gathered into writes, chunked bodies re-framed), the
 * hop-by-hop rules, head building, and the proxy's own answers (refusals,
 * 400, 408, 431, 502, 504). The exchange that drives them: http.c. */
#include "server/netproxy/http_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

http_parser_settings np_req_settings, np_resp_settings;
static bool settings_ready;

/* ---- answers of our own ---- */

void np_http_answer(np_conn *c, int code, const char *status, const char *extra_headers,
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

void np_http_answer_text(np_conn *c, int code, const char *status, const char *fmt, const char *a) {
  char body[512];
  snprintf(body, sizeof body, fmt, a ? a : "");
  size_t l = strlen(body);
  if (l + 2 < sizeof body)
    memcpy(body + l, "\r\n", 3);
  np_http_answer(c, code, status, "", "text/plain; charset=utf-8", body);
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

void np_http_refuse(np_conn *c, const char *reason, const char *source) {
  np_report(c, NETPROXY_DENY, reason, source);
  char msg[512], body[1024], hdr[96];
  message_for(c, reason, msg, sizeof msg);
  snprintf(body, sizeof body,
           "{\"status\":\"blocked\",\"host\":\"%s\",\"port\":%u,\"protocol\":\"%s\","
           "\"reason\":\"%s\",\"decision\":\"deny\",\"source\":\"%s\",\"message\":\"%s\"}\n",
           c->host, c->port, netproxy_protocol_name(c->proto), reason, source, msg);
  snprintf(hdr, sizeof hdr, "x-proxy-error: %s\r\n", error_header(reason));
  np_http_answer(c, 403, "Forbidden", hdr, "application/json", body);
}

/* ---- gathering writes ---- */

void np_iov_add(np_conn *c, bool to_up, const char *p, size_t len) {
  uv_buf_t *iov = to_up ? c->iov_u : c->iov_c;
  unsigned *n = to_up ? &c->niov_u : &c->niov_c;
  if (len)
    iov[(*n)++] = uv_buf_init((char *)p, (unsigned)len);
}

static void iov_chunk_line(np_conn *c, bool to_up, size_t len) {
  char *s = to_up ? c->scratch_u : c->scratch_c;
  size_t *sl = to_up ? &c->scratch_u_len : &c->scratch_c_len;
  int w = snprintf(s + *sl, NP_SCRATCH - *sl, "%zx\r\n", len);
  np_iov_add(c, to_up, s + *sl, (size_t)w);
  *sl += (size_t)w;
}

bool np_iov_full(const np_conn *c, bool to_up) {
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

/* Extend a span by the parser's next piece of it. false when the piece
 * does not follow the span: a folded header line (obs-fold), whose pieces
 * the line break sits between; as one span it would carry the break along. */
static bool span_add(np_span *s, const char *base, const char *at, size_t len) {
  if (!s->len)
    s->off = (uint32_t)(at - base);
  else if (len && at != base + s->off + s->len)
    return false;
  s->len += (uint32_t)len;
  return true;
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
  if (!span_add(&h->name[h->n - 1], base_of(p), at, len)) {
    h->folded = true;
    return -1;
  }
  return 0;
}

static int on_value(http_parser *p, const char *at, size_t len) {
  np_head *h = head_of(p);
  if (h->n == 0)
    return 0;
  h->in_value = true;
  if (!span_add(&h->value[h->n - 1], base_of(p), at, len)) {
    h->folded = true;
    return -1;
  }
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
  np_iov_add(c, to_up, at, len);
  if (chunked)
    np_iov_add(c, to_up, "\r\n", 2);
  if (np_iov_full(c, to_up))
    http_parser_pause(p, 1);
  return 0;
}

static int on_complete(http_parser *p) {
  np_conn *c = p->data;
  bool to_up = p == &c->reqp;
  if (to_up ? c->chunked_req : c->chunked_resp)
    np_iov_add(c, to_up, "0\r\n\r\n", 5);
  head_of(p)->complete = true;
  http_parser_pause(p, 1);
  return 0;
}

void np_http_settings_init(void) {
  if (settings_ready)
    return;
  settings_ready = true;
  http_parser_settings *s[2] = {&np_req_settings, &np_resp_settings};
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
  /* What the message's target and body framing rest on stays, whatever a
   * Connection header lists: without its Content-Length or Transfer-
   * Encoding the next hop would find the body's end elsewhere than the
   * proxy (a request smuggled inside the body), without Host another
   * host. */
  static const char *const kept[] = {"host", "content-length", "transfer-encoding"};
  for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
    if (name_is(base, name, kept[i]))
      return false;
  return listed_by_connection(base, h, name);
}

void np_sb_add(np_sbuf *b, const char *s, size_t n) {
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

void np_sb_str(np_sbuf *b, const char *s) { np_sb_add(b, s, strlen(s)); }

void np_sb_headers(np_sbuf *b, const char *base, const np_head *h) {
  for (unsigned i = 0; i < h->n; i++) {
    if (hop_by_hop(base, h, h->name[i]))
      continue;
    np_sb_add(b, base + h->name[i].off, h->name[i].len);
    np_sb_str(b, ": ");
    np_sb_add(b, base + h->value[i].off, h->value[i].len);
    np_sb_str(b, "\r\n");
  }
}

/* RFC 9110 5.6.2: tchar. */
static bool tchar(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

bool np_head_names_valid(const char *base, const np_head *h) {
  for (unsigned i = 0; i < h->n; i++) {
    if (!h->name[i].len)
      return false;
    for (uint32_t k = 0; k < h->name[i].len; k++)
      if (!tchar((unsigned char)base[h->name[i].off + k]))
        return false;
  }
  return true;
}

int np_find_header(const char *base, const np_head *h, const char *name) {
  return np_find_header_after(base, h, name, 0);
}

int np_find_header_after(const char *base, const np_head *h, const char *name, unsigned from) {
  for (unsigned i = from; i < h->n; i++)
    if (name_is(base, h->name[i], name))
      return (int)i;
  return -1;
}

