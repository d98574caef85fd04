/* wardenbench: the benchmark suite. Measures warden against a baseline taken
 * in the same run and, when installed, against OpenAI Codex's exec-server and
 * app-server. Prints a markdown table of numbers and ratios; speed never
 * changes the exit status (only a benchmark that produced no numbers does).
 *
 *   wardenbench [--quick] [--warden PATH] [--codex PATH] [--no-codex]
 *               [--only LIST] [startup|spawn|sandbox|run|throughput|pty|all]
 *
 * Environment: WARDEN_BENCH_QUICK=1, WARDEN_BENCH_SKIP_CODEX=1, WARDEN_BIN,
 * CODEX_BIN, CODEX_HOME (default $HOME/.cache/warden-bench-codex-home),
 * WARDEN_BENCH_SERVER_STDERR (a file for the servers' stderr). */
#include "ndjson.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MSG_TIMEOUT_MS 30000
#define CODEX_MISSING                                                                      \
  "codex: not installed, the reference is missing (bench/run.sh installs it with "       \
  "bench/install-references.sh codex; npm unreachable?)"

/* ---- options and shared state ---- */

static struct {
  bool quick;
  bool codex_enabled;
  const char *codex_reason; /* why codex is skipped, when it is */
  const char *warden;
  const char *codex;
  const char *server_stderr;
  char workdir[256]; /* a temp dir: cwd of sandboxed spawns */
  char workuri[300];
  int only_mask;
} O;

enum {
  B_STARTUP = 1,
  B_SPAWN = 2,
  B_SANDBOX = 4,
  B_THROUGHPUT = 8,
  B_PTY = 16,
  B_RUN = 32,
  B_ALL = 63
};

static char g_err[512];
static bool g_failed; /* some warden or baseline number is missing */

static void set_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_err(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_err, sizeof g_err, fmt, ap);
  va_end(ap);
}

/* dst = prefix + src, truncated to fit. */
static void errcpy(char *dst, size_t n, const char *prefix, const char *src) {
  size_t pl = strlen(prefix), sl = strlen(src);
  if (pl >= n)
    pl = n - 1;
  memmove(dst, prefix, pl);
  if (sl > n - 1 - pl)
    sl = n - 1 - pl;
  memmove(dst + pl, src, sl);
  dst[pl + sl] = '\0';
}

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "wardenbench: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* ---- the result table ---- */

typedef struct {
  char bench[96], warden[128], baseline[96], codex[96], ratio[128], target[96], verdict[96];
} row;

static row g_rows[64];
static int g_nrows;

static row *add_row(const char *bench) {
  row *r = &g_rows[g_nrows < 63 ? g_nrows++ : 63];
  memset(r, 0, sizeof *r);
  snprintf(r->bench, sizeof r->bench, "%s", bench);
  strcpy(r->warden, "-");
  strcpy(r->baseline, "-");
  strcpy(r->codex, "-");
  strcpy(r->ratio, "-");
  strcpy(r->target, "-");
  strcpy(r->verdict, "-");
  return r;
}

#define FMT(field, ...) snprintf(r->field, sizeof r->field, __VA_ARGS__)

/* The targets of this table's own verdicts. bench/targets.json is the one
 * place for them (bench/table.py computes the verdicts of the one table from
 * it); these mirror it, each named by its row's "wardenbench_const", and
 * bench.table_smoke fails when one differs. The codex ratios are only here. */
#define T_STARTUP_DIFF_MS 2.0 /* spawn to initialize minus exec of /bin/true (mean) */
#define T_IDLE_RSS_MIB 8.0    /* server + zygote, VmHWM */
#define T_SPAWN_RATIO 1.3     /* warden/posix_spawn+waitpid (mean) */
#define T_SANDBOX_RATIO 1.5   /* workspaceWrite/unsandboxed (mean) */
#define T_BURST_RATIO 1.0     /* zygote/--no-zygote, per spawn of a burst (median) */
#define T_RUN_RATIO 3.0       /* warden run/exec of /bin/true (median) */
#define T_TPUT_MIBS 400.0     /* pipe session, decoded */
#define T_TPUT_SHARE 0.6      /* pipe session/raw pipe */

static const char *codex_cell(void) { return O.codex_reason ? O.codex_reason : "skipped"; }

/* ---- statistics ---- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef struct {
  double mean, median, p95, p99, min;
  int n;
} stats;

/* p99 is the nearest rank (the ceil(0.99 n)-th smallest): with n <= 100 it is
 * the largest or second largest sample. */
static stats stats_of(double *v, int n) {
  stats s = {NAN, NAN, NAN, NAN, NAN, n};
  if (n <= 0)
    return s;
  double sum = 0;
  for (int i = 0; i < n; i++)
    sum += v[i];
  double *t = malloc(sizeof *t * (size_t)n);
  memcpy(t, v, sizeof *t * (size_t)n);
  qsort(t, (size_t)n, sizeof *t, cmp_double);
  s.mean = sum / n;
  s.median = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
  s.p95 = t[(int)((n - 1) * 0.95)];
  int r99 = (int)ceil(0.99 * n) - 1;
  s.p99 = t[r99 < 0 ? 0 : r99 >= n ? n - 1 : r99];
  s.min = t[0];
  free(t);
  return s;
}

/* ---- small helpers ---- */

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

static double cpu_seconds_self(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec * 1e-6;
}

/* utime+stime of a live process from /proc/PID/stat, in seconds; NAN if gone. */
static double cpu_seconds_of(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NAN;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return NAN;
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  if (!p)
    return NAN;
  unsigned long ut = 0, st = 0;
  /* fields after ")": state(3) ... utime(14) stime(15) */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
    return NAN;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Runs argv with stdout to out_fd (-1: /dev/null) and returns the pid. */
static pid_t spawn_plain(char *const argv[], int out_fd) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (out_fd >= 0)
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  else
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    set_err("posix_spawn %s: %s", argv[0], strerror(rc));
    return -1;
  }
  return pid;
}

/* ---- talking to servers ---- */

/* SRV_WARDEN_NO_ZYGOTE: warden --no-zygote (supervisors forked from the
 * server: the path before the zygote), only for the burst comparison. */
typedef enum { SRV_WARDEN, SRV_WARDEN_NO_ZYGOTE, SRV_CODEX_EXEC, SRV_CODEX_APP } srv_kind;

static bool is_warden(srv_kind k) { return k == SRV_WARDEN || k == SRV_WARDEN_NO_ZYGOTE; }

static const char *srv_name(srv_kind k) {
  return k == SRV_WARDEN             ? "warden"
         : k == SRV_WARDEN_NO_ZYGOTE ? "warden --no-zygote"
         : k == SRV_CODEX_EXEC       ? "codex exec-server"
                                     : "codex app-server";
}

/* A parsed message: one of these is set. */
typedef struct {
  json_t *root;
  const char *method;
  json_t *params;
  json_t *id;
  json_t *result;
  json_t *error;
} msg;

static bool parse_msg(nj_conn *c, msg *m) {
  memset(m, 0, sizeof *m);
  json_error_t je;
  m->root = json_loadb(c->line, c->line_len, 0, &je);
  if (!json_is_object(m->root)) {
    json_decref(m->root);
    m->root = NULL;
    return false;
  }
  m->method = json_string_value(json_object_get(m->root, "method"));
  m->params = json_object_get(m->root, "params");
  m->id = json_object_get(m->root, "id");
  m->result = json_object_get(m->root, "result");
  m->error = json_object_get(m->root, "error");
  return true;
}

static bool is_response_to(const msg *m, long long id) {
  return !m->method && json_is_integer(m->id) && json_integer_value(m->id) == id &&
         (m->result || m->error);
}

static void describe_error(const msg *m, const char *what) {
  char *s = json_dumps(m->error, JSON_COMPACT);
  set_err("%s: error %s", what, s ? s : "?");
  free(s);
}

/* Reads messages until fn returns non-zero. fn returns 1 (done) or -1
 * (failure, g_err set). Returns 1, 0 on timeout, -1 on failure/EOF. */
typedef int (*msg_fn)(void *ud, msg *m);

static int pump(nj_conn *c, int timeout_ms, msg_fn fn, void *ud, const char *what) {
  double deadline = nj_now() + timeout_ms / 1000.0;
  for (;;) {
    int left = (int)((deadline - nj_now()) * 1000.0);
    if (left < 0)
      left = 0;
    int r = nj_next(c, left);
    if (r == 0) {
      set_err("%s: no answer within %d ms", what, timeout_ms);
      return 0;
    }
    if (r < 0) {
      set_err("%s: server closed its stdout", what);
      return -1;
    }
    msg m;
    if (!parse_msg(c, &m))
      continue; /* not JSON: ignore */
    int v = fn(ud, &m);
    json_decref(m.root);
    if (v)
      return v;
  }
}

typedef struct {
  long long id;
  json_t *result; /* new reference on success */
  const char *what;
} call_ud;

