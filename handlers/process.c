/* The process family: spawn, write, resize, terminate, read, release, list, and the
 * process/output and process/exited notifications. */
#include "handlers/handlers.h"
#include "server/base64.h"
#include "server/netstub.h"
#include "server/envpolicy.h"
#include "server/log.h"
#include "server/sandbox/sandbox.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

#define READ_DEFAULT_MAX_BYTES (1u << 20)

typedef struct read_waiter {
  struct read_waiter *next;
  struct proc_data *pd;
  exec_proc *proc; /* valid: waiters are answered before the proc can go */
  rpc_request *req;
  uint64_t after_seq;
  size_t max_bytes;
  uv_timer_t timer;
} read_waiter;

/* Handler state of one process, from spawn to exit. */
typedef struct proc_data {
  warden_server *s;
  rpc_request *spawn_req;
  sandbox_spec *spec;
  int proxy_chan;    /* proxy mode: where the supervisor sends the listeners, else -1 */
  netstub *proxy;    /* serves them */
  char *id_json; /* processId as a quoted JSON string, for the hot path */
  size_t id_json_len;
  char backend[16];
  char network[8];
  bool enforced;
  read_waiter *waiters;
  /* A process warden runs for itself (the sandbox/setup self-check): no
   * notifications, not listed, not addressable; its output is collected. */
  process_internal_fn internal;
  void *internal_arg;
  char *out;
  size_t out_len;
} proc_data;

static void free_proc_data(proc_data *pd) {
  if (!pd)
    return;
  netstub_close(pd->proxy);
  if (pd->proxy_chan >= 0)
    close(pd->proxy_chan);
  if (pd->spec) {
    sandbox_spec_cleanup_host(pd->spec);
    sandbox_spec_free(pd->spec);
  }
  free(pd->id_json);
  free(pd->out);
  free(pd);
}

static bool internal_id(const char *id) {
  return id && strncmp(id, PROCESS_INTERNAL_PREFIX, strlen(PROCESS_INTERNAL_PREFIX)) == 0;
}

static exec_proc *find_or_fail(warden_server *s, rpc_request *req, json_t *params) {
  const char *id = json_string_value(json_object_get(params, "processId"));
  exec_proc *p = internal_id(id) ? NULL : exec_engine_find(s->exec, id);
  if (!p) {
    char msg[320];
    snprintf(msg, sizeof msg, "unknown processId \"%.256s\"", id);
    rpc_respond_error(req, RPC_UNKNOWN_PROCESS, msg, json_pack("{s:s}", "processId", id));
  }
  return p;
}

static void invalid(rpc_request *req, const char *path, const char *fmt, const char *arg) {
  char msg[512];
  snprintf(msg, sizeof msg, fmt, arg);
  rpc_respond_error(req, RPC_INVALID_PARAMS, msg, json_pack("{s:s}", "path", path));
}

/* ---- process/read and its long-poll ---- */

typedef struct chunk_acc {
  json_t *chunks;
  size_t bytes, max_bytes;
  uint64_t last_seq;
  bool full;
} chunk_acc;

static void add_chunk(void *arg, uint64_t seq, exec_stream stream, const uint8_t *data,
                      size_t len) {
  chunk_acc *a = arg;
  if (a->full)
    return;
  char *b64 = malloc(base64_encoded_len(len) + 1);
  if (!b64) {
    a->full = true;
    return;
  }
  b64[base64_encode(data, len, b64)] = '\0';
  json_array_append_new(a->chunks, json_pack("{s:I,s:s,s:s}", "seq", (json_int_t)seq, "stream",
                                             exec_stream_name(stream), "deltaBase64", b64));
  free(b64);
  a->bytes += len;
  a->last_seq = seq;
}

