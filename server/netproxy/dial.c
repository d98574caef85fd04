/* Resolve once, check every address, connect only to a checked address.
 *
 * A literal is not looked up. A name goes through uv_getaddrinfo (the thread
 * pool) with NETPROXY_DNS_TIMEOUT_MS: a late answer is dropped, a failed one
 * fails closed. Unless the policy allows local binding (or names the literal
 * exactly), one non-public address refuses the whole answer: the name is
 * pointing somewhere local. The addresses checked are the addresses
 * connected to, in order, so a second lookup (DNS rebinding) has no say. */
#include "server/netproxy/np_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct np_dns {
  uv_getaddrinfo_t req;
  np_conn *c; /* NULL once abandoned (timeout or close) */
  np_dialed_fn done;
};

static void try_next(np_conn *c, np_dialed_fn done);

static void finish(np_conn *c, np_dialed_fn done, int err) {
  np_timer_stop(c);
  done(c, err);
}

static void on_connect(uv_connect_t *req, int status) {
  np_conn *c = req->data;
  if (status == UV_ECANCELED || c->dead)
    return;
  np_dialed_fn done = c->dial_done;
  if (status == 0) {
    c->up_connected = true;
    uv_tcp_nodelay(c->up, 1);
    finish(c, done, 0);
    return;
  }
  np_handle_close(c, (uv_handle_t *)c->up);
  c->up = NULL;
  c->addr_i++;
  if (c->addr_i >= c->naddrs) {
    finish(c, done, status);
    return;
  }
  try_next(c, done);
}

static void try_next(np_conn *c, np_dialed_fn done) {
  c->dial_done = done;
  c->up = np_tcp_new(c);
  if (!c->up) {
    finish(c, done, -ENOMEM);
    return;
  }
  c->creq.data = c;
  int rc = uv_tcp_connect(&c->creq, c->up, (struct sockaddr *)&c->addrs[c->addr_i], on_connect);
  if (rc < 0) {
    np_handle_close(c, (uv_handle_t *)c->up);
    c->up = NULL;
    finish(c, done, rc);
  }
}

static void connect_timeout(np_conn *c) {
  np_dial_abort(c);
  np_dialed_fn done = c->dial_done;
  if (c->up) {
    np_handle_close(c, (uv_handle_t *)c->up);
    c->up = NULL;
  }
  done(c, -ETIMEDOUT);
}

static void start_connect(np_conn *c, np_dialed_fn done) {
  c->addr_i = 0;
  c->dial_done = done;
  np_timer_set(c, NETPROXY_CONNECT_TIMEOUT_MS, connect_timeout);
  try_next(c, done);
}

/* Keep the checked addresses; refuse the lot if one is local. */
static int take_addrs(np_conn *c, const struct addrinfo *ai) {
  const netproxy_policy *p = np_policy(c);
  c->naddrs = 0;
  for (; ai; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
      continue;
    if (!p->allow_local_binding && !c->host_listed_exactly && np_addr_non_public(ai->ai_addr))
      return -EACCES;
    if (c->naddrs < sizeof c->addrs / sizeof c->addrs[0]) {
      memset(&c->addrs[c->naddrs], 0, sizeof c->addrs[0]);
      memcpy(&c->addrs[c->naddrs], ai->ai_addr, ai->ai_addrlen);
      c->naddrs++;
    }
  }
  return c->naddrs ? 0 : -EHOSTUNREACH;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  np_dns *d = req->data;
  np_conn *c = d->c;
  if (!c) { /* abandoned */
    uv_freeaddrinfo(res);
    free(d);
    return;
  }
  c->dns = NULL;
  np_dialed_fn done = d->done;
  free(d);
  if (status < 0) {
    uv_freeaddrinfo(res);
    finish(c, done, status == UV_ECANCELED ? -ETIMEDOUT : -EHOSTUNREACH);
    return;
  }
  int rc = take_addrs(c, res);
  uv_freeaddrinfo(res);
  if (rc < 0) {
    finish(c, done, rc);
    return;
  }
  np_timer_stop(c);
  start_connect(c, done);
}

static void dns_timeout(np_conn *c) {
  np_dialed_fn done = c->dns ? c->dns->done : c->dial_done;
  np_dial_abort(c);
  done(c, -ETIMEDOUT);
}

void np_dial(np_conn *c, np_dialed_fn done) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_NUMERICSERV};
  char port[8];
  snprintf(port, sizeof port, "%u", c->port);
  c->dial_done = done;
  if (np_host_is_ip(c->host)) {
    hints.ai_flags |= AI_NUMERICHOST;
    struct addrinfo *res = NULL;
    char host[NETPROXY_MAX_HOST + 1];
    snprintf(host, sizeof host, "%s", c->host);
    int rc = getaddrinfo(host, port, &hints, &res); /* numeric: no lookup, no blocking */
    if (rc != 0) {
      finish(c, done, -EINVAL);
      return;
    }
    rc = take_addrs(c, res);
    freeaddrinfo(res);
    if (rc < 0) {
      finish(c, done, rc);
      return;
    }
    start_connect(c, done);
    return;
  }
  np_dns *d = calloc(1, sizeof *d);
  if (!d) {
    finish(c, done, -ENOMEM);
    return;
  }
  d->c = c;
  d->done = done;
  d->req.data = d;
  c->dns = d;
  np_timer_set(c, NETPROXY_DNS_TIMEOUT_MS, dns_timeout);
  int rc = uv_getaddrinfo(np_loop(c), &d->req, on_resolved, c->host, port, &hints);
  if (rc < 0) {
    c->dns = NULL;
    free(d);
    finish(c, done, rc);
  }
}

void np_dial_abort(np_conn *c) {
  if (c->dns) {
    c->dns->c = NULL; /* its callback frees it */
    uv_cancel((uv_req_t *)&c->dns->req);
    c->dns = NULL;
  }
}
