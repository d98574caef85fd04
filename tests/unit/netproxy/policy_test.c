/* server/netproxy/policy.c: host normalisation, patterns, the private
 * ranges and the baseline decision. */
#include "server/netproxy/np_int.h"

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static const char *norm(const char *in) {
  static char out[300];
  return np_host_normalize(in, strlen(in), out, sizeof out) == 0 ? out : "<invalid>";
}

static void test_normalize(void **state) {
  (void)state;
  assert_string_equal(norm(" Example.COM. "), "example.com");
  assert_string_equal(norm("example.com:443"), "example.com");
  assert_string_equal(norm("[::1]"), "::1");
  assert_string_equal(norm("[::1]:8080"), "::1");
  assert_string_equal(norm("fe80::1%25lo0"), "fe80::1%lo0");
  assert_string_equal(norm("2001:db8::1"), "2001:db8::1");
  assert_string_equal(norm(""), "<invalid>");
  assert_string_equal(norm("."), "<invalid>");
  assert_string_equal(norm("a b"), "<invalid>");
  assert_string_equal(norm("evil.com/x"), "<invalid>");
  assert_string_equal(norm("user@evil.com"), "<invalid>");
  /* brackets hold an IPv6 literal, nothing else */
  assert_string_equal(norm("[fe80::1%25eth0]:80"), "fe80::1%eth0");
  assert_string_equal(norm("[f80:21]"), "<invalid>");
  assert_string_equal(norm("[example.com]"), "<invalid>");
  assert_string_equal(norm("[1.2.3.4]"), "<invalid>");
  assert_string_equal(norm("[::1]x"), "<invalid>");
  assert_string_equal(norm("[::1]:"), "<invalid>");
  assert_string_equal(norm("[::1]:8o"), "<invalid>");
  assert_string_equal(norm("example.com:8o"), "<invalid>");
  assert_string_equal(norm("example.com:"), "<invalid>");
  assert_string_equal(norm("a[:1"), "<invalid>");
  assert_string_equal(norm("a]b"), "<invalid>");
  /* '%': one zone separator of an IPv6 literal; the result normalises to
   * itself */
  assert_string_equal(norm("fe80::1%lo0"), "fe80::1%lo0");
  assert_string_equal(norm("%2525t"), "<invalid>");
  assert_string_equal(norm("a%25b.example"), "<invalid>");
  assert_string_equal(norm("fe80::1%2525lo0"), "<invalid>");
  assert_string_equal(norm("fe80::1%25lo%0"), "<invalid>");
  /* colons only in an IPv6 literal, no empty label */
  assert_string_equal(norm(".fe80fe80::1%x"), "<invalid>");
  assert_string_equal(norm("a::b.example"), "<invalid>");
  assert_string_equal(norm(".example.com"), "<invalid>");
  assert_string_equal(norm("a..example.com"), "<invalid>");
  assert_string_equal(norm("example.com.."), "example.com");
}

static bool np4(const char *a) {
  struct sockaddr_in s = {.sin_family = AF_INET};
  inet_pton(AF_INET, a, &s.sin_addr);
  return np_addr_non_public((struct sockaddr *)&s);
}

static bool np6(const char *a) {
  struct sockaddr_in6 s = {.sin6_family = AF_INET6};
  inet_pton(AF_INET6, a, &s.sin6_addr);
  return np_addr_non_public((struct sockaddr *)&s);
}

static void test_ranges(void **state) {
  (void)state;
  const char *priv[] = {"127.0.0.1",   "127.255.0.9", "10.1.2.3",    "172.16.0.1",  "172.31.255.255",
                        "192.168.1.1", "169.254.1.1", "100.64.0.1",  "100.127.0.1", "0.0.0.0",
                        "0.1.2.3",     "192.0.0.8",   "192.0.2.1",   "198.51.100.1", "203.0.113.9",
                        "198.18.0.1",  "198.19.255.1", "224.0.0.1",  "239.1.1.1",   "240.0.0.1",
                        "255.255.255.255"};
  for (size_t i = 0; i < sizeof priv / sizeof priv[0]; i++)
    if (!np4(priv[i]))
      fail_msg("%s should be non-public", priv[i]);
  const char *pub[] = {"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "198.20.0.1",
                       "11.0.0.1", "223.255.255.255"};
  for (size_t i = 0; i < sizeof pub / sizeof pub[0]; i++)
    if (np4(pub[i]))
      fail_msg("%s should be public", pub[i]);
  assert_true(np6("::1"));
  assert_true(np6("::"));
  assert_true(np6("fc00::1"));
  assert_true(np6("fdff::1"));
  assert_true(np6("fe80::1"));
  assert_true(np6("febf::1"));
  assert_true(np6("ff02::1"));
  assert_true(np6("::ffff:127.0.0.1"));
  assert_true(np6("::ffff:10.0.0.1"));
  assert_true(np6("::127.0.0.1"));
  assert_false(np6("2001:db8::1")); /* documentation: not treated as local */
  assert_false(np6("2606:4700::1111"));
  assert_false(np6("::ffff:8.8.8.8"));
  assert_false(np6("fec0::1"));
}

