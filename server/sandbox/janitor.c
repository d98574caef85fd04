/* The janitor: a small process that removes the server's placeholders
 * (spec.c: empty .git/.codex/.agents made on the host for a mask to sit
 * on) once the server is gone, however it went: SIGKILL included. Before
 * it, a killed server's placeholders stayed until a server started on the
 * same state directory (which a test, or a user, may have removed
 * meanwhile), and one that another live server still masked when its
 * creator exited stayed for that next start too.
 *
 * When: started by the first build that may make a placeholder (spec.c,
 * under its lock, before the placeholder is recorded or made). Nothing at
 * start-up, nothing for a server that never sandboxes a writable root.
 *
 * How it starts: a SOCK_SEQPACKET socketpair, close-on-exec. The server
 * clones a child sharing its memory (CLONE_VM | CLONE_VFORK: no page table
 * copied, no page of the server's left write-protected to fault on its next
 * write), which clones the janitor the same way and exits as soon as the
 * janitor has exec'd our binary (/proc/self/exe) with argv[0]
 * "warden-janitor" (main() hands over to sandbox_janitor_main()): a fresh,
 * small process, no child of the server's (nothing of the server's waits
 * for it or counts it among its processes), 0-2 on /dev/null (a client
 * waiting for EOF on the server's stdout sees it when the server dies), its
 * end of the socketpair at fd 3, nothing else. The server keeps its end and
 * tells the janitor, one message each:
 *   - first, its own pidfd (SCM_RIGHTS);
 *   - the directory of its placeholder records (once);
 *   - every placeholder it creates (path, device, inode);
 *   - around the clone of a supervisor whose sandbox masks a placeholder:
 *     "begin", then the supervisor's pidfd, or "failed".
 *
 * The janitor: its own session (a terminal's SIGINT or SIGHUP to the
 * server's process group does not reach it; both are ignored as well),
 * named warden-janitor, holding no lock. It polls its end and the pidfds; a
 * supervisor that exits is forgotten. At EOF (the server exited or was
 * killed):
 *   1. it waits until the server is gone for good (EOF comes while the
 *      exiting server closes its fds, maybe before the one that holds its
 *      record's lock) and every supervisor it knows of has exited (they die
 *      with the server: PDEATHSIG and the report pipe; as pid 1 of its
 *      namespaces, a supervisor has exited once every process of its
 *      sandbox is gone, and the sandbox's mounts with them); a clone begun
 *      and not reported gets a grace period;
 *   2. it removes the server's placeholders with the registry's lock
 *      protocol (spec.c): only the one the server made (same inode), only
 *      while empty, only once no other process holds it; one another live
 *      server still masks is looked at again until that server lets go (for
 *      JANITOR_HELD_WAIT_MS at most);
 *   3. it replays the records of the state directory, as the next start
 *      would (the server's own record goes, and those of other servers
 *      that are gone);
 * then exits.
 *
 * Invisible to sandboxed commands: outside every sandbox's pid namespace,
 * and the server's end of the socket is closed in the supervisors with
 * every other fd. When the janitor cannot be started or is killed, the next
 * start's replay is what remains (as before). */
#include "server/sandbox/sandbox_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define JANITOR_NAME "warden-janitor"         /* its comm */
#define JANITOR_ARGV0 SANDBOX_JANITOR_ARGV0
#define JANITOR_FD 3                            /* its end of the socketpair */
#define JANITOR_STACK (64 * 1024)               /* each of the two clones' stacks */
#define JANITOR_SEND_TIMEOUT_MS 500             /* it reads at once: past this, stuck */
#define JANITOR_SUPERVISOR_WAIT_MS 30000        /* supervisors dying with the server */
#define JANITOR_UNTRACKED_WAIT_MS 2000          /* a clone begun when the server died */
#define JANITOR_HELD_POLL_MS 200                /* a placeholder another server holds */
#define JANITOR_HELD_WAIT_MS (10 * 60 * 1000)   /* ... is looked at this long */
#define JANITOR_MAX_STUBS 65536                 /* placeholders remembered */
#define JANITOR_MAX_DIRS 16                     /* record directories remembered */

