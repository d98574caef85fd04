/* See netstub.h. One small state machine per connection; nothing is ever
 * forwarded anywhere. */
#include "server/netstub.h"
#include "server/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum { KIND_HTTP, KIND_SOCKS } stub_kind;

typedef struct stub_conn {
  uv_tcp_t tcp;
  struct stub_conn *prev, *next;
  netstub *owner;
  stub_kind kind;
  bool answered;   /* the refusal is written; close after it */
  bool greeted;    /* SOCKS5: method selection sent */
  size_t len;
  char buf[NETSTUB_MAX_HTTP_HEAD];
} stub_conn;

typedef struct stub_listener {
  uv_tcp_t tcp;
  netstub *owner;
  stub_kind kind;
  bool open;
} stub_listener;

struct netstub {
  uv_loop_t *loop;
  stub_listener l[2];
  stub_conn *conns;
  unsigned pending_closes;
  bool closing;
};

#define HTTP_BODY "warden: blocked by the sandbox; network access through the proxy is not allowed.\r\n"
#define HTTP_HEAD                                                                                  \
  "HTTP/1.1 403 Forbidden\r\n"                                                                     \
  "Content-Type: text/plain; charset=utf-8\r\n"                                                    \
  "Connection: close\r\n"                                                                          \
  "X-Warden-Decision: deny\r\n"                                                                    \
  "Content-Length: "
static char http_refusal[sizeof HTTP_HEAD + sizeof HTTP_BODY + 32];
static size_t http_refusal_len;

/* VER 5, REP 2 (connection not allowed by ruleset), RSV, ATYP IPv4, 0.0.0.0:0 */
static const char socks_refusal[] = {5, 2, 0, 1, 0, 0, 0, 0, 0, 0};
static const char socks_no_auth[] = {5, 0};
static const char socks_no_method[] = {5, (char)0xff};

static void maybe_free(netstub *n) {
  if (n->closing && n->pending_closes == 0)
    free(n);
}

static void conn_closed(uv_handle_t *h) {
  stub_conn *c = h->data;
  netstub *n = c->owner;
  if (c->prev)
    c->prev->next = c->next;
  else
    n->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  free(c);
  n->pending_closes--;
  maybe_free(n);
}

static void conn_close(stub_conn *c) {
  if (uv_is_closing((uv_handle_t *)&c->tcp))
    return;
  c->owner->pending_closes++;
  uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

typedef struct stub_write {
  uv_write_t req;
  stub_conn *c;
  bool then_close;
} stub_write;

static void written(uv_write_t *req, int status) {
  stub_write *w = (stub_write *)req;
  if (status < 0 || w->then_close)
    conn_close(w->c);
  free(w);
}

static void send_bytes(stub_conn *c, const char *data, size_t len, bool then_close) {
  stub_write *w = malloc(sizeof *w);
  if (!w) {
    conn_close(c);
    return;
  }
  w->c = c;
  w->then_close = then_close;
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len); /* static data */
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, written) < 0) {
    free(w);
    conn_close(c);
  }
}

static void refuse(stub_conn *c) {
  c->answered = true;
  uv_read_stop((uv_stream_t *)&c->tcp);
  if (c->kind == KIND_HTTP)
    send_bytes(c, http_refusal, http_refusal_len, true);
  else
    send_bytes(c, socks_refusal, sizeof socks_refusal, true);
}

/* HTTP: answer once the request head is complete (a client that sends a
 * body with CONNECT or POST is answered before it); an over-long head gets
 * the same answer. */
static void on_http(stub_conn *c) {
  if (c->len >= sizeof c->buf || memmem(c->buf, c->len, "\r\n\r\n", 4) ||
      memmem(c->buf, c->len, "\n\n", 2))
    refuse(c);
}

/* SOCKS5: greeting (VER NMETHODS METHODS...), we pick "no auth" when
 * offered; then the request (VER CMD RSV ATYP ...) is refused whatever it
 * asks for. */