static json_t *read_result(exec_proc *p, uint64_t after_seq, size_t max_bytes, size_t *count) {
  chunk_acc a = {.chunks = json_array(), .max_bytes = max_bytes, .last_seq = after_seq};
  exec_proc_read(p, after_seq, max_bytes, add_chunk, &a);
  *count = json_array_size(a.chunks);
  const exec_exit_info *x = exec_proc_exit_info(p);
  uint64_t next = a.last_seq;
  if (*count == 0 && x) {
    /* Nothing newer: point past everything delivered, exit included. */
    uint64_t n = exec_proc_next_seq(p);
    next = n > 0 ? n - 1 : 0;
    if (next < after_seq)
      next = after_seq;
  }
  json_t *r = json_pack("{s:o,s:I,s:b}", "chunks", a.chunks, "nextSeq", (json_int_t)next,
                        "exited", x != NULL);
  json_object_set_new(r, "exitCode", x && !x->signal ? json_integer(x->exit_code) : json_null());
  const char *sig = x && x->signal ? exec_signal_name(x->signal) : NULL;
  json_object_set_new(r, "signal", sig ? json_string(sig) : json_null());
  return r;
}

static void waiter_closed(uv_handle_t *h) { free(h->data); }

static void waiter_answer(read_waiter *w) {
  for (read_waiter **pp = &w->pd->waiters; *pp; pp = &(*pp)->next) {
    if (*pp == w) {
      *pp = w->next;
      break;
    }
  }
  size_t count;
  rpc_respond(w->req, read_result(w->proc, w->after_seq, w->max_bytes, &count));
  uv_timer_stop(&w->timer);
  uv_close((uv_handle_t *)&w->timer, waiter_closed);
}

static void waiter_timeout(uv_timer_t *t) { waiter_answer(t->data); }

/* New output or the exit: answer every waiter that now has something. */
static void wake_waiters(proc_data *pd, bool all) {
  read_waiter *w = pd->waiters;
  while (w) {
    read_waiter *next = w->next;
    if (all || exec_proc_next_seq(w->proc) > w->after_seq + 1)
      waiter_answer(w);
    w = next;
  }
}

void handle_process_read(void *server, rpc_request *req, json_t *params) {
  warden_server *s = server;
  exec_proc *p = find_or_fail(s, req, params);
  if (!p)
    return;
  json_t *v = json_object_get(params, "afterSeq");
  uint64_t after = json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
  v = json_object_get(params, "maxBytes");
  size_t max_bytes = json_is_integer(v) ? (size_t)json_integer_value(v) : READ_DEFAULT_MAX_BYTES;
  v = json_object_get(params, "waitMs");
  uint64_t wait_ms = json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
  proc_data *pd = exec_proc_get_data(p);
  bool nothing_new = exec_proc_next_seq(p) <= after + 1;
  if (wait_ms && nothing_new && exec_proc_running(p) && pd && !s->shutting_down) {
    read_waiter *w = calloc(1, sizeof *w);
    if (w) {
      w->pd = pd;
      w->proc = p;
      w->req = req;
      w->after_seq = after;
      w->max_bytes = max_bytes;
      uv_timer_init(s->loop, &w->timer);
      w->timer.data = w;
      uv_timer_start(&w->timer, waiter_timeout, wait_ms, 0);
      w->next = pd->waiters;
      pd->waiters = w;
      return;
    }
  }
  size_t count;
  rpc_respond(req, read_result(p, after, max_bytes, &count));
}

/* ---- engine events ---- */

static void on_spawned(void *ctx, exec_proc *proc, void *user, const exec_spawn_error *err) {
  warden_server *s = ctx;
  proc_data *pd = user;
  rpc_request *req = pd->spawn_req;
  pd->spawn_req = NULL;
  if (pd->internal) {
    if (err) {
      char msg[256];
      snprintf(msg, sizeof msg, "%s: %s", err->syscall, strerror(err->err));
      pd->internal(pd->internal_arg, msg, NULL, NULL, 0);
      free_proc_data(pd);
    } else {
      exec_proc_set_data(proc, pd);
    }
    return;
  }
  if (err) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %s", err->syscall, strerror(err->err));
    json_t *data = json_pack("{s:i,s:s}", "errno", err->err, "syscall", err->syscall);
    if (err->sandbox) {
      json_object_set_new(data, "reason", json_string(msg));
      char m2[300];
      snprintf(m2, sizeof m2, "sandbox cannot be enforced: %s", msg);
      rpc_respond_error(req, RPC_SANDBOX_DENIED, m2, data);
    } else {
      rpc_respond_error(req, RPC_SPAWN_FAILED, msg, data);
    }
    free_proc_data(pd);
    return;
  }
  exec_proc_set_data(proc, pd);
  int rc = handlers_proxy_serve(s->loop, &pd->proxy_chan, &pd->proxy);
  if (rc < 0)
    LOGE("process", "%s: proxy listeners: %s", exec_proc_id(proc), strerror(-rc));
  json_t *result = json_pack("{s:s,s:i,s:{s:b,s:s,s:s}}", "processId", exec_proc_id(proc), "pid",
                             exec_proc_pid(proc), "sandbox", "enforced", pd->enforced, "backend",
                             pd->backend, "network", pd->network);
  rpc_respond(req, result);
  (void)s;
}

