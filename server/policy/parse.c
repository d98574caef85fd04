/* server/policy: parse and validate every SandboxPolicy shape into a pol_ir.
 *
 * Legacy shapes (dangerFullAccess, readOnly, workspaceWrite, externalSandbox)
 * are first normalized into a legacy JSON object with every field explicit,
 * then converted to split-shaped entries (pol_ir_from_legacy), so that one
 * resolver serves every shape. Profiles are resolved here: the built-ins, the
 * config file's named profiles, and `extends` chains (with cycle detection).
 */
#include "server/policy/policy_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POL_MAX_PROFILE_DEPTH 32
#define JP 320 /* room for a JSON path; policy_error.path truncates at 256 */

typedef struct name_stack {
  const char *names[POL_MAX_PROFILE_DEPTH];
  size_t n;
} name_stack;

static int parse_policy(const json_t *j, const char *jpath, const policy_context *ctx,
                        name_stack *st, pol_ir *ir, policy_error *err);

/* ---- IR helpers ---- */

int pol_ir_add(pol_ir *ir, pol_token tok, const char *path, pol_access acc, const char *jpath) {
  if (ir->n_entries == ir->cap_entries) {
    size_t cap = ir->cap_entries ? ir->cap_entries * 2 : 8;
    pol_entry *v = realloc(ir->entries, cap * sizeof *v);
    if (!v)
      return -ENOMEM;
    ir->entries = v;
    ir->cap_entries = cap;
  }
  pol_entry *e = &ir->entries[ir->n_entries];
  memset(e, 0, sizeof *e);
  e->tok = tok;
  e->access = acc;
  e->path = path ? strdup(path) : NULL;
  e->jpath = strdup(jpath ? jpath : "");
  if ((path && !e->path) || !e->jpath) {
    free(e->path);
    free(e->jpath);
    return -ENOMEM;
  }
  ir->n_entries++;
  return 0;
}

void pol_ir_free(pol_ir *ir) {
  if (!ir)
    return;
  for (size_t i = 0; i < ir->n_entries; i++) {
    free(ir->entries[i].path);
    free(ir->entries[i].jpath);
  }
  free(ir->entries);
  free(ir->jpath);
  free(ir->net_jpath);
  json_decref(ir->legacy);
  memset(ir, 0, sizeof *ir);
}

static int set_str(char **dst, const char *s) {
  char *c = strdup(s ? s : "");
  if (!c)
    return -ENOMEM;
  free(*dst);
  *dst = c;
  return 0;
}

static int oom(policy_error *err, const char *jpath) {
  pol_err_set(err, jpath, "out of memory while resolving the sandbox policy");
  return -ENOMEM;
}

/* ---- field checks ---- */

static int check_keys(const json_t *obj, const char *const *allowed, const char *jpath,
                      const char *what, policy_error *err) {
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)obj, key, v) {
    bool ok = false;
    for (size_t i = 0; allowed[i]; i++)
      if (strcmp(key, allowed[i]) == 0)
        ok = true;
    if (!ok) {
      char known[256] = "";
      size_t o = 0;
      for (size_t i = 0; allowed[i] && o < sizeof known; i++)
        o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", i ? ", " : "", allowed[i]);
      char jp[JP];
      snprintf(jp, sizeof jp, "%s.%s", jpath, key);
      pol_err_set(err, jp, "%s: unknown field \"%s\" in a %s policy (known: %s)", jp, key, what,
                  known);
      return -EINVAL;
    }
  }
  return 0;
}

/* Optional boolean field; *out keeps its value when absent. */
static int get_bool(const json_t *obj, const char *key, const char *jpath, bool *out,
                    policy_error *err) {
  json_t *v = json_object_get(obj, key);
  if (!v)
    return 0;
  if (!json_is_boolean(v)) {
    char jp[JP];
    snprintf(jp, sizeof jp, "%s.%s", jpath, key);
    pol_err_set(err, jp, "%s must be true or false", jp);
    return -EINVAL;
  }
  *out = json_is_true(v);
  return 0;
}

