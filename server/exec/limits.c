/* Resource limits: cgroup v2, cgroup v1 and rlimits (see limits.h).
 *
 * The probe runs once, on the server's loop thread, the first time a limit is
 * asked for or reported. Everything the child side uses is plain data in
 * exec_limits_state plus raw system calls (async-signal-safe).
 */
#include "server/exec/limits.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LIM_MOUNTINFO "/proc/self/mountinfo"
#define LIM_SELF_CGROUP "/proc/self/cgroup"
#define LIM_LINE_MAX 4096
#define LIM_PENDING_MAX 256 /* cgroups waiting for their dying tasks */
#define LIM_KILL_ROUNDS 20  /* v1: rounds of "SIGKILL every pid listed" */

enum { CG_V2 = 0, CG_V1_PIDS, CG_V1_MEMORY };

typedef struct lim_host {
  bool probed;
  char base[EXEC_LIMITS_CG_FDS][EXEC_LIMITS_PATH_MAX]; /* warden-<pid> dirs, "" none */
  bool v2_pids, v2_memory, v2_kill;
  char summary[1024];
} lim_host;

static lim_host host;
static char *pending[LIM_PENDING_MAX];
static size_t n_pending;

const char *exec_limit_name(int which) {
  static const char *const names[EXEC_LIMIT_COUNT] = {"maxProcesses", "memoryBytes", "cpuSeconds",
                                                      "fileSizeBytes", "openFiles"};
  return which >= 0 && which < EXEC_LIMIT_COUNT ? names[which] : NULL;
}

const char *exec_limit_mech_name(exec_limit_mech m) {
  switch (m) {
  case EXEC_MECH_CGROUP2:
    return "cgroup2";
  case EXEC_MECH_CGROUP1:
    return "cgroup1";
  case EXEC_MECH_RLIMIT:
    return "rlimit";
  default:
    return "none";
  }
}

/* ---- small file helpers (parent side) ---- */

