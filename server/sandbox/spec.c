/* Parent side: turn a policy_plan into a sandbox_spec that the child can
 * execute without allocating.
 *
 * The mount plan. Every path the policy names becomes a "wish"; wishes are
 * sorted by depth (number of path components) and, at equal depth, by kind:
 *   readable roots < /dev,/proc < writable roots < protected subpaths < hidden
 * so a mount always lands on top of the mounts that contain it, and the most
 * specific entry is mounted last (it wins, as in the policy). Each wish is then
 * resolved against what covers it in the new root built so far:
 *   - host-backed (inside a bind of a host directory): the path exists in the
 *     view iff it exists on the host; nothing can be created there by us,
 *     except mask mount points inside writable binds (see stubs);
 *   - ours (the tmpfs root of a restricted-read view, /dev, a tmpfs mask):
 *     mount points are created as needed, and the tmpfs is made read-only at
 *     the end;
 *   - /proc or a file mask: nothing goes beneath.
 *
 * Missing protected or hidden paths inside a writable root are masked so the
 * command cannot create them: the first missing component gets a mount point
 * on the host (a "stub": an empty directory for .git/.codex/.agents, an empty
 * file otherwise), masked by a read-only empty tmpfs or /dev/null. Stubs are
 * refcounted in-process, since concurrent runs may share a workspace, and
 * removed by sandbox_spec_cleanup_host() when the last user is done.
 */
#include "server/sandbox/sandbox_int.h"
#include "server/sandbox/testhook.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- small helpers ---- */

static char *xfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xfmt(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  return n < 0 ? NULL : s;
}

static void set_reason(char **reason, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_reason(char **reason, const char *fmt, ...) {
  if (!reason || *reason)
    return;
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0)
    s = NULL;
  va_end(ap);
  *reason = s;
}

static size_t path_depth(const char *p) {
  size_t d = 0;
  for (const char *c = p; *c; c++)
    if (*c == '/' && c[1] && c[1] != '/')
      d++;
  return d;
}

/* a is an ancestor of, or equal to, b (absolute, normalized paths) */
static bool path_covers(const char *a, const char *b) {
  if (strcmp(a, "/") == 0)
    return true;
  size_t n = strlen(a);
  return strncmp(a, b, n) == 0 && (b[n] == '\0' || b[n] == '/');
}

static bool is_metadata_name(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  return strcmp(base, ".git") == 0 || strcmp(base, ".codex") == 0 || strcmp(base, ".agents") == 0;
}

static bool path_ok(const char *p) {
  return p && p[0] == '/' && strlen(p) < PATH_MAX - sizeof SBX_NEW - 1 && !strstr(p, "/../") &&
         !strstr(p, "/./") && !strstr(p, "//");
}

const char *sbx_net_name(policy_net_mode m) {
  switch (m) {
  case POLICY_NET_NONE:
    return "none";
  case POLICY_NET_PROXY:
    return "proxy";
  default:
    return "full";
  }
}

const char *sbx_backend_name(policy_backend b) {
  switch (b) {
  case POLICY_BACKEND_LANDLOCK:
    return "landlock";
  case POLICY_BACKEND_NAMESPACES:
    return "namespaces";
  default:
    return "none";
  }
}

/* ---- the stub registry (host mount points created for masks) ---- */

typedef struct stub {
  char *path;
  bool dir;
  dev_t dev;
  ino_t ino;
  unsigned refs;
  struct stub *next;
} stub;

static pthread_mutex_t g_stub_lock = PTHREAD_MUTEX_INITIALIZER;
static stub *g_stubs;

/* 0: the stub exists and is ours (refcount taken); -EEXIST: the path exists
 * but is not a stub of ours (someone else created it); other: errno. */