/* ---- legacy shapes ---- */

int pol_ir_from_legacy(const json_t *legacy, const policy_context *ctx, const char *jpath,
                       pol_ir *ir, policy_error *err) {
  memset(ir, 0, sizeof *ir);
  const char *type = json_string_value(json_object_get(legacy, "type"));
  char jp[JP];
  int rc = 0;
  if (set_str(&ir->jpath, jpath) < 0)
    goto nomem;
  snprintf(jp, sizeof jp, "%s.networkAccess", jpath);
  if (set_str(&ir->net_jpath, jp) < 0)
    goto nomem;
  ir->net_set = true;
  ir->legacy = json_incref((json_t *)legacy);
  if (!type) {
    rc = -EINVAL;
  } else if (strcmp(type, "dangerFullAccess") == 0) {
    ir->kind = POL_KIND_UNRESTRICTED;
    ir->net = POLICY_NET_FULL;
    rc = pol_ir_add(ir, POL_TOK_ROOT, NULL, POL_ACC_WRITE, jpath);
  } else if (strcmp(type, "externalSandbox") == 0) {
    ir->kind = POL_KIND_EXTERNAL;
    const char *na = json_string_value(json_object_get(legacy, "networkAccess"));
    ir->net = na && strcmp(na, "enabled") == 0 ? POLICY_NET_FULL : pol_net_restricted(ctx);
    rc = pol_ir_add(ir, POL_TOK_ROOT, NULL, POL_ACC_WRITE, jpath);
  } else if (strcmp(type, "readOnly") == 0) {
    ir->kind = POL_KIND_RESTRICTED;
    ir->net = json_is_true(json_object_get(legacy, "networkAccess")) ? POLICY_NET_FULL
                                                                      : pol_net_restricted(ctx);
    rc = pol_ir_add(ir, POL_TOK_ROOT, NULL, POL_ACC_READ, jpath);
  } else if (strcmp(type, "workspaceWrite") == 0) {
    ir->kind = POL_KIND_RESTRICTED;
    ir->net = json_is_true(json_object_get(legacy, "networkAccess")) ? POLICY_NET_FULL
                                                                      : pol_net_restricted(ctx);
    rc = pol_ir_add(ir, POL_TOK_ROOT, NULL, POL_ACC_READ, jpath);
    if (!rc)
      rc = pol_ir_add(ir, POL_TOK_CWD, NULL, POL_ACC_WRITE, jpath);
    if (!rc && !json_is_true(json_object_get(legacy, "excludeSlashTmp"))) {
      snprintf(jp, sizeof jp, "%s.excludeSlashTmp", jpath);
      rc = pol_ir_add(ir, POL_TOK_SLASH_TMP, NULL, POL_ACC_WRITE, jp);
    }
    if (!rc && !json_is_true(json_object_get(legacy, "excludeTmpdirEnvVar"))) {
      snprintf(jp, sizeof jp, "%s.excludeTmpdirEnvVar", jpath);
      rc = pol_ir_add(ir, POL_TOK_TMPDIR, NULL, POL_ACC_WRITE, jp);
    }
    json_t *roots = json_object_get(legacy, "writableRoots");
    size_t i;
    json_t *r;
    json_array_foreach(roots, i, r) {
      if (rc)
        break;
      snprintf(jp, sizeof jp, "%s.writableRoots[%zu]", jpath, i);
      rc = pol_ir_add(ir, POL_TOK_PATH, json_string_value(r), POL_ACC_WRITE, jp);
    }
  } else {
    rc = -EINVAL;
  }
  if (rc == -EINVAL) {
    snprintf(jp, sizeof jp, "%s.type", jpath);
    pol_err_set(err, jp, "%s: not a legacy policy type", jp);
    pol_ir_free(ir);
    return rc;
  }
  if (rc == 0)
    return 0;
nomem:
  pol_ir_free(ir);
  return oom(err, jpath);
}

