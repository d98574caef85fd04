/* `warden run [--sandbox JSON] [--cwd DIR] -- CMD [ARG...]`: one command in a
 * sandbox from the shell, for users debugging a policy. It goes through the
 * same policy resolution and exec engine as process/spawn; with a terminal on
 * stdin and stdout the command gets a PTY (the terminal is put in raw mode and
 * resizes follow), otherwise pipes. Exit status: the command's, or 128+signal;
 * 126 when the sandbox cannot be enforced, 127 when the command cannot start. */
#include "handlers/handlers.h"
#include "protocol/protocol.h"
#include "server/envpolicy.h"
#include "server/sandbox/sandbox.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

extern char **environ;

typedef struct run_ctx {
  warden_server *s;
  int proxy_chan; /* proxy mode: the listeners arrive here, else -1 */
  exec_proc *proc;
  int status;
  bool tty;
  bool done;
  bool have_termios;
  struct termios saved;
  uv_tty_t in_tty;
  uv_pipe_t in_pipe;
  uv_stream_t *in;
  bool in_file;     /* stdin is a file (or /dev/null): read with uv_fs_read */
  bool file_busy;   /* a file read or its write is in flight */
  uv_fs_t file_req;
  uv_signal_t winch;
  char buf[65536];
} run_ctx;

static void write_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return;
    p += w;
    n -= (size_t)w;
  }
}

static void close_handle(uv_handle_t *h) {
  if (h && !uv_is_closing(h) && h->type)
    uv_close(h, NULL);
}

static void stop_input(run_ctx *c) {
  if (c->in) {
    uv_read_stop(c->in);
    close_handle((uv_handle_t *)c->in);
    c->in = NULL;
  }
  if (c->tty)
    close_handle((uv_handle_t *)&c->winch);
}