static int stub_acquire(const char *path, bool dir) {
  int rc = 0;
  pthread_mutex_lock(&g_stub_lock);
  stub **pp = &g_stubs;
  for (; *pp; pp = &(*pp)->next)
    if (strcmp((*pp)->path, path) == 0)
      break;
  struct stat st;
  if (*pp) {
    stub *s = *pp;
    if (lstat(path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino) {
      s->refs++;
      goto out;
    }
    /* replaced behind our back: forget it, never delete what is there now */
    *pp = s->next;
    free(s->path);
    free(s);
    rc = lstat(path, &st) == 0 ? -EEXIST : -ESTALE;
    goto out;
  }
  if (dir) {
    if (mkdir(path, 0755) < 0) {
      rc = -errno;
      goto out;
    }
  } else {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
      rc = -errno;
      goto out;
    }
    close(fd);
  }
  stub *s = calloc(1, sizeof *s);
  char *p = strdup(path);
  if (!s || !p || lstat(path, &st) < 0) {
    rc = -ENOMEM;
    if (s && p && errno != ENOMEM)
      rc = -errno;
    free(s);
    free(p);
    if (dir)
      rmdir(path);
    else
      unlink(path);
    goto out;
  }
  s->path = p;
  s->dir = dir;
  s->dev = st.st_dev;
  s->ino = st.st_ino;
  s->refs = 1;
  s->next = g_stubs;
  g_stubs = s;
out:
  pthread_mutex_unlock(&g_stub_lock);
  return rc;
}

