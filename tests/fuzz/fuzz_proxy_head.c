/* libFuzzer target: the egress proxy's request head (server/netproxy/
 * http_head.c with the parser callbacks of http_msg.c), fed what a client
 * sends exactly as a connection feeds it: into c->in, step by step.
 *
 * Input: byte 0 picks where the bytes are split in two reads (inputs up to
 * FUZZ_SPLIT_ALL bytes are split at every point); the rest is what the
 * client sends. Checked, besides the sanitizers:
 * - fed whole or in two reads, the outcome is the same: the status of a
 *   refusal, or the bytes consumed, the target and the head rebuilt for
 *   the upstream;
 * - every span of a parsed head (target, header names and values) lies in
 *   the bytes consumed and holds no CR, LF or NUL;
 * - a ready head has a normalised host and a port other than 0; a CONNECT
 *   has consumed its head up to its last LF and nothing past it (what
 *   follows is tunnel data);
 * - the head rebuilt for the upstream parses as exactly one complete head,
 *   with the same method, the same body framing (chunked, or the same
 *   Content-Length, or none: the upstream finds the body where the proxy
 *   does, so no request is smuggled past the policy) and exactly one Host
 *   header, naming the host the policy decided.
 */
#include "server/netproxy/http_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FUZZ_SPLIT_ALL 256   /* shorter inputs: split at every point */
#define FUZZ_SPLIT_SAMPLE 16 /* longer ones: this many points */

typedef struct result {
  np_head_outcome o;
  size_t used;
  char method[24], host[NETPROXY_MAX_HOST + 1];
  uint16_t port;
  netproxy_protocol proto;
  bool keepalive, head_request, chunked, connect;
  uint64_t content_length;
  char *head;
  size_t head_len;
} result;

static np_conn *conn_new(const uint8_t *data, size_t len) {
  np_conn *c = calloc(1, sizeof *c);
  if (!c)
    abort();
  c->in = malloc(len ? len : 1);
  if (!c->in)
    abort();
  memcpy(c->in, data, len);
  c->in_cap = len;
  if (np_http_prepare(c) < 0)
    abort();
  return c;
}

static void conn_free(np_conn *c) {
  free(c->in);
  free(c->iov_c);
  free(c->iov_u);
  free(c->scratch_c);
  free(c->scratch_u);
  free(c->req_head);
  free(c);
}

static void fail(const char *what, const uint8_t *data, size_t len) {
  fprintf(stderr, "fuzz_proxy_head: %s\ninput (%zu bytes): %.*s\n", what, len, (int)len,
          (const char *)data);
  abort();
}

static void check_span(const np_conn *c, np_span s, const char *what, const uint8_t *d,
                       size_t n) {
  if ((size_t)s.off + s.len > c->in_used)
    fail(what, d, n);
  for (uint32_t i = 0; i < s.len; i++) {
    char ch = c->in[s.off + i];
    if (ch == '\r' || ch == '\n' || ch == '\0')
      fail(what, d, n);
  }
}

/* Feed data in reads ending at the given cuts, as the connection does. */
static void run(const uint8_t *data, size_t len, const size_t *cuts, size_t ncuts, result *r) {
  np_conn *c = conn_new(data, len);
  memset(r, 0, sizeof *r);
  for (size_t i = 0; i <= ncuts; i++) {
    c->in_len = i < ncuts ? cuts[i] : len;
    np_req_head_step(c, &r->o);
    if (r->o.code != NP_HEAD_MORE)
      break;
  }
  r->used = c->in_used;
  if (r->o.code == NP_HEAD_READY) {
    check_span(c, c->rq.url, "the target lies outside the head or spans a line end", data,
               len);
    for (unsigned i = 0; i < c->rq.n; i++) {
      check_span(c, c->rq.name[i], "a header name lies outside the head or spans a line end",
                 data, len);
      check_span(c, c->rq.value[i], "a header value lies outside the head or spans a line end",
                 data, len);
    }
    memcpy(r->method, c->method, sizeof r->method);
    memcpy(r->host, c->host, sizeof r->host);
    r->port = c->port;
    r->proto = c->proto;
    r->keepalive = c->req_keepalive;
    r->head_request = c->head_request;
    r->chunked = c->chunked_req;
    r->connect = c->reqp.method == HTTP_CONNECT;
    r->content_length = c->reqp.content_length;
    r->head = c->req_head;
    r->head_len = c->req_head_len;
    c->req_head = NULL;
  }
  conn_free(c);
}

static bool same(const result *a, const result *b) {
  if (a->o.code != b->o.code)
    return false;
  /* A refused head is refused alike; where it stopped and which fault was
   * met first can depend on the reads (nothing follows a refusal). */
  if (a->o.code != NP_HEAD_MORE && a->o.code != NP_HEAD_READY)
    return true;
  if (a->used != b->used)
    return false;
  if (a->o.code != NP_HEAD_READY)
    return true;
  return strcmp(a->method, b->method) == 0 && strcmp(a->host, b->host) == 0 &&
         a->port == b->port && a->proto == b->proto && a->keepalive == b->keepalive &&
         a->head_request == b->head_request && a->chunked == b->chunked &&
         a->head_len == b->head_len &&
         (a->head_len == 0 || memcmp(a->head, b->head, a->head_len) == 0);
}

