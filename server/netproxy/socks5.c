/* SOCKS5 (RFC 1928), no authentication: CONNECT to an IPv4, IPv6 or domain
 * name target, decided like any other request (protocol socks5Tcp). A
 * refusal is reply 0x02 ("connection not allowed by ruleset"); BIND is
 * answered 0x07 (command not supported). UDP ASSOCIATE: udp.c. */
#include "server/netproxy/np_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define NP_SOCKS_MAX_HANDSHAKE 600 /* greeting (2+255) plus request (4+1+255+2) */

enum { S_GREET = 0, S_REQUEST, S_DECIDING, S_DONE };

enum {
  REP_OK = 0,
  REP_FAIL = 1,
  REP_RULESET = 2,
  REP_NET_UNREACH = 3,
  REP_HOST_UNREACH = 4,
  REP_REFUSED = 5,
  REP_TTL = 6,
  REP_CMD = 7,
  REP_ATYP = 8
};

static void reply(np_conn *c, int rep, bool then_close) {
  char r[10] = {5, (char)rep, 0, 1, 0, 0, 0, 0, 0, 0};
  c->state = S_DONE;
  np_write(c, c->client, r, sizeof r, then_close);
}

static void dialed(np_conn *c, int err) {
  if (c->dead)
    return;
  if (err == -EACCES) {
    np_report(c, NETPROXY_DENY, "not_allowed_local", "baseline_policy");
    reply(c, REP_RULESET, true);
    return;
  }
  if (err < 0) {
    reply(c, err == -ETIMEDOUT ? REP_TTL
             : err == UV_ECONNREFUSED ? REP_REFUSED
             : err == -EHOSTUNREACH ? REP_HOST_UNREACH
                                    : REP_FAIL,
          true);
    return;
  }
  np_report(c, NETPROXY_ALLOW, "allowed", c->host_listed_exactly ? "baseline_policy" : "baseline_policy");
  /* Bound address: the upstream socket's local address. */
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  char r[22] = {5, 0, 0, 1};
  size_t n = 10;
  if (uv_tcp_getsockname(c->up, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET6) {
    r[3] = 4;
    memcpy(r + 4, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    memcpy(r + 20, &((struct sockaddr_in6 *)&ss)->sin6_port, 2);
    n = 22;
  } else if (ss.ss_family == AF_INET) {
    memcpy(r + 4, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    memcpy(r + 8, &((struct sockaddr_in *)&ss)->sin_port, 2);
  }
  c->state = S_DONE;
  np_relay_start(c, r, n);
}

static void decided(np_conn *c, netproxy_verdict v, const char *reason, const char *source) {
  if (c->dead)
    return;
  if (v != NETPROXY_ALLOW) {
    np_report(c, NETPROXY_DENY, reason, source);
    reply(c, REP_RULESET, true);
    return;
  }
  np_dial(c, dialed);
}

/* UDP ASSOCIATE: a relay next to the listener, for as long as this
 * connection stays open (udp.c). */
static void udp_associate(np_conn *c) {
  if (!c->udp_ok) {
    reply(c, REP_CMD, true);
    return;
  }
  if (np_policy(c)->limited) {
    snprintf(c->host, sizeof c->host, "*");
    c->port = 0;
    c->proto = NETPROXY_SOCKS5_UDP;
    c->method[0] = 0;
    np_report(c, NETPROXY_DENY, "method_not_allowed", "mode_guard");
    reply(c, REP_RULESET, true);
    return;
  }
  struct sockaddr_storage ss;
  if (np_udp_open(c, &ss) < 0) {
    reply(c, REP_FAIL, true);
    return;
  }
  char r[22] = {5, 0, 0, 1};
  size_t n = 10;
  if (ss.ss_family == AF_INET6) {
    r[3] = 4;
    memcpy(r + 4, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    memcpy(r + 20, &((struct sockaddr_in6 *)&ss)->sin6_port, 2);
    n = 22;
  } else {
    memcpy(r + 4, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    memcpy(r + 8, &((struct sockaddr_in *)&ss)->sin_port, 2);
  }
  c->state = S_DONE;
  np_timer_stop(c);
  np_write(c, c->client, r, n, false); /* the control connection stays open */
}

/* 0 handled, 1 need more bytes. */
static int parse_request(np_conn *c) {
  const unsigned char *b = (const unsigned char *)c->in + c->in_used;
  size_t len = c->in_len - c->in_used;
  if (len < 5)
    return 1;
  if (b[0] != 5) {
    np_conn_close(c);
    return 0;
  }
  size_t need;
  switch (b[3]) {
  case 1: need = 4 + 4 + 2; break;
  case 4: need = 4 + 16 + 2; break;
  case 3: need = 4 + 1 + (size_t)b[4] + 2; break;
  default:
    reply(c, REP_ATYP, true);
    return 0;
  }
  if (len < need)
    return 1;
  if (b[1] == 3) {
    c->in_used += need;
    udp_associate(c);
    return 0;
  }
  if (b[1] != 1) { /* BIND */
    reply(c, REP_CMD, true);
    return 0;
  }
  char host[NETPROXY_MAX_HOST + 1];
  if (b[3] == 1)
    inet_ntop(AF_INET, b + 4, host, sizeof host);
  else if (b[3] == 4)
    inet_ntop(AF_INET6, b + 4, host, sizeof host);
  else {
    memcpy(host, b + 5, b[4]);
    host[b[4]] = 0;
  }
  c->port = (uint16_t)(b[need - 2] << 8 | b[need - 1]);
  c->in_used += need;
  c->proto = NETPROXY_SOCKS5_TCP;
  c->method[0] = 0;
  if (b[3] == 4 ? snprintf(c->host, sizeof c->host, "%s", host) < 0
                : np_host_normalize(host, strlen(host), c->host, sizeof c->host) < 0) {
    reply(c, REP_HOST_UNREACH, true);
    return 0;
  }
  if (c->port == 0) {
    reply(c, REP_HOST_UNREACH, true);
    return 0;
  }
  c->state = S_DECIDING;
  uv_read_stop((uv_stream_t *)c->client);
  np_timer_stop(c);
  np_decide(c, decided);
  return 0;
}

static void step(np_conn *c) {
  if (c->state == S_GREET) {
    const unsigned char *b = (const unsigned char *)c->in;
    if (c->in_len < 2 || c->in_len < 2 + (size_t)b[1])
      return;
    size_t need = 2 + (size_t)b[1];
    if (!memchr(b + 2, 0, b[1])) { /* no "no authentication" offered */
      c->state = S_DONE;
      np_write(c, c->client, "\x05\xff", 2, true);
      return;
    }
    c->in_used = need;
    c->state = S_REQUEST;
    if (np_write(c, c->client, "\x05\x00", 2, false) < 0)
      return;
  }
  if (c->state == S_REQUEST)
    parse_request(c);
}

void np_socks_start(np_conn *c) {
  c->state = S_GREET;
  step(c);
}

void np_socks_on_read(np_conn *c) {
  if (c->in_len > NP_SOCKS_MAX_HANDSHAKE) {
    np_conn_close(c);
    return;
  }
  if (c->state == S_GREET || c->state == S_REQUEST)
    step(c);
}
