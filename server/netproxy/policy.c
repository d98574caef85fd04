/* Domain policy: host normalisation, patterns, private ranges, the baseline
 * decision. Pure: no I/O. */
#include "server/netproxy/np_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool parse_ip(const char *host, struct sockaddr_storage *ss);

/* ":digits" at p[0..n) */
static bool port_suffix(const char *p, size_t n) {
  if (n < 2 || p[0] != ':')
    return false;
  for (size_t i = 1; i < n; i++)
    if (!isdigit((unsigned char)p[i]))
      return false;
  return true;
}

int np_host_normalize(const char *in, size_t len, char *out, size_t outlen) {
  while (len && isspace((unsigned char)*in))
    in++, len--;
  while (len && isspace((unsigned char)in[len - 1]))
    len--;
  bool bracketed = len && in[0] == '[';
  if (bracketed) {
    const char *end = memchr(in, ']', len);
    if (!end)
      return -EINVAL;
    size_t rest = len - (size_t)(end + 1 - in); /* after the literal: nothing or a port */
    if (rest && !port_suffix(end + 1, rest))
      return -EINVAL;
    in++;
    len = (size_t)(end - in);
  } else {
    const char *colon = memchr(in, ':', len);
    size_t rest = colon ? len - (size_t)(colon - in) : 0;
    if (colon && !memchr(colon + 1, ':', rest - 1)) {
      /* host:port (a bare v6 literal has several colons) */
      if (!port_suffix(colon, rest))
        return -EINVAL;
      len = (size_t)(colon - in);
    }
  }
  /* '%' only as the zone separator of an IPv6 literal (one, written "%25"
   * in a URL), and a zone not starting with "25" once unescaped: written
   * "%" here, the result normalises to itself. */
  const char *pct = memchr(in, '%', len);
  if (pct && (!memchr(in, ':', len) || memchr(pct + 1, '%', len - (size_t)(pct + 1 - in))))
    return -EINVAL;
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)in[i];
    if (ch == '%' && i + 2 < len && in[i + 1] == '2' && in[i + 2] == '5')
      i += 2; /* "%25" zone separator */
    if (ch == '%' && i + 2 < len && in[i + 1] == '2' && in[i + 2] == '5')
      return -EINVAL; /* a zone "25...": ambiguous with the escaped separator */
    if (ch <= ' ' || ch >= 0x7f || strchr("/\\?#@\"'<>`{}|^[]", ch))
      return -EINVAL;
    if (o + 1 >= outlen)
      return -EINVAL;
    out[o++] = (char)tolower(ch);
  }
  while (o && out[o - 1] == '.')
    o--;
  out[o] = 0;
  if (!o)
    return -EINVAL;
  /* Colons (bracketed or not) belong to an IPv6 literal and nothing else:
   * "[a:b]" is no host (as a name, its one colon would read as host:port),
   * nor "a::b.c". A name has no empty label. */
  struct sockaddr_storage ss;
  bool colons = bracketed || strchr(out, ':');
  if (colons && (!parse_ip(out, &ss) || ss.ss_family != AF_INET6))
    return -EINVAL;
  if (!colons && (out[0] == '.' || strstr(out, "..")))
    return -EINVAL;
  return 0;
}

static bool parse_ip(const char *host, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    return true;
  }
  char tmp[INET6_ADDRSTRLEN + 32];
  snprintf(tmp, sizeof tmp, "%s", host);
  char *zone = strchr(tmp, '%');
  if (zone)
    *zone = 0;
  if (inet_pton(AF_INET6, tmp, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    return true;
  }
  return false;
}

bool np_host_is_ip(const char *host) {
  struct sockaddr_storage ss;
  return parse_ip(host, &ss);
}

static bool v4_non_public(uint32_t a) {
  static const struct {
    uint32_t net;
    int bits;
  } r[] = {
      {0x00000000, 8},  {0x0a000000, 8},  {0x7f000000, 8},  {0x64400000, 10}, {0xa9fe0000, 16},
      {0xac100000, 12}, {0xc0000000, 24}, {0xc0000200, 24}, {0xc0a80000, 16}, {0xc6120000, 15},
      {0xc6336400, 24}, {0xcb007100, 24}, {0xe0000000, 4},  {0xf0000000, 4},
  };
  for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
    if ((a & (0xffffffffu << (32 - r[i].bits))) == r[i].net)
      return true;
  return false; /* 255.255.255.255 is inside 240/4 */
}

