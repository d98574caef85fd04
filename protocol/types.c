/* The protocol's types and methods, described once (see protocol.h).
 * Descriptions end up in the generated JSON Schema and TypeScript, so they
 * record the decisions PROTOCOL.md leaves open. */
#include "protocol/protocol.h"

#include <string.h>

/* ---- string checks (each matches its schema `pattern`) ---- */

static bool check_abs_path(const char *s) { return s[0] == '/'; }
static bool check_entry_path(const char *s) { return s[0] == '/' || s[0] == ':'; }
static bool check_base64(const char *s) {
  size_t n = strlen(s);
  if (n % 4 != 0)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (alnum || c == '+' || c == '/')
      continue;
    /* '=' only as the last one or two characters */
    if (c == '=' && i >= n - 2 && (i == n - 1 || s[n - 1] == '='))
      continue;
    return false;
  }
  return true;
}

/* ---- scalars ---- */

static const proto_type t_bool = {.kind = PK_BOOL};
static const proto_type t_string = {.kind = PK_STRING};
static const proto_type t_string_nullable = {.kind = PK_STRING, .nullable = true};
static const proto_type t_name = {
    .kind = PK_STRING, .min_len = 1, .max_len = 1024, .expected = "non-empty string"};
static const proto_type t_uint = {.kind = PK_INT, .has_min = true, .min = 0};
static const proto_type t_seq = {.kind = PK_INT, .has_min = true, .min = 1};
static const proto_type t_int_nullable = {.kind = PK_INT, .nullable = true};
static const proto_type t_port = {.kind = PK_INT, .has_min = true, .min = 0, .has_max = true,
                                  .max = 65535};
static const proto_type t_abs_path = {.kind = PK_STRING,
                                      .pattern = "^/",
                                      .check = check_abs_path,
                                      .expected = "absolute path",
                                      .desc = "An absolute path."};
static const proto_type t_base64 = {.kind = PK_STRING,
                                    .pattern = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
                                    .check = check_base64,
                                    .expected = "base64 string",
                                    .desc = "Standard base64 (RFC 4648) with padding: a multiple of 4 characters, '=' only as the last one or two."};
static const proto_type t_process_id = {
    .kind = PK_STRING,
    .name = "ProcessId",
    .min_len = 1,
    .max_len = 256,
    .expected = "process id (1..256 characters)",
    .desc = "Chosen by the client; unique among this connection's live processes (an exited one that is still retained for process/read is released by a new spawn with its id). Its length is counted in characters (Unicode code points), not bytes. Known from the moment its spawn is accepted: requests for it sent before the spawn is answered wait for the spawn."};
static const proto_type t_string_list = {.kind = PK_ARRAY, .items = &t_string};
static const proto_type t_warnings = {
    .kind = PK_ARRAY, .items = &t_string,
    .desc = "What could not be checked or applied, in words (e.g. a cwd that does not exist)."};
static const proto_type t_abs_path_list = {.kind = PK_ARRAY, .items = &t_abs_path};
static const proto_type t_empty = {.kind = PK_EMPTY, .name = "EmptyResult",
                                   .desc = "An empty object."};

#define ENUM(var, ...) static const char *const var[] = {__VA_ARGS__, NULL}
ENUM(e_stream, "stdout", "stderr", "pty");
ENUM(e_network_mode, "none", "proxy", "full");
ENUM(e_backend, "none", "namespaces", "landlock");
ENUM(e_signal, "TERM", "INT", "HUP", "KILL");
ENUM(e_inherit, "all", "core", "none");
ENUM(e_access, "read", "write", "none");
ENUM(e_transform_to, "legacy", "split");
ENUM(e_readiness, "ready", "notConfigured", "updateRequired");
ENUM(e_external_net, "restricted", "enabled");
ENUM(e_net_policy_mode, "full", "limited");
ENUM(e_net_protocol, "http", "https", "socks5Tcp", "socks5Udp");
ENUM(e_decision, "allow", "deny", "ask");
ENUM(e_approval, "allowOnce", "allowForSession", "allowAlways", "deny", "denyAlways");
/* one-value enums used as `type` tags */
ENUM(tag_danger, "dangerFullAccess");
ENUM(tag_read_only, "readOnly");
ENUM(tag_workspace, "workspaceWrite");
ENUM(tag_external, "externalSandbox");
ENUM(tag_split, "split");
ENUM(tag_profile, "profile");

#define ENUM_TYPE(var, values, ...) \
  static const proto_type var = {.kind = PK_STRING, .enum_values = values, __VA_ARGS__}
ENUM_TYPE(t_stream, e_stream, .name = "OutputStream",
          .desc = "stdout and stderr for pipe sessions, pty for terminal sessions.");
