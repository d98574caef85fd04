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
#include <dirent.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
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

/* ---- the registry of held paths (host mount points our masks sit on) ----
 *
 * Removing a directory that is a mount point in another mount namespace
 * lazily detaches those mounts, so a placeholder ("stub": a mount point we
 * created on the host to mask a missing protected path) must not go while
 * any run masks it: runs of this server (the refcount below) or of another
 * server (which found it existing and bound over it).
 *
 * Every protected path that a run mounts over inside a writable root, and
 * that could be a placeholder (a directory or an empty file), is "held":
 * one entry per path in this process, refcounted by the runs using it, with
 * one fd carrying a shared flock(). A stub is removed only by its creator,
 * when the last run of this process lets go, and only if that lock can be
 * made exclusive without waiting (no other process holds it; see lock_fd
 * for the brief retry). One that cannot be removed stays recorded for the
 * next start.
 *
 * The record: before creating a stub, its path is appended to
 * <state>/v<N>/placeholders/<pid>-<nonce>.list, a file this server holds an
 * exclusive lock on for its whole life. At the first sandboxed build of a
 * process, record files whose lock is free (their server is gone, e.g.
 * SIGKILLed, or exited while another server still used its stubs) are
 * replayed: every recorded path that is still an empty directory or empty
 * file, and not held by a live process, is removed. */

#define PLACEHOLDER_DIR "placeholders"
/* How often a build re-resolves a placeholder that another server created
 * or removed at the same moment. */
#define STUB_RACE_RETRIES 16
/* An exclusive lock for a removal is retried this often, this long apart
 * (see posix_lock). */
#define STUB_REMOVE_RETRIES 10
#define STUB_REMOVE_WAIT_NS (2 * 1000 * 1000)
/* A record file larger than this is not ours: it is skipped. */
#define PLACEHOLDER_RECORD_MAX (1024 * 1024)

typedef struct held {
  char *path;
  dev_t dev;
  ino_t ino;
  bool dir;
  bool ours; /* a stub this process created: it removes it */
  int fd;    /* carries our read lock */
  unsigned refs;
  struct held *next;
} held;

static pthread_mutex_t g_stub_lock = PTHREAD_MUTEX_INITIALIZER;
static held *g_held;
static int g_record_fd = -1;     /* our record file, under g_stub_lock */
static bool g_leftovers_done;    /* under g_stub_lock */

/* flock(): works on directories (fcntl write locks need a writable fd).
 * Its lock belongs to the open file description, which every supervisor
 * cloned from the server shares until it closes its fds (right after the
 * clone); an exclusive lock tried while such a clone is in flight fails for
 * that moment, so removals retry briefly. */
static int lock_fd(int fd, short type, bool wait) {
  int op = type == F_WRLCK ? LOCK_EX : LOCK_SH;
  int r;
  while ((r = flock(fd, op | (wait ? 0 : LOCK_NB))) < 0 && errno == EINTR) {
  }
  return r < 0 ? -errno : 0;
}

/* An fd to lock path with. A directory is opened O_DIRECTORY (which fails
 * before anything else is opened); a file is first pinned with O_PATH and
 * checked to be a regular file, then reopened through /proc, so a path
 * swapped for a device node or a FIFO meanwhile is never opened. */
static int open_for_lock(const char *path, bool dir) {
  if (dir)
    return open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  int pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (pfd < 0)
    return -1;
  struct stat st;
  if (fstat(pfd, &st) < 0 || !S_ISREG(st.st_mode)) {
    close(pfd);
    errno = EINVAL;
    return -1;
  }
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
  int fd = open(proc, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  int e = errno;
  close(pfd);
  errno = e;
  return fd;
}

/* Remove the placeholder on fd/path when it is still empty, still at path
 * (not removed and made anew by another server meanwhile: the new one may
 * be under a run's mask) and no other process holds it. 0, or -EBUSY when
 * another process holds it. */
static int remove_locked(int fd, const char *path, bool dir) {
  struct stat st, at;
  int rc = lock_fd(fd, F_WRLCK, false);
  for (int i = 0; rc == -EWOULDBLOCK && i < STUB_REMOVE_RETRIES; i++) {
    struct timespec ts = {0, STUB_REMOVE_WAIT_NS};
    nanosleep(&ts, NULL);
    rc = lock_fd(fd, F_WRLCK, false);
  }
  if (rc == -EWOULDBLOCK)
    return -EBUSY;
  if (rc < 0 || fstat(fd, &st) < 0 || lstat(path, &at) < 0 || at.st_dev != st.st_dev ||
      at.st_ino != st.st_ino)
    return 0;
  if (dir && S_ISDIR(st.st_mode))
    rmdir(path); /* only ever removes an empty directory */
  else if (!dir && S_ISREG(st.st_mode) && st.st_size == 0)
    unlink(path);
  return 0;
}

static void replay_record(int dirfd, const char *name) {
  int fd = openat(dirfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return;
  struct stat st;
  if (lock_fd(fd, F_WRLCK, false) < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
      st.st_size > PLACEHOLDER_RECORD_MAX) {
    close(fd);
    return; /* a live server's record (or not ours) */
  }
  char *buf = malloc((size_t)st.st_size + 1);
  ssize_t n = buf ? pread(fd, buf, (size_t)st.st_size, 0) : -1;
  if (n >= 0) {
    buf[n] = '\0';
    bool kept = false;
    for (char *line = buf, *nl; line && *line; line = nl) {
      nl = strchr(line, '\n');
      if (nl)
        *nl++ = '\0';
      if ((line[0] != 'd' && line[0] != 'f') || line[1] != ' ' || line[2] != '/')
        continue;
      bool dir = line[0] == 'd';
      int pfd = open_for_lock(line + 2, dir);
      if (pfd < 0)
        continue;
      remove_locked(pfd, line + 2, dir);
      struct stat ps;
      kept = kept || lstat(line + 2, &ps) == 0;
      close(pfd);
    }
    /* a stub still in use by another server stays recorded */
    if (!kept)
      unlinkat(dirfd, name, 0);
  }
  free(buf);
  close(fd);
}

/* Replay every record of the directory dfd whose server is gone. */
static void replay_dir(int dfd) {
  int dup_fd = dup(dfd);
  DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
  struct dirent *de;
  while (d && (de = readdir(d)))
    if (de->d_name[0] != '.')
      replay_record(dfd, de->d_name);
  if (d)
    closedir(d);
  else if (dup_fd >= 0)
    close(dup_fd);
}

void sbx_placeholders_replay(const char *dir) {
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0)
    return;
  replay_dir(dfd);
  close(dfd);
}

int sbx_placeholder_remove(const char *path, bool dir, dev_t dev, ino_t ino) {
  int fd = open_for_lock(path, dir);
  if (fd < 0)
    return 0; /* gone, or no placeholder of anybody's */
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino)
    rc = remove_locked(fd, path, dir);
  close(fd);
  return rc;
}

