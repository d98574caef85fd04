/* server/policy: resolve a pol_ir against a cwd into a policy_plan.
 *
 * Steps (restricted policies):
 *  1. every entry becomes a canonical path (pol_rset_build): tokens resolve
 *     against cwd/$TMPDIR//tmp, paths are normalized by canonicalizing their
 *     longest existing ancestor, :minimal expands to the platform read roots;
 *  2. the effective access of any path is the most specific covering entry,
 *     ties broken none > write > read (pol_rset_access);
 *  3. writable roots are the entries that resolve to write (nested ones stay
 *     separate roots, which is how a writable descendant is reopened under a
 *     read or none carveout); each gets as read-only subpaths the non-write
 *     entries inside it and the protected names .git/.codex/.agents (+ the
 *     gitdir target of a .git file);
 *  4. a root that is exactly $HOME is replaced by its children (home.c);
 *  5. the backend and enforceability follow from the plan and the kernel.
 */
#include "server/policy/policy_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Platform read roots for :minimal: what a dynamically linked program needs
 * to start and run (binaries, libraries, loader config, certificates and
 * other /etc data, /opt toolchains). Only those that exist are used. /dev,
 * /proc and /tmp are not in the list: the sandbox provides its own (a
 * minimal /dev, a fresh /proc of its pid namespace) and never binds the
 * host's. */
const char *const pol_minimal_roots[] = {"/bin",   "/etc",  "/lib", "/lib32", "/lib64",
                                         "/libx32", "/opt", "/sbin", "/usr",  NULL};

static const char *const protected_names[] = {".git", ".codex", ".agents", NULL};

/* ---- resolved entries ---- */

static int rset_add(pol_rset *rs, char *path, pol_access acc, bool is_root, bool minimal,
                    size_t idx) {
  if (!path)
    return -ENOMEM;
  if (rs->n == rs->cap) {
    size_t cap = rs->cap ? rs->cap * 2 : 16;
    pol_rentry *v = realloc(rs->v, cap * sizeof *v);
    if (!v) {
      free(path);
      return -ENOMEM;
    }
    rs->v = v;
    rs->cap = cap;
  }
  rs->v[rs->n++] = (pol_rentry){path, acc, is_root, minimal, idx};
  return 0;
}

void pol_rset_free(pol_rset *rs) {
  for (size_t i = 0; i < rs->n; i++)
    free(rs->v[i].path);
  free(rs->v);
  memset(rs, 0, sizeof *rs);
}

static bool is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int pol_rset_build(const pol_ir *ir, const char *cwd_canon, const policy_context *ctx,
                   pol_rset *out) {
  memset(out, 0, sizeof *out);
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < ir->n_entries; i++) {
    const pol_entry *e = &ir->entries[i];
    switch (e->tok) {
    case POL_TOK_ROOT:
      rc = rset_add(out, strdup("/"), e->access, true, false, i);
      break;
    case POL_TOK_PATH: {
      char *p = pol_path_normalize(e->path);
      rc = rset_add(out, p, e->access, p && strcmp(p, "/") == 0 && strcmp(e->path, "/") == 0,
                    false, i);
      break;
    }
    case POL_TOK_CWD:
      rc = rset_add(out, strdup(cwd_canon), e->access, false, false, i);
      break;
    case POL_TOK_TMPDIR:
      /* $TMPDIR only when set, non-empty and absolute; otherwise no path. */
      if (ctx && ctx->tmpdir && ctx->tmpdir[0] == '/')
        rc = rset_add(out, pol_path_normalize(ctx->tmpdir), e->access, false, false, i);
      break;
    case POL_TOK_SLASH_TMP:
      if (is_dir("/tmp"))
        rc = rset_add(out, pol_path_normalize("/tmp"), e->access, false, false, i);
      break;
    case POL_TOK_MINIMAL:
      /* Grants read of the platform roots (also when spelled write); a
       * :minimal=none entry narrows nothing and is ignored. */
      if (e->access == POL_ACC_NONE)
        break;
      for (size_t k = 0; rc == 0 && pol_minimal_roots[k]; k++) {
        struct stat st;
        if (stat(pol_minimal_roots[k], &st) != 0)
          continue;
        rc = rset_add(out, pol_path_normalize(pol_minimal_roots[k]), POL_ACC_READ, false, true, i);
      }
      break;
    }
  }
  if (rc < 0)
    pol_rset_free(out);
  return rc;
}

/* The most specific non-minimal entry covering p (ties: none > write > read). */
static const pol_rentry *rset_best(const pol_rset *rs, const char *p) {
  const pol_rentry *best = NULL;
  size_t best_depth = 0;
  for (size_t i = 0; i < rs->n; i++) {
    const pol_rentry *e = &rs->v[i];
    if (e->minimal || !pol_path_under(p, e->path))
      continue;
    size_t d = pol_path_depth(e->path);
    if (!best || d > best_depth || (d == best_depth && e->access > best->access)) {
      best = e;
      best_depth = d;
    }
  }
  return best;
}

