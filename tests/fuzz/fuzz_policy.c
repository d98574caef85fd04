/* libFuzzer target: the policy parser and resolver on random policies over
 * random directory trees.
 *
 * Input: byte 0 is a count of tree operations, then 3 bytes per operation
 * (see build_tree: directories, files, symlinks inside and out of the tree,
 * .git files with gitdir pointers), then a JSON SandboxPolicy in which "$T"
 * stands for the tree's root (the cwd is $T/ws, $HOME $T/home, $TMPDIR
 * $T/tmp).
 *
 * Checked, besides the sanitizers, for every plan that resolves:
 * - no protected subpath is granted: every existing .git/.codex/.agents of a
 *   writable root is one of its read-only subpaths, and no writable root lies
 *   inside another writable root's protected names;
 * - nothing is granted that the policy does not name: every writable root is
 *   under a path the policy names, the cwd, $TMPDIR or /tmp (unless the
 *   policy names :root or grants full access);
 * - split -> legacy -> split round-trips: when the plan says it is legacy
 *   equivalent, the policy converts to legacy and back to split, and both
 *   resolve to the same plan.
 */
#include "server/policy/policy.h"
#include "server/policy/policy_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_TREE_OPS_MAX 12
static const char *const names[] = {"ws", "a", "b", ".git", ".codex", ".agents", "home", "tmp",
                                    "l"};
#define NNAMES (sizeof names / sizeof names[0])
static const char *const protected_names[] = {".git", ".codex", ".agents"};

static char root[PATH_MAX];
static char cwd[PATH_MAX + 8], home[PATH_MAX + 8], tmpdir[PATH_MAX + 8];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  if (flag == FTW_DP)
    rmdir(p);
  else
    unlink(p);
  return 0;
}

static void rel_path(uint8_t b, char *out, size_t n) {
  if ((b / NNAMES) % 2)
    snprintf(out, n, "%s/%s/%s", root, names[b % NNAMES], names[(b / (2 * NNAMES)) % NNAMES]);
  else
    snprintf(out, n, "%s/%s", root, names[b % NNAMES]);
}

/* The tree holds symlinks out of it (to / and /etc) and into itself, and
 * the fuzzer runs as root: building it must never write through one, or
 * it would create and truncate files on the host. Every step below walks
 * only real directories beneath the root and creates its last component
 * without following a link (mkdir and symlink never follow one; files are
 * opened O_NOFOLLOW). */
static bool beneath(const char *p, bool last_too) {
  char buf[PATH_MAX * 2];
  size_t rl = strlen(root), n = strlen(p);
  if (n >= sizeof buf || strncmp(p, root, rl) != 0 || p[rl] != '/')
    return false;
  memcpy(buf, p, n + 1);
  for (size_t i = rl + 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0')
      continue;
    if (buf[i] == '\0' && !last_too)
      break;
    char c = buf[i];
    buf[i] = '\0';
    struct stat st;
    bool link = lstat(buf, &st) == 0 && S_ISLNK(st.st_mode);
    buf[i] = c;
    if (link)
      return false;
  }
  return true;
}

static void mkparents(char *p) {
  for (char *s = p + strlen(root) + 1; *s; s++)
    if (*s == '/') {
      *s = '\0';
      if (beneath(p, true))
        mkdir(p, 0755);
      *s = '/';
    }
}

static void write_new(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0)
    return;
  if (text && write(fd, text, strlen(text)) < 0) {
    /* a short tree is still a tree */
  }
  close(fd);
}

