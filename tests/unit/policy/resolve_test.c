/* policy_resolve: plans for every shape over a real directory tree
 * (symlinks, worktrees, missing protected dirs, nested carveouts), the
 * most-specific rule, backends and enforceability. */
#include "fixture.h"

#include "server/policy/policy_internal.h"

typedef struct rcase {
  const char *name;
  const char *sandbox;  /* template; NULL = default */
  const char *cwd;      /* template */
  const char *tmpdir;   /* template or NULL */
  const char *profiles; /* template or NULL */
  bool proxy;
  const char *plan;     /* expected plan JSON (template) */
  int legacy_eq;        /* -1: not checked */
  const char *backend;  /* NULL: not checked */
} rcase;

#define EXCL "\"excludeSlashTmp\":true,\"excludeTmpdirEnvVar\":true"
#define FR "\"fullDiskRead\":true,\"fullDiskWrite\":false,\"readableRoots\":[]"
#define FULL                                                                                   \
  "{\"fullDiskRead\":true,\"fullDiskWrite\":true,\"readableRoots\":[],\"writableRoots\":[{"   \
  "\"root\":\"/\",\"readOnlySubpaths\":[]}],\"unreadableRoots\":[],\"network\":"

static const rcase cases[] = {
    {"default is workspaceWrite", NULL, "$T/nogit", NULL, NULL, false,
     "{" FR ",\"writableRoots\":[{\"root\":\"/tmp\",\"readOnlySubpaths\":[\"@P:/tmp\"]},"
     "{\"root\":\"$T/nogit\",\"readOnlySubpaths\":[\"@P:$T/nogit\"]}],"
     "\"unreadableRoots\":[],\"network\":\"none\"}",
     1, "namespaces"},
    {"readOnly with network", "{\"type\":\"readOnly\",\"networkAccess\":true}", "$T/nogit", NULL,
     NULL, false, "{" FR ",\"writableRoots\":[],\"unreadableRoots\":[],\"network\":\"full\"}", 1,
     "namespaces"},
    {"readOnly without network, proxy running", "{\"type\":\"readOnly\"}", "$T/nogit", NULL, NULL,
     true, "{" FR ",\"writableRoots\":[],\"unreadableRoots\":[],\"network\":\"proxy\"}", 1,
     "namespaces"},
    {"dangerFullAccess", "{\"type\":\"dangerFullAccess\"}", "$T/nogit", NULL, NULL, false,
     FULL "\"full\"}", 1, "none"},
    {"externalSandbox enabled", "{\"type\":\"externalSandbox\",\"networkAccess\":\"enabled\"}",
     "$T/nogit", NULL, NULL, false, FULL "\"full\"}", 1, "none"},
    {"externalSandbox restricted", "{\"type\":\"externalSandbox\"}", "$T/nogit", NULL, NULL, false,
     FULL "\"none\"}", 1, "none"},
    {"writable root under a symlinked parent, not existing yet",
     "{\"type\":\"workspaceWrite\",\"writableRoots\":[\"$T/link/newdir/sub\"]," EXCL "}",
     "$T/nogit", NULL, NULL, false,
     "{" FR ",\"writableRoots\":[{\"root\":\"$T/nogit\",\"readOnlySubpaths\":[\"@P:$T/nogit\"]},"
     "{\"root\":\"$T/w/newdir/sub\",\"readOnlySubpaths\":[\"@P:$T/w/newdir/sub\"]}],"
     "\"unreadableRoots\":[],\"network\":\"none\"}",
     1, "namespaces"},
    {"cwd through a symlink is canonical", "{\"type\":\"workspaceWrite\"," EXCL "}", "$T/link",
     NULL, NULL, false,
     "{" FR ",\"writableRoots\":[{\"root\":\"$T/w\",\"readOnlySubpaths\":[\"@P:$T/w\"]}],"
     "\"unreadableRoots\":[],\"network\":\"none\"}",
     1, NULL},
    {"git worktree: .git file and its gitdir target",
     "{\"type\":\"workspaceWrite\",\"writableRoots\":[\"$T/main\"]," EXCL "}", "$T/wt", NULL, NULL,
     false,
     "{" FR ",\"writableRoots\":[{\"root\":\"$T/main\",\"readOnlySubpaths\":[\"@P:$T/main\""
     "]},{\"root\":\"$T/wt\",\"readOnlySubpaths\":["
     "\"$T/main/.git/worktrees/wt\",\"@P:$T/wt\"]}],\"unreadableRoots\":[],\"network\":\"none\"}",
     1, NULL},
    {"a .git file without gitdir: protects only .git", "{\"type\":\"workspaceWrite\"," EXCL "}",
     "$T/badgit", NULL, NULL, false,
     "{" FR ",\"writableRoots\":[{\"root\":\"$T/badgit\",\"readOnlySubpaths\":[\"@P:$T/badgit\"]}"
     "],\"unreadableRoots\":[],\"network\":\"none\"}",
     1, NULL},
    {".codex replaced by a symlink keeps the literal path", "{\"type\":\"workspaceWrite\"," EXCL "}",
     "$T/sym", NULL, NULL, false,
     "{" FR ",\"writableRoots\":[{\"root\":\"$T/sym\",\"readOnlySubpaths\":[\"@P:$T/sym\"]}],"
     "\"unreadableRoots\":[],\"network\":\"none\"}",
     1, NULL},
    {"a writable file gets no protected names",
     "{\"type\":\"workspaceWrite\",\"writableRoots\":[\"$T/file.txt\"]," EXCL "}", "$T/nogit",
     NULL, NULL, false,
     "{" FR ",\"writableRoots\":[{\"root\":\"$T/file.txt\",\"readOnlySubpaths\":[]},"
     "{\"root\":\"$T/nogit\",\"readOnlySubpaths\":[\"@P:$T/nogit\"]}],"
     "\"unreadableRoots\":[],\"network\":\"none\"}",
     1, NULL},
    {"symlinked $TMPDIR is canonicalized",
     "{\"type\":\"workspaceWrite\",\"excludeSlashTmp\":true}", "$T/nogit", "$T/tmplink", NULL,
     false,
     "{" FR ",\"writableRoots\":[{\"root\":\"$T/nogit\",\"readOnlySubpaths\":[\"@P:$T/nogit\"]},"
     "{\"root\":\"$T/realtmp\",\"readOnlySubpaths\":[\"@P:$T/realtmp\"]}],"
     "\"unreadableRoots\":[],\"network\":\"none\"}",
     1, NULL},
    {"a relative $TMPDIR is ignored", "{\"type\":\"workspaceWrite\",\"excludeSlashTmp\":true}",
     "$T/nogit", "relative/tmp", NULL, false,
     "{" FR ",\"writableRoots\":[{\"root\":\"$T/nogit\",\"readOnlySubpaths\":[\"@P:$T/nogit\"]}],"
     "\"unreadableRoots\":[],\"network\":\"none\"}",
     1, NULL},
    {"nested carveouts /w=write /w/docs=read /w/docs/tmp=write",
     "{\"type\":\"split\",\"fileSystem\":{\"entries\":[{\"path\":\":root\",\"access\":\"read\"},"
     "{\"path\":\"$T/w\",\"access\":\"write\"},{\"path\":\"$T/w/docs\",\"access\":\"read\"},"
     "{\"path\":\"$T/w/docs/tmp\",\"access\":\"write\"}]},\"network\":{\"mode\":\"none\"}}",
     "$T/w", NULL, NULL, false,
     "{" FR ",\"writableRoots\":[{\"root\":\"$T/w\",\"readOnlySubpaths\":[\"@P:$T/w\","
     "\"$T/w/docs\",\"@P:$T/w/docs\",\"@P:$T/w/docs/tmp\"]},{\"root\":\"$T/w/docs/tmp\","
     "\"readOnlySubpaths\":[\"@P:$T/w/docs/tmp\"]}],"
     "\"unreadableRoots\":[],\"network\":\"none\"}",
     0, "namespaces"},
    {"reopened writable descendant under none",
     "{\"type\":\"split\",\"fileSystem\":{\"entries\":[{\"path\":\":root\",\"access\":\"read\"},"
     "{\"path\":\":cwd\",\"access\":\"write\"},{\"path\":\"$T/w/docs\",\"access\":\"none\"},"
     "{\"path\":\"$T/w/docs/tmp\",\"access\":\"write\"}]},\"network\":{\"mode\":\"full\"}}",
     "$T/w", NULL, NULL, false,
     "{\"fullDiskRead\":false,\"fullDiskWrite\":false,\"readableRoots\":[\"/\",\"$T/w\","
     "\"$T/w/docs/tmp\"],\"writableRoots\":[{\"root\":\"$T/w\",\"readOnlySubpaths\":["
     "\"@P:$T/w\",\"$T/w/docs\",\"@P:$T/w/docs\",\"@P:$T/w/docs/tmp\"]},{\"root\":\"$T/w/docs/tmp\",\"readOnlySubpaths\":["
     "\"@P:$T/w/docs/tmp\"]}],\"unreadableRoots\":[\"$T/w/docs\"],\"network\":\"full\"}",
     0, "namespaces"},
    {":root=write with a read child is not full-disk write",
     "{\"type\":\"split\",\"fileSystem\":{\"entries\":[{\"path\":\":root\",\"access\":\"write\"},"
     "{\"path\":\"$T/w/docs\",\"access\":\"read\"}]},\"network\":{\"mode\":\"full\"}}",
     "$T/nogit", NULL, NULL, false,
     "{" FR ",\"writableRoots\":[{\"root\":\"/\",\"readOnlySubpaths\":[\"@P:/\",\"@P:/var\",\"@P:/var/tmp\",\"@P:$T\",\"@P:$T/nogit\",\"$T/w/docs\"]}],"
     "\"unreadableRoots\":[],\"network\":\"full\"}",
     0, "namespaces"},
    {":root=write alone is full-disk write (namespaces where allowed, as spawn)",
     "{\"type\":\"split\",\"fileSystem\":{\"entries\":[{\"path\":\":root\",\"access\":\"write\"}]},"
     "\"network\":{\"mode\":\"full\"}}",
     "$T/nogit", NULL, NULL, false, FULL "\"full\"}", 1, "namespaces"},
    {"same-specificity write override keeps full-disk write",
     "{\"type\":\"split\",\"fileSystem\":{\"entries\":[{\"path\":\":root\",\"access\":\"write\"},"
     "{\"path\":\"$T/w\",\"access\":\"read\"},{\"path\":\"$T/w\",\"access\":\"write\"}]},"
     "\"network\":{\"mode\":\"full\"}}",
     "$T/nogit", NULL, NULL, false, FULL "\"full\"}", 1, "namespaces"},
    {"duplicate :root deny: no full write, / never unreadable",
     "{\"type\":\"split\",\"fileSystem\":{\"entries\":[{\"path\":\":root\",\"access\":\"write\"},"
     "{\"path\":\":root\",\"access\":\"none\"},{\"path\":\":cwd\",\"access\":\"write\"}]},"
     "\"network\":{\"mode\":\"none\"}}",
     "$T/nogit", NULL, NULL, false,
     "{\"fullDiskRead\":false,\"fullDiskWrite\":false,\"readableRoots\":[\"$T/nogit\"],"
     "\"writableRoots\":[{\"root\":\"$T/nogit\",\"readOnlySubpaths\":[\"@P:$T/nogit\"]}],"
     "\"unreadableRoots\":[],\"network\":\"none\"}",
     0, "namespaces"},
    {"tie on one path: none beats write",
     "{\"type\":\"split\",\"fileSystem\":{\"entries\":[{\"path\":\":root\",\"access\":\"read\"},"
     "{\"path\":\"$T/w\",\"access\":\"write\"},{\"path\":\"$T/w\",\"access\":\"none\"}]},"
     "\"network\":{\"mode\":\"none\"}}",
     "$T/nogit", NULL, NULL, false,
     "{\"fullDiskRead\":false,\"fullDiskWrite\":false,\"readableRoots\":[\"/\"],"
     "\"writableRoots\":[],\"unreadableRoots\":[\"$T/w\"],\"network\":\"none\"}",
     0, "namespaces"},
    {"writable root inside another root's .git is dropped",
     "{\"type\":\"workspaceWrite\",\"writableRoots\":[\"$T/w/.git/hooks\"]," EXCL "}", "$T/w",
     NULL, NULL, false,
     "{" FR ",\"writableRoots\":[{\"root\":\"$T/w\",\"readOnlySubpaths\":[\"@P:$T/w\"]}],"
     "\"unreadableRoots\":[],\"network\":\"none\"}",
     1, NULL},
    {"built-in profile :read-only", "{\"type\":\"profile\",\"name\":\":read-only\"}", "$T/nogit",
     NULL, NULL, false, "{" FR ",\"writableRoots\":[],\"unreadableRoots\":[],\"network\":\"none\"}",
     1, NULL},
    {"built-in profile :danger-full-access",
     "{\"type\":\"profile\",\"name\":\":danger-full-access\"}", "$T/nogit", NULL, NULL, false,
     FULL "\"full\"}", 1, "none"},
    {"config profile extends :workspace",
     "{\"type\":\"profile\",\"name\":\"team\"}", "$T/nogit", NULL,
     "{\"team\":{\"extends\":\":workspace\",\"fileSystem\":{\"entries\":[{\"path\":\"$T/w\","
     "\"access\":\"write\"}]},\"network\":{\"mode\":\"full\"}}}",
     false,
     "{" FR ",\"writableRoots\":[{\"root\":\"/tmp\",\"readOnlySubpaths\":[\"@P:/tmp\"]},"
     "{\"root\":\"$T/nogit\",\"readOnlySubpaths\":[\"@P:$T/nogit\"]},"
     "{\"root\":\"$T/w\",\"readOnlySubpaths\":[\"@P:$T/w\"]}],"
     "\"unreadableRoots\":[],\"network\":\"full\"}",
     1, NULL},
    {"extends merges to the more permissive access and inherits network",
     "{\"type\":\"profile\",\"name\":\"child\"}", "$T/nogit", NULL,
     "{\"base\":{\"type\":\"split\",\"fileSystem\":{\"entries\":[{\"path\":\":root\",\"access\":"
     "\"read\"},{\"path\":\":cwd\",\"access\":\"write\"}]},\"network\":{\"mode\":\"full\"}},"
     "\"child\":{\"extends\":\"base\",\"fileSystem\":{\"entries\":[{\"path\":\":cwd\",\"access\":"
     "\"none\"}]}}}",
     false,
     "{" FR ",\"writableRoots\":[{\"root\":\"$T/nogit\",\"readOnlySubpaths\":[\"@P:$T/nogit\"]}],"
     "\"unreadableRoots\":[],\"network\":\"full\"}",
     1, NULL},
    {"profile alias chain", "{\"type\":\"profile\",\"name\":\"a\"}", "$T/nogit", NULL,
     "{\"a\":{\"type\":\"profile\",\"name\":\"b\"},\"b\":{\"type\":\"readOnly\"}}", false,
     "{" FR ",\"writableRoots\":[],\"unreadableRoots\":[],\"network\":\"none\"}", 1, NULL},
};