/* ---- the upstream's view of the rebuilt head ---- */

typedef struct upstream {
  unsigned begins, completes;
  bool in_host;
  unsigned hosts;
  char field[64];
  size_t field_len;
  char host[NETPROXY_MAX_HOST + 16];
  size_t host_len;
  bool value_open;
} upstream;

static int up_begin(http_parser *p) {
  ((upstream *)p->data)->begins++;
  return 0;
}

static int up_field(http_parser *p, const char *at, size_t len) {
  upstream *u = p->data;
  if (u->value_open || u->field_len == 0) {
    u->value_open = false;
    u->field_len = 0;
  }
  size_t k = len < sizeof u->field - u->field_len ? len : sizeof u->field - u->field_len;
  memcpy(u->field + u->field_len, at, k);
  u->field_len += k;
  return 0;
}

static int up_value(http_parser *p, const char *at, size_t len) {
  upstream *u = p->data;
  if (!u->value_open) {
    u->value_open = true;
    u->in_host = u->field_len == 4 && strncasecmp(u->field, "host", 4) == 0;
    if (u->in_host) {
      u->hosts++;
      u->host_len = 0;
    }
  }
  if (u->in_host) {
    size_t k = len < sizeof u->host - u->host_len ? len : sizeof u->host - u->host_len;
    memcpy(u->host + u->host_len, at, k);
    u->host_len += k;
  }
  return 0;
}

static int up_headers_complete(http_parser *p) {
  upstream *u = p->data;
  u->completes++;
  u->value_open = false;
  u->field_len = 0;
  return 0;
}

static void check_rebuilt(const result *r, const uint8_t *d, size_t n) {
  http_parser_settings s = {.on_message_begin = up_begin,
                            .on_header_field = up_field,
                            .on_header_value = up_value,
                            .on_headers_complete = up_headers_complete};
  http_parser p;
  upstream u = {0};
  http_parser_init(&p, HTTP_REQUEST);
  p.data = &u;
  size_t used = http_parser_execute(&p, &s, r->head, r->head_len);
  if (HTTP_PARSER_ERRNO(&p) != HPE_OK || used != r->head_len)
    fail("the rebuilt head does not parse", d, n);
  if (u.begins != 1 || u.completes != 1)
    fail("the rebuilt head is not exactly one head", d, n);
  if (strcmp(http_method_str(p.method), r->method) != 0)
    fail("the rebuilt head has another method", d, n);
  if (((p.flags & F_CHUNKED) != 0) != r->chunked)
    fail("the upstream frames the body otherwise (chunked)", d, n);
  if (!r->chunked && p.content_length != r->content_length)
    fail("the upstream frames the body otherwise (Content-Length)", d, n);
  if (u.hosts != 1)
    fail("the rebuilt head has no Host header or more than one", d, n);
  char h[NETPROXY_MAX_HOST + 1];
  if (np_host_normalize(u.host, u.host_len, h, sizeof h) < 0 || strcmp(h, r->host) != 0)
    fail("the upstream's Host is not the host decided", d, n);
}

static void check_ready(const result *r, const uint8_t *d, size_t n) {
  char again[NETPROXY_MAX_HOST + 1];
  if (!r->host[0] || np_host_normalize(r->host, strlen(r->host), again, sizeof again) < 0 ||
      strcmp(again, r->host) != 0)
    fail("the host decided is not normalised", d, n);
  if (r->port == 0)
    fail("port 0", d, n);
  if (r->connect) {
    if (r->used == 0 || r->used > n || d[r->used - 1] != '\n' || r->head)
      fail("a CONNECT head does not end where the tunnel data begins", d, n);
    return;
  }
  check_rebuilt(r, d, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  uint8_t pick = data[0];
  const uint8_t *d = data + 1;
  size_t n = size - 1;
  result whole;
  run(d, n, NULL, 0, &whole);
  if (whole.o.code == NP_HEAD_READY)
    check_ready(&whole, d, n);
  else if (whole.o.code != NP_HEAD_MORE && whole.o.code != 400 && whole.o.code != 431 &&
           whole.o.code != 505)
    fail("an outcome that is no answer", d, n);
  size_t points = n <= FUZZ_SPLIT_ALL ? n : FUZZ_SPLIT_SAMPLE;
  for (size_t i = 1; i < points; i++) {
    size_t cut = n <= FUZZ_SPLIT_ALL ? i : (i * 7919u + pick * 131u) % n;
    if (cut == 0)
      continue;
    result split;
    run(d, n, &cut, 1, &split);
    if (!same(&whole, &split)) {
      fprintf(stderr, "split at %zu: code %d used %zu, whole: code %d used %zu\n", cut,
              split.o.code, split.used, whole.o.code, whole.used);
      fail("fed in two reads, the head comes out otherwise", d, n);
    }
    free(split.head);
  }
  free(whole.head);
  return 0;
}
