/* Framing: split and joined reads, CRLF, partial lines at EOF, oversize. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "server/framing.h"

#include <stdlib.h>
#include <string.h>

typedef struct rec {
  char lines[64][256];
  int n;
  unsigned long long oversize[8];
  int n_over;
} rec;

static void on_line(void *arg, const char *line, size_t len) {
  rec *r = arg;
  assert_true(len < 256);
  memcpy(r->lines[r->n], line, len);
  r->lines[r->n][len] = '\0';
  r->n++;
}

static void on_over(void *arg, uint64_t bytes) {
  rec *r = arg;
  r->oversize[r->n_over++] = bytes;
}

static void test_joined(void **state) {
  (void)state;
  rec r = {0};
  framing f;
  framing_init(&f, 100, on_line, on_over, &r);
  const char *in = "a\nbb\r\n\nccc\n";
  assert_int_equal(framing_feed(&f, in, strlen(in)), 0);
  assert_int_equal(r.n, 4);
  assert_string_equal(r.lines[0], "a");
  assert_string_equal(r.lines[1], "bb");
  assert_string_equal(r.lines[2], "");
  assert_string_equal(r.lines[3], "ccc");
  framing_free(&f);
}

static void test_split_byte_by_byte(void **state) {
  (void)state;
  rec r = {0};
  framing f;
  framing_init(&f, 100, on_line, on_over, &r);
  const char *in = "{\"id\":1}\n{\"id\":2}\n";
  for (size_t i = 0; i < strlen(in); i++)
    framing_feed(&f, in + i, 1);
  assert_int_equal(r.n, 2);
  assert_string_equal(r.lines[1], "{\"id\":2}");
  framing_free(&f);
}

/* Framing never interprets bytes: invalid UTF-8 and NUL reach the parser
 * (which answers -32700) unchanged and with their exact length. */
static void test_invalid_utf8_passes_through(void **state) {
  (void)state;
  rec r = {0};
  framing f;
  framing_init(&f, 100, on_line, on_over, &r);
  const char in[] = "{\"x\":\"\xff\xfe\xc3\"}\n\xc0\x80\n";
  framing_feed(&f, in, sizeof in - 1);
  assert_int_equal(r.n, 2);
  assert_memory_equal(r.lines[0], "{\"x\":\"\xff\xfe\xc3\"}", 12);
  assert_memory_equal(r.lines[1], "\xc0\x80", 2);
  framing_free(&f);
}

/* Deep nesting is the parser's problem, not the framer's: a line of 90 000
 * brackets under the limit is delivered whole, one over it is skipped. */
static size_t g_deep_len;
static void on_deep(void *arg, const char *line, size_t len) {
  (void)arg;
  for (size_t i = 0; i < len; i++)
    assert_true(line[i] == '[');
  g_deep_len = len;
}

static void test_deep_nesting_line(void **state) {
  (void)state;
  rec r = {0};
  framing f;
  framing_init(&f, 100000, on_deep, on_over, &r);
  char *big = malloc(200002);
  memset(big, '[', 200000);
  big[90000] = '\n';
  big[200000] = '\n';
  for (size_t off = 0; off < 200001; off += 4096)
    framing_feed(&f, big + off, off + 4096 > 200001 ? 200001 - off : 4096);
  assert_int_equal(g_deep_len, 90000);
  assert_int_equal(r.n_over, 1);
  assert_true(r.oversize[0] >= 100000);
  free(big);
  framing_free(&f);
}

static void test_partial_at_eof(void **state) {
  (void)state;
  rec r = {0};
  framing f;
  framing_init(&f, 100, on_line, on_over, &r);
  framing_feed(&f, "one\ntw", 6);
  assert_int_equal(r.n, 1);
  framing_feed(&f, "o", 1);
  framing_finish(&f);
  assert_int_equal(r.n, 2);
  assert_string_equal(r.lines[1], "two");
  framing_finish(&f); /* nothing more */
  assert_int_equal(r.n, 2);
  framing_free(&f);
}

