/* Trace and span ids, the W3C traceparent header, and tracestate merging
 * (https://www.w3.org/TR/trace-context/). */
#include "server/telemetry/telemetry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

void tele_random_bytes(uint8_t *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(buf + got, n - got, GRND_NONBLOCK);
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  if (got < n) {
    /* No entropy yet (early boot): ids only need to be unique, not secret. */
    static uint64_t x;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    x ^= (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull + (uint64_t)ts.tv_sec;
    for (; got < n; got++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      buf[got] = (uint8_t)x;
    }
  }
}

void tele_hex(const uint8_t *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = '\0';
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1; /* W3C: lowercase only */
}

static bool unhex(const char *s, size_t n, uint8_t *out) {
  bool nonzero = false;
  for (size_t i = 0; i < n; i++) {
    int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return false;
    out[i] = (uint8_t)(hi << 4 | lo);
    nonzero |= out[i] != 0;
  }
  return nonzero; /* all-zero ids are invalid */
}

int tele_traceparent_parse(const char *s, tele_ctx *out) {
  memset(out, 0, sizeof *out);
  if (!s)
    return -EINVAL;
  size_t n = strlen(s);
  /* version "-" trace-id "-" parent-id "-" flags: 2+1+32+1+16+1+2 = 55 */
  if (n < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-')
    return -EINVAL;
  if (hexval(s[0]) < 0 || hexval(s[1]) < 0)
    return -EINVAL;
  uint8_t ver = (uint8_t)(hexval(s[0]) << 4 | hexval(s[1])), flags;
  if (ver == 0xff)
    return -EINVAL;
  if (ver == 0 && n != 55)
    return -EINVAL;
  if (ver > 0 && n > 55 && s[55] != '-')
    return -EINVAL; /* a future version may append fields after a dash */
  if (!unhex(s + 3, 16, out->trace_id) || !unhex(s + 36, 8, out->span_id))
    return -EINVAL;
  if (hexval(s[53]) < 0 || hexval(s[54]) < 0)
    return -EINVAL;
  flags = (uint8_t)(hexval(s[53]) << 4 | hexval(s[54]));
  out->flags = flags;
  out->valid = true;
  return 0;
}

void tele_traceparent_format(const tele_ctx *c, char *buf) {
  char t[33], sp[17];
  tele_hex(c->trace_id, 16, t);
  tele_hex(c->span_id, 8, sp);
  snprintf(buf, 56, "00-%s-%s-%02x", t, sp, c->flags);
}

/* ---- tracestate ---- */

static bool lcalpha(char c) { return c >= 'a' && c <= 'z'; }
static bool digit(char c) { return c >= '0' && c <= '9'; }
static bool keychar(char c) {
  return lcalpha(c) || digit(c) || c == '_' || c == '-' || c == '*' || c == '/';
}

int tele_tracestate_key_check(const char *key, char *err, size_t errlen) {
  size_t n = strlen(key);
  const char *at = strchr(key, '@');
  if (n == 0) {
    snprintf(err, errlen, "the key is empty");
    return -EINVAL;
  }
  if (!at) {
    /* simple-key = lcalpha 0*255( lcalpha / DIGIT / "_" / "-"/ "*" / "/" ) */
    if (n > 256 || !lcalpha(key[0])) {
      snprintf(err, errlen, "the key must start with a lowercase letter and be at most 256 "
                            "characters");
      return -EINVAL;
    }
    for (size_t i = 1; i < n; i++)
      if (!keychar(key[i])) {
        snprintf(err, errlen, "the key may only hold a-z 0-9 _ - * / (character %zu)", i + 1);
        return -EINVAL;
      }
    return 0;
  }
  /* multi-tenant-key = tenant-id "@" system-id; tenant-id = (lcalpha / DIGIT)
   * 0*240(keychar); system-id = lcalpha 0*13(keychar) */
  size_t tn = (size_t)(at - key), sn = n - tn - 1;
  bool ok = tn >= 1 && tn <= 241 && (lcalpha(key[0]) || digit(key[0])) && sn >= 1 && sn <= 14 &&
            lcalpha(at[1]);
  for (size_t i = 1; ok && i < tn; i++)
    ok = keychar(key[i]);
  for (size_t i = 2; ok && i <= sn; i++)
    ok = keychar(at[i]);
  if (!ok) {
    snprintf(err, errlen, "a multi-tenant key is tenant@system: tenant 1..241 of a-z 0-9 _ - * / "
                          "starting with a letter or digit, system 1..14 starting with a letter");
    return -EINVAL;
  }
  return 0;
}

int tele_tracestate_value_check(const char *v, char *err, size_t errlen) {
  /* value = 0*255(chr) nblk-chr; nblk-chr = %x21-2B / %x2D-3C / %x3E-7E; chr = %x20 / nblk-chr */
  size_t n = strlen(v);
  if (n == 0 || n > 256) {
    snprintf(err, errlen, "the value must be 1..256 characters");
    return -EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)v[i];
    bool nblk = c >= 0x21 && c <= 0x7e && c != ',' && c != '=';
    if (!nblk && !(c == ' ' && i + 1 < n)) {
      snprintf(err, errlen,
               c == ' ' ? "the value may not end with a space"
                        : "the value may only hold printable ASCII other than ',' and '=' "
                          "(byte 0x%02x at %zu)",
               c, i + 1);
      return -EINVAL;
    }
  }
  return 0;
}

/* Append "key=value" to out (with a comma) unless its key is already taken. */
static void add_member(char *out, size_t cap, size_t *len, size_t *count, const char *key,
                       size_t klen, const char *val, size_t vlen) {
  if (*count >= TELE_TRACESTATE_MAX_MEMBERS || *len + klen + vlen + 2 >= cap)
    return;
  /* key already present? (members are short; a linear scan is fine) */
  const char *p = out;
  while (*p) {
    const char *eq = strchr(p, '=');
    if (eq && (size_t)(eq - p) == klen && memcmp(p, key, klen) == 0)
      return;
    const char *comma = strchr(p, ',');
    if (!comma)
      break;
    p = comma + 1;
  }
  if (*len)
    out[(*len)++] = ',';
  memcpy(out + *len, key, klen);
  *len += klen;
  out[(*len)++] = '=';
  memcpy(out + *len, val, vlen);
  *len += vlen;
  out[*len] = '\0';
  (*count)++;
}

char *tele_tracestate_merge(const char *incoming, const tele_kv *members, size_t n) {
  size_t cap = TELE_TRACESTATE_MAX_LEN + 1;
  for (size_t i = 0; i < n; i++)
    cap += strlen(members[i].key) + strlen(members[i].value) + 2;
  char *out = malloc(cap);
  if (!out)
    return NULL;
  out[0] = '\0';
  size_t len = 0, count = 0;
  for (size_t i = 0; i < n; i++)
    add_member(out, cap, &len, &count, members[i].key, strlen(members[i].key), members[i].value,
               strlen(members[i].value));
  if (!incoming || strlen(incoming) > TELE_TRACESTATE_MAX_LEN * 2)
    return out;
  const char *p = incoming;
  char err[8], key[257], val[257];
  while (*p) {
    const char *end = strchr(p, ',');
    size_t mlen = end ? (size_t)(end - p) : strlen(p);
    /* optional whitespace around members (OWS) */
    const char *a = p, *b = p + mlen;
    while (a < b && (*a == ' ' || *a == '\t'))
      a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
      b--;
    const char *eq = memchr(a, '=', (size_t)(b - a));
    if (eq && (size_t)(eq - a) < sizeof key && (size_t)(b - eq - 1) < sizeof val) {
      size_t kl = (size_t)(eq - a), vl = (size_t)(b - eq - 1);
      memcpy(key, a, kl);
      key[kl] = '\0';
      memcpy(val, eq + 1, vl);
      val[vl] = '\0';
      if (tele_tracestate_key_check(key, err, sizeof err) == 0 &&
          tele_tracestate_value_check(val, err, sizeof err) == 0 &&
          len + kl + vl + 2 <= TELE_TRACESTATE_MAX_LEN)
        add_member(out, cap, &len, &count, key, kl, val, vl);
    }
    if (!end)
      break;
    p = end + 1;
  }
  return out;
}
