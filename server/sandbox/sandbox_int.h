/* server/sandbox internals shared by spec.c (parent side), child.c (child
 * side), seccomp.c and features.c. Not part of the public surface. */
#ifndef WARDEN_SANDBOX_INT_H
#define WARDEN_SANDBOX_INT_H

#include "server/sandbox/sandbox.h"

#include <linux/filter.h>
#include <stdint.h>
#include <sys/types.h>

/* Where the child builds the new root (see child.c): the host tree is at
 * SBX_OLD after the first pivot, the new root is assembled at SBX_NEW. */
#define SBX_BASE "/tmp"
#define SBX_OLD "/oldroot"
#define SBX_NEW "/newroot"
/* Size limit of a scratch /tmp (when no state directory can hold the
 * workspace's private /tmp): a share of RAM, as tmpfs counts it. */
#define SBX_SCRATCH_SIZE "25%"

/* ---- Landlock constants the system headers (Debian 12: 6.1) may lack ---- */
#define SBX_LL_EXECUTE (1ULL << 0)
#define SBX_LL_WRITE_FILE (1ULL << 1)
#define SBX_LL_READ_FILE (1ULL << 2)
#define SBX_LL_READ_DIR (1ULL << 3)
#define SBX_LL_REMOVE_DIR (1ULL << 4)
#define SBX_LL_REMOVE_FILE (1ULL << 5)
#define SBX_LL_MAKE_CHAR (1ULL << 6)
#define SBX_LL_MAKE_DIR (1ULL << 7)
#define SBX_LL_MAKE_REG (1ULL << 8)
#define SBX_LL_MAKE_SOCK (1ULL << 9)
#define SBX_LL_MAKE_FIFO (1ULL << 10)
#define SBX_LL_MAKE_BLOCK (1ULL << 11)
#define SBX_LL_MAKE_SYM (1ULL << 12)
#define SBX_LL_REFER (1ULL << 13)    /* ABI 2 */
#define SBX_LL_TRUNCATE (1ULL << 14) /* ABI 3 */
#define SBX_LL_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#define SBX_LL_SCOPE_ABSTRACT_UNIX (1ULL << 0) /* ABI 6 */
#define SBX_LL_SCOPE_SIGNAL (1ULL << 1)        /* ABI 6 */

#define SBX_LL_READ (SBX_LL_EXECUTE | SBX_LL_READ_FILE | SBX_LL_READ_DIR)
/* The rights a rule on a non-directory may carry. */
#define SBX_LL_FILE_RIGHTS \
  (SBX_LL_EXECUTE | SBX_LL_WRITE_FILE | SBX_LL_READ_FILE | SBX_LL_TRUNCATE | SBX_LL_IOCTL_DEV)
#define SBX_LL_ALL ((1ULL << 16) - 1)
#define SBX_LANDLOCK_MAX_ABI 7

/* One step of building the new root, in order. Every path is precomputed in
 * the parent ("/newroot/work/ws", "/oldroot/work/ws"). */
typedef enum sbx_mop_kind {
  SBX_MOP_BIND,    /* recursive clone of src attached at dst (optionally read-only) */
  SBX_MOP_TMPFS,   /* a fresh tmpfs at dst: mask of a directory, made read-only at the end */
  SBX_MOP_DEVNULL, /* /dev/null bound read-only at dst: mask of a file */
  SBX_MOP_PROC,    /* fresh procfs at dst (we are pid 1 of a new pid namespace) */
  SBX_MOP_DEV,     /* minimal /dev at dst */
  SBX_MOP_SYMLINK, /* a symlink at dst (in our restricted root) to the text in src */
} sbx_mop_kind;

