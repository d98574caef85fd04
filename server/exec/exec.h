/* server/exec: unified exec sessions on the server's libuv loop.
 *
 * Each session is a command in a PTY or with pipes. warden spawns through its
 * own fork/exec path (uv_spawn cannot give a controlling terminal or run
 * sandbox setup in the child):
 *
 *   server --clone(flags|CLONE_PIDFD)--> supervisor --fork--> command --execve
 *
 * The supervisor is a forked copy of the server that never execs. It is pid 1
 * of the sandbox's namespaces when there are any, a subreaper otherwise; it
 * runs the namespace half of the sandbox, forwards signals to the command's
 * process group, and when the command exits kills what is left of its tree and
 * reports the command's wait status to the server over the report pipe. The
 * server watches the supervisor with a pidfd on the loop.
 *
 * Output is read in chunks of up to 64 KiB and delivered through callbacks in
 * order, with one seq counter per process shared by output and exit; exit is
 * delivered only after every byte of output has been delivered. A per-process
 * ring keeps the last `retain_bytes` of output for exec_proc_read().
 *
 * Errors: 0 or a negative errno. Ownership: the engine owns every exec_proc;
 * a proc stays valid until exec_proc_release() or the retention timer (60 s
 * after exit) frees it, or until exec_engine_free().
 *
 * What the caller hands over and gets back: exec_spawn copies argv, envp,
 * the id and cwd; it borrows `sandbox` and never frees it. The caller owns
 * `user` and the data slot and must keep `sandbox` alive until the engine
 * reports the end of the process, which it does exactly once for every spawn
 * that returned 0: on_spawned with an error, or on_exit (also for a process
 * released while running). After that callback returns the engine touches
 * neither again; the callback is the place to free them. The one exception
 * is exec_engine_free(), which calls nothing back: the caller frees what the
 * engine had not reported yet after it.
 */
#ifndef WARDEN_EXEC_H
#define WARDEN_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct sandbox_spec;

typedef struct exec_engine exec_engine;
typedef struct exec_proc exec_proc;

typedef enum exec_stream {
  EXEC_STREAM_STDOUT = 0,
  EXEC_STREAM_STDERR,
  EXEC_STREAM_PTY,
} exec_stream;

const char *exec_stream_name(exec_stream s); /* "stdout" | "stderr" | "pty" */

typedef struct exec_exit_info {
  int exit_code;      /* valid when signal == 0 */
  int signal;         /* terminating signal number, 0 if exited normally */
  bool timed_out;
  uint64_t duration_ms;
  const char *limit;  /* the limit that ended it: "memory" | "processes" | "cpu" |
                       * "fileSize", NULL: none (limits.h) */
} exec_exit_info;

typedef struct exec_spawn_error {
  int err;             /* positive errno */
  char syscall[96];    /* the failing step: "execve", "chdir", "mount /w", ... */
  bool sandbox;        /* the failure was in sandbox setup (-32003 rather than -32004) */
} exec_spawn_error;

typedef struct exec_callbacks {
  void *ctx;
  /* The spawn finished: proc is running (err == NULL), or failed and is gone
   * (err != NULL; proc must not be used after the callback). Output and exit
   * callbacks for proc come only after this. */
  void (*on_spawned)(void *ctx, exec_proc *proc, void *user, const exec_spawn_error *err);
  /* A chunk of output; data is valid only during the call. cap_reached is set
   * on the last chunk delivered for a stream that hit outputBytesCap. */
  void (*on_output)(void *ctx, exec_proc *proc, uint64_t seq, exec_stream stream,
                    const uint8_t *data, size_t len, bool cap_reached);
  /* The process exited and all its output has been delivered (for a
   * released process: all its output up to the release). Called exactly once
   * for every process whose on_spawned reported success. */
  void (*on_exit)(void *ctx, exec_proc *proc, uint64_t seq, const exec_exit_info *info);
} exec_callbacks;

typedef struct exec_engine_opts {
  size_t retain_bytes;       /* ring per process for exec_proc_read (0: the default 1 MiB) */
  bool retain_none;          /* keep no output at all: every exec_proc_read is empty */
  uint64_t retain_exited_ms; /* how long an exited proc is kept (default 60000) */
} exec_engine_opts;

/* The zygote (zygote.c): one small process forked now, before the heap and
 * threads grow, that creates every supervisor afterwards, so spawning never
 * forks the server. It keeps warm_per_kind supervisors ready for each kind
 * of spawn it has seen (plain, and each set of sandbox namespaces; at most
 * EXEC_ZYGOTE_WARM_MAX; 0: none), so a spawn does not wait for a clone.
 * Call it from the main thread (the zygote dies with the thread that forked
 * it). 0 or -errno (spawns then clone directly). */
#define EXEC_ZYGOTE_WARM_MAX 8
#define EXEC_ZYGOTE_WARM_DEFAULT 2
int exec_zygote_start(size_t warm_per_kind);
/* Close it and wait for it (at exit; spawns clone directly afterwards). */
void exec_zygote_stop(void);
/* Its pid, or -1 when there is none (tests, diagnostics). */
pid_t exec_zygote_pid(void);