pol_access pol_rset_access(const pol_rset *rs, const char *p) {
  const pol_rentry *best = rset_best(rs, p);
  /* :minimal fills in only the default: where nothing but :root (or "/")
   * with none covers the path. It never narrows an explicit entry. */
  if (!best || (pol_path_depth(best->path) == 0 && best->access == POL_ACC_NONE)) {
    for (size_t i = 0; i < rs->n; i++)
      if (rs->v[i].minimal && pol_path_under(p, rs->v[i].path))
        return POL_ACC_READ;
  }
  return best ? best->access : POL_ACC_NONE;
}

/* ---- protected subpaths ---- */

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
    s++;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
    s[--n] = '\0';
  return s;
}

/* For a `.git` file "gitdir: <p>" in dir: the target (relative <p> against
 * dir, the file's directory), normalized, also when it does not exist yet
 * (the sandbox must not be able to create it and plant hooks there). NULL
 * when there is no such pointer. *lexical gets the cleaned, unresolved
 * spelling (for the re-point check); the caller frees both. */
static char *gitdir_target(const char *dir, char **lexical) {
  *lexical = NULL;
  char *dotgit = pol_path_join(dir, ".git");
  if (!dotgit)
    return NULL;
  struct stat st;
  char buf[4097];
  ssize_t n = -1;
  if (stat(dotgit, &st) == 0 && S_ISREG(st.st_mode)) {
    int fd = open(dotgit, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ELOOP)
      fd = open(dotgit, O_RDONLY | O_CLOEXEC); /* a symlinked .git file */
    if (fd >= 0) {
      n = read(fd, buf, sizeof buf - 1);
      close(fd);
    }
  }
  free(dotgit);
  if (n <= 0)
    return NULL;
  buf[n] = '\0';
  char *s = trim(buf);
  char *colon = strchr(s, ':');
  if (!colon)
    return NULL;
  *colon = '\0';
  if (strcmp(trim(s), "gitdir") != 0)
    return NULL;
  char *val = trim(colon + 1);
  if (!*val)
    return NULL;
  char *abs = val[0] == '/' ? strdup(val) : pol_path_join(dir, val);
  char *clean = abs ? pol_path_clean(abs) : NULL;
  free(abs);
  char *out = clean ? pol_path_normalize(clean) : NULL;
  if (out)
    *lexical = clean;
  else
    free(clean);
  return out;
}

/* Symlinks followed on the way to a gitdir target before giving up (a loop
 * outside every writable root: nothing the sandbox can change). */
#define POL_GITDIR_MAX_LINKS 40

/* The first symlink on the way to `lexical` (each prefix, lstat'ed) that
 * lies inside one of the writable roots: the sandbox could replace it and
 * so re-point the gitdir. Returns a new string or NULL. */
static char *repointable_link_at(const char *lexical, const pol_strvec *wroots, int depth);
static char *repointable_link(const char *lexical, const pol_strvec *wroots) {
  return repointable_link_at(lexical, wroots, 0);
}

static char *repointable_link_at(const char *lexical, const pol_strvec *wroots, int depth) {
  if (depth > POL_GITDIR_MAX_LINKS)
    return NULL;
  char *p = strdup(lexical);
  if (!p)
    return NULL;
  for (char *s = p + 1;; s++) {
    char c = *s;
    if (c == '/' || c == '\0') {
      *s = '\0';
      struct stat st;
      bool link = lstat(p, &st) == 0 && S_ISLNK(st.st_mode);
      bool missing = !link && lstat(p, &st) != 0;
      if (link) {
        /* The link's own directory decides who can replace it. */
        char *par = strdup(p);
        char *slash = par ? strrchr(par, '/') : NULL;
        if (slash)
          slash == par ? (void)(slash[1] = '\0') : (void)(*slash = '\0');
        char *pc = par ? pol_path_normalize(par) : NULL;
        bool hit = false;
        for (size_t i = 0; pc && i < wroots->n && !hit; i++)
          hit = pol_path_under(pc, wroots->v[i]);
        free(par);
        free(pc);
        if (hit) {
          /* report the link as the sandbox sees it */
          return p;
        }
        /* Follow it: the rest of the path is relative to its target. */
        char *t = pol_path_normalize(p);
        if (!t) {
          free(p);
          return NULL;
        }
        char *rest = c ? pol_path_join(t, s + 1) : strdup(t);
        free(t);
        free(p);
        if (!rest)
          return NULL;
        char *clean = pol_path_clean(rest);
        free(rest);
        if (!clean)
          return NULL;
        char *r = repointable_link_at(clean, wroots, depth + 1);
        free(clean);
        return r;
      }
      if (missing || c == '\0')
        break;
      *s = c;
    }
  }
  free(p);
  return NULL;
}

