#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "server/envpolicy.h"

#include <string.h>

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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_drops_secrets),
      cmocka_unit_test(test_explicit_exclude_replaces_default),
      cmocka_unit_test(test_core_and_none_and_include_only),
      cmocka_unit_test(test_overrides_and_extra),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
