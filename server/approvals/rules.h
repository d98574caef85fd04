/* server/approvals/rules: the persisted network rules.
 *
 * One file, `network-rules` in the state directory, one rule per line:
 *
 *   # comment
 *   allow https api.example.com 443
 *   deny http tracker.example.net 80
 *
 * Fields are separated by spaces or tabs: the action (allow | deny), the
 * protocol (http | https | socks5Tcp | socks5Udp), one exact host (a name or
 * an IP literal, normalised as approval keys are) and the port (1..65535).
 * Wildcards (any '*') are refused, when written and when loaded. A bad line
 * is reported through the warning callback with its line number and skipped:
 * it never widens the policy. A deny rule wins over an allow rule for the
 * same key, wherever they stand in the file.
 *
 * Writing takes an exclusive flock on `network-rules.lock`, re-reads the
 * file, replaces the rules for the same key, keeps every other line as it
 * was (other servers' rules, comments, even bad lines), writes a temporary
 * file in the same directory, fsyncs it and renames it over the file. Two
 * servers sharing a state directory never lose each other's rules.
 *
 * Ownership: an approval_rules set is owned by whoever holds the pointer;
 * approval_rules_free() frees it.
 */
#ifndef WARDEN_APPROVALS_RULES_H
#define WARDEN_APPROVALS_RULES_H

#include "server/approvals/approvals.h"

#define APPROVAL_RULES_FILE "network-rules"
#define APPROVAL_RULES_LOCK_SUFFIX ".lock"
#define APPROVAL_RULES_MAX_BYTES (1024 * 1024) /* a bigger file is refused whole */
#define APPROVAL_RULES_MAX_LINE 1024           /* a longer line is a bad line */
#define APPROVAL_RULES_MAX 10000               /* rules past it are bad lines */

typedef struct approval_rule {
  approval_key key;
  bool allow;
} approval_rule;

typedef struct approval_rules {
  approval_rule *v;
  size_t n, cap;
} approval_rules;

approval_rules *approval_rules_new(void);
void approval_rules_free(approval_rules *r);

enum { APPROVAL_RULE_NONE = 0, APPROVAL_RULE_ALLOW = 1, APPROVAL_RULE_DENY = 2 };
int approval_rules_lookup(const approval_rules *r, const approval_key *k);
/* Add a rule: a deny replaces an allow for the key; an allow never replaces a
 * deny (replace = true: the new rule replaces whatever the key had). */
int approval_rules_add(approval_rules *r, const approval_key *k, bool allow, bool replace);

/* One line (without its newline): 1 and *out for a rule, 0 for a blank or
 * comment line, -EINVAL with *why for a bad line. */
int approval_rule_parse_line(const char *line, size_t len, approval_rule *out, const char **why);
/* "allow https api.example.com 443" (no newline); the length, or -ENOSPC. */
int approval_rule_format(const approval_rule *r, char *buf, size_t n);

/* A bad line: its number (from 1) and what was wrong. */
typedef void (*approval_rules_warn_fn)(void *arg, unsigned line, const char *msg);

/* Parse a whole file's text. Always succeeds but for -ENOMEM. */
int approval_rules_parse(const char *text, size_t len, approval_rules **out,
                         approval_rules_warn_fn warn, void *arg);

/* The text of the file after storing rule r: every line kept but the rules
 * for r's key, r's line appended (a header comment first when the file was
 * empty). *out is malloc'd. -EINVAL if r's host is not a valid exact host. */
int approval_rules_merge_text(const char *old, size_t len, const approval_rule *r, char **out,
                              size_t *outlen);

/* Load the file: a missing file is an empty set. -EFBIG past the size cap
 * (nothing loaded), another negative errno when it cannot be read. */
int approval_rules_load(const char *path, approval_rules **out, approval_rules_warn_fn warn,
                        void *arg);
/* Store one rule under the lock (above); the directory is created (0700) if
 * missing. On success, *merged (if not NULL) is the rule set of the file as
 * written. */
int approval_rules_store(const char *path, const approval_rule *r, approval_rules **merged,
                         approval_rules_warn_fn warn, void *arg);

#endif
