#include "protocol/emit.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int emit_mkdir_p(const char *dir) {
  char buf[PATH_MAX];
  if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
    return -ENAMETOOLONG;
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(buf, 0755) < 0 && errno != EEXIST)
      return -errno;
    *p = '/';
  }
  if (mkdir(buf, 0755) < 0 && errno != EEXIST)
    return -errno;
  return 0;
}

int emit_write_text(const char *dir, const char *file, const char *text, size_t len) {
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
    return -ENAMETOOLONG;
  FILE *f = fopen(path, "w");
  if (!f)
    return -errno;
  size_t w = fwrite(text, 1, len, f);
  int rc = (w == len) ? 0 : -EIO;
  if (fclose(f) != 0 && rc == 0)
    rc = -errno;
  return rc;
}

int emit_write_json(const char *dir, const char *name, const json_t *doc) {
  char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (!text)
    return -ENOMEM;
  size_t n = strlen(text);
  char *withnl = realloc(text, n + 2);
  if (!withnl) {
    free(text);
    return -ENOMEM;
  }
  withnl[n] = '\n';
  withnl[n + 1] = '\0';
  char file[256];
  snprintf(file, sizeof file, "%s.json", name);
  int rc = emit_write_text(dir, file, withnl, n + 1);
  free(withnl);
  return rc;
}
