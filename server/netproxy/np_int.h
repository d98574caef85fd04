/* server/netproxy internals shared between its files. Not for outside use. */
#ifndef WARDEN_NP_INT_H
#define WARDEN_NP_INT_H

#include "server/netproxy/netproxy.h"

#include <http_parser.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* ---- policy.c ---- */
/* Normalise a host (with or without ":port"): brackets stripped,
 * lowercased, a trailing dot removed, "%25" zone written "%". 0, or -EINVAL
 * when empty, too long, holding bytes a host cannot hold or an empty label,
 * with colons (or brackets) but no IPv6 literal, or followed by anything
 * but ":digits". */
int np_host_normalize(const char *in, size_t len, char *out, size_t outlen);
bool np_host_is_ip(const char *host); /* normalised v4 or v6 literal */
bool np_addr_non_public(const struct sockaddr *sa);
bool np_host_local_literal(const char *host); /* localhost or a non-public literal */

typedef enum np_baseline {
  NP_BASE_ALLOW = 0,
  NP_BASE_DENIED,     /* deny list */
  NP_BASE_LOCAL,      /* local literal not named exactly */
  NP_BASE_NOT_ALLOWED /* allow-list miss */
} np_baseline;
np_baseline np_policy_eval(const netproxy_policy *p, const char *host);
/* The allow list names this literal exactly (no wildcard). */
bool np_policy_names_exactly(const netproxy_policy *p, const char *host);
int np_policy_copy(netproxy_policy *dst, const netproxy_policy *src);

/* ---- engine.c: connections ---- */
typedef struct np_listener np_listener;
typedef struct np_conn np_conn;

struct np_listener {
  uv_tcp_t tcp;
  netproxy *np;
  void *owner;
  np_listener *next;
  bool own_netns; /* bound by warden itself: UDP relays can live next to it */
};

typedef struct np_hist {
  netproxy_event ev;
  char host[NETPROXY_MAX_HOST + 1];
  char method[24];
} np_hist;

struct netproxy {
  uv_loop_t *loop;
  netproxy_opts opts;
  netproxy_callbacks cb;
  netproxy_policy policy;
  np_listener *listeners;
  np_conn *conns;
  size_t nconns;
  unsigned pending; /* listener handles being closed */
  bool closing;
  np_hist hist[NETPROXY_HISTORY];
  size_t hist_next, hist_n;
};

typedef enum np_kind { NP_KIND_SNIFF = 0, NP_KIND_HTTP, NP_KIND_SOCKS } np_kind;

/* Everything a connection owns is a malloc'd handle that closes into
 * np_handle_closed; the connection is freed when the last one is gone. */
typedef struct np_dir {
  uv_tcp_t *from, *to;
  char *buf;
  size_t len, cap;
  bool writing, eof, shut, full; /* full: the last read filled buf */
  uv_write_t wreq;
  uv_shutdown_t sreq;
} np_dir;

typedef struct np_span {
  uint32_t off, len;
} np_span;

typedef struct np_head {
  np_span url, status;
  np_span name[NETPROXY_MAX_HEADERS], value[NETPROXY_MAX_HEADERS];
  unsigned n;
  bool in_value, done, complete, too_many, head_sent;
  bool folded; /* a header line continued on the next (obs-fold): refused */
} np_head;

typedef void (*np_decided_fn)(np_conn *c, netproxy_verdict v, const char *reason,
                              const char *source);
struct netproxy_hold {
  np_conn *c;
  np_decided_fn done;
};

typedef struct np_dns np_dns;
typedef struct np_udp np_udp;
typedef struct np_splice np_splice;
typedef void (*np_dialed_fn)(np_conn *c, int err);

struct np_conn {
  netproxy *np;
  np_listener *l;
  void *owner;
  np_conn *prev, *next;
  unsigned handles; /* open libuv handles; freed at 0 once dead */
  bool dead;
  np_kind kind;
  uv_tcp_t *client;
  uv_tcp_t *up; /* upstream, NULL when none */
  uv_timer_t *timer;
  bool up_connected;
  /* the target being decided or dialled */
  char host[NETPROXY_MAX_HOST + 1];
  uint16_t port;
  netproxy_protocol proto;
  char method[24];
  bool host_listed_exactly;
  netproxy_hold *hold;
  np_dns *dns;
  struct sockaddr_storage addrs[16];
  unsigned naddrs, addr_i;
  uv_connect_t creq;
  np_dialed_fn dial_done;
  /* input from the client (HTTP heads and bodies, SOCKS5 handshake) */
  char *in;
  size_t in_len, in_cap, in_used;
  /* HTTP */
  http_parser reqp, resp;
  http_parser_settings *req_settings;
  np_head rq, rs;
  char *uin; /* upstream input while parsing a response */
  size_t uin_len, uin_used;
  char up_host[NETPROXY_MAX_HOST + 1]; /* the upstream connected to */
  uint16_t up_port;
  int state;
  bool req_keepalive, resp_close, head_request, req_done, resp_done, chunked_req,
      chunked_resp, resp_eof_body, writing_client, writing_up, client_eof;
  uv_write_t wc, wu;
  uv_buf_t *iov_c, *iov_u;
  unsigned niov_c, niov_u;
  char *scratch_c, *scratch_u; /* chunk-size lines */
  char *scratch_c_head;         /* the rebuilt response head being written */
  char *req_head;               /* the rebuilt request head */
  size_t req_head_len;
  const char *allow_source;
  bool up_eof, up_reading, head_timing;
  uv_shutdown_t linger;
  size_t scratch_c_len, scratch_u_len;
  /* tunnels */
  np_dir dir[2];
  /* SOCKS5 */
  uint8_t socks_atyp;
  bool udp_ok; /* the listener is in warden's own network namespace */
  np_udp *udp;
  np_splice *splice; /* a spliced tunnel owns the sockets */
  size_t relayed;    /* bytes the copying relay moved */
  bool splice_tried;
};