/* Validate a legacy-shaped object and build its normalized form. */
static int parse_legacy(const json_t *j, const char *type, const char *jpath,
                        const policy_context *ctx, pol_ir *ir, policy_error *err) {
  char jp[JP];
  json_t *norm = NULL;
  int rc;
  if (strcmp(type, "dangerFullAccess") == 0) {
    static const char *const keys[] = {"type", NULL};
    if ((rc = check_keys(j, keys, jpath, type, err)) < 0)
      return rc;
    norm = json_pack("{s:s}", "type", type);
  } else if (strcmp(type, "readOnly") == 0) {
    static const char *const keys[] = {"type", "networkAccess", NULL};
    bool net = false;
    if ((rc = check_keys(j, keys, jpath, type, err)) < 0 ||
        (rc = get_bool(j, "networkAccess", jpath, &net, err)) < 0)
      return rc;
    norm = json_pack("{s:s,s:b}", "type", type, "networkAccess", net);
  } else if (strcmp(type, "externalSandbox") == 0) {
    static const char *const keys[] = {"type", "networkAccess", NULL};
    if ((rc = check_keys(j, keys, jpath, type, err)) < 0)
      return rc;
    json_t *na = json_object_get(j, "networkAccess");
    const char *v = na ? json_string_value(na) : "restricted";
    if (!v || (strcmp(v, "restricted") != 0 && strcmp(v, "enabled") != 0)) {
      snprintf(jp, sizeof jp, "%s.networkAccess", jpath);
      pol_err_set(err, jp, "%s must be \"restricted\" or \"enabled\"", jp);
      return -EINVAL;
    }
    norm = json_pack("{s:s,s:s}", "type", type, "networkAccess", v);
  } else { /* workspaceWrite */
    static const char *const keys[] = {"type", "writableRoots", "networkAccess",
                                       "excludeTmpdirEnvVar", "excludeSlashTmp", NULL};
    bool net = false, ex_tmpdir = false, ex_slash = false;
    if ((rc = check_keys(j, keys, jpath, type, err)) < 0 ||
        (rc = get_bool(j, "networkAccess", jpath, &net, err)) < 0 ||
        (rc = get_bool(j, "excludeTmpdirEnvVar", jpath, &ex_tmpdir, err)) < 0 ||
        (rc = get_bool(j, "excludeSlashTmp", jpath, &ex_slash, err)) < 0)
      return rc;
    json_t *roots = json_object_get(j, "writableRoots");
    json_t *clean_roots = json_array();
    if (!clean_roots)
      return oom(err, jpath);
    if (roots && !json_is_array(roots)) {
      json_decref(clean_roots);
      snprintf(jp, sizeof jp, "%s.writableRoots", jpath);
      pol_err_set(err, jp, "%s must be an array of absolute paths", jp);
      return -EINVAL;
    }
    size_t i;
    json_t *r;
    json_array_foreach(roots, i, r) {
      const char *s = json_string_value(r);
      char *c = s ? pol_path_clean(s) : NULL;
      if (!c) {
        json_decref(clean_roots);
        snprintf(jp, sizeof jp, "%s.writableRoots[%zu]", jpath, i);
        pol_err_set(err, jp, "%s: writable root %s%s%s must be an absolute path", jp,
                    s ? "\"" : "", s ? s : "(not a string)", s ? "\"" : "");
        return -EINVAL;
      }
      json_array_append_new(clean_roots, json_string(c));
      free(c);
    }
    norm = json_pack("{s:s,s:o,s:b,s:b,s:b}", "type", type, "writableRoots", clean_roots,
                     "networkAccess", net, "excludeTmpdirEnvVar", ex_tmpdir, "excludeSlashTmp",
                     ex_slash);
  }
  if (!norm)
    return oom(err, jpath);
  rc = pol_ir_from_legacy(norm, ctx, jpath, ir, err);
  json_decref(norm);
  return rc;
}

/* ---- split ---- */

