/* SOCKS5 (RFC 1928), no authentication: CONNECT to an IPv4, IPv6 or domain
 * name target, decided like any other request (protocol socks5Tcp). A
 * refusal is reply 0x02 ("connection not allowed by ruleset"); BIND is
 * answered 0x07 (command not supported). UDP ASSOCIATE: udp.c. The parsing
 * (greeting, request, a UDP datagram's header) is pure, bytes in and a
 * result out (np_int.h), so tests/fuzz/fuzz_socks5.c drives it alone. */
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

/* ---- parsing, pure ---- */

int np_socks_greeting(const uint8_t *b, size_t len, size_t *used, bool *noauth) {
  if (len < 2 || len < 2 + (size_t)b[1])
    return NP_SOCKS_MORE;
  *used = 2 + (size_t)b[1];
  *noauth = memchr(b + 2, 0, b[1]) != NULL;
  return 0;
}

/* The address at b (type atyp, at least its length there): its length
 * with the port, or 0 for an unknown type. */
static size_t addr_len(const uint8_t *b, uint8_t atyp) {
  switch (atyp) {
  case 1: return 4 + 2;
  case 4: return 16 + 2;
  case 3: return 1 + (size_t)b[0] + 2;
  default: return 0;
  }
}

/* The address (at b, of a length addr_len checked) as a host and port;
 * normalize: names and IPv4 go through np_host_normalize (an IPv6 literal
 * is inet_ntop's already). 0, or -EINVAL. */
static int addr_host(const uint8_t *b, uint8_t atyp, bool normalize, char *host, size_t n,
                     uint16_t *port) {
  char raw[NETPROXY_MAX_HOST + 1];
  size_t al = addr_len(b, atyp);
  if (atyp == 1)
    inet_ntop(AF_INET, b, raw, sizeof raw);
  else if (atyp == 4)
    inet_ntop(AF_INET6, b, raw, sizeof raw);
  else if (memchr(b + 1, 0, b[0]))
    return -EINVAL; /* a NUL would cut the name short: no host of the one sent */
  else {
    memcpy(raw, b + 1, b[0]);
    raw[b[0]] = 0;
  }
  *port = (uint16_t)(b[al - 2] << 8 | b[al - 1]);
  if (atyp == 4 && !normalize)
    return snprintf(host, n, "%s", raw) < 0 ? -EINVAL : 0;
  return np_host_normalize(raw, strlen(raw), host, n) < 0 ? -EINVAL : 0;
}

int np_socks_request(const uint8_t *b, size_t len, np_socks_req *r) {
  memset(r, 0, sizeof *r);
  if (len < 5)
    return NP_SOCKS_MORE;
  if (b[0] != 5)
    return -EPROTO;
  r->cmd = b[1];
  size_t al = addr_len(b + 4, b[3]);
  if (!al) {
    r->used = 4;
    r->rep = REP_ATYP;
    return 0;
  }
  if (len < 4 + al)
    return NP_SOCKS_MORE;
  r->used = 4 + al;
  if (b[1] == 3)
    return 0; /* UDP ASSOCIATE: the address the client will send from is not used */
  if (b[1] != 1) {
    r->rep = REP_CMD; /* BIND */
    return 0;
  }
  if (addr_host(b + 4, b[3], false, r->host, sizeof r->host, &r->port) < 0 || r->port == 0)
    r->rep = REP_HOST_UNREACH;
  return 0;
}

int np_socks_udp_header(const uint8_t *b, size_t n, char *host, size_t hostlen, uint16_t *port,
                        size_t *hl) {
  if (n < 4 || b[0] || b[1] || b[2]) /* RSV RSV FRAG: fragments are dropped */
    return -EINVAL;
  if (b[3] == 3 && n < 5)
    return -EINVAL;
  size_t al = addr_len(b + 4, b[3]);
  if (!al || n < 4 + al)
    return -EINVAL;
  if (addr_host(b + 4, b[3], true, host, hostlen, port) < 0 || *port == 0)
    return -EINVAL;
  *hl = 4 + al;
  return 0;
}

/* ---- the handshake ---- */

static void request(np_conn *c) {
  np_socks_req r;
  int rc = np_socks_request((const uint8_t *)c->in + c->in_used, c->in_len - c->in_used, &r);
  if (rc == NP_SOCKS_MORE)
    return;
  if (rc < 0) {
    np_conn_close(c);
    return;
  }
  if (r.rep == REP_ATYP || r.rep == REP_CMD) {
    reply(c, r.rep, true);
    return;
  }
  c->in_used += r.used;
  if (r.cmd == 3) {
    udp_associate(c);
    return;
  }
  c->proto = NETPROXY_SOCKS5_TCP;
  c->method[0] = 0;
  if (r.rep) {
    reply(c, r.rep, true);
    return;
  }
  memcpy(c->host, r.host, sizeof c->host);
  c->port = r.port;
  c->state = S_DECIDING;
  uv_read_stop((uv_stream_t *)c->client);
  np_timer_stop(c);
  np_decide(c, decided);
}

static void step(np_conn *c) {
  if (c->state == S_GREET) {
    size_t used;
    bool noauth;
    if (np_socks_greeting((const uint8_t *)c->in, c->in_len, &used, &noauth) == NP_SOCKS_MORE)
      return;
    if (!noauth) { /* no "no authentication" offered */
      c->state = S_DONE;
      np_write(c, c->client, "\x05\xff", 2, true);
      return;
    }
    c->in_used = used;
    c->state = S_REQUEST;
    if (np_write(c, c->client, "\x05\x00", 2, false) < 0)
      return;
  }
  if (c->state == S_REQUEST)
    request(c);
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
