/* server/exec unit tests: real processes on a uv loop.
 * Usage: test_exec [name-filter]  (one ctest per group, see CMakeLists.txt) */
#include "server/exec/exec_int.h"
#include "tests/unit/exec/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define ARGV(...) ((char *const[]){__VA_ARGS__, NULL})

static void set_true(void *arg) { *(bool *)arg = true; }
static bool is_set(void *arg) { return *(bool *)arg; }

static int setup(void **state) {
  (void)state;
  h_init(0, 0);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  h_fini();
  return 0;
}

static void check_seq(tproc *t) {
  assert_false(t->seq_error);
  assert_true(t->exited);
  assert_int_equal(t->exit_seq, t->last_seq + 1);
  assert_int_equal(exec_proc_next_seq(t->proc), t->exit_seq + 1);
}

/* ---- basics ---- */

static void test_pipe_echo(void **state) {
  (void)state;
  tproc *t = h_spawn_argv("p1", ARGV("sh", "-c", "printf out; printf err >&2; printf more"), false);
  h_wait_spawned(t);
  assert_true(exec_proc_pid(t->proc) > 0);
  assert_true(exec_proc_running(t->proc));
  assert_false(exec_proc_tty(t->proc));
  assert_string_equal(exec_proc_argv(t->proc)[0], "sh");
  assert_ptr_equal(exec_engine_find(H.e, "p1"), t->proc);
  h_wait_exit(t);
  check_seq(t);
  assert_string_equal((char *)t->out[EXEC_STREAM_STDOUT].data, "outmore");
  assert_string_equal((char *)t->out[EXEC_STREAM_STDERR].data, "err");
  assert_int_equal(t->out[EXEC_STREAM_PTY].len, 0);
  assert_int_equal(t->info.exit_code, 0);
  assert_int_equal(t->info.signal, 0);
  assert_false(t->info.timed_out);
  assert_false(exec_proc_running(t->proc));
  assert_non_null(exec_proc_exit_info(t->proc));
  /* stdin was /dev/null: writes are refused */
  assert_int_equal(exec_proc_write(t->proc, (const uint8_t *)"x", 1, false, NULL, NULL), -EPIPE);
}

static void test_stdin_devnull(void **state) {
  (void)state;
  tproc *t = h_spawn_argv("c", ARGV("sh", "-c", "cat; echo rc=$?"), false);
  h_wait_exit(t);
  assert_string_equal((char *)t->out[EXEC_STREAM_STDOUT].data, "rc=0\n");
  assert_int_equal(exec_proc_write(t->proc, (const uint8_t *)"x", 1, false, NULL, NULL), -EPIPE);
}

static void test_pty_echo(void **state) {
  (void)state;
  tproc *t = h_spawn_argv("pty", ARGV("cat"), true);
  h_wait_spawned(t);
  assert_true(exec_proc_tty(t->proc));
  assert_int_equal(h_write(t, "hello\n", 6, false), 6);
  /* the terminal echoes the line, then cat prints it */
  h_wait_output(t, EXEC_STREAM_PTY, "hello\r\nhello\r\n");
  assert_int_equal(h_write(t, "", 0, true), 0); /* ^D */
  h_wait_exit(t);
  check_seq(t);
  assert_int_equal(t->info.exit_code, 0);
  assert_int_equal(t->out[EXEC_STREAM_STDOUT].len, 0);
  assert_int_equal(h_write(t, "x", 1, false), -EPIPE);
}

static void test_pty_env_and_ctty(void **state) {
  (void)state;
  char *env[] = {"PATH=/usr/bin:/bin", NULL};
  exec_spawn_opts o = h_opts("t", ARGV("sh", "-c", "echo TERM=$TERM; tty"));
  o.envp = env;
  o.tty = true;
  tproc *t = h_spawn(&o);
  h_wait_exit(t);
  assert_true(h_has(&t->out[EXEC_STREAM_PTY], "TERM=xterm-256color"));
  assert_true(h_has(&t->out[EXEC_STREAM_PTY], "/dev/pts/"));
  assert_int_equal(t->info.exit_code, 0);
}

