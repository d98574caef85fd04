/* policy_transform: legacy <-> split, round trips of every legacy shape, and
 * refusals that name the entry that cannot be expressed. */
#include "fixture.h"

static json_t *transform_ok(json_t *sb, const char *cwd, const policy_context *ctx,
                            const char *to) {
  json_t *out = NULL;
  policy_error err;
  memset(&err, 0, sizeof err);
  int rc = policy_transform(sb, cwd, ctx, to, "params.sandbox", &out, &err);
  if (rc != 0) {
    char *s = json_dumps(sb, 0);
    fail_msg("transform to %s of %s failed: %s (%s)", to, s, err.message, err.path);
  }
  return out;
}

static json_t *plan_json(json_t *sb, const char *cwd, const policy_context *ctx, bool *leq) {
  policy_plan *plan = NULL;
  policy_error err;
  if (policy_resolve(sb, cwd, ctx, "params.sandbox", &plan, &err) != 0)
    fail_msg("resolve failed: %s (%s)", err.message, err.path);
  json_t *j = policy_plan_to_json(plan);
  if (leq)
    *leq = plan->legacy_equivalent;
  policy_plan_free(plan);
  return j;
}

/* Every legacy shape: legacy -> split -> legacy is the (normalized) input,
 * the split form resolves to the same plan, and it is legacy-equivalent. */
static void test_legacy_round_trips(void **state) {
  (void)state;
  static const char *const shapes[] = {
      "{\"type\":\"readOnly\"}",
      "{\"type\":\"readOnly\",\"networkAccess\":true}",
      "{\"type\":\"workspaceWrite\"}",
      "{\"type\":\"workspaceWrite\",\"networkAccess\":true}",
      "{\"type\":\"workspaceWrite\",\"excludeSlashTmp\":true}",
      "{\"type\":\"workspaceWrite\",\"excludeTmpdirEnvVar\":true}",
      "{\"type\":\"workspaceWrite\",\"excludeSlashTmp\":true,\"excludeTmpdirEnvVar\":true}",
      "{\"type\":\"workspaceWrite\",\"writableRoots\":[\"$T/main\",\"$T/link/new\"]}",
      ("{\"type\":\"workspaceWrite\",\"writableRoots\":[\"$T/w\"],\"networkAccess\":true,"
       "\"excludeSlashTmp\":true}"),
      "{\"type\":\"dangerFullAccess\"}",
      /* "/" by name keeps its protected paths, unlike dangerFullAccess */
      "{\"type\":\"workspaceWrite\",\"writableRoots\":[\"/\"]}",
      "{\"type\":\"workspaceWrite\",\"writableRoots\":[\"/\"],\"networkAccess\":true}",
      "{\"type\":\"profile\",\"name\":\":workspace\"}",
      "{\"type\":\"profile\",\"name\":\":read-only\"}",
  };
  static const char *const cwds[] = {"$T/nogit", "$T/wt", "$T/link"};
  for (size_t c = 0; c < sizeof cwds / sizeof cwds[0]; c++) {
    for (int proxy = 0; proxy < 2; proxy++) {
      for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        policy_context ctx = fx_ctx();
        char *tmpdir = fx_subst("$T/tmplink");
        char *cwd = fx_subst(cwds[c]);
        ctx.tmpdir = tmpdir;
        ctx.proxy_available = proxy;
        json_t *orig = fx_json(shapes[i]);
        json_t *legacy = transform_ok(orig, cwd, &ctx, "legacy");
        json_t *split = transform_ok(orig, cwd, &ctx, "split");
        json_t *back = transform_ok(split, cwd, &ctx, "legacy");
        fx_expect_json(shapes[i], back, legacy);
        bool leq = false;
        json_t *p1 = plan_json(orig, cwd, &ctx, NULL);
        json_t *p2 = plan_json(split, cwd, &ctx, &leq);
        fx_expect_json(shapes[i], p2, p1);
        if (!leq)
          fail_msg("%s: split form is not legacy-equivalent", shapes[i]);
        json_t *split2 = transform_ok(split, cwd, &ctx, "split");
        fx_expect_json("split -> split", split2, split);
        json_decref(split2);
        json_decref(p1);
        json_decref(p2);
        json_decref(back);
        json_decref(split);
        json_decref(legacy);
        json_decref(orig);
        free(cwd);
        free(tmpdir);
      }
    }
  }
}

