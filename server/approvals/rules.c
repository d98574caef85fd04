/* The persisted network rules: parsing, merging, loading and storing the
 * `network-rules` file (see rules.h for the format and the locking). */
#include "server/approvals/rules.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const char header[] =
    "# warden network rules: <allow|deny> <http|https|socks5Tcp|socks5Udp> <exact host> <port>\n"
    "# Written by approvals (allowAlways, denyAlways); one exact host per rule, no wildcards.\n";

/* ---- the set ---- */

approval_rules *approval_rules_new(void) { return calloc(1, sizeof(approval_rules)); }

void approval_rules_free(approval_rules *r) {
  if (!r)
    return;
  free(r->v);
  free(r);
}

static approval_rule *find(const approval_rules *r, const approval_key *k) {
  for (size_t i = 0; r && i < r->n; i++)
    if (approval_key_equal(&r->v[i].key, k))
      return &r->v[i];
  return NULL;
}

int approval_rules_lookup(const approval_rules *r, const approval_key *k) {
  const approval_rule *x = find(r, k);
  if (!x)
    return APPROVAL_RULE_NONE;
  return x->allow ? APPROVAL_RULE_ALLOW : APPROVAL_RULE_DENY;
}

int approval_rules_add(approval_rules *r, const approval_key *k, bool allow, bool replace) {
  approval_rule *x = find(r, k);
  if (x) {
    if (replace || !allow)
      x->allow = allow;
    return 0;
  }
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    approval_rule *v = realloc(r->v, cap * sizeof *v);
    if (!v)
      return -ENOMEM;
    r->v = v;
    r->cap = cap;
  }
  r->v[r->n].key = *k;
  r->v[r->n].allow = allow;
  r->n++;
  return 0;
}

/* ---- one line ---- */

static bool blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

static int bad(const char **why, const char *msg) {
  *why = msg;
  return -EINVAL;
}

int approval_rule_parse_line(const char *line, size_t len, approval_rule *out, const char **why) {
  if (len > APPROVAL_RULES_MAX_LINE)
    return bad(why, "line too long");
  char buf[APPROVAL_RULES_MAX_LINE + 1];
  memcpy(buf, line, len);
  buf[len] = '\0';
  if (memchr(buf, '\0', len))
    return bad(why, "line contains a NUL byte");
  char *f[5];
  size_t nf = 0;
  char *p = buf;
  for (;;) {
    while (*p && blank(*p))
      p++;
    if (!*p || *p == '#')
      break;
    if (nf == 5)
      break;
    f[nf++] = p;
    while (*p && !blank(*p))
      p++;
    if (*p)
      *p++ = '\0';
  }
  if (nf == 0)
    return 0; /* blank or comment */
  if (nf != 4)
    return bad(why, "expected 4 fields: <allow|deny> <protocol> <host> <port>");
  memset(out, 0, sizeof *out);
  if (strcmp(f[0], "allow") == 0)
    out->allow = true;
  else if (strcmp(f[0], "deny") == 0)
    out->allow = false;
  else
    return bad(why, "action must be allow or deny");
  approval_proto proto;
  if (approval_proto_parse(f[1], &proto) < 0)
    return bad(why, "protocol must be http, https, socks5Tcp or socks5Udp");
  unsigned port = 0;
  for (const char *d = f[3]; *d; d++) {
    if (*d < '0' || *d > '9' || port > 65535)
      return bad(why, "port must be a number 1..65535");
    port = port * 10 + (unsigned)(*d - '0');
  }
  const char *kwhy = NULL;
  if (approval_key_make(f[2], proto, port, &out->key, &kwhy) < 0)
    return bad(why, kwhy);
  return 1;
}

int approval_rule_format(const approval_rule *r, char *buf, size_t n) {
  int k = snprintf(buf, n, "%s %s %s %u", r->allow ? "allow" : "deny",
                   approval_proto_name(r->key.proto), r->key.host, (unsigned)r->key.port);
  if (k < 0 || (size_t)k >= n)
    return -ENOSPC;
  return k;
}

/* ---- whole files ---- */

int approval_rules_parse(const char *text, size_t len, approval_rules **out,
                         approval_rules_warn_fn warn, void *arg) {
  approval_rules *r = approval_rules_new();
  if (!r)
    return -ENOMEM;
  unsigned lineno = 0;
  size_t i = 0;
  while (i < len) {
    const char *nl = memchr(text + i, '\n', len - i);
    size_t end = nl ? (size_t)(nl - text) : len;
    lineno++;
    approval_rule rule;
    const char *why = NULL;
    int rc = approval_rule_parse_line(text + i, end - i, &rule, &why);
    if (rc > 0 && r->n >= APPROVAL_RULES_MAX && !find(r, &rule.key)) {
      rc = -EINVAL;
      why = "too many rules (the limit is 10000)";
    }
    if (rc < 0 && warn) {
      char msg[256];
      snprintf(msg, sizeof msg, "%s; line skipped", why);
      warn(arg, lineno, msg);
    } else if (rc > 0 && approval_rules_add(r, &rule.key, rule.allow, false) < 0) {
      approval_rules_free(r);
      return -ENOMEM;
    }
    i = end + 1;
  }
  *out = r;
  return 0;
}

typedef struct sbuf {
  char *p;
  size_t n, cap;
} sbuf;

static int sb_add(sbuf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
      return -ENOMEM;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
  return 0;
}