static int parse_token(const char *s, pol_token *out) {
  static const struct {
    const char *name;
    pol_token tok;
  } toks[] = {{":root", POL_TOK_ROOT},     {":minimal", POL_TOK_MINIMAL},
              {":cwd", POL_TOK_CWD},       {":tmpdir", POL_TOK_TMPDIR},
              {":slash_tmp", POL_TOK_SLASH_TMP}};
  for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++)
    if (strcmp(s, toks[i].name) == 0) {
      *out = toks[i].tok;
      return 0;
    }
  return -EINVAL;
}

/* fileSystem and network of a split policy; with `overlay` (a profile that
 * extends another) both are optional. */
static int parse_split_parts(const json_t *j, const char *jpath, bool overlay,
                             const policy_context *ctx, pol_ir *ir, policy_error *err) {
  char jp[JP];
  json_t *fs = json_object_get(j, "fileSystem");
  json_t *net = json_object_get(j, "network");
  (void)ctx;
  if (!fs && !overlay) {
    snprintf(jp, sizeof jp, "%s.fileSystem", jpath);
    pol_err_set(err, jp, "%s is required for a split policy", jp);
    return -EINVAL;
  }
  if (fs) {
    static const char *const fs_keys[] = {"entries", NULL};
    snprintf(jp, sizeof jp, "%s.fileSystem", jpath);
    if (!json_is_object(fs)) {
      pol_err_set(err, jp, "%s must be an object {entries:[...]}", jp);
      return -EINVAL;
    }
    if (check_keys(fs, fs_keys, jp, "split fileSystem", err) < 0)
      return -EINVAL;
    json_t *entries = json_object_get(fs, "entries");
    if (!json_is_array(entries)) {
      snprintf(jp, sizeof jp, "%s.fileSystem.entries", jpath);
      pol_err_set(err, jp, "%s must be an array of {path, access}", jp);
      return -EINVAL;
    }
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
      char ejp[JP], fjp[JP];
      snprintf(ejp, sizeof ejp, "%s.fileSystem.entries[%zu]", jpath, i);
      static const char *const e_keys[] = {"path", "access", NULL};
      if (!json_is_object(e)) {
        pol_err_set(err, ejp, "%s must be an object {path, access}", ejp);
        return -EINVAL;
      }
      if (check_keys(e, e_keys, ejp, "file-system entry of a split", err) < 0)
        return -EINVAL;
      const char *path = json_string_value(json_object_get(e, "path"));
      const char *access = json_string_value(json_object_get(e, "access"));
      snprintf(fjp, sizeof fjp, "%s.path", ejp);
      pol_token tok = POL_TOK_PATH;
      char *clean = NULL;
      if (!path) {
        pol_err_set(err, fjp, "%s: entry %zu needs a \"path\" string", fjp, i);
        return -EINVAL;
      } else if (path[0] == ':') {
        if (parse_token(path, &tok) < 0) {
          pol_err_set(err, fjp,
                      "%s: unknown token \"%s\" in entry %zu (known: :root, :minimal, :cwd, "
                      ":tmpdir, :slash_tmp)",
                      fjp, path, i);
          return -EINVAL;
        }
      } else if (path[0] == '/') {
        clean = pol_path_clean(path);
        if (!clean)
          return oom(err, fjp);
      } else {
        pol_err_set(err, fjp,
                    "%s: path \"%s\" of entry %zu must be absolute or one of the tokens :root, "
                    ":minimal, :cwd, :tmpdir, :slash_tmp",
                    fjp, path, i);
        return -EINVAL;
      }
      snprintf(fjp, sizeof fjp, "%s.access", ejp);
      pol_access acc;
      if (access && strcmp(access, "read") == 0) {
        acc = POL_ACC_READ;
      } else if (access && strcmp(access, "write") == 0) {
        acc = POL_ACC_WRITE;
      } else if (access && strcmp(access, "none") == 0) {
        acc = POL_ACC_NONE;
      } else {
        pol_err_set(err, fjp, "%s: access of entry %zu (%s) must be \"read\", \"write\" or \"none\"",
                    fjp, i, path);
        free(clean);
        return -EINVAL;
      }
      int rc = pol_ir_add(ir, tok, clean, acc, ejp);
      free(clean);
      if (rc < 0)
        return oom(err, ejp);
    }
  }
  if (!net && !overlay) {
    snprintf(jp, sizeof jp, "%s.network", jpath);
    pol_err_set(err, jp, "%s is required for a split policy ({mode:\"none\"|\"proxy\"|\"full\"})",
                jp);
    return -EINVAL;
  }
  if (net) {
    static const char *const n_keys[] = {"mode", NULL};
    snprintf(jp, sizeof jp, "%s.network", jpath);
    if (!json_is_object(net)) {
      pol_err_set(err, jp, "%s must be an object {mode}", jp);
      return -EINVAL;
    }
    if (check_keys(net, n_keys, jp, "split network", err) < 0)
      return -EINVAL;
    snprintf(jp, sizeof jp, "%s.network.mode", jpath);
    const char *mode = json_string_value(json_object_get(net, "mode"));
    if (mode && strcmp(mode, "none") == 0)
      ir->net = POLICY_NET_NONE;
    else if (mode && strcmp(mode, "proxy") == 0)
      ir->net = POLICY_NET_PROXY;
    else if (mode && strcmp(mode, "full") == 0)
      ir->net = POLICY_NET_FULL;
    else {
      pol_err_set(err, jp, "%s must be \"none\", \"proxy\" or \"full\"", jp);
      return -EINVAL;
    }
    ir->net_set = true;
    if (set_str(&ir->net_jpath, jp) < 0)
      return oom(err, jp);
  }
  return 0;
}

