/* server/policy: conversions between the legacy and split shapes.
 *
 * Legacy -> split is always possible except for externalSandbox (the caller
 * sandboxes; there is nothing for warden to describe):
 *   readOnly       [:root=read]
 *   workspaceWrite [:root=read, :cwd=write, :slash_tmp=write (unless
 *                  excludeSlashTmp), :tmpdir=write (unless
 *                  excludeTmpdirEnvVar), writableRoots...=write]
 *   dangerFullAccess [:root=write], network full
 *
 * Split -> legacy projects the entries (full read is required, :root=write
 * means dangerFullAccess, write entries need :cwd writable and become
 * workspaceWrite) and then applies the round-trip test: the projection is
 * accepted only if legacy -> split gives the same resolved plan (readable,
 * writable and unreadable roots, read-only subpaths, full-disk flags). When
 * it does not, the first entry whose effective access differs is named.
 */
#include "server/policy/policy_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static const char *entry_desc(const pol_entry *e) {
  const char *t = pol_token_name(e->tok);
  return t ? t : e->path;
}

/* "<entry>.access" for entries that came from a split entries array. */
static void entry_access_jpath(const pol_entry *e, char *buf, size_t n) {
  size_t l = strlen(e->jpath);
  if (l > 0 && e->jpath[l - 1] == ']')
    snprintf(buf, n, "%s.access", e->jpath);
  else
    snprintf(buf, n, "%s", e->jpath);
}

static void entries_jpath(const pol_ir *ir, char *buf, size_t n) {
  snprintf(buf, n, "%s.fileSystem.entries", ir->jpath ? ir->jpath : "sandbox");
}

static int refuse_entry(const pol_ir *ir, size_t idx, policy_error *err, const char *why) {
  const pol_entry *e = &ir->entries[idx];
  char jp[320];
  entry_access_jpath(e, jp, sizeof jp);
  pol_err_set(err, jp, "%s (\"%s\" = %s) cannot be expressed as a legacy policy: %s", e->jpath,
              entry_desc(e), pol_access_name(e->access), why);
  return -EINVAL;
}

/* networkAccess for a legacy shape, or -EINVAL when the mode has no legacy
 * spelling here (networkAccess:false means proxy exactly when the server
 * runs its proxy, none otherwise). */
static int legacy_net(const pol_ir *ir, const policy_context *ctx, bool *out, policy_error *err) {
  bool proxy = ctx && ctx->proxy_available;
  if (ir->net == POLICY_NET_FULL) {
    *out = true;
    return 0;
  }
  if ((ir->net == POLICY_NET_PROXY) == proxy) {
    *out = false;
    return 0;
  }
  const char *jp = ir->net_jpath ? ir->net_jpath : "sandbox.network.mode";
  pol_err_set(err, jp,
              "%s: network mode %s cannot be expressed as a legacy policy here: networkAccess "
              "false means mode %s on this server",
              jp, policy_net_mode_name(ir->net), proxy ? "proxy" : "none");
  return -EINVAL;
}

static int round_trip_check(const pol_ir *ir, const json_t *legacy, const char *cwd_canon,
                            const policy_context *ctx, policy_error *err) {
  pol_ir back;
  policy_plan a, b;
  pol_rset rs1, rs2;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  memset(&rs1, 0, sizeof rs1);
  memset(&rs2, 0, sizeof rs2);
  int rc = pol_ir_from_legacy(legacy, ctx, ir->jpath ? ir->jpath : "sandbox", &back, err);
  if (rc < 0)
    return rc;
  if ((rc = pol_plan_fill_fs(ir, cwd_canon, ctx, &a)) < 0 ||
      (rc = pol_plan_fill_fs(&back, cwd_canon, ctx, &b)) < 0)
    goto out;
  if (pol_plan_fs_equal(&a, &b))
    goto out;
  rc = -EINVAL;
  if (pol_rset_build(ir, cwd_canon, ctx, &rs1) == 0 &&
      pol_rset_build(&back, cwd_canon, ctx, &rs2) == 0) {
    for (size_t i = 0; i < rs1.n; i++) {
      if (rs1.v[i].minimal)
        continue;
      pol_access x = pol_rset_access(&rs1, rs1.v[i].path);
      pol_access y = pol_rset_access(&rs2, rs1.v[i].path);
      if (x != y) {
        char why[200];
        snprintf(why, sizeof why,
                 "%s is %s here but would be %s in the legacy shape (carveouts inside writable "
                 "roots and reopened writable paths need the split shape)",
                 rs1.v[i].path, pol_access_name(x), pol_access_name(y));
        refuse_entry(ir, rs1.v[i].idx, err, why);
        goto out;
      }
    }
  }
  char jp[320];
  entries_jpath(ir, jp, sizeof jp);
  pol_err_set(err, jp,
              "%s cannot be expressed as a legacy policy: converting to legacy and back changes "
              "the writable roots or their read-only subpaths",
              jp);
out:
  pol_plan_clear_fs(&a);
  pol_plan_clear_fs(&b);
  pol_rset_free(&rs1);
  pol_rset_free(&rs2);
  pol_ir_free(&back);
  return rc;
}

