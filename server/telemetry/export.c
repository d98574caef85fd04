/* Export: two queues (spans, log records) of encoded events, sent in batches
 * over OTLP/HTTP by libcurl's multi interface driven by the libuv loop:
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION -> uv_poll)
 * and when to call it back (CURLMOPT_TIMERFUNCTION -> uv_timer); we tell it
 * what happened with curl_multi_socket_action. No call here blocks: DNS runs
 * in curl's resolver thread, connects and transfers are non-blocking.
 *
 * One batch per queue is in flight at a time. A batch stays in memory until
 * the collector accepts it (2xx), refuses it for good (other 4xx/5xx), or the
 * attempts run out; all the while it counts against max_queue_bytes, so a
 * dead or hanging collector costs at most that much memory: newer events are
 * dropped and counted. */
#include "server/telemetry/tele_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tele_note(telemetry *t, tele_level level, const char *fmt, ...) {
  if (!t->opts.on_log)
    return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  t->opts.on_log(t->opts.arg, level, msg);
}

static const char *qname(int which) { return which == TELE_Q_TRACES ? "spans" : "log records"; }

static void handle_closed(uv_handle_t *h) {
  telemetry *t = h->data;
  t->open_handles--;
}

static void sock_closed(uv_handle_t *h) {
  tele_sock *s = (tele_sock *)h;
  s->t->open_handles--;
  free(s);
}

static void maybe_finish_shutdown(telemetry *t);
static void send_batch(tele_queue *q);
static void check_done(telemetry *t);

/* ---- curl on the loop ---- */

static void on_poll(uv_poll_t *h, int status, int events) {
  tele_sock *s = (tele_sock *)h;
  telemetry *t = s->t;
  int flags = 0;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  else {
    if (events & UV_READABLE)
      flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
      flags |= CURL_CSELECT_OUT;
  }
  int running;
  tele_curl.multi_socket_action(t->multi, s->fd, flags, &running);
  check_done(t);
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp) {
  (void)e;
  telemetry *t = userp;
  tele_sock *s = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      uv_poll_stop(&s->poll);
      tele_curl.multi_assign(t->multi, fd, NULL);
      uv_close((uv_handle_t *)&s->poll, sock_closed);
    }
    return 0;
  }
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s)
      return -1;
    s->t = t;
    s->fd = fd;
    if (uv_poll_init_socket(t->loop, &s->poll, fd) < 0) {
      free(s);
      return -1;
    }
    t->open_handles++;
    tele_curl.multi_assign(t->multi, fd, s);
  }
  int ev = 0;
  if (what & CURL_POLL_IN)
    ev |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    ev |= UV_WRITABLE;
  uv_poll_start(&s->poll, ev, on_poll);
  return 0;
}

