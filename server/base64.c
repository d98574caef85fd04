#include "server/base64.h"

#include <stdbool.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define WARDEN_B64_AVX2 1
#endif

static const char enc[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

#ifdef WARDEN_B64_AVX2
/* 24 input bytes -> 32 characters per step with AVX2 (W. Mula and D.
 * Lemire, "Faster Base64 Encoding and Decoding using AVX2 Instructions",
 * 2018): each 128-bit lane takes 12 bytes, a shuffle spreads every 3 bytes
 * over 4, two multiplies move the four 6-bit fields into bytes, and a
 * 16-entry table of offsets turns each into its character. Encodes
 * whole steps only, while 28 bytes are readable (a lane loads 16 bytes);
 * returns how many input bytes it consumed. Every byte of process output
 * passes through here. */
__attribute__((target("avx2"))) static size_t encode_avx2(const uint8_t *in, size_t n,
                                                           char *out) {
  const __m256i shuf = _mm256_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10, 1, 0,
                                        2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10);
  const __m256i lut = _mm256_setr_epi8(
      'a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
      '0' - 52, '0' - 52, '+' - 62, '/' - 63, 'A', 0, 0, 'a' - 26, '0' - 52, '0' - 52, '0' - 52,
      '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '+' - 62, '/' - 63,
      'A', 0, 0);
  size_t i = 0;
  for (; i + 28 <= n; i += 24) {
    __m128i lo = _mm_loadu_si128((const __m128i *)(in + i));
    __m128i hi = _mm_loadu_si128((const __m128i *)(in + i + 12));
    __m256i v = _mm256_shuffle_epi8(_mm256_set_m128i(hi, lo), shuf);
    __m256i t0 = _mm256_and_si256(v, _mm256_set1_epi32(0x0fc0fc00));
    __m256i t1 = _mm256_mulhi_epu16(t0, _mm256_set1_epi32(0x04000040));
    __m256i t2 = _mm256_and_si256(v, _mm256_set1_epi32(0x003f03f0));
    __m256i t3 = _mm256_mullo_epi16(t2, _mm256_set1_epi32(0x01000010));
    __m256i idx = _mm256_or_si256(t1, t3); /* one 6-bit value per byte */
    __m256i r = _mm256_subs_epu8(idx, _mm256_set1_epi8(51)); /* 52..63 -> 1..12 */
    __m256i less = _mm256_cmpgt_epi8(_mm256_set1_epi8(26), idx); /* 0..25 -> 13 */
    r = _mm256_or_si256(r, _mm256_and_si256(less, _mm256_set1_epi8(13)));
    r = _mm256_add_epi8(_mm256_shuffle_epi8(lut, r), idx);
    _mm256_storeu_si256((__m256i *)(out + i / 3 * 4), r);
  }
  return i;
}

static int have_avx2 = -1; /* -1: not asked yet */
#endif

size_t base64_encode(const uint8_t *in, size_t n, char *out) {
#ifdef WARDEN_B64_AVX2
  if (have_avx2 < 0)
    have_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
  if (have_avx2 && n >= 28) {
    size_t done = encode_avx2(in, n, out);
    return done / 3 * 4 + base64_encode_scalar(in + done, n - done, out + done / 3 * 4);
  }
#endif
  return base64_encode_scalar(in, n, out);
}

size_t base64_encode_scalar(const uint8_t *in, size_t n, char *out) {
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