static int parse_split(const json_t *j, const char *jpath, const policy_context *ctx, pol_ir *ir,
                       policy_error *err) {
  static const char *const keys[] = {"type", "fileSystem", "network", NULL};
  memset(ir, 0, sizeof *ir);
  ir->kind = POL_KIND_RESTRICTED;
  int rc = check_keys(j, keys, jpath, "split", err);
  if (!rc && set_str(&ir->jpath, jpath) < 0)
    rc = oom(err, jpath);
  if (!rc)
    rc = parse_split_parts(j, jpath, false, ctx, ir, err);
  if (rc < 0)
    pol_ir_free(ir);
  return rc;
}

/* ---- profiles ---- */

static int builtin_profile(const char *name, const char *jpath, const policy_context *ctx,
                           pol_ir *ir, policy_error *err, bool *found) {
  json_t *legacy = NULL;
  *found = true;
  if (strcmp(name, ":read-only") == 0)
    legacy = json_pack("{s:s,s:b}", "type", "readOnly", "networkAccess", 0);
  else if (strcmp(name, ":workspace") == 0)
    legacy = json_pack("{s:s,s:[],s:b,s:b,s:b}", "type", "workspaceWrite", "writableRoots",
                       "networkAccess", 0, "excludeTmpdirEnvVar", 0, "excludeSlashTmp", 0);
  else if (strcmp(name, ":danger-full-access") == 0)
    legacy = json_pack("{s:s}", "type", "dangerFullAccess");
  else {
    *found = false;
    return 0;
  }
  if (!legacy)
    return oom(err, jpath);
  int rc = pol_ir_from_legacy(legacy, ctx, jpath, ir, err);
  json_decref(legacy);
  return rc;
}

static int parse_profile_body(const json_t *body, const char *name, const policy_context *ctx,
                              name_stack *st, pol_ir *ir, policy_error *err);

/* Resolve profile `name` (a built-in or a config profile). name_jpath is the
 * JSON path where the name was given. */
