#!/usr/bin/env bash
# Mutation check: do the tests fail when a guarantee is broken?
#
# Copies the tracked files of this tree (with uncommitted edits) to a
# temporary directory, builds it once with the test hooks, then for each
# mutation below: applies it to the copy (an exact text replacement that
# must match exactly once, or the mutation is reported "stale"), rebuilds
# warden, runs the tests that should catch it, and restores the file. Prints
# a table and exits 1 unless every mutation was caught. The working tree is
# never modified. Not run by CI (it rebuilds once per mutation); run it after
# changing a guarantee or its tests:
#
#   bash scripts/mutants.sh              # every mutation
#   bash scripts/mutants.sh NAME...      # only these
#   bash scripts/mutants.sh --list       # names and what each breaks
#   MUTANTS_KEEP=1 ...                   # keep the temporary copy
#
# Needs what scripts/test.sh needs (cmake, the build deps, python3, git).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
exec python3 - "$src" "$@" <<'PY'
import os
import shutil
import subprocess
import sys
import tempfile
import time

SRC = sys.argv[1]
ARGS = sys.argv[2:]

# (name, what it breaks, [(file, old, new), ...], ctest regex, WARDEN_TEST_ONLY or None)
MUTANTS = [
    # --- the six the review found uncaught ---
    ("landlock-never-applied", "Landlock is never applied to the command",
     [("server/sandbox/child.c", "(r = apply_landlock(spec, step)) < 0",
       "(r = ((void)apply_landlock, 0)) < 0")],
     r"sandbox\.test_(layers|refusal)$", None),
    ("caps-not-dropped", "the capability sets (bounding set too) are kept",
     [("server/sandbox/child.c", "(r = drop_caps(step)) < 0", "(r = ((void)drop_caps, 0)) < 0")],
     r"sandbox\.test_layers$", "present"),
    ("terminate-command-only", "signals reach only the command, not its group",
     [("server/exec/child.c",
       "  if (s->c->newpid)\n    kill(-1, sig);\n  else\n    kill(-s->cmd, sig);",
       "  kill(s->cmd, sig);")],
     r"integration\.test_process_tree$", "every_process_of_the_group"),
    ("unenforceable-runs-unsandboxed", "process/spawn runs an unenforceable policy unsandboxed",
     [("handlers/process.c", "  if (!plan->enforce) {\n    pd->enforced = false;",
       "  if (!plan->enforce || !plan->enforceable) {\n    pd->enforced = false;")],
     r"sandbox\.test_refusal$", "spawn_refused"),
    ("supervisor-ignores-server-death", "the supervisor outlives the server",
     [("server/exec/child.c", "      if (sig == SIGHUP && server_gone(s))\n        sup_exit(s, false);\n",
       "      if (sig == SIGHUP && server_gone(s) && 0)\n        sup_exit(s, false);\n"),
      ("server/exec/child.c",
       "    if (pf[2].revents & (POLLERR | POLLHUP | POLLNVAL))\n      sup_exit(&s, false);",
       "    if (0)\n      sup_exit(&s, false);")],
     r"integration\.test_process_tree$", "server_sigkill"),
    ("worktree-gitdir-unprotected", "a worktree's gitdir: target is left writable",
     [("server/policy/resolve.c", "static char *gitdir_target(const char *root) {\n",
       "static char *gitdir_target(const char *root) {\n  if (root)\n    return NULL;\n")],
     r"sandbox\.test_escape$", "as_root"),
    # --- the fifteen it caught, as far as they can be reconstructed ---
    ("seccomp-not-loaded", "the seccomp filter is never loaded",
     [("server/sandbox/child.c", "if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {",
       "if (0) {")],
     r"sandbox\.test_escape$", "as_root"),
    ("no-new-privs-skipped", "no_new_privs is not set",
     [("server/sandbox/child.c", "prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0", "0")],
     r"sandbox\.test_escape$", "as_root"),
    ("binds-writable", "read-only binds are mounted writable",
     [("server/sandbox/child.c",
       "uint64_t attrs = MOUNT_ATTR_NOSUID | (readonly ? MOUNT_ATTR_RDONLY : 0);",
       "uint64_t attrs = MOUNT_ATTR_NOSUID;")],
     r"sandbox\.test_escape$", "as_root"),
    ("dotgit-unprotected", ".git is not among the protected names",
     [("server/policy/resolve.c", '{".git", ".codex", ".agents", NULL}', '{".codex", ".agents", NULL}')],
     r"sandbox\.test_escape$", "as_root"),
    ("unreadable-root-visible", "an access:none path stays readable",
     [("server/sandbox/spec.c", "    WISH(W_HIDE, p->unreadable_roots[i], NULL);", "    (void)0;")],
     r"sandbox\.test_escape$", "as_root"),
    ("no-network-namespace", "network mode none gets no network namespace",
     [("server/sandbox/spec.c", "      s->clone_flags |= CLONE_NEWNET;\n", "")],
     r"sandbox\.test_layers$", "present"),
    ("no-pid-namespace", "the sandbox gets no pid namespace",
     [("server/sandbox/spec.c", "CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC;",
       "CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWIPC;")],
     r"sandbox\.test_escape$", "as_root"),
    ("io-uring-allowed", "io_uring is not filtered",
     [("server/sandbox/seccomp.c", '"io_uring_setup", "io_uring_enter", "io_uring_register",', "")],
     r"sandbox\.test_escape$", "as_root"),
    ("tiocsti-allowed", "terminal injection (TIOCSTI) is not filtered",
     [("server/sandbox/seccomp.c", "{TIOCSTI, TIOCLINUX}", "{TIOCLINUX, TIOCLINUX}")],
     r"sandbox\.test_escape$", "as_root"),
    ("unix-connect-allowed", "network none still connects to host unix sockets",
     [("server/sandbox/seccomp.c", "SCMP_ACT_ERRNO(EPERM), SCMP_SYS(connect), 0)) < 0",
       "SCMP_ACT_ERRNO(EPERM), SCMP_SYS(bpf), 0)) < 0")],
     r"sandbox\.test_escape$", "as_root"),
    ("ip-sockets-in-mode-none", "network none still opens IP sockets",
     [("server/sandbox/seccomp.c", "rc = deny_domain_not_in(ctx, SCMP_SYS(socket), 0, fam_unix, 1);",
       "rc = deny_domain_not_in(ctx, SCMP_SYS(socket), 0, fam_ip, 3);")],
     r"sandbox\.test_network_modes$", "mode_none_as_root"),
    ("exit-before-output", "process/exited is sent before the output is drained",
     [("server/exec/proc.c",
       "  if (p->fds[EXEC_FD_OUT].reading || p->fds[EXEC_FD_ERR].reading) {\n    if (!p->draining) {",
       "  if (0) {\n    if (!p->draining) {")],
     r"integration\.test_output_race$", None),
    ("ring-drops-a-chunk", "the replay ring loses a chunk",
     [("server/exec/io.c", "  if (in_ring)\n    exec_ring_commit(", "  if (in_ring && seq != 2)\n    exec_ring_commit(")],
     r"integration\.test_process$", "read_replay"),
    ("output-cap-ignored", "outputBytesCap is not applied",
     [("server/exec/io.c", "  if (p->cap >= 0) {\n    uint64_t room", "  if (0) {\n    uint64_t room")],
     r"integration\.test_process$", "output_cap"),
    ("timeout-not-enforced", "timeoutMs never kills the command",
     [("server/exec/proc.c", "      p->timed_out = true;\n      exec_proc_kill_hard(p);",
       "      p->timed_out = true;")],
     r"integration\.test_process$", "test_timeout"),
    ("no-kill-after-grace", "terminate never follows TERM with KILL",
     [("server/exec/proc.c", "    return;\n  }\n  exec_proc_kill_hard(p);\n}", "    return;\n  }\n}")],
     r"integration\.test_process_tree$", "kill_after_grace"),
    ("tree-left-behind", "the supervisor does not kill the rest of the tree",
     [("server/exec/child.c", "static _Noreturn void sup_exit(sup *s, bool report_exit) {\n  kill_tree(s);",
       "static _Noreturn void sup_exit(sup *s, bool report_exit) {\n  (void)kill_tree;")],
     r"integration\.test_process_tree$", "kill_after_grace"),
    ("warden-run-unsandboxed", "warden run runs an unenforceable policy unsandboxed",
     [("handlers/run.c", "  if (plan->enforce) {\n    char *reason = NULL;",
       "  if (plan->enforce && plan->enforceable) {\n    char *reason = NULL;")],
     r"sandbox\.test_refusal$", "warden_run"),
    # --- README claims ---
    ("run-signal-status", "warden run does not exit 128+signal",
     [("handlers/run.c", "128 + info->signal", "1")],
     r"integration\.test_readme_claims$", "run_exit_codes"),
    ("run-not-raw", "warden run leaves its terminal in cooked mode",
     [("handlers/run.c", "        uv_tty_set_mode(&c->in_tty, UV_TTY_MODE_RAW);", "        (void)0;")],
     r"integration\.test_readme_claims$", "pty"),
    ("run-resize-ignored", "warden run does not pass resizes on",
     [("handlers/run.c", "uv_signal_start(&c->winch, on_winch, SIGWINCH);", "(void)on_winch;")],
     r"integration\.test_readme_claims$", "pty"),
    ("shutdown-grace-ignored", "shutdown KILLs without the configured grace",
     [("server/main.c", "exec_engine_shutdown(s->exec, s->cfg.shutdown_grace_ms,",
       "exec_engine_shutdown(s->exec, 0,")],
     r"integration\.test_readme_claims$", "shutdown_grace"),
    ("retain-bytes-ignored", "the retainBytes config key is ignored",
     [("server/config.c", "      c->retain_bytes = (size_t)n;", "      (void)n;")],
     r"integration\.test_readme_claims$", "retain_bytes"),
    ("log-level-ignored", "WARDEN_LOG is ignored",
     [("server/log.c", "        g_level = (log_level)i;", "        (void)i;")],
     r"integration\.test_readme_claims$", "warden_log"),
    ("docker-proxy-variable-missing", "proxy mode lacks DOCKER_HTTP_PROXY",
     [("server/sandbox/spec.c", '"DOCKER_HTTP_PROXY"', '"DOCKER_PROXY"')],
     r"sandbox\.test_network_modes$", "proxy"),
    ("refusal-without-reason", "-32003 carries no data.reason",
     [("handlers/process.c",
       'json_pack("{s:s}", "reason", plan->reason ? plan->reason : "unknown")',
       'json_pack("{s:s}", "why", plan->reason ? plan->reason : "unknown")')],
     r"sandbox\.test_refusal$", "spawn_refused"),
]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, cwd, env=None, quiet=True):
    p = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE if quiet else None,
                       stderr=subprocess.STDOUT if quiet else None, text=True)
    return p.returncode, (p.stdout or "")


