/* A spec's child-side half, encoded for the zygote (server/exec/zygote.c)
 * and decoded there into a spec the supervisor can run from. Only what
 * sandbox_child_init() and sandbox_child_final() read travels: the host-side
 * bookkeeping (stubs, registry, environment, the proxy channel's server end)
 * stays with the server's spec. The proxy channel's child end travels beside
 * the bytes, as an fd (SCM_RIGHTS). */
#include "server/sandbox/sandbox_int.h"
#include "server/wire.h"

#include <unistd.h>

#define SBX_WIRE_MAGIC 0x53425831u /* "SBX1" */

int sandbox_spec_encode(const sandbox_spec *s, wire_buf *w) {
  wire_u32(w, SBX_WIRE_MAGIC);
  wire_u8(w, s->enforce);
  wire_u32(w, (uint32_t)s->backend);
  wire_u32(w, (uint32_t)s->net);
  wire_u64(w, s->clone_flags);
  wire_put(w, s->uid_map, sizeof s->uid_map);
  wire_put(w, s->gid_map, sizeof s->gid_map);
  wire_u32(w, (uint32_t)s->n_mops);
  for (size_t i = 0; i < s->n_mops; i++) {
    const sbx_mop *m = &s->mops[i];
    wire_u32(w, (uint32_t)m->kind);
    wire_str(w, m->src);
    wire_str(w, m->dst);
    wire_str(w, m->step);
    uint8_t bits = (uint8_t)(m->readonly | m->nofollow << 1 | m->create << 2 |
                             m->create_file << 3 | m->optional << 4 | m->ro_at_end << 5 |
                             m->scratch << 6);
    wire_u8(w, bits);
    wire_u32(w, m->mode);
  }
  wire_u8(w, s->restricted_root);
  wire_u8(w, s->root_ro_at_end);
  wire_i32(w, s->ll_abi);
  wire_u64(w, s->ll_handled);
  wire_u64(w, s->ll_scoped);
  wire_u32(w, (uint32_t)s->n_ll);
  for (size_t i = 0; i < s->n_ll; i++) {
    wire_str(w, s->ll[i].path);
    wire_u64(w, s->ll[i].access);
  }
  wire_u64(w, s->keep_caps);
  wire_u32(w, s->n_bpf);
  if (s->n_bpf)
    wire_put(w, s->bpf, (size_t)s->n_bpf * sizeof *s->bpf);
  wire_u8(w, s->proxy_child_fd >= 0);
  return w->oom ? -ENOMEM : 0;
}

void sandbox_spec_free_decoded(sandbox_spec *s) {
  if (!s)
    return;
  s->cleaned = true;       /* nothing of the host belongs to a decoded spec */
  s->proxy_child_fd = -1;  /* nor the fd: the decoder's caller received it and closes it */
  sandbox_spec_free(s);
}

int sandbox_spec_decode(wire_rd *r, int proxy_child_fd, sandbox_spec **out) {
  *out = NULL;
  sandbox_spec *s = calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  s->cleaned = true;
  s->proxy_child_fd = s->proxy_server_fd = -1;
  if (wire_get_u32(r) != SBX_WIRE_MAGIC && !r->err)
    r->err = -EPROTO;
  s->enforce = wire_get_u8(r) != 0;
  s->backend = (policy_backend)wire_get_u32(r);
  s->net = (policy_net_mode)wire_get_u32(r);
  s->clone_flags = (unsigned long)wire_get_u64(r);
  wire_get(r, s->uid_map, sizeof s->uid_map);
  wire_get(r, s->gid_map, sizeof s->gid_map);
  s->uid_map[sizeof s->uid_map - 1] = s->gid_map[sizeof s->gid_map - 1] = '\0';
  uint32_t n = wire_get_u32(r);
  if (!r->err && (n > WIRE_VEC_MAX || (size_t)n * 13 > r->left)) /* each op takes >= 13 bytes */
    r->err = -EPROTO;
  if (!r->err && n) {
    s->mops = calloc(n, sizeof *s->mops);
    if (!s->mops)
      r->err = -ENOMEM;
    for (uint32_t i = 0; !r->err && i < n; i++) {
      sbx_mop *m = &s->mops[i];
      s->n_mops = i + 1; /* freed with the spec from here on */
      m->kind = (sbx_mop_kind)wire_get_u32(r);
      m->src = wire_get_str(r);
      m->dst = wire_get_str(r);
      m->step = wire_get_str(r);
      uint8_t bits = wire_get_u8(r);
      m->readonly = bits & 1;
      m->nofollow = bits >> 1 & 1;
      m->create = bits >> 2 & 1;
      m->create_file = bits >> 3 & 1;
      m->optional = bits >> 4 & 1;
      m->ro_at_end = bits >> 5 & 1;
      m->scratch = bits >> 6 & 1;
      m->mode = wire_get_u32(r);
    }
  }
  s->restricted_root = wire_get_u8(r) != 0;
  s->root_ro_at_end = wire_get_u8(r) != 0;
  s->ll_abi = wire_get_i32(r);
  s->ll_handled = wire_get_u64(r);
  s->ll_scoped = wire_get_u64(r);
  n = wire_get_u32(r);
  if (!r->err && (n > WIRE_VEC_MAX || (size_t)n * 12 > r->left))
    r->err = -EPROTO;
  if (!r->err && n) {
    s->ll = calloc(n, sizeof *s->ll);
    if (!s->ll)
      r->err = -ENOMEM;
    for (uint32_t i = 0; !r->err && i < n; i++) {
      s->n_ll = i + 1;
      s->ll[i].path = wire_get_str(r);
      s->ll[i].access = wire_get_u64(r);
      if (!s->ll[i].path && !r->err)
        r->err = -EPROTO;
    }
  }
  s->keep_caps = wire_get_u64(r);
  n = wire_get_u32(r);
  if (!r->err && (n > UINT16_MAX || (size_t)n * sizeof *s->bpf > r->left))
    r->err = -EPROTO;
  if (!r->err && n) {
    s->bpf = malloc((size_t)n * sizeof *s->bpf);
    if (!s->bpf)
      r->err = -ENOMEM;
    else if (wire_get(r, s->bpf, (size_t)n * sizeof *s->bpf))
      s->n_bpf = (unsigned short)n;
  }
  bool has_proxy = wire_get_u8(r) != 0;
  if (!r->err && has_proxy != (proxy_child_fd >= 0))
    r->err = -EPROTO;
  if (r->err) {
    sandbox_spec_free_decoded(s);
    return r->err;
  }
  s->proxy_child_fd = proxy_child_fd;
  *out = s;
  return 0;
}
