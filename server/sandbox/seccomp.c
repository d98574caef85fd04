/* The seccomp filter, built with libseccomp in the parent and exported as a
 * classic BPF program, so the child only has to hand the instructions to the
 * kernel (no allocation after clone).
 *
 * Default action ALLOW; the listed calls fail with EPERM (ENOSYS for clone3).
 * It is a second layer: the namespaces, the mount view, Landlock and the
 * dropped capabilities already stop most of these. Its job is to close the
 * kernel attack surface that none of those cover (io_uring, bpf, perf,
 * keyrings, userfaultfd), to keep the command from building namespaces of
 * its own, and to stop terminal injection (TIOCSTI, TIOCLINUX). */
#include "server/sandbox/sandbox_int.h"

#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sched.h>

#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

static const char *const deny_eperm[] = {
    /* other processes' memory and the kernel's debugging interfaces */
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
    /* io_uring performs socket/file operations without passing through the
     * syscalls filtered below */
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    /* large kernel attack surface with no use for a build or a shell */
    "bpf", "perf_event_open", "kexec_load", "kexec_file_load", "userfaultfd",
    "keyctl", "add_key", "request_key",
    /* the view of the filesystem is fixed once the command runs */
    "mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr", "open_by_handle_at",
    /* no new namespaces, no joining others */
    "setns", "unshare",
};

static int add_simple(scmp_filter_ctx ctx, const char *name, uint32_t action) {
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR)
    return 0; /* not a syscall on this architecture */
  return seccomp_rule_add(ctx, action, nr, 0);
}

/* Deny `nr` when argument `arg` (a 32-bit int in the kernel) is not in
 * allowed[] (sorted, small values). libseccomp compares 64-bit values, so
 * "greater than the largest allowed value" also catches garbage in the
 * upper half of the register. */
static int deny_domain_not_in(scmp_filter_ctx ctx, int nr, unsigned arg, const unsigned *allowed,
                              size_t n) {
  unsigned next = 0;
  for (size_t i = 0; i < n; i++) {
    for (unsigned v = next; v < allowed[i]; v++) {
      int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1,
                                SCMP_CMP(arg, SCMP_CMP_EQ, (scmp_datum_t)v, 0));
      if (rc < 0)
        return rc;
    }
    next = allowed[i] + 1;
  }
  return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1,
                          SCMP_CMP(arg, SCMP_CMP_GT, (scmp_datum_t)allowed[n - 1], 0));
}

/* Landlock alone (no mount namespace, used only where user namespaces are
 * unavailable) does not cover metadata: chmod (setuid bits included),
 * chown, timestamps and extended attributes of any file the command can
 * see would change on the host. Nor SysV IPC, which lives in the host's IPC
 * namespace. None of these calls can be limited to the writable roots by
 * seccomp (their path or fd is opaque to it), so they fail everywhere: the
 * sandbox is stricter than the policy, never weaker. */
static const char *const deny_landlock_only[] = {
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
    "utime", "utimes", "utimensat", "futimesat", "setxattr", "lsetxattr", "fsetxattr",
    "setxattrat", "removexattr", "lremovexattr", "fremovexattr", "removexattrat",
    "shmget", "shmat", "shmctl", "shmdt", "semget", "semop", "semtimedop", "semctl",
    "msgget", "msgsnd", "msgrcv", "msgctl", "ipc", "mknod", "mknodat",
};

/* Calls newer than some libseccomp releases: when the library does not
 * know the name, the number (the same on every architecture for calls added
 * since 5.x) is used directly. */
static const struct {
  const char *name;
  int nr;
} recent_calls[] = {{"fchmodat2", 452}, {"setxattrat", 463}, {"removexattrat", 466},
                    {"openat2", 437}};

static int add_deny_any(scmp_filter_ctx ctx, const char *name, uint32_t action) {
  if (seccomp_syscall_resolve_name(name) != __NR_SCMP_ERROR)
    return add_simple(ctx, name, action);
  for (size_t i = 0; i < sizeof recent_calls / sizeof recent_calls[0]; i++)
    if (strcmp(recent_calls[i].name, name) == 0)
      return seccomp_rule_add(ctx, action, recent_calls[i].nr, 0);
  return 0;
}

