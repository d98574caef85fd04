/* The engine: the process table, the deferred pass, backpressure, shutdown
 * and teardown.
 *
 * The table keeps every process from exec_spawn() until it is freed, in spawn
 * order; find/each only show the ones a caller may hold (spawned, not
 * released, not being freed). `live` counts supervisors not yet reaped:
 * shutdown is done when it reaches zero.
 *
 * The deferred pass (a zero timer) runs what must not happen inside the call
 * that caused it: write completions, spawn failures found in the parent, the
 * shutdown callback.
 */
#include "server/exec/exec_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static void on_defer(uv_timer_t *t);

int exec_engine_new(uv_loop_t *loop, const exec_engine_opts *opts, const exec_callbacks *cb,
                    exec_engine **out) {
  exec_engine *e = calloc(1, sizeof *e);
  if (!e)
    return -ENOMEM;
  e->loop = loop;
  if (cb)
    e->cb = *cb;
  e->retain_bytes = opts && opts->retain_none    ? 0
                    : opts && opts->retain_bytes ? opts->retain_bytes
                                                 : EXEC_DEFAULT_RETAIN_BYTES;
  e->retain_exited_ms =
      opts && opts->retain_exited_ms ? opts->retain_exited_ms : EXEC_DEFAULT_RETAIN_EXITED_MS;
  e->scratch = malloc(EXEC_CHUNK_MAX);
  e->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (!e->scratch || e->devnull < 0) {
    int err = e->scratch ? -errno : -ENOMEM;
    if (e->devnull >= 0)
      close(e->devnull);
    free(e->scratch);
    free(e);
    return err;
  }
  uv_timer_init(loop, &e->defer);
  e->defer.data = e;
  /* Writing to a stdin pipe whose reader is gone must be EPIPE, not death. */
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL && !(sa.sa_flags & SA_SIGINFO))
    signal(SIGPIPE, SIG_IGN);
  *out = e;
  return 0;
}

void exec_engine_defer(exec_engine *e) {
  if (!e->defer_closed && !e->freeing)
    uv_timer_start(&e->defer, on_defer, 0, 0);
}

static void run_write_done(exec_engine *e) {
  exec_wreq *r;
  while ((r = e->done_head)) {
    e->done_head = r->next;
    if (!e->done_head)
      e->done_tail = NULL;
    if (r->done)
      r->done(r->arg, r->result);
    free(r);
  }
}

static void on_defer(uv_timer_t *t) {
  exec_engine *e = t->data;
  /* Procs are unlinked only when freed, from a close callback: next stays
   * valid through this pass. */
  for (exec_proc *p = e->head, *next; p; p = next) {
    next = p->next;
    if (p->deferred_check) {
      p->deferred_check = false;
      exec_proc_check_done(p);
    }
  }
  run_write_done(e);
  if (e->done_pending) {
    e->done_pending = false;
    void (*done)(void *) = e->shutdown_done;
    e->shutdown_done = NULL;
    if (done)
      done(e->shutdown_arg);
  }
}

void exec_engine_unlink(exec_engine *e, exec_proc *p) {
  if (!p->linked)
    return;
  if (p->prev)
    p->prev->next = p->next;
  else
    e->head = p->next;
  if (p->next)
    p->next->prev = p->prev;
  else
    e->tail = p->prev;
  p->prev = p->next = NULL;
  p->linked = false;
}

void exec_engine_proc_reaped(exec_engine *e, exec_proc *p) {
  if (!p->in_live)
    return;
  p->in_live = false;
  if (--e->live == 0 && e->shutting && e->shutdown_done) {
    e->done_pending = true;
    exec_engine_defer(e);
  }
}

static bool visible(const exec_proc *p) {
  return p->state != EXEC_SPAWNING && p->state != EXEC_DEAD && !p->released && !p->failed &&
         !p->closing;
}

exec_proc *exec_engine_find(exec_engine *e, const char *process_id) {
  if (!e || !process_id)
    return NULL;
  for (exec_proc *p = e->head; p; p = p->next)
    if (visible(p) && strcmp(p->id, process_id) == 0)
      return p;
  return NULL;
}

void exec_engine_each(exec_engine *e, exec_proc_visit_fn fn, void *arg) {
  for (exec_proc *p = e->head, *next; p; p = next) {
    next = p->next;
    if (visible(p))
      fn(p, arg);
  }
}

void exec_engine_pause_output(exec_engine *e) {
  if (e->paused)
    return;
  e->paused = true;
  for (exec_proc *p = e->head; p; p = p->next)
    if (!p->closing)
      for (int i = EXEC_FD_OUT; i <= EXEC_FD_ERR; i++)
        exec_io_update(p, &p->fds[i]);
}

void exec_engine_resume_output(exec_engine *e) {
  if (!e->paused)
    return;
  e->paused = false;
  for (exec_proc *p = e->head; p; p = p->next)
    if (!p->closing)
      for (int i = EXEC_FD_OUT; i <= EXEC_FD_ERR; i++)
        exec_io_update(p, &p->fds[i]);
}

void exec_engine_shutdown(exec_engine *e, uint64_t grace_ms, void (*done)(void *arg), void *arg) {
  e->shutting = true;
  e->grace_ms = grace_ms;
  e->shutdown_done = done;
  e->shutdown_arg = arg;
  for (exec_proc *p = e->head; p; p = p->next) {
    if (p->sup_reaped || p->closing)
      continue;
    exec_proc_shutdown(p, grace_ms);
  }
  if (e->live == 0) {
    e->done_pending = true;
    exec_engine_defer(e);
  }
}

/* Teardown with supervisors still alive (free without shutdown): kill them
 * and wait briefly, so nothing is left behind. Blocking, but only here. */
static void reap_now(exec_proc *p) {
  int fd = p->fds[EXEC_FD_PIDFD].fd;
  if (fd < 0 || p->sup_reaped)
    return;
  exec_proc_kill_hard(p);
  struct pollfd pf = {.fd = fd, .events = POLLIN};
  if (poll(&pf, 1, 2000) <= 0)
    syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
  siginfo_t si;
  while (waitid((idtype_t)P_PIDFD, (id_t)fd, &si, WEXITED | __WALL) < 0 && errno == EINTR)
    ;
  p->sup_reaped = true;
  exec_engine_proc_reaped(p->e, p);
}

static void defer_closed(uv_handle_t *h) {
  exec_engine *e = h->data;
  e->defer_closed = true;
  exec_engine_maybe_free(e);
}

void exec_engine_maybe_free(exec_engine *e) {
  if (!e->freeing || !e->defer_closed || e->head)
    return;
  close(e->devnull);
  free(e->scratch);
  free(e);
  exec_limits_host_cleanup(1000);
}

void exec_engine_free(exec_engine *e) {
  if (!e || e->freeing)
    return;
  e->shutdown_done = NULL;
  for (exec_proc *p = e->head; p; p = p->next) {
    reap_now(p);
    p->released = true; /* no more callbacks */
    exec_proc_close(p);
  }
  e->freeing = true;
  /* Writes that were still queued get their answer now. */
  run_write_done(e);
  uv_close((uv_handle_t *)&e->defer, defer_closed);
}