typedef struct tcase {
  const char *name;
  const char *sandbox; /* template */
  const char *cwd;     /* template */
  const char *to;
  bool proxy;
  const char *want;    /* expected output (template), or NULL for a refusal */
  const char *path;    /* refusal: expected error path */
  const char *message; /* refusal: substring */
} tcase;

#define E(p, a) "{\"path\":\"" p "\",\"access\":\"" a "\"}"
#define SPLIT(entries, mode)                                                                   \
  "{\"type\":\"split\",\"fileSystem\":{\"entries\":[" entries "]},\"network\":{\"mode\":\"" mode \
  "\"}}"

static const tcase tcases[] = {
    {"workspaceWrite to split", "{\"type\":\"workspaceWrite\",\"writableRoots\":[\"$T/w/\"]}",
     "$T/nogit", "split", false,
     SPLIT(E(":root", "read") "," E(":cwd", "write") "," E(":slash_tmp", "write") "," E(
               ":tmpdir", "write") "," E("$T/w", "write"),
           "none"),
     NULL, NULL},
    {"workspaceWrite without temp dirs to split",
     "{\"type\":\"workspaceWrite\",\"networkAccess\":true,\"excludeSlashTmp\":true,"
     "\"excludeTmpdirEnvVar\":true}",
     "$T/nogit", "split", false, SPLIT(E(":root", "read") "," E(":cwd", "write"), "full"), NULL,
     NULL},
    {"readOnly to split, proxy", "{\"type\":\"readOnly\"}", "$T/nogit", "split", true,
     SPLIT(E(":root", "read"), "proxy"), NULL, NULL},
    {"dangerFullAccess to split", "{\"type\":\"dangerFullAccess\"}", "$T/nogit", "split", false,
     SPLIT(E(":root", "write"), "full"), NULL, NULL},
    {"externalSandbox to legacy is itself", "{\"type\":\"externalSandbox\"}", "$T/nogit", "legacy",
     false, "{\"type\":\"externalSandbox\",\"networkAccess\":\"restricted\"}", NULL, NULL},
    {"externalSandbox has no split shape", "{\"type\":\"externalSandbox\"}", "$T/nogit", "split",
     false, NULL, "params.sandbox.type", "externalSandbox has no split shape"},
    {"split to workspaceWrite",
     SPLIT(E(":root", "read") "," E(":cwd", "write") "," E(":slash_tmp", "write") "," E(
               "$T/w", "write"),
           "full"),
     "$T/nogit", "legacy", false,
     "{\"type\":\"workspaceWrite\",\"writableRoots\":[\"$T/w\"],\"networkAccess\":true,"
     "\"excludeTmpdirEnvVar\":true,\"excludeSlashTmp\":false}",
     NULL, NULL},
    {"a path entry equal to cwd counts as :cwd",
     SPLIT(E(":root", "read") "," E("$T/link", "write"), "none"), "$T/w", "legacy", false,
     "{\"type\":\"workspaceWrite\",\"writableRoots\":[\"$T/link\"],\"networkAccess\":false,"
     "\"excludeTmpdirEnvVar\":true,\"excludeSlashTmp\":true}",
     NULL, NULL},
    {"split to readOnly (:minimal is ignored under full read)",
     SPLIT(E(":root", "read") "," E(":minimal", "read"), "none"), "$T/nogit", "legacy", false,
     "{\"type\":\"readOnly\",\"networkAccess\":false}", NULL, NULL},
    {"split :root=write with full network is dangerFullAccess", SPLIT(E(":root", "write"), "full"),
     "$T/nogit", "legacy", false, "{\"type\":\"dangerFullAccess\"}", NULL, NULL},
    {"a none entry cannot be legacy",
     SPLIT(E(":root", "read") "," E(":cwd", "write") "," E("$T/w/docs", "none"), "none"),
     "$T/nogit", "legacy", false, NULL, "params.sandbox.fileSystem.entries[2].access",
     "entries[2] (\"$T/w/docs\" = none) cannot be expressed as a legacy policy"},
    {"restricted reads cannot be legacy", SPLIT(E(":minimal", "read") "," E(":cwd", "write"), "none"),
     "$T/nogit", "legacy", false, NULL, "params.sandbox.fileSystem.entries",
     "reads are restricted"},
    {"a read-only carveout in cwd fails the round trip",
     SPLIT(E(":root", "read") "," E(":cwd", "write") "," E("$T/w/docs", "read"), "none"), "$T/w",
     "legacy", false, NULL, "params.sandbox.fileSystem.entries[2].access",
     "is read here but would be write in the legacy shape"},
    {"nested carveouts fail the round trip",
     SPLIT(E(":root", "read") "," E("$T/w", "write") "," E("$T/w/docs", "read") "," E(
               "$T/w/docs/tmp", "write"),
           "none"),
     "$T/w", "legacy", false, NULL, "params.sandbox.fileSystem.entries[2].access",
     "$T/w/docs\" = read"},
    {":root=write with a read child",
     SPLIT(E(":root", "write") "," E("$T/w/docs", "read"), "full"), "$T/nogit", "legacy", false,
     NULL, "params.sandbox.fileSystem.entries[1].access", "carveout under :root=write"},
    {":root=write without network", SPLIT(E(":root", "write"), "none"), "$T/nogit", "legacy",
     false, NULL, "params.sandbox.network.mode", "full-disk write with network mode none"},
    {"writes outside cwd without :cwd", SPLIT(E(":root", "read") "," E("$T/w", "write"), "none"),
     "$T/nogit", "legacy", false, NULL, "params.sandbox.fileSystem.entries[1].access",
     "writes outside cwd"},
    {"proxy mode without the proxy", SPLIT(E(":root", "read"), "proxy"), "$T/nogit", "legacy",
     false, NULL, "params.sandbox.network.mode", "network mode proxy cannot be expressed"},
    {"none mode while the proxy runs", SPLIT(E(":root", "read"), "none"), "$T/nogit", "legacy",
     true, NULL, "params.sandbox.network.mode", "networkAccess false means mode proxy"},
    {"unknown target shape", "{\"type\":\"readOnly\"}", "$T/nogit", "yaml", false, NULL,
     "params.to", "must be \"legacy\" or \"split\""},
    {"profile with extends to legacy", "{\"type\":\"profile\",\"name\":\"team\"}", "$T/nogit",
     "legacy", false,
     "{\"type\":\"workspaceWrite\",\"writableRoots\":[\"$T/w\"],\"networkAccess\":false,"
     "\"excludeTmpdirEnvVar\":false,\"excludeSlashTmp\":false}",
     NULL, NULL},
    {"profile with a carveout cannot be legacy", "{\"type\":\"profile\",\"name\":\"carve\"}",
     "$T/w", "legacy", false, NULL, "profiles.carve.fileSystem.entries[0].access",
     "$T/w/docs\" = read"},
};

