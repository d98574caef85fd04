/* The zero-copy tunnel: splice(2) through a pipe per direction, so tunnel
 * bytes go socket -> pipe -> socket inside the kernel and never through a
 * user-space buffer.
 *
 * The sockets leave libuv's stream handles for this: each fd is dup'ed, the
 * uv_tcp_t closed, and the dup watched with a uv_poll_t. Backpressure is the
 * pipe: a direction reads from its source only while its pipe is empty, and
 * waits for its destination to be writable while it is not. EOF is passed on
 * as shutdown(SHUT_WR) once the pipe is drained; the tunnel ends when both
 * directions are done, on an error, or after the idle timeout. */
#include "server/netproxy/np_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct sp_dir {
  int from, to;
  int pipe[2];
  size_t in_pipe;
  bool eof, shut;
} sp_dir;

struct np_splice {
  np_conn *c;
  uv_poll_t *poll[2]; /* [0] client fd, [1] upstream fd */
  int fd[2];
  sp_dir dir[2]; /* [0] client -> upstream, [1] upstream -> client */
  int mask[2];        /* events each poll waits for now */
  unsigned open_polls;
  bool closing;
};

static void poll_closed(uv_handle_t *h) {
  np_splice *s = h->data;
  free(h);
  if (--s->open_polls == 0) {
    for (int i = 0; i < 2; i++) {
      close(s->fd[i]);
      close(s->dir[i].pipe[0]);
      close(s->dir[i].pipe[1]);
    }
    free(s);
  }
}

void np_splice_close(np_splice *s) {
  if (!s || s->closing)
    return;
  s->closing = true;
  s->c = NULL;
  for (int i = 0; i < 2; i++)
    uv_close((uv_handle_t *)s->poll[i], poll_closed);
}

static void fail(np_splice *s) {
  np_conn *c = s->c;
  if (c)
    np_conn_close(c); /* closes s too */
}

static void idle_expired(np_conn *c) { np_conn_close(c); }

/* Move what the pipe holds to the destination. 0, or -1 on error. */
static int drain(sp_dir *d) {
  while (d->in_pipe) {
    ssize_t m = splice(d->pipe[0], NULL, d->to, NULL, d->in_pipe,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (m < 0)
      return errno == EAGAIN ? 0 : -1;
    d->in_pipe -= (size_t)m;
  }
  if (d->eof && !d->shut) {
    d->shut = true;
    shutdown(d->to, SHUT_WR);
  }
  return 0;
}

static int fill(sp_dir *d) {
  ssize_t n = splice(d->from, NULL, d->pipe[1], NULL, NETPROXY_BUF,
                     SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
  if (n == 0)
    d->eof = true;
  else if (n < 0)
    return errno == EAGAIN ? 0 : -1;
  else
    d->in_pipe += (size_t)n;
  return drain(d);
}

static void on_poll(uv_poll_t *h, int status, int events);

static void rearm(np_splice *s) {
  for (int i = 0; i < 2; i++) {
    int ev = 0;
    sp_dir *out = &s->dir[i], *in = &s->dir[1 - i]; /* fd i reads `out`, is written by `in` */
    if (!out->eof && out->in_pipe == 0)
      ev |= UV_READABLE;
    if (in->in_pipe)
      ev |= UV_WRITABLE;
    if (ev == s->mask[i]) /* unchanged: no epoll_ctl */
      continue;
    s->mask[i] = ev;
    if (ev)
      uv_poll_start(s->poll[i], ev, on_poll);
    else
      uv_poll_stop(s->poll[i]);
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  np_splice *s = h->data;
  if (s->closing || !s->c)
    return;
  int i = h == s->poll[0] ? 0 : 1;
  if (status < 0) {
    fail(s);
    return;
  }
  np_timer_set(s->c, np_idle_timeout(s->c), idle_expired);
  if ((events & UV_WRITABLE) && drain(&s->dir[1 - i]) < 0) {
    fail(s);
    return;
  }
  if ((events & (UV_READABLE | UV_DISCONNECT)) && fill(&s->dir[i]) < 0) {
    fail(s);
    return;
  }
  if (s->dir[0].shut && s->dir[1].shut) {
    fail(s); /* both directions done: the tunnel is over */
    return;
  }
  rearm(s);
}

/* Take the two sockets out of libuv and relay them with splice. The caller
 * has nothing pending on either handle. 0, or a negative errno (nothing
 * changed: use the copying relay). */
int np_splice_start(np_conn *c) {
  uv_os_fd_t a, b;
  if (uv_fileno((uv_handle_t *)c->client, &a) < 0 || uv_fileno((uv_handle_t *)c->up, &b) < 0)
    return -EBADF;
  np_splice *s = calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  s->dir[0].pipe[0] = s->dir[0].pipe[1] = s->dir[1].pipe[0] = s->dir[1].pipe[1] = -1;
  s->fd[0] = s->fd[1] = -1;
  int rc = 0;
  for (int i = 0; i < 2 && rc == 0; i++) {
    if (pipe2(s->dir[i].pipe, O_CLOEXEC | O_NONBLOCK) < 0)
      rc = -errno;
    else
      fcntl(s->dir[i].pipe[1], F_SETPIPE_SZ, (int)NETPROXY_BUF); /* best effort */
  }
  if (rc == 0 && ((s->fd[0] = fcntl(a, F_DUPFD_CLOEXEC, 3)) < 0 ||
                  (s->fd[1] = fcntl(b, F_DUPFD_CLOEXEC, 3)) < 0))
    rc = -errno;
  for (int i = 0; i < 2 && rc == 0; i++)
    if (!(s->poll[i] = malloc(sizeof(uv_poll_t))))
      rc = -ENOMEM;
  if (rc < 0) {
    free(s->poll[0]);
    free(s->poll[1]);
    for (int i = 0; i < 2; i++) {
      if (s->fd[i] >= 0)
        close(s->fd[i]);
      if (s->dir[i].pipe[0] >= 0) {
        close(s->dir[i].pipe[0]);
        close(s->dir[i].pipe[1]);
      }
    }
    free(s);
    return rc;
  }
  for (int i = 0; i < 2; i++) {
    uv_poll_init(np_loop(c), s->poll[i], s->fd[i]); /* a socket fd: cannot fail */
    s->poll[i]->data = s;
    s->open_polls++;
  }
  s->dir[0].from = s->fd[0];
  s->dir[0].to = s->fd[1];
  s->dir[1].from = s->fd[1];
  s->dir[1].to = s->fd[0];
  /* the stream handles go; the sockets stay open through the dups */
  uv_read_stop((uv_stream_t *)c->client);
  uv_read_stop((uv_stream_t *)c->up);
  np_handle_close(c, (uv_handle_t *)c->client);
  np_handle_close(c, (uv_handle_t *)c->up);
  c->client = c->up = NULL;
  s->c = c;
  c->splice = s;
  np_timer_set(c, np_idle_timeout(c), idle_expired);
  rearm(s);
  return 0;
}
