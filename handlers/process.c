/* The process family: spawn, write, resize, terminate, read, release, list, and the
 * process/output and process/exited notifications. */
#include "handlers/handlers.h"
#include "server/base64.h"
#include "server/envpolicy.h"
#include "server/exec/limits.h"
#include "server/log.h"
#include "server/sandbox/sandbox.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

#define READ_DEFAULT_MAX_BYTES (1u << 20)

/* Limits on what process/spawn may ask for, checked before any work (a
 * request over one answers -32602 naming the field). The kernel's own
 * limits are per string (MAX_ARG_STRLEN, 128 KiB) and in total (ARG_MAX,
 * a quarter of the stack limit, 2 MiB by default, shared with the
 * environment warden passes on). */
#define SPAWN_MAX_ARGV_ENTRIES 16384u
#define SPAWN_MAX_ENV_ENTRIES 16384u
#define SPAWN_MAX_ARG_STRLEN (128u * 1024u)  /* one argument, or one NAME=value */
#define SPAWN_MAX_REQUEST_BYTES (1u << 20)   /* argv and env of the request together */

typedef struct read_waiter {
  struct read_waiter *next;
  struct proc_data *pd;
  exec_proc *proc; /* valid: waiters are answered before the proc can go */
  rpc_request *req;
  uint64_t after_seq;
  size_t max_bytes;
  uv_timer_t timer;
} read_waiter;

/* A request for a process whose spawn is not answered yet: executed right
 * after the spawn's answer, or answered with the spawn's error. */
typedef struct parked_op {
  struct parked_op *next;
  rpc_handler_fn fn;
  rpc_request *req;
  json_t *params; /* owned reference */
} parked_op;

/* Handler state of one process, from spawn to exit.
 *
 * Ownership: one proc_data per spawn, created by handle_process_spawn (or
 * process_spawn_internal) and linked in `procs` below until it is freed,
 * exactly once, by free_proc_data from one of: on_spawned with an error,
 * on_proc_exit, a spawn that fails before the engine took it, or
 * process_handlers_free. It owns everything the process holds on this side:
 * the sandbox spec (the exec engine borrows it from exec_spawn until
 * on_spawned(err) or on_exit returns, see exec.h), the proxy channel and
 * listeners, the long-poll waiters, the parked requests and the pending
 * release. process/release never frees it: a released running process is
 * killed and freed from on_proc_exit. */
typedef struct proc_data {
  struct proc_data *prev, *next; /* `procs` */
  warden_server *s;
  char *id;              /* processId, for requests that arrive before the spawn answered */
  rpc_request *spawn_req; /* until the spawn is answered */
  parked_op *parked, *parked_tail;
  rpc_request *release_req; /* answered after process/exited */
  sandbox_spec *spec;
  int proxy_chan;    /* proxy mode: where the supervisor sends the listeners, else -1 */
  bool proxied;      /* proxy mode: the proxy serves listeners owned by `id` */
  char *id_json; /* processId as a quoted JSON string, for the hot path */
  size_t id_json_len;
  char backend[16];
  char network[8];
  bool enforced;
  json_t *env_dropped; /* names the default filters left out (spawn result) */
  exec_limits limits; /* effective resource limits of the spawn */
  read_waiter *waiters;
  /* A process warden runs for itself (the sandbox/setup self-check): no
   * notifications, not listed, not addressable; its output is collected. */
  process_internal_fn internal;
  void *internal_arg;
  char *out;
  size_t out_len;
  /* telemetry (NULL when off): the process span, from spawn to exit, and
   * what a refused spawn's record names */
  struct tele_span *span;
  char *tele_argv0;
} proc_data;

/* Every proc_data not yet freed, newest first. */
static proc_data *procs;

static void link_proc_data(proc_data *pd) {
  pd->next = procs;
  if (procs)
    procs->prev = pd;
  procs = pd;
}

static void free_proc_data(proc_data *pd) {
  if (!pd)
    return;
  if (pd->prev)
    pd->prev->next = pd->next;
  else if (procs == pd)
    procs = pd->next;
  if (pd->next)
    pd->next->prev = pd->prev;
  free(pd->id);
  handlers_process_span_end(pd->span, NULL);
  free(pd->tele_argv0);
  if (pd->proxied)
    handlers_proxy_close(pd->s, pd->id);
  if (pd->proxy_chan >= 0)
    close(pd->proxy_chan);
  if (pd->spec) {
    sandbox_spec_cleanup_host(pd->spec);
    sandbox_spec_free(pd->spec);
  }
  json_decref(pd->env_dropped);
  free(pd->id_json);
  free(pd->out);
  free(pd);
}

