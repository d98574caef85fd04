/* libcurl, loaded when an OTLP exporter first starts and not before.
 *
 * Linking libcurl costs every warden start about 30 shared objects (TLS,
 * Kerberos, LDAP, SSH, IDN...) and ~450 page faults: measured 14 ms of a
 * 17 ms start on a 2-CPU VM, for a feature most runs never use. So the binary
 * does not link it: export.c calls libcurl through this table, filled by
 * dlopen("libcurl.so.4") the first time telemetry export is configured. Only
 * the headers are needed to build. */
#ifndef WARDEN_TELE_CURL_DL_H
#define WARDEN_TELE_CURL_DL_H

#include <curl/curl.h>
#include <stddef.h>

#define TELE_CURL_SONAME "libcurl.so.4" /* the ABI the headers describe (SONAME 4 since 2006) */

typedef struct tele_curl_api {
  CURLcode (*global_init)(long flags);
  void (*global_cleanup)(void);
  CURL *(*easy_init)(void);
  CURLcode (*easy_setopt)(CURL *e, CURLoption opt, ...);
  CURLcode (*easy_getinfo)(CURL *e, CURLINFO info, ...);
  void (*easy_cleanup)(CURL *e);
  const char *(*easy_strerror)(CURLcode rc);
  CURLM *(*multi_init)(void);
  CURLMcode (*multi_setopt)(CURLM *m, CURLMoption opt, ...);
  CURLMcode (*multi_add_handle)(CURLM *m, CURL *e);
  CURLMcode (*multi_remove_handle)(CURLM *m, CURL *e);
  CURLMcode (*multi_assign)(CURLM *m, curl_socket_t fd, void *p);
  CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t fd, int ev_bitmask, int *running);
  CURLMsg *(*multi_info_read)(CURLM *m, int *msgs_in_queue);
  CURLMcode (*multi_cleanup)(CURLM *m);
  struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
  void (*slist_free_all)(struct curl_slist *list);
} tele_curl_api;

/* Filled by tele_curl_load; all NULL before. */
extern tele_curl_api tele_curl;

/* Loads libcurl once per process. 0, or -ENOENT with the loader's reason
 * (missing library, missing symbol) written to why. Later calls return the
 * first call's result. */
int tele_curl_load(char *why, size_t why_len);

#endif
