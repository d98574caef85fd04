/* warden: entry point, command line, and the serve loop. */
#include "handlers/handlers.h"
#include "protocol/protocol.h"
#include "server/exec/exec.h"
#include "server/install_paths.h"
#include "server/log.h"
#include "server/sandbox/sandbox.h"
#include "server/server.h"
#include "server/telemetry/telemetry.h"
#include "server/version.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: warden [options]                 serve JSON-RPC on stdin/stdout\n"
    "       warden generate-json-schema --out DIR\n"
    "       warden generate-ts --out DIR\n"
    "       warden generate-docs --out DIR   (DIR/reference.md)\n"
    "       warden run [--sandbox JSON] [--cwd DIR] -- CMD [ARG...]\n"
    "\n"
    "options:\n"
    "  --config FILE         JSON config file (also $WARDEN_CONFIG)\n"
    "  --max-line-bytes N    longest accepted input line (default 16777216)\n"
    "  --retain-bytes N      output kept per process for process/read (default 1048576)\n"
    "  --state-dir DIR       sandbox setup state (default $XDG_STATE_HOME/warden)\n"
    "  --proxy-listen H:P    also serve the egress proxy (HTTP and SOCKS5) on loopback H:P\n"
    "  --no-zygote           fork supervisors from the server, not the zygote (diagnosis)\n"
    "  --warm-supervisors N  supervisors kept ready per kind of spawn, 0..8 (default 2)\n"
    "  -h, --help            this text\n"
    "  -V, --version         print the version\n"
    "\n"
    "environment: WARDEN_LOG=error|warn|info|debug|trace, WARDEN_LOG_FORMAT=json\n"
    "telemetry (OTLP/HTTP; off unless an endpoint is set; the config's \"telemetry\"\n"
    "object overrides these):\n"
    "  OTEL_EXPORTER_OTLP_ENDPOINT         base URL; traces to /v1/traces, logs to /v1/logs\n"
    "  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT  full URL for spans\n"
    "  OTEL_EXPORTER_OTLP_LOGS_ENDPOINT    full URL for log records\n"
    "  OTEL_EXPORTER_OTLP_HEADERS          key=value,... sent with every export\n"
    "  OTEL_EXPORTER_OTLP_TIMEOUT          milliseconds per export, 1..600000 (10000)\n"
    "  OTEL_EXPORTER_OTLP_COMPRESSION      gzip or none\n"
    "  OTEL_SERVICE_NAME                   service.name (warden)\n"
    "  OTEL_RESOURCE_ATTRIBUTES            key=value,... resource attributes\n";

/* The installed directory `rel` (relative to the binary's directory) when
 * this binary runs from an installed tree and `probe` is there, else the
 * configured absolute `fallback`. */
