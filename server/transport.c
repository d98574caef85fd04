#include "server/transport.h"

#include "server/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK 65536
#define TRANSPORT_PIPE_BYTES (1024 * 1024) /* F_SETPIPE_SZ asked for a stdout pipe */

struct transport_buf {
  uv_write_t req;
  transport *t;
  size_t len;
  size_t cap; /* bytes of data[] */
  char data[];
};

/* One finished output buffer is kept for the next line: a stream of output
 * notifications (each up to ~350 KiB of base64) would otherwise get fresh
 * pages from the kernel for every line (malloc maps or grows the heap for a
 * block that size and gives it back on free: ~90 page faults a line).
 * Buffers above SPARE_MAX_BYTES are not kept. */
#define SPARE_MAX_BYTES (1024 * 1024)
static transport_buf *spare;

static void buf_release(transport_buf *b) {
  if (b->cap <= SPARE_MAX_BYTES && (!spare || spare->cap < b->cap)) {
    free(spare);
    spare = b;
  } else {
    free(b);
  }
}

typedef union stream_handle {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_pipe_t pipe;
  uv_tty_t tty;
} stream_handle;

struct transport {
  uv_loop_t *loop;
  transport_opts o;
  framing fr;
  /* input */
  bool in_is_stream;
  stream_handle in;
  uv_fs_t in_req;   /* regular files and character devices: uv_fs_read */
  bool in_reading;  /* a read is started (stream) or outstanding (file) */
  bool in_paused;   /* stopped because the output queue is full */
  bool in_eof;
  bool eof_pending; /* stdin ended while lines were parked: report after them */
  int64_t in_offset;
  char *in_buf;
  /* output */
  bool out_is_stream;
  stream_handle out;
  size_t queued;
  bool pressure;
  bool out_failed;
  void (*flush_done)(void *);
  void *flush_arg;
  /* close */
  bool closing;
  int open_handles; /* libuv handles plus an outstanding file read */
  void (*on_closed)(void *);
  void *closed_arg;
};

static void on_line(void *arg, const char *line, size_t len) {
  transport *t = arg;
  t->o.on_line(t->o.arg, line, len);
}

static void on_oversize(void *arg, uint64_t bytes) {
  transport *t = arg;
  t->o.on_oversize(t->o.arg, (unsigned long long)bytes);
}

static void input_ended(transport *t) {
  if (t->in_eof)
    return;
  t->in_eof = true;
  if (t->in_paused || framing_parked(&t->fr)) {
    /* Requests read before the end wait for the queue to drain; the end is
     * reported after them (check_marks). */
    t->eof_pending = true;
    return;
  }
  framing_finish(&t->fr);
  t->o.on_eof(t->o.arg);
}

static void feed(transport *t, const char *data, size_t len) {
  if (framing_feed(&t->fr, data, len) < 0) {
    LOGE("transport", "out of memory buffering a line from stdin");
    input_ended(t);
  }
}

/* ---- stream input ---- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  transport *t = h->data;
  (void)suggested;
  *buf = uv_buf_init(t->in_buf, READ_CHUNK);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  transport *t = s->data;
  if (n > 0) {
    feed(t, buf->base, (size_t)n);
  } else if (n < 0) {
    if (n != UV_EOF)
      LOGW("transport", "reading stdin failed: %s", uv_strerror((int)n));
    uv_read_stop(s);
    t->in_reading = false;
    input_ended(t);
  }
}

/* ---- file input (regular files, /dev/null): uv_fs_read on the pool ---- */

static void file_read_cb(uv_fs_t *req);

static void file_read_next(transport *t) {
  if (t->in_eof || t->in_reading || t->in_paused)
    return;
  uv_buf_t b = uv_buf_init(t->in_buf, READ_CHUNK);
  t->in_reading = true;
  int rc = uv_fs_read(t->loop, &t->in_req, t->o.in_fd, &b, 1, -1, file_read_cb);
  if (rc < 0) {
    t->in_reading = false;
    input_ended(t);
  }
}

static void free_transport(transport *t);

static void file_read_cb(uv_fs_t *req) {
  transport *t = req->data;
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  t->in_reading = false;
  if (t->closing) {
    if (--t->open_handles == 0)
      free_transport(t);
    return;
  }
  if (n > 0) {
    feed(t, t->in_buf, (size_t)n);
    file_read_next(t);
  } else {
    if (n < 0)
      LOGW("transport", "reading stdin failed: %s", uv_strerror((int)n));
    input_ended(t);
  }
}