static void test_pty_resize(void **state) {
  (void)state;
  exec_spawn_opts o = h_opts("r", ARGV("sh", "-c", "trap 'echo winch' WINCH; stty size; read x; stty size"));
  o.tty = true;
  o.rows = 24;
  o.cols = 80;
  tproc *t = h_spawn(&o);
  h_wait_spawned(t);
  h_wait_output(t, EXEC_STREAM_PTY, "24 80");
  assert_int_equal(exec_proc_resize(t->proc, 50, 132), 0);
  assert_int_equal(h_write(t, "\n", 1, false), 1);
  h_wait_output(t, EXEC_STREAM_PTY, "50 132");
  h_wait_exit(t);
  assert_true(h_has(&t->out[EXEC_STREAM_PTY], "winch")); /* SIGWINCH reached it */
  check_seq(t);
  tproc *p = h_spawn_argv("np", ARGV("true"), false);
  h_wait_spawned(p);
  assert_int_equal(exec_proc_resize(p->proc, 10, 10), -ENOTTY);
  h_wait_exit(p);
}

static void test_stdin_stream(void **state) {
  (void)state;
  exec_spawn_opts o = h_opts("in", ARGV("sh", "-c", "cat; echo; echo end >&2"));
  o.stream_stdin = true;
  tproc *t = h_spawn(&o);
  h_wait_spawned(t);
  assert_int_equal(h_write(t, "abc", 3, false), 3);
  /* a large write: partial writes and POLLOUT */
  size_t big = 1 << 20;
  char *b = malloc(big);
  for (size_t i = 0; i < big; i++)
    b[i] = (char)('a' + i % 26);
  assert_int_equal(h_write(t, b, big, false), (ssize_t)big);
  assert_int_equal(h_write(t, "def", 3, true), 3);
  assert_int_equal(exec_proc_write(t->proc, (const uint8_t *)"x", 1, false, NULL, NULL), -EPIPE);
  h_wait_exit(t);
  check_seq(t);
  tbuf *out = &t->out[EXEC_STREAM_STDOUT];
  assert_int_equal(out->len, 3 + big + 3 + 1);
  assert_memory_equal(out->data, "abc", 3);
  assert_memory_equal(out->data + 3, b, big);
  assert_memory_equal(out->data + 3 + big, "def\n", 4);
  assert_string_equal((char *)t->out[EXEC_STREAM_STDERR].data, "end\n");
  free(b);
}

static void test_stdin_reader_gone(void **state) {
  (void)state;
  exec_spawn_opts o = h_opts("g", ARGV("sh", "-c", "exec 0<&-; sleep 0.3"));
  o.stream_stdin = true;
  tproc *t = h_spawn(&o);
  h_wait_spawned(t);
  h_run_for(100);
  ssize_t r = h_write(t, "data", 4, false);
  assert_int_equal(r, -EPIPE); /* and the server did not die of SIGPIPE */
  h_wait_exit(t);
}

/* ---- exits ---- */

static void test_exit_codes(void **state) {
  (void)state;
  tproc *a = h_spawn_argv("a", ARGV("sh", "-c", "exit 3"), false);
  tproc *b = h_spawn_argv("b", ARGV("sh", "-c", "kill -TERM $$"), false);
  tproc *c = h_spawn_argv("c", ARGV("sh", "-c", "kill -KILL $$"), true);
  tproc *d = h_spawn_argv("d", ARGV("false"), false);
  h_wait_exit(a);
  h_wait_exit(b);
  h_wait_exit(c);
  h_wait_exit(d);
  assert_int_equal(a->info.exit_code, 3);
  assert_int_equal(a->info.signal, 0);
  assert_int_equal(b->info.signal, SIGTERM);
  assert_int_equal(c->info.signal, SIGKILL);
  assert_int_equal(d->info.exit_code, 1);
  check_seq(a);
  check_seq(b);
  assert_int_equal(b->exit_seq, 1);
}