bool np_addr_non_public(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET)
    return v4_non_public(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
  if (sa->sa_family != AF_INET6)
    return true;
  const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
  static const uint8_t zero[16];
  if (memcmp(b, zero, 15) == 0 && (b[15] == 0 || b[15] == 1))
    return true; /* :: and ::1 */
  if (b[0] == 0xff || (b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80))
    return true; /* multicast, unique local, link-local */
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (memcmp(b, mapped, 12) == 0 || memcmp(b, zero, 12) == 0) /* ::ffff:a.b.c.d, ::a.b.c.d */
    return v4_non_public((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 |
                         b[15]);
  return false;
}

bool np_host_local_literal(const char *host) {
  if (strcmp(host, "localhost") == 0)
    return true;
  size_t n = strlen(host);
  if (n > 10 && strcmp(host + n - 10, ".localhost") == 0)
    return true;
  struct sockaddr_storage ss;
  return parse_ip(host, &ss) && np_addr_non_public((struct sockaddr *)&ss);
}

/* A pattern normalised: the "*." or "**." prefix kept, the rest a host. */
static int pattern_normalize(const char *pat, char *out, size_t outlen) {
  const char *prefix = "";
  if (strncmp(pat, "**.", 3) == 0)
    prefix = "**.", pat += 3;
  else if (strncmp(pat, "*.", 2) == 0)
    prefix = "*.", pat += 2;
  else if (strcmp(pat, "*") == 0 || strcmp(pat, "[*]") == 0) {
    snprintf(out, outlen, "*");
    return 0;
  }
  size_t pl = strlen(prefix);
  if (pl >= outlen)
    return -EINVAL;
  memcpy(out, prefix, pl);
  return np_host_normalize(pat, strlen(pat), out + pl, outlen - pl);
}

static bool match_one(const char *pat, const char *host) {
  char p[NETPROXY_MAX_HOST + 8];
  if (pattern_normalize(pat, p, sizeof p) < 0)
    return false;
  if (strcmp(p, "*") == 0)
    return true;
  size_t hl = strlen(host);
  if (strncmp(p, "**.", 3) == 0 || strncmp(p, "*.", 2) == 0) {
    bool apex = p[1] == '*';
    const char *d = p + (apex ? 3 : 2);
    size_t dl = strlen(d);
    if (apex && strcmp(host, d) == 0)
      return true;
    return hl > dl + 1 && host[hl - dl - 1] == '.' && strcmp(host + hl - dl, d) == 0;
  }
  if (strpbrk(p, "*?[")) /* a mid-label glob such as region*.example.com */
    return fnmatch(p, host, FNM_CASEFOLD) == 0;
  return strcmp(p, host) == 0;
}

static bool list_match(char *const *list, size_t n, const char *host) {
  for (size_t i = 0; i < n; i++)
    if (match_one(list[i], host))
      return true;
  return false;
}

bool np_policy_names_exactly(const netproxy_policy *p, const char *host) {
  for (size_t i = 0; i < p->n_allowed; i++) {
    char n[NETPROXY_MAX_HOST + 8];
    if (strpbrk(p->allowed[i], "*?") || pattern_normalize(p->allowed[i], n, sizeof n) < 0)
      continue;
    if (strcmp(n, host) == 0)
      return true;
  }
  return false;
}

np_baseline np_policy_eval(const netproxy_policy *p, const char *host) {
  if (list_match(p->denied, p->n_denied, host))
    return NP_BASE_DENIED;
  if (!p->allow_local_binding && np_host_local_literal(host) && !np_policy_names_exactly(p, host))
    return NP_BASE_LOCAL;
  if (!list_match(p->allowed, p->n_allowed, host))
    return NP_BASE_NOT_ALLOWED;
  return NP_BASE_ALLOW;
}

static int check_list(char *const *list, size_t n, const char *what, bool deny, char *err,
                      size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    char out[NETPROXY_MAX_HOST + 8];
    const char *pat = list[i];
    if (!pat || pattern_normalize(pat, out, sizeof out) < 0) {
      snprintf(err, errlen,
               "%s[%zu] \"%s\" is not a host pattern (use example.com, *.example.com, "
               "**.example.com or an IP literal)",
               what, i, pat ? pat : "");
      return -EINVAL;
    }
    if (deny && strcmp(out, "*") == 0) {
      snprintf(err, errlen,
               "%s[%zu] \"%s\": a global wildcard cannot be denied; use exact hosts or scoped "
               "wildcards like *.example.com or **.example.com",
               what, i, pat);
      return -EINVAL;
    }
  }
  return 0;
}

int netproxy_policy_check(const netproxy_policy *p, char *err, size_t errlen) {
  int rc = check_list(p->allowed, p->n_allowed, "allowedDomains", false, err, errlen);
  return rc < 0 ? rc : check_list(p->denied, p->n_denied, "deniedDomains", true, err, errlen);
}

static char **dup_list(char *const *src, size_t n) {
  char **out = calloc(n ? n : 1, sizeof *out);
  for (size_t i = 0; out && i < n; i++)
    if (!(out[i] = strdup(src[i]))) {
      while (i--)
        free(out[i]);
      free(out);
      return NULL;
    }
  return out;
}

void netproxy_policy_clear(netproxy_policy *p) {
  for (size_t i = 0; p->allowed && i < p->n_allowed; i++)
    free(p->allowed[i]);
  for (size_t i = 0; p->denied && i < p->n_denied; i++)
    free(p->denied[i]);
  free(p->allowed);
  free(p->denied);
  memset(p, 0, sizeof *p);
}

int np_policy_copy(netproxy_policy *dst, const netproxy_policy *src) {
  memset(dst, 0, sizeof *dst);
  dst->allowed = dup_list(src->allowed, src->n_allowed);
  dst->denied = dup_list(src->denied, src->n_denied);
  if (!dst->allowed || !dst->denied) {
    free(dst->allowed);
    free(dst->denied);
    return -ENOMEM;
  }
  dst->n_allowed = src->n_allowed;
  dst->n_denied = src->n_denied;
  dst->limited = src->limited;
  dst->allow_local_binding = src->allow_local_binding;
  return 0;
}