enum {
  JM_SERVER = 'V', /* the server's own pidfd: its fds are closed once it is readable */
  JM_DIR = 'D',
  JM_STUB = 'S',
  JM_BEGIN = 'B',
  JM_PIDFD = 'P',
  JM_FAILED = 'F'
};

typedef struct jmsg {
  char type;
  char dir; /* JM_STUB: a directory (else an empty file) */
  char pad[6];
  uint64_t dev, ino;
  char path[PATH_MAX];
} jmsg;
#define JMSG_HEAD offsetof(jmsg, path)

static atomic_int g_sock = -1; /* the server's end; -1 without a janitor */
static atomic_bool g_allowed;  /* this binary can be a janitor */

void sandbox_janitor_allow(void) { atomic_store(&g_allowed, true); }

/* ---- the server's side ---- */

static void send_msg(const jmsg *m, int fd) {
  int sock = atomic_load(&g_sock);
  if (sock < 0)
    return;
  size_t len = JMSG_HEAD + (m->type == JM_DIR || m->type == JM_STUB ? strlen(m->path) + 1 : 0);
  struct iovec iov = {.iov_base = (void *)m, .iov_len = len};
  union {
    struct cmsghdr h;
    char b[CMSG_SPACE(sizeof(int))];
  } ctl;
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  if (fd >= 0) {
    memset(&ctl, 0, sizeof ctl);
    mh.msg_control = ctl.b;
    mh.msg_controllen = sizeof ctl.b;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  while (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

static void send_path(char type, const char *path, bool dir, dev_t dev, ino_t ino) {
  jmsg m = {.type = type, .dir = dir, .dev = (uint64_t)dev, .ino = (uint64_t)ino};
  size_t n = strlen(path);
  if (atomic_load(&g_sock) < 0 || n >= sizeof m.path)
    return;
  memcpy(m.path, path, n + 1);
  send_msg(&m, -1);
}

void sbx_janitor_note_dir(const char *dir) { send_path(JM_DIR, dir, true, 0, 0); }

void sbx_janitor_note_stub(const char *path, bool dir, dev_t dev, ino_t ino) {
  send_path(JM_STUB, path, dir, dev, ino);
}

static bool masks_placeholders(const sandbox_spec *spec) { return spec && spec->n_stubs > 0; }

void sandbox_janitor_clone_begin(const sandbox_spec *spec) {
  if (!masks_placeholders(spec))
    return;
  jmsg m = {.type = JM_BEGIN};
  send_msg(&m, -1);
}

void sandbox_janitor_clone_end(const sandbox_spec *spec, int pidfd) {
  if (!masks_placeholders(spec))
    return;
  jmsg m = {.type = pidfd >= 0 ? JM_PIDFD : JM_FAILED};
  send_msg(&m, pidfd);
}

/* ---- the janitor ---- */

typedef struct stub {
  char *path;
  bool dir;
  dev_t dev;
  ino_t ino;
} stub;

typedef struct jan {
  int sock;
  int server; /* the server's pidfd, or -1 */
  int *pidfds;
  size_t n_pidfds, cap_pidfds;
  unsigned begun;   /* clones begun and not reported */
  bool lost;        /* a pidfd that did not arrive: treated as a clone in flight */
  stub *stubs;
  size_t n_stubs, cap_stubs;
  char *dirs[JANITOR_MAX_DIRS];
  size_t n_dirs;
} jan;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

static int grow(void **v, size_t *cap, size_t n, size_t elem) {
  if (n < *cap)
    return 0;
  size_t nc = *cap ? *cap * 2 : 16;
  void *p = realloc(*v, nc * elem);
  if (!p)
    return -ENOMEM;
  *v = p;
  *cap = nc;
  return 0;
}

static void add_pidfd(jan *j, int fd) {
  if (grow((void **)&j->pidfds, &j->cap_pidfds, j->n_pidfds, sizeof(int)) < 0) {
    close(fd);
    j->lost = true;
    return;
  }
  j->pidfds[j->n_pidfds++] = fd;
}

static void add_stub(jan *j, const jmsg *m) {
  for (size_t i = 0; i < j->n_stubs; i++)
    if (j->stubs[i].ino == (ino_t)m->ino && j->stubs[i].dev == (dev_t)m->dev &&
        strcmp(j->stubs[i].path, m->path) == 0)
      return;
  char *p = j->n_stubs < JANITOR_MAX_STUBS ? strdup(m->path) : NULL;
  if (!p || grow((void **)&j->stubs, &j->cap_stubs, j->n_stubs, sizeof(stub)) < 0) {
    free(p);
    return; /* recorded in the state directory all the same: the replay finds it */
  }
  j->stubs[j->n_stubs++] = (stub){.path = p, .dir = m->dir, .dev = (dev_t)m->dev,
                                  .ino = (ino_t)m->ino};
}

static void add_dir(jan *j, const char *path) {
  for (size_t i = 0; i < j->n_dirs; i++)
    if (strcmp(j->dirs[i], path) == 0)
      return;
  if (j->n_dirs < JANITOR_MAX_DIRS && (j->dirs[j->n_dirs] = strdup(path)))
    j->n_dirs++;
}

/* One message; false at EOF (or an error: the server's end is unusable). */
static bool receive(jan *j) {
  jmsg m;
  union {
    struct cmsghdr h;
    char b[CMSG_SPACE(sizeof(int))];
  } ctl;
  struct iovec iov = {.iov_base = &m, .iov_len = sizeof m - 1};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
                      .msg_controllen = sizeof ctl.b};
  ssize_t n;
  while ((n = recvmsg(j->sock, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (n <= 0)
    return n < 0 && errno == EAGAIN;
  int fd = -1;
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
      c->cmsg_len == CMSG_LEN(sizeof(int)))
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
  if (mh.msg_flags & MSG_CTRUNC)
    j->lost = true; /* a pidfd we had no room for */
  if ((size_t)n < JMSG_HEAD) {
    if (fd >= 0)
      close(fd);
    return true;
  }
  ((char *)&m)[n] = '\0';
  switch (m.type) {
  case JM_SERVER:
    if (fd >= 0 && j->server < 0) {
      j->server = fd;
      fd = -1;
    }
    break;
  case JM_DIR:
    add_dir(j, m.path);
    break;
  case JM_STUB:
    add_stub(j, &m);
    break;
  case JM_BEGIN:
    j->begun++;
    break;
  case JM_PIDFD:
  case JM_FAILED:
    if (j->begun)
      j->begun--;
    if (fd >= 0) {
      add_pidfd(j, fd);
      fd = -1;
    } else if (m.type == JM_PIDFD) {
      j->lost = true;
    }
    break;
  default:
    break;
  }
  if (fd >= 0)
    close(fd);
  return true;
}

/* Forget the supervisors that have exited; the number left. */
static size_t reap_exited(jan *j) {
  size_t k = 0;
  for (size_t i = 0; i < j->n_pidfds; i++) {
    struct pollfd p = {.fd = j->pidfds[i], .events = POLLIN};
    if (poll(&p, 1, 0) > 0) /* readable: the process has exited */
      close(j->pidfds[i]);
    else
      j->pidfds[k++] = j->pidfds[i];
  }
  j->n_pidfds = k;
  return k;
}

/* Serve until the server's end closes. */
static void serve(jan *j) {
  for (;;) {
    size_t n = j->n_pidfds + 1;
    struct pollfd *p = calloc(n, sizeof *p);
    if (!p) {
      sleep_ms(JANITOR_HELD_POLL_MS);
      reap_exited(j);
      continue;
    }
    p[0] = (struct pollfd){.fd = j->sock, .events = POLLIN};
    for (size_t i = 1; i < n; i++)
      p[i] = (struct pollfd){.fd = j->pidfds[i - 1], .events = POLLIN};
    int r = poll(p, (nfds_t)n, -1);
    short sock_ev = p[0].revents;
    bool pid_ev = false;
    for (size_t i = 1; i < n && r > 0; i++)
      pid_ev = pid_ev || p[i].revents;
    free(p);
    if (r < 0 && errno != EINTR)
      return;
    if (pid_ev)
      reap_exited(j);
    if ((sock_ev & (POLLIN | POLLHUP | POLLERR)) && !receive(j))
      return;
  }
}

/* Wait for the server to be gone for good (EOF comes while it is closing
 * its fds: its record's lock may not be free yet) and for the supervisors
 * that may still mask a placeholder. */
static bool supervisors_gone(jan *j) {
  uint64_t deadline = now_ms() + JANITOR_SUPERVISOR_WAIT_MS;
  if (j->server >= 0) {
    struct pollfd p = {.fd = j->server, .events = POLLIN};
    while (poll(&p, 1, (int)(deadline - now_ms())) == 0 && now_ms() < deadline) {
    }
    close(j->server);
    j->server = -1;
  }
  while (reap_exited(j) > 0) {
    if (now_ms() >= deadline)
      return false;
    struct pollfd p = {.fd = j->pidfds[0], .events = POLLIN};
    poll(&p, 1, (int)(deadline - now_ms()));
  }
  if (j->begun || j->lost)
    sleep_ms(JANITOR_UNTRACKED_WAIT_MS);
  return true;
}

/* The server's placeholders, newest first (a placeholder directory above a
 * protected path may hold one made later); those another server holds are
 * looked at again. */
static void remove_stubs(jan *j) {
  uint64_t deadline = now_ms() + JANITOR_HELD_WAIT_MS;
  for (;;) {
    size_t held = 0;
    for (size_t i = j->n_stubs; i-- > 0;) {
      stub *s = &j->stubs[i];
      if (!s->path)
        continue;
      if (sbx_placeholder_remove(s->path, s->dir, s->dev, s->ino) == -EBUSY) {
        held++;
        continue;
      }
      free(s->path);
      s->path = NULL;
    }
    if (!held || now_ms() >= deadline)
      return;
    sleep_ms(JANITOR_HELD_POLL_MS);
  }
}

static void quiet_signals(void) {
  static const int ignored[] = {SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGTSTP, SIGTTIN, SIGTTOU,
                                SIGUSR1, SIGUSR2};
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction(sig, &sa, NULL);
  sa.sa_handler = SIG_IGN;
  for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
    sigaction(ignored[i], &sa, NULL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

_Noreturn void sandbox_janitor_main(void) {
  int sock = JANITOR_FD;
  int type = 0;
  socklen_t tl = sizeof type;
  if (getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_SEQPACKET)
    _exit(2); /* not started by a server */
  quiet_signals();
  setsid();
  prctl(PR_SET_NAME, JANITOR_NAME, 0, 0, 0); /* last: the name says it is set up */
  fcntl(sock, F_SETFD, FD_CLOEXEC);
#ifdef SYS_close_range
  if (syscall(SYS_close_range, JANITOR_FD + 1U, ~0U, 0U) < 0)
#endif
    for (int fd = JANITOR_FD + 1; fd < 1024; fd++)
      close(fd);
  /* room for a pidfd per sandboxed run of the server */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  jan j = {.sock = sock, .server = -1};
  serve(&j);
  close(sock);
  if (supervisors_gone(&j)) {
    remove_stubs(&j);
    for (size_t i = 0; i < j.n_dirs; i++)
      sbx_placeholders_replay(j.dirs[i]);
  }
  _exit(0);
}

/* Starting it: the server is suspended from the first clone until the
 * second one's execve (CLONE_VFORK both), which shares its memory instead
 * of copying it (CLONE_VM): no page table is copied and no page of the
 * server's is left write-protected (each would cost a fault the next time
 * the server writes it). The janitor is a fresh exec of our binary. */
typedef struct jstart {
  int sock, null;    /* >= JANITOR_FD + 1, close-on-exec */
  char *const *argv; /* JANITOR_ARGV0, the records' directory */
  char *const *envp;
  char *stack_a, *stack_b;
  int exec_errno;    /* written by the second child when its exec fails */
} jstart;

static int exec_janitor(void *arg) {
  jstart *js = arg;
  /* our own fd table (no CLONE_FILES): 0-2 on /dev/null, the socket at
   * JANITOR_FD, nothing else */
  for (int i = 0; i < 3; i++)
    dup2(js->null, i);
  dup2(js->sock, JANITOR_FD);
#ifdef SYS_close_range
  if (syscall(SYS_close_range, JANITOR_FD + 1U, ~0U, 0U) < 0)
#endif
    for (int fd = JANITOR_FD + 1; fd < 1024; fd++)
      close(fd);
  execve("/proc/self/exe", js->argv, js->envp);
  js->exec_errno = errno;
  _exit(127);
}

static int detach(void *arg) {
  jstart *js = arg;
  /* returns once the janitor has exec'd (or failed to); we exit, so it is
   * no child of the server's */
  pid_t pid = clone(exec_janitor, js->stack_b + JANITOR_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD,
                    js);
  if (pid < 0)
    js->exec_errno = errno;
  _exit(0);
}

int sbx_janitor_start(const char *dir) {
  if (!atomic_load(&g_allowed))
    return -ENOTSUP;
  if (atomic_load(&g_sock) >= 0)
    return -EALREADY;
  char *jargv[] = {(char *)JANITOR_ARGV0, (char *)dir, NULL}; /* dir may end it */
  int sv[2] = {-1, -1};
  jstart js = {.sock = -1, .null = -1, .argv = jargv, .envp = environ};
  int rc = 0;
  char *stacks = mmap(NULL, 2 * JANITOR_STACK, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stacks == MAP_FAILED)
    rc = -errno;
  if (rc == 0 && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    rc = -errno;
  int null = rc == 0 ? open("/dev/null", O_RDWR | O_CLOEXEC) : -1;
  if (rc == 0 && null < 0)
    rc = -errno;
  /* above the janitor's own fds, so no dup2 in the child overwrites one */
  if (rc == 0 && ((js.sock = fcntl(sv[1], F_DUPFD_CLOEXEC, JANITOR_FD + 1)) < 0 ||
                  (js.null = fcntl(null, F_DUPFD_CLOEXEC, JANITOR_FD + 1)) < 0))
    rc = -errno;
  if (null >= 0)
    close(null);
  if (sv[1] >= 0)
    close(sv[1]);
  if (rc == 0) {
    js.stack_a = stacks;
    js.stack_b = stacks + JANITOR_STACK;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t mid = clone(detach, js.stack_a + JANITOR_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &js);
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (mid < 0)
      rc = -e;
    else
      while (waitpid(mid, NULL, __WALL) < 0 && errno == EINTR) {
      }
    if (rc == 0 && js.exec_errno)
      rc = -js.exec_errno;
  }
  if (js.sock >= 0)
    close(js.sock);
  if (js.null >= 0)
    close(js.null);
  if (stacks != MAP_FAILED)
    munmap(stacks, 2 * JANITOR_STACK);
  if (rc < 0) {
    if (sv[0] >= 0)
      close(sv[0]);
    return rc;
  }
  struct timeval tv = {0, JANITOR_SEND_TIMEOUT_MS * 1000};
  setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  atomic_store(&g_sock, sv[0]);
  int self = (int)syscall(SYS_pidfd_open, getpid(), 0);
  if (self >= 0) {
    jmsg m = {.type = JM_SERVER};
    send_msg(&m, self);
    close(self);
  }
  return 0;
}
