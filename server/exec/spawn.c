/* Parent side of a spawn.
 *
 * exec_spawn() does everything that may allocate before clone: the exec argv
 * (arg0), the environment (sandbox additions, TERM for a PTY), the list of
 * program paths to try (PATH of the child's env, like execvpe), the PTY or the
 * pipes, and the report pipe. Then it blocks every signal, clones the
 * supervisor with CLONE_PIDFD (plus the sandbox's namespace flags), restores
 * the mask, closes the child's ends and puts the report pipe and the pidfd on
 * the loop. Nothing waits: on_spawned comes from the report pipe (STARTED or
 * FAILED), or for a failure once the supervisor has been reaped.
 */
#include "server/exec/exec_int.h"

#ifdef WARDEN_EXEC_HAVE_SANDBOX
#include "server/sandbox/sandbox.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

#define DEFAULT_PATH "/bin:/usr/bin"

static char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }

static size_t count(char *const *v) {
  size_t n = 0;
  while (v && v[n])
    n++;
  return n;
}

static bool same_name(const char *a, const char *b) {
  while (*a && *a != '=' && *a == *b) {
    a++;
    b++;
  }
  return (*a == '=' || !*a) && (*b == '=' || !*b);
}

/* The final environment: envp, the sandbox's additions over it, and TERM for
 * a PTY when absent. The strings are borrowed; only the array is new. */
static char **build_env(const exec_spawn_opts *o) {
  char *const *add = NULL;
#ifdef WARDEN_EXEC_HAVE_SANDBOX
  if (o->sandbox)
    add = sandbox_spec_env(o->sandbox);
#endif
  size_t n = count(o->envp), m = count(add);
  char **env = malloc((n + m + 2) * sizeof *env);
  if (!env)
    return NULL;
  size_t k = 0;
  bool term = false;
  for (size_t i = 0; i < n; i++) {
    bool over = false;
    for (size_t j = 0; j < m && !over; j++)
      over = same_name(o->envp[i], add[j]);
    if (over)
      continue;
    env[k++] = o->envp[i];
  }
  for (size_t j = 0; j < m; j++)
    env[k++] = add[j];
  for (size_t i = 0; i < k; i++)
    if (strncmp(env[i], "TERM=", 5) == 0)
      term = true;
  if (o->tty && !term)
    env[k++] = (char *)"TERM=xterm-256color";
  env[k] = NULL;
  return env;
}

/* Program paths to try, like execvpe: the name itself when it has a slash,
 * else each PATH entry of the child's environment (an empty entry is the
 * cwd). One allocation: the pointer array followed by the strings. */
static char **build_candidates(const char *prog, char *const *env) {
  const char *path = NULL;
  for (size_t i = 0; env[i]; i++)
    if (strncmp(env[i], "PATH=", 5) == 0)
      path = env[i] + 5;
  if (!path)
    path = DEFAULT_PATH;
  size_t plen = strlen(prog);
  if (strchr(prog, '/') || plen == 0) {
    char **c = malloc(2 * sizeof *c + plen + 1);
    if (!c)
      return NULL;
    c[0] = NULL;
    c[1] = NULL;
    if (plen) {
      c[0] = (char *)(c + 2);
      memcpy(c[0], prog, plen + 1);
    }
    return c;
  }
  size_t entries = 1;
  for (const char *p = path; *p; p++)
    entries += *p == ':';
  size_t bytes = (entries + 1) * sizeof(char *) + strlen(path) + entries * (plen + 2);
  char **c = malloc(bytes);
  if (!c)
    return NULL;
  char *s = (char *)(c + entries + 1);
  size_t k = 0;
  for (const char *p = path;;) {
    const char *end = strchr(p, ':');
    size_t dl = end ? (size_t)(end - p) : strlen(p);
    c[k++] = s;
    if (dl) {
      memcpy(s, p, dl);
      s += dl;
      *s++ = '/';
    }
    memcpy(s, prog, plen + 1);
    s += plen + 1;
    if (!end)
      break;
    p = end + 1;
  }
  c[k] = NULL;
  return c;
}

