/* The seccomp filter built by sbx_seccomp_build(), loaded in a forked child
 * for each case: the calls Landlock alone cannot confine fail with EPERM in
 * the Landlock-only fallback (which a kernel with user namespaces never
 * selects, so the protocol tests cannot reach it), and unix sockets are shut
 * in every network mode but full. Each case runs the attempts before and
 * after loading the filter, so a case that cannot fail is caught too. */
#include "server/sandbox/sandbox_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

typedef int (*attempt_fn)(const char *dir);

/* each returns 0 on success, else errno */
static int a_chmod(const char *d) {
  char p[512];
  snprintf(p, sizeof p, "%s/f", d);
  return chmod(p, 0600) < 0 ? errno : 0;
}
static int a_fchmodat2(const char *d) {
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
  char p[512];
  snprintf(p, sizeof p, "%s/f", d);
  if (syscall(SYS_fchmodat2, AT_FDCWD, p, 0640, 0) == 0)
    return 0;
  return errno == ENOSYS ? 0 : errno; /* an old kernel: nothing to deny */
}
static int a_utimensat(const char *d) {
  char p[512];
  snprintf(p, sizeof p, "%s/f", d);
  return utimensat(AT_FDCWD, p, NULL, 0) < 0 ? errno : 0;
}
static int a_chown(const char *d) {
  char p[512];
  snprintf(p, sizeof p, "%s/f", d);
  return chown(p, getuid(), getgid()) < 0 ? errno : 0;
}
static int a_setxattr(const char *d) {
  char p[512];
  snprintf(p, sizeof p, "%s/f", d);
  if (setxattr(p, "user.warden", "x", 1, 0) == 0)
    return 0;
  return errno == ENOTSUP ? 0 : errno; /* the file system has no user xattrs */
}
static int a_setflags(const char *d) {
  char p[512];
  snprintf(p, sizeof p, "%s/f", d);
  int fd = open(p, O_RDONLY);
  if (fd < 0)
    return errno;
  int flags = 0, r = 0;
  if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0)
    r = -1; /* no inode flags on this file system: nothing to deny */
  else if (ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0)
    r = errno;
  close(fd);
  return r < 0 ? 0 : r;
}
static int a_shmget(const char *d) {
  (void)d;
  int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
  if (id < 0)
    return errno;
  shmctl(id, IPC_RMID, NULL);
  return 0;
}
static int a_unix_socket(const char *d) {
  (void)d;
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  if (s < 0)
    return errno;
  close(s);
  return 0;
}
static int a_unix_connect(const char *d) {
  (void)d;
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  if (s < 0)
    return errno;
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s/none.sock", d);
  int r = connect(s, (struct sockaddr *)&a, sizeof a) < 0 ? errno : 0;
  close(s);
  return r == ENOENT || r == ECONNREFUSED ? 0 : r; /* the call was made */
}
static int a_pair_dgram(const char *d) {
  (void)d;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) < 0)
    return errno;
  close(sv[0]);
  close(sv[1]);
  return 0;
}
static int a_pair_stream(const char *d) {
  (void)d;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
    return errno;
  close(sv[0]);
  close(sv[1]);
  return 0;
}
static int a_inet(const char *d) {
  (void)d;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0)
    return errno;
  close(s);
  return 0;
}

typedef struct expect {
  const char *name;
  attempt_fn fn;
  int want; /* errno after the filter: 0 allowed, EPERM denied */
} expect;

/* Run every attempt in a child: before the filter all must succeed, after
 * it each must give `want`. Returns a message on mismatch. */
