/* Output and stdin of a process.
 *
 * Output: uv_poll + read(2) of up to EXEC_CHUNK_MAX bytes straight into the
 * ring (no copy; the chunk handed to on_output points into it), a few reads
 * per wakeup, a short read ends the round. Past the cap a stream is read into
 * the engine's scratch buffer and dropped. Reading stops while the engine is
 * paused, so children block on full pipes.
 *
 * Stdin: a queue of copied requests written nonblocking in order; partial
 * writes resume on POLLOUT. close_stdin closes the pipe after the data, or for
 * a PTY appends the VEOF character. Completions are reported from the
 * engine's deferred pass, never from inside exec_proc_write.
 */
#include "server/exec/exec_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static void poll_closed(uv_handle_t *h);

void exec_io_update(exec_proc *p, exec_fdw *w) {
  if (!w->polling)
    return;
  int ev = 0;
  if (w->reading && !p->e->paused && p->state == EXEC_RUNNING)
    ev |= UV_READABLE;
  if (w == p->wfd && p->wq_head)
    ev |= UV_WRITABLE;
  if (ev == w->events)
    return;
  w->events = ev;
  if (ev)
    uv_poll_start(&w->poll, ev, exec_io_on_poll);
  else
    uv_poll_stop(&w->poll);
}

void exec_io_start_output(exec_proc *p) {
  for (int i = EXEC_FD_OUT; i <= EXEC_FD_ERR; i++) {
    exec_fdw *w = &p->fds[i];
    w->reading = w->fd >= 0;
    exec_io_update(p, w);
  }
}

void exec_io_close_fd(exec_proc *p, exec_fdw *w) {
  (void)p;
  if (w->fd < 0)
    return;
  if (w->polling) {
    uv_close((uv_handle_t *)&w->poll, poll_closed);
    w->polling = false;
  }
  close(w->fd);
  w->fd = -1;
  w->reading = false;
  w->events = 0;
}

static void poll_closed(uv_handle_t *h) {
  exec_fdw *w = h->data;
  exec_proc *p = w->proc;
  exec_proc_handle_closed(p);
}

/* ---- output ---- */

static void deliver(exec_proc *p, int si, exec_stream stream, uint8_t *buf, size_t n, bool in_ring) {
  if (p->capped[si])
    return;
  bool cap_hit = false;
  if (p->cap >= 0) {
    uint64_t room = (uint64_t)p->cap - p->delivered[si];
    if (n >= room) {
      n = (size_t)room;
      cap_hit = true;
      p->capped[si] = true;
    }
  }
  uint64_t seq = p->next_seq++;
  if (in_ring)
    exec_ring_commit(&p->ring, seq, stream, n);
  p->delivered[si] += n;
  if (!p->released && p->e->cb.on_output)
    p->e->cb.on_output(p->e->cb.ctx, p, seq, stream, buf, n, cap_hit);
}

static void output_eof(exec_proc *p, exec_fdw *w) {
  if (w == p->wfd) {
    p->stdin_open = false;
    exec_io_fail_writes(p, -EPIPE);
  }
  exec_io_close_fd(p, w);
  exec_proc_check_done(p);
}

/* Returns false when the stream ended. */
static bool read_some(exec_proc *p, exec_fdw *w) {
  exec_engine *e = p->e;
  int si = w->role == EXEC_FD_ERR ? 1 : 0;
  exec_stream stream = w->role == EXEC_FD_ERR ? EXEC_STREAM_STDERR
                       : p->tty               ? EXEC_STREAM_PTY
                                              : EXEC_STREAM_STDOUT;
  for (int i = 0; i < EXEC_READ_BUDGET; i++) {
    bool in_ring = !p->capped[si] && p->ring.buf && !p->released;
    uint8_t *buf = in_ring ? exec_ring_reserve(&p->ring) : e->scratch;
    ssize_t n = read(w->fd, buf, p->chunk);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN)
        return true;
      n = 0; /* EIO: the PTY's slave side is closed everywhere */
    }
    if (n == 0) {
      output_eof(p, w);
      return false;
    }
    deliver(p, si, stream, buf, (size_t)n, in_ring);
    if (w->fd < 0 || !w->reading || e->paused || p->closing || (size_t)n < p->chunk)
      break;
  }
  return true;
}

