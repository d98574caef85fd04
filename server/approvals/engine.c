/* The prompt table: one pending prompt per key, its waiters, the session
 * keys and the rules in force. One loop timer serves every prompt: it fires
 * at the earliest of the gather deadlines (a prompt goes out) and the
 * answer deadlines (a prompt times out). */
#include "server/approvals/approvals.h"
#include "server/approvals/rules.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct approval_waiter {
  approval_waiter *prev, *next;
  struct prompt *p;
  approval_done_fn fn;
  void *arg;
};

typedef enum prompt_state { P_GATHERING, P_ASKED, P_SETTLING } prompt_state;

typedef struct prompt {
  struct prompt *next; /* in the table while not settling */
  approvals *a;
  uint64_t id;
  approval_key key;
  prompt_state state;
  uint64_t deadline; /* loop time: out (gathering) or timed out (asked) */
  uint64_t started_at_ms;
  char reason[64];
  approval_waiter *head, *tail;
  size_t n_waiters;
  char *pids[APPROVALS_MAX_PROCESS_IDS]; /* distinct process ids, in join order */
  size_t n_pids;
} prompt;

struct approvals {
  uv_loop_t *loop;
  approvals_opts o;
  uv_timer_t timer;
  bool enabled, closing;
  uint64_t next_id;
  prompt *prompts;
  size_t n_prompts;
  approval_key *session;
  size_t n_session, cap_session;
  approval_rules *rules;
};

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void arm(approvals *a);

/* ---- lifecycle ---- */

int approvals_new(uv_loop_t *loop, const approvals_opts *opts, approvals **out) {
  approvals *a = calloc(1, sizeof *a);
  if (!a)
    return -ENOMEM;
  a->loop = loop;
  a->o = *opts;
  if (!a->o.timeout_ms)
    a->o.timeout_ms = APPROVALS_DEFAULT_TIMEOUT_MS;
  if (a->o.gather_ms == UINT64_MAX)
    a->o.gather_ms = APPROVALS_DEFAULT_GATHER_MS;
  if (!a->o.max_prompts)
    a->o.max_prompts = APPROVALS_DEFAULT_MAX_PROMPTS;
  if (!a->o.max_waiters)
    a->o.max_waiters = APPROVALS_DEFAULT_MAX_WAITERS;
  a->next_id = 1;
  int rc = uv_timer_init(loop, &a->timer);
  if (rc < 0) {
    free(a);
    return rc;
  }
  a->timer.data = a;
  *out = a;
  return 0;
}

static void settle(prompt *p, approval_decision d, const char *reason);

static void closed(uv_handle_t *h) {
  approvals *a = h->data;
  approval_rules_free(a->rules);
  free(a->session);
  free(a);
}

void approvals_close(approvals *a) {
  if (!a || a->closing)
    return;
  a->enabled = false;
  while (a->prompts)
    settle(a->prompts, APPROVAL_DENY, APPROVAL_REASON_SHUTDOWN);
  a->closing = true;
  uv_close((uv_handle_t *)&a->timer, closed);
}

void approvals_set_enabled(approvals *a, bool enabled) {
  a->enabled = enabled;
  if (enabled)
    return;
  /* The client is gone (or never answered prompts): settle what is out. */
  while (a->prompts)
    settle(a->prompts, APPROVAL_DENY, APPROVAL_REASON_GONE);
}

bool approvals_enabled(const approvals *a) { return a->enabled; }

/* ---- session keys and rules ---- */

static bool in_session(const approvals *a, const approval_key *k) {
  for (size_t i = 0; i < a->n_session; i++)
    if (approval_key_equal(&a->session[i], k))
      return true;
  return false;
}

static void session_add(approvals *a, const approval_key *k) {
  if (in_session(a, k) || a->n_session >= APPROVALS_MAX_SESSION_KEYS)
    return; /* past the cap the key is prompted for again: never wider */
  if (a->n_session == a->cap_session) {
    size_t cap = a->cap_session ? a->cap_session * 2 : 16;
    approval_key *v = realloc(a->session, cap * sizeof *v);
    if (!v)
      return;
    a->session = v;
    a->cap_session = cap;
  }
  a->session[a->n_session++] = *k;
}

bool approvals_session_allowed(const approvals *a, const approval_key *k) {
  return in_session(a, k);
}

void approvals_set_rules(approvals *a, approval_rules *rules) {
  approval_rules_free(a->rules);
  a->rules = rules;
}

const approval_rules *approvals_rules(const approvals *a) { return a->rules; }

