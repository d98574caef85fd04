/* Parsing and validation: every error names the entry (message) and gives
 * its JSON path. */
#include "fixture.h"

typedef struct ecase {
  const char *sandbox;  /* template */
  const char *profiles; /* template or NULL */
  const char *cwd;      /* NULL: $T */
  const char *path;     /* expected policy_error.path */
  const char *message;  /* expected substring of the message */
} ecase;

#define SPLIT(entries, mode)                                                                   \
  "{\"type\":\"split\",\"fileSystem\":{\"entries\":" entries "},\"network\":{\"mode\":\"" mode \
  "\"}}"

static const ecase cases[] = {
    {SPLIT("[{\"path\":\":root\",\"access\":\"read\"},{\"path\":\":future\",\"access\":\"write\"}]",
           "none"),
     NULL, NULL, "params.sandbox.fileSystem.entries[1].path", "unknown token \":future\""},
    {SPLIT("[{\"path\":\":root\",\"access\":\"rw\"}]", "none"), NULL, NULL,
     "params.sandbox.fileSystem.entries[0].access", "must be \"read\", \"write\" or \"none\""},
    {SPLIT("[{\"path\":\"docs\",\"access\":\"read\"}]", "none"), NULL, NULL,
     "params.sandbox.fileSystem.entries[0].path", "\"docs\" of entry 0 must be absolute"},
    {SPLIT("[{\"access\":\"read\"}]", "none"), NULL, NULL,
     "params.sandbox.fileSystem.entries[0].path", "needs a \"path\""},
    {SPLIT("[{\"path\":\"/x\",\"access\":\"read\",\"glob\":true}]", "none"), NULL, NULL,
     "params.sandbox.fileSystem.entries[0].glob", "unknown field \"glob\""},
    {SPLIT("[]", "offline"), NULL, NULL, "params.sandbox.network.mode",
     "must be \"none\", \"proxy\" or \"full\""},
    {"{\"type\":\"split\",\"fileSystem\":{\"entries\":[]}}", NULL, NULL, "params.sandbox.network",
     "required"},
    {"{\"type\":\"split\",\"network\":{\"mode\":\"none\"}}", NULL, NULL,
     "params.sandbox.fileSystem", "required"},
    {"{\"type\":\"split\",\"fileSystem\":{\"entries\":{}},\"network\":{\"mode\":\"none\"}}", NULL,
     NULL, "params.sandbox.fileSystem.entries", "must be an array"},
    {"{\"type\":\"sandboxed\"}", NULL, NULL, "params.sandbox.type", "unknown policy type"},
    {"{\"networkAccess\":true}", NULL, NULL, "params.sandbox.type", "required"},
    {"[1]", NULL, NULL, "params.sandbox", "must be a SandboxPolicy object"},
    {"{\"type\":\"workspaceWrite\",\"writableRoots\":[\"/ok\",\"rel/dir\"]}", NULL, NULL,
     "params.sandbox.writableRoots[1]", "\"rel/dir\" must be an absolute path"},
    {"{\"type\":\"readOnly\",\"networkAccess\":\"yes\"}", NULL, NULL,
     "params.sandbox.networkAccess", "true or false"},
    {"{\"type\":\"readOnly\",\"access\":\"full\"}", NULL, NULL, "params.sandbox.access",
     "unknown field \"access\""},
    {"{\"type\":\"externalSandbox\",\"networkAccess\":\"open\"}", NULL, NULL,
     "params.sandbox.networkAccess", "\"restricted\" or \"enabled\""},
    {"{\"type\":\"profile\",\"name\":\"nope\"}", "{\"team\":{\"type\":\"readOnly\"}}", NULL,
     "params.sandbox.name", "unknown profile \"nope\" (known: :read-only, :workspace, "
                            ":danger-full-access, team)"},
    {"{\"type\":\"profile\",\"name\":\"a\"}",
     "{\"a\":{\"extends\":\"b\"},\"b\":{\"extends\":\"a\"}}", NULL, "profiles.b.extends",
     "profile cycle: a -> b -> a"},
    {"{\"type\":\"profile\",\"name\":\"x\"}", "{\"x\":{\"type\":\"profile\",\"name\":\"x\"}}",
     NULL, "profiles.x.name", "profile cycle: x -> x"},
    {"{\"type\":\"profile\",\"name\":\"d\"}", "{\"d\":{\"extends\":\":danger-full-access\"}}",
     NULL, "profiles.d.extends", "only sandboxed (restricted) profiles can be extended"},
    {"{\"type\":\"profile\",\"name\":\"e\"}",
     "{\"e\":{\"extends\":\":workspace\",\"type\":\"readOnly\"}}", NULL, "profiles.e.type",
     "must be split-shaped"},
    {"{\"type\":\"profile\",\"name\":\"p\"}",
     "{\"p\":" SPLIT("[{\"path\":\":bogus\",\"access\":\"read\"}]", "none") "}", NULL,
     "profiles.p.fileSystem.entries[0].path", "unknown token \":bogus\""},
    {"{\"type\":\"profile\",\"name\":\"q\"}",
     "{\"q\":{\"extends\":\":workspace\",\"fileSystem\":{\"entries\":[{\"path\":\"/x\","
     "\"access\":\"all\"}]}}}",
     NULL, "profiles.q.fileSystem.entries[0].access", "must be \"read\""},
    {"{\"type\":\"readOnly\"}", NULL, "relative/cwd", "params.cwd", "must be an absolute path"},
};

