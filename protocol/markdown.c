/* `warden generate-docs`: the method reference of the contract
 * (docs/reference.md) from the protocol description: every method and
 * notification with its params and result, then every named type with its
 * fields. The hand-written contract is docs/protocol.md; this file is only
 * ever generated, and a test fails when the committed copy drifts. */
#include "protocol/emit.h"
#include "protocol/protocol.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOC_FILE "reference.md"

/* GitHub-style anchor of a heading that is exactly `name`. */
static void anchor(const char *name, char *buf, size_t len) {
  size_t o = 0;
  for (const char *p = name; *p && o + 1 < len; p++) {
    char c = *p;
    if (c >= 'A' && c <= 'Z')
      c = (char)(c - 'A' + 'a');
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')
      buf[o++] = c;
  }
  buf[o] = '\0';
}

/* Table cells: '|' and newlines would break the row. */
static void cell(FILE *f, const char *s) {
  for (const char *p = s ? s : ""; *p; p++) {
    if (*p == '|')
      fputs("\\|", f);
    else if (*p == '\n')
      fputc(' ', f);
    else
      fputc(*p, f);
  }
}

static void type_text(FILE *f, const proto_type *t, bool top);

static void fields_inline(FILE *f, const proto_type *t) {
  fputs("{", f);
  for (const proto_field *fl = t->fields; fl && fl->name; fl++) {
    fprintf(f, "%s%s%s: ", fl == t->fields ? "" : ", ", fl->name, fl->required ? "" : "?");
    type_text(f, fl->type, false);
  }
  fputs("}", f);
}

/* A type in words: named types link to their section. */
static void type_text(FILE *f, const proto_type *t, bool top) {
  if (t->name && !top) {
    char a[128];
    anchor(t->name, a, sizeof a);
    fprintf(f, "[%s](#%s)", t->name, a);
  } else {
    switch (t->kind) {
    case PK_ANY: fputs("any", f); break;
    case PK_BOOL: fputs("boolean", f); break;
    case PK_INT:
      fputs("integer", f);
      if (t->has_min && t->has_max)
        fprintf(f, " %lld..%lld", t->min, t->max);
      else if (t->has_min)
        fprintf(f, " >= %lld", t->min);
      break;
    case PK_STRING:
      if (t->enum_values) {
        for (const char *const *e = t->enum_values; *e; e++)
          fprintf(f, "%s`\"%s\"`", e == t->enum_values ? "" : " \\| ", *e);
      } else {
        fputs("string", f);
        if (t->min_len && t->max_len)
          fprintf(f, " (%zu..%zu characters)", t->min_len, t->max_len);
        else if (t->max_len)
          fprintf(f, " (at most %zu characters)", t->max_len);
        else if (t->min_len)
          fprintf(f, " (at least %zu characters)", t->min_len);
        if (t->pattern)
          fprintf(f, " matching `%s`", t->pattern);
      }
      break;
    case PK_ARRAY:
      fputs(t->min_items ? "non-empty array of " : "array of ", f);
      type_text(f, t->items, false);
      break;
    case PK_MAP:
      fputs("object of string to ", f);
      type_text(f, t->items, false);
      break;
    case PK_EMPTY: fputs("`{}`", f); break;
    case PK_OBJECT: fields_inline(f, t); break;
    case PK_ONEOF:
      fputs("one of ", f);
      for (const proto_type *const *v = t->variants; *v; v++) {
        if (v != t->variants)
          fputs(", ", f);
        type_text(f, *v, false);
      }
      fprintf(f, " (by `%s`)", t->tag);
      break;
    }
  }
  if (t->nullable)
    fputs(" or null", f);
}

static void field_table(FILE *f, const proto_type *t) {
  fputs("| Field | Type | Required | Description |\n|---|---|---|---|\n", f);
  for (const proto_field *fl = t->fields; fl && fl->name; fl++) {
    fprintf(f, "| `%s` | ", fl->name);
    type_text(f, fl->type, false);
    fprintf(f, " | %s | ", fl->required ? "yes" : "no");
    const char *d = fl->desc ? fl->desc : (!fl->type->name ? fl->type->desc : NULL);
    cell(f, d);
    fputs(" |\n", f);
  }
  fputc('\n', f);
}