static void run_case(const rcase *c) {
  policy_context ctx = fx_ctx();
  char *tmpdir = fx_subst(c->tmpdir);
  char *cwd = fx_subst(c->cwd);
  json_t *profiles = fx_json(c->profiles);
  json_t *sandbox = fx_json(c->sandbox);
  json_t *want = fx_json(c->plan);
  ctx.tmpdir = tmpdir;
  ctx.profiles = profiles;
  ctx.proxy_available = c->proxy;
  policy_plan *plan = NULL;
  policy_error err;
  memset(&err, 0, sizeof err);
  int rc = policy_resolve(sandbox, cwd, &ctx, "params.sandbox", &plan, &err);
  if (rc != 0)
    fail_msg("%s: policy_resolve failed: %s (%s)", c->name, err.message, err.path);
  json_t *got = policy_plan_to_json(plan);
  fx_sort_subpaths(want);
  fx_expect_json(c->name, got, want);
  if (c->legacy_eq >= 0 && plan->legacy_equivalent != (c->legacy_eq == 1))
    fail_msg("%s: legacy_equivalent is %d", c->name, plan->legacy_equivalent);
  if (c->backend && strcmp(policy_backend_name(plan->backend), c->backend) != 0)
    fail_msg("%s: backend %s, want %s", c->name, policy_backend_name(plan->backend), c->backend);
  json_decref(got);
  json_decref(want);
  json_decref(sandbox);
  json_decref(profiles);
  policy_plan_free(plan);
  free(cwd);
  free(tmpdir);
}