static void test_transform_table(void **state) {
  (void)state;
  json_t *profiles = fx_json(
      "{\"team\":{\"extends\":\":workspace\",\"fileSystem\":{\"entries\":[" E("$T/w", "write")
      "]}},\"carve\":{\"extends\":\":workspace\",\"fileSystem\":{\"entries\":[" E("$T/w/docs",
                                                                                  "read") "]}}}");
  for (size_t i = 0; i < sizeof tcases / sizeof tcases[0]; i++) {
    const tcase *c = &tcases[i];
    policy_context ctx = fx_ctx();
    ctx.proxy_available = c->proxy;
    ctx.profiles = profiles;
    char *cwd = fx_subst(c->cwd);
    json_t *sb = fx_json(c->sandbox);
    json_t *out = NULL;
    policy_error err;
    memset(&err, 0, sizeof err);
    int rc = policy_transform(sb, cwd, &ctx, c->to, "params.sandbox", &out, &err);
    if (c->want) {
      if (rc != 0)
        fail_msg("%s: refused: %s (%s)", c->name, err.message, err.path);
      json_t *want = fx_json(c->want);
      fx_expect_json(c->name, out, want);
      json_decref(want);
    } else {
      char *msg = fx_subst(c->message);
      if (rc != -EINVAL || out)
        fail_msg("%s: accepted (rc %d)", c->name, rc);
      if (strcmp(err.path, c->path) != 0 || !strstr(err.message, msg))
        fail_msg("%s: got path \"%s\" message \"%s\"; want \"%s\" ~ \"%s\"", c->name, err.path,
                 err.message, c->path, msg);
      free(msg);
      /* policy_resolve agrees: not legacy-equivalent (when it resolves). */
      policy_plan *plan = NULL;
      if (strcmp(c->to, "legacy") == 0 &&
          policy_resolve(sb, cwd, &ctx, "params.sandbox", &plan, &err) == 0) {
        if (plan->legacy_equivalent)
          fail_msg("%s: resolve says legacy-equivalent", c->name);
        policy_plan_free(plan);
      }
    }
    json_decref(out);
    json_decref(sb);
    free(cwd);
  }
  json_decref(profiles);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_legacy_round_trips),
      cmocka_unit_test(test_transform_table),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
