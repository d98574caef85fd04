#include "server/telemetry/curl_dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

tele_curl_api tele_curl;

static int load_rc = 1; /* 1: not tried yet */
static char load_why[256];

/* Each entry: the symbol and where its address goes. */
#define SYM(field, name) {name, (void **)&tele_curl.field}

int tele_curl_load(char *why, size_t why_len) {
  if (load_rc == 1) {
    /* RTLD_LOCAL: nothing else in the process resolves against libcurl's
     * dependencies by accident. RTLD_NOW: a missing symbol fails here, not
     * in the middle of an export. */
    void *h = dlopen(TELE_CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      snprintf(load_why, sizeof load_why, "cannot load %s: %s", TELE_CURL_SONAME, dlerror());
      load_rc = -ENOENT;
    } else {
      const struct {
        const char *name;
        void **slot;
      } syms[] = {
          SYM(global_init, "curl_global_init"),
          SYM(global_cleanup, "curl_global_cleanup"),
          SYM(easy_init, "curl_easy_init"),
          SYM(easy_setopt, "curl_easy_setopt"),
          SYM(easy_getinfo, "curl_easy_getinfo"),
          SYM(easy_cleanup, "curl_easy_cleanup"),
          SYM(easy_strerror, "curl_easy_strerror"),
          SYM(multi_init, "curl_multi_init"),
          SYM(multi_setopt, "curl_multi_setopt"),
          SYM(multi_add_handle, "curl_multi_add_handle"),
          SYM(multi_remove_handle, "curl_multi_remove_handle"),
          SYM(multi_assign, "curl_multi_assign"),
          SYM(multi_socket_action, "curl_multi_socket_action"),
          SYM(multi_info_read, "curl_multi_info_read"),
          SYM(multi_cleanup, "curl_multi_cleanup"),
          SYM(slist_append, "curl_slist_append"),
          SYM(slist_free_all, "curl_slist_free_all"),
      };
      load_rc = 0;
      for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *p = dlsym(h, syms[i].name);
        if (!p) {
          snprintf(load_why, sizeof load_why, "%s has no %s", TELE_CURL_SONAME, syms[i].name);
          load_rc = -ENOENT;
          memset(&tele_curl, 0, sizeof tele_curl);
          dlclose(h);
          break;
        }
        *syms[i].slot = p;
      }
      /* On success the library stays loaded for the life of the process:
       * curl_global_cleanup does not make unloading safe. */
    }
  }
  if (load_rc < 0 && why && why_len)
    snprintf(why, why_len, "%s", load_why);
  return load_rc;
}
