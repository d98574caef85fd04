#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "server/envpolicy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char *get(char **env, const char *name) {
  size_t n = strlen(name);
  for (char **e = env; e && *e; e++)
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
      return *e + n + 1;
  return NULL;
}

static char *base[] = {"PATH=/bin", "HOME=/h", "API_KEY=s", "my_token=t", "GH_SECRET_X=u",
                       "LC_ALL=C", "FOO=bar", NULL};

static void test_default_drops_secrets(void **state) {
  (void)state;
  char **e = envpolicy_build(base, NULL, NULL, NULL);
  assert_string_equal(get(e, "PATH"), "/bin");
  assert_string_equal(get(e, "FOO"), "bar");
  assert_null(get(e, "API_KEY"));
  assert_null(get(e, "my_token"));
  assert_null(get(e, "GH_SECRET_X"));
  envpolicy_free(e);
}

static void test_explicit_exclude_replaces_default(void **state) {
  (void)state;
  json_t *pol = json_pack("{s:s,s:[s]}", "inherit", "all", "exclude", "FOO");
  char **e = envpolicy_build(base, pol, NULL, NULL);
  assert_string_equal(get(e, "API_KEY"), "s");
  assert_null(get(e, "FOO"));
  envpolicy_free(e);
  json_decref(pol);
}

static void test_core_and_none_and_include_only(void **state) {
  (void)state;
  json_t *pol = json_pack("{s:s}", "inherit", "core");
  char **e = envpolicy_build(base, pol, NULL, NULL);
  assert_non_null(get(e, "PATH"));
  assert_non_null(get(e, "LC_ALL"));
  assert_null(get(e, "FOO"));
  envpolicy_free(e);
  json_decref(pol);
  pol = json_pack("{s:s}", "inherit", "none");
  e = envpolicy_build(base, pol, NULL, NULL);
  assert_null(e[0]);
  envpolicy_free(e);
  json_decref(pol);
  pol = json_pack("{s:[s]}", "includeOnly", "p*");
  e = envpolicy_build(base, pol, NULL, NULL);
  assert_non_null(get(e, "PATH"));
  assert_null(get(e, "HOME"));
  envpolicy_free(e);
  json_decref(pol);
}

static void test_overrides_and_extra(void **state) {
  (void)state;
  json_t *env = json_pack("{s:s,s:n,s:s}", "FOO", "baz", "HOME", "NEW", "1");
  char *extra[] = {"NEW=2", "WARDEN_SANDBOX=1", NULL};
  char **e = envpolicy_build(base, NULL, env, extra);
  assert_string_equal(get(e, "FOO"), "baz");
  assert_null(get(e, "HOME"));
  assert_string_equal(get(e, "NEW"), "2");
  assert_string_equal(get(e, "WARDEN_SANDBOX"), "1");
  envpolicy_free(e);
  json_decref(env);
}

static bool in_array(const json_t *a, const char *s) {
  size_t i;
  const json_t *v;
  json_array_foreach(a, i, v) if (strcmp(json_string_value(v), s) == 0) return true;
  return false;
}

/* Issue 9 item 8: the default filter drops password-like names and URLs
 * with a password in their userinfo, keeps AUTHOR, and lists the names. */
static void test_default_drops_passwords_and_lists_them(void **state) {
  (void)state;
  char *b[] = {"PGPASSWORD=a",         "MYSQL_PWD=b",
               "DB_PASSWORD=c",        "SMTP_PASSWD=d",
               "AWS_CREDENTIALS=e",    "GITHUB_PAT=f",
               "HTTP_AUTH=g",          "proxy_authorization=h",
               "DATABASE_URL=postgres://app:s3cret@db:5432/app",
               "https_proxy=http://u:p@proxy:3128", "ALL_PROXY=socks5://user:pw@127.0.0.1:1080/",
               "GIT_AUTHOR_NAME=A",    "GIT_AUTHOR_EMAIL=a@b",
               "PWD=/w",               "OLDPWD=/v",
               "HTTP_PROXY=http://proxy:3128", "REPO_URL=https://user@host/x",
               "SSH_PASSPHRASE=q",     "DEPLOY_PASS=r",
               NULL};
  json_t *dropped = json_array();
  envpolicy_opts o = {.dropped = dropped};
  char **e = envpolicy_build_ex(b, &o);
  static const char *const gone[] = {"PGPASSWORD", "MYSQL_PWD", "DB_PASSWORD", "SMTP_PASSWD",
                                     "AWS_CREDENTIALS", "GITHUB_PAT", "HTTP_AUTH",
                                     "proxy_authorization", "DATABASE_URL", "https_proxy",
                                     "ALL_PROXY", "SSH_PASSPHRASE", "DEPLOY_PASS"};
  for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
    if (get(e, gone[i]))
      fail_msg("%s passed the default filter", gone[i]);
    if (!in_array(dropped, gone[i]))
      fail_msg("%s is not in the dropped list", gone[i]);
  }
  static const char *const kept[] = {"GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "PWD", "OLDPWD",
                                     "HTTP_PROXY", "REPO_URL"};
  for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
    if (!get(e, kept[i]))
      fail_msg("%s was dropped", kept[i]);
  assert_int_equal(json_array_size(dropped), sizeof gone / sizeof gone[0]);
  envpolicy_free(e);
  /* an explicit exclude replaces the default filter: nothing reported */
  json_array_clear(dropped);
  json_t *pol = json_pack("{s:[s]}", "exclude", "FOO");
  o.policy = pol;
  e = envpolicy_build_ex(b, &o);
  assert_non_null(get(e, "PGPASSWORD"));
  assert_int_equal(json_array_size(dropped), 0);
  envpolicy_free(e);
  json_decref(pol);
  json_decref(dropped);
}

