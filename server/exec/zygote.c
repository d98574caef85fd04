/* The zygote: a small process, forked once at start-up before the server's
 * heap and threads grow, that creates the supervisors.
 *
 * Why: a supervisor used to be a fork of the server. On every spawn that
 * copied the server's page tables, write-protected all of its private pages
 * and flushed the TLBs of every CPU running it; afterwards each page the
 * server touched took a copy-on-write fault, for as long as the supervisor
 * lived (the whole run of the command). On a 2-CPU VM where a page fault
 * costs ~30 us that was most of a spawn's cost, and it grew with the server.
 * The zygote is as small as the server was at start and stays that way, so
 * a fork of it is cheap and the server's memory is never shared.
 *
 * How:
 *   server: spawn.c prepares everything as before (pipes, PTY, env, PATH
 *           candidates, the sandbox spec, cgroups), then instead of clone()
 *           sends it here: one message on a SOCK_STREAM socketpair, a fixed
 *           header carrying the fds (SCM_RIGHTS) followed by the encoded
 *           context (server/wire.h), and waits for the answer.
 *   zygote: decodes, clone(CLONE_PARENT | CLONE_PIDFD | the sandbox's
 *           CLONE_NEW* flags): CLONE_PARENT makes the supervisor the
 *           server's child, so the server waits for it, gets its SIGCHLD and
 *           is its PDEATHSIG parent exactly as before. The child runs
 *           exec_supervisor_main() on the decoded context; the zygote sends
 *           back the pid and the pidfd and frees what it decoded.
 *
 * The zygote dies with the server (PDEATHSIG=SIGKILL, and EOF on its socket
 * for an orderly exit); it holds no fd of the server but its socket (0-2 are
 * /dev/null), keeps every signal blocked (a ^C to the process group is the
 * server's to handle) and never has children of its own. A sandboxed command
 * cannot reach it: it is outside every sandbox's pid namespace, and the
 * socket is closed in the supervisor with every other fd. When the zygote is
 * gone or does not answer within EXEC_ZYGOTE_REPLY_MS, spawns take the
 * direct path (clone in the server), which stays as the fallback.
 */
#include "server/exec/exec_int.h"
#include "server/wire.h"

#ifdef WARDEN_EXEC_HAVE_SANDBOX
#include "server/sandbox/sandbox.h"
#endif

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

#define ZY_MAGIC 0x5a594731u     /* "ZYG1" */
#define ZY_MAX_FDS 10            /* the fds of exec_child_ctx, see slot_fds */
#define ZY_BODY_MAX (64u << 20)  /* far above the spawn limits (1 MiB of argv+env) */
#define EXEC_ZYGOTE_REPLY_MS 5000 /* a fork does not take this long: the zygote is stuck */

typedef struct zy_head {
  uint32_t magic;
  uint32_t body_len;
} zy_head;

/* What the zygote sends the server: the answer to a spawn (pid != 0), with
 * the supervisor's pidfd unless it is a warm one; or, unasked, a warm
 * supervisor's announcement (pid 0, `announced` its pid, its pidfd with
 * it). Announcements are sent when the warm supervisor is made, so they
 * always reach the server before an answer that names it; the server reads
 * them when it next spawns. */
typedef struct zy_reply {
  int32_t pid; /* > 0, -1 with err, or 0: an announcement */
  int32_t err;
  int32_t announced;
  uint8_t warm; /* pid is a warm supervisor (announced before) */
} zy_reply;

/* Warm supervisors at most, all kinds together, and per kind. */
#define ZY_POOL_MAX 16
#define ZY_WARM_MAX EXEC_ZYGOTE_WARM_MAX
#define ZY_KINDS_MAX 4

typedef struct warm_child {
  pid_t pid;
  int pidfd;
} warm_child;

static struct {
  int sock;   /* the server's end, -1: no zygote */
  pid_t pid;
  int pidfd;
  /* warm supervisors the zygote made: our children, not yet handed out */
  warm_child warm[ZY_POOL_MAX * 2];
  size_t n_warm;
} zy = {.sock = -1, .pid = -1, .pidfd = -1};