static void test_timeout(void **state) {
  (void)state;
  exec_spawn_opts o = h_opts("to", ARGV("sh", "-c", "trap '' TERM; echo started; sleep 10"));
  o.timeout_ms = 200;
  tproc *t = h_spawn(&o);
  h_wait_exit(t);
  assert_true(t->info.timed_out);
  assert_int_equal(t->info.signal, SIGKILL);
  assert_true(t->info.duration_ms >= 190);
  assert_true(t->info.duration_ms < 3000);
  assert_string_equal((char *)t->out[EXEC_STREAM_STDOUT].data, "started\n");
  check_seq(t);
  /* and not timed out when it finishes first */
  o = h_opts("fast", ARGV("true"));
  o.timeout_ms = 5000;
  tproc *f = h_spawn(&o);
  h_wait_exit(f);
  assert_false(f->info.timed_out);
  assert_int_equal(f->info.exit_code, 0);
}

static void test_cap(void **state) {
  (void)state;
  exec_spawn_opts o = h_opts("cap", ARGV("sh", "-c", "head -c 300000 /dev/zero; printf e >&2; exit 7"));
  o.output_cap = 100000 + 17; /* falls inside a chunk */
  tproc *t = h_spawn(&o);
  h_wait_exit(t);
  check_seq(t);
  assert_int_equal(t->out[EXEC_STREAM_STDOUT].len, 100017);
  assert_int_equal(t->cap_flags[EXEC_STREAM_STDOUT], 1);
  assert_true(t->cap_last[EXEC_STREAM_STDOUT]);
  assert_string_equal((char *)t->out[EXEC_STREAM_STDERR].data, "e");
  assert_int_equal(t->cap_flags[EXEC_STREAM_STDERR], 0);
  assert_int_equal(t->info.exit_code, 7); /* read and dropped: it ran to the end */

  o = h_opts("cap0", ARGV("sh", "-c", "echo hello"));
  o.output_cap = 0;
  tproc *z = h_spawn(&o);
  h_wait_exit(z);
  assert_int_equal(z->out[EXEC_STREAM_STDOUT].len, 0);
  assert_int_equal(z->cap_flags[EXEC_STREAM_STDOUT], 1);

  o = h_opts("capx", ARGV("printf", "12345"));
  o.output_cap = 5; /* exactly */
  tproc *x = h_spawn(&o);
  h_wait_exit(x);
  assert_string_equal((char *)x->out[EXEC_STREAM_STDOUT].data, "12345");
  assert_true(x->cap_last[EXEC_STREAM_STDOUT]);
}

static void test_terminate(void **state) {
  (void)state;
  tproc *t = h_spawn_argv(
      "ign", ARGV("sh", "-c", "trap '' TERM INT; echo ready; while :; do sleep 0.05; done"), false);
  h_wait_output(t, EXEC_STREAM_STDOUT, "ready");
  uint64_t t0 = uv_hrtime();
  assert_int_equal(exec_proc_terminate(t->proc, SIGTERM, 300), 1);
  h_wait_exit(t);
  uint64_t ms = (uv_hrtime() - t0) / 1000000u;
  assert_int_equal(t->info.signal, SIGKILL);
  assert_true(ms >= 250);
  assert_int_equal(exec_proc_terminate(t->proc, SIGTERM, 300), 0);

  tproc *s = h_spawn_argv("sl", ARGV("sleep", "10"), true);
  h_wait_spawned(s);
  assert_int_equal(exec_proc_terminate(s->proc, SIGINT, 5000), 1);
  h_wait_exit(s);
  assert_int_equal(s->info.signal, SIGINT);

  tproc *k = h_spawn_argv("k", ARGV("sleep", "10"), false);
  h_wait_spawned(k);
  assert_int_equal(exec_proc_terminate(k->proc, SIGKILL, 0), 1);
  h_wait_exit(k);
  assert_int_equal(k->info.signal, SIGKILL);

  /* a handler that reports the signal it got */
  tproc *h = h_spawn_argv("h", ARGV("sh", "-c", "trap 'echo got-usr1; exit 5' USR1; echo ready; while :; do sleep 0.05; done"), false);
  h_wait_output(h, EXEC_STREAM_STDOUT, "ready");
  assert_int_equal(exec_proc_terminate(h->proc, SIGUSR1, 5000), 1);
  h_wait_exit(h);
  assert_true(h_has(&h->out[EXEC_STREAM_STDOUT], "got-usr1"));
  assert_int_equal(h->info.exit_code, 5);
}

