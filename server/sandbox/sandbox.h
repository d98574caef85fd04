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
 *           sandbox_child_init(spec, tty, &step) -- maps, mounts, /proc, lo
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
#include <jansson.h>

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
  /* The configured state directory (--state-dir / config), or NULL for the
   * default (sandbox_state_dir(NULL)). Holds the private /tmp of each
   * workspace and the placeholder records. */
  const char *state_dir;
} sandbox_build_opts;

/* Build a spec for `plan`. Fails (-EPERM, *reason set to a malloc'd message)
 * when the plan is not enforceable here; never returns a weaker spec. */
int sandbox_spec_build(const policy_plan *plan, const sandbox_build_opts *opts,
                       sandbox_spec **out, char **reason);
/* The same checks without host side effects (no mount point stubs are
 * created): for sandbox/refresh. The spec must not be used for a run. */
int sandbox_spec_build_dry(const policy_plan *plan, const sandbox_build_opts *opts,
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
/* tty_fd: the supervisor's fd of the command's terminal, or -1. */
int sandbox_child_init(const sandbox_spec *spec, int tty_fd, const char **step);
int sandbox_child_final(const sandbox_spec *spec, const char **step);

/* Parent side, after the run: remove mount points that had to be created on
 * the host to mask missing protected paths. */
void sandbox_spec_cleanup_host(const sandbox_spec *spec);

/* Remove the placeholders that a server killed before its cleanup left on
 * the host (recorded under <state_dir>/v<N>/placeholders). Runs by itself
 * at the first sandboxed build of a process; callable earlier (startup).
 * The janitor (below) makes it a fallback. */
void sbx_leftovers_cleanup(const char *state_dir);

/* ---- the janitor (janitor.c) ----
 *
 * A small process that removes this server's placeholders once the server
 * is gone, however it went (SIGKILL too): it waits for the sandboxes that
 * masked them to be gone, then removes them with the registry's locks, then
 * replays the state directory's records. Started by the first build that
 * may make a placeholder (nothing at start-up, nothing for a server that
 * never sandboxes); it is this binary exec'd with argv[0]
 * SANDBOX_JANITOR_ARGV0, which main() hands over to sandbox_janitor_main(),
 * and no child of the server's. */
#define SANDBOX_JANITOR_ARGV0 "warden-janitor"
/* The janitor's life; exits 2 when not started by a server. */
_Noreturn void sandbox_janitor_main(void);
/* Called by a main() that hands argv[0] SANDBOX_JANITOR_ARGV0 over to
 * sandbox_janitor_main(): only such a binary starts a janitor (another one,
 * a test's, exec'd as its janitor would run as itself). */
void sandbox_janitor_allow(void);
/* Around the clone of a supervisor for spec (the exec engine): before it,
 * and after it with the supervisor's pidfd (or -1 when the clone failed).
 * Nothing is sent for a spec that masks no placeholder. */
void sandbox_janitor_clone_begin(const sandbox_spec *spec);
void sandbox_janitor_clone_end(const sandbox_spec *spec, int pidfd);


/* ---- additions (server/sandbox) ---- */

/* sandbox_features_probe() once per process, cached (thread-safe). This is
 * what sandbox_spec_build() checks plans against. */
void sandbox_features_cached(policy_features *out);

/* Fixed ports of the proxy listeners inside a proxy-mode network namespace
 * (each sandbox has its own namespace, so fixed ports cannot collide). */
#define SANDBOX_PROXY_HTTP_PORT 3128
#define SANDBOX_PROXY_SOCKS_PORT 1080

/* File descriptors of the spec that the supervisor must keep open until
 * sandbox_child_init() has run (today: the child end of the proxy channel in
 * proxy mode). Writes up to `max` of them to fds and returns how many there
 * are. The exec engine keeps them when it closes the supervisor's other fds. */
size_t sandbox_spec_child_fds(const sandbox_spec *spec, int *fds, size_t max);

/* Proxy mode (sandbox_spec_network() == POLICY_NET_PROXY): the server end of
 * the socketpair created by sandbox_spec_build(). sandbox_child_init() binds
 * 127.0.0.1:SANDBOX_PROXY_HTTP_PORT and :SANDBOX_PROXY_SOCKS_PORT inside the
 * sandbox's network namespace, listens, and sends both sockets over it
 * (SCM_RIGHTS) before the command is forked. Ownership of *server_fd passes
 * to the caller (close it when done); a second call gets -EALREADY, a spec
 * that is not in proxy mode -ENOENT. */
int sandbox_spec_proxy_channel(sandbox_spec *spec, int *server_fd);

/* Parent side, right after clone(): close the parent's copy of the child end
 * of the proxy channel, so that sandbox_proxy_receive() sees EOF (-EPIPE)
 * when the supervisor dies before sending. Idempotent; no-op otherwise. */
void sandbox_spec_after_clone(const sandbox_spec *spec);

/* Receive the listeners: fds[0] HTTP (CONNECT and plain), fds[1] SOCKS5, both
 * O_CLOEXEC, owned by the caller. Non-blocking: -EAGAIN when nothing has
 * arrived yet (poll server_fd for POLLIN), -EPIPE when the supervisor closed
 * the channel without sending, -EPROTO on a malformed message. The sockets
 * are already sent when the spawn is reported started. */
int sandbox_proxy_receive(int server_fd, int fds[2]);

/* ---- state directory and setup marker (setup.c) ----
 *
 * Layout: <state>/v<SANDBOX_SETUP_VERSION>/setup.json is the marker that
 * sandbox/setup writes last; workspaces.json records what sandbox/refresh
 * applied. A new layout gets a new version directory, so an older warden
 * never misreads a newer one's state. Both files are written to a temporary
 * name and renamed, so a reader sees the old file or the new, never half. */
#define SANDBOX_SETUP_VERSION 1

/* The state directory: `configured` when set, else $XDG_STATE_HOME/warden,
 * else $HOME/.local/state/warden. malloc'd; NULL when none can be named. */
char *sandbox_state_dir(const char *configured);
/* <state>/v<N>, created with mode 0700 (parents 0755) when missing; sets
 * *created when it had to be made. malloc'd path, NULL with *err set. */
char *sandbox_state_vdir(const char *state_dir, bool create, bool *created, int *err);

/* The settings a marker records and readiness compares: warden's version,
 * the setup version, the kernel features and the proxy settings. */
json_t *sandbox_setup_settings(const policy_features *f, const char *version);
/* Remove the marker (0 when it was absent too), write it (atomically), read
 * it (NULL when absent or unreadable). */
int sandbox_marker_delete(const char *vdir);
int sandbox_marker_write(const char *vdir, const json_t *settings);
json_t *sandbox_marker_read(const char *vdir);
/* "ready", "notConfigured" or "updateRequired"; *why (may be NULL) names
 * the first difference, static storage. */
const char *sandbox_readiness_status(const char *state_dir, const json_t *settings,
                                     const char **why);
/* Any other JSON object of the state: <vdir>/<name>, read (NULL when absent,
 * not an object or unreadable) and written atomically. */
json_t *sandbox_state_record_read(const char *vdir, const char *name);
int sandbox_state_record_write(const char *vdir, const char *name, const json_t *v);
/* Record that `key` (a workspace and its policy) was applied with `value`:
 * 1 when that changed the record, 0 when it was already there, <0 errno. */
int sandbox_workspace_record(const char *vdir, const char *key, const json_t *value);


/* ---- the zygote (server/exec/zygote.c) ---- */
struct wire_buf;
struct wire_rd;
/* Append what the supervisor needs of spec (spec_wire.c); the proxy
 * channel's child end, when there is one, travels beside it as an fd. */
int sandbox_spec_encode(const sandbox_spec *spec, struct wire_buf *w);
/* Build a spec from those bytes in the zygote, with proxy_child_fd (-1:
 * none) as its channel; the fd stays the caller's (freeing the spec does not
 * close it). -EPROTO on a malformed encoding, -ENOMEM. */
int sandbox_spec_decode(struct wire_rd *r, int proxy_child_fd, sandbox_spec **out);
/* Free a decoded spec (it owns nothing of the host). */
void sandbox_spec_free_decoded(sandbox_spec *spec);

#endif
