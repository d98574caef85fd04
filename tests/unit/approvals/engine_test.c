/* The prompt table: grouping, decisions, failures, limits, cancellation.
 * Runs the engine on a private libuv loop with hooks that record what the
 * handler would send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "server/approvals/approvals.h"
#include "server/approvals/rules.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXREC 64

typedef struct rec {
  /* prompts sent */
  int n_prompts;
  uint64_t prompt_id[MAXREC];
  approval_key prompt_key[MAXREC];
  char pids[MAXREC][8][32];
  size_t n_pids[MAXREC];
  /* resolved */
  int n_resolved;
  approval_decision res_decision[MAXREC];
  size_t res_waiters[MAXREC];
  char res_reason[MAXREC][64];
  /* persisted */
  int n_persist;
  approval_key persist_key[MAXREC];
  bool persist_allow[MAXREC];
  /* answer from inside the prompt hook (0: none) */
  int answer_inline;
  approval_decision inline_decision;
} rec;

typedef struct result {
  int calls;
  bool allowed;
  char why[64];
} result;

static uv_loop_t loop;
static rec R;
static approvals *A;

static void on_prompt(void *arg, const approval_prompt_info *p) {
  rec *r = arg;
  int i = r->n_prompts++;
  assert_true(i < MAXREC);
  r->prompt_id[i] = p->id;
  r->prompt_key[i] = *p->key;
  r->n_pids[i] = p->n_process_ids;
  for (size_t k = 0; k < p->n_process_ids && k < 8; k++)
    snprintf(r->pids[i][k], sizeof r->pids[i][k], "%s", p->process_ids[k]);
  assert_true(p->started_at_ms > 1600000000000ULL);
  if (r->answer_inline)
    assert_int_equal(approvals_answer(A, p->id, r->inline_decision), 0);
}

static void on_resolved(void *arg, const approval_prompt_info *p, approval_decision d,
                        size_t waiters, const char *reason) {
  rec *r = arg;
  (void)p;
  int i = r->n_resolved++;
  r->res_decision[i] = d;
  r->res_waiters[i] = waiters;
  snprintf(r->res_reason[i], sizeof r->res_reason[i], "%s", reason ? reason : "");
}

static int on_persist(void *arg, const approval_key *k, bool allow) {
  rec *r = arg;
  int i = r->n_persist++;
  r->persist_key[i] = *k;
  r->persist_allow[i] = allow;
  return 0;
}

static void done(void *arg, bool allowed, const char *why) {
  result *res = arg;
  res->calls++;
  res->allowed = allowed;
  snprintf(res->why, sizeof res->why, "%s", why ? why : "");
}

static void start(unsigned max_prompts, unsigned max_waiters, uint64_t timeout_ms) {
  memset(&R, 0, sizeof R);
  assert_int_equal(uv_loop_init(&loop), 0);
  approvals_opts o = {.timeout_ms = timeout_ms,
                      .gather_ms = 0,
                      .max_prompts = max_prompts,
                      .max_waiters = max_waiters,
                      .hooks = {.arg = &R,
                                .prompt = on_prompt,
                                .resolved = on_resolved,
                                .persist = on_persist}};
  assert_int_equal(approvals_new(&loop, &o, &A), 0);
  approvals_set_enabled(A, true);
}

