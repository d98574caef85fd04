/* server/policy: the paths ~/.ssh/config names.
 *
 * Read the user's ssh config the way ssh reads it for path-valued keywords,
 * without evaluating Host/Match conditions (every block counts: a path
 * mentioned anywhere stays protected). Include is followed recursively (at
 * most 16 levels, like ssh) with glob(3); relative Include and file paths are
 * taken relative to ~/.ssh.
 */
#include "server/policy/policy_internal.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Past this much of one file (real configs are a few KiB), the rest is not read. */
#define SSH_CONFIG_MAX_BYTES (1u << 20)
/* Files read for one config, Includes and their globs together (a glob such
 * as Include of every file two levels under / must not read the disk). */
#define SSH_CONFIG_MAX_FILES 64

#define SSH_MAX_INCLUDE_DEPTH 16

typedef struct dbuf {
  char *s;
  size_t n, cap;
} dbuf;

static int db_put(dbuf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = (b->n + n + 1) * 2;
    char *p = realloc(b->s, cap);
    if (!p)
      return -ENOMEM;
    b->s = p;
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = '\0';
  return 0;
}

/* Expand ~, %d, %% and ${HOME}. Another %-token or ${VAR} cuts the value to
 * the directory before the component holding it. Relative results are
 * relative to ~/.ssh. NULL: nothing to protect (none, an agent variable,
 * ~user, or a cut that leaves nothing). */
static char *expand(const char *arg, const char *home, bool agent) {
  if (strcasecmp(arg, "none") == 0)
    return NULL;
  if (agent && (strcmp(arg, "SSH_AUTH_SOCK") == 0 || (arg[0] == '$' && arg[1] != '{')))
    return NULL;
  dbuf b = {0};
  size_t cut = (size_t)-1;
  size_t i = 0;
  int rc = db_put(&b, "", 0);
  if (rc == 0 && arg[0] == '~') {
    if (arg[1] != '/' && arg[1] != '\0') {
      free(b.s);
      return NULL; /* ~user: not ours */
    }
    rc = db_put(&b, home, strlen(home));
    i = 1;
  }
  for (; rc == 0 && arg[i]; i++) {
    if (arg[i] == '%') {
      if (arg[i + 1] == 'd') {
        rc = db_put(&b, home, strlen(home));
        i++;
      } else if (arg[i + 1] == '%') {
        rc = db_put(&b, "%", 1);
        i++;
      } else {
        cut = b.n;
        break;
      }
    } else if (arg[i] == '$' && arg[i + 1] == '{') {
      const char *end = strchr(arg + i, '}');
      if (end && (size_t)(end - (arg + i)) == 6 && strncmp(arg + i + 2, "HOME", 4) == 0) {
        rc = db_put(&b, home, strlen(home));
        i = (size_t)(end - arg);
      } else {
        cut = b.n;
        break;
      }
    } else {
      rc = db_put(&b, arg + i, 1);
    }
  }
  if (rc < 0) {
    free(b.s);
    return NULL;
  }
  if (cut != (size_t)-1) {
    b.s[cut] = '\0';
    char *slash = strrchr(b.s, '/');
    if (!slash || slash == b.s) {
      free(b.s);
      return NULL;
    }
    *slash = '\0';
  }
  char *abs;
  if (b.s[0] == '/') {
    abs = b.s;
  } else {
    char *dir = pol_path_join(home, ".ssh");
    abs = dir ? pol_path_join(dir, b.s) : NULL;
    free(dir);
    free(b.s);
  }
  char *clean = abs ? pol_path_clean(abs) : NULL;
  free(abs);
  if (clean && strcmp(clean, "/") == 0) {
    free(clean);
    return NULL;
  }
  return clean;
}

/* Split the arguments of a config line: whitespace separated, "double
 * quoted" arguments may hold spaces. Writes NUL terminators into s. */