static void test_resolve_table(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    run_case(&cases[i]);
}

/* Most specific entry wins; ties: none > write > read. */
static void test_most_specific(void **state) {
  (void)state;
  static const struct {
    const char *entries; /* template JSON array */
    const char *path;    /* template */
    pol_access want;
  } rows[] = {
      {"[{\"path\":\":cwd\",\"access\":\"write\"},{\"path\":\"$T/w/docs\",\"access\":\"read\"},"
       "{\"path\":\"$T/w/docs/p\",\"access\":\"none\"},{\"path\":\"$T/w/docs/p/pub\",\"access\":"
       "\"write\"}]",
       "$T/w", POL_ACC_WRITE},
      {NULL, "$T/w/docs", POL_ACC_READ},
      {NULL, "$T/w/docs/x", POL_ACC_READ},
      {NULL, "$T/w/docs/p", POL_ACC_NONE},
      {NULL, "$T/w/docs/p/pub/deep", POL_ACC_WRITE},
      {NULL, "$T/nogit", POL_ACC_NONE}, /* no entry covers it */
      {"[{\"path\":\"$T/w\",\"access\":\"read\"},{\"path\":\"$T/w\",\"access\":\"write\"}]",
       "$T/w", POL_ACC_WRITE},
      {"[{\"path\":\"$T/w\",\"access\":\"none\"},{\"path\":\"$T/w\",\"access\":\"write\"}]",
       "$T/w", POL_ACC_NONE},
      {"[{\"path\":\"$T/link/docs\",\"access\":\"read\"},{\"path\":\"$T/w\",\"access\":\"write\"}]",
       "$T/w/docs/tmp", POL_ACC_READ}, /* symlinked spelling of the same directory */
      {"[{\"path\":\":root\",\"access\":\"write\"},{\"path\":\":minimal\",\"access\":\"read\"}]",
       "/usr", POL_ACC_WRITE}, /* :minimal never narrows */
      {"[{\"path\":\":root\",\"access\":\"none\"},{\"path\":\":minimal\",\"access\":\"read\"}]",
       "/usr/bin", POL_ACC_READ},
      {"[{\"path\":\"/usr\",\"access\":\"none\"},{\"path\":\":minimal\",\"access\":\"read\"}]",
       "/usr/bin", POL_ACC_NONE}, /* an explicit none is not overridden */
  };
  const char *entries = NULL;
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    if (rows[i].entries)
      entries = rows[i].entries;
    char *e = fx_subst(entries);
    char *doc = malloc(strlen(e) + 128);
    sprintf(doc, "{\"type\":\"split\",\"fileSystem\":{\"entries\":%s},\"network\":{\"mode\":"
                 "\"none\"}}",
            e);
    json_t *j = json_loads(doc, 0, NULL);
    assert_non_null(j);
    policy_context ctx = fx_ctx();
    pol_ir ir;
    policy_error err;
    assert_int_equal(pol_parse(j, &ctx, "sandbox", &ir, &err), 0);
    char cwd[PATH_MAX + 8];
    snprintf(cwd, sizeof cwd, "%s/w", fx_root);
    pol_rset rs;
    assert_int_equal(pol_rset_build(&ir, cwd, &ctx, &rs), 0);
    char *p = fx_subst(rows[i].path);
    if (strcmp(p, "/usr/bin") == 0 || strcmp(p, "/usr") == 0) {
      char *canon = realpath(p, NULL);
      if (canon) {
        free(p);
        p = canon;
      }
    }
    pol_access got = pol_rset_access(&rs, p);
    if (got != rows[i].want)
      fail_msg("row %zu: %s is %s, want %s", i, p, pol_access_name(got),
               pol_access_name(rows[i].want));
    free(p);
    pol_rset_free(&rs);
    pol_ir_free(&ir);
    json_decref(j);
    free(doc);
    free(e);
  }
}