static int resolve_named(const char *name, const char *name_jpath, const policy_context *ctx,
                         name_stack *st, pol_ir *ir, policy_error *err) {
  bool found = false;
  int rc = builtin_profile(name, name_jpath, ctx, ir, err, &found);
  if (found || rc < 0)
    return rc;
  const json_t *body = ctx && ctx->profiles ? json_object_get(ctx->profiles, name) : NULL;
  if (!body) {
    char known[200] = "";
    size_t o = 0;
    if (ctx && ctx->profiles) {
      const char *k;
      json_t *v;
      json_object_foreach((json_t *)ctx->profiles, k, v) {
        if (o >= sizeof known)
          break;
        o += (size_t)snprintf(known + o, sizeof known - o, ", %s", k);
      }
    }
    pol_err_set(err, name_jpath,
                "%s: unknown profile \"%s\" (known: :read-only, :workspace, "
                ":danger-full-access%s)",
                name_jpath, name, known);
    return -EINVAL;
  }
  for (size_t i = 0; i < st->n; i++) {
    if (strcmp(st->names[i], name) == 0) {
      char chain[300] = "";
      size_t o = 0;
      for (size_t k = i; k < st->n && o < sizeof chain; k++)
        o += (size_t)snprintf(chain + o, sizeof chain - o, "%s -> ", st->names[k]);
      if (o < sizeof chain)
        snprintf(chain + o, sizeof chain - o, "%s", name);
      pol_err_set(err, name_jpath, "%s: profile cycle: %s", name_jpath, chain);
      return -ELOOP;
    }
  }
  if (st->n == POL_MAX_PROFILE_DEPTH) {
    pol_err_set(err, name_jpath, "%s: profile \"%s\" nests deeper than %d profiles", name_jpath,
                name, POL_MAX_PROFILE_DEPTH);
    return -ELOOP;
  }
  st->names[st->n++] = name;
  rc = parse_profile_body(body, name, ctx, st, ir, err);
  st->n--;
  return rc;
}

/* Keys name the same target when they are the same token or the same path. */
static bool same_key(const pol_entry *a, const pol_entry *b) {
  if (a->tok != b->tok)
    return false;
  return a->tok != POL_TOK_PATH || strcmp(a->path, b->path) == 0;
}

/* More permissive of two accesses: write > read > none (how extends merges). */
static pol_access more_permissive(pol_access a, pol_access b) {
  if (a == POL_ACC_WRITE || b == POL_ACC_WRITE)
    return POL_ACC_WRITE;
  if (a == POL_ACC_READ || b == POL_ACC_READ)
    return POL_ACC_READ;
  return POL_ACC_NONE;
}

static int parse_profile_body(const json_t *body, const char *name, const policy_context *ctx,
                              name_stack *st, pol_ir *ir, policy_error *err) {
  char jpath[JP], jp[JP];
  snprintf(jpath, sizeof jpath, "profiles.%s", name);
  if (!json_is_object(body)) {
    pol_err_set(err, jpath, "%s: profile \"%s\" must be a SandboxPolicy object", jpath, name);
    return -EINVAL;
  }
  json_t *ext = json_object_get(body, "extends");
  if (!ext)
    return parse_policy(body, jpath, ctx, st, ir, err);

  snprintf(jp, sizeof jp, "%s.extends", jpath);
  const char *base_name = json_string_value(ext);
  if (!base_name || !base_name[0]) {
    pol_err_set(err, jp, "%s: \"extends\" of profile \"%s\" must name a profile", jp, name);
    return -EINVAL;
  }
  const char *type = json_string_value(json_object_get(body, "type"));
  if (json_object_get(body, "type") && (!type || strcmp(type, "split") != 0)) {
    char tjp[JP];
    snprintf(tjp, sizeof tjp, "%s.type", jpath);
    pol_err_set(err, tjp,
                "%s: profile \"%s\" uses \"extends\", so it must be split-shaped (type \"split\" "
                "or no type), not \"%s\"",
                tjp, name, type ? type : "(not a string)");
    return -EINVAL;
  }
  static const char *const keys[] = {"type", "extends", "fileSystem", "network", NULL};
  int rc = check_keys(body, keys, jpath, "profile", err);
  if (rc < 0)
    return rc;
  rc = resolve_named(base_name, jp, ctx, st, ir, err);
  if (rc < 0)
    return rc;
  if (ir->kind != POL_KIND_RESTRICTED) {
    pol_err_set(err, jp,
                "%s: profile \"%s\" extends \"%s\", which is %s; only sandboxed (restricted) "
                "profiles can be extended",
                jp, name, base_name,
                ir->kind == POL_KIND_UNRESTRICTED ? "dangerFullAccess" : "externalSandbox");
    pol_ir_free(ir);
    return -EINVAL;
  }
  pol_ir over;
  memset(&over, 0, sizeof over);
  rc = parse_split_parts(body, jpath, true, ctx, &over, err);
  for (size_t i = 0; rc == 0 && i < over.n_entries; i++) {
    pol_entry *oe = &over.entries[i];
    bool merged = false;
    for (size_t k = 0; k < ir->n_entries; k++) {
      if (same_key(&ir->entries[k], oe)) {
        ir->entries[k].access = more_permissive(ir->entries[k].access, oe->access);
        merged = true;
      }
    }
    if (!merged && pol_ir_add(ir, oe->tok, oe->path, oe->access, oe->jpath) < 0)
      rc = oom(err, oe->jpath);
  }
  if (rc == 0 && over.net_set) {
    ir->net = over.net;
    ir->net_set = true;
    if (set_str(&ir->net_jpath, over.net_jpath) < 0)
      rc = oom(err, jpath);
  }
  if (rc == 0 && set_str(&ir->jpath, jpath) < 0)
    rc = oom(err, jpath);
  pol_ir_free(&over);
  if (rc < 0) {
    pol_ir_free(ir);
    return rc;
  }
  /* It is no longer one legacy shape unchanged. */
  json_decref(ir->legacy);
  ir->legacy = NULL;
  return 0;
}

