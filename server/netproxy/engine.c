/* The engine: listeners, accepted connections and their handles, the
 * policy store. Decisions: decide.c. */
#include "server/netproxy/np_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NP_LINGER_MS 2000 /* reading and dropping after the last answer */
#define NP_IN_FIRST 4096  /* client input buffer: first size */
#define NP_IN_MAX (NETPROXY_MAX_HEAD + 16 * 1024) /* and its largest */

const char *netproxy_protocol_name(netproxy_protocol p) {
  static const char *n[] = {"http", "https", "socks5Tcp", "socks5Udp"};
  return (unsigned)p < 4 ? n[p] : "http";
}

const char *netproxy_verdict_name(netproxy_verdict v) {
  static const char *n[] = {"allow", "deny", "ask"};
  return (unsigned)v < 3 ? n[v] : "deny";
}

static void maybe_free(netproxy *np) {
  if (np->closing && np->pending == 0 && !np->conns) {
    netproxy_policy_clear(&np->policy);
    free(np);
  }
}

/* ---- connections ---- */

static void conn_free(np_conn *c) {
  netproxy *np = c->np;
  if (c->prev)
    c->prev->next = c->next;
  else
    np->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  np->nconns--;
  free(c->in);
  free(c->uin);
  free(c->iov_c);
  free(c->iov_u);
  free(c->scratch_c);
  free(c->scratch_u);
  free(c->req_settings);
  free(c->req_head);
  free(c->scratch_c_head);
  free(c->dir[0].buf);
  free(c->dir[1].buf);
  free(c);
  maybe_free(np);
}

static void handle_closed(uv_handle_t *h) {
  np_conn *c = h->data;
  free(h);
  if (--c->handles == 0 && c->dead)
    conn_free(c);
}

void np_handle_close(np_conn *c, uv_handle_t *h) {
  if (h && !uv_is_closing(h))
    uv_close(h, handle_closed);
  (void)c;
}

uv_tcp_t *np_tcp_new(np_conn *c) {
  uv_tcp_t *t = malloc(sizeof *t);
  if (!t)
    return NULL;
  uv_tcp_init(c->np->loop, t);
  t->data = c;
  c->handles++;
  return t;
}

void np_conn_close(np_conn *c) {
  if (c->dead)
    return;
  c->dead = true;
  if (c->hold) {
    netproxy_hold *h = c->hold;
    c->hold = NULL;
    if (c->np->cb.on_hold_closed)
      c->np->cb.on_hold_closed(c->np->cb.ctx, h);
    free(h);
  }
  np_dial_abort(c);
  np_udp_close(c->udp);
  c->udp = NULL;
  np_splice_close(c->splice);
  c->splice = NULL;
  np_handle_close(c, (uv_handle_t *)c->client);
  np_handle_close(c, (uv_handle_t *)c->up);
  np_handle_close(c, (uv_handle_t *)c->timer);
  if (c->handles == 0)
    conn_free(c);
}

typedef struct np_wr {
  uv_write_t req;
  np_conn *c;
  uv_tcp_t *to;
  bool then_close;
  char data[];
} np_wr;

static void linger_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char discard[16384]; /* what the client still sends is read and dropped */
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(discard, sizeof discard);
}

static void linger_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  if (nread < 0)
    np_conn_close(s->data);
}

static void linger_expired(np_conn *c) { np_conn_close(c); }

static void linger_shut(uv_shutdown_t *req, int status) {
  np_conn *c = req->data;
  if (c->dead)
    return;
  if (status < 0 || uv_read_start((uv_stream_t *)c->client, linger_alloc, linger_read) < 0) {
    np_conn_close(c);
    return;
  }
  np_timer_set(c, NP_LINGER_MS, linger_expired);
}

/* The last answer is out: send FIN, and read (and drop) what the client still
 * sends for a moment, so that unread input does not turn our close into a
 * reset that could destroy the answer on the client's side. */
static void close_after_answer(np_conn *c) {
  if (c->dead)
    return;
  if (c->up) {
    np_handle_close(c, (uv_handle_t *)c->up);
    c->up = NULL;
  }
  uv_read_stop((uv_stream_t *)c->client);
  c->linger.data = c;
  if (uv_shutdown(&c->linger, (uv_stream_t *)c->client, linger_shut) < 0)
    np_conn_close(c);
}

static void wr_done(uv_write_t *req, int status) {
  np_wr *w = (np_wr *)req;
  if (status < 0)
    np_conn_close(w->c);
  else if (w->then_close && w->to == w->c->client)
    close_after_answer(w->c);
  else if (w->then_close)
    np_conn_close(w->c);
  free(w);
}

/* A copied write (small: heads, refusals); then_close closes the connection
 * once it is out. */
int np_write(np_conn *c, uv_tcp_t *to, const char *data, size_t len, bool then_close) {
  np_wr *w = malloc(sizeof *w + len);
  if (!w) {
    np_conn_close(c);
    return -ENOMEM;
  }
  memcpy(w->data, data, len);
  w->c = c;
  w->to = to;
  w->then_close = then_close;
  uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
  int rc = uv_write(&w->req, (uv_stream_t *)to, &b, 1, wr_done);
  if (rc < 0) {
    free(w);
    np_conn_close(c);
  }
  return rc;
}

