/* libFuzzer target: the SOCKS5 parsers of the egress proxy
 * (server/netproxy/socks5.c): the greeting and the request of the
 * handshake, and the header of a UDP ASSOCIATE datagram.
 *
 * Input: byte 0 picks what the rest is: even, a handshake as a client
 * sends it (greeting, request, then data for the tunnel); odd, one
 * datagram from the client to the UDP relay. Checked, besides the
 * sanitizers:
 * - nothing is ever said to be used past the bytes given;
 * - the parsers are fed as the connection feeds them (the bytes so far,
 *   after every read): every prefix of a message is "more", every longer
 *   input gives the same result, and an accepted greeting or request ends
 *   exactly where it was complete (not a byte of the tunnel's data taken);
 * - a CONNECT's host is the address sent: the dotted quad or the IPv6
 *   literal of its bytes, or the name normalised; it is normalised and its
 *   port is not 0; a refusal is one of the replies the RFC has for it;
 * - a datagram's header gives the host and port the same address gives in
 *   a CONNECT request, and its payload starts right after the address.
 */
#include "server/netproxy/np_int.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what, const uint8_t *d, size_t n) {
  fprintf(stderr, "fuzz_socks5: %s (%zu bytes:", what, n);
  for (size_t i = 0; i < n && i < 64; i++)
    fprintf(stderr, " %02x", d[i]);
  fprintf(stderr, ")\n");
  abort();
}

static void check_greeting(const uint8_t *d, size_t n, size_t *end) {
  size_t used = 0, first = 0;
  bool noauth = false, done = false;
  for (size_t k = 0; k <= n; k++) {
    size_t u = 0;
    bool na = false;
    int rc = np_socks_greeting(d, k, &u, &na);
    if (rc == NP_SOCKS_MORE) {
      if (done)
        fail("greeting: more bytes wanted after it was complete", d, n);
      continue;
    }
    if (rc != 0 || u > k)
      fail("greeting: used past the bytes given", d, n);
    if (!done) {
      done = true;
      first = k;
      used = u;
      noauth = na;
    } else if (u != used || na != noauth) {
      fail("greeting: a longer input changed the result", d, n);
    }
  }
  if (done && first != used)
    fail("greeting: complete before (or after) its last byte", d, n);
  *end = done ? used : n + 1;
}

static bool same_req(const np_socks_req *a, const np_socks_req *b) {
  return a->used == b->used && a->cmd == b->cmd && a->rep == b->rep && a->port == b->port &&
         strcmp(a->host, b->host) == 0;
}

/* The host the address bytes at a (type atyp) name, as a CONNECT should
 * report it; false when none. */
static bool expected_host(const uint8_t *a, uint8_t atyp, char *out, size_t n) {
  char raw[NETPROXY_MAX_HOST + 1];
  if (atyp == 1)
    return inet_ntop(AF_INET, a, out, (socklen_t)n) != NULL;
  if (atyp == 4)
    return inet_ntop(AF_INET6, a, out, (socklen_t)n) != NULL;
  memcpy(raw, a + 1, a[0]);
  return np_host_normalize(raw, a[0], out, n) == 0;
}

static void check_connect(const np_socks_req *r, const uint8_t *d, size_t n) {
  char want[NETPROXY_MAX_HOST + 1], again[NETPROXY_MAX_HOST + 1];
  bool valid = expected_host(d + 4, d[3], want, sizeof want);
  uint16_t port = (uint16_t)(d[r->used - 2] << 8 | d[r->used - 1]);
  if (r->rep == 0) {
    if (!valid || strcmp(r->host, want) != 0)
      fail("CONNECT: the host is not the address sent", d, n);
    if (np_host_normalize(r->host, strlen(r->host), again, sizeof again) < 0 ||
        strcmp(again, r->host) != 0)
      fail("CONNECT: the host is not normalised", d, n);
    if (r->port == 0 || r->port != port)
      fail("CONNECT: the port is not the one sent, or 0", d, n);
  } else if (r->rep != 4 || (valid && port != 0)) {
    fail("CONNECT: refused with the wrong reply", d, n);
  }
}

static void check_request(const uint8_t *d, size_t n) {
  np_socks_req whole, r;
  int wrc = np_socks_request(d, n, &whole);
  size_t first = 0;
  bool done = false;
  for (size_t k = 0; k <= n; k++) {
    int rc = np_socks_request(d, k, &r);
    if (rc == NP_SOCKS_MORE) {
      if (done)
        fail("request: more bytes wanted after it was complete", d, n);
      continue;
    }
    if (rc == 0 && r.used > k)
      fail("request: used past the bytes given", d, n);
    if (rc != wrc || (rc == 0 && !same_req(&r, &whole)))
      fail("request: a longer input changed the result", d, n);
    if (!done) {
      done = true;
      first = k;
    }
  }
  if (wrc == NP_SOCKS_MORE || wrc < 0) {
    if (wrc < 0 && (wrc != -EPROTO || d[0] == 5))
      fail("request: refused as no SOCKS5 though it is", d, n);
    return;
  }
  if (whole.rep != 0 && whole.rep != 4 && whole.rep != 7 && whole.rep != 8)
    fail("request: a reply that is none of this request's", d, n);
  if (whole.rep == 8 && (d[3] == 1 || d[3] == 3 || d[3] == 4))
    fail("request: a known address type refused", d, n);
  if (whole.rep == 7 && (whole.cmd == 1 || whole.cmd == 3))
    fail("request: a supported command refused", d, n);
  if (whole.rep == 8)
    return;
  if (first != whole.used)
    fail("request: complete before (or after) its last byte", d, n);
  if (whole.cmd == 1)
    check_connect(&whole, d, n);
}

static void check_datagram(const uint8_t *d, size_t n) {
  char host[NETPROXY_MAX_HOST + 1];
  uint16_t port = 0;
  size_t hl = 0;
  if (np_socks_udp_header(d, n, host, sizeof host, &port, &hl) < 0)
    return;
  if (hl > n || n < 4 || d[0] || d[1] || d[2])
    fail("datagram: header past the bytes, or a fragment accepted", d, n);
  /* the same address in a CONNECT request */
  uint8_t req[4 + 1 + 255 + 2] = {5, 1, 0};
  memcpy(req + 3, d + 3, hl - 3);
  np_socks_req r;
  if (np_socks_request(req, hl, &r) != 0 || r.used != hl)
    fail("datagram: a header whose address no request would take", d, n);
  char want[NETPROXY_MAX_HOST + 1];
  if (r.rep != 0 || np_host_normalize(r.host, strlen(r.host), want, sizeof want) < 0 ||
      strcmp(want, host) != 0 || r.port != port)
    fail("datagram: another host or port than the same address in a request", d, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  const uint8_t *d = data + 1;
  size_t n = size - 1;
  if (data[0] & 1) {
    check_datagram(d, n);
    return 0;
  }
  size_t g;
  check_greeting(d, n, &g);
  if (g <= n)
    check_request(d + g, n - g);
  return 0;
}
