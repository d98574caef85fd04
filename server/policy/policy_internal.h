/* server/policy internals shared by the module's files (and its unit tests).
 * Not part of the public surface: nothing outside server/policy/ and
 * tests/unit/policy/ includes this header.
 *
 * The module works in three steps:
 *   parse.c     JSON SandboxPolicy (any shape, profiles, extends) -> pol_ir
 *   resolve.c   pol_ir + cwd -> policy_plan (normalization, most-specific
 *               resolution, writable roots and carveouts, protected paths,
 *               $HOME expansion through home.c / sshconfig.c, backend)
 *   transform.c pol_ir -> legacy / split JSON, and the round-trip test that
 *               decides legacy equivalence
 */
#ifndef WARDEN_POLICY_INTERNAL_H
#define WARDEN_POLICY_INTERNAL_H

#include "server/policy/policy.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- string vectors (own their strings) ---- */

typedef struct pol_strvec {
  char **v;
  size_t n, cap;
} pol_strvec;

int pol_sv_push(pol_strvec *sv, const char *s);  /* copies s */
int pol_sv_push_own(pol_strvec *sv, char *s);    /* takes s (freed on failure) */
bool pol_sv_contains(const pol_strvec *sv, const char *s);
void pol_sv_sort_uniq(pol_strvec *sv);
void pol_sv_free(pol_strvec *sv);
/* Moves the strings out as a plain array (NULL when empty); sv is emptied. */
char **pol_sv_steal(pol_strvec *sv, size_t *n);

/* ---- paths ---- */

/* Lexically clean an absolute path: collapse "//", drop ".", apply "..".
 * NULL (errno EINVAL) when p is not absolute, ENOMEM on allocation. */
char *pol_path_clean(const char *p);
/* Clean, then canonicalize the longest existing ancestor and append the rest
 * unchanged (paths that do not exist yet under symlinked parents). */
char *pol_path_normalize(const char *p);
char *pol_path_join(const char *dir, const char *name);
bool pol_path_under(const char *p, const char *root);          /* p == root or inside */
bool pol_path_strictly_under(const char *p, const char *root); /* inside, not equal */
size_t pol_path_depth(const char *p);                          /* "/" is 0 */

/* ---- errors ---- */