int pol_ir_to_legacy(const pol_ir *ir, const char *cwd_canon, const policy_context *ctx,
                     json_t **out, policy_error *err) {
  *out = NULL;
  if (ir->legacy) {
    *out = json_deep_copy(ir->legacy);
    return *out ? 0 : -ENOMEM;
  }
  if (ir->kind == POL_KIND_UNRESTRICTED) {
    *out = json_pack("{s:s}", "type", "dangerFullAccess");
    return *out ? 0 : -ENOMEM;
  }
  if (ir->kind == POL_KIND_EXTERNAL) {
    *out = json_pack("{s:s,s:s}", "type", "externalSandbox", "networkAccess",
                     ir->net == POLICY_NET_FULL ? "enabled" : "restricted");
    return *out ? 0 : -ENOMEM;
  }

  pol_rset rs;
  int rc = pol_rset_build(ir, cwd_canon, ctx, &rs);
  if (rc < 0)
    return rc;
  json_t *roots = NULL, *legacy = NULL;
  char jp[320];

  /* 1. Legacy shapes cannot hide anything. */
  for (size_t i = 0; i < rs.n; i++) {
    if (!rs.v[i].minimal && rs.v[i].access == POL_ACC_NONE) {
      rc = refuse_entry(ir, rs.v[i].idx, err,
                        "legacy policies cannot make a path unreadable (they read the whole disk)");
      goto out;
    }
  }
  /* 2. They always read the whole disk. */
  bool root_read = false, root_write = false;
  for (size_t i = 0; i < rs.n; i++) {
    if (rs.v[i].is_root && rs.v[i].access != POL_ACC_NONE)
      root_read = true;
    /* only the :root token means dangerFullAccess; the path "/" with write
     * is a writable root that keeps its protected subpaths */
    if (ir->entries[rs.v[i].idx].tok == POL_TOK_ROOT && rs.v[i].access == POL_ACC_WRITE)
      root_write = true;
  }
  pol_access root_acc = pol_rset_access(&rs, "/");
  if (!root_read || root_acc == POL_ACC_NONE) {
    entries_jpath(ir, jp, sizeof jp);
    pol_err_set(err, jp,
                "%s: reads are restricted (no :root entry with read or write) and legacy policies "
                "always read the whole disk",
                jp);
    rc = -EINVAL;
    goto out;
  }
  bool net = false;
  /* 3. :root=write: dangerFullAccess, if nothing narrows it. */
  if (root_write && root_acc == POL_ACC_WRITE) {
    for (size_t i = 0; i < rs.n; i++) {
      if (!rs.v[i].minimal && pol_rset_access(&rs, rs.v[i].path) != POL_ACC_WRITE) {
        rc = refuse_entry(ir, rs.v[i].idx, err,
                          "a read-only carveout under :root=write has no legacy shape");
        goto out;
      }
    }
    if (ir->net != POLICY_NET_FULL) {
      const char *njp = ir->net_jpath ? ir->net_jpath : "sandbox.network.mode";
      pol_err_set(err, njp,
                  "%s: full-disk write with network mode %s has no legacy shape "
                  "(dangerFullAccess always has full network)",
                  njp, policy_net_mode_name(ir->net));
      rc = -EINVAL;
      goto out;
    }
    legacy = json_pack("{s:s}", "type", "dangerFullAccess");
    rc = legacy ? 0 : -ENOMEM;
    goto out;
  }
  /* 4. Writes: cwd, the temp dirs and extra writable roots. */
  bool cwd_w = false, tmpdir_w = false, slash_w = false;
  ssize_t first_write = -1;
  roots = json_array();
  if (!roots) {
    rc = -ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < ir->n_entries; i++) {
    const pol_entry *e = &ir->entries[i];
    if (e->access != POL_ACC_WRITE || e->tok == POL_TOK_MINIMAL)
      continue;
    if (first_write < 0 && e->tok != POL_TOK_CWD)
      first_write = (ssize_t)i;
    switch (e->tok) {
    case POL_TOK_CWD:
      cwd_w = true;
      break;
    case POL_TOK_TMPDIR:
      tmpdir_w = true;
      break;
    case POL_TOK_SLASH_TMP:
      slash_w = true;
      break;
    case POL_TOK_PATH: {
      char *p = pol_path_normalize(e->path);
      if (!p) {
        rc = -ENOMEM;
        goto out;
      }
      /* A path spelling of cwd makes cwd writable; it is kept as written
       * too, so that legacy -> split -> legacy gives back the same object. */
      if (strcmp(p, cwd_canon) == 0)
        cwd_w = true;
      json_array_append_new(roots, json_string(e->path));
      free(p);
      break;
    }
    default:
      break;
    }
  }
  if (first_write >= 0 && !cwd_w) {
    rc = refuse_entry(ir, (size_t)first_write, err,
                      "it writes outside cwd, and the legacy workspaceWrite shape always makes "
                      "cwd writable (add a :cwd write entry)");
    goto out;
  }
  if ((rc = legacy_net(ir, ctx, &net, err)) < 0)
    goto out;
  if (cwd_w)
    legacy = json_pack("{s:s,s:O,s:b,s:b,s:b}", "type", "workspaceWrite", "writableRoots", roots,
                       "networkAccess", net, "excludeTmpdirEnvVar", !tmpdir_w, "excludeSlashTmp",
                       !slash_w);
  else
    legacy = json_pack("{s:s,s:b}", "type", "readOnly", "networkAccess", net);
  if (!legacy) {
    rc = -ENOMEM;
    goto out;
  }
  /* 5. The round trip must keep the plan. */
  rc = round_trip_check(ir, legacy, cwd_canon, ctx, err);

out:
  pol_rset_free(&rs);
  json_decref(roots);
  if (rc < 0) {
    json_decref(legacy);
    if (rc == -ENOMEM)
      pol_err_set(err, ir->jpath, "out of memory while converting %s", ir->jpath);
    return rc;
  }
  *out = legacy;
  return 0;
}