ENUM_TYPE(t_network_mode, e_network_mode, .name = "NetworkMode");
ENUM_TYPE(t_backend, e_backend);
ENUM_TYPE(t_signal, e_signal);
ENUM_TYPE(t_inherit, e_inherit);
ENUM_TYPE(t_access, e_access);
ENUM_TYPE(t_transform_to, e_transform_to);
ENUM_TYPE(t_readiness, e_readiness);
ENUM_TYPE(t_external_net, e_external_net);
ENUM_TYPE(t_net_policy_mode, e_net_policy_mode);
ENUM_TYPE(t_net_protocol, e_net_protocol, .name = "NetworkProtocol");
ENUM_TYPE(t_decision, e_decision);
ENUM_TYPE(t_approval_decision, e_approval, .name = "ApprovalDecision");
ENUM_TYPE(t_tag_danger, tag_danger);
ENUM_TYPE(t_tag_read_only, tag_read_only);
ENUM_TYPE(t_tag_workspace, tag_workspace);
ENUM_TYPE(t_tag_external, tag_external);
ENUM_TYPE(t_tag_split, tag_split);
ENUM_TYPE(t_tag_profile, tag_profile);

#define FIELDS(var, ...) static const proto_field var[] = {__VA_ARGS__, {0}}
#define OBJECT(var, fields_, ...) \
  static const proto_type var = {.kind = PK_OBJECT, .fields = fields_, __VA_ARGS__}

/* ---- lifecycle ---- */

FIELDS(f_client_info, {"name", &t_name, true, "The client's name, for logs."},
       {"version", &t_string, false, NULL});
OBJECT(t_client_info, f_client_info, .name = "ClientInfo");
static const proto_type t_opt_out = {
    .kind = PK_ARRAY,
    .items = &t_string,
    .desc = "Exact notification method names the server must not send to this client."};
FIELDS(f_capabilities, {"optOutNotificationMethods", &t_opt_out, false, NULL},
       {"networkApprovals", &t_bool, false,
        "The client answers approval/network requests. Without it, requests that would ask are "
        "denied."});
OBJECT(t_capabilities, f_capabilities, .name = "ClientCapabilities");
FIELDS(f_init_params, {"clientInfo", &t_client_info, true, NULL},
       {"capabilities", &t_capabilities, false, NULL});
OBJECT(t_init_params, f_init_params, .name = "InitializeParams");

FIELDS(f_server_info, {"name", &t_string, true, "Always \"warden\"."},
       {"version", &t_string, true, NULL});
OBJECT(t_server_info, f_server_info);
FIELDS(f_platform, {"os", &t_string, true, "uname sysname, e.g. \"Linux\"."},
       {"arch", &t_string, true, "uname machine, e.g. \"x86_64\"."},
       {"kernel", &t_string, true, "uname release."});
OBJECT(t_platform, f_platform, .name = "Platform");
ENUM(e_limit_mech, "cgroup2", "cgroup1", "rlimit", "none");
ENUM_TYPE(t_limit_mech, e_limit_mech, .name = "LimitMechanism",
          .desc = "What enforces a limit: a cgroup v2 or v1 controller, a per-process rlimit, "
                  "or nothing (this host cannot enforce it).");
FIELDS(f_limit_mechs, {"maxProcesses", &t_limit_mech, true, NULL},
       {"memoryBytes", &t_limit_mech, true, NULL}, {"cpuSeconds", &t_limit_mech, true, NULL},
       {"fileSizeBytes", &t_limit_mech, true, NULL}, {"openFiles", &t_limit_mech, true, NULL});
OBJECT(t_limit_mechs, f_limit_mechs, .name = "LimitMechanisms",
       .desc = "Which mechanism would enforce each ResourceLimits field on this host.");
FIELDS(f_features,
       {"landlockAbi", &t_uint, true, "Highest Landlock ABI the kernel offers; 0 when none."},
       {"userNamespaces", &t_bool, true, "An unprivileged user namespace could be created."},
       {"networkNamespaces", &t_bool, true, "A network namespace could be created."},
       {"seccomp", &t_bool, true, "seccomp filters are available."},
       {"limits", &t_limit_mechs, true, NULL},
       {"cgroups", &t_string, true,
        "What the cgroup probe found, in words: the writable cgroup2 and cgroup1 (pids, "
        "memory) hierarchies warden uses, or that there are none."});
OBJECT(t_features, f_features, .name = "SandboxFeatures",
       .desc = "What the running kernel can enforce, probed for real at startup.");
static const proto_type t_protocol_version = {.kind = PK_INT, .has_min = true, .min = 1};
FIELDS(f_init_result, {"serverInfo", &t_server_info, true, NULL},
       {"protocolVersion", &t_protocol_version, true, NULL},
       {"platform", &t_platform, true, NULL}, {"sandbox", &t_features, true, NULL});
OBJECT(t_init_result, f_init_result, .name = "InitializeResult");

/* ---- sandbox policies ---- */