/* :minimal adds the platform read roots that exist, and only where reads
 * are restricted. */
static void test_minimal(void **state) {
  (void)state;
  policy_context ctx = fx_ctx();
  char cwd[PATH_MAX + 8];
  snprintf(cwd, sizeof cwd, "%s/nogit", fx_root);
  json_t *j = json_loads("{\"type\":\"split\",\"fileSystem\":{\"entries\":[{\"path\":\":minimal\","
                         "\"access\":\"read\"},{\"path\":\":cwd\",\"access\":\"write\"}]},"
                         "\"network\":{\"mode\":\"none\"}}",
                         0, NULL);
  policy_plan *plan = NULL;
  policy_error err;
  assert_int_equal(policy_resolve(j, cwd, &ctx, "params.sandbox", &plan, &err), 0);
  assert_false(plan->full_disk_read);
  char *usr = realpath("/usr", NULL);
  char *etc = realpath("/etc", NULL);
  bool has_usr = false, has_etc = false, has_cwd = false, has_proc = false;
  for (size_t i = 0; i < plan->n_readable; i++) {
    has_usr |= usr && strcmp(plan->readable_roots[i], usr) == 0;
    has_etc |= etc && strcmp(plan->readable_roots[i], etc) == 0;
    has_cwd |= strcmp(plan->readable_roots[i], cwd) == 0;
    has_proc |= strcmp(plan->readable_roots[i], "/proc") == 0;
    if (i > 0)
      assert_true(strcmp(plan->readable_roots[i - 1], plan->readable_roots[i]) < 0);
  }
  assert_true(has_usr && has_etc && has_cwd);
  assert_false(has_proc);
  assert_false(plan->legacy_equivalent);
  free(usr);
  free(etc);
  policy_plan_free(plan);
  json_decref(j);
}

