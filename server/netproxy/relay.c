/* The tunnel: bytes both ways between the client and the upstream, for
 * CONNECT and SOCKS5 CONNECT.
 *
 * Backpressure: each direction has one buffer of NETPROXY_BUF. A read is
 * written at once with uv_try_write; whatever the peer does not take is
 * queued with uv_write and that direction stops reading until it is out, so
 * a slow side never makes the proxy buffer more than one buffer per
 * direction. A buffer is released when its side has nothing to read (an idle
 * tunnel holds no buffer). EOF on one side is passed on as a shutdown of the
 * other; the tunnel closes when both are done, on an error, or after
 * the idle timeout with no byte either way. */
#include "server/netproxy/np_int.h"

#include <stdlib.h>
#include <string.h>

#define NP_SPLICE_AFTER (256u * 1024) /* bytes copied before a tunnel is spliced */
#define NP_RELAY_FIRST (16u * 1024)   /* a relay buffer's first size */

static void relay_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static np_dir *dir_of(np_conn *c, uv_stream_t *s) {
  return (uv_tcp_t *)s == c->client ? &c->dir[0] : &c->dir[1];
}

static void idle_expired(np_conn *c) { np_conn_close(c); }

static void maybe_done(np_conn *c) {
  if (c->dir[0].shut && c->dir[1].shut)
    np_conn_close(c);
}

static void shut_done(uv_shutdown_t *req, int status) {
  np_conn *c = req->data;
  (void)status;
  if (!c->dead)
    maybe_done(c);
}

static void pass_eof(np_conn *c, np_dir *d) {
  if (d->shut || d->writing)
    return;
  d->shut = true;
  d->sreq.data = c;
  if (uv_shutdown(&d->sreq, (uv_stream_t *)d->to, shut_done) < 0)
    maybe_done(c);
}

static void relay_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  np_conn *c = h->data;
  np_dir *d = dir_of(c, (uv_stream_t *)h);
  (void)suggested;
  /* Small first; a read that fills it grows it to NETPROXY_BUF (it is not
   * being written from: this side reads only when its write is done). */
  if (d->buf && d->full && d->cap < NETPROXY_BUF) {
    char *p = realloc(d->buf, NETPROXY_BUF);
    if (p) {
      d->buf = p;
      d->cap = NETPROXY_BUF;
    }
  }
  if (!d->buf)
    d->cap = (d->buf = malloc(NP_RELAY_FIRST)) ? NP_RELAY_FIRST : 0;
  *buf = uv_buf_init(d->buf, (unsigned)d->cap);
}

static void written(uv_write_t *req, int status) {
  np_conn *c = req->data;
  if (c->dead)
    return;
  np_dir *d = req == &c->dir[0].wreq ? &c->dir[0] : &c->dir[1];
  d->writing = false;
  if (status < 0) {
    np_conn_close(c);
    return;
  }
  if (d->eof)
    pass_eof(c, d);
  else
    uv_read_start((uv_stream_t *)d->from, relay_alloc, relay_read);
}

/* Send d->buf[0..len]: what the peer takes now, then the rest queued. */
static void forward(np_conn *c, np_dir *d, const char *p, size_t len) {
  uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
  int n = uv_try_write((uv_stream_t *)d->to, &b, 1);
  if (n == (int)len)
    return;
  if (n < 0 && n != UV_EAGAIN) {
    np_conn_close(c);
    return;
  }
  if (n > 0)
    b = uv_buf_init((char *)p + n, (unsigned)(len - (size_t)n));
  d->writing = true;
  d->wreq.data = c;
  uv_read_stop((uv_stream_t *)d->from);
  if (uv_write(&d->wreq, (uv_stream_t *)d->to, &b, 1, written) < 0)
    np_conn_close(c);
}

static void relay_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  np_conn *c = s->data;
  if (c->dead)
    return;
  np_dir *d = dir_of(c, s);
  (void)buf;
  if (nread == 0) {
    if (!d->writing) { /* nothing to read: an idle side holds no buffer */
      free(d->buf);
      d->buf = NULL;
    }
    return;
  }
  if (nread < 0) {
    if (nread != UV_EOF) {
      np_conn_close(c);
      return;
    }
    uv_read_stop(s);
    d->eof = true;
    pass_eof(c, d);
    return;
  }
  np_timer_set(c, np_idle_timeout(c), idle_expired);
  d->full = (size_t)nread == d->cap;
  forward(c, d, d->buf, (size_t)nread);
  c->relayed += (size_t)nread;
  /* A tunnel that carries bulk moves to splice once nothing is in flight
   * either way; short ones never pay for its pipes. */
  if (!c->dead && c->relayed >= NP_SPLICE_AFTER && !c->splice_tried && !c->dir[0].writing &&
      !c->dir[1].writing && !c->dir[0].eof && !c->dir[1].eof) {
    c->splice_tried = true;
    if (np_splice_start(c) == 0)
      for (int i = 0; i < 2; i++) {
        free(c->dir[i].buf);
        c->dir[i].buf = NULL;
      }
  }
}

static void copy_start(np_conn *c) {
  c->dir[0].from = c->client;
  c->dir[0].to = c->up;
  c->dir[1].from = c->up;
  c->dir[1].to = c->client;
  np_timer_set(c, np_idle_timeout(c), idle_expired);
  uv_read_stop((uv_stream_t *)c->client);
  size_t early = c->in_len - c->in_used;
  if (early) { /* sent by the client before our answer: goes first */
    np_dir *d = &c->dir[0];
    d->cap = NETPROXY_BUF > early ? NETPROXY_BUF : early;
    d->buf = malloc(d->cap);
    if (!d->buf) {
      np_conn_close(c);
      return;
    }
    memcpy(d->buf, c->in + c->in_used, early);
    c->in_len = c->in_used = 0;
    forward(c, d, d->buf, early);
    if (c->dead)
      return;
  }
  free(c->in);
  c->in = NULL;
  c->in_len = c->in_used = c->in_cap = 0;
  if (!c->dir[0].writing && !c->client_eof)
    uv_read_start((uv_stream_t *)c->client, relay_alloc, relay_read);
  else if (c->client_eof) {
    c->dir[0].eof = true;
    pass_eof(c, &c->dir[0]);
  }
  uv_read_start((uv_stream_t *)c->up, relay_alloc, relay_read);
}

void np_relay_start(np_conn *c, const char *answer, size_t len) {
  /* The answer goes out now if the socket takes it whole (it nearly always
   * does: a few bytes into an empty buffer); else the rest is queued, and
   * this tunnel is never spliced (the queued write is not the relay's to
   * track). Then the copying relay, which moves a busy tunnel to splice
   * (relay_read). */
  uv_buf_t b = uv_buf_init((char *)answer, (unsigned)len);
  int n = uv_try_write((uv_stream_t *)c->client, &b, 1);
  if (n < 0 && n != UV_EAGAIN) {
    np_conn_close(c);
    return;
  }
  if (n < 0)
    n = 0;
  if ((size_t)n < len) {
    c->splice_tried = true;
    if (np_write(c, c->client, answer + n, len - (size_t)n, false) < 0)
      return;
  }
  copy_start(c);
}