static void write_done(void *arg, ssize_t result) {
  (void)arg;
  (void)result;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/* stdin as a file: read a chunk, write it, and only then read the next, so
 * a large file never sits in memory whole. */
static void file_read_next(run_ctx *c);

static void file_written(void *arg, ssize_t result) {
  run_ctx *c = arg;
  c->file_busy = false;
  if (result < 0 || c->done) {
    c->in_file = false;
    return;
  }
  file_read_next(c);
}

static void file_read_done(uv_fs_t *req) {
  run_ctx *c = req->data;
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  c->file_busy = false;
  if (c->done || !c->proc)
    return;
  if (n > 0) {
    c->file_busy = true;
    if (exec_proc_write(c->proc, (const uint8_t *)c->buf, (size_t)n, false, file_written, c) < 0)
      c->file_busy = false;
    return;
  }
  c->in_file = false; /* end of file, or a read error: either way EOF for the command */
  exec_proc_write(c->proc, NULL, 0, true, write_done, NULL);
}

static void file_read_next(run_ctx *c) {
  if (c->done || c->file_busy)
    return;
  uv_buf_t b = uv_buf_init(c->buf, sizeof c->buf);
  c->file_req.data = c;
  c->file_busy = true;
  if (uv_fs_read(c->s->loop, &c->file_req, 0, &b, 1, -1, file_read_done) < 0) {
    c->file_busy = false;
    c->in_file = false;
    exec_proc_write(c->proc, NULL, 0, true, write_done, NULL);
  }
}

static void on_spawned(void *ctx, exec_proc *proc, void *user, const exec_spawn_error *err) {
  run_ctx *c = ctx;
  (void)user;
  if (err) {
    fprintf(stderr, "warden run: %s%s: %s\n", err->sandbox ? "sandbox setup failed: " : "",
            err->syscall, strerror(err->err));
    c->status = err->sandbox ? 126 : 127;
    c->done = true;
    stop_input(c);
    return;
  }
  c->proc = proc;
  int rc = handlers_proxy_serve(c->s, &c->proxy_chan, "run");
  if (rc < 0)
    fprintf(stderr, "warden run: proxy listeners: %s\n", strerror(-rc));
  /* Input starts only now: nothing read from stdin can arrive before there
   * is a process to write it to. */
  if (c->in)
    uv_read_start(c->in, alloc_cb, read_cb);
  else if (c->in_file)
    file_read_next(c);
  else /* stdin is closed: the command sees EOF at once */
    exec_proc_write(proc, NULL, 0, true, write_done, NULL);
}

static void on_output(void *ctx, exec_proc *proc, uint64_t seq, exec_stream stream,
                      const uint8_t *data, size_t len, bool cap_reached) {
  (void)ctx;
  (void)proc;
  (void)seq;
  (void)cap_reached;
  write_all(stream == EXEC_STREAM_STDERR ? 2 : 1, data, len);
}

static void on_proc_exit(void *ctx, exec_proc *proc, uint64_t seq, const exec_exit_info *info) {
  run_ctx *c = ctx;
  (void)proc;
  (void)seq;
  c->status = info->signal ? 128 + info->signal : info->exit_code;
  c->done = true;
  stop_input(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  run_ctx *c = h->data;
  (void)suggested;
  *buf = uv_buf_init(c->buf, sizeof c->buf);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  run_ctx *c = s->data;
  if (!c->proc)
    return;
  if (n > 0) {
    exec_proc_write(c->proc, (const uint8_t *)buf->base, (size_t)n, false, write_done, NULL);
  } else if (n < 0) {
    exec_proc_write(c->proc, NULL, 0, true, write_done, NULL);
    uv_read_stop(s);
  }
}

static void on_winch(uv_signal_t *h, int sig) {
  run_ctx *c = h->data;
  (void)sig;
  struct winsize ws;
  if (c->proc && ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col)
    exec_proc_resize(c->proc, ws.ws_row, ws.ws_col);
}

static void engine_down(void *arg) { (void)arg; }

static int usage_error(const char *msg) {
  fprintf(stderr, "warden run: %s\nusage: warden run [--sandbox JSON] [--cwd DIR] -- CMD [ARG...]\n",
          msg);
  return 2;
}

int handlers_run_command(warden_server *s, int argc, char **argv) {
  const char *sandbox_text = NULL, *cwd_arg = NULL;
  int i = 0;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    } else if (strcmp(argv[i], "--sandbox") == 0 && i + 1 < argc) {
      sandbox_text = argv[++i];
    } else if (strcmp(argv[i], "--cwd") == 0 && i + 1 < argc) {
      cwd_arg = argv[++i];
    } else if (argv[i][0] == '-') {
      char m[256];
      snprintf(m, sizeof m, "unknown option \"%.200s\"", argv[i]);
      return usage_error(m);
    } else {
      break; /* the command, without a "--" */
    }
  }
  if (i >= argc)
    return usage_error("no command given");

  json_t *policy = NULL;
  if (sandbox_text) {
    json_error_t je;
    policy = json_loads(sandbox_text, 0, &je);
    if (!policy) {
      char m[300];
      snprintf(m, sizeof m, "--sandbox is not JSON: %s", je.text);
      return usage_error(m);
    }
    proto_violation pv;
    if (!proto_validate(&proto_t_sandbox_policy, policy, "sandbox", &pv)) {
      json_decref(policy);
      return usage_error(pv.message);
    }
  } else if (s->cfg.default_sandbox) {
    policy = json_incref(s->cfg.default_sandbox);
  }
  char cwd[4096];
  if (cwd_arg) {
    if (cwd_arg[0] != '/' || !realpath(cwd_arg, cwd)) {
      json_decref(policy);
      return usage_error("--cwd must be an existing absolute directory");
    }
  } else if (!getcwd(cwd, sizeof cwd)) {
    json_decref(policy);
    return usage_error("cannot read the current directory");
  }

  s->loop = uv_default_loop();
  policy_context pctx;
  handlers_policy_context(s, &pctx);
  policy_plan *plan = NULL;
  policy_error perr;
  memset(&perr, 0, sizeof perr);
  int rc = policy_resolve(policy, cwd, &pctx, "sandbox", &plan, &perr);
  json_decref(policy);
  if (rc < 0) {
    fprintf(stderr, "warden run: %s (at %s)\n", perr.message, perr.path);
    return 2;
  }
  sandbox_spec *spec = NULL;
  if (plan->enforce) {
    char *reason = NULL;
    if (!plan->enforceable) {
      fprintf(stderr, "warden run: sandbox cannot be enforced: %s\n", plan->reason);
      policy_plan_free(plan);
      return 126;
    }
    sandbox_build_opts bo = {.cwd = cwd, .host_uid = getuid(), .host_gid = getgid(),
                             .exe_path = "/proc/self/exe"};
    if (sandbox_spec_build(plan, &bo, &spec, &reason) < 0) {
      fprintf(stderr, "warden run: sandbox cannot be enforced: %s\n", reason ? reason : "?");
      free(reason);
      policy_plan_free(plan);
      return 126;
    }
  }
  policy_plan_free(plan);

  run_ctx *c = calloc(1, sizeof *c);
  if (!c)
    return 1;
  c->s = s;
  c->proxy_chan = -1;
  if (spec && sandbox_spec_network(spec) == POLICY_NET_PROXY &&
      sandbox_spec_proxy_channel(spec, &c->proxy_chan) < 0) {
    fprintf(stderr, "warden run: sandbox cannot be enforced: no proxy channel\n");
    sandbox_spec_free(spec);
    free(c);
    return 126;
  }
  c->tty = isatty(0) && isatty(1);
  exec_engine_opts eo = {.retain_bytes = 0, .retain_exited_ms = 0};
  exec_callbacks cb = {.ctx = c, .on_spawned = on_spawned, .on_output = on_output,
                       .on_exit = on_proc_exit};
  rc = exec_engine_new(s->loop, &eo, &cb, &s->exec);
  if (rc == 0 && c->proxy_chan >= 0)
    rc = network_handlers_start(s); /* the egress proxy, with the config's policy */
  char **envp = envpolicy_build(environ, NULL, NULL, spec ? sandbox_spec_env(spec) : NULL);
  struct winsize ws = {.ws_row = 24, .ws_col = 80};
  if (c->tty)
    ioctl(1, TIOCGWINSZ, &ws);
  exec_spawn_opts o = {
      .process_id = "run",
      .argv = argv + i,
      .cwd = cwd,
      .envp = envp,
      .tty = c->tty,
      .rows = ws.ws_row ? ws.ws_row : 24,
      .cols = ws.ws_col ? ws.ws_col : 80,
      .stream_stdin = true,
      .output_cap = -1,
      .timeout_ms = -1,
      .sandbox = spec,
  };
  if (rc == 0)
    rc = exec_spawn(s->exec, &o);
  envpolicy_free(envp);
  if (rc < 0) {
    fprintf(stderr, "warden run: cannot start: %s\n", strerror(-rc));
    c->status = 127;
    c->done = true;
  } else {
    if (c->tty) {
      uv_tty_init(s->loop, &c->in_tty, 0, 1);
      c->in = (uv_stream_t *)&c->in_tty;
      if (tcgetattr(0, &c->saved) == 0) {
        c->have_termios = true;
        uv_tty_set_mode(&c->in_tty, UV_TTY_MODE_RAW);
      }
      uv_signal_init(s->loop, &c->winch);
      c->winch.data = c;
      uv_signal_start(&c->winch, on_winch, SIGWINCH);
    } else {
      uv_handle_type t = uv_guess_handle(0);
      if (t == UV_NAMED_PIPE || t == UV_TCP || t == UV_UDP) {
        uv_pipe_init(s->loop, &c->in_pipe, 0);
        if (uv_pipe_open(&c->in_pipe, 0) == 0)
          c->in = (uv_stream_t *)&c->in_pipe;
        else
          close_handle((uv_handle_t *)&c->in_pipe);
      } else if (t == UV_TTY) { /* a terminal, with stdout elsewhere: no PTY, no raw mode */
        if (uv_tty_init(s->loop, &c->in_tty, 0, 1) == 0)
          c->in = (uv_stream_t *)&c->in_tty;
      } else if (t == UV_FILE) {
        c->in_file = true; /* a regular file or a device such as /dev/null */
      }
    }
    if (c->in)
      c->in->data = c; /* reading starts in on_spawned */
  }
  while (!c->done && uv_run(s->loop, UV_RUN_ONCE))
    ;
  if (c->have_termios)
    tcsetattr(0, TCSANOW, &c->saved);
  stop_input(c);
  handlers_proxy_close(c->s, "run");
  if (c->proxy_chan >= 0)
    close(c->proxy_chan);
  if (c->proc && c->done) {
    exec_proc_release(c->proc); /* nothing to retain: its exit is known */
    c->proc = NULL;
  }
  network_handlers_free(s);
  if (s->exec) {
    exec_engine_shutdown(s->exec, 500, engine_down, NULL);
    uv_run(s->loop, UV_RUN_DEFAULT);
    exec_engine_free(s->exec);
    s->exec = NULL;
  }
  if (spec) {
    sandbox_spec_cleanup_host(spec);
    sandbox_spec_free(spec);
  }
  uv_loop_close(s->loop);
  int status = c->status;
  free(c);
  return status;
}
