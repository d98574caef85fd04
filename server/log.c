#include "server/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static log_level g_level = LOG_WARN;
static int g_json;
static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

void log_init_from_env(void) {
  const char *lv = getenv("WARDEN_LOG");
  if (lv) {
    for (int i = 0; i <= LOG_TRACE; i++)
      if (strcasecmp(lv, level_names[i]) == 0)
        g_level = (log_level)i;
  }
  const char *fmt = getenv("WARDEN_LOG_FORMAT");
  g_json = fmt && strcasecmp(fmt, "json") == 0;
}

int log_enabled(log_level level) { return level <= g_level; }

void log_write(log_level level, const char *module, const char *fmt, ...) {
  if (level > g_level)
    return;
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[40];
  snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
  if (g_json) {
    json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "ts", when, "level", level_names[level], "module",
                          module, "msg", msg);
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (line)
      fprintf(stderr, "%s\n", line);
    free(line);
    json_decref(o);
  } else {
    fprintf(stderr, "%s warden %s [%s] %s\n", when, level_names[level], module, msg);
  }
}