/* ---- messages with fds ---- */

static int send_with_fds(int sock, const void *buf, size_t len, const int *fds, size_t nfds) {
  struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
  union {
    char b[CMSG_SPACE(ZY_MAX_FDS * sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds) {
    memset(&u, 0, sizeof u);
    m.msg_control = u.b;
    m.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
  }
  ssize_t n;
  do
    n = sendmsg(sock, &m, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return -errno;
  /* The rest, if the socket took only part of it (fds went with byte 0). */
  const char *p = (const char *)buf + n;
  size_t left = len - (size_t)n;
  while (left) {
    n = send(sock, p, left, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return n < 0 ? -errno : -EPIPE;
    p += n;
    left -= (size_t)n;
  }
  return 0;
}

/* Read exactly len bytes; fds that arrive are stored in fds (up to max,
 * *nfds set; the rest closed). 0, -EPIPE on EOF, -errno. */
static int recv_with_fds(int sock, void *buf, size_t len, int *fds, size_t max, size_t *nfds) {
  char *p = buf;
  size_t got = 0;
  if (nfds)
    *nfds = 0;
  while (got < len) {
    struct iovec iov = {.iov_base = p + got, .iov_len = len - got};
    union {
      char b[CMSG_SPACE(ZY_MAX_FDS * sizeof(int))];
      struct cmsghdr align;
    } u;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
                       .msg_controllen = sizeof u.b};
    ssize_t n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
        continue;
      size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      int *in = (int *)CMSG_DATA(c);
      for (size_t i = 0; i < k; i++) {
        if (nfds && *nfds < max)
          fds[(*nfds)++] = in[i];
        else
          close(in[i]);
      }
    }
    if (n == 0)
      return -EPIPE;
    got += (size_t)n;
  }
  return 0;
}

static void close_all(const int *fds, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (fds[i] >= 0)
      close(fds[i]);
}

/* ---- the zygote ---- */

/* The fields of exec_child_ctx that are fds, in wire order (NULL: no limits). */
static void slot_fds(exec_child_ctx *c, exec_limits_state *lim, int **slots) {
  slots[0] = &c->report_w;
  slots[1] = &c->devnull;
  slots[2] = &c->pty_slave;
  slots[3] = &c->stdin_r;
  slots[4] = &c->stdout_w;
  slots[5] = &c->stderr_w;
  slots[6] = &c->sandbox_fd;
  for (int i = 0; i < EXEC_LIMITS_CG_FDS; i++)
    slots[7 + i] = lim ? &lim->procs_fd[i] : NULL;
}
_Static_assert(7 + EXEC_LIMITS_CG_FDS == ZY_MAX_FDS, "one fd slot per exec_child_ctx fd");

typedef struct zy_job {
  exec_child_ctx c;
  exec_limits_state lim;
  unsigned long flags;
  char *cwd;
  char **argv, **envp, **cand, **sh_argv;
#ifdef WARDEN_EXEC_HAVE_SANDBOX
  sandbox_spec *sandbox;
#endif
} zy_job;

static void job_free(zy_job *j) {
  free(j->cwd);
  wire_strv_free(j->argv);
  wire_strv_free(j->envp);
  wire_strv_free(j->cand);
  free(j->sh_argv); /* its strings belong to argv */
#ifdef WARDEN_EXEC_HAVE_SANDBOX
  sandbox_spec_free_decoded(j->sandbox); /* its proxy fd is one of ours: not closed */
#endif
}

/* Decode a job; the fds (already received) are placed by their slot index.
 * On success the job owns none of the fds: the caller closes them all after
 * the clone. */
static int job_decode(zy_job *j, const uint8_t *body, size_t len, const int *fds, size_t nfds) {
  memset(j, 0, sizeof *j);
  wire_rd r = {.p = body, .left = len};
  j->flags = (unsigned long)wire_get_u64(&r);
  j->c.server_pid = wire_get_i32(&r);
  j->c.newpid = wire_get_u8(&r) != 0;
  j->c.tty = wire_get_u8(&r) != 0;
  bool has_limits = wire_get_u8(&r) != 0;
  int *slots[ZY_MAX_FDS];
  slot_fds(&j->c, has_limits ? &j->lim : NULL, slots);
  if (has_limits)
    wire_get(&r, &j->lim, sizeof j->lim);
  for (int i = 0; i < ZY_MAX_FDS; i++) {
    int idx = wire_get_i32(&r);
    if (!slots[i])
      continue;
    if (idx < -1 || idx >= (int)nfds) {
      r.err = -EPROTO;
      idx = -1;
    }
    *slots[i] = idx < 0 ? -1 : fds[idx];
  }
  j->cwd = wire_get_str(&r);
  j->argv = wire_get_strv(&r, NULL);
  j->envp = wire_get_strv(&r, NULL);
  j->cand = wire_get_strv(&r, NULL);
  if (!r.err && (!j->argv || !j->argv[0] || !j->envp || !j->cand))
    r.err = -EPROTO;
  if (!r.err) {
    /* {"/bin/sh", <script>, argv[1..], NULL} for ENOEXEC, as spawn.c builds it */
    size_t n = 0;
    while (j->argv[n])
      n++;
    j->sh_argv = calloc(n + 2, sizeof *j->sh_argv);
    if (!j->sh_argv)
      r.err = -ENOMEM;
    else {
      j->sh_argv[0] = (char *)"/bin/sh";
      for (size_t i = 1; i < n; i++)
        j->sh_argv[i + 1] = j->argv[i];
    }
  }
  bool has_sandbox = wire_get_u8(&r) != 0;
#ifdef WARDEN_EXEC_HAVE_SANDBOX
  if (!r.err && has_sandbox) {
    int rc = sandbox_spec_decode(&r, j->c.sandbox_fd, &j->sandbox);
    if (rc < 0)
      r.err = rc;
  }
  j->c.sandbox = j->sandbox;
#else
  if (has_sandbox)
    r.err = -ENOSYS;
#endif
  if (!r.err && r.left)
    r.err = -EPROTO; /* trailing bytes: the two ends disagree */
  if (r.err) {
    job_free(j);
    return r.err;
  }
  j->c.signals_default = true; /* zygote_main reset them */
  j->c.cwd = j->cwd;
  j->c.argv = j->argv;
  j->c.envp = j->envp;
  j->c.cand = j->cand;
  j->c.sh_argv = j->sh_argv;
  j->c.limits = has_limits ? &j->lim : NULL;
  return 0;
}

static pid_t clone_parent_pidfd(unsigned long flags, int *pidfd) {
  /* CLONE_PARENT: the exit signal is the zygote's own (SIGCHLD), whatever
   * the low byte says. */
  return (pid_t)syscall(SYS_clone, flags | CLONE_PARENT | CLONE_PIDFD | SIGCHLD, 0, pidfd, 0, 0);
}

/* ---- warm supervisors ----
 *
 * A warm supervisor is cloned ahead of demand with the namespaces of one
 * kind of spawn (its CLONE_NEW* flags but CLONE_NEWNS: the mount table is
 * copied when the spawn comes, so it is never older than the spawn), waits
 * on a socketpair for one spawn, and becomes that spawn's supervisor. It is
 * used once. Like every supervisor it is the server's child (CLONE_PARENT);
 * the server learns its pidfd from the next answer (`announced`), so it can
 * reap it even if it dies unused. */

#define WARM_DEFERRED CLONE_NEWNS /* taken at the spawn, not at the clone */
#define WARM_ACK_MS 1000          /* a live warm supervisor acknowledges at once */

typedef struct zy_warm {
  pid_t pid;
  int sock; /* our end */
  unsigned long flags;
} zy_warm;

static struct {
  size_t per_kind;                    /* 0: no warm supervisors */
  unsigned long kinds[ZY_KINDS_MAX];  /* flag sets seen, warm ones kept for each */
  size_t n_kinds;
  zy_warm pool[ZY_POOL_MAX];
  size_t n_pool;
  char name[16];
  pid_t server;
  int to_server; /* our socket to the server */
} zg;

static _Noreturn void warm_main(int sock, unsigned long wflags) {
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (!(wflags & CLONE_NEWPID) && getppid() != zg.server)
    _exit(0);
  /* Nothing of the zygote's: not its socket to the server, not the other
   * warm supervisors' sockets. */
  if (sock > 3)
    syscall(SYS_close_range, 3u, (unsigned)sock - 1, 0u);
  syscall(SYS_close_range, (unsigned)sock + 1, ~0u, 0u);
  zy_head h;
  int fds[ZY_MAX_FDS];
  size_t nfds = 0;
  if (recv_with_fds(sock, &h, sizeof h, fds, ZY_MAX_FDS, &nfds) < 0)
    _exit(0); /* the zygote is gone without using us */
  if (h.magic != ZY_MAGIC || h.body_len > ZY_BODY_MAX)
    _exit(127);
  uint8_t *body = malloc(h.body_len ? h.body_len : 1);
  if (!body || recv_with_fds(sock, body, h.body_len, NULL, 0, NULL) < 0)
    _exit(127);
  /* Taken: tell the zygote, which answers the server only now (a warm
   * supervisor that died in the pool is never handed a spawn). */
  if (write(sock, "k", 1) != 1)
    _exit(127);
  zy_job j;
  if (job_decode(&j, body, h.body_len, fds, nfds) < 0 || (j.flags & ~WARM_DEFERRED) != wflags)
    _exit(127); /* the server sees a supervisor that died without a report */
  j.c.unshare_flags = j.flags & WARM_DEFERRED;
  prctl(PR_SET_NAME, zg.name, 0, 0, 0);
  exec_supervisor_main(&j.c);
}

static void warm_drop(size_t i) {
  close(zg.pool[i].sock);
  zg.pool[i] = zg.pool[--zg.n_pool];
}

/* Make warm supervisors until every kind has per_kind of them. */
static void warm_fill(void) {
  for (size_t k = 0; k < zg.n_kinds; k++) {
    size_t have = 0;
    for (size_t i = 0; i < zg.n_pool; i++)
      have += zg.pool[i].flags == zg.kinds[k];
    while (have < zg.per_kind && zg.n_pool < ZY_POOL_MAX) {
      int sv[2];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return;
      int pidfd = -1;
      pid_t pid = clone_parent_pidfd(zg.kinds[k], &pidfd);
      if (pid == 0) {
        prctl(PR_SET_NAME, "warden-warm", 0, 0, 0);
        close(sv[0]);
        warm_main(sv[1], zg.kinds[k]);
      }
      close(sv[1]);
      if (pid < 0) {
        close(sv[0]);
        return; /* try again after the next spawn */
      }
      zy_reply a = {.pid = 0, .announced = pid};
      int rc = send_with_fds(zg.to_server, &a, sizeof a, &pidfd, 1);
      close(pidfd);
      if (rc < 0)
        _exit(0); /* the server is gone */
      zg.pool[zg.n_pool++] = (zy_warm){pid, sv[0], zg.kinds[k]};
      have++;
    }
  }
}

static void warm_kind_seen(unsigned long wflags) {
  if (!zg.per_kind)
    return;
  for (size_t k = 0; k < zg.n_kinds; k++)
    if (zg.kinds[k] == wflags)
      return;
  if (zg.n_kinds < ZY_KINDS_MAX)
    zg.kinds[zg.n_kinds++] = wflags;
}

/* Hand the spawn to a warm supervisor of its kind: its pid, or -1 when there
 * is none (or every one we tried was dead: the server reaps those). */
static pid_t warm_take(unsigned long wflags, const void *msg, size_t len, const int *fds,
                       size_t nfds) {
  for (size_t i = 0; i < zg.n_pool;) {
    zy_warm *w = &zg.pool[i];
    if (w->flags != wflags) {
      i++;
      continue;
    }
    pid_t pid = w->pid;
    int rc = send_with_fds(w->sock, msg, len, fds, nfds);
    if (rc == 0) {
      struct pollfd pf = {.fd = w->sock, .events = POLLIN};
      char ack = 0;
      int n;
      do
        n = poll(&pf, 1, WARM_ACK_MS);
      while (n < 0 && errno == EINTR);
      if (n != 1 || read(w->sock, &ack, 1) != 1 || ack != 'k')
        rc = -EPIPE;
    }
    warm_drop(i); /* used or dead: out of the pool either way */
    if (rc == 0)
      return pid;
  }
  return -1;
}

static _Noreturn void zygote_main(int sock, pid_t server, size_t warm_per_kind) {
  /* Supervisors are named as the server is (as when they were its forks):
   * only the zygote itself is "warden-zygote". */
  memcpy(zg.name, "warden", 7);
  prctl(PR_GET_NAME, zg.name, 0, 0, 0);
  zg.server = server;
  zg.per_kind = warm_per_kind;
  /* Die with the server; the check closes the race with a server that died
   * before prctl. */
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (getppid() != server)
    _exit(0);
  prctl(PR_SET_NAME, "warden-zygote", 0, 0, 0);
  /* Nothing of the server's handlers runs here (every signal stays blocked
   * too); its supervisors inherit the default dispositions, so they need not
   * reset them one by one on each spawn. */
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction(sig, &dfl, NULL);
  /* Only our socket: 0-2 become /dev/null, everything else is closed, so no
   * pipe of the server's client is held open by us. */
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0)
    _exit(1);
  for (int i = 0; i < 3; i++)
    if (i != null)
      dup2(null, i);
  int s = fcntl(sock, F_DUPFD_CLOEXEC, 3);
  if (s < 0)
    _exit(1);
  for (int fd = 3; fd < 1024; fd++) /* close_range may be missing; the server was small */
    if (fd != s)
      close(fd);
  syscall(SYS_close_range, 1024u, ~0u, 0u);
  zg.to_server = s;
  warm_kind_seen(0); /* unsandboxed spawns are warm from the first */
  warm_fill();
  for (;;) {
    zy_head h;
    int fds[ZY_MAX_FDS];
    size_t nfds = 0;
    int rc = recv_with_fds(s, &h, sizeof h, fds, ZY_MAX_FDS, &nfds);
    if (rc < 0)
      _exit(0); /* EOF: the server closed us */
    if (h.magic != ZY_MAGIC || h.body_len > ZY_BODY_MAX || h.body_len < sizeof(uint64_t))
      _exit(1); /* the stream is out of step: nothing after this can be trusted */
    uint8_t *msg = malloc(sizeof h + h.body_len);
    if (!msg || recv_with_fds(s, msg + sizeof h, h.body_len, NULL, 0, NULL) < 0)
      _exit(msg ? 0 : 1);
    memcpy(msg, &h, sizeof h);
    const uint8_t *body = msg + sizeof h;
    uint64_t flags;
    memcpy(&flags, body, sizeof flags); /* the body starts with the flags */
    unsigned long wflags = (unsigned long)flags & ~(unsigned long)WARM_DEFERRED;
    zy_reply rep = {.pid = -1, .err = EPROTO};
    int pidfd = -1;
    pid_t wp = warm_take(wflags, msg, sizeof h + h.body_len, fds, nfds);
    if (wp > 0) {
      rep.pid = wp;
      rep.err = 0;
      rep.warm = 1;
    } else {
      zy_job j;
      int drc = job_decode(&j, body, h.body_len, fds, nfds);
      if (drc < 0) {
        rep.err = -drc;
      } else {
        pid_t pid = clone_parent_pidfd(j.flags, &pidfd);
        if (pid == 0) {
          prctl(PR_SET_NAME, zg.name, 0, 0, 0);
          exec_supervisor_main(&j.c);
        }
        rep.pid = pid;
        rep.err = pid < 0 ? errno : 0;
        job_free(&j);
      }
    }
    free(msg);
    close_all(fds, nfds);
    rc = send_with_fds(s, &rep, sizeof rep, &pidfd, pidfd >= 0 ? 1 : 0);
    if (pidfd >= 0)
      close(pidfd);
    if (rc < 0)
      _exit(0);
    /* Off the spawn's path now: refill. */
    if (rep.pid > 0)
      warm_kind_seen(wflags);
    warm_fill();
  }
}

int exec_zygote_start(size_t warm_per_kind) {
  if (zy.sock >= 0)
    return 0;
  if (warm_per_kind > ZY_WARM_MAX)
    warm_per_kind = ZY_WARM_MAX;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return -errno;
  pid_t server = getpid();
  /* Every signal blocked in the zygote from its first instruction: it
   * inherits the mask, and its supervisors inherit it from it (the
   * supervisor expects to start with all of them blocked). */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = fork();
  if (pid == 0) {
    close(sv[0]);
    zygote_main(sv[1], server, warm_per_kind);
  }
  int err = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(sv[1]);
  if (pid < 0) {
    close(sv[0]);
    return -err;
  }
  zy.sock = sv[0];
  zy.pid = pid;
  zy.pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  return 0;
}

/* Warm supervisors the server holds (announced, not handed out): reap the
 * ones that died; with kill, end and reap them all. */
static void warm_reap(bool kill) {
  for (size_t i = 0; i < zy.n_warm;) {
    warm_child *w = &zy.warm[i];
    if (kill)
      syscall(SYS_pidfd_send_signal, w->pidfd, SIGKILL, NULL, 0);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int rc;
    do
      rc = waitid((idtype_t)P_PIDFD, (id_t)w->pidfd, &si, WEXITED | __WALL | (kill ? 0 : WNOHANG));
    while (rc < 0 && errno == EINTR);
    if (rc < 0 || si.si_pid != 0) { /* reaped (or not ours to reap) */
      close(w->pidfd);
      *w = zy.warm[--zy.n_warm];
    } else {
      i++;
    }
  }
}

/* The zygote is gone or stuck: stop using it, make sure it is dead and
 * reaped, and say so once. */
static void zygote_lost(const char *why, int err) {
  if (zy.sock < 0)
    return;
  fprintf(stderr, "warden: zygote: %s: %s; spawning without it from now on\n", why,
          strerror(err));
  close(zy.sock);
  zy.sock = -1;
  if (zy.pidfd >= 0) {
    syscall(SYS_pidfd_send_signal, zy.pidfd, SIGKILL, NULL, 0);
    close(zy.pidfd);
    zy.pidfd = -1;
  }
  if (zy.pid > 0)
    waitpid(zy.pid, NULL, 0);
  zy.pid = -1;
  warm_reap(true);
}

void exec_zygote_stop(void) {
  if (zy.sock < 0)
    return;
  close(zy.sock); /* EOF: it exits, and its warm supervisors see EOF too */
  zy.sock = -1;
  warm_reap(true);
  if (zy.pid > 0)
    waitpid(zy.pid, NULL, 0);
  if (zy.pidfd >= 0)
    close(zy.pidfd);
  zy.pidfd = -1;
  zy.pid = -1;
}

pid_t exec_zygote_pid(void) { return zy.sock >= 0 ? zy.pid : -1; }

static int encode(wire_buf *w, const exec_child_ctx *c, unsigned long flags, int *fds,
                  size_t *nfds) {
  wire_u64(w, flags);
  wire_i32(w, c->server_pid);
  wire_u8(w, c->newpid);
  wire_u8(w, c->tty);
  wire_u8(w, c->limits != NULL);
  if (c->limits)
    wire_put(w, c->limits, sizeof *c->limits);
  exec_child_ctx cc = *c;
  exec_limits_state lim;
  if (c->limits)
    lim = *c->limits;
  int *slots[ZY_MAX_FDS];
  slot_fds(&cc, c->limits ? &lim : NULL, slots);
  *nfds = 0;
  for (int i = 0; i < ZY_MAX_FDS; i++) {
    int fd = slots[i] ? *slots[i] : -1;
    if (fd >= 0) {
      fds[*nfds] = fd;
      wire_i32(w, (int32_t)(*nfds)++);
    } else {
      wire_i32(w, -1);
    }
  }
  wire_str(w, c->cwd);
  wire_strv(w, c->argv);
  wire_strv(w, c->envp);
  wire_strv(w, c->cand);
  wire_u8(w, c->sandbox != NULL);
#ifdef WARDEN_EXEC_HAVE_SANDBOX
  if (c->sandbox && sandbox_spec_encode(c->sandbox, w) < 0)
    return -ENOMEM;
#else
  if (c->sandbox)
    return -ENOSYS;
#endif
  return w->oom ? -ENOMEM : 0;
}

int exec_zygote_spawn(const exec_child_ctx *c, unsigned long flags, int *pidfd, pid_t *pid) {
  if (zy.sock < 0)
    return -ENODEV;
  wire_buf w = {0};
  int fds[ZY_MAX_FDS];
  size_t nfds = 0;
  /* The header first, so the body's length is known: encode into the
   * buffer after room for it. */
  zy_head h = {.magic = ZY_MAGIC};
  wire_put(&w, &h, sizeof h);
  int rc = encode(&w, c, flags, fds, &nfds);
  if (rc < 0) {
    wire_buf_free(&w);
    return rc == -ENOMEM ? -ENOMEM : -ENODEV;
  }
  if (w.len - sizeof h > ZY_BODY_MAX) {
    wire_buf_free(&w);
    return -E2BIG;
  }
  h.body_len = (uint32_t)(w.len - sizeof h);
  memcpy(w.p, &h, sizeof h);
  rc = send_with_fds(zy.sock, w.p, w.len, fds, nfds);
  wire_buf_free(&w);
  if (rc < 0) {
    zygote_lost("cannot send a spawn", -rc);
    return -ENODEV;
  }
  warm_reap(false);
  /* Announcements first (the zygote sends each when it makes the warm
   * supervisor), then the answer. */
  zy_reply rep;
  int got[1] = {-1};
  size_t ngot;
  for (;;) {
    struct pollfd pf = {.fd = zy.sock, .events = POLLIN};
    int n;
    do
      n = poll(&pf, 1, EXEC_ZYGOTE_REPLY_MS);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
      /* A supervisor may exist by now; without its pid we cannot own it. It
       * is our child (CLONE_PARENT) with PDEATHSIG, and it dies once it finds
       * its report pipe without a reader, which the caller closes. */
      zygote_lost("no answer", n == 0 ? ETIMEDOUT : errno);
      return -ENODEV;
    }
    got[0] = -1;
    rc = recv_with_fds(zy.sock, &rep, sizeof rep, got, 1, &ngot);
    if (rc < 0) {
      close_all(got, ngot);
      zygote_lost("no answer", -rc);
      return -ENODEV;
    }
    if (rep.pid != 0)
      break;
    if (ngot != 1 || zy.n_warm >= sizeof zy.warm / sizeof zy.warm[0]) {
      close_all(got, ngot);
      zygote_lost("a warm supervisor announced without its pidfd", EPROTO);
      return -ENODEV;
    }
    zy.warm[zy.n_warm++] = (warm_child){rep.announced, got[0]};
  }
  if (rep.pid > 0 && rep.warm) {
    close_all(got, ngot);
    for (size_t i = 0; i < zy.n_warm; i++)
      if (zy.warm[i].pid == rep.pid) {
        *pid = rep.pid;
        *pidfd = zy.warm[i].pidfd; /* the caller's now */
        zy.warm[i] = zy.warm[--zy.n_warm];
        return 0;
      }
    zygote_lost("an answer naming an unknown warm supervisor", EPROTO);
    return -ENODEV;
  }
  if (rep.pid > 0 && ngot != 1) {
    close_all(got, ngot);
    zygote_lost("an answer without a pidfd", EPROTO);
    return -ENODEV;
  }
  if (rep.pid < 0) {
    close_all(got, ngot);
    if (rep.err == EPROTO) { /* the two ends disagree on the format: a bug */
      zygote_lost("could not read a spawn", EPROTO);
      return -ENODEV;
    }
    return -(rep.err ? rep.err : EIO); /* clone's own error, reported like ours */
  }
  *pid = rep.pid;
  *pidfd = got[0];
  return 0;
}
