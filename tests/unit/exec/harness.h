/* Test harness for server/exec: one loop and engine per test, recorded
 * events per process, and run-until helpers with a deadline. */
#ifndef WARDEN_TEST_EXEC_HARNESS_H
#define WARDEN_TEST_EXEC_HARNESS_H

#include "server/exec/exec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tbuf {
  uint8_t *data;
  size_t len, cap;
} tbuf;

void tbuf_add(tbuf *b, const void *p, size_t n);
void tbuf_free(tbuf *b);

typedef struct tproc {
  char id[48];
  exec_proc *proc;
  bool spawned, failed, exited;
  exec_spawn_error err;
  exec_exit_info info;
  uint64_t exit_seq, last_seq;
  bool seq_error;    /* seq not contiguous from 1, or output after exit */
  tbuf out[3];       /* by exec_stream */
  size_t chunks[3];
  size_t cap_flags[3];
  bool cap_last[3];  /* the last chunk of the stream had cap_reached */
  /* optional hook, called after recording a chunk */
  void (*hook)(struct tproc *t, exec_stream s, const uint8_t *d, size_t n);
  void *hook_arg;
  struct tproc *next;
} tproc;

typedef struct harness {
  uv_loop_t loop;
  exec_engine *e;
  tproc *procs;
  uv_timer_t tick;
  bool shutdown_done;
} harness;

extern harness H;

/* retain_bytes/retain_ms 0: defaults */
void h_init(size_t retain_bytes, uint64_t retain_ms);
void h_fini(void);

/* Defaults: pipes, no cap, no timeout, env = environ. */
exec_spawn_opts h_opts(const char *id, char *const *argv);
tproc *h_spawn(const exec_spawn_opts *o); /* asserts exec_spawn() == 0 */
tproc *h_spawn_argv(const char *id, char *const *argv, bool tty);

/* Run the loop until pred(arg) or the deadline (fails the test). */
void h_run_until(bool (*pred)(void *), void *arg, uint64_t timeout_ms);
void h_run_for(uint64_t ms);
bool h_is_spawned(void *t);
bool h_is_exited(void *t);
void h_wait_spawned(tproc *t);
void h_wait_exit(tproc *t);
/* Wait until the stream holds `needle`. */
void h_wait_output(tproc *t, exec_stream s, const char *needle);
bool h_has(const tbuf *b, const char *needle);

/* Write and wait for done; returns the done result. */
ssize_t h_write(tproc *t, const char *data, size_t len, bool close_stdin);

bool pid_alive(int pid); /* exists and is not a zombie */

#endif
