/* Params validation against the protocol description: the first violation
 * is reported with its JSON path and what was expected. */
#include "protocol/protocol.h"

#include <stdio.h>
#include <string.h>

const proto_method *proto_method_find(const char *name, proto_direction dir) {
  for (const proto_method *m = proto_methods; m->name; m++)
    if (m->dir == dir && strcmp(m->name, name) == 0)
      return m;
  return NULL;
}

void proto_type_name_for(const proto_method *m, bool result, char *buf, size_t len) {
  size_t o = 0;
  bool upper = true;
  for (const char *p = m->name; *p && o + 1 < len; p++) {
    if (*p == '/' || *p == '_') {
      upper = true;
      continue;
    }
    char c = *p;
    if (upper && c >= 'a' && c <= 'z')
      c = (char)(c - 'a' + 'A');
    upper = false;
    buf[o++] = c;
  }
  buf[o] = '\0';
  const char *suffix = result                                  ? "Result"
                       : m->dir == PD_SERVER_NOTIFICATION      ? "Notification"
                       : m->dir == PD_CLIENT_NOTIFICATION      ? "Notification"
                                                               : "Params";
  snprintf(buf + o, len - o, "%s", suffix);
}

static const char *json_kind_name(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "object";
  case JSON_ARRAY: return "array";
  case JSON_STRING: return "string";
  case JSON_INTEGER: return "integer";
  case JSON_REAL: return "number";
  case JSON_TRUE:
  case JSON_FALSE: return "boolean";
  case JSON_NULL: return "null";
  }
  return "value";
}

/* Describe what `t` expects, in words. */
static void describe(const proto_type *t, char *buf, size_t len) {
  if (t->expected) {
    snprintf(buf, len, "%s", t->expected);
    return;
  }
  switch (t->kind) {
  case PK_ANY: snprintf(buf, len, "any value"); break;
  case PK_BOOL: snprintf(buf, len, "boolean"); break;
  case PK_INT:
    if (t->has_min && t->has_max)
      snprintf(buf, len, "integer %lld..%lld", t->min, t->max);
    else if (t->has_min)
      snprintf(buf, len, "integer >= %lld", t->min);
    else
      snprintf(buf, len, "integer");
    break;
  case PK_STRING:
    if (t->enum_values) {
      size_t o = (size_t)snprintf(buf, len, "one of");
      for (const char *const *e = t->enum_values; *e && o < len; e++)
        o += (size_t)snprintf(buf + o, len - o, "%s \"%s\"", e == t->enum_values ? "" : ",", *e);
    } else {
      snprintf(buf, len, "string");
    }
    break;
  case PK_ARRAY: snprintf(buf, len, "array"); break;
  case PK_OBJECT:
  case PK_MAP:
  case PK_EMPTY: snprintf(buf, len, "object"); break;
  case PK_ONEOF: snprintf(buf, len, "%s object", t->name ? t->name : "tagged"); break;
  }
  if (t->nullable) {
    size_t o = strlen(buf);
    snprintf(buf + o, len - o, " or null");
  }
}

static bool fail(proto_violation *out, const char *path, const proto_type *t, const char *got_fmt,
                 const char *got) {
  snprintf(out->path, sizeof out->path, "%s", path);
  describe(t, out->expected, sizeof out->expected);
  char gotbuf[160];
  snprintf(gotbuf, sizeof gotbuf, got_fmt, got);
  snprintf(out->message, sizeof out->message, "%s: expected %s, got %s", path, out->expected,
           gotbuf);
  return false;
}

static void child_path(char *buf, size_t len, const char *path, const char *key) {
  snprintf(buf, len, "%s.%s", path, key);
}

static bool validate(const proto_type *t, const json_t *v, const char *path, proto_violation *out);