static int write_str(const char *dir, const char *file, const char *val) {
  char path[EXEC_LIMITS_PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  ssize_t n = write(fd, val, strlen(val));
  int err = n < 0 ? -errno : 0;
  close(fd);
  return err;
}

static int write_u64(const char *dir, const char *file, uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
  return write_str(dir, file, buf);
}

/* The value after "key " in a flat-keyed file (memory.events, pids.events,
 * memory.oom_control); 0 when absent or unreadable. */
static uint64_t read_key(const char *dir, const char *file, const char *key) {
  char path[EXEC_LIMITS_PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE *f = fopen(path, "re");
  if (!f)
    return 0;
  char line[256];
  uint64_t v = 0;
  size_t kl = strlen(key);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
      v = strtoull(line + kl + 1, NULL, 10);
      break;
    }
  fclose(f);
  return v;
}

static bool has_word(const char *list, const char *word, char sep) {
  size_t wl = strlen(word);
  for (const char *p = list; p && *p;) {
    const char *e = strchr(p, sep);
    size_t l = e ? (size_t)(e - p) : strlen(p);
    while (l && (p[l - 1] == '\n' || p[l - 1] == ' '))
      l--;
    if (l == wl && strncmp(p, word, wl) == 0)
      return true;
    p = e ? e + 1 : NULL;
  }
  return false;
}

static bool read_line(const char *path, char *buf, size_t n) {
  FILE *f = fopen(path, "re");
  if (!f)
    return false;
  bool ok = fgets(buf, (int)n, f) != NULL;
  fclose(f);
  if (!ok)
    buf[0] = '\0';
  return true;
}

/* ---- the probe ---- */

/* Our cgroup path in the hierarchy whose /proc/self/cgroup controller field
 * is `ctrl` ("" for v2) or contains it (v1). */
static bool self_cgroup(const char *ctrl, char *out, size_t n) {
  FILE *f = fopen(LIM_SELF_CGROUP, "re");
  if (!f)
    return false;
  char line[LIM_LINE_MAX];
  bool found = false;
  while (!found && fgets(line, sizeof line, f)) {
    char *a = strchr(line, ':');
    char *b = a ? strchr(a + 1, ':') : NULL;
    if (!b)
      continue;
    *b = '\0';
    const char *ctrls = a + 1;
    bool match = ctrl[0] ? has_word(ctrls, ctrl, ',') : (ctrls[0] == '\0' && strncmp(line, "0", 1) == 0);
    if (!match)
      continue;
    char *path = b + 1;
    path[strcspn(path, "\n")] = '\0';
    snprintf(out, n, "%s", path);
    found = true;
  }
  fclose(f);
  return found;
}

/* Mount point of the cgroup2 hierarchy (ctrl NULL) or of the v1 hierarchy
 * that carries controller ctrl, and that mount's root. */
static bool find_mount(const char *ctrl, char *mnt, size_t n, char *root, size_t rn) {
  FILE *f = fopen(LIM_MOUNTINFO, "re");
  if (!f)
    return false;
  char line[LIM_LINE_MAX];
  bool found = false;
  while (!found && fgets(line, sizeof line, f)) {
    /* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
    char *sep = strstr(line, " - ");
    if (!sep)
      continue;
    *sep = '\0';
    char fstype[64], src[256], sopts[1024];
    if (sscanf(sep + 3, "%63s %255s %1023s", fstype, src, sopts) < 3)
      continue;
    char r[1024], m[1024];
    if (sscanf(line, "%*s %*s %*s %1023s %1023s", r, m) != 2)
      continue;
    if (ctrl ? (strcmp(fstype, "cgroup") == 0 && has_word(sopts, ctrl, ','))
             : strcmp(fstype, "cgroup2") == 0) {
      snprintf(mnt, n, "%s", m);
      snprintf(root, rn, "%s", r);
      found = true;
    }
  }
  fclose(f);
  return found;
}

static bool pid_alive(long pid) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%ld", pid);
  return access(p, F_OK) == 0;
}

/* Remove warden-<pid> cgroups (and their per-spawn children) that a server
 * killed with SIGKILL left behind: their pid is gone. Empty ones only. */
static void remove_stale(const char *parent) {
  DIR *d = opendir(parent);
  if (!d)
    return;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (strncmp(de->d_name, "warden-", 7) != 0)
      continue;
    char *end;
    long pid = strtol(de->d_name + 7, &end, 10);
    if (*end || pid <= 0 || pid == (long)getpid() || pid_alive(pid))
      continue;
    char dir[EXEC_LIMITS_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", parent, de->d_name);
    DIR *c = opendir(dir);
    if (c) {
      struct dirent *ce;
      while ((ce = readdir(c)))
        if (ce->d_name[0] == 'p') {
          char sub[EXEC_LIMITS_PATH_MAX + 256];
          snprintf(sub, sizeof sub, "%s/%s", dir, ce->d_name);
          rmdir(sub);
        }
      closedir(c);
    }
    rmdir(dir);
  }
  closedir(d);
}

/* Create this server's warden-<pid> cgroup under its own cgroup in one
 * hierarchy. */
static bool make_base(const char *ctrl, char *out) {
  char mnt[1024], root[1024], self[1024];
  out[0] = '\0';
  if (!find_mount(ctrl, mnt, sizeof mnt, root, sizeof root) ||
      !self_cgroup(ctrl ? ctrl : "", self, sizeof self))
    return false;
  const char *rel = self;
  size_t rl = strlen(root);
  if (strcmp(root, "/") != 0 && strncmp(self, root, rl) == 0)
    rel = self + rl;
  if (strcmp(rel, "/") == 0)
    rel = "";
  char parent[EXEC_LIMITS_PATH_MAX];
  if ((size_t)snprintf(parent, sizeof parent, "%s%s", mnt, rel) >= sizeof parent)
    return false;
  remove_stale(parent);
  char dir[EXEC_LIMITS_PATH_MAX];
  if ((size_t)snprintf(dir, sizeof dir, "%s/warden-%ld", parent, (long)getpid()) >=
      sizeof dir - 32)
    return false;
  if (mkdir(dir, 0755) < 0 && errno != EEXIST)
    return false;
  if (!ctrl) {
    /* v2: ask the parent to hand pids and memory down (fails harmlessly
     * when the parent is not ours to change or holds processes), then
     * enable in our dir whatever arrived, for the per-spawn children. */
    write_str(parent, "cgroup.subtree_control", "+pids");
    write_str(parent, "cgroup.subtree_control", "+memory");
    char line[512];
    char cpath[EXEC_LIMITS_PATH_MAX + 64];
    snprintf(cpath, sizeof cpath, "%s/cgroup.controllers", dir);
    if (read_line(cpath, line, sizeof line)) {
      if (has_word(line, "pids", ' ') && write_str(dir, "cgroup.subtree_control", "+pids") == 0)
        host.v2_pids = true;
      if (has_word(line, "memory", ' ') &&
          write_str(dir, "cgroup.subtree_control", "+memory") == 0)
        host.v2_memory = true;
    }
    snprintf(cpath, sizeof cpath, "%s/cgroup.kill", dir);
    host.v2_kill = access(cpath, F_OK) == 0;
  }
  snprintf(out, EXEC_LIMITS_PATH_MAX, "%s", dir);
  return true;
}

/* ".../warden-1234" -> ".../warden-*" ("" stays ""). */
static void generic_dir(const char *dir, char out[EXEC_LIMITS_PATH_MAX]) {
  snprintf(out, EXEC_LIMITS_PATH_MAX, "%s", dir);
  char *slash = strrchr(out, '/');
  if (slash && strncmp(slash + 1, "warden-", 7) == 0 && slash + 8 - out < EXEC_LIMITS_PATH_MAX)
    snprintf(slash + 8, (size_t)(EXEC_LIMITS_PATH_MAX - (slash + 8 - out)), "*");
}

static void probe(void) {
  if (host.probed)
    return;
  host.probed = true;
  make_base(NULL, host.base[CG_V2]);
  if (!host.v2_pids)
    make_base("pids", host.base[CG_V1_PIDS]);
  if (!host.v2_memory)
    make_base("memory", host.base[CG_V1_MEMORY]);
  /* The summary names each server's directory as warden-*: it is the same
   * text for every server of this host (initialize's answer is recorded and
   * reused across starts, handlers/lifecycle.c). */
  char v2[EXEC_LIMITS_PATH_MAX], v1p[EXEC_LIMITS_PATH_MAX], v1m[EXEC_LIMITS_PATH_MAX];
  generic_dir(host.base[CG_V2], v2);
  generic_dir(host.base[CG_V1_PIDS], v1p);
  generic_dir(host.base[CG_V1_MEMORY], v1m);
  char *s = host.summary;
  size_t n = sizeof host.summary;
  int w;
  if (host.base[CG_V2][0])
    w = snprintf(s, n, "cgroup2 %s (controllers:%s%s%s; cgroup.kill %s)", v2,
                 host.v2_pids ? " pids" : "", host.v2_memory ? " memory" : "",
                 host.v2_pids || host.v2_memory ? "" : " none delegated",
                 host.v2_kill ? "yes" : "no");
  else
    w = snprintf(s, n, "no writable cgroup2 hierarchy");
  if (w > 0 && (size_t)w < n) {
    s += w;
    n -= (size_t)w;
  }
  w = snprintf(s, n, "; cgroup1 pids: %s; cgroup1 memory: %s", v1p[0] ? v1p : "no",
               v1m[0] ? v1m : "no");
  (void)w;
}

static exec_limit_mech mech_for(int which) {
  switch (which) {
  case EXEC_LIMIT_PROCESSES:
    if (host.v2_pids)
      return EXEC_MECH_CGROUP2;
    if (host.base[CG_V1_PIDS][0])
      return EXEC_MECH_CGROUP1;
    /* RLIMIT_NPROC is not checked for the host's uid 0 (nor with
     * CAP_SYS_RESOURCE/CAP_SYS_ADMIN in the initial namespace). */
    return geteuid() == 0 ? EXEC_MECH_NONE : EXEC_MECH_RLIMIT;
  case EXEC_LIMIT_MEMORY:
    if (host.v2_memory)
      return EXEC_MECH_CGROUP2;
    if (host.base[CG_V1_MEMORY][0])
      return EXEC_MECH_CGROUP1;
    return EXEC_MECH_RLIMIT;
  default:
    return EXEC_MECH_RLIMIT;
  }
}

void exec_limits_probe(exec_limit_mech out[EXEC_LIMIT_COUNT]) {
  probe();
  for (int i = 0; i < EXEC_LIMIT_COUNT; i++)
    out[i] = mech_for(i);
}

const char *exec_limits_host_summary(void) {
  probe();
  return host.summary;
}

/* ---- per spawn ---- */

static int make_child(exec_limits_state *st, int kind, uint64_t serial) {
  char *dir = st->dir[kind];
  snprintf(dir, EXEC_LIMITS_PATH_MAX, "%s/p%llu", host.base[kind], (unsigned long long)serial);
  if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
    int err = -errno;
    dir[0] = '\0';
    return err;
  }
  return 0;
}

static void drop_child(exec_limits_state *st, int kind) {
  if (st->procs_fd[kind] >= 0)
    close(st->procs_fd[kind]);
  st->procs_fd[kind] = -1;
  if (st->dir[kind][0])
    rmdir(st->dir[kind]);
  st->dir[kind][0] = '\0';
}

static int open_procs(exec_limits_state *st, int kind) {
  char path[EXEC_LIMITS_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/cgroup.procs", st->dir[kind]);
  st->procs_fd[kind] = open(path, O_WRONLY | O_CLOEXEC);
  return st->procs_fd[kind] < 0 ? -errno : 0;
}

int exec_limits_prepare(exec_limits_state *st, const exec_limits *want, uint64_t serial) {
  memset(st, 0, sizeof *st);
  for (int k = 0; k < EXEC_LIMITS_CG_FDS; k++)
    st->procs_fd[k] = -1;
  if (!want)
    return 0;
  bool any = false;
  for (int i = 0; i < EXEC_LIMIT_COUNT; i++)
    any |= want->v[i] != 0;
  if (!any)
    return 0;
  probe();
  st->want = *want;
  for (int i = 0; i < EXEC_LIMIT_COUNT; i++)
    st->mech[i] = want->v[i] ? mech_for(i) : EXEC_MECH_NONE;
  uint64_t procs = want->v[EXEC_LIMIT_PROCESSES], mem = want->v[EXEC_LIMIT_MEMORY];

  /* v2: always when there is one (whole-tree kill), with its controllers. */
  if (host.base[CG_V2][0] && make_child(st, CG_V2, serial) == 0) {
    bool ok = open_procs(st, CG_V2) == 0;
    if (ok && st->mech[EXEC_LIMIT_PROCESSES] == EXEC_MECH_CGROUP2)
      ok = write_u64(st->dir[CG_V2], "pids.max", procs) == 0;
    if (ok && st->mech[EXEC_LIMIT_MEMORY] == EXEC_MECH_CGROUP2) {
      ok = write_u64(st->dir[CG_V2], "memory.max", mem) == 0;
      write_str(st->dir[CG_V2], "memory.swap.max", "0"); /* no swap to hide in; optional */
    }
    if (!ok)
      drop_child(st, CG_V2);
  }
  if (st->mech[EXEC_LIMIT_PROCESSES] == EXEC_MECH_CGROUP1 && make_child(st, CG_V1_PIDS, serial) == 0) {
    if (write_u64(st->dir[CG_V1_PIDS], "pids.max", procs) < 0 || open_procs(st, CG_V1_PIDS) < 0)
      drop_child(st, CG_V1_PIDS);
  }
  if (st->mech[EXEC_LIMIT_MEMORY] == EXEC_MECH_CGROUP1 && make_child(st, CG_V1_MEMORY, serial) == 0) {
    if (write_u64(st->dir[CG_V1_MEMORY], "memory.limit_in_bytes", mem) < 0 ||
        open_procs(st, CG_V1_MEMORY) < 0)
      drop_child(st, CG_V1_MEMORY);
    else /* swap counted too where swap accounting is on; optional */
      write_u64(st->dir[CG_V1_MEMORY], "memory.memsw.limit_in_bytes", mem);
  }
  /* What could not go into a cgroup falls back to an rlimit. */
  if ((st->mech[EXEC_LIMIT_PROCESSES] == EXEC_MECH_CGROUP2 && !st->dir[CG_V2][0]) ||
      (st->mech[EXEC_LIMIT_PROCESSES] == EXEC_MECH_CGROUP1 && !st->dir[CG_V1_PIDS][0]))
    st->mech[EXEC_LIMIT_PROCESSES] = geteuid() == 0 ? EXEC_MECH_NONE : EXEC_MECH_RLIMIT;
  if ((st->mech[EXEC_LIMIT_MEMORY] == EXEC_MECH_CGROUP2 && !st->dir[CG_V2][0]) ||
      (st->mech[EXEC_LIMIT_MEMORY] == EXEC_MECH_CGROUP1 && !st->dir[CG_V1_MEMORY][0]))
    st->mech[EXEC_LIMIT_MEMORY] = EXEC_MECH_RLIMIT;
  st->active = true;
  return 0;
}

void exec_limits_after_clone(exec_limits_state *st) {
  for (int k = 0; k < EXEC_LIMITS_CG_FDS; k++)
    if (st->procs_fd[k] >= 0) {
      close(st->procs_fd[k]);
      st->procs_fd[k] = -1;
    }
}

/* ---- child side (async-signal-safe) ---- */

int exec_limits_join(const exec_limits_state *st) {
  if (!st || !st->active)
    return 0;
  for (int k = 0; k < EXEC_LIMITS_CG_FDS; k++) {
    if (st->procs_fd[k] < 0)
      continue;
    if (write(st->procs_fd[k], "0", 1) != 1)
      return -errno;
    close(st->procs_fd[k]);
  }
  return 0;
}

int exec_limits_apply_rlimits(const exec_limits_state *st) {
  if (!st || !st->active)
    return 0;
  static const int res[EXEC_LIMIT_COUNT] = {RLIMIT_NPROC, RLIMIT_AS, RLIMIT_CPU, RLIMIT_FSIZE,
                                            RLIMIT_NOFILE};
  for (int i = 0; i < EXEC_LIMIT_COUNT; i++) {
    if (st->mech[i] != EXEC_MECH_RLIMIT || !st->want.v[i])
      continue;
    struct rlimit rl = {.rlim_cur = (rlim_t)st->want.v[i], .rlim_max = (rlim_t)st->want.v[i]};
    if (i == EXEC_LIMIT_CPU)
      rl.rlim_max = rl.rlim_cur + 1; /* SIGXCPU first (reported), KILL a second later */
    struct rlimit cur;
    if (getrlimit(res[i], &cur) == 0 && cur.rlim_max != RLIM_INFINITY && rl.rlim_max > cur.rlim_max) {
      /* Never above the hard limit we have: an unprivileged setrlimit would
       * fail, and the tighter limit holds anyway. */
      rl.rlim_max = cur.rlim_max;
      if (rl.rlim_cur > rl.rlim_max)
        rl.rlim_cur = rl.rlim_max;
    }
    if (setrlimit(res[i], &rl) < 0)
      return -(i + 1); /* which one, for the step name */
  }
  return 0;
}

/* ---- after the supervisor is reaped ---- */

static void kill_v1(const char *dir) {
  char path[EXEC_LIMITS_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/cgroup.procs", dir);
  for (int round = 0; round < LIM_KILL_ROUNDS; round++) {
    FILE *f = fopen(path, "re");
    if (!f)
      return;
    long pid;
    int killed = 0;
    while (fscanf(f, "%ld", &pid) == 1) {
      kill((pid_t)pid, SIGKILL);
      killed++;
    }
    fclose(f);
    if (!killed)
      return;
  }
}

static void remove_or_queue(char *dir) {
  if (!dir[0])
    return;
  if (rmdir(dir) < 0 && errno == EBUSY && n_pending < LIM_PENDING_MAX) {
    char *copy = strdup(dir);
    if (copy)
      pending[n_pending++] = copy;
  }
  dir[0] = '\0';
}

static void try_pending(void) {
  size_t k = 0;
  for (size_t i = 0; i < n_pending; i++) {
    if (rmdir(pending[i]) == 0 || errno != EBUSY)
      free(pending[i]);
    else
      pending[k++] = pending[i];
  }
  n_pending = k;
}

void exec_limits_kill(exec_limits_state *st) {
  if (!st->active)
    return;
  if (st->dir[CG_V2][0] && host.v2_kill)
    write_str(st->dir[CG_V2], "cgroup.kill", "1");
  else if (st->dir[CG_V2][0])
    kill_v1(st->dir[CG_V2]);
  if (st->dir[CG_V1_PIDS][0])
    kill_v1(st->dir[CG_V1_PIDS]);
  if (st->dir[CG_V1_MEMORY][0])
    kill_v1(st->dir[CG_V1_MEMORY]);
}

int exec_limits_finish(exec_limits_state *st, int status) {
  exec_limits_after_clone(st);
  if (!st->active)
    return -1;
  int hit = -1;
  uint64_t oom = 0, pmax = 0;
  if (st->dir[CG_V2][0]) {
    oom += read_key(st->dir[CG_V2], "memory.events", "oom_kill");
    pmax += read_key(st->dir[CG_V2], "pids.events", "max");
  }
  if (st->dir[CG_V1_MEMORY][0])
    oom += read_key(st->dir[CG_V1_MEMORY], "memory.oom_control", "oom_kill");
  if (st->dir[CG_V1_PIDS][0])
    pmax += read_key(st->dir[CG_V1_PIDS], "pids.events", "max");
  bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU)
    hit = EXEC_LIMIT_CPU;
  else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ)
    hit = EXEC_LIMIT_FILE_SIZE;
  else if (!clean && oom > 0)
    hit = EXEC_LIMIT_MEMORY;
  else if (!clean && pmax > 0)
    hit = EXEC_LIMIT_PROCESSES;
  exec_limits_kill(st);
  for (int k = 0; k < EXEC_LIMITS_CG_FDS; k++)
    remove_or_queue(st->dir[k]);
  try_pending();
  st->active = false;
  return hit;
}

void exec_limits_flush(unsigned ms) {
  for (unsigned waited = 0;; waited += 10) {
    try_pending();
    if (!n_pending || waited >= ms)
      break;
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

void exec_limits_host_cleanup(unsigned ms) {
  exec_limits_flush(ms);
  for (int k = 0; k < EXEC_LIMITS_CG_FDS; k++)
    if (host.base[k][0])
      rmdir(host.base[k]);
  memset(&host, 0, sizeof host); /* a later engine probes again */
}