int approval_rules_merge_text(const char *old, size_t len, const approval_rule *r, char **out,
                              size_t *outlen) {
  char line[APPROVAL_RULES_MAX_LINE + 1];
  int k = approval_rule_format(r, line, sizeof line);
  if (k < 0)
    return k;
  /* Refused when written as when loaded: the line must read back as the
   * same exact rule (no wildcard, a valid host). */
  approval_rule back;
  const char *why = NULL;
  if (approval_rule_parse_line(line, (size_t)k, &back, &why) != 1 ||
      !approval_key_equal(&back.key, &r->key) || back.allow != r->allow)
    return -EINVAL;
  sbuf b = {0};
  int rc = 0;
  bool any = false;
  size_t i = 0;
  while (i < len && rc == 0) {
    const char *nl = memchr(old + i, '\n', len - i);
    size_t end = nl ? (size_t)(nl - old) : len;
    approval_rule x;
    const char *w = NULL;
    bool same = approval_rule_parse_line(old + i, end - i, &x, &w) == 1 &&
                approval_key_equal(&x.key, &r->key);
    if (!same) {
      rc = sb_add(&b, old + i, end - i);
      if (rc == 0)
        rc = sb_add(&b, "\n", 1);
      any = true;
    }
    i = end + 1;
  }
  if (rc == 0 && !any)
    rc = sb_add(&b, header, sizeof header - 1);
  if (rc == 0)
    rc = sb_add(&b, line, (size_t)k);
  if (rc == 0)
    rc = sb_add(&b, "\n", 1);
  if (rc < 0) {
    free(b.p);
    return rc;
  }
  *out = b.p;
  *outlen = b.n;
  return 0;
}

/* Read a whole file, up to the cap. A missing file reads as empty. */
static int read_all(const char *path, char **out, size_t *outlen) {
  *out = NULL;
  *outlen = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : -errno;
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  if (st.st_size > APPROVAL_RULES_MAX_BYTES) {
    close(fd);
    return -EFBIG;
  }
  char *p = malloc((size_t)st.st_size + 1);
  if (!p) {
    close(fd);
    return -ENOMEM;
  }
  size_t n = 0;
  for (;;) {
    if (n == (size_t)st.st_size + 1) {
      /* grew while read: past what fstat said; refuse rather than guess */
      free(p);
      close(fd);
      return -EFBIG;
    }
    ssize_t k = read(fd, p + n, (size_t)st.st_size + 1 - n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0) {
      int e = -errno;
      free(p);
      close(fd);
      return e;
    }
    if (k == 0)
      break;
    n += (size_t)k;
  }
  close(fd);
  p[n] = '\0';
  *out = p;
  *outlen = n;
  return 0;
}

int approval_rules_load(const char *path, approval_rules **out, approval_rules_warn_fn warn,
                        void *arg) {
  char *text;
  size_t len;
  int rc = read_all(path, &text, &len);
  if (rc < 0)
    return rc;
  rc = approval_rules_parse(text ? text : "", len, out, warn, arg);
  free(text);
  return rc;
}

static int mkdirs(const char *dir) {
  char buf[PATH_MAX];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof buf)
    return -ENAMETOOLONG;
  memcpy(buf, dir, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0')
      continue;
    char save = buf[i];
    buf[i] = '\0';
    if (mkdir(buf, 0700) < 0 && errno != EEXIST)
      return -errno;
    buf[i] = save;
  }
  return 0;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t k = write(fd, p, n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      return -errno;
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

int approval_rules_store(const char *path, const approval_rule *r, approval_rules **merged,
                         approval_rules_warn_fn warn, void *arg) {
  char dir[PATH_MAX], lock[PATH_MAX], tmp[PATH_MAX];
  if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir ||
      snprintf(lock, sizeof lock, "%s%s", path, APPROVAL_RULES_LOCK_SUFFIX) >= (int)sizeof lock ||
      snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp)
    return -ENAMETOOLONG;
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = '\0';
    int rc = mkdirs(dir);
    if (rc < 0)
      return rc;
  }
  int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lfd < 0)
    return -errno;
  /* Blocking: another server holds it only for one read-merge-write. */
  while (flock(lfd, LOCK_EX) < 0) {
    if (errno != EINTR) {
      int e = -errno;
      close(lfd);
      return e;
    }
  }
  char *old = NULL, *text = NULL;
  size_t oldlen = 0, len = 0;
  int fd = -1;
  int rc = read_all(path, &old, &oldlen);
  if (rc == 0)
    rc = approval_rules_merge_text(old ? old : "", oldlen, r, &text, &len);
  if (rc == 0 && len > APPROVAL_RULES_MAX_BYTES)
    rc = -EFBIG;
  if (rc == 0) {
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
      rc = -errno;
  }
  if (rc == 0)
    rc = write_all(fd, text, len);
  if (rc == 0 && fchmod(fd, 0600) < 0)
    rc = -errno;
  if (rc == 0 && fsync(fd) < 0)
    rc = -errno;
  if (fd >= 0 && close(fd) < 0 && rc == 0)
    rc = -errno;
  if (rc == 0 && rename(tmp, path) < 0)
    rc = -errno;
  if (rc < 0 && fd >= 0)
    unlink(tmp);
  if (rc == 0 && merged)
    rc = approval_rules_parse(text, len, merged, warn, arg);
  free(old);
  free(text);
  flock(lfd, LOCK_UN);
  close(lfd);
  return rc;
}