static void on_socks(stub_conn *c) {
  const unsigned char *b = (const unsigned char *)c->buf;
  if (!c->greeted) {
    if (c->len < 2)
      return;
    if (b[0] != 5) {
      conn_close(c);
      return;
    }
    size_t need = 2 + (size_t)b[1];
    if (c->len < need)
      return;
    if (!memchr(b + 2, 0, b[1])) {
      c->answered = true;
      send_bytes(c, socks_no_method, sizeof socks_no_method, true);
      return;
    }
    c->greeted = true;
    memmove(c->buf, c->buf + need, c->len - need);
    c->len -= need;
    send_bytes(c, socks_no_auth, sizeof socks_no_auth, false);
  }
  if (c->len >= 4)
    refuse(c);
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  stub_conn *c = h->data;
  (void)suggested;
  size_t cap = c->kind == KIND_HTTP ? sizeof c->buf : NETSTUB_MAX_SOCKS;
  *buf = uv_buf_init(c->buf + c->len, (unsigned)(cap - c->len));
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  stub_conn *c = s->data;
  (void)buf;
  if (nread < 0) {
    conn_close(c);
    return;
  }
  if (nread == 0 || c->answered)
    return;
  c->len += (size_t)nread;
  if (c->kind == KIND_HTTP)
    on_http(c);
  else if (c->len >= NETSTUB_MAX_SOCKS)
    conn_close(c);
  else
    on_socks(c);
}

static void on_connection(uv_stream_t *server, int status) {
  stub_listener *l = server->data;
  netstub *n = l->owner;
  if (status < 0 || n->closing)
    return;
  stub_conn *c = calloc(1, sizeof *c);
  if (!c)
    return;
  c->owner = n;
  c->kind = l->kind;
  uv_tcp_init(n->loop, &c->tcp);
  c->tcp.data = c;
  c->next = n->conns;
  if (n->conns)
    n->conns->prev = c;
  n->conns = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read) < 0) {
    conn_close(c);
    return;
  }
  LOGD("netstub", "%s connection refused by the proxy stand-in",
       c->kind == KIND_HTTP ? "HTTP" : "SOCKS5");
}

static void listener_closed(uv_handle_t *h) {
  stub_listener *l = h->data;
  l->owner->pending_closes--;
  maybe_free(l->owner);
}

int netstub_start(uv_loop_t *loop, int http_fd, int socks_fd, netstub **out) {
  *out = NULL;
  if (!http_refusal_len) /* once; the loop is single-threaded */
    http_refusal_len = (size_t)snprintf(http_refusal, sizeof http_refusal, "%s%zu\r\n\r\n%s",
                                        HTTP_HEAD, sizeof HTTP_BODY - 1, HTTP_BODY);
  netstub *n = calloc(1, sizeof *n);
  if (!n) {
    close(http_fd);
    close(socks_fd);
    return -ENOMEM;
  }
  n->loop = loop;
  int fds[2] = {http_fd, socks_fd};
  int rc = 0;
  for (int i = 0; i < 2; i++) {
    stub_listener *l = &n->l[i];
    l->owner = n;
    l->kind = i == 0 ? KIND_HTTP : KIND_SOCKS;
    uv_tcp_init(loop, &l->tcp);
    l->tcp.data = l;
    l->open = true;
    int r = uv_tcp_open(&l->tcp, fds[i]);
    if (r == 0)
      r = uv_listen((uv_stream_t *)&l->tcp, 128, on_connection);
    else
      close(fds[i]); /* not adopted by the handle */
    if (r < 0 && rc == 0)
      rc = r;
  }
  if (rc < 0) {
    netstub_close(n);
    return rc;
  }
  *out = n;
  return 0;
}

void netstub_close(netstub *n) {
  if (!n || n->closing)
    return;
  n->closing = true;
  for (int i = 0; i < 2; i++) {
    if (!n->l[i].open)
      continue;
    n->pending_closes++;
    uv_close((uv_handle_t *)&n->l[i].tcp, listener_closed);
  }
  for (stub_conn *c = n->conns; c; c = c->next)
    conn_close(c);
  maybe_free(n);
}