static np_baseline eval(const char **allow, size_t na, const char **deny, size_t nd, bool local,
                        const char *host) {
  netproxy_policy p = {.allowed = (char **)allow, .n_allowed = na, .denied = (char **)deny,
                       .n_denied = nd, .allow_local_binding = local};
  return np_policy_eval(&p, norm(host));
}

static void test_patterns(void **state) {
  (void)state;
  const char *a[] = {"example.com", "*.sub.test", "**.apex.test", "region*.v2.tunnel.test",
                     "[::1]", "127.0.0.1"};
  const char *d[] = {"bad.apex.test"};
  assert_int_equal(eval(a, 6, d, 1, false, "EXAMPLE.com."), NP_BASE_ALLOW);
  assert_int_equal(eval(a, 6, d, 1, false, "www.example.com"), NP_BASE_NOT_ALLOWED);
  assert_int_equal(eval(a, 6, d, 1, false, "a.sub.test"), NP_BASE_ALLOW);
  assert_int_equal(eval(a, 6, d, 1, false, "a.b.sub.test"), NP_BASE_ALLOW);
  assert_int_equal(eval(a, 6, d, 1, false, "sub.test"), NP_BASE_NOT_ALLOWED);
  assert_int_equal(eval(a, 6, d, 1, false, "evilsub.test"), NP_BASE_NOT_ALLOWED);
  assert_int_equal(eval(a, 6, d, 1, false, "apex.test"), NP_BASE_ALLOW);
  assert_int_equal(eval(a, 6, d, 1, false, "x.apex.test"), NP_BASE_ALLOW);
  assert_int_equal(eval(a, 6, d, 1, false, "bad.apex.test"), NP_BASE_DENIED);
  assert_int_equal(eval(a, 6, d, 1, false, "region1.v2.tunnel.test"), NP_BASE_ALLOW);
  assert_int_equal(eval(a, 6, d, 1, false, "xregion1.v2.tunnel.test"), NP_BASE_NOT_ALLOWED);
  /* local literals: only when named exactly, or with allowLocalBinding */
  assert_int_equal(eval(a, 6, d, 1, false, "[::1]"), NP_BASE_ALLOW);
  assert_int_equal(eval(a, 6, d, 1, false, "127.0.0.1"), NP_BASE_ALLOW);
  assert_int_equal(eval(a, 6, d, 1, false, "127.0.0.2"), NP_BASE_LOCAL);
  assert_int_equal(eval(a, 6, d, 1, false, "localhost"), NP_BASE_LOCAL);
  assert_int_equal(eval(a, 6, d, 1, false, "10.0.0.1"), NP_BASE_LOCAL);
  assert_int_equal(eval(a, 6, d, 1, true, "10.0.0.1"), NP_BASE_NOT_ALLOWED);
  const char *star[] = {"*"};
  assert_int_equal(eval(star, 1, d, 1, false, "anything.test"), NP_BASE_ALLOW);
  assert_int_equal(eval(star, 1, d, 1, false, "bad.apex.test"), NP_BASE_DENIED);
  assert_int_equal(eval(star, 1, d, 1, false, "127.0.0.1"), NP_BASE_LOCAL);
  assert_int_equal(eval(star, 1, d, 1, true, "127.0.0.1"), NP_BASE_ALLOW);
  /* an empty allowlist allows nothing */
  assert_int_equal(eval(NULL, 0, NULL, 0, true, "example.com"), NP_BASE_NOT_ALLOWED);
}

static void test_check(void **state) {
  (void)state;
  char err[256];
  const char *ok[] = {"*", "example.com", "*.x.test", "**.x.test", "[::1]", "10.0.0.1"};
  netproxy_policy p = {.allowed = (char **)ok, .n_allowed = 6};
  assert_int_equal(netproxy_policy_check(&p, err, sizeof err), 0);
  const char *star[] = {"*"};
  netproxy_policy q = {.denied = (char **)star, .n_denied = 1};
  assert_int_not_equal(netproxy_policy_check(&q, err, sizeof err), 0);
  assert_non_null(strstr(err, "deniedDomains[0]"));
  const char *bad[] = {"ok.test", "bad host"};
  netproxy_policy r = {.allowed = (char **)bad, .n_allowed = 2};
  assert_int_not_equal(netproxy_policy_check(&r, err, sizeof err), 0);
  assert_non_null(strstr(err, "allowedDomains[1]"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_normalize),
      cmocka_unit_test(test_ranges),
      cmocka_unit_test(test_patterns),
      cmocka_unit_test(test_check),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
