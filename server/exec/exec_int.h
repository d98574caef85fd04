/* server/exec internals: shared by the engine's files, not part of the API.
 *
 * Files:
 *   engine.c  the engine: process table, deferred callbacks, shutdown,
 *             pause/resume, find/each
 *   spawn.c   parent side of a spawn: argv/env/PATH precomputation, the PTY
 *             or pipes, clone, the report pipe and the pidfd on the loop
 *   child.c   the supervisor and the command between clone and execve
 *             (async-signal-safe only: no malloc, no stdio, no locks)
 *   io.c      output reading into the ring, stdin write queue
 *   ring.c    the per-process ring of delivered output chunks
 *   proc.c    process lifecycle: accessors, terminate, resize, release,
 *             reaping, exit delivery, freeing
 *   signals.c signal names
 *   zygote.c  the process that creates supervisors (CLONE_PARENT), so the
 *             server is never forked
 */
#ifndef WARDEN_EXEC_INT_H
#define WARDEN_EXEC_INT_H

#include "server/exec/exec.h"
#include "server/exec/limits.h"

#include <signal.h>
#include <sys/types.h>

#define EXEC_CHUNK_MAX (256u * 1024u)       /* largest read and chunk */
#define EXEC_CHUNK_MIN (64u * 1024u)        /* ... with a small retain limit (exec_chunk_size) */
#define EXEC_PIPE_BYTES (256 * 1024)        /* capacity asked for the output pipes */
#define EXEC_READ_BUDGET 16                 /* reads per wakeup per stream */
#define EXEC_DRAIN_TIMEOUT_MS 2000          /* after the run, EOF wait cap */
#define EXEC_DEFAULT_RETAIN_BYTES (1u << 20)
#define EXEC_DEFAULT_RETAIN_EXITED_MS 60000

/* ---- report records: supervisor -> server over the report pipe, and the
 * command -> supervisor failure record over the exec pipe. Fixed size, well
 * under PIPE_BUF so every write is atomic. ---- */
enum {
  EXEC_REC_STARTED = 1, /* exec succeeded; pid = the command as the supervisor sees it */
  EXEC_REC_FAILED = 2,  /* setup or exec failed: err, step, sandbox */
  EXEC_REC_EXIT = 3,    /* the command's wait status; its tree is gone */
};

typedef struct exec_record {
  int32_t type;
  int32_t err;    /* positive errno */
  int32_t status; /* wait status (EXIT) */
  int32_t pid;    /* STARTED */
  int32_t sandbox;
  char step[96];
} exec_record;

/* ---- ring of delivered output (ring.c) ---- */
typedef struct exec_chunk {
  uint64_t seq;
  size_t off;
  uint32_t len;
  uint8_t stream;
} exec_chunk;

typedef struct exec_ring {
  uint8_t *buf; /* mmap'd, MADV_DONTFORK: clone does not copy it */
  size_t cap;   /* bytes mapped */
  size_t limit; /* retained bytes at most */
  size_t wpos;
  size_t bytes;
  exec_chunk *ch; /* circular index, oldest at head */
  size_t head, n, chcap;
} exec_ring;

int exec_ring_init(exec_ring *r, size_t limit); /* limit 0: no ring */
/* How much to read at once for a ring of `limit` bytes: EXEC_CHUNK_MAX,
 * but at most a quarter of the limit (never under EXEC_CHUNK_MIN), so that
 * what is retained stays within one chunk of the limit. */
size_t exec_chunk_size(size_t limit);
void exec_ring_free(exec_ring *r);
/* Space for a read of up to EXEC_CHUNK_MAX bytes, evicting what it overlaps. */
uint8_t *exec_ring_reserve(exec_ring *r);
/* Record n bytes just read at the reserved spot as chunk seq. */
void exec_ring_commit(exec_ring *r, uint64_t seq, exec_stream stream, size_t n);
void exec_ring_read(const exec_ring *r, uint64_t after_seq, size_t max_bytes, exec_chunk_fn fn,
                    void *arg);

/* ---- the child side (child.c) ---- */

/* Everything the supervisor and the command need, computed in the parent
 * before clone; the child reads its copy of this memory. */
typedef struct exec_child_ctx {
  pid_t server_pid;
  bool newpid;            /* CLONE_NEWPID: the supervisor is pid 1 */
  bool tty;
  int report_w;           /* supervisor -> server */
  int devnull;
  int pty_slave;          /* tty */
  int sandbox_fd;    /* kept for sandbox_child_init (proxy channel), -1: none */
  int stdin_r, stdout_w, stderr_w; /* pipes; stdin_r -1: /dev/null */
  const char *cwd;        /* NULL: inherit */
  char *const *argv;      /* argv[0] already replaced by arg0 */
  char *const *envp;
  char **cand;            /* NULL-terminated program paths to try in order */
  char **sh_argv;         /* {"/bin/sh", <slot>, argv[1..], NULL} for ENOEXEC */
  const struct sandbox_spec *sandbox;
  exec_limits_state *limits; /* cgroups to join, rlimits to set; NULL: none */
  /* CLONE_NEW* flags the supervisor unshares first: the part of the spawn's
   * flags that a warm supervisor (zygote.c) could not take at its clone
   * (CLONE_NEWNS: the mount table is copied when the spawn comes, not when
   * the supervisor was made). 0 otherwise. */
  unsigned long unshare_flags;
  /* Every signal disposition is SIG_DFL already (the zygote reset them
   * once for all its supervisors): skip the 64 sigaction calls. */
  bool signals_default;
} exec_child_ctx;

/* Runs in the clone()d child; never returns. */
_Noreturn void exec_supervisor_main(exec_child_ctx *c);

