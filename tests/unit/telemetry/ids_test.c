#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "server/telemetry/telemetry.h"

#include <stdlib.h>
#include <string.h>

static void test_traceparent_round_trip(void **state) {
  (void)state;
  const char *tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  tele_ctx c;
  assert_int_equal(tele_traceparent_parse(tp, &c), 0);
  assert_true(c.valid);
  assert_int_equal(c.flags, 1);
  assert_int_equal(c.trace_id[0], 0x0a);
  assert_int_equal(c.span_id[7], 0x31);
  char out[56];
  tele_traceparent_format(&c, out);
  assert_string_equal(out, tp);
}

static void test_traceparent_rejects(void **state) {
  (void)state;
  static const char *const bad[] = {
      "",
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0",    /* short */
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x", /* v00 with extra */
      "00-00000000000000000000000000000000-b7ad6b7169203331-01",   /* zero trace id */
      "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",   /* zero span id */
      "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",   /* uppercase */
      "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",   /* version ff */
      "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",   /* separator */
      "0g-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",   /* not hex */
  };
  tele_ctx c;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_not_equal(tele_traceparent_parse(bad[i], &c), 0);
    assert_false(c.valid);
  }
  assert_int_not_equal(tele_traceparent_parse(NULL, &c), 0);
  /* A future version may append fields after a dash. */
  assert_int_equal(
      tele_traceparent_parse("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-zz", &c), 0);
  assert_int_equal(c.flags, 0);
}

static void test_tracestate_keys(void **state) {
  (void)state;
  char err[200];
  assert_int_equal(tele_tracestate_key_check("congo", err, sizeof err), 0);
  assert_int_equal(tele_tracestate_key_check("rojo_1-x*y/z", err, sizeof err), 0);
  assert_int_equal(tele_tracestate_key_check("tenant1@vendor", err, sizeof err), 0);
  assert_int_equal(tele_tracestate_key_check("1tenant@v", err, sizeof err), 0);
  assert_int_not_equal(tele_tracestate_key_check("", err, sizeof err), 0);
  assert_int_not_equal(tele_tracestate_key_check("Congo", err, sizeof err), 0);
  assert_non_null(strstr(err, "lowercase"));
  assert_int_not_equal(tele_tracestate_key_check("1abc", err, sizeof err), 0);
  assert_int_not_equal(tele_tracestate_key_check("a.b", err, sizeof err), 0);
  assert_int_not_equal(tele_tracestate_key_check("t@1vendor", err, sizeof err), 0);
  assert_int_not_equal(tele_tracestate_key_check("t@vendorvendorvendor", err, sizeof err), 0);
  assert_int_not_equal(tele_tracestate_key_check("@v", err, sizeof err), 0);
  char longkey[300];
  memset(longkey, 'a', 257);
  longkey[257] = '\0';
  assert_int_not_equal(tele_tracestate_key_check(longkey, err, sizeof err), 0);
  longkey[256] = '\0';
  assert_int_equal(tele_tracestate_key_check(longkey, err, sizeof err), 0);
}

static void test_tracestate_values(void **state) {
  (void)state;
  char err[200];
  assert_int_equal(tele_tracestate_value_check("t61rcWkgMzE", err, sizeof err), 0);
  assert_int_equal(tele_tracestate_value_check("a b", err, sizeof err), 0);
  assert_int_not_equal(tele_tracestate_value_check("", err, sizeof err), 0);
  assert_int_not_equal(tele_tracestate_value_check("ab ", err, sizeof err), 0);
  assert_int_not_equal(tele_tracestate_value_check("a,b", err, sizeof err), 0);
  assert_int_not_equal(tele_tracestate_value_check("a=b", err, sizeof err), 0);
  assert_int_not_equal(tele_tracestate_value_check("a\r\nX-Evil: 1", err, sizeof err), 0);
  assert_non_null(strstr(err, "0x0d"));
  assert_int_not_equal(tele_tracestate_value_check("caf\xc3\xa9", err, sizeof err), 0);
}

static void test_tracestate_merge(void **state) {
  (void)state;
  tele_kv mine[] = {{"warden", "on"}, {"rojo", "new"}};
  char *m = tele_tracestate_merge("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7,BAD=x,ok=1", mine, 2);
  /* configured members first (rojo's value replaced), then the others; the
   * malformed member is dropped */
  assert_string_equal(m, "warden=on,rojo=new,congo=t61rcWkgMzE,ok=1");
  free(m);
  m = tele_tracestate_merge(NULL, mine, 2);
  assert_string_equal(m, "warden=on,rojo=new");
  free(m);
  m = tele_tracestate_merge("a=1", NULL, 0);
  assert_string_equal(m, "a=1");
  free(m);
  /* at most 32 members */
  char in[2000] = "";
  for (int i = 0; i < 40; i++) {
    char one[16];
    snprintf(one, sizeof one, "%sk%d=v", i ? "," : "", i);
    strcat(in, one);
  }
  m = tele_tracestate_merge(in, mine, 2);
  size_t commas = 0;
  for (char *p = m; *p; p++)
    commas += *p == ',';
  assert_int_equal(commas + 1, 32);
  assert_int_equal(strncmp(m, "warden=on,rojo=new,k0=v", 23), 0);
  free(m);
}

static void test_random_ids_differ(void **state) {
  (void)state;
  uint8_t a[16], b[16];
  tele_random_bytes(a, 16);
  tele_random_bytes(b, 16);
  assert_memory_not_equal(a, b, 16);
  char hex[33];
  tele_hex(a, 16, hex);
  assert_int_equal(strlen(hex), 32);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_traceparent_round_trip), cmocka_unit_test(test_traceparent_rejects),
      cmocka_unit_test(test_tracestate_keys),        cmocka_unit_test(test_tracestate_values),
      cmocka_unit_test(test_tracestate_merge),       cmocka_unit_test(test_random_ids_differ),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
