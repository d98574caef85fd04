/* What this kernel can enforce: Landlock ABI, user/mount/pid and network
 * namespaces, seccomp filters. Everything is asked of the kernel directly;
 * nothing is inferred from version numbers (distributions patch and
 * restrict these: AppArmor userns restrictions, disabled Landlock, ...). */
#include "server/sandbox/sandbox_int.h"
#include "server/sandbox/testhook.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif

static int probe_landlock(void) {
  long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return abi > 0 ? (int)abi : 0;
}

static bool probe_seccomp(void) {
  /* PR_GET_SECCOMP fails with EINVAL on a kernel without seccomp; the filter
   * mode itself is confirmed by asking whether SECCOMP_RET_ERRNO exists. */
  if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0)
    return false;
  unsigned action = SECCOMP_RET_ERRNO;
  return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
}

static int write_str(const char *path, const char *s) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  size_t n = strlen(s);
  ssize_t w = write(fd, s, n);
  close(fd);
  return w == (ssize_t)n ? 0 : -1;
}

/* In a short-lived child: a user namespace with our own uid and gid mapped
 * (exactly what sandbox_child_init does), then mount+pid namespaces (the
 * rest of the namespaces backend), then a network namespace. The exit code
 * says how far it got. The child shares our memory and we are suspended
 * until it exits (CLONE_VM|CLONE_VFORK, as posix_spawn does): no page
 * tables to copy, which makes the probe several times cheaper than a fork
 * and keeps `initialize` fast. It only makes raw system calls. */
typedef struct ns_probe {
  char umap[48], gmap[48];
} ns_probe;

static int ns_probe_child(void *arg) {
  const ns_probe *p = arg;
  if (unshare(CLONE_NEWUSER) < 0)
    return 10;
  if (write_str("/proc/self/setgroups", "deny") < 0 || write_str("/proc/self/uid_map", p->umap) < 0 ||
      write_str("/proc/self/gid_map", p->gmap) < 0)
    return 11;
  if (unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC) < 0)
    return 12;
  if (unshare(CLONE_NEWNET) < 0)
    return 1;
  return 0;
}

#define NS_PROBE_STACK (32 * 1024)

static void probe_namespaces(bool *userns, bool *netns) {
  *userns = *netns = false;
  ns_probe p;
  snprintf(p.umap, sizeof p.umap, "%u %u 1\n", (unsigned)geteuid(), (unsigned)geteuid());
  snprintf(p.gmap, sizeof p.gmap, "%u %u 1\n", (unsigned)getegid(), (unsigned)getegid());
  /* The child runs on this buffer while we are suspended (CLONE_VFORK). */
  _Alignas(16) char stack[NS_PROBE_STACK];
  pid_t pid = clone(ns_probe_child, stack + NS_PROBE_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &p);
  if (pid < 0)
    return;
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(st))
    return;
  int code = WEXITSTATUS(st);
  *userns = code == 0 || code == 1;
  *netns = code == 0;
}

void sandbox_features_probe(policy_features *out) {
  memset(out, 0, sizeof *out);
  out->landlock_abi = probe_landlock();
  out->seccomp = probe_seccomp();
  probe_namespaces(&out->user_namespaces, &out->network_namespaces);
  sbx_test_features(out); /* test builds only */
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static policy_features g_features;

static void probe_once(void) { sandbox_features_probe(&g_features); }

void sandbox_features_cached(policy_features *out) {
  pthread_once(&g_once, probe_once);
  *out = g_features;
}