static void on_curl_timer(uv_timer_t *h) {
  telemetry *t = h->data;
  int running;
  tele_curl.multi_socket_action(t->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(t);
}

static int on_timer_change(CURLM *m, long timeout_ms, void *userp) {
  (void)m;
  telemetry *t = userp;
  if (timeout_ms < 0)
    uv_timer_stop(&t->curl_timer);
  else /* 0 means "now": the next loop iteration, never from inside this callback */
    uv_timer_start(&t->curl_timer, on_curl_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

static size_t on_response(char *p, size_t size, size_t n, void *arg) {
  tele_queue *q = arg;
  (void)p;
  q->response_bytes += size * n;
  /* The body (an ExportPartialSuccess at most) is not needed; a collector
   * that streams without end is cut off. */
  return q->response_bytes > TELE_RESPONSE_MAX_BYTES ? 0 : size * n;
}

/* ---- batches ---- */

static void batch_release(tele_queue *q) {
  telemetry *t = q->t;
  free(q->body);
  free(q->plain);
  q->body = q->plain = NULL;
  q->body_len = q->plain_len = 0;
  q->gzipped = false;
  t->total_bytes -= q->batch_bytes;
  q->batch_bytes = q->batch_count = 0;
  q->attempt = 0;
  q->state = TQ_IDLE;
}

static void batch_drop(tele_queue *q, const char *why) {
  telemetry *t = q->t;
  t->export_failures++;
  q->dropped += q->batch_count;
  tele_note(t, TELE_LOG_WARN, "telemetry: dropped a batch of %zu %s to %s: %s", q->batch_count,
            qname(q->which), q->url, why);
  batch_release(q);
}

static void on_queue_timer(uv_timer_t *h);

/* Send, or arm the batch delay, depending on what waits. */
static void kick(tele_queue *q) {
  telemetry *t = q->t;
  if (q->state == TQ_SENDING || q->state == TQ_BACKOFF || t->closed)
    return;
  if (q->count == 0) {
    if (q->state == TQ_WAIT)
      uv_timer_stop(&q->timer);
    q->state = TQ_IDLE;
    return;
  }
  if (q->count >= t->batch_max_events || q->bytes >= TELE_BATCH_MAX_BYTES || t->shutting_down) {
    if (q->state == TQ_WAIT)
      uv_timer_stop(&q->timer);
    send_batch(q);
  } else if (q->state == TQ_IDLE) {
    q->state = TQ_WAIT;
    uv_timer_start(&q->timer, on_queue_timer, t->batch_delay_ms, 0);
  }
}

static void start_transfer(tele_queue *q) {
  telemetry *t = q->t;
  CURL *e = tele_curl.easy_init();
  if (!e) {
    batch_drop(q, "curl_easy_init failed");
    return;
  }
  q->response_bytes = 0;
  tele_curl.easy_setopt(e, CURLOPT_URL, q->url);
  tele_curl.easy_setopt(e, CURLOPT_POST, 1L);
  tele_curl.easy_setopt(e, CURLOPT_POSTFIELDS, q->body);
  tele_curl.easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
  tele_curl.easy_setopt(e, CURLOPT_HTTPHEADER, q->gzipped ? t->headers : t->headers->next);
  tele_curl.easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
  tele_curl.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  tele_curl.easy_setopt(e, CURLOPT_WRITEFUNCTION, on_response);
  tele_curl.easy_setopt(e, CURLOPT_WRITEDATA, q);
  tele_curl.easy_setopt(e, CURLOPT_PRIVATE, q);
  tele_curl.easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  tele_curl.easy_setopt(e, CURLOPT_USERAGENT, "warden-otlp/1");
  if (tele_curl.multi_add_handle(t->multi, e) != CURLM_OK) {
    tele_curl.easy_cleanup(e);
    batch_drop(q, "curl_multi_add_handle failed");
    return;
  }
  q->easy = e;
  q->state = TQ_SENDING;
}

static void send_batch(tele_queue *q) {
  telemetry *t = q->t;
  const char *head = t->batch_head[q->which];
  size_t hl = strlen(head), tl = strlen(tele_batch_tail);
  /* Take events up to the batch limits. */
  size_t n = 0, bytes = 0;
  for (tele_item *it = q->head; it && n < t->batch_max_events; it = it->next) {
    if (n && bytes + it->len > TELE_BATCH_MAX_BYTES)
      break;
    n++;
    bytes += it->len;
  }
  char *body = malloc(hl + bytes + n + tl + 1);
  if (!body)
    return; /* try again when the next event arrives */
  memcpy(body, head, hl);
  size_t o = hl;
  for (size_t i = 0; i < n; i++) {
    tele_item *it = q->head;
    q->head = it->next;
    if (i)
      body[o++] = ',';
    memcpy(body + o, it->data, it->len);
    o += it->len;
    free(it);
  }
  if (!q->head)
    q->tail = &q->head;
  memcpy(body + o, tele_batch_tail, tl);
  o += tl;
  body[o] = '\0';
  q->count -= n;
  q->bytes -= bytes;
  t->total_bytes -= n * sizeof(tele_item); /* the item headers are gone */
  q->batch_count = n;
  q->batch_bytes = bytes; /* still counted in total_bytes until released */
  if (t->gzip) {
    char *z;
    size_t zn;
    if (tele_gzip(body, o, &z, &zn) == 0) {
      q->plain = body;
      q->plain_len = o;
      q->gzipped = true;
      body = z;
      o = zn;
    }
  }
  q->body = body;
  q->body_len = o;
  q->attempt = 0;
  start_transfer(q);
}

static bool retryable(CURLcode rc, long status) {
  if (rc != CURLE_OK)
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT ||
           rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_GOT_NOTHING ||
           rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_PARTIAL_FILE ||
           rc == CURLE_SSL_CONNECT_ERROR;
  /* OTLP/HTTP: these are the transient answers. */
  return status == 429 || status == 502 || status == 503 || status == 504;
}

static void transfer_done(tele_queue *q, CURLcode rc, long status, curl_off_t retry_after_s) {
  telemetry *t = q->t;
  tele_curl.multi_remove_handle(t->multi, q->easy);
  tele_curl.easy_cleanup(q->easy);
  q->easy = NULL;
  if (rc == CURLE_OK && status >= 200 && status < 300) {
    q->exported += q->batch_count;
    batch_release(q);
    kick(q);
    maybe_finish_shutdown(t);
    return;
  }
  if (rc == CURLE_OK && status == 415 && q->gzipped) {
    /* The collector does not take gzip after all: send this batch and the
     * next ones plain. */
    tele_note(t, TELE_LOG_WARN, "telemetry: %s answered 415 to a gzip body; sending uncompressed",
              q->url);
    t->gzip = false;
    free(q->body);
    q->body = q->plain;
    q->body_len = q->plain_len;
    q->plain = NULL;
    q->plain_len = 0;
    q->gzipped = false;
    start_transfer(q);
    return;
  }
  char why[160];
  if (rc != CURLE_OK)
    snprintf(why, sizeof why, "%s", tele_curl.easy_strerror(rc));
  else
    snprintf(why, sizeof why, "HTTP %ld", status);
  q->attempt++;
  if (!retryable(rc, status) || q->attempt >= TELE_MAX_ATTEMPTS || t->closed) {
    batch_drop(q, why);
    kick(q);
    maybe_finish_shutdown(t);
    return;
  }
  uint64_t delay = TELE_BACKOFF_INITIAL_MS << (q->attempt - 1);
  if (delay > TELE_BACKOFF_MAX_MS)
    delay = TELE_BACKOFF_MAX_MS;
  uint8_t r;
  tele_random_bytes(&r, 1);
  delay = delay / 2 + delay * r / 512; /* jitter: 50%..100% */
  if (retry_after_s > 0)
    delay = (uint64_t)retry_after_s * 1000 > TELE_RETRY_AFTER_MAX_MS
                ? TELE_RETRY_AFTER_MAX_MS
                : (uint64_t)retry_after_s * 1000;
  t->retries++;
  tele_note(t, TELE_LOG_INFO, "telemetry: %s to %s: %s; retry %u in %llu ms", qname(q->which),
            q->url, why, q->attempt, (unsigned long long)delay);
  q->state = TQ_BACKOFF;
  uv_timer_start(&q->timer, on_queue_timer, delay, 0);
}

static void check_done(telemetry *t) {
  CURLMsg *m;
  int left;
  while ((m = tele_curl.multi_info_read(t->multi, &left))) {
    if (m->msg != CURLMSG_DONE)
      continue;
    CURL *e = m->easy_handle;
    CURLcode rc = m->data.result;
    tele_queue *q = NULL;
    long status = 0;
    curl_off_t retry_after = 0;
    tele_curl.easy_getinfo(e, CURLINFO_PRIVATE, (char **)&q);
    tele_curl.easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    tele_curl.easy_getinfo(e, CURLINFO_RETRY_AFTER, &retry_after);
    if (q && q->easy == e)
      transfer_done(q, rc, status, retry_after);
  }
}

static void on_queue_timer(uv_timer_t *h) {
  tele_queue *q = h->data;
  if (q->state == TQ_BACKOFF)
    start_transfer(q);
  else if (q->state == TQ_WAIT) {
    q->state = TQ_IDLE;
    send_batch(q);
  }
}

/* ---- the queue ---- */

void tele_enqueue(telemetry *t, int which, const char *data, size_t len) {
  tele_queue *q = &t->q[which];
  if (!q->url)
    return;
  if (t->closed || t->total_bytes + len + sizeof(tele_item) > t->max_queue_bytes) {
    q->dropped++;
    uint64_t now = uv_now(t->loop);
    uint64_t drops = t->q[0].dropped + t->q[1].dropped;
    if (!t->closed && (t->last_drop_log_ms == 0 ||
                       now - t->last_drop_log_ms >= TELE_DROP_LOG_INTERVAL_MS)) {
      tele_note(t, TELE_LOG_WARN,
                "telemetry: queue full (%zu of %zu bytes): %llu spans and %llu log records "
                "dropped so far",
                t->total_bytes, t->max_queue_bytes, (unsigned long long)t->q[0].dropped,
                (unsigned long long)t->q[1].dropped);
      t->last_drop_log_ms = now ? now : 1;
      t->drops_at_last_log = drops;
    }
    return;
  }
  tele_item *it = malloc(sizeof *it + len);
  if (!it) {
    q->dropped++;
    return;
  }
  it->next = NULL;
  it->len = len;
  memcpy(it->data, data, len);
  *q->tail = it;
  q->tail = &it->next;
  q->count++;
  q->bytes += len;
  t->total_bytes += len + sizeof(tele_item);
  kick(q);
}

/* ---- lifecycle ---- */

int tele_export_start(telemetry *t, const tele_config *cfg) {
  char why[256];
  if (tele_curl_load(why, sizeof why) < 0) {
    tele_note(t, TELE_LOG_ERROR, "telemetry: %s (install libcurl4 to export)", why);
    return -ENOENT;
  }
  if (tele_curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return -EIO;
  t->curl_inited = true;
  t->multi = tele_curl.multi_init();
  if (!t->multi)
    return -ENOMEM;
  tele_curl.multi_setopt(t->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  tele_curl.multi_setopt(t->multi, CURLMOPT_SOCKETDATA, t);
  tele_curl.multi_setopt(t->multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
  tele_curl.multi_setopt(t->multi, CURLMOPT_TIMERDATA, t);
  struct curl_slist *h = tele_curl.slist_append(NULL, "Content-Encoding: gzip");
  h = tele_curl.slist_append(h, "Content-Type: application/json");
  h = tele_curl.slist_append(h, "Expect:"); /* no 100-continue round trip */
  for (size_t i = 0; h && i < cfg->n_headers; i++) {
    size_t n = strlen(cfg->headers[i].key) + strlen(cfg->headers[i].value) + 3;
    char *line = malloc(n);
    if (!line)
      break;
    /* "Name;" is curl's way to send a header with an empty value. */
    if (*cfg->headers[i].value)
      snprintf(line, n, "%s: %s", cfg->headers[i].key, cfg->headers[i].value);
    else
      snprintf(line, n, "%s;", cfg->headers[i].key);
    h = tele_curl.slist_append(h, line);
    free(line);
  }
  if (!h)
    return -ENOMEM;
  t->headers = h;
  uv_timer_init(t->loop, &t->curl_timer);
  t->curl_timer.data = t;
  t->open_handles++;
  for (int i = 0; i < TELE_NQ; i++) {
    tele_queue *q = &t->q[i];
    q->t = t;
    q->which = i;
    q->tail = &q->head;
    const char *url = i == TELE_Q_TRACES ? cfg->traces_url : cfg->logs_url;
    q->url = url ? strdup(url) : NULL;
    uv_timer_init(t->loop, &q->timer);
    q->timer.data = q;
    t->open_handles++;
  }
  return 0;
}

static void close_handle(telemetry *t, uv_handle_t *h) {
  h->data = t;
  if (!uv_is_closing(h))
    uv_close(h, handle_closed);
}

/* Everything is sent or given up: abort transfers, close every handle. */
static void finish_shutdown(telemetry *t) {
  if (t->closed)
    return;
  t->closed = true;
  uint64_t lost[TELE_NQ] = {0, 0};
  for (int i = 0; i < TELE_NQ; i++) {
    tele_queue *q = &t->q[i];
    uv_timer_stop(&q->timer);
    if (q->easy) {
      tele_curl.multi_remove_handle(t->multi, q->easy);
      tele_curl.easy_cleanup(q->easy);
      q->easy = NULL;
    }
    lost[i] = q->batch_count + q->count;
    q->dropped += lost[i];
    if (q->body)
      batch_release(q);
    while (q->head) {
      tele_item *it = q->head;
      q->head = it->next;
      free(it);
    }
    q->tail = &q->head;
    q->count = q->bytes = 0;
    close_handle(t, (uv_handle_t *)&q->timer);
  }
  t->total_bytes = 0;
  if (lost[0] || lost[1])
    tele_note(t, TELE_LOG_WARN,
              "telemetry: exit: %llu spans and %llu log records not delivered",
              (unsigned long long)lost[0], (unsigned long long)lost[1]);
  if (t->q[0].dropped || t->q[1].dropped)
    tele_note(t, TELE_LOG_WARN, "telemetry: %llu spans and %llu log records dropped in all",
              (unsigned long long)t->q[0].dropped, (unsigned long long)t->q[1].dropped);
  /* Closing the multi handle closes cached connections: their sockets'
   * CURL_POLL_REMOVE close our poll handles while the loop still runs. */
  tele_curl.multi_cleanup(t->multi);
  t->multi = NULL;
  uv_timer_stop(&t->curl_timer);
  close_handle(t, (uv_handle_t *)&t->curl_timer);
  close_handle(t, (uv_handle_t *)&t->shutdown_timer);
  void (*done)(void *) = t->done;
  t->done = NULL;
  if (done)
    done(t->done_arg);
}

static void maybe_finish_shutdown(telemetry *t) {
  if (!t->shutting_down || t->closed)
    return;
  for (int i = 0; i < TELE_NQ; i++)
    if (t->q[i].count || t->q[i].state == TQ_SENDING || t->q[i].state == TQ_BACKOFF)
      return;
  finish_shutdown(t);
}

static void on_shutdown_deadline(uv_timer_t *h) { finish_shutdown(h->data); }

void tele_export_shutdown(telemetry *t) {
  t->shutting_down = true;
  uint64_t grace = t->timeout_ms < TELE_SHUTDOWN_FLUSH_MAX_MS ? t->timeout_ms
                                                              : TELE_SHUTDOWN_FLUSH_MAX_MS;
  uv_timer_init(t->loop, &t->shutdown_timer);
  t->shutdown_timer.data = t;
  t->open_handles++;
  uv_timer_start(&t->shutdown_timer, on_shutdown_deadline, grace, 0);
  for (int i = 0; i < TELE_NQ; i++)
    kick(&t->q[i]);
  maybe_finish_shutdown(t);
}

void tele_export_free(telemetry *t) {
  if (!t->curl_inited) { /* libcurl never loaded, or never started: nothing of it to free */
    for (int i = 0; i < TELE_NQ; i++)
      free(t->q[i].url);
    return;
  }
  for (int i = 0; i < TELE_NQ; i++) {
    tele_queue *q = &t->q[i];
    if (q->easy && t->multi)
      tele_curl.multi_remove_handle(t->multi, q->easy);
    if (q->easy)
      tele_curl.easy_cleanup(q->easy);
    free(q->body);
    free(q->plain);
    while (q->head) {
      tele_item *it = q->head;
      q->head = it->next;
      free(it);
    }
    free(q->url);
  }
  if (t->multi)
    tele_curl.multi_cleanup(t->multi);
  tele_curl.slist_free_all(t->headers);
  tele_curl.global_cleanup();
  t->curl_inited = false;
}
