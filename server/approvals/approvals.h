/* server/approvals: network approval prompts, shared by every waiter.
 *
 * The egress proxy holds a connection whose request the domain policy
 * answered with `ask`, and asks this engine. Requests are grouped by key:
 * (normalised host, protocol, port). One prompt per key is pending at a time;
 * a request for a key that already has a pending prompt joins its group, from
 * any process, and shares its answer. The engine asks the outside world
 * through a hook (the handler sends approval/network) and is told the answer
 * (approvals_answer) or a failure (approvals_fail: timeout, error answer,
 * unknown decision, client gone): a failure is always a deny, never a hang.
 *
 *   allowOnce        the group goes through; nothing is remembered
 *   allowForSession  also: the key is allowed for the life of the engine
 *   allowAlways      also: an allow rule for the key is persisted
 *   deny             the group is refused
 *   denyAlways       also: a deny rule for the key is persisted
 *
 * Persisted rules live in one file (rules.h); the engine keeps the loaded
 * set and consults it before prompting: a deny rule refuses, an allow rule
 * lets through, exactly for the key (never a wildcard). A deny rule wins over
 * an allow rule for the same key.
 *
 * Everything runs on the loop thread. Errors are 0 or a negative errno.
 * Ownership: the engine owns prompts and waiters. A waiter is freed by the
 * engine when its callback runs (the pointer is dead inside the callback),
 * or by approvals_waiter_cancel(); the caller never frees one. Strings passed in are copied.
 */
#ifndef WARDEN_APPROVALS_H
#define WARDEN_APPROVALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* ---- keys ---- */

/* Longest normalised host: a DNS name is at most 253 bytes, an IPv6 literal
 * at most 45 (INET6_ADDRSTRLEN - 1). */
#define APPROVALS_HOST_MAX 253

typedef enum approval_proto {
  APPROVAL_HTTP = 0,
  APPROVAL_HTTPS,
  APPROVAL_SOCKS5_TCP,
  APPROVAL_SOCKS5_UDP,
  APPROVAL_PROTO_COUNT,
} approval_proto;

/* The wire names: "http", "https", "socks5Tcp", "socks5Udp". */
const char *approval_proto_name(approval_proto p);
/* Exact wire name; -EINVAL otherwise. */
int approval_proto_parse(const char *s, approval_proto *out);

typedef struct approval_key {
  char host[APPROVALS_HOST_MAX + 1]; /* normalised */
  approval_proto proto;
  uint16_t port;
} approval_key;

/* Normalise a host: lowercase, one trailing dot dropped, brackets around an
 * IPv6 literal dropped, IPv4 and IPv6 literals written in their canonical
 * form (inet_ntop). A name is letters, digits, '-', '_' and non-empty
 * dot-separated labels. 0, or -EINVAL with *why saying what was wrong
 * ("wildcards are not allowed", "empty host", ...). */
int approval_host_normalize(const char *host, char *out, size_t outlen, const char **why);
/* A key from its parts: the host normalised, port 1..65535. */
int approval_key_make(const char *host, approval_proto proto, unsigned port, approval_key *out,
                      const char **why);
bool approval_key_equal(const approval_key *a, const approval_key *b);

/* ---- decisions ---- */

typedef enum approval_decision {
  APPROVAL_ALLOW_ONCE = 0,
  APPROVAL_ALLOW_SESSION,
  APPROVAL_ALLOW_ALWAYS,
  APPROVAL_DENY,
  APPROVAL_DENY_ALWAYS,
} approval_decision;

/* "allowOnce", "allowForSession", "allowAlways", "deny", "denyAlways". */
const char *approval_decision_name(approval_decision d);
int approval_decision_parse(const char *s, approval_decision *out);
bool approval_decision_allows(approval_decision d);

/* Reasons a waiter is refused (the proxy's blocked response carries them). */
#define APPROVAL_REASON_DENIED "denied_by_user"
#define APPROVAL_REASON_RULE "denied_by_rule"
#define APPROVAL_REASON_NO_CLIENT "approvals_not_enabled"
#define APPROVAL_REASON_TIMEOUT "approval_timeout"
#define APPROVAL_REASON_ERROR "approval_error"
#define APPROVAL_REASON_UNKNOWN "approval_unknown_decision"
#define APPROVAL_REASON_GONE "approval_client_gone"
#define APPROVAL_REASON_PROMPTS_FULL "too_many_pending_approvals"
#define APPROVAL_REASON_WAITERS_FULL "too_many_approval_waiters"
#define APPROVAL_REASON_SHUTDOWN "server_shutting_down"

/* ---- the engine ---- */

