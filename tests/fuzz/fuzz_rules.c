/* libFuzzer target: the persisted network rules (server/approvals/rules.c):
 * one line, a whole file, and the merge that stores a rule.
 *
 * Input: byte 0 picks the rule to store (one of the file's own keys, or a
 * fixed one, as allow or deny); the rest is the text of `network-rules`.
 * Checked, besides the sanitizers:
 * - every line that parses formats and parses back to the same rule, and
 *   its formatted text is a fixed point (parse -> format -> parse ->
 *   format);
 * - the file's rule set holds exactly the keys of its good lines, a key
 *   with any deny line is denied (wherever the lines stand), and every bad
 *   line is warned about, with its line number;
 * - merging a rule into the text: the result's set gives that key exactly
 *   the rule stored, every other key what it had, warns about the same bad
 *   lines, ends with the rule's line, and merging the same rule again
 *   changes nothing.
 */
#include "server/approvals/rules.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what, const uint8_t *d, size_t n) {
  fprintf(stderr, "fuzz_rules: %s\ninput (%zu bytes): %.*s\n", what, n, (int)n, (const char *)d);
  abort();
}

typedef struct warns {
  unsigned n;
  unsigned last_line;
  bool ordered;
} warns;

static void on_warn(void *arg, unsigned line, const char *msg) {
  warns *w = arg;
  if (line <= w->last_line || !msg || !*msg)
    w->ordered = false;
  w->last_line = line;
  w->n++;
}

/* One line: the round trip. Returns parse_line's result. */
static int check_line(const char *p, size_t len, approval_rule *out, const uint8_t *d,
                      size_t n) {
  const char *why = NULL;
  int rc = approval_rule_parse_line(p, len, out, &why);
  if (rc < 0 && (!why || !*why))
    fail("a bad line without a reason", d, n);
  if (rc != 1)
    return rc;
  char a[APPROVAL_RULES_MAX_LINE + 1], b[APPROVAL_RULES_MAX_LINE + 1];
  int ka = approval_rule_format(out, a, sizeof a);
  approval_rule back;
  if (ka < 0 || approval_rule_parse_line(a, (size_t)ka, &back, &why) != 1)
    fail("a parsed rule does not format and parse back", d, n);
  if (!approval_key_equal(&back.key, &out->key) || back.allow != out->allow)
    fail("format -> parse gives another rule", d, n);
  int kb = approval_rule_format(&back, b, sizeof b);
  if (kb != ka || memcmp(a, b, (size_t)ka) != 0)
    fail("the formatted rule is no fixed point", d, n);
  return 1;
}

/* The rules of the text line by line, as the file reader should find them:
 * verdict 1 allow, 2 deny, per key. */
typedef struct expect {
  approval_rule *v;
  size_t n;
  unsigned bad;
} expect;

static void expect_add(expect *e, const approval_rule *r) {
  for (size_t i = 0; i < e->n; i++)
    if (approval_key_equal(&e->v[i].key, &r->key)) {
      e->v[i].allow = e->v[i].allow && r->allow;
      return;
    }
  approval_rule *v = realloc(e->v, (e->n + 1) * sizeof *v);
  if (!v)
    abort();
  e->v = v;
  e->v[e->n++] = *r;
}

static void scan(const char *t, size_t len, expect *e, const uint8_t *d, size_t n) {
  memset(e, 0, sizeof *e);
  for (size_t i = 0; i < len;) {
    const char *nl = memchr(t + i, '\n', len - i);
    size_t end = nl ? (size_t)(nl - t) : len;
    approval_rule r;
    int rc = check_line(t + i, end - i, &r, d, n);
    if (rc == 1)
      expect_add(e, &r);
    else if (rc < 0)
      e->bad++;
    i = end + 1;
  }
}

static void check_set(const approval_rules *set, const warns *w, const expect *e,
                      const char *what, const uint8_t *d, size_t n) {
  if (!w->ordered)
    fail("warnings out of line order or without a message", d, n);
  if (w->n != e->bad)
    fail(what, d, n);
  if (set->n != e->n)
    fail("the set does not hold exactly the keys of the good lines", d, n);
  for (size_t i = 0; i < e->n; i++) {
    int want = e->v[i].allow ? APPROVAL_RULE_ALLOW : APPROVAL_RULE_DENY;
    if (approval_rules_lookup(set, &e->v[i].key) != want)
      fail("a key's verdict is not its lines' (a deny line wins)", d, n);
  }
}

static int parse_text(const char *t, size_t len, approval_rules **out, warns *w) {
  memset(w, 0, sizeof *w);
  w->ordered = true;
  return approval_rules_parse(t, len, out, on_warn, w);
}

static void check_merge(const char *t, size_t len, const expect *e, const approval_rule *r,
                        const uint8_t *d, size_t n) {
  char *m = NULL, *m2 = NULL;
  size_t ml = 0, ml2 = 0;
  if (approval_rules_merge_text(t, len, r, &m, &ml) < 0)
    fail("a valid rule was not merged", d, n);
  char line[APPROVAL_RULES_MAX_LINE + 2];
  int k = approval_rule_format(r, line, sizeof line - 1);
  line[k++] = '\n';
  if (ml < (size_t)k || memcmp(m + ml - k, line, (size_t)k) != 0)
    fail("the merged text does not end with the rule's line", d, n);
  approval_rules *set = NULL;
  warns w;
  if (parse_text(m, ml, &set, &w) < 0)
    abort();
  expect want = {.v = malloc((e->n + 1) * sizeof *want.v), .n = 0, .bad = e->bad};
  if (!want.v)
    abort();
  for (size_t i = 0; i < e->n; i++)
    if (!approval_key_equal(&e->v[i].key, &r->key))
      want.v[want.n++] = e->v[i];
  want.v[want.n++] = *r;
  check_set(set, &w, &want, "the merge lost or added a bad line", d, n);
  approval_rules_free(set);
  free(want.v);
  if (approval_rules_merge_text(m, ml, r, &m2, &ml2) < 0 || ml2 != ml || memcmp(m, m2, ml) != 0)
    fail("merging the same rule again changed the text", d, n);
  free(m);
  free(m2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  const char *t = (const char *)data + 1;
  size_t len = size - 1;
  expect e;
  scan(t, len, &e, data, size);
  approval_rules *set = NULL;
  warns w;
  if (parse_text(t, len, &set, &w) < 0)
    abort();
  check_set(set, &w, &e, "a bad line not warned about, or a good one warned about", data, size);
  approval_rules_free(set);
  approval_rule r;
  if (e.n) {
    r = e.v[(data[0] >> 1) % e.n];
  } else {
    static const char *const hosts[] = {"api.example.com", "127.0.0.1", "::1", "x.test"};
    const char *why;
    if (approval_key_make(hosts[(data[0] >> 1) % 4], (approval_proto)((data[0] >> 3) % 4),
                          443, &r.key, &why) < 0)
      abort();
  }
  r.allow = data[0] & 1;
  check_merge(t, len, &e, &r, data, size);
  free(e.v);
  return 0;
}