/* zygote.c: have the zygote clone the supervisor (flags: CLONE_NEW*) for c.
 * 0 with *pid and *pidfd (the supervisor is our child); -errno of the
 * zygote's clone (a spawn failure, reported as clone's); -ENODEV when there
 * is no usable zygote (clone here instead). */
int exec_zygote_spawn(const exec_child_ctx *c, unsigned long flags, int *pidfd, pid_t *pid);

/* ---- processes ---- */

typedef struct exec_wreq {
  struct exec_wreq *next;
  uint8_t *data;
  size_t len, off;
  size_t report; /* bytes reported to done (without an appended VEOF) */
  bool close_after;
  exec_write_done_fn done;
  void *arg;
  ssize_t result;
} exec_wreq;

enum { EXEC_FD_OUT = 0, EXEC_FD_ERR, EXEC_FD_IN, EXEC_FD_REPORT, EXEC_FD_PIDFD, EXEC_NFDS };

typedef struct exec_fdw {
  uv_poll_t poll;
  exec_proc *proc;
  int fd;          /* -1: closed */
  int role;        /* EXEC_FD_* */
  int events;      /* currently polled */
  bool polling;    /* poll handle initialized and not closing */
  bool reading;    /* output: open and not at EOF */
} exec_fdw;

typedef enum exec_state {
  EXEC_SPAWNING = 0, /* waiting for STARTED or FAILED */
  EXEC_RUNNING,      /* on_spawned(ok) delivered */
  EXEC_EXITED,       /* on_exit delivered, retained */
  EXEC_DEAD,         /* failed, released or freed: no more callbacks */
} exec_state;

struct exec_proc {
  exec_engine *e;
  exec_proc *prev, *next; /* engine list, spawn order */
  char *id;
  char **argv; /* owned copy, as given (before arg0) */
  void *user;
  void *data;
  bool tty;
  bool newpid;
  bool released;
  exec_state state;
  const struct sandbox_spec *sandbox;

  pid_t sup_pid;
  pid_t cmd_pid;  /* server's view */
  pid_t cmd_pgid; /* server's view; 0 unknown or in a pid namespace */
  int sup_status; /* wait status of the supervisor once reaped */
  bool sup_reaped;

  exec_fdw fds[EXEC_NFDS];
  exec_fdw *wfd; /* where stdin writes go: OUT (pty master) or IN */
  unsigned char veof;
  bool stdin_open;   /* writes accepted */
  exec_wreq *wq_head, *wq_tail;

  uint8_t rbuf[sizeof(exec_record)];
  size_t rlen;

  bool failed;
  exec_spawn_error err;
  bool exit_known;
  int exit_status; /* wait status of the command */
  bool timed_out;
  exec_exit_info info;

  uint64_t next_seq;
  size_t chunk; /* read size: exec_chunk_size(retain limit) */
  int64_t cap;
  uint64_t delivered[2]; /* per stream: STDOUT/PTY, STDERR */
  bool capped[2];
  exec_ring ring;

  uint64_t spawn_hr;  /* uv_hrtime at spawn */
  uint64_t started_ms;
  int64_t timeout_ms;

  uv_timer_t t_timeout; /* timeout deadline, then retention */
  uv_timer_t t_grace;   /* KILL after terminate grace, then drain cap */
  int handles;          /* open uv handles */
  bool closing;
  bool in_live;         /* counted in e->live (not yet reaped) */
  bool linked;          /* in the engine's table */
  bool deferred_check;  /* exec_proc_check_done from the deferred pass */
  bool draining;        /* t_grace is the drain cap now */
  exec_limits_state lim; /* resource limits (limits.c) */
};

struct exec_engine {
  uv_loop_t *loop;
  exec_callbacks cb;
  size_t retain_bytes;
  uint64_t retain_exited_ms;
  exec_proc *head, *tail;
  size_t live; /* supervisors not yet reaped */
  int devnull;
  bool paused;
  bool shutting;
  bool freeing;
  uint64_t grace_ms;
  void (*shutdown_done)(void *);
  void *shutdown_arg;
  bool done_pending;
  uint8_t *scratch; /* reads past the cap or without a ring */
  uv_timer_t defer; /* zero timer for callbacks that must not nest */
  bool defer_closed;
  exec_wreq *done_head, *done_tail; /* finished writes to report */
  uint64_t spawn_serial; /* names per-spawn cgroups */
};

/* engine.c */
void exec_engine_defer(exec_engine *e);
void exec_engine_unlink(exec_engine *e, exec_proc *p);
void exec_engine_proc_reaped(exec_engine *e, exec_proc *p);
void exec_engine_maybe_free(exec_engine *e);

/* spawn.c */
void exec_report_readable(exec_proc *p);
void exec_pidfd_readable(exec_proc *p);

/* io.c */
void exec_io_update(exec_proc *p, exec_fdw *w);
void exec_io_start_output(exec_proc *p);
void exec_io_on_poll(uv_poll_t *h, int status, int events);
void exec_io_close_fd(exec_proc *p, exec_fdw *w);
void exec_io_fail_writes(exec_proc *p, int err);
void exec_io_drain_now(exec_proc *p);

/* proc.c */
void exec_proc_check_done(exec_proc *p);
void exec_proc_kill_hard(exec_proc *p);
void exec_proc_close(exec_proc *p);
void exec_proc_shutdown(exec_proc *p, uint64_t grace_ms);
void exec_proc_handle_closed(exec_proc *p);
void exec_proc_on_started(exec_proc *p, pid_t child_pid);
uint64_t exec_now_ms(void);

#endif
