/* Params validation: paths of the first violation, expectations, and the
 * tagged-union policy shapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "protocol/protocol.h"

#include <string.h>

static const proto_type *params_of(const char *method) {
  const proto_method *m = proto_method_find(method, PD_CLIENT_REQUEST);
  assert_non_null(m);
  return m->params;
}

static void expect_violation(const char *method, const char *json, const char *path) {
  json_error_t e;
  json_t *v = json_loads(json, 0, &e);
  assert_non_null(v);
  proto_violation out;
  bool ok = proto_validate(params_of(method), v, "params", &out);
  if (path == NULL) {
    if (!ok)
      fail_msg("unexpected violation: %s", out.message);
  } else {
    assert_false(ok);
    if (strcmp(out.path, path) != 0)
      fail_msg("path %s, expected %s (%s)", out.path, path, out.message);
  }
  json_decref(v);
}

static void test_spawn(void **state) {
  (void)state;
  expect_violation("process/spawn", "{\"processId\":\"a\",\"argv\":[\"x\"]}", NULL);
  expect_violation("process/spawn", "{\"argv\":[\"x\"]}", "params.processId");
  expect_violation("process/spawn", "{\"processId\":\"\",\"argv\":[\"x\"]}", "params.processId");
  expect_violation("process/spawn", "{\"processId\":\"a\",\"argv\":[]}", "params.argv");
  expect_violation("process/spawn", "{\"processId\":\"a\",\"argv\":[1]}", "params.argv[0]");
  expect_violation("process/spawn", "{\"processId\":\"a\",\"argv\":[\"x\"],\"cwd\":\"rel\"}",
                   "params.cwd");
  expect_violation("process/spawn",
                   "{\"processId\":\"a\",\"argv\":[\"x\"],\"size\":{\"rows\":1,\"cols\":70000}}",
                   "params.size.cols");
  expect_violation("process/spawn", "{\"processId\":\"a\",\"argv\":[\"x\"],\"env\":{\"A\":1}}",
                   "params.env.A");
  expect_violation("process/spawn", "{\"processId\":\"a\",\"argv\":[\"x\"],\"env\":{\"A\":null}}",
                   NULL);
  expect_violation("process/spawn",
                   "{\"processId\":\"a\",\"argv\":[\"x\"],\"outputBytesCap\":null,\"timeoutMs\":5}",
                   NULL);
  expect_violation("process/spawn", "{\"processId\":\"a\",\"argv\":[\"x\"],\"timeoutMs\":0}",
                   "params.timeoutMs");
  expect_violation("process/spawn", "{\"processId\":\"a\",\"argv\":[\"x\"],\"tty\":\"yes\"}",
                   "params.tty");
  expect_violation("process/spawn", "{\"processId\":\"a\",\"argv\":[\"x\"],\"extra\":1}",
                   "params.extra");
}

static void test_policies(void **state) {
  (void)state;
  const char *ok[] = {
      "{\"type\":\"dangerFullAccess\"}",
      "{\"type\":\"readOnly\",\"networkAccess\":true}",
      "{\"type\":\"workspaceWrite\",\"writableRoots\":[\"/a\"],\"excludeSlashTmp\":true}",
      "{\"type\":\"externalSandbox\",\"networkAccess\":\"enabled\"}",
      ("{\"type\":\"split\",\"fileSystem\":{\"entries\":[{\"path\":\":root\",\"access\":\"read\"}]},"
       "\"network\":{\"mode\":\"none\"}}"),
      "{\"type\":\"profile\",\"name\":\":workspace\"}",
  };
  char buf[512];
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    snprintf(buf, sizeof buf, "{\"cwd\":\"/\",\"sandbox\":%s}", ok[i]);
    expect_violation("policy/resolve", buf, NULL);
  }
  expect_violation("policy/resolve", "{\"cwd\":\"/\",\"sandbox\":{}}", "params.sandbox.type");
  expect_violation("policy/resolve", "{\"cwd\":\"/\",\"sandbox\":{\"type\":\"x\"}}",
                   "params.sandbox.type");
  expect_violation("policy/resolve",
                   "{\"cwd\":\"/\",\"sandbox\":{\"type\":\"workspaceWrite\",\"writableRoots\":[\"a\"]}}",
                   "params.sandbox.writableRoots[0]");
  expect_violation("policy/resolve",
                   "{\"cwd\":\"/\",\"sandbox\":{\"type\":\"readOnly\",\"excludeSlashTmp\":true}}",
                   "params.sandbox.excludeSlashTmp");
  expect_violation("policy/resolve",
                   "{\"cwd\":\"/\",\"sandbox\":{\"type\":\"split\",\"fileSystem\":{\"entries\":"
                   "[{\"path\":\"/a\",\"access\":\"rw\"}]},\"network\":{\"mode\":\"none\"}}}",
                   "params.sandbox.fileSystem.entries[0].access");
  expect_violation("policy/resolve",
                   "{\"cwd\":\"/\",\"sandbox\":{\"type\":\"split\",\"fileSystem\":{\"entries\":[]}}}",
                   "params.sandbox.network");
}

static void test_messages_name_the_problem(void **state) {
  (void)state;
  json_t *v = json_pack("{s:s,s:{s:i,s:i}}", "processId", "a", "size", "rows", 0, "cols", 1);
  proto_violation out;
  assert_false(proto_validate(params_of("process/resize"), v, "params", &out));
  assert_string_equal(out.expected, "integer 1..65535");
  assert_non_null(strstr(out.message, "params.size.rows"));
  assert_non_null(strstr(out.message, "got 0"));
  json_decref(v);
  v = json_pack("{s:s,s:s}", "processId", "a", "deltaBase64", "abc");
  assert_false(proto_validate(params_of("process/write"), v, "params", &out));
  assert_string_equal(out.path, "params.deltaBase64");
  json_decref(v);
}

static void test_names_and_tables(void **state) {
  (void)state;
  char buf[128];
  proto_type_name_for(proto_method_find("process/spawn", PD_CLIENT_REQUEST), false, buf,
                      sizeof buf);
  assert_string_equal(buf, "ProcessSpawnParams");
  proto_type_name_for(proto_method_find("network/policy/get", PD_CLIENT_REQUEST), true, buf,
                      sizeof buf);
  assert_string_equal(buf, "NetworkPolicyGetResult");
  proto_type_name_for(proto_method_find("process/output", PD_SERVER_NOTIFICATION), false, buf,
                      sizeof buf);
  assert_string_equal(buf, "ProcessOutputNotification");
  const proto_type *named[128];
  size_t n = proto_named_types(named, 128);
  assert_true(n > 20);
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++)
      assert_true(strcmp(named[i]->name, named[j]->name) != 0);
}

/* proto_wire_params: every client request's params gain an optional _meta
 * (RequestMeta, whose other members are allowed); nothing else changes. */