/* ---- spawn failures ---- */

static void test_exec_failures(void **state) {
  (void)state;
  tproc *a = h_spawn_argv("a", ARGV("/nonexistent/prog"), false);
  tproc *b = h_spawn_argv("b", ARGV("no-such-program-warden-xyz"), true);
  exec_spawn_opts o = h_opts("c", ARGV("true"));
  o.cwd = "/nonexistent-dir-warden";
  tproc *c = h_spawn(&o);
  tproc *d = h_spawn_argv("d", ARGV("/etc/passwd"), false);
  tproc *e = h_spawn_argv("e", ARGV("/tmp"), false);
  h_run_until(h_is_spawned, a, 10000);
  h_run_until(h_is_spawned, b, 10000);
  h_run_until(h_is_spawned, c, 10000);
  h_run_until(h_is_spawned, d, 10000);
  h_run_until(h_is_spawned, e, 10000);
  assert_true(a->failed);
  assert_int_equal(a->err.err, ENOENT);
  assert_string_equal(a->err.syscall, "execve");
  assert_false(a->err.sandbox);
  assert_true(b->failed);
  assert_int_equal(b->err.err, ENOENT);
  assert_string_equal(b->err.syscall, "execve");
  assert_true(c->failed);
  assert_int_equal(c->err.err, ENOENT);
  assert_string_equal(c->err.syscall, "chdir");
  assert_true(d->failed);
  assert_int_equal(d->err.err, EACCES);
  assert_true(e->failed);
  assert_int_equal(e->err.err, EACCES);
  assert_null(exec_engine_find(H.e, "a"));
  /* the id is free again */
  tproc *a2 = h_spawn_argv("a", ARGV("true"), false);
  h_wait_exit(a2);
  /* synchronous errors */
  exec_spawn_opts dup = h_opts("dup", ARGV("sleep", "5"));
  tproc *s = h_spawn(&dup);
  dup.user = NULL;
  assert_int_equal(exec_spawn(H.e, &dup), -EEXIST);
  h_wait_spawned(s);
  exec_spawn_opts bad = h_opts("bad", (char *const[]){NULL});
  assert_int_equal(exec_spawn(H.e, &bad), -EINVAL);
  exec_proc_terminate(s->proc, SIGKILL, 0);
  h_wait_exit(s);
}

static void test_arg0_and_path(void **state) {
  (void)state;
  char *env[] = {"PATH=/nonexistent:/usr/bin:/bin", "FOO=bar", NULL};
  exec_spawn_opts o = h_opts("a0", ARGV("sh", "-c", "tr '\\0' ' ' </proc/$$/cmdline; echo $FOO"));
  o.arg0 = "custom-zero";
  o.envp = env;
  tproc *t = h_spawn(&o);
  h_wait_exit(t);
  assert_string_equal((char *)t->out[EXEC_STREAM_STDOUT].data,
                      "custom-zero -c tr '\\0' ' ' </proc/$$/cmdline; echo $FOO bar\n");
  /* a script without #! runs through /bin/sh, like execvpe */
  char path[] = "/tmp/warden-exec-test-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *script = "echo script-ran \"$1\"\n";
  assert_int_equal(write(fd, script, strlen(script)), (ssize_t)strlen(script));
  fchmod(fd, 0755);
  close(fd);
  tproc *s = h_spawn_argv("sc", ARGV(path, "arg1"), false);
  h_wait_exit(s);
  unlink(path);
  assert_string_equal((char *)s->out[EXEC_STREAM_STDOUT].data, "script-ran arg1\n");
}

/* ---- output ordering and completeness ---- */