static void on_output(void *ctx, exec_proc *proc, uint64_t seq, exec_stream stream,
                      const uint8_t *data, size_t len, bool cap_reached) {
  warden_server *s = ctx;
  proc_data *pd = exec_proc_get_data(proc);
  if (pd && pd->internal) {
    size_t room = PROCESS_INTERNAL_MAX_OUTPUT - pd->out_len;
    if (len > room)
      len = room;
    char *o = len ? realloc(pd->out, pd->out_len + len + 1) : NULL;
    if (o) {
      memcpy(o + pd->out_len, data, len);
      pd->out_len += len;
      o[pd->out_len] = '\0';
      pd->out = o;
    }
    return;
  }
  if (pd && pd->waiters)
    wake_waiters(pd, false);
  if (!s->tr || !pd || !rpc_notification_wanted(s->rpc, "process/output"))
    return;
  /* Formatted by hand: the payload goes straight from the child's bytes to
   * base64 in the outgoing buffer, never through a JSON string escaper. */
  static const char head[] = "{\"jsonrpc\":\"2.0\",\"method\":\"process/output\",\"params\":{"
                             "\"processId\":";
  size_t cap = sizeof head + pd->id_json_len + 96 + base64_encoded_len(len);
  char *out;
  transport_buf *b = transport_out_alloc(cap, &out);
  if (!b) {
    LOGE("process", "out of memory sending %zu bytes of output", len);
    return;
  }
  char *o = out;
  memcpy(o, head, sizeof head - 1);
  o += sizeof head - 1;
  memcpy(o, pd->id_json, pd->id_json_len);
  o += pd->id_json_len;
  o += sprintf(o, ",\"seq\":%llu,\"stream\":\"%s\",\"deltaBase64\":\"", (unsigned long long)seq,
               exec_stream_name(stream));
  o += base64_encode(data, len, o);
  if (cap_reached) {
    memcpy(o, "\",\"capReached\":true}}\n", 22);
    o += 22;
  } else {
    memcpy(o, "\"}}\n", 4);
    o += 4;
  }
  transport_out_send(s->tr, b, (size_t)(o - out));
}

static void on_proc_exit(void *ctx, exec_proc *proc, uint64_t seq, const exec_exit_info *info) {
  warden_server *s = ctx;
  proc_data *pd = exec_proc_get_data(proc);
  if (pd && pd->internal) {
    exec_proc_set_data(proc, NULL);
    pd->internal(pd->internal_arg, NULL, info, pd->out ? pd->out : "", pd->out_len);
    free_proc_data(pd);
    return;
  }
  const char *sig = info->signal ? exec_signal_name(info->signal) : NULL;
  char signum[16];
  if (info->signal && !sig) {
    snprintf(signum, sizeof signum, "%d", info->signal);
    sig = signum;
  }
  json_t *params = json_pack("{s:s,s:I,s:o,s:o,s:b,s:I}", "processId", exec_proc_id(proc), "seq",
                             (json_int_t)seq, "exitCode",
                             info->signal ? json_null() : json_integer(info->exit_code), "signal",
                             sig ? json_string(sig) : json_null(), "timedOut", info->timed_out,
                             "durationMs", (json_int_t)info->duration_ms);
  rpc_notify(s->rpc, "process/exited", params);
  if (pd) {
    wake_waiters(pd, true);
    exec_proc_set_data(proc, NULL);
    free_proc_data(pd);
  }
}