void exec_io_drain_now(exec_proc *p) {
  for (int i = EXEC_FD_OUT; i <= EXEC_FD_ERR; i++) {
    exec_fdw *w = &p->fds[i];
    if (w->fd >= 0 && w->reading && !p->e->paused)
      read_some(p, w);
    if (p->closing)
      return;
    if (w->fd >= 0)
      exec_io_close_fd(p, w);
  }
}

/* ---- stdin ---- */

void exec_io_fail_writes(exec_proc *p, int err) {
  exec_engine *e = p->e;
  exec_wreq *r;
  bool any = false;
  while ((r = p->wq_head)) {
    p->wq_head = r->next;
    r->next = NULL;
    r->result = err;
    if (e->done_tail)
      e->done_tail->next = r;
    else
      e->done_head = r;
    e->done_tail = r;
    any = true;
  }
  p->wq_tail = NULL;
  if (any)
    exec_engine_defer(e);
}

static void write_complete(exec_proc *p, exec_wreq *r) {
  exec_engine *e = p->e;
  p->wq_head = r->next;
  if (!p->wq_head)
    p->wq_tail = NULL;
  r->next = NULL;
  r->result = (ssize_t)r->report;
  if (e->done_tail)
    e->done_tail->next = r;
  else
    e->done_head = r;
  e->done_tail = r;
  exec_engine_defer(e);
}

static void flush(exec_proc *p) {
  exec_fdw *w = p->wfd;
  exec_wreq *r;
  while ((r = p->wq_head)) {
    if (!w || w->fd < 0) {
      exec_io_fail_writes(p, -EPIPE);
      return;
    }
    while (r->off < r->len) {
      ssize_t n = write(w->fd, r->data + r->off, r->len - r->off);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        if (errno == EAGAIN)
          return;
        int err = (errno == EIO || errno == EPIPE) ? -EPIPE : -errno;
        p->stdin_open = false;
        exec_io_fail_writes(p, err);
        if (!p->tty)
          exec_io_close_fd(p, w);
        return;
      }
      r->off += (size_t)n;
    }
    bool close_after = r->close_after;
    write_complete(p, r);
    if (close_after && !p->tty) {
      exec_io_fail_writes(p, -EPIPE); /* nothing can follow a close */
      exec_io_close_fd(p, w);
      return;
    }
  }
}

int exec_proc_write(exec_proc *p, const uint8_t *data, size_t len, bool close_stdin,
                    exec_write_done_fn done, void *arg) {
  if (!p || p->state != EXEC_RUNNING || p->released || p->closing)
    return -EPIPE;
  if (!p->stdin_open || !p->wfd || p->wfd->fd < 0)
    return -EPIPE;
  bool eof = close_stdin && p->tty;
  exec_wreq *r = malloc(sizeof *r + len + 1);
  if (!r)
    return -ENOMEM;
  *r = (exec_wreq){.data = (uint8_t *)(r + 1), .len = len, .report = len,
                   .close_after = close_stdin, .done = done, .arg = arg};
  if (len)
    memcpy(r->data, data, len);
  if (eof) {
    unsigned char c = p->veof;
    struct termios t;
    if (tcgetattr(p->wfd->fd, &t) == 0 && t.c_cc[VEOF] != _POSIX_VDISABLE)
      c = t.c_cc[VEOF];
    r->data[r->len++] = c;
  }
  if (close_stdin)
    p->stdin_open = false;
  if (p->wq_tail)
    p->wq_tail->next = r;
  else
    p->wq_head = r;
  p->wq_tail = r;
  flush(p);
  if (p->wfd && p->wfd->fd >= 0)
    exec_io_update(p, p->wfd);
  return 0;
}

/* ---- the poll callback of every fd of a process ---- */

void exec_io_on_poll(uv_poll_t *h, int status, int events) {
  exec_fdw *w = h->data;
  exec_proc *p = w->proc;
  switch (w->role) {
  case EXEC_FD_REPORT:
    exec_report_readable(p);
    return;
  case EXEC_FD_PIDFD:
    exec_pidfd_readable(p);
    return;
  }
  if (status < 0) {
    /* POLLERR: libuv stopped the handle. Let read/write find the error. */
    w->events = 0;
    events = (w->reading ? UV_READABLE : 0) | (w == p->wfd && p->wq_head ? UV_WRITABLE : 0);
  }
  if ((events & UV_WRITABLE) && w == p->wfd)
    flush(p);
  if (w->fd >= 0 && (events & UV_READABLE) && w->reading && !p->e->paused)
    read_some(p, w);
  if (w->fd >= 0 && !p->closing)
    exec_io_update(p, w);
}
