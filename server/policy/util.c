/* server/policy: string vectors, path helpers and error formatting. */
#include "server/policy/policy_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- string vectors ---- */

int pol_sv_push_own(pol_strvec *sv, char *s) {
  if (!s)
    return -ENOMEM;
  if (sv->n == sv->cap) {
    size_t cap = sv->cap ? sv->cap * 2 : 8;
    char **v = realloc(sv->v, cap * sizeof *v);
    if (!v) {
      free(s);
      return -ENOMEM;
    }
    sv->v = v;
    sv->cap = cap;
  }
  sv->v[sv->n++] = s;
  return 0;
}

int pol_sv_push(pol_strvec *sv, const char *s) { return pol_sv_push_own(sv, strdup(s)); }

bool pol_sv_contains(const pol_strvec *sv, const char *s) {
  for (size_t i = 0; i < sv->n; i++)
    if (strcmp(sv->v[i], s) == 0)
      return true;
  return false;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

void pol_sv_sort_uniq(pol_strvec *sv) {
  if (sv->n < 2)
    return;
  qsort(sv->v, sv->n, sizeof *sv->v, cmp_str);
  size_t w = 1;
  for (size_t r = 1; r < sv->n; r++) {
    if (strcmp(sv->v[r], sv->v[w - 1]) == 0)
      free(sv->v[r]);
    else
      sv->v[w++] = sv->v[r];
  }
  sv->n = w;
}

void pol_sv_free(pol_strvec *sv) {
  for (size_t i = 0; i < sv->n; i++)
    free(sv->v[i]);
  free(sv->v);
  sv->v = NULL;
  sv->n = sv->cap = 0;
}

char **pol_sv_steal(pol_strvec *sv, size_t *n) {
  char **v = sv->v;
  *n = sv->n;
  if (sv->n == 0) {
    free(v);
    v = NULL;
  }
  sv->v = NULL;
  sv->n = sv->cap = 0;
  return v;
}

/* ---- paths ---- */

char *pol_path_clean(const char *p) {
  if (!p || p[0] != '/') {
    errno = EINVAL;
    return NULL;
  }
  size_t len = strlen(p);
  char *out = malloc(len + 2);
  if (!out)
    return NULL;
  size_t o = 0; /* out[0..o) is "" or "/a/b" (no trailing slash) */
  const char *s = p;
  while (*s) {
    while (*s == '/')
      s++;
    if (!*s)
      break;
    const char *e = strchr(s, '/');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    if (n == 1 && s[0] == '.') {
      /* skip */
    } else if (n == 2 && s[0] == '.' && s[1] == '.') {
      while (o > 0 && out[o - 1] != '/')
        o--;
      if (o > 0)
        o--; /* drop the slash too */
    } else {
      out[o++] = '/';
      memcpy(out + o, s, n);
      o += n;
    }
    s += n;
  }
  if (o == 0)
    out[o++] = '/';
  out[o] = '\0';
  return out;
}

char *pol_path_join(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  bool slash = a > 0 && dir[a - 1] == '/';
  char *out = malloc(a + b + 2);
  if (!out)
    return NULL;
  memcpy(out, dir, a);
  size_t o = a;
  if (!slash)
    out[o++] = '/';
  memcpy(out + o, name, b + 1);
  return out;
}

char *pol_path_normalize(const char *p) {
  char *clean = pol_path_clean(p);
  if (!clean)
    return NULL;
  char *real = realpath(clean, NULL);
  if (real) {
    free(clean);
    return real;
  }
  /* Walk up to the longest ancestor that canonicalizes; keep the rest. */
  size_t len = strlen(clean);
  char *prefix = strdup(clean);
  if (!prefix) {
    free(clean);
    return NULL;
  }
  char *out = NULL;
  for (;;) {
    char *slash = strrchr(prefix, '/');
    if (!slash || slash == prefix) {
      /* only "/" is left: it always exists */
      out = strdup(clean);
      break;
    }
    *slash = '\0';
    real = realpath(prefix, NULL);
    if (real) {
      const char *rest = clean + strlen(prefix); /* starts with '/' */
      size_t rl = strlen(real);
      bool root = rl == 1;
      out = malloc(rl + (len - strlen(prefix)) + 1);
      if (out) {
        memcpy(out, real, root ? 0 : rl);
        strcpy(out + (root ? 0 : rl), rest);
      }
      free(real);
      break;
    }
  }
  free(prefix);
  free(clean);
  return out;
}

bool pol_path_under(const char *p, const char *root) {
  size_t n = strlen(root);
  if (n == 1 && root[0] == '/')
    return p[0] == '/';
  return strncmp(p, root, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

bool pol_path_strictly_under(const char *p, const char *root) {
  return pol_path_under(p, root) && strcmp(p, root) != 0;
}

size_t pol_path_depth(const char *p) {
  size_t d = 0;
  for (const char *s = p; *s; s++)
    if (*s == '/' && s[1] != '\0')
      d++;
  return d;
}

/* ---- errors ---- */

void pol_err_set(policy_error *err, const char *path, const char *fmt, ...) {
  if (!err)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  snprintf(err->path, sizeof err->path, "%s", path ? path : "");
}

/* ---- names ---- */

const char *policy_net_mode_name(policy_net_mode m) {
  switch (m) {
  case POLICY_NET_NONE:
    return "none";
  case POLICY_NET_PROXY:
    return "proxy";
  case POLICY_NET_FULL:
  default:
    return "full";
  }
}

const char *policy_backend_name(policy_backend b) {
  switch (b) {
  case POLICY_BACKEND_LANDLOCK:
    return "landlock";
  case POLICY_BACKEND_NAMESPACES:
    return "namespaces";
  case POLICY_BACKEND_NONE:
  default:
    return "none";
  }
}

const char *pol_access_name(pol_access a) {
  switch (a) {
  case POL_ACC_WRITE:
    return "write";
  case POL_ACC_NONE:
    return "none";
  case POL_ACC_READ:
  default:
    return "read";
  }
}

const char *pol_token_name(pol_token t) {
  switch (t) {
  case POL_TOK_ROOT:
    return ":root";
  case POL_TOK_MINIMAL:
    return ":minimal";
  case POL_TOK_CWD:
    return ":cwd";
  case POL_TOK_TMPDIR:
    return ":tmpdir";
  case POL_TOK_SLASH_TMP:
    return ":slash_tmp";
  case POL_TOK_PATH:
  default:
    return NULL;
  }
}

policy_net_mode pol_net_restricted(const policy_context *ctx) {
  return ctx && ctx->proxy_available ? POLICY_NET_PROXY : POLICY_NET_NONE;
}
