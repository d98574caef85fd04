/* protocol: the one description of warden's wire protocol (PROTOCOL.md).
 *
 * Every method, notification and type is described once, as static C tables
 * (types.c, methods.c; params._meta in meta.c). From those tables:
 *   - validate.c checks params and reports the JSON path of the first
 *     violation ("params.size.rows") and what was expected;
 *   - schema.c writes draft-07 JSON Schema (`warden generate-json-schema`);
 *   - typescript.c writes TypeScript declarations (`warden generate-ts`);
 *   - markdown.c writes the contract's reference (`warden generate-docs`).
 * Nothing here does I/O except the two emitters, which write into a
 * directory they are given.
 */
#ifndef WARDEN_PROTOCOL_H
#define WARDEN_PROTOCOL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define PROTOCOL_VERSION 1

typedef enum proto_kind {
  PK_ANY = 0, /* any JSON value */
  PK_BOOL,
  PK_INT,
  PK_STRING,
  PK_ARRAY,
  PK_OBJECT, /* fixed fields; unknown fields are a violation */
  PK_MAP,    /* object with arbitrary keys, values of `items` */
  PK_ONEOF,  /* exactly one variant, chosen by the string field `tag` */
  PK_EMPTY,  /* {} (no fields) */
} proto_kind;

typedef struct proto_type proto_type;

typedef struct proto_field {
  const char *name;
  const proto_type *type;
  bool required;
  const char *desc;
} proto_field;

struct proto_type {
  proto_kind kind;
  const char *name; /* non-NULL: a named definition ($ref in schemas, a TS type) */
  const char *desc;
  bool nullable; /* null is accepted too */
  /* PK_INT */
  bool has_min, has_max;
  long long min, max;
  /* PK_STRING */
  const char *const *enum_values; /* NULL-terminated, or NULL */
  const char *pattern;            /* ECMA regex for the schema; checked by `check` */
  size_t min_len, max_len; /* max_len 0: unbounded */
  bool (*check)(const char *s); /* extra string check matching `pattern` */
  const char *expected;         /* words for errors: "absolute path" */
  /* PK_ARRAY, PK_MAP values */
  const proto_type *items;
  size_t min_items; /* arrays */
  /* PK_OBJECT: terminated by a field with name NULL */
  const proto_field *fields;
  bool open; /* PK_OBJECT: other members are allowed (and ignored) */
  /* PK_ONEOF: NULL-terminated; each variant an object whose `tag` field is a
   * one-value enum */
  const proto_type *const *variants;
  const char *tag;
};

typedef enum proto_direction {
  PD_CLIENT_REQUEST = 0,   /* client -> server, answered */
  PD_CLIENT_NOTIFICATION,  /* client -> server, not answered */
  PD_SERVER_NOTIFICATION,  /* server -> client */
  PD_SERVER_REQUEST,       /* server -> client, answered by the client */
} proto_direction;

typedef struct proto_method {
  const char *name;
  proto_direction dir;
  const proto_type *params; /* NULL: no params (absent, null or {} accepted) */
  const proto_type *result; /* requests only */
  const char *desc;
} proto_method;

/* All methods, terminated by an entry with name NULL. */
extern const proto_method proto_methods[];

const proto_method *proto_method_find(const char *name, proto_direction dir);

/* Every named type reachable from the methods, for the emitters. Fills `out`
 * (capacity cap) in a stable order and returns the count. */
size_t proto_named_types(const proto_type **out, size_t cap);

/* The name a schema/TS file gets for a method's params/result:
 * "process/spawn" -> "ProcessSpawnParams", "ProcessSpawnResult";
 * notifications "process/output" -> "ProcessOutputNotification". */
void proto_type_name_for(const proto_method *m, bool result, char *buf, size_t len);

typedef struct proto_violation {
  char path[256];     /* "params.size.rows" */
  char expected[160]; /* "integer 1..65535" */
  char message[384];  /* "params.size.rows: expected integer 1..65535, got 0" */
} proto_violation;

/* A number in valid JSON that jansson cannot hold (an integer beyond 64
 * bits, a real that overflows a double) is read by the dispatcher as a string
 * of this prefix (a NUL, then "number:") and the number's text, so that the
 * validator can answer -32602 naming it instead of the line being a parse
 * error. */
#define PROTO_BIG_NUMBER_PREFIX "\0number:"
#define PROTO_BIG_NUMBER_PREFIX_LEN 8
/* The number's text when v is such a string, else NULL. */
const char *proto_big_number(const json_t *v);

/* Validate `v` against `t`; `path` names v ("params"). Returns true when
 * valid, else false with the first violation in *out. */
bool proto_validate(const proto_type *t, const json_t *v, const char *path, proto_violation *out);

/* Emitters: return 0 or a negative errno; *err_path names what failed. */
int proto_write_json_schema(const char *dir);
int proto_write_typescript(const char *dir);
/* DIR/reference.md: the contract's method and type reference (markdown.c). */
int proto_write_markdown(const char *dir);

/* params._meta (meta.c): request metadata that every client request's params
 * may carry; the dispatcher removes it before validating the params, so the
 * method tables do not list it. */
#define PROTO_META_FIELD "_meta"
extern const proto_type proto_t_request_meta; /* RequestMeta */

/* A method's params as the wire carries them, for the emitters: for a client
 * request, m->params plus an optional `_meta` field (a method without params
 * gets an object with only `_meta`), built in *out with `fields` (capacity
 * cap) and unnamed, so that it is written inline under the method's params
 * name; for other methods, m->params. NULL: no params. */
const proto_type *proto_wire_params(const proto_method *m, proto_type *out, proto_field *fields,
                                    size_t cap);
#define PROTO_WIRE_FIELDS_MAX 64

/* Shared named types, for code that builds these values. */
extern const proto_type proto_t_sandbox_policy;
extern const proto_type proto_t_resource_limits; /* ResourceLimits (config "limits") */

#endif