/* Under g_stub_lock: before the first placeholder, the janitor (removes
 * ours when we are gone, see janitor.c); dir: the records' directory, or
 * NULL without a state directory. Started once, from here: nothing at
 * start-up, nothing for a server that never makes a placeholder. */
static bool g_janitor_tried;
static void janitor_ensure(const char *dir) {
  if (!g_janitor_tried) {
    g_janitor_tried = true;
    sbx_janitor_start(dir);
  }
}

/* Under g_stub_lock: replay leftovers once, then open our own record. */
static void record_open(const char *state_dir) {
  if (g_record_fd >= 0 || !state_dir)
    return;
  int err = 0;
  char *vdir = sandbox_state_vdir(state_dir, true, NULL, &err);
  char *dir = vdir ? xfmt("%s/" PLACEHOLDER_DIR, vdir) : NULL;
  free(vdir);
  if (!dir || (mkdir(dir, 0700) < 0 && errno != EEXIST)) {
    free(dir);
    return;
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0 && !g_leftovers_done) {
    g_leftovers_done = true;
    replay_dir(dfd);
  }
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  char name[64];
  snprintf(name, sizeof name, "%ld-%lx.list", (long)getpid(), (unsigned long)ts.tv_nsec);
  int fd = dfd >= 0 ? openat(dfd, name, O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600)
                    : -1;
  if (fd >= 0 && lock_fd(fd, F_WRLCK, false) < 0) {
    close(fd);
    fd = -1;
  }
  g_record_fd = fd;
  if (fd >= 0) {
    janitor_ensure(dir);
    sbx_janitor_note_dir(dir);
  }
  if (dfd >= 0)
    close(dfd);
  free(dir);
}

void sbx_leftovers_cleanup(const char *state_dir) {
  pthread_mutex_lock(&g_stub_lock);
  record_open(state_dir);
  pthread_mutex_unlock(&g_stub_lock);
}

/* Paths already in our record (each is written once per process, however
 * often its stub is created again), under g_stub_lock. */
typedef struct recorded {
  struct recorded *next;
  char path[];
} recorded;
static recorded *g_recorded;

/* Under g_stub_lock: note path before it is created. Written, not synced:
 * the record is for a server that is killed (the page cache outlives it),
 * and a machine that crashes takes a tmpfs's stubs along. Without a state
 * directory nothing can be recorded: the stub is still removed at the end
 * of the run, only a SIGKILL would leave it. */
static void record_stub(const char *path, bool dir) {
  if (g_record_fd < 0)
    return;
  for (recorded *r = g_recorded; r; r = r->next)
    if (strcmp(r->path, path) == 0)
      return;
  size_t len = strlen(path);
  recorded *r = malloc(sizeof *r + len + 1);
  char *line = xfmt("%c %s\n", dir ? 'd' : 'f', path);
  if (r && line && write(g_record_fd, line, len + 3) == (ssize_t)(len + 3)) {
    memcpy(r->path, path, len + 1);
    r->next = g_recorded;
    g_recorded = r;
    r = NULL;
  }
  free(r);
  free(line);
}

/* Under g_stub_lock: a new entry for path, read-locked. -ENOENT when the
 * path vanished before the lock was taken. */
static int held_new(const char *path, bool dir, bool ours, held **out) {
  int fd = open_for_lock(path, dir);
  if (fd < 0)
    return -errno;
  struct stat st;
  /* Never a blocking wait: a sandboxed command can flock() what it sees
   * (its workspace's .git, read-only) and keep it; the server's thread must
   * not hang on it. A remover holds its lock only for a moment. */
  int rc = lock_fd(fd, F_RDLCK, false);
  for (int i = 0; rc == -EWOULDBLOCK && i < STUB_REMOVE_RETRIES; i++) {
    struct timespec ts = {0, STUB_REMOVE_WAIT_NS};
    nanosleep(&ts, NULL);
    rc = lock_fd(fd, F_RDLCK, false);
  }
  if (rc == -EWOULDBLOCK)
    rc = -EBUSY;
  if (rc == 0 && fstat(fd, &st) < 0)
    rc = -errno;
  if (rc == 0 && st.st_nlink == 0)
    rc = -ENOENT;
  held *h = rc == 0 ? calloc(1, sizeof *h) : NULL;
  char *p = h ? strdup(path) : NULL;
  if (rc == 0 && (!h || !p))
    rc = -ENOMEM;
  if (rc < 0) {
    free(h);
    free(p);
    close(fd);
    return rc;
  }
  h->path = p;
  h->dev = st.st_dev;
  h->ino = st.st_ino;
  h->dir = dir;
  h->ours = ours;
  h->fd = fd;
  h->refs = 1;
  h->next = g_held;
  g_held = h;
  *out = h;
  return 0;
}