static void stub_release(const char *path) {
  pthread_mutex_lock(&g_stub_lock);
  for (stub **pp = &g_stubs; *pp; pp = &(*pp)->next) {
    stub *s = *pp;
    if (strcmp(s->path, path) != 0)
      continue;
    if (--s->refs == 0) {
      struct stat st;
      /* Remove only what we created and what is still empty: another
       * process may have put something there meanwhile. */
      if (lstat(path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino) {
        if (s->dir && S_ISDIR(st.st_mode))
          rmdir(path);
        else if (!s->dir && S_ISREG(st.st_mode) && st.st_size == 0)
          unlink(path);
      }
      *pp = s->next;
      free(s->path);
      free(s);
    }
    break;
  }
  pthread_mutex_unlock(&g_stub_lock);
}

/* ---- the build ---- */

typedef enum wish_kind {
  W_BASE = 0, /* full read: the host root, read-only */
  W_READ,
  W_DEVPROC,
  W_WRITE,
  W_PROTECT,
  W_HIDE,
} wish_kind;

typedef struct wish {
  wish_kind kind;
  const char *path; /* borrowed from the plan (or a literal) */
  const char *wroot; /* W_PROTECT: its writable root */
  size_t depth;
  size_t idx;
} wish;

typedef enum area {
  A_HOST_RO,
  A_HOST_RW,
  A_OURS, /* a tmpfs of ours: create mount points freely */
  A_NONE, /* /proc, a file mask: nothing beneath */
} area;

typedef struct bld {
  const policy_plan *plan;
  const sandbox_build_opts *opts;
  sandbox_spec *spec;
  bool dry;
  char **reason;
  size_t cap_mops, cap_ll, cap_stubs;
  area *areas; /* parallel to spec->mops */
} bld;

static int cmp_wish(const void *a, const void *b) {
  const wish *x = a, *y = b;
  if (x->depth != y->depth)
    return x->depth < y->depth ? -1 : 1;
  if (x->kind != y->kind)
    return x->kind < y->kind ? -1 : 1;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem, size_t extra_elem,
                void **parallel) {
  if (n < *cap)
    return 0;
  size_t nc = *cap ? *cap * 2 : 16;
  void *p = realloc(*arr, nc * elem);
  if (!p)
    return -ENOMEM;
  *arr = p;
  if (parallel) {
    void *q = realloc(*parallel, nc * extra_elem);
    if (!q)
      return -ENOMEM;
    *parallel = q;
  }
  *cap = nc;
  return 0;
}

static int add_mop(bld *b, sbx_mop_kind kind, const char *path, area ar, sbx_mop **out) {
  sandbox_spec *s = b->spec;
  if (grow((void **)&s->mops, &b->cap_mops, s->n_mops, sizeof(sbx_mop), sizeof(area),
           (void **)&b->areas) < 0)
    return -ENOMEM;
  sbx_mop *m = &s->mops[s->n_mops];
  memset(m, 0, sizeof *m);
  m->kind = kind;
  m->dst = strcmp(path, "/") == 0 ? strdup(SBX_NEW) : xfmt("%s%s", SBX_NEW, path);
  static const char *const verbs[] = {"bind", "mask", "mask", "mount proc on", "mount dev on"};
  m->step = xfmt("%s %s", verbs[kind], path);
  if (!m->dst || !m->step) {
    free(m->dst);
    free(m->step);
    return -ENOMEM;
  }
  b->areas[s->n_mops] = ar;
  s->n_mops++;
  *out = m;
  return 0;
}

static int set_src(sbx_mop *m, const char *host) {
  m->src = strcmp(host, "/") == 0 ? strdup(SBX_OLD) : xfmt("%s%s", SBX_OLD, host);
  return m->src ? 0 : -ENOMEM;
}

static int add_ll(bld *b, const char *path, uint64_t access) {
  sandbox_spec *s = b->spec;
  if (grow((void **)&s->ll, &b->cap_ll, s->n_ll, sizeof(sbx_llrule), 0, NULL) < 0)
    return -ENOMEM;
  s->ll[s->n_ll].path = strdup(path);
  if (!s->ll[s->n_ll].path)
    return -ENOMEM;
  s->ll[s->n_ll].access = access;
  s->n_ll++;
  return 0;
}

/* The area the path lies in: the last mount so far whose destination
 * covers it, or the base. */
static area area_of(const bld *b, const char *path, const char **cover_path) {
  const sandbox_spec *s = b->spec;
  for (size_t i = s->n_mops; i-- > 0;) {
    const char *d = s->mops[i].dst + strlen(SBX_NEW);
    const char *p = *d ? d : "/";
    if (path_covers(p, path)) {
      if (cover_path)
        *cover_path = p;
      return b->areas[i];
    }
  }
  if (cover_path)
    *cover_path = "/";
  return s->restricted_root ? A_OURS : A_HOST_RO;
}

/* Reject a path under a writable root whose components (below the root) are
 * symlinks: a mount on it would follow the link, and the command could then
 * swap the link for a real directory. Binding the current target would only
 * protect a snapshot. Returns 0, or -EPERM with the reason. */
static int check_no_symlinks(bld *b, const char *root, const char *path, const char *what) {
  char buf[PATH_MAX];
  size_t rl = strcmp(root, "/") == 0 ? 0 : strlen(root);
  size_t n = strlen(path);
  if (n >= sizeof buf)
    return -ENAMETOOLONG;
  memcpy(buf, path, n + 1);
  for (size_t i = rl + 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0')
      continue;
    char save = buf[i];
    buf[i] = '\0';
    struct stat st;
    int r = lstat(buf, &st);
    if (r == 0 && S_ISLNK(st.st_mode)) {
      set_reason(b->reason,
                 "cannot enforce sandbox %s path %s because it crosses the symlink %s inside the "
                 "writable root %s",
                 what, path, buf, root);
      return -EPERM;
    }
    buf[i] = save;
    if (r < 0)
      break; /* missing from here on */
  }
  return 0;
}

/* First missing component of path below `base` (which exists), into out. */
static int first_missing(const char *base, const char *path, char *out, size_t outsz) {
  size_t bl = strcmp(base, "/") == 0 ? 0 : strlen(base);
  size_t n = strlen(path);
  if (n >= outsz)
    return -ENAMETOOLONG;
  memcpy(out, path, n + 1);
  for (size_t i = bl + 1; i <= n; i++) {
    if (out[i] != '/' && out[i] != '\0')
      continue;
    char save = out[i];
    out[i] = '\0';
    struct stat st;
    if (lstat(out, &st) < 0)
      return 0;
    out[i] = save;
  }
  return -EEXIST;
}

static int add_stub_record(bld *b, const char *path) {
  sandbox_spec *s = b->spec;
  if (grow((void **)&s->stubs, &b->cap_stubs, s->n_stubs, sizeof(char *), 0, NULL) < 0)
    return -ENOMEM;
  s->stubs[s->n_stubs] = strdup(path);
  if (!s->stubs[s->n_stubs])
    return -ENOMEM;
  s->n_stubs++;
  return 0;
}

/* A path that must not be writable (protected) or readable (hidden) does not
 * exist inside a writable bind: mask its first missing component. */
static int mask_missing(bld *b, const wish *w, const char *cover) {
  char m[PATH_MAX];
  int rc = first_missing(cover, w->path, m, sizeof m);
  if (rc == -EEXIST) {
    set_reason(b->reason, "%s appeared while the sandbox was being built; retry", w->path);
    return -EAGAIN;
  }
  if (rc < 0)
    return rc;
  bool dir = is_metadata_name(m);
  if (!b->dry) {
    rc = stub_acquire(m, dir);
    if (rc == -EEXIST || rc == -ESTALE) {
      set_reason(b->reason, "%s appeared while the sandbox was being built; retry", m);
      return -EAGAIN;
    }
    if (rc < 0) {
      set_reason(b->reason, "cannot create the mount point %s to protect %s: %s", m, w->path,
                 strerror(-rc));
      return rc;
    }
    if ((rc = add_stub_record(b, m)) < 0) {
      stub_release(m);
      return rc;
    }
  }
  sbx_mop *op;
  if ((rc = add_mop(b, dir ? SBX_MOP_TMPFS : SBX_MOP_DEVNULL, m, A_NONE, &op)) < 0)
    return rc;
  op->nofollow = true;
  op->readonly = true;
  op->mode = w->kind == W_HIDE ? 0 : 0555;
  if (!dir && (rc = set_src(op, "/dev/null")) < 0)
    return rc;
  if (dir) {
    op->ro_at_end = true;
    b->areas[b->spec->n_mops - 1] = A_OURS;
  }
  op->nofollow = true;
  return 0;
}

/* Does any later wish lie strictly beneath this one? */
static bool has_descendant(const wish *ws, size_t n, size_t i) {
  size_t l = strlen(ws[i].path);
  for (size_t j = i + 1; j < n; j++)
    if (strcmp(ws[i].path, "/") == 0 ||
        (strncmp(ws[j].path, ws[i].path, l) == 0 && ws[j].path[l] == '/'))
      return true;
  return false;
}

static int resolve_wish(bld *b, const wish *ws, size_t n, size_t i) {
  const wish *w = &ws[i];
  const char *cover = "/";
  area ar = area_of(b, w->path, &cover);
  struct stat st;
  sbx_mop *op;
  int rc;

  switch (w->kind) {
  case W_BASE:
    if ((rc = add_mop(b, SBX_MOP_BIND, "/", A_HOST_RO, &op)) < 0 || (rc = set_src(op, "/")) < 0)
      return rc;
    op->readonly = true;
    return 0;

  case W_READ: {
    if (ar != A_OURS)
      return 0; /* already visible (host-backed), or nothing may go there */
    if (stat(w->path, &st) < 0)
      return 0; /* a readable root that does not exist: nothing to show */
    char *real = realpath(w->path, NULL);
    if (!real)
      return 0;
    rc = add_mop(b, SBX_MOP_BIND, w->path, A_HOST_RO, &op);
    if (rc == 0)
      rc = set_src(op, real);
    free(real);
    if (rc < 0)
      return rc;
    op->readonly = true;
    op->create = true;
    op->create_file = !S_ISDIR(st.st_mode);
    op->optional = true;
    return add_ll(b, w->path, SBX_LL_READ);
  }

  case W_DEVPROC: {
    bool dev = strcmp(w->path, "/dev") == 0;
    if (ar == A_NONE)
      return 0;
    if (ar != A_OURS && lstat(w->path, &st) < 0)
      return 0; /* host has no /dev or /proc to cover */
    if ((rc = add_mop(b, dev ? SBX_MOP_DEV : SBX_MOP_PROC, w->path, dev ? A_OURS : A_NONE, &op)) <
        0)
      return rc;
    op->create = ar == A_OURS;
    op->ro_at_end = dev;
    return 0;
  }

  case W_WRITE:
    if (ar == A_NONE)
      return 0;
    if (lstat(w->path, &st) < 0)
      return 0; /* missing writable roots are skipped (nothing to write into) */
    if ((rc = add_mop(b, SBX_MOP_BIND, w->path, A_HOST_RW, &op)) < 0 ||
        (rc = set_src(op, w->path)) < 0)
      return rc;
    op->nofollow = true;
    op->create = ar == A_OURS;
    op->create_file = !S_ISDIR(st.st_mode);
    op->optional = true;
    return add_ll(b, w->path, SBX_LL_ALL);

  case W_PROTECT:
  case W_HIDE: {
    const char *what = w->kind == W_PROTECT ? "read-only" : "deny-read";
    if (ar == A_HOST_RW) {
      if ((rc = check_no_symlinks(b, cover, w->path, what)) < 0)
        return rc;
      if (w->wroot && (rc = check_no_symlinks(b, w->wroot, w->path, what)) < 0)
        return rc;
    }
    bool exists = lstat(w->path, &st) == 0;
    if (!exists)
      return ar == A_HOST_RW ? mask_missing(b, w, cover) : 0;
    if (ar == A_NONE || ar == A_OURS)
      return 0; /* nothing of the host there to protect */
    if (w->kind == W_PROTECT) {
      if (ar == A_HOST_RO)
        return 0; /* read-only already */
      if ((rc = add_mop(b, SBX_MOP_BIND, w->path, A_HOST_RO, &op)) < 0 ||
          (rc = set_src(op, w->path)) < 0)
        return rc;
      op->readonly = true;
      op->nofollow = true;
      return 0;
    }
    /* hide: an empty tmpfs over a directory (mode 0, or 0111 when readable
     * or writable paths beneath must stay reachable), /dev/null over a file */
    bool nofollow = ar == A_HOST_RW;
    if (!nofollow && stat(w->path, &st) < 0)
      return 0;
    if (S_ISDIR(st.st_mode)) {
      if ((rc = add_mop(b, SBX_MOP_TMPFS, w->path, A_OURS, &op)) < 0)
        return rc;
      op->mode = has_descendant(ws, n, i) ? 0111 : 0;
      op->ro_at_end = true;
    } else {
      if ((rc = add_mop(b, SBX_MOP_DEVNULL, w->path, A_NONE, &op)) < 0 ||
          (rc = set_src(op, "/dev/null")) < 0)
        return rc;
    }
    op->readonly = true;
    op->nofollow = nofollow;
    return 0;
  }
  }
  return 0;
}

static int build_mounts(bld *b) {
  const policy_plan *p = b->plan;
  sandbox_spec *s = b->spec;
  size_t nw = 0, cap = 8 + p->n_readable + p->n_unreadable + p->n_writable;
  for (size_t i = 0; i < p->n_writable; i++)
    cap += p->writable_roots[i].n_read_only;
  wish *ws = calloc(cap, sizeof *ws);
  if (!ws)
    return -ENOMEM;
  int rc = 0;
#define WISH(k, pth, wr)                                                                           \
  do {                                                                                             \
    if (!path_ok(pth)) {                                                                           \
      set_reason(b->reason, "path %s in the plan is not absolute and normalized", (pth) ? (pth) : "(null)"); \
      rc = -EINVAL;                                                                                \
      goto out;                                                                                    \
    }                                                                                              \
    ws[nw] = (wish){.kind = (k), .path = (pth), .wroot = (wr), .depth = path_depth(pth), .idx = nw}; \
    nw++;                                                                                          \
  } while (0)

  s->restricted_root = !p->full_disk_read;
  if (p->full_disk_read)
    WISH(W_BASE, "/", NULL);
  else {
    for (size_t i = 0; i < p->n_readable; i++) {
      const char *r = p->readable_roots[i];
      /* /dev and /proc are always the sandbox's own */
      if (r && (path_covers("/proc", r) || strcmp(r, "/dev") == 0))
        continue;
      WISH(W_READ, r, NULL);
    }
    if (b->opts->exe_path && b->opts->exe_path[0] == '/')
      WISH(W_READ, b->opts->exe_path, NULL);
  }
  WISH(W_DEVPROC, "/dev", NULL);
  WISH(W_DEVPROC, "/proc", NULL);
  for (size_t i = 0; i < p->n_writable; i++) {
    const policy_writable_root *w = &p->writable_roots[i];
    WISH(W_WRITE, w->root, NULL);
    for (size_t j = 0; j < w->n_read_only; j++)
      WISH(W_PROTECT, w->read_only_subpaths[j], w->root);
  }
  for (size_t i = 0; i < p->n_unreadable; i++)
    WISH(W_HIDE, p->unreadable_roots[i], NULL);
#undef WISH

  qsort(ws, nw, sizeof *ws, cmp_wish);
  for (size_t i = 0; i < nw && rc == 0; i++)
    rc = resolve_wish(b, ws, nw, i);
  if (rc < 0)
    goto out;

  /* A tmpfs made read-only at the end is addressed by its path: only if no
   * later mount sits exactly on it. */
  for (size_t i = 0; i < s->n_mops; i++)
    for (size_t j = i + 1; j < s->n_mops && s->mops[i].ro_at_end; j++)
      if (strcmp(s->mops[i].dst, s->mops[j].dst) == 0)
        s->mops[i].ro_at_end = false;
  s->root_ro_at_end = s->restricted_root;
  for (size_t i = 0; i < s->n_mops; i++)
    if (strcmp(s->mops[i].dst, SBX_NEW) == 0)
      s->root_ro_at_end = false;

  /* Landlock as a second layer over the same view. */
  if (p->full_disk_read)
    rc = add_ll(b, "/", SBX_LL_READ);
  else
    rc = add_ll(b, "/", SBX_LL_READ_DIR); /* the tmpfs root only holds what is mounted */
  if (rc == 0)
    rc = add_ll(b, "/proc", SBX_LL_READ);
  if (rc == 0)
    rc = add_ll(b, "/dev", SBX_LL_ALL); /* our own minimal /dev */
out:
  free(ws);
  return rc;
}

/* Landlock alone: host paths, allow-list only. */
static int build_landlock_rules(bld *b) {
  const policy_plan *p = b->plan;
  int rc = 0;
  if (p->full_disk_read)
    rc = add_ll(b, "/", SBX_LL_READ);
  else {
    for (size_t i = 0; i < p->n_readable && rc == 0; i++)
      rc = add_ll(b, p->readable_roots[i], SBX_LL_READ);
    if (rc == 0 && b->opts->exe_path && b->opts->exe_path[0] == '/')
      rc = add_ll(b, b->opts->exe_path, SBX_LL_READ);
    if (rc == 0)
      rc = add_ll(b, "/proc", SBX_LL_READ);
  }
  for (size_t i = 0; i < p->n_writable && rc == 0; i++)
    rc = add_ll(b, p->writable_roots[i].root, SBX_LL_ALL);
  static const char *const devs[] = {"/dev/null", "/dev/zero",    "/dev/full", "/dev/random",
                                     "/dev/urandom", "/dev/tty", "/dev/ptmx", "/dev/pts"};
  for (size_t i = 0; i < sizeof devs / sizeof devs[0] && rc == 0; i++)
    rc = add_ll(b, devs[i], SBX_LL_READ_FILE | SBX_LL_WRITE_FILE | SBX_LL_IOCTL_DEV |
                                (strcmp(devs[i], "/dev/pts") == 0 ? SBX_LL_READ_DIR : 0));
  return rc;
}

static uint64_t ll_handled_for(int abi) {
  if (abi <= 0)
    return 0;
  if (abi == 1)
    return (1ULL << 13) - 1;
  if (abi == 2)
    return (1ULL << 14) - 1;
  if (abi <= 4)
    return (1ULL << 15) - 1;
  return (1ULL << 16) - 1;
}

static int build_env(bld *b, bool enforced) {
  sandbox_spec *s = b->spec;
  char http[64], socks[64];
  snprintf(http, sizeof http, "http://127.0.0.1:%d", SANDBOX_PROXY_HTTP_PORT);
  snprintf(socks, sizeof socks, "socks5h://127.0.0.1:%d", SANDBOX_PROXY_SOCKS_PORT);
  static const char *const http_vars[] = {
      "HTTP_PROXY",       "http_proxy",          "HTTPS_PROXY",      "https_proxy",
      "FTP_PROXY",        "ftp_proxy",           "npm_config_proxy", "npm_config_https_proxy",
      "YARN_HTTP_PROXY",  "YARN_HTTPS_PROXY",    "PIP_PROXY",        "BUNDLE_HTTP_PROXY",
      "BUNDLE_HTTPS_PROXY", "DOCKER_HTTP_PROXY", "DOCKER_HTTPS_PROXY",
  };
  static const char *const socks_vars[] = {"ALL_PROXY", "all_proxy"};
  static const char *const no_vars[] = {"NO_PROXY", "no_proxy"};
  size_t n_http = sizeof http_vars / sizeof http_vars[0];
  size_t max = 2 + n_http + 2 + 2 + 1;
  s->env = calloc(max, sizeof(char *));
  if (!s->env)
    return -ENOMEM;
  size_t n = 0;
  if (enforced)
    s->env[n++] = strdup("WARDEN_SANDBOX=1");
  s->env[n++] = xfmt("WARDEN_SANDBOX_NETWORK=%s", sbx_net_name(s->net));
  if (enforced && s->net == POLICY_NET_PROXY) {
    for (size_t i = 0; i < n_http; i++)
      s->env[n++] = xfmt("%s=%s", http_vars[i], http);
    for (size_t i = 0; i < 2; i++)
      s->env[n++] = xfmt("%s=%s", socks_vars[i], socks);
    for (size_t i = 0; i < 2; i++)
      s->env[n++] = xfmt("%s=localhost,127.0.0.1,::1", no_vars[i]);
  }
  for (size_t i = 0; i < n; i++)
    if (!s->env[i])
      return -ENOMEM;
  return 0;
}

static sandbox_spec *spec_new(void) {
  sandbox_spec *s = calloc(1, sizeof *s);
  if (s)
    s->proxy_child_fd = s->proxy_server_fd = -1;
  return s;
}

int sbx_spec_build(const policy_plan *plan, const sandbox_build_opts *opts, bool dry,
                   sandbox_spec **out, char **reason) {
  *out = NULL;
  if (reason)
    *reason = NULL;
  if (!plan || !opts)
    return -EINVAL;
  sandbox_spec *s = spec_new();
  if (!s)
    return -ENOMEM;
  s->net = plan->network;
  int rc = 0;
  bld b = {.plan = plan, .opts = opts, .spec = s, .dry = dry, .reason = reason};

  if (!plan->enforce) {
    /* backend "none": the child functions do nothing; the env still says
     * which network mode the caller asked for */
    s->backend = POLICY_BACKEND_NONE;
    if ((rc = build_env(&b, false)) < 0)
      goto fail;
    *out = s;
    return 0;
  }
  if (!plan->enforceable) {
    set_reason(reason, "the sandbox policy cannot be enforced here: %s",
               plan->reason ? plan->reason : "the resolved plan is marked not enforceable");
    rc = -EPERM;
    goto fail;
  }
  policy_features f;
  sandbox_features_cached(&f);
  if (!f.seccomp) {
    set_reason(reason, "the kernel does not support seccomp filters; a sandbox cannot be enforced");
    rc = -EPERM;
    goto fail;
  }
  bool carveouts = plan->n_unreadable > 0;
  for (size_t i = 0; i < plan->n_writable; i++)
    carveouts = carveouts || plan->writable_roots[i].n_read_only > 0;
  /* Landlock alone is exact only for allow-lists: no carveouts (it cannot
   * subtract) and no network restriction (it cannot stop UDP); ABI 3 is the
   * first that also denies truncate(). Otherwise use namespaces, which
   * express everything the plan can say. */
  if (plan->backend == POLICY_BACKEND_LANDLOCK && !carveouts && plan->network == POLICY_NET_FULL &&
      f.landlock_abi >= 3) {
    s->backend = POLICY_BACKEND_LANDLOCK;
  } else {
    if (!f.user_namespaces) {
      set_reason(reason, "user namespaces are unavailable (blocked by the kernel or a security "
                         "module), and this policy needs a mount namespace to be enforced");
      rc = -EPERM;
      goto fail;
    }
    if (plan->network != POLICY_NET_FULL && !f.network_namespaces) {
      set_reason(reason, "network namespaces are unavailable, so network mode %s cannot be "
                         "enforced",
                 sbx_net_name(plan->network));
      rc = -EPERM;
      goto fail;
    }
    s->backend = POLICY_BACKEND_NAMESPACES;
  }
  s->enforce = true;
  s->ll_abi = f.landlock_abi > SBX_LANDLOCK_MAX_ABI ? SBX_LANDLOCK_MAX_ABI : f.landlock_abi;
  s->ll_handled = ll_handled_for(s->ll_abi);
  s->ll_scoped = s->ll_abi >= 6 ? (SBX_LL_SCOPE_ABSTRACT_UNIX | SBX_LL_SCOPE_SIGNAL) : 0;

  if (s->backend == POLICY_BACKEND_NAMESPACES) {
    s->clone_flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC;
    if (plan->network != POLICY_NET_FULL)
      s->clone_flags |= CLONE_NEWNET;
    s->clone_flags &= ~sbx_test_clone_off(); /* test builds only */
    snprintf(s->uid_map, sizeof s->uid_map, "%u %u 1\n", opts->host_uid, opts->host_uid);
    snprintf(s->gid_map, sizeof s->gid_map, "%u %u 1\n", opts->host_gid, opts->host_gid);
    if ((rc = build_mounts(&b)) < 0)
      goto fail;
  } else {
    if ((rc = build_landlock_rules(&b)) < 0)
      goto fail;
  }
  if ((rc = sbx_seccomp_build(plan->network, &s->bpf, &s->n_bpf, reason)) < 0)
    goto fail;
  if ((rc = build_env(&b, true)) < 0)
    goto fail;
  if (plan->network == POLICY_NET_PROXY && s->backend == POLICY_BACKEND_NAMESPACES) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
      rc = -errno;
      set_reason(reason, "socketpair for the proxy channel: %s", strerror(-rc));
      goto fail;
    }
    s->proxy_server_fd = sv[0];
    s->proxy_child_fd = sv[1];
  }
  free(b.areas);
  *out = s;
  return 0;