static int call_fn(void *ud, msg *m) {
  call_ud *u = ud;
  if (!is_response_to(m, u->id))
    return 0;
  if (m->error) {
    describe_error(m, u->what);
    return -1;
  }
  u->result = json_incref(m->result);
  return 1;
}

/* Waits for the response to id; returns its result (caller decrefs) or NULL. */
static json_t *wait_result(nj_conn *c, long long id, int timeout_ms, const char *what) {
  call_ud u = {id, NULL, what};
  if (pump(c, timeout_ms, call_fn, &u, what) != 1)
    return NULL;
  return u.result;
}

static char *const *srv_argv(srv_kind k) {
  static char *w[2], *wn[3], *ce[5], *ca[3];
  switch (k) {
  case SRV_WARDEN:
    w[0] = (char *)O.warden;
    w[1] = NULL;
    return w;
  case SRV_WARDEN_NO_ZYGOTE:
    wn[0] = (char *)O.warden;
    wn[1] = "--no-zygote";
    wn[2] = NULL;
    return wn;
  case SRV_CODEX_EXEC:
    ce[0] = (char *)O.codex;
    ce[1] = "exec-server";
    ce[2] = "--listen";
    ce[3] = "stdio";
    ce[4] = NULL;
    return ce;
  case SRV_CODEX_APP:
    ca[0] = (char *)O.codex;
    ca[1] = "app-server";
    ca[2] = NULL;
    return ca;
  }
  return NULL;
}

static const char *init_params(srv_kind k) {
  switch (k) {
  case SRV_WARDEN:
  case SRV_WARDEN_NO_ZYGOTE:
    return "{\"clientInfo\":{\"name\":\"wardenbench\",\"version\":\"1\"}}";
  case SRV_CODEX_EXEC:
    return "{\"clientName\":\"wardenbench\"}";
  case SRV_CODEX_APP:
    return "{\"clientInfo\":{\"name\":\"wardenbench\",\"title\":null,\"version\":\"1\"}}";
  }
  return "{}";
}

/* Starts a server and completes the handshake. *init_s (may be NULL) gets the
 * time from before the spawn to the parsed initialize response. */
static bool srv_start(nj_conn *c, srv_kind k, double *init_s) {
  double t0 = nj_now();
  int rc = nj_spawn(c, srv_argv(k), O.server_stderr);
  if (rc < 0) {
    set_err("starting %s: %s", srv_name(k), strerror(-rc));
    return false;
  }
  if (is_warden(k))
    rc = nj_send(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":%s}",
                 init_params(k));
  else
    rc = nj_send(c, "{\"id\":1,\"method\":\"initialize\",\"params\":%s}", init_params(k));
  json_t *res = rc == 0 ? wait_result(c, 1, MSG_TIMEOUT_MS, "initialize") : NULL;
  double t1 = nj_now();
  if (!res) {
    if (rc)
      set_err("%s: writing initialize: %s", srv_name(k), strerror(-rc));
    nj_kill(c);
    return false;
  }
  json_decref(res);
  if (init_s)
    *init_s = t1 - t0;
  if (is_warden(k))
    nj_send(c, "{\"jsonrpc\":\"2.0\",\"method\":\"initialized\"}");
  else if (k == SRV_CODEX_EXEC)
    nj_send(c, "{\"method\":\"initialized\",\"params\":{}}");
  else
    nj_send(c, "{\"method\":\"initialized\"}");
  return true;
}

/* Appends PATH as a JSON object {"PATH":"..."} for codex exec-server, whose
 * env is the exact environment of the child. */
static const char *codex_env_json(void) {
  static char buf[4200];
  if (!buf[0]) {
    const char *path = getenv("PATH");
    json_t *o = json_pack("{s:s}", "PATH", path ? path : "/usr/local/bin:/usr/bin:/bin");
    char *s = json_dumps(o, JSON_COMPACT);
    snprintf(buf, sizeof buf, "%s", s);
    free(s);
    json_decref(o);
  }
  return buf;
}

/* ---- one spawn, each protocol ---- */

typedef struct {
  long long id;
  const char *pid_str; /* processId */
  const char *end_method; /* notification that ends the process */
  bool got_resp, got_end;
  json_t *resp;
  const char *what;
} spawn_ud;

static int spawn_fn(void *ud, msg *m) {
  spawn_ud *u = ud;
  if (is_response_to(m, u->id)) {
    if (m->error) {
      describe_error(m, u->what);
      return -1;
    }
    u->got_resp = true;
    if (!u->resp)
      u->resp = json_incref(m->result);
  } else if (m->method && strcmp(m->method, u->end_method) == 0) {
    const char *p = json_string_value(json_object_get(m->params, "processId"));
    if (p && strcmp(p, u->pid_str) == 0)
      u->got_end = true;
  }
  return u->got_resp && u->got_end ? 1 : 0;
}

/* Spawns argv (a JSON array) and waits until it has ended. sandbox_json and
 * cwd may be NULL. Returns the seconds taken, or NAN (g_err set). *resp_out
 * (may be NULL) gets the spawn response. */
static double warden_run_once(nj_conn *c, long long id, const char *argv_json,
                              const char *sandbox_json, const char *cwd, json_t **resp_out) {
  char pid_str[32], cwdpart[300] = "", sbpart[256] = "";
  snprintf(pid_str, sizeof pid_str, "b%lld", id);
  if (cwd)
    snprintf(cwdpart, sizeof cwdpart, ",\"cwd\":\"%s\"", cwd);
  if (sandbox_json)
    snprintf(sbpart, sizeof sbpart, ",\"sandbox\":%s", sandbox_json);
  double t0 = nj_now();
  if (nj_send(c,
              "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"process/spawn\",\"params\":{"
              "\"processId\":\"%s\",\"argv\":%s%s%s}}",
              id, pid_str, argv_json, cwdpart, sbpart) < 0) {
    set_err("warden: write failed");
    return NAN;
  }
  spawn_ud u = {id, pid_str, "process/exited", false, false, NULL, "process/spawn"};
  int r = pump(c, MSG_TIMEOUT_MS, spawn_fn, &u, "process/spawn");
  double t1 = nj_now();
  if (r != 1) {
    json_decref(u.resp);
    return NAN;
  }
  if (resp_out)
    *resp_out = u.resp;
  else
    json_decref(u.resp);
  return t1 - t0;
}

static double codex_exec_run_once(nj_conn *c, long long id, const char *argv_json, bool tty) {
  char pid_str[32];
  snprintf(pid_str, sizeof pid_str, "b%lld", id);
  double t0 = nj_now();
  if (nj_send(c,
              "{\"id\":%lld,\"method\":\"process/start\",\"params\":{\"processId\":\"%s\","
              "\"argv\":%s,\"cwd\":\"%s\",\"env\":%s,\"tty\":%s,\"pipeStdin\":false,"
              "\"arg0\":null}}",
              id, pid_str, argv_json, O.workuri, codex_env_json(), tty ? "true" : "false") < 0) {
    set_err("codex exec-server: write failed");
    return NAN;
  }
  spawn_ud u = {id, pid_str, "process/closed", false, false, NULL, "process/start"};
  int r = pump(c, MSG_TIMEOUT_MS, spawn_fn, &u, "process/start");
  double t1 = nj_now();
  json_decref(u.resp);
  return r == 1 ? t1 - t0 : NAN;
}

/* command/exec answers when the command has ended. */
static double codex_app_exec_once(nj_conn *c, long long id, const char *argv_json,
                                  const char *policy_json) {
  double t0 = nj_now();
  if (nj_send(c,
              "{\"id\":%lld,\"method\":\"command/exec\",\"params\":{\"command\":%s,"
              "\"cwd\":\"%s\",\"sandboxPolicy\":%s}}",
              id, argv_json, O.workdir, policy_json) < 0) {
    set_err("codex app-server: write failed");
    return NAN;
  }
  json_t *res = wait_result(c, id, MSG_TIMEOUT_MS, "command/exec");
  double t1 = nj_now();
  if (!res)
    return NAN;
  json_int_t code = json_integer_value(json_object_get(res, "exitCode"));
  json_decref(res);
  if (code != 0) {
    set_err("command/exec: exitCode %lld", (long long)code);
    return NAN;
  }
  return t1 - t0;
}

/* posix_spawn + waitpid of /bin/true */
static double baseline_spawn_once(void) {
  static char *argv[] = {"/bin/true", NULL};
  double t0 = nj_now();
  pid_t pid = spawn_plain(argv, -1);
  if (pid < 0)
    return NAN;
  int st;
  waitpid(pid, &st, 0);
  return nj_now() - t0;
}

/* ---- 1. startup ---- */

/* Whether /proc/<name> is a live child of parent whose comm is `comm`. */
static bool is_child_named(const char *name, pid_t parent, const char *comm) {
  if (name[0] < '0' || name[0] > '9')
    return false;
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%s/stat", name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return false;
  buf[n] = '\0';
  char *op = strchr(buf, '('), *cp = strrchr(buf, ')');
  int ppid;
  char state;
  if (!op || !cp || cp < op || sscanf(cp + 1, " %c %d", &state, &ppid) != 2)
    return false;
  *cp = '\0';
  return ppid == (int)parent && state != 'Z' && state != 'X' && strcmp(op + 1, comm) == 0;
}