static int open_pty(const exec_spawn_opts *o, int *master, int *slave, unsigned char *veof) {
  int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0)
    return -errno;
  int s = -1;
  if (unlockpt(m) < 0)
    goto fail;
  s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (s < 0) {
    char name[128];
    if (ptsname_r(m, name, sizeof name) != 0)
      goto fail;
    s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0)
      goto fail;
  }
  struct termios t;
  if (tcgetattr(s, &t) == 0) {
    t.c_iflag |= IUTF8;
    tcsetattr(s, TCSANOW, &t);
    *veof = t.c_cc[VEOF];
  }
  struct winsize ws = {.ws_row = (unsigned short)(o->rows ? o->rows : 24),
                       .ws_col = (unsigned short)(o->cols ? o->cols : 80)};
  if (ioctl(m, TIOCSWINSZ, &ws) < 0)
    goto fail;
  if (fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK) < 0)
    goto fail;
  *master = m;
  *slave = s;
  return 0;
fail:;
  int err = -errno;
  close(m);
  if (s >= 0)
    close(s);
  return err;
}

static void close_pair(int p[2]) {
  for (int i = 0; i < 2; i++)
    if (p[i] >= 0)
      close(p[i]);
  p[0] = p[1] = -1;
}

static pid_t clone_pidfd(unsigned long flags, int *pidfd) {
  /* clone(flags, stack, parent_tid, ...): with CLONE_PIDFD the pidfd is
   * stored through parent_tid on the architectures we build for. */
  return (pid_t)syscall(SYS_clone, flags | CLONE_PIDFD | SIGCHLD, 0, pidfd, 0, 0);
}

static exec_proc *proc_new(exec_engine *e, const exec_spawn_opts *o) {
  exec_proc *p = calloc(1, sizeof *p);
  if (!p)
    return NULL;
  p->e = e;
  p->id = xstrdup(o->process_id);
  size_t n = count(o->argv);
  p->argv = calloc(n + 1, sizeof *p->argv);
  if (!p->id || !p->argv)
    goto fail;
  for (size_t i = 0; i < n; i++)
    if (!(p->argv[i] = strdup(o->argv[i])))
      goto fail;
  p->chunk = exec_chunk_size(e->retain_bytes);
  if (exec_ring_init(&p->ring, e->retain_bytes) < 0)
    goto fail;
  for (int i = 0; i < EXEC_NFDS; i++)
    p->fds[i] = (exec_fdw){.proc = p, .fd = -1, .role = i};
  p->user = o->user;
  p->tty = o->tty;
  p->cap = o->output_cap;
  p->timeout_ms = o->timeout_ms;
  p->sandbox = o->sandbox;
  p->next_seq = 1;
  p->spawn_hr = uv_hrtime();
  p->started_ms = exec_now_ms();
  uv_timer_init(e->loop, &p->t_timeout);
  uv_timer_init(e->loop, &p->t_grace);
  p->t_timeout.data = p;
  p->t_grace.data = p;
  p->handles = 2;
  return p;
fail:
  if (p->argv)
    for (size_t i = 0; p->argv[i]; i++)
      free(p->argv[i]);
  free(p->argv);
  free(p->id);
  free(p);
  return NULL;
}

static void proc_discard(exec_proc *p) {
  /* Not yet on the loop beyond its two idle timers: close those. */
  exec_proc_close(p);
}

static int poll_fd(exec_proc *p, int role, int fd) {
  exec_fdw *w = &p->fds[role];
  w->fd = fd;
  int rc = uv_poll_init(p->e->loop, &w->poll, fd);
  if (rc < 0)
    return rc;
  w->poll.data = w;
  w->polling = true;
  p->handles++;
  return 0;
}

