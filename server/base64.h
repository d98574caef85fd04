/* Standard base64 (RFC 4648, padded), written for the output hot path: no
 * allocation, straight into the caller's buffer. */
#ifndef WARDEN_BASE64_H
#define WARDEN_BASE64_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

static inline size_t base64_encoded_len(size_t n) { return (n + 2) / 3 * 4; }
/* Writes base64_encoded_len(n) bytes to out (no NUL); returns that length. */
size_t base64_encode(const uint8_t *in, size_t n, char *out);
/* The same without SIMD (base64_encode uses AVX2 where the CPU has it). */
size_t base64_encode_scalar(const uint8_t *in, size_t n, char *out);
/* Decodes into out (room for n/4*3 bytes); returns the length or -1 when the
 * input is not valid padded base64. */
ssize_t base64_decode(const char *in, size_t n, uint8_t *out);

#endif
