/* $HOME expansion: secret stores, ~/.ssh/config (Include with globs and a
 * loop, ~, %d, ${HOME}, %-tokens, quotes, none), symlinked children,
 * protected names, and an unlistable $HOME. */
#include "fixture.h"

#include "server/policy/policy_internal.h"

static void test_ssh_config_paths(void **state) {
  (void)state;
  pol_strvec got = {0};
  assert_int_equal(pol_ssh_config_paths(fx_home, &got), 0);
  pol_sv_sort_uniq(&got);
  static const char *const want[] = {
      "$H/.cache/ssh",         /* ControlPath cut before %r */
      "$H/.ssh/conf.d/extra.conf", /* the included file itself */
      "$H/Documents/cert.pub", /* CertificateFile in the included file */
      "$H/My Keys/id",         /* quoted, key=value, lower-case keyword */
      "$H/keys/id_work",       /* IdentityFile ~ */
      "$H/known_a",            /* ${HOME} */
      "$H/known_b",            /* %d */
  };
  char *joined = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&joined, &len);
  for (size_t i = 0; i < got.n; i++)
    fprintf(f, "%s\n", got.v[i]);
  fclose(f);
  if (got.n != sizeof want / sizeof want[0])
    fail_msg("ssh config paths:\n%s", joined);
  for (size_t i = 0; i < got.n; i++) {
    char *w = fx_subst(want[i]);
    if (strcmp(got.v[i], w) != 0)
      fail_msg("path %zu: %s, want %s; all:\n%s", i, got.v[i], w, joined);
    free(w);
  }
  free(joined);
  pol_sv_free(&got);
  /* no config at all: nothing, no error */
  char none[PATH_MAX + 16];
  snprintf(none, sizeof none, "%s/nogit", fx_root);
  assert_int_equal(pol_ssh_config_paths(none, &got), 0);
  assert_int_equal(got.n, 0);
}

typedef struct hcase {
  const char *name;
  const char *sandbox;
  const char *cwd;
  const char *home;
  const char *plan;
} hcase;

#define KID(x) "{\"root\":\"$H/" x "\",\"readOnlySubpaths\":[\"@P:$H/" x "\""
/* Every protected path of the fixture's $HOME, sorted: .git/.codex/.agents,
 * the secret stores, the top-level entries ~/.ssh/config names (whole), the
 * shell startup files, git's user config, autostart and systemd units. */
#define HOME_RO \
  "\"$H/.agents\",\"$H/.aws\",\"$H/.azure\",\"$H/.bash_login\",\"$H/.bash_logout\"" \
  ",\"$H/.bash_profile\",\"$H/.bashrc\",\"$H/.cache\",\"$H/.codex\"" \
  ",\"$H/.config/autostart\",\"$H/.config/fish\",\"$H/.config/gcloud\"" \
  ",\"$H/.config/gh\",\"$H/.config/git\",\"$H/.config/systemd\",\"$H/.docker\"" \
  ",\"$H/.git\",\"$H/.git-credentials\",\"$H/.gitconfig\",\"$H/.gnupg\",\"$H/.kube\"" \
  ",\"$H/.netrc\",\"$H/.npmrc\",\"$H/.password-store\",\"$H/.pki\",\"$H/.profile\"" \
  ",\"$H/.pypirc\",\"$H/.ssh\",\"$H/.zlogin\",\"$H/.zprofile\",\"$H/.zshenv\"" \
  ",\"$H/.zshrc\",\"$H/Documents\",\"$H/My Keys\",\"$H/keys\",\"$H/known_a\"" \
  ",\"$H/known_b\""
#define GONE_RO \
  "\"$T/gone/.agents\",\"$T/gone/.aws\",\"$T/gone/.azure\",\"$T/gone/.bash_login\"" \
  ",\"$T/gone/.bash_logout\",\"$T/gone/.bash_profile\",\"$T/gone/.bashrc\"" \
  ",\"$T/gone/.codex\",\"$T/gone/.config/autostart\",\"$T/gone/.config/fish\"" \
  ",\"$T/gone/.config/gcloud\",\"$T/gone/.config/gh\",\"$T/gone/.config/git\"" \
  ",\"$T/gone/.config/systemd\",\"$T/gone/.docker\",\"$T/gone/.git\"" \
  ",\"$T/gone/.git-credentials\",\"$T/gone/.gitconfig\",\"$T/gone/.gnupg\"" \
  ",\"$T/gone/.kube\",\"$T/gone/.netrc\",\"$T/gone/.npmrc\",\"$T/gone/.password-store\"" \
  ",\"$T/gone/.pki\",\"$T/gone/.profile\",\"$T/gone/.pypirc\",\"$T/gone/.ssh\"" \
  ",\"$T/gone/.zlogin\",\"$T/gone/.zprofile\",\"$T/gone/.zshenv\",\"$T/gone/.zshrc\""