/* Backend choice and enforceability against kernel features. */
static void test_enforceable(void **state) {
  (void)state;
  static const struct {
    const char *sandbox;
    int landlock;
    bool userns, netns, proxy;
    const char *backend;
    bool enforceable;
    const char *reason; /* substring */
  } rows[] = {
      /* full network: the namespaces backend wherever user namespaces
       * are allowed, as process/spawn does (Landlock or not) */
      {"{\"type\":\"readOnly\",\"networkAccess\":true}", 0, true, true, false, "namespaces", true,
       NULL},
      {"{\"type\":\"readOnly\",\"networkAccess\":true}", 6, true, true, false, "namespaces", true,
       NULL},
      /* Landlock alone only where namespaces are blocked, and from ABI 3 */
      {"{\"type\":\"readOnly\",\"networkAccess\":true}", 3, false, false, false, "landlock", true,
       NULL},
      {"{\"type\":\"readOnly\",\"networkAccess\":true}", 1, false, false, false, "namespaces",
       false, "ABI 3"},
      {"{\"type\":\"readOnly\",\"networkAccess\":true}", 0, false, false, false, "namespaces",
       false, "ABI 3"},
      {"{\"type\":\"workspaceWrite\"}", 4, false, true, false, "namespaces", false,
       "read-only subpaths"},
      {"{\"type\":\"readOnly\"}", 4, true, false, false, "namespaces", false,
       "network namespace"},
      {"{\"type\":\"split\",\"fileSystem\":{\"entries\":[{\"path\":\":root\",\"access\":\"read\"}]},"
       "\"network\":{\"mode\":\"proxy\"}}",
       4, true, true, false, "namespaces", false, "proxy"},
      {"{\"type\":\"split\",\"fileSystem\":{\"entries\":[{\"path\":\":root\",\"access\":\"read\"}]},"
       "\"network\":{\"mode\":\"proxy\"}}",
       4, true, true, true, "namespaces", true, NULL},
      {"{\"type\":\"dangerFullAccess\"}", 0, false, false, false, "none", true, NULL},
      {"{\"type\":\"externalSandbox\"}", 0, false, false, false, "none", true, NULL},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    policy_context ctx = fx_ctx();
    ctx.features.landlock_abi = rows[i].landlock;
    ctx.features.user_namespaces = rows[i].userns;
    ctx.features.network_namespaces = rows[i].netns;
    ctx.proxy_available = rows[i].proxy;
    json_t *j = json_loads(rows[i].sandbox, 0, NULL);
    policy_plan *plan = NULL;
    policy_error err;
    assert_int_equal(policy_resolve(j, fx_root, &ctx, "params.sandbox", &plan, &err), 0);
    if (strcmp(policy_backend_name(plan->backend), rows[i].backend) != 0 ||
        plan->enforceable != rows[i].enforceable)
      fail_msg("row %zu: backend %s enforceable %d (%s)", i, policy_backend_name(plan->backend),
               plan->enforceable, plan->reason ? plan->reason : "");
    if (rows[i].reason) {
      assert_non_null(plan->reason);
      if (!strstr(plan->reason, rows[i].reason))
        fail_msg("row %zu: reason \"%s\" lacks \"%s\"", i, plan->reason, rows[i].reason);
    } else {
      assert_null(plan->reason);
    }
    policy_plan_free(plan);
    json_decref(j);
  }
}

