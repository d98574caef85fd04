/* The child side of a spawn: the supervisor (a clone of the server that never
 * execs) and the command it forks.
 *
 * Everything here runs in a copy of a possibly multithreaded process, so it
 * is async-signal-safe only: raw system calls, no malloc, no stdio, no locks,
 * no glibc fork (its atfork handlers take locks). Every path or array it uses
 * was computed by the parent before clone (exec_child_ctx).
 *
 * Supervisor:
 *   reset signal dispositions (all signals stay blocked), PDEATHSIG=SIGHUP,
 *   keep only its own fds, setsid, [TIOCSCTTY], subreaper (no pid ns),
 *   [sandbox_child_init], signalfd, fork the command, then loop:
 *     exec pipe EOF        -> STARTED record (exec succeeded)
 *     exec pipe record     -> FAILED record (forwarded)
 *     SIGCHLD              -> reap; the command's status is kept
 *     other signals        -> forwarded to the command's group (kill(-1) as
 *                             pid 1 of a pid namespace)
 *     report pipe POLLERR  -> the server is gone: kill the whole tree, exit
 *   once the command exits: kill what is left of its tree, EXIT record, exit.
 *
 * Command:
 *   PDEATHSIG=SIGKILL, setpgid, [tcsetpgrp], stdio, chdir, mark every fd past
 *   2 close-on-exec, [sandbox_child_final], unblock signals, execve along the
 *   precomputed PATH candidates. A failure is written to the exec pipe.
 */
#include "server/exec/exec_int.h"

#ifdef WARDEN_EXEC_HAVE_SANDBOX
#include "server/sandbox/sandbox.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* ---- small async-signal-safe helpers ---- */

static void cpy(char *dst, size_t n, const char *src) {
  size_t i = 0;
  for (; src && src[i] && i + 1 < n; i++)
    dst[i] = src[i];
  dst[i] = '\0';
}

static size_t utoa(char *dst, unsigned long v) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (size_t i = 0; i < n; i++)
    dst[i] = tmp[n - 1 - i];
  dst[n] = '\0';
  return n;
}

static void write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    p += n;
    len -= (size_t)n;
  }
}

static void send_rec(int fd, int type, int err, int status, int pid, bool sandbox,
                     const char *step) {
  exec_record r;
  /* no memset from a sanitizer-instrumented libc: clear by hand */
  char *b = (char *)&r;
  for (size_t i = 0; i < sizeof r; i++)
    b[i] = 0;
  r.type = type;
  r.err = err;
  r.status = status;
  r.pid = pid;
  r.sandbox = sandbox;
  cpy(r.step, sizeof r.step, step);
  write_all(fd, &r, sizeof r);
}


static int sys_close_range(unsigned first, unsigned last, unsigned flags) {
#ifdef SYS_close_range
  return (int)syscall(SYS_close_range, first, last, flags);
#else
  errno = ENOSYS;
  return -1;
#endif
}

static unsigned fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (1u << 20))
    return (unsigned)rl.rlim_cur;
  return 1u << 16;
}

/* Close (or with cloexec, mark) fds in [first, last]. */
static void close_fds(unsigned first, unsigned last, bool cloexec) {
  if (first > last)
    return;
  if (sys_close_range(first, last, cloexec ? CLOSE_RANGE_CLOEXEC : 0) == 0)
    return;
  unsigned lim = fd_limit();
  for (unsigned fd = first; fd <= last && fd < lim; fd++) {
    if (cloexec)
      fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    else
      close((int)fd);
  }
}

/* ---- the command ---- */

static _Noreturn void cmd_fail(int ep, int err, const char *step, bool sandbox) {
  send_rec(ep, EXEC_REC_FAILED, err, 0, 0, sandbox, step);
  _exit(127);
}

static bool exec_retry_errno(int e) {
  return e == ENOENT || e == ENOTDIR || e == ESTALE || e == ENODEV || e == ETIMEDOUT ||
         e == EACCES || e == ENAMETOOLONG || e == ELOOP;
}