/* The live child of parent whose comm is `comm`, waiting up to timeout_ms for
 * it (warden forks its zygote right after answering initialize, and the
 * zygote names itself after the fork); -1 when there is none by then. */
static pid_t find_child_named(pid_t parent, const char *comm, int timeout_ms) {
  double deadline = nj_now() + timeout_ms / 1000.0;
  for (;;) {
    pid_t found = -1;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && found < 0 && (e = readdir(d)))
      if (is_child_named(e->d_name, parent, comm))
        found = (pid_t)atoi(e->d_name);
    if (d)
      closedir(d);
    if (found > 0 || nj_now() >= deadline)
      return found;
    sleep_ms(5);
  }
}

/* The sum of a /proc/PID/status field (KiB) over the live children of
 * parent named comm (the warm supervisors), and how many there are. */
static long children_kib(pid_t parent, const char *comm, const char *field, int *count) {
  long sum = 0;
  *count = 0;
  DIR *d = opendir("/proc");
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (!is_child_named(e->d_name, parent, comm))
      continue;
    long v = nj_proc_status_kib((pid_t)atoi(e->d_name), field);
    if (v > 0) {
      sum += v;
      (*count)++;
    }
  }
  if (d)
    closedir(d);
  return sum;
}

/* One idle memory sample: the server's and, for warden, its zygote's plus
 * its warm supervisors' (zygote_kib counts them all). */
typedef struct {
  double server_kib, zygote_kib;
} mem_parts;

static int cmp_mem_parts(const void *a, const void *b) {
  const mem_parts *x = a, *y = b;
  double sx = x->server_kib + x->zygote_kib, sy = y->server_kib + y->zygote_kib;
  return sx < sy ? -1 : sx > sy;
}

/* The run whose total is the median (the upper one for an even n), so that
 * its two parts add up to the total shown. Sorts v. */
static mem_parts median_run(mem_parts *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_mem_parts);
  return v[n / 2];
}

typedef struct {
  stats init;    /* seconds */
  mem_parts hwm; /* VmHWM of the median run, KiB */
  mem_parts rss; /* VmRSS of the median run, KiB */
  bool ok;
} startup_res;

/* n starts of the server, each followed by a 100 ms idle and a look at its
 * memory (for warden: the server's plus its zygote's, which exists once
 * initialize is answered). base (may be NULL) gets n exec+reap times of
 * /bin/true, one after each start, so that the two share the machine's mood. */
static startup_res bench_startup_one(srv_kind k, int n, double *base) {
  startup_res R = {.ok = false};
  double *lat = calloc((size_t)n, sizeof *lat);
  mem_parts *hwm = calloc((size_t)n, sizeof *hwm), *rss = calloc((size_t)n, sizeof *rss);
  int got = 0;
  for (int i = 0; i < n; i++) {
    nj_conn c;
    double s;
    if (!srv_start(&c, k, &s))
      break;
    sleep_ms(100); /* a short idle */
    long zh = 0, zr = 0;
    if (k == SRV_WARDEN) {
      pid_t z = find_child_named(c.pid, "warden-zygote", 1000);
      if (z < 0) {
        set_err("warden: no warden-zygote child of the server within 1.1 s of initialize");
        nj_close(&c, 5000);
        break;
      }
      zh = nj_proc_status_kib(z, "VmHWM");
      zr = nj_proc_status_kib(z, "VmRSS");
      int nw;
      sleep_ms(50); /* the warm supervisors are made right after the zygote */
      zh += children_kib(c.pid, "warden-warm", "VmHWM", &nw);
      zr += children_kib(c.pid, "warden-warm", "VmRSS", &nw);
      if (zh < 0 || zr < 0) {
        set_err("warden: cannot read /proc/%d/status of the zygote", (int)z);
        nj_close(&c, 5000);
        break;
      }
    }
    long h = nj_proc_status_kib(c.pid, "VmHWM"), r = nj_proc_status_kib(c.pid, "VmRSS");
    nj_close(&c, 5000);
    if (base && isnan(base[got] = baseline_spawn_once()))
      break;
    lat[got] = s;
    hwm[got] = (mem_parts){(double)h, (double)zh};
    rss[got] = (mem_parts){(double)r, (double)zr};
    got++;
  }
  if (got == n) {
    R.init = stats_of(lat, n);
    R.hwm = median_run(hwm, n);
    R.rss = median_run(rss, n);
    R.ok = true;
  }
  free(lat);
  free(hwm);
  free(rss);
  return R;
}

static double mib_total(mem_parts m) { return (m.server_kib + m.zygote_kib) / 1024; }

static void bench_startup(void) {
  int n = O.quick ? 10 : 50;
  progress("startup: %d runs of warden", n);
  /* baseline: the floor of starting any process: exec /bin/true and reap
   * it, once after each start of warden */
  double *b = calloc((size_t)n, sizeof *b);
  for (int i = 0; i < n; i++)
    b[i] = NAN;
  startup_res w = bench_startup_one(SRV_WARDEN, n, b);
  char werr[512] = "";
  if (!w.ok)
    snprintf(werr, sizeof werr, "%s", g_err);
  bool bok = true;
  for (int i = 0; i < n && bok; i++) /* warden failed: the rest is measured here */
    bok = !isnan(b[i]) || !isnan(b[i] = baseline_spawn_once());
  stats bs = stats_of(b, n);
  free(b);
  startup_res cx = {.ok = false};
  char cerr[512] = "";
  if (O.codex_enabled) {
    progress("startup: %d runs of codex exec-server", n);
    cx = bench_startup_one(SRV_CODEX_EXEC, n, NULL);
    if (!cx.ok)
      errcpy(cerr, sizeof cerr, "error: ", g_err);
  }

  row *r = add_row("startup: spawn to `initialize` response (mean / median / p99)");
  FMT(target, "warden - exec /bin/true <= %.0f ms (mean; codex ref ~58 ms)", T_STARTUP_DIFF_MS);
  if (w.ok)
    FMT(warden, "%.2f / %.2f / %.2f ms", w.init.mean * 1e3, w.init.median * 1e3,
        w.init.p99 * 1e3);
  else {
    FMT(warden, "error: %.50s", werr);
    g_failed = true;
  }
  if (bok)
    FMT(baseline, "exec /bin/true: %.2f ms (mean)", bs.mean * 1e3);
  else {
    FMT(baseline, "error: %.60s", g_err);
    g_failed = true;
  }
  if (cx.ok)
    FMT(codex, "%.2f / %.2f / %.2f ms", cx.init.mean * 1e3, cx.init.median * 1e3,
        cx.init.p99 * 1e3);
  else
    FMT(codex, "%s", O.codex_enabled ? cerr : codex_cell());
  if (w.ok && bok) {
    double d = (w.init.mean - bs.mean) * 1e3;
    if (cx.ok)
      FMT(ratio, "warden - exec %+.2f ms; codex/warden %.1fx", d, cx.init.mean / w.init.mean);
    else
      FMT(ratio, "warden - exec %+.2f ms", d);
    FMT(verdict, d <= T_STARTUP_DIFF_MS ? "met" : "MISSED by %.2f ms", d - T_STARTUP_DIFF_MS);
  }

  r = add_row("startup: p99 of spawn to `initialize` response");
  FMT(target, "none (measured; the target is on the mean)");
  if (w.ok)
    FMT(warden, "%.2f ms (N=%d)", w.init.p99 * 1e3, n);
  else
    FMT(warden, "error");
  if (bok)
    FMT(baseline, "exec /bin/true p99: %.2f ms", bs.p99 * 1e3);
  if (cx.ok)
    FMT(codex, "%.2f ms", cx.init.p99 * 1e3);
  else
    FMT(codex, "%s", O.codex_enabled ? "error" : codex_cell());
  if (w.ok && bok)
    FMT(ratio, "warden - exec %+.2f ms", (w.init.p99 - bs.p99) * 1e3);

  r = add_row("startup: idle peak RSS, server + zygote + warm supervisors (VmHWM, median run; VmRSS)");
  FMT(target, "server + zygote + warm < %.0f MiB (codex ref ~55 MiB)", T_IDLE_RSS_MIB);
  if (w.ok) {
    FMT(warden, "%.2f MiB (server %.2f + zygote and warm %.2f); VmRSS %.2f (%.2f + %.2f)",
        mib_total(w.hwm), w.hwm.server_kib / 1024, w.hwm.zygote_kib / 1024, mib_total(w.rss),
        w.rss.server_kib / 1024, w.rss.zygote_kib / 1024);
    FMT(verdict, mib_total(w.hwm) < T_IDLE_RSS_MIB ? "met" : "MISSED by %.2f MiB",
        mib_total(w.hwm) - T_IDLE_RSS_MIB);
  } else
    FMT(warden, "error");
  if (cx.ok) {
    FMT(codex, "%.2f MiB (%.2f)", mib_total(cx.hwm), mib_total(cx.rss));
    if (w.ok)
      FMT(ratio, "codex/warden %.1fx", mib_total(cx.hwm) / mib_total(w.hwm));
  } else
    FMT(codex, "%s", O.codex_enabled ? "error" : codex_cell());
}