FIELDS(f_p_danger, {"type", &t_tag_danger, true, NULL});
OBJECT(t_p_danger, f_p_danger, .name = "DangerFullAccessPolicy",
       .desc = "No sandbox: full disk and network access.");
FIELDS(f_p_read_only, {"type", &t_tag_read_only, true, NULL},
       {"networkAccess", &t_bool, false,
        "true: full network. false or absent: no direct network (mode none, or proxy where the "
        "server runs its proxy)."});
OBJECT(t_p_read_only, f_p_read_only, .name = "ReadOnlyPolicy",
       .desc = "Read the whole disk, write nothing.");
FIELDS(f_p_workspace, {"type", &t_tag_workspace, true, NULL},
       {"writableRoots", &t_abs_path_list, false, "Writable in addition to cwd and the temp dirs."},
       {"networkAccess", &t_bool, false, "As in readOnly."},
       {"excludeTmpdirEnvVar", &t_bool, false, "Do not make $TMPDIR writable."},
       {"excludeSlashTmp", &t_bool, false, "Do not make /tmp writable."});
OBJECT(t_p_workspace, f_p_workspace, .name = "WorkspaceWritePolicy",
       .desc = "Read the whole disk; write cwd, /tmp, $TMPDIR and writableRoots. .git, .codex and "
               ".agents stay read-only in every writable root.");
FIELDS(f_p_external, {"type", &t_tag_external, true, NULL},
       {"networkAccess", &t_external_net, false, NULL});
OBJECT(t_p_external, f_p_external, .name = "ExternalSandboxPolicy",
       .desc = "The caller sandboxes; warden enforces nothing.");
static const proto_type t_entry_path = {
    .kind = PK_STRING,
    .pattern = "^[/:]",
    .check = check_entry_path,
    .expected = "absolute path or token (:root, :minimal, :cwd, :tmpdir, :slash_tmp)",
    .desc = "An absolute path, or one of the tokens :root, :minimal, :cwd, :tmpdir, :slash_tmp."};
FIELDS(f_fs_entry, {"path", &t_entry_path, true, NULL}, {"access", &t_access, true, NULL});
OBJECT(t_fs_entry, f_fs_entry, .name = "FileSystemEntry");
static const proto_type t_fs_entries = {.kind = PK_ARRAY, .items = &t_fs_entry};
FIELDS(f_fs_policy, {"entries", &t_fs_entries, true,
                     "The most specific entry wins; on a tie none beats write beats read."});
OBJECT(t_fs_policy, f_fs_policy);
FIELDS(f_net_sandbox, {"mode", &t_network_mode, true, NULL});
OBJECT(t_net_sandbox, f_net_sandbox);
FIELDS(f_p_split, {"type", &t_tag_split, true, NULL}, {"fileSystem", &t_fs_policy, true, NULL},
       {"network", &t_net_sandbox, true, NULL});
OBJECT(t_p_split, f_p_split, .name = "SplitPolicy");
FIELDS(f_p_profile, {"type", &t_tag_profile, true, NULL},
       {"name", &t_name, true,
        ":read-only, :workspace, :danger-full-access, or a profile from the config file."});
OBJECT(t_p_profile, f_p_profile, .name = "ProfilePolicy");
static const proto_type *const policy_variants[] = {&t_p_danger, &t_p_read_only, &t_p_workspace,
                                                     &t_p_external, &t_p_split, &t_p_profile,
                                                     NULL};
const proto_type proto_t_sandbox_policy = {
    .kind = PK_ONEOF,
    .name = "SandboxPolicy",
    .variants = policy_variants,
    .tag = "type",
    .desc = "A sandbox policy. One the kernel cannot enforce exactly is refused with -32003."};

/* ---- processes ---- */

static const proto_type t_dim = {.kind = PK_INT, .has_min = true, .min = 1, .has_max = true,
                                 .max = 65535};
FIELDS(f_size, {"rows", &t_dim, true, NULL}, {"cols", &t_dim, true, NULL});
OBJECT(t_size, f_size, .name = "TerminalSize");
FIELDS(f_env_policy,
       {"inherit", &t_inherit, false,
        "all: the server's environment; core: HOME, LOGNAME, PATH, SHELL, USER, USERNAME, TMPDIR, "
        "TEMP, TMP, LANG, LC_*, TERM, TZ; none: nothing. Default all."},
       {"exclude", &t_string_list, false,
        "Globs (case-insensitive) of names to drop. When absent, *KEY*, *SECRET* and *TOKEN* "
        "are dropped."},
       {"includeOnly", &t_string_list, false,
        "Globs (case-insensitive): keep only matching names (applied after exclude)."});
OBJECT(t_env_policy, f_env_policy, .name = "EnvPolicy");
static const proto_type t_env = {
    .kind = PK_MAP,
    .items = &t_string_nullable,
    .desc = "Overrides on top of envPolicy; null unsets the variable."};
