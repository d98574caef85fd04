/* `warden generate-json-schema`: draft-07 JSON Schema from the protocol
 * description. One file per params/result/notification type, each with the
 * named types it references under "definitions", and one bundle
 * warden_protocol.schemas.json holding every definition. */
#include "protocol/emit.h"
#include "protocol/protocol.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define DRAFT07 "http://json-schema.org/draft-07/schema#"

static json_t *type_schema(const proto_type *t, bool inline_root);

static json_t *ref_to(const proto_type *t) {
  char ref[160];
  snprintf(ref, sizeof ref, "#/definitions/%s", t->name);
  return json_pack("{s:s}", "$ref", ref);
}

/* A use of `t` inside another type: a $ref for named types. */
static json_t *use_of(const proto_type *t) {
  if (!t->name)
    return type_schema(t, true);
  json_t *r = ref_to(t);
  if (t->nullable) {
    json_t *any = json_pack("{s:[o,{s:s}]}", "anyOf", r, "type", "null");
    return any;
  }
  return r;
}

static void set_type(json_t *o, const char *type, bool nullable) {
  if (nullable)
    json_object_set_new(o, "type", json_pack("[s,s]", type, "null"));
  else
    json_object_set_new(o, "type", json_string(type));
}

/* An optional field given as null means absent (docs/protocol.md): its
 * schema accepts null too. */
static json_t *or_null(json_t *fs) {
  json_t *type = json_object_get(fs, "type");
  if (json_is_string(type)) {
    json_object_set_new(fs, "type", json_pack("[s,s]", json_string_value(type), "null"));
    json_t *e = json_object_get(fs, "enum");
    if (e)
      json_array_append_new(e, json_null());
    return fs;
  }
  return json_pack("{s:[o,{s:s}]}", "anyOf", fs, "type", "null");
}

static json_t *object_schema(const proto_type *t) {
  json_t *o = json_object();
  set_type(o, "object", t->nullable);
  json_t *props = json_object();
  json_t *req = json_array();
  for (const proto_field *f = t->fields; f->name; f++) {
    json_t *fs = use_of(f->type);
    if (!f->required && !f->type->nullable)
      fs = or_null(fs);
    if (f->desc)
      json_object_set_new(fs, "description", json_string(f->desc));
    json_object_set_new(props, f->name, fs);
    if (f->required)
      json_array_append_new(req, json_string(f->name));
  }
  json_object_set_new(o, "properties", props);
  if (json_array_size(req))
    json_object_set_new(o, "required", req);
  else
    json_decref(req);
  if (!t->open)
    json_object_set_new(o, "additionalProperties", json_false());
  return o;
}

static json_t *type_schema(const proto_type *t, bool inline_root) {
  (void)inline_root;
  json_t *o = NULL;
  switch (t->kind) {
  case PK_ANY: o = json_object(); break;
  case PK_BOOL:
    o = json_object();
    set_type(o, "boolean", t->nullable);
    break;
  case PK_INT:
    o = json_object();
    set_type(o, "integer", t->nullable);
    if (t->has_min)
      json_object_set_new(o, "minimum", json_integer(t->min));
    if (t->has_max)
      json_object_set_new(o, "maximum", json_integer(t->max));
    break;
  case PK_STRING:
    o = json_object();
    set_type(o, "string", t->nullable);
    if (t->enum_values) {
      json_t *e = json_array();
      for (const char *const *v = t->enum_values; *v; v++)
        json_array_append_new(e, json_string(*v));
      if (t->nullable)
        json_array_append_new(e, json_null());
      json_object_set_new(o, "enum", e);
    }
    if (t->pattern)
      json_object_set_new(o, "pattern", json_string(t->pattern));
    if (t->min_len)
      json_object_set_new(o, "minLength", json_integer((json_int_t)t->min_len));
    if (t->max_len)
      json_object_set_new(o, "maxLength", json_integer((json_int_t)t->max_len));
    break;
  case PK_ARRAY:
    o = json_object();
    set_type(o, "array", t->nullable);
    json_object_set_new(o, "items", use_of(t->items));
    if (t->min_items)
      json_object_set_new(o, "minItems", json_integer((json_int_t)t->min_items));
    break;
  case PK_MAP:
    o = json_object();
    set_type(o, "object", t->nullable);
    json_object_set_new(o, "additionalProperties", use_of(t->items));
    break;
  case PK_EMPTY:
    o = json_object();
    set_type(o, "object", false);
    json_object_set_new(o, "additionalProperties", json_false());
    break;
  case PK_OBJECT: o = object_schema(t); break;
  case PK_ONEOF: {
    o = json_object();
    json_t *alts = json_array();
    for (const proto_type *const *v = t->variants; *v; v++)
      json_array_append_new(alts, use_of(*v));
    json_object_set_new(o, "oneOf", alts);
    break;
  }
  }
  if (t->desc)
    json_object_set_new(o, "description", json_string(t->desc));
  return o;
}