/* ---- 2. spawn latency ---- */

static const char *TRUE_ARGV = "[\"/bin/true\"]";
static const char *SB_NONE = "{\"type\":\"dangerFullAccess\"}";
static const char *SB_WS = "{\"type\":\"workspaceWrite\"}";

static bool run_series(double *out, int n, int warmup, double (*fn)(void *, long long),
                       void *ud, long long *next_id) {
  for (int i = -warmup; i < n; i++) {
    double s = fn(ud, (*next_id)++);
    if (isnan(s))
      return false;
    if (i >= 0)
      out[i] = s;
  }
  return true;
}

static double f_warden_true(void *c, long long id) {
  return warden_run_once(c, id, TRUE_ARGV, SB_NONE, NULL, NULL);
}
static double f_codex_true(void *c, long long id) {
  return codex_exec_run_once(c, id, TRUE_ARGV, false);
}
static double f_baseline(void *u, long long id) {
  (void)u;
  (void)id;
  return baseline_spawn_once();
}

static void bench_spawn(void) {
  int n = O.quick ? 100 : 500;
  double *v = calloc((size_t)n, sizeof *v);
  long long id = 10;
  stats ws = {0}, bs = {0}, cs = {0};
  bool wok = false, bok, cok = false;
  char werr[512] = "", cerr[512] = "", berr[512] = "";

  progress("spawn: %d x /bin/true via posix_spawn (baseline)", n);
  bok = run_series(v, n, 10, f_baseline, NULL, &id);
  if (bok)
    bs = stats_of(v, n);
  else
    snprintf(berr, sizeof berr, "%s", g_err);

  progress("spawn: %d x /bin/true via warden process/spawn (dangerFullAccess)", n);
  nj_conn c;
  if (srv_start(&c, SRV_WARDEN, NULL)) {
    wok = run_series(v, n, 10, f_warden_true, &c, &id);
    if (wok)
      ws = stats_of(v, n);
    nj_close(&c, 5000);
  }
  if (!wok)
    snprintf(werr, sizeof werr, "%s", g_err);

  if (O.codex_enabled) {
    progress("spawn: %d x /bin/true via codex exec-server process/start", n);
    if (srv_start(&c, SRV_CODEX_EXEC, NULL)) {
      cok = run_series(v, n, 5, f_codex_true, &c, &id);
      if (cok)
        cs = stats_of(v, n);
      nj_close(&c, 5000);
    }
    if (!cok)
      errcpy(cerr, sizeof cerr, "error: ", g_err);
  }
  free(v);

  row *r = add_row("spawn: /bin/true to `process/exited`, unsandboxed (mean / p95 / p99)");
  FMT(target, "warden/baseline <= %.1fx (mean); codex/warden >= 10x", T_SPAWN_RATIO);
  if (bok)
    FMT(baseline, "posix_spawn+waitpid: %.3f ms (mean)", bs.mean * 1e3);
  else {
    FMT(baseline, "error: %.60s", berr);
    g_failed = true;
  }
  if (wok)
    FMT(warden, "%.3f / %.3f / %.3f ms", ws.mean * 1e3, ws.p95 * 1e3, ws.p99 * 1e3);
  else {
    FMT(warden, "error: %.50s", werr);
    g_failed = true;
  }
  if (cok)
    FMT(codex, "%.3f / %.3f / %.3f ms (to process/closed)", cs.mean * 1e3, cs.p95 * 1e3,
        cs.p99 * 1e3);
  else
    FMT(codex, "%s", O.codex_enabled ? cerr : codex_cell());
  if (wok && bok) {
    double wb = ws.mean / bs.mean;
    if (cok)
      FMT(ratio, "warden/baseline %.2fx; codex/warden %.1fx", wb, cs.mean / ws.mean);
    else
      FMT(ratio, "warden/baseline %.2fx", wb);
    if (wb <= T_SPAWN_RATIO && (!cok || cs.mean / ws.mean >= 10))
      FMT(verdict, "met");
    else if (wb > T_SPAWN_RATIO)
      FMT(verdict, "MISSED: %.2fx > %.1fx (+%.3f ms)%s", wb, T_SPAWN_RATIO,
          (ws.mean - T_SPAWN_RATIO * bs.mean) * 1e3,
          cok && cs.mean / ws.mean < 10 ? "; codex ratio < 10x" : "");
    else
      FMT(verdict, "MISSED: codex/warden %.1fx < 10x", cs.mean / ws.mean);
  }

  r = add_row("spawn: p99 of /bin/true to `process/exited`, unsandboxed");
  FMT(target, "none (measured; the target is on the mean)");
  if (wok)
    FMT(warden, "%.3f ms (N=%d)", ws.p99 * 1e3, n);
  else
    FMT(warden, "error");
  if (bok)
    FMT(baseline, "posix_spawn+waitpid p99: %.3f ms", bs.p99 * 1e3);
  if (cok)
    FMT(codex, "%.3f ms", cs.p99 * 1e3);
  else
    FMT(codex, "%s", O.codex_enabled ? "error" : codex_cell());
  if (wok && bok)
    FMT(ratio, "warden/baseline %.2fx", ws.p99 / bs.p99);
}

/* ---- 2b. a burst of spawns: the zygote against the path before it ---- */

#define BURST_N 200
#define BURST_TIMEOUT_MS 120000

typedef struct {
  long long id0;
  int n, tag;
  int resp, exited; /* exited < 0: not counted (releases) */
  const char *what;
} burst_ud;

static int burst_fn(void *ud, msg *m) {
  burst_ud *u = ud;
  if (!m->method && json_is_integer(m->id) && (m->result || m->error)) {
    long long id = json_integer_value(m->id);
    if (id >= u->id0 && id < u->id0 + u->n) {
      if (m->error) {
        describe_error(m, u->what);
        return -1;
      }
      u->resp++;
    }
  } else if (u->exited >= 0 && m->method && strcmp(m->method, "process/exited") == 0) {
    const char *p = json_string_value(json_object_get(m->params, "processId"));
    char prefix[32];
    int pl = snprintf(prefix, sizeof prefix, "burst%d.", u->tag);
    if (p && strncmp(p, prefix, (size_t)pl) == 0)
      u->exited++;
  }
  return u->resp == u->n && (u->exited < 0 || u->exited == u->n) ? 1 : 0;
}

/* Writes n spawns of /bin/true (processIds burst<tag>.<i>) in one write and
 * waits for every answer and every process/exited: returns the seconds from
 * the write to the last of them, or NAN (g_err set). Then releases the n
 * processes (not timed), so that every burst starts from an empty table. */
static double warden_burst(nj_conn *c, int n, int tag, long long *next_id) {
  size_t cap = (size_t)n * 256, len = 0;
  char *buf = malloc(cap);
  long long id0 = *next_id;
  *next_id += n;
  for (int i = 0; i < n; i++)
    len += (size_t)snprintf(buf + len, cap - len,
                            "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"process/spawn\","
                            "\"params\":{\"processId\":\"burst%d.%d\",\"argv\":%s,"
                            "\"sandbox\":%s}}\n",
                            id0 + i, tag, i, TRUE_ARGV, SB_NONE);
  double t0 = nj_now();
  if (nj_send_raw(c, buf, len) < 0) {
    set_err("burst: write failed");
    free(buf);
    return NAN;
  }
  burst_ud u = {id0, n, tag, 0, 0, "process/spawn (burst)"};
  int r = pump(c, BURST_TIMEOUT_MS, burst_fn, &u, "burst of process/spawn");
  double t1 = nj_now();
  if (r != 1) {
    char e[600];
    snprintf(e, sizeof e, "%s (%d of %d answers, %d exits)", g_err, u.resp, n, u.exited);
    errcpy(g_err, sizeof g_err, "", e);
    free(buf);
    return NAN;
  }
  len = 0;
  id0 = *next_id;
  *next_id += n;
  for (int i = 0; i < n; i++)
    len += (size_t)snprintf(buf + len, cap - len,
                            "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"process/release\","
                            "\"params\":{\"processId\":\"burst%d.%d\"}}\n",
                            id0 + i, tag, i);
  u = (burst_ud){id0, n, tag, 0, -1, "process/release (burst)"};
  if (nj_send_raw(c, buf, len) < 0) {
    set_err("burst: write failed (release)");
    r = -1;
  } else
    r = pump(c, MSG_TIMEOUT_MS, burst_fn, &u, "process/release after a burst");
  free(buf);
  return r == 1 ? t1 - t0 : NAN;
}

/* A side of the burst comparison: one server kept for all its bursts. */
typedef struct {
  srv_kind kind;
  nj_conn c;
  bool started, ok;
  long long next_id;
  double *per_spawn; /* seconds, one per burst */
  char err[512];
} burst_side;