fail:
  free(b.areas);
  if (rc == -ENOMEM)
    set_reason(reason, "out of memory while building the sandbox");
  else if (!reason || !*reason)
    set_reason(reason, "cannot build the sandbox: %s", strerror(-rc));
  sandbox_spec_free(s);
  return rc;
}

int sandbox_spec_build(const policy_plan *plan, const sandbox_build_opts *opts, sandbox_spec **out,
                       char **reason) {
  return sbx_spec_build(plan, opts, false, out, reason);
}

int sandbox_spec_build_dry(const policy_plan *plan, const sandbox_build_opts *opts,
                           sandbox_spec **out, char **reason) {
  return sbx_spec_build(plan, opts, true, out, reason);
}

void sandbox_spec_cleanup_host(const sandbox_spec *spec) {
  if (!spec)
    return;
  sandbox_spec *s = (sandbox_spec *)spec; /* allocated non-const by us */
  if (s->cleaned)
    return;
  s->cleaned = true;
  for (size_t i = s->n_stubs; i-- > 0;)
    stub_release(s->stubs[i]);
}

void sandbox_spec_free(sandbox_spec *s) {
  if (!s)
    return;
  sandbox_spec_cleanup_host(s);
  for (size_t i = 0; i < s->n_stubs; i++)
    free(s->stubs[i]);
  free(s->stubs);
  for (size_t i = 0; i < s->n_mops; i++) {
    free(s->mops[i].src);
    free(s->mops[i].dst);
    free(s->mops[i].step);
  }
  free(s->mops);
  for (size_t i = 0; i < s->n_ll; i++)
    free(s->ll[i].path);
  free(s->ll);
  free(s->bpf);
  if (s->env)
    for (char **e = s->env; *e; e++)
      free(*e);
  free(s->env);
  if (s->proxy_child_fd >= 0)
    close(s->proxy_child_fd);
  if (s->proxy_server_fd >= 0)
    close(s->proxy_server_fd);
  free(s);
}