static bool validate_object(const proto_type *t, const json_t *v, const char *path,
                            proto_violation *out) {
  char sub[256];
  for (const proto_field *f = t->fields; f && f->name; f++) {
    const json_t *fv = json_object_get(v, f->name);
    child_path(sub, sizeof sub, path, f->name);
    if (!fv) {
      if (f->required) {
        snprintf(out->path, sizeof out->path, "%s", sub);
        describe(f->type, out->expected, sizeof out->expected);
        snprintf(out->message, sizeof out->message, "%s: required field is missing (expected %s)",
                 sub, out->expected);
        return false;
      }
      continue;
    }
    /* An optional field may be given as null to mean "absent", except where
     * null has a meaning of its own (nullable types). */
    if (json_is_null(fv) && !f->required && !f->type->nullable)
      continue;
    if (!validate(f->type, fv, sub, out))
      return false;
  }
  const char *key;
  const json_t *val;
  json_object_foreach((json_t *)v, key, val) {
    bool known = false;
    for (const proto_field *f = t->fields; f && f->name; f++)
      if (strcmp(f->name, key) == 0)
        known = true;
    if (!known && !t->open) {
      child_path(sub, sizeof sub, path, key);
      snprintf(out->path, sizeof out->path, "%s", sub);
      snprintf(out->expected, sizeof out->expected, "no such field");
      snprintf(out->message, sizeof out->message, "%s: unknown field", sub);
      return false;
    }
  }
  return true;
}

const char *proto_big_number(const json_t *v) {
  if (!json_is_string(v) || json_string_length(v) <= PROTO_BIG_NUMBER_PREFIX_LEN ||
      memcmp(json_string_value(v), PROTO_BIG_NUMBER_PREFIX, PROTO_BIG_NUMBER_PREFIX_LEN) != 0)
    return NULL;
  return json_string_value(v) + PROTO_BIG_NUMBER_PREFIX_LEN;
}

