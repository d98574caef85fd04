/* SOCKS5 UDP ASSOCIATE (RFC 1928 section 7), with a policy check per
 * datagram (protocol socks5Udp).
 *
 * The relay socket is bound next to the listener (same address, port 0) and
 * lives as long as the TCP control connection. Datagrams from the client
 * (the first sender from the control connection's address) carry their
 * destination; each is decided under the current policy: a refusal drops it,
 * an `ask` counts as a refusal (a datagram cannot wait for a prompt), a name
 * is resolved and every address checked like a TCP target. Answers are
 * accepted only from destinations this association sent to, and go back to
 * the client wrapped in the SOCKS5 UDP header. A decision is reported when
 * the verdict for a destination changes, not for every datagram.
 *
 * Only for listeners in warden's own network namespace (--proxy-listen): a
 * relay socket for a sandbox's listeners would have to live in the
 * sandbox's namespace, so there the command is answered 0x07. */
#include "server/netproxy/np_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NP_UDP_MAX_DGRAM 65535  /* one datagram */
#define NP_UDP_MAX_PEERS 64     /* destinations remembered per association */
#define NP_UDP_MAX_RESOLVING 16 /* datagrams waiting for a name lookup */

typedef struct np_udp_peer {
  struct sockaddr_storage addr;
  char host[NETPROXY_MAX_HOST + 1];
  uint16_t port;
  int verdict; /* last reported: -1 none, else netproxy_verdict */
} np_udp_peer;

struct np_udp {
  uv_udp_t sock;
  np_conn *c; /* NULL once the control connection is gone */
  bool have_client;
  struct sockaddr_storage client;
  np_udp_peer peers[NP_UDP_MAX_PEERS];
  unsigned npeers, resolving;
  bool closing;
};

typedef struct np_udp_lookup {
  uv_getaddrinfo_t req;
  np_udp *u;
  char host[NETPROXY_MAX_HOST + 1];
  uint16_t port;
  size_t len;
  char data[];
} np_udp_lookup;

static void udp_free_cb(uv_handle_t *h) { free(h->data); }

static void udp_maybe_free(np_udp *u) {
  if (u->closing && u->resolving == 0)
    uv_close((uv_handle_t *)&u->sock, udp_free_cb);
}

void np_udp_close(np_udp *u) {
  if (!u || u->closing)
    return;
  u->closing = true;
  u->c = NULL;
  uv_udp_recv_stop(&u->sock);
  udp_maybe_free(u);
}

static bool same_addr(const struct sockaddr *a, const struct sockaddr *b, bool with_port) {
  if (a->sa_family != b->sa_family)
    return false;
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_addr.s_addr == y->sin_addr.s_addr && (!with_port || x->sin_port == y->sin_port);
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
  return memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0 &&
         (!with_port || x->sin6_port == y->sin6_port);
}

/* Report a verdict for a destination when it changed. */
static void note(np_udp *u, const char *host, uint16_t port, netproxy_verdict v,
                 const char *reason, const char *source) {
  np_conn *c = u->c;
  if (!c)
    return;
  np_udp_peer *p = NULL;
  for (unsigned i = 0; i < u->npeers; i++)
    if (u->peers[i].port == port && strcmp(u->peers[i].host, host) == 0)
      p = &u->peers[i];
  if (p && p->verdict == (int)v)
    return;
  if (!p && u->npeers < NP_UDP_MAX_PEERS) {
    p = &u->peers[u->npeers++];
    memset(p, 0, sizeof *p);
    snprintf(p->host, sizeof p->host, "%s", host);
    p->port = port;
  }
  if (p)
    p->verdict = (int)v;
  snprintf(c->host, sizeof c->host, "%s", host);
  c->port = port;
  c->proto = NETPROXY_SOCKS5_UDP;
  c->method[0] = 0;
  np_report(c, v, reason, source);
}