/* Set-user-ID (and, for a command running as uid 0, set-group-ID) bits:
 * a file the command makes setuid in a writable root is setuid on the host,
 * where the mount is not nosuid: a root server's sandbox would plant a
 * setuid-root binary for anyone to run. The mode argument of each call that
 * sets one, by position. openat2 carries its mode in memory, which seccomp
 * cannot read: ENOSYS, and callers fall back to openat. */
static const struct {
  const char *name;
  unsigned arg;
} mode_calls[] = {{"chmod", 1},  {"fchmod", 1}, {"fchmodat", 2}, {"fchmodat2", 2}, {"open", 2},
                  {"openat", 3}, {"creat", 1},  {"mknod", 1},    {"mknodat", 2}};

static int deny_setid_modes(scmp_filter_ctx ctx, bool setgid_too) {
  static const scmp_datum_t bits[] = {04000, 02000};
  int rc;
  for (size_t i = 0; i < sizeof mode_calls / sizeof mode_calls[0]; i++) {
    int nr = seccomp_syscall_resolve_name(mode_calls[i].name);
    if (nr == __NR_SCMP_ERROR) {
      for (size_t k = 0; k < sizeof recent_calls / sizeof recent_calls[0]; k++)
        if (strcmp(recent_calls[k].name, mode_calls[i].name) == 0)
          nr = recent_calls[k].nr;
      if (nr == __NR_SCMP_ERROR)
        continue;
    }
    for (size_t b = 0; b < (setgid_too ? 2u : 1u); b++) {
      struct scmp_arg_cmp c = SCMP_CMP(mode_calls[i].arg, SCMP_CMP_MASKED_EQ, bits[b], bits[b]);
      if ((rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1, &c)) < 0)
        return rc;
    }
  }
  return add_deny_any(ctx, "openat2", SCMP_ACT_ERRNO(ENOSYS));
}

