#include "server/envpolicy.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Longest variable name the filters look at; longer ones are not passed. */
#define ENV_NAME_MAX 256

static const char *const core_names[] = {"HOME", "LOGNAME", "PATH",  "SHELL", "USER", "USERNAME",
                                         "TMPDIR", "TEMP",  "TMP",  "LANG",  "TERM", "TZ", NULL};

/* Dropped by default (no explicit `exclude`): names that look like secrets.
 * Case-insensitive globs; *AUTH* is checked separately (AUTHOR is not a
 * secret), and so are values that carry a password (URLs with one in
 * their userinfo: DATABASE_URL, https_proxy, ...). */
static const char *const default_exclude[] = {
    "*KEY*",        "*SECRET*", "*TOKEN*", "*PASSWD*", "*PASSWORD*", "*CREDENTIAL*",
    "*_PAT",        "*_PASS",   "*_PWD",   "MYSQL_PWD", "*PASSPHRASE*", NULL};

/* Variables that locate host sockets (agents, buses, terminals, editors,
 * display and sound servers) or the directory that holds them. Left out
 * in every network mode but full. */
static const char *const socket_names[] = {
    "SSH_AUTH_SOCK",         "SSH_AGENT_PID",       "GPG_AGENT_INFO",
    "DBUS_SESSION_BUS_ADDRESS", "DBUS_SYSTEM_BUS_ADDRESS", "XDG_RUNTIME_DIR",
    "WAYLAND_DISPLAY",       "WAYLAND_SOCKET",      "XAUTHORITY",
    "PULSE_SERVER",          "PIPEWIRE_REMOTE",     "TMUX",
    "STY",                   "SWAYSOCK",            "I3SOCK",
    "NIRI_SOCKET",           "HYPRLAND_INSTANCE_SIGNATURE", "NVIM",
    "NVIM_LISTEN_ADDRESS",   "KITTY_LISTEN_ON",     "VSCODE_IPC_HOOK",
    "VSCODE_IPC_HOOK_CLI",   "VSCODE_GIT_IPC_HANDLE", "EMACS_SOCKET_NAME",
    NULL};

/* Left out when their value is a unix socket (not when it is tcp://). */
static const char *const socket_if_local[] = {"DOCKER_HOST", "CONTAINER_HOST", "PODMAN_HOST",
                                              NULL};

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

/* AUTH anywhere, except as part of AUTHOR (GIT_AUTHOR_NAME), while
 * AUTHORIZATION / AUTHORISE stay secrets. */
static bool has_auth(const char *name) {
  /* Locators, not secrets: the socket filter decides on them by network
   * mode (an ssh agent must keep working with full access). */
  if (strcmp(name, "SSH_AUTH_SOCK") == 0 || strcmp(name, "XAUTHORITY") == 0)
    return false;
  for (const char *s = name; *s; s++) {
    if (strncasecmp(s, "AUTH", 4) != 0)
      continue;
    if (strncasecmp(s + 4, "OR", 2) == 0 && strncasecmp(s + 6, "IZ", 2) != 0 &&
        strncasecmp(s + 6, "IS", 2) != 0)
      continue;
    return true;
  }
  return false;
}

/* scheme://user:password@host...: a non-empty password in the userinfo. */
static bool url_has_password(const char *v) {
  const char *p = strstr(v, "://");
  if (!p)
    return false;
  p += 3;
  size_t auth_len = strcspn(p, "/?#");
  const char *at = NULL;
  for (size_t i = 0; i < auth_len; i++)
    if (p[i] == '@')
      at = p + i;
  if (!at)
    return false;
  const char *colon = memchr(p, ':', (size_t)(at - p));
  return colon && colon + 1 < at;
}

bool envpolicy_is_secret(const char *name, const char *value) {
  return matches_any(name, NULL, default_exclude) || has_auth(name) ||
         (value && url_has_password(value));
}

static bool is_socket_path(const char *p, size_t n) {
  char buf[4096];
  if (n == 0 || n >= sizeof buf || p[0] != '/')
    return false;
  memcpy(buf, p, n);
  buf[n] = '\0';
  struct stat st;
  return stat(buf, &st) == 0 && S_ISSOCK(st.st_mode);
}

bool envpolicy_locates_socket(const char *name, const char *value) {
  for (const char *const *s = socket_names; *s; s++)
    if (strcmp(*s, name) == 0)
      return true;
  if (!value)
    return false;
  for (const char *const *s = socket_if_local; *s; s++)
    if (strcmp(*s, name) == 0)
      return strncmp(value, "unix:", 5) == 0 || value[0] == '/' ||
             strncmp(value, "npipe:", 6) == 0;
  /* DISPLAY: ":0", "unix:0" and "/path:0" are the local X server's socket
   * (path or abstract); "host:0" is TCP and stays. */
  if (strcmp(name, "DISPLAY") == 0)
    return value[0] == ':' || value[0] == '/' || strncmp(value, "unix:", 5) == 0;
  /* Any other variable whose value names a socket: a path, or a list of
   * them (',', ';' or ':' separated), bare or as unix:path=/unix:// */
  if (strstr(value, "unix:abstract=") || strstr(value, "unix:@"))
    return true;
  if (!strchr(value, '/'))
    return false;
  const char *s = value;
  while (*s) {
    size_t n = strcspn(s, ",;:=");
    if (is_socket_path(s, n))
      return true;
    s += n;
    if (*s)
      s++;
  }
  return false;
}

/* ---- the list and its index ---- */

typedef struct slot {
  char *name;   /* owned copy; NULL: empty */
  size_t idx;   /* in envlist.v */
  uint64_t hash;
} slot;

