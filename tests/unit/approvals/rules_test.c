/* The network-rules file: the line parser, whole-file parsing with bad
 * lines, the merge, and storing under the lock from several writers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "server/approvals/rules.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct warns {
  int n;
  unsigned line[16];
  char msg[16][256];
} warns;

static void warn(void *arg, unsigned line, const char *msg) {
  warns *w = arg;
  if (w->n < 16) {
    w->line[w->n] = line;
    snprintf(w->msg[w->n], sizeof w->msg[w->n], "%s", msg);
  }
  w->n++;
}

static int line(const char *s, approval_rule *r, const char **why) {
  return approval_rule_parse_line(s, strlen(s), r, why);
}

static void test_line(void **state) {
  (void)state;
  approval_rule r;
  const char *why = NULL;
  assert_int_equal(line("allow https api.example.com 443", &r, &why), 1);
  assert_true(r.allow);
  assert_int_equal(r.key.proto, APPROVAL_HTTPS);
  assert_string_equal(r.key.host, "api.example.com");
  assert_int_equal(r.key.port, 443);
  assert_int_equal(line("  deny\tsocks5Udp  [::1]  53 # dns\r", &r, &why), 1);
  assert_false(r.allow);
  assert_string_equal(r.key.host, "::1");
  assert_int_equal(line("allow http API.Example.COM. 80", &r, &why), 1);
  assert_string_equal(r.key.host, "api.example.com");
  assert_int_equal(line("", &r, &why), 0);
  assert_int_equal(line("   # comment", &r, &why), 0);
  struct {
    const char *text, *why;
  } bad[] = {
      {"allow https *.example.com 443", "wildcard"},
      {"allow https * 443", "wildcard"},
      {"allow https **.example.com 443", "wildcard"},
      {"permit https a.com 443", "action"},
      {"allow ftp a.com 21", "protocol"},
      {"allow HTTPS a.com 443", "protocol"},
      {"allow https a.com", "4 fields"},
      {"allow https a.com 443 extra", "4 fields"},
      {"allow https a.com 0", "port"},
      {"allow https a.com 65536", "port"},
      {"allow https a.com 4x3", "port"},
      {"allow https a..com 443", "empty label"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    why = NULL;
    assert_int_equal(line(bad[i].text, &r, &why), -EINVAL);
    if (!why || !strstr(why, bad[i].why))
      fail_msg("\"%s\": reason \"%s\" lacks \"%s\"", bad[i].text, why ? why : "(none)",
               bad[i].why);
  }
  char buf[64];
  approval_rule f = {.allow = false};
  approval_key_make("x.org", APPROVAL_SOCKS5_TCP, 1080, &f.key, &why);
  assert_int_equal(approval_rule_format(&f, buf, sizeof buf), (int)strlen("deny socks5Tcp x.org 1080"));
  assert_string_equal(buf, "deny socks5Tcp x.org 1080");
  assert_int_equal(approval_rule_format(&f, buf, 8), -ENOSPC);
}

static void test_parse_file(void **state) {
  (void)state;
  const char *text = "# rules\n"
                     "allow https a.com 443\n"
                     "allow https *.b.com 443\n"       /* 3: wildcard */
                     "allow https\n"                   /* 4: malformed */
                     "allow https A.com. 443\n"        /* 5: duplicate, harmless */
                     "allow http c.com 80\n"
                     "deny http c.com 80\n"            /* deny wins */
                     "allow http c.com 80\n"
                     "allow https *\n"                 /* 9: bare * (and no port) */
                     "allow https d.com 8443";         /* no final newline */
  warns w = {0};
  approval_rules *r = NULL;
  assert_int_equal(approval_rules_parse(text, strlen(text), &r, warn, &w), 0);
  assert_int_equal(w.n, 3);
  assert_int_equal(w.line[0], 3);
  assert_non_null(strstr(w.msg[0], "wildcard"));
  assert_non_null(strstr(w.msg[0], "skipped"));
  assert_int_equal(w.line[1], 4);
  assert_int_equal(w.line[2], 9);
  assert_int_equal(r->n, 3);
  approval_key k;
  const char *why;
  approval_key_make("a.com", APPROVAL_HTTPS, 443, &k, &why);
  assert_int_equal(approval_rules_lookup(r, &k), APPROVAL_RULE_ALLOW);
  approval_key_make("c.com", APPROVAL_HTTP, 80, &k, &why);
  assert_int_equal(approval_rules_lookup(r, &k), APPROVAL_RULE_DENY);
  approval_key_make("d.com", APPROVAL_HTTPS, 8443, &k, &why);
  assert_int_equal(approval_rules_lookup(r, &k), APPROVAL_RULE_ALLOW);
  /* nothing wider came in */
  approval_key_make("x.b.com", APPROVAL_HTTPS, 443, &k, &why);
  assert_int_equal(approval_rules_lookup(r, &k), APPROVAL_RULE_NONE);
  approval_key_make("a.com", APPROVAL_HTTPS, 8443, &k, &why);
  assert_int_equal(approval_rules_lookup(r, &k), APPROVAL_RULE_NONE);
  approval_rules_free(r);
}