#define WS_NOTMP "{\"type\":\"workspaceWrite\",\"excludeSlashTmp\":true,\"excludeTmpdirEnvVar\":true"
static const hcase cases[] = {
    {"writable $HOME stays writable; secrets and persistence paths are read-only", WS_NOTMP "}",
     "$H", "$H",
     "{\"fullDiskRead\":true,\"fullDiskWrite\":false,\"readableRoots\":[],\"writableRoots\":["
     "{\"root\":\"$H\",\"readOnlySubpaths\":[" HOME_RO "]}],"
     "\"unreadableRoots\":[],\"network\":\"none\"}"},
    {"writable $HOME with restricted reads: secrets that exist are unreadable",
     "{\"type\":\"split\",\"fileSystem\":{\"entries\":[{\"path\":\":cwd\",\"access\":"
     "\"write\"}]},\"network\":{\"mode\":\"none\"}}",
     "$H", "$H",
     "{\"fullDiskRead\":false,\"fullDiskWrite\":false,\"readableRoots\":[\"$H/.bashrc\","
     "\"$H/.codex\",\"$H/.config\",\"$H/proj\"],\"writableRoots\":["
     "{\"root\":\"$H\",\"readOnlySubpaths\":[" HOME_RO "]}],"
     "\"unreadableRoots\":[\"$H/.cache\",\"$H/.config/gh\",\"$H/.gnupg\",\"$H/.ssh\","
     "\"$H/Documents\",\"$H/keys\",\"$H/known_a\"],\"network\":\"none\"}"},
    {"$HOME inside another writable root keeps its protected paths in both",
     WS_NOTMP ",\"writableRoots\":[\"$T\"]}", "$H", "$H",
     "{\"fullDiskRead\":true,\"fullDiskWrite\":false,\"readableRoots\":[],\"writableRoots\":["
     "{\"root\":\"$T\",\"readOnlySubpaths\":[\"@P:$T\"," HOME_RO "]},"
     "{\"root\":\"$H\",\"readOnlySubpaths\":[" HOME_RO "]}],"
     "\"unreadableRoots\":[],\"network\":\"none\"}"},
    {"readable $HOME hides secrets and what ~/.ssh/config names, whole",
     "{\"type\":\"split\",\"fileSystem\":{\"entries\":[{\"path\":\"$H\",\"access\":\"read\"},"
     "{\"path\":\":cwd\",\"access\":\"write\"}]},\"network\":{\"mode\":\"none\"}}",
     "$T/nogit", "$H",
     "{\"fullDiskRead\":false,\"fullDiskWrite\":false,\"readableRoots\":[\"$H/.bashrc\","
     "\"$H/.codex\",\"$H/.config\",\"$H/proj\","
     "\"$T/nogit\"],\"writableRoots\":[{\"root\":\"$T/nogit\",\"readOnlySubpaths\":["
     "\"@P:$T/nogit\"]}],\"unreadableRoots\":[\"$H/.config/gh\"],\"network\":\"none\"}"},
    {"an explicit entry beats the expansion",
     "{\"type\":\"split\",\"fileSystem\":{\"entries\":[{\"path\":\"$H\",\"access\":\"read\"},"
     "{\"path\":\"$H/.ssh\",\"access\":\"read\"},{\"path\":\"$H/keys/id_work\",\"access\":"
     "\"read\"}]},\"network\":{\"mode\":\"none\"}}",
     "$T/nogit", "$H",
     "{\"fullDiskRead\":false,\"fullDiskWrite\":false,\"readableRoots\":[\"$H/.bashrc\","
     "\"$H/.codex\",\"$H/.config\",\"$H/.ssh\",\"$H/keys/id_work\","
     "\"$H/proj\"],\"writableRoots\":[],\"unreadableRoots\":["
     "\"$H/.config/gh\"],\"network\":\"none\"}"},
    {"a root inside $HOME is not expanded", WS_NOTMP "}", "$H/proj", "$H",
     "{\"fullDiskRead\":true,\"fullDiskWrite\":false,\"readableRoots\":[],\"writableRoots\":["
     KID("proj") "]}],\"unreadableRoots\":[],\"network\":\"none\"}"},
    {"a missing $HOME as the workspace keeps its protections", WS_NOTMP "}", "$T/gone",
     "$T/gone",
     "{\"fullDiskRead\":true,\"fullDiskWrite\":false,\"readableRoots\":[],\"writableRoots\":["
     "{\"root\":\"$T/gone\",\"readOnlySubpaths\":[" GONE_RO "]}],"
     "\"unreadableRoots\":[],\"network\":\"none\"}"},
    {"$HOME spelled through a symlink", WS_NOTMP "}", "$T/homelink/proj", "$T/homelink",
     "{\"fullDiskRead\":true,\"fullDiskWrite\":false,\"readableRoots\":[],\"writableRoots\":["
     KID("proj") "]}],\"unreadableRoots\":[],\"network\":\"none\"}"},
    {"a cwd that is a secret store of a writable $HOME is not writable",
     WS_NOTMP ",\"writableRoots\":[\"$H\"]}", "$H/.gnupg", "$H",
     "{\"fullDiskRead\":true,\"fullDiskWrite\":false,\"readableRoots\":[],\"writableRoots\":["
     "{\"root\":\"$H\",\"readOnlySubpaths\":[" HOME_RO "]}],"
     "\"unreadableRoots\":[],\"network\":\"none\"}"},
};

static void test_home_table(void **state) {
  (void)state;
  char link[PATH_MAX + 16];
  snprintf(link, sizeof link, "%s/homelink", fx_root);
  symlink("home", link);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const hcase *c = &cases[i];
    policy_context ctx = fx_ctx();
    char *home = fx_subst(c->home);
    char *cwd = fx_subst(c->cwd);
    ctx.home = home;
    json_t *sb = fx_json(c->sandbox);
    json_t *want = fx_json(c->plan);
    policy_plan *plan = NULL;
    policy_error err;
    if (policy_resolve(sb, cwd, &ctx, "params.sandbox", &plan, &err) != 0)
      fail_msg("%s: %s (%s)", c->name, err.message, err.path);
    json_t *got = policy_plan_to_json(plan);
    fx_sort_subpaths(want);
    fx_expect_json(c->name, got, want);
    json_decref(got);
    json_decref(want);
    json_decref(sb);
    policy_plan_free(plan);
    free(cwd);
    free(home);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ssh_config_paths),
      cmocka_unit_test(test_home_table),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