static void test_wire_params_meta(void **state) {
  (void)state;
  for (const proto_method *m = proto_methods; m->name; m++) {
    proto_type wire;
    proto_field fields[PROTO_WIRE_FIELDS_MAX];
    const proto_type *p = proto_wire_params(m, &wire, fields, PROTO_WIRE_FIELDS_MAX);
    if (m->dir != PD_CLIENT_REQUEST) {
      assert_ptr_equal(p, m->params);
      continue;
    }
    assert_ptr_equal(p, &wire);
    assert_int_equal(p->kind, PK_OBJECT);
    assert_null(p->name);
    size_t n = 0, own = 0;
    while (p->fields[n].name)
      n++;
    while (m->params && m->params->fields[own].name)
      own++;
    assert_int_equal(n, own + 1);
    assert_string_equal(p->fields[own].name, PROTO_META_FIELD);
    assert_ptr_equal(p->fields[own].type, &proto_t_request_meta);
    assert_false(p->fields[own].required);
    json_t *v = json_pack("{s:{s:s,s:i}}", "_meta", "traceparent", "x", "other", 1);
    proto_violation out;
    /* other required fields may be missing here; _meta itself is fine */
    if (!proto_validate(p, v, "params", &out) && strncmp(out.path, "params._meta", 12) == 0)
      fail_msg("%s: %s", m->name, out.message);
    json_decref(v);
  }
  json_t *bad = json_pack("{s:i}", "traceparent", 1);
  proto_violation out;
  assert_false(proto_validate(&proto_t_request_meta, bad, "params._meta", &out));
  assert_string_equal(out.path, "params._meta.traceparent");
  json_decref(bad);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_spawn),
      cmocka_unit_test(test_policies),
      cmocka_unit_test(test_messages_name_the_problem),
      cmocka_unit_test(test_names_and_tables),
      cmocka_unit_test(test_wire_params_meta),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
