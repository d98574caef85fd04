/* sandbox/readiness, sandbox/setup (with sandbox/setupCompleted) and
 * sandbox/refresh. The state itself lives in server/sandbox/setup.c; this
 * file orders the steps and reports them. */
#include "handlers/handlers.h"
#include "server/log.h"
#include "server/sandbox/sandbox.h"
#include "server/telemetry/telemetry.h"
#include "server/version.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

json_t *handlers_features_json(const policy_features *f);

static uint64_t now_ms(warden_server *s) {
  uv_update_time(s->loop);
  return uv_now(s->loop);
}

void handle_sandbox_readiness(void *server, rpc_request *req, json_t *params) {
  warden_server *s = server;
  (void)params;
  const policy_features *f = server_features(s);
  char *dir = sandbox_state_dir(s->cfg.state_dir);
  json_t *settings = sandbox_setup_settings(f, WARDEN_VERSION);
  const char *why = NULL;
  const char *status = dir ? sandbox_readiness_status(dir, settings, &why) : "notConfigured";
  if (why)
    LOGD("sandbox", "readiness %s: %s", status, why);
  json_decref(settings);
  free(dir);
  json_t *warnings = json_array();
  handlers_approvals_warnings(s, warnings);
  rpc_respond(req, json_pack("{s:s,s:i,s:o,s:o,s:o}", "status", status, "setupVersion",
                             SANDBOX_SETUP_VERSION, "features", handlers_features_json(f),
                             "warnings", warnings, "telemetry", telemetry_stats_json(s->telemetry)));
}

/* ---- setup ---- */

typedef struct setup_run {
  warden_server *s;
  char *state_dir;
  char *vdir;
  char *cwd;
  json_t *steps;
  uint64_t t0;
  char *error; /* first failed required step */
  unsigned warnings;
  policy_features f;
  char exe[PATH_MAX];
} setup_run;

/* One setup at a time: requests that arrive meanwhile are answered at once
 * and run after it, in order, each with its own cwd and its own
 * sandbox/setupCompleted. The queue owns its cwd copies. */
typedef struct queued_setup {
  struct queued_setup *next;
  char *cwd; /* NULL: no workspace */
} queued_setup;
static setup_run *g_running;
static queued_setup *g_queue_head, *g_queue_tail;
static void setup_start(warden_server *s, const char *cwd);