static void test_merge(void **state) {
  (void)state;
  approval_rule r = {.allow = false};
  const char *why;
  approval_key_make("a.com", APPROVAL_HTTPS, 443, &r.key, &why);
  const char *old = "# mine\n"
                    "allow https a.com 443\n"
                    "allow https *.bad 443\n"
                    "allow https b.com 443\n"
                    "allow https A.COM 443\n"
                    "allow http a.com 443";
  char *out = NULL;
  size_t n = 0;
  assert_int_equal(approval_rules_merge_text(old, strlen(old), &r, &out, &n), 0);
  assert_string_equal(out, "# mine\n"
                           "allow https *.bad 443\n"
                           "allow https b.com 443\n"
                           "allow http a.com 443\n"
                           "deny https a.com 443\n");
  assert_int_equal(n, strlen(out));
  free(out);
  /* an empty file gets the header first */
  assert_int_equal(approval_rules_merge_text("", 0, &r, &out, &n), 0);
  assert_int_equal(out[0], '#');
  assert_non_null(strstr(out, "\ndeny https a.com 443\n"));
  free(out);
  /* a wildcard is refused when written */
  approval_rule w = {.allow = true, .key = {.host = "*.a.com", .proto = APPROVAL_HTTPS,
                                            .port = 443}};
  assert_int_equal(approval_rules_merge_text("", 0, &w, &out, &n), -EINVAL);
  approval_rule star = {.allow = true, .key = {.host = "*", .proto = APPROVAL_HTTPS, .port = 1}};
  assert_int_equal(approval_rules_merge_text("", 0, &star, &out, &n), -EINVAL);
}

static char dir[64];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/warden-rules-XXXXXX");
  assert_non_null(mkdtemp(dir));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void test_store_and_load(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/state/network-rules", dir);
  approval_rules *r = NULL;
  assert_int_equal(approval_rules_load(path, &r, NULL, NULL), 0); /* missing: empty */
  assert_int_equal(r->n, 0);
  approval_rules_free(r);
  approval_rule a = {.allow = true};
  const char *why;
  approval_key_make("a.com", APPROVAL_HTTPS, 443, &a.key, &why);
  approval_rules *merged = NULL;
  assert_int_equal(approval_rules_store(path, &a, &merged, NULL, NULL), 0);
  assert_int_equal(merged->n, 1);
  approval_rules_free(merged);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  a.allow = false;
  assert_int_equal(approval_rules_store(path, &a, NULL, NULL, NULL), 0);
  assert_int_equal(approval_rules_load(path, &r, NULL, NULL), 0);
  assert_int_equal(r->n, 1);
  assert_int_equal(approval_rules_lookup(r, &a.key), APPROVAL_RULE_DENY);
  approval_rules_free(r);
  /* no temporary file left behind */
  char cmd[256];
  snprintf(cmd, sizeof cmd, "test $(ls -A '%s/state' | grep -c tmp) -eq 0", dir);
  assert_int_equal(system(cmd), 0);
  /* over the size cap: refused whole */
  FILE *f = fopen(path, "a");
  for (int i = 0; i < APPROVAL_RULES_MAX_BYTES / 16 + 1; i++)
    fputs("# padding.......\n", f);
  fclose(f);
  assert_int_equal(approval_rules_load(path, &r, NULL, NULL), -EFBIG);
}

/* Writers in several processes (as two servers sharing a state directory):
 * every rule each of them wrote is in the file at the end. */
static void test_concurrent_writers(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/shared/network-rules", dir);
  enum { WRITERS = 4, EACH = 25 };
  pid_t kids[WRITERS];
  for (int k = 0; k < WRITERS; k++) {
    kids[k] = fork();
    assert_true(kids[k] >= 0);
    if (kids[k] == 0) {
      for (int i = 0; i < EACH; i++) {
        approval_rule r = {.allow = (i % 2) == 0};
        char host[64];
        const char *why;
        snprintf(host, sizeof host, "w%d-h%d.example", k, i);
        approval_key_make(host, APPROVAL_HTTPS, 443, &r.key, &why);
        if (approval_rules_store(path, &r, NULL, NULL, NULL) < 0)
          _exit(1);
      }
      _exit(0);
    }
  }
  for (int k = 0; k < WRITERS; k++) {
    int st;
    assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  approval_rules *r = NULL;
  warns w = {0};
  assert_int_equal(approval_rules_load(path, &r, warn, &w), 0);
  assert_int_equal(w.n, 0);
  assert_int_equal(r->n, WRITERS * EACH);
  approval_rules_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_line),
      cmocka_unit_test(test_parse_file),
      cmocka_unit_test(test_merge),
      cmocka_unit_test_setup_teardown(test_store_and_load, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