typedef struct np_timer {
  uv_timer_t t;
  void (*fn)(np_conn *c);
} np_timer;

static void np_timer_cb(uv_timer_t *t) {
  np_timer *nt = (np_timer *)t;
  np_conn *c = t->data;
  if (!c->dead && nt->fn)
    nt->fn(c);
}

void np_timer_set(np_conn *c, uint64_t ms, void (*fn)(np_conn *c)) {
  if (c->dead)
    return;
  if (!c->timer) {
    np_timer *nt = calloc(1, sizeof *nt);
    if (!nt)
      return;
    uv_timer_init(c->np->loop, &nt->t);
    nt->t.data = c;
    c->timer = &nt->t;
    c->handles++;
  }
  ((np_timer *)c->timer)->fn = fn;
  uv_timer_start(c->timer, np_timer_cb, ms, 0);
}

void np_timer_stop(np_conn *c) {
  if (c->timer)
    uv_timer_stop(c->timer);
}

uv_loop_t *np_loop(const np_conn *c) { return c->np->loop; }
uint64_t np_head_timeout(const np_conn *c) { return c->np->opts.head_timeout_ms; }
uint64_t np_idle_timeout(const np_conn *c) { return c->np->opts.idle_timeout_ms; }
const netproxy_policy *np_policy(const np_conn *c) { return &c->np->policy; }

/* ---- first bytes: SOCKS5 or HTTP ---- */

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  np_conn *c = h->data;
  (void)suggested;
  /* Small first (most heads and SOCKS5 handshakes are short), doubled up to
   * the head limit plus room for the start of a body. Spans into it are
   * offsets, and nothing points into it while it can move: it only grows
   * between reads, never while a write from it is pending. */
  if (c->in && c->in_len >= c->in_cap && c->in_cap < NP_IN_MAX) {
    size_t cap = c->in_cap * 2 < NP_IN_MAX ? c->in_cap * 2 : NP_IN_MAX;
    char *p = realloc(c->in, cap);
    if (p) {
      c->in = p;
      c->in_cap = cap;
    }
  }
  if (!c->in) {
    c->in_cap = NP_IN_FIRST;
    c->in = malloc(c->in_cap);
  }
  if (!c->in || c->in_len >= c->in_cap) {
    *buf = uv_buf_init(NULL, 0);
    return;
  }
  *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  np_conn *c = s->data;
  (void)buf;
  if (c->dead)
    return;
  if (nread == UV_ENOBUFS) { /* full buffer: the state machine decides (431) */
    uv_read_stop(s);
    if (c->kind == NP_KIND_HTTP)
      np_http_on_read(c);
    else
      np_conn_close(c);
    return;
  }
  if (nread < 0 && c->hold) { /* gone while held: reported by np_conn_close */
    np_conn_close(c);
    return;
  }
  if (nread < 0) {
    c->client_eof = true;
    if (c->kind == NP_KIND_HTTP && nread == UV_EOF) {
      uv_read_stop(s);
      np_http_on_read(c);
    } else {
      np_conn_close(c);
    }
    return;
  }
  if (nread == 0)
    return;
  c->in_len += (size_t)nread;
  if (c->kind == NP_KIND_SNIFF) {
    if ((unsigned char)c->in[0] == 5) {
      c->kind = NP_KIND_SOCKS;
      np_socks_start(c);
    } else {
      c->kind = NP_KIND_HTTP;
      np_http_start(c);
    }
    return;
  }
  if (c->kind == NP_KIND_HTTP)
    np_http_on_read(c);
  else
    np_socks_on_read(c);
}

int np_client_read_start(np_conn *c) {
  if (c->dead || !c->client)
    return -EPIPE;
  return uv_read_start((uv_stream_t *)c->client, client_alloc, client_read);
}

static void head_timeout(np_conn *c) {
  /* Nothing decided yet: no byte or an incomplete first head. */
  if (c->kind == NP_KIND_HTTP || c->kind == NP_KIND_SNIFF)
    np_write(c, c->client,
             "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 72,
             true);
  else
    np_conn_close(c);
}

static size_t owner_conns(netproxy *np, void *owner) {
  size_t n = 0;
  for (np_conn *c = np->conns; c; c = c->next)
    if (c->owner == owner && !c->dead)
      n++;
  return n;
}

