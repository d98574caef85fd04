/* A property test of the writable roots over random nestings (issue 9,
 * item 5): whatever the merge, dedupe or $HOME handling, every writable
 * root keeps the protected subpaths of every root it covers, and nothing
 * protected is writable in the plan, a cwd inside a protected path
 * included.
 *
 * Each round builds a random directory tree (repositories with .git
 * directories and .git files pointing at existing or missing gitdirs,
 * .codex/.agents, cwds inside .git), once under /var/tmp and once under
 * /tmp (where the default policy's /tmp root covers it), picks a random
 * policy (extra writable roots, sometimes "/", sometimes a split policy
 * with carveouts), a random cwd, $HOME and $TMPDIR, resolves, and checks
 * the plan against an oracle that knows only the rules, not the code:
 *
 *  1. effective writability: a path is writable in a plan when the deepest
 *     of {writable roots, read-only subpaths, unreadable roots} covering it
 *     is a writable root (at equal depth the read-only one wins, as the
 *     mounts are stacked);
 *  2. for every directory D from a requested writable root down to the cwd
 *     or to another requested root inside it: D/.git, D/.codex, D/.agents
 *     (and beneath) and the gitdir target of D/.git are not writable;
 *  3. a cwd inside a .git directory is not writable;
 *  4. $HOME's secrets and persistence paths are not writable;
 *  5. for roots W' inside W, every read-only subpath of W' inside W is a
 *     read-only subpath of W;
 *  6. and so that the test cannot pass by making everything read-only: a
 *     requested root that is not inside any protected path stays writable.
 * Deterministic: a fixed seed per round; a failure prints the round. */
#include "fixture.h"

#include "server/policy/policy_internal.h"

#include <stdint.h>

#define ROUNDS 300
#define MAX_DIRS 24

static uint64_t rng;
static unsigned rnd(unsigned n) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (unsigned)(rng % n);
}

typedef struct tree {
  char base[PATH_MAX];
  char dirs[MAX_DIRS][PATH_MAX];
  size_t n;
} tree;

static const char *const names[] = {"a", "b", "repo", ".git", ".codex", ".agents", "hooks", "sub"};

static void mk(const char *p) { mkdir(p, 0755); }

static void build_tree(tree *t) {
  nftw(t->base, fx_rm, 16, FTW_DEPTH | FTW_PHYS);
  mk(t->base);
  snprintf(t->dirs[0], PATH_MAX, "%s", t->base);
  t->n = 1;
  size_t want = 4 + rnd(MAX_DIRS - 4);
  while (t->n < want) {
    const char *parent = t->dirs[rnd((unsigned)t->n)];
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", parent, names[rnd(sizeof names / sizeof names[0])]);
    bool dup = false;
    for (size_t i = 0; i < t->n && !dup; i++)
      dup = strcmp(t->dirs[i], p) == 0;
    if (dup || strlen(p) > 200)
      continue;
    mk(p);
    snprintf(t->dirs[t->n++], PATH_MAX, "%s", p);
  }
  /* some .git files: gitdir pointers to an existing dir or a missing one */
  for (size_t i = 0; i < t->n; i++) {
    if (rnd(5) != 0)
      continue;
    char p[PATH_MAX + 8];
    snprintf(p, sizeof p, "%s/.git", t->dirs[i]);
    struct stat st;
    if (lstat(p, &st) == 0)
      continue;
    FILE *f = fopen(p, "w");
    if (!f)
      continue;
    if (rnd(2))
      fprintf(f, "gitdir: %s\n", t->dirs[rnd((unsigned)t->n)]);
    else
      fprintf(f, "gitdir: %s/missing-gitdir-%u\n", t->dirs[rnd((unsigned)t->n)], rnd(3));
    fclose(f);
  }
}

/* ---- the oracle ---- */

static bool under(const char *p, const char *r) { return pol_path_under(p, r); }

typedef enum { M_NONE, M_RW, M_RO } mkind;