/* ---- the table ---- */

static prompt *find_prompt(const approvals *a, const approval_key *k) {
  for (prompt *p = a->prompts; p; p = p->next)
    if (approval_key_equal(&p->key, k))
      return p;
  return NULL;
}

static prompt *find_id(const approvals *a, uint64_t id) {
  for (prompt *p = a->prompts; p; p = p->next)
    if (p->id == id)
      return p;
  return NULL;
}

static void unlink_prompt(prompt *p) {
  approvals *a = p->a;
  for (prompt **pp = &a->prompts; *pp; pp = &(*pp)->next) {
    if (*pp == p) {
      *pp = p->next;
      a->n_prompts--;
      break;
    }
  }
  p->next = NULL;
}

static void free_prompt(prompt *p) {
  for (size_t i = 0; i < p->n_pids; i++)
    free(p->pids[i]);
  free(p);
}

static void add_pid(prompt *p, const char *pid) {
  if (!pid || p->n_pids >= APPROVALS_MAX_PROCESS_IDS)
    return;
  for (size_t i = 0; i < p->n_pids; i++)
    if (strncmp(p->pids[i], pid, APPROVALS_PROCESS_ID_MAX) == 0)
      return;
  char *c = strndup(pid, APPROVALS_PROCESS_ID_MAX);
  if (c)
    p->pids[p->n_pids++] = c;
}

static void info_of(const prompt *p, approval_prompt_info *info) {
  info->id = p->id;
  info->key = &p->key;
  info->process_ids = (const char *const *)p->pids;
  info->n_process_ids = p->n_pids;
  info->reason = p->reason;
  info->started_at_ms = p->started_at_ms;
}

/* Settle a prompt: out of the table first (a request from inside a callback
 * starts a new prompt), then every waiter's callback, then the hook. */
static void settle(prompt *p, approval_decision d, const char *reason) {
  approvals *a = p->a;
  bool was_asked = p->state == P_ASKED;
  unlink_prompt(p);
  p->state = P_SETTLING;
  bool allow = approval_decision_allows(d);
  if (d == APPROVAL_ALLOW_SESSION)
    session_add(a, &p->key);
  if (d == APPROVAL_ALLOW_ALWAYS || d == APPROVAL_DENY_ALWAYS) {
    if (!a->rules)
      a->rules = approval_rules_new();
    if (a->rules)
      approval_rules_add(a->rules, &p->key, allow, true);
    if (a->o.hooks.persist)
      a->o.hooks.persist(a->o.hooks.arg, &p->key, allow);
  }
  const char *why = allow ? NULL : (reason ? reason : APPROVAL_REASON_DENIED);
  size_t served = 0;
  while (p->head) {
    approval_waiter *w = p->head;
    p->head = w->next;
    if (p->head)
      p->head->prev = NULL;
    else
      p->tail = NULL;
    p->n_waiters--;
    served++;
    approval_done_fn fn = w->fn;
    void *arg = w->arg;
    free(w);
    fn(arg, allow, why);
  }
  if (was_asked && a->o.hooks.resolved) {
    approval_prompt_info info;
    info_of(p, &info);
    a->o.hooks.resolved(a->o.hooks.arg, &info, d, served, why);
  }
  free_prompt(p);
  if (!a->closing)
    arm(a);
}

static void send_prompt(prompt *p) {
  approvals *a = p->a;
  p->state = P_ASKED;
  p->started_at_ms = wall_ms();
  p->deadline = uv_now(a->loop) + a->o.timeout_ms;
  approval_prompt_info info;
  info_of(p, &info);
  /* The hook may settle the prompt from inside (it cannot send it): p is
   * not touched after. */
  if (a->o.hooks.prompt)
    a->o.hooks.prompt(a->o.hooks.arg, &info);
  else
    settle(p, APPROVAL_DENY, APPROVAL_REASON_NO_CLIENT);
}

static void on_timer(uv_timer_t *t) {
  approvals *a = t->data;
  uint64_t now = uv_now(a->loop);
  /* One due prompt per pass: a hook may change the table. */
  for (;;) {
    prompt *due = NULL;
    for (prompt *p = a->prompts; p; p = p->next) {
      if (p->deadline <= now) {
        due = p;
        break;
      }
    }
    if (!due)
      break;
    if (due->state == P_GATHERING)
      send_prompt(due);
    else
      settle(due, APPROVAL_DENY, APPROVAL_REASON_TIMEOUT);
  }
  arm(a);
}

