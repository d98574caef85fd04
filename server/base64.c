#include "server/base64.h"

#include <stdbool.h>
#include <string.h>

static const char enc[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encode(const uint8_t *in, size_t n, char *out) {
  /* Pairs table: two output characters per 12 input bits. */
  static char pairs[4096][2];
  static int ready;
  if (!ready) {
    for (int i = 0; i < 4096; i++) {
      pairs[i][0] = enc[i >> 6];
      pairs[i][1] = enc[i & 63];
    }
    ready = 1;
  }
  char *o = out;
  size_t i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  /* The hot path (every byte of process output goes through here): six
   * input bytes per step, read as one 64-bit load, written as one 64-bit
   * store of four character pairs. It reads two bytes past the six it
   * encodes, hence the bound. */
  for (; i + 8 <= n; i += 6) {
    uint64_t v;
    memcpy(&v, in + i, 8);
    v = __builtin_bswap64(v);
    uint16_t a, b, c, d;
    memcpy(&a, pairs[(v >> 52) & 0xfff], 2);
    memcpy(&b, pairs[(v >> 40) & 0xfff], 2);
    memcpy(&c, pairs[(v >> 28) & 0xfff], 2);
    memcpy(&d, pairs[(v >> 16) & 0xfff], 2);
    uint64_t w = (uint64_t)a | (uint64_t)b << 16 | (uint64_t)c << 32 | (uint64_t)d << 48;
    memcpy(o, &w, 8);
    o += 8;
  }
#endif
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    memcpy(o, pairs[v >> 12], 2);
    memcpy(o + 2, pairs[v & 0xfff], 2);
    o += 4;
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    o[0] = enc[v >> 18];
    o[1] = enc[(v >> 12) & 63];
    o[2] = '=';
    o[3] = '=';
    o += 4;
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    o[0] = enc[v >> 18];
    o[1] = enc[(v >> 12) & 63];
    o[2] = enc[(v >> 6) & 63];
    o[3] = '=';
    o += 4;
  }
  return (size_t)(o - out);
}

ssize_t base64_decode(const char *in, size_t n, uint8_t *out) {
  static signed char dec[256];
  static int ready;
  if (!ready) {
    memset(dec, -1, sizeof dec);
    for (int i = 0; i < 64; i++)
      dec[(unsigned char)enc[i]] = (signed char)i;
    ready = 1;
  }
  if (n % 4)
    return -1;
  size_t o = 0;
  for (size_t i = 0; i < n; i += 4) {
    int a = dec[(unsigned char)in[i]], b = dec[(unsigned char)in[i + 1]];
    int c = dec[(unsigned char)in[i + 2]], d = dec[(unsigned char)in[i + 3]];
    bool last = i + 4 == n;
    if (a < 0 || b < 0)
      return -1;
    if (last && in[i + 2] == '=' && in[i + 3] == '=') {
      out[o++] = (uint8_t)(a << 2 | b >> 4);
      break;
    }
    if (last && in[i + 3] == '=') {
      if (c < 0)
        return -1;
      out[o++] = (uint8_t)(a << 2 | b >> 4);
      out[o++] = (uint8_t)((b & 15) << 4 | c >> 2);
      break;
    }
    if (c < 0 || d < 0)
      return -1;
    out[o++] = (uint8_t)(a << 2 | b >> 4);
    out[o++] = (uint8_t)((b & 15) << 4 | c >> 2);
    out[o++] = (uint8_t)((c & 3) << 6 | d);
  }
  return (ssize_t)o;
}
