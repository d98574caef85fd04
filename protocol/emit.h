/* Small file helpers shared by the schema and TypeScript emitters. */
#ifndef WARDEN_PROTOCOL_EMIT_H
#define WARDEN_PROTOCOL_EMIT_H

#include <jansson.h>

/* mkdir -p; 0 or a negative errno. */
int emit_mkdir_p(const char *dir);
/* Write dir/name.json (2-space indent, trailing newline). */
int emit_write_json(const char *dir, const char *name, const json_t *doc);
/* Write dir/file with the given text. */
int emit_write_text(const char *dir, const char *file, const char *text, size_t len);

#endif