static _Noreturn void cmd_main(exec_child_ctx *c, int ep, pid_t sup) {
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (getppid() != sup)
    _exit(127);
  if (setpgid(0, 0) < 0)
    cmd_fail(ep, errno, "setpgid", false);
  if (c->tty) {
    tcsetpgrp(c->pty_slave, getpid()); /* SIGTTOU is blocked */
    for (int i = 0; i < 3; i++)
      if (dup2(c->pty_slave, i) < 0)
        cmd_fail(ep, errno, "dup2", false);
  } else {
    if (dup2(c->stdin_r >= 0 ? c->stdin_r : c->devnull, 0) < 0 || dup2(c->stdout_w, 1) < 0 ||
        dup2(c->stderr_w, 2) < 0)
      cmd_fail(ep, errno, "dup2", false);
  }
  if (c->cwd && chdir(c->cwd) < 0)
    cmd_fail(ep, errno, "chdir", false);
  /* The exec pipe is O_CLOEXEC already: it closes at exec, which is how the
   * supervisor learns that exec succeeded. */
  close_fds(3, ~0u, true);
  if (c->limits) {
    static const char *const steps[] = {"setrlimit RLIMIT_NPROC", "setrlimit RLIMIT_AS",
                                        "setrlimit RLIMIT_CPU", "setrlimit RLIMIT_FSIZE",
                                        "setrlimit RLIMIT_NOFILE"};
    int which = exec_limits_apply_rlimits(c->limits);
    if (which < 0)
      cmd_fail(ep, errno, steps[-which - 1], false);
  }
#ifdef WARDEN_EXEC_HAVE_SANDBOX
  if (c->sandbox) {
    const char *step = "sandbox";
    int rc = sandbox_child_final(c->sandbox, &step);
    if (rc < 0)
      cmd_fail(ep, -rc, step, true);
  }
#else
  if (c->sandbox)
    cmd_fail(ep, ENOSYS, "sandbox", true);
#endif
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);

  int err = ENOENT;
  bool eacces = false;
  for (char **p = c->cand; *p; p++) {
    execve(*p, c->argv, c->envp);
    int e = errno;
    if (e == ENOEXEC && c->sh_argv) {
      c->sh_argv[1] = *p;
      execve("/bin/sh", c->sh_argv, c->envp);
      e = ENOEXEC;
    }
    if (!exec_retry_errno(e) || !p[1]) {
      err = e;
      break;
    }
    if (e == EACCES)
      eacces = true;
  }
  if (eacces && (err == ENOENT || err == ENOTDIR))
    err = EACCES;
  /* Restore a mask so a pending signal cannot kill us before we report. */
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, NULL);
  cmd_fail(ep, err, "execve", false);
}

/* clone() entry of the command process; see exec_supervisor_main. */
#define CMD_STACK_SIZE (256 * 1024)
typedef struct cmd_args {
  exec_child_ctx *c;
  int ep, close1, close2;
  pid_t sup;
} cmd_args;

static int cmd_entry(void *arg) {
  cmd_args *a = arg;
  close(a->close1);
  close(a->close2);
  cmd_main(a->c, a->ep, a->sup);
}

/* ---- the supervisor ---- */

typedef struct sup {
  exec_child_ctx *c;
  pid_t self;
  pid_t cmd;
  int sfd;
  int ep; /* exec pipe read end, -1 once resolved */
  int exec_state; /* 0 unknown, 1 started, 2 failed */
  bool cmd_done;
  int cmd_status;
} sup;

static bool server_gone(sup *s) {
  if (!s->c->newpid && getppid() != s->c->server_pid)
    return true;
  struct pollfd pf = {.fd = s->c->report_w, .events = 0};
  return poll(&pf, 1, 0) == 1 && (pf.revents & (POLLERR | POLLHUP | POLLNVAL));
}

/* SIGKILL every child of ours. Returns how many, or -1 if they cannot be
 * listed (no /proc). */
