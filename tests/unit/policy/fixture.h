/* Shared fixture for the server/policy unit tests: one temporary directory
 * tree (built once per test binary) and a template expander for tables.
 *
 * Templates: "$T" is the canonical fixture root, "$H" is $T/home, and a JSON
 * string "@P:X" inside an array expands to the three protected subpaths
 * "X/.agents","X/.codex","X/.git" (sorted, as the plan lists them).
 *
 * The tree ($T):
 *   w/.git/ w/docs/tmp/           a repository with nested directories
 *   link -> w                     a symlinked directory
 *   main/.git/worktrees/wt/       a repository with a worktree ...
 *   wt/.git  "gitdir: ../main/.git/worktrees/wt"   ... checked out here
 *   badgit/.git "not a pointer"   a .git file without gitdir:
 *   nogit/                        no protected paths at all
 *   sym/.codex -> decoy/          a protected name replaced by a symlink
 *   realtmp/  tmplink -> realtmp  a symlinked $TMPDIR
 *   file.txt                      a writable root that is a file
 *   home/                         see home_test.c
 */
#ifndef WARDEN_TEST_POLICY_FIXTURE_H
#define WARDEN_TEST_POLICY_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "server/policy/policy.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Helpers may go unused in one test binary or another. */
#define FX_FN static __attribute__((unused))

static char fx_root[PATH_MAX];
static char fx_home[PATH_MAX + 8];

FX_FN void fx_mkdirs(const char *rel) {
  char p[PATH_MAX + 256];
  snprintf(p, sizeof p, "%s/%s", fx_root, rel);
  for (char *s = p + strlen(fx_root) + 1; *s; s++) {
    if (*s == '/') {
      *s = '\0';
      mkdir(p, 0755);
      *s = '/';
    }
  }
  mkdir(p, 0755);
}

FX_FN void fx_write(const char *rel, const char *content) {
  char p[PATH_MAX + 256];
  snprintf(p, sizeof p, "%s/%s", fx_root, rel);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(content, f);
  fclose(f);
}

FX_FN void fx_symlink(const char *target, const char *rel) {
  char p[PATH_MAX + 256];
  snprintf(p, sizeof p, "%s/%s", fx_root, rel);
  assert_int_equal(symlink(target, p), 0);
}

/* $H: secret stores, an ssh config with Include (glob, self-include loop),
 * ~, %d, ${HOME}, %-tokens, quotes and "none"; a symlink to /; a protected
 * name; ordinary files and directories. */
FX_FN void fx_build_home(void) {
  fx_mkdirs("home/.ssh/conf.d");
  fx_write("home/.ssh/config", "# user config\n"
                               "Include conf.d/*.conf\n"
                               "IdentityFile ~/keys/id_work\n"
                               "Host example\n"
                               "  ControlPath ~/.cache/ssh/%r@%h:%p\n"
                               "  UserKnownHostsFile ${HOME}/known_a %d/known_b\n"
                               "  IdentityAgent SSH_AUTH_SOCK\n"
                               "  IdentityFile none\n");
  fx_write("home/.ssh/conf.d/extra.conf", "CertificateFile ~/Documents/cert.pub\n"
                                          "identityfile=\"~/My Keys/id\"\n"
                                          "Include ~/.ssh/conf.d/*.conf\n");
  fx_write("home/.ssh/id_ed25519", "secret");
  fx_mkdirs("home/.gnupg");
  fx_mkdirs("home/.config/gh");
  fx_write("home/.config/gh/hosts.yml", "token");
  fx_mkdirs("home/.config/other");
  fx_mkdirs("home/.cache/ssh");
  fx_mkdirs("home/proj");
  fx_mkdirs("home/keys");
  fx_write("home/keys/id_work", "secret");
  fx_mkdirs("home/Documents");
  fx_write("home/Documents/cert.pub", "cert");
  fx_write("home/.bashrc", "# rc");
  fx_write("home/known_a", "hosts");
  fx_symlink("/", "home/link-to-root");
  fx_mkdirs("home/.codex");
}

FX_FN int fx_setup(void **state) {
  (void)state;
  char tmpl[] = "/var/tmp/warden-policy-test.XXXXXX";
  if (!mkdtemp(tmpl))
    return -1;
  if (!realpath(tmpl, fx_root))
    return -1;
  snprintf(fx_home, sizeof fx_home, "%s/home", fx_root);
  fx_mkdirs("w/.git");
  fx_mkdirs("w/docs/tmp");
  fx_symlink("w", "link");
  fx_mkdirs("main/.git/worktrees/wt");
  fx_mkdirs("wt");
  fx_write("wt/.git", "gitdir: ../main/.git/worktrees/wt\n");
  fx_mkdirs("badgit");
  fx_write("badgit/.git", "not a pointer\n");
  fx_mkdirs("nogit");
  fx_mkdirs("sym");
  fx_mkdirs("decoy");
  fx_symlink("../decoy", "sym/.codex");
  fx_mkdirs("realtmp");
  fx_symlink("realtmp", "tmplink");
  fx_write("file.txt", "x");
  fx_build_home();
  return 0;
}