void np_conn_close(np_conn *c);
int np_client_read_start(np_conn *c);
uv_tcp_t *np_tcp_new(np_conn *c);
void np_handle_close(np_conn *c, uv_handle_t *h);
int np_write(np_conn *c, uv_tcp_t *to, const char *data, size_t len, bool then_close);
void np_timer_set(np_conn *c, uint64_t ms, void (*fn)(np_conn *c));
void np_timer_stop(np_conn *c);
uv_loop_t *np_loop(const np_conn *c);
uint64_t np_head_timeout(const np_conn *c);
uint64_t np_idle_timeout(const np_conn *c);

/* Decide c->host/port/proto/method; calls done(c, verdict, reason, source)
 * now or after an ask. done may be called before this returns. */
void np_decide(np_conn *c, np_decided_fn done);
/* Record a refusal or allowance (event and, for refusals, history). */
void np_report(np_conn *c, netproxy_verdict v, const char *reason, const char *source);
const netproxy_policy *np_policy(const np_conn *c);

/* ---- dial.c ---- */
/* Resolve (literal: no lookup), check every address, connect to the first
 * checked one that answers. done(c, 0) with c->up connected, or done(c, err)
 * where err is -EACCES (private address refused, c->host reported),
 * -ETIMEDOUT or another negative errno. */
void np_dial(np_conn *c, np_dialed_fn done);
void np_dial_abort(np_conn *c);

/* ---- relay.c ---- */
/* Send `answer` to the client (the CONNECT 200 or the SOCKS5 reply), then
 * relay both ways between c->client and c->up until both sides end; bytes
 * already read from the client (c->in[c->in_used..c->in_len]) go first.
 * Copied first; a tunnel that carries bulk moves to splice (splice.c). */
void np_relay_start(np_conn *c, const char *answer, size_t len);

/* ---- splice.c ---- */
int np_splice_start(np_conn *c);
void np_splice_close(np_splice *s);

/* ---- udp.c ---- */
/* Open the UDP relay of a SOCKS5 UDP ASSOCIATE next to c's listener. */
int np_udp_open(np_conn *c, struct sockaddr_storage *bound);
void np_udp_close(np_udp *u);

/* ---- socks5.c: parsing, pure (no I/O) ---- */
#define NP_SOCKS_MORE 1 /* a prefix: more bytes are needed */
/* The greeting (VER NMETHODS METHODS) at b[0..len): NP_SOCKS_MORE, or 0
 * with *used its length and *noauth whether "no authentication" is offered
 * (the version byte is the sniffer's). */
int np_socks_greeting(const uint8_t *b, size_t len, size_t *used, bool *noauth);

typedef struct np_socks_req {
  size_t used; /* the request's length (the bytes after it are the client's data) */
  uint8_t cmd; /* 1 CONNECT, 2 BIND, 3 UDP ASSOCIATE */
  uint8_t rep; /* 0, or the reply to refuse with: 0x07 command not supported,
                * 0x08 address type not supported, 0x04 host unreachable
                * (CONNECT to an invalid host, a name holding a NUL, or
                * port 0) */
  char host[NETPROXY_MAX_HOST + 1]; /* CONNECT: normalised */
  uint16_t port;
} np_socks_req;
/* The request (VER CMD RSV ATYP DST.ADDR DST.PORT) at b[0..len):
 * NP_SOCKS_MORE, -EPROTO when it is not version 5, or 0 with *r filled. */
int np_socks_request(const uint8_t *b, size_t len, np_socks_req *r);
/* The header of a UDP ASSOCIATE datagram (RSV RSV FRAG ATYP DST.ADDR
 * DST.PORT) at b[0..n): 0 with the normalised host, the port and *hl the
 * header's length (the payload follows), or -EINVAL for a datagram to drop
 * (short, fragmented, unknown address type, invalid host, port 0). */
int np_socks_udp_header(const uint8_t *b, size_t n, char *host, size_t hostlen, uint16_t *port,
                        size_t *hl);

/* ---- http.c / socks5.c ---- */
void np_http_start(np_conn *c);   /* first bytes are in c->in */
void np_http_on_read(np_conn *c); /* more bytes in c->in */
void np_socks_start(np_conn *c);
void np_socks_on_read(np_conn *c);

#endif