static void burst_step(burst_side *b, int n, int i, int *tag) {
  if (!b->ok)
    return;
  double s = warden_burst(&b->c, n, (*tag)++, &b->next_id);
  if (isnan(s)) {
    b->ok = false;
    errcpy(b->err, sizeof b->err, "", g_err);
  } else if (i >= 0)
    b->per_spawn[i] = s / n;
}

static void bench_burst(void) {
  int n = BURST_N, reps = O.quick ? 3 : 10, tag = 0;
  progress("spawn: %d bursts of %d x /bin/true (pipelined, unsandboxed), warden and warden "
           "--no-zygote alternating",
           reps, n);
  burst_side s[2] = {{.kind = SRV_WARDEN}, {.kind = SRV_WARDEN_NO_ZYGOTE}};
  for (int k = 0; k < 2; k++) {
    s[k].next_id = 10;
    s[k].per_spawn = calloc((size_t)reps, sizeof(double));
    s[k].started = s[k].ok = srv_start(&s[k].c, s[k].kind, NULL);
    if (!s[k].ok)
      errcpy(s[k].err, sizeof s[k].err, "", g_err);
  }
  /* a small warm-up burst each, then ABBA so that neither always goes first */
  burst_step(&s[0], 20, -1, &tag);
  burst_step(&s[1], 20, -1, &tag);
  for (int i = 0; i < reps; i++) {
    burst_step(&s[i % 2], n, i, &tag);
    burst_step(&s[1 - i % 2], n, i, &tag);
  }
  stats st[2];
  for (int k = 0; k < 2; k++) {
    if (s[k].started)
      nj_close(&s[k].c, 5000);
    if (s[k].ok)
      st[k] = stats_of(s[k].per_spawn, reps);
    free(s[k].per_spawn);
  }

  char name[96];
  snprintf(name, sizeof name,
           "spawn: %d in a burst, per spawn (/bin/true unsandboxed; median of %d bursts)", n, reps);
  row *r = add_row(name);
  FMT(target, "zygote/--no-zygote <= %.1fx (never slower per spawn)", T_BURST_RATIO);
  FMT(codex, "-");
  if (s[0].ok)
    FMT(warden, "%.3f ms (mean %.3f; a burst %.0f ms)", st[0].median * 1e3, st[0].mean * 1e3,
        st[0].median * n * 1e3);
  else {
    FMT(warden, "error: %.100s", s[0].err);
    g_failed = true;
  }
  if (s[1].ok)
    FMT(baseline, "today's path (--no-zygote): %.3f ms", st[1].median * 1e3);
  else {
    FMT(baseline, "error (--no-zygote): %.60s", s[1].err);
    g_failed = true;
  }
  if (s[0].ok && s[1].ok) {
    double q = st[0].median / st[1].median;
    FMT(ratio, "zygote/--no-zygote %.2fx", q);
    FMT(verdict, q <= T_BURST_RATIO ? "met" : "MISSED: %.2fx > %.1fx (+%.3f ms per spawn)", q,
        T_BURST_RATIO, (st[0].median - st[1].median) * 1e3);
  }
}

/* ---- 3. sandboxed spawn latency ---- */

static void bench_sandbox(void) {
  int n = O.quick ? 100 : 500;
  int nc = O.quick ? 20 : 100;
  double *vu = calloc((size_t)n, sizeof *vu), *vs = calloc((size_t)n, sizeof *vs);
  long long id = 10;
  stats us = {0}, ss = {0}, cu = {0}, csb = {0};
  bool wok = false, cok = false;
  char werr[512] = "", cerr[512] = "", backend[96] = "?";

  progress("sandbox: %d x (unsandboxed, workspaceWrite) /bin/true via warden, interleaved", n);
  nj_conn c;
  if (srv_start(&c, SRV_WARDEN, NULL)) {
    wok = true;
    for (int i = -5; i < n && wok; i++) {
      json_t *resp = NULL;
      double a = warden_run_once(&c, id++, TRUE_ARGV, SB_NONE, NULL, NULL);
      double b = isnan(a) ? NAN : warden_run_once(&c, id++, TRUE_ARGV, SB_WS, O.workdir, &resp);
      if (isnan(a) || isnan(b)) {
        wok = false;
        break;
      }
      if (i == -5 && resp) {
        json_t *sb = json_object_get(resp, "sandbox");
        snprintf(backend, sizeof backend, "enforced=%s backend=%s network=%s",
                 json_is_true(json_object_get(sb, "enforced")) ? "true" : "false",
                 json_string_value(json_object_get(sb, "backend"))
                     ? json_string_value(json_object_get(sb, "backend"))
                     : "?",
                 json_string_value(json_object_get(sb, "network"))
                     ? json_string_value(json_object_get(sb, "network"))
                     : "?");
      }
      json_decref(resp);
      if (i >= 0) {
        vu[i] = a;
        vs[i] = b;
      }
    }
    if (wok) {
      us = stats_of(vu, n);
      ss = stats_of(vs, n);
    }
    nj_close(&c, 5000);
  }
  if (!wok)
    snprintf(werr, sizeof werr, "%s", g_err);

  if (O.codex_enabled) {
    progress("sandbox: %d x (dangerFullAccess, workspaceWrite) /bin/true via codex app-server "
             "command/exec",
             nc);
    if (srv_start(&c, SRV_CODEX_APP, NULL)) {
      cok = true;
      for (int i = -3; i < nc && cok; i++) {
        double a = codex_app_exec_once(&c, id++, TRUE_ARGV, SB_NONE);
        double b = isnan(a) ? NAN : codex_app_exec_once(&c, id++, TRUE_ARGV, SB_WS);
        if (isnan(a) || isnan(b)) {
          cok = false;
          break;
        }
        if (i >= 0) {
          vu[i] = a;
          vs[i] = b;
        }
      }
      if (cok) {
        cu = stats_of(vu, nc);
        csb = stats_of(vs, nc);
      }
      nj_close(&c, 5000);
    }
    if (!cok)
      errcpy(cerr, sizeof cerr, "error: ", g_err);
  }
  free(vu);
  free(vs);

  row *r = add_row("sandbox: /bin/true, workspaceWrite (mean / p95 / p99)");
  FMT(target, "sandboxed/unsandboxed <= %.1fx (mean); codex/warden >= 15x", T_SANDBOX_RATIO);
  if (wok) {
    FMT(warden, "%.3f / %.3f / %.3f ms", ss.mean * 1e3, ss.p95 * 1e3, ss.p99 * 1e3);
    FMT(baseline, "warden unsandboxed: %.3f ms (mean)", us.mean * 1e3);
  } else {
    FMT(warden, "error: %.50s", werr);
    g_failed = true;
  }
  if (cok)
    FMT(codex, "%.3f / %.3f / %.3f ms (N=%d)", csb.mean * 1e3, csb.p95 * 1e3, csb.p99 * 1e3,
        nc);
  else
    FMT(codex, "%s", O.codex_enabled ? cerr : codex_cell());
  if (wok) {
    double su = ss.mean / us.mean;
    if (cok)
      FMT(ratio, "sandboxed/unsandboxed %.2fx; codex/warden %.1fx", su, csb.mean / ss.mean);
    else
      FMT(ratio, "sandboxed/unsandboxed %.2fx", su);
    if (su <= T_SANDBOX_RATIO && (!cok || csb.mean / ss.mean >= 15))
      FMT(verdict, "met");
    else if (su > T_SANDBOX_RATIO)
      FMT(verdict, "MISSED: %.2fx > %.1fx (+%.3f ms)", su, T_SANDBOX_RATIO,
          (ss.mean - T_SANDBOX_RATIO * us.mean) * 1e3);
    else
      FMT(verdict, "MISSED: codex/warden %.1fx < 15x", csb.mean / ss.mean);
  }
  r = add_row("sandbox: p99 of /bin/true, workspaceWrite");
  FMT(target, "none (measured; the target is on the mean)");
  if (wok) {
    FMT(warden, "%.3f ms (N=%d)", ss.p99 * 1e3, n);
    FMT(baseline, "warden unsandboxed p99: %.3f ms", us.p99 * 1e3);
    FMT(ratio, "sandboxed/unsandboxed %.2fx", ss.p99 / us.p99);
  } else
    FMT(warden, "error");
  if (cok)
    FMT(codex, "%.3f ms (N=%d)", csb.p99 * 1e3, nc);
  else
    FMT(codex, "%s", O.codex_enabled ? "error" : codex_cell());
  r = add_row("sandbox: warden's sandbox as reported by process/spawn");
  FMT(warden, "%s", backend);
  if (cok) {
    r = add_row("sandbox: codex app-server command/exec, dangerFullAccess (mean)");
    FMT(codex, "%.3f ms (N=%d)", cu.mean * 1e3, nc);
    if (wok)
      FMT(warden, "%.3f ms (unsandboxed)", us.mean * 1e3);
    if (wok)
      FMT(ratio, "codex/warden %.1fx", cu.mean / us.mean);
  }
}

/* ---- 3b. `warden run`: the whole process ---- */