static void arm(approvals *a) {
  if (a->closing)
    return;
  uint64_t next = UINT64_MAX;
  for (prompt *p = a->prompts; p; p = p->next)
    if (p->deadline < next)
      next = p->deadline;
  if (next == UINT64_MAX) {
    uv_timer_stop(&a->timer);
    return;
  }
  uint64_t now = uv_now(a->loop);
  uv_timer_start(&a->timer, on_timer, next > now ? next - now : 0, 0);
}

/* ---- asking ---- */

int approvals_request(approvals *a, const approval_request *r, approval_done_fn fn, void *arg,
                      approval_waiter **out_waiter, const char **why) {
  *out_waiter = NULL;
  *why = NULL;
  approval_key k;
  int rc = approval_key_make(r->host, r->proto, r->port, &k, why);
  if (rc < 0)
    return rc;
  if (a->closing) {
    *why = APPROVAL_REASON_SHUTDOWN;
    return APPROVAL_DENIED;
  }
  /* Rules first: a persisted deny refuses even a session allow. */
  int rule = approval_rules_lookup(a->rules, &k);
  if (rule == APPROVAL_RULE_DENY) {
    *why = APPROVAL_REASON_RULE;
    return APPROVAL_DENIED;
  }
  if (rule == APPROVAL_RULE_ALLOW || in_session(a, &k))
    return APPROVAL_ALLOWED;
  if (!a->enabled) {
    *why = APPROVAL_REASON_NO_CLIENT;
    return APPROVAL_DENIED;
  }
  prompt *p = find_prompt(a, &k);
  if (p && p->n_waiters >= a->o.max_waiters) {
    *why = APPROVAL_REASON_WAITERS_FULL;
    return APPROVAL_DENIED;
  }
  if (!p && a->n_prompts >= a->o.max_prompts) {
    *why = APPROVAL_REASON_PROMPTS_FULL;
    return APPROVAL_DENIED;
  }
  approval_waiter *w = calloc(1, sizeof *w);
  if (!w)
    return -ENOMEM;
  bool fresh = !p;
  if (fresh) {
    p = calloc(1, sizeof *p);
    if (!p) {
      free(w);
      return -ENOMEM;
    }
    p->a = a;
    p->id = a->next_id++;
    p->key = k;
    p->state = P_GATHERING;
    p->deadline = uv_now(a->loop) + a->o.gather_ms;
    snprintf(p->reason, sizeof p->reason, "%s", r->reason ? r->reason : "not_allowed");
    prompt **pp = &a->prompts; /* in arrival order: they go out in that order */
    while (*pp)
      pp = &(*pp)->next;
    *pp = p;
    a->n_prompts++;
  }
  w->p = p;
  w->fn = fn;
  w->arg = arg;
  w->prev = p->tail;
  if (p->tail)
    p->tail->next = w;
  else
    p->head = w;
  p->tail = w;
  p->n_waiters++;
  /* Later waiters join silently: the prompt that went out keeps its list. */
  if (p->state == P_GATHERING)
    add_pid(p, r->process_id);
  if (fresh)
    arm(a);
  *out_waiter = w;
  return APPROVAL_PENDING;
}

void approvals_waiter_cancel(approval_waiter *w) {
  if (!w)
    return;
  prompt *p = w->p;
  approvals *a = p->a;
  if (w->prev)
    w->prev->next = w->next;
  else
    p->head = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    p->tail = w->prev;
  p->n_waiters--;
  free(w);
  /* A prompt still gathering that nobody waits for any more never goes out. */
  if (p->state == P_GATHERING && p->n_waiters == 0) {
    unlink_prompt(p);
    free_prompt(p);
    arm(a);
  }
}

/* ---- answering ---- */

int approvals_answer(approvals *a, uint64_t id, approval_decision d) {
  prompt *p = find_id(a, id);
  if (!p || p->state != P_ASKED)
    return -ENOENT;
  settle(p, d, approval_decision_allows(d) ? NULL : APPROVAL_REASON_DENIED);
  return 0;
}

int approvals_fail(approvals *a, uint64_t id, const char *reason) {
  prompt *p = find_id(a, id);
  if (!p || p->state != P_ASKED)
    return -ENOENT;
  settle(p, APPROVAL_DENY, reason ? reason : APPROVAL_REASON_ERROR);
  return 0;
}

/* ---- inspection ---- */

size_t approvals_pending_prompts(const approvals *a) { return a->n_prompts; }

size_t approvals_waiters(const approvals *a, const approval_key *k) {
  const prompt *p = find_prompt(a, k);
  return p ? p->n_waiters : 0;
}
