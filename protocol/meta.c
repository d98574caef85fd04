/* params._meta: request metadata, described once. Every client request's
 * params may carry it (MCP's convention); server/rpc.c takes it out before
 * the params are validated, so the method tables in types.c do not list it.
 * The emitters describe each client request's params as the wire carries
 * them through proto_wire_params(). */
#include "protocol/protocol.h"

#include <string.h>

static const proto_type t_traceparent = {
    .kind = PK_STRING,
    .desc = "W3C Trace Context traceparent (\"00-<32 hex trace id>-<16 hex parent id>-<2 hex "
            "flags>\"): the request's span continues this trace. A malformed one is ignored and a "
            "new trace starts; a clear sampled flag means no spans are recorded for it."};
static const proto_type t_tracestate = {
    .kind = PK_STRING,
    .desc = "W3C Trace Context tracestate that goes with traceparent; ignored without it."};
static const proto_field f_request_meta[] = {
    {"traceparent", &t_traceparent, false, NULL},
    {"tracestate", &t_tracestate, false, NULL},
    {0},
};
const proto_type proto_t_request_meta = {
    .kind = PK_OBJECT,
    .name = "RequestMeta",
    .fields = f_request_meta,
    .open = true,
    .desc = "Request metadata, accepted in the params of every client request as `_meta`. It "
            "must be an object (null means absent) and is removed before the params are "
            "validated, so it never counts as an unknown field. Members other than these are "
            "ignored and reserved."};

const proto_type *proto_wire_params(const proto_method *m, proto_type *out, proto_field *fields,
                                    size_t cap) {
  if (m->dir != PD_CLIENT_REQUEST)
    return m->params;
  const proto_type *p = m->params;
  if (p && p->kind != PK_OBJECT)
    return p; /* not an object: nothing to add _meta to (none today) */
  size_t n = 0;
  for (const proto_field *f = p ? p->fields : NULL; f && f->name; f++) {
    if (n + 2 > cap)
      return p;
    fields[n++] = *f;
  }
  if (n + 2 > cap)
    return p;
  fields[n++] = (proto_field){PROTO_META_FIELD, &proto_t_request_meta, false,
                                 "Request metadata (trace context); removed before the params "
                                 "are validated."};
  fields[n] = (proto_field){0};
  if (p)
    *out = *p;
  else
    *out = (proto_type){.kind = PK_OBJECT}; /* no arguments: params absent, null, {} or _meta */
  out->name = NULL; /* written inline under the method's params name */
  out->fields = fields;
  return out;
}