static void build_tree(const uint8_t *ops, size_t n) {
  nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  mkdir(root, 0755);
  mkdir(cwd, 0755);
  mkdir(home, 0755);
  mkdir(tmpdir, 0755);
  for (size_t i = 0; i < n; i++) {
    char p[PATH_MAX * 2], q[PATH_MAX * 2];
    rel_path(ops[3 * i + 1], p, sizeof p);
    rel_path(ops[3 * i + 2], q, sizeof q);
    mkparents(p);
    if (!beneath(p, false)) /* a parent is a link: the step would leave the tree */
      continue;
    switch (ops[3 * i] % 6) {
    case 0:
      mkdir(p, 0755);
      break;
    case 1:
      write_new(p, NULL);
      break;
    case 2:
      symlink(q, p);
      break;
    case 3: { /* a .git file pointing somewhere in the tree */
      char g[PATH_MAX * 2 + 8], text[PATH_MAX * 2 + 16];
      mkdir(p, 0755);
      snprintf(g, sizeof g, "%s/.git", p);
      if (!beneath(g, false))
        break;
      snprintf(text, sizeof text, "gitdir: %s\n", q);
      write_new(g, text);
      break;
    }
    case 4:
      symlink(ops[3 * i + 2] % 2 ? "/" : "/etc", p); /* out of the tree */
      break;
    default:
      symlink(q + strlen(root) + 1, p); /* relative */
      break;
    }
  }
}

/* Replace "$T" in every string of v by the tree root. */
static json_t *expand(json_t *v) {
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (!memmem(s, len, "$T", 2))
      return json_incref(v);
    char *out = malloc(len * (strlen(root) + 1) + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
      if (s[i] == '$' && i + 1 < len && s[i + 1] == 'T') {
        memcpy(out + k, root, strlen(root));
        k += strlen(root);
        i++;
      } else {
        out[k++] = s[i];
      }
    }
    json_t *r = json_stringn(out, k);
    free(out);
    return r;
  }
  if (json_is_object(v)) {
    json_t *o = json_object();
    const char *key;
    json_t *x;
    json_object_foreach(v, key, x) json_object_set_new(o, key, expand(x));
    return o;
  }
  if (json_is_array(v)) {
    json_t *a = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) json_array_append_new(a, expand(x));
    return a;
  }
  return json_incref(v);
}

/* Every string in v, as paths a policy could be naming. */
static void named_paths(const json_t *v, pol_strvec *out, bool *anything) {
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    if (strcmp(s, ":root") == 0 || strcmp(s, "dangerFullAccess") == 0 ||
        strcmp(s, "externalSandbox") == 0 || strcmp(s, ":danger-full-access") == 0)
      *anything = true;
    char *p = NULL;
    if (s[0] == '/')
      p = strdup(s);
    else if (s[0] != ':' && s[0])
      p = pol_path_join(cwd, s);
    if (p) {
      char *c = pol_path_clean(p), *n = pol_path_normalize(p);
      if (c)
        pol_sv_push_own(out, c);
      if (n)
        pol_sv_push_own(out, n);
      free(p);
    }
    return;
  }
  const char *key;
  json_t *x;
  size_t i;
  if (json_is_object(v))
    json_object_foreach((json_t *)v, key, x) named_paths(x, out, anything);
  else if (json_is_array(v))
    json_array_foreach(v, i, x) named_paths(x, out, anything);
}

static bool exists(const char *p) {
  struct stat st;
  return lstat(p, &st) == 0;
}

static void check_plan(const json_t *policy, const policy_plan *plan) {
  if (!plan->enforce || plan->full_disk_write)
    return;
  /* 1. protected subpaths */
  for (size_t i = 0; i < plan->n_writable; i++) {
    const policy_writable_root *w = &plan->writable_roots[i];
    for (size_t k = 0; k < 3; k++) {
      char *p = pol_path_join(w->root, protected_names[k]);
      if (exists(p)) {
        bool ro = false;
        for (size_t j = 0; j < w->n_read_only && !ro; j++)
          ro = pol_path_under(p, w->read_only_subpaths[j]);
        if (!ro) {
          fprintf(stderr, "writable root %s grants its protected %s\n", w->root, p);
          abort();
        }
      }
      for (size_t j = 0; j < plan->n_writable; j++)
        if (j != i && pol_path_strictly_under(plan->writable_roots[j].root, p)) {
          fprintf(stderr, "writable root %s is inside protected %s\n",
                  plan->writable_roots[j].root, p);
          abort();
        }
      free(p);
    }
  }
  /* 2. nothing the policy does not name */
  pol_strvec allowed = {0};
  bool anything = false;
  named_paths(policy, &allowed, &anything);
  const char *implicit[] = {cwd, tmpdir, "/tmp"};
  for (size_t k = 0; k < 3; k++) {
    pol_sv_push(&allowed, implicit[k]);
    char *n = pol_path_normalize(implicit[k]);
    if (n)
      pol_sv_push_own(&allowed, n);
  }
  for (size_t i = 0; i < plan->n_writable && !anything; i++) {
    bool ok = false;
    for (size_t j = 0; j < allowed.n && !ok; j++)
      ok = pol_path_under(plan->writable_roots[i].root, allowed.v[j]);
    if (!ok) {
      fprintf(stderr, "writable root %s is not named by the policy\n", plan->writable_roots[i].root);
      abort();
    }
  }
  pol_sv_free(&allowed);
}