/* Plans are deterministic: resolving twice gives the same JSON. */
/* policy_plan.private_tmp: /tmp from workspaceWrite's implicit temp dirs
 * only (issue 9, item 3: the sandbox binds the workspace's own /tmp). */
static void test_private_tmp(void **state) {
  (void)state;
  static const struct {
    const char *sandbox, *tmpdir;
    bool want;
  } cases[] = {
      {"{\"type\":\"workspaceWrite\"}", NULL, true},
      {"{\"type\":\"workspaceWrite\"}", "/tmp", true},
      {"{\"type\":\"workspaceWrite\",\"excludeSlashTmp\":true}", "/tmp", true},
      {"{\"type\":\"workspaceWrite\",\"excludeSlashTmp\":true,\"excludeTmpdirEnvVar\":true}",
       "/tmp", false},
      {"{\"type\":\"workspaceWrite\",\"writableRoots\":[\"/tmp\"]}", NULL, false},
      {"{\"type\":\"workspaceWrite\",\"writableRoots\":[\"/\"]}", NULL, false},
      {"{\"type\":\"readOnly\"}", NULL, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    policy_context ctx = fx_ctx();
    ctx.tmpdir = cases[i].tmpdir;
    char *cwd = fx_subst("$T/nogit");
    json_t *sb = fx_json(cases[i].sandbox);
    policy_plan *plan = NULL;
    policy_error err;
    assert_int_equal(policy_resolve(sb, cwd, &ctx, "sandbox", &plan, &err), 0);
    if (plan->private_tmp != cases[i].want)
      fail_msg("%s (TMPDIR %s): private_tmp %d", cases[i].sandbox,
               cases[i].tmpdir ? cases[i].tmpdir : "-", plan->private_tmp);
    assert_string_equal(plan->workspace, cwd);
    policy_plan_free(plan);
    json_decref(sb);
    free(cwd);
  }
}

/* Git pointers (issue 9, item 9): a missing target is protected; a target
 * reached through a symlink inside a writable root is refused with a
 * reason; a symlink loop outside every writable root ends. */
static void test_gitdir_pointers(void **state) {
  (void)state;
  fx_mkdirs("gp/ws");
  fx_mkdirs("gp/real/wt");
  fx_symlink("../real", "gp/ws/link");
  fx_symlink("loop2", "gp/loop1");
  fx_symlink("loop1", "gp/loop2");
  char buf[PATH_MAX * 2];
  policy_context ctx = fx_ctx();
  json_t *sb = fx_json("{\"type\":\"workspaceWrite\",\"excludeSlashTmp\":true,"
                       "\"excludeTmpdirEnvVar\":true}");
  char *ws = fx_subst("$T/gp/ws");
  struct {
    const char *pointer;
    bool enforceable;
    const char *protected_path; /* template or NULL */
  } cases[] = {
      {"gitdir: $T/gp/ws/link/wt\n", false, NULL},
      {"gitdir: link/wt\n", false, NULL},
      {"gitdir: $T/gp/real/wt\n", true, "$T/gp/real/wt"},
      {"gitdir: .store/wt\n", true, "$T/gp/ws/.store/wt"},
      {"gitdir: $T/gp/loop1/wt\n", true, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *ptr = fx_subst(cases[i].pointer);
    snprintf(buf, sizeof buf, "%s/gp/ws/.git", fx_root);
    FILE *f = fopen(buf, "w");
    assert_non_null(f);
    fputs(ptr, f);
    fclose(f);
    policy_plan *plan = NULL;
    policy_error err;
    assert_int_equal(policy_resolve(sb, ws, &ctx, "sandbox", &plan, &err), 0);
    if (plan->enforceable != cases[i].enforceable)
      fail_msg("%s: enforceable %d (%s)", ptr, plan->enforceable,
               plan->reason ? plan->reason : "-");
    if (!plan->enforceable)
      assert_non_null(strstr(plan->reason, "symlink"));
    if (cases[i].protected_path) {
      char *want = fx_subst(cases[i].protected_path);
      bool found = false;
      for (size_t k = 0; k < plan->n_writable; k++)
        for (size_t j = 0; j < plan->writable_roots[k].n_read_only; j++)
          found = found || strcmp(plan->writable_roots[k].read_only_subpaths[j], want) == 0;
      if (!found)
        fail_msg("%s: %s is not protected", ptr, want);
      free(want);
    }
    policy_plan_free(plan);
    free(ptr);
  }
  free(ws);
  json_decref(sb);
}

/* A cwd inside .git is read-only; a cwd inside a .codex that no writable
 * root walks through (codex's ~/.codex/worktrees/<id>) is a workspace. */
static void test_cwd_inside_metadata(void **state) {
  (void)state;
  fx_mkdirs("cm/repo/.git/hooks");
  fx_mkdirs("cm/home/.codex/worktrees/x");
  policy_context ctx = fx_ctx();
  json_t *sb = fx_json("{\"type\":\"workspaceWrite\",\"excludeSlashTmp\":true,"
                       "\"excludeTmpdirEnvVar\":true}");
  json_t *wide = fx_json("{\"type\":\"workspaceWrite\",\"excludeSlashTmp\":true,"
                         "\"excludeTmpdirEnvVar\":true,\"writableRoots\":[\"$T/cm/home\"]}");
  struct {
    json_t *sb;
    const char *cwd;
    size_t n_writable;
  } cases[] = {
      {sb, "$T/cm/repo/.git/hooks", 0},
      {sb, "$T/cm/repo/.git", 0},
      {sb, "$T/cm/home/.codex/worktrees/x", 1},
      {wide, "$T/cm/home/.codex/worktrees/x", 1}, /* only $T/cm/home: its .codex is protected */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *cwd = fx_subst(cases[i].cwd);
    policy_plan *plan = NULL;
    policy_error err;
    assert_int_equal(policy_resolve(cases[i].sb, cwd, &ctx, "sandbox", &plan, &err), 0);
    if (plan->n_writable != cases[i].n_writable)
      fail_msg("%s: %zu writable roots", cwd, plan->n_writable);
    if (i == 3)
      assert_true(strstr(plan->writable_roots[0].root, "/cm/home") != NULL &&
                  strstr(plan->writable_roots[0].root, ".codex") == NULL);
    policy_plan_free(plan);
    free(cwd);
  }
  json_decref(sb);
  json_decref(wide);
}

static void test_deterministic(void **state) {
  (void)state;
  policy_context ctx = fx_ctx();
  char cwd[PATH_MAX + 8];
  snprintf(cwd, sizeof cwd, "%s/wt", fx_root);
  json_t *j = fx_json("{\"type\":\"workspaceWrite\",\"writableRoots\":[\"$T/w\",\"$T/main\","
                      "\"$T/link\"]}");
  policy_plan *a = NULL, *b = NULL;
  policy_error err;
  assert_int_equal(policy_resolve(j, cwd, &ctx, NULL, &a, &err), 0);
  assert_int_equal(policy_resolve(j, cwd, &ctx, NULL, &b, &err), 0);
  json_t *ja = policy_plan_to_json(a), *jb = policy_plan_to_json(b);
  assert_true(json_equal(ja, jb));
  for (size_t i = 1; i < a->n_writable; i++)
    assert_true(strcmp(a->writable_roots[i - 1].root, a->writable_roots[i].root) < 0);
  json_decref(ja);
  json_decref(jb);
  policy_plan_free(a);
  policy_plan_free(b);
  json_decref(j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_resolve_table), cmocka_unit_test(test_most_specific),
      cmocka_unit_test(test_minimal),       cmocka_unit_test(test_enforceable),
      cmocka_unit_test(test_deterministic), cmocka_unit_test(test_private_tmp),
      cmocka_unit_test(test_gitdir_pointers), cmocka_unit_test(test_cwd_inside_metadata),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
