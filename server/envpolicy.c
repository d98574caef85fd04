#include "server/envpolicy.h"

#include <fnmatch.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char *const core_names[] = {"HOME", "LOGNAME", "PATH",  "SHELL", "USER", "USERNAME",
                                         "TMPDIR", "TEMP",  "TMP",  "LANG",  "TERM", "TZ", NULL};
/* Dropped by default (no explicit `exclude`): names that look like secrets. */
static const char *const default_exclude[] = {"*KEY*", "*SECRET*", "*TOKEN*", NULL};

static bool is_core(const char *name, size_t len) {
  if (len > 3 && strncmp(name, "LC_", 3) == 0)
    return true;
  for (const char *const *c = core_names; *c; c++)
    if (strlen(*c) == len && strncmp(*c, name, len) == 0)
      return true;
  return false;
}

static bool matches_any(const char *name, const json_t *globs, const char *const *fallback) {
  if (globs) {
    size_t i;
    const json_t *g;
    json_array_foreach(globs, i, g) {
      if (json_is_string(g) && fnmatch(json_string_value(g), name, FNM_CASEFOLD) == 0)
        return true;
    }
    return false;
  }
  for (const char *const *f = fallback; f && *f; f++)
    if (fnmatch(*f, name, FNM_CASEFOLD) == 0)
      return true;
  return false;
}

typedef struct envlist {
  char **v;
  size_t n, cap;
} envlist;

static ssize_t find(const envlist *l, const char *name, size_t len) {
  for (size_t i = 0; i < l->n; i++)
    if (strncmp(l->v[i], name, len) == 0 && l->v[i][len] == '=')
      return (ssize_t)i;
  return -1;
}

static int put(envlist *l, const char *name, size_t nlen, const char *value) {
  size_t vlen = strlen(value);
  char *kv = malloc(nlen + vlen + 2);
  if (!kv)
    return -1;
  memcpy(kv, name, nlen);
  kv[nlen] = '=';
  memcpy(kv + nlen + 1, value, vlen + 1);
  ssize_t at = find(l, name, nlen);
  if (at >= 0) {
    free(l->v[at]);
    l->v[at] = kv;
    return 0;
  }
  if (l->n + 2 > l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    char **nv = realloc(l->v, cap * sizeof *nv);
    if (!nv) {
      free(kv);
      return -1;
    }
    l->v = nv;
    l->cap = cap;
  }
  l->v[l->n++] = kv;
  l->v[l->n] = NULL;
  return 0;
}

static void unset(envlist *l, const char *name, size_t len) {
  ssize_t at = find(l, name, len);
  if (at < 0)
    return;
  free(l->v[at]);
  memmove(&l->v[at], &l->v[at + 1], (l->n - (size_t)at) * sizeof *l->v);
  l->n--;
}

char **envpolicy_build(char **base, const json_t *policy, const json_t *env, char *const *extra) {
  envlist l = {0};
  const char *inherit = json_string_value(json_object_get(policy, "inherit"));
  if (!inherit)
    inherit = "all";
  const json_t *exclude = json_object_get(policy, "exclude");
  const json_t *include_only = json_object_get(policy, "includeOnly");
  if (json_is_null(exclude))
    exclude = NULL;
  if (json_is_null(include_only))
    include_only = NULL;
  if (put(&l, "", 0, "") < 0) /* ensure v is allocated; removed below */
    return NULL;
  unset(&l, "", 0);
  if (strcmp(inherit, "none") != 0) {
    bool core_only = strcmp(inherit, "core") == 0;
    for (char **e = base; e && *e; e++) {
      const char *eq = strchr(*e, '=');
      if (!eq || eq == *e)
        continue;
      size_t nlen = (size_t)(eq - *e);
      char name[256];
      if (nlen >= sizeof name)
        continue;
      memcpy(name, *e, nlen);
      name[nlen] = '\0';
      if (core_only && !is_core(name, nlen))
        continue;
      if (matches_any(name, exclude, default_exclude))
        continue;
      if (include_only && !matches_any(name, include_only, NULL))
        continue;
      if (put(&l, name, nlen, eq + 1) < 0)
        goto fail;
    }
  }
  const char *key;
  const json_t *val;
  json_object_foreach((json_t *)env, key, val) {
    if (json_is_null(val))
      unset(&l, key, strlen(key));
    else if (put(&l, key, strlen(key), json_string_value(val)) < 0)
      goto fail;
  }
  for (char *const *x = extra; x && *x; x++) {
    const char *eq = strchr(*x, '=');
    if (eq && put(&l, *x, (size_t)(eq - *x), eq + 1) < 0)
      goto fail;
  }
  return l.v;
fail:
  envpolicy_free(l.v);
  return NULL;
}

void envpolicy_free(char **envp) {
  for (char **e = envp; e && *e; e++)
    free(*e);
  free(envp);
}
