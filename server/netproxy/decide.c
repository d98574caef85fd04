/* The decision step: the baseline policy, then for an allow-list miss the
 * on_ask hook with a hold that netproxy_hold_resume() settles, now or
 * later; every outcome reported through on_decision; refusals kept in the
 * history ring (NETPROXY_HISTORY). */
#include "server/netproxy/np_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t now_ms(void) {
  uv_timeval64_t tv;
  uv_gettimeofday(&tv);
  return tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void fill_event(np_conn *c, netproxy_event *ev, netproxy_verdict v, const char *reason,
                       const char *source) {
  ev->timestamp_ms = now_ms();
  ev->host = c->host;
  ev->port = c->port;
  ev->protocol = c->proto;
  ev->method = c->method;
  ev->decision = v;
  ev->reason = reason;
  ev->source = source;
  ev->owner = c->owner;
}

void np_report(np_conn *c, netproxy_verdict v, const char *reason, const char *source) {
  netproxy *np = c->np;
  netproxy_event ev;
  fill_event(c, &ev, v, reason, source);
  if (v == NETPROXY_DENY) {
    np_hist *h = &np->hist[np->hist_next];
    h->ev = ev;
    snprintf(h->host, sizeof h->host, "%s", c->host);
    snprintf(h->method, sizeof h->method, "%s", c->method);
    h->ev.host = h->host;
    h->ev.method = h->method;
    np->hist_next = (np->hist_next + 1) % NETPROXY_HISTORY;
    if (np->hist_n < NETPROXY_HISTORY)
      np->hist_n++;
  }
  if (np->cb.on_decision)
    np->cb.on_decision(np->cb.ctx, &ev);
}

void netproxy_blocked_each(const netproxy *np, size_t limit,
                           void (*fn)(void *arg, const netproxy_event *ev), void *arg) {
  size_t n = np->hist_n < limit ? np->hist_n : limit;
  for (size_t i = 0; i < n; i++) {
    size_t k = (np->hist_next + NETPROXY_HISTORY - 1 - i) % NETPROXY_HISTORY;
    fn(arg, &np->hist[k].ev);
  }
}

void np_decide(np_conn *c, np_decided_fn done) {
  const netproxy_policy *p = &c->np->policy;
  /* Only a local literal (an IP, localhost) named exactly skips the address
   * check: a host name is checked on what it resolves to, always. */
  c->host_listed_exactly = np_host_local_literal(c->host) && np_policy_names_exactly(p, c->host);
  switch (np_policy_eval(p, c->host)) {
  case NP_BASE_DENIED:
    done(c, NETPROXY_DENY, "denied", "baseline_policy");
    return;
  case NP_BASE_LOCAL:
    done(c, NETPROXY_DENY, "not_allowed_local", "baseline_policy");
    return;
  case NP_BASE_NOT_ALLOWED:
    break;
  case NP_BASE_ALLOW:
    if (p->limited && c->proto != NETPROXY_HTTP) {
      done(c, NETPROXY_DENY, "method_not_allowed", "mode_guard");
      return;
    }
    if (p->limited && strcmp(c->method, "GET") && strcmp(c->method, "HEAD") &&
        strcmp(c->method, "OPTIONS")) {
      done(c, NETPROXY_DENY, "method_not_allowed", "mode_guard");
      return;
    }
    done(c, NETPROXY_ALLOW, "allowed", "baseline_policy");
    return;
  }
  /* An allow-list miss: ask. */
  netproxy *np = c->np;
  netproxy_event ev;
  fill_event(c, &ev, NETPROXY_ASK, "not_allowed", "baseline_policy");
  if (np->cb.on_decision)
    np->cb.on_decision(np->cb.ctx, &ev);
  if (!np->cb.on_ask) {
    done(c, NETPROXY_DENY, "not_allowed", "baseline_policy");
    return;
  }
  netproxy_hold *h = calloc(1, sizeof *h);
  if (!h) {
    done(c, NETPROXY_DENY, "not_allowed", "baseline_policy");
    return;
  }
  h->c = c;
  h->done = done;
  c->hold = h;
  /* Watch the client while it waits: what it sends is kept for later (up
   * to the input buffer), and its leaving ends the hold. */
  np_client_read_start(c);
  np->cb.on_ask(np->cb.ctx, h, &ev);
}

void *netproxy_hold_owner(const netproxy_hold *h) { return h->c ? h->c->owner : NULL; }

void netproxy_hold_resume(netproxy_hold *h, bool allow) {
  np_conn *c = h->c;
  np_decided_fn done = h->done;
  c->hold = NULL;
  free(h);
  if (c->dead)
    return;
  const netproxy_policy *p = &c->np->policy;
  if (allow && p->limited &&
      (c->proto != NETPROXY_HTTP ||
       (strcmp(c->method, "GET") && strcmp(c->method, "HEAD") && strcmp(c->method, "OPTIONS")))) {
    done(c, NETPROXY_DENY, "method_not_allowed", "mode_guard");
    return;
  }
  done(c, allow ? NETPROXY_ALLOW : NETPROXY_DENY, allow ? "allowed" : "not_allowed",
               "decider");
}
