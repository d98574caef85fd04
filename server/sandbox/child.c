/* Child side: runs between clone() and execve() in a copy of a possibly
 * multithreaded server, so only async-signal-safe calls: raw system calls,
 * no malloc, no stdio, no locks. Everything variable was computed by
 * sandbox_spec_build() in the parent.
 *
 * Why a new root under a tmpfs and pivot_root (bubblewrap's way) rather than
 * remounting the host tree in place: the host tree stays reachable,
 * unmodified, at /oldroot while the view is assembled at /newroot, so every
 * bind takes its source from the real host path whatever was mounted before
 * it; a restricted-read view starts empty instead of having to hide
 * everything else; and at the end the host tree is detached entirely, so
 * nothing outside the view remains reachable (not even under an overmount).
 */
#include "server/sandbox/sandbox_int.h"
#include "server/sandbox/testhook.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SECBIT_NOROOT
#define SECBIT_NOROOT (1 << 0)
#define SECBIT_NOROOT_LOCKED (1 << 1)
#define SECBIT_NO_SETUID_FIXUP (1 << 2)
#define SECBIT_NO_SETUID_FIXUP_LOCKED (1 << 3)
#define SECBIT_KEEP_CAPS_LOCKED (1 << 5)
#define SECBIT_NO_CAP_AMBIENT_RAISE (1 << 6)
#define SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED (1 << 7)
#endif

/* ---- async-signal-safe helpers ---- */

static size_t s_len(const char *s) {
  size_t n = 0;
  while (s[n])
    n++;
  return n;
}

static int write_file(const char *path, const char *data) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  size_t n = s_len(data);
  ssize_t w = write(fd, data, n);
  int e = errno;
  close(fd);
  if (w < 0)
    return -e;
  return w == (ssize_t)n ? 0 : -EIO;
}

static int open_path(const char *path, bool nofollow) {
  int fd;
  if (nofollow) {
    struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS};
    fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
  } else {
    fd = open(path, O_PATH | O_CLOEXEC);
  }
  return fd < 0 ? -errno : fd;
}

/* mkdir -p for a path inside a tmpfs of ours; the last component becomes an
 * empty file when `file`. */
static int make_path(const char *path, bool file) {
  char buf[PATH_MAX];
  size_t n = s_len(path);
  if (n >= sizeof buf)
    return -ENAMETOOLONG;
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0')
      continue;
    char save = buf[i];
    buf[i] = '\0';
    int r;
    if (save == '\0' && file) {
      int fd = open(buf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
      r = fd < 0 ? -errno : 0;
      if (fd >= 0)
        close(fd);
    } else {
      r = mkdir(buf, 0755) < 0 ? -errno : 0;
    }
    if (r < 0 && r != -EEXIST)
      return r;
    buf[i] = save;
  }
  return 0;
}