static const proto_type t_argv = {.kind = PK_ARRAY, .items = &t_string, .min_items = 1,
                                  .expected = "non-empty array of strings"};
static const proto_type t_timeout = {
    .kind = PK_INT, .has_min = true, .min = 1, .nullable = true,
    .desc = "Kill the process group (KILL) at this deadline; process/exited says timedOut."};
static const proto_type t_cap = {
    .kind = PK_INT, .has_min = true, .min = 0, .nullable = true,
    .desc = "Per-stream cap on streamed bytes; past it output is read and dropped and the last "
            "delta of that stream has capReached:true."};
static const proto_type t_limit_value = {
    .kind = PK_INT, .has_min = true, .min = 1, .nullable = true,
    .desc = "null: no limit (also overriding a default)."};
FIELDS(f_limits,
       {"maxProcesses", &t_limit_value, false,
        "Processes and threads in the command's tree (cgroup pids.max; else RLIMIT_NPROC in the "
        "sandbox's own user namespace). Sandboxed default 4096."},
       {"memoryBytes", &t_limit_value, false,
        "Memory of the whole tree (cgroup memory.max; else RLIMIT_AS per process, address space). "
        "Sandboxed default with a cgroup: half the host's RAM (at least 1 GiB); no default for "
        "the RLIMIT_AS fallback."},
       {"cpuSeconds", &t_limit_value, false, "CPU time per process (RLIMIT_CPU: SIGXCPU)."},
       {"fileSizeBytes", &t_limit_value, false,
        "Largest file a process may write (RLIMIT_FSIZE: SIGXFSZ)."},
       {"openFiles", &t_limit_value, false, "Open file descriptors per process (RLIMIT_NOFILE)."});
const proto_type proto_t_resource_limits = {.kind = PK_OBJECT, .fields = f_limits, .name = "ResourceLimits",
       .desc = "Resource limits for the command's process tree. An absent field takes the "
               "config file's `limits` default, then (sandboxed commands only) the built-in "
               "default."};
#define t_limits proto_t_resource_limits
FIELDS(f_spawn, {"processId", &t_process_id, true, NULL},
       {"argv", &t_argv, true, "The program and its arguments; argv[0] is looked up in PATH."},
       {"arg0", &t_string, false, "Overrides argv[0] as the program sees it."},
       {"cwd", &t_abs_path, false, "Default: the server's cwd."}, {"env", &t_env, false, NULL},
       {"envPolicy", &t_env_policy, false, NULL},
       {"tty", &t_bool, false, "Run in a new PTY as the controlling terminal (TERM defaults to "
                               "xterm-256color)."},
       {"size", &t_size, false, "Initial PTY size (tty only); default 24x80."},
       {"streamStdin", &t_bool, false,
        "Pipe sessions: keep stdin open for process/write. Otherwise stdin is /dev/null."},
       {"outputBytesCap", &t_cap, false, NULL}, {"timeoutMs", &t_timeout, false, NULL},
       {"sandbox", &proto_t_sandbox_policy, false,
        "Default: the server's configured default policy (built-in {type:\"workspaceWrite\"})."},
       {"limits", &t_limits, false, NULL});
OBJECT(t_spawn_params, f_spawn, .name = "ProcessSpawnParams");
FIELDS(f_spawn_sandbox, {"enforced", &t_bool, true, NULL}, {"backend", &t_backend, true, NULL},
       {"network", &t_network_mode, true, NULL});
OBJECT(t_spawn_sandbox, f_spawn_sandbox);
FIELDS(f_applied_limit, {"value", &t_uint, true, NULL},
       {"enforcedBy", &t_limit_mech, true, NULL});
OBJECT(t_applied_limit, f_applied_limit, .name = "AppliedLimit");
static const proto_type t_applied_limits = {
    .kind = PK_MAP, .items = &t_applied_limit, .name = "AppliedLimits",
    .desc = "The limits in force, by ResourceLimits field name; a limit not listed is not set."};
FIELDS(f_spawn_result, {"processId", &t_process_id, true, NULL},
       {"pid", &t_uint, true, "The process id as the server sees it."},
       {"sandbox", &t_spawn_sandbox, true, NULL},
       {"envDropped", &t_string_list, true,
        "Names (never values) of the server's variables the default filters left out: the "
        "secret filter (no explicit envPolicy.exclude) and, in every network mode but full, "
        "the variables that locate host sockets."},
       {"limits", &t_applied_limits, true, NULL});
OBJECT(t_spawn_result, f_spawn_result, .name = "ProcessSpawnResult");

FIELDS(f_output, {"processId", &t_process_id, true, NULL},
       {"seq", &t_seq, true, "One counter per process, shared with process/exited, from 1."},
       {"stream", &t_stream, true, NULL}, {"deltaBase64", &t_base64, true, NULL},
       {"capReached", &t_bool, false, "Set on the last delta of a stream that hit its cap."});