static bool writable_in(const policy_plan *pl, const char *p) {
  size_t best = 0;
  mkind k = M_NONE;
  for (size_t i = 0; i < pl->n_writable; i++) {
    const policy_writable_root *w = &pl->writable_roots[i];
    if (under(p, w->root)) {
      size_t d = pol_path_depth(w->root);
      if (k == M_NONE || d > best) {
        best = d;
        k = M_RW;
      }
    }
    for (size_t j = 0; j < w->n_read_only; j++) {
      if (!under(p, w->read_only_subpaths[j]))
        continue;
      size_t d = pol_path_depth(w->read_only_subpaths[j]);
      if (k == M_NONE || d >= best) {
        best = d;
        k = M_RO;
      }
    }
  }
  for (size_t i = 0; i < pl->n_unreadable; i++) {
    if (!under(p, pl->unreadable_roots[i]))
      continue;
    size_t d = pol_path_depth(pl->unreadable_roots[i]);
    if (k == M_NONE || d >= best) {
      best = d;
      k = M_RO;
    }
  }
  return k == M_RW;
}

static bool has_component(const char *p) {
  return strstr(p, "/.git/") || strstr(p, "/.codex/") || strstr(p, "/.agents/") ||
         (strlen(p) >= 5 && strcmp(p + strlen(p) - 5, "/.git") == 0) ||
         (strlen(p) >= 7 && strcmp(p + strlen(p) - 7, "/.codex") == 0) ||
         (strlen(p) >= 8 && strcmp(p + strlen(p) - 8, "/.agents") == 0);
}

/* the gitdir target of dir/.git, lexically (what the host's git follows) */
static bool gitdir_of(const char *dir, char *out, size_t n) {
  char p[PATH_MAX + 8];
  snprintf(p, sizeof p, "%s/.git", dir);
  struct stat st;
  if (stat(p, &st) != 0 || !S_ISREG(st.st_mode))
    return false;
  FILE *f = fopen(p, "r");
  char line[PATH_MAX + 16] = "";
  if (!f)
    return false;
  bool ok = fgets(line, sizeof line, f) && strncmp(line, "gitdir: ", 8) == 0;
  fclose(f);
  if (!ok)
    return false;
  line[strcspn(line, "\n")] = '\0';
  snprintf(out, n, "%s", line + 8);
  return true;
}

typedef struct round_ctx {
  unsigned round;
  const char *what;
  char *plan_text;
} round_ctx;

static void expect_ro(const round_ctx *rc, const policy_plan *pl, const char *p, const char *why) {
  if (writable_in(pl, p)) {
    fprintf(stderr, "%s\n", rc->plan_text);
    fail_msg("round %u (%s): %s is writable (%s)\nplan: %s", rc->round, rc->what, p, why,
             rc->plan_text);
  }
}

static void check_dir_protected(const round_ctx *rc, const policy_plan *pl, const char *d) {
  static const char *const prot[] = {".git", ".codex", ".agents", ".git/hooks/pre-commit",
                                     ".codex/config.toml", NULL};
  char p[PATH_MAX * 2];
  for (size_t k = 0; prot[k]; k++) {
    snprintf(p, sizeof p, "%s/%s", strcmp(d, "/") == 0 ? "" : d, prot[k]);
    expect_ro(rc, pl, p, "protected name of an enclosing directory");
  }
  char t[PATH_MAX];
  if (gitdir_of(d, t, sizeof t)) {
    char *n = pol_path_normalize(t);
    snprintf(p, sizeof p, "%s/hooks/post-checkout", n);
    expect_ro(rc, pl, p, "gitdir target");
    free(n);
  }
}

/* Walk from root down to bottom (bottom inside root), checking each. */
static void check_walk(const round_ctx *rc, const policy_plan *pl, const char *root,
                       const char *bottom) {
  char d[PATH_MAX];
  snprintf(d, sizeof d, "%s", bottom);
  for (;;) {
    check_dir_protected(rc, pl, d);
    if (strcmp(d, root) == 0 || strcmp(d, "/") == 0)
      break;
    char *s = strrchr(d, '/');
    if (s == d)
      d[1] = '\0';
    else
      *s = '\0';
  }
}

static const char *const home_protected[] = {
    ".ssh/authorized_keys", ".gnupg/x", ".aws/credentials", ".netrc", ".git-credentials",
    ".npmrc", ".bashrc", ".profile", ".zshenv", ".config/git/config", ".gitconfig",
    ".config/autostart/x.desktop", ".config/systemd/user/x.service", ".config/fish/config.fish",
    NULL};