static void input_start(transport *t) {
  if (t->in_eof || t->in_paused)
    return;
  if (t->in_is_stream) {
    if (!t->in_reading && uv_read_start(&t->in.stream, alloc_cb, read_cb) == 0)
      t->in_reading = true;
  } else {
    file_read_next(t);
  }
}

static void input_pause(transport *t) {
  t->in_paused = true;
  /* Also the lines already read: the rest of this read waits, parked. */
  framing_pause(&t->fr);
  if (t->in_is_stream && t->in_reading) {
    uv_read_stop(&t->in.stream);
    t->in_reading = false;
  }
}

void transport_stop_input(transport *t) {
  if (t->in_is_stream && t->in_reading)
    uv_read_stop(&t->in.stream);
  t->in_reading = false;
  t->in_eof = true;
}

/* ---- output ---- */

transport_buf *transport_out_alloc(size_t cap, char **data) {
  transport_buf *b;
  if (spare && spare->cap >= cap) {
    b = spare;
    spare = NULL;
  } else {
    b = malloc(sizeof *b + cap);
    if (!b)
      return NULL;
    b->cap = cap;
  }
  *data = b->data;
  return b;
}

static void check_marks(transport *t) {
  if (!t->pressure && t->queued > t->o.high_water) {
    t->pressure = true;
    t->o.on_pressure(t->o.arg, 1);
  }
  if (t->queued > t->o.input_stop && !t->in_paused)
    input_pause(t);
  if (t->queued <= t->o.low_water) {
    if (t->pressure) {
      t->pressure = false;
      t->o.on_pressure(t->o.arg, 0);
    }
    if (t->in_paused) {
      t->in_paused = false;
      if (framing_resume(&t->fr) < 0) {
        LOGE("transport", "out of memory buffering lines from stdin");
        transport_stop_input(t);
        t->eof_pending = false;
        t->o.on_eof(t->o.arg);
      } else if (!t->in_paused) {
        /* Everything parked is delivered (nothing paused it again). */
        if (t->eof_pending) {
          t->eof_pending = false;
          framing_finish(&t->fr);
          t->o.on_eof(t->o.arg);
        } else {
          input_start(t);
        }
      }
    }
  }
  if (t->queued == 0 && t->flush_done) {
    void (*done)(void *) = t->flush_done;
    t->flush_done = NULL;
    done(t->flush_arg);
  }
}

static void out_failed(transport *t, int err) {
  if (t->out_failed)
    return;
  t->out_failed = true;
  LOGW("transport", "writing stdout failed: %s", uv_strerror(err));
  t->o.on_out_error(t->o.arg, err);
}

static void write_cb(uv_write_t *req, int status) {
  transport_buf *b = (transport_buf *)req;
  transport *t = b->t;
  t->queued -= b->len;
  buf_release(b);
  if (status < 0 && status != UV_ECANCELED)
    out_failed(t, status);
  check_marks(t);
}

void transport_out_send(transport *t, transport_buf *b, size_t len) {
  if (t->out_failed) {
    buf_release(b);
    return;
  }
  if (!t->out_is_stream) {
    /* Files and character devices: always writable, write synchronously. */
    size_t off = 0;
    while (off < len) {
      ssize_t n = write(t->o.out_fd, b->data + off, len - off);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        out_failed(t, n < 0 ? -errno : UV_EIO);
        break;
      }
      off += (size_t)n;
    }
    buf_release(b);
    return;
  }
  size_t off = 0;
  if (t->queued == 0) {
    uv_buf_t ub = uv_buf_init(b->data, (unsigned)len);
    int n = uv_try_write(&t->out.stream, &ub, 1);
    if (n == (int)len) {
      buf_release(b);
      return;
    }
    if (n > 0)
      off = (size_t)n;
    else if (n != UV_EAGAIN && n != UV_ENOSYS) {
      buf_release(b);
      out_failed(t, n);
      return;
    }
  }
  if (off)
    memmove(b->data, b->data + off, len - off);
  b->t = t;
  b->len = len - off;
  uv_buf_t ub = uv_buf_init(b->data, (unsigned)b->len);
  int rc = uv_write(&b->req, &t->out.stream, &ub, 1, write_cb);
  if (rc < 0) {
    buf_release(b);
    out_failed(t, rc);
    return;
  }
  t->queued += b->len;
  check_marks(t);
}