/* Protected names apply to roots that are directories or do not exist yet. */
static bool root_takes_protection(const char *root) {
  struct stat st;
  if (stat(root, &st) != 0)
    return true;
  return S_ISDIR(st.st_mode);
}

/* A path inside a git directory: a .git component anywhere. Git's own
 * metadata (hooks, config) runs code on the host wherever it lives, so a
 * writable root inside it (a cwd of repo/.git/hooks) is refused whether or
 * not a writable root covers the repository. .codex and .agents are
 * protected where a walk from a writable root meets them (a workspace
 * deliberately inside ~/.codex/worktrees/ stays a workspace). */
static bool has_git_component(const char *p) {
  for (const char *s = p; (s = strchr(s, '/')) != NULL;) {
    s++;
    if (strncmp(s, ".git", 4) == 0 && (s[4] == '/' || s[4] == '\0'))
      return true;
  }
  return false;
}

/* The protected paths of the directories from `top` down to `bottom`
 * (both included; bottom inside top): each one's .git, .codex, .agents and
 * gitdir target. A gitdir pointer the sandbox could re-point sets *refuse. */
static int protect_walk(const char *top, const char *bottom, const pol_strvec *wroots,
                        pol_strvec *prot, pol_strvec *tdirs, pol_strvec *targets,
                        char **refuse) {
  char *d = strdup(bottom);
  if (!d)
    return -ENOMEM;
  int rc = 0;
  for (;;) {
    if (root_takes_protection(d)) {
      for (size_t k = 0; rc == 0 && protected_names[k]; k++)
        rc = pol_sv_push_own(prot, pol_path_join(d, protected_names[k]));
      char *lex = NULL;
      char *t = rc == 0 ? gitdir_target(d, &lex) : NULL;
      if (t) {
        char *link = *refuse ? NULL : repointable_link(lex, wroots);
        if (link) {
          char buf[PATH_MAX * 2 + 160];
          snprintf(buf, sizeof buf,
                   "the git pointer %s/.git leads through the symlink %s, which the sandbox "
                   "could re-point to plant hooks that the host's git runs",
                   strcmp(d, "/") == 0 ? "" : d, link);
          free(link);
          *refuse = strdup(buf);
          if (!*refuse)
            rc = -ENOMEM;
        }
        if (rc == 0 && (rc = pol_sv_push(targets, t)) == 0 && (rc = pol_sv_push(tdirs, d)) == 0)
          rc = pol_sv_push_own(prot, t);
        else
          free(t);
      }
      free(lex);
    }
    if (rc < 0 || strcmp(d, top) == 0 || strcmp(d, "/") == 0)
      break;
    char *slash = strrchr(d, '/');
    if (slash == d)
      d[1] = '\0';
    else
      *slash = '\0';
  }
  free(d);
  return rc;
}

/* Every directory on $PATH (absolute entries, normalized, "/" left out). */
static int path_dirs(const char *path_env, pol_strvec *out) {
  if (!path_env)
    return 0;
  int rc = 0;
  const char *s = path_env;
  while (rc == 0 && *s) {
    size_t n = strcspn(s, ":");
    if (n > 1 && s[0] == '/' && n < PATH_MAX) {
      char buf[PATH_MAX];
      memcpy(buf, s, n);
      buf[n] = '\0';
      char *p = pol_path_normalize(buf);
      if (!p)
        rc = -ENOMEM;
      else if (strcmp(p, "/") == 0)
        free(p);
      else
        rc = pol_sv_push_own(out, p);
    }
    s += n;
    if (*s == ':')
      s++;
  }
  return rc;
}

/* ---- plan ---- */

void pol_plan_clear_fs(policy_plan *plan) {
  for (size_t i = 0; i < plan->n_readable; i++)
    free(plan->readable_roots[i]);
  free(plan->readable_roots);
  for (size_t i = 0; i < plan->n_writable; i++) {
    for (size_t k = 0; k < plan->writable_roots[i].n_read_only; k++)
      free(plan->writable_roots[i].read_only_subpaths[k]);
    free(plan->writable_roots[i].read_only_subpaths);
    free(plan->writable_roots[i].root);
  }
  free(plan->writable_roots);
  for (size_t i = 0; i < plan->n_unreadable; i++)
    free(plan->unreadable_roots[i]);
  free(plan->unreadable_roots);
  free(plan->reason);
  plan->reason = NULL;
  plan->readable_roots = plan->unreadable_roots = NULL;
  plan->writable_roots = NULL;
  plan->n_readable = plan->n_writable = plan->n_unreadable = 0;
}

