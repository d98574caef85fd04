/* server/sandbox: kernel enforcement of a resolved policy plan, and the
 * state directory behind sandbox/readiness, sandbox/setup, sandbox/refresh.
 *
 * Split in two halves:
 *   - parent side (normal C, may allocate): sandbox_spec_build() turns a
 *     policy_plan into an immutable sandbox_spec holding everything the child
 *     needs already computed: mount list, Landlock rules, the seccomp BPF
 *     program (exported by libseccomp in the parent), uid/gid map strings,
 *     environment additions.
 *   - child side (after clone, async-signal-safe: no malloc, no stdio, no
 *     locks): sandbox_child_init() runs in the supervisor process that is
 *     pid 1 of the new namespaces; sandbox_child_final() runs in the command
 *     process right before execve.
 *
 * The exec engine (server/exec) owns the process sequence:
 *   parent: flags = sandbox_spec_clone_flags(spec); clone(flags|CLONE_PIDFD)
 *   init (pid 1 of the namespaces): setsid, [TIOCSCTTY],
 *           sandbox_child_init(spec, &step)      -- maps, mounts, /proc, lo
 *           fork -> command process
 *   command: stdio, chdir(cwd), close fds,
 *           sandbox_child_final(spec, &step)     -- Landlock, seccomp, NNP, caps
 *           execve
 *   parent after the run: sandbox_spec_cleanup_host(spec)
 *
 * Errors: 0 or a negative errno; on the child side *step names the failing
 * step ("mount /work", "landlock_restrict_self", ...) for -32004/-32003 data.
 * Ownership: the caller owns the spec and frees it with sandbox_spec_free()
 * after the process has been reaped.
 */
#ifndef WARDEN_SANDBOX_H
#define WARDEN_SANDBOX_H

#include "server/policy/policy.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct sandbox_spec sandbox_spec;

/* Probe what this kernel can do (Landlock ABI via landlock_create_ruleset
 * with LANDLOCK_CREATE_RULESET_VERSION, user and network namespaces by
 * trying them in a short-lived child, seccomp via prctl). Blocking, a few ms;
 * called once at startup and by sandbox/setup. */
void sandbox_features_probe(policy_features *out);

typedef struct sandbox_build_opts {
  const char *cwd;        /* absolute, the command's cwd */
  unsigned host_uid;      /* getuid() of the server */
  unsigned host_gid;
  const char *exe_path;   /* the server's own binary, kept readable */
} sandbox_build_opts;

/* Build a spec for `plan`. Fails (-EPERM, *reason set to a malloc'd message)
 * when the plan is not enforceable here; never returns a weaker spec. */
int sandbox_spec_build(const policy_plan *plan, const sandbox_build_opts *opts,
                       sandbox_spec **out, char **reason);
void sandbox_spec_free(sandbox_spec *spec);

/* CLONE_NEW* flags the supervisor must be created with. */
unsigned long sandbox_spec_clone_flags(const sandbox_spec *spec);

/* Environment additions: a NULL-terminated array of "NAME=value" strings
 * owned by the spec (WARDEN_SANDBOX=1, WARDEN_SANDBOX_NETWORK=..., and the
 * proxy variables in proxy mode). They override the caller's env. */
char *const *sandbox_spec_env(const sandbox_spec *spec);

/* "none" | "landlock" | "namespaces"; and the network mode. */
const char *sandbox_spec_backend_name(const sandbox_spec *spec);
policy_net_mode sandbox_spec_network(const sandbox_spec *spec);

/* Child side; see the sequence above. Async-signal-safe. */
int sandbox_child_init(const sandbox_spec *spec, const char **step);
int sandbox_child_final(const sandbox_spec *spec, const char **step);

/* Parent side, after the run: remove mount points that had to be created on
 * the host to mask missing protected paths. */
void sandbox_spec_cleanup_host(const sandbox_spec *spec);

#endif
