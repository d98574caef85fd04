/* server/netproxy: the egress proxy on the server's libuv loop.
 *
 * Listeners arrive two ways: the sockets a proxy-mode sandbox bound on
 * 127.0.0.1 inside its own network namespace (handed over by the supervisor),
 * and `--proxy-listen HOST:PORT` on the host's loopback. Every listener speaks
 * both protocols: the first byte decides (0x05 is SOCKS5, anything else is
 * HTTP/1.x). Each listener carries an opaque owner (the handler's processId),
 * reported with every decision.
 *
 *   HTTP/1.1 forward proxy: absolute-form requests, keep-alive, bodies
 *   streamed both ways (Content-Length, chunked, read-until-close), hop-by-hop
 *   headers stripped after the policy check; CONNECT tunnels.
 *   SOCKS5 (no auth): CONNECT to IPv4, IPv6 and domain names; UDP
 *   ASSOCIATE (a policy check per datagram) on listeners warden bound itself.
 *   Tunnels are copied at first and spliced once they carry bulk.
 *
 * Every request is decided by the policy (policy.c): deny list, then local and
 * private literals, then the allow list. An allow-list miss asks the `on_ask`
 * hook, which may answer at once or later with netproxy_hold_resume(); the
 * connection waits (nothing more is read from it) until then. An allowed name
 * is resolved once (dial.c, with a timeout; a failed lookup fails closed),
 * every address is checked against the private ranges, and the proxy connects
 * only to an address it checked, so DNS rebinding cannot slip in between.
 *
 * Files: engine.c (listeners, connections), decide.c (decisions, holds,
 * history), policy.c, dial.c, http.c, http_head.c and http_msg.c, relay.c,
 * splice.c, socks5.c, udp.c.
 *
 * Errors: 0 or a negative errno. Ownership: the engine owns listeners,
 * connections and holds; strings in events are valid during the callback only.
 */
#ifndef WARDEN_NETPROXY_H
#define WARDEN_NETPROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* ---- limits (every one named) ---- */
#define NETPROXY_MAX_HEAD (32u * 1024)          /* request head, bytes: 431 past it */
#define NETPROXY_MAX_HEADERS 100                /* header lines per head: 431 past it */
#define NETPROXY_MAX_RESPONSE_HEAD (64u * 1024) /* upstream response head: 502 past it */
#define NETPROXY_HEAD_TIMEOUT_MS 10000          /* first byte to complete head: 408 */
#define NETPROXY_IDLE_TIMEOUT_MS 300000         /* tunnel or keep-alive with no traffic */
#define NETPROXY_DNS_TIMEOUT_MS 5000            /* name lookup: 504 */
#define NETPROXY_CONNECT_TIMEOUT_MS 10000       /* upstream connect: 504 */
#define NETPROXY_MAX_CONNS 1024                 /* open connections per listener owner */
#define NETPROXY_BUF (256u * 1024)              /* relay buffer per direction */
#define NETPROXY_MAX_HOST 255                   /* a DNS name */
#define NETPROXY_HISTORY 200                    /* refusals kept for netproxy_blocked_each */

typedef struct netproxy netproxy;
typedef struct netproxy_hold netproxy_hold;

typedef enum netproxy_protocol {
  NETPROXY_HTTP = 0,   /* plain request through the forward proxy */
  NETPROXY_HTTPS,      /* CONNECT tunnel */
  NETPROXY_SOCKS5_TCP, /* SOCKS5 CONNECT */
  NETPROXY_SOCKS5_UDP, /* SOCKS5 UDP ASSOCIATE datagram */
} netproxy_protocol;
const char *netproxy_protocol_name(netproxy_protocol p); /* http https socks5Tcp socks5Udp */

typedef enum netproxy_verdict { NETPROXY_ALLOW = 0, NETPROXY_DENY, NETPROXY_ASK } netproxy_verdict;
const char *netproxy_verdict_name(netproxy_verdict v); /* allow deny ask */

/* Reasons: "allowed", "denied" (deny list), "not_allowed" (allow-list miss),
 * "not_allowed_local" (local or private address), "method_not_allowed"
 * (limited mode). Sources: "baseline_policy", "mode_guard", "decider". */
