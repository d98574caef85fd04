/* The zygote's encoding of a sandbox spec (server/sandbox/spec_wire.c):
 * what is decoded is what was encoded, field by field, and every truncation
 * or corruption of the bytes is refused (-EPROTO), never read past or
 * leaked (run under ASan in the test suite). */
#include "server/sandbox/sandbox_int.h"
#include "server/wire.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

static sandbox_spec *sample(void) {
  sandbox_spec *s = calloc(1, sizeof *s);
  s->enforce = true;
  s->backend = POLICY_BACKEND_NAMESPACES;
  s->net = POLICY_NET_PROXY;
  s->clone_flags = 0x7e020000ul;
  snprintf(s->uid_map, sizeof s->uid_map, "0 1000 1\n");
  snprintf(s->gid_map, sizeof s->gid_map, "0 1000 1\n");
  s->n_mops = 3;
  s->mops = calloc(3, sizeof *s->mops);
  const char *src[] = {"/oldroot/work/ws", NULL, "/oldroot/etc/hosts"};
  for (int i = 0; i < 3; i++) {
    s->mops[i].kind = (sbx_mop_kind)i;
    s->mops[i].src = src[i] ? strdup(src[i]) : NULL;
    char b[64];
    snprintf(b, sizeof b, "/newroot/dst%d", i);
    s->mops[i].dst = strdup(b);
    snprintf(b, sizeof b, "step %d", i);
    s->mops[i].step = strdup(b);
    s->mops[i].readonly = i == 0;
    s->mops[i].create_file = i == 2;
    s->mops[i].scratch = i == 1;
    s->mops[i].mode = 0755 + (unsigned)i;
  }
  s->root_ro_at_end = true;
  s->ll_abi = 6;
  s->ll_handled = 0xffff;
  s->ll_scoped = 3;
  s->n_ll = 2;
  s->ll = calloc(2, sizeof *s->ll);
  s->ll[0] = (sbx_llrule){strdup("/"), 7};
  s->ll[1] = (sbx_llrule){strdup("/work/ws"), 0xfff};
  s->keep_caps = 1ull << 1;
  s->n_bpf = 5;
  s->bpf = calloc(5, sizeof *s->bpf);
  for (int i = 0; i < 5; i++)
    s->bpf[i] = (struct sock_filter){(unsigned short)i, 1, 2, (unsigned)i * 7};
  s->proxy_child_fd = -1;
  s->proxy_server_fd = -1;
  s->cleaned = true;
  return s;
}

static void encode(const sandbox_spec *s, wire_buf *w) {
  memset(w, 0, sizeof *w);
  assert_int_equal(sandbox_spec_encode(s, w), 0);
}

static void test_round_trip(void **state) {
  (void)state;
  sandbox_spec *s = sample();
  wire_buf w;
  encode(s, &w);
  wire_rd r = {.p = w.p, .left = w.len};
  sandbox_spec *d = NULL;
  assert_int_equal(sandbox_spec_decode(&r, -1, &d), 0);
  assert_int_equal(r.left, 0);
  assert_true(d->enforce);
  assert_int_equal(d->backend, s->backend);
  assert_int_equal(d->net, s->net);
  assert_int_equal(d->clone_flags, s->clone_flags);
  assert_string_equal(d->uid_map, s->uid_map);
  assert_string_equal(d->gid_map, s->gid_map);
  assert_int_equal(d->n_mops, 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(d->mops[i].kind, s->mops[i].kind);
    if (s->mops[i].src)
      assert_string_equal(d->mops[i].src, s->mops[i].src);
    else
      assert_null(d->mops[i].src);
    assert_string_equal(d->mops[i].dst, s->mops[i].dst);
    assert_string_equal(d->mops[i].step, s->mops[i].step);
    assert_int_equal(d->mops[i].readonly, s->mops[i].readonly);
    assert_int_equal(d->mops[i].create_file, s->mops[i].create_file);
    assert_int_equal(d->mops[i].scratch, s->mops[i].scratch);
    assert_int_equal(d->mops[i].mode, s->mops[i].mode);
  }
  assert_true(d->root_ro_at_end);
  assert_int_equal(d->ll_abi, 6);
  assert_int_equal(d->ll_handled, 0xffff);
  assert_int_equal(d->ll_scoped, 3);
  assert_int_equal(d->n_ll, 2);
  assert_string_equal(d->ll[1].path, "/work/ws");
  assert_int_equal(d->ll[1].access, 0xfff);
  assert_int_equal(d->keep_caps, s->keep_caps);
  assert_int_equal(d->n_bpf, 5);
  assert_memory_equal(d->bpf, s->bpf, 5 * sizeof *s->bpf);
  assert_int_equal(d->proxy_child_fd, -1);
  sandbox_spec_free_decoded(d);
  wire_buf_free(&w);
  sandbox_spec_free(s);
}

static void test_every_truncation_refused(void **state) {
  (void)state;
  sandbox_spec *s = sample();
  wire_buf w;
  encode(s, &w);
  for (size_t n = 0; n < w.len; n++) {
    wire_rd r = {.p = w.p, .left = n};
    sandbox_spec *d = (sandbox_spec *)1;
    assert_int_equal(sandbox_spec_decode(&r, -1, &d), -EPROTO);
    assert_null(d);
  }
  wire_buf_free(&w);
  sandbox_spec_free(s);
}

static void test_corruption_refused_or_consistent(void **state) {
  (void)state;
  sandbox_spec *s = sample();
  wire_buf w;
  encode(s, &w);
  /* Every byte set to 0xff in turn: a length or count becomes huge (refused)
   * or a value changes (decoded as such); never a crash or a leak. */
  for (size_t i = 0; i < w.len; i++) {
    uint8_t saved = w.p[i];
    w.p[i] = 0xff;
    wire_rd r = {.p = w.p, .left = w.len};
    sandbox_spec *d = NULL;
    int rc = sandbox_spec_decode(&r, -1, &d);
    if (i < 4)
      assert_int_equal(rc, -EPROTO); /* the magic */
    if (rc == 0)
      sandbox_spec_free_decoded(d);
    else
      assert_null(d);
    w.p[i] = saved;
  }
  /* The proxy fd must travel when the encoding says it does, and not else. */
  wire_rd r = {.p = w.p, .left = w.len};
  sandbox_spec *d = NULL;
  assert_int_equal(sandbox_spec_decode(&r, 9, &d), -EPROTO);
  wire_buf_free(&w);
  sandbox_spec_free(s);
}

int main(int argc, char **argv) {
  const struct CMUnitTest all[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_every_truncation_refused),
      cmocka_unit_test(test_corruption_refused_or_consistent),
  };
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(all, NULL, NULL);
}