static void held_drop(held **pp) {
  held *h = *pp;
  *pp = h->next;
  close(h->fd);
  free(h->path);
  free(h);
}

/* Hold an existing path (a reference for one run). 0, or -ENOENT when it
 * vanished meanwhile (mask it as missing), or another errno. */
static int path_hold(const char *path, const struct stat *st) {
  int rc = 0;
  pthread_mutex_lock(&g_stub_lock);
  for (held **pp = &g_held; *pp; pp = &(*pp)->next) {
    held *h = *pp;
    if (strcmp(h->path, path) != 0)
      continue;
    if (h->dev == st->st_dev && h->ino == st->st_ino) {
      h->refs++;
      goto out;
    }
    break; /* replaced: a new entry below; the old one goes with its runs */
  }
  held *h;
  rc = held_new(path, S_ISDIR(st->st_mode), false, &h);
out:
  pthread_mutex_unlock(&g_stub_lock);
  return rc;
}

/* Create the stub at path (recorded first) and hold it. -EEXIST when the
 * path exists now (someone else created it: hold it as existing). */
static int stub_create(const char *path, bool dir, const char *state_dir) {
  int rc = 0;
  if (strchr(path, '\n'))
    return -EINVAL; /* the record is one path per line */
  pthread_mutex_lock(&g_stub_lock);
  record_open(state_dir);
  janitor_ensure(NULL); /* (no state directory: not started above) */
  record_stub(path, dir);
  if (dir) {
    if (mkdir(path, 0755) < 0)
      rc = -errno;
  } else {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
      rc = -errno;
    else
      close(fd);
  }
  held *h;
  if (rc == 0 && (rc = held_new(path, dir, true, &h)) < 0) {
    if (dir)
      rmdir(path);
    else
      unlink(path);
  }
  if (rc == 0)
    sbx_janitor_note_stub(path, dir, h->dev, h->ino);
  pthread_mutex_unlock(&g_stub_lock);
  return rc;
}

static void path_release(const char *path) {
  pthread_mutex_lock(&g_stub_lock);
  held **pp = &g_held;
  held **found = NULL;
  /* the newest entry for the path first; a replaced one is further on */
  for (; *pp; pp = &(*pp)->next)
    if (strcmp((*pp)->path, path) == 0 && (*pp)->refs > 0) {
      found = pp;
      break;
    }
  if (found && --(*found)->refs == 0) {
    held *h = *found;
    struct stat st;
    if (h->ours && lstat(path, &st) == 0 && st.st_dev == h->dev && st.st_ino == h->ino)
      remove_locked(h->fd, path, h->dir);
    held_drop(found);
  }
  pthread_mutex_unlock(&g_stub_lock);
}

/* ---- the build ---- */

typedef enum wish_kind {
  W_BASE = 0, /* full read: the host root, read-only */
  W_READ,
  W_DEVPROC,
  W_WRITE,
  W_PIN, /* a directory between a writable root and a carve-out: bound on itself */
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
  A_PRIVTMP, /* the workspace's private /tmp: mount points are made by us, in it */
} area;

