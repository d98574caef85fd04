/* A flat byte encoding for handing a spawn to the zygote (server/exec/
 * zygote.c): fixed-width integers in host order (both ends are the same
 * binary on the same machine) and length-prefixed strings. The writer grows
 * a buffer; the reader checks every length against what is left and turns
 * any overrun into an error, never a read past the end.
 *
 * Header-only: both server/exec and server/sandbox encode their part. */
#ifndef WARDEN_WIRE_H
#define WARDEN_WIRE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A string of more than this is refused by the reader: the spawn limits
 * (128 KiB per argv/env entry) and PATH_MAX-sized paths fit well inside. */
#define WIRE_STR_MAX (1u << 20)
/* And an array of more than this many strings (argv and env are capped at
 * 16384 entries each before any spawn work). */
#define WIRE_VEC_MAX (1u << 16)

typedef struct wire_buf {
  uint8_t *p;
  size_t len, cap;
  bool oom; /* a growth failed: the buffer is unusable */
} wire_buf;

static inline void wire_put(wire_buf *w, const void *src, size_t n) {
  if (w->oom)
    return;
  if (w->len + n > w->cap) {
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < w->len + n)
      cap *= 2;
    uint8_t *p = realloc(w->p, cap);
    if (!p) {
      w->oom = true;
      return;
    }
    w->p = p;
    w->cap = cap;
  }
  memcpy(w->p + w->len, src, n);
  w->len += n;
}

static inline void wire_u8(wire_buf *w, uint8_t v) { wire_put(w, &v, 1); }
static inline void wire_u32(wire_buf *w, uint32_t v) { wire_put(w, &v, sizeof v); }
static inline void wire_u64(wire_buf *w, uint64_t v) { wire_put(w, &v, sizeof v); }
static inline void wire_i32(wire_buf *w, int32_t v) { wire_put(w, &v, sizeof v); }

/* NULL is encoded apart from "" (length 0xffffffff). */
static inline void wire_str(wire_buf *w, const char *s) {
  if (!s) {
    wire_u32(w, UINT32_MAX);
    return;
  }
  size_t n = strlen(s);
  if (n > WIRE_STR_MAX) {
    w->oom = true; /* cannot be read back: fail the encoding */
    return;
  }
  wire_u32(w, (uint32_t)n);
  wire_put(w, s, n);
}

/* A NULL-terminated array (NULL itself: count UINT32_MAX). */
static inline void wire_strv(wire_buf *w, char *const *v) {
  if (!v) {
    wire_u32(w, UINT32_MAX);
    return;
  }
  uint32_t n = 0;
  while (v[n])
    n++;
  wire_u32(w, n);
  for (uint32_t i = 0; i < n; i++)
    wire_str(w, v[i]);
}

static inline void wire_buf_free(wire_buf *w) {
  free(w->p);
  w->p = NULL;
  w->len = w->cap = 0;
}

typedef struct wire_rd {
  const uint8_t *p;
  size_t left;
  int err; /* 0, or -EPROTO after the first overrun (every later read fails too) */
} wire_rd;

static inline bool wire_get(wire_rd *r, void *dst, size_t n) {
  if (r->err || n > r->left) {
    r->err = -EPROTO;
    memset(dst, 0, n);
    return false;
  }
  memcpy(dst, r->p, n);
  r->p += n;
  r->left -= n;
  return true;
}

static inline uint8_t wire_get_u8(wire_rd *r) {
  uint8_t v;
  wire_get(r, &v, 1);
  return v;
}
static inline uint32_t wire_get_u32(wire_rd *r) {
  uint32_t v;
  wire_get(r, &v, sizeof v);
  return v;
}
static inline uint64_t wire_get_u64(wire_rd *r) {
  uint64_t v;
  wire_get(r, &v, sizeof v);
  return v;
}
static inline int32_t wire_get_i32(wire_rd *r) {
  int32_t v;
  wire_get(r, &v, sizeof v);
  return v;
}

/* A malloc'd copy (NUL-terminated), or NULL for an encoded NULL or an error
 * (r->err tells them apart). */
static inline char *wire_get_str(wire_rd *r) {
  uint32_t n = wire_get_u32(r);
  if (r->err || n == UINT32_MAX)
    return NULL;
  if (n > WIRE_STR_MAX || n > r->left) {
    r->err = -EPROTO;
    return NULL;
  }
  char *s = malloc((size_t)n + 1);
  if (!s) {
    r->err = -ENOMEM;
    return NULL;
  }
  memcpy(s, r->p, n);
  s[n] = '\0';
  r->p += n;
  r->left -= n;
  return s;
}

static inline void wire_strv_free(char **v) {
  if (!v)
    return;
  for (char **p = v; *p; p++)
    free(*p);
  free(v);
}

/* A malloc'd NULL-terminated array of malloc'd strings; NULL for an encoded
 * NULL or an error. *n (when given) gets the count. */
static inline char **wire_get_strv(wire_rd *r, size_t *n_out) {
  uint32_t n = wire_get_u32(r);
  if (n_out)
    *n_out = 0;
  if (r->err || n == UINT32_MAX)
    return NULL;
  if (n > WIRE_VEC_MAX) {
    r->err = -EPROTO;
    return NULL;
  }
  char **v = calloc((size_t)n + 1, sizeof *v);
  if (!v) {
    r->err = -ENOMEM;
    return NULL;
  }
  for (uint32_t i = 0; i < n; i++) {
    v[i] = wire_get_str(r);
    if (!v[i]) {
      if (!r->err)
        r->err = -EPROTO; /* no NULL inside an array */
      wire_strv_free(v);
      return NULL;
    }
  }
  if (n_out)
    *n_out = n;
  return v;
}

#endif