OBJECT(t_output_notif, f_output, .name = "ProcessOutputNotification");
static const proto_type t_signal_name = {
    .kind = PK_STRING, .nullable = true,
    .desc = "Name of the signal that ended the process, without SIG (\"KILL\")."};
ENUM(e_limit_hit, "memory", "processes", "cpu", "fileSize");
ENUM_TYPE(t_limit_hit, e_limit_hit, .nullable = true,
          .desc = "The resource limit that ended the process: memory (the cgroup's OOM killer "
                  "ran), processes (a fork failed at pids.max), cpu (SIGXCPU), fileSize "
                  "(SIGXFSZ); null otherwise. Without a cgroup a memory or process limit "
                  "(RLIMIT_AS, RLIMIT_NPROC) makes allocations or forks fail and is not "
                  "reported here.");
FIELDS(f_exited, {"processId", &t_process_id, true, NULL}, {"seq", &t_seq, true, NULL},
       {"exitCode", &t_int_nullable, true, "null when a signal ended the process."},
       {"signal", &t_signal_name, true, NULL}, {"timedOut", &t_bool, true, NULL},
       {"durationMs", &t_uint, true, NULL}, {"limit", &t_limit_hit, true, NULL});
OBJECT(t_exited_notif, f_exited, .name = "ProcessExitedNotification",
       .desc = "Sent after every byte of the process's output has been sent. When the command "
               "exits, what is left of its process tree is killed.");

FIELDS(f_write, {"processId", &t_process_id, true, NULL},
       {"deltaBase64", &t_base64, false, "Bytes for stdin (PTY input for tty sessions)."},
       {"closeStdin", &t_bool, false,
        "Close stdin after the data (for a PTY: send the EOF character)."});
OBJECT(t_write_params, f_write, .name = "ProcessWriteParams",
       .desc = "Answered once the bytes are written to the pipe or PTY.");
FIELDS(f_write_result, {"bytesWritten", &t_uint, true, NULL});
OBJECT(t_write_result, f_write_result, .name = "ProcessWriteResult");
FIELDS(f_resize, {"processId", &t_process_id, true, NULL}, {"size", &t_size, true, NULL});
OBJECT(t_resize_params, f_resize, .name = "ProcessResizeParams");
FIELDS(f_terminate, {"processId", &t_process_id, true, NULL},
       {"signal", &t_signal, false, "Default TERM."},
       {"graceMs", &t_uint, false, "KILL follows after this long; default 2000."});
OBJECT(t_terminate_params, f_terminate, .name = "ProcessTerminateParams");
FIELDS(f_terminate_result, {"running", &t_bool, true, "The process was running."});
OBJECT(t_terminate_result, f_terminate_result, .name = "ProcessTerminateResult");
static const proto_type t_max_bytes = {.kind = PK_INT, .has_min = true, .min = 1};
static const proto_type t_wait_ms = {.kind = PK_INT, .has_min = true, .min = 0, .has_max = true,
                                     .max = 600000};
FIELDS(f_read, {"processId", &t_process_id, true, NULL},
       {"afterSeq", &t_uint, false, "Return chunks with seq greater than this; default 0."},
       {"maxBytes", &t_max_bytes, false,
        "Stop before the decoded bytes would exceed this (at least one chunk is returned)."},
       {"waitMs", &t_wait_ms, false,
        "When nothing is newer than afterSeq and the process runs, wait up to this long."});
OBJECT(t_read_params, f_read, .name = "ProcessReadParams");
FIELDS(f_chunk, {"seq", &t_seq, true, NULL}, {"stream", &t_stream, true, NULL},
       {"deltaBase64", &t_base64, true, NULL});
OBJECT(t_chunk, f_chunk, .name = "OutputChunk");
static const proto_type t_chunks = {.kind = PK_ARRAY, .items = &t_chunk};
FIELDS(f_read_result, {"chunks", &t_chunks, true, NULL},
       {"nextSeq", &t_uint, true, "Pass as afterSeq to continue."},
       {"exited", &t_bool, true, NULL}, {"exitCode", &t_int_nullable, true, NULL},
       {"signal", &t_signal_name, true, NULL});
OBJECT(t_read_result, f_read_result, .name = "ProcessReadResult",
       .desc = "Chunks older than the retained ring (--retain-bytes) are gone.");
FIELDS(f_release, {"processId", &t_process_id, true, NULL});
OBJECT(t_release_params, f_release, .name = "ProcessReleaseParams");
FIELDS(f_proc_info, {"processId", &t_process_id, true, NULL}, {"pid", &t_uint, true, NULL},
       {"argv", &t_string_list, true, NULL}, {"tty", &t_bool, true, NULL},
       {"running", &t_bool, true, NULL}, {"startedAtMs", &t_uint, true, "Unix epoch ms."});
