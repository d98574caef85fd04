/* Process lifecycle: started -> exit known -> supervisor reaped -> output
 * drained -> on_exit -> retained -> freed; signals, resize, release and the
 * accessors.
 *
 * Who kills what:
 *   catchable signals go to the supervisor (pidfd_send_signal), which
 *   forwards them to the command's group (everything, in a pid namespace);
 *   KILL is sent from here: to the command's group and pid when there is no
 *   pid namespace (the supervisor then kills the rest of the tree when the
 *   command is gone), to the supervisor itself when it is pid 1 of a
 *   namespace (the kernel kills the namespace with it).
 */
#include "server/exec/exec_int.h"

#ifdef WARDEN_EXEC_HAVE_SANDBOX
#include "server/sandbox/sandbox.h"
#endif

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t exec_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int sup_signal(exec_proc *p, int sig) {
  int fd = p->fds[EXEC_FD_PIDFD].fd;
  if (fd < 0 || p->sup_reaped)
    return -ESRCH;
  if (syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) < 0)
    return -errno;
  return 0;
}

void exec_proc_kill_hard(exec_proc *p) {
  if (p->sup_reaped || p->exit_known)
    return;
  if (!p->newpid && p->cmd_pgid > 0) {
    kill(-p->cmd_pgid, SIGKILL);
    kill(p->cmd_pid, SIGKILL);
  } else {
    /* pid 1 of a namespace, or not started yet: the supervisor goes, and
     * the kernel (namespace) or PDEATHSIG (command) takes the rest. */
    sup_signal(p, SIGKILL);
  }
  /* With a cgroup: the whole tree, whatever process group it moved to. */
  exec_limits_kill(&p->lim);
}

static void send_sig(exec_proc *p, int sig) {
  if (sig == SIGKILL) {
    exec_proc_kill_hard(p);
  } else if (sig == SIGSTOP) {
    /* The supervisor cannot catch STOP; send it directly when we can. */
    if (!p->newpid && p->cmd_pgid > 0)
      kill(-p->cmd_pgid, SIGSTOP);
    else
      sup_signal(p, SIGTSTP);
  } else {
    sup_signal(p, sig);
  }
}

static void on_timer(uv_timer_t *t);

void exec_proc_on_started(exec_proc *p, pid_t child_pid) {
  (void)child_pid;
  exec_engine *e = p->e;
  p->state = EXEC_RUNNING;
  if (p->timeout_ms >= 0)
    uv_timer_start(&p->t_timeout, on_timer, (uint64_t)p->timeout_ms, 0);
  if (e->cb.on_spawned)
    e->cb.on_spawned(e->cb.ctx, p, p->user, NULL);
  if (p->closing)
    return;
  exec_io_start_output(p);
  if (e->shutting) {
    send_sig(p, SIGTERM);
    uv_timer_start(&p->t_grace, on_timer, e->grace_ms, 0);
  }
}

static void on_timer(uv_timer_t *t) {
  exec_proc *p = t->data;
  if (t == &p->t_timeout) {
    if (p->state == EXEC_EXITED) {
      exec_proc_close(p); /* retention over */
    } else if (!p->exit_known && !p->sup_reaped) {
      p->timed_out = true;
      exec_proc_kill_hard(p);
    }
    return;
  }
  /* t_grace: KILL after a terminate's grace, or the drain cap */
  if (p->sup_reaped) {
    if (p->e->paused && !p->released) {
      uv_timer_start(&p->t_grace, on_timer, EXEC_DRAIN_TIMEOUT_MS, 0);
      return;
    }
    exec_io_drain_now(p);
    if (!p->closing)
      exec_proc_check_done(p);
    return;
  }
  exec_proc_kill_hard(p);
}

static void cleanup_sandbox(exec_proc *p) {
#ifdef WARDEN_EXEC_HAVE_SANDBOX
  if (p->sandbox)
    sandbox_spec_cleanup_host(p->sandbox);
#endif
  p->sandbox = NULL;
}

