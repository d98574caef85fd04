/* server/policy: expanding a root that is exactly $HOME into its children.
 *
 * Granting $HOME whole would grant every secret store in it. A root equal to
 * $HOME is therefore replaced by its direct children, minus:
 *   - symlinks (their targets are granted only when a policy names them;
 *     following them could reach anywhere on the disk),
 *   - the secret stores of pol_home_secrets,
 *   - every path ~/.ssh/config names (sshconfig.c),
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
    ".ssh", ".gnupg",         ".aws",           ".azure",     ".kube", ".docker",
    ".netrc", ".pki", ".password-store", ".config/gcloud", ".config/gh", NULL};

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
  for (size_t i = 0; rc == 0 && i < ssh.n; i++)
    rc = pol_sv_push_own(&excluded, pol_path_normalize(ssh.v[i]));

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