static int build_rules(scmp_filter_ctx ctx, policy_net_mode net, bool landlock_only,
                       bool as_root) {
  int rc;
  if ((rc = deny_setid_modes(ctx, as_root)) < 0)
    return rc;
  for (size_t i = 0; i < sizeof deny_eperm / sizeof deny_eperm[0]; i++)
    if ((rc = add_simple(ctx, deny_eperm[i], SCMP_ACT_ERRNO(EPERM))) < 0)
      return rc;
  if (landlock_only) {
    for (size_t i = 0; i < sizeof deny_landlock_only / sizeof deny_landlock_only[0]; i++)
      if ((rc = add_deny_any(ctx, deny_landlock_only[i], SCMP_ACT_ERRNO(EPERM))) < 0)
        return rc;
    /* inode flags (chattr: append-only, noatime, ...) and fsxattrs, which
     * the owner sets through an fd opened read-only */
    static const unsigned long flag_ioctls[] = {FS_IOC_SETFLAGS, FS_IOC32_SETFLAGS,
                                                FS_IOC_FSSETXATTR};
    for (size_t i = 0; i < sizeof flag_ioctls / sizeof flag_ioctls[0]; i++) {
      rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                            SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, flag_ioctls[i]));
      if (rc < 0)
        return rc;
    }
  }

  /* clone3 passes its flags in memory, which seccomp cannot read: ENOSYS
   * makes glibc fall back to clone, whose flags are checked here. */
  if ((rc = add_simple(ctx, "clone3", SCMP_ACT_ERRNO(ENOSYS))) < 0)
    return rc;
  static const unsigned long ns_flags[] = {CLONE_NEWNS,  CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
                                           CLONE_NEWUSER, CLONE_NEWPID,   CLONE_NEWNET};
  for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0]; i++) {
    /* flags are argument 0 of clone on x86_64 and aarch64 */
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
    if (rc < 0)
      return rc;
  }

  /* Terminal injection: the request is an unsigned int; compare the low 32
   * bits only so garbage in the upper half cannot slip past. */
  static const unsigned long tty_cmds[] = {TIOCSTI, TIOCLINUX};
  for (size_t i = 0; i < 2; i++) {
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                          SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, tty_cmds[i]));
    if (rc < 0)
      return rc;
  }

  /* Socket families: the network namespace already confines IP; these
   * rules shut netlink, packet, vsock, bluetooth, ... (and with no network
   * every IP family). */
  static const unsigned fam_ip[] = {AF_UNIX, AF_INET, AF_INET6};
  static const unsigned fam_unix[] = {AF_UNIX};
  static const unsigned fam_inet[] = {AF_INET, AF_INET6};
  if (net == POLICY_NET_NONE)
    rc = deny_domain_not_in(ctx, SCMP_SYS(socket), 0, fam_unix, 1);
  else if (net == POLICY_NET_PROXY)
    /* Proxy mode needs connect() (to the proxy's listeners on lo), so the
     * way out by path that mode none closes with "no connect()" is closed
     * here with "no AF_UNIX socket()": socketpair() stays for plumbing. */
    rc = deny_domain_not_in(ctx, SCMP_SYS(socket), 0, fam_inet, 2);
  else
    rc = deny_domain_not_in(ctx, SCMP_SYS(socket), 0, fam_ip, 3);
  if (rc < 0)
    return rc;
  if ((rc = deny_domain_not_in(ctx, SCMP_SYS(socketpair), 0, fam_unix, 1)) < 0)
    return rc;
  if (net == POLICY_NET_PROXY) { /* datagram socketpairs send by path too (below) */
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socketpair), 1,
                          SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_DGRAM));
    if (rc < 0)
      return rc;
  }
  if (net == POLICY_NET_NONE) {
    /* With no network the only sockets left are AF_UNIX, and those reach
     * outside the sandbox by path: a host daemon's socket (docker, dbus,
     * ssh-agent) is visible wherever the view can read, a read-only mount
     * does not stop connect(), and Landlock cannot restrict it (as of ABI
     * 7). So no connect() at all, as Codex does for restricted network;
     * socketpair() still works for a command's own plumbing. Datagram
     * sockets can send to any path by address (sendmsg's msg_name, which
     * seccomp cannot read, even from a socketpair), so none of those. */
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(connect), 0)) < 0)
      return rc;
    static const int dgram_calls[2] = {SCMP_SYS(socket), SCMP_SYS(socketpair)};
    for (size_t i = 0; i < 2; i++) {
      rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), dgram_calls[i], 1,
                            SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_DGRAM));
      if (rc < 0)
        return rc;
    }
  }
  /* raw sockets (and the obsolete SOCK_PACKET) in any family; the type
   * carries SOCK_NONBLOCK/SOCK_CLOEXEC above the low 4 bits */
  static const unsigned raw_types[] = {SOCK_RAW, SOCK_PACKET};
  for (size_t i = 0; i < 2; i++) {
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
                          SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, raw_types[i]));
    if (rc < 0)
      return rc;
  }
  return 0;
}

int sbx_seccomp_build(policy_net_mode net, bool landlock_only, bool as_root,
                      struct sock_filter **out, unsigned short *n, char **reason) {
  *out = NULL;
  *n = 0;
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) {
    if (reason)
      *reason = strdup("seccomp_init failed");
    return -ENOMEM;
  }
  int rc = build_rules(ctx, net, landlock_only, as_root);
  /* The filter lives in the command only; make sure libseccomp does not try
   * to synchronize threads or set no_new_privs itself (we do it, in order). */
  if (rc == 0)
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  int mfd = -1;
  if (rc == 0) {
    mfd = memfd_create("warden-seccomp", MFD_CLOEXEC);
    if (mfd < 0)
      rc = -errno;
  }
  if (rc == 0)
    rc = seccomp_export_bpf(ctx, mfd);
  seccomp_release(ctx);
  off_t size = 0;
  if (rc == 0) {
    size = lseek(mfd, 0, SEEK_END);
    if (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0 ||
        size / (off_t)sizeof(struct sock_filter) > 4096)
      rc = -EINVAL;
  }
  struct sock_filter *prog = NULL;
  if (rc == 0) {
    prog = malloc((size_t)size);
    if (!prog)
      rc = -ENOMEM;
  }
  if (rc == 0 && pread(mfd, prog, (size_t)size, 0) != size)
    rc = -EIO;
  if (mfd >= 0)
    close(mfd);
  if (rc < 0) {
    free(prog);
    if (reason) {
      char buf[128];
      snprintf(buf, sizeof buf, "cannot build the seccomp filter: %s", strerror(-rc));
      *reason = strdup(buf);
    }
    return rc;
  }
  *out = prog;
  *n = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
  return 0;
}