static void remember_addr(np_udp *u, const char *host, uint16_t port,
                          const struct sockaddr *sa) {
  for (unsigned i = 0; i < u->npeers; i++)
    if (u->peers[i].port == port && strcmp(u->peers[i].host, host) == 0) {
      memcpy(&u->peers[i].addr, sa,
             sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
      return;
    }
}

static void sent_cb(uv_udp_send_t *req, int status) {
  (void)status;
  free(req);
}

static void send_to(np_udp *u, const struct sockaddr *to, const uv_buf_t *bufs, unsigned n) {
  size_t total = 0;
  for (unsigned i = 0; i < n; i++)
    total += bufs[i].len;
  uv_udp_send_t *req = malloc(sizeof *req + total);
  if (!req)
    return;
  char *p = (char *)(req + 1);
  for (unsigned i = 0; i < n; i++) {
    memcpy(p, bufs[i].base, bufs[i].len);
    p += bufs[i].len;
  }
  uv_buf_t b = uv_buf_init((char *)(req + 1), (unsigned)total);
  if (uv_udp_send(req, &u->sock, &b, 1, to, sent_cb) < 0)
    free(req);
}

/* Decide the literal or resolved address list and send. */
static void deliver(np_udp *u, const char *host, uint16_t port, const struct addrinfo *ai,
                    const char *data, size_t len) {
  np_conn *c = u->c;
  if (!c)
    return;
  const netproxy_policy *pol = np_policy(c);
  bool exact = np_host_local_literal(host) && np_policy_names_exactly(pol, host);
  const struct addrinfo *first = NULL;
  for (; ai; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
      continue;
    if (!pol->allow_local_binding && !exact && np_addr_non_public(ai->ai_addr)) {
      note(u, host, port, NETPROXY_DENY, "not_allowed_local", "baseline_policy");
      return;
    }
    if (!first)
      first = ai;
  }
  if (!first)
    return;
  note(u, host, port, NETPROXY_ALLOW, "allowed", "baseline_policy");
  remember_addr(u, host, port, first->ai_addr);
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  send_to(u, first->ai_addr, &b, 1);
}

static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  np_udp_lookup *l = req->data;
  np_udp *u = l->u;
  u->resolving--;
  if (status == 0 && !u->closing)
    deliver(u, l->host, l->port, res, l->data, l->len);
  uv_freeaddrinfo(res);
  free(l);
  udp_maybe_free(u);
}

static void from_client(np_udp *u, const unsigned char *b, size_t n) {
  np_conn *c = u->c;
  char host[NETPROXY_MAX_HOST + 1];
  uint16_t port;
  size_t hl;
  if (np_socks_udp_header(b, n, host, sizeof host, &port, &hl) < 0)
    return;
  const netproxy_policy *pol = np_policy(c);
  if (pol->limited) {
    note(u, host, port, NETPROXY_DENY, "method_not_allowed", "mode_guard");
    return;
  }
  switch (np_policy_eval(pol, host)) {
  case NP_BASE_DENIED:
    note(u, host, port, NETPROXY_DENY, "denied", "baseline_policy");
    return;
  case NP_BASE_LOCAL:
    note(u, host, port, NETPROXY_DENY, "not_allowed_local", "baseline_policy");
    return;
  case NP_BASE_NOT_ALLOWED: /* a datagram cannot wait for an answer */
    note(u, host, port, NETPROXY_DENY, "not_allowed", "baseline_policy");
    return;
  case NP_BASE_ALLOW:
    break;
  }
  const char *data = (const char *)b + hl;
  size_t len = n - hl;
  struct addrinfo hints = {.ai_socktype = SOCK_DGRAM,
                           .ai_flags = AI_NUMERICSERV | AI_NUMERICHOST};
  char ps[8];
  snprintf(ps, sizeof ps, "%u", port);
  if (np_host_is_ip(host)) {
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, ps, &hints, &res) == 0) {
      deliver(u, host, port, res, data, len);
      freeaddrinfo(res);
    }
    return;
  }
  if (u->resolving >= NP_UDP_MAX_RESOLVING)
    return;
  np_udp_lookup *l = malloc(sizeof *l + len);
  if (!l)
    return;
  l->u = u;
  snprintf(l->host, sizeof l->host, "%s", host);
  l->port = port;
  l->len = len;
  memcpy(l->data, data, len);
  l->req.data = l;
  hints.ai_flags = AI_NUMERICSERV;
  if (uv_getaddrinfo(np_loop(c), &l->req, resolved, host, ps, &hints) < 0) {
    free(l);
    return;
  }
  u->resolving++;
}