/* Limits (each refusal has its own reason above). */
#define APPROVALS_DEFAULT_MAX_PROMPTS 64     /* pending prompts at once */
#define APPROVALS_DEFAULT_MAX_WAITERS 1024   /* waiters sharing one prompt */
#define APPROVALS_MAX_PROCESS_IDS 64         /* processIds listed in one prompt */
#define APPROVALS_PROCESS_ID_MAX 255         /* longer process ids are cut */
#define APPROVALS_DEFAULT_GATHER_MS 20       /* a new prompt waits this long for
                                                concurrent requests before it
                                                goes out, so that processIds
                                                lists all of them */
#define APPROVALS_DEFAULT_TIMEOUT_MS 120000  /* approvalTimeoutMs */
#define APPROVALS_MAX_SESSION_KEYS 4096      /* allowForSession keys kept */

typedef struct approvals approvals;
typedef struct approval_waiter approval_waiter;

/* A prompt as it goes out (borrowed for the duration of the hook call). */
typedef struct approval_prompt_info {
  uint64_t id;                     /* approvalId is "net-<id>" */
  const approval_key *key;
  const char *const *process_ids;  /* distinct, in the order they joined */
  size_t n_process_ids;
  const char *reason;              /* why the proxy asked (first waiter's) */
  uint64_t started_at_ms;          /* wall clock, Unix epoch */
} approval_prompt_info;

typedef struct approvals_hooks {
  void *arg;
  /* Send the prompt. The answer comes later through approvals_answer() or
   * approvals_fail() with p->id; either may also be called from inside. */
  void (*prompt)(void *arg, const approval_prompt_info *p);
  /* A prompt that went out is settled (after every waiter's callback). */
  void (*resolved)(void *arg, const approval_prompt_info *p, approval_decision d,
                   size_t waiters, const char *reason);
  /* allowAlways/denyAlways: persist the rule. 0, or a negative errno (logged
   * by the caller; the decision still applies to the group and the live
   * rule set). May be NULL: nothing is persisted. */
  int (*persist)(void *arg, const approval_key *k, bool allow);
} approvals_hooks;

typedef struct approvals_opts {
  uint64_t timeout_ms;   /* 0: APPROVALS_DEFAULT_TIMEOUT_MS */
  uint64_t gather_ms;    /* UINT64_MAX: APPROVALS_DEFAULT_GATHER_MS; 0: next loop turn */
  unsigned max_prompts;  /* 0: default */
  unsigned max_waiters;  /* 0: default */
  approvals_hooks hooks;
} approvals_opts;

int approvals_new(uv_loop_t *loop, const approvals_opts *opts, approvals **out);
/* Refuse every waiter (APPROVAL_REASON_SHUTDOWN), then free the engine once
 * its timer is closed (the loop must run). */
void approvals_close(approvals *a);

/* Whether a client answers prompts (capabilities.networkApprovals). Off: a
 * request that would prompt is refused at once (APPROVAL_REASON_NO_CLIENT).
 * Turning it off fails the prompts that are out (APPROVAL_REASON_GONE). */
void approvals_set_enabled(approvals *a, bool enabled);
bool approvals_enabled(const approvals *a);

/* ---- asking ---- */

typedef enum approval_status {
  APPROVAL_PENDING = 0, /* *out_waiter set; fn runs later, exactly once */
  APPROVAL_ALLOWED = 1, /* at once: session key or allow rule */
  APPROVAL_DENIED = 2,  /* at once: *why says why */
} approval_status;

typedef struct approval_request {
  const char *host;
  approval_proto proto;
  unsigned port;
  const char *process_id; /* NULL: a connection no process owns */
  const char *reason;     /* why the proxy asks, e.g. "not_allowed" */
} approval_request;

/* allowed, and when not, why (a static string). The waiter is freed after. */
typedef void (*approval_done_fn)(void *arg, bool allowed, const char *why);

/* An APPROVAL_* status, or -EINVAL for a host or port that is not a key
 * (*why says what was wrong). */
int approvals_request(approvals *a, const approval_request *r, approval_done_fn fn, void *arg,
                      approval_waiter **out_waiter, const char **why);
/* The waiter's own connection closed: it leaves its group without a
 * callback. The prompt stays for the others. */
void approvals_waiter_cancel(approval_waiter *w);

/* ---- answering ---- */

/* -ENOENT when no prompt with that id is out (already settled). */
int approvals_answer(approvals *a, uint64_t prompt_id, approval_decision d);
/* Settle a prompt as deny with the given reason (static string). */
int approvals_fail(approvals *a, uint64_t prompt_id, const char *reason);

/* ---- inspection (tests, the handler) ---- */

size_t approvals_pending_prompts(const approvals *a);
size_t approvals_waiters(const approvals *a, const approval_key *k);
bool approvals_session_allowed(const approvals *a, const approval_key *k);

/* ---- rules in force ---- */

struct approval_rules;
/* Replace the rule set (taken over; NULL: none). */
void approvals_set_rules(approvals *a, struct approval_rules *rules);
const struct approval_rules *approvals_rules(const approvals *a);

#endif
