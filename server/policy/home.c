/* server/policy: expanding a root that is exactly $HOME into its children.
 *
 * Granting $HOME whole would grant every secret store in it. A root equal to
 * $HOME is therefore replaced by its direct children, minus:
 *   - symlinks (their targets are granted only when a policy names them;
 *     following them could reach anywhere on the disk),
 *   - the secret stores of pol_home_secrets,
 *   - every path ~/.ssh/config names (sshconfig.c), with the whole top-level
 *     entry of $HOME that holds it,
 *   - for a writable root, the protected names .git, .codex and .agents.
 * An excluded path deeper than a direct child (~/.config/gh, an IdentityFile
 * in ~/keys/) is returned as a carveout of the child that holds it.
 */
#include "server/policy/policy_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const pol_home_secrets[] = {
    ".ssh",   ".gnupg", ".aws",          ".azure",         ".kube",       ".docker",
    ".netrc", ".git-credentials", ".pypirc", ".npmrc", ".pki", ".password-store",
    ".config/gcloud", ".config/gh", NULL};

/* Files and directories under $HOME whose content the host later runs or
 * obeys: shell startup files, git's user configuration (core.hooksPath and
 * core.fsmonitor run programs), desktop autostart entries and systemd user
 * units. Listed whether they exist or not: creating one is as bad as
 * changing it. */
const char *const pol_home_persistence[] = {
    ".bashrc",  ".profile", ".bash_profile", ".bash_login",  ".bash_logout",
    ".zshrc",   ".zshenv",  ".zprofile",     ".zlogin",      ".config/fish",
    ".gitconfig", ".config/git", ".config/autostart", ".config/systemd", NULL};

/* The direct child of home that holds p (p strictly inside home), else NULL. */
static char *top_level_entry(const char *home, const char *p) {
  if (!pol_path_strictly_under(p, home))
    return NULL;
  size_t hl = strcmp(home, "/") == 0 ? 0 : strlen(home);
  const char *rest = p + hl + 1;
  const char *slash = strchr(rest, '/');
  size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
  char *out = malloc(hl + 2 + n);
  if (!out)
    return NULL;
  memcpy(out, home, hl);
  out[hl] = '/';
  memcpy(out + hl + 1, rest, n);
  out[hl + 1 + n] = '\0';
  return out;
}

int pol_home_secret_paths(const char *home_canon, const char *home_raw, pol_strvec *out) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && pol_home_secrets[i]; i++)
    rc = pol_sv_push_own(out, pol_path_join(home_canon, pol_home_secrets[i]));
  pol_strvec ssh = {0};
  if (rc == 0)
    rc = pol_ssh_config_paths(home_raw && home_raw[0] == '/' ? home_raw : home_canon, &ssh);
  for (size_t i = 0; rc == 0 && i < ssh.n; i++) {
    char *n = pol_path_normalize(ssh.v[i]);
    if (!n) {
      rc = -ENOMEM;
      break;
    }
    char *t = top_level_entry(home_canon, n);
    free(n);
    if (t)
      rc = pol_sv_push_own(out, t);
  }
  pol_sv_free(&ssh);
  pol_sv_sort_uniq(out);
  return rc;
}

int pol_home_persistence_paths(const char *home_canon, pol_strvec *out) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && pol_home_persistence[i]; i++)
    rc = pol_sv_push_own(out, pol_path_join(home_canon, pol_home_persistence[i]));
  return rc;
}

static bool is_top_secret(const char *name) {
  for (size_t i = 0; pol_home_secrets[i]; i++)
    if (!strchr(pol_home_secrets[i], '/') && strcmp(pol_home_secrets[i], name) == 0)
      return true;
  return false;
}

static bool is_protected_name(const char *name) {
  return strcmp(name, ".git") == 0 || strcmp(name, ".codex") == 0 ||
         strcmp(name, ".agents") == 0;
}

int pol_home_expand(const char *home_canon, const char *home_raw, bool writable,
                    pol_strvec *children, pol_strvec *carveouts) {
  pol_strvec excluded = {0}, ssh = {0};
  int rc = 0;
  DIR *d = opendir(home_canon);
  if (!d)
    return -errno;
  for (size_t i = 0; rc == 0 && pol_home_secrets[i]; i++) {
    char *p = pol_path_join(home_canon, pol_home_secrets[i]);
    rc = pol_sv_push_own(&excluded, p ? pol_path_normalize(p) : NULL);
    free(p);
  }
  if (rc == 0)
    rc = pol_ssh_config_paths(home_raw && home_raw[0] == '/' ? home_raw : home_canon, &ssh);
  /* A path the ssh config names takes its whole top-level entry of $HOME
   * with it (~/keys/id_work excludes ~/keys): what sits next to a key is
   * usually more keys. */
  for (size_t i = 0; rc == 0 && i < ssh.n; i++) {
    char *n = pol_path_normalize(ssh.v[i]);
    char *t = n ? top_level_entry(home_canon, n) : NULL;
    rc = pol_sv_push_own(&excluded, n);
    if (rc == 0 && t)
      rc = pol_sv_push_own(&excluded, t);
    else
      free(t);
  }

  for (;;) {
    if (rc < 0)
      break;
    errno = 0;
    struct dirent *de = readdir(d);
    if (!de) {
      if (errno)
        rc = -errno; /* a partial listing must not be taken for the whole */
      break;
    }
    const char *name = de->d_name;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
      continue;
    if (is_top_secret(name) || (writable && is_protected_name(name)))
      continue;
    char *p = pol_path_join(home_canon, name);
    if (!p) {
      rc = -ENOMEM;
      break;
    }
    struct stat st;
    if (lstat(p, &st) != 0 || S_ISLNK(st.st_mode) || pol_sv_contains(&excluded, p)) {
      free(p);
      continue;
    }
    rc = pol_sv_push_own(children, p);
  }
  closedir(d);

  for (size_t i = 0; rc == 0 && i < excluded.n; i++) {
    for (size_t k = 0; k < children->n; k++) {
      if (pol_path_strictly_under(excluded.v[i], children->v[k])) {
        rc = pol_sv_push(carveouts, excluded.v[i]);
        break;
      }
    }
  }
  pol_sv_sort_uniq(children);
  pol_sv_sort_uniq(carveouts);
  pol_sv_free(&excluded);
  pol_sv_free(&ssh);
  if (rc < 0) {
    pol_sv_free(children);
    pol_sv_free(carveouts);
  }
  return rc;
}