static bool internal_id(const char *id) {
  return id && strncmp(id, PROCESS_INTERNAL_PREFIX, strlen(PROCESS_INTERNAL_PREFIX)) == 0;
}

/* The proc_data of a client process with this id that is not freed yet
 * (starting, running or being released). */
static proc_data *find_proc_data(const char *id) {
  for (proc_data *pd = procs; id && pd; pd = pd->next)
    if (!pd->internal && pd->id && strcmp(pd->id, id) == 0)
      return pd;
  return NULL;
}

/* A request for a process whose spawn is accepted but not answered yet waits
 * for it (process/write, read, resize, terminate, release pipelined behind
 * their spawn). Returns true when the request was parked. */
static bool park_if_starting(rpc_request *req, json_t *params, rpc_handler_fn fn) {
  proc_data *pd = find_proc_data(json_string_value(json_object_get(params, "processId")));
  if (!pd || !pd->spawn_req)
    return false;
  parked_op *op = calloc(1, sizeof *op);
  if (!op) {
    rpc_respond_errorf(req, RPC_INTERNAL_ERROR, "out of memory");
    return true;
  }
  op->fn = fn;
  op->req = req;
  op->params = json_incref(params);
  if (pd->parked_tail)
    pd->parked_tail->next = op;
  else
    pd->parked = op;
  pd->parked_tail = op;
  return true;
}

/* The spawn was answered: run the parked requests in order (err NULL), or
 * answer each with the spawn's error. */