static void test_output_after_exit(void **state) {
  (void)state;
  for (int tty = 0; tty < 2; tty++) {
    exec_stream s = tty ? EXEC_STREAM_PTY : EXEC_STREAM_STDOUT;
    tproc *a = h_spawn_argv(tty ? "a1" : "a0", ARGV("sh", "-c", "sleep 0.1; printf done"), tty);
    /* a background writer that wrote before the shell exited, then was killed */
    tproc *b = h_spawn_argv(tty ? "b1" : "b0",
                            ARGV("sh", "-c", "(printf bg-data; sleep 5) & sleep 0.2; printf fg"), tty);
    /* lots of output still buffered when the command exits */
    tproc *c = h_spawn_argv(tty ? "c1" : "c0", ARGV("head", "-c", "200000", "/dev/zero"), tty);
    h_wait_exit(a);
    h_wait_exit(b);
    h_wait_exit(c);
    check_seq(a);
    check_seq(b);
    check_seq(c);
    assert_string_equal((char *)a->out[s].data, "done");
    assert_true(h_has(&b->out[s], "bg-data"));
    assert_true(h_has(&b->out[s], "fg"));
    if (!tty)
      assert_int_equal(c->out[s].len, 200000);
    else
      assert_true(c->out[s].len >= 200000); /* no ONLCR on zeros, but be lenient */
  }
}

static void test_concurrent_200(void **state) {
  (void)state;
  enum { N = 200 };
  tproc *t[N];
  char ids[N][16], lo[N][16], hi[N][16];
  for (int i = 0; i < N; i++) {
    snprintf(ids[i], sizeof ids[i], "c%d", i);
    snprintf(lo[i], sizeof lo[i], "%d", i * 1000);
    snprintf(hi[i], sizeof hi[i], "%d", i * 1000 + 5000 + i * 37);
    char *argv[] = {"seq", lo[i], hi[i], NULL};
    t[i] = h_spawn_argv(ids[i], argv, i % 4 == 3);
  }
  for (int i = 0; i < N; i++)
    h_wait_exit(t[i]);
  for (int i = 0; i < N; i++) {
    check_seq(t[i]);
    assert_int_equal(t[i]->info.exit_code, 0);
    bool tty = i % 4 == 3;
    tbuf exp = {0};
    for (int v = i * 1000; v <= i * 1000 + 5000 + i * 37; v++) {
      char line[32];
      int n = snprintf(line, sizeof line, tty ? "%d\r\n" : "%d\n", v);
      tbuf_add(&exp, line, (size_t)n);
    }
    tbuf *got = &t[i]->out[tty ? EXEC_STREAM_PTY : EXEC_STREAM_STDOUT];
    assert_int_equal(got->len, exp.len);
    assert_memory_equal(got->data, exp.data, exp.len);
    tbuf_free(&exp);
  }
}

/* ---- no orphans ---- */

static int read_pid(const tbuf *b) {
  return b->data ? atoi((const char *)b->data) : 0;
}

static void test_no_orphans_after_exit(void **state) {
  (void)state;
  for (int tty = 0; tty < 2; tty++) {
    exec_stream s = tty ? EXEC_STREAM_PTY : EXEC_STREAM_STDOUT;
    /* a background grandchild in the group, and one in its own session */
    tproc *a = h_spawn_argv(tty ? "a1" : "a0", ARGV("sh", "-c", "sleep 100 & echo $!"), tty);
    tproc *b = h_spawn_argv(tty ? "b1" : "b0",
                            ARGV("sh", "-c", "setsid sh -c 'sleep 100' </dev/null >/dev/null 2>&1 & echo $!"),
                            tty);
    h_wait_exit(a);
    h_wait_exit(b);
    int ga = read_pid(&a->out[s]), gb = read_pid(&b->out[s]);
    assert_true(ga > 0);
    assert_true(gb > 0);
    assert_false(pid_alive(ga));
    assert_false(pid_alive(gb));
    assert_false(pid_alive(exec_proc_pid(a->proc)));
  }
}