/* ---- any policy ---- */

static int parse_policy(const json_t *j, const char *jpath, const policy_context *ctx,
                        name_stack *st, pol_ir *ir, policy_error *err) {
  char jp[JP];
  memset(ir, 0, sizeof *ir);
  if (!json_is_object(j)) {
    pol_err_set(err, jpath, "%s must be a SandboxPolicy object with a \"type\"", jpath);
    return -EINVAL;
  }
  snprintf(jp, sizeof jp, "%s.type", jpath);
  const char *type = json_string_value(json_object_get(j, "type"));
  if (!type) {
    pol_err_set(err, jp,
                "%s is required (dangerFullAccess, readOnly, workspaceWrite, externalSandbox, "
                "split or profile)",
                jp);
    return -EINVAL;
  }
  if (strcmp(type, "dangerFullAccess") == 0 || strcmp(type, "readOnly") == 0 ||
      strcmp(type, "workspaceWrite") == 0 || strcmp(type, "externalSandbox") == 0)
    return parse_legacy(j, type, jpath, ctx, ir, err);
  if (strcmp(type, "split") == 0)
    return parse_split(j, jpath, ctx, ir, err);
  if (strcmp(type, "profile") == 0) {
    static const char *const keys[] = {"type", "name", NULL};
    int rc = check_keys(j, keys, jpath, "profile", err);
    if (rc < 0)
      return rc;
    snprintf(jp, sizeof jp, "%s.name", jpath);
    const char *name = json_string_value(json_object_get(j, "name"));
    if (!name || !name[0]) {
      pol_err_set(err, jp, "%s must be a profile name (:read-only, :workspace, "
                           ":danger-full-access, or a profile from the config file)",
                  jp);
      return -EINVAL;
    }
    return resolve_named(name, jp, ctx, st, ir, err);
  }
  pol_err_set(err, jp,
              "%s: unknown policy type \"%s\" (known: dangerFullAccess, readOnly, workspaceWrite, "
              "externalSandbox, split, profile)",
              jp, type);
  return -EINVAL;
}

int pol_parse(const json_t *sandbox, const policy_context *ctx, const char *jpath, pol_ir *ir,
              policy_error *err) {
  name_stack st;
  memset(&st, 0, sizeof st);
  if (!sandbox) {
    json_t *def = json_pack("{s:s}", "type", "workspaceWrite");
    if (!def)
      return oom(err, jpath);
    int rc = parse_policy(def, jpath, ctx, &st, ir, err);
    json_decref(def);
    return rc;
  }
  return parse_policy(sandbox, jpath, ctx, &st, ir, err);
}
