#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "server/base64.h"

#include <stdlib.h>
#include <string.h>

static void test_vectors(void **state) {
  (void)state;
  static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  static const char *const enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (int i = 0; i < 7; i++) {
    char out[32];
    size_t n = base64_encode((const uint8_t *)plain[i], strlen(plain[i]), out);
    out[n] = '\0';
    assert_string_equal(out, enc[i]);
    uint8_t back[32];
    ssize_t m = base64_decode(enc[i], strlen(enc[i]), back);
    assert_int_equal(m, strlen(plain[i]));
    assert_memory_equal(back, plain[i], (size_t)m);
  }
}

static void test_round_trip_binary(void **state) {
  (void)state;
  uint8_t in[1000];
  for (int i = 0; i < 1000; i++)
    in[i] = (uint8_t)(i * 7 + 3);
  for (size_t len = 0; len < 1000; len += len < 64 ? 1 : 37) { /* every tail of both loops */
    char enc[1400];
    size_t n = base64_encode(in, len, enc);
    assert_int_equal(n, base64_encoded_len(len));
    uint8_t out[1000];
    assert_int_equal(base64_decode(enc, n, out), (ssize_t)len);
    assert_memory_equal(in, out, len);
  }
}

/* One character at a time, straight from RFC 4648: what both encoders must
 * produce, for every length around the SIMD step (24 bytes, 28 readable)
 * and every alignment, on random bytes (all 64 characters appear). */
static size_t reference(const uint8_t *in, size_t n, char *out) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                 (i + 2 < n ? in[i + 2] : 0);
    out[o++] = a[v >> 18 & 63];
    out[o++] = a[v >> 12 & 63];
    out[o++] = i + 1 < n ? a[v >> 6 & 63] : '=';
    out[o++] = i + 2 < n ? a[v & 63] : '=';
  }
  return o;
}

static void test_simd_matches_reference(void **state) {
  (void)state;
  enum { MAX = 4096 };
  uint8_t *in = malloc(MAX + 64);
  char *want = malloc(MAX * 2), *got = malloc(MAX * 2), *got2 = malloc(MAX * 2);
  srand(7);
  for (size_t i = 0; i < MAX + 64; i++)
    in[i] = (uint8_t)rand();
  for (size_t off = 0; off < 8; off++)
    for (size_t len = 0; len < MAX; len += len < 200 ? 1 : 97) {
      size_t w = reference(in + off, len, want);
      assert_int_equal(base64_encode(in + off, len, got), w);
      assert_memory_equal(got, want, w);
      assert_int_equal(base64_encode_scalar(in + off, len, got2), w);
      assert_memory_equal(got2, want, w);
    }
  free(in);
  free(want);
  free(got);
  free(got2);
}

static void test_rejects_bad_input(void **state) {
  (void)state;
  uint8_t out[16];
  assert_int_equal(base64_decode("abc", 3, out), -1);
  assert_int_equal(base64_decode("ab!d", 4, out), -1);
  assert_int_equal(base64_decode("a===", 4, out), -1);
  assert_int_equal(base64_decode("=abc", 4, out), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vectors),
      cmocka_unit_test(test_round_trip_binary),
      cmocka_unit_test(test_rejects_bad_input),
      cmocka_unit_test(test_simd_matches_reference),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