static void from_peer(np_udp *u, const struct sockaddr *from, const char *data, size_t n) {
  bool known = false;
  for (unsigned i = 0; i < u->npeers && !known; i++)
    known = u->peers[i].verdict == NETPROXY_ALLOW &&
            same_addr((struct sockaddr *)&u->peers[i].addr, from, true);
  if (!known) /* only answers from where the client sent */
    return;
  unsigned char h[22] = {0, 0, 0};
  size_t hl;
  if (from->sa_family == AF_INET) {
    h[3] = 1;
    memcpy(h + 4, &((const struct sockaddr_in *)from)->sin_addr, 4);
    memcpy(h + 8, &((const struct sockaddr_in *)from)->sin_port, 2);
    hl = 10;
  } else {
    h[3] = 4;
    memcpy(h + 4, &((const struct sockaddr_in6 *)from)->sin6_addr, 16);
    memcpy(h + 20, &((const struct sockaddr_in6 *)from)->sin6_port, 2);
    hl = 22;
  }
  uv_buf_t bufs[2] = {uv_buf_init((char *)h, (unsigned)hl), uv_buf_init((char *)data, (unsigned)n)};
  send_to(u, (struct sockaddr *)&u->client, bufs, 2);
}

static void udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char dgram[NP_UDP_MAX_DGRAM]; /* one loop thread; handled before the next read */
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(dgram, sizeof dgram);
}

static void udp_recv(uv_udp_t *s, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                     unsigned flags) {
  np_udp *u = s->data;
  (void)flags;
  if (n <= 0 || !from || !u->c || u->closing)
    return;
  if (u->have_client && same_addr(from, (struct sockaddr *)&u->client, true)) {
    from_client(u, (const unsigned char *)buf->base, (size_t)n);
    return;
  }
  if (!u->have_client) {
    /* the first datagram from the control connection's host is the client */
    struct sockaddr_storage peer;
    int pl = sizeof peer;
    if (uv_tcp_getpeername(u->c->client, (struct sockaddr *)&peer, &pl) == 0 &&
        same_addr(from, (struct sockaddr *)&peer, false)) {
      u->have_client = true;
      memcpy(&u->client, from,
             from->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
      from_client(u, (const unsigned char *)buf->base, (size_t)n);
    }
    return;
  }
  from_peer(u, from, buf->base, (size_t)n);
}

int np_udp_open(np_conn *c, struct sockaddr_storage *bound) {
  struct sockaddr_storage local;
  int ll = sizeof local;
  int rc = uv_tcp_getsockname(c->client, (struct sockaddr *)&local, &ll);
  if (rc < 0)
    return rc;
  if (local.ss_family == AF_INET)
    ((struct sockaddr_in *)&local)->sin_port = 0;
  else
    ((struct sockaddr_in6 *)&local)->sin6_port = 0;
  np_udp *u = calloc(1, sizeof *u);
  if (!u)
    return -ENOMEM;
  uv_udp_init(np_loop(c), &u->sock);
  u->sock.data = u;
  u->c = c;
  if ((rc = uv_udp_bind(&u->sock, (struct sockaddr *)&local, 0)) < 0 ||
      (rc = uv_udp_recv_start(&u->sock, udp_alloc, udp_recv)) < 0) {
    u->closing = true;
    uv_close((uv_handle_t *)&u->sock, udp_free_cb);
    return rc;
  }
  int bl = sizeof *bound;
  uv_udp_getsockname(&u->sock, (struct sockaddr *)bound, &bl);
  c->udp = u;
  return 0;
}