static void forked_server(int report_fd, bool tty) {
  /* A fresh engine in a child process that plays the server. */
  h_init(0, 0);
  tproc *t = h_spawn_argv("srv", ARGV("sh", "-c", "sleep 100 & echo $!; setsid sleep 100 & echo $!; wait"), tty);
  h_wait_spawned(t);
  exec_stream s = tty ? EXEC_STREAM_PTY : EXEC_STREAM_STDOUT;
  h_wait_output(t, s, "\n");
  for (;;) {
    const char *d = (const char *)t->out[s].data;
    const char *nl = strchr(d, '\n');
    if (nl && strchr(nl + 1, '\n'))
      break;
    uv_run(&H.loop, UV_RUN_ONCE);
  }
  int pids[3] = {exec_proc_pid(t->proc), 0, 0};
  sscanf((const char *)t->out[s].data, "%d %d", &pids[1], &pids[2]);
  if (write(report_fd, pids, sizeof pids) != sizeof pids)
    _exit(2);
  for (;;)
    uv_run(&H.loop, UV_RUN_ONCE);
}

static void test_server_sigkill(void **state) {
  (void)state;
  /* Orphaned supervisors reparent to us; reap them. */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  for (int tty = 0; tty < 2; tty++) {
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t srv = fork();
    assert_true(srv >= 0);
    if (srv == 0) {
      close(p[0]);
      forked_server(p[1], tty);
      _exit(0);
    }
    close(p[1]);
    int pids[3];
    assert_int_equal(read(p[0], pids, sizeof pids), (ssize_t)sizeof pids);
    close(p[0]);
    for (int i = 0; i < 3; i++)
      assert_true(pid_alive(pids[i]));
    kill(srv, SIGKILL);
    assert_int_equal(waitpid(srv, NULL, 0), srv);
    bool gone = false;
    for (int i = 0; i < 300 && !gone; i++) {
      while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
      gone = !pid_alive(pids[0]) && !pid_alive(pids[1]) && !pid_alive(pids[2]);
      if (!gone)
        usleep(10000);
    }
    assert_true(gone);
  }
  while (waitpid(-1, NULL, WNOHANG) > 0)
    ;
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

static void test_shutdown_and_release(void **state) {
  (void)state;
  tproc *a = h_spawn_argv("a", ARGV("sleep", "100"), false);
  tproc *b = h_spawn_argv("b", ARGV("sh", "-c", "trap '' TERM; echo ready; sleep 100 & wait"), true);
  tproc *c = h_spawn_argv("c", ARGV("sh", "-c", "sleep 100 & echo $!; wait"), false);
  h_wait_spawned(a);
  h_wait_output(b, EXEC_STREAM_PTY, "ready");
  h_wait_output(c, EXEC_STREAM_STDOUT, "\n");
  int pa = exec_proc_pid(a->proc), pb = exec_proc_pid(b->proc), pc = read_pid(&c->out[EXEC_STREAM_STDOUT]);
  /* release a running process: killed, gone from the table, and its exit is
   * still reported (once) so the caller knows when to free what it lent */
  exec_proc_release(a->proc);
  assert_null(exec_engine_find(H.e, "a"));
  bool done = false;
  uint64_t t0 = uv_hrtime();
  exec_engine_shutdown(H.e, 300, set_true, &done);
  h_run_until(is_set, &done, 5000);
  uint64_t ms = (uv_hrtime() - t0) / 1000000u;
  assert_true(ms >= 250); /* b ignores TERM: KILL after the grace */
  assert_true(ms < 3000);
  /* on_exit of those still draining may follow the reap */
  h_run_until(h_is_exited, b, 5000);
  h_run_until(h_is_exited, c, 5000);
  assert_int_equal(exec_spawn(H.e, &(exec_spawn_opts){.process_id = "late", .argv = ARGV("true"), .envp = ARGV("A=1")}), -ECANCELED);
  h_run_until(h_is_exited, a, 5000);
  assert_true(a->exited);
  assert_int_equal(a->info.signal, SIGKILL);
  assert_true(b->exited);
  assert_true(c->exited);
  assert_int_equal(b->info.signal, SIGKILL);
  assert_int_equal(c->info.signal, SIGTERM);
  assert_false(pid_alive(pa));
  assert_false(pid_alive(pb));
  assert_false(pid_alive(pc));
}

static void test_retention(void **state) {
  (void)state;
  h_fini();
  h_init(0, 200);
  tproc *t = h_spawn_argv("r", ARGV("echo", "hi"), false);
  h_wait_exit(t);
  assert_ptr_equal(exec_engine_find(H.e, "r"), t->proc);
  h_run_for(400);
  assert_null(exec_engine_find(H.e, "r"));
  /* released early */
  tproc *u = h_spawn_argv("u", ARGV("echo", "hi"), false);
  h_wait_exit(u);
  exec_proc_release(u->proc);
  assert_null(exec_engine_find(H.e, "u"));
  /* an exited id can be spawned again */
  tproc *v = h_spawn_argv("v", ARGV("echo", "1"), false);
  h_wait_exit(v);
  tproc *v2 = h_spawn_argv("v", ARGV("echo", "2"), false);
  h_wait_exit(v2);
  assert_string_equal((char *)v2->out[EXEC_STREAM_STDOUT].data, "2\n");
}

/* ---- backpressure and replay ---- */

static void pause_hook(tproc *t, exec_stream s, const uint8_t *d, size_t n) {
  (void)s;
  (void)d;
  (void)n;
  if (t->chunks[EXEC_STREAM_STDOUT] % 7 == 0)
    exec_engine_pause_output(H.e);
}

static void resume_cb(uv_timer_t *tm) { exec_engine_resume_output(tm->data); }

static uint64_t fnv(const uint8_t *d, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ d[i]) * 1099511628211ull;
  return h;
}