void policy_plan_free(policy_plan *plan) {
  if (!plan)
    return;
  pol_plan_clear_fs(plan);
  free(plan->workspace);
  free(plan);
}

static int plan_full_write(policy_plan *plan) {
  plan->full_disk_read = plan->full_disk_write = true;
  plan->writable_roots = calloc(1, sizeof *plan->writable_roots);
  if (!plan->writable_roots)
    return -ENOMEM;
  plan->writable_roots[0].root = strdup("/");
  if (!plan->writable_roots[0].root) {
    free(plan->writable_roots);
    plan->writable_roots = NULL;
    return -ENOMEM;
  }
  plan->n_writable = 1;
  return 0;
}

/* A $HOME carveout applies only where $HOME's own entry decides the access
 * (an explicit, more specific entry wins over the expansion). */
static bool decided_by_home(const pol_rset *rs, const char *p, const char *home) {
  const pol_rentry *best = rset_best(rs, p);
  return best && strcmp(best->path, home) == 0;
}

/* Replace a root that is exactly $HOME by its children. */
static int expand_home_roots(const pol_strvec *in, const char *home_canon, const char *home_raw,
                             bool writable, pol_strvec *out, pol_strvec *carve) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < in->n; i++) {
    if (home_canon && strcmp(in->v[i], home_canon) == 0) {
      pol_strvec kids = {0}, cv = {0};
      if (pol_home_expand(home_canon, home_raw, writable, &kids, &cv) == 0) {
        for (size_t k = 0; rc == 0 && k < kids.n; k++)
          rc = pol_sv_push(out, kids.v[k]);
        for (size_t k = 0; rc == 0 && k < cv.n; k++)
          rc = pol_sv_push(carve, cv.v[k]);
      } /* else: $HOME cannot be listed; drop the root rather than grant it whole */
      pol_sv_free(&kids);
      pol_sv_free(&cv);
    } else {
      rc = pol_sv_push(out, in->v[i]);
    }
  }
  return rc;
}

static void free_wroots(policy_writable_root *wr, size_t n) {
  for (size_t i = 0; wr && i < n; i++) {
    for (size_t k = 0; k < wr[i].n_read_only; k++)
      free(wr[i].read_only_subpaths[k]);
    free(wr[i].read_only_subpaths);
    free(wr[i].root);
  }
  free(wr);
}

/* /tmp is writable only because of :slash_tmp or :tmpdir (see
 * policy_plan.private_tmp). */
static bool private_tmp(const pol_ir *ir, const pol_rset *rs, const policy_plan *plan) {
  bool root = false;
  for (size_t i = 0; i < plan->n_writable && !root; i++)
    root = strcmp(plan->writable_roots[i].root, "/tmp") == 0;
  if (!root)
    return false;
  bool token = false;
  for (size_t i = 0; i < rs->n; i++) {
    const pol_rentry *e = &rs->v[i];
    pol_token t = ir->entries[e->idx].tok;
    if (e->minimal || !pol_path_under("/tmp", e->path))
      continue;
    if (t == POL_TOK_SLASH_TMP || t == POL_TOK_TMPDIR)
      token = token || e->access == POL_ACC_WRITE;
    else if (strcmp(e->path, "/tmp") == 0 || e->access == POL_ACC_WRITE)
      return false; /* the host's /tmp by name, or under a writable ancestor */
  }
  return token;
}

static int set_refusal(policy_plan *plan, char *why) {
  if (!why)
    return -ENOMEM;
  if (plan->reason)
    free(why);
  else
    plan->reason = why;
  plan->enforceable = false;
  return 0;
}

