/* The decision step's hold: an allow-list miss is handed to on_ask, the
 * connection waits, and netproxy_hold_resume() lets it through or refuses
 * it later; a client that leaves while held is reported by on_hold_closed.
 * A real loop, a real listener on 127.0.0.1, a blocking client in a thread. */
#include "server/netproxy/netproxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct fixture {
  uv_loop_t loop;
  netproxy *np;
  int port, origin_fd, origin_port;
  netproxy_hold *held;
  int resume; /* 1 allow, 0 deny, -1 never */
  uv_timer_t later;
  uv_async_t done;
  bool hold_closed;
  bool client_leaves;
  char reply[256];
  char decisions[8][32];
  int ndecisions;
} fixture;

static void on_decision(void *ctx, const netproxy_event *ev) {
  fixture *f = ctx;
  if (f->ndecisions < 8)
    snprintf(f->decisions[f->ndecisions++], 32, "%s/%s", netproxy_verdict_name(ev->decision),
             ev->source);
}

static void resume_later(uv_timer_t *t) {
  fixture *f = t->data;
  netproxy_hold_resume(f->held, f->resume == 1);
  f->held = NULL;
}

static void on_ask(void *ctx, netproxy_hold *h, const netproxy_event *ev) {
  fixture *f = ctx;
  assert_string_equal(ev->reason, "not_allowed");
  f->held = h;
  if (f->resume >= 0)
    uv_timer_start(&f->later, resume_later, 100, 0); /* answered later, not in the hook */
}

static void on_hold_closed(void *ctx, netproxy_hold *h) {
  fixture *f = ctx;
  assert_ptr_equal(h, f->held);
  f->held = NULL;
  f->hold_closed = true;
  uv_async_send(&f->done);
}

static void *client(void *arg) {
  fixture *f = arg;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof a), 0);
  char req[128];
  int n = snprintf(req, sizeof req, "CONNECT 127.0.0.1:%d HTTP/1.1\r\n\r\n", f->origin_port);
  assert_int_equal(write(s, req, (size_t)n), n);
  if (f->client_leaves) {
    usleep(100000);
    close(s);
    return NULL;
  }
  size_t got = 0;
  while (got < sizeof f->reply - 1) {
    ssize_t r = read(s, f->reply + got, sizeof f->reply - 1 - got);
    if (r <= 0 || strstr(f->reply, "\r\n\r\n"))
      break;
    got += (size_t)r;
  }
  close(s);
  uv_async_send(&f->done);
  return NULL;
}

static void stop(uv_async_t *a) { uv_stop(a->loop); }

static void run(fixture *f, int resume, bool leaves) {
  memset(f, 0, sizeof *f);
  f->resume = resume;
  f->client_leaves = leaves;
  uv_loop_init(&f->loop);
  uv_timer_init(&f->loop, &f->later);
  f->later.data = f;
  uv_async_init(&f->loop, &f->done, stop);
  netproxy_callbacks cb = {.ctx = f, .on_decision = on_decision, .on_ask = on_ask,
                           .on_hold_closed = on_hold_closed};
  assert_int_equal(netproxy_new(&f->loop, NULL, &cb, &f->np), 0);
  netproxy_policy p = {.allow_local_binding = true}; /* empty allowlist: everything asks */
  char err[128];
  assert_int_equal(netproxy_set_policy(f->np, &p, err, sizeof err), 0);
  assert_int_equal(netproxy_listen_addr(f->np, "127.0.0.1", 0, NULL, &f->port), 0);
  f->origin_fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(f->origin_fd, (struct sockaddr *)&a, sizeof a);
  listen(f->origin_fd, 4);
  socklen_t al = sizeof a;
  getsockname(f->origin_fd, (struct sockaddr *)&a, &al);
  f->origin_port = ntohs(a.sin_port);
  pthread_t t;
  pthread_create(&t, NULL, client, f);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  pthread_join(t, NULL);
  netproxy_free(f->np);
  uv_close((uv_handle_t *)&f->later, NULL);
  uv_close((uv_handle_t *)&f->done, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  close(f->origin_fd);
}

static void test_resume_allow(void **state) {
  (void)state;
  fixture f;
  run(&f, 1, false);
  assert_true(strncmp(f.reply, "HTTP/1.1 200", 12) == 0);
  assert_int_equal(f.ndecisions, 2);
  assert_string_equal(f.decisions[0], "ask/baseline_policy");
  assert_string_equal(f.decisions[1], "allow/decider");
}

static void test_resume_deny(void **state) {
  (void)state;
  fixture f;
  run(&f, 0, false);
  assert_true(strncmp(f.reply, "HTTP/1.1 403", 12) == 0);
  assert_non_null(strstr(f.reply, "x-proxy-error: blocked-by-allowlist"));
  assert_int_equal(f.ndecisions, 2);
  assert_string_equal(f.decisions[1], "deny/decider");
}

static void test_client_leaves_while_held(void **state) {
  (void)state;
  fixture f;
  run(&f, -1, true);
  assert_true(f.hold_closed);
  assert_int_equal(f.ndecisions, 1); /* the ask; no outcome */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_resume_allow),
      cmocka_unit_test(test_resume_deny),
      cmocka_unit_test(test_client_leaves_while_held),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