typedef struct sbx_mop {
  sbx_mop_kind kind;
  char *src;       /* BIND: SBX_OLD + host path */
  char *dst;       /* SBX_NEW + path */
  char *step;      /* "bind /work/ws", for error reports */
  bool readonly;   /* BIND: read-only, recursively, before it becomes visible */
  bool nofollow;   /* resolve src and dst without symlinks (inside writable roots) */
  bool create;     /* dst lies in a tmpfs of ours: create it when missing */
  bool create_file;/* ... as an empty file, else as a directory */
  bool optional;   /* src vanished since the build: skip instead of failing */
  unsigned mode;   /* TMPFS: mode of its root */
  bool ro_at_end;  /* TMPFS/DEV: made read-only once everything beneath is mounted */
  bool scratch;    /* TMPFS: a writable scratch /tmp (exec allowed, SBX_SCRATCH_SIZE) */
} sbx_mop;

/* One Landlock rule: path as seen inside the sandbox, opened O_PATH by the
 * command process. */
typedef struct sbx_llrule {
  char *path;
  uint64_t access;
} sbx_llrule;

struct sandbox_spec {
  bool enforce;             /* false: backend "none", the child functions do nothing */
  policy_backend backend;   /* what is enforced: NONE, LANDLOCK or NAMESPACES */
  policy_net_mode net;
  unsigned long clone_flags;

  /* namespaces; uid_map[0] == '\0': no user namespace (a root server) */
  char uid_map[48];
  char gid_map[48];
  sbx_mop *mops;
  size_t n_mops;
  bool restricted_root;     /* new root is a tmpfs (restricted read) */
  bool root_ro_at_end;      /* ... made read-only at the end (nothing mounted over it) */

  /* Landlock (second layer for namespaces; the only layer for landlock) */
  int ll_abi;               /* 0: not applied */
  uint64_t ll_handled;
  uint64_t ll_scoped;
  sbx_llrule *ll;
  size_t n_ll;

  /* capabilities the command keeps (bit = CAP_*): CAP_DAC_OVERRIDE and
   * CAP_FOWNER for a root server, so writable roots are writable whoever
   * owns their files; confined by the mounts and Landlock */
  uint64_t keep_caps;

  /* seccomp */
  struct sock_filter *bpf;
  unsigned short n_bpf;

  char **env;               /* NULL-terminated */

  /* host paths our masks sit on, held in the registry (spec.c) until
   * cleanup_host: stubs we created and existing possible placeholders */
  char **stubs;
  size_t n_stubs;
  bool cleaned;

  /* proxy channel */
  int proxy_child_fd;
  int proxy_server_fd;
};

/* spec.c: build; dry = no host side effects (no mount point stubs), for
 * sandbox_refresh(). */
int sbx_spec_build(const policy_plan *plan, const sandbox_build_opts *opts, bool dry,
                   sandbox_spec **out, char **reason);

/* seccomp.c: the filter for `net` exported as classic BPF (malloc'd);
 * landlock_only adds the calls Landlock alone cannot confine; as_root (the
 * command runs as uid 0) also denies set-group-ID bits. */
int sbx_seccomp_build(policy_net_mode net, bool landlock_only, bool as_root,
                      struct sock_filter **out, unsigned short *n, char **reason);

/* ---- placeholders (spec.c) and the janitor (janitor.c) ---- */

/* Replay the placeholder records in dir (<state>/v<N>/placeholders) whose
 * server is gone, as the first sandboxed build of a process does. Creates
 * nothing. */
void sbx_placeholders_replay(const char *dir);
/* Remove the placeholder at path when it is still the one made (dev, ino),
 * still empty and no other process holds it. 0 (removed, or nothing to
 * remove), or -EBUSY while another process holds it. */
int sbx_placeholder_remove(const char *path, bool dir, dev_t dev, ino_t ino);
/* Start the janitor (dir: the records' directory, shown in its command
 * line). 0, -EALREADY, -ENOTSUP (sandbox_janitor_allow() was not called),
 * or a negative errno (then only the next start's replay removes a killed
 * server's placeholders). */
int sbx_janitor_start(const char *dir);
/* Tell the janitor: the directory of this server's placeholder record; a
 * placeholder just made. */
void sbx_janitor_note_dir(const char *dir);
void sbx_janitor_note_stub(const char *path, bool dir, dev_t dev, ino_t ino);

/* child.c helpers also used by setup.c tests */
const char *sbx_net_name(policy_net_mode m);
const char *sbx_backend_name(policy_backend b);

#endif