static void run_parked(proc_data *pd, int code, const char *message, const json_t *data) {
  parked_op *op = pd->parked;
  pd->parked = pd->parked_tail = NULL;
  while (op) {
    parked_op *next = op->next;
    if (message)
      rpc_respond_error(op->req, code, message, data ? json_deep_copy(data) : NULL);
    else
      op->fn(pd->s, op->req, op->params);
    json_decref(op->params);
    free(op);
    op = next;
  }
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
  if (park_if_starting(req, params, handle_process_read))
    return;
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
    char msg[256], m2[300];
    snprintf(msg, sizeof msg, "%s: %s", err->syscall, strerror(err->err));
    json_t *data = json_pack("{s:i,s:s}", "errno", err->err, "syscall", err->syscall);
    handlers_log_spawn_refused(s, req, NULL, pd->id, pd->tele_argv0,
                               err->sandbox ? RPC_SANDBOX_DENIED : RPC_SPAWN_FAILED, msg,
                               err->err, err->syscall);
    int code = RPC_SPAWN_FAILED;
    const char *message = msg;
    if (err->sandbox) {
      json_object_set_new(data, "reason", json_string(msg));
      snprintf(m2, sizeof m2, "sandbox cannot be enforced: %s", msg);
      code = RPC_SANDBOX_DENIED;
      message = m2;
    }
    rpc_respond_error(req, code, message, json_incref(data));
    run_parked(pd, code, message, data); /* requests pipelined behind it share its error */
    json_decref(data);
    free_proc_data(pd);
    return;
  }
  exec_proc_set_data(proc, pd);
  pd->span = handlers_process_span_start(s, req, proc, pd->backend, pd->enforced, pd->network);
  int rc = 0;
  if (pd->proxy_chan >= 0) {
    pd->proxied = true;
    rc = handlers_proxy_serve(s, &pd->proxy_chan, pd->id);
  }
  if (rc < 0)
    LOGE("process", "%s: proxy listeners: %s", exec_proc_id(proc), strerror(-rc));
  json_t *result = json_pack("{s:s,s:i,s:{s:b,s:s,s:s},s:o}", "processId", exec_proc_id(proc),
                             "pid", exec_proc_pid(proc), "sandbox", "enforced", pd->enforced,
                             "backend", pd->backend, "network", pd->network, "limits",
                             handlers_applied_limits_json(proc, &pd->limits));
  json_object_set_new(result, "envDropped",
                      pd->env_dropped ? json_incref(pd->env_dropped) : json_array());
  rpc_respond(req, result);
  run_parked(pd, 0, NULL, NULL);
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
  if (pd && pd->proxied) { /* its namespace is empty now: nothing more can come to the proxy */
    handlers_proxy_close(s, pd->id);
    pd->proxied = false;
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
  json_object_set_new(params, "limit", info->limit ? json_string(info->limit) : json_null());
  rpc_notify(s->rpc, "process/exited", params);
  if (pd) {
    handlers_process_span_end(pd->span, info);
    pd->span = NULL;
    wake_waiters(pd, true);
    exec_proc_set_data(proc, NULL);
    if (pd->release_req)
      rpc_respond(pd->release_req, json_object()); /* after process/exited */
    pd->release_req = NULL;
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
    handlers_log_spawn_refused(s, req, params, NULL, NULL, RPC_SANDBOX_DENIED, msg, 0, NULL);
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
      .state_dir = s->cfg.state_dir,
  };
  char *reason = NULL;
  int rc = sandbox_spec_build(plan, &bo, &pd->spec, &reason);
  policy_plan_free(plan);
  if (rc < 0) {
    char msg[600];
    snprintf(msg, sizeof msg, "sandbox cannot be enforced: %s", reason ? reason : strerror(-rc));
    handlers_log_spawn_refused(s, req, params, NULL, NULL, RPC_SANDBOX_DENIED, msg, 0, NULL);
    rpc_respond_error(req, RPC_SANDBOX_DENIED, msg,
                      json_pack("{s:s}", "reason", reason ? reason : strerror(-rc)));
    free(reason);
    return -1;
  }
  pd->enforced = true;
  snprintf(pd->backend, sizeof pd->backend, "%s", sandbox_spec_backend_name(pd->spec));
  if (sandbox_spec_network(pd->spec) == POLICY_NET_PROXY &&
      (rc = sandbox_spec_proxy_channel(pd->spec, &pd->proxy_chan)) < 0) {
    handlers_log_spawn_refused(s, req, params, NULL, NULL, RPC_SANDBOX_DENIED, "proxy channel",
                               -rc, "socketpair");
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

static void over_limit(rpc_request *req, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void over_limit(rpc_request *req, const char *path, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  rpc_respond_error(req, RPC_INVALID_PARAMS, msg, json_pack("{s:s}", "path", path));
}

/* The limits above; answers the request and returns -1 when one is over. */
static int spawn_check_limits(rpc_request *req, json_t *params) {
  json_t *argv = json_object_get(params, "argv");
  json_t *env = json_object_get(params, "env");
  char path[320];
  if (json_array_size(argv) > SPAWN_MAX_ARGV_ENTRIES) {
    over_limit(req, "params.argv", "argv has %zu entries; the limit is %u",
                            json_array_size(argv), SPAWN_MAX_ARGV_ENTRIES);
    return -1;
  }
  if (json_is_object(env) && json_object_size(env) > SPAWN_MAX_ENV_ENTRIES) {
    over_limit(req, "params.env", "env has %zu entries; the limit is %u",
                            json_object_size(env), SPAWN_MAX_ENV_ENTRIES);
    return -1;
  }
  size_t total = 0;
  size_t i;
  json_t *v;
  json_array_foreach(argv, i, v) {
    size_t n = json_string_length(v) + 1;
    if (n > SPAWN_MAX_ARG_STRLEN) {
      snprintf(path, sizeof path, "params.argv[%zu]", i);
      over_limit(req, path, "%s is %zu bytes; the limit is %u", path, n - 1,
                              SPAWN_MAX_ARG_STRLEN - 1);
      return -1;
    }
    total += n;
  }
  const char *key;
  json_object_foreach(env, key, v) {
    size_t n = strlen(key) + 1 + json_string_length(v) + 1;
    if (n > SPAWN_MAX_ARG_STRLEN) {
      snprintf(path, sizeof path, "params.env.%.256s", key);
      over_limit(req, path, "%s is %zu bytes as NAME=value; the limit is %u", path,
                              n - 1, SPAWN_MAX_ARG_STRLEN - 1);
      return -1;
    }
    total += n;
  }
  if (total > SPAWN_MAX_REQUEST_BYTES) {
    over_limit(req, json_object_size(env) ? "params.env" : "params.argv",
                            "argv and env together are %zu bytes; the limit is %u", total,
                            SPAWN_MAX_REQUEST_BYTES);
    return -1;
  }
  return 0;
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
  if ((old && !exec_proc_exit_info(old)) || find_proc_data(id)) {
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
  if (spawn_check_limits(req, params) < 0)
    return;
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
  pd->id = strdup(id);
  link_proc_data(pd);
  if (s->telemetry) { /* for a refused spawn's record */
    const char *a0 = json_string_value(json_array_get(json_object_get(params, "argv"), 0));
    pd->tele_argv0 = a0 ? strdup(a0) : NULL;
  }
  json_t *idj = json_string(id);
  pd->id_json = json_dumps(idj, JSON_ENCODE_ANY);
  json_decref(idj);
  pd->id_json_len = pd->id_json ? strlen(pd->id_json) : 0;
  if (!pd->id_json || !pd->id || build_sandbox(s, req, params, cwd, pd) < 0) {
    if (!pd->id_json || !pd->id)
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
  json_t *trace_env = handlers_trace_env(s, req, env); /* NULL unless telemetry is on */
  if (trace_env)
    env = trace_env;
  /* The server's socket-locating variables reach only commands whose
   * network is full (the seccomp filter stops the sockets themselves). */
  pd->env_dropped = json_array();
  envpolicy_opts eo = {.policy = json_object_get(params, "envPolicy"),
                       .env = env,
                       .extra = pd->spec ? sandbox_spec_env(pd->spec) : NULL,
                       .drop_sockets = strcmp(pd->network, "full") != 0,
                       .dropped = pd->env_dropped};
  char **envp = pd->env_dropped ? envpolicy_build_ex(environ, &eo) : NULL;
  json_decref(env_copy);
  json_decref(trace_env);
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
  handlers_spawn_limits(s, params, pd->spec && pd->enforced, &pd->limits);
  o.limits = &pd->limits;
  pd->spawn_req = req;
  int rc = exec_spawn(s->exec, &o);
  free(argv);
  envpolicy_free(envp);
  if (rc < 0) {
    pd->spawn_req = NULL;
    free_proc_data(pd);
    if (rc == -EEXIST)
      invalid(req, "params.processId", "processId \"%.256s\" is already in use", id);
    else {
      handlers_log_spawn_refused(s, req, params, NULL, NULL, RPC_SPAWN_FAILED, strerror(-rc), -rc,
                                 "spawn");
      rpc_respond_error(req, RPC_SPAWN_FAILED, strerror(-rc),
                        json_pack("{s:i,s:s}", "errno", -rc, "syscall", "spawn"));
    }
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
  if (park_if_starting(req, params, handle_process_write))
    return;
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
  if (park_if_starting(req, params, handle_process_resize))
    return;
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
  if (park_if_starting(req, params, handle_process_terminate))
    return;
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
  if (park_if_starting(req, params, handle_process_release))
    return;
  exec_proc *p = find_or_fail(s, req, params);
  if (!p)
    return;
  proc_data *pd = exec_proc_get_data(p);
  if (pd && exec_proc_running(p)) {
    /* Running: the engine kills it, drops its further output and still
     * reports the exit; on_proc_exit sends process/exited, answers this
     * request and frees pd (the engine holds pd->spec until then). */
    wake_waiters(pd, true);
    pd->release_req = req;
    exec_proc_release(p);
    return;
  }
  exec_proc_release(p); /* exited: pd is already gone */
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
  link_proc_data(pd);
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
  exec_engine_opts eo = {.retain_bytes = s->cfg.retain_bytes,
                        .retain_none = s->cfg.retain_bytes == 0, /* --retain-bytes 0 */
                        .retain_exited_ms = 60000};
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

void process_handlers_free(warden_server *s) {
  if (s->exec)
    exec_engine_free(s->exec);
  s->exec = NULL;
  /* The engine is gone and calls nothing back: what it never reported
   * (processes not reaped or not drained at teardown) is freed here. */
  while (procs) {
    proc_data *pd = procs;
    if (pd->spawn_req)
      rpc_respond_errorf(pd->spawn_req, RPC_INTERNAL_ERROR, "server shutting down");
    run_parked(pd, RPC_INTERNAL_ERROR, "server shutting down", NULL);
    if (pd->release_req)
      rpc_respond(pd->release_req, json_object());
    pd->spawn_req = pd->release_req = NULL;
    wake_waiters(pd, true); /* the engine's procs are closing, not yet freed */
    free_proc_data(pd);
  }
}