int exec_spawn(exec_engine *e, const exec_spawn_opts *o) {
  if (!e || !o || !o->process_id || !o->argv || !o->argv[0] || !o->envp)
    return -EINVAL;
  if (o->tty && (o->rows > 65535 || o->cols > 65535))
    return -EINVAL;
  if (e->shutting || e->freeing)
    return -ECANCELED;
  for (exec_proc *q = e->head; q; q = q->next) {
    if (q->released || q->failed || strcmp(q->id, o->process_id) != 0)
      continue;
    if (q->state != EXEC_EXITED)
      return -EEXIST;
    exec_proc_release(q); /* an exited, retained process: the id is free again */
    break;
  }
#ifndef WARDEN_EXEC_HAVE_SANDBOX
  unsigned long nsflags = 0;
#else
  unsigned long nsflags = o->sandbox ? sandbox_spec_clone_flags(o->sandbox) : 0;
#endif

  exec_proc *p = proc_new(e, o);
  if (!p)
    return -ENOMEM;
  /* Limits: cgroups created and configured now, joined by the supervisor. */
  exec_limits_prepare(&p->lim, o->limits, ++e->spawn_serial);
  p->newpid = (nsflags & CLONE_NEWPID) != 0;

  int rc = 0;
  int report[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, in[2] = {-1, -1};
  int master = -1, slave = -1;
  char **env = NULL, **cand = NULL, **argv = NULL, **sh_argv = NULL;

  if (pipe2(report, O_CLOEXEC | O_NONBLOCK) < 0)
    goto errno_fail;
  /* the supervisor's end must block */
  if (fcntl(report[1], F_SETFL, 0) < 0)
    goto errno_fail;
  if (o->tty) {
    p->veof = 4; /* ^D */
    if ((rc = open_pty(o, &master, &slave, &p->veof)) < 0)
      goto fail;
  } else {
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
      goto errno_fail;
    /* Room for a read of EXEC_CHUNK_MAX: a fast writer fills it while we
     * send the last chunk, and each wakeup moves four times what the
     * default 64 KiB allows. Best effort: pipe-max-size may be lower. */
    fcntl(out[0], F_SETPIPE_SZ, EXEC_PIPE_BYTES);
    fcntl(err[0], F_SETPIPE_SZ, EXEC_PIPE_BYTES);
    if (o->stream_stdin && pipe2(in, O_CLOEXEC) < 0)
      goto errno_fail;
  }

  size_t argc = count(o->argv);
  env = build_env(o);
  argv = malloc((argc + 1) * sizeof *argv);
  sh_argv = malloc((argc + 2) * sizeof *sh_argv);
  if (!env || !argv || !sh_argv)
    goto nomem;
  memcpy(argv, o->argv, (argc + 1) * sizeof *argv);
  if (o->arg0)
    argv[0] = (char *)o->arg0;
  sh_argv[0] = (char *)"/bin/sh";
  sh_argv[1] = NULL; /* the script, set in the child */
  memcpy(sh_argv + 2, o->argv + 1, argc * sizeof *sh_argv);
  if (!(cand = build_candidates(o->argv[0], env)))
    goto nomem;

  exec_child_ctx c = {
      .server_pid = getpid(),
      .newpid = p->newpid,
      .tty = o->tty,
      .report_w = report[1],
      .devnull = e->devnull,
      .pty_slave = slave,
      .sandbox_fd = -1,
      .stdin_r = in[0],
      .stdout_w = out[1],
      .stderr_w = err[1],
      .cwd = o->cwd,
      .argv = argv,
      .envp = env,
      .cand = cand,
      .sh_argv = sh_argv,
      .sandbox = o->sandbox,
      .limits = p->lim.active ? &p->lim : NULL,
  };

#ifdef WARDEN_EXEC_HAVE_SANDBOX
  if (o->sandbox) {
    /* An fd the sandbox setup in the supervisor still needs (the proxy
     * channel); the server's own 0-2 are open, so it is above 2. */
    int sfd[1];
    if (sandbox_spec_child_fds(o->sandbox, sfd, 1) == 1 && sfd[0] > 2)
      c.sandbox_fd = sfd[0];
  }
#endif

#ifdef WARDEN_EXEC_HAVE_SANDBOX
  /* the janitor waits for this supervisor before it removes placeholders */
  sandbox_janitor_clone_begin(o->sandbox);
#endif
  /* The zygote clones the supervisor (zygote.c); without one, we do, as a
   * fork of the server, with every signal blocked so the child starts with
   * none of our handlers able to run. */
  int pidfd = -1;
  pid_t pid = -1;
  int clone_errno = 0;
  int zrc = exec_zygote_spawn(&c, nsflags, &pidfd, &pid);
  if (zrc == -ENODEV) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = clone_pidfd(nsflags, &pidfd);
    if (pid == 0)
      exec_supervisor_main(&c);
    clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  } else if (zrc < 0) {
    clone_errno = -zrc;
  }
#ifdef WARDEN_EXEC_HAVE_SANDBOX
  sandbox_janitor_clone_end(o->sandbox, pid > 0 ? pidfd : -1);
#endif
  exec_limits_after_clone(&p->lim);
#ifdef WARDEN_EXEC_HAVE_SANDBOX
  /* Our copy of the channel's child end: closed, so the server side sees
   * EOF if the supervisor dies before sending. */
  if (o->sandbox)
    sandbox_spec_after_clone(o->sandbox);
#endif

  free(env);
  free(argv);
  free(sh_argv);
  free(cand);
  env = argv = sh_argv = cand = NULL;
  if (slave >= 0)
    close(slave);
  slave = -1;
  close(report[1]);
  report[1] = -1;
  if (out[1] >= 0)
    close(out[1]);
  if (err[1] >= 0)
    close(err[1]);
  if (in[0] >= 0)
    close(in[0]);
  out[1] = err[1] = in[0] = -1;

  /* Put it in the table now: the id is taken from here on. */
  p->prev = e->tail;
  if (e->tail)
    e->tail->next = p;
  else
    e->head = p;
  e->tail = p;
  p->linked = true;

  if (pid < 0) {
    /* Reported like any other spawn failure, from the loop. */
    close(report[0]);
    if (master >= 0)
      close(master);
    close_pair(out);
    close_pair(err);
    close_pair(in);
    p->failed = true;
    p->sup_reaped = true;
    p->err.err = clone_errno;
    snprintf(p->err.syscall, sizeof p->err.syscall, "clone");
    p->err.sandbox = nsflags != 0;
    p->deferred_check = true;
    exec_engine_defer(e);
    return 0;
  }

  p->sup_pid = pid;
  p->in_live = true;
  e->live++;
  /* From here the supervisor exists: errors kill it and report through the
   * normal path (reap, then on_spawned with the error). */
  if ((rc = poll_fd(p, EXEC_FD_PIDFD, pidfd)) < 0) {
    syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    siginfo_t si;
    while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED | __WALL) < 0 && errno == EINTR)
      ;
    close(pidfd);
    p->fds[EXEC_FD_PIDFD].fd = -1;
    p->sup_reaped = true;
    exec_engine_proc_reaped(e, p);
    p->deferred_check = true;
    exec_engine_defer(e);
  } else if ((rc = poll_fd(p, EXEC_FD_REPORT, report[0])) < 0) {
    p->fds[EXEC_FD_REPORT].fd = -1;
    syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
  }
  if (p->fds[EXEC_FD_REPORT].fd < 0)
    close(report[0]);
  report[0] = -1;
  if (rc < 0) {
    p->failed = true;
    p->err.err = -rc;
    snprintf(p->err.syscall, sizeof p->err.syscall, "uv_poll_init");
  }
  if (o->tty) {
    if (poll_fd(p, EXEC_FD_OUT, master) < 0) {
      p->fds[EXEC_FD_OUT].fd = -1;
      close(master);
    }
    p->wfd = &p->fds[EXEC_FD_OUT];
    p->stdin_open = p->fds[EXEC_FD_OUT].fd >= 0;
  } else {
    if (poll_fd(p, EXEC_FD_OUT, out[0]) < 0) {
      p->fds[EXEC_FD_OUT].fd = -1;
      close(out[0]);
    }
    if (poll_fd(p, EXEC_FD_ERR, err[0]) < 0) {
      p->fds[EXEC_FD_ERR].fd = -1;
      close(err[0]);
    }
    if (in[1] >= 0) {
      fcntl(in[1], F_SETFL, fcntl(in[1], F_GETFL) | O_NONBLOCK);
      if (poll_fd(p, EXEC_FD_IN, in[1]) < 0) {
        p->fds[EXEC_FD_IN].fd = -1;
        close(in[1]);
      }
      p->wfd = &p->fds[EXEC_FD_IN];
      p->stdin_open = p->fds[EXEC_FD_IN].fd >= 0;
    }
  }
  if (p->fds[EXEC_FD_PIDFD].polling)
    uv_poll_start(&p->fds[EXEC_FD_PIDFD].poll, UV_READABLE, exec_io_on_poll);
  if (p->fds[EXEC_FD_REPORT].polling)
    uv_poll_start(&p->fds[EXEC_FD_REPORT].poll, UV_READABLE, exec_io_on_poll);
  return 0;