typedef struct envlist {
  char **v;     /* "NAME=value"; NULL where a variable was unset */
  size_t n, cap;
  slot *tab;
  size_t tab_cap, tab_used; /* tab_cap a power of two */
} envlist;

static uint64_t hash_name(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ull;
  }
  return h;
}

static slot *lookup(const envlist *l, const char *name, size_t len, uint64_t h) {
  size_t mask = l->tab_cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    slot *s = &l->tab[i];
    if (!s->name || (s->hash == h && strncmp(s->name, name, len) == 0 && s->name[len] == '\0'))
      return s;
  }
}

static int grow_table(envlist *l) {
  size_t cap = l->tab_cap ? l->tab_cap * 2 : 128;
  slot *t = calloc(cap, sizeof *t);
  if (!t)
    return -1;
  for (size_t i = 0; i < l->tab_cap; i++) {
    slot *o = &l->tab[i];
    if (!o->name)
      continue;
    for (size_t k = o->hash & (cap - 1);; k = (k + 1) & (cap - 1)) {
      if (!t[k].name) {
        t[k] = *o;
        break;
      }
    }
  }
  free(l->tab);
  l->tab = t;
  l->tab_cap = cap;
  return 0;
}

static int put(envlist *l, const char *name, size_t nlen, const char *value) {
  if ((l->tab_used + 1) * 2 > l->tab_cap && grow_table(l) < 0)
    return -1;
  size_t vlen = strlen(value);
  char *kv = malloc(nlen + vlen + 2);
  if (!kv)
    return -1;
  memcpy(kv, name, nlen);
  kv[nlen] = '=';
  memcpy(kv + nlen + 1, value, vlen + 1);
  uint64_t h = hash_name(name, nlen);
  slot *s = lookup(l, name, nlen, h);
  if (s->name) {
    free(l->v[s->idx]);
    l->v[s->idx] = kv;
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
  s->name = strndup(name, nlen);
  if (!s->name) {
    free(kv);
    return -1;
  }
  s->hash = h;
  s->idx = l->n;
  l->tab_used++;
  l->v[l->n++] = kv;
  l->v[l->n] = NULL;
  return 0;
}

static void unset(envlist *l, const char *name, size_t len) {
  if (!l->tab_cap)
    return;
  slot *s = lookup(l, name, len, hash_name(name, len));
  if (s->name && l->v[s->idx]) {
    free(l->v[s->idx]);
    l->v[s->idx] = NULL; /* the slot stays: a later put reuses the position */
  }
}

static void drop_index(envlist *l) {
  for (size_t i = 0; i < l->tab_cap; i++)
    free(l->tab[i].name);
  free(l->tab);
  l->tab = NULL;
  l->tab_cap = l->tab_used = 0;
}

static void list_free(envlist *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  drop_index(l);
}

char **envpolicy_build_ex(char **base, const envpolicy_opts *o) {
  envlist l = {0};
  const json_t *policy = o ? o->policy : NULL;
  const char *inherit = json_string_value(json_object_get(policy, "inherit"));
  if (!inherit)
    inherit = "all";
  const json_t *exclude = json_object_get(policy, "exclude");
  const json_t *include_only = json_object_get(policy, "includeOnly");
  if (json_is_null(exclude))
    exclude = NULL;
  if (json_is_null(include_only))
    include_only = NULL;
  l.v = calloc(64, sizeof *l.v);
  if (!l.v)
    return NULL;
  l.cap = 64;
  if (strcmp(inherit, "none") != 0) {
    bool core_only = strcmp(inherit, "core") == 0;
    for (char **e = base; e && *e; e++) {
      const char *eq = strchr(*e, '=');
      if (!eq || eq == *e)
        continue;
      size_t nlen = (size_t)(eq - *e);
      char name[ENV_NAME_MAX];
      if (nlen >= sizeof name)
        continue;
      memcpy(name, *e, nlen);
      name[nlen] = '\0';
      if (core_only && !is_core(name, nlen))
        continue;
      if (include_only && !matches_any(name, include_only, NULL))
        continue;
      bool drop;
      if (exclude) {
        if (matches_any(name, exclude, NULL))
          continue; /* the client's own choice: not reported */
        drop = false;
      } else {
        drop = envpolicy_is_secret(name, eq + 1);
      }
      if (!drop && o && o->drop_sockets)
        drop = envpolicy_locates_socket(name, eq + 1);
      if (drop) {
        if (o && o->dropped && json_array_append_new(o->dropped, json_string(name)) < 0)
          goto fail;
        continue;
      }
      if (put(&l, name, nlen, eq + 1) < 0)
        goto fail;
    }
  }
  const char *key;
  const json_t *val;
  json_object_foreach((json_t *)(o ? o->env : NULL), key, val) {
    if (json_is_null(val))
      unset(&l, key, strlen(key));
    else if (json_is_string(val) && put(&l, key, strlen(key), json_string_value(val)) < 0)
      goto fail;
  }
  for (char *const *x = o ? o->extra : NULL; x && *x; x++) {
    const char *eq = strchr(*x, '=');
    if (eq && put(&l, *x, (size_t)(eq - *x), eq + 1) < 0)
      goto fail;
  }
  /* compact the unset positions */
  size_t w = 0;
  for (size_t i = 0; i < l.n; i++)
    if (l.v[i])
      l.v[w++] = l.v[i];
  l.v[w] = NULL;
  l.n = w;
  drop_index(&l);
  return l.v;
fail:
  list_free(&l);
  return NULL;
}

char **envpolicy_build(char **base, const json_t *policy, const json_t *env, char *const *extra) {
  envpolicy_opts o = {.policy = policy, .env = env, .extra = extra};
  return envpolicy_build_ex(base, &o);
}

void envpolicy_free(char **envp) {
  for (char **e = envp; e && *e; e++)
    free(*e);
  free(envp);
}