/* Named types reachable from t (not t itself unless reached again). */
static void reachable(const proto_type *t, const proto_type **out, size_t cap, size_t *n) {
  if (!t)
    return;
  const proto_type *kids[64];
  size_t nk = 0;
  switch (t->kind) {
  case PK_ARRAY:
  case PK_MAP: kids[nk++] = t->items; break;
  case PK_OBJECT:
    for (const proto_field *f = t->fields; f->name && nk < 64; f++)
      kids[nk++] = f->type;
    break;
  case PK_ONEOF:
    for (const proto_type *const *v = t->variants; *v && nk < 64; v++)
      kids[nk++] = *v;
    break;
  default: break;
  }
  for (size_t i = 0; i < nk; i++) {
    const proto_type *k = kids[i];
    if (k->name) {
      bool seen = false;
      for (size_t j = 0; j < *n; j++)
        seen |= out[j] == k;
      if (seen)
        continue;
      if (*n < cap)
        out[(*n)++] = k;
    }
    reachable(k, out, cap, n);
  }
}

/* The schema document for one method's params or result. */
static json_t *file_schema(const proto_type *t, const char *title, const char *desc) {
  json_t *root;
  if (t->name && strcmp(t->name, title) != 0) {
    root = ref_to(t); /* an alias of a shared named type */
  } else {
    root = type_schema(t, true);
  }
  json_t *doc = json_pack("{s:s,s:s}", "$schema", DRAFT07, "title", title);
  json_object_update(doc, root);
  json_decref(root);
  if (desc && !json_object_get(doc, "description"))
    json_object_set_new(doc, "description", json_string(desc));
  const proto_type *refs[128];
  size_t n = 0;
  if (t->name && strcmp(t->name, title) != 0)
    refs[n++] = t;
  reachable(t, refs, 128, &n);
  if (n) {
    json_t *defs = json_object();
    for (size_t i = 0; i < n; i++)
      if (!(refs[i] == t && strcmp(t->name, title) == 0))
        json_object_set_new(defs, refs[i]->name, type_schema(refs[i], true));
    json_object_set_new(doc, "definitions", defs);
  }
  return doc;
}

int proto_write_json_schema(const char *dir) {
  int rc = emit_mkdir_p(dir);
  if (rc < 0)
    return rc;
  json_t *bundle_defs = json_object();
  json_t *methods = json_object();
  for (const proto_method *m = proto_methods; m->name && rc == 0; m++) {
    proto_type wire;
    proto_field wire_fields[PROTO_WIRE_FIELDS_MAX];
    const proto_type *params = proto_wire_params(m, &wire, wire_fields, PROTO_WIRE_FIELDS_MAX);
    for (int which = 0; which < 2 && rc == 0; which++) {
      const proto_type *t = which ? m->result : params;
      if (!t)
        continue;
      char title[128];
      proto_type_name_for(m, which == 1, title, sizeof title);
      json_t *doc = file_schema(t, title, which ? NULL : m->desc);
      rc = emit_write_json(dir, title, doc);
      json_decref(doc);
      json_object_set_new(bundle_defs, title,
                          t->name && strcmp(t->name, title) != 0 ? ref_to(t)
                                                                 : type_schema(t, true));
    }
    static const char *const dirs[] = {"clientRequest", "clientNotification", "serverNotification",
                                       "serverRequest"};
    json_t *entry = json_pack("{s:s}", "direction", dirs[m->dir]);
    char title[128];
    if (params) {
      proto_type_name_for(m, false, title, sizeof title);
      json_object_set_new(entry, "params", json_string(title));
    }
    if (m->result) {
      proto_type_name_for(m, true, title, sizeof title);
      json_object_set_new(entry, "result", json_string(title));
    }
    if (m->desc)
      json_object_set_new(entry, "description", json_string(m->desc));
    json_object_set_new(methods, m->name, entry);
  }
  const proto_type *named[128];
  size_t n = proto_named_types(named, 128);
  for (size_t i = 0; i < n; i++)
    if (!json_object_get(bundle_defs, named[i]->name))
      json_object_set_new(bundle_defs, named[i]->name, type_schema(named[i], true));
  json_t *bundle = json_pack("{s:s,s:s,s:i,s:o,s:o}", "$schema", DRAFT07, "title",
                             "WardenProtocol", "protocolVersion", PROTOCOL_VERSION, "x-methods",
                             methods, "definitions", bundle_defs);
  if (rc == 0)
    rc = emit_write_json(dir, "warden_protocol.schemas", bundle);
  json_decref(bundle);
  return rc;
}