static void check_round_trip(const json_t *policy, const policy_plan *plan,
                             const policy_context *ctx) {
  const char *type = json_string_value(json_object_get(policy, "type"));
  if (!plan->legacy_equivalent || !type || strcmp(type, "split") != 0)
    return;
  policy_error err;
  json_t *legacy = NULL, *split = NULL;
  if (policy_transform(policy, cwd, ctx, "legacy", "sandbox", &legacy, &err) < 0) {
    fprintf(stderr, "legacy-equivalent plan, but no legacy form: %s\n", err.message);
    abort();
  }
  if (policy_transform(legacy, cwd, ctx, "split", "sandbox", &split, &err) < 0) {
    fprintf(stderr, "legacy form does not convert back to split: %s\n", err.message);
    abort();
  }
  policy_plan *p2 = NULL;
  if (policy_resolve(split, cwd, ctx, "sandbox", &p2, &err) < 0) {
    fprintf(stderr, "split form does not resolve: %s\n", err.message);
    abort();
  }
  json_t *a = policy_plan_to_json(plan), *b = policy_plan_to_json(p2);
  if (!json_equal(a, b)) {
    char *sa = json_dumps(a, JSON_SORT_KEYS), *sb = json_dumps(b, JSON_SORT_KEYS);
    fprintf(stderr, "round trip changed the plan:\n%s\n%s\n", sa, sb);
    abort();
  }
  json_decref(a);
  json_decref(b);
  policy_plan_free(p2);
  json_decref(legacy);
  json_decref(split);
}

static void remove_tree(void) { nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  char tmpl[] = "/tmp/warden-fuzz-policy-XXXXXX";
  if (!mkdtemp(tmpl))
    abort();
  if (!realpath(tmpl, root))
    abort();
  atexit(remove_tree);
  snprintf(cwd, sizeof cwd, "%s/ws", root);
  snprintf(home, sizeof home, "%s/home", root);
  snprintf(tmpdir, sizeof tmpdir, "%s/tmp", root);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  size_t nops = data[0] % (FUZZ_TREE_OPS_MAX + 1);
  if (size < 1 + 3 * nops)
    return 0;
  build_tree(data + 1, nops);
  size_t off = 1 + 3 * nops;
  json_error_t je;
  json_t *raw = json_loadb((const char *)data + off, size - off, JSON_REJECT_DUPLICATES, &je);
  if (!raw)
    return 0;
  json_t *policy = expand(raw);
  json_decref(raw);
  policy_context ctx = {.home = home,
                        .tmpdir = tmpdir,
                        .features = {.landlock_abi = 6, .user_namespaces = true,
                                     .network_namespaces = true, .seccomp = true}};
  policy_plan *plan = NULL;
  policy_error err;
  if (policy_resolve(policy, cwd, &ctx, "sandbox", &plan, &err) == 0) {
    check_plan(policy, plan);
    check_round_trip(policy, plan, &ctx);
    json_decref(policy_plan_to_json(plan));
    policy_plan_free(plan);
  } else if (!err.message[0]) {
    fprintf(stderr, "resolve failed without a message\n");
    abort();
  }
  json_t *out = NULL;
  if (policy_transform(policy, cwd, &ctx, "split", "sandbox", &out, &err) == 0)
    json_decref(out);
  json_decref(policy);
  return 0;
}