/* warden run --cwd WORKDIR -- /bin/true (default sandbox: workspaceWrite),
 * stdin and stdout /dev/null, stderr kept: returns the seconds from the spawn
 * to the reap, or NAN (g_err set, with warden's stderr) unless it exits 0. */
static double warden_cli_run_once(void) {
  char *argv[] = {(char *)O.warden, "run", "--cwd", O.workdir, "--", "/bin/true", NULL};
  int efd = memfd_create("wardenbench-run-stderr", MFD_CLOEXEC);
  if (efd < 0) {
    set_err("memfd_create: %s", strerror(errno));
    return NAN;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, efd, 2);
  pid_t pid;
  double t0 = nj_now();
  int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    close(efd);
    set_err("posix_spawn %s: %s", argv[0], strerror(rc));
    return NAN;
  }
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  double t1 = nj_now();
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    char e[256];
    ssize_t n = pread(efd, e, sizeof e - 1, 0);
    e[n > 0 ? n : 0] = '\0';
    e[strcspn(e, "\n")] = '\0';
    set_err("warden run exited with %s %d: %s", WIFEXITED(st) ? "status" : "signal",
            WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), e);
    close(efd);
    return NAN;
  }
  close(efd);
  return t1 - t0;
}

static void bench_run(void) {
  int n = 20; /* the count, in both modes */
  progress("run: %d x `warden run --cwd %s -- /bin/true` and exec of /bin/true, interleaved", n,
           O.workdir);
  double *w = calloc((size_t)n, sizeof *w), *b = calloc((size_t)n, sizeof *b);
  bool wok = true, bok = true;
  char werr[512] = "", berr[512] = "";
  for (int i = -2; i < n && (wok || bok); i++) { /* two warm-up pairs */
    if (wok) {
      double s = warden_cli_run_once();
      if (isnan(s)) {
        wok = false;
        snprintf(werr, sizeof werr, "%s", g_err);
      } else if (i >= 0)
        w[i] = s;
    }
    if (bok) {
      double s = baseline_spawn_once();
      if (isnan(s)) {
        bok = false;
        snprintf(berr, sizeof berr, "%s", g_err);
      } else if (i >= 0)
        b[i] = s;
    }
  }
  stats ws = stats_of(w, n), bs = stats_of(b, n);
  free(w);
  free(b);

  row *r = add_row("run: `warden run --cwd DIR -- /bin/true`, whole process (median / mean / p99)");
  FMT(target, "warden run/exec <= %.0fx (medians; workspaceWrite)", T_RUN_RATIO);
  FMT(codex, "-");
  if (wok)
    FMT(warden, "%.2f / %.2f / %.2f ms (N=%d)", ws.median * 1e3, ws.mean * 1e3, ws.p99 * 1e3, n);
  else {
    FMT(warden, "error: %.100s", werr);
    g_failed = true;
  }
  if (bok)
    FMT(baseline, "exec /bin/true: %.2f ms (median)", bs.median * 1e3);
  else {
    FMT(baseline, "error: %.60s", berr);
    g_failed = true;
  }
  if (wok && bok) {
    double q = ws.median / bs.median;
    FMT(ratio, "warden run/exec %.2fx", q);
    FMT(verdict, q <= T_RUN_RATIO ? "met" : "MISSED: %.2fx > %.0fx (+%.2f ms)", q, T_RUN_RATIO,
        (ws.median - T_RUN_RATIO * bs.median) * 1e3);
  }
  r = add_row("run: p99 of `warden run --cwd DIR -- /bin/true` (N=20: the slowest)");
  FMT(target, "none (measured; the target is on the median)");
  FMT(codex, "-");
  if (wok)
    FMT(warden, "%.2f ms", ws.p99 * 1e3);
  else
    FMT(warden, "error");
  if (bok)
    FMT(baseline, "exec /bin/true p99: %.2f ms", bs.p99 * 1e3);
  if (wok && bok)
    FMT(ratio, "warden run/exec %.2fx", ws.p99 / bs.p99);
}

/* ---- 4. throughput ---- */

typedef struct {
  double secs;
  unsigned long long bytes;
  double client_cpu; /* seconds of our CPU */
  double server_cpu; /* seconds of the server's CPU (NAN if unknown) */
  bool ok;
} tput;

static tput raw_pipe(unsigned long long bytes) {
  tput t = {.ok = false};
  char count[32];
  snprintf(count, sizeof count, "%llu", bytes);
  char *argv[] = {"head", "-c", count, "/dev/zero", NULL};
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) {
    set_err("pipe: %s", strerror(errno));
    return t;
  }
  size_t bufsz = 128 * 1024;
  char *buf = malloc(bufsz);
  double c0 = cpu_seconds_self();
  double t0 = nj_now();
  pid_t pid = spawn_plain(argv, p[1]);
  close(p[1]);
  if (pid < 0) {
    close(p[0]);
    free(buf);
    return t;
  }
  for (;;) {
    ssize_t n = read(p[0], buf, bufsz);
    if (n > 0)
      t.bytes += (unsigned long long)n;
    else if (n == 0 || errno != EINTR)
      break;
  }
  int st;
  waitpid(pid, &st, 0);
  t.secs = nj_now() - t0;
  t.client_cpu = cpu_seconds_self() - c0;
  t.server_cpu = NAN;
  close(p[0]);
  free(buf);
  t.ok = t.bytes == bytes;
  if (!t.ok)
    set_err("raw pipe: read %llu of %llu bytes", t.bytes, bytes);
  return t;
}

/* Reads a streaming spawn to its end, decoding every output delta. The hot
 * path scans for the data key by hand; every other line goes to jansson. */
static tput stream_decode(nj_conn *c, srv_kind k, long long id, unsigned long long bytes) {
  tput t = {.ok = false};
  const char *data_key = k == SRV_WARDEN ? "deltaBase64" : "chunk";
  const char *end_method = k == SRV_WARDEN ? "process/exited" : "process/closed";
  size_t dcap = 1 << 20;
  uint8_t *dbuf = malloc(dcap);
  bool got_resp = false, got_end = false;
  double c0 = cpu_seconds_self(), s0 = cpu_seconds_of(c->pid);
  double t0 = nj_now();
  char count[32];
  snprintf(count, sizeof count, "%llu", bytes);
  int rc;
  if (k == SRV_WARDEN)
    rc = nj_send(c,
                 "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"process/spawn\",\"params\":{"
                 "\"processId\":\"tp%lld\",\"argv\":[\"head\",\"-c\",\"%s\",\"/dev/zero\"],"
                 "\"sandbox\":%s}}",
                 id, id, count, SB_NONE);
  else
    rc = nj_send(c,
                 "{\"id\":%lld,\"method\":\"process/start\",\"params\":{\"processId\":\"tp%lld\","
                 "\"argv\":[\"head\",\"-c\",\"%s\",\"/dev/zero\"],\"cwd\":\"%s\",\"env\":%s,"
                 "\"tty\":false,\"pipeStdin\":false,\"arg0\":null}}",
                 id, id, count, O.workuri, codex_env_json());
  if (rc < 0) {
    set_err("%s: write failed", srv_name(k));
    free(dbuf);
    return t;
  }
  double deadline = nj_now() + 300;
  while (!(got_resp && got_end)) {
    int left = (int)((deadline - nj_now()) * 1000);
    int r = nj_next(c, left > 0 ? left : 0);
    if (r <= 0) {
      set_err("%s: %s after %llu bytes", srv_name(k), r == 0 ? "timed out" : "stream closed",
              t.bytes);
      free(dbuf);
      return t;
    }
    /* Hot path: an output notification. The method is checked near the start
     * and the data key found by memmem; neither scans the base64 payload
     * unless the key comes after it. */
    size_t head = c->line_len < 160 ? c->line_len : 160;
    if (memmem(c->line, head, "\"process/output\"", 16)) {
      const char *v = nj_find_key(c->line, c->line_len, data_key);
      if (!v || *v != '"') {
        set_err("%s: output line without %s", srv_name(k), data_key);
        free(dbuf);
        return t;
      }
      v++;
      size_t vlen = (size_t)(c->line + c->line_len - v);
      if (vlen / 4 * 3 + 16 > dcap) {
        dcap = vlen / 4 * 3 + 16;
        dbuf = realloc(dbuf, dcap);
      }
      long n = nj_b64_decode(v, vlen, dbuf);
      if (n < 0) {
        set_err("%s: bad base64 in output", srv_name(k));
        free(dbuf);
        return t;
      }
      t.bytes += (unsigned long long)n;
      continue;
    }
    msg m;
    if (!parse_msg(c, &m))
      continue;
    if (is_response_to(&m, id)) {
      if (m.error) {
        describe_error(&m, "spawn");
        json_decref(m.root);
        free(dbuf);
        return t;
      }
      got_resp = true;
    } else if (m.method && strcmp(m.method, end_method) == 0) {
      got_end = true;
    } else if (m.method && strcmp(m.method, "process/output") == 0) {
      /* an output line whose method came late: the slow path */
      const char *v = json_string_value(json_object_get(m.params, data_key));
      size_t vlen = v ? strlen(v) : 0;
      if (vlen / 4 * 3 + 16 > dcap) {
        dcap = vlen / 4 * 3 + 16;
        dbuf = realloc(dbuf, dcap);
      }
      long n = v ? nj_b64_decode(v, vlen, dbuf) : -1;
      if (n >= 0)
        t.bytes += (unsigned long long)n;
    }
    json_decref(m.root);
  }
  t.secs = nj_now() - t0;
  t.client_cpu = cpu_seconds_self() - c0;
  t.server_cpu = cpu_seconds_of(c->pid) - s0;
  free(dbuf);
  t.ok = t.bytes == bytes;
  if (!t.ok)
    set_err("%s: decoded %llu of %llu bytes", srv_name(k), t.bytes, bytes);
  return t;
}

