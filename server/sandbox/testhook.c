/* Test-build-only hooks; see testhook.h. This file is compiled only with
 * WARDEN_TEST_HOOKS (server/sandbox/CMakeLists.txt). */
#include "server/sandbox/testhook.h"

#ifdef WARDEN_TEST_HOOKS /* (the release-flags test compiles every source) */

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SBX_TEST_LIST_MAX 256 /* longest WARDEN_TEST_* value accepted */

unsigned sbx_test_disabled;
static int g_landlock_cap = -1; /* -1: no cap */
static int g_userns = -1, g_netns = -1, g_seccomp = -1;

static const struct {
  const char *name;
  unsigned bit;
} layers[] = {
    {"landlock", SBX_TEST_LANDLOCK}, {"seccomp", SBX_TEST_SECCOMP}, {"caps", SBX_TEST_CAPS},
    {"nnp", SBX_TEST_NNP},           {"mounts", SBX_TEST_MOUNTS},   {"userns", SBX_TEST_USERNS},
    {"pidns", SBX_TEST_PIDNS},       {"netns", SBX_TEST_NETNS},     {"ipcns", SBX_TEST_IPCNS},
};

static _Noreturn void bad(const char *var, const char *item) {
  fprintf(stderr, "warden: %s: unknown item \"%s\"\n", var, item);
  exit(2);
}

static void parse_disable(const char *v) {
  char buf[SBX_TEST_LIST_MAX];
  if (strlen(v) >= sizeof buf)
    bad("WARDEN_TEST_DISABLE", "(too long)");
  strcpy(buf, v);
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    size_t i = 0;
    while (i < sizeof layers / sizeof layers[0] && strcmp(layers[i].name, t) != 0)
      i++;
    if (i == sizeof layers / sizeof layers[0])
      bad("WARDEN_TEST_DISABLE", t);
    sbx_test_disabled |= layers[i].bit;
  }
}

static void parse_features(const char *v) {
  char buf[SBX_TEST_LIST_MAX];
  if (strlen(v) >= sizeof buf)
    bad("WARDEN_TEST_FEATURES", "(too long)");
  strcpy(buf, v);
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(t, '=');
    char *end = NULL;
    long n = eq ? strtol(eq + 1, &end, 10) : -1;
    if (!eq || end == eq + 1 || *end || n < 0)
      bad("WARDEN_TEST_FEATURES", t);
    *eq = '\0';
    if (strcmp(t, "landlock") == 0)
      g_landlock_cap = (int)n;
    else if (strcmp(t, "userns") == 0)
      g_userns = n != 0;
    else if (strcmp(t, "netns") == 0)
      g_netns = n != 0;
    else if (strcmp(t, "seccomp") == 0)
      g_seccomp = n != 0;
    else
      bad("WARDEN_TEST_FEATURES", t);
  }
}

__attribute__((constructor)) static void sbx_test_init(void) {
  const char *d = getenv("WARDEN_TEST_DISABLE");
  const char *f = getenv("WARDEN_TEST_FEATURES");
  if (d && *d)
    parse_disable(d);
  if (f && *f)
    parse_features(f);
}

unsigned long sbx_test_clone_off(void) {
  unsigned long m = 0;
  if (sbx_test_off(SBX_TEST_USERNS))
    m |= CLONE_NEWUSER;
  if (sbx_test_off(SBX_TEST_PIDNS))
    m |= CLONE_NEWPID;
  if (sbx_test_off(SBX_TEST_NETNS))
    m |= CLONE_NEWNET;
  if (sbx_test_off(SBX_TEST_IPCNS))
    m |= CLONE_NEWIPC;
  return m;
}

void sbx_test_features(policy_features *f) {
  if (g_landlock_cap >= 0 && f->landlock_abi > g_landlock_cap)
    f->landlock_abi = g_landlock_cap;
  if (g_userns == 0)
    f->user_namespaces = false;
  if (g_netns == 0)
    f->network_namespaces = false;
  if (g_seccomp == 0)
    f->seccomp = false;
}

#endif /* WARDEN_TEST_HOOKS */