OBJECT(t_proc_info, f_proc_info, .name = "ProcessInfo");
static const proto_type t_proc_infos = {.kind = PK_ARRAY, .items = &t_proc_info};
FIELDS(f_list_result, {"processes", &t_proc_infos, true, NULL});
OBJECT(t_list_result, f_list_result, .name = "ProcessListResult");

/* ---- policy ---- */

FIELDS(f_writable_root, {"root", &t_string, true, NULL},
       {"readOnlySubpaths", &t_string_list, true, NULL});
OBJECT(t_writable_root, f_writable_root, .name = "WritableRoot");
static const proto_type t_writable_roots = {.kind = PK_ARRAY, .items = &t_writable_root};
FIELDS(f_plan, {"fullDiskRead", &t_bool, true, NULL}, {"fullDiskWrite", &t_bool, true, NULL},
       {"readableRoots", &t_string_list, true, NULL},
       {"writableRoots", &t_writable_roots, true, NULL},
       {"unreadableRoots", &t_string_list, true, NULL},
       {"network", &t_network_mode, true, NULL});
OBJECT(t_plan, f_plan, .name = "SandboxPlan");
FIELDS(f_resolve, {"sandbox", &proto_t_sandbox_policy, true, NULL},
       {"cwd", &t_abs_path, true, NULL});
OBJECT(t_resolve_params, f_resolve, .name = "PolicyResolveParams");
FIELDS(f_resolve_result, {"plan", &t_plan, true, NULL},
       {"legacyEquivalent", &t_bool, true, NULL}, {"enforceable", &t_bool, true, NULL},
       {"reason", &t_string, false, "Why the plan is not enforceable here."},
       {"backend", &t_backend, false,
        "The backend process/spawn would use for this plan here (none for an unsandboxed "
        "plan)."},
       {"warnings", &t_warnings, false, NULL});
OBJECT(t_resolve_result, f_resolve_result, .name = "PolicyResolveResult");
FIELDS(f_transform, {"sandbox", &proto_t_sandbox_policy, true, NULL},
       {"cwd", &t_abs_path, true, NULL}, {"to", &t_transform_to, true, NULL});
OBJECT(t_transform_params, f_transform, .name = "PolicyTransformParams");
FIELDS(f_transform_result, {"sandbox", &proto_t_sandbox_policy, true, NULL});
OBJECT(t_transform_result, f_transform_result, .name = "PolicyTransformResult");

/* ---- sandbox setup ---- */

FIELDS(f_telemetry, {"enabled", &t_bool, true, "An OTLP endpoint is configured."},
       {"spansExported", &t_uint, true, "Spans the collector accepted."},
       {"logRecordsExported", &t_uint, true, "Log records the collector accepted."},
       {"spansDropped", &t_uint, true,
        "Spans lost: queue full (maxQueueBytes), batch refused or retries exhausted."},
       {"logRecordsDropped", &t_uint, true, "Log records lost, for the same reasons."},
       {"exportFailures", &t_uint, true, "Batches given up on."},
       {"retries", &t_uint, true, "Sends repeated after 429/502/503/504 or a transport error."},
       {"queuedBytes", &t_uint, true, "Encoded events waiting or in flight (at most maxQueueBytes)."});
OBJECT(t_telemetry_status, f_telemetry, .name = "TelemetryStatus",
       .desc = "OpenTelemetry export counters since the server started (all 0 when disabled).");
FIELDS(f_readiness, {"status", &t_readiness, true, NULL},
       {"setupVersion", &t_uint, true, "The setup version this server writes."},
       {"features", &t_features, true, NULL},
       {"telemetry", &t_telemetry_status, true, NULL},
       {"warnings", &t_string_list, true,
        "Problems found without failing: e.g. a bad line of the network-rules file (with its "
        "line number), which was skipped."});
OBJECT(t_readiness_result, f_readiness, .name = "SandboxReadinessResult");
FIELDS(f_setup, {"cwd", &t_abs_path, false,
                 "The workspace to prepare. A setup asked for while one runs is queued with its "
                 "own cwd."});
OBJECT(t_setup_params, f_setup, .name = "SandboxSetupParams");
static const proto_type t_true = {.kind = PK_BOOL, .desc = "Always true."};
FIELDS(f_setup_result, {"started", &t_true, true, NULL});
OBJECT(t_setup_result, f_setup_result, .name = "SandboxSetupResult");
FIELDS(f_step, {"name", &t_string, true, NULL}, {"ok", &t_bool, true, NULL},
       {"detail", &t_string, true, NULL});
OBJECT(t_step, f_step, .name = "SetupStep");
static const proto_type t_steps = {.kind = PK_ARRAY, .items = &t_step};
FIELDS(f_setup_done, {"success", &t_bool, true, NULL},
       {"error", &t_string_nullable, true, NULL}, {"durationMs", &t_uint, true, NULL},
       {"steps", &t_steps, true, NULL});