int pol_plan_fill_fs(const pol_ir *ir, const char *cwd_canon, const policy_context *ctx,
                     policy_plan *plan) {
  pol_rset rs;
  int rc = pol_rset_build(ir, cwd_canon, ctx, &rs);
  if (rc < 0)
    return rc;
  pol_strvec w = {0}, rd = {0}, un = {0}, rd2 = {0}, rcarve = {0}, prot = {0}, secrets = {0},
             keep = {0}, tdirs = {0}, targets = {0};
  char *home_canon = NULL, *refuse = NULL;
  policy_writable_root *wr = NULL;
  size_t n_wr = 0;

  bool root_read = false, any_none = false, explicit_root_write = false, cwd_is_slash_w = false;
  bool root_token_write = false, all_write = true;
  for (size_t i = 0; i < rs.n; i++) {
    const pol_rentry *e = &rs.v[i];
    if (e->minimal)
      continue;
    pol_access a = pol_rset_access(&rs, e->path);
    if (e->is_root && e->access != POL_ACC_NONE)
      root_read = true;
    if (e->is_root && e->access == POL_ACC_WRITE)
      explicit_root_write = true;
    if (ir->entries[e->idx].tok == POL_TOK_CWD && e->access == POL_ACC_WRITE &&
        strcmp(e->path, "/") == 0)
      cwd_is_slash_w = true;
    if (ir->entries[e->idx].tok == POL_TOK_ROOT && e->access == POL_ACC_WRITE)
      root_token_write = true;
    if (a == POL_ACC_NONE)
      any_none = true;
    if (a != POL_ACC_WRITE)
      all_write = false;
  }
  pol_access root_acc = pol_rset_access(&rs, "/");
  bool full_read = root_read && root_acc != POL_ACC_NONE && !any_none;
  pol_plan_clear_fs(plan);
  /* :root=write with nothing narrowing it is the split spelling of
   * dangerFullAccess: the whole disk, nothing protected. Every other plan
   * that makes "/" writable (writableRoots ["/"]) keeps the protections. */
  if (root_token_write && root_acc == POL_ACC_WRITE && all_write) {
    rc = plan_full_write(plan);
    goto out;
  }
  /* A workspace that is "/" (a spawn without cwd to a server started in /)
   * would make the whole host writable by accident: refused. Naming "/"
   * (writableRoots ["/"], :root=write) is a decision and stays allowed,
   * with every protected path read-only. */
  if (cwd_is_slash_w && !explicit_root_write &&
      (rc = set_refusal(plan, strdup("the workspace (cwd) is \"/\": making it writable would make "
                                     "the whole host writable; pass a cwd, or name \"/\" in "
                                     "writableRoots to mean it"))) < 0)
    goto out;
  plan->full_disk_read = full_read;
  plan->full_disk_write = false;

  for (size_t i = 0; rc == 0 && i < rs.n; i++) {
    const pol_rentry *e = &rs.v[i];
    pol_access a = pol_rset_access(&rs, e->path);
    if (!e->minimal && a == POL_ACC_WRITE && !pol_sv_contains(&w, e->path))
      rc = pol_sv_push(&w, e->path);
    if (rc == 0 && !full_read && a != POL_ACC_NONE)
      rc = pol_sv_push(&rd, e->path);
    /* The filesystem root is never an unreadable root: a restricted policy
     * already hides everything outside its readable roots. */
    if (rc == 0 && !full_read && !e->minimal && a == POL_ACC_NONE && strcmp(e->path, "/") != 0)
      rc = pol_sv_push(&un, e->path);
  }
  if (rc < 0)
    goto out;
  pol_sv_sort_uniq(&w);

  if (ctx && ctx->home && ctx->home[0] == '/') {
    home_canon = pol_path_normalize(ctx->home);
    if (!home_canon) {
      rc = -ENOMEM;
      goto out;
    }
  }
  /* Reading: a readable root that is exactly $HOME is replaced by its
   * children minus the secret stores (home.c). A writable $HOME stays one
   * root, with its secrets and persistence paths protected below. */
  if ((rc = expand_home_roots(&rd, home_canon, ctx ? ctx->home : NULL, false, &rd2, &rcarve)) < 0)
    goto out;
  pol_sv_sort_uniq(&rd2);
  /* Readable $HOME carveouts that exist become unreadable roots. */
  for (size_t i = 0; rc == 0 && i < rcarve.n; i++) {
    struct stat st;
    if (lstat(rcarve.v[i], &st) == 0 && decided_by_home(&rs, rcarve.v[i], home_canon))
      rc = pol_sv_push(&un, rcarve.v[i]);
  }
  if (rc < 0)
    goto out;

  /* The protected paths, one set for every writable root ("prot"):
   *  - .git, .codex, .agents (and a .git file's gitdir target) of every
   *    directory from a writable root down to each writable root and to the
   *    cwd inside it: the repositories enclosing the workspace, not only
   *    its own;
   *  - $HOME's secret entries and host-persistence paths;
   *  - every directory on the server's PATH.
   * A writable root keeps every protected path inside it, and a writable
   * root that lies inside a protected path (or inside any .git: a cwd of
   * repo/.git/hooks) is no writable root at all. */
  for (size_t i = 0; rc == 0 && i < w.n; i++) {
    for (size_t j = 0; rc == 0 && j < w.n; j++)
      if (pol_path_under(w.v[j], w.v[i]))
        rc = protect_walk(w.v[i], w.v[j], &w, &prot, &tdirs, &targets, &refuse);
    if (rc == 0 && cwd_canon && pol_path_under(cwd_canon, w.v[i]))
      rc = protect_walk(w.v[i], cwd_canon, &w, &prot, &tdirs, &targets, &refuse);
  }
  if (rc == 0 && home_canon) {
    rc = pol_home_secret_paths(home_canon, ctx->home, &secrets);
    for (size_t i = 0; rc == 0 && i < secrets.n; i++)
      rc = pol_sv_push(&prot, secrets.v[i]);
    if (rc == 0)
      rc = pol_home_persistence_paths(home_canon, &prot);
  }
  if (rc == 0)
    rc = path_dirs(ctx ? ctx->path_env : NULL, &prot);
  if (rc < 0)
    goto out;
  pol_sv_sort_uniq(&prot);
  /* A protected path inside another one is read-only already (the walk
   * into a cwd inside .git, ~/.gnupg/.git). Decide first, then compact. */
  bool *inner = calloc(prot.n ? prot.n : 1, sizeof *inner);
  if (!inner) {
    rc = -ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < prot.n; i++)
    for (size_t k = 0; k < prot.n && !inner[i]; k++)
      inner[i] = k != i && pol_path_strictly_under(prot.v[i], prot.v[k]);
  size_t np = 0;
  for (size_t i = 0; i < prot.n; i++) {
    if (inner[i])
      free(prot.v[i]);
    else
      prot.v[np++] = prot.v[i];
  }
  free(inner);
  prot.n = np;
  if (refuse && (rc = set_refusal(plan, refuse)) < 0) {
    refuse = NULL;
    goto out;
  }
  refuse = NULL;

  for (size_t i = 0; rc == 0 && i < w.n; i++) {
    bool drop = has_git_component(w.v[i]);
    for (size_t k = 0; !drop && k < prot.n; k++)
      drop = pol_path_under(w.v[i], prot.v[k]);
    if (!drop)
      rc = pol_sv_push(&keep, w.v[i]);
  }
  if (rc < 0)
    goto out;

  /* Where reads are restricted, the secrets inside writable roots are
   * unreadable (they exist) as well as read-only (they may be created). */
  for (size_t i = 0; rc == 0 && !full_read && i < secrets.n; i++) {
    struct stat st;
    bool inside = false;
    for (size_t k = 0; k < keep.n && !inside; k++)
      inside = pol_path_strictly_under(secrets.v[i], keep.v[k]);
    if (inside && lstat(secrets.v[i], &st) == 0)
      rc = pol_sv_push(&un, secrets.v[i]);
  }
  if (rc < 0)
    goto out;
  pol_sv_sort_uniq(&un);

  wr = calloc(keep.n ? keep.n : 1, sizeof *wr);
  if (!wr) {
    rc = -ENOMEM;
    goto out;
  }
  for (size_t i = 0; rc == 0 && i < keep.n; i++) {
    const char *root = keep.v[i];
    pol_strvec ro = {0};
    for (size_t k = 0; rc == 0 && k < rs.n; k++) {
      const pol_rentry *e = &rs.v[k];
      if (!e->minimal && pol_path_strictly_under(e->path, root) &&
          pol_rset_access(&rs, e->path) != POL_ACC_WRITE)
        rc = pol_sv_push(&ro, e->path);
    }
    for (size_t k = 0; rc == 0 && k < prot.n; k++)
      if (pol_path_strictly_under(prot.v[k], root))
        rc = pol_sv_push(&ro, prot.v[k]);
    /* A gitdir target is listed with the root whose .git points at it,
     * also where it lies outside (read-only there anyway): the plan shows
     * what the pointer protects. */
    for (size_t k = 0; rc == 0 && k < targets.n; k++) {
      bool covered = false;
      for (size_t m = 0; m < ro.n && !covered; m++)
        covered = pol_path_under(targets.v[k], ro.v[m]);
      if (!covered && pol_path_under(tdirs.v[k], root) && !pol_path_under(targets.v[k], root))
        rc = pol_sv_push(&ro, targets.v[k]);
    }
    wr[n_wr].root = strdup(root);
    if (!wr[n_wr].root)
      rc = -ENOMEM;
    pol_sv_sort_uniq(&ro);
    wr[n_wr].read_only_subpaths = pol_sv_steal(&ro, &wr[n_wr].n_read_only);
    n_wr++;
  }
  if (rc < 0)
    goto out;
  /* fullDiskWrite stays for the :root=write shortcut above: here "/" may
   * be writable, but with its protected paths carved out. */
  plan->writable_roots = wr;
  plan->n_writable = n_wr;
  wr = NULL;
  if (!full_read)
    plan->readable_roots = pol_sv_steal(&rd2, &plan->n_readable);
  plan->unreadable_roots = pol_sv_steal(&un, &plan->n_unreadable);
  plan->private_tmp = private_tmp(ir, &rs, plan);

out:
  free_wroots(wr, n_wr);
  free(refuse);
  pol_sv_free(&w);
  pol_sv_free(&rd);
  pol_sv_free(&un);
  pol_sv_free(&rd2);
  pol_sv_free(&rcarve);
  pol_sv_free(&prot);
  pol_sv_free(&secrets);
  pol_sv_free(&keep);
  pol_sv_free(&tdirs);
  pol_sv_free(&targets);
  free(home_canon);
  pol_rset_free(&rs);
  return rc;
}

