/* server/exec/limits: resource limits for one spawned process tree.
 *
 * Each limit is enforced by the strongest mechanism the host offers to this
 * server:
 *
 *   maxProcesses  cgroup v2 pids.max, else cgroup v1 pids.max, else
 *                 RLIMIT_NPROC (counted per user in the command's user
 *                 namespace; it does not bind uid 0 of the host, so for a
 *                 root server without a pids controller it is "none")
 *   memoryBytes   cgroup v2 memory.max, else cgroup v1
 *                 memory.limit_in_bytes, else RLIMIT_AS (address space, not
 *                 resident memory: only when the client or config asks)
 *   cpuSeconds    RLIMIT_CPU (SIGXCPU at the limit, KILL a second later)
 *   fileSizeBytes RLIMIT_FSIZE (SIGXFSZ)
 *   openFiles     RLIMIT_NOFILE
 *
 * cgroups: under the server's own cgroup (v2: the unified mount; v1: each
 * controller's mount) warden creates "warden-<server pid>", and in it one
 * cgroup per spawn. The parent creates and configures it before clone and
 * opens its cgroup.procs files; the supervisor writes itself into them first
 * thing, before it runs any sandbox setup or forks the command, so the whole
 * tree is inside. After the supervisor is reaped, the server reads the event
 * counters (memory.events oom_kill, pids.events max; v1 memory.oom_control
 * oom_kill), kills anything left (cgroup.kill on v2, SIGKILL per pid on v1)
 * and removes the cgroup (retried later while it still has dying tasks).
 *
 * Ownership: exec_limits_state lives inside its exec_proc; prepare opens fds
 * and directories that exec_limits_finish releases (the supervisor's copies
 * are closed by the supervisor). Errors: negative errno.
 */
#ifndef WARDEN_EXEC_LIMITS_H
#define WARDEN_EXEC_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

enum {
  EXEC_LIMIT_PROCESSES = 0,
  EXEC_LIMIT_MEMORY,
  EXEC_LIMIT_CPU,
  EXEC_LIMIT_FILE_SIZE,
  EXEC_LIMIT_OPEN_FILES,
  EXEC_LIMIT_COUNT
};

typedef enum exec_limit_mech {
  EXEC_MECH_NONE = 0,
  EXEC_MECH_CGROUP2,
  EXEC_MECH_CGROUP1,
  EXEC_MECH_RLIMIT,
} exec_limit_mech;

/* Values per EXEC_LIMIT_*; 0: no limit. */
typedef struct exec_limits {
  uint64_t v[EXEC_LIMIT_COUNT];
} exec_limits;

#define EXEC_LIMITS_CG_FDS 3 /* v2, v1 pids, v1 memory */
#define EXEC_LIMITS_PATH_MAX 512

typedef struct exec_limits_state {
  exec_limits want;
  exec_limit_mech mech[EXEC_LIMIT_COUNT];
  int procs_fd[EXEC_LIMITS_CG_FDS]; /* cgroup.procs to join, -1: none */
  char dir[EXEC_LIMITS_CG_FDS][EXEC_LIMITS_PATH_MAX]; /* "" : none */
  bool active;
} exec_limits_state;

/* "maxProcesses", "memoryBytes", "cpuSeconds", "fileSizeBytes", "openFiles" */
const char *exec_limit_name(int which);
/* "cgroup2" | "cgroup1" | "rlimit" | "none" */
const char *exec_limit_mech_name(exec_limit_mech m);

/* Which mechanism would enforce each limit on this host (probes once). */
void exec_limits_probe(exec_limit_mech out[EXEC_LIMIT_COUNT]);
/* What the probe found, in words (for initialize): e.g. "cgroup2 at
 * /sys/fs/cgroup/unified (controllers: none delegated); cgroup1 pids, memory". */
const char *exec_limits_host_summary(void);

/* Parent, before clone: pick mechanisms, create and configure the cgroups,
 * open their cgroup.procs. A limit that cannot be put in a cgroup falls back
 * to an rlimit (or none). Returns 0; on an error st is left inactive. */
int exec_limits_prepare(exec_limits_state *st, const exec_limits *want, uint64_t serial);
/* Parent, after clone: close the parent's copies of the procs fds. */
void exec_limits_after_clone(exec_limits_state *st);
/* Child (async-signal-safe): the supervisor joins its cgroups. */
int exec_limits_join(const exec_limits_state *st);
/* Child (async-signal-safe): the command applies its rlimits. */
int exec_limits_apply_rlimits(const exec_limits_state *st);
/* Parent, after the supervisor is reaped: which limit ended the process
 * (EXEC_LIMIT_* or -1), given the command's wait status; then kill what is
 * left and remove the cgroups. */
int exec_limits_finish(exec_limits_state *st, int wait_status);
/* Parent: SIGKILL everything in the process's cgroups now (cgroup.kill on
 * v2, every listed pid on v1). */
void exec_limits_kill(exec_limits_state *st);
/* Retry removing cgroups that still had dying tasks (blocking up to ms). */
void exec_limits_flush(unsigned ms);
/* At engine free: flush, then remove this server's warden-<pid> cgroups. */
void exec_limits_host_cleanup(unsigned ms);

#endif