static void rt_closed(uv_handle_t *h) { *(bool *)h->data = true; }

static void test_pause_resume(void **state) {
  (void)state;
  tproc *t = h_spawn_argv("pr", ARGV("seq", "1", "300000"), false);
  exec_engine_pause_output(H.e);
  exec_engine_pause_output(H.e); /* idempotent */
  h_wait_spawned(t);
  h_run_for(300);
  assert_int_equal(t->out[EXEC_STREAM_STDOUT].len, 0);
  assert_false(t->exited); /* blocked on the full pipe */
  exec_engine_resume_output(H.e);
  t->hook = pause_hook;
  uv_timer_t rt;
  uv_timer_init(&H.loop, &rt);
  rt.data = H.e;
  uv_timer_start(&rt, resume_cb, 5, 5);
  h_wait_exit(t);
  bool closed = false;
  rt.data = &closed;
  uv_close((uv_handle_t *)&rt, rt_closed);
  h_run_until(is_set, &closed, 1000);
  check_seq(t);
  tbuf exp = {0};
  for (int v = 1; v <= 300000; v++) {
    char line[16];
    int n = snprintf(line, sizeof line, "%d\n", v);
    tbuf_add(&exp, line, (size_t)n);
  }
  tbuf *got = &t->out[EXEC_STREAM_STDOUT];
  assert_int_equal(got->len, exp.len);
  assert_true(fnv(got->data, got->len) == fnv(exp.data, exp.len));
  tbuf_free(&exp);
  exec_engine_resume_output(H.e);
}

typedef struct {
  tbuf data;
  uint64_t first, last;
  size_t n;
  bool ordered;
} replay;

static void collect(void *arg, uint64_t seq, exec_stream s, const uint8_t *d, size_t n) {
  (void)s;
  replay *r = arg;
  if (r->n == 0)
    r->first = seq;
  else if (seq != r->last + 1)
    r->ordered = false;
  r->last = seq;
  r->n++;
  tbuf_add(&r->data, d, n);
}