OBJECT(t_setup_done, f_setup_done, .name = "SandboxSetupCompletedNotification");
FIELDS(f_refresh, {"cwd", &t_abs_path, true, NULL},
       {"sandbox", &proto_t_sandbox_policy, true, NULL});
OBJECT(t_refresh_params, f_refresh, .name = "SandboxRefreshParams");
FIELDS(f_refresh_result, {"changes", &t_string_list, true, NULL},
       {"warnings", &t_warnings, true, NULL});
OBJECT(t_refresh_result, f_refresh_result, .name = "SandboxRefreshResult");

/* ---- network ---- */

static const proto_type t_patterns = {
    .kind = PK_ARRAY,
    .items = &t_name,
    .desc = "example.com exact, *.example.com subdomains only, **.example.com apex and "
            "subdomains, * everything (allowedDomains only), IP literals and [v6]; "
            "case-insensitive, a trailing dot ignored."};
ENUM(e_rule_action, "allow", "deny");
ENUM_TYPE(t_rule_action, e_rule_action);
FIELDS(f_net_rule, {"action", &t_rule_action, true, NULL},
       {"protocol", &t_net_protocol, true, NULL},
       {"host", &t_string, true, "One exact host, normalised; never a wildcard."},
       {"port", &t_port, true, NULL});
OBJECT(t_net_rule, f_net_rule, .name = "NetworkRule",
       .desc = "A persisted approval rule (allowAlways, denyAlways, or a line of the state "
               "directory's network-rules file). It answers an allow-list miss for exactly this "
               "(host, protocol, port) without a prompt; a deny rule wins over an allow rule.");
static const proto_type t_net_rules = {.kind = PK_ARRAY, .items = &t_net_rule};
FIELDS(f_net_policy, {"allowedDomains", &t_patterns, true, NULL},
       {"deniedDomains", &t_patterns, true, "Deny wins over allow."},
       {"mode", &t_net_policy_mode, true,
        "limited: only GET, HEAD and OPTIONS requests; no CONNECT or SOCKS5."},
       {"allowLocalBinding", &t_bool, true,
        "Allow local and private destinations (loopback, RFC 1918, link-local, ...); "
        "otherwise only a literal the allowlist names exactly."},
       {"approvalRules", &t_net_rules, false,
        "network/policy/get: the persisted approval rules in force, absent when there are none. "
        "network/policy/set ignores it (rules change through approvals and the network-rules "
        "file), so a policy read with get can be set again as it is."});
OBJECT(t_net_policy, f_net_policy, .name = "NetworkPolicy",
       .desc = "The egress proxy's policy. An empty allowlist allows nothing; deny wins; a "
               "change applies to the next request and open tunnels stay up.");
static const proto_type t_limit = {.kind = PK_INT, .has_min = true, .min = 1, .has_max = true,
                                   .max = 200};
FIELDS(f_blocked, {"limit", &t_limit, false, NULL});
OBJECT(t_blocked_params, f_blocked, .name = "NetworkBlockedListParams");
static const proto_type t_process_id_nullable = {.kind = PK_STRING, .nullable = true};
FIELDS(f_decision, {"timestamp", &t_string, true, "RFC 3339 UTC with milliseconds."},
       {"host", &t_string, true, NULL}, {"port", &t_port, true, NULL},
       {"protocol", &t_net_protocol, true, NULL}, {"method", &t_string, true, NULL},
       {"decision", &t_decision, true,
        "ask: an allowlist miss that approvals may settle; its outcome follows as allow or "
        "deny."},
       {"reason", &t_string, true,
        "allowed, denied (deny list), not_allowed (allowlist miss), not_allowed_local (local "
        "or private address), method_not_allowed (limited mode)."},
       {"source", &t_string, true, "baseline_policy, mode_guard or decider."},
       {"processId", &t_process_id_nullable, true,
        "The process whose sandbox owns the listener; null for --proxy-listen."});
OBJECT(t_net_decision, f_decision, .name = "NetworkDecision");
static const proto_type t_decisions = {.kind = PK_ARRAY, .items = &t_net_decision};
FIELDS(f_blocked_result, {"blocked", &t_decisions, true, "The most recent first."});
OBJECT(t_blocked_result, f_blocked_result, .name = "NetworkBlockedListResult");
static const proto_type t_process_ids = {.kind = PK_ARRAY, .items = &t_process_id};
FIELDS(f_approval, {"approvalId", &t_string, true, NULL}, {"host", &t_string, true, NULL},
       {"port", &t_port, true, NULL}, {"protocol", &t_net_protocol, true, NULL},
       {"processIds", &t_process_ids, true, NULL}, {"reason", &t_string, true, NULL},
       {"startedAtMs", &t_uint, true, NULL});
