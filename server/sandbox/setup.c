/* The sandbox state directory: the setup marker behind sandbox/readiness and
 * the workspace records of sandbox/refresh. Plain files, written with a
 * temporary name and rename() so a crash leaves the old file or the new. */
#include "server/sandbox/sandbox_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MARKER_NAME "setup.json"
#define WORKSPACES_NAME "workspaces.json"
/* A marker or workspace file larger than this is not ours: treat as absent. */
#define STATE_FILE_MAX (1024 * 1024)

char *sandbox_state_dir(const char *configured) {
  char buf[PATH_MAX];
  const char *x = getenv("XDG_STATE_HOME");
  const char *home = getenv("HOME");
  if (configured && *configured)
    snprintf(buf, sizeof buf, "%s", configured);
  else if (x && x[0] == '/')
    snprintf(buf, sizeof buf, "%s/warden", x);
  else if (home && home[0] == '/')
    snprintf(buf, sizeof buf, "%s/.local/state/warden", home);
  else
    return NULL;
  return strdup(buf);
}

static int mkdirs(const char *path, mode_t leaf_mode, bool *created) {
  char buf[PATH_MAX];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof buf)
    return -ENAMETOOLONG;
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0')
      continue;
    char save = buf[i];
    buf[i] = '\0';
    if (mkdir(buf, save ? 0755 : leaf_mode) == 0) {
      if (!save && created)
        *created = true;
    } else if (errno != EEXIST) {
      return -errno;
    }
    buf[i] = save;
  }
  struct stat st;
  if (stat(path, &st) < 0)
    return -errno;
  return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

char *sandbox_state_vdir(const char *state_dir, bool create, bool *created, int *err) {
  char buf[PATH_MAX];
  if (created)
    *created = false;
  if (!state_dir || state_dir[0] != '/') {
    *err = -EINVAL;
    return NULL;
  }
  if ((size_t)snprintf(buf, sizeof buf, "%s/v%d", state_dir, SANDBOX_SETUP_VERSION) >= sizeof buf) {
    *err = -ENAMETOOLONG;
    return NULL;
  }
  if (create) {
    int r = mkdirs(buf, 0700, created);
    if (r < 0) {
      *err = r;
      return NULL;
    }
  }
  char *p = strdup(buf);
  if (!p)
    *err = -ENOMEM;
  return p;
}

json_t *sandbox_setup_settings(const policy_features *f, const char *version) {
  return json_pack("{s:s,s:i,s:{s:i,s:b,s:b,s:b},s:{s:i,s:i}}", "version", version,
                   "setupVersion", SANDBOX_SETUP_VERSION, "features", "landlockAbi",
                   f->landlock_abi, "userNamespaces", f->user_namespaces, "networkNamespaces",
                   f->network_namespaces, "seccomp", f->seccomp, "proxy", "httpPort",
                   SANDBOX_PROXY_HTTP_PORT, "socksPort", SANDBOX_PROXY_SOCKS_PORT);
}

static int join(char *out, size_t n, const char *dir, const char *name) {
  return (size_t)snprintf(out, n, "%s/%s", dir, name) >= n ? -ENAMETOOLONG : 0;
}

static json_t *read_json(const char *path) {
  json_error_t je;
  struct stat st;
  if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > STATE_FILE_MAX)
    return NULL;
  json_t *v = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  if (v && !json_is_object(v)) {
    json_decref(v);
    return NULL;
  }
  return v;
}

/* Write tmp, fsync, rename: the old content or the new, never half. */
static int write_json(const char *dir, const char *name, const json_t *v) {
  char path[PATH_MAX], tmp[PATH_MAX];
  if (join(path, sizeof path, dir, name) < 0 ||
      (size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
    return -ENAMETOOLONG;
  char *text = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
  if (!text)
    return -ENOMEM;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  int r = fd < 0 ? -errno : 0;
  size_t len = strlen(text), off = 0;
  while (r == 0 && off < len) {
    ssize_t w = write(fd, text + off, len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      r = -errno;
    else
      off += (size_t)w;
  }
  if (r == 0 && (write(fd, "\n", 1) != 1 || fsync(fd) < 0))
    r = -errno;
  if (fd >= 0 && close(fd) < 0 && r == 0)
    r = -errno;
  free(text);
  if (r == 0 && rename(tmp, path) < 0)
    r = -errno;
  if (r < 0)
    unlink(tmp);
  return r;
}

json_t *sandbox_state_record_read(const char *vdir, const char *name) {
  char path[PATH_MAX];
  if (!vdir || join(path, sizeof path, vdir, name) < 0)
    return NULL;
  return read_json(path);
}

int sandbox_state_record_write(const char *vdir, const char *name, const json_t *v) {
  return vdir ? write_json(vdir, name, v) : -EINVAL;
}

int sandbox_marker_delete(const char *vdir) {
  char path[PATH_MAX];
  if (join(path, sizeof path, vdir, MARKER_NAME) < 0)
    return -ENAMETOOLONG;
  return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

int sandbox_marker_write(const char *vdir, const json_t *settings) {
  return write_json(vdir, MARKER_NAME, settings);
}

json_t *sandbox_marker_read(const char *vdir) {
  char path[PATH_MAX];
  if (join(path, sizeof path, vdir, MARKER_NAME) < 0)
    return NULL;
  return read_json(path);
}

const char *sandbox_readiness_status(const char *state_dir, const json_t *settings,
                                     const char **why) {
  const char *dummy;
  if (!why)
    why = &dummy;
  int err = 0;
  char *vdir = sandbox_state_vdir(state_dir, false, NULL, &err);
  json_t *m = vdir ? sandbox_marker_read(vdir) : NULL;
  free(vdir);
  if (!m) {
    *why = "no setup marker";
    return "notConfigured";
  }
  /* Each recorded setting against the current one, in the order a user
   * would want to hear about: an upgrade first, then the kernel. */
  static const char *const keys[] = {"setupVersion", "version", "features", "proxy"};
  static const char *const reasons[] = {"setup version changed", "warden version changed",
                                        "kernel sandbox features changed",
                                        "proxy settings changed"};
  const char *status = "ready";
  *why = NULL;
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    if (!json_equal(json_object_get(m, keys[i]), json_object_get(settings, keys[i]))) {
      status = "updateRequired";
      *why = reasons[i];
      break;
    }
  }
  json_decref(m);
  return status;
}

int sandbox_workspace_record(const char *vdir, const char *key, const json_t *value) {
  char path[PATH_MAX];
  if (join(path, sizeof path, vdir, WORKSPACES_NAME) < 0)
    return -ENAMETOOLONG;
  json_t *all = read_json(path);
  if (!all)
    all = json_object();
  if (!all)
    return -ENOMEM;
  if (json_equal(json_object_get(all, key), value)) {
    json_decref(all);
    return 0;
  }
  json_object_set(all, key, (json_t *)value);
  int r = write_json(vdir, WORKSPACES_NAME, all);
  json_decref(all);
  return r < 0 ? r : 1;
}