/* ---- requests ---- */

static int build_sandbox(warden_server *s, rpc_request *req, json_t *params, const char *cwd,
                         proc_data *pd) {
  policy_context ctx;
  handlers_policy_context(s, &ctx);
  json_t *policy = json_object_get(params, "sandbox");
  const char *path = "params.sandbox";
  if (!policy || json_is_null(policy)) {
    policy = s->cfg.default_sandbox; /* NULL: the built-in workspaceWrite */
    path = "defaultSandbox";
  }
  policy_plan *plan = NULL;
  policy_error perr;
  memset(&perr, 0, sizeof perr);
  if (policy_resolve(policy, cwd, &ctx, path, &plan, &perr) < 0) {
    handlers_respond_policy_error(req, &perr);
    return -1;
  }
  snprintf(pd->network, sizeof pd->network, "%s", policy_net_mode_name(plan->network));
  if (!plan->enforce) {
    pd->enforced = false;
    snprintf(pd->backend, sizeof pd->backend, "none");
    policy_plan_free(plan);
    return 0;
  }
  if (!plan->enforceable) {
    char msg[600];
    snprintf(msg, sizeof msg, "sandbox cannot be enforced: %s", plan->reason ? plan->reason : "?");
    rpc_respond_error(req, RPC_SANDBOX_DENIED, msg,
                      json_pack("{s:s}", "reason", plan->reason ? plan->reason : "unknown"));
    policy_plan_free(plan);
    return -1;
  }
  sandbox_build_opts bo = {
      .cwd = cwd,
      .host_uid = getuid(),
      .host_gid = getgid(),
      .exe_path = "/proc/self/exe",
  };
  char *reason = NULL;
  int rc = sandbox_spec_build(plan, &bo, &pd->spec, &reason);
  policy_plan_free(plan);
  if (rc < 0) {
    char msg[600];
    snprintf(msg, sizeof msg, "sandbox cannot be enforced: %s", reason ? reason : strerror(-rc));
    rpc_respond_error(req, RPC_SANDBOX_DENIED, msg,
                      json_pack("{s:s}", "reason", reason ? reason : strerror(-rc)));
    free(reason);
    return -1;
  }
  pd->enforced = true;
  snprintf(pd->backend, sizeof pd->backend, "%s", sandbox_spec_backend_name(pd->spec));
  if (sandbox_spec_network(pd->spec) == POLICY_NET_PROXY &&
      (rc = sandbox_spec_proxy_channel(pd->spec, &pd->proxy_chan)) < 0) {
    rpc_respond_errorf(req, RPC_SANDBOX_DENIED, "sandbox cannot be enforced: proxy channel: %s",
                       strerror(-rc));
    return -1;
  }
  return 0;
}

static char **string_array(const json_t *arr) {
  size_t n = json_array_size(arr);
  char **v = calloc(n + 1, sizeof *v);
  if (!v)
    return NULL;
  for (size_t i = 0; i < n; i++)
    v[i] = (char *)json_string_value(json_array_get(arr, i)); /* borrowed */
  return v;
}