def main():
    if ARGS[:1] == ["--list"]:
        for name, what, _, tests, only in MUTANTS:
            print("%-34s %s  [%s%s]" % (name, what, tests, " only=" + only if only else ""))
        return 0
    names = set(ARGS)
    unknown = names - {m[0] for m in MUTANTS}
    if unknown:
        log("mutants.sh: unknown mutation(s): %s (see --list)" % ", ".join(sorted(unknown)))
        return 2
    chosen = [m for m in MUTANTS if not names or m[0] in names]

    tmp = tempfile.mkdtemp(prefix="warden-mutants-")
    tree = os.path.join(tmp, "src")
    build = os.path.join(tmp, "build")
    try:
        # the tracked files as they are now (uncommitted edits included)
        files = subprocess.run(["git", "ls-files", "-z"], cwd=SRC, check=True,
                               capture_output=True).stdout.split(b"\0")
        for f in files:
            if not f:
                continue
            f = f.decode()
            s = os.path.join(SRC, f)
            if not os.path.lexists(s):
                continue
            d = os.path.join(tree, f)
            os.makedirs(os.path.dirname(d), exist_ok=True)
            shutil.copy2(s, d, follow_symlinks=False)
        log("== building the unmutated copy in %s" % build)
        rc, out = run(["cmake", "-S", tree, "-B", build, "-DWARDEN_TEST_HOOKS=ON",
                       "-DCMAKE_BUILD_TYPE=RelWithDebInfo"], tree)
        if rc == 0:
            rc, out = run(["cmake", "--build", build, "-j2", "--target", "warden"], tree)
        if rc != 0:
            log(out)
            log("mutants.sh: the unmutated tree does not build")
            return 2

        def ctest(regex, only):
            env = dict(os.environ)
            env.pop("WARDEN_TEST_ONLY", None)
            if only:
                env["WARDEN_TEST_ONLY"] = only
            return run(["ctest", "--test-dir", build, "-R", regex, "--output-on-failure",
                        "--no-tests=error"], tree, env)

        # Every test a mutation relies on must pass unmutated, or "caught"
        # would mean nothing.
        for regex, only in sorted({(m[3], m[4] or "") for m in chosen}):
            rc, out = ctest(regex, only)
            if rc != 0:
                log(out)
                log("mutants.sh: %s (only=%s) fails on the unmutated tree" % (regex, only))
                return 2
        log("== baseline passes; %d mutation(s)" % len(chosen))

        rows = []
        for name, what, edits, regex, only in chosen:
            t0 = time.time()
            saved = {}
            status = None
            for path, old, new in edits:
                full = os.path.join(tree, path)
                if path not in saved:
                    with open(full) as f:
                        saved[path] = f.read()
                with open(full) as f:
                    text = f.read()
                if text.count(old) != 1:
                    status = "STALE (text matched %d times in %s)" % (text.count(old), path)
                    break
                with open(full, "w") as f:
                    f.write(text.replace(old, new))
            if status is None:
                rc, out = run(["cmake", "--build", build, "-j2", "--target", "warden"], tree)
                if rc != 0:
                    status = "STALE (does not build)"
                    log(out[-3000:])
                else:
                    rc, out = ctest(regex, only)
                    status = "caught" if rc != 0 else "SURVIVED"
            for path, text in saved.items():
                with open(os.path.join(tree, path), "w") as f:
                    f.write(text)
            rows.append((name, what, regex + (" only=" + only if only else ""), status,
                         time.time() - t0))
            log("%-34s %s (%.0fs)" % (name, status, time.time() - t0))
        # leave the copy's binary unmutated
        run(["cmake", "--build", build, "-j2", "--target", "warden"], tree)

        print()
        print("| mutation | what it breaks | tests run | result |")
        print("|---|---|---|---|")
        for name, what, tests, status, _ in rows:
            print("| %s | %s | `%s` | %s |" % (name, what, tests.replace("|", "\\|"), status))
        caught = sum(1 for r in rows if r[3] == "caught")
        print()
        print("%d of %d mutations caught" % (caught, len(rows)))
        return 0 if caught == len(rows) else 1
    finally:
        if os.environ.get("MUTANTS_KEEP"):
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


sys.exit(main())
PY