/* Issue 9 item 1: variables that locate host sockets stay out when the
 * network is restricted, whatever their name when the value is a socket. */
static void test_socket_variables(void **state) {
  (void)state;
  char dir[] = "/tmp/warden-envsock.XXXXXX";
  assert_non_null(mkdtemp(dir));
  char sock[256], custom[300], tmux[320];
  snprintf(sock, sizeof sock, "%s/agent.sock", dir);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", sock);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  snprintf(custom, sizeof custom, "MY_AGENT=%s", sock);
  snprintf(tmux, sizeof tmux, "TMUX_LIKE=%s,1234,0", sock);
  char *b[] = {"SSH_AUTH_SOCK=/run/user/0/ssh", "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/0/bus",
               "DOCKER_HOST=unix:///var/run/docker.sock", "XDG_RUNTIME_DIR=/run/user/0",
               "DISPLAY=:0", "WAYLAND_DISPLAY=wayland-0", "GPG_AGENT_INFO=/x:1:1",
               "VSCODE_IPC_HOOK_CLI=/tmp/vscode.sock", custom, tmux,
               "X_BUS=unix:abstract=/tmp/dbus-x", "DOCKER_HOST_TCP=tcp://127.0.0.1:2375",
               "PATH=/usr/bin:/bin", "KEEP=/usr/bin", NULL};
  char *b2[] = {"DOCKER_HOST=tcp://127.0.0.1:2375", "DISPLAY=remote:10", NULL};
  json_t *dropped = json_array();
  envpolicy_opts o = {.drop_sockets = true, .dropped = dropped};
  char **e = envpolicy_build_ex(b, &o);
  static const char *const gone[] = {"SSH_AUTH_SOCK", "DBUS_SESSION_BUS_ADDRESS", "DOCKER_HOST",
                                     "XDG_RUNTIME_DIR", "DISPLAY", "WAYLAND_DISPLAY",
                                     "GPG_AGENT_INFO", "VSCODE_IPC_HOOK_CLI", "MY_AGENT",
                                     "TMUX_LIKE", "X_BUS"};
  for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
    if (get(e, gone[i]))
      fail_msg("%s passed with the network restricted", gone[i]);
    if (!in_array(dropped, gone[i]))
      fail_msg("%s is not in the dropped list", gone[i]);
  }
  assert_non_null(get(e, "PATH"));
  assert_non_null(get(e, "KEEP"));
  assert_non_null(get(e, "DOCKER_HOST_TCP"));
  envpolicy_free(e);
  e = envpolicy_build_ex(b2, &o);
  assert_non_null(get(e, "DOCKER_HOST"));
  assert_non_null(get(e, "DISPLAY"));
  envpolicy_free(e);
  /* network full: all of them pass */
  o.drop_sockets = false;
  e = envpolicy_build_ex(b, &o);
  for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++)
    assert_non_null(get(e, gone[i]));
  envpolicy_free(e);
  /* an explicit env entry is the client's choice and passes */
  o.drop_sockets = true;
  json_t *env = json_pack("{s:s}", "SSH_AUTH_SOCK", "/client/chose");
  o.env = env;
  e = envpolicy_build_ex(b, &o);
  assert_string_equal(get(e, "SSH_AUTH_SOCK"), "/client/chose");
  envpolicy_free(e);
  json_decref(env);
  json_decref(dropped);
  close(fd);
  unlink(sock);
  rmdir(dir);
}

/* Issue 10 item 3: many variables (a hash index, not a scan per put);
 * overrides replace in place, unset then set again works. */
static void test_many_variables(void **state) {
  (void)state;
  enum { N = 100000 };
  char **b = calloc(N + 1, sizeof *b);
  for (int i = 0; i < N; i++) {
    b[i] = malloc(32);
    snprintf(b[i], 32, "V%d=%d", i, i);
  }
  json_t *env = json_object();
  for (int i = 0; i < N; i += 2) {
    char k[32];
    snprintf(k, sizeof k, "V%d", i);
    json_object_set_new(env, k, i % 4 == 0 ? json_null() : json_string("over"));
  }
  char *extra[] = {"V0=back", NULL};
  envpolicy_opts o = {.env = env, .extra = extra};
  char **e = envpolicy_build_ex(b, &o);
  assert_non_null(e);
  size_t n = 0;
  while (e[n])
    n++;
  assert_int_equal(n, N - N / 4 + 1); /* every 4th unset, V0 set again */
  assert_string_equal(get(e, "V0"), "back");
  assert_string_equal(get(e, "V2"), "over");
  assert_string_equal(get(e, "V3"), "3");
  assert_null(get(e, "V4"));
  assert_string_equal(get(e, "V99999"), "99999");
  envpolicy_free(e);
  json_decref(env);
  for (int i = 0; i < N; i++)
    free(b[i]);
  free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_drops_secrets),
      cmocka_unit_test(test_explicit_exclude_replaces_default),
      cmocka_unit_test(test_core_and_none_and_include_only),
      cmocka_unit_test(test_overrides_and_extra),
      cmocka_unit_test(test_default_drops_passwords_and_lists_them),
      cmocka_unit_test(test_socket_variables),
      cmocka_unit_test(test_many_variables),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