/* Attach the detached mount `tree` at dst. */
static int attach(int tree, const char *dst, bool nofollow, bool create, bool create_file) {
  int dfd = open_path(dst, nofollow);
  if (dfd == -ENOENT && create) {
    int r = make_path(dst, create_file);
    if (r < 0)
      return r;
    dfd = open_path(dst, nofollow);
  }
  if (dfd < 0)
    return dfd;
  int r = move_mount(tree, "", dfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
  r = r < 0 ? -errno : 0;
  close(dfd);
  return r;
}

static int set_attr(int fd, const char *path, unsigned flags, uint64_t set) {
  struct mount_attr a = {.attr_set = set};
  return mount_setattr(fd, path, flags, &a, sizeof a) < 0 ? -errno : 0;
}

/* A recursive copy of src, read-only before it is visible when asked; no
 * setuid and no device nodes either way (the command gets no privileges, and
 * the only devices it needs are in our /dev). */
static int do_bind(const char *src, const char *dst, bool readonly, bool nofollow, bool create,
                   bool create_file, bool optional) {
  int sfd = open_path(src, nofollow);
  if (sfd < 0)
    return (sfd == -ENOENT && optional) ? 0 : sfd;
  int tree = open_tree(sfd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
  int r = tree < 0 ? -errno : 0;
  close(sfd);
  if (r < 0)
    return r;
  uint64_t attrs = MOUNT_ATTR_NOSUID | (readonly ? MOUNT_ATTR_RDONLY : 0);
  /* nodev everywhere (the base bind of the host's / included: a device node
   * outside /dev must not open) but on the single-node binds taken from the
   * host's /dev for our own /dev and for file masks (/dev/null) */
  static const char devp[] = SBX_OLD "/dev/";
  size_t k = 0;
  while (devp[k] && src[k] == devp[k])
    k++;
  if (devp[k] != '\0')
    attrs |= MOUNT_ATTR_NODEV;
  r = set_attr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, attrs);
  if (r == 0)
    r = attach(tree, dst, nofollow, create, create_file);
  close(tree);
  return r;
}

static void octal4(char *out, unsigned mode) {
  out[0] = (char)('0' + ((mode >> 9) & 7));
  out[1] = (char)('0' + ((mode >> 6) & 7));
  out[2] = (char)('0' + ((mode >> 3) & 7));
  out[3] = (char)('0' + (mode & 7));
  out[4] = '\0';
}

static int do_tmpfs(const char *dst, unsigned mode, bool nofollow, bool create, bool scratch) {
  int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
  if (fs < 0)
    return -errno;
  char m[5];
  octal4(m, mode);
  int r = 0;
  if (fsconfig(fs, FSCONFIG_SET_STRING, "mode", m, 0) < 0 ||
      fsconfig(fs, FSCONFIG_SET_STRING, "size", scratch ? SBX_SCRATCH_SIZE : "1m", 0) < 0 ||
      fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    r = -errno;
  int mnt = -1;
  if (r == 0) {
    mnt = fsmount(fs, FSMOUNT_CLOEXEC,
                  MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (scratch ? 0 : MOUNT_ATTR_NOEXEC));
    if (mnt < 0)
      r = -errno;
  }
  close(fs);
  if (r == 0)
    r = attach(mnt, dst, nofollow, create, false);
  if (mnt >= 0)
    close(mnt);
  return r;
}

static void cat3(char *out, size_t n, const char *a, const char *b, const char *c) {
  size_t i = 0;
  for (const char *p = a; p && *p && i + 1 < n; p++)
    out[i++] = *p;
  for (const char *p = b; p && *p && i + 1 < n; p++)
    out[i++] = *p;
  for (const char *p = c; p && *p && i + 1 < n; p++)
    out[i++] = *p;
  out[i] = '\0';
}

/* A fresh procfs: we are pid 1 of a new pid namespace, so it shows only the
 * sandbox's processes. The kernel knobs under it are made read-only, as the
 * command may run as a uid that owns them on the host (root mapped to root). */
static int do_proc(const char *dst, bool create, const char **step) {
  if (create) {
    int r = make_path(dst, false);
    if (r < 0)
      return r;
  }
  if (mount("proc", dst, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
    return -errno;
  static const char *const ro[] = {"/sys", "/sysrq-trigger", "/irq", "/bus"};
  char p[PATH_MAX];
  for (size_t i = 0; i < sizeof ro / sizeof ro[0]; i++) {
    cat3(p, sizeof p, dst, ro[i], NULL);
    *step = "remount /proc subtree read-only";
    int r = do_bind(p, p, true, false, false, false, true);
    if (r < 0)
      return r;
  }
  return 0;
}

/* The command's terminal, when it has one: it lives on the host's devpts,
 * which the view does not contain, so ttyname() (`tty`, ssh, prompts) would
 * find no name for it. Bound at /dev/console, as container runtimes do, it
 * gets a name without exposing any other host terminal. A convenience, not
 * isolation: when the node cannot be found the command runs without it. */
static int bind_console(const char *dst, int tty_fd) {
  char p[PATH_MAX], src[PATH_MAX];
  int r;
  /* The fd's own mount belongs to the server's mount namespace, which
   * open_tree() refuses; name the node by its index on the host's devpts
   * (UNIX98 slaves: majors 136-143, index = (major-136)*256 + minor), take
   * it from our copy of the host tree, and check it is the same device. */
  struct stat a, b;
  if (fstat(tty_fd, &a) < 0)
    return -errno;
  unsigned maj = major(a.st_rdev), min = minor(a.st_rdev);
  if (!S_ISCHR(a.st_mode) || maj < 136 || maj > 143)
    return -ENOTTY;
  char num[16], rev[16];
  unsigned v = (maj - 136) * 256 + min, k = 0;
  do {
    rev[k++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (unsigned i = 0; i < k; i++)
    num[i] = rev[k - 1 - i];
  num[k] = '\0';
  cat3(src, sizeof src, SBX_OLD "/dev/pts/", num, NULL);
  cat3(p, sizeof p, dst, "/console", NULL);
  int sfd = open(src, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (sfd < 0)
    return -errno;
  if (fstat(sfd, &b) < 0 || !S_ISCHR(b.st_mode) || a.st_rdev != b.st_rdev) {
    close(sfd);
    return -ENXIO;
  }
  int tree = open_tree(sfd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
  r = tree < 0 ? -errno : 0;
  close(sfd);
  if (r == 0)
    r = set_attr(tree, "", AT_EMPTY_PATH, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_RDONLY);
  if (r == 0)
    r = attach(tree, p, false, true, true);
  if (tree >= 0)
    close(tree);
  if (r < 0)
    return r;
  return r;
}

/* A minimal /dev: the harmless nodes bound from the host (so the command
 * cannot reach disks or other devices), a private devpts instance (ptys the
 * command opens stay among its own), a private /dev/shm. The pty the command
 * may already run on was opened before clone; its fd keeps working, and
 * /dev/tty reaches it as the controlling terminal. */
static int do_dev(const char *dst, bool create, int tty_fd, const char **step) {
  char p[PATH_MAX], src[PATH_MAX];
  int r;
  if (create && (r = make_path(dst, false)) < 0)
    return r;
  if (mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0)
    return -errno;
  static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
  for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
    cat3(p, sizeof p, dst, "/", nodes[i]);
    cat3(src, sizeof src, SBX_OLD "/dev/", nodes[i], NULL);
    *step = "bind /dev node";
    struct stat st;
    if (stat(src, &st) < 0 || !S_ISCHR(st.st_mode))
      continue;
    /* read-only: a device node stays readable and writable on a read-only
     * mount, but its metadata (chmod, chown, utimes) is the host's and does
     * not change */
    if ((r = make_path(p, true)) < 0 || (r = do_bind(src, p, true, false, false, false, true)) < 0)
      return r;
  }
  /* The command's terminal, when it has one: it lives on the host's devpts,
   * which the view does not contain, so ttyname() (`tty`, ssh, sudo-like
   * prompts) would find no name for it. Bound at /dev/console, as container
   * runtimes do, it gets a name without exposing any other host terminal.
   * The source is the supervisor's own fd, through the host's procfs. */
  if (tty_fd >= 0)
    (void)bind_console(dst, tty_fd);
  *step = "mount /dev/pts";
  cat3(p, sizeof p, dst, "/pts", NULL);
  if (mkdir(p, 0755) < 0)
    return -errno;
  /* No fallback to the host's instance: every terminal of the user lives
   * there (another one could be read and typed into). */
  if (mount("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620") < 0)
    return -errno;
  cat3(p, sizeof p, dst, "/ptmx", NULL);
  if (symlink("pts/ptmx", p) < 0)
    return -errno;
  *step = "mount /dev/shm";
  cat3(p, sizeof p, dst, "/shm", NULL);
  if (mkdir(p, 0755) < 0)
    return -errno;
  if (mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
    return -errno;
  *step = "symlinks in /dev";
  static const char *const links[][2] = {{"/fd", "/proc/self/fd"},
                                         {"/stdin", "/proc/self/fd/0"},
                                         {"/stdout", "/proc/self/fd/1"},
                                         {"/stderr", "/proc/self/fd/2"}};
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
    cat3(p, sizeof p, dst, links[i][0], NULL);
    if (symlink(links[i][1], p) < 0)
      return -errno;
  }
  return 0;
}

static int do_mop(const sbx_mop *m, int tty_fd, const char **step) {
  *step = m->step;
  switch (m->kind) {
  case SBX_MOP_BIND:
  case SBX_MOP_DEVNULL:
    return do_bind(m->src, m->dst, m->readonly, m->nofollow, m->create, m->create_file,
                   m->optional);
  case SBX_MOP_TMPFS:
    return do_tmpfs(m->dst, m->mode, m->nofollow, m->create, m->scratch);
  case SBX_MOP_PROC:
    return do_proc(m->dst, m->create, step);
  case SBX_MOP_DEV:
    return do_dev(m->dst, m->create, tty_fd, step);
  case SBX_MOP_SYMLINK: {
    char parent[PATH_MAX];
    size_t n = s_len(m->dst);
    if (n >= sizeof parent)
      return -ENAMETOOLONG;
    memcpy(parent, m->dst, n + 1);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
      *slash = '\0';
      int r = make_path(parent, false);
      if (r < 0)
        return r;
    }
    return symlink(m->src, m->dst) < 0 && errno != EEXIST ? -errno : 0;
  }
  }
  return -EINVAL;
}

static int lo_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return -errno;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, "lo", 3);
  int r = 0;
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
    r = -errno;
  else if (!(ifr.ifr_flags & IFF_UP)) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
      r = -errno;
  }
  close(s);
  return r;
}

static int listen_loopback(unsigned short port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return -errno;
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 128) < 0) {
    int e = errno;
    close(s);
    return -e;
  }
  return s;
}

static int send_listeners(int chan, const char **step) {
  *step = "proxy listener 127.0.0.1:" "3128";
  int h = listen_loopback(SANDBOX_PROXY_HTTP_PORT);
  if (h < 0)
    return h;
  *step = "proxy listener 127.0.0.1:" "1080";
  int k = listen_loopback(SANDBOX_PROXY_SOCKS_PORT);
  if (k < 0) {
    close(h);
    return k;
  }
  *step = "send proxy listeners";
  char byte = 'P';
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  union {
    char buf[CMSG_SPACE(2 * sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = sizeof u.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(2 * sizeof(int));
  int fds[2] = {h, k};
  memcpy(CMSG_DATA(c), fds, sizeof fds);
  ssize_t n;
  do
    n = sendmsg(chan, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  int r = n < 0 ? -errno : 0;
  close(h);
  close(k);
  return r;
}

int sandbox_child_init(const sandbox_spec *spec, int tty_fd, const char **step) {
  const char *dummy;
  if (!step)
    step = &dummy;
  if (!spec || !spec->enforce || spec->backend != POLICY_BACKEND_NAMESPACES)
    return 0; /* Landlock alone and "none" have nothing to do in the supervisor */
  int r;

  /* 1. Identity. Until the maps are written our uid and gid are the
   * overflow ids: files we create would belong to nobody and the kernel
   * refuses some operations. "deny" for setgroups must come first: an
   * unprivileged process may write gid_map only then (and nobody in here
   * needs to change groups). We map our own ids to themselves, which the
   * kernel allows without privileges in the parent namespace, as root and as
   * any other user alike. */
  if (sbx_test_off(SBX_TEST_USERNS)) goto test_no_userns; /* test builds only */
  if (spec->uid_map[0]) {
    *step = "write /proc/self/setgroups";
    if ((r = write_file("/proc/self/setgroups", "deny")) < 0)
      return r;
    *step = "write /proc/self/uid_map";
    if ((r = write_file("/proc/self/uid_map", spec->uid_map)) < 0)
      return r;
    *step = "write /proc/self/gid_map";
    if ((r = write_file("/proc/self/gid_map", spec->gid_map)) < 0)
      return r;
  }
test_no_userns:

  /* 2. Network, before the filesystem: it does not depend on it, and a
   * failure here is cheaper to report before the mounts. A new network
   * namespace has only a loopback that is down; bring it up so localhost
   * works inside. In proxy mode bind the proxy's listeners here, inside the
   * namespace, and hand them to the server: the command can then reach the
   * proxy and nothing else. */
  if (spec->clone_flags & CLONE_NEWNET) {
    *step = "bring up lo";
    if ((r = lo_up()) < 0)
      return r;
    if (spec->net == POLICY_NET_PROXY) {
      if (spec->proxy_child_fd < 0) {
        *step = "proxy channel";
        return -EBADF;
      }
      r = send_listeners(spec->proxy_child_fd, step);
      close(spec->proxy_child_fd); /* our copy; the command must not inherit it */
      if (r < 0)
        return r;
    }
  }

  if (sbx_test_off(SBX_TEST_MOUNTS)) return 0; /* test builds only */
  /* 3. Cut mount propagation both ways, before any copy is made: nothing
   * we do reaches the host, and nothing mounted on the host later appears in
   * the view (a slave copy would receive it, without our read-only,
   * nosuid and nodev attributes: writable inside a read-only area). The
   * copies made from here on inherit "private". pivot_root also refuses
   * shared mounts. */
  *step = "make / rprivate";
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return -errno;

  /* 4. A tmpfs to stand on, and the first pivot: the tmpfs becomes / and the
   * host tree moves to /oldroot, reachable as it is whatever we mount next
   * (even when a writable root is /tmp, where the tmpfs was mounted). The
   * new root is a bind of a directory of that tmpfs so it is a mount point
   * of its own, as the second pivot_root requires. */
  *step = "mount tmpfs on " SBX_BASE;
  if (mount("tmpfs", SBX_BASE, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k") < 0)
    return -errno;
  *step = "prepare " SBX_NEW;
  if (mkdir(SBX_BASE SBX_NEW, 0755) < 0 || mkdir(SBX_BASE SBX_OLD, 0755) < 0)
    return -errno;
  if (mount(SBX_BASE SBX_NEW, SBX_BASE SBX_NEW, NULL, MS_BIND | MS_REC, NULL) < 0)
    return -errno;
  *step = "pivot_root " SBX_BASE;
  if (syscall(SYS_pivot_root, SBX_BASE, SBX_BASE SBX_OLD) < 0)
    return -errno;
  if (chdir("/") < 0)
    return -errno;

  /* 5. The view, in the order the parent computed (shallow before deep, and
   * at equal depth: readable, /dev and /proc, writable, protected, hidden):
   * every mount lands on top of those that contain it, so the most specific
   * entry wins. Read-only is set on each copy before it is attached, so no
   * writable window exists. */
  for (size_t i = 0; i < spec->n_mops; i++)
    if ((r = do_mop(&spec->mops[i], tty_fd, step)) < 0)
      return r;

  /* 6. Our tmpfs areas (the restricted-read root, /dev, directory masks)
   * were writable while mount points were created in them; make them
   * read-only now, deepest first. */
  for (size_t i = spec->n_mops; i-- > 0;) {
    const sbx_mop *m = &spec->mops[i];
    if (!m->ro_at_end)
      continue;
    *step = m->step;
    int fd = open_path(m->dst, m->nofollow);
    if (fd < 0)
      return fd;
    r = set_attr(fd, "", AT_EMPTY_PATH, MOUNT_ATTR_RDONLY);
    close(fd);
    if (r < 0)
      return r;
  }
  if (spec->root_ro_at_end) {
    *step = "remount " SBX_NEW " read-only";
    if ((r = set_attr(AT_FDCWD, SBX_NEW, 0, MOUNT_ATTR_RDONLY)) < 0)
      return r;
  }

  /* 7. Let go of the host: make the old root private first (a detach would
   * otherwise propagate unmounts to the host's peers), then detach it. */
  *step = "detach " SBX_OLD;
  if (mount(SBX_OLD, SBX_OLD, NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return -errno;
  if (umount2(SBX_OLD, MNT_DETACH) < 0)
    return -errno;

  /* 8. The second pivot makes /newroot the root. pivot_root(".", ".")
   * stacks the old root (the tmpfs) on top of the new one; the fd of the old
   * root lets us get at it and detach it. */
  *step = "pivot_root " SBX_NEW;
  int oldfd = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (oldfd < 0)
    return -errno;
  r = 0;
  if (chdir(SBX_NEW) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || fchdir(oldfd) < 0 ||
      umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
    r = -errno;
  close(oldfd);
  return r;
}

/* ---- sandbox_child_final ---- */

struct ll_ruleset_attr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
  uint64_t scoped;
};

static int ll_add(int rfd, int fd, uint64_t access, uint64_t handled) {
  struct stat st;
  if (fstat(fd, &st) < 0)
    return -errno;
  if (!S_ISDIR(st.st_mode))
    access &= SBX_LL_FILE_RIGHTS;
  access &= handled;
  if (!access)
    return 0;
  struct landlock_path_beneath_attr pb = {.allowed_access = access, .parent_fd = fd};
  return syscall(SYS_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0 ? -errno : 0;
}

static int apply_landlock(const sandbox_spec *spec, const char **step) {
  struct ll_ruleset_attr attr = {.handled_access_fs = spec->ll_handled, .scoped = spec->ll_scoped};
  size_t size = spec->ll_abi >= 6 ? sizeof attr : spec->ll_abi >= 4 ? 16 : 8;
  *step = "landlock_create_ruleset";
  int rfd = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
  if (rfd < 0)
    return -errno;
  int r = 0;
  *step = "landlock_add_rule";
  for (size_t i = 0; i < spec->n_ll && r == 0; i++) {
    int fd = open(spec->ll[i].path, O_PATH | O_CLOEXEC);
    if (fd < 0) {
      if (errno != ENOENT)
        r = -errno;
      continue; /* not in the view: nothing to allow */
    }
    r = ll_add(rfd, fd, spec->ll[i].access, spec->ll_handled);
    close(fd);
  }
  /* The terminal (or /dev/null) the command's stdio is on: reopening it
   * through /dev/stdout or /proc/self/fd must keep working, and a pty slave
   * from before clone lives on the host's devpts, outside every rule. */
  for (int fd = 0; fd < 3 && r == 0; fd++) {
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISCHR(st.st_mode))
      r = ll_add(rfd, fd, SBX_LL_READ_FILE | SBX_LL_WRITE_FILE | SBX_LL_IOCTL_DEV, spec->ll_handled);
  }
  if (r == 0) {
    *step = "landlock_restrict_self";
    if (syscall(SYS_landlock_restrict_self, rfd, 0) < 0)
      r = -errno;
  }
  close(rfd);
  return r;
}

static int drop_caps(uint64_t keep, const char **step) {
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  /* Ambient first: nothing stays ambient but what we keep. The kept ones
   * are raised while the bounding set still has them (capset refuses an
   * inheritable capability outside it), so they survive execve: ambient
   * capabilities are what a non-setuid exec keeps, and SECBIT_NOROOT stops
   * uid 0 from regaining anything else. */
  *step = "prctl PR_CAP_AMBIENT_CLEAR_ALL";
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return -errno;
  if (keep) {
    *step = "capset inheritable";
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &hdr, data) < 0)
      return -errno;
    for (int i = 0; i < 2; i++)
      data[i].inheritable = (uint32_t)(keep >> (32 * i));
    if (syscall(SYS_capset, &hdr, data) < 0)
      return -errno;
    *step = "prctl PR_CAP_AMBIENT_RAISE";
    for (unsigned long cap = 0; cap < 64; cap++)
      if ((keep >> cap) & 1 && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
        return -errno;
  }
  /* Bounding set: what exec could ever grant back (file capabilities, root
   * executing). Needs CAP_SETPCAP: we have it in our user namespace (or as
   * root); a plain unprivileged process without it has nothing to drop that
   * matters, since no_new_privs already stops exec from granting anything. */
  *step = "prctl PR_CAPBSET_DROP";
  for (unsigned long cap = 0; cap < 64; cap++) {
    int in = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (in < 0)
      break; /* past the last capability this kernel knows */
    if (in == 1 && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EPERM)
      return -errno;
  }
  *step = "capset";
  memset(data, 0, sizeof data);
  for (int i = 0; i < 2; i++)
    data[i].effective = data[i].permitted = data[i].inheritable = (uint32_t)(keep >> (32 * i));
  if (syscall(SYS_capset, &hdr, data) < 0)
    return -errno;
  /* Verify: a sandbox that kept other capabilities is not the sandbox we
   * built. */
  if (syscall(SYS_capget, &hdr, data) < 0)
    return -errno;
  for (int i = 0; i < 2; i++) {
    uint32_t k = (uint32_t)(keep >> (32 * i));
    if (data[i].effective != k || data[i].permitted != k || data[i].inheritable != k)
      return -EPERM;
  }
  return 0;
}

int sandbox_child_final(const sandbox_spec *spec, const char **step) {
  const char *dummy;
  if (!step)
    step = &dummy;
  if (!spec || !spec->enforce)
    return 0;
  int r;

  /* 1. no_new_privs first: landlock_restrict_self and an unprivileged
   * seccomp filter both require it (or CAP_SYS_ADMIN, which we are about to
   * drop), and from here on no exec may gain privileges (setuid, file caps). */
  *step = "prctl PR_SET_NO_NEW_PRIVS";
  if (!sbx_test_off(SBX_TEST_NNP) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return -errno;

  /* 2. securebits while CAP_SETPCAP is still held: uid 0 (the server may run
   * as root, mapped to itself) never regains capabilities through exec or
   * setuid. Best effort: an unprivileged Landlock-only run has no
   * CAP_SETPCAP and no root to lock out either. */
  /* With capabilities to keep, ambient raising stays open until they are
   * raised (it needs them in permitted and inheritable, so nothing else can
   * be raised later either). */
  prctl(PR_SET_SECUREBITS,
        SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
            SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
            (spec->keep_caps ? 0
                             : SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED),
        0, 0, 0);

  /* 3. Landlock while the paths of the view can still be opened (the rules
   * are opened O_PATH here, after pivot_root, so they name the inodes the
   * command will see). Not blocked by our seccomp filter either way. */
  if (spec->ll_abi > 0 && !sbx_test_off(SBX_TEST_LANDLOCK) && (r = apply_landlock(spec, step)) < 0)
    return r;

  /* 4. Capabilities, every set. Before seccomp so the filter, which is
   * loaded last, never sees our own setup calls (it does not block
   * prctl/capset today; this keeps it free to do so). */
  if (!sbx_test_off(SBX_TEST_CAPS) && (r = drop_caps(spec->keep_caps, step)) < 0)
    return r;

  /* 5. seccomp last: allowed without CAP_SYS_ADMIN thanks to
   * no_new_privs; the command process is single-threaded, so no TSYNC. */
  *step = "seccomp";
  struct sock_fprog prog = {.len = spec->n_bpf, .filter = spec->bpf};
  if (spec->n_bpf == 0)
    return -EINVAL;
  if (sbx_test_off(SBX_TEST_SECCOMP)) return 0; /* test builds only */
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
    if (errno != ENOSYS)
      return -errno;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
      return -errno;
  }
  return 0;
}
