/* libFuzzer target: the ~/.ssh/config reader (Include, globs, ~ and %d
 * expansion, nesting).
 *
 * Input: NUL-separated files. The first is $HOME/.ssh/config, the next ones
 * $HOME/.ssh/inc0, inc1, ... (so Include directives have something to
 * follow, including themselves). Checked, besides the sanitizers: every path
 * returned is absolute.
 */
#include "server/policy/policy_internal.h"

#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_SSH_FILES_MAX 4

static char home[PATH_MAX];
static char ssh[PATH_MAX + 8];

static void put(const char *name, const uint8_t *d, size_t n) {
  char p[PATH_MAX + 32];
  snprintf(p, sizeof p, "%s/%s", ssh, name);
  FILE *f = fopen(p, "we");
  if (!f)
    abort();
  if (n)
    fwrite(d, 1, n, f);
  fclose(f);
}

static void file_name(int i, char *out, size_t n) {
  if (i == 0)
    snprintf(out, n, "config");
  else
    snprintf(out, n, "inc%d", i - 1);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  if (flag == FTW_DP)
    rmdir(p);
  else
    unlink(p);
  return 0;
}

static void remove_home(void) { nftw(home, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  char tmpl[] = "/tmp/warden-fuzz-ssh-XXXXXX";
  if (!mkdtemp(tmpl) || !realpath(tmpl, home))
    abort();
  snprintf(ssh, sizeof ssh, "%s/.ssh", home);
  mkdir(ssh, 0700);
  atexit(remove_home);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t start = 0;
  int file = 0;
  for (int i = 0; i < FUZZ_SSH_FILES_MAX; i++) {
    char name[16];
    file_name(i, name, sizeof name);
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/%s", ssh, name);
    unlink(p);
  }
  for (size_t i = 0; i <= size && file < FUZZ_SSH_FILES_MAX; i++) {
    if (i == size || data[i] == 0) {
      char name[16];
      file_name(file, name, sizeof name);
      put(name, data + start, i - start);
      file++;
      start = i + 1;
    }
  }
  pol_strvec out = {0};
  pol_ssh_config_paths(home, &out);
  for (size_t i = 0; i < out.n; i++)
    if (out.v[i][0] != '/') {
      fprintf(stderr, "relative path from the ssh config: %s\n", out.v[i]);
      abort();
    }
  pol_sv_free(&out);
  return 0;
}