void handle_process_spawn(void *server, rpc_request *req, json_t *params) {
  warden_server *s = server;
  const char *id = json_string_value(json_object_get(params, "processId"));
  if (internal_id(id)) {
    invalid(req, "params.processId", "processId \"%.256s\" is reserved for warden's own use",
            id);
    return;
  }
  exec_proc *old = exec_engine_find(s->exec, id);
  if (old && !exec_proc_exit_info(old)) {
    invalid(req, "params.processId", "processId \"%.256s\" is already in use", id);
    return;
  }
  /* Ids are unique among live processes: an exited one that is only kept
   * for process/read gives its id up to the new spawn (exec_spawn). */
  bool tty = json_is_true(json_object_get(params, "tty"));
  json_t *size = json_object_get(params, "size");
  if (size && !json_is_null(size) && !tty) {
    invalid(req, "params.size", "%ssize is only valid with tty:true", "");
    return;
  }
  if (tty && json_is_true(json_object_get(params, "streamStdin"))) {
    /* A PTY's input is always open; streamStdin is for pipe sessions. */
  }
  const char *key;
  json_t *val;
  json_object_foreach(json_object_get(params, "env"), key, val) {
    if (!*key || strchr(key, '=')) {
      char path[300];
      snprintf(path, sizeof path, "params.env.%.256s", key);
      invalid(req, path, "env name \"%.256s\" is empty or contains '='", key);
      return;
    }
  }
  char cwd_buf[4096];
  const char *cwd = json_string_value(json_object_get(params, "cwd"));
  if (!cwd) {
    if (!getcwd(cwd_buf, sizeof cwd_buf)) {
      rpc_respond_errorf(req, RPC_INTERNAL_ERROR, "getcwd: %s", strerror(errno));
      return;
    }
    cwd = cwd_buf;
  }
  proc_data *pd = calloc(1, sizeof *pd);
  if (!pd) {
    rpc_respond_errorf(req, RPC_INTERNAL_ERROR, "out of memory");
    return;
  }
  pd->s = s;
  pd->proxy_chan = -1;
  json_t *idj = json_string(id);
  pd->id_json = json_dumps(idj, JSON_ENCODE_ANY);
  json_decref(idj);
  pd->id_json_len = pd->id_json ? strlen(pd->id_json) : 0;
  if (!pd->id_json || build_sandbox(s, req, params, cwd, pd) < 0) {
    if (!pd->id_json)
      rpc_respond_errorf(req, RPC_INTERNAL_ERROR, "out of memory");
    free_proc_data(pd);
    return;
  }
  char **argv = string_array(json_object_get(params, "argv"));
  /* A PTY is a terminal warden emulates for the client, not the terminal
   * the server itself runs in: TERM is the client's choice (env.TERM) or
   * xterm-256color, never the server's inherited TERM. */
  json_t *env = json_object_get(params, "env");
  json_t *env_copy = NULL;
  if (tty && !json_object_get(env, "TERM")) {
    env_copy = env ? json_copy(env) : json_object();
    json_object_set_new(env_copy, "TERM", json_string("xterm-256color"));
    env = env_copy;
  }
  char **envp = envpolicy_build(environ, json_object_get(params, "envPolicy"), env,
                                pd->spec ? sandbox_spec_env(pd->spec) : NULL);
  json_decref(env_copy);
  if (!argv || !envp) {
    free(argv);
    envpolicy_free(envp);
    free_proc_data(pd);
    rpc_respond_errorf(req, RPC_INTERNAL_ERROR, "out of memory");
    return;
  }
  json_t *v;
  exec_spawn_opts o = {
      .process_id = id,
      .argv = argv,
      .arg0 = json_string_value(json_object_get(params, "arg0")),
      .cwd = cwd,
      .envp = envp,
      .tty = tty,
      .rows = 24,
      .cols = 80,
      .stream_stdin = json_is_true(json_object_get(params, "streamStdin")),
      .output_cap = -1,
      .timeout_ms = -1,
      .sandbox = pd->spec,
      .user = pd,
  };
  if (size && json_is_object(size)) {
    o.rows = (unsigned)json_integer_value(json_object_get(size, "rows"));
    o.cols = (unsigned)json_integer_value(json_object_get(size, "cols"));
  }
  if ((v = json_object_get(params, "outputBytesCap")) && json_is_integer(v))
    o.output_cap = json_integer_value(v);
  if ((v = json_object_get(params, "timeoutMs")) && json_is_integer(v))
    o.timeout_ms = json_integer_value(v);
  pd->spawn_req = req;
  int rc = exec_spawn(s->exec, &o);
  free(argv);
  envpolicy_free(envp);
  if (rc < 0) {
    pd->spawn_req = NULL;
    free_proc_data(pd);
    if (rc == -EEXIST)
      invalid(req, "params.processId", "processId \"%.256s\" is already in use", id);
    else
      rpc_respond_error(req, RPC_SPAWN_FAILED, strerror(-rc),
                        json_pack("{s:i,s:s}", "errno", -rc, "syscall", "spawn"));
  }
}