static void test_read_ring(void **state) {
  (void)state;
  h_fini();
  h_init(100000, 0);
  tproc *t = h_spawn_argv("ring", ARGV("sh", "-c", "seq 1 100000; echo err >&2"), false);
  h_wait_exit(t);
  tbuf *all = &t->out[EXEC_STREAM_STDOUT];
  replay r = {.ordered = true};
  exec_proc_read(t->proc, 0, SIZE_MAX, collect, &r);
  assert_true(r.ordered);
  assert_int_equal(r.last, t->last_seq);
  assert_true(r.data.len <= 100000);
  assert_true(r.data.len >= 100000 - exec_chunk_size(100000));
  /* the retained bytes are the tail of everything delivered (stdout + "err\n") */
  tbuf both = {0};
  tbuf_add(&both, all->data, all->len);
  tbuf_add(&both, "err\n", 4);
  assert_memory_equal(r.data.data, both.data + both.len - r.data.len, r.data.len);
  tbuf_free(&both);
  /* after_seq and max_bytes */
  replay r2 = {.ordered = true};
  exec_proc_read(t->proc, r.last - 2, SIZE_MAX, collect, &r2);
  assert_int_equal(r2.n, 2);
  assert_int_equal(r2.first, r.last - 1);
  replay r3 = {.ordered = true};
  exec_proc_read(t->proc, 0, 1, collect, &r3);
  assert_int_equal(r3.n, 1); /* at least one chunk */
  assert_int_equal(r3.first, r.first);
  replay r4 = {.ordered = true};
  exec_proc_read(t->proc, t->last_seq, SIZE_MAX, collect, &r4);
  assert_int_equal(r4.n, 0);
  tbuf_free(&r.data);
  tbuf_free(&r2.data);
  tbuf_free(&r3.data);
}

static void test_ring_unit(void **state) {
  (void)state;
  exec_ring r;
  assert_int_equal(exec_ring_init(&r, 300000), 0);
  tbuf all = {0};
  uint64_t seq = 0;
  srand(7);
  for (int i = 0; i < 5000; i++) {
    uint8_t *p = exec_ring_reserve(&r);
    size_t n = rand() % 5 == 0 ? (size_t)rand() % EXEC_CHUNK_MAX + 1 : (size_t)rand() % 300;
    for (size_t k = 0; k < n; k++)
      p[k] = (uint8_t)(rand() & 0xff);
    tbuf_add(&all, p, n);
    exec_ring_commit(&r, ++seq, EXEC_STREAM_STDOUT, n);
    if (i % 97 == 0) {
      replay rp = {.ordered = true};
      exec_ring_read(&r, 0, SIZE_MAX, collect, &rp);
      assert_true(rp.ordered);
      assert_int_equal(rp.last, seq);
      assert_true(rp.data.len <= 300000);
      assert_memory_equal(rp.data.data, all.data + all.len - rp.data.len, rp.data.len);
      tbuf_free(&rp.data);
    }
  }
  exec_ring_free(&r);
  tbuf_free(&all);
  /* no ring */
  assert_int_equal(exec_ring_init(&r, 0), 0);
  assert_null(exec_ring_reserve(&r));
  exec_ring_free(&r);
}

static void test_signal_names(void **state) {
  (void)state;
  assert_string_equal(exec_signal_name(SIGKILL), "KILL");
  assert_string_equal(exec_signal_name(SIGTERM), "TERM");
  assert_null(exec_signal_name(0));
  assert_int_equal(exec_signal_from_name("HUP"), SIGHUP);
  assert_int_equal(exec_signal_from_name("SIGINT"), SIGINT);
  assert_int_equal(exec_signal_from_name("NOPE"), 0);
  assert_string_equal(exec_stream_name(EXEC_STREAM_PTY), "pty");
  assert_string_equal(exec_stream_name(EXEC_STREAM_STDERR), "stderr");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(int argc, char **argv) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096 && rl.rlim_max >= 4096) {
    rl.rlim_cur = 4096;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  const struct CMUnitTest tests[] = {
      T(test_pipe_echo),
      T(test_stdin_devnull),
      T(test_pty_echo),
      T(test_pty_env_and_ctty),
      T(test_pty_resize),
      T(test_stdin_stream),
      T(test_stdin_reader_gone),
      T(test_exit_codes),
      T(test_timeout),
      T(test_cap),
      T(test_terminate),
      T(test_exec_failures),
      T(test_arg0_and_path),
      T(test_output_after_exit),
      T(test_concurrent_200),
      T(test_no_orphans_after_exit),
      T(test_server_sigkill),
      T(test_shutdown_and_release),
      T(test_retention),
      T(test_pause_resume),
      T(test_read_ring),
      cmocka_unit_test(test_ring_unit),
      cmocka_unit_test(test_signal_names),
  };
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests_name("exec", tests, NULL, NULL);
}