OBJECT(t_approval_params, f_approval, .name = "ApprovalNetworkParams",
       .desc = "One prompt per (lowercased host, protocol, port) at a time; requests for the same "
               "key wait on it and share its answer. No answer within approvalTimeoutMs, an error "
               "or an unknown decision counts as deny.");
FIELDS(f_approval_result, {"decision", &t_approval_decision, true, NULL});
OBJECT(t_approval_result, f_approval_result, .name = "ApprovalNetworkResult");
FIELDS(f_approval_resolved, {"approvalId", &t_string, true, NULL},
       {"decision", &t_approval_decision, true, NULL},
       {"waiters", &t_uint, true,
        "How many requests shared this prompt (those still waiting when it was settled)."},
       {"reason", &t_string, false,
        "Why the group was refused, when it was: denied_by_user (deny, denyAlways), "
        "approval_timeout, approval_error (an error answer), approval_unknown_decision, "
        "approval_client_gone, server_shutting_down."});
OBJECT(t_approval_resolved, f_approval_resolved, .name = "ApprovalResolvedNotification");

/* ---- the methods ---- */

const proto_method proto_methods[] = {
    {"initialize", PD_CLIENT_REQUEST, &t_init_params, &t_init_result,
     "First request; any other request before it gets -32600. A second one gets -32600."},
    {"initialized", PD_CLIENT_NOTIFICATION, NULL, NULL, "Sent by the client after initialize."},
    {"shutdown", PD_CLIENT_REQUEST, NULL, &t_empty,
     "Terminates every process (TERM, then KILL after the grace), answers, and exits 0. Always "
     "answered: also before initialize, never -32001, and a second one too."},
    {"process/spawn", PD_CLIENT_REQUEST, &t_spawn_params, &t_spawn_result,
     "Start a command. Setup or exec failures answer -32004 (data.errno, data.syscall); a sandbox "
     "that cannot be enforced answers -32003 (data.reason)."},
    {"process/write", PD_CLIENT_REQUEST, &t_write_params, &t_write_result,
     "-32602 when stdin is not open."},
    {"process/resize", PD_CLIENT_REQUEST, &t_resize_params, &t_empty,
     "-32602 for a non-tty process."},
    {"process/terminate", PD_CLIENT_REQUEST, &t_terminate_params, &t_terminate_result,
     "The signal goes to the process group; KILL follows after graceMs."},
    {"process/read", PD_CLIENT_REQUEST, &t_read_params, &t_read_result,
     "Replay retained output, long-polling up to waitMs."},
    {"process/release", PD_CLIENT_REQUEST, &t_release_params, &t_empty,
     "Forget a process. A running one is killed (KILL to its group), its further output is "
     "dropped, process/exited is still sent and this is answered after it. An exited one is "
     "forgotten at once. Released already or unknown: -32002."},
    {"process/list", PD_CLIENT_REQUEST, NULL, &t_list_result, NULL},
    {"process/output", PD_SERVER_NOTIFICATION, &t_output_notif, NULL, NULL},
    {"process/exited", PD_SERVER_NOTIFICATION, &t_exited_notif, NULL, NULL},
    {"policy/resolve", PD_CLIENT_REQUEST, &t_resolve_params, &t_resolve_result,
     "Resolve a policy against cwd into the plan the sandbox enforces."},
    {"policy/transform", PD_CLIENT_REQUEST, &t_transform_params, &t_transform_result,
     "Convert between legacy and split shapes; -32602 names the entry that cannot be "
     "expressed."},
    {"sandbox/readiness", PD_CLIENT_REQUEST, NULL, &t_readiness_result, NULL},
    {"sandbox/setup", PD_CLIENT_REQUEST, &t_setup_params, &t_setup_result,
     "Runs setup; the result comes later as sandbox/setupCompleted."},
    {"sandbox/setupCompleted", PD_SERVER_NOTIFICATION, &t_setup_done, NULL, NULL},
    {"sandbox/refresh", PD_CLIENT_REQUEST, &t_refresh_params, &t_refresh_result,
     "Re-applies what setup applied for a new cwd or policy, without elevating; idempotent."},
    {"network/policy/get", PD_CLIENT_REQUEST, NULL, &t_net_policy, NULL},
    {"network/policy/set", PD_CLIENT_REQUEST, &t_net_policy, &t_empty,
     "Live: open tunnels stay up."},
    {"network/blocked/list", PD_CLIENT_REQUEST, &t_blocked_params, &t_blocked_result, NULL},
    {"network/decision", PD_SERVER_NOTIFICATION, &t_net_decision, NULL, NULL},
    {"approval/network", PD_SERVER_REQUEST, &t_approval_params, &t_approval_result, NULL},
    {"approval/resolved", PD_SERVER_NOTIFICATION, &t_approval_resolved, NULL, NULL},
    {NULL, 0, NULL, NULL, NULL},
};

