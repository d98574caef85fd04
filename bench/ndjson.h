/* A tiny newline-delimited JSON-RPC client for the benchmarks: start a server
 * as a child with pipes on its stdin/stdout, write lines, read lines with a
 * deadline, and scan hot-path lines without a full JSON parse. */
#ifndef WARDEN_BENCH_NDJSON_H
#define WARDEN_BENCH_NDJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct nj_conn {
  pid_t pid;
  int in_fd;  /* the child's stdin (we write) */
  int out_fd; /* the child's stdout (we read) */
  char *buf;
  size_t cap, start, end;
  char *line; /* the last line read, NUL-terminated in place, without '\n' */
  size_t line_len;
  bool eof;
} nj_conn;

/* Monotonic clock in seconds. */
double nj_now(void);

/* Starts argv[0] (looked up in PATH when it has no '/') with its stdin and
 * stdout connected to us; stderr goes to stderr_path (NULL: /dev/null).
 * Returns 0 or -errno. */
int nj_spawn(nj_conn *c, char *const argv[], const char *stderr_path);

/* Writes one line (a '\n' is appended). Returns 0 or -errno. */
int nj_send(nj_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int nj_send_raw(nj_conn *c, const char *data, size_t len);

/* Reads the next line into c->line. Returns 1 on a line, 0 when timeout_ms
 * passed (timeout_ms < 0 waits forever), -1 on end of stream or error. */
int nj_next(nj_conn *c, int timeout_ms);

/* Closes the child's stdin and waits up to grace_ms for it to exit, then
 * kills it. Returns the wait status, or -1. Frees the buffers. */
int nj_close(nj_conn *c, int grace_ms);

/* Sends SIGKILL and reaps; frees the buffers. */
void nj_kill(nj_conn *c);

/* ---- scanning (no full parse) ---- */

/* Finds "key": in the line and returns a pointer to the first byte of its
 * value (after optional spaces), or NULL. key is given without quotes. */
const char *nj_find_key(const char *line, size_t len, const char *key);
/* The integer value of "key", or false. */
bool nj_get_int(const char *line, size_t len, const char *key, long long *out);
/* Whether "key":"value" (a plain string without escapes) is in the line. */
bool nj_has_str(const char *line, size_t len, const char *key, const char *value);

/* ---- base64 ---- */

/* Decodes standard base64 starting at s until the first '"' (or len bytes),
 * tolerating '=' padding and JSON's "\/" escape. Writes to out (which must
 * hold at least len*3/4+3 bytes) and returns the number of bytes decoded, or
 * -1 on a character that is not base64. */
long nj_b64_decode(const char *s, size_t len, uint8_t *out);

/* ---- /proc ---- */

/* A "Vm<name>:" field of /proc/PID/status in KiB, or -1. */
long nj_proc_status_kib(pid_t pid, const char *field);

#endif
