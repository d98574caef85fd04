/* Approval keys: host normalisation, protocol and decision names. */
#include "server/approvals/approvals.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const proto_names[APPROVAL_PROTO_COUNT] = {"http", "https", "socks5Tcp",
                                                               "socks5Udp"};

const char *approval_proto_name(approval_proto p) {
  return (unsigned)p < APPROVAL_PROTO_COUNT ? proto_names[p] : "?";
}

int approval_proto_parse(const char *s, approval_proto *out) {
  for (unsigned i = 0; s && i < APPROVAL_PROTO_COUNT; i++) {
    if (strcmp(s, proto_names[i]) == 0) {
      *out = (approval_proto)i;
      return 0;
    }
  }
  return -EINVAL;
}

static const char *const decision_names[] = {"allowOnce", "allowForSession", "allowAlways",
                                             "deny", "denyAlways"};

const char *approval_decision_name(approval_decision d) {
  return (unsigned)d <= APPROVAL_DENY_ALWAYS ? decision_names[d] : "deny";
}

int approval_decision_parse(const char *s, approval_decision *out) {
  for (unsigned i = 0; s && i <= APPROVAL_DENY_ALWAYS; i++) {
    if (strcmp(s, decision_names[i]) == 0) {
      *out = (approval_decision)i;
      return 0;
    }
  }
  return -EINVAL;
}

bool approval_decision_allows(approval_decision d) {
  return d == APPROVAL_ALLOW_ONCE || d == APPROVAL_ALLOW_SESSION || d == APPROVAL_ALLOW_ALWAYS;
}

static int fail(const char **why, const char *msg) {
  if (why)
    *why = msg;
  return -EINVAL;
}

static bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

int approval_host_normalize(const char *host, char *out, size_t outlen, const char **why) {
  if (!host || !*host)
    return fail(why, "empty host");
  size_t n = strlen(host);
  if (strchr(host, '*'))
    return fail(why, "wildcards are not allowed: a rule names one exact host");
  char buf[APPROVALS_HOST_MAX + 2];
  if (host[0] == '[') {
    /* [v6]: only an IPv6 literal may be bracketed. */
    if (n < 3 || host[n - 1] != ']')
      return fail(why, "unbalanced '[' in host");
    if (n - 2 >= sizeof buf)
      return fail(why, "host too long");
    memcpy(buf, host + 1, n - 2);
    buf[n - 2] = '\0';
    struct in6_addr a6;
    if (inet_pton(AF_INET6, buf, &a6) != 1)
      return fail(why, "bracketed host is not an IPv6 address");
    if (!inet_ntop(AF_INET6, &a6, out, (socklen_t)outlen))
      return fail(why, "host too long");
    return 0;
  }
  if (n > APPROVALS_HOST_MAX + 1)
    return fail(why, "host too long (at most 253 bytes)");
  for (size_t i = 0; i <= n; i++)
    buf[i] = (host[i] >= 'A' && host[i] <= 'Z') ? (char)(host[i] - 'A' + 'a') : host[i];
  if (strchr(buf, ':')) {
    struct in6_addr a6;
    if (inet_pton(AF_INET6, buf, &a6) != 1)
      return fail(why, "host with ':' is not an IPv6 address (give the port separately)");
    if (!inet_ntop(AF_INET6, &a6, out, (socklen_t)outlen))
      return fail(why, "host too long");
    return 0;
  }
  if (n > 1 && buf[n - 1] == '.')
    buf[--n] = '\0';
  if (n > APPROVALS_HOST_MAX)
    return fail(why, "host too long (at most 253 bytes)");
  for (size_t i = 0; i < n; i++) {
    if (!name_char(buf[i]))
      return fail(why, "host has a character that is not allowed in a host name");
    if (buf[i] == '.' && (i == 0 || buf[i + 1] == '.' || buf[i + 1] == '\0'))
      return fail(why, "host has an empty label");
  }
  /* Numeric IPv4 forms the resolver accepts (127.1, 0x7f.0.0.1) are one
   * address: key them by the canonical dotted quad. */
  struct in_addr a4;
  if (inet_aton(buf, &a4) == 1) {
    if (!inet_ntop(AF_INET, &a4, out, (socklen_t)outlen))
      return fail(why, "host too long");
    return 0;
  }
  if (n + 1 > outlen)
    return fail(why, "host too long");
  memcpy(out, buf, n + 1);
  return 0;
}

int approval_key_make(const char *host, approval_proto proto, unsigned port, approval_key *out,
                      const char **why) {
  memset(out, 0, sizeof *out);
  if ((unsigned)proto >= APPROVAL_PROTO_COUNT)
    return fail(why, "unknown protocol");
  if (port < 1 || port > 65535)
    return fail(why, "port must be 1..65535");
  int rc = approval_host_normalize(host, out->host, sizeof out->host, why);
  if (rc < 0)
    return rc;
  out->proto = proto;
  out->port = (uint16_t)port;
  return 0;
}

bool approval_key_equal(const approval_key *a, const approval_key *b) {
  return a->proto == b->proto && a->port == b->port && strcmp(a->host, b->host) == 0;
}
