/* initialize, initialized, shutdown. */
#include "handlers/handlers.h"
#include "protocol/protocol.h"
#include "server/exec/limits.h"
#include "server/log.h"
#include "server/sandbox/sandbox.h"
#include "server/version.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

const policy_features *server_features(warden_server *s) {
  if (!s->features_probed) {
    sandbox_features_probe(&s->features);
    s->features_probed = true;
  }
  return &s->features;
}

json_t *handlers_features_json(const policy_features *f);
json_t *handlers_features_json(const policy_features *f) {
  exec_limit_mech m[EXEC_LIMIT_COUNT];
  exec_limits_probe(m);
  json_t *lim = json_object();
  for (int i = 0; i < EXEC_LIMIT_COUNT; i++)
    json_object_set_new(lim, exec_limit_name(i), json_string(exec_limit_mech_name(m[i])));
  return json_pack("{s:i,s:b,s:b,s:b,s:o,s:s}", "landlockAbi", f->landlock_abi, "userNamespaces",
                   f->user_namespaces, "networkNamespaces", f->network_namespaces, "seccomp",
                   f->seccomp, "limits", lim, "cgroups", exec_limits_host_summary());
}

/* ---- the probe record ----
 *
 * initialize reports what the kernel can enforce, and probing it (a user
 * and network namespace in a child, the cgroup hierarchies) takes 2-3 ms:
 * most of a start. So the answer is kept in <state>/v<N>/probe.json under a
 * key of everything it depends on (kernel, this binary, uid and gid, cgroup,
 * the test-only overrides) and initialize answers from it when the key
 * matches. The probe still runs, right after the answer is sent, and the
 * record is corrected when the kernel says otherwise (a sysctl changed).
 * Nothing is enforced from the record: spawns and sandbox/readiness always
 * use the live probe, so a stale record can never make a sandbox weaker. */
#define PROBE_RECORD "probe.json"

static json_t *probe_key(void) {
  struct utsname u;
  if (uname(&u) < 0)
    return NULL;
  struct stat st;
  if (stat("/proc/self/exe", &st) < 0)
    return NULL;
  char exe[128], cg[1024] = "";
  snprintf(exe, sizeof exe, "%llu:%llu:%lld:%lld.%09ld", (unsigned long long)st.st_dev,
           (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
           st.st_mtim.tv_nsec);
  FILE *f = fopen("/proc/self/cgroup", "re");
  if (f) {
    size_t n = fread(cg, 1, sizeof cg - 1, f);
    cg[n] = '\0';
    fclose(f);
  }
  const char *tf = getenv("WARDEN_TEST_FEATURES"), *td = getenv("WARDEN_TEST_DISABLE");
  return json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s}", "warden", WARDEN_VERSION,
                   "kernel", u.release, "kernelVersion", u.version, "binary", exe, "uid",
                   (json_int_t)geteuid(), "gid", (json_int_t)getegid(), "cgroup", cg,
                   "testFeatures", tf ? tf : "", "testDisable", td ? td : "");
}

static char *probe_vdir(warden_server *s) {
  char *dir = sandbox_state_dir(s->cfg.state_dir);
  int err = 0;
  char *vdir = dir ? sandbox_state_vdir(dir, false, NULL, &err) : NULL;
  free(dir);
  return vdir;
}

/* The recorded sandbox object when its key is this one's, else NULL. */
static json_t *probe_record_lookup(warden_server *s, const json_t *key) {
  char *vdir = probe_vdir(s);
  json_t *rec = sandbox_state_record_read(vdir, PROBE_RECORD);
  free(vdir);
  json_t *sb = NULL;
  if (rec && json_equal(json_object_get(rec, "key"), key) &&
      json_is_object(json_object_get(rec, "sandbox")))
    sb = json_incref(json_object_get(rec, "sandbox"));
  json_decref(rec);
  return sb;
}

/* Only into a state directory that exists: creating one is sandbox/setup's
 * and the first sandboxed spawn's business, which say so. */
static void probe_record_store(warden_server *s, json_t *key, const json_t *sb) {
  char *vdir = probe_vdir(s);
  struct stat st;
  if (vdir && (stat(vdir, &st) < 0 || !S_ISDIR(st.st_mode))) {
    free(vdir);
    return;
  }
  json_t *rec = json_pack("{s:O,s:O}", "key", key, "sandbox", sb);
  int rc = vdir && rec ? sandbox_state_record_write(vdir, PROBE_RECORD, rec) : -ENOENT;
  if (rc < 0)
    LOGD("server", "probe record not written: %s", strerror(-rc));
  json_decref(rec);
  free(vdir);
}

void handle_initialize(void *server, rpc_request *req, json_t *params) {
  warden_server *s = server;
  json_t *caps = json_object_get(params, "capabilities");
  json_t *opt_out = json_object_get(caps, "optOutNotificationMethods");
  if (opt_out)
    rpc_set_opt_out(s->rpc, opt_out);
  handlers_approvals_client(s, json_is_true(json_object_get(caps, "networkApprovals")));
  const char *client = json_string_value(json_object_get(json_object_get(params, "clientInfo"), "name"));
  LOGI("server", "initialize from %s", client ? client : "?");
  struct utsname u;
  if (uname(&u) < 0)
    memset(&u, 0, sizeof u);
  json_t *key = s->features_probed ? NULL : probe_key();
  json_t *recorded = key ? probe_record_lookup(s, key) : NULL;
  json_t *sb = recorded ? json_incref(recorded) : handlers_features_json(server_features(s));
  json_t *result = json_pack("{s:{s:s,s:s},s:i,s:{s:s,s:s,s:s},s:O}", "serverInfo", "name",
                             "warden", "version", WARDEN_VERSION, "protocolVersion",
                             PROTOCOL_VERSION, "platform", "os", u.sysname, "arch", u.machine,
                             "kernel", u.release, "sandbox", sb);
  rpc_set_initialized(s->rpc);
  rpc_respond(req, result);

  /* The answer is on its way; now what it did not wait for. First the
   * zygote, while the heap is small (server/exec/zygote.c). */
  if (s->zygote && exec_zygote_pid() < 0 && !s->zygote_tried) {
    s->zygote_tried = true;
    int zrc = exec_zygote_start(s->warm_supervisors);
    if (zrc < 0)
      LOGW("server", "no zygote (%s): supervisors are forked from the server", strerror(-zrc));
  }
  if (key) {
    json_t *live = recorded ? handlers_features_json(server_features(s)) : json_incref(sb);
    if (!recorded || !json_equal(live, recorded)) {
      if (recorded)
        LOGW("server", "the kernel's sandbox features changed since the probe record; "
                       "initialize reported the recorded ones, spawns use the new ones");
      probe_record_store(s, key, live);
    }
    json_decref(live);
  }
  json_decref(sb);
  json_decref(recorded);
  json_decref(key);
}

static void shutdown_answer(void *arg) { rpc_respond(arg, json_object()); }

void handle_shutdown(void *server, rpc_request *req, json_t *params) {
  (void)params;
  server_shutdown(server, shutdown_answer, req);
}

void handlers_on_notification(void *server, const char *method, json_t *params) {
  (void)server;
  (void)params;
  /* The dispatcher passes only the client notifications of the protocol
   * (others are answered with an error, id null). */
  if (strcmp(method, "initialized") == 0)
    return;
  LOGW("rpc", "notification \"%s\" has no handler", method);
}
