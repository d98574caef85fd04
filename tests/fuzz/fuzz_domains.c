/* libFuzzer target: the egress proxy's domain policy (server/netproxy/
 * policy.c): host normalisation, the allow and deny patterns
 * (example.com, *.example.com, **.example.com, *, mid-label globs, IP
 * literals) and the baseline decision.
 *
 * Input: byte 0's low bit is allowLocalBinding; the rest is NUL-separated: a host as a request names it, then up to
 * FUZZ_PATTERNS_MAX patterns. Checked, besides the sanitizers:
 * - a normalised host normalises to itself and holds no upper case, no
 *   blank or control byte and no trailing dot;
 * - a host is allowed by its own name, "**." before it, and (a subdomain)
 *   by "*." before its parent; denied by its own name whatever allows it;
 *   "*." before it does not match it;
 * - for the input's patterns: a pattern that allows a host denies it from
 *   the deny list (deny wins); more allow patterns never take an allowance
 *   away; a pattern matches alike in upper case and with a trailing dot;
 *   the policy check accepts exactly the lists whose every pattern is one.
 */
#include "server/netproxy/np_int.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_PATTERNS_MAX 8
#define FUZZ_HOST_MAX (NETPROXY_MAX_HOST + 1) /* the proxy's host buffers */

static void fail(const char *what, const char *host, const uint8_t *d, size_t n) {
  fprintf(stderr, "fuzz_domains: %s (host \"%s\")\ninput (%zu bytes): %.*s\n", what, host, n,
          (int)n, (const char *)d);
  abort();
}

static np_baseline eval(char **allow, size_t na, char **deny, size_t nd, bool local,
                        const char *host) {
  netproxy_policy p = {.allowed = allow, .n_allowed = na, .denied = deny, .n_denied = nd,
                       .allow_local_binding = local};
  return np_policy_eval(&p, host);
}

static bool checks(char **allow, size_t na, char **deny, size_t nd) {
  netproxy_policy p = {.allowed = allow, .n_allowed = na, .denied = deny, .n_denied = nd};
  char err[512];
  return netproxy_policy_check(&p, err, sizeof err) == 0;
}

static void check_host(const char *h, bool local, const uint8_t *d, size_t n) {
  char again[FUZZ_HOST_MAX];
  if (np_host_normalize(h, strlen(h), again, sizeof again) < 0 || strcmp(again, h) != 0)
    fail("a normalised host does not normalise to itself", h, d, n);
  for (const char *c = h; *c; c++)
    if (isupper((unsigned char)*c) || (unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
      fail("a normalised host holds upper case or a blank or control byte", h, d, n);
  if (h[strlen(h) - 1] == '.')
    fail("a normalised host ends with a dot", h, d, n);
  if (strpbrk(h, "*?"))
    return; /* a wildcard as a host: patterns would read it as one */
  bool lit = np_host_local_literal(h);
  char *self[] = {(char *)h};
  if (!checks(self, 1, NULL, 0))
    fail("a normalised host is not a pattern", h, d, n);
  if (eval(self, 1, NULL, 0, local, h) != NP_BASE_ALLOW)
    fail("a host is not allowed by its own name", h, d, n);
  char *star[] = {"*"};
  if (eval(star, 1, self, 1, local, h) != NP_BASE_DENIED)
    fail("a host is not denied by its own name", h, d, n);
  char apex[FUZZ_HOST_MAX + 8], sub[FUZZ_HOST_MAX + 8];
  snprintf(apex, sizeof apex, "**.%s", h);
  snprintf(sub, sizeof sub, "*.%s", h);
  char *pa[] = {apex}, *ps[] = {sub};
  np_baseline want = lit && !local ? NP_BASE_LOCAL : NP_BASE_ALLOW;
  if (checks(pa, 1, NULL, 0) && eval(pa, 1, NULL, 0, local, h) != want)
    fail("\"**.\" before a host does not allow it", h, d, n);
  if (checks(ps, 1, NULL, 0) && eval(ps, 1, NULL, 0, local, h) == NP_BASE_ALLOW)
    fail("\"*.\" before a host allows the host itself", h, d, n);
  const char *dot = strchr(h, '.');
  if (dot && dot[1] && !np_host_is_ip(h)) {
    snprintf(sub, sizeof sub, "*.%s", dot + 1);
    if (checks(ps, 1, NULL, 0) && eval(ps, 1, NULL, 0, local, h) != want)
      fail("\"*.\" before its parent does not allow a subdomain", h, d, n);
  }
}

static void variant(const char *p, bool upper, char *out, size_t n) {
  size_t k = 0;
  for (; p[k] && k + 2 < n; k++)
    out[k] = upper ? (char)toupper((unsigned char)p[k]) : p[k];
  if (!upper && k && p[k - 1] != '.' && strcmp(p, "*") != 0)
    out[k++] = '.';
  out[k] = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  bool local = data[0] & 1;
  char *buf = malloc(size);
  if (!buf)
    abort();
  memcpy(buf, data + 1, size - 1);
  buf[size - 1] = 0;
  char *parts[FUZZ_PATTERNS_MAX + 1];
  size_t np = 0;
  for (char *s = buf; np < FUZZ_PATTERNS_MAX + 1 && s < buf + size - 1;) {
    parts[np++] = s;
    s += strlen(s) + 1;
  }
  if (np == 0) {
    free(buf);
    return 0;
  }
  char h[FUZZ_HOST_MAX];
  if (np_host_normalize(parts[0], strlen(parts[0]), h, sizeof h) == 0) {
    check_host(h, local, data, size);
    char **pats = parts + 1;
    size_t n = np - 1;
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
      ok = ok && checks(&pats[i], 1, NULL, 0);
      char *one[] = {pats[i]};
      if (!checks(one, 1, NULL, 0))
        continue;
      np_baseline a = eval(one, 1, NULL, 0, local, h);
      if (a == NP_BASE_ALLOW && checks(NULL, 0, one, 1) &&
          eval(one, 1, one, 1, local, h) != NP_BASE_DENIED)
        fail("a pattern that allows a host does not deny it", h, data, size);
      if (a == NP_BASE_ALLOW && eval(pats, n, NULL, 0, local, h) != NP_BASE_ALLOW)
        fail("more allow patterns took an allowance away", h, data, size);
      char v[FUZZ_HOST_MAX + 8];
      for (int upper = 0; upper < 2; upper++) {
        variant(pats[i], upper, v, sizeof v);
        char *vv[] = {v};
        if (checks(vv, 1, NULL, 0) && eval(vv, 1, NULL, 0, local, h) != a)
          fail(upper ? "a pattern matches otherwise in upper case"
                     : "a pattern matches otherwise with a trailing dot",
               h, data, size);
      }
    }
    if (checks(pats, n, NULL, 0) != ok)
      fail("the policy check disagrees with its patterns one by one", h, data, size);
  }
  free(buf);
  return 0;
}