nomem:
  rc = -ENOMEM;
  goto fail;
errno_fail:
  rc = -errno;
fail:
  free(env);
  free(argv);
  free(sh_argv);
  free(cand);
  close_pair(report);
  close_pair(out);
  close_pair(err);
  close_pair(in);
  if (master >= 0)
    close(master);
  if (slave >= 0)
    close(slave);
  proc_discard(p);
  return rc;
}

/* ---- the report pipe and the pidfd ---- */

static pid_t ns_child_pid(pid_t sup) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)sup, (int)sup);
  FILE *f = fopen(path, "re");
  if (!f)
    return sup;
  int pid = 0;
  if (fscanf(f, "%d", &pid) != 1)
    pid = sup;
  fclose(f);
  return pid;
}

static void on_record(exec_proc *p, const exec_record *r) {
  switch (r->type) {
  case EXEC_REC_STARTED:
    if (p->state != EXEC_SPAWNING || p->failed)
      return;
    if (p->newpid) {
      p->cmd_pid = ns_child_pid(p->sup_pid);
      p->cmd_pgid = 0;
    } else {
      p->cmd_pid = r->pid;
      p->cmd_pgid = r->pid;
    }
    exec_proc_on_started(p, p->cmd_pid);
    return;
  case EXEC_REC_FAILED:
    if (p->state != EXEC_SPAWNING || p->failed)
      return;
    p->failed = true;
    p->err.err = r->err;
    memcpy(p->err.syscall, r->step, sizeof p->err.syscall);
    p->err.syscall[sizeof p->err.syscall - 1] = '\0';
    p->err.sandbox = r->sandbox != 0;
    return;
  case EXEC_REC_EXIT:
    if (p->exit_known)
      return;
    p->exit_known = true;
    p->exit_status = r->status;
    p->info.duration_ms = (uv_hrtime() - p->spawn_hr) / 1000000u;
    uv_timer_stop(&p->t_timeout);
    exec_proc_check_done(p);
    return;
  }
}