static void stop(void) {
  approvals_close(A);
  A = NULL;
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* Let the gather timer send what is due. */
static void turn(void) { uv_run(&loop, UV_RUN_NOWAIT); }

static int ask(const char *host, approval_proto proto, unsigned port, const char *pid,
               result *res, approval_waiter **w) {
  approval_request r = {.host = host, .proto = proto, .port = port, .process_id = pid,
                        .reason = "not_allowed"};
  const char *why = NULL;
  approval_waiter *tmp;
  int rc = approvals_request(A, &r, done, res, w ? w : &tmp, &why);
  if (rc == APPROVAL_DENIED && res)
    snprintf(res->why, sizeof res->why, "%s", why);
  return rc;
}

static void test_one_prompt_shared(void **state) {
  (void)state;
  start(0, 0, 0);
  result res[50] = {0};
  char pid[8];
  for (int i = 0; i < 50; i++) {
    snprintf(pid, sizeof pid, "p%d", i % 5);
    assert_int_equal(ask(i % 2 ? "A.com." : "a.com", APPROVAL_HTTPS, 443, pid, &res[i], NULL),
                     APPROVAL_PENDING);
  }
  assert_int_equal(approvals_pending_prompts(A), 1);
  turn();
  assert_int_equal(R.n_prompts, 1);
  assert_string_equal(R.prompt_key[0].host, "a.com");
  assert_int_equal(R.n_pids[0], 5);
  assert_string_equal(R.pids[0][0], "p0");
  assert_string_equal(R.pids[0][4], "p4");
  /* A later waiter joins silently: no new prompt, not listed. */
  result late = {0};
  assert_int_equal(ask("a.com", APPROVAL_HTTPS, 443, "late", &late, NULL), APPROVAL_PENDING);
  turn();
  assert_int_equal(R.n_prompts, 1);
  approval_key k;
  const char *why;
  approval_key_make("a.com", APPROVAL_HTTPS, 443, &k, &why);
  assert_int_equal(approvals_waiters(A, &k), 51);
  assert_int_equal(approvals_answer(A, R.prompt_id[0], APPROVAL_ALLOW_ONCE), 0);
  for (int i = 0; i < 50; i++) {
    assert_int_equal(res[i].calls, 1);
    assert_true(res[i].allowed);
  }
  assert_true(late.allowed);
  assert_int_equal(R.n_resolved, 1);
  assert_int_equal(R.res_decision[0], APPROVAL_ALLOW_ONCE);
  assert_int_equal(R.res_waiters[0], 51);
  /* allowOnce caches nothing: the next request prompts again. */
  result again = {0};
  assert_int_equal(ask("a.com", APPROVAL_HTTPS, 443, "p0", &again, NULL), APPROVAL_PENDING);
  turn();
  assert_int_equal(R.n_prompts, 2);
  assert_int_equal(approvals_answer(A, R.prompt_id[0], APPROVAL_DENY), -ENOENT);
  assert_int_equal(approvals_answer(A, R.prompt_id[1], APPROVAL_DENY), 0);
  assert_false(again.allowed);
  assert_string_equal(again.why, APPROVAL_REASON_DENIED);
  stop();
}

static void test_keys_separate(void **state) {
  (void)state;
  start(0, 0, 0);
  result r1 = {0}, r2 = {0}, r3 = {0}, r4 = {0};
  ask("a.com", APPROVAL_HTTPS, 443, "p", &r1, NULL);
  ask("a.com", APPROVAL_HTTPS, 80, "p", &r2, NULL);
  ask("a.com", APPROVAL_HTTP, 443, "p", &r3, NULL);
  ask("b.com", APPROVAL_HTTPS, 443, "p", &r4, NULL);
  turn();
  assert_int_equal(R.n_prompts, 4);
  assert_int_equal(approvals_answer(A, R.prompt_id[1], APPROVAL_ALLOW_ONCE), 0);
  assert_int_equal(r2.calls, 1);
  assert_true(r2.allowed);
  assert_int_equal(r1.calls + r3.calls + r4.calls, 0);
  stop();
  /* closing refused the rest */
  assert_int_equal(r1.calls, 1);
  assert_false(r1.allowed);
  assert_string_equal(r1.why, APPROVAL_REASON_SHUTDOWN);
}

static void test_session_and_always(void **state) {
  (void)state;
  start(0, 0, 0);
  result r = {0};
  ask("s.com", APPROVAL_HTTPS, 443, "p", &r, NULL);
  turn();
  approvals_answer(A, R.prompt_id[0], APPROVAL_ALLOW_SESSION);
  assert_true(r.allowed);
  assert_int_equal(ask("S.COM.", APPROVAL_HTTPS, 443, "p", NULL, NULL), APPROVAL_ALLOWED);
  /* only that key */
  result other = {0};
  assert_int_equal(ask("s.com", APPROVAL_HTTPS, 8443, "p", &other, NULL), APPROVAL_PENDING);
  turn();
  assert_int_equal(R.n_persist, 0);
  approvals_answer(A, R.prompt_id[1], APPROVAL_ALLOW_ALWAYS);
  assert_int_equal(R.n_persist, 1);
  assert_true(R.persist_allow[0]);
  assert_int_equal(R.persist_key[0].port, 8443);
  assert_int_equal(ask("s.com", APPROVAL_HTTPS, 8443, "p", NULL, NULL), APPROVAL_ALLOWED);
  assert_int_equal(approval_rules_lookup(approvals_rules(A), &R.persist_key[0]),
                   APPROVAL_RULE_ALLOW);
  /* denyAlways: persisted, and later requests are refused without a prompt,
   * even over a session allow. */
  result d = {0};
  ask("d.com", APPROVAL_HTTP, 80, "p", &d, NULL);
  turn();
  approvals_answer(A, R.prompt_id[2], APPROVAL_DENY_ALWAYS);
  assert_false(d.allowed);
  assert_string_equal(d.why, APPROVAL_REASON_DENIED);
  assert_int_equal(R.n_persist, 2);
  assert_false(R.persist_allow[1]);
  result d2 = {0};
  assert_int_equal(ask("d.com", APPROVAL_HTTP, 80, "p", &d2, NULL), APPROVAL_DENIED);
  assert_string_equal(d2.why, APPROVAL_REASON_RULE);
  assert_int_equal(R.n_prompts, 3);
  stop();
}

static void test_timeout(void **state) {
  (void)state;
  start(0, 0, 30);
  result r1 = {0}, r2 = {0};
  ask("t.com", APPROVAL_HTTPS, 443, "p", &r1, NULL);
  ask("t.com", APPROVAL_HTTPS, 443, "q", &r2, NULL);
  uv_run(&loop, UV_RUN_DEFAULT); /* returns once the timer has nothing left */
  assert_int_equal(R.n_prompts, 1);
  assert_int_equal(r1.calls, 1);
  assert_int_equal(r2.calls, 1);
  assert_false(r1.allowed);
  assert_string_equal(r2.why, APPROVAL_REASON_TIMEOUT);
  assert_int_equal(R.n_resolved, 1);
  assert_int_equal(R.res_decision[0], APPROVAL_DENY);
  assert_int_equal(R.res_waiters[0], 2);
  assert_string_equal(R.res_reason[0], APPROVAL_REASON_TIMEOUT);
  assert_int_equal(approvals_pending_prompts(A), 0);
  stop();
}

static void test_fail_and_disabled(void **state) {
  (void)state;
  start(0, 0, 0);
  result r = {0};
  ask("e.com", APPROVAL_HTTPS, 443, "p", &r, NULL);
  turn();
  assert_int_equal(approvals_fail(A, R.prompt_id[0], APPROVAL_REASON_UNKNOWN), 0);
  assert_false(r.allowed);
  assert_string_equal(r.why, APPROVAL_REASON_UNKNOWN);
  assert_int_equal(approvals_fail(A, R.prompt_id[0], APPROVAL_REASON_ERROR), -ENOENT);
  /* The client goes away with a prompt out: the group is refused. */
  result g1 = {0}, g2 = {0};
  ask("g.com", APPROVAL_HTTPS, 443, "p", &g1, NULL);
  turn();
  ask("g.com", APPROVAL_HTTPS, 443, "p", &g2, NULL);
  approvals_set_enabled(A, false);
  assert_int_equal(g1.calls + g2.calls, 2);
  assert_string_equal(g2.why, APPROVAL_REASON_GONE);
  assert_int_equal(R.n_resolved, 2);
  assert_int_equal(R.res_waiters[1], 2);
  /* Without a client that answers, nothing is asked. */
  result n = {0};
  assert_int_equal(ask("n.com", APPROVAL_HTTPS, 443, "p", &n, NULL), APPROVAL_DENIED);
  assert_string_equal(n.why, APPROVAL_REASON_NO_CLIENT);
  assert_int_equal(approvals_pending_prompts(A), 0);
  stop();
}

static void test_limits(void **state) {
  (void)state;
  start(2, 3, 0);
  result r[8];
  memset(r, 0, sizeof r);
  assert_int_equal(ask("a.com", APPROVAL_HTTPS, 443, "p", &r[0], NULL), APPROVAL_PENDING);
  assert_int_equal(ask("b.com", APPROVAL_HTTPS, 443, "p", &r[1], NULL), APPROVAL_PENDING);
  assert_int_equal(ask("c.com", APPROVAL_HTTPS, 443, "p", &r[2], NULL), APPROVAL_DENIED);
  assert_string_equal(r[2].why, APPROVAL_REASON_PROMPTS_FULL);
  assert_int_equal(ask("a.com", APPROVAL_HTTPS, 443, "p", &r[3], NULL), APPROVAL_PENDING);
  assert_int_equal(ask("a.com", APPROVAL_HTTPS, 443, "p", &r[4], NULL), APPROVAL_PENDING);
  assert_int_equal(ask("a.com", APPROVAL_HTTPS, 443, "p", &r[5], NULL), APPROVAL_DENIED);
  assert_string_equal(r[5].why, APPROVAL_REASON_WAITERS_FULL);
  const char *why = NULL;
  approval_waiter *w;
  approval_request bad = {.host = "*.a.com", .proto = APPROVAL_HTTPS, .port = 443};
  assert_int_equal(approvals_request(A, &bad, done, NULL, &w, &why), -EINVAL);
  assert_non_null(why);
  stop();
}

static void test_waiter_leaves(void **state) {
  (void)state;
  start(0, 0, 0);
  result r1 = {0}, r2 = {0}, r3 = {0};
  approval_waiter *w1, *w2, *w3;
  ask("w.com", APPROVAL_HTTPS, 443, "p1", &r1, &w1);
  ask("w.com", APPROVAL_HTTPS, 443, "p2", &r2, &w2);
  turn();
  ask("w.com", APPROVAL_HTTPS, 443, "p3", &r3, &w3);
  approvals_waiter_cancel(w2);
  assert_int_equal(approvals_pending_prompts(A), 1);
  approvals_waiter_cancel(w1);
  approvals_waiter_cancel(w3);
  /* Everyone left; the prompt stays out until it is answered. */
  assert_int_equal(approvals_pending_prompts(A), 1);
  result r4 = {0};
  ask("w.com", APPROVAL_HTTPS, 443, "p4", &r4, NULL);
  assert_int_equal(approvals_answer(A, R.prompt_id[0], APPROVAL_ALLOW_ONCE), 0);
  assert_int_equal(r1.calls + r2.calls + r3.calls, 0);
  assert_true(r4.allowed);
  assert_int_equal(R.res_waiters[0], 1);
  /* A prompt still gathering that everyone left never goes out. */
  result r5 = {0};
  approval_waiter *w5;
  ask("x.com", APPROVAL_HTTPS, 443, "p", &r5, &w5);
  approvals_waiter_cancel(w5);
  assert_int_equal(approvals_pending_prompts(A), 0);
  turn();
  assert_int_equal(R.n_prompts, 1);
  stop();
}

/* A callback that asks again for the same key starts a new prompt. */
static result reask_res;
static void reask(void *arg, bool allowed, const char *why) {
  (void)why;
  result *res = arg;
  res->calls++;
  res->allowed = allowed;
  ask("r.com", APPROVAL_HTTPS, 443, "p", &reask_res, NULL);
}

static void test_reentrant(void **state) {
  (void)state;
  start(0, 0, 0);
  result r = {0};
  approval_request req = {.host = "r.com", .proto = APPROVAL_HTTPS, .port = 443};
  approval_waiter *w;
  const char *why;
  assert_int_equal(approvals_request(A, &req, reask, &r, &w, &why), APPROVAL_PENDING);
  turn();
  approvals_answer(A, R.prompt_id[0], APPROVAL_ALLOW_ONCE);
  assert_true(r.allowed);
  assert_int_equal(approvals_pending_prompts(A), 1);
  turn();
  assert_int_equal(R.n_prompts, 2);
  /* the prompt hook may answer from inside */
  R.answer_inline = 1;
  R.inline_decision = APPROVAL_DENY;
  result s = {0};
  ask("inline.com", APPROVAL_HTTPS, 443, "p", &s, NULL);
  turn();
  assert_int_equal(s.calls, 1);
  assert_false(s.allowed);
  stop();
  assert_int_equal(reask_res.calls, 1);
}

static void test_rules_in_force(void **state) {
  (void)state;
  start(0, 0, 0);
  approval_rules *rules = approval_rules_new();
  approval_key k;
  const char *why;
  approval_key_make("ok.com", APPROVAL_HTTPS, 443, &k, &why);
  approval_rules_add(rules, &k, true, false);
  approval_key_make("no.com", APPROVAL_HTTPS, 443, &k, &why);
  approval_rules_add(rules, &k, true, false);
  approval_rules_add(rules, &k, false, false); /* deny wins */
  approval_rules_add(rules, &k, true, false);
  approvals_set_rules(A, rules);
  approvals_set_enabled(A, false);
  assert_int_equal(ask("OK.com.", APPROVAL_HTTPS, 443, "p", NULL, NULL), APPROVAL_ALLOWED);
  result r = {0};
  assert_int_equal(ask("no.com", APPROVAL_HTTPS, 443, "p", &r, NULL), APPROVAL_DENIED);
  assert_string_equal(r.why, APPROVAL_REASON_RULE);
  /* exact: another port of the allowed host is not allowed */
  result o = {0};
  assert_int_equal(ask("ok.com", APPROVAL_HTTPS, 8443, "p", &o, NULL), APPROVAL_DENIED);
  assert_string_equal(o.why, APPROVAL_REASON_NO_CLIENT);
  stop();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_one_prompt_shared), cmocka_unit_test(test_keys_separate),
      cmocka_unit_test(test_session_and_always), cmocka_unit_test(test_timeout),
      cmocka_unit_test(test_fail_and_disabled),  cmocka_unit_test(test_limits),
      cmocka_unit_test(test_waiter_leaves),      cmocka_unit_test(test_reentrant),
      cmocka_unit_test(test_rules_in_force),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