static size_t split_args(char *s, char **argv, size_t max) {
  size_t n = 0;
  while (*s && n < max) {
    while (isspace((unsigned char)*s))
      s++;
    if (!*s)
      break;
    if (*s == '"') {
      char *end = strchr(s + 1, '"');
      argv[n++] = s + 1;
      if (!end)
        break;
      *end = '\0';
      s = end + 1;
    } else {
      argv[n++] = s;
      while (*s && !isspace((unsigned char)*s))
        s++;
      if (*s)
        *s++ = '\0';
    }
  }
  return n;
}

static const char *const path_keys[] = {"IdentityFile",      "CertificateFile",
                                        "UserKnownHostsFile", "GlobalKnownHostsFile",
                                        "RevokedHostKeys",   "ControlPath",
                                        "IdentityAgent",     NULL};

static int parse_file(const char *file, const char *home, int depth, pol_strvec *out,
                      pol_strvec *seen) {
  /* Each file is read once: Include loops and repeated globs stay linear. */
  if (pol_sv_contains(seen, file) || seen->n >= SSH_CONFIG_MAX_FILES)
    return 0;
  if (pol_sv_push(seen, file) < 0)
    return -ENOMEM;
  /* Only regular files, opened and read without blocking: an Include glob
   * may name a FIFO, a terminal or a procfs file whose read waits forever
   * (an Include of every file under /dev, or /proc/kmsg), and policy resolution runs on the loop. */
  int fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return 0; /* missing or unreadable: nothing named */
  struct stat st;
  FILE *f = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? fdopen(fd, "r") : NULL;
  if (!f) {
    close(fd);
    return 0;
  }
  char *line = NULL;
  size_t cap = 0, total = 0;
  ssize_t got;
  int rc = 0;
  while (rc == 0 && (got = getline(&line, &cap, f)) >= 0 &&
         (total += (size_t)got) <= SSH_CONFIG_MAX_BYTES) {
    char *s = line;
    while (isspace((unsigned char)*s))
      s++;
    if (!*s || *s == '#')
      continue;
    char *kw = s;
    while (*s && !isspace((unsigned char)*s) && *s != '=')
      s++;
    if (*s) {
      *s++ = '\0';
      while (isspace((unsigned char)*s) || *s == '=')
        s++;
    }
    char *argv[32];
    size_t argc = split_args(s, argv, sizeof argv / sizeof argv[0]);
    if (strcasecmp(kw, "Include") == 0) {
      for (size_t i = 0; rc == 0 && i < argc; i++) {
        char *pat = expand(argv[i], home, false);
        if (!pat)
          continue;
        glob_t g;
        memset(&g, 0, sizeof g);
        if (glob(pat, 0, NULL, &g) == 0) {
          for (size_t k = 0; rc == 0 && k < g.gl_pathc; k++) {
            rc = pol_sv_push_own(out, pol_path_clean(g.gl_pathv[k]));
            if (rc == 0 && depth + 1 < SSH_MAX_INCLUDE_DEPTH)
              rc = parse_file(g.gl_pathv[k], home, depth + 1, out, seen);
          }
        }
        globfree(&g);
        free(pat);
      }
      continue;
    }
    for (size_t k = 0; path_keys[k]; k++) {
      if (strcasecmp(kw, path_keys[k]) != 0)
        continue;
      bool agent = strcasecmp(kw, "IdentityAgent") == 0;
      for (size_t i = 0; rc == 0 && i < argc; i++) {
        char *p = expand(argv[i], home, agent);
        if (p)
          rc = pol_sv_push_own(out, p);
      }
      break;
    }
  }
  free(line);
  fclose(f);
  return rc;
}

int pol_ssh_config_paths(const char *home, pol_strvec *out) {
  if (!home || home[0] != '/')
    return 0;
  char *dir = pol_path_join(home, ".ssh");
  char *cfg = dir ? pol_path_join(dir, "config") : NULL;
  free(dir);
  if (!cfg)
    return -ENOMEM;
  pol_strvec seen = {0};
  int rc = parse_file(cfg, home, 0, out, &seen);
  pol_sv_free(&seen);
  free(cfg);
  return rc;
}