static bool strs_equal(char *const *a, size_t na, char *const *b, size_t nb) {
  if (na != nb)
    return false;
  for (size_t i = 0; i < na; i++)
    if (strcmp(a[i], b[i]) != 0)
      return false;
  return true;
}

bool pol_plan_fs_equal(const policy_plan *a, const policy_plan *b) {
  if (a->full_disk_read != b->full_disk_read || a->full_disk_write != b->full_disk_write ||
      !strs_equal(a->readable_roots, a->n_readable, b->readable_roots, b->n_readable) ||
      !strs_equal(a->unreadable_roots, a->n_unreadable, b->unreadable_roots, b->n_unreadable) ||
      a->n_writable != b->n_writable)
    return false;
  for (size_t i = 0; i < a->n_writable; i++) {
    const policy_writable_root *x = &a->writable_roots[i], *y = &b->writable_roots[i];
    if (strcmp(x->root, y->root) != 0 ||
        !strs_equal(x->read_only_subpaths, x->n_read_only, y->read_only_subpaths, y->n_read_only))
      return false;
  }
  return true;
}

/* ---- backend and enforceability ---- */

static int set_reason(policy_plan *plan, const char *fmt, const char *a) {
  char buf[400];
  snprintf(buf, sizeof buf, fmt, a);
  plan->enforceable = false;
  free(plan->reason);
  plan->reason = strdup(buf);
  return plan->reason ? 0 : -ENOMEM;
}