static void installed_dir(const char *rel, const char *probe, const char *fallback, char *out,
                          size_t cap) {
  /* cand holds the binary's directory, then rel and probe. */
  char exe[PATH_MAX], cand[2 * PATH_MAX], real[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  snprintf(out, cap, "%s", fallback);
  if (n <= 0)
    return;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (!slash)
    return;
  *slash = '\0';
  if ((size_t)snprintf(cand, sizeof cand, "%s/%s/%s", exe, rel, probe) >= sizeof cand)
    return;
  if (!realpath(cand, real))
    return;
  char *end = probe[0] ? strrchr(real, '/') : NULL; /* drop the probe's name again */
  if (end)
    *end = '\0';
  snprintf(out, cap, "%s", real);
}

/* --help: the usage, then where the contract and the schema are installed. */
static void print_help(FILE *f) {
  static const char *const docs[] = {WARDEN_CONTRACT_FILES};
  char docdir[PATH_MAX], schemadir[PATH_MAX];
  installed_dir(WARDEN_BINDIR_TO_DOCDIR, docs[0], WARDEN_INSTALL_DOCDIR, docdir, sizeof docdir);
  installed_dir(WARDEN_BINDIR_TO_SCHEMADIR, "", WARDEN_INSTALL_SCHEMADIR, schemadir,
                sizeof schemadir);
  fputs(usage, f);
  fputs("protocol:", f);
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
    fprintf(f, "%s %s/%s", i ? "," : "", docdir, docs[i]);
  fprintf(f, "\nschema:   %s/ (JSON Schema)\nmanual:   man warden\n", schemadir);
}

/* ---- serve ---- */

static void on_line(void *arg, const char *line, size_t len) {
  warden_server *s = arg;
  rpc_handle_line(s->rpc, line, len);
}

static void on_oversize(void *arg, unsigned long long bytes) {
  warden_server *s = arg;
  rpc_handle_oversize(s->rpc, bytes, s->cfg.max_line_bytes);
}

static void on_eof(void *arg) {
  warden_server *s = arg;
  LOGI("server", "stdin closed; shutting down");
  handlers_approvals_client_gone(s);
  server_shutdown(s, NULL, NULL);
}

static void on_out_error(void *arg, int err) {
  warden_server *s = arg;
  (void)err;
  LOGI("server", "client stopped reading stdout; shutting down");
  handlers_approvals_client_gone(s);
  transport_stop_input(s->tr);
  server_shutdown(s, NULL, NULL);
}

static void on_pressure(void *arg, int high) {
  warden_server *s = arg;
  if (!s->exec)
    return;
  if (high)
    exec_engine_pause_output(s->exec);
  else
    exec_engine_resume_output(s->exec);
}

static void on_signal(uv_signal_t *h, int signum) {
  warden_server *s = h->data;
  LOGI("server", "signal %d; shutting down", signum);
  transport_stop_input(s->tr);
  server_shutdown(s, NULL, NULL);
}

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

typedef struct shutdown_ctx {
  warden_server *s;
  void (*then)(void *);
  void *arg;
} shutdown_ctx;

static shutdown_ctx g_shutdown;

static void transport_closed(void *arg) {
  warden_server *s = arg;
  s->tr = NULL;
  rpc_set_transport(s->rpc, NULL);
  /* The engines close their own handles (their close callbacks free them);
   * whatever else is left open (signal watchers) is closed after. */
  handlers_free(s);
  uv_walk(s->loop, close_walk, NULL);
}

static void flushed(void *arg) {
  warden_server *s = arg;
  transport_close(s->tr, transport_closed, s);
}

static void telemetry_flushed(void *arg) {
  warden_server *s = arg;
  transport_flush(s->tr, flushed, s);
}

static void processes_gone(void *arg) {
  shutdown_ctx *c = arg;
  warden_server *s = c->s;
  rpc_cancel_calls(s->rpc);
  if (c->then)
    c->then(c->arg);
  handlers_stop(s);
  transport_stop_input(s->tr);
  /* The last spans (the shutdown request's included) get a bounded chance to
   * reach the collector; the answer is already on its way to the client. */
  telemetry_shutdown(s->telemetry, telemetry_flushed, s);
}

void server_shutdown(warden_server *s, void (*then)(void *), void *arg) {
  if (s->shutting_down) {
    if (then)
      then(arg); /* a second shutdown request still gets its answer */
    return;
  }
  s->shutting_down = true;
  uv_signal_stop(&s->sigterm);
  uv_signal_stop(&s->sigint);
  g_shutdown = (shutdown_ctx){s, then, arg};
  if (s->exec)
    exec_engine_shutdown(s->exec, s->cfg.shutdown_grace_ms, processes_gone, &g_shutdown);
  else
    processes_gone(&g_shutdown);
}

static void on_telemetry_note(void *arg, tele_level level, const char *msg) {
  (void)arg;
  log_write(level == TELE_LOG_ERROR ? LOG_ERROR : level == TELE_LOG_WARN ? LOG_WARN : LOG_INFO,
            "telemetry", "%s", msg);
}

static int serve(warden_server *s, const tele_config *tc, bool zygote, size_t warm) {
  /* The zygote starts once initialize is answered (handlers/lifecycle.c). */
  s->zygote = zygote;
  s->warm_supervisors = warm;
  uv_loop_t *loop = uv_default_loop();
  s->loop = loop;
  signal(SIGPIPE, SIG_IGN);

  rpc_opts ro = {
      .max_inflight = s->cfg.max_inflight,
      .call_timeout_ms = s->cfg.call_timeout_ms,
      .handlers = warden_handlers,
      .server = s,
      .on_notification = handlers_on_notification,
  };
  if (rpc_new(loop, NULL, &ro, &s->rpc) < 0)
    return 1;
  tele_opts teo = {.scope_version = WARDEN_VERSION, .on_log = on_telemetry_note};
  int trc = telemetry_new(loop, tc, &teo, &s->telemetry);
  if (trc < 0)
    LOGE("server", "telemetry off: cannot start the exporter: %s", strerror(-trc));
  rpc_set_telemetry(s->rpc, s->telemetry);
  int rc = handlers_start(s);
  if (rc < 0) {
    LOGE("server", "cannot start: %s", strerror(-rc));
    return 1;
  }
  transport_opts to = {
      .in_fd = 0,
      .out_fd = 1,
      .max_line_bytes = s->cfg.max_line_bytes,
      .high_water = s->cfg.out_high_water,
      .low_water = s->cfg.out_high_water / 4,
      .input_stop = s->cfg.out_high_water * 4, /* replies are bounded too (docs/protocol.md) */
      .arg = s,
      .on_line = on_line,
      .on_oversize = on_oversize,
      .on_eof = on_eof,
      .on_pressure = on_pressure,
      .on_out_error = on_out_error,
  };
  rc = transport_open(loop, &to, &s->tr);
  if (rc < 0) {
    LOGE("server", "cannot open stdio: %s", strerror(-rc));
    return 1;
  }
  rpc_set_transport(s->rpc, s->tr);

  uv_signal_init(loop, &s->sigterm);
  uv_signal_init(loop, &s->sigint);
  s->sigterm.data = s->sigint.data = s;
  uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  uv_signal_start(&s->sigint, on_signal, SIGINT);

  uv_run(loop, UV_RUN_DEFAULT);
  exec_zygote_stop();
  handlers_free(s);
  rpc_free(s->rpc);
  telemetry_free(s->telemetry);
  s->telemetry = NULL;
  uv_loop_close(loop);
  return s->exit_code;
}

/* ---- command line ---- */

static int parse_size(const char *flag, const char *v, size_t min, size_t *out) {
  char *end;
  errno = 0;
  unsigned long long n = strtoull(v ? v : "", &end, 10);
  if (!v || !*v || *end || errno || n < min || n > (1ULL << 30)) {
    fprintf(stderr, "warden: %s needs an integer %zu..%llu, got \"%s\"\n", flag, min, 1ULL << 30,
            v ? v : "");
    return -1;
  }
  *out = (size_t)n;
  return 0;
}

static int generate(int argc, char **argv, int (*fn)(const char *)) {
  const char *out = NULL;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
      out = argv[++i];
    else if (strncmp(argv[i], "--out=", 6) == 0)
      out = argv[i] + 6;
    else {
      fprintf(stderr, "warden %s: unexpected argument \"%s\" (usage: --out DIR)\n", argv[1],
              argv[i]);
      return 2;
    }
  }
  if (!out) {
    fprintf(stderr, "warden %s: --out DIR is required\n", argv[1]);
    return 2;
  }
  int rc = fn(out);
  if (rc < 0) {
    fprintf(stderr, "warden %s: writing %s: %s\n", argv[1], out, strerror(-rc));
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 0 && strcmp(argv[0], SANDBOX_JANITOR_ARGV0) == 0)
    sandbox_janitor_main(); /* started by a server (server/sandbox/janitor.c) */
  sandbox_janitor_allow();
  log_init_from_env();
  if (argc > 1 && strcmp(argv[1], "generate-json-schema") == 0)
    return generate(argc, argv, proto_write_json_schema);
  if (argc > 1 && strcmp(argv[1], "generate-ts") == 0)
    return generate(argc, argv, proto_write_typescript);
  if (argc > 1 && strcmp(argv[1], "generate-docs") == 0)
    return generate(argc, argv, proto_write_markdown);

  warden_server s;
  memset(&s, 0, sizeof s);
  config_defaults(&s.cfg);
  const char *config_path = getenv("WARDEN_CONFIG");
  size_t max_line = 0, retain = 0;
  bool have_max_line = false, have_retain = false;
  const char *state_dir = NULL;
  const char *proxy_listen = NULL;
  int i = 1;
  bool run_mode = false;
  bool zygote = true;
  size_t warm = EXEC_ZYGOTE_WARM_DEFAULT;
  if (argc > 1 && strcmp(argv[1], "run") == 0) {
    run_mode = true;
    i = 2;
  }
  for (; i < argc; i++) {
    const char *a = argv[i];
    const char *next = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      print_help(stdout);
      return 0;
    } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
      printf("warden %s (protocol %d)\n", WARDEN_VERSION, PROTOCOL_VERSION);
      return 0;
    } else if (strcmp(a, "--config") == 0) {
      if (!next) {
        fprintf(stderr, "warden: --config needs a file\n");
        return 2;
      }
      config_path = argv[++i];
    } else if (strcmp(a, "--max-line-bytes") == 0) {
      if (parse_size(a, next, 64, &max_line) < 0)
        return 2;
      have_max_line = true;
      i++;
    } else if (strcmp(a, "--retain-bytes") == 0) {
      if (parse_size(a, next, 0, &retain) < 0)
        return 2;
      have_retain = true;
      i++;
    } else if (strcmp(a, "--state-dir") == 0) {
      if (!next || next[0] != '/') {
        fprintf(stderr, "warden: --state-dir needs an absolute path\n");
        return 2;
      }
      state_dir = argv[++i];
    } else if (strcmp(a, "--proxy-listen") == 0) {
      if (!next) {
        fprintf(stderr, "warden: --proxy-listen needs HOST:PORT (loopback)\n");
        return 2;
      }
      proxy_listen = argv[++i];
    } else if (strcmp(a, "--no-zygote") == 0 && !run_mode) {
      zygote = false;
    } else if (strcmp(a, "--warm-supervisors") == 0 && !run_mode) {
      if (parse_size(a, next, 0, &warm) < 0)
        return 2;
      if (warm > EXEC_ZYGOTE_WARM_MAX) {
        fprintf(stderr, "warden: --warm-supervisors is at most %d, got %zu\n",
                EXEC_ZYGOTE_WARM_MAX, warm);
        return 2;
      }
      i++;
    } else if (run_mode) {
      break; /* the rest belongs to `warden run` */
    } else {
      fprintf(stderr, "warden: unknown argument \"%s\"\n%s", a, usage);
      return 2;
    }
  }
  if (config_path && *config_path) {
    char err[512];
    if (config_load_file(&s.cfg, config_path, err, sizeof err) < 0) {
      fprintf(stderr, "warden: config: %s\n", err);
      config_free(&s.cfg);
      return 2;
    }
  }
  if (have_max_line)
    s.cfg.max_line_bytes = max_line;
  if (have_retain)
    s.cfg.retain_bytes = retain;
  if (proxy_listen) {
    free(s.cfg.proxy_listen);
    s.cfg.proxy_listen = strdup(proxy_listen);
  }
  if (state_dir) {
    free(s.cfg.state_dir);
    s.cfg.state_dir = strdup(state_dir);
  }
  /* Telemetry: the OTEL_* environment, then the config file's object over it;
   * a bad value stops the start here (exit 2), naming it. */
  tele_config tc;
  tele_config_init(&tc);
  char terr[600];
  if (!run_mode && (tele_config_from_env(&tc, NULL, terr, sizeof terr) < 0 ||
                    (s.cfg.telemetry &&
                     tele_config_from_json(&tc, s.cfg.telemetry, terr, sizeof terr) < 0))) {
    fprintf(stderr, "warden: telemetry: %s\n", terr);
    tele_config_free(&tc);
    config_free(&s.cfg);
    return 2;
  }
  int rc;
  if (run_mode)
    rc = handlers_run_command(&s, argc - i, argv + i);
  else
    rc = serve(&s, &tc, zygote, warm);
  tele_config_free(&tc);
  config_free(&s.cfg);
  return rc;
}