void transport_out_write(transport *t, const char *data, size_t len) {
  char *p;
  transport_buf *b = transport_out_alloc(len, &p);
  if (!b) {
    LOGE("transport", "out of memory queueing %zu bytes for stdout", len);
    return;
  }
  memcpy(p, data, len);
  transport_out_send(t, b, len);
}

size_t transport_queued_bytes(const transport *t) { return t->queued; }

void transport_flush(transport *t, void (*done)(void *), void *arg) {
  if (t->queued == 0 || t->out_failed) {
    done(arg);
    return;
  }
  t->flush_done = done;
  t->flush_arg = arg;
}

/* ---- open/close ---- */

static int open_stream(uv_loop_t *loop, int fd, stream_handle *h, bool *is_stream, bool input) {
  uv_handle_type kind = uv_guess_handle(fd);
  int rc;
  switch (kind) {
  case UV_NAMED_PIPE:
  case UV_TCP:
    rc = uv_pipe_init(loop, &h->pipe, 0);
    if (rc == 0)
      rc = uv_pipe_open(&h->pipe, fd);
    break;
  case UV_TTY: rc = uv_tty_init(loop, &h->tty, fd, input ? 1 : 0); break;
  default: *is_stream = false; return 0;
  }
  if (rc < 0) {
    /* Fall back to plain fd I/O (e.g. an epoll-unfriendly fd). */
    if (kind != UV_TTY && h->handle.type)
      uv_close(&h->handle, NULL);
    *is_stream = false;
    return 0;
  }
  *is_stream = true;
  return 0;
}

int transport_open(uv_loop_t *loop, const transport_opts *opts, transport **out) {
  transport *t = calloc(1, sizeof *t);
  if (!t)
    return -ENOMEM;
  t->in_buf = malloc(READ_CHUNK);
  if (!t->in_buf) {
    free(t);
    return -ENOMEM;
  }
  t->loop = loop;
  t->o = *opts;
  framing_init(&t->fr, opts->max_line_bytes, on_line, on_oversize, t);
  open_stream(loop, opts->in_fd, &t->in, &t->in_is_stream, true);
  open_stream(loop, opts->out_fd, &t->out, &t->out_is_stream, false);
  /* A pipe to the client as large as an output notification (a chunk of
   * 256 KiB is ~350 KiB of base64): one write per line instead of several
   * wakeups of both sides. Best effort: pipe-max-size may be lower, and a
   * socket or file is left as it is. */
  struct stat ost;
  if (t->out_is_stream && fstat(opts->out_fd, &ost) == 0 && S_ISFIFO(ost.st_mode))
    fcntl(opts->out_fd, F_SETPIPE_SZ, TRANSPORT_PIPE_BYTES);
  if (t->in_is_stream) {
    t->in.handle.data = t;
    t->open_handles++;
  }
  if (t->out_is_stream) {
    t->out.handle.data = t;
    t->open_handles++;
  }
  t->in_req.data = t;
  *out = t;
  input_start(t);
  return 0;
}

static void free_transport(transport *t) {
  void (*cb)(void *) = t->on_closed;
  void *arg = t->closed_arg;
  framing_free(&t->fr);
  free(t->in_buf);
  free(t);
  free(spare);
  spare = NULL;
  if (cb)
    cb(arg);
}

static void handle_closed(uv_handle_t *h) {
  transport *t = h->data;
  if (--t->open_handles == 0)
    free_transport(t);
}

void transport_close(transport *t, void (*on_closed)(void *), void *arg) {
  t->on_closed = on_closed;
  t->closed_arg = arg;
  t->closing = true;
  if (t->in_reading && !t->in_is_stream) {
    /* The read completes (or is cancelled) later; free after its callback. */
    t->open_handles++;
    uv_cancel((uv_req_t *)&t->in_req);
  }
  if (t->open_handles == 0) {
    free_transport(t);
    return;
  }
  if (t->in_is_stream)
    uv_close(&t->in.handle, handle_closed);
  if (t->out_is_stream)
    uv_close(&t->out.handle, handle_closed);
}