typedef struct netproxy_event {
  int64_t timestamp_ms; /* unix ms */
  const char *host;     /* normalised */
  uint16_t port;
  netproxy_protocol protocol;
  const char *method; /* HTTP method, "CONNECT", or "" for SOCKS5 */
  netproxy_verdict decision;
  const char *reason;
  const char *source;
  void *owner; /* the listener's owner */
} netproxy_event;

/* The policy. Patterns: "example.com" exact, "*.example.com" subdomains only,
 * "**.example.com" apex and subdomains, "*" everything (allow list only), IP
 * literals and "[v6]". Case-insensitive, a trailing dot ignored. */
typedef struct netproxy_policy {
  char **allowed;
  size_t n_allowed;
  char **denied;
  size_t n_denied;
  bool limited;             /* only GET, HEAD and OPTIONS; no CONNECT, no SOCKS5 */
  bool allow_local_binding; /* local and private destinations allowed */
} netproxy_policy;

typedef struct netproxy_callbacks {
  void *ctx;
  /* Every decision: allow, deny and ask (an ask is followed by its outcome). */
  void (*on_decision)(void *ctx, const netproxy_event *ev);
  /* An allow-list miss: answer with netproxy_hold_resume(h, ...), now or
   * later. NULL: refused at once. */
  void (*on_ask)(void *ctx, netproxy_hold *h, const netproxy_event *ev);
  /* The client closed while held: h is gone after this returns (do not
   * resume it). */
  void (*on_hold_closed)(void *ctx, netproxy_hold *h);
} netproxy_callbacks;

typedef struct netproxy_opts {
  uint64_t head_timeout_ms; /* 0: NETPROXY_HEAD_TIMEOUT_MS */
  uint64_t idle_timeout_ms; /* 0: NETPROXY_IDLE_TIMEOUT_MS */
  unsigned max_conns;       /* 0: NETPROXY_MAX_CONNS */
} netproxy_opts;

int netproxy_new(uv_loop_t *loop, const netproxy_opts *opts, const netproxy_callbacks *cb,
                 netproxy **out);
/* Close every listener and connection (held ones are reported closed); the
 * memory goes once libuv has closed the handles (run the loop). NULL is fine. */
void netproxy_free(netproxy *np);

/* Serve an already bound and listening (or just bound) TCP socket; takes the
 * fd (closed on error too). owner is reported with every decision and
 * identifies the listener for netproxy_close_owner. */
int netproxy_listen_fd(netproxy *np, int fd, void *owner);
/* Bind HOST:PORT (an IP literal on loopback, or "localhost") and serve it.
 * port 0 picks one; the bound port is stored in *bound. */
int netproxy_listen_addr(netproxy *np, const char *host, int port, void *owner, int *bound);
/* Close the listeners of an owner and every connection they accepted. */
void netproxy_close_owner(netproxy *np, void *owner);

/* Validate a policy: 0, or -EINVAL with a message naming the bad entry. */
int netproxy_policy_check(const netproxy_policy *p, char *err, size_t errlen);
/* Replace the policy (copied) after checking it; open tunnels stay up, the
 * next request is decided under the new one. */
int netproxy_set_policy(netproxy *np, const netproxy_policy *p, char *err, size_t errlen);
const netproxy_policy *netproxy_get_policy(const netproxy *np);
void netproxy_policy_clear(netproxy_policy *p); /* frees the lists of a copy */

/* Resume a held request: allow connects (the address checks still apply),
 * deny answers the refusal with reason "not_allowed", source "decider". */
void netproxy_hold_resume(netproxy_hold *h, bool allow);
void *netproxy_hold_owner(const netproxy_hold *h);

/* Refusals, most recent first, at most `limit` (NETPROXY_HISTORY kept). */
void netproxy_blocked_each(const netproxy *np, size_t limit,
                           void (*fn)(void *arg, const netproxy_event *ev), void *arg);

/* Open connections (for tests and the benchmark's RSS view). */
size_t netproxy_conn_count(const netproxy *np);

#endif
