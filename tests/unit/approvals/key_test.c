/* Approval keys: host normalisation and the names on the wire. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "server/approvals/approvals.h"

#include <errno.h>
#include <string.h>

static void norm_ok(const char *in, const char *want) {
  char out[APPROVALS_HOST_MAX + 1];
  const char *why = NULL;
  int rc = approval_host_normalize(in, out, sizeof out, &why);
  if (rc != 0)
    fail_msg("%s: %s", in, why);
  assert_string_equal(out, want);
}

static void norm_bad(const char *in, const char *why_part) {
  char out[APPROVALS_HOST_MAX + 1];
  const char *why = NULL;
  assert_int_equal(approval_host_normalize(in, out, sizeof out, &why), -EINVAL);
  assert_non_null(why);
  if (!strstr(why, why_part))
    fail_msg("%s: reason \"%s\" lacks \"%s\"", in, why, why_part);
}

static void test_names(void **state) {
  (void)state;
  norm_ok("Example.COM", "example.com");
  norm_ok("a.com.", "a.com");
  norm_ok("A.com.", "a.com");
  norm_ok("under_score-dash.example", "under_score-dash.example");
  norm_ok("localhost", "localhost");
  norm_bad("", "empty");
  norm_bad("a..com", "empty label");
  norm_bad(".a.com", "empty label");
  norm_bad("a.com..", "empty label");
  norm_bad("a com", "character");
  norm_bad("a/b", "character");
  norm_bad("*.example.com", "wildcard");
  norm_bad("*", "wildcard");
  norm_bad("**.example.com", "wildcard");
  norm_bad("exa*mple.com", "wildcard");
  char longname[300];
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  norm_bad(longname, "too long");
}

static void test_ip_literals(void **state) {
  (void)state;
  norm_ok("127.0.0.1", "127.0.0.1");
  norm_ok("127.1", "127.0.0.1");
  norm_ok("0x7f.0.0.1", "127.0.0.1");
  norm_ok("[::1]", "::1");
  norm_ok("::1", "::1");
  norm_ok("[0:0:0:0:0:0:0:1]", "::1");
  norm_ok("[2001:DB8::0:1]", "2001:db8::1");
  norm_ok("::FFFF:127.0.0.1", "::ffff:127.0.0.1");
  norm_bad("[::1", "unbalanced");
  norm_bad("[a.com]", "IPv6");
  norm_bad("a.com:443", "IPv6");
}

static void test_keys(void **state) {
  (void)state;
  approval_key a, b, c, d;
  const char *why;
  assert_int_equal(approval_key_make("A.com.", APPROVAL_HTTPS, 443, &a, &why), 0);
  assert_int_equal(approval_key_make("a.com", APPROVAL_HTTPS, 443, &b, &why), 0);
  assert_int_equal(approval_key_make("a.com", APPROVAL_HTTPS, 80, &c, &why), 0);
  assert_int_equal(approval_key_make("a.com", APPROVAL_HTTP, 443, &d, &why), 0);
  assert_true(approval_key_equal(&a, &b));
  assert_false(approval_key_equal(&a, &c));
  assert_false(approval_key_equal(&a, &d));
  assert_int_equal(approval_key_make("a.com", APPROVAL_HTTPS, 0, &a, &why), -EINVAL);
  assert_int_equal(approval_key_make("a.com", APPROVAL_HTTPS, 65536, &a, &why), -EINVAL);
  assert_int_equal(approval_key_make("a.com", APPROVAL_PROTO_COUNT, 1, &a, &why), -EINVAL);
}

static void test_wire_names(void **state) {
  (void)state;
  approval_proto p;
  assert_int_equal(approval_proto_parse("socks5Udp", &p), 0);
  assert_int_equal(p, APPROVAL_SOCKS5_UDP);
  assert_string_equal(approval_proto_name(APPROVAL_SOCKS5_TCP), "socks5Tcp");
  assert_int_equal(approval_proto_parse("HTTPS", &p), -EINVAL);
  approval_decision d;
  const char *names[] = {"allowOnce", "allowForSession", "allowAlways", "deny", "denyAlways"};
  for (int i = 0; i < 5; i++) {
    assert_int_equal(approval_decision_parse(names[i], &d), 0);
    assert_int_equal(d, i);
    assert_string_equal(approval_decision_name(d), names[i]);
  }
  assert_int_equal(approval_decision_parse("allow", &d), -EINVAL);
  assert_int_equal(approval_decision_parse(NULL, &d), -EINVAL);
  assert_true(approval_decision_allows(APPROVAL_ALLOW_ALWAYS));
  assert_false(approval_decision_allows(APPROVAL_DENY_ALWAYS));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_ip_literals),
      cmocka_unit_test(test_keys),
      cmocka_unit_test(test_wire_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