static tput server_tput(srv_kind k, unsigned long long bytes) {
  tput t = {.ok = false};
  nj_conn c;
  if (!srv_start(&c, k, NULL))
    return t;
  /* warm-up: a small run first */
  tput w = stream_decode(&c, k, 100, 1 << 20);
  if (w.ok)
    t = stream_decode(&c, k, 101, bytes);
  else
    t = w;
  nj_close(&c, 5000);
  return t;
}

static double mibs(const tput *t) { return (double)t->bytes / (1024.0 * 1024.0) / t->secs; }

static void bench_throughput(void) {
  unsigned long long bytes = (O.quick ? 64ULL : 512ULL) << 20;
  progress("throughput: head -c %lluM /dev/zero: raw pipe", bytes >> 20);
  tput raw = raw_pipe(bytes);
  char rerr[512] = "", werr[512] = "", cerr[512] = "";
  if (!raw.ok)
    snprintf(rerr, sizeof rerr, "%s", g_err);
  progress("throughput: warden pipe session, decoding every deltaBase64");
  tput w = server_tput(SRV_WARDEN, bytes);
  if (!w.ok)
    snprintf(werr, sizeof werr, "%s", g_err);
  tput cx = {.ok = false};
  if (O.codex_enabled) {
    progress("throughput: codex exec-server, decoding every chunk");
    cx = server_tput(SRV_CODEX_EXEC, bytes);
    if (!cx.ok)
      errcpy(cerr, sizeof cerr, "error: ", g_err);
  }
  char name[128];
  snprintf(name, sizeof name, "throughput: `head -c %lluM /dev/zero`, pipe, decoded (MiB/s)",
           bytes >> 20);
  row *r = add_row(name);
  FMT(target, ">= %.0f MiB/s; >= %.0f%% of raw; >= 8x codex", T_TPUT_MIBS, T_TPUT_SHARE * 100);
  if (raw.ok)
    FMT(baseline, "raw pipe read: %.0f MiB/s", mibs(&raw));
  else {
    FMT(baseline, "error: %.60s", rerr);
    g_failed = true;
  }
  if (w.ok)
    FMT(warden, "%.0f MiB/s", mibs(&w));
  else {
    FMT(warden, "error: %.50s", werr);
    g_failed = true;
  }
  if (cx.ok)
    FMT(codex, "%.0f MiB/s", mibs(&cx));
  else
    FMT(codex, "%s", O.codex_enabled ? cerr : codex_cell());
  if (w.ok && raw.ok) {
    double fr = mibs(&w) / mibs(&raw);
    if (cx.ok)
      FMT(ratio, "warden/raw %.0f%%; warden/codex %.1fx", fr * 100, mibs(&w) / mibs(&cx));
    else
      FMT(ratio, "warden/raw %.0f%%", fr * 100);
    char miss[96] = "";
    size_t ml = 0;
    if (mibs(&w) < T_TPUT_MIBS)
      ml += (size_t)snprintf(miss + ml, sizeof miss - ml, " %.0f MiB/s short of %.0f;",
                             T_TPUT_MIBS - mibs(&w), T_TPUT_MIBS);
    if (fr < T_TPUT_SHARE)
      ml += (size_t)snprintf(miss + ml, sizeof miss - ml, " %.0f%% < %.0f%% of raw;", fr * 100,
                             T_TPUT_SHARE * 100);
    if (cx.ok && mibs(&w) / mibs(&cx) < 8)
      snprintf(miss + ml, sizeof miss - ml, " %.1fx < 8x codex;", mibs(&w) / mibs(&cx));
    if (miss[0])
      FMT(verdict, "MISSED:%s", miss);
    else
      FMT(verdict, "met");
  }
  if (w.ok) {
    r = add_row("throughput: CPU seconds (server; client parse+decode)");
    FMT(warden, "%.2f s; client %.2f s", w.server_cpu, w.client_cpu);
    FMT(baseline, "client %.2f s", raw.client_cpu);
    if (cx.ok)
      FMT(codex, "%.2f s; client %.2f s", cx.server_cpu, cx.client_cpu);
    FMT(ratio, "client busy %.0f%% of warden's wall time", 100 * w.client_cpu / w.secs);
  }
}

/* ---- 5. idle PTY sessions ---- */

/* Whether pid is alive (not a zombie) and its cmdline holds marker. */
static bool alive_with(pid_t pid, const char *marker, size_t mlen) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return false;
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  if (!p || p[2] == 'Z' || p[2] == 'X')
    return false;
  snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  n = read(fd, buf, sizeof buf);
  close(fd);
  return n > 0 && memmem(buf, (size_t)n, marker, mlen) != NULL;
}

/* Counts live processes whose cmdline holds marker. */
static int count_marked(const char *marker) {
  DIR *d = opendir("/proc");
  if (!d)
    return -1;
  int count = 0;
  size_t ml = strlen(marker);
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    if (alive_with((pid_t)atoi(e->d_name), marker, ml))
      count++;
  }
  closedir(d);
  return count;
}

typedef struct {
  int spawned;
  long rss0, rss1;
  double per_kib;
  int leftover;
  double shutdown_ms;
  bool ok;
} pty_res;

static pty_res pty_idle(srv_kind k, int n, const char *marker) {
  pty_res R = {.ok = false};
  nj_conn c;
  if (!srv_start(&c, k, NULL))
    return R;
  sleep_ms(300);
  R.rss0 = nj_proc_status_kib(c.pid, "VmRSS");
  char argv_json[128];
  snprintf(argv_json, sizeof argv_json, "[\"sleep\",\"%s\"]", marker);
  long long id = 10;
  for (int i = 0; i < n; i++, id++) {
    char pid_str[32];
    snprintf(pid_str, sizeof pid_str, "pty%d", i);
    int rc;
    if (k == SRV_WARDEN)
      rc = nj_send(&c,
                   "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"process/spawn\",\"params\":{"
                   "\"processId\":\"%s\",\"argv\":%s,\"tty\":true,\"sandbox\":%s}}",
                   id, pid_str, argv_json, SB_NONE);
    else
      rc = nj_send(&c,
                   "{\"id\":%lld,\"method\":\"process/start\",\"params\":{\"processId\":\"%s\","
                   "\"argv\":%s,\"cwd\":\"%s\",\"env\":%s,\"tty\":true,\"pipeStdin\":false,"
                   "\"arg0\":null}}",
                   id, pid_str, argv_json, O.workuri, codex_env_json());
    json_t *res = rc == 0 ? wait_result(&c, id, MSG_TIMEOUT_MS, "spawn tty") : NULL;
    if (!res) {
      if (rc)
        set_err("write failed");
      char e[600], pre[48];
      snprintf(pre, sizeof pre, "session %d: ", i);
      errcpy(e, sizeof e, pre, g_err);
      errcpy(g_err, sizeof g_err, "", e);
      nj_kill(&c);
      /* the sessions die with their server (or will be counted below) */
      sleep_ms(500);
      R.leftover = count_marked(marker);
      return R;
    }
    json_decref(res);
    R.spawned++;
  }
  /* Let the sessions settle, draining whatever they print. */
  double until = nj_now() + 0.5;
  while (nj_now() < until) {
    int r = nj_next(&c, (int)((until - nj_now()) * 1000) + 1);
    if (r < 0)
      break;
  }
  R.rss1 = nj_proc_status_kib(c.pid, "VmRSS");
  R.per_kib = (double)(R.rss1 - R.rss0) / n;
  double t0 = nj_now();
  if (k == SRV_WARDEN) {
    nj_send(&c, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"shutdown\"}", id);
    json_t *res = wait_result(&c, id, MSG_TIMEOUT_MS, "shutdown");
    if (!res) {
      nj_kill(&c);
      R.leftover = count_marked(marker);
      return R;
    }
    json_decref(res);
  }
  int st = nj_close(&c, 10000);
  R.shutdown_ms = (nj_now() - t0) * 1e3;
  (void)st;
  /* Nothing may be left: poll briefly (processes may still be dying). */
  double dl = nj_now() + 3;
  do {
    R.leftover = count_marked(marker);
    if (R.leftover == 0)
      break;
    sleep_ms(50);
  } while (nj_now() < dl);
  R.ok = true;
  return R;
}

