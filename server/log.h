/* Logging to stderr. Level from WARDEN_LOG (error|warn|info|debug|trace,
 * default warn); WARDEN_LOG_FORMAT=json writes one JSON object per line. */
#ifndef WARDEN_LOG_H
#define WARDEN_LOG_H

typedef enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE } log_level;

void log_init_from_env(void);
int log_enabled(log_level level);
void log_write(log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOGE(mod, ...) log_write(LOG_ERROR, mod, __VA_ARGS__)
#define LOGW(mod, ...) log_write(LOG_WARN, mod, __VA_ARGS__)
#define LOGI(mod, ...) log_write(LOG_INFO, mod, __VA_ARGS__)
#define LOGD(mod, ...) \
  do { if (log_enabled(LOG_DEBUG)) log_write(LOG_DEBUG, mod, __VA_ARGS__); } while (0)

#endif