/* The body of a type: a field table for objects, else the type in words. */
static void type_body(FILE *f, const proto_type *t) {
  if (t->desc)
    fprintf(f, "%s\n\n", t->desc);
  if (t->kind == PK_OBJECT && t->fields && t->fields->name) {
    field_table(f, t);
  } else {
    type_text(f, t, true);
    fputs("\n\n", f);
  }
}

/* Params or result of a method: a link for named types, else the body. */
static void part(FILE *f, const char *label, const proto_type *t) {
  if (!t) {
    fprintf(f, "%s: none (absent, null or `{}`).\n\n", label);
    return;
  }
  if (t->name) {
    fprintf(f, "%s: ", label);
    type_text(f, t, false);
    fputs("\n\n", f);
    return;
  }
  fprintf(f, "%s:\n\n", label);
  if (t->kind == PK_OBJECT && t->fields && t->fields->name) {
    field_table(f, t);
  } else {
    type_text(f, t, true);
    fputs("\n\n", f);
  }
}

static const char *const dir_title[] = {
    "Client requests (client to server, answered)",
    "Client notifications (client to server, not answered)",
    "Server notifications (server to client)",
    "Server requests (server to client, answered by the client)",
};

static void write_doc(FILE *f) {
  fprintf(f,
          "<!-- GENERATED by `warden generate-docs --out docs` from protocol/. Do not edit:\n"
          "     change protocol/types.c and regenerate. The hand-written contract is\n"
          "     docs/protocol.md. -->\n"
          "# warden protocol %d: method and type reference\n\n"
          "Generated from the one protocol description (`protocol/`), like `schema/`.\n"
          "The rules that apply to every message (framing, errors, lifecycle, null,\n"
          "batches) are in [protocol.md](protocol.md). In the tables, an optional\n"
          "field given as `null` means the same as the field being absent, unless\n"
          "its type says `or null` (then null has its own meaning).\n\n",
          PROTOCOL_VERSION);
  for (int d = PD_CLIENT_REQUEST; d <= PD_SERVER_REQUEST; d++) {
    fprintf(f, "## %s\n\n", dir_title[d]);
    for (const proto_method *m = proto_methods; m->name; m++) {
      if ((int)m->dir != d)
        continue;
      fprintf(f, "### `%s`\n\n", m->name);
      if (m->desc)
        fprintf(f, "%s\n\n", m->desc);
      bool notif = d == PD_CLIENT_NOTIFICATION || d == PD_SERVER_NOTIFICATION;
      part(f, "Params", m->params);
      if (d == PD_CLIENT_REQUEST) {
        /* proto_wire_params: every client request's params may carry _meta */
        fprintf(f, "Params may also carry `%s`: ", PROTO_META_FIELD);
        type_text(f, &proto_t_request_meta, false);
        fputs(" (optional; removed before the params are validated).\n\n", f);
      }
      if (!notif)
        part(f, "Result", m->result);
    }
  }
  fputs("## Types\n\n", f);
  const proto_type *named[128];
  size_t n = proto_named_types(named, 128);
  /* alphabetical, so the order does not depend on where a type is first used */
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && strcmp(named[j - 1]->name, named[j]->name) > 0; j--) {
      const proto_type *tmp = named[j];
      named[j] = named[j - 1];
      named[j - 1] = tmp;
    }
  for (size_t i = 0; i < n; i++) {
    fprintf(f, "### %s\n\n", named[i]->name);
    type_body(f, named[i]);
  }
}

int proto_write_markdown(const char *dir) {
  int rc = emit_mkdir_p(dir);
  if (rc < 0)
    return rc;
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f)
    return -ENOMEM;
  write_doc(f);
  if (fclose(f) != 0) {
    free(text);
    return -ENOMEM;
  }
  /* one trailing newline */
  while (len > 1 && text[len - 1] == '\n' && text[len - 2] == '\n')
    len--;
  rc = emit_write_text(dir, DOC_FILE, text, len);
  free(text);
  return rc;
}