static void write_done(void *arg, ssize_t result) {
  rpc_request *req = arg;
  if (result < 0) {
    if (result == -EPIPE || result == -EBADF)
      rpc_respond_error(req, RPC_INVALID_PARAMS, "stdin is not open (it was closed, or the "
                        "process was spawned without streamStdin, or it exited)",
                        json_pack("{s:s}", "path", "params.processId"));
    else
      rpc_respond_errorf(req, RPC_INTERNAL_ERROR, "write: %s", strerror((int)-result));
    return;
  }
  rpc_respond(req, json_pack("{s:I}", "bytesWritten", (json_int_t)result));
}

void handle_process_write(void *server, rpc_request *req, json_t *params) {
  warden_server *s = server;
  exec_proc *p = find_or_fail(s, req, params);
  if (!p)
    return;
  const char *b64 = json_string_value(json_object_get(params, "deltaBase64"));
  size_t n = b64 ? strlen(b64) : 0;
  uint8_t *data = malloc(n / 4 * 3 + 1);
  if (!data) {
    rpc_respond_errorf(req, RPC_INTERNAL_ERROR, "out of memory");
    return;
  }
  ssize_t len = n ? base64_decode(b64, n, data) : 0;
  if (len < 0) {
    free(data);
    invalid(req, "params.deltaBase64", "%sdeltaBase64 is not valid base64", "");
    return;
  }
  bool close_stdin = json_is_true(json_object_get(params, "closeStdin"));
  int rc = exec_proc_write(p, data, (size_t)len, close_stdin, write_done, req);
  free(data);
  if (rc < 0)
    write_done(req, rc);
}

void handle_process_resize(void *server, rpc_request *req, json_t *params) {
  warden_server *s = server;
  exec_proc *p = find_or_fail(s, req, params);
  if (!p)
    return;
  json_t *size = json_object_get(params, "size");
  int rc = exec_proc_resize(p, (unsigned)json_integer_value(json_object_get(size, "rows")),
                            (unsigned)json_integer_value(json_object_get(size, "cols")));
  if (rc == -ENOTTY) {
    invalid(req, "params.processId", "process \"%.256s\" is not a tty session", exec_proc_id(p));
    return;
  }
  rpc_respond(req, json_object()); /* resizing an exited PTY is a no-op */
}

void handle_process_terminate(void *server, rpc_request *req, json_t *params) {
  warden_server *s = server;
  exec_proc *p = find_or_fail(s, req, params);
  if (!p)
    return;
  const char *name = json_string_value(json_object_get(params, "signal"));
  int sig = exec_signal_from_name(name ? name : "TERM");
  json_t *g = json_object_get(params, "graceMs");
  uint64_t grace = json_is_integer(g) ? (uint64_t)json_integer_value(g) : 2000;
  int rc = exec_proc_terminate(p, sig, grace);
  rpc_respond(req, json_pack("{s:b}", "running", rc == 1));
}

void handle_process_release(void *server, rpc_request *req, json_t *params) {
  warden_server *s = server;
  exec_proc *p = find_or_fail(s, req, params);
  if (!p)
    return;
  proc_data *pd = exec_proc_get_data(p);
  if (pd) {
    /* Released while running: the engine kills it and on_proc_exit will not come. */
    wake_waiters(pd, true);
    exec_proc_set_data(p, NULL);
    free_proc_data(pd);
  }
  exec_proc_release(p);
  rpc_respond(req, json_object());
}

static void list_one(exec_proc *p, void *arg) {
  json_t *arr = arg;
  if (internal_id(exec_proc_id(p)))
    return;
  json_t *argv = json_array();
  for (char *const *a = exec_proc_argv(p); a && *a; a++)
    json_array_append_new(argv, json_string(*a));
  json_array_append_new(arr, json_pack("{s:s,s:i,s:o,s:b,s:b,s:I}", "processId", exec_proc_id(p),
                                       "pid", exec_proc_pid(p), "argv", argv, "tty",
                                       exec_proc_tty(p), "running", exec_proc_running(p),
                                       "startedAtMs", (json_int_t)exec_proc_started_at_ms(p)));
}