static void close_fds(exec_proc *p) {
  for (int i = 0; i < EXEC_NFDS; i++)
    exec_io_close_fd(p, &p->fds[i]);
}

static void deliver_exit(exec_proc *p) {
  exec_engine *e = p->e;
  int st = p->exit_status;
  p->info.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 0;
  p->info.signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
  p->info.timed_out = p->timed_out;
  static const char *const hit_names[EXEC_LIMIT_COUNT] = {"processes", "memory", "cpu",
                                                          "fileSize", NULL};
  int hit = exec_limits_finish(&p->lim, st);
  p->info.limit = hit >= 0 ? hit_names[hit] : NULL;
  uv_timer_stop(&p->t_grace);
  uv_timer_stop(&p->t_timeout);
  p->stdin_open = false;
  exec_io_fail_writes(p, -EPIPE);
  close_fds(p);
  cleanup_sandbox(p);
  p->state = EXEC_EXITED;
  uint64_t seq = p->next_seq++;
  if (e->cb.on_exit)
    e->cb.on_exit(e->cb.ctx, p, seq, &p->info);
  if (p->released)
    exec_proc_close(p); /* released while running: reported, not retained */
  else if (!p->closing)
    uv_timer_start(&p->t_timeout, on_timer, e->retain_exited_ms, 0);
}

void exec_proc_check_done(exec_proc *p) {
  exec_engine *e = p->e;
  if (p->closing || p->state == EXEC_DEAD || p->state == EXEC_EXITED)
    return;
  if (p->state == EXEC_SPAWNING) {
    if (!p->sup_reaped)
      return;
    if (!p->failed) {
      /* The supervisor died before exec was decided. */
      p->failed = true;
      p->err.err = WIFSIGNALED(p->sup_status) ? EINTR : ECHILD;
      strcpy(p->err.syscall, "supervisor");
    }
    p->state = EXEC_DEAD;
    close_fds(p);
    cleanup_sandbox(p);
    if (e->cb.on_spawned)
      e->cb.on_spawned(e->cb.ctx, p, p->user, &p->err);
    exec_proc_close(p);
    return;
  }
  if (!p->sup_reaped)
    return;
  if (!p->exit_known) {
    /* No EXIT record: the supervisor was killed (pid namespace KILL) or
     * failed; its status is the best we have. */
    p->exit_known = true;
    p->exit_status = p->sup_status;
    p->info.duration_ms = (uv_hrtime() - p->spawn_hr) / 1000000u;
  }
  if (p->released) {
    /* Its output is dropped from the release on: do not wait for EOF. */
    deliver_exit(p);
    return;
  }
  if (p->fds[EXEC_FD_OUT].reading || p->fds[EXEC_FD_ERR].reading) {
    if (!p->draining) {
      /* The tree is gone, so EOF is near; cap the wait in case something
       * outside it holds a pipe. */
      p->draining = true;
      uv_timer_stop(&p->t_grace);
      uv_timer_start(&p->t_grace, on_timer, EXEC_DRAIN_TIMEOUT_MS, 0);
    }
    return;
  }
  deliver_exit(p);
}

/* ---- closing and freeing ---- */

static void proc_free(exec_proc *p) {
  exec_engine *e = p->e;
  exec_limits_finish(&p->lim, 0); /* a spawn that never ran: remove its cgroups */
  exec_engine_unlink(e, p);
  exec_ring_free(&p->ring);
  for (size_t i = 0; p->argv && p->argv[i]; i++)
    free(p->argv[i]);
  free(p->argv);
  free(p->id);
  free(p);
  exec_engine_maybe_free(e);
}

void exec_proc_handle_closed(exec_proc *p) {
  if (--p->handles == 0 && p->closing)
    proc_free(p);
}

static void timer_closed(uv_handle_t *h) { exec_proc_handle_closed(h->data); }