static void bench_pty(void) {
  int n = O.quick ? 200 : 1000;
  char wm[32], cm[32];
  /* sleep takes a fractional count: a unique argument marks our sessions */
  snprintf(wm, sizeof wm, "1000.%d1", (int)getpid());
  snprintf(cm, sizeof cm, "1000.%d2", (int)getpid());
  progress("pty: %d idle PTY sessions in warden", n);
  pty_res w = pty_idle(SRV_WARDEN, n, wm);
  char werr[512] = "", cerr[512] = "";
  if (!w.ok)
    snprintf(werr, sizeof werr, "%s", g_err);
  pty_res cx = {.ok = false};
  if (O.codex_enabled) {
    progress("pty: %d idle PTY sessions in codex exec-server", n);
    cx = pty_idle(SRV_CODEX_EXEC, n, cm);
    if (!cx.ok)
      errcpy(cerr, sizeof cerr, "error: ", g_err);
    if (cx.leftover > 0) {
      /* not ours to leave behind either way */
      char cmd[96];
      snprintf(cmd, sizeof cmd, "pkill -KILL -f 'sleep %s' 2>/dev/null", cm);
      if (system(cmd)) {
      }
    }
  }
  char name[96];
  snprintf(name, sizeof name, "pty: server RSS growth per idle PTY session (N=%d)", n);
  row *r = add_row(name);
  FMT(target, "< 64 KiB per session");
  if (w.ok) {
    FMT(warden, "%.1f KiB", w.per_kib);
    FMT(baseline, "warden RSS %.1f -> %.1f MiB", w.rss0 / 1024.0, w.rss1 / 1024.0);
    FMT(verdict, w.per_kib < 64 ? "met" : "MISSED by %.1f KiB", w.per_kib - 64);
  } else {
    FMT(warden, "error: %.50s", werr);
    g_failed = true;
  }
  if (cx.ok) {
    FMT(codex, "%.1f KiB (RSS %.1f -> %.1f MiB)", cx.per_kib, cx.rss0 / 1024.0, cx.rss1 / 1024.0);
    if (w.ok && w.per_kib > 0)
      FMT(ratio, "codex/warden %.1fx", cx.per_kib / w.per_kib);
  } else
    FMT(codex, "%s", O.codex_enabled ? cerr : codex_cell());

  r = add_row("pty: sessions left after shutdown (and time to exit)");
  FMT(target, "0 left");
  if (w.ok || w.spawned) {
    FMT(warden, "%d left (%.0f ms)", w.leftover, w.shutdown_ms);
    FMT(verdict, w.leftover == 0 ? "met" : "MISSED: %d left", w.leftover);
  } else
    FMT(warden, "error");
  if (cx.ok)
    FMT(codex, "%d left (%.0f ms, stdin EOF)", cx.leftover, cx.shutdown_ms);
  if (w.leftover > 0) {
    char cmd[96];
    snprintf(cmd, sizeof cmd, "pkill -KILL -f 'sleep %s' 2>/dev/null", wm);
    if (system(cmd)) {
    }
  }
}

/* ---- main ---- */

static void print_table(void) {
  printf("| benchmark | warden | baseline (same run) | codex | ratio | target | verdict |\n");
  printf("|---|---|---|---|---|---|---|\n");
  for (int i = 0; i < g_nrows; i++) {
    row *r = &g_rows[i];
    printf("| %s | %s | %s | %s | %s | %s | %s |\n", r->bench, r->warden, r->baseline, r->codex,
           r->ratio, r->target, r->verdict);
  }
}

/* --json FILE: the same rows as a JSON array of objects (strings, as printed). */
static int write_json(const char *path) {
  json_t *arr = json_array();
  for (int i = 0; i < g_nrows; i++) {
    row *r = &g_rows[i];
    json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "bench", r->bench,
                                         "warden", r->warden, "baseline", r->baseline, "codex",
                                         r->codex, "ratio", r->ratio, "target", r->target,
                                         "verdict", r->verdict));
  }
  int rc = json_dump_file(arr, path, JSON_INDENT(1));
  json_decref(arr);
  if (rc != 0)
    fprintf(stderr, "wardenbench: cannot write %s\n", path);
  return rc;
}

static int parse_only(const char *s) {
  int mask = 0;
  char *dup = strdup(s), *save = NULL;
  for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (!strcmp(t, "startup"))
      mask |= B_STARTUP;
    else if (!strcmp(t, "spawn"))
      mask |= B_SPAWN;
    else if (!strcmp(t, "sandbox"))
      mask |= B_SANDBOX;
    else if (!strcmp(t, "throughput"))
      mask |= B_THROUGHPUT;
    else if (!strcmp(t, "pty"))
      mask |= B_PTY;
    else if (!strcmp(t, "run"))
      mask |= B_RUN;
    else if (!strcmp(t, "all"))
      mask |= B_ALL;
    else {
      fprintf(stderr, "wardenbench: unknown benchmark \"%s\"\n", t);
      exit(2);
    }
  }
  free(dup);
  return mask;
}

static void usage(void) {
  fprintf(stderr,
          "usage: wardenbench [--quick] [--warden PATH] [--codex PATH] [--no-codex] [--json FILE]\n"
          "                   [--only startup,spawn,sandbox,run,throughput,pty] [BENCH...]\n");
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  const char *q = getenv("WARDEN_BENCH_QUICK");
  O.quick = q && *q && strcmp(q, "0") != 0;
  O.warden = getenv("WARDEN_BIN");
  O.codex = getenv("CODEX_BIN");
  const char *sk = getenv("WARDEN_BENCH_SKIP_CODEX");
  bool skip_codex = sk && *sk && strcmp(sk, "0") != 0;
  O.server_stderr = getenv("WARDEN_BENCH_SERVER_STDERR");
  const char *json_out = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--quick"))
      O.quick = true;
    else if (!strcmp(a, "--full"))
      O.quick = false;
    else if (!strcmp(a, "--warden") && i + 1 < argc)
      O.warden = argv[++i];
    else if (!strcmp(a, "--codex") && i + 1 < argc)
      O.codex = argv[++i];
    else if (!strcmp(a, "--no-codex"))
      skip_codex = true;
    else if (!strcmp(a, "--json") && i + 1 < argc)
      json_out = argv[++i];
    else if (!strcmp(a, "--only") && i + 1 < argc)
      O.only_mask |= parse_only(argv[++i]);
    else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage();
      return 0;
    } else if (a[0] != '-')
      O.only_mask |= parse_only(a);
    else {
      usage();
      return 2;
    }
  }
  if (!O.only_mask)
    O.only_mask = B_ALL;
  if (!O.warden || !*O.warden) {
    fprintf(stderr, "wardenbench: no warden binary (--warden PATH or WARDEN_BIN)\n");
    return 2;
  }
  if (access(O.warden, X_OK) != 0) {
    fprintf(stderr, "wardenbench: %s: %s\n", O.warden, strerror(errno));
    return 2;
  }
  static char reason[600];
  if (skip_codex) {
    O.codex_reason = "skipped (WARDEN_BENCH_SKIP_CODEX)";
  } else if (!O.codex || !*O.codex || access(O.codex, X_OK) != 0) {
    O.codex_reason = "not installed";
    printf("%s\n", CODEX_MISSING);
  } else {
    O.codex_enabled = true;
    if (!getenv("CODEX_HOME")) {
      const char *home = getenv("HOME");
      snprintf(reason, sizeof reason, "%s/.cache/warden-bench-codex-home", home ? home : "/root");
      mkdir(reason, 0700);
      setenv("CODEX_HOME", reason, 1);
    }
  }

  /* 1000 PTY sessions need a few thousand descriptors in the server. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  const char *tmp = getenv("TMPDIR");
  snprintf(O.workdir, sizeof O.workdir, "%s/wardenbench.XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(O.workdir)) {
    fprintf(stderr, "wardenbench: mkdtemp: %s\n", strerror(errno));
    return 2;
  }
  snprintf(O.workuri, sizeof O.workuri, "file://%s", O.workdir);

  struct utsname u;
  uname(&u);
  time_t now = time(NULL);
  char date[64];
  strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
  printf("wardenbench (%s mode) %s; %ld CPUs; %s %s %s; warden %s; codex %s\n\n",
         O.quick ? "quick" : "full", date, sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release,
         u.machine, O.warden, O.codex_enabled ? O.codex : codex_cell());
  fflush(stdout);

  if (O.only_mask & B_STARTUP)
    bench_startup();
  if (O.only_mask & B_SPAWN) {
    bench_spawn();
    bench_burst();
  }
  if (O.only_mask & B_SANDBOX)
    bench_sandbox();
  if (O.only_mask & B_RUN)
    bench_run();
  if (O.only_mask & B_THROUGHPUT)
    bench_throughput();
  if (O.only_mask & B_PTY)
    bench_pty();

  print_table();
  if (json_out && write_json(json_out) != 0)
    g_failed = true;
  rmdir(O.workdir);
  if (g_failed) {
    printf("\nwardenbench: some benchmark produced no number (see the errors above)\n");
    return 1;
  }
  return 0;
}