int exec_engine_new(uv_loop_t *loop, const exec_engine_opts *opts, const exec_callbacks *cb,
                    exec_engine **out);
/* Terminate every process group (TERM, KILL after grace_ms) and call done
 * once all are reaped. */
void exec_engine_shutdown(exec_engine *e, uint64_t grace_ms, void (*done)(void *arg), void *arg);
/* Free everything; only after shutdown completed (or with no processes). */
void exec_engine_free(exec_engine *e);

/* Backpressure: stop reading children's output (they block on their pipes)
 * until resumed. Nesting is not counted: pause/resume are idempotent. */
void exec_engine_pause_output(exec_engine *e);
void exec_engine_resume_output(exec_engine *e);

typedef struct exec_spawn_opts {
  const char *process_id;     /* unique among live processes */
  char *const *argv;          /* non-empty, NULL-terminated */
  const char *arg0;           /* argv[0] override, may be NULL */
  const char *cwd;            /* absolute; NULL: server's cwd */
  char *const *envp;          /* final environment, NULL-terminated */
  bool tty;
  unsigned rows, cols;        /* tty only */
  bool stream_stdin;          /* pipes only: keep stdin open for writes */
  int64_t output_cap;         /* per-stream cap on delivered bytes, <0: none */
  int64_t timeout_ms;         /* <0: none */
  const struct sandbox_spec *sandbox; /* NULL: no sandbox; borrowed until on_exit or
                                       * on_spawned(err) returns (see above) */
  void *user;                 /* passed back to on_spawned */
  const struct exec_limits *limits; /* resource limits (limits.h), NULL: none; copied */
} exec_spawn_opts;

/* Start a spawn. Returns 0 and later calls on_spawned, or a negative errno
 * right away (-EEXIST duplicate id, -ENOMEM, ...). */
int exec_spawn(exec_engine *e, const exec_spawn_opts *opts);

exec_proc *exec_engine_find(exec_engine *e, const char *process_id);

/* Iterate live and retained processes in spawn order. */
typedef void (*exec_proc_visit_fn)(exec_proc *proc, void *arg);
void exec_engine_each(exec_engine *e, exec_proc_visit_fn fn, void *arg);

const char *exec_proc_id(const exec_proc *p);
int exec_proc_pid(const exec_proc *p); /* pid of the command as the server sees it */
bool exec_proc_running(const exec_proc *p);
bool exec_proc_tty(const exec_proc *p);
char *const *exec_proc_argv(const exec_proc *p);
uint64_t exec_proc_started_at_ms(const exec_proc *p); /* Unix epoch ms */
const exec_exit_info *exec_proc_exit_info(const exec_proc *p); /* NULL while running */
uint64_t exec_proc_next_seq(const exec_proc *p);
/* Opaque per-proc slot for the handler layer. */
void exec_proc_set_data(exec_proc *p, void *data);
void *exec_proc_get_data(const exec_proc *p);

/* Write to stdin (PTY master or stdin pipe), in order, partial writes handled.
 * done(arg, n) is called once with the bytes written or a negative errno
 * (-EPIPE when stdin is not open). close_stdin closes after the data. */
typedef void (*exec_write_done_fn)(void *arg, ssize_t result);
int exec_proc_write(exec_proc *p, const uint8_t *data, size_t len, bool close_stdin,
                    exec_write_done_fn done, void *arg);

int exec_proc_resize(exec_proc *p, unsigned rows, unsigned cols); /* -ENOTTY for pipes */

/* Send sig to the process group; KILL follows after grace_ms if it is still
 * running. Returns 1 if it was running, 0 if not. */
int exec_proc_terminate(exec_proc *p, int sig, uint64_t grace_ms);

/* Replay retained output with seq > after_seq, oldest first, stopping before
 * max_bytes would be exceeded (at least one chunk is returned). */
typedef void (*exec_chunk_fn)(void *arg, uint64_t seq, exec_stream stream, const uint8_t *data,
                              size_t len);
void exec_proc_read(const exec_proc *p, uint64_t after_seq, size_t max_bytes, exec_chunk_fn fn,
                    void *arg);

/* Forget a process. Exited: freed now (the data slot is not used again).
 * Running: killed (KILL to its group); its further output is dropped, on_exit
 * is still called once it is reaped, and then it is freed. It is not found by
 * exec_engine_find() from this call on. */
void exec_proc_release(exec_proc *p);

/* Which mechanism enforces limit `which` (EXEC_LIMIT_*, limits.h) for this
 * process; an exec_limit_mech. */
int exec_proc_limit_mech(const exec_proc *p, int which);

/* Signal names without SIG ("KILL") and back; NULL/0 when unknown. */
const char *exec_signal_name(int sig);
int exec_signal_from_name(const char *name);

#endif
