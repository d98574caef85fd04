#include "tests/unit/exec/harness.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

extern char **environ;

harness H;

void tbuf_add(tbuf *b, const void *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t nc = b->cap ? b->cap * 2 : 4096;
    while (nc < b->len + n + 1)
      nc *= 2;
    b->data = realloc(b->data, nc);
    assert_non_null(b->data);
    b->cap = nc;
  }
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = 0;
}

void tbuf_free(tbuf *b) {
  free(b->data);
  *b = (tbuf){0};
}

static void on_spawned(void *ctx, exec_proc *proc, void *user, const exec_spawn_error *err) {
  (void)ctx;
  tproc *t = user;
  if (err) {
    t->failed = true;
    t->err = *err;
    return;
  }
  t->spawned = true;
  t->proc = proc;
  exec_proc_set_data(proc, t);
}

static void on_output(void *ctx, exec_proc *proc, uint64_t seq, exec_stream stream,
                      const uint8_t *data, size_t len, bool cap_reached) {
  (void)ctx;
  tproc *t = exec_proc_get_data(proc);
  assert_non_null(t);
  if (seq != t->last_seq + 1 || t->exited)
    t->seq_error = true;
  t->last_seq = seq;
  tbuf_add(&t->out[stream], data, len);
  t->chunks[stream]++;
  if (cap_reached)
    t->cap_flags[stream]++;
  t->cap_last[stream] = cap_reached;
  if (t->hook)
    t->hook(t, stream, data, len);
}

static void on_exit_cb(void *ctx, exec_proc *proc, uint64_t seq, const exec_exit_info *info) {
  (void)ctx;
  tproc *t = exec_proc_get_data(proc);
  assert_non_null(t);
  if (seq != t->last_seq + 1 || t->exited)
    t->seq_error = true;
  t->exited = true;
  t->exit_seq = seq;
  t->info = *info;
}

static void tick(uv_timer_t *t) { (void)t; }

void h_init(size_t retain_bytes, uint64_t retain_ms) {
  memset(&H, 0, sizeof H);
  assert_int_equal(uv_loop_init(&H.loop), 0);
  exec_engine_opts o = {.retain_bytes = retain_bytes, .retain_exited_ms = retain_ms};
  exec_callbacks cb = {.on_spawned = on_spawned, .on_output = on_output, .on_exit = on_exit_cb};
  assert_int_equal(exec_engine_new(&H.loop, &o, &cb, &H.e), 0);
  uv_timer_init(&H.loop, &H.tick);
  uv_timer_start(&H.tick, tick, 20, 20);
}

static void shut_done(void *arg) { *(bool *)arg = true; }

static bool is_true(void *arg) { return *(bool *)arg; }

void h_fini(void) {
  exec_engine_shutdown(H.e, 500, shut_done, &H.shutdown_done);
  h_run_until(is_true, &H.shutdown_done, 10000);
  exec_engine_free(H.e);
  uv_close((uv_handle_t *)&H.tick, NULL);
  uv_run(&H.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&H.loop), 0);
  for (tproc *t = H.procs, *n; t; t = n) {
    n = t->next;
    for (int i = 0; i < 3; i++)
      tbuf_free(&t->out[i]);
    free(t);
  }
  H.procs = NULL;
}

exec_spawn_opts h_opts(const char *id, char *const *argv) {
  return (exec_spawn_opts){
      .process_id = id,
      .argv = argv,
      .envp = environ,
      .rows = 24,
      .cols = 80,
      .output_cap = -1,
      .timeout_ms = -1,
  };
}

tproc *h_spawn(const exec_spawn_opts *o) {
  tproc *t = calloc(1, sizeof *t);
  assert_non_null(t);
  snprintf(t->id, sizeof t->id, "%s", o->process_id);
  t->next = H.procs;
  H.procs = t;
  exec_spawn_opts c = *o;
  c.user = t;
  int rc = exec_spawn(H.e, &c);
  if (rc != 0)
    fail_msg("exec_spawn(%s) = %d (%s)", o->process_id, rc, strerror(-rc));
  return t;
}

tproc *h_spawn_argv(const char *id, char *const *argv, bool tty) {
  exec_spawn_opts o = h_opts(id, argv);
  o.tty = tty;
  return h_spawn(&o);
}

void h_run_until(bool (*pred)(void *), void *arg, uint64_t timeout_ms) {
  uint64_t deadline = uv_hrtime() / 1000000u + timeout_ms;
  while (!pred(arg)) {
    if (uv_hrtime() / 1000000u > deadline)
      fail_msg("timed out after %llu ms", (unsigned long long)timeout_ms);
    uv_run(&H.loop, UV_RUN_ONCE);
  }
}

static bool after(void *arg) { return uv_hrtime() >= *(uint64_t *)arg; }

void h_run_for(uint64_t ms) {
  uint64_t until = uv_hrtime() + ms * 1000000u;
  h_run_until(after, &until, ms + 5000);
}

bool h_is_spawned(void *t) { return ((tproc *)t)->spawned || ((tproc *)t)->failed; }
bool h_is_exited(void *t) { return ((tproc *)t)->exited; }

void h_wait_spawned(tproc *t) {
  h_run_until(h_is_spawned, t, 10000);
  if (t->failed)
    fail_msg("%s failed: %s: %s", t->id, t->err.syscall, strerror(t->err.err));
}

void h_wait_exit(tproc *t) { h_run_until(h_is_exited, t, 20000); }

bool h_has(const tbuf *b, const char *needle) {
  return b->data && memmem(b->data, b->len, needle, strlen(needle)) != NULL;
}

typedef struct {
  tproc *t;
  exec_stream s;
  const char *needle;
} wait_out;

static bool has_out(void *arg) {
  wait_out *w = arg;
  return h_has(&w->t->out[w->s], w->needle);
}

void h_wait_output(tproc *t, exec_stream s, const char *needle) {
  wait_out w = {t, s, needle};
  h_run_until(has_out, &w, 10000);
}

typedef struct {
  bool done;
  ssize_t result;
} wdone;

static void write_done(void *arg, ssize_t result) {
  wdone *w = arg;
  w->done = true;
  w->result = result;
}

static bool w_done(void *arg) { return ((wdone *)arg)->done; }

ssize_t h_write(tproc *t, const char *data, size_t len, bool close_stdin) {
  wdone w = {0};
  int rc = exec_proc_write(t->proc, (const uint8_t *)data, len, close_stdin, write_done, &w);
  if (rc < 0)
    return rc;
  assert_false(w.done); /* never from inside exec_proc_write */
  h_run_until(w_done, &w, 10000);
  return w.result;
}

bool pid_alive(int pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return false;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *q = strrchr(buf, ')');
  return q && q[1] == ' ' && q[2] != 'Z' && q[2] != 'X';
}