FX_FN int fx_rm(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(p);
  return 0;
}

FX_FN int fx_teardown(void **state) {
  (void)state;
  if (fx_root[0])
    nftw(fx_root, fx_rm, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}

/* Expand a table template (see the top of this file). Caller frees. */
FX_FN char *fx_subst(const char *tmpl) {
  if (!tmpl)
    return NULL;
  size_t cap = strlen(tmpl) * 4 + 4 * strlen(fx_root) * 16 + 64, o = 0;
  char *a = malloc(cap);
  assert_non_null(a);
  for (const char *s = tmpl; *s;) {
    if (s[0] == '$' && (s[1] == 'T' || s[1] == 'H')) {
      const char *r = s[1] == 'T' ? fx_root : fx_home;
      size_t n = strlen(r);
      if (o + n + 1 >= cap)
        a = realloc(a, cap = cap * 2 + n);
      memcpy(a + o, r, n);
      o += n;
      s += 2;
    } else {
      if (o + 2 >= cap)
        a = realloc(a, cap *= 2);
      a[o++] = *s++;
    }
  }
  a[o] = '\0';
  /* "@P:X" -> "X/.agents","X/.codex","X/.git" */
  size_t bcap = strlen(a) * 4 + 64, bo = 0;
  char *b = malloc(bcap);
  assert_non_null(b);
  for (const char *s = a; *s;) {
    if (strncmp(s, "\"@P:", 4) == 0) {
      const char *x = s + 4, *end = strchr(x, '"');
      assert_non_null(end);
      int n = (int)(end - x);
      char tmp[PATH_MAX * 3 + 64];
      int w = snprintf(tmp, sizeof tmp, "\"%.*s/.agents\",\"%.*s/.codex\",\"%.*s/.git\"", n, x,
                       n, x, n, x);
      while (bo + (size_t)w + 1 >= bcap)
        b = realloc(b, bcap *= 2);
      memcpy(b + bo, tmp, (size_t)w);
      bo += (size_t)w;
      s = end + 1;
    } else {
      if (bo + 2 >= bcap)
        b = realloc(b, bcap *= 2);
      b[bo++] = *s++;
    }
  }
  b[bo] = '\0';
  free(a);
  /* "//" from "@P:/" (the root) -> "/" */
  for (char *d = strstr(b, "\"//."); d; d = strstr(d, "\"//."))
    memmove(d + 1, d + 2, strlen(d + 2) + 1);
  return b;
}

/* Parse a template as JSON (NULL template -> NULL). */
FX_FN json_t *fx_json(const char *tmpl) {
  if (!tmpl)
    return NULL;
  char *s = fx_subst(tmpl);
  json_error_t e;
  json_t *j = json_loads(s, 0, &e);
  if (!j)
    fail_msg("bad JSON in table: %s: %s", e.text, s);
  free(s);
  return j;
}

FX_FN policy_context fx_ctx(void) {
  policy_context c;
  memset(&c, 0, sizeof c);
  c.features.landlock_abi = 4;
  c.features.user_namespaces = true;
  c.features.network_namespaces = true;
  c.features.seccomp = true;
  return c;
}

FX_FN void fx_expect_json(const char *what, json_t *got, json_t *want) {
  if (!json_equal(got, want)) {
    char *g = json_dumps(got, JSON_SORT_KEYS | JSON_INDENT(1));
    char *w = json_dumps(want, JSON_SORT_KEYS | JSON_INDENT(1));
    fprintf(stderr, "%s:\n got: %s\nwant: %s\n", what, g ? g : "(null)", w ? w : "(null)");
    free(g);
    free(w);
    fail();
  }
}

FX_FN int fx_cmp_json_str(const void *a, const void *b) {
  return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* The tables list read-only subpaths grouped by kind; the plan sorts them. */
FX_FN void fx_sort_subpaths(json_t *plan) {
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(plan, "writableRoots"), i, r) {
    json_t *a = json_object_get(r, "readOnlySubpaths");
    size_t n = json_array_size(a);
    json_t **v = calloc(n ? n : 1, sizeof *v);
    for (size_t k = 0; k < n; k++)
      v[k] = json_incref(json_array_get(a, k));
    qsort(v, n, sizeof *v, fx_cmp_json_str);
    json_array_clear(a);
    for (size_t k = 0; k < n; k++)
      json_array_append_new(a, v[k]);
    free(v);
  }
}

#endif