static void test_oversize_skips_to_newline(void **state) {
  (void)state;
  rec r = {0};
  framing f;
  framing_init(&f, 8, on_line, on_over, &r);
  framing_feed(&f, "12345678\n", 9); /* exactly the limit: fine */
  framing_feed(&f, "123456", 6);
  framing_feed(&f, "789abc", 6); /* now over, keeps skipping */
  framing_feed(&f, "def\nok\n", 7);
  assert_int_equal(r.n, 2);
  assert_string_equal(r.lines[0], "12345678");
  assert_string_equal(r.lines[1], "ok");
  assert_int_equal(r.n_over, 1);
  assert_int_equal(r.oversize[0], 15);
  /* oversize within one chunk */
  framing_feed(&f, "0123456789\nz\n", 13);
  assert_int_equal(r.n_over, 2);
  assert_int_equal(r.oversize[1], 10);
  assert_string_equal(r.lines[2], "z");
  /* oversize cut off by EOF */
  framing_feed(&f, "0123456789", 10);
  framing_finish(&f);
  assert_int_equal(r.n_over, 3);
  framing_free(&f);
}

static void on_line_big(void *arg, const char *line, size_t len) {
  (void)line;
  *(size_t *)arg = len;
}

static void test_large_carry_then_small(void **state) {
  (void)state;
  size_t got = 0;
  framing f;
  framing_init(&f, 1 << 20, on_line_big, on_over, &got);
  char *big = malloc(200000);
  memset(big, 'x', 200000);
  framing_feed(&f, big, 200000);
  framing_feed(&f, "\n", 1);
  assert_int_equal(got, 200000);
  assert_null(f.buf); /* the big carry buffer was released */
  free(big);
  framing_free(&f);
}

static void test_large_line_delivered_whole(void **state) {
  (void)state;
  size_t got = 0;
  framing f;
  framing_init(&f, 1 << 20, on_line_big, on_over, &got);
  char *big = malloc(300001);
  memset(big, 'y', 300000);
  big[300000] = '\n';
  for (size_t i = 0; i < 300001; i += 4096)
    framing_feed(&f, big + i, i + 4096 > 300001 ? 300001 - i : 4096);
  assert_int_equal(got, 300000);
  free(big);
  framing_free(&f);
}


/* Pausing from on_line stops after that line; the rest of the read and what
 * is fed while paused are parked and delivered in order by resume. */
static framing *g_pause_f;
static void on_line_pause_at_b(void *arg, const char *line, size_t len) {
  on_line(arg, line, len);
  if (len == 1 && line[0] == 'b')
    framing_pause(g_pause_f);
}

static void test_pause_parks_the_rest(void **state) {
  (void)state;
  rec r = {0};
  framing f;
  g_pause_f = &f;
  framing_init(&f, 100, on_line_pause_at_b, on_over, &r);
  const char *in = "a\nb\nc\nd";
  assert_int_equal(framing_feed(&f, in, strlen(in)), 0);
  assert_int_equal(r.n, 2); /* a, b: then paused */
  assert_int_equal(framing_parked(&f), strlen("c\nd"));
  assert_int_equal(framing_feed(&f, "d\ne\n", 4), 0); /* while paused: parked */
  assert_int_equal(r.n, 2);
  assert_int_equal(framing_resume(&f), 0);
  assert_int_equal(r.n, 5);
  assert_string_equal(r.lines[2], "c");
  assert_string_equal(r.lines[3], "dd");
  assert_string_equal(r.lines[4], "e");
  assert_int_equal(framing_parked(&f), 0);
  assert_int_equal(framing_feed(&f, "f\n", 2), 0);
  assert_int_equal(r.n, 6);
  framing_free(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_joined),
      cmocka_unit_test(test_split_byte_by_byte),
      cmocka_unit_test(test_partial_at_eof),
      cmocka_unit_test(test_invalid_utf8_passes_through),
      cmocka_unit_test(test_deep_nesting_line),
      cmocka_unit_test(test_oversize_skips_to_newline),
      cmocka_unit_test(test_large_carry_then_small),
      cmocka_unit_test(test_large_line_delivered_whole),
      cmocka_unit_test(test_pause_parks_the_rest),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