void exec_proc_close(exec_proc *p) {
  if (p->closing)
    return;
  p->closing = true;
  p->stdin_open = false;
  exec_io_fail_writes(p, -EPIPE);
  close_fds(p);
  if (p->in_live && !p->sup_reaped) {
    p->in_live = false;
    p->e->live--;
  }
  uv_close((uv_handle_t *)&p->t_timeout, timer_closed);
  uv_close((uv_handle_t *)&p->t_grace, timer_closed);
}

/* ---- public ---- */

const char *exec_proc_id(const exec_proc *p) { return p->id; }
int exec_proc_pid(const exec_proc *p) { return p->cmd_pid ? p->cmd_pid : p->sup_pid; }
bool exec_proc_running(const exec_proc *p) { return p->state == EXEC_RUNNING; }
bool exec_proc_tty(const exec_proc *p) { return p->tty; }
char *const *exec_proc_argv(const exec_proc *p) { return p->argv; }
uint64_t exec_proc_started_at_ms(const exec_proc *p) { return p->started_ms; }
int exec_proc_limit_mech(const exec_proc *p, int which) {
  return which >= 0 && which < EXEC_LIMIT_COUNT ? (int)p->lim.mech[which] : EXEC_MECH_NONE;
}
const exec_exit_info *exec_proc_exit_info(const exec_proc *p) {
  return p->state == EXEC_EXITED ? &p->info : NULL;
}
uint64_t exec_proc_next_seq(const exec_proc *p) { return p->next_seq; }
void exec_proc_set_data(exec_proc *p, void *data) { p->data = data; }
void *exec_proc_get_data(const exec_proc *p) { return p->data; }

int exec_proc_resize(exec_proc *p, unsigned rows, unsigned cols) {
  if (!p->tty)
    return -ENOTTY;
  if (rows == 0 || cols == 0 || rows > 65535 || cols > 65535)
    return -EINVAL;
  int fd = p->fds[EXEC_FD_OUT].fd;
  if (fd < 0 || p->state != EXEC_RUNNING)
    return -ESRCH;
  struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
  if (ioctl(fd, TIOCSWINSZ, &ws) < 0)
    return -errno;
  return 0;
}

int exec_proc_terminate(exec_proc *p, int sig, uint64_t grace_ms) {
  if (sig <= 0 || sig >= NSIG)
    return -EINVAL;
  if (p->state != EXEC_RUNNING || p->exit_known || p->sup_reaped)
    return 0;
  send_sig(p, sig);
  if (sig != SIGKILL) {
    /* A pending earlier KILL stays. */
    if (!uv_is_active((uv_handle_t *)&p->t_grace) || uv_timer_get_due_in(&p->t_grace) > grace_ms) {
      uv_timer_stop(&p->t_grace);
      uv_timer_start(&p->t_grace, on_timer, grace_ms, 0);
    }
  }
  return 1;
}

void exec_proc_shutdown(exec_proc *p, uint64_t grace_ms) {
  if (p->state == EXEC_SPAWNING) {
    /* TERM follows once STARTED arrives (exec_proc_on_started); a setup that
     * hangs gets its supervisor killed after the grace. */
    uv_timer_start(&p->t_grace, on_timer, grace_ms, 0);
    return;
  }
  if (!p->exit_known)
    exec_proc_terminate(p, SIGTERM, grace_ms);
}

void exec_proc_read(const exec_proc *p, uint64_t after_seq, size_t max_bytes, exec_chunk_fn fn,
                    void *arg) {
  exec_ring_read(&p->ring, after_seq, max_bytes, fn, arg);
}

void exec_proc_release(exec_proc *p) {
  if (!p || p->released || p->closing)
    return;
  p->released = true;
  if (p->state == EXEC_EXITED || p->state == EXEC_DEAD) {
    p->data = NULL;
    exec_proc_close(p);
    return;
  }
  /* Still running: kill it; on_exit still comes (no more on_output), then it
   * is freed. Still spawning: its supervisor is killed and on_spawned reports
   * how the start ended. */
  exec_proc_kill_hard(p);
  exec_proc_check_done(p);
}