static json_t *ir_to_split(const pol_ir *ir) {
  json_t *entries = json_array();
  for (size_t i = 0; entries && i < ir->n_entries; i++) {
    const pol_entry *e = &ir->entries[i];
    json_array_append_new(entries, json_pack("{s:s,s:s}", "path", entry_desc(e), "access",
                                             pol_access_name(e->access)));
  }
  return json_pack("{s:s,s:{s:o},s:{s:s}}", "type", "split", "fileSystem", "entries", entries,
                   "network", "mode", policy_net_mode_name(ir->net));
}

static void to_jpath(const char *json_path, char *buf, size_t n) {
  const char *dot = strrchr(json_path, '.');
  if (dot && strcmp(dot + 1, "sandbox") == 0)
    snprintf(buf, n, "%.*sto", (int)(dot - json_path + 1), json_path);
  else
    snprintf(buf, n, "to");
}

int policy_transform(const json_t *sandbox, const char *cwd, const policy_context *ctx,
                     const char *to, const char *json_path, json_t **out, policy_error *err) {
  policy_context zero;
  if (!ctx) {
    memset(&zero, 0, sizeof zero);
    ctx = &zero;
  }
  if (!json_path)
    json_path = "sandbox";
  *out = NULL;
  bool to_legacy = to && strcmp(to, "legacy") == 0;
  if (!to_legacy && !(to && strcmp(to, "split") == 0)) {
    char jp[256];
    to_jpath(json_path, jp, sizeof jp);
    pol_err_set(err, jp, "%s must be \"legacy\" or \"split\"%s%s%s", jp, to ? ", not \"" : "",
                to ? to : "", to ? "\"" : "");
    return -EINVAL;
  }
  char *cwd_canon = NULL;
  pol_ir ir;
  int rc = pol_prepare(sandbox, cwd, ctx, json_path, &cwd_canon, &ir, err);
  if (rc < 0)
    return rc;
  if (to_legacy) {
    rc = pol_ir_to_legacy(&ir, cwd_canon, ctx, out, err);
  } else if (ir.kind == POL_KIND_EXTERNAL) {
    char jp[320];
    snprintf(jp, sizeof jp, "%s.type", ir.jpath);
    pol_err_set(err, jp,
                "%s: externalSandbox has no split shape (the caller sandboxes; warden describes "
                "and enforces nothing)",
                jp);
    rc = -EINVAL;
  } else {
    *out = ir_to_split(&ir);
    if (!*out) {
      pol_err_set(err, json_path, "out of memory while converting %s", json_path);
      rc = -ENOMEM;
    }
  }
  pol_ir_free(&ir);
  free(cwd_canon);
  return rc;
}