static int kill_children(pid_t self) {
  char path[64] = "/proc/self/task/";
  size_t n = 16;
  n += utoa(path + n, (unsigned long)self);
  cpy(path + n, sizeof path - n, "/children");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  int killed = 0;
  if (fd >= 0) {
    char buf[512];
    unsigned long cur = 0;
    bool in = false;
    for (;;) {
      ssize_t r = read(fd, buf, sizeof buf);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        break;
      for (ssize_t i = 0; i < r; i++) {
        if (buf[i] >= '0' && buf[i] <= '9') {
          cur = cur * 10 + (unsigned long)(buf[i] - '0');
          in = true;
        } else if (in) {
          kill((pid_t)cur, SIGKILL);
          killed++;
          cur = 0;
          in = false;
        }
      }
    }
    if (in) {
      kill((pid_t)cur, SIGKILL);
      killed++;
    }
    close(fd);
    return killed;
  }
  /* No children file (CONFIG_PROC_CHILDREN off): scan /proc/N/stat. */
  fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  char dents[4096];
  for (;;) {
    long nr = syscall(SYS_getdents64, fd, dents, sizeof dents);
    if (nr <= 0)
      break;
    for (long off = 0; off < nr;) {
      struct {
        unsigned long long ino;
        long long off;
        unsigned short reclen;
        unsigned char type;
        char name[];
      } *d = (void *)(dents + off);
      off += d->reclen;
      if (d->name[0] < '1' || d->name[0] > '9')
        continue;
      char sp[64] = "/proc/";
      cpy(sp + 6, sizeof sp - 6, d->name);
      size_t l = 6;
      while (sp[l])
        l++;
      cpy(sp + l, sizeof sp - l, "/stat");
      int sf = open(sp, O_RDONLY | O_CLOEXEC);
      if (sf < 0)
        continue;
      char st[512];
      ssize_t r = read(sf, st, sizeof st - 1);
      close(sf);
      if (r <= 0)
        continue;
      st[r] = '\0';
      char *q = NULL;
      for (ssize_t i = r - 1; i >= 0; i--)
        if (st[i] == ')') {
          q = st + i;
          break;
        }
      if (!q || !q[1] || !q[2] || !q[3])
        continue;
      q += 4; /* ") S " */
      unsigned long pp = 0;
      while (*q >= '0' && *q <= '9')
        pp = pp * 10 + (unsigned long)(*q++ - '0');
      if ((pid_t)pp == self) {
        unsigned long pid = 0;
        for (const char *t = d->name; *t >= '0' && *t <= '9'; t++)
          pid = pid * 10 + (unsigned long)(*t - '0');
        kill((pid_t)pid, SIGKILL);
        killed++;
      }
    }
  }
  close(fd);
  return killed;
}