static void one_round(unsigned round, tree *t) {
  rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)round * 0x100000001B3ull);
  rnd(2);
  build_tree(t);
  /* the policy */
  const char *req[8];
  size_t nreq = 0;
  json_t *roots = json_array();
  size_t nroots = rnd(4);
  for (size_t i = 0; i < nroots; i++) {
    const char *r = t->dirs[rnd((unsigned)t->n)];
    json_array_append_new(roots, json_string(r));
    req[nreq++] = r;
  }
  bool slash = rnd(10) == 0;
  if (slash) {
    json_array_append_new(roots, json_string("/"));
    req[nreq++] = "/";
  }
  const char *cwd = t->dirs[rnd((unsigned)t->n)];
  req[nreq++] = cwd;
  bool no_tmp = rnd(2);
  json_t *sb;
  const char *what;
  if (rnd(4) == 0) {
    /* split: :root read, cwd and roots write, a random read carveout */
    json_t *entries = json_array();
    json_array_append_new(entries, json_pack("{s:s,s:s}", "path", ":root", "access", "read"));
    json_array_append_new(entries, json_pack("{s:s,s:s}", "path", ":cwd", "access", "write"));
    size_t i;
    json_t *v;
    json_array_foreach(roots, i, v) json_array_append_new(
        entries, json_pack("{s:O,s:s}", "path", v, "access", "write"));
    /* a carveout: a requested root it names is no longer requested */
    const char *carve = t->dirs[rnd((unsigned)t->n)];
    json_array_append_new(entries, json_pack("{s:s,s:s}", "path", carve, "access",
                                             rnd(2) ? "read" : "none"));
    for (size_t k = 0; k < nreq; k++)
      if (strcmp(req[k], carve) == 0 && req[k] != cwd)
        req[k] = cwd;
    sb = json_pack("{s:s,s:{s:o},s:{s:s}}", "type", "split", "fileSystem", "entries", entries,
                   "network", "mode", "none");
    json_decref(roots);
    what = "split";
    no_tmp = true;
  } else {
    sb = json_pack("{s:s,s:o,s:b,s:b}", "type", "workspaceWrite", "writableRoots", roots,
                   "excludeSlashTmp", no_tmp, "excludeTmpdirEnvVar", rnd(2) == 0);
    what = "workspaceWrite";
  }
  if (!no_tmp)
    req[nreq++] = "/tmp";
  policy_context ctx = fx_ctx();
  const char *home = NULL;
  switch (rnd(4)) {
  case 0: home = cwd; break;
  case 1: home = t->dirs[rnd((unsigned)t->n)]; break;
  case 2: home = t->base; break;
  default: break;
  }
  ctx.home = home;
  if (rnd(3) == 0)
    ctx.tmpdir = t->dirs[rnd((unsigned)t->n)];
  char pathenv[PATH_MAX * 2];
  if (rnd(3) == 0) {
    snprintf(pathenv, sizeof pathenv, "/usr/bin:%s/bin:relative", t->dirs[rnd((unsigned)t->n)]);
    ctx.path_env = pathenv;
  }
  if (ctx.tmpdir && json_is_false(json_object_get(sb, "excludeTmpdirEnvVar")))
    req[nreq++] = ctx.tmpdir;

  policy_plan *pl = NULL;
  policy_error err;
  memset(&err, 0, sizeof err);
  if (policy_resolve(sb, cwd, &ctx, "params.sandbox", &pl, &err) != 0)
    fail_msg("round %u: resolve failed: %s", round, err.message);
  json_t *pj = policy_plan_to_json(pl);
  char *sbt = json_dumps(sb, JSON_COMPACT);
  char *pjt = json_dumps(pj, JSON_COMPACT);
  char *text = NULL;
  if (asprintf(&text, "%s\n  cwd %s home %s tmpdir %s path %s\n  plan %s", sbt, cwd,
               home ? home : "-", ctx.tmpdir ? ctx.tmpdir : "-",
               ctx.path_env ? ctx.path_env : "-", pjt) < 0)
    text = NULL;
  round_ctx rc = {round, what, text};

  if (pl->enforceable) {
    /* 2. every directory from a requested root down to the cwd and to each
     * other requested root inside it */
    for (size_t i = 0; i < nreq; i++) {
      for (size_t j = 0; j < nreq; j++)
        if (under(req[j], req[i]))
          check_walk(&rc, pl, req[i], req[j]);
    }
    /* 3. a cwd inside a git directory (inside .codex/.agents of a walked
     * directory is covered by 2) */
    if (strstr(cwd, "/.git/") || (strlen(cwd) >= 5 && strcmp(cwd + strlen(cwd) - 5, "/.git") == 0)) {
      char p[PATH_MAX + 8];
      snprintf(p, sizeof p, "%s/planted", cwd);
      expect_ro(&rc, pl, cwd, "cwd inside a protected path");
      expect_ro(&rc, pl, p, "cwd inside a protected path");
    }
    /* 4. $HOME */
    if (home) {
      for (size_t k = 0; home_protected[k]; k++) {
        char p[PATH_MAX * 2];
        snprintf(p, sizeof p, "%s/%s", home, home_protected[k]);
        expect_ro(&rc, pl, p, "$HOME secret or persistence path");
      }
    }
    /* PATH directories */
    if (ctx.path_env) {
      char p[PATH_MAX * 2 + 16];
      snprintf(p, sizeof p, "%s/planted", strchr(pathenv, ':') + 1);
      *strstr(p, ":relative") = '\0';
      expect_ro(&rc, pl, p, "directory on PATH");
    }
    /* 5. covering roots keep the covered roots' read-only subpaths */
    for (size_t i = 0; i < pl->n_writable; i++) {
      const policy_writable_root *w = &pl->writable_roots[i];
      for (size_t j = 0; j < pl->n_writable; j++) {
        const policy_writable_root *x = &pl->writable_roots[j];
        if (i == j || !pol_path_strictly_under(x->root, w->root))
          continue;
        for (size_t k = 0; k < x->n_read_only; k++) {
          const char *s = x->read_only_subpaths[k];
          if (!pol_path_strictly_under(s, w->root))
            continue;
          bool found = false;
          for (size_t m = 0; m < w->n_read_only && !found; m++)
            found = under(s, w->read_only_subpaths[m]);
          if (!found)
            fail_msg("round %u: %s (read-only in %s) is missing from the covering root %s\n%s",
                     round, s, x->root, w->root, text);
        }
      }
    }
    /* 6. the test is not satisfied by a plan without writable roots */
    for (size_t i = 0; i < nreq; i++) {
      const char *r = req[i];
      if (has_component(r) || strcmp(r, "/") == 0 || (home && under(home, r)) ||
          (home && under(r, home)) || ctx.path_env)
        continue;
      bool in_target = false;
      for (size_t k = 0; k < t->n && !in_target; k++) {
        char g[PATH_MAX];
        if (gitdir_of(t->dirs[k], g, sizeof g)) {
          char *n = pol_path_normalize(g);
          in_target = n && under(r, n);
          free(n);
        }
      }
      bool covered_protected = false;
      for (size_t j = 0; j < nreq && !covered_protected; j++)
        if (strcmp(req[j], r) != 0 && under(r, req[j]) && has_component(r + strlen(req[j])))
          covered_protected = true;
      if (in_target || covered_protected || strcmp(what, "split") == 0)
        continue;
      char p[PATH_MAX + 16];
      snprintf(p, sizeof p, "%s/plain-file", r);
      if (!writable_in(pl, p))
        fail_msg("round %u: requested root %s is not writable\n%s", round, r, text);
    }
  } else {
    /* refusals are for a workspace that is "/" and re-pointable gitdirs only */
    if (!pl->reason || (!strstr(pl->reason, "git pointer") && !strstr(pl->reason, "cwd")))
      fail_msg("round %u: unexpected refusal: %s\n%s", round, pl->reason ? pl->reason : "?",
               text);
  }
  free(text);
  free(sbt);
  free(pjt);
  json_decref(pj);
  json_decref(sb);
  policy_plan_free(pl);
}

static void test_property(void **state) {
  (void)state;
  static tree t1, t2;
  snprintf(t1.base, sizeof t1.base, "%s/prop", fx_root);
  char tmpl[] = "/tmp/warden-policy-prop.XXXXXX";
  assert_non_null(mkdtemp(tmpl));
  char *real = realpath(tmpl, NULL);
  assert_non_null(real);
  snprintf(t2.base, sizeof t2.base, "%s/t", real);
  const char *only = getenv("PROP_ROUND");
  for (unsigned r = only ? (unsigned)atoi(only) : 0; r < (only ? (unsigned)atoi(only) + 1 : ROUNDS); r++)
    one_round(r, (r & 1) ? &t2 : &t1);
  nftw(real, fx_rm, 16, FTW_DEPTH | FTW_PHYS);
  free(real);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_property)};
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