typedef struct bld {
  const policy_plan *plan;
  const sandbox_build_opts *opts;
  sandbox_spec *spec;
  bool dry;
  char **reason;
  size_t cap_mops, cap_ll, cap_stubs;
  area *areas; /* parallel to spec->mops */
  char *state_dir;  /* resolved state directory, or NULL */
  char *privtmp;    /* the workspace's private /tmp on the host, or NULL */
  char *tmpdir;     /* canonical $TMPDIR bound to privtmp as well, or NULL */
  bool scratch_tmp; /* no state directory: a fresh tmpfs at /tmp (and $TMPDIR) */
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
  static const char *const verbs[] = {"bind",         "mask",         "mask",
                                      "mount proc on", "mount dev on", "symlink"};
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

/* First missing component of path below `base` (which exists), into out.
 * -ENOTDIR (out: that component, *st: its stat) when a component above the
 * path exists but is no directory: nothing can be created beneath it. */
static int first_missing(const char *base, const char *path, char *out, size_t outsz,
                         struct stat *st) {
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
    if (lstat(out, st) < 0)
      return 0;
    if (save == '/' && !S_ISDIR(st->st_mode))
      return -ENOTDIR;
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

/* Hold the host path a mask will sit on for this run, until cleanup_host
 * (see the registry). Only directories and empty files can be placeholders;
 * something we cannot open is none of ours. -ENOENT: it was removed before
 * it could be held (treat it as missing).
 *
 * -EBUSY: its lock is taken exclusively. That is a remover (another
 * server's run ended: it removes the placeholder the moment it has the
 * lock; on a loaded machine it can be descheduled in between for longer
 * than held_new's retries) or a command that locked what it can see. Going
 * on without the lock would bind a path that is removed under the run (the
 * child's bind fails with ENOENT, or, once bound, the removal detaches the
 * mask from the running sandbox), so the caller looks again (the path is
 * then gone and masked as missing, with our own stub) and only on its last
 * attempt (last_try) goes on without the lock: a command holding the lock
 * for ever must not keep the workspace's later runs from starting. */
static int hold_path(bld *b, const char *path, const struct stat *st, bool last_try) {
  if (b->dry || !(S_ISDIR(st->st_mode) || (S_ISREG(st->st_mode) && st->st_size == 0)))
    return 0;
  int rc = path_hold(path, st);
  if (rc == -ENOENT || rc == -ENOMEM || (rc == -EBUSY && !last_try))
    return rc;
  if (rc < 0)
    return 0; /* cannot be opened by us: not a placeholder of anybody's */
  if ((rc = add_stub_record(b, path)) < 0)
    path_release(path);
  return rc;
}

/* A path that must not be writable (protected) or readable (hidden) does not
 * exist inside a writable bind: mask its first missing component. */
static int mask_missing(bld *b, const wish *w, const char *cover, bool last_try) {
  char m[PATH_MAX];
  struct stat mst;
  sbx_mop *op;
  int rc = first_missing(cover, w->path, m, sizeof m, &mst);
  if (rc == -EEXIST)
    return -EAGAIN; /* appeared meanwhile (another server's stub): the caller retries */
  if (rc == -ENOTDIR) {
    /* A file sits where a directory above the path would be (a user's
     * file, or another run's file placeholder): the path is protected as
     * long as that file stays, so it is bound read-only on itself (a
     * mount point cannot be removed or replaced by a directory). */
    if ((rc = hold_path(b, m, &mst, last_try)) < 0)
      return rc == -ENOENT || rc == -EBUSY ? -EAGAIN : rc;
    if ((rc = add_mop(b, SBX_MOP_BIND, m, A_NONE, &op)) < 0 || (rc = set_src(op, m)) < 0)
      return rc;
    op->readonly = true;
    op->nofollow = true;
    return 0;
  }
  if (rc < 0)
    return rc;
  /* Nothing to mask where the command cannot create anything either: it
   * runs as the server's uid without capabilities over host files, so a
   * parent the server cannot write (the policy makes "/" writable for an
   * unprivileged server) needs no stub. */
  char parent[PATH_MAX];
  snprintf(parent, sizeof parent, "%s", m);
  char *slash = strrchr(parent, '/');
  if (slash)
    slash == parent ? (void)(slash[1] = '\0') : (void)(*slash = '\0');
  if (access(parent, W_OK) < 0 && (errno == EACCES || errno == EROFS || errno == EPERM))
    return 0;
  /* a directory for .git/.codex/.agents and for a component above the
   * protected path (something beneath it is protected as well), else an
   * empty file */
  bool dir = is_metadata_name(m) || strcmp(m, w->path) != 0;
  if (!b->dry) {
    rc = stub_create(m, dir, b->state_dir);
    if (rc == -EEXIST || rc == -ENOENT)
      return -EAGAIN; /* created or removed by someone else just now: the caller retries */
    if (rc < 0) {
      set_reason(b->reason, "cannot create the mount point %s to protect %s: %s", m, w->path,
                 strerror(-rc));
      return rc;
    }
    if ((rc = add_stub_record(b, m)) < 0) {
      path_release(m);
      return rc;
    }
  }
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

/* Make host path `mapped` (inside the private /tmp directory `base`) a
 * directory (or an empty file when !dir) to mount on. The private directory
 * is written by earlier sandboxed runs of the workspace, so whatever they
 * left in the way (a symlink, a file) is removed rather than followed. */
static int privtmp_point(const char *base, const char *mapped, bool dir) {
  /* Walked with directory fds, never by path: a run of the workspace that
   * is still going could swap a component for a symlink at any moment, and
   * a path-based mkdir would follow it (a root server creating directories
   * anywhere). Each component is made and opened without following. */
  size_t bl = strlen(base), n = strlen(mapped);
  if (n >= PATH_MAX || bl >= n)
    return n >= PATH_MAX ? -ENAMETOOLONG : -EINVAL;
  int dfd = open(base, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0)
    return -errno;
  char name[NAME_MAX + 1];
  const char *p = mapped + bl;
  int rc = 0;
  while (rc == 0 && *p) {
    while (*p == '/')
      p++;
    size_t k = strcspn(p, "/");
    if (k == 0)
      break;
    if (k > NAME_MAX) {
      rc = -ENAMETOOLONG;
      break;
    }
    memcpy(name, p, k);
    name[k] = '\0';
    p += k;
    bool last = *p == '\0' || strspn(p, "/") == strlen(p);
    bool want_dir = !last || dir;
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) &&
        unlinkat(dfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0) {
      rc = -errno;
      break;
    }
    int nfd;
    if (want_dir) {
      if (mkdirat(dfd, name, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        break;
      }
      nfd = openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    } else {
      nfd = openat(dfd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    }
    if (nfd < 0) {
      rc = -errno; /* swapped for a symlink meanwhile: refuse, never follow */
      break;
    }
    close(dfd);
    dfd = nfd;
  }
  close(dfd);
  return rc;
}

/* A host path beneath the private /tmp (bound at `cover`) gets a mount
 * point there. The directories above it must not be the workspace's:
 * a command could plant files in them (a fake .git with hooks above a
 * bound cwd) that a later run of the workspace would see. So the top-level
 * directory under /tmp that holds the path is, in every run, a fresh tmpfs
 * of its own (made read-only once everything beneath is mounted); only its
 * mount point is made in the private directory. *create tells the caller
 * to create the rest of the path in that tmpfs. */
static int privtmp_mount(bld *b, const char *path, const char *cover, bool dir, bool *create) {
  const char *rel = path + strlen(cover); /* "/x/ws/repo" */
  size_t k = strcspn(rel + 1, "/");
  bool direct = rel[1 + k] == '\0';
  *create = !direct;
  char *top = strndup(path, strlen(cover) + 1 + k);
  char *mapped = top ? xfmt("%s%s", b->privtmp, top + strlen(cover)) : NULL;
  int rc = !top || !mapped ? -ENOMEM : 0;
  if (rc == 0 && !b->dry)
    rc = privtmp_point(b->privtmp, mapped, direct ? dir : true);
  if (rc < 0 && rc != -ENOMEM)
    set_reason(b->reason, "cannot prepare the mount point for %s in the private /tmp: %s", path,
               strerror(-rc));
  bool have = false;
  for (size_t i = 0; rc == 0 && !direct && i < b->spec->n_mops; i++)
    have = have || (b->spec->mops[i].kind == SBX_MOP_TMPFS &&
                    strcmp(b->spec->mops[i].dst + strlen(SBX_NEW), top) == 0);
  if (rc == 0 && !direct && !have) {
    sbx_mop *op;
    if ((rc = add_mop(b, SBX_MOP_TMPFS, top, A_OURS, &op)) == 0) {
      op->mode = 0755;
      op->nofollow = true;
      op->ro_at_end = true;
    }
  }
  free(top);
  free(mapped);
  return rc;
}

static bool is_privtmp_root(const bld *b, const char *path) {
  return (b->privtmp || b->scratch_tmp) &&
         (strcmp(path, "/tmp") == 0 || (b->tmpdir && strcmp(path, b->tmpdir) == 0));
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
    if (ar == A_PRIVTMP) {
      /* readable, beneath the private /tmp: a read-only bind of the host
       * path on a mount point made in the private directory */
      if (stat(w->path, &st) < 0)
        return 0;
      bool create;
      if ((rc = privtmp_mount(b, w->path, cover, S_ISDIR(st.st_mode), &create)) < 0)
        return rc;
      if ((rc = add_mop(b, SBX_MOP_BIND, w->path, A_HOST_RO, &op)) < 0 ||
          (rc = set_src(op, w->path)) < 0)
        return rc;
      op->readonly = true;
      op->nofollow = true;
      op->optional = true;
      op->create = create;
      op->create_file = !S_ISDIR(st.st_mode);
      return add_ll(b, w->path, SBX_LL_READ);
    }
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
    if (is_privtmp_root(b, w->path) && b->scratch_tmp) {
      if ((rc = add_mop(b, SBX_MOP_TMPFS, w->path, A_OURS, &op)) < 0)
        return rc;
      op->scratch = true;
      op->mode = 01777;
      op->create = ar == A_OURS;
      op->nofollow = ar == A_HOST_RW;
      return add_ll(b, w->path, SBX_LL_ALL);
    }
    if (is_privtmp_root(b, w->path)) {
      /* /tmp (and $TMPDIR): the workspace's private directory instead of
       * the host's, so nothing a command leaves there is seen by another
       * workspace or by the host (a planted symlink where a later cwd is
       * resolved, a replaced service socket) */
      bool create = ar == A_OURS;
      /* $TMPDIR beneath /tmp: its mount point is made as any other in the
       * private directory already bound at /tmp (privtmp_mount) */
      if (ar == A_PRIVTMP && strcmp(cover, w->path) != 0 &&
          (rc = privtmp_mount(b, w->path, cover, true, &create)) < 0)
        return rc;
      if ((rc = add_mop(b, SBX_MOP_BIND, w->path, A_PRIVTMP, &op)) < 0)
        return rc;
      op->nofollow = ar == A_PRIVTMP || ar == A_OURS;
      op->create = create;
      op->src = xfmt("%s%s", SBX_OLD, b->privtmp);
      if (!op->src)
        return -ENOMEM;
      op->optional = b->dry;
      return add_ll(b, w->path, SBX_LL_ALL);
    }
    if (lstat(w->path, &st) < 0)
      return 0; /* missing writable roots are skipped (nothing to write into) */
    if (ar == A_PRIVTMP) {
      bool create;
      if ((rc = privtmp_mount(b, w->path, cover, S_ISDIR(st.st_mode), &create)) < 0)
        return rc;
      if ((rc = add_mop(b, SBX_MOP_BIND, w->path, A_HOST_RW, &op)) < 0 ||
          (rc = set_src(op, w->path)) < 0)
        return rc;
      op->nofollow = true;
      op->optional = true;
      op->create = create;
      op->create_file = !S_ISDIR(st.st_mode);
      return add_ll(b, w->path, SBX_LL_ALL);
    }
    if ((rc = add_mop(b, SBX_MOP_BIND, w->path, A_HOST_RW, &op)) < 0 ||
        (rc = set_src(op, w->path)) < 0)
      return rc;
    op->nofollow = true;
    op->create = ar == A_OURS;
    op->create_file = !S_ISDIR(st.st_mode);
    op->optional = true;
    return add_ll(b, w->path, SBX_LL_ALL);

  case W_PIN:
    /* Every directory between a writable root and a carve-out beneath it
     * becomes a mount point (bound on itself, still writable): a mount
     * point cannot be renamed or removed (EBUSY), so the command cannot
     * move the carve-out to a name a later run would not protect. */
    if (ar != A_HOST_RW || lstat(w->path, &st) < 0 || !S_ISDIR(st.st_mode))
      return 0;
    for (size_t k = 0; k < b->spec->n_mops; k++)
      if (strcmp(b->spec->mops[k].dst + strlen(SBX_NEW), w->path) == 0)
        return 0;
    if ((rc = add_mop(b, SBX_MOP_BIND, w->path, A_HOST_RW, &op)) < 0 ||
        (rc = set_src(op, w->path)) < 0)
      return rc;
    op->nofollow = true;
    op->optional = true;
    return 0;

  case W_PROTECT:
  case W_HIDE: {
    const char *what = w->kind == W_PROTECT ? "read-only" : "deny-read";
    if (ar == A_PRIVTMP)
      return 0; /* the private /tmp holds nothing of the host's */
    if (ar == A_HOST_RW) {
      if ((rc = check_no_symlinks(b, cover, w->path, what)) < 0)
        return rc;
      if (w->wroot && (rc = check_no_symlinks(b, w->wroot, w->path, what)) < 0)
        return rc;
    }
    /* Another server may create or remove a shared placeholder at any
     * moment: settle on "exists, and locked" or "missing, and our stub". */
    bool exists = false;
    for (int attempt = 0;; attempt++) {
      exists = lstat(w->path, &st) == 0;
      bool last_try = attempt >= STUB_RACE_RETRIES;
      if (exists && ar == A_HOST_RW) {
        rc = hold_path(b, w->path, &st, last_try);
        if (rc == -ENOENT)
          exists = false; /* a placeholder removed just now: mask it anew */
        else if (rc == -EBUSY)
          continue; /* being removed: look again */
        else if (rc < 0)
          return rc;
      }
      if (exists)
        break;
      if (ar != A_HOST_RW)
        return 0;
      rc = mask_missing(b, w, cover, last_try);
      if (rc != -EAGAIN)
        return rc;
      if (attempt >= STUB_RACE_RETRIES) {
        set_reason(b->reason, "%s kept appearing and vanishing while the sandbox was being built",
                   w->path);
        return -EAGAIN;
      }
    }
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

/* The sandbox's /dev and /proc are its own (a minimal /dev, a procfs of its
 * pid namespace); the host's are never bound. A plan entry there is
 * enforced when ours already gives exactly that access (reading either
 * tree, writing the harmless nodes and the private /dev/shm), and refused
 * otherwise: never reported enforced and ignored. */
static const char *const own_dev_rw[] = {"/dev/null", "/dev/zero",    "/dev/full", "/dev/random",
                                         "/dev/urandom", "/dev/tty", "/dev/shm", "/dev/pts"};

static bool in_devproc(const char *p) { return path_covers("/dev", p) || path_covers("/proc", p); }

static bool own_dev_node(const char *p) {
  for (size_t i = 0; i < sizeof own_dev_rw / sizeof own_dev_rw[0]; i++)
    if (path_covers(own_dev_rw[i], p))
      return true;
  return false;
}

/* 1: satisfied by our own /dev or /proc (no wish), 0: not there, <0 refused */
static int devproc_entry(bld *b, const char *p, const char *access) {
  if (!p || !in_devproc(p))
    return 0;
  bool ok;
  if (strcmp(access, "read") == 0)
    ok = path_covers("/proc", p) || strcmp(p, "/dev") == 0 || own_dev_node(p);
  else if (strcmp(access, "write") == 0)
    ok = own_dev_node(p);
  else
    ok = false;
  if (ok)
    return 1;
  set_reason(b->reason,
             "cannot enforce `%s` on %s: the sandbox has its own /dev and /proc and never exposes "
             "the host's",
             access, p);
  return -EPERM;
}

#define ROOT_SYMLINKS_MAX 64

static int add_root_symlinks(bld *b, const wish *ws, size_t nw) {
  DIR *d = opendir("/");
  if (!d)
    return 0;
  struct dirent *de;
  int rc = 0;
  size_t count = 0;
  while (rc == 0 && count < ROOT_SYMLINKS_MAX && (de = readdir(d))) {
    if (de->d_name[0] == '.')
      continue;
    char path[PATH_MAX], target[PATH_MAX];
    snprintf(path, sizeof path, "/%s", de->d_name);
    struct stat st;
    if (lstat(path, &st) < 0 || !S_ISLNK(st.st_mode))
      continue;
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n <= 0)
      continue;
    target[n] = '\0';
    char *real = realpath(path, NULL);
    if (!real)
      continue;
    bool shown = false, named = false;
    for (size_t i = 0; i < nw; i++) {
      if (strcmp(ws[i].path, path) == 0 || path_covers(path, ws[i].path))
        named = true;
      if ((ws[i].kind == W_READ || ws[i].kind == W_WRITE) && path_covers(ws[i].path, real))
        shown = true;
    }
    free(real);
    if (!shown || named)
      continue;
    sbx_mop *op;
    if ((rc = add_mop(b, SBX_MOP_SYMLINK, path, A_NONE, &op)) < 0)
      break;
    op->src = strdup(target);
    if (!op->src)
      rc = -ENOMEM;
    count++;
  }
  closedir(d);
  return rc;
}

static int build_mounts(bld *b) {
  const policy_plan *p = b->plan;
  sandbox_spec *s = b->spec;
  size_t nw = 0, cap = 8 + p->n_readable + p->n_unreadable + p->n_writable;
  size_t n_carve = p->n_unreadable;
  for (size_t i = 0; i < p->n_writable; i++) {
    cap += p->writable_roots[i].n_read_only;
    n_carve += p->writable_roots[i].n_read_only;
  }
  /* pins: at most one per path component of each carve-out */
  size_t cap_pins = (n_carve + 1) * 8, n_pins = 0;
  cap += cap_pins + 1;
  char *state_real = NULL, *cwd_real = NULL;
  wish *ws = calloc(cap, sizeof *ws);
  char **pins = calloc(cap_pins + 1, sizeof *pins);
  if (!ws || !pins) {
    free(ws);
    free(pins);
    return -ENOMEM;
  }
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
      if ((rc = devproc_entry(b, r, "read")) < 0)
        goto out;
      if (rc == 1) {
        rc = 0;
        continue;
      }
      WISH(W_READ, r, NULL);
    }
    if (b->opts->exe_path && b->opts->exe_path[0] == '/')
      WISH(W_READ, b->opts->exe_path, NULL);
  }
  WISH(W_DEVPROC, "/dev", NULL);
  WISH(W_DEVPROC, "/proc", NULL);
  for (size_t i = 0; i < p->n_writable; i++) {
    const policy_writable_root *w = &p->writable_roots[i];
    if ((rc = devproc_entry(b, w->root, "write")) < 0)
      goto out;
    if (rc == 1) {
      rc = 0;
      continue;
    }
    WISH(W_WRITE, w->root, NULL);
    for (size_t j = 0; j < w->n_read_only; j++) {
      if ((rc = devproc_entry(b, w->read_only_subpaths[j], "read-only")) < 0)
        goto out;
      WISH(W_PROTECT, w->read_only_subpaths[j], w->root);
    }
  }
  /* The command's cwd under a private /tmp: the host's /tmp is hidden,
   * but the cwd itself is shown (read-only) where the plan lets it be
   * read and no writable root brings it along (a cwd inside .git). */
  cwd_real = (b->privtmp || b->scratch_tmp) && b->opts->cwd ? realpath(b->opts->cwd, NULL) : NULL;
  const char *cwd = cwd_real;
  if (cwd && path_ok(cwd) && path_covers("/tmp", cwd) && strcmp(cwd, "/tmp") != 0) {
    bool shown = p->full_disk_read, written = false;
    for (size_t i = 0; i < p->n_readable; i++)
      shown = shown || path_covers(p->readable_roots[i], cwd);
    for (size_t i = 0; i < p->n_writable; i++)
      written = written || (strcmp(p->writable_roots[i].root, "/tmp") != 0 &&
                            path_covers(p->writable_roots[i].root, cwd));
    if (shown && !written)
      WISH(W_READ, cwd, NULL);
  }
  for (size_t i = 0; i < p->n_unreadable; i++) {
    if ((rc = devproc_entry(b, p->unreadable_roots[i], "none")) < 0)
      goto out;
    WISH(W_HIDE, p->unreadable_roots[i], NULL);
  }
  /* The state directory is the server's (private /tmp of every workspace,
   * placeholder records it replays at start, the setup marker): read-only
   * when it lies inside a writable root (a workspace that is $HOME). */
  state_real = b->state_dir ? realpath(b->state_dir, NULL) : NULL;
  for (size_t i = 0; state_real && i < p->n_writable; i++)
    if (path_covers(p->writable_roots[i].root, state_real)) {
      WISH(W_PROTECT, state_real, p->writable_roots[i].root);
      break;
    }
  /* Pins for every carve-out: the directories strictly between the deepest
   * writable root that covers it and the carve-out itself. */
  for (size_t i = 0, n0 = nw; i < n0; i++) {
    if (ws[i].kind != W_PROTECT && ws[i].kind != W_HIDE)
      continue;
    const char *root = NULL;
    for (size_t k = 0; k < p->n_writable; k++) {
      const char *r = p->writable_roots[k].root;
      if (path_covers(r, ws[i].path) && strcmp(r, ws[i].path) != 0 &&
          (!root || strlen(r) > strlen(root)))
        root = r;
    }
    if (!root)
      continue;
    size_t rl = strcmp(root, "/") == 0 ? 0 : strlen(root);
    const char *c = ws[i].path;
    for (size_t j = rl + 1; c[j]; j++) {
      if (c[j] != '/')
        continue;
      char *d = strndup(c, j);
      if (!d) {
        rc = -ENOMEM;
        goto out;
      }
      bool dup = false;
      for (size_t k = 0; k < n_pins && !dup; k++)
        dup = strcmp(pins[k], d) == 0;
      if (dup || n_pins >= cap_pins) {
        free(d);
        continue;
      }
      pins[n_pins++] = d;
      WISH(W_PIN, d, root);
    }
  }
#undef WISH

  qsort(ws, nw, sizeof *ws, cmp_wish);
  for (size_t i = 0; i < nw && rc == 0; i++)
    rc = resolve_wish(b, ws, nw, i);
  if (rc < 0)
    goto out;
  /* A restricted view keeps the host's top-level symlinks into what it
   * shows (merged /usr: /bin, /lib, /lib64 -> usr/...): the plan names
   * canonical paths, so without them the dynamic loader's /lib64 path and
   * #!/bin/sh would not resolve. */
  if (s->restricted_root && (rc = add_root_symlinks(b, ws, nw)) < 0)
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
  for (size_t i = 0; i < n_pins; i++)
    free(pins[i]);
  free(pins);
  free(state_real);
  free(cwd_real);
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
  /* Not the host's /dev/pts or /dev/ptmx: every terminal of the user lives
   * there (another one could be read and typed into). The command's own
   * terminal stays usable through its fds (apply_landlock). */
  static const char *const devs[] = {"/dev/null", "/dev/zero",    "/dev/full",
                                     "/dev/random", "/dev/urandom", "/dev/tty"};
  for (size_t i = 0; i < sizeof devs / sizeof devs[0] && rc == 0; i++)
    rc = add_ll(b, devs[i], SBX_LL_READ_FILE | SBX_LL_WRITE_FILE | SBX_LL_IOCTL_DEV);
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

/* The server holds CAP_SYS_ADMIN in its own user namespace (a root server
 * outside a restricted container): namespaces need no user namespace. */
static bool have_sys_admin(void) {
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) < 0)
    return false;
  return (data[CAP_SYS_ADMIN / 32].effective >> (CAP_SYS_ADMIN % 32)) & 1;
}

static void bld_free(bld *b) {
  free(b->areas);
  free(b->state_dir);
  free(b->privtmp);
  free(b->tmpdir);
}

/* 64-bit FNV-1a: names a workspace's private /tmp after its canonical cwd. */
static unsigned long long fnv1a(const char *s) {
  unsigned long long h = 1469598103934665603ULL;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h;
}

/* The state directory, and the workspace's private /tmp when the plan makes
 * /tmp writable and the policy did not name the host's /tmp itself:
 * <state>/v<N>/tmp/<hash of the canonical cwd>, shared by the workspace's
 * runs (as systemd's PrivateTmp), bound at /tmp and at $TMPDIR when that is
 * a writable root of its own outside the workspace. */
/* The default state directory is created beneath $XDG_STATE_HOME or $HOME,
 * never in place of them: a server with HOME=/nonexistent (nobody's) must
 * not make /nonexistent. A configured one is created as named. */
static char *usable_state_dir(const char *configured) {
  if (!(configured && *configured)) {
    const char *x = getenv("XDG_STATE_HOME");
    const char *anchor = x && x[0] == '/' ? x : getenv("HOME");
    struct stat st;
    if (!anchor || anchor[0] != '/' || stat(anchor, &st) < 0 || !S_ISDIR(st.st_mode))
      return NULL;
  }
  return sandbox_state_dir(configured);
}

static int prepare_state(bld *b) {
  const policy_plan *p = b->plan;
  b->state_dir = usable_state_dir(b->opts->state_dir);
  if (!b->dry && b->state_dir)
    sbx_leftovers_cleanup(b->state_dir);
  bool slash_tmp = false;
  const char *td = getenv("TMPDIR");
  char *tdr = td && td[0] == '/' ? realpath(td, NULL) : NULL;
  for (size_t i = 0; i < p->n_writable; i++) {
    const char *r = p->writable_roots[i].root;
    if (strcmp(r, "/tmp") == 0)
      slash_tmp = true;
    /* $TMPDIR apart from the workspace: neither enclosing the cwd nor
     * inside it (there it is the workspace's own) */
    if (tdr && strcmp(tdr, "/tmp") != 0 && strcmp(r, tdr) == 0 && b->opts->cwd &&
        !path_covers(tdr, b->opts->cwd) && !path_covers(b->opts->cwd, tdr) && !b->tmpdir)
      b->tmpdir = strdup(tdr);
  }
  free(tdr);
  /* The host's /tmp is shared when the plan makes it writable other than
   * through workspaceWrite's implicit temp dirs (policy_plan.private_tmp:
   * named in writableRoots or a split entry, or under a writable ancestor
   * such as "/"), and when the workspace is /tmp itself. */
  bool host_tmp = slash_tmp && !p->private_tmp;
  bool cwd_is_tmp = b->opts->cwd && strcmp(b->opts->cwd, "/tmp") == 0;
  if ((!slash_tmp && !b->tmpdir) || host_tmp || cwd_is_tmp) {
    free(b->tmpdir);
    b->tmpdir = NULL;
    return 0;
  }
  /* Without a usable state directory (none named, or not writable: a
   * server run as nobody with HOME=/nonexistent) the run still gets a
   * private /tmp, a fresh tmpfs of its own: as isolated, only not shared
   * with the workspace's other runs. */
  int err = 0;
  char *vdir = b->state_dir ? sandbox_state_vdir(b->state_dir, !b->dry, NULL, &err) : NULL;
  if (!vdir) {
    b->scratch_tmp = true;
    return 0;
  }
  char *top = xfmt("%s/tmp", vdir);
  char *dir = top ? xfmt("%s/%016llx", top, fnv1a(b->opts->cwd ? b->opts->cwd : "/")) : NULL;
  free(vdir);
  if (!dir) {
    free(top);
    return -ENOMEM;
  }
  if (!b->dry && ((mkdir(top, 0700) < 0 && errno != EEXIST) ||
                  (mkdir(dir, 0700) < 0 && errno != EEXIST))) {
    free(top);
    free(dir);
    b->scratch_tmp = true;
    return 0;
  }
  free(top);
  /* canonical, so the child can bind it without following symlinks */
  char *real = b->dry ? NULL : realpath(dir, NULL);
  if (real) {
    free(dir);
    dir = real;
  }
  b->privtmp = dir;
  return 0;
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
  /* The namespaces backend whenever the kernel allows it, whatever the
   * network mode (full keeps the host's network: no new netns): it gives a
   * read-only view, a private /dev, /dev/pts and IPC namespace, which
   * Landlock alone cannot. Landlock alone is the fallback where user
   * namespaces are blocked, and only where it can be made exact: allow-lists
   * (it cannot subtract carve-outs), full network (it cannot stop UDP), ABI
   * 3 or later (truncate), and seccomp denying what it does not cover
   * (chmod, chown, utimes, xattrs, SysV IPC: see seccomp.c). */
  if (!f.user_namespaces && plan->backend == POLICY_BACKEND_LANDLOCK && !carveouts &&
      plan->network == POLICY_NET_FULL && f.landlock_abi >= 3) {
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
    s->clone_flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC;
    if (plan->network != POLICY_NET_FULL)
      s->clone_flags |= CLONE_NEWNET;
    if (opts->host_uid == 0 && have_sys_admin()) {
      /* A root server: no user namespace, and the command keeps
       * CAP_DAC_OVERRIDE and CAP_FOWNER. A workspace of another user must
       * be writable as the policy says; in a user namespace mapping only
       * uid 0, no capability applies to that user's files (their owner is
       * unmapped), and mapping every uid needs the parent to write the map.
       * The read-only mounts (EROFS is no permission check), the masks and
       * Landlock (which no capability bypasses) keep the write to the
       * writable roots; the pid, mount and IPC namespaces, seccomp and the
       * dropped bounding set keep the rest. Files it creates belong to
       * root, as the server's own would. */
      s->keep_caps = (1ULL << CAP_DAC_OVERRIDE) | (1ULL << CAP_FOWNER);
    } else {
      s->clone_flags |= CLONE_NEWUSER;
      snprintf(s->uid_map, sizeof s->uid_map, "%u %u 1\n", opts->host_uid, opts->host_uid);
      snprintf(s->gid_map, sizeof s->gid_map, "%u %u 1\n", opts->host_gid, opts->host_gid);
    }
    s->clone_flags &= ~sbx_test_clone_off(); /* test builds only */
    if ((rc = prepare_state(&b)) < 0 || (rc = build_mounts(&b)) < 0)
      goto fail;
  } else {
    if ((rc = build_landlock_rules(&b)) < 0)
      goto fail;
  }
  if ((rc = sbx_seccomp_build(plan->network, s->backend == POLICY_BACKEND_LANDLOCK,
                              opts->host_uid == 0, &s->bpf, &s->n_bpf, reason)) < 0)
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
  bld_free(&b);
  *out = s;
  return 0;
fail:
  bld_free(&b);
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
    path_release(s->stubs[i]);
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