static void run_case_as(policy_net_mode net, bool landlock_only, bool as_root, const expect *ex,
                        size_t n) {
  struct sock_filter *bpf = NULL;
  unsigned short nbpf = 0;
  char *reason = NULL;
  assert_int_equal(sbx_seccomp_build(net, landlock_only, as_root, &bpf, &nbpf, &reason), 0);
  char dir[] = "/tmp/warden-seccomp-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char f[512];
  snprintf(f, sizeof f, "%s/f", dir);
  int fd = open(f, O_WRONLY | O_CREAT, 0644);
  assert_true(fd >= 0);
  close(fd);
  int pipefd[2];
  assert_int_equal(pipe(pipefd), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(pipefd[0]);
    char msg[256] = "";
    for (size_t i = 0; i < n && !msg[0]; i++) {
      int r = ex[i].fn(dir);
      if (r != 0)
        snprintf(msg, sizeof msg, "baseline %s failed: %s", ex[i].name, strerror(r));
    }
    struct sock_fprog prog = {.len = nbpf, .filter = bpf};
    if (!msg[0] && (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
                    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0))
      snprintf(msg, sizeof msg, "cannot load the filter: %s", strerror(errno));
    for (size_t i = 0; i < n && !msg[0]; i++) {
      int r = ex[i].fn(dir);
      if (r != ex[i].want)
        snprintf(msg, sizeof msg, "%s: got %s, want %s", ex[i].name, r ? strerror(r) : "success",
                 ex[i].want ? strerror(ex[i].want) : "success");
    }
    if (write(pipefd[1], msg, strlen(msg)) < 0)
      _exit(3);
    _exit(msg[0] ? 1 : 0);
  }
  close(pipefd[1]);
  char buf[257] = "";
  ssize_t got = read(pipefd[0], buf, sizeof buf - 1);
  buf[got > 0 ? got : 0] = '\0';
  close(pipefd[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  unlink(f);
  rmdir(dir);
  free(bpf);
  free(reason);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    fail_msg("%s", buf[0] ? buf : "the child died");
}

static void run_case(policy_net_mode net, bool landlock_only, const expect *ex, size_t n) {
  run_case_as(net, landlock_only, false, ex, n);
}

static int a_chmod_suid(const char *d) {
  char p[512];
  snprintf(p, sizeof p, "%s/f", d);
  return chmod(p, 04755) < 0 ? errno : 0;
}
static int a_chmod_sgid(const char *d) {
  char p[512];
  snprintf(p, sizeof p, "%s/f", d);
  return chmod(p, 02755) < 0 ? errno : 0;
}
static int a_fchmodat_suid(const char *d) {
  char p[512];
  snprintf(p, sizeof p, "%s/f", d);
  return fchmodat(AT_FDCWD, p, 04700, 0) < 0 ? errno : 0;
}
static int a_creat_suid(const char *d) {
  char p[512];
  snprintf(p, sizeof p, "%s/g", d);
  unlink(p);
  int fd = openat(AT_FDCWD, p, O_WRONLY | O_CREAT | O_EXCL, 04755);
  if (fd < 0)
    return errno;
  close(fd);
  unlink(p);
  return 0;
}
static int a_chmod_plain(const char *d) {
  char p[512];
  snprintf(p, sizeof p, "%s/f", d);
  return chmod(p, 0755) < 0 ? errno : 0;
}

static void test_no_setuid_bits(void **state) {
  (void)state;
  const expect ex[] = {{"chmod u+s", a_chmod_suid, EPERM},
                       {"fchmodat u+s", a_fchmodat_suid, EPERM},
                       {"create u+s", a_creat_suid, EPERM},
                       {"chmod g+s", a_chmod_sgid, 0},
                       {"chmod plain", a_chmod_plain, 0}};
  run_case(POLICY_NET_FULL, false, ex, sizeof ex / sizeof ex[0]);
}

static void test_no_setgid_bits_as_root(void **state) {
  (void)state;
  const expect ex[] = {{"chmod u+s", a_chmod_suid, EPERM},
                       {"chmod g+s", a_chmod_sgid, EPERM},
                       {"chmod plain", a_chmod_plain, 0}};
  run_case_as(POLICY_NET_NONE, false, true, ex, sizeof ex / sizeof ex[0]);
}

static void test_landlock_only_metadata(void **state) {
  (void)state;
  const expect ex[] = {{"chmod", a_chmod, EPERM},         {"fchmodat2", a_fchmodat2, EPERM},
                       {"utimensat", a_utimensat, EPERM}, {"chown", a_chown, EPERM},
                       {"setxattr", a_setxattr, EPERM},   {"setflags", a_setflags, EPERM},
                       {"inet", a_inet, 0}};
  run_case(POLICY_NET_FULL, true, ex, sizeof ex / sizeof ex[0]);
}

static void test_landlock_only_sysv(void **state) {
  (void)state;
  const expect ex[] = {{"shmget", a_shmget, EPERM}};
  run_case(POLICY_NET_FULL, true, ex, 1);
}

static void test_namespaces_keep_metadata(void **state) {
  (void)state;
  /* with a mount namespace the read-only view stops these, not seccomp:
   * a command's own files stay chmod-able */
  const expect ex[] = {{"chmod", a_chmod, 0}, {"utimensat", a_utimensat, 0}, {"shmget", a_shmget, 0}};
  run_case(POLICY_NET_FULL, false, ex, sizeof ex / sizeof ex[0]);
}

static void test_proxy_no_unix(void **state) {
  (void)state;
  const expect ex[] = {{"unix socket", a_unix_socket, EPERM},
                       {"unix dgram pair", a_pair_dgram, EPERM},
                       {"unix stream pair", a_pair_stream, 0},
                       {"inet", a_inet, 0}};
  run_case(POLICY_NET_PROXY, false, ex, sizeof ex / sizeof ex[0]);
}

static void test_none_no_connect(void **state) {
  (void)state;
  const expect ex[] = {{"unix connect", a_unix_connect, EPERM},
                       {"unix dgram pair", a_pair_dgram, EPERM},
                       {"unix stream pair", a_pair_stream, 0},
                       {"inet", a_inet, EPERM}};
  run_case(POLICY_NET_NONE, false, ex, sizeof ex / sizeof ex[0]);
}

static void test_full_unix_allowed(void **state) {
  (void)state;
  const expect ex[] = {{"unix connect", a_unix_connect, 0}, {"unix dgram pair", a_pair_dgram, 0}};
  run_case(POLICY_NET_FULL, false, ex, sizeof ex / sizeof ex[0]);
}

int main(int argc, char **argv) {
  static const struct CMUnitTest all[] = {
      cmocka_unit_test(test_landlock_only_metadata), cmocka_unit_test(test_landlock_only_sysv),
      cmocka_unit_test(test_namespaces_keep_metadata), cmocka_unit_test(test_proxy_no_unix),
      cmocka_unit_test(test_none_no_connect), cmocka_unit_test(test_full_unix_allowed),
      cmocka_unit_test(test_no_setuid_bits), cmocka_unit_test(test_no_setgid_bits_as_root)};
  if (argc > 1) {
    static char filter[128]; /* cmocka keeps the pointer */
    snprintf(filter, sizeof filter, "test_%s", argv[1]);
    cmocka_set_test_filter(filter);
  }
  return cmocka_run_group_tests(all, NULL, NULL);
}