static int plan_backend(policy_plan *plan, const policy_context *ctx) {
  if (plan->reason) {
    /* refused while the plan was built (pol_plan_fill_fs) */
    plan->enforceable = false;
    plan->backend = POLICY_BACKEND_NAMESPACES;
    return 0;
  }
  plan->enforceable = true;
  if (!plan->enforce) {
    plan->backend = POLICY_BACKEND_NONE;
    return 0;
  }
  bool carveouts = plan->n_unreadable > 0;
  for (size_t i = 0; i < plan->n_writable; i++)
    if (plan->writable_roots[i].n_read_only > 0)
      carveouts = true;
  policy_features f = {0};
  if (ctx)
    f = ctx->features;
  /* The same choice process/spawn makes (server/sandbox/spec.c): the
   * namespaces backend whenever the kernel allows user namespaces, whatever
   * the network mode (Landlock alone cannot give a read-only view, a
   * private /dev or IPC namespace). Landlock alone only where namespaces
   * are blocked and it can be exact: full read, no carve-outs, full
   * network, ABI 3 or later (truncate). */
  const char *why = NULL; /* why Landlock alone cannot do */
  if (!plan->full_disk_read)
    why = "reads are restricted to some roots";
  else if (plan->n_unreadable > 0)
    why = "it hides unreadable roots";
  else if (carveouts)
    why = "writable roots have read-only subpaths (.git, .codex, .agents or carveouts)";
  else if (plan->network != POLICY_NET_FULL)
    why = plan->network == POLICY_NET_NONE ? "network mode none needs a network namespace"
                                           : "network mode proxy needs a network namespace";
  else if (f.landlock_abi < 3)
    why = "Landlock alone needs ABI 3 or later (truncate) to be exact";
  plan->backend = f.user_namespaces || why ? POLICY_BACKEND_NAMESPACES : POLICY_BACKEND_LANDLOCK;
  if (!f.seccomp)
    return set_reason(plan, "the kernel does not support seccomp filters%s; a sandbox cannot be "
                            "enforced", "");
  if (plan->backend == POLICY_BACKEND_NAMESPACES && !f.user_namespaces)
    return set_reason(plan,
                      "the policy needs user and mount namespaces (%s), which this kernel does "
                      "not allow for unprivileged users",
                      why);
  if (plan->network != POLICY_NET_FULL && !f.network_namespaces)
    return set_reason(plan,
                      "network mode %s needs a network namespace, which this kernel does not "
                      "allow",
                      policy_net_mode_name(plan->network));
  if (plan->network == POLICY_NET_PROXY && !(ctx && (ctx->proxy_available || ctx->proxy_listeners)))
    return set_reason(plan,
                      "network mode %s needs the server's egress proxy, which is not running "
                      "for this process",
                      "proxy");
  return 0;
}

/* ---- public entry points ---- */