void exec_report_readable(exec_proc *p) {
  exec_fdw *w = &p->fds[EXEC_FD_REPORT];
  while (w->fd >= 0) {
    ssize_t n = read(w->fd, p->rbuf + p->rlen, sizeof p->rbuf - p->rlen);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return;
    if (n <= 0) {
      exec_io_close_fd(p, w);
      break;
    }
    p->rlen += (size_t)n;
    if (p->rlen == sizeof p->rbuf) {
      exec_record r;
      memcpy(&r, p->rbuf, sizeof r);
      p->rlen = 0;
      on_record(p, &r);
      if (p->state == EXEC_DEAD)
        return;
    }
  }
}

void exec_pidfd_readable(exec_proc *p) {
  exec_fdw *w = &p->fds[EXEC_FD_PIDFD];
  if (w->fd < 0 || p->sup_reaped)
    return;
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int rc = waitid((idtype_t)P_PIDFD, (id_t)w->fd, &si, WEXITED | WNOHANG | __WALL);
  if (rc < 0 && errno == EINTR)
    return;
  if (rc == 0 && si.si_pid == 0)
    return; /* not yet */
  if (rc == 0)
    p->sup_status = si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8 : si.si_status & 0x7f;
  else
    p->sup_status = 0; /* ECHILD: someone else reaped it (SIGCHLD ignored) */
  p->sup_reaped = true;
  exec_io_close_fd(p, w);
  /* The supervisor is gone: whatever it wrote is in the pipe. */
  exec_report_readable(p);
  if (p->state == EXEC_DEAD)
    return;
  if (p->fds[EXEC_FD_REPORT].fd >= 0)
    exec_io_close_fd(p, &p->fds[EXEC_FD_REPORT]);
  exec_engine_proc_reaped(p->e, p);
  exec_proc_check_done(p);
}