static void on_connection(uv_stream_t *server, int status) {
  np_listener *l = server->data;
  netproxy *np = l->np;
  if (status < 0 || np->closing)
    return;
  np_conn *c = calloc(1, sizeof *c);
  if (!c)
    return;
  c->np = np;
  c->l = l;
  c->owner = l->owner;
  c->udp_ok = l->own_netns;
  c->next = np->conns;
  if (np->conns)
    np->conns->prev = c;
  np->conns = c;
  np->nconns++;
  c->client = np_tcp_new(c);
  if (!c->client || uv_accept(server, (uv_stream_t *)c->client) < 0) {
    np_conn_close(c);
    return;
  }
  if (owner_conns(np, l->owner) > np->opts.max_conns) {
    np_conn_close(c); /* over NETPROXY_MAX_CONNS for this owner */
    return;
  }
  uv_tcp_nodelay(c->client, 1);
  np_timer_set(c, np->opts.head_timeout_ms, head_timeout);
  if (np_client_read_start(c) < 0)
    np_conn_close(c);
}

/* ---- listeners ---- */

static void listener_closed(uv_handle_t *h) {
  np_listener *l = h->data;
  netproxy *np = l->np;
  free(l);
  np->pending--;
  maybe_free(np);
}

static void listener_close(np_listener *l) {
  l->np->pending++;
  uv_close((uv_handle_t *)&l->tcp, listener_closed);
}

int netproxy_listen_fd(netproxy *np, int fd, void *owner) {
  np_listener *l = calloc(1, sizeof *l);
  if (!l) {
    close(fd);
    return -ENOMEM;
  }
  l->np = np;
  l->owner = owner;
  uv_tcp_init(np->loop, &l->tcp);
  l->tcp.data = l;
  int rc = uv_tcp_open(&l->tcp, fd);
  if (rc < 0)
    close(fd);
  else
    rc = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
  if (rc < 0) {
    listener_close(l);
    return rc;
  }
  l->next = np->listeners;
  np->listeners = l;
  return 0;
}

int netproxy_listen_addr(netproxy *np, const char *host, int port, void *owner, int *bound) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  if (strcmp(host, "localhost") == 0)
    host = "127.0.0.1";
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
    return -EINVAL;
  if (!np_addr_non_public((struct sockaddr *)&ss))
    return -EADDRNOTAVAIL;
  bool loop4 = ss.ss_family == AF_INET &&
               (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
  bool loop6 = ss.ss_family == AF_INET6 &&
               IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr);
  if (!loop4 && !loop6)
    return -EADDRNOTAVAIL; /* loopback only */
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  socklen_t sl = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
  if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  if (bound) {
    struct sockaddr_storage b;
    socklen_t bl = sizeof b;
    getsockname(fd, (struct sockaddr *)&b, &bl);
    *bound = ntohs(b.ss_family == AF_INET ? ((struct sockaddr_in *)&b)->sin_port
                                          : ((struct sockaddr_in6 *)&b)->sin6_port);
  }
  int rc = netproxy_listen_fd(np, fd, owner);
  if (rc == 0)
    np->listeners->own_netns = true;
  return rc;
}

void netproxy_close_owner(netproxy *np, void *owner) {
  for (np_listener **pl = &np->listeners; *pl;) {
    np_listener *l = *pl;
    if (l->owner == owner) {
      *pl = l->next;
      listener_close(l);
    } else {
      pl = &l->next;
    }
  }
  for (np_conn *c = np->conns, *n; c; c = n) {
    n = c->next;
    if (c->owner == owner)
      np_conn_close(c);
  }
}

/* ---- engine ---- */

int netproxy_new(uv_loop_t *loop, const netproxy_opts *opts, const netproxy_callbacks *cb,
                 netproxy **out) {
  netproxy *np = calloc(1, sizeof *np);
  if (!np)
    return -ENOMEM;
  np->loop = loop;
  if (opts)
    np->opts = *opts;
  if (!np->opts.head_timeout_ms)
    np->opts.head_timeout_ms = NETPROXY_HEAD_TIMEOUT_MS;
  if (!np->opts.idle_timeout_ms)
    np->opts.idle_timeout_ms = NETPROXY_IDLE_TIMEOUT_MS;
  if (!np->opts.max_conns)
    np->opts.max_conns = NETPROXY_MAX_CONNS;
  if (cb)
    np->cb = *cb;
  netproxy_policy empty = {0};
  np_policy_copy(&np->policy, &empty);
  *out = np;
  return 0;
}

void netproxy_free(netproxy *np) {
  if (!np || np->closing)
    return;
  np->closing = true;
  while (np->listeners) {
    np_listener *l = np->listeners;
    np->listeners = l->next;
    listener_close(l);
  }
  for (np_conn *c = np->conns, *n; c; c = n) {
    n = c->next;
    np_conn_close(c);
  }
  maybe_free(np);
}

size_t netproxy_conn_count(const netproxy *np) { return np->nconns; }

int netproxy_set_policy(netproxy *np, const netproxy_policy *p, char *err, size_t errlen) {
  int rc = netproxy_policy_check(p, err, errlen);
  if (rc < 0)
    return rc;
  netproxy_policy copy;
  if ((rc = np_policy_copy(&copy, p)) < 0) {
    snprintf(err, errlen, "out of memory");
    return rc;
  }
  netproxy_policy_clear(&np->policy);
  np->policy = copy;
  return 0;
}

const netproxy_policy *netproxy_get_policy(const netproxy *np) { return &np->policy; }