unsigned long sandbox_spec_clone_flags(const sandbox_spec *spec) { return spec ? spec->clone_flags : 0; }

char *const *sandbox_spec_env(const sandbox_spec *spec) { return spec ? spec->env : NULL; }

const char *sandbox_spec_backend_name(const sandbox_spec *spec) {
  return sbx_backend_name(spec ? spec->backend : POLICY_BACKEND_NONE);
}

policy_net_mode sandbox_spec_network(const sandbox_spec *spec) {
  return spec ? spec->net : POLICY_NET_FULL;
}

size_t sandbox_spec_child_fds(const sandbox_spec *spec, int *fds, size_t max) {
  size_t n = 0;
  if (spec && spec->proxy_child_fd >= 0) {
    if (n < max)
      fds[n] = spec->proxy_child_fd;
    n++;
  }
  return n;
}

int sandbox_spec_proxy_channel(sandbox_spec *spec, int *server_fd) {
  if (!spec || !server_fd)
    return -EINVAL;
  if (spec->net != POLICY_NET_PROXY || spec->backend != POLICY_BACKEND_NAMESPACES)
    return -ENOENT;
  if (spec->proxy_server_fd < 0)
    return -EALREADY;
  *server_fd = spec->proxy_server_fd;
  spec->proxy_server_fd = -1;
  return 0;
}

void sandbox_spec_after_clone(const sandbox_spec *spec) {
  sandbox_spec *s = (sandbox_spec *)spec; /* allocated non-const by us */
  if (s && s->proxy_child_fd >= 0) {
    close(s->proxy_child_fd);
    s->proxy_child_fd = -1;
  }
}

int sandbox_proxy_receive(int server_fd, int fds[2]) {
  char byte;
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  union {
    char buf[CMSG_SPACE(2 * sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = sizeof u.buf};
  ssize_t n;
  do
    n = recvmsg(server_fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  if (n == 0)
    return -EPIPE;
  int got[2] = {-1, -1};
  size_t ngot = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
      continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (ngot < 2)
        got[ngot] = fd;
      else
        close(fd);
      ngot++;
    }
  }
  if (ngot != 2 || byte != 'P' || (msg.msg_flags & MSG_CTRUNC)) {
    for (size_t i = 0; i < 2; i++)
      if (got[i] >= 0)
        close(got[i]);
    return -EPROTO;
  }
  fds[0] = got[0];
  fds[1] = got[1];
  return 0;
}