static void nap_ms(long ms) {
  struct timespec ts = {0, ms * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

/* Kill everything that is left of the command's tree and reap it. */
static void kill_tree(sup *s) {
  if (s->c->newpid) {
    kill(-1, SIGKILL); /* pid 1: everything in the namespace but us */
    for (;;) {
      pid_t r = waitpid(-1, NULL, __WALL);
      if (r < 0 && errno != EINTR)
        return;
    }
  }
  if (s->cmd > 0) {
    kill(-s->cmd, SIGKILL);
    kill(s->cmd, SIGKILL);
  }
  /* Orphans were reparented to us (subreaper); killing a child reparents its
   * children to us in turn, so loop until there are none. */
  for (int round = 0;; round++) {
    int killed = kill_children(s->self);
    pid_t r;
    int st;
    while ((r = waitpid(-1, &st, WNOHANG | __WALL)) > 0)
      if (r == s->cmd && !s->cmd_done) {
        s->cmd_done = true;
        s->cmd_status = st;
      }
    if (r < 0 && errno == ECHILD)
      return;
    if (killed > 0) {
      r = waitpid(-1, &st, __WALL);
      if (r > 0 && r == s->cmd && !s->cmd_done) {
        s->cmd_done = true;
        s->cmd_status = st;
      }
      continue;
    }
    /* Listed none (a reparent in flight) or cannot list: wait a little;
     * give up after ~2 s rather than hang the report. */
    if (round > 2000)
      return;
    nap_ms(1);
  }
}

static _Noreturn void sup_exit(sup *s, bool report_exit) {
  kill_tree(s);
  if (report_exit && s->exec_state == 1 && s->cmd_done)
    send_rec(s->c->report_w, EXEC_REC_EXIT, 0, s->cmd_status, 0, false, NULL);
  _exit(0);
}

static _Noreturn void sup_fail(exec_child_ctx *c, int err, const char *step, bool sandbox) {
  send_rec(c->report_w, EXEC_REC_FAILED, err, 0, 0, sandbox, step);
  _exit(127);
}

/* Read the exec pipe: a failure record, or EOF when exec succeeded. */
static void sup_exec_pipe(sup *s, bool block) {
  if (s->ep < 0)
    return;
  if (block) {
    int fl = fcntl(s->ep, F_GETFL);
    fcntl(s->ep, F_SETFL, fl & ~O_NONBLOCK);
  }
  exec_record r;
  size_t got = 0;
  for (;;) {
    ssize_t n = read(s->ep, (char *)&r + got, sizeof r - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return; /* not decided yet */
    if (n <= 0)
      break;
    got += (size_t)n;
    if (got == sizeof r)
      break;
  }
  close(s->ep);
  s->ep = -1;
  if (got == sizeof r && r.type == EXEC_REC_FAILED) {
    s->exec_state = 2;
    write_all(s->c->report_w, &r, sizeof r);
  } else {
    s->exec_state = 1;
    send_rec(s->c->report_w, EXEC_REC_STARTED, 0, 0, s->cmd, false, NULL);
  }
}

static void sup_reap(sup *s) {
  int st;
  pid_t r;
  while ((r = waitpid(-1, &st, WNOHANG | __WALL)) > 0)
    if (r == s->cmd) {
      s->cmd_done = true;
      s->cmd_status = st;
    }
}

static void sup_forward(sup *s, int sig) {
  if (s->c->newpid)
    kill(-1, sig);
  else
    kill(-s->cmd, sig);
}

static void sup_signals(sup *s) {
  struct signalfd_siginfo si[8];
  for (;;) {
    ssize_t n = read(s->sfd, si, sizeof si);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    for (size_t i = 0; i < (size_t)n / sizeof si[0]; i++) {
      int sig = (int)si[i].ssi_signo;
      if (sig == SIGCHLD) {
        sup_reap(s);
        continue;
      }
      if ((pid_t)si[i].ssi_pid == s->self && si[i].ssi_code == SI_USER)
        continue; /* our own SIGPIPE and the like */
      if (sig == SIGHUP && server_gone(s))
        sup_exit(s, false);
      if (!s->cmd_done)
        sup_forward(s, sig);
    }
  }
}

/* Keep only the fds in keep[] (values <= 2 are moved up first); 0-2 become
 * /dev/null. */
static void sup_fds(exec_child_ctx *c) {
  int none[EXEC_LIMITS_CG_FDS] = {-1, -1, -1};
  int *lim = c->limits ? c->limits->procs_fd : none;
  int *keep[] = {&c->report_w, &c->devnull,  &c->pty_slave, &c->stdin_r, &c->stdout_w,
                 &c->stderr_w, &c->sandbox_fd, &lim[0],      &lim[1],     &lim[2]};
  const size_t nk = sizeof keep / sizeof keep[0];
  for (size_t i = 0; i < nk; i++)
    if (*keep[i] >= 0 && *keep[i] <= 2) {
      int fd = fcntl(*keep[i], F_DUPFD_CLOEXEC, 3);
      if (fd < 0)
        _exit(127);
      *keep[i] = fd;
    }
  unsigned v[sizeof keep / sizeof keep[0]];
  size_t n = 0;
  for (size_t i = 0; i < nk; i++)
    if (*keep[i] >= 0)
      v[n++] = (unsigned)*keep[i];
  for (size_t i = 1; i < n; i++) /* insertion sort */
    for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
      unsigned t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  unsigned from = 3;
  for (size_t i = 0; i < n; i++) {
    if (v[i] > from)
      close_fds(from, v[i] - 1, false);
    from = v[i] + 1;
  }
  close_fds(from, ~0u, false);
  for (int i = 0; i < 3; i++)
    dup2(c->devnull, i);
}

_Noreturn void exec_supervisor_main(exec_child_ctx *c) {
  /* Every signal is blocked (the parent blocked them around clone); reset the
   * server's handlers so nothing of the server runs here. */
  struct sigaction sa;
  char *b = (char *)&sa;
  for (size_t i = 0; i < sizeof sa; i++)
    b[i] = 0;
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG && !c->signals_default; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction(sig, &sa, NULL);

  /* The server dying must take the tree down: PDEATHSIG wakes us, and the
   * report pipe losing its reader (POLLERR) tells it apart from a HUP that
   * the server forwarded. The getppid check closes the race with a server
   * that died before prctl. */
  prctl(PR_SET_PDEATHSIG, SIGHUP, 0, 0, 0);
  if (!c->newpid && getppid() != c->server_pid)
    _exit(1);
  sup_fds(c);
  if (c->unshare_flags && unshare((int)c->unshare_flags) < 0)
    sup_fail(c, errno, "unshare", true);
  /* Into the limits' cgroups before anything else runs or forks, so the
   * whole tree is counted and can be killed as one. */
  if (exec_limits_join(c->limits) < 0)
    sup_fail(c, errno, "join cgroup", false);
  if (setsid() < 0)
    sup_fail(c, errno, "setsid", false);
  if (c->tty && ioctl(c->pty_slave, TIOCSCTTY, 0) < 0)
    sup_fail(c, errno, "ioctl TIOCSCTTY", false);
  if (!c->newpid && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
    sup_fail(c, errno, "prctl PR_SET_CHILD_SUBREAPER", false);
#ifdef WARDEN_EXEC_HAVE_SANDBOX
  if (c->sandbox) {
    const char *step = "sandbox";
    int rc = sandbox_child_init(c->sandbox, c->tty ? c->pty_slave : -1, &step);
    if (rc < 0)
      sup_fail(c, -rc, step, true);
  }
#else
  if (c->sandbox)
    sup_fail(c, ENOSYS, "sandbox", true);
#endif

  sigset_t mask;
  sigfillset(&mask);
  int sync_sigs[] = {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS};
  for (size_t i = 0; i < sizeof sync_sigs / sizeof sync_sigs[0]; i++)
    sigdelset(&mask, sync_sigs[i]);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0)
    sup_fail(c, errno, "signalfd", false);
  int ep[2];
  if (pipe2(ep, O_CLOEXEC) < 0)
    sup_fail(c, errno, "pipe2", false);

  sup s = {.c = c, .self = getpid(), .sfd = sfd, .ep = ep[0]};
  /* The command shares our memory until it execs, and we wait meanwhile
   * (CLONE_VM|CLONE_VFORK, what posix_spawn does): no second copy of the
   * server's page tables on every spawn. It runs on a stack of its own and
   * only makes system calls; what it writes (its stack, errno) is ours and
   * we are suspended. Its fd table is its own (no CLONE_FILES). */
  void *stack = mmap(NULL, CMD_STACK_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED)
    sup_fail(c, errno, "mmap", false);
  cmd_args ca = {.c = c, .ep = ep[1], .close1 = ep[0], .close2 = sfd, .sup = s.self};
  pid_t pid = clone(cmd_entry, (char *)stack + CMD_STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD,
                    &ca);
  if (pid < 0)
    sup_fail(c, errno, "clone", false);
  munmap(stack, CMD_STACK_SIZE);
  s.cmd = pid;
  close(ep[1]);
  fcntl(ep[0], F_SETFL, O_NONBLOCK);
  setpgid(pid, pid); /* both sides, so the group exists whoever runs first */
  if (c->tty) {
    tcsetpgrp(c->pty_slave, pid);
    close(c->pty_slave);
  } else {
    if (c->stdin_r >= 0)
      close(c->stdin_r);
    close(c->stdout_w);
    close(c->stderr_w);
  }

  for (;;) {
    struct pollfd pf[3] = {
        {.fd = s.ep, .events = POLLIN},
        {.fd = sfd, .events = POLLIN},
        {.fd = c->report_w, .events = 0},
    };
    int n = poll(pf, 3, -1);
    if (n < 0 && errno != EINTR)
      sup_exit(&s, false);
    if (pf[2].revents & (POLLERR | POLLHUP | POLLNVAL))
      sup_exit(&s, false); /* the server is gone */
    if (pf[0].revents)
      sup_exec_pipe(&s, false);
    if (pf[1].revents)
      sup_signals(&s);
    if (s.cmd_done) {
      sup_exec_pipe(&s, true); /* the command is gone: EOF or a record */
      sup_exit(&s, true);
    }
  }
}