void pol_err_set(policy_error *err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- the intermediate representation ---- */

typedef enum pol_token {
  POL_TOK_PATH = 0,
  POL_TOK_ROOT,
  POL_TOK_MINIMAL,
  POL_TOK_CWD,
  POL_TOK_TMPDIR,
  POL_TOK_SLASH_TMP,
} pol_token;

/* Declared in precedence order for ties: none beats write beats read. */
typedef enum pol_access {
  POL_ACC_READ = 0,
  POL_ACC_WRITE = 1,
  POL_ACC_NONE = 2,
} pol_access;

typedef struct pol_entry {
  pol_token tok;
  char *path;  /* POL_TOK_PATH: lexically cleaned absolute path; else NULL */
  pol_access access;
  char *jpath; /* JSON path of the entry object, for messages */
} pol_entry;

typedef enum pol_kind {
  POL_KIND_RESTRICTED = 0, /* entries decide */
  POL_KIND_UNRESTRICTED,   /* dangerFullAccess: no sandbox */
  POL_KIND_EXTERNAL,       /* externalSandbox: the caller sandboxes */
} pol_kind;

typedef struct pol_ir {
  pol_kind kind;
  pol_entry *entries;
  size_t n_entries, cap_entries;
  policy_net_mode net;
  bool net_set;   /* the policy said something about the network */
  char *jpath;    /* JSON path of the policy object */
  char *net_jpath; /* JSON path of the network setting */
  /* Non-NULL when the policy is one legacy shape, unchanged: its normalized
   * legacy JSON object (every field explicit). Owned reference. */
  json_t *legacy;
} pol_ir;

/* Parse any SandboxPolicy (profiles and extends resolved) into *ir. */
int pol_parse(const json_t *sandbox, const policy_context *ctx, const char *jpath, pol_ir *ir,
              policy_error *err);
/* The split-shaped IR of a legacy policy (a normalized legacy JSON object as
 * produced by the parser or transform.c). */
int pol_ir_from_legacy(const json_t *legacy, const policy_context *ctx, const char *jpath,
                       pol_ir *ir, policy_error *err);
void pol_ir_free(pol_ir *ir);
int pol_ir_add(pol_ir *ir, pol_token tok, const char *path, pol_access acc, const char *jpath);

const char *pol_access_name(pol_access a);
const char *pol_token_name(pol_token t); /* ":root", ...; NULL for POL_TOK_PATH */
policy_net_mode pol_net_restricted(const policy_context *ctx); /* none or proxy */

/* ---- resolution ---- */

/* One entry resolved to a concrete canonical path. */
typedef struct pol_rentry {
  char *path;
  pol_access access;
  bool is_root; /* :root or the path "/" */
  bool minimal; /* one of the :minimal platform roots */
  size_t idx;   /* index of the IR entry it came from */
} pol_rentry;

typedef struct pol_rset {
  pol_rentry *v;
  size_t n, cap;
} pol_rset;

int pol_rset_build(const pol_ir *ir, const char *cwd_canon, const policy_context *ctx,
                   pol_rset *out);
/* Effective access of canonical path p: the most specific covering entry,
 * ties by none > write > read; :minimal only fills in the default; no entry
 * means none. */
pol_access pol_rset_access(const pol_rset *rs, const char *p);
void pol_rset_free(pol_rset *rs);

/* Fill the file-system part of plan (full_disk_*, roots, carveouts) for a
 * restricted IR. cwd_canon is normalized. */
int pol_plan_fill_fs(const pol_ir *ir, const char *cwd_canon, const policy_context *ctx,
                     policy_plan *plan);
/* Free the roots of a plan and zero them (for plans on the stack). */
void pol_plan_clear_fs(policy_plan *plan);
/* Same readable/writable/unreadable roots, read-only subpaths and full-disk flags. */
bool pol_plan_fs_equal(const policy_plan *a, const policy_plan *b);

/* The first two steps of policy_resolve and policy_transform: the
 * canonical cwd (NULL means the server's own cwd; a relative cwd is an error
 * naming "<...>.cwd"), then the parsed policy. On success the caller frees
 * *cwd_out and the ir (pol_ir_free); on failure nothing is left to free. */
int pol_prepare(const json_t *sandbox, const char *cwd, const policy_context *ctx,
                const char *json_path, char **cwd_out, pol_ir *ir, policy_error *err);

/* The platform read roots behind :minimal (NULL-terminated). */
extern const char *const pol_minimal_roots[];

/* ---- $HOME ---- */

/* Secret stores under $HOME that a $HOME root never grants (NULL-terminated,
 * relative to $HOME). */
extern const char *const pol_home_secrets[];
/* Host-persistence paths under $HOME (NULL-terminated, relative). */
extern const char *const pol_home_persistence[];

/* $HOME's secret entries as canonical-$HOME paths (not followed, existing
 * or not): pol_home_secrets plus every top-level entry of $HOME that holds
 * a path ~/.ssh/config names. Sorted, unique. */
int pol_home_secret_paths(const char *home_canon, const char *home_raw, pol_strvec *out);
/* $HOME's host-persistence paths (pol_home_persistence), existing or not. */
int pol_home_persistence_paths(const char *home_canon, pol_strvec *out);

/* Expand a root that is exactly $HOME. home_canon is the normalized $HOME,
 * home_raw the value as given (for ~ in the ssh config). `children` gets the
 * canonical paths of the children that stay granted (symlinks, secret stores,
 * paths the ssh config names and, when `writable`, the protected names are
 * left out); `carveouts` the excluded paths that lie strictly inside a granted
 * child (they become read-only subpaths or unreadable roots). Returns
 * -errno when $HOME cannot be listed: the caller then drops the root. */
int pol_home_expand(const char *home_canon, const char *home_raw, bool writable,
                    pol_strvec *children, pol_strvec *carveouts);

/* Every path ~/.ssh/config names through Include (recursive, globs),
 * IdentityFile, CertificateFile, UserKnownHostsFile, GlobalKnownHostsFile,
 * RevokedHostKeys, ControlPath and IdentityAgent; ~, %d and ${HOME}
 * expanded; a value with another %-token or ${VAR} is cut to the directory
 * before it. Paths are lexically cleaned, absolute, not deduplicated.
 * A missing config is not an error (0, nothing added). */
int pol_ssh_config_paths(const char *home, pol_strvec *out);

/* ---- transforms ---- */

/* Project a parsed IR to a legacy SandboxPolicy object (new reference), or
 * -EINVAL with err naming the entry that cannot be expressed. Uses the
 * round-trip test for split-shaped IRs. */
int pol_ir_to_legacy(const pol_ir *ir, const char *cwd_canon, const policy_context *ctx,
                     json_t **out, policy_error *err);

#endif
