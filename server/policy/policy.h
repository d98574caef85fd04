/* server/policy: the sandbox policy model.
 *
 * Turns any SandboxPolicy of PROTOCOL.md (as parsed JSON) plus a cwd into one
 * resolved plan that the enforcement code (server/sandbox) executes, and
 * converts between the legacy and split shapes. Pure: no I/O but path
 * resolution (realpath/lstat/readdir of the paths a policy names, and the
 * ssh config under $HOME). Includes nothing of the other engines.
 *
 * Errors: functions return 0 or a negative errno-style code; on failure a
 * policy_error is filled with a message naming the offending entry and the
 * JSON path of it (e.g. "sandbox.fileSystem.entries[2].path").
 *
 * Ownership: every *_free releases everything reachable from its argument;
 * strings in the plan are owned by the plan.
 */
#ifndef WARDEN_POLICY_H
#define WARDEN_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* What the running kernel can enforce; probed once by the server. */
typedef struct policy_features {
  int landlock_abi; /* 0 when Landlock is unavailable */
  bool user_namespaces;
  bool network_namespaces;
  bool seccomp;
} policy_features;

typedef enum policy_net_mode {
  POLICY_NET_FULL = 0,
  POLICY_NET_NONE,
  POLICY_NET_PROXY,
} policy_net_mode;

/* Which enforcement the plan needs. */
typedef enum policy_backend {
  POLICY_BACKEND_NONE = 0,   /* dangerFullAccess / externalSandbox */
  POLICY_BACKEND_LANDLOCK,   /* Landlock alone expresses it exactly */
  POLICY_BACKEND_NAMESPACES, /* mount/user/pid(/net) namespaces (+Landlock, seccomp) */
} policy_backend;

typedef struct policy_writable_root {
  char *root;                 /* canonical absolute path */
  char **read_only_subpaths;  /* canonical absolute paths inside root */
  size_t n_read_only;
} policy_writable_root;

typedef struct policy_plan {
  bool enforce;         /* false: run without any sandbox (full access / external) */
  bool full_disk_read;  /* readable_roots empty and meaningless when true */
  bool full_disk_write; /* writable_roots[0] is "/" when true */
  char **readable_roots;
  size_t n_readable;
  policy_writable_root *writable_roots;
  size_t n_writable;
  char **unreadable_roots; /* hidden entirely (tmpfs or /dev/null over them) */
  size_t n_unreadable;
  /* /tmp is the workspace's own, not the host's: "/tmp" is a writable root
   * only through the :slash_tmp or :tmpdir tokens (workspaceWrite's
   * implicit temp dirs), never named as a path (writableRoots ["/tmp"],
   * a cwd of /tmp) nor covered by a writable ancestor.
   * The sandbox may then bind a per-workspace directory (keyed by
   * `workspace`) at /tmp instead of the host's (issue 9, item 3). The
   * plan's protected paths under /tmp apply to whatever is bound there.
   * Not in the JSON yet. */
  bool private_tmp;
  char *workspace; /* the canonical cwd the plan was resolved for */
  policy_net_mode network;
  bool external;          /* externalSandbox: the caller sandboxes */
  policy_backend backend; /* what enforcement this plan needs */
  bool legacy_equivalent; /* split<->legacy round trip keeps it */
  bool enforceable;       /* this kernel (features) can enforce it exactly */
  char *reason;           /* why not enforceable, else NULL */
} policy_plan;

typedef struct policy_error {
  char message[512]; /* names the entry and what was wrong */
  char path[256];    /* JSON path of the offending value, e.g. "sandbox.type" */
} policy_error;

/* Named profiles from the config file: an object name -> SandboxPolicy
 * (which may carry "extends": "<other profile or builtin>"). May be NULL. */
typedef struct policy_context {
  const json_t *profiles; /* borrowed */
  const char *home;       /* $HOME as the server sees it, may be NULL */
  const char *tmpdir;     /* $TMPDIR as the server sees it, may be NULL */
  const char *path_env;   /* $PATH as the server sees it, may be NULL: every
                           * directory on it is read-only in writable roots */
  policy_features features;
  bool proxy_available; /* networkAccess:false maps to proxy when true */
  bool proxy_listeners; /* an explicit mode "proxy" can be served (listeners
                         * handed to the server; until the egress proxy
                         * exists they refuse every request) */
} policy_context;

/* Resolve a SandboxPolicy JSON object against cwd (absolute). `json_path`
 * prefixes error paths (e.g. "params.sandbox"). sandbox==NULL means the
 * default {type:"workspaceWrite"}. On success *out is a new plan. */
int policy_resolve(const json_t *sandbox, const char *cwd, const policy_context *ctx,
                   const char *json_path, policy_plan **out, policy_error *err);

/* The plan as the `plan` object of policy/resolve's result (new reference). */
json_t *policy_plan_to_json(const policy_plan *plan);

/* Convert a policy to "legacy" or "split" shape. Returns a new SandboxPolicy
 * object in *out, or -EINVAL with err naming the entry that cannot be
 * expressed in the target shape. */
int policy_transform(const json_t *sandbox, const char *cwd, const policy_context *ctx,
                     const char *to, const char *json_path, json_t **out, policy_error *err);

void policy_plan_free(policy_plan *plan);

const char *policy_net_mode_name(policy_net_mode m);       /* "full"|"none"|"proxy" */
const char *policy_backend_name(policy_backend b);         /* "none"|"landlock"|"namespaces" */

#endif
