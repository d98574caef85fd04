/* Resource limits for process/spawn: the effective values (request, then
 * the config file's `limits`, then built-in defaults for sandboxed commands)
 * and the `limits` object of the spawn result. */
#include "handlers/handlers.h"
#include "server/exec/limits.h"

#include <unistd.h>

/* Built-in defaults for a sandboxed command, chosen so that a fork bomb or a
 * memory balloon stays inside its own sandbox:
 * - maxProcesses 4096: a parallel build (make -j, cargo, ninja spawning
 *   compilers, linkers and their threads) stays in the hundreds; 4096 is far
 *   above that and far below the host's pid_max (32768 at the least).
 * - memoryBytes: half the host's RAM, at least 1 GiB, and only when a cgroup
 *   enforces it (memory of the whole tree). A single C++ or Rust compile or
 *   link needs 1-4 GiB; half leaves the rest for the server, its other
 *   sessions and the host. No default for the RLIMIT_AS fallback: address
 *   space is not memory (Go, Java, node and sanitizers reserve far more than
 *   they use), so a default there would break ordinary tools.
 * - cpuSeconds, fileSizeBytes, openFiles: none by default (a long build, a
 *   large artifact and the inherited descriptor limit are all legitimate). */
#define LIMITS_DEFAULT_PROCESSES 4096u
#define LIMITS_DEFAULT_MEMORY_MIN (1ull << 30)

static uint64_t default_memory(void) {
  long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
  uint64_t half = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz / 2 : 0;
  return half > LIMITS_DEFAULT_MEMORY_MIN ? half : LIMITS_DEFAULT_MEMORY_MIN;
}

void handlers_spawn_limits(warden_server *s, json_t *params, bool sandboxed, exec_limits *out) {
  exec_limit_mech m[EXEC_LIMIT_COUNT];
  exec_limits_probe(m);
  json_t *req = json_object_get(params, "limits");
  for (int i = 0; i < EXEC_LIMIT_COUNT; i++) {
    const char *name = exec_limit_name(i);
    json_t *v = json_object_get(req, name);
    if (!v)
      v = json_object_get(s->cfg.limits, name);
    if (v) { /* null: explicitly none */
      out->v[i] = json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
      continue;
    }
    out->v[i] = 0;
    if (!sandboxed)
      continue;
    if (i == EXEC_LIMIT_PROCESSES)
      out->v[i] = LIMITS_DEFAULT_PROCESSES;
    else if (i == EXEC_LIMIT_MEMORY &&
             (m[i] == EXEC_MECH_CGROUP2 || m[i] == EXEC_MECH_CGROUP1))
      out->v[i] = default_memory();
  }
}

json_t *handlers_applied_limits_json(const exec_proc *p, const exec_limits *l) {
  json_t *o = json_object();
  for (int i = 0; i < EXEC_LIMIT_COUNT; i++)
    if (l->v[i])
      json_object_set_new(o, exec_limit_name(i),
                          json_pack("{s:I,s:s}", "value", (json_int_t)l->v[i], "enforcedBy",
                                    exec_limit_mech_name((exec_limit_mech)exec_proc_limit_mech(p, i))));
  return o;
}