static bool validate(const proto_type *t, const json_t *v, const char *path, proto_violation *out) {
  if (json_is_null(v) && t->nullable)
    return true;
  const char *big = proto_big_number(v);
  if (big && t->kind != PK_ANY) {
    char num[64];
    snprintf(num, sizeof num, "%.40s%s", big, strlen(big) > 40 ? "..." : "");
    return fail(out, path, t, "the number %s (out of range)", num);
  }
  switch (t->kind) {
  case PK_ANY: return true;
  case PK_BOOL:
    if (!json_is_boolean(v))
      return fail(out, path, t, "%s", json_kind_name(v));
    return true;
  case PK_INT: {
    if (!json_is_integer(v))
      return fail(out, path, t, "%s", json_kind_name(v));
    long long n = (long long)json_integer_value(v);
    if ((t->has_min && n < t->min) || (t->has_max && n > t->max)) {
      char num[32];
      snprintf(num, sizeof num, "%lld", n);
      return fail(out, path, t, "%s", num);
    }
    return true;
  }
  case PK_STRING: {
    if (!json_is_string(v))
      return fail(out, path, t, "%s", json_kind_name(v));
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (strlen(s) != n)
      return fail(out, path, t, "%s", "a string containing NUL");
    /* Lengths in characters (code points), as JSON Schema counts them. */
    size_t chars = 0;
    for (size_t i = 0; i < n; i++)
      chars += ((unsigned char)s[i] & 0xC0) != 0x80;
    if (chars < t->min_len || (t->max_len && chars > t->max_len)) {
      char num[48];
      snprintf(num, sizeof num, "a string of %zu characters", chars);
      return fail(out, path, t, "%s", num);
    }
    if (t->enum_values) {
      for (const char *const *e = t->enum_values; *e; e++)
        if (strcmp(*e, s) == 0)
          return true;
      char q[96];
      snprintf(q, sizeof q, "\"%.80s\"", s);
      return fail(out, path, t, "%s", q);
    }
    if (t->check && !t->check(s)) {
      char q[96];
      snprintf(q, sizeof q, "\"%.80s\"", s);
      return fail(out, path, t, "%s", q);
    }
    return true;
  }
  case PK_ARRAY: {
    if (!json_is_array(v))
      return fail(out, path, t, "%s", json_kind_name(v));
    if (json_array_size(v) < t->min_items)
      return fail(out, path, t, "%s", "an empty array");
    char sub[256];
    for (size_t i = 0; i < json_array_size(v); i++) {
      snprintf(sub, sizeof sub, "%s[%zu]", path, i);
      if (!validate(t->items, json_array_get(v, i), sub, out))
        return false;
    }
    return true;
  }
  case PK_EMPTY:
    if (!json_is_object(v))
      return fail(out, path, t, "%s", json_kind_name(v));
    if (json_object_size(v) != 0) {
      const char *key = json_object_iter_key(json_object_iter((json_t *)v));
      char sub[256];
      child_path(sub, sizeof sub, path, key);
      snprintf(out->path, sizeof out->path, "%s", sub);
      snprintf(out->expected, sizeof out->expected, "no such field");
      snprintf(out->message, sizeof out->message, "%s: unknown field", sub);
      return false;
    }
    return true;
  case PK_OBJECT:
    if (!json_is_object(v))
      return fail(out, path, t, "%s", json_kind_name(v));
    return validate_object(t, v, path, out);
  case PK_MAP: {
    if (!json_is_object(v))
      return fail(out, path, t, "%s", json_kind_name(v));
    const char *key;
    const json_t *val;
    char sub[256];
    json_object_foreach((json_t *)v, key, val) {
      child_path(sub, sizeof sub, path, key);
      if (!validate(t->items, val, sub, out))
        return false;
    }
    return true;
  }
  case PK_ONEOF: {
    if (!json_is_object(v))
      return fail(out, path, t, "%s", json_kind_name(v));
    char sub[256];
    child_path(sub, sizeof sub, path, t->tag);
    const json_t *tag = json_object_get(v, t->tag);
    const char *tv = json_string_value(tag);
    for (const proto_type *const *var = t->variants; tv && *var; var++) {
      const proto_field *tf = (*var)->fields; /* the tag is the first field */
      if (strcmp(tf->type->enum_values[0], tv) == 0)
        return validate_object(*var, v, path, out);
    }
    snprintf(out->path, sizeof out->path, "%s", sub);
    size_t o = (size_t)snprintf(out->expected, sizeof out->expected, "one of");
    for (const proto_type *const *var = t->variants; *var && o < sizeof out->expected; var++)
      o += (size_t)snprintf(out->expected + o, sizeof out->expected - o, "%s \"%s\"",
                            var == t->variants ? "" : ",", (*var)->fields->type->enum_values[0]);
    if (!tag)
      snprintf(out->message, sizeof out->message, "%s: required field is missing (expected %s)",
               sub, out->expected);
    else
      snprintf(out->message, sizeof out->message, "%s: expected %s, got %s%.80s%s", sub,
               out->expected, tv ? "\"" : "", tv ? tv : json_kind_name(tag), tv ? "\"" : "");
    return false;
  }
  }
  return true;
}

bool proto_validate(const proto_type *t, const json_t *v, const char *path, proto_violation *out) {
  memset(out, 0, sizeof *out);
  return validate(t, v, path, out);
}

/* ---- named types, in a stable order (first reached, depth first) ---- */

static void collect(const proto_type *t, const proto_type **out, size_t cap, size_t *n) {
  if (!t)
    return;
  if (t->name) {
    for (size_t i = 0; i < *n; i++)
      if (out[i] == t)
        return;
    if (*n < cap)
      out[(*n)++] = t;
  }
  switch (t->kind) {
  case PK_ARRAY:
  case PK_MAP: collect(t->items, out, cap, n); break;
  case PK_OBJECT:
    for (const proto_field *f = t->fields; f->name; f++)
      collect(f->type, out, cap, n);
    break;
  case PK_ONEOF:
    for (const proto_type *const *v = t->variants; *v; v++)
      collect(*v, out, cap, n);
    break;
  default: break;
  }
}

size_t proto_named_types(const proto_type **out, size_t cap) {
  size_t n = 0;
  for (const proto_method *m = proto_methods; m->name; m++) {
    collect(m->params, out, cap, &n);
    collect(m->result, out, cap, &n);
  }
  collect(&proto_t_request_meta, out, cap, &n); /* in every client request's params */
  return n;
}