static void step(setup_run *r, const char *name, bool ok, bool required, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void step(setup_run *r, const char *name, bool ok, bool required, const char *fmt, ...) {
  char detail[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  json_array_append_new(r->steps, json_pack("{s:s,s:b,s:s}", "name", name, "ok", ok, "detail",
                                            detail));
  if (ok)
    return;
  if (required) {
    if (!r->error) {
      char msg[1200];
      snprintf(msg, sizeof msg, "%s: %s", name, detail);
      r->error = strdup(msg);
    }
    LOGE("sandbox", "setup step \"%s\" failed: %s", name, detail);
  } else {
    /* A hardening step that did not take: a warning in the report and a
     * metric line in the log, never a silent skip. */
    r->warnings++;
    LOGW("sandbox", "metric setup_hardening_failed=1 step=\"%s\" detail=\"%s\"", name, detail);
  }
}

static void setup_finish(setup_run *r) {
  warden_server *s = r->s;
  if (!r->error) {
    json_t *settings = sandbox_setup_settings(&r->f, WARDEN_VERSION);
    json_object_set_new(settings, "completedAtMs", json_integer((json_int_t)time(NULL) * 1000));
    int rc = sandbox_marker_write(r->vdir, settings);
    json_decref(settings);
    if (rc < 0)
      step(r, "write marker", false, true, "%s/setup.json: %s", r->vdir, strerror(-rc));
    else
      step(r, "write marker", true, true, "%s/setup.json", r->vdir);
  }
  uint64_t dur = now_ms(s) - r->t0;
  LOGI("sandbox", "setup %s in %llu ms (%u warnings)", r->error ? "failed" : "completed",
       (unsigned long long)dur, r->warnings);
  json_t *params = json_pack("{s:b,s:o,s:I,s:O}", "success", r->error == NULL, "error",
                             r->error ? json_string(r->error) : json_null(), "durationMs",
                             (json_int_t)dur, "steps", r->steps);
  if (s->rpc)
    rpc_notify(s->rpc, "sandbox/setupCompleted", params);
  else
    json_decref(params);
  json_decref(r->steps);
  free(r->state_dir);
  free(r->vdir);
  free(r->cwd);
  free(r->error);
  free(r);
  g_running = NULL;
  while (g_queue_head) {
    queued_setup *q = g_queue_head;
    g_queue_head = q->next;
    if (!g_queue_head)
      g_queue_tail = NULL;
    bool run = !s->shutting_down;
    if (run)
      setup_start(s, q->cwd);
    free(q->cwd);
    free(q);
    if (run)
      break;
  }
}

/* The workspace check: the default policy (or workspaceWrite) for cwd must
 * resolve and be enforceable here, so the first spawn there is not refused. */
static void check_workspace(setup_run *r) {
  warden_server *s = r->s;
  struct stat st;
  int e = stat(r->cwd, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
  if (e) {
    step(r, "workspace policy", false, true, "%s: %s", r->cwd, strerror(e));
    return;
  }
  policy_context ctx;
  handlers_policy_context(s, &ctx);
  ctx.features = r->f;
  policy_plan *plan = NULL;
  policy_error perr;
  memset(&perr, 0, sizeof perr);
  if (policy_resolve(s->cfg.default_sandbox, r->cwd, &ctx, "defaultSandbox", &plan, &perr) < 0) {
    step(r, "workspace policy", false, true, "%s: %s", r->cwd, perr.message);
    return;
  }
  if (plan->enforce && !plan->enforceable) {
    step(r, "workspace policy", false, true, "%s: %s", r->cwd,
         plan->reason ? plan->reason : "not enforceable");
  } else {
    step(r, "workspace policy", true, true, "%s: backend %s, network %s", r->cwd,
         policy_backend_name(plan->backend), policy_net_mode_name(plan->network));
  }
  policy_plan_free(plan);
}

static void selfcheck_done(void *arg, const char *failure, const exec_exit_info *info,
                           const char *output, size_t len) {
  setup_run *r = arg;
  const char *want = "warden " WARDEN_VERSION;
  if (failure) {
    step(r, "sandboxed self-check", false, true, "could not start %s: %s", r->exe, failure);
  } else if (info->signal || info->exit_code != 0 || len < strlen(want) ||
             strncmp(output, want, strlen(want)) != 0) {
    step(r, "sandboxed self-check", false, true,
         "%s --version in a read-only sandbox: exit %d, signal %d, output \"%.200s\"", r->exe,
         info->exit_code, info->signal, output);
  } else {
    step(r, "sandboxed self-check", true, true,
         "%s --version ran in a read-only sandbox with cwd %s (%llu ms)", r->exe, r->vdir,
         (unsigned long long)info->duration_ms);
  }
  if (r->cwd && !r->error)
    check_workspace(r);
  setup_finish(r);
}

/* warden's own binary must be readable and executable from inside a
 * sandbox, and the state directory reachable: run `warden --version` there
 * under readOnly with no network, exactly as a command would be run. */
static void start_selfcheck(setup_run *r) {
  warden_server *s = r->s;
  policy_context ctx;
  handlers_policy_context(s, &ctx);
  ctx.features = r->f;
  json_t *pol = json_pack("{s:s}", "type", "readOnly");
  policy_plan *plan = NULL;
  policy_error perr;
  memset(&perr, 0, sizeof perr);
  int rc = policy_resolve(pol, r->vdir, &ctx, "selfcheck", &plan, &perr);
  json_decref(pol);
  if (rc < 0) {
    step(r, "sandboxed self-check", false, true, "%s", perr.message);
    setup_finish(r);
    return;
  }
  if (!plan->enforceable) {
    step(r, "sandboxed self-check", false, true, "a read-only sandbox cannot be enforced: %s",
         plan->reason ? plan->reason : "?");
    policy_plan_free(plan);
    setup_finish(r);
    return;
  }
  sandbox_build_opts bo = {.cwd = r->vdir, .host_uid = getuid(), .host_gid = getgid(),
                           .exe_path = r->exe};
  sandbox_spec *spec = NULL;
  char *reason = NULL;
  rc = sandbox_spec_build(plan, &bo, &spec, &reason);
  policy_plan_free(plan);
  if (rc < 0) {
    step(r, "sandboxed self-check", false, true, "%s", reason ? reason : strerror(-rc));
    free(reason);
    setup_finish(r);
    return;
  }
  char *argv[] = {r->exe, "--version", NULL};
  rc = process_spawn_internal(s, argv, r->vdir, spec, selfcheck_done, r);
  if (rc < 0) {
    step(r, "sandboxed self-check", false, true, "spawn: %s", strerror(-rc));
    setup_finish(r);
  }
}

static void setup_start(warden_server *s, const char *cwd) {
  setup_run *r = calloc(1, sizeof *r);
  if (!r)
    return;
  g_running = r;
  r->s = s;
  r->t0 = now_ms(s);
  r->steps = json_array();
  r->cwd = cwd ? strdup(cwd) : NULL;

  /* 1. The state directory, then the marker goes first: an interrupted
   * setup must never be taken for a finished one. */
  r->state_dir = sandbox_state_dir(s->cfg.state_dir);
  int err = 0;
  bool created = false;
  r->vdir = r->state_dir ? sandbox_state_vdir(r->state_dir, true, &created, &err) : NULL;
  if (!r->vdir) {
    step(r, "state directory", false, true, "%s: %s",
         r->state_dir ? r->state_dir : "neither --state-dir, $XDG_STATE_HOME nor $HOME is set",
         err ? strerror(-err) : "cannot be named");
    setup_finish(r);
    return;
  }
  step(r, "state directory", true, true, "%s%s", r->vdir, created ? " (created)" : "");
  err = sandbox_marker_delete(r->vdir);
  step(r, "remove old marker", err == 0, true, "%s", err ? strerror(-err) : "done");
  if (r->error) {
    setup_finish(r);
    return;
  }

  /* 2. Kernel features, probed afresh (a kernel setting may have changed
   * since this server started). */
  sandbox_features_probe(&r->f);
  s->features = r->f;
  s->features_probed = true;
  bool usable = (r->f.user_namespaces || r->f.landlock_abi > 0) && r->f.seccomp;
  step(r, "kernel features", usable, true,
       "landlock ABI %d, user namespaces %s, network namespaces %s, seccomp %s",
       r->f.landlock_abi, r->f.user_namespaces ? "yes" : "no",
       r->f.network_namespaces ? "yes" : "no", r->f.seccomp ? "yes" : "no");
  /* Hardening layers: without them policies still run or are refused, but
   * the user should know what is missing. */
  step(r, "landlock layer", r->f.landlock_abi > 0, false,
       r->f.landlock_abi > 0 ? "ABI %d" : "unavailable (ABI %d): namespaces only",
       r->f.landlock_abi);
  step(r, "network isolation", r->f.network_namespaces, false, "%s",
       r->f.network_namespaces ? "network namespaces available"
                               : "no network namespaces: policies without network are refused");
  if (r->error) {
    setup_finish(r);
    return;
  }

  /* 3. warden itself, run from inside a sandbox (asynchronous). */
  ssize_t n = readlink("/proc/self/exe", r->exe, sizeof r->exe - 1);
  if (n <= 0) {
    step(r, "sandboxed self-check", false, true, "readlink /proc/self/exe: %s", strerror(errno));
    setup_finish(r);
    return;
  }
  r->exe[n] = '\0';
  start_selfcheck(r);
}

void handle_sandbox_setup(void *server, rpc_request *req, json_t *params) {
  warden_server *s = server;
  rpc_respond(req, json_pack("{s:b}", "started", 1));
  const char *cwd = json_string_value(json_object_get(params, "cwd"));
  if (g_running) {
    queued_setup *q = calloc(1, sizeof *q);
    if (!q || (cwd && !(q->cwd = strdup(cwd)))) {
      LOGE("sandbox", "out of memory queueing a setup; it does not run");
      free(q);
      return;
    }
    if (g_queue_tail)
      g_queue_tail->next = q;
    else
      g_queue_head = q;
    g_queue_tail = q;
    return;
  }
  setup_start(s, cwd);
}

/* ---- refresh ---- */

void handle_sandbox_refresh(void *server, rpc_request *req, json_t *params) {
  warden_server *s = server;
  const char *cwd = json_string_value(json_object_get(params, "cwd"));
  json_t *policy = json_object_get(params, "sandbox");
  policy_context ctx;
  handlers_policy_context(s, &ctx);
  policy_plan *plan = NULL;
  policy_error perr;
  memset(&perr, 0, sizeof perr);
  if (policy_resolve(policy, cwd, &ctx, "params.sandbox", &plan, &perr) < 0) {
    handlers_respond_policy_error(req, &perr);
    return;
  }
  json_t *changes = json_array(), *warnings = json_array();
  struct stat cst;
  if (stat(cwd, &cst) < 0)
    json_array_append_new(warnings, json_sprintf("cwd %s: %s (the policy is recorded for it "
                                                 "anyway)", cwd, strerror(errno)));
  else if (!S_ISDIR(cst.st_mode))
    json_array_append_new(warnings, json_sprintf("cwd %s is not a directory", cwd));
  char *dir = sandbox_state_dir(s->cfg.state_dir);
  int err = 0;
  bool created = false;
  char *vdir = dir ? sandbox_state_vdir(dir, true, &created, &err) : NULL;
  if (!vdir) {
    rpc_respond_errorf(req, RPC_INTERNAL_ERROR, "state directory %s: %s", dir ? dir : "(unset)",
                       err ? strerror(-err) : "cannot be named");
    goto out;
  }
  if (created)
    json_array_append_new(changes, json_sprintf("created state directory %s", vdir));
  json_t *settings = sandbox_setup_settings(server_features(s), WARDEN_VERSION);
  const char *why = NULL;
  const char *status = sandbox_readiness_status(dir, settings, &why);
  json_decref(settings);
  if (strcmp(status, "ready") != 0)
    json_array_append_new(warnings, json_sprintf("sandbox setup is %s (%s): run sandbox/setup",
                                                 status, why ? why : "?"));
  /* Check the plan as a spawn would, without touching the host (no mount
   * point stubs): what cannot be enforced is a warning here and a -32003
   * at spawn time. */
  const char *backend = "none";
  if (plan->enforce) {
    if (!plan->enforceable) {
      json_array_append_new(warnings, json_sprintf("this policy cannot be enforced here: %s",
                                                   plan->reason ? plan->reason : "?"));
    } else {
      sandbox_build_opts bo = {.cwd = cwd, .host_uid = getuid(), .host_gid = getgid(),
                               .exe_path = "/proc/self/exe"};
      sandbox_spec *spec = NULL;
      char *reason = NULL;
      int rc = sandbox_spec_build_dry(plan, &bo, &spec, &reason);
      if (rc < 0)
        json_array_append_new(warnings, json_sprintf("this policy cannot be enforced here: %s",
                                                     reason ? reason : strerror(-rc)));
      else
        backend = sandbox_spec_backend_name(spec);
      free(reason);
      sandbox_spec_free(spec);
    }
  }
  json_t *plan_json = policy_plan_to_json(plan);
  json_t *rec = json_pack("{s:o,s:s}", "plan", plan_json, "backend", backend);
  int rc = sandbox_workspace_record(vdir, cwd, rec);
  json_decref(rec);
  if (rc < 0) {
    rpc_respond_errorf(req, RPC_INTERNAL_ERROR, "%s/workspaces.json: %s", vdir, strerror(-rc));
    goto out;
  }
  if (rc > 0)
    json_array_append_new(changes, json_sprintf("applied policy for %s (backend %s, network %s)",
                                                cwd, backend,
                                                policy_net_mode_name(plan->network)));
  handlers_approvals_reload(s, warnings);
  rpc_respond(req, json_pack("{s:O,s:O}", "changes", changes, "warnings", warnings));
out:
  json_decref(changes);
  json_decref(warnings);
  free(vdir);
  free(dir);
  policy_plan_free(plan);
}
