#include "ndjson.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

double nj_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int nj_spawn(nj_conn *c, char *const argv[], const char *stderr_path) {
  memset(c, 0, sizeof *c);
  c->pid = -1;
  c->in_fd = c->out_fd = -1;
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) < 0)
    return -errno;
  if (pipe2(out, O_CLOEXEC) < 0) {
    int e = errno;
    close(in[0]);
    close(in[1]);
    return -e;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, stderr_path ? stderr_path : "/dev/null",
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  if (rc != 0) {
    close(in[1]);
    close(out[0]);
    return -rc;
  }
  c->pid = pid;
  c->in_fd = in[1];
  c->out_fd = out[0];
  c->cap = 4u << 20;
  c->buf = malloc(c->cap + 1);
  if (!c->buf) {
    nj_kill(c);
    return -ENOMEM;
  }
  return 0;
}

int nj_send_raw(nj_conn *c, const char *data, size_t len) {
  while (len) {
    ssize_t n = write(c->in_fd, data, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

int nj_send(nj_conn *c, const char *fmt, ...) {
  char stack[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(stack, sizeof stack - 1, fmt, ap);
  va_end(ap);
  if (n < 0)
    return -EINVAL;
  if ((size_t)n < sizeof stack - 1) {
    stack[n] = '\n';
    return nj_send_raw(c, stack, (size_t)n + 1);
  }
  char *big = malloc((size_t)n + 2);
  if (!big)
    return -ENOMEM;
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  big[n] = '\n';
  int rc = nj_send_raw(c, big, (size_t)n + 1);
  free(big);
  return rc;
}

int nj_next(nj_conn *c, int timeout_ms) {
  double deadline = timeout_ms >= 0 ? nj_now() + timeout_ms / 1000.0 : 0;
  size_t scanned = c->start;
  for (;;) {
    char *nl = c->end > scanned ? memchr(c->buf + scanned, '\n', c->end - scanned) : NULL;
    if (nl) {
      *nl = '\0';
      c->line = c->buf + c->start;
      c->line_len = (size_t)(nl - c->line);
      c->start = (size_t)(nl - c->buf) + 1;
      return 1;
    }
    if (c->eof)
      return -1;
    /* Make room: drop consumed bytes, then grow when still full. */
    if (c->start > 0) {
      memmove(c->buf, c->buf + c->start, c->end - c->start);
      c->end -= c->start;
      c->start = 0;
    }
    scanned = c->end;
    if (c->end == c->cap) {
      size_t ncap = c->cap * 2;
      char *nb = realloc(c->buf, ncap + 1);
      if (!nb)
        return -1;
      c->buf = nb;
      c->cap = ncap;
    }
    if (timeout_ms >= 0) {
      double left = deadline - nj_now();
      if (left <= 0)
        return 0;
      struct pollfd p = {.fd = c->out_fd, .events = POLLIN};
      int r = poll(&p, 1, (int)(left * 1000.0) + 1);
      if (r < 0 && errno != EINTR)
        return -1;
      if (r <= 0)
        continue;
    }
    ssize_t n = read(c->out_fd, c->buf + c->end, c->cap - c->end);
    if (n > 0)
      c->end += (size_t)n;
    else if (n == 0)
      c->eof = true;
    else if (errno != EINTR)
      return -1;
  }
}

static void nj_free(nj_conn *c) {
  if (c->in_fd >= 0)
    close(c->in_fd);
  if (c->out_fd >= 0)
    close(c->out_fd);
  c->in_fd = c->out_fd = -1;
  free(c->buf);
  c->buf = NULL;
}

int nj_close(nj_conn *c, int grace_ms) {
  if (c->in_fd >= 0) {
    close(c->in_fd);
    c->in_fd = -1;
  }
  int status = -1;
  if (c->pid > 0) {
    double deadline = nj_now() + grace_ms / 1000.0;
    for (;;) {
      pid_t r = waitpid(c->pid, &status, WNOHANG);
      if (r == c->pid)
        break;
      if (r < 0 && errno != EINTR) {
        status = -1;
        break;
      }
      if (nj_now() >= deadline) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, &status, 0);
        status = -1;
        break;
      }
      usleep(500);
    }
    c->pid = -1;
  }
  nj_free(c);
  return status;
}

void nj_kill(nj_conn *c) {
  if (c->pid > 0) {
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
    c->pid = -1;
  }
  nj_free(c);
}

/* ---- scanning ---- */

const char *nj_find_key(const char *line, size_t len, const char *key) {
  char pat[128];
  int pl = snprintf(pat, sizeof pat, "\"%s\"", key);
  if (pl <= 0 || (size_t)pl >= sizeof pat)
    return NULL;
  const char *p = line, *e = line + len;
  while (p < e) {
    const char *hit = memmem(p, (size_t)(e - p), pat, (size_t)pl);
    if (!hit)
      return NULL;
    const char *v = hit + pl;
    while (v < e && (*v == ' ' || *v == '\t'))
      v++;
    if (v < e && *v == ':') {
      v++;
      while (v < e && (*v == ' ' || *v == '\t'))
        v++;
      return v;
    }
    p = hit + 1;
  }
  return NULL;
}

bool nj_get_int(const char *line, size_t len, const char *key, long long *out) {
  const char *v = nj_find_key(line, len, key);
  if (!v || !(*v == '-' || (*v >= '0' && *v <= '9')))
    return false;
  *out = strtoll(v, NULL, 10);
  return true;
}

bool nj_has_str(const char *line, size_t len, const char *key, const char *value) {
  const char *v = nj_find_key(line, len, key);
  if (!v || *v != '"')
    return false;
  size_t vl = strlen(value);
  return (size_t)(line + len - v) >= vl + 2 && memcmp(v + 1, value, vl) == 0 && v[vl + 1] == '"';
}

/* ---- base64 ---- */

/* Four tables of pre-shifted sextets (the modp_b64 idea): one quartet is
 * four loads and three ORs; bit 24 marks a character that is not base64. */
#define B64_BAD 0x01000000u
static uint32_t b64_d0[256], b64_d1[256], b64_d2[256], b64_d3[256];
static uint8_t b64_table[256];
static bool b64_ready;

static void b64_init(void) {
  memset(b64_table, 0x80, sizeof b64_table);
  for (int i = 0; i < 256; i++)
    b64_d0[i] = b64_d1[i] = b64_d2[i] = b64_d3[i] = B64_BAD;
  const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (uint32_t i = 0; i < 64; i++) {
    unsigned char ch = (unsigned char)a[i];
    b64_table[ch] = (uint8_t)i;
    b64_d0[ch] = i << 18;
    b64_d1[ch] = i << 12;
    b64_d2[ch] = i << 6;
    b64_d3[ch] = i;
  }
  b64_ready = true;
}

long nj_b64_decode(const char *s, size_t len, uint8_t *out) {
  if (!b64_ready)
    b64_init();
  const uint8_t *p = (const uint8_t *)s, *e = p + len;
  uint8_t *o = out;
  uint32_t acc = 0;
  int nbits = 0;
  for (;;) {
    /* Fast path: whole quartets while aligned; each writes 4 bytes (the
     * 4th is overwritten next), hence the slack the caller provides. */
    if (nbits == 0) {
      while (e - p >= 4) {
        uint32_t x = b64_d0[p[0]] | b64_d1[p[1]] | b64_d2[p[2]] | b64_d3[p[3]];
        if (x & B64_BAD)
          break;
        uint32_t be = __builtin_bswap32(x << 8);
        memcpy(o, &be, 4);
        o += 3;
        p += 4;
      }
    }
    /* Slow path: one character (padding, escapes, the closing quote). */
    if (p >= e || *p == '"')
      break;
    uint8_t ch = *p++;
    if (ch == '\\' || ch == '=')
      continue;
    uint32_t v = b64_table[ch];
    if (v & 0x80)
      return -1;
    acc = (acc << 6) | v;
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      *o++ = (uint8_t)(acc >> nbits);
    }
    if (nbits == 0)
      acc = 0;
  }
  return (long)(o - out);
}

/* ---- /proc ---- */

long nj_proc_status_kib(pid_t pid, const char *field) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  char line[256];
  size_t fl = strlen(field);
  long v = -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
      v = strtol(line + fl + 1, NULL, 10);
      break;
    }
  }
  fclose(f);
  return v;
}