static void test_errors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const ecase *c = &cases[i];
    policy_context ctx = fx_ctx();
    json_t *profiles = fx_json(c->profiles);
    json_t *sandbox = fx_json(c->sandbox);
    ctx.profiles = profiles;
    policy_plan *plan = NULL;
    policy_error err;
    memset(&err, 0, sizeof err);
    int rc = policy_resolve(sandbox, c->cwd ? c->cwd : fx_root, &ctx, "params.sandbox", &plan,
                            &err);
    if (rc >= 0)
      fail_msg("case %zu (%s): accepted", i, c->path);
    assert_null(plan);
    if (strcmp(err.path, c->path) != 0 || !strstr(err.message, c->message))
      fail_msg("case %zu: got path \"%s\" message \"%s\"; want path \"%s\" message ~ \"%s\"", i,
               err.path, err.message, c->path, c->message);
    /* policy_transform reports the same error. */
    json_t *out = NULL;
    policy_error err2;
    memset(&err2, 0, sizeof err2);
    assert_true(policy_transform(sandbox, c->cwd ? c->cwd : fx_root, &ctx, "split",
                                 "params.sandbox", &out, &err2) < 0);
    assert_null(out);
    assert_string_equal(err2.path, err.path);
    json_decref(sandbox);
    json_decref(profiles);
  }
}

/* A profile's depth is bounded even without a cycle. */
static void test_deep_profiles(void **state) {
  (void)state;
  json_t *profiles = json_object();
  for (int i = 0; i < 40; i++) {
    char name[16], next[16];
    snprintf(name, sizeof name, "p%d", i);
    snprintf(next, sizeof next, "p%d", i + 1);
    json_object_set_new(profiles, name, json_pack("{s:s}", "extends", i == 39 ? ":workspace" : next));
  }
  policy_context ctx = fx_ctx();
  ctx.profiles = profiles;
  json_t *sb = json_pack("{s:s,s:s}", "type", "profile", "name", "p0");
  policy_plan *plan = NULL;
  policy_error err;
  assert_int_equal(policy_resolve(sb, fx_root, &ctx, "params.sandbox", &plan, &err), -ELOOP);
  assert_non_null(strstr(err.message, "nests deeper than"));
  /* 20 levels are fine */
  json_object_set_new(profiles, "p20", json_pack("{s:s}", "extends", ":workspace"));
  assert_int_equal(policy_resolve(sb, fx_root, &ctx, "params.sandbox", &plan, &err), 0);
  policy_plan_free(plan);
  json_decref(sb);
  json_decref(profiles);
}

static void test_names(void **state) {
  (void)state;
  assert_string_equal(policy_net_mode_name(POLICY_NET_FULL), "full");
  assert_string_equal(policy_net_mode_name(POLICY_NET_NONE), "none");
  assert_string_equal(policy_net_mode_name(POLICY_NET_PROXY), "proxy");
  assert_string_equal(policy_backend_name(POLICY_BACKEND_NONE), "none");
  assert_string_equal(policy_backend_name(POLICY_BACKEND_LANDLOCK), "landlock");
  assert_string_equal(policy_backend_name(POLICY_BACKEND_NAMESPACES), "namespaces");
  policy_plan_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_deep_profiles),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