static void cwd_jpath(const char *json_path, char *buf, size_t n) {
  const char *dot = strrchr(json_path, '.');
  if (dot && strcmp(dot + 1, "sandbox") == 0)
    snprintf(buf, n, "%.*scwd", (int)(dot - json_path + 1), json_path);
  else
    snprintf(buf, n, "cwd");
}

static int cwd_canon_of(const char *cwd, const char *json_path, char **out, policy_error *err) {
  char jp[256];
  cwd_jpath(json_path, jp, sizeof jp);
  char *own = NULL;
  if (!cwd) {
    own = getcwd(NULL, 0);
    if (!own) {
      pol_err_set(err, jp, "%s is missing and the server's cwd is unknown", jp);
      return -EINVAL;
    }
    cwd = own;
  }
  if (cwd[0] != '/') {
    pol_err_set(err, jp, "%s: \"%s\" must be an absolute path", jp, cwd);
    free(own);
    return -EINVAL;
  }
  *out = pol_path_normalize(cwd);
  free(own);
  if (!*out) {
    pol_err_set(err, jp, "out of memory while resolving %s", jp);
    return -ENOMEM;
  }
  return 0;
}

int pol_prepare(const json_t *sandbox, const char *cwd, const policy_context *ctx,
                const char *json_path, char **cwd_out, pol_ir *ir, policy_error *err) {
  int rc = cwd_canon_of(cwd, json_path, cwd_out, err);
  if (rc < 0)
    return rc;
  rc = pol_parse(sandbox, ctx, json_path, ir, err);
  if (rc < 0) {
    free(*cwd_out);
    *cwd_out = NULL;
  }
  return rc;
}

int policy_resolve(const json_t *sandbox, const char *cwd, const policy_context *ctx,
                   const char *json_path, policy_plan **out, policy_error *err) {
  policy_context zero;
  if (!ctx) {
    memset(&zero, 0, sizeof zero);
    ctx = &zero;
  }
  if (!json_path)
    json_path = "sandbox";
  *out = NULL;
  char *cwd_canon = NULL;
  pol_ir ir;
  int rc = pol_prepare(sandbox, cwd, ctx, json_path, &cwd_canon, &ir, err);
  if (rc < 0)
    return rc;
  policy_plan *plan = calloc(1, sizeof *plan);
  if (!plan) {
    rc = -ENOMEM;
    goto out;
  }
  plan->network = ir.net;
  plan->workspace = strdup(cwd_canon);
  if (!plan->workspace) {
    rc = -ENOMEM;
    goto out;
  }
  if (ir.kind == POL_KIND_RESTRICTED) {
    plan->enforce = true;
    rc = pol_plan_fill_fs(&ir, cwd_canon, ctx, plan);
  } else {
    plan->enforce = false;
    plan->external = ir.kind == POL_KIND_EXTERNAL;
    rc = plan_full_write(plan);
  }
  if (rc == 0) {
    if (ir.legacy) {
      plan->legacy_equivalent = true;
    } else {
      json_t *legacy = NULL;
      policy_error ignored;
      plan->legacy_equivalent = pol_ir_to_legacy(&ir, cwd_canon, ctx, &legacy, &ignored) == 0;
      json_decref(legacy);
    }
    rc = plan_backend(plan, ctx);
  }
out:
  if (rc < 0) {
    policy_plan_free(plan);
    if (rc == -ENOMEM)
      pol_err_set(err, json_path, "out of memory while resolving %s", json_path);
    else
      pol_err_set(err, json_path, "%s could not be resolved: %s", json_path, strerror(-rc));
  } else {
    *out = plan;
  }
  pol_ir_free(&ir);
  free(cwd_canon);
  return rc;
}

static json_t *strs_json(char *const *v, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < n; i++)
    json_array_append_new(a, json_string(v[i]));
  return a;
}

json_t *policy_plan_to_json(const policy_plan *plan) {
  if (!plan)
    return NULL;
  json_t *w = json_array();
  for (size_t i = 0; w && i < plan->n_writable; i++) {
    const policy_writable_root *r = &plan->writable_roots[i];
    json_array_append_new(w, json_pack("{s:s,s:o}", "root", r->root, "readOnlySubpaths",
                                       strs_json(r->read_only_subpaths, r->n_read_only)));
  }
  return json_pack("{s:b,s:b,s:o,s:o,s:o,s:s}", "fullDiskRead", plan->full_disk_read,
                   "fullDiskWrite", plan->full_disk_write, "readableRoots",
                   strs_json(plan->readable_roots, plan->n_readable), "writableRoots", w,
                   "unreadableRoots", strs_json(plan->unreadable_roots, plan->n_unreadable),
                   "network", policy_net_mode_name(plan->network));
}