void handle_process_list(void *server, rpc_request *req, json_t *params) {
  warden_server *s = server;
  (void)params;
  json_t *arr = json_array();
  exec_engine_each(s->exec, list_one, arr);
  rpc_respond(req, json_pack("{s:o}", "processes", arr));
}

/* ---- the proxy's listeners ---- */

int handlers_proxy_serve(uv_loop_t *loop, int *chan, netstub **out) {
  if (*chan < 0)
    return 0;
  int fds[2];
  int rc = sandbox_proxy_receive(*chan, fds);
  if (rc == 0)
    rc = netstub_start(loop, fds[0], fds[1], out);
  close(*chan);
  *chan = -1;
  return rc;
}

/* ---- processes warden runs for itself ---- */

int process_spawn_internal(warden_server *s, char *const *argv, const char *cwd,
                           sandbox_spec *spec, process_internal_fn fn, void *arg) {
  static unsigned long counter;
  char id[64];
  snprintf(id, sizeof id, PROCESS_INTERNAL_PREFIX "%lu", ++counter);
  proc_data *pd = calloc(1, sizeof *pd);
  if (!pd) {
    sandbox_spec_cleanup_host(spec);
    sandbox_spec_free(spec);
    return -ENOMEM;
  }
  pd->s = s;
  pd->proxy_chan = -1;
  pd->spec = spec;
  pd->internal = fn;
  pd->internal_arg = arg;
  /* A sanitizer build of warden checking itself inside a sandbox: its leak
   * checker needs ptrace, which the sandbox forbids. Ignored otherwise. */
  json_t *extra = json_pack("{s:s}", "ASAN_OPTIONS", "detect_leaks=0");
  char **envp = envpolicy_build(environ, NULL, extra, spec ? sandbox_spec_env(spec) : NULL);
  json_decref(extra);
  if (!envp) {
    free_proc_data(pd);
    return -ENOMEM;
  }
  exec_spawn_opts o = {.process_id = id, .argv = argv, .cwd = cwd, .envp = envp,
                       .output_cap = PROCESS_INTERNAL_MAX_OUTPUT, .timeout_ms = 10000,
                       .sandbox = spec, .user = pd};
  int rc = exec_spawn(s->exec, &o);
  envpolicy_free(envp);
  if (rc < 0)
    free_proc_data(pd);
  return rc;
}

/* ---- engine lifecycle ---- */

int process_handlers_start(warden_server *s) {
  exec_engine_opts eo = {.retain_bytes = s->cfg.retain_bytes, .retain_exited_ms = 60000};
  exec_callbacks cb = {
      .ctx = s, .on_spawned = on_spawned, .on_output = on_output, .on_exit = on_proc_exit};
  return exec_engine_new(s->loop, &eo, &cb, &s->exec);
}

static void stop_one(exec_proc *p, void *arg) {
  (void)arg;
  proc_data *pd = exec_proc_get_data(p);
  if (pd)
    wake_waiters(pd, true);
}

void process_handlers_stop(warden_server *s) {
  if (s->exec)
    exec_engine_each(s->exec, stop_one, NULL);
}

/* Teardown: a process that was reaped but not yet drained when the server
 * stopped (output paused behind a full stdout) never gets on_exit, so its
 * data is taken here and freed once the engine is gone (the engine borrows
 * the sandbox spec until then). */
typedef struct orphan_data {
  proc_data **v;
  size_t n, cap;
} orphan_data;

static void take_data(exec_proc *p, void *arg) {
  orphan_data *o = arg;
  proc_data *pd = exec_proc_get_data(p);
  if (!pd)
    return;
  if (o->n == o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 16;
    proc_data **v = realloc(o->v, cap * sizeof *v);
    if (!v)
      return; /* out of memory at exit: leave it */
    o->v = v;
    o->cap = cap;
  }
  o->v[o->n++] = pd;
  exec_proc_set_data(p, NULL);
}

void process_handlers_free(warden_server *s) {
  orphan_data o = {0};
  if (s->exec) {
    exec_engine_each(s->exec, take_data, &o);
    exec_engine_free(s->exec);
  }
  s->exec = NULL;
  for (size_t i = 0; i < o.n; i++)
    free_proc_data(o.v[i]);
  free(o.v);
}
